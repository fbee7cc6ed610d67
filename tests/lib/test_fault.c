/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault injection (MOIRAI_FAULT, lib/fault.h): the specification parser,
 * "every Nth call" exactly at each site, failures that look like the real
 * ones (NULL/ENOMEM, -ENOENT, 0 enqueued with the free space reported),
 * the counts moirai_fault_injected() reports, and nothing lost or leaked
 * behind an injected failure.  The environment variable is checked in a
 * fresh exec of this binary (options are read once per process).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fault.h"
#include "moirai/alloc.h"
#include "moirai/pool.h"
#include "moirai/ring.h"
#include "testutil.h"

static void fault_set(const char *spec)
{
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_FAULT, spec), 0);
}

static void test_parse(void **state)
{
	static const char *const bad[] = {
		"ring",
		"ring_enqueue",
		"ring_enqueue=",
		"ring_enqueue=0",
		"ring_enqueue=-1",
		"ring_enqueue=x",
		"ring_enqueue=3x",
		"pool_get=2,",
		"pool_get=2,,",
		",pool_get=2",
		"pool_get=2,pool_get=3",
		"pool_get=1000000001",
		"nosuch=3",
		"pool_get=2;ring_enqueue=3",
	};
	uint64_t p[MOIRAI_FAULT__COUNT];
	char why[160];

	(void)state;
	assert_int_equal(moirai__fault_parse("", p, why, sizeof(why)), 0);
	for (int i = 0; i < MOIRAI_FAULT__COUNT; i++)
		assert_int_equal(p[i], 0);
	assert_int_equal(moirai__fault_parse("ring_enqueue=7,arena_commit=1", p, why, sizeof(why)),
			 0);
	assert_int_equal(p[MOIRAI_FAULT_ARENA_COMMIT], 1);
	assert_int_equal(p[MOIRAI_FAULT_POOL_GET], 0);
	assert_int_equal(p[MOIRAI_FAULT_RING_ENQUEUE], 7);
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(bad); i++) {
		why[0] = '\0';
		assert_int_equal(moirai__fault_parse(bad[i], p, why, sizeof(why)), -EINVAL);
		assert_true(why[0] != '\0');
	}
	/* Through the options table: -EINVAL with the reason, value kept. */
	fault_set("pool_get=9");
	moirai_clear_error();
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_FAULT, "pool_get=0"), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "pool_get"));
	assert_non_null(strstr(moirai_last_error(), "1.."));
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_FAULT, "bogus=1"), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "unknown fault site 'bogus'"));
	assert_string_equal(moirai_option_get_str(MOIRAI_OPT_FAULT), "pool_get=9");
	assert_true(moirai__fault_on(MOIRAI_FAULT_POOL_GET));
	fault_set("");
	assert_false(moirai__fault_on(MOIRAI_FAULT_POOL_GET));
	assert_string_equal(moirai_fault_site_name(MOIRAI_FAULT_RING_ENQUEUE), "ring_enqueue");
	assert_null(moirai_fault_site_name(MOIRAI_FAULT__COUNT));
	assert_int_equal(moirai_fault_injected(MOIRAI_FAULT__COUNT), 0);
}

