/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai/channel.h: send/receive by value, try/timeout/forever, parking and
 * wake-up (a lost wake-up hangs, and the watchdog turns the hang into a
 * failure), backpressure on a full ring, close with drain, close racing
 * with multi-producer/multi-consumer traffic (every accepted message is
 * received exactly once), and the negative-input group.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moirai/channel.h"
#include "moirai/ring.h"
#include "testutil.h"

#define WATCHDOG_S 120
#define MS	   1000000LL

struct msg {
	uint64_t tag;
	uint64_t check;
};

static long scaled(long base)
{
	long n = base * test_scale() / TEST_SAN_DIVISOR;

	return n < 1 ? 1 : n;
}

static void test_basic(void **state)
{
	struct moirai_chan *ch;
	struct moirai_chan_stats st;
	struct msg in[8], out[8];

	(void)state;
	assert_int_equal(
		moirai_chan_create("ch_basic", sizeof(struct msg), 8, MOIRAI_NODE_ANY, 0, &ch), 0);
	assert_int_equal(moirai_chan_elem_size(ch), sizeof(struct msg));
	assert_ptr_equal(moirai_ring_lookup("ch_basic"), moirai_chan_ring(ch));
	for (unsigned i = 0; i < 8; i++)
		in[i] = (struct msg){ i, ~(uint64_t)i };
	assert_int_equal(moirai_chan_recv(ch, out, 8, MOIRAI_TIMEOUT_TRY), -EAGAIN);
	/* Burst: 7 fit (count 8 holds 7). */
	assert_int_equal(moirai_chan_send(ch, in, 8, MOIRAI_TIMEOUT_TRY), 7);
	assert_int_equal(moirai_chan_count(ch), 7);
	assert_int_equal(moirai_chan_send(ch, in + 7, 1, MOIRAI_TIMEOUT_TRY), -EAGAIN);
	assert_int_equal(moirai_chan_recv(ch, out, 3, MOIRAI_TIMEOUT_FOREVER), 3);
	assert_int_equal(moirai_chan_send(ch, in + 7, 1, 10 * MS), 1);
	assert_int_equal(moirai_chan_recv(ch, out + 3, 8, 10 * MS), 5);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(moirai_chan_send(ch, in, 0, 0), 0);
	assert_int_equal(moirai_chan_recv(ch, out, 0, 0), 0);
	/* Nobody was ever parked: no wake system call was made. */
	assert_int_equal(moirai_chan_stats(ch, &st), 0);
	assert_int_equal(st.wakes, 0);
	assert_int_equal(st.recv_parks, 0);
	moirai_chan_destroy(ch);
	moirai_chan_destroy(NULL);
}

/* Many messages with nobody parked: still zero wake system calls. */
static void test_no_syscall_without_waiters(void **state)
{
	struct moirai_chan *ch;
	struct moirai_chan_stats st;
	uint32_t buf[16];

	(void)state;
	assert_int_equal(
		moirai_chan_create("ch_nosys", 4, 64, MOIRAI_NODE_ANY, MOIRAI_RING_F_SPSC, &ch), 0);
	for (long i = 0; i < 100000; i++) {
		for (unsigned k = 0; k < 16; k++)
			buf[k] = (uint32_t)(i * 16 + k);
		assert_int_equal(moirai_chan_send(ch, buf, 16, MOIRAI_TIMEOUT_FOREVER), 16);
		assert_int_equal(moirai_chan_recv(ch, buf, 16, MOIRAI_TIMEOUT_FOREVER), 16);
		assert_int_equal(buf[15], (uint32_t)(i * 16 + 15));
	}
	moirai_chan_stats(ch, &st);
	assert_int_equal(st.wakes, 0);
	moirai_chan_destroy(ch);
}

static void test_timeout(void **state)
{
	struct moirai_chan *ch;
	uint32_t v[4] = { 1, 2, 3, 4 };
	uint64_t t0, dt;

	(void)state;
	assert_int_equal(moirai_chan_create("ch_to", 4, 4, MOIRAI_NODE_ANY, 0, &ch), 0);
	t0 = moirai_now_ns();
	assert_int_equal(moirai_chan_recv(ch, v, 1, 20 * MS), -ETIMEDOUT);
	dt = moirai_now_ns() - t0;
	assert_true(dt >= 20 * MS); /* never early */
	assert_int_equal(moirai_chan_send(ch, v, 4, MOIRAI_TIMEOUT_TRY), 3);
	t0 = moirai_now_ns();
	assert_int_equal(moirai_chan_send(ch, v, 1, 15 * MS), -ETIMEDOUT);
	assert_true(moirai_now_ns() - t0 >= 15 * MS);
	/* A short timeout shorter than the spin phase also holds. */
	assert_int_equal(moirai_chan_send(ch, v, 1, 1000), -ETIMEDOUT);
	assert_int_equal(moirai_chan_count(ch), 3);
	moirai_chan_destroy(ch);
}

