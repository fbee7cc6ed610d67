/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai/alloc.h: size classes, alignment, realloc, calloc, usable size,
 * negative input, cross-thread free storms with content checks, thread
 * churn without growth of committed memory, and the stats API.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_int.h"
#include "moirai/alloc.h"
#include "moirai/numa.h"
#include "testutil.h"

/*
 * Byte i of a block filled with @seed is (seed + 7 i) mod 256.  Done with
 * memcpy/memcmp against a period-256 pattern so that sanitizer builds stay
 * fast (7 * 183 = 1 mod 256 gives the phase of @seed).
 */
#define PAT_LEN 65536
static unsigned char pattern[PAT_LEN + 256];

static void pattern_init(void)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 7);
}

static const unsigned char *pattern_at(unsigned seed)
{
	return pattern + ((seed * 183u) & 255u);
}

static void fill(void *p, size_t n, unsigned seed)
{
	const unsigned char *pat = pattern_at(seed);

	for (size_t off = 0; off < n; off += PAT_LEN)
		memcpy((char *)p + off, pat, n - off < PAT_LEN ? n - off : PAT_LEN);
}

static int check(const void *p, size_t n, unsigned seed)
{
	const unsigned char *pat = pattern_at(seed);

	for (size_t off = 0; off < n; off += PAT_LEN)
		if (memcmp((const char *)p + off, pat, n - off < PAT_LEN ? n - off : PAT_LEN))
			return -1;
	return 0;
}

/* ---- basic ---------------------------------------------------------- */

static void test_every_class(void **state)
{
	(void)state;
	/* The class table: every small size gets the smallest class that holds it. */
	for (size_t size = 1, c = 0; size <= SMALL_MAX; size++) {
		if (size > moirai__class_size[c])
			c++;
		assert_int_equal(moirai__size_class(size), c);
		assert_true(moirai__class_size[c] >= size);
	}
	for (unsigned c = 0; c < NUM_CLASSES; c++) {
		size_t bs = moirai__class_size[c];
		size_t lo = c ? moirai__class_size[c - 1] + 1 : 1;
		void *p[3];

		/* Class boundaries map exactly, and waste stays bounded. */
		assert_int_equal(moirai__size_class(bs), c);
		assert_int_equal(moirai__size_class(lo), c);
		if (lo > 128)
			assert_true((bs - lo) * 9 < bs);
		p[0] = moirai_malloc(lo);
		p[1] = moirai_malloc(bs);
		p[2] = moirai_malloc(bs);
		for (int i = 0; i < 3; i++) {
			assert_non_null(p[i]);
			assert_int_equal((uintptr_t)p[i] % 16, 0);
			assert_true(moirai_usable_size(p[i]) >= (i ? bs : lo));
			fill(p[i], i ? bs : lo, c + i);
		}
		assert_ptr_not_equal(p[1], p[2]);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(check(p[i], i ? bs : lo, c + i), 0);
			moirai_free(p[i]);
		}
		assert_true(moirai__heap_is_valid(moirai__tld.local));
	}
}

/*
 * A bin's bound starts shallow and doubles on overflow up to its cap; a
 * heap that takes new slabs empties the caches of classes that stayed idle
 * (bins_reclaim), and a flush makes every bin shallow again.
 */
