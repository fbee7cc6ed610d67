/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The malloc-like entry points: size classes, the cache fast paths of
 * malloc and free, and the generic path that validates arguments, picks
 * the node and the kind of allocation (small block, large run of slabs,
 * huge span) and applies the debug and sanitizer hooks.
 *
 * Fast paths: malloc pops the head of the calling thread's bin for the
 * size class; free pushes on it when the block's segment belongs to the
 * caller's heap on that node and the bin has room.  Everything else
 * (empty or full bin, remote free, alignment, debug mode, ASan, large
 * sizes, errors) goes through one out-of-line generic path.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "moirai/numa.h"

const uint32_t moirai__class_size[NUM_CLASSES] = {
	16,    32,    48,    64,    80,	   96,	  112,	 128,	144,   160,   176,   192,
	208,   224,   240,   256,   288,   320,	  352,	 384,	416,   448,   480,   512,
	576,   640,   704,   768,   832,   896,	  960,	 1024,	1152,  1280,  1408,  1536,
	1664,  1792,  1920,  2048,  2304,  2560,  2816,	 3072,	3328,  3584,  3840,  4096,
	4608,  5120,  5632,  6144,  6656,  7168,  7680,	 8192,	9216,  10240, 11264, 12288,
	13312, 14336, 15360, 16384, 18432, 20480, 22528, 24576, 26624, 28672, 30720, 32768,
};

/*
 * moirai__class_of16[(size - 1) / 16]: classes up to 128 bytes step by 16
 * (one entry each); above, each power of two 2^m..2^(m+1) holds 8 classes
 * of 2^(m-7) entries each.  A table, so malloc's fast path spends one load
 * on the class instead of a bit scan and shifts; written out by the
 * preprocessor so it is constant from the first malloc of the process.
 */
#define R1(c)	     c,
#define R2(c)	     R1(c) R1(c)
#define R4(c)	     R2(c) R2(c)
#define R8(c)	     R4(c) R4(c)
#define R16(c)	     R8(c) R8(c)
#define R32(c)	     R16(c) R16(c)
#define R64(c)	     R32(c) R32(c)
#define R128(c)	     R64(c) R64(c)
#define OCTAVE(R, c) R(c) R(c + 1) R(c + 2) R(c + 3) R(c + 4) R(c + 5) R(c + 6) R(c + 7)
const uint8_t moirai__class_of16[SMALL_MAX / 16] = {
	OCTAVE(R1, 0)	 /* 16..128 */
	OCTAVE(R1, 8)	 /* ..256 */
	OCTAVE(R2, 16)	 /* ..512 */
	OCTAVE(R4, 24)	 /* ..1024 */
	OCTAVE(R8, 32)	 /* ..2048 */
	OCTAVE(R16, 40)	 /* ..4096 */
	OCTAVE(R32, 48)	 /* ..8192 */
	OCTAVE(R64, 56)	 /* ..16384 */
	OCTAVE(R128, 64) /* ..32768 */
};
#undef R1
#undef R2
#undef R4
#undef R8
#undef R16
#undef R32
#undef R64
#undef R128
#undef OCTAVE

struct bin moirai__bins_none[NUM_CLASSES];

/* The malloc contract: record the detail, set errno, return NULL. */
#define fail(err, ...) (moirai__err(-(err), __VA_ARGS__), errno = (err), (void *)NULL)

int moirai__alloc_node_refusal(const char *who, int node)
{
	/* The resolver knows why (numa/resolve.c): not a node number, no such
	 * node, no memory, the cgroup forbids it. */
	int rc = moirai_numa_node_resolve(node);

	if (rc >= 0 && node >= moirai__alloc_nodes)
		return moirai__err(-ENODEV, "%s: node %d is beyond the %d nodes the allocator uses",
				   who, node, moirai__alloc_nodes);
	if (rc >= 0)
		return moirai__err(-ENODEV, "%s: node %d cannot be bound (mbind refused)", who,
				   node);
	return moirai__err(rc, "%s: %s", who, moirai_last_error());
}

/* The malloc contract of moirai__alloc_node_refusal(): errno, no return. */
static void node_unusable(int node)
{
	errno = -moirai__alloc_node_refusal("alloc", node);
}

/* ENODEV or EPERM: the node is unusable, another one might do. */
static bool node_errno(int err)
{
	return err == ENODEV || err == EPERM;
}