/* Exported ring enqueues: calls 3, 6, 9, ... move nothing, as a full ring. */
static void test_ring_enqueue(void **state)
{
	struct moirai_ring *r;
	uint64_t before = moirai_fault_injected(MOIRAI_FAULT_RING_ENQUEUE);
	unsigned ok = 0, refused = 0, fs = 0;
	void *objs[4] = { (void *)1, (void *)2, (void *)3, (void *)4 }, *out[4];

	(void)state;
	assert_int_equal(moirai_ring_create("fault-ring", 1024, MOIRAI_NODE_ANY, 0, &r), 0);
	fault_set("ring_enqueue=3");
	for (int i = 1; i <= 30; i++) {
		unsigned n = (i % 2) ? moirai_ring_enqueue_burst(r, objs, 4, &fs)
				     : moirai_ring_enqueue_bulk(r, objs, 4, &fs);

		if (i % 3 == 0) {
			assert_int_equal(n, 0);
			/* The free space is the ring's, not a made-up 0. */
			assert_int_equal(fs, moirai_ring_free_count(r));
			refused++;
		} else {
			assert_int_equal(n, 4);
			ok++;
		}
	}
	fault_set("");
	assert_int_equal(moirai_fault_injected(MOIRAI_FAULT_RING_ENQUEUE) - before, refused);
	assert_int_equal(moirai_ring_count(r), 4 * ok);
	/* Nothing half-enqueued: exactly what was accepted comes out. */
	for (unsigned i = 0; i < ok; i++) {
		assert_int_equal(moirai_ring_dequeue_bulk(r, out, 4, NULL), 4);
		assert_memory_equal(out, objs, sizeof(objs));
	}
	assert_true(moirai_ring_empty(r));
	/* Off again: nothing is injected. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(moirai_ring_enqueue_burst(r, objs, 1, NULL), 1);
	assert_int_equal(moirai_fault_injected(MOIRAI_FAULT_RING_ENQUEUE) - before, refused);
	moirai_ring_destroy(r);
}

/* Pool gets, with and without a cache: every 4th is -ENOENT, nothing taken. */
static void test_pool_get(void **state)
{
	struct moirai_pool *pool;
	struct moirai_pool_cache *cache;
	uint64_t before = moirai_fault_injected(MOIRAI_FAULT_POOL_GET);
	void *held[64];
	unsigned n = 0, fails = 0;

	(void)state;
	assert_int_equal(moirai_pool_create("fault-pool", 64, 256, MOIRAI_NODE_ANY,
					    MOIRAI_POOL_F_NO_DEBUG, &pool),
			 0);
	fault_set("pool_get=4");
	/* Made while armed: even cache hits go through the counted path. */
	assert_int_equal(moirai_pool_cache_create(pool, 16, &cache), 0);
	for (int i = 1; i <= 64; i++) {
		int rc = moirai_pool_get(pool, (i % 2) ? cache : NULL, &held[n]);

		if (i % 4 == 0) {
			assert_int_equal(rc, -ENOENT);
			fails++;
		} else {
			assert_int_equal(rc, 0);
			n++;
		}
	}
	assert_int_equal(moirai_fault_injected(MOIRAI_FAULT_POOL_GET) - before, fails);
	assert_int_equal(moirai_pool_in_use_count(pool), n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(moirai_pool_put(pool, (i % 2) ? cache : NULL, held[i]), 0);
	fault_set("");
	moirai_pool_cache_destroy(cache);
	assert_int_equal(moirai_pool_in_use_count(pool), 0);
	assert_int_equal(moirai_pool_avail_count(pool), 256);
	moirai_pool_destroy(pool);
}

/* Arena commits: a large allocation needs a commit each time. */
static void test_arena_commit(void **state)
{
	uint64_t before = moirai_fault_injected(MOIRAI_FAULT_ARENA_COMMIT);
	struct moirai_alloc_stats s0, s1;
	unsigned fails = 0, ok = 0;

	(void)state;
	moirai_alloc_thread_flush();
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s0), 0);
	fault_set("arena_commit=2");
	for (int i = 0; i < 20; i++) {
		/* Whole segments: every one of these asks the arena. */
		void *p = moirai_malloc(4u << 20);

		if (!p) {
			assert_int_equal(errno, ENOMEM);
			assert_non_null(strstr(moirai_last_error(), "injected"));
			fails++;
			continue;
		}
		memset(p, 0xa5, 4u << 20);
		moirai_free(p);
		ok++;
	}
	fault_set("");
	assert_true(fails >= 1);
	assert_int_equal(moirai_fault_injected(MOIRAI_FAULT_ARENA_COMMIT) - before, fails);
	moirai_alloc_thread_flush();
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s1), 0);
	assert_int_equal(s1.in_use, s0.in_use);
	/* The allocator still works once the faults stop. */
	void *p = moirai_malloc(4u << 20);

	assert_non_null(p);
	moirai_free(p);
	print_message("arena_commit=2: %u of %u large allocations failed\n", fails, fails + ok);
}

/* MOIRAI_FAULT from the environment arms the sites; a bad value is ignored
 * with a warning naming why. */
static int env_child(const char *want)
{
	if (strcmp(moirai_option_get_str(MOIRAI_OPT_FAULT), want) != 0)
		return 1;
	if (moirai__fault_on(MOIRAI_FAULT_RING_ENQUEUE) != (want[0] != '\0'))
		return 2;
	return 0;
}

static void test_env(void **state)
{
	int st;

	(void)state;
	st = system("MOIRAI_FAULT=ring_enqueue=5 /proc/$PPID/exe --env-child ring_enqueue=5");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = system("MOIRAI_FAULT=ring_enqueue=five /proc/$PPID/exe --env-child '' 2>&1 |"
		    " grep -q \"ignoring MOIRAI_FAULT='ring_enqueue=five': fault site "
		    "ring_enqueue: N must be\"");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),	 cmocka_unit_test(test_ring_enqueue),
		cmocka_unit_test(test_pool_get), cmocka_unit_test(test_arena_commit),
		cmocka_unit_test(test_env),
	};

	if (argc == 3 && strcmp(argv[1], "--env-child") == 0)
		return env_child(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
