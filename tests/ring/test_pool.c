/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Object pool (moirai/pool.h): exact counts, all-or-nothing bulk, alignment,
 * caches and flush, debug detection of foreign and double puts, a
 * multi-thread get/put storm with ownership and content checks in every
 * ring mode, placement on every allowed node, and negative inputs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "moirai/numa.h"
#include "moirai/pool.h"
#include "pool_int.h"
#include "testutil.h"

#define N_OBJS 1000u

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

/* Every pointer distinct and an object of the pool. */
static void assert_distinct_objects(struct moirai_pool *p, void **objs, unsigned n)
{
	void **s = malloc(n * sizeof(*s));

	assert_non_null(s);
	memcpy(s, objs, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_ptr);
	for (unsigned i = 0; i < n; i++) {
		assert_true(moirai_pool_contains(p, s[i]));
		if (i)
			assert_ptr_not_equal(s[i - 1], s[i]);
	}
	free(s);
}

static void test_bulk_exact_counts(void **state)
{
	struct moirai_pool *p;
	void *objs[N_OBJS];

	(void)state;
	assert_int_equal(moirai_pool_create("bulk", 40, N_OBJS, MOIRAI_NODE_ANY, 0, &p), 0);
	assert_int_equal(moirai_pool_size(p), N_OBJS);
	assert_true(moirai_pool_obj_size(p) >= 40);
	assert_int_equal(moirai_pool_avail_count(p), N_OBJS);
	assert_int_equal(moirai_pool_in_use_count(p), 0);

	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 300), 0);
	assert_int_equal(moirai_pool_avail_count(p), N_OBJS - 300);
	assert_int_equal(moirai_pool_in_use_count(p), 300);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs + 300, N_OBJS - 300), 0);
	assert_int_equal(moirai_pool_avail_count(p), 0);
	assert_distinct_objects(p, objs, N_OBJS);
	for (unsigned i = 0; i < N_OBJS; i++)
		memset(objs[i], (int)i, 40);
	for (unsigned i = 0; i < N_OBJS; i++)
		assert_int_equal(((unsigned char *)objs[i])[39], (unsigned char)i);

	assert_int_equal(moirai_pool_get(p, NULL, &objs[0]), -ENOENT);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs, 500), 0);
	assert_int_equal(moirai_pool_avail_count(p), 500);
	assert_int_equal(moirai_pool_put(p, NULL, objs[500]), 0);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs + 501, N_OBJS - 501), 0);
	assert_int_equal(moirai_pool_avail_count(p), N_OBJS);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 0), 0);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs, 0), 0);
	moirai_pool_destroy(p);
}

static void test_all_or_nothing(void **state)
{
	struct moirai_pool *p;
	struct moirai_pool_cache *c;
	void *objs[N_OBJS];

	(void)state;
	assert_int_equal(moirai_pool_create("aon", 8, 100, MOIRAI_NODE_ANY, 0, &p), 0);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 60), 0);
	objs[60] = NULL;
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs + 60, 41), -ENOENT);
	assert_null(objs[60]);
	assert_int_equal(moirai_pool_avail_count(p), 40);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs + 60, 40), 0);
	assert_int_equal(moirai_pool_avail_count(p), 0);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs, 100), 0);

	/* Through a cache: the cache refills, short requests still fail whole. */
	assert_int_equal(moirai_pool_cache_create(p, 32, &c), 0);
	assert_int_equal(moirai_pool_get_bulk(p, c, objs, 10), 0);
	assert_int_equal(moirai_pool_avail_count(p), 90);
	assert_int_equal(moirai_pool_in_use_count(p), 10);
	assert_int_equal(moirai_pool_get_bulk(p, c, objs + 10, 80), 0);
	assert_int_equal(moirai_pool_get_bulk(p, c, objs + 90, 11), -ENOENT);
	assert_int_equal(moirai_pool_avail_count(p), 10);
	assert_int_equal(moirai_pool_get_bulk(p, c, objs + 90, 10), 0);
	assert_int_equal(moirai_pool_get(p, c, &objs[100]), -ENOENT);
	assert_distinct_objects(p, objs, 100);
	assert_int_equal(moirai_pool_put_bulk(p, c, objs, 100), 0);
	assert_int_equal(moirai_pool_avail_count(p), 100);
	moirai_pool_cache_destroy(c);
	assert_int_equal(moirai_pool_avail_count(p), 100);
	assert_int_equal(rte_ring_count(p->ring), 100);
	moirai_pool_destroy(p);
}

