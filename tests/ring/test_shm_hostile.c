/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared-memory transport against a hostile or careless peer (issue #8).
 * The peer can write every byte of the segment and truncate its file; the
 * survivor must never touch memory outside its mapping, never spin
 * without bound or wait past its timeout, never die of a signal, and never
 * lose a message that was queued to it.
 *
 *  - forged ring positions and slots, the survivor's own published
 *    positions included (in process, every interesting value);
 *  - a forked peer scribbling random words, ring words, futex words, side
 *    state and lengths for many seeds while the survivor keeps working,
 *    then recovery and a clean exchange with a new client;
 *  - a futex storm: receives still time out on time without burning the CPU;
 *  - truncation mid-stream: -EFAULT, never SIGBUS, then a clean teardown;
 *  - a corrupted header left by a dead client: recover, a new client;
 *  - a client that attaches, scribbles and dies unseen: the next client
 *    refuses the slot, the server still reaches -EPIPE and recovers;
 *  - end of stream: a peer that sends and detaches between the survivor's
 *    empty dequeue and its liveness check, thousands of rounds, no loss.
 *
 * Run under `make SAN=address check` too: any access outside the mapping
 * or the handle's own memory would be reported there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "moirai/shm.h"
#include "shm_int.h"
#include "shm_ring.h"
#include "testutil.h"

#define MS    1000000LL
#define SEC   1000000000LL
#define SLACK (2 * SEC) /* a loaded 2-core box under TSan: generous, still no hang */

static char *seg_name(const char *tag)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "h%d-%s", (int)getpid(), tag);
	return buf;
}

