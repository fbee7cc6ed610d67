/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The reader side of the stats segment (moirai/rt.h, "Published stats";
 * docs/top.md): open, read a consistent snapshot, check liveness, list and
 * clean; and what the writer (rt_pub.c) shares with it: name rules,
 * process identity, the header checks and removal of a stale file.
 *
 * The reader never trusts the segment.  It does not map it: a file's owner
 * can truncate it at any time, and a load from a mapping past the new end
 * raises SIGBUS, which a library cannot catch.  It copies the file with
 * pread() into its own memory instead (a truncation is then a short read,
 * reported), checks the copy, and only then uses it.  The seqlock that
 * makes the copy consistent is argued in docs/top.md: the sequence word is
 * read by its own pread() before and after the body's, because x86 orders
 * loads with loads except inside one string instruction (the kernel's copy
 * of the body), and retries are bounded in number and time.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "rt_pub.h"

#define READ_TRIES	64
#define READ_BUDGET_NS	(100ull * 1000 * 1000)
#define LIST_SCAN_MAX	4096
#define ANY_UID		(-2L)
#define PROC_STAT_FIELD 22 /* starttime */

struct moirai_rt_monitor {
	int fd;
	char name[MOIRAI_RT_STATS_NAME_MAX + 1];
	char path[RT_PUB_PATH_MAX];
	struct stat st;	      /* as opened: device, inode, size */
	struct rt_pub_hdr id; /* as opened: what every read must match up to seq */
	unsigned char *buf;   /* one copy of the whole file */
	size_t size;
};

/* ---- names ---------------------------------------------------------- */

bool rt_pub_name_ok(const char *name)
{
	size_t n;

	if (!name || !*name || name[0] == '.')
		return false;
	n = strnlen(name, MOIRAI_RT_STATS_NAME_MAX + 1);
	if (n > MOIRAI_RT_STATS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(isascii(c) && isalnum(c)) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

const char *rt_pub_dir(void)
{
	const char *d = moirai_option_get_str(MOIRAI_OPT_RT_STATS_DIR);

	return *d ? d : MOIRAI_RT_STATS_DEFAULT_DIR;
}

int rt_pub_path(const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s%s", rt_pub_dir(), MOIRAI_RT_STATS_PREFIX, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void rt_pub_sanitize(char *s, size_t len)
{
	if (!len)
		return;
	s[len - 1] = '\0';
	for (size_t i = 0; i < len && s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			s[i] = '?';
}

/* ---- process identity ----------------------------------------------- */

/* Read a small file into @buf, NUL-terminated, trailing newline dropped. */
static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

/*
 * State (field 3) and start time (field 22) of a process, from
 * /proc/PID/stat.  The command name (field 2) may hold spaces and ')', so
 * the fields are counted from the last ')'.  0, or -ESRCH.
 */
static int proc_stat(int pid, uint64_t *start, char *state)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)))
		return -ESRCH;
	p = strrchr(buf, ')');
	if (!p)
		return -ESRCH;
	p++;
	for (int field = 3; field <= PROC_STAT_FIELD; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -ESRCH;
		if (field == 3)
			*state = *p;
		if (field == PROC_STAT_FIELD) {
			*start = strtoull(p, NULL, 10);
			return 0;
		}
		while (*p && *p != ' ')
			p++;
	}
	return -ESRCH;
}

