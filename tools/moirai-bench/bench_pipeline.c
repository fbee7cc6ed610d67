/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "pipeline": moirai-pipeline (tools/moirai-pipeline, found next to
 * moirai-bench) run with --compare --json: one packet stream (its built-in
 * generator, fixed seed) through the runtime twice, first with critical
 * packets on the critical priority (impl "moirai"), then with every packet
 * on one level (impl "moirai_fifo").  The two runs of a pair are in one
 * process, seconds apart, in that order; each measured repeat is one such
 * process, shared by every case of the repeat, at --load 0.5 --fast-ns
 * 2000 (make run's --fast-ns; make run floods harder, --load 0.8,
 * tools/run-demo.sh; the README's figures were taken at 0.5; the
 * warm-up runs nothing: the tool warms itself up).  Cases: pipeline_critical and pipeline_normal
 * (arrival -> TX latency of the class: p50/p99/p99.9 as the tool reports
 * them; ns/op is the p50), pipeline_pps (ns per packet forwarded).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

BENCH_SUITE(pipeline, "moirai-pipeline --compare: priority against FIFO, one packet stream")

#define PL_OUT_MAX (1 << 20)

enum { PL_CRIT, PL_NORMAL, PL_CLASSES };
enum { PL_PRIO, PL_FIFO, PL_MODES };

struct pl_run {
	bool loaded;
	int rc;
	char note[96];
	double pps[PL_MODES];
	long packets[PL_MODES];
	/* count, p50, p99, p999, max per mode and class */
	double lat[PL_MODES][PL_CLASSES][5];
};

static struct pl_run runs[BENCH_MAX_REPEATS];
static int calls[3][PL_MODES];

/* The number after "key": at or after @from, before @end; false if none. */
static bool num_after(const char *from, const char *end, const char *key, double *out)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(from, pat);
	if (!p || p >= end)
		return false;
	*out = strtod(p + strlen(pat), NULL);
	return true;
}

static int parse_mode(struct pl_run *r, int mode, const char *seg, const char *end)
{
	static const char *cls[PL_CLASSES] = { "\"critical\":", "\"normal\":" };
	static const char *fields[5] = { "count", "p50", "p99", "p999", "max" };
	const char *lat = strstr(seg, "\"latency_ns\":");
	double lost = -1;

	if (!num_after(seg, end, "pps", &r->pps[mode]) || !num_after(seg, end, "lost", &lost) ||
	    !lat || lat >= end)
		return -EPROTO;
	if (lost != 0) {
		snprintf(r->note, sizeof(r->note), "moirai-pipeline lost %.0f packets", lost);
		return -EIO;
	}
	{
		double out;

		if (!num_after(seg, end, "packets_out", &out))
			return -EPROTO;
		r->packets[mode] = (long)out;
	}
	for (int c = 0; c < PL_CLASSES; c++) {
		const char *o = strstr(lat, cls[c]);

		if (!o || o >= end)
			return -EPROTO;
		for (int f = 0; f < 5; f++)
			if (!num_after(o, end, fields[f], &r->lat[mode][c][f]))
				return -EPROTO;
	}
	return 0;
}

