/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private layout of the shared-memory transport, shared by ring/shm.c
 * (segment lifecycle, header checks, recovery), ring/shm_file.c (the file:
 * naming, ownership, byte-range locks, reclaim), ring/shm_guard.c (the
 * SIGBUS guard) and ring/shm_msg.c (alloc, send, receive, free, waiting).
 * The header struct is the on-disk (in-/dev/shm) format: change it only
 * with MOIRAI__SHM_VERSION.  Never installed.
 *
 * Trust: everything in the segment is writable by the peer, which may be
 * buggy or hostile.  This process therefore keeps its own copy of every
 * value it indexes with (geometry, ring masks, its ring positions, buffer
 * states, received lengths) and treats each word it reads from the segment
 * as input: read once, validated or clamped, never used as an offset
 * without a local mask.
 */
#ifndef MOIRAI_SHM_INT_H
#define MOIRAI_SHM_INT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "internal.h"
#include "moirai/shm.h"
#include "waitq.h"

#define MOIRAI__SHM_MAGIC   0x4853494152494f4dULL /* "MOIRAISH" little-endian */
#define MOIRAI__SHM_VERSION 2u			  /* 2: moirai index rings, lock bytes */
#define MOIRAI__SHM_MSG_HDR 64u			  /* buffer header before the payload */

/*
 * Byte-range locks on the segment file (open file description locks,
 * fcntl F_OFD_SETLK).  The kernel drops them when the last descriptor of
 * the holder's open file goes away, in particular when the process dies,
 * and no write into the segment can take or fake one: they are what
 * "alive" means.
 */
enum {
	SHM_LOCK_SIDE0 = 0, /* held by the server from create to detach */
	SHM_LOCK_SIDE1 = 1, /* held by the client from attach to detach; by the
			       server while it recovers the client slot */
	SHM_LOCK_NAME = 2,  /* held around any unlink of the name */
};

/* Side state words (advisory: liveness is the lock, see above). */
enum shm_side_state {
	SHM_SIDE_EMPTY = 0,    /* client slot open (fresh or recovered) */
	SHM_SIDE_ATTACHED = 1, /* a process uses this side */
	SHM_SIDE_DETACHED = 2, /* left cleanly, after publishing everything */
};

/* One side's block; written by that side, read by the peer. */
struct shm_side {
	alignas(64) _Atomic uint32_t state;
	_Atomic int32_t pid;	     /* diagnostics only (messages) */
	_Atomic uint64_t start_time; /* diagnostics only: /proc/PID/stat field 22 */
};

/* Wake-up event count of the data ring toward one side (lib/waitq.h). */
struct shm_wake {
	alignas(64) struct moirai__waitq wq;
};

/*
 * Published positions of one index ring; the slots (uint32 buffer
 * indexes, ring_size of them) follow.  Each word has one writer: the
 * producer publishes prod (slots before it are filled), the consumer
 * publishes cons (slots before it may be reused).  Neither side ever reads
 * back its own word: its position is kept in process memory.
 */
struct shm_ring_pub {
	alignas(64) _Atomic uint32_t prod;
	alignas(64) _Atomic uint32_t cons;
};

static_assert(sizeof(struct shm_ring_pub) == 128, "ring positions: two lines");

enum { SHM_RING_DATA0, SHM_RING_DATA1, SHM_RING_RET0, SHM_RING_RET1, SHM_RINGS };

struct shm_hdr {
	_Atomic uint64_t magic; /* written last by the creator (release) */
	uint32_t version;
	uint32_t hdr_size;   /* sizeof(struct shm_hdr) */
	uint64_t seg_size;   /* file size */
	uint32_t buf_size;   /* payload bytes per buffer */
	uint32_t bufs;	     /* buffers per side */
	uint32_t slot_size;  /* header + payload, rounded to 64 */
	uint32_t ring_size;  /* slots per ring: power of two >= bufs */
	uint64_t ring_bytes; /* positions + slots, rounded to 64 */
	uint64_t ring_off[SHM_RINGS];
	uint64_t buf_off; /* side 0 buffers, then side 1 */
	struct shm_side side[2];
	struct shm_wake wake[2]; /* wake[d]: data ring toward side d */
};

static_assert(sizeof(struct shm_hdr) % 64 == 0, "header is whole lines");
static_assert(sizeof(struct moirai__waitq) == 8, "waitq layout is part of the format");

/* Buffer header in the segment, in front of each payload. */
struct moirai_shm_msg {
	_Atomic uint32_t len; /* payload length, written by the side holding it */
	uint32_t index;	      /* informational; receivers trust the ring's index */
	char pad[MOIRAI__SHM_MSG_HDR - 8];
};

