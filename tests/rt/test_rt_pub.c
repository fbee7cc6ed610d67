/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The published stats segment (moirai/rt.h "Published stats", rt/rt_pub.c,
 * rt/rt_monitor.c), read with the same reader moirai-top uses:
 *  - exact counts: N tasks at each level, then exactly N more runs per level
 *    in the segment (summed; per worker equal to the in-process stats), N
 *    waits and runs per level in histograms equal bucket for bucket to the
 *    in-process merge, M more between two snapshots;
 *  - naming: after the pid, .1 for a second runtime, the option, bad names
 *    and periods refused, a live name never taken, the idle and stopping
 *    states, destroy unlinks;
 *  - stale segments: a SIGKILLed publisher is listed as stale (also as an
 *    unreaped zombie), cleaned only by its owner, swept by the next runtime;
 *    pid reuse, another boot, another pid namespace;
 *  - the negative group.
 * Hostile writers are in test_rt_pub_hostile.c.  Every segment lives in a
 * private directory (the MOIRAI_RT_STATS_DIR option), so concurrent test
 * runs never see each other's files.
 *
 * With "--publish SECONDS" the binary is the publisher the moirai-top CLI
 * test (tests/tools/test_top.sh) watches instead.
 */
#include "pub_test.h"

/* ---- a known workload, exact counts ---------------------------------- */

static atomic_long ran;

static int count_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	return 0;
}

/* Spawn @n tasks at @prio with handles, retrying a full mailbox; returns
 * the refusals seen. */
static long spawn_n(struct moirai_rt *rt, int prio, long n, struct moirai_task **h)
{
	struct moirai_spawn_opts o = { .prio = prio };
	long refused = 0;

	for (long i = 0; i < n; i++) {
		int rc;

		while ((rc = moirai_rt_spawn(rt, count_task, NULL, &o, &h[i])) == -EAGAIN) {
			refused++;
			sched_yield();
		}
		assert_int_equal(rc, 0);
	}
	return refused;
}

