/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer of the stats segment moirai-top reads (moirai/rt.h,
 * "Published stats"; layout in rt_pub.h; docs/top.md): created at
 * moirai_rt_create() when asked for, rewritten by the housekeeping thread
 * every period from the counters the runtime already keeps, unlinked at
 * destroy.  Stale segments of dead processes of this user are swept at
 * create (bounded).
 *
 * Cost to the workers: none on their paths.  A publish runs on the
 * housekeeping thread and only reads what the workers write, with relaxed
 * loads (counters, run state, the deque and mailbox indexes for the queue
 * depth) and the histograms' own reader protocol; a level's histograms are
 * merged again only when one of its workers recorded something since the
 * last publish.
 *
 * The seqlock (the writer half; the reader half is in rt_monitor.c):
 *   W1  seq = odd, relaxed store, then a release fence: no store of the
 *       body can become visible before the odd seq;
 *   W2  the body, relaxed 8-byte stores;
 *   W3  seq = even, release store: every body store is visible before it.
 * A reader that saw the same even seq before and after copying the body
 * copied exactly one publish.  Only this thread ever writes the segment.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rt_int.h"
#include "rt_pub.h"

#define SWEEP_SCAN_MAX	 4096 /* directory entries looked at per create */
#define SWEEP_REMOVE_MAX 64   /* stale segments removed per create */
#define PID_NAME_TRIES	 16   /* <pid>, <pid>.1 .. <pid>.15 */
#define PERIOD_MAX_MS	 60000u

struct rt_pub {
	int fd;
	struct rt_pub_hdr *seg; /* the shared mapping (this thread writes, others pread) */
	size_t size;
	char name[MOIRAI_RT_STATS_NAME_MAX + 1];
	char path[RT_PUB_PATH_MAX];
	dev_t dev;
	ino_t ino;
	int pid; /* the creator: a forked child never unlinks the parent's file */
	uint64_t period_ns, next_ns;
	uint64_t seq;
	bool idle_published; /* the last publish saw every worker parked */
	bool sleeping;	     /* housekeeping was told to sleep until a worker wakes */
	bool pending;	     /* it woke since: something ran that no publish shows */
	/* Shadows built privately, then copied into the segment. */
	struct rt_pub_hdr hdr;
	struct rt_pub_worker *workers;		     /* [nworkers] */
	struct moirai_hist *merged;		     /* [RT_PUB_HISTS] */
	uint64_t merged_src[RT_PUB_HISTS];	     /* the workers' count sum when merged */
	unsigned lo[RT_PUB_HISTS], hi[RT_PUB_HISTS]; /* buckets ever used, or lo > hi */
	bool dirty[RT_PUB_HISTS];		     /* merged since the last copy */
};

/* Runtimes of this process choose names and create files one at a time. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static const double pub_qs[3] = { 50.0, 99.0, 99.9 };

/* ---- publishing -------------------------------------------------------- */

static uint32_t worker_state(uint32_t ws)
{
	switch (ws) {
	case WS_RUNNING: return MOIRAI_RT_WORKER_RUNNING;
	case WS_SPINNING: return MOIRAI_RT_WORKER_SPINNING;
	case WS_PARKED:
	case WS_CLAIMED: return MOIRAI_RT_WORKER_PARKED;
	case WS_EXITED: return MOIRAI_RT_WORKER_EXITED;
	default: return MOIRAI_RT_WORKER_STARTING;
	}
}

/*
 * moirai_hist_merge() of @src into the private @dst, walking only the
 * buckets that can hold a counted record: a record writes min, max and its
 * bucket before it publishes count (release), so with count read first
 * (acquire) every counted record lies between the buckets of the min and
 * max read after it.  Latencies span a few octaves, so this reads a
 * fraction of the 1920 buckets (15 KiB) of every worker's histogram.
 * Widens [*lo, *hi] to the buckets walked.
 */
