/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tasks: descriptors from node pools, spawn and send (choosing where a
 * task is queued), running one task (state, latency, continuation,
 * completion), handles (join, try-join, detach, cancel) and groups.
 *
 * A descriptor's life: taken from a pool by the submitter, filled, queued;
 * the worker that pops it CASes its state QUEUED -> RUNNING (a canceller
 * CASes QUEUED -> CANCELLED instead: exactly one wins), runs it, stores
 * DONE (release: the status is visible to whoever acquires DONE), wakes
 * joiners, and drops the runtime's ownership.  The descriptor goes back to
 * its node's pool when the last owner (runtime, handle) lets go; the owner
 * word also carries the generation, so a stale handle's CAS fails.
 */
#include <limits.h>
#include <sched.h>
#include <string.h>

#include "rt_int.h"

/* ---- descriptors ---------------------------------------------------- */

static struct moirai_pool_cache *cache_for(struct rt_worker *self, struct rt_node *home)
{
	struct moirai_pool_cache *c = NULL;

	if (self && self->home == home)
		return self->cache;
	/* A foreign thread (or a worker of another node): the thread's own
	 * cache of that pool, so remote submitters do not share one ring. */
	if (moirai_pool_thread_cache(home->pool, &c))
		return NULL;
	return c;
}

struct rt_task *rt_task_alloc(struct moirai_rt *rt, struct rt_worker *self, struct rt_node *home)
{
	void *obj;

	if (moirai_pool_get(home->pool, cache_for(self, home), &obj))
		return NULL;
	return obj;
}

static void task_free(struct rt_worker *self, struct rt_task *t)
{
	struct rt_node *home = t->home;

	atomic_store_explicit(&t->state, TS_FREE, memory_order_relaxed);
	moirai_pool_put(home->pool, self && self->home == home ? self->cache : NULL, t);
}

/*
 * Drop one owner bit.  For a handle, @gen is the generation it carries:
 * the CAS fails (-EINVAL) once the descriptor was freed and reused.  The
 * last owner bumps the generation and frees.
 */
static int disown(struct rt_worker *self, struct rt_task *t, uint32_t bit, int gen)
{
	uint32_t old = atomic_load_explicit(&t->own, memory_order_acquire), nv;

	do {
		if ((gen >= 0 && OWN_GEN(old) != (uint16_t)gen) || !(old & bit))
			return -EINVAL;
		nv = old & ~bit;
		if (!(nv & (OWN_RT | OWN_HANDLE)))
			nv = (uint32_t)(uint16_t)(OWN_GEN(old) + 1) << 16;
		/* Acq_rel: the other owner's last use happens before the free. */
	} while (!atomic_compare_exchange_weak_explicit(&t->own, &old, nv, memory_order_acq_rel,
							memory_order_acquire));
	if (!(nv & (OWN_RT | OWN_HANDLE)))
		task_free(self, t);
	return 0;
}

/* ---- groups --------------------------------------------------------- */

#define GROUP_MAGIC 0x67727570u /* "grup" */

/*
 * One task of @g is done.  The group may be destroyed as soon as a waiter
 * sees its pending count reach 0.  A finisher that leaves others pending
 * never touches @g after its decrement; the one that makes it 0 still
 * wakes the waiters, so it counts itself as a notifier in the same word
 * and moirai_group_destroy() waits for the notifiers to drain.  One CAS
 * per finish (it was three locked instructions on a line that every
 * worker finishing a task of the group writes).
 */
static void group_done(struct moirai_group *g, int status)
{
	int32_t none = 0;
	uint64_t old, nv;
	bool last;

	if (!g)
		return;
	/* Before the decrement: a waiter that sees 0 sees the error too. */
	if (status != 0)
		atomic_compare_exchange_strong_explicit(&g->first_error, &none, status,
							memory_order_relaxed, memory_order_relaxed);
	old = atomic_load_explicit(&g->count, memory_order_relaxed);
	do {
		last = (old & RT_GROUP_PENDING_MASK) == 1;
		nv = old - 1 + (last ? RT_GROUP_NOTIFIER : 0);
		/* Release: the task's effects before a waiter's acquire of 0. */
	} while (!atomic_compare_exchange_weak_explicit(&g->count, &old, nv, memory_order_acq_rel,
							memory_order_relaxed));
	if (!last)
		return;
	moirai__waitq_notify(&g->wq, INT_MAX, 0);
	/* Release: our last access to g before destroy's acquire. */
	atomic_fetch_sub_explicit(&g->count, RT_GROUP_NOTIFIER, memory_order_release);
}