static void join_n(struct moirai_task **h, long n)
{
	for (long i = 0; i < n; i++) {
		int status = -1;

		assert_int_equal(moirai_task_join(h[i], MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(status, 0);
	}
}

static int tick_poller(void *arg)
{
	(void)arg;
	return MOIRAI_POLL_IDLE;
}

/*
 * Register (or, with *slot set, unregister) a 2 ms poller on the worker the
 * task runs on.  From the worker itself on purpose: from a foreign thread,
 * poller_request() (rt/rt_poller.c) waits on a request on the caller's
 * stack, and poller_req_run() still notifies that request's waitq after it
 * set done, when the caller may have returned (TSan: a race on the stack).
 */
static int tick_task(void *arg)
{
	struct moirai_poller **slot = arg;

	if (*slot) {
		int rc = moirai_poller_unregister(*slot);

		*slot = NULL;
		return rc;
	}
	return moirai_poller_register(moirai_rt_current(), moirai_rt_self(), "tick", tick_poller,
				      NULL, 2 * MS, 0, slot);
}

static void tick_all(struct moirai_rt *rt, struct moirai_poller **slots, int n)
{
	for (int i = 0; i < n; i++) {
		struct moirai_spawn_opts o = {
			.flags = MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_STRICT, .worker = i
		};
		struct moirai_task *h;
		int status = -1;

		assert_int_equal(moirai_rt_spawn(rt, tick_task, &slots[i], &o, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &status), 0);
		assert_int_equal(status, 0);
	}
}

static void test_exact_counts(void **state)
{
	const long n = 300, m = 100;
	struct moirai_rt_config cfg = { .flags = MOIRAI_RT_F_STATS, .stats_period_ms = 5 };
	struct moirai_task **h = calloc((size_t)n, sizeof(*h));
	struct moirai_rt_snapshot *base, *s0, *s1, *s2;
	struct moirai_poller *tick[64] = { NULL };
	struct moirai_rt_monitor *mon;
	struct moirai_rt *rt;
	char name[MOIRAI_RT_STATS_NAME_MAX + 1], want[64];
	long refused = 0;
	uint64_t seq;
	int workers;

	(void)state;
	snprintf(want, sizeof(want), "exact-%d", (int)getpid());
	cfg.stats_name = want;
	rt = make_rt(&cfg);
	workers = moirai_rt_worker_count(rt);
	/* A timed poller wakes each worker every 2 ms, so the runtime never
	 * stays idle and publishing never stops (test_idle covers idle). */
	assert_true(workers <= 64);
	tick_all(rt, tick, workers);
	assert_int_equal(moirai_rt_stats_name(rt, name, sizeof(name)), 0);
	assert_string_equal(name, want);
	assert_true(seg_exists(name));
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	/* The poller registrations ran as tasks (counted): the baseline is
	 * taken once they are published. */
	s0 = snap_of(mon);
	base = snap_after(mon, s0->seq + 4);
	moirai_rt_snapshot_free(s0);

	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		refused += spawn_n(rt, moirai_prio_from_index(l), n, h);
		join_n(h, n);
	}
	/* Two publishes that began after the joins: everything is counted. */
	s0 = snap_of(mon);
	s1 = snap_after(mon, s0->seq + 4);
	assert_int_equal(s1->workers, workers);
	assert_int_equal(s1->rt.workers, workers);
	assert_int_equal(s1->pid, getpid());
	assert_int_equal(s1->uid, (long)geteuid());
	assert_string_equal(s1->name, want);
	assert_string_equal(s1->comm, "test_rt_pub");
	assert_int_equal(s1->period_ms, 5);
	assert_true(s1->seq % 2 == 0 && s1->publishes >= 2);
	assert_true(s1->publish_ns > 0 && s1->publish_max_ns >= s1->publish_ns);
	assert_int_equal(s1->rt.spawned - base->rt.spawned, 4 * n);
	assert_int_equal(s1->rt.refused - base->rt.refused, refused);
	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		uint64_t sum = 0;

		for (int i = 0; i < workers; i++) {
			struct moirai_rt_worker_stats ws;

			assert_int_equal(moirai_rt_worker_stats_get(rt, i, &ws), 0);
			/* Per worker, the segment holds what the runtime holds. */
			assert_int_equal(s1->worker[i].stats.tasks_run[l], ws.tasks_run[l]);
			sum += s1->worker[i].stats.tasks_run[l] -
			       base->worker[i].stats.tasks_run[l];
		}
		assert_int_equal(sum, n);
		for (int k = 0; k < 2; k++) {
			struct moirai_hist d;

			assert_int_equal(moirai_rt_snapshot_latency(
						 base, s1, moirai_prio_from_index(l), k, &d),
					 0);
			assert_int_equal(moirai_hist_count(&d), n);
			assert_int_equal(moirai_hist_count(&s1->latency[k][l]),
					 moirai_hist_count(&base->latency[k][l]) + n);
			/* Bucket for bucket what the in-process merge gives. */
			memset(&d, 0, sizeof(d));
			assert_int_equal(
				moirai_rt_latency_get(rt, -1, moirai_prio_from_index(l), k, &d), 0);
			assert_int_equal(moirai_hist_count(&d),
					 moirai_hist_count(&s1->latency[k][l]));
			assert_int_equal(moirai_hist_min(&d), moirai_hist_min(&s1->latency[k][l]));
			assert_int_equal(moirai_hist_max(&d), moirai_hist_max(&s1->latency[k][l]));
			assert_memory_equal(d.buckets, s1->latency[k][l].buckets,
					    sizeof(d.buckets));
		}
	}
	for (int i = 0; i < workers; i++) {
		struct moirai_rt_worker_info wi;

		assert_int_equal(moirai_rt_worker_info(rt, i, &wi), 0);
		assert_int_equal(s1->worker[i].info.worker, i);
		assert_int_equal(s1->worker[i].info.pu, wi.pu);
		assert_int_equal(s1->worker[i].info.node, wi.node);
		assert_int_equal(s1->worker[i].info.plan_pu, wi.plan_pu);
		assert_int_equal(s1->worker[i].info.l3, wi.l3);
	}

	/* M more at normal level: exactly those between s1 and s2. */
	refused = spawn_n(rt, MOIRAI_PRIO_NORMAL, m, h);
	join_n(h, m);
	s2 = snap_of(mon);
	seq = s2->seq;
	moirai_rt_snapshot_free(s2);
	s2 = snap_after(mon, seq + 4);
	assert_true(s2->time_ns > s1->time_ns);
	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		for (int k = 0; k < 2; k++) {
			struct moirai_hist d;
			uint64_t want_n = moirai_prio_from_index(l) == MOIRAI_PRIO_NORMAL ? m : 0;

			assert_int_equal(moirai_rt_snapshot_latency(
						 s1, s2, moirai_prio_from_index(l), k, &d),
					 0);
			assert_int_equal(moirai_hist_count(&d), want_n);
			/* The difference's percentiles lie inside its own range. */
			if (want_n) {
				uint64_t p99 = moirai_hist_percentile(&d, 99);

				assert_true(p99 >= moirai_hist_min(&d) &&
					    p99 <= moirai_hist_max(&d));
			}
		}
	}
	assert_int_equal(s2->rt.spawned - base->rt.spawned, 4 * n + m);
	moirai_rt_snapshot_free(base);
	moirai_rt_snapshot_free(s0);
	moirai_rt_snapshot_free(s1);

	/* Destroy unlinks; the open handle still reads the last snapshot. */
	tick_all(rt, tick, workers);
	assert_int_equal(moirai_rt_monitor_check(mon), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	assert_false(seg_exists(want));
	assert_int_equal(moirai_rt_monitor_check(mon), -ENOENT);
	s1 = snap_of(mon);
	assert_true(s1->seq >= s2->seq);
	moirai_rt_snapshot_free(s1);
	moirai_rt_snapshot_free(s2);
	moirai_rt_monitor_close(mon);
	free(h);
}