static void test_bin_slow_start_and_reclaim(void **state)
{
	enum { N8K = 100, N20K = 30 };
	unsigned c8k = moirai__size_class(8192), c20k = moirai__size_class(20000);
	void *p[N8K], *q[N20K];
	struct heap *h;

	(void)state;
	if (moirai__alloc_tcache_max == 0)
		skip(); /* no caches (ASan) */
	p[0] = moirai_malloc(8192);
	moirai_free(p[0]);
	moirai_alloc_thread_flush();
	p[0] = moirai_malloc(8192);
	h = moirai__tld.local;
	assert_non_null(h);
	for (unsigned c = 0; c < NUM_CLASSES; c++)
		assert_int_equal(h->bins[c].max, moirai__bin_start(c));
	assert_true(moirai__bin_start(c8k) < moirai__bin_max(c8k));
	for (int i = 1; i < N8K; i++)
		assert_non_null(p[i] = moirai_malloc(8192));
	for (int i = 0; i < N8K; i++)
		moirai_free(p[i]);
	/* 100 frees in a row: grown to the cap, which the bin holds. */
	assert_int_equal(h->bins[c8k].max, moirai__bin_max(c8k));
	assert_true(h->bins[c8k].count > moirai__bin_start(c8k));
	assert_true((size_t)h->bins[c8k].count * 8192 > BINS_RECLAIM_BYTES);
	assert_true(moirai__heap_is_valid(h));
	/* 10 new slabs of another class: the idle 8 KiB cache goes back. */
	for (int i = 0; i < N20K; i++)
		assert_non_null(q[i] = moirai_malloc(20000));
	assert_int_equal(h->bins[c8k].count, 0);
	assert_int_equal(h->bins[c8k].max, moirai__bin_start(c8k));
	assert_true(moirai__heap_is_valid(h));
	for (int i = 0; i < N20K; i++)
		moirai_free(q[i]);
	assert_true(h->bins[c20k].count <= h->bins[c20k].max);
	assert_true(moirai__heap_is_valid(h));
}

static void test_large_and_huge(void **state)
{
	static const size_t sizes[] = { 32769,	       65536,	100000, 1 << 20,
					(1 << 20) + 1, 3 << 20, 9 << 20 };

	(void)state;
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(sizes); i++) {
		void *p = moirai_malloc(sizes[i]);

		assert_non_null(p);
		assert_true(moirai_usable_size(p) >= sizes[i]);
		fill(p, sizes[i], (unsigned)i);
		void *q = moirai_malloc(sizes[i]);

		assert_non_null(q);
		fill(q, sizes[i], (unsigned)i + 1);
		assert_int_equal(check(p, sizes[i], (unsigned)i), 0);
		moirai_free(p);
		assert_int_equal(check(q, sizes[i], (unsigned)i + 1), 0);
		moirai_free(q);
	}
}

static void test_alignment(void **state)
{
	(void)state;
	/* Every power of two to 64 KiB, then 256 KiB, 2 MiB and 8 MiB. */
	for (size_t a = 1; a <= ((size_t)8 << 20); a <<= (a >= 65536 ? 2 + (a == (1 << 18)) : 1)) {
		static const size_t sizes[] = { 1, 24, 100, 4096, 40000, 3 << 20 };

		for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(sizes); i++) {
			void *p = moirai_aligned_alloc(a, sizes[i]);
			void *q = moirai_aligned_alloc(a, sizes[i]);

			assert_non_null(p);
			assert_non_null(q);
			assert_int_equal((uintptr_t)p % a, 0);
			assert_int_equal((uintptr_t)q % a, 0);
			assert_true(moirai_usable_size(p) >= sizes[i]);
			/* Head and tail of each block: enough to catch overlap. */
			size_t n = sizes[i] < 8192 ? sizes[i] : 4096;
			char *pt = (char *)p + sizes[i] - n, *qt = (char *)q + sizes[i] - n;

			fill(p, n, 3);
			fill(q, n, 4);
			fill(pt, n, 5);
			fill(qt, n, 6);
			assert_int_equal(check(p, n, sizes[i] < 8192 ? 5 : 3), 0);
			assert_int_equal(check(pt, n, 5), 0);
			moirai_free(p);
			assert_int_equal(check(q, n, sizes[i] < 8192 ? 6 : 4), 0);
			assert_int_equal(check(qt, n, 6), 0);
			moirai_free(q);
		}
	}
}

static void test_realloc_grow_shrink(void **state)
{
	size_t n = 1;
	char *p = moirai_realloc(NULL, 1);

	(void)state;
	assert_non_null(p);
	p[0] = 0;
	/* Grow through every kind (small, large, huge), keeping content. */
	while (n < ((size_t)5 << 20)) {
		size_t m = n * 3 / 2 + 1;

		p = moirai_realloc(p, m);
		assert_non_null(p);
		for (size_t i = 0; i < n; i += 97)
			assert_int_equal(p[i], (char)(i % 251));
		for (size_t i = 0; i < m; i++)
			p[i] = (char)(i % 251);
		n = m;
	}
	/* Shrink back down; the prefix survives. */
	while (n > 8) {
		n /= 3;
		p = moirai_realloc(p, n);
		assert_non_null(p);
		for (size_t i = 0; i < n; i += 13)
			assert_int_equal(p[i], (char)(i % 251));
	}
	errno = 0;
	assert_null(moirai_realloc(p, 0));
}

