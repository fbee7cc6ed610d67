/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Scheduler storm: each round creates a runtime (the live topology, or a
 * synthetic multi-node one under virtual placement; small mailboxes and
 * descriptor pools now and then, so that spawns are refused), floods it
 * from the main thread with tasks of every kind (plain, yielding once,
 * fork-join, timer-starting, defer_free-ing, in a group, strictly or
 * loosely placed on a worker or a node, at every priority, with a handle
 * or detached), cancels, try-joins and detaches handles at random, runs
 * parallel_for, and stops the runtime at a random point, DRAIN or NOW,
 * from the main thread or from inside a task.  Then a new runtime.
 *
 * Checks, for every task whose spawn returned 0: it ran at most once (a
 * yielding task twice, the second run finishing it); it ran, or a cancel
 * returned 0 for it, or the NOW stop cancelled it: ran + cancelled +
 * stop-cancelled == accepted, with stop-cancelled 0 for DRAIN; a handle's
 * join status says which (its own status, -ECANCELED or -ESHUTDOWN) and
 * agrees with whether it ran.  A parallel_for visits every index once.
 * Timers fire as often as their callbacks say (a one-shot at most once);
 * every defer_free'd object is freed by destroy; groups end with nothing
 * pending; a second stop is -EALREADY and a spawn after stop -ESHUTDOWN;
 * destroy returns 0.  main.c checks that every worker thread was joined.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define MAX_TASKS   32768
#define MAX_HANDLES 2048
#define MAX_TIMERS  256
#define PFOR_N	    4096

enum kind { K_PLAIN, K_YIELD, K_FORK, K_TIMER, K_DEFER, K_GROUP, K_STOP, K_COUNT };

struct slot {
	_Atomic uint32_t invocations;
	_Atomic uint32_t runs; /* finished runs */
	_Atomic uint8_t accepted;
	uint8_t kind;
	bool cancelled; /* a cancel returned 0 (main thread only) */
};

struct sround {
	const struct stress_ctx *ctx;
	struct stress_result *r;
	struct moirai_rt *rt;
	int workers, mode;
	struct slot *slots;
	_Atomic uint32_t next_id;
	struct moirai_group *group;
	struct moirai_timer timers[MAX_TIMERS];
	bool timer_periodic[MAX_TIMERS];
	_Atomic uint32_t timer_fires[MAX_TIMERS];
	_Atomic uint32_t next_timer;
	_Atomic uint64_t deferred, defer_freed;
	_Atomic bool stop_called, dropped;
	_Atomic uint32_t pfor[PFOR_N];
};

/* One round at a time: the tasks find it here. */
static struct sround *g_rd;

static int expected_status(uint32_t id)
{
	return (int)(id % 1000);
}

static int body(void *arg);

/* Register a slot and spawn it; returns the spawn's result. */
static int spawn_kind(struct sround *rd, enum kind k, const struct moirai_spawn_opts *opts,
		      struct moirai_task **h, uint32_t *id_out)
{
	uint32_t id = atomic_fetch_add(&rd->next_id, 1);
	int rc;

	if (id >= MAX_TASKS)
		return -ENOSPC;
	rd->slots[id].kind = (uint8_t)k;
	rc = moirai_rt_spawn(rd->rt, body, (void *)(uintptr_t)id, opts, h);
	if (rc == 0)
		atomic_store(&rd->slots[id].accepted, 1);
	*id_out = id;
	return rc;
}

/* What a spawn may legitimately refuse with under stress. */
static bool refusal_ok(struct sround *rd, int rc)
{
	if (rc == -EAGAIN) {
		stress_count(&rd->r->seen[MOIRAI_FAULT_POOL_GET], 1);
		return true;
	}
	return rc == -ESHUTDOWN || rc == -ENOSPC || rc == -ENOMEM;
}

static void check_join(struct sround *rd, uint32_t id, int status)
{
	struct slot *s = &rd->slots[id];
	uint32_t runs = atomic_load(&s->runs);

	if (status == expected_status(id) && runs == 1)
		return;
	if ((status == -ECANCELED || status == -ESHUTDOWN) && runs == 0)
		return;
	stress_violation(rd->r, "sched: task %u (kind %u) joined with status %d but ran %u times",
			 id, s->kind, status, runs);
}

