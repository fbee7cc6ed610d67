/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/pool_inline.h
 * @brief Inline fast paths of the object pool.  Include moirai/pool.h
 * instead.
 *
 * A get or put that the cache can serve is a few loads and stores here;
 * everything else (no cache, cache empty or full, debug checks) jumps to
 * moirai_pool_get_generic() / moirai_pool_put_generic().
 */
#ifndef MOIRAI_POOL_INLINE_H
#define MOIRAI_POOL_INLINE_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#include "moirai/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A LIFO stack of free objects owned by one thread at a time.  Only what
 * the inline get/put touch is here, and the @c cap slots follow the struct
 * in the same allocation (moirai__pool_cache_slots(): a constant offset,
 * so the fast path costs what a flexible array member would, without one:
 * ISO C++ has none).  The library's own bookkeeping (pool, nominal size,
 * list links) sits in front of it, on the same cache line.  The layout is
 * public only so that get/put can inline; treat every field as private.
 */
struct moirai_pool_cache {
	/** Objects held now.  Only the owner writes it; other threads read it
	 *   (relaxed) for moirai_pool_avail_count(), which is exact only when
	 *   no get/put is in flight, so no ordering is needed.  Accessed with
	 *   the __atomic builtins rather than C11 _Atomic so that this header
	 *   also compiles as C++ (no _Atomic before C++23); they compile to
	 *   the same plain loads and stores.  Aligned like a pointer so that
	 *   the slots behind the struct are. */
	alignas(void *) uint32_t len;
	uint32_t cap; /**< 2 * nominal size: flush threshold, number of slots */
	bool debug;   /**< every op takes the out-of-line path (debug checks, fault injection) */
};

/** The cap slots behind @p c; [0, len) hold objects.  Internal. */
static inline void **moirai__pool_cache_slots(struct moirai_pool_cache *c)
{
	return (void **)(void *)(c + 1);
}

/**
 * Take @p n objects: all of them, or none.
 * @param pool the pool.
 * @param cache a cache of @p pool used only by the caller, or NULL to go
 *        straight to the ring.
 * @param[out] objs receives @p n object pointers.
 * @param n number of objects (0 is a no-op).
 * @return 0; -ENOENT fewer than @p n objects available to this caller
 *         (nothing taken; no error message is recorded, this is the normal
 *         "pool empty" outcome); -EINVAL NULL pool or objs, or a cache of
 *         another pool (checked on the slow path only).
 *         MT-safe with distinct caches; a cache is single-threaded.
 */
static inline int moirai_pool_get_bulk(struct moirai_pool *pool, struct moirai_pool_cache *cache,
				       void **objs, unsigned n)
{
	if (moirai_likely(cache != NULL && !cache->debug)) {
		uint32_t len = __atomic_load_n(&cache->len, __ATOMIC_RELAXED);

		if (moirai_likely(n <= len)) {
			void **top = moirai__pool_cache_slots(cache) + len;

			for (unsigned i = 0; i < n; i++)
				objs[i] = *--top;
			__atomic_store_n(&cache->len, len - n, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return moirai_pool_get_generic(pool, cache, objs, n);
}

/**
 * Return @p n objects: all of them, or (debug checks only) none.
 * @param pool the pool.
 * @param cache a cache of @p pool used only by the caller, or NULL.
 * @param objs the objects, each taken from @p pool and not yet returned.
 * @param n number of objects (0 is a no-op).
 * @return 0; -EINVAL NULL pool or objs, a cache of another pool, or, with
 *         debug checks, a pointer that is not an object of the pool or an
 *         object already free (nothing is put); -ENOSPC the ring is full,
 *         which only foreign pointers put without debug checks can cause.
 *         MT-safe with distinct caches; a cache is single-threaded.
 */
static inline int moirai_pool_put_bulk(struct moirai_pool *pool, struct moirai_pool_cache *cache,
				       void *const *objs, unsigned n)
{
	if (moirai_likely(cache != NULL && !cache->debug)) {
		uint32_t len = __atomic_load_n(&cache->len, __ATOMIC_RELAXED);

		if (moirai_likely(n <= cache->cap - len)) {
			void **top = moirai__pool_cache_slots(cache) + len;

			for (unsigned i = 0; i < n; i++)
				top[i] = objs[i];
			__atomic_store_n(&cache->len, len + n, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return moirai_pool_put_generic(pool, cache, objs, n);
}

/**
 * Take one object.
 * @param pool the pool.
 * @param cache the caller's cache or NULL.
 * @param[out] obj the object.
 * @return as moirai_pool_get_bulk() with n = 1.
 */
static inline int moirai_pool_get(struct moirai_pool *pool, struct moirai_pool_cache *cache,
				  void **obj)
{
	return moirai_pool_get_bulk(pool, cache, obj, 1);
}

/**
 * Return one object.
 * @param pool the pool.
 * @param cache the caller's cache or NULL.
 * @param obj the object.
 * @return as moirai_pool_put_bulk() with n = 1.
 */
static inline int moirai_pool_put(struct moirai_pool *pool, struct moirai_pool_cache *cache,
				  void *obj)
{
	return moirai_pool_put_bulk(pool, cache, &obj, 1);
}

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_POOL_INLINE_H */
