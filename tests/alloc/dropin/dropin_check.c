/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helper of tests/alloc/test_malloc_dropin.sh: the malloc contract as real
 * programs use it, run with and without the drop-in (LD_PRELOAD of
 * build/libmoirai-malloc.so, or linked statically).  Linked against
 * libmoirai.so (or libmoirai.a) so that it can ask moirai where a block
 * lives: with the drop-in, moirai_* resolves to the drop-in's copy and
 * malloc() and moirai_malloc_node() share its heaps.
 *
 *   dropin_check api [--moirai|--glibc]
 *                                 every entry point; --moirai / --glibc:
 *                                 assert whose malloc() it is
 *   dropin_check threads          threads that exchange and leak blocks
 *   dropin_check fork             fork while threads allocate; the child
 *                                 allocates, then execs
 *   dropin_check dlopen LIB       dlopen/dlclose a library that allocates
 *   dropin_check double-free | overrun | foreign-in-window
 *                                 a bug for debug mode to catch
 *
 * Prints a line of results (checksums, no addresses) that must be the same
 * with and without the drop-in; exits 1 with a message on a failed check.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moirai/alloc.h"

extern void *__libc_malloc(size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "dropin_check: %s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                            \
			exit(1);                                                             \
		}                                                                            \
	} while (0)

/* Allocated before main, in a constructor: freed in main. */
static char *ctor_block;
static void *ctor_blocks[64];

__attribute__((constructor)) static void early(void)
{
	ctor_block = malloc(1000);
	if (ctor_block)
		memset(ctor_block, 'c', 1000);
	for (int i = 0; i < 64; i++)
		ctor_blocks[i] = malloc((size_t)(i + 1) * 100);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7))
			return 0;
	return 1;
}

/*
 * Results stored here are not elided (clang removes unused allocations),
 * and the failing calls go through pointers: LLVM assumes malloc leaves
 * errno alone and would not read it again after a direct call.
 */
static void *volatile sink;
static void *(*volatile malloc_p)(size_t) = malloc;
static void *(*volatile calloc_p)(size_t, size_t) = calloc;
static void *(*volatile realloc_p)(void *, size_t) = realloc;
static void *(*volatile reallocarray_p)(void *, size_t, size_t) = reallocarray;

