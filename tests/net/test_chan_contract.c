/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The moirai_chan contract, run against a local channel and against a
 * network channel opened as a struct moirai_chan (moirai_net_connect_chan /
 * moirai_net_accept_chan over loopback, both ends on one net driven from
 * this thread): one table of scenarios (send/receive counts, bursts,
 * -EAGAIN with timeout 0, -ETIMEDOUT with a timeout, close then send is
 * -EPIPE, receivers drain then -EPIPE, a close by the receiving end, bad
 * arguments), every step's return code and every received message's
 * contents asserted equal to the table for both, and the two runs'
 * records compared with each other.
 *
 * A local channel is one queue: "tx" and "rx" are the same handle.  A
 * network channel is two ends: tx sends, rx receives.  What the other end
 * did is seen after progress (moirai/net.h, "A network channel as a struct
 * moirai_chan"), so the table says where a test waits: a step with a
 * timeout waits for it on both, and SETTLE (a no-op for a local channel)
 * makes progress until what was sent has arrived, what was received has
 * been credited back to the sender and both ends agree about the close,
 * then checks the count; a timeout-0 step after it sees what a local
 * channel sees.  -EAGAIN with timeout 0 is asserted only where it
 * holds at once on both (an empty queue, a full window). Waits are bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moirai.h"
#include "net_int.h"
#include "testutil.h"

#define SEC  (1000ll * 1000 * 1000)
#define WAIT (20 * SEC)
#define MS   (1000ll * 1000)
#define TRY  MOIRAI_TIMEOUT_TRY
/* A local channel of SLOTS slots holds SLOTS - 1; the net window is that. */
#define SLOTS  8u
#define WINDOW (SLOTS - 1)

struct msg {
	uint64_t seq;
	uint64_t check;
};

static uint64_t check_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull ^ 0xc2b2ae35u;
}

/* ---- the table ----------------------------------------------------------- */

enum op {
	SEND,	   /* n messages on tx, numbered on from the last one sent */
	RECV,	   /* up to n on rx: each the next one expected */
	SEND_RX,   /* send on rx (only where it fails) */
	RECV_TX,   /* receive on tx (only where nothing is queued) */
	CLOSE_TX,  /* moirai_chan_close(tx) */
	CLOSE_RX,  /* moirai_chan_close(rx) */
	CLOSED_TX, /* moirai_chan_is_closed(tx) */
	CLOSED_RX, /* moirai_chan_is_closed(rx) */
	COUNT,	   /* moirai_chan_count(rx), no progress */
	SETTLE,	   /* net: progress until arrived; then moirai_chan_count(rx) */
	END,
};

enum { NULLBUF = 1 }; /* the step passes a NULL buffer */

struct step {
	enum op op;
	unsigned n;
	int64_t timeout;
	int expect;
	unsigned flags;
};

struct scenario {
	const char *name;
	struct step steps[24];
};

/* A step: the call and its arguments, or a check, and what it returns. */
#define S(o, n_, t, e)                                      \
	{                                                   \
		.op = o, .n = n_, .timeout = t, .expect = e \
	}
#define N(o, n_, t, e)                                                        \
	{                                                                     \
		.op = o, .n = n_, .timeout = t, .expect = e, .flags = NULLBUF \
	}
#define C(o, e)                      \
	{                            \
		.op = o, .expect = e \
	}
#define E                 \
	{                 \
		.op = END \
	}

