/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/channel.h
 * @brief Channels: a moirai ring of fixed-size messages plus waiting,
 *        backpressure and close.
 *
 * Design: a channel carries messages of one fixed size (a multiple of 4
 * bytes), copied in and out by value: a message is bytes, never a pointer
 * that only makes sense in one address space, so the shared-memory
 * transport and a later cross-host backend (UCX) can sit behind the same
 * send/receive calls.  Underneath is a moirai ring of elements
 * (moirai_ring_create_elem), with the sync mode chosen by the same
 * MOIRAI_RING_* flags; with no mode named both sides are RTS, which is safe
 * for threads that may be preempted (see moirai/ring.h).
 *
 * Waiting, per call, by @c timeout_ns: MOIRAI_TIMEOUT_TRY (0) = try once
 * (-EAGAIN if nothing could move), MOIRAI_TIMEOUT_FOREVER (-1) = wait as
 * long as it takes, > 0 = wait at most that many nanoseconds
 * (-ETIMEDOUT); below -1 is -EINVAL, checked before anything is sent.  A waiting party spins
 * for MOIRAI_OPT_SPIN_NS, then yields the CPU for as long again, then parks
 * on a futex.  A sender wakes parked receivers, and a receiver wakes
 * parked senders (backpressure), only when someone is parked: parked
 * parties are counted in a word only they write, read after a full fence
 * (paired with a fence on the parking side), so the common case costs a
 * send two read-modify-writes on a word only senders write plus a fence,
 * a receive one fence, and no system call.
 *
 * Close: after moirai_chan_close() every send fails with -EPIPE; receivers
 * still get everything that was sent before, then -EPIPE (end of stream).
 * A send either returns a count (those messages will be received exactly
 * once) or -EPIPE (none of them were accepted); no message is lost or
 * duplicated by a close racing with sends.  Close wakes every parked party.
 *
 * Thread-safety follows the ring mode: with the default flags any number
 * of threads may send and receive concurrently; with MOIRAI_RING_F_SP_ENQ
 * (or SC_DEQ) one sender (receiver) at a time.
 *
 * Network channels: moirai_net_connect_chan() and moirai_net_accept_chan()
 * (moirai/net.h) give one end of a network channel as a struct
 * moirai_chan, and every call below works on it with the same argument
 * checks and return codes; only the open differs.  What cannot be the same
 * across a network is listed in moirai/net.h ("A network channel as a
 * struct moirai_chan"): the handle is one end of a two-way connection
 * (this end sends, the peer receives), the peer's messages and close are
 * seen after progress (a call with a timeout waits for them; timeout 0 can
 * be -EAGAIN while they are on the way), a send racing with the peer's
 * close is accepted and drained instead of -EPIPE, send and receive can
 * also return -ECONNRESET (peer failed) or -EPROTO, capacity is the window,
 * and calls come from the net's owner thread only.  A local channel pays
 * one never-taken branch per call for this.
 */
#ifndef MOIRAI_CHANNEL_H
#define MOIRAI_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "moirai/base.h"
#include "moirai/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque channel handle. */
struct moirai_chan;

/** Counters of the slow paths, for tests and stats (snapshots). */
struct moirai_chan_stats {
	uint64_t recv_parks; /**< times a receiver slept on the futex */
	uint64_t send_parks; /**< times a sender slept on the futex (ring full) */
	uint64_t wakes;	     /**< futex wake system calls made */
};

/**
 * Create a channel of @p count slots of @p elem_size bytes on @p node.
 * @param name unique ring name of 1..MOIRAI_RING_NAME_MAX characters (copied).
 * @param elem_size bytes per message: a non-zero multiple of 4.
 * @param count slots: a power of two >= 2 (holds count - 1), or any count
 *        with MOIRAI_RING_F_EXACT_SZ.
 * @param node OS NUMA node or MOIRAI_NODE_ANY.
 * @param flags MOIRAI_RING_F_* flags (0 = MPMC, preemption-safe RTS).
 * @param[out] out the channel.
 * @return 0; the errors of moirai_ring_create_elem() (-EINVAL, -ERANGE,
 *         -ENAMETOOLONG, -ENODEV, -EPERM, -EEXIST, -ENOMEM).  Thread-safe.
 */
MOIRAI_API int moirai_chan_create(const char *name, unsigned elem_size, unsigned count, int node,
				  unsigned flags, struct moirai_chan **out);

/**
 * Destroy a channel and its ring (a network channel: its endpoint, as
 * moirai_net_chan_destroy(); before its net is destroyed).  Not safe while
 * any thread is inside a call on the channel (close it and join them
 * first).
 * @param ch the channel; NULL is a no-op.
 */
MOIRAI_API void moirai_chan_destroy(struct moirai_chan *ch);

/**
 * Send up to @p n messages (burst): waits, as @p timeout_ns says, only
 * while none can be sent.
 * @param ch the channel.
 * @param msgs @p n messages of the channel's element size, contiguous.
 * @param n how many (0 returns 0 at once).
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @return the number sent, 1..n (0 only for n == 0); -EAGAIN full and
 *         @p timeout_ns == 0; -ETIMEDOUT still full at the deadline;
 *         -EPIPE closed (nothing sent); -EINVAL NULL argument or a
 *         timeout below -1.  A network channel also: -ECONNRESET the peer
 *         failed, -EPROTO it broke the protocol (nothing sent).
 *         Thread-safe per the ring's enqueue mode (a network channel:
 *         the net's owner thread only).
 */
MOIRAI_API int moirai_chan_send(struct moirai_chan *ch, const void *msgs, unsigned n,
				int64_t timeout_ns);

/**
 * Receive up to @p max messages (burst): waits, as @p timeout_ns says,
 * only while the channel is empty and open.
 * @param ch the channel.
 * @param[out] msgs room for @p max messages.
 * @param max capacity of @p msgs in messages (0 returns 0 at once).
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @return the number received, 1..max; -EAGAIN empty and @p timeout_ns ==
 *         0; -ETIMEDOUT still empty at the deadline; -EPIPE closed and
 *         drained (end of stream); -EINVAL NULL argument or bad timeout.
 *         A network channel also: -ECONNRESET (-EPROTO) the peer failed
 *         (broke the protocol) and everything that arrived before was
 *         received.  Thread-safe per the ring's dequeue mode (a network
 *         channel: the net's owner thread only).
 */
MOIRAI_API int moirai_chan_recv(struct moirai_chan *ch, void *msgs, unsigned max,
				int64_t timeout_ns);

/**
 * Close the channel: later sends fail with -EPIPE, receivers drain what is
 * left and then get -EPIPE; every parked sender and receiver is woken.
 * On a network channel either end closes both directions; the peer sees
 * it after progress.
 * @param ch the channel.
 * @return 0; -EALREADY already closed (a network channel: by either end,
 *         once this end heard of it); -EINVAL NULL.  Thread-safe (a
 *         network channel: the net's owner thread only).
 */
MOIRAI_API int moirai_chan_close(struct moirai_chan *ch);

/**
 * Whether the channel is closed.
 * @param ch the channel.
 * @return true once moirai_chan_close() was called (a network channel:
 *         on either end, as far as this end knows, or the connection
 *         failed); false for NULL.  Thread-safe (a network channel: the
 *         net's owner thread only).
 */
MOIRAI_API bool moirai_chan_is_closed(const struct moirai_chan *ch);

/**
 * Message size of the channel.
 * @param ch the channel.
 * @return the message size in bytes; 0 for NULL.  Thread-safe.
 */
MOIRAI_API unsigned moirai_chan_elem_size(const struct moirai_chan *ch);

/**
 * Messages in the channel's ring.
 * @param ch the channel.
 * @return messages waiting now (a snapshot); on a network channel those
 *         that arrived at this end and are unread (no progress is made);
 *         0 for NULL.  Thread-safe (a network channel: owner thread only).
 */
MOIRAI_API unsigned moirai_chan_count(const struct moirai_chan *ch);

/**
 * The ring under the channel (for stats and moirai_ring_info; sending on it
 * directly bypasses wake-ups and close).
 * @param ch the channel.
 * @return the ring, owned by the channel; NULL for NULL and for a network
 *         channel, which has no ring (moirai_net_chan_of() gives its
 *         endpoint).  Thread-safe.
 */
MOIRAI_API struct moirai_ring *moirai_chan_ring(struct moirai_chan *ch);

/**
 * Read the slow-path counters.  A network channel's are zero (it parks on
 * its net's event fd, not on the channel's futexes): its own counters are
 * moirai_net_chan_stats() on moirai_net_chan_of().
 * @param ch the channel.
 * @param[out] out the counters.
 * @return 0; -EINVAL NULL argument.  Thread-safe (relaxed snapshots).
 */
MOIRAI_API int moirai_chan_stats(const struct moirai_chan *ch, struct moirai_chan_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_CHANNEL_H */
