/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai/alloc.h under an address-space limit (RLIMIT_AS).  The allocator
 * reads the limit when it starts, so every case runs in a forked child of
 * a parent that never allocates with moirai, and the child sets the limit
 * first.  At 200 MiB, 512 MiB, 1.2 GiB and 4 GiB each child checks that:
 *
 *  - the window taken at the first allocation follows the policy (a
 *    quarter of the free budget, half of it at most for an explicit
 *    MOIRAI_ARENA_RESERVE, the explicit value when it is smaller);
 *  - small, large and huge blocks work, in the main thread and in 32
 *    threads started after the first allocation (with the default stack
 *    size wherever 32 default stacks fit in the limit at all), including
 *    frees from other threads;
 *  - rings, channels and pools can be created and used;
 *  - allocating until the limit is really exhausted ends in ENOMEM with a
 *    message (never a crash), with less address space left than the
 *    failed request needed, and rings, channels and pools then fail with
 *    -ENOMEM too;
 *  - freeing everything gives the address space back (VmSize and the
 *    reserved bytes return to where they were), a second exhaustion round
 *    gets as far as the first, and 32 threads start again.
 *
 * A child reports the first failed check through a pipe.  Sanitizers map
 * terabytes of shadow memory, more than any limit here: the cases skip
 * when the process already maps more than the smallest limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc_int.h"
#include "moirai/alloc.h"
#include "moirai/channel.h"
#include "moirai/numa.h"
#include "moirai/pool.h"
#include "moirai/ring.h"
#include "testutil.h"

#define MIB	     ((size_t)1 << 20)
#define NTHREADS     32
#define HUGE_STEP    (4 * MIB - 4096) /* header page + block = 2 segments */
#define SMALL_STEP   ((size_t)8192)
#define MAX_HUGE     4096
#define MAX_SMALL    65536
#define THREAD_SMALL 24

static int msg_fd = -1;

/* A failed check in the child: say where and why, then exit. */
static void child_fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void child_fail(int line, const char *fmt, ...)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "line %d: ", line);
	va_list ap;

	/* snprintf into a stack buffer: no malloc, which may be out of space. */
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (write(msg_fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0)
		_exit(2);
	_exit(1);
}

#define CHECK(cond, ...)                                   \
	do {                                               \
		if (!(cond))                               \
			child_fail(__LINE__, __VA_ARGS__); \
	} while (0)

static size_t vm_size(void)
{
	char buf[128] = "";
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 ? (size_t)strtoull(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/*
 * Grow the main thread's stack now: once the limit is exhausted, a stack
 * page touched for the first time would be a SIGSEGV from the kernel, not
 * from the allocator.
 */
static __attribute__((noinline)) void prefault_stack(void)
{
	volatile char buf[512 << 10];

	for (size_t i = 0; i < sizeof(buf); i += 4096)
		buf[i] = 0;
}

static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i += 509)
		c[i] = (unsigned char)(seed + i);
	c[n - 1] = (unsigned char)(seed ^ 0x5a);
}

static bool check(const void *p, size_t n, unsigned seed)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i += 509)
		if (c[i] != (unsigned char)(seed + i) && !(i == n - 1))
			return false;
	return c[n - 1] == (unsigned char)(seed ^ 0x5a);
}

static void stats(struct moirai_alloc_stats *st)
{
	CHECK(moirai_alloc_stats_get(MOIRAI_NODE_ANY, st) == 0, "stats: %s", moirai_last_error());
}

/* ---- threads -------------------------------------------------------- */

struct worker {
	pthread_t tid;
	unsigned id;
	void *blocks[THREAD_SMALL + 1];
	void *for_neighbour; /* freed by the next thread: a remote free */
	bool ok;
};