static void test_calloc_zero_overflow(void **state)
{
	(void)state;
	for (size_t n = 1; n < (4 << 20); n = n * 5 + 3) {
		unsigned char *p = moirai_malloc(n);

		memset(p, 0xab, n);
		moirai_free(p);
		p = moirai_calloc(n, 1);
		assert_non_null(p);
		for (size_t i = 0; i < n; i++)
			if (p[i])
				fail_msg("calloc(%zu) byte %zu is %d", n, i, p[i]);
		moirai_free(p);
	}
	errno = 0;
	assert_null(moirai_calloc(SIZE_MAX / 2, 3));
	assert_int_equal(errno, ENOMEM);
	assert_null(moirai_calloc((size_t)1 << 33, (size_t)1 << 33));
	assert_int_equal(errno, ENOMEM);
}

static void test_node_and_ptr(void **state)
{
	int node = -1;

	(void)state;
	for (int n = 0; n < moirai_numa_node_count(); n++)
		if (moirai_alloc_node_is_available(n)) {
			node = n;
			break;
		}
	assert_true(node >= 0);
	void *p = moirai_malloc_node(100, node);

	assert_non_null(p);
	assert_int_equal(moirai_alloc_ptr_node(p), node);
	moirai_free(p);
	p = moirai_malloc_node_flags(5000, 4096, node, 0);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 4096, 0);
	assert_int_equal(moirai_alloc_ptr_node(p), node);
	moirai_free(p);
}

/* ---- negative input ------------------------------------------------- */

