/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/shm.h
 * @brief Zero-copy message transport between two processes through a named
 * shared-memory segment.
 *
 * Design: one process creates a segment (the server, side 0), one other
 * process attaches to it by name (the client, side 1).  The segment is the
 * file /dev/shm/moirai.NAME, chosen over a sealed memfd passed on a Unix
 * socket because a name is all a client needs (no rendezvous socket, no
 * server thread handing out descriptors), the segment can be inspected
 * with ls, and a survivor can remove it with one unlink.  The price of a
 * name, a file left behind when both sides die, is paid back by
 * moirai_shm_create(), which reclaims a segment whose processes are gone.
 *
 * The segment holds a header (magic, version, geometry, one state block
 * per side, two futex words), four index rings of 32-bit buffer indexes
 * and the message buffers, split in two halves: each side allocates only
 * from its own half.  A message is a buffer plus a length; what travels
 * through the rings is the buffer's index, never a pointer, because the
 * two processes map the segment at different addresses.
 *
 *   data ring to side d  : messages sent to d (producer: the other side)
 *   return ring to side d: d's buffers freed by the other side
 *
 * The peer is input.  It may be buggy or hostile and can write any byte of
 * the segment at any time, so:
 * - each process keeps the geometry, the ring masks and its own ring
 *   positions in its own memory; a position the peer publishes is read
 *   once per operation and clamped; every index it sends is validated.  No
 *   write by the peer can make this process access memory outside its
 *   mapping, loop without bound on a word the peer controls, or wait past
 *   its timeout; and -EPIPE (end of stream) is never returned while a
 *   message the peer published before leaving is still queued.
 * - liveness is a byte-range lock (F_OFD_SETLK) each side holds on the
 *   file while attached; the kernel drops it when the process dies, and no
 *   write into the segment can fake it.
 * - a peer that truncates the file cannot kill this process with SIGBUS:
 *   a process-wide SIGBUS handler recognises faults inside moirai segments,
 *   maps zero pages over the segment and marks it broken; every later call
 *   on the handle returns -EFAULT, and payload pointers still held read
 *   zeros.  A program that installs its own SIGBUS handler after creating
 *   or attaching must chain to the previous one (the handler sigaction()
 *   returned), or truncation is fatal again; one that merely resets SIGBUS
 *   to the default gets moirai's handler back at the next create/attach.
 *   The space of a segment is reserved at create, so a full /dev/shm
 *   cannot raise SIGBUS either.
 * - payload bytes and the length field of a buffer stay writable by the
 *   peer while we hold it: treat received payloads as untrusted input.
 * - the file must belong to the caller (effective uid) and be closed to
 *   group and other, unless both sides opt into sharing it with a group
 *   (MOIRAI_SHM_F_SHARED).
 *
 * Threads: each ring is single producer / single consumer across the two
 * processes; within one process every message call is MT-safe (each ring
 * end has its own lock, in process memory).  moirai_shm_recover() and
 * detach/destroy are not safe concurrently with other calls on the same
 * handle.  A process forked while it holds a handle shares the handle's
 * open file, and with it the liveness lock: the side counts as alive until
 * every such process has exited, exec'd or detached.
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

/** Longest segment name, in characters, not counting the NUL. */
#define MOIRAI_SHM_NAME_MAX 64
/** Largest message buffer. */
#define MOIRAI_SHM_BUF_MAX (16u << 20)
/** Most buffers per side. */
#define MOIRAI_SHM_BUFS_MAX 65536u
/** Most messages in one moirai_shm_send_bulk() / moirai_shm_recv_burst(). */
#define MOIRAI_SHM_BURST_MAX 256u

/** create: bind the segment's memory to @c opts.node (otherwise first touch). */
#define MOIRAI_SHM_F_BIND_NODE (1u << 0)
/**
 * create: give the file group @c opts.gid and mode @c opts.mode; attach:
 * also accept a file that belongs to another user when its group is
 * @c opts.gid, and group or other permissions up to @c opts.mode.  Without
 * it, create makes the file 0600 and attach refuses any file not owned by
 * the caller or open to group or other (-EACCES): another local user could
 * otherwise put their own segment under the name.
 */
#define MOIRAI_SHM_F_SHARED (1u << 1)