/* ---- names, option, idle, stopping --------------------------------------- */

static void test_names(void **state)
{
	struct moirai_rt_config flag = { .flags = MOIRAI_RT_F_STATS };
	struct moirai_rt *a, *b, *c, *plain;
	char na[80], nb[80], want[40], buf[80];
	struct moirai_rt_segment segs[16];
	int n, seen = 0;

	(void)state;
	/* The option alone turns it on, named after the pid. */
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_RT_STATS, "1"), 0);
	a = make_rt(NULL);
	b = make_rt(&flag);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_RT_STATS, ""), 0);
	plain = make_rt(NULL);
	assert_int_equal(moirai_rt_stats_name(plain, na, sizeof(na)), -ENOENT);
	assert_int_equal(moirai_rt_destroy(plain), 0);
	assert_int_equal(moirai_rt_stats_name(a, na, sizeof(na)), 0);
	assert_int_equal(moirai_rt_stats_name(b, nb, sizeof(nb)), 0);
	snprintf(want, sizeof(want), "%d", (int)getpid());
	assert_string_equal(na, want);
	snprintf(want, sizeof(want), "%d.1", (int)getpid());
	assert_string_equal(nb, want);
	/* One byte short of the name and its NUL: the pid has 1 to 7 digits
	 * (pid_max 32768 here, so a fixed 4-byte buffer fit a 3-digit pid). */
	assert_int_equal(moirai_rt_stats_name(a, buf, strlen(na)), -ENOSPC);
	assert_int_equal(moirai_rt_stats_name(a, buf, strlen(na) + 1), 0);
	assert_string_equal(buf, na);
	n = moirai_rt_monitor_list(segs, 16);
	assert_true(n >= 2 && n <= 16);
	for (int i = 0; i < n; i++) {
		if (strcmp(segs[i].name, na) && strcmp(segs[i].name, nb))
			continue;
		seen++;
		assert_int_equal(segs[i].state, MOIRAI_RT_SEGMENT_LIVE);
		assert_int_equal(segs[i].pid, getpid());
		assert_int_equal(segs[i].workers, moirai_rt_worker_count(a));
		assert_string_equal(segs[i].comm, "test_rt_pub");
		assert_string_equal(segs[i].detail, "");
		if (i)
			assert_true(strcmp(segs[i - 1].name, segs[i].name) < 0); /* sorted */
	}
	assert_int_equal(seen, 2);
	/* A live segment is never cleaned. */
	assert_int_equal(moirai_rt_monitor_clean(na), -EBUSY);
	/* The first name comes back once its runtime is gone. */
	assert_int_equal(moirai_rt_destroy(a), 0);
	assert_false(seg_exists(na));
	c = make_rt(&flag);
	assert_int_equal(moirai_rt_stats_name(c, buf, 1), -ENOSPC);
	assert_int_equal(moirai_rt_stats_name(c, na, sizeof(na)), 0);
	snprintf(want, sizeof(want), "%d", (int)getpid());
	assert_string_equal(na, want);
	assert_int_equal(moirai_rt_destroy(b), 0);
	assert_int_equal(moirai_rt_destroy(c), 0);
	assert_false(seg_exists(nb) || seg_exists(na));
}

