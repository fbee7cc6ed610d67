/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench: side-by-side comparisons of moirai with its peers.
 *
 *   moirai-bench SUITE [--json] [--quick] [--repeats N] [--case SUBSTR[,...]]
 *                [--out DIR] [--plot DIR]
 *                [--impl NAME[,NAME...]] [--list]
 *
 * Every case is measured in the same run as its peers, R times, with the
 * implementations interleaved within each repeat (A1 B1 C1, B2 C2 A2, ...)
 * so that the slow drifts of a shared box hit all of them alike; the
 * report carries each figure's spread, not one number (docs/bench.md).
 *
 * This file owns the suite and case registries, the command line and the
 * run loop; report.c prints, machine.c describes the machine.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moirai.h>

#include "bench.h"

/* The affinity the process started with; restored after every run. */
static cpu_set_t start_affinity;
static bool have_start_affinity;

static struct bench_case *cases;
static struct bench_suite *suites;

/*
 * Suites that --help names before they have cases, and why they have none.
 * A suite file that registers itself (BENCH_SUITE) takes precedence, so
 * adding bench_sched.c needs no edit here; its row can go then.
 */
static const struct {
	const char *name, *what, *missing;
} planned[] = {
	{ "net", "channels across hosts (UCX) against ucx_perftest and TCP",
	  "the net/ layer is not built" },
};

void bench__register(struct bench_case *c)
{
	/* Append so that cases run in file order. */
	struct bench_case **p = &cases;

	while (*p)
		p = &(*p)->next;
	c->next = NULL;
	*p = c;
}

void bench__register_suite(struct bench_suite *s)
{
	/* Sorted by name: constructor order is link order, not a promise. */
	struct bench_suite **p = &suites;

	while (*p && strcmp((*p)->name, s->name) < 0)
		p = &(*p)->next;
	s->next = *p;
	*p = s;
}

static const struct bench_suite *suite_find(const char *name)
{
	for (const struct bench_suite *s = suites; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static bool suite_has_cases(const char *name)
{
	for (const struct bench_case *c = cases; c; c = c->next)
		if (!strcmp(c->suite, name))
			return true;
	return false;
}

long bench_iters(const struct bench_ctx *ctx, long full)
{
	long n = ctx->quick ? full / BENCH_QUICK_DIV : full;

	n = n < 1000 ? 1000 : n;
	/* A warm-up needs to touch the paths, not to be timed. */
	return ctx->warmup ? n / 10 : n;
}

int bench_pin(int cpu)
{
	return moirai_numa_pin_thread(cpu);
}

long bench_peak_rss_kb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

bool bench_is_isolated_child(void)
{
	return getenv("MOIRAI_BENCH_CHILD") != NULL;
}

int bench_run_isolated(const struct bench_ctx *ctx, const char *suite, const char *name,
		       const char *impl, const char *preload, struct bench_result *out)
{
	char cmd[1024], line[512];
	FILE *f;
	int st, got = 0, skip = 0, fail = 0, n;

	if (preload && access(preload, R_OK) != 0) {
		snprintf(out->note, sizeof(out->note), "%s not found", preload);
		return -ENOTSUP;
	}
	/* Case and impl names are ours (no quotes in them): safe to quote. */
	snprintf(cmd, sizeof(cmd),
		 "MOIRAI_BENCH_CHILD=1 %s%s /proc/%d/exe %s --case '%s' --impl '%s' "
		 "--repeats 1 %s",
		 preload ? "LD_PRELOAD=" : "", preload ? preload : "", (int)getpid(), suite, name,
		 impl, ctx->quick ? "--quick" : "");
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "RESULT %lf %lf %lf %lf %ld %ld", &out->ns_per_op, &out->p50_ns,
			   &out->p99_ns, &out->p999_ns, &out->peak_rss_kb, &out->ops) == 6) {
			got = 1;
		} else if (!strncmp(line, "SKIP ", 5)) {
			skip = 1;
			snprintf(out->note, sizeof(out->note), "%.95s", line + 5);
		} else if (sscanf(line, "FAIL %d %n", &fail, &n) == 1) {
			snprintf(out->note, sizeof(out->note), "%.95s", line + n);
		}
	}
	st = pclose(f);
	if (got && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (skip)
		return -ENOTSUP;
	/* A child that crashed or failed is a failure of the run, never a skip. */
	if (!out->note[0] && WIFSIGNALED(st))
		snprintf(out->note, sizeof(out->note), "child killed by signal %d", WTERMSIG(st));
	else if (!out->note[0])
		snprintf(out->note, sizeof(out->note), "child exit status %d",
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return fail < 0 ? fail : -EIO;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moirai-bench SUITE [--json] [--quick] [--repeats N] [--case SUBSTR[,...]]\n"
		"                    [--impl NAME[,NAME...]] [--out DIR] [--plot DIR] [--list]\n"
		"  SUITE      one of:\n");
	for (const struct bench_suite *s = suites; s; s = s->next)
		fprintf(f, "    %-8s %s\n", s->name, s->what);
	for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++)
		if (!suite_find(planned[i].name))
			fprintf(f, "    %-8s %s (no cases yet: %s)\n", planned[i].name,
				planned[i].what, planned[i].missing);
	fprintf(f,
		"    all      every suite that has cases\n"
		"  --json     one JSON document on stdout (docs/bench.md)\n"
		"  --quick    iterations / %d (each suite under 30 s)\n"
		"  --repeats  measured runs per case and implementation, 1..%d\n"
		"             (default 5, 3 with --quick); implementations interleaved\n"
		"  --case     run only cases whose name contains SUBSTR (or one of SUBSTR,...)\n"
		"  --impl     run only implementation NAME (or NAME,NAME,...)\n"
		"  --out      also write DIR/bench.md (Markdown tables) and DIR/bench.json\n"
		"  --plot     draw SVG plots into DIR with gnuplot: latency CDFs and\n"
		"             throughput bars\n"
		"  --list     list the cases of SUITE and exit\n"
		"  -V, --version  print the version and exit\n"
		"  -h, --help     print this help and exit\n"
		"Prints one row per case and one column per implementation: the median\n"
		"ns/op with its [min-max] over the repeats, and each peer's median divided\n"
		"by moirai's (above 1 = moirai faster); '~' marks a ratio whose two\n"
		"[min-max] ranges overlap (not significant).\n",
		BENCH_QUICK_DIV, BENCH_MAX_REPEATS);
}

