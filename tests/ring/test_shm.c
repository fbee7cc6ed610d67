/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared-memory transport (moirai/shm.h): exchange between forked
 * processes in both directions (order, exactly once, checksums), header
 * validation against corrupted and truncated segments, a peer killed with
 * SIGKILL mid-run (detection, recovery, a new client, no leaked file),
 * stale-segment reclaim, bad names and negative inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moirai/numa.h"
#include "moirai/shm.h"
#include "shm_int.h"
#include "shm_ring.h"
#include "testutil.h"

#define SEC 1000000000LL

static char *seg_name(const char *tag)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "t%d-%s", (int)getpid(), tag);
	return buf;
}

static bool seg_file_exists(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	return stat(path, &st) == 0;
}

/* Message i: [u64 seq][u32 sum][payload of (i * 7) % room bytes]. */
static uint32_t fill_msg(struct moirai_shm *seg, struct moirai_shm_msg *m, uint64_t seq)
{
	unsigned char *d = moirai_shm_msg_data(m);
	size_t room = moirai_shm_buf_size(seg) - 12;
	size_t n = (size_t)((seq * 7) % room);
	uint32_t sum = 0;

	memcpy(d, &seq, 8);
	for (size_t i = 0; i < n; i++) {
		d[12 + i] = (unsigned char)(seq * 31 + i);
		sum = sum * 33 + d[12 + i];
	}
	memcpy(d + 8, &sum, 4);
	moirai_shm_msg_set_len(seg, m, 12 + n);
	return sum;
}

/* 0 when message is seq @expect with an intact payload. */
static int check_msg(struct moirai_shm *seg, struct moirai_shm_msg *m, uint64_t expect)
{
	const unsigned char *d = moirai_shm_msg_data(m);
	size_t room = moirai_shm_buf_size(seg) - 12;
	uint64_t seq;
	uint32_t sum = 0, want;

	memcpy(&seq, d, 8);
	memcpy(&want, d + 8, 4);
	if (seq != expect || moirai_shm_msg_len(seg, m) != 12 + (seq * 7) % room)
		return -1;
	for (size_t i = 0; i < moirai_shm_msg_len(seg, m) - 12; i++) {
		if (d[12 + i] != (unsigned char)(seq * 31 + i))
			return -2;
		sum = sum * 33 + d[12 + i];
	}
	return sum == want ? 0 : -3;
}

static int send_one(struct moirai_shm *seg, uint64_t seq)
{
	struct moirai_shm_msg *m;
	int rc;

	uint64_t give_up = moirai_now_ns() + 10 * SEC;

	/* The peer returns buffers as it frees them: wait for one, 10 s at
	 * most (a peer that never frees fails the test, not hangs it). */
	while ((rc = moirai_shm_alloc(seg, moirai_shm_buf_size(seg), &m)) == -ENOBUFS) {
		if (moirai_now_ns() > give_up)
			return -ETIMEDOUT;
		usleep(50);
	}
	if (rc)
		return rc;
	fill_msg(seg, m, seq);
	return moirai_shm_send(seg, m);
}

static int recv_one(struct moirai_shm *seg, uint64_t expect)
{
	struct moirai_shm_msg *m;
	int rc = moirai_shm_recv(seg, &m, 10 * SEC);

	if (rc)
		return rc;
	rc = check_msg(seg, m, expect);
	if (moirai_shm_free(seg, m) != 0)
		return -100;
	return rc;
}

/* A lying peer: put any index on the data ring, as a buggy sender would. */
static int forge_send(struct moirai_shm *from, uint32_t idx)
{
	int ok;

	shm_lock(&from->tx.lock);
	ok = shm_ring_enqueue_bulk(&from->tx, &idx, 1) == 1;
	shm_unlock(&from->tx.lock);
	return ok ? 0 : -ENOBUFS;
}

/* ---- in-process basics ------------------------------------------------ */

