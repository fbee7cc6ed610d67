/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ring and channel storms.
 *
 * Ring: each round picks a ring (every sync mode: RTS, HTS, classic
 * MP/MC, SP/SC; pointers or 16-byte elements; bulk or burst; the calls
 * named for the mode or the generic ones), P producers and C consumers.
 * A producer enqueues its items with consecutive sequence numbers; each
 * consumer checks that every producer's sequence numbers it sees only
 * grow (the ring is FIFO and each consumer's dequeues are ordered) and
 * that elements are not torn.  At the end every producer's items were
 * received exactly once: count and sum of sequence numbers per producer.
 *
 * Channel: S senders, R receivers, timeouts of every kind (try, bounded,
 * forever), and a close at a random point while they run.  A send that
 * returned k had its first k messages accepted; after the close,
 * receivers drain to -EPIPE.  Checks: the messages accepted are exactly
 * those received, per sender in order per receiver.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define BURST_MAX 32

struct item {
	uint32_t producer;
	uint32_t check;
	uint64_t seq;
};

static uint32_t item_check(uint32_t producer, uint64_t seq)
{
	return (uint32_t)mix64(((uint64_t)producer << 40) ^ seq ^ 0x5eed);
}

/* ---- rings ------------------------------------------------------------ */

enum rmode { M_RTS, M_HTS, M_MPMC, M_SPSC, M_COUNT };
static const char *const mode_names[M_COUNT] = { "rts", "hts", "mpmc", "spsc" };

struct rround {
	const struct stress_ctx *ctx;
	struct stress_result *r;
	struct moirai_ring *ring;
	enum rmode mode;
	bool elem, bulk, generic;
	int producers, consumers;
	_Atomic int producing;
	double deadline;
	uint64_t produced[STRESS_MAX_THREADS];
	/* Per producer, what the consumers received: count and sum of seqs. */
	_Atomic uint64_t got_count[STRESS_MAX_THREADS];
	_Atomic uint64_t got_sum[STRESS_MAX_THREADS];
	_Atomic bool dropped;
};

struct rthread {
	struct rround *rd;
	int idx;
	uint64_t rng;
};

static unsigned enq(struct rround *rd, const void *objs, unsigned n)
{
	struct moirai_ring *r = rd->ring;

	if (rd->elem) {
		if (rd->generic)
			return rd->bulk ? moirai_ring_enqueue_bulk_elem(r, objs, 16, n, NULL)
					: moirai_ring_enqueue_burst_elem(r, objs, 16, n, NULL);
		switch (rd->mode) {
		case M_RTS:
			return rd->bulk ? moirai_ring_mp_rts_enqueue_bulk_elem(r, objs, 16, n, NULL)
					: moirai_ring_mp_rts_enqueue_burst_elem(r, objs, 16, n,
										NULL);
		case M_HTS:
			return rd->bulk ? moirai_ring_mp_hts_enqueue_bulk_elem(r, objs, 16, n, NULL)
					: moirai_ring_mp_hts_enqueue_burst_elem(r, objs, 16, n,
										NULL);
		case M_MPMC:
			return rd->bulk ? moirai_ring_mp_enqueue_bulk_elem(r, objs, 16, n, NULL)
					: moirai_ring_mp_enqueue_burst_elem(r, objs, 16, n, NULL);
		default:
			return rd->bulk ? moirai_ring_sp_enqueue_bulk_elem(r, objs, 16, n, NULL)
					: moirai_ring_sp_enqueue_burst_elem(r, objs, 16, n, NULL);
		}
	}
	void *const *p = objs;

	if (rd->generic)
		return rd->bulk ? moirai_ring_enqueue_bulk(r, p, n, NULL)
				: moirai_ring_enqueue_burst(r, p, n, NULL);
	switch (rd->mode) {
	case M_RTS:
		return rd->bulk ? moirai_ring_mp_rts_enqueue_bulk(r, p, n, NULL)
				: moirai_ring_mp_rts_enqueue_burst(r, p, n, NULL);
	case M_HTS:
		return rd->bulk ? moirai_ring_mp_hts_enqueue_bulk(r, p, n, NULL)
				: moirai_ring_mp_hts_enqueue_burst(r, p, n, NULL);
	case M_MPMC:
		return rd->bulk ? moirai_ring_mp_enqueue_bulk(r, p, n, NULL)
				: moirai_ring_mp_enqueue_burst(r, p, n, NULL);
	default:
		return rd->bulk ? moirai_ring_sp_enqueue_bulk(r, p, n, NULL)
				: moirai_ring_sp_enqueue_burst(r, p, n, NULL);
	}
}

static unsigned deq(struct rround *rd, void *objs, unsigned n, bool bulk)
{
	struct moirai_ring *r = rd->ring;

	if (rd->elem) {
		if (rd->generic)
			return bulk ? moirai_ring_dequeue_bulk_elem(r, objs, 16, n, NULL)
				    : moirai_ring_dequeue_burst_elem(r, objs, 16, n, NULL);
		switch (rd->mode) {
		case M_RTS:
			return bulk ? moirai_ring_mc_rts_dequeue_bulk_elem(r, objs, 16, n, NULL)
				    : moirai_ring_mc_rts_dequeue_burst_elem(r, objs, 16, n, NULL);
		case M_HTS:
			return bulk ? moirai_ring_mc_hts_dequeue_bulk_elem(r, objs, 16, n, NULL)
				    : moirai_ring_mc_hts_dequeue_burst_elem(r, objs, 16, n, NULL);
		case M_MPMC:
			return bulk ? moirai_ring_mc_dequeue_bulk_elem(r, objs, 16, n, NULL)
				    : moirai_ring_mc_dequeue_burst_elem(r, objs, 16, n, NULL);
		default:
			return bulk ? moirai_ring_sc_dequeue_bulk_elem(r, objs, 16, n, NULL)
				    : moirai_ring_sc_dequeue_burst_elem(r, objs, 16, n, NULL);
		}
	}
	void **p = objs;

	if (rd->generic)
		return bulk ? moirai_ring_dequeue_bulk(r, p, n, NULL)
			    : moirai_ring_dequeue_burst(r, p, n, NULL);
	switch (rd->mode) {
	case M_RTS:
		return bulk ? moirai_ring_mc_rts_dequeue_bulk(r, p, n, NULL)
			    : moirai_ring_mc_rts_dequeue_burst(r, p, n, NULL);
	case M_HTS:
		return bulk ? moirai_ring_mc_hts_dequeue_bulk(r, p, n, NULL)
			    : moirai_ring_mc_hts_dequeue_burst(r, p, n, NULL);
	case M_MPMC:
		return bulk ? moirai_ring_mc_dequeue_bulk(r, p, n, NULL)
			    : moirai_ring_mc_dequeue_burst(r, p, n, NULL);
	default:
		return bulk ? moirai_ring_sc_dequeue_bulk(r, p, n, NULL)
			    : moirai_ring_sc_dequeue_burst(r, p, n, NULL);
	}
}

/* Pointer rings carry (producer << 48 | seq) as the "pointer". */
static void *encode(uint32_t producer, uint64_t seq)
{
	return (void *)(uintptr_t)(((uint64_t)producer << 48) | (seq & 0xffffffffffffull));
}

static void *producer_main(void *arg)
{
	struct rthread *t = arg;
	struct rround *rd = t->rd;
	uint64_t seq = 0;
	struct item items[BURST_MAX];
	void *ptrs[BURST_MAX];

	/* At least one pass, however late the thread got the CPU. */
	do {
		for (int k = 0; k < 16; k++) {
			unsigned n = 1 + (unsigned)rng_below(&t->rng, BURST_MAX), done;

			for (unsigned i = 0; i < n; i++) {
				items[i] = (struct item){ (uint32_t)t->idx,
							  item_check((uint32_t)t->idx, seq + i),
							  seq + i };
				ptrs[i] = encode((uint32_t)t->idx, seq + i);
			}
			done = enq(rd, rd->elem ? (void *)items : (void *)ptrs, n);
			if (done > n || (rd->bulk && done != 0 && done != n))
				stress_violation(rd->r, "ring %s: enqueue of %u returned %u",
						 mode_names[rd->mode], n, done);
			if (done == 0)
				stress_count(&rd->r->seen[MOIRAI_FAULT_RING_ENQUEUE], 1);
			seq += done;
			stress_count(&rd->r->ops, done);
		}
	} while (stress_now() < rd->deadline);
	rd->produced[t->idx] = seq;
	/* Release: the consumers' acquire of 0 sees every item enqueued. */
	atomic_fetch_sub_explicit(&rd->producing, 1, memory_order_release);
	return NULL;
}

static void got(struct rthread *t, int64_t *last, uint32_t producer, uint64_t seq, uint32_t check,
		bool elem)
{
	struct rround *rd = t->rd;

	if ((int)producer >= rd->producers || (elem && check != item_check(producer, seq))) {
		stress_violation(rd->r,
				 "ring %s: torn or foreign item (producer %u seq %" PRIu64 ")",
				 mode_names[rd->mode], producer, seq);
		return;
	}
	if ((int64_t)seq <= last[producer])
		stress_violation(rd->r,
				 "ring %s: consumer %d saw producer %u's seq %" PRIu64
				 " after %" PRId64 " (reordered or duplicated)",
				 mode_names[rd->mode], t->idx, producer, seq, last[producer]);
	last[producer] = (int64_t)seq;
	if (rd->ctx->violate && !atomic_exchange(&rd->dropped, true))
		return; /* --self-test-violation: this one is "lost" */
	atomic_fetch_add_explicit(&rd->got_count[producer], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rd->got_sum[producer], seq, memory_order_relaxed);
}

static void *consumer_main(void *arg)
{
	struct rthread *t = arg;
	struct rround *rd = t->rd;
	int64_t last[STRESS_MAX_THREADS];
	struct item items[BURST_MAX];
	void *ptrs[BURST_MAX];

	for (int i = 0; i < STRESS_MAX_THREADS; i++)
		last[i] = -1;
	for (;;) {
		/* Acquire pairs with the producers' release. */
		bool done = atomic_load_explicit(&rd->producing, memory_order_acquire) == 0;
		unsigned want = 1 + (unsigned)rng_below(&t->rng, BURST_MAX);
		/* Bulk never takes a tail shorter than its request: burst at the end. */
		unsigned n =
			deq(rd, rd->elem ? (void *)items : (void *)ptrs, want, rd->bulk && !done);

		if (n > want || (rd->bulk && !done && n != 0 && n != want))
			stress_violation(rd->r, "ring %s: dequeue of %u returned %u",
					 mode_names[rd->mode], want, n);
		for (unsigned i = 0; i < n && i < want; i++) {
			if (rd->elem) {
				got(t, last, items[i].producer, items[i].seq, items[i].check, true);
			} else {
				uint64_t v = (uint64_t)(uintptr_t)ptrs[i];

				got(t, last, (uint32_t)(v >> 48), v & 0xffffffffffffull, 0, false);
			}
		}
		stress_count(&rd->r->ops, n);
		if (n == 0 && done)
			break;
		if (n == 0)
			sched_yield();
	}
	return NULL;
}

void stress_ring(const struct stress_ctx *ctx, struct stress_result *r)
{
	double end = stress_now() + ctx->duration;
	uint64_t rng = rng_seed(ctx, 2, 0, 0);

	for (uint64_t round_no = 0; stress_now() < end; round_no++) {
		struct rround *rd = calloc(1, sizeof(*rd));
		struct rthread ts[STRESS_MAX_THREADS];
		pthread_t tids[STRESS_MAX_THREADS];
		static const unsigned mflags[M_COUNT] = {
			0, MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_MC_HTS_DEQ,
			MOIRAI_RING_F_MPMC_PINNED, MOIRAI_RING_F_SPSC
		};
		unsigned count;
		int rc, node, n, started;

		if (!rd)
			break;
		rd->ctx = ctx;
		rd->r = r;
		rd->mode = (enum rmode)rng_below(&rng, M_COUNT);
		rd->elem = rng_below(&rng, 2);
		rd->bulk = rng_below(&rng, 2);
		rd->generic = rng_below(&rng, 3) == 0;
		if (rd->mode == M_SPSC) {
			rd->producers = rd->consumers = 1;
		} else {
			n = 2 + (int)rng_below(&rng, (uint64_t)ctx->threads - 1);
			rd->producers = 1 + (int)rng_below(&rng, (uint64_t)n - 1);
			rd->consumers = n - rd->producers;
		}
		count = 64u << rng_below(&rng, 7);
		node = ctx->nodes[rng_below(&rng, (uint64_t)ctx->nnodes)];
		rc = rd->elem ? moirai_ring_create_elem("stress-ring", 16, count, node,
							mflags[rd->mode], &rd->ring)
			      : moirai_ring_create("stress-ring", count, node, mflags[rd->mode],
						   &rd->ring);
		if (rc == -ENOMEM) {
			stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
			free(rd);
			continue;
		}
		if (rc) {
			stress_violation(r, "ring: create: %s", moirai_last_error());
			free(rd);
			break;
		}
		rd->deadline = stress_now() + 0.05 + (double)rng_below(&rng, 300) / 1000.0;
		if (rd->deadline > end)
			rd->deadline = end;
		atomic_store(&rd->producing, rd->producers);
		n = rd->producers + rd->consumers;
		for (int i = 0; i < n; i++)
			ts[i] = (struct rthread){ rd, i < rd->producers ? i : i - rd->producers,
						  rng_seed(ctx, 2, round_no, i + 1) };
		started = stress_start(tids, rd->producers, producer_main, ts, sizeof(ts[0]));
		started += stress_start(tids + started, rd->consumers, consumer_main,
					ts + rd->producers, sizeof(ts[0]));
		if (started < n) {
			fprintf(stderr, "moirai-stress: ring: cannot start threads\n");
			abort();
		}
		stress_join(tids, started);
		for (int p = 0; p < rd->producers; p++) {
			uint64_t np = rd->produced[p];
			uint64_t want = np ? np * (np - 1) / 2 : 0;

			if (rd->got_count[p] != np || rd->got_sum[p] != want)
				stress_violation(r,
						 "ring %s%s%s: producer %d enqueued %" PRIu64
						 ", consumers got %" PRIu64 " (seq sum %" PRIu64
						 ", want %" PRIu64 ")",
						 mode_names[rd->mode], rd->elem ? " elem" : "",
						 rd->bulk ? " bulk" : " burst", p, np,
						 (uint64_t)rd->got_count[p],
						 (uint64_t)rd->got_sum[p], want);
		}
		if (!moirai_ring_empty(rd->ring))
			stress_violation(r, "ring: %u items left after the drain",
					 moirai_ring_count(rd->ring));
		moirai_ring_destroy(rd->ring);
		stress_count(&r->rounds, 1);
		free(rd);
	}
}

/* ---- channels --------------------------------------------------------- */

struct cround {
	const struct stress_ctx *ctx;
	struct stress_result *r;
	struct moirai_chan *ch;
	int senders, receivers;
	uint64_t accepted[STRESS_MAX_THREADS];
	_Atomic uint64_t got_count[STRESS_MAX_THREADS];
	_Atomic uint64_t got_sum[STRESS_MAX_THREADS];
	_Atomic uint64_t sent;
	_Atomic bool dropped;
};

struct cthread {
	struct cround *rd;
	int idx;
	uint64_t rng;
};

static int64_t pick_timeout(uint64_t *rng)
{
	switch (rng_below(rng, 4)) {
	case 0: return MOIRAI_TIMEOUT_TRY;
	case 1: return MOIRAI_TIMEOUT_FOREVER;
	default: return (int64_t)(1000 + rng_below(rng, 2000000));
	}
}

static void *sender_main(void *arg)
{
	struct cthread *t = arg;
	struct cround *rd = t->rd;
	struct item items[BURST_MAX];
	uint64_t seq = 0;

	for (;;) {
		unsigned n = 1 + (unsigned)rng_below(&t->rng, BURST_MAX);
		int64_t to = pick_timeout(&t->rng);
		int rc;

		for (unsigned i = 0; i < n; i++)
			items[i] = (struct item){ (uint32_t)t->idx,
						  item_check((uint32_t)t->idx, seq + i), seq + i };
		rc = moirai_chan_send(rd->ch, items, n, to);
		if (rc == -EPIPE)
			break;
		if (rc == -EAGAIN || rc == -ETIMEDOUT)
			continue;
		if (rc <= 0 || (unsigned)rc > n) {
			stress_violation(rd->r, "chan: send of %u returned %d (%s)", n, rc,
					 moirai_strerror(rc));
			break;
		}
		seq += (unsigned)rc;
		stress_count(&rd->r->ops, (unsigned)rc);
		stress_count(&rd->sent, (unsigned)rc);
	}
	rd->accepted[t->idx] = seq;
	return NULL;
}

static void *receiver_main(void *arg)
{
	struct cthread *t = arg;
	struct cround *rd = t->rd;
	int64_t last[STRESS_MAX_THREADS];
	struct item items[BURST_MAX];

	for (int i = 0; i < STRESS_MAX_THREADS; i++)
		last[i] = -1;
	for (;;) {
		unsigned max = 1 + (unsigned)rng_below(&t->rng, BURST_MAX);
		int rc = moirai_chan_recv(rd->ch, items, max, pick_timeout(&t->rng));

		if (rc == -EPIPE)
			break;
		if (rc == -EAGAIN || rc == -ETIMEDOUT)
			continue;
		if (rc <= 0 || (unsigned)rc > max) {
			stress_violation(rd->r, "chan: recv of %u returned %d (%s)", max, rc,
					 moirai_strerror(rc));
			break;
		}
		for (int i = 0; i < rc; i++) {
			struct item *it = &items[i];

			if ((int)it->producer >= rd->senders ||
			    it->check != item_check(it->producer, it->seq)) {
				stress_violation(rd->r, "chan: torn or foreign message");
				continue;
			}
			if ((int64_t)it->seq <= last[it->producer])
				stress_violation(rd->r,
						 "chan: receiver %d saw sender %u's seq %" PRIu64
						 " after %" PRId64,
						 t->idx, it->producer, it->seq, last[it->producer]);
			last[it->producer] = (int64_t)it->seq;
			if (rd->ctx->violate && !atomic_exchange(&rd->dropped, true))
				continue;
			atomic_fetch_add(&rd->got_count[it->producer], 1);
			atomic_fetch_add(&rd->got_sum[it->producer], it->seq);
		}
		stress_count(&rd->r->ops, (unsigned)rc);
	}
	return NULL;
}

void stress_chan(const struct stress_ctx *ctx, struct stress_result *r)
{
	double end = stress_now() + ctx->duration;
	uint64_t rng = rng_seed(ctx, 3, 0, 0);

	for (uint64_t round_no = 0; stress_now() < end; round_no++) {
		struct cround *rd = calloc(1, sizeof(*rd));
		struct cthread ts[STRESS_MAX_THREADS];
		pthread_t tids[STRESS_MAX_THREADS];
		bool spsc = rng_below(&rng, 4) == 0;
		unsigned count = 16u << rng_below(&rng, 7);
		double slice = 0.02 + (double)rng_below(&rng, 300) / 1000.0;
		int n, started, rc;

		if (!rd)
			break;
		rd->ctx = ctx;
		rd->r = r;
		if (spsc) {
			rd->senders = rd->receivers = 1;
		} else {
			n = 2 + (int)rng_below(&rng, (uint64_t)ctx->threads - 1);
			rd->senders = 1 + (int)rng_below(&rng, (uint64_t)n - 1);
			rd->receivers = n - rd->senders;
		}
		rc = moirai_chan_create("stress-chan", sizeof(struct item), count,
					ctx->nodes[rng_below(&rng, (uint64_t)ctx->nnodes)],
					spsc ? MOIRAI_RING_F_SPSC : 0, &rd->ch);
		if (rc == -ENOMEM) {
			stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
			free(rd);
			continue;
		}
		if (rc) {
			stress_violation(r, "chan: create: %s", moirai_last_error());
			free(rd);
			break;
		}
		n = rd->senders + rd->receivers;
		for (int i = 0; i < n; i++)
			ts[i] = (struct cthread){ rd, i < rd->senders ? i : i - rd->senders,
						  rng_seed(ctx, 3, round_no, i + 1) };
		started = stress_start(tids, rd->senders, sender_main, ts, sizeof(ts[0]));
		started += stress_start(tids + started, rd->receivers, receiver_main,
					ts + rd->senders, sizeof(ts[0]));
		if (started < n) {
			fprintf(stderr, "moirai-stress: chan: cannot start threads\n");
			abort();
		}
		/* Close while everyone is busy (and once something was sent,
		 * however loaded the machine). */
		stress_sleep_ns((uint64_t)(slice * 1e9));
		for (int w = 0; w < 10000 && atomic_load(&rd->sent) == 0; w++)
			stress_sleep_ns(1000000);
		rc = moirai_chan_close(rd->ch);
		if (rc)
			stress_violation(r, "chan: close: %d", rc);
		stress_join(tids, started);
		for (int s = 0; s < rd->senders; s++) {
			uint64_t na = rd->accepted[s], want = na ? na * (na - 1) / 2 : 0;

			if (rd->got_count[s] != na || rd->got_sum[s] != want)
				stress_violation(r,
						 "chan%s: sender %d had %" PRIu64
						 " accepted, receivers got %" PRIu64,
						 spsc ? " spsc" : "", s, na,
						 (uint64_t)rd->got_count[s]);
		}
		if (moirai_chan_count(rd->ch) != 0)
			stress_violation(r, "chan: %u messages left after -EPIPE",
					 moirai_chan_count(rd->ch));
		moirai_chan_destroy(rd->ch);
		stress_count(&r->rounds, 1);
		free(rd);
	}
}
