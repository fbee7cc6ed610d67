/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared-memory peers killed at random points.  Each round makes a segment
 * and forks peers that are SIGKILLed (by the survivor after a random
 * delay, or by themselves at a random operation: after an alloc, between
 * a send and its acknowledgement, after a receive), one after another on
 * the same segment; now and then the peer is the server and this process
 * the client.
 *
 * The contract checked (moirai/shm.h, docs/shm.md): a peer writes, in a
 * page shared with the survivor (not the segment), how many of its sends
 * returned 0 ("acknowledged").  The survivor receives until -EPIPE, which
 * must come (the death is detected) within a bound, and then has
 * received, in order and each once, messages 0..n-1 with
 * acknowledged <= n <= acknowledged + 1 (at most the one send that
 * succeeded but was not yet recorded): nothing acknowledged is lost.
 * Payloads carry a checksum of their sequence number.  A surviving server
 * then recovers the slot (-EBUSY would mean it still holds a message or
 * sees the dead peer alive) and must have every one of its buffers back
 * (nothing leaked) before the next peer attaches; a surviving client
 * destroys the segment and the name must be gone.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress.h"

#define MS 1000000LL

struct rec {
	_Atomic uint64_t acked; /* sends that returned 0 */
	_Atomic int attached;	/* the peer has its handle */
	_Atomic int ready;	/* a server peer has created the segment */
	_Atomic uint64_t got;	/* messages the peer received */
};

enum kill_where { KILL_AFTER_ALLOC, KILL_BEFORE_ACK, KILL_AFTER_RECV, KILL_BY_PARENT, KILL_N };

static uint64_t msg_check(uint64_t seq, uint64_t inc)
{
	return mix64(seq ^ (inc << 32) ^ 0x73686d);
}

/* The peer: send numbered messages, take the survivor's, die somewhere. */
static void peer(struct moirai_shm *seg, struct rec *rec, uint64_t inc, uint64_t rng)
{
	enum kill_where where = (enum kill_where)rng_below(&rng, KILL_N);
	uint64_t kill_at = rng_below(&rng, 2000), ops = 0, seq = 0;

	for (;;) {
		struct moirai_shm_msg *m;
		int rc = moirai_shm_alloc(seg, 16 + rng_below(&rng, 200), &m);

		ops++;
		if (rc == 0) {
			uint64_t *p = moirai_shm_msg_data(m);

			if (where == KILL_AFTER_ALLOC && ops == kill_at)
				raise(SIGKILL);
			p[0] = seq;
			p[1] = msg_check(seq, inc);
			rc = moirai_shm_send(seg, m);
			if (rc == 0) {
				if (where == KILL_BEFORE_ACK && ops == kill_at)
					raise(SIGKILL);
				seq++;
				/* Release: what the survivor reads after seeing it. */
				atomic_store_explicit(&rec->acked, seq, memory_order_release);
			} else {
				moirai_shm_free(seg, m);
				if (rc == -EPIPE)
					_exit(0); /* the survivor left: nothing to do */
			}
		}
		rc = moirai_shm_recv(seg, &m, rc == 0 ? MOIRAI_TIMEOUT_TRY : 1 * MS);
		if (rc == 0) {
			if (where == KILL_AFTER_RECV && ops >= kill_at)
				raise(SIGKILL);
			atomic_fetch_add(&rec->got, 1);
			moirai_shm_free(seg, m);
		} else if (rc == -EPIPE) {
			_exit(0);
		}
	}
}