static void test_alignment(void **state)
{
	struct moirai_pool *p;
	void *objs[64];

	(void)state;
	assert_int_equal(
		moirai_pool_create("al", 72, 64, MOIRAI_NODE_ANY, MOIRAI_POOL_F_CACHE_ALIGN, &p),
		0);
	assert_int_equal(moirai_pool_obj_size(p), 128);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 64), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal((uintptr_t)objs[i] % MOIRAI_CACHE_LINE, 0);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs, 64), 0);
	moirai_pool_destroy(p);

	assert_int_equal(moirai_pool_create("al16", 3, 64, MOIRAI_NODE_ANY, 0, &p), 0);
	assert_int_equal(moirai_pool_obj_size(p), 16);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 64), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal((uintptr_t)objs[i] % 16, 0);
	assert_false(moirai_pool_contains(p, (char *)objs[0] + 1));
	assert_false(moirai_pool_contains(p, objs));
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs, 64), 0);
	moirai_pool_destroy(p);
}

static void test_cache_flush(void **state)
{
	struct moirai_pool *p;
	struct moirai_pool_cache *c, *tc, *tc2;
	void *objs[200];

	(void)state;
	/* NO_DEBUG: the inline fast path, also in DEBUG and sanitizer builds. */
	assert_int_equal(
		moirai_pool_create("fl", 16, 500, MOIRAI_NODE_ANY, MOIRAI_POOL_F_NO_DEBUG, &p), 0);
	assert_int_equal(moirai_pool_cache_create(p, 16, &c), 0);
	assert_int_equal(moirai_pool_get(p, c, &objs[0]), 0);
	/* The refill left 16 in the cache, out of the ring. */
	assert_int_equal(rte_ring_count(p->ring), 500 - 17);
	assert_int_equal(moirai_pool_avail_count(p), 499);
	assert_int_equal(moirai_pool_put(p, c, objs[0]), 0);
	assert_int_equal(moirai_pool_avail_count(p), 500);
	moirai_pool_cache_flush(c);
	assert_int_equal(rte_ring_count(p->ring), 500);
	assert_int_equal(__atomic_load_n(&c->len, __ATOMIC_RELAXED), 0);

	/* Puts beyond 2 * size flush down to size. */
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 40), 0);
	assert_int_equal(moirai_pool_put_bulk(p, c, objs, 10), 0);
	assert_int_equal(moirai_pool_put_bulk(p, c, objs + 10, 10), 0);
	assert_int_equal(__atomic_load_n(&c->len, __ATOMIC_RELAXED), 20);
	assert_int_equal(moirai_pool_put_bulk(p, c, objs + 20, 15), 0);
	assert_int_equal(__atomic_load_n(&c->len, __ATOMIC_RELAXED), 16);
	/* Larger than the cache: straight to the ring. */
	assert_int_equal(moirai_pool_put_bulk(p, c, objs + 35, 5), 0);
	assert_int_equal(moirai_pool_avail_count(p), 500);
	assert_int_equal(moirai_pool_get_bulk(p, c, objs, 100), 0);
	assert_int_equal(moirai_pool_in_use_count(p), 100);
	assert_int_equal(moirai_pool_put_bulk(p, c, objs, 100), 0);

	/* Thread cache: same object on each call, counted, freed by destroy. */
	assert_int_equal(moirai_pool_thread_cache(p, &tc), 0);
	assert_int_equal(moirai_pool_thread_cache(p, &tc2), 0);
	assert_ptr_equal(tc, tc2);
	assert_int_equal(moirai_pool_get_bulk(p, tc, objs, 3), 0);
	assert_int_equal(moirai_pool_in_use_count(p), 3);
	assert_int_equal(moirai_pool_put_bulk(p, tc, objs, 3), 0);
	assert_int_equal(moirai_pool_avail_count(p), 500);
	moirai_pool_cache_destroy(tc);
	assert_int_equal(moirai_pool_thread_cache(p, &tc2), 0);
	moirai_pool_cache_destroy(c);
	moirai_pool_destroy(p); /* frees tc2 */
}