static void timer_cb(struct moirai_timer *t, void *arg)
{
	struct sround *rd = arg;
	int i = (int)(t - rd->timers);
	uint32_t n = atomic_fetch_add(&rd->timer_fires[i], 1) + 1;

	stress_count(&rd->r->ops, 1);
	if (rd->timer_periodic[i] && n >= 3) {
		int rc = moirai_timer_cancel(t);

		if (rc)
			stress_violation(rd->r, "sched: a periodic timer cannot cancel itself: %d",
					 rc);
	}
}

static void counting_free(void *p, void *arg)
{
	struct sround *rd = arg;

	moirai_free(p);
	atomic_fetch_add(&rd->defer_freed, 1);
}

static void fork_children(struct sround *rd)
{
	struct moirai_task *h[2] = { NULL, NULL };
	uint32_t ids[2];
	int rc[2];

	for (int i = 0; i < 2; i++)
		rc[i] = spawn_kind(rd, K_PLAIN, NULL, &h[i], &ids[i]);
	for (int i = 0; i < 2; i++) {
		int st;

		if (rc[i]) {
			if (!refusal_ok(rd, rc[i]))
				stress_violation(rd->r, "sched: spawn from a task: %d (%s)", rc[i],
						 moirai_strerror(rc[i]));
			continue;
		}
		if (moirai_task_join(h[i], MOIRAI_TIMEOUT_FOREVER, &st) != 0)
			stress_violation(rd->r, "sched: join from a task failed");
		else
			check_join(rd, ids[i], st);
	}
}

static int body(void *arg)
{
	struct sround *rd = g_rd;
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct slot *s = &rd->slots[id];
	uint32_t inv = atomic_fetch_add(&s->invocations, 1);
	int rc;

	if (inv > (s->kind == K_YIELD ? 1u : 0u))
		stress_violation(rd->r, "sched: task %u (kind %u) run %u times", id, s->kind,
				 inv + 1);
	switch (s->kind) {
	case K_YIELD:
		if (inv == 0)
			return MOIRAI_TASK_CONTINUE;
		break;
	case K_FORK: fork_children(rd); break;
	case K_TIMER: {
		uint32_t i = atomic_fetch_add(&rd->next_timer, 1);

		if (i >= MAX_TIMERS)
			break;
		/* Ours alone until started: set up here, on the worker. */
		rd->timer_periodic[i] = i % 3 == 0;
		moirai_timer_init(&rd->timers[i], timer_cb, rd);
		rc = moirai_timer_start(&rd->timers[i], (uint64_t)(id % 7) * 100000,
					rd->timer_periodic[i] ? 300000 : 0);
		if (rc && rc != -ENOMEM)
			stress_violation(rd->r, "sched: timer start: %d", rc);
		break;
	}
	case K_DEFER: {
		void *p = moirai_malloc(64);

		if (!p)
			break;
		rc = moirai_rt_defer_free(rd->rt, p, counting_free, rd);
		if (rc == 0) {
			atomic_fetch_add(&rd->deferred, 1);
		} else {
			moirai_free(p);
			if (rc != -ESHUTDOWN && rc != -ENOMEM)
				stress_violation(rd->r, "sched: defer_free: %d", rc);
		}
		break;
	}
	case K_STOP:
		rc = moirai_rt_stop(rd->rt, (enum moirai_rt_stop_mode)rd->mode,
				    MOIRAI_TIMEOUT_FOREVER);
		if (rc != -EINPROGRESS)
			stress_violation(rd->r, "sched: stop from a task returned %d", rc);
		atomic_store(&rd->stop_called, true);
		break;
	default: break;
	}
	if (rd->ctx->violate && !atomic_exchange(&rd->dropped, true))
		return expected_status(id); /* --self-test-violation: run not counted */
	atomic_fetch_add(&s->runs, 1);
	stress_count(&rd->r->ops, 1);
	return expected_status(id);
}

static void pfor_body(size_t begin, size_t end, void *arg)
{
	struct sround *rd = arg;

	for (size_t i = begin; i < end; i++)
		atomic_fetch_add(&rd->pfor[i], 1);
}