/* What does not change while the process lives: read once. */
static struct {
	uint64_t pidns;
	char boot_id[RT_PUB_BOOT_ID_LEN];
	int rc;
} host;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_load(void)
{
	struct stat st;

	host.rc = read_small("/proc/sys/kernel/random/boot_id", host.boot_id, sizeof(host.boot_id));
	host.pidns = stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int rt_proc_self(struct rt_proc_id *out)
{
	char state;

	pthread_once(&host_once, host_load);
	if (host.rc)
		return moirai__err(host.rc, "rt: cannot read the boot id: %s",
				   moirai_strerror(host.rc));
	memset(out, 0, sizeof(*out));
	out->pid = getpid();
	out->pidns = host.pidns;
	memcpy(out->boot_id, host.boot_id, sizeof(out->boot_id));
	if (proc_stat(out->pid, &out->start_time, &state))
		return moirai__err(-EIO, "rt: cannot read /proc/%d/stat", out->pid);
	return 0;
}

enum moirai_rt_segment_state rt_pub_liveness(const struct rt_pub_hdr *h, char *why, size_t len)
{
	char boot[RT_PUB_BOOT_ID_LEN], state = '?';
	uint64_t start = 0;

	pthread_once(&host_once, host_load);
	*why = '\0';
	memcpy(boot, h->boot_id, sizeof(boot));
	boot[sizeof(boot) - 1] = '\0';
	if (host.rc == 0 && strcmp(boot, host.boot_id) != 0) {
		snprintf(why, len, "written before the machine last booted");
		return MOIRAI_RT_SEGMENT_STALE;
	}
	if (host.pidns && h->pidns != host.pidns) {
		snprintf(why, len,
			 "written in another pid namespace: cannot tell whether pid %d runs",
			 (int)h->pid);
		return MOIRAI_RT_SEGMENT_UNKNOWN;
	}
	if (h->pid <= 0 || (kill(h->pid, 0) != 0 && errno == ESRCH) ||
	    proc_stat(h->pid, &start, &state) != 0) {
		snprintf(why, len, "process %d is gone", (int)h->pid);
		return MOIRAI_RT_SEGMENT_STALE;
	}
	if (state == 'Z' || state == 'X') {
		snprintf(why, len, "process %d has exited (not yet reaped)", (int)h->pid);
		return MOIRAI_RT_SEGMENT_STALE;
	}
	if (start != h->start_time) {
		snprintf(why, len, "process %d is gone (its pid now belongs to another process)",
			 (int)h->pid);
		return MOIRAI_RT_SEGMENT_STALE;
	}
	return MOIRAI_RT_SEGMENT_LIVE;
}

/* ---- header checks and the checked open -------------------------------- */

int rt_pub_check_layout(const struct rt_pub_hdr *h, uint64_t file_size, char *why, size_t len)
{
	if (file_size < sizeof(*h)) {
		snprintf(why, len, "truncated: %" PRIu64 " bytes, the header alone is %u",
			 file_size, RT_PUB_HDR_SIZE);
		return -EBADMSG;
	}
	if (h->magic != RT_PUB_MAGIC) {
		snprintf(why, len,
			 "bad magic 0x%016" PRIx64 ": not a moirai stats segment (or still being "
			 "created)",
			 h->magic);
		return -EPROTO;
	}
	if (h->version != RT_PUB_VERSION) {
		snprintf(why, len, "layout version %u (this reader knows version %u)", h->version,
			 RT_PUB_VERSION);
		return -EPROTO;
	}
	if (h->hdr_size != RT_PUB_HDR_SIZE || h->worker_size != RT_PUB_WORKER_SIZE ||
	    h->hist_size != sizeof(struct moirai_hist) || h->levels != RT_PUB_LEVELS) {
		snprintf(why, len,
			 "layout version %u with other record sizes (header %u, worker %u, "
			 "histogram %u, levels %u)",
			 h->version, h->hdr_size, h->worker_size, h->hist_size, h->levels);
		return -EPROTO;
	}
	if (h->nworkers == 0 || h->nworkers > RT_PUB_MAX_WORKERS) {
		snprintf(why, len, "worker count %u out of range 1..%u", h->nworkers,
			 RT_PUB_MAX_WORKERS);
		return -EBADMSG;
	}
	if (h->workers_off != RT_PUB_HDR_SIZE || h->hists_off != rt_pub_hists_off(h->nworkers) ||
	    h->seg_size != rt_pub_seg_size(h->nworkers)) {
		snprintf(why, len, "inconsistent offsets or size for %u workers", h->nworkers);
		return -EBADMSG;
	}
	if (h->seg_size != file_size) {
		snprintf(why, len, "%s: the file has %" PRIu64 " bytes, its header says %" PRIu64,
			 file_size < h->seg_size ? "truncated" : "wrong size", file_size,
			 h->seg_size);
		return -EBADMSG;
	}
	if (h->pid <= 0) {
		snprintf(why, len, "writer pid %d out of range", (int)h->pid);
		return -EBADMSG;
	}
	return 0;
}

/* pread until @len bytes or end of file; the count, or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int rt_pub_open_checked(const char *path, const char *name, long uid, struct stat *st,
			struct rt_pub_hdr *h, char *why, size_t len)
{
	ssize_t n;
	int fd, rc;

	/* O_NOFOLLOW: never a symlink planted under the name; O_NONBLOCK: a
	 * FIFO planted there does not wait for a writer (fstat refuses it). */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP) {
			snprintf(why, len, "a symbolic link: refused");
			return -EPERM;
		}
		if (rc == -ENXIO) {
			snprintf(why, len, "not a regular file: refused");
			return -EPERM;
		}
		snprintf(why, len, "%s", rc == -ENOENT ? "no such segment" : moirai_strerror(rc));
		return rc;
	}
	if (fstat(fd, st) != 0) {
		rc = -errno;
		snprintf(why, len, "fstat: %s", moirai_strerror(rc));
		goto err_close;
	}
	rc = -EPERM;
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, len, "not a regular file: refused");
		goto err_close;
	}
	if (uid >= 0 && (long)st->st_uid != uid) {
		snprintf(why, len, "owned by uid %ld, expected uid %ld: refused", (long)st->st_uid,
			 uid);
		goto err_close;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "writable by group or others (mode %03o): refused",
			 (unsigned)(st->st_mode & 0777));
		goto err_close;
	}
	memset(h, 0, sizeof(*h));
	n = pread_full(fd, h, sizeof(*h), 0);
	if (n < 0) {
		rc = (int)n;
		snprintf(why, len, "read: %s", moirai_strerror(rc));
		goto err_close;
	}
	rc = rt_pub_check_layout(h, (uint64_t)n < sizeof(*h) ? (uint64_t)n : (uint64_t)st->st_size,
				 why, len);
	if (rc)
		goto err_close;
	if ((long)h->uid != (long)st->st_uid) {
		snprintf(why, len, "the header says uid %u but the file is owned by uid %ld",
			 h->uid, (long)st->st_uid);
		rc = -EBADMSG;
		goto err_close;
	}
	h->name[sizeof(h->name) - 1] = '\0';
	if (name && strcmp(h->name, name) != 0) {
		rt_pub_sanitize(h->name, sizeof(h->name));
		snprintf(why, len, "its header names segment '%.64s'", h->name);
		rc = -EBADMSG;
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return rc;
}