/* 0 when @suite may run; otherwise prints why and returns 2. */
static int check_suite(const char *suite)
{
	if (!strcmp(suite, "all"))
		return 0;
	if (suite_find(suite)) {
		if (suite_has_cases(suite))
			return 0;
		fprintf(stderr, "moirai-bench: suite '%s' has no cases\n", suite);
		return 2;
	}
	for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++)
		if (!strcmp(suite, planned[i].name)) {
			fprintf(stderr, "moirai-bench: suite '%s' has no cases yet: %s\n", suite,
				planned[i].missing);
			return 2;
		}
	fprintf(stderr, "moirai-bench: unknown suite '%s' (see --help)\n", suite);
	return 2;
}

/* A registry mistake is the program's own bug: say so before running. */
static int check_registry(void)
{
	for (const struct bench_case *c = cases; c; c = c->next)
		if (!suite_find(c->suite)) {
			fprintf(stderr, "moirai-bench: case '%s' names unregistered suite '%s'\n",
				c->name, c->suite);
			return 1;
		}
	return 0;
}

static void init_ctx(struct bench_ctx *ctx)
{
	cpu_set_t set;

	ctx->cpus = 0;
	ctx->cpu_a = ctx->cpu_b = -1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		start_affinity = set;
		have_start_affinity = true;
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (!CPU_ISSET(c, &set))
				continue;
			if (ctx->cpu_a < 0)
				ctx->cpu_a = c;
			else if (ctx->cpu_b < 0)
				ctx->cpu_b = c;
			ctx->cpus++;
		}
	}
	if (ctx->cpu_a < 0)
		ctx->cpu_a = 0;
	if (ctx->cpu_b < 0)
		ctx->cpu_b = ctx->cpu_a;
}

/* Whether @name is one of the comma-separated names in @list. */
static bool in_list(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',') {
		if (strcspn(p, ",") == len && !strncmp(p, name, len))
			return true;
	}
	return false;
}

/* Whether one of the comma-separated substrings in @list occurs in @name. */
static bool any_substr(const char *list, const char *name)
{
	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',') {
		size_t len = strcspn(p, ",");
		char part[128];

		if (len == 0 || len >= sizeof(part))
			continue;
		memcpy(part, p, len);
		part[len] = '\0';
		if (strstr(name, part))
			return true;
	}
	return false;
}

static bool selected(const struct bench_case *c, const char *suite, const char *case_filter,
		     const char *impl_filter, bool exact)
{
	if (strcmp(suite, "all") && strcmp(suite, c->suite))
		return false;
	if (case_filter &&
	    (exact ? strcmp(c->name, case_filter) : !any_substr(case_filter, c->name)))
		return false;
	return !impl_filter || in_list(impl_filter, c->impl);
}

static bool same_case(const struct bench_case *a, const struct bench_case *b)
{
	return !strcmp(a->suite, b->suite) && !strcmp(a->name, b->name);
}

