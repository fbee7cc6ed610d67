/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private layout of the object pool, shared by ring/pool.c (create,
 * destroy, counts, memory) and ring/pool_cache.c (caches, slow paths,
 * debug checks).  Never installed.
 */
#ifndef MOIRAI_POOL_INT_H
#define MOIRAI_POOL_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_config.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "internal.h"
#include "list.h"
#include "moirai/pool.h"

/* A library built with -DDEBUG checks every pool, whatever the flags. */
#ifdef DEBUG
#define MOIRAI__POOL_DEBUG_BUILD true
#else
#define MOIRAI__POOL_DEBUG_BUILD false
#endif

/*
 * The pool header sits at the start of its own mapping, followed by the
 * ring, the debug bitmap and the object area, all on the pool's node.
 */
struct moirai_pool {
	/* Read-mostly: touched by every slow path and by contains(). */
	alignas(MOIRAI_CACHE_LINE) struct rte_ring *ring;
	char *base;	 /* first object */
	char *end;	 /* one past the last object */
	size_t stride;	 /* distance between objects */
	size_t obj_size; /* usable size (== stride) */
	uint32_t n_objs;
	unsigned flags;
	int node;
	bool debug;
	_Atomic unsigned long *free_bits; /* debug: bit i set = object i free */
	void *map;			  /* the mapping (this struct is at its start) */
	size_t map_len;
	char name[MOIRAI_POOL_NAME_MAX + 1];

	/* Cold: cache registry and the thread-cache key. */
	alignas(MOIRAI_CACHE_LINE) pthread_mutex_t lock;
	struct moirai__list caches; /* every cache of the pool (moirai__pool_cache.link) */
	pthread_key_t key;
	bool key_ok;
};

static_assert(offsetof(struct moirai_pool, lock) % MOIRAI_CACHE_LINE == 0,
	      "cache registry starts its own line");

/*
 * A cache as the library sees it: the bookkeeping only the slow paths
 * touch, then the public part the inline fast path reads
 * (moirai/pool_inline.h), then the slots, which therefore start right
 * behind the public part.  The header is 48 bytes, so on a 64-byte aligned
 * allocation it and the first two slots share one cache line, as with the
 * flexible array member this layout replaces.
 */
struct moirai__pool_cache {
	struct moirai_pool *pool;     /* owning pool */
	struct moirai__list link;     /* pool->caches, under pool->lock */
	uint32_t size;		      /* nominal size: refill and flush target */
	bool thread_cache;	      /* made by moirai_pool_thread_cache() */
	struct moirai_pool_cache pub; /* last: the slots follow it */
};

static_assert(offsetof(struct moirai__pool_cache, pub) + sizeof(struct moirai_pool_cache) ==
		      sizeof(struct moirai__pool_cache),
	      "the slots behind the public part are the slots behind the whole cache");
static_assert(sizeof(struct moirai__pool_cache) <= MOIRAI_CACHE_LINE,
	      "cache header is on one line");

static inline struct moirai__pool_cache *moirai__pool_cache_of(struct moirai_pool_cache *c)
{
	return moirai__container_of(c, struct moirai__pool_cache, pub);
}

/* Debug bookkeeping (pool_cache.c): 0 or -EINVAL with a message. */
int moirai__pool_debug_check_put(struct moirai_pool *pool, void *const *objs, unsigned n);
void moirai__pool_debug_mark_taken(struct moirai_pool *pool, void *const *objs, unsigned n);

/* Index of an object of the pool (caller checked contains()). */
static inline size_t moirai__pool_index(const struct moirai_pool *pool, const void *obj)
{
	return (size_t)((const char *)obj - pool->base) / pool->stride;
}

/* Free every cache still registered (pool destroy); caller holds nothing. */
void moirai__pool_caches_free_all(struct moirai_pool *pool);

/* Sum of cache lengths; caller holds pool->lock. */
unsigned moirai__pool_caches_len(const struct moirai_pool *pool);

#endif /* MOIRAI_POOL_INT_H */
