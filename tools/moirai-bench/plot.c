/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench --plot DIR: SVG plots drawn by gnuplot (gnuplot-nox, test
 * class of tools/install-deps), one data file and one script per plot,
 * kept next to the SVG so that a plot can be redrawn or restyled by hand:
 *
 *   SUITE-CASE-latency.svg  for every case that records latencies
 *                           (sched: flood_critical, flood_quiet, the wake
 *                           cases; pipeline): one line per implementation
 *                           (priority against FIFO), the share of
 *                           operations slower than x on log-log axes, from
 *                           the repeat with the median p99
 *   SUITE-throughput.svg    operations per second of every other case,
 *                           one bar per implementation, min-max error bars
 *
 * gnuplot runs as a child process (no shell), one per plot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static int run_gnuplot(const char *script)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "moirai-bench: gnuplot %s failed (status %d)\n", script,
			WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -EIO;
	}
	return 0;
}

static FILE *open_file(const char *dir, const char *name, const char *ext, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s.%s", dir, name, ext);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "moirai-bench: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

static int close_file(FILE *f, const char *path)
{
	int bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		fprintf(stderr, "moirai-bench: error writing %s\n", path);
		return -EIO;
	}
	return 0;
}

static const char svg_term[] =
	"set terminal svg size 900,540 dynamic noenhanced font 'sans,11' background '#ffffff'\n";

/* Rows lo..hi-1 are one case: its latency plot, if any row has a CDF. */
static int plot_latency(const char *dir, const struct bench_row *rows, int lo, int hi)
{
	char name[160], dat[4096], gp[4096], svg[4096];
	const struct bench_result *r[64];
	int k = 0, rc;
	FILE *f;

	for (int i = lo; i < hi && k < 64; i++)
		if ((r[k] = bench__median_cdf(&rows[i])) != NULL)
			k++;
	if (k == 0)
		return 0;
	snprintf(name, sizeof(name), "%s-%s-latency", rows[lo].c->suite, rows[lo].c->name);
	if (!(f = open_file(dir, name, "dat", dat, sizeof(dat))))
		return -errno;
	/* One block per implementation (two blank lines apart: gnuplot's
	 * "index"): latency ns, share slower in percent. */
	k = 0;
	for (int i = lo; i < hi; i++) {
		const struct bench_result *m = bench__median_cdf(&rows[i]);

		if (!m)
			continue;
		fprintf(f, "# %s\n", rows[i].c->impl);
		for (int q = 0; q < BENCH_CDF_N; q++)
			if (m->cdf_ns[q] > 0 && bench_cdf_q[q] < 100)
				fprintf(f, "%.0f %g\n", m->cdf_ns[q], 100 - bench_cdf_q[q]);
		fprintf(f, "\n\n");
		k++;
	}
	if ((rc = close_file(f, dat)) != 0)
		return rc;
	if (!(f = open_file(dir, name, "gp", gp, sizeof(gp))))
		return -errno;
	snprintf(svg, sizeof(svg), "%s/%s.svg", dir, name);
	fprintf(f, "%sset output '%s'\n", svg_term, svg);
	fprintf(f,
		"set title '%s / %s: latency, tail view of the CDF (repeat with the median "
		"p99)'\n",
		rows[lo].c->suite, rows[lo].c->name);
	fprintf(f, "set logscale xy\nset xlabel 'latency, ns'\nset ylabel 'share slower, %%'\n"
		   "set yrange [0.005:100]\nset grid\nset key top right\n"
		   "set format x '%%.0s%%c'\n");
	fprintf(f, "plot ");
	k = 0;
	for (int i = lo; i < hi; i++) {
		if (!bench__median_cdf(&rows[i]))
			continue;
		fprintf(f, "%s'%s' index %d using 1:2 with linespoints lw 2 title '%s'",
			k ? ", \\\n     " : "", dat, k, rows[i].c->impl);
		k++;
	}
	fprintf(f, "\n");
	if ((rc = close_file(f, gp)) != 0)
		return rc;
	return run_gnuplot(gp);
}

/* The median and range of @row's ns_per_op; false when it has none. */
static bool ns_stat(const struct bench_row *row, double *med, double *lo, double *hi)
{
	double v[BENCH_MAX_REPEATS];
	int n = 0;

	if (row->rc)
		return false;
	for (int i = 0; i < row->n; i++)
		if (row->r[i].ns_per_op > 0)
			v[n++] = row->r[i].ns_per_op;
	if (n == 0)
		return false;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	*lo = v[0];
	*hi = v[n - 1];
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return true;
}

/* A throughput case: it measures time per operation, not latency or CPU. */
static bool throughput_row(const struct bench_row *row)
{
	return !row->rc && row->n > 0 && row->r[0].p50_ns < 0 && !strstr(row->c->name, "idle_cpu");
}

