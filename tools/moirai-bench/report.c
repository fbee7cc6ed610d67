/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench output: the table for people and the JSON document for
 * scripts (docs/bench.md describes both).
 *
 * Every figure is a median over the repeats with its [min-max] beside it.
 * A ratio is the peer's median over moirai's; it is marked '~' when the
 * two [min-max] ranges overlap.  With R interleaved repeats and no real
 * difference, every ordering of the 2R measurements is equally likely, so
 * the chance that the ranges come out disjoint anyway is 2 / C(2R, R):
 * 10% for R = 3, 0.8% for R = 5.  Non-overlap is a rank test at that
 * level, not proof; overlap says the run cannot tell the two apart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moirai.h>

#include "bench.h"

enum metric { M_NS, M_P50, M_P99, M_P999, M_RSS, M__COUNT };

static const struct {
	const char *json;  /* key of the median in the JSON results */
	const char *title; /* what the table grid shows */
} metrics[M__COUNT] = {
	[M_NS] = { "ns_per_op", "ns/op" },
	[M_P50] = { "p50_ns", "latency p50, ns" },
	[M_P99] = { "p99_ns", "latency p99, ns" },
	[M_P999] = { "p999_ns", "latency p99.9, ns" },
	[M_RSS] = { "peak_rss_kb", "peak RSS of the process, KiB" },
};

struct stat3 {
	double min, med, max;
	int n;
};

/* The measured value of @m in @r, or < 0 when @r does not measure it. */
static double value_of(const struct bench_result *r, enum metric m)
{
	switch (m) {
	case M_NS: return r->ns_per_op;
	case M_P50: return r->p50_ns;
	case M_P99: return r->p99_ns;
	case M_P999: return r->p999_ns;
	case M_RSS: return (double)r->peak_rss_kb;
	default: return -1;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Min, median and max of @m over @row's measurements; false if none. */
static bool stat_of(const struct bench_row *row, enum metric m, struct stat3 *s)
{
	double v[BENCH_MAX_REPEATS];
	int n = 0;

	if (row->rc)
		return false;
	for (int i = 0; i < row->n; i++)
		if (value_of(&row->r[i], m) >= 0)
			v[n++] = value_of(&row->r[i], m);
	if (n == 0)
		return false;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	s->n = n;
	s->min = v[0];
	s->max = v[n - 1];
	/* Even counts: the mean of the middle two, the usual median. */
	s->med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return true;
}

static bool overlap(const struct stat3 *a, const struct stat3 *b)
{
	return !(a->max < b->min || b->max < a->min);
}

/* The moirai row of the case @row belongs to, or NULL. */
static const struct bench_row *base_of(const struct bench_row *rows, int n,
				       const struct bench_row *row)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(rows[i].c->impl, "moirai") &&
		    !strcmp(rows[i].c->suite, row->c->suite) &&
		    !strcmp(rows[i].c->name, row->c->name))
			return &rows[i];
	return NULL;
}

/* ---- table -------------------------------------------------------------- */

#define COL_W 19

/*
 * Three significant figures (four for 1000..9999), with k/M/G from 10^4
 * up, so that columns stay narrow: 0.62 4.13 17.1 112 5844 32.0k 6.49M.
 */
static void fmt_num(char *buf, size_t len, double v)
{
	static const char suffix[] = " kMG";
	int e = 0;

	if (v < 10000) {
		snprintf(buf, len, v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v);
		return;
	}
	while (v >= 1000 && e < 3) {
		v /= 1000;
		e++;
	}
	snprintf(buf, len, v < 10 ? "%.2f%c" : v < 100 ? "%.1f%c" : "%.0f%c", v, suffix[e]);
}

static void fmt_ratio(char *buf, size_t len, double x)
{
	snprintf(buf, len, x < 10 ? "%.2fx" : "%.1fx", x);
}

/*
 * The two lines of one cell: "median ratio mark" and "[min-max]".  The
 * mark is '~' (ranges overlap), '?' (fewer than 3 repeats on either side:
 * disjoint ranges would come about by chance 1 time in 3 or more) or ' '
 * (disjoint ranges).
 */
