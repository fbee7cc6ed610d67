/*
 * The published stats segment (moirai/rt.h "Published stats", rt/rt_pub.c,
 * rt/rt_monitor.c), read with the same reader moirai-top uses:
 *  - exact counts: N tasks at each level, then the segment says N per level
 *    (summed and per worker, equal to the in-process stats), N waits and runs
 *    per level in the histograms, M more between two snapshots;
 *  - naming: after the pid, .1 for a second runtime, the option, bad names
 *    and periods refused, a live name never taken, the idle and stopping
 *    states, destroy unlinks;
 *  - hostile writers (forked children): wrong magic, version, sizes, owner,
 *    mode, file type, random bytes and random mutations, truncation while
 *    open, a sequence kept odd, a writer rewriting as fast as it can (no
 *    torn copy is ever returned), identity changed while open;
 *  - stale segments: a SIGKILLed publisher is listed as stale (also as an
 *    unreaped zombie), cleaned only by its owner, swept by the next runtime;
 *    pid reuse, another boot, another pid namespace;
 *  - the negative group.
 * Every segment lives in a private directory (the MOIRAI_RT_STATS_DIR
 * option), so concurrent test runs never see each other's files.
 *
 * With "--publish SECONDS" the binary is the publisher the moirai-top CLI
 * test (tests/tools/test_top.sh) watches instead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "moirai.h"
#include "rt_pub.h"
#include "testutil.h"

#define MS 1000000ull

static char dir[256];

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * In every forked child: die with the test.  A failed assertion leaves
 * the test function at once, before it could kill its children.
 */
static pid_t test_pid;

static void child_dies_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != test_pid)
		_exit(0);
}

static void seg_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s", dir, MOIRAI_RT_STATS_PREFIX, name);
}

static bool seg_exists(const char *name)
{
	char p[512];

	seg_path(name, p, sizeof(p));
	return access(p, F_OK) == 0;
}

static struct moirai_rt *make_rt(const struct moirai_rt_config *cfg)
{
	struct moirai_rt *rt = NULL;
	int rc = moirai_rt_create(cfg, &rt);

	if (rc)
		fail_msg("moirai_rt_create: %d (%s)", rc, moirai_last_error());
	return rt;
}

static struct moirai_rt_snapshot *snap_of(struct moirai_rt_monitor *mon)
{
	struct moirai_rt_snapshot *s = NULL;
	int rc = moirai_rt_monitor_read(mon, &s);

	if (rc)
		fail_msg("moirai_rt_monitor_read: %d (%s)", rc, moirai_last_error());
	return s;
}

/* The first snapshot whose seq is at least @seq (bounded: 10 s). */
static struct moirai_rt_snapshot *snap_after(struct moirai_rt_monitor *mon, uint64_t seq)
{
	uint64_t end = moirai_now_ns() + 10000 * MS;

	for (;;) {
		struct moirai_rt_snapshot *s = snap_of(mon);

		if (s->seq >= seq)
			return s;
		moirai_rt_snapshot_free(s);
		if (moirai_now_ns() > end)
			fail_msg("no publish reached seq %llu in 10 s", (unsigned long long)seq);
		sleep_ms(2);
	}
}

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

/* Register (or, with *slot set, unregister) a 2 ms poller on the worker
 * the task runs on.  From the worker itself: the registration from a
 * foreign thread waits on a request on the caller's stack, which the
 * worker still touches after the caller may have returned (TSan reports
 * it; see the report of the topic branch). */
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
	char na[80], nb[80], want[40], buf[4];
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
	assert_int_equal(moirai_rt_stats_name(a, buf, sizeof(buf)), -ENOSPC);
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

/* ---- forged segments ------------------------------------------------------ */

struct image {
	unsigned char *buf;
	size_t size;
};

static struct rt_pub_hdr *hdr_of(struct image *im)
{
	return (struct rt_pub_hdr *)(void *)im->buf;
}

/* A valid segment of this process, @nw workers, some counts and latencies. */
static struct image make_image(const char *name, uint32_t nw)
{
	struct image im = { NULL, rt_pub_seg_size(nw) };
	struct rt_pub_hdr *h;
	struct rt_proc_id id;

