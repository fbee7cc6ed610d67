/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Runtime stats: snapshots of the per-worker counters (written by their
 * owners with relaxed stores, so reads here are race-free but not a
 * consistent cut), merged latency histograms, and the text and JSON
 * printers, which carry every field of moirai_rt_stats and
 * moirai_rt_worker_stats and both histograms of every level (checked key
 * by key against the API in tests/rt/test_rt_stats.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_int.h"

static const char *const prio_names[RT_LEVELS] = { "critical", "high", "normal", "background" };
static const char *const steal_names[MOIRAI_RT_STEAL_CLASSES] = { "smt", "l3", "node", "remote" };

const char *moirai_prio_name(enum moirai_prio prio)
{
	int i = moirai_prio_index(prio);

	return i < 0 ? NULL : prio_names[i];
}

int moirai_rt_stats_get(const struct moirai_rt *rt, struct moirai_rt_stats *out)
{
	uint64_t spawned = 0;

	if (!rt || !out)
		return moirai__err(-EINVAL, "rt stats: NULL argument");
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < rt->nworkers; i++)
		spawned += RT_READ(rt->w[i]->c.spawned);
	out->workers = rt->nworkers;
	out->virtual_placement = rt->virtual_placement;
	out->stopping = atomic_load(&rt->state) >= RS_DRAINING;
	out->spawned = spawned + atomic_load(&rt->ext_spawned) - atomic_load(&rt->ext_refused);
	out->refused = atomic_load(&rt->refused);
	out->deferred_pending = atomic_load(&rt->deferred_pending);
	out->deferred_freed = atomic_load(&rt->deferred_freed);
	out->overflow_spills = atomic_load(&rt->spills);
	out->tasks_in_use = moirai__rt_tasks_in_use(rt);
	return 0;
}

int moirai_rt_worker_stats_get(const struct moirai_rt *rt, int worker,
			       struct moirai_rt_worker_stats *out)
{
	const struct rt_worker *w;

	if (!rt || !out)
		return moirai__err(-EINVAL, "rt worker stats: NULL argument");
	if (worker < 0 || worker >= rt->nworkers)
		return moirai__err(-ERANGE, "rt worker stats: worker %d out of range (%d workers)",
				   worker, rt->nworkers);
	w = rt->w[worker];
	memset(out, 0, sizeof(*out));
	for (int l = 0; l < RT_LEVELS; l++) {
		out->tasks_run[l] = RT_READ(w->c.tasks_run[l]);
		out->continuations[l] = RT_READ(w->c.continuations[l]);
		out->aged_dispatches[l] = RT_READ(w->c.aged[l]);
		/* Approximate: the owner's local lists are read racily.  Work
		 * in the strict mailbox (not drained yet) has no level until it
		 * is: it is counted as normal below. */
		out->queue_depth[l] = (uint64_t)rt_deque_size(&w->dq[l]) +
				      moirai_ring_count(w->mbox[l]) +
				      __atomic_load_n(&w->fifo_len[l], __ATOMIC_RELAXED);
	}
	out->queue_depth[moirai_prio_index(MOIRAI_PRIO_NORMAL)] +=
		moirai_ring_count(w->strict_mbox);
	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		out->steals[c] = RT_READ(w->c.steals[c]);
	out->steal_attempts = RT_READ(w->c.steal_attempts);
	out->stolen_from = atomic_load_explicit(&w->rc.stolen_from, memory_order_relaxed);
	out->mailbox_full = atomic_load_explicit(&w->rc.mailbox_full, memory_order_relaxed);
	out->parks = RT_READ(w->c.parks);
	out->wakeups = atomic_load_explicit(&w->rc.wakeups, memory_order_relaxed);
	out->polls_busy = RT_READ(w->c.polls_busy);
	out->polls_idle = RT_READ(w->c.polls_idle);
	out->poll_busy_ns = RT_READ(w->c.poll_busy_ns);
	out->poll_idle_ns = RT_READ(w->c.poll_idle_ns);
	out->timers_fired = RT_READ(w->c.timers_fired);
	out->busy_ns = RT_READ(w->c.busy_ns);
	/* The lock pairs with rt_stuck_record(): count, name and run time of
	 * one report.  Not const: the mutex is the one mutable part. */
	pthread_mutex_lock((pthread_mutex_t *)&rt->stuck_lock);
	out->stuck_reports = atomic_load_explicit(&w->rc.stuck_reports, memory_order_relaxed);
	out->stuck_run_ns = w->stuck_run_ns;
	memcpy(out->stuck_task, w->stuck_task, sizeof(out->stuck_task));
	pthread_mutex_unlock((pthread_mutex_t *)&rt->stuck_lock);
	out->cancelled = RT_READ(w->c.cancelled);
	return 0;
}