static void test_local_pair(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 256, .bufs = 8 };
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m, *m2, *all[8];
	const char *name = seg_name("local");

	(void)state;
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_true(seg_file_exists(name));
	assert_int_equal(moirai_shm_side(srv), 0);
	assert_false(moirai_shm_peer_alive(srv));
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_int_equal(moirai_shm_side(cli), 1);
	assert_true(moirai_shm_peer_alive(srv));
	assert_true(moirai_shm_peer_alive(cli));
	assert_int_equal(moirai_shm_buf_size(cli), 256);
	assert_int_equal(moirai_shm_free_count(srv), 8);

	/* Both directions, payload intact, 64-byte aligned. */
	assert_int_equal(moirai_shm_alloc(srv, 5, &m), 0);
	assert_int_equal((uintptr_t)moirai_shm_msg_data(m) % 64, 0);
	memcpy(moirai_shm_msg_data(m), "hello", 5);
	assert_int_equal(moirai_shm_send(srv, m), 0);
	assert_int_equal(moirai_shm_free_count(srv), 7);
	assert_int_equal(moirai_shm_recv(cli, &m2, 0), 0);
	assert_int_equal(moirai_shm_msg_len(cli, m2), 5);
	assert_memory_equal(moirai_shm_msg_data(m2), "hello", 5);
	assert_int_equal(moirai_shm_free(cli, m2), 0);
	assert_int_equal(moirai_shm_free(cli, m2), -EINVAL);
	assert_int_equal(moirai_shm_free_count(srv), 8);
	assert_int_equal(moirai_shm_recv(cli, &m2, 0), -EAGAIN);
	assert_int_equal(moirai_shm_recv(srv, &m2, 20000000), -ETIMEDOUT);

	assert_int_equal(moirai_shm_alloc(cli, 3, &m), 0);
	memcpy(moirai_shm_msg_data(m), "abc", 3);
	assert_int_equal(moirai_shm_send(cli, m), 0);
	assert_int_equal(moirai_shm_send(cli, m), -EINVAL); /* already sent */
	assert_int_equal(moirai_shm_recv(srv, &m2, SEC), 0);
	assert_memory_equal(moirai_shm_msg_data(m2), "abc", 3);
	/* A received message cannot be sent on, only freed. */
	assert_int_equal(moirai_shm_send(srv, m2), -EINVAL);
	assert_int_equal(moirai_shm_free(srv, m2), 0);

	/* Exhaustion, then everything comes back exactly. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(moirai_shm_alloc(srv, 1, &all[i]), 0);
	assert_int_equal(moirai_shm_alloc(srv, 1, &m), -ENOBUFS);
	assert_int_equal(moirai_shm_free_count(srv), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(moirai_shm_free(srv, all[i]), 0);
	assert_int_equal(moirai_shm_free_count(srv), 8);
	assert_int_equal(moirai_shm_alloc(srv, 257, &m), -EMSGSIZE);
	assert_int_equal(moirai_shm_alloc(srv, 256, &m), 0);
	assert_int_equal(moirai_shm_msg_set_len(srv, m, 257), -EMSGSIZE);
	assert_int_equal(moirai_shm_msg_set_len(cli, m, 1), -EINVAL);
	assert_int_equal(moirai_shm_free(srv, m), 0);

	/* Client detaches: the server sees it, recovers, a new client comes. */
	assert_int_equal(moirai_shm_alloc(srv, 1, &m), 0);
	assert_int_equal(moirai_shm_send(srv, m), 0); /* stranded at the client */
	moirai_shm_detach(cli);
	assert_false(moirai_shm_peer_alive(srv));
	assert_int_equal(moirai_shm_recv(srv, &m2, SEC), -EPIPE);
	assert_int_equal(moirai_shm_alloc(srv, 1, &m), 0);
	assert_int_equal(moirai_shm_send(srv, m), -EPIPE);
	assert_int_equal(moirai_shm_free(srv, m), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBUSY);
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), 8);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_int_equal(moirai_shm_free_count(cli), 8);
	assert_int_equal(moirai_shm_recv(cli, &m2, 0), -EAGAIN);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* ---- fork: exchange ------------------------------------------------------ */

static long exchange_count(void)
{
	return 20000 * test_scale();
}

/* Child: receive N in order, then send N back. Exit code 0 = all good. */
static void exchange_child(void *arg)
{
	const char *name = arg;
	struct moirai_shm *cli;
	long n = exchange_count();

	alarm(60);
	if (moirai_shm_attach(name, NULL, &cli) != 0)
		_exit(10);
	for (long i = 0; i < n; i++) {
		int rc = recv_one(cli, (uint64_t)i);

		if (rc)
			_exit(rc == -ETIMEDOUT ? 12 : 11);
	}
	for (long i = 0; i < n; i++)
		if (send_one(cli, (uint64_t)(1000000 + i)) != 0)
			_exit(13);
	moirai_shm_detach(cli);
	_exit(0);
}

static void test_fork_exchange(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 512, .bufs = 64 };
	struct moirai_shm *srv;
	struct moirai_shm_msg *m;
	char name[64];
	long n = exchange_count();
	pid_t pid;
	int status;

	(void)state;
	snprintf(name, sizeof(name), "%s", seg_name("xchg"));
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exchange_child(name);
	alarm(60);
	/* Server -> client: more messages than buffers, so every buffer goes
	 * round the return ring many times. */
	for (long i = 0; i < n; i++)
		assert_int_equal(send_one(srv, (uint64_t)i), 0);
	for (long i = 0; i < n; i++)
		assert_int_equal(recv_one(srv, (uint64_t)(1000000 + i)), 0);
	/* Exactly once: nothing more, then the client's departure. */
	assert_int_equal(moirai_shm_recv(srv, &m, 5 * SEC), -EPIPE);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	alarm(0);
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), 64);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* ---- bursts -------------------------------------------------------------- */

