/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "sched": the runtime (rt/) against the thread pools people use.
 *
 * Implementations: moirai (the runtime, defaults), moirai_handle (spawn_*
 * with a joined handle per task instead of a group), moirai_nopf (the same
 * with MOIRAI_RT_F_NO_PREFETCH: the prefetch pair), pthread_pool and
 * fifo_pool (bench_sched_pool.c), tbb (oneTBB, bench_sched_tbb.cpp),
 * openmp (gcc/clang -fopenmp tasks, bench_sched_omp.c) and serial (plain
 * calls: the floor).  Every pool runs one thread per usable CPU unless a
 * case says otherwise.  docs/bench.md describes the cases; the shared
 * helpers of the suite are at the top of this file.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moirai.h>

#include "bench_sched.h"

BENCH_SUITE(sched, "runtime scheduler: spawn, fib, pfor, flood")

/* ---- parameters ------------------------------------------------------------ */

static long scaled(const struct bench_ctx *ctx, long full, long quick)
{
	long n = ctx->quick ? quick : full;

	return ctx->warmup ? (n / 10 > 0 ? n / 10 : 1) : n;
}

long sched_spawn_tasks(const struct bench_ctx *ctx)
{
	return scaled(ctx, 200L * SPAWN_BATCH * 8, 20L * SPAWN_BATCH * 8);
}

int sched_fib_reps(const struct bench_ctx *ctx)
{
	return (int)scaled(ctx, 20, 3);
}

int sched_pfor_passes(const struct bench_ctx *ctx)
{
	return (int)scaled(ctx, 20, 3);
}

int sched_wake_samples(const struct bench_ctx *ctx, bool parked)
{
	return parked ? (int)scaled(ctx, 500, 100) : (int)scaled(ctx, 20000, 2000);
}

uint64_t sched_idle_window_ns(const struct bench_ctx *ctx)
{
	return (uint64_t)scaled(ctx, 1000, 100) * 1000000ULL;
}

long sched_flood_criticals(const struct bench_ctx *ctx)
{
	return scaled(ctx, 20000, 2000);
}

/* ---- helpers ------------------------------------------------------------- */

long sched_fib_serial(int n)
{
	return n < 2 ? n : sched_fib_serial(n - 1) + sched_fib_serial(n - 2);
}

long sched_count_marks(unsigned char *flags, long n)
{
	long c = 0;

	for (long i = 0; i < n; i++) {
		c += flags[i];
		flags[i] = 0;
	}
	return c;
}

static uint32_t *pfor_array;
static uint64_t pfor_expect;
static pthread_once_t pfor_once = PTHREAD_ONCE_INIT;

static void pfor_build(void)
{
	uint32_t *a = malloc(SCHED_PFOR_N * sizeof(*a));
	uint64_t s = 0;

	if (!a)
		return;
	for (size_t i = 0; i < SCHED_PFOR_N; i++) {
		a[i] = (uint32_t)((i * 2654435761u) >> 7);
		s += a[i];
	}
	pfor_expect = s;
	pfor_array = a;
}

const uint32_t *sched_pfor_array(uint64_t *expect)
{
	pthread_once(&pfor_once, pfor_build);
	*expect = pfor_expect;
	return pfor_array;
}

void sched_spin_until(uint64_t until)
{
	while (moirai_now_ns() < until)
		__builtin_ia32_pause();
}

uint64_t sched_process_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ULL),
			       .tv_nsec = (long)(t % 1000000000ULL) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void sched_latency_result(struct bench_result *out, const uint64_t *lat, long n)
{
	struct moirai_hist *h = malloc(sizeof(*h));

	if (!h)
		return;
	moirai_hist_init(h);
	for (long i = 0; i < n; i++)
		moirai_hist_record(h, lat[i]);
	bench_result_from_hist(out, h);
	free(h);
}

/* ---- the wake cases' submitter --------------------------------------------- */

struct wake_drive {
	struct sched_run *run;
	bool parked;
	int cpu;
	int (*submit)(void *impl, struct sched_wake_slot *s);
	void *impl;
	int rc;
};

