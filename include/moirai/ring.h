/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/ring.h
 * @brief Bounded lock-free rings of pointers or fixed-size elements, placed
 *        on a NUMA node, found by name.
 *
 * Design: a moirai ring is DPDK's rte_ring, not a re-implementation.  The
 * library acquires memory bound to the requested node (moirai_ring_create)
 * or takes the caller's (moirai_ring_init), puts a small moirai header in
 * front of it and initialises the rte_ring behind that header with
 * rte_ring_init() (never rte_eal_init or rte_ring_create: no EAL is needed).
 * The enqueue/dequeue fast paths are DPDK's ring bodies: they return
 * counts, never log, never touch errno.  Bulk calls move all @c n objects
 * or none; burst calls move as many as they can (0..n).
 *
 * Out of line by default, inline on request: by default the fast paths
 * are ordinary exported functions and this header includes no DPDK header,
 * so an application sees none of DPDK's macros (likely, container_of,
 * <sys/queue.h>, ...) or warnings.  A program that wants the ring bodies
 * inlined into its own code defines MOIRAI_RING_INLINE before including
 * moirai headers and adds DPDK's include path (pkg-config --cflags
 * libdpdk); the same names then become static inline functions
 * (moirai/ring_inline.h), which bakes DPDK's ring layout into the program
 * (see docs/abi.md).  What the call costs is measured by moirai-bench ring
 * (impl moirai_outline, the default, vs moirai, inlined, vs rte_ring).
 *
 * Synchronisation modes and how the flags map to DPDK:
 *
 * | moirai flag                 | rte_ring flag        | mode                          |
 * |-----------------------------|----------------------|-------------------------------|
 * | MOIRAI_RING_F_SP_ENQ        | RING_F_SP_ENQ        | single producer               |
 * | MOIRAI_RING_F_MP_ENQ        | (none: DPDK default) | classic multi-producer (MP)   |
 * | MOIRAI_RING_F_MP_RTS_ENQ    | RING_F_MP_RTS_ENQ    | MP, relaxed tail sync (RTS)   |
 * | MOIRAI_RING_F_MP_HTS_ENQ    | RING_F_MP_HTS_ENQ    | MP, head/tail sync (HTS)      |
 * | MOIRAI_RING_F_SC_DEQ        | RING_F_SC_DEQ        | single consumer               |
 * | MOIRAI_RING_F_MC_DEQ        | (none: DPDK default) | classic multi-consumer (MC)   |
 * | MOIRAI_RING_F_MC_RTS_DEQ    | RING_F_MC_RTS_DEQ    | MC, relaxed tail sync (RTS)   |
 * | MOIRAI_RING_F_MC_HTS_DEQ    | RING_F_MC_HTS_DEQ    | MC, head/tail sync (HTS)      |
 * | MOIRAI_RING_F_EXACT_SZ      | RING_F_EXACT_SZ      | capacity == count exactly     |
 * | (no enqueue mode named)     | RING_F_MP_RTS_ENQ    | default producer side: RTS    |
 * | (no dequeue mode named)     | RING_F_MC_RTS_DEQ    | default consumer side: RTS    |
 *
 * Why the default is RTS and not classic MP/MC: in classic MP/MC mode each
 * producer, after copying its objects, waits until every producer that
 * reserved space before it has published (tail moves in reservation order).
 * A producer preempted between reserve and publish therefore stalls every
 * other producer for the rest of its time slice, and with more threads than
 * cores they convoy (microseconds per item on this 2-core box).  RTS lets
 * the tail move when the last of the overlapping producers finishes, so a
 * preempted thread does not serialise the others; HTS allows one operation
 * in flight at a time.  Threads that may be preempted — the injection path,
 * foreign threads, anything not pinned alone on a core — should use the
 * default (RTS) or HTS.  Pinned workers, one per core, may ask for
 * MOIRAI_RING_F_MP_ENQ / MOIRAI_RING_F_MC_DEQ explicitly: it is the fastest
 * multi-thread mode when nobody is preempted.
 *
 * Capacity: without MOIRAI_RING_F_EXACT_SZ, @c count must be a power of two
 * of at least 2 and the ring holds count - 1 objects (DPDK's rule); with
 * it, any count from 1 to MOIRAI_RING_MAX_COUNT / 2 is allowed and the
 * ring holds exactly count.
 *
 * Names: every ring (created or initialised) is entered in a process-wide
 * registry by name, so tools and stats can find it (moirai_ring_lookup,
 * moirai_ring_foreach).  Names are unique and at most MOIRAI_RING_NAME_MAX
 * characters long.
 *
 * Memory: moirai_ring_create() takes node-bound memory from the node arena
 * (moirai_malloc_node_flags) through one internal function, the seam to
 * swap if rings need another source.  moirai_ring_memsize() +
 * moirai_ring_init() let the caller supply the memory instead (shared
 * memory, static buffers).
 */
#ifndef MOIRAI_RING_H
#define MOIRAI_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque ring handle. */
struct moirai_ring;

/** Enqueue side: single producer (RING_F_SP_ENQ). */
#define MOIRAI_RING_F_SP_ENQ 0x0001u
/** Dequeue side: single consumer (RING_F_SC_DEQ). */
#define MOIRAI_RING_F_SC_DEQ 0x0002u
/** Capacity is exactly @c count, which need not be a power of two. */
#define MOIRAI_RING_F_EXACT_SZ 0x0004u
/** Enqueue side: multi-producer, relaxed tail sync (the default). */
#define MOIRAI_RING_F_MP_RTS_ENQ 0x0008u
/** Dequeue side: multi-consumer, relaxed tail sync (the default). */
#define MOIRAI_RING_F_MC_RTS_DEQ 0x0010u
/** Enqueue side: multi-producer, head/tail sync. */
#define MOIRAI_RING_F_MP_HTS_ENQ 0x0020u
/** Dequeue side: multi-consumer, head/tail sync. */
#define MOIRAI_RING_F_MC_HTS_DEQ 0x0040u
/** Enqueue side: classic multi-producer; not preemption-safe (pinned workers). */
#define MOIRAI_RING_F_MP_ENQ 0x0100u
/** Dequeue side: classic multi-consumer; not preemption-safe (pinned workers). */
#define MOIRAI_RING_F_MC_DEQ 0x0200u

/** Single producer and single consumer. */
#define MOIRAI_RING_F_SPSC (MOIRAI_RING_F_SP_ENQ | MOIRAI_RING_F_SC_DEQ)
/** Classic MP/MC, for pinned workers only (see the design block at the top of this file). */
#define MOIRAI_RING_F_MPMC_PINNED (MOIRAI_RING_F_MP_ENQ | MOIRAI_RING_F_MC_DEQ)

/** Longest ring name, not counting the NUL (DPDK's RTE_RING_NAMESIZE - 1). */
#define MOIRAI_RING_NAME_MAX 28

/** Largest @c count a ring accepts (DPDK's RTE_RING_SZ_MASK). */
#define MOIRAI_RING_MAX_COUNT 0x7fffffffu

/** Description of a ring, for tools and stats. */
struct moirai_ring_info {
	char name[MOIRAI_RING_NAME_MAX + 1]; /**< registry name */
	int node;	   /**< OS node of its memory; -1 caller-owned and unknown */
	unsigned flags;	   /**< MOIRAI_RING_F_* flags as resolved (mode always named) */
	unsigned esize;	   /**< element size in bytes (sizeof(void *) for pointer rings) */
	unsigned capacity; /**< objects it can hold */
	unsigned count;	   /**< objects in it now (a snapshot) */
	size_t memsize;	   /**< bytes of memory it occupies */
	bool caller_owned; /**< set up with moirai_ring_init() */
};

/**
 * Bytes of memory a ring needs, for moirai_ring_init().
 * @param esize element size in bytes: a non-zero multiple of 4
 *        (sizeof(void *) for a ring of pointers).
 * @param count requested count (the rules are under Capacity in the design
 *        block at the top of this file).
 * @param flags MOIRAI_RING_F_* flags (MOIRAI_RING_F_EXACT_SZ changes the size).
 * @return the size in bytes; -EINVAL bad esize, bad flags, count 0, or
 *         count 1 or not a power of two without MOIRAI_RING_F_EXACT_SZ;
 *         -ERANGE count above the limit.  Thread-safe.
 */
MOIRAI_API ssize_t moirai_ring_memsize(unsigned esize, unsigned count, unsigned flags);

/**
 * Create a ring of pointers in memory bound to @p node.
 * @param name unique name of 1..MOIRAI_RING_NAME_MAX characters (copied).
 * @param count slots: a power of two >= 2 (holds count - 1), or any count
 *        with MOIRAI_RING_F_EXACT_SZ (holds count).
 * @param node OS NUMA node, or MOIRAI_NODE_ANY for the caller's node.
 * @param flags MOIRAI_RING_F_* flags; with no mode named, both sides are RTS.
 * @param[out] out the new ring.
 * @return 0; -EINVAL NULL argument, empty name, unknown or conflicting
 *         flags, count 0, 1 or not a power of two, a negative node other
 *         than MOIRAI_NODE_ANY; -ENAMETOOLONG name too long; -ERANGE count
 *         above the limit; -ENODEV no such node; -EPERM the cgroup does not
 *         allow the node; -EEXIST name taken; -ENOMEM.  Thread-safe.
 */
MOIRAI_API int moirai_ring_create(const char *name, unsigned count, int node, unsigned flags,
				  struct moirai_ring **out);

/**
 * Create a ring of fixed-size elements (rte_ring_elem) bound to @p node.
 * Element size comes before count, as in rte_ring_create_elem() and in
 * moirai's own _elem enqueue/dequeue calls.
 * @param name unique name (copied).
 * @param esize element size: a non-zero multiple of 4 bytes.
 * @param count slots, as for moirai_ring_create().
 * @param node OS NUMA node or MOIRAI_NODE_ANY.
 * @param flags MOIRAI_RING_F_* flags.
 * @param[out] out the new ring.
 * @return as moirai_ring_create(), plus -EINVAL for a bad @p esize.
 *         Thread-safe.
 */
MOIRAI_API int moirai_ring_create_elem(const char *name, unsigned esize, unsigned count, int node,
				       unsigned flags, struct moirai_ring **out);

/**
 * Set up a ring in caller-owned memory (shared memory, arena, static).
 * @param mem at least moirai_ring_memsize(esize, count, flags) bytes,
 *        aligned to MOIRAI_CACHE_LINE; the ring lives at @p mem.
 * @param len bytes available at @p mem.
 * @param name unique name (copied).
 * @param esize element size (sizeof(void *) for pointers).
 * @param count slots, as for moirai_ring_create().
 * @param flags MOIRAI_RING_F_* flags.
 * @param[out] out the ring (== @p mem).
 * @return 0; -EINVAL NULL/unaligned @p mem, @p len too small, or the
 *         errors of moirai_ring_create(); -EBUSY the memory overlaps a
 *         registered ring (re-initialising a live ring would corrupt the
 *         registry: fini it first); -ENAMETOOLONG; -ERANGE; -EEXIST.
 *         Thread-safe.
 */
MOIRAI_API int moirai_ring_init(void *mem, size_t len, const char *name, unsigned esize,
				unsigned count, unsigned flags, struct moirai_ring **out);

/**
 * Remove a ring set up by moirai_ring_init() from the registry; the caller
 * then frees the memory.
 * @param r the ring; NULL is a no-op (returns 0).
 * @return 0; -EINVAL @p r is not a live ring, came from
 *         moirai_ring_create() or is not registered.  Not safe while other
 *         threads use the ring.
 */
MOIRAI_API int moirai_ring_fini(struct moirai_ring *r);

/**
 * Destroy a ring from moirai_ring_create(): unregister it and release its
 * memory.  A ring from moirai_ring_init() is only unregistered (as
 * moirai_ring_fini()).  Not safe while other threads use the ring.
 * @param r the ring; NULL, or a pointer that is not a live ring, is a no-op.
 */
MOIRAI_API void moirai_ring_destroy(struct moirai_ring *r);

/**
 * Find a ring by name.
 * @param name the name.
 * @return the ring, or NULL (unknown name, NULL name).  Thread-safe; the
 *         caller must know that the ring is not destroyed while it uses it.
 */
MOIRAI_API struct moirai_ring *moirai_ring_lookup(const char *name);

/**
 * Call @p fn for every registered ring, in creation order, until it returns
 * non-zero.  @p fn runs under the registry lock: it must not create,
 * destroy or look up rings.
 * @param fn called with each ring and @p arg; non-zero stops the walk.
 * @param arg passed to @p fn.
 * @return 0 when every ring was visited, else what @p fn returned;
 *         -EINVAL NULL @p fn.  Thread-safe.
 */
MOIRAI_API int moirai_ring_foreach(int (*fn)(struct moirai_ring *r, void *arg), void *arg);

/**
 * Describe a ring.
 * @param r the ring.
 * @param[out] out the description.
 * @return 0; -EINVAL NULL argument.  Thread-safe (count is a snapshot).
 */
MOIRAI_API int moirai_ring_info(const struct moirai_ring *r, struct moirai_ring_info *out);

/**
 * Name of a ring.
 * @param r the ring.
 * @return the registry name, valid until the ring is destroyed; "" for NULL.
 *         Thread-safe.
 */
MOIRAI_API const char *moirai_ring_name(const struct moirai_ring *r);

/* ---- Fast paths ------------------------------------------------------
 *
 * Every call returns a count: bulk calls n or 0, burst calls 0..n, with an
 * optional out-parameter for the free space (enqueue) or the objects left
 * (dequeue).  No logging, no errno, no argument checks: the handle must be
 * a live ring and the mode-named calls must match the mode the ring was
 * created with (RTS and HTS rings keep their head and tail in a different
 * layout from classic SP/MP/SC/MC rings).  The generic calls (no mode in
 * the name) use the mode chosen at create.
 */

#ifndef MOIRAI_RING_INLINE

/**
 * Objects in the ring now (a snapshot: other threads may change it).
 * @param r the ring.
 * @return 0..capacity.  Thread-safe.
 */
MOIRAI_API unsigned moirai_ring_count(const struct moirai_ring *r);

/**
 * Objects the ring can hold.
 * @param r the ring.
 * @return the capacity.  Thread-safe.
 */
MOIRAI_API unsigned moirai_ring_capacity(const struct moirai_ring *r);

/**
 * Free slots now (a snapshot).
 * @param r the ring.
 * @return capacity - count.  Thread-safe.
 */
MOIRAI_API unsigned moirai_ring_free_count(const struct moirai_ring *r);

/**
 * Whether the ring is full now (a snapshot).
 * @param r the ring.
 * @return true when no slot is free.  Thread-safe.
 */
MOIRAI_API bool moirai_ring_full(const struct moirai_ring *r);

/**
 * Whether the ring is empty now (a snapshot).
 * @param r the ring.
 * @return true when it holds nothing.  Thread-safe.
 */
MOIRAI_API bool moirai_ring_empty(const struct moirai_ring *r);

/**
 * Enqueue all @p n objects or none (pointers); single producer: only one
 * thread enqueues at a time. Use on a ring created with MOIRAI_RING_F_SP_ENQ
 * or MOIRAI_RING_F_MP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_sp_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						unsigned n, unsigned *free_space);

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); single
 * producer: only one thread enqueues at a time. Use on a ring created with
 * MOIRAI_RING_F_SP_ENQ or MOIRAI_RING_F_MP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_sp_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
						     unsigned esize, unsigned n,
						     unsigned *free_space);

/**
 * Enqueue all @p n objects or none (pointers); classic multi-producer:
 * MP-safe; not preemption-safe. Use on a ring created with
 * MOIRAI_RING_F_MP_ENQ or MOIRAI_RING_F_SP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mp_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						unsigned n, unsigned *free_space);

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); classic
 * multi-producer: MP-safe; not preemption-safe. Use on a ring created with
 * MOIRAI_RING_F_MP_ENQ or MOIRAI_RING_F_SP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mp_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
						     unsigned esize, unsigned n,
						     unsigned *free_space);

/**
 * Enqueue all @p n objects or none (pointers); multi-producer, relaxed tail
 * sync: MP-safe and tolerant of preemption. Use only on a ring created with
 * MOIRAI_RING_F_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mp_rts_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						    unsigned n, unsigned *free_space);

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes);
 * multi-producer, relaxed tail sync: MP-safe and tolerant of preemption. Use
 * only on a ring created with MOIRAI_RING_F_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mp_rts_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
							 unsigned esize, unsigned n,
							 unsigned *free_space);

/**
 * Enqueue all @p n objects or none (pointers); multi-producer, head/tail
 * sync: MP-safe. Use only on a ring created with MOIRAI_RING_F_MP_HTS_ENQ.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mp_hts_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						    unsigned n, unsigned *free_space);

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes);
 * multi-producer, head/tail sync: MP-safe. Use only on a ring created with
 * MOIRAI_RING_F_MP_HTS_ENQ.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mp_hts_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
							 unsigned esize, unsigned n,
							 unsigned *free_space);

/**
 * Enqueue all @p n objects or none (pointers); mode chosen at create time
 * (one branch on the ring's sync type, as rte_ring_enqueue_burst). Safe as
 * that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_enqueue_bulk(struct moirai_ring *r, void *const *objs, unsigned n,
					     unsigned *free_space);

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); mode chosen
 * at create time (one branch on the ring's sync type, as
 * rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
						  unsigned esize, unsigned n, unsigned *free_space);

/**
 * Dequeue all @p n objects or none (pointers); single consumer: only one
 * thread dequeues at a time. Use on a ring created with MOIRAI_RING_F_SC_DEQ
 * or MOIRAI_RING_F_MC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_sc_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						unsigned *available);

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); single
 * consumer: only one thread dequeues at a time. Use on a ring created with
 * MOIRAI_RING_F_SC_DEQ or MOIRAI_RING_F_MC_DEQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_sc_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
						     unsigned esize, unsigned n,
						     unsigned *available);

/**
 * Dequeue all @p n objects or none (pointers); classic multi-consumer:
 * MC-safe; not preemption-safe. Use on a ring created with
 * MOIRAI_RING_F_MC_DEQ or MOIRAI_RING_F_SC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mc_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						unsigned *available);

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); classic
 * multi-consumer: MC-safe; not preemption-safe. Use on a ring created with
 * MOIRAI_RING_F_MC_DEQ or MOIRAI_RING_F_SC_DEQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mc_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
						     unsigned esize, unsigned n,
						     unsigned *available);

/**
 * Dequeue all @p n objects or none (pointers); multi-consumer, relaxed tail
 * sync: MC-safe and tolerant of preemption. Use only on a ring created with
 * MOIRAI_RING_F_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mc_rts_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						    unsigned *available);

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes);
 * multi-consumer, relaxed tail sync: MC-safe and tolerant of preemption. Use
 * only on a ring created with MOIRAI_RING_F_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mc_rts_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							 unsigned esize, unsigned n,
							 unsigned *available);

/**
 * Dequeue all @p n objects or none (pointers); multi-consumer, head/tail
 * sync: MC-safe. Use only on a ring created with MOIRAI_RING_F_MC_HTS_DEQ.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mc_hts_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						    unsigned *available);

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes);
 * multi-consumer, head/tail sync: MC-safe. Use only on a ring created with
 * MOIRAI_RING_F_MC_HTS_DEQ.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_mc_hts_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							 unsigned esize, unsigned n,
							 unsigned *available);

/**
 * Dequeue all @p n objects or none (pointers); mode chosen at create time
 * (one branch on the ring's sync type, as rte_ring_dequeue_burst). Safe as
 * that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
					     unsigned *available);

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); mode chosen
 * at create time (one branch on the ring's sync type, as
 * rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI_API unsigned moirai_ring_dequeue_bulk_elem(struct moirai_ring *r, void *objs, unsigned esize,
						  unsigned n, unsigned *available);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); single
 * producer: only one thread enqueues at a time. Use on a ring created with
 * MOIRAI_RING_F_SP_ENQ or MOIRAI_RING_F_MP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_sp_enqueue_burst(struct moirai_ring *r, void *const *objs,
						 unsigned n, unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize
 * bytes); single producer: only one thread enqueues at a time. Use on a ring
 * created with MOIRAI_RING_F_SP_ENQ or MOIRAI_RING_F_MP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_sp_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
						      unsigned esize, unsigned n,
						      unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); classic
 * multi-producer: MP-safe; not preemption-safe. Use on a ring created with
 * MOIRAI_RING_F_MP_ENQ or MOIRAI_RING_F_SP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mp_enqueue_burst(struct moirai_ring *r, void *const *objs,
						 unsigned n, unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize
 * bytes); classic multi-producer: MP-safe; not preemption-safe. Use on a ring
 * created with MOIRAI_RING_F_MP_ENQ or MOIRAI_RING_F_SP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mp_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
						      unsigned esize, unsigned n,
						      unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers);
 * multi-producer, relaxed tail sync: MP-safe and tolerant of preemption. Use
 * only on a ring created with MOIRAI_RING_F_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mp_rts_enqueue_burst(struct moirai_ring *r, void *const *objs,
						     unsigned n, unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize
 * bytes); multi-producer, relaxed tail sync: MP-safe and tolerant of
 * preemption. Use only on a ring created with MOIRAI_RING_F_MP_RTS_ENQ (or no
 * enqueue mode).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mp_rts_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
							  unsigned esize, unsigned n,
							  unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers);
 * multi-producer, head/tail sync: MP-safe. Use only on a ring created with
 * MOIRAI_RING_F_MP_HTS_ENQ.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mp_hts_enqueue_burst(struct moirai_ring *r, void *const *objs,
						     unsigned n, unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize
 * bytes); multi-producer, head/tail sync: MP-safe. Use only on a ring created
 * with MOIRAI_RING_F_MP_HTS_ENQ.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mp_hts_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
							  unsigned esize, unsigned n,
							  unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); mode chosen
 * at create time (one branch on the ring's sync type, as
 * rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_enqueue_burst(struct moirai_ring *r, void *const *objs, unsigned n,
					      unsigned *free_space);

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize
 * bytes); mode chosen at create time (one branch on the ring's sync type, as
 * rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
						   unsigned esize, unsigned n,
						   unsigned *free_space);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); single
 * consumer: only one thread dequeues at a time. Use on a ring created with
 * MOIRAI_RING_F_SC_DEQ or MOIRAI_RING_F_MC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_sc_dequeue_burst(struct moirai_ring *r, void **objs, unsigned n,
						 unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p
 * esize bytes); single consumer: only one thread dequeues at a time. Use on a
 * ring created with MOIRAI_RING_F_SC_DEQ or MOIRAI_RING_F_MC_DEQ (classic
 * layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_sc_dequeue_burst_elem(struct moirai_ring *r, void *objs,
						      unsigned esize, unsigned n,
						      unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); classic
 * multi-consumer: MC-safe; not preemption-safe. Use on a ring created with
 * MOIRAI_RING_F_MC_DEQ or MOIRAI_RING_F_SC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mc_dequeue_burst(struct moirai_ring *r, void **objs, unsigned n,
						 unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p
 * esize bytes); classic multi-consumer: MC-safe; not preemption-safe. Use on
 * a ring created with MOIRAI_RING_F_MC_DEQ or MOIRAI_RING_F_SC_DEQ (classic
 * layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mc_dequeue_burst_elem(struct moirai_ring *r, void *objs,
						      unsigned esize, unsigned n,
						      unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers);
 * multi-consumer, relaxed tail sync: MC-safe and tolerant of preemption. Use
 * only on a ring created with MOIRAI_RING_F_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mc_rts_dequeue_burst(struct moirai_ring *r, void **objs, unsigned n,
						     unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p
 * esize bytes); multi-consumer, relaxed tail sync: MC-safe and tolerant of
 * preemption. Use only on a ring created with MOIRAI_RING_F_MC_RTS_DEQ (or no
 * dequeue mode).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mc_rts_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							  unsigned esize, unsigned n,
							  unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers);
 * multi-consumer, head/tail sync: MC-safe. Use only on a ring created with
 * MOIRAI_RING_F_MC_HTS_DEQ.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mc_hts_dequeue_burst(struct moirai_ring *r, void **objs, unsigned n,
						     unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p
 * esize bytes); multi-consumer, head/tail sync: MC-safe. Use only on a ring
 * created with MOIRAI_RING_F_MC_HTS_DEQ.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_mc_hts_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							  unsigned esize, unsigned n,
							  unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); mode
 * chosen at create time (one branch on the ring's sync type, as
 * rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_dequeue_burst(struct moirai_ring *r, void **objs, unsigned n,
					      unsigned *available);

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p
 * esize bytes); mode chosen at create time (one branch on the ring's sync
 * type, as rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI_API unsigned moirai_ring_dequeue_burst_elem(struct moirai_ring *r, void *objs,
						   unsigned esize, unsigned n, unsigned *available);

#endif /* !MOIRAI_RING_INLINE */

#ifdef __cplusplus
}
#endif

#ifdef MOIRAI_RING_INLINE
#include "moirai/ring_inline.h"
#endif

#endif /* MOIRAI_RING_H */