static void *thread_cache_user(void *arg)
{
	struct moirai_pool *p = arg;
	struct moirai_pool_cache *c;
	void *objs[10];

	if (moirai_pool_thread_cache(p, &c) != 0 || moirai_pool_get_bulk(p, c, objs, 10) != 0 ||
	    moirai_pool_put_bulk(p, c, objs, 10) != 0)
		return (void *)1;
	/* Exit with objects in the cache: the key destructor flushes it. */
	return __atomic_load_n(&c->len, __ATOMIC_RELAXED) ? NULL : (void *)2;
}

static void *destroy_foreign(void *arg)
{
	moirai_pool_cache_destroy(arg); /* not ours: must be ignored */
	return NULL;
}

static void test_thread_cache_exit(void **state)
{
	struct moirai_pool *p;
	struct moirai_pool_cache *mine, *again;
	pthread_t th;
	void *ret;

	(void)state;
	assert_int_equal(moirai_pool_create("texit", 16, 300, MOIRAI_NODE_ANY, 0, &p), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_create(&th, NULL, thread_cache_user, p), 0);
		assert_int_equal(pthread_join(th, &ret), 0);
		assert_null(ret);
		/* Flushed into the ring and unregistered. */
		assert_int_equal(rte_ring_count(p->ring), 300);
		assert_true(moirai__list_empty(&p->caches));
	}
	/* Another thread cannot destroy this thread's cache. */
	assert_int_equal(moirai_pool_thread_cache(p, &mine), 0);
	assert_int_equal(pthread_create(&th, NULL, destroy_foreign, mine), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p->caches.next, &moirai__pool_cache_of(mine)->link);
	assert_ptr_equal(p->caches.next->next, &p->caches);
	assert_int_equal(moirai_pool_thread_cache(p, &again), 0);
	assert_ptr_equal(again, mine);
	moirai_pool_destroy(p);
}

static void test_debug_checks(void **state)
{
	struct moirai_pool *p;
	void *objs[10], *bad[3];
	char stack_obj[64];

	(void)state;
	assert_int_equal(
		moirai_pool_create("dbg", 32, 10, MOIRAI_NODE_ANY, MOIRAI_POOL_F_DEBUG, &p), 0);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 4), 0);
	assert_int_equal(moirai_pool_put(p, NULL, stack_obj), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "not an object"));
	assert_int_equal(moirai_pool_put(p, NULL, (char *)objs[0] + 8), -EINVAL);
	/* A batch with one bad pointer puts nothing. */
	bad[0] = objs[0];
	bad[1] = objs[1];
	bad[2] = stack_obj;
	assert_int_equal(moirai_pool_put_bulk(p, NULL, bad, 3), -EINVAL);
	assert_int_equal(moirai_pool_in_use_count(p), 4);
	assert_int_equal(moirai_pool_put(p, NULL, objs[0]), 0);
	assert_int_equal(moirai_pool_put(p, NULL, objs[0]), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "double put"));
	/* Duplicate inside one batch; the other object is not put either. */
	bad[0] = objs[1];
	bad[1] = objs[1];
	assert_int_equal(moirai_pool_put_bulk(p, NULL, bad, 2), -EINVAL);
	assert_int_equal(moirai_pool_in_use_count(p), 3);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, objs + 1, 3), 0);
	assert_int_equal(moirai_pool_avail_count(p), 10);
	moirai_pool_destroy(p);

	/* The MOIRAI_DEBUG option turns checks on for pools created after. */
	assert_int_equal(moirai_option_set(MOIRAI_OPT_DEBUG, 1), 0);
	struct moirai_pool_cache *c;

	assert_int_equal(
		moirai_pool_create("nodbg", 32, 10, MOIRAI_NODE_ANY, MOIRAI_POOL_F_NO_DEBUG, &p),
		0);
	assert_false(p->debug);
	moirai_pool_destroy(p);
	assert_int_equal(moirai_pool_create("dbg2", 32, 10, MOIRAI_NODE_ANY, 0, &p), 0);
	assert_true(p->debug);
	assert_int_equal(moirai_option_set(MOIRAI_OPT_DEBUG, 0), 0);
	assert_int_equal(moirai_pool_cache_create(p, 4, &c), 0);
	assert_int_equal(moirai_pool_get(p, c, &objs[0]), 0);
	assert_int_equal(moirai_pool_put(p, c, objs[0]), 0);
	assert_int_equal(moirai_pool_put(p, c, objs[0]), -EINVAL);
	assert_int_equal(moirai_pool_put(p, c, stack_obj), -EINVAL);
	assert_int_equal(moirai_pool_avail_count(p), 10);
	moirai_pool_cache_destroy(c);
	moirai_pool_destroy(p);
}

