/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Messages of the shared-memory transport: alloc, send, receive, free and
 * the wait of a blocked receiver.
 *
 * Ownership: each side allocates only its own half of the buffers, from a
 * free stack in its own process memory.  A send moves the buffer index
 * through the data ring toward the peer; the peer's free puts the index on
 * the return ring toward the owner, which collects returns when its free
 * stack runs dry.  Every process keeps its own view of every buffer
 * (FREE / HELD / SENT / RECEIVED) and checks each transition, so a double
 * free, a send of a foreign pointer or a bad index from the peer is
 * refused with an error instead of corrupting the free lists.
 *
 * Threads: the rings are single producer / single consumer across the two
 * processes (ring/shm_ring.h); within a process each ring end is
 * serialised by its own lock (struct shm_lock, in process memory, where
 * the peer cannot touch it).  A lock rather than an MP-safe end: making
 * one end MP-safe locally (HTS-style: CAS a local head, then publish in
 * order) makes every thread wait for its predecessor's publish, a loop a
 * preempted thread stalls exactly as it would stall a lock holder, with
 * more code and a second position to keep straight.  An uncontended lock
 * costs one CAS and one exchange, the two atomic operations the HTS
 * rte_ring it replaces paid; contended, a waiter sleeps after a short
 * spin instead of burning the CPU the holder may need.  Lock order: rx
 * before ret_tx (a receive hands back a buffer with a bad length); ret_rx
 * (which also guards the free stack) and tx are never held with another.
 *
 * Waiting: a blocked receiver uses the library's one wait loop
 * (lib/waitq.h: spin, yield, then FUTEX_WAIT in slices), on the event
 * count wake[me] in the segment, MOIRAI__WAITQ_SHARED because two
 * processes map it.  The peer can write that word and its waiter count:
 * a changed seq only ends a sleep early (a spurious wake-up), a bogus
 * waiter count only costs our sends a FUTEX_WAKE; every sleep is bounded
 * by the caller's deadline and by the 10 ms slice after which the peer's
 * lock is checked.  A peer that rewrites seq in a loop to keep us busy is
 * throttled (storm_check).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shm_int.h"
#include "shm_ring.h"

#define SLICE_NS	10000000ull /* check the peer's lock every 10 ms of silence */
#define LOCK_CHECK_NS	10000000ull /* ... and as often from try-receives */
#define COLLECT_BATCH	64u
#define STORM_WAKES	32u /* spurious wake-ups tolerated per STORM_WINDOW_NS */
#define STORM_WINDOW_NS 1000000ull
#define STORM_SLEEP_NS	1000000ull

/* Side @side's buffers are [side * bufs, (side + 1) * bufs): one compare. */
static bool side_index(const struct moirai_shm *seg, int side, uint32_t idx)
{
	return idx - (uint32_t)side * seg->bufs_per_side < seg->bufs_per_side;
}

static bool own_index(const struct moirai_shm *seg, uint32_t idx)
{
	return side_index(seg, seg->me, idx);
}

static bool peer_index(const struct moirai_shm *seg, uint32_t idx)
{
	return side_index(seg, seg->peer, idx);
}

static bool state_cas(struct moirai_shm *seg, uint32_t idx, uint8_t from, uint8_t to)
{
	/*
	 * Acq_rel: a buffer one thread sends and another thread of this
	 * process later allocates again travels through the peer: our
	 * release into the data ring, the peer's return, our acquire from
	 * the return ring.  That chain is real but runs through memory
	 * mapped at other addresses (or in another process), which neither
	 * the C11 model of this process nor TSan can follow; the state byte
	 * is the one address both threads touch, so its release (HELD ->
	 * SENT, RECEIVED -> FREE) and acquire (SENT -> FREE, FREE ->
	 * RECEIVED) order the payload and header writes of the two threads.
	 * Free on x86, where every CAS is a full barrier.
	 */
	return atomic_compare_exchange_strong_explicit(&seg->state[idx], &from, to,
						       memory_order_acq_rel, memory_order_acquire);
}

/*
 * A peer misbehaving outside any call's error path: warn once per handle
 * (a hostile peer must not be able to flood our log), then at debug level.
 */