static void merge_range(struct moirai_hist *dst, const struct moirai_hist *src, unsigned *lo,
			unsigned *hi)
{
	uint64_t n = __atomic_load_n(&src->count, __ATOMIC_ACQUIRE), mn, mx, s;
	unsigned a = 0, b = MOIRAI_HIST_BUCKETS - 1;

	if (!n)
		return;
	mn = ~__atomic_load_n(&src->min_inv, __ATOMIC_RELAXED);
	mx = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
	if (mn <= mx) { /* else a reset runs: walk everything */
		a = moirai_hist_bucket_index(mn);
		b = moirai_hist_bucket_index(mx);
	}
	for (unsigned i = a; i <= b; i++)
		dst->buckets[i] += __atomic_load_n(&src->buckets[i], __ATOMIC_RELAXED);
	s = __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
	dst->sum = __builtin_add_overflow(dst->sum, s, &s) ? UINT64_MAX : s;
	if (~mn > dst->min_inv)
		dst->min_inv = ~mn;
	if (mx > dst->max)
		dst->max = mx;
	dst->count += n;
	*lo = a < *lo ? a : *lo;
	*hi = b > *hi ? b : *hi;
}

/* Read the runtime's counters into the shadows; returns whether every
 * worker was parked (or gone). */
static bool gather(struct moirai_rt *rt, struct rt_pub *p, uint64_t now)
{
	struct rt_pub_hdr *h = &p->hdr;
	struct moirai_rt_stats s;
	bool all_parked = true;

	moirai_rt_stats_get(rt, &s);
	h->time_ns = now;
	h->workers = (uint32_t)rt->nworkers;
	h->spawned = s.spawned;
	h->refused = s.refused;
	h->deferred_pending = s.deferred_pending;
	h->deferred_freed = s.deferred_freed;
	h->overflow_spills = s.overflow_spills;
	for (int i = 0; i < rt->nworkers; i++) {
		struct rt_pub_worker *r = &p->workers[i];
		const struct rt_worker *w = rt->w[i];
		struct moirai_rt_worker_stats ws;
		uint64_t since;
		int32_t level;

		if (!w || moirai_rt_worker_stats_get(rt, i, &ws))
			continue;
		/* Relaxed: snapshots of words the worker owns (rt_int.h). */
		r->state = worker_state(atomic_load_explicit(&w->run_state, memory_order_relaxed));
		since = atomic_load_explicit(&w->running_since, memory_order_relaxed);
		level = atomic_load_explicit(&w->cur_level, memory_order_relaxed);
		r->level = since && level >= 0 && level < RT_LEVELS ? level : -1;
		r->running_ns = since && now > since ? now - since : 0;
		if (r->state != MOIRAI_RT_WORKER_PARKED && r->state != MOIRAI_RT_WORKER_EXITED)
			all_parked = false;
		for (int l = 0; l < RT_LEVELS; l++) {
			r->tasks_run[l] = ws.tasks_run[l];
			r->continuations[l] = ws.continuations[l];
			r->aged[l] = ws.aged_dispatches[l];
			r->queue_depth[l] = ws.queue_depth[l];
		}
		for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
			r->steals[c] = ws.steals[c];
		r->steal_attempts = ws.steal_attempts;
		r->stolen_from = ws.stolen_from;
		r->mailbox_full = ws.mailbox_full;
		r->parks = ws.parks;
		r->wakeups = ws.wakeups;
		r->polls_busy = ws.polls_busy;
		r->polls_idle = ws.polls_idle;
		r->poll_busy_ns = ws.poll_busy_ns;
		r->poll_idle_ns = ws.poll_idle_ns;
		r->timers_fired = ws.timers_fired;
		r->busy_ns = ws.busy_ns;
		r->stuck_reports = ws.stuck_reports;
		r->cancelled = ws.cancelled;
	}
	h->flags = (rt->virtual_placement ? RT_PUB_F_VIRTUAL : 0) |
		   (s.stopping ? RT_PUB_F_STOPPING : 0) | (all_parked ? RT_PUB_F_IDLE : 0);

	/* Histograms: merge a level again only when its workers recorded. */
	for (unsigned k = 0; k < RT_PUB_HISTS; k++) {
		struct moirai_hist *m = &p->merged[k];
		struct rt_pub_lat *lat = &h->lat[k / RT_LEVELS][k % RT_LEVELS];
		uint64_t sum = 0, q[3];

		for (int i = 0; i < rt->nworkers; i++)
			if (rt->w[i])
				sum += moirai_hist_count(&rt->w[i]->lat[k]);
		if (sum == p->merged_src[k])
			continue;
		/* Cumulative counts: the buckets in use only ever widen. */
		m->count = m->sum = m->min_inv = m->max = 0;
		if (p->lo[k] <= p->hi[k])
			memset(&m->buckets[p->lo[k]], 0,
			       (p->hi[k] - p->lo[k] + 1) * sizeof(m->buckets[0]));
		for (int i = 0; i < rt->nworkers; i++)
			if (rt->w[i])
				merge_range(m, &rt->w[i]->lat[k], &p->lo[k], &p->hi[k]);
		p->merged_src[k] = sum;
		p->dirty[k] = true;
		moirai_hist_percentiles(m, pub_qs, 3, q);
		lat->count = moirai_hist_count(m);
		lat->p50 = q[0];
		lat->p99 = q[1];
		lat->p999 = q[2];
		lat->max = moirai_hist_max(m);
	}
	return all_parked;
}