static bool seg_file_exists(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	return lstat(path, &st) == 0;
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: deterministic per seed, so a failure can be replayed. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* cmocka catches SIGBUS during each test; the guard must see it instead. */
static void sigbus_default(void)
{
	signal(SIGBUS, SIG_DFL);
}

static struct shm_ring_pub *ring_pub(const struct moirai_shm *seg, int ring)
{
	return (struct shm_ring_pub *)((char *)seg->hdr + seg->layout.ring_off[ring]);
}

/* One message each way through a fresh client: the survivor works. */
static void clean_exchange(struct moirai_shm *srv, const char *name)
{
	struct moirai_shm *cli;
	struct moirai_shm_msg *m;

	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_int_equal(moirai_shm_alloc(srv, 5, &m), 0);
	memcpy(moirai_shm_msg_data(m), "hello", 5);
	assert_int_equal(moirai_shm_send(srv, m), 0);
	assert_int_equal(moirai_shm_recv(cli, &m, SEC), 0);
	assert_int_equal(moirai_shm_msg_len(cli, m), 5);
	assert_memory_equal(moirai_shm_msg_data(m), "hello", 5);
	assert_int_equal(moirai_shm_free(cli, m), 0);
	assert_int_equal(moirai_shm_alloc(cli, 3, &m), 0);
	memcpy(moirai_shm_msg_data(m), "abc", 3);
	assert_int_equal(moirai_shm_send(cli, m), 0);
	assert_int_equal(moirai_shm_recv(srv, &m, SEC), 0);
	assert_memory_equal(moirai_shm_msg_data(m), "abc", 3);
	assert_int_equal(moirai_shm_free(srv, m), 0);
	moirai_shm_detach(cli);
}

/*
 * What a survivor may see from a hostile peer, per call; anything else
 * (or a crash, or a call that overstays its timeout) fails the test.
 */
static bool ok_alloc(int rc)
{
	return rc == 0 || rc == -ENOBUFS || rc == -EFAULT;
}

static bool ok_send(int rc)
{
	return rc == 0 || rc == -EPIPE || rc == -ENOBUFS || rc == -EFAULT;
}

static bool ok_recv(int rc)
{
	return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EPIPE || rc == -EBADMSG ||
	       rc == -EFAULT;
}

/* Receive with a bound on how long the call may take. */
static int timed_recv(struct moirai_shm *seg, struct moirai_shm_msg **m, unsigned max,
		      int64_t timeout)
{
	uint64_t t0 = moirai_now_ns(), dt;
	int rc = max == 1 ? moirai_shm_recv(seg, m, timeout)
			  : moirai_shm_recv_burst(seg, m, max, timeout);

	dt = moirai_now_ns() - t0;
	if (dt > (uint64_t)(timeout > 0 ? timeout : 0) + SLACK)
		fail_msg("receive with timeout %lld ns took %llu ns", (long long)timeout,
			 (unsigned long long)dt);
	if (!ok_recv(rc))
		fail_msg("receive returned %d (%s)", rc, moirai_last_error());
	return max == 1 && rc == 0 ? 1 : rc;
}

/* Touch a received payload the way an application would: bounded by len. */
static unsigned read_payload(struct moirai_shm *seg, struct moirai_shm_msg *m)
{
	const unsigned char *d = moirai_shm_msg_data(m);
	size_t len = moirai_shm_msg_len(seg, m);
	unsigned sum = 0;

	assert_true(len <= moirai_shm_buf_size(seg));
	for (size_t i = 0; i < len; i++)
		sum += d[i];
	return sum;
}

/* One round of survivor work: alloc/send, receive/free; rc checked. */
static void survivor_step(struct moirai_shm *srv, uint64_t *rng)
{
	struct moirai_shm_msg *m[8];
	int rc, n;

	switch (rnd(rng) % 3) {
	case 0:
		rc = moirai_shm_alloc(srv, 16, &m[0]);
		if (!ok_alloc(rc))
			fail_msg("alloc returned %d (%s)", rc, moirai_last_error());
		if (rc)
			break;
		memset(moirai_shm_msg_data(m[0]), 0x5a, 16);
		rc = moirai_shm_send(srv, m[0]);
		if (!ok_send(rc))
			fail_msg("send returned %d (%s)", rc, moirai_last_error());
		if (rc)
			assert_int_equal(moirai_shm_free(srv, m[0]), 0);
		break;
	case 1:
		n = timed_recv(srv, m, 8, rnd(rng) % 2 ? MOIRAI_TIMEOUT_TRY : 5 * MS);
		for (int i = 0; i < n; i++) {
			read_payload(srv, m[i]);
			assert_int_equal(moirai_shm_free(srv, m[i]), 0);
		}
		break;
	default:
		(void)moirai_shm_peer_alive(srv);
		assert_true(moirai_shm_free_count(srv) <= srv->bufs_per_side);
		break;
	}
}

/*
 * After the peer is gone: drain until -EPIPE (or -EFAULT), bounded; free
 * everything; recover.  Returns recover's result.
 */
static int survivor_finish(struct moirai_shm *srv)
{
	uint64_t end = moirai_now_ns() + 10 * SEC;
	struct moirai_shm_msg *m[16];
	int rc = 0;

	for (;;) {
		if (moirai_now_ns() >= end)
			fail_msg("no end of stream: last rc %d, state %u, seen %d, alive %d", rc,
				 atomic_load(&srv->hdr->side[srv->peer].state),
				 (int)atomic_load(&srv->peer_seen),
				 (int)moirai_shm_peer_alive(srv));
		rc = timed_recv(srv, m, 16, 50 * MS);
		if (rc == -EPIPE || rc == -EFAULT)
			break;
		for (int i = 0; i < rc; i++)
			assert_int_equal(moirai_shm_free(srv, m[i]), 0);
	}
	return moirai_shm_recover(srv);
}

/* ---- forged positions and slots, in process --------------------------- */

static const uint32_t forged_values[] = {
	0,	    1,		7,	    8,		9,	    63,		64,
	0x40000000, 0x7fffffff, 0x80000000, 0x80000001, 0xc0000000, 0xfffffff8, 0xffffffff,
};

static void test_forged_positions(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 64, .bufs = 8 };
	struct moirai_shm *srv, *cli;
	const char *name = seg_name("forged");
	uint64_t rng = 1;

	(void)state;
	alarm(120);
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	/* Every published word of every ring (the survivor's own ones too:
	 * head != tail on its own end once made it spin forever), each value
	 * relative to nothing and to the survivor's position. */
	for (size_t v = 0; v < MOIRAI_ARRAY_SIZE(forged_values); v++) {
		for (int ring = 0; ring < SHM_RINGS; ring++) {
			for (int word = 0; word < 2; word++) {
				struct shm_ring_pub *pub = ring_pub(cli, ring);
				_Atomic uint32_t *w = word ? &pub->cons : &pub->prod;
				uint32_t base = word ? 0 : atomic_load(&srv->tx.pos);

				atomic_store(w, base + forged_values[v]);
				for (int i = 0; i < 6; i++)
					survivor_step(srv, &rng);
				atomic_store(w, forged_values[v]);
				for (int i = 0; i < 6; i++)
					survivor_step(srv, &rng);
			}
		}
		/* Garbage in every slot: indexes out of range, foreign, repeated. */
		for (int ring = 0; ring < SHM_RINGS; ring++) {
			_Atomic uint32_t *slots =
				(_Atomic uint32_t *)(void *)(ring_pub(cli, ring) + 1);

			for (uint32_t s = 0; s < srv->layout.ring_size; s++)
				atomic_store(&slots[s], (uint32_t)rnd(&rng) % (4 * o.bufs));
		}
		for (int i = 0; i < 12; i++)
			survivor_step(srv, &rng);
	}
	/* The geometry the survivor uses is its own. */
	assert_int_equal(srv->tx.mask, srv->layout.ring_size - 1);
	assert_int_equal(srv->rx.capacity, o.bufs);
	moirai_shm_detach(cli);
	assert_int_equal(survivor_finish(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), o.bufs);
	clean_exchange(srv, name);
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), o.bufs);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
	alarm(0);
}

