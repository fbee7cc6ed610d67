/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The index ring of the shared-memory transport: single producer, single
 * consumer across two processes, one of which may be hostile.  Never
 * installed.
 *
 * Why not rte_ring: DPDK reads size, mask, capacity, sync mode and the
 * head/tail pairs from the ring header on every call, and that header is
 * in the segment, where the peer can rewrite it between our check and our
 * use (a forged mask sent our enqueue gigabytes past the mapping).  Here
 * everything that forms an address is local (struct shm_ring_end): our
 * position, the mask, the capacity.  The segment holds only the two
 * published positions and the slots:
 *
 *   - A peer's position is read once per operation, and its distance from
 *     ours is clamped to [0, capacity] (shm_ring_dist): a lie can make the
 *     ring look full or empty or fuller than it is, never send an access
 *     outside the slot array, since every slot is addressed as
 *     slots[(our position + i) & our mask].  A consumer facing a producer
 *     more than capacity ahead skips to its last capacity entries
 *     (shm_ring_take_avail), so garbage is bounded even after the liar
 *     died.
 *   - What a slot holds is a buffer index, validated by the caller before
 *     it is used (shm_msg.c).
 *   - Our own position is never read back from the segment: a peer that
 *     rewrites it changes nothing for us.
 *
 * Memory ordering (each pair named where it is used):
 *   (R1) producer: slot stores, then release store of prod  --pairs with--
 *        (A1) consumer: acquire load of prod, then slot loads.  Also
 *        publishes the buffer's length and payload, written before.
 *   (R2) consumer: slot loads, then release store of cons   --pairs with--
 *        (A2) producer: acquire load of cons, then slot stores: a slot is
 *        overwritten only after its old value was read.
 * Slots are _Atomic and accessed relaxed: the peer may write them at any
 * time, and relaxed atomics keep that a well-defined value instead of a
 * data race; the pairs above give the ordering.
 *
 * Callers hold e->lock (one thread of this process per end at a time),
 * except for the read-only peeks shm_ring_room() and shm_ring_avail().
 */
#ifndef MOIRAI_SHM_RING_H
#define MOIRAI_SHM_RING_H

#include "shm_int.h"

/*
 * Clamp a distance between a peer's position and ours to [0, @cap].  A
 * distance with the top bit set means the peer claims to be behind where
 * it can be (positions are free-running uint32): count it as 0.
 */
static inline uint32_t shm_ring_dist(uint32_t dist, uint32_t cap)
{
	if (dist & 0x80000000u)
		return 0;
	return dist < cap ? dist : cap;
}

/*
 * Our position.  Written only under e->lock; atomic (relaxed, a plain move
 * on x86) so that lock-free peeks (is anything there? how many returns?)
 * are not data races.
 */
static inline uint32_t shm_ring_pos(const struct shm_ring_end *e)
{
	return atomic_load_explicit(&e->pos, memory_order_relaxed);
}

/* Producer: free slots, from one observation of the consumer's position. */
static inline uint32_t shm_ring_room(const struct shm_ring_end *e)
{
	/* (A2) pairs with the consumer's release store (R2). */
	uint32_t cons = atomic_load_explicit(e->theirs, memory_order_acquire);

	return e->capacity - shm_ring_dist(shm_ring_pos(e) - cons, e->capacity);
}

/*
 * Consumer: how far the producer claims to be ahead of us, unclamped (a
 * value above capacity, top bit included, is a lie), from one observation.
 */
static inline uint32_t shm_ring_ahead(const struct shm_ring_end *e)
{
	/* (A1) pairs with the producer's release store (R1). */
	uint32_t prod = atomic_load_explicit(e->theirs, memory_order_acquire);

	return prod - shm_ring_pos(e);
}

/* Consumer: filled slots, from one observation of the producer's position. */
static inline uint32_t shm_ring_avail(const struct shm_ring_end *e)
{
	return shm_ring_dist(shm_ring_ahead(e), e->capacity);
}

/*
 * Consumer, under the lock: filled slots, from one observation of the
 * producer's position.  An honest producer is never more than capacity
 * ahead of us (it checks the room first), so a larger distance is a lie;
 * we then move up to the producer's last capacity entries, so that a dead
 * liar leaves at most capacity entries of garbage to drain, not 2^31.
 */
static inline uint32_t shm_ring_take_avail(struct shm_ring_end *e)
{
	/* (A1) pairs with the producer's release store (R1). */
	uint32_t prod = atomic_load_explicit(e->theirs, memory_order_acquire);
	uint32_t dist = prod - shm_ring_pos(e);

	if (dist & 0x80000000u)
		return 0;
	if (dist > e->capacity) {
		atomic_store_explicit(&e->pos, prod - e->capacity, memory_order_relaxed);
		dist = e->capacity;
	}
	return dist;
}

/* Producer: store @n indexes (the caller checked the room) and publish. */
static inline void shm_ring_put(struct shm_ring_end *e, const uint32_t *idx, uint32_t n)
{
	uint32_t pos = shm_ring_pos(e);

	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&e->slots[(pos + i) & e->mask], idx[i], memory_order_relaxed);
	pos += n;
	atomic_store_explicit(&e->pos, pos, memory_order_relaxed);
	/* (R1) pairs with the consumer's acquire load (A1). */
	atomic_store_explicit(e->mine, pos, memory_order_release);
}

/* Consumer: load @n indexes (the caller checked they are there), publish. */
static inline void shm_ring_get(struct shm_ring_end *e, uint32_t *idx, uint32_t n)
{
	uint32_t pos = shm_ring_pos(e);

	for (uint32_t i = 0; i < n; i++)
		idx[i] = atomic_load_explicit(&e->slots[(pos + i) & e->mask], memory_order_relaxed);
	pos += n;
	atomic_store_explicit(&e->pos, pos, memory_order_relaxed);
	/* (R2) pairs with the producer's acquire load (A2). */
	atomic_store_explicit(e->mine, pos, memory_order_release);
}

/* All @n or nothing: @n or 0. */
static inline uint32_t shm_ring_enqueue_bulk(struct shm_ring_end *e, const uint32_t *idx,
					     uint32_t n)
{
	if (shm_ring_room(e) < n)
		return 0;
	shm_ring_put(e, idx, n);
	return n;
}

/* Up to @max: 0..max. */
static inline uint32_t shm_ring_dequeue_burst(struct shm_ring_end *e, uint32_t *idx, uint32_t max)
{
	uint32_t n = shm_ring_take_avail(e);

	if (n > max)
		n = max;
	if (n)
		shm_ring_get(e, idx, n);
	return n;
}

#endif /* MOIRAI_SHM_RING_H */
