/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime's step function, single-threaded with a fake clock: a
 * runtime in manual mode has its workers' state but no threads, and the
 * test steps them itself.  Strict priority, the aging bound (also against
 * siblings' critical work), the bounded newest-first run, continuations,
 * timers (order, accuracy, periodic without drift, cancel), pollers
 * (busy/idle, periods, unregister while running), the step's budget and
 * should_yield's, and stealing nearest first on synthetic machines (4
 * nodes; SMT siblings and two L3 domains per node).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt_int.h"
#include "testutil.h"

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
	return fake_now;
}

/* ---- a log of what ran -------------------------------------------------- */

#define LOG_MAX 100000
static int run_log[LOG_MAX];
static int run_n;

static int log_task(void *arg)
{
	if (run_n < LOG_MAX)
		run_log[run_n++] = (int)(intptr_t)arg;
	return 0;
}

static struct moirai_rt *manual_rt(const char *topo_desc, const struct moirai_rt_config *cfg)
{
	struct moirai_rt_config c = { 0 };
	struct moirai_topo *topo = NULL;
	struct moirai_rt *rt;

	if (cfg)
		c = *cfg;
	if (topo_desc) {
		assert_int_equal(moirai_topo_load_synthetic(topo_desc, &topo), 0);
		c.topo = topo;
		c.virtual_placement = true;
	}
	assert_int_equal(moirai__rt_create_manual(&c, fake_clock, &rt), 0);
	moirai_topo_destroy(topo);
	run_n = 0;
	return rt;
}

static void step(struct moirai_rt *rt, int w, unsigned max, struct rt_step *st)
{
	struct rt_step tmp;

	moirai__rt_bind_thread(rt, w);
	rt_step(rt->w[w], fake_now, max, st ? st : &tmp);
}

static void spawn_on(struct moirai_rt *rt, int w, moirai_task_fn fn, intptr_t id, int prio)
{
	struct moirai_spawn_opts o = { .prio = prio };

	moirai__rt_bind_thread(rt, w);
	assert_int_equal(moirai_rt_spawn(rt, fn, (void *)id, &o, NULL), 0);
}

static void destroy(struct moirai_rt *rt)
{
	/* Run whatever is left so nothing stays queued, then tear down. */
	for (int k = 0; k < 1000; k++)
		for (int i = 0; i < rt->nworkers; i++)
			step(rt, i, 1000, NULL);
	moirai__rt_bind_thread(NULL, -1);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- priority --------------------------------------------------------- */

static void test_strict_priority(void **state)
{
	static const int prios[] = { MOIRAI_PRIO_BACKGROUND, MOIRAI_PRIO_NORMAL, MOIRAI_PRIO_HIGH,
				     MOIRAI_PRIO_CRITICAL };
	struct moirai_rt_config cfg = { .aging_dispatches = 1000, .aging_ns = UINT64_MAX / 2 };
	struct moirai_rt *rt;
	unsigned seed = 1;

	(void)state;
	rt = manual_rt("pack:1 core:1 pu:1", &cfg);
	/* 200 tasks in random level order; id = level * 1000 + sequence. */
	for (int i = 0; i < 200; i++) {
		int p = prios[rand_r(&seed) % 4];

		spawn_on(rt, 0, log_task, moirai_prio_index(p) * 1000 + i, p);
	}
	for (int i = 0; i < 200; i++)
		step(rt, 0, 1, NULL);
	assert_int_equal(run_n, 200);
	/* Levels never go back up: all critical, then all high, ... */
	for (int i = 1; i < run_n; i++)
		assert_true(run_log[i - 1] / 1000 <= run_log[i] / 1000);
	destroy(rt);
}

/* A critical task that keeps a sustained flood going by respawning. */
static long flood_left;

static int flood_task(void *arg)
{
	if (run_n < LOG_MAX)
		run_log[run_n++] = 0;
	if (--flood_left > 0)
		assert_int_equal(
			moirai_rt_spawn(moirai_rt_current(), flood_task, arg,
					&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_CRITICAL },
					NULL),
			0);
	return 0;
}

/*
 * Aging by count: under a sustained critical flood, a background task
 * starts within aging_dispatches critical dispatches (here 32), for many
 * flood shapes (several flood tasks in flight).
 */
