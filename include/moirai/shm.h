/**
 * @file moirai/shm.h
 * @brief Zero-copy message transport between two processes through a named
 * shared-memory segment.
 *
 * Design: one process creates a segment (the server, side 0), one other
 * process attaches to it by name (the client, side 1).  The segment is the
 * file /dev/shm/moirai.NAME (shm_open), chosen over a memfd passed on a
 * Unix socket because a name is all a client needs (no rendezvous socket,
 * no fd passing), the segment can be inspected with ls, and a survivor can
 * remove it with one unlink.  The price of a name, a file left behind when
 * both sides die, is paid back by moirai_shm_create(), which reclaims a
 * segment whose processes are all dead.
 *
 * The segment holds a header (magic, version, sizes, offsets, one liveness
 * block per side), four rte_rings of 32-bit buffer indexes and the message
 * buffers, split in two halves: each side allocates only from its own
 * half.  A message is a buffer plus a length; what travels through the
 * rings is the buffer's index, never a pointer, because the two processes
 * map the segment at different addresses.
 *
 *   data ring to side d  : messages sent to d (producer: the other side)
 *   return ring to side d: d's buffers freed by the other side
 *
 * Each end of each ring is used by the threads of one process only, so a
 * peer that dies in the middle of a ring operation can never stall the
 * survivor's end.  Within one process every call is MT-safe (the rings are
 * in HTS mode); moirai_shm_recover() and detach/destroy are not safe
 * concurrently with other calls on the same handle.
 *
 * Liveness: each side records its pid and process start time (from
 * /proc/PID/stat, so a reused pid is not mistaken for the peer) and a state
 * word.  moirai_shm_peer_alive() checks both; a blocked receive re-checks
 * every 10 ms.  Both processes must share a pid namespace.
 *
 * A dead or departed client is recovered by the server with
 * moirai_shm_recover(), after which a new client may attach.  A surviving
 * client tears down with moirai_shm_destroy(), which unlinks the name.
 */
#ifndef MOIRAI_SHM_H
#define MOIRAI_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Process-local handle on a segment. */
struct moirai_shm;
/** A message buffer inside a segment (process-local address). */
struct moirai_shm_msg;

/** Longest segment name. */
#define MOIRAI_SHM_NAME_MAX 64
/** Largest message buffer. */
#define MOIRAI_SHM_BUF_MAX (16u << 20)
/** Most buffers per side. */
#define MOIRAI_SHM_BUFS_MAX 65536u
/** Most messages in one moirai_shm_send_burst() / moirai_shm_recv_burst(). */
#define MOIRAI_SHM_BURST_MAX 256u

/** Segment geometry; zero-initialised = defaults. */
struct moirai_shm_opts {
	uint32_t buf_size; /**< bytes per message buffer, 0 = 2048 */
	uint32_t bufs;	   /**< buffers per side, 0 = 256 */
	bool bind_node;	   /**< bind the segment to @c node (false: first touch) */
	int node;	   /**< OS NUMA node, used when @c bind_node is set;
			        MOIRAI_NODE_ANY = the caller's node */
};

/**
 * Create segment @p name as the server (side 0).  A leftover segment of
 * that name whose server and client are both dead is reclaimed.
 * @param name 1..MOIRAI_SHM_NAME_MAX characters from [A-Za-z0-9._-], not
 *        starting with '.'; the file is /dev/shm/moirai.NAME.
 * @param opts geometry, NULL for defaults.
 * @param[out] out the handle.
 * @return 0; -EINVAL bad name, NULL out, buf_size or bufs out of range, or
 *         a node that is not allowed; -EEXIST a live segment has that name;
 *         -ENOMEM; other -errno from shm_open/ftruncate/mmap. Thread-safe.
 */
MOIRAI_API int moirai_shm_create(const char *name, const struct moirai_shm_opts *opts,
				 struct moirai_shm **out);

/**
 * Attach to segment @p name as the client (side 1), after checking its
 * header.
 * @param name as for moirai_shm_create().
 * @param[out] out the handle.
 * @return 0; -EINVAL bad name or NULL out; -ENOENT no such segment;
 *         -EPROTO not a moirai segment (magic) or another layout version or
 *         ring ABI; -EBADMSG truncated file or inconsistent sizes/offsets;
 *         -EBUSY a client is attached (or departed and the server has not
 *         recovered yet); -ECONNREFUSED the server is gone; -ENOMEM.
 *         moirai_last_error() says which check failed. Thread-safe.
 */
MOIRAI_API int moirai_shm_attach(const char *name, struct moirai_shm **out);

/**
 * Leave the segment: the peer's receives return -EPIPE once drained.  The
 * name stays (a new server can reclaim it).  NULL is a no-op.  Messages
 * obtained from this handle become invalid.  Not safe concurrently with
 * other calls on @p seg.
 * @param seg the handle.
 */
MOIRAI_API void moirai_shm_detach(struct moirai_shm *seg);

/**
 * Detach and unlink the segment's name (if it still names this segment),
 * so that no file is left behind.  Either side may call it; it is how a
 * survivor tears down.  NULL is a no-op.  Not safe concurrently with other
 * calls on @p seg.
 * @param seg the handle.
 */
MOIRAI_API void moirai_shm_destroy(struct moirai_shm *seg);

/**
 * Take a buffer of this side for a message of @p len bytes.
 * @param seg the handle.
 * @param len message length, 0..buffer size.
 * @param[out] msg the buffer.
 * @return 0; -EINVAL NULL argument; -EMSGSIZE len above the buffer size;
 *         -ENOBUFS every buffer of this side is in use (the peer has not
 *         freed what it received). MT-safe.
 */
