/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ring suite's shared harness, for its two translation units:
 * bench_ring.c (built with MOIRAI_RING_INLINE: moirai's inline fast paths
 * and the peers) and bench_ring_outline.c (built without it: the exported
 * out-of-line fast paths that programs call by default).  Both expand the
 * same worker loops from this header, so the impls differ only in the
 * calls inside them.
 */
#ifndef MOIRAI_BENCH_RING_H
#define MOIRAI_BENCH_RING_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>

#include "bench.h"

struct moirai_ring;
struct q; /* one queue of any kind: bench_ring.c */

#define BENCH_RING_SENTINEL ((void *)(uintptr_t)1)

/* One throughput run, shared by its producer and consumer threads. */
struct tput {
	struct q *q;
	struct moirai_ring *mr; /* the ring, when the queue is a moirai ring */
	int mode;		/* enum mode of bench_ring.c */
	unsigned burst;
	long per_producer;
	int nprod, ncons;
	atomic_int ready;
	atomic_int stop; /* time cap reached: producers stop early */
	atomic_int go;
	atomic_long consumed; /* eventfd only */
	atomic_int done;      /* eventfd only */
	long bad;	      /* items that made no sense */
};

struct tthread {
	struct tput *t;
	int id;
	int cpu;  /* -1 = unpinned */
	long got; /* consumer: items received; producer: sent */
	pthread_t tid;
};

/* Pin, check in, and wait for the start signal. */
void bench__ring_start(struct tput *t, int cpu);

/* x86's pause, as rte_pause(), without DPDK's headers (the outline TU has none). */
static inline void bench_ring_pause(void)
{
	__builtin_ia32_pause();
}

/* On no progress: pause, and yield after 64 fruitless tries. */
static inline void bench_ring_backoff(unsigned *fails)
{
	if (++*fails >= 64) {
		*fails = 0;
		sched_yield();
	} else {
		bench_ring_pause();
	}
}

/*
 * Producer and consumer thread functions NAME_prod / NAME_cons around
 * ENQ(t, objs, n) and DEQ(t, objs, n), which return how many objects moved
 * (always-inline functions, so that nothing but the ring call sits in the
 * loop).  Consumers stop at a sentinel; producers stop at per_producer
 * items or at the time cap.
 */
#define BENCH_RING_WORKERS(NAME, ENQ, DEQ)                                                 \
	static void *NAME##_prod(void *arg)                                                \
	{                                                                                  \
		struct tthread *w = arg;                                                   \
		struct tput *t = w->t;                                                     \
		void *buf[32];                                                             \
		unsigned fails = 0;                                                        \
		long sent = 0;                                                             \
                                                                                           \
		bench__ring_start(t, w->cpu);                                              \
		while (sent < t->per_producer &&                                           \
		       !atomic_load_explicit(&t->stop, memory_order_relaxed)) {            \
			unsigned n = t->burst, put;                                        \
                                                                                           \
			if ((long)n > t->per_producer - sent)                              \
				n = (unsigned)(t->per_producer - sent);                    \
			for (unsigned i = 0; i < n; i++)                                   \
				buf[i] = (void *)(uintptr_t)(16 + sent + i);               \
			put = ENQ(t, buf, n);                                              \
			sent += put;                                                       \
			if (!put)                                                          \
				bench_ring_backoff(&fails);                                \
		}                                                                          \
		w->got = sent;                                                             \
		return NULL;                                                               \
	}                                                                                  \
	static void *NAME##_cons(void *arg)                                                \
	{                                                                                  \
		struct tthread *w = arg;                                                   \
		struct tput *t = w->t;                                                     \
		void *buf[32];                                                             \
		unsigned fails = 0;                                                        \
                                                                                           \
		bench__ring_start(t, w->cpu);                                              \
		for (;;) {                                                                 \
			unsigned got = DEQ(t, buf, t->burst);                              \
			if (!got) {                                                        \
				bench_ring_backoff(&fails);                                \
				continue;                                                  \
			}                                                                  \
			/* Sentinels come last; pass extras back on. */                    \
			if (buf[got - 1] == BENCH_RING_SENTINEL) {                         \
				unsigned s = 0;                                            \
				while (s < got && buf[got - 1 - s] == BENCH_RING_SENTINEL) \
					s++;                                               \
				w->got += got - s;                                         \
				for (unsigned i = 0; i < s - 1; i++)                       \
					buf[i] = BENCH_RING_SENTINEL;                      \
				for (unsigned back = 0; back < s - 1;)                     \
					back += ENQ(t, buf + back, s - 1 - back);          \
				return NULL;                                               \
			}                                                                  \
			w->got += got;                                                     \
		}                                                                          \
	}

/*
 * The single-thread loop: @n rounds of enqueue @burst, dequeue @burst.
 * Each impl has its own copy with its own name (st_loop_<impl>), kept out
 * of line so that callgrind --toggle-collect can count exactly its
 * instructions (docs/bench.md).
 */
#define BENCH_RING_ST_LOOP(FN, ARG_T, ENQ, DEQ)                                           \
	__attribute__((noinline)) unsigned FN(ARG_T a, void *const *in, void **o, long n, \
					      unsigned burst)                             \
	{                                                                                 \
		unsigned moved = 0;                                                       \
                                                                                          \
		for (long k = 0; k < n; k++) {                                            \
			moved += ENQ(a, in, burst);                                       \
			moved += DEQ(a, o, burst);                                        \
		}                                                                         \
		return moved;                                                             \
	}

/* ---- what bench_ring_outline.c gives bench_ring.c --------------------- */

/* SPSC producer / consumer over the out-of-line calls (t->mr). */
void *bench__outline_spsc_prod(void *arg);
void *bench__outline_spsc_cons(void *arg);

/* The single-thread loop over the out-of-line SP/SC calls. */
unsigned st_loop_moirai_outline(struct moirai_ring *r, void *const *in, void **o, long n,
				unsigned burst);

#endif