/* Survivor: receive until -EPIPE, checking order; returns messages taken. */
static uint64_t survive(const struct stress_ctx *ctx, struct stress_result *r,
			struct moirai_shm *seg, struct rec *rec, pid_t pid, uint64_t inc,
			uint64_t *rng, bool *dropped)
{
	uint64_t n = 0, sent = 0, kill_after = (uint64_t)(2 + rng_below(rng, 150)) * MS;
	uint64_t t0 = moirai_now_ns(), dead_at = 0, quiet_since = 0;
	bool killed = false, reaped = false;
	int status;

	for (;;) {
		struct moirai_shm_msg *m;
		uint64_t now = moirai_now_ns();
		int rc;

		if (!killed && now - t0 > kill_after) {
			kill(pid, SIGKILL);
			killed = true;
		}
		if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
			reaped = true;
			dead_at = now;
		}
		/* Some traffic the other way too: buffers the peer holds at
		 * its death must come back through recover. */
		if (rng_below(rng, 4) == 0 && moirai_shm_alloc(seg, 32, &m) == 0) {
			if (moirai_shm_send(seg, m) == 0)
				sent++;
			else
				moirai_shm_free(seg, m);
		}
		rc = moirai_shm_recv(seg, &m, 2 * MS);
		if (rc == 0) {
			uint64_t *p = moirai_shm_msg_data(m);
			size_t len = moirai_shm_msg_len(seg, m);

			if (len < 16 || p[1] != msg_check(p[0], inc) || p[0] != n)
				stress_violation(r,
						 "shm: message %" PRIu64 " of peer %" PRIu64
						 ": got seq %" PRIu64 " (len %zu, check %s)",
						 n, inc, len >= 16 ? p[0] : 0, len,
						 len >= 16 && p[1] == msg_check(p[0], inc) ? "ok"
											   : "bad");
			else if (ctx->violate && !*dropped)
				*dropped = true; /* --self-test-violation: not counted */
			else
				n++;
			moirai_shm_free(seg, m);
			stress_count(&r->ops, 1);
			quiet_since = 0;
			continue;
		}
		if (rc == -EPIPE)
			break;
		if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EBADMSG) {
			stress_violation(r, "shm: recv: %d (%s)", rc, moirai_strerror(rc));
			break;
		}
		if (reaped) {
			/* A peer that died before attaching leaves nothing to
			 * see: no -EPIPE will come. */
			if (!atomic_load(&rec->attached)) {
				if (!quiet_since)
					quiet_since = now;
				if (now - quiet_since > 200 * MS)
					break;
			} else if (now - dead_at > 5000 * MS) {
				stress_violation(r,
						 "shm: peer %" PRIu64
						 " died 5 s ago and recv still "
						 "says %d, not -EPIPE",
						 inc, rc);
				break;
			}
		}
	}
	if (!reaped)
		waitpid(pid, &status, 0);
	(void)sent;
	return n;
}

static void check_acked(struct stress_result *r, struct rec *rec, uint64_t n, uint64_t inc)
{
	uint64_t acked = atomic_load_explicit(&rec->acked, memory_order_acquire);

	if (n < acked || n > acked + 1)
		stress_violation(r,
				 "shm: peer %" PRIu64 " had %" PRIu64
				 " sends acknowledged, the survivor received %" PRIu64,
				 inc, acked, n);
}

static pid_t fork_peer(void)
{
	fflush(NULL);
	return fork();
}

/* This process serves; peers attach as clients one after another. */
static void round_server(const struct stress_ctx *ctx, struct stress_result *r, const char *name,
			 struct rec *rec, uint64_t *rng, uint64_t round_no)
{
	struct moirai_shm_opts o = { .buf_size = 256, .bufs = 16u << rng_below(rng, 4) };
	struct moirai_shm *seg;
	int peers = 1 + (int)rng_below(rng, 3), rc;
	bool dropped = false;

