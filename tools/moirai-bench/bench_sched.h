/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "sched": what the implementations share.  bench_sched.c registers
 * every case and holds moirai's and the serial implementations;
 * bench_sched_pool.c the two C thread pools (pthread_pool, fifo_pool);
 * bench_sched_omp.c the OpenMP peer (built with -fopenmp);
 * bench_sched_tbb.cpp the oneTBB peer (C++, behind a C function table).
 * docs/bench.md describes the cases.
 */
#ifndef MOIRAI_BENCH_SCHED_H
#define MOIRAI_BENCH_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "bench.h"

/* spawn_*: tasks per batch, spawned back to back and then all joined. */
#define SPAWN_BATCH 256
/* fib_*: fib(SCHED_FIB_N), serial below the cutoff, and its value. */
#define SCHED_FIB_N	 30
#define SCHED_FIB_CUTOFF 12
#define SCHED_FIB_VALUE	 832040L
/* pfor_sum: elements of the array summed (32 MiB of uint32_t). */
#define SCHED_PFOR_N (1UL << 23)
/* pfor chunks of the pool peers: what moirai's grain 0 gives on 2 workers. */
#define SCHED_PFOR_CHUNKS_PER_WORKER 8
/* Bound of every wait: a case that waits longer has failed (never hangs). */
#define SCHED_WAIT_NS (30ULL * 1000000000ULL)

/* One measured run of a case, as the case functions see it. */
struct sched_run {
	const struct bench_ctx *ctx;
	struct bench_result *out;
	int workers; /* threads that run tasks (usable CPUs) */
	int cpu_a, cpu_b;
};

/* The parameters of one run, derived from the context (quick, warm-up). */
long sched_spawn_tasks(const struct bench_ctx *ctx);
int sched_fib_reps(const struct bench_ctx *ctx);
int sched_pfor_passes(const struct bench_ctx *ctx);
int sched_wake_samples(const struct bench_ctx *ctx, bool parked);
uint64_t sched_idle_window_ns(const struct bench_ctx *ctx);

/* The array of pfor_sum (built once) and its exact sum. */
const uint32_t *sched_pfor_array(uint64_t *expect);
/* The result of a pfor_sum run: ns per element, or -EIO with a note when
 * @p bad of @p passes sums were wrong. */
int sched_pfor_result(struct sched_run *run, int passes, long bad, uint64_t ns);

/* Serial fib, the leaf of every fib implementation. */
long sched_fib_serial(int n);

/* An empty task's body: marks its slot, so that every run is counted. */
static inline void sched_mark(void *slot)
{
	*(volatile unsigned char *)slot = 1;
}

/* Count the marks in @flags[0..n) and clear them. */
long sched_count_marks(unsigned char *flags, long n);

/*
 * Wake latency (submit -> start) of the wake cases: the submitter is a
 * thread of its own, pinned; the task records when it started.
 */
struct sched_wake_slot {
	volatile uint64_t submit_ns;
	volatile uint64_t start_ns; /* written by the task; 0 until it ran */
};

/* The task body of the wake cases. */
static inline void sched_wake_body(struct sched_wake_slot *s, uint64_t now)
{
	__atomic_store_n(&s->start_ns, now, __ATOMIC_RELEASE);
}

/*
 * Run the wake case: a thread pinned to @submit_cpu submits one task at a
 * time through @submit (which spawns a task that calls sched_wake_body()),
 * waits until it started, and pauses (3 ms when @parked, else 5 us spinning)
 * before the next.  Fills run->out.  0 or an error.
 */
int sched_wake_drive(struct sched_run *run, bool parked, int submit_cpu,
		     int (*submit)(void *impl, struct sched_wake_slot *s), void *impl);

/* Fill out's percentiles and mean from @lat[0..n). */
void sched_latency_result(struct bench_result *out, const uint64_t *lat, long n);

/*
 * Busy-wait until moirai_now_ns() >= @until (the service time of the flood's
 * tasks, and the short gap of the spinning wake case).
 */
void sched_spin_until(uint64_t until);

