/*
 * Messages of the shared-memory transport: alloc, send, receive, free and
 * the futex wait of a blocked receiver.
 *
 * Ownership: each side allocates only its own half of the buffers, from a
 * free ring in its own process memory.  A send moves the buffer index
 * through the data ring toward the peer; the peer's free puts the index on
 * the return ring toward the owner, which collects returns when its local
 * free ring runs dry.  Every process keeps its own view of every buffer
 * (FREE / HELD / SENT / RECEIVED) and checks each transition, so a double
 * free, a send of a foreign pointer or a bad index from a buggy peer is
 * refused with an error instead of corrupting the free lists.
 *
 * Waking: a receiver that found nothing counts itself in wake[me].waiters,
 * issues a seq_cst fence, reads wake[me].seq, re-checks the ring, then
 * FUTEX_WAITs on seq.  A sender enqueues, issues a seq_cst fence and reads
 * waiters; only if someone waits does it bump seq and FUTEX_WAKE.  The two
 * fences make it a Dekker pair (store; fence; load on both sides): either
 * the receiver's re-check sees the message or the sender sees the waiter,
 * and a bump of seq after the receiver read it makes FUTEX_WAIT return at
 * once.  No lost wake-up, and a sender writes nothing shared when nobody
 * sleeps.  The futex is not FUTEX_PRIVATE: the word is in
 * a MAP_SHARED file mapping used by two processes.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rte_pause.h>

#include "shm_int.h"

#define SLICE_NS       10000000ull /* re-check the peer's liveness every 10 ms */
#define COLLECT_BATCH  64u
#define YIELD_AFTER_NS 2000u /* pure spin before recv starts yielding */

static bool own_index(const struct moirai_shm *seg, uint32_t idx)
{
	return idx / seg->bufs_per_side == (uint32_t)seg->me && idx < 2 * seg->bufs_per_side;
}

static bool peer_index(const struct moirai_shm *seg, uint32_t idx)
{
	return idx < 2 * seg->bufs_per_side && idx / seg->bufs_per_side == (uint32_t)seg->peer;
}

static bool state_cas(struct moirai_shm *seg, uint32_t idx, uint8_t from, uint8_t to)
{
	/* Relaxed: the local state is bookkeeping of this process; the
	 * buffer contents are ordered by the rings' release/acquire. */
	return atomic_compare_exchange_strong_explicit(&seg->state[idx], &from, to,
						       memory_order_relaxed, memory_order_relaxed);
}

int moirai__shm_local_init(struct moirai_shm *seg)
{
	uint32_t base = (uint32_t)seg->me * seg->bufs_per_side;
	ssize_t sz = rte_ring_get_memsize_elem(sizeof(uint32_t),
					       rte_align32pow2(seg->bufs_per_side + 1));
	int rc;

	if (sz < 0)
		return moirai__err(-EINVAL, "shm %s: local ring size", seg->name);
	seg->free_local_len = ((size_t)sz + 63) & ~(size_t)63;
	seg->free_local = aligned_alloc(64, seg->free_local_len);
	if (!seg->free_local)
		return moirai__err(-ENOMEM, "shm %s: no memory for the free ring", seg->name);
	rc = rte_ring_init(seg->free_local, "shm_free", seg->bufs_per_side,
			   RING_F_MP_HTS_ENQ | RING_F_MC_HTS_DEQ | RING_F_EXACT_SZ);
	if (rc) {
		free(seg->free_local);
		seg->free_local = NULL;
		return moirai__err(rc < 0 ? rc : -EINVAL, "shm %s: rte_ring_init: %s", seg->name,
				   moirai_strerror(rc));
	}
	for (uint32_t i = 0; i < seg->bufs_per_side; i++) {
		uint32_t idx = base + i;

		rte_ring_enqueue_elem(seg->free_local, &idx, sizeof(idx));
	}
	return 0;
}

