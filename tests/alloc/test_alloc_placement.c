/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai/alloc.h placement on the live machine: for every node the cgroup
 * allows, every page of a sample of small, large and huge blocks (touched
 * first) is on that node according to move_pages, also while the process
 * memory policy prefers another node.  Nodes that are not allowed are
 * reported unavailable: strict allocations fail with EPERM and
 * "preferred" ones fall back to the nearest allowed node, counted in the
 * stats.  Built to run in the 4-node VM (tests/vm/tests.list) as well as
 * on a single-node box.
 */
#include <errno.h>
#include <numa.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moirai/alloc.h"
#include "moirai/numa.h"
#include "testutil.h"

static const size_t sample_sizes[] = { 16,    100,   1000,   4000,    20000,
				       32768, 40000, 300000, 1 << 20, 5 << 20 };
#define NSAMPLES (sizeof(sample_sizes) / sizeof(sample_sizes[0]))

/* Every page of [p, p+n) sits on @node. */
static void check_pages(const char *p, size_t n, int node)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t first = (uintptr_t)p & ~(uintptr_t)(page - 1);

	for (uintptr_t a = first; a < (uintptr_t)p + n; a += (uintptr_t)page) {
		int got = moirai_numa_page_node((const void *)a);

		if (got != node)
			fail_msg("page %#lx of block %p (%zu bytes) is on node %d, not %d",
				 (unsigned long)a, (const void *)p, n, got, node);
	}
}

static void place_on(int node)
{
	enum { REPEAT = 8 };
	void *blocks[REPEAT][NSAMPLES];

	for (int r = 0; r < REPEAT; r++)
		for (size_t i = 0; i < NSAMPLES; i++) {
			size_t n = sample_sizes[i];
			char *p = moirai_malloc_node(n, node);

			assert_non_null(p);
			memset(p, r, n);
			assert_int_equal(moirai_alloc_ptr_node(p), node);
			blocks[r][i] = p;
		}
	for (int r = 0; r < REPEAT; r++)
		for (size_t i = 0; i < NSAMPLES; i++) {
			check_pages(blocks[r][i], sample_sizes[i], node);
			moirai_free(blocks[r][i]);
		}
}

static void test_every_allowed_node(void **state)
{
	int nodes = moirai_numa_node_count(), placed = 0;

	(void)state;
	for (int n = 0; n < nodes; n++) {
		if (!moirai_numa_node_is_allowed(n))
			continue;
		assert_true(moirai_alloc_node_is_available(n));
		place_on(n);
		placed++;
	}
	assert_true(placed >= 1);
}

/* A process policy preferring another node does not move arena pages. */
static void test_under_foreign_policy(void **state)
{
	int nodes = moirai_numa_node_count(), other;

	(void)state;
	if (numa_available() < 0)
		skip();
	for (int n = 0; n < nodes; n++) {
		if (!moirai_numa_node_is_allowed(n))
			continue;
		other = -1;
		for (int m = 0; m < nodes; m++)
			if (m != n && moirai_numa_node_is_allowed(m))
				other = m;
		if (other < 0)
			other = n;
		numa_set_preferred(other);
		place_on(n);
		numa_set_localalloc();
	}
}

/* The default node is the caller's (or the nearest allowed one). */
static void test_local_node(void **state)
{
	int cur = moirai_numa_current_node();
	char *p = moirai_malloc(5000);

	(void)state;
	assert_non_null(p);
	memset(p, 1, 5000);
	int node = moirai_alloc_ptr_node(p);

	if (cur >= 0 && moirai_numa_node_is_allowed(cur))
		assert_int_equal(node, cur);
	check_pages(p, 5000, node);
	moirai_free(p);
}

static void test_unavailable_nodes(void **state)
{
	int nodes = moirai_numa_node_count(), tested = 0;

	(void)state;
	for (int n = 0; n < nodes; n++) {
		struct moirai_alloc_stats s0, s1;

		if (moirai_numa_node_is_allowed(n))
			continue;
		assert_false(moirai_alloc_node_is_available(n));
		errno = 0;
		assert_null(moirai_malloc_node(64, n));
		/* Excluded by the cgroup: EPERM, as in every module. */
		assert_int_equal(errno, EPERM);
		assert_non_null(strstr(moirai_last_error(), "cgroup"));
		assert_int_equal(moirai_alloc_stats_get(n, &s0), 0);
		assert_false(s0.available);
		char *p = moirai_malloc_node_flags(64, 0, n, MOIRAI_ALLOC_F_PREFERRED);

		assert_non_null(p);
		memset(p, 1, 64);
		assert_true(moirai_alloc_node_is_available(moirai_alloc_ptr_node(p)));
		assert_int_equal(moirai_alloc_stats_get(n, &s1), 0);
		assert_int_equal(s1.preferred_fallbacks, s0.preferred_fallbacks + 1);
		moirai_free(p);
		tested++;
	}
	/*
	 * The VM runs this binary a second time inside a cgroup whose
	 * cpuset.mems leaves nodes out (MOIRAI_VM_MEMS): there it must test.
	 */
	if (getenv("MOIRAI_VM_MEMS"))
		assert_true(tested > 0);
	if (!tested)
		skip();
}

static void test_bad_nodes(void **state)
{
	(void)state;
	errno = 0;
	assert_null(moirai_malloc_node(64, moirai_numa_node_count() + 5));
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_null(moirai_malloc_node_flags(64, 0, -3, MOIRAI_ALLOC_F_PREFERRED));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest placement[] = {
		cmocka_unit_test(test_every_allowed_node),
		cmocka_unit_test(test_under_foreign_policy),
		cmocka_unit_test(test_local_node),
	};
	const struct CMUnitTest negative[] = {
		cmocka_unit_test(test_unavailable_nodes),
		cmocka_unit_test(test_bad_nodes),
	};
	int fails = 0;

	alarm(120);
	fails += cmocka_run_group_tests_name("alloc placement", placement, NULL, NULL);
	fails += cmocka_run_group_tests_name("alloc negative", negative, NULL, NULL);
	return fails ? 1 : 0;
}
