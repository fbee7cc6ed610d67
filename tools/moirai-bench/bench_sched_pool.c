/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "sched", the two C thread pools moirai is compared with:
 *
 *   pthread_pool  what people write today: one shared linked queue under a
 *                 mutex, a condvar for idle workers, malloc per task, task
 *                 completion counted under the same mutex;
 *   fifo_pool     the same cores and one FIFO queue, but a good one: a
 *                 lock-free moirai ring of {fn, arg, wait} elements (no
 *                 allocation), workers that spin 20 us before they park on
 *                 a condvar, a wake-up only when someone sleeps, and no
 *                 priorities.  It is the baseline of the flood.
 *
 * Both run one thread per usable CPU, each pinned to its CPU.  A thread of
 * the pool that waits for tasks (fork-join) runs queued tasks meanwhile, so
 * that fib does not deadlock; a foreign thread sleeps.  Every wait is
 * bounded (SCHED_WAIT_NS): a lost wake-up fails the case, it never hangs.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moirai.h>

#include "bench_sched.h"

/*
 * TSan cannot see the synchronisation of DPDK's RTS ring (tests/tsan.supp
 * says why), so under TSan the fifo pool tells it: a release on the ring
 * before every enqueue, an acquire after every dequeue.
 */
#ifdef MOIRAI_SAN_thread
#include <sanitizer/tsan_interface.h>
#define FIFO_HANDOFF_RELEASE(r) __tsan_release(r)
#define FIFO_HANDOFF_ACQUIRE(r) __tsan_acquire(r)
#else
#define FIFO_HANDOFF_RELEASE(r) ((void)(r))
#define FIFO_HANDOFF_ACQUIRE(r) ((void)(r))
#endif

#define CP_MAX_THREADS 64
#define CP_RING_SLOTS  65536
#define CP_SPIN_NS     20000 /* moirai's default spin window */

/* Tasks still to complete; the waiter waits for 0. */
struct cp_wait {
	long pending;
};

struct cp_task {
	void (*fn)(void *arg);
	void *arg;
	struct cp_wait *wait; /* completed when fn returns (NULL: none) */
	struct cp_task *next; /* pthread_pool's queue link */
};

/* fifo_pool's ring element: the task without the link. */
struct cp_elem {
	void (*fn)(void *arg);
	void *arg;
	struct cp_wait *wait;
};

struct cpool {
	enum cpool_kind kind;
	int n;
	int stop; /* atomic */
	pthread_t th[CP_MAX_THREADS];
	int cpu[CP_MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* idle workers and helping waiters */
	pthread_cond_t done_cv; /* foreign waiters */
	/* pthread_pool */
	struct cp_task *head, *tail;
	/* fifo_pool */
	struct moirai_ring *ring;
	int sleepers; /* atomic: workers parked (or about to) */
	int waiters;  /* atomic: foreign threads asleep in cp_wait */
};

static _Thread_local struct cpool *cp_self; /* the pool this thread works for */

static void abs_deadline(struct timespec *ts, uint64_t ns_from_now)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ns_from_now / 1000000000ULL);
	ts->tv_nsec += (long)(ns_from_now % 1000000000ULL);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- queue operations -------------------------------------------------------- */

static int cp_submit(struct cpool *p, void (*fn)(void *), void *arg, struct cp_wait *w)
{
	if (p->kind == CPOOL_PTHREAD) {
		struct cp_task *t = malloc(sizeof(*t));

		if (!t)
			return -ENOMEM;
		*t = (struct cp_task){ .fn = fn, .arg = arg, .wait = w };
		pthread_mutex_lock(&p->mu);
		if (p->tail)
			p->tail->next = t;
		else
			p->head = t;
		p->tail = t;
		pthread_cond_signal(&p->work_cv);
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	struct cp_elem e = { .fn = fn, .arg = arg, .wait = w };

	FIFO_HANDOFF_RELEASE(p->ring);
	if (moirai_ring_enqueue_bulk_elem(p->ring, &e, sizeof(e), 1, NULL) != 1)
		return -EAGAIN;
	/* A read-modify-write orders the enqueue before the read of the
	 * sleepers (store-load); pairs with the sleeper's increment. */
	if (__atomic_fetch_add(&p->sleepers, 0, __ATOMIC_SEQ_CST) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_signal(&p->work_cv);
		pthread_mutex_unlock(&p->mu);
	}
	return 0;
}

static void cp_complete(struct cpool *p, struct cp_wait *w)
{
	if (!w)
		return;
	if (p->kind == CPOOL_PTHREAD) {
		pthread_mutex_lock(&p->mu);
		if (--w->pending == 0) {
			pthread_cond_broadcast(&p->work_cv);
			pthread_cond_broadcast(&p->done_cv);
		}
		pthread_mutex_unlock(&p->mu);
		return;
	}
	if (__atomic_sub_fetch(&w->pending, 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&p->waiters, __ATOMIC_SEQ_CST) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->done_cv);
		pthread_mutex_unlock(&p->mu);
	}
}