static void *wake_thread(void *arg)
{
	struct wake_drive *d = arg;
	int n = sched_wake_samples(d->run->ctx, d->parked);
	uint64_t *lat = malloc((size_t)n * sizeof(*lat));
	struct sched_wake_slot slot;

	if (!lat) {
		d->rc = -ENOMEM;
		return NULL;
	}
	bench_pin(d->cpu);
	for (int i = 0; i < n; i++) {
		uint64_t deadline;

		/* Parked: long enough for every peer to go to sleep.  Spinning:
		 * 5 us, within every peer's spin window that has one. */
		if (d->parked)
			sleep_until(moirai_now_ns() + 3000000);
		else
			sched_spin_until(moirai_now_ns() + 5000);
		slot.start_ns = 0;
		slot.submit_ns = moirai_now_ns();
		if ((d->rc = d->submit(d->impl, &slot)) != 0)
			break;
		deadline = moirai_now_ns() + SCHED_WAIT_NS;
		while (__atomic_load_n(&slot.start_ns, __ATOMIC_ACQUIRE) == 0) {
			if (moirai_now_ns() > deadline) {
				d->rc = -ETIMEDOUT;
				break;
			}
			__builtin_ia32_pause();
		}
		if (d->rc)
			break;
		lat[i] = slot.start_ns > slot.submit_ns ? slot.start_ns - slot.submit_ns : 0;
	}
	if (!d->rc)
		sched_latency_result(d->run->out, lat, n);
	free(lat);
	return NULL;
}

int sched_wake_drive(struct sched_run *run, bool parked, int submit_cpu,
		     int (*submit)(void *impl, struct sched_wake_slot *s), void *impl)
{
	struct wake_drive d = {
		.run = run, .parked = parked, .cpu = submit_cpu, .submit = submit, .impl = impl
	};
	pthread_t th;
	int rc;

	if ((rc = pthread_create(&th, NULL, wake_thread, &d)) != 0)
		return -rc;
	pthread_join(th, NULL);
	return d.rc;
}

/* ---- the flood ------------------------------------------------------------- */