/* ---- multi-thread storm -------------------------------------------------- */

#define STORM_THREADS 4
/* ThreadSanitizer makes the storm ~20x slower: keep the binary short. */
#define STORM_ITERS (TEST_UNDER_TSAN ? 4000 : 20000)
#define STORM_OBJ   64

struct storm {
	struct moirai_pool *pool;
	_Atomic uint32_t *owner; /* per object: 0 free, else thread id + 1 */
	long iters;
	int cache_kind; /* per thread: see storm_thread() */
	_Atomic long failures;
	_Atomic long got;
};

struct storm_arg {
	struct storm *s;
	uint32_t id;
};

static void *storm_thread(void *arg)
{
	struct storm_arg *a = arg;
	struct storm *s = a->s;
	struct moirai_pool_cache *c = NULL;
	void *objs[48];
	uint32_t rnd = a->id * 2654435761u + 1;
	long got = 0;

	/* Thread 0: no cache, 1: thread cache, others: own explicit cache. */
	if (a->id == 1 && moirai_pool_thread_cache(s->pool, &c) != 0)
		atomic_fetch_add(&s->failures, 1);
	else if (a->id >= 2 && moirai_pool_cache_create(s->pool, 8 + a->id * 8, &c) != 0)
		atomic_fetch_add(&s->failures, 1);
	for (long it = 0; it < s->iters; it++) {
		rnd = rnd * 1103515245u + 12345u;
		unsigned n = 1 + (rnd >> 16) % 48;

		if (moirai_pool_get_bulk(s->pool, c, objs, n) != 0)
			continue;
		got += n;
		for (unsigned i = 0; i < n; i++) {
			size_t idx = moirai__pool_index(s->pool, objs[i]);
			uint32_t zero = 0;

			/* Exactly one holder at a time. */
			if (!atomic_compare_exchange_strong(&s->owner[idx], &zero, a->id + 1)) {
				print_error("object %zu held by %u and %u\n", idx, zero - 1, a->id);
				atomic_fetch_add(&s->failures, 1);
			}
			memset(objs[i], (int)(a->id + 1), STORM_OBJ);
		}
		for (unsigned i = 0; i < n; i++) {
			const unsigned char *b = objs[i];
			size_t idx = moirai__pool_index(s->pool, objs[i]);

			for (int k = 0; k < STORM_OBJ; k++)
				if (b[k] != (unsigned char)(a->id + 1)) {
					atomic_fetch_add(&s->failures, 1);
					break;
				}
			atomic_store(&s->owner[idx], 0);
		}
		if (moirai_pool_put_bulk(s->pool, c, objs, n) != 0) {
			print_error("put failed: %s\n", moirai_last_error());
			atomic_fetch_add(&s->failures, 1);
		}
	}
	if (a->id >= 2)
		moirai_pool_cache_destroy(c);
	else if (c)
		moirai_pool_cache_flush(c);
	atomic_fetch_add(&s->got, got);
	return NULL;
}

