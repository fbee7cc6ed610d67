/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/ring_inline.h
 * @brief The ring fast paths as static inline functions over DPDK's
 *        rte_ring inlines, for programs that define MOIRAI_RING_INLINE
 *        before including moirai/ring.h (never include this file itself).
 *
 * The same code is compiled out of line into libmoirai (ring/ring_fast.c),
 * which is what programs get by default; the functions are documented
 * with their declarations in moirai/ring.h.  Including this file brings in
 * DPDK's headers and its ring layout: see docs/abi.md.
 */
#ifndef MOIRAI_RING_INLINE_H
#define MOIRAI_RING_INLINE_H

#ifndef MOIRAI_RING_H
#error "define MOIRAI_RING_INLINE and include moirai/ring.h instead of moirai/ring_inline.h"
#endif

#include <rte_config.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * always_inline, as DPDK's own __rte_always_inline: with plain inline gcc
 * outlines these wrappers (each carries a whole rte_ring body) and the
 * call costs ~15% on the single-thread benchmark (moirai-bench ring,
 * single_thread_b*: 7.0 vs 5.9 ns/item at burst 1 before this).
 * ring/ring_fast.c defines MOIRAI__RING_FN as MOIRAI_API to compile the
 * exported out-of-line copies from this same text.
 */
#ifndef MOIRAI__RING_FN
#define MOIRAI__RING_FN static inline __attribute__((always_inline))
#endif

/*
 * Fault injection (MOIRAI_FAULT ring_enqueue) in the exported copies only:
 * ring/ring_fast.c defines this to the library's check, which may fail the
 * call as a full ring would (nothing moved, *free_space set).  Inlined into
 * a program, or into the library's own users of rings, it is nothing.
 */
#ifndef MOIRAI__RING_ENQ_FAULT
#define MOIRAI__RING_ENQ_FAULT(r, free_space) 0
#endif

/** Bytes of moirai header in front of the rte_ring (private layout). */
#define MOIRAI__RING_HDR_SIZE 128

/*
 * The rte_ring sits MOIRAI__RING_HDR_SIZE bytes after the handle: a
 * constant offset, so the wrappers cost nothing over calling rte_ring.
 */
static inline __attribute__((always_inline)) struct rte_ring *moirai__ring_rte(
	const struct moirai_ring *r)
{
	return (struct rte_ring *)((uintptr_t)r + MOIRAI__RING_HDR_SIZE);
}

/**
 * The rte_ring behind a moirai ring, for code that must call DPDK directly
 * (MOIRAI_RING_INLINE only).
 * @param r the ring.
 * @return the rte_ring; valid while @p r is.  Thread-safe.
 */
static inline struct rte_ring *moirai_ring_rte(struct moirai_ring *r)
{
	return moirai__ring_rte(r);
}

MOIRAI__RING_FN unsigned moirai_ring_count(const struct moirai_ring *r)
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

MOIRAI__RING_FN unsigned moirai_ring_capacity(const struct moirai_ring *r)
{
	return moirai__ring_rte(r)->capacity;
}

MOIRAI__RING_FN unsigned moirai_ring_free_count(const struct moirai_ring *r)
{
	return moirai_ring_capacity(r) - moirai_ring_count(r);
}

MOIRAI__RING_FN bool moirai_ring_full(const struct moirai_ring *r)
{
	return moirai_ring_free_count(r) == 0;
}

MOIRAI__RING_FN bool moirai_ring_empty(const struct moirai_ring *r)
{
	return moirai_ring_count(r) == 0;
}

