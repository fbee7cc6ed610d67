/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench alloc: moirai_malloc/moirai_free against glibc, jemalloc,
 * mimalloc and tcmalloc on five workloads: single-thread small
 * alloc/free (16-256 B), producer-consumer cross-thread free, a
 * larson-style mixed workload on 2 threads that trade their blocks, and
 * random live sets (live_*): a large set of blocks of mixed sizes, one
 * random block replaced per step, on 1 thread or on 2 threads that hand a
 * quarter of their frees to each other.  The first three hit every thread
 * cache's hottest path; the live sets are shaped like real programs, whose
 * working set is larger than the caches and than L2.
 *
 * jemalloc and tcmalloc replace malloc when loaded, so no two peers can
 * share a process fairly.  Every (case, allocator) pair therefore runs in
 * its own fresh process (bench_run_isolated): the peers by LD_PRELOAD of
 * their shared library with the workload calling malloc/free, which is how
 * they are deployed; glibc with no preload; moirai through its own API.
 * The child checks that the preload took effect (a symbol only that
 * allocator exports), runs the workload once at a tenth of its size to warm
 * up and once measured, and reports its own peak RSS; the framework repeats
 * that with a fresh child per repeat, allocators interleaved.  All
 * allocators are called through the same function pointers, so none is
 * inlined.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "moirai.h"

struct impl {
	const char *name;
	const char *preload; /* library to LD_PRELOAD, or NULL */
	const char *witness; /* symbol that proves the preload is active */
	void *(*alloc)(size_t);
	void (*free)(void *);
};

static void *libc_alloc(size_t n)
{
	return malloc(n);
}

static void libc_free(void *p)
{
	free(p);
}

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"

static const struct impl impls[] = {
	{ "moirai", NULL, NULL, moirai_malloc, moirai_free },
	{ "glibc", NULL, NULL, libc_alloc, libc_free },
	{ "jemalloc", LIBDIR "libjemalloc.so.2", "mallctl", libc_alloc, libc_free },
	{ "mimalloc", LIBDIR "libmimalloc.so.2", "mi_malloc", libc_alloc, libc_free },
	{ "tcmalloc", LIBDIR "libtcmalloc_minimal.so.4", "tc_malloc", libc_alloc, libc_free },
};

/* Indirect calls for every allocator alike. */
static void *(*volatile alloc_fn)(size_t);
static void (*volatile free_fn)(void *);

/* ---- single thread small ------------------------------------------- */

#define BATCH 100

static int wl_small(const struct bench_ctx *ctx, struct bench_result *out)
{
	size_t sizes[BATCH];
	void *p[BATCH];
	long rounds = bench_iters(ctx, 20000000) / BATCH;
	void *(*A)(size_t) = alloc_fn;
	void (*F)(void *) = free_fn;

	bench_pin(ctx->cpu_a);
	for (int i = 0; i < BATCH; i++)
		sizes[i] = 16 + (size_t)(i * 37) % 241;
	for (long r = -rounds / 10; r < rounds; r++) {
		static uint64_t t0;

		if (r == 0)
			t0 = moirai_now_ns();
		for (int i = 0; i < BATCH; i++) {
			p[i] = A(sizes[i]);
			*(volatile char *)p[i] = (char)i;
		}
		for (int i = 0; i < BATCH; i++)
			F(p[i]);
		if (r == rounds - 1)
			out->ns_per_op = (double)(moirai_now_ns() - t0) / (double)(rounds * BATCH);
	}
	out->ops = rounds * BATCH;
	return 0;
}

/* ---- producer-consumer ---------------------------------------------- */

#define RING 1024

struct pc {
	alignas(64) _Atomic uint64_t head;
	alignas(64) _Atomic uint64_t tail;
	alignas(64) void *slot[RING];
	long total;
	int cpu;
};

static void *pc_consumer(void *arg)
{
	struct pc *q = arg;
	void (*F)(void *) = free_fn;
	uint64_t t = 0;

	bench_pin(q->cpu);
	unsigned spins = 0;

	while ((long)t < q->total) {
		/* Acquire pairs with the producer's release store of head. */
		uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);

		/* On a shared box the peer may be descheduled: do not burn its CPU. */
		if (t == h && ++spins > 1000) {
			sched_yield();
			spins = 0;
		}

		while (t < h) {
			F(q->slot[t % RING]);
			t++;
		}
		/* Release pairs with the producer's acquire load of tail. */
		atomic_store_explicit(&q->tail, t, memory_order_release);
	}
	return NULL;
}

