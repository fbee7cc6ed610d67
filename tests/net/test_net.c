/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Network channels over loopback in one network namespace (whatever
 * transport UCX picks for 127.0.0.1, and TCP alone): a stream with
 * exact-once and order checks in bursts, variable-length messages, the
 * close / drain / end-of-stream contract both ways, flow control (a full
 * window is -EAGAIN / -ETIMEDOUT, exactly `window` messages in flight), bad
 * addresses and options, refused handshakes (message size, protocol
 * version), a dead peer (a forked child killed mid-stream: -ECONNRESET
 * after everything it sent was received) and reconnecting, and a net
 * owned by a runtime worker whose progress poller wakes the parked worker.
 * Every wait is bounded; counts scale with MOIRAI_TEST_SCALE.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moirai.h"
#include "net_int.h"
#include "testutil.h"

#define SEC  (1000ll * 1000 * 1000)
#define WAIT (20 * SEC)

struct msg {
	uint64_t seq;
	uint64_t check;
};

static uint64_t check_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u;
}

/* Transports of a test run: NULL (UCX's choice) or "tcp". */
static const char *tls;
/* Send coalescing of a test run's endpoints (opts.coalesce; 0 = off). */
static unsigned coalesce;

static struct moirai_net *net_new(void)
{
	struct moirai_net_config c = { .transports = tls };
	struct moirai_net *net = NULL;
	int rc = moirai_net_create(&c, &net);

	if (rc)
		fail_msg("moirai_net_create: %d (%s)", rc, moirai_last_error());
	return net;
}

static char *addr_of(char *buf, size_t n, int port)
{
	snprintf(buf, n, "tcp://127.0.0.1:%d", port);
	return buf;
}

/* ---- a server thread -------------------------------------------------- */

struct server {
	struct moirai_net_chan_opts opts;
	_Atomic int port; /* set once listening */
	_Atomic int go;	  /* flow control: start reading */
	long n;		  /* messages expected */
	int mode;	  /* what the server does */
	/* results */
	long got;
	int end_rc;
	int fail_line;
	uint64_t refused;
	struct moirai_net_chan_stats st;
};

enum { SRV_STREAM, SRV_ECHO_VAR, SRV_HOLD, SRV_REFUSE };

#define SCHECK(c)                                \
	do {                                     \
		if (!(c)) {                      \
			s->fail_line = __LINE__; \
			goto out;                \
		}                                \
	} while (0)

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct moirai_net *net = net_new();
	struct moirai_net_listener *l = NULL;
	struct moirai_net_chan *ch = NULL;
	struct msg buf[64];
	int rc;

	SCHECK(moirai_net_listen(net, "tcp://127.0.0.1:0", &s->opts, &l) == 0);
	atomic_store(&s->port, moirai_net_listener_port(l));
	if (s->mode == SRV_REFUSE) {
		/* Refusals are not handed out: accept times out. */
		rc = moirai_net_accept(l, 3 * SEC, &ch);
		SCHECK(rc == -ETIMEDOUT);
		s->refused = moirai_net_listener_refused(l);
		goto out;
	}
	SCHECK(moirai_net_accept(l, WAIT, &ch) == 0);
	if (s->mode == SRV_STREAM) {
		while (s->got < s->n) {
			rc = moirai_net_recv(ch, buf, 1 + (unsigned)(s->got % 64), WAIT);
			SCHECK(rc > 0);
			for (int i = 0; i < rc; i++, s->got++)
				SCHECK(buf[i].seq == (uint64_t)s->got &&
				       buf[i].check == check_of(buf[i].seq));
		}
		s->end_rc = moirai_net_recv(ch, buf, 64, WAIT);
		/* After the end of stream, sends fail too. */
		SCHECK(moirai_net_send(ch, buf, 1, 0) == -EPIPE);
		SCHECK(moirai_net_close(ch) == -EALREADY);
	} else if (s->mode == SRV_ECHO_VAR) {
		static unsigned char data[64][4096];
		struct moirai_net_msg m[64];

		for (;;) {
			for (int i = 0; i < 64; i++)
				m[i] = (struct moirai_net_msg){ data[i], sizeof(data[i]) };
			rc = moirai_net_recvv(ch, m, 64, WAIT);
			if (rc < 0) {
				s->end_rc = rc;
				break;
			}
			s->got += rc;
			for (int off = 0; off < rc;) {
				int k = moirai_net_sendv(ch, m + off, (unsigned)(rc - off), WAIT);

				SCHECK(k > 0);
				off += k;
			}
		}
	} else if (s->mode == SRV_HOLD) {
		for (uint64_t end = moirai_now_ns() + (uint64_t)WAIT; !atomic_load(&s->go);) {
			moirai_net_progress(net);
			SCHECK(moirai_now_ns() < end);
		}
		SCHECK(moirai_net_count(ch) == s->opts.window);
		while (s->got < s->n) {
			rc = moirai_net_recv(ch, buf, 64, WAIT);
			SCHECK(rc > 0);
			for (int i = 0; i < rc; i++, s->got++)
				SCHECK(buf[i].seq == (uint64_t)s->got);
		}
		s->end_rc = moirai_net_recv(ch, buf, 64, WAIT);
	}
	moirai_net_chan_stats(ch, &s->st);
out:
	moirai_net_chan_destroy(ch);
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
	return NULL;
}

static void server_start(struct server *s, pthread_t *t)
{
	assert_int_equal(pthread_create(t, NULL, server_main, s), 0);
	for (uint64_t end = moirai_now_ns() + (uint64_t)WAIT; !atomic_load(&s->port);) {
		assert_true(moirai_now_ns() < end);
		usleep(1000);
	}
}

