/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pollers and timers of a worker, both run by its step function.
 *
 * Pollers are a list owned by the worker: only the worker links, unlinks
 * and calls them, so the step walks the list without a lock.  Another
 * thread registers or unregisters by sending the worker a strict message
 * and waiting for it to be carried out.  A poller unregistered while it
 * runs (by itself, or by a task it triggers) is only marked; the walk
 * frees it after it returns.
 *
 * A poller may name a wake fd and an arm callback (an event source such
 * as a UCX worker): before its worker parks, the worker arms every such
 * poller and, once any has a wake fd, sleeps in ppoll() on those fds plus
 * its own eventfd instead of on the futex; every waker of the worker then
 * also writes that eventfd (rt_worker_wake).  The lost-wake-up argument is
 * the futex's (lib/waitq.h): fd_sleep is set before the parking worker's
 * fence F2 and read after the waker's fence F1, so a waker that finds the
 * worker announced on its waitq also finds fd_sleep.
 *
 * Timers are caller-owned structs in a binary min-heap per worker, keyed
 * by expiry; each timer keeps its heap index, so cancel is O(log n).
 */
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "rt_int.h"

#define POLLER_MAGIC 0x706f6c6cu /* "poll" */

/* Non-zero states, so a zeroed (never initialised) timer is refused. */
enum { TIMER_IDLE = 0x74696d72u /* "timr" */, TIMER_PENDING = 0x74696d70u /* "timp" */ };

/* ---- pollers -------------------------------------------------------- */

static void poller_free(struct moirai_poller *p)
{
	p->magic = 0;
	moirai_free(p);
}

static void poller_link(struct rt_worker *w, struct moirai_poller *p)
{
	moirai__list_add_tail(&w->pollers, &p->link);
	w->npollers++;
	if (p->flags & MOIRAI_POLLER_F_NO_PARK)
		w->no_park_pollers++;
}

static void poller_unlink(struct rt_worker *w, struct moirai_poller *p)
{
	moirai__list_del(&p->link);
	w->npollers--;
	if (p->flags & MOIRAI_POLLER_F_NO_PARK)
		w->no_park_pollers--;
	if (p->wake_fd >= 0)
		w->wake_pollers--;
}

/* On the poller's worker: unregister now, or, while the worker walks its
 * pollers (this one or another may be running), when the walk passes it. */
static void poller_remove(struct moirai_poller *p)
{
	if (p->running || p->w->walking_pollers) {
		p->dead = true;
		return;
	}
	poller_unlink(p->w, p);
	poller_free(p);
}

/* A request carried out on the poller's worker, joined by the caller. */
struct poller_req {
	struct moirai_poller *p;
	bool add;
};

static int poller_req_run(void *arg)
{
	struct poller_req *r = arg;

	if (r->add)
		poller_link(r->p->w, r->p);
	else
		poller_remove(r->p);
	return 0;
}

/*
 * Carry out @add / remove of @p on its worker; from another thread, as a
 * strict task that the caller joins: a stop that cancels the task before it
 * runs shows up as -ESHUTDOWN instead of a wait that never ends.
 */
static int poller_request(struct moirai_poller *p, bool add)
{
	struct rt_worker *w = p->w;
	struct poller_req r = { .p = p, .add = add };
	struct moirai_spawn_opts o = { .prio = MOIRAI_PRIO_CRITICAL,
				       .flags = MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_STRICT,
				       .worker = w->idx,
				       .name = "poller-request" };
	struct moirai_task *h;
	int rc, status = 0;

	if (rt_self_worker == w) {
		poller_req_run(&r);
		return 0;
	}
	rc = moirai_rt_spawn(w->rt, poller_req_run, &r, &o, &h);
	if (rc)
		return rc;
	rc = moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, &status);
	if (rc)
		return rc;
	return status;
}

int moirai_poller_register(struct moirai_rt *rt, int worker, const char *name, moirai_poller_fn fn,
			   void *arg, uint64_t period_ns, unsigned flags,
			   struct moirai_poller **out)
{
	struct moirai_poller *p;
	size_t len;
	int rc;

