/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Heaps: one per thread and per node.  A heap owns small segments taken
 * from its node's arena, cuts them in 64 KiB slabs of one size class (or
 * runs of slabs for one large block), and keeps a bounded LIFO cache of
 * free blocks per class in front of the slabs.
 *
 * Only the owning thread touches a heap's slabs and bins.  Other threads
 * free into the heap by pushing the block on the heap's remote list (an
 * MPSC Treiber stack: push with CAS, the owner takes the whole list with
 * one exchange), so a block never lands in a foreign thread's cache.  The
 * owner drains the list on its slow path.
 *
 * When a thread exits, a pthread key destructor empties its caches into
 * the slabs, drains its remote list, returns empty slabs and segments to
 * the arena and parks the heap in the arena's abandoned list; the next
 * thread that allocates on the node adopts it with whatever it still
 * holds, so churning threads do not grow the committed memory.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc_int.h"
#include "moirai/numa.h"

__thread struct tld moirai__tld __attribute__((tls_model("initial-exec"))) = {
	.bins = moirai__bins_none,
};

static pthread_key_t tld_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

#define ALL_SLABS ((uint32_t)0xffffffffu)
/* Bytes of never-used blocks one bin refill may touch (mimalloc: 4 KiB). */
#define REFILL_FRESH ((size_t)4096)