static struct worker workers[NTHREADS];
static pthread_barrier_t barrier;
static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t worker_size(unsigned id, int i)
{
	return i == THREAD_SMALL ? 200000 : 16 + ((size_t)id * 977 + (size_t)i * 331) % 4000;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker *next = &workers[(w->id + 1) % NTHREADS];
	bool ok = true;

	for (int i = 0; i <= THREAD_SMALL; i++) {
		w->blocks[i] = moirai_malloc(worker_size(w->id, i));
		ok &= w->blocks[i] != NULL;
		if (w->blocks[i])
			fill(w->blocks[i], worker_size(w->id, i), w->id * 64 + (unsigned)i);
	}
	w->for_neighbour = w->blocks[0];
	w->blocks[0] = NULL;
	/* Every thread alive at once, each holding its blocks (a failed one too:
	 * the others must not wait for it forever). */
	pthread_barrier_wait(&barrier);
	for (int i = 1; i <= THREAD_SMALL; i++)
		ok &= w->blocks[i] &&
		      check(w->blocks[i], worker_size(w->id, i), w->id * 64 + (unsigned)i);
	ok &= next->for_neighbour &&
	      check(next->for_neighbour, worker_size(next->id, 0), next->id * 64);
	pthread_barrier_wait(&barrier);
	/* Another thread's block: the remote free path. */
	moirai_free(next->for_neighbour);
	/* Huge blocks one thread at a time: they fit even under 200 MiB. */
	pthread_mutex_lock(&huge_lock);
	void *h = moirai_malloc(3 * MIB);

	ok &= h != NULL;
	if (h) {
		fill(h, 3 * MIB, w->id);
		ok &= check(h, 3 * MIB, w->id);
		moirai_free(h);
	}
	pthread_mutex_unlock(&huge_lock);
	for (int i = 1; i <= THREAD_SMALL; i++)
		moirai_free(w->blocks[i]);
	w->ok = ok;
	return NULL;
}

/* Start 32 threads that allocate; all must start and all must succeed. */
static void run_threads(size_t stack)
{
	pthread_attr_t attr;
	int started = 0;

	CHECK(pthread_attr_init(&attr) == 0, "attr");
	if (stack)
		CHECK(pthread_attr_setstacksize(&attr, stack) == 0, "stack size %zu", stack);
	CHECK(pthread_barrier_init(&barrier, NULL, NTHREADS) == 0, "barrier");
	memset(workers, 0, sizeof(workers));
	for (unsigned i = 0; i < NTHREADS; i++) {
		int rc;

		workers[i].id = i;
		rc = pthread_create(&workers[i].tid, &attr, worker_main, &workers[i]);
		CHECK(rc == 0, "pthread_create %u of %d: %s (VmSize %zu MiB)", i + 1, NTHREADS,
		      strerror(rc), vm_size() >> 20);
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].tid, NULL);
	for (int i = 0; i < NTHREADS; i++)
		CHECK(workers[i].ok, "thread %d: allocation or content check failed", i);
	pthread_barrier_destroy(&barrier);
	pthread_attr_destroy(&attr);
}

/*
 * Producers allocate (small, large and now and then huge blocks) and fill;
 * consumers check and free: remote frees of blocks in extents that other
 * threads create and empty meanwhile.
 */
#define HAND_SLOTS 256

struct handoff {
	_Atomic(uintptr_t) slot[HAND_SLOTS];
	_Atomic long produced, consumed, bad;
	long total;
};

static size_t hand_size(long k)
{
	if (k % 97 == 0)
		return 3 * MIB;
	if (k % 13 == 0)
		return 40000 + (size_t)(k % 7) * 30000;
	return 16 + ((size_t)k * 2654435761u) % 3000;
}

static void *hand_producer(void *arg)
{
	struct handoff *h = arg;
	long k;

	while ((k = atomic_fetch_add(&h->produced, 1)) < h->total) {
		size_t n = hand_size(k);
		char *p = moirai_malloc(n);
		uintptr_t empty = 0;

		if (!p) {
			atomic_fetch_add(&h->bad, 1);
			atomic_fetch_add(&h->consumed, 1);
			continue;
		}
		memcpy(p, &k, sizeof(k));
		fill(p + sizeof(k), n - sizeof(k), (unsigned)k);
		/* Release pairs with the consumer's acquire exchange. */
		while (!atomic_compare_exchange_weak_explicit(&h->slot[k % HAND_SLOTS], &empty,
							      (uintptr_t)p, memory_order_release,
							      memory_order_relaxed)) {
			empty = 0;
			sched_yield();
		}
	}
	return NULL;
}

