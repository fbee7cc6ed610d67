/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Channels: a moirai element ring plus waiting (spin, yield, futex park),
 * backpressure on a full ring, and close with drain.
 *
 * One atomic word, tx, holds the closed bit and the number of sends in
 * flight; it is written by senders (twice per send) and by close.
 *
 * Waiting is lib/waitq.h's event count, one per direction: receivers
 * sleep on recv_wq until a send, senders facing a full ring on send_wq
 * until a receive.  Its protocol (store, seq_cst fence, load of the
 * waiter count on both sides) excludes lost wake-ups; when nobody parks, a
 * send costs two RMWs on tx (a line only senders write), one fence and one
 * load of a clean line: no system call.
 *
 * Close sets the closed bit with an RMW on tx.  A sender adds itself to tx
 * before looking at the closed bit and removes itself after its enqueue
 * (release), so a receiver that reads "closed, nobody in flight" (acquire)
 * sees every accepted message: one more dequeue drains them, and an empty
 * result is end of stream.  The RMWs on tx are totally ordered, so a send
 * either was counted before the close (and will be drained) or sees the
 * closed bit and takes nothing.
 *
 * A channel can also be a handle of a backend (chan_backend.h: one end of a
 * network channel): ops is then set and ring is NULL.  Every call checks its
 * arguments first and then tests ops once; ops sits on the first line with
 * ring and esize, which a local call reads anyway, and is NULL for every
 * local channel, so the local path pays one load of a line it already has
 * and one never-taken branch.
 */
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chan_backend.h"
#include "moirai/channel.h"
#include "ring_int.h"
#include "waitq.h"

#define TX_ACTIVE_MASK ((1ull << 62) - 1)
#define TX_CLOSED      (1ull << 63)

struct moirai_chan {
	/* Read-only after create. */
	struct moirai_ring *ring; /* NULL for a backend */
	unsigned esize;
	uint64_t spin_ns;
	const struct moirai__chan_ops *ops; /* NULL for a local channel */
	void *impl;			    /* the backend's object */

	/* Sends in flight and the closed bit: written by senders and close. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t tx;
	/* Sleeping receivers and senders: written only by sleepers and by the
	 * wakers of actual sleepers, so clean in every cache otherwise. */
	alignas(MOIRAI_CACHE_LINE) struct moirai__waitq recv_wq;
	alignas(MOIRAI_CACHE_LINE) struct moirai__waitq send_wq;
	/* Slow-path counters, relaxed. */
	alignas(MOIRAI_CACHE_LINE) _Atomic uint64_t recv_parks;
	_Atomic uint64_t send_parks;
	_Atomic uint64_t wakes;
};

static_assert(offsetof(struct moirai_chan, tx) % MOIRAI_CACHE_LINE == 0, "tx on its own line");
static_assert(offsetof(struct moirai_chan, recv_wq) - offsetof(struct moirai_chan, tx) >=
		      MOIRAI_CACHE_LINE,
	      "waiters apart from tx");

static void wake(struct moirai_chan *ch, struct moirai__waitq *wq, int n)
{
	atomic_fetch_add_explicit(&ch->wakes, 1, memory_order_relaxed);
	moirai__waitq_wake(wq, n, 0);
}

static unsigned sleepers(const struct moirai__waitq *wq)
{
	return atomic_load_explicit(&wq->waiters, memory_order_relaxed);
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
	uint64_t s;

	/* Count ourselves in flight before looking at the closed bit. */
	s = atomic_fetch_add_explicit(&ch->tx, 1, memory_order_relaxed);
	if (!(s & TX_CLOSED))
		put = moirai_ring_enqueue_burst_elem(ch->ring, msgs, ch->esize, n, NULL);
	/* Release: pairs with the acquire load of tx in try_recv (drain). */
	s = atomic_fetch_sub_explicit(&ch->tx, 1, memory_order_release);
	/* F1 of the waitq protocol, paired with F2 in a receiver's prepare. */
	moirai__full_fence();
	rw = sleepers(&ch->recv_wq);
	if (rw && (s & TX_CLOSED))
		wake(ch, &ch->recv_wq, INT_MAX);
	else if (rw && put)
		wake(ch, &ch->recv_wq, (int)(put < rw ? put : rw));
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
	uint64_t s;

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
	/* F1 for parked senders (backpressure), paired with their prepare. */
	moirai__full_fence();
	if (moirai__waitq_has_waiters(&ch->send_wq))
		wake(ch, &ch->send_wq, INT_MAX);
	/* Items left and receivers asleep: pass the baton. */
	if (avail && moirai__waitq_has_waiters(&ch->recv_wq))
		wake(ch, &ch->recv_wq, 1);
	return (int)got;
}

/* One call's arguments, for the shared wait loop (lib/waitq.c). */
struct attempt {
	struct moirai_chan *ch;
	void *buf;
	unsigned n;
};

static int send_attempt(void *ctx)
{
	struct attempt *a = ctx;

	return try_send(a->ch, a->buf, a->n);
}

static int recv_attempt(void *ctx)
{
	struct attempt *a = ctx;

	return try_recv(a->ch, a->buf, a->n);
}

/*
 * The slow half shared by send and receive, after a try that moved
 * nothing: fail fast, or spin for spin_ns, yield for as long again, then
 * park until the deadline.
 */