void moirai__shm_local_fini(struct moirai_shm *seg)
{
	free(seg->free_local);
	seg->free_local = NULL;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

void moirai__shm_wake(struct moirai_shm *seg, int to)
{
	struct shm_wake *w = &seg->hdr->wake[to];

	/* The fence orders our enqueue (or state store) before the waiters
	 * load; it pairs with the fence after the receiver's waiters++ (see
	 * the file comment).  No sleeper: no write to the shared line. */
	moirai__shm_full_fence();
	if (atomic_load_explicit(&w->waiters, memory_order_relaxed)) {
		/* Release pairs with the receiver's acquire load of seq. */
		atomic_fetch_add_explicit(&w->seq, 1, memory_order_release);
		futex(&w->seq, FUTEX_WAKE, INT_MAX, NULL);
	}
}

/* Move buffers the peer returned into the local free ring. */
static unsigned collect_returns(struct moirai_shm *seg)
{
	uint32_t idx[COLLECT_BATCH], ok[COLLECT_BATCH];
	unsigned total = 0, n;

	while ((n = rte_ring_dequeue_burst_elem(seg->ret_rx, idx, sizeof(*idx), COLLECT_BATCH,
						NULL)) > 0) {
		unsigned k = 0;

		for (unsigned i = 0; i < n; i++) {
			/* Only our buffers that we sent may come back. */
			if (own_index(seg, idx[i]) &&
			    state_cas(seg, idx[i], SHM_BUF_SENT, SHM_BUF_FREE))
				ok[k++] = idx[i];
			else
				moirai__log(MOIRAI_LOG_WARN, "shm %s: peer returned bad buffer %u",
					    seg->name, idx[i]);
		}
		rte_ring_enqueue_bulk_elem(seg->free_local, ok, sizeof(*ok), k, NULL);
		total += k;
	}
	return total;
}

int moirai_shm_alloc(struct moirai_shm *seg, size_t len, struct moirai_shm_msg **msg)
{
	struct moirai_shm_msg *m;
	uint32_t idx;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: NULL segment or message pointer");
	if (len > seg->buf_size)
		return moirai__err(-EMSGSIZE, "shm %s: message of %zu bytes, buffers hold %u",
				   seg->name, len, seg->buf_size);
	if (moirai_unlikely(rte_ring_dequeue_elem(seg->free_local, &idx, sizeof(idx)) != 0)) {
		if (collect_returns(seg) == 0 ||
		    rte_ring_dequeue_elem(seg->free_local, &idx, sizeof(idx)) != 0)
			return -ENOBUFS;
	}
	if (!state_cas(seg, idx, SHM_BUF_FREE, SHM_BUF_HELD))
		moirai_assert_internal(!"free ring held a buffer in use");
	m = moirai__shm_slot(seg, idx);
	m->len = (uint32_t)len;
	m->index = idx;
	*msg = m;
	return 0;
}

int moirai_shm_msg_set_len(struct moirai_shm *seg, struct moirai_shm_msg *msg, size_t len)
{
	int64_t idx;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: NULL segment or message");
	idx = moirai__shm_index(seg, msg);
	if (idx < 0 || !own_index(seg, (uint32_t)idx) ||
	    atomic_load_explicit(&seg->state[idx], memory_order_relaxed) != SHM_BUF_HELD)
		return moirai__err(-EINVAL, "shm %s: %p is not a message this side holds",
				   seg->name, (void *)msg);
	if (len > seg->buf_size)
		return moirai__err(-EMSGSIZE, "shm %s: length %zu above buffer size %u", seg->name,
				   len, seg->buf_size);
	msg->len = (uint32_t)len;
	return 0;
}

int moirai_shm_send_burst(struct moirai_shm *seg, struct moirai_shm_msg *const *msgs, unsigned n)
{
	uint32_t idx[MOIRAI_SHM_BURST_MAX];
	unsigned i;

	if (!seg || (!msgs && n))
		return moirai__err(-EINVAL, "shm: NULL segment or message array");
	if (n > MOIRAI_SHM_BURST_MAX)
		return moirai__err(-EINVAL, "shm %s: burst of %u above %u", seg->name, n,
				   MOIRAI_SHM_BURST_MAX);
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		int64_t k = moirai__shm_index(seg, msgs[i]);

		if (k < 0 || !own_index(seg, (uint32_t)k))
			return moirai__err(-EINVAL,
					   "shm %s: %p is not a buffer allocated by this side",
					   seg->name, (void *)msgs[i]);
		idx[i] = (uint32_t)k;
	}
	/* Acquire pairs with the peer's release store in detach. */
	if (atomic_load_explicit(&seg->hdr->side[seg->peer].state, memory_order_acquire) ==
	    SHM_SIDE_DETACHED)
		return moirai__err(-EPIPE, "shm %s: the peer has detached", seg->name);
	for (i = 0; i < n; i++)
		if (!state_cas(seg, idx[i], SHM_BUF_HELD, SHM_BUF_SENT))
			break;
	if (i < n) {
		uint32_t bad = idx[i];

		/* All or nothing: undo the transitions made so far. */
		while (i-- > 0)
			state_cas(seg, idx[i], SHM_BUF_SENT, SHM_BUF_HELD);
		return moirai__err(-EINVAL, "shm %s: buffer %u is not held (already sent or freed)",
				   seg->name, bad);
	}
	/* The enqueue publishes each msg->len and payload (release inside
	 * rte_ring, acquire in the peer's dequeue). */
	if (moirai_unlikely(rte_ring_enqueue_bulk_elem(seg->tx, idx, sizeof(idx[0]), n, NULL) !=
			    n)) {
		/* Only a peer that died inside a dequeue can leave it full. */
		for (i = 0; i < n; i++)
			state_cas(seg, idx[i], SHM_BUF_SENT, SHM_BUF_HELD);
		return moirai__err(-ENOBUFS, "shm %s: data ring full", seg->name);
	}
	moirai__shm_wake(seg, seg->peer);
	return 0;
}

