/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Runtime stats: snapshots of the per-worker counters (written by their
 * owners with relaxed stores, so reads here are race-free but not a
 * consistent cut), merged latency histograms, and the text and JSON
 * printers.
 */
#include <inttypes.h>
#include <stdio.h>
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

static void print_text(const struct moirai_rt *rt, FILE *f)
{
	struct moirai_rt_stats s;
	char buf[256];

	moirai_rt_stats_get(rt, &s);
	fprintf(f,
		"runtime: %d workers%s, %" PRIu64 " tasks spawned, %" PRIu64 " refused, %" PRIu64
		" spilled\n",
		s.workers, s.virtual_placement ? " (virtual placement)" : "", s.spawned, s.refused,
		s.overflow_spills);
	fprintf(f, "%-6s %4s %4s %12s %12s %12s %12s %10s %8s %8s %8s\n", "worker", "pu", "node",
		"critical", "high", "normal", "background", "steals", "stolen", "parks", "stuck");
	for (int i = 0; i < rt->nworkers; i++) {
		struct moirai_rt_worker_stats w;
		uint64_t steals = 0;

		moirai_rt_worker_stats_get(rt, i, &w);
		for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
			steals += w.steals[c];
		fprintf(f,
			"%-6d %4d %4d %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64
			" %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
			i, rt->w[i]->pu, rt->w[i]->node, w.tasks_run[0], w.tasks_run[1],
			w.tasks_run[2], w.tasks_run[3], steals, w.stolen_from, w.parks,
			w.stuck_reports);
	}
	for (int l = 0; l < RT_LEVELS; l++) {
		struct moirai_hist h;

		memset(&h, 0, sizeof(h));
		moirai_rt_latency_get(rt, -1, moirai_prio_from_index(l), MOIRAI_RT_LAT_WAIT, &h);
		if (!moirai_hist_count(&h))
			continue;
		moirai_hist_format(&h, buf, sizeof(buf));
		fprintf(f, "wait %-10s %s\n", prio_names[l], buf);
	}
}

static void print_json(const struct moirai_rt *rt, FILE *f)
{
	struct moirai_rt_stats s;
	char buf[512];

	moirai_rt_stats_get(rt, &s);
	fprintf(f,
		"{\"workers_count\": %d, \"virtual_placement\": %s, \"spawned\": %" PRIu64
		", \"refused\": %" PRIu64 ", \"overflow_spills\": %" PRIu64
		", \"deferred_pending\": %" PRIu64 ", \"deferred_freed\": %" PRIu64
		", \"workers\": [",
		s.workers, s.virtual_placement ? "true" : "false", s.spawned, s.refused,
		s.overflow_spills, s.deferred_pending, s.deferred_freed);
	for (int i = 0; i < rt->nworkers; i++) {
		struct moirai_rt_worker_stats w;

		moirai_rt_worker_stats_get(rt, i, &w);
		fprintf(f, "%s{\"worker\": %d, \"pu\": %d, \"node\": %d, \"tasks_run\": {",
			i ? ", " : "", i, rt->w[i]->pu, rt->w[i]->node);
		for (int l = 0; l < RT_LEVELS; l++)
			fprintf(f, "%s\"%s\": %" PRIu64, l ? ", " : "", prio_names[l],
				w.tasks_run[l]);
		fprintf(f, "}, \"steals\": {");
		for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
			fprintf(f, "%s\"%s\": %" PRIu64, c ? ", " : "", steal_names[c],
				w.steals[c]);
		fprintf(f,
			"}, \"stolen_from\": %" PRIu64 ", \"parks\": %" PRIu64
			", \"wakeups\": %" PRIu64 ", \"mailbox_full\": %" PRIu64
			", \"polls_busy\": %" PRIu64 ", \"polls_idle\": %" PRIu64
			", \"busy_ns\": %" PRIu64 ", \"stuck_reports\": %" PRIu64
			", \"cancelled\": %" PRIu64 "}",
			w.stolen_from, w.parks, w.wakeups, w.mailbox_full, w.polls_busy,
			w.polls_idle, w.busy_ns, w.stuck_reports, w.cancelled);
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
	if (!rt || !f)
		return moirai__err(-EINVAL, "rt stats print: NULL argument");
	if (json)
		print_json(rt, f);
	else
		print_text(rt, f);
	if (ferror(f))
		return moirai__err(-EIO, "rt stats print: write error");
	return 0;
}
