/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Object pool caches and the out-of-line halves of get/put.
 *
 * A cache is a LIFO stack of free object pointers owned by one thread.  The
 * inline fast path (include/moirai/pool_inline.h) serves a get while the
 * cache holds enough objects and a put while it has room below 2 * size.
 * Otherwise the call lands here:
 *   - get: refill the cache from the ring up to `size` after serving the
 *     request; if the ring cannot supply that much, take just what the
 *     request lacks; if not even that, fail with -ENOENT taking nothing;
 *   - put: flush the oldest objects (bottom of the stack: the coldest) so
 *     that the cache holds `size` after the put;
 *   - requests larger than the cache, or without a cache, go straight to
 *     the ring, which is all-or-nothing by itself (rte_ring *_bulk).
 * Debug pools take this path for every call so that each object's "free"
 * bit can be checked and flipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "moirai/alloc.h"
#include "pool_int.h"

void moirai__pool_thread_cache_dtor(void *arg);

static void cache_register(struct moirai_pool *pool, struct moirai__pool_cache *pc)
{
	pthread_mutex_lock(&pool->lock);
	moirai__list_add_head(&pool->caches, &pc->link);
	pthread_mutex_unlock(&pool->lock);
}

static void cache_unregister(struct moirai_pool *pool, struct moirai__pool_cache *pc)
{
	pthread_mutex_lock(&pool->lock);
	moirai__list_del(&pc->link);
	pthread_mutex_unlock(&pool->lock);
}

unsigned moirai__pool_caches_len(const struct moirai_pool *pool)
{
	const struct moirai__list *it;
	unsigned n = 0;

	moirai__list_foreach(it, &pool->caches) {
		const struct moirai__pool_cache *pc =
			moirai__list_entry(it, const struct moirai__pool_cache, link);

		n += __atomic_load_n(&pc->pub.len, __ATOMIC_RELAXED);
	}
	return n;
}

static int cache_alloc(struct moirai_pool *pool, unsigned size, bool thread,
		       struct moirai_pool_cache **out)
{
	struct moirai__pool_cache *pc;
	/* Header, then the slots right behind it (moirai__pool_cache_slots). */
	size_t len = moirai__align_up(sizeof(*pc) + 2 * (size_t)size * sizeof(void *),
				      (size_t)MOIRAI_CACHE_LINE);

	/*
	 * On the calling thread's node (the thread that will use it), from the
	 * node arena rather than libc, whose first malloc in a thread reserves
	 * a 64 MiB glibc arena (RLIMIT_AS).
	 */
	pc = moirai_aligned_alloc(MOIRAI_CACHE_LINE, len);
	if (!pc)
		return moirai__err(-ENOMEM, "pool %s: cannot allocate a cache of %u: %s",
				   pool->name, size, moirai_last_error());
	memset(pc, 0, sizeof(*pc));
	pc->pub.cap = 2 * size;
	/* Injected pool_get faults must see cache hits too: the flag sends
	 * every call of this cache to the out-of-line path. */
	pc->pub.debug = pool->debug || moirai__fault_on(MOIRAI_FAULT_POOL_GET);
	pc->size = size;
	pc->thread_cache = thread;
	pc->pool = pool;
	cache_register(pool, pc);
	*out = &pc->pub;
	return 0;
}

int moirai_pool_cache_create(struct moirai_pool *pool, unsigned size,
			     struct moirai_pool_cache **out)
{
	if (!pool || !out)
		return moirai__err(-EINVAL, "pool: NULL pool or output pointer");
	*out = NULL;
	if (size == 0 || size > MOIRAI_POOL_CACHE_MAX)
		return moirai__err(-EINVAL, "pool %s: cache size %u is not in 1..%u", pool->name,
				   size, MOIRAI_POOL_CACHE_MAX);
	return cache_alloc(pool, size, false, out);
}

static int ring_put(struct moirai_pool *pool, void *const *objs, unsigned n)
{
	/* The ring holds n_objs slots, so only foreign pointers can fill it. */
	if (rte_ring_enqueue_bulk(pool->ring, objs, n, NULL) != n)
		return moirai__err(-ENOSPC, "pool %s: ring full: foreign objects were put",
				   pool->name);
	return 0;
}

void moirai_pool_cache_flush(struct moirai_pool_cache *c)
{
	uint32_t len;

	if (!c)
		return;
	len = __atomic_load_n(&c->len, __ATOMIC_RELAXED);
	if (len && ring_put(moirai__pool_cache_of(c)->pool, moirai__pool_cache_slots(c), len) == 0)
		__atomic_store_n(&c->len, 0, __ATOMIC_RELAXED);
}

