/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Allocator storm: every thread allocates blocks of mixed sizes (16 B to
 * 2 MiB, through malloc, calloc, aligned_alloc and realloc) on every node
 * the allocator can use, stamps them, and hands most of them to a random
 * thread through that thread's inbox (a moirai ring), which checks the
 * stamp, the block's node and its content and frees it: remote frees to
 * the owning heap, to heaps of threads that have exited (each round ends
 * its threads and starts new ones, so heaps are handed over), and local
 * frees when an inbox refuses.
 *
 * Checks: every block allocated is freed exactly once (multiset
 * fingerprint of block ids allocated == of ids checked and freed); every
 * block lives on the node asked for and keeps its content; inboxes are
 * empty at the end of a round.  main.c checks that the bytes in use are
 * back where they were.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define INBOX_SLOTS 1024
#define BURST	    32
#define MAGIC	    0x6d6f6972616c6c63ull /* "moiralc" */

struct blk {
	/* Stored last with release, loaded first with acquire: the block's
	 * content (and the allocator's metadata of it) happens-before the
	 * receiver's checks and free even for TSan, which cannot follow the
	 * RTS inbox rings (tests/tsan.supp). */
	_Atomic uint64_t magic;
	uint64_t id;
	uint64_t size;
	int64_t node; /* asked for, -1 any */
	uint64_t check;
};

struct athread {
	const struct stress_ctx *ctx;
	struct stress_result *r;
	struct round *round;
	int idx;
	uint64_t rng;
	struct fingerprint made, freed;
};

struct round {
	int n;
	double deadline;
	struct moirai_ring *inbox[STRESS_MAX_THREADS];
	struct stress_barrier bar;
	_Atomic bool dropped; /* --self-test-violation done */
};

static uint64_t blk_check(const struct blk *b)
{
	return mix64(b->id ^ (b->size << 1) ^ ((uint64_t)b->node << 48) ^ MAGIC);
}

/* The byte at offset @i of block @id. */
static inline uint8_t pattern(uint64_t id, size_t i)
{
	return (uint8_t)(id * 131 + i);
}

static void fill(struct blk *b)
{
	unsigned char *p = (unsigned char *)b;
	size_t n = b->size;

	/* Head and tail only: big blocks would make the storm a memset. */
	for (size_t i = sizeof(*b); i < n && i < 256; i++)
		p[i] = pattern(b->id, i);
	for (size_t i = n > 256 + sizeof(*b) ? n - 64 : n; i < n; i++)
		p[i] = pattern(b->id, i);
}

static bool verify(struct athread *t, struct blk *b)
{
	const unsigned char *p = (const unsigned char *)b;
	size_t n;

	if (atomic_load_explicit(&b->magic, memory_order_acquire) != MAGIC ||
	    b->check != blk_check(b)) {
		stress_violation(t->r,
				 "alloc: block %p has a broken stamp (freed twice? "
				 "overwritten?)",
				 (void *)b);
		return false;
	}
	n = b->size;
	for (size_t i = sizeof(*b); i < n && i < 256; i++)
		if (p[i] != pattern(b->id, i))
			goto corrupt;
	for (size_t i = n > 256 + sizeof(*b) ? n - 64 : n; i < n; i++)
		if (p[i] != pattern(b->id, i))
			goto corrupt;
	if (moirai_usable_size(b) < n)
		stress_violation(t->r, "alloc: block %" PRIx64 " usable size %zu < %zu", b->id,
				 moirai_usable_size(b), n);
	if (b->node >= 0 && moirai_alloc_ptr_node(b) != b->node)
		stress_violation(t->r,
				 "alloc: block %" PRIx64 " asked on node %" PRId64
				 " is in node %d's arena",
				 b->id, b->node, moirai_alloc_ptr_node(b));
	return true;
corrupt:
	stress_violation(t->r, "alloc: block %" PRIx64 " (%zu bytes) content changed", b->id, n);
	return false;
}

static void consume(struct athread *t, struct blk *b)
{
	if (!verify(t, b))
		return; /* not freed: freeing a broken block could crash */
	/* --self-test-violation: lose one block from the books (still freed). */
	if (t->ctx->violate && !atomic_exchange(&t->round->dropped, true)) {
		atomic_store_explicit(&b->magic, 0, memory_order_relaxed);
		moirai_free(b);
		return;
	}
	fp_add(&t->freed, b->id);
	atomic_store_explicit(&b->magic, 0, memory_order_relaxed);
	moirai_free(b);
	stress_count(&t->r->ops, 1);
}

static size_t pick_size(uint64_t *rng)
{
	uint64_t k = rng_below(rng, 100);

	if (k < 80)
		return 40 + rng_below(rng, 1024);
	if (k < 99)
		return 1024 + rng_below(rng, 64 << 10);
	return (64 << 10) + rng_below(rng, 2 << 20);
}

static struct blk *make(struct athread *t, uint64_t id)
{
	const struct stress_ctx *ctx = t->ctx;
	size_t size = pick_size(&t->rng);
	int64_t node = -1;
	struct blk *b;