int moirai_rt_latency_get(const struct moirai_rt *rt, int worker, enum moirai_prio prio,
			  enum moirai_rt_latency kind, struct moirai_hist *out)
{
	int l = moirai_prio_index(prio);

	if (!rt || !out || l < 0 || (kind != MOIRAI_RT_LAT_WAIT && kind != MOIRAI_RT_LAT_RUN))
		return moirai__err(-EINVAL, "rt latency: NULL argument, bad level or kind");
	if (worker >= rt->nworkers)
		return moirai__err(-ERANGE, "rt latency: worker %d out of range", worker);
	for (int i = worker < 0 ? 0 : worker; i < (worker < 0 ? rt->nworkers : worker + 1); i++)
		moirai_hist_merge(out,
				  &rt->w[i]->lat[(kind == MOIRAI_RT_LAT_RUN ? RT_LEVELS : 0) + l]);
	return 0;
}

/* Every text table shares this layout: "worker" then named columns of
 * integers, one row per worker, so a script (or test_rt_stats) can read a
 * column by its name. */
#define TEXT_COLS 10

struct text_table {
	const char *cols[TEXT_COLS];
	void (*fill)(const struct moirai_rt_worker_stats *w, const struct rt_worker *rw,
		     uint64_t *v);
};

static void fill_tasks(const struct moirai_rt_worker_stats *w, const struct rt_worker *rw,
		       uint64_t *v)
{
	v[0] = (uint64_t)rw->pu;
	v[1] = (uint64_t)rw->node;
	for (int l = 0; l < RT_LEVELS; l++)
		v[2 + l] = w->tasks_run[l];
	v[6] = w->busy_ns;
	v[7] = w->cancelled;
	v[8] = w->stuck_reports;
}

static void fill_queues(const struct moirai_rt_worker_stats *w, const struct rt_worker *rw,
			uint64_t *v)
{
	(void)rw;
	for (int l = 0; l < RT_LEVELS; l++) {
		v[l] = w->queue_depth[l];
		v[RT_LEVELS + l] = w->continuations[l];
	}
}

static void fill_aging(const struct moirai_rt_worker_stats *w, const struct rt_worker *rw,
		       uint64_t *v)
{
	(void)rw;
	for (int l = 0; l < RT_LEVELS; l++)
		v[l] = w->aged_dispatches[l];
	v[4] = w->mailbox_full;
	v[5] = w->parks;
	v[6] = w->wakeups;
}

static void fill_steals(const struct moirai_rt_worker_stats *w, const struct rt_worker *rw,
			uint64_t *v)
{
	(void)rw;
	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		v[c] = w->steals[c];
	v[4] = w->steal_attempts;
	v[5] = w->stolen_from;
}

static void fill_pollers(const struct moirai_rt_worker_stats *w, const struct rt_worker *rw,
			 uint64_t *v)
{
	(void)rw;
	v[0] = w->polls_busy;
	v[1] = w->polls_idle;
	v[2] = w->poll_busy_ns;
	v[3] = w->poll_idle_ns;
	v[4] = w->timers_fired;
}