static_assert(sizeof(struct moirai_shm_msg) == MOIRAI__SHM_MSG_HDR, "message header size");

/* Local view of each buffer, per process. */
enum shm_buf_state {
	SHM_BUF_FREE = 0,     /* own: on the free stack; peer's: not held here */
	SHM_BUF_HELD = 1,     /* own: allocated, not sent */
	SHM_BUF_SENT = 2,     /* own: with the peer */
	SHM_BUF_RECEIVED = 3, /* peer's: received, not freed */
};

/*
 * Process-local lock of one ring end (the classic three-state futex lock:
 * 0 free, 1 held, 2 held and someone may sleep).  Not pthread_mutex_t: the
 * transport takes four of these per message round trip, and glibc's
 * generic mutex costs about 50 instructions per lock/unlock pair against
 * 10 here (callgrind; docs/shm.md).  Like a mutex, and unlike a spinlock,
 * a waiter sleeps in the kernel after a short spin, so a holder preempted
 * on a shared CPU (or a lower-priority holder under SCHED_FIFO) is not
 * starved by the waiters.  In process memory: the peer cannot touch it.
 */
struct shm_lock {
	_Atomic uint32_t word;
};

void moirai__shm_lock_slow(struct shm_lock *l);
void moirai__shm_unlock_wake(struct shm_lock *l);

static inline void shm_lock(struct shm_lock *l)
{
	uint32_t free_word = 0;

	/* Acquire pairs with the release exchange in shm_unlock(). */
	if (moirai_likely(atomic_compare_exchange_strong_explicit(
		    &l->word, &free_word, 1, memory_order_acquire, memory_order_relaxed)))
		return;
	moirai__shm_lock_slow(l);
}

static inline void shm_unlock(struct shm_lock *l)
{
	/* Release pairs with the acquire in shm_lock() / the slow path. */
	if (moirai_unlikely(atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2))
		moirai__shm_unlock_wake(l);
}

/*
 * One end of an index ring, in process memory: the position is ours alone,
 * the mask and capacity were computed here, and the peer's position is
 * read once per operation and clamped (ring/shm_ring.h).  The lock
 * serialises this process's threads on the end (single producer / single
 * consumer across the two processes).
 */
struct shm_ring_end {
	struct shm_lock lock;
	_Atomic uint32_t *slots;	/* in the segment */
	_Atomic uint32_t *mine;		/* our published position (segment) */
	const _Atomic uint32_t *theirs; /* the peer's published position (segment) */
	_Atomic uint32_t pos;		/* our position: the truth (written under lock) */
	uint32_t mask;			/* ring_size - 1, local */
	uint32_t capacity;		/* bufs: most entries that can be legitimately queued */
};

/*
 * SIGBUS guard entry (shm_guard.c): the address range of one mapping, so
 * that a fault inside it (the file was truncated under us) is survived.
 */
struct shm_guard {
	_Atomic uintptr_t base; /* 0: entry unused or being removed */
	_Atomic size_t len;
	_Atomic uint32_t users; /* signal handlers looking at this entry */
	_Atomic bool faulted;	/* the mapping was replaced by zero pages */
	_Atomic bool claimed;	/* entry belongs to a handle */
};

/* Layout computed from the geometry. */
struct shm_layout {
	uint32_t ring_size;
	uint64_t ring_bytes;
	uint64_t ring_off[SHM_RINGS];
	uint64_t buf_off;
	uint32_t slot_size;
	uint64_t seg_size;
};

/* Process-local handle. */
struct moirai_shm {
	struct shm_hdr *hdr;
	size_t map_len;
	struct shm_guard *guard;
	int fd;
	dev_t dev;
	ino_t ino;
	int me, peer;
	struct shm_layout layout; /* validated here; never re-read from the segment */
	uint32_t buf_size, bufs_per_side, slot_size;
	char *bufs;		    /* slot 0 of side 0 */
	struct shm_ring_end tx;	    /* data ring toward the peer: we produce */
	struct shm_ring_end rx;	    /* data ring toward us: we consume */
	struct shm_ring_end ret_tx; /* peer's buffers going back: we produce */
	struct shm_ring_end ret_rx; /* our buffers coming back; its lock also guards free_stack */
	uint32_t *free_stack;	    /* our free buffer indexes (LIFO: the last freed is warm) */
	_Atomic uint32_t free_top;
	_Atomic uint8_t *state;		  /* 2 * bufs_per_side entries */
	uint32_t *peer_len;		  /* validated length of each peer buffer received */
	_Atomic uint32_t held_peer;	  /* peer buffers received and not freed */
	uint64_t spin_ns;		  /* MOIRAI_SPIN_NS: poll this long before sleeping */
	_Atomic uint64_t next_lock_check; /* try-receive: when to look at the peer's lock again */
	_Atomic bool peer_seen;		  /* the peer has been here since create/recover */
	_Atomic bool peer_warned;	  /* one warning per handle about peer misconduct */
	char name[MOIRAI_SHM_NAME_MAX + 1];
};