static void test_close_drain(void **state)
{
	struct moirai_chan *ch;
	uint32_t v[10], out[10];

	(void)state;
	assert_int_equal(moirai_chan_create("ch_close", 4, 16, MOIRAI_NODE_ANY, 0, &ch), 0);
	for (uint32_t i = 0; i < 10; i++)
		v[i] = 100 + i;
	assert_int_equal(moirai_chan_send(ch, v, 10, 0), 10);
	assert_false(moirai_chan_is_closed(ch));
	assert_int_equal(moirai_chan_close(ch), 0);
	assert_true(moirai_chan_is_closed(ch));
	assert_int_equal(moirai_chan_close(ch), -EALREADY);
	assert_int_equal(moirai_chan_send(ch, v, 1, 0), -EPIPE);
	assert_int_equal(moirai_chan_send(ch, v, 1, MOIRAI_TIMEOUT_FOREVER), -EPIPE);
	assert_int_equal(moirai_chan_recv(ch, out, 4, MOIRAI_TIMEOUT_FOREVER), 4);
	assert_int_equal(moirai_chan_recv(ch, out + 4, 10, 0), 6);
	assert_memory_equal(v, out, sizeof(v));
	/* Drained and closed: end of stream, whatever the timeout. */
	assert_int_equal(moirai_chan_recv(ch, out, 1, 0), -EPIPE);
	assert_int_equal(moirai_chan_recv(ch, out, 1, 5 * MS), -EPIPE);
	assert_int_equal(moirai_chan_recv(ch, out, 1, MOIRAI_TIMEOUT_FOREVER), -EPIPE);
	moirai_chan_destroy(ch);
}

/* ---- parking and wake-up ------------------------------------------- */

struct pingpong {
	struct moirai_chan *ping, *pong;
	long rounds;
	long bad;
};

static void *pong_main(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t v;

	for (long i = 0; i < pp->rounds; i++) {
		if (moirai_chan_recv(pp->ping, &v, 1, MOIRAI_TIMEOUT_FOREVER) != 1 ||
		    v != (uint64_t)i)
			pp->bad++;
		v = ~v;
		if (moirai_chan_send(pp->pong, &v, 1, MOIRAI_TIMEOUT_FOREVER) != 1)
			pp->bad++;
	}
	return NULL;
}

/*
 * Ping-pong with spinning off: a receive that does not find its message at
 * once parks (most do), so most messages must wake a parked (or parking)
 * thread.  A single lost wake-up leaves both threads asleep forever;
 * alarm() then kills the test (a failure).
 */
