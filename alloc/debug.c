/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Debug mode of the allocator (MOIRAI_DEBUG=1, read when the allocator
 * starts).  Every block gets DEBUG_EXTRA more bytes: a canary (0xCA bytes)
 * right behind the requested size and a trailer word at the end of the
 * block that says "live, N bytes asked" or "freed".  Freeing checks the
 * trailer (double free, pointer to no live block) and the canary (buffer
 * overrun), then poisons the block with 0xDF.  On a violation it prints
 * what, the address and the size to stderr and aborts: continuing after
 * heap corruption would only move the crash somewhere less useful.
 *
 * Thread caches are off in debug mode (alloc_init), so every allocation
 * and free passes through these hooks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"

#define CANARY 0xCA
#define POISON 0xDF
/* Trailer of a live block: tag (12 bits) | offset / 16 (12) | size (40). */
#define LIVE_TAG    0x4d4ULL
#define FREED_WORD  0xdeadf7eedeadf7eeULL
#define REQ_MASK    ((1ULL << 40) - 1)
#define OFF_SHIFT   40
#define OFF_MASK    0xfffULL
#define HUGE_CANARY 64

void moirai__debug_report(const char *what, const void *p, size_t size)
{
	fprintf(stderr, "moirai: %s: address %p, size %zu\n", what, p, size);
	fflush(stderr);
	abort();
}

static inline uint64_t *trailer(char *block, size_t bs)
{
	return (uint64_t *)(void *)(block + bs - sizeof(uint64_t));
}

void moirai__debug_on_alloc(void *p, char *block, size_t bs, size_t req)
{
	char *user = p;
	char *end = (char *)trailer(block, bs);

	memset(user + req, CANARY, (size_t)(end - (user + req)));
	*trailer(block, bs) =
		(LIVE_TAG << 52) | ((uint64_t)((user - block) / 16) << OFF_SHIFT) | req;
}

/* Read the trailer even when ASan has poisoned the (freed) block. */
static inline uint64_t trailer_get(char *block, size_t bs)
{
	moirai__san_unpoison(trailer(block, bs), sizeof(uint64_t));
	return *trailer(block, bs);
}

size_t moirai__debug_req(const void *p, char *block, size_t bs)
{
	uint64_t t = trailer_get(block, bs);

	(void)p;
	if ((t >> 52) != LIVE_TAG || (const char *)p != block + ((t >> OFF_SHIFT) & OFF_MASK) * 16)
		return 0;
	return (size_t)(t & REQ_MASK);
}

void moirai__debug_on_free(const void *p, char *block, size_t bs)
{
	uint64_t t = trailer_get(block, bs);
	const unsigned char *user = p;
	const unsigned char *end = (const unsigned char *)trailer(block, bs);
	size_t req;

	if (t == FREED_WORD)
		moirai__debug_report("double free", p, bs - DEBUG_EXTRA);
	if ((t >> 52) != LIVE_TAG)
		moirai__debug_report("free of a pointer to no live block", p, 0);
	req = (size_t)(t & REQ_MASK);
	if ((const char *)p != block + ((t >> OFF_SHIFT) & OFF_MASK) * 16 || user + req > end)
		moirai__debug_report("free of an interior or foreign pointer", p, req);
	for (const unsigned char *c = user + req; c < end; c++)
		if (*c != CANARY)
			moirai__debug_report("buffer overrun into the canary", p, req);
	memset(block, POISON, (size_t)((const char *)end - block));
	*trailer(block, bs) = FREED_WORD;
}

void moirai__debug_huge_on_alloc(struct segment *seg)
{
	char *span_end = (char *)seg + seg->span;
	size_t n = (size_t)(span_end - (seg->user + seg->req));

	memset(seg->user + seg->req, CANARY, n < HUGE_CANARY ? n : HUGE_CANARY);
}

void moirai__debug_huge_on_free(struct segment *seg, const void *p)
{
	char *span_end = (char *)seg + seg->span;
	size_t n = (size_t)(span_end - (seg->user + seg->req));
	const unsigned char *c = (const unsigned char *)seg->user + seg->req;

	if (n > HUGE_CANARY)
		n = HUGE_CANARY;
	for (size_t i = 0; i < n; i++)
		if (c[i] != CANARY)
			moirai__debug_report("buffer overrun into the canary", p, seg->req);
	/* Poison the first page: enough to make use after free visible. */
	memset(seg->user, POISON, seg->req < 4096 ? seg->req : 4096);
}
