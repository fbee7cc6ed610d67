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
#include "../tool_json.h"

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

const double bench_cdf_q[BENCH_CDF_N] = { 0,  1,  5,  10, 20, 30,   40,	  50,	 60,	70, 80,
					  90, 95, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100 };

void bench_result_from_hist(struct bench_result *r, const struct moirai_hist *h)
{
	uint64_t v[BENCH_CDF_N];

	moirai_hist_percentiles(h, bench_cdf_q, BENCH_CDF_N, v);
	for (int i = 0; i < BENCH_CDF_N; i++)
		r->cdf_ns[i] = (double)v[i];
	r->p50_ns = (double)moirai_hist_percentile(h, 50.0);
	r->p99_ns = (double)moirai_hist_percentile(h, 99.0);
	r->p999_ns = (double)moirai_hist_percentile(h, 99.9);
	r->ns_per_op = moirai_hist_mean(h);
	r->ops = (long)moirai_hist_count(h);
}

/* Whether @r carries a CDF (any point measured). */
static bool has_cdf(const struct bench_result *r)
{
	for (int i = 0; i < BENCH_CDF_N; i++)
		if (r->cdf_ns[i] > 0)
			return true;
	return false;
}

/* The measurement of @row whose p99 is the median one, if it has a CDF. */
const struct bench_result *bench__median_cdf(const struct bench_row *row)
{
	int idx[BENCH_MAX_REPEATS], n = 0;

	if (row->rc)
		return NULL;
	for (int i = 0; i < row->n; i++)
		if (has_cdf(&row->r[i]))
			idx[n++] = i;
	if (n == 0)
		return NULL;
	/* Insertion sort by p99: n <= 50. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && row->r[idx[j]].p99_ns < row->r[idx[j - 1]].p99_ns; j--) {
			int t = idx[j];

			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	return &row->r[idx[n / 2]];
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

/* Where the JSON goes (bench__print_json's @f). */
static FILE *jf;

static void json_key_str(const char *key, const char *val)
{
	fprintf(jf, "\"%s\": ", key);
	tool_json_str(jf, val);
}

/* "key": median, "key_min": .., "key_max": .. when the row measures @m. */
static void json_metric(const struct bench_row *row, enum metric m)
{
	struct stat3 s;

	if (!stat_of(row, m, &s))
		return;
	if (m == M_RSS)
		fprintf(jf, ",\n      \"%s\": %.0f, \"%s_min\": %.0f, \"%s_max\": %.0f",
			metrics[m].json, s.med, metrics[m].json, s.min, metrics[m].json, s.max);
	else
		fprintf(jf, ",\n      \"%s\": %.2f, \"%s_min\": %.2f, \"%s_max\": %.2f",
			metrics[m].json, s.med, metrics[m].json, s.min, metrics[m].json, s.max);
}

static void json_machine(const struct bench_ctx *ctx, const struct bench_machine *m)
{
	fprintf(jf, "  \"machine\": {\n    ");
	json_key_str("moirai_version", moirai_version());
	fprintf(jf, ",\n    ");
	json_key_str("commit", m->commit);
	fprintf(jf, ", ");
	json_key_str("commit_source", m->commit_source);
	fprintf(jf, ",\n    ");
	json_key_str("cpu_model", m->cpu_model);
	fprintf(jf,
		",\n    \"cpus\": %d, \"cpus_online\": %d, \"cpus_usable\": %d, \"cores\": %d, "
		"\"cores_usable\": %d, \"numa_nodes\": %d",
		ctx->cpus, m->cpus_online, ctx->cpus, m->cores, m->cores_usable, m->numa_nodes);
	fprintf(jf, ",\n    ");
	json_key_str("kernel", m->kernel);
	fprintf(jf, ",\n    ");
	json_key_str("thp", m->thp);
	fprintf(jf, ", ");
	json_key_str("compiler", BENCH_COMPILER);
	fprintf(jf,
		",\n    \"quick\": %s, \"iteration_divisor\": %d, \"repeats\": %d, "
		"\"warmup\": true, \"order\": \"interleaved\"",
		ctx->quick ? "true" : "false", ctx->quick ? BENCH_QUICK_DIV : 1, ctx->repeats);
	fprintf(jf, ",\n    ");
	json_key_str("started", m->started);
	fprintf(jf, ", \"duration_s\": %.1f", m->duration_s);
	fprintf(jf,
		",\n    \"loadavg_start\": [%.2f, %.2f, %.2f], \"loadavg_end\": [%.2f, %.2f, %.2f]",
		m->load_start[0], m->load_start[1], m->load_start[2], m->load_end[0],
		m->load_end[1], m->load_end[2]);
	fprintf(jf, ",\n    \"cpu_a\": %d, \"cpu_b\": %d\n  }", ctx->cpu_a, ctx->cpu_b);
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
	fprintf(jf,
		",\n      \"paired_ratio\": %.4f, \"paired_ratio_min\": %.4f, "
		"\"paired_ratio_max\": %.4f",
		n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]);
}