static const struct scenario scenarios[] = {
	{ "send and receive counts",
	  { S(SEND, 3, TRY, 3), C(SETTLE, 3), C(COUNT, 3), S(RECV, 2, TRY, 2), S(RECV, 8, TRY, 1),
	    S(RECV, 1, TRY, -EAGAIN), C(COUNT, 0), S(SEND, 1, WAIT, 1), S(RECV, 1, WAIT, 1), E } },
	{ "bursts",
	  { S(SEND, 5, WAIT, 5), S(RECV, 8, WAIT, 5), S(SEND, 2, WAIT, 2), S(SEND, 2, WAIT, 2),
	    C(SETTLE, 4), S(RECV, 8, TRY, 4), C(SETTLE, 0), S(SEND, 6, TRY, 6), C(SETTLE, 6),
	    S(RECV, 1, TRY, 1), S(RECV, 3, TRY, 3), S(RECV, 5, TRY, 2), E } },
	{ "full: -EAGAIN with timeout 0, -ETIMEDOUT with a timeout",
	  { S(SEND, 10, TRY, WINDOW), S(SEND, 1, TRY, -EAGAIN), S(SEND, 1, 1 * MS, -ETIMEDOUT),
	    S(SEND, 3, TRY, -EAGAIN), C(SETTLE, WINDOW), S(RECV, 3, WAIT, 3), S(SEND, 5, WAIT, 3),
	    S(SEND, 1, TRY, -EAGAIN), C(SETTLE, WINDOW), S(RECV, 8, TRY, WINDOW), E } },
	{ "empty: -EAGAIN with timeout 0, -ETIMEDOUT with a timeout",
	  { S(RECV, 1, TRY, -EAGAIN), S(RECV, 4, 1 * MS, -ETIMEDOUT), C(COUNT, 0), C(CLOSED_TX, 0),
	    C(CLOSED_RX, 0), S(SEND, 1, TRY, 1), S(RECV, 4, WAIT, 1), S(RECV, 4, TRY, -EAGAIN),
	    E } },
	{ "close then send is -EPIPE; the receiver drains, then -EPIPE",
	  { S(SEND, 2, TRY, 2), C(CLOSE_TX, 0), C(CLOSED_TX, 1), S(SEND, 1, TRY, -EPIPE),
	    S(SEND, 1, WAIT, -EPIPE), C(CLOSE_TX, -EALREADY), S(RECV, 8, WAIT, 2),
	    S(RECV, 8, WAIT, -EPIPE), S(RECV, 8, TRY, -EPIPE), C(CLOSED_RX, 1),
	    C(CLOSE_RX, -EALREADY), S(SEND_RX, 1, TRY, -EPIPE), S(RECV_TX, 1, WAIT, -EPIPE), E } },
	{ "drain in small receives after a close",
	  { S(SEND, WINDOW, TRY, WINDOW), C(CLOSE_TX, 0), S(RECV, 3, WAIT, 3), S(RECV, 3, WAIT, 3),
	    S(RECV, 3, WAIT, 1), S(RECV, 3, WAIT, -EPIPE), C(SETTLE, 0), S(RECV, 3, TRY, -EPIPE),
	    E } },
	{ "a close by the receiving end",
	  { S(SEND, 1, TRY, 1), C(CLOSE_RX, 0), C(SETTLE, 1), C(CLOSED_TX, 1),
	    S(SEND, 1, TRY, -EPIPE), C(CLOSE_TX, -EALREADY), S(RECV, 4, WAIT, 1),
	    S(RECV, 4, WAIT, -EPIPE), E } },
	{ "bad arguments are -EINVAL, nothing moves",
	  { N(SEND, 1, TRY, -EINVAL), N(RECV, 1, TRY, -EINVAL), S(SEND, 1, -2, -EINVAL),
	    S(RECV, 1, -2, -EINVAL), N(SEND, 0, -2, -EINVAL), N(SEND, 0, TRY, 0),
	    N(RECV, 0, TRY, 0), S(SEND, 0, WAIT, 0), S(RECV, 0, WAIT, 0), C(SETTLE, 0),
	    S(RECV, 1, TRY, -EAGAIN), C(CLOSE_TX, 0), S(SEND, 1, -2, -EINVAL),
	    N(RECV, 1, TRY, -EINVAL), E } },
};

#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

/* ---- the two kinds of channel -------------------------------------------- */

struct pair {
	const char *kind;
	struct moirai_chan *tx, *rx;
	struct moirai_net *net; /* NULL: local */
	uint64_t sent, received;
};

/* What one run saw: every step's result and every message received. */
struct record {
	int rc[24];
	uint64_t got[64];
	unsigned ngot;
};

static const char *tls; /* UCX transports of the net runs */