static inline void counter_add(_Atomic uint64_t *c, uint64_t v)
{
	/* Single writer (the owner): a relaxed load/store pair, no lock. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline void counter_sub(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v,
			      memory_order_relaxed);
}

/* ---- segments ------------------------------------------------------- */

/* A segment is on its heap's list exactly while it has a free slab. */
static void seg_list_add(struct heap *h, struct segment *seg)
{
	moirai__list_add_head(&h->segs, &seg->link);
}

static void seg_list_remove(struct segment *seg)
{
	moirai__list_del(&seg->link);
}

static void heap_collect(struct heap *h);

/*
 * Segments from the arena.  When it cannot grow (address-space limit),
 * segments held by dead threads' heaps for late remote frees are the
 * last reserve: sweep them and try once more.
 */
static char *segs_get(struct heap *h, size_t n, enum page_mode *mode)
{
	char *p = moirai__arena_alloc_segs(h->arena, n, mode);

	if (!p && errno == ENOMEM && moirai__heap_sweep_abandoned(h->arena))
		p = moirai__arena_alloc_segs(h->arena, n, mode);
	return p;
}

static struct segment *seg_new(struct heap *h)
{
	enum page_mode mode;
	char *p = segs_get(h, 1, &mode);
	struct segment *seg = (struct segment *)p;

	if (!p)
		return NULL;
	moirai__san_unpoison(p, SEG_SIZE);
	memset(seg, 0, sizeof(*seg));
	seg->magic = SEG_MAGIC;
	seg->kind = SEG_SMALL;
	seg->mode = (uint8_t)mode;
	seg->node = h->node;
	seg->gen = moirai__alloc_gen;
	seg->heap = h;
	seg->free_mask = ALL_SLABS;
	memset(seg->slab_cls, SLAB_CLS_NONE, sizeof(seg->slab_cls));
	h->free_bytes += SEG_SIZE;
	moirai__segmap_set(p, 1, seg);
	seg_list_add(h, seg);
	return seg;
}

/*
 * Slabs [i, i+n) leave the free mask: warm ones leave the free count,
 * cold ones are committed again (the next touch faults them in, on the
 * node, since the binding stays on the mapping).
 */
static void slabs_take(struct heap *h, struct segment *seg, uint32_t bits)
{
	uint32_t cold = seg->cold_mask & bits;

	h->free_bytes -= (size_t)__builtin_popcount(bits & ~cold) * SLAB_SIZE;
	if (cold) {
		seg->cold_mask &= ~cold;
		moirai__arena_account(h->arena, (enum page_mode)seg->mode,
				      (long)__builtin_popcount(cold) * (long)SLAB_SIZE);
	}
	seg->free_mask &= ~bits;
}

/*
 * Over the threshold, give the pages of free slabs back (MADV_DONTNEED),
 * down to half of it.  Slab 0 holds the header and hugetlb pages cannot be
 * split: both stay.
 */
static void heap_trim(struct heap *h)
{
	size_t target = moirai__alloc_decommit_threshold / 2;

	struct moirai__list *it;

	moirai__list_foreach(it, &h->segs) {
		struct segment *seg = moirai__list_entry(it, struct segment, link);
		uint32_t warm = seg->free_mask & ~seg->cold_mask & ~1u;

		if (h->free_bytes <= target)
			break;
		if (seg->mode == MODE_HUGETLB)
			continue;
		while (warm && h->free_bytes > target) {
			int i = __builtin_ctz(warm);

			warm &= warm - 1;
			if (madvise((char *)seg + (size_t)i * SLAB_SIZE, SLAB_SIZE,
				    MADV_DONTNEED) != 0)
				continue;
			seg->cold_mask |= 1u << i;
			h->free_bytes -= SLAB_SIZE;
			moirai__arena_account(h->arena, (enum page_mode)seg->mode,
					      -(long)SLAB_SIZE);
		}
	}
}

static void seg_release(struct heap *h, struct segment *seg)
{
	uint32_t warm = seg->free_mask & ~seg->cold_mask;

	/* The arena counts a free segment as committed: re-add cold slabs. */
	h->free_bytes -= (size_t)__builtin_popcount(warm) * SLAB_SIZE;
	if (seg->cold_mask)
		moirai__arena_account(h->arena, (enum page_mode)seg->mode,
				      (long)__builtin_popcount(seg->cold_mask) * (long)SLAB_SIZE);
	seg->cold_mask = 0;
	seg_list_remove(seg);
	moirai__segmap_set((char *)seg, 1, NULL);
	seg->magic = 0;
	moirai__arena_free_segs(h->arena, (char *)seg, 1);
}

/* Give slabs [i, i+n) of @seg back; the segment goes when all are free. */
static void seg_return_slabs(struct heap *h, struct segment *seg, int i, int n, bool keep_last)
{
	uint32_t bits = (n == 32 ? ALL_SLABS : ((1u << n) - 1u)) << i;
	bool was_full = seg->free_mask == 0;

	for (int k = i; k < i + n; k++) {
		seg->slabs[k].kind = SLAB_FREE;
		seg->slab_cls[k] = SLAB_CLS_NONE;
	}
	seg->free_mask |= bits;
	h->free_bytes += (size_t)n * SLAB_SIZE;
	counter_sub(&h->st.slab_bytes, (uint64_t)n * SLAB_SIZE);
	if (was_full)
		seg_list_add(h, seg);
	/* Keep one empty segment so a free/alloc cycle does not thrash. */
	if (seg->free_mask == ALL_SLABS &&
	    !(keep_last && h->segs.next == &seg->link && seg->link.next == &h->segs))
		seg_release(h, seg);
	else if (h->free_bytes > moirai__alloc_decommit_threshold)
		heap_trim(h);
}

/* ---- slabs ---------------------------------------------------------- */

/*
 * The flag, not moirai__list_linked(), says whether a slab is listed: slab
 * descriptors are zeroed (not self-linked) when a slab changes role.
 */
static void partial_add(struct heap *h, struct slab *s)
{
	moirai__list_add_head(&h->partial[s->cls], &s->link);
	s->flags |= SLAB_IN_PARTIAL;
}

static void partial_remove(struct slab *s)
{
	moirai__list_del(&s->link);
	s->flags &= (uint8_t)~SLAB_IN_PARTIAL;
}

/* First slab of class @cls with a free block, NULL when there is none. */
static inline struct slab *partial_first(struct heap *h, unsigned cls)
{
	return moirai__list_first(&h->partial[cls], struct slab, link);
}

static struct slab *slab_new(struct heap *h, unsigned cls)
{
	struct segment *seg = moirai__list_first(&h->segs, struct segment, link);

	if (!seg && !(seg = seg_new(h)))
		return NULL;
	int i = __builtin_ctz(seg->free_mask);
	struct slab *s = &seg->slabs[i];

	slabs_take(h, seg, 1u << i);
	if (seg->free_mask == 0)
		seg_list_remove(seg);
	memset(s, 0, sizeof(*s));
	s->start = (char *)seg + (size_t)i * SLAB_SIZE + (i == 0 ? SEG_HDR_SIZE : 0);
	s->end = (char *)seg + (size_t)(i + 1) * SLAB_SIZE;
	s->bump = s->start;
	s->block_size = moirai__class_size[cls];
	s->cls = (uint16_t)cls;
	s->kind = SLAB_SMALL;
	seg->slab_cls[i] = (uint8_t)cls;
	counter_add(&h->st.slab_bytes, SLAB_SIZE);
	partial_add(h, s);
	return s;
}

static inline void *slab_pop(struct slab *s)
{
	void *b = s->free;

	if (b) {
		s->free = moirai__block_next(b);
		s->used++;
		return b;
	}
	if ((size_t)(s->end - s->bump) >= s->block_size) {
		b = s->bump;
		s->bump += s->block_size;
		s->used++;
		return b;
	}
	return NULL;
}

static inline bool slab_exhausted(const struct slab *s)
{
	return !s->free && (size_t)(s->end - s->bump) < s->block_size;
}

/* A block goes back to its slab; an empty slab goes back to its segment. */
static void slab_free_block(struct heap *h, struct segment *seg, struct slab *s, void *block,
			    bool keep)
{
	moirai__block_set_next(block, s->free);
	s->free = block;
	s->used--;
	counter_sub(&h->st.in_use, s->block_size);
	if (!(s->flags & SLAB_IN_PARTIAL))
		partial_add(h, s);
	/* The head slab of a class stays (hysteresis) unless told otherwise. */
	if (s->used == 0 && !(keep && h->partial[s->cls].next == &s->link)) {
		partial_remove(s);
		seg_return_slabs(h, seg,
				 (int)(((char *)s - (char *)seg->slabs) / (ptrdiff_t)sizeof(*s)), 1,
				 keep);
	}
}

static void block_to_slab(struct heap *h, void *block, bool keep)
{
	struct segment *seg = moirai__seg_of(block);
	struct slab *s = moirai__slab_of(seg, block);

	slab_free_block(h, seg, s, block, keep);
}

/* Move the colder half of a full bin back to the slabs. */
static void bin_trim(struct heap *h, struct bin *b, uint32_t keep_count)
{
	void *cut = b->head, *rest;

	if (keep_count == 0) {
		rest = b->head;
		b->head = NULL;
	} else {
		for (uint32_t i = 1; i < keep_count; i++)
			cut = moirai__block_next(cut);
		rest = moirai__block_next(cut);
		moirai__block_set_next(cut, NULL);
	}
	b->count = keep_count;
	while (rest) {
		void *next = moirai__block_next(rest);

		block_to_slab(h, rest, true);
		rest = next;
	}
}

/*
 * Before a heap takes a new slab (fresh pages), blocks parked in idle
 * caches go back to their slabs when the caches hold more than
 * BINS_RECLAIM_BYTES: a program that moves on to other sizes (espresso's
 * phases) would otherwise keep up to 64 KiB per class idle in bins, and
 * the slabs they pin could never empty for the sizes now wanted.  Slabs
 * that empty go back to their segment, where slab_new() takes them warm.
 * A bin is idle when it took no slow path (refill, overflow) since the
 * previous reclaim: the busy classes of a producer that takes new slabs
 * all the time (xmalloc-test) keep their caches.  Returns the bytes given
 * back.
 */
static size_t bins_reclaim(struct heap *h, unsigned keep_cls)
{
	size_t bytes = 0, given = 0;

	for (unsigned c = 0; c < NUM_CLASSES; c++)
		bytes += (size_t)h->bins[c].count * moirai__class_size[c];
	if (bytes <= BINS_RECLAIM_BYTES)
		return 0;
	for (unsigned c = 0; c < NUM_CLASSES; c++) {
		struct bin *b = &h->bins[c];

		if (c == keep_cls || b->count == 0 || h->bin_epoch[c] == h->epoch)
			continue;
		given += (size_t)b->count * moirai__class_size[c];
		bin_trim(h, b, 0);
		/* Shallow again: it grows back if its class is busy again. */
		b->max = moirai__bin_start(c);
	}
	h->epoch++;
	return given;
}

/* ---- large runs ----------------------------------------------------- */

static void outbox_flush_all(struct tld *t);
static void drain_remote(struct heap *h);

void *moirai__heap_alloc_large(struct heap *h, size_t size)
{
	int n = (int)((size + SLAB_SIZE - 1) >> SLAB_SHIFT);
	struct segment *seg = NULL;
	struct moirai__list *it;
	uint32_t m = 0;

	/*
	 * Runs other threads freed come home through the remote list: take
	 * them before looking for space, or a thread that only allocates
	 * large blocks (a producer) grows its heap without bound.
	 */
	if (moirai__tld.out_used)
		outbox_flush_all(&moirai__tld);
	if (atomic_load_explicit(&h->remote, memory_order_relaxed))
		drain_remote(h);

	moirai__list_foreach(it, &h->segs) {
		struct segment *cand = moirai__list_entry(it, struct segment, link);

		/* Slab 0 is short (header): large runs start at slab 1. */
		m = cand->free_mask & ~1u;
		for (int k = 1; k < n && m; k++)
			m &= cand->free_mask >> k;
		if (m) {
			seg = cand;
			break;
		}
	}
	if (!seg) {
		seg = seg_new(h);
		if (!seg)
			return NULL;
		m = 2;
	}
	int i = __builtin_ctz(m);
	struct slab *s = &seg->slabs[i];

	slabs_take(h, seg, (n == 32 ? ALL_SLABS : ((1u << n) - 1u)) << i);
	if (seg->free_mask == 0)
		seg_list_remove(seg);
	memset(s, 0, sizeof(*s));
	s->kind = SLAB_LARGE;
	s->run = (uint32_t)n;
	s->start = (char *)seg + (size_t)i * SLAB_SIZE;
	s->end = s->start + (size_t)n * SLAB_SIZE;
	s->block_size = (uint32_t)((size_t)n * SLAB_SIZE);
	s->used = 1;
	for (int k = i + 1; k < i + n; k++) {
		seg->slabs[k].kind = SLAB_LARGE_TAIL;
		seg->slabs[k].run = (uint32_t)i;
	}
	counter_add(&h->st.slab_bytes, s->block_size);
	counter_add(&h->st.in_use, s->block_size);
	/* The run may hold blocks poisoned in an earlier life. */
	moirai__san_unpoison(s->start, s->block_size);
	return s->start;
}

/* ---- huge spans ----------------------------------------------------- */

struct segment *moirai__heap_alloc_huge(struct heap *h, size_t size, size_t align)
{
	enum page_mode mode;
	size_t off, span;
	char *p;

	if (align < HUGE_HDR_SIZE)
		align = HUGE_HDR_SIZE;
	/* The span is 2 MiB aligned; larger alignments need slack. */
	off = align <= SEG_SIZE ? moirai__align_up(HUGE_HDR_SIZE, align) : align;
	span = moirai__align_up(off + size, SEG_SIZE);
	p = segs_get(h, span >> SEG_SHIFT, &mode);
	if (!p)
		return NULL;
	struct segment *seg = (struct segment *)p;
	/* At most @off past the span start, as sized above. */
	char *user = (char *)moirai__align_up((uintptr_t)p + HUGE_HDR_SIZE, align);

	moirai__san_unpoison(p, span);
	memset(seg, 0, offsetof(struct segment, slabs));
	/* Its owner's frees take the slow path (moirai__free_fast). */
	memset(seg->slab_cls, SLAB_CLS_NONE, sizeof(seg->slab_cls));
	seg->magic = SEG_MAGIC;
	seg->kind = SEG_HUGE;
	seg->mode = (uint8_t)mode;
	seg->node = h->node;
	seg->gen = moirai__alloc_gen;
	seg->heap = h;
	seg->span = span;
	seg->req = size;
	seg->user = user;
	moirai__segmap_set(p, span >> SEG_SHIFT, seg);
	atomic_fetch_add_explicit(&h->arena->huge_in_use, span, memory_order_relaxed);
	return seg;
}

static void free_huge(struct segment *seg)
{
	struct arena *a = moirai__arenas[seg->node];
	size_t span = seg->span;
	bool local = moirai__tld.heaps[seg->node] == seg->heap;

	atomic_fetch_add_explicit(local ? &a->huge_frees : &a->huge_remote_frees, 1,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&a->huge_in_use, span, memory_order_relaxed);
	moirai__segmap_set((char *)seg, span >> SEG_SHIFT, NULL);
	seg->magic = 0;
	moirai__arena_free_segs(a, (char *)seg, span >> SEG_SHIFT);
}

/* ---- free ----------------------------------------------------------- */

/* The owner frees @p (maybe an interior pointer of an aligned block). */
static void local_free(struct heap *h, struct segment *seg, void *p)
{
	struct slab *s = moirai__slab_of(seg, p);

	if (s->kind == SLAB_LARGE) {
		int i = (int)(s - seg->slabs);

		counter_sub(&h->st.in_use, s->block_size);
		seg_return_slabs(h, seg, i, (int)s->run, true);
		return;
	}
	char *block = (s->flags & SLAB_ALIGNED) ? moirai__block_of(s, p) : p;
	struct bin *b = &h->bins[s->cls];

	moirai__san_poison(block, s->block_size);
	if (h->tcache_max == 0) {
		slab_free_block(h, seg, s, block, true);
		return;
	}
	if (b->count >= b->max) {
		uint32_t cap = moirai__bin_max(s->cls);

		h->bin_epoch[s->cls] = h->epoch;
		/* Overflowing: grow the bound first, trim once it is at its cap. */
		if (b->max < cap)
			b->max = b->max * 2 < cap ? b->max * 2 : cap;
		else
			bin_trim(h, b, b->max / 2);
	}
	moirai__block_set_next(block, b->head);
	b->head = block;
	b->count++;
}

/* Push the chain first..last; release pairs with drain_remote()'s acquire. */
static void remote_push(struct heap *h, void *first, void *last)
{
	void *head = atomic_load_explicit(&h->remote, memory_order_relaxed);

	do {
		moirai__block_set_next(last, head);
	} while (!atomic_compare_exchange_weak_explicit(
		&h->remote, &head, first, memory_order_release, memory_order_relaxed));
}

static void outbox_send(struct outbox *o)
{
	if (o->count) {
		remote_push(o->heap, o->head, o->tail);
		o->head = o->tail = NULL;
		o->count = 0;
	}
}

static void outbox_flush_all(struct tld *t)
{
	for (int i = 0; i < OUTBOX_WAYS; i++)
		outbox_send(&t->out[i]);
	t->out_used = false;
}

static void arm_exit(struct tld *t);
static void remote_free(struct tld *t, struct heap *h, void *p);

void moirai__heap_free_remote(struct heap *h, void *p)
{
	/*
	 * remote_free() links through the block's first word before the owner
	 * validates it: never let that word be the segment header's.
	 */
	if (moirai_unlikely((uintptr_t)p - (uintptr_t)moirai__seg_of(p) < SEG_HDR_SIZE)) {
		moirai__err(-EINVAL, "free: %p is inside a segment header (ignored)", p);
		return;
	}
	remote_free(&moirai__tld, h, p);
}

static void remote_free(struct tld *t, struct heap *h, void *p)
{
	/* Heaps are page-aligned mappings: the bits above 12 tell them apart. */
	struct outbox *o = &t->out[((uintptr_t)h >> 12) % OUTBOX_WAYS];

	/* After the exit destructor nothing would send a batch: go now. */
	if (moirai_unlikely(t->exiting)) {
		remote_push(h, p, p);
		return;
	}
	if (o->heap != h) {
		outbox_send(o);
		o->heap = h;
	}
	moirai__block_set_next(p, o->head);
	if (!o->head)
		o->tail = p;
	o->head = p;
	if (++o->count >= OUTBOX_BATCH)
		outbox_send(o);
	if (!t->out_used) {
		t->out_used = true;
		arm_exit(t); /* a thread that only frees must still send at exit */
	}
}

static void drain_remote(struct heap *h)
{
	/* Acquire pairs with the release CAS in remote_push(). */
	void *p = atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire);
	uint64_t n = 0;

	while (p) {
		void *next = moirai__block_next(p);
		struct segment *seg = moirai__seg_of(p);
		struct slab *s = moirai__slab_of(seg, p);

		/* The freeing thread did not look at the slab: check here. */
		if (moirai_likely(s->kind != SLAB_FREE && (char *)p >= s->start &&
				  (char *)p < s->end))
			local_free(h, seg, p);
		else
			moirai__err(-EINVAL, "free: %p is not a live block (ignored)", p);
		p = next;
		n++;
	}
	counter_add(&h->st.remote_frees, n);
}