static void test_bad_config(void **state)
{
	static const char *const bad_names[] = { "",	 ".hidden", "a/b",  "x y",
						 "n\n1", "star*",   "../up" };
	char long_name[80], name[80];
	struct moirai_rt_config cfg = { 0 };
	struct moirai_rt *rt = NULL, *rt2 = NULL;
	char p[512];
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		cfg.stats_name = bad_names[i];
		assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
		assert_non_null(strstr(moirai_last_error(), "stats name"));
		assert_null(rt);
	}
	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	cfg.stats_name = long_name;
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
	cfg = (struct moirai_rt_config){ .flags = MOIRAI_RT_F_STATS, .stats_period_ms = 60001 };
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "stats_period_ms"));

	/* A live name is never taken over. */
	snprintf(name, sizeof(name), "taken-%d", (int)getpid());
	cfg = (struct moirai_rt_config){ .stats_name = name };
	rt = make_rt(&cfg);
	assert_int_equal(moirai_rt_create(&cfg, &rt2), -EEXIST);
	assert_non_null(strstr(moirai_last_error(), "live segment"));
	assert_int_equal(moirai_rt_destroy(rt), 0);
	/* Nor a file that is not a stats segment. */
	seg_path(name, p, sizeof(p));
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a segment\n", 14), 14);
	close(fd);
	assert_int_equal(moirai_rt_create(&cfg, &rt2), -EEXIST);
	assert_non_null(strstr(moirai_last_error(), "not a valid stats segment"));
	assert_int_equal(unlink(p), 0);

	/* Asked for by the option only, a bad name runs without publishing. */
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_RT_STATS, "bad/name"), 0);
	rt = make_rt(NULL);
	assert_int_equal(moirai_rt_stats_name(rt, name, sizeof(name)), -ENOENT);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_RT_STATS, ""), 0);
	/* Unknown flags are still refused. */
	cfg = (struct moirai_rt_config){ .flags = 0x80 };
	assert_int_equal(moirai_rt_create(&cfg, &rt), -EINVAL);
}

static int quick_task(void *arg)
{
	(void)arg;
	return 0;
}