static void test_aging_dispatch_bound(void **state)
{
	const unsigned N = 32;
	struct moirai_rt_config cfg = { .aging_dispatches = N, .aging_ns = UINT64_MAX / 2 };

	(void)state;
	for (int width = 1; width <= 8; width++) {
		struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", &cfg);
		int pos = -1;

		flood_left = 100000;
		for (int i = 0; i < width; i++)
			spawn_on(rt, 0, flood_task, 0, MOIRAI_PRIO_CRITICAL);
		spawn_on(rt, 0, log_task, 3, MOIRAI_PRIO_BACKGROUND);
		for (int i = 0; i < 200 && pos < 0; i++) {
			step(rt, 0, 1, NULL);
			for (int k = 0; k < run_n; k++)
				if (run_log[k] == 3)
					pos = k;
		}
		/* It ran, and no more than N flood tasks ran before it. */
		assert_true(pos >= 0);
		assert_true(pos <= (int)N);
		assert_true(flood_left > 0); /* the flood was still going */
		flood_left = 0;
		destroy(rt);
	}
}

/* Aging by time: once its oldest task has waited aging_ns, a level is
 * served at the next dispatch decision, whatever the count says. */
static void test_aging_time_bound(void **state)
{
	struct moirai_rt_config cfg = { .aging_dispatches = 1u << 30, .aging_ns = 2000000 };
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", &cfg);
	int pos = -1;

	(void)state;
	flood_left = 100000;
	spawn_on(rt, 0, flood_task, 0, MOIRAI_PRIO_CRITICAL);
	spawn_on(rt, 0, log_task, 3, MOIRAI_PRIO_BACKGROUND);
	/* 1.9 ms of flood: not yet. */
	for (int i = 0; i < 19; i++) {
		step(rt, 0, 1, NULL);
		fake_now += 100000;
	}
	for (int k = 0; k < run_n; k++)
		assert_int_not_equal(run_log[k], 3);
	fake_now += 200000; /* now past 2 ms */
	step(rt, 0, 1, NULL);
	for (int k = 0; k < run_n; k++)
		if (run_log[k] == 3)
			pos = k;
	assert_int_equal(pos, run_n - 1);
	flood_left = 0;
	destroy(rt);
}

/* A task that takes 10 ms and spawns a critical task and a successor at
 * its own (background) level, as a long job cut into continuations does. */
static struct moirai_rt *long_rt;

static int long_bg(void *arg)
{
	fake_now += 10000000; /* it ran for 10 ms of the fake clock */
	if (run_n < LOG_MAX)
		run_log[run_n++] = (int)(intptr_t)arg;
	if ((intptr_t)arg == 3) {
		moirai__rt_bind_thread(long_rt, 0);
		assert_int_equal(
			moirai_rt_spawn(long_rt, log_task, (void *)0,
					&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_CRITICAL },
					NULL),
			0);
		assert_int_equal(moirai_rt_spawn(long_rt, log_task, (void *)4,
						 &(struct moirai_spawn_opts){
							 .prio = MOIRAI_PRIO_BACKGROUND },
						 NULL),
				 0);
	}
	return 0;
}

/*
 * Time spent running a level's task is not time that level waited: after a
 * 10 ms background task (five times aging_ns), the critical task it queued
 * runs next, not the next background one.  (Found under load: a yielding
 * long task was re-picked by "aging" over the critical task it yielded to.)
 */
static void test_aging_not_by_own_run(void **state)
{
	struct moirai_rt_config cfg = { .aging_ns = 2000000 };
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", &cfg);

	(void)state;
	long_rt = rt;
	spawn_on(rt, 0, long_bg, 3, MOIRAI_PRIO_BACKGROUND);
	step(rt, 0, 1, NULL);
	step(rt, 0, 1, NULL);
	step(rt, 0, 1, NULL);
	assert_int_equal(run_n, 3);
	assert_int_equal(run_log[0], 3);
	assert_int_equal(run_log[1], 0); /* the critical one */
	assert_int_equal(run_log[2], 4);
	destroy(rt);
}

/*
 * A critical task that keeps a flood going in a sibling's mailbox: it runs
 * on worker 0 (taken from worker 1's mailbox) and queues its successor
 * there again, so worker 0 always sees a critical task next door.
 */
static struct moirai_rt *sib_rt;