void moirai__heap_free(struct segment *seg, void *p)
{
	struct heap *h = seg->heap;

	if (seg->kind == SEG_HUGE) {
		free_huge(seg);
		return;
	}
	if (moirai__tld.heaps[seg->node] != h) {
		moirai__heap_free_remote(h, p);
		return;
	}
	counter_add(&h->st.local_frees, 1);
	local_free(h, seg, p);
}

/* ---- small allocation slow path ------------------------------------- */

void *moirai__heap_alloc_small(struct heap *h, unsigned cls)
{
	struct bin *b = &h->bins[cls];
	struct slab *s;
	void *p;

	h->bin_epoch[cls] = h->epoch;
	if (moirai__tld.out_used)
		outbox_flush_all(&moirai__tld);
	if (atomic_load_explicit(&h->remote, memory_order_relaxed)) {
		drain_remote(h);
		if (b->head) {
			p = b->head;
			b->head = moirai__block_next(p);
			b->count--;
			return p;
		}
	}
	/* Listed slabs can be exhausted: the bin refill emptied them. */
	while ((s = partial_first(h, cls)) && slab_exhausted(s))
		partial_remove(s);
	if (!s) {
		bins_reclaim(h, cls);
		if (!(s = slab_new(h, cls)))
			return NULL;
	}
	p = slab_pop(s);
	/*
	 * Refill half the cache in one go: the next calls stay on the fast
	 * path.  Blocks of the slab's free list are taken freely; never-used
	 * blocks at most REFILL_FRESH bytes' worth (at least one), because
	 * linking a block into the bin writes to it: a 4 KiB class would
	 * otherwise fault in a whole 64 KiB slab for one allocation, and a
	 * program touching many classes pays that in peak RSS.
	 */
	uint32_t want = b->max / 2, got = 1;
	size_t fresh = (char *)p + s->block_size == s->bump ? s->block_size : 0;

	while (b->count < want) {
		void *q;

		if (s->free) {
			q = s->free;
			s->free = moirai__block_next(q);
			s->used++;
		} else if (fresh < REFILL_FRESH && (size_t)(s->end - s->bump) >= s->block_size) {
			q = s->bump;
			s->bump += s->block_size;
			s->used++;
			fresh += s->block_size;
		} else {
			break;
		}
		moirai__block_set_next(q, b->head);
		b->head = q;
		b->count++;
		got++;
	}
	if (slab_exhausted(s))
		partial_remove(s);
	counter_add(&h->st.in_use, (uint64_t)got * s->block_size);
	return p;
}