static void server_join(struct server *s, pthread_t t)
{
	assert_int_equal(pthread_join(t, NULL), 0);
	if (s->fail_line)
		fail_msg("server failed at line %d (got %ld)", s->fail_line, s->got);
}

static struct moirai_net_chan *connect_to(struct moirai_net *net, int port,
					  const struct moirai_net_chan_opts *o)
{
	char a[64];
	struct moirai_net_chan *ch = NULL;
	int rc = moirai_net_connect(net, addr_of(a, sizeof(a), port), o, WAIT, &ch);

	if (rc)
		fail_msg("connect %s: %d (%s)", a, rc, moirai_last_error());
	return ch;
}

/* ---- tests ------------------------------------------------------------ */

static void test_stream(void **state)
{
	long n = 200000 * test_scale() / TEST_SAN_DIVISOR;
	struct server s = { .opts = { .elem_size = sizeof(struct msg), .coalesce = coalesce },
			    .n = n };
	struct moirai_net *net = net_new();
	struct moirai_net_chan *ch;
	struct moirai_net_chan_stats st;
	struct msg buf[32];
	pthread_t t;
	long sent = 0;

	server_start(&s, &t);
	ch = connect_to(net, s.port, &s.opts);
	assert_int_equal(moirai_net_elem_size(ch), sizeof(struct msg));
	while (sent < n) {
		unsigned b = 1 + (unsigned)(sent % 32), k;
		int rc;

		if (b > n - sent)
			b = (unsigned)(n - sent);
		for (k = 0; k < b; k++)
			buf[k] = (struct msg){ (uint64_t)(sent + k),
					       check_of((uint64_t)(sent + k)) };
		rc = moirai_net_send(ch, buf, b, WAIT);
		assert_true(rc > 0 && (unsigned)rc <= b);
		sent += rc;
		/* A partial burst: the rest goes in the next call, in order. */
		if ((unsigned)rc < b)
			memmove(buf, buf + rc, (b - (unsigned)rc) * sizeof(buf[0]));
	}
	assert_int_equal(moirai_net_chan_stats(ch, &st), 0);
	assert_int_equal(st.msgs_sent, (uint64_t)n);
	/* Bursts were coalesced: far fewer active messages than messages
	 * (with coalescing, up to 4 KiB of consecutive sends in one). */
	assert_true(st.ams_sent < (uint64_t)n / (coalesce ? 32 : 4));
	assert_int_equal(moirai_net_close(ch), 0);
	moirai_clear_error();
	assert_int_equal(moirai_net_close(ch), -EALREADY);
	assert_non_null(strstr(moirai_last_error(), "net close: already closed"));
	assert_true(moirai_net_is_closed(ch));
	assert_int_equal(moirai_net_send(ch, buf, 1, 0), -EPIPE);
	/* The closer's receive: nothing came, end of stream once acknowledged. */
	assert_int_equal(moirai_net_recv(ch, buf, 32, WAIT), -EPIPE);
	server_join(&s, t);
	assert_int_equal(s.got, n);
	assert_int_equal(s.end_rc, -EPIPE);
	assert_int_equal(s.st.msgs_received, (uint64_t)n);
	moirai_net_chan_destroy(ch);
	moirai_net_destroy(net);
}

static void test_variable_echo(void **state)
{
	struct server s = {
		.opts = { .elem_size = 0, .max_msg = 4000, .window = 256, .coalesce = coalesce },
		.mode = SRV_ECHO_VAR
	};
	struct moirai_net *net = net_new();
	struct moirai_net_chan *ch;
	static unsigned char out[32][4000], in[32][4000];
	struct moirai_net_msg m[32], r[32];
	long rounds = 300 * test_scale(), echoed = 0;
	pthread_t t;
	unsigned seed = 1;

	server_start(&s, &t);
	ch = connect_to(net, s.port, &s.opts);
	assert_int_equal(moirai_net_elem_size(ch), 0);
	/* Oversize: nothing sent, a clear error. */
	m[0] = (struct moirai_net_msg){ out[0], 4001 };
	assert_int_equal(moirai_net_sendv(ch, m, 1, 0), -EMSGSIZE);
	assert_non_null(strstr(moirai_last_error(), "4001"));
	assert_int_equal(moirai_net_send(ch, out, 1, 0), -EINVAL); /* fixed-size call */
	for (long round = 0; round < rounds; round++) {
		unsigned b = 1 + (unsigned)(round % 32);

		for (unsigned i = 0; i < b; i++) {
			size_t len = (seed = seed * 1103515245u + 12345u) % 4001;

			if (round % 7 == 0)
				len = i % 2 ? 0 : 4000; /* the edges */
			for (size_t j = 0; j < len; j++)
				out[i][j] = (unsigned char)(round + i + j);
			m[i] = (struct moirai_net_msg){ out[i], len };
		}
		for (unsigned off = 0; off < b;) {
			int k = moirai_net_sendv(ch, m + off, b - off, WAIT);

			assert_true(k > 0);
			off += (unsigned)k;
		}
		for (unsigned got = 0; got < b;) {
			int k;

			for (unsigned i = got; i < b; i++)
				r[i] = (struct moirai_net_msg){ in[i], sizeof(in[i]) };
			if (round == 3 && got == 0 && m[0].len > 1) {
				/* A buffer too small: -EMSGSIZE, the message stays. */
				r[0].len = 1;
				assert_int_equal(moirai_net_recvv(ch, r, 1, WAIT), -EMSGSIZE);
				assert_int_equal(r[0].len, m[0].len);
				r[0].len = sizeof(in[0]);
			}
			k = moirai_net_recvv(ch, r + got, b - got, WAIT);
			assert_true(k > 0);
			for (unsigned i = got; i < got + (unsigned)k; i++) {
				assert_int_equal(r[i].len, m[i].len);
				assert_memory_equal(r[i].base, m[i].base, m[i].len);
			}
			got += (unsigned)k;
			echoed += k;
		}
	}
	assert_int_equal(moirai_net_close(ch), 0);
	assert_int_equal(moirai_net_recvv(ch, r, 1, WAIT), -EPIPE);
	server_join(&s, t);
	assert_int_equal(s.got, echoed);
	assert_int_equal(s.end_rc, -EPIPE);
	moirai_net_chan_destroy(ch);
	moirai_net_destroy(net);
}