static void test_negative(void **state)
{
	int x;
	char stack[64];
	void *libc = malloc(64);

	(void)state;
	errno = 0;
	assert_null(moirai_malloc(0));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(moirai_last_error(), "zero size"));
	errno = 0;
	assert_null(moirai_malloc(SIZE_MAX));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(moirai_malloc(SIZE_MAX - 100));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(moirai_calloc(0, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(moirai_aligned_alloc(0, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(moirai_aligned_alloc(24, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(moirai_aligned_alloc((size_t)1 << 40, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(moirai_aligned_alloc(64, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(moirai_malloc_node(8, -7));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(moirai_last_error(), "node"));
	errno = 0;
	assert_null(moirai_malloc_node(8, 100000));
	assert_int_equal(errno, ENODEV);
	assert_non_null(strstr(moirai_last_error(), "does not exist"));
	errno = 0;
	assert_null(moirai_malloc_node_flags(8, 0, 0, 0x80));
	assert_int_equal(errno, EINVAL);
	/* Foreign pointers: ignored with a message, never a crash. */
	moirai_free(NULL);
	moirai_clear_error();
	moirai_free(&x);
	assert_non_null(strstr(moirai_last_error(), "foreign"));
	moirai_free(stack + 8);
	moirai_free(libc);
	free(libc);
	assert_int_equal(moirai_usable_size(NULL), 0);
	moirai_clear_error();
	assert_int_equal(moirai_usable_size(&x), 0);
	assert_non_null(strstr(moirai_last_error(), "not from moirai_malloc"));
	assert_int_equal(moirai_alloc_ptr_node(&x), -EINVAL);
	errno = 0;
	assert_null(moirai_realloc(&x, 10));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(moirai_alloc_stats_get(0, NULL), -EINVAL);
	struct moirai_alloc_stats st;

	assert_int_equal(moirai_alloc_stats_get(-5, &st), -EINVAL);
	assert_int_equal(moirai_alloc_stats_get(100000, &st), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "does not exist"));
	assert_int_equal(moirai_alloc_heap_stats_get(100000, &st), -ENODEV);
	assert_int_equal(moirai_alloc_heap_stats_get(-3, &st), -EINVAL);
	/* One node vocabulary: the allocator and its stats answer a bad node
	 * with the resolver's own code and words (numa/resolve.c). */
	static const int bad_nodes[] = { -7, 100000 };

	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(bad_nodes); i++) {
		int node = bad_nodes[i], want = moirai_numa_node_resolve(node);
		char why[256];

		snprintf(why, sizeof(why), "%s", moirai_last_error());
		assert_true(want < 0);
		errno = 0;
		assert_null(moirai_malloc_node(8, node));
		assert_int_equal(errno, -want);
		assert_non_null(strstr(moirai_last_error(), why));
		assert_int_equal(moirai_alloc_stats_get(node, &st), want);
		assert_non_null(strstr(moirai_last_error(), why));
		assert_int_equal(moirai_alloc_heap_stats_get(node, &st), want);
		assert_non_null(strstr(moirai_last_error(), why));
	}
	assert_int_equal(moirai_alloc_stats_print(NULL), -EINVAL);
	/* A stream that refuses writes: -EIO, with the reason. */
	FILE *ro = fopen("/dev/null", "r");

	assert_non_null(ro);
	moirai_clear_error();
	assert_int_equal(moirai_alloc_stats_print(ro), -EIO);
	assert_non_null(strstr(moirai_last_error(), "cannot write"));
	fclose(ro);
	assert_false(moirai_alloc_node_is_available(-1));
	assert_false(moirai_alloc_node_is_available(100000));
}

/* ---- threads -------------------------------------------------------- */

#define STORM_SLOTS 1024

struct storm {
	_Atomic(uintptr_t) slot[STORM_SLOTS]; /* 0 = empty */
	_Atomic long produced, consumed;
	_Atomic int bad;
	long total;
};

static size_t storm_size(long k)
{
	return 8 + ((size_t)k * 2654435761u) % 3000;
}

/* Producers allocate and fill; consumers verify and free (remote frees). */
static void *storm_producer(void *arg)
{
	struct storm *s = arg;

	for (;;) {
		long k = atomic_fetch_add_explicit(&s->produced, 1, memory_order_relaxed);

		if (k >= s->total)
			break;
		size_t n = storm_size(k);
		unsigned char *p = moirai_malloc(n);

		if (!p) {
			atomic_store(&s->bad, 1);
			break;
		}
		memcpy(p, &k, sizeof(k));
		fill(p + 8, n - 8, (unsigned)k);
		size_t i = (size_t)k % STORM_SLOTS;
		uintptr_t empty = 0;

		/* Release pairs with the consumer's acquire exchange. */
		while (!atomic_compare_exchange_weak_explicit(&s->slot[i], &empty, (uintptr_t)p,
							      memory_order_release,
							      memory_order_relaxed)) {
			empty = 0;
			if (atomic_load(&s->bad))
				return NULL;
			sched_yield();
		}
	}
	return NULL;
}

static void *storm_consumer(void *arg)
{
	struct storm *s = arg;
	size_t i = 0;

	while (atomic_load_explicit(&s->consumed, memory_order_relaxed) < s->total &&
	       !atomic_load(&s->bad)) {
		uintptr_t v = atomic_load_explicit(&s->slot[i], memory_order_relaxed);

		/* Acquire pairs with the producer's release CAS. */
		if (v)
			v = atomic_exchange_explicit(&s->slot[i], 0, memory_order_acquire);
		i = (i + 1) % STORM_SLOTS;
		if (!v) {
			if (i == 0)
				sched_yield();
			continue;
		}
		unsigned char *p = (unsigned char *)v;
		long k;

		memcpy(&k, p, sizeof(k));
		if (k < 0 || k >= s->total || moirai_usable_size(p) < storm_size(k) ||
		    check(p + 8, storm_size(k) - 8, (unsigned)k) != 0)
			atomic_store(&s->bad, 1);
		moirai_free(p);
		atomic_fetch_add_explicit(&s->consumed, 1, memory_order_relaxed);
	}
	return NULL;
}

static void run_storm(int producers, int consumers, long total)
{
	struct storm *s = calloc(1, sizeof(*s));
	pthread_t t[8];
	struct moirai_alloc_stats before, after;

	assert_non_null(s);
	s->total = total;
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &before), 0);
	for (int i = 0; i < producers; i++)
		assert_int_equal(pthread_create(&t[i], NULL, storm_producer, s), 0);
	for (int i = 0; i < consumers; i++)
		assert_int_equal(pthread_create(&t[producers + i], NULL, storm_consumer, s), 0);
	for (int i = 0; i < producers + consumers; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&s->bad), 0);
	assert_int_equal(atomic_load(&s->consumed), total);
	/* Producers' heaps were abandoned; this thread's stays consistent. */
	if (moirai__tld.local)
		assert_true(moirai__heap_is_valid(moirai__tld.local));
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &after), 0);
	/*
	 * Frees after a producer exited wait in its abandoned heap until the
	 * next adoption, so only a lower bound holds here.
	 */
	assert_true(after.remote_frees - before.remote_frees >= (uint64_t)total / 2);
	free(s);
}

static void test_remote_free_storm(void **state)
{
	(void)state;
	alarm(120);
	run_storm(1, 1, 150000 * test_scale());
	run_storm(2, 2, 100000 * test_scale());
	alarm(0);
}

/* A block freed by another thread returns to its owner and is reused. */
struct handoff {
	void *blocks[256];
};

static void *free_all(void *arg)
{
	struct handoff *h = arg;

	for (int i = 0; i < 256; i++)
		moirai_free(h->blocks[i]);
	return NULL;
}

static void test_remote_reuse(void **state)
{
	struct handoff h;
	pthread_t t;
	struct moirai_alloc_stats st0, st1;

	(void)state;
	/* Warm up: this thread's heap exists. */
	moirai_free(moirai_malloc(48));
	int node = moirai__tld.local->node;

	assert_int_equal(moirai_alloc_heap_stats_get(node, &st0), 0);
	for (int i = 0; i < 256; i++) {
		h.blocks[i] = moirai_malloc(48);
		assert_non_null(h.blocks[i]);
		memset(h.blocks[i], 0x5a, 48);
	}
	assert_int_equal(pthread_create(&t, NULL, free_all, &h), 0);
	pthread_join(t, NULL);
	/* The owner's slow path drains its remote list: the blocks come back. */
	enum { AGAIN = 1024 };
	void **again = calloc(AGAIN, sizeof(void *));
	int reused = 0;

	assert_non_null(again);
	for (int i = 0; i < AGAIN; i++) {
		again[i] = moirai_malloc(48);
		assert_non_null(again[i]);
	}
	for (int j = 0; j < 256; j++)
		for (int i = 0; i < AGAIN; i++)
			if (again[i] == h.blocks[j]) {
				reused++;
				break;
			}
	assert_int_equal(reused, 256);
	assert_true(moirai__heap_is_valid(moirai__tld.heaps[node]));
	assert_int_equal(moirai_alloc_heap_stats_get(node, &st1), 0);
	assert_int_equal(st1.remote_frees - st0.remote_frees, 256);
	for (int i = 0; i < AGAIN; i++)
		moirai_free(again[i]);
	free(again);
}

static void *churn_thread(void *arg)
{
	void *p[64];

	(void)arg;
	for (int i = 0; i < 64; i++) {
		p[i] = moirai_malloc(16 + (size_t)i * 40);
		if (p[i])
			memset(p[i], i, 16);
	}
	void *big = moirai_malloc(100000);

	for (int i = 0; i < 64; i += 2)
		moirai_free(p[i]);
	moirai_free(big);
	for (int i = 1; i < 64; i += 2)
		moirai_free(p[i]);
	return NULL;
}

static void test_thread_churn(void **state)
{
	struct moirai_alloc_stats s0, s1;
	long rounds = 2000 * test_scale();

	(void)state;
	alarm(120);
	/* Warm: the first few threads set up heaps and segments. */
	for (int i = 0; i < 8; i++) {
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, churn_thread, NULL), 0);
		pthread_join(t, NULL);
	}
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s0), 0);
	for (long i = 0; i < rounds; i += 2) {
		pthread_t t[2];

		assert_int_equal(pthread_create(&t[0], NULL, churn_thread, NULL), 0);
		assert_int_equal(pthread_create(&t[1], NULL, churn_thread, NULL), 0);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
	}
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s1), 0);
	/*
	 * Heaps are adopted, not created per thread, and memory does not grow:
	 * at most two live threads per node may each need a heap (and its
	 * segments) that warm-up did not create.
	 */
	uint64_t nodes = 0;

	for (int n = 0; n < moirai_numa_node_count(); n++)
		nodes += moirai_alloc_node_is_available(n);
	assert_true(s1.heaps <= s0.heaps + 2 * nodes);
	assert_true(s1.committed <= s0.committed + 2 * nodes * 2 * SEG_SIZE);
	assert_true(s1.in_use <= s0.in_use + 2 * nodes * 65536);
	alarm(0);
}