/* A peer that claims to be far ahead on our data ring must not make a
 * blocked receive spin or overstay its timeout (100 ms, as reported). */
static void test_forged_own_end(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 64, .bufs = 16 };
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m;
	const char *name = seg_name("ownend");
	struct timespec c0, c1;
	uint64_t t0, wall, cpu;
	int rc;

	(void)state;
	alarm(60);
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	/* head != tail on the survivor's own ends, both directions. */
	atomic_store(&ring_pub(cli, SHM_RING_DATA0)->cons, 12345);
	atomic_store(&ring_pub(cli, SHM_RING_DATA1)->prod, 777);
	atomic_store(&ring_pub(cli, SHM_RING_RET0)->cons, 0x80000000u);
	atomic_store(&ring_pub(cli, SHM_RING_RET1)->prod, 5);
	assert_int_equal(moirai_shm_alloc(srv, 8, &m), 0);
	assert_int_equal(moirai_shm_send(srv, m), 0);
	assert_int_equal(moirai_shm_alloc(srv, 8, &m), 0);
	assert_int_equal(moirai_shm_free(srv, m), 0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	t0 = moirai_now_ns();
	rc = moirai_shm_recv(srv, &m, 100 * MS);
	wall = moirai_now_ns() - t0;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	cpu = (uint64_t)(c1.tv_sec - c0.tv_sec) * SEC + (uint64_t)(c1.tv_nsec - c0.tv_nsec);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(wall >= 100 * MS && wall < 100 * MS + SLACK);
	/* A sleeping wait, not a spin: well under the wall time. */
	print_message("recv(100 ms) on a forged own end: %.1f ms wall, %.2f ms CPU\n", wall / 1e6,
		      cpu / 1e6);
	assert_true(cpu < wall / 2);
	/* The client's real traffic still flows after its lies. */
	assert_int_equal(moirai_shm_recv(cli, &m, SEC), 0);
	assert_int_equal(moirai_shm_free(cli, m), 0);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
	alarm(0);
}

/* ---- a forked hostile peer ------------------------------------------------ */

enum hostile_mode {
	H_RANDOM,   /* random words anywhere in the mapping */
	H_RING,	    /* ring positions and slots */
	H_FUTEX,    /* futex words and waiter counts, with wake-ups */
	H_SIDE,	    /* side state, pid 1 and its start time */
	H_LENGTH,   /* message lengths after sending */
	H_MIX,	    /* all of the above */
	H_TRUNCATE, /* truncation of the file, mid-stream */
	H_MODES
};

static const char *const mode_names[] = { "random", "ring", "futex",   "side",
					  "length", "mix",  "truncate" };

struct hostile {
	const char *name;
	int go_fd;
	int ready_fd; /* the child says here that it attached / created */
	bool server;
	enum hostile_mode mode;
	uint64_t seed;
	uint64_t run_ns;
};