int moirai_shm_send(struct moirai_shm *seg, struct moirai_shm_msg *msg)
{
	if (!msg)
		return moirai__err(-EINVAL, "shm: NULL message");
	return moirai_shm_send_burst(seg, &msg, 1);
}

/* Validate one index the peer sent; 0 or -EBADMSG (message dropped). */
static int accept_index(struct moirai_shm *seg, uint32_t idx)
{
	uint32_t len;

	if (moirai_unlikely(!peer_index(seg, idx)))
		return moirai__err(-EBADMSG,
				   "shm %s: peer sent buffer index %u, not one of its own",
				   seg->name, idx);
	len = moirai__shm_slot(seg, idx)->len;
	if (moirai_unlikely(len > seg->buf_size)) {
		/* Hand the buffer back so the peer does not lose it. */
		rte_ring_enqueue_elem(seg->ret_tx, &idx, sizeof(idx));
		return moirai__err(-EBADMSG, "shm %s: peer sent length %u above buffer size %u",
				   seg->name, len, seg->buf_size);
	}
	if (moirai_unlikely(!state_cas(seg, idx, SHM_BUF_FREE, SHM_BUF_RECEIVED)))
		return moirai__err(-EBADMSG, "shm %s: peer sent buffer %u twice", seg->name, idx);
	/* The peer can still write the header: keep the length we checked. */
	seg->peer_len[idx - (uint32_t)seg->peer * seg->bufs_per_side] = len;
	return 0;
}

/*
 * Take up to @max messages: their count, -EAGAIN when the ring is empty,
 * or -EBADMSG when everything dequeued was invalid (dropped).
 */
static int try_recv(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max)
{
	uint32_t idx[MOIRAI_SHM_BURST_MAX];
	unsigned n, good = 0;
	int rc = 0;

	n = rte_ring_dequeue_burst_elem(seg->rx, idx, sizeof(idx[0]), max, NULL);
	if (n == 0)
		return -EAGAIN;
	for (unsigned i = 0; i < n; i++) {
		int r = accept_index(seg, idx[i]);

		if (r)
			rc = r;
		else
			msgs[good++] = moirai__shm_slot(seg, idx[i]);
	}
	if (good)
		atomic_fetch_add_explicit(&seg->held_peer, good, memory_order_relaxed);
	return good ? (int)good : rc;
}

/* The peer left or died (state, then pid and start time). */
static bool peer_gone(const struct moirai_shm *seg, bool check_pid)
{
	const struct shm_side *s = &seg->hdr->side[seg->peer];
	/* Acquire pairs with the peer's release store in detach/attach. */
	uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

	if (st == SHM_SIDE_DETACHED)
		return true;
	return st == SHM_SIDE_ATTACHED && check_pid && !moirai__shm_side_alive(s);
}

