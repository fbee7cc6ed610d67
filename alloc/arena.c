/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Node arenas: one per NUMA node, each owning a list of extents (a fixed
 * slice of the window, or parts of the window it carved, then extents of
 * its own; extent.c decides their sizes and maps them), and the
 * segment-level bookkeeping inside them: which 2 MiB segments are in use,
 * which hold committed pages, and which commit granules
 * (MOIRAI_ARENA_CHUNK) are mapped read-write and bound to the node.  A
 * request for segments takes the first fit in the extents in order, and
 * only when none has room adds an extent: from the window while it has a
 * free run, else a mapping of its own.  An extent that is not a fixed
 * slice goes back (to the window, or unmapped) with its last segment.
 *
 * Commit order matters for placement: a granule is made accessible, bound
 * with mbind (moirai_numa_bind_fresh: no MPOL_MF_MOVE, the mapping is new,
 * and the move flag would cost every commit a drain of every CPU's page
 * lists, milliseconds on a busy box) and only then touched, so the pages
 * land on the node whatever the process memory policy is.  Hugetlb
 * granules are populated with MADV_POPULATE_WRITE right away, so an empty
 * pool or a hugetlb cgroup limit shows up here as an error and never as a
 * SIGBUS on first touch.  Free segments past MOIRAI_DECOMMIT_THRESHOLD are
 * given back with MADV_DONTNEED (the binding stays on the mapping).
 *
 * The arena also keeps the list of every heap of its node and the heaps of
 * dead threads waiting to be adopted.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault.h"
#include "alloc_int.h"
#include "moirai/numa.h"

char *moirai__alloc_base;
size_t moirai__alloc_size;
struct segment **moirai__alloc_segmap;
struct arena *moirai__arenas[MAX_NODES_TLS];
int moirai__alloc_nodes;
size_t moirai__alloc_max_size;
bool moirai__alloc_debug;
uint32_t moirai__alloc_tcache_max;
uint32_t moirai__alloc_gen;

size_t moirai__alloc_decommit_threshold;

/* sysfs is read only in numa/: THP mode and free hugepages come from it. */
static bool thp_enabled(void)
{
	int m = moirai_numa_thp_mode();

	return m == MOIRAI_NUMA_THP_ALWAYS || m == MOIRAI_NUMA_THP_MADVISE;
}

static long node_free_hugepages(int node)
{
	return moirai_numa_hugepages_free(2u << 20, node);
}

static void arena_destroy(struct arena *a)
{
	struct moirai__list *it, *tmp;

	moirai__list_foreach_safe(it, tmp, &a->extents) {
		struct extent *e = moirai__list_entry(it, struct extent, link);

		moirai__meta_free(e, e->meta_len);
	}
	pthread_mutex_destroy(&a->lock);
	moirai__meta_free(a, sizeof(*a));
}

/*
 * A node arena; with @slice_segs, a fixed slice of the window of that many
 * segments becomes its first extent (no address-space limit), otherwise it
 * carves its extents when it needs them.
 */
static int arena_create(int node, size_t slice_segs, size_t granule_segs, struct arena **out)
{
	const char *opt = moirai_option_get_str(MOIRAI_OPT_HUGEPAGES);
	struct arena *a = moirai__meta_alloc(sizeof(*a));

	/* The drop-in: 4 KiB pages unless asked (alloc_int.h). */
	if (&moirai__malloc_dropin != NULL && moirai__malloc_dropin &&
	    !moirai__option_is_set(MOIRAI_OPT_HUGEPAGES))
		opt = "none";

	if (!a)
		return -ENOMEM;
	moirai__list_init(&a->extents);
	pthread_mutex_init(&a->lock, NULL);
	if (slice_segs) {
		char *base = moirai__window_carve(slice_segs);
		struct extent *e =
			base ? moirai__extent_new(base, slice_segs, granule_segs, EXT_SLICE) : NULL;

		if (!e) {
			arena_destroy(a);
			return -ENOMEM;
		}
		moirai__list_add_tail(&a->extents, &e->link);
		atomic_init(&a->reserved, (uint64_t)slice_segs << SEG_SHIFT);
	}
	a->node = node;
	a->granule_segs = granule_segs;
	atomic_init(&a->available, moirai_numa_node_is_allowed(node));
	a->forced = true;
	if (!strcmp(opt, "hugetlb")) {
		a->mode = MODE_HUGETLB;
	} else if (!strcmp(opt, "thp")) {
		a->mode = MODE_THP;
	} else if (!strcmp(opt, "none")) {
		a->mode = MODE_SMALL;
	} else {
		if (strcmp(opt, "auto"))
			moirai__log(MOIRAI_LOG_WARN,
				    "alloc: unknown hugepages mode '%s', using auto", opt);
		a->forced = false;
		if (node_free_hugepages(node) > 0)
			a->mode = MODE_HUGETLB;
		else
			a->mode = thp_enabled() ? MODE_THP : MODE_SMALL;
	}
	if (!atomic_load_explicit(&a->available, memory_order_relaxed))
		moirai__log(MOIRAI_LOG_INFO,
			    "alloc: node %d is not usable (absent, no memory, or "
			    "outside the cgroup's MemsAllowed)",
			    node);
	*out = a;
	return 0;
}