/* Offset of a message in its segment: the two handles map it apart. */
static ptrdiff_t msg_off(const struct moirai_shm *seg, const struct moirai_shm_msg *m)
{
	return (const char *)m - (const char *)seg->hdr;
}

static void test_burst_local(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 64, .bufs = 16 };
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m[MOIRAI_SHM_BURST_MAX + 1], *r[16];
	const char *name = seg_name("burst");

	(void)state;
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(moirai_shm_alloc(cli, 4, &m[i]), 0);
		memcpy(moirai_shm_msg_data(m[i]), &i, 4);
	}
	assert_int_equal(moirai_shm_send_bulk(cli, m, 0), 0);
	assert_int_equal(moirai_shm_send_bulk(cli, m, 5), 0);
	assert_int_equal(moirai_shm_recv_burst(srv, r, 16, SEC), 5);
	for (int i = 0; i < 5; i++) {
		int v;

		memcpy(&v, moirai_shm_msg_data(r[i]), 4);
		assert_int_equal(v, i); /* send order */
		assert_int_equal(moirai_shm_free(srv, r[i]), 0);
	}
	assert_int_equal(moirai_shm_recv_burst(srv, r, 16, 0), -EAGAIN);

	/* All or nothing: a duplicate, or a buffer already sent, sends none. */
	assert_int_equal(moirai_shm_alloc(cli, 1, &m[0]), 0);
	assert_int_equal(moirai_shm_alloc(cli, 1, &m[1]), 0);
	m[2] = m[0];
	assert_int_equal(moirai_shm_send_bulk(cli, m, 3), -EINVAL);
	assert_int_equal(moirai_shm_recv_burst(srv, r, 16, 0), -EAGAIN);
	assert_int_equal(moirai_shm_send(cli, m[1]), 0);
	assert_int_equal(moirai_shm_send_bulk(cli, m, 2), -EINVAL);
	assert_int_equal(moirai_shm_recv_burst(srv, r, 16, 0), 1);
	assert_int_equal(msg_off(srv, r[0]), msg_off(cli, m[1]));
	assert_int_equal(moirai_shm_free(srv, r[0]), 0);
	assert_int_equal(moirai_shm_send_bulk(cli, m, 1), 0); /* m[0] still held */
	assert_int_equal(moirai_shm_recv_burst(srv, r, 1, 0), 1);
	assert_int_equal(moirai_shm_free(srv, r[0]), 0);

	/* A batch with one invalid index: the valid ones still arrive. */
	uint32_t bogus = 0;

	assert_int_equal(moirai_shm_alloc(cli, 1, &m[0]), 0);
	assert_int_equal(moirai_shm_send(cli, m[0]), 0);
	assert_int_equal(forge_send(cli, bogus), 0);
	assert_int_equal(moirai_shm_alloc(cli, 1, &m[1]), 0);
	assert_int_equal(moirai_shm_send(cli, m[1]), 0);
	assert_int_equal(moirai_shm_recv_burst(srv, r, 16, 0), 2);
	assert_int_equal(msg_off(srv, r[0]), msg_off(cli, m[0]));
	assert_int_equal(msg_off(srv, r[1]), msg_off(cli, m[1]));
	assert_int_equal(moirai_shm_free(srv, r[0]), 0);
	assert_int_equal(moirai_shm_free(srv, r[1]), 0);
	assert_int_equal(forge_send(cli, bogus), 0);
	assert_int_equal(moirai_shm_recv_burst(srv, r, 16, 0), -EBADMSG);

	/* Limits. */
	assert_int_equal(moirai_shm_send_bulk(cli, m, MOIRAI_SHM_BURST_MAX + 1), -EINVAL);
	assert_int_equal(moirai_shm_send_bulk(cli, NULL, 1), -EINVAL);
	assert_int_equal(moirai_shm_send_bulk(NULL, m, 1), -EINVAL);
	assert_int_equal(moirai_shm_recv_burst(srv, r, 0, 0), -EINVAL);
	assert_int_equal(moirai_shm_recv_burst(srv, r, MOIRAI_SHM_BURST_MAX + 1, 0), -EINVAL);
	assert_int_equal(moirai_shm_recv_burst(srv, NULL, 1, 0), -EINVAL);
	assert_int_equal(moirai_shm_free_count(cli), 16);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
}

/* Child: receive N in bursts, in order, checksums intact. */
static void burst_child(void *arg)
{
	const char *name = arg;
	struct moirai_shm *cli;
	struct moirai_shm_msg *r[32];
	long n = exchange_count(), got = 0;

	alarm(60);
	if (moirai_shm_attach(name, NULL, &cli) != 0)
		_exit(10);
	while (got < n) {
		int k = moirai_shm_recv_burst(cli, r, 32, 10 * SEC);

		if (k <= 0)
			_exit(11);
		for (int i = 0; i < k; i++) {
			if (check_msg(cli, r[i], (uint64_t)got++) != 0)
				_exit(12);
			if (moirai_shm_free(cli, r[i]) != 0)
				_exit(13);
		}
	}
	moirai_shm_detach(cli);
	_exit(0);
}