static int aligned_to(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static int cmd_api(int want_moirai) /* 1 moirai, -1 glibc, 0 either */
{
	volatile size_t odd_align = 48, max = SIZE_MAX; /* volatile: no folding */
	uint64_t h = 0;
	void *a, *b, *p, *q;
	int rc;

	/* Constructor blocks. */
	CHECK(ctor_block && ctor_block[999] == 'c');
	free(ctor_block);
	for (int i = 0; i < 64; i++) {
		CHECK(ctor_blocks[i]);
		free(ctor_blocks[i]);
	}
	/* malloc(0): unique, freeable. */
	a = malloc(0);
	b = malloc(0);
	CHECK(a && b && a != b);
	free(a);
	free(b);
	free(NULL);
	/* Huge sizes: NULL and ENOMEM, never a crash. */
	errno = 0;
	CHECK((sink = malloc_p(max)) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK((sink = malloc_p(max / 2)) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK((sink = calloc_p(max / 8, 16)) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK((sink = realloc_p(NULL, max - 4096)) == NULL && errno == ENOMEM);
	/* calloc zeroes, also reused memory. */
	for (int r = 0; r < 3; r++) {
		size_t sizes[] = { 1, 24, 100, 4000, 40000, 300000, 3u << 20 };

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			unsigned char *c = malloc(sizes[i]);

			CHECK(c);
			memset(c, 0xab, sizes[i]);
			free(c);
			c = calloc(1, sizes[i]);
			CHECK(c);
			for (size_t k = 0; k < sizes[i]; k++)
				CHECK(c[k] == 0);
			free(c);
		}
	}
	a = calloc(0, 8);
	CHECK(a);
	free(a);
	/* realloc: shrink in place, grow in place while the block allows, move. */
	p = malloc(1000);
	CHECK(p);
	fill(p, 1000, 3);
	q = realloc(p, 900);
	CHECK(q && same(q, 900, 3));
	if (want_moirai > 0 && !getenv("MOIRAI_DEBUG")) /* debug mode always moves */
		CHECK(q == p);
	p = q;
	q = realloc(p, malloc_usable_size(p));
	CHECK(q && same(q, 900, 3));
	if (want_moirai > 0 && !getenv("MOIRAI_DEBUG"))
		CHECK(q == p);
	for (size_t n = 1000; n < (64u << 20); n = n * 3 + 17) {
		size_t keep = malloc_usable_size(q) < n ? malloc_usable_size(q) : n;

		CHECK(malloc_usable_size(q) >= 900);
		q = realloc(q, n);
		CHECK(q && same(q, 900, 3));
		CHECK(malloc_usable_size(q) >= n);
		(void)keep;
	}
	q = realloc(q, 10);
	CHECK(q && same(q, 10, 3));
	CHECK(realloc(q, 0) == NULL); /* frees, like glibc */
	q = realloc(NULL, 50);
	CHECK(q);
	errno = 0;
	CHECK((sink = reallocarray_p(q, max / 2, 4)) == NULL && errno == ENOMEM);
	q = reallocarray(q, 10, 10);
	CHECK(q && malloc_usable_size(q) >= 100);
	free(q);
	/* Alignment: up to the page and beyond. */
	for (size_t al = sizeof(void *); al <= (64u << 20); al <<= 1) {
		size_t sizes[] = { 1, al / 2 + 1, al, 3 * al + 5 };

		for (size_t i = 0; i < 4; i++) {
			p = NULL;
			rc = posix_memalign(&p, al, sizes[i]);
			CHECK(rc == 0 && p && aligned_to(p, al));
			memset(p, 1, sizes[i]);
			CHECK(malloc_usable_size(p) >= sizes[i]);
			free(p);
			p = aligned_alloc(al, sizes[i]);
			CHECK(p && aligned_to(p, al));
			free(p);
			p = memalign(al, sizes[i]);
			CHECK(p && aligned_to(p, al));
			free(p);
		}
	}
	p = (void *)1;
	CHECK(posix_memalign(&p, 3, 10) == EINVAL && p == (void *)1);
	CHECK(posix_memalign(&p, 0, 10) == EINVAL);
	p = memalign(odd_align, 100); /* 48: rounded up to 64, as glibc does */
	CHECK(p && aligned_to(p, 64));
	free(p);
	p = valloc(100);
	CHECK(p && aligned_to(p, (size_t)sysconf(_SC_PAGESIZE)));
	free(p);
	p = pvalloc(100);
	CHECK(p && aligned_to(p, (size_t)sysconf(_SC_PAGESIZE)) &&
	      malloc_usable_size(p) >= (size_t)sysconf(_SC_PAGESIZE));
	free(p);
	CHECK(malloc_usable_size(NULL) == 0);
	/* glibc's own memory (as if obtained before interposition): no crash. */
	p = __libc_malloc(200);
	CHECK(p);
	memset(p, 5, 200);
	CHECK(malloc_usable_size(p) >= 200);
	p = realloc(p, 5000);
	CHECK(p);
	free(p);
	p = __libc_malloc(100);
	free(p);
	/* Same heaps for malloc() and the node API. */
	p = malloc(100);
	q = moirai_malloc_node(100, MOIRAI_NODE_ANY);
	CHECK(q);
	if (want_moirai > 0) {
		CHECK(moirai_alloc_ptr_node(p) >= 0);
		CHECK(moirai_alloc_ptr_node(q) >= 0);
		CHECK(moirai_usable_size(p) == malloc_usable_size(p));
		free(q);	/* a moirai block through free() */
		moirai_free(p); /* a malloc block through moirai_free() */
	} else {
		if (want_moirai < 0) /* --glibc: malloc() is not moirai's */
			CHECK(moirai_alloc_ptr_node(p) < 0);
		moirai_free(q);
		free(p);
	}
	/* A content checksum that does not depend on addresses. */
	for (int i = 0; i < 1000; i++) {
		unsigned char *c = malloc((size_t)(i * 37 % 5000) + 1);

		fill(c, (size_t)(i * 37 % 5000) + 1, (unsigned)i);
		h = mix(h, c[(i * 37 % 5000)]);
		free(c);
	}
	printf("api ok %016llx\n", (unsigned long long)h);
	return 0;
}

#define NTHREADS 4
#define PER	 20000

struct slot {
	_Atomic(unsigned char *) p;
	size_t n;
	unsigned seed;
};
static struct slot slots[NTHREADS][256];
static void *leaked[NTHREADS];
static uint64_t sums[NTHREADS];

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t h = 0;
	unsigned x = (unsigned)id * 2654435761u + 1;

	for (int i = 0; i < PER; i++) {
		x = x * 1103515245u + 12345u;
		/* Free one of the next thread's blocks (remote), replace ours. */
		struct slot *mine = &slots[id][x % 256];
		struct slot *other = &slots[(id + 1) % NTHREADS][(x >> 8) % 256];
		unsigned char *o = atomic_exchange(&other->p, NULL);

		if (o) {
			/* Written by its owner before the exchange published it. */
			free(o);
		}
		size_t n = (x >> 4) % 3000 + 1;

		if (i % 1000 == 0)
			n = (x >> 4) % 300000 + 1;
		unsigned char *p = malloc(n);

		CHECK(p);
		fill(p, n, x);
		CHECK(same(p, n, x));
		h = mix(h, p[n - 1]);
		unsigned char *old = atomic_exchange(&mine->p, NULL);

		free(old);
		atomic_store(&mine->p, p);
	}
	/* Exit with live blocks: some in the slots, one handed to main. */
	leaked[id] = malloc(12345);
	fill(leaked[id], 12345, (unsigned)id);
	sums[id] = h;
	return NULL;
}

static int cmd_threads(void)
{
	pthread_t t[NTHREADS];
	uint64_t h = 0;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NTHREADS; i++)
			CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < NTHREADS; i++) {
			CHECK(same(leaked[i], 12345, (unsigned)i));
			free(leaked[i]);
			h = mix(h, sums[i]);
		}
	}
	/* Blocks of exited threads, freed by main. */
	for (int i = 0; i < NTHREADS; i++)
		for (int k = 0; k < 256; k++)
			free(atomic_exchange(&slots[i][k].p, NULL));
	printf("threads ok %016llx\n", (unsigned long long)h);
	return 0;
}

