/*
 * Node arenas: the one address-space reservation of the allocator, cut in
 * one arena per NUMA node, and the segment-level bookkeeping inside each
 * arena: which 2 MiB segments are in use, which hold committed pages, and
 * which commit granules (MOIRAI_ARENA_CHUNK) are mapped read-write and
 * bound to the node.
 *
 * Commit order matters for placement: a granule is made accessible, bound
 * with mbind (moirai_numa_bind_range) and only then touched, so the pages
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

#include "alloc_int.h"
#include "moirai/numa.h"

char *moirai__alloc_base;
size_t moirai__alloc_size;
struct segment **moirai__alloc_segmap;
struct arena *moirai__arenas[MAX_NODES_TLS];
int moirai__alloc_nodes;
size_t moirai__alloc_reserve;
bool moirai__alloc_debug;
uint32_t moirai__alloc_tcache_max;
uint32_t moirai__alloc_gen;

size_t moirai__alloc_decommit_threshold;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static long read_long_file(const char *path)
{
	char buf[64] = "";
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		v = strtol(buf, NULL, 10);
	close(fd);
	return v;
}

static bool thp_enabled(void)
{
	char buf[128] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (read(fd, buf, sizeof(buf) - 1) <= 0)
		buf[0] = '\0';
	close(fd);
	return buf[0] && !strstr(buf, "[never]");
}

static long node_free_hugepages(int node)
{
	char path[128];

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages", node);
	return read_long_file(path);
}

static int arena_create(int node, char *base, size_t nsegs, size_t granule_segs, struct arena **out)
{
	const char *opt = moirai_option_get_str(MOIRAI_OPT_HUGEPAGES);
	size_t words = (nsegs + 63) / 64;
	size_t ngran = nsegs / granule_segs;
	struct arena *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->used = calloc(words, sizeof(uint64_t));
	a->dirty = calloc(words, sizeof(uint64_t));
	a->setup = calloc((ngran + 63) / 64, sizeof(uint64_t));
	a->seg_mode = calloc(ngran, 1);
	if (!a->used || !a->dirty || !a->setup || !a->seg_mode) {
		free(a->used);
		free(a->dirty);
		free(a->setup);
		free(a->seg_mode);
		free(a);
		return -ENOMEM;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->node = node;
	a->base = base;
	a->nsegs = nsegs;
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
 * are never handed out again, the heaps of the parent (this thread's and
 * the abandoned ones, whose caches sit on such pages) are dropped, and a
 * free of a pre-fork block on a hugetlb page leaves it alone (gen).
 */
static void fork_child(void)
{
	for (int n = 0; n < moirai__alloc_nodes; n++) {
		struct arena *a = moirai__arenas[n];
		size_t ngran = a->nsegs / a->granule_segs;

		for (size_t g = 0; g < ngran && g * a->granule_segs < a->hwm; g++) {
			if (!bit_get(a->setup, g) || a->seg_mode[g] != MODE_HUGETLB)
				continue;
			for (size_t i = g * a->granule_segs; i < (g + 1) * a->granule_segs; i++) {
				if (!bit_get(a->used, i) && bit_get(a->dirty, i))
					atomic_fetch_sub_explicit(&a->free_committed, SEG_SIZE,
								  memory_order_relaxed);
				bit_put(a->used, i, true);
			}
		}
		a->abandoned = NULL;
		atomic_store_explicit(&a->nabandoned, 0, memory_order_relaxed);
	}
	moirai__alloc_gen++;
	moirai__heap_forget_thread();
	fork_release();
}