static void test_idle_and_stopping(void **state)
{
	struct moirai_rt_config cfg = { .flags = MOIRAI_RT_F_STATS, .stats_period_ms = 2 };
	struct moirai_rt_snapshot *s = NULL, *t;
	struct moirai_rt_monitor *mon;
	struct moirai_task *h;
	struct moirai_rt *rt;
	char name[80];
	uint64_t end, seq, before = 0, after = 0;
	bool exited;

	(void)state;
	rt = make_rt(&cfg);
	assert_int_equal(moirai_rt_stats_name(rt, name, sizeof(name)), 0);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	/* Idle: every worker parks, a last snapshot says so, publishing stops. */
	end = moirai_now_ns() + 5000 * MS;
	do {
		moirai_rt_snapshot_free(s);
		sleep_ms(2);
		s = snap_of(mon);
	} while (!s->idle && moirai_now_ns() < end);
	assert_true(s->idle);
	for (int i = 0; i < s->workers; i++)
		assert_int_equal(s->worker[i].state, MOIRAI_RT_WORKER_PARKED);
	seq = s->seq;
	sleep_ms(40); /* twenty periods */
	t = snap_of(mon);
	if (!TEST_UNDER_TSAN) /* TSan's own threads may wake a worker */
		assert_int_equal(t->seq, seq);
	moirai_rt_snapshot_free(t);
	/* Work wakes it and publishing resumes; idle snapshots may come
	 * between the tasks, but once every worker parked for good the last
	 * one holds all of the work (within a few periods), and then
	 * publishing stops again. */
	for (int i = 0; i < s->workers; i++)
		before += s->worker[i].stats.tasks_run[1];
	for (int i = 0; i < 50; i++) {
		struct moirai_spawn_opts o = { .prio = MOIRAI_PRIO_HIGH };

		assert_int_equal(moirai_rt_spawn(rt, quick_task, NULL, &o, &h), 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	}
	end = moirai_now_ns() + 5000 * MS;
	for (;;) {
		t = snap_of(mon);
		after = 0;
		for (int i = 0; i < t->workers; i++)
			after += t->worker[i].stats.tasks_run[1];
		assert_true(after - before <= 50);
		if ((t->idle && after - before == 50) || moirai_now_ns() > end)
			break;
		moirai_rt_snapshot_free(t);
		sleep_ms(2);
	}
	assert_true(t->idle && t->seq > seq);
	assert_int_equal(after - before, 50);
	seq = t->seq;
	moirai_rt_snapshot_free(t);
	sleep_ms(40);
	t = snap_of(mon);
	if (!TEST_UNDER_TSAN)
		assert_int_equal(t->seq, seq);
	moirai_rt_snapshot_free(t);
	moirai_rt_snapshot_free(s);
	s = NULL;
	/* Stopped but not destroyed: stopping, every worker exited. */
	assert_true(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER) >= 0);
	end = moirai_now_ns() + 5000 * MS;
	do {
		moirai_rt_snapshot_free(s);
		sleep_ms(2);
		s = snap_of(mon);
		exited = s->rt.stopping;
		for (int i = 0; i < s->workers; i++)
			exited = exited && s->worker[i].state == MOIRAI_RT_WORKER_EXITED;
	} while (!exited && moirai_now_ns() < end);
	assert_true(exited);
	moirai_rt_snapshot_free(s);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	moirai_rt_monitor_close(mon);
}

/* ---- stale segments -------------------------------------------------------- */

struct pub_child {
	pid_t pid;
	char name[80];
};

/* A child process with a publishing runtime (@name NULL: named after its
 * pid), alive until killed. */
static void start_publisher(struct pub_child *c, const char *name)
{
	struct moirai_rt_config cfg = { .flags = MOIRAI_RT_F_STATS,
					.stats_name = name,
					.stats_period_ms = 5 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		struct moirai_rt *rt;
		char n[80] = "";

		child_dies_with_parent();
		close(p[0]);
		if (moirai_rt_create(&cfg, &rt) || moirai_rt_stats_name(rt, n, sizeof(n)))
			_exit(90);
		if (write(p[1], n, sizeof(n)) != (ssize_t)sizeof(n))
			_exit(91);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], c->name, sizeof(c->name)), (ssize_t)sizeof(c->name));
	close(p[0]);
}

static void kill_publisher(struct pub_child *c, bool reap)
{
	kill(c->pid, SIGKILL);
	if (reap) {
		assert_int_equal(waitpid(c->pid, NULL, 0), c->pid);
	} else {
		/* Until the kernel has made it a zombie. */
		char path[64], buf[512];
		uint64_t end = moirai_now_ns() + 5000 * MS;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
		for (;;) {
			FILE *f = fopen(path, "r");
			char *rp = NULL;

			if (f) {
				if (fgets(buf, sizeof(buf), f))
					rp = strrchr(buf, ')');
				fclose(f);
			}
			if ((rp && rp[2] == 'Z') || moirai_now_ns() > end)
				break;
			sleep_ms(1);
		}
	}
}