/**
 * Segment options; zero-initialised = defaults.  What (geometry), then
 * where (node), then how (flags and access).  attach reads only @c flags
 * (MOIRAI_SHM_F_SHARED), @c mode and @c gid, so both sides may pass the
 * same options.
 */
struct moirai_shm_opts {
	uint32_t buf_size; /**< bytes per message buffer, 0 = 2048 */
	uint32_t bufs;	   /**< buffers per side, 0 = 256 */
	int node;	   /**< with MOIRAI_SHM_F_BIND_NODE: OS NUMA node, or
			        MOIRAI_NODE_ANY for the caller's node */
	unsigned flags;	   /**< MOIRAI_SHM_F_* */
	uint32_t mode;	   /**< with MOIRAI_SHM_F_SHARED: permission bits, within
			        0666 and including 0600, e.g. 0660 */
	uint32_t gid;	   /**< with MOIRAI_SHM_F_SHARED: the trusted group */
};

/**
 * Create segment @p name as the server (side 0).  The file is created
 * exclusively (O_EXCL, mode 0600 unless MOIRAI_SHM_F_SHARED) and all its
 * space is reserved now, so that a full /dev/shm is an error here and not
 * a SIGBUS later.  A leftover segment of that name whose server and
 * client are both gone is reclaimed; of several processes reclaiming the
 * same name at once, exactly one succeeds.
 * @param name 1..MOIRAI_SHM_NAME_MAX characters from [A-Za-z0-9._-], not
 *        starting with '.'; the file is /dev/shm/moirai.NAME.
 * @param opts geometry, placement and access; NULL for defaults.
 * @param[out] out the handle.
 * @return 0; -EINVAL bad name, NULL out, buf_size or bufs out of range,
 *         unknown flags, a shared mode outside 0600..0666, or a negative
 *         node other than MOIRAI_NODE_ANY; -ENODEV no such node (or no
 *         memory on it); -EPERM the cgroup does not allow the node;
 *         -EEXIST the name is in use, or names something that is not a
 *         reclaimable moirai segment of ours, or another process held its
 *         name lock for 2 s (moirai_last_error() says which); -EBUSY another process holds a lock on the new file;
 *         -ENOSPC /dev/shm cannot hold the segment; -EMFILE this process
 *         already maps 256 segments; -ENOMEM; other -errno from open,
 *         fchown, fchmod, posix_fallocate or mbind. Thread-safe.
 */
MOIRAI_API int moirai_shm_create(const char *name, const struct moirai_shm_opts *opts,
				 struct moirai_shm **out);

/**
 * Attach to segment @p name as the client (side 1), after checking the
 * file's owner and mode and the segment's header.
 * @param name as for moirai_shm_create().
 * @param opts NULL, or options whose MOIRAI_SHM_F_SHARED, @c mode and
 *        @c gid say which other owners and modes to accept (geometry and
 *        node are the server's and ignored here).
 * @param[out] out the handle.
 * @return 0; -EINVAL bad name, NULL out or unknown flags; -ENOENT no such
 *         segment; -EACCES the file is not ours or is open to group or
 *         other (see MOIRAI_SHM_F_SHARED), is a symbolic link or not a
 *         regular file; -EPROTO not a moirai segment (magic) or another
 *         layout version; -EBADMSG truncated file or inconsistent
 *         sizes/offsets; -EBUSY a client is attached, or the previous one
 *         left (or left the slot's ring positions inconsistent) and the
 *         server has not recovered yet; -ECONNREFUSED the
 *         server is gone; -EFAULT the file was truncated during attach;
 *         -EMFILE this process already maps 256 segments; -ENOMEM.
 *         moirai_last_error() says which check failed. Thread-safe.
 */
MOIRAI_API int moirai_shm_attach(const char *name, const struct moirai_shm_opts *opts,
				 struct moirai_shm **out);

/**
 * Leave the segment: the peer's receives return -EPIPE once drained, its
 * sends -EPIPE.  Releases this side's liveness lock.  The name stays (a
 * new server can reclaim it once both sides are gone).  NULL is a no-op.
 * Messages obtained from this handle become invalid.  Not safe
 * concurrently with other calls on @p seg.
 * @param seg the handle.
 */