static void cp_run(struct cpool *p, void (*fn)(void *), void *arg, struct cp_wait *w)
{
	fn(arg);
	cp_complete(p, w);
}

/* pthread_pool: pop under the held mutex; NULL when empty. */
static struct cp_task *cp_pop_locked(struct cpool *p)
{
	struct cp_task *t = p->head;

	if (t) {
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
	}
	return t;
}

/* fifo_pool: run one queued task; false when the ring was empty. */
static bool cp_fifo_try_run(struct cpool *p)
{
	struct cp_elem e;

	if (moirai_ring_dequeue_bulk_elem(p->ring, &e, sizeof(e), 1, NULL) != 1)
		return false;
	FIFO_HANDOFF_ACQUIRE(p->ring);
	cp_run(p, e.fn, e.arg, e.wait);
	return true;
}

/* ---- waiting ------------------------------------------------------------------ */

static int cp_wait(struct cpool *p, struct cp_wait *w)
{
	uint64_t deadline = moirai_now_ns() + SCHED_WAIT_NS;
	struct timespec ts;
	int rc = 0;

	abs_deadline(&ts, SCHED_WAIT_NS);
	if (p->kind == CPOOL_PTHREAD) {
		pthread_mutex_lock(&p->mu);
		while (w->pending > 0 && !rc) {
			struct cp_task *t = cp_self == p ? cp_pop_locked(p) : NULL;

			if (t) {
				/* Helping: a pool thread runs queued work while it waits. */
				pthread_mutex_unlock(&p->mu);
				cp_run(p, t->fn, t->arg, t->wait);
				free(t);
				pthread_mutex_lock(&p->mu);
			} else {
				rc = pthread_cond_timedwait(
					cp_self == p ? &p->work_cv : &p->done_cv, &p->mu, &ts);
			}
		}
		pthread_mutex_unlock(&p->mu);
		return rc ? -ETIMEDOUT : 0;
	}
	while (__atomic_load_n(&w->pending, __ATOMIC_ACQUIRE) > 0) {
		if (cp_self == p) {
			if (!cp_fifo_try_run(p))
				__builtin_ia32_pause();
		} else if (moirai_now_ns() + SCHED_WAIT_NS - deadline > CP_SPIN_NS) {
			/* A foreign waiter spins for a while, then sleeps. */
			pthread_mutex_lock(&p->mu);
			__atomic_fetch_add(&p->waiters, 1, __ATOMIC_SEQ_CST);
			while (__atomic_load_n(&w->pending, __ATOMIC_SEQ_CST) > 0 && !rc)
				rc = pthread_cond_timedwait(&p->done_cv, &p->mu, &ts);
			__atomic_fetch_sub(&p->waiters, 1, __ATOMIC_SEQ_CST);
			pthread_mutex_unlock(&p->mu);
		} else {
			__builtin_ia32_pause();
		}
		if (rc || moirai_now_ns() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

/* ---- threads ------------------------------------------------------------------ */

struct cp_start {
	struct cpool *p;
	int idx;
};

static void cp_fifo_idle(struct cpool *p)
{
	uint64_t until = moirai_now_ns() + CP_SPIN_NS;
	struct timespec ts;

	while (moirai_now_ns() < until) {
		if (!moirai_ring_empty(p->ring) || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			return;
		__builtin_ia32_pause();
	}
	pthread_mutex_lock(&p->mu);
	__atomic_fetch_add(&p->sleepers, 1, __ATOMIC_SEQ_CST);
	if (moirai_ring_empty(p->ring) && !__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST)) {
		/* 10 ms: a safety net only; submitters wake sleepers. */
		abs_deadline(&ts, 10000000);
		pthread_cond_timedwait(&p->work_cv, &p->mu, &ts);
	}
	__atomic_fetch_sub(&p->sleepers, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&p->mu);
}

static void *cp_thread(void *arg)
{
	struct cp_start *s = arg;
	struct cpool *p = s->p;

	bench_pin(p->cpu[s->idx]);
	free(s);
	cp_self = p;
	if (p->kind == CPOOL_PTHREAD) {
		pthread_mutex_lock(&p->mu);
		for (;;) {
			struct cp_task *t = cp_pop_locked(p);

			if (t) {
				pthread_mutex_unlock(&p->mu);
				cp_run(p, t->fn, t->arg, t->wait);
				free(t);
				pthread_mutex_lock(&p->mu);
			} else if (p->stop) {
				break;
			} else {
				pthread_cond_wait(&p->work_cv, &p->mu);
			}
		}
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	for (;;) {
		if (cp_fifo_try_run(p))
			continue;
		if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			break;
		cp_fifo_idle(p);
	}
	return NULL;
}

static void cp_destroy(struct cpool *p)
{
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->stop, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	while (p->head) {
		struct cp_task *t = cp_pop_locked(p);

		free(t);
	}
	moirai_ring_destroy(p->ring);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->done_cv);
	free(p);
}

/* A pool of @n threads, on the usable CPUs in order, or all on @only_cpu. */
static int cp_create(enum cpool_kind kind, int n, int only_cpu, struct cpool **out)
{
	static unsigned seq;
	struct cpool *p = calloc(1, sizeof(*p));
	cpu_set_t set;
	char name[32];
	int c = 0, rc;

	if (!p)
		return -ENOMEM;
	p->kind = kind;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	n = n < 1 ? 1 : n > CP_MAX_THREADS ? CP_MAX_THREADS : n;
	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof(set), &set);
	for (int i = 0; i < n; i++) {
		while (c < CPU_SETSIZE - 1 && !CPU_ISSET(c, &set))
			c++;
		p->cpu[i] = only_cpu >= 0 ? only_cpu : c++;
	}
	if (kind == CPOOL_FIFO) {
		snprintf(name, sizeof(name), "bench_fifo_%u",
			 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
		rc = moirai_ring_create_elem(name, sizeof(struct cp_elem), CP_RING_SLOTS,
					     MOIRAI_NODE_ANY, 0, &p->ring);
		if (rc) {
			cp_destroy(p);
			return rc;
		}
	}
	for (int i = 0; i < n; i++) {
		struct cp_start *s = malloc(sizeof(*s));

		if (s)
			*s = (struct cp_start){ .p = p, .idx = i };
		if (!s || pthread_create(&p->th[i], NULL, cp_thread, s) != 0) {
			free(s);
			cp_destroy(p);
			return -EAGAIN;
		}
		p->n = i + 1;
	}
	*out = p;
	return 0;
}

/* ---- cases -------------------------------------------------------------------- */

struct cp_spawn {
	struct cpool *p;
	long tasks, marked;
	uint64_t ns;
	int rc;
	unsigned char flags[SPAWN_BATCH];
};

static void cp_mark(void *arg)
{
	sched_mark(arg);
}

static void cp_spawn_loop(struct cp_spawn *s)
{
	uint64_t t0 = moirai_now_ns();

	for (long done = 0; done < s->tasks && !s->rc; done += SPAWN_BATCH) {
		struct cp_wait w = { .pending = SPAWN_BATCH };

		for (int i = 0; i < SPAWN_BATCH; i++)
			while ((s->rc = cp_submit(s->p, cp_mark, &s->flags[i], &w)) == -EAGAIN)
				sched_yield();
		if (!s->rc)
			s->rc = cp_wait(s->p, &w);
		s->marked += sched_count_marks(s->flags, SPAWN_BATCH);
	}
	s->ns = moirai_now_ns() - t0;
}

static void cp_spawn_driver(void *arg)
{
	cp_spawn_loop(arg);
}

static int cp_spawn(struct sched_run *run, enum cpool_kind kind, bool local)
{
	struct cp_spawn *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = cp_create(kind, run->workers, -1, &s->p)) != 0) {
		free(s);
		return rc;
	}
	s->tasks = sched_spawn_tasks(run->ctx);
	if (local) {
		struct cp_wait w = { .pending = 1 };

		rc = cp_submit(s->p, cp_spawn_driver, s, &w);
		rc = rc ? rc : cp_wait(s->p, &w);
	} else {
		cp_spawn_loop(s);
	}
	rc = rc ? rc : s->rc;
	cp_destroy(s->p);
	if (!rc && s->marked != s->tasks) {
		snprintf(run->out->note, sizeof(run->out->note), "%ld of %ld tasks ran", s->marked,
			 s->tasks);
		rc = -EIO;
	}
	if (!rc) {
		run->out->ns_per_op = (double)s->ns / (double)s->tasks;
		run->out->ops = s->tasks;
	}
	free(s);
	return rc;
}

int cpool_spawn_local(struct sched_run *run, enum cpool_kind kind)
{
	return cp_spawn(run, kind, true);
}

int cpool_spawn_inject(struct sched_run *run, enum cpool_kind kind)
{
	return cp_spawn(run, kind, false);
}

struct cp_fib {
	int n;
	long r;
};

static long cp_fib_rec(struct cpool *p, int n);

static void cp_fib_task(void *arg)
{
	struct cp_fib *f = arg;

	f->r = cp_fib_rec(cp_self, f->n);
}

static long cp_fib_rec(struct cpool *p, int n)
{
	struct cp_fib child = { .n = n - 1 };
	struct cp_wait w = { .pending = 1 };
	long y;

	if (n <= SCHED_FIB_CUTOFF)
		return sched_fib_serial(n);
	if (cp_submit(p, cp_fib_task, &child, &w) != 0)
		return cp_fib_rec(p, n - 1) + cp_fib_rec(p, n - 2);
	y = cp_fib_rec(p, n - 2);
	if (cp_wait(p, &w) != 0)
		return -1;
	return child.r + y;
}

struct cp_fib_run {
	int reps;
	long bad;
	uint64_t ns;
};

static void cp_fib_driver(void *arg)
{
	struct cp_fib_run *f = arg;
	uint64_t t0 = moirai_now_ns();

	for (int i = 0; i < f->reps; i++)
		f->bad += cp_fib_rec(cp_self, SCHED_FIB_N) != SCHED_FIB_VALUE;
	f->ns = moirai_now_ns() - t0;
}

int cpool_fib(struct sched_run *run, enum cpool_kind kind)
{
	struct cp_fib_run f = { .reps = sched_fib_reps(run->ctx) };
	struct cp_wait w = { .pending = 1 };
	struct cpool *p;
	int rc;

	if ((rc = cp_create(kind, run->workers, -1, &p)) != 0)
		return rc;
	rc = cp_submit(p, cp_fib_driver, &f, &w);
	rc = rc ? rc : cp_wait(p, &w);
	cp_destroy(p);
	if (rc)
		return rc;
	if (f.bad) {
		snprintf(run->out->note, sizeof(run->out->note), "fib(%d) wrong in %ld of %d runs",
			 SCHED_FIB_N, f.bad, f.reps);
		return -EIO;
	}
	snprintf(run->out->note, sizeof(run->out->note), "fib(%d) = %ld, cutoff %d", SCHED_FIB_N,
		 SCHED_FIB_VALUE, SCHED_FIB_CUTOFF);
	run->out->ns_per_op = (double)f.ns / f.reps;
	run->out->ops = f.reps;
	return 0;
}

struct cp_chunk {
	const uint32_t *a;
	size_t b, e;
	uint64_t sum;
};

static void cp_sum_task(void *arg)
{
	struct cp_chunk *c = arg;
	uint64_t s = 0;

	for (size_t i = c->b; i < c->e; i++)
		s += c->a[i];
	c->sum = s;
}

int cpool_pfor(struct sched_run *run, enum cpool_kind kind)
{
	int chunks = run->workers * SCHED_PFOR_CHUNKS_PER_WORKER, rc = 0;
	int passes = sched_pfor_passes(run->ctx);
	struct cp_chunk *c = calloc((size_t)chunks, sizeof(*c));
	uint64_t expect, t0, ns;
	const uint32_t *a = sched_pfor_array(&expect);
	struct cpool *p;
	long bad = 0;

	if (!c || !a) {
		free(c);
		return -ENOMEM;
	}
	if ((rc = cp_create(kind, run->workers, -1, &p)) != 0) {
		free(c);
		return rc;
	}
	t0 = moirai_now_ns();
	for (int k = 0; k < passes && !rc; k++) {
		struct cp_wait w = { .pending = chunks };
		uint64_t sum = 0;

		for (int i = 0; i < chunks && !rc; i++) {
			c[i] = (struct cp_chunk){ .a = a,
						  .b = SCHED_PFOR_N * (size_t)i / (size_t)chunks,
						  .e = SCHED_PFOR_N * (size_t)(i + 1) /
						       (size_t)chunks };
			rc = cp_submit(p, cp_sum_task, &c[i], &w);
		}
		rc = rc ? rc : cp_wait(p, &w);
		for (int i = 0; i < chunks; i++)
			sum += c[i].sum;
		bad += sum != expect;
	}
	ns = moirai_now_ns() - t0;
	cp_destroy(p);
	free(c);
	if (rc)
		return rc;
	return sched_pfor_result(run, passes, bad, ns);
}

int cpool_idle_cpu(struct sched_run *run, enum cpool_kind kind)
{
	struct cp_spawn *s = calloc(1, sizeof(*s));
	uint64_t w = sched_idle_window_ns(run->ctx), c0, c1;
	struct timespec ts;
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = cp_create(kind, run->workers, -1, &s->p)) != 0) {
		free(s);
		return rc;
	}
	s->tasks = 4 * SPAWN_BATCH;
	cp_spawn_loop(s);
	rc = s->rc;
	c0 = sched_process_cpu_ns();
	ts = (struct timespec){ .tv_sec = (time_t)(w / 1000000000ULL),
				.tv_nsec = (long)(w % 1000000000ULL) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	c1 = sched_process_cpu_ns();
	cp_destroy(s->p);
	free(s);
	if (!rc) {
		run->out->ns_per_op = (double)(c1 - c0) / run->workers * 1e9 / (double)w;
		run->out->ops = run->workers;
	}
	return rc;
}