static inline bool bit_get(const uint64_t *m, size_t i)
{
	return (m[i / 64] >> (i % 64)) & 1;
}

static inline void bit_put(uint64_t *m, size_t i, bool v)
{
	if (v)
		m[i / 64] |= 1ULL << (i % 64);
	else
		m[i / 64] &= ~(1ULL << (i % 64));
}

static inline struct extent *extent_entry(struct moirai__list *it)
{
	return moirai__list_entry(it, struct extent, link);
}

/* Segments of granule @g of @e: granule_segs, or fewer for the last one. */
static inline size_t granule_segs_of(const struct extent *e, size_t g)
{
	size_t first = g * e->granule_segs;

	return e->nsegs - first < e->granule_segs ? e->nsegs - first : e->granule_segs;
}

static inline enum page_mode seg_mode_of(const struct extent *e, size_t i)
{
	return (enum page_mode)e->seg_mode[i / e->granule_segs];
}

/* fork() while another thread holds an arena lock must not deadlock. */
static void fork_prepare(void)
{
	for (int n = 0; n < moirai__alloc_nodes; n++)
		pthread_mutex_lock(&moirai__arenas[n]->lock);
}

static void fork_release(void)
{
	for (int n = moirai__alloc_nodes; n-- > 0;)
		pthread_mutex_unlock(&moirai__arenas[n]->lock);
}

/*
 * In a fork child, hugetlb pages inherited from the parent are shared
 * copy-on-write, and a write to one needs a free hugepage or the kernel
 * sends SIGBUS.  The child therefore never writes to them: its segments
 * are never handed out again (marked used, so their extent stays mapped
 * too), the heaps of the parent (this thread's and the abandoned ones,
 * whose caches sit on such pages) are dropped, and a free of a pre-fork
 * block on a hugetlb page leaves it alone (gen).
 */
static void fork_child(void)
{
	for (int n = 0; n < moirai__alloc_nodes; n++) {
		struct arena *a = moirai__arenas[n];
		struct moirai__list *it;

		moirai__list_foreach(it, &a->extents) {
			struct extent *e = extent_entry(it);
			size_t ngran = (e->nsegs + e->granule_segs - 1) / e->granule_segs;

			for (size_t g = 0; g < ngran && g * e->granule_segs < e->hwm; g++) {
				size_t first = g * e->granule_segs;

				if (!bit_get(e->setup, g) || e->seg_mode[g] != MODE_HUGETLB)
					continue;
				for (size_t i = first; i < first + granule_segs_of(e, g); i++) {
					if (bit_get(e->used, i))
						continue;
					if (bit_get(e->dirty, i))
						atomic_fetch_sub_explicit(&a->free_committed,
									  SEG_SIZE,
									  memory_order_relaxed);
					bit_put(e->used, i, true);
					e->nused++;
				}
			}
		}
		a->abandoned = NULL;
		atomic_store_explicit(&a->nabandoned, 0, memory_order_relaxed);
	}
	moirai__alloc_gen++;
	moirai__heap_forget_thread();
	fork_release();
}

/* The first successful start publishes everything with this release store. */
static _Atomic bool started;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

