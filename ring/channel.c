/*
 * Channels: a moirai element ring plus waiting (spin, yield, futex park),
 * backpressure on a full ring, and close with drain.
 *
 * One 64-bit word, `state`, carries everything the two sides must agree
 * on: the closed bit, the number of sends in flight, and the numbers of
 * parked (or about to park) receivers and senders.  Because all of it is
 * one location, every read-modify-write of it is totally ordered, and the
 * classic lost-wake-up race reduces to "which RMW came first":
 *
 *   receiver (parking)                   sender
 *   seq = recv_seq                       enqueue (ring tail store, release)
 *   RMW state += RECV_WAITER  (A)        old = RMW state -= ACTIVE  (B)
 *   retry dequeue                        if old has RECV_WAITERs:
 *   futex_wait(recv_seq, seq)                recv_seq++, futex_wake
 *
 * If B follows A, B reads A's waiter and wakes; the receiver's seq snapshot
 * happens before B (A is release, B acquire), so either futex_wait sees the
 * bumped seq and returns, or it is already queued and is woken.  If A
 * follows B, A reads from B (B is release, A acquire), so the enqueue
 * happens before the retry, which finds the item.  Senders facing a full
 * ring park the same way against the receivers' post-dequeue RMW.
 *
 * Close sets the closed bit with an RMW.  A sender adds ACTIVE before
 * looking at the closed bit and removes it after its enqueue, so a
 * receiver that reads "closed and no send in flight" (acquire, pairing
 * with the senders' release decrements) sees every accepted message in the
 * ring: one more dequeue drains them, and an empty result is end of stream.
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

#define ST_ACTIVE      1ull
#define ST_ACTIVE_MASK ((1ull << 20) - 1)
#define ST_RECV_WAITER (1ull << 20)
#define ST_RECV_MASK   (((1ull << 20) - 1) << 20)
#define ST_SEND_WAITER (1ull << 40)
#define ST_SEND_MASK   (((1ull << 20) - 1) << 40)
#define ST_CLOSED      (1ull << 63)

struct moirai_chan {
	/* Read-only after create. */
	struct moirai_ring *ring;
	unsigned esize;
	uint64_t spin_ns;

	/* Written by every send and by receivers that free space. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t state;
	/* Futex words: bumped by wakers, waited on by parked parties. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint32_t recv_seq;
	alignas(MOIRAI_CACHE_LINE) _Atomic uint32_t send_seq;
	/* Slow-path counters, relaxed. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t recv_parks;
	_Atomic uint64_t send_parks;
	_Atomic uint64_t wakes;
};

static_assert(offsetof(struct moirai_chan, state) % MOIRAI_CACHE_LINE == 0,
	      "state on its own line");
static_assert(offsetof(struct moirai_chan, recv_seq) - offsetof(struct moirai_chan, state) >=
		      MOIRAI_CACHE_LINE,
	      "futex words apart from state");

static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t),
	      "futex word must be a plain 32-bit int");

/* Wake up to @n parties parked on @word after bumping it (see top). */
static void wake(struct moirai_chan *ch, _Atomic uint32_t *word, int n)
{
	/* Release: orders the bump after the RMW of state that decided it. */
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

static unsigned waiters(uint64_t s, uint64_t mask, uint64_t unit)
{
	return (unsigned)((s & mask) / unit);
}

/*
 * One send attempt.  Returns the count enqueued (0 = ring full) or -EPIPE.
 * Wakes parked receivers when it enqueued something, or when the channel
 * is closed (a receiver may be waiting for this in-flight send to finish
 * before it can declare end of stream).
 */
static int try_send(struct moirai_chan *ch, const void *msgs, unsigned n)
{
	uint64_t s;
	unsigned put = 0;
	unsigned rw;

	/* Acquire pairs with close's RMW: see the closed bit if it came first. */
	s = atomic_fetch_add_explicit(&ch->state, ST_ACTIVE, memory_order_acquire);
	if (!(s & ST_CLOSED))
		put = moirai_ring_enqueue_burst_elem(ch->ring, msgs, ch->esize, n, NULL);
	/*
	 * Release: publishes the enqueue to a receiver that acquires this
	 * value (or a later one) from state.  Acquire: sees receivers that
	 * announced themselves before this RMW (pair (A)/(B) at the top).
	 */
	s = atomic_fetch_sub_explicit(&ch->state, ST_ACTIVE, memory_order_acq_rel);
	rw = waiters(s, ST_RECV_MASK, ST_RECV_WAITER);
	if (rw && (s & ST_CLOSED))
		wake(ch, &ch->recv_seq, INT_MAX);
	else if (rw && put)
		wake(ch, &ch->recv_seq, (int)(put < rw ? put : rw));
	if (s & ST_CLOSED && !put)
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
	uint64_t s;

	got = moirai_ring_dequeue_burst_elem(ch->ring, msgs, ch->esize, max, &avail);
	if (!got) {
		/* Acquire pairs with the senders' release decrement of ACTIVE. */
		s = atomic_load_explicit(&ch->state, memory_order_acquire);
		if (!(s & ST_CLOSED) || (s & ST_ACTIVE_MASK))
			return 0;
		/* Closed, no send in flight: what is left is all there is. */
		got = moirai_ring_dequeue_burst_elem(ch->ring, msgs, ch->esize, max, &avail);
		if (!got)
			return -EPIPE;
	}
	/*
	 * Release: publishes the freed slots to a sender that parks after
	 * this; acquire: sees senders that announced themselves before
	 * (same pairing as try_send, with the roles swapped).
	 */
	s = atomic_fetch_add_explicit(&ch->state, 0, memory_order_acq_rel);
	if (s & ST_SEND_MASK)
		wake(ch, &ch->send_seq, INT_MAX);
	/* Items left and receivers asleep: pass the baton. */
	if (avail && (s & ST_RECV_MASK))
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

	/* Spin, then yield: cheap for the next message arriving soon. */
	for (unsigned i = 1;; i++) {
		rte_pause();
		if (i % 16 == 0) {
			rc = a->fn(ch, a->buf, a->n);
			if (rc)
				return rc;
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

		/* Release/acquire RMW: (A) in the protocol at the top. */
		atomic_fetch_add_explicit(&ch->state, a->waiter_unit, memory_order_acq_rel);
		rc = a->fn(ch, a->buf, a->n);
		if (!rc && !expired(deadline)) {
			atomic_fetch_add_explicit(a->parks, 1, memory_order_relaxed);
			park(a->seq, seq, deadline);
		}
		atomic_fetch_sub_explicit(&ch->state, a->waiter_unit, memory_order_relaxed);
		if (rc)
			return rc;
		rc = a->fn(ch, a->buf, a->n);
		if (rc)
			return rc;
		if (expired(deadline))
			return -ETIMEDOUT;
	}
}

int moirai_chan_send(struct moirai_chan *ch, const void *msgs, unsigned n, int64_t timeout_ns)
{
	struct attempt a;
	uint64_t deadline = 0;
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
	if (timeout_ns == 0)
		return -EAGAIN;
	rc = check_timeout(timeout_ns, &deadline);
	if (rc)
		return rc;
	a = (struct attempt){ .fn = try_send_cb,
			      .buf = (void *)msgs,
			      .n = n,
			      .seq = &ch->send_seq,
			      .waiter_unit = ST_SEND_WAITER,
			      .parks = &ch->send_parks };
	return wait_for(ch, &a, deadline);
}

int moirai_chan_recv(struct moirai_chan *ch, void *msgs, unsigned max, int64_t timeout_ns)
{
	struct attempt a;
	uint64_t deadline = 0;
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
	if (timeout_ns == 0)
		return -EAGAIN;
	rc = check_timeout(timeout_ns, &deadline);
	if (rc)
		return rc;
	a = (struct attempt){ .fn = try_recv_cb,
			      .buf = msgs,
			      .n = max,
			      .seq = &ch->recv_seq,
			      .waiter_unit = ST_RECV_WAITER,
			      .parks = &ch->recv_parks };
	return wait_for(ch, &a, deadline);
}

int moirai_chan_close(struct moirai_chan *ch)
{
	uint64_t s;

	if (!ch)
		return moirai__err(-EINVAL, "chan: NULL channel to close");
	/* Release: pairs with the acquire in try_send's ACTIVE increment. */
	s = atomic_fetch_or_explicit(&ch->state, ST_CLOSED, memory_order_acq_rel);
	if (s & ST_CLOSED)
		return -EALREADY;
	/* Everyone parked must re-check: end of stream or -EPIPE. */
	wake(ch, &ch->recv_seq, INT_MAX);
	wake(ch, &ch->send_seq, INT_MAX);
	return 0;
}

bool moirai_chan_is_closed(const struct moirai_chan *ch)
{
	return ch && (atomic_load_explicit(&ch->state, memory_order_acquire) & ST_CLOSED);
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
	/* The state and futex words are hot: same node as the ring. */
	rc = moirai__ring_mem_acquire(sizeof(*ch), ring->node, &mem);
	if (rc)
		goto err_destroy_ring;
	ch = mem;
	memset(ch, 0, sizeof(*ch));
	ch->ring = ring;
	ch->esize = elem_size;
	ch->spin_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);
	atomic_init(&ch->state, 0);
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