static void scribble(struct moirai_shm *cli, enum hostile_mode mode, uint64_t *rng)
{
	struct shm_hdr *h = cli->hdr;
	size_t words = cli->map_len / 4;
	uint32_t *all = (uint32_t *)(void *)h;

	if (mode == H_MIX)
		mode = (enum hostile_mode)(rnd(rng) % H_MIX);
	switch (mode) {
	case H_RANDOM:
		for (int i = 0; i < 8; i++)
			__atomic_store_n(&all[rnd(rng) % words], (uint32_t)rnd(rng),
					 __ATOMIC_RELAXED);
		break;
	case H_RING: {
		struct shm_ring_pub *pub = ring_pub(cli, (int)(rnd(rng) % SHM_RINGS));
		uint32_t v = rnd(rng) % 2
				     ? forged_values[rnd(rng) % MOIRAI_ARRAY_SIZE(forged_values)]
				     : (uint32_t)rnd(rng);
		_Atomic uint32_t *slots = (_Atomic uint32_t *)(void *)(pub + 1);

		switch (rnd(rng) % 3) {
		case 0: atomic_store(&pub->prod, atomic_load(&pub->prod) + v); break;
		case 1: atomic_store(&pub->cons, v); break;
		default:
			atomic_store(&slots[rnd(rng) % cli->layout.ring_size], v);
			atomic_store(&pub->prod, atomic_load(&pub->prod) + 1);
			break;
		}
		break;
	}
	case H_FUTEX: {
		struct moirai__waitq *wq = &h->wake[rnd(rng) % 2].wq;

		atomic_fetch_add(&wq->seq, 1);
		atomic_store(&wq->waiters, (uint32_t)rnd(rng));
		syscall(SYS_futex, (uint32_t *)&wq->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		break;
	}
	case H_SIDE: {
		struct shm_side *s = &h->side[rnd(rng) % 2];

		atomic_store(&s->state, (uint32_t)(rnd(rng) % 4));
		atomic_store(&s->pid, rnd(rng) % 2 ? 1 : (int32_t)rnd(rng));
		atomic_store(&s->start_time, rnd(rng) % 2 ? 0 : rnd(rng));
		break;
	}
	case H_LENGTH: {
		struct moirai_shm_msg *m;

		if (moirai_shm_alloc(cli, 8, &m) == 0) {
			if (moirai_shm_send(cli, m) == 0)
				atomic_store(&m->len,
					     rnd(rng) % 2 ? UINT32_MAX : (uint32_t)rnd(rng) % 200);
			else
				moirai_shm_free(cli, m);
		}
		break;
	}
	default: break;
	}
}

/* The hostile client process.  Exits with 0; any signal is its own. */
static void hostile_child(const struct hostile *hc)
{
	struct moirai_shm *cli = NULL;
	struct moirai_shm_msg *m;
	uint64_t rng = hc->seed, end, cut;
	char c;
	int rc = -1;

	/* Our own guard, not the test runner's handler, in this process. */
	sigbus_default();
	alarm(60);
	if (hc->server) {
		struct moirai_shm_opts o = { .buf_size = 128, .bufs = 16 };

		if (moirai_shm_create(hc->name, &o, &cli) != 0)
			_exit(11);
		if (write(hc->ready_fd, "r", 1) != 1)
			_exit(12);
		rc = 0;
	} else {
		if (read(hc->go_fd, &c, 1) != 1)
			_exit(10);
		for (int i = 0; i < 1000 && rc; i++) {
			rc = moirai_shm_attach(hc->name, NULL, &cli);
			if (rc)
				usleep(1000);
		}
		if (rc)
			_exit(11);
		if (write(hc->ready_fd, "a", 1) != 1)
			_exit(12);
	}
	end = moirai_now_ns() + hc->run_ns;
	cut = moirai_now_ns() + hc->run_ns / 4 + rnd(&rng) % (hc->run_ns / 2);
	while (moirai_now_ns() < end) {
		/* Some honest traffic, so the survivor has work to lose. */
		if (moirai_shm_alloc(cli, 32, &m) == 0) {
			memset(moirai_shm_msg_data(m), 0xa5, 32);
			if (moirai_shm_send(cli, m) != 0)
				moirai_shm_free(cli, m);
		}
		while (moirai_shm_recv(cli, &m, MOIRAI_TIMEOUT_TRY) == 0)
			moirai_shm_free(cli, m);
		if (hc->mode == H_TRUNCATE) {
			if (moirai_now_ns() >= cut) {
				static const off_t sizes[] = { 0, 64, 4096, 16384 };
				off_t sz = rnd(&rng) % 5 ? sizes[rnd(&rng) % 4]
							 : (off_t)(cli->map_len / 2);

				if (ftruncate(cli->fd, sz) != 0)
					_exit(12);
				_exit(0); /* dies holding everything */
			}
			continue;
		}
		scribble(cli, hc->mode, &rng);
		if (rnd(&rng) % 64 == 0)
			sched_yield();
	}
	/* Leave like a crash (no detach): the survivor must notice the lock. */
	_exit(0);
}

static void run_hostile(enum hostile_mode mode, uint64_t seed, uint64_t run_ns)
{
	struct moirai_shm_opts o = { .buf_size = 128, .bufs = 16 };
	struct hostile hc = { .mode = mode, .seed = seed, .run_ns = run_ns };
	struct moirai_shm *srv;
	char name[MOIRAI_SHM_NAME_MAX + 1];
	uint64_t rng = seed * 7919 + 1, end;
	int go[2], ready[2], status, rc;
	char c;
	pid_t pid;

	snprintf(name, sizeof(name), "h%d-peer-%d-%u", (int)getpid(), (int)mode, (unsigned)seed);
	hc.name = name;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	hc.go_fd = go[0];
	hc.ready_fd = ready[1];
	/* Forked before the segment exists: a real peer never shares our
	 * open file (and so could not release our liveness lock). */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		hostile_child(&hc);
	}
	close(go[0]);
	close(ready[1]);
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	/* Timed from the moment the peer is in (a loaded box may take long
	 * to run the child at all). */
	if (read(ready[0], &c, 1) != 1)
		fail_msg("hostile child (%s, seed %llu) did not attach", mode_names[mode],
			 (unsigned long long)seed);
	close(ready[0]);
	end = moirai_now_ns() + run_ns + 50 * MS;
	while (moirai_now_ns() < end)
		survivor_step(srv, &rng);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) >= 10)
		fail_msg("hostile child (%s, seed %llu) failed to start: %d", mode_names[mode],
			 (unsigned long long)seed, WEXITSTATUS(status));
	rc = survivor_finish(srv);
	if (mode == H_TRUNCATE) {
		/* Truncated to below what we touch, or just the tail. */
		assert_true(rc == 0 || rc == -EFAULT);
		if (rc == -EFAULT) {
			struct moirai_shm_msg *m;

			assert_int_equal(moirai_shm_alloc(srv, 1, &m), -EFAULT);
			assert_non_null(strstr(moirai_last_error(), "truncated"));
			assert_int_equal(moirai_shm_recv(srv, &m, 10 * MS), -EFAULT);
			assert_false(moirai_shm_peer_alive(srv));
			moirai_shm_destroy(srv);
			assert_false(seg_file_exists(name));
			return;
		}
	} else if (rc != 0) {
		fail_msg("recover after a %s peer (seed %llu): %d (%s)", mode_names[mode],
			 (unsigned long long)seed, rc, moirai_last_error());
	}
	/* Every buffer of the survivor is back, and a new client works. */
	assert_int_equal(moirai_shm_free_count(srv), o.bufs);
	if (mode != H_TRUNCATE)
		clean_exchange(srv, name);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