	if (out)
		*out = NULL;
	if (!rt || !fn || !out || !name)
		return moirai__err(-EINVAL, "poller: NULL argument");
	len = strnlen(name, MOIRAI_POLLER_NAME_MAX + 1);
	if (len == 0 || len > MOIRAI_POLLER_NAME_MAX)
		return moirai__err(-EINVAL, "poller: name must have 1..%d characters",
				   MOIRAI_POLLER_NAME_MAX);
	if (flags & ~MOIRAI_POLLER_F_NO_PARK)
		return moirai__err(-EINVAL, "poller '%s': unknown flags 0x%x", name, flags);
	if (worker < 0 || worker >= rt->nworkers)
		return moirai__err(-ERANGE, "poller '%s': worker %d out of range (%d workers)",
				   name, worker, rt->nworkers);
	if (atomic_load(&rt->state) >= RS_CANCELLING)
		return moirai__err(-ESHUTDOWN, "poller '%s': the runtime is stopping", name);
	p = moirai_malloc_node_flags(sizeof(*p), MOIRAI_CACHE_LINE, rt->w[worker]->node,
				     MOIRAI_ALLOC_F_PREFERRED);
	if (!p)
		return moirai__err(-ENOMEM, "poller '%s': out of memory", name);
	memset(p, 0, sizeof(*p));
	moirai__list_init(&p->link);
	p->w = rt->w[worker];
	p->fn = fn;
	p->arg = arg;
	p->period_ns = period_ns;
	p->next_ns = rt->clock() + period_ns;
	p->flags = flags;
	p->wake_fd = -1;
	p->magic = POLLER_MAGIC;
	memcpy(p->name, name, len + 1);
	rc = poller_request(p, true);
	if (rc) {
		poller_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int moirai_poller_unregister(struct moirai_poller *p)
{
	if (!p)
		return 0;
	if (p->magic != POLLER_MAGIC || p->dead)
		return moirai__err(-EINVAL, "poller: %p is not a registered poller", (void *)p);
	return poller_request(p, false);
}

int moirai_poller_set_wake(struct moirai_poller *p, int fd, moirai_poller_arm_fn arm, void *arg)
{
	struct rt_worker *w;

	if (!p || p->magic != POLLER_MAGIC || p->dead)
		return moirai__err(-EINVAL, "poller wake fd: NULL or unregistered poller");
	w = p->w;
	if (rt_self_worker != w)
		return moirai__err(-EINVAL, "poller '%s' wake fd: not called from its worker",
				   p->name);
	if (fd >= 0 && !arm)
		return moirai__err(-EINVAL, "poller '%s' wake fd: NULL arm callback", p->name);
	if (fd < 0) {
		if (p->wake_fd >= 0)
			w->wake_pollers--;
		p->wake_fd = -1;
		p->arm = NULL;
		return 0;
	}
	if (p->wake_fd < 0 && w->wake_pollers >= MOIRAI_POLLER_WAKE_MAX)
		return moirai__err(-ENOSPC, "poller '%s' wake fd: worker %d has %d already",
				   p->name, w->idx, MOIRAI_POLLER_WAKE_MAX);
	if (w->efd < 0) {
		w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->efd < 0)
			return moirai__err(-errno, "poller '%s' wake fd: eventfd: %s", p->name,
					   strerror(errno));
	}
	if (p->wake_fd < 0)
		w->wake_pollers++;
	p->wake_fd = fd;
	p->arm = arm;
	p->arm_arg = arg;
	/* For good: a stale flag costs a waker one write, a missing one a
	 * lost wake-up. */
	atomic_store_explicit(&w->fd_sleep, 1, memory_order_release); /* after efd */
	return 0;
}

void rt_worker_wake(struct rt_worker *w, int n)
{
	moirai__waitq_wake(&w->wq, n, 0);
	/* Acquire: efd was written before fd_sleep. */
	if (atomic_load_explicit(&w->fd_sleep, memory_order_acquire)) {
		uint64_t one = 1;

		/* EAGAIN: the counter is full, so the worker wakes anyway. */
		if (write(w->efd, &one, sizeof(one)) < 0) {
		}
	}
}

bool rt_pollers_arm(struct rt_worker *w)
{
	struct moirai__list *it;

	moirai__list_foreach(it, &w->pollers) {
		struct moirai_poller *p = moirai__list_entry(it, struct moirai_poller, link);

		if (!p->dead && p->wake_fd >= 0 && p->arm(p->arm_arg) != 0)
			return false;
	}
	return true;
}

void rt_pollers_sleep(struct rt_worker *w, uint32_t key, uint64_t deadline)
{
	struct pollfd fds[MOIRAI_POLLER_WAKE_MAX + 1];
	struct moirai__list *it;
	struct timespec ts, *tsp = NULL;
	nfds_t n = 0;
	uint64_t drain;

	fds[n++] = (struct pollfd){ .fd = w->efd, .events = POLLIN };
	moirai__list_foreach(it, &w->pollers) {
		struct moirai_poller *p = moirai__list_entry(it, struct moirai_poller, link);

		if (!p->dead && p->wake_fd >= 0 && n < MOIRAI_POLLER_WAKE_MAX + 1)
			fds[n++] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
	}
	/* A wake between prepare and here moved seq (and wrote efd too). */
	if (atomic_load_explicit(&w->wq.seq, memory_order_acquire) != key)
		goto out;
	if (deadline) {
		uint64_t now = moirai_now_ns(), left = deadline > now ? deadline - now : 0;

		ts.tv_sec = (time_t)(left / 1000000000u);
		ts.tv_nsec = (long)(left % 1000000000u);
		tsp = &ts;
	}
	/* EINTR, a timeout or a readable fd all mean: look again. */
	(void)ppoll(fds, n, tsp, NULL);
out:
	if (read(w->efd, &drain, sizeof(drain)) < 0) {
		/* EAGAIN: nobody wrote it */
	}
}

const char *moirai_poller_name(const struct moirai_poller *p)
{
	return p && p->magic == POLLER_MAGIC ? p->name : "";
}

int moirai_poller_stats_get(const struct moirai_poller *p, struct moirai_poller_stats *out)
{
	if (!p || !out || p->magic != POLLER_MAGIC)
		return moirai__err(-EINVAL, "poller stats: NULL or unregistered poller");
	out->runs = RT_READ(p->runs);
	out->busy = RT_READ(p->busy);
	out->busy_ns = RT_READ(p->busy_ns);
	out->idle_ns = RT_READ(p->idle_ns);
	return 0;
}

void rt_pollers_run(struct rt_worker *w, uint64_t now, struct rt_step *out)
{
	struct moirai__list *it = w->pollers.next;

	/* While walking, removals only mark: every node we step through stays
	 * linked until the walk itself frees it. */
	w->walking_pollers = true;
	while (it != &w->pollers) {
		struct moirai_poller *p = moirai__list_entry(it, struct moirai_poller, link);
		uint64_t end;
		int rc;

		if (p->dead)
			goto next;
		if (p->period_ns) {
			if (now < p->next_ns) {
				if (!out->next_due || p->next_ns < out->next_due)
					out->next_due = p->next_ns;
				goto next;
			}
			/* From the schedule, not from now: no drift; skip what
			 * was missed rather than bunching calls. */
			p->next_ns += p->period_ns;
			if (p->next_ns <= now)
				p->next_ns = now + p->period_ns;
			if (!out->next_due || p->next_ns < out->next_due)
				out->next_due = p->next_ns;
		}
		p->running = true;
		rc = p->fn(p->arg);
		p->running = false;
		end = w->rt->clock();
		RT_COUNT(p->runs, 1);
		if (rc > 0) {
			RT_COUNT(p->busy, 1);
			RT_COUNT(p->busy_ns, end - now);
			RT_COUNT(w->c.polls_busy, 1);
			RT_COUNT(w->c.poll_busy_ns, end - now);
			out->busy++;
		} else {
			RT_COUNT(p->idle_ns, end - now);
			RT_COUNT(w->c.polls_idle, 1);
			RT_COUNT(w->c.poll_idle_ns, end - now);
		}
		now = end;
	next:
		it = it->next;
		if (p->dead) {
			poller_unlink(w, p);
			poller_free(p);
		}
	}
	w->walking_pollers = false;
}

void rt_pollers_fini(struct rt_worker *w)
{
	struct moirai__list *it, *tmp;

	/* Timers are the caller's: leave the ones still pending idle, so none
	 * points at this freed worker and moirai_timer_is_pending() tells the
	 * truth after destroy. */
	for (unsigned i = 0; i < w->ntimers; i++) {
		__atomic_store_n(&w->timers[i]->owner, NULL, __ATOMIC_RELAXED);
		__atomic_store_n(&w->timers[i]->state, TIMER_IDLE, __ATOMIC_RELAXED);
	}
	w->ntimers = 0;
	if (!w->pollers.next)
		return;
	moirai__list_foreach_safe(it, tmp, &w->pollers) {
		struct moirai_poller *p = moirai__list_entry(it, struct moirai_poller, link);

		poller_unlink(w, p);
		poller_free(p);
	}
}

/* ---- timers ----------------------------------------------------------- */

static bool before(const struct moirai_timer *a, const struct moirai_timer *b)
{
	return a->expiry_ns < b->expiry_ns;
}

static void heap_set(struct rt_worker *w, uint32_t i, struct moirai_timer *t)
{
	w->timers[i] = t;
	t->heap_idx = i;
}

static void sift_up(struct rt_worker *w, uint32_t i)
{
	struct moirai_timer *t = w->timers[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!before(t, w->timers[parent]))
			break;
		heap_set(w, i, w->timers[parent]);
		i = parent;
	}
	heap_set(w, i, t);
}

