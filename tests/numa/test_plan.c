/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pinning planner: worker counts, over-subscription errors that say how
 * many are usable, housekeeping reservations, isolated CPUs, bad options.
 * Uses hand-edited models (numa_int.h) for isolated and disallowed PUs,
 * which synthetic topologies cannot express.
 */
#include <stdlib.h>
#include <string.h>

#include <moirai/numa.h>

#include "internal.h"
#include "numa_int.h"
#include "plan_check.h"
#include "testutil.h"

static struct moirai_topo *syn(const char *desc)
{
	struct moirai_topo *t = NULL;

	assert_int_equal(moirai_topo_load_synthetic(desc, &t), 0);
	return t;
}

static void test_counts_and_oversubscription(void **state)
{
	struct moirai_topo *t = syn("pack:2 numa:1 core:4 pu:2");
	struct moirai_plan *p = NULL;

	(void)state;
	/* 0 = one per core; with SMT one per PU. */
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ 0 }), 8);
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ .smt = true }), 16);
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ .workers = 8 }), 8);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .workers = 9 }, &p),
			 -ERANGE);
	assert_null(p);
	assert_non_null(strstr(moirai_last_error(), "9 workers requested but only 8 usable cores"));
	assert_non_null(strstr(moirai_last_error(), "16 PUs with SMT"));
	assert_int_equal(
		moirai_plan_create(t, &(struct moirai_plan_opts){ .workers = 17, .smt = true }, &p),
		-ERANGE);
	assert_non_null(strstr(moirai_last_error(), "only 16 usable PUs"));
	moirai_topo_destroy(t);
}

static void test_reserve(void **state)
{
	struct moirai_topo *t = syn("pack:2 numa:1 core:4 pu:1");
	struct moirai_plan *p;
	struct moirai_plan_worker w;

	(void)state;
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ .reserve = 1 }), 7);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .reserve = 1 }, &p), 0);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_int_not_equal(w.pu, 0);
	}
	moirai_plan_destroy(p);
	/* First core of each node kept free: PUs 0 and 4. */
	assert_int_equal(
		moirai_plan_create(t, &(struct moirai_plan_opts){ .reserve_per_node = true }, &p),
		0);
	assert_int_equal(moirai_plan_worker_count(p), 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_true(w.pu != 0 && w.pu != 4);
	}
	moirai_plan_destroy(p);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .reserve = 8 }, &p),
			 -ERANGE);
	assert_non_null(strstr(moirai_last_error(), "reserving"));
	moirai_topo_destroy(t);
}

static void test_isolated_and_disallowed(void **state)
{
	struct moirai_topo *t = syn("pack:1 numa:2 core:2 pu:2");
	struct moirai_plan *p;
	struct moirai_plan_worker w;

	(void)state;
	/* Isolate core 1 (PUs 2,3) and disallow PU 4 (core 2, first sibling). */
	t->pus[2].isolated = t->pus[3].isolated = true;
	t->pus[4].allowed = false;
	t->allowed_pus--;
	assert_int_equal(usable_slots(t, false, false), 3);
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ 0 }), 3);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ 0 }, &p), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_true(w.pu != 2 && w.pu != 3 && w.pu != 4);
	}
	/* Core 2 is still usable through its second PU. */
	assert_int_equal(moirai_plan_worker(p, 1, &w), 0);
	assert_int_equal(w.pu, 5);
	moirai_plan_destroy(p);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .workers = 4 }, &p),
			 -ERANGE);
	assert_non_null(strstr(moirai_last_error(), "isolated CPUs excluded"));
	/* Opting in to isolated CPUs plans them. */
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ .use_isolated = true }), 4);
	assert_int_equal(
		check_plan(t, &(struct moirai_plan_opts){ .use_isolated = true, .smt = true }), 7);
	moirai_topo_destroy(t);
}

/* Steal order across nodes follows the distance matrix, not the index. */
static void test_steal_by_distance(void **state)
{
	struct moirai_topo *t = syn("numa:4 core:1 pu:1");
	static const int d[4][4] = {
		{ 10, 30, 20, 40 },
		{ 30, 10, 40, 20 },
		{ 20, 40, 10, 30 },
		{ 40, 20, 30, 10 },
	};
	struct moirai_plan *p;
	struct moirai_plan_worker w;

	(void)state;
	t->distances = calloc(16, sizeof(int));
	assert_non_null(t->distances);
	memcpy(t->distances, d, sizeof(d));
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ 0 }), 4);
	assert_int_equal(moirai_plan_create(t, NULL, &p), 0);
	assert_int_equal(moirai_plan_worker(p, 0, &w), 0);
	assert_int_equal(w.steal_order[0], 2);
	assert_int_equal(w.steal_order[1], 1);
	assert_int_equal(w.steal_order[2], 3);
	assert_int_equal(moirai_plan_worker(p, 3, &w), 0);
	assert_int_equal(w.steal_order[0], 1);
	assert_int_equal(w.steal_order[1], 2);
	assert_int_equal(w.steal_order[2], 0);
	moirai_plan_destroy(p);
	moirai_topo_destroy(t);
}

static void test_bad_options(void **state)
{
	struct moirai_topo *t = syn("pack:1 core:2 pu:1");
	struct moirai_plan *p = (void *)0x1;
	enum moirai_plan_policy pol;

	(void)state;
	assert_int_equal(moirai_plan_create(NULL, NULL, &p), -EINVAL);
	assert_int_equal(moirai_plan_create(t, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .workers = -1 }, &p),
			 -EINVAL);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .reserve = -2 }, &p),
			 -EINVAL);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .policy = 7 }, &p),
			 -EINVAL);
	assert_int_equal(
		moirai_plan_create(t, &(struct moirai_plan_opts){ .near_device = "eth0" }, &p),
		-ENODEV);
	assert_int_equal(moirai_plan_policy_parse("spread", &pol), 0);
	assert_int_equal(pol, MOIRAI_PLAN_SPREAD);
	assert_int_equal(moirai_plan_policy_parse("sprad", &pol), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "sprad"));
	assert_int_equal(moirai_plan_policy_parse(NULL, &pol), -EINVAL);
	assert_null(moirai_plan_policy_name(9));
	assert_int_equal(moirai_plan_create(t, NULL, &p), 0);
	{
		struct moirai_plan_worker w;

		assert_int_equal(moirai_plan_worker(p, 2, &w), -ERANGE);
		assert_int_equal(moirai_plan_worker(p, -1, &w), -ERANGE);
		assert_int_equal(moirai_plan_worker(NULL, 0, &w), -EINVAL);
	}
	moirai_plan_destroy(p);
	moirai_plan_destroy(NULL);
	assert_int_equal(moirai_plan_worker_count(NULL), 0);
	moirai_topo_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_oversubscription),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_isolated_and_disallowed),
		cmocka_unit_test(test_steal_by_distance),
		cmocka_unit_test(test_bad_options),
	};

	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