int flood_state_init(struct flood_state *st, const struct bench_ctx *ctx, int workers, bool flood)
{
	memset(st, 0, sizeof(*st));
	st->ncrit = sched_flood_criticals(ctx);
	st->nbg = flood ? workers * FLOOD_BACKLOG : 0;
	st->submit_ns = calloc((size_t)st->ncrit, sizeof(uint64_t));
	st->lat_ns = calloc((size_t)st->ncrit, sizeof(uint64_t));
	st->bg = calloc((size_t)(st->nbg ? st->nbg : 1), sizeof(*st->bg));
	if (!st->submit_ns || !st->lat_ns || !st->bg) {
		flood_state_fini(st);
		return -ENOMEM;
	}
	for (int i = 0; i < st->nbg; i++) {
		st->bg[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		st->bg[i].owner = st;
		flood_bg_next(&st->bg[i]);
	}
	st->bg_live = st->nbg;
	return 0;
}

void flood_state_fini(struct flood_state *st)
{
	free(st->submit_ns);
	free(st->lat_ns);
	free(st->bg);
	st->submit_ns = st->lat_ns = NULL;
	st->bg = NULL;
}

void flood_bg_next(struct flood_bg *b)
{
	/* xorshift64*: the same sequence of service times for every impl. */
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	b->left_ns = ((b->rng * 2685821657736338717ULL) >> 33) % FLOOD_LONG_EVERY == 0
			     ? FLOOD_LONG_NS
			     : FLOOD_SHORT_NS;
}

bool flood_bg_work(struct flood_bg *b)
{
	while (b->left_ns > 0) {
		uint64_t step = b->left_ns < FLOOD_CHUNK_NS ? b->left_ns : FLOOD_CHUNK_NS;

		sched_spin_until(moirai_now_ns() + step);
		b->left_ns -= step;
		/* Always false outside a moirai task: the pools run it whole. */
		if (b->left_ns > 0 && moirai_rt_should_yield())
			return true;
	}
	return false;
}

void flood_crit_body(struct flood_state *st, long i)
{
	uint64_t now = moirai_now_ns();

	st->lat_ns[i] = now > st->submit_ns[i] ? now - st->submit_ns[i] : 0;
	__atomic_fetch_add(&st->crit_done, 1, __ATOMIC_RELEASE);
}

static int wait_count(long *v, long want, bool at_least)
{
	uint64_t deadline = moirai_now_ns() + SCHED_WAIT_NS;

	for (;;) {
		long x = __atomic_load_n(v, __ATOMIC_ACQUIRE);

		if (at_least ? x >= want : x == want)
			return 0;
		if (moirai_now_ns() > deadline)
			return -ETIMEDOUT;
		sleep_until(moirai_now_ns() + 100000);
	}
}

int flood_drive(struct flood_state *st, struct bench_result *out,
		int (*submit)(struct flood_state *st, long i))
{
	uint64_t t0 = moirai_now_ns() + 1000000; /* let the backlog build up */
	int rc = 0;

	for (long i = 0; i < st->ncrit && !rc; i++) {
		sleep_until(t0 + (uint64_t)i * FLOOD_PERIOD_NS);
		st->submit_ns[i] = moirai_now_ns();
		for (int tries = 0; (rc = submit(st, i)) == -EAGAIN && tries < 1000; tries++)
			sleep_until(moirai_now_ns() + 10000);
	}
	if (!rc)
		rc = wait_count(&st->crit_done, st->ncrit, true);
	__atomic_store_n(&st->stop, 1, __ATOMIC_RELEASE);
	{
		int rc2 = wait_count(&st->bg_live, 0, false);

		rc = rc ? rc : rc2;
	}
	if (rc)
		return rc;
	if (st->crit_done != st->ncrit) {
		snprintf(out->note, sizeof(out->note), "%ld critical tasks ran, %ld submitted",
			 st->crit_done, st->ncrit);
		return -EIO;
	}
	if (st->nbg && st->bg_done < st->nbg) {
		snprintf(out->note, sizeof(out->note), "the flood did not run (%ld tasks)",
			 st->bg_done);
		return -EIO;
	}
	sched_latency_result(out, st->lat_ns, st->ncrit);
	return 0;
}

/* ---- moirai ------------------------------------------------------------------ */

/* The machine, probed once: hwloc's probe (PCI config reads included)
 * costs more than many a measurement.  Kept for the process's life. */
static struct moirai_topo *m_topo;
static int m_topo_rc;
static pthread_once_t m_topo_once = PTHREAD_ONCE_INIT;

static void m_topo_load(void)
{
	m_topo_rc = moirai_topo_load(&m_topo);
}

static int m_create(const struct sched_run *run, unsigned flags, int workers, int reserve,
		    struct moirai_rt **rt)
{
	struct moirai_plan_opts po = { .workers = workers, .reserve = reserve };
	/* The drivers of spawn_local and fib30 are single tasks that run for
	 * the whole measurement: no stuck-task reports about them. */
	struct moirai_rt_config cfg = { .plan = &po, .flags = flags, .stuck_ns = UINT64_MAX };
	int rc;

	pthread_once(&m_topo_once, m_topo_load);
	cfg.topo = m_topo;
	rc = m_topo_rc ? m_topo_rc : moirai_rt_create(&cfg, rt);

	if (rc)
		snprintf(run->out->note, sizeof(run->out->note), "moirai_rt_create: %s",
			 moirai_strerror(rc));
	return rc;
}

static int m_destroy(struct moirai_rt *rt, int rc)
{
	int rc2 = moirai_rt_destroy(rt);

	return rc ? rc : rc2;
}

static int m_empty(void *arg)
{
	sched_mark(arg);
	return 0;
}

struct m_spawn {
	struct moirai_rt *rt;
	long tasks, marked;
	uint64_t ns;
	bool handles;
	unsigned char flags[SPAWN_BATCH];
	struct moirai_task *h[SPAWN_BATCH];
};

/*
 * spawn + wait for @s->tasks empty tasks in batches, timed; from any
 * thread.  One group wait per batch: the contract every peer here offers
 * (tbb::task_group::wait, the pools' batch counter, OpenMP's taskwait).
 */
static int m_spawn_group_loop(struct m_spawn *s)
{
	struct moirai_spawn_opts o = { 0 };
	struct moirai_group *g;
	uint64_t t0;
	int rc;

	if ((rc = moirai_group_create(s->rt, &g)) != 0)
		return rc;
	o.group = g;
	t0 = moirai_now_ns();
	for (long done = 0; done < s->tasks && !rc; done += SPAWN_BATCH) {
		for (int i = 0; i < SPAWN_BATCH && !rc; i++)
			rc = moirai_rt_spawn(s->rt, m_empty, &s->flags[i], &o, NULL);
		int rc2 = moirai_group_wait(g, (int64_t)SCHED_WAIT_NS, NULL);

		rc = rc ? rc : rc2;
		s->marked += sched_count_marks(s->flags, SPAWN_BATCH);
	}
	s->ns = moirai_now_ns() - t0;
	int rc3 = moirai_group_destroy(g);

	return rc ? rc : rc3;
}

/* The same with a handle per task, each joined: what a handle costs. */
static int m_spawn_loop(struct m_spawn *s)
{
	uint64_t t0 = moirai_now_ns();

	if (!s->handles)
		return m_spawn_group_loop(s);
	for (long done = 0; done < s->tasks; done += SPAWN_BATCH) {
		int n = SPAWN_BATCH, rc, st;

		for (int i = 0; i < n; i++)
			if ((rc = moirai_rt_spawn(s->rt, m_empty, &s->flags[i], NULL, &s->h[i])) !=
			    0) {
				while (i-- > 0)
					moirai_task_join(s->h[i], (int64_t)SCHED_WAIT_NS, NULL);
				return rc;
			}
		for (int i = 0; i < n; i++)
			if ((rc = moirai_task_join(s->h[i], (int64_t)SCHED_WAIT_NS, &st)) != 0)
				return rc;
		s->marked += sched_count_marks(s->flags, n);
	}
	s->ns = moirai_now_ns() - t0;
	return 0;
}

static int m_spawn_driver(void *arg)
{
	return m_spawn_loop(arg);
}

static int spawn_result(struct sched_run *run, long tasks, long marked, uint64_t ns)
{
	if (marked != tasks) {
		snprintf(run->out->note, sizeof(run->out->note), "%ld of %ld tasks ran", marked,
			 tasks);
		return -EIO;
	}
	run->out->ns_per_op = (double)ns / (double)tasks;
	run->out->ops = tasks;
	return 0;
}

static int m_spawn(struct sched_run *run, unsigned flags, bool local, bool handles)
{
	struct m_spawn *s = calloc(1, sizeof(*s));
	struct moirai_task *t;
	int rc, st = 0;

	if (!s)
		return -ENOMEM;
	s->handles = handles;
	if ((rc = m_create(run, flags, run->workers, 0, &s->rt)) != 0) {
		free(s);
		return rc;
	}
	s->tasks = sched_spawn_tasks(run->ctx);
	if (local) {
		/* The driver is a task on a worker: every spawn is a local push. */
		rc = moirai_rt_spawn(s->rt, m_spawn_driver, s, NULL, &t);
		if (!rc)
			rc = moirai_task_join(t, MOIRAI_TIMEOUT_FOREVER, &st);
		rc = rc ? rc : st;
	} else {
		rc = m_spawn_loop(s);
	}
	rc = m_destroy(s->rt, rc);
	if (!rc)
		rc = spawn_result(run, s->tasks, s->marked, s->ns);
	free(s);
	return rc;
}

struct m_fib {
	int n;
	long r;
};

static long m_fib(struct moirai_rt *rt, int n);

static int m_fib_task(void *arg)
{
	struct m_fib *f = arg;

	f->r = m_fib(moirai_rt_current(), f->n);
	return 0;
}

static long m_fib(struct moirai_rt *rt, int n)
{
	struct m_fib child = { .n = n - 1 };
	struct moirai_task *t;
	long y;

	if (n <= SCHED_FIB_CUTOFF)
		return sched_fib_serial(n);
	if (moirai_rt_spawn(rt, m_fib_task, &child, NULL, &t) != 0)
		return m_fib(rt, n - 1) + m_fib(rt, n - 2);
	y = m_fib(rt, n - 2);
	if (moirai_task_join(t, (int64_t)SCHED_WAIT_NS, NULL) != 0)
		return -1; /* a wrong sum: reported as a failure */
	return child.r + y;
}

struct m_fib_run {
	int reps;
	long bad;
	uint64_t ns;
};

static int m_fib_driver(void *arg)
{
	struct m_fib_run *f = arg;
	uint64_t t0 = moirai_now_ns();

	for (int i = 0; i < f->reps; i++)
		f->bad += m_fib(moirai_rt_current(), SCHED_FIB_N) != SCHED_FIB_VALUE;
	f->ns = moirai_now_ns() - t0;
	return 0;
}

static int fib_result(struct sched_run *run, int reps, long bad, uint64_t ns)
{
	if (bad) {
		snprintf(run->out->note, sizeof(run->out->note), "fib(%d) wrong in %ld of %d runs",
			 SCHED_FIB_N, bad, reps);
		return -EIO;
	}
	snprintf(run->out->note, sizeof(run->out->note), "fib(%d) = %ld, cutoff %d", SCHED_FIB_N,
		 SCHED_FIB_VALUE, SCHED_FIB_CUTOFF);
	run->out->ns_per_op = (double)ns / reps;
	run->out->ops = reps;
	return 0;
}

static int m_fib_run(struct sched_run *run, unsigned flags)
{
	struct m_fib_run f = { .reps = sched_fib_reps(run->ctx) };
	struct moirai_rt *rt;
	struct moirai_task *t;
	int rc, st = 0;

	if ((rc = m_create(run, flags, run->workers, 0, &rt)) != 0)
		return rc;
	rc = moirai_rt_spawn(rt, m_fib_driver, &f, NULL, &t);
	if (!rc)
		rc = moirai_task_join(t, MOIRAI_TIMEOUT_FOREVER, &st);
	rc = m_destroy(rt, rc ? rc : st);
	return rc ? rc : fib_result(run, f.reps, f.bad, f.ns);
}

static void m_sum_init(void *acc, void *arg)
{
	(void)arg;
	*(uint64_t *)acc = 0;
}

static void m_sum_body(size_t b, size_t e, void *acc, void *arg)
{
	const uint32_t *a = arg;
	uint64_t s = 0;

	for (size_t i = b; i < e; i++)
		s += a[i];
	*(uint64_t *)acc += s;
}

static void m_sum_combine(void *into, const void *from, void *arg)
{
	(void)arg;
	*(uint64_t *)into += *(const uint64_t *)from;
}

int sched_pfor_result(struct sched_run *run, int passes, long bad, uint64_t ns)
{
	if (bad) {
		snprintf(run->out->note, sizeof(run->out->note), "wrong sum in %ld of %d passes",
			 bad, passes);
		return -EIO;
	}
	run->out->ns_per_op = (double)ns / ((double)passes * SCHED_PFOR_N);
	run->out->ops = (long)passes * (long)SCHED_PFOR_N;
	return 0;
}

static int m_pfor(struct sched_run *run)
{
	static const struct moirai_reduce_ops ops = {
		.acc_size = sizeof(uint64_t),
		.init = m_sum_init,
		.body = m_sum_body,
		.combine = m_sum_combine,
	};
	uint64_t expect, sum, t0, ns;
	const uint32_t *a = sched_pfor_array(&expect);
	int passes = sched_pfor_passes(run->ctx), rc = 0;
	struct moirai_rt *rt;
	long bad = 0;

	if (!a)
		return -ENOMEM;
	if ((rc = m_create(run, 0, run->workers, 0, &rt)) != 0)
		return rc;
	t0 = moirai_now_ns();
	for (int i = 0; i < passes && !rc; i++) {
		rc = moirai_parallel_reduce(rt, 0, SCHED_PFOR_N, 0, &ops, (void *)a, &sum, NULL);
		bad += sum != expect;
	}
	ns = moirai_now_ns() - t0;
	rc = m_destroy(rt, rc);
	return rc ? rc : sched_pfor_result(run, passes, bad, ns);
}

/* Process CPU over an idle window after a burst of work, per worker and
 * second: 1e9 is one core kept busy. */
static void idle_result(struct sched_run *run, uint64_t cpu_ns, uint64_t window_ns, int workers)
{
	run->out->ns_per_op = (double)cpu_ns / workers * 1e9 / (double)window_ns;
	run->out->ops = workers;
}

static int m_idle(struct sched_run *run)
{
	struct m_spawn *s = calloc(1, sizeof(*s));
	uint64_t w = sched_idle_window_ns(run->ctx), c0, c1;
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = m_create(run, 0, run->workers, 0, &s->rt)) != 0) {
		free(s);
		return rc;
	}
	s->tasks = 4 * SPAWN_BATCH;
	rc = m_spawn_loop(s);
	c0 = sched_process_cpu_ns();
	sleep_until(moirai_now_ns() + w);
	c1 = sched_process_cpu_ns();
	rc = m_destroy(s->rt, rc);
	if (!rc)
		idle_result(run, c1 - c0, w, run->workers);
	free(s);
	return rc;
}

