/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/poller.h
 * @brief Run-to-completion pollers and caller-owned timers on runtime
 *        workers (SPDK's pollers and timed pollers).  Include moirai/rt.h.
 *
 * Design: a poller is a named function a worker calls from its step
 * function, either on every loop (period 0) or every @c period_ns; it
 * returns MOIRAI_POLL_BUSY when it found work and MOIRAI_POLL_IDLE when not.
 * A worker parks only after every poller on it reported idle, and while
 * parked it wakes up for the next timed poller or timer that is due.
 * Pollers run on their worker only, between tasks, in registration order.
 *
 * Event sources that signal through a file descriptor (a UCX worker, a
 * socket, an eventfd) give their poller a wake fd and an arm callback
 * (moirai_poller_set_wake()): before the worker parks it calls every arm
 * callback and then sleeps until a wake fd is readable, work is submitted
 * to it, or its next timer is due, so an arriving event wakes it.
 *
 * A timer is a caller-owned struct moirai_timer (no allocation), one-shot
 * or periodic, started on a worker and fired there by the step function
 * at or after its expiry (microsecond resolution: the step reads the clock
 * once per loop and a parked worker sleeps until the earliest expiry).  A
 * periodic timer is re-armed from its previous expiry, not from when it
 * ran, so it does not drift; if it falls more than a period behind, missed
 * expiries are skipped, not bunched.
 */
#ifndef MOIRAI_POLLER_H
#define MOIRAI_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct moirai_rt;
/** Opaque poller. */
struct moirai_poller;

/** Poller result: found and did work. */
#define MOIRAI_POLL_BUSY 1
/** Poller result: nothing to do. */
#define MOIRAI_POLL_IDLE 0

/** A poller body: MOIRAI_POLL_BUSY or MOIRAI_POLL_IDLE. */
typedef int (*moirai_poller_fn)(void *arg);

/** Poller flag: keep the worker awake (never park while registered). */
#define MOIRAI_POLLER_F_NO_PARK 0x1u

/** Longest poller name, not counting the NUL. */
#define MOIRAI_POLLER_NAME_MAX 31

/**
 * Register a poller on worker @p worker.  From that worker it takes effect
 * at once; from another thread, before the worker's next loop (the call
 * waits for it, so the poller exists when it returns).
 * @param rt the runtime.
 * @param worker worker index.
 * @param name 1..MOIRAI_POLLER_NAME_MAX characters (copied).
 * @param fn the body.
 * @param arg passed to @p fn.
 * @param period_ns 0 = every loop, else at most once per period.
 * @param flags MOIRAI_POLLER_F_*.
 * @param[out] out the poller.
 * @return 0; -EINVAL NULL, empty or too long name, unknown flags;
 *         -ERANGE bad worker; -ENOMEM; -ESHUTDOWN stopping; from another
 *         thread also the errors of moirai_rt_send() to @p worker (-EAGAIN
 *         mailbox full or no descriptor left).  Thread-safe.
 */
MOIRAI_API int moirai_poller_register(struct moirai_rt *rt, int worker, const char *name,
				      moirai_poller_fn fn, void *arg, uint64_t period_ns,
				      unsigned flags, struct moirai_poller **out);

/**
 * Unregister and free a poller.  Safe from inside the poller itself (it
 * is not called again and is freed after it returns), from another task
 * or poller of the worker, or from another thread (the call waits until
 * the worker is not running it).
 * @param p the poller; NULL is a no-op (returns 0).
 * @return 0; -EINVAL a poller already unregistered (detected while its
 *         memory is still the runtime's); from another thread, the errors
 *         of moirai_rt_send() to the poller's worker (-EAGAIN, -ESHUTDOWN:
 *         the poller stays registered).  Thread-safe.
 */
MOIRAI_API int moirai_poller_unregister(struct moirai_poller *p);

/** Most pollers with a wake fd on one worker. */
#define MOIRAI_POLLER_WAKE_MAX 8

/**
 * An arm callback (moirai_poller_set_wake()): called on the poller's
 * worker right before it parks, after every poller reported idle.
 * @param arg the argument given with the callback.
 * @return 0 armed: the wake fd will turn readable when there is work, so
 *         the worker may sleep; non-zero: work is already pending (the
 *         worker does not sleep and runs its pollers again).
 */
typedef int (*moirai_poller_arm_fn)(void *arg);

/**
 * Give a poller a wake fd: when its worker is about to park it calls
 * @p arm, and while parked it also wakes when @p fd is readable (ppoll).
 * The poller itself must consume what makes @p fd readable (or its arm
 * callback must then return non-zero), else the worker spins.  The fd
 * stays the caller's: unset it (@p fd < 0) or unregister the poller
 * before closing it.  Worker only: from the poller's own worker.
 * @param p the poller.
 * @param fd the file descriptor, or -1 to remove the wake fd.
 * @param arm the arm callback (may be NULL only when @p fd < 0).
 * @param arg passed to @p arm.
 * @return 0; -EINVAL NULL or unregistered poller, NULL @p arm, or not
 *         called from the poller's worker; -ENOSPC the worker has
 *         MOIRAI_POLLER_WAKE_MAX wake fds already; -EMFILE, -ENFILE,
 *         -ENOMEM the worker's eventfd could not be made.
 */
MOIRAI_API int moirai_poller_set_wake(struct moirai_poller *p, int fd, moirai_poller_arm_fn arm,
				      void *arg);

/**
 * Name of a poller.
 * @param p the poller.
 * @return the name as registered, valid while the poller is; "" for NULL
 *         or an unregistered poller.  Thread-safe.
 */
MOIRAI_API const char *moirai_poller_name(const struct moirai_poller *p);

/** Counters of one poller (a snapshot). */
struct moirai_poller_stats {
	uint64_t runs;	  /**< times called */
	uint64_t busy;	  /**< of which MOIRAI_POLL_BUSY */
	uint64_t busy_ns; /**< time in busy runs */
	uint64_t idle_ns; /**< time in idle runs */
};

/**
 * Read a poller's counters.
 * @param p the poller.
 * @param[out] out the counters (relaxed snapshots).
 * @return 0; -EINVAL NULL argument or an unregistered poller.
 *         Thread-safe while @p p is registered.
 */
MOIRAI_API int moirai_poller_stats_get(const struct moirai_poller *p,
				       struct moirai_poller_stats *out);

/* ---- Timers ---------------------------------------------------------- */

struct moirai_timer;

/** A timer callback, run on the timer's worker. */
typedef void (*moirai_timer_fn)(struct moirai_timer *timer, void *arg);

/**
 * A caller-owned timer.  The layout is public so it can be embedded and
 * allocated by the caller; treat the fields as private.  It must stay
 * valid while started (until it fires for the last time or is cancelled).
 */
struct moirai_timer {
	uint64_t expiry_ns; /**< absolute CLOCK_MONOTONIC ns */
	uint64_t period_ns; /**< 0 = one-shot */
	moirai_timer_fn fn; /**< callback */
	void *arg;	    /**< its argument */
	void *owner;	    /**< worker it is started on, or NULL */
	uint32_t heap_idx;  /**< position in the worker's timer heap */
	uint32_t state;	    /**< private */
	uint64_t fired;	    /**< times fired */
};

/**
 * Prepare a timer.  Must not be called on a started timer, nor
 * concurrently with any other call on @p t.
 * @param t the timer (caller-owned memory).
 * @param fn the callback.
 * @param arg passed to @p fn.
 * @return 0; -EINVAL NULL timer or fn.
 */
MOIRAI_API int moirai_timer_init(struct moirai_timer *t, moirai_timer_fn fn, void *arg);

/**
 * Start (or restart) @p t on the calling worker: first expiry in
 * @p delay_ns, then every @p period_ns (0 = one-shot).  Worker only: from a
 * foreign thread, send a task to the worker that starts it.  A callback
 * may restart or cancel its own timer.
 * @param t the timer, prepared with moirai_timer_init().
 * @param delay_ns time to the first expiry, from the worker's clock now.
 * @param period_ns 0 for a one-shot, else the period.
 * @return 0; -EINVAL NULL, not initialised, or not called from a worker;
 *         -EBUSY started on another worker (cancel it there first);
 *         -ENOMEM the worker's timer heap cannot grow.
 */
MOIRAI_API int moirai_timer_start(struct moirai_timer *t, uint64_t delay_ns, uint64_t period_ns);

/**
 * Cancel a timer on the worker it runs on (worker only).
 * @param t the timer.
 * @return 0 cancelled; -EALREADY not started, or a one-shot that already
 *         fired (checked first, so from any thread); -EINVAL NULL, or
 *         called from another worker or thread while it is pending.
 */
MOIRAI_API int moirai_timer_cancel(struct moirai_timer *t);

/**
 * Whether the timer is started (pending).  A timer still pending when its
 * runtime is destroyed is left not pending (idle, never fired again): the
 * caller may then free it or start it on another runtime.
 * @param t the timer.
 * @return true while it is pending; false for NULL.  Thread-safe snapshot.
 */
MOIRAI_API bool moirai_timer_is_pending(const struct moirai_timer *t);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_POLLER_H */