/* ---- heaps and threads ---------------------------------------------- */

/* Empty the caches and the remote list, release every empty slab. */
static void heap_collect(struct heap *h)
{
	drain_remote(h);
	for (unsigned c = 0; c < NUM_CLASSES; c++) {
		struct moirai__list *it, *tmp;

		if (h->bins[c].head)
			bin_trim(h, &h->bins[c], 0);
		h->bins[c].max = moirai__bin_start(c);
		moirai__list_foreach_safe(it, tmp, &h->partial[c]) {
			struct slab *s = moirai__list_entry(it, struct slab, link);
			struct segment *seg;

			if (s->used)
				continue;
			seg = moirai__seg_of(s);
			partial_remove(s);
			seg_return_slabs(h, seg, (int)(s - seg->slabs), 1, false);
		}
	}
	struct moirai__list *it, *tmp;

	moirai__list_foreach_safe(it, tmp, &h->segs) {
		struct segment *seg = moirai__list_entry(it, struct segment, link);

		if (seg->free_mask == ALL_SLABS)
			seg_release(h, seg);
	}
}

static void tld_destroy(void *arg)
{
	struct tld *t = &moirai__tld;

	(void)arg;
	t->busy++;
	moirai__tld_set_local(NULL);
	t->registered = false;
	t->exiting = true;
	outbox_flush_all(t);
	for (int n = 0; n < MAX_NODES_TLS; n++) {
		struct heap *h = t->heaps[n];

		if (!h)
			continue;
		t->heaps[n] = NULL;
		heap_collect(h);
		moirai__arena_abandon(h->arena, h);
	}
	t->busy--;
}