static void test_fork_burst(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 256, .bufs = 64 };
	struct moirai_shm *srv;
	struct moirai_shm_msg *m[16];
	char name[64];
	long n = exchange_count(), sent = 0;
	pid_t pid;
	int status;

	(void)state;
	snprintf(name, sizeof(name), "%s", seg_name("fburst"));
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		burst_child(name);
	alarm(60);
	while (sent < n) {
		unsigned k = 0, want = (unsigned)(1 + sent % 16);

		/* Take what is free now, up to want (at least one). */
		while (k < want && sent + k < n && moirai_shm_alloc(srv, 256, &m[k]) == 0)
			fill_msg(srv, m[k], (uint64_t)(sent + k)), k++;
		if (k == 0) {
			usleep(50);
			continue;
		}
		assert_int_equal(moirai_shm_send_bulk(srv, m, k), 0);
		sent += k;
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	alarm(0);
	assert_int_equal(moirai_shm_recv(srv, m, 0), -EPIPE);
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), 64);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* ---- corrupt headers ----------------------------------------------------- */

static int patch(const char *name, off_t off, const void *data, size_t len)
{
	char path[128];
	int fd;
	ssize_t w;

	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	w = pwrite(fd, data, len, off);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static void test_corrupt_header(void **state)
{
	struct moirai_shm *srv, *cli;
	struct shm_hdr good;
	const char *name = seg_name("corrupt");
	char path[128];
	uint64_t bad64 = 0x1122334455667788ULL;
	uint32_t bad32 = 99;

	(void)state;
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	memcpy(&good, srv->hdr, sizeof(good));

	assert_int_equal(patch(name, offsetof(struct shm_hdr, magic), &bad64, 8), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EPROTO);
	assert_non_null(strstr(moirai_last_error(), "magic"));
	assert_int_equal(patch(name, 0, &good, sizeof(good)), 0);

	assert_int_equal(patch(name, offsetof(struct shm_hdr, version), &bad32, 4), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EPROTO);
	assert_non_null(strstr(moirai_last_error(), "version 99"));
	assert_int_equal(patch(name, 0, &good, sizeof(good)), 0);

	assert_int_equal(patch(name, offsetof(struct shm_hdr, ring_off[2]), &bad64, 8), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "inconsistent"));
	assert_int_equal(patch(name, 0, &good, sizeof(good)), 0);

	bad32 = 0;
	assert_int_equal(patch(name, offsetof(struct shm_hdr, bufs), &bad32, 4), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBADMSG);
	assert_int_equal(patch(name, 0, &good, sizeof(good)), 0);

	/* The ring geometry is checked like the rest (and only at attach:
	 * after that the attacher's own copy is what it uses). */
	{
		uint32_t forged = good.ring_size * 2;

		assert_int_equal(patch(name, offsetof(struct shm_hdr, ring_size), &forged, 4), 0);
		assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBADMSG);
		assert_non_null(strstr(moirai_last_error(), "inconsistent"));
		assert_int_equal(patch(name, 0, &good, sizeof(good)), 0);
		assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
		moirai_shm_detach(cli);
		assert_int_equal(moirai_shm_recover(srv), 0);
	}

	/* Truncated: shorter than the header says, then than the header. */
	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	assert_int_equal(truncate(path, (off_t)good.seg_size - 4096), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "truncated"));
	assert_int_equal(truncate(path, 10), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "truncated"));
	/* The server's mapping is now partly beyond EOF: drop it unused. */
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));

	/* A foreign file under our prefix. */
	int fd = open(path, O_CREAT | O_RDWR | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 65536), 0);
	close(fd);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EPROTO);
	/* create does not clobber a file it does not recognise. */
	assert_int_equal(moirai_shm_create(name, NULL, &srv), -EEXIST);
	unlink(path);
}

/* ---- killed peer --------------------------------------------------------- */

/* Child client: send 100, keep 3 server messages, then spin sending. */
static void killed_child(void *arg)
{
	const char *name = arg;
	struct moirai_shm *cli;
	struct moirai_shm_msg *m;

	alarm(60);
	if (moirai_shm_attach(name, NULL, &cli) != 0)
		_exit(10);
	for (int i = 0; i < 3; i++)
		if (moirai_shm_recv(cli, &m, 10 * SEC) != 0) /* held forever */
			_exit(11);
	for (uint64_t i = 0;; i++) {
		if (send_one(cli, i) != 0)
			_exit(12);
		if (i >= 100)
			usleep(100);
	}
}

