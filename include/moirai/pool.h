/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/pool.h
 * @brief Fixed-size object pools bound to a NUMA node, with per-thread or
 * caller-held caches and all-or-nothing bulk get/put (DPDK mempool
 * semantics).
 *
 * Design: a pool owns @c n_objs objects of one size carved from one mapping
 * bound to the pool's node.  Free objects live in a shared rte_ring (the
 * "common pool") or in a cache.  A cache (struct moirai_pool_cache) is a
 * small LIFO stack of object pointers owned by one thread at a time: get
 * and put on a cache are a few loads and stores, inlined from
 * moirai/pool_inline.h; only when the cache runs empty or overflows does the
 * call go out of line to move a batch between the cache and the ring.
 *
 * The ring is in RTS mode (relaxed tail sync) by default because callers
 * may be unpinned: with the classic MP/MC mode a producer preempted between
 * reserving and publishing its slots stalls every other producer (on a
 * 2-core box this convoys to microseconds per operation).  RTS lets other
 * threads keep completing while one is preempted; HTS (head/tail sync, one
 * thread in flight) and classic MP/MC are available as flags.
 *
 * Counting: moirai_pool_avail_count() is the ring's count plus the length
 * of every cache of the pool, so avail + in_use == n_objs exactly whenever
 * no get/put is in flight; with caches flushed, avail is exactly the ring's
 * content.  Objects held in caches are free but only reachable through
 * their cache: a get without a cache (or through another cache) may fail
 * with -ENOENT while some cache still holds objects.  Flush caches with
 * moirai_pool_cache_flush() when that matters.
 *
 * Debug checks (pool flag MOIRAI_POOL_F_DEBUG, the MOIRAI_DEBUG option at
 * create time, or a library built with -DDEBUG): every get/put takes the checked slow path, which tracks
 * one "free" bit per object and rejects with -EINVAL, putting nothing, a
 * put of a pointer that is not an object of this pool (outside the object
 * area or not on an object boundary) or of an object that is already free
 * (double put).  Without debug checks such a put is undefined behaviour.
 */
#ifndef MOIRAI_POOL_H
#define MOIRAI_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque object pool. */
struct moirai_pool;
/** Object cache; layout in moirai/pool_inline.h, fields are private. */
struct moirai_pool_cache;

/** Objects start on a cache line and are padded to whole cache lines. */
#define MOIRAI_POOL_F_CACHE_ALIGN 0x1u
/** Shared ring in HTS mode (head/tail sync) instead of the default RTS. */
#define MOIRAI_POOL_F_RING_HTS 0x2u
/** Shared ring in classic MP/MC mode: only for pinned, never-preempted callers. */
#define MOIRAI_POOL_F_RING_MPMC 0x4u
/** Debug checks on every get/put (see the file comment). */
#define MOIRAI_POOL_F_DEBUG 0x8u
/** No debug checks, whatever MOIRAI_DEBUG or the build says (fast path in
 *  debug builds: benchmarks, tests of the inline path). */
#define MOIRAI_POOL_F_NO_DEBUG 0x10u
/** Fault every object's pages in at create, so that no get on the hot
 *  path takes a page fault (a fresh huge page is milliseconds of zeroing
 *  on some VMs); create then costs the time to touch the whole pool. */
#define MOIRAI_POOL_F_POPULATE 0x20u

/** Largest pool: 2^28 objects. */
#define MOIRAI_POOL_MAX_OBJS (1u << 28)
/** Largest object: 1 GiB. */
#define MOIRAI_POOL_MAX_OBJ_SIZE (1u << 30)
/** Largest cache size (objects). */
#define MOIRAI_POOL_CACHE_MAX 4096u
/** Size of the caches made by moirai_pool_thread_cache(). */
#define MOIRAI_POOL_CACHE_DEFAULT 256u
/** Longest pool name, without the terminating NUL. */
#define MOIRAI_POOL_NAME_MAX 24

/**
 * Create a pool of @p n_objs objects of @p obj_size bytes on @p node.
 * Objects are aligned to 16 bytes (like malloc), or to a cache line with
 * MOIRAI_POOL_F_CACHE_ALIGN.  The ring and the objects are one allocation
 * from the node's arena; objects are not touched until first use, or
 * before create returns with MOIRAI_POOL_F_POPULATE.
 * @param name a label (1..MOIRAI_POOL_NAME_MAX chars) for messages.
 * @param obj_size object size in bytes, 1..MOIRAI_POOL_MAX_OBJ_SIZE.
 * @param n_objs number of objects, 1..MOIRAI_POOL_MAX_OBJS.
 * @param node OS NUMA node, or MOIRAI_NODE_ANY for the caller's node.
 * @param flags MOIRAI_POOL_F_* bits.
 * @param[out] out the new pool.
 * @return 0; -EINVAL NULL/empty/too long name, NULL out, zero or too large
 *         count or size, unknown flags, both HTS and MPMC, both DEBUG and
 *         NO_DEBUG, a negative node other than MOIRAI_NODE_ANY; -ENODEV no
 *         such node; -EPERM the cgroup does not allow the node; -ENOMEM.
 *         Thread-safe.
 */
MOIRAI_API int moirai_pool_create(const char *name, size_t obj_size, unsigned n_objs, int node,
				  unsigned flags, struct moirai_pool **out);