static int m_wake_task(void *arg)
{
	sched_wake_body(arg, moirai_now_ns());
	return 0;
}

static int m_wake_submit(void *impl, struct sched_wake_slot *s)
{
	return moirai_rt_spawn(impl, m_wake_task, s, NULL, NULL);
}

static int m_wake(struct sched_run *run, bool parked)
{
	struct moirai_rt_worker_info info;
	struct moirai_rt *rt;
	int rc;

	/* One worker on the second CPU, the submitter on the first. */
	if ((rc = m_create(run, 0, 1, 1, &rt)) != 0)
		return rc;
	rc = moirai_rt_worker_info(rt, 0, &info);
	if (!rc)
		rc = sched_wake_drive(run, parked, info.pu == run->cpu_a ? run->cpu_b : run->cpu_a,
				      m_wake_submit, rt);
	return m_destroy(rt, rc);
}

static int m_bg_task(void *arg)
{
	static const struct moirai_spawn_opts bg = { .prio = MOIRAI_PRIO_BACKGROUND };
	struct flood_bg *b = arg;
	struct flood_state *st = b->owner;

	if (flood_bg_work(b))
		return MOIRAI_TASK_CONTINUE;
	__atomic_fetch_add(&st->bg_done, 1, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
		flood_bg_next(b);
		if (moirai_rt_spawn(st->impl, m_bg_task, b, &bg, NULL) == 0)
			return 0;
	}
	__atomic_fetch_sub(&st->bg_live, 1, __ATOMIC_RELEASE);
	return 0;
}

