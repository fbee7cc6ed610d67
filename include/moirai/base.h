/**
 * @file moirai/base.h
 * @brief Plumbing shared by every moirai module: export macro, error codes
 * and messages, the options table, logging, cache-line helpers and clocks.
 *
 * Design: every action returns 0 or a negative errno value; the detail of
 * the last failure on the calling thread is kept as text and read with
 * moirai_last_error().  Tunables live in one table (enum moirai_option),
 * each with a default and a MOIRAI_<NAME> environment override that is
 * read once, the first time any option is read.
 */
#ifndef MOIRAI_BASE_H
#define MOIRAI_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a symbol exported from libmoirai.so (built -fvisibility=hidden). */
#define MOIRAI_API __attribute__((visibility("default")))

/** Size of a cache line on the targets moirai supports (x86-64). */
#define MOIRAI_CACHE_LINE 64

/** Aligns a struct member or object to its own cache line. */
#define MOIRAI_CACHE_ALIGNED __attribute__((aligned(MOIRAI_CACHE_LINE)))

/** "Any NUMA node": let moirai choose, normally the caller's node. */
#define MOIRAI_NODE_ANY (-1)

#define moirai_likely(x)   __builtin_expect(!!(x), 1)
#define moirai_unlikely(x) __builtin_expect(!!(x), 0)

/** Prefetch the cache line at @p p for reading into all cache levels. */
#define moirai_prefetch(p) __builtin_prefetch((p), 0, 3)
/** Prefetch the cache line at @p p for writing. */
#define moirai_prefetch_w(p) __builtin_prefetch((p), 1, 3)

/**
 * Library version as "MAJOR.MINOR.PATCH".
 * @return a static string. Thread-safe.
 */
MOIRAI_API const char *moirai_version(void);

/**
 * Text for an error code returned by any moirai function.
 * @param err a negative errno value (a positive one is accepted as well).
 * @return a static string, never NULL. Thread-safe.
 */
MOIRAI_API const char *moirai_strerror(int err);

/**
 * Detail of the last failure on the calling thread, e.g.
 * "topology: cannot parse synthetic description 'nuam:2'".
 * @return a thread-local string, empty when no failure was recorded; valid
 *         until the next moirai call on this thread. Thread-safe.
 */
MOIRAI_API const char *moirai_last_error(void);

/**
 * Forget the calling thread's last error message. Thread-safe.
 */
MOIRAI_API void moirai_clear_error(void);

/** Every tunable. Each has a row in lib/options.c and an env override. */
enum moirai_option {
	MOIRAI_OPT_TOPOLOGY, /**< MOIRAI_TOPOLOGY: XML path or synthetic description instead of the live machine ("" = live) */
	MOIRAI_OPT_WORKERS,   /**< MOIRAI_WORKERS: worker count, 0 = one per usable core */
	MOIRAI_OPT_LOG_LEVEL, /**< MOIRAI_LOG_LEVEL: 0 errors, 1 warnings, 2 info, 3 debug */
	MOIRAI_OPT_DEBUG, /**< MOIRAI_DEBUG: 1 = debug checks (poisoning, double-free detection) */
	MOIRAI_OPT_HUGEPAGES, /**< MOIRAI_HUGEPAGES: arena page mode "auto", "hugetlb", "thp" or "none" */
	MOIRAI_OPT_ARENA_RESERVE, /**< MOIRAI_ARENA_RESERVE: address space reserved per node arena, bytes */
	MOIRAI_OPT_ARENA_CHUNK, /**< MOIRAI_ARENA_CHUNK: commit granule of an arena, bytes */
	MOIRAI_OPT_DECOMMIT_THRESHOLD, /**< MOIRAI_DECOMMIT_THRESHOLD: free bytes a heap keeps before returning pages */
	MOIRAI_OPT_TCACHE_MAX, /**< MOIRAI_TCACHE_MAX: blocks per size class in a thread cache (small classes: at least 64 KiB worth, at most 1024) */
	MOIRAI_OPT_SPIN_NS, /**< MOIRAI_SPIN_NS: how long a waiting channel endpoint spins before yielding */
	MOIRAI_OPT__COUNT
};

/**
 * Read an integer option (the default, the env override, or a value set
 * with moirai_option_set()).
 * @param opt the option.
 * @return its value; 0 for an unknown option or a string option.
 * Thread-safe.
 */
MOIRAI_API long moirai_option_get(enum moirai_option opt);

/**
 * Read a string option.
 * @param opt the option.
 * @return its value, never NULL ("" for an unknown option). The string stays
 *         valid until the option is set again. Thread-safe for reading.
 */
MOIRAI_API const char *moirai_option_get_str(enum moirai_option opt);

/**
 * Set an integer option from code, overriding default and environment.
 * @param opt the option.
 * @param value the new value.
 * @return 0; -EINVAL for an unknown option, a string option, or a value out
 *         of the option's range. Not safe concurrently with readers of the
 *         same option: set options before starting moirai objects.
 */
MOIRAI_API int moirai_option_set(enum moirai_option opt, long value);

/**
 * Set a string option from code (integers are parsed from text, so this
 * also sets integer options: "64M", "2G" and "4096" are accepted for sizes).
 * @param opt the option.
 * @param value the new value (copied).
 * @return 0; -EINVAL for an unknown option or unparsable value; -ENOMEM.
 *         Not safe concurrently with readers of the same option.
 */
MOIRAI_API int moirai_option_set_str(enum moirai_option opt, const char *value);

/**
 * Name of an option ("topology"), or NULL for an unknown one.
 * @param opt the option. Thread-safe.
 */
MOIRAI_API const char *moirai_option_name(enum moirai_option opt);

/**
 * Monotonic clock in nanoseconds (CLOCK_MONOTONIC, through the vDSO).
 * Out of line so the public headers need no POSIX feature macros.
 * @return nanoseconds since an arbitrary start. Thread-safe.
 */
MOIRAI_API uint64_t moirai_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_BASE_H */