/* Rows lo..hi-1 are one suite: its throughput bars. */
static int plot_throughput(const char *dir, const struct bench_row *rows, int lo, int hi)
{
	char name[160], dat[4096], gp[4096], svg[4096];
	const char *impls[32];
	int nimpl = 0, ncase = 0, rc;
	FILE *f;

	for (int i = lo; i < hi; i++) {
		bool seen = false;

		if (!throughput_row(&rows[i]))
			continue;
		for (int j = 0; j < nimpl; j++)
			seen |= !strcmp(impls[j], rows[i].c->impl);
		if (!seen && nimpl < 32)
			impls[nimpl++] = rows[i].c->impl;
	}
	if (nimpl == 0)
		return 0;
	snprintf(name, sizeof(name), "%s-throughput", rows[lo].c->suite);
	if (!(f = open_file(dir, name, "dat", dat, sizeof(dat))))
		return -errno;
	fprintf(f, "# case");
	for (int j = 0; j < nimpl; j++)
		fprintf(f, " %s_ops_s %s_low %s_high", impls[j], impls[j], impls[j]);
	fprintf(f, "\n");
	for (int i = lo; i < hi; i++) {
		bool any = false;

		if (i > lo && !strcmp(rows[i - 1].c->name, rows[i].c->name))
			continue;
		for (int j = lo; j < hi; j++)
			any |= !strcmp(rows[j].c->name, rows[i].c->name) &&
			       throughput_row(&rows[j]);
		if (!any)
			continue;
		/* Case names have no blanks except the allocator's: quote them. */
		fprintf(f, "\"%s\"", rows[i].c->name);
		for (int j = 0; j < nimpl; j++) {
			double med, mn, mx;
			const struct bench_row *r = NULL;

			for (int k = lo; k < hi && !r; k++)
				if (!strcmp(rows[k].c->name, rows[i].c->name) &&
				    !strcmp(rows[k].c->impl, impls[j]) && throughput_row(&rows[k]))
					r = &rows[k];
			if (r && ns_stat(r, &med, &mn, &mx))
				fprintf(f, " %.6g %.6g %.6g", 1e9 / med, 1e9 / mx, 1e9 / mn);
			else
				fprintf(f, " NaN NaN NaN");
		}
		fprintf(f, "\n");
		ncase++;
	}
	if ((rc = close_file(f, dat)) != 0)
		return rc;
	if (!(f = open_file(dir, name, "gp", gp, sizeof(gp))))
		return -errno;
	snprintf(svg, sizeof(svg), "%s/%s.svg", dir, name);
	fprintf(f,
		"set terminal svg size %d,600 dynamic noenhanced font 'sans,11' "
		"background '#ffffff'\n",
		ncase * nimpl * 14 + 300 > 900 ? ncase * nimpl * 14 + 300 : 900);
	fprintf(f, "set output '%s'\n", svg);
	fprintf(f, "set title '%s: operations per second (median, min-max over the repeats)'\n",
		rows[lo].c->suite);
	fprintf(f, "set style data histogram\nset style histogram errorbars gap 2 lw 1\n"
		   "set style fill solid 0.8 border -1\nset boxwidth 0.9\n"
		   "set logscale y\nset format y '%%.0s%%c'\nset ylabel 'operations / s'\n"
		   "set xtics rotate by -35 nomirror\nset grid ytics\nset key outside right top\n"
		   "set datafile missing 'NaN'\nset bmargin 8\n");
	fprintf(f, "plot ");
	for (int j = 0; j < nimpl; j++)
		fprintf(f, "%s'%s' using %d:%d:%d%s title '%s'", j ? ", \\\n     " : "", dat,
			2 + 3 * j, 3 + 3 * j, 4 + 3 * j, j ? "" : ":xtic(1)", impls[j]);
	fprintf(f, "\n");
	if ((rc = close_file(f, gp)) != 0)
		return rc;
	return run_gnuplot(gp);
}

int bench__plot(const char *dir, const struct bench_row *rows, int n)
{
	int rc = 0;

	for (int lo = 0; lo < n;) {
		int hi = lo + 1;

		while (hi < n && !strcmp(rows[hi].c->suite, rows[lo].c->suite))
			hi++;
		for (int a = lo; a < hi;) {
			int b = a + 1;

			while (b < hi && !strcmp(rows[b].c->name, rows[a].c->name))
				b++;
			rc = rc ? rc : plot_latency(dir, rows, a, b);
			a = b;
		}
		rc = rc ? rc : plot_throughput(dir, rows, lo, hi);
		lo = hi;
	}
	return rc;
}
