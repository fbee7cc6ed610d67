/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "alloc", object pools: moirai_pool get/put through a cache against
 * malloc/free of the same size (impl "glibc") and a mutex-protected
 * free-list pool (impl "fifo_pool").  Every implementation writes one byte
 * into each object so that no allocation can be optimised away, and reports
 * ns per object for one get plus one put.  One call is one timed run; the
 * framework repeats them (main.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdalign.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moirai.h>

#include "bench.h"

#define OBJ_SIZE  64
#define BULK	  32
#define POOL_OBJS 4096
#define ITERS	  400000L /* get+put pairs per thread and run */

/* ---- fifo_pool: the simple baseline a programmer would write ---------- */

struct fifo_pool {
	pthread_mutex_t lock;
	void *head; /* singly linked through the first word of each object */
	char *mem;
};

static int fifo_pool_init(struct fifo_pool *fp, unsigned n, size_t size)
{
	fp->mem = aligned_alloc(64, (size_t)n * size);
	if (!fp->mem)
		return -ENOMEM;
	pthread_mutex_init(&fp->lock, NULL);
	fp->head = NULL;
	for (unsigned i = n; i-- > 0;) {
		void *o = fp->mem + (size_t)i * size;

		*(void **)o = fp->head;
		fp->head = o;
	}
	return 0;
}

static int fifo_pool_get_bulk(struct fifo_pool *fp, void **objs, unsigned n)
{
	pthread_mutex_lock(&fp->lock);
	for (unsigned i = 0; i < n; i++) {
		if (!fp->head) {
			/* All or nothing, like the others. */
			while (i-- > 0) {
				*(void **)objs[i] = fp->head;
				fp->head = objs[i];
			}
			pthread_mutex_unlock(&fp->lock);
			return -ENOENT;
		}
		objs[i] = fp->head;
		fp->head = *(void **)fp->head;
	}
	pthread_mutex_unlock(&fp->lock);
	return 0;
}

static void fifo_pool_put_bulk(struct fifo_pool *fp, void *const *objs, unsigned n)
{
	pthread_mutex_lock(&fp->lock);
	for (unsigned i = 0; i < n; i++) {
		*(void **)objs[i] = fp->head;
		fp->head = objs[i];
	}
	pthread_mutex_unlock(&fp->lock);
}

/* ---- one worker loop per implementation ------------------------------- */

enum impl { IMPL_MOIRAI, IMPL_GLIBC, IMPL_FIFO };

struct run {
	alignas(64) volatile uintptr_t sink; /* per thread: no false sharing */
	enum impl impl;
	unsigned batch;
	bool no_cache; /* moirai: straight to the shared ring */
	long iters;
	int cpu;
	struct moirai_pool *pool;
	struct fifo_pool *fifo;
	int rc;
};

static void touch(struct run *r, void **objs, unsigned n)
{
	uintptr_t acc = 0;

	for (unsigned i = 0; i < n; i++) {
		((char *)objs[i])[8] = (char)i;
		acc += (uintptr_t)objs[i];
	}
	r->sink += acc;
}

/*
 * The loop body for a compile-time batch size, so that every
 * implementation gets constant-trip loops (batch 1 is the plain
 * moirai_pool_get/put, malloc/free and a one-object free-list call).
 */
static inline __attribute__((always_inline)) int round_trip(struct run *r,
							    struct moirai_pool_cache *c,
							    void **objs, const unsigned batch)
{
	switch (r->impl) {
	case IMPL_MOIRAI:
		if (moirai_pool_get_bulk(r->pool, c, objs, batch))
			return -ENOENT;
		touch(r, objs, batch);
		return moirai_pool_put_bulk(r->pool, c, objs, batch);
	case IMPL_GLIBC:
		for (unsigned i = 0; i < batch; i++)
			objs[i] = malloc(OBJ_SIZE);
		touch(r, objs, batch);
		for (unsigned i = 0; i < batch; i++)
			free(objs[i]);
		return 0;
	case IMPL_FIFO:
		if (fifo_pool_get_bulk(r->fifo, objs, batch))
			return -ENOENT;
		touch(r, objs, batch);
		fifo_pool_put_bulk(r->fifo, objs, batch);
		return 0;
	}
	return -EINVAL;
}

static void *run_thread(void *arg)
{
	struct run *r = arg;
	struct moirai_pool_cache *c = NULL;
	void *objs[BULK];
	long rounds = r->iters / r->batch;

	bench_pin(r->cpu);
	if (r->impl == IMPL_MOIRAI && !r->no_cache &&
	    (r->rc = moirai_pool_cache_create(r->pool, 256, &c)) != 0)
		return NULL;
	for (long it = 0; it < rounds && !r->rc; it++)
		r->rc = r->batch == 1 ? round_trip(r, c, objs, 1) : round_trip(r, c, objs, BULK);
	moirai_pool_cache_destroy(c);
	return NULL;
}

/* One timed run: @threads threads, each doing its share of get+put. */
static int run_once(const struct bench_ctx *ctx, enum impl impl, unsigned batch, int threads,
		    bool no_cache, struct moirai_pool *pool, struct fifo_pool *fifo,
		    struct bench_result *out)
{
	struct run runs[2];
	pthread_t th[2];
	uint64_t t0, t1;
	int rc = 0;

	for (int i = 0; i < threads; i++)
		runs[i] = (struct run){ .impl = impl,
					.batch = batch,
					.no_cache = no_cache,
					.iters = bench_iters(ctx, ITERS),
					.cpu = i ? ctx->cpu_b : ctx->cpu_a,
					.pool = pool,
					.fifo = fifo };
	t0 = moirai_now_ns();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, run_thread, &runs[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = moirai_now_ns();
	for (int i = 0; i < threads; i++)
		if (runs[i].rc)
			rc = runs[i].rc;
	/* Wall time per object per thread: what one thread's get+put costs. */
	out->ops = runs[0].iters / batch * batch;
	out->ns_per_op = (double)(t1 - t0) / (double)out->ops;
	return rc;
}

static int run_case(const struct bench_ctx *ctx, struct bench_result *out, enum impl impl,
		    unsigned batch, int threads, bool no_cache)
{
	struct fifo_pool fifo;
	struct moirai_pool *pool = NULL;
	int rc = 0;

	if (impl == IMPL_MOIRAI) {
		rc = moirai_pool_create("bench", OBJ_SIZE, POOL_OBJS, MOIRAI_NODE_ANY, 0, &pool);
		if (rc) {
			snprintf(out->note, sizeof(out->note), "%s", moirai_last_error());
			return rc;
		}
	} else if (impl == IMPL_FIFO && (rc = fifo_pool_init(&fifo, POOL_OBJS, OBJ_SIZE)) != 0) {
		return rc;
	}
	rc = run_once(ctx, impl, batch, threads, no_cache, pool, &fifo, out);
	if (pool) {
		if (!rc && moirai_pool_in_use_count(pool) != 0)
			rc = -EIO;
		moirai_pool_destroy(pool);
	}
	if (impl == IMPL_FIFO) {
		pthread_mutex_destroy(&fifo.lock);
		free(fifo.mem);
	}
	return rc;
}

#define POOL_CASE(fn, impl, batch, threads, no_cache)                        \
	static int fn(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                    \
		return run_case(ctx, out, impl, batch, threads, no_cache);   \
	}

POOL_CASE(bulk1_moirai, IMPL_MOIRAI, BULK, 1, false)
POOL_CASE(bulk1_glibc, IMPL_GLIBC, BULK, 1, false)
POOL_CASE(bulk1_fifo, IMPL_FIFO, BULK, 1, false)
POOL_CASE(one1_moirai, IMPL_MOIRAI, 1, 1, false)
POOL_CASE(one1_glibc, IMPL_GLIBC, 1, 1, false)
POOL_CASE(one1_fifo, IMPL_FIFO, 1, 1, false)
POOL_CASE(bulk2_moirai, IMPL_MOIRAI, BULK, 2, false)
POOL_CASE(bulk2_glibc, IMPL_GLIBC, BULK, 2, false)
POOL_CASE(bulk2_fifo, IMPL_FIFO, BULK, 2, false)
POOL_CASE(ring2_moirai, IMPL_MOIRAI, BULK, 2, true)
POOL_CASE(ring2_glibc, IMPL_GLIBC, BULK, 2, false)
POOL_CASE(ring2_fifo, IMPL_FIFO, BULK, 2, false)

BENCH_CASE("alloc", "pool get/put bulk32 64B 1 thread", "moirai", bulk1_moirai)
BENCH_CASE("alloc", "pool get/put bulk32 64B 1 thread", "glibc", bulk1_glibc)
BENCH_CASE("alloc", "pool get/put bulk32 64B 1 thread", "fifo_pool", bulk1_fifo)
BENCH_CASE("alloc", "pool get/put single 64B 1 thread", "moirai", one1_moirai)
BENCH_CASE("alloc", "pool get/put single 64B 1 thread", "glibc", one1_glibc)
BENCH_CASE("alloc", "pool get/put single 64B 1 thread", "fifo_pool", one1_fifo)
BENCH_CASE("alloc", "pool get/put bulk32 64B 2 threads", "moirai", bulk2_moirai)
BENCH_CASE("alloc", "pool get/put bulk32 64B 2 threads", "glibc", bulk2_glibc)
BENCH_CASE("alloc", "pool get/put bulk32 64B 2 threads", "fifo_pool", bulk2_fifo)
/* Without caches every get/put crosses the shared RTS ring. */
BENCH_CASE("alloc", "pool bulk32 64B 2 thr, no cache", "moirai", ring2_moirai)
BENCH_CASE("alloc", "pool bulk32 64B 2 thr, no cache", "glibc", ring2_glibc)
BENCH_CASE("alloc", "pool bulk32 64B 2 thr, no cache", "fifo_pool", ring2_fifo)
