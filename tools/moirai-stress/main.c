/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-stress: NUMA stress scenarios for the library, each bounded by
 * --duration and reproducible in its choices by --seed (thread timing is
 * not): allocator storms, ring and channel storms, pool storms, scheduler
 * storms and shared-memory peers killed at random points (docs/stress.md).
 *
 * Every scenario checks its own invariants (nothing lost, nothing
 * duplicated, order where promised); this file adds, around each one, the
 * checks of the whole process: the allocator's bytes in use are back where
 * they were, the process has no thread left beyond the ones it had, and
 * the faults injected (--fault, the MOIRAI_FAULT option) were all seen by
 * the callers where the scenario makes every call of the site itself.
 *
 * Exit status: 0 no violation, 1 a violation (or a scenario could not
 * run), 2 bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"
#include "../tool_json.h"

#define BIT(s)	       (1u << (s))
#define SCENARIO_NAMES "alloc, ring, chan, pool, sched, shm"

struct scenario {
	const char *name;
	void (*run)(const struct stress_ctx *, struct stress_result *);
	const char *what;
	/* Sites whose every call the scenario makes itself: each injected
	 * fault there must show up among the failures it saw. */
	unsigned reconcile;
};

static const struct scenario scenarios[] = {
	{ "alloc", stress_alloc, "all threads allocate on every node and free remotely",
	  BIT(MOIRAI_FAULT_RING_ENQUEUE) },
	{ "ring", stress_ring, "MPMC rings of every sync mode, per-producer sequence checks",
	  BIT(MOIRAI_FAULT_RING_ENQUEUE) },
	{ "chan", stress_chan, "channels: senders, receivers, timeouts, close at a random point",
	  0 },
	{ "pool", stress_pool, "pools on every node: caches, bulk, hand-offs between threads",
	  BIT(MOIRAI_FAULT_POOL_GET) | BIT(MOIRAI_FAULT_RING_ENQUEUE) },
	{ "sched", stress_sched,
	  "runtime: spawn/steal/cancel/join/groups/timers, random stops and restarts", 0 },
	{ "shm", stress_shm, "shared-memory peers SIGKILLed at random points", 0 },
};
#define NSCENARIOS (int)(sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: moirai-stress SCENARIO [-d SECONDS] [-s SEED] [-t THREADS]\n"
		   "                     [--fault SPEC] [--json] [-v]\n"
		   "\n"
		   "Runs a stress scenario against the library and checks that nothing was lost,\n"
		   "duplicated or leaked and that every thread was joined.\n"
		   "\n"
		   "  SCENARIO          one of:\n");
	for (int i = 0; i < NSCENARIOS; i++)
		fprintf(f, "    %-8s        %s\n", scenarios[i].name, scenarios[i].what);
	fprintf(f,
		"    all             every scenario in turn\n"
		"  -d, --duration S  seconds per scenario (default 5; 0.05..86400)\n"
		"  -s, --seed N      seed of the random choices (default: from the clock;\n"
		"                    the report prints it)\n"
		"  -t, --threads N   threads per round (default: twice the usable CPUs, 4..16;\n"
		"                    2..64)\n"
		"  --fault SPEC      fault injection, SITE=N,... with SITE arena_commit, pool_get\n"
		"                    or ring_enqueue: every Nth call of each fails (as\n"
		"                    MOIRAI_FAULT=SPEC)\n"
		"  --json            one JSON document on stdout\n"
		"  -v, --verbose     progress on stderr\n"
		"  -V, --version     print the version and exit\n"
		"  -h, --help        print this help and exit\n"
		"Exit status: 0 no violation, 1 a violation or a scenario that could not run,\n"
		"2 bad usage.\n");
}

static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "moirai-stress: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 2;
}

/* ---- shared helpers (stress.h) --------------------------------------- */

void stress_violation(struct stress_result *r, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&r->violations, 1);
	pthread_mutex_lock(&r->lock);
	if (r->ndetail < STRESS_MAX_DETAIL) {
		va_start(ap, fmt);
		vsnprintf(r->detail[r->ndetail], sizeof(r->detail[0]), fmt, ap);
		va_end(ap);
		r->ndetail++;
	}
	pthread_mutex_unlock(&r->lock);
}

