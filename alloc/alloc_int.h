/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private layout of the allocator, shared by the alloc/ sources and the tests.
 *
 * Address space comes in extents: 2 MiB aligned PROT_NONE ranges cut in
 * 2 MiB segments, each owned by one node arena.  The window is reserved
 * once at start; its segment map (one pointer per segment) gives the
 * header of the segment or span that owns an address, so free() finds
 * metadata with one range check and one load.  Without an address-space
 * limit the window is split in one fixed slice per node; under RLIMIT_AS
 * the nodes carve extents out of it as they need them, and give them back
 * when they empty.  When the window has no room, an arena maps extents of
 * its own, found through a two-level map off the fast path
 * (moirai__seg_of_extent) and unmapped when empty.  A pointer in no
 * extent (or with an empty entry) is foreign.  extent.c explains the
 * sizes.
 *
 * A "small" segment belongs to one heap and is cut in 32 slabs of 64 KiB;
 * its header (in the first 4 KiB of slab 0) holds the 32 slab descriptors.
 * A slab serves one size class, or is part of a "large" run of contiguous
 * slabs that holds one allocation.  Allocations above LARGE_MAX take a
 * "huge" span: whole segments from the arena, header in the first page.
 *
 * A heap is per thread and per node.  It keeps, per size class, a bounded
 * thread cache (bin) in front of its slabs; blocks freed by any other
 * thread come back through the heap's MPSC remote list.  Heaps are never
 * freed: a dead thread's heap is abandoned and adopted by the next thread
 * that allocates on that node, so thread churn reuses memory.
 */
#ifndef MOIRAI_ALLOC_INT_H
#define MOIRAI_ALLOC_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "list.h"
#include "moirai/alloc.h"

#define SEG_SHIFT     21
#define SEG_SIZE      ((size_t)1 << SEG_SHIFT) /* 2 MiB */
#define SLAB_SHIFT    16
#define SLAB_SIZE     ((size_t)1 << SLAB_SHIFT)	    /* 64 KiB */
#define SLABS_PER_SEG ((int)(SEG_SIZE / SLAB_SIZE)) /* 32 */
#define SEG_HDR_SIZE  ((size_t)8192)		    /* slab 0 data starts here */
#define SMALL_MAX     ((size_t)32768)
#define LARGE_MAX     ((size_t)1 << 20) /* 16 slabs */
#define HUGE_HDR_SIZE ((size_t)4096)
#define MAX_NODES_TLS 64
#define NUM_CLASSES   72
#define MAX_ALIGN     ((size_t)1 << 30)
#define MIN_ALIGN     16

#define SEG_MAGIC 0x6d6f6972u /* "moir" */

enum seg_kind { SEG_SMALL = 1, SEG_HUGE = 2 };
enum slab_kind { SLAB_FREE = 0, SLAB_SMALL, SLAB_LARGE, SLAB_LARGE_TAIL };
enum slab_flags { SLAB_ALIGNED = 1, SLAB_IN_PARTIAL = 2 };
/*
 * slab_cls of a slab whose frees need the slow path (free, large, aligned
 * blocks, huge spans): the index of a bin that is always full (max 0).
 */
#define SLAB_CLS_NONE NUM_CLASSES

enum page_mode { MODE_HUGETLB = 0, MODE_THP = 1, MODE_SMALL = 2 };

struct heap;

/* One 64 KiB slab; owned and touched only by the owning heap's thread. */
struct slab {
	void *free;	     /* local free list of blocks */
	char *bump;	     /* next never-used block */
	char *start;	     /* first block */
	char *end;	     /* end of the block area */
	uint32_t used;	     /* blocks out of the slab (in bins or in use) */
	uint32_t block_size; /* LARGE: bytes of the run */
	uint16_t cls;
	uint8_t kind;
	uint8_t flags;
	uint32_t run;		  /* LARGE: slabs in the run; TAIL: index of head */
	struct moirai__list link; /* heap's partial list of its class (SLAB_IN_PARTIAL) */
};
/* One descriptor per cache line: the free path reads one line. */
static_assert(sizeof(struct slab) == 64, "slab descriptor is one line");

