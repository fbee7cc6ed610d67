/*
 * Private layout of the shared-memory transport, shared by ring/shm.c
 * (segment lifecycle, header checks, liveness, recovery) and
 * ring/shm_msg.c (alloc, send, receive, free, waiting).  The header struct
 * is the on-disk (in-/dev/shm) format: change it only with
 * MOIRAI__SHM_VERSION.  Never installed.
 */
#ifndef MOIRAI_SHM_INT_H
#define MOIRAI_SHM_INT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <rte_config.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "internal.h"
#include "moirai/shm.h"

/*
 * Full barrier of the wake-up protocol (shm_msg.c).  GCC rejects
 * atomic_thread_fence under -fsanitize=thread (-Wtsan: TSan does not model
 * fences).  Nothing TSan checks depends on this fence (the words it orders
 * are atomics; slot ordering is rte_ring's), so only that warning is
 * silenced, only there; clang has no such warning.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
static inline void moirai__shm_full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}
#pragma GCC diagnostic pop
#else
static inline void moirai__shm_full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}
#endif

#define MOIRAI__SHM_MAGIC   0x4853494152494f4dULL /* "MOIRAISH" little-endian */
#define MOIRAI__SHM_VERSION 1u
#define MOIRAI__SHM_MSG_HDR 64u /* buffer header before the payload */

enum shm_side_state {
	SHM_SIDE_EMPTY = 0,	 /* nobody (client slot before attach/after recover) */
	SHM_SIDE_ATTACHED = 1,	 /* a process is using this side */
	SHM_SIDE_DETACHED = 2,	 /* left cleanly */
	SHM_SIDE_ATTACHING = 3,	 /* slot claimed, pid and start time being written */
	SHM_SIDE_RECOVERING = 4, /* the server is resetting the client's side */
};

/* Liveness block of one side; written by that side, read by the peer. */
struct shm_side {
	alignas(64) _Atomic uint32_t state;
	_Atomic int32_t pid;
	_Atomic uint64_t start_time; /* /proc/PID/stat field 22, clock ticks */
};

/* Wake-up word of the data ring toward one side. */
struct shm_wake {
	alignas(64) _Atomic uint32_t seq; /* bumped after every enqueue */
	_Atomic uint32_t waiters;	  /* receivers in or near futex_wait */
};

enum { SHM_RING_DATA0, SHM_RING_DATA1, SHM_RING_RET0, SHM_RING_RET1, SHM_RINGS };

struct shm_hdr {
	_Atomic uint64_t magic; /* written last by the creator (release) */
	uint32_t version;
	uint32_t hdr_size;     /* sizeof(struct shm_hdr) */
	uint64_t seg_size;     /* file size */
	uint32_t buf_size;     /* payload bytes per buffer */
	uint32_t bufs;	       /* buffers per side */
	uint32_t slot_size;    /* header + payload, rounded to 64 */
	uint32_t ring_slots;   /* rte_ring count (== bufs) */
	uint64_t ring_memsize; /* rte_ring_get_memsize_elem(4, ...) here */
	uint64_t ring_off[SHM_RINGS];
	uint64_t buf_off; /* side 0 buffers, then side 1 */
	struct shm_side side[2];
	struct shm_wake wake[2]; /* wake[d]: data ring toward side d */
};

static_assert(sizeof(struct shm_hdr) % 64 == 0, "header is whole lines");

/* Buffer header in the segment, in front of each payload. */
struct moirai_shm_msg {
	uint32_t len;	/* payload length, written by the side holding it */
	uint32_t index; /* informational; receivers trust the ring's index */
	char pad[MOIRAI__SHM_MSG_HDR - 8];
};

static_assert(sizeof(struct moirai_shm_msg) == MOIRAI__SHM_MSG_HDR, "message header size");

/* Local view of each buffer, per process. */
enum shm_buf_state {
	SHM_BUF_FREE = 0,     /* own: in the local free ring, or with no owner */
	SHM_BUF_HELD = 1,     /* own: allocated, not sent */
	SHM_BUF_SENT = 2,     /* own: with the peer */
	SHM_BUF_RECEIVED = 3, /* peer's: received, not freed */
};

/* Process-local handle. */
struct moirai_shm {
	struct shm_hdr *hdr;
	size_t map_len;
	int fd;
	dev_t dev;
	ino_t ino;
	int me, peer;
	struct rte_ring *rx;	     /* data ring toward me: I consume */
	struct rte_ring *tx;	     /* data ring toward peer: I produce */
	struct rte_ring *ret_rx;     /* my buffers coming back: I consume */
	struct rte_ring *ret_tx;     /* peer's buffers going back: I produce */
	struct rte_ring *free_local; /* my free buffer indexes (process memory) */
	size_t free_local_len;
	char *bufs; /* slot 0 of side 0 */
	uint32_t slot_size, buf_size, bufs_per_side;
	_Atomic uint8_t *state;	    /* 2 * bufs_per_side entries */
	uint32_t *peer_len;	    /* validated length of each peer buffer received */
	_Atomic uint32_t held_peer; /* peer buffers received and not freed */
	uint64_t spin_ns;	    /* MOIRAI_SPIN_NS: poll this long before sleeping */
	char name[MOIRAI_SHM_NAME_MAX + 1];
};

/* Layout computed from the geometry; 0 or -EINVAL. */
struct shm_layout {
	uint64_t ring_memsize;
	uint64_t ring_off[SHM_RINGS];
	uint64_t buf_off;
	uint32_t slot_size;
	uint64_t seg_size;
};

int moirai__shm_layout(uint32_t buf_size, uint32_t bufs, struct shm_layout *l);

/* Liveness of a side recorded in the header (pid + start time, not zombie). */
bool moirai__shm_side_alive(const struct shm_side *s);

/* Message <-> index helpers. */
static inline struct moirai_shm_msg *moirai__shm_slot(const struct moirai_shm *seg, uint32_t idx)
{
	return (struct moirai_shm_msg *)(seg->bufs + (size_t)idx * seg->slot_size);
}

/* Index of @msg, or -1 when it is not a slot of this segment. */
int64_t moirai__shm_index(const struct moirai_shm *seg, const struct moirai_shm_msg *msg);

/* Local free ring of the handle (shm_msg.c). */
int moirai__shm_local_init(struct moirai_shm *seg);
void moirai__shm_local_fini(struct moirai_shm *seg);

/* Wake receivers on the data ring toward side @to. */
void moirai__shm_wake(struct moirai_shm *seg, int to);

#endif /* MOIRAI_SHM_INT_H */