static void open_local(struct pair *p, int idx)
{
	char name[32];

	snprintf(name, sizeof(name), "contract%d", idx);
	*p = (struct pair){ .kind = "local" };
	assert_int_equal(
		moirai_chan_create(name, sizeof(struct msg), SLOTS, MOIRAI_NODE_ANY, 0, &p->tx), 0);
	p->rx = p->tx;
	assert_non_null(moirai_chan_ring(p->tx));
}

static void open_net(struct pair *p, struct moirai_net *net)
{
	struct moirai_net_chan_opts o = { .elem_size = sizeof(struct msg), .window = WINDOW };
	struct moirai_net_listener *l = NULL;
	char a[64];
	int rc;

	*p = (struct pair){ .kind = tls ? "net (tcp)" : "net (UCX's choice)", .net = net };
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", &o, &l), 0);
	snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", moirai_net_listener_port(l));
	/* One thread: the connect's wait makes progress for the listener too. */
	rc = moirai_net_connect_chan(net, a, &o, WAIT, &p->tx);
	if (rc)
		fail_msg("connect_chan %s: %d (%s)", a, rc, moirai_last_error());
	assert_int_equal(moirai_net_accept_chan(l, WAIT, &p->rx), 0);
	moirai_net_listener_destroy(l);
	/* A net channel has no ring; its endpoint is there for the net calls. */
	assert_null(moirai_chan_ring(p->tx));
	assert_null(moirai_chan_ring(p->rx));
	assert_non_null(moirai_net_chan_of(p->tx));
	assert_non_null(moirai_net_chan_of(p->rx));
}

static void close_pair(struct pair *p)
{
	if (p->rx != p->tx)
		moirai_chan_destroy(p->rx);
	moirai_chan_destroy(p->tx);
}

/* Whether the sender has back every credit a receive returned (with a
 * window of 7 a credit goes back on every receive: net.c's quarter-window
 * batch is 1).  Once closed, credits no longer matter. */
static bool credited(struct pair *p, unsigned queued)
{
	const struct moirai_net_chan *t = moirai_net_chan_of(p->tx);

	return moirai_chan_is_closed(p->tx) || t->credits + queued == WINDOW;
}

/* Progress until everything sent has arrived, the sender has its credits
 * and both ends agree about the close (a local channel: at once). */
static void settle(struct pair *p, unsigned want)
{
	uint64_t end = moirai_now_ns() + (uint64_t)WAIT;

	while (p->net && (moirai_chan_count(p->rx) != want || !credited(p, want) ||
			  moirai_chan_is_closed(p->rx) != moirai_chan_is_closed(p->tx))) {
		moirai_net_progress(p->net);
		if (moirai_now_ns() > end)
			fail_msg("%s: SETTLE: %u queued, want %u; closed tx %d rx %d", p->kind,
				 moirai_chan_count(p->rx), want, moirai_chan_is_closed(p->tx),
				 moirai_chan_is_closed(p->rx));
	}
}

static int run_step(struct pair *p, const struct step *s, struct record *r)
{
	struct msg buf[16];
	void *b = (s->flags & NULLBUF) ? NULL : buf;
	int rc;

	assert_true(s->n <= 16);
	switch (s->op) {
	case SEND:
	case SEND_RX:
		for (unsigned i = 0; i < s->n; i++)
			buf[i] = (struct msg){ p->sent + i, check_of(p->sent + i) };
		rc = moirai_chan_send(s->op == SEND ? p->tx : p->rx, b, s->n, s->timeout);
		if (rc > 0)
			p->sent += (uint64_t)rc;
		return rc;
	case RECV:
	case RECV_TX:
		memset(buf, 0xa5, sizeof(buf));
		rc = moirai_chan_recv(s->op == RECV ? p->rx : p->tx, b, s->n, s->timeout);
		for (int i = 0; i < rc; i++) {
			/* Exactly once, in order, the bytes that were sent. */
			assert_int_equal(buf[i].seq, p->received);
			assert_int_equal(buf[i].check, check_of(p->received));
			assert_true(r->ngot < 64);
			r->got[r->ngot++] = buf[i].seq;
			p->received++;
		}
		return rc;
	case CLOSE_TX: return moirai_chan_close(p->tx);
	case CLOSE_RX: return moirai_chan_close(p->rx);
	case CLOSED_TX: return moirai_chan_is_closed(p->tx);
	case CLOSED_RX: return moirai_chan_is_closed(p->rx);
	case COUNT: return (int)moirai_chan_count(p->rx);
	case SETTLE: settle(p, (unsigned)s->expect); return (int)moirai_chan_count(p->rx);
	case END: break;
	}
	fail_msg("bad step");
	return 0;
}