static void cell(const struct bench_row *rows, int n, const struct bench_row *row, enum metric m,
		 char *top, char *bot, size_t len)
{
	const struct bench_row *base;
	struct stat3 s, b;
	char med[24], lo[24], hi[24], ratio[24];

	snprintf(top, len, "-");
	bot[0] = '\0';
	if (!row)
		return;
	if (row->rc) {
		snprintf(top, len, "%s", row->rc == -ENOTSUP ? "n/a" : "FAILED");
		return;
	}
	if (!stat_of(row, m, &s))
		return;
	fmt_num(med, sizeof(med), s.med);
	fmt_num(lo, sizeof(lo), s.min);
	fmt_num(hi, sizeof(hi), s.max);
	snprintf(bot, len, "[%s-%s]", lo, hi);
	base = base_of(rows, n, row);
	if (base == row || !base || !stat_of(base, m, &b) || b.med <= 0) {
		/* The blank stands where a peer's mark goes: medians align. */
		snprintf(top, len, "%s ", med);
		return;
	}
	fmt_ratio(ratio, sizeof(ratio), s.med / b.med);
	snprintf(top, len, "%s %s%c", med, ratio,
		 s.n < 3 || b.n < 3 ? '?'
		 : overlap(&s, &b)  ? '~'
				    : ' ');
}

static const struct bench_row *find_row(const struct bench_row *rows, int lo, int hi,
					const char *name, const char *impl)
{
	for (int k = lo; k < hi; k++)
		if (!strcmp(rows[k].c->name, name) && !strcmp(rows[k].c->impl, impl))
			return &rows[k];
	return NULL;
}

/* Rows lo..hi-1 are one suite's: one grid of metric @m, if any row has it. */
static void print_grid(const struct bench_row *rows, int n, int lo, int hi, enum metric m)
{
	const char *impls[32];
	int nimpl = 0, width = 16;
	bool any = false;
	struct stat3 s;

	for (int i = lo; i < hi; i++) {
		bool seen = false;

		if (!stat_of(&rows[i], m, &s) && m != M_NS)
			continue;
		any = true;
		for (int j = 0; j < nimpl; j++)
			seen |= !strcmp(impls[j], rows[i].c->impl);
		if (!seen && nimpl < 32)
			impls[nimpl++] = rows[i].c->impl;
		if ((int)strlen(rows[i].c->name) > width)
			width = (int)strlen(rows[i].c->name);
	}
	if (!any)
		return;
	printf("\n%-*s", width, metrics[m].title);
	for (int j = 0; j < nimpl; j++)
		printf(" %*s", COL_W, impls[j]);
	printf("\n");
	for (int i = lo; i < hi; i++) {
		char top[32][64], bot[32][64];
		bool has = false;

		/* One line pair per case, at the case's first row. */
		if (i > lo && !strcmp(rows[i - 1].c->name, rows[i].c->name))
			continue;
		for (int j = 0; j < nimpl; j++) {
			const struct bench_row *r =
				find_row(rows, lo, hi, rows[i].c->name, impls[j]);

			cell(rows, n, r, m, top[j], bot[j], sizeof(top[j]));
			has |= bot[j][0] != '\0';
		}
		if (!has && m != M_NS)
			continue;
		printf("%-*s", width, rows[i].c->name);
		for (int j = 0; j < nimpl; j++)
			printf(" %*s", COL_W, top[j]);
		printf("\n%-*s", width, "");
		for (int j = 0; j < nimpl; j++)
			printf(" %*s", COL_W - 1, bot[j]);
		printf("\n");
	}
}

static const char *why(const struct bench_row *r)
{
	return r->note[0] ? r->note : moirai_strerror(r->rc);
}

