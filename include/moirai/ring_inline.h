/**
 * @file moirai/ring_inline.h
 * @brief Fast paths of moirai rings: static inline wrappers over the
 *        rte_ring inlines.  Include moirai/ring.h instead of this file.
 *
 * Every call returns a count: bulk calls n or 0, burst calls 0..n, with an
 * optional out-parameter for the free space (enqueue) or the objects left
 * (dequeue).  No logging, no errno, no argument checks: the handle must be
 * a live ring and the mode-named calls must match the mode the ring was
 * created with (see moirai/ring.h): RTS and HTS rings keep their head and
 * tail in a different layout from classic SP/MP/SC/MC rings.
 * The generic calls (no mode in the name) use the mode chosen at create.
 */
#ifndef MOIRAI_RING_INLINE_H
#define MOIRAI_RING_INLINE_H

#ifndef MOIRAI_RING_H
#error "include moirai/ring.h instead of moirai/ring_inline.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * always_inline, as DPDK's own __rte_always_inline: with plain inline gcc
 * outlines these wrappers (each carries a whole rte_ring body) and the
 * call costs ~15% on the single-thread benchmark (moirai-bench ring,
 * single_thread_b*: 7.0 vs 5.9 ns/item at burst 1 before this).
 */
#define MOIRAI__RING_INLINE static inline __attribute__((always_inline))

/*
 * The rte_ring sits MOIRAI__RING_HDR_SIZE bytes after the handle: a
 * constant offset, so the wrappers cost nothing over calling rte_ring.
 */
MOIRAI__RING_INLINE struct rte_ring *moirai__ring_rte(const struct moirai_ring *r)
{
	return (struct rte_ring *)((uintptr_t)r + MOIRAI__RING_HDR_SIZE);
}

/**
 * The rte_ring behind a moirai ring, for code that must call DPDK directly.
 * @param r the ring.
 * @return the rte_ring; valid while @p r is.  Thread-safe.
 */
static inline struct rte_ring *moirai_ring_rte(struct moirai_ring *r)
{
	return moirai__ring_rte(r);
}

/**
 * Objects in the ring now (a snapshot: other threads may change it).
 * @param r the ring.
 * @return 0..capacity.  Thread-safe.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_count(const struct moirai_ring *r)
{
	const struct rte_ring *rr = moirai__ring_rte(r);
	/*
	 * Every sync mode keeps its 32-bit tail position at the same offset
	 * (rte_ring_core.h), so prod.tail/cons.tail are valid for RTS and HTS
	 * too.  Acquire loads pair with the release stores of the tails in
	 * the enqueue/dequeue bodies; they also make the read visible to TSan.
	 */
	uint32_t prod = __atomic_load_n(&rr->prod.tail, __ATOMIC_ACQUIRE);
	uint32_t cons = __atomic_load_n(&rr->cons.tail, __ATOMIC_ACQUIRE);
	uint32_t count = (prod - cons) & rr->mask;

	return count > rr->capacity ? rr->capacity : count;
}

/**
 * Objects the ring can hold.
 * @param r the ring.
 * @return the capacity.  Thread-safe.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_capacity(const struct moirai_ring *r)
{
	return moirai__ring_rte(r)->capacity;
}

/**
 * Free slots now (a snapshot).
 * @param r the ring.
 * @return capacity - count.  Thread-safe.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_free_count(const struct moirai_ring *r)
{
	return moirai_ring_capacity(r) - moirai_ring_count(r);
}

/**
 * Whether the ring is full now (a snapshot).
 * @param r the ring.
 * @return true when no slot is free.  Thread-safe.
 */
static inline bool moirai_ring_full(const struct moirai_ring *r)
{
	return moirai_ring_free_count(r) == 0;
}

/**
 * Whether the ring is empty now (a snapshot).
 * @param r the ring.
 * @return true when it holds nothing.  Thread-safe.
 */
static inline bool moirai_ring_empty(const struct moirai_ring *r)
{
	return moirai_ring_count(r) == 0;
}