/*
 * Header of a 2 MiB segment (small) or of a huge span.  Fields read by
 * other threads (kind, node, heap, magic) are set before the segment is
 * published in the segment map and never change while it is mapped there.
 */
struct segment {
	uint32_t magic;
	uint8_t kind;
	uint8_t mode; /* enum page_mode of its memory */
	int node;
	uint32_t gen;	   /* fork generation that created it */
	struct heap *heap; /* owner (small); allocating heap (huge) */
	/*
	 * Small: class of each slab when it is a plain small slab (no aligned
	 * blocks), else SLAB_CLS_NONE, so the owner's free fast path needs no
	 * slab descriptor.  Written by the owner only when a slab changes role.
	 * Huge: all SLAB_CLS_NONE, so the owner's free fast path needs no
	 * check of the kind either.
	 */
	uint8_t slab_cls[SLABS_PER_SEG];
	/* Owner-only fields on their own line: remote frees never miss on it. */
	alignas(64) uint32_t free_mask; /* small: bit i = slab i free */
	uint32_t cold_mask;		/* free slabs whose pages were given back */
	struct moirai__list link;	/* heap list of segments with free slabs */
	size_t span;			/* bytes of the span (huge) */
	size_t req;			/* requested size (huge) */
	char *user;			/* user pointer (huge) */
	alignas(64) struct slab slabs[SLABS_PER_SEG];
};
static_assert(sizeof(struct segment) <= SEG_HDR_SIZE, "segment header fits");
static_assert(offsetof(struct segment, free_mask) == 64,
	      "remote frees read line 0 only; owner fields start on line 1");

/*
 * Thread cache of one size class: a LIFO list of free blocks.  16 bytes,
 * so a bin is found with one shift and never straddles a cache line.
 */
struct bin {
	void *head;
	uint32_t count;
	uint32_t max; /* tcache_max */
};
static_assert(sizeof(struct bin) == 16, "a bin is 16 bytes");

struct heap_counters {
	_Atomic uint64_t in_use;      /* bytes in blocks out of slabs + large */
	_Atomic uint64_t slab_bytes;  /* bytes of slabs held (small + large) */
	_Atomic uint64_t local_frees; /* frees outside the bin fast path */
	_Atomic uint64_t remote_frees;
};

struct heap {
	/* Written by every remote freeing thread: on its own line. */
	alignas(64) _Atomic(void *) remote;
	/*
	 * Frees the owner's fast path put in a bin (the owner writes, stats
	 * read): one counter for the heap, next to the bins, instead of one
	 * per bin, so the fast path needs no second address.
	 */
	alignas(64) _Atomic uint64_t bin_frees;
	/* bins[SLAB_CLS_NONE] stays empty with max 0: frees it names go slow. */
	struct bin bins[NUM_CLASSES + 1];
	/*
	 * Reclaim epoch of each bin's last slow path (a refill or an overflow):
	 * bins_reclaim() empties only bins idle for a whole epoch.
	 */
	uint32_t bin_epoch[NUM_CLASSES];
	uint32_t epoch;
	struct moirai__list partial[NUM_CLASSES]; /* slabs with a free block, per class */
	struct moirai__list segs;		  /* segments with at least one free slab */
	struct arena *arena;
	int node;
	uint32_t tcache_max;
	bool abandoned;
	size_t free_bytes;     /* free, still committed slabs it holds */
	struct heap *next_all; /* arena list of all heaps (never freed) */
	struct heap *next_abandoned;
	struct heap_counters st;
};

/* Where an extent's address space comes from, and where it goes back. */
enum extent_kind {
	EXT_SLICE,  /* the node's fixed slice of the window: kept for good */
	EXT_WINDOW, /* carved from the window on demand: back to it when empty */
	EXT_MAPPED, /* its own mapping, outside the window: unmapped when empty */
};

/*
 * One contiguous range of an arena, with its segment bookkeeping.  Under
 * the arena lock; the bitmaps live in the same allocation.
 */