static void *hand_consumer(void *arg)
{
	struct handoff *h = arg;

	for (size_t i = 0; atomic_load(&h->consumed) < h->total; i = (i + 1) % HAND_SLOTS) {
		uintptr_t v = atomic_load_explicit(&h->slot[i], memory_order_relaxed);
		long k;

		if (!v) {
			if (i == 0)
				sched_yield();
			continue;
		}
		/* Acquire pairs with the producer's release CAS. */
		v = atomic_exchange_explicit(&h->slot[i], 0, memory_order_acquire);
		if (!v)
			continue;
		memcpy(&k, (void *)v, sizeof(k));
		if (k < 0 || k >= h->total ||
		    !check((char *)v + sizeof(k), hand_size(k) - sizeof(k), (unsigned)k))
			atomic_fetch_add(&h->bad, 1);
		moirai_free((void *)v);
		atomic_fetch_add(&h->consumed, 1);
	}
	return NULL;
}

static void run_handoff(long total)
{
	static struct handoff h;
	pthread_t t[4];

	memset(&h, 0, sizeof(h));
	h.total = total;
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, i < 2 ? hand_producer : hand_consumer, &h) == 0,
		      "handoff thread");
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&h.bad) == 0, "handoff: %ld blocks lost or corrupted",
	      atomic_load(&h.bad));
}

/* ---- rings, channels, pools ----------------------------------------- */

