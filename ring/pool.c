/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fixed-size object pools: creation, destruction, counts, membership and
 * the one place pool memory comes from.  A pool is one mapping bound to
 * its node, laid out as
 *
 *   [struct moirai_pool][rte_ring of free object pointers][debug bitmap]
 *   [object 0][object 1]...[object n-1]
 *
 * The ring is initialised with rte_ring_init() on that memory (never
 * rte_ring_create(), which needs the DPDK EAL) and starts full.  Caches and
 * the get/put slow paths are in pool_cache.c; the inline fast paths are in
 * include/moirai/pool_inline.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moirai/alloc.h"
#include "moirai/numa.h"
#include "pool_int.h"
#include "ring_int.h"

#define FILL_BATCH 256u

void moirai__pool_thread_cache_dtor(void *arg);

static int check_args(const char *name, unsigned n_objs, size_t obj_size, int node, unsigned flags,
		      struct moirai_pool **out)
{
	const unsigned known = MOIRAI_POOL_F_CACHE_ALIGN | MOIRAI_POOL_F_RING_HTS |
			       MOIRAI_POOL_F_RING_MPMC | MOIRAI_POOL_F_DEBUG |
			       MOIRAI_POOL_F_NO_DEBUG | MOIRAI_POOL_F_POPULATE;

	if (!out)
		return moirai__err(-EINVAL, "pool: NULL output pointer");
	if (!name || !name[0] || strlen(name) > MOIRAI_POOL_NAME_MAX)
		return moirai__err(-EINVAL, "pool: name must be 1..%d characters",
				   MOIRAI_POOL_NAME_MAX);
	if (n_objs == 0 || n_objs > MOIRAI_POOL_MAX_OBJS)
		return moirai__err(-EINVAL, "pool %s: object count %u is not in 1..%u", name,
				   n_objs, MOIRAI_POOL_MAX_OBJS);
	if (obj_size == 0 || obj_size > MOIRAI_POOL_MAX_OBJ_SIZE)
		return moirai__err(-EINVAL, "pool %s: object size %zu is not in 1..%u", name,
				   obj_size, MOIRAI_POOL_MAX_OBJ_SIZE);
	if (flags & ~known)
		return moirai__err(-EINVAL, "pool %s: unknown flags 0x%x", name, flags & ~known);
	if ((flags & MOIRAI_POOL_F_DEBUG) && (flags & MOIRAI_POOL_F_NO_DEBUG))
		return moirai__err(-EINVAL, "pool %s: flags DEBUG and NO_DEBUG exclude each other",
				   name);
	if ((flags & MOIRAI_POOL_F_RING_HTS) && (flags & MOIRAI_POOL_F_RING_MPMC))
		return moirai__err(-EINVAL, "pool %s: ring flags HTS and MPMC exclude each other",
				   name);
	return 0;
}

static unsigned ring_flags(unsigned flags)
{
	if (flags & MOIRAI_POOL_F_RING_HTS)
		return RING_F_MP_HTS_ENQ | RING_F_MC_HTS_DEQ | RING_F_EXACT_SZ;
	if (flags & MOIRAI_POOL_F_RING_MPMC)
		return RING_F_EXACT_SZ;
	return RING_F_MP_RTS_ENQ | RING_F_MC_RTS_DEQ | RING_F_EXACT_SZ;
}

/*
 * Ring slots for n objects.  A put must never find the ring full, since
 * every object fits.  That holds for HTS and classic MP/MC, whose tail has
 * moved past an operation before it returns.  RTS lets a finished dequeue
 * return while the consumer tail still lags (it moves when the last
 * concurrent dequeue ends), so objects already taken, and possibly put
 * back, still count as occupying slots.  The lag is at most htd_max plus
 * one burst (<= n): 2n + htd slots make the put always succeed.
 */
static unsigned ring_slots(unsigned n, unsigned flags, unsigned *htd)
{
	*htd = 0;
	if (flags & (MOIRAI_POOL_F_RING_HTS | MOIRAI_POOL_F_RING_MPMC))
		return n;
	*htd = n / 8 ? n / 8 : 1;
	return 2 * n + *htd;
}

