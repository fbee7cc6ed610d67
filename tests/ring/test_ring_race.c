/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Multi-producer / multi-consumer races on moirai rings: every sync mode,
 * pointer and element rings, with each item tagged (producer, sequence).
 * Every consumer keeps its own bitmap and checksum; at the end the bitmaps
 * must partition the items (each seen exactly once), the checksums must
 * add up, and each consumer must see each producer's items in order (a
 * FIFO ring delivers a producer's items in its enqueue order, and one
 * consumer's successive dequeues take increasing ring positions).
 *
 * At least 10 million items in total under `make check`; scaled down under
 * ThreadSanitizer (about 10x slower), up under `make stress`.  Classic
 * MP/MC runs with two threads pinned one per core (each both produces and
 * consumes), because more MP/MC threads than cores convoy; the
 * oversubscribed cases use RTS and HTS, which tolerate preemption.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moirai/numa.h"
#include "moirai/ring.h"
#include "testutil.h"

#define MAX_THREADS 8
#define MAX_BURST   32
#define WATCHDOG_S  240

static long total_items;

/* Items for a case: base for `make check`, scaled for stress/sanitizers. */
static long items(long base)
{
	long n = base * test_scale() / TEST_SAN_DIVISOR;

	total_items += n;
	return n;
}

enum side_mode { SIDE_SP, SIDE_MP, SIDE_RTS, SIDE_HTS, SIDE_GENERIC };

struct race {
	struct moirai_ring *r;
	unsigned esize; /* 8 or 16 */
	int producers, consumers;
	int both; /* threads that both produce and consume */
	enum side_mode enq, deq;
	long per_producer;
	atomic_long consumed; /* items dequeued so far, all consumers */
	atomic_int start;
	int pin; /* pin thread i to CPU i % cpus */
	long total;
};

struct worker {
	struct race *race;
	int id; /* producer id for producers */
	int cpu;
	uint64_t sum_in, sum_out;
	uint64_t *bitmap; /* total bits, this consumer's sightings */
	long *last_seq;	  /* per producer, last sequence seen */
	long got;
	long order_errors, foreign;
	pthread_t tid;
};

struct item16 {
	uint64_t tag;
	uint64_t check; /* ~tag, to catch torn element copies */
};

static inline uint64_t tag_of(int producer, long seq)
{
	return ((uint64_t)producer << 40) | (uint64_t)seq;
}

static unsigned do_enq(struct race *rc, const void *objs, unsigned n)
{
	struct moirai_ring *r = rc->r;

	if (rc->esize == 16) {
		switch (rc->enq) {
		case SIDE_SP: return moirai_ring_sp_enqueue_burst_elem(r, objs, 16, n, NULL);
		case SIDE_MP: return moirai_ring_mp_enqueue_burst_elem(r, objs, 16, n, NULL);
		case SIDE_RTS: return moirai_ring_mp_rts_enqueue_burst_elem(r, objs, 16, n, NULL);
		case SIDE_HTS: return moirai_ring_mp_hts_enqueue_burst_elem(r, objs, 16, n, NULL);
		default: return moirai_ring_enqueue_burst_elem(r, objs, 16, n, NULL);
		}
	}
	switch (rc->enq) {
	case SIDE_SP: return moirai_ring_sp_enqueue_burst(r, objs, n, NULL);
	case SIDE_MP: return moirai_ring_mp_enqueue_burst(r, objs, n, NULL);
	case SIDE_RTS: return moirai_ring_mp_rts_enqueue_burst(r, objs, n, NULL);
	case SIDE_HTS: return moirai_ring_mp_hts_enqueue_burst(r, objs, n, NULL);
	default: return moirai_ring_enqueue_burst(r, objs, n, NULL);
	}
}