static void use_ring_layer(void)
{
	struct moirai_ring *r;
	struct moirai_chan *ch;
	struct moirai_pool *pool;
	struct moirai_pool_cache *cache;
	void *objs[64];
	uint64_t msg[16] = { 0 }, got[16];

	CHECK(moirai_ring_create("lim_ring", 4096, MOIRAI_NODE_ANY, 0, &r) == 0, "ring: %s",
	      moirai_last_error());
	for (int i = 0; i < 64; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	CHECK(moirai_ring_mp_enqueue_bulk(r, objs, 64, NULL) == 64, "ring enqueue");
	CHECK(moirai_ring_mc_dequeue_bulk(r, objs, 64, NULL) == 64 && objs[63] == (void *)64,
	      "ring dequeue");
	moirai_ring_destroy(r);

	CHECK(moirai_chan_create("lim_chan", 8, 1024, MOIRAI_NODE_ANY, 0, &ch) == 0, "chan: %s",
	      moirai_last_error());
	for (int i = 0; i < 16; i++)
		msg[i] = (uint64_t)i * 7;
	CHECK(moirai_chan_send(ch, msg, 16, MOIRAI_TIMEOUT_TRY) == 16, "chan send");
	CHECK(moirai_chan_recv(ch, got, 16, MOIRAI_TIMEOUT_TRY) == 16 && got[15] == 105,
	      "chan recv");
	moirai_chan_destroy(ch);

	CHECK(moirai_pool_create("lim_pool", 64, 8192, MOIRAI_NODE_ANY, 0, &pool) == 0, "pool: %s",
	      moirai_last_error());
	CHECK(moirai_pool_thread_cache(pool, &cache) == 0, "pool cache: %s", moirai_last_error());
	CHECK(moirai_pool_get_bulk(pool, cache, objs, 64) == 0, "pool get");
	for (int i = 0; i < 64; i++)
		memset(objs[i], i, 64);
	CHECK(moirai_pool_put_bulk(pool, cache, objs, 64) == 0, "pool put");
	moirai_pool_cache_destroy(cache);
	moirai_pool_destroy(pool);
}

/* ---- exhaustion ----------------------------------------------------- */

static void *huge_blocks[MAX_HUGE], *small_blocks[MAX_SMALL];
static int nhuge, nsmall;

/* Allocate until ENOMEM; returns the bytes allocated. */
static size_t exhaust(size_t limit)
{
	struct moirai_ring *r;
	struct moirai_pool *pool;
	struct moirai_chan *ch;
	size_t total = 0, left;
	void *p;

	for (;;) {
		CHECK(nhuge < MAX_HUGE, "more than %d huge blocks under %zu MiB", MAX_HUGE,
		      limit >> 20);
		p = moirai_malloc(HUGE_STEP);
		if (!p)
			break;
		/* Touch both ends only: 4 KiB pages, so little memory. */
		((char *)p)[0] = 1;
		((char *)p)[HUGE_STEP - 1] = 2;
		huge_blocks[nhuge++] = p;
		total += HUGE_STEP;
	}
	CHECK(errno == ENOMEM, "huge: errno %d, not ENOMEM", errno);
	CHECK(strstr(moirai_last_error(), "address space") != NULL, "huge: message '%s'",
	      moirai_last_error());
	/* Really exhausted: less left than the span (plus alignment slack). */
	left = limit - vm_size();
	CHECK(left < HUGE_STEP + 4096 + 2 * SEG_SIZE + MIB,
	      "huge blocks failed with %zu MiB of address space left", left >> 20);
	for (;;) {
		CHECK(nsmall < MAX_SMALL, "more than %d small blocks", MAX_SMALL);
		p = moirai_malloc(SMALL_STEP);
		if (!p)
			break;
		memset(p, 0x5a, 64);
		small_blocks[nsmall++] = p;
		total += SMALL_STEP;
	}
	CHECK(errno == ENOMEM, "small: errno %d, not ENOMEM", errno);
	left = limit - vm_size();
	CHECK(left < 2 * SEG_SIZE + MIB, "small blocks failed with %zu KiB left", left >> 10);
	/*
	 * Everything built on this node's arena fails cleanly now (the thread
	 * is pinned: another node's arena may still hold free segments).
	 */
	int rc, node = moirai_numa_current_node();

	rc = moirai_ring_create("lim_full", 65536, node, 0, &r);
	CHECK(rc == -ENOMEM, "ring at the limit: %d, %s", rc, moirai_last_error());
	rc = moirai_pool_create("lim_full", 256, 8192, node, 0, &pool);
	CHECK(rc == -ENOMEM, "pool at the limit: %d, %s", rc, moirai_last_error());
	rc = moirai_chan_create("lim_full", 64, 16384, node, 0, &ch);
	CHECK(rc == -ENOMEM, "channel at the limit: %d, %s", rc, moirai_last_error());
	return total;
}

static void free_all(void)
{
	/* Interleaved, so extents empty in an order unlike their creation. */
	for (int i = 0; i < nhuge; i += 2)
		moirai_free(huge_blocks[i]);
	for (int i = nsmall; i-- > 0;)
		moirai_free(small_blocks[i]);
	for (int i = 1; i < nhuge; i += 2)
		moirai_free(huge_blocks[i]);
	nhuge = nsmall = 0;
	moirai_alloc_thread_flush();
}

/* ---- the child ------------------------------------------------------ */

struct limit_case {
	size_t limit;	     /* RLIMIT_AS, bytes; 0 = none */
	const char *reserve; /* explicit MOIRAI_ARENA_RESERVE or NULL */
	bool full;	     /* threads, ring layer, exhaustion */
};

static void set_limit(size_t limit)
{
	struct rlimit rl = { (rlim_t)limit, (rlim_t)limit };

	if (limit)
		CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));
}

/*
 * The window taken at the first allocation follows the policy.  The
 * allocator measured VmSize when it started, somewhere between @vm0 (before
 * the call) and @vm1 - @reserved (after it, without the window).
 */