/* W2: relaxed 8-byte stores (the segment is only ever written here). */
static void store_words(void *dst, const void *src, size_t bytes)
{
	uint64_t *d = dst;
	const uint64_t *s = src;

	for (size_t i = 0; i < bytes / 8; i++)
		__atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);
}

static void publish(struct moirai_rt *rt, struct rt_pub *p)
{
	const size_t body = offsetof(struct rt_pub_hdr, time_ns);
	const size_t body_len = offsetof(struct rt_pub_hdr, reserved) - body;
	struct rt_pub_hdr *seg = p->seg;
	uint64_t t0 = moirai_now_ns(), took;
	bool idle = gather(rt, p, t0);

	p->hdr.publishes++;
	/* W1: odd; the release fence orders it before every body store
	 * below (pairs with the reader's re-read of seq after its copy). */
	p->seq++;
	__atomic_store_n(&seg->seq, p->seq, __ATOMIC_RELAXED);
	rt_pub_release_fence();
	store_words((char *)seg + body, (char *)&p->hdr + body, body_len);
	store_words((char *)seg + RT_PUB_HDR_SIZE, p->workers,
		    (size_t)rt->nworkers * RT_PUB_WORKER_SIZE);
	for (unsigned k = 0; k < RT_PUB_HISTS; k++) {
		struct moirai_hist *dst =
			(void *)((char *)seg + rt_pub_hists_off((uint32_t)rt->nworkers) +
				 k * sizeof(struct moirai_hist));

		if (!p->dirty[k])
			continue;
		/* The totals, and the buckets ever used (the rest stay 0). */
		store_words(dst, &p->merged[k], offsetof(struct moirai_hist, buckets));
		if (p->lo[k] <= p->hi[k])
			store_words(&dst->buckets[p->lo[k]], &p->merged[k].buckets[p->lo[k]],
				    (p->hi[k] - p->lo[k] + 1) * sizeof(dst->buckets[0]));
		p->dirty[k] = false;
	}
	took = moirai_now_ns() - t0;
	p->hdr.publish_ns = took;
	if (took > p->hdr.publish_max_ns)
		p->hdr.publish_max_ns = took;
	__atomic_store_n(&seg->publish_ns, p->hdr.publish_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&seg->publish_max_ns, p->hdr.publish_max_ns, __ATOMIC_RELAXED);
	/* W3: even; release: every body store above is visible before it
	 * (pairs with the reader's first read of seq). */
	p->seq++;
	__atomic_store_n(&seg->seq, p->seq, __ATOMIC_RELEASE);
	p->idle_published = idle;
}

/*
 * @until 0 means every worker is parked and housekeeping would sleep until
 * one wakes.  Then one more publish shows the final counters and the idle
 * state (readers know why no more snapshots come), and none follows until
 * a worker wakes.  A wake from that sleep means something ran: it is
 * published too, but never more often than once per period (a worker that
 * wakes every millisecond must not turn into a publish every millisecond),
 * so housekeeping is then asked to wake at the next due time instead.
 */
uint64_t rt_pub_tick(struct moirai_rt *rt, uint64_t until)
{
	struct rt_pub *p = rt->pub;
	uint64_t now;

	if (!p)
		return until;
	if (p->sleeping)
		p->pending = true;
	p->sleeping = false;
	now = moirai_now_ns();
	if (now >= p->next_ns && (until || p->pending || !p->idle_published)) {
		publish(rt, p);
		p->pending = false;
		/* On the period's grid; after a long gap, from now. */
		p->next_ns = p->next_ns && p->next_ns + p->period_ns > now
				     ? p->next_ns + p->period_ns
				     : now + p->period_ns;
	}
	if (until == 0) {
		if (p->pending || !p->idle_published)
			return p->next_ns; /* one more publish is due then */
		p->sleeping = true;
		return 0;
	}
	return p->next_ns < until ? p->next_ns : until;
}