static void run_storm(unsigned flags, int threads)
{
	struct storm s = { 0 };
	struct storm_arg args[STORM_THREADS];
	pthread_t th[STORM_THREADS];
	const unsigned n_objs = 256;

	assert_int_equal(
		moirai_pool_create("storm", STORM_OBJ, n_objs, MOIRAI_NODE_ANY, flags, &s.pool), 0);
	s.owner = calloc(n_objs, sizeof(*s.owner));
	assert_non_null(s.owner);
	s.iters = STORM_ITERS * test_scale();
	alarm(120);
	for (int i = 0; i < threads; i++) {
		args[i] = (struct storm_arg){ .s = &s, .id = (uint32_t)i };
		assert_int_equal(pthread_create(&th[i], NULL, storm_thread, &args[i]), 0);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	alarm(0);
	assert_int_equal(atomic_load(&s.failures), 0);
	assert_true(atomic_load(&s.got) > 0);
	/* Caches flushed or destroyed: the ring holds every object again. */
	assert_int_equal(moirai_pool_avail_count(s.pool), n_objs);
	assert_int_equal(moirai_pool_in_use_count(s.pool), 0);
	assert_int_equal(rte_ring_count(s.pool->ring), n_objs);
	void *all[256];

	assert_int_equal(moirai_pool_get_bulk(s.pool, NULL, all, n_objs), 0);
	assert_distinct_objects(s.pool, all, n_objs);
	assert_int_equal(moirai_pool_put_bulk(s.pool, NULL, all, n_objs), 0);
	free(s.owner);
	moirai_pool_destroy(s.pool);
}

static void test_storm_rts(void **state)
{
	(void)state;
	run_storm(MOIRAI_POOL_F_NO_DEBUG, STORM_THREADS);
}

static void test_storm_hts(void **state)
{
	(void)state;
	run_storm(MOIRAI_POOL_F_RING_HTS | MOIRAI_POOL_F_NO_DEBUG, STORM_THREADS);
}

static void test_storm_mpmc(void **state)
{
	(void)state;
	/*
	 * DPDK's classic MP/MC body orders with rte_smp_rmb(), a compiler
	 * barrier on x86 that TSan cannot see (test_ring_race skips it too);
	 * the other builds run it.
	 */
	if (TEST_UNDER_TSAN)
		skip();
	/* Classic MP/MC convoys when threads outnumber cores: keep 2. */
	run_storm(MOIRAI_POOL_F_RING_MPMC | MOIRAI_POOL_F_NO_DEBUG, 2);
}

static void test_storm_debug(void **state)
{
	(void)state;
	run_storm(MOIRAI_POOL_F_DEBUG, STORM_THREADS);
}

/* ---- placement ----------------------------------------------------------- */

static void test_node_placement(void **state)
{
	int tested = 0;

	(void)state;
	for (int node = 0; node < moirai_numa_node_count(); node++) {
		struct moirai_pool *p;
		void *objs[512];

		if (!moirai_numa_node_is_allowed(node))
			continue;
		assert_int_equal(moirai_pool_create("place", 4096, 512, node, 0, &p), 0);
		assert_int_equal(moirai_pool_node(p), node);
		assert_int_equal(moirai_numa_page_node(p->ring), node);
		assert_int_equal(moirai_pool_get_bulk(p, NULL, objs, 512), 0);
		for (int i = 0; i < 512; i++)
			memset(objs[i], 1, 4096);
		for (int i = 0; i < 512; i += 37)
			assert_int_equal(moirai_numa_page_node(objs[i]), node);
		assert_int_equal(moirai_numa_page_node(objs[511]), node);
		assert_int_equal(moirai_pool_put_bulk(p, NULL, objs, 512), 0);
		moirai_pool_destroy(p);
		tested++;
	}
	assert_true(tested >= 1);
	print_message("placement checked on %d node(s)\n", tested);
}

/* ---- negative inputs ----------------------------------------------------- */

static void test_negative(void **state)
{
	struct moirai_pool *p, *q, *q2;
	struct moirai_pool_cache *c;
	void *obj;

	(void)state;
	assert_int_equal(moirai_pool_create(NULL, 8, 10, MOIRAI_NODE_ANY, 0, &p), -EINVAL);
	assert_int_equal(moirai_pool_create("", 8, 10, MOIRAI_NODE_ANY, 0, &p), -EINVAL);
	assert_int_equal(
		moirai_pool_create("a-name-that-is-much-too-long", 8, 10, MOIRAI_NODE_ANY, 0, &p),
		-EINVAL);
	assert_int_equal(moirai_pool_create("x", 8, 0, MOIRAI_NODE_ANY, 0, &p), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "object count 0"));
	assert_int_equal(
		moirai_pool_create("x", 8, MOIRAI_POOL_MAX_OBJS + 1, MOIRAI_NODE_ANY, 0, &p),
		-EINVAL);
	assert_int_equal(moirai_pool_create("x", 0, 10, MOIRAI_NODE_ANY, 0, &p), -EINVAL);
	assert_int_equal(moirai_pool_create("x", (size_t)MOIRAI_POOL_MAX_OBJ_SIZE + 1, 10,
					    MOIRAI_NODE_ANY, 0, &p),
			 -EINVAL);
	assert_int_equal(moirai_pool_create("x", 8, 10, MOIRAI_NODE_ANY, 0x100, &p), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "unknown flags"));
	assert_int_equal(moirai_pool_create("x", 8, 10, MOIRAI_NODE_ANY,
					    MOIRAI_POOL_F_RING_HTS | MOIRAI_POOL_F_RING_MPMC, &p),
			 -EINVAL);
	assert_int_equal(moirai_pool_create("x", 8, 10, MOIRAI_NODE_ANY,
					    MOIRAI_POOL_F_DEBUG | MOIRAI_POOL_F_NO_DEBUG, &p),
			 -EINVAL);
	assert_int_equal(moirai_pool_create("x", 8, 10, 4096, 0, &p), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "does not exist"));
	assert_int_equal(moirai_pool_create("x", 8, 10, -7, 0, &p), -EINVAL);
	assert_int_equal(moirai_pool_create("x", 8, 10, MOIRAI_NODE_ANY, 0, NULL), -EINVAL);

	assert_int_equal(moirai_pool_create("x", 8, 10, MOIRAI_NODE_ANY, 0, &p), 0);
	assert_int_equal(moirai_pool_create("y", 8, 10, MOIRAI_NODE_ANY, 0, &q), 0);
	assert_int_equal(moirai_pool_cache_create(NULL, 4, &c), -EINVAL);
	assert_int_equal(moirai_pool_cache_create(p, 0, &c), -EINVAL);
	assert_int_equal(moirai_pool_cache_create(p, MOIRAI_POOL_CACHE_MAX + 1, &c), -EINVAL);
	assert_int_equal(moirai_pool_cache_create(p, 4, NULL), -EINVAL);
	assert_int_equal(moirai_pool_thread_cache(NULL, &c), -EINVAL);
	assert_int_equal(moirai_pool_get(NULL, NULL, &obj), -EINVAL);
	assert_int_equal(moirai_pool_get_bulk(p, NULL, NULL, 3), -EINVAL);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, NULL, 3), -EINVAL);
	assert_int_equal(moirai_pool_put(NULL, NULL, &obj), -EINVAL);
	/* A cache of another pool: rejected on the slow path. */
	assert_int_equal(moirai_pool_cache_create(q, 4, &c), 0);
	assert_int_equal(moirai_pool_get(p, c, &obj), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "belongs to pool y"));
	assert_int_equal(moirai_pool_avail_count(p), 10);
	moirai_pool_cache_destroy(c);

	/* NULL pools: the documented value, and a message naming the call. */
	moirai_clear_error();
	assert_false(moirai_pool_contains(NULL, &obj));
	assert_non_null(strstr(moirai_last_error(), "moirai_pool_contains"));
	assert_false(moirai_pool_contains(p, NULL));
	assert_int_equal(moirai_pool_avail_count(NULL), 0);
	assert_non_null(strstr(moirai_last_error(), "moirai_pool_avail_count"));
	assert_int_equal(moirai_pool_in_use_count(NULL), 0);
	assert_non_null(strstr(moirai_last_error(), "moirai_pool_in_use_count"));
	assert_int_equal(moirai_pool_size(NULL), 0);
	assert_non_null(strstr(moirai_last_error(), "moirai_pool_size"));
	assert_int_equal(moirai_pool_obj_size(NULL), 0);
	assert_non_null(strstr(moirai_last_error(), "moirai_pool_obj_size"));
	assert_int_equal(moirai_pool_node(NULL), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "moirai_pool_node"));
	/* Node vocabulary: no such node, and a bad node number. */
	assert_int_equal(moirai_pool_create("z", 8, 10, 100000, 0, &q2), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "does not exist"));
	assert_int_equal(moirai_pool_create("z", 8, 10, -5, 0, &q2), -EINVAL);
	moirai_pool_cache_flush(NULL);
	moirai_pool_cache_destroy(NULL);
	moirai_pool_destroy(NULL);
	moirai_pool_destroy(q);
	moirai_pool_destroy(p);
}