static int wl_cross(const struct bench_ctx *ctx, struct bench_result *out)
{
	struct pc *q = calloc(1, sizeof(*q));
	void *(*A)(size_t) = alloc_fn;
	pthread_t t;
	uint64_t h = 0, t0;

	if (!q)
		return -ENOMEM;
	q->total = bench_iters(ctx, 4000000);
	q->cpu = ctx->cpu_b;
	bench_pin(ctx->cpu_a);
	t0 = moirai_now_ns();
	if (pthread_create(&t, NULL, pc_consumer, q)) {
		free(q);
		return -EAGAIN;
	}
	while ((long)h < q->total) {
		void *p = A(64);

		memset(p, 1, 16);
		for (unsigned spins = 0;
		     h - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING;)
			if (++spins > 1000) {
				sched_yield();
				spins = 0;
			}
		q->slot[h % RING] = p;
		h++;
		if ((h & 31) == 0 || (long)h == q->total)
			atomic_store_explicit(&q->head, h, memory_order_release);
	}
	pthread_join(t, NULL);
	out->ns_per_op = (double)(moirai_now_ns() - t0) / (double)q->total;
	out->ops = q->total;
	free(q);
	return 0;
}

/* ---- larson-style ---------------------------------------------------- */

#define SLOTS 1000

struct larson {
	void *slots[2][SLOTS];
	pthread_barrier_t bar;
	long epochs, per_epoch;
	int cpu[2];
};

struct larson_arg {
	struct larson *l;
	int id;
};

static void *larson_thread(void *arg)
{
	struct larson_arg *a = arg;
	struct larson *l = a->l;
	void *(*A)(size_t) = alloc_fn;
	void (*F)(void *) = free_fn;
	uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(a->id + 1);

	bench_pin(l->cpu[a->id]);
	for (long e = 0; e < l->epochs; e++) {
		/* Each epoch a thread works on the other one's blocks. */
		void **s = l->slots[(a->id + e) & 1];

		for (long i = 0; i < l->per_epoch; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size_t k = (size_t)(x % SLOTS);
			size_t n = 16 + (size_t)((x >> 20) % 1009);

			F(s[k]);
			s[k] = A(n);
			*(volatile char *)s[k] = 1;
		}
		pthread_barrier_wait(&l->bar);
	}
	return NULL;
}

static int wl_larson(const struct bench_ctx *ctx, struct bench_result *out)
{
	struct larson *l = calloc(1, sizeof(*l));
	struct larson_arg args[2];
	pthread_t t[2];
	uint64_t t0;

	if (!l)
		return -ENOMEM;
	l->per_epoch = 20000;
	l->epochs = bench_iters(ctx, 4000000) / l->per_epoch;
	l->cpu[0] = ctx->cpu_a;
	l->cpu[1] = ctx->cpu_b;
	pthread_barrier_init(&l->bar, NULL, 2);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < SLOTS; i++)
			l->slots[k][i] = alloc_fn(16 + (size_t)(i * 7) % 1009);
	t0 = moirai_now_ns();
	for (int k = 0; k < 2; k++) {
		args[k] = (struct larson_arg){ l, k };
		pthread_create(&t[k], NULL, larson_thread, &args[k]);
	}
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	out->ns_per_op = (double)(moirai_now_ns() - t0) / (double)(2 * l->epochs * l->per_epoch);
	out->ops = 2 * l->epochs * l->per_epoch;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < SLOTS; i++)
			free_fn(l->slots[k][i]);
	pthread_barrier_destroy(&l->bar);
	free(l);
	return 0;
}

/* ---- random live sets ------------------------------------------------- */

/*
 * A live set of N slots, each holding a block; a step frees the block of a
 * random slot and puts a new block of a random size there.  The sizes are
 * a mix shaped like what servers allocate, most requests small and most
 * bytes in the rare large ones (docs/bench.md):
 *
 *   share   bytes (uniform within)
 *   55.0%   16 .. 64
 *   30.0%   65 .. 256
 *   12.0%   257 .. 2048
 *    2.7%   2049 .. 16384
 *    0.3%   16385 .. 65536
 *
 * which averages 580 B a block: 5.8 MB live for N = 10^4 (more than L2),
 * 580 MB for N = 10^6 (more than any cache).  Every block written is
 * touched once per 4 KiB page and at its last byte, so that the pages a
 * program would use are resident and peak RSS means what it says.  The
 * generator is seeded: every allocator sees the same sizes and the same
 * slots in the same order.
 */
#define LIVE_SEED 0x6d6f69726169ULL /* "moirai" */

/* xorshift64* (Vigna): fast, and good enough to pick slots and sizes. */
static inline uint64_t live_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n) from the high half of @r, without a division. */
static inline size_t live_index(uint64_t r, size_t n)
{
	return (size_t)(((r >> 32) * (uint64_t)n) >> 32);
}

