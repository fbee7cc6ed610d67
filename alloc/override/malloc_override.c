/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The malloc drop-in: libc's allocation functions and C++'s operator
 * new/delete on top of moirai's heaps, for LD_PRELOAD
 * (build/libmoirai-malloc.so, which also carries the whole moirai API, so
 * moirai_malloc_node() and malloc() share one set of heaps) or a static
 * link (build/libmoirai-malloc.a, this object alone, linked whole in front
 * of libmoirai.a).  docs/alloc.md, "The malloc drop-in", is the contract.
 *
 * Three things make it safe in any process:
 *
 *  - Recursion.  The allocator's slow paths call libc, libnuma and
 *    pthreads (its start reads the options, sysfs and /proc; pthread_once,
 *    pthread_atfork and pthread_setspecific may allocate), and any of them
 *    may call malloc.  While a thread is inside a slow path
 *    (moirai__tld.busy), its mallocs go to glibc's own allocator
 *    (__libc_malloc), never back into moirai: nothing re-enters the start
 *    lock or a pthread_once.  That also covers the very first malloc of
 *    the process, made before main, maybe from another library's
 *    constructor: the node probe it triggers reads sysfs with plain
 *    open/read, never libnuma, whose constructor may not have run.
 *
 *  - Foreign pointers.  A pointer outside every range moirai holds (glibc
 *    memory from the cases above, or from before the interposition) goes
 *    to glibc: __libc_free, __libc_realloc, glibc's malloc_usable_size.
 *    A pointer inside moirai's window with no live block there is
 *    reported (debug mode: abort) and ignored.
 *
 *  - Threads, fork, exit.  Heaps of exited threads are adopted as usual;
 *    frees made after a thread's exit destructor are sent at once; fork
 *    locks the arenas (pthread_atfork, armed at the allocator's start) and
 *    the child keeps allocating.
 *
 * glibc's semantics where moirai's own API differs: malloc(0) and
 * calloc(0, n) return a unique minimal block, realloc(p, 0) frees p and
 * returns NULL, memalign() rounds an alignment that is not a power of two
 * up to one, posix_memalign() returns the error instead of setting errno.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "alloc_int.h"

#define DROPIN_API __attribute__((visibility("default")))

/* glibc's own allocator: the fallback for recursion and foreign memory. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

/* libstdc++ when the program is C++ (weak: absent in C programs). */
typedef void (*new_handler_fn)(void);
extern new_handler_fn _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

const int moirai__malloc_dropin = 1;

DROPIN_API void *malloc(size_t size);
DROPIN_API void free(void *p);
DROPIN_API void *calloc(size_t n, size_t size);
DROPIN_API void *realloc(void *p, size_t size);
DROPIN_API void *reallocarray(void *p, size_t n, size_t size);
DROPIN_API int posix_memalign(void **out, size_t align, size_t size);
DROPIN_API void *aligned_alloc(size_t align, size_t size);
DROPIN_API void *memalign(size_t align, size_t size);
DROPIN_API void *valloc(size_t size);
DROPIN_API void *pvalloc(size_t size);
DROPIN_API size_t malloc_usable_size(void *p);

/* The slow path of malloc-like calls: recursion to glibc, else moirai. */
static __attribute__((noinline)) void *alloc_slow(size_t size, size_t align)
{
	if (moirai_unlikely(moirai__tld.busy))
		return align <= MIN_ALIGN ? __libc_malloc(size) : __libc_memalign(align, size);
	if (size == 0)
		size = 1; /* glibc: a unique pointer */
	return moirai__alloc_generic(MOIRAI_NODE_ANY, size, align, 0);
}

static inline void *alloc_fast(size_t size)
{
	void *p = moirai__bin_pop_local(size);

	return moirai_likely(p != NULL) ? p : alloc_slow(size, 0);
}

void *malloc(size_t size)
{
	return alloc_fast(size);
}

static __attribute__((noinline)) void free_slow(void *p)
{
	if (moirai__free_slow(p) == MOIRAI__FOREIGN)
		__libc_free(p);
}

static inline __attribute__((always_inline)) void free_inline(void *p)
{
	struct segment *seg = moirai__seg_of_window(p);

	if (moirai_likely(seg != NULL && moirai__free_fast(seg, p)))
		return;
	free_slow(p);
}

void free(void *p)
{
	free_inline(p);
}

void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (moirai_unlikely(moirai__tld.busy))
		return __libc_calloc(n, size);
	p = alloc_fast(total);
	if (p)
		memset(p, 0, total);
	return p;
}

/* glibc's malloc_usable_size, found once (dlsym may malloc: busy). */
static size_t libc_usable_size(void *p)
{
	static size_t (*fn)(void *);

	if (!fn) {
		moirai__tld.busy++;
		fn = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
		moirai__tld.busy--;
	}
	return fn ? fn(p) : 0;
}

void *realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (!p)
		return alloc_fast(size);
	if (!moirai__seg_of(p) && !moirai__alloc_owns_range(p))
		return __libc_realloc(p, size);
	if (size == 0) {
		free_inline(p);
		return NULL;
	}
	if (moirai_likely(!moirai__tld.busy))
		return moirai_realloc(p, size);
	/* Inside a slow path: the new block comes from glibc. */
	old = moirai_usable_size(p);
	if (old == 0) {
		errno = EINVAL;
		return NULL;
	}
	q = __libc_malloc(size);
	if (q) {
		memcpy(q, p, old < size ? old : size);
		free_inline(p);
	}
	return q;
}

void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