static void test_killed_client(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 128, .bufs = 32 };
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m, *held[5];
	char name[64];
	uint64_t expect = 0;
	pid_t pid;
	int rc, status;

	(void)state;
	snprintf(name, sizeof(name), "%s", seg_name("killed"));
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	/* Five server buffers go to the client: it keeps 3, 2 stay queued. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(send_one(srv, (uint64_t)i), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		killed_child(name);
	alarm(60);
	for (; expect < 150; expect++)
		assert_int_equal(recv_one(srv, expect), 0);
	/* Hold two client messages across the kill. */
	assert_int_equal(moirai_shm_recv(srv, &held[0], 10 * SEC), 0);
	assert_int_equal(moirai_shm_recv(srv, &held[1], 10 * SEC), 0);
	expect += 2;
	assert_true(moirai_shm_peer_alive(srv));
	assert_int_equal(kill(pid, SIGKILL), 0);
	/* Not reaped yet (a zombie): must already count as dead.  Drain what
	 * it sent, in order, until -EPIPE. */
	for (;;) {
		rc = moirai_shm_recv(srv, &m, 10 * SEC);
		if (rc)
			break;
		assert_int_equal(check_msg(srv, m, expect++), 0);
		assert_int_equal(moirai_shm_free(srv, m), 0);
	}
	assert_int_equal(rc, -EPIPE);
	assert_false(moirai_shm_peer_alive(srv));
	assert_int_equal(moirai_shm_recover(srv), -EBUSY); /* held[] */
	assert_non_null(strstr(moirai_last_error(), "not freed"));
	assert_int_equal(moirai_shm_free(srv, held[0]), 0);
	assert_int_equal(moirai_shm_free(srv, held[1]), 0);
	assert_int_equal(moirai_shm_recover(srv), 0);
	/* Every server buffer is back, including the 3 the child held. */
	assert_int_equal(moirai_shm_free_count(srv), 32);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	/* A new client works on the recovered segment. */
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_int_equal(send_one(srv, 7), 0);
	assert_int_equal(recv_one(cli, 7), 0);
	assert_int_equal(send_one(cli, 8), 0);
	assert_int_equal(recv_one(srv, 8), 0);
	moirai_shm_detach(cli);
	alarm(0);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/*
 * A survivor that polls with timeouts shorter than the 10 ms liveness
 * slice must still see a death: before the fix every such wait timed out
 * before its first look at the peer's lock, and the loop got -ETIMEDOUT
 * for ever (found by moirai-stress shm).
 */
static void test_killed_short_timeouts(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 128, .bufs = 32 };
	struct moirai_shm *srv;
	struct moirai_shm_msg *m;
	char name[64];
	uint64_t t0;
	pid_t pid;
	int rc = 0, status, pfd[2];

	(void)state;
	snprintf(name, sizeof(name), "%s", seg_name("shortto"));
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct moirai_shm *cli;

		if (moirai_shm_attach(name, NULL, &cli) != 0)
			_exit(10);
		if (send_one(cli, 0) != 0)
			_exit(11);
		if (write(pfd[1], "x", 1) != 1)
			_exit(12);
		pause(); /* killed here, still attached */
		_exit(13);
	}
	{
		char c;

		assert_int_equal(read(pfd[0], &c, 1), 1);
	}
	assert_int_equal(recv_one(srv, 0), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* 1 ms and 5 ms timeouts, for up to 5 s: -EPIPE must come. */
	t0 = moirai_now_ns();
	for (int i = 0; moirai_now_ns() - t0 < 5 * SEC; i++) {
		rc = moirai_shm_recv(srv, &m, (i % 2 ? 1 : 5) * 1000000LL);
		if (rc != -ETIMEDOUT)
			break;
	}
	assert_int_equal(rc, -EPIPE);
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), 32);
	close(pfd[0]);
	close(pfd[1]);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* Child server: create, signal readiness through a pipe, wait to die. */
static void test_killed_server(void **state)
{
	struct moirai_shm *cli;
	struct moirai_shm_msg *m;
	char name[64];
	int pfd[2], rc;
	pid_t pid;
	char c;

	(void)state;
	snprintf(name, sizeof(name), "%s", seg_name("ksrv"));
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct moirai_shm *srv;

		alarm(60);
		if (moirai_shm_create(name, NULL, &srv) != 0)
			_exit(10);
		if (send_one(srv, 0) != 0 || write(pfd[1], "r", 1) != 1)
			_exit(11);
		for (;;)
			pause();
	}
	alarm(60);
	close(pfd[1]); /* a child that fails closes the pipe: read sees EOF */
	assert_int_equal(read(pfd[0], &c, 1), 1);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_true(moirai_shm_peer_alive(cli));
	assert_int_equal(recv_one(cli, 0), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	rc = moirai_shm_recv(cli, &m, 10 * SEC);
	assert_int_equal(rc, -EPIPE);
	assert_false(moirai_shm_peer_alive(cli));
	assert_int_equal(moirai_shm_recover(cli), -EINVAL); /* client side */
	/* The survivor tears down: no file left behind. */
	assert_true(seg_file_exists(name));
	moirai_shm_destroy(cli);
	assert_false(seg_file_exists(name));
	/* And a dead server's segment is refused to new clients, then
	 * reclaimed by a new server. */
	alarm(0);
	close(pfd[0]);
}