static const struct text_table text_tables[] = {
	{ { "pu", "node", "critical", "high", "normal", "background", "busy_ns", "cancelled",
	    "stuck" },
	  fill_tasks },
	{ { "queued:critical", "queued:high", "queued:normal", "queued:background", "cont:critical",
	    "cont:high", "cont:normal", "cont:background" },
	  fill_queues },
	{ { "aged:critical", "aged:high", "aged:normal", "aged:background", "mbox_full", "parks",
	    "wakeups" },
	  fill_aging },
	{ { "steal:smt", "steal:l3", "steal:node", "steal:remote", "attempts", "stolen" },
	  fill_steals },
	{ { "polls_busy", "polls_idle", "poll_busy_ns", "poll_idle_ns", "timers" }, fill_pollers },
};

static int col_width(const char *name)
{
	int n = (int)strlen(name);

	return n > 10 ? n : 10;
}

static void print_text(const struct moirai_rt *rt, const struct moirai_rt_worker_stats *ws, FILE *f)
{
	struct moirai_rt_stats s;
	char buf[256];

	moirai_rt_stats_get(rt, &s);
	fprintf(f,
		"runtime: %d workers%s%s, %" PRIu64 " tasks spawned, %" PRIu64 " refused, %" PRIu64
		" spilled, %" PRIu64 " in use, %" PRIu64 " deferred frees pending, %" PRIu64
		" done\n",
		s.workers, s.virtual_placement ? " (virtual placement)" : "",
		s.stopping ? ", stopping" : "", s.spawned, s.refused, s.overflow_spills,
		s.tasks_in_use, s.deferred_pending, s.deferred_freed);
	for (size_t t = 0; t < MOIRAI_ARRAY_SIZE(text_tables); t++) {
		const struct text_table *tt = &text_tables[t];

		fprintf(f, "\n%-6s", "worker");
		for (int c = 0; c < TEXT_COLS && tt->cols[c]; c++)
			fprintf(f, " %*s", col_width(tt->cols[c]), tt->cols[c]);
		fputc('\n', f);
		for (int i = 0; i < rt->nworkers; i++) {
			uint64_t v[TEXT_COLS] = { 0 };

			tt->fill(&ws[i], rt->w[i], v);
			fprintf(f, "%-6d", i);
			for (int c = 0; c < TEXT_COLS && tt->cols[c]; c++)
				fprintf(f, " %*" PRIu64, col_width(tt->cols[c]), v[c]);
			fputc('\n', f);
		}
	}
	fputc('\n', f);
	for (int i = 0; i < rt->nworkers; i++)
		if (ws[i].stuck_reports)
			fprintf(f,
				"stuck worker %d (moirai-w%d): task '%s' had run %" PRIu64
				" ns when last reported\n",
				i, i, ws[i].stuck_task, ws[i].stuck_run_ns);
	for (int l = 0; l < RT_LEVELS; l++) {
		for (int k = 0; k < 2; k++) {
			struct moirai_hist h;

			memset(&h, 0, sizeof(h));
			moirai_rt_latency_get(rt, -1, moirai_prio_from_index(l),
					      k ? MOIRAI_RT_LAT_RUN : MOIRAI_RT_LAT_WAIT, &h);
			if (!moirai_hist_count(&h))
				continue;
			moirai_hist_format(&h, buf, sizeof(buf));
			fprintf(f, "%-4s %-10s %s\n", k ? "run" : "wait", prio_names[l], buf);
		}
	}
}