/* Skips, failures and remarks; one line for a case skipped alike in every impl. */
static void print_notes(const struct bench_row *rows, int lo, int hi)
{
	for (int i = lo; i < hi;) {
		int j = i + 1;
		bool alike = rows[i].rc == -ENOTSUP;

		while (j < hi && !strcmp(rows[j].c->name, rows[i].c->name)) {
			alike &= rows[j].rc == -ENOTSUP && !strcmp(why(&rows[j]), why(&rows[i]));
			j++;
		}
		if (alike && j - i > 1) {
			printf("  skipped %s (every impl): %s\n", rows[i].c->name, why(&rows[i]));
			i = j;
			continue;
		}
		for (; i < j; i++) {
			const struct bench_row *r = &rows[i];

			if (r->rc)
				printf("  %s %s / %s: %s\n",
				       r->rc == -ENOTSUP ? "skipped" : "FAILED", r->c->name,
				       r->c->impl, why(r));
			else if (r->note[0])
				printf("  note %s / %s: %s\n", r->c->name, r->c->impl, r->note);
		}
	}
}

void bench__print_table(const char *suite, const struct bench_ctx *ctx,
			const struct bench_row *rows, int n)
{
	for (int lo = 0; lo < n;) {
		int hi = lo + 1;

		while (hi < n && !strcmp(rows[hi].c->suite, rows[lo].c->suite))
			hi++;
		printf("%smoirai-bench %s: %s, %d repeat%s per cell, implementations interleaved\n"
		       "median over the repeats, [min-max] below it; Nx = peer median / moirai "
		       "median\n"
		       "(above 1 = moirai faster, or smaller for RSS); ~ = the two [min-max] "
		       "overlap:\n"
		       "not significant%s\n",
		       lo ? "\n\n" : "", rows[lo].c->suite, ctx->quick ? "quick" : "full",
		       ctx->repeats, ctx->repeats == 1 ? "" : "s",
		       ctx->repeats < 3 ? "; ? = under 3 repeats, too few to test" : "");
		for (int m = 0; m < M__COUNT; m++)
			print_grid(rows, n, lo, hi, (enum metric)m);
		print_notes(rows, lo, hi);
		lo = hi;
	}
	(void)suite;
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_key_str(const char *key, const char *val)
{
	printf("\"%s\": ", key);
	json_str(val);
}

/* "key": median, "key_min": .., "key_max": .. when the row measures @m. */
static void json_metric(const struct bench_row *row, enum metric m)
{
	struct stat3 s;

	if (!stat_of(row, m, &s))
		return;
	if (m == M_RSS)
		printf(",\n      \"%s\": %.0f, \"%s_min\": %.0f, \"%s_max\": %.0f", metrics[m].json,
		       s.med, metrics[m].json, s.min, metrics[m].json, s.max);
	else
		printf(",\n      \"%s\": %.2f, \"%s_min\": %.2f, \"%s_max\": %.2f", metrics[m].json,
		       s.med, metrics[m].json, s.min, metrics[m].json, s.max);
}

static void json_machine(const struct bench_ctx *ctx, const struct bench_machine *m)
{
	printf("  \"machine\": {\n    ");
	json_key_str("moirai_version", moirai_version());
	printf(",\n    ");
	json_key_str("commit", m->commit);
	printf(", ");
	json_key_str("commit_source", m->commit_source);
	printf(",\n    ");
	json_key_str("cpu_model", m->cpu_model);
	printf(",\n    \"cpus\": %d, \"cpus_online\": %d, \"cpus_usable\": %d, \"numa_nodes\": %d",
	       ctx->cpus, m->cpus_online, ctx->cpus, m->numa_nodes);
	printf(",\n    ");
	json_key_str("kernel", m->kernel);
	printf(",\n    ");
	json_key_str("thp", m->thp);
	printf(", ");
	json_key_str("compiler", BENCH_COMPILER);
	printf(",\n    \"quick\": %s, \"iteration_divisor\": %d, \"repeats\": %d, "
	       "\"warmup\": true, \"order\": \"interleaved\"",
	       ctx->quick ? "true" : "false", ctx->quick ? BENCH_QUICK_DIV : 1, ctx->repeats);
	printf(",\n    ");
	json_key_str("started", m->started);
	printf(", \"duration_s\": %.1f", m->duration_s);
	printf(",\n    \"loadavg_start\": [%.2f, %.2f, %.2f], \"loadavg_end\": [%.2f, %.2f, %.2f]",
	       m->load_start[0], m->load_start[1], m->load_start[2], m->load_end[0], m->load_end[1],
	       m->load_end[2]);
	printf(",\n    \"cpu_a\": %d, \"cpu_b\": %d\n  }", ctx->cpu_a, ctx->cpu_b);
}

/*
 * Ratios repeat by repeat: measurement k of the peer and of moirai ran in
 * the same round, seconds apart, so a slow drift of the machine cancels in
 * their ratio.  All of them on one side of 1 is a sign test at 2 / 2^R
 * (6% for R = 5, 0.4% for R = 9), often decisive where the [min-max]
 * ranges of a drifting run overlap.
 */
static void json_paired(const struct bench_row *row, const struct bench_row *base)
{
	double v[BENCH_MAX_REPEATS];
	int n = row->n;

	if (n != base->n || n == 0)
		return;
	for (int k = 0; k < n; k++)
		v[k] = base->r[k].ns_per_op > 0 ? row->r[k].ns_per_op / base->r[k].ns_per_op : 0;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	printf(",\n      \"paired_ratio\": %.4f, \"paired_ratio_min\": %.4f, "
	       "\"paired_ratio_max\": %.4f",
	       n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]);
}

