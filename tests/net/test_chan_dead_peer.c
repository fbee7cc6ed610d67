/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A dead peer on a network channel used through the moirai_chan calls
 * (moirai_net_connect_chan / moirai_net_accept_chan): the peer is another
 * process, killed with SIGKILL mid-stream (no close, no destroy), and the
 * survivor
 *   - as the receiver keeps every message the peer sent before, in order
 *     and exactly once: all that it acknowledged, then an in-order tail of
 *     what was in flight, then -ECONNRESET (never a hang, never -EPIPE);
 *   - as the sender gets -ECONNRESET from a send once the failure is known
 *     (sends accepted before that are lost with the peer: only what the
 *     peer acknowledged is known to have arrived, and it did);
 * and then reconnects (accepts again on the same listener, or connects to
 * a new peer) and streams to the end of stream with every message checked.
 *
 * The peer is this program run again in peer mode (fork, then exec of
 * /proc/self/exe), not a bare fork: a forked child of a process that has
 * other threads (UCX's async thread while a net is open) must not start
 * threads of its own under ThreadSanitizer (die_after_fork), and UCX does; after
 * exec the child is a fresh process, with or without a sanitizer.  So this
 * test runs under `make SAN=thread` as well.  Every wait is bounded and a
 * peer never outlives its test (alarm).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moirai.h"
#include "testutil.h"

#define SEC    (1000ll * 1000 * 1000)
#define WAIT   (20 * SEC)
#define WINDOW 64u
#define BURST  8u
#define TAIL   16 /* messages of the second stream read before the kill */

struct msg {
	uint64_t seq;
	uint64_t check;
};

static uint64_t check_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull ^ 0x27d4eb2fu;
}

static const struct moirai_net_chan_opts opts = { .elem_size = sizeof(struct msg),
						  .window = WINDOW };

static long k_msgs(void)
{
	return 4000 * test_scale() / TEST_SAN_DIVISOR;
}

static struct moirai_net *net_new(void)
{
	struct moirai_net_config c = { .transports = "tcp" };
	struct moirai_net *net = NULL;

	if (moirai_net_create(&c, &net))
		return NULL;
	return net;
}

/* Send messages [from, to) in bursts of up to BURST; 0 or the error. */
static int send_range(struct moirai_chan *ch, uint64_t from, uint64_t to)
{
	struct msg m[BURST];

	while (from < to) {
		unsigned b = to - from < BURST ? (unsigned)(to - from) : BURST;
		int rc;

		for (unsigned i = 0; i < b; i++)
			m[i] = (struct msg){ from + i, check_of(from + i) };
		rc = moirai_chan_send(ch, m, b, WAIT);
		if (rc <= 0)
			return rc ? rc : -EIO;
		from += (uint64_t)rc;
	}
	return 0;
}

/* Receive into *got (the next sequence expected) until it reaches @until,
 * or until a receive fails (its code is returned); a message out of order
 * or corrupt is -EBADMSG.  @until < 0: until a receive fails. */
static int recv_until(struct moirai_chan *ch, uint64_t *got, long until)
{
	struct msg m[BURST];

	while (until < 0 || *got < (uint64_t)until) {
		int rc = moirai_chan_recv(ch, m, BURST, WAIT);

		if (rc <= 0)
			return rc ? rc : -EIO;
		for (int i = 0; i < rc; i++, (*got)++)
			if (m[i].seq != *got || m[i].check != check_of(*got))
				return -EBADMSG;
	}
	return 0;
}

/* ---- the peer (this program in peer mode) ------------------------------ */

/*
 * --peer send PORT K kill|clean: connect, send K messages, wait for the
 *   acknowledgement (one message carrying K), then either keep streaming
 *   until killed, or close and exit 0.
 * --peer recv FD K kill|clean: listen, write the port to FD, accept,
 *   receive K messages in order, acknowledge them, then either wait to be
 *   killed, or receive to the end of stream and exit 0 if nothing more came.
 * Exit codes above 0 say which step failed.
 */
