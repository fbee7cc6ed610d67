/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/base.h
 * @brief Plumbing shared by every moirai module: export macro, error codes
 * and messages, the options table, logging, cache-line helpers and clocks.
 *
 * Design: every action returns 0 or a negative errno value; the detail of
 * the last failure on the calling thread is kept as text and read with
 * moirai_last_error().  Tunables live in one table (enum moirai_option),
 * each with a default and a `MOIRAI_<NAME>` environment override that is
 * read once, the first time any option is read.
 *
 * One vocabulary across modules:
 * - A parameter or field called @c node is an OS NUMA node number (what
 *   numactl takes); a logical index into a topology is called @c node_idx.
 *   Likewise @c pu is an OS CPU number, @c pu_idx a logical one.
 * - Node errors: -ENODEV the node does not exist (or has no memory);
 *   -EPERM it exists but the cgroup (cpuset.mems) does not allow it.
 * - Arguments come in one order: what (name, element size, count), then
 *   where (node), then how (flags), then the out pointer.
 * - Bulk calls move all @c n items or none; burst calls move 0..n.
 * - Blocking calls take @c timeout_ns: MOIRAI_TIMEOUT_TRY (0) tries once
 *   (-EAGAIN), MOIRAI_TIMEOUT_FOREVER (-1) waits as long as it takes, a
 *   positive value waits at most that long (-ETIMEDOUT); anything below -1
 *   is -EINVAL, checked before anything else happens.
 * - Name limits are *_NAME_MAX characters, not counting the NUL.
 * - Flags are `MOIRAI_<MODULE>_F_<NAME>`.
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

/** timeout_ns: try once, never wait. */
#define MOIRAI_TIMEOUT_TRY ((int64_t)0)
/** timeout_ns: wait as long as it takes. */
#define MOIRAI_TIMEOUT_FOREVER ((int64_t)-1)

/** Branch hint: @p x is expected true (the fast path); evaluates to !!(x). */
#define moirai_likely(x) __builtin_expect(!!(x), 1)
/** Branch hint: @p x is expected false (an error or slow path); evaluates to !!(x). */
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
 * Text for an error code returned by any moirai function: the C library's
 * description of the errno value (strerrordesc_np), "success" for 0, and
 * "unknown error" for a value the C library does not know.  The text is
 * generic ("No such device"); what exactly was wrong is in
 * moirai_last_error().
 * @param err a negative errno value (a positive one is accepted as well).
 * @return a static string, never NULL. Thread-safe.
 */
MOIRAI_API const char *moirai_strerror(int err);

/**
 * Detail of the last failure on the calling thread, e.g.
 * "topology: cannot parse synthetic description 'nuam:2'".  Every public
 * function that returns an error (or NULL with errno) records one; a
 * successful call does not clear it.  Normal outcomes that are not
 * failures (-EAGAIN from a try, -ETIMEDOUT, -EPIPE at end of stream, an
 * empty pool, a shared-memory segment with every buffer in use) record
 * nothing, so they stay cheap on the fast path.
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
	MOIRAI_OPT_SPIN_NS, /**< MOIRAI_SPIN_NS: how long a waiting channel endpoint (or an idle runtime worker) spins before sleeping */
	MOIRAI_OPT_RT_IDLE, /**< MOIRAI_RT_IDLE: what an idle runtime worker does after spinning: "park" or "spin" */
	MOIRAI_OPT_RT_MAILBOX, /**< MOIRAI_RT_MAILBOX: slots of each runtime mailbox ring (power of two) */
	MOIRAI_OPT_RT_TASKS,	/**< MOIRAI_RT_TASKS: task descriptors per NUMA node */
	MOIRAI_OPT_RT_STUCK_MS, /**< MOIRAI_RT_STUCK_MS: stuck-task threshold in ms, 0 = no detector */
	MOIRAI_OPT_RT_BUDGET_US, /**< MOIRAI_RT_BUDGET_US: task run time after which moirai_rt_should_yield() is true, us */
	MOIRAI_OPT_RT_PREFETCH, /**< MOIRAI_RT_PREFETCH: 1 = prefetch the next task descriptor before running one, 0 = off */
	MOIRAI_OPT_RT_STATS, /**< MOIRAI_RT_STATS: publish runtime stats for moirai-top: "" or "0" off, "1" a segment named after the process, else the segment name */
	MOIRAI_OPT_RT_STATS_MS, /**< MOIRAI_RT_STATS_MS: how often the runtime publishes its stats, ms */
	MOIRAI_OPT_RT_STATS_DIR, /**< MOIRAI_RT_STATS_DIR: directory of the stats segments ("" = /dev/shm) */
	MOIRAI_OPT_FAULT, /**< MOIRAI_FAULT: fault injection, "" off or "SITE=N,..." (enum moirai_fault_site) */
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
 * @return 0; -EINVAL for an unknown option, an unparsable or out-of-range
 *         value, or a string not among the option's values (hugepages:
 *         auto, hugetlb, thp, none; rt_idle:
 *         park, spin), or a fault specification that does not parse
 *         (moirai_last_error() says why); -ENOMEM.  Not safe concurrently with
 *         readers of the same option.
 */
MOIRAI_API int moirai_option_set_str(enum moirai_option opt, const char *value);

/**
 * Name of an option ("topology"): its row in the options table, the
 * environment variable without the MOIRAI_ prefix, in lower case.
 * @param opt the option.
 * @return a static string; NULL for an unknown option. Thread-safe.
 */
MOIRAI_API const char *moirai_option_name(enum moirai_option opt);

/**
 * Fault-injection sites.  The MOIRAI_FAULT option ("" = off) arms them:
 * "arena_commit=N,pool_get=N,ring_enqueue=N", any subset, makes every Nth
 * call of each named site (counted over all threads from the moment the
 * option is read or set) fail the way the real failure does, so that the
 * callers' own error paths run (moirai-stress uses it; docs/stress.md).
 * Set it before creating the objects it should affect.  When off, each
 * site costs one test of a global word.
 */
enum moirai_fault_site {
	/** A node arena commit fails with -ENOMEM: the allocation that needed
	 *  it returns NULL with errno ENOMEM (or its create -ENOMEM). */
	MOIRAI_FAULT_ARENA_COMMIT = 0,
	/** A pool get fails with -ENOENT, as from an empty pool (caches made
	 *  while it is armed send every get and put through the out-of-line
	 *  path, so cache hits count too). */
	MOIRAI_FAULT_POOL_GET = 1,
	/** A ring enqueue through the exported (out-of-line) ring calls moves
	 *  nothing, as into a full ring.  Not the library's own rings (channels,
	 *  pools, runtime mailboxes) nor fast paths a program inlines with
	 *  MOIRAI_RING_INLINE. */
	MOIRAI_FAULT_RING_ENQUEUE = 2,
	MOIRAI_FAULT__COUNT /**< number of sites */
};

/**
 * Faults injected at @p site since the process started (cumulative across
 * changes of MOIRAI_FAULT).
 * @param site the site.
 * @return the count; 0 for a value that is not a site.  Thread-safe.
 */
MOIRAI_API uint64_t moirai_fault_injected(enum moirai_fault_site site);

/**
 * Name of a fault site, as MOIRAI_FAULT spells it ("arena_commit").
 * @param site the site.
 * @return a static string; NULL for a value that is not a site.
 *         Thread-safe.
 */
MOIRAI_API const char *moirai_fault_site_name(enum moirai_fault_site site);

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