static int sib_flood_task(void *arg)
{
	if (run_n < LOG_MAX)
		run_log[run_n++] = 0;
	fake_now += 100000; /* 100 us of the fake clock each */
	if (--flood_left > 0)
		assert_int_equal(
			moirai_rt_spawn(sib_rt, sib_flood_task, arg,
					&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_CRITICAL,
								     .flags = MOIRAI_SPAWN_F_WORKER,
								     .worker = 1 },
					NULL),
			0);
	return 0;
}

/* Where task 3 ran in the log of worker 0's first @steps one-task steps,
 * or -1; worker 1 never steps (preempted, or in a long task). */
static int sib_flood_run(const struct moirai_rt_config *cfg, int width, int prio, int steps)
{
	struct moirai_rt *rt = manual_rt("pack:1 core:2 pu:1", cfg);
	int pos = -1;

	assert_int_equal(rt->nworkers, 2);
	assert_int_equal(rt->w[0]->steal_order[0], 1);
	sib_rt = rt;
	flood_left = 100000;
	spawn_on(rt, 0, log_task, 3, prio);
	for (int i = 0; i < width; i++) {
		moirai__rt_bind_thread(rt, 0);
		assert_int_equal(
			moirai_rt_spawn(rt, sib_flood_task, NULL,
					&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_CRITICAL,
								     .flags = MOIRAI_SPAWN_F_WORKER,
								     .worker = 1 },
					NULL),
			0);
	}
	for (int i = 0; i < steps && pos < 0; i++) {
		step(rt, 0, 1, NULL);
		for (int k = 0; k < run_n; k++)
			if (run_log[k] == 3)
				pos = k;
	}
	/* The flood was still going when the level got its turn. */
	assert_true(flood_left > 0);
	flood_left = 0;
	/* Worker 1's mailbox still holds the flood: drain it, then destroy. */
	destroy(rt);
	return pos;
}

/*
 * The aging bound holds with critical work taken from siblings too: a
 * worker that takes a critical task from a near sibling's mailbox before
 * a less urgent task of its own (take_sibling_critical) counts that as a
 * dispatch of a more urgent level, so its own level still starts within
 * aging_dispatches of them, and once it has waited aging_ns.  (Before,
 * the level was marked served when chosen, then passed over for the
 * sibling's task: under a sustained stream it never ran.)
 */
static void test_aging_sibling_critical(void **state)
{
	const unsigned N = 32;
	struct moirai_rt_config by_count = { .aging_dispatches = N, .aging_ns = UINT64_MAX / 2 };
	struct moirai_rt_config by_time = { .aging_dispatches = 1u << 30, .aging_ns = 2000000 };
	static const int prios[] = { MOIRAI_PRIO_HIGH, MOIRAI_PRIO_NORMAL, MOIRAI_PRIO_BACKGROUND };

	(void)state;
	for (int p = 0; p < 3; p++) {
		for (int width = 1; width <= 4; width++) {
			int pos = sib_flood_run(&by_count, width, prios[p], 200);

			/* Within the bound, and not sooner: until then the
			 * critical work next door still goes first. */
			assert_int_equal(pos, (int)N);
		}
		/* 100 us per flood task: 2 ms is 20 of them, and the decision
		 * after the 20th serves the level. */
		int pos = sib_flood_run(&by_time, 1, prios[p], 200);

		assert_int_equal(pos, 20);
	}
}

/* ---- the newest-first bound ------------------------------------------------ */

static int ping(void *arg);

/* Two tasks that keep spawning each other (the Tokio LIFO-slot case). */
static int ping(void *arg)
{
	if (run_n < LOG_MAX)
		run_log[run_n++] = 1;
	if (--flood_left > 0)
		assert_int_equal(moirai_rt_spawn(moirai_rt_current(), ping, arg, NULL, NULL), 0);
	return 0;
}

static void test_lifo_bound(void **state)
{
	struct moirai_rt_config cfg = { .lifo_limit = 8 };
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", &cfg);
	int first_other = -1;

	(void)state;
	/* Ten older tasks, then a ping-pong pair on the same level. */
	for (int i = 0; i < 10; i++)
		spawn_on(rt, 0, log_task, 100 + i, MOIRAI_PRIO_NORMAL);
	flood_left = 100000;
	spawn_on(rt, 0, ping, 0, MOIRAI_PRIO_NORMAL);
	for (int i = 0; i < 2000; i++)
		step(rt, 0, 1, NULL);
	for (int k = 0; k < run_n && first_other < 0; k++)
		if (run_log[k] >= 100)
			first_other = k;
	/* The pair never starves the rest: every older task ran, the first
	 * within 2 x lifo_limit pops, all within 2 x lifo_limit x 10. */
	assert_true(first_other >= 0 && first_other <= 2 * 8 + 1);
	for (int id = 100; id < 110; id++) {
		int at = -1;

		for (int k = 0; k < run_n && at < 0; k++)
			if (run_log[k] == id)
				at = k;
		assert_true(at >= 0 && at <= 2 * 8 * 10 + 10);
	}
	flood_left = 0;
	destroy(rt);
}