	rc = moirai_shm_create(name, &o, &seg);
	if (rc) {
		if (rc == -ENOMEM)
			stress_count(&r->seen[MOIRAI_FAULT_ARENA_COMMIT], 1);
		else
			stress_violation(r, "shm: create %s: %s", name, moirai_last_error());
		return;
	}
	for (int k = 0; k < peers; k++) {
		uint64_t inc = round_no * 8 + (uint64_t)k, n;
		pid_t pid;

		memset((void *)rec, 0, sizeof(*rec));
		pid = fork_peer();
		if (pid < 0) {
			stress_violation(r, "shm: fork: %s", strerror(errno));
			break;
		}
		if (pid == 0) {
			struct moirai_shm *cs;
			uint64_t prng = rng_next(rng);

			for (int i = 0; i < 1000; i++) {
				rc = moirai_shm_attach(name, NULL, &cs);
				if (rc != -EBUSY)
					break;
				stress_sleep_ns(1 * MS);
			}
			if (rc)
				_exit(3);
			atomic_store(&rec->attached, 1);
			peer(cs, rec, inc, prng);
			_exit(0);
		}
		n = survive(ctx, r, seg, rec, pid, inc, rng, &dropped);
		check_acked(r, rec, n, inc);
		rc = moirai_shm_recover(seg);
		if (rc)
			stress_violation(r, "shm: recover after peer %" PRIu64 ": %d (%s)", inc, rc,
					 moirai_last_error());
		if (moirai_shm_peer_alive(seg))
			stress_violation(r, "shm: peer %" PRIu64 " is dead but seen alive", inc);
		if (moirai_shm_free_count(seg) != o.bufs)
			stress_violation(r,
					 "shm: after peer %" PRIu64 " the server has %u of its %u "
					 "buffers back",
					 inc, moirai_shm_free_count(seg), o.bufs);
	}
	moirai_shm_destroy(seg);
}

/* A peer serves and dies; this process, the client, survives and tears
 * down. */
static void round_client(const struct stress_ctx *ctx, struct stress_result *r, const char *name,
			 struct rec *rec, uint64_t *rng, uint64_t round_no)
{
	uint64_t inc = round_no * 8, n;
	struct moirai_shm *seg = NULL;
	char path[128];
	bool dropped = false;
	struct stat st;
	pid_t pid;
	int rc = -1;

	memset((void *)rec, 0, sizeof(*rec));
	pid = fork_peer();
	if (pid < 0) {
		stress_violation(r, "shm: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		struct moirai_shm_opts o = { .buf_size = 256, .bufs = 64 };
		struct moirai_shm *ss;
		uint64_t prng = rng_next(rng);

		if (moirai_shm_create(name, &o, &ss) != 0)
			_exit(3);
		atomic_store(&rec->ready, 1);
		/* Wait for the client before sending (a server's sends before
		 * anyone attached are refused). */
		for (int i = 0; i < 5000 && !moirai_shm_peer_alive(ss); i++)
			stress_sleep_ns(1 * MS);
		atomic_store(&rec->attached, 1);
		peer(ss, rec, inc, prng);
		_exit(0);
	}
	for (int i = 0; i < 5000 && !atomic_load(&rec->ready); i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		stress_sleep_ns(1 * MS);
	}
	if (pid && atomic_load(&rec->ready))
		rc = moirai_shm_attach(name, NULL, &seg);
	if (rc) {
		if (pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		/* Killed before it created, or a create that failed. */
		snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
		unlink(path);
		return;
	}
	n = survive(ctx, r, seg, rec, pid, inc, rng, &dropped);
	check_acked(r, rec, n, inc);
	moirai_shm_destroy(seg);
	snprintf(path, sizeof(path), "/dev/shm/moirai.%s", name);
	if (stat(path, &st) == 0)
		stress_violation(r, "shm: %s still there after the client's destroy", path);
}

void stress_shm(const struct stress_ctx *ctx, struct stress_result *r)
{
	double end = stress_now() + ctx->duration;
	uint64_t rng = rng_seed(ctx, 6, 0, 0);
	struct rec *rec =
		mmap(NULL, sizeof(*rec), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (rec == MAP_FAILED) {
		stress_violation(r, "shm: mmap: %s", strerror(errno));
		return;
	}
	for (uint64_t round_no = 0; stress_now() < end; round_no++) {
		char name[64];

		snprintf(name, sizeof(name), "stress.%d.%" PRIu64, (int)getpid(), round_no);
		if (rng_below(&rng, 4) == 0)
			round_client(ctx, r, name, rec, &rng, round_no);
		else
			round_server(ctx, r, name, rec, &rng, round_no);
		stress_count(&r->rounds, 1);
	}
	munmap(rec, sizeof(*rec));
}