static void run_one(const struct bench_ctx *ctx, struct bench_row *row)
{
	struct bench_ctx warm = *ctx;
	struct bench_result *r = &row->r[row->n];
	int rc;

	/*
	 * An untimed run at a tenth of the iterations first: page faults,
	 * lazy binding and cold caches belong to no implementation.
	 */
	warm.warmup = true;
	*r = (struct bench_result){ .p50_ns = -1, .p99_ns = -1, .p999_ns = -1, .peak_rss_kb = -1 };
	rc = row->c->fn(&warm, r);
	if (!rc) {
		*r = (struct bench_result){
			.p50_ns = -1, .p99_ns = -1, .p999_ns = -1, .peak_rss_kb = -1
		};
		rc = row->c->fn(ctx, r);
	}
	/* A case that pinned the calling thread (the ring suite's single-thread
	 * rows) must not narrow what later cases see: thread pools and
	 * runtimes created afterwards inherit the mask, and a topology probe
	 * counts only the CPUs in it. */
	if (have_start_affinity)
		sched_setaffinity(0, sizeof(start_affinity), &start_affinity);
	if (r->note[0])
		snprintf(row->note, sizeof(row->note), "%s", r->note);
	if (rc) {
		row->rc = rc;
		return;
	}
	row->n++;
}

/*
 * Rows first..last-1 are one case's implementations.  Repeat k runs them
 * starting at implementation k (mod count), so that no implementation is
 * always the first after a change of case or always follows the same peer.
 */
static void run_group(const struct bench_ctx *ctx, struct bench_row *rows, int first, int last,
		      bool progress)
{
	int m = last - first;

	if (progress)
		fprintf(stderr, "  %s / %s: %d impl%s x %d repeat%s\n", rows[first].c->suite,
			rows[first].c->name, m, m == 1 ? "" : "s", ctx->repeats,
			ctx->repeats == 1 ? "" : "s");
	for (int k = 0; k < ctx->repeats; k++)
		for (int j = 0; j < m; j++) {
			struct bench_row *row = &rows[first + (j + k) % m];

			if (!row->rc)
				run_one(ctx, row);
		}
}

/* The child side of bench_run_isolated(): one measured run, one line. */
static int run_child(const struct bench_ctx *ctx, struct bench_row *rows, int n)
{
	const struct bench_result *r = &rows[0].r[0];

	if (n != 1)
		return 1;
	run_one(ctx, &rows[0]);
	if (rows[0].rc == -ENOTSUP) {
		printf("SKIP %s\n", rows[0].note[0] ? rows[0].note : "unavailable");
		return 1;
	}
	if (rows[0].rc) {
		printf("FAIL %d %s\n", rows[0].rc,
		       rows[0].note[0] ? rows[0].note : moirai_strerror(rows[0].rc));
		return 1;
	}
	printf("RESULT %f %f %f %f %ld %ld\n", r->ns_per_op, r->p50_ns, r->p99_ns, r->p999_ns,
	       r->peak_rss_kb, r->ops);
	return 0;
}

/* mkdir -p for one level (the parent must exist); 0 or -errno. */
static int make_dir(const char *d)
{
	struct stat st;

	if (mkdir(d, 0755) == 0 || (errno == EEXIST && stat(d, &st) == 0 && S_ISDIR(st.st_mode)))
		return 0;
	return errno == EEXIST ? -ENOTDIR : -errno;
}

static bool gnuplot_found(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;
	     p += strcspn(p, ":"), p += *p == ':') {
		int len = (int)strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/gnuplot", len, p);
		if (len && access(buf, X_OK) == 0)
			return true;
	}
	return false;
}

/* DIR/bench.md and DIR/bench.json; 0 or -errno (message printed). */
static int write_reports(const char *dir, const char *suite, const struct bench_ctx *ctx,
			 const struct bench_machine *m, const struct bench_row *rows, int n)
{
	for (int k = 0; k < 2; k++) {
		char path[4096];
		FILE *f;
		int bad;

		snprintf(path, sizeof(path), "%s/bench.%s", dir, k ? "json" : "md");
		f = fopen(path, "w");
		if (!f) {
			fprintf(stderr, "moirai-bench: cannot write %s: %s\n", path,
				strerror(errno));
			return -errno;
		}
		if (k)
			bench__print_json(f, suite, ctx, m, rows, n);
		else
			bench__print_markdown(f, suite, ctx, m, rows, n);
		bad = ferror(f);
		if (fclose(f) != 0 || bad) {
			fprintf(stderr, "moirai-bench: error writing %s\n", path);
			return -EIO;
		}
	}
	return 0;
}

int bench_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