/* ---- continuations --------------------------------------------------------- */

static int cont_runs;

static int cont_task(void *arg)
{
	(void)arg;
	if (run_n < LOG_MAX)
		run_log[run_n++] = 50;
	return ++cont_runs < 3 ? MOIRAI_TASK_CONTINUE : 7;
}

static void test_continuation(void **state)
{
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", NULL);
	struct moirai_task *h;
	int status = 0, pos[3], k = 0;

	(void)state;
	cont_runs = 0;
	for (int i = 0; i < 4; i++)
		spawn_on(rt, 0, log_task, i, MOIRAI_PRIO_NORMAL);
	moirai__rt_bind_thread(rt, 0);
	assert_int_equal(moirai_rt_spawn(rt, cont_task, NULL, NULL, &h), 0);
	for (int i = 0; i < 20; i++)
		step(rt, 0, 1, NULL);
	for (int i = 0; i < run_n; i++)
		if (run_log[i] == 50)
			pos[k++] = i;
	assert_int_equal(k, 3);
	assert_int_equal(run_n, 7);
	/* The newest runs first; when it yields it goes behind the four that
	 * were already waiting, and runs again once they are done. */
	assert_int_equal(pos[0], 0);
	assert_int_equal(pos[1], 5);
	assert_int_equal(pos[2], 6);
	moirai__rt_bind_thread(NULL, -1);
	assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_TRY, &status), 0);
	assert_int_equal(status, 7);
	destroy(rt);
}

/* ---- timers ----------------------------------------------------------------- */

static uint64_t fired_at[64];
static int fired_id[64];
static int nfired;

static void timer_cb(struct moirai_timer *t, void *arg)
{
	(void)t;
	fired_at[nfired] = fake_now;
	fired_id[nfired++] = (int)(intptr_t)arg;
}

static void test_timers(void **state)
{
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", NULL);
	struct moirai_timer t[20], periodic, cancelled;
	uint64_t start = fake_now, due[20];
	unsigned seed = 7;

	(void)state;
	nfired = 0;
	moirai__rt_bind_thread(rt, 0);
	for (int i = 0; i < 20; i++) {
		due[i] = 1000 + (uint64_t)(rand_r(&seed) % 50000);
		assert_int_equal(moirai_timer_init(&t[i], timer_cb, (void *)(intptr_t)i), 0);
		assert_int_equal(moirai_timer_start(&t[i], due[i], 0), 0);
	}
	assert_int_equal(moirai_timer_init(&cancelled, timer_cb, (void *)(intptr_t)99), 0);
	assert_int_equal(moirai_timer_start(&cancelled, 500, 0), 0);
	assert_true(moirai_timer_is_pending(&cancelled));
	assert_int_equal(moirai_timer_cancel(&cancelled), 0);
	assert_int_equal(moirai_timer_cancel(&cancelled), -EALREADY);
	/* Walk the clock in 1 us steps: every timer fires at the first step
	 * at or after its expiry (1 us resolution), in expiry order. */
	for (int us = 0; us <= 52; us++) {
		fake_now = start + (uint64_t)us * 1000;
		step(rt, 0, 1, NULL);
	}
	assert_int_equal(nfired, 20);
	for (int i = 0; i < nfired; i++) {
		int id = fired_id[i];

		assert_true(fired_at[i] >= start + due[id]);
		assert_true(fired_at[i] < start + due[id] + 1000);
		if (i)
			assert_true(due[fired_id[i - 1]] <= due[id]);
		assert_false(moirai_timer_is_pending(&t[id]));
	}
	/* Periodic: on schedule (no drift) and missed periods skipped. */
	nfired = 0;
	start = fake_now;
	assert_int_equal(moirai_timer_init(&periodic, timer_cb, (void *)(intptr_t)1), 0);
	assert_int_equal(moirai_timer_start(&periodic, 10000, 10000), 0);
	for (int i = 1; i <= 5; i++) {
		fake_now = start + (uint64_t)i * 10000 + 300; /* a little late each time */
		step(rt, 0, 1, NULL);
		assert_int_equal(nfired, i);
		assert_int_equal(periodic.expiry_ns, start + (uint64_t)(i + 1) * 10000);
	}
	fake_now = start + 95000; /* 4 periods missed: one call, back on schedule */
	step(rt, 0, 1, NULL);
	assert_int_equal(nfired, 6);
	assert_int_equal(periodic.expiry_ns, start + 100000);
	assert_int_equal(moirai_timer_cancel(&periodic), 0);
	/* Misuse: a zeroed timer was never initialised (it would call NULL). */
	{
		struct moirai_timer z;

		memset(&z, 0, sizeof(z));
		assert_int_equal(moirai_timer_start(&z, 1000, 0), -EINVAL);
		assert_false(moirai_timer_is_pending(&z));
	}
	moirai__rt_bind_thread(NULL, -1);
	assert_int_equal(moirai_timer_start(&periodic, 1, 0), -EINVAL);
	assert_int_equal(moirai_timer_init(NULL, timer_cb, NULL), -EINVAL);
	assert_int_equal(moirai_timer_init(&periodic, NULL, NULL), -EINVAL);
	destroy(rt);
}