int moirai_group_create(struct moirai_rt *rt, struct moirai_group **out)
{
	struct moirai_group *g;

	if (!rt || !out)
		return moirai__err(-EINVAL, "group: NULL argument");
	g = moirai_malloc(sizeof(*g));
	if (!g)
		return moirai__err(-ENOMEM, "group: out of memory");
	g->rt = rt;
	atomic_init(&g->count, 0);
	atomic_init(&g->first_error, 0);
	g->magic = GROUP_MAGIC;
	moirai__waitq_init(&g->wq);
	*out = g;
	return 0;
}

unsigned moirai_group_pending(const struct moirai_group *g)
{
	uint64_t n =
		g ? atomic_load_explicit(&g->count, memory_order_relaxed) & RT_GROUP_PENDING_MASK
		  : 0;

	return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

int moirai_group_destroy(struct moirai_group *g)
{
	if (!g)
		return 0;
	if (g->magic != GROUP_MAGIC)
		return moirai__err(-EINVAL, "group: %p is not a live group", (void *)g);
	if (atomic_load_explicit(&g->count, memory_order_acquire) & RT_GROUP_PENDING_MASK)
		return moirai__err(-EBUSY, "group: %u tasks still pending",
				   moirai_group_pending(g));
	/* The finisher that made the count 0 may still be in group_done()
	 * (its wake-up): it counted itself in the same word, so the load
	 * above saw it.  It is a few instructions from its last touch. */
	while (atomic_load_explicit(&g->count, memory_order_acquire) >= RT_GROUP_NOTIFIER)
		sched_yield();
	g->magic = 0;
	moirai_free(g);
	return 0;
}

/* ---- running one task -------------------------------------------- */

/* The last owner of @t lets go: bump the generation, back to the pool. */
static void release_last(struct rt_worker *w, struct rt_task *t)
{
	uint32_t own = atomic_load_explicit(&t->own, memory_order_relaxed);

	atomic_store_explicit(&t->own, (uint32_t)(uint16_t)(OWN_GEN(own) + 1) << 16,
			      memory_order_relaxed);
	task_free(w, t);
}

static void finish(struct rt_worker *w, struct rt_task *t, uint32_t state, int status)
{
	t->status = status;
	group_done(t->group, status);
	RT_COUNT(w->c.done, 1);
	if (!(t->flags & TF_HANDLE)) {
		/* Detached: nobody else can hold it, no one to wake, no CAS. */
		atomic_store_explicit(&t->state, state, memory_order_relaxed);
		release_last(w, t);
		return;
	}
	/* Release: status (and the task's effects) before DONE; pairs with
	 * the joiner's acquire load of the state.  Seq_cst exchange, then the
	 * waiter count: the store-fence-load half of lib/waitq.h in one
	 * locked instruction (a joiner adds itself, fences, then loads the
	 * state). */
	atomic_exchange(&t->state, state);
	if (atomic_load(&t->done_wq.waiters))
		moirai__waitq_wake(&t->done_wq, INT_MAX, 0);
	disown(w, t, OWN_RT, -1);
}

/* A task taken from a queue that was cancelled meanwhile: its canceller
 * did the group and the wake-up; only the runtime's ownership is left. */
static void discard(struct rt_worker *w, struct rt_task *t)
{
	RT_COUNT(w->c.done, 1);
	disown(w, t, OWN_RT, -1);
}

void rt_task_cancel_queued(struct rt_worker *w, struct rt_task *t, int status)
{
	(void)status;
	RT_COUNT(w->c.cancelled, 1);
	atomic_fetch_add_explicit(&w->rt->cancelled_total, 1, memory_order_relaxed);
	finish(w, t, TS_SHUTDOWN, -ESHUTDOWN);
}

/*
 * Claim @t for running: QUEUED (or YIELDED) -> RUNNING.  A task with a
 * handle may be cancelled concurrently, so that is a CAS; a detached one
 * has nobody but the worker that took it, so a plain store will do.
 * Either way the acquire pairs with the submitter's release (ring, deque
 * or mailbox_put).  Returns the state found when the claim failed.
 */
static bool claim(struct rt_task *t, uint32_t *st)
{
	*st = atomic_load_explicit(&t->state, memory_order_acquire);
	if (*st == TS_CANCELLED || *st == TS_SHUTDOWN)
		return false;
	if (!(t->flags & TF_HANDLE)) {
		atomic_store_explicit(&t->state, TS_RUNNING, memory_order_relaxed);
		return true;
	}
	return atomic_compare_exchange_strong_explicit(&t->state, st, TS_RUNNING,
						       memory_order_acquire, memory_order_relaxed);
}

uint64_t rt_task_run(struct rt_worker *w, struct rt_task *t, uint64_t now)
{
	struct moirai_rt *rt = w->rt;
	int l = t->level, prev_level, rc;
	uint64_t prev_since, start, end, ran_ns;
	const char *prev_name;
	uint32_t st;

	if (moirai_unlikely(atomic_load_explicit(&rt->state, memory_order_relaxed) ==
			    RS_CANCELLING)) {
		if (claim(t, &st))
			rt_task_cancel_queued(w, t, -ESHUTDOWN);
		else
			discard(w, t);
		return now;
	}
	if (!claim(t, &st)) {
		discard(w, t); /* a canceller won the race */
		return now;
	}
	/* Ticks (the TSC) for the three per-task timestamps; @now (the
	 * scheduling clock) only moves by what the task took. */
	start = w->chain_ticks ? w->chain_ticks : moirai__ticks();
	w->chain_ticks = 0; /* a task joined inside this one reads its own */
	moirai_hist_record(&w->lat[l],
			   start > t->t_submit ? moirai__ticks_to_ns(start - t->t_submit) : 0);
	prev_level = atomic_load_explicit(&w->cur_level, memory_order_relaxed);
	prev_since = atomic_load_explicit(&w->running_since, memory_order_relaxed);
	prev_name = atomic_load_explicit(&w->cur_name, memory_order_relaxed);
	atomic_store_explicit(&w->cur_level, l, memory_order_relaxed);
	atomic_store_explicit(&w->running_since, start, memory_order_relaxed);
	atomic_store_explicit(&w->cur_name, t->name, memory_order_relaxed);
	/* A task that starts while more urgent work waits here (an aged turn,
	 * a continuation) is asked to yield at once; otherwise clear. */
	__atomic_store_n(&w->yield_word, l > 0 && rt_urgent_waiting(w, l), __ATOMIC_RELAXED);
	if (w->help_depth == 0)
		atomic_store_explicit(&w->run_state, WS_RUNNING, memory_order_relaxed);

	rc = t->fn(t->arg);

	end = moirai__ticks();
	w->last_end_ticks = end;
	/* Converted once: the relaxed atomics around would make the compiler
	 * reload the scale for each of the three uses. */
	ran_ns = moirai__ticks_to_ns(end - start);
	moirai_hist_record(&w->lat[RT_LEVELS + l], ran_ns);
	/* Threaded: the scheduling clock moves by what the task took (no
	 * clock read).  Manual (tests): the caller's clock says how long. */
	now = rt->manual ? rt->clock() : now + ran_ns;
	/* Busy time counts outer tasks only: a task run inside a join is part
	 * of the joiner's time already. */
	if (w->help_depth == 0)
		RT_COUNT(w->c.busy_ns, ran_ns);
	RT_COUNT(w->c.tasks_run[l], 1);
	atomic_store_explicit(&w->cur_level, prev_level, memory_order_relaxed);
	atomic_store_explicit(&w->running_since, prev_since ? end : 0, memory_order_relaxed);
	atomic_store_explicit(&w->cur_name, prev_name, memory_order_relaxed);
	if (w->help_depth == 0)
		atomic_store_explicit(&w->run_state, WS_SPINNING, memory_order_relaxed);

	if (rc == MOIRAI_TASK_CONTINUE) {
		if (atomic_load_explicit(&rt->state, memory_order_relaxed) == RS_CANCELLING) {
			rt_task_cancel_queued(w, t, -ESHUTDOWN);
			return now;
		}
		RT_COUNT(w->c.continuations[l], 1);
		__atomic_store_n(&t->t_submit, end, __ATOMIC_RELAXED);
		atomic_store_explicit(&t->state, TS_YIELDED, memory_order_release);
		/* Behind what already waits at its level, on this worker. */
		moirai__list_add_tail(&w->fifo[l], &t->link);
		RT_COUNT(w->fifo_len[l], 1);
		return now;
	}
	finish(w, t, TS_DONE, rc);
	return now;
}

/*
 * A join of a task that still sits at the bottom of the joiner's own deque
 * (fork-join: spawn a child, do the other half, join the child): take it
 * and call it right here, as a plain function call.  Both owners are the
 * caller, so there is nobody to wake and no ownership CAS; it is counted
 * as run but not timed (its latency is the parent's business).  Returns
 * true with *status set when it ran to completion.
 */
static bool join_inline(struct rt_worker *w, struct rt_task *t, int *status)
{
	struct rt_deque *d = &w->dq[t->level];
	uint32_t st;
	int rc;

	if (rt_deque_peek(d) != t ||
	    atomic_load_explicit(&w->rt->state, memory_order_relaxed) >= RS_CANCELLING)
		return false;
	if (rt_deque_take(d) != t)
		return false; /* a thief took it (it was the last one) */
	if (!claim(t, &st)) {
		/* Cancelled while queued: only the runtime's part is left. */
		discard(w, t);
		return false;
	}
	rc = t->fn(t->arg);
	RT_COUNT(w->c.tasks_run[t->level], 1);
	if (rc == MOIRAI_TASK_CONTINUE) {
		/* Wants another turn: the scheduler's, like any continuation. */
		RT_COUNT(w->c.continuations[t->level], 1);
		/* Relaxed atomic: thieves peek at it racily (rt_sched.c steal_deque). */
		__atomic_store_n(&t->t_submit, moirai__ticks(), __ATOMIC_RELAXED);
		atomic_store_explicit(&t->state, TS_YIELDED, memory_order_release);
		moirai__list_add_tail(&w->fifo[t->level], &t->link);
		RT_COUNT(w->fifo_len[t->level], 1);
		return false;
	}
	t->status = rc;
	group_done(t->group, rc);
	RT_COUNT(w->c.done, 1);
	*status = rc;
	release_last(w, t);
	return true;
}

/* ---- where a task goes ---------------------------------------------- */

static bool eligible(const struct rt_worker *v, int level, int node_idx)
{
	if (node_idx >= 0 && v->node_idx != node_idx)
		return false;
	return !v->critical_only || level == 0;
}

/*
 * How soon worker @v would start a task put in its mailbox now: a spinning
 * one at once, a parked one after its wake-up, a running one when its
 * task ends or yields, sooner the less urgent that task (a background task
 * yields to a critical one; a critical one runs to completion).  Racy
 * reads: a stale rank only picks a slower target.
 */
static int target_rank(const struct rt_worker *v)
{
	switch (atomic_load_explicit(&v->run_state, memory_order_relaxed)) {
	case WS_SPINNING: return 0;
	case WS_PARKED:
	case WS_CLAIMED: return 1;
	case WS_RUNNING:
		return 2 + RT_LEVELS - atomic_load_explicit(&v->cur_level, memory_order_relaxed);
	default: return 3 + RT_LEVELS;
	}
}

/*
 * A worker for a submission from outside (or to another worker): the one
 * that would start it soonest (target_rank()), the next in turn among
 * equals, so a critical task is not queued behind a long task while a
 * sibling idles.  Critical tasks try the critical lane first.
 */
static int pick_targets(struct moirai_rt *rt, int level, int node_idx, struct rt_worker **out,
			int max)
{
	int n = rt->nworkers, k = 0;
	unsigned start = atomic_fetch_add_explicit(&rt->rr, 1, memory_order_relaxed);
	bool lane = level == 0 && rt->cfg.critical_workers > 0;

	for (int pass = lane ? 0 : 1; pass < 2 && k < max; pass++) {
		int first = k;

		for (int i = 0; i < n && k < max; i++) {
			struct rt_worker *v = rt->w[(start + (unsigned)i) % (unsigned)n];

			if (!eligible(v, level, node_idx) || (pass == 0 && !v->critical_only))
				continue;
			if (pass == 1 && lane && v->critical_only)
				continue;
			/* Ordered by target_rank(), in turn among equals. */
			int at = k++, rank = target_rank(v);

			while (at > first && target_rank(out[at - 1]) > rank) {
				out[at] = out[at - 1];
				at--;
			}
			out[at] = v;
		}
	}
	return k;
}

static void nudge(struct rt_worker *v, int level)
{
	/* A more urgent task now waits for it: ask the running one to yield. */
	if (atomic_load_explicit(&v->cur_level, memory_order_relaxed) > level)
		__atomic_store_n(&v->yield_word, 1, __ATOMIC_RELAXED);
	/* Busy in a task, or blocking (a region in a poller or timer callback
	 * is not in a task): an idle sibling may take the work from its
	 * mailbox sooner (it need not, so only if nobody is searching already).
	 * The two conditions under which steal_mailbox() takes from it. */
	if (atomic_load_explicit(&v->run_state, memory_order_relaxed) == WS_RUNNING ||
	    atomic_load_explicit(&v->block_depth, memory_order_relaxed))
		rt_notify_one(v->rt);
	rt_wake_worker(v);
}

/* Enqueue on @v's mailbox (or its strict mailbox).  0 or -EAGAIN. */
static int mailbox_put(struct rt_worker *v, struct rt_task *t)
{
	int level = t->level;
	struct moirai_ring *r = (t->flags & TF_STRICT_WORKER) ? v->strict_mbox : v->mbox[level];

	/* Release: the descriptor before it is visible in the ring; pairs
	 * with the acquire load of the state where it is taken out. */
	atomic_store_explicit(&t->state, TS_QUEUED, memory_order_release);
	if (moirai_ring_enqueue_bulk(r, (void **)&t, 1, NULL) != 1) {
		atomic_fetch_add_explicit(&v->rc.mailbox_full, 1, memory_order_relaxed);
		return -EAGAIN;
	}
	/* Release pairs with the drain's acquire exchange of the hint: either
	 * the drain that clears it sees this enqueue, or the hint stays set
	 * for the next one.  (Skipping the store when it looks set would race
	 * with that exchange and strand the task.)  Its own line, so the
	 * stores do not disturb the worker's reads of its first line. */
	atomic_store_explicit(&v->mbox_hint, 1, memory_order_release);
	/* From here on t is the worker's: it may already have run and been
	 * reused, so only what was copied out above is used. */
	nudge(v, level);
	return 0;
}

/* Queue @t (fully set up) from @self (NULL: a foreign thread). */
int rt_submit(struct moirai_rt *rt, struct rt_worker *self, struct rt_task *t)
{
	struct rt_worker *targets[8];
	int level = t->level, n, rc;
	bool was_empty;

	if (t->flags & TF_STRICT_WORKER) {
		struct rt_worker *v = rt->w[t->worker];

		if (v == self) {
			atomic_store_explicit(&t->state, TS_QUEUED, memory_order_relaxed);
			rt_push_local(self, t);
			return 0;
		}
		return mailbox_put(v, t);
	}
	if (t->flags & TF_STRICT_NODE) {
		int node_idx = t->node_idx;

		if (!atomic_load_explicit(&rt->pnode_used, memory_order_relaxed))
			atomic_store(&rt->pnode_used, true);
		atomic_store_explicit(&t->state, TS_QUEUED, memory_order_release);
		if (moirai_ring_enqueue_bulk(rt->pnode_mbox[node_idx * RT_LEVELS + level],
					     (void **)&t, 1, NULL) != 1)
			return -EAGAIN;
		rt_notify_node(rt, node_idx); /* t is no longer ours to read */
		return 0;
	}
	if (t->worker >= 0 && eligible(rt->w[t->worker], level, -1)) {
		struct rt_worker *v = rt->w[t->worker];

		if (v == self)
			goto local;
		if (mailbox_put(v, t) == 0)
			return 0;
		/* The hint's mailbox is full: anywhere will do. */
	}
	if (self && eligible(self, level, t->node_idx))
		goto local;
	n = pick_targets(rt, level, t->node_idx, targets, (int)MOIRAI_ARRAY_SIZE(targets));
	if (n == 0)
		return moirai__err(-ENODEV, "spawn: no worker may run level %d on node idx %d",
				   level, t->node_idx);
	rc = -EAGAIN;
	for (int i = 0; i < n && rc; i++)
		rc = mailbox_put(targets[i], t);
	return rc;

local:
	atomic_store_explicit(&t->state, TS_QUEUED, memory_order_relaxed);
	/*
	 * Wake a sibling only when this push makes the deque non-empty.  While
	 * older tasks sit in it they stay visible to a worker's last look
	 * before parking, and the push that made it non-empty ran the wake-up
	 * protocol already; a searcher that takes them passes the baton on
	 * (rt_search_end).  So fork-join recursion, whose deque is rarely
	 * empty, pays the seq_cst fence once per burst, not per spawn.
	 */
	was_empty = rt_deque_size(&self->dq[level]) == 0;
	rt_push_local(self, t);
	if (atomic_load_explicit(&self->cur_level, memory_order_relaxed) > level)
		__atomic_store_n(&self->yield_word, 1, __ATOMIC_RELAXED);
	if (was_empty)
		rt_notify_one(rt);
	return 0;
}

/* ---- spawn ------------------------------------------------------------- */

/* Plan node index of OS node @node among the workers, or -1. */
static int plan_node_idx(const struct moirai_rt *rt, int node)
{
	for (int i = 0; i < rt->nworkers; i++)
		if (rt->w[i]->plan_node == node)
			return rt->w[i]->node_idx;
	return -1;
}

/* Resolve the affinity of @o into worker / plan node; 0 or -errno. */
static int resolve_affinity(struct moirai_rt *rt, struct rt_worker *self,
			    const struct moirai_spawn_opts *o, int *worker, int *node_idx)
{
	*worker = -1;
	*node_idx = -1;
	if (o->flags & ~(MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_NODE | MOIRAI_SPAWN_F_STRICT))
		return moirai__err(-EINVAL, "spawn: unknown flags 0x%x", o->flags);
	if ((o->flags & MOIRAI_SPAWN_F_WORKER) && (o->flags & MOIRAI_SPAWN_F_NODE))
		return moirai__err(-EINVAL, "spawn: affinity to a worker and a node at once");
	if ((o->flags & MOIRAI_SPAWN_F_STRICT) &&
	    !(o->flags & (MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_NODE)))
		return moirai__err(-EINVAL, "spawn: STRICT without a worker or node");
	if (o->flags & MOIRAI_SPAWN_F_WORKER) {
		if (o->worker < 0 || o->worker >= rt->nworkers)
			return moirai__err(-ERANGE, "spawn: worker %d out of range (%d workers)",
					   o->worker, rt->nworkers);
		*worker = o->worker;
		return 0;
	}
	if (o->flags & MOIRAI_SPAWN_F_NODE) {
		int node = o->node;

		if (node == MOIRAI_NODE_ANY) {
			/* The caller's node: its worker's, or where it runs. */
			node = self ? self->plan_node : moirai_numa_current_node();
		} else if (node < 0) {
			return moirai__err(-EINVAL, "spawn: node %d is not a node number", node);
		}
		*node_idx = plan_node_idx(rt, node);
		if (*node_idx < 0)
			return moirai__err(-ENODEV, "spawn: no worker on NUMA node %d", node);
	}
	return 0;
}

/* Set @t up; everything but queueing it. */
static void task_fill(struct rt_task *t, struct moirai_rt *rt, moirai_task_fn fn, void *arg,
		      int level, unsigned flags, int worker, int node_idx,
		      struct moirai_group *group, const char *name, bool handle)
{
	uint32_t gen = OWN_GEN(atomic_load_explicit(&t->own, memory_order_relaxed));

	t->fn = fn;
	t->arg = arg;
	t->level = (uint8_t)level;
	t->flags = (uint8_t)(flags | (handle ? TF_HANDLE : 0));
	t->worker = (int16_t)worker;
	t->node_idx = (int16_t)node_idx;
	t->status = 0;
	/* Relaxed atomic: thieves peek at it racily (rt_sched.c steal_deque). */
	__atomic_store_n(&t->t_submit, moirai__ticks(), __ATOMIC_RELAXED);
	moirai__list_init(&t->link);
	t->name = name;
	t->group = group;
	t->rt = rt;
	/* Only a handle's joiners wait on it (finish wakes it only then). */
	if (handle)
		moirai__waitq_init(&t->done_wq);
	atomic_store_explicit(&t->own, (gen << 16) | OWN_RT | (handle ? OWN_HANDLE : 0),
			      memory_order_relaxed);
}

/* The node pool a submission from @self to its likely target uses. */
static struct rt_node *home_for(struct moirai_rt *rt, struct rt_worker *self, int worker,
				int node_idx)
{
	if (worker >= 0)
		return rt->w[worker]->home;
	if (node_idx >= 0) {
		for (int i = 0; i < rt->nworkers; i++)
			if (rt->w[i]->node_idx == node_idx)
				return rt->w[i]->home;
	}
	if (self)
		return self->home;
	/* A foreign thread: the pool of the node it runs on, if any. */
	int node = moirai_numa_current_node();

	for (int i = 0; i < rt->nnodes; i++)
		if (rt->nodes[i].node == node)
			return &rt->nodes[i];
	return &rt->nodes[0];
}

static int spawn_common(struct moirai_rt *rt, moirai_task_fn fn, void *arg, int prio,
			unsigned tflags, int worker, int node_idx, struct moirai_group *group,
			const char *name, struct moirai_task **out)
{
	struct rt_worker *self = rt_current_worker(rt);
	int level = moirai_prio_index(prio), rc;
	struct rt_node *home;
	struct rt_task *t;
	uint32_t st;

	if (level < 0)
		return moirai__err(-EINVAL, "spawn: %d is not a priority", prio);
	if (self) {
		st = atomic_load_explicit(&rt->state, memory_order_relaxed);
		if (st >= RS_CANCELLING)
			return moirai__err(-ESHUTDOWN, "spawn: the runtime is stopping");
	} else {
		/* Counted before the state check (both seq_cst), so a worker
		 * that sees the stop and then this count waits for the task:
		 * see rt_quiescent(). */
		atomic_fetch_add(&rt->ext_spawned, 1);
		st = atomic_load(&rt->state);
		if (st != RS_RUNNING) {
			atomic_fetch_add(&rt->ext_refused, 1);
			return st == RS_STARTING
				       ? -EAGAIN
				       : moirai__err(-ESHUTDOWN, "spawn: the runtime is stopped");
		}
	}
	home = home_for(rt, self, worker, node_idx);
	t = rt_task_alloc(rt, self, home);
	if (!t) {
		rc = -EAGAIN;
		goto err_refuse;
	}
	t->home = home;
	if (group)
		atomic_fetch_add_explicit(&group->count, 1, memory_order_relaxed);
	task_fill(t, rt, fn, arg, level, tflags, worker, node_idx, group, name, out != NULL);
	if (out)
		*out = rt_handle_of(t);
	if (self)
		RT_COUNT(self->c.spawned, 1);
	rc = rt_submit(rt, self, t);
	if (rc) {
		/* Never queued: nobody else saw it.  Bump the generation so the
		 * handle we nearly gave out can never match. */
		uint32_t gen = OWN_GEN(atomic_load_explicit(&t->own, memory_order_relaxed));

		if (self)
			RT_COUNT(self->c.spawned, (uint64_t)-1);
		if (group)
			atomic_fetch_sub_explicit(&group->count, 1, memory_order_relaxed);
		atomic_store_explicit(&t->own, (uint32_t)(uint16_t)(gen + 1) << 16,
				      memory_order_relaxed);
		task_free(self, t);
		if (out)
			*out = NULL;
		goto err_refuse;
	}
	return 0;

err_refuse:
	atomic_fetch_add_explicit(&rt->refused, 1, memory_order_relaxed);
	if (!self)
		atomic_fetch_add(&rt->ext_refused, 1);
	return rc;
}

int moirai_rt_spawn(struct moirai_rt *rt, moirai_task_fn fn, void *arg,
		    const struct moirai_spawn_opts *opts, struct moirai_task **task)
{
	static const struct moirai_spawn_opts defaults;
	const struct moirai_spawn_opts *o = opts ? opts : &defaults;
	unsigned tflags = 0;
	int worker, node_idx, rc;

	if (task)
		*task = NULL;
	if (!rt || !fn)
		return moirai__err(-EINVAL, "spawn: NULL %s", rt ? "function" : "runtime");
	if (o->group && (o->group->magic != 0x67727570u || o->group->rt != rt))
		return moirai__err(-EINVAL, "spawn: the group is not a live group of this runtime");
	rc = resolve_affinity(rt, rt_current_worker(rt), o, &worker, &node_idx);
	if (rc)
		return rc;
	if (o->flags & MOIRAI_SPAWN_F_STRICT)
		tflags = worker >= 0 ? TF_STRICT_WORKER : TF_STRICT_NODE;
	if (worker >= 0 && rt->w[worker]->critical_only && o->prio != MOIRAI_PRIO_CRITICAL &&
	    (tflags & TF_STRICT_WORKER))
		return moirai__err(-EINVAL, "spawn: worker %d runs critical tasks only", worker);
	return spawn_common(rt, fn, arg, o->prio, tflags, worker, node_idx, o->group, o->name,
			    task);
}

int moirai_rt_send(struct moirai_rt *rt, int worker, int prio, moirai_task_fn fn, void *arg)
{
	struct moirai_spawn_opts o = { .prio = prio,
				       .flags = MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_STRICT,
				       .worker = worker };

	return moirai_rt_spawn(rt, fn, arg, &o, NULL);
}

/* ---- handles ------------------------------------------------------- */

static bool state_done(uint32_t st)
{
	return st == TS_DONE || st == TS_CANCELLED || st == TS_SHUTDOWN;
}

/* The descriptor behind a live handle, or NULL (message recorded). */
static struct rt_task *handle_task(const struct moirai_task *h, const char *who, int *gen)
{
	uint16_t g;
	struct rt_task *t;
	uint32_t own;

	if (!h)
		return moirai__err(-EINVAL, "%s: NULL task handle", who), NULL;
	t = rt_task_of(h, &g);
	own = atomic_load_explicit(&t->own, memory_order_acquire);
	if (OWN_GEN(own) != g || !(own & OWN_HANDLE)) {
		moirai__err(-EINVAL, "%s: task handle %p was already given back", who, (void *)h);
		return NULL;
	}
	*gen = g;
	return t;
}

struct join_wait {
	struct rt_task *t;
};

static int join_attempt(void *ctx)
{
	struct join_wait *j = ctx;

	return state_done(atomic_load_explicit(&j->t->state, memory_order_acquire));
}

/* Run other tasks on worker @w until @done(ctx) or the deadline. */
int rt_help_until(struct rt_worker *w, int (*done)(void *ctx), void *ctx, uint64_t deadline)
{
	unsigned idle = 0;

	while (!done(ctx)) {
		if (rt_help_one(w)) {
			/* The next task helped with starts when this one ended
			 * (only the done check between): one TSC read per task,
			 * as in rt_step.  0 when it was discarded: read afresh. */
			w->chain_ticks = w->last_end_ticks;
			w->last_end_ticks = 0;
			idle = 0;
			continue;
		}
		w->chain_ticks = 0;
		if (deadline && w->rt->clock() >= deadline)
			return -ETIMEDOUT;
		/* Nothing to help with: the task runs elsewhere. */
		if (++idle % 64 == 0)
			sched_yield();
		else
			moirai__cpu_relax();
	}
	w->chain_ticks = 0; /* the joiner runs on: its own code, not a task */
	return 0;
}

static int wait_done(struct moirai_rt *rt, struct moirai__waitq *wq, int (*done)(void *ctx),
		     void *ctx, int64_t timeout_ns, const char *who)
{
	struct rt_worker *self = rt_current_worker(rt);
	uint64_t deadline;
	int rc;

	/* Done already (the common case of a join in fork-join code): no
	 * clock read for a deadline that is never needed. */
	if (timeout_ns >= MOIRAI_TIMEOUT_FOREVER && done(ctx))
		return 0;
	rc = moirai__timeout_deadline(who, timeout_ns, &deadline);
	if (rc)
		return rc;
	if (timeout_ns == 0)
		return -EAGAIN;
	if (self)
		return rt_help_until(self, done, ctx, deadline);
	struct moirai__wait w = {
		.attempt = done, .ctx = ctx, .wq = wq, .spin_ns = 2000, .yield_after_ns = 1000
	};

	rc = moirai__wait(&w, deadline);
	return rc > 0 ? 0 : rc;
}

int moirai_task_join(struct moirai_task *h, int64_t timeout_ns, int *status)
{
	int gen, rc, st_inline;
	struct rt_task *t = handle_task(h, "join", &gen);
	struct rt_worker *self;
	struct join_wait j;
	uint32_t st;

	if (!t)
		return -EINVAL;
	self = rt_current_worker(t->rt);
	if (self && timeout_ns >= MOIRAI_TIMEOUT_FOREVER && join_inline(self, t, &st_inline)) {
		if (status)
			*status = st_inline;
		return 0;
	}
	j.t = t;
	rc = wait_done(t->rt, &t->done_wq, join_attempt, &j, timeout_ns, "join");
	if (rc)
		return rc;
	st = atomic_load_explicit(&t->state, memory_order_acquire);
	if (status)
		*status = st == TS_CANCELLED  ? -ECANCELED
			  : st == TS_SHUTDOWN ? -ESHUTDOWN
					      : t->status;
	if (disown(rt_current_worker(t->rt), t, OWN_HANDLE, gen))
		return moirai__err(-EINVAL, "join: task handle %p was already given back",
				   (void *)h);
	return 0;
}

int moirai_task_try_join(struct moirai_task *h, int *status)
{
	return moirai_task_join(h, MOIRAI_TIMEOUT_TRY, status);
}

int moirai_task_detach(struct moirai_task *h)
{
	int gen;
	struct rt_task *t = handle_task(h, "detach", &gen);

	if (!t || disown(rt_current_worker(t->rt), t, OWN_HANDLE, gen))
		return moirai__err(-EINVAL, "detach: task handle %p was already given back",
				   (void *)h);
	return 0;
}

int moirai_task_cancel(struct moirai_task *h)
{
	int gen;
	struct rt_task *t = handle_task(h, "cancel", &gen);
	uint32_t st = TS_QUEUED;

	if (!t)
		return -EINVAL;
	if (atomic_compare_exchange_strong_explicit(&t->state, &st, TS_CANCELLED,
						    memory_order_acq_rel, memory_order_acquire)) {
		/* It will never run: account for it now; the worker that pops
		 * it later only lets go of it (discard). */
		group_done(t->group, -ECANCELED);
		moirai__waitq_notify(&t->done_wq, INT_MAX, 0);
		return 0;
	}
	if (st == TS_RUNNING || st == TS_YIELDED)
		return moirai__err(-EBUSY, "cancel: the task is running");
	return moirai__err(-EALREADY, "cancel: the task has finished or was cancelled already");
}

bool moirai_task_is_done(const struct moirai_task *h)
{
	int gen;
	struct rt_task *t = h ? handle_task(h, "is_done", &gen) : NULL;

	return t && state_done(atomic_load_explicit(&t->state, memory_order_acquire));
}

/* ---- group wait ------------------------------------------------------ */

static int group_attempt(void *ctx)
{
	return !(atomic_load_explicit(&((struct moirai_group *)ctx)->count, memory_order_acquire) &
		 RT_GROUP_PENDING_MASK);
}

int moirai_group_wait(struct moirai_group *g, int64_t timeout_ns, int *first_error)
{
	int rc;

	if (!g || g->magic != GROUP_MAGIC)
		return moirai__err(-EINVAL, "group wait: not a live group");
	rc = wait_done(g->rt, &g->wq, group_attempt, g, timeout_ns, "group wait");
	if (rc)
		return rc;
	if (first_error)
		*first_error = atomic_load_explicit(&g->first_error, memory_order_relaxed);
	return 0;
}
