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
 * The enqueue/dequeue fast paths are static inline wrappers over the
 * rte_ring inlines (moirai/ring_inline.h): they return counts, never log,
 * never touch errno.  Bulk calls move all @c n objects or none; burst calls
 * move as many as they can (0..n).
 *
 * Synchronisation modes and how the flags map to DPDK:
 *
 * | moirai flag               | rte_ring flag       | mode                          |
 * |---------------------------|---------------------|-------------------------------|
 * | MOIRAI_RING_SP_ENQ        | RING_F_SP_ENQ       | single producer               |
 * | MOIRAI_RING_MP_ENQ        | (none: DPDK default)| classic multi-producer (MP)   |
 * | MOIRAI_RING_MP_RTS_ENQ    | RING_F_MP_RTS_ENQ   | MP, relaxed tail sync (RTS)   |
 * | MOIRAI_RING_MP_HTS_ENQ    | RING_F_MP_HTS_ENQ   | MP, head/tail sync (HTS)      |
 * | MOIRAI_RING_SC_DEQ        | RING_F_SC_DEQ       | single consumer               |
 * | MOIRAI_RING_MC_DEQ        | (none: DPDK default)| classic multi-consumer (MC)   |
 * | MOIRAI_RING_MC_RTS_DEQ    | RING_F_MC_RTS_DEQ   | MC, relaxed tail sync (RTS)   |
 * | MOIRAI_RING_MC_HTS_DEQ    | RING_F_MC_HTS_DEQ   | MC, head/tail sync (HTS)      |
 * | MOIRAI_RING_EXACT_SZ      | RING_F_EXACT_SZ     | capacity == count exactly     |
 * | (no enqueue mode named)   | RING_F_MP_RTS_ENQ   | default producer side: RTS    |
 * | (no dequeue mode named)   | RING_F_MC_RTS_DEQ   | default consumer side: RTS    |
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
 * MOIRAI_RING_MP_ENQ / MOIRAI_RING_MC_DEQ explicitly: it is the fastest
 * multi-thread mode when nobody is preempted.
 *
 * Capacity: without MOIRAI_RING_EXACT_SZ, @c count must be a power of two
 * and the ring holds count - 1 objects (DPDK's rule); with it, any count
 * from 1 to RTE_RING_SZ_MASK is allowed and the ring holds exactly count.
 *
 * Names: every ring (created or initialised) is entered in a process-wide
 * registry by name, so tools and stats can find it (moirai_ring_lookup,
 * moirai_ring_foreach).  Names are unique and shorter than
 * MOIRAI_RING_NAMESIZE.
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

/*
 * Under ThreadSanitizer use DPDK's C11 memory-model ring bodies: the x86
 * default (rte_ring_generic_pvt.h) synchronises with inline asm and
 * volatile accesses that TSan cannot see.  Both are correct on x86; normal
 * builds keep DPDK's default so "moirai vs rte_ring" compares like with like.
 */
#if defined(__SANITIZE_THREAD__)
#define MOIRAI__RING_C11 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MOIRAI__RING_C11 1
#endif
#endif
#if defined(MOIRAI__RING_C11) && !defined(RTE_USE_C11_MEM_MODEL)
#define RTE_USE_C11_MEM_MODEL 1
#endif

#include <rte_config.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque ring handle. */
struct moirai_ring;

/** Enqueue side: single producer (RING_F_SP_ENQ). */
#define MOIRAI_RING_SP_ENQ 0x0001u
/** Dequeue side: single consumer (RING_F_SC_DEQ). */
#define MOIRAI_RING_SC_DEQ 0x0002u
/** Capacity is exactly @c count, which need not be a power of two. */
#define MOIRAI_RING_EXACT_SZ 0x0004u
/** Enqueue side: multi-producer, relaxed tail sync (the default). */
#define MOIRAI_RING_MP_RTS_ENQ 0x0008u
/** Dequeue side: multi-consumer, relaxed tail sync (the default). */
#define MOIRAI_RING_MC_RTS_DEQ 0x0010u
/** Enqueue side: multi-producer, head/tail sync. */
#define MOIRAI_RING_MP_HTS_ENQ 0x0020u
/** Dequeue side: multi-consumer, head/tail sync. */
#define MOIRAI_RING_MC_HTS_DEQ 0x0040u
/** Enqueue side: classic multi-producer; not preemption-safe (pinned workers). */
#define MOIRAI_RING_MP_ENQ 0x0100u
/** Dequeue side: classic multi-consumer; not preemption-safe (pinned workers). */
#define MOIRAI_RING_MC_DEQ 0x0200u

/** Single producer and single consumer. */
#define MOIRAI_RING_SPSC (MOIRAI_RING_SP_ENQ | MOIRAI_RING_SC_DEQ)
/** Classic MP/MC, for pinned workers only (see the @file block). */
#define MOIRAI_RING_MPMC_PINNED (MOIRAI_RING_MP_ENQ | MOIRAI_RING_MC_DEQ)

/** Room for a ring name including its terminating NUL. */
#define MOIRAI_RING_NAMESIZE RTE_RING_NAMESIZE

/** Largest @c count a ring accepts (DPDK's RTE_RING_SZ_MASK). */
#define MOIRAI_RING_MAX_COUNT RTE_RING_SZ_MASK

/** Bytes of moirai header in front of the rte_ring (private layout). */
#define MOIRAI__RING_HDR_SIZE 128

/** Description of a ring, for tools and stats. */
struct moirai_ring_info {
	char name[MOIRAI_RING_NAMESIZE]; /**< registry name */
	int node;			 /**< OS node of its memory; -1 caller-owned and unknown */
	unsigned flags;			 /**< MOIRAI_RING_* flags as resolved (mode always named) */
	unsigned esize;	   /**< element size in bytes (sizeof(void *) for pointer rings) */
	unsigned capacity; /**< objects it can hold */
	unsigned count;	   /**< objects in it now (a snapshot) */
	size_t memsize;	   /**< bytes of memory it occupies */
	bool caller_owned; /**< set up with moirai_ring_init() */
};

/**
 * Bytes of memory a ring needs, for moirai_ring_init().
 * @param count requested count (see the @file block for the rules).
 * @param esize element size in bytes: a non-zero multiple of 4
 *        (sizeof(void *) for a ring of pointers).
 * @param flags MOIRAI_RING_* flags (MOIRAI_RING_EXACT_SZ changes the size).
 * @return the size in bytes; -EINVAL bad esize, bad flags, count 0 or not a
 *         power of two without MOIRAI_RING_EXACT_SZ; -ERANGE count above
 *         MOIRAI_RING_MAX_COUNT.  Thread-safe.
 */
MOIRAI_API ssize_t moirai_ring_memsize(unsigned count, unsigned esize, unsigned flags);

/**
 * Create a ring of pointers in memory bound to @p node.
 * @param name unique name, shorter than MOIRAI_RING_NAMESIZE (copied).
 * @param count slots: a power of two (holds count - 1), or any count with
 *        MOIRAI_RING_EXACT_SZ (holds count).
 * @param node OS NUMA node, or MOIRAI_NODE_ANY for the caller's node.
 * @param flags MOIRAI_RING_* flags; with no mode named, both sides are RTS.
 * @param[out] out the new ring.
 * @return 0; -EINVAL NULL argument, empty name, unknown or conflicting
 *         flags, count 0 or not a power of two; -ENAMETOOLONG name too long;
 *         -ERANGE count above MOIRAI_RING_MAX_COUNT; -ENODEV node does not
 *         exist or is not allowed; -EEXIST name taken; -ENOMEM.
 *         Thread-safe.
 */
MOIRAI_API int moirai_ring_create(const char *name, unsigned count, int node, unsigned flags,
				  struct moirai_ring **out);

/**
 * Create a ring of fixed-size elements (rte_ring_elem) bound to @p node.
 * @param name unique name (copied).
 * @param count slots, as for moirai_ring_create().
 * @param esize element size: a non-zero multiple of 4 bytes.
 * @param node OS NUMA node or MOIRAI_NODE_ANY.
 * @param flags MOIRAI_RING_* flags.
 * @param[out] out the new ring.
 * @return as moirai_ring_create(), plus -EINVAL for a bad @p esize.
 *         Thread-safe.
 */
MOIRAI_API int moirai_ring_create_elem(const char *name, unsigned count, unsigned esize, int node,
				       unsigned flags, struct moirai_ring **out);

/**
 * Set up a ring in caller-owned memory (shared memory, arena, static).
 * @param mem at least moirai_ring_memsize(count, esize, flags) bytes,
 *        aligned to MOIRAI_CACHE_LINE; the ring lives at @p mem.
 * @param len bytes available at @p mem.
 * @param name unique name (copied).
 * @param count slots, as for moirai_ring_create().
 * @param esize element size (sizeof(void *) for pointers).
 * @param flags MOIRAI_RING_* flags.
 * @param[out] out the ring (== @p mem).
 * @return 0; -EINVAL NULL/unaligned @p mem, @p len too small, or the
 *         errors of moirai_ring_create(); -ENAMETOOLONG; -ERANGE; -EEXIST.
 *         Thread-safe.
 */
MOIRAI_API int moirai_ring_init(void *mem, size_t len, const char *name, unsigned count,
				unsigned esize, unsigned flags, struct moirai_ring **out);

/**
 * Remove a ring set up by moirai_ring_init() from the registry; the caller
 * then frees the memory.  NULL is a no-op.
 * @return 0; -EINVAL the ring came from moirai_ring_create() or is not
 *         registered.  Not safe while other threads use the ring.
 */
MOIRAI_API int moirai_ring_fini(struct moirai_ring *r);

/**
 * Destroy a ring from moirai_ring_create(): unregister it and release its
 * memory.  NULL is a no-op.  A ring from moirai_ring_init() is only
 * unregistered (as moirai_ring_fini()).
 * Not safe while other threads use the ring.
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
 * @return the registry name, valid until the ring is destroyed; "" for NULL.
 * Thread-safe.
 */
MOIRAI_API const char *moirai_ring_name(const struct moirai_ring *r);

#ifdef __cplusplus
}
#endif

#include "moirai/ring_inline.h"

#endif /* MOIRAI_RING_H */