static void sift_down(struct rt_worker *w, uint32_t i)
{
	struct moirai_timer *t = w->timers[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= w->ntimers)
			break;
		if (c + 1 < w->ntimers && before(w->timers[c + 1], w->timers[c]))
			c++;
		if (!before(w->timers[c], t))
			break;
		heap_set(w, i, w->timers[c]);
		i = c;
	}
	heap_set(w, i, t);
}

static int heap_push(struct rt_worker *w, struct moirai_timer *t)
{
	if (w->ntimers == w->timer_cap) {
		unsigned cap = w->timer_cap ? 2 * w->timer_cap : 64;
		struct moirai_timer **nt = moirai_malloc_node_flags(cap * sizeof(*nt), 0, w->node,
								    MOIRAI_ALLOC_F_PREFERRED);

		if (!nt)
			return moirai__err(-ENOMEM, "timer: heap of worker %d cannot grow", w->idx);
		if (w->ntimers)
			memcpy(nt, w->timers, w->ntimers * sizeof(*nt));
		moirai_free(w->timers);
		w->timers = nt;
		w->timer_cap = cap;
	}
	heap_set(w, w->ntimers++, t);
	sift_up(w, t->heap_idx);
	return 0;
}

static void heap_remove(struct rt_worker *w, struct moirai_timer *t)
{
	uint32_t i = t->heap_idx;
	struct moirai_timer *last = w->timers[--w->ntimers];

	if (i == w->ntimers)
		return;
	heap_set(w, i, last);
	if (i > 0 && before(last, w->timers[(i - 1) / 2]))
		sift_up(w, i);
	else
		sift_down(w, i);
}

