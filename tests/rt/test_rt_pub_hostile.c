/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stats segment's reader against hostile writers (forked children):
 * wrong magic, version, record sizes, worker counts, offsets and sizes,
 * pid 0, a header uid or name that does not match, mode 0666, another
 * owner, a FIFO, a directory, a symlink, random bytes, random mutations of
 * valid segments, garbage in every body field, truncation while open, a
 * sequence kept odd, the identity rewritten while open, and a writer
 * publishing flat out (no torn copy is ever returned).  Every case ends in
 * a clear error or a snapshot whose every field is in range, within a
 * bounded time.
 */
#include "pub_test.h"

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

static void pause_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

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
			/* Publish back to back, every checked field the same value
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
				/* Sleep, not spin, between publishes: a writer that
				 * hogs its CPU is preempted inside its odd window on
				 * a loaded 2-core box and keeps the reader out for a
				 * whole time slice (CI saw 1 copy in 5 s). */
				pause_us(100);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_files), cmocka_unit_test(test_hostile_file_types),
		cmocka_unit_test(test_hostile_body),  cmocka_unit_test(test_hostile_fuzz),
		cmocka_unit_test(test_hostile_live),
	};
	int rc;

	if (setup_dir("pub-hostile"))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	remove_dir();
	return rc;
}
