/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/rt_inline.h
 * @brief Worker-context fast paths of the runtime: which worker am I,
 *        should this task yield.  Include moirai/rt.h instead.
 *
 * Both read one thread-local block the worker sets up when it starts; a
 * foreign thread's block is all zero.  The layout is public only so these
 * can inline; treat every field as private.
 */
#ifndef MOIRAI_RT_INLINE_H
#define MOIRAI_RT_INLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Per-thread runtime context (private layout). */
struct moirai__rt_tls {
	int worker_plus1;	    /**< worker index + 1; 0 on a foreign thread */
	uint32_t yield_checks;	    /**< calls since the last clock read */
	const uint32_t *yield_word; /**< set by others when this worker should yield */
};

#ifdef __cplusplus
#define MOIRAI__THREAD_LOCAL thread_local
#else
#define MOIRAI__THREAD_LOCAL _Thread_local
#endif

/** The calling thread's context (defined in rt/; private layout). */
MOIRAI_API extern MOIRAI__THREAD_LOCAL struct moirai__rt_tls moirai_rt_tls;

/**
 * Whether the running task has used up the runtime's task budget
 * (config.task_budget_ns): the clock half of moirai_rt_should_yield().
 * @return true when over budget; false on a foreign thread or between
 *         tasks.  Thread-safe (reads the caller's own worker).
 */
MOIRAI_API bool moirai_rt_budget_spent(void);

/**
 * Index of the worker the caller runs on.
 * @return 0..workers-1, or -1 on a thread that is not a moirai worker.
 *         Thread-safe (a thread-local read).
 */
static inline int moirai_rt_self(void)
{
	return moirai_rt_tls.worker_plus1 - 1;
}

/**
 * Whether the running task should return soon (with MOIRAI_TASK_CONTINUE
 * to be resumed later): true when work of a higher priority than the
 * task's is waiting for this worker, or when the task has run longer than
 * the runtime's task budget (config.task_budget_ns).  Cheap enough to call
 * in an inner loop: one thread-local load and one load of a word only
 * other threads write, plus a clock read every 32nd call (Seastar's
 * need_preempt() idea).  Always false on a foreign thread.
 * @return true to yield.  Thread-safe.
 */
static inline bool moirai_rt_should_yield(void)
{
	struct moirai__rt_tls *t = &moirai_rt_tls;

	if (moirai_unlikely(t->yield_word == NULL))
		return false;
	/* Relaxed: a hint; the writer's next store is seen soon enough. */
	if (__atomic_load_n(t->yield_word, __ATOMIC_RELAXED))
		return true;
	if (moirai_likely(++t->yield_checks & 31))
		return false;
	return moirai_rt_budget_spent();
}

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_RT_INLINE_H */