struct m_crit {
	struct flood_state *st;
	long i;
};

static int m_crit_run(void *arg)
{
	struct m_crit *c = arg;

	flood_crit_body(c->st, c->i);
	return 0;
}

static struct m_crit *m_crits;

static int m_crit_submit(struct flood_state *st, long i)
{
	static const struct moirai_spawn_opts crit = { .prio = MOIRAI_PRIO_CRITICAL };

	m_crits[i] = (struct m_crit){ .st = st, .i = i };
	return moirai_rt_spawn(st->impl, m_crit_run, &m_crits[i], &crit, NULL);
}

static int m_flood(struct sched_run *run, bool flood)
{
	struct flood_state st;
	struct moirai_rt *rt;
	int rc;

	if ((rc = flood_state_init(&st, run->ctx, run->workers, flood)) != 0)
		return rc;
	m_crits = calloc((size_t)st.ncrit, sizeof(*m_crits));
	if (!m_crits) {
		flood_state_fini(&st);
		return -ENOMEM;
	}
	if ((rc = m_create(run, 0, run->workers, 0, &rt)) != 0)
		goto out;
	st.impl = rt;
	for (int i = 0; i < st.nbg && !rc; i++) {
		struct moirai_spawn_opts o = { .prio = MOIRAI_PRIO_BACKGROUND,
					       .flags = MOIRAI_SPAWN_F_WORKER,
					       .worker = i % run->workers };

		rc = moirai_rt_spawn(rt, m_bg_task, &st.bg[i], &o, NULL);
		if (rc)
			st.bg_live -= st.nbg - i; /* never queued */
	}
	if (!rc)
		rc = flood_drive(&st, run->out, m_crit_submit);
	else
		__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	rc = m_destroy(rt, rc);
out:
	free(m_crits);
	m_crits = NULL;
	flood_state_fini(&st);
	return rc;
}