/* ---- create ------------------------------------------------------------ */

/*
 * Remove stale segments of this user (their process is gone), looking at
 * no more than SWEEP_SCAN_MAX entries and removing SWEEP_REMOVE_MAX.
 * Leftovers of an interrupted removal (RT_PUB_REAP_PREFIX) are swept too.
 */
static void sweep(void)
{
	const size_t plen = strlen(MOIRAI_RT_STATS_PREFIX), rlen = strlen(RT_PUB_REAP_PREFIX);
	int scanned = 0, removed = 0;
	uid_t me = geteuid();
	struct dirent *e;
	const char *dir = rt_pub_dir();
	DIR *d = opendir(dir);

	if (!d)
		return;
	while (scanned++ < SWEEP_SCAN_MAX && removed < SWEEP_REMOVE_MAX && (e = readdir(d))) {
		char path[RT_PUB_PATH_MAX], why[192];
		struct rt_pub_hdr h;
		struct stat st;
		int fd;

		if (strncmp(e->d_name, MOIRAI_RT_STATS_PREFIX, plen) != 0 &&
		    strncmp(e->d_name, RT_PUB_REAP_PREFIX, rlen) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != me)
			continue;
		fd = rt_pub_open_checked(path, NULL, (long)me, &st, &h, why, sizeof(why));
		if (fd < 0)
			continue;
		close(fd);
		if (rt_pub_liveness(&h, why, sizeof(why)) != MOIRAI_RT_SEGMENT_STALE)
			continue;
		if (rt_pub_reap(path, st.st_dev, st.st_ino) == 0) {
			removed++;
			moirai__log(MOIRAI_LOG_DEBUG, "rt: removed stale stats segment %s (%s)",
				    path, why);
		}
	}
	closedir(d);
}

/*
 * @path exists: may it be reclaimed?  A stale segment of ours is removed
 * (true: try again).  With @own_pid_name (the name is our pid, and this
 * process creates one file at a time), so is any file of ours that is not
 * a valid segment: a leftover of an earlier process with our pid.
 */
static bool reclaim(const char *path, const char *name, bool own_pid_name, char *why, size_t len)
{
	struct rt_pub_hdr h;
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0)
		return errno == ENOENT; /* gone meanwhile */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(why, len, "it is %s",
			 !S_ISREG(st.st_mode) ? "not a regular file" : "owned by another user");
		return false;
	}
	fd = rt_pub_open_checked(path, name, (long)geteuid(), &st, &h, why, len);
	if (fd >= 0) {
		enum moirai_rt_segment_state state;

		close(fd);
		state = rt_pub_liveness(&h, why, len);
		if (state == MOIRAI_RT_SEGMENT_LIVE)
			snprintf(why, len, "a live segment of process %d", (int)h.pid);
		if (state != MOIRAI_RT_SEGMENT_STALE)
			return false;
	} else if (!own_pid_name) {
		char reason[160];

		snprintf(reason, sizeof(reason), "%s", why);
		snprintf(why, len, "not a valid stats segment (%.160s)", reason);
		return false;
	}
	fd = rt_pub_reap(path, st.st_dev, st.st_ino);
	return fd == 0 || fd == -ENOENT;
}

/* Create @name's file exclusively (reclaiming a stale one): fd or -errno. */
static int create_file(const char *name, bool own_pid_name, char *path, size_t plen)
{
	char why[192] = "";

	if (rt_pub_path(name, path, plen))
		return moirai__err(-EINVAL, "rt: stats name '%s' is too long", name);
	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

		if (fd >= 0)
			return fd;
		if (errno != EEXIST) {
			int e = -errno;

			return moirai__err(e, "rt: cannot create stats segment %s: %s", path,
					   moirai_strerror(e));
		}
		if (!reclaim(path, name, own_pid_name, why, sizeof(why)))
			break;
	}
	return moirai__err(-EEXIST, "rt: stats segment %s exists: %s", path,
			   *why ? why : "it keeps coming back");
}