static void random_opts(struct sround *rd, uint64_t *rng, struct moirai_spawn_opts *o)
{
	struct moirai_rt_worker_info wi;

	memset(o, 0, sizeof(*o));
	o->prio = (int)rng_below(rng, MOIRAI_PRIO_LEVELS) - 1;
	switch (rng_below(rng, 6)) {
	case 0:
	case 1: break;
	case 2: o->flags = MOIRAI_SPAWN_F_WORKER; break;
	case 3: o->flags = MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_STRICT; break;
	case 4: o->flags = MOIRAI_SPAWN_F_NODE; break;
	default: o->flags = MOIRAI_SPAWN_F_NODE | MOIRAI_SPAWN_F_STRICT; break;
	}
	o->worker = (int)rng_below(rng, (uint64_t)rd->workers);
	if (moirai_rt_worker_info(rd->rt, o->worker, &wi) == 0)
		o->node = wi.plan_node;
}

struct handle {
	struct moirai_task *h;
	uint32_t id;
};

static void join_handle(struct sround *rd, struct handle *hd, int64_t timeout)
{
	int st, rc = moirai_task_join(hd->h, timeout, &st);

	if (rc) {
		stress_violation(rd->r, "sched: join of task %u: %d (%s)", hd->id, rc,
				 moirai_strerror(rc));
		return;
	}
	if (rd->slots[hd->id].cancelled && st != -ECANCELED)
		stress_violation(rd->r, "sched: task %u was cancelled but joined with %d", hd->id,
				 st);
	check_join(rd, hd->id, st);
}

static int make_rt(struct sround *rd, uint64_t *rng)
{
	struct moirai_rt_config cfg = { .stuck_ns = UINT64_MAX };
	struct moirai_topo *topo = NULL;
	static const char *const syn[] = { "pack:1 numa:4 core:2 pu:1", "pack:2 numa:2 core:1 pu:2",
					   "numa:3 core:1 pu:1" };
	int rc;

	if (rng_below(rng, 2)) {
		rc = moirai_topo_load_synthetic(syn[rng_below(rng, 3)], &topo);
		if (rc)
			return rc;
		cfg.topo = topo;
		cfg.virtual_placement = true;
	}
	if (rng_below(rng, 3) == 0)
		cfg.mailbox_size = 16;
	if (rng_below(rng, 3) == 0)
		cfg.tasks_per_node = 256;
	if (rng_below(rng, 4) == 0) {
		cfg.idle = MOIRAI_RT_IDLE_SPIN;
	} else {
		cfg.spin_ns = 1000 + rng_below(rng, 50000);
	}
	cfg.deque_size = rng_below(rng, 2) ? 64 : 0;
	rc = moirai_rt_create(&cfg, &rd->rt);
	moirai_topo_destroy(topo);
	return rc;
}