static int pl_load(const struct bench_ctx *ctx, struct pl_run *r)
{
	char dir[4096], cmd[4400], *buf;
	size_t len = 0, got;
	const char *fifo;
	FILE *f;
	int st, rc;

	r->loaded = true;
	if ((rc = bench_exe_dir(dir, sizeof(dir))) != 0 || strchr(dir, '\'')) {
		snprintf(r->note, sizeof(r->note), "cannot tell where moirai-bench is");
		return r->rc = -ENOTSUP;
	}
	snprintf(cmd, sizeof(cmd), "%s/moirai-pipeline", dir);
	if (access(cmd, X_OK) != 0) {
		snprintf(r->note, sizeof(r->note), "no moirai-pipeline next to moirai-bench");
		return r->rc = -ENOTSUP;
	}
	snprintf(cmd, sizeof(cmd),
		 "'%s/moirai-pipeline' --compare --json --quiet --seed 1 --load 0.5 "
		 "--fast-ns 2000 --duration %s",
		 dir, ctx->quick ? "0.3" : "2");
	buf = malloc(PL_OUT_MAX + 1);
	if (!buf)
		return r->rc = -ENOMEM;
	f = popen(cmd, "r");
	if (!f) {
		free(buf);
		return r->rc = -errno;
	}
	while (len < PL_OUT_MAX && (got = fread(buf + len, 1, PL_OUT_MAX - len, f)) > 0)
		len += got;
	buf[len] = '\0';
	st = pclose(f);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(r->note, sizeof(r->note),
			 "moirai-pipeline --compare exited with status %d",
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		free(buf);
		return r->rc = -EIO;
	}
	fifo = strstr(buf, "\"fifo\":");
	if (!fifo || (rc = parse_mode(r, PL_PRIO, buf, fifo)) != 0 ||
	    (rc = parse_mode(r, PL_FIFO, fifo, buf + len)) != 0) {
		if (!r->note[0])
			snprintf(r->note, sizeof(r->note),
				 "moirai-pipeline's JSON: fields missing");
		free(buf);
		return r->rc = rc ? rc : -EPROTO;
	}
	free(buf);
	return r->rc = 0;
}

static int pl_case(const struct bench_ctx *ctx, struct bench_result *out, int which, int mode)
{
	struct pl_run *r;
	int k;

	if (ctx->warmup) {
		out->ns_per_op = 1;
		return 0;
	}
	k = calls[which][mode]++;
	if (k >= BENCH_MAX_REPEATS)
		return -ERANGE;
	r = &runs[k];
	if (!r->loaded)
		pl_load(ctx, r);
	if (r->rc) {
		snprintf(out->note, sizeof(out->note), "%s", r->note);
		return r->rc;
	}
	if (which == 2) {
		if (r->pps[mode] <= 0)
			return -EPROTO;
		out->ns_per_op = 1e9 / r->pps[mode];
		out->ops = r->packets[mode];
		return 0;
	}
	const double *l = r->lat[mode][which];

	if (l[0] <= 0) {
		snprintf(out->note, sizeof(out->note), "no %s packets",
			 which == PL_CRIT ? "critical" : "normal");
		return -EPROTO;
	}
	out->ops = (long)l[0];
	out->p50_ns = l[1];
	out->p99_ns = l[2];
	out->p999_ns = l[3];
	out->ns_per_op = l[1];
	for (int q = 0; q < BENCH_CDF_N; q++)
		out->cdf_ns[q] = bench_cdf_q[q] == 50	  ? l[1]
				 : bench_cdf_q[q] == 99	  ? l[2]
				 : bench_cdf_q[q] == 99.9 ? l[3]
				 : bench_cdf_q[q] == 100  ? l[4]
							  : -1;
	return 0;
}

#define PL_CASE(fn, which, mode)                                             \
	static int fn(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                    \
		return pl_case(ctx, out, which, mode);                       \
	}
PL_CASE(pl_crit_prio, PL_CRIT, PL_PRIO)
PL_CASE(pl_crit_fifo, PL_CRIT, PL_FIFO)
PL_CASE(pl_norm_prio, PL_NORMAL, PL_PRIO)
PL_CASE(pl_norm_fifo, PL_NORMAL, PL_FIFO)
PL_CASE(pl_pps_prio, 2, PL_PRIO)
PL_CASE(pl_pps_fifo, 2, PL_FIFO)

BENCH_CASE("pipeline", "pipeline_critical", "moirai", pl_crit_prio)
BENCH_CASE("pipeline", "pipeline_critical", "moirai_fifo", pl_crit_fifo)
BENCH_CASE("pipeline", "pipeline_normal", "moirai", pl_norm_prio)
BENCH_CASE("pipeline", "pipeline_normal", "moirai_fifo", pl_norm_fifo)
BENCH_CASE("pipeline", "pipeline_pps", "moirai", pl_pps_prio)
BENCH_CASE("pipeline", "pipeline_pps", "moirai_fifo", pl_pps_fifo)
