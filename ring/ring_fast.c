/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ring fast paths compiled out of line: what programs call unless
 * they define MOIRAI_RING_INLINE.  One text serves both (ring_inline.h);
 * here each function becomes an exported definition matching its
 * declaration in moirai/ring.h, so the two can never drift apart.
 */
/* The library's other files inline the bodies; this one defines them. */
#undef MOIRAI_RING_INLINE
#include "moirai/ring.h"

#define MOIRAI__RING_FN MOIRAI_API
#include "moirai/ring_inline.h"