static void test_flow_control(void **state)
{
	struct server s = {
		.opts = { .elem_size = sizeof(struct msg), .window = 64, .coalesce = coalesce },
		.mode = SRV_HOLD
	};
	struct moirai_net *net = net_new();
	struct moirai_net_chan *ch;
	struct moirai_net_chan_stats st;
	struct msg buf[16];
	long sent = 0, total = 64 + 1000;
	uint64_t t0;
	pthread_t t;
	int rc;

	s.n = total;
	server_start(&s, &t);
	ch = connect_to(net, s.port, &s.opts);
	/* The peer reads nothing: exactly its window goes, then -EAGAIN. */
	for (;;) {
		for (int i = 0; i < 16; i++)
			buf[i] = (struct msg){ (uint64_t)(sent + i), 0 };
		rc = moirai_net_send(ch, buf, 16, 0);
		if (rc == -EAGAIN)
			break;
		assert_true(rc > 0);
		sent += rc;
		assert_true(sent <= 64);
	}
	assert_int_equal(sent, 64);
	t0 = moirai_now_ns();
	assert_int_equal(moirai_net_send(ch, buf, 1, 50 * 1000 * 1000), -ETIMEDOUT);
	assert_true(moirai_now_ns() - t0 >= 50 * 1000 * 1000);
	assert_int_equal(moirai_net_send(ch, buf, 1, -2), -EINVAL);
	assert_int_equal(moirai_net_chan_stats(ch, &st), 0);
	assert_true(st.window_full >= 2);
	assert_int_equal(st.msgs_sent, 64);
	atomic_store(&s.go, 1);
	/* Credits come back as the peer reads: the rest goes through. */
	while (sent < total) {
		unsigned b = total - sent < 16 ? (unsigned)(total - sent) : 16;

		for (unsigned i = 0; i < b; i++)
			buf[i] = (struct msg){ (uint64_t)(sent + i), 0 };
		rc = moirai_net_send(ch, buf, b, WAIT);
		assert_true(rc > 0);
		sent += rc;
	}
	moirai_net_chan_destroy(ch); /* closes: the peer sees end of stream */
	server_join(&s, t);
	assert_int_equal(s.got, total);
	assert_int_equal(s.end_rc, -EPIPE);
	moirai_net_destroy(net);
}

static void test_bad_input(void **state)
{
	static const char *const bad[] = {
		"",
		"tcp://",
		"udp://127.0.0.1:5",
		"tcp://127.0.0.1",
		"tcp://127.0.0.1:",
		"tcp://127.0.0.1:99999",
		"tcp://127.0.0.1:0",
		"tcp://127.0.0.1:12x",
		"tcp://[::1:5",
		"tcp://::1:5",
		"tcp://:5",
	};
	struct moirai_net *net = net_new();
	struct moirai_net_chan *ch = NULL;
	struct moirai_net_listener *l = NULL;
	struct moirai_net_chan_opts o = { .elem_size = 6 };
	char a[64];
	int rc;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = moirai_net_connect(net, bad[i], NULL, SEC, &ch);
		if (rc != -EINVAL)
			fail_msg("'%s': %d, not -EINVAL", bad[i], rc);
		assert_null(ch);
		assert_non_null(strstr(moirai_last_error(), "address"));
	}
	assert_int_equal(moirai_net_connect(net, "tcp://no-such-host.invalid:5", NULL, SEC, &ch),
			 -EADDRNOTAVAIL);
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:x", NULL, &l), -EINVAL);
	assert_int_equal(moirai_net_connect(net, "tcp://127.0.0.1:5", &o, SEC, &ch), -EINVAL);
	o = (struct moirai_net_chan_opts){ .max_msg = MOIRAI_NET_MSG_MAX + 1 };
	assert_int_equal(moirai_net_connect(net, "tcp://127.0.0.1:5", &o, SEC, &ch), -EINVAL);
	o = (struct moirai_net_chan_opts){ .window = MOIRAI_NET_WINDOW_MAX + 1 };
	assert_int_equal(moirai_net_connect(net, "tcp://127.0.0.1:5", &o, SEC, &ch), -EINVAL);
	assert_int_equal(moirai_net_connect(net, "tcp://127.0.0.1:5", NULL, 0, &ch), -EINVAL);
	assert_int_equal(moirai_net_connect(net, "tcp://127.0.0.1:5", NULL, -2, &ch), -EINVAL);
	assert_int_equal(moirai_net_connect(NULL, "tcp://127.0.0.1:5", NULL, SEC, &ch), -EINVAL);
	assert_int_equal(moirai_net_send(NULL, a, 1, 0), -EINVAL);
	assert_int_equal(moirai_net_recv(NULL, a, 1, 0), -EINVAL);
	assert_int_equal(moirai_net_close(NULL), -EINVAL);
	assert_false(moirai_net_is_closed(NULL));

	/* Nobody listens: refused, in bounded time. */
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", NULL, &l), 0);
	int port = moirai_net_listener_port(l);

	moirai_net_listener_destroy(l);
	rc = moirai_net_connect(net, addr_of(a, sizeof(a), port), NULL, 10 * SEC, &ch);
	if (rc != -ECONNREFUSED && rc != -ETIMEDOUT)
		fail_msg("connect to a closed port: %d (%s)", rc, moirai_last_error());
	assert_null(ch);
	/* Listening twice on one port. */
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", NULL, &l), 0);
	struct moirai_net_listener *l2 = NULL;

	rc = moirai_net_listen(net, addr_of(a, sizeof(a), moirai_net_listener_port(l)), NULL, &l2);
	assert_true(rc < 0);
	assert_null(l2);
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
}

