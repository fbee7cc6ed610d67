/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/alloc.h
 * @brief NUMA-aware general-purpose allocator: node arenas, size-class
 * heaps, bounded per-thread caches, lock-free remote free, statistics.
 *
 * Design: one arena per NUMA node reserves address space (its slice of
 * a window taken at start, MOIRAI_ARENA_RESERVE per node; under an
 * RLIMIT_AS limit a quarter of the free address space, so that threads and
 * libraries keep room) and grows by further reservations when that is
 * full, giving them back when they empty.  It commits in chunks
 * (MOIRAI_ARENA_CHUNK) bound to the node with mbind before first touch,
 * backed by 2 MiB hugetlb pages, transparent huge pages or 4 KiB pages
 * (MOIRAI_HUGEPAGES = auto|hugetlb|thp|none; auto falls back in that order
 * and the stats show which was used).  Every thread gets one
 * heap per node it allocates on; a heap cuts 2 MiB segments into 64 KiB
 * slabs of one size class (16 B .. 32 KiB, 8 classes per power of two) and
 * keeps a bounded cache of free blocks per class (MOIRAI_TCACHE_MAX blocks,
 * or up to 64 KiB of blocks for classes under 1 KiB).
 * Requests up to 1 MiB take a run of slabs, larger ones whole segments.
 * A block freed by another thread is pushed on its owner heap's lock-free
 * list and reused by the owner only.  A dead thread's heap is handed,
 * with its memory, to the next thread allocating on that node.
 *
 * The malloc-like functions follow their libc namesakes: NULL with errno
 * set on failure (plus a moirai_last_error() detail); moirai_free(NULL) is
 * a no-op.  Unlike glibc, a zero size is an error (EINVAL).  Debug mode
 * (MOIRAI_DEBUG=1, read at first use) poisons freed memory and aborts with
 * a report on double free, foreign pointers and overruns of the canary
 * behind each block.  All functions are thread-safe.
 */
#ifndef MOIRAI_ALLOC_H
#define MOIRAI_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Flag for moirai_malloc_node_flags(): fall back to the nearest allowed
 *  node when the requested node cannot be used (counted in the stats). */
#define MOIRAI_ALLOC_F_PREFERRED 1u

/**
 * Allocate @p size bytes on the calling thread's NUMA node (the node it
 * ran on at its first allocation or its last cache refill), aligned to 16.
 * @param size bytes, > 0, at most MOIRAI_ARENA_RESERVE / 2.
 * @return the block; NULL with errno EINVAL (size 0) or ENOMEM (too large,
 *         the node is out of memory, or the address-space limit is
 *         reached). Thread-safe.
 */
MOIRAI_API void *moirai_malloc(size_t size);

/**
 * Allocate @p size bytes whose pages are bound to NUMA node @p node.
 * @param size bytes, > 0.
 * @param node OS node index, or MOIRAI_NODE_ANY for the caller's node.
 * @return the block; NULL with errno EINVAL (size 0, or a negative node
 *         other than MOIRAI_NODE_ANY), ENODEV (no such node, no memory, or
 *         binding refused), EPERM (the cgroup does not allow the node),
 *         ENOMEM.  Thread-safe.
 */
MOIRAI_API void *moirai_malloc_node(size_t size, int node);

/**
 * moirai_malloc_node() with an alignment and flags.
 * @param size bytes, > 0.
 * @param align power of two (0 means 16), at most 1 GiB.
 * @param node OS node index or MOIRAI_NODE_ANY.
 * @param flags 0 or MOIRAI_ALLOC_F_PREFERRED: an unusable @p node falls back
 *        to the nearest usable one (the arena stats count it).
 * @return the block; NULL with errno EINVAL (size 0, bad alignment, unknown
 *         flags, negative node), ENODEV or EPERM (node unusable, as for
 *         moirai_malloc_node(), without MOIRAI_ALLOC_F_PREFERRED), ENOMEM.
 *         Thread-safe.
 */
MOIRAI_API void *moirai_malloc_node_flags(size_t size, size_t align, int node, unsigned flags);

/**
 * Allocate a zeroed array of @p n elements of @p size bytes.
 * @param n element count, > 0.
 * @param size bytes per element, > 0.
 * @return the block; NULL with errno EINVAL (a zero count or size) or
 *         ENOMEM (n * size overflows, or out of memory). Thread-safe.
 */
MOIRAI_API void *moirai_calloc(size_t n, size_t size);

/**
 * Resize a block, keeping its content up to the smaller size.
 * @param p a block from this allocator, or NULL (then like moirai_malloc).
 * @param size new size; 0 frees @p p and returns NULL (errno unchanged).
 * @return the block (maybe moved); NULL with errno ENOMEM, @p p intact.
 *         Thread-safe (not concurrently with another call on @p p).
 */
MOIRAI_API void *moirai_realloc(void *p, size_t size);

