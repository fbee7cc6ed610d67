/*
 * moirai-bench framework.  A suite file registers cases with
 * BENCH_CASE(suite, case, impl, fn); main.c runs the cases of the requested
 * suite, groups rows by case and columns by implementation, and prints the
 * ratio of each peer's ns/op to moirai's (above 1 = moirai faster), or one
 * JSON document (ARCHITECTURE.md, "Tool contracts").
 *
 * Rules for a case function: fixed iteration counts (ctx->quick divides
 * them), pin threads with bench_pin(), report ns per operation, fill the
 * latency fields only when the case measures latency, and return -ENOTSUP
 * (with a reason in out->note) when the peer is unavailable here.
 */
#ifndef MOIRAI_BENCH_H
#define MOIRAI_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_ctx {
	bool quick; /* --quick: whole suite under 30 s */
	int cpus;   /* usable CPUs (affinity mask) */
	int cpu_a;  /* first usable CPU: producer / ping side */
	int cpu_b;  /* second usable CPU (== cpu_a on a 1-CPU box) */
};

struct bench_result {
	double ns_per_op; /* required */
	double p50_ns;	  /* latency percentiles; < 0 when not measured */
	double p99_ns;
	double p999_ns;
	long peak_rss_kb; /* < 0 when not measured */
	char note[96];	  /* why a case was skipped, or a remark */
};

typedef int (*bench_fn)(const struct bench_ctx *ctx, struct bench_result *out);

struct bench_case {
	const char *suite;
	const char *name;
	const char *impl;
	bench_fn fn;
	struct bench_case *next;
};

void bench__register(struct bench_case *c);

/* Register @fn as implementation @impl of case @name in @suite. */
#define BENCH_CASE(suite_, name_, impl_, fn_)                          \
	static struct bench_case bench_case_##fn_ = {                  \
		.suite = (suite_),                                     \
		.name = (name_),                                       \
		.impl = (impl_),                                       \
		.fn = (fn_),                                           \
	};                                                             \
	__attribute__((constructor)) static void bench_reg_##fn_(void) \
	{                                                              \
		bench__register(&bench_case_##fn_);                    \
	}

/* Scale an iteration count down for --quick (never below 1000). */
long bench_iters(const struct bench_ctx *ctx, long full);

/* Pin the calling thread to OS CPU @cpu; returns 0 or -errno. */
int bench_pin(int cpu);

/*
 * Sort @n latency samples (ns) in place and store p50/p99/p99.9 in @out.
 */
void bench_percentiles(uint64_t *samples, size_t n, struct bench_result *out);

/* Peak resident set size of this process so far, in KiB (getrusage). */
long bench_peak_rss_kb(void);

/*
 * Run one case of this binary in a fresh child process, with LD_PRELOAD set
 * to @preload when not NULL (for allocators that replace malloc and cannot
 * share a process with the others), and read its result back.  Peak RSS is
 * then the child's own.  Returns 0, -ENOTSUP when the child could not run
 * the case (out->note says why), or -errno.
 */
int bench_run_isolated(const struct bench_ctx *ctx, const char *suite, const char *name,
		       const char *impl, const char *preload, struct bench_result *out);

/* True inside a child started by bench_run_isolated(). */
bool bench_is_isolated_child(void);

#endif