	assert_int_equal(rt_proc_self(&id), 0);
	im.buf = calloc(1, im.size);
	assert_non_null(im.buf);
	h = hdr_of(&im);
	h->magic = RT_PUB_MAGIC;
	h->version = RT_PUB_VERSION;
	h->hdr_size = RT_PUB_HDR_SIZE;
	h->worker_size = RT_PUB_WORKER_SIZE;
	h->hist_size = sizeof(struct moirai_hist);
	h->levels = RT_PUB_LEVELS;
	h->nworkers = nw;
	h->workers_off = RT_PUB_HDR_SIZE;
	h->hists_off = rt_pub_hists_off(nw);
	h->seg_size = im.size;
	h->pid = id.pid;
	h->uid = (uint32_t)geteuid();
	h->start_time = id.start_time;
	h->pidns = id.pidns;
	memcpy(h->boot_id, id.boot_id, sizeof(h->boot_id));
	snprintf(h->comm, sizeof(h->comm), "forged");
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->period_ms = 100;
	h->seq = 2;
	h->publishes = 1;
	h->workers = nw;
	h->spawned = 42;
	for (uint32_t i = 0; i < nw; i++) {
		struct rt_pub_worker *w =
			(void *)(im.buf + RT_PUB_HDR_SIZE + (size_t)i * RT_PUB_WORKER_SIZE);

		w->worker = (int32_t)i;
		w->pu = (int32_t)i;
		w->state = MOIRAI_RT_WORKER_SPINNING;
		w->level = -1;
		w->tasks_run[0] = 7;
	}
	for (unsigned k = 0; k < RT_PUB_HISTS; k++) {
		struct moirai_hist *hh =
			(void *)(im.buf + h->hists_off + k * sizeof(struct moirai_hist));

		moirai_hist_record_n(hh, 1000 + k, 5);
	}
	return im;
}

static void write_image(const char *name, const void *buf, size_t size, mode_t mode)
{
	char p[512];
	int fd;

	seg_path(name, p, sizeof(p));
	unlink(p);
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0 || fchmod(fd, mode) != 0 || (size && write(fd, buf, size) != (ssize_t)size))
		_exit(99);
	close(fd);
}