double stress_now(void)
{
	return (double)moirai_now_ns() / 1e9;
}

void stress_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int stress_start(pthread_t *tids, int n, void *(*fn)(void *), void *args, size_t size)
{
	int i;

	for (i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, fn, (char *)args + (size_t)i * size) != 0)
			break;
	return i;
}

void stress_join(pthread_t *tids, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

void stress_barrier_init(struct stress_barrier *b, int n)
{
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->n = n;
	b->waiting = 0;
	b->gen = 0;
}

void stress_barrier_wait(struct stress_barrier *b)
{
	pthread_mutex_lock(&b->lock);
	uint64_t gen = b->gen;

	if (++b->waiting == b->n) {
		b->waiting = 0;
		b->gen++;
		pthread_cond_broadcast(&b->cond);
	} else {
		while (gen == b->gen)
			pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

void stress_barrier_fini(struct stress_barrier *b)
{
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
}

/* ---- process-wide checks --------------------------------------------- */

static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * A joined thread can stay listed in /proc/self/task for a moment after
 * pthread_join() returns (the kernel clears the tid before it releases the
 * task), so one reading may count a thread that is already gone: read
 * until the count is @want, or until it holds still, for at most ~0.5 s.
 */
static int thread_count_settled(int want)
{
	int n = thread_count(), prev = -2;

	for (int i = 0; i < 100 && n != want && n != prev; i++) {
		struct timespec ts = { 0, 5000000 };

		nanosleep(&ts, NULL);
		prev = n;
		n = thread_count();
	}
	return n;
}

static int mem_in_use(uint64_t *out)
{
	struct moirai_alloc_stats s;
	int rc;

	/* The caller's cache and the heaps exited threads left behind. */
	moirai_alloc_thread_flush();
	rc = moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s);
	if (rc == 0)
		*out = s.in_use;
	return rc;
}

static void *nothing(void *arg)
{
	return arg;
}

/* Helper threads a sanitizer starts with the first thread (TSan's
 * background thread) must not count as left behind by the first scenario. */
static void start_helpers(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);
}

static int find_nodes(struct stress_ctx *ctx)
{
	int n = moirai_numa_node_count();

	ctx->nnodes = 0;
	for (int node = 0; node < 4096 && ctx->nnodes < n && ctx->nnodes < STRESS_MAX_NODES; node++)
		if (moirai_alloc_node_is_available(node))
			ctx->nodes[ctx->nnodes++] = node;
	return ctx->nnodes > 0 ? 0 : -ENODEV;
}

static void run_one(const struct stress_ctx *ctx, const struct scenario *sc,
		    struct stress_result *r)
{
	uint64_t inj0[MOIRAI_FAULT__COUNT], before = 0, after = 0;
	int threads0 = thread_count_settled(-1);
	double t0 = stress_now();

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->name = sc->name;
	for (int s = 0; s < MOIRAI_FAULT__COUNT; s++)
		inj0[s] = moirai_fault_injected(s);
	if (mem_in_use(&before) != 0)
		stress_violation(r, "allocator stats: %s", moirai_last_error());
	if (ctx->verbose)
		fprintf(stderr, "moirai-stress: %s: %.2f s, seed %" PRIu64 "\n", sc->name,
			ctx->duration, ctx->seed);
	sc->run(ctx, r);
	r->seconds = stress_now() - t0;
	for (int s = 0; s < MOIRAI_FAULT__COUNT; s++) {
		r->injected[s] = moirai_fault_injected(s) - inj0[s];
		if ((sc->reconcile & BIT(s)) && r->seen[s] < r->injected[s])
			stress_violation(r,
					 "%" PRIu64 " %s faults injected but only %" PRIu64
					 " failures seen: a failure was swallowed",
					 r->injected[s], moirai_fault_site_name(s),
					 (uint64_t)r->seen[s]);
	}
	r->threads_left = thread_count_settled(threads0) - threads0;
	if (r->threads_left != 0)
		stress_violation(r, "%d thread(s) left behind (process had %d before)",
				 r->threads_left, threads0);
	if (mem_in_use(&after) != 0)
		stress_violation(r, "allocator stats: %s", moirai_last_error());
	r->mem_in_use = after;
	r->mem_delta = (int64_t)(after - before);
	if (r->mem_delta != 0)
		stress_violation(r,
				 "allocator: %" PRId64 " bytes still in use (was %" PRIu64
				 ", now %" PRIu64 ")",
				 r->mem_delta, before, after);
}

/* ---- report ------------------------------------------------------------ */

static void report_text(const struct stress_ctx *ctx, const char *fault, struct stress_result *res,
			int n)
{
	uint64_t total = 0;

	printf("moirai-stress %s: seed %" PRIu64 ", %.2f s per scenario, %d threads, %d node%s",
	       moirai_version(), ctx->seed, ctx->duration, ctx->threads, ctx->nnodes,
	       ctx->nnodes == 1 ? "" : "s");
	printf(", faults %s\n", *fault ? fault : "off");
	printf("%-8s %12s %7s %10s %-34s %12s %7s\n", "scenario", "ops", "rounds", "violations",
	       "faults injected / failures seen", "mem in use", "secs");
	for (int i = 0; i < n; i++) {
		struct stress_result *r = &res[i];
		char f[80] = "", *p = f;

		for (int s = 0; s < MOIRAI_FAULT__COUNT; s++)
			if (r->injected[s] || r->seen[s])
				p += snprintf(p, sizeof(f) - (size_t)(p - f),
					      "%s%s %" PRIu64 "/%" PRIu64, p == f ? "" : " ",
					      s == 0   ? "commit"
					      : s == 1 ? "get"
						       : "enq",
					      r->injected[s], (uint64_t)r->seen[s]);
		printf("%-8s %12" PRIu64 " %7" PRIu64 " %10" PRIu64 " %-34s %10" PRIu64
		       " B %7.2f\n",
		       r->name, (uint64_t)r->ops, (uint64_t)r->rounds, (uint64_t)r->violations,
		       *f ? f : "-", r->mem_in_use, r->seconds);
		for (int d = 0; d < r->ndetail; d++)
			printf("  violation: %s\n", r->detail[d]);
		if (r->violations > (uint64_t)r->ndetail)
			printf("  ... and %" PRIu64 " more\n",
			       (uint64_t)r->violations - r->ndetail);
		total += r->violations;
	}
	printf("%s: %" PRIu64 " violation%s (rerun: moirai-stress ... --seed %" PRIu64 ")\n",
	       total ? "FAIL" : "OK", total, total == 1 ? "" : "s", ctx->seed);
}

static void report_json(const struct stress_ctx *ctx, const char *fault, struct stress_result *res,
			int n)
{
	uint64_t total = 0;

	printf("{\"version\": ");
	tool_json_str(stdout, moirai_version());
	printf(", \"seed\": %" PRIu64 ", \"duration_s\": %.3f, \"threads\": %d, \"nodes\": [",
	       ctx->seed, ctx->duration, ctx->threads);
	for (int i = 0; i < ctx->nnodes; i++)
		printf("%s%d", i ? ", " : "", ctx->nodes[i]);
	printf("], \"fault\": ");
	tool_json_str(stdout, fault);
	printf(", \"scenarios\": [");
	for (int i = 0; i < n; i++) {
		struct stress_result *r = &res[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		tool_json_str(stdout, r->name);
		printf(", \"ops\": %" PRIu64 ", \"rounds\": %" PRIu64 ", \"violations\": %" PRIu64,
		       (uint64_t)r->ops, (uint64_t)r->rounds, (uint64_t)r->violations);
		printf(", \"faults_injected\": {");
		for (int s = 0; s < MOIRAI_FAULT__COUNT; s++)
			printf("%s\"%s\": %" PRIu64, s ? ", " : "", moirai_fault_site_name(s),
			       r->injected[s]);
		printf("}, \"failures_seen\": {");
		for (int s = 0; s < MOIRAI_FAULT__COUNT; s++)
			printf("%s\"%s\": %" PRIu64, s ? ", " : "", moirai_fault_site_name(s),
			       (uint64_t)r->seen[s]);
		printf("}, \"mem_in_use_bytes\": %" PRIu64 ", \"mem_delta_bytes\": %" PRId64
		       ", \"threads_left\": %d, \"seconds\": %.3f, \"details\": [",
		       r->mem_in_use, r->mem_delta, r->threads_left, r->seconds);
		for (int d = 0; d < r->ndetail; d++) {
			printf("%s", d ? ", " : "");
			tool_json_str(stdout, r->detail[d]);
		}
		printf("]}");
		total += r->violations;
	}
	printf("\n], \"violations\": %" PRIu64 ", \"ok\": %s}\n", total, total ? "false" : "true");
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "fault", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "self-test-violation", no_argument, NULL, 'X' }, /* hidden: docs/stress.md */
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct stress_ctx ctx = { .duration = 5.0 };
	struct stress_result res[NSCENARIOS];
	const char *fault = NULL, *which;
	bool json = false, seeded = false;
	int c, n = 0, run[NSCENARIOS];
	uint64_t total = 0;
	char *end;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hVvd:s:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			errno = 0;
			ctx.duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(ctx.duration) ||
			    ctx.duration < 0.05 || ctx.duration > 86400)
				return bad("--duration takes seconds in 0.05..86400, not '%s'",
					   optarg);
			break;
		case 's':
			errno = 0;
			ctx.seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-')
				return bad("--seed takes an unsigned integer, not '%s'", optarg);
			seeded = true;
			break;
		case 't':
			errno = 0;
			ctx.threads = (int)strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || ctx.threads < 2 ||
			    ctx.threads > STRESS_MAX_THREADS)
				return bad("--threads takes a count in 2..%d, not '%s'",
					   STRESS_MAX_THREADS, optarg);
			break;
		case 'f': fault = optarg; break;
		case 'j': json = true; break;
		case 'v': ctx.verbose = true; break;
		case 'X': ctx.violate = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("moirai-stress %s\n", moirai_version()); return 0;
		default:
			return bad("unknown or incomplete option '%s' (see --help)",
				   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return bad("no scenario given (" SCENARIO_NAMES " or all)");
	which = argv[optind++];
	if (optind < argc)
		return bad("unexpected argument '%s' (see --help)", argv[optind]);
	for (int i = 0; i < NSCENARIOS; i++)
		if (strcmp(which, "all") == 0 || strcmp(which, scenarios[i].name) == 0)
			run[n++] = i;
	if (n == 0)
		return bad("unknown scenario '%.40s' (" SCENARIO_NAMES " or all)", which);
	if (fault && moirai_option_set_str(MOIRAI_OPT_FAULT, fault) != 0)
		return bad("--fault: %s", moirai_last_error());
	fault = moirai_option_get_str(MOIRAI_OPT_FAULT); /* or MOIRAI_FAULT's */
	if (!seeded)
		ctx.seed = moirai_now_ns() ^ ((uint64_t)getpid() << 32);
	if (!ctx.threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		ctx.threads = cpus < 2 ? 4 : cpus > 8 ? 16 : (int)(2 * cpus);
	}
	if (find_nodes(&ctx) != 0) {
		fprintf(stderr, "moirai-stress: the allocator has no usable node: %s\n",
			moirai_last_error());
		return 1;
	}
	start_helpers();
	for (int i = 0; i < n; i++) {
		run_one(&ctx, &scenarios[run[i]], &res[i]);
		total += res[i].violations;
	}
	if (json)
		report_json(&ctx, fault, res, n);
	else
		report_text(&ctx, fault, res, n);
	for (int i = 0; i < n; i++)
		pthread_mutex_destroy(&res[i].lock);
	return total ? 1 : 0;
}