static void round_run(struct sround *rd, uint64_t *rng, double deadline)
{
	struct handle *hs = calloc(MAX_HANDLES, sizeof(*hs));
	int nh = 0, rc;
	bool from_task = rng_below(rng, 3) == 0;
	uint64_t cancelled_ok = 0, stop_cancelled = 0, accepted = 0, ran = 0;

	if (!hs)
		return;
	rd->workers = moirai_rt_worker_count(rd->rt);
	rd->mode = rng_below(rng, 2) ? MOIRAI_RT_STOP_NOW : MOIRAI_RT_STOP_DRAIN;
	rc = moirai_group_create(rd->rt, &rd->group);
	if (rc) {
		if (rc != -ENOMEM)
			stress_violation(rd->r, "sched: group create: %d", rc);
		rd->group = NULL;
	}
	do {
		for (int k = 0; k < 16; k++) {
			struct moirai_spawn_opts o;
			uint64_t a = rng_below(rng, 100);
			uint32_t id;

			random_opts(rd, rng, &o);
			if (a < 70) {
				enum kind kind = (enum kind)rng_below(rng, K_STOP);
				bool handle = rng_below(rng, 5) < 3 && nh < MAX_HANDLES;
				struct moirai_task *h = NULL;

				if (kind == K_GROUP)
					o.group = rd->group;
				rc = spawn_kind(rd, kind, &o, handle ? &h : NULL, &id);
				if (rc == 0 && handle)
					hs[nh++] = (struct handle){ h, id };
				else if (rc && !refusal_ok(rd, rc))
					stress_violation(rd->r, "sched: spawn: %d (%s)", rc,
							 moirai_last_error());
			} else if (a < 78 && nh) {
				struct handle *hd = &hs[rng_below(rng, (uint64_t)nh)];

				rc = moirai_task_cancel(hd->h);
				if (rc == 0)
					rd->slots[hd->id].cancelled = true;
				else if (rc != -EBUSY && rc != -EALREADY)
					stress_violation(rd->r, "sched: cancel: %d", rc);
			} else if (a < 86 && nh) {
				int i = (int)rng_below(rng, (uint64_t)nh), st;

				rc = moirai_task_try_join(hs[i].h, &st);
				if (rc == 0) {
					if (rd->slots[hs[i].id].cancelled && st != -ECANCELED)
						stress_violation(rd->r,
								 "sched: cancelled task "
								 "joined with %d",
								 st);
					check_join(rd, hs[i].id, st);
					hs[i] = hs[--nh];
				} else if (rc != -EAGAIN) {
					stress_violation(rd->r, "sched: try_join: %d", rc);
				}
			} else if (a < 90 && nh) {
				int i = (int)rng_below(rng, (uint64_t)nh);

				if (moirai_task_detach(hs[i].h) != 0)
					stress_violation(rd->r, "sched: detach failed");
				hs[i] = hs[--nh];
			} else if (a < 98) {
				id = atomic_fetch_add(&rd->next_id, 1);
				if (id >= MAX_TASKS)
					continue;
				rd->slots[id].kind = K_PLAIN;
				rc = moirai_rt_send(rd->rt, o.worker, MOIRAI_PRIO_CRITICAL, body,
						    (void *)(uintptr_t)id);
				if (rc == 0)
					atomic_store(&rd->slots[id].accepted, 1);
				else if (!refusal_ok(rd, rc))
					stress_violation(rd->r, "sched: send: %d", rc);
			} else {
				memset((void *)rd->pfor, 0, sizeof(rd->pfor));
				rc = moirai_parallel_for(rd->rt, 0, PFOR_N, rng_below(rng, 64),
							 pfor_body, rd, NULL);
				if (rc == 0) {
					for (int i = 0; i < PFOR_N; i++)
						if (rd->pfor[i] != 1) {
							stress_violation(rd->r,
									 "sched: parallel_for "
									 "ran index %d %u times",
									 i, rd->pfor[i]);
							break;
						}
				} else if (!refusal_ok(rd, rc)) {
					stress_violation(rd->r, "sched: parallel_for: %d", rc);
				}
			}
		}
		if (nh == MAX_HANDLES)
			join_handle(rd, &hs[--nh], MOIRAI_TIMEOUT_FOREVER);
		sched_yield();
	} while (stress_now() < deadline);

	/* Stop, from a task or from here. */
	if (from_task) {
		struct moirai_spawn_opts o = { .prio = MOIRAI_PRIO_CRITICAL };
		uint32_t id;

		rc = spawn_kind(rd, K_STOP, &o, NULL, &id);
		if (rc == 0) {
			for (int w = 0; w < 30000 && !atomic_load(&rd->stop_called); w++)
				stress_sleep_ns(1000000);
			rc = moirai_rt_wait(rd->rt, 30 * 1000000000LL);
			if (rc)
				stress_violation(rd->r, "sched: wait after a stop from a task: %d",
						 rc);
		} else {
			from_task = false;
		}
	}
	if (!from_task) {
		rc = moirai_rt_stop(rd->rt, (enum moirai_rt_stop_mode)rd->mode, 30 * 1000000000LL);
		if (rc < 0)
			stress_violation(rd->r, "sched: stop: %d (%s)", rc, moirai_strerror(rc));
		if (rd->mode == MOIRAI_RT_STOP_DRAIN && rc > 0)
			stress_violation(rd->r, "sched: a DRAIN stop cancelled %d tasks", rc);
	}
	rc = moirai_rt_stop(rd->rt, MOIRAI_RT_STOP_NOW, 0);
	if (rc != -EALREADY)
		stress_violation(rd->r, "sched: second stop returned %d, not -EALREADY", rc);
	{
		uint32_t id;

		rc = spawn_kind(rd, K_PLAIN, NULL, NULL, &id);
		if (rc != -ESHUTDOWN && rc != -ENOSPC)
			stress_violation(rd->r, "sched: spawn after stop returned %d", rc);
	}
	for (int w = 0; w < rd->workers; w++) {
		struct moirai_rt_worker_stats ws;

		if (moirai_rt_worker_stats_get(rd->rt, w, &ws) == 0)
			stop_cancelled += ws.cancelled;
	}
	while (nh > 0)
		join_handle(rd, &hs[--nh], MOIRAI_TIMEOUT_FOREVER);
	if (rd->group) {
		int first;

		rc = moirai_group_wait(rd->group, 10 * 1000000000LL, &first);
		if (rc || moirai_group_pending(rd->group) != 0)
			stress_violation(rd->r, "sched: group wait after stop: %d, %u pending", rc,
					 moirai_group_pending(rd->group));
		else if (moirai_group_destroy(rd->group) != 0)
			stress_violation(rd->r, "sched: group destroy failed");
	}
	rc = moirai_rt_destroy(rd->rt);
	if (rc)
		stress_violation(rd->r, "sched: destroy: %d", rc);
	rd->rt = NULL;

	uint32_t n = atomic_load(&rd->next_id);

	for (uint32_t id = 0; id < n && id < MAX_TASKS; id++) {
		struct slot *s = &rd->slots[id];

		if (!s->accepted) {
			if (s->invocations)
				stress_violation(rd->r, "sched: task %u ran but its spawn failed",
						 id);
			continue;
		}
		accepted++;
		ran += s->runs;
		cancelled_ok += s->cancelled;
		if (s->runs && s->cancelled)
			stress_violation(rd->r, "sched: task %u ran after a successful cancel", id);
	}
	if (rd->mode == MOIRAI_RT_STOP_DRAIN && stop_cancelled)
		stress_violation(rd->r, "sched: DRAIN stop cancelled %" PRIu64 " tasks",
				 stop_cancelled);
	if (ran + cancelled_ok + stop_cancelled != accepted)
		stress_violation(rd->r,
				 "sched: %" PRIu64 " tasks accepted, %" PRIu64 " ran, %" PRIu64
				 " cancelled, %" PRIu64 " cancelled by the %s stop: lost or "
				 "duplicated",
				 accepted, ran, cancelled_ok, stop_cancelled,
				 rd->mode == MOIRAI_RT_STOP_NOW ? "NOW" : "DRAIN");
	for (uint32_t i = 0; i < atomic_load(&rd->next_timer) && i < MAX_TIMERS; i++) {
		uint32_t f = rd->timer_fires[i];

		if ((!rd->timer_periodic[i] && f > 1) || f > 3 || f != rd->timers[i].fired)
			stress_violation(rd->r,
					 "sched: timer %u fired %u times (%" PRIu64
					 " by its count, %s)",
					 i, f, rd->timers[i].fired,
					 rd->timer_periodic[i] ? "periodic" : "one-shot");
	}
	if (rd->deferred != rd->defer_freed)
		stress_violation(
			rd->r, "sched: %" PRIu64 " objects deferred, %" PRIu64 " freed by destroy",
			(uint64_t)rd->deferred, (uint64_t)rd->defer_freed);
	free(hs);
}