/* Run @fn in a forked child (the hostile writer) and wait for it. */
static void in_child(void (*fn)(void *), void *arg)
{
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_dies_with_parent();
		fn(arg);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

enum mut {
	M_RANDOM,
	M_ZERO,
	M_MAGIC,
	M_VERSION,
	M_RECSIZE,
	M_NO_WORKERS,
	M_MANY_WORKERS,
	M_OFFSETS,
	M_SAYS_MORE,
	M_LONGER,
	M_SHORT,
	M_EMPTY,
	M_PID0,
	M_UID,
	M_NAME,
	M_MODE,
	M_OWNER,
	M__COUNT
};

static const struct {
	const char *what;
	int rc;
	const char *msg;
} mut_expect[M__COUNT] = {
	[M_RANDOM] = { "random bytes", -EPROTO, "bad magic" },
	[M_ZERO] = { "all zero", -EPROTO, "bad magic" },
	[M_MAGIC] = { "wrong magic", -EPROTO, "bad magic" },
	[M_VERSION] = { "version 2", -EPROTO, "layout version 2" },
	[M_RECSIZE] = { "other record size", -EPROTO, "record sizes" },
	[M_NO_WORKERS] = { "no workers", -EBADMSG, "worker count 0" },
	[M_MANY_WORKERS] = { "100000 workers", -EBADMSG, "worker count 100000" },
	[M_OFFSETS] = { "offsets", -EBADMSG, "inconsistent" },
	[M_SAYS_MORE] = { "header says 3 workers, file holds 2", -EBADMSG, "truncated" },
	[M_LONGER] = { "file longer than its header says", -EBADMSG, "wrong size" },
	[M_SHORT] = { "100-byte file", -EBADMSG, "truncated" },
	[M_EMPTY] = { "empty file", -EBADMSG, "truncated" },
	[M_PID0] = { "pid 0", -EBADMSG, "pid 0" },
	[M_UID] = { "header uid differs from the owner", -EBADMSG, "header says uid" },
	[M_NAME] = { "header names another segment", -EBADMSG, "names segment" },
	[M_MODE] = { "mode 0666", -EPERM, "writable by group or others" },
	[M_OWNER] = { "owned by uid 65534", -EPERM, "owned by uid 65534" },
};

struct mut_arg {
	enum mut m;
	char name[64];
};

static void write_mutated(void *arg)
{
	struct mut_arg *a = arg;
	struct image im = make_image(a->name, 2);
	struct rt_pub_hdr *h = hdr_of(&im);
	size_t size = im.size;
	mode_t mode = 0644;
	unsigned char *big;

	srand((unsigned)getpid());
	switch (a->m) {
	case M_RANDOM:
		for (size_t i = 0; i < size; i++)
			im.buf[i] = (unsigned char)rand();
		if (h->magic == RT_PUB_MAGIC)
			h->magic++;
		break;
	case M_ZERO: memset(im.buf, 0, size); break;
	case M_MAGIC: h->magic ^= 1; break;
	case M_VERSION: h->version = 2; break;
	case M_RECSIZE: h->worker_size = 256; break;
	case M_NO_WORKERS: h->nworkers = 0; break;
	case M_MANY_WORKERS: h->nworkers = 100000; break;
	case M_OFFSETS: h->hists_off += 64; break;
	case M_SAYS_MORE:
		h->nworkers = 3;
		h->hists_off = rt_pub_hists_off(3);
		h->seg_size = rt_pub_seg_size(3);
		break;
	case M_LONGER:
		big = calloc(1, size + 4096);
		memcpy(big, im.buf, size);
		free(im.buf);
		im.buf = big;
		size += 4096;
		break;
	case M_SHORT: size = 100; break;
	case M_EMPTY: size = 0; break;
	case M_PID0: h->pid = 0; break;
	case M_UID: h->uid = 12345; break;
	case M_NAME: snprintf(h->name, sizeof(h->name), "someone-else"); break;
	case M_MODE: mode = 0666; break;
	case M_OWNER: h->uid = 65534; break;
	default: break;
	}
	write_image(a->name, im.buf, size, mode);
	if (a->m == M_OWNER) {
		char p[512];

		seg_path(a->name, p, sizeof(p));
		if (chown(p, 65534, 65534) != 0)
			_exit(98);
	}
	free(im.buf);
}

static void test_hostile_files(void **state)
{
	(void)state;
	for (int m = 0; m < M__COUNT; m++) {
		struct mut_arg a = { .m = (enum mut)m };
		struct moirai_rt_monitor *mon = (void *)1;
		struct moirai_rt_segment seg;
		char p[512];

		if (m == M_OWNER && geteuid() != 0)
			continue; /* chown needs root */
		snprintf(a.name, sizeof(a.name), "hostile-%d-%d", (int)getpid(), m);
		in_child(write_mutated, &a);
		if (moirai_rt_monitor_open(a.name, MOIRAI_RT_MONITOR_UID_SELF, &mon) !=
		    mut_expect[m].rc)
			fail_msg("%s: got '%s', want %d", mut_expect[m].what, moirai_last_error(),
				 mut_expect[m].rc);
		assert_null(mon);
		if (!strstr(moirai_last_error(), mut_expect[m].msg))
			fail_msg("%s: message '%s' lacks '%s'", mut_expect[m].what,
				 moirai_last_error(), mut_expect[m].msg);
		/* Listed and described as invalid (the owner case: by anyone). */
		assert_int_equal(moirai_rt_monitor_stat(a.name, &seg), 0);
		assert_int_equal(seg.state, m == M_OWNER ? MOIRAI_RT_SEGMENT_STALE
							 : MOIRAI_RT_SEGMENT_INVALID);
		/* Never cleaned: not ours, or not a valid segment. */
		assert_int_equal(moirai_rt_monitor_clean(a.name), m == M_OWNER ? -EPERM : -EPROTO);
		seg_path(a.name, p, sizeof(p));
		assert_int_equal(unlink(p), 0);
	}
}

static void test_hostile_file_types(void **state)
{
	struct moirai_rt_monitor *mon;
	char p[512], name[64], target[512];
	uint64_t t0;

	(void)state;
	/* A FIFO under the name: refused at once (O_NONBLOCK), never waited on. */
	snprintf(name, sizeof(name), "fifo-%d", (int)getpid());
	seg_path(name, p, sizeof(p));
	assert_int_equal(mkfifo(p, 0644), 0);
	t0 = moirai_now_ns();
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), -EPERM);
	assert_non_null(strstr(moirai_last_error(), "not a regular file"));
	assert_true(moirai_now_ns() - t0 < 1000 * MS);
	assert_int_equal(unlink(p), 0);
	/* A directory. */
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), -EPERM);
	assert_int_equal(rmdir(p), 0);
	/* A symlink to a valid segment: not followed. */
	snprintf(name, sizeof(name), "real-%d", (int)getpid());
	{
		struct image im = make_image(name, 1);

		write_image(name, im.buf, im.size, 0644);
		free(im.buf);
	}
	seg_path(name, target, sizeof(target));
	snprintf(name, sizeof(name), "link-%d", (int)getpid());
	seg_path(name, p, sizeof(p));
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), -EPERM);
	assert_non_null(strstr(moirai_last_error(), "symbolic link"));
	assert_int_equal(unlink(p), 0);
	/* The real one opens (it names itself real-PID). */
	snprintf(name, sizeof(name), "real-%d", (int)getpid());
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	moirai_rt_monitor_close(mon);
	/* Another owner is refused when the caller names the owner it expects. */
	assert_int_equal(moirai_rt_monitor_open(name, (long)geteuid() + 1, &mon), -EPERM);
	assert_int_equal(unlink(target), 0);
}