static inline size_t live_size(uint64_t r)
{
	unsigned band = (unsigned)((r >> 40) % 1000);
	size_t u = (size_t)(r & 0xffffffffu);

	if (band < 550)
		return 16 + u % 49;
	if (band < 850)
		return 65 + u % 192;
	if (band < 970)
		return 257 + u % 1792;
	if (band < 997)
		return 2049 + u % 14336;
	return 16385 + u % 49152;
}

static inline void live_touch(void *p, size_t n)
{
	volatile char *c = p;

	for (size_t off = 0; off < n; off += 4096)
		c[off] = 1;
	c[n - 1] = 1;
}

/* Fill @n slots; returns 0 or -ENOMEM (the filled ones stay filled). */
static int live_fill(void **slot, size_t n, uint64_t *rng)
{
	void *(*A)(size_t) = alloc_fn;

	for (size_t i = 0; i < n; i++) {
		size_t sz = live_size(live_rand(rng));

		slot[i] = A(sz);
		if (!slot[i])
			return -ENOMEM;
		live_touch(slot[i], sz);
	}
	return 0;
}

static void live_empty(void **slot, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_fn(slot[i]);
}

/* One step on @slot: returns false when the allocator returned NULL. */
static inline bool live_step(void **slot, size_t n, uint64_t *rng, void *(*A)(size_t),
			     void (*F)(void *))
{
	size_t k = live_index(live_rand(rng), n);
	size_t sz = live_size(live_rand(rng));

	F(slot[k]);
	slot[k] = A(sz);
	if (!slot[k])
		return false;
	live_touch(slot[k], sz);
	return true;
}