/* memalign's rules: below 16 is 16, a non-power of two rounds up. */
static void *aligned(size_t align, size_t size)
{
	if (align <= MIN_ALIGN)
		return alloc_fast(size);
	if (align & (align - 1)) {
		if (align > MAX_ALIGN) {
			errno = EINVAL;
			return NULL;
		}
		align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
	}
	return alloc_slow(size, align);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	int saved = errno;
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = aligned(align, size);
	if (!p) {
		int rc = errno == EINVAL ? EINVAL : ENOMEM;

		errno = saved;
		return rc;
	}
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
	return aligned(align, size);
}

void *memalign(size_t align, size_t size)
{
	return aligned(align, size);
}

static size_t page_size(void)
{
	static size_t page;

	if (!page)
		page = (size_t)sysconf(_SC_PAGESIZE);
	return page;
}

void *valloc(size_t size)
{
	return aligned(page_size(), size);
}

void *pvalloc(size_t size)
{
	size_t page = page_size();

	if (size > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned(page, size ? moirai__align_up(size, page) : page);
}

size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (!moirai__seg_of(p) && !moirai__alloc_owns_range(p))
		return libc_usable_size(p);
	return moirai_usable_size(p);
}

/* ---- C++ operator new and delete ---------------------------------- */

/*
 * The standard loop: on failure call the new_handler and try again; with
 * none, throw std::bad_alloc (through libstdc++'s __throw_bad_alloc, so
 * this file stays C) or, for nothrow, return NULL.  The unwinder crosses
 * these C frames through their .eh_frame (-fexceptions).
 */
static __attribute__((noinline)) void *new_slow(size_t size, size_t align, bool nothrow)
{
	for (;;) {
		void *p = align <= MIN_ALIGN ? alloc_fast(size) : aligned(align, size);
		new_handler_fn h;

		if (p)
			return p;
		h = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
		if (!h) {
			if (nothrow)
				return NULL;
			if (_ZSt17__throw_bad_allocv)
				_ZSt17__throw_bad_allocv();
			moirai__debug_report("operator new: out of memory", NULL, size);
		}
		h();
	}
}

static inline void *new_fast(size_t size)
{
	void *p = moirai__bin_pop_local(size);

	return moirai_likely(p != NULL) ? p : new_slow(size, 0, false);
}

/* Mangled names: the Itanium C++ ABI of libstdc++'s operators. */
DROPIN_API void *_Znwm(size_t size);
DROPIN_API void *_Znam(size_t size);
DROPIN_API void *_ZnwmRKSt9nothrow_t(size_t size, const void *tag);
DROPIN_API void *_ZnamRKSt9nothrow_t(size_t size, const void *tag);
DROPIN_API void *_ZnwmSt11align_val_t(size_t size, size_t align);
DROPIN_API void *_ZnamSt11align_val_t(size_t size, size_t align);
DROPIN_API void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag);
DROPIN_API void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag);
DROPIN_API void _ZdlPv(void *p);
DROPIN_API void _ZdaPv(void *p);
DROPIN_API void _ZdlPvm(void *p, size_t size);
DROPIN_API void _ZdaPvm(void *p, size_t size);
DROPIN_API void _ZdlPvRKSt9nothrow_t(void *p, const void *tag);
DROPIN_API void _ZdaPvRKSt9nothrow_t(void *p, const void *tag);
DROPIN_API void _ZdlPvSt11align_val_t(void *p, size_t align);
DROPIN_API void _ZdaPvSt11align_val_t(void *p, size_t align);
DROPIN_API void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align);
DROPIN_API void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align);
DROPIN_API void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag);
DROPIN_API void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag);

void *_Znwm(size_t size)
{
	return new_fast(size);
}

void *_Znam(size_t size)
{
	return new_fast(size);
}

void *_ZnwmRKSt9nothrow_t(size_t size, const void *tag)
{
	(void)tag;
	return new_slow(size, 0, true);
}

void *_ZnamRKSt9nothrow_t(size_t size, const void *tag)
{
	(void)tag;
	return new_slow(size, 0, true);
}

void *_ZnwmSt11align_val_t(size_t size, size_t align)
{
	return new_slow(size, align, false);
}

void *_ZnamSt11align_val_t(size_t size, size_t align)
{
	return new_slow(size, align, false);
}

void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag)
{
	(void)tag;
	return new_slow(size, align, true);
}

void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag)
{
	(void)tag;
	return new_slow(size, align, true);
}

void _ZdlPv(void *p)
{
	free_inline(p);
}

void _ZdaPv(void *p)
{
	free_inline(p);
}

void _ZdlPvm(void *p, size_t size)
{
	(void)size;
	free_inline(p);
}

void _ZdaPvm(void *p, size_t size)
{
	(void)size;
	free_inline(p);
}

void _ZdlPvRKSt9nothrow_t(void *p, const void *tag)
{
	(void)tag;
	free_inline(p);
}

void _ZdaPvRKSt9nothrow_t(void *p, const void *tag)
{
	(void)tag;
	free_inline(p);
}

void _ZdlPvSt11align_val_t(void *p, size_t align)
{
	(void)align;
	free_inline(p);
}

void _ZdaPvSt11align_val_t(void *p, size_t align)
{
	(void)align;
	free_inline(p);
}

void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align)
{
	(void)size;
	(void)align;
	free_inline(p);
}

void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align)
{
	(void)size;
	(void)align;
	free_inline(p);
}

void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
	(void)tag;
	(void)align;
	free_inline(p);
}

void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
	(void)tag;
	(void)align;
	free_inline(p);
}