static void cache_free(struct moirai__pool_cache *pc)
{
	moirai_pool_cache_flush(&pc->pub);
	cache_unregister(pc->pool, pc);
	moirai_free(pc);
}

void moirai_pool_cache_destroy(struct moirai_pool_cache *c)
{
	struct moirai__pool_cache *pc;
	struct moirai_pool *pool;

	if (!c)
		return;
	pc = moirai__pool_cache_of(c);
	pool = pc->pool;
	if (pc->thread_cache) {
		/* Another thread's cache: freeing it would leave that thread's
		 * key pointing at freed memory (and its exit destructor would
		 * free it again). Only the owner, or pool destroy, may. */
		if (!pool->key_ok || pthread_getspecific(pool->key) != c) {
			moirai__err(-EINVAL,
				    "pool %s: thread cache destroyed by another thread; ignored",
				    pool->name);
			moirai__log(MOIRAI_LOG_WARN, "%s", moirai_last_error());
			return;
		}
		pthread_setspecific(pool->key, NULL);
	}
	cache_free(pc);
}

void moirai__pool_thread_cache_dtor(void *arg)
{
	/* Thread exit (the key's value is already NULL here): the pool is
	 * alive, since pool destroy deletes the key first. */
	cache_free(moirai__pool_cache_of(arg));
}

void moirai__pool_caches_free_all(struct moirai_pool *pool)
{
	struct moirai__list *it, *tmp;

	pthread_mutex_lock(&pool->lock);
	moirai__list_foreach_safe(it, tmp, &pool->caches) {
		moirai__list_del(it);
		moirai_free(moirai__list_entry(it, struct moirai__pool_cache, link));
	}
	pthread_mutex_unlock(&pool->lock);
}

int moirai_pool_thread_cache(struct moirai_pool *pool, struct moirai_pool_cache **out)
{
	struct moirai_pool_cache *c;
	int rc;

	if (!pool || !out)
		return moirai__err(-EINVAL, "pool: NULL pool or output pointer");
	if (!pool->key_ok)
		return moirai__err(-ENOMEM, "pool %s: no pthread key left for thread caches",
				   pool->name);
	c = pthread_getspecific(pool->key);
	if (c) {
		*out = c;
		return 0;
	}
	rc = cache_alloc(pool, MOIRAI_POOL_CACHE_DEFAULT, true, &c);
	if (rc)
		return rc;
	rc = pthread_setspecific(pool->key, c);
	if (rc) {
		/* Not in the key, so destroy() would refuse it: free directly. */
		cache_free(moirai__pool_cache_of(c));
		return moirai__err(-rc, "pool %s: pthread_setspecific: %s", pool->name,
				   moirai_strerror(rc));
	}
	*out = c;
	return 0;
}

/* ---- debug bookkeeping ---------------------------------------------- */

int moirai__pool_debug_check_put(struct moirai_pool *pool, void *const *objs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (!moirai_pool_contains(pool, objs[i]))
			return moirai__err(
				-EINVAL, "pool %s: put of %p, which is not an object of this pool",
				pool->name, objs[i]);
	for (i = 0; i < n; i++) {
		size_t idx = moirai__pool_index(pool, objs[i]);
		unsigned long bit = 1UL << (idx % 64);
		/* Relaxed: the bit is bookkeeping; the object itself is
		 * published by the ring's own release/acquire. */
		unsigned long old = atomic_fetch_or_explicit(&pool->free_bits[idx / 64], bit,
							     memory_order_relaxed);

		if (old & bit)
			break;
	}
	if (i == n)
		return 0;
	/* Double put: undo the bits this call set, then report. */
	void *dup = objs[i];

	while (i-- > 0) {
		size_t idx = moirai__pool_index(pool, objs[i]);

		atomic_fetch_and_explicit(&pool->free_bits[idx / 64], ~(1UL << (idx % 64)),
					  memory_order_relaxed);
	}
	return moirai__err(-EINVAL, "pool %s: double put of object %p", pool->name, dup);
}

void moirai__pool_debug_mark_taken(struct moirai_pool *pool, void *const *objs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		size_t idx = moirai__pool_index(pool, objs[i]);
		unsigned long bit = 1UL << (idx % 64);
		unsigned long old = atomic_fetch_and_explicit(&pool->free_bits[idx / 64], ~bit,
							      memory_order_relaxed);

		/* A free object handed out twice is a pool bug, not input. */
		moirai_assert_internal(old & bit);
		(void)old;
	}
}