static unsigned do_deq(struct race *rc, void *objs, unsigned n)
{
	struct moirai_ring *r = rc->r;

	if (rc->esize == 16) {
		switch (rc->deq) {
		case SIDE_SP: return moirai_ring_sc_dequeue_burst_elem(r, objs, 16, n, NULL);
		case SIDE_MP: return moirai_ring_mc_dequeue_burst_elem(r, objs, 16, n, NULL);
		case SIDE_RTS: return moirai_ring_mc_rts_dequeue_burst_elem(r, objs, 16, n, NULL);
		case SIDE_HTS: return moirai_ring_mc_hts_dequeue_burst_elem(r, objs, 16, n, NULL);
		default: return moirai_ring_dequeue_burst_elem(r, objs, 16, n, NULL);
		}
	}
	switch (rc->deq) {
	case SIDE_SP: return moirai_ring_sc_dequeue_burst(r, objs, n, NULL);
	case SIDE_MP: return moirai_ring_mc_dequeue_burst(r, objs, n, NULL);
	case SIDE_RTS: return moirai_ring_mc_rts_dequeue_burst(r, objs, n, NULL);
	case SIDE_HTS: return moirai_ring_mc_hts_dequeue_burst(r, objs, n, NULL);
	default: return moirai_ring_dequeue_burst(r, objs, n, NULL);
	}
}

static void record(struct worker *w, uint64_t tag, uint64_t check)
{
	struct race *rc = w->race;
	int p = (int)(tag >> 40);
	long seq = (long)(tag & ((1ull << 40) - 1));
	int nprod = rc->producers + rc->both;

	if (p >= nprod || seq >= rc->per_producer || (rc->esize == 16 && check != ~tag)) {
		w->foreign++;
		return;
	}
	if (seq <= w->last_seq[p])
		w->order_errors++;
	w->last_seq[p] = seq;
	uint64_t bit = (uint64_t)p * (uint64_t)rc->per_producer + (uint64_t)seq;
	w->bitmap[bit / 64] |= 1ull << (bit % 64);
	w->sum_out += tag;
	w->got++;
}

/* Dequeue one burst into this worker's books; returns how many. */
static unsigned consume_once(struct worker *w, unsigned max)
{
	struct race *rc = w->race;
	struct item16 buf16[MAX_BURST];
	void *bufp[MAX_BURST];
	unsigned n;

	if (rc->esize == 16) {
		n = do_deq(rc, buf16, max);
		for (unsigned i = 0; i < n; i++)
			record(w, buf16[i].tag, buf16[i].check);
	} else {
		n = do_deq(rc, bufp, max);
		for (unsigned i = 0; i < n; i++)
			record(w, (uint64_t)(uintptr_t)bufp[i], 0);
	}
	if (n)
		atomic_fetch_add_explicit(&rc->consumed, n, memory_order_relaxed);
	return n;
}

/* Enqueue items [seq, seq + n) of producer w->id; returns how many went. */
static unsigned produce_once(struct worker *w, long seq, unsigned n)
{
	struct race *rc = w->race;
	struct item16 buf16[MAX_BURST];
	void *bufp[MAX_BURST];
	unsigned put;

	for (unsigned i = 0; i < n; i++) {
		uint64_t t = tag_of(w->id, seq + i);

		buf16[i] = (struct item16){ t, ~t };
		bufp[i] = (void *)(uintptr_t)t;
	}
	put = do_enq(rc, rc->esize == 16 ? (void *)buf16 : (void *)bufp, n);
	for (unsigned i = 0; i < put; i++)
		w->sum_in += tag_of(w->id, seq + i);
	return put;
}

static void wait_start(struct worker *w)
{
	if (w->race->pin)
		moirai_numa_pin_thread(w->cpu);
	while (!atomic_load_explicit(&w->race->start, memory_order_acquire))
		sched_yield();
}