static void fill_identity(struct moirai_rt *rt, struct rt_pub *p, const struct rt_proc_id *id,
			  unsigned period_ms)
{
	struct rt_pub_hdr *h = &p->hdr;
	uint32_t n = (uint32_t)rt->nworkers;
	char comm[RT_PUB_COMM_LEN + 8] = "";
	struct timespec ts;
	FILE *f;

	h->version = RT_PUB_VERSION;
	h->hdr_size = RT_PUB_HDR_SIZE;
	h->worker_size = RT_PUB_WORKER_SIZE;
	h->hist_size = sizeof(struct moirai_hist);
	h->levels = RT_PUB_LEVELS;
	h->nworkers = n;
	h->workers_off = RT_PUB_HDR_SIZE;
	h->hists_off = rt_pub_hists_off(n);
	h->seg_size = rt_pub_seg_size(n);
	h->pid = id->pid;
	h->uid = (uint32_t)geteuid();
	h->start_time = id->start_time;
	h->pidns = id->pidns;
	memcpy(h->boot_id, id->boot_id, sizeof(h->boot_id));
	f = fopen("/proc/self/comm", "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(h->comm, sizeof(h->comm), "%s", comm);
	snprintf(h->name, sizeof(h->name), "%s", p->name);
	h->period_ms = period_ms;
	h->rt_id = rt->id;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	for (uint32_t i = 0; i < n; i++) {
		struct rt_pub_worker *r = &p->workers[i];
		const struct rt_start *a = &rt->starts[i];

		r->worker = (int32_t)i;
		r->pu = a->pu;
		r->node = a->node;
		r->plan_pu = a->plan_pu;
		r->plan_node = a->plan_node;
		r->node_idx = a->node_idx;
		r->l3 = a->l3;
		r->flags = i < rt->cfg.critical_workers ? RT_PUB_WF_CRITICAL : 0;
		r->state = MOIRAI_RT_WORKER_STARTING;
		r->level = -1;
	}
}

static void pub_free(struct rt_pub *p)
{
	if (p->seg)
		munmap(p->seg, p->size);
	if (p->fd >= 0)
		close(p->fd);
	free(p->workers);
	free(p->merged);
	free(p);
}

static int pub_create(struct moirai_rt *rt, const char *name, unsigned period_ms,
		      struct rt_pub **out)
{
	struct rt_proc_id id;
	struct rt_pub *p;
	struct stat st;
	int rc;

	rc = rt_proc_self(&id);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return moirai__err(-ENOMEM, "rt: no memory for the stats segment");
	p->fd = -1;
	p->pid = id.pid;
	p->period_ns = (uint64_t)period_ms * 1000000u;
	p->size = rt_pub_seg_size((uint32_t)rt->nworkers);
	p->workers = calloc((size_t)rt->nworkers, sizeof(*p->workers));
	p->merged = calloc(RT_PUB_HISTS, sizeof(*p->merged));
	for (unsigned k = 0; k < RT_PUB_HISTS; k++)
		p->lo[k] = MOIRAI_HIST_BUCKETS; /* none used yet */
	if (!p->workers || !p->merged) {
		rc = moirai__err(-ENOMEM, "rt: no memory for the stats segment");
		goto err_free;
	}
	pthread_mutex_lock(&create_lock);
	sweep();
	if (name) {
		snprintf(p->name, sizeof(p->name), "%s", name);
		rc = create_file(p->name, false, p->path, sizeof(p->path));
	} else {
		/* Named after the process; further runtimes of it get .1, .2 ... */
		for (int k = 0; k < PID_NAME_TRIES; k++) {
			if (k)
				snprintf(p->name, sizeof(p->name), "%d.%d", id.pid, k);
			else
				snprintf(p->name, sizeof(p->name), "%d", id.pid);
			rc = create_file(p->name, true, p->path, sizeof(p->path));
			if (rc != -EEXIST)
				break;
		}
	}
	if (rc < 0)
		goto err_unlock;
	p->fd = rc;
	/* 0644 whatever the umask: readable by anyone, written by us only. */
	if (fchmod(p->fd, 0644) != 0 || ftruncate(p->fd, (off_t)p->size) != 0 ||
	    fstat(p->fd, &st) != 0) {
		int e = -errno;

		rc = moirai__err(e, "rt: cannot size stats segment %s: %s", p->path,
				 moirai_strerror(e));
		goto err_unlink;
	}
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->seg = mmap(NULL, p->size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->seg == MAP_FAILED) {
		int e = -errno;

		p->seg = NULL;
		rc = moirai__err(e, "rt: cannot map stats segment %s: %s", p->path,
				 moirai_strerror(e));
		goto err_unlink;
	}
	fill_identity(rt, p, &id, period_ms);
	memcpy(p->seg, &p->hdr, sizeof(p->hdr));
	memcpy((char *)p->seg + RT_PUB_HDR_SIZE, p->workers,
	       (size_t)rt->nworkers * RT_PUB_WORKER_SIZE);
	/* Magic last, release: a reader that sees it sees a whole header
	 * (the file is zero before: a bad magic to any reader). */
	__atomic_store_n(&p->seg->magic, RT_PUB_MAGIC, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&create_lock);
	moirai__log(MOIRAI_LOG_INFO, "rt: publishing stats in %s every %u ms", p->path, period_ms);
	*out = p;
	return 0;

err_unlink:
	unlink(p->path);
err_unlock:
	pthread_mutex_unlock(&create_lock);
err_free:
	pub_free(p);
	return rc;
}

int rt_pub_init(struct moirai_rt *rt)
{
	const struct moirai_rt_config *c = &rt->cfg;
	const char *opt = moirai_option_get_str(MOIRAI_OPT_RT_STATS);
	bool opt_on = *opt && strcmp(opt, "0") != 0;
	bool opt_name = opt_on && strcmp(opt, "1") != 0;
	bool asked = (c->flags & MOIRAI_RT_F_STATS) || c->stats_name;
	const char *name = c->stats_name ? c->stats_name : opt_name ? opt : NULL;
	unsigned period = c->stats_period_ms;
	struct rt_pub *p = NULL;
	int rc;

	rt->cfg.stats_name = NULL; /* the caller's string: used during create only */
	if (!asked && !opt_on)
		return 0;
	if (!period)
		period = (unsigned)moirai_option_get(MOIRAI_OPT_RT_STATS_MS);
	if (period > PERIOD_MAX_MS)
		rc = moirai__err(-EINVAL, "rt: stats_period_ms %u is above %u", period,
				 PERIOD_MAX_MS);
	else if (name && !rt_pub_name_ok(name))
		rc = moirai__err(-EINVAL,
				 "rt: bad stats name '%.80s' (1..%d characters of [A-Za-z0-9._-], "
				 "not starting with '.')",
				 name, MOIRAI_RT_STATS_NAME_MAX);
	else
		rc = pub_create(rt, name, period, &p);
	if (rc && !asked) {
		/* Only the operator's option asked: run, and say why not. */
		moirai__log(MOIRAI_LOG_WARN, "rt: MOIRAI_RT_STATS=%s: not publishing stats: %s",
			    opt, moirai_last_error());
		return 0;
	}
	if (rc)
		return rc;
	rt->pub = p;
	return 0;
}

void rt_pub_fini(struct moirai_rt *rt)
{
	struct rt_pub *p = rt->pub;
	struct stat st;

	if (!p)
		return;
	rt->pub = NULL;
	/* Only the name that still is our file, and never from a forked child. */
	if (getpid() == p->pid && stat(p->path, &st) == 0 && st.st_dev == p->dev &&
	    st.st_ino == p->ino)
		unlink(p->path);
	pub_free(p);
}

int moirai_rt_stats_name(const struct moirai_rt *rt, char *buf, size_t len)
{
	size_t n;

	if (!rt || !buf || !len)
		return moirai__err(-EINVAL, "rt stats name: NULL argument");
	if (!rt->pub) {
		buf[0] = '\0';
		return moirai__err(-ENOENT,
				   "rt stats name: the runtime does not publish its stats");
	}
	n = strlen(rt->pub->name);
	snprintf(buf, len, "%s", rt->pub->name);
	if (n >= len)
		return moirai__err(-ENOSPC, "rt stats name: %zu bytes do not hold '%s'", len,
				   rt->pub->name);
	return 0;
}
