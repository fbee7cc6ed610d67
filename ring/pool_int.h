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
	struct moirai_pool_cache *caches; /* every cache of the pool */
	pthread_key_t key;
	bool key_ok;
};

static_assert(offsetof(struct moirai_pool, lock) % MOIRAI_CACHE_LINE == 0,
	      "cache registry starts its own line");

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