static void test_stats(void **state)
{
	struct moirai_alloc_stats s0, s1, h;
	void *p;
	FILE *f = fopen("/dev/null", "w");

	(void)state;
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s0), 0);
	p = moirai_malloc(5 << 20);
	assert_non_null(p);
	memset(p, 1, 5 << 20);
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s1), 0);
	assert_true(s1.huge_in_use >= s0.huge_in_use + (5 << 20));
	assert_true(s1.committed >= s1.huge_in_use);
	assert_int_equal(s1.committed,
			 s1.committed_hugetlb + s1.committed_thp + s1.committed_small);
	assert_true(s1.reserved >= s1.committed);
	int node = moirai_alloc_ptr_node(p);

	moirai_free(p);
	assert_int_equal(moirai_alloc_stats_get(node, &s1), 0);
	assert_int_equal(s1.node, node);
	assert_true(s1.available);
	assert_non_null(s1.page_mode);
	assert_int_equal(moirai_alloc_heap_stats_get(node, &h), 0);
	assert_true(h.in_use <= s1.in_use);
	assert_non_null(f);
	assert_int_equal(moirai_alloc_stats_print(f), 0);
	fclose(f);
}

static void test_decommit(void **state)
{
	struct moirai_alloc_stats s0, s1;
	enum { N = 24 };
	void *p[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		p[i] = moirai_malloc(3 << 20);
		assert_non_null(p[i]);
		memset(p[i], 1, 3 << 20);
	}
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s0), 0);
	for (int i = 0; i < N; i++)
		moirai_free(p[i]);
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s1), 0);
	/* Above the threshold (16 MiB in this test) free segments go back. */
	assert_true(s1.decommitted > s0.decommitted);
	assert_true(s1.committed < s0.committed);
	assert_true(s1.committed - s1.in_use <= (uint64_t)(16 << 20) + 8 * SEG_SIZE);
}