static void key_init(void)
{
	(void)pthread_key_create(&tld_key, tld_destroy);
}

/*
 * A heap is mapped and bound here, not with moirai_numa_map(): the arena
 * already knows its node is usable, and moirai_numa_map()'s own check reads
 * the cgroup's node mask through libnuma, which mallocs; a thread's first
 * libc malloc makes glibc reserve a 64 MiB arena for it, so under RLIMIT_AS
 * the first moirai allocation of 32 threads would have cost 1 GiB of
 * address space (up to glibc's 8 arenas per core).
 */
static struct heap *heap_create(struct arena *a)
{
	const size_t len = moirai__align_up(sizeof(struct heap), (size_t)4096);
	struct heap *h;
	void *mem;
	int rc;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED) {
		moirai__err(-ENOMEM, "alloc: no memory for a heap on node %d", a->node);
		errno = ENOMEM;
		return NULL;
	}
	rc = moirai_numa_bind_fresh(mem, len, a->node);
	if (rc) {
		munmap(mem, len);
		errno = rc == -EPERM || rc == -ENODEV ? ENODEV : -rc;
		return NULL;
	}
	h = mem;
	memset(h, 0, sizeof(*h));
	atomic_init(&h->remote, NULL);
	moirai__list_init(&h->segs);
	for (unsigned c = 0; c < NUM_CLASSES; c++)
		moirai__list_init(&h->partial[c]);
	h->arena = a;
	h->node = a->node;
	h->tcache_max = moirai__alloc_tcache_max;
	for (unsigned c = 0; c < NUM_CLASSES; c++)
		h->bins[c].max = moirai__bin_start(c);
	moirai__arena_register_heap(a, h);
	return h;
}