struct extent {
	struct moirai__list link; /* arena->extents, in creation order */
	char *base;		  /* SEG_SIZE aligned */
	size_t nsegs;
	size_t granule_segs; /* commit granule in segments (the last may be short) */
	size_t nused;	     /* segments in use: an extra extent goes back at 0 */
	size_t hwm;	     /* segments below this were ever used */
	uint8_t kind;	     /* enum extent_kind */
	size_t meta_len;     /* bytes of this struct and its bitmaps */
	uint64_t *used;	     /* bit per segment */
	uint64_t *dirty;     /* bit per segment: committed pages */
	uint64_t *setup;     /* bit per granule: mapped RW and bound */
	uint8_t *seg_mode;   /* enum page_mode per granule */
};

/* One node arena; everything but the counters is under lock. */
struct arena {
	pthread_mutex_t lock;
	int node;
	_Atomic bool available; /* read without the lock */
	enum page_mode mode;	/* current mode (after fallbacks) */
	bool forced;		/* mode forced by the option */
	size_t granule_segs;	/* commit granule in segments */
	struct moirai__list extents;
	_Atomic uint64_t reserved;     /* bytes of address space in its extents */
	_Atomic uint64_t extents_made; /* extents mapped outside the window */
	struct heap *heaps;
	struct heap *abandoned;
	_Atomic uint64_t committed;
	_Atomic uint64_t committed_mode[3];
	_Atomic uint64_t free_committed; /* committed bytes in unused segments */
	_Atomic uint64_t huge_in_use;
	_Atomic uint64_t huge_frees;
	_Atomic uint64_t huge_remote_frees;
	_Atomic uint64_t decommitted;
	_Atomic uint64_t hugetlb_fallbacks;
	_Atomic uint64_t preferred_fallbacks;
	_Atomic uint64_t nheaps;
	_Atomic uint64_t nabandoned;
};

/*
 * Globals set once by moirai__alloc_init.  Hidden: direct PC-relative
 * access on the fast paths, no GOT load.  base/size/segmap describe the
 * window (size 0: no window, every segment lives in an extent).
 */
extern MOIRAI_HIDDEN char *moirai__alloc_base;
extern MOIRAI_HIDDEN size_t moirai__alloc_size;
extern MOIRAI_HIDDEN struct segment **moirai__alloc_segmap;
extern MOIRAI_HIDDEN struct arena *moirai__arenas[MAX_NODES_TLS];
extern MOIRAI_HIDDEN int moirai__alloc_nodes;
extern MOIRAI_HIDDEN size_t moirai__alloc_max_size; /* largest single request */
extern MOIRAI_HIDDEN bool moirai__alloc_debug;
extern MOIRAI_HIDDEN uint32_t moirai__alloc_tcache_max;
extern MOIRAI_HIDDEN size_t moirai__alloc_decommit_threshold;
/* Bumped in a fork child: segments of an older generation are the parent's. */
extern MOIRAI_HIDDEN uint32_t moirai__alloc_gen;

/*
 * Why @node cannot take an allocation (or has no stats), in the one node
 * vocabulary of numa/resolve.c: -EINVAL not a node number, -ENODEV no such
 * node, no memory, beyond the allocator's nodes or binding refused, -EPERM
 * the cgroup forbids it.  Records "WHO: reason"; returns the code.
 */
int moirai__alloc_node_refusal(const char *who, int node);
extern MOIRAI_HIDDEN const uint32_t moirai__class_size[NUM_CLASSES];
/* Size class of every size 1..SMALL_MAX by (size - 1) / 16 (all classes are multiples of 16). */
extern MOIRAI_HIDDEN const uint8_t moirai__class_of16[SMALL_MAX / 16];
/* Always-empty bins: moirai__tld.bins of a thread with no local heap. */
extern MOIRAI_HIDDEN struct bin moirai__bins_none[NUM_CLASSES];