static long server_attached, server_refused;

/* The client survives a hostile server the same way; it tears down. */
static void run_hostile_server(enum hostile_mode mode, uint64_t seed, uint64_t run_ns)
{
	struct hostile hc = { .mode = mode, .seed = seed, .run_ns = run_ns, .server = true };
	struct moirai_shm *cli = NULL;
	struct moirai_shm_msg *m[16];
	char name[MOIRAI_SHM_NAME_MAX + 1];
	uint64_t rng = seed * 104729 + 3, end;
	int ready[2], status, rc = -1;
	char c;
	pid_t pid;

	snprintf(name, sizeof(name), "h%d-srv-%d-%u", (int)getpid(), (int)mode, (unsigned)seed);
	hc.name = name;
	assert_int_equal(pipe(ready), 0);
	hc.ready_fd = ready[1];
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		hostile_child(&hc);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	/* It may already scribble its own header: keep trying, bounded. */
	end = moirai_now_ns() + 5 * SEC;
	while ((rc = moirai_shm_attach(name, NULL, &cli)) != 0 && moirai_now_ns() < end)
		usleep(1000);
	if (rc == 0) {
		end = moirai_now_ns() + run_ns + 50 * MS;
		while (moirai_now_ns() < end)
			survivor_step(cli, &rng);
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (rc == 0)
		server_attached++;
	else
		server_refused++;
	if (rc != 0) {
		char path[128];

		/* Refused with a clear error is fine; a crash is not.  The dead
		 * server's file is left for a reclaim: remove it here. */
		assert_true(rc == -EPROTO || rc == -EBADMSG || rc == -EBUSY ||
			    rc == -ECONNREFUSED || rc == -EFAULT);
		snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
		unlink(path);
		return;
	}
	/* Drain to the end of the stream, bounded, then tear down. */
	end = moirai_now_ns() + 10 * SEC;
	for (;;) {
		assert_true(moirai_now_ns() < end);
		rc = timed_recv(cli, m, 16, 50 * MS);
		if (rc == -EPIPE || rc == -EFAULT)
			break;
		for (int i = 0; i < rc; i++)
			assert_int_equal(moirai_shm_free(cli, m[i]), 0);
	}
	assert_int_equal(moirai_shm_recover(cli), -EINVAL);
	moirai_shm_destroy(cli);
	assert_false(seg_file_exists(name));
}

static void test_hostile_peer(void **state)
{
	long seeds = 3 * test_scale();

	(void)state;
	sigbus_default();
	alarm(600);
	for (int mode = 0; mode < H_MODES; mode++)
		for (long seed = 1; seed <= seeds; seed++) {
			run_hostile((enum hostile_mode)mode, (uint64_t)seed, 120 * MS);
			run_hostile_server((enum hostile_mode)mode, (uint64_t)seed, 60 * MS);
		}
	print_message("%d modes x %ld seeds of hostile clients and servers survived (client "
		      "survivor attached %ld times, refused cleanly %ld)\n",
		      H_MODES, seeds, server_attached, server_refused);
	alarm(0);
}

/* ---- futex storm ------------------------------------------------------------- */

static void storm_child(const char *name, int go_fd, uint64_t run_ns)
{
	struct moirai_shm *cli = NULL;
	struct moirai__waitq *wq;
	uint64_t end, rng = 42;
	char c;
	int rc = -1;

	sigbus_default();
	alarm(60);
	if (read(go_fd, &c, 1) != 1)
		_exit(10);
	for (int i = 0; i < 1000 && rc; i++)
		if ((rc = moirai_shm_attach(name, NULL, &cli)) != 0)
			usleep(1000);
	if (rc)
		_exit(11);
	wq = &cli->hdr->wake[0].wq; /* the server's */
	end = moirai_now_ns() + run_ns;
	while (moirai_now_ns() < end) {
		atomic_fetch_add(&wq->seq, 1);
		atomic_store(&wq->waiters, (uint32_t)rnd(&rng));
		syscall(SYS_futex, (uint32_t *)&wq->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
	/* Then one honest message, which a FOREVER receive must get. */
	{
		struct moirai_shm_msg *m;

		if (moirai_shm_alloc(cli, 4, &m) != 0 || moirai_shm_send(cli, m) != 0)
			_exit(12);
	}
	usleep(200000);
	moirai_shm_detach(cli);
	_exit(0);
}

static void test_futex_storm(void **state)
{
	struct moirai_shm *srv;
	struct moirai_shm_msg *m;
	const char *name = seg_name("storm");
	struct timespec c0, c1;
	uint64_t t0, wall, cpu;
	int go[2], status;
	pid_t pid;

	(void)state;
	alarm(60);
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		storm_child(name, go[0], 1500 * MS);
	}
	close(go[0]);
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	while (!moirai_shm_peer_alive(srv))
		usleep(1000);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	t0 = moirai_now_ns();
	for (int i = 0; i < 5; i++) {
		uint64_t s = moirai_now_ns(), dt;

		assert_int_equal(moirai_shm_recv(srv, &m, 100 * MS), -ETIMEDOUT);
		dt = moirai_now_ns() - s;
		assert_true(dt >= 100 * MS && dt < 100 * MS + SLACK);
	}
	wall = moirai_now_ns() - t0;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	cpu = (uint64_t)(c1.tv_sec - c0.tv_sec) * SEC + (uint64_t)(c1.tv_nsec - c0.tv_nsec);
	print_message("5 x recv(100 ms) under a futex storm: %.0f ms wall, %.0f ms CPU\n",
		      wall / 1e6, cpu / 1e6);
	/* Throttled: a storm cannot make the receiver spin flat out. */
	assert_true(cpu < wall * 3 / 4);
	/* Sends with a forged waiter count only cost a wake-up call. */
	assert_int_equal(moirai_shm_alloc(srv, 4, &m), 0);
	assert_int_equal(moirai_shm_send(srv, m), 0);
	/* A FOREVER receive still gets the message that follows the storm. */
	assert_int_equal(moirai_shm_recv(srv, &m, MOIRAI_TIMEOUT_FOREVER), 0);
	assert_int_equal(moirai_shm_free(srv, m), 0);
	assert_int_equal(moirai_shm_recv(srv, &m, 10 * SEC), -EPIPE);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(moirai_shm_recover(srv), 0);
	moirai_shm_destroy(srv);
	alarm(0);
}

/* ---- truncation ------------------------------------------------------------ */

/* In process, every call after a truncation: an error, never a signal. */
static void test_truncated_in_process(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 4096, .bufs = 8 };
	struct moirai_shm *srv, *cli, *cli2;
	struct moirai_shm_msg *held, *sent, *m;
	const char *name = seg_name("trunc");
	char path[128];
	volatile unsigned char *p;
	unsigned sum = 0;

	(void)state;
	sigbus_default();
	alarm(60);
	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	assert_int_equal(moirai_shm_alloc(cli, 100, &sent), 0);
	assert_int_equal(moirai_shm_send(cli, sent), 0);
	assert_int_equal(moirai_shm_recv(srv, &held, SEC), 0);
	assert_int_equal(truncate(path, 0), 0);
	/* The application reads a payload it holds: zeros, not SIGBUS. */
	p = moirai_shm_msg_data(held);
	for (int i = 0; i < 100; i++)
		sum += p[i];
	assert_int_equal(sum, 0);
	assert_int_equal(moirai_shm_alloc(srv, 1, &m), -EFAULT);
	assert_non_null(strstr(moirai_last_error(), "truncated"));
	assert_int_equal(moirai_shm_recv(srv, &m, MOIRAI_TIMEOUT_TRY), -EFAULT);
	assert_int_equal(moirai_shm_recv(srv, &m, 10 * MS), -EFAULT);
	assert_int_equal(moirai_shm_send(srv, held), -EFAULT);
	assert_int_equal(moirai_shm_free(srv, held), 0); /* released locally */
	assert_int_equal(moirai_shm_recover(srv), -EFAULT);
	assert_false(moirai_shm_peer_alive(srv));
	/* The other handle of this process faults on its first touch too. */
	assert_int_equal(moirai_shm_recv(cli, &m, MOIRAI_TIMEOUT_TRY), -EFAULT);
	assert_int_equal(moirai_shm_alloc(cli, 1, &m), -EFAULT);
	/* New clients are refused cleanly; teardown works. */
	assert_int_equal(moirai_shm_attach(name, NULL, &cli2), -EBADMSG);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));

	/* A fault outside every segment still reaches the previous handler
	 * (here the default: the child dies of SIGBUS). */
	{
		pid_t pid;
		int status;

		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
			volatile char *q;

			if (fd < 0 || ftruncate(fd, 4096) != 0)
				_exit(10);
			unlink(path);
			q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (q == MAP_FAILED)
				_exit(11);
			q[5000] = 1; /* past the end of a file that is not a segment */
			_exit(12);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGBUS);
	}
	alarm(0);
}