/* Garbage in the body: accepted, and every value clamped into range. */
static void write_garbage_body(void *arg)
{
	const char *name = arg;
	struct image im = make_image(name, 2);
	struct rt_pub_hdr *h = hdr_of(&im);
	struct rt_pub_worker *w = (void *)(im.buf + RT_PUB_HDR_SIZE);
	struct moirai_hist *hh = (void *)(im.buf + h->hists_off);

	w[0].state = 99;
	w[0].level = 77;
	w[0].running_ns = UINT64_MAX;
	w[0].pu = -5;
	w[1].level = -9;
	w[1].node = INT32_MIN;
	memcpy(h->comm, "ev\033[2Jil\n\x01\x7f\xff", 12);
	hh[0].buckets[10] = UINT64_MAX / 2;
	hh[0].buckets[1900] = UINT64_MAX / 2 + 7;
	hh[0].count = 3;
	hh[0].min_inv = 12345;
	hh[0].max = 1;
	memset(hh[1].buckets, 0, sizeof(hh[1].buckets));
	hh[1].count = 1000; /* count without buckets */
	hh[1].max = UINT64_MAX;
	write_image(name, im.buf, im.size, 0644);
	free(im.buf);
}

static void test_hostile_body(void **state)
{
	struct moirai_rt_monitor *mon;
	struct moirai_rt_snapshot *s;
	struct moirai_hist d;
	char name[64], p[512], buf[256];
	uint64_t p50;

	(void)state;
	snprintf(name, sizeof(name), "garbage-%d", (int)getpid());
	in_child(write_garbage_body, name);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	s = snap_of(mon);
	assert_int_equal(s->workers, 2);
	assert_true(s->worker[0].state <= MOIRAI_RT_WORKER_EXITED);
	assert_int_equal(s->worker[0].level, -1);
	assert_int_equal(s->worker[0].running_ns, 0);
	assert_int_equal(s->worker[0].info.pu, -1);
	assert_int_equal(s->worker[1].level, -1);
	assert_int_equal(s->worker[1].info.node, -1);
	for (const char *c = s->comm; *c; c++)
		assert_true(*c >= 0x20 && *c <= 0x7e);
	/* Counts saturate, min and max are moved inside the used buckets. */
	assert_int_equal(moirai_hist_count(&s->latency[0][0]), UINT64_MAX);
	assert_true(moirai_hist_min(&s->latency[0][0]) <= moirai_hist_max(&s->latency[0][0]));
	p50 = moirai_hist_percentile(&s->latency[0][0], 50);
	assert_true(p50 >= moirai_hist_min(&s->latency[0][0]) &&
		    p50 <= moirai_hist_max(&s->latency[0][0]));
	assert_int_equal(moirai_hist_format(&s->latency[0][0], buf, sizeof(buf)), 0);
	assert_int_equal(moirai_hist_count(&s->latency[0][1]), 0);
	assert_int_equal(moirai_hist_max(&s->latency[0][1]), 0);
	assert_int_equal(moirai_rt_snapshot_latency(s, s, MOIRAI_PRIO_CRITICAL, 0, &d), 0);
	assert_int_equal(moirai_hist_count(&d), 0);
	moirai_rt_snapshot_free(s);
	moirai_rt_monitor_close(mon);
	seg_path(name, p, sizeof(p));
	assert_int_equal(unlink(p), 0);
}