static void check_window(const struct limit_case *c, size_t vm0, size_t vm1, size_t reserved)
{
	size_t nodes = (size_t)moirai__alloc_nodes;
	size_t per = (size_t)64 << 30, hi, lo;
	long v;

	if (c->reserve) {
		CHECK(moirai__parse_size(c->reserve, &v) == 0, "reserve %s", c->reserve);
		per = (size_t)v;
	}
	if (!c->limit) {
		/*
		 * No limit: the configured reservation, whole, unless the kernel
		 * (or valgrind, which caps a mapping at 32 GiB) refused it: then
		 * halved until accepted.
		 */
		size_t want = per * nodes;

		while (reserved < want && want > ((size_t)1 << 30))
			want = want / 2 / (nodes * SEG_SIZE) * (nodes * SEG_SIZE);
		CHECK(reserved == want, "unlimited: reserved %zu MiB, configured %zu MiB",
		      reserved >> 20, (per * nodes) >> 20);
		return;
	}
	unsigned div = c->reserve ? 2 : 4;

	hi = (c->limit - vm0) / div;
	lo = (c->limit - (vm1 - reserved)) / div;
	if (hi > per * nodes)
		hi = per * nodes;
	if (lo > per * nodes)
		lo = per * nodes;
	/* Rounded down to whole segments per node, never above. */
	CHECK(reserved <= hi && reserved + nodes * SEG_SIZE >= lo,
	      "limit %zu MiB: window %zu MiB, policy says %zu..%zu MiB", c->limit >> 20,
	      reserved >> 20, lo >> 20, hi >> 20);
}

/*
 * Blocks past the window come from extents of their own, given back when
 * freed.  Under a limit one node carves the window as it needs it, so
 * (even with several nodes) at least half of it serves this one thread.
 */
static void past_window(size_t window, bool limited)
{
	enum { MAXB = 128 };
	struct moirai_alloc_stats st;
	char *b[MAXB];
	size_t total = 0, in_window = 0, span = 24 * MIB;
	int n = 0;

	/*
	 * Whole-segment spans (header page + block) of at most 24 MiB, an
	 * eighth of the window and the largest block, so that the window's
	 * share is not lost to rounding.
	 */
	if (span > window / 8)
		span = window / 8 / SEG_SIZE * SEG_SIZE;
	if (span > moirai__alloc_max_size)
		span = moirai__alloc_max_size / SEG_SIZE * SEG_SIZE;
	if (span < SEG_SIZE)
		span = SEG_SIZE;
	const size_t bs = span - 4096;

	while (total < window + 16 * MIB) {
		CHECK(n < MAXB, "window %zu MiB needs too many blocks", window >> 20);
		b[n] = moirai_malloc(bs);
		CHECK(b[n] != NULL, "%zu MiB past a %zu MiB window: %s", (total + bs) >> 20,
		      window >> 20, moirai_last_error());
		b[n][0] = 1;
		b[n][bs - 1] = 2;
		CHECK(moirai_alloc_ptr_node(b[n] + bs - 1) >= 0, "extent pointer lookup");
		CHECK(moirai_usable_size(b[n]) >= bs, "extent usable size");
		if (moirai__seg_of_window(b[n]))
			in_window += bs;
		total += bs;
		n++;
	}
	CHECK(!limited || in_window >= window / 2,
	      "only %zu MiB of a %zu MiB window served one node", in_window >> 20, window >> 20);
	stats(&st);
	CHECK(st.reserved > window, "no extra extent: reserved %zu MiB", (size_t)st.reserved >> 20);
	while (n-- > 0)
		moirai_free(b[n]);
	stats(&st);
	CHECK(st.reserved == window, "extents not returned: %zu MiB reserved, window %zu MiB",
	      (size_t)st.reserved >> 20, window >> 20);
}