static void stale_child(void *arg)
{
	struct moirai_shm *srv;

	if (moirai_shm_create(arg, NULL, &srv) != 0)
		_exit(10);
	_exit(0); /* dies without destroy: the file stays */
}

static void test_stale_reclaim(void **state)
{
	struct moirai_shm *srv, *cli;
	char name[64];
	int status;

	(void)state;
	snprintf(name, sizeof(name), "%s", seg_name("stale"));
	status = test_run_in_child(stale_child, name);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(seg_file_exists(name));
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -ECONNREFUSED);
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	assert_int_equal(moirai_shm_create(name, NULL, &cli), -EEXIST);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* Start time of @pid (/proc/PID/stat field 22), as the old format kept it. */
static uint64_t proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

/*
 * Liveness is the client's lock, not the words in its side block: a slot
 * forged to say "attached by pid 1, started at pid 1's start time" (which
 * used to look alive forever, so recover never succeeded) is a dead
 * client; a process that holds the lock is alive whatever the words say.
 */
static void test_liveness_lock(void **state)
{
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m;
	const char *name = seg_name("live");
	struct shm_side *side;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1 };
	char path[128];
	int fd;

	(void)state;
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	side = &srv->hdr->side[1];
	atomic_store(&side->pid, 1);
	atomic_store(&side->start_time, proc_start_time(1));
	atomic_store(&side->state, SHM_SIDE_ATTACHED);
	assert_false(moirai_shm_peer_alive(srv));
	/* Gone once the receive looks at the lock (after one silent slice). */
	assert_int_equal(moirai_shm_recv(srv, &m, 2 * SEC), -EPIPE);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBUSY);
	assert_non_null(strstr(moirai_last_error(), "recover"));
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_true(moirai_shm_peer_alive(srv));
	assert_true(moirai_shm_peer_alive(cli));
	/* A live client that scribbles EMPTY or DETACHED over its words: the
	 * lock still says alive, so recover refuses. */
	atomic_store(&side->state, SHM_SIDE_EMPTY);
	assert_true(moirai_shm_peer_alive(srv));
	assert_int_equal(moirai_shm_recover(srv), -EBUSY);
	assert_non_null(strstr(moirai_last_error(), "lock"));
	moirai_shm_detach(cli);
	assert_false(moirai_shm_peer_alive(srv));

	/* Someone holding the client's byte (another open of the file) is a
	 * client as far as the segment is concerned. */
	assert_int_equal(moirai_shm_recover(srv), 0);
	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	assert_true(moirai_shm_peer_alive(srv));
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBUSY);
	assert_int_equal(moirai_shm_recover(srv), -EBUSY);
	close(fd); /* as a death would */
	assert_false(moirai_shm_peer_alive(srv));
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* ---- negative inputs ----------------------------------------------------- */