/*
 * 0 or -ENOMEM (with a message).  Idempotent; a failed start (out of
 * memory for the arenas' own bookkeeping) is retried by the next call.
 */
int moirai__alloc_init(void);
/* Whether moirai__alloc_init() has succeeded (any thread). */
bool moirai__alloc_started(void);

/*
 * Bound of the thread cache of class @cls: MOIRAI_TCACHE_MAX blocks, or
 * more for small blocks, up to BIN_BYTES of them (at most BIN_BLOCKS).
 * Small blocks are where producer-consumer traffic lives; a deeper cache
 * keeps them out of the slab lists.  0 (debug, ASan) turns caches off.
 */
#define BIN_BYTES  ((uint32_t)65536)
#define BIN_BLOCKS ((uint32_t)1024)
static inline uint32_t moirai__bin_max(unsigned cls)
{
	uint32_t by_bytes = BIN_BYTES / moirai__class_size[cls];
	uint32_t max = moirai__alloc_tcache_max;

	if (max == 0)
		return 0;
	if (by_bytes > BIN_BLOCKS)
		by_bytes = BIN_BLOCKS;
	return by_bytes > max ? by_bytes : max;
}

/*
 * Where a bin's bound starts (tcmalloc's slow start): BIN_START_BYTES of
 * blocks, at least BIN_START_MIN, at most moirai__bin_max().  A bin that
 * overflows doubles its bound up to moirai__bin_max(), so the classes a
 * program frees in bursts get deep caches and the others stay shallow: 72
 * classes at 64 KiB each would park megabytes of idle blocks.
 */
/* Bytes of idle caches a heap keeps when it takes a new slab (heap.c). */
#define BINS_RECLAIM_BYTES ((size_t)256 << 10)
#define BIN_START_BYTES	   ((uint32_t)8192)
#define BIN_START_MIN	   ((uint32_t)4)
static inline uint32_t moirai__bin_start(unsigned cls)
{
	uint32_t cap = moirai__bin_max(cls), n = BIN_START_BYTES / moirai__class_size[cls];

	if (n < BIN_START_MIN)
		n = BIN_START_MIN;
	return n < cap ? n : cap;
}

/* Segment owning @p when it is in an extra extent, else NULL (arena.c). */
struct segment *moirai__seg_of_extent(const void *p);

/*
 * The free fast path's lookup: the window only, one range check and one
 * load.  NULL means "not in the window": the caller's slow path then asks
 * moirai__seg_of().
 */
static inline struct segment *moirai__seg_of_window(const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)moirai__alloc_base;

	if (off >= moirai__alloc_size)
		return NULL;
	return moirai__alloc_segmap[off >> SEG_SHIFT];
}

/* Segment (or span header) owning @p, NULL when foreign. */
static inline struct segment *moirai__seg_of(const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)moirai__alloc_base;

	if (moirai_likely(off < moirai__alloc_size))
		return moirai__alloc_segmap[off >> SEG_SHIFT];
	return moirai__seg_of_extent(p);
}

/* Size class of a small size (1..SMALL_MAX). */
static inline unsigned moirai__size_class(size_t size)
{
	return moirai__class_of16[(size - 1) >> 4];
}

/*
 * Blocks this thread freed for one foreign heap, sent as one chain with one
 * CAS once OUTBOX_BATCH are gathered (snmalloc's remote batching).  They are
 * never reused by this thread, and are sent at the latest when the thread
 * next takes an allocation slow path, flushes, or exits.
 */
#define OUTBOX_WAYS  8
#define OUTBOX_BATCH 32
struct outbox {
	struct heap *heap;
	void *head, *tail;
	uint32_t count;
};

