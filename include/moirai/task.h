/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/task.h
 * @brief Tasks on the runtime: spawn with a priority and an affinity,
 *        join with a timeout, cancel, groups, strict per-worker messages,
 *        and data-parallel loops.  Include moirai/rt.h.
 *
 * Design: a task is a function and an argument, run to completion on some
 * worker (several times, if it returns MOIRAI_TASK_CONTINUE).  Its
 * descriptor comes from a pool on the node it is queued on, through the
 * submitting worker's cache: spawning never calls malloc.  A spawn from a
 * worker pushes onto that worker's own deque (no atomic read-modify-write);
 * a spawn from another thread goes through a worker's mailbox (one ring
 * enqueue, plus a futex wake only if that worker sleeps).
 *
 * Affinity (struct moirai_spawn_opts): none (the spawning worker itself,
 * or from another thread a spinning worker or the next one in turn), a
 * worker or a node as a hint (queued there, but idle siblings may steal
 * it), or strict (MOIRAI_SPAWN_F_STRICT: only that worker, or only the
 * workers of that node, ever run it).
 *
 * Handles: spawn returns a handle unless the caller passes NULL (detached:
 * the runtime frees everything when the task ends).  A handle is given
 * back exactly once, by a moirai_task_join() or moirai_task_try_join()
 * that returns 0, or by moirai_task_detach().  A handle used after that is
 * refused with -EINVAL: the descriptor carries a generation the handle
 * must match (1 in 128 reuses of one descriptor is not detectable).
 *
 * Joining from a worker does not block it: the worker runs other tasks
 * (its own newest first, then steals) until the joined task is done, so
 * fork-join recursion (fib, quicksort) keeps every worker busy.  Meanwhile
 * it does not age its levels, run its pollers and timers, or report a
 * quiescent state (moirai/rt.h): all of that waits for the join to return.
 * Joining from another thread sleeps on the task.
 */
#ifndef MOIRAI_TASK_H
#define MOIRAI_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct moirai_rt;
/** Opaque task handle. */
struct moirai_task;
/** Opaque task group. */
struct moirai_group;

/**
 * A task body.  Returns the task's status (what join reports: 0 for
 * success and a negative errno for failure by convention), or
 * MOIRAI_TASK_CONTINUE to be run again later: the task goes behind the
 * work already waiting at its level on the same worker.
 */
typedef int (*moirai_task_fn)(void *arg);

/** Task status meaning "run me again later" (see moirai_rt_should_yield()). */
#define MOIRAI_TASK_CONTINUE (-0x7fff0001)

/** Spawn flag: use @c worker as the affinity. */
#define MOIRAI_SPAWN_F_WORKER 0x1u
/** Spawn flag: use @c node as the affinity. */
#define MOIRAI_SPAWN_F_NODE 0x2u
/** Spawn flag: the worker/node affinity is strict, not a hint. */
#define MOIRAI_SPAWN_F_STRICT 0x4u

/** Spawn options.  A zeroed struct (or NULL): normal priority, no affinity. */
struct moirai_spawn_opts {
	int prio;		    /**< enum moirai_prio (0 = normal) */
	unsigned flags;		    /**< MOIRAI_SPAWN_F_* */
	int worker;		    /**< with MOIRAI_SPAWN_F_WORKER: worker index */
	int node;		    /**< with MOIRAI_SPAWN_F_NODE: OS node (or MOIRAI_NODE_ANY:
				         the caller's node) */
	struct moirai_group *group; /**< count the task in this group (NULL: none) */
	const char *name;	    /**< for stuck reports (a static string), or NULL */
};

/**
 * Spawn a task.
 * @param rt the runtime.
 * @param fn the body (not NULL).
 * @param arg its argument.
 * @param opts options, NULL for defaults.
 * @param[out] task the handle, or NULL to detach the task.
 * @return 0; -EINVAL NULL rt or fn, bad priority or flags, both WORKER
 *         and NODE, a group of another runtime; -ERANGE bad worker index;
 *         -EINVAL a negative node other than MOIRAI_NODE_ANY; -ENODEV no
 *         worker of the runtime is on that node (a node of the plan's
 *         topology, which under virtual placement is the foreign one), or
 *         none may run the task; -EAGAIN the target mailbox is full or no
 *         task descriptor is left (counted in the stats, nothing queued:
 *         retry later); -ESHUTDOWN the runtime is stopping (spawns from
 *         its own tasks are still accepted while it drains).  Thread-safe.
 */