/* CPU time of the whole process, ns (CLOCK_PROCESS_CPUTIME_ID). */
uint64_t sched_process_cpu_ns(void);

/*
 * A peer behind a C table (oneTBB, OpenMP).  Each entry is one measured run
 * and returns 0, -ENOTSUP (out->note says why) or an error.  NULL: the peer
 * has no such case.
 */
struct sched_peer {
	const char *name;
	int (*spawn_local)(struct sched_run *run);
	int (*spawn_inject)(struct sched_run *run);
	int (*fib)(struct sched_run *run);
	int (*pfor)(struct sched_run *run);
	int (*idle_cpu)(struct sched_run *run);
	int (*wake)(struct sched_run *run, bool parked);
};

extern const struct sched_peer sched_tbb;
extern const struct sched_peer sched_omp;

/* ---- the C pools (bench_sched_pool.c) ------------------------------------ */

enum cpool_kind {
	CPOOL_PTHREAD, /* mutex + condvar, one shared linked queue, malloc per task */
	CPOOL_FIFO,    /* one lock-free FIFO ring, spin then park, no allocation */
};

int cpool_spawn_local(struct sched_run *run, enum cpool_kind kind);
int cpool_spawn_inject(struct sched_run *run, enum cpool_kind kind);
int cpool_fib(struct sched_run *run, enum cpool_kind kind);
int cpool_pfor(struct sched_run *run, enum cpool_kind kind);
int cpool_idle_cpu(struct sched_run *run, enum cpool_kind kind);
int cpool_wake(struct sched_run *run, enum cpool_kind kind, bool parked);
int cpool_flood(struct sched_run *run, enum cpool_kind kind, bool flood);

/* ---- the flood (shared by moirai and the C pools) ------------------------ */

/* Background tasks outstanding per worker (a closed loop: each one that
 * ends submits the next, so every worker always has a backlog). */
#define FLOOD_BACKLOG 16
/* Background service times: most short, 1 in FLOOD_LONG_EVERY 100x longer. */
#define FLOOD_SHORT_NS	 2000
#define FLOOD_LONG_NS	 200000
#define FLOOD_LONG_EVERY 100
/* Cooperative yield granularity of a background task. */
#define FLOOD_CHUNK_NS 1000
/* Critical tasks: one every FLOOD_PERIOD_NS from a foreign thread. */
#define FLOOD_PERIOD_NS 100000

long sched_flood_criticals(const struct bench_ctx *ctx);

/* One background task; reused for the task it submits when it ends. */
struct flood_bg {
	uint64_t left_ns; /* service time still to do */
	uint64_t rng;
	void *owner; /* struct flood_state */
};

struct flood_state {
	struct flood_bg *bg; /* workers x FLOOD_BACKLOG */
	int nbg;
	uint64_t *submit_ns; /* per critical task */
	uint64_t *lat_ns;    /* per critical task, written by it */
	long ncrit;
	int stop;	/* atomic: background tasks stop resubmitting */
	long bg_live;	/* atomic: background tasks not yet ended for good */
	long bg_done;	/* atomic: background tasks completed */
	long crit_done; /* atomic */
	void *impl;	/* the implementation's handle */
};

int flood_state_init(struct flood_state *st, const struct bench_ctx *ctx, int workers, bool flood);
void flood_state_fini(struct flood_state *st);
/* Next service time of @b (bimodal, deterministic per task). */
void flood_bg_next(struct flood_bg *b);
/* Run up to the end of @b's service time, returning early (true) when the
 * running moirai task should yield; never early on other threads. */
bool flood_bg_work(struct flood_bg *b);
/* The critical task @i: record its start latency. */
void flood_crit_body(struct flood_state *st, long i);
/* Submit the critical tasks one per period through @submit (returns 0 or
 * an error), wait for them all, stop the flood and wait for it to drain
 * (@bg_wait true); fill out from the latencies. */
int flood_drive(struct flood_state *st, struct bench_result *out,
		int (*submit)(struct flood_state *st, long i));

#ifdef __cplusplus
}
#endif

#endif