/* ---- slow paths ------------------------------------------------------ */

static int check_call(struct moirai_pool *pool, struct moirai_pool_cache *c, const void *objs,
		      unsigned n)
{
	if (!pool || (!objs && n))
		return moirai__err(-EINVAL, "pool: NULL pool or object array");
	if (c && moirai__pool_cache_of(c)->pool != pool)
		return moirai__err(-EINVAL, "pool %s: cache belongs to pool %s", pool->name,
				   moirai__pool_cache_of(c)->pool->name);
	return 0;
}

static void cache_pop(struct moirai_pool_cache *c, uint32_t len, void **objs, unsigned n)
{
	void **top = moirai__pool_cache_slots(c) + len;

	for (unsigned i = 0; i < n; i++)
		objs[i] = *--top;
	__atomic_store_n(&c->len, len - n, __ATOMIC_RELAXED);
}

static int get_raw(struct moirai_pool *pool, struct moirai_pool_cache *c, void **objs, unsigned n)
{
	uint32_t len, want, size;
	void **slots;

	if (!c)
		return rte_ring_dequeue_bulk(pool->ring, objs, n, NULL) == n ? 0 : -ENOENT;
	size = moirai__pool_cache_of(c)->size;
	slots = moirai__pool_cache_slots(c);
	len = __atomic_load_n(&c->len, __ATOMIC_RELAXED);
	if (n > size && n > len) {
		/* Too big to stage in the cache: the ring supplies what the
		 * cache lacks, then the cache empties into the rest. */
		want = n - len;
		if (rte_ring_dequeue_bulk(pool->ring, objs, want, NULL) != want)
			return -ENOENT;
		cache_pop(c, len, objs + want, len);
		return 0;
	}
	if (n > len) {
		/* Refill so that `size` objects remain after serving n. */
		want = size + n - len;
		if (rte_ring_dequeue_bulk(pool->ring, slots + len, want, NULL) != want) {
			want = n - len;
			if (rte_ring_dequeue_bulk(pool->ring, slots + len, want, NULL) != want)
				return -ENOENT;
		}
		len += want;
	}
	cache_pop(c, len, objs, n);
	return 0;
}

int moirai_pool_get_generic(struct moirai_pool *pool, struct moirai_pool_cache *c, void **objs,
			    unsigned n)
{
	int rc = check_call(pool, c, objs, n);

	if (rc || n == 0)
		return rc;
	/* Injected (MOIRAI_FAULT pool_get): the "empty" outcome, nothing taken. */
	if (moirai__fault_hit(MOIRAI_FAULT_POOL_GET))
		return -ENOENT;
	rc = get_raw(pool, c, objs, n);
	if (rc == 0 && pool->debug)
		moirai__pool_debug_mark_taken(pool, objs, n);
	return rc;
}

static int put_raw(struct moirai_pool *pool, struct moirai_pool_cache *c, void *const *objs,
		   unsigned n)
{
	uint32_t len, k, size;
	void **slots;
	int rc;

	if (!c || n > (size = moirai__pool_cache_of(c)->size))
		return ring_put(pool, objs, n);
	slots = moirai__pool_cache_slots(c);
	len = __atomic_load_n(&c->len, __ATOMIC_RELAXED);
	if (n > c->cap - len) {
		/* Flush the k oldest so that `size` remain after the put. */
		k = len + n - size;
		rc = ring_put(pool, slots, k);
		if (rc)
			return rc;
		memmove(slots, slots + k, (len - k) * sizeof(void *));
		len -= k;
	}
	memcpy(slots + len, objs, n * sizeof(void *));
	__atomic_store_n(&c->len, len + n, __ATOMIC_RELAXED);
	return 0;
}

int moirai_pool_put_generic(struct moirai_pool *pool, struct moirai_pool_cache *c,
			    void *const *objs, unsigned n)
{
	int rc = check_call(pool, c, objs, n);

	if (rc || n == 0)
		return rc;
	if (pool->debug) {
		rc = moirai__pool_debug_check_put(pool, objs, n);
		if (rc)
			return rc;
	}
	rc = put_raw(pool, c, objs, n);
	if (rc && pool->debug)
		moirai__pool_debug_mark_taken(pool, objs, n);
	return rc;
}