/* ---- serial: plain calls, the floor ------------------------------------------ */

static void (*volatile serial_fn)(void *) = sched_mark;

static int s_spawn(struct sched_run *run)
{
	unsigned char flags[SPAWN_BATCH] = { 0 };
	long tasks = sched_spawn_tasks(run->ctx), marked = 0;
	uint64_t t0 = moirai_now_ns();

	for (long done = 0; done < tasks; done += SPAWN_BATCH) {
		for (int i = 0; i < SPAWN_BATCH; i++)
			serial_fn(&flags[i]);
		marked += sched_count_marks(flags, SPAWN_BATCH);
	}
	return spawn_result(run, tasks, marked, moirai_now_ns() - t0);
}

static long (*volatile serial_fib)(int) = sched_fib_serial;

static int s_fib(struct sched_run *run)
{
	int reps = sched_fib_reps(run->ctx);
	uint64_t t0 = moirai_now_ns();
	long bad = 0;

	for (int i = 0; i < reps; i++)
		bad += serial_fib(SCHED_FIB_N) != SCHED_FIB_VALUE;
	return fib_result(run, reps, bad, moirai_now_ns() - t0);
}

static int s_pfor(struct sched_run *run)
{
	uint64_t expect, t0, sum;
	const uint32_t *a = sched_pfor_array(&expect);
	int passes = sched_pfor_passes(run->ctx);
	long bad = 0;

	if (!a)
		return -ENOMEM;
	t0 = moirai_now_ns();
	for (int i = 0; i < passes; i++) {
		sum = 0;
		m_sum_body(0, SCHED_PFOR_N, &sum, (void *)a);
		bad += sum != expect;
	}
	return sched_pfor_result(run, passes, bad, moirai_now_ns() - t0);
}

/* ---- registration ------------------------------------------------------------- */

static void run_init(struct sched_run *run, const struct bench_ctx *ctx, struct bench_result *out)
{
	*run = (struct sched_run){
		.ctx = ctx, .out = out, .cpu_a = ctx->cpu_a, .cpu_b = ctx->cpu_b
	};
	run->workers = ctx->cpus > 0 ? ctx->cpus : 1;
}

static int need_two_cpus(struct sched_run *run)
{
	if (run->ctx->cpus >= 2)
		return 0;
	snprintf(run->out->note, sizeof(run->out->note),
		 "needs 2 usable CPUs (submitter and worker apart)");
	return -ENOTSUP;
}

static int peer_call(const struct bench_ctx *ctx, struct bench_result *out,
		     const struct sched_peer *p, int which)
{
	struct sched_run run;
	int (*fn)(struct sched_run *) = NULL;

	run_init(&run, ctx, out);
	switch (which) {
	case 0: fn = p->spawn_local; break;
	case 1: fn = p->spawn_inject; break;
	case 2: fn = p->fib; break;
	case 3: fn = p->pfor; break;
	case 4: fn = p->idle_cpu; break;
	case 5:
	case 6:
		if (!p->wake)
			break;
		if (need_two_cpus(&run))
			return -ENOTSUP;
		return p->wake(&run, which == 6);
	default: break;
	}
	if (!fn) {
		snprintf(out->note, sizeof(out->note), "%s has no such case", p->name);
		return -ENOTSUP;
	}
	return fn(&run);
}