/* Resolve @node (ANY, preferred fallback) and return the heap to use. */
static struct heap *pick_heap(int node, unsigned flags)
{
	if (node == MOIRAI_NODE_ANY) {
		/*
		 * Every 64th slow path, follow a thread that moved to another
		 * node (getcpu is a vDSO call: a few ns per refill of a bin).
		 */
		if ((++moirai__tld.slow_count & 63) == 0)
			moirai__tld_set_local(NULL);
		return moirai__tld.local ? moirai__tld.local : moirai__heap_local();
	}
	/* ANY above is the thread's cached local heap, the allocator's own
	 * policy (the resolver's MOIRAI_NODE_ANY costs a getcpu per call); any
	 * other node outside the arenas gets the resolver's verdict. */
	if (node < 0 || node >= moirai__alloc_nodes) {
		node_unusable(node);
		return NULL;
	}
	struct arena *a = moirai__arenas[node];
	struct heap *h = moirai__tld.heaps[node];

	if (h)
		return h;
	if (atomic_load_explicit(&a->available, memory_order_relaxed)) {
		h = moirai__heap_get(node);
		if (h || !node_errno(errno))
			return h;
	}
	if (!(flags & MOIRAI_ALLOC_F_PREFERRED)) {
		node_unusable(node);
		return NULL;
	}
	{
		int alt = moirai__arena_nearest(node);

		if (alt < 0) {
			moirai__err(-ENODEV, "alloc: node %d and every other node are unavailable",
				    node);
			errno = ENODEV;
			return NULL;
		}
		atomic_fetch_add_explicit(&a->preferred_fallbacks, 1, memory_order_relaxed);
		h = moirai__heap_get(alt);
	}
	return h;
}

static void *finish_small(void *block, unsigned cls, size_t align, size_t req)
{
	size_t bs = moirai__class_size[cls];
	char *p = block;

	moirai__san_unpoison(block, bs);
	if (align > MIN_ALIGN) {
		p = (char *)moirai__align_up((uintptr_t)block, align);
		if (p != block) {
			struct segment *seg = moirai__seg_of(block);

			moirai__slab_of(seg, block)->flags |= SLAB_ALIGNED;
			/* Its frees now need the block start: off the fast path. */
			seg->slab_cls[((uintptr_t)block - (uintptr_t)seg) >> SLAB_SHIFT] =
				SLAB_CLS_NONE;
		}
	}
	if (moirai__alloc_debug)
		moirai__debug_on_alloc(p, block, bs, req);
	return p;
}

static void *alloc_on(int node, size_t size, size_t align, unsigned flags)
{
	size_t extra;
	struct heap *h;

	if (moirai_unlikely(size == 0))
		return fail(EINVAL, "alloc: zero size");
	if (moirai_unlikely(align & (align - 1)) || align > MAX_ALIGN)
		return fail(EINVAL, "alloc: alignment %zu is not a power of two <= %zu", align,
			    MAX_ALIGN);
	if (moirai_unlikely(moirai__alloc_init() != 0)) {
		errno = ENOMEM;
		return NULL;
	}
	extra = moirai__alloc_debug ? DEBUG_EXTRA : 0;
	if (moirai_unlikely(size > moirai__alloc_max_size))
		return fail(ENOMEM, "alloc: %zu bytes exceed the largest block (%zu bytes)", size,
			    moirai__alloc_max_size);
	h = pick_heap(node, flags);
	if (!h)
		return NULL;
	if (align < MIN_ALIGN)
		align = MIN_ALIGN;
	if (align == MIN_ALIGN && size + extra <= SMALL_MAX) {
		unsigned cls = moirai__size_class(size + extra);
		void *b = moirai__heap_alloc_small(h, cls);

		return b ? finish_small(b, cls, align, size) : NULL;
	}
	if (align <= 4096 && size + extra + align - MIN_ALIGN <= SMALL_MAX) {
		unsigned cls = moirai__size_class(size + extra + align - MIN_ALIGN);
		void *b = moirai__heap_alloc_small(h, cls);

		return b ? finish_small(b, cls, align, size) : NULL;
	}
	if (align <= SLAB_SIZE && size + extra <= LARGE_MAX) {
		char *p = moirai__heap_alloc_large(h, size + extra);

		if (p && moirai__alloc_debug)
			moirai__debug_on_alloc(
				p, p, moirai__slab_of(moirai__seg_of(p), p)->block_size, size);
		return p;
	}
	struct segment *seg = moirai__heap_alloc_huge(h, size, align);

	if (!seg)
		return NULL;
	if (moirai__alloc_debug)
		moirai__debug_huge_on_alloc(seg);
	return seg->user;
}