struct heap *moirai__heap_get(int node)
{
	struct tld *t = &moirai__tld;
	struct heap *h = t->heaps[node];
	struct arena *a = moirai__arenas[node];

	if (h)
		return h;
	if (!atomic_load_explicit(&a->available, memory_order_relaxed)) {
		moirai__err(-ENODEV, "alloc: node %d is not available", node);
		errno = ENODEV;
		return NULL;
	}
	h = moirai__arena_adopt(a);
	if (!h && !(h = heap_create(a)))
		return NULL;
	t->heaps[node] = h;
	arm_exit(t);
	return h;
}

static void arm_exit(struct tld *t)
{
	if (t->registered)
		return;
	pthread_once(&key_once, key_init);
	/* Any non-NULL value arms the exit destructor. */
	(void)pthread_setspecific(tld_key, t);
	t->registered = true;
}

struct heap *moirai__heap_local(void)
{
	struct tld *t = &moirai__tld;
	int node = moirai_numa_current_node();

	if (node < 0 || node >= moirai__alloc_nodes ||
	    !atomic_load_explicit(&moirai__arenas[node]->available, memory_order_relaxed)) {
		int alt =
			node >= 0 && node < moirai__alloc_nodes ? moirai__arena_nearest(node) : -1;

		for (int n = 0; alt < 0 && n < moirai__alloc_nodes; n++)
			if (atomic_load_explicit(&moirai__arenas[n]->available,
						 memory_order_relaxed))
				alt = n;
		if (alt < 0) {
			moirai__err(-ENOMEM, "alloc: no NUMA node is available");
			errno = ENOMEM;
			return NULL;
		}
		node = alt;
	}
	moirai__tld_set_local(moirai__heap_get(node));
	return t->local;
}