/* ---- layout and handle (shm.c) ---- */

/* Layout for a geometry; 0 or -EINVAL (out of range). */
int moirai__shm_layout(uint32_t buf_size, uint32_t bufs, struct shm_layout *l);

/* Index of @msg, or -1 when it is not a slot of this segment. */
int64_t moirai__shm_index(const struct moirai_shm *seg, const struct moirai_shm_msg *msg);

static inline struct moirai_shm_msg *moirai__shm_slot(const struct moirai_shm *seg, uint32_t idx)
{
	return (struct moirai_shm_msg *)(seg->bufs + (size_t)idx * seg->slot_size);
}

/* Whether the peer has left: DETACHED, or (@check_lock) its lock is gone. */
bool moirai__shm_peer_gone(struct moirai_shm *seg, bool check_lock);

/*
 * Note that the peer has been here (it held its lock, or sent something):
 * from then on a missing lock means it died, whatever its state word says.
 */
static inline void moirai__shm_peer_seen(struct moirai_shm *seg)
{
	if (!atomic_load_explicit(&seg->peer_seen, memory_order_relaxed))
		atomic_store_explicit(&seg->peer_seen, true, memory_order_relaxed);
}

/* Local message state (shm_msg.c): free stack and ring ends. */
int moirai__shm_local_init(struct moirai_shm *seg);
void moirai__shm_local_fini(struct moirai_shm *seg);
/* Recovery: every own buffer that was with the peer is ours again. */
void moirai__shm_local_reset(struct moirai_shm *seg);

/* ---- the file (shm_file.c) ---- */

/* Name check: 0 or -EINVAL with a message. */
int moirai__shm_check_name(const char *name);
/* "/dev/shm/moirai.NAME" into @buf. */
void moirai__shm_path(const char *name, char *buf, size_t len);
#define MOIRAI__SHM_PATH_MAX (MOIRAI_SHM_NAME_MAX + 32)

/* Byte-range locks on @fd (SHM_LOCK_*). */
int moirai__shm_lock_try(int fd, int byte);		  /* 0, -EAGAIN held, -errno */
int moirai__shm_lock_wait(int fd, int byte, uint64_t ns); /* 0, -EAGAIN after @ns */
void moirai__shm_unlock(int fd, int byte);
bool moirai__shm_lock_held(int fd, int byte); /* by another open file */

/*
 * Owner and mode of an open segment: ours (euid) and closed to group and
 * other, or what @opts (MOIRAI_SHM_F_SHARED) accepts.  0 or -EACCES.
 */
int moirai__shm_check_owner(const char *name, const struct stat *st,
			    const struct moirai_shm_opts *opts);

/*
 * Create the file exclusively (reclaiming a stale one under the name
 * lock), sized and space reserved for @size bytes, with the server lock
 * held: the open descriptor, or -errno with a message.
 */
int moirai__shm_create_file(const char *name, const struct moirai_shm_opts *opts, int *fd_out);
/* Whether the file system of @fd has @size bytes free: 0 or -ENOSPC. */
int moirai__shm_check_space(const char *name, int fd, uint64_t size);
/* Size @fd to @size bytes, every page allocated: 0, -ENOSPC, -errno. */
int moirai__shm_reserve(const char *name, int fd, uint64_t size);
/* Open an existing segment for attach: checked regular file we may use. */
int moirai__shm_open_file(const char *name, const struct moirai_shm_opts *opts, int *fd_out,
			  struct stat *st);
/* Unlink the name if it still names (dev, ino), under the name lock. */
void moirai__shm_unlink_if_same(const char *name, int fd, dev_t dev, ino_t ino);

/* Identity of this process for the side block (diagnostics). */
void moirai__shm_side_claim(struct shm_side *s);

/* ---- SIGBUS guard (shm_guard.c) ---- */

/* Guard [base, base + len): 0, -EMFILE (too many segments), -errno. */
int moirai__shm_guard_add(void *base, size_t len, struct shm_guard **out);
/* Stop guarding (before munmap); waits out a handler in flight. */
void moirai__shm_guard_del(struct shm_guard *g);

static inline bool moirai__shm_faulted(const struct moirai_shm *seg)
{
	/* Relaxed: set by the handler of this process before the faulting
	 * access is restarted; a thread that misses it reads zero pages,
	 * which every reader of the segment already treats as input. */
	return atomic_load_explicit(&seg->guard->faulted, memory_order_relaxed);
}

#endif /* MOIRAI_SHM_INT_H */