/* One wrapper per (case, impl): a BENCH_CASE needs a function name. */
#define SCHED_M(name, body)                                                    \
	static int name(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                      \
		struct sched_run run;                                          \
		run_init(&run, ctx, out);                                      \
		return body;                                                   \
	}
#define SCHED_PEER(name, peer, which)                                          \
	static int name(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                      \
		return peer_call(ctx, out, &(peer), (which));                  \
	}

SCHED_M(spawn_local_moirai, m_spawn(&run, 0, true, false))
SCHED_M(spawn_local_handle, m_spawn(&run, 0, true, true))
SCHED_M(spawn_local_nopf, m_spawn(&run, MOIRAI_RT_F_NO_PREFETCH, true, false))
SCHED_M(spawn_local_pthread, cpool_spawn_local(&run, CPOOL_PTHREAD))
SCHED_M(spawn_local_fifo, cpool_spawn_local(&run, CPOOL_FIFO))
SCHED_PEER(spawn_local_tbb, sched_tbb, 0)
SCHED_PEER(spawn_local_omp, sched_omp, 0)
SCHED_M(spawn_local_serial, s_spawn(&run))

SCHED_M(spawn_inject_moirai, m_spawn(&run, 0, false, false))
SCHED_M(spawn_inject_handle, m_spawn(&run, 0, false, true))
SCHED_M(spawn_inject_nopf, m_spawn(&run, MOIRAI_RT_F_NO_PREFETCH, false, false))
SCHED_M(spawn_inject_pthread, cpool_spawn_inject(&run, CPOOL_PTHREAD))
SCHED_M(spawn_inject_fifo, cpool_spawn_inject(&run, CPOOL_FIFO))
SCHED_PEER(spawn_inject_tbb, sched_tbb, 1)
SCHED_PEER(spawn_inject_omp, sched_omp, 1)

SCHED_M(fib_moirai, m_fib_run(&run, 0))
SCHED_M(fib_nopf, m_fib_run(&run, MOIRAI_RT_F_NO_PREFETCH))
SCHED_M(fib_pthread, cpool_fib(&run, CPOOL_PTHREAD))
SCHED_M(fib_fifo, cpool_fib(&run, CPOOL_FIFO))
SCHED_PEER(fib_tbb, sched_tbb, 2)
SCHED_PEER(fib_omp, sched_omp, 2)
SCHED_M(fib_serial, s_fib(&run))

SCHED_M(pfor_moirai, m_pfor(&run))
SCHED_M(pfor_pthread, cpool_pfor(&run, CPOOL_PTHREAD))
SCHED_M(pfor_fifo, cpool_pfor(&run, CPOOL_FIFO))
SCHED_PEER(pfor_tbb, sched_tbb, 3)
SCHED_PEER(pfor_omp, sched_omp, 3)
SCHED_M(pfor_serial, s_pfor(&run))

SCHED_M(flood_quiet_moirai, m_flood(&run, false))
SCHED_M(flood_quiet_fifo, cpool_flood(&run, CPOOL_FIFO, false))
SCHED_M(flood_quiet_pthread, cpool_flood(&run, CPOOL_PTHREAD, false))
SCHED_M(flood_crit_moirai, m_flood(&run, true))
SCHED_M(flood_crit_fifo, cpool_flood(&run, CPOOL_FIFO, true))
SCHED_M(flood_crit_pthread, cpool_flood(&run, CPOOL_PTHREAD, true))

SCHED_M(idle_moirai, m_idle(&run))
SCHED_M(idle_pthread, cpool_idle_cpu(&run, CPOOL_PTHREAD))
SCHED_M(idle_fifo, cpool_idle_cpu(&run, CPOOL_FIFO))
SCHED_PEER(idle_tbb, sched_tbb, 4)
SCHED_PEER(idle_omp, sched_omp, 4)

SCHED_M(wake_spin_moirai, need_two_cpus(&run) ? -ENOTSUP : m_wake(&run, false))
SCHED_M(wake_spin_pthread, need_two_cpus(&run) ? -ENOTSUP : cpool_wake(&run, CPOOL_PTHREAD, false))
SCHED_M(wake_spin_fifo, need_two_cpus(&run) ? -ENOTSUP : cpool_wake(&run, CPOOL_FIFO, false))
SCHED_PEER(wake_spin_tbb, sched_tbb, 5)
SCHED_M(wake_park_moirai, need_two_cpus(&run) ? -ENOTSUP : m_wake(&run, true))
SCHED_M(wake_park_pthread, need_two_cpus(&run) ? -ENOTSUP : cpool_wake(&run, CPOOL_PTHREAD, true))
SCHED_M(wake_park_fifo, need_two_cpus(&run) ? -ENOTSUP : cpool_wake(&run, CPOOL_FIFO, true))
SCHED_PEER(wake_park_tbb, sched_tbb, 6)

