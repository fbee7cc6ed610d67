/*
 * moirai-bench alloc: moirai_malloc/moirai_free against glibc, jemalloc,
 * mimalloc and tcmalloc on three workloads: single-thread small
 * alloc/free (16-256 B), producer-consumer cross-thread free, and a
 * larson-style mixed workload on 2 threads that trade their blocks.
 *
 * jemalloc and tcmalloc replace malloc when loaded, so no two peers can
 * share a process fairly.  Every (case, allocator) pair therefore runs in
 * its own fresh process (bench_run_isolated): the peers by LD_PRELOAD of
 * their shared library with the workload calling malloc/free, which is how
 * they are deployed; glibc with no preload; moirai through its own API.
 * The child checks that the preload took effect (a symbol only that
 * allocator exports) and reports its own peak RSS.  All allocators are
 * called through the same function pointers, so none is inlined.
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
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < SLOTS; i++)
			free_fn(l->slots[k][i]);
	pthread_barrier_destroy(&l->bar);
	free(l);
	return 0;
}

/* ---- registration ---------------------------------------------------- */

static int run_case(const struct bench_ctx *ctx, struct bench_result *out, const char *name,
		    bench_fn wl, const struct impl *im)
{
	int rc;

	if (!bench_is_isolated_child())
		return bench_run_isolated(ctx, "alloc", name, im->name, im->preload, out);
	if (im->witness && !dlsym(RTLD_DEFAULT, im->witness)) {
		snprintf(out->note, sizeof(out->note), "%s not preloaded", im->name);
		return -ENOTSUP;
	}
	alloc_fn = im->alloc;
	free_fn = im->free;
	/* The box is shared and noisy: best of a few runs. */
	double best = 0;

	for (int i = 0; i < (ctx->quick ? 3 : 5); i++) {
		rc = wl(ctx, out);
		if (rc)
			return rc;
		if (i == 0 || out->ns_per_op < best)
			best = out->ns_per_op;
	}
	out->ns_per_op = best;
	out->peak_rss_kb = bench_peak_rss_kb();
	return 0;
}

#define CASE_SMALL  "small alloc/free 16-256B"
#define CASE_CROSS  "cross-thread free (prod->cons)"
#define CASE_LARSON "larson-style 2 threads"

#define ALLOC_CASES(idx, id)                                                      \
	static int small_##id(const struct bench_ctx *c, struct bench_result *o)  \
	{                                                                         \
		return run_case(c, o, CASE_SMALL, wl_small, &impls[idx]);         \
	}                                                                         \
	static int cross_##id(const struct bench_ctx *c, struct bench_result *o)  \
	{                                                                         \
		return run_case(c, o, CASE_CROSS, wl_cross, &impls[idx]);         \
	}                                                                         \
	static int larson_##id(const struct bench_ctx *c, struct bench_result *o) \
	{                                                                         \
		return run_case(c, o, CASE_LARSON, wl_larson, &impls[idx]);       \
	}                                                                         \
	BENCH_CASE("alloc", CASE_SMALL, #id, small_##id)                          \
	BENCH_CASE("alloc", CASE_CROSS, #id, cross_##id)                          \
	BENCH_CASE("alloc", CASE_LARSON, #id, larson_##id)

ALLOC_CASES(0, moirai)
ALLOC_CASES(1, glibc)
ALLOC_CASES(2, jemalloc)
ALLOC_CASES(3, mimalloc)
ALLOC_CASES(4, tcmalloc)
