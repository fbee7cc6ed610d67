/*
 * Channels: a moirai element ring plus waiting (spin, yield, futex park),
 * backpressure on a full ring, and close with drain.
 *
 * Two atomic words, on separate cache lines:
 *   tx       the closed bit and the number of sends in flight; written by
 *            senders (twice per send) and by close;
 *   waiters  the numbers of parked (or about to park) receivers and
 *            senders; written only by parties that are about to sleep, so
 *            it stays clean in every cache and is cheap to read.
 *
 * Lost wake-ups are excluded by the classic store/fence/load pairing, with
 * a seq_cst fence on each side (ring_int.h, moirai__ring_full_fence):
 *
 *   receiver (parking)                   sender
 *   seq = recv_seq                       enqueue (ring tail store)
 *   waiters += RECV          (A)         fence                      (F1)
 *   fence                    (F2)        w = waiters                (B)
 *   retry dequeue            (C)         if w has RECV: recv_seq++, FUTEX_WAKE
 *   futex_wait(recv_seq, seq)
 *
 * F1 and F2 are ordered in the single total order of seq_cst fences.  If
 * F1 comes first, the retry (C) sees the tail store, so the receiver finds
 * the message and does not sleep.  If F2 comes first, the load (B) sees the
 * increment (A) and the sender wakes; and the receiver's seq snapshot,
 * sequenced before F2, cannot see the bump sequenced after F1, so
 * futex_wait either finds the bumped seq and returns or is queued before
 * the wake.  When nobody parks, a send costs two RMWs on tx (a line only
 * senders write), one fence and one load of a clean line: no system call.
 * Senders facing a full ring park the same way, paired with the fence and
 * load each receiver does after a successful dequeue.
 *
 * Close sets the closed bit with an RMW on tx.  A sender adds itself to tx
 * before looking at the closed bit and removes itself after its enqueue
 * (release), so a receiver that reads "closed, nobody in flight" (acquire)
 * sees every accepted message: one more dequeue drains them, and an empty
 * result is end of stream.  The RMWs on tx are totally ordered, so a send
 * either was counted before the close (and will be drained) or sees the
 * closed bit and takes nothing.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "moirai/channel.h"
#include "ring_int.h"

#define TX_ACTIVE_MASK ((1ull << 62) - 1)
#define TX_CLOSED      (1ull << 63)
#define W_RECV	       1ull
#define W_RECV_MASK    0xffffffffull
#define W_SEND	       (1ull << 32)

struct moirai_chan {
	/* Read-only after create. */
	struct moirai_ring *ring;
	unsigned esize;
	uint64_t spin_ns;

	/* Sends in flight and the closed bit: written by senders and close. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t tx;
	/* Parked (or parking) receivers and senders: written by them only. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t waiters;
	/* Futex words: bumped by wakers, waited on by parked parties. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint32_t recv_seq;
	alignas(MOIRAI_CACHE_LINE) _Atomic uint32_t send_seq;
	/* Slow-path counters, relaxed. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t recv_parks;
	_Atomic uint64_t send_parks;
	_Atomic uint64_t wakes;
};

static_assert(offsetof(struct moirai_chan, tx) % MOIRAI_CACHE_LINE == 0, "tx on its own line");
static_assert(offsetof(struct moirai_chan, waiters) - offsetof(struct moirai_chan, tx) >=
		      MOIRAI_CACHE_LINE,
	      "waiters apart from tx");

static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t),
	      "futex word must be a plain 32-bit int");

/* Wake up to @n parties parked on @word after bumping it (see top). */
static void wake(struct moirai_chan *ch, _Atomic uint32_t *word, int n)
{
	/* Sequenced after the fence + load that decided it (see top). */
	atomic_fetch_add_explicit(word, 1, memory_order_release);
	atomic_fetch_add_explicit(&ch->wakes, 1, memory_order_relaxed);
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Sleep while *word == seq, until @deadline (ns, CLOCK_MONOTONIC; 0 none). */
static void park(_Atomic uint32_t *word, uint32_t seq, uint64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline) {
		ts.tv_sec = (time_t)(deadline / 1000000000u);
		ts.tv_nsec = (long)(deadline % 1000000000u);
		tsp = &ts;
	}
	/* Absolute CLOCK_MONOTONIC deadline: FUTEX_WAIT_BITSET. EINTR,
	 * EAGAIN (seq moved) and ETIMEDOUT all return to the caller's loop. */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, seq, tsp, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

/*
 * One send attempt.  Returns the count enqueued (0 = ring full) or -EPIPE.
 * Wakes parked receivers when it enqueued something, or when the channel
 * is closed (a receiver may be waiting for this in-flight send to finish
 * before it can declare end of stream).
 */
static int try_send(struct moirai_chan *ch, const void *msgs, unsigned n)
{
	unsigned put = 0, rw;
	uint64_t s, w;

	/* Count ourselves in flight before looking at the closed bit. */
	s = atomic_fetch_add_explicit(&ch->tx, 1, memory_order_relaxed);
	if (!(s & TX_CLOSED))
		put = moirai_ring_enqueue_burst_elem(ch->ring, msgs, ch->esize, n, NULL);
	/* Release: pairs with the acquire load of tx in try_recv (drain). */
	s = atomic_fetch_sub_explicit(&ch->tx, 1, memory_order_release);
	/* F1 of the protocol at the top, paired with F2 in wait_for(). */
	moirai__ring_full_fence();
	w = atomic_load_explicit(&ch->waiters, memory_order_relaxed);
	rw = (unsigned)(w & W_RECV_MASK);
	if (rw && (s & TX_CLOSED))
		wake(ch, &ch->recv_seq, INT_MAX);
	else if (rw && put)
		wake(ch, &ch->recv_seq, (int)(put < rw ? put : rw));
	if ((s & TX_CLOSED) && !put)
		return -EPIPE;
	return (int)put;
}

/*
 * One receive attempt.  Returns the count dequeued, 0 when empty (and not
 * at end of stream), or -EPIPE at end of stream.
 */
static int try_recv(struct moirai_chan *ch, void *msgs, unsigned max)
{
	unsigned got, avail = 0;
	uint64_t s, w;

	got = moirai_ring_dequeue_burst_elem(ch->ring, msgs, ch->esize, max, &avail);
	if (!got) {
		/* Acquire: pairs with the senders' release decrement of tx. */
		s = atomic_load_explicit(&ch->tx, memory_order_acquire);
		if (!(s & TX_CLOSED) || (s & TX_ACTIVE_MASK))
			return 0;
		/* Closed, no send in flight: what is left is all there is. */
		got = moirai_ring_dequeue_burst_elem(ch->ring, msgs, ch->esize, max, &avail);
		if (!got)
			return -EPIPE;
	}
	/* F1 for parked senders (backpressure), paired with F2 in wait_for(). */
	moirai__ring_full_fence();
	w = atomic_load_explicit(&ch->waiters, memory_order_relaxed);
	if (w >= W_SEND)
		wake(ch, &ch->send_seq, INT_MAX);
	/* Items left and receivers asleep: pass the baton. */
	if (avail && (w & W_RECV_MASK))
		wake(ch, &ch->recv_seq, 1);
	return (int)got;
}

static int check_timeout(int64_t timeout_ns, uint64_t *deadline)
{
	if (timeout_ns < -1)
		return moirai__err(-EINVAL, "chan: timeout %lld ns is below -1",
				   (long long)timeout_ns);
	*deadline = timeout_ns > 0 ? moirai_now_ns() + (uint64_t)timeout_ns : 0;
	return 0;
}

static bool expired(uint64_t deadline)
{
	return deadline && moirai_now_ns() >= deadline;
}

/*
 * Wait phases shared by send and receive: spin for spin_ns, yield for as
 * long again, then park.  @attempt is try_send or try_recv bound to its
 * arguments through @a.
 */
struct attempt {
	int (*fn)(struct moirai_chan *ch, void *buf, unsigned n);
	void *buf;
	unsigned n;
	_Atomic uint32_t *seq;
	uint64_t waiter_unit;
	_Atomic uint64_t *parks;
};

static int try_send_cb(struct moirai_chan *ch, void *buf, unsigned n)
{
	return try_send(ch, buf, n);
}

static int try_recv_cb(struct moirai_chan *ch, void *buf, unsigned n)
{
	return try_recv(ch, buf, n);
}

static int wait_for(struct moirai_chan *ch, const struct attempt *a, uint64_t deadline)
{
	uint64_t start = moirai_now_ns(), now;
	int rc;

	/*
	 * Spin, then yield: cheap for the next message arriving soon.  Try on
	 * every round (one pause, ~40 ns, between tries: polling every 16
	 * pauses added ~0.4 us to a round trip); read the clock every 32.
	 */
	for (unsigned i = 1; ch->spin_ns; i++) { /* MOIRAI_SPIN_NS=0: park at once */
		rc = a->fn(ch, a->buf, a->n);
		if (rc)
			return rc;
		rte_pause();
		if (i % 32 == 0) {
			now = moirai_now_ns();
			if (deadline && now >= deadline)
				return -ETIMEDOUT;
			if (now - start >= 2 * ch->spin_ns)
				break;
			if (now - start >= ch->spin_ns)
				sched_yield();
		}
	}
	for (;;) {
		/* Snapshot before announcing: see the protocol at the top. */
		uint32_t seq = atomic_load_explicit(a->seq, memory_order_acquire);

		/* (A) then F2 of the protocol at the top, paired with F1. */
		atomic_fetch_add_explicit(&ch->waiters, a->waiter_unit, memory_order_relaxed);
		moirai__ring_full_fence();
		rc = a->fn(ch, a->buf, a->n);
		if (!rc && !expired(deadline)) {
			atomic_fetch_add_explicit(a->parks, 1, memory_order_relaxed);
			park(a->seq, seq, deadline);
		}
		atomic_fetch_sub_explicit(&ch->waiters, a->waiter_unit, memory_order_relaxed);
		if (rc)
			return rc;
		rc = a->fn(ch, a->buf, a->n);
		if (rc)
			return rc;
		if (expired(deadline))
			return -ETIMEDOUT;
	}
}

/*
 * The slow half shared by send and receive, after a try that moved
 * nothing: fail fast, or wait until the deadline.
 */
static int wait_timed(struct moirai_chan *ch, struct attempt *a, int64_t timeout_ns)
{
	uint64_t deadline = 0;
	int rc;

	if (timeout_ns == 0)
		return -EAGAIN;
	rc = check_timeout(timeout_ns, &deadline);
	if (rc)
		return rc;
	return wait_for(ch, a, deadline);
}

int moirai_chan_send(struct moirai_chan *ch, const void *msgs, unsigned n, int64_t timeout_ns)
{
	int rc;

	if (!ch || (!msgs && n))
		return moirai__err(-EINVAL, "chan: NULL argument to send");
	if (n == 0)
		return 0;
	if (n > INT_MAX)
		n = INT_MAX;
	rc = try_send(ch, msgs, n);
	if (moirai_likely(rc != 0))
		return rc;
	return wait_timed(ch,
			  &(struct attempt){ .fn = try_send_cb,
					     .buf = (void *)msgs,
					     .n = n,
					     .seq = &ch->send_seq,
					     .waiter_unit = W_SEND,
					     .parks = &ch->send_parks },
			  timeout_ns);
}

int moirai_chan_recv(struct moirai_chan *ch, void *msgs, unsigned max, int64_t timeout_ns)
{
	int rc;

	if (!ch || (!msgs && max))
		return moirai__err(-EINVAL, "chan: NULL argument to recv");
	if (max == 0)
		return 0;
	if (max > INT_MAX)
		max = INT_MAX;
	rc = try_recv(ch, msgs, max);
	if (moirai_likely(rc != 0))
		return rc;
	return wait_timed(ch,
			  &(struct attempt){ .fn = try_recv_cb,
					     .buf = msgs,
					     .n = max,
					     .seq = &ch->recv_seq,
					     .waiter_unit = W_RECV,
					     .parks = &ch->recv_parks },
			  timeout_ns);
}

int moirai_chan_close(struct moirai_chan *ch)
{
	uint64_t s;

	if (!ch)
		return moirai__err(-EINVAL, "chan: NULL channel to close");
	/* One RMW on tx: totally ordered with the senders' increments. */
	s = atomic_fetch_or_explicit(&ch->tx, TX_CLOSED, memory_order_acq_rel);
	if (s & TX_CLOSED)
		return -EALREADY;
	/* Everyone parked must re-check: end of stream or -EPIPE. */
	wake(ch, &ch->recv_seq, INT_MAX);
	wake(ch, &ch->send_seq, INT_MAX);
	return 0;
}

bool moirai_chan_is_closed(const struct moirai_chan *ch)
{
	return ch && (atomic_load_explicit(&ch->tx, memory_order_acquire) & TX_CLOSED);
}

unsigned moirai_chan_elem_size(const struct moirai_chan *ch)
{
	return ch ? ch->esize : 0;
}

unsigned moirai_chan_count(const struct moirai_chan *ch)
{
	return ch ? moirai_ring_count(ch->ring) : 0;
}

struct moirai_ring *moirai_chan_ring(struct moirai_chan *ch)
{
	return ch ? ch->ring : NULL;
}

int moirai_chan_stats(const struct moirai_chan *ch, struct moirai_chan_stats *out)
{
	if (!ch || !out)
		return moirai__err(-EINVAL, "chan: NULL argument to stats");
	out->recv_parks = atomic_load_explicit(&ch->recv_parks, memory_order_relaxed);
	out->send_parks = atomic_load_explicit(&ch->send_parks, memory_order_relaxed);
	out->wakes = atomic_load_explicit(&ch->wakes, memory_order_relaxed);
	return 0;
}

int moirai_chan_create(const char *name, unsigned count, unsigned elem_size, int node,
		       unsigned flags, struct moirai_chan **out)
{
	struct moirai_ring *ring;
	struct moirai_chan *ch;
	void *mem;
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "chan: NULL out pointer");
	*out = NULL;
	rc = moirai_ring_create_elem(name, count, elem_size, node, flags, &ring);
	if (rc)
		return rc;
	/* The tx, waiters and futex words are hot: same node as the ring. */
	rc = moirai__ring_mem_acquire(sizeof(*ch), ring->node, &mem);
	if (rc)
		goto err_destroy_ring;
	ch = mem;
	memset(ch, 0, sizeof(*ch));
	ch->ring = ring;
	ch->esize = elem_size;
	ch->spin_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);
	atomic_init(&ch->tx, 0);
	atomic_init(&ch->waiters, 0);
	*out = ch;
	return 0;

err_destroy_ring:
	moirai_ring_destroy(ring);
	return rc;
}

void moirai_chan_destroy(struct moirai_chan *ch)
{
	if (!ch)
		return;
	moirai_ring_destroy(ch->ring);
	moirai__ring_mem_release(ch, sizeof(*ch));
}
