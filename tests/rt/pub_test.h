/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the stats segment tests share (test_rt_pub.c, test_rt_pub_hostile.c):
 * a private stats directory, forked children that die with the test,
 * snapshots read with bounded waits, and forged segments (a valid image of
 * this process that a test then damages).
 */
#ifndef MOIRAI_TEST_PUB_H
#define MOIRAI_TEST_PUB_H

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

/* The private stats directory (main() creates it). */
static char dir[256];

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * In every forked child: die with the test.  A failed assertion leaves
 * the test function at once, before it could kill its children.
 */
/* The test process: forked children die with it. */
static pid_t test_pid;

static inline void child_dies_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != test_pid)
		_exit(0);
}

static inline void seg_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s", dir, MOIRAI_RT_STATS_PREFIX, name);
}

static inline bool seg_exists(const char *name)
{
	char p[512];

	seg_path(name, p, sizeof(p));
	return access(p, F_OK) == 0;
}

static inline struct moirai_rt *make_rt(const struct moirai_rt_config *cfg)
{
	struct moirai_rt *rt = NULL;
	int rc = moirai_rt_create(cfg, &rt);

	if (rc)
		fail_msg("moirai_rt_create: %d (%s)", rc, moirai_last_error());
	return rt;
}

static inline struct moirai_rt_snapshot *snap_of(struct moirai_rt_monitor *mon)
{
	struct moirai_rt_snapshot *s = NULL;
	int rc = moirai_rt_monitor_read(mon, &s);

	if (rc)
		fail_msg("moirai_rt_monitor_read: %d (%s)", rc, moirai_last_error());
	return s;
}

/* The first snapshot whose seq is at least @seq (bounded: 10 s). */
static inline struct moirai_rt_snapshot *snap_after(struct moirai_rt_monitor *mon, uint64_t seq)
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

/* ---- forged segments ------------------------------------------------------ */

struct image {
	unsigned char *buf;
	size_t size;
};

static inline struct rt_pub_hdr *hdr_of(struct image *im)
{
	return (struct rt_pub_hdr *)(void *)im->buf;
}

/* A valid segment of this process, @nw workers, some counts and latencies. */
static inline struct image make_image(const char *name, uint32_t nw)
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

static inline void write_image(const char *name, const void *buf, size_t size, mode_t mode)
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
static inline void in_child(void (*fn)(void *), void *arg)
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

/* ---- the private directory -------------------------------------------------- */

static inline void remove_dir(void)
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

/* Create the private stats directory and point the library at it. */
static inline int setup_dir(const char *tag)
{
	snprintf(dir, sizeof(dir), "/dev/shm/moirai-test-%s.XXXXXX", tag);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return -1;
	}
	test_pid = getpid();
	moirai_option_set_str(MOIRAI_OPT_RT_STATS_DIR, dir);
	moirai_option_set_str(MOIRAI_OPT_RT_STATS, "");
	return 0;
}

#endif /* MOIRAI_TEST_PUB_H */
