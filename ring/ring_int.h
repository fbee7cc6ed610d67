/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to ring/: the moirai header that sits in front of every rte_ring,
 * the memory seam, and the name registry.  Never installed.
 */
#ifndef MOIRAI_RING_INT_H
#define MOIRAI_RING_INT_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "list.h"
#include "moirai/ring.h"

#ifndef MOIRAI_RING_INLINE
#error "the library is built with -DMOIRAI_RING_INLINE (Makefile)"
#endif

#define MOIRAI__RING_MAGIC 0x6d6f7272u /* "morr" */

/*
 * Lives at the start of the ring's memory; the rte_ring follows at
 * MOIRAI__RING_HDR_SIZE so the inline fast path reaches it with a constant
 * offset.  Cold fields only: nothing here is touched by enqueue/dequeue.
 */
struct moirai_ring {
	uint32_t magic;
	int node;	/* OS node of the memory, -1 unknown */
	unsigned flags; /* resolved MOIRAI_RING_* flags */
	unsigned esize;
	size_t memsize;		 /* bytes in use from the start of the header */
	size_t maplen;		 /* bytes acquired by create, 0 = caller-owned */
	struct moirai__list reg; /* registry list, under the registry lock */
	char name[MOIRAI_RING_NAME_MAX + 1];
};

static_assert(sizeof(struct moirai_ring) <= MOIRAI__RING_HDR_SIZE,
	      "ring header must fit before the rte_ring");
static_assert(MOIRAI_RING_NAME_MAX + 1 == RTE_RING_NAMESIZE, "ring names are DPDK's");
static_assert(MOIRAI_RING_MAX_COUNT == RTE_RING_SZ_MASK, "ring counts are DPDK's");
static_assert(MOIRAI__RING_HDR_SIZE % MOIRAI_CACHE_LINE == 0,
	      "the rte_ring must start on a cache line");

/*
 * Memory seam of the ring layer (rings, channels, pools): the node arena
 * (moirai_malloc_node_flags).  Contract: on success *out points to memory
 * that is NOT zeroed (each user initialises its header), aligned to at
 * least a cache line, placed on @node (an OS node, already validated);
 * returns 0 or -errno.  release takes what acquire gave, with the same @len.
 */
int moirai__ring_mem_acquire(size_t len, int node, void **out);
void moirai__ring_mem_release(void *mem, size_t len);

/*
 * Registry (ring_registry.c).  Setup holds the lock across
 * check_free_locked (-EEXIST taken name, -EBUSY memory of a live ring),
 * initialisation and register_locked.
 */
void moirai__ring_registry_lock(void);
void moirai__ring_registry_unlock(void);
int moirai__ring_check_free_locked(const void *mem, size_t len, const char *name);
void moirai__ring_register_locked(struct moirai_ring *r);
int moirai__ring_unregister(struct moirai_ring *r);

/* Debug walker: the header and the rte_ring agree. */
bool moirai__ring_is_valid(const struct moirai_ring *r);

#endif /* MOIRAI_RING_INT_H */