static void test_stale_killed(void **state)
{
	struct moirai_rt_segment seg, list[64];
	struct moirai_rt_monitor *mon;
	struct moirai_rt_snapshot *s;
	struct pub_child c;
	char name[64];
	int n, found = 0;

	(void)state;
	snprintf(name, sizeof(name), "killed-%d", (int)getpid());
	start_publisher(&c, name);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_LIVE);
	assert_int_equal(seg.pid, c.pid);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	assert_int_equal(moirai_rt_monitor_check(mon), 0);

	/* Killed, not yet reaped: already stale. */
	kill_publisher(&c, false);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_STALE);
	assert_non_null(strstr(seg.detail, "not yet reaped"));
	assert_int_equal(waitpid(c.pid, NULL, 0), c.pid);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_STALE);
	assert_non_null(strstr(seg.detail, "is gone"));
	n = moirai_rt_monitor_list(list, 64);
	assert_true(n >= 1 && n <= 64);
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i].name, name)) {
			found++;
			assert_int_equal(list[i].state, MOIRAI_RT_SEGMENT_STALE);
			assert_int_equal(list[i].pid, c.pid);
		}
	assert_int_equal(found, 1);
	/* Its last snapshot is still readable; the handle knows it is dead. */
	assert_int_equal(moirai_rt_monitor_check(mon), -ESRCH);
	s = snap_of(mon);
	assert_int_equal(s->pid, c.pid);
	moirai_rt_snapshot_free(s);
	moirai_rt_monitor_close(mon);
	/* --clean removes it, once. */
	assert_int_equal(moirai_rt_monitor_clean(name), 0);
	assert_false(seg_exists(name));
	assert_int_equal(moirai_rt_monitor_clean(name), -ENOENT);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), -ENOENT);
}