/* ---- pollers ---------------------------------------------------------------- */

struct pstate {
	int calls;
	int busy_every;
	struct moirai_poller *self, *victim;
	bool unregister_self_at, unregister_victim;
	int stop_at;
};

static int poll_fn(void *arg)
{
	struct pstate *p = arg;

	p->calls++;
	if (p->stop_at && p->calls == p->stop_at) {
		assert_int_equal(moirai_poller_unregister(p->self), 0);
		/* A second unregister of the same poller is refused. */
		assert_int_equal(moirai_poller_unregister(p->self), -EINVAL);
	}
	if (p->unregister_victim && p->victim) {
		assert_int_equal(moirai_poller_unregister(p->victim), 0);
		p->victim = NULL;
	}
	return p->busy_every && p->calls % p->busy_every == 0 ? MOIRAI_POLL_BUSY : MOIRAI_POLL_IDLE;
}

static void test_pollers(void **state)
{
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", NULL);
	struct pstate a = { .busy_every = 2 }, b = { .stop_at = 5 }, c = { 0 }, d = { 0 };
	struct moirai_poller *pa, *pb, *pc, *pd;
	struct moirai_poller_stats s;
	struct rt_step st;

	(void)state;
	moirai__rt_bind_thread(rt, 0);
	assert_int_equal(moirai_poller_register(rt, 0, "every", poll_fn, &a, 0, 0, &pa), 0);
	assert_int_equal(moirai_poller_register(rt, 0, "self-stop", poll_fn, &b, 0, 0, &pb), 0);
	b.self = pb;
	assert_int_equal(moirai_poller_register(rt, 0, "timed", poll_fn, &c, 5000, 0, &pc), 0);
	assert_int_equal(moirai_poller_register(rt, 0, "victim", poll_fn, &d, 0, 0, &pd), 0);
	assert_string_equal(moirai_poller_name(pc), "timed");
	for (int i = 1; i <= 10; i++) {
		step(rt, 0, 1, &st);
		/* Busy pollers keep the worker awake; idle ones let it park. */
		assert_int_equal(st.busy, i % 2 == 0 ? 1 : 0);
		assert_int_equal(st.can_park, i % 2 != 0);
		fake_now += 1000;
	}
	assert_int_equal(a.calls, 10);
	assert_int_equal(b.calls, 5); /* unregistered itself from inside */
	assert_int_equal(c.calls, 1); /* period 5 us: due at 5 us of 0..9 us */
	step(rt, 0, 1, &st);
	assert_int_equal(c.calls, 2); /* and at 10 us */
	assert_int_equal(moirai_poller_stats_get(pa, &s), 0);
	assert_int_equal(s.runs, 11);
	assert_int_equal(a.calls, 11);
	assert_int_equal(s.busy, 5);
	/* A poller unregisters another during the walk: no use after free
	 * (ASan), and the victim is never called again. */
	a.victim = pd;
	a.unregister_victim = true;
	int before = d.calls;

	step(rt, 0, 1, &st);
	step(rt, 0, 1, &st);
	assert_true(d.calls <= before + 1);
	int after = d.calls;

	step(rt, 0, 1, &st);
	assert_int_equal(d.calls, after);
	assert_int_equal(moirai_poller_unregister(pc), 0);
	assert_int_equal(moirai_poller_unregister(pa), 0);
	/* Bad input. */
	assert_int_equal(moirai_poller_register(rt, 0, "", poll_fn, &a, 0, 0, &pa), -EINVAL);
	assert_int_equal(moirai_poller_register(rt, 5, "x", poll_fn, &a, 0, 0, &pa), -ERANGE);
	assert_int_equal(moirai_poller_register(rt, 0, "x", poll_fn, &a, 0, 0x80, &pa), -EINVAL);
	assert_int_equal(moirai_poller_register(rt, 0,
						"a-name-that-is-longer-than-thirty-one-chars",
						poll_fn, &a, 0, 0, &pa),
			 -EINVAL);
	destroy(rt);
}

