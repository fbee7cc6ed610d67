/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench framework.  A suite file registers its suite once with
 * BENCH_SUITE(name, "what it compares") and its cases with
 * BENCH_CASE(suite, case, impl, fn).  main.c runs every case of the
 * requested suites R times (--repeats), interleaving the implementations of
 * a case within each repeat, and report.c prints, per case and
 * implementation, the median and the [min-max] spread over the repeats, the
 * ratio of each peer's median to moirai's (above 1 = moirai faster) and
 * whether the two spreads overlap (then the ratio is not significant), or
 * one JSON document (docs/bench.md).
 *
 * Rules for a case function: one timed measurement per call (the framework
 * repeats it), fixed iteration counts through bench_iters(), pin threads
 * with bench_pin(), report ns per operation and the operations timed
 * (ops), fill the latency fields only when the case measures latency, and
 * return -ENOTSUP (with a reason in out->note) when the peer is
 * unavailable here.  Any other error is a failure of the run (exit 1).
 */
#ifndef MOIRAI_BENCH_H
#define MOIRAI_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The commit the binary was built from; the Makefile may pass it. */
#ifndef MOIRAI_COMMIT
#define MOIRAI_COMMIT ""
#endif

#ifdef __clang__
#define BENCH_COMPILER "clang " __clang_version__
#else
#define BENCH_COMPILER "gcc " __VERSION__
#endif

/* Upper bound of --repeats: a sample array per result stays small. */
#define BENCH_MAX_REPEATS 50

struct bench_ctx {
	bool quick;  /* --quick: iterations / BENCH_QUICK_DIV, suite under 30 s */
	bool warmup; /* an untimed run before the measured one: iterations / 10 */
	int repeats; /* --repeats: measured runs per (case, impl) */
	int cpus;    /* usable CPUs (affinity mask) */
	int cpu_a;   /* first usable CPU: producer / ping side */
	int cpu_b;   /* second usable CPU (== cpu_a on a 1-CPU box) */
};

/* --quick divides every iteration count by this. */
#define BENCH_QUICK_DIV 10

/* The quantiles (percent) of a latency CDF (bench_result.cdf_ns). */
#define BENCH_CDF_N 21
extern const double bench_cdf_q[BENCH_CDF_N];

/* One measurement: what a case function fills in. */
struct bench_result {
	double ns_per_op; /* required */
	double p50_ns;	  /* latency percentiles; < 0 when not measured */
	double p99_ns;
	double p999_ns;
	long peak_rss_kb; /* < 0 when not measured */
	long ops;	  /* operations timed; 0 when not said */
	char note[96];	  /* why a case was skipped, or a remark */
	/* Latency at each quantile of bench_cdf_q (for --plot); a point
	 * < 0 is not known.  All 0 (the default): no CDF. */
	double cdf_ns[BENCH_CDF_N];
};

/* Fill @r's percentiles, CDF and mean from a histogram (moirai/hist.h). */
struct moirai_hist;
void bench_result_from_hist(struct bench_result *r, const struct moirai_hist *h);

/* The directory moirai-bench's own executable is in (for sibling tools). */
int bench_exe_dir(char *buf, size_t len);

typedef int (*bench_fn)(const struct bench_ctx *ctx, struct bench_result *out);

struct bench_case {
	const char *suite;
	const char *name;
	const char *impl;
	bench_fn fn;
	struct bench_case *next;
};

struct bench_suite {
	const char *name;
	const char *what; /* one line for --help */
	struct bench_suite *next;
};

void bench__register(struct bench_case *c);
void bench__register_suite(struct bench_suite *s);

/* Register suite @name_ (an identifier: ring, alloc, sched, ...). */
#define BENCH_SUITE(name_, what_)                                              \
	static struct bench_suite bench_suite_##name_ = {                      \
		.name = #name_,                                                \
		.what = (what_),                                               \
	};                                                                     \
	__attribute__((constructor)) static void bench_reg_suite_##name_(void) \
	{                                                                      \
		bench__register_suite(&bench_suite_##name_);                   \
	}

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

/* Scale an iteration count for --quick (never below 1000) and warm-up runs (a tenth). */
long bench_iters(const struct bench_ctx *ctx, long full);

/* Pin the calling thread to OS CPU @cpu; returns 0 or -errno. */
int bench_pin(int cpu);

/* Peak resident set size of this process so far, in KiB (getrusage). */
long bench_peak_rss_kb(void);

/*
 * Run one case of this binary once in a fresh child process, with
 * LD_PRELOAD set to @preload when not NULL (for allocators that replace
 * malloc and cannot share a process with the others), and read its result
 * back.  Peak RSS is then the child's own.  Returns 0, -ENOTSUP when the
 * peer is unavailable (library missing or not preloaded; out->note says
 * which), or the child's error (-EIO when it crashed or said nothing).
 */
int bench_run_isolated(const struct bench_ctx *ctx, const char *suite, const char *name,
		       const char *impl, const char *preload, struct bench_result *out);

/* True inside a child started by bench_run_isolated(). */
bool bench_is_isolated_child(void);

/* ---- between main.c, report.c and machine.c ------------------------- */

/* Every measurement of one (case, impl) pair, in run order. */
struct bench_row {
	const struct bench_case *c;
	struct bench_result r[BENCH_MAX_REPEATS];
	int n;	/* measurements taken */
	int rc; /* 0, -ENOTSUP (skipped) or the error that stopped it */
	char note[96];
};

/* What the JSON "machine" object says; collected once at start. */
struct bench_machine {
	char cpu_model[128];
	char kernel[320]; /* uname: 4 fields of up to 65 */
	char commit[64];
	const char *commit_source; /* "build", "git" or "unknown" */
	char thp[32];
	char started[32]; /* UTC, ISO 8601 */
	double load_start[3], load_end[3];
	int cpus_online;
	/* Physical cores (hwloc's Core objects of the live machine, each PU a
	 * core without them): "cpus" counts logical CPUs, so on an SMT
	 * machine it is twice this.  -1 when the topology cannot be read. */
	int cores, cores_usable;
	int numa_nodes;
	double duration_s;
};

void bench__machine_probe(struct bench_machine *m);
void bench__machine_finish(struct bench_machine *m, uint64_t t0_ns);

void bench__print_table(const char *suite, const struct bench_ctx *ctx,
			const struct bench_row *rows, int n);
void bench__print_json(FILE *f, const char *suite, const struct bench_ctx *ctx,
		       const struct bench_machine *m, const struct bench_row *rows, int n);
void bench__print_markdown(FILE *f, const char *suite, const struct bench_ctx *ctx,
			   const struct bench_machine *m, const struct bench_row *rows, int n);
/* The measurement of @row with the median p99 among those with a CDF. */
const struct bench_result *bench__median_cdf(const struct bench_row *row);
/* SVG plots into @dir with gnuplot: latency CDFs (sched flood, pipeline)
 * and one throughput bar chart per suite.  0 or -errno (message printed). */
int bench__plot(const char *dir, const struct bench_row *rows, int n);

#endif
