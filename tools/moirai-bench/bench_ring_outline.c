/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench ring, impl "moirai_outline": the ring fast paths as every
 * program calls them by default, out of line (an exported function per
 * operation: ring/ring_fast.c), against the inline bodies that
 * bench_ring.c measures as "moirai".  This file is compiled without
 * MOIRAI_RING_INLINE and includes no DPDK header, exactly like a program
 * that takes the default; the loops are the same text as bench_ring.c's
 * (bench_ring.h), so the call is the only difference.  The tool links
 * libmoirai.a, so the call is direct; through libmoirai.so it would also
 * go through the PLT.
 */
#include <moirai.h>

#include "bench_ring.h"

static inline __attribute__((always_inline)) unsigned outline_enq(struct tput *t, void *const *o,
								  unsigned n)
{
	return moirai_ring_sp_enqueue_burst(t->mr, o, n, NULL);
}

static inline __attribute__((always_inline)) unsigned outline_deq(struct tput *t, void **o,
								  unsigned n)
{
	return moirai_ring_sc_dequeue_burst(t->mr, o, n, NULL);
}

BENCH_RING_WORKERS(outline_spsc, outline_enq, outline_deq)

void *bench__outline_spsc_prod(void *arg)
{
	return outline_spsc_prod(arg);
}

void *bench__outline_spsc_cons(void *arg)
{
	return outline_spsc_cons(arg);
}

#define ST_ENQ(r, o, n) moirai_ring_sp_enqueue_burst(r, o, n, NULL)
#define ST_DEQ(r, o, n) moirai_ring_sc_dequeue_burst(r, o, n, NULL)

BENCH_RING_ST_LOOP(st_loop_moirai_outline, struct moirai_ring *, ST_ENQ, ST_DEQ)