static int wl_live_1thr(const struct bench_ctx *ctx, struct bench_result *out, size_t n,
			long full_steps)
{
	void *(*A)(size_t) = alloc_fn;
	void (*F)(void *) = free_fn;
	long steps = bench_iters(ctx, full_steps), i;
	uint64_t rng = LIVE_SEED, t0, t1;
	void **slot;
	int rc;

	/* Filling the set warms the allocator up: no separate warm-up run. */
	if (ctx->warmup)
		return 0;
	slot = calloc(n, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	bench_pin(ctx->cpu_a);
	rc = live_fill(slot, n, &rng);
	t0 = moirai_now_ns();
	for (i = 0; !rc && i < steps; i++)
		if (!live_step(slot, n, &rng, A, F))
			rc = -ENOMEM;
	t1 = moirai_now_ns();
	live_empty(slot, n);
	free(slot);
	if (rc) {
		snprintf(out->note, sizeof(out->note), "allocation failed");
		return rc;
	}
	out->ns_per_op = (double)(t1 - t0) / (double)steps;
	out->ops = steps;
	return 0;
}

/*
 * Two threads, each with its own half of the live set.  A quarter of the
 * blocks a thread takes out of its set are not freed by it but handed to
 * the other thread through an SPSC queue, which frees them: a remote free
 * (a block allocated by one thread, freed by the other).  Queues are
 * drained every 32 steps and published every 32 hand-offs, as a program
 * would batch them; a sender that finds the queue full drains its own
 * incoming queue while it waits, so the two can never wait on each other.
 */
#define HANDOFF	    4096 /* slots per direction */
#define LIVE_REMOTE 4	 /* 1 in LIVE_REMOTE frees is remote */

struct handoff {
	alignas(64) _Atomic uint64_t head; /* written by the sender */
	alignas(64) _Atomic uint64_t tail; /* written by the receiver */
	alignas(64) atomic_int done;	   /* the sender has sent all it will */
	alignas(64) void *slot[HANDOFF];
};

enum { L2_WAIT, L2_GO, L2_ABORT, L2_CLEANUP };

struct live2 {
	struct handoff to[2]; /* to[i]: blocks for thread i to free */
	/* Start and stop: the threads sleep here, so the timer thread takes no CPU. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready, finished, state;
	size_t n;   /* slots per thread */
	long steps; /* per thread */
	int cpu[2];
	int rc[2];
};

struct live2_arg {
	struct live2 *l;
	int id;
};

/* Thread side: count in on @counter, then sleep until the state leaves @from. */
static int live2_checkin(struct live2 *l, int *counter, int from)
{
	int st;

	pthread_mutex_lock(&l->lock);
	++*counter;
	pthread_cond_broadcast(&l->cond);
	while (l->state == from)
		pthread_cond_wait(&l->cond, &l->lock);
	st = l->state;
	pthread_mutex_unlock(&l->lock);
	return st;
}

/* Timer side: wait for @want check-ins on @counter, then move to @state. */
static uint64_t live2_release(struct live2 *l, int *counter, int want, int state)
{
	uint64_t now;

	pthread_mutex_lock(&l->lock);
	while (*counter < want)
		pthread_cond_wait(&l->cond, &l->lock);
	now = moirai_now_ns();
	l->state = state;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return now;
}

/* Free what the other thread handed us; returns the new tail. */
static uint64_t live_drain(struct handoff *in, uint64_t t, void (*F)(void *))
{
	/* Acquire pairs with the sender's release store of head. */
	uint64_t h = atomic_load_explicit(&in->head, memory_order_acquire);

	if (t == h)
		return t;
	while (t < h) {
		F(in->slot[t % HANDOFF]);
		t++;
	}
	/* Release pairs with the sender's acquire load of tail. */
	atomic_store_explicit(&in->tail, t, memory_order_release);
	return t;
}

static void *live2_thread(void *arg)
{
	struct live2_arg *a = arg;
	struct live2 *l = a->l;
	struct handoff *in = &l->to[a->id], *out = &l->to[1 - a->id];
	void *(*A)(size_t) = alloc_fn;
	void (*F)(void *) = free_fn;
	uint64_t rng = LIVE_SEED * (uint64_t)(a->id + 1), h = 0, t = 0, out_tail = 0;
	void **slot = calloc(l->n, sizeof(*slot));
	int rc = slot ? 0 : -ENOMEM;

	bench_pin(l->cpu[a->id]);
	if (!rc)
		rc = live_fill(slot, l->n, &rng);
	if (live2_checkin(l, &l->ready, L2_WAIT) == L2_ABORT)
		goto out_empty;
	for (long i = 0; !rc && i < l->steps; i++) {
		size_t k = live_index(live_rand(&rng), l->n);
		uint64_t r = live_rand(&rng);
		size_t sz = live_size(r);

		if (r % LIVE_REMOTE == 0) {
			for (unsigned spins = 0; h - out_tail >= HANDOFF;) {
				/* Acquire pairs with the receiver's release of tail. */
				out_tail = atomic_load_explicit(&out->tail, memory_order_acquire);
				if (h - out_tail < HANDOFF)
					break;
				atomic_store_explicit(&out->head, h, memory_order_release);
				t = live_drain(in, t, F);
				if (++spins > 1000) {
					sched_yield();
					spins = 0;
				}
			}
			out->slot[h % HANDOFF] = slot[k];
			/* Release pairs with the receiver's acquire load of head. */
			if ((++h & 31) == 0)
				atomic_store_explicit(&out->head, h, memory_order_release);
		} else {
			F(slot[k]);
		}
		slot[k] = A(sz);
		if (!slot[k]) {
			rc = -ENOMEM;
			break;
		}
		live_touch(slot[k], sz);
		if ((i & 31) == 0)
			t = live_drain(in, t, F);
	}
	atomic_store_explicit(&out->head, h, memory_order_release);
	/* Release: pairs with the receiver's acquire of done; head is final. */
	atomic_store_explicit(&out->done, 1, memory_order_release);
	for (;;) {
		/* Acquire pairs with the release store of done above, in the other thread. */
		bool last = atomic_load_explicit(&in->done, memory_order_acquire);

		t = live_drain(in, t, F);
		if (last && t == atomic_load_explicit(&in->head, memory_order_acquire))
			break;
		sched_yield();
	}
	live2_checkin(l, &l->finished, L2_GO);
out_empty:
	if (slot)
		live_empty(slot, l->n);
	free(slot);
	l->rc[a->id] = rc;
	return NULL;
}

static int wl_live_2thr(const struct bench_ctx *ctx, struct bench_result *out, size_t n,
			long full_steps)
{
	struct live2 *l;
	struct live2_arg args[2];
	pthread_t th[2];
	uint64_t t0 = 0, t1 = 0;
	int rc = 0, made = 0;

	if (ctx->warmup)
		return 0;
	l = aligned_alloc(64, sizeof(*l));
	if (!l)
		return -ENOMEM;
	memset(l, 0, sizeof(*l));
	l->n = n / 2;
	l->steps = bench_iters(ctx, full_steps) / 2;
	l->cpu[0] = ctx->cpu_a;
	l->cpu[1] = ctx->cpu_b;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	for (; made < 2; made++) {
		args[made] = (struct live2_arg){ l, made };
		if (pthread_create(&th[made], NULL, live2_thread, &args[made]))
			break;
	}
	if (made < 2) {
		live2_release(l, &l->ready, made, L2_ABORT);
		rc = -EAGAIN;
	} else {
		t0 = live2_release(l, &l->ready, 2, L2_GO);
		t1 = live2_release(l, &l->finished, 2, L2_CLEANUP);
	}
	for (int k = 0; k < made; k++) {
		pthread_join(th[k], NULL);
		if (l->rc[k] && !rc)
			rc = l->rc[k];
	}
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	if (!rc) {
		out->ops = 2 * l->steps;
		out->ns_per_op = (double)(t1 - t0) / (double)out->ops;
	} else {
		snprintf(out->note, sizeof(out->note), "allocation failed");
	}
	free(l);
	return rc;
}

/*
 * Steps in a full run; --quick divides them by 10, never the live set.
 * The 10^6 sets run in full runs only: building 580 MB in every process
 * (fresh pages, zeroed by the kernel) takes 1-4 s per process on the 2-CPU
 * box, which --quick's 30 s cannot afford 30 times over.
 */
#define LIVE_STEPS_10K 10000000L
#define LIVE_STEPS_1M  4000000L

static int wl_live10k_1(const struct bench_ctx *c, struct bench_result *o)
{
	return wl_live_1thr(c, o, 10000, LIVE_STEPS_10K);
}

static int wl_live1m_1(const struct bench_ctx *c, struct bench_result *o)
{
	return wl_live_1thr(c, o, 1000000, LIVE_STEPS_1M);
}

static int wl_live10k_2(const struct bench_ctx *c, struct bench_result *o)
{
	return wl_live_2thr(c, o, 10000, LIVE_STEPS_10K);
}

static int wl_live1m_2(const struct bench_ctx *c, struct bench_result *o)
{
	return wl_live_2thr(c, o, 1000000, LIVE_STEPS_1M);
}

/* The 10^6 cases: full runs only (see above). */
static bool full_only(bench_fn wl)
{
	return wl == wl_live1m_1 || wl == wl_live1m_2;
}

/* ---- registration ---------------------------------------------------- */

BENCH_SUITE(alloc, "allocator and pools: glibc, jemalloc, mimalloc, tcmalloc, fifo_pool")

static int run_case(const struct bench_ctx *ctx, struct bench_result *out, const char *name,
		    bench_fn wl, const struct impl *im)
{
	int rc;

	if (!bench_is_isolated_child()) {
		/* The child warms up on its own: nothing to do here for it. */
		if (ctx->warmup)
			return 0;
		if (ctx->quick && full_only(wl)) {
			snprintf(out->note, sizeof(out->note), "full runs only (580 MB live set)");
			return -ENOTSUP;
		}
		return bench_run_isolated(ctx, "alloc", name, im->name, im->preload, out);
	}
	if (im->witness && !dlsym(RTLD_DEFAULT, im->witness)) {
		snprintf(out->note, sizeof(out->note), "%s not preloaded", im->name);
		return -ENOTSUP;
	}
	alloc_fn = im->alloc;
	free_fn = im->free;
	rc = wl(ctx, out);
	out->peak_rss_kb = bench_peak_rss_kb();
	return rc;
}

#define CASE_SMALL  "small alloc/free 16-256B"
#define CASE_CROSS  "cross-thread free (prod->cons)"
#define CASE_LARSON "larson-style 2 threads"

#define ALLOC_CASE(NAME, WL, IDX, ID)                                           \
	static int WL##_##ID(const struct bench_ctx *c, struct bench_result *o) \
	{                                                                       \
		return run_case(c, o, NAME, WL, &impls[IDX]);                   \
	}                                                                       \
	BENCH_CASE("alloc", NAME, #ID, WL##_##ID)

#define ALLOC_CASES(IDX, ID)                                        \
	ALLOC_CASE(CASE_SMALL, wl_small, IDX, ID)                   \
	ALLOC_CASE(CASE_CROSS, wl_cross, IDX, ID)                   \
	ALLOC_CASE(CASE_LARSON, wl_larson, IDX, ID)                 \
	ALLOC_CASE("live_10k_1thr", wl_live10k_1, IDX, ID)          \
	ALLOC_CASE("live_1m_1thr", wl_live1m_1, IDX, ID)            \
	ALLOC_CASE("live_10k_2thr_25remote", wl_live10k_2, IDX, ID) \
	ALLOC_CASE("live_1m_2thr_25remote", wl_live1m_2, IDX, ID)

ALLOC_CASES(0, moirai)
ALLOC_CASES(1, glibc)
ALLOC_CASES(2, jemalloc)
ALLOC_CASES(3, mimalloc)
ALLOC_CASES(4, tcmalloc)