static int peer_main(int argc, char **argv)
{
	struct moirai_net *net;
	struct moirai_net_listener *l = NULL;
	struct moirai_chan *ch = NULL;
	struct msg ack;
	uint64_t got = 0;
	bool kill_me;
	long k;
	char a[64];

	alarm(60); /* never outlive the test */
	if (argc != 6)
		return 2;
	k = atol(argv[4]);
	kill_me = !strcmp(argv[5], "kill");
	net = net_new();
	if (!net)
		return 3;
	if (!strcmp(argv[2], "send")) {
		snprintf(a, sizeof(a), "tcp://127.0.0.1:%s", argv[3]);
		if (moirai_net_connect_chan(net, a, &opts, WAIT, &ch))
			return 4;
		if (send_range(ch, 0, (uint64_t)k))
			return 5;
		if (moirai_chan_recv(ch, &ack, 1, WAIT) != 1 || ack.seq != (uint64_t)k)
			return 6;
		if (kill_me) {
			/* Mid-stream: the survivor reads some of this, then kills us. */
			send_range(ch, (uint64_t)k, UINT64_MAX);
			return 7;
		}
		if (moirai_chan_close(ch) || moirai_chan_recv(ch, &ack, 1, WAIT) != -EPIPE)
			return 8;
	} else {
		int fd = atoi(argv[3]), port;

		if (moirai_net_listen(net, "tcp://127.0.0.1:0", &opts, &l))
			return 9;
		port = moirai_net_listener_port(l);
		if (write(fd, &port, sizeof(port)) != sizeof(port))
			return 10;
		if (moirai_net_accept_chan(l, WAIT, &ch))
			return 11;
		if (recv_until(ch, &got, k))
			return 12;
		ack = (struct msg){ (uint64_t)k, 0 };
		if (moirai_chan_send(ch, &ack, 1, WAIT) != 1)
			return 13;
		if (kill_me) {
			for (;;)
				pause();
		}
		if (recv_until(ch, &got, -1) != -EPIPE || got != (uint64_t)k)
			return 14;
	}
	moirai_chan_destroy(ch);
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
	return 0;
}

/* Start a peer: fork, then exec this program in peer mode (a pipe end
 * named in @arg is inherited: pipe() sets no close-on-exec). */
