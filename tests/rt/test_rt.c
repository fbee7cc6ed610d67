/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime with real threads: lifecycle and placement, spawn/join from
 * foreign threads and from tasks, fork-join (fib, quicksort), handles
 * (join timeout, try-join, detach, cancel, stale handles), groups,
 * affinity, full mailboxes, loops, should_yield and continuations, the
 * critical lane, blocking regions, the stuck-task detector, QSBR safety,
 * idle CPU, the worker count from MOIRAI_WORKERS, wake-ups (exactly one
 * for a submission to a sleeping runtime, none while nobody sleeps),
 * shutdown under load (repeated), and the negative group.
 * Loop counts scale with MOIRAI_TEST_SCALE; sanitizers divide them.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* moirai__log_set_hook */
#include "moirai.h"
#include "testutil.h"

#define MS 1000000ll

static struct moirai_rt *make_rt(const struct moirai_rt_config *cfg)
{
	struct moirai_rt *rt = NULL;
	int rc = moirai_rt_create(cfg, &rt);

	if (rc)
		fail_msg("moirai_rt_create: %d (%s)", rc, moirai_last_error());
	return rt;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- lifecycle and placement -------------------------------------------- */

static int where_task(void *arg)
{
	int *out = arg;

	out[0] = moirai_rt_self();
	out[1] = sched_getcpu();
	return moirai_rt_current() != NULL ? 0 : -1;
}

static void test_lifecycle(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	int n = moirai_rt_worker_count(rt), named = 0;
	struct moirai_rt_worker_info wi;
	DIR *d;
	struct dirent *e;

	(void)state;
	assert_true(n >= 1);
	assert_int_equal(moirai_rt_self(), -1);
	assert_null(moirai_rt_current());
	/* Every worker thread is named moirai-wN. */
	d = opendir("/proc/self/task");
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, "moirai-w", 8) == 0)
			named++;
		fclose(f);
	}
	closedir(d);
	assert_int_equal(named, n);
	/* Each worker runs where it is pinned, and knows its index. */
	for (int i = 0; i < n; i++) {
		struct moirai_spawn_opts o = {
			.flags = MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_STRICT, .worker = i
		};
		struct moirai_task *h;
		int out[2] = { -2, -2 }, status = 1;

		assert_int_equal(moirai_rt_worker_info(rt, i, &wi), 0);
		assert_int_equal(wi.worker, i);
		assert_false(wi.virtual_placement);
		assert_int_equal(moirai_rt_spawn(rt, where_task, out, &o, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(status, 0);
		assert_int_equal(out[0], i);
		assert_int_equal(out[1], wi.pu);
		for (int j = 0; j < i; j++) {
			struct moirai_rt_worker_info wj;

			moirai_rt_worker_info(rt, j, &wj);
			assert_int_not_equal(wj.pu, wi.pu); /* never two on one CPU */
		}
	}
	assert_int_equal(moirai_rt_worker_info(rt, n, &wi), -ERANGE);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- spawn and join ---------------------------------------------------- */

static atomic_long counter;

static int count_task(void *arg)
{
	atomic_fetch_add(&counter, 1);
	return (int)(intptr_t)arg;
}

static void test_spawn_join_foreign(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	long n = 20000 * test_scale() / TEST_SAN_DIVISOR;
	struct moirai_task **h = calloc((size_t)n, sizeof(*h));
	long detached = 0;

	(void)state;
	atomic_store(&counter, 0);
	for (long i = 0; i < n; i++) {
		int rc;

		/* Every tenth detached; a full mailbox is retried. */
		while ((rc = moirai_rt_spawn(rt, count_task, (void *)(intptr_t)(i % 1000), NULL,
					     i % 10 ? &h[i] : NULL)) == -EAGAIN)
			sched_yield();
		assert_int_equal(rc, 0);
		detached += i % 10 == 0;
	}
	for (long i = 0; i < n; i++) {
		int status = -1;

		if (!h[i])
			continue;
		assert_int_equal(moirai_task_join(h[i], MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(status, (int)(i % 1000));
		/* Given back: a second join is refused, never a crash. */
		assert_int_equal(moirai_task_join(h[i], MOIRAI_TIMEOUT_TRY, &status), -EINVAL);
	}
	/* Detached ones finish too: drain before counting. */
	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER), 0);
	assert_int_equal(atomic_load(&counter), n);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	free(h);
	(void)detached;
}

/* ---- fork-join ------------------------------------------------------------ */

static struct moirai_rt *g_rt;

static long fib_serial(long n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static int fib_task(void *arg)
{
	long n = (long)(intptr_t)arg;
	struct moirai_task *h;
	int a, b;

	if (n < 15)
		return (int)fib_serial(n);
	if (moirai_rt_spawn(g_rt, fib_task, (void *)(intptr_t)(n - 1), NULL, &h))
		return (int)fib_serial(n); /* no descriptor: do it here */
	b = fib_task((void *)(intptr_t)(n - 2));
	assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &a), 0);
	return a + b;
}

struct qs {
	int *v;
	long lo, hi;
};

static int qs_task(void *arg)
{
	struct qs *q = arg;

	while (q->hi - q->lo > 32) {
		int p = q->v[q->lo + (q->hi - q->lo) / 2];
		long i = q->lo, j = q->hi - 1;
		struct qs left;
		struct moirai_task *h;

		while (i <= j) {
			while (q->v[i] < p)
				i++;
			while (q->v[j] > p)
				j--;
			if (i <= j) {
				int t = q->v[i];

				q->v[i++] = q->v[j];
				q->v[j--] = t;
			}
		}
		left = (struct qs){ q->v, q->lo, j + 1 };
		if (moirai_rt_spawn(g_rt, qs_task, &left, NULL, &h)) {
			qs_task(&left);
		} else {
			struct qs right = { q->v, i, q->hi };

			qs_task(&right);
			assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
		}
		return 0;
	}
	for (long i = q->lo + 1; i < q->hi; i++)
		for (long k = i; k > q->lo && q->v[k - 1] > q->v[k]; k--) {
			int t = q->v[k];

			q->v[k] = q->v[k - 1];
			q->v[k - 1] = t;
		}
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void test_fork_join(void **state)
{
	long n = 200000 * test_scale() / TEST_SAN_DIVISOR;
	int *v = malloc((size_t)n * sizeof(int)), *ref = malloc((size_t)n * sizeof(int));
	struct moirai_task *h;
	unsigned seed = 42;
	struct qs root = { v, 0, n };
	int status;

	(void)state;
	g_rt = make_rt(NULL);
	for (long f = 20; f <= 25; f++) {
		assert_int_equal(moirai_rt_spawn(g_rt, fib_task, (void *)(intptr_t)f, NULL, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(status, fib_serial(f));
	}
	for (int seeds = 0; seeds < 3; seeds++) {
		for (long i = 0; i < n; i++)
			ref[i] = v[i] = (int)(rand_r(&seed) % 100000);
		qsort(ref, (size_t)n, sizeof(int), cmp_int);
		assert_int_equal(moirai_rt_spawn(g_rt, qs_task, &root, NULL, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
		assert_memory_equal(v, ref, (size_t)n * sizeof(int));
	}
	assert_int_equal(moirai_rt_destroy(g_rt), 0);
	free(v);
	free(ref);
}

/* ---- handles ---------------------------------------------------------------- */

static atomic_int gate, gated_started;

static int gated_task(void *arg)
{
	atomic_store(&gated_started, 1);
	while (!atomic_load(&gate))
		sched_yield();
	return (int)(intptr_t)arg;
}

/* Until the gated task runs (bounded: 10 s); a fixed sleep was too short
 * once on a loaded box (the worker had not been scheduled yet). */
static void wait_gated_started(void)
{
	for (int i = 0; i < 10000 && !atomic_load(&gated_started); i++)
		sleep_ms(1);
	assert_true(atomic_load(&gated_started));
}

static void test_handles(void **state)
{
	struct moirai_rt_config cfg = { .plan = &(struct moirai_plan_opts){ .workers = 1 },
					.stuck_ns = UINT64_MAX };
	struct moirai_rt *rt = make_rt(&cfg);
	struct moirai_task *running, *queued, *done, *det;
	int status = 0;

	(void)state;
	atomic_store(&gate, 0);
	atomic_store(&gated_started, 0);
	assert_int_equal(moirai_rt_spawn(rt, gated_task, (void *)5, NULL, &running), 0);
	/* It is running (one worker, blocked in it): the next one queues. */
	wait_gated_started();
	assert_int_equal(moirai_task_cancel(running), -EBUSY);
	assert_int_equal(moirai_rt_spawn(rt, count_task, (void *)1, NULL, &queued), 0);
	assert_int_equal(moirai_task_try_join(running, &status), -EAGAIN);
	assert_int_equal(moirai_task_join(running, 20 * MS, &status), -ETIMEDOUT);
	assert_false(moirai_task_is_done(running));
	/* Cancel before start: it never runs, its status says so. */
	atomic_store(&counter, 0);
	assert_int_equal(moirai_task_cancel(queued), 0);
	assert_int_equal(moirai_task_cancel(queued), -EALREADY);
	assert_int_equal(moirai_task_join(queued, MOIRAI_TIMEOUT_FOREVER, &status), 0);
	assert_int_equal(status, -ECANCELED);
	assert_int_equal(moirai_task_cancel(queued), -EINVAL); /* given back */
	atomic_store(&gate, 1);
	assert_int_equal(moirai_task_join(running, MOIRAI_TIMEOUT_FOREVER, &status), 0);
	assert_int_equal(status, 5);
	/* Finished: cancel is -EALREADY; detach then join is refused. */
	assert_int_equal(moirai_rt_spawn(rt, count_task, (void *)2, NULL, &done), 0);
	while (!moirai_task_is_done(done))
		sched_yield();
	assert_int_equal(moirai_task_cancel(done), -EALREADY);
	assert_int_equal(moirai_task_detach(done), 0);
	assert_int_equal(moirai_task_join(done, 0, &status), -EINVAL);
	assert_int_equal(moirai_task_detach(done), -EINVAL);
	assert_int_equal(moirai_rt_spawn(rt, count_task, (void *)3, NULL, &det), 0);
	assert_int_equal(moirai_task_detach(det), 0);
	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER), 0);
	assert_int_equal(atomic_load(&counter), 2); /* done and det; never queued */
	assert_int_equal(moirai_rt_destroy(rt), 0);
	/* NULL and bad timeouts. */
	assert_int_equal(moirai_task_join(NULL, 0, NULL), -EINVAL);
	assert_int_equal(moirai_task_cancel(NULL), -EINVAL);
	assert_int_equal(moirai_task_detach(NULL), -EINVAL);
}

/* ---- groups ----------------------------------------------------------------- */

static int group_child(void *arg)
{
	intptr_t i = (intptr_t)arg;

	atomic_fetch_add(&counter, 1);
	return i == 777 ? -EIO : 0;
}

struct spawner {
	struct moirai_rt *rt;
	struct moirai_group *g;
	int n;
};

/* Tasks of a group spawn more tasks into it. */
static int group_parent(void *arg)
{
	struct spawner *s = arg;
	struct moirai_spawn_opts o = { .group = s->g };

	for (int i = 0; i < s->n; i++)
		assert_int_equal(moirai_rt_spawn(s->rt, group_child, (void *)(intptr_t)i, &o, NULL),
				 0);
	return 0;
}

static void test_groups(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	struct moirai_group *g;
	struct spawner s;
	int first = 0;

	(void)state;
	atomic_store(&counter, 0);
	assert_int_equal(moirai_group_create(rt, &g), 0);
	s = (struct spawner){ rt, g, 500 };
	for (int p = 0; p < 4; p++)
		assert_int_equal(moirai_rt_spawn(rt, group_parent, &s,
						 &(struct moirai_spawn_opts){ .group = g }, NULL),
				 0);
	assert_int_equal(moirai_group_wait(g, MOIRAI_TIMEOUT_FOREVER, &first), 0);
	assert_int_equal(atomic_load(&counter), 4 * 500);
	assert_int_equal(first, 0);
	assert_int_equal(moirai_group_pending(g), 0);
	/* The first error is reported. */
	s.n = 1000;
	assert_int_equal(moirai_rt_spawn(rt, group_parent, &s,
					 &(struct moirai_spawn_opts){ .group = g }, NULL),
			 0);
	assert_int_equal(moirai_group_wait(g, MOIRAI_TIMEOUT_FOREVER, &first), 0);
	assert_int_equal(first, -EIO);
	assert_int_equal(moirai_group_destroy(g), 0);
	assert_int_equal(moirai_group_wait(NULL, 0, NULL), -EINVAL);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/*
 * Destroy right after the wait: the last finisher may still be inside its
 * wake-up of the group (CI's ASan run caught a write to the freed group
 * from the task-finish path).  Many short rounds so the window is hit.
 */
/* Long enough that the waiter parks, so the finisher's wake-up is a futex call. */
static int group_napper(void *arg)
{
	struct timespec ts = { 0, 200000 };

	nanosleep(&ts, NULL);
	return group_child(arg);
}

static void test_group_destroy_race(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	struct moirai_rt_worker_info wi;
	cpu_set_t one, saved;
	long rounds = 2000 * test_scale() / TEST_SAN_DIVISOR;

	(void)state;
	/* The waiter shares worker 0's CPU, so the finisher's futex wake-up
	 * can switch straight to it: destroy then runs while the finisher is
	 * between its wake-up and its last touch of the group. */
	assert_int_equal(moirai_rt_worker_info(rt, 0, &wi), 0);
	assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
	CPU_ZERO(&one);
	CPU_SET(wi.pu, &one);
	assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof(one), &one), 0);
	atomic_store(&counter, 0);
	for (long r = 0; r < rounds; r++) {
		struct moirai_group *g;
		int first = -1;

		assert_int_equal(moirai_group_create(rt, &g), 0);
		for (int k = 0; k < 2; k++)
			assert_int_equal(moirai_rt_spawn(rt, (r & 1) ? group_child : group_napper,
							 (void *)(intptr_t)k,
							 &(struct moirai_spawn_opts){
								 .flags = MOIRAI_SPAWN_F_WORKER |
									  MOIRAI_SPAWN_F_STRICT,
								 .worker = 0,
								 .group = g },
							 NULL),
					 0);
		assert_int_equal(moirai_group_wait(g, MOIRAI_TIMEOUT_FOREVER, &first), 0);
		assert_int_equal(first, 0);
		assert_int_equal(moirai_group_destroy(g), 0);
		/* Let a preempted finisher run now, while the freed group is
		 * still poisoned (the next create would reuse the block). */
		sched_yield();
	}
	assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
	assert_int_equal(atomic_load(&counter), 2 * rounds);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- affinity and mailboxes ----------------------------------------------------- */

static int self_task(void *arg)
{
	return moirai_rt_self() == (int)(intptr_t)arg ? 0 : -1;
}

static void test_affinity(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	int n = moirai_rt_worker_count(rt);
	struct moirai_rt_worker_info wi;

	(void)state;
	for (int rep = 0; rep < 200; rep++) {
		int w = rep % n, status;
		struct moirai_task *h;
		struct moirai_spawn_opts o = {
			.flags = MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_STRICT, .worker = w
		};

		assert_int_equal(moirai_rt_spawn(rt, self_task, (void *)(intptr_t)w, &o, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(status, 0);
	}
	/* Strict node: only workers of that node run it. */
	moirai_rt_worker_info(rt, 0, &wi);
	for (int rep = 0; rep < 100; rep++) {
		struct moirai_spawn_opts o = { .flags = MOIRAI_SPAWN_F_NODE | MOIRAI_SPAWN_F_STRICT,
					       .node = wi.node };
		struct moirai_task *h;
		int out[2], status;

		assert_int_equal(moirai_rt_spawn(rt, where_task, out, &o, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(moirai_numa_current_node() >= 0, 1);
	}
	assert_int_equal(moirai_rt_spawn(rt, self_task, NULL,
					 &(struct moirai_spawn_opts){ .flags = MOIRAI_SPAWN_F_NODE,
								      .node = 4000 },
					 NULL),
			 -ENODEV);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static void test_mailbox_full(void **state)
{
	struct moirai_rt_config cfg = { .plan = &(struct moirai_plan_opts){ .workers = 1 },
					.mailbox_size = 4,
					.stuck_ns = UINT64_MAX };
	struct moirai_rt *rt = make_rt(&cfg);
	struct moirai_rt_worker_stats ws;
	struct moirai_rt_stats s;
	int accepted = 0, refused = 0;

	(void)state;
	atomic_store(&gate, 0);
	atomic_store(&gated_started, 0);
	atomic_store(&counter, 0);
	assert_int_equal(moirai_rt_spawn(rt, gated_task, NULL, NULL, NULL), 0);
	wait_gated_started(); /* the worker is inside the gated task */
	for (int i = 0; i < 20; i++) {
		int rc = moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, count_task, NULL);

		assert_true(rc == 0 || rc == -EAGAIN);
		rc ? refused++ : accepted++;
	}
	/* A 4-slot ring holds 3: the rest were refused and counted. */
	assert_int_equal(accepted, 3);
	assert_int_equal(refused, 17);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_int_equal(ws.mailbox_full, 17);
	assert_int_equal(moirai_rt_stats_get(rt, &s), 0);
	assert_int_equal(s.refused, 17);
	atomic_store(&gate, 1);
	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER), 0);
	assert_int_equal(atomic_load(&counter), 3); /* nothing accepted was lost */
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- loops -------------------------------------------------------------------- */

static void mark(size_t b, size_t e, void *arg)
{
	atomic_uchar *seen = arg;

	for (size_t i = b; i < e; i++)
		atomic_fetch_add(&seen[i], 1);
}

static void sum_init(void *acc, void *arg)
{
	(void)arg;
	*(uint64_t *)acc = 0;
}

static void sum_body(size_t b, size_t e, void *acc, void *arg)
{
	const uint32_t *v = arg;

	for (size_t i = b; i < e; i++)
		*(uint64_t *)acc += v[i];
}

static void sum_combine(void *into, const void *from, void *arg)
{
	(void)arg;
	*(uint64_t *)into += *(const uint64_t *)from;
}

/* A non-commutative fold: the result shows the order chunks were combined. */
static void hash_init(void *acc, void *arg)
{
	(void)arg;
	((uint64_t *)acc)[0] = 0; /* polynomial hash */
	((uint64_t *)acc)[1] = 1; /* 31^len */
}

static void hash_body(size_t b, size_t e, void *acc, void *arg)
{
	uint64_t *a = acc;
	const uint32_t *v = arg;

	for (size_t i = b; i < e; i++) {
		a[0] = a[0] * 31 + v[i];
		a[1] *= 31;
	}
}

static void hash_combine(void *into, const void *from, void *arg)
{
	uint64_t *a = into;
	const uint64_t *f = from;

	(void)arg;
	a[0] = a[0] * f[1] + f[0];
	a[1] *= f[1];
}

static void test_loops(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	size_t n = (size_t)(1000000 * test_scale() / TEST_SAN_DIVISOR);
	atomic_uchar *seen = calloc(n, 1);
	uint32_t *v = moirai_malloc(n * sizeof(uint32_t));
	struct moirai_reduce_ops sum = { sizeof(uint64_t), sum_init, sum_body, sum_combine };
	struct moirai_reduce_ops hash = { 2 * sizeof(uint64_t), hash_init, hash_body,
					  hash_combine };
	uint64_t total = 0, got, h_ref[2], h_got[2];
	size_t grains[] = { 0, 1000, 7, 100000 };

	(void)state;
	for (size_t i = 0; i < n; i++) {
		v[i] = (uint32_t)(i * 2654435761u);
		total += v[i];
	}
	hash_init(h_ref, NULL);
	hash_body(0, n, h_ref, v);
	for (unsigned g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
		size_t grain = grains[g] == 7 ? n / 1000 + 7 : grains[g];
		struct moirai_spawn_opts o = { .flags = MOIRAI_SPAWN_F_NODE,
					       .node = moirai_alloc_ptr_node(v) };

		memset(seen, 0, n);
		assert_int_equal(moirai_parallel_for(rt, 0, n, grain, mark, seen, &o), 0);
		for (size_t i = 0; i < n; i++)
			if (seen[i] != 1)
				fail_msg("index %zu seen %d times (grain %zu)", i, seen[i], grain);
		assert_int_equal(moirai_parallel_reduce(rt, 0, n, grain, &sum, v, &got, NULL), 0);
		assert_int_equal(got, total);
		assert_int_equal(moirai_parallel_reduce(rt, 0, n, grain, &hash, v, h_got, NULL), 0);
		assert_int_equal(h_got[0], h_ref[0]);
	}
	/* Empty and one-element ranges; bad input. */
	assert_int_equal(moirai_parallel_for(rt, 5, 5, 1, mark, seen, NULL), 0);
	assert_int_equal(moirai_parallel_reduce(rt, 3, 4, 1, &sum, v, &got, NULL), 0);
	assert_int_equal(got, v[3]);
	assert_int_equal(moirai_parallel_for(rt, 6, 5, 1, mark, seen, NULL), -EINVAL);
	assert_int_equal(moirai_parallel_for(NULL, 0, 5, 1, mark, seen, NULL), -EINVAL);
	sum.acc_size = 0;
	assert_int_equal(moirai_parallel_reduce(rt, 0, 5, 1, &sum, v, &got, NULL), -EINVAL);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	free(seen);
	moirai_free(v);
}

/* ---- latency isolation ---------------------------------------------------------- */

static atomic_int long_runs, yields_seen;
static atomic_ulong critical_started, long_first_end;

static int long_task(void *arg)
{
	uint64_t end = moirai_now_ns() + 200 * MS;

	(void)arg;
	if (atomic_fetch_add(&long_runs, 1) == 0)
		atomic_store(&long_first_end, end);
	while (moirai_now_ns() < end) {
		if (moirai_rt_should_yield()) {
			atomic_fetch_add(&yields_seen, 1);
			return MOIRAI_TASK_CONTINUE;
		}
	}
	return 0;
}

static int critical_task(void *arg)
{
	(void)arg;
	atomic_store(&critical_started, moirai_now_ns());
	return 0;
}

/*
 * One worker runs a long background task that checks should_yield(); a
 * critical task submitted meanwhile makes it yield (a continuation) and
 * starts long before the 200 ms the long task would otherwise take.
 */
static void test_should_yield(void **state)
{
	struct moirai_rt_config cfg = { .plan = &(struct moirai_plan_opts){ .workers = 1 },
					.task_budget_ns = 1000 * MS,
					.stuck_ns = UINT64_MAX };
	struct moirai_rt *rt = make_rt(&cfg);
	struct moirai_task *lt, *ct;
	uint64_t t0;

	(void)state;
	assert_false(moirai_rt_should_yield()); /* foreign thread */
	atomic_store(&long_runs, 0);
	atomic_store(&yields_seen, 0);
	assert_int_equal(
		moirai_rt_spawn(rt, long_task, NULL,
				&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_BACKGROUND }, &lt),
		0);
	while (!atomic_load(&long_runs))
		sched_yield();
	t0 = moirai_now_ns();
	assert_int_equal(
		moirai_rt_spawn(rt, critical_task, NULL,
				&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_CRITICAL }, &ct),
		0);
	assert_int_equal(moirai_task_join(ct, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	assert_true(atomic_load(&yields_seen) >= 1);
	/* It started before the long task's first run would have ended. */
	assert_true(atomic_load(&critical_started) < atomic_load(&long_first_end));
	assert_true(atomic_load(&critical_started) >= t0);
	assert_int_equal(moirai_task_join(lt, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	assert_true(atomic_load(&long_runs) >= 2); /* it continued after yielding */
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static int not_on_lane(void *arg)
{
	(void)arg;
	return moirai_rt_self() == 0 ? -1 : 0;
}

/* The critical lane: worker 0 never runs anything but critical tasks. */
static void test_critical_lane(void **state)
{
	struct moirai_rt_config cfg = { .critical_workers = 1 };
	struct moirai_rt *rt;
	struct moirai_group *g;
	int first = 0;

	(void)state;
	if (moirai_rt_create(&cfg, &rt) != 0) {
		/* One usable core: no room for a lane. */
		assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
		skip();
	}
	assert_int_equal(moirai_group_create(rt, &g), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(moirai_rt_spawn(rt, not_on_lane, NULL,
						 &(struct moirai_spawn_opts){
							 .prio = i % 2 ? MOIRAI_PRIO_NORMAL
								       : MOIRAI_PRIO_BACKGROUND,
							 .group = g },
						 NULL),
				 0);
	assert_int_equal(moirai_group_wait(g, MOIRAI_TIMEOUT_FOREVER, &first), 0);
	assert_int_equal(first, 0);
	assert_int_equal(moirai_group_destroy(g), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- blocking and stuck tasks ------------------------------------------------ */

static atomic_int blocker_in;

static int blocking_task(void *arg)
{
	(void)arg;
	atomic_store(&blocker_in, 1);
	assert_int_equal(moirai_rt_block_begin(), 0);
	while (!atomic_load(&gate))
		sleep_ms(1);
	assert_int_equal(moirai_rt_block_end(), 0);
	return 0;
}

static int stuck_task(void *arg)
{
	(void)arg;
	atomic_store(&blocker_in, 1);
	while (!atomic_load(&gate))
		sleep_ms(1); /* no blocking region: the detector must notice */
	return 0;
}

/* The library's log lines, captured (warnings and errors only: every
 * moirai__err() also logs at debug level). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];
static size_t log_used;

static void capture_log(int level, const char *line, void *arg)
{
	int k;

	(void)arg;
	if (level > MOIRAI_LOG_WARN)
		return;
	pthread_mutex_lock(&log_lock);
	k = snprintf(log_text + log_used, sizeof(log_text) - log_used, "%s\n", line);
	if (k > 0 && (size_t)k < sizeof(log_text) - log_used)
		log_used += (size_t)k;
	pthread_mutex_unlock(&log_lock);
}

static bool log_has(const char *s)
{
	bool r;

	pthread_mutex_lock(&log_lock);
	r = strstr(log_text, s) != NULL;
	pthread_mutex_unlock(&log_lock);
	return r;
}

/*
 * A worker stuck in a task does not hold up the work queued behind it:
 * siblings take it.  The stuck task is reported with its worker, its name
 * and its run time, in the stats and in the log.  (Work submitted to a
 * worker busy in a task wakes a sibling to take it anyway; what the
 * detector adds is the report, and a wake-up for work queued before the
 * task got stuck.  Blocking regions: test_blocking_region.)
 */
static void stuck_or_blocked(moirai_task_fn fn, bool expect_report)
{
	struct moirai_rt_config cfg = { .stuck_ns = 10 * MS };
	struct moirai_rt *rt = make_rt(&cfg);
	struct moirai_rt_worker_stats ws;
	struct moirai_group *g;
	const char *name = expect_report ? "stuck-sleeper" : "blocker";
	const char *line = "rt: worker 0 (moirai-w0): task 'stuck-sleeper' has run for ";
	long n = 300;

	if (moirai_rt_worker_count(rt) < 2) {
		moirai_rt_destroy(rt);
		skip();
	}
	atomic_store(&gate, 0);
	atomic_store(&counter, 0);
	assert_int_equal(moirai_group_create(rt, &g), 0);
	atomic_store(&blocker_in, 0);
	pthread_mutex_lock(&log_lock);
	log_used = 0;
	log_text[0] = '\0';
	pthread_mutex_unlock(&log_lock);
	moirai__log_set_hook(capture_log, NULL);
	assert_int_equal(
		moirai_rt_spawn(rt, fn, NULL,
				&(struct moirai_spawn_opts){ .flags = MOIRAI_SPAWN_F_WORKER |
								      MOIRAI_SPAWN_F_STRICT,
							     .worker = 0,
							     .name = name },
				NULL),
		0);
	/* Queue behind it only once it runs (worker 0 must not run them). */
	while (!atomic_load(&blocker_in))
		sleep_ms(1);
	sleep_ms(30);
	/* Queued behind it, on its own mailbox (a hint, not strict). */
	for (long i = 0; i < n; i++)
		assert_int_equal(
			moirai_rt_spawn(rt, count_task, NULL,
					&(struct moirai_spawn_opts){ .flags = MOIRAI_SPAWN_F_WORKER,
								     .worker = 0,
								     .group = g },
					NULL),
			0);
	assert_int_equal(moirai_group_wait(g, 5000 * MS, NULL), 0);
	assert_int_equal(atomic_load(&counter), n);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_true(ws.stolen_from >= (uint64_t)n);
	if (expect_report) {
		/* The detector runs every 2.5 ms; waiting for its report (10 s at
		 * most) instead of assuming it came keeps a slow box passing. */
		for (int k = 0; k < 10000 && (!ws.stuck_reports || !log_has(line)); k++) {
			sleep_ms(1);
			assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
		}
		assert_true(ws.stuck_reports >= 1);
		/* The one task worker 0 ran: its name, and the run time when
		 * reported, past the threshold (less a tick rounding). */
		assert_string_equal(ws.stuck_task, "stuck-sleeper");
		assert_true(ws.stuck_run_ns >= cfg.stuck_ns * 9 / 10);
		assert_true(log_has(line));
		/* A strict task is only ever reported on its own worker. */
		for (int i = 1; i < moirai_rt_worker_count(rt); i++) {
			struct moirai_rt_worker_stats o;

			assert_int_equal(moirai_rt_worker_stats_get(rt, i, &o), 0);
			assert_string_not_equal(o.stuck_task, "stuck-sleeper");
		}
	}
	moirai__log_set_hook(NULL, NULL);
	atomic_store(&gate, 1);
	assert_int_equal(moirai_group_destroy(g), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/*
 * A critical task submitted from outside goes to the worker that starts it
 * soonest: not into the mailbox of a worker busy in a long task while a
 * sibling idles (the stuck detector is off here, so nothing else would
 * move it; the joins' timeout only bounds a failure).
 */
static int where_crit(void *arg)
{
	*(int *)arg = moirai_rt_self();
	return 0;
}

static void test_submit_to_soonest(void **state)
{
	struct moirai_rt_config cfg = { .stuck_ns = 3600000 * MS };
	struct moirai_rt *rt = make_rt(&cfg);
	enum { N = 64 };
	int ran_on[N];
	struct moirai_rt_worker_stats ws;

	(void)state;
	if (moirai_rt_worker_count(rt) < 2) {
		moirai_rt_destroy(rt);
		skip();
	}
	atomic_store(&gate, 0);
	atomic_store(&blocker_in, 0);
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_BACKGROUND, stuck_task, NULL), 0);
	while (!atomic_load(&blocker_in))
		sleep_ms(1);
	for (int i = 0; i < N; i++) {
		struct moirai_task *t;
		int st = -1;

		ran_on[i] = -1;
		if (i & 1)
			sleep_ms(5); /* worker 1 parks: not spinning, yet the better target */
		assert_int_equal(
			moirai_rt_spawn(rt, where_crit, &ran_on[i],
					&(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_CRITICAL },
					&t),
			0);
		assert_int_equal(moirai_task_join(t, 5000 * MS, &st), 0);
		assert_int_equal(st, 0);
		assert_int_not_equal(ran_on[i], 0);
		assert_int_not_equal(ran_on[i], -1);
	}
	/* Placed on worker 1 directly, not left in worker 0's mailbox for
	 * worker 1 to wake up and steal: before the fix 31 of 64 were stolen.
	 * A few may be, when the kernel preempts worker 1 right after a join
	 * (it still shows as running a critical task, so the less urgent
	 * worker 0 ranks first): seen 1-3 times in 17 runs at load 7. */
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_true(ws.stolen_from <= N / 8);
	atomic_store(&gate, 1);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static void test_stuck_task(void **state)
{
	(void)state;
	stuck_or_blocked(stuck_task, true);
}

/*
 * Holds worker 0 inside a poller (not in a task) while the test fills its
 * mailboxes: a worker that is not running a task is not helped by anyone
 * (its mailboxes are not stolen, a submission does not wake a sibling),
 * so nothing is in motion when it goes on to drain them.
 */
static atomic_int hold_req, hold_in, hold_awake;

static int hold_poller(void *arg)
{
	(void)arg;
	if (atomic_load(&hold_req)) {
		atomic_store(&hold_in, 1);
		while (atomic_load(&hold_req))
			sleep_ms(1);
	}
	/* Busy keeps worker 0 stepping (never parked), so it reaches the
	 * hold without a wake-up. */
	return atomic_load(&hold_awake) ? MOIRAI_POLL_BUSY : MOIRAI_POLL_IDLE;
}

static bool siblings_parked(struct moirai_rt *rt)
{
	for (int i = 1; i < moirai_rt_worker_count(rt); i++) {
		struct moirai_rt_worker_stats ws;

		assert_int_equal(moirai_rt_worker_stats_get(rt, i, &ws), 0);
		if (ws.parks == 0)
			return false;
	}
	return true;
}

/*
 * What a blocking region changes: work that already sits in the worker's
 * own queues when its task blocks, with every sibling parked.  Nobody was
 * woken for it (it came while the worker was not in a task, which wakes
 * nobody else), and with the stuck detector off nothing else would wake
 * one: moirai_rt_block_begin() must, and the siblings run it all while
 * the task still blocks.  (Without the region it waits for the gate, and
 * the group's wait times out; the test before this one passed either way:
 * its stuck detector, and the wake-up of a submission to a busy worker,
 * moved the work without the region.)
 */
static void test_blocking_region(void **state)
{
	/* No aging: the 300 wait in the mailbox while worker 0 is held, long
	 * enough (aging_ns) for one of them to be served before the blocking
	 * task, which would leave it for worker 0 (seen once in 12 runs). */
	struct moirai_rt_config cfg = { .stuck_ns = UINT64_MAX, .aging_ns = UINT64_MAX / 2 };
	struct moirai_rt *rt = make_rt(&cfg);
	struct moirai_rt_worker_stats ws;
	struct moirai_poller *p;
	struct moirai_group *g;
	long n = 300;

	(void)state;
	assert_int_equal(moirai_rt_block_begin(), -EINVAL); /* not a worker */
	assert_int_equal(moirai_rt_block_end(), -EINVAL);
	if (moirai_rt_worker_count(rt) < 2) {
		moirai_rt_destroy(rt);
		skip();
	}
	atomic_store(&gate, 0);
	atomic_store(&counter, 0);
	atomic_store(&blocker_in, 0);
	atomic_store(&hold_in, 0);
	atomic_store(&hold_awake, 1);
	assert_int_equal(moirai_poller_register(rt, 0, "hold", hold_poller, NULL, 0, 0, &p), 0);
	assert_int_equal(moirai_group_create(rt, &g), 0);
	for (int i = 0; i < 5000 && !siblings_parked(rt); i++)
		sleep_ms(1);
	assert_true(siblings_parked(rt));
	atomic_store(&hold_req, 1);
	while (!atomic_load(&hold_in))
		sleep_ms(1);
	/* Worker 0 is in the poller: queue n tasks for it and the blocking
	 * task (critical, so it runs first once worker 0 drains). */
	for (long i = 0; i < n; i++)
		assert_int_equal(
			moirai_rt_spawn(rt, count_task, NULL,
					&(struct moirai_spawn_opts){ .flags = MOIRAI_SPAWN_F_WORKER,
								     .worker = 0,
								     .group = g },
					NULL),
			0);
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_CRITICAL, blocking_task, NULL), 0);
	atomic_store(&hold_awake, 0);
	atomic_store(&hold_req, 0);
	/* Bounds a failure only: siblings take 300 empty tasks in far less. */
	assert_int_equal(moirai_group_wait(g, 10000 * MS, NULL), 0);
	assert_int_equal(atomic_load(&counter), n);
	assert_true(atomic_load(&blocker_in));
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_true(ws.stolen_from >= (uint64_t)n);
	assert_int_equal(ws.stuck_reports, 0);
	atomic_store(&gate, 1);
	assert_int_equal(moirai_poller_unregister(p), 0);
	assert_int_equal(moirai_group_destroy(g), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* A poller that blocks inside a region until the gate opens. */
static int blocking_poller(void *arg)
{
	(void)arg;
	if (atomic_load(&hold_req)) {
		assert_int_equal(moirai_rt_block_begin(), 0);
		atomic_store(&hold_in, 1);
		while (!atomic_load(&gate))
			sleep_ms(1);
		assert_int_equal(moirai_rt_block_end(), 0);
		atomic_store(&hold_req, 0);
	}
	return atomic_load(&hold_awake) ? MOIRAI_POLL_BUSY : MOIRAI_POLL_IDLE;
}

/*
 * A blocking region in a poller (a worker between tasks): work submitted
 * to the worker while it blocks there is run by a sibling it wakes.  The
 * worker is not in a task, so only the region makes its mailboxes fair
 * game, and only the region can make the submission wake a sibling to
 * take them (every sibling sleeps, the stuck detector is off).
 */
static void test_blocking_region_poller(void **state)
{
	struct moirai_rt_config cfg = { .stuck_ns = UINT64_MAX };
	struct moirai_rt *rt = make_rt(&cfg);
	struct moirai_rt_worker_stats ws;
	struct moirai_poller *p;
	struct moirai_group *g;
	long n = 300;

	(void)state;
	if (moirai_rt_worker_count(rt) < 2) {
		moirai_rt_destroy(rt);
		skip();
	}
	atomic_store(&gate, 0);
	atomic_store(&counter, 0);
	atomic_store(&hold_in, 0);
	atomic_store(&hold_awake, 1);
	assert_int_equal(moirai_poller_register(rt, 0, "block", blocking_poller, NULL, 0, 0, &p),
			 0);
	assert_int_equal(moirai_group_create(rt, &g), 0);
	for (int i = 0; i < 5000 && !siblings_parked(rt); i++)
		sleep_ms(1);
	assert_true(siblings_parked(rt));
	atomic_store(&hold_req, 1);
	while (!atomic_load(&hold_in))
		sleep_ms(1);
	for (long i = 0; i < n; i++)
		assert_int_equal(
			moirai_rt_spawn(rt, count_task, NULL,
					&(struct moirai_spawn_opts){ .flags = MOIRAI_SPAWN_F_WORKER,
								     .worker = 0,
								     .group = g },
					NULL),
			0);
	/* Bounds a failure only. */
	assert_int_equal(moirai_group_wait(g, 10000 * MS, NULL), 0);
	assert_int_equal(atomic_load(&counter), n);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	assert_true(ws.stolen_from >= (uint64_t)n);
	atomic_store(&hold_awake, 0);
	atomic_store(&gate, 1);
	while (atomic_load(&hold_req))
		sleep_ms(1);
	assert_int_equal(moirai_poller_unregister(p), 0);
	assert_int_equal(moirai_group_destroy(g), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- worker count and wake-ups ---------------------------------------------------- */

#define WORKERS_CHILD_ARG "--workers-from-env"

/* The re-executed test (main): a runtime with no configuration, as a
 * program would create it, reports its worker count as the exit status. */
static int workers_child(void)
{
	struct moirai_rt *rt;
	int n;

	if (moirai_rt_create(NULL, &rt) != 0)
		return 255;
	n = moirai_rt_worker_count(rt);
	return moirai_rt_destroy(rt) == 0 ? n : 255;
}

/*
 * MOIRAI_WORKERS=N gives N workers.  The environment is read once per
 * process, so the runtime is created in a fresh copy of this test with the
 * variable set; N is one less than the default, so that ignoring it shows.
 * The options API (moirai_option_set) does the same in this process.
 */
static void test_workers_option(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	int dflt = moirai_rt_worker_count(rt), n = dflt > 1 ? dflt - 1 : 1, status;
	char val[16];
	pid_t pid;

	(void)state;
	assert_int_equal(moirai_rt_destroy(rt), 0);
	snprintf(val, sizeof(val), "%d", n);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("MOIRAI_WORKERS", val, 1);
		execl("/proc/self/exe", "test_rt", WORKERS_CHILD_ARG, (char *)NULL);
		_exit(254);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), n);
	/* From code: the same option, overriding the environment. */
	assert_int_equal(moirai_option_set(MOIRAI_OPT_WORKERS, n), 0);
	rt = make_rt(NULL);
	assert_int_equal(moirai_rt_worker_count(rt), n);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	assert_int_equal(moirai_option_set(MOIRAI_OPT_WORKERS, 0), 0);
	rt = make_rt(NULL);
	assert_int_equal(moirai_rt_worker_count(rt), dflt);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static void sum_stats(struct moirai_rt *rt, uint64_t *wakeups, uint64_t *parks)
{
	*wakeups = *parks = 0;
	for (int i = 0; i < moirai_rt_worker_count(rt); i++) {
		struct moirai_rt_worker_stats ws;

		assert_int_equal(moirai_rt_worker_stats_get(rt, i, &ws), 0);
		*wakeups += ws.wakeups;
		*parks += ws.parks;
	}
}

static bool all_parked_once(struct moirai_rt *rt)
{
	for (int i = 0; i < moirai_rt_worker_count(rt); i++) {
		struct moirai_rt_worker_stats ws;

		assert_int_equal(moirai_rt_worker_stats_get(rt, i, &ws), 0);
		if (ws.parks == 0)
			return false;
	}
	return true;
}

/*
 * One submission to a runtime whose workers all sleep wakes exactly one
 * of them: the one it is queued on, which runs it; nobody else is woken
 * "just in case" (no thundering herd), and its running the task wakes
 * nobody either.  Repeated, each time once the woken one sleeps again (an
 * idle runtime wakes nobody, so the others never woke).
 */
static void test_wake_exactly_one(void **state)
{
	struct moirai_rt_config cfg = { .stuck_ns = UINT64_MAX };
	struct moirai_rt *rt = make_rt(&cfg);
	int reps = (int)(20 * test_scale());

	(void)state;
	if (moirai_rt_worker_count(rt) < 2) {
		moirai_rt_destroy(rt);
		skip();
	}
	for (int i = 0; i < 5000 && !all_parked_once(rt); i++)
		sleep_ms(1);
	assert_true(all_parked_once(rt));
	for (int r = 0; r < reps; r++) {
		struct moirai_task *t;
		uint64_t w0, p0, w1, p1;

		sum_stats(rt, &w0, &p0);
		assert_int_equal(moirai_rt_spawn(rt, count_task, NULL, NULL, &t), 0);
		assert_int_equal(moirai_task_join(t, 10000 * MS, NULL), 0);
		/* Counted only once the woken worker sleeps again: whatever it
		 * does after the task (a wake-up it passes on) is done by then. */
		for (int i = 0; i < 5000; i++) {
			sum_stats(rt, &w1, &p1);
			if (p1 > p0)
				break;
			sleep_ms(1);
		}
		assert_true(p1 > p0);
		assert_int_equal(w1 - w0, 1);
	}
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static int spawn_around(void *arg)
{
	struct moirai_group *g = arg;
	struct moirai_rt *rt = moirai_rt_current();
	int nw = moirai_rt_worker_count(rt);

	for (int i = 0; i < 64; i++)
		assert_int_equal(moirai_rt_spawn(rt, count_task, NULL,
						 &(struct moirai_spawn_opts){
							 .flags = i & 1 ? MOIRAI_SPAWN_F_WORKER : 0,
							 .worker = i % nw,
							 .group = g },
						 NULL),
				 0);
	return 0;
}

/*
 * While no worker sleeps, submitting costs no wake-up: workers that only
 * spin (idle = spin) take thousands of submissions from outside, from
 * tasks, locally and to each other's mailboxes, and nobody is ever sent a
 * futex wake (the counter stays where the start left it).
 */
static void test_no_wake_when_awake(void **state)
{
	struct moirai_rt_config cfg = { .idle = MOIRAI_RT_IDLE_SPIN, .stuck_ns = UINT64_MAX };
	struct moirai_rt *rt = make_rt(&cfg);
	int nw = moirai_rt_worker_count(rt);
	long n = 2000 * test_scale() / TEST_SAN_DIVISOR;
	struct moirai_group *g;
	uint64_t w0, p0, w1, p1;

	(void)state;
	/* Each worker ran a task: all have left the start, where they wait
	 * on their futex (and a submission would wake one). */
	atomic_store(&counter, 0);
	for (int i = 0; i < nw; i++)
		assert_int_equal(moirai_rt_send(rt, i, MOIRAI_PRIO_NORMAL, count_task, NULL), 0);
	while (atomic_load(&counter) < nw)
		sleep_ms(1);
	sum_stats(rt, &w0, &p0);
	assert_int_equal(p0, 0);
	assert_int_equal(moirai_group_create(rt, &g), 0);
	for (long i = 0; i < n; i++) {
		struct moirai_spawn_opts o = { .group = g };
		int rc;

		/* Faster than two preempted workers drain: full mailboxes say
		 * -EAGAIN (and wake nobody); wait and submit again. */
		while ((rc = moirai_rt_spawn(rt, i % 16 ? count_task : spawn_around,
					     i % 16 ? NULL : g, &o, NULL)) == -EAGAIN)
			sched_yield();
		assert_int_equal(rc, 0);
	}
	assert_int_equal(moirai_group_wait(g, 60000 * MS, NULL), 0);
	sum_stats(rt, &w1, &p1);
	assert_int_equal(w1, w0);
	assert_int_equal(p1, 0);
	assert_int_equal(moirai_group_destroy(g), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- QSBR ---------------------------------------------------------------------- */

#define POISON 0xdeadbeefu

struct obj {
	_Atomic uint32_t magic;
	uint32_t payload[15];
};

static struct obj *_Atomic shared;
static atomic_int readers_stop, bad_reads;
static atomic_long reads;

static int reader(void *arg)
{
	(void)arg;
	for (int k = 0; k < 1000; k++) {
		struct obj *o = atomic_load_explicit(&shared, memory_order_acquire);

		if (o && atomic_load_explicit(&o->magic, memory_order_relaxed) != 0x600d)
			atomic_fetch_add(&bad_reads, 1);
		atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
	}
	return atomic_load(&readers_stop) ? 0 : MOIRAI_TASK_CONTINUE;
}

static void poison_free(void *p, void *arg)
{
	(void)arg;
	atomic_store(&((struct obj *)p)->magic, POISON);
	free(p);
}

static void test_qsbr(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	int n = moirai_rt_worker_count(rt), replaced = 0;
	long rounds = 3000 * test_scale() / TEST_SAN_DIVISOR;
	struct moirai_task *h[64];
	struct moirai_rt_stats s;
	struct obj *o;

	(void)state;
	atomic_store(&readers_stop, 0);
	atomic_store(&bad_reads, 0);
	o = malloc(sizeof(*o));
	atomic_store(&o->magic, 0x600d);
	atomic_store(&shared, o);
	for (int i = 0; i < n && i < 64; i++)
		assert_int_equal(moirai_rt_spawn(rt, reader, NULL,
						 &(struct moirai_spawn_opts){
							 .flags = MOIRAI_SPAWN_F_WORKER |
								  MOIRAI_SPAWN_F_STRICT,
							 .worker = i },
						 &h[i]),
				 0);
	for (long r = 0; r < rounds; r++) {
		struct obj *nw = malloc(sizeof(*nw)), *old;

		atomic_store(&nw->magic, 0x600d);
		old = atomic_exchange_explicit(&shared, nw, memory_order_acq_rel);
		if (r % 2)
			assert_int_equal(moirai_rt_defer_free(rt, old, poison_free, NULL), 0);
		else {
			assert_int_equal(moirai_rt_synchronize(rt, 60000 * MS),
					 0); /* a bound, not a timing */
			poison_free(old, NULL);
		}
		replaced++;
	}
	atomic_store(&readers_stop, 1);
	for (int i = 0; i < n && i < 64; i++)
		assert_int_equal(moirai_task_join(h[i], MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	assert_true(atomic_load(&reads) > 0);
	assert_int_equal(atomic_load(&bad_reads), 0); /* never saw freed memory */
	/* Deferred frees all happen (the runtime is idle: workers offline). */
	for (int k = 0; k < 500; k++) {
		moirai_rt_stats_get(rt, &s);
		if (s.deferred_pending == 0)
			break;
		sleep_ms(10);
	}
	assert_int_equal(s.deferred_pending, 0);
	assert_int_equal(s.deferred_freed, (uint64_t)rounds / 2);
	/* An idle runtime: a grace period passes at once (everyone offline). */
	assert_int_equal(moirai_rt_synchronize(rt, 1000 * MS), 0);
	assert_int_equal(moirai_rt_defer_free(rt, atomic_load(&shared), poison_free, NULL), 0);
	assert_int_equal(moirai_rt_defer_free(NULL, o, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_rt_defer_free(rt, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_rt_destroy(rt), 0); /* frees what is still deferred */
	(void)replaced;
}

/* ---- idle CPU -------------------------------------------------------------------- */

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void worker_counts(struct moirai_rt *rt, uint64_t *parks, uint64_t *wakeups)
{
	*parks = *wakeups = 0;
	for (int i = 0; i < moirai_rt_worker_count(rt); i++) {
		struct moirai_rt_worker_stats ws;

		moirai_rt_worker_stats_get(rt, i, &ws);
		*parks += ws.parks;
		*wakeups += ws.wakeups;
	}
}

/*
 * After its spin window an idle runtime sleeps: no worker wakes up or
 * parks again during a second of idleness (exact), and the process spends
 * at most 1% of a core per worker (getrusage).
 */
static void test_idle_cpu(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	int n = moirai_rt_worker_count(rt);
	uint64_t p0, w0, p1, w1;
	double c0, c1;

	(void)state;
	assert_int_equal(moirai_rt_spawn(rt, count_task, NULL, NULL, NULL), 0);
	sleep_ms(200); /* past the spin window */
	worker_counts(rt, &p0, &w0);
	c0 = cpu_seconds();
	sleep_ms(1000);
	c1 = cpu_seconds();
	worker_counts(rt, &p1, &w1);
	print_message("idle runtime: %.3f%% of a core per worker, %llu parks, %llu wake-ups\n",
		      (c1 - c0) * 100.0 / n, (unsigned long long)(p1 - p0),
		      (unsigned long long)(w1 - w0));
	assert_int_equal(p1 - p0, 0);
	assert_int_equal(w1 - w0, 0);
	assert_true((c1 - c0) / n <= 0.01);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- shutdown ---------------------------------------------------------------------- */

static atomic_long ran, children;

static void tick(struct moirai_timer *t, void *arg)
{
	(void)t;
	(void)arg;
}

static int leaf_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	return 0;
}

static int spawner_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	/* Keeps spawning while the runtime stops under it. */
	for (int i = 0; i < 50; i++) {
		if (moirai_rt_spawn(moirai_rt_current(), leaf_task, NULL, NULL, NULL))
			break;
		atomic_fetch_add(&children, 1);
	}
	return 0;
}

/*
 * One gate task per worker holds that worker until the stop: each loads
 * its worker with armed timers and queued tasks first, so thousands of
 * both are outstanding when the stop comes, whatever the box's speed.
 */
#define SHUT_TIMERS 4096
static struct moirai_timer shut_timers[SHUT_TIMERS];
static atomic_int gates_in, gates_loaded, stop_go;

struct gate {
	int timer0, ntimers; /* its slice of shut_timers */
	long tasks;	     /* tasks to queue on its worker */
	bool stopper;	     /* stops the runtime itself (from a task) */
};

static int gate_task(void *arg)
{
	const struct gate *g = arg;
	struct moirai_rt *rt = moirai_rt_current();
	struct moirai_rt_stats s;

	atomic_fetch_add(&ran, 1);
	/* Every worker inside its gate before anything is queued: no worker
	 * can run (or steal) the load early. */
	atomic_fetch_add(&gates_in, 1);
	while (atomic_load(&gates_in) < moirai_rt_worker_count(rt))
		sched_yield();
	for (int i = g->timer0; i < g->timer0 + g->ntimers; i++) {
		struct moirai_timer *t = &shut_timers[i];

		/* An hour away: still pending at the stop on any box. */
		assert_int_equal(moirai_timer_init(t, tick, NULL), 0);
		assert_int_equal(moirai_timer_start(t, 3600000 * MS, i % 2 ? 1000 * MS : 0), 0);
	}
	for (long i = 0; i < g->tasks; i++) {
		if (moirai_rt_spawn(rt, i % 100 ? leaf_task : spawner_task, NULL, NULL, NULL))
			break;
		atomic_fetch_add(&children, 1);
	}
	atomic_fetch_add(&gates_loaded, 1);
	if (g->stopper) {
		while (!atomic_load(&stop_go))
			sched_yield();
		return moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER) ==
				       -EINPROGRESS
			       ? 0
			       : -1;
	}
	do {
		sched_yield();
		moirai_rt_stats_get(rt, &s);
	} while (!s.stopping);
	return 0;
}

/*
 * Create, load with thousands of queued tasks (some of which spawn more
 * while the stop runs) and thousands of armed timers, stop (drain, stop
 * now, or from inside a task), destroy: over and over.  Nothing is lost
 * (drained: everything accepted ran; stopped now: ran + cancelled =
 * accepted), nothing hangs, every task descriptor is back in its pool
 * once stopped (a lost one stays inside the pool's slab, where ASan and
 * valgrind cannot see it), and no timer is left pending on a destroyed
 * runtime.
 */
static void test_shutdown_under_load(void **state)
{
	long reps = 100 * test_scale() / (TEST_UNDER_TSAN ? 5 : 1);
	static struct gate gates[SHUT_TIMERS];
	struct moirai_topo *topo;

	(void)state;
	if (test_under_valgrind())
		reps = 3; /* every mode once: memcheck runs it ~50x slower */
	/* Loaded once: hwloc's probe of /sys took 9 in 10 of the time. */
	assert_int_equal(moirai_topo_load(&topo), 0);
	for (long rep = 0; rep < reps; rep++) {
		struct moirai_rt_config cfg = { .topo = topo,
						.tasks_per_node = 8192,
						.stuck_ns = UINT64_MAX };
		struct moirai_rt *rt = make_rt(&cfg);
		struct moirai_rt_stats s;
		int nw = moirai_rt_worker_count(rt), ntimers = 2000 + (int)(rep % 5) * 400;
		long ntasks = 2000 + rep % 7 * 100, accepted = 0, queued = 0, nforeign = 500;
		int rc = 0, mode = (int)(rep % 3);

		assert_true(nw <= SHUT_TIMERS);
		atomic_store(&ran, 0);
		atomic_store(&children, 0);
		atomic_store(&gates_in, 0);
		atomic_store(&gates_loaded, 0);
		atomic_store(&stop_go, 0);
		for (int i = 0; i < nw; i++) {
			gates[i] =
				(struct gate){ .timer0 = ntimers * i / nw,
					       .ntimers = ntimers * (i + 1) / nw - ntimers * i / nw,
					       .tasks = ntasks / nw,
					       .stopper = mode == 2 && i == 0 };
			assert_int_equal(
				moirai_rt_send(rt, i, MOIRAI_PRIO_NORMAL, gate_task, &gates[i]), 0);
			accepted++;
		}
		while (atomic_load(&gates_loaded) < nw)
			sched_yield();
		queued = atomic_load(&children);
		assert_true(queued >= ntasks - nw);
		for (long i = 0; i < nforeign; i++)
			accepted += moirai_rt_spawn(rt, leaf_task, NULL, NULL, NULL) == 0;
		/* Outstanding now: every gate, the tasks they queued and the
		 * foreign ones, each holding a descriptor. */
		assert_int_equal(moirai_rt_stats_get(rt, &s), 0);
		assert_int_equal(s.tasks_in_use, accepted + queued);
		for (int i = 0; i < ntimers; i++)
			assert_true(moirai_timer_is_pending(&shut_timers[i]));
		if (mode == 0) {
			assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, 10000 * MS), 0);
		} else if (mode == 1) {
			rc = moirai_rt_stop(rt, MOIRAI_RT_STOP_NOW, 10000 * MS);
			assert_true(rc >= 0);
		} else {
			atomic_store(&stop_go, 1);
			while (moirai_rt_wait(rt, 10000 * MS) == -EINVAL)
				sched_yield(); /* the task has not called stop yet */
		}
		assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_NOW, 0), -EALREADY);
		assert_int_equal(moirai_rt_spawn(rt, leaf_task, NULL, NULL, NULL), -ESHUTDOWN);
		assert_int_equal(atomic_load(&ran) + rc, accepted + atomic_load(&children));
		/* Every descriptor back in its pool (no handle was taken). */
		assert_int_equal(moirai_rt_stats_get(rt, &s), 0);
		assert_int_equal(s.tasks_in_use, 0);
		assert_int_equal(moirai_rt_destroy(rt), 0);
		for (int i = 0; i < ntimers; i++)
			assert_false(moirai_timer_is_pending(&shut_timers[i]));
	}
	moirai_topo_destroy(topo);
}

/* A worker stuck in a task past the stop timeout: an error naming it, not
 * a hang; destroy refuses until it is free, then succeeds. */
static void test_stop_timeout(void **state)
{
	struct moirai_rt_config cfg = { .stuck_ns = UINT64_MAX, .stop_timeout_ns = 50 * MS };
	struct moirai_rt *rt = make_rt(&cfg);

	(void)state;
	atomic_store(&gate, 0);
	atomic_store(&gated_started, 0);
	assert_int_equal(moirai_rt_spawn(rt, gated_task, NULL,
					 &(struct moirai_spawn_opts){ .name = "gated" }, NULL),
			 0);
	wait_gated_started();
	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, 50 * MS), -ETIMEDOUT);
	assert_non_null(strstr(moirai_last_error(), "gated"));
	assert_int_equal(moirai_rt_destroy(rt), -EBUSY);
	atomic_store(&gate, 1);
	assert_int_equal(moirai_rt_wait(rt, MOIRAI_TIMEOUT_FOREVER), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

/* ---- bad input ------------------------------------------------------------------------ */

static void test_negative(void **state)
{
	struct moirai_rt *rt = NULL;
	struct moirai_topo *topo;
	struct moirai_rt_config cfg = { 0 };

	(void)state;
	assert_int_equal(moirai_rt_create(NULL, NULL), -EINVAL);
	cfg.mailbox_size = 3;
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "mailbox_size"));
	cfg = (struct moirai_rt_config){ .deque_size = 1000 };
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
	cfg = (struct moirai_rt_config){ .idle = (enum moirai_rt_idle)9 };
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
	cfg = (struct moirai_rt_config){ .plan = &(struct moirai_plan_opts){ .workers = 100000 } };
	assert_int_equal(moirai_rt_create(&cfg, &rt), -ERANGE);
	/* A foreign topology never pins silently onto CPUs that may not exist. */
	assert_int_equal(moirai_topo_load_synthetic("pack:4 numa:1 core:4 pu:2", &topo), 0);
	cfg = (struct moirai_rt_config){ .topo = topo };
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "virtual_placement"));
	cfg.virtual_placement = true;
	cfg.plan = &(struct moirai_plan_opts){ .workers = 4 };
	assert_int_equal(moirai_rt_create(&cfg, &rt), 0);
	moirai_topo_destroy(topo);
	{
		struct moirai_rt_stats s;
		struct moirai_rt_worker_info wi;

		assert_int_equal(moirai_rt_stats_get(rt, &s), 0);
		assert_true(s.virtual_placement);
		assert_int_equal(moirai_rt_worker_info(rt, 3, &wi), 0);
		assert_true(wi.virtual_placement);
	}
	assert_int_equal(moirai_rt_spawn(rt, NULL, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_rt_spawn(NULL, count_task, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_rt_spawn(rt, count_task, NULL,
					 &(struct moirai_spawn_opts){ .prio = 7 }, NULL),
			 -EINVAL);
	assert_int_equal(moirai_rt_spawn(rt, count_task, NULL,
					 &(struct moirai_spawn_opts){ .flags = 0x80 }, NULL),
			 -EINVAL);
	assert_int_equal(moirai_rt_spawn(rt, count_task, NULL,
					 &(struct moirai_spawn_opts){
						 .flags = MOIRAI_SPAWN_F_WORKER, .worker = 99 },
					 NULL),
			 -ERANGE);
	assert_int_equal(
		moirai_rt_spawn(rt, count_task, NULL,
				&(struct moirai_spawn_opts){ .flags = MOIRAI_SPAWN_F_STRICT },
				NULL),
		-EINVAL);
	assert_int_equal(moirai_rt_stop(rt, (enum moirai_rt_stop_mode)5, 0), -EINVAL);
	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, -7), -EINVAL);
	assert_int_equal(moirai_rt_wait(rt, 0), -EINVAL); /* not stopped */
	assert_int_equal(moirai_rt_stats_print(rt, NULL, false), -EINVAL);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	assert_int_equal(moirai_rt_destroy(NULL), 0);
	assert_int_equal(moirai_rt_stop(NULL, MOIRAI_RT_STOP_DRAIN, 0), -EINVAL);
	assert_null(moirai_prio_name((enum moirai_prio)9));
	assert_string_equal(moirai_prio_name(MOIRAI_PRIO_CRITICAL), "critical");
	assert_int_equal(moirai_prio_index(MOIRAI_PRIO_BACKGROUND), 3);
}

static void test_stats_print(void **state)
{
	struct moirai_rt *rt = make_rt(NULL);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_int_equal(moirai_rt_spawn(rt, count_task, NULL, NULL, NULL), 0);
	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER), 0);
	assert_int_equal(moirai_rt_stats_print(rt, f, true), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"workers\": ["));
	assert_non_null(strstr(buf, "\"latency_ns\": {\"critical\""));
	assert_non_null(strstr(buf, "\"p99\""));
	free(buf);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_spawn_join_foreign),
		cmocka_unit_test(test_fork_join),
		cmocka_unit_test(test_handles),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_group_destroy_race),
		cmocka_unit_test(test_affinity),
		cmocka_unit_test(test_mailbox_full),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_should_yield),
		cmocka_unit_test(test_critical_lane),
		cmocka_unit_test(test_submit_to_soonest),
		cmocka_unit_test(test_stuck_task),
		cmocka_unit_test(test_blocking_region),
		cmocka_unit_test(test_blocking_region_poller),
		cmocka_unit_test(test_qsbr),
		cmocka_unit_test(test_idle_cpu),
		cmocka_unit_test(test_workers_option),
		cmocka_unit_test(test_wake_exactly_one),
		cmocka_unit_test(test_no_wake_when_awake),
		cmocka_unit_test(test_shutdown_under_load),
		cmocka_unit_test(test_stop_timeout),
		cmocka_unit_test(test_stats_print),
	};
	const struct CMUnitTest negative[] = {
		cmocka_unit_test(test_negative),
	};
	int fails = 0;

	if (argc == 2 && strcmp(argv[1], WORKERS_CHILD_ARG) == 0)
		return workers_child();
	test_filter_from_env();
	fails += cmocka_run_group_tests_name("rt", tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("rt_negative", negative, NULL, NULL);
	return fails ? 1 : 0;
}