/*
 * A node can turn unavailable after its heap exists (mbind refused at a
 * later commit): "preferred" requests then go to the nearest node.
 */
static void *alloc_generic(int node, size_t size, size_t align, unsigned flags)
{
	void *p = alloc_on(node, size, align, flags);

	if (moirai_unlikely(!p) && node_errno(errno) && node >= 0 &&
	    (flags & MOIRAI_ALLOC_F_PREFERRED)) {
		int alt = moirai__arena_nearest(node);

		if (alt >= 0) {
			atomic_fetch_add_explicit(&moirai__arenas[node]->preferred_fallbacks, 1,
						  memory_order_relaxed);
			p = alloc_on(alt, size, align, flags);
		}
	}
	return p;
}

void *moirai__alloc_generic(int node, size_t size, size_t align, unsigned flags)
{
	void *p;

	moirai__tld.busy++;
	p = alloc_generic(node, size, align, flags);
	moirai__tld.busy--;
	return p;
}

void *moirai_malloc(size_t size)
{
	void *p = moirai__bin_pop_local(size);

	return moirai_likely(p != NULL) ? p : moirai__alloc_generic(MOIRAI_NODE_ANY, size, 0, 0);
}

void *moirai_malloc_node(size_t size, int node)
{
	if (moirai_likely((unsigned)node < MAX_NODES_TLS)) {
		void *p = moirai__bin_pop(moirai__tld.heaps[node], size);

		if (moirai_likely(p != NULL))
			return p;
	}
	return moirai__alloc_generic(node, size, 0, 0);
}

void *moirai_malloc_node_flags(size_t size, size_t align, int node, unsigned flags)
{
	if (flags & ~MOIRAI_ALLOC_F_PREFERRED)
		return fail(EINVAL, "alloc: unknown flags %#x", flags & ~MOIRAI_ALLOC_F_PREFERRED);
	return moirai__alloc_generic(node, size, align, flags);
}

void *moirai_aligned_alloc(size_t align, size_t size)
{
	if (align == 0)
		return fail(EINVAL, "alloc: alignment 0 is not a power of two");
	return moirai__alloc_generic(MOIRAI_NODE_ANY, size, align, 0);
}

void *moirai_calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (n == 0 || size == 0)
		return fail(EINVAL, "calloc: zero count %zu or size %zu", n, size);
	if (__builtin_mul_overflow(n, size, &total))
		return fail(ENOMEM, "calloc: %zu * %zu overflows", n, size);
	p = moirai_malloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

/* A pointer this allocator did not hand out (or already freed). */
static void bad_free(const void *p, const char *why)
{
	if (moirai__alloc_debug)
		moirai__debug_report(why, p, 0);
	moirai__err(-EINVAL, "free: %s %p ignored", why, p);
}

bool moirai__alloc_owns_range(const void *p)
{
	return (uintptr_t)p - (uintptr_t)moirai__alloc_base < moirai__alloc_size ||
	       moirai__seg_of_extent(p) != NULL;
}

/*
 * Checks, sanitizer and debug hooks, then the owner's free path.  A
 * pointer with no segment is reported when it lies in the window (a block
 * freed twice, a stray pointer), and left to the caller otherwise.
 */