int moirai_pool_create(const char *name, size_t obj_size, unsigned n_objs, int node, unsigned flags,
		       struct moirai_pool **out)
{
	size_t align, stride, hdr_len, ring_len, bits_len, total;
	unsigned slots, htd;
	struct moirai_pool *pool;
	char ring_name[RTE_RING_NAMESIZE];
	bool debug;
	ssize_t rsz;
	void *map;
	int rc;

	rc = check_args(name, n_objs, obj_size, node, flags, out);
	if (rc)
		return rc;
	*out = NULL;
	node = moirai_numa_node_resolve(node);
	if (node < 0)
		return moirai__err(node, "pool %s: %s", name, moirai_last_error());
	debug = !(flags & MOIRAI_POOL_F_NO_DEBUG) &&
		((flags & MOIRAI_POOL_F_DEBUG) || MOIRAI__POOL_DEBUG_BUILD ||
		 moirai_option_get(MOIRAI_OPT_DEBUG) != 0);

	align = (flags & MOIRAI_POOL_F_CACHE_ALIGN) ? MOIRAI_CACHE_LINE : 16;
	stride = moirai__align_up(obj_size, align);
	hdr_len = moirai__align_up(sizeof(*pool), MOIRAI_CACHE_LINE);
	slots = ring_slots(n_objs, flags, &htd);
	/* RING_F_EXACT_SZ rounds the slot count up internally (rte_ring.c). */
	rsz = rte_ring_get_memsize(rte_align32pow2(slots + 1));
	if (rsz < 0)
		return moirai__err(-EINVAL, "pool %s: ring of %u slots: %s", name, n_objs,
				   moirai_strerror((int)rsz));
	ring_len = moirai__align_up((size_t)rsz, MOIRAI_CACHE_LINE);
	bits_len = debug ? moirai__align_up((n_objs + 63) / 64 * sizeof(unsigned long),
					    MOIRAI_CACHE_LINE)
			 : 0;
	total = hdr_len + ring_len + bits_len + stride * n_objs;

	rc = moirai__ring_mem_acquire(total, node, &map);
	if (rc)
		return rc;
	pool = map;
	/* Header, ring and debug bitmap start zeroed; objects stay untouched. */
	memset(map, 0, hdr_len + ring_len + bits_len);
	pool->map = map;
	pool->map_len = total;
	pool->ring = (struct rte_ring *)((char *)map + hdr_len);
	pool->free_bits =
		debug ? (_Atomic unsigned long *)((char *)map + hdr_len + ring_len) : NULL;
	pool->base = (char *)map + hdr_len + ring_len + bits_len;
	pool->end = pool->base + stride * n_objs;
	pool->stride = stride;
	pool->obj_size = stride;
	pool->n_objs = n_objs;
	pool->flags = flags;
	pool->node = node;
	pool->debug = debug;
	moirai__list_init(&pool->caches);
	snprintf(pool->name, sizeof(pool->name), "%s", name);

	snprintf(ring_name, sizeof(ring_name), "mp_%s", name);
	rc = rte_ring_init(pool->ring, ring_name, slots, ring_flags(flags));
	if (rc) {
		rc = moirai__err(rc < 0 ? rc : -EINVAL, "pool %s: rte_ring_init(%u) failed: %s",
				 name, slots, moirai_strerror(rc));
		goto err_unmap;
	}
	if (htd) {
		rte_ring_set_prod_htd_max(pool->ring, htd);
		rte_ring_set_cons_htd_max(pool->ring, htd);
	}
	rc = pthread_mutex_init(&pool->lock, NULL);
	if (rc) {
		rc = moirai__err(-rc, "pool %s: mutex init: %s", name, moirai_strerror(rc));
		goto err_unmap;
	}
	/* Without a key only moirai_pool_thread_cache() is unavailable. */
	pool->key_ok = pthread_key_create(&pool->key, moirai__pool_thread_cache_dtor) == 0;