static _Atomic int fork_stop;

static void *arena_hammer(void *arg)
{
	(void)arg;
	while (!atomic_load(&fork_stop)) {
		void *p = moirai_malloc(3 << 20); /* takes the arena lock */

		moirai_free(p);
	}
	return NULL;
}

static void child_allocates(void *arg)
{
	(void)arg;
	void *p = moirai_malloc(3 << 20), *q = moirai_malloc(100);

	_exit(p && q ? 0 : 3);
}

/* fork() while another thread is inside the arena must not deadlock. */
static void test_fork_while_allocating(void **state)
{
	pthread_t t;

	(void)state;
	alarm(60);
	atomic_store(&fork_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, arena_hammer, NULL), 0);
	for (int i = 0; i < 20; i++) {
		int st = test_run_in_child(child_allocates, NULL);

		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	atomic_store(&fork_stop, 1);
	pthread_join(t, NULL);
	alarm(0);
}

/* A heap holding many free slabs in partly used segments gives pages back. */
static void test_heap_decommit(void **state)
{
	enum { N = 24576, BS = 1000 }; /* 24 MiB of 1 KiB blocks */
	void **p = calloc(N, sizeof(void *));
	struct segment *kept[64];
	int nkept = 0;
	struct moirai_alloc_stats peak, after, again;

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < N; i++) {
		p[i] = moirai_malloc(BS);
		assert_non_null(p[i]);
		memset(p[i], 1, BS);
	}
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &peak), 0);
	/* Keep one block per segment so no segment can go back whole. */
	for (int i = 0; i < N; i++) {
		struct segment *seg = moirai__seg_of(p[i]);
		bool seen = false;

		for (int k = 0; k < nkept; k++)
			seen |= kept[k] == seg;
		if (!seen && nkept < 64) {
			kept[nkept++] = seg;
			continue;
		}
		moirai_free(p[i]);
		p[i] = NULL;
	}
	moirai_alloc_thread_flush();
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &after), 0);
	assert_true(nkept >= 8);
	bool hugetlb = false;

	for (int k = 0; k < nkept; k++)
		hugetlb |= kept[k]->mode == MODE_HUGETLB;
	/* Hugetlb pages cannot be given back 64 KiB at a time: kept whole. */
	if (!hugetlb) {
		assert_true(after.decommitted >= peak.decommitted + (8u << 20));
		assert_true(after.committed + (8u << 20) <= peak.committed);
	}
	int node = kept[0]->node;

	assert_true(moirai__heap_is_valid(moirai__tld.heaps[node]));
	/* The cold slabs come back into use. */
	bool *fresh = calloc(N, sizeof(bool));

	assert_non_null(fresh);
	for (int i = 0; i < N; i++)
		if (!p[i]) {
			p[i] = moirai_malloc(BS);
			assert_non_null(p[i]);
			fill(p[i], BS, (unsigned)i);
			fresh[i] = true;
		}
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &again), 0);
	assert_true(hugetlb || again.committed > after.committed);
	for (int i = 0; i < N; i++) {
		if (fresh[i])
			assert_int_equal(check(p[i], BS, (unsigned)i), 0);
		moirai_free(p[i]);
	}
	moirai_alloc_thread_flush();
	assert_true(moirai__heap_is_valid(moirai__tld.heaps[node]));
	free(fresh);
	free(p);
}