/**
 * Allocate @p size bytes aligned to @p align on the caller's node.
 * @param align a power of two, at most 1 GiB (2 MiB and beyond are served
 *        from whole segments).
 * @param size bytes, > 0 (need not be a multiple of @p align).
 * @return the block; NULL with errno EINVAL (bad alignment or size 0) or
 *         ENOMEM. Thread-safe.
 */
MOIRAI_API void *moirai_aligned_alloc(size_t align, size_t size);

/**
 * Free a block from any thread.  NULL is a no-op.  A pointer outside
 * moirai's arenas is reported (moirai_last_error) and ignored.  Inside an
 * arena, the fast paths trust the caller: an interior pointer or a double
 * free is undefined behaviour unless debug mode (MOIRAI_DEBUG=1) is on,
 * which checks every free and aborts with a report.
 * @param p the block. Thread-safe (each block freed once).
 */
MOIRAI_API void moirai_free(void *p);

/**
 * Bytes usable in the block at @p p (at least what was asked).
 * @param p a block from this allocator.
 * @return the size; 0 for NULL, or for a foreign or interior pointer (which
 *         is recorded for moirai_last_error()). Thread-safe.
 */
MOIRAI_API size_t moirai_usable_size(const void *p);

/**
 * NUMA node whose arena holds @p p.
 * @param p a block from this allocator (any address inside it).
 * @return the OS node index; -EINVAL when @p p is not from this allocator.
 *         Thread-safe.
 */
MOIRAI_API int moirai_alloc_ptr_node(const void *p);

/**
 * Whether the allocator can place memory on @p node: it exists, the cgroup
 * allows it, and binding to it has not failed.  Decided at the first
 * allocator use (a later mbind failure turns a node unavailable).
 * @param node OS node index.
 * @return true when usable; false otherwise, also for a node out of range.
 *         Thread-safe.
 */
MOIRAI_API bool moirai_alloc_node_is_available(int node);

/**
 * Give the calling thread's cached blocks back to its slabs and collect
 * blocks other threads freed to it, then release empty slabs and segments
 * (as thread exit does).  Also collects the heaps exited threads left
 * behind, which hold blocks freed to them after their owner exited.
 * Useful before reading stats.  Thread-safe.
 */
MOIRAI_API void moirai_alloc_thread_flush(void);

/** Allocator statistics of one node (or one heap), in bytes and counts. */
struct moirai_alloc_stats {
	int node;		      /**< OS node index */
	bool available;		      /**< memory can be placed on the node */
	const char *page_mode;	      /**< current mode: "hugetlb", "thp", "none" */
	uint64_t reserved;	      /**< address space reserved (window slice and extents) */
	uint64_t committed;	      /**< bytes committed (mapped RW, bound) */
	uint64_t committed_hugetlb;   /**< of which 2 MiB hugetlb pages */
	uint64_t committed_thp;	      /**< of which advised for THP */
	uint64_t committed_small;     /**< of which 4 KiB pages */
	uint64_t in_use;	      /**< bytes in blocks held by threads,
				       *   including their bounded caches */
	uint64_t free;		      /**< committed bytes not in use */
	uint64_t huge_in_use;	      /**< bytes in whole-segment allocations */
	uint64_t decommitted;	      /**< bytes returned to the system so far */
	uint64_t local_frees;	      /**< frees by the owning thread */
	uint64_t remote_frees;	      /**< frees from other threads */
	uint64_t hugetlb_fallbacks;   /**< commits that fell back from hugetlb */
	uint64_t preferred_fallbacks; /**< allocations moved to a nearer node */
	uint64_t heaps;		      /**< heaps created on the node */
	uint64_t heaps_abandoned;     /**< of which waiting for a new thread */
};

/**
 * Read the statistics of node @p node's arena and all its heaps.
 * @param node OS node index, or MOIRAI_NODE_ANY for the sum of all nodes.
 * @param[out] out filled on success.
 * @return 0; -EINVAL NULL @p out or a negative node other than
 *         MOIRAI_NODE_ANY; -ENODEV no such node; -ENOMEM when the
 *         allocator could not start. Thread-safe (values are a racy
 *         snapshot while other threads allocate).
 */
MOIRAI_API int moirai_alloc_stats_get(int node, struct moirai_alloc_stats *out);

/**
 * Read the statistics of the calling thread's heap on @p node: in_use,
 * local/remote frees, and committed = bytes of slabs the heap holds; the
 * other fields (reserved, committed by page kind, huge, fallbacks, heaps)
 * describe the node.
 * @param node OS node index.
 * @param[out] out filled on success.
 * @return 0; -EINVAL NULL @p out or a negative node; -ENODEV no such node;
 *         -ENOENT the thread has no heap there; -ENOMEM the allocator could
 *         not start.  Thread-safe.
 */
MOIRAI_API int moirai_alloc_heap_stats_get(int node, struct moirai_alloc_stats *out);

/**
 * Print one aligned line per node (and a total) to @p f.
 * @param f the stream.
 * @return 0; -EINVAL NULL @p f; -EIO write error; -ENOMEM the allocator
 *         could not start. Thread-safe.
 */
MOIRAI_API int moirai_alloc_stats_print(FILE *f);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_ALLOC_H */