static int parse_repeats(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > BENCH_MAX_REPEATS)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_ctx ctx = { 0 };
	struct bench_machine machine = { 0 };
	const char *suite = NULL, *case_filter = NULL, *impl_filter = NULL;
	bool json = false, list = false, child = bench_is_isolated_child(), failed = false;
	const char *out_dir = NULL, *plot_dir = NULL;
	struct bench_row *rows;
	uint64_t t0 = moirai_now_ns();
	int n = 0, rc;

	for (int i = 1; i < argc; i++) {
		bool has_arg = i + 1 < argc;

		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--quick")) {
			ctx.quick = true;
		} else if (!strcmp(argv[i], "--list")) {
			list = true;
		} else if (!strcmp(argv[i], "--case") && has_arg) {
			case_filter = argv[++i];
		} else if (!strcmp(argv[i], "--out") && has_arg) {
			out_dir = argv[++i];
		} else if (!strcmp(argv[i], "--plot") && has_arg) {
			plot_dir = argv[++i];
		} else if (!strcmp(argv[i], "--impl") && has_arg) {
			impl_filter = argv[++i];
		} else if (!strcmp(argv[i], "--repeats") && has_arg) {
			if (parse_repeats(argv[++i], &ctx.repeats)) {
				fprintf(stderr, "moirai-bench: --repeats wants 1..%d, not '%s'\n",
					BENCH_MAX_REPEATS, argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("moirai-bench %s\n", moirai_version());
			return 0;
		} else if (argv[i][0] == '-' || suite) {
			fprintf(stderr, "moirai-bench: unexpected argument '%s' (see --help)\n",
				argv[i]);
			return 2;
		} else {
			suite = argv[i];
		}
	}
	if (check_registry())
		return 1;
	if (!suite) {
		fprintf(stderr, "moirai-bench: missing SUITE (see --help)\n");
		return 2;
	}
	if ((rc = check_suite(suite)) != 0)
		return rc;
	if (!ctx.repeats)
		ctx.repeats = ctx.quick ? 3 : 5;
	init_ctx(&ctx);
	for (int k = 0; k < 2; k++) {
		const char *d = k ? plot_dir : out_dir;

		if (d && !child && (rc = make_dir(d)) != 0) {
			fprintf(stderr, "moirai-bench: cannot create directory '%s': %s\n", d,
				strerror(-rc));
			return 2;
		}
	}
	if (plot_dir && !child && !gnuplot_found()) {
		fprintf(stderr, "moirai-bench: --plot needs gnuplot (tools/install-deps test)\n");
		return 2;
	}
	if (!child && (json || out_dir))
		bench__machine_probe(&machine);

	/* Rows grouped by case, in registration order of each case's first row. */
	int total = 0;

	for (struct bench_case *c = cases; c; c = c->next)
		total++;
	rows = calloc((size_t)(total ? total : 1), sizeof(*rows));
	if (!rows) {
		fprintf(stderr, "moirai-bench: out of memory\n");
		return 1;
	}
	for (struct bench_case *c = cases; c; c = c->next) {
		bool seen = false;

		if (!selected(c, suite, case_filter, impl_filter, child))
			continue;
		for (int k = 0; k < n && !seen; k++)
			seen = same_case(rows[k].c, c);
		if (seen)
			continue;
		/* The first of its case: bring the whole group, in file order. */
		for (struct bench_case *d = c; d; d = d->next)
			if (same_case(c, d) && selected(d, suite, case_filter, impl_filter, child))
				rows[n++].c = d;
	}
	if (n == 0 && !child) {
		fprintf(stderr, "moirai-bench: no case of suite '%s' matches the filter\n", suite);
		free(rows);
		return 2;
	}
	if (list) {
		for (int i = 0; i < n; i++)
			printf("%-6s %-34s %s\n", rows[i].c->suite, rows[i].c->name,
			       rows[i].c->impl);
		free(rows);
		return 0;
	}
	if (child) {
		rc = run_child(&ctx, rows, n);
		free(rows);
		return rc;
	}
	for (int i = 0; i < n;) {
		int j = i + 1;

		while (j < n && same_case(rows[i].c, rows[j].c))
			j++;
		run_group(&ctx, rows, i, j, !json);
		i = j;
	}
	for (int i = 0; i < n; i++)
		failed |= rows[i].rc && rows[i].rc != -ENOTSUP;
	if (json || out_dir)
		bench__machine_finish(&machine, t0);
	if (json)
		bench__print_json(stdout, suite, &ctx, &machine, rows, n);
	else
		bench__print_table(suite, &ctx, rows, n);
	if (out_dir && (rc = write_reports(out_dir, suite, &ctx, &machine, rows, n)) != 0)
		failed = true;
	if (plot_dir && bench__plot(plot_dir, rows, n) != 0)
		failed = true;
	free(rows);
	return failed ? 1 : 0;
}