/* ---- the step's time budget ---------------------------------------------- */

/* A task that takes 60 us of the fake clock. */
static int slow_task(void *arg)
{
	fake_now += 60000;
	return log_task(arg);
}

static void test_step_budget(void **state)
{
	struct moirai_rt_config cfg = { .task_budget_ns = 200000 };
	struct moirai_rt *rt;
	struct pstate p = { 0 };
	struct moirai_poller *pp;
	struct rt_step st;
	int steps = 0;

	(void)state;
	rt = manual_rt("pack:1 core:1 pu:1", &cfg);
	moirai__rt_bind_thread(rt, 0);
	assert_int_equal(moirai_poller_register(rt, 0, "rx", poll_fn, &p, 0, 0, &pp), 0);
	for (int i = 0; i < 40; i++)
		spawn_on(rt, 0, slow_task, i, MOIRAI_PRIO_NORMAL);
	/* 60 us tasks against a 200 us budget: a step ends after the fourth
	 * (240 us), not after 64, so the poller runs every 4 tasks. */
	while (run_n < 40) {
		int before = run_n;

		step(rt, 0, 64, &st);
		steps++;
		assert_int_equal(st.ran, run_n - before);
		assert_int_equal((int)st.ran, run_n < 40 ? 4 : 40 - before);
		assert_int_equal(p.calls, steps);
	}
	assert_int_equal(steps, 10);
	/* Tasks of no clock time: max_tasks bounds the step, as before. */
	run_n = 0;
	for (int i = 0; i < 100; i++)
		spawn_on(rt, 0, log_task, i, MOIRAI_PRIO_NORMAL);
	step(rt, 0, 64, &st);
	assert_int_equal(st.ran, 64);
	assert_int_equal(moirai_poller_unregister(pp), 0);
	destroy(rt);
}

/* ---- should_yield's budget half ------------------------------------------ */

static struct moirai_rt *budget_rt;
static int budget_runs;
static long budget_before_max;

/*
 * Ask should_yield() until it says yes: every no while the run is under
 * its budget, and a yes only once it is past it, within the 32 calls
 * between two clock reads.  Measured against the start the runtime
 * recorded for this run (running_since, the TSC it budgets against), so a
 * preemption only lengthens the run, never makes a yes look early.
 */
static int budget_task(void *arg)
{
	struct rt_worker *w = budget_rt->w[0];
	uint64_t since = atomic_load_explicit(&w->running_since, memory_order_relaxed);
	uint64_t limit = budget_rt->budget_ticks;
	long before = 0, after = 0;

	(void)arg;
	assert_true(since != 0);
	for (;;) {
		uint64_t t0 = moirai__ticks();
		bool y = moirai_rt_should_yield();
		uint64_t t1 = moirai__ticks();

		if (y) {
			assert_true(t1 - since >= limit);
			break;
		}
		if (t0 - since < limit) {
			before++;
		} else {
			assert_true(++after <= 32);
		}
	}
	if (before > budget_before_max)
		budget_before_max = before;
	/* A continuation's next run has a budget of its own. */
	return ++budget_runs < 3 ? MOIRAI_TASK_CONTINUE : 0;
}