static void test_stale_swept(void **state)
{
	struct moirai_rt_config cfg = { .flags = MOIRAI_RT_F_STATS };
	struct moirai_rt_segment seg;
	struct pub_child c;
	struct moirai_rt *rt;
	char mine[80];

	(void)state;
	/* Named after its pid, killed: the next runtime here removes it. */
	start_publisher(&c, NULL);
	kill_publisher(&c, true);
	assert_int_equal(moirai_rt_monitor_stat(c.name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_STALE);
	rt = make_rt(&cfg);
	assert_false(seg_exists(c.name));
	assert_int_equal(moirai_rt_stats_name(rt, mine, sizeof(mine)), 0);
	assert_true(seg_exists(mine));
	assert_int_equal(moirai_rt_destroy(rt), 0);

	/* A stale segment under a given name is reclaimed by a runtime of that name. */
	start_publisher(&c, "reclaim-me");
	kill_publisher(&c, true);
	cfg.stats_name = "reclaim-me";
	rt = make_rt(&cfg);
	assert_int_equal(moirai_rt_monitor_stat("reclaim-me", &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_LIVE);
	assert_int_equal(seg.pid, getpid());
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static pid_t dead_pid(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void forge(const char *name, void (*tweak)(struct rt_pub_hdr *h, void *arg), void *arg)
{
	struct image im = make_image(name, 1);

	if (tweak)
		tweak(hdr_of(&im), arg);
	write_image(name, im.buf, im.size, 0644);
	free(im.buf);
}

static void tw_start(struct rt_pub_hdr *h, void *arg)
{
	(void)arg;
	h->start_time++; /* our pid, another process */
}

static void tw_boot(struct rt_pub_hdr *h, void *arg)
{
	(void)arg;
	h->boot_id[0] = h->boot_id[0] == '0' ? '1' : '0';
}

static void tw_ns(struct rt_pub_hdr *h, void *arg)
{
	(void)arg;
	h->pidns++;
}

static void tw_foreign(struct rt_pub_hdr *h, void *arg)
{
	h->pid = *(pid_t *)arg;
	if (geteuid() == 0)
		h->uid = 65534; /* chowned below */
}

static void test_stale_identity(void **state)
{
	struct moirai_rt_config cfg = { .flags = MOIRAI_RT_F_STATS };
	struct moirai_rt_segment seg;
	struct moirai_rt *rt;
	char name[64], p[512], reap[512];
	pid_t dead = dead_pid();

	(void)state;
	snprintf(name, sizeof(name), "reused-%d", (int)getpid());
	forge(name, tw_start, NULL);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_STALE);
	assert_non_null(strstr(seg.detail, "another process"));
	assert_int_equal(moirai_rt_monitor_clean(name), 0);

	snprintf(name, sizeof(name), "reboot-%d", (int)getpid());
	forge(name, tw_boot, NULL);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_STALE);
	assert_non_null(strstr(seg.detail, "booted"));
	assert_int_equal(moirai_rt_monitor_clean(name), 0);

	snprintf(name, sizeof(name), "pidns-%d", (int)getpid());
	forge(name, tw_ns, NULL);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_UNKNOWN);
	assert_int_equal(moirai_rt_monitor_clean(name), -EBUSY);
	seg_path(name, p, sizeof(p));
	assert_int_equal(unlink(p), 0);

	/* Ours and alive (this process): live, never cleaned. */
	snprintf(name, sizeof(name), "alive-%d", (int)getpid());
	forge(name, NULL, NULL);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_LIVE);
	assert_int_equal(moirai_rt_monitor_clean(name), -EBUSY);
	seg_path(name, p, sizeof(p));
	assert_int_equal(unlink(p), 0);

	/* Stale but another user's: neither --clean nor a sweep touches it;
	 * a stale leftover of an interrupted removal is swept. */
	snprintf(name, sizeof(name), "foreign-%d", (int)getpid());
	forge(name, tw_foreign, &dead);
	seg_path(name, p, sizeof(p));
	snprintf(reap, sizeof(reap), "%s/%s%d.0", dir, RT_PUB_REAP_PREFIX, (int)dead);
	{
		struct image im = make_image(name, 1);
		int fd = open(reap, O_CREAT | O_EXCL | O_WRONLY, 0644);

		hdr_of(&im)->pid = dead;
		assert_true(fd >= 0);
		assert_int_equal(write(fd, im.buf, im.size), (ssize_t)im.size);
		close(fd);
		free(im.buf);
	}
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(moirai_rt_monitor_clean(name), -EPERM);
	}
	rt = make_rt(&cfg);
	assert_int_equal(access(reap, F_OK), -1);
	assert_int_equal(access(p, F_OK), geteuid() == 0 ? 0 : -1);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	unlink(p);

	/* Garbage under this process's own pid name is a leftover: reclaimed. */
	snprintf(name, sizeof(name), "%d", (int)getpid());
	write_image(name, "junk", 4, 0644);
	rt = make_rt(&cfg);
	assert_int_equal(moirai_rt_monitor_stat(name, &seg), 0);
	assert_int_equal(seg.state, MOIRAI_RT_SEGMENT_LIVE);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	assert_false(seg_exists(name));
}

/* ---- negative ------------------------------------------------------------ */