static void peer_warn(struct moirai_shm *seg, const char *what, uint32_t idx)
{
	bool first = !atomic_exchange_explicit(&seg->peer_warned, true, memory_order_relaxed);

	moirai__log(first ? MOIRAI_LOG_WARN : MOIRAI_LOG_DEBUG, "shm %s: the peer %s %u%s",
		    seg->name, what, idx,
		    first ? " (further peer errors are logged at debug level)" : "");
}

static void push_free(struct moirai_shm *seg, uint32_t idx)
{
	uint32_t top = atomic_load_explicit(&seg->free_top, memory_order_relaxed);

	seg->free_stack[top] = idx;
	atomic_store_explicit(&seg->free_top, top + 1, memory_order_relaxed);
}

void moirai__shm_lock_slow(struct shm_lock *l)
{
	uint32_t c;

	/* Critical sections are a few dozen instructions: spin briefly. */
	for (int i = 0; i < 100; i++) {
		c = 0;
		if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->word, &c, 1, memory_order_acquire,
							  memory_order_relaxed))
			return;
		moirai__cpu_relax();
	}
	/* Then sleep; 2 tells the holder to wake us.  Acquire pairs with the
	 * release exchange in shm_unlock(). */
	while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0)
		syscall(SYS_futex, (uint32_t *)&l->word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void moirai__shm_unlock_wake(struct shm_lock *l)
{
	syscall(SYS_futex, (uint32_t *)&l->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int moirai__shm_local_init(struct moirai_shm *seg)
{
	uint32_t n = seg->bufs_per_side, base = (uint32_t)seg->me * n;
	struct shm_ring_end *ends[] = { &seg->tx, &seg->rx, &seg->ret_tx, &seg->ret_rx };

	seg->state = calloc(2 * (size_t)n, sizeof(*seg->state));
	seg->peer_len = calloc(n, sizeof(*seg->peer_len));
	seg->free_stack = calloc(n, sizeof(*seg->free_stack));
	if (!seg->state || !seg->peer_len || !seg->free_stack) {
		free(seg->state);
		free(seg->peer_len);
		free(seg->free_stack);
		return moirai__err(-ENOMEM, "shm %s: no memory for %u buffer states", seg->name, n);
	}
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(ends); i++)
		atomic_init(&ends[i]->lock.word, 0);
	/* Lowest index on top: the first allocations walk the buffers in order. */
	for (uint32_t i = n; i-- > 0;)
		push_free(seg, base + i);
	return 0;
}

void moirai__shm_local_fini(struct moirai_shm *seg)
{
	free(seg->state);
	free(seg->peer_len);
	free(seg->free_stack);
	seg->state = NULL;
	seg->peer_len = NULL;
	seg->free_stack = NULL;
}

void moirai__shm_local_reset(struct moirai_shm *seg)
{
	uint32_t own = (uint32_t)seg->me * seg->bufs_per_side;
	uint32_t other = (uint32_t)seg->peer * seg->bufs_per_side;

	/* Our buffers that were with the peer, queued or returned, are ours
	 * again; buffers we hold stay held. */
	for (uint32_t i = 0; i < seg->bufs_per_side; i++)
		if (state_cas(seg, own + i, SHM_BUF_SENT, SHM_BUF_FREE))
			push_free(seg, own + i);
	for (uint32_t i = 0; i < seg->bufs_per_side; i++)
		atomic_store_explicit(&seg->state[other + i], SHM_BUF_FREE, memory_order_relaxed);
}

/* Move buffers the peer returned onto the free stack; ret_rx.lock held. */
static void collect_returns(struct moirai_shm *seg)
{
	uint32_t idx[COLLECT_BATCH];
	/* One observation of the peer's position bounds the whole collection:
	 * a peer that keeps publishing cannot keep us here. */
	uint32_t avail = shm_ring_take_avail(&seg->ret_rx);

	while (avail) {
		uint32_t n = avail < COLLECT_BATCH ? avail : COLLECT_BATCH;

		shm_ring_get(&seg->ret_rx, idx, n);
		avail -= n;
		for (uint32_t i = 0; i < n; i++) {
			/* Only our buffers that we sent may come back; this
			 * also bounds the pushes by the stack's room. */
			if (own_index(seg, idx[i]) &&
			    state_cas(seg, idx[i], SHM_BUF_SENT, SHM_BUF_FREE))
				push_free(seg, idx[i]);
			else
				peer_warn(seg, "returned bad buffer", idx[i]);
		}
	}
}

static int faulted_err(const struct moirai_shm *seg)
{
	return moirai__err(-EFAULT,
			   "shm %s: the segment file was truncated under us; its "
			   "contents are gone (destroy the handle)",
			   seg->name);
}

int moirai_shm_alloc(struct moirai_shm *seg, size_t len, struct moirai_shm_msg **msg)
{
	struct moirai_shm_msg *m;
	uint32_t idx, top;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: alloc: NULL segment or message pointer");
	if (moirai_unlikely(moirai__shm_faulted(seg)))
		return faulted_err(seg);
	if (len > seg->buf_size)
		return moirai__err(-EMSGSIZE, "shm %s: message of %zu bytes, buffers hold %u",
				   seg->name, len, seg->buf_size);
	shm_lock(&seg->ret_rx.lock);
	top = atomic_load_explicit(&seg->free_top, memory_order_relaxed);
	if (moirai_unlikely(top == 0)) {
		collect_returns(seg);
		top = atomic_load_explicit(&seg->free_top, memory_order_relaxed);
		if (top == 0) {
			shm_unlock(&seg->ret_rx.lock);
			return -ENOBUFS;
		}
	}
	idx = seg->free_stack[--top];
	atomic_store_explicit(&seg->free_top, top, memory_order_relaxed);
	shm_unlock(&seg->ret_rx.lock);
	if (!state_cas(seg, idx, SHM_BUF_FREE, SHM_BUF_HELD))
		moirai_assert_internal(!"free stack held a buffer in use");
	m = moirai__shm_slot(seg, idx);
	atomic_store_explicit(&m->len, (uint32_t)len, memory_order_relaxed);
	m->index = idx;
	*msg = m;
	return 0;
}

int moirai_shm_msg_set_len(struct moirai_shm *seg, struct moirai_shm_msg *msg, size_t len)
{
	int64_t idx;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: set_len: NULL segment or message");
	idx = moirai__shm_index(seg, msg);
	if (idx < 0 || !own_index(seg, (uint32_t)idx) ||
	    atomic_load_explicit(&seg->state[idx], memory_order_relaxed) != SHM_BUF_HELD)
		return moirai__err(-EINVAL, "shm %s: %p is not a message this side holds",
				   seg->name, (void *)msg);
	if (len > seg->buf_size)
		return moirai__err(-EMSGSIZE, "shm %s: length %zu above buffer size %u", seg->name,
				   len, seg->buf_size);
	atomic_store_explicit(&msg->len, (uint32_t)len, memory_order_relaxed);
	return 0;
}

int moirai_shm_send_bulk(struct moirai_shm *seg, struct moirai_shm_msg *const *msgs, unsigned n)
{
	uint32_t idx[MOIRAI_SHM_BURST_MAX];
	unsigned i, sent;

	if (!seg || (!msgs && n))
		return moirai__err(-EINVAL, "shm: send: NULL segment or message array");
	if (n > MOIRAI_SHM_BURST_MAX)
		return moirai__err(-EINVAL, "shm %s: bulk of %u above %u", seg->name, n,
				   MOIRAI_SHM_BURST_MAX);
	if (moirai_unlikely(moirai__shm_faulted(seg)))
		return faulted_err(seg);
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
	/* Acquire pairs with the peer's release store in detach (D). */
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
	/* The enqueue's release (R1) publishes each length and payload. */
	shm_lock(&seg->tx.lock);
	sent = shm_ring_enqueue_bulk(&seg->tx, idx, n);
	shm_unlock(&seg->tx.lock);
	if (moirai_unlikely(sent != n)) {
		/* The ring holds as many slots as we have buffers: only a peer
		 * that lies about its position makes it look full. */
		for (i = 0; i < n; i++)
			state_cas(seg, idx[i], SHM_BUF_SENT, SHM_BUF_HELD);
		return moirai__err(-ENOBUFS,
				   "shm %s: data ring full: the peer reports it consumed nothing",
				   seg->name);
	}
	moirai__waitq_notify(&seg->hdr->wake[seg->peer].wq, INT_MAX, MOIRAI__WAITQ_SHARED);
	if (moirai_unlikely(moirai__shm_faulted(seg)))
		return faulted_err(seg);
	return 0;
}

int moirai_shm_send(struct moirai_shm *seg, struct moirai_shm_msg *msg)
{
	if (!msg)
		return moirai__err(-EINVAL, "shm: send: NULL message");
	return moirai_shm_send_bulk(seg, &msg, 1);
}

/* Hand a peer buffer back to its owner; drops it if the ring looks full. */
static void give_back(struct moirai_shm *seg, uint32_t idx)
{
	uint32_t k;

	shm_lock(&seg->ret_tx.lock);
	k = shm_ring_enqueue_bulk(&seg->ret_tx, &idx, 1);
	shm_unlock(&seg->ret_tx.lock);
	/* It holds as many slots as the peer has buffers: only a peer lying
	 * about its position makes it full, and then it loses its buffer. */
	if (moirai_unlikely(!k))
		peer_warn(seg, "lies about its return ring (full): dropped its buffer", idx);
}

/* Validate one index the peer sent; 0 or -EBADMSG (message dropped). */
static int accept_index(struct moirai_shm *seg, uint32_t idx)
{
	uint32_t len;

	if (moirai_unlikely(!peer_index(seg, idx)))
		return moirai__err(-EBADMSG,
				   "shm %s: peer sent buffer index %u, not one of its own",
				   seg->name, idx);
	/* Read once: the peer can still write the header. */
	len = atomic_load_explicit(&moirai__shm_slot(seg, idx)->len, memory_order_relaxed);
	if (moirai_unlikely(len > seg->buf_size)) {
		/* Not ours to keep: hand the buffer back so the peer does not
		 * lose it.  A bad index the peer sent twice comes back twice;
		 * its own checks refuse the second. */
		give_back(seg, idx);
		return moirai__err(-EBADMSG, "shm %s: peer sent length %u above buffer size %u",
				   seg->name, len, seg->buf_size);
	}
	if (moirai_unlikely(!state_cas(seg, idx, SHM_BUF_FREE, SHM_BUF_RECEIVED)))
		return moirai__err(-EBADMSG, "shm %s: peer sent buffer %u twice", seg->name, idx);
	seg->peer_len[idx - (uint32_t)seg->peer * seg->bufs_per_side] = len;
	return 0;
}

/*
 * Take up to @max messages: their count, -EAGAIN when the ring is empty,
 * -EBADMSG when everything dequeued was invalid (dropped), -EFAULT.
 */
static int try_recv(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max)
{
	uint32_t idx[MOIRAI_SHM_BURST_MAX], ahead;
	unsigned n, good = 0;
	int rc = 0;

	if (moirai_unlikely(moirai__shm_faulted(seg)))
		return faulted_err(seg);
	/* Lock-free peek first: empty polls (the spin phase) take no lock.
	 * The peek may be what faulted, so the flag is looked at again. */
	ahead = shm_ring_ahead(&seg->rx);
	if (moirai_unlikely(ahead > seg->rx.capacity)) {
		/* An impossible position: somebody wrote here since the last
		 * reset, even if we never saw them hold the client lock. */
		moirai__shm_peer_seen(seg);
		if (ahead & 0x80000000u)
			ahead = 0;
	}
	if (!ahead)
		return moirai_unlikely(moirai__shm_faulted(seg)) ? faulted_err(seg) : -EAGAIN;
	shm_lock(&seg->rx.lock);
	n = shm_ring_dequeue_burst(&seg->rx, idx, max);
	for (unsigned i = 0; i < n; i++) {
		int r = accept_index(seg, idx[i]);

		if (r)
			rc = r;
		else
			msgs[good++] = moirai__shm_slot(seg, idx[i]);
	}
	shm_unlock(&seg->rx.lock);
	if (moirai_unlikely(moirai__shm_faulted(seg)))
		return faulted_err(seg); /* what we read may have been zero pages */
	if (good)
		atomic_fetch_add_explicit(&seg->held_peer, good, memory_order_relaxed);
	if (n == 0)
		return -EAGAIN;
	moirai__shm_peer_seen(seg);
	return good ? (int)good : rc;
}

/*
 * End of stream: after seeing the peer gone, take once more.  The peer
 * may have published its last messages between our empty dequeue and the
 * look at its state; the acquire (D') that saw DETACHED (or the kernel's
 * lock order, for a death) makes those publishes visible to this retry's
 * acquire load of the ring position (A1).
 */
static int recv_final(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max)
{
	int rc = try_recv(seg, msgs, max);

	return rc == -EAGAIN ? -EPIPE : rc;
}

/* One receive's state for the shared wait loop (lib/waitq.c). */
struct recv_wait {
	struct moirai_shm *seg;
	struct moirai_shm_msg **msgs;
	unsigned max;
	uint64_t deadline;
	_Atomic uint64_t parks; /* sleeps so far, counted by moirai__wait */
	uint64_t parks_seen;
	unsigned spurious;
	uint64_t window;
};

/*
 * A peer can bump our futex word in a loop: every sleep then ends at once,
 * and we would spin on its writes until the deadline.  More than
 * STORM_WAKES empty wake-ups within STORM_WINDOW_NS earn a plain 1 ms
 * sleep (never past the deadline), which bounds what it can make us burn.
 */
static void storm_check(struct recv_wait *w)
{
	uint64_t parks = atomic_load_explicit(&w->parks, memory_order_relaxed), now;

	if (parks == w->parks_seen)
		return; /* still spinning, not woken */
	w->parks_seen = parks;
	if (++w->spurious < STORM_WAKES)
		return;
	now = moirai_now_ns();
	if (now - w->window < STORM_WINDOW_NS) {
		uint64_t ns = STORM_SLEEP_NS;
		struct timespec ts;

		if (w->deadline && (w->deadline <= now || w->deadline - now < ns))
			ns = w->deadline > now ? w->deadline - now : 0;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)ns;
		nanosleep(&ts, NULL);
		now = moirai_now_ns();
	}
	w->window = now;
	w->spurious = 0;
}

static int recv_attempt(void *ctx)
{
	struct recv_wait *w = ctx;
	int rc = try_recv(w->seg, w->msgs, w->max);

	if (rc != -EAGAIN)
		return rc;
	/* A clean detach ends the wait at once, not after a silent slice. */
	if (moirai__shm_peer_gone(w->seg, false))
		return recv_final(w->seg, w->msgs, w->max);
	storm_check(w);
	return 0;
}

/* After a silent slice: has the peer died (its lock is gone)? */
static int recv_silent(void *ctx)
{
	struct recv_wait *w = ctx;

	if (moirai__shm_peer_gone(w->seg, true))
		return recv_final(w->seg, w->msgs, w->max);
	return 0;
}

/* Try-receive found nothing: -EAGAIN, or the end of the stream. */
static int recv_empty(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max)
{
	bool check_lock = false;
	uint64_t now;

	/* The peer's lock costs a system call: look at most every 10 ms, so
	 * that a poller also learns of a death without paying for it on
	 * every empty poll. */
	now = moirai_now_ns();
	if (now >= atomic_load_explicit(&seg->next_lock_check, memory_order_relaxed)) {
		atomic_store_explicit(&seg->next_lock_check, now + LOCK_CHECK_NS,
				      memory_order_relaxed);
		check_lock = true;
	}
	if (!moirai__shm_peer_gone(seg, check_lock))
		return -EAGAIN;
	return recv_final(seg, msgs, max);
}

/* The waiting half of a receive, out of the fast path. */
static __attribute__((noinline)) int recv_wait(struct moirai_shm *seg, struct moirai_shm_msg **msgs,
					       unsigned max, int64_t timeout_ns)
{
	struct recv_wait w = { .seg = seg, .msgs = msgs, .max = max };
	struct moirai__wait wait = {
		.attempt = recv_attempt,
		.ctx = &w,
		.wq = &seg->hdr->wake[seg->me].wq,
		.spin_ns = seg->spin_ns,
		/* After a short pure spin, yield: the peer may share our CPU
		 * (the scheduler likes to put a wakee next to its waker). */
		.yield_after_ns = 2000,
		.slice_ns = SLICE_NS,
		.silent = recv_silent,
		.flags = MOIRAI__WAITQ_SHARED,
		.parks = &w.parks,
	};
	int rc = moirai__timeout_deadline("shm recv", timeout_ns, &w.deadline);

	if (rc)
		return rc;
	w.window = moirai_now_ns();
	rc = moirai__wait(&wait, w.deadline);
	/*
	 * A wait shorter than a slice ends before its first look at the
	 * peer's lock: look now, rate-limited as a try is, or a caller that
	 * polls with short timeouts never learns of a death (-ETIMEDOUT for
	 * ever instead of -EPIPE).
	 */
	if (rc == -ETIMEDOUT) {
		int end = recv_empty(seg, msgs, max);

		if (end != -EAGAIN)
			return end;
	}
	return rc;
}

/* Receive 1..max messages; the count or -errno (see moirai_shm_recv). */
static int recv_common(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max,
		       int64_t timeout_ns)
{
	uint64_t unused;
	int rc;

	/* Checked before anything moves (base.h): records the message. */
	if (moirai_unlikely(timeout_ns < MOIRAI_TIMEOUT_FOREVER))
		return moirai__timeout_deadline("shm recv", timeout_ns, &unused);
	rc = try_recv(seg, msgs, max);
	if (moirai_likely(rc != -EAGAIN))
		return rc;
	if (timeout_ns == MOIRAI_TIMEOUT_TRY)
		return recv_empty(seg, msgs, max);
	return recv_wait(seg, msgs, max, timeout_ns);
}

int moirai_shm_recv(struct moirai_shm *seg, struct moirai_shm_msg **msg, int64_t timeout_ns)
{
	int rc;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: recv: NULL segment or message pointer");
	rc = recv_common(seg, msg, 1, timeout_ns);
	return rc > 0 ? 0 : rc;
}

int moirai_shm_recv_burst(struct moirai_shm *seg, struct moirai_shm_msg **msgs, unsigned max,
			  int64_t timeout_ns)
{
	if (!seg || !msgs || max == 0 || max > MOIRAI_SHM_BURST_MAX)
		return moirai__err(-EINVAL,
				   "shm: recv_burst: NULL argument or burst size %u not in 1..%u",
				   max, MOIRAI_SHM_BURST_MAX);
	return recv_common(seg, msgs, max, timeout_ns);
}

int moirai_shm_free(struct moirai_shm *seg, struct moirai_shm_msg *msg)
{
	int64_t i;
	uint32_t idx;

	if (!seg || !msg)
		return moirai__err(-EINVAL, "shm: free: NULL segment or message");
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
		shm_lock(&seg->ret_rx.lock);
		push_free(seg, idx);
		shm_unlock(&seg->ret_rx.lock);
		return 0;
	}
	if (!state_cas(seg, idx, SHM_BUF_RECEIVED, SHM_BUF_FREE))
		return moirai__err(-EINVAL, "shm %s: buffer %u was not received (double free?)",
				   seg->name, idx);
	atomic_fetch_sub_explicit(&seg->held_peer, 1, memory_order_relaxed);
	/* A truncated segment has nobody to give it back to: freed here. */
	if (!moirai__shm_faulted(seg))
		give_back(seg, idx);
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
	len = atomic_load_explicit(&msg->len, memory_order_relaxed);
	return len <= seg->buf_size ? len : seg->buf_size;
}

unsigned moirai_shm_free_count(const struct moirai_shm *seg)
{
	uint32_t top, back;

	if (!seg)
		return 0;
	top = atomic_load_explicit(&seg->free_top, memory_order_relaxed);
	if (moirai__shm_faulted(seg))
		return top;
	/* Unlocked peek at the return ring (a count, not an operation); the
	 * peer's claim is clamped and can never exceed our buffers. */
	back = shm_ring_avail(&seg->ret_rx);
	return top + (back < seg->bufs_per_side - top ? back : seg->bufs_per_side - top);
}