static void test_should_yield_budget(void **state)
{
	struct moirai_rt_config cfg = { .task_budget_ns = 2000000 };
	struct moirai_rt *rt = manual_rt("pack:1 core:1 pu:1", &cfg);

	(void)state;
	budget_rt = rt;
	budget_runs = 0;
	budget_before_max = 0;
	spawn_on(rt, 0, budget_task, 0, MOIRAI_PRIO_NORMAL);
	for (int i = 0; i < 3; i++)
		step(rt, 0, 1, NULL);
	assert_int_equal(budget_runs, 3);
	/* Not vacuous: some run asked many times before its budget was up
	 * (all three preempted for 2 ms at their start is not a real risk). */
	assert_true(budget_before_max >= 32);
	destroy(rt);
}

/* ---- stealing ------------------------------------------------------------------ */

/*
 * 2 packages x 2 nodes x 2 cores: worker 0's steal order is its core
 * sibling's... here: same node (worker 1), then the other node of its
 * package (2, 3), then the far package (4..7) as the synthetic distances
 * say.  Put work on a far worker and a near one: the dry worker takes
 * from the near one first, and takes half of it in one visit.
 */
static void test_steal_nearest_first(void **state)
{
	struct moirai_rt *rt = manual_rt("pack:2 numa:2 core:2 pu:1", NULL);
	struct moirai_rt_worker_stats ws;
	struct rt_worker *w0;
	int near, far;

	(void)state;
	assert_int_equal(rt->nworkers, 8);
	w0 = rt->w[0];
	near = w0->steal_order[0];
	far = w0->steal_order[w0->nsteal - 1];
	assert_true(w0->steal_class[0] <= w0->steal_class[w0->nsteal - 1]);
	assert_int_equal(w0->steal_class[0], MOIRAI_RT_STEAL_NODE);
	assert_int_equal(w0->steal_class[w0->nsteal - 1], MOIRAI_RT_STEAL_REMOTE);
	for (int i = 0; i < 20; i++) {
		spawn_on(rt, far, log_task, 1000 + i, MOIRAI_PRIO_NORMAL);
		spawn_on(rt, near, log_task, 2000 + i, MOIRAI_PRIO_NORMAL);
	}
	step(rt, 0, 1, NULL);
	assert_int_equal(run_n, 1);
	assert_true(run_log[0] >= 2000);    /* from the near victim */
	assert_int_equal(run_log[0], 2000); /* its oldest: thieves take the top */
	/* Half of the near victim's 20 went in that one visit. */
	assert_int_equal(rt_deque_size(&rt->w[near]->dq[2]), 10);
	assert_int_equal(rt_deque_size(&w0->dq[2]), 9);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_int_equal(ws.steals[MOIRAI_RT_STEAL_NODE], 10);
	assert_int_equal(ws.steals[MOIRAI_RT_STEAL_REMOTE], 0);
	/* Drain the near ones: only then does it go far. */
	for (int i = 0; i < 19; i++)
		step(rt, 0, 1, NULL);
	for (int k = 0; k < run_n; k++)
		assert_true(run_log[k] >= 2000);
	step(rt, 0, 1, NULL);
	assert_true(run_log[run_n - 1] >= 1000 && run_log[run_n - 1] < 2000);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_true(ws.steals[MOIRAI_RT_STEAL_REMOTE] > 0);
	destroy(rt);
}

/* A thief takes critical work from anywhere before background next door. */
static void test_steal_priority_first(void **state)
{
	struct moirai_rt *rt = manual_rt("pack:2 numa:2 core:2 pu:1", NULL);
	int near = rt->w[0]->steal_order[0], far = rt->w[0]->steal_order[7 - 1];

	(void)state;
	spawn_on(rt, near, log_task, 1, MOIRAI_PRIO_BACKGROUND);
	spawn_on(rt, far, log_task, 2, MOIRAI_PRIO_CRITICAL);
	step(rt, 0, 1, NULL);
	assert_int_equal(run_log[0], 2);
	destroy(rt);
}

/*
 * Every steal class, nearest first, on a machine with SMT siblings and two
 * L3 domains per node (2 nodes x 2 L3 x 2 cores x 2 PUs, one worker per
 * PU): worker 0's order is its SMT sibling, then the other core of its L3,
 * then the rest of its node, then the other node.  With work on the first
 * victim of each class, a dry worker 0 takes all of the SMT sibling's
 * before any of the L3's, and so on, and counts each steal in its class.
 */