static void test_negative(void **state)
{
	struct moirai_rt_monitor *mon = (void *)1;
	struct moirai_rt_snapshot *s = (void *)1, a, b;
	struct moirai_rt_segment seg;
	struct moirai_hist h;
	char buf[8];
	char name[80];

	(void)state;
	assert_int_equal(moirai_rt_monitor_open(NULL, -1, &mon), -EINVAL);
	assert_null(mon);
	assert_int_equal(moirai_rt_monitor_open("ok", -1, NULL), -EINVAL);
	assert_int_equal(moirai_rt_monitor_open("a/b", -1, &mon), -EINVAL);
	assert_int_equal(moirai_rt_monitor_open(".x", -1, &mon), -EINVAL);
	assert_int_equal(moirai_rt_monitor_open("", -1, &mon), -EINVAL);
	assert_int_equal(moirai_rt_monitor_open("ok", -5, &mon), -EINVAL);
	assert_int_equal(moirai_rt_monitor_open("no-such-segment", -1, &mon), -ENOENT);
	assert_non_null(strstr(moirai_last_error(), "no such segment"));
	assert_int_equal(moirai_rt_monitor_read(NULL, &s), -EINVAL);
	assert_int_equal(moirai_rt_monitor_check(NULL), -EINVAL);
	moirai_rt_monitor_close(NULL);
	moirai_rt_snapshot_free(NULL);
	assert_int_equal(moirai_rt_stats_name(NULL, buf, sizeof(buf)), -EINVAL);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(moirai_rt_snapshot_latency(NULL, NULL, 0, 0, &h), -EINVAL);
	assert_int_equal(moirai_rt_snapshot_latency(NULL, &a, 0, 0, NULL), -EINVAL);
	assert_int_equal(moirai_rt_snapshot_latency(NULL, &a, 7, 0, &h), -EINVAL);
	assert_int_equal(moirai_rt_snapshot_latency(NULL, &a, 0, 2, &h), -EINVAL);
	assert_int_equal(moirai_rt_snapshot_latency(NULL, &a, 0, 0, &h), 0);
	b.pid = 1;
	assert_int_equal(moirai_rt_snapshot_latency(&b, &a, 0, 0, &h), -EINVAL);
	b.pid = 0;
	b.seq = 4;
	assert_int_equal(moirai_rt_snapshot_latency(&b, &a, 0, 0, &h), -EINVAL);
	assert_int_equal(moirai_rt_snapshot_latency(&a, &b, 0, 0, &h), 0);
	assert_int_equal(moirai_rt_monitor_list(NULL, 3), -EINVAL);
	assert_int_equal(moirai_rt_monitor_list(&seg, -1), -EINVAL);
	assert_true(moirai_rt_monitor_list(NULL, 0) >= 0);
	assert_int_equal(moirai_rt_monitor_stat("a/b", &seg), -EINVAL);
	assert_int_equal(moirai_rt_monitor_stat("ok", NULL), -EINVAL);
	assert_int_equal(moirai_rt_monitor_stat("no-such-segment", &seg), -ENOENT);
	assert_int_equal(moirai_rt_monitor_clean("no-such-segment"), -ENOENT);
	assert_int_equal(moirai_rt_monitor_clean("../x"), -EINVAL);
	assert_int_equal(moirai_rt_monitor_clean(NULL), -EINVAL);
	/* A name of 64 characters is fine, 65 is not. */
	memset(name, 'n', 64);
	name[64] = '\0';
	assert_int_equal(moirai_rt_monitor_open(name, -1, &mon), -ENOENT);
}

/* ---- the publisher for tests/tools/test_top.sh ---------------------------- */

static volatile sig_atomic_t publish_stop;

static void on_term(int sig)
{
	(void)sig;
	publish_stop = 1;
}

static int publish_main(double secs)
{
	struct moirai_rt_config cfg = { .flags = MOIRAI_RT_F_STATS, .stats_period_ms = 20 };
	uint64_t end = moirai_now_ns() + (uint64_t)(secs * 1e9);
	struct moirai_rt *rt;
	char name[80];

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (moirai_rt_create(&cfg, &rt) || moirai_rt_stats_name(rt, name, sizeof(name))) {
		fprintf(stderr, "test_rt_pub --publish: %s\n", moirai_last_error());
		return 1;
	}
	printf("%s\n", name);
	fflush(stdout);
	while (!publish_stop && (secs <= 0 || moirai_now_ns() < end)) {
		for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
			struct moirai_spawn_opts o = { .prio = moirai_prio_from_index(l) };

			for (int i = 0; i < 20; i++)
				if (moirai_rt_spawn(rt, quick_task, NULL, &o, NULL) == -EAGAIN)
					sched_yield();
		}
		sleep_ms(5);
	}
	return moirai_rt_destroy(rt) ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_counts),   cmocka_unit_test(test_names),
		cmocka_unit_test(test_bad_config),     cmocka_unit_test(test_idle_and_stopping),
		cmocka_unit_test(test_stale_killed),   cmocka_unit_test(test_stale_swept),
		cmocka_unit_test(test_stale_identity), cmocka_unit_test(test_negative),
	};
	int rc;

	if (argc == 3 && strcmp(argv[1], "--publish") == 0)
		return publish_main(atof(argv[2]));
	if (setup_dir("pub"))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	remove_dir();
	return rc;
}