MOIRAI_API int moirai_rt_spawn(struct moirai_rt *rt, moirai_task_fn fn, void *arg,
			       const struct moirai_spawn_opts *opts, struct moirai_task **task);

/**
 * Run @p fn(@p arg) on worker @p worker and only there (SPDK's
 * spdk_thread_send_msg): a detached, strictly affine task at priority
 * @p prio.  Cost: one descriptor from the caller's pool cache and one
 * enqueue into the worker's strict mailbox (a moirai ring), plus a futex
 * wake-up only if that worker sleeps; from the worker itself, one local
 * push.
 * @param rt the runtime.
 * @param worker worker index, 0..worker_count-1.
 * @param prio enum moirai_prio.
 * @param fn the body (not NULL).
 * @param arg its argument.
 * @return as moirai_rt_spawn(); -ERANGE bad worker; -EINVAL also for a
 *         priority other than MOIRAI_PRIO_CRITICAL to a worker of the
 *         critical lane.  Thread-safe.
 */
MOIRAI_API int moirai_rt_send(struct moirai_rt *rt, int worker, int prio, moirai_task_fn fn,
			      void *arg);

/**
 * Wait for a task and give its handle back.  From a worker the wait runs
 * other tasks meanwhile (see the design block at the top of this file);
 * from another thread it sleeps.
 * @param task the handle from moirai_rt_spawn().
 * @param timeout_ns MOIRAI_TIMEOUT_TRY, MOIRAI_TIMEOUT_FOREVER, or ns.
 * @param[out] status the task's return value, -ECANCELED if it was
 *        cancelled before it started, -ESHUTDOWN if a stop cancelled it
 *        (may be NULL).
 * @return 0 (the handle is released); -EAGAIN not done and timeout 0;
 *         -ETIMEDOUT not done at the deadline (the handle stays valid);
 *         -EINVAL NULL, bad timeout, or a handle already given back.
 *         Thread-safe (one joiner per handle).
 */
MOIRAI_API int moirai_task_join(struct moirai_task *task, int64_t timeout_ns, int *status);

/**
 * moirai_task_join() with timeout MOIRAI_TIMEOUT_TRY.
 * @param task the handle from moirai_rt_spawn().
 * @param[out] status as for moirai_task_join() (may be NULL).
 * @return 0 done (handle released); -EAGAIN not done (the handle stays
 *         valid); -EINVAL NULL or a handle already given back.
 *         Thread-safe (one joiner per handle).
 */
MOIRAI_API int moirai_task_try_join(struct moirai_task *task, int *status);

/**
 * Give a handle back without waiting: the task runs (or stays cancelled)
 * and the runtime frees it when it ends.
 * @param task the handle from moirai_rt_spawn().
 * @return 0; -EINVAL NULL or a handle already given back.  Thread-safe.
 */
MOIRAI_API int moirai_task_detach(struct moirai_task *task);

/**
 * Cancel a task that has not started.  The handle stays valid: join it to
 * give it back (its status is -ECANCELED).
 * @param task the handle from moirai_rt_spawn().
 * @return 0 cancelled (it will never run); -EBUSY it is running (or is a
 *         continuation between runs); -EALREADY it has finished or was
 *         cancelled already; -EINVAL NULL or a handle already given back.
 *         Thread-safe.
 */
MOIRAI_API int moirai_task_cancel(struct moirai_task *task);

/**
 * Whether the task has finished (or was cancelled).
 * @param task the handle from moirai_rt_spawn().
 * @return true or false (false for an invalid handle).  Thread-safe.
 */
MOIRAI_API bool moirai_task_is_done(const struct moirai_task *task);

/* ---- Groups ------------------------------------------------------------ */

/**
 * Create a group: tasks spawned with opts.group = the group are counted,
 * and moirai_group_wait() waits for all of them and reports the first
 * error.  Tasks of a group may spawn more tasks into it.
 * @param rt the runtime whose tasks the group counts.
 * @param[out] out the group.
 * @return 0; -EINVAL NULL; -ENOMEM.  Thread-safe.
 */
MOIRAI_API int moirai_group_create(struct moirai_rt *rt, struct moirai_group **out);