static void test_refused_handshakes(void **state)
{
	struct server s = { .opts = { .elem_size = 16 }, .mode = SRV_REFUSE };
	struct moirai_net *net = net_new();
	struct moirai_net_chan_opts o = { .elem_size = 32 };
	struct moirai_net_chan *ch = NULL;
	char a[64];
	pthread_t t;
	int rc;

	server_start(&s, &t);
	addr_of(a, sizeof(a), s.port);
	rc = moirai_net_connect(net, a, &o, WAIT, &ch);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "message size"));
	assert_null(ch);
	o.elem_size = 16;
	moirai__net_hello_version = MOIRAI_NET_PROTO_VERSION + 1;
	rc = moirai_net_connect(net, a, &o, WAIT, &ch);
	moirai__net_hello_version = MOIRAI_NET_PROTO_VERSION;
	assert_int_equal(rc, -EPROTONOSUPPORT);
	assert_non_null(strstr(moirai_last_error(), "version"));
	assert_null(ch);
	server_join(&s, t);
	assert_int_equal(s.refused, 2);
	moirai_net_destroy(net);
}

/* ---- a peer that dies ------------------------------------------------- */

/*
 * The child (this program exec'd again, "--dead-sender FD K ACK") waits
 * for the port on @fd.  Exec, not a bare fork: UCX's threads and hooks do
 * not survive a fork, and a forked child of a ThreadSanitizer process
 * that starts threads never connected.
 */
static void child_sender(int fd, long k, bool kill_after_ack)
{
	struct moirai_net *net;
	struct moirai_net_chan *ch = NULL;
	struct moirai_net_chan_opts o = { .elem_size = sizeof(struct msg) };
	struct msg m[8];
	char a[64];
	long sent = 0;
	int port;

	alarm(60); /* never outlive the test */
	if (read(fd, &port, sizeof(port)) != sizeof(port))
		_exit(2);
	if (moirai_net_create(&(struct moirai_net_config){ .transports = tls }, &net) ||
	    moirai_net_connect(net, addr_of(a, sizeof(a), port), &o, WAIT, &ch))
		_exit(3);
	while (sent < k) {
		unsigned b = k - sent < 8 ? (unsigned)(k - sent) : 8;
		int rc;

		for (unsigned i = 0; i < b; i++)
			m[i] = (struct msg){ (uint64_t)(sent + i), check_of((uint64_t)(sent + i)) };
		rc = moirai_net_send(ch, m, b, WAIT);
		if (rc <= 0)
			_exit(4);
		sent += rc;
	}
	if (kill_after_ack && moirai_net_recv(ch, m, 1, WAIT) != 1)
		_exit(5);
	raise(SIGKILL); /* no close, no destroy: as if killed */
	_exit(6);
}

#define ROUNDS 3

static void test_dead_peer_and_reconnect(void **state)
{
	struct moirai_net *net;
	struct moirai_net_listener *l = NULL;
	struct moirai_net_chan *ch = NULL;
	struct moirai_net_chan_opts o = { .elem_size = sizeof(struct msg) };
	struct msg m[16];
	long k = 5000;
	int status, fds[ROUNDS][2], port;
	pid_t pids[ROUNDS];

	/* Round 1 is killed mid-stream, rounds 0 and 2 after an ack. */
	for (int r = 0; r < ROUNDS; r++) {
		char fd_s[16], k_s[24];

		assert_int_equal(pipe(fds[r]), 0);
		snprintf(fd_s, sizeof(fd_s), "%d", fds[r][0]);
		snprintf(k_s, sizeof(k_s), "%ld", k);
		pids[r] = fork();
		assert_true(pids[r] >= 0);
		if (pids[r] == 0) {
			execl("/proc/self/exe", "test_net", "--dead-sender", fd_s, k_s,
			      r != 1 ? "1" : "0", (char *)NULL);
			_exit(7);
		}
		close(fds[r][0]);
	}
	net = net_new();
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", &o, &l), 0);
	port = moirai_net_listener_port(l);
	for (int round = 0; round < ROUNDS; round++) {
		bool acked = round != 1;
		long got = 0;
		int rc;

		assert_int_equal(write(fds[round][1], &port, sizeof(port)), sizeof(port));
		assert_int_equal(moirai_net_accept(l, WAIT, &ch), 0);
		for (;;) {
			rc = moirai_net_recv(ch, m, 16, WAIT);
			if (rc <= 0)
				break;
			for (int i = 0; i < rc; i++, got++) {
				assert_int_equal(m[i].seq, (uint64_t)got);
				assert_int_equal(m[i].check, check_of((uint64_t)got));
			}
			if (acked && got == k)
				assert_int_equal(moirai_net_send(ch, m, 1, WAIT), 1);
		}
		/* Killed: an error, never a hang; what arrived before was kept. */
		assert_int_equal(rc, -ECONNRESET);
		if (acked)
			assert_int_equal(got, k);
		assert_true(got <= k);
		assert_int_equal(moirai_net_recv(ch, m, 16, 0), -ECONNRESET);
		rc = moirai_net_send(ch, m, 1, WAIT);
		assert_int_equal(rc, -ECONNRESET);
		assert_true(moirai_net_is_closed(ch));
		assert_int_equal(waitpid(pids[round], &status, 0), pids[round]);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("child %d: status 0x%x", round, status);
		/* The listener keeps accepting: the next round reconnects. */
		moirai_net_chan_destroy(ch);
		ch = NULL;
		close(fds[round][1]);
	}
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
}

