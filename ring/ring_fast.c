/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ring fast paths compiled out of line: what programs call unless
 * they define MOIRAI_RING_INLINE.  One text serves both (ring_inline.h);
 * here each function becomes an exported definition matching its
 * declaration in moirai/ring.h, so the two can never drift apart.  These
 * copies, and only these, carry the ring_enqueue fault-injection site
 * (lib/fault.h): a program's own enqueues are what a stress run fails.
 */
/* The library's other files inline the bodies; this one defines them. */
#undef MOIRAI_RING_INLINE
#include "fault.h"
#include "moirai/ring.h"

/* An injected failure looks like a full ring: nothing moved, and the
 * free space reported as it is. */
static inline bool ring_enq_fault(const struct moirai_ring *r, unsigned *free_space)
{
	if (!moirai__fault_hit(MOIRAI_FAULT_RING_ENQUEUE))
		return false;
	if (free_space)
		*free_space = moirai_ring_free_count(r);
	return true;
}

#define MOIRAI__RING_ENQ_FAULT(r, free_space) ring_enq_fault(r, free_space)
#define MOIRAI__RING_FN			      MOIRAI_API
#include "moirai/ring_inline.h"