MOIRAI_API int moirai_shm_alloc(struct moirai_shm *seg, size_t len, struct moirai_shm_msg **msg);

/**
 * Send a buffer obtained from moirai_shm_alloc() to the peer.  Never
 * blocks.  On success the buffer belongs to the peer.
 * @param seg the handle.
 * @param msg the message.
 * @return 0; -EINVAL NULL, not a buffer of this segment, not allocated by
 *         this side, or already sent/freed (nothing sent); -EPIPE the peer
 *         has detached (the message stays ours). MT-safe.
 */
MOIRAI_API int moirai_shm_send(struct moirai_shm *seg, struct moirai_shm_msg *msg);

/**
 * Send @p n messages at once, all or none, in array order: one ring
 * operation and at most one wake-up for the batch.
 * @param seg the handle.
 * @param msgs buffers from moirai_shm_alloc(), each held by this side.
 * @param n 0..MOIRAI_SHM_BURST_MAX.
 * @return 0; -EINVAL NULL, n too large, or any message not a held buffer of
 *         this side (a duplicate in the array included; nothing sent);
 *         -EPIPE the peer has detached. MT-safe.
 */
MOIRAI_API int moirai_shm_send_burst(struct moirai_shm *seg, struct moirai_shm_msg *const *msgs,
				     unsigned n);

/**
 * Receive up to @p max messages at once, in send order, waiting like
 * moirai_shm_recv() while none is available.
 * @param seg the handle.
 * @param[out] msgs receives the messages.
 * @param max 1..MOIRAI_SHM_BURST_MAX.
 * @param timeout_ns as for moirai_shm_recv().
 * @return the number received (>= 1); -EAGAIN, -ETIMEDOUT, -EPIPE as for
 *         moirai_shm_recv(); -EBADMSG when every message taken was invalid
 *         (invalid ones are dropped, valid ones delivered); -EINVAL. MT-safe.
 */
MOIRAI_API int moirai_shm_recv_burst(struct moirai_shm *seg, struct moirai_shm_msg **msgs,
				     unsigned max, int64_t timeout_ns);

/**
 * Receive the next message from the peer, in send order.
 * @param seg the handle.
 * @param[out] msg the message; free it with moirai_shm_free().
 * @param timeout_ns 0 to poll, MOIRAI_TIMEOUT_FOREVER, or nanoseconds.
 * @return 0; -EAGAIN nothing and timeout 0; -ETIMEDOUT; -EPIPE nothing
 *         left and the peer has detached or died; -EBADMSG the peer sent a
 *         bad buffer index or length (the message is dropped); -EINVAL NULL
 *         argument. MT-safe.
 */
MOIRAI_API int moirai_shm_recv(struct moirai_shm *seg, struct moirai_shm_msg **msg,
			       int64_t timeout_ns);

/**
 * Release a message: a received one goes back to the peer, an allocated
 * one that was never sent back to this side's free buffers.
 * @param seg the handle.
 * @param msg the message.
 * @return 0; -EINVAL NULL, not a buffer of this segment, or not held
 *         (double free). MT-safe.
 */
MOIRAI_API int moirai_shm_free(struct moirai_shm *seg, struct moirai_shm_msg *msg);

/** @return the message's payload (inside the segment, 64-byte aligned). */
MOIRAI_API void *moirai_shm_msg_data(struct moirai_shm_msg *msg);

/**
 * Length of a message of @p seg.  For a received message this is the
 * length validated when it was received (kept in this process: the peer
 * can still write the shared header); for one of ours, the header's value
 * capped at the buffer size.  The payload bytes themselves stay writable
 * by the peer: treat them as untrusted input.
 * @return the length in bytes; 0 for NULL or a pointer not of @p seg.
 *         Thread-safe.
 */
MOIRAI_API size_t moirai_shm_msg_len(const struct moirai_shm *seg,
				     const struct moirai_shm_msg *msg);

/**
 * Change the length of a message not yet sent (e.g. alloc the maximum,
 * fill, then trim).
 * @return 0; -EINVAL NULL or not held; -EMSGSIZE above the buffer size.
 */
MOIRAI_API int moirai_shm_msg_set_len(struct moirai_shm *seg, struct moirai_shm_msg *msg,
				      size_t len);

/** @return the buffer size of the segment; 0 for NULL. */
MOIRAI_API size_t moirai_shm_buf_size(const struct moirai_shm *seg);

/** @return 0 for the server (creator), 1 for the client; -1 for NULL. */
MOIRAI_API int moirai_shm_side(const struct moirai_shm *seg);

/**
 * Whether the peer is attached and its process is alive (pid and start
 * time match, not a zombie).
 * @return true or false (false for NULL, or before a client attached).
 *         Thread-safe.
 */
MOIRAI_API bool moirai_shm_peer_alive(const struct moirai_shm *seg);

/**
 * Server side: after the client died or detached, take back every server
 * buffer the client held or had not received yet, empty all rings, and
 * open the client slot for a new client.  Receive what the old client sent
 * before calling it: messages still queued are discarded.
 * @param seg the server's handle.
 * @return 0; -EINVAL NULL or called by the client; -EBUSY the client is
 *         alive, or this side still holds messages received from it (free
 *         them first). Not safe concurrently with other calls on @p seg.
 */
MOIRAI_API int moirai_shm_recover(struct moirai_shm *seg);

/**
 * Buffers of this side not in use (free here or returned by the peer but
 * not yet collected).  Exact when no call is in flight.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API unsigned moirai_shm_free_count(const struct moirai_shm *seg);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_SHM_H */