/* Per-thread state: the heap of each node this thread allocated on. */
struct tld {
	/*
	 * local->bins, or moirai__bins_none while local is NULL: malloc's fast
	 * path indexes it without a NULL check (moirai__tld_set_local keeps
	 * both in step).
	 */
	struct bin *bins;
	struct heap *local;		   /* heap of the thread's node */
	struct heap *heaps[MAX_NODES_TLS]; /* by OS node index */
	struct outbox out[OUTBOX_WAYS];	   /* remote frees not yet sent */
	bool out_used;			   /* some outbox may hold blocks */
	unsigned slow_count;		   /* re-check the node now and then */
	bool registered;		   /* exit destructor armed */
	bool exiting;			   /* the exit destructor ran: frees go out at once */
	/*
	 * Nonzero while the thread is inside an allocation slow path.  The
	 * malloc drop-in (alloc/override/) serves a malloc made from in there
	 * (libc, libnuma and pthread calls of the slow path) from glibc instead
	 * of re-entering the allocator, whose start lock and pthread_once
	 * initialisers are not recursive.
	 */
	unsigned busy;
};
extern __thread MOIRAI_HIDDEN struct tld moirai__tld __attribute__((tls_model("initial-exec")));

/* Make @h (maybe NULL) the calling thread's local heap. */
static inline void moirai__tld_set_local(struct heap *h)
{
	moirai__tld.local = h;
	moirai__tld.bins = h ? h->bins : moirai__bins_none;
}

/* ---- malloc.c ---- */
/*
 * The generic allocation path of every malloc flavour (checks, node,
 * kind, debug hooks), with moirai__tld.busy raised around it.  NULL with
 * errno and a message on failure.
 */
void *moirai__alloc_generic(int node, size_t size, size_t align, unsigned flags);
/* What moirai__free_slow() did with a pointer. */
enum moirai__free_result {
	MOIRAI__FREED,	 /* freed (or a bad pointer inside the arenas, reported) */
	MOIRAI__FOREIGN, /* outside every range this allocator holds: not touched */
};
/* Every free the inline fast cases did not take; NULL is FREED. */
enum moirai__free_result moirai__free_slow(void *p);
/*
 * Whether @p lies in address space this allocator holds (the window, or
 * an extra extent), whether or not a live block is there.
 */
bool moirai__alloc_owns_range(const void *p);

/*
 * Defined (nonzero) only by the malloc drop-in: the arenas then default to
 * 4 KiB pages unless MOIRAI_HUGEPAGES is set, because every process the
 * drop-in is preloaded into would otherwise pay a 2 MiB huge page per heap
 * (alloc/override/).  Weak: libmoirai alone leaves it undefined.
 */
extern const int moirai__malloc_dropin __attribute__((weak, visibility("hidden")));

/* ---- extent.c ---- */
/*
 * Zeroed memory for the allocator's own bookkeeping (arenas, extents):
 * whole pages from mmap, never libc malloc, which makes glibc reserve a
 * 64 MiB arena for each thread that first calls it: under RLIMIT_AS a
 * thread that grows an arena must not pay that.
 */
void *moirai__meta_alloc(size_t len);
void moirai__meta_free(void *p, size_t len);
/* RLIMIT_AS soft limit in bytes, SIZE_MAX when unlimited. */
size_t moirai__as_limit(void);
/* Window bytes per node for @nodes arenas (a multiple of @granule, maybe 0). */
size_t moirai__window_slice(int nodes, size_t granule);
/*
 * Manage the @nsegs segments of the window at moirai__alloc_base, all free
 * (0: no window); 0 or -ENOMEM.
 */
int moirai__window_init(size_t nsegs);
/* @n contiguous free segments of the window, NULL when it has no such run. */
char *moirai__window_carve(size_t n);
/* Give carved segments back: their pages and node binding are dropped. */
void moirai__window_return(char *p, size_t n);
/* Bytes of the window no arena has carved. */
size_t moirai__window_free_bytes(void);
/* Segments of a new extra extent for a request of @n, given @reserved bytes. */
size_t moirai__extent_growth(size_t reserved, size_t n, size_t granule_segs);
/* @len bytes of PROT_NONE address space, SEG_SIZE aligned; NULL if refused. */
char *moirai__as_reserve(size_t len);
/* Bookkeeping of an extent at @base (one calloc); NULL when out of memory. */
struct extent *moirai__extent_new(char *base, size_t nsegs, size_t granule_segs,
				  enum extent_kind kind);