static void run_scenario(struct pair *p, const struct scenario *sc, struct record *r)
{
	struct moirai_chan_stats st;

	memset(r, 0, sizeof(*r));
	assert_int_equal(moirai_chan_elem_size(p->tx), sizeof(struct msg));
	assert_int_equal(moirai_chan_elem_size(p->rx), sizeof(struct msg));
	for (int i = 0; sc->steps[i].op != END; i++) {
		const struct step *s = &sc->steps[i];

		r->rc[i] = run_step(p, s, r);
		if (r->rc[i] != s->expect)
			fail_msg("%s, \"%s\", step %d: got %d, the contract says %d (%s)", p->kind,
				 sc->name, i, r->rc[i], s->expect, moirai_last_error());
	}
	assert_int_equal(moirai_chan_stats(p->tx, &st), 0);
	assert_int_equal(moirai_chan_stats(p->rx, &st), 0);
}

static struct moirai_net *net_new(void)
{
	struct moirai_net_config c = { .transports = tls };
	struct moirai_net *net = NULL;
	int rc = moirai_net_create(&c, &net);

	if (rc)
		fail_msg("moirai_net_create: %d (%s)", rc, moirai_last_error());
	return net;
}

/* Every scenario on both kinds; the two records must be the same. */
static void test_contract(void **state)
{
	struct moirai_net *net = net_new();

	for (unsigned i = 0; i < NSCEN; i++) {
		struct record rl, rn;
		struct pair p;

		open_local(&p, (int)i);
		run_scenario(&p, &scenarios[i], &rl);
		close_pair(&p);
		open_net(&p, net);
		run_scenario(&p, &scenarios[i], &rn);
		close_pair(&p);
		assert_memory_equal(rl.rc, rn.rc, sizeof(rl.rc));
		assert_int_equal(rl.ngot, rn.ngot);
		assert_memory_equal(rl.got, rn.got, sizeof(rl.got[0]) * rl.ngot);
	}
	moirai_net_destroy(net);
}