/* A peer truncating while messages flow (many sizes and moments). */
static void test_truncated_midstream(void **state)
{
	long seeds = 8 * test_scale();

	(void)state;
	sigbus_default();
	alarm(300);
	for (long seed = 100; seed < 100 + seeds; seed++)
		run_hostile(H_TRUNCATE, (uint64_t)seed, 80 * MS);
	alarm(0);
}

/* ---- a corrupted segment left by a dead client ------------------------------ */

static void corrupt_child(void *arg)
{
	const char *name = arg;
	struct moirai_shm *cli;
	struct shm_hdr *h;

	if (moirai_shm_attach(name, NULL, &cli) != 0)
		_exit(10);
	h = cli->hdr;
	/* Everything attach validates or starts from. */
	h->bufs = 3;
	h->ring_size = 1u << 20;
	h->ring_off[1] = 1ull << 34;
	h->seg_size = 1;
	h->version = 77;
	atomic_store(&h->magic, 0);
	for (int i = 0; i < SHM_RINGS; i++) {
		atomic_store(&ring_pub(cli, i)->prod, 0xdeadbeef);
		atomic_store(&ring_pub(cli, i)->cons, 0x12345678);
	}
	atomic_store(&h->side[1].state, SHM_SIDE_EMPTY);
	atomic_store(&h->wake[0].wq.waiters, 99);
	_exit(0); /* dies */
}