/* Reserve and describe an extra extent, reachable by the map; 0 or -ENOMEM. */
int moirai__extent_map(size_t nsegs, size_t granule_segs, struct extent **out);
/* Unmap an extra extent whose segments are all free, and free it. */
void moirai__extent_unmap(struct extent *e);

/* ---- arena.c ---- */
const char *moirai__mode_name(int mode);
/*
 * @n contiguous committed segments for a heap or a span, and their page
 * mode; NULL with errno (ENODEV, ENOMEM) and a moirai__err message.
 */
char *moirai__arena_alloc_segs(struct arena *a, size_t n, enum page_mode *mode);
void moirai__arena_free_segs(struct arena *a, char *p, size_t n);
/* Point the segment map entries of [p, p + n segments) at @seg (or NULL). */
void moirai__segmap_set(char *p, size_t n, struct segment *seg);
/* Account @bytes of a segment's pages given back (< 0) or reused (> 0). */
void moirai__arena_account(struct arena *a, enum page_mode m, long bytes);
void moirai__arena_register_heap(struct arena *a, struct heap *h);
struct heap *moirai__arena_adopt(struct arena *a);
void moirai__arena_abandon(struct arena *a, struct heap *h);
/* Unlink every abandoned heap for a sweep, and park them again after it. */
struct heap *moirai__arena_take_abandoned(struct arena *a);
void moirai__arena_return_abandoned(struct arena *a, struct heap *list);
/* Nearest available node to @node by SLIT distance, -1 if none. */
int moirai__arena_nearest(int node);

/* ---- heap.c ---- */
/* The calling thread's heap on @node (created or adopted); NULL + errno. */
struct heap *moirai__heap_get(int node);
/* The heap of the calling thread's current node; NULL + errno. */
struct heap *moirai__heap_local(void);
/* A block of class @cls (bin refilled from slabs); NULL + errno. */
void *moirai__heap_alloc_small(struct heap *h, unsigned cls);
/* A run of slabs for @size (<= LARGE_MAX), 64 KiB aligned; NULL + errno. */
void *moirai__heap_alloc_large(struct heap *h, size_t size);
/* Whole segments; returns the span header, user pointer in seg->user. */
struct segment *moirai__heap_alloc_huge(struct heap *h, size_t size, size_t align);
/* Free after the checks: routes to the owner (local or remote list). */
void moirai__heap_free(struct segment *seg, void *p);
/* Send @p (a small or large block of heap @h) back to its owner. */
void moirai__heap_free_remote(struct heap *h, void *p);
void moirai__heap_flush_thread(void);
/*
 * Collect the heaps dead threads left on @a: blocks freed to them after
 * their owner exited wait on their remote lists, each keeping a segment,
 * until a thread adopts the heap.  Returns whether there were any.
 */
bool moirai__heap_sweep_abandoned(struct arena *a);
/* Fork child: forget the calling thread's heaps and unsent frees. */
void moirai__heap_forget_thread(void);
/* Debug walker: true when @h's bins, partial lists and segments agree. */
bool moirai__heap_is_valid(const struct heap *h);
/* Slab holding @p in a small segment (the head slab for large runs). */
static inline struct slab *moirai__slab_of(struct segment *seg, const void *p)
{
	struct slab *s = &seg->slabs[((uintptr_t)p - (uintptr_t)seg) >> SLAB_SHIFT];

	return s->kind == SLAB_LARGE_TAIL ? &seg->slabs[s->run] : s;
}
/* Start of the block holding @p in slab @s. */
static inline char *moirai__block_of(struct slab *s, const void *p)
{
	size_t off = (size_t)((const char *)p - s->start);

	if (s->kind != SLAB_SMALL)
		return s->start;
	return s->start + off / s->block_size * s->block_size;
}