/**
 * Wait until every task counted in @p group has finished (from a worker,
 * running other tasks meanwhile).
 * @param group the group.
 * @param timeout_ns MOIRAI_TIMEOUT_TRY, MOIRAI_TIMEOUT_FOREVER, or ns.
 * @param[out] first_error the status of the first task that finished with a
 *        non-zero status, or 0 (may be NULL).
 * @return 0 all done; -EAGAIN / -ETIMEDOUT some still pending; -EINVAL.
 *         Thread-safe.
 */
MOIRAI_API int moirai_group_wait(struct moirai_group *group, int64_t timeout_ns, int *first_error);

/**
 * Tasks of the group that have not finished (a snapshot).
 * @param group the group.
 * @return the count; 0 for NULL.  Thread-safe.
 */
MOIRAI_API unsigned moirai_group_pending(const struct moirai_group *group);

/**
 * Free a group.  Not safe concurrently with spawns into the group or with
 * moirai_group_wait() on it.
 * @param group the group; NULL is a no-op (returns 0).
 * @return 0; -EBUSY tasks of the group are still pending (nothing freed);
 *         -EINVAL not a live group.
 */
MOIRAI_API int moirai_group_destroy(struct moirai_group *group);

/* ---- Data-parallel loops ------------------------------------------------ */

/** Loop body: process [@p begin, @p end). */
typedef void (*moirai_for_fn)(size_t begin, size_t end, void *arg);

/**
 * Run @p fn over [@p begin, @p end) in chunks of at most @p grain indexes,
 * in parallel, and return when all are done.  The range is split by
 * recursive halving, so a thief takes the largest piece left.  With
 * @p opts naming a node (MOIRAI_SPAWN_F_NODE; e.g. the node of the data,
 * moirai_alloc_ptr_node()), the loop starts on that node's workers and
 * spreads to other nodes only by stealing.  From a worker the caller takes
 * part in the loop; from another thread it waits.
 * @param rt the runtime.
 * @param begin first index.
 * @param end one past the last index (begin == end does nothing).
 * @param grain largest chunk (0: the range over 8 x workers).
 * @param fn the body.
 * @param arg passed to @p fn.
 * @param opts priority and affinity of the loop's tasks (NULL: defaults).
 * @return 0; -EINVAL NULL rt or fn, begin > end, bad opts; the errors of
 *         moirai_rt_spawn() for the first chunk (later chunks that cannot be
 *         spawned run inline instead).  Thread-safe.
 */
MOIRAI_API int moirai_parallel_for(struct moirai_rt *rt, size_t begin, size_t end, size_t grain,
				   moirai_for_fn fn, void *arg,
				   const struct moirai_spawn_opts *opts);

/** How moirai_parallel_reduce() builds, fills and combines partial results. */
struct moirai_reduce_ops {
	size_t acc_size;		    /**< bytes of one accumulator */
	void (*init)(void *acc, void *arg); /**< identity value */
	void (*body)(size_t begin, size_t end, void *acc, void *arg); /**< fold a chunk in */
	void (*combine)(void *into, const void *from, void *arg);     /**< into = into (+) from */
};

/**
 * Fold [@p begin, @p end) into @p result with @p ops, in parallel, split as
 * moirai_parallel_for().  @p ops->combine must be associative; the result
 * equals the serial left-to-right fold when it is (chunks are combined in
 * index order).  Partial results above 64 bytes are allocated; without
 * memory for them a split folds its range serially instead of failing.
 * @param rt the runtime.
 * @param begin first index.
 * @param end one past the last index (begin == end leaves the identity).
 * @param grain largest chunk (0: the range over 8 x workers).
 * @param ops the accumulator size and the init, body and combine
 *        functions (none NULL).
 * @param arg passed to every function of @p ops.
 * @param result acc_size bytes, overwritten with the result.
 * @param opts priority and affinity of the loop's tasks (NULL: defaults).
 * @return 0; -EINVAL NULL argument, acc_size 0 or above 4096, begin > end;
 *         the errors of moirai_rt_spawn() for the first chunk.  Thread-safe.
 */
MOIRAI_API int moirai_parallel_reduce(struct moirai_rt *rt, size_t begin, size_t end, size_t grain,
				      const struct moirai_reduce_ops *ops, void *arg, void *result,
				      const struct moirai_spawn_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_TASK_H */