/**
 * Destroy a pool, its ring, its objects and every cache still attached to
 * it (including other threads' thread caches: they must not be used again).
 * Objects still in use become invalid.  NULL is a no-op.
 * Not safe concurrently with any other use of the pool.
 * @param pool the pool.
 */
MOIRAI_API void moirai_pool_destroy(struct moirai_pool *pool);

/**
 * Create a cache of nominal size @p size: gets refill it to @p size from
 * the ring, puts flush it back to @p size once it holds 2 * @p size.  The
 * cache memory comes from the caller's node arena (moirai_aligned_alloc).
 * @param pool the pool.
 * @param size 1..MOIRAI_POOL_CACHE_MAX objects.
 * @param[out] out the new cache.
 * @return 0; -EINVAL NULL pool or out, size 0 or too large; -ENOMEM.
 *         Thread-safe.  The cache itself is for one thread at a time.
 */
MOIRAI_API int moirai_pool_cache_create(struct moirai_pool *pool, unsigned size,
					struct moirai_pool_cache **out);

/**
 * Flush a cache and free it. NULL is a no-op.  A cache from
 * moirai_pool_thread_cache() is destroyed only when called by its own
 * thread (otherwise ignored; thread exit and moirai_pool_destroy() free it).
 * Safe concurrently with use of other caches of the pool; not with use of
 * this cache.
 * @param cache the cache.
 */
MOIRAI_API void moirai_pool_cache_destroy(struct moirai_pool_cache *cache);

/**
 * Return every object held by @p cache to the pool's ring.
 * @param cache the cache (NULL is a no-op).
 * Only by the thread that uses the cache.
 */
MOIRAI_API void moirai_pool_cache_flush(struct moirai_pool_cache *cache);

/**
 * The calling thread's cache for @p pool (size MOIRAI_POOL_CACHE_DEFAULT),
 * created on first call and flushed and freed when the thread exits.
 * Keep the pointer: looking it up costs a pthread_getspecific().  Each pool
 * uses one pthread key (PTHREAD_KEYS_MAX, 1024 on glibc, bounds how many
 * pools can exist at once).
 * @param pool the pool.
 * @param[out] out the thread's cache.
 * @return 0; -EINVAL NULL argument; -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_pool_thread_cache(struct moirai_pool *pool, struct moirai_pool_cache **out);

/**
 * Objects available: in the ring plus in every cache of the pool.  Exact
 * when no get/put is in flight.
 * @param pool the pool.
 * @return the count; 0 for NULL (recorded for moirai_last_error()).
 *         Thread-safe.
 */
MOIRAI_API unsigned moirai_pool_avail_count(const struct moirai_pool *pool);

/**
 * Objects handed out: n_objs - moirai_pool_avail_count().
 * @param pool the pool.
 * @return the count; 0 for NULL (recorded). Thread-safe.
 */
MOIRAI_API unsigned moirai_pool_in_use_count(const struct moirai_pool *pool);

/**
 * @param pool the pool.
 * @return the number of objects the pool was created with; 0 for NULL
 *         (recorded). Thread-safe.
 */
MOIRAI_API unsigned moirai_pool_size(const struct moirai_pool *pool);

/**
 * @param pool the pool.
 * @return the usable size of each object (>= the requested size); 0 for
 *         NULL (recorded). Thread-safe.
 */
MOIRAI_API size_t moirai_pool_obj_size(const struct moirai_pool *pool);

/**
 * @param pool the pool.
 * @return the OS NUMA node the pool's memory is bound to; -EINVAL for NULL
 *         (recorded). Thread-safe.
 */
MOIRAI_API int moirai_pool_node(const struct moirai_pool *pool);

/**
 * Whether @p ptr is the start of one of the pool's objects (in use or
 * not).
 * @param pool the pool.
 * @param ptr any pointer.
 * @return true or false (false for NULL arguments; a NULL pool is
 *         recorded). Thread-safe.
 */
MOIRAI_API bool moirai_pool_contains(const struct moirai_pool *pool, const void *ptr);

/**
 * Out-of-line get: what moirai_pool_get_bulk() calls when the cache cannot
 * serve the request (or there is no cache, or debug checks are on).  Also
 * usable directly, e.g. through a function pointer.
 * @param pool the pool.
 * @param cache the caller's cache or NULL.
 * @param[out] objs receives @p n objects.
 * @param n number of objects.
 * @return 0; -ENOENT not enough objects (nothing taken); -EINVAL NULL pool
 *         or objs, or a cache of another pool.
 *         MT-safe with distinct caches; a cache is single-threaded.
 */
MOIRAI_API int moirai_pool_get_generic(struct moirai_pool *pool, struct moirai_pool_cache *cache,
				       void **objs, unsigned n);

/**
 * Out-of-line put: what moirai_pool_put_bulk() calls when the cache would
 * overflow (or there is no cache, or debug checks are on).
 * @param pool the pool.
 * @param cache the caller's cache or NULL.
 * @param objs the objects.
 * @param n number of objects.
 * @return 0; -EINVAL NULL pool or objs, a cache of another pool, or (debug
 *         checks) a foreign or already free object, nothing put; -ENOSPC
 *         ring full (foreign pointers without debug checks).
 *         MT-safe with distinct caches; a cache is single-threaded.
 */
MOIRAI_API int moirai_pool_put_generic(struct moirai_pool *pool, struct moirai_pool_cache *cache,
				       void *const *objs, unsigned n);

#ifdef __cplusplus
}
#endif

#include "moirai/pool_inline.h"

#endif /* MOIRAI_POOL_H */
