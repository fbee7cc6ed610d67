/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pool storm: each round makes a pool on one of the nodes (RTS, HTS or
 * classic ring; debug checks or not; random object size and count) and
 * threads that get and put objects in random bulks, each through its
 * thread cache, a cache of its own size, or no cache, and hand objects to
 * other threads through their inboxes (moirai rings) so that objects go
 * back through caches other than the one they came from.
 *
 * Every object carries a stamp word: a get swaps in "held by thread T of
 * round R"; finding it held already means the pool handed one object out
 * twice.  At the end of a round, with every cache destroyed, one cacheless
 * bulk get must return all n objects, each distinct and of the pool
 * (nothing lost, nothing duplicated), and the counts must say 0 in use.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define HELD_MAX 256
#define BULK_MAX 32

struct pround {
	const struct stress_ctx *ctx;
	struct stress_result *r;
	struct moirai_pool *pool;
	unsigned n_objs;
	size_t obj_size;
	uint64_t tag; /* round tag in the stamp's high half */
	int n;
	double deadline;
	struct moirai_ring *inbox[STRESS_MAX_THREADS];
	struct stress_barrier bar;
	_Atomic bool dropped;
};

struct pthread_arg {
	struct pround *rd;
	int idx;
	uint64_t rng;
	struct moirai_pool_cache *cache;
	bool own_cache, thread_cache;
	void *held[HELD_MAX];
	int nheld;
};

static uint64_t stamp_of(struct pround *rd, int idx)
{
	return rd->tag | (uint64_t)(idx + 1);
}

static void take(struct pthread_arg *t, void *obj)
{
	struct pround *rd = t->rd;
	_Atomic uint64_t *w = obj;
	uint64_t old;

	if (!moirai_pool_contains(rd->pool, obj)) {
		stress_violation(rd->r, "pool: get returned %p, not an object of the pool", obj);
		return;
	}
	old = atomic_exchange_explicit(w, stamp_of(rd, t->idx), memory_order_relaxed);
	if ((old & 0xffffffff00000000ull) == rd->tag)
		stress_violation(rd->r,
				 "pool: object %p handed to thread %d while thread %d held it", obj,
				 t->idx, (int)(old & 0xffffffffu) - 1);
	t->held[t->nheld++] = obj;
}

static int put_some(struct pthread_arg *t, unsigned k)
{
	struct pround *rd = t->rd;
	void **objs = &t->held[t->nheld - (int)k];
	int rc;

	for (unsigned i = 0; i < k; i++)
		atomic_store_explicit((_Atomic uint64_t *)objs[i], 0, memory_order_relaxed);
	rc = moirai_pool_put_bulk(rd->pool, t->cache, objs, k);
	if (rc) {
		stress_violation(rd->r, "pool: put of %u failed: %s", k, moirai_strerror(rc));
		return rc;
	}
	t->nheld -= (int)k;
	stress_count(&rd->r->ops, k);
	return 0;
}