static _Atomic int stop_alloc;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_alloc)) {
		void *v[64];

		for (int i = 0; i < 64; i++)
			v[i] = malloc((size_t)(i * 131 % 4000) + 1);
		for (int i = 0; i < 64; i++)
			free(v[i]);
	}
	return NULL;
}

static int cmd_fork(void)
{
	pthread_t t[2];
	char *keep = strdup("parent data before fork");

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, churn, NULL) == 0);
	for (int k = 0; k < 20; k++) {
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0);
		if (pid == 0) {
			/* The child allocates, frees parent blocks, then execs. */
			char *s = malloc(100000);
			void *v[1000];

			if (!s)
				_exit(3);
			memset(s, 'x', 100000);
			for (int i = 0; i < 1000; i++)
				v[i] = malloc((size_t)i + 1);
			for (int i = 0; i < 1000; i++)
				free(v[i]);
			if (strcmp(keep, "parent data before fork"))
				_exit(4);
			free(keep);
			free(s);
			if (k % 4 == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(5);
			}
			_exit(0);
		}
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	atomic_store(&stop_alloc, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(!strcmp(keep, "parent data before fork"));
	free(keep);
	printf("fork ok\n");
	return 0;
}

static int cmd_dlopen(const char *lib)
{
	uint64_t h = 0;

	for (int i = 0; i < 20; i++) {
		void *dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
		char *(*make)(int);

		CHECK(dl);
		*(void **)&make = dlsym(dl, "dropin_lib_make");
		CHECK(make);
		char *s = make(i);

		CHECK(s);
		for (char *c = s; *c; c++)
			h = mix(h, (unsigned char)*c);
		free(s);
		CHECK(dlclose(dl) == 0);
	}
	printf("dlopen ok %016llx\n", (unsigned long long)h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "api"))
		return cmd_api(argc < 3 ? 0 : !strcmp(argv[2], "--moirai") ? 1 : -1);
	if (argc == 2 && !strcmp(argv[1], "threads"))
		return cmd_threads();
	if (argc == 2 && !strcmp(argv[1], "fork"))
		return cmd_fork();
	if (argc == 3 && !strcmp(argv[1], "dlopen"))
		return cmd_dlopen(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "double-free")) {
		char *volatile p = malloc(40);

		free(p);
		free(p);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "overrun")) {
		char *volatile p = malloc(40);

		((volatile char *)p)[40] = 'x'; /* not a dead store */
		free(p);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "foreign-in-window")) {
		char *volatile p = malloc(3u << 20); /* a huge span */

		free(p);
		free(p); /* its segments are gone: no block there */
		return 0;
	}
	fprintf(stderr, "dropin_check: unknown command\n");
	return 2;
}