MOIRAI_API void moirai_shm_detach(struct moirai_shm *seg);

/**
 * Detach and unlink the segment's name if it still names this segment
 * (device and inode compared under the name lock, so a newer segment that
 * reclaimed the name is never removed; the path is not opened, so
 * whatever was put under the name cannot block the call; if another
 * process holds the name lock for more than 2 s the name is left and a
 * warning logged).  Either side may call it; it is how a survivor tears
 * down.  NULL is a no-op.  Not safe concurrently with other calls on
 * @p seg.
 * @param seg the handle.
 */
MOIRAI_API void moirai_shm_destroy(struct moirai_shm *seg);

/**
 * Take a buffer of this side for a message of @p len bytes.  Never blocks.
 * @param seg the handle.
 * @param len message length, 0..buffer size.
 * @param[out] msg the buffer.
 * @return 0; -EINVAL NULL argument; -EMSGSIZE len above the buffer size;
 *         -ENOBUFS every buffer of this side is in use (the peer has not
 *         freed what it received; no message recorded, as for an empty
 *         pool); -EFAULT the segment was truncated (destroy the handle).
 *         MT-safe.
 */
MOIRAI_API int moirai_shm_alloc(struct moirai_shm *seg, size_t len, struct moirai_shm_msg **msg);

/**
 * Send a buffer obtained from moirai_shm_alloc() to the peer.  Never
 * blocks.  On success the buffer belongs to the peer.
 * @param seg the handle.
 * @param msg the message.
 * @return 0 and the errors of moirai_shm_send_bulk(). MT-safe.
 */
MOIRAI_API int moirai_shm_send(struct moirai_shm *seg, struct moirai_shm_msg *msg);

/**
 * Send @p n messages at once, all or none (bulk), in array order: one ring
 * operation and at most one wake-up for the batch.  Never blocks.
 * @param seg the handle.
 * @param msgs buffers from moirai_shm_alloc(), each held by this side.
 * @param n 0..MOIRAI_SHM_BURST_MAX.
 * @return 0; -EINVAL NULL, n too large, or any message not a held buffer of
 *         this side (a duplicate in the array included; nothing sent);
 *         -EPIPE the peer has detached (the messages stay ours); -ENOBUFS
 *         the data ring is full, which only a peer lying about its
 *         position can cause (nothing sent); -EFAULT the segment was
 *         truncated (destroy the handle). MT-safe.
 */
MOIRAI_API int moirai_shm_send_bulk(struct moirai_shm *seg, struct moirai_shm_msg *const *msgs,
				    unsigned n);

/**
 * Receive up to @p max messages at once (burst), in send order, waiting
 * like moirai_shm_recv() while none is available.
 * @param seg the handle.
 * @param[out] msgs receives the messages.
 * @param max 1..MOIRAI_SHM_BURST_MAX.
 * @param timeout_ns as for moirai_shm_recv().
 * @return the number received (>= 1); -EAGAIN, -ETIMEDOUT, -EPIPE, -EFAULT
 *         as for moirai_shm_recv(); -EBADMSG when every message taken was
 *         invalid (invalid ones are dropped, valid ones of the same batch
 *         delivered); -EINVAL NULL, max out of range or timeout below -1.
 *         MT-safe.
 */
MOIRAI_API int moirai_shm_recv_burst(struct moirai_shm *seg, struct moirai_shm_msg **msgs,
				     unsigned max, int64_t timeout_ns);

/**
 * Receive the next message from the peer, in send order.  Messages the
 * peer sent before it detached or died are always delivered before -EPIPE,
 * so a server may receive until -EPIPE and lose nothing.
 * @param seg the handle.
 * @param[out] msg the message; free it with moirai_shm_free().
 * @param timeout_ns MOIRAI_TIMEOUT_TRY, MOIRAI_TIMEOUT_FOREVER, or at most
 *        this many nanoseconds; below -1 is -EINVAL, checked first.
 * @return 0; -EAGAIN nothing and MOIRAI_TIMEOUT_TRY; -ETIMEDOUT; -EPIPE
 *         nothing left and the peer has detached or died (a try notices a
 *         death within 10 ms, a blocked receive within one 10 ms slice,
 *         and one whose timeout ends sooner looks when it ends, at most
 *         every 10 ms, so a loop of short waits notices it too);
 *         -EBADMSG the peer sent a bad buffer index or length (the message
 *         is dropped); -EFAULT the segment was truncated (destroy the
 *         handle); -EINVAL NULL argument or timeout below -1. MT-safe.
 */