static void test_recover_corrupted(void **state)
{
	struct moirai_shm_opts o = { .buf_size = 256, .bufs = 8 };
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m;
	const char *name = seg_name("corrupt");
	int status;

	(void)state;
	alarm(60);
	assert_int_equal(moirai_shm_create(name, &o, &srv), 0);
	assert_int_equal(moirai_shm_alloc(srv, 8, &m), 0);
	assert_int_equal(moirai_shm_send(srv, m), 0); /* stranded with the client */
	status = test_run_in_child(corrupt_child, (void *)name);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The corruption is visible to attach... */
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EPROTO);
	/* ...and recover repairs all of it. */
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(moirai_shm_free_count(srv), o.bufs);
	clean_exchange(srv, name);
	assert_int_equal(moirai_shm_recover(srv), 0);
	/* Again, with the client still attached while it corrupts: refused
	 * while it lives, repaired after. */
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	cli->hdr->bufs = 0;
	assert_int_equal(moirai_shm_recover(srv), -EBUSY);
	moirai_shm_detach(cli);
	assert_int_equal(moirai_shm_recover(srv), 0);
	clean_exchange(srv, name);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
	alarm(0);
}

/* ---- a client that comes and goes unseen ---------------------------------- */

/*
 * Attach, leave the rings inconsistent, put the slot back to EMPTY and die,
 * all between two of the server's looks at the client lock.
 */
static void hit_and_run_child(void *arg)
{
	struct moirai_shm *cli;

	if (moirai_shm_attach(arg, NULL, &cli) != 0)
		_exit(10);
	atomic_store(&ring_pub(cli, SHM_RING_DATA0)->prod, 0u - 5u);
	atomic_store(&ring_pub(cli, SHM_RING_DATA1)->cons, 1000);
	atomic_store(&cli->hdr->side[1].state, SHM_SIDE_EMPTY);
	_exit(0);
}

