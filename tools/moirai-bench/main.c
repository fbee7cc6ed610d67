/*
 * moirai-bench: side-by-side comparisons of moirai with its peers.
 *
 *   moirai-bench SUITE [--json] [--quick] [--case SUBSTR] [--impl NAME]
 *
 * Every case is measured in the same run as its peers so ratios, not
 * absolute numbers, carry the claim: this box is shared and noisy.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moirai.h>

#include "bench.h"

#define MAX_ROWS 256

static struct bench_case *cases;

void bench__register(struct bench_case *c)
{
	/* Append so that cases run in file order. */
	struct bench_case **p = &cases;

	while (*p)
		p = &(*p)->next;
	c->next = NULL;
	*p = c;
}

long bench_iters(const struct bench_ctx *ctx, long full)
{
	long n = ctx->quick ? full / 10 : full;

	return n < 1000 ? 1000 : n;
}

int bench_pin(int cpu)
{
	return moirai_numa_pin_thread(cpu);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void bench_percentiles(uint64_t *samples, size_t n, struct bench_result *out)
{
	if (n == 0)
		return;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	out->p50_ns = (double)samples[n / 2];
	out->p99_ns = (double)samples[(size_t)((double)n * 0.99)];
	out->p999_ns = (double)samples[(size_t)((double)n * 0.999)];
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
	int st, got = 0;

	if (preload && access(preload, R_OK) != 0) {
		snprintf(out->note, sizeof(out->note), "%s not found", preload);
		return -ENOTSUP;
	}
	snprintf(cmd, sizeof(cmd),
		 "MOIRAI_BENCH_CHILD=1 %s%s /proc/%d/exe %s --case '%s' --impl '%s' %s",
		 preload ? "LD_PRELOAD=" : "", preload ? preload : "", (int)getpid(), suite, name,
		 impl, ctx->quick ? "--quick" : "");
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "RESULT %lf %lf %lf %lf %ld", &out->ns_per_op, &out->p50_ns,
			   &out->p99_ns, &out->p999_ns, &out->peak_rss_kb) == 5)
			got = 1;
	}
	st = pclose(f);
	if (!got || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(out->note, sizeof(out->note), "isolated run failed");
		return -ENOTSUP;
	}
	return 0;
}

struct row {
	const struct bench_case *c;
	struct bench_result r;
	int rc;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: moirai-bench SUITE [--json] [--quick] [--case SUBSTR] [--impl NAME] "
		   "[--list]\n"
		   "  SUITE    ring, alloc, sched or all\n"
		   "  --json   one JSON document on stdout\n"
		   "  --quick  short iteration counts (whole suite under 30 s)\n"
		   "  --case   run only cases whose name contains SUBSTR\n"
		   "  --impl   run only implementation NAME\n"
		   "  --list   list the cases of SUITE and exit\n"
		   "  -V, --version  print the version and exit\n"
		   "  -h, --help     print this help and exit\n"
		   "Prints one row per case, one column per implementation (ns/op) and\n"
		   "each peer's time divided by moirai's (above 1 = moirai faster).\n");
}

static bool suite_known(const char *s)
{
	return !strcmp(s, "all") || !strcmp(s, "ring") || !strcmp(s, "alloc") ||
	       !strcmp(s, "sched");
}

static void json_num(const char *key, double v, bool comma)
{
	if (v < 0)
		return;
	printf("%s\"%s\": %.1f", comma ? ", " : "", key, v);
}

static void print_json(const char *suite, const struct bench_ctx *ctx, const struct row *rows,
		       int n)
{
	bool first = true;

	printf("{ \"suite\": \"%s\", \"machine\": { \"cpus\": %d, \"numa_nodes\": %d },\n"
	       "  \"results\": [",
	       suite, ctx->cpus, moirai_numa_node_count());
	for (int i = 0; i < n; i++) {
		if (rows[i].rc)
			continue;
		printf("%s\n    { \"case\": \"%s\", \"impl\": \"%s\"", first ? "" : ",",
		       rows[i].c->name, rows[i].c->impl);
		json_num("ns_per_op", rows[i].r.ns_per_op, true);
		json_num("p50_ns", rows[i].r.p50_ns, true);
		json_num("p99_ns", rows[i].r.p99_ns, true);
		json_num("p999_ns", rows[i].r.p999_ns, true);
		if (rows[i].r.peak_rss_kb >= 0)
			printf(", \"peak_rss_kb\": %ld", rows[i].r.peak_rss_kb);
		printf(" }");
		first = false;
	}
	printf("\n  ] }\n");
}