static pid_t spawn(const char *mode, long arg, const char *how)
{
	char sarg[32], sk[32];
	pid_t pid;

	snprintf(sarg, sizeof(sarg), "%ld", arg);
	snprintf(sk, sizeof(sk), "%ld", k_msgs());
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_chan_dead_peer", "--peer", mode, sarg, sk, how,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void reap_killed(pid_t pid)
{
	int status;

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("peer %d: status 0x%x, want killed by SIGKILL", (int)pid, status);
}

static void reap_clean(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("peer %d: status 0x%x, want exit 0", (int)pid, status);
}

/* ---- tests -------------------------------------------------------------- */

/* The survivor receives: the peer connects and streams, and is killed. */
static void test_receiver_survives(void **state)
{
	long k = k_msgs();
	struct moirai_net *net = net_new();
	struct moirai_net_listener *l = NULL;
	struct moirai_chan *ch = NULL;
	struct msg m = { 0 };
	uint64_t got = 0;
	pid_t pid;
	int rc;

	assert_non_null(net);
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", &opts, &l), 0);
	pid = spawn("send", moirai_net_listener_port(l), "kill");
	assert_int_equal(moirai_net_accept_chan(l, WAIT, &ch), 0);
	/* Everything up to the acknowledgement, in order, then some more. */
	assert_int_equal(recv_until(ch, &got, k), 0);
	assert_int_equal(got, (uint64_t)k);
	m.seq = (uint64_t)k;
	assert_int_equal(moirai_chan_send(ch, &m, 1, WAIT), 1);
	assert_int_equal(recv_until(ch, &got, k + TAIL), 0);
	reap_killed(pid); /* mid-stream: it is blocked sending */

	/* What was in flight arrives in order, then the failure: never a
	 * hang, never a clean end of stream. */
	rc = recv_until(ch, &got, -1);
	assert_int_equal(rc, -ECONNRESET);
	assert_true(got >= (uint64_t)(k + TAIL));
	/* It stays failed, for every call. */
	assert_int_equal(moirai_chan_recv(ch, &m, 1, MOIRAI_TIMEOUT_TRY), -ECONNRESET);
	assert_int_equal(moirai_chan_recv(ch, &m, 1, WAIT), -ECONNRESET);
	assert_int_equal(moirai_chan_send(ch, &m, 1, MOIRAI_TIMEOUT_TRY), -ECONNRESET);
	assert_int_equal(moirai_chan_send(ch, &m, 1, WAIT), -ECONNRESET);
	assert_true(moirai_chan_is_closed(ch));
	assert_int_equal(moirai_chan_count(ch), 0);
	moirai_chan_destroy(ch);

	/* Reconnect: the listener takes the next peer, which streams to a
	 * clean end. */
	pid = spawn("send", moirai_net_listener_port(l), "clean");
	assert_int_equal(moirai_net_accept_chan(l, WAIT, &ch), 0);
	got = 0;
	assert_int_equal(recv_until(ch, &got, k), 0);
	m.seq = (uint64_t)k;
	assert_int_equal(moirai_chan_send(ch, &m, 1, WAIT), 1);
	assert_int_equal(recv_until(ch, &got, -1), -EPIPE);
	assert_int_equal(got, (uint64_t)k);
	moirai_chan_destroy(ch);
	reap_clean(pid);
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
}

/* The survivor sends: it connects to the peer, which acknowledges and is
 * killed; the survivor then connects to a new peer. */
static void test_sender_survives(void **state)
{
	long k = k_msgs();
	struct moirai_net *net;
	struct moirai_chan *ch = NULL;
	struct msg m;
	int fds[2], port, rc = 0, sends;
	char a[64];
	pid_t pid;

	for (int round = 0; round < 2; round++) {
		bool kill_it = round == 0;

		assert_int_equal(pipe(fds), 0);
		/* The peer listens and writes its port into the pipe. */
		pid = spawn("recv", fds[1], kill_it ? "kill" : "clean");
		close(fds[1]);
		assert_int_equal(read(fds[0], &port, sizeof(port)), sizeof(port));
		close(fds[0]);
		net = net_new();
		assert_non_null(net);
		snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", port);
		assert_int_equal(moirai_net_connect_chan(net, a, &opts, WAIT, &ch), 0);
		assert_int_equal(send_range(ch, 0, (uint64_t)k), 0);
		/* The acknowledgement: the peer received exactly k, in order. */
		assert_int_equal(moirai_chan_recv(ch, &m, 1, WAIT), 1);
		assert_int_equal(m.seq, (uint64_t)k);
		if (!kill_it) {
			assert_int_equal(moirai_chan_close(ch), 0);
			assert_int_equal(moirai_chan_recv(ch, &m, 1, WAIT), -EPIPE);
			moirai_chan_destroy(ch);
			moirai_net_destroy(net);
			reap_clean(pid);
			continue;
		}
		reap_killed(pid);
		/* Sends go on only until the failure is known (the window
		 * bounds them: nobody returns credit): then -ECONNRESET. */
		for (sends = 0; sends < 10 * (int)WINDOW; sends++) {
			m = (struct msg){ (uint64_t)(k + sends), check_of((uint64_t)(k + sends)) };
			rc = moirai_chan_send(ch, &m, 1, WAIT);
			if (rc != 1)
				break;
		}
		assert_int_equal(rc, -ECONNRESET);
		assert_true(sends <= (int)WINDOW);
		assert_int_equal(moirai_chan_send(ch, &m, 1, MOIRAI_TIMEOUT_TRY), -ECONNRESET);
		assert_int_equal(moirai_chan_recv(ch, &m, 1, MOIRAI_TIMEOUT_TRY), -ECONNRESET);
		assert_true(moirai_chan_is_closed(ch));
		moirai_chan_destroy(ch);
		moirai_net_destroy(net);
	}
}

int main(int argc, char **argv)
{
	/* UCX's memory hooks crash the sanitizers' interceptors
	 * (test_chan_contract.c); the peers inherit the setting. */
	if (TEST_SAN_DIVISOR > 1) {
		setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 1);
		setenv("UCX_MEM_MALLOC_HOOKS", "no", 1);
	}
	if (argc > 1 && !strcmp(argv[1], "--peer"))
		return peer_main(argc, argv);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_receiver_survives),
		cmocka_unit_test(test_sender_survives),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