static void test_hit_and_run(void **state)
{
	struct moirai_shm *srv, *cli;
	struct moirai_shm_msg *m;
	const char *name = seg_name("hitrun");
	uint64_t end;
	int status, rc;

	(void)state;
	alarm(60);
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	status = test_run_in_child(hit_and_run_child, (void *)name);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The next client does not inherit the leftovers... */
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EBUSY);
	assert_non_null(strstr(moirai_last_error(), "inconsistent"));
	/* ...and the server, which never saw the visitor hold its lock, still
	 * learns that a client came and went: its polls end with -EPIPE. */
	end = moirai_now_ns() + 5 * SEC;
	while ((rc = moirai_shm_recv(srv, &m, MOIRAI_TIMEOUT_TRY)) == -EAGAIN)
		assert_true(moirai_now_ns() < end);
	assert_int_equal(rc, -EPIPE);
	assert_int_equal(moirai_shm_recover(srv), 0);
	clean_exchange(srv, name);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
	alarm(0);
}

/* ---- end of stream: nothing queued is lost ------------------------------- */

static void eos_child(const char *name, long rounds)
{
	struct moirai_shm *cli;
	struct moirai_shm_msg *m;

	alarm(120);
	for (long r = 0; r < rounds; r++) {
		int rc;

		/* The server recovers between rounds: -EBUSY until then. */
		while ((rc = moirai_shm_attach(name, NULL, &cli)) == -EBUSY)
			sched_yield();
		if (rc)
			_exit(10);
		if (moirai_shm_alloc(cli, 8, &m) != 0)
			_exit(11);
		memcpy(moirai_shm_msg_data(m), &r, 8);
		if (moirai_shm_send(cli, m) != 0)
			_exit(12);
		/* Send, then leave at once: the window the survivor must cover. */
		moirai_shm_detach(cli);
	}
	_exit(0);
}

static void test_end_of_stream_no_loss(void **state)
{
	struct moirai_shm *srv;
	struct moirai_shm_msg *m;
	const char *name = seg_name("eos");
	long rounds = 3000 * test_scale(), lost = 0, dup = 0;
	int status;
	pid_t pid;

	(void)state;
	alarm(300);
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		eos_child(name, rounds);
	for (long r = 0; r < rounds; r++) {
		/* Alternate polling (timeout 0, the reported case) and waiting. */
		int64_t timeout = r % 2 ? MOIRAI_TIMEOUT_TRY : 50 * MS;
		uint64_t end = moirai_now_ns() + 20 * SEC;
		long got = 0;
		int rc;

		for (;;) {
			assert_true(moirai_now_ns() < end);
			rc = moirai_shm_recv(srv, &m, timeout);
			if (rc == 0) {
				long v;

				memcpy(&v, moirai_shm_msg_data(m), 8);
				assert_int_equal(v, r);
				got++;
				assert_int_equal(moirai_shm_free(srv, m), 0);
				continue;
			}
			if (rc == -EPIPE)
				break;
			if (rc != -EAGAIN && rc != -ETIMEDOUT)
				fail_msg("round %ld: recv returned %d", r, rc);
		}
		lost += got == 0;
		dup += got > 1;
		/* The client may still be releasing its lock. */
		while ((rc = moirai_shm_recover(srv)) == -EBUSY)
			assert_true(moirai_now_ns() < end);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	print_message("%ld rounds of send-then-detach: %ld lost, %ld duplicated\n", rounds, lost,
		      dup);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	moirai_shm_destroy(srv);
	alarm(0);
}

/* Last: every segment this process made (or let a peer make) is gone. */
static void test_no_leftovers(void **state)
{
	char prefix[32];
	struct dirent *e;
	int left = 0;
	DIR *d;

	(void)state;
	snprintf(prefix, sizeof(prefix), "moirai.h%d-", (int)getpid());
	d = opendir("/dev/shm");
	assert_non_null(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			print_message("left behind: /dev/shm/%s\n", e->d_name);
			left++;
		}
	closedir(d);
	assert_int_equal(left, 0);
}

int main(void)
{
	const struct CMUnitTest hostile_tests[] = {
		cmocka_unit_test(test_forged_positions),
		cmocka_unit_test(test_forged_own_end),
		cmocka_unit_test(test_hostile_peer),
		cmocka_unit_test(test_futex_storm),
		cmocka_unit_test(test_truncated_in_process),
		cmocka_unit_test(test_truncated_midstream),
		cmocka_unit_test(test_recover_corrupted),
		cmocka_unit_test(test_hit_and_run),
		cmocka_unit_test(test_end_of_stream_no_loss),
		cmocka_unit_test(test_no_leftovers),
	};

	return cmocka_run_group_tests_name("shm_hostile", hostile_tests, NULL, NULL);
}