/* Receive 1..max messages; the count or -errno (see moirai_shm_recv). */
static int recv_common(struct moirai_shm *seg, struct moirai_shm_msg **msg, unsigned max,
		       int64_t timeout_ns)
{
	struct shm_wake *w;
	uint64_t deadline = 0;
	int rc;

	rc = try_recv(seg, msg, max);
	if (rc != -EAGAIN)
		return rc;
	if (timeout_ns == 0)
		return peer_gone(seg, false) ? -EPIPE : -EAGAIN;
	if (timeout_ns > 0)
		deadline = moirai_now_ns() + (uint64_t)timeout_ns;
	/* Poll for a while first: a sleep and a wake-up cost two system
	 * calls and a context switch, more than a busy peer's next message. */
	if (seg->spin_ns) {
		uint64_t start = moirai_now_ns(), end = start + seg->spin_ns;

		if (deadline && deadline < end)
			end = deadline;
		do {
			for (int i = 0; i < 64; i++) {
				if (rte_ring_count(seg->rx)) {
					rc = try_recv(seg, msg, max);
					if (rc != -EAGAIN)
						return rc;
				}
				rte_pause();
			}
			/* After a short pure spin, yield: the peer may share
			 * our CPU (the scheduler likes to put a wakee next
			 * to its waker) and then only our yield lets it run. */
			if (moirai_now_ns() - start > YIELD_AFTER_NS)
				sched_yield();
		} while (moirai_now_ns() < end);
	}
	w = &seg->hdr->wake[seg->me];
	for (;;) {
		uint64_t slice = SLICE_NS, now;
		struct timespec ts;
		uint32_t seq;
		bool timed_out;

		/* The fence pairs with the one in moirai__shm_wake(): either
		 * the sender sees us in waiters, or we see its enqueue.  The
		 * acquire pairs with the sender's release increment of seq. */
		atomic_fetch_add_explicit(&w->waiters, 1, memory_order_relaxed);
		moirai__shm_full_fence();
		seq = atomic_load_explicit(&w->seq, memory_order_acquire);
		rc = try_recv(seg, msg, max);
		if (rc != -EAGAIN || peer_gone(seg, false)) {
			atomic_fetch_sub_explicit(&w->waiters, 1, memory_order_relaxed);
			return rc != -EAGAIN ? rc : -EPIPE;
		}
		if (deadline) {
			now = moirai_now_ns();
			if (now >= deadline) {
				atomic_fetch_sub_explicit(&w->waiters, 1, memory_order_relaxed);
				return -ETIMEDOUT;
			}
			if (deadline - now < slice)
				slice = deadline - now;
		}
		ts.tv_sec = (time_t)(slice / 1000000000u);
		ts.tv_nsec = (long)(slice % 1000000000u);
		timed_out = futex(&w->seq, FUTEX_WAIT, seq, &ts) != 0 && errno == ETIMEDOUT;
		atomic_fetch_sub_explicit(&w->waiters, 1, memory_order_relaxed);
		rc = try_recv(seg, msg, max);
		if (rc != -EAGAIN)
			return rc;
		/* A silent slice: is the peer still there? */
		if (timed_out && peer_gone(seg, true))
			return -EPIPE;
	}
}

int moirai_shm_recv(struct moirai_shm *seg, struct moirai_shm_msg **msg, int64_t timeout_ns)
{
	int rc;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: NULL segment or message pointer");
	rc = recv_common(seg, msg, 1, timeout_ns);
	return rc > 0 ? 0 : rc;
}

int moirai_shm_recv_burst(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max,
			  int64_t timeout_ns)
{
	if (!seg || !msgs || max == 0 || max > MOIRAI_SHM_BURST_MAX)
		return moirai__err(-EINVAL, "shm: NULL argument or burst size %u not in 1..%u", max,
				   MOIRAI_SHM_BURST_MAX);
	return recv_common(seg, msgs, max, timeout_ns);
}

int moirai_shm_free(struct moirai_shm *seg, struct moirai_shm_msg *msg)
{
	int64_t i;
	uint32_t idx;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: NULL segment or message");
	i = moirai__shm_index(seg, msg);
	if (i < 0)
		return moirai__err(-EINVAL, "shm %s: %p is not a buffer of this segment", seg->name,
				   (void *)msg);
	idx = (uint32_t)i;
	if (own_index(seg, idx)) {
		if (!state_cas(seg, idx, SHM_BUF_HELD, SHM_BUF_FREE))
			return moirai__err(-EINVAL,
					   "shm %s: buffer %u is not held (double free, or sent)",
					   seg->name, idx);
		rte_ring_enqueue_elem(seg->free_local, &idx, sizeof(idx));
		return 0;
	}
	if (!state_cas(seg, idx, SHM_BUF_RECEIVED, SHM_BUF_FREE))
		return moirai__err(-EINVAL, "shm %s: buffer %u was not received (double free?)",
				   seg->name, idx);
	atomic_fetch_sub_explicit(&seg->held_peer, 1, memory_order_relaxed);
	/* Can only fail if the peer died inside a dequeue; recover resets. */
	rte_ring_enqueue_elem(seg->ret_tx, &idx, sizeof(idx));
	return 0;
}

void *moirai_shm_msg_data(struct moirai_shm_msg *msg)
{
	return msg ? (char *)msg + MOIRAI__SHM_MSG_HDR : NULL;
}

size_t moirai_shm_msg_len(const struct moirai_shm *seg, const struct moirai_shm_msg *msg)
{
	int64_t idx;
	uint32_t len;

	if (!seg || !msg)
		return 0;
	idx = moirai__shm_index(seg, msg);
	if (idx < 0)
		return 0;
	/* A received message: the length validated at receive time. */
	if (peer_index(seg, (uint32_t)idx))
		return seg->peer_len[(uint32_t)idx - (uint32_t)seg->peer * seg->bufs_per_side];
	/* One of ours: the peer can write it too, so never above the buffer. */
	len = *(const volatile uint32_t *)&msg->len;
	return len <= seg->buf_size ? len : seg->buf_size;
}

unsigned moirai_shm_free_count(const struct moirai_shm *seg)
{
	if (!seg)
		return 0;
	return rte_ring_count(seg->free_local) + rte_ring_count(seg->ret_rx);
}