/* ---- a net owned by a runtime worker ------------------------------- */

struct rtsrv {
	struct moirai_net *net;
	struct moirai_net_listener *l;
	struct moirai_net_chan *ch;
	struct moirai_poller *app;
	_Atomic int port, rc;
	_Atomic long got;
	_Atomic int eos;
	long bad;
};

static int app_poll(void *arg)
{
	struct rtsrv *s = arg;
	struct msg m[32];
	int rc;

	if (!s->ch) {
		if (moirai_net_accept(s->l, 0, &s->ch) != 0)
			return MOIRAI_POLL_IDLE;
	}
	rc = moirai_net_recv(s->ch, m, 32, 0);
	if (rc == -EPIPE) {
		atomic_store(&s->eos, 1);
		return MOIRAI_POLL_IDLE;
	}
	if (rc <= 0)
		return MOIRAI_POLL_IDLE;
	for (int i = 0; i < rc; i++)
		if (m[i].seq != (uint64_t)atomic_load(&s->got) + (uint64_t)i)
			s->bad++;
	atomic_fetch_add(&s->got, rc);
	return MOIRAI_POLL_BUSY;
}

static int rt_setup(void *arg)
{
	struct rtsrv *s = arg;
	struct moirai_net_config c = { .rt = moirai_rt_current(), .transports = tls };
	struct moirai_net_chan_opts o = { .elem_size = sizeof(struct msg) };
	int rc = moirai_net_create(&c, &s->net);

	if (!rc)
		rc = moirai_net_listen(s->net, "tcp://127.0.0.1:0", &o, &s->l);
	if (!rc)
		rc = moirai_poller_register(moirai_rt_current(), moirai_rt_self(), "app", app_poll,
					    s, 0, 0, &s->app);
	if (!rc)
		atomic_store(&s->port, moirai_net_listener_port(s->l));
	atomic_store(&s->rc, rc ? rc : 1);
	return 0;
}

static int rt_teardown(void *arg)
{
	struct rtsrv *s = arg;

	moirai_poller_unregister(s->app);
	moirai_net_chan_destroy(s->ch);
	moirai_net_listener_destroy(s->l);
	moirai_net_destroy(s->net);
	atomic_store(&s->rc, 2);
	return 0;
}

static void test_runtime_poller(void **state)
{
	struct moirai_plan_opts po = { .workers = 1 };
	struct moirai_rt_config cfg = { .plan = &po, .spin_ns = 20000 };
	struct moirai_rt *rt = NULL;
	struct moirai_rt_worker_stats ws0, ws1;
	static struct rtsrv s;
	struct moirai_net *net = net_new();
	struct moirai_net_chan *ch;
	struct moirai_net_chan_opts o = { .elem_size = sizeof(struct msg), .coalesce = coalesce };
	struct msg m = { 0 };
	long n = 50;

	memset(&s, 0, sizeof(s));
	assert_int_equal(moirai_rt_create(&cfg, &rt), 0);
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, rt_setup, &s), 0);
	for (uint64_t end = moirai_now_ns() + (uint64_t)WAIT; !atomic_load(&s.rc);)
		assert_true(moirai_now_ns() < end);
	assert_int_equal(atomic_load(&s.rc), 1);
	ch = connect_to(net, s.port, &o);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws0), 0);
	for (long i = 0; i < n; i++) {
		m.seq = (uint64_t)i;
		assert_int_equal(moirai_net_send(ch, &m, 1, WAIT), 1);
		/* Let the worker park between messages: each one must wake it. */
		for (uint64_t end = moirai_now_ns() + (uint64_t)WAIT; atomic_load(&s.got) <= i;) {
			moirai_net_progress(net);
			assert_true(moirai_now_ns() < end);
		}
		usleep(2000);
	}
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws1), 0);
	/* It slept (parks) and messages still arrived: the UCX fd woke it. */
	assert_true(ws1.parks > ws0.parks);
	assert_true(ws1.polls_busy > ws0.polls_busy);
	assert_int_equal(s.bad, 0);
	moirai_net_chan_destroy(ch);
	for (uint64_t end = moirai_now_ns() + (uint64_t)WAIT; !atomic_load(&s.eos);)
		assert_true(moirai_now_ns() < end);
	atomic_store(&s.rc, 0);
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, rt_teardown, &s), 0);
	for (uint64_t end = moirai_now_ns() + (uint64_t)WAIT; atomic_load(&s.rc) != 2;)
		assert_true(moirai_now_ns() < end);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	moirai_net_destroy(net);
}

/* Coalescing: consecutive sends gather into one active message that
 * leaves when full, from progress, or before the FIN. */