/*
 * A producer of large runs (256 KiB) whose blocks another thread frees:
 * the runs must come home and be reused, so committed memory stays flat
 * however many pass through (it once grew by 256 KiB per block).
 */
static void *_Atomic large_slot;
static atomic_int large_done;

static void *large_consumer(void *arg)
{
	(void)arg;
	while (!atomic_load(&large_done) || atomic_load(&large_slot)) {
		void *p = atomic_exchange(&large_slot, NULL);

		if (p)
			moirai_free(p);
	}
	return NULL;
}

static void test_remote_large_reuse(void **state)
{
	struct moirai_alloc_stats st;
	pthread_t t;
	long n = 4096 / TEST_SAN_DIVISOR;

	(void)state;
	atomic_store(&large_done, 0);
	assert_int_equal(pthread_create(&t, NULL, large_consumer, NULL), 0);
	for (long i = 0; i < n; i++) {
		char *p = moirai_malloc(256 << 10);

		assert_non_null(p);
		p[0] = (char)i;
		while (atomic_load(&large_slot))
			sched_yield();
		atomic_store(&large_slot, p);
	}
	atomic_store(&large_done, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(moirai_alloc_stats_get(MOIRAI_NODE_ANY, &st), 0);
	/* 4096 x 256 KiB = 1 GiB passed through; a few segments may stay. */
	assert_true(st.committed < (128ull << 20));
}

int main(void)
{
	const struct CMUnitTest basic[] = {
		cmocka_unit_test(test_every_class),
		cmocka_unit_test(test_bin_slow_start_and_reclaim),
		cmocka_unit_test(test_large_and_huge),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_realloc_grow_shrink),
		cmocka_unit_test(test_calloc_zero_overflow),
		cmocka_unit_test(test_node_and_ptr),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_decommit),
		cmocka_unit_test(test_heap_decommit),
	};
	const struct CMUnitTest negative[] = {
		cmocka_unit_test(test_negative),
	};
	const struct CMUnitTest threads[] = {
		cmocka_unit_test(test_remote_reuse),
		cmocka_unit_test(test_remote_free_storm),
		cmocka_unit_test(test_remote_large_reuse),
		cmocka_unit_test(test_thread_churn),
		cmocka_unit_test(test_fork_while_allocating),
	};
	int fails = 0;

	pattern_init();
	moirai_option_set(MOIRAI_OPT_DECOMMIT_THRESHOLD, 16 << 20);
	fails += cmocka_run_group_tests_name("alloc basic", basic, NULL, NULL);
	fails += cmocka_run_group_tests_name("alloc negative", negative, NULL, NULL);
	fails += cmocka_run_group_tests_name("alloc threads", threads, NULL, NULL);
	return fails ? 1 : 0;
}