static void cp_wake_task(void *arg)
{
	sched_wake_body(arg, moirai_now_ns());
}

static int cp_wake_submit(void *impl, struct sched_wake_slot *s)
{
	return cp_submit(impl, cp_wake_task, s, NULL);
}

int cpool_wake(struct sched_run *run, enum cpool_kind kind, bool parked)
{
	struct cpool *p;
	int rc;

	/* One thread on the second CPU, the submitter on the first. */
	if ((rc = cp_create(kind, 1, run->cpu_b, &p)) != 0)
		return rc;
	rc = sched_wake_drive(run, parked, run->cpu_a, cp_wake_submit, p);
	cp_destroy(p);
	return rc;
}

static void cp_bg_task(void *arg)
{
	struct flood_bg *b = arg;
	struct flood_state *st = b->owner;

	while (flood_bg_work(b))
		; /* never true here: the pools have no priorities */
	__atomic_fetch_add(&st->bg_done, 1, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
		flood_bg_next(b);
		if (cp_submit(st->impl, cp_bg_task, b, NULL) == 0)
			return;
	}
	__atomic_fetch_sub(&st->bg_live, 1, __ATOMIC_RELEASE);
}

struct cp_crit {
	struct flood_state *st;
	long i;
};

static struct cp_crit *cp_crits;

