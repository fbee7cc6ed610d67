/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal plumbing shared by every module of the library: error recording,
 * logging, debug assertions and small compile-time helpers.  This is the one
 * private header that crosses module lines, because plumbing is the layer
 * under all of them; module-private headers (numa/numa_int.h, ...) stay
 * inside their module.  Never installed.
 */
#ifndef MOIRAI_INTERNAL_H
#define MOIRAI_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#define MOIRAI_HIDDEN __attribute__((visibility("hidden")))

#define moirai__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define MOIRAI_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Round @x up to a multiple of @a, a power of two (any unsigned type). */
#define moirai__align_up(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
/* Whether @x is a non-zero power of two. */
#define moirai__is_pow2(x) ((x) != 0 && ((x) & ((x)-1)) == 0)

/*
 * Ticks: a cheap clock for durations (lib/clock.c).  Call
 * moirai__ticks_init() once before relying on them (until then, and on
 * CPUs without an invariant TSC, ticks are CLOCK_MONOTONIC nanoseconds).
 */
__extension__ typedef unsigned __int128 moirai__u128;

struct moirai__tick_scale {
	bool tsc;
	uint32_t shift;
	uint64_t mult; /* ns = ticks * mult >> shift */
};
extern struct moirai__tick_scale moirai__ticks_scale;
void moirai__ticks_init(void);

static inline uint64_t moirai__ticks(void)
{
	return moirai__ticks_scale.tsc ? __builtin_ia32_rdtsc() : moirai_now_ns();
}

static inline uint64_t moirai__ticks_to_ns(uint64_t ticks)
{
	if (!moirai__ticks_scale.tsc)
		return ticks;
	return (uint64_t)(((moirai__u128)ticks * moirai__ticks_scale.mult) >>
			  moirai__ticks_scale.shift);
}

static inline uint64_t moirai__ns_to_ticks(uint64_t ns)
{
	if (!moirai__ticks_scale.tsc || !moirai__ticks_scale.mult)
		return ns;
	return (uint64_t)(((moirai__u128)ns << moirai__ticks_scale.shift) /
			  moirai__ticks_scale.mult);
}

/* Tell the CPU we are spinning (frees the sibling hyperthread's pipeline). */
static inline void moirai__cpu_relax(void)
{
	__builtin_ia32_pause();
}

/*
 * Record a failure for moirai_last_error() and hand back the code, so a
 * slow path can end with `return moirai__err(-EINVAL, "ring: ...", ...)`.
 * The message is also logged at debug level.
 */
int moirai__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum moirai__log_level {
	MOIRAI_LOG_ERROR = 0,
	MOIRAI_LOG_WARN = 1,
	MOIRAI_LOG_INFO = 2,
	MOIRAI_LOG_DEBUG = 3,
};

/* Log to stderr when @level is at or below the MOIRAI_LOG_LEVEL option. */
void moirai__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Tests: hand every line moirai__log() is given, whatever its level and
 * before the level filter, to @fn(level, line, @arg) as well (NULL: stop).
 * Called on the logging thread, so @fn must be thread-safe; a hook being
 * removed may still be called once by a thread already inside.
 */
void moirai__log_set_hook(void (*fn)(int level, const char *line, void *arg), void *arg);

/*
 * Whether @opt was given a value (environment or moirai_option_set*())
 * rather than left at its default, for a module that treats an explicit
 * setting differently from its default (the arena reservation).
 */
bool moirai__option_is_set(enum moirai_option opt);

/*
 * Parse a size such as "4096", "64K", "2M", "1G" into bytes.
 * Returns 0 or -EINVAL (garbage, negative or overflowing values).
 */
int moirai__parse_size(const char *text, long *out);

/*
 * Internal invariants, never input checks.  Evaluated only in DEBUG builds
 * (every sanitizer build and `make DEBUG=1`); otherwise the dead branch keeps
 * the walker functions referenced without calling them.
 */
#ifdef DEBUG
#define moirai_assert_internal(cond) assert(cond)
#else
#define moirai_assert_internal(cond)  \
	do {                          \
		if (0)                \
			(void)(cond); \
	} while (0)
#endif

#endif /* MOIRAI_INTERNAL_H */
