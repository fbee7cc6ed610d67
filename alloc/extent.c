/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Address space of the allocator: how much to reserve, where, and how a
 * pointer is found again.
 *
 * Everything the arenas hand out lives in extents: 2 MiB aligned
 * PROT_NONE, MAP_NORESERVE ranges (address space only, no memory) cut in
 * 2 MiB segments.  The window is reserved once when the allocator starts;
 * its flat segment map is what the free fast path reads
 * (moirai__seg_of_window: one range check, one load).  Without an
 * address-space limit it is split in one fixed slice per node.  Under
 * RLIMIT_AS the nodes carve extents out of it as they need them (so that
 * a program living on one node can use all of it) and give them back when
 * they empty.  When the window has no free run left, the arena maps an
 * extent of its own instead of failing.  Those are found through a
 * two-level map (one L2 table per 64 GiB of address space ever used) off
 * the fast path, and are unmapped as soon as their last segment is freed,
 * so the allocator never sits on address space it does not use beyond one
 * growth step.
 *
 * Sizing.  Without a limit the window is MOIRAI_ARENA_RESERVE per node
 * (64 GiB by default): reserving costs no memory, and a large window keeps
 * every pointer on the fast path.  Under RLIMIT_AS every reserved byte
 * counts against the limit, and a window the program never fills starves
 * everything else: thread stacks (8 MiB each by default, so 32 threads
 * need 256 MiB), glibc's per-thread malloc arenas (64 MiB reservations),
 * libraries and the program's own mappings.  The window then takes a
 * quarter of the address space still free when the allocator starts (half
 * when MOIRAI_ARENA_RESERVE is set explicitly, and never more than that
 * setting): a quarter leaves three quarters to a program whose other needs
 * the allocator cannot see coming, and a small window costs only speed,
 * never capacity, because memory beyond it comes in extents on demand.
 * Extents grow geometrically (half of what the arena holds, at least
 * 8 MiB) so that a growing arena needs few of them; under a limit each is
 * at most 64 MiB and 1/16 of the limit, and when even that does not fit,
 * exactly what the request needs is tried before the request fails with
 * ENOMEM.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc_int.h"

/* User space is 47 bits on x86-64 unless a mapping asks for more. */
#define VA_BITS	      47
#define XMAP_L2_SHIFT 36 /* one L2 table per 64 GiB */
#define XMAP_L1_SIZE  ((size_t)1 << (VA_BITS - XMAP_L2_SHIFT))
#define XMAP_L2_SIZE  ((size_t)1 << (XMAP_L2_SHIFT - SEG_SHIFT))

#define EXTENT_MIN_SEGS	    ((size_t)4)	 /* 8 MiB */
#define EXTENT_MAX_LIMITED  ((size_t)32) /* 64 MiB under RLIMIT_AS */
#define LIMITED_GROWTH_DIV  16		 /* ... and at most limit / 16 */
#define WINDOW_SHARE	    4		 /* default: 1/4 of the free budget */
#define WINDOW_SHARE_EXPLIC 2		 /* explicit reserve: at most 1/2 */

/*
 * L1 of the extent map.  L2 tables are mapped on demand and kept for the
 * life of the process (reachable from here; one per 64 GiB region that
 * ever held an extent, 256 KiB of address space each).
 */
static struct segment **_Atomic xmap[XMAP_L1_SIZE];
static pthread_mutex_t xmap_lock = PTHREAD_MUTEX_INITIALIZER;

static inline size_t div_up(size_t a, size_t b)
{
	return (a + b - 1) / b;
}

size_t moirai__as_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)SIZE_MAX)
		return SIZE_MAX;
	return (size_t)rl.rlim_cur;
}

