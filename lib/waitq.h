/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one futex wait/wake of the library (an event count): channels, the
 * shared-memory transport and the runtime's parked workers all sleep on it,
 * so the lost-wake-up argument is made once, here.
 *
 * A waiter announces itself, re-checks its condition, then sleeps; a waker
 * makes the condition true, then wakes only if someone announced:
 *
 *   waiter                                  waker
 *   key = moirai__waitq_prepare(wq)         make the condition true   (S)
 *     (seq snapshot, waiters++   (A),       moirai__waitq_notify(wq):
 *      seq_cst fence             (F2))        seq_cst fence            (F1)
 *   re-check the condition       (C)          w = waiters              (B)
 *   moirai__waitq_park(wq, key, ...)          if w: seq++, FUTEX_WAKE
 *   moirai__waitq_finish(wq)   (waiters--)
 *
 * F1 and F2 are ordered in the single total order of seq_cst fences.  If
 * F1 comes first, the re-check (C) sees the store (S) and the waiter does
 * not sleep.  If F2 comes first, the load (B) sees the increment (A) and
 * the waker wakes; the waiter's seq snapshot, sequenced before F2, cannot
 * see the bump sequenced after F1, so FUTEX_WAIT either finds seq changed
 * and returns at once or is queued before the wake.  A waker that finds no
 * waiter writes nothing and makes no system call, so the common case costs
 * one fence and one load of a line only sleepers write.
 *
 * The words may live in memory another process can write (the shm
 * transport): nothing here trusts them beyond "a futex call returns";
 * callers bound every sleep with a deadline or a slice.
 */
#ifndef MOIRAI_WAITQ_H
#define MOIRAI_WAITQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

struct moirai__waitq {
	_Atomic uint32_t seq;	  /* futex word: bumped by wakers */
	_Atomic uint32_t waiters; /* parties between prepare and finish */
};

static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "futex word must be a plain int");

/* Futex scope: process-private (default) or shared through a mapping. */
#define MOIRAI__WAITQ_SHARED 1u

/*
 * Full (seq_cst) fence of the protocol above.  GCC rejects
 * atomic_thread_fence under -fsanitize=thread (-Wtsan: TSan does not model
 * fences); what this fence orders are atomics TSan checks anyway, so only
 * that warning is silenced, only here.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
static inline void moirai__full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}
#pragma GCC diagnostic pop
#else
static inline void moirai__full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}
#endif

static inline void moirai__waitq_init(struct moirai__waitq *wq)
{
	atomic_init(&wq->seq, 0);
	atomic_init(&wq->waiters, 0);
}

/* (A) and F2 above; returns the key for moirai__waitq_park(). */
static inline uint32_t moirai__waitq_prepare(struct moirai__waitq *wq)
{
	/* Acquire pairs with the release bump in moirai__waitq_wake(). */
	uint32_t key = atomic_load_explicit(&wq->seq, memory_order_acquire);

	atomic_fetch_add_explicit(&wq->waiters, 1, memory_order_relaxed);
	moirai__full_fence();
	return key;
}

/* Ends what prepare began, whether or not the caller slept. */
static inline void moirai__waitq_finish(struct moirai__waitq *wq)
{
	atomic_fetch_sub_explicit(&wq->waiters, 1, memory_order_relaxed);
}

/*
 * Whether anyone is between prepare and finish.  Only meaningful after the
 * caller's own full fence (F1), which moirai__waitq_notify() issues; a
 * caller checking several queues after one fence uses this directly.
 */
static inline bool moirai__waitq_has_waiters(const struct moirai__waitq *wq)
{
	return atomic_load_explicit(&wq->waiters, memory_order_relaxed) != 0;
}

/* Bump seq and wake up to @n sleepers (INT_MAX: all). */
void moirai__waitq_wake(struct moirai__waitq *wq, int n, unsigned flags);

/* F1, B and the wake above: returns whether a wake-up was issued. */
static inline bool moirai__waitq_notify(struct moirai__waitq *wq, int n, unsigned flags)
{
	moirai__full_fence();
	if (!moirai__waitq_has_waiters(wq))
		return false;
	moirai__waitq_wake(wq, n, flags);
	return true;
}

/*
 * Sleep while seq == @key, until woken, a signal, or @deadline (absolute
 * CLOCK_MONOTONIC ns; 0 = none).  Returns 0 (woken, seq moved or
 * interrupted: re-check) or -ETIMEDOUT (the deadline passed).
 */
int moirai__waitq_park(struct moirai__waitq *wq, uint32_t key, uint64_t deadline, unsigned flags);

/*
 * Validate a per-call timeout (0 try once, MOIRAI_TIMEOUT_FOREVER, > 0 ns)
 * and turn it into an absolute deadline (0 = none).  Records "@who: ..."
 * and returns -EINVAL for anything below -1.
 */
int moirai__timeout_deadline(const char *who, int64_t timeout_ns, uint64_t *deadline);

/*
 * The spin, yield, park loop every blocking call shares.  @attempt returns
 * non-zero to end the wait (a count or a -errno, handed back as is) and 0
 * to keep waiting; it must be safe to call again after a wake-up.
 */
struct moirai__wait {
	int (*attempt)(void *ctx);
	void *ctx;
	struct moirai__waitq *wq;
	uint64_t spin_ns;	 /* poll this long before sleeping (0: sleep at once) */
	uint64_t yield_after_ns; /* pure spin this long, then sched_yield between polls */
	uint64_t slice_ns;	 /* longest single sleep (0: until the deadline) */
	/* Called after a sleep slice that ended without a wake-up, e.g. to
	 * check a peer process is alive; non-zero ends the wait. NULL: none. */
	int (*silent)(void *ctx);
	unsigned flags;		 /* MOIRAI__WAITQ_SHARED */
	_Atomic uint64_t *parks; /* counted per sleep (may be NULL) */
};

/*
 * Wait until @w->attempt returns non-zero or @deadline (absolute ns, 0 =
 * none) passes: returns what attempt returned, or -ETIMEDOUT.
 */
int moirai__wait(const struct moirai__wait *w, uint64_t deadline);

#endif /* MOIRAI_WAITQ_H */