MOIRAI__RING_FN unsigned moirai_ring_sp_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						     unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_sp_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_sp_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
							  unsigned esize, unsigned n,
							  unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_sp_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						     unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
							  unsigned esize, unsigned n,
							  unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_rts_enqueue_bulk(struct moirai_ring *r, void *const *objs,
							 unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_rts_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_rts_enqueue_bulk_elem(struct moirai_ring *r,
							      const void *objs, unsigned esize,
							      unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_rts_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_hts_enqueue_bulk(struct moirai_ring *r, void *const *objs,
							 unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_hts_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_hts_enqueue_bulk_elem(struct moirai_ring *r,
							      const void *objs, unsigned esize,
							      unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_hts_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_enqueue_bulk(struct moirai_ring *r, void *const *objs,
						  unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_enqueue_bulk(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_enqueue_bulk_elem(struct moirai_ring *r, const void *objs,
						       unsigned esize, unsigned n,
						       unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_enqueue_bulk_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_sc_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						     unsigned *available)
{
	return rte_ring_sc_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_sc_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							  unsigned esize, unsigned n,
							  unsigned *available)
{
	return rte_ring_sc_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						     unsigned *available)
{
	return rte_ring_mc_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							  unsigned esize, unsigned n,
							  unsigned *available)
{
	return rte_ring_mc_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_rts_dequeue_bulk(struct moirai_ring *r, void **objs,
							 unsigned n, unsigned *available)
{
	return rte_ring_mc_rts_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_rts_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							      unsigned esize, unsigned n,
							      unsigned *available)
{
	return rte_ring_mc_rts_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_hts_dequeue_bulk(struct moirai_ring *r, void **objs,
							 unsigned n, unsigned *available)
{
	return rte_ring_mc_hts_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_hts_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
							      unsigned esize, unsigned n,
							      unsigned *available)
{
	return rte_ring_mc_hts_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_dequeue_bulk(struct moirai_ring *r, void **objs, unsigned n,
						  unsigned *available)
{
	return rte_ring_dequeue_bulk(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_dequeue_bulk_elem(struct moirai_ring *r, void *objs,
						       unsigned esize, unsigned n,
						       unsigned *available)
{
	return rte_ring_dequeue_bulk_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_sp_enqueue_burst(struct moirai_ring *r, void *const *objs,
						      unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_sp_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_sp_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
							   unsigned esize, unsigned n,
							   unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_sp_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_enqueue_burst(struct moirai_ring *r, void *const *objs,
						      unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
							   unsigned esize, unsigned n,
							   unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_rts_enqueue_burst(struct moirai_ring *r, void *const *objs,
							  unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_rts_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_rts_enqueue_burst_elem(struct moirai_ring *r,
							       const void *objs, unsigned esize,
							       unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_rts_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_hts_enqueue_burst(struct moirai_ring *r, void *const *objs,
							  unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_hts_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_mp_hts_enqueue_burst_elem(struct moirai_ring *r,
							       const void *objs, unsigned esize,
							       unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_mp_hts_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_enqueue_burst(struct moirai_ring *r, void *const *objs,
						   unsigned n, unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_enqueue_burst(moirai__ring_rte(r), objs, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_enqueue_burst_elem(struct moirai_ring *r, const void *objs,
							unsigned esize, unsigned n,
							unsigned *free_space)
{
	if (MOIRAI__RING_ENQ_FAULT(r, free_space))
		return 0;
	return rte_ring_enqueue_burst_elem(moirai__ring_rte(r), objs, esize, n, free_space);
}

MOIRAI__RING_FN unsigned moirai_ring_sc_dequeue_burst(struct moirai_ring *r, void **objs,
						      unsigned n, unsigned *available)
{
	return rte_ring_sc_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_sc_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							   unsigned esize, unsigned n,
							   unsigned *available)
{
	return rte_ring_sc_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_dequeue_burst(struct moirai_ring *r, void **objs,
						      unsigned n, unsigned *available)
{
	return rte_ring_mc_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							   unsigned esize, unsigned n,
							   unsigned *available)
{
	return rte_ring_mc_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_rts_dequeue_burst(struct moirai_ring *r, void **objs,
							  unsigned n, unsigned *available)
{
	return rte_ring_mc_rts_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_rts_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							       unsigned esize, unsigned n,
							       unsigned *available)
{
	return rte_ring_mc_rts_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_hts_dequeue_burst(struct moirai_ring *r, void **objs,
							  unsigned n, unsigned *available)
{
	return rte_ring_mc_hts_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_mc_hts_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							       unsigned esize, unsigned n,
							       unsigned *available)
{
	return rte_ring_mc_hts_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_dequeue_burst(struct moirai_ring *r, void **objs, unsigned n,
						   unsigned *available)
{
	return rte_ring_dequeue_burst(moirai__ring_rte(r), objs, n, available);
}

MOIRAI__RING_FN unsigned moirai_ring_dequeue_burst_elem(struct moirai_ring *r, void *objs,
							unsigned esize, unsigned n,
							unsigned *available)
{
	return rte_ring_dequeue_burst_elem(moirai__ring_rte(r), objs, esize, n, available);
}

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_RING_INLINE_H */