/* The CDF of the run with the median p99 ("cdf_q", "cdf_ns"), if any. */
static void json_cdf(const struct bench_row *row)
{
	const struct bench_result *r = bench__median_cdf(row);

	if (!r)
		return;
	fprintf(jf, ",\n      \"cdf_q\": [");
	for (int i = 0; i < BENCH_CDF_N; i++)
		fprintf(jf, "%s%g", i ? ", " : "", bench_cdf_q[i]);
	fprintf(jf, "],\n      \"cdf_ns\": [");
	for (int i = 0; i < BENCH_CDF_N; i++)
		fprintf(jf, "%s%.0f", i ? ", " : "", r->cdf_ns[i]);
	fprintf(jf, "]");
}

static void json_result(const struct bench_row *rows, int n, const struct bench_row *row)
{
	const struct bench_row *base = base_of(rows, n, row);
	struct stat3 s, b;

	fprintf(jf, "    { ");
	json_key_str("suite", row->c->suite);
	fprintf(jf, ", ");
	json_key_str("case", row->c->name);
	fprintf(jf, ", ");
	json_key_str("impl", row->c->impl);
	fprintf(jf, ",\n      \"repeats\": %d, \"ops\": %ld", row->n, row->r[0].ops);
	for (int m = 0; m < M__COUNT; m++)
		json_metric(row, (enum metric)m);
	fprintf(jf, ",\n      \"ns_per_op_samples\": [");
	for (int i = 0; i < row->n; i++)
		fprintf(jf, "%s%.2f", i ? ", " : "", row->r[i].ns_per_op);
	fprintf(jf, "]");
	if (base && base != row && stat_of(base, M_NS, &b) && b.med > 0 && stat_of(row, M_NS, &s)) {
		fprintf(jf, ",\n      \"ratio\": %.4f, \"ratio_significant\": %s", s.med / b.med,
			s.n >= 3 && b.n >= 3 && !overlap(&s, &b) ? "true" : "false");
		json_paired(row, base);
	}
	json_cdf(row);
	if (row->note[0]) {
		fprintf(jf, ",\n      ");
		json_key_str("note", row->note);
	}
	fprintf(jf, " }");
}

static void json_not_run(const struct bench_row *rows, int n, const char *key, bool failed)
{
	bool first = true;

	fprintf(jf, ",\n  \"%s\": [", key);
	for (int i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];

		if (!r->rc || (r->rc == -ENOTSUP) == failed)
			continue;
		fprintf(jf, "%s\n    { ", first ? "" : ",");
		json_key_str("suite", r->c->suite);
		fprintf(jf, ", ");
		json_key_str("case", r->c->name);
		fprintf(jf, ", ");
		json_key_str("impl", r->c->impl);
		fprintf(jf, ", ");
		json_key_str("reason", why(r));
		fprintf(jf, " }");
		first = false;
	}
	fprintf(jf, "%s]", first ? "" : "\n  ");
}

void bench__print_json(FILE *f, const char *suite, const struct bench_ctx *ctx,
		       const struct bench_machine *m, const struct bench_row *rows, int n)
{
	bool first = true;

	jf = f;
	fprintf(jf, "{ ");
	json_key_str("suite", suite);
	fprintf(jf, ",\n");
	json_machine(ctx, m);
	fprintf(jf, ",\n  \"results\": [");
	for (int i = 0; i < n; i++) {
		if (rows[i].rc)
			continue;
		fprintf(jf, "%s\n", first ? "" : ",");
		json_result(rows, n, &rows[i]);
		first = false;
	}
	fprintf(jf, "\n  ]");
	json_not_run(rows, n, "skipped", false);
	json_not_run(rows, n, "failed", true);
	fprintf(jf, "\n}\n");
}

/* ---- Markdown ------------------------------------------------------------- */

/* Paired ratios of @row to @base over the rounds: min, median, max. */
static bool paired_of(const struct bench_row *row, const struct bench_row *base, double *lo,
		      double *med, double *hi)
{
	double v[BENCH_MAX_REPEATS];
	int n = row->n;

	if (!base || base == row || row->rc || base->rc || n != base->n || n == 0)
		return false;
	for (int k = 0; k < n; k++)
		v[k] = base->r[k].ns_per_op > 0 ? row->r[k].ns_per_op / base->r[k].ns_per_op : 0;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return true;
}

/* @s with '~' and '|' escaped for a Markdown table cell. */
static void md_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '~' || *s == '|' || *s == '*' || *s == '_')
			fputc('\\', f);
		fputc(*s, f);
	}
}