/* Random mutations anywhere: a clean error, or a snapshot in range. */
#define FUZZ_FILES 200

static void write_fuzz(void *arg)
{
	(void)arg;
	srand((unsigned)getpid() * 2654435761u);
	for (int f = 0; f < FUZZ_FILES; f++) {
		char name[64];
		struct image im;
		int flips = 1 + rand() % 16;

		snprintf(name, sizeof(name), "fz-%d-%d", (int)getppid(), f);
		im = make_image(name, 1 + (uint32_t)(rand() % 4));
		for (int i = 0; i < flips; i++) {
			/* Half in the header, where the checks are. */
			size_t at = rand() % 2 ? (size_t)rand() % RT_PUB_HDR_SIZE
					       : (size_t)rand() % im.size;

			im.buf[at] = (unsigned char)rand();
		}
		write_image(name, im.buf, im.size, 0644);
		free(im.buf);
	}
}

static void test_hostile_fuzz(void **state)
{
	int ok = 0, refused = 0;

	(void)state;
	in_child(write_fuzz, NULL);
	for (int f = 0; f < FUZZ_FILES; f++) {
		struct moirai_rt_monitor *mon;
		struct moirai_rt_snapshot *s;
		char name[64], p[512];
		int rc;

		snprintf(name, sizeof(name), "fz-%d-%d", (int)getpid(), f);
		moirai_clear_error();
		rc = moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon);
		if (rc == 0) {
			rc = moirai_rt_monitor_read(mon, &s);
			if (rc == 0) {
				assert_true(s->workers >= 1 && s->workers <= 4);
				for (int i = 0; i < s->workers; i++) {
					assert_true(s->worker[i].state <= MOIRAI_RT_WORKER_EXITED);
					assert_true(s->worker[i].level >= -1 &&
						    s->worker[i].level < MOIRAI_PRIO_LEVELS);
				}
				for (int k = 0; k < 2; k++)
					for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
						const struct moirai_hist *h = &s->latency[k][l];
						uint64_t q = moirai_hist_percentile(h, 99.9);

						if (moirai_hist_count(h))
							assert_true(q >= moirai_hist_min(h) &&
								    q <= moirai_hist_max(h));
					}
				moirai_rt_snapshot_free(s);
				ok++;
			}
			moirai_rt_monitor_close(mon);
		}
		if (rc) {
			refused++;
			assert_true(rc == -EPROTO || rc == -EBADMSG || rc == -EAGAIN ||
				    rc == -EPERM);
			assert_true(strlen(moirai_last_error()) > 0);
		}
		seg_path(name, p, sizeof(p));
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(ok + refused, FUZZ_FILES);
	assert_true(ok > 0 && refused > 0); /* both paths were exercised */
}

/* ---- a writer that keeps running -------------------------------------- */

enum live_cmd { C_TRUNCATE = 't', C_EMPTY = 'e', C_ODD = 'o', C_CHURN = 'c', C_IDENT = 'i' };

struct live {
	pid_t pid;
	int to_child, from_child;
	char name[64];
};