int moirai_timer_init(struct moirai_timer *t, moirai_timer_fn fn, void *arg)
{
	if (!t || !fn)
		return moirai__err(-EINVAL, "timer init: NULL %s", t ? "callback" : "timer");
	memset(t, 0, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	__atomic_store_n(&t->state, TIMER_IDLE, __ATOMIC_RELAXED);
	return 0;
}

static bool timer_pending(const struct moirai_timer *t)
{
	return __atomic_load_n(&t->state, __ATOMIC_RELAXED) == TIMER_PENDING;
}

int moirai_timer_start(struct moirai_timer *t, uint64_t delay_ns, uint64_t period_ns)
{
	struct rt_worker *w = rt_self_worker;
	uint32_t st;
	int rc;

	if (!t || !w)
		return moirai__err(-EINVAL, "timer start: %s",
				   t ? "not called from a worker" : "NULL timer");
	st = __atomic_load_n(&t->state, __ATOMIC_RELAXED);
	if (st != TIMER_PENDING && st != TIMER_IDLE)
		return moirai__err(-EINVAL, "timer start: timer %p was not initialised", (void *)t);
	if (st == TIMER_PENDING && __atomic_load_n(&t->owner, __ATOMIC_RELAXED) != w)
		return moirai__err(-EBUSY, "timer start: pending on another worker");
	if (st == TIMER_PENDING)
		heap_remove(w, t);
	t->expiry_ns = w->rt->clock() + delay_ns;
	t->period_ns = period_ns;
	__atomic_store_n(&t->owner, w, __ATOMIC_RELAXED);
	rc = heap_push(w, t);
	__atomic_store_n(&t->state, rc ? TIMER_IDLE : TIMER_PENDING, __ATOMIC_RELAXED);
	return rc;
}

int moirai_timer_cancel(struct moirai_timer *t)
{
	struct rt_worker *w = rt_self_worker;

	if (!t)
		return moirai__err(-EINVAL, "timer cancel: NULL timer");
	if (!timer_pending(t))
		return moirai__err(-EALREADY, "timer cancel: timer %p is not pending", (void *)t);
	if (__atomic_load_n(&t->owner, __ATOMIC_RELAXED) != w)
		return moirai__err(-EINVAL, "timer cancel: not called from the timer's worker");
	heap_remove(w, t);
	__atomic_store_n(&t->state, TIMER_IDLE, __ATOMIC_RELAXED);
	return 0;
}

bool moirai_timer_is_pending(const struct moirai_timer *t)
{
	return t && timer_pending(t);
}

void rt_timers_run(struct rt_worker *w, uint64_t now, struct rt_step *out)
{
	/* Bounded: a periodic timer re-armed into the past would otherwise
	 * keep the loop here forever; it is re-armed after now below. */
	for (unsigned n = w->ntimers; n > 0 && w->ntimers; n--) {
		struct moirai_timer *t = w->timers[0];

		if (t->expiry_ns > now)
			break;
		heap_remove(w, t);
		if (t->period_ns) {
			uint64_t late = now - t->expiry_ns;

			/* The next expiry on the original schedule after now. */
			t->expiry_ns += t->period_ns * (late / t->period_ns + 1);
			heap_push(w, t);
		} else {
			__atomic_store_n(&t->state, TIMER_IDLE, __ATOMIC_RELAXED);
		}
		t->fired++;
		RT_COUNT(w->c.timers_fired, 1);
		out->fired++;
		t->fn(t, t->arg);
	}
}