static void test_coalesce(void **state)
{
	long n = 1000; /* under the window: no send waits for credits */
	/* The server reads n, then one sent by progress, one with the FIN. */
	struct server s = { .opts = { .elem_size = sizeof(struct msg) }, .n = n + 2 };
	struct moirai_net_chan_opts o = { .elem_size = sizeof(struct msg), .coalesce = 4096 };
	struct moirai_net *net = net_new();
	struct moirai_net_listener *l;
	struct moirai_net_chan *ch;
	struct moirai_net_chan_stats st;
	struct msg m;
	pthread_t t;

	/* Above the largest active message: refused, with the limit. */
	o.coalesce = MOIRAI_NET_AM_MAX + 4;
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", &o, &l), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "coalesce"));
	o.coalesce = 4096; /* 256 messages of 16 bytes, a quarter window */
	server_start(&s, &t);
	ch = connect_to(net, s.port, &o);
	for (long i = 0; i < n; i++) {
		m = (struct msg){ (uint64_t)i, check_of((uint64_t)i) };
		assert_int_equal(moirai_net_send(ch, &m, 1, WAIT), 1);
		assert_int_equal(moirai_net_chan_stats(ch, &st), 0);
		/* Held until 256 are open, then one active message. */
		assert_int_equal(ch->agg_n, (unsigned)((i + 1) % 256));
		assert_int_equal(st.ams_sent, (uint64_t)((i + 1) / 256));
		if (ch->agg_n) {
			moirai_clear_error();
			assert_int_equal(moirai_net_arm(net), -EBUSY);
			assert_non_null(strstr(moirai_last_error(), "net arm"));
		}
	}
	/* A receive sends what is open first (1000 = 3 * 256 + 232), even
	 * one that finds nothing. */
	assert_int_equal(moirai_net_recv(ch, &m, 1, MOIRAI_TIMEOUT_TRY), -EAGAIN);
	assert_int_equal(ch->agg_n, 0);
	assert_int_equal(moirai_net_chan_stats(ch, &st), 0);
	assert_int_equal(st.ams_sent, 4);
	assert_int_equal(st.msgs_sent, (uint64_t)n);
	/* So does progress. */
	m = (struct msg){ (uint64_t)n, check_of((uint64_t)n) };
	assert_int_equal(moirai_net_send(ch, &m, 1, WAIT), 1);
	assert_int_equal(ch->agg_n, 1);
	assert_true(moirai_net_progress(net) > 0);
	assert_int_equal(ch->agg_n, 0);
	/* One more to go with the FIN: it arrives before the end of stream. */
	m = (struct msg){ (uint64_t)n + 1, check_of((uint64_t)n + 1) };
	assert_int_equal(moirai_net_send(ch, &m, 1, WAIT), 1);
	assert_int_equal(ch->agg_n, 1);
	assert_int_equal(moirai_net_close(ch), 0);
	assert_int_equal(ch->agg_n, 0);
	assert_int_equal(moirai_net_recv(ch, &m, 1, WAIT), -EPIPE);
	server_join(&s, t);
	assert_int_equal(s.got, n + 2);
	assert_int_equal(s.end_rc, -EPIPE);
	assert_int_equal(s.st.ams_received, 6);
	moirai_net_chan_destroy(ch);
	moirai_net_destroy(net);
}

static void test_create_errors(void **state)
{
	struct moirai_plan_opts po = { .workers = 1 };
	struct moirai_rt_config cfg = { .plan = &po };
	struct moirai_rt *rt = NULL;
	struct moirai_net *net = NULL;
	struct moirai_net_config c;

	assert_int_equal(moirai_net_create(NULL, NULL), -EINVAL);
	assert_int_equal(moirai_rt_create(&cfg, &rt), 0);
	c = (struct moirai_net_config){ .rt = rt };
	/* Not from a worker of rt. */
	assert_int_equal(moirai_net_create(&c, &net), -EINVAL);
	assert_null(net);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	c = (struct moirai_net_config){ .transports = "no-such-transport" };
	assert_true(moirai_net_create(&c, &net) < 0);
	assert_null(net);
	moirai_net_destroy(NULL);
	moirai_net_chan_destroy(NULL);
	moirai_net_listener_destroy(NULL);
}

static int setup_tcp(void **state)
{
	tls = "tcp";
	coalesce = 0;
	return 0;
}

static int setup_any(void **state)
{
	tls = NULL;
	coalesce = 0;
	return 0;
}

static int setup_tcp_coalesce(void **state)
{
	tls = "tcp";
	coalesce = 4096;
	return 0;
}

static int setup_any_coalesce(void **state)
{
	tls = NULL;
	coalesce = 4096;
	return 0;
}

/* ---- peer mode: one process per network namespace ------------------ */

/*
 * test_net --serve ADDR --senders K --count N [--var] [--reset]
 *          [--progress FILE] [--tls tcp|any]
 *     accept K connections, receive from all of them (one event loop:
 *     moirai_net_arm + poll on moirai_net_fd), check exactly-once and
 *     per-sender order, and expect end of stream from each (with --reset:
 *     one sender that dies: -ECONNRESET after an in-order prefix; FILE is
 *     written once 10000 messages arrived).
 * test_net --send ADDR --id I --count N [--var] [--burst B] [--tls ...]
 *          [--coalesce BYTES]
 *     connect (retrying while refused, 20 s), send N messages in bursts
 *     of 1..B (coalesced into active messages of up to BYTES), close.
 * Prints one result line; exit 0 on success, 1 on a failed check, 2 on
 * bad usage.
 */
#define PEER_MAX 8
#define VAR_MAX	 1500

static size_t var_len(uint64_t n)
{
	return 8 + (size_t)((n * 7919u) % (VAR_MAX - 7));
}