/* Share of the pages of @p's objects that are resident (mincore). */
static double resident_share(const struct moirai_pool *p)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)p->base & ~(uintptr_t)(pg - 1);
	size_t n = ((uintptr_t)p->end - lo + (size_t)pg - 1) / (size_t)pg, in = 0;
	unsigned char *vec = malloc(n);

	assert_non_null(vec);
	assert_int_equal(mincore((void *)lo, n * (size_t)pg, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	return (double)in / (double)n;
}

/* 32 MiB of objects: more than any earlier test had, so mostly fresh. */
static void test_populate(void **state)
{
	struct moirai_pool *p;
	double lazy, full;

	(void)state;
	assert_int_equal(moirai_pool_create("lazy", 1024, 32768, MOIRAI_NODE_ANY, 0, &p), 0);
	lazy = resident_share(p);
	moirai_pool_destroy(p);
	assert_int_equal(moirai_pool_create("full", 1024, 32768, MOIRAI_NODE_ANY,
					    MOIRAI_POOL_F_POPULATE, &p),
			 0);
	full = resident_share(p);
	/* Every page in before the first get, and the objects still work. */
	assert_true(full == 1.0);
	assert_true(lazy < 0.5);
	void *o[8];

	assert_int_equal(moirai_pool_get_bulk(p, NULL, o, 8), 0);
	assert_int_equal(moirai_pool_put_bulk(p, NULL, o, 8), 0);
	assert_int_equal(moirai_pool_avail_count(p), 32768);
	moirai_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest pool_tests[] = {
		cmocka_unit_test(test_bulk_exact_counts), cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_alignment),	  cmocka_unit_test(test_cache_flush),
		cmocka_unit_test(test_thread_cache_exit), cmocka_unit_test(test_debug_checks),
		cmocka_unit_test(test_storm_rts),	  cmocka_unit_test(test_storm_hts),
		cmocka_unit_test(test_storm_mpmc),	  cmocka_unit_test(test_storm_debug),
		cmocka_unit_test(test_node_placement),	  cmocka_unit_test(test_populate),
	};
	const struct CMUnitTest negative_tests[] = {
		cmocka_unit_test(test_negative),
	};
	int rc = cmocka_run_group_tests_name("pool", pool_tests, NULL, NULL);

	return rc | cmocka_run_group_tests_name("pool_negative", negative_tests, NULL, NULL);
}