void moirai__heap_forget_thread(void)
{
	struct tld *t = &moirai__tld;

	moirai__tld_set_local(NULL);
	memset(t->heaps, 0, sizeof(t->heaps));
	memset(t->out, 0, sizeof(t->out));
	t->out_used = false;
}

bool moirai__heap_sweep_abandoned(struct arena *a)
{
	/* Taken off the list, each heap is the sweeper's alone, as if adopted. */
	struct heap *list = moirai__arena_take_abandoned(a);

	for (struct heap *h = list; h; h = h->next_abandoned)
		heap_collect(h);
	moirai__arena_return_abandoned(a, list);
	return list != NULL;
}

void moirai__heap_flush_thread(void)
{
	struct tld *t = &moirai__tld;

	outbox_flush_all(t);
	for (int n = 0; n < MAX_NODES_TLS; n++)
		if (t->heaps[n])
			heap_collect(t->heaps[n]);
	/* Blocks this thread (or any) freed to heaps of exited threads. */
	for (int n = 0; n < moirai__alloc_nodes; n++)
		moirai__heap_sweep_abandoned(moirai__arenas[n]);
	moirai__tld_set_local(NULL); /* re-evaluate the node at the next allocation */
}

/*
 * Invariant walker for tests (STYLE 14): bins hold as many blocks as they
 * count, each in a live small slab of the bin's class owned by @h; partial
 * slabs are small slabs of their class with a free block; listed segments
 * have a free slab and belong to @h, and their warm free slabs add up to
 * the heap's free byte count.
 */