MOIRAI_API int moirai_shm_recv(struct moirai_shm *seg, struct moirai_shm_msg **msg,
			       int64_t timeout_ns);

/**
 * Release a message: a received one goes back to the peer, an allocated
 * one that was never sent back to this side's free buffers.
 * @param seg the handle.
 * @param msg the message.
 * @return 0 (also after the segment was truncated: the message is then
 *         released locally); -EINVAL NULL, not a buffer of this segment, or
 *         not held (double free). MT-safe.
 */
MOIRAI_API int moirai_shm_free(struct moirai_shm *seg, struct moirai_shm_msg *msg);

/**
 * Payload of a message (inside the segment, 64-byte aligned).  The peer
 * can write these bytes at any time: treat them as untrusted input.
 * @param msg the message.
 * @return the payload; NULL for NULL. Thread-safe.
 */
MOIRAI_API void *moirai_shm_msg_data(struct moirai_shm_msg *msg);

/**
 * Length of a message of @p seg.  For a received message this is the
 * length validated when it was received (kept in this process: the peer
 * can still write the shared header); for one of ours, the header's value
 * capped at the buffer size.
 * @param seg the handle.
 * @param msg the message.
 * @return the length in bytes; 0 for NULL or a pointer not of @p seg.
 *         Thread-safe.
 */
MOIRAI_API size_t moirai_shm_msg_len(const struct moirai_shm *seg,
				     const struct moirai_shm_msg *msg);

/**
 * Change the length of a message not yet sent (e.g. alloc the maximum,
 * fill, then trim).
 * @param seg the handle.
 * @param msg a message this side holds.
 * @param len the new length.
 * @return 0; -EINVAL NULL or not held; -EMSGSIZE above the buffer size.
 *         MT-safe (for different messages).
 */
MOIRAI_API int moirai_shm_msg_set_len(struct moirai_shm *seg, struct moirai_shm_msg *msg,
				      size_t len);

/**
 * Buffer size of the segment.
 * @param seg the handle.
 * @return bytes per buffer; 0 for NULL. Thread-safe.
 */
MOIRAI_API size_t moirai_shm_buf_size(const struct moirai_shm *seg);

/**
 * Which side this handle is.
 * @param seg the handle.
 * @return 0 for the server (creator), 1 for the client; -1 for NULL.
 *         Thread-safe.
 */
MOIRAI_API int moirai_shm_side(const struct moirai_shm *seg);

/**
 * Whether the peer is attached and alive: it holds its liveness lock on
 * the file and has not detached.  One system call (F_OFD_GETLK).
 * @param seg the handle.
 * @return true or false (false for NULL, before a client attached, or
 *         after the segment was truncated). Thread-safe.
 */
MOIRAI_API bool moirai_shm_peer_alive(const struct moirai_shm *seg);

/**
 * Server side: after the client died or detached, re-initialise the client
 * slot so that a new client may attach: take the client's lock (so none
 * can be alive or arrive meanwhile), rewrite the header from this
 * process's own copy (a client may have corrupted it), empty all rings,
 * take back every server buffer the client held or had not received, and
 * release the lock.  Receive what the old client sent before calling it:
 * messages still queued in either direction are discarded.
 * @param seg the server's handle.
 * @return 0; -EINVAL NULL or called by the client; -EBUSY the client is
 *         alive (holds its lock), or this side still holds messages
 *         received from it (free them first); -EFAULT the segment was
 *         truncated (destroy it and create a new one); other -errno from
 *         fcntl. Not safe concurrently with other calls on @p seg.
 */
MOIRAI_API int moirai_shm_recover(struct moirai_shm *seg);

/**
 * Buffers of this side not in use (free here or returned by the peer but
 * not yet collected; the peer's claim is capped).  Exact when no call is
 * in flight and the peer is honest.
 * @param seg the handle.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API unsigned moirai_shm_free_count(const struct moirai_shm *seg);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_SHM_H */