static void var_fill(unsigned char *p, uint64_t tagged, size_t len)
{
	memcpy(p, &tagged, 8);
	for (size_t j = 8; j < len; j++)
		p[j] = (unsigned char)(tagged + j);
}

static int peer_usage(const char *why)
{
	fprintf(stderr, "test_net: %s\n", why);
	return 2;
}

struct peer_args {
	const char *addr, *progress;
	long count, id, senders;
	unsigned burst, coalesce;
	bool var, reset;
	const char *tls;
};

static int peer_serve(const struct peer_args *a)
{
	struct moirai_net_chan_opts o = { .elem_size = a->var ? 0 : sizeof(struct msg),
					  .max_msg = a->var ? VAR_MAX : 0 };
	struct moirai_net_config c = { .transports = a->tls };
	struct moirai_net *net = NULL;
	struct moirai_net_listener *l = NULL;
	struct moirai_net_chan *ch[PEER_MAX] = { 0 };
	long got[PEER_MAX] = { 0 }, ids[PEER_MAX], total = 0;
	int end[PEER_MAX] = { 0 }, open = 0, rc;
	bool progress_written = false;
	uint64_t deadline = moirai_now_ns() + 300ull * SEC;
	static unsigned char vbuf[64][VAR_MAX];

	if ((rc = moirai_net_create(&c, &net)) || (rc = moirai_net_listen(net, a->addr, &o, &l))) {
		printf("serve: %s\n", moirai_last_error());
		return 1;
	}
	for (long i = 0; i < a->senders; i++) {
		if ((rc = moirai_net_accept(l, 60 * SEC, &ch[i]))) {
			printf("serve: accept %ld: %d %s\n", i, rc, moirai_last_error());
			return 1;
		}
		ids[i] = -1;
		open++;
	}
	while (open > 0) {
		int moved = 0;

		if (moirai_now_ns() > deadline) {
			printf("serve: still %d open at the deadline, %ld received\n", open, total);
			return 1;
		}
		for (long i = 0; i < a->senders; i++) {
			struct msg m[64];
			struct moirai_net_msg v[64];
			uint64_t tag;

			if (end[i])
				continue;
			if (a->var) {
				for (int k = 0; k < 64; k++)
					v[k] = (struct moirai_net_msg){ vbuf[k], VAR_MAX };
				rc = moirai_net_recvv(ch[i], v, 64, 0);
			} else {
				rc = moirai_net_recv(ch[i], m, 64, 0);
			}
			if (rc == -EAGAIN)
				continue;
			if (rc < 0) {
				end[i] = rc;
				open--;
				continue;
			}
			moved++;
			for (int k = 0; k < rc; k++, got[i]++, total++) {
				if (a->var) {
					memcpy(&tag, vbuf[k], 8);
				} else {
					tag = m[k].seq;
				}
				if (ids[i] < 0)
					ids[i] = (long)(tag >> 48);
				if (tag != ((uint64_t)ids[i] << 48 | (uint64_t)got[i])) {
					printf("serve: sender %ld: message %ld is 0x%llx\n", ids[i],
					       got[i], (unsigned long long)tag);
					return 1;
				}
				if (a->var) {
					static unsigned char want[VAR_MAX];
					size_t len = var_len((uint64_t)got[i]);

					var_fill(want, tag, len);
					if (v[k].len != len || memcmp(want, vbuf[k], len)) {
						printf("serve: sender %ld: message %ld: bad "
						       "contents\n",
						       ids[i], got[i]);
						return 1;
					}
				} else if (m[k].check != check_of(tag)) {
					printf("serve: sender %ld: message %ld: bad check\n",
					       ids[i], got[i]);
					return 1;
				}
			}
		}
		if (a->progress && !progress_written && total >= 10000) {
			FILE *f = fopen(a->progress, "w");

			if (f)
				fclose(f);
			progress_written = true;
		}
		if (!moved && moirai_net_progress(net) == 0 && moirai_net_arm(net) == 0) {
			struct pollfd pfd = { .fd = moirai_net_fd(net), .events = POLLIN };

			poll(&pfd, 1, 100);
		}
	}
	bool seen[PEER_MAX] = { 0 };

	for (long i = 0; i < a->senders; i++) {
		int want = a->reset ? -ECONNRESET : -EPIPE;

		if (end[i] != want || (!a->reset && got[i] != a->count) ||
		    (a->reset && got[i] < 10000) || ids[i] < 0 || ids[i] >= PEER_MAX ||
		    seen[ids[i]]) {
			printf("serve: sender %ld: %ld messages, end %d (want %ld, end %d)\n",
			       ids[i], got[i], end[i], a->count, want);
			return 1;
		}
		seen[ids[i]] = true;
		moirai_net_chan_destroy(ch[i]);
	}
	printf("serve ok: %ld senders, %ld messages, end %s\n", a->senders, total,
	       a->reset ? "ECONNRESET" : "EPIPE");
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
	return 0;
}