static void json_result(const struct bench_row *rows, int n, const struct bench_row *row)
{
	const struct bench_row *base = base_of(rows, n, row);
	struct stat3 s, b;

	printf("    { ");
	json_key_str("suite", row->c->suite);
	printf(", ");
	json_key_str("case", row->c->name);
	printf(", ");
	json_key_str("impl", row->c->impl);
	printf(",\n      \"repeats\": %d, \"ops\": %ld", row->n, row->r[0].ops);
	for (int m = 0; m < M__COUNT; m++)
		json_metric(row, (enum metric)m);
	printf(",\n      \"ns_per_op_samples\": [");
	for (int i = 0; i < row->n; i++)
		printf("%s%.2f", i ? ", " : "", row->r[i].ns_per_op);
	printf("]");
	if (base && base != row && stat_of(base, M_NS, &b) && b.med > 0 && stat_of(row, M_NS, &s)) {
		printf(",\n      \"ratio\": %.4f, \"ratio_significant\": %s", s.med / b.med,
		       s.n >= 3 && b.n >= 3 && !overlap(&s, &b) ? "true" : "false");
		json_paired(row, base);
	}
	if (row->note[0]) {
		printf(",\n      ");
		json_key_str("note", row->note);
	}
	printf(" }");
}

static void json_not_run(const struct bench_row *rows, int n, const char *key, bool failed)
{
	bool first = true;

	printf(",\n  \"%s\": [", key);
	for (int i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];

		if (!r->rc || (r->rc == -ENOTSUP) == failed)
			continue;
		printf("%s\n    { ", first ? "" : ",");
		json_key_str("suite", r->c->suite);
		printf(", ");
		json_key_str("case", r->c->name);
		printf(", ");
		json_key_str("impl", r->c->impl);
		printf(", ");
		json_key_str("reason", why(r));
		printf(" }");
		first = false;
	}
	printf("%s]", first ? "" : "\n  ");
}

void bench__print_json(const char *suite, const struct bench_ctx *ctx,
		       const struct bench_machine *m, const struct bench_row *rows, int n)
{
	bool first = true;

	printf("{ ");
	json_key_str("suite", suite);
	printf(",\n");
	json_machine(ctx, m);
	printf(",\n  \"results\": [");
	for (int i = 0; i < n; i++) {
		if (rows[i].rc)
			continue;
		printf("%s\n", first ? "" : ",");
		json_result(rows, n, &rows[i]);
		first = false;
	}
	printf("\n  ]");
	json_not_run(rows, n, "skipped", false);
	json_not_run(rows, n, "failed", true);
	printf("\n}\n");
}