static void drain_inbox(struct pthread_arg *t)
{
	struct pround *rd = t->rd;
	void *got[BULK_MAX];
	unsigned n;

	while (t->nheld + BULK_MAX <= HELD_MAX &&
	       (n = moirai_ring_dequeue_burst(rd->inbox[t->idx], got, BULK_MAX, NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			/* Ownership moves with the pointer: restamp as ours. */
			atomic_store_explicit((_Atomic uint64_t *)got[i], stamp_of(rd, t->idx),
					      memory_order_relaxed);
			t->held[t->nheld++] = got[i];
		}
	}
}

static void *pthread_main(void *arg)
{
	struct pthread_arg *t = arg;
	struct pround *rd = t->rd;
	void *objs[BULK_MAX];
	int rc0;

	if (t->thread_cache) {
		rc0 = moirai_pool_thread_cache(rd->pool, &t->cache);
		if (rc0 == -ENOMEM)
			stress_count(&rd->r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
		else if (rc0)
			stress_violation(rd->r, "pool: thread cache: %s", moirai_strerror(rc0));
	}
	do {
		for (int k = 0; k < 32; k++) {
			unsigned n = 1 + (unsigned)rng_below(&t->rng, BULK_MAX);
			int rc;

			switch (rng_below(&t->rng, 4)) {
			case 0:
			case 1:
				if (t->nheld + (int)n > HELD_MAX)
					break;
				rc = moirai_pool_get_bulk(rd->pool, t->cache, objs, n);
				if (rc == -ENOENT) {
					/* Empty for us, or an injected pool_get fault. */
					stress_count(&rd->r->seen[MOIRAI_FAULT_POOL_GET], 1);
					break;
				}
				if (rc) {
					stress_violation(rd->r, "pool: get of %u: %s", n,
							 moirai_strerror(rc));
					break;
				}
				for (unsigned i = 0; i < n; i++)
					take(t, objs[i]);
				stress_count(&rd->r->ops, n);
				break;
			case 2:
				if (t->nheld)
					put_some(t, 1 + (unsigned)rng_below(&t->rng,
									    (uint64_t)t->nheld));
				break;
			default:
				/* Hand the newest few to another thread. */
				if (t->nheld) {
					int to = (int)rng_below(&t->rng, (uint64_t)rd->n);
					unsigned m = 1 +
						     (unsigned)rng_below(
							     &t->rng,
							     t->nheld < 8 ? (uint64_t)t->nheld : 8),
						 sent;

					sent = moirai_ring_enqueue_burst(
						rd->inbox[to], &t->held[t->nheld - (int)m], m,
						NULL);
					if (sent < m)
						stress_count(
							&rd->r->seen[MOIRAI_FAULT_RING_ENQUEUE], 1);
					/* enqueue_burst takes the first `sent` of the m. */
					memmove(&t->held[t->nheld - (int)m],
						&t->held[t->nheld - (int)m + (int)sent],
						(m - sent) * sizeof(void *));
					t->nheld -= (int)sent;
				}
				break;
			}
		}
		drain_inbox(t);
	} while (stress_now() < rd->deadline);
	/* Nobody hands anything on once everyone is here. */
	stress_barrier_wait(&rd->bar);
	do {
		if (t->nheld)
			put_some(t, (unsigned)t->nheld);
		drain_inbox(t);
	} while (t->nheld);
	if (t->own_cache)
		moirai_pool_cache_destroy(t->cache);
	else if (t->cache && rng_below(&t->rng, 2))
		moirai_pool_cache_flush(t->cache);
	/* A thread cache is flushed and freed at thread exit. */
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

/* With no cache left, all n objects come out at once, each once. */
static void check_all_back(struct pround *rd, uint64_t round_no)
{
	struct moirai_pool *pool = rd->pool;
	unsigned n = rd->n_objs;
	void **all = malloc(n * sizeof(void *));
	int rc = -ENOENT;

	if (!all)
		return;
	if (moirai_pool_in_use_count(pool) != 0 || moirai_pool_avail_count(pool) != n)
		stress_violation(
			rd->r, "pool: round %" PRIu64 ": %u in use, %u available of %u at the end",
			round_no, moirai_pool_in_use_count(pool), moirai_pool_avail_count(pool), n);
	/* Injected pool_get faults fail every Nth try: a few tries get through. */
	for (int tries = 0; tries < 64 && rc == -ENOENT; tries++) {
		rc = moirai_pool_get_bulk(pool, NULL, all, n);
		if (rc == -ENOENT)
			stress_count(&rd->r->seen[MOIRAI_FAULT_POOL_GET], 1);
	}
	if (rc) {
		stress_violation(rd->r,
				 "pool: round %" PRIu64 ": cannot get all %u objects back: %s",
				 round_no, n, moirai_strerror(rc));
		free(all);
		return;
	}
	qsort(all, n, sizeof(void *), cmp_ptr);
	for (unsigned i = 0; i < n; i++) {
		if (!moirai_pool_contains(pool, all[i]))
			stress_violation(rd->r, "pool: %p is not an object of the pool", all[i]);
		if (i && all[i] == all[i - 1])
			stress_violation(rd->r, "pool: object %p twice in the pool", all[i]);
	}
	if (moirai_pool_put_bulk(pool, NULL, all, n) != 0)
		stress_violation(rd->r, "pool: cannot put all objects back");
	free(all);
}

void stress_pool(const struct stress_ctx *ctx, struct stress_result *r)
{
	double end = stress_now() + ctx->duration;
	uint64_t rng = rng_seed(ctx, 4, 0, 0);

	for (uint64_t round_no = 0; stress_now() < end; round_no++) {
		struct pround *rd = calloc(1, sizeof(*rd));
		struct pthread_arg *ts = calloc(STRESS_MAX_THREADS, sizeof(*ts));
		pthread_t tids[STRESS_MAX_THREADS];
		static const unsigned pflags[] = { 0, MOIRAI_POOL_F_RING_HTS,
						   MOIRAI_POOL_F_RING_MPMC, MOIRAI_POOL_F_DEBUG,
						   MOIRAI_POOL_F_CACHE_ALIGN |
							   MOIRAI_POOL_F_NO_DEBUG };
		unsigned flags = pflags[rng_below(&rng, 5)];
		int rc, rings = 0, started;

		if (!rd || !ts) {
			free(rd);
			free(ts);
			break;
		}
		rd->ctx = ctx;
		rd->r = r;
		rd->n = 2 + (int)rng_below(&rng, (uint64_t)ctx->threads - 1);
		rd->n_objs = 64u + (unsigned)rng_below(&rng, 8192);
		rd->obj_size = 8 + rng_below(&rng, 512);
		rd->tag = (0x706f6f6cull ^ (round_no << 8)) << 32;
		rc = moirai_pool_create("stress-pool", rd->obj_size, rd->n_objs,
					ctx->nodes[rng_below(&rng, (uint64_t)ctx->nnodes)], flags,
					&rd->pool);
		if (rc == -ENOMEM) {
			stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
			goto next;
		}
		if (rc) {
			stress_violation(r, "pool: create: %s", moirai_last_error());
			goto next;
		}
		for (; rings < rd->n; rings++) {
			char name[32];

			snprintf(name, sizeof(name), "stress-p%d", rings);
			rc = moirai_ring_create(name, 4096, MOIRAI_NODE_ANY, 0, &rd->inbox[rings]);
			if (rc)
				break;
		}
		if (rings < rd->n) {
			if (rc != -ENOMEM)
				stress_violation(r, "pool: ring create: %s", moirai_last_error());
			else
				stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
			goto destroy;
		}
		rd->deadline = stress_now() + 0.05 + (double)rng_below(&rng, 300) / 1000.0;
		if (rd->deadline > end)
			rd->deadline = end;
		stress_barrier_init(&rd->bar, rd->n);
		for (int i = 0; i < rd->n; i++) {
			struct pthread_arg *t = &ts[i];

			t->rd = rd;
			t->idx = i;
			t->rng = rng_seed(ctx, 4, round_no, i + 1);
			switch (rng_below(&rng, 3)) {
			case 0: break; /* no cache */
			case 1:
				rc = moirai_pool_cache_create(
					rd->pool, 1 + (unsigned)rng_below(&rng, 512), &t->cache);
				if (rc == -ENOMEM)
					stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
				t->own_cache = rc == 0;
				break;
			default: t->thread_cache = true; break; /* made by the thread */
			}
		}
		started = stress_start(tids, rd->n, pthread_main, ts, sizeof(ts[0]));
		if (started < rd->n) {
			fprintf(stderr, "moirai-stress: pool: cannot start threads\n");
			abort();
		}
		stress_join(tids, started);
		stress_barrier_fini(&rd->bar);
		if (ctx->violate && !atomic_exchange(&rd->dropped, true)) {
			void *obj; /* --self-test-violation: keep one object */

			for (int tries = 0; tries < 64; tries++)
				if (moirai_pool_get(rd->pool, NULL, &obj) == 0)
					break;
		}
		check_all_back(rd, round_no);
		stress_count(&r->rounds, 1);
	destroy:
		for (int i = 0; i < rings; i++) {
			if (!moirai_ring_empty(rd->inbox[i]))
				stress_violation(r, "pool: inbox %d not empty at the end", i);
			moirai_ring_destroy(rd->inbox[i]);
		}
		moirai_pool_destroy(rd->pool);
	next:
		free(ts);
		free(rd);
	}
}