/**
 * Enqueue all @p n objects or none (pointers); single producer: only one thread enqueues at a time. Use on a ring created with MOIRAI_RING_SP_ENQ or MOIRAI_RING_MP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sp_enqueue_bulk(struct moirai_ring *r, void *const *objs,
							 unsigned n, unsigned *free_space)
{
	return rte_ring_sp_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); single producer: only one thread enqueues at a time. Use on a ring created with MOIRAI_RING_SP_ENQ or MOIRAI_RING_MP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sp_enqueue_bulk_elem(struct moirai_ring *r,
							      const void *objs, unsigned esize,
							      unsigned n, unsigned *free_space)
{
	return rte_ring_sp_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue all @p n objects or none (pointers); classic multi-producer: MP-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MP_ENQ or MOIRAI_RING_SP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_enqueue_bulk(struct moirai_ring *r, void *const *objs,
							 unsigned n, unsigned *free_space)
{
	return rte_ring_mp_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); classic multi-producer: MP-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MP_ENQ or MOIRAI_RING_SP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_enqueue_bulk_elem(struct moirai_ring *r,
							      const void *objs, unsigned esize,
							      unsigned n, unsigned *free_space)
{
	return rte_ring_mp_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue all @p n objects or none (pointers); multi-producer, relaxed tail sync: MP-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_rts_enqueue_bulk(struct moirai_ring *r,
							     void *const *objs, unsigned n,
							     unsigned *free_space)
{
	return rte_ring_mp_rts_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); multi-producer, relaxed tail sync: MP-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_rts_enqueue_bulk_elem(struct moirai_ring *r,
								  const void *objs, unsigned esize,
								  unsigned n, unsigned *free_space)
{
	return rte_ring_mp_rts_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue all @p n objects or none (pointers); multi-producer, head/tail sync: MP-safe. Use only on a ring created with MOIRAI_RING_MP_HTS_ENQ.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_hts_enqueue_bulk(struct moirai_ring *r,
							     void *const *objs, unsigned n,
							     unsigned *free_space)
{
	return rte_ring_mp_hts_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); multi-producer, head/tail sync: MP-safe. Use only on a ring created with MOIRAI_RING_MP_HTS_ENQ.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_hts_enqueue_bulk_elem(struct moirai_ring *r,
								  const void *objs, unsigned esize,
								  unsigned n, unsigned *free_space)
{
	return rte_ring_mp_hts_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue all @p n objects or none (pointers); mode chosen at create time (one branch on the ring's sync type, as rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						      unsigned n, unsigned *free_space)
{
	return rte_ring_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue all @p n objects or none (elements of @p esize bytes); mode chosen at create time (one branch on the ring's sync type, as rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
							   unsigned esize, unsigned n,
							   unsigned *free_space)
{
	return rte_ring_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Dequeue all @p n objects or none (pointers); single consumer: only one thread dequeues at a time. Use on a ring created with MOIRAI_RING_SC_DEQ or MOIRAI_RING_MC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sc_dequeue_bulk(struct moirai_ring *r, void **objs,
							 unsigned n, unsigned *available)
{
	return rte_ring_sc_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); single consumer: only one thread dequeues at a time. Use on a ring created with MOIRAI_RING_SC_DEQ or MOIRAI_RING_MC_DEQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sc_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							      unsigned esize, unsigned n,
							      unsigned *available)
{
	return rte_ring_sc_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue all @p n objects or none (pointers); classic multi-consumer: MC-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MC_DEQ or MOIRAI_RING_SC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_dequeue_bulk(struct moirai_ring *r, void **objs,
							 unsigned n, unsigned *available)
{
	return rte_ring_mc_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); classic multi-consumer: MC-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MC_DEQ or MOIRAI_RING_SC_DEQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							      unsigned esize, unsigned n,
							      unsigned *available)
{
	return rte_ring_mc_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue all @p n objects or none (pointers); multi-consumer, relaxed tail sync: MC-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_rts_dequeue_bulk(struct moirai_ring *r, void **objs,
							     unsigned n, unsigned *available)
{
	return rte_ring_mc_rts_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); multi-consumer, relaxed tail sync: MC-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_rts_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
								  unsigned esize, unsigned n,
								  unsigned *available)
{
	return rte_ring_mc_rts_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue all @p n objects or none (pointers); multi-consumer, head/tail sync: MC-safe. Use only on a ring created with MOIRAI_RING_MC_HTS_DEQ.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_hts_dequeue_bulk(struct moirai_ring *r, void **objs,
							     unsigned n, unsigned *available)
{
	return rte_ring_mc_hts_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); multi-consumer, head/tail sync: MC-safe. Use only on a ring created with MOIRAI_RING_MC_HTS_DEQ.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_hts_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
								  unsigned esize, unsigned n,
								  unsigned *available)
{
	return rte_ring_mc_hts_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue all @p n objects or none (pointers); mode chosen at create time (one branch on the ring's sync type, as rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_dequeue_bulk(struct moirai_ring *r, void **objs,
						      unsigned n, unsigned *available)
{
	return rte_ring_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue all @p n objects or none (elements of @p esize bytes); mode chosen at create time (one branch on the ring's sync type, as rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return @p n or 0.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							   unsigned esize, unsigned n,
							   unsigned *available)
{
	return rte_ring_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); single producer: only one thread enqueues at a time. Use on a ring created with MOIRAI_RING_SP_ENQ or MOIRAI_RING_MP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sp_enqueue_burst(struct moirai_ring *r, void *const *objs,
							  unsigned n, unsigned *free_space)
{
	return rte_ring_sp_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize bytes); single producer: only one thread enqueues at a time. Use on a ring created with MOIRAI_RING_SP_ENQ or MOIRAI_RING_MP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sp_enqueue_burst_elem(struct moirai_ring *r,
							       const void *objs, unsigned esize,
							       unsigned n, unsigned *free_space)
{
	return rte_ring_sp_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); classic multi-producer: MP-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MP_ENQ or MOIRAI_RING_SP_ENQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_enqueue_burst(struct moirai_ring *r, void *const *objs,
							  unsigned n, unsigned *free_space)
{
	return rte_ring_mp_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize bytes); classic multi-producer: MP-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MP_ENQ or MOIRAI_RING_SP_ENQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_enqueue_burst_elem(struct moirai_ring *r,
							       const void *objs, unsigned esize,
							       unsigned n, unsigned *free_space)
{
	return rte_ring_mp_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); multi-producer, relaxed tail sync: MP-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_rts_enqueue_burst(struct moirai_ring *r,
							      void *const *objs, unsigned n,
							      unsigned *free_space)
{
	return rte_ring_mp_rts_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize bytes); multi-producer, relaxed tail sync: MP-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MP_RTS_ENQ (or no enqueue mode).
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_rts_enqueue_burst_elem(struct moirai_ring *r,
								   const void *objs, unsigned esize,
								   unsigned n, unsigned *free_space)
{
	return rte_ring_mp_rts_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); multi-producer, head/tail sync: MP-safe. Use only on a ring created with MOIRAI_RING_MP_HTS_ENQ.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_hts_enqueue_burst(struct moirai_ring *r,
							      void *const *objs, unsigned n,
							      unsigned *free_space)
{
	return rte_ring_mp_hts_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize bytes); multi-producer, head/tail sync: MP-safe. Use only on a ring created with MOIRAI_RING_MP_HTS_ENQ.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mp_hts_enqueue_burst_elem(struct moirai_ring *r,
								   const void *objs, unsigned esize,
								   unsigned n, unsigned *free_space)
{
	return rte_ring_mp_hts_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (pointers); mode chosen at create time (one branch on the ring's sync type, as rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param objs the pointers.
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_enqueue_burst(struct moirai_ring *r, void *const *objs,
						       unsigned n, unsigned *free_space)
{
	return rte_ring_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

/**
 * Enqueue as many of the @p n objects as fit (0..n) (elements of @p esize bytes); mode chosen at create time (one branch on the ring's sync type, as rte_ring_enqueue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param objs array of @p n elements.
 * @param esize element size (a compile-time constant lets the copy unroll).
 * @param n how many.
 * @param[out] free_space if not NULL, free slots left after the call.
 * @return the number enqueued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
							    unsigned esize, unsigned n,
							    unsigned *free_space)
{
	return rte_ring_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); single consumer: only one thread dequeues at a time. Use on a ring created with MOIRAI_RING_SC_DEQ or MOIRAI_RING_MC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sc_dequeue_burst(struct moirai_ring *r, void **objs,
							  unsigned n, unsigned *available)
{
	return rte_ring_sc_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p esize bytes); single consumer: only one thread dequeues at a time. Use on a ring created with MOIRAI_RING_SC_DEQ or MOIRAI_RING_MC_DEQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_sc_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							       unsigned esize, unsigned n,
							       unsigned *available)
{
	return rte_ring_sc_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); classic multi-consumer: MC-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MC_DEQ or MOIRAI_RING_SC_DEQ (classic layout).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_dequeue_burst(struct moirai_ring *r, void **objs,
							  unsigned n, unsigned *available)
{
	return rte_ring_mc_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p esize bytes); classic multi-consumer: MC-safe; not preemption-safe. Use on a ring created with MOIRAI_RING_MC_DEQ or MOIRAI_RING_SC_DEQ (classic layout).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							       unsigned esize, unsigned n,
							       unsigned *available)
{
	return rte_ring_mc_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); multi-consumer, relaxed tail sync: MC-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_rts_dequeue_burst(struct moirai_ring *r, void **objs,
							      unsigned n, unsigned *available)
{
	return rte_ring_mc_rts_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p esize bytes); multi-consumer, relaxed tail sync: MC-safe and tolerant of preemption. Use only on a ring created with MOIRAI_RING_MC_RTS_DEQ (or no dequeue mode).
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_rts_dequeue_burst_elem(struct moirai_ring *r,
								   void *objs, unsigned esize,
								   unsigned n, unsigned *available)
{
	return rte_ring_mc_rts_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); multi-consumer, head/tail sync: MC-safe. Use only on a ring created with MOIRAI_RING_MC_HTS_DEQ.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_hts_dequeue_burst(struct moirai_ring *r, void **objs,
							      unsigned n, unsigned *available)
{
	return rte_ring_mc_hts_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p esize bytes); multi-consumer, head/tail sync: MC-safe. Use only on a ring created with MOIRAI_RING_MC_HTS_DEQ.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_mc_hts_dequeue_burst_elem(struct moirai_ring *r,
								   void *objs, unsigned esize,
								   unsigned n, unsigned *available)
{
	return rte_ring_mc_hts_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (pointers); mode chosen at create time (one branch on the ring's sync type, as rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring (esize sizeof(void *)).
 * @param[out] objs room for @p n pointers.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_dequeue_burst(struct moirai_ring *r, void **objs,
						       unsigned n, unsigned *available)
{
	return rte_ring_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

/**
 * Dequeue as many of the @p n objects as are there (0..n) (elements of @p esize bytes); mode chosen at create time (one branch on the ring's sync type, as rte_ring_dequeue_burst). Safe as that mode is.
 * @param r the ring, created with element size @p esize.
 * @param[out] objs room for @p n elements.
 * @param esize element size.
 * @param n how many.
 * @param[out] available if not NULL, objects left after the call.
 * @return the number dequeued, 0..@p n.
 */
MOIRAI__RING_INLINE unsigned moirai_ring_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							    unsigned esize, unsigned n,
							    unsigned *available)
{
	return rte_ring_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_RING_INLINE_H */