static void test_negative(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 64, .bufs = 4 };
	struct moirai_shm *srv, *cli, *cli2;
	struct moirai_shm_msg *m;
	char big[100], fake[128] __attribute__((aligned(64)));
	const char *name = seg_name("neg");

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const char *bad[] = { "", ".hidden", "a/b", "sp ace", "x*", big };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(moirai_shm_create(bad[i], NULL, &srv), -EINVAL);
		assert_int_equal(moirai_shm_attach(bad[i], NULL, &cli), -EINVAL);
	}
	assert_int_equal(moirai_shm_create(NULL, NULL, &srv), -EINVAL);
	assert_int_equal(moirai_shm_create(name, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_shm_attach(NULL, NULL, &cli), -EINVAL);
	assert_int_equal(moirai_shm_attach(name, NULL, NULL), -EINVAL);
	assert_int_equal(moirai_shm_attach("no-such-segment-xyz", NULL, &cli), -ENOENT);
	o.buf_size = MOIRAI_SHM_BUF_MAX + 1;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -EINVAL);
	o.buf_size = 64;
	o.bufs = MOIRAI_SHM_BUFS_MAX + 1;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -EINVAL);
	o.bufs = 4;
	o.flags = MOIRAI_SHM_F_BIND_NODE;
	o.node = 4096;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -ENODEV);
	o.node = -5;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -EINVAL);
	o.flags = 1u << 7;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -EINVAL);
	assert_int_equal(moirai_shm_attach(name, &o, &cli), -EINVAL);
	o.flags = MOIRAI_SHM_F_SHARED;
	o.mode = 0606 | 0111;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -EINVAL);
	o.mode = 0066;
	assert_int_equal(moirai_shm_create(name, &o, &srv), -EINVAL);
	o.flags = 0;
	o.mode = 0;
	assert_false(seg_file_exists(name));

	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_create(name, &o, &cli), -EEXIST);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli2), -EBUSY);
	assert_non_null(strstr(moirai_last_error(), "attached"));
	assert_int_equal(moirai_shm_recover(srv), -EBUSY);
	assert_int_equal(moirai_shm_recover(NULL), -EINVAL);

	assert_int_equal(moirai_shm_alloc(NULL, 1, &m), -EINVAL);
	assert_int_equal(moirai_shm_alloc(srv, 1, NULL), -EINVAL);
	assert_int_equal(moirai_shm_send(NULL, NULL), -EINVAL);
	assert_int_equal(moirai_shm_send(srv, NULL), -EINVAL);
	assert_int_equal(moirai_shm_send(srv, (struct moirai_shm_msg *)fake), -EINVAL);
	assert_int_equal(moirai_shm_free(srv, (struct moirai_shm_msg *)fake), -EINVAL);
	assert_int_equal(moirai_shm_recv(NULL, &m, 0), -EINVAL);
	assert_int_equal(moirai_shm_recv(srv, NULL, 0), -EINVAL);
	/* A client buffer is not the server's to send, nor mid-slot pointers. */
	assert_int_equal(moirai_shm_alloc(cli, 1, &m), 0);
	assert_int_equal(moirai_shm_send(srv, m), -EINVAL);
	assert_int_equal(moirai_shm_free(srv, m), -EINVAL);
	assert_int_equal(moirai_shm_send(cli, (struct moirai_shm_msg *)((char *)m + 8)), -EINVAL);
	assert_int_equal(moirai_shm_free(cli, m), 0);
	assert_int_equal(moirai_shm_free(cli, m), -EINVAL);
	assert_int_equal(moirai_shm_msg_set_len(NULL, m, 1), -EINVAL);
	assert_null(moirai_shm_msg_data(NULL));
	assert_int_equal(moirai_shm_msg_len(NULL, NULL), 0);
	assert_int_equal(moirai_shm_buf_size(NULL), 0);
	assert_int_equal(moirai_shm_side(NULL), -1);
	assert_false(moirai_shm_peer_alive(NULL));
	assert_int_equal(moirai_shm_free_count(NULL), 0);

	/* A timeout below -1 is refused before anything moves, even with a
	 * message waiting. */
	assert_int_equal(moirai_shm_alloc(cli, 1, &m), 0);
	assert_int_equal(moirai_shm_send(cli, m), 0);
	assert_int_equal(moirai_shm_recv(srv, &m, -2), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "below -1"));
	assert_int_equal(moirai_shm_recv_burst(srv, &m, 1, INT64_MIN), -EINVAL);
	assert_int_equal(moirai_shm_recv(srv, &m, MOIRAI_TIMEOUT_TRY), 0);
	assert_int_equal(moirai_shm_free(srv, m), 0);

	/* A lying peer: an index outside its half, a length too long. */
	uint32_t idx = 0; /* a server buffer, "sent" by the client */

	assert_int_equal(forge_send(cli, idx), 0);
	assert_int_equal(moirai_shm_recv(srv, &m, 0), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "not one of its own"));
	assert_int_equal(moirai_shm_alloc(cli, 1, &m), 0);
	assert_int_equal(moirai_shm_send(cli, m), 0);
	m->len = 1000; /* after the send: the receiver must not trust it */
	assert_int_equal(moirai_shm_recv(srv, &m, 0), -EBADMSG);
	assert_non_null(strstr(moirai_last_error(), "length 1000"));

	moirai_shm_detach(NULL);
	moirai_shm_destroy(NULL);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* ---- threads: several senders and receivers per side ---------------------- */

#define MT_THREADS 2

struct mt {
	struct moirai_shm *tx, *rx;
	long per_thread;
	_Atomic long received;
	_Atomic long failures;
	unsigned char *seen; /* [sender][seq] delivered count */
};

struct mt_arg {
	struct mt *mt;
	int id;
};

static void *mt_sender(void *arg)
{
	struct mt_arg *a = arg;
	struct mt *mt = a->mt;

	for (long i = 0; i < mt->per_thread; i++) {
		struct moirai_shm_msg *m;
		uint64_t tag = ((uint64_t)a->id << 32) | (uint64_t)i;
		int rc;

		while ((rc = moirai_shm_alloc(mt->tx, 16, &m)) == -ENOBUFS)
			sched_yield();
		if (rc) {
			atomic_fetch_add(&mt->failures, 1);
			return NULL;
		}
		memcpy(moirai_shm_msg_data(m), &tag, 8);
		if (moirai_shm_send(mt->tx, m) != 0)
			atomic_fetch_add(&mt->failures, 1);
	}
	return NULL;
}