static void md_grid(FILE *f, const struct bench_row *rows, int n, int lo, int hi, enum metric m)
{
	const char *impls[32];
	int nimpl = 0;
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
	}
	if (!any)
		return;
	fprintf(f, "\n**%s**\n\n| case |", metrics[m].title);
	for (int j = 0; j < nimpl; j++)
		fprintf(f, " %s |", impls[j]);
	fprintf(f, "\n|---|");
	for (int j = 0; j < nimpl; j++)
		fprintf(f, "---:|");
	fprintf(f, "\n");
	for (int i = lo; i < hi; i++) {
		char top[64], bot[64];
		bool has = false;

		if (i > lo && !strcmp(rows[i - 1].c->name, rows[i].c->name))
			continue;
		for (int j = 0; j < nimpl; j++) {
			const struct bench_row *r =
				find_row(rows, lo, hi, rows[i].c->name, impls[j]);

			cell(rows, n, r, m, top, bot, sizeof(top));
			has |= bot[0] != '\0';
		}
		if (!has && m != M_NS)
			continue;
		fprintf(f, "| `%s` |", rows[i].c->name);
		for (int j = 0; j < nimpl; j++) {
			const struct bench_row *r =
				find_row(rows, lo, hi, rows[i].c->name, impls[j]);
			double plo, pmed, phi;

			cell(rows, n, r, m, top, bot, sizeof(top));
			/* Trailing blanks of the table's alignment are not wanted here. */
			for (size_t k = strlen(top); k > 0 && top[k - 1] == ' '; k--)
				top[k - 1] = '\0';
			fputc(' ', f);
			md_text(f, top);
			if (bot[0]) {
				fputc(' ', f);
				md_text(f, bot);
			}
			if (m == M_NS && r && paired_of(r, base_of(rows, n, r), &plo, &pmed, &phi))
				fprintf(f, " (paired %.2f-%.2f)", plo, phi);
			fprintf(f, " |");
		}
		fprintf(f, "\n");
	}
}

void bench__print_markdown(FILE *f, const char *suite, const struct bench_ctx *ctx,
			   const struct bench_machine *m, const struct bench_row *rows, int n)
{
	fprintf(f, "# moirai-bench %s\n\n", suite);
	fprintf(f, "| machine and run | |\n|---|---|\n");
	fprintf(f, "| moirai version | %s |\n", moirai_version());
	fprintf(f, "| commit | %s (%s) |\n", m->commit, m->commit_source);
	fprintf(f, "| CPU model | ");
	md_text(f, m->cpu_model);
	fprintf(f, " |\n| CPUs usable / online | %d / %d |\n", ctx->cpus, m->cpus_online);
	fprintf(f, "| physical cores usable / all | %d / %d |\n", m->cores_usable, m->cores);
	fprintf(f, "| NUMA nodes | %d |\n", m->numa_nodes);
	fprintf(f, "| kernel | ");
	md_text(f, m->kernel);
	fprintf(f, " |\n| compiler | %s |\n", BENCH_COMPILER);
	fprintf(f,
		"| run | %s (iterations / %d), %d repeats, implementations interleaved, warm-up "
		"before each |\n",
		ctx->quick ? "quick" : "full", ctx->quick ? BENCH_QUICK_DIV : 1, ctx->repeats);
	fprintf(f, "| started | %s, %.1f s |\n", m->started, m->duration_s);
	fprintf(f,
		"| load average (1, 5, 15 min) | %.2f %.2f %.2f at the start, %.2f %.2f %.2f "
		"at the end |\n",
		m->load_start[0], m->load_start[1], m->load_start[2], m->load_end[0],
		m->load_end[1], m->load_end[2]);
	fprintf(f, "\nEach cell: the median over the repeats, its [min-max], and for a peer "
		   "its median / moirai's (above 1: moirai faster or lower; `~`: the two "
		   "[min-max] overlap; `?`: under 3 repeats) with the min-max of the ratios "
		   "paired per repeat.\n");
	for (int lo = 0; lo < n;) {
		int hi = lo + 1;

		while (hi < n && !strcmp(rows[hi].c->suite, rows[lo].c->suite))
			hi++;
		fprintf(f, "\n## %s\n", rows[lo].c->suite);
		for (int k = 0; k < M__COUNT; k++)
			md_grid(f, rows, n, lo, hi, (enum metric)k);
		for (int i = lo; i < hi; i++)
			if (rows[i].rc)
				fprintf(f, "%s- %s %s / %s: %s\n",
					i == lo || !rows[i - 1].rc ? "\n" : "",
					rows[i].rc == -ENOTSUP ? "skipped" : "FAILED",
					rows[i].c->name, rows[i].c->impl, why(&rows[i]));
		lo = hi;
	}
}