/* NULL handles and the calls that only a net channel has. */
static void test_null_and_wrapping(void **state)
{
	struct moirai_net_chan_opts var = { .elem_size = 0 };
	struct moirai_net_chan_opts fix = { .elem_size = sizeof(struct msg) };
	struct moirai_net *net = net_new();
	struct moirai_net_listener *l = NULL;
	struct moirai_chan *ch = (struct moirai_chan *)&ch, *loc = NULL;
	struct moirai_net_chan *nch = NULL;
	struct moirai_chan_stats st;
	struct msg m = { 0 };
	char a[64];

	assert_int_equal(moirai_chan_send(NULL, &m, 1, TRY), -EINVAL);
	assert_int_equal(moirai_chan_recv(NULL, &m, 1, TRY), -EINVAL);
	assert_int_equal(moirai_chan_close(NULL), -EINVAL);
	assert_false(moirai_chan_is_closed(NULL));
	assert_int_equal(moirai_chan_elem_size(NULL), 0);
	assert_int_equal(moirai_chan_count(NULL), 0);
	assert_null(moirai_chan_ring(NULL));
	assert_int_equal(moirai_chan_stats(NULL, &st), -EINVAL);
	moirai_chan_destroy(NULL);
	assert_null(moirai_net_chan_of(NULL));

	assert_int_equal(moirai_chan_create("contract-loc", 8, 4, MOIRAI_NODE_ANY, 0, &loc), 0);
	assert_null(moirai_net_chan_of(loc));
	assert_int_equal(moirai_chan_stats(loc, NULL), -EINVAL);
	moirai_chan_destroy(loc);

	assert_int_equal(moirai_net_chan_as_chan(NULL, &ch), -EINVAL);
	assert_null(ch);
	/* A moirai_chan moves fixed-size messages: variable mode is refused
	 * before any connection is made or taken. */
	assert_int_equal(moirai_net_connect_chan(net, "tcp://127.0.0.1:9", NULL, WAIT, &ch),
			 -EINVAL);
	assert_int_equal(moirai_net_connect_chan(net, "tcp://127.0.0.1:9", &var, WAIT, &ch),
			 -EINVAL);
	assert_int_equal(moirai_net_connect_chan(net, "tcp://127.0.0.1:9", &fix, WAIT, NULL),
			 -EINVAL);
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", &var, &l), 0);
	assert_int_equal(moirai_net_accept_chan(l, TRY, &ch), -EINVAL);
	assert_null(ch);
	snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", moirai_net_listener_port(l));
	assert_int_equal(moirai_net_connect(net, a, &var, WAIT, &nch), 0);
	assert_int_equal(moirai_net_chan_as_chan(nch, &ch), -EINVAL);
	assert_null(ch);
	moirai_net_chan_destroy(nch); /* still the caller's */
	moirai_net_listener_destroy(l);

	/* Wrapping an endpoint: the net calls and the chan calls share it. */
	assert_int_equal(moirai_net_listen(net, "tcp://127.0.0.1:0", &fix, &l), 0);
	snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", moirai_net_listener_port(l));
	assert_int_equal(moirai_net_connect(net, a, &fix, WAIT, &nch), 0);
	assert_int_equal(moirai_net_chan_as_chan(nch, &ch), 0);
	assert_ptr_equal(moirai_net_chan_of(ch), nch);
	assert_int_equal(moirai_net_accept_chan(l, WAIT, &loc), 0);
	m.seq = 7;
	assert_int_equal(moirai_chan_send(ch, &m, 1, WAIT), 1);
	m.seq = 8;
	assert_int_equal(moirai_net_send(nch, &m, 1, WAIT), 1);
	assert_int_equal(moirai_chan_recv(loc, &m, 1, WAIT), 1);
	assert_int_equal(m.seq, 7);
	assert_int_equal(moirai_net_recv(moirai_net_chan_of(loc), &m, 1, WAIT), 1);
	assert_int_equal(m.seq, 8);
	/* The network counters are the endpoint's; the chan's slow-path
	 * counters read zero. */
	{
		struct moirai_net_chan_stats ns;

		assert_int_equal(moirai_net_chan_stats(nch, &ns), 0);
		assert_int_equal(ns.msgs_sent, 2);
		assert_int_equal(moirai_chan_stats(ch, &st), 0);
		assert_int_equal(st.recv_parks + st.send_parks + st.wakes, 0);
	}
	moirai_chan_destroy(loc); /* destroys the accepted endpoint */
	moirai_chan_destroy(ch);  /* and this one nch */
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
}

static int setup_tcp(void **state)
{
	tls = "tcp";
	return 0;
}

static int setup_any(void **state)
{
	tls = NULL;
	return 0;
}

int main(void)
{
	/* UCX's memory hooks (libucm patching mmap/munmap/madvise) crash
	 * ThreadSanitizer's interceptors at thread exit (tests/tsan.supp, as in
	 * test_net.c), and here LeakSanitizer's exit-time scan too (a SIGSEGV in
	 * its tracer while it walks the dynamic linker's allocations; gone with
	 * the hooks off, or with LSAN_OPTIONS=use_ld_allocations=0).  The eager
	 * active messages need no registration cache: off under both. */
	if (TEST_SAN_DIVISOR > 1) {
		setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 1);
		setenv("UCX_MEM_MALLOC_HOOKS", "no", 1);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_contract, setup_tcp),
		cmocka_unit_test_setup(test_contract, setup_any),
		cmocka_unit_test_setup(test_null_and_wrapping, setup_tcp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