/* A JSON string: the task name is the caller's. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_levels(FILE *f, const char *key, const uint64_t *v)
{
	fprintf(f, ", \"%s\": {", key);
	for (int l = 0; l < RT_LEVELS; l++)
		fprintf(f, "%s\"%s\": %" PRIu64, l ? ", " : "", prio_names[l], v[l]);
	fputc('}', f);
}

static void print_json(const struct moirai_rt *rt, const struct moirai_rt_worker_stats *ws, FILE *f)
{
	struct moirai_rt_stats s;
	char buf[512];

	moirai_rt_stats_get(rt, &s);
	fprintf(f,
		"{\"workers_count\": %d, \"virtual_placement\": %s, \"stopping\": %s"
		", \"spawned\": %" PRIu64 ", \"refused\": %" PRIu64
		", \"overflow_spills\": %" PRIu64 ", \"deferred_pending\": %" PRIu64
		", \"deferred_freed\": %" PRIu64 ", \"tasks_in_use\": %" PRIu64 ", \"workers\": [",
		s.workers, s.virtual_placement ? "true" : "false", s.stopping ? "true" : "false",
		s.spawned, s.refused, s.overflow_spills, s.deferred_pending, s.deferred_freed,
		s.tasks_in_use);
	for (int i = 0; i < rt->nworkers; i++) {
		const struct moirai_rt_worker_stats *w = &ws[i];

		fprintf(f, "%s{\"worker\": %d, \"pu\": %d, \"node\": %d", i ? ", " : "", i,
			rt->w[i]->pu, rt->w[i]->node);
		json_levels(f, "tasks_run", w->tasks_run);
		json_levels(f, "continuations", w->continuations);
		json_levels(f, "aged_dispatches", w->aged_dispatches);
		json_levels(f, "queue_depth", w->queue_depth);
		fprintf(f, ", \"steals\": {");
		for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
			fprintf(f, "%s\"%s\": %" PRIu64, c ? ", " : "", steal_names[c],
				w->steals[c]);
		fprintf(f,
			"}, \"steal_attempts\": %" PRIu64 ", \"stolen_from\": %" PRIu64
			", \"mailbox_full\": %" PRIu64 ", \"parks\": %" PRIu64
			", \"wakeups\": %" PRIu64 ", \"polls_busy\": %" PRIu64
			", \"polls_idle\": %" PRIu64 ", \"poll_busy_ns\": %" PRIu64
			", \"poll_idle_ns\": %" PRIu64 ", \"timers_fired\": %" PRIu64
			", \"busy_ns\": %" PRIu64 ", \"stuck_reports\": %" PRIu64
			", \"stuck_run_ns\": %" PRIu64 ", \"stuck_task\": ",
			w->steal_attempts, w->stolen_from, w->mailbox_full, w->parks, w->wakeups,
			w->polls_busy, w->polls_idle, w->poll_busy_ns, w->poll_idle_ns,
			w->timers_fired, w->busy_ns, w->stuck_reports, w->stuck_run_ns);
		json_string(f, w->stuck_task);
		fprintf(f, ", \"cancelled\": %" PRIu64 "}", w->cancelled);
	}
	fprintf(f, "], \"latency_ns\": {");
	for (int l = 0; l < RT_LEVELS; l++) {
		fprintf(f, "%s\"%s\": {", l ? ", " : "", prio_names[l]);
		for (int k = 0; k < 2; k++) {
			struct moirai_hist h;

			memset(&h, 0, sizeof(h));
			moirai_rt_latency_get(rt, -1, moirai_prio_from_index(l),
					      k ? MOIRAI_RT_LAT_RUN : MOIRAI_RT_LAT_WAIT, &h);
			moirai_hist_format_json(&h, "", buf, sizeof(buf));
			fprintf(f, "%s\"%s\": {%s}", k ? ", " : "", k ? "run" : "wait", buf);
		}
		fprintf(f, "}");
	}
	fprintf(f, "}}\n");
}

int moirai_rt_stats_print(const struct moirai_rt *rt, FILE *f, bool json)
{
	struct moirai_rt_worker_stats *ws;

	if (!rt || !f)
		return moirai__err(-EINVAL, "rt stats print: NULL argument");
	/* One snapshot per worker, shared by every table and key. */
	ws = calloc((size_t)rt->nworkers, sizeof(*ws));
	if (!ws)
		return moirai__err(-ENOMEM, "rt stats print: out of memory");
	for (int i = 0; i < rt->nworkers; i++)
		moirai_rt_worker_stats_get(rt, i, &ws[i]);
	if (json)
		print_json(rt, ws, f);
	else
		print_text(rt, ws, f);
	free(ws);
	if (ferror(f))
		return moirai__err(-EIO, "rt stats print: write error");
	return 0;
}