static void test_steal_smt_l3_order(void **state)
{
	struct moirai_rt_config cfg = { .plan = &(struct moirai_plan_opts){ .smt = true } };
	struct moirai_rt *rt = manual_rt("pack:2 numa:1 l3:2 core:2 pu:2", &cfg);
	struct moirai_rt_worker_stats ws;
	struct rt_worker *w0;
	int victim[MOIRAI_RT_STEAL_CLASSES], last = -1;
	const int K = 4;

	(void)state;
	assert_int_equal(rt->nworkers, 16);
	w0 = rt->w[0];
	assert_int_equal(w0->nsteal, 15);
	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		victim[c] = -1;
	/* Classes never go back to a nearer one along the order, and each
	 * class means what it says about where the victim sits. */
	for (int i = 0; i < w0->nsteal; i++) {
		int c = w0->steal_class[i];
		struct rt_worker *v = rt->w[w0->steal_order[i]];

		assert_true(c >= last);
		last = c;
		if (victim[c] < 0)
			victim[c] = w0->steal_order[i];
		assert_int_equal(v->core == w0->core, c == MOIRAI_RT_STEAL_SMT);
		assert_int_equal(v->l3 == w0->l3, c <= MOIRAI_RT_STEAL_L3);
		assert_int_equal(v->node_idx == w0->node_idx, c <= MOIRAI_RT_STEAL_NODE);
	}
	assert_int_equal(w0->steal_class[0], MOIRAI_RT_STEAL_SMT);
	assert_int_equal(w0->steal_class[1], MOIRAI_RT_STEAL_L3);
	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		assert_true(victim[c] > 0);
	/* K tasks on the first victim of each class, farthest queued first. */
	for (int c = MOIRAI_RT_STEAL_CLASSES - 1; c >= 0; c--)
		for (int i = 0; i < K; i++)
			spawn_on(rt, victim[c], log_task, 1000 * (c + 1) + i, MOIRAI_PRIO_NORMAL);
	step(rt, 0, 1, NULL);
	assert_int_equal(run_n, 1);
	assert_int_equal(run_log[0], 1000 * (MOIRAI_RT_STEAL_SMT + 1)); /* the SMT's oldest */
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_int_equal(ws.steals[MOIRAI_RT_STEAL_SMT], K / 2); /* half in one visit */
	assert_int_equal(ws.steals[MOIRAI_RT_STEAL_L3], 0);
	for (int i = 1; i < MOIRAI_RT_STEAL_CLASSES * K; i++)
		step(rt, 0, 1, NULL);
	assert_int_equal(run_n, MOIRAI_RT_STEAL_CLASSES * K);
	/* Class by class: all of a nearer victim's work before a farther's. */
	for (int k = 0; k < run_n; k++)
		assert_int_equal(run_log[k] / 1000 - 1, k / K);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		assert_int_equal(ws.steals[c], K);
	destroy(rt);
}

/* Strict affinity: nobody steals a task sent to a worker. */
static void test_strict_not_stolen(void **state)
{
	struct moirai_rt *rt = manual_rt("pack:1 core:2 pu:1", NULL);

	(void)state;
	moirai__rt_bind_thread(rt, 1);
	assert_int_equal(moirai_rt_send(rt, 1, MOIRAI_PRIO_NORMAL, log_task, (void *)7), 0);
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, log_task, (void *)8), 0);
	step(rt, 0, 10, NULL);
	assert_int_equal(run_n, 1);
	assert_int_equal(run_log[0], 8);
	step(rt, 1, 10, NULL);
	assert_int_equal(run_n, 2);
	assert_int_equal(run_log[1], 7);
	assert_int_equal(moirai_rt_send(rt, 9, MOIRAI_PRIO_NORMAL, log_task, NULL), -ERANGE);
	destroy(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strict_priority),
		cmocka_unit_test(test_aging_dispatch_bound),
		cmocka_unit_test(test_aging_time_bound),
		cmocka_unit_test(test_aging_not_by_own_run),
		cmocka_unit_test(test_aging_sibling_critical),
		cmocka_unit_test(test_lifo_bound),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_pollers),
		cmocka_unit_test(test_step_budget),
		cmocka_unit_test(test_should_yield_budget),
		cmocka_unit_test(test_steal_nearest_first),
		cmocka_unit_test(test_steal_priority_first),
		cmocka_unit_test(test_steal_smt_l3_order),
		cmocka_unit_test(test_strict_not_stolen),
	};

	return cmocka_run_group_tests_name("rt_step", tests, NULL, NULL);
}