static __attribute__((noinline)) enum moirai__free_result free_generic(void *p)
{
	struct segment *seg;

	if (!p)
		return MOIRAI__FREED;
	seg = moirai__seg_of(p);
	if (!seg || seg->magic != SEG_MAGIC) {
		if (!moirai__alloc_owns_range(p))
			return MOIRAI__FOREIGN;
		bad_free(p, "free of a foreign pointer");
		return MOIRAI__FREED;
	}
	/* A fork child never writes to the parent's hugetlb pages (SIGBUS). */
	if (moirai_unlikely(seg->gen != moirai__alloc_gen) && seg->mode == MODE_HUGETLB)
		return MOIRAI__FREED;
	if (seg->kind == SEG_HUGE) {
		if (p != seg->user) {
			bad_free(p, "free of an interior pointer");
			return MOIRAI__FREED;
		}
		if (moirai__alloc_debug)
			moirai__debug_huge_on_free(seg, p);
		moirai__heap_free(seg, p);
		return MOIRAI__FREED;
	}
	/*
	 * A remote free in release mode reads nothing the owner writes (the
	 * slab descriptors): the owner checks the block when it drains it.
	 */
	if (moirai__tld.heaps[seg->node] == seg->heap || moirai__alloc_debug || MOIRAI__SAN_ASAN) {
		struct slab *s = moirai__slab_of(seg, p);

		if (s->kind == SLAB_FREE || (char *)p < s->start || (char *)p >= s->end) {
			bad_free(p, "free of a pointer to no live block");
			return MOIRAI__FREED;
		}
		char *block = moirai__block_of(s, p);

		if (moirai__alloc_debug)
			moirai__debug_on_free(p, block, s->block_size);
		/* Poisoned here too for remote frees, before the block travels. */
		if (s->kind == SLAB_SMALL)
			moirai__san_poison(block, s->block_size);
	}
	moirai__heap_free(seg, p);
	return MOIRAI__FREED;
}

/*
 * Not in the window: a block of an extra extent (address-space limit, or
 * an arena past its window) gets the same fast cases after the extent
 * lookup; NULL and foreign pointers go on to the generic path.
 */
enum moirai__free_result moirai__free_slow(void *p)
{
	struct segment *seg = moirai__seg_of_window(p);

	if (!seg) {
		seg = moirai__seg_of_extent(p);
		if (seg && moirai__free_fast(seg, p))
			return MOIRAI__FREED;
	}
	return free_generic(p);
}

void moirai_free(void *p)
{
	/* One range check and one load: the window's segment map. */
	struct segment *seg = moirai__seg_of_window(p);

	if (moirai_likely(seg != NULL && moirai__free_fast(seg, p)))
		return;
	if (moirai__free_slow(p) == MOIRAI__FOREIGN)
		bad_free(p, "free of a foreign pointer");
}

size_t moirai_usable_size(const void *p)
{
	struct segment *seg = p ? moirai__seg_of(p) : NULL;

	if (!p)
		return 0;
	if (!seg || seg->magic != SEG_MAGIC) {
		moirai__err(-EINVAL, "usable_size: %p is not from moirai_malloc", p);
		return 0;
	}
	if (seg->kind == SEG_HUGE) {
		if (p != seg->user) {
			moirai__err(-EINVAL, "usable_size: %p is inside a block", p);
			return 0;
		}
		if (moirai__alloc_debug)
			return seg->req;
		return (size_t)((char *)seg + seg->span - (const char *)p);
	}
	struct slab *s = moirai__slab_of(seg, p);

	if (s->kind == SLAB_FREE || (const char *)p < s->start || (const char *)p >= s->end) {
		moirai__err(-EINVAL, "usable_size: %p is in no live block", p);
		return 0;
	}
	char *block = moirai__block_of(s, p);

	if (moirai__alloc_debug)
		return moirai__debug_req(p, block, s->block_size);
	return (size_t)(block + s->block_size - (const char *)p);
}

void *moirai_realloc(void *p, size_t size)
{
	size_t old;
	void *q;
	int node;

	if (!p)
		return moirai_malloc(size);
	if (size == 0) {
		moirai_free(p);
		return NULL;
	}
	old = moirai_usable_size(p);
	if (old == 0)
		return fail(EINVAL, "realloc: %p is not a live block", p);
	/* Stay in place unless it would waste more than half the block. */
	if (!moirai__alloc_debug && size <= old && size >= old / 2)
		return p;
	node = moirai__seg_of(p)->node;
	q = moirai__alloc_generic(node, size, 0, MOIRAI_ALLOC_F_PREFERRED);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	moirai_free(p);
	return q;
}

int moirai_alloc_ptr_node(const void *p)
{
	struct segment *seg = p ? moirai__seg_of(p) : NULL;

	if (!seg || seg->magic != SEG_MAGIC)
		return moirai__err(-EINVAL, "alloc: %p is not from moirai_malloc", p);
	return seg->node;
}

void moirai_alloc_thread_flush(void)
{
	if (moirai__alloc_started())
		moirai__heap_flush_thread();
}