void stress_sched(const struct stress_ctx *ctx, struct stress_result *r)
{
	double end = stress_now() + ctx->duration;
	uint64_t rng = rng_seed(ctx, 5, 0, 0);
	long log_level = moirai_option_get(MOIRAI_OPT_LOG_LEVEL);

	/* Virtual placement warns once per runtime: not news here. */
	if (!ctx->verbose && log_level > 0)
		moirai_option_set(MOIRAI_OPT_LOG_LEVEL, 0);
	for (uint64_t round_no = 0; stress_now() < end; round_no++) {
		struct sround *rd = calloc(1, sizeof(*rd));
		int rc;

		if (!rd)
			break;
		rd->slots = calloc(MAX_TASKS, sizeof(*rd->slots));
		if (!rd->slots) {
			free(rd);
			break;
		}
		rd->ctx = ctx;
		rd->r = r;
		g_rd = rd;
		rc = make_rt(rd, &rng);
		if (rc == 0) {
			double slice = 0.05 + (double)rng_below(&rng, 400) / 1000.0;
			double dl = stress_now() + slice;

			round_run(rd, &rng, dl < end ? dl : end);
			stress_count(&r->rounds, 1);
		} else if (rc == -ENOMEM || rc == -EAGAIN) {
			stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
		} else {
			stress_violation(r, "sched: runtime create: %d (%s)", rc,
					 moirai_last_error());
			free(rd->slots);
			free(rd);
			break;
		}
		g_rd = NULL;
		free(rd->slots);
		free(rd);
	}
	moirai_option_set(MOIRAI_OPT_LOG_LEVEL, log_level);
}