BENCH_CASE("sched", "spawn_local", "moirai", spawn_local_moirai)
BENCH_CASE("sched", "spawn_local", "moirai_handle", spawn_local_handle)
BENCH_CASE("sched", "spawn_local", "moirai_nopf", spawn_local_nopf)
BENCH_CASE("sched", "spawn_local", "pthread_pool", spawn_local_pthread)
BENCH_CASE("sched", "spawn_local", "fifo_pool", spawn_local_fifo)
BENCH_CASE("sched", "spawn_local", "tbb", spawn_local_tbb)
BENCH_CASE("sched", "spawn_local", "openmp", spawn_local_omp)
BENCH_CASE("sched", "spawn_local", "serial", spawn_local_serial)
BENCH_CASE("sched", "spawn_inject", "moirai", spawn_inject_moirai)
BENCH_CASE("sched", "spawn_inject", "moirai_handle", spawn_inject_handle)
BENCH_CASE("sched", "spawn_inject", "moirai_nopf", spawn_inject_nopf)
BENCH_CASE("sched", "spawn_inject", "pthread_pool", spawn_inject_pthread)
BENCH_CASE("sched", "spawn_inject", "fifo_pool", spawn_inject_fifo)
BENCH_CASE("sched", "spawn_inject", "tbb", spawn_inject_tbb)
BENCH_CASE("sched", "spawn_inject", "openmp", spawn_inject_omp)
BENCH_CASE("sched", "fib30", "moirai", fib_moirai)
BENCH_CASE("sched", "fib30", "moirai_nopf", fib_nopf)
BENCH_CASE("sched", "fib30", "pthread_pool", fib_pthread)
BENCH_CASE("sched", "fib30", "fifo_pool", fib_fifo)
BENCH_CASE("sched", "fib30", "tbb", fib_tbb)
BENCH_CASE("sched", "fib30", "openmp", fib_omp)
BENCH_CASE("sched", "fib30", "serial", fib_serial)
BENCH_CASE("sched", "pfor_sum", "moirai", pfor_moirai)
BENCH_CASE("sched", "pfor_sum", "pthread_pool", pfor_pthread)
BENCH_CASE("sched", "pfor_sum", "fifo_pool", pfor_fifo)
BENCH_CASE("sched", "pfor_sum", "tbb", pfor_tbb)
BENCH_CASE("sched", "pfor_sum", "openmp", pfor_omp)
BENCH_CASE("sched", "pfor_sum", "serial", pfor_serial)
BENCH_CASE("sched", "flood_quiet", "moirai", flood_quiet_moirai)
BENCH_CASE("sched", "flood_quiet", "fifo_pool", flood_quiet_fifo)
BENCH_CASE("sched", "flood_quiet", "pthread_pool", flood_quiet_pthread)
BENCH_CASE("sched", "flood_critical", "moirai", flood_crit_moirai)
BENCH_CASE("sched", "flood_critical", "fifo_pool", flood_crit_fifo)
BENCH_CASE("sched", "flood_critical", "pthread_pool", flood_crit_pthread)
BENCH_CASE("sched", "spawn_idle_cpu", "moirai", idle_moirai)
BENCH_CASE("sched", "spawn_idle_cpu", "pthread_pool", idle_pthread)
BENCH_CASE("sched", "spawn_idle_cpu", "fifo_pool", idle_fifo)
BENCH_CASE("sched", "spawn_idle_cpu", "tbb", idle_tbb)
BENCH_CASE("sched", "spawn_idle_cpu", "openmp", idle_omp)
BENCH_CASE("sched", "spawn_wake_spin", "moirai", wake_spin_moirai)
BENCH_CASE("sched", "spawn_wake_spin", "pthread_pool", wake_spin_pthread)
BENCH_CASE("sched", "spawn_wake_spin", "fifo_pool", wake_spin_fifo)
BENCH_CASE("sched", "spawn_wake_spin", "tbb", wake_spin_tbb)
BENCH_CASE("sched", "spawn_wake_parked", "moirai", wake_park_moirai)
BENCH_CASE("sched", "spawn_wake_parked", "pthread_pool", wake_park_pthread)
BENCH_CASE("sched", "spawn_wake_parked", "fifo_pool", wake_park_fifo)
BENCH_CASE("sched", "spawn_wake_parked", "tbb", wake_park_tbb)
