/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-stress: what the scenarios share.  Each scenario runs rounds
 * until its deadline, checks its own invariants (nothing lost, nothing
 * duplicated, order where the API promises it) and counts what it did in a
 * struct stress_result; main.c adds the process-wide checks (memory back
 * to where it was, every thread joined, faults injected) and the report.
 */
#ifndef MOIRAI_STRESS_H
#define MOIRAI_STRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <moirai.h>

#define STRESS_MAX_THREADS 64
#define STRESS_MAX_NODES   64
#define STRESS_MAX_DETAIL  6

struct stress_ctx {
	double duration;	     /* seconds per scenario */
	uint64_t seed;		     /* the run's seed; scenarios derive theirs */
	int threads;		     /* threads a scenario starts per round */
	bool violate;		     /* --self-test-violation: drop one item on purpose */
	bool verbose;		     /* progress on stderr */
	int nodes[STRESS_MAX_NODES]; /* nodes the allocator can use */
	int nnodes;
	const char *argv0; /* for the shm scenario's peers (not used: fork) */
};

struct stress_result {
	const char *name;
	_Atomic uint64_t ops;	     /* operations done (per scenario's unit) */
	_Atomic uint64_t violations; /* broken invariants */
	_Atomic uint64_t rounds;     /* rounds (restarts) run */
	/* Failures the scenario saw at the calls that the fault sites fail
	 * (allocations returning ENOMEM, gets -ENOENT, enqueues refusing):
	 * at least the faults injected there, plus the real ones. */
	_Atomic uint64_t seen[MOIRAI_FAULT__COUNT];
	/* Filled by main.c. */
	uint64_t injected[MOIRAI_FAULT__COUNT];
	int64_t mem_delta;   /* allocator in_use after minus before, bytes */
	uint64_t mem_in_use; /* allocator in_use at the end, bytes */
	int threads_left;    /* threads of the process beyond the baseline */
	double seconds;
	pthread_mutex_t lock; /* detail */
	int ndetail;
	char detail[STRESS_MAX_DETAIL][200];
};

/* Record a broken invariant (thread-safe); the first few are kept. */
void stress_violation(struct stress_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void stress_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- randomness: splitmix64, one state per thread ------------------- */

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* A stream for (scenario, round, thread) of the run's seed. */
static inline uint64_t rng_seed(const struct stress_ctx *ctx, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t s = ctx->seed ^ (a * 0x100000001b3ull) ^ (b << 20) ^ (c << 40);

	rng_next(&s);
	return s;
}

/* A 64-bit mix for multiset fingerprints (count, sum, xor of mix). */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

struct fingerprint {
	uint64_t count, sum, xr;
};

static inline void fp_add(struct fingerprint *f, uint64_t id)
{
	f->count++;
	f->sum += id;
	f->xr ^= mix64(id);
}

static inline void fp_merge(struct fingerprint *into, const struct fingerprint *f)
{
	into->count += f->count;
	into->sum += f->sum;
	into->xr ^= f->xr;
}

static inline bool fp_equal(const struct fingerprint *a, const struct fingerprint *b)
{
	return a->count == b->count && a->sum == b->sum && a->xr == b->xr;
}

/* Monotonic seconds. */
double stress_now(void);
/* Sleep @ns nanoseconds. */
void stress_sleep_ns(uint64_t ns);

/* Start @n threads running @fn(@args + i * @size); returns how many
 * started (the caller joins exactly those). */
int stress_start(pthread_t *tids, int n, void *(*fn)(void *), void *args, size_t size);
void stress_join(pthread_t *tids, int n);

/* A simple barrier (pthread_barrier is fine, but this one is TSan-plain). */
struct stress_barrier {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n, waiting;
	uint64_t gen;
};
void stress_barrier_init(struct stress_barrier *b, int n);
void stress_barrier_wait(struct stress_barrier *b);
void stress_barrier_fini(struct stress_barrier *b);

/* The scenarios. */
void stress_alloc(const struct stress_ctx *ctx, struct stress_result *r);
void stress_ring(const struct stress_ctx *ctx, struct stress_result *r);
void stress_chan(const struct stress_ctx *ctx, struct stress_result *r);
void stress_pool(const struct stress_ctx *ctx, struct stress_result *r);
void stress_sched(const struct stress_ctx *ctx, struct stress_result *r);
void stress_shm(const struct stress_ctx *ctx, struct stress_result *r);

#endif /* MOIRAI_STRESS_H */
