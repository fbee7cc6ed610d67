/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sanitizer switch of the allocator, kept out of the .c files (STYLE 13).
 *
 * Under ASan (the Makefile defines MOIRAI_SAN_address=1 with SAN=address)
 * freed blocks are poisoned through <sanitizer/asan_interface.h> and the
 * thread caches are bypassed, so that a use after free is reported by ASan
 * instead of silently hitting a cached block.  Elsewhere every hook is an
 * empty inline.
 */
#ifndef MOIRAI_ALLOC_SAN_H
#define MOIRAI_ALLOC_SAN_H

#include <stdbool.h>
#include <stddef.h>

#if defined(MOIRAI_SAN_address)
#include <sanitizer/asan_interface.h>
#define MOIRAI__SAN_ASAN true
static inline void moirai__san_poison(const void *p, size_t n)
{
	ASAN_POISON_MEMORY_REGION(p, n);
}
static inline void moirai__san_unpoison(const void *p, size_t n)
{
	ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
#define MOIRAI__SAN_ASAN false
static inline void moirai__san_poison(const void *p, size_t n)
{
	(void)p;
	(void)n;
}
static inline void moirai__san_unpoison(const void *p, size_t n)
{
	(void)p;
	(void)n;
}
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#endif /* MOIRAI_ALLOC_SAN_H */