static int wait_slow(struct moirai_chan *ch, int (*fn)(void *), struct attempt *a,
		     struct moirai__waitq *wq, _Atomic uint64_t *parks, uint64_t deadline)
{
	struct moirai__wait w = {
		.attempt = fn,
		.ctx = a,
		.wq = wq,
		.spin_ns = 2 * ch->spin_ns,
		.yield_after_ns = ch->spin_ns,
		.parks = parks,
	};

	return moirai__wait(&w, deadline);
}

int moirai_chan_send(struct moirai_chan *ch, const void *msgs, unsigned n, int64_t timeout_ns)
{
	struct attempt a = { ch, (void *)msgs, n };
	uint64_t deadline;
	int rc;

	if (!ch || (!msgs && n))
		return moirai__err(-EINVAL, "chan: NULL argument to send");
	rc = moirai__timeout_deadline("chan send", timeout_ns, &deadline);
	if (rc)
		return rc;
	if (n == 0)
		return 0;
	if (n > INT_MAX)
		a.n = INT_MAX;
	if (moirai_unlikely(ch->ops != NULL))
		return ch->ops->send(ch->impl, msgs, a.n, timeout_ns);
	rc = try_send(ch, msgs, a.n);
	if (moirai_likely(rc != 0))
		return rc;
	if (timeout_ns == 0)
		return -EAGAIN;
	return wait_slow(ch, send_attempt, &a, &ch->send_wq, &ch->send_parks, deadline);
}

int moirai_chan_recv(struct moirai_chan *ch, void *msgs, unsigned max, int64_t timeout_ns)
{
	struct attempt a = { ch, msgs, max };
	uint64_t deadline;
	int rc;

	if (!ch || (!msgs && max))
		return moirai__err(-EINVAL, "chan: NULL argument to recv");
	rc = moirai__timeout_deadline("chan recv", timeout_ns, &deadline);
	if (rc)
		return rc;
	if (max == 0)
		return 0;
	if (max > INT_MAX)
		a.n = INT_MAX;
	if (moirai_unlikely(ch->ops != NULL))
		return ch->ops->recv(ch->impl, msgs, a.n, timeout_ns);
	rc = try_recv(ch, msgs, a.n);
	if (moirai_likely(rc != 0))
		return rc;
	if (timeout_ns == 0)
		return -EAGAIN;
	return wait_slow(ch, recv_attempt, &a, &ch->recv_wq, &ch->recv_parks, deadline);
}

int moirai_chan_close(struct moirai_chan *ch)
{
	uint64_t s;

	if (!ch)
		return moirai__err(-EINVAL, "chan: NULL channel to close");
	if (ch->ops)
		return ch->ops->close(ch->impl);
	/* One RMW on tx: totally ordered with the senders' increments. */
	s = atomic_fetch_or_explicit(&ch->tx, TX_CLOSED, memory_order_acq_rel);
	if (s & TX_CLOSED)
		return moirai__err(-EALREADY, "chan close: already closed");
	/* Everyone parked must re-check: end of stream or -EPIPE. */
	wake(ch, &ch->recv_wq, INT_MAX);
	wake(ch, &ch->send_wq, INT_MAX);
	return 0;
}

bool moirai_chan_is_closed(const struct moirai_chan *ch)
{
	if (ch && ch->ops)
		return ch->ops->is_closed(ch->impl);
	return ch && (atomic_load_explicit(&ch->tx, memory_order_acquire) & TX_CLOSED);
}

unsigned moirai_chan_elem_size(const struct moirai_chan *ch)
{
	return ch ? ch->esize : 0;
}

unsigned moirai_chan_count(const struct moirai_chan *ch)
{
	if (!ch)
		return 0;
	return ch->ops ? ch->ops->count(ch->impl) : moirai_ring_count(ch->ring);
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

int moirai_chan_create(const char *name, unsigned elem_size, unsigned count, int node,
		       unsigned flags, struct moirai_chan **out)
{
	struct moirai_ring *ring;
	struct moirai_chan *ch;
	void *mem;
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "chan: NULL out pointer");
	*out = NULL;
	rc = moirai_ring_create_elem(name, elem_size, count, node, flags, &ring);
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
	moirai__waitq_init(&ch->recv_wq);
	moirai__waitq_init(&ch->send_wq);
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
	if (ch->ops)
		ch->ops->destroy(ch->impl);
	else
		moirai_ring_destroy(ch->ring);
	moirai__ring_mem_release(ch, sizeof(*ch));
}

int moirai__chan_backend_create(const struct moirai__chan_ops *ops, void *impl, unsigned elem_size,
				struct moirai_chan **out)
{
	struct moirai_chan *ch;
	void *mem;
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "chan: NULL out pointer");
	*out = NULL;
	if (!ops || !impl || !elem_size)
		return moirai__err(-EINVAL, "chan: a backend needs ops, an object and a size");
	/* No node to follow: the backend's object lives where it was made. */
	rc = moirai__ring_mem_acquire(sizeof(*ch), MOIRAI_NODE_ANY, &mem);
	if (rc)
		return rc;
	ch = mem;
	memset(ch, 0, sizeof(*ch));
	ch->esize = elem_size;
	ch->ops = ops;
	ch->impl = impl;
	/* tx and the waitqs stay unused: the backend does its own waiting. */
	atomic_init(&ch->tx, 0);
	moirai__waitq_init(&ch->recv_wq);
	moirai__waitq_init(&ch->send_wq);
	*out = ch;
	return 0;
}

void *moirai__chan_backend_impl(const struct moirai_chan *ch, const struct moirai__chan_ops *ops)
{
	return ch && ops && ch->ops == ops ? ch->impl : NULL;
}