static void child_main(void *arg)
{
	const struct limit_case *c = arg;
	struct moirai_alloc_stats st0, st1, st2;
	size_t vm0, vm1, vm2, round1, round2, stack = 0, def_stack, keep;
	pthread_attr_t attr;

	alarm(200);
	prefault_stack();
	/* One node for the whole run: the exhaustion is that node's arena's. */
	CHECK(moirai_numa_pin_thread(moirai_numa_current_cpu()) == 0, "pin: %s",
	      moirai_last_error());
	CHECK(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, "none") == 0, "hugepages option");
	if (c->reserve)
		CHECK(moirai_option_set_str(MOIRAI_OPT_ARENA_RESERVE, c->reserve) == 0,
		      "reserve option");
	set_limit(c->limit);
	vm0 = vm_size();

	/* The first allocation takes the window. */
	void *first = moirai_malloc(64);

	CHECK(first != NULL, "first allocation: %s", moirai_last_error());
	stats(&st0);
	check_window(c, vm0, vm_size(), st0.reserved);

	/* Small, large and huge blocks in the main thread. */
	static const size_t sizes[] = { 16, 100, 1000, 32768, 100000, 1 << 20, 3 << 20 };

	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(sizes); i++) {
		void *p = moirai_malloc(sizes[i]), *q = moirai_malloc(sizes[i]);

		CHECK(p && q, "%zu bytes: %s", sizes[i], moirai_last_error());
		fill(p, sizes[i], (unsigned)i);
		fill(q, sizes[i], (unsigned)i + 7);
		CHECK(check(p, sizes[i], (unsigned)i) && check(q, sizes[i], (unsigned)i + 7),
		      "%zu bytes: content", sizes[i]);
		moirai_free(p);
		moirai_free(q);
	}
	if (c->limit || c->reserve)
		past_window(st0.reserved, c->limit != 0);
	if (!c->full) {
		moirai_free(first);
		return;
	}

	/* 32 threads after the first allocation, default stacks where they fit. */
	CHECK(pthread_attr_init(&attr) == 0 && pthread_attr_getstacksize(&attr, &def_stack) == 0,
	      "default stack size");
	pthread_attr_destroy(&attr);
	if (c->limit && NTHREADS * def_stack > (c->limit - vm_size()) / 4 * 3)
		stack = MIB; /* 32 default stacks alone would not fit this limit */
	run_threads(stack);
	use_ring_layer();
	if (!c->limit) {
		/* A small window without a limit: the threads' memory was in extents. */
		run_handoff(20000 / TEST_SAN_DIVISOR);
		moirai_alloc_thread_flush();
		stats(&st1);
		CHECK(st1.reserved == st0.reserved,
		      "extents kept: %zu MiB reserved, window %zu MiB", (size_t)st1.reserved >> 20,
		      (size_t)st0.reserved >> 20);
		uint64_t made = 0;

		for (int n = 0; n < moirai__alloc_nodes; n++)
			made += atomic_load(&moirai__arenas[n]->extents_made);
		CHECK(made >= 2, "only %llu extra extents: the window took everything",
		      (unsigned long long)made);
		moirai_free(first);
		return;
	}

	/* Exhaust, free, exhaust again: the same amount each time. */
	moirai_alloc_thread_flush();
	stats(&st1);
	vm1 = vm_size();
	round1 = exhaust(c->limit);
	free_all();
	stats(&st2);
	vm2 = vm_size();
	CHECK(vm2 <= vm1 + 2 * MIB, "after free: VmSize %zu MiB, was %zu MiB", vm2 >> 20,
	      vm1 >> 20);
	CHECK(st2.reserved <= st1.reserved, "after free: reserved %zu MiB, was %zu MiB",
	      (size_t)st2.reserved >> 20, (size_t)st1.reserved >> 20);
	/* Free segments stay committed up to the threshold, per node. */
	keep = moirai__alloc_decommit_threshold * (size_t)moirai__alloc_nodes;
	CHECK(st2.committed <= (st1.committed > keep ? st1.committed : keep) +
				       4 * SEG_SIZE * (size_t)moirai__alloc_nodes,
	      "after free: committed %zu MiB (in use %zu KiB, free committed %zu MiB), was %zu MiB",
	      (size_t)st2.committed >> 20, (size_t)st2.in_use >> 10,
	      (size_t)atomic_load(&moirai__arenas[0]->free_committed) >> 20,
	      (size_t)st1.committed >> 20);
	round2 = exhaust(c->limit);
	CHECK(round2 >= round1 / 10 * 9 && round2 <= round1 / 10 * 11,
	      "second round %zu MiB, first %zu MiB", round2 >> 20, round1 >> 20);
	CHECK(round1 >= (c->limit - vm0) / 2,
	      "only %zu MiB of %zu MiB used (VmSize %zu MiB before)", round1 >> 20,
	      (c->limit - vm0) >> 20, vm1 >> 20);
	free_all();
	run_threads(stack);
	moirai_free(first);
	if (getenv("MOIRAI_TEST_VERBOSE"))
		fprintf(stderr,
			"limit %zu MiB: VmSize at start %zu MiB, window %zu MiB, threads with %s "
			"stacks, exhausted after %zu MiB (VmSize before %zu MiB), again %zu MiB\n",
			c->limit >> 20, vm0 >> 20, (size_t)st0.reserved >> 20,
			stack ? "1 MiB" : "default", round1 >> 20, vm1 >> 20, round2 >> 20);
}

