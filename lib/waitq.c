/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Futex wait/wake and the shared spin, yield, park loop (see waitq.h for
 * the protocol).  Out of line: only slow paths come here.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "waitq.h"

static int futex_op(unsigned flags, int op)
{
	return (flags & MOIRAI__WAITQ_SHARED) ? op : (op | FUTEX_PRIVATE_FLAG);
}

void moirai__waitq_wake(struct moirai__waitq *wq, int n, unsigned flags)
{
	/* Release pairs with the acquire snapshot in moirai__waitq_prepare(). */
	atomic_fetch_add_explicit(&wq->seq, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)&wq->seq, futex_op(flags, FUTEX_WAKE), n, NULL, NULL, 0);
}

int moirai__waitq_park(struct moirai__waitq *wq, uint32_t key, uint64_t deadline, unsigned flags)
{
	struct timespec ts, *tsp = NULL;

	if (deadline) {
		ts.tv_sec = (time_t)(deadline / 1000000000u);
		ts.tv_nsec = (long)(deadline % 1000000000u);
		tsp = &ts;
	}
	/* Absolute CLOCK_MONOTONIC deadline: FUTEX_WAIT_BITSET.  EINTR and
	 * EAGAIN (seq already moved) mean "re-check", like a wake-up. */
	if (syscall(SYS_futex, (uint32_t *)&wq->seq, futex_op(flags, FUTEX_WAIT_BITSET), key, tsp,
		    NULL, FUTEX_BITSET_MATCH_ANY) != 0 &&
	    errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

int moirai__timeout_deadline(const char *who, int64_t timeout_ns, uint64_t *deadline)
{
	*deadline = 0;
	if (timeout_ns < MOIRAI_TIMEOUT_FOREVER)
		return moirai__err(-EINVAL,
				   "%s: timeout %lld ns is below -1 (MOIRAI_TIMEOUT_FOREVER)", who,
				   (long long)timeout_ns);
	if (timeout_ns > 0)
		*deadline = moirai_now_ns() + (uint64_t)timeout_ns;
	return 0;
}

static bool passed(uint64_t deadline, uint64_t now)
{
	return deadline && now >= deadline;
}

/*
 * Poll for a while first: a sleep and a wake-up cost two system calls and
 * a context switch, more than a busy peer's next item.  Poll on every
 * round (one pause between tries: polling every 16 pauses added ~0.4 us to
 * a channel round trip) and read the clock every 32 rounds.
 */
static int spin(const struct moirai__wait *w, uint64_t deadline)
{
	uint64_t start = moirai_now_ns(), now;
	int rc;

	for (unsigned i = 1;; i++) {
		rc = w->attempt(w->ctx);
		if (rc)
			return rc;
		moirai__cpu_relax();
		if (i % 32)
			continue;
		now = moirai_now_ns();
		if (passed(deadline, now))
			return -ETIMEDOUT;
		if (now - start >= w->spin_ns)
			return 0;
		/* After a pure spin, yield: the party we wait for may share
		 * our CPU, and then only our yield lets it run. */
		if (now - start >= w->yield_after_ns)
			sched_yield();
	}
}

int moirai__wait(const struct moirai__wait *w, uint64_t deadline)
{
	int rc;

	if (w->spin_ns) {
		rc = spin(w, deadline);
		if (rc)
			return rc;
	}
	for (;;) {
		uint64_t until = deadline, now;
		uint32_t key = moirai__waitq_prepare(w->wq);
		bool silent = false;

		rc = w->attempt(w->ctx);
		if (!rc) {
			now = moirai_now_ns();
			if (passed(deadline, now)) {
				moirai__waitq_finish(w->wq);
				return -ETIMEDOUT;
			}
			if (w->slice_ns && (!until || until - now > w->slice_ns))
				until = now + w->slice_ns;
			if (w->parks)
				atomic_fetch_add_explicit(w->parks, 1, memory_order_relaxed);
			silent = moirai__waitq_park(w->wq, key, until, w->flags) == -ETIMEDOUT;
		}
		moirai__waitq_finish(w->wq);
		if (rc)
			return rc;
		rc = w->attempt(w->ctx);
		if (rc)
			return rc;
		if (passed(deadline, moirai_now_ns()))
			return -ETIMEDOUT;
		if (silent && w->silent) {
			rc = w->silent(w->ctx);
			if (rc)
				return rc;
		}
	}
}