static int peer_send(const struct peer_args *a)
{
	struct moirai_net_chan_opts o = { .elem_size = a->var ? 0 : sizeof(struct msg),
					  .max_msg = a->var ? VAR_MAX : 0,
					  .coalesce = a->coalesce };
	struct moirai_net_config c = { .transports = a->tls };
	struct moirai_net *net = NULL;
	struct moirai_net_chan *ch = NULL;
	struct moirai_net_chan_stats st;
	static unsigned char vbuf[64][VAR_MAX];
	struct msg m[64];
	struct moirai_net_msg v[64];
	long sent = 0;
	int rc;

	if ((rc = moirai_net_create(&c, &net))) {
		printf("send: %s\n", moirai_last_error());
		return 1;
	}
	for (uint64_t end = moirai_now_ns() + 20ull * SEC;;) {
		rc = moirai_net_connect(net, a->addr, &o, 5 * SEC, &ch);
		if (rc != -ECONNREFUSED || moirai_now_ns() > end)
			break;
		usleep(50000);
	}
	if (rc) {
		printf("send: connect %s: %d %s\n", a->addr, rc, moirai_last_error());
		return 1;
	}
	while (sent < a->count) {
		unsigned b = 1 + (unsigned)(sent % a->burst);

		if (b > a->count - sent)
			b = (unsigned)(a->count - sent);
		for (unsigned k = 0; k < b; k++) {
			uint64_t tag = (uint64_t)a->id << 48 | (uint64_t)(sent + k);

			if (a->var) {
				size_t len = var_len((uint64_t)(sent + k));

				var_fill(vbuf[k], tag, len);
				v[k] = (struct moirai_net_msg){ vbuf[k], len };
			} else {
				m[k] = (struct msg){ tag, check_of(tag) };
			}
		}
		rc = a->var ? moirai_net_sendv(ch, v, b, 60 * SEC)
			    : moirai_net_send(ch, m, b, 60 * SEC);
		if (rc <= 0) {
			printf("send: after %ld: %d %s\n", sent, rc, moirai_last_error());
			return 1;
		}
		sent += rc;
	}
	moirai_net_chan_stats(ch, &st);
	moirai_net_close(ch);
	/* End of stream both ways: the peer got everything. */
	rc = a->var ? moirai_net_recvv(ch, v, 1, 60 * SEC) : moirai_net_recv(ch, m, 1, 60 * SEC);
	printf("send ok: id %ld, %ld messages in %llu active messages, end %d\n", a->id, sent,
	       (unsigned long long)st.ams_sent, rc);
	moirai_net_chan_destroy(ch);
	moirai_net_destroy(net);
	return rc == -EPIPE ? 0 : 1;
}

static int peer_main(int argc, char **argv)
{
	struct peer_args a = { .count = 1000, .burst = 32, .senders = 1, .tls = "tcp" };
	bool serve = false, send = false;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--var")) {
			a.var = true;
			continue;
		}
		if (!strcmp(o, "--reset")) {
			a.reset = true;
			continue;
		}
		if (!v)
			return peer_usage("an option is missing its value");
		i++;
		if (!strcmp(o, "--serve") || !strcmp(o, "--send")) {
			a.addr = v;
			serve = o[2] == 's' && o[3] == 'e' && o[4] == 'r';
			send = !serve;
		} else if (!strcmp(o, "--count")) {
			a.count = atol(v);
		} else if (!strcmp(o, "--id")) {
			a.id = atol(v);
		} else if (!strcmp(o, "--senders")) {
			a.senders = atol(v);
		} else if (!strcmp(o, "--burst")) {
			a.burst = (unsigned)atoi(v);
		} else if (!strcmp(o, "--coalesce")) {
			a.coalesce = (unsigned)atoi(v);
		} else if (!strcmp(o, "--progress")) {
			a.progress = v;
		} else if (!strcmp(o, "--tls")) {
			a.tls = strcmp(v, "any") ? v : NULL;
		} else {
			return peer_usage("unknown option");
		}
	}
	if (!serve && !send)
		return peer_usage("--serve or --send ADDR");
	if (a.count < 1 || a.burst < 1 || a.burst > 64 || a.senders < 1 || a.senders > PEER_MAX ||
	    a.id < 0 || a.id >= PEER_MAX)
		return peer_usage("count, burst (1..64), senders or id out of range");
	return serve ? peer_serve(&a) : peer_send(&a);
}

int main(int argc, char **argv)
{
	/* UCX's memory hooks (libucm patches mmap/munmap/madvise) crash
	 * ThreadSanitizer's interceptors at thread exit; moirai's active
	 * messages do not need them (see tests/tsan.supp). */
	if (TEST_UNDER_TSAN) {
		setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 1);
		setenv("UCX_MEM_MALLOC_HOOKS", "no", 1);
	}
	if (argc == 5 && !strcmp(argv[1], "--dead-sender"))
		child_sender(atoi(argv[2]), atol(argv[3]), argv[4][0] == '1');
	if (argc > 1)
		return peer_main(argc, argv);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_stream, setup_any),
		cmocka_unit_test_setup(test_stream, setup_tcp),
		cmocka_unit_test_setup(test_variable_echo, setup_tcp),
		cmocka_unit_test_setup(test_flow_control, setup_tcp),
		cmocka_unit_test_setup(test_bad_input, setup_tcp),
		cmocka_unit_test_setup(test_refused_handshakes, setup_tcp),
		cmocka_unit_test_setup(test_dead_peer_and_reconnect, setup_tcp),
		cmocka_unit_test_setup(test_runtime_poller, setup_tcp),
		cmocka_unit_test_setup(test_create_errors, setup_tcp),
		cmocka_unit_test_setup(test_coalesce, setup_tcp),
		cmocka_unit_test_setup(test_stream, setup_any_coalesce),
		cmocka_unit_test_setup(test_stream, setup_tcp_coalesce),
		cmocka_unit_test_setup(test_variable_echo, setup_tcp_coalesce),
		cmocka_unit_test_setup(test_flow_control, setup_tcp_coalesce),
		cmocka_unit_test_setup(test_runtime_poller, setup_tcp_coalesce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