/* Address space the process maps now (VmSize), 0 when unknown. */
static size_t vm_size(void)
{
	char buf[128] = "";
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	/* First field: total program size in pages. */
	return (size_t)strtoull(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

size_t moirai__window_slice(int nodes, size_t granule)
{
	size_t per = (size_t)moirai_option_get(MOIRAI_OPT_ARENA_RESERVE);
	size_t limit = moirai__as_limit();

	if (limit != SIZE_MAX) {
		size_t used = vm_size();
		size_t budget = limit > used ? limit - used : 0;
		size_t share = budget / (moirai__option_is_set(MOIRAI_OPT_ARENA_RESERVE)
						 ? WINDOW_SHARE_EXPLIC
						 : WINDOW_SHARE);

		if (per > share / (size_t)nodes)
			per = share / (size_t)nodes;
	}
	/* A huge explicit value must not wrap nodes x slice (and the map). */
	if (per > ((size_t)1 << VA_BITS) / (size_t)nodes)
		per = ((size_t)1 << VA_BITS) / (size_t)nodes;
	return per / granule * granule;
}

size_t moirai__extent_growth(size_t reserved, size_t n, size_t granule_segs)
{
	size_t limit = moirai__as_limit();
	size_t segs = (reserved >> SEG_SHIFT) / 2;

	if (segs < EXTENT_MIN_SEGS)
		segs = EXTENT_MIN_SEGS;
	if (limit != SIZE_MAX) {
		size_t cap = (limit / LIMITED_GROWTH_DIV) >> SEG_SHIFT;

		if (cap > EXTENT_MAX_LIMITED)
			cap = EXTENT_MAX_LIMITED;
		if (segs > cap)
			segs = cap ? cap : 1;
	}
	segs = div_up(segs, granule_segs) * granule_segs;
	return segs > n ? segs : n;
}

char *moirai__as_reserve(size_t len)
{
	const int prot = PROT_NONE, flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	char *p, *base;

	if (len == 0 || len > ((size_t)1 << VA_BITS))
		return NULL;
	/* Recent kernels align large anonymous mappings already: try as is. */
	p = mmap(NULL, len, prot, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (((uintptr_t)p & (SEG_SIZE - 1)) == 0)
		return p;
	munmap(p, len);
	p = mmap(NULL, len + SEG_SIZE, prot, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Give the slack back: under RLIMIT_AS it is someone's thread stack. */
	base = (char *)moirai__align_up((uintptr_t)p, SEG_SIZE);
	munmap(p, (size_t)(base - p));
	munmap(base + len, SEG_SIZE - (size_t)(base - p));
	return base;
}

void *moirai__meta_alloc(size_t len)
{
	void *p = mmap(NULL, moirai__align_up(len, (size_t)4096), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void moirai__meta_free(void *p, size_t len)
{
	if (p)
		munmap(p, moirai__align_up(len, (size_t)4096));
}

struct extent *moirai__extent_new(char *base, size_t nsegs, size_t granule_segs,
				  enum extent_kind kind)
{
	size_t words = div_up(nsegs, 64);
	size_t ngran = div_up(nsegs, granule_segs);
	size_t gwords = div_up(ngran, 64);
	/* One allocation: the struct, then its bitmaps and modes. */
	size_t len = sizeof(struct extent) + (2 * words + gwords) * sizeof(uint64_t) + ngran;
	struct extent *e = moirai__meta_alloc(len);

	if (!e)
		return NULL;
	e->meta_len = len;
	moirai__list_init(&e->link);
	e->base = base;
	e->nsegs = nsegs;
	e->granule_segs = granule_segs;
	e->kind = (uint8_t)kind;
	e->used = (uint64_t *)(void *)(e + 1);
	e->dirty = e->used + words;
	e->setup = e->dirty + words;
	e->seg_mode = (uint8_t *)(e->setup + gwords);
	return e;
}

/* L2 tables for [p, p + len); 0 or -ENOMEM. */
static int xmap_cover(const char *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p, hi = (uintptr_t)p + len - 1;
	int rc = 0;

	if (hi >> VA_BITS)
		return -ENOMEM;
	pthread_mutex_lock(&xmap_lock);
	for (uintptr_t i = lo >> XMAP_L2_SHIFT; i <= hi >> XMAP_L2_SHIFT; i++) {
		void *t;

		if (atomic_load_explicit(&xmap[i], memory_order_relaxed))
			continue;
		t = mmap(NULL, XMAP_L2_SIZE * sizeof(struct segment *), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (t == MAP_FAILED) {
			rc = -ENOMEM;
			break;
		}
		/* Release pairs with the acquire in moirai__seg_of_extent(). */
		atomic_store_explicit(&xmap[i], (struct segment **)t, memory_order_release);
	}
	pthread_mutex_unlock(&xmap_lock);
	return rc;
}

int moirai__extent_map(size_t nsegs, size_t granule_segs, struct extent **out)
{
	size_t len = nsegs << SEG_SHIFT;
	char *base = moirai__as_reserve(len);
	struct extent *e;

	if (!base)
		return -ENOMEM;
	e = moirai__extent_new(base, nsegs, granule_segs, EXT_MAPPED);
	if (!e)
		goto err_unmap;
	if (xmap_cover(base, len))
		goto err_free;
	*out = e;
	return 0;

err_free:
	moirai__meta_free(e, e->meta_len);
err_unmap:
	munmap(base, len);
	return -ENOMEM;
}

void moirai__extent_unmap(struct extent *e)
{
	/* Its map entries are all NULL already: every segment was freed. */
	munmap(e->base, e->nsegs << SEG_SHIFT);
	moirai__meta_free(e, e->meta_len);
}

/*
 * The window's free segments (bit set = carved).  Under a limit every node
 * carves from it on demand, so a program that lives on one node can use
 * all of it; without one, start carves each node's fixed slice and this is
 * not touched again.
 */
static pthread_mutex_t window_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *window_used;
static size_t window_segs;
static _Atomic size_t window_free; /* segments, read by the stats */

int moirai__window_init(size_t nsegs)
{
	/* Again after a failed start: forget the earlier window. */
	moirai__meta_free(window_used, div_up(window_segs, 64) * sizeof(uint64_t));
	window_used = NULL;
	window_segs = 0;
	atomic_store_explicit(&window_free, 0, memory_order_relaxed);
	if (!nsegs)
		return 0;
	window_used = moirai__meta_alloc(div_up(nsegs, 64) * sizeof(uint64_t));
	if (!window_used)
		return -ENOMEM;
	window_segs = nsegs;
	atomic_store_explicit(&window_free, nsegs, memory_order_relaxed);
	return 0;
}

static inline bool wbit(size_t i)
{
	return (window_used[i / 64] >> (i % 64)) & 1;
}

static inline void wbit_put(size_t i, bool v)
{
	if (v)
		window_used[i / 64] |= 1ULL << (i % 64);
	else
		window_used[i / 64] &= ~(1ULL << (i % 64));
}

char *moirai__window_carve(size_t n)
{
	size_t run = 0, i;
	char *p = NULL;

	pthread_mutex_lock(&window_lock);
	if (n > atomic_load_explicit(&window_free, memory_order_relaxed))
		goto out;
	for (i = 0; i < window_segs; i++) {
		if (run == 0 && (i % 64) == 0 && window_used[i / 64] == ~0ULL) {
			i += 63;
			continue;
		}
		run = wbit(i) ? 0 : run + 1;
		if (run == n)
			break;
	}
	if (run < n)
		goto out;
	for (size_t k = i + 1 - n; k <= i; k++)
		wbit_put(k, true);
	atomic_fetch_sub_explicit(&window_free, n, memory_order_relaxed);
	p = moirai__alloc_base + ((i + 1 - n) << SEG_SHIFT);
out:
	pthread_mutex_unlock(&window_lock);
	return p;
}

void moirai__window_return(char *p, size_t n)
{
	size_t first = (size_t)(p - moirai__alloc_base) >> SEG_SHIFT;

	/*
	 * Back to PROT_NONE: drops the pages and the node binding, so the
	 * next node to carve the range binds it anew.  Address space stays
	 * reserved (the window is never unmapped).
	 */
	(void)mmap(p, n << SEG_SHIFT, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	pthread_mutex_lock(&window_lock);
	for (size_t k = first; k < first + n; k++)
		wbit_put(k, false);
	atomic_fetch_add_explicit(&window_free, n, memory_order_relaxed);
	pthread_mutex_unlock(&window_lock);
}

size_t moirai__window_free_bytes(void)
{
	return atomic_load_explicit(&window_free, memory_order_relaxed) << SEG_SHIFT;
}

struct segment *moirai__seg_of_extent(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	struct segment **l2;

	if (a >> VA_BITS)
		return NULL;
	/* Acquire pairs with the release in xmap_cover(). */
	l2 = atomic_load_explicit(&xmap[a >> XMAP_L2_SHIFT], memory_order_acquire);
	return l2 ? l2[(a >> SEG_SHIFT) & (XMAP_L2_SIZE - 1)] : NULL;
}

void moirai__segmap_set(char *p, size_t n, struct segment *seg)
{
	for (size_t i = 0; i < n; i++, p += SEG_SIZE) {
		uintptr_t off = (uintptr_t)p - (uintptr_t)moirai__alloc_base;

		if (off < moirai__alloc_size) {
			moirai__alloc_segmap[off >> SEG_SHIFT] = seg;
		} else {
			/* The extent's tables exist since moirai__extent_map(). */
			struct segment **l2 = atomic_load_explicit(
				&xmap[(uintptr_t)p >> XMAP_L2_SHIFT], memory_order_relaxed);

			l2[((uintptr_t)p >> SEG_SHIFT) & (XMAP_L2_SIZE - 1)] = seg;
		}
	}
}