static int alloc_start(void)
{
	static bool atfork_armed;
	int nodes = moirai_numa_node_count();
	size_t chunk = (size_t)moirai_option_get(MOIRAI_OPT_ARENA_CHUNK);
	size_t granule = moirai__align_up(chunk, SEG_SIZE);
	long tc = moirai_option_get(MOIRAI_OPT_TCACHE_MAX);
	struct segment **map = NULL;
	char *base = NULL;
	size_t slice, total = 0, fixed_segs;
	int n, rc = 0;

	if (nodes > MAX_NODES_TLS) {
		moirai__log(MOIRAI_LOG_WARN, "alloc: %d nodes, only the first %d are used", nodes,
			    MAX_NODES_TLS);
		nodes = MAX_NODES_TLS;
	}
	moirai__alloc_debug = moirai_option_get(MOIRAI_OPT_DEBUG) != 0;
	/* Debug checks and ASan poisoning live on the slow path: no caches. */
	moirai__alloc_tcache_max = (moirai__alloc_debug || MOIRAI__SAN_ASAN) ? 0 : (uint32_t)tc;
	moirai__alloc_decommit_threshold = (size_t)moirai_option_get(MOIRAI_OPT_DECOMMIT_THRESHOLD);
	/* The largest single request: half the per-node reservation asked for. */
	moirai__alloc_max_size = (size_t)moirai_option_get(MOIRAI_OPT_ARENA_RESERVE) / 2;

	/*
	 * Shrink the window until the kernel accepts it; without one at all,
	 * every segment comes from extra extents (slower frees, never a
	 * failure for good).
	 */
	for (slice = moirai__window_slice(nodes, granule); slice;
	     slice = slice / 2 / granule * granule) {
		base = moirai__as_reserve(slice * (size_t)nodes);
		if (base)
			break;
	}
	if (base) {
		total = slice * (size_t)nodes;
		map = mmap(NULL, (total >> SEG_SHIFT) * sizeof(*map), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (map == MAP_FAILED) {
			munmap(base, total);
			base = NULL;
			map = NULL;
			slice = total = 0;
		}
	}
	moirai__alloc_base = base;
	moirai__alloc_segmap = map;
	n = 0;
	if (moirai__window_init(total >> SEG_SHIFT))
		goto err_arenas;
	/*
	 * No limit: fixed slices, as large as configured.  Under RLIMIT_AS the
	 * nodes carve the window as they need it, so that one busy node can use
	 * all of it.
	 */
	fixed_segs = moirai__as_limit() == SIZE_MAX ? slice >> SEG_SHIFT : 0;
	for (n = 0; n < nodes; n++) {
		rc = arena_create(n, fixed_segs, granule >> SEG_SHIFT, &moirai__arenas[n]);
		if (rc)
			goto err_arenas;
	}
	moirai__alloc_nodes = nodes;
	if (!atfork_armed)
		atfork_armed = pthread_atfork(fork_prepare, fork_release, fork_child) == 0;
	/* Published last: a nonzero size makes moirai__seg_of() look. */
	moirai__alloc_size = total;
	/* Release pairs with the acquire in moirai__alloc_init(). */
	atomic_store_explicit(&started, true, memory_order_release);
	moirai__log(MOIRAI_LOG_DEBUG,
		    "alloc: %d node arenas, window %zu MiB (%s), granule %zu MiB, tcache %u%s",
		    nodes, total >> 20, fixed_segs ? "fixed slices" : "carved on demand",
		    granule >> 20, moirai__alloc_tcache_max, moirai__alloc_debug ? ", debug" : "");
	return 0;

err_arenas:
	while (n-- > 0) {
		arena_destroy(moirai__arenas[n]);
		moirai__arenas[n] = NULL;
	}
	(void)moirai__window_init(0);
	moirai__alloc_base = NULL;
	moirai__alloc_segmap = NULL;
	if (map)
		munmap(map, (total >> SEG_SHIFT) * sizeof(*map));
	if (base)
		munmap(base, total);
	return moirai__err(-ENOMEM, "alloc: cannot start: no memory for the node arenas");
}

int moirai__alloc_init(void)
{
	int rc = 0;

	/* Acquire pairs with the release at the end of alloc_start(). */
	if (moirai_likely(atomic_load_explicit(&started, memory_order_acquire)))
		return 0;
	pthread_mutex_lock(&start_lock);
	if (!atomic_load_explicit(&started, memory_order_relaxed))
		rc = alloc_start();
	pthread_mutex_unlock(&start_lock);
	return rc;
}

bool moirai__alloc_started(void)
{
	return atomic_load_explicit(&started, memory_order_acquire);
}

static const char *const mode_names[3] = { "hugetlb", "thp", "none" };

const char *moirai__mode_name(int mode)
{
	return mode >= 0 && mode < 3 ? mode_names[mode] : "?";
}

/* Map granule @g read-write as regular pages, bound, with THP advice. */
static int setup_regular(struct arena *a, char *p, size_t len, enum page_mode m)
{
	int rc;

	if (mmap(p, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
		return moirai__err(-ENOMEM, "alloc: cannot commit %zu bytes on node %d", len,
				   a->node);
	rc = moirai_numa_bind_fresh(p, len, a->node);
	if (rc)
		return rc;
	/* Advice only: a kernel without THP keeps 4 KiB pages. */
	(void)madvise(p, len, m == MODE_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return 0;
}

static void unsetup(char *p, size_t len)
{
	(void)mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
		   0);
}

/*
 * Hugetlb granule: map without MAP_NORESERVE so the pool reserves the
 * pages now, bind, then populate so that a node-local shortage or a
 * hugetlb cgroup limit fails here (ENOMEM/EFAULT) instead of SIGBUS later.
 */
static int setup_hugetlb(struct arena *a, char *p, size_t len)
{
	int rc;

	if (mmap(p, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB, -1, 0) == MAP_FAILED) {
		unsetup(p, len);
		return moirai__err(-ENOMEM,
				   "alloc: no free 2 MiB hugetlb pages for %zu bytes on node %d",
				   len, a->node);
	}
	rc = moirai_numa_bind_fresh(p, len, a->node);
	if (rc) {
		unsetup(p, len);
		return rc;
	}
	if (madvise(p, len, MADV_POPULATE_WRITE) != 0) {
		int e = errno;

		unsetup(p, len);
		return moirai__err(-ENOMEM, "alloc: cannot populate hugetlb pages on node %d: %s",
				   a->node, moirai_strerror(e));
	}
	return 0;
}

static int setup_granule(struct arena *a, struct extent *e, size_t g)
{
	size_t first = g * e->granule_segs, nsegs = granule_segs_of(e, g);
	size_t len = nsegs * SEG_SIZE;
	char *p = e->base + (first << SEG_SHIFT);
	int rc;

	if (a->mode == MODE_HUGETLB) {
		rc = setup_hugetlb(a, p, len);
		if (rc == 0) {
			e->seg_mode[g] = MODE_HUGETLB;
			bit_put(e->setup, g, true);
			/* Populated whole: every segment holds committed pages. */
			for (size_t s = first; s < first + nsegs; s++)
				bit_put(e->dirty, s, true);
			atomic_fetch_add_explicit(&a->committed, len, memory_order_relaxed);
			atomic_fetch_add_explicit(&a->committed_mode[MODE_HUGETLB], len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&a->free_committed, len, memory_order_relaxed);
			return 0;
		}
		if (a->forced || rc == -EPERM || rc == -ENODEV)
			goto err_unavailable;
		/* auto: fall back to THP (or small pages) from now on. */
		atomic_fetch_add_explicit(&a->hugetlb_fallbacks, 1, memory_order_relaxed);
		a->mode = thp_enabled() ? MODE_THP : MODE_SMALL;
		moirai__log(MOIRAI_LOG_INFO, "alloc: node %d falls back to %s pages", a->node,
			    mode_names[a->mode]);
	}
	rc = setup_regular(a, p, len, a->mode);
	if (rc) {
		unsetup(p, len);
		goto err_unavailable;
	}
	e->seg_mode[g] = (uint8_t)a->mode;
	bit_put(e->setup, g, true);
	return 0;

err_unavailable:
	/* mbind refused the node (cgroup MemsAllowed): never try again. */
	if (rc == -EPERM || rc == -ENODEV) {
		atomic_store_explicit(&a->available, false, memory_order_relaxed);
		rc = moirai__err(-ENODEV, "alloc: node %d cannot be bound (not in MemsAllowed?)",
				 a->node);
	}
	return rc;
}

/* Make segments [s, s+n) of @e committed; called with the lock held. */
static int commit_segs(struct arena *a, struct extent *e, size_t s, size_t n)
{
	/* Injected (MOIRAI_FAULT arena_commit): fails before touching state,
	 * as a refused mmap or populate would. */
	if (moirai__fault_hit(MOIRAI_FAULT_ARENA_COMMIT))
		return moirai__err(-ENOMEM, "alloc: cannot commit %zu bytes on node %d (injected)",
				   n * SEG_SIZE, a->node);
	for (size_t g = s / e->granule_segs; g <= (s + n - 1) / e->granule_segs; g++) {
		if (bit_get(e->setup, g))
			continue;
		int rc = setup_granule(a, e, g);

		if (rc)
			return rc;
	}
	/*
	 * A segment committed here is free until the whole span is taken, so
	 * it joins free_committed; the span leaves it in one step at the end.
	 * A populate failure half way thus leaves the counter exact.
	 */
	for (size_t i = s; i < s + n; i++) {
		char *p = e->base + (i << SEG_SHIFT);

		if (bit_get(e->dirty, i))
			continue;
		/* Re-commit after a decommit: hugetlb pages are reserved again. */
		if (seg_mode_of(e, i) == MODE_HUGETLB &&
		    madvise(p, SEG_SIZE, MADV_POPULATE_WRITE) != 0)
			return moirai__err(-ENOMEM,
					   "alloc: cannot populate hugetlb pages on node %d",
					   a->node);
		bit_put(e->dirty, i, true);
		atomic_fetch_add_explicit(&a->committed, SEG_SIZE, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->committed_mode[seg_mode_of(e, i)], SEG_SIZE,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&a->free_committed, SEG_SIZE, memory_order_relaxed);
	}
	atomic_fetch_sub_explicit(&a->free_committed, n * SEG_SIZE, memory_order_relaxed);
	return 0;
}

/* First fit of @n free segments in @e; returns the index or e->nsegs. */
static size_t find_run(const struct extent *e, size_t n)
{
	size_t run = 0;
	size_t limit = e->hwm + n;

	if (limit > e->nsegs)
		limit = e->nsegs;
	for (size_t i = 0; i < limit; i++) {
		if (run == 0 && (i % 64) == 0 && e->used[i / 64] == ~0ULL) {
			i += 63;
			continue;
		}
		if (bit_get(e->used, i)) {
			run = 0;
			continue;
		}
		if (++run == n)
			return i + 1 - n;
	}
	return e->nsegs;
}

/*
 * An extent that is not a fixed slice goes back with its last segment (to
 * the window, or unmapped): under RLIMIT_AS the address space is what
 * another node or another mapping needs.  Committed pages of its free
 * segments leave the counters as decommitted.
 */
static void extent_release(struct arena *a, struct extent *e)
{
	for (size_t i = 0; i < e->hwm; i++) {
		enum page_mode m = seg_mode_of(e, i);

		if (!bit_get(e->dirty, i))
			continue;
		atomic_fetch_sub_explicit(&a->free_committed, SEG_SIZE, memory_order_relaxed);
		atomic_fetch_sub_explicit(&a->committed, SEG_SIZE, memory_order_relaxed);
		atomic_fetch_sub_explicit(&a->committed_mode[m], SEG_SIZE, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->decommitted, SEG_SIZE, memory_order_relaxed);
	}
	atomic_fetch_sub_explicit(&a->reserved, (uint64_t)e->nsegs << SEG_SHIFT,
				  memory_order_relaxed);
	moirai__list_del(&e->link);
	if (e->kind == EXT_WINDOW) {
		moirai__window_return(e->base, e->nsegs);
		moirai__meta_free(e, e->meta_len);
	} else {
		moirai__extent_unmap(e);
	}
}

/* Part of the window as a new extent, or NULL when the window has no run. */
static struct extent *window_extent(struct arena *a, size_t *want, size_t n)
{
	char *p = moirai__window_carve(*want);
	struct extent *e;

	if (!p && *want > n && (p = moirai__window_carve(n)))
		*want = n;
	if (!p)
		return NULL;
	e = moirai__extent_new(p, *want, a->granule_segs, EXT_WINDOW);
	if (!e)
		moirai__window_return(p, *want);
	return e;
}

/* A new extent with room for @n segments; NULL + message. */
static struct extent *extent_add(struct arena *a, size_t n)
{
	size_t reserved = atomic_load_explicit(&a->reserved, memory_order_relaxed);
	size_t want = moirai__extent_growth(reserved, n, a->granule_segs);
	struct extent *e;
	size_t limit;

	/* The window first: its blocks stay on the free fast path. */
	e = window_extent(a, &want, n);
	if (e)
		goto added;
	want = moirai__extent_growth(reserved, n, a->granule_segs);
	/* Geometric growth first; exactly what the request needs as a last try. */
	if (moirai__extent_map(want, a->granule_segs, &e) != 0 && want > n) {
		want = n;
		(void)moirai__extent_map(want, a->granule_segs, &e);
	}
	if (!e) {
		limit = moirai__as_limit();
		if (limit != SIZE_MAX)
			moirai__err(-ENOMEM,
				    "alloc: node %d: no address space for %zu MiB more "
				    "(RLIMIT_AS %zu MiB, the arena holds %zu MiB)",
				    a->node, (n << SEG_SHIFT) >> 20, limit >> 20, reserved >> 20);
		else
			moirai__err(-ENOMEM, "alloc: node %d: cannot reserve %zu MiB more", a->node,
				    (n << SEG_SHIFT) >> 20);
		return NULL;
	}
	atomic_fetch_add_explicit(&a->extents_made, 1, memory_order_relaxed);
	moirai__log(MOIRAI_LOG_INFO, "alloc: node %d arena grows past the window by %zu MiB",
		    a->node, (want << SEG_SHIFT) >> 20);
added:
	moirai__list_add_tail(&a->extents, &e->link);
	atomic_fetch_add_explicit(&a->reserved, (uint64_t)want << SEG_SHIFT, memory_order_relaxed);
	return e;
}

char *moirai__arena_alloc_segs(struct arena *a, size_t n, enum page_mode *mode)
{
	struct moirai__list *it;
	struct extent *e = NULL;
	size_t s = 0;
	int rc;

	pthread_mutex_lock(&a->lock);
	if (!atomic_load_explicit(&a->available, memory_order_relaxed)) {
		pthread_mutex_unlock(&a->lock);
		moirai__err(-ENODEV, "alloc: node %d is not available", a->node);
		errno = ENODEV;
		return NULL;
	}
	moirai__list_foreach(it, &a->extents) {
		struct extent *x = extent_entry(it);

		if (x->nsegs - x->nused >= n && (s = find_run(x, n)) < x->nsegs) {
			e = x;
			break;
		}
	}
	if (!e) {
		e = extent_add(a, n);
		if (!e) {
			pthread_mutex_unlock(&a->lock);
			errno = ENOMEM;
			return NULL;
		}
		s = 0;
	}
	rc = commit_segs(a, e, s, n);
	if (rc) {
		if (e->nused == 0 && e->kind != EXT_SLICE)
			extent_release(a, e);
		pthread_mutex_unlock(&a->lock);
		errno = rc == -ENODEV ? ENODEV : ENOMEM;
		return NULL;
	}
	for (size_t i = s; i < s + n; i++)
		bit_put(e->used, i, true);
	e->nused += n;
	if (s + n > e->hwm)
		e->hwm = s + n;
	*mode = seg_mode_of(e, s);
	pthread_mutex_unlock(&a->lock);
	return e->base + (s << SEG_SHIFT);
}

/* Give back free committed segments, newest extent and highest first. */
static void decommit_excess(struct arena *a)
{
	for (struct moirai__list *it = a->extents.prev; it != &a->extents; it = it->prev) {
		struct extent *e = extent_entry(it);

		for (size_t i = e->hwm; i-- > 0;) {
			if (atomic_load_explicit(&a->free_committed, memory_order_relaxed) <=
			    moirai__alloc_decommit_threshold)
				return;
			if (bit_get(e->used, i) || !bit_get(e->dirty, i))
				continue;
			if (madvise(e->base + (i << SEG_SHIFT), SEG_SIZE, MADV_DONTNEED) != 0)
				continue;
			enum page_mode m = seg_mode_of(e, i);

			bit_put(e->dirty, i, false);
			atomic_fetch_sub_explicit(&a->free_committed, SEG_SIZE,
						  memory_order_relaxed);
			atomic_fetch_sub_explicit(&a->committed, SEG_SIZE, memory_order_relaxed);
			atomic_fetch_sub_explicit(&a->committed_mode[m], SEG_SIZE,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&a->decommitted, SEG_SIZE, memory_order_relaxed);
		}
	}
}

static struct extent *extent_of(struct arena *a, const char *p)
{
	struct moirai__list *it;

	moirai__list_foreach(it, &a->extents) {
		struct extent *e = extent_entry(it);

		if (p >= e->base && (size_t)(p - e->base) < (e->nsegs << SEG_SHIFT))
			return e;
	}
	return NULL;
}

void moirai__arena_free_segs(struct arena *a, char *p, size_t n)
{
	struct extent *e;
	size_t s;

	pthread_mutex_lock(&a->lock);
	e = extent_of(a, p);
	moirai_assert_internal(e != NULL);
	if (!e) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	s = (size_t)(p - e->base) >> SEG_SHIFT;
	for (size_t i = s; i < s + n; i++) {
		moirai_assert_internal(bit_get(e->used, i));
		bit_put(e->used, i, false);
		if (bit_get(e->dirty, i))
			atomic_fetch_add_explicit(&a->free_committed, SEG_SIZE,
						  memory_order_relaxed);
	}
	e->nused -= n;
	while (e->hwm > 0 && !bit_get(e->used, e->hwm - 1) && !bit_get(e->dirty, e->hwm - 1))
		e->hwm--;
	if (e->nused == 0 && e->kind != EXT_SLICE)
		extent_release(a, e);
	else if (atomic_load_explicit(&a->free_committed, memory_order_relaxed) >
		 moirai__alloc_decommit_threshold)
		decommit_excess(a);
	pthread_mutex_unlock(&a->lock);
}

void moirai__arena_account(struct arena *a, enum page_mode m, long bytes)
{
	if (bytes < 0) {
		uint64_t b = (uint64_t)-bytes;

		atomic_fetch_sub_explicit(&a->committed, b, memory_order_relaxed);
		atomic_fetch_sub_explicit(&a->committed_mode[m], b, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->decommitted, b, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&a->committed, (uint64_t)bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->committed_mode[m], (uint64_t)bytes,
					  memory_order_relaxed);
	}
}

void moirai__arena_register_heap(struct arena *a, struct heap *h)
{
	pthread_mutex_lock(&a->lock);
	h->next_all = a->heaps;
	a->heaps = h;
	atomic_fetch_add_explicit(&a->nheaps, 1, memory_order_relaxed);
	pthread_mutex_unlock(&a->lock);
}

/* The mutex orders the dead owner's last writes before the adopter's. */
struct heap *moirai__arena_adopt(struct arena *a)
{
	struct heap *h;

	pthread_mutex_lock(&a->lock);
	h = a->abandoned;
	if (h) {
		a->abandoned = h->next_abandoned;
		h->next_abandoned = NULL;
		h->abandoned = false;
		atomic_fetch_sub_explicit(&a->nabandoned, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&a->lock);
	return h;
}

void moirai__arena_abandon(struct arena *a, struct heap *h)
{
	pthread_mutex_lock(&a->lock);
	h->abandoned = true;
	h->next_abandoned = a->abandoned;
	a->abandoned = h;
	atomic_fetch_add_explicit(&a->nabandoned, 1, memory_order_relaxed);
	pthread_mutex_unlock(&a->lock);
}

/* Every abandoned heap, unlinked, for the caller alone (sweep). */
struct heap *moirai__arena_take_abandoned(struct arena *a)
{
	struct heap *list;

	pthread_mutex_lock(&a->lock);
	list = a->abandoned;
	a->abandoned = NULL;
	atomic_store_explicit(&a->nabandoned, 0, memory_order_relaxed);
	pthread_mutex_unlock(&a->lock);
	return list;
}

/* Park the heaps of @list (linked by next_abandoned) again. */
void moirai__arena_return_abandoned(struct arena *a, struct heap *list)
{
	uint64_t n = 0;

	if (!list)
		return;
	pthread_mutex_lock(&a->lock);
	for (struct heap *h = list;; h = h->next_abandoned) {
		n++;
		if (!h->next_abandoned) {
			h->next_abandoned = a->abandoned;
			break;
		}
	}
	a->abandoned = list;
	atomic_fetch_add_explicit(&a->nabandoned, n, memory_order_relaxed);
	pthread_mutex_unlock(&a->lock);
}

int moirai__arena_nearest(int node)
{
	int best = -1, best_d = 1 << 30;

	for (int i = 0; i < moirai__alloc_nodes; i++) {
		/* Live distance by OS node (numa/, cached); none known: skip. */
		int d = moirai_numa_distance(node, i);

		if (i == node || d < 0 ||
		    !atomic_load_explicit(&moirai__arenas[i]->available, memory_order_relaxed))
			continue;
		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	return best;
}