static void test_parked_pingpong(void **state)
{
	struct pingpong pp = { .rounds = scaled(20000) };
	struct moirai_chan_stats st;
	pthread_t t;
	uint64_t v;

	(void)state;
	assert_int_equal(moirai_option_set(MOIRAI_OPT_SPIN_NS, 0), 0);
	assert_int_equal(
		moirai_chan_create("ch_ping", 8, 4, MOIRAI_NODE_ANY, MOIRAI_RING_F_SPSC, &pp.ping),
		0);
	assert_int_equal(
		moirai_chan_create("ch_pong", 8, 4, MOIRAI_NODE_ANY, MOIRAI_RING_F_SPSC, &pp.pong),
		0);
	alarm(WATCHDOG_S);
	assert_int_equal(pthread_create(&t, NULL, pong_main, &pp), 0);
	for (long i = 0; i < pp.rounds; i++) {
		v = (uint64_t)i;
		assert_int_equal(moirai_chan_send(pp.ping, &v, 1, MOIRAI_TIMEOUT_FOREVER), 1);
		assert_int_equal(moirai_chan_recv(pp.pong, &v, 1, MOIRAI_TIMEOUT_FOREVER), 1);
		assert_true(v == ~(uint64_t)i);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	alarm(0);
	assert_int_equal(pp.bad, 0);
	moirai_chan_stats(pp.ping, &st);
	print_message("%ld parked round trips: %llu receiver parks, %llu wakes\n", pp.rounds,
		      (unsigned long long)st.recv_parks, (unsigned long long)st.wakes);
	assert_true(st.recv_parks > 0); /* the test did exercise parking */
	moirai_chan_destroy(pp.ping);
	moirai_chan_destroy(pp.pong);
	moirai_option_set(MOIRAI_OPT_SPIN_NS, 20000);
}

struct parked {
	struct moirai_chan *ch;
	int rc;
	uint32_t got;
};

static void *recv_forever(void *arg)
{
	struct parked *p = arg;

	p->rc = moirai_chan_recv(p->ch, &p->got, 1, MOIRAI_TIMEOUT_FOREVER);
	return NULL;
}

static void *send_forever(void *arg)
{
	struct parked *p = arg;
	uint32_t v = 77;

	p->rc = moirai_chan_send(p->ch, &v, 1, MOIRAI_TIMEOUT_FOREVER);
	return NULL;
}

static void wait_parks(struct moirai_chan *ch, bool send, uint64_t n)
{
	struct moirai_chan_stats st;

	for (;;) {
		moirai_chan_stats(ch, &st);
		if ((send ? st.send_parks : st.recv_parks) >= n)
			return;
		usleep(1000);
	}
}

/* A receiver parked on an empty channel wakes for one message. */
static void test_wake_parked_receiver(void **state)
{
	struct parked p = { .rc = -1 };
	pthread_t t;
	uint32_t v = 42;

	(void)state;
	assert_int_equal(moirai_chan_create("ch_wake", 4, 8, MOIRAI_NODE_ANY, 0, &p.ch), 0);
	alarm(WATCHDOG_S);
	assert_int_equal(pthread_create(&t, NULL, recv_forever, &p), 0);
	wait_parks(p.ch, false, 1);
	assert_int_equal(moirai_chan_send(p.ch, &v, 1, 0), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	alarm(0);
	assert_int_equal(p.rc, 1);
	assert_int_equal(p.got, 42);
	moirai_chan_destroy(p.ch);
}

/* Backpressure: a sender parked on a full channel wakes when space frees. */
static void test_backpressure(void **state)
{
	struct parked p = { .rc = -1 };
	pthread_t t;
	uint32_t v[3] = { 1, 2, 3 }, out[4];

	(void)state;
	assert_int_equal(moirai_chan_create("ch_bp", 4, 4, MOIRAI_NODE_ANY, 0, &p.ch), 0);
	assert_int_equal(moirai_chan_send(p.ch, v, 3, 0), 3);
	alarm(WATCHDOG_S);
	assert_int_equal(pthread_create(&t, NULL, send_forever, &p), 0);
	wait_parks(p.ch, true, 1);
	assert_int_equal(moirai_chan_count(p.ch), 3);
	assert_int_equal(moirai_chan_recv(p.ch, out, 1, 0), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	alarm(0);
	assert_int_equal(p.rc, 1);
	assert_int_equal(moirai_chan_recv(p.ch, out + 1, 4, 0), 3);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[3], 77);
	moirai_chan_destroy(p.ch);
}

/* Close wakes every parked receiver and sender. */
static void test_close_wakes_all(void **state)
{
	struct parked r[3], s[2];
	pthread_t tr[3], ts[2];
	struct moirai_chan *empty, *full;
	uint32_t v[3] = { 0 };

	(void)state;
	assert_int_equal(moirai_chan_create("ch_cw_e", 4, 4, MOIRAI_NODE_ANY, 0, &empty), 0);
	assert_int_equal(moirai_chan_create("ch_cw_f", 4, 4, MOIRAI_NODE_ANY, 0, &full), 0);
	assert_int_equal(moirai_chan_send(full, v, 3, 0), 3);
	alarm(WATCHDOG_S);
	for (int i = 0; i < 3; i++) {
		r[i] = (struct parked){ .ch = empty, .rc = 1 };
		assert_int_equal(pthread_create(&tr[i], NULL, recv_forever, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		s[i] = (struct parked){ .ch = full, .rc = 1 };
		assert_int_equal(pthread_create(&ts[i], NULL, send_forever, &s[i]), 0);
	}
	wait_parks(empty, false, 3);
	wait_parks(full, true, 2);
	assert_int_equal(moirai_chan_close(empty), 0);
	assert_int_equal(moirai_chan_close(full), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(tr[i], NULL), 0);
		assert_int_equal(r[i].rc, -EPIPE);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(ts[i], NULL), 0);
		assert_int_equal(s[i].rc, -EPIPE);
	}
	alarm(0);
	/* The closed full channel still drains its 3 messages. */
	assert_int_equal(moirai_chan_recv(full, v, 3, MOIRAI_TIMEOUT_FOREVER), 3);
	assert_int_equal(moirai_chan_recv(full, v, 3, MOIRAI_TIMEOUT_FOREVER), -EPIPE);
	moirai_chan_destroy(empty);
	moirai_chan_destroy(full);
}

/* ---- MPMC traffic racing with close -------------------------------- */

#define RACE_MAX 8

struct crace {
	struct moirai_chan *ch;
	long per_producer;
	int producers;
	atomic_long sent_total;
	long close_after; /* close once this many were accepted */
};

struct cworker {
	struct crace *rc;
	int id;
	long accepted; /* producer: messages the channel took */
	uint64_t sum_in, sum_out;
	uint8_t *seen; /* consumer: per message, times seen */
	long got, order_err, bad;
	long *last;
	int end_rc;
	pthread_t tid;
};

static void *cprod_main(void *arg)
{
	struct cworker *w = arg;
	struct crace *rc = w->rc;
	struct msg buf[16];
	unsigned seed = (unsigned)w->id + 11;
	long seq = 0;

	while (seq < rc->per_producer) {
		unsigned n = (unsigned)(rand_r(&seed) % 16) + 1;
		int put;

		if (seq + n > rc->per_producer)
			n = (unsigned)(rc->per_producer - seq);
		for (unsigned i = 0; i < n; i++) {
			uint64_t t = ((uint64_t)w->id << 40) | (uint64_t)(seq + i);

			buf[i] = (struct msg){ t, ~t };
		}
		/* Mix the three waiting styles. */
		put = moirai_chan_send(rc->ch, buf, n,
				       (seq & 3) == 0	? MOIRAI_TIMEOUT_TRY
				       : (seq & 3) == 1 ? 2 * MS
							: MOIRAI_TIMEOUT_FOREVER);
		if (put == -EAGAIN || put == -ETIMEDOUT)
			continue;
		if (put == -EPIPE)
			break;
		if (put <= 0) {
			w->bad++;
			break;
		}
		for (int i = 0; i < put; i++)
			w->sum_in += buf[i].tag;
		seq += put;
		w->accepted += put;
		if (atomic_fetch_add_explicit(&rc->sent_total, put, memory_order_relaxed) + put >=
			    rc->close_after &&
		    rc->close_after > 0)
			moirai_chan_close(rc->ch); /* -EALREADY for all but one */
	}
	w->end_rc = seq == rc->per_producer ? 0 : -EPIPE;
	return NULL;
}

static void *ccons_main(void *arg)
{
	struct cworker *w = arg;
	struct crace *rc = w->rc;
	struct msg buf[16];
	unsigned seed = (unsigned)w->id + 101;

	for (;;) {
		unsigned max = (unsigned)(rand_r(&seed) % 16) + 1;
		int got = moirai_chan_recv(rc->ch, buf, max,
					   (rand_r(&seed) & 1) ? MOIRAI_TIMEOUT_FOREVER : 3 * MS);

		if (got == -ETIMEDOUT)
			continue;
		if (got < 0) {
			w->end_rc = got;
			return NULL;
		}
		for (int i = 0; i < got; i++) {
			uint64_t t = buf[i].tag;
			int p = (int)(t >> 40);
			long seq = (long)(t & ((1ull << 40) - 1));

			if (buf[i].check != ~t || p >= rc->producers || seq >= rc->per_producer) {
				w->bad++;
				continue;
			}
			if (seq <= w->last[p])
				w->order_err++;
			w->last[p] = seq;
			w->seen[(long)p * rc->per_producer + seq]++;
			w->sum_out += t;
			w->got++;
		}
	}
}

static void run_close_race(const char *name, unsigned flags, int producers, int consumers,
			   long per_producer, double close_frac)
{
	struct crace rc = { .per_producer = per_producer, .producers = producers };
	struct cworker w[RACE_MAX];
	long total = per_producer * producers, accepted = 0, got = 0;
	uint64_t sum_in = 0, sum_out = 0;
	int nt = producers + consumers;

	assert_true(nt <= RACE_MAX);
	rc.close_after = close_frac > 0 ? (long)((double)total * close_frac) : 0;
	assert_int_equal(
		moirai_chan_create(name, sizeof(struct msg), 256, MOIRAI_NODE_ANY, flags, &rc.ch),
		0);
	memset(w, 0, sizeof(w));
	alarm(WATCHDOG_S);
	for (int i = 0; i < nt; i++) {
		w[i].rc = &rc;
		w[i].id = i < producers ? i : i - producers;
		if (i >= producers) {
			w[i].seen = calloc((size_t)total, 1);
			w[i].last = malloc(sizeof(long) * (size_t)producers);
			assert_non_null(w[i].seen);
			assert_non_null(w[i].last);
			for (int p = 0; p < producers; p++)
				w[i].last[p] = -1;
		}
		assert_int_equal(pthread_create(&w[i].tid, NULL,
						i < producers ? cprod_main : ccons_main, &w[i]),
				 0);
	}
	for (int i = 0; i < producers; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	if (!rc.close_after)
		assert_int_equal(moirai_chan_close(rc.ch), 0);
	for (int i = producers; i < nt; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	alarm(0);

	for (int i = 0; i < producers; i++) {
		assert_int_equal(w[i].bad, 0);
		accepted += w[i].accepted;
		sum_in += w[i].sum_in;
	}
	for (int i = producers; i < nt; i++) {
		assert_int_equal(w[i].bad, 0);
		assert_int_equal(w[i].end_rc, -EPIPE); /* everyone saw end of stream */
		assert_int_equal(w[i].order_err, 0);
		got += w[i].got;
		sum_out += w[i].sum_out;
	}
	/* Nothing lost, nothing duplicated, nothing invented. */
	assert_int_equal(got, accepted);
	assert_true(sum_in == sum_out);
	for (int p = 0; p < producers; p++) {
		/* Each producer's accepted messages are exactly its first ones. */
		for (long s = 0; s < per_producer; s++) {
			int seen = 0;

			for (int i = producers; i < nt; i++)
				seen += w[i].seen[(long)p * per_producer + s];
			assert_int_equal(seen, s < w[p].accepted ? 1 : 0);
		}
	}
	for (int i = producers; i < nt; i++) {
		free(w[i].seen);
		free(w[i].last);
	}
	print_message("%-14s %dP %dC: %ld of %ld accepted before close, all received once\n", name,
		      producers, consumers, accepted, total);
	moirai_chan_destroy(rc.ch);
}

static void test_close_race_rts(void **state)
{
	(void)state;
	run_close_race("chr_rts", 0, 3, 3, scaled(300000), 0.6);
}

static void test_close_race_hts(void **state)
{
	(void)state;
	run_close_race("chr_hts", MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_MC_HTS_DEQ, 2, 2,
		       scaled(300000), 0.5);
}

/* Classic MP/MC (pinned workers' mode): checked under TSan too, with the
 * DPDK body's report suppressed (tests/tsan.supp says why). */
static void test_close_race_mpmc(void **state)
{
	(void)state;
	run_close_race("chr_mpmc", MOIRAI_RING_F_MPMC_PINNED, 2, 2, scaled(300000), 0.6);
}

static void test_close_race_spsc(void **state)
{
	(void)state;
	run_close_race("chr_spsc", MOIRAI_RING_F_SPSC, 1, 1, scaled(1000000), 0.8);
}

static void test_full_delivery_mpmc(void **state)
{
	(void)state;
	/* Close only after every producer finished: all must arrive. */
	run_close_race("chr_all", 0, 2, 3, scaled(300000), 0);
}

static void test_negative(void **state)
{
	struct moirai_chan *ch = (void *)1;
	uint32_t v = 0;

	(void)state;
	assert_int_equal(moirai_chan_create("n", 4, 16, MOIRAI_NODE_ANY, 0, NULL), -EINVAL);
	assert_int_equal(moirai_chan_create(NULL, 4, 16, MOIRAI_NODE_ANY, 0, &ch), -EINVAL);
	assert_null(ch);
	assert_int_equal(moirai_chan_create("n", 6, 16, MOIRAI_NODE_ANY, 0, &ch), -EINVAL);
	assert_int_equal(moirai_chan_create("n", 0, 16, MOIRAI_NODE_ANY, 0, &ch), -EINVAL);
	assert_int_equal(moirai_chan_create("n", 4, 12, MOIRAI_NODE_ANY, 0, &ch), -EINVAL);
	assert_int_equal(moirai_chan_create("n", 4, 0x80000000u, MOIRAI_NODE_ANY, 0, &ch), -ERANGE);
	assert_int_equal(moirai_chan_create("n", 4, 16, 4096, 0, &ch), -ENODEV);
	assert_int_equal(moirai_chan_create("n", 4, 16, -2, 0, &ch), -EINVAL);
	/* Count 1 holds nothing: refused (a send without timeout would hang). */
	assert_int_equal(moirai_chan_create("n", 4, 1, MOIRAI_NODE_ANY, 0, &ch), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "count 1"));
	assert_int_equal(moirai_chan_create("n", 4, 16, MOIRAI_NODE_ANY, 0xf000, &ch), -EINVAL);
	assert_int_equal(moirai_chan_create("0123456789012345678901234567890123", 4, 16,
					    MOIRAI_NODE_ANY, 0, &ch),
			 -ENAMETOOLONG);
	assert_null(moirai_ring_lookup("n"));
	assert_int_equal(moirai_chan_create("n", 4, 16, MOIRAI_NODE_ANY, 0, &ch), 0);
	struct moirai_chan *dup;

	assert_int_equal(moirai_chan_create("n", 4, 16, MOIRAI_NODE_ANY, 0, &dup), -EEXIST);
	assert_int_equal(moirai_chan_send(NULL, &v, 1, 0), -EINVAL);
	assert_int_equal(moirai_chan_send(ch, NULL, 1, 0), -EINVAL);
	assert_int_equal(moirai_chan_recv(NULL, &v, 1, 0), -EINVAL);
	assert_int_equal(moirai_chan_recv(ch, NULL, 1, 0), -EINVAL);
	assert_int_equal(moirai_chan_recv(ch, &v, 1, -2), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "timeout"));
	/* A timeout below -1 is refused before anything moves, whether or
	 * not the call would have had to wait (reproduced: send(-5) sent). */
	moirai_clear_error();
	assert_int_equal(moirai_chan_send(ch, &v, 1, -5), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "timeout -5"));
	assert_int_equal(moirai_chan_count(ch), 0);
	assert_int_equal(moirai_chan_send(ch, &v, 0, INT64_MIN), -EINVAL);
	assert_int_equal(moirai_chan_send(ch, &v, 1, 0), 1);
	assert_int_equal(moirai_chan_recv(ch, &v, 1, -5), -EINVAL);
	assert_int_equal(moirai_chan_count(ch), 1);
	assert_int_equal(moirai_chan_close(NULL), -EINVAL);
	assert_int_equal(moirai_chan_stats(ch, NULL), -EINVAL);
	assert_false(moirai_chan_is_closed(NULL));
	assert_int_equal(moirai_chan_elem_size(NULL), 0);
	assert_null(moirai_chan_ring(NULL));
	moirai_chan_destroy(ch);
}

/* An exact-size channel of one slot moves messages one at a time. */
static void test_one_slot(void **state)
{
	struct moirai_chan *ch;
	uint32_t v, got;

	(void)state;
	assert_int_equal(
		moirai_chan_create("ch_one", 4, 1, MOIRAI_NODE_ANY, MOIRAI_RING_F_EXACT_SZ, &ch),
		0);
	assert_int_equal(moirai_ring_capacity(moirai_chan_ring(ch)), 1);
	for (v = 0; v < 100; v++) {
		assert_int_equal(moirai_chan_send(ch, &v, 1, MOIRAI_TIMEOUT_FOREVER), 1);
		assert_int_equal(moirai_chan_send(ch, &v, 1, MOIRAI_TIMEOUT_TRY), -EAGAIN);
		assert_int_equal(moirai_chan_recv(ch, &got, 1, MOIRAI_TIMEOUT_FOREVER), 1);
		assert_int_equal(got, v);
	}
	moirai_chan_destroy(ch);
}

int main(void)
{
	const struct CMUnitTest chan_tests[] = {
		cmocka_unit_test(test_one_slot),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_no_syscall_without_waiters),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_close_drain),
		cmocka_unit_test(test_parked_pingpong),
		cmocka_unit_test(test_wake_parked_receiver),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_close_wakes_all),
		cmocka_unit_test(test_close_race_rts),
		cmocka_unit_test(test_close_race_hts),
		cmocka_unit_test(test_close_race_spsc),
		cmocka_unit_test(test_close_race_mpmc),
		cmocka_unit_test(test_full_delivery_mpmc),
	};
	const struct CMUnitTest negative_tests[] = {
		cmocka_unit_test(test_negative),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("channel", chan_tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("channel_negative", negative_tests, NULL, NULL);
	return fails ? 1 : 0;
}