/* ---- removal ---------------------------------------------------------- */

int rt_pub_reap(const char *path, dev_t dev, ino_t ino)
{
	static _Atomic unsigned reaps;
	char tmp[RT_PUB_PATH_MAX + 32];
	struct stat st;

	/*
	 * Between our check and the unlink, the stale file may have been
	 * replaced by a live segment (a new runtime reclaiming the name).
	 * Renaming is atomic, so: move whatever the name holds aside, and
	 * remove it only if it is the file we checked.
	 */
	snprintf(tmp, sizeof(tmp), "%s/%s%d.%u", rt_pub_dir(), RT_PUB_REAP_PREFIX, (int)getpid(),
		 atomic_fetch_add_explicit(&reaps, 1, memory_order_relaxed));
	if (rename(path, tmp) != 0)
		return -errno;
	if (lstat(tmp, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		return unlink(tmp) == 0 ? 0 : -errno;
	/* Someone else's: put it back, but never over a newer file. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0)
		moirai__log(MOIRAI_LOG_WARN, "rt: %s changed while it was removed; it is now %s",
			    path, tmp);
	return -ESTALE;
}

/* ---- the reader API ---------------------------------------------------- */

int moirai_rt_monitor_open(const char *name, long uid, struct moirai_rt_monitor **out)
{
	struct moirai_rt_monitor *mon;
	char why[192], path[RT_PUB_PATH_MAX];
	struct rt_pub_hdr h;
	struct stat st;
	int fd, rc;

	if (!out)
		return moirai__err(-EINVAL, "rt monitor: NULL out pointer");
	*out = NULL;
	if (!rt_pub_name_ok(name))
		return moirai__err(-EINVAL,
				   "rt monitor: bad segment name '%.80s' (1..%d characters of "
				   "[A-Za-z0-9._-], not starting with '.')",
				   name ? name : "(null)", MOIRAI_RT_STATS_NAME_MAX);
	if (uid < -1)
		return moirai__err(-EINVAL, "rt monitor: bad uid %ld", uid);
	if (uid == MOIRAI_RT_MONITOR_UID_SELF)
		uid = (long)geteuid();
	if (rt_pub_path(name, path, sizeof(path)))
		return moirai__err(-ENAMETOOLONG,
				   "rt monitor: the stats directory path is too long");
	fd = rt_pub_open_checked(path, name, uid, &st, &h, why, sizeof(why));
	if (fd < 0)
		return moirai__err(fd, "rt monitor: %s: %s", path, why);
	mon = calloc(1, sizeof(*mon));
	if (mon)
		mon->buf = malloc(h.seg_size);
	if (!mon || !mon->buf) {
		free(mon);
		rc = moirai__err(-ENOMEM, "rt monitor: no memory for a %" PRIu64 "-byte copy",
				 h.seg_size);
		goto err_close;
	}
	mon->fd = fd;
	snprintf(mon->name, sizeof(mon->name), "%s", name);
	snprintf(mon->path, sizeof(mon->path), "%s", path);
	mon->st = st;
	mon->id = h;
	mon->size = h.seg_size;
	*out = mon;
	return 0;

err_close:
	close(fd);
	return rc;
}

void moirai_rt_monitor_close(struct moirai_rt_monitor *mon)
{
	if (!mon)
		return;
	close(mon->fd);
	free(mon->buf);
	free(mon);
}

void moirai_rt_snapshot_free(struct moirai_rt_snapshot *snap)
{
	free(snap);
}

static void pause_ns(uint64_t ns)
{
	struct timespec ts = { 0, (long)ns };

	nanosleep(&ts, NULL);
}

static int short_read(const struct moirai_rt_monitor *mon)
{
	struct stat st;
	long long now_size = fstat(mon->fd, &st) == 0 ? (long long)st.st_size : -1;

	return moirai__err(-EBADMSG,
			   "rt monitor: %s: truncated while open (%lld bytes, the segment has %zu)",
			   mon->path, now_size, mon->size);
}

/*
 * One consistent copy of the file into mon->buf: the sequence word (its own
 * pread), the whole file, the sequence word again; consistent when both
 * reads and the copy's own word agree and are even.  Bounded: READ_TRIES
 * attempts within READ_BUDGET_NS, backing off from 20 us to 2 ms.
 */
static int copy_consistent(struct moirai_rt_monitor *mon)
{
	const off_t seq_off = offsetof(struct rt_pub_hdr, seq);
	uint64_t start = moirai_now_ns(), backoff = 20000, s1 = 0, s2 = 0;
	int tries = 0;

	while (tries < READ_TRIES) {
		const struct rt_pub_hdr *copy = (const void *)mon->buf;

		tries++;
		if (pread_full(mon->fd, &s1, sizeof(s1), seq_off) != (ssize_t)sizeof(s1))
			return short_read(mon);
		if (!(s1 & 1)) {
			if (pread_full(mon->fd, mon->buf, mon->size, 0) != (ssize_t)mon->size ||
			    pread_full(mon->fd, &s2, sizeof(s2), seq_off) != (ssize_t)sizeof(s2))
				return short_read(mon);
			if (s1 == s2 && copy->seq == s1)
				return 0;
		}
		if (moirai_now_ns() - start >= READ_BUDGET_NS)
			break;
		pause_ns(backoff);
		backoff = backoff * 2 > 2000000 ? 2000000 : backoff * 2;
	}
	return moirai__err(-EAGAIN,
			   "rt monitor: %s: the writer kept the segment busy through %d reads in "
			   "%" PRIu64 " ms (sequence %" PRIu64 ", %s): a stuck, dying or hostile "
			   "writer",
			   mon->path, tries, (moirai_now_ns() - start) / 1000000, s1,
			   s1 & 1 ? "odd" : "changing");
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/*
 * Make a histogram copied from the segment self-consistent whatever the
 * writer put there: count is the (saturating) sum of the buckets, min and
 * max lie in the first and last non-empty buckets, everything is zero when
 * no bucket counts.  The hist.h readers then stay in range.
 */
static void hist_sanitize(struct moirai_hist *h)
{
	uint64_t count = 0, lo, hi;
	unsigned first = MOIRAI_HIST_BUCKETS, last = 0;

	for (unsigned b = 0; b < MOIRAI_HIST_BUCKETS; b++) {
		if (!h->buckets[b])
			continue;
		count = sat_add(count, h->buckets[b]);
		if (first == MOIRAI_HIST_BUCKETS)
			first = b;
		last = b;
	}
	if (!count) {
		memset(h, 0, sizeof(*h));
		return;
	}
	h->count = count;
	lo = ~h->min_inv;
	if (lo < moirai_hist_bucket_low(first) || lo > moirai_hist_bucket_high(first))
		h->min_inv = ~moirai_hist_bucket_low(first);
	hi = h->max;
	if (hi < moirai_hist_bucket_low(last) || hi > moirai_hist_bucket_high(last))
		h->max = moirai_hist_bucket_high(last);
}

static int32_t clamp_id(int32_t v)
{
	return v < -1 ? -1 : v;
}

static void worker_from(struct moirai_rt_snapshot_worker *o, const struct rt_pub_worker *r, int i,
			bool virt)
{
	struct moirai_rt_worker_stats *s = &o->stats;

	o->info.worker = i;
	o->info.pu = clamp_id(r->pu);
	o->info.node = clamp_id(r->node);
	o->info.plan_pu = clamp_id(r->plan_pu);
	o->info.plan_node = clamp_id(r->plan_node);
	o->info.node_idx = clamp_id(r->node_idx);
	o->info.l3 = clamp_id(r->l3);
	o->info.critical_only = r->flags & RT_PUB_WF_CRITICAL;
	o->info.virtual_placement = virt;
	o->state = r->state <= MOIRAI_RT_WORKER_EXITED ? (enum moirai_rt_worker_state)r->state
						       : MOIRAI_RT_WORKER_STARTING;
	o->level = r->level >= 0 && r->level < RT_PUB_LEVELS ? r->level : -1;
	o->running_ns = o->level >= 0 ? r->running_ns : 0;
	for (int l = 0; l < RT_PUB_LEVELS; l++) {
		s->tasks_run[l] = r->tasks_run[l];
		s->continuations[l] = r->continuations[l];
		s->aged_dispatches[l] = r->aged[l];
		s->queue_depth[l] = r->queue_depth[l];
	}
	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		s->steals[c] = r->steals[c];
	s->steal_attempts = r->steal_attempts;
	s->stolen_from = r->stolen_from;
	s->mailbox_full = r->mailbox_full;
	s->parks = r->parks;
	s->wakeups = r->wakeups;
	s->polls_busy = r->polls_busy;
	s->polls_idle = r->polls_idle;
	s->poll_busy_ns = r->poll_busy_ns;
	s->poll_idle_ns = r->poll_idle_ns;
	s->timers_fired = r->timers_fired;
	s->busy_ns = r->busy_ns;
	s->stuck_reports = r->stuck_reports;
	s->cancelled = r->cancelled;
}

int moirai_rt_monitor_read(struct moirai_rt_monitor *mon, struct moirai_rt_snapshot **out)
{
	const struct rt_pub_hdr *h;
	struct moirai_rt_snapshot *s;
	char why[192];
	int rc, n;

	if (!mon || !out)
		return moirai__err(-EINVAL, "rt monitor read: NULL argument");
	*out = NULL;
	rc = copy_consistent(mon);
	if (rc)
		return rc;
	h = (const void *)mon->buf;
	/* The writer may have rewritten anything since open: check again. */
	rc = rt_pub_check_layout(h, mon->size, why, sizeof(why));
	if (rc)
		return moirai__err(rc, "rt monitor: %s: %s", mon->path, why);
	if (memcmp(h, &mon->id, offsetof(struct rt_pub_hdr, seq)) != 0)
		return moirai__err(-EBADMSG,
				   "rt monitor: %s: layout or identity changed while open",
				   mon->path);
	n = (int)h->nworkers; /* checked: 1..RT_PUB_MAX_WORKERS, == open's */
	s = calloc(1, sizeof(*s) + (size_t)n * sizeof(s->worker[0]));
	if (!s)
		return moirai__err(-ENOMEM, "rt monitor: no memory for a snapshot");
	s->worker = (struct moirai_rt_snapshot_worker *)(s + 1);
	snprintf(s->name, sizeof(s->name), "%s", mon->name);
	memcpy(s->comm, h->comm, sizeof(s->comm));
	rt_pub_sanitize(s->comm, sizeof(s->comm));
	s->pid = h->pid;
	s->uid = (long)h->uid;
	s->start_time = h->start_time;
	s->period_ms = h->period_ms;
	s->seq = h->seq;
	s->publishes = h->publishes;
	s->time_ns = h->time_ns;
	s->publish_ns = h->publish_ns;
	s->publish_max_ns = h->publish_max_ns;
	s->idle = h->flags & RT_PUB_F_IDLE;
	s->workers = n;
	s->rt.workers = n;
	s->rt.virtual_placement = h->flags & RT_PUB_F_VIRTUAL;
	s->rt.stopping = h->flags & RT_PUB_F_STOPPING;
	s->rt.spawned = h->spawned;
	s->rt.refused = h->refused;
	s->rt.deferred_pending = h->deferred_pending;
	s->rt.deferred_freed = h->deferred_freed;
	s->rt.overflow_spills = h->overflow_spills;
	for (int i = 0; i < n; i++) {
		struct rt_pub_worker r;

		memcpy(&r, mon->buf + h->workers_off + (size_t)i * RT_PUB_WORKER_SIZE, sizeof(r));
		worker_from(&s->worker[i], &r, i, s->rt.virtual_placement);
	}
	for (unsigned k = 0; k < RT_PUB_HISTS; k++) {
		struct moirai_hist *dst = &s->latency[k / RT_PUB_LEVELS][k % RT_PUB_LEVELS];

		memcpy(dst, mon->buf + h->hists_off + (size_t)k * sizeof(struct moirai_hist),
		       sizeof(*dst));
		hist_sanitize(dst);
	}
	*out = s;
	return 0;
}

int moirai_rt_monitor_check(const struct moirai_rt_monitor *mon)
{
	char why[192];
	struct stat st;

	if (!mon)
		return moirai__err(-EINVAL, "rt monitor check: NULL argument");
	if (stat(mon->path, &st) != 0 || st.st_dev != mon->st.st_dev || st.st_ino != mon->st.st_ino)
		return moirai__err(
			-ENOENT,
			"rt monitor check: %s is gone or names another file (the runtime "
			"was destroyed)",
			mon->path);
	switch (rt_pub_liveness(&mon->id, why, sizeof(why))) {
	case MOIRAI_RT_SEGMENT_LIVE: return 0;
	case MOIRAI_RT_SEGMENT_UNKNOWN:
		return moirai__err(-EXDEV, "rt monitor check: %s: %s", mon->path, why);
	default: return moirai__err(-ESRCH, "rt monitor check: %s: %s", mon->path, why);
	}
}

int moirai_rt_snapshot_latency(const struct moirai_rt_snapshot *prev,
			       const struct moirai_rt_snapshot *cur, enum moirai_prio prio,
			       enum moirai_rt_latency kind, struct moirai_hist *out)
{
	const struct moirai_hist *a, *b;
	int l = moirai_prio_index(prio);
	unsigned first = MOIRAI_HIST_BUCKETS, last = 0;
	uint64_t count = 0, sum = 0;

	if (!cur || !out || l < 0 || (kind != MOIRAI_RT_LAT_WAIT && kind != MOIRAI_RT_LAT_RUN))
		return moirai__err(-EINVAL,
				   "rt snapshot latency: NULL argument, bad level or kind");
	if (prev && (prev->pid != cur->pid || prev->start_time != cur->start_time ||
		     strcmp(prev->name, cur->name) != 0 || prev->seq > cur->seq))
		return moirai__err(-EINVAL, "rt snapshot latency: snapshots of different runtimes "
					    "or in the wrong order");
	b = &cur->latency[kind][l];
	if (!prev) {
		*out = *b;
		return 0;
	}
	a = &prev->latency[kind][l];
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++) {
		uint64_t d = b->buckets[i] > a->buckets[i] ? b->buckets[i] - a->buckets[i] : 0, x;

		if (!d)
			continue;
		out->buckets[i] = d;
		count = sat_add(count, d);
		if (__builtin_mul_overflow(d, moirai_hist_bucket_low(i), &x))
			x = UINT64_MAX;
		sum = sat_add(sum, x);
		if (first == MOIRAI_HIST_BUCKETS)
			first = i;
		last = i;
	}
	if (!count)
		return 0;
	out->count = count;
	out->sum = sum;
	out->min_inv = ~moirai_hist_bucket_low(first);
	out->max = moirai_hist_bucket_high(last);
	return 0;
}

/* ---- listing and cleaning ---------------------------------------------- */

int moirai_rt_monitor_stat(const char *name, struct moirai_rt_segment *out)
{
	char path[RT_PUB_PATH_MAX];
	struct rt_pub_hdr h;
	struct stat st;
	int fd;

	if (!out || !rt_pub_name_ok(name))
		return moirai__err(-EINVAL, "rt monitor stat: NULL or bad segment name");
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (rt_pub_path(name, path, sizeof(path)))
		return moirai__err(-ENAMETOOLONG,
				   "rt monitor: the stats directory path is too long");
	if (lstat(path, &st) != 0) {
		int e = -errno;

		return moirai__err(e, "rt monitor: %s: %s", path,
				   e == -ENOENT ? "no such segment" : moirai_strerror(e));
	}
	out->uid = (long)st.st_uid;
	fd = rt_pub_open_checked(path, name, ANY_UID, &st, &h, out->detail, sizeof(out->detail));
	if (fd == -ENOENT)
		return moirai__err(-ENOENT, "rt monitor: %s: no such segment", path);
	if (fd < 0) {
		out->state = MOIRAI_RT_SEGMENT_INVALID;
		return 0;
	}
	close(fd);
	out->pid = h.pid;
	out->workers = (int)h.nworkers;
	memcpy(out->comm, h.comm, sizeof(out->comm));
	rt_pub_sanitize(out->comm, sizeof(out->comm));
	out->state = rt_pub_liveness(&h, out->detail, sizeof(out->detail));
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int moirai_rt_monitor_list(struct moirai_rt_segment *out, int max)
{
	const size_t plen = strlen(MOIRAI_RT_STATS_PREFIX);
	char **names = NULL;
	int found = 0, filled = 0, scanned = 0;
	struct dirent *ent;
	DIR *d;

	if (max < 0 || (max > 0 && !out))
		return moirai__err(-EINVAL, "rt monitor list: NULL or negative output");
	d = opendir(rt_pub_dir());
	if (!d) {
		int e = -errno;

		return moirai__err(e, "rt monitor: cannot list %s: %s", rt_pub_dir(),
				   moirai_strerror(e));
	}
	names = calloc(LIST_SCAN_MAX, sizeof(*names));
	if (!names) {
		closedir(d);
		return moirai__err(-ENOMEM, "rt monitor list: no memory");
	}
	while (scanned < LIST_SCAN_MAX && (ent = readdir(d))) {
		scanned++;
		if (strncmp(ent->d_name, MOIRAI_RT_STATS_PREFIX, plen) != 0 ||
		    !rt_pub_name_ok(ent->d_name + plen))
			continue;
		names[found] = strdup(ent->d_name + plen);
		if (names[found])
			found++;
	}
	closedir(d);
	qsort(names, (size_t)found, sizeof(*names), cmp_names);
	for (int i = 0; i < found; i++) {
		if (filled < max && moirai_rt_monitor_stat(names[i], &out[filled]) == 0)
			filled++;
		free(names[i]);
	}
	free(names);
	return found > max ? found : filled;
}

int moirai_rt_monitor_clean(const char *name)
{
	char path[RT_PUB_PATH_MAX], why[192];
	struct rt_pub_hdr h;
	struct stat st;
	int fd, rc;

	if (!rt_pub_name_ok(name))
		return moirai__err(-EINVAL, "rt monitor clean: bad segment name");
	if (rt_pub_path(name, path, sizeof(path)))
		return moirai__err(-ENAMETOOLONG,
				   "rt monitor: the stats directory path is too long");
	if (lstat(path, &st) != 0) {
		int e = -errno;

		return moirai__err(e, "rt monitor: %s: %s", path,
				   e == -ENOENT ? "no such segment" : moirai_strerror(e));
	}
	if (st.st_uid != geteuid())
		return moirai__err(-EPERM,
				   "rt monitor: %s is owned by uid %ld: only its owner removes it",
				   path, (long)st.st_uid);
	fd = rt_pub_open_checked(path, name, (long)geteuid(), &st, &h, why, sizeof(why));
	if (fd < 0)
		return moirai__err(fd == -ENOENT ? -ENOENT : -EPROTO,
				   "rt monitor: %s: %s; left alone", path, why);
	close(fd);
	switch (rt_pub_liveness(&h, why, sizeof(why))) {
	case MOIRAI_RT_SEGMENT_LIVE:
		return moirai__err(-EBUSY, "rt monitor: %s: process %d is alive", path, (int)h.pid);
	case MOIRAI_RT_SEGMENT_STALE: break;
	default: return moirai__err(-EBUSY, "rt monitor: %s: %s", path, why);
	}
	rc = rt_pub_reap(path, st.st_dev, st.st_ino);
	if (rc == -ENOENT)
		return moirai__err(-ENOENT, "rt monitor: %s: removed meanwhile", path);
	if (rc)
		return moirai__err(rc, "rt monitor: cannot remove %s: %s", path,
				   moirai_strerror(rc));
	return 0;
}