static void *producer_main(void *arg)
{
	struct worker *w = arg;
	unsigned seed = (unsigned)w->id * 7919u + 1;

	wait_start(w);
	for (long seq = 0; seq < w->race->per_producer;) {
		unsigned n = (unsigned)(rand_r(&seed) % MAX_BURST) + 1;

		if (seq + n > w->race->per_producer)
			n = (unsigned)(w->race->per_producer - seq);
		unsigned put = produce_once(w, seq, n);

		seq += put;
		if (!put)
			sched_yield();
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct worker *w = arg;
	struct race *rc = w->race;
	unsigned seed = (unsigned)w->id * 104729u + 3;

	wait_start(w);
	while (atomic_load_explicit(&rc->consumed, memory_order_relaxed) < rc->total) {
		if (!consume_once(w, (unsigned)(rand_r(&seed) % MAX_BURST) + 1))
			sched_yield();
	}
	return NULL;
}

/* Both roles in one thread: two such threads race MP and MC on 2 cores. */
static void *both_main(void *arg)
{
	struct worker *w = arg;
	struct race *rc = w->race;
	unsigned seed = (unsigned)w->id * 31u + 5;
	long seq = 0;

	wait_start(w);
	while (seq < rc->per_producer ||
	       atomic_load_explicit(&rc->consumed, memory_order_relaxed) < rc->total) {
		if (seq < rc->per_producer) {
			unsigned n = (unsigned)(rand_r(&seed) % MAX_BURST) + 1;

			if (seq + n > rc->per_producer)
				n = (unsigned)(rc->per_producer - seq);
			seq += produce_once(w, seq, n);
		}
		consume_once(w, (unsigned)(rand_r(&seed) % MAX_BURST) + 1);
	}
	return NULL;
}

static void run_race(const char *name, unsigned flags, unsigned esize, enum side_mode enq,
		     enum side_mode deq, int producers, int consumers, int both, long base_items,
		     unsigned count)
{
	struct race rc = { .esize = esize,
			   .producers = producers,
			   .consumers = consumers,
			   .both = both,
			   .enq = enq,
			   .deq = deq };
	struct worker w[MAX_THREADS];
	int nprod = producers + both, nthreads = producers + consumers + both;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t sum_in = 0, sum_out = 0;
	long got = 0, order = 0, foreign = 0;
	size_t words;

	assert_true(nthreads <= MAX_THREADS);
	rc.per_producer = items(base_items) / nprod;
	rc.total = rc.per_producer * nprod;
	rc.pin = both > 0;
	words = ((size_t)rc.total + 63) / 64;
	alarm(WATCHDOG_S); /* a stuck race kills the test instead of hanging */
	assert_int_equal(moirai_ring_create_elem(name, esize, count, MOIRAI_NODE_ANY, flags, &rc.r),
			 0);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < nthreads; i++) {
		w[i].race = &rc;
		w[i].cpu = (int)(i % (cpus > 0 ? cpus : 1));
		w[i].last_seq = calloc((size_t)nprod, sizeof(long));
		w[i].bitmap = calloc(words, sizeof(uint64_t));
		assert_non_null(w[i].last_seq);
		assert_non_null(w[i].bitmap);
		for (int p = 0; p < nprod; p++)
			w[i].last_seq[p] = -1;
	}
	/* Threads 0..both-1 do both, then producers, then consumers. */
	for (int i = 0; i < nthreads; i++) {
		void *(*fn)(void *) = i < both		     ? both_main
				      : i < both + producers ? producer_main
							     : consumer_main;

		w[i].id = i < nprod ? i : 0;
		assert_int_equal(pthread_create(&w[i].tid, NULL, fn, &w[i]), 0);
	}
	atomic_store_explicit(&rc.start, 1, memory_order_release);
	for (int i = 0; i < nthreads; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	alarm(0);

	/* Books: producers' sums in, consumers' bitmaps and sums out. */
	for (int i = 0; i < nthreads; i++) {
		sum_in += w[i].sum_in;
		if (i < both || i >= both + producers) {
			sum_out += w[i].sum_out;
			got += w[i].got;
			order += w[i].order_errors;
			foreign += w[i].foreign;
		}
	}
	assert_int_equal(foreign, 0);
	assert_int_equal(order, 0);
	assert_int_equal(got, rc.total);
	assert_true(sum_in == sum_out);
	assert_true(moirai_ring_empty(rc.r));
	/* Exactly once: the consumers' bitmaps are disjoint and cover all. */
	for (size_t k = 0; k < words; k++) {
		uint64_t seen = 0, full = ~0ull;

		if (k == words - 1 && rc.total % 64)
			full = (1ull << (rc.total % 64)) - 1;
		for (int i = 0; i < nthreads; i++) {
			if (!(i < both || i >= both + producers))
				continue;
			assert_true((seen & w[i].bitmap[k]) == 0); /* duplicate */
			seen |= w[i].bitmap[k];
		}
		assert_true(seen == full); /* lost */
	}
	for (int i = 0; i < nthreads; i++) {
		free(w[i].bitmap);
		free(w[i].last_seq);
	}
	print_message("%-28s %ld items, %dP %dC %d both, ok\n", name, rc.total, producers,
		      consumers, both);
	moirai_ring_destroy(rc.r);
}

static void test_spsc(void **state)
{
	(void)state;
	run_race("race_spsc", MOIRAI_RING_F_SPSC, 8, SIDE_SP, SIDE_SP, 1, 1, 0, 4000000, 1024);
}

static void test_spsc_elem_generic(void **state)
{
	(void)state;
	run_race("race_spsc_elem", MOIRAI_RING_F_SPSC | MOIRAI_RING_F_EXACT_SZ, 16, SIDE_GENERIC,
		 SIDE_GENERIC, 1, 1, 0, 2000000, 1000);
}

static void test_mpmc_pinned(void **state)
{
	(void)state;
	/* Classic MP/MC: 2 threads, one per core, both enqueue and dequeue. */
	run_race("race_mpmc_pinned", MOIRAI_RING_F_MPMC_PINNED, 8, SIDE_MP, SIDE_MP, 0, 0, 2,
		 4000000, 256);
}

static void test_rts_oversubscribed(void **state)
{
	(void)state;
	run_race("race_rts_2p2c", MOIRAI_RING_F_MP_RTS_ENQ | MOIRAI_RING_F_MC_RTS_DEQ, 8, SIDE_RTS,
		 SIDE_RTS, 2, 2, 0, 4000000, 1024);
}

static void test_hts_oversubscribed(void **state)
{
	(void)state;
	run_race("race_hts_2p2c", MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_MC_HTS_DEQ, 8, SIDE_HTS,
		 SIDE_HTS, 2, 2, 0, 3000000, 1024);
}

static void test_rts_elem_3p3c(void **state)
{
	(void)state;
	run_race("race_rts_elem_3p3c", 0, 16, SIDE_GENERIC, SIDE_GENERIC, 3, 3, 0, 2000000, 512);
}

static void test_hts_mixed_single_consumer(void **state)
{
	(void)state;
	/* Many producers, one consumer: per-producer order is the promise. */
	run_race("race_hts_4p1c", MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_SC_DEQ, 8, SIDE_HTS,
		 SIDE_SP, 4, 1, 0, 2000000, 2048);
}

static void test_total(void **state)
{
	(void)state;
	print_message("total items raced: %ld\n", total_items);
	assert_true(total_items >= 10000000L * test_scale() / TEST_SAN_DIVISOR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spsc),
		cmocka_unit_test(test_spsc_elem_generic),
		cmocka_unit_test(test_mpmc_pinned),
		cmocka_unit_test(test_rts_oversubscribed),
		cmocka_unit_test(test_hts_oversubscribed),
		cmocka_unit_test(test_rts_elem_3p3c),
		cmocka_unit_test(test_hts_mixed_single_consumer),
		cmocka_unit_test(test_total),
	};

	return cmocka_run_group_tests_name("ring_race", tests, NULL, NULL);
}