static void live_child(const char *name, int in, int out)
{
	struct image im = make_image(name, 2);
	struct rt_pub_hdr *h;
	char p[512], cmd;
	int fd;

	write_image(name, im.buf, im.size, 0644);
	seg_path(name, p, sizeof(p));
	fd = open(p, O_RDWR);
	h = mmap(NULL, im.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd < 0 || h == MAP_FAILED)
		_exit(97);
	if (write(out, "r", 1) != 1)
		_exit(96);
	while (read(in, &cmd, 1) == 1) {
		switch (cmd) {
		case C_TRUNCATE:
			if (ftruncate(fd, 100))
				_exit(95);
			break;
		case C_EMPTY:
			if (ftruncate(fd, 0))
				_exit(95);
			break;
		case C_ODD: __atomic_store_n(&h->seq, h->seq | 1, __ATOMIC_RELEASE); break;
		case C_IDENT: h->pid++; break;
		case C_CHURN:
			/* Publish without pause, every checked field the same value
			 * v: first the end of the file, then a pause, then the start
			 * (a reader copies from the start), so a copy that overlaps
			 * a publish and is not caught mixes two values. */
			if (write(out, "d", 1) != 1)
				_exit(96);
			for (uint64_t v = 1, end = moirai_now_ns() + 20000 * MS;
			     moirai_now_ns() < end; v++) {
				struct rt_pub_worker *w = (void *)((char *)h + RT_PUB_HDR_SIZE);
				struct moirai_hist *last =
					(void *)((char *)h + h->hists_off +
						 (RT_PUB_HISTS - 1) * sizeof(struct moirai_hist));
				uint64_t t;

				__atomic_store_n(&h->seq, 2 * v + 1, __ATOMIC_RELAXED);
				rt_pub_release_fence();
				__atomic_store_n(&last->buckets[MOIRAI_HIST_BUCKETS - 1], v,
						 __ATOMIC_RELAXED);
				for (int i = 0; i < 2; i++)
					for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++)
						__atomic_store_n(&w[i].tasks_run[l], v,
								 __ATOMIC_RELAXED);
				for (t = moirai_now_ns(); moirai_now_ns() - t < 20000;)
					;
				__atomic_store_n(&h->spawned, v, __ATOMIC_RELAXED);
				__atomic_store_n(&h->refused, v, __ATOMIC_RELAXED);
				__atomic_store_n(&h->seq, 2 * v + 2, __ATOMIC_RELEASE);
				for (t = moirai_now_ns(); moirai_now_ns() - t < 20000;)
					;
			}
		default: break;
		}
		if (write(out, "d", 1) != 1)
			_exit(96);
	}
	_exit(0);
}