bool moirai__heap_is_valid(const struct heap *h)
{
	for (unsigned c = 0; c < NUM_CLASSES; c++) {
		uint32_t n = 0;

		for (void *b = h->bins[c].head; b; b = moirai__block_next(b), n++) {
			struct segment *seg = moirai__seg_of(b);
			struct slab *s;

			if (!seg || seg->heap != h || n > h->bins[c].count)
				return false;
			s = moirai__slab_of(seg, b);
			if (s->kind != SLAB_SMALL || s->cls != c || s->used == 0)
				return false;
		}
		if (n != h->bins[c].count || n > h->bins[c].max)
			return false;
		const struct moirai__list *it;

		moirai__list_foreach(it, &h->partial[c]) {
			const struct slab *s = moirai__list_entry(it, const struct slab, link);

			if (s->kind != SLAB_SMALL || s->cls != c || !(s->flags & SLAB_IN_PARTIAL) ||
			    slab_exhausted(s))
				return false;
		}
	}
	size_t free_bytes = 0;
	const struct moirai__list *it;

	moirai__list_foreach(it, &h->segs) {
		const struct segment *seg = moirai__list_entry(it, const struct segment, link);

		if (seg->heap != h || seg->free_mask == 0 || seg->magic != SEG_MAGIC ||
		    (seg->cold_mask & ~seg->free_mask))
			return false;
		free_bytes +=
			(size_t)__builtin_popcount(seg->free_mask & ~seg->cold_mask) * SLAB_SIZE;
	}
	return free_bytes == h->free_bytes;
}