	switch (rng_below(&t->rng, 6)) {
	case 0: b = moirai_malloc(size); break;
	case 1: b = moirai_calloc(1, size); break;
	case 2: b = moirai_aligned_alloc((size_t)64 << rng_below(&t->rng, 6), size); break;
	case 3: /* grow a small block into this one */
		b = moirai_malloc(sizeof(*b) + 8);
		if (b) {
			struct blk *nb = moirai_realloc(b, size);

			if (!nb) {
				moirai_free(b);
				b = NULL;
			} else {
				b = nb;
			}
		}
		break;
	default:
		node = ctx->nodes[rng_below(&t->rng, (uint64_t)ctx->nnodes)];
		b = moirai_malloc_node(size, (int)node);
		break;
	}
	if (!b) {
		if (errno == ENOMEM)
			stress_count(&t->r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
		else
			stress_violation(t->r,
					 "alloc: %zu bytes on node %" PRId64
					 " failed with errno %d: %s",
					 size, node, errno, moirai_last_error());
		return NULL;
	}
	b->id = id;
	b->size = size;
	b->node = node;
	b->check = blk_check(b);
	fill(b);
	atomic_store_explicit(&b->magic, MAGIC, memory_order_release);
	fp_add(&t->made, id);
	stress_count(&t->r->ops, 1);
	return b;
}

static void drain(struct athread *t)
{
	void *got[BURST];
	unsigned n;

	while ((n = moirai_ring_dequeue_burst(t->round->inbox[t->idx], got, BURST, NULL)) > 0)
		for (unsigned i = 0; i < n; i++)
			consume(t, got[i]);
}

static void *athread_main(void *arg)
{
	struct athread *t = arg;
	struct round *rd = t->round;
	uint64_t seq = 0;
	struct blk *keep[16];
	int nkeep = 0;

	/* At least one pass, however late the thread got the CPU. */
	do {
		for (int k = 0; k < 8; k++) {
			uint64_t id = ((uint64_t)t->idx << 48) | seq++;
			struct blk *b = make(t, id);
			int to;

			if (!b)
				continue;
			/* Some stay here a while: local frees, later. */
			if (rng_below(&t->rng, 8) == 0 && nkeep < 16) {
				keep[nkeep++] = b;
				continue;
			}
			to = (int)rng_below(&t->rng, (uint64_t)rd->n);
			if (moirai_ring_enqueue_burst(rd->inbox[to], (void **)&b, 1, NULL) != 1) {
				/* Full, or an injected ring_enqueue fault. */
				stress_count(&t->r->seen[MOIRAI_FAULT_RING_ENQUEUE], 1);
				consume(t, b);
			}
		}
		drain(t);
		while (nkeep > 8)
			consume(t, keep[--nkeep]);
	} while (stress_now() < rd->deadline);
	while (nkeep > 0)
		consume(t, keep[--nkeep]);
	/* Nobody sends once everyone is here; then drain for good. */
	stress_barrier_wait(&rd->bar);
	drain(t);
	return NULL;
}

void stress_alloc(const struct stress_ctx *ctx, struct stress_result *r)
{
	double end = stress_now() + ctx->duration;
	uint64_t rng = rng_seed(ctx, 1, 0, 0);

	for (uint64_t round_no = 0; stress_now() < end; round_no++) {
		struct athread *ts = calloc(STRESS_MAX_THREADS, sizeof(*ts));
		pthread_t tids[STRESS_MAX_THREADS];
		struct round rd = { .n = 2 + (int)rng_below(&rng, (uint64_t)ctx->threads - 1) };
		struct fingerprint made = { 0 }, freed = { 0 };
		double slice = 0.05 + (double)rng_below(&rng, 400) / 1000.0;
		int started = 0, made_rings = 0;

		if (!ts)
			break;
		rd.deadline = stress_now() + slice;
		if (rd.deadline > end)
			rd.deadline = end;
		for (; made_rings < rd.n; made_rings++) {
			char name[32];
			int rc;

			snprintf(name, sizeof(name), "stress-a%d", made_rings);
			rc = moirai_ring_create(name, INBOX_SLOTS, MOIRAI_NODE_ANY, 0,
						&rd.inbox[made_rings]);
			if (rc == -ENOMEM) {
				stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
				break;
			}
			if (rc) {
				stress_violation(r, "alloc: ring create: %s", moirai_last_error());
				break;
			}
		}
		if (made_rings == rd.n) {
			stress_barrier_init(&rd.bar, rd.n);
			for (int i = 0; i < rd.n; i++)
				ts[i] = (struct athread){ .ctx = ctx,
							  .r = r,
							  .round = &rd,
							  .idx = i,
							  .rng = rng_seed(ctx, 1, round_no,
									  i + 1) };
			started = stress_start(tids, rd.n, athread_main, ts, sizeof(ts[0]));
			if (started < rd.n) {
				/* The barrier would wait for threads that never came. */
				fprintf(stderr, "moirai-stress: alloc: cannot start threads\n");
				abort();
			}
			stress_join(tids, started);
			stress_barrier_fini(&rd.bar);
			for (int i = 0; i < rd.n; i++) {
				fp_merge(&made, &ts[i].made);
				fp_merge(&freed, &ts[i].freed);
			}
			if (!fp_equal(&made, &freed))
				stress_violation(r,
						 "alloc: round %" PRIu64 ": %" PRIu64
						 " blocks allocated, %" PRIu64
						 " checked and freed (or the same count with "
						 "different blocks: lost or duplicated)",
						 round_no, made.count, freed.count);
			stress_count(&r->rounds, 1);
		}
		for (int i = 0; i < made_rings; i++) {
			if (!moirai_ring_empty(rd.inbox[i]))
				stress_violation(r, "alloc: inbox %d not empty at the end", i);
			moirai_ring_destroy(rd.inbox[i]);
		}
		free(ts);
	}
}