static void alloc_init(void)
{
	int nodes = moirai_numa_node_count();
	size_t chunk = (size_t)moirai_option_get(MOIRAI_OPT_ARENA_CHUNK);
	size_t reserve = (size_t)moirai_option_get(MOIRAI_OPT_ARENA_RESERVE);
	size_t granule = (chunk + SEG_SIZE - 1) & ~(SEG_SIZE - 1);
	long tc = moirai_option_get(MOIRAI_OPT_TCACHE_MAX);
	char *raw = MAP_FAILED;
	size_t total = 0;

	if (nodes > MAX_NODES_TLS) {
		moirai__log(MOIRAI_LOG_WARN, "alloc: %d nodes, only the first %d are used", nodes,
			    MAX_NODES_TLS);
		nodes = MAX_NODES_TLS;
	}
	moirai__alloc_debug = moirai_option_get(MOIRAI_OPT_DEBUG) != 0;
	/* Debug checks and ASan poisoning live on the slow path: no caches. */
	moirai__alloc_tcache_max = (moirai__alloc_debug || MOIRAI__SAN_ASAN) ? 0 : (uint32_t)tc;
	moirai__alloc_decommit_threshold = (size_t)moirai_option_get(MOIRAI_OPT_DECOMMIT_THRESHOLD);

	/* Shrink the per-node reservation until the kernel accepts it. */
	for (;;) {
		reserve = reserve / granule * granule;
		if (reserve < granule)
			reserve = granule;
		/* A huge MOIRAI_ARENA_RESERVE must not wrap into a small map. */
		if (__builtin_mul_overflow(reserve, (size_t)nodes, &total) ||
		    total > SIZE_MAX - SEG_SIZE) {
			reserve /= 2;
			continue;
		}
		raw = mmap(NULL, total + SEG_SIZE, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (raw != MAP_FAILED || reserve <= granule || reserve <= (256u << 20))
			break;
		reserve /= 2;
	}
	if (raw == MAP_FAILED) {
		init_rc = -ENOMEM;
		return;
	}
	/* Align the arenas to segments so that masks and the map agree. */
	char *base = (char *)(((uintptr_t)raw + SEG_SIZE - 1) & ~(SEG_SIZE - 1));
	size_t nsegs_total = total >> SEG_SHIFT;
	struct segment **map = mmap(NULL, nsegs_total * sizeof(*map), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (map == MAP_FAILED) {
		munmap(raw, total + SEG_SIZE);
		init_rc = -ENOMEM;
		return;
	}
	for (int n = 0; n < nodes; n++) {
		int rc = arena_create(n, base + (size_t)n * reserve, reserve >> SEG_SHIFT,
				      granule >> SEG_SHIFT, &moirai__arenas[n]);
		if (rc) {
			init_rc = rc;
			return;
		}
	}
	moirai__alloc_segmap = map;
	moirai__alloc_reserve = reserve;
	moirai__alloc_nodes = nodes;
	moirai__alloc_base = base;
	(void)pthread_atfork(fork_prepare, fork_release, fork_child);
	/* Published last: a nonzero size makes moirai__seg_of() look. */
	moirai__alloc_size = total;
	moirai__log(MOIRAI_LOG_DEBUG,
		    "alloc: %d node arenas of %zu MiB, granule %zu MiB, tcache %u%s", nodes,
		    reserve >> 20, granule >> 20, moirai__alloc_tcache_max,
		    moirai__alloc_debug ? ", debug" : "");
}

int moirai__alloc_init(void)
{
	pthread_once(&init_once, alloc_init);
	if (init_rc)
		return moirai__err(init_rc, "alloc: cannot reserve the arenas");
	return 0;
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
	rc = moirai_numa_bind_range(p, len, a->node);
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
	rc = moirai_numa_bind_range(p, len, a->node);
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

static int setup_granule(struct arena *a, size_t g)
{
	size_t len = a->granule_segs * SEG_SIZE;
	char *p = a->base + g * len;
	int rc;

	if (a->mode == MODE_HUGETLB) {
		rc = setup_hugetlb(a, p, len);
		if (rc == 0) {
			a->seg_mode[g] = MODE_HUGETLB;
			bit_put(a->setup, g, true);
			/* Populated whole: every segment holds committed pages. */
			for (size_t s = g * a->granule_segs; s < (g + 1) * a->granule_segs; s++)
				bit_put(a->dirty, s, true);
			atomic_fetch_add_explicit(&a->committed, len, memory_order_relaxed);
			atomic_fetch_add_explicit(&a->committed_mode[MODE_HUGETLB], len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&a->free_committed, len, memory_order_relaxed);
			return 0;
		}
		if (a->forced || rc == -EINVAL || rc == -ENODEV)
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
	a->seg_mode[g] = (uint8_t)a->mode;
	bit_put(a->setup, g, true);
	return 0;

err_unavailable:
	/* mbind refused the node (cgroup MemsAllowed): never try again. */
	if (rc == -EINVAL || rc == -ENODEV) {
		atomic_store_explicit(&a->available, false, memory_order_relaxed);
		rc = moirai__err(-ENODEV, "alloc: node %d cannot be bound (not in MemsAllowed?)",
				 a->node);
	}
	return rc;
}

/* Make segments [s, s+n) committed; called with the lock held. */
static int commit_segs(struct arena *a, size_t s, size_t n)
{
	for (size_t g = s / a->granule_segs; g <= (s + n - 1) / a->granule_segs; g++) {
		if (bit_get(a->setup, g))
			continue;
		int rc = setup_granule(a, g);

		if (rc)
			return rc;
	}
	/*
	 * A segment committed here is free until the whole span is taken, so
	 * it joins free_committed; the span leaves it in one step at the end.
	 * A populate failure half way thus leaves the counter exact.
	 */
	for (size_t i = s; i < s + n; i++) {
		size_t g = i / a->granule_segs;
		char *p = a->base + (i << SEG_SHIFT);

		if (bit_get(a->dirty, i))
			continue;
		/* Re-commit after a decommit: hugetlb pages are reserved again. */
		if (a->seg_mode[g] == MODE_HUGETLB &&
		    madvise(p, SEG_SIZE, MADV_POPULATE_WRITE) != 0)
			return moirai__err(-ENOMEM,
					   "alloc: cannot populate hugetlb pages on node %d",
					   a->node);
		bit_put(a->dirty, i, true);
		atomic_fetch_add_explicit(&a->committed, SEG_SIZE, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->committed_mode[a->seg_mode[g]], SEG_SIZE,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&a->free_committed, SEG_SIZE, memory_order_relaxed);
	}
	atomic_fetch_sub_explicit(&a->free_committed, n * SEG_SIZE, memory_order_relaxed);
	return 0;
}

/* First fit of @n free segments; returns the index or nsegs. */
static size_t find_run(struct arena *a, size_t n)
{
	size_t run = 0;
	size_t limit = a->hwm + n;

	if (limit > a->nsegs)
		limit = a->nsegs;
	for (size_t i = 0; i < limit; i++) {
		if (run == 0 && (i % 64) == 0 && a->used[i / 64] == ~0ULL) {
			i += 63;
			continue;
		}
		if (bit_get(a->used, i)) {
			run = 0;
			continue;
		}
		if (++run == n)
			return i + 1 - n;
	}
	return a->nsegs;
}

char *moirai__arena_alloc_segs(struct arena *a, size_t n)
{
	size_t s;
	int rc;

	pthread_mutex_lock(&a->lock);
	if (!atomic_load_explicit(&a->available, memory_order_relaxed)) {
		pthread_mutex_unlock(&a->lock);
		moirai__err(-ENODEV, "alloc: node %d is not available", a->node);
		errno = ENODEV;
		return NULL;
	}
	s = find_run(a, n);
	if (s >= a->nsegs) {
		pthread_mutex_unlock(&a->lock);
		moirai__err(-ENOMEM, "alloc: node %d arena is exhausted (%zu MiB reserved)",
			    a->node, (a->nsegs << SEG_SHIFT) >> 20);
		errno = ENOMEM;
		return NULL;
	}
	rc = commit_segs(a, s, n);
	if (rc) {
		pthread_mutex_unlock(&a->lock);
		errno = rc == -ENODEV ? ENODEV : ENOMEM;
		return NULL;
	}
	for (size_t i = s; i < s + n; i++)
		bit_put(a->used, i, true);
	if (s + n > a->hwm)
		a->hwm = s + n;
	pthread_mutex_unlock(&a->lock);
	return a->base + (s << SEG_SHIFT);
}

/* Give back free committed segments, highest first, above the threshold. */
static void decommit_excess(struct arena *a)
{
	for (size_t i = a->hwm; i-- > 0;) {
		if (atomic_load_explicit(&a->free_committed, memory_order_relaxed) <=
		    moirai__alloc_decommit_threshold)
			break;
		if (bit_get(a->used, i) || !bit_get(a->dirty, i))
			continue;
		if (madvise(a->base + (i << SEG_SHIFT), SEG_SIZE, MADV_DONTNEED) != 0)
			continue;
		enum page_mode m = (enum page_mode)a->seg_mode[i / a->granule_segs];

		bit_put(a->dirty, i, false);
		atomic_fetch_sub_explicit(&a->free_committed, SEG_SIZE, memory_order_relaxed);
		atomic_fetch_sub_explicit(&a->committed, SEG_SIZE, memory_order_relaxed);
		atomic_fetch_sub_explicit(&a->committed_mode[m], SEG_SIZE, memory_order_relaxed);
		atomic_fetch_add_explicit(&a->decommitted, SEG_SIZE, memory_order_relaxed);
	}
}

void moirai__arena_free_segs(struct arena *a, char *p, size_t n)
{
	size_t s = (size_t)(p - a->base) >> SEG_SHIFT;

	pthread_mutex_lock(&a->lock);
	for (size_t i = s; i < s + n; i++) {
		moirai_assert_internal(bit_get(a->used, i));
		bit_put(a->used, i, false);
		if (bit_get(a->dirty, i))
			atomic_fetch_add_explicit(&a->free_committed, SEG_SIZE,
						  memory_order_relaxed);
	}
	while (a->hwm > 0 && !bit_get(a->used, a->hwm - 1) && !bit_get(a->dirty, a->hwm - 1))
		a->hwm--;
	if (atomic_load_explicit(&a->free_committed, memory_order_relaxed) >
	    moirai__alloc_decommit_threshold)
		decommit_excess(a);
	pthread_mutex_unlock(&a->lock);
}

enum page_mode moirai__arena_mode_of(struct arena *a, char *p)
{
	size_t s = (size_t)(p - a->base) >> SEG_SHIFT;

	return (enum page_mode)a->seg_mode[s / a->granule_segs];
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

int moirai__arena_nearest(int node)
{
	char path[96], buf[1024] = "";
	int best = -1, best_d = 1 << 30;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/distance", node);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	char *s = buf;

	for (int i = 0; i < moirai__alloc_nodes; i++) {
		long d = 20;

		if (n > 0) {
			char *end;

			d = strtol(s, &end, 10);
			if (end == s)
				d = 20 + i;
			s = end;
		}
		if (i == node ||
		    !atomic_load_explicit(&moirai__arenas[i]->available, memory_order_relaxed))
			continue;
		if (d < best_d) {
			best_d = (int)d;
			best = i;
		}
	}
	return best;
}