static void *mt_receiver(void *arg)
{
	struct mt *mt = arg;
	long total = mt->per_thread * MT_THREADS;

	while (atomic_load(&mt->received) < total) {
		struct moirai_shm_msg *m;
		uint64_t tag;
		int rc = moirai_shm_recv(mt->rx, &m, 20000000);

		if (rc == -ETIMEDOUT)
			continue;
		if (rc) {
			atomic_fetch_add(&mt->failures, 1);
			return NULL;
		}
		memcpy(&tag, moirai_shm_msg_data(m), 8);
		if ((tag >> 32) >= MT_THREADS || (long)(uint32_t)tag >= mt->per_thread)
			atomic_fetch_add(&mt->failures, 1);
		else
			__atomic_fetch_add(&mt->seen[(tag >> 32) * mt->per_thread + (uint32_t)tag],
					   1, __ATOMIC_RELAXED);
		if (moirai_shm_free(mt->rx, m) != 0)
			atomic_fetch_add(&mt->failures, 1);
		atomic_fetch_add(&mt->received, 1);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 64, .bufs = 32 };
	struct moirai_shm *srv, *cli;
	struct mt mt = { 0 };
	struct mt_arg args[MT_THREADS];
	pthread_t snd[MT_THREADS], rcv[MT_THREADS];
	const char *name = seg_name("mt");

	(void)state;
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	mt.tx = cli;
	mt.rx = srv;
	mt.per_thread = 20000 * test_scale();
	mt.seen = calloc((size_t)mt.per_thread * MT_THREADS, 1);
	assert_non_null(mt.seen);
	alarm(120);
	for (int i = 0; i < MT_THREADS; i++) {
		args[i] = (struct mt_arg){ .mt = &mt, .id = i };
		assert_int_equal(pthread_create(&rcv[i], NULL, mt_receiver, &mt), 0);
		assert_int_equal(pthread_create(&snd[i], NULL, mt_sender, &args[i]), 0);
	}
	for (int i = 0; i < MT_THREADS; i++) {
		pthread_join(snd[i], NULL);
		pthread_join(rcv[i], NULL);
	}
	alarm(0);
	assert_int_equal(atomic_load(&mt.failures), 0);
	/* Exactly once: every (sender, seq) delivered one time. */
	for (long i = 0; i < mt.per_thread * MT_THREADS; i++)
		if (mt.seen[i] != 1)
			fail_msg("message %ld delivered %d times", i, mt.seen[i]);
	assert_int_equal(moirai_shm_free_count(cli), 32);
	assert_int_equal(moirai_shm_free_count(srv), 32);
	free(mt.seen);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
}

/* ---- placement ---------------------------------------------------------- */

static void test_node_binding(void **state)
{
	int tested = 0;

	(void)state;
	for (int node = 0; node < moirai_numa_node_count(); node++) {
		struct moirai_shm_opts o = {
			.buf_size = 4096, .bufs = 16, .node = node, .flags = MOIRAI_SHM_F_BIND_NODE
		};
		struct moirai_shm *srv, *cli;
		struct moirai_shm_msg *m;
		const char *name = seg_name("node");

		if (!moirai_numa_node_is_allowed(node))
			continue;
		assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
		assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
		assert_int_equal(moirai_numa_page_node(srv->hdr), node);
		/* A client buffer too: the whole segment is bound. */
		assert_int_equal(moirai_shm_alloc(cli, 4096, &m), 0);
		memset(moirai_shm_msg_data(m), 1, 4096);
		assert_int_equal(moirai_numa_page_node(moirai_shm_msg_data(m)), node);
		assert_int_equal(moirai_shm_free(cli, m), 0);
		moirai_shm_detach(cli);
		moirai_shm_destroy(srv);
		tested++;
	}
	assert_true(tested >= 1);
	print_message("segment binding checked on %d node(s)\n", tested);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest shm_tests[] = {
		cmocka_unit_test(test_local_pair),
		cmocka_unit_test(test_fork_exchange),
		cmocka_unit_test(test_burst_local),
		cmocka_unit_test(test_fork_burst),
		cmocka_unit_test(test_corrupt_header),
		cmocka_unit_test(test_killed_client),
		cmocka_unit_test(test_killed_server),
		cmocka_unit_test(test_killed_short_timeouts),
		cmocka_unit_test(test_stale_reclaim),
		cmocka_unit_test(test_liveness_lock),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_node_binding),
	};
	/* clang-format on */
	const struct CMUnitTest negative_tests[] = {
		cmocka_unit_test(test_negative),
	};
	int rc = cmocka_run_group_tests_name("shm", shm_tests, NULL, NULL);

	return rc | cmocka_run_group_tests_name("shm_negative", negative_tests, NULL, NULL);
}