static void print_table(const char *suite, const struct row *rows, int n)
{
	const char *impls[32];
	int nimpl = 0;

	/* Columns: implementations in order of first appearance. */
	for (int i = 0; i < n; i++) {
		bool seen = false;

		for (int j = 0; j < nimpl; j++)
			seen |= !strcmp(impls[j], rows[i].c->impl);
		if (!seen && nimpl < 32)
			impls[nimpl++] = rows[i].c->impl;
	}
	printf("moirai-bench %s: ns/op per implementation; (x) = peer/moirai, above 1 = moirai "
	       "faster\n\n",
	       suite);
	printf("%-34s", "case");
	for (int j = 0; j < nimpl; j++)
		printf(" %18s", impls[j]);
	printf("\n");
	for (int i = 0; i < n; i++) {
		bool done = false;
		double base = -1;

		for (int k = 0; k < i; k++)
			done |= !strcmp(rows[k].c->name, rows[i].c->name);
		if (done)
			continue;
		for (int k = i; k < n; k++)
			if (!strcmp(rows[k].c->name, rows[i].c->name) &&
			    !strcmp(rows[k].c->impl, "moirai") && !rows[k].rc)
				base = rows[k].r.ns_per_op;
		printf("%-34s", rows[i].c->name);
		for (int j = 0; j < nimpl; j++) {
			char cell[64] = "-";

			for (int k = i; k < n; k++) {
				const struct row *r = &rows[k];

				if (strcmp(r->c->name, rows[i].c->name) ||
				    strcmp(r->c->impl, impls[j]))
					continue;
				if (r->rc)
					snprintf(cell, sizeof(cell), "n/a");
				else if (base > 0 && strcmp(impls[j], "moirai"))
					snprintf(cell, sizeof(cell), "%.1f (%.2fx)", r->r.ns_per_op,
						 r->r.ns_per_op / base);
				else
					snprintf(cell, sizeof(cell), "%.1f", r->r.ns_per_op);
			}
			printf(" %18s", cell);
		}
		printf("\n");
	}
	/* Latency and RSS where measured, then why anything was skipped. */
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		if (!r->rc && r->r.p50_ns >= 0)
			printf("  latency %-28s %-12s p50 %.0f ns  p99 %.0f ns  p99.9 %.0f ns\n",
			       r->c->name, r->c->impl, r->r.p50_ns, r->r.p99_ns, r->r.p999_ns);
	}
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		if (!r->rc && r->r.peak_rss_kb >= 0)
			printf("  peak RSS %-27s %-12s %ld KiB\n", r->c->name, r->c->impl,
			       r->r.peak_rss_kb);
	}
	for (int i = 0; i < n; i++)
		if (rows[i].rc)
			printf("  skipped %s/%s: %s\n", rows[i].c->name, rows[i].c->impl,
			       rows[i].r.note[0] ? rows[i].r.note : "unavailable");
}

static void init_ctx(struct bench_ctx *ctx)
{
	cpu_set_t set;

	ctx->cpus = 0;
	ctx->cpu_a = ctx->cpu_b = -1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
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

int main(int argc, char **argv)
{
	struct bench_ctx ctx = { 0 };
	const char *suite = NULL, *case_filter = NULL, *impl_filter = NULL;
	bool json = false, list = false;
	static struct row rows[MAX_ROWS];
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--quick")) {
			ctx.quick = true;
		} else if (!strcmp(argv[i], "--list")) {
			list = true;
		} else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
			case_filter = argv[++i];
		} else if (!strcmp(argv[i], "--impl") && i + 1 < argc) {
			impl_filter = argv[++i];
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
	if (!suite) {
		fprintf(stderr, "moirai-bench: missing SUITE (ring, alloc, sched or all)\n");
		return 2;
	}
	if (!suite_known(suite)) {
		fprintf(stderr, "moirai-bench: unknown suite '%s' (ring, alloc, sched or all)\n",
			suite);
		return 2;
	}
	init_ctx(&ctx);
	for (struct bench_case *c = cases; c; c = c->next) {
		if (strcmp(suite, "all") && strcmp(suite, c->suite))
			continue;
		if (case_filter && !strstr(c->name, case_filter))
			continue;
		if (impl_filter && strcmp(impl_filter, c->impl))
			continue;
		if (list) {
			printf("%-6s %-34s %s\n", c->suite, c->name, c->impl);
			continue;
		}
		if (n == MAX_ROWS)
			break;
		rows[n].c = c;
		rows[n].r = (struct bench_result){
			.p50_ns = -1, .p99_ns = -1, .p999_ns = -1, .peak_rss_kb = -1
		};
		if (!json && !bench_is_isolated_child())
			fprintf(stderr, "  running %s / %s ...\n", c->name, c->impl);
		rows[n].rc = c->fn(&ctx, &rows[n].r);
		n++;
	}
	if (list)
		return 0;
	if (bench_is_isolated_child()) {
		if (n != 1 || rows[0].rc)
			return 1;
		printf("RESULT %f %f %f %f %ld\n", rows[0].r.ns_per_op, rows[0].r.p50_ns,
		       rows[0].r.p99_ns, rows[0].r.p999_ns, rows[0].r.peak_rss_kb);
		return 0;
	}
	if (n == 0 && (case_filter || impl_filter)) {
		fprintf(stderr, "moirai-bench: no case of suite '%s' matches the filter\n", suite);
		return 2;
	}
	if (json)
		print_json(suite, &ctx, rows, n);
	else
		print_table(suite, rows, n);
	return 0;
}