static void run_case(const struct limit_case *c)
{
	int fds[2], status = 0;
	char msg[600] = "";
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		msg_fd = fds[1];
		child_main((void *)c);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
		got += n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("limit %zu MiB%s%s: %s (status %#x)", c->limit >> 20,
			 c->reserve ? ", reserve " : "", c->reserve ? c->reserve : "",
			 got ? msg : "child died", status);
}

static int skip_under_shadow(void **state)
{
	const char *pre = getenv("LD_PRELOAD");

	(void)state;
	/* ASan and TSan shadow maps alone exceed every limit here. */
	if (vm_size() > 200 * MIB)
		return -1;
	/* Valgrind keeps its own mappings and stacks inside the same limit. */
	return pre && strstr(pre, "vgpreload") ? -1 : 0;
}

static void limit_test(void **state, size_t limit, const char *reserve, bool full)
{
	struct limit_case c = { limit, reserve, full };

	if (limit && skip_under_shadow(state)) {
		skip();
		return;
	}
	alarm(240);
	run_case(&c);
	alarm(0);
}

static void test_limit_200m(void **state)
{
	limit_test(state, 200 * MIB, NULL, true);
}

static void test_limit_512m(void **state)
{
	limit_test(state, 512 * MIB, NULL, true);
}

static void test_limit_1200m(void **state)
{
	limit_test(state, 1200 * MIB, NULL, true);
}

static void test_limit_4g(void **state)
{
	limit_test(state, 4096 * MIB, NULL, true);
}

/* An explicit reserve above half the budget is capped at half of it. */
static void test_explicit_reserve_capped(void **state)
{
	limit_test(state, 512 * MIB, "1G", false);
}

/* An explicit reserve below the cap is taken as it is; extents grow past it. */
static void test_explicit_reserve_small(void **state)
{
	limit_test(state, 4096 * MIB, "64M", false);
}

/* Without a limit, the window is the configured reservation, whole. */
static void test_no_limit(void **state)
{
	limit_test(state, 0, NULL, false);
}

/*
 * No limit but a 16 MiB window: most memory, 32 threads' and remote frees
 * included, lives in extra extents, which all go back.  Runs under the
 * sanitizers too, unlike the limited cases.
 */
static void test_small_window(void **state)
{
	limit_test(state, 0, "16M", true);
}

int main(void)
{
	const struct CMUnitTest limits[] = {
		cmocka_unit_test(test_no_limit),
		cmocka_unit_test(test_small_window),
		cmocka_unit_test(test_explicit_reserve_capped),
		cmocka_unit_test(test_explicit_reserve_small),
		cmocka_unit_test(test_limit_200m),
		cmocka_unit_test(test_limit_512m),
		cmocka_unit_test(test_limit_1200m),
		cmocka_unit_test(test_limit_4g),
	};

	return cmocka_run_group_tests_name("alloc limits", limits, NULL, NULL) ? 1 : 0;
}