/* ---- debug.c ---- */
#define DEBUG_EXTRA 16 /* canary (>= 8 bytes) + trailer word */
/* Arms the canary behind @p..@p+req and marks the block live. */
void moirai__debug_on_alloc(void *p, char *block, size_t block_size, size_t req);
/* Checks a block being freed; aborts with a report on corruption. */
void moirai__debug_on_free(const void *p, char *block, size_t block_size);
/* Requested size of the live debug block, 0 when not live. */
size_t moirai__debug_req(const void *p, char *block, size_t block_size);
void moirai__debug_huge_on_alloc(struct segment *seg);
void moirai__debug_huge_on_free(struct segment *seg, const void *p);
void moirai__debug_report(const char *what, const void *p, size_t size) __attribute__((noreturn));

static inline void *moirai__block_next(void *b);
static inline void moirai__block_set_next(void *b, void *next);

#include "alloc_san.h"

static inline void *moirai__block_next(void *b)
{
	void *n;

	moirai__san_unpoison(b, sizeof(void *));
	n = *(void **)b;
	moirai__san_poison(b, sizeof(void *));
	return n;
}

static inline void moirai__block_set_next(void *b, void *next)
{
	moirai__san_unpoison(b, sizeof(void *));
	*(void **)b = next;
	moirai__san_poison(b, sizeof(void *));
}

/* Pop the head of bin @b, NULL when it is empty. */
static inline void *moirai__bin_take(struct bin *b)
{
	void *p = b->head;

	if (moirai_likely(p != NULL)) {
		b->head = *(void **)p;
		b->count--;
	}
	return p;
}

/*
 * The fast path of malloc-like calls on the thread's local heap: pop the
 * thread cache of the size class, or NULL (no heap yet, large or zero
 * size, empty bin) to take the generic path.  size - 1 wraps for 0, which
 * therefore goes generic.  One table load for the class, no NULL check
 * of the heap (moirai__tld.bins is never NULL).
 */
static inline void *moirai__bin_pop_local(size_t size)
{
	if (moirai_likely(size - 1 < SMALL_MAX))
		return moirai__bin_take(&moirai__tld.bins[moirai__class_of16[(size - 1) >> 4]]);
	return NULL;
}

/* The same on heap @h of an explicit node (NULL: none yet). */
static inline void *moirai__bin_pop(struct heap *h, size_t size)
{
	if (moirai_likely(h != NULL && size - 1 < SMALL_MAX))
		return moirai__bin_take(&h->bins[moirai__class_of16[(size - 1) >> 4]]);
	return NULL;
}

/*
 * The fast cases of free for a block of segment @seg: a small block of one
 * of this thread's heaps with room in its bin, or a small block of another
 * thread's heap (sent to its owner).  Returns false for everything else.
 * The owner's case reads the segment's first line and the bin only: the
 * slab's class comes from the address bits (segments are SEG_SIZE
 * aligned), and every slab or span that needs the slow path names the
 * always-full bin SLAB_CLS_NONE.
 */
static inline __attribute__((always_inline)) bool moirai__free_fast(struct segment *seg, void *p)
{
	struct heap *h = seg->heap;

	if (moirai_likely(moirai__tld.heaps[seg->node] == h)) {
		unsigned c = seg->slab_cls[((uintptr_t)p >> SLAB_SHIFT) & (SLABS_PER_SEG - 1)];
		struct bin *b = &h->bins[c];

		if (moirai_likely(b->count < b->max)) {
			*(void **)p = b->head;
			b->head = p;
			b->count++;
			/* Single writer: a plain increment, read by stats. */
			atomic_store_explicit(
				&h->bin_frees,
				atomic_load_explicit(&h->bin_frees, memory_order_relaxed) + 1,
				memory_order_relaxed);
			return true;
		}
		return false;
	}
	if (moirai_likely(seg->kind == SEG_SMALL && !moirai__alloc_debug && !MOIRAI__SAN_ASAN &&
			  seg->magic == SEG_MAGIC && seg->gen == moirai__alloc_gen)) {
		/* Another thread's block: the owner checks it at drain. */
		moirai__heap_free_remote(h, p);
		return true;
	}
	return false;
}

#endif /* MOIRAI_ALLOC_INT_H */