static void live_start(struct live *l, const char *tag)
{
	int a[2], b[2];
	char c;

	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	snprintf(l->name, sizeof(l->name), "%s-%d", tag, (int)getpid());
	fflush(NULL);
	l->pid = fork();
	assert_true(l->pid >= 0);
	if (l->pid == 0) {
		child_dies_with_parent();
		close(a[1]);
		close(b[0]);
		live_child(l->name, a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	l->to_child = a[1];
	l->from_child = b[0];
	assert_int_equal(read(l->from_child, &c, 1), 1);
}

static void live_cmd(struct live *l, char cmd, bool wait)
{
	char c;

	assert_int_equal(write(l->to_child, &cmd, 1), 1);
	if (wait)
		assert_int_equal(read(l->from_child, &c, 1), 1);
}

static void live_stop(struct live *l)
{
	char p[512];

	kill(l->pid, SIGKILL);
	waitpid(l->pid, NULL, 0);
	close(l->to_child);
	close(l->from_child);
	seg_path(l->name, p, sizeof(p));
	unlink(p);
}

static void test_hostile_live(void **state)
{
	struct moirai_rt_monitor *mon;
	struct moirai_rt_snapshot *s;
	struct live l;
	uint64_t t0, took, first_seq = 0, last_seq = 0;
	int ok = 0, busy = 0;

	(void)state;
	/* Truncated while a reader has it open: an error, not SIGBUS. */
	live_start(&l, "trunc");
	assert_int_equal(moirai_rt_monitor_open(l.name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	s = snap_of(mon);
	assert_int_equal(s->rt.spawned, 42);
	moirai_rt_snapshot_free(s);
	live_cmd(&l, C_TRUNCATE, true);
	assert_int_equal(moirai_rt_monitor_read(mon, &s), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "truncated while open"));
	live_cmd(&l, C_EMPTY, true);
	assert_int_equal(moirai_rt_monitor_read(mon, &s), -EBADMSG);
	assert_null(s);
	moirai_rt_monitor_close(mon);
	live_stop(&l);

	/* A sequence kept odd: a bounded retry failure. */
	live_start(&l, "odd");
	assert_int_equal(moirai_rt_monitor_open(l.name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	live_cmd(&l, C_ODD, true);
	t0 = moirai_now_ns();
	assert_int_equal(moirai_rt_monitor_read(mon, &s), -EAGAIN);
	took = moirai_now_ns() - t0;
	assert_true(took < 2000 * MS);
	assert_non_null(strstr(moirai_last_error(), "odd"));
	moirai_rt_monitor_close(mon);
	live_stop(&l);

	/* Identity rewritten after open. */
	live_start(&l, "ident");
	assert_int_equal(moirai_rt_monitor_open(l.name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	live_cmd(&l, C_IDENT, true);
	assert_int_equal(moirai_rt_monitor_read(mon, &s), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "identity changed"));
	moirai_rt_monitor_close(mon);
	live_stop(&l);

	/* A writer publishing flat out: every copy returned is one publish. */
	live_start(&l, "churn");
	assert_int_equal(moirai_rt_monitor_open(l.name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	live_cmd(&l, C_CHURN, true);
	t0 = moirai_now_ns();
	for (int i = 0; (i < 200 || last_seq - first_seq < 200) && moirai_now_ns() - t0 < 5000 * MS;
	     i++) {
		int rc = moirai_rt_monitor_read(mon, &s);

		if (rc == -EAGAIN) {
			busy++;
			continue;
		}
		assert_int_equal(rc, 0);
		ok++;
		if (!first_seq)
			first_seq = s->seq;
		assert_true(s->seq >= last_seq);
		last_seq = s->seq;
		if (s->seq == 2) { /* the image as written, before the churn */
			assert_int_equal(s->rt.spawned, 42);
		} else {
			uint64_t v = (s->seq - 2) / 2;

			assert_int_equal(s->rt.spawned, v);
			assert_int_equal(s->rt.refused, v);
			for (int w = 0; w < 2; w++)
				for (int lv = 0; lv < MOIRAI_PRIO_LEVELS; lv++)
					assert_int_equal(s->worker[w].stats.tasks_run[lv], v);
			/* The image's 5 records, and v in the last bucket. */
			assert_int_equal(moirai_hist_count(&s->latency[1][MOIRAI_PRIO_LEVELS - 1]),
					 5 + v);
		}
		moirai_rt_snapshot_free(s);
	}
	print_message("churning writer: %d consistent copies of %llu publishes, %d bounded "
		      "give-ups\n",
		      ok, (unsigned long long)(last_seq - first_seq) / 2, busy);
	assert_true(ok > 0);
	assert_true(last_seq > first_seq); /* it really was rewriting meanwhile */
	moirai_rt_monitor_close(mon);
	live_stop(&l);
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

/* ---- the private directory -------------------------------------------------- */

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[600];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_counts),  cmocka_unit_test(test_names),
		cmocka_unit_test(test_bad_config),    cmocka_unit_test(test_idle_and_stopping),
		cmocka_unit_test(test_hostile_files), cmocka_unit_test(test_hostile_file_types),
		cmocka_unit_test(test_hostile_body),  cmocka_unit_test(test_hostile_fuzz),
		cmocka_unit_test(test_hostile_live),  cmocka_unit_test(test_stale_killed),
		cmocka_unit_test(test_stale_swept),   cmocka_unit_test(test_stale_identity),
		cmocka_unit_test(test_negative),
	};
	int rc;

	if (argc == 3 && strcmp(argv[1], "--publish") == 0)
		return publish_main(atof(argv[2]));
	test_pid = getpid();
	snprintf(dir, sizeof(dir), "/dev/shm/moirai-test-pub.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	moirai_option_set_str(MOIRAI_OPT_RT_STATS_DIR, dir);
	moirai_option_set_str(MOIRAI_OPT_RT_STATS, "");
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	remove_dir();
	return rc;
}