	/* The arena placed the mapping on @node: a write from this thread
	 * faults each page in there.  Object contents are undefined, so a
	 * zero byte per page is as good as any. */
	if (flags & MOIRAI_POOL_F_POPULATE)
		for (char *p = pool->base; p < pool->end; p += 4096)
			*(volatile char *)p = 0;
	/* Fill the ring; this touches no object, so pages stay unallocated
	 * (unless populated above). */
	for (unsigned i = 0; i < n_objs; i += FILL_BATCH) {
		void *batch[FILL_BATCH];
		unsigned k = n_objs - i < FILL_BATCH ? n_objs - i : FILL_BATCH;

		for (unsigned j = 0; j < k; j++)
			batch[j] = pool->base + (size_t)(i + j) * stride;
		if (rte_ring_enqueue_bulk(pool->ring, batch, k, NULL) != k) {
			rc = moirai__err(-EINVAL, "pool %s: ring refused %u objects", name, n_objs);
			goto err_key;
		}
	}
	if (debug)
		for (unsigned i = 0; i < n_objs; i++)
			atomic_fetch_or_explicit(&pool->free_bits[i / 64], 1UL << (i % 64),
						 memory_order_relaxed);
	*out = pool;
	return 0;

err_key:
	if (pool->key_ok)
		pthread_key_delete(pool->key);
	pthread_mutex_destroy(&pool->lock);
err_unmap:
	moirai__ring_mem_release(map, total);
	return rc;
}

void moirai_pool_destroy(struct moirai_pool *pool)
{
	if (!pool)
		return;
	/* Delete the key first: exiting threads then no longer run the
	 * destructor on caches that are about to be freed. */
	if (pool->key_ok)
		pthread_key_delete(pool->key);
	moirai__pool_caches_free_all(pool);
	if (moirai_pool_in_use_count(pool))
		moirai__log(MOIRAI_LOG_DEBUG, "pool %s: destroyed with %u objects in use",
			    pool->name, moirai_pool_in_use_count(pool));
	pthread_mutex_destroy(&pool->lock);
	moirai__ring_mem_release(pool->map, pool->map_len);
}

/* A NULL pool handed to a query: recorded, then the documented value. */
static void null_pool(const char *what)
{
	moirai__err(-EINVAL, "pool: NULL pool passed to %s", what);
}

unsigned moirai_pool_avail_count(const struct moirai_pool *pool)
{
	struct moirai_pool *p = (struct moirai_pool *)pool;
	unsigned n;

	if (!pool) {
		null_pool("moirai_pool_avail_count");
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	n = rte_ring_count(pool->ring) + moirai__pool_caches_len(pool);
	pthread_mutex_unlock(&p->lock);
	/* A racing reader can see an object both in a cache and the ring. */
	return n > pool->n_objs ? pool->n_objs : n;
}

unsigned moirai_pool_in_use_count(const struct moirai_pool *pool)
{
	if (!pool) {
		null_pool("moirai_pool_in_use_count");
		return 0;
	}
	return pool->n_objs - moirai_pool_avail_count(pool);
}

unsigned moirai_pool_size(const struct moirai_pool *pool)
{
	if (!pool) {
		null_pool("moirai_pool_size");
		return 0;
	}
	return pool->n_objs;
}

size_t moirai_pool_obj_size(const struct moirai_pool *pool)
{
	if (!pool) {
		null_pool("moirai_pool_obj_size");
		return 0;
	}
	return pool->obj_size;
}

int moirai_pool_node(const struct moirai_pool *pool)
{
	if (!pool) {
		null_pool("moirai_pool_node");
		return -EINVAL;
	}
	return pool->node;
}

bool moirai_pool_contains(const struct moirai_pool *pool, const void *ptr)
{
	const char *p = ptr;

	if (!pool) {
		null_pool("moirai_pool_contains");
		return false;
	}
	if (!ptr || p < pool->base || p >= pool->end)
		return false;
	return (size_t)(p - pool->base) % pool->stride == 0;
}