static void cp_crit_task(void *arg)
{
	struct cp_crit *c = arg;

	flood_crit_body(c->st, c->i);
}

static int cp_crit_submit(struct flood_state *st, long i)
{
	cp_crits[i] = (struct cp_crit){ .st = st, .i = i };
	return cp_submit(st->impl, cp_crit_task, &cp_crits[i], NULL);
}

int cpool_flood(struct sched_run *run, enum cpool_kind kind, bool flood)
{
	struct flood_state st;
	struct cpool *p;
	int rc;

	if ((rc = flood_state_init(&st, run->ctx, run->workers, flood)) != 0)
		return rc;
	cp_crits = calloc((size_t)st.ncrit, sizeof(*cp_crits));
	if (!cp_crits) {
		flood_state_fini(&st);
		return -ENOMEM;
	}
	if ((rc = cp_create(kind, run->workers, -1, &p)) != 0)
		goto out;
	st.impl = p;
	for (int i = 0; i < st.nbg && !rc; i++) {
		rc = cp_submit(p, cp_bg_task, &st.bg[i], NULL);
		if (rc)
			__atomic_fetch_sub(&st.bg_live, st.nbg - i, __ATOMIC_RELEASE);
	}
	if (!rc)
		rc = flood_drive(&st, run->out, cp_crit_submit);
	else
		__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	cp_destroy(p);
out:
	free(cp_crits);
	cp_crits = NULL;
	flood_state_fini(&st);
	return rc;
}
