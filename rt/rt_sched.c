/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The step function: every scheduling decision of a worker, in one place
 * that takes the clock as an argument (SPDK's spdk_thread_poll), so that
 * tests drive it single-threaded with a fake clock.  One step fires due
 * timers, runs due pollers, moves mailbox submissions into the run
 * queues, then dispatches tasks: it picks a level (the most urgent that
 * has work, unless aging says a lower one has waited too long), pops a
 * task at that level (newest first, with a bounded run of those before
 * the oldest gets a turn), and when the worker has nothing of its own,
 * steals along the plan's steal order.
 *
 * Also here: the searching count and the wake-ups that go with it (the
 * Tokio scheme): a worker that runs dry counts itself as searching; a
 * spawn wakes a parked worker only when nobody searches; a searcher that
 * finds work and was the last one wakes the next parked worker, so work
 * fans out one wake-up at a time instead of in a thundering herd.
 */
#include <string.h>

#include "rt_int.h"

/* ---- searching and waking ------------------------------------------- */

void rt_search_begin(struct rt_worker *w)
{
	if (w->searching)
		return;
	w->searching = true;
	atomic_fetch_add_explicit(&w->rt->searching, 1, memory_order_relaxed);
}

void rt_search_end(struct rt_worker *w)
{
	if (!w->searching)
		return;
	w->searching = false;
	/* The last searcher to find work passes the baton: there may be
	 * more work than it can take (it stole a batch). */
	if (atomic_fetch_sub_explicit(&w->rt->searching, 1, memory_order_relaxed) == 1 &&
	    rt_work_visible(w))
		rt_notify_one(w->rt);
}

void rt_wake_worker(struct rt_worker *w)
{
	moirai__full_fence();
	if (!moirai__waitq_has_waiters(&w->wq))
		return;
	rt_worker_wake(w, 1);
	atomic_fetch_add_explicit(&w->rc.wakeups, 1, memory_order_relaxed);
}

/*
 * Claim a parked worker of @rt (among those @accept allows) and wake it as
 * a searcher.  The idle bitmap only names candidates; the claim is the CAS
 * of the worker's run state from PARKED to... the worker itself sees the
 * claim when it wakes (run_state exchange in rt_worker.c).
 */
static bool claim_and_wake(struct moirai_rt *rt, int node_idx)
{
	for (int i = 0; i < RT_IDLE_WORDS && i * 64 < rt->nworkers; i++) {
		uint64_t m = atomic_load_explicit(&rt->idle[i], memory_order_relaxed);

		while (m) {
			int b = __builtin_ctzll(m);
			struct rt_worker *v = rt->w[i * 64 + b];
			uint32_t parked = WS_PARKED;

			m &= m - 1;
			if (node_idx >= 0 && v->node_idx != node_idx)
				continue;
			/* Count it as searching before it can run (and leave). */
			atomic_fetch_add_explicit(&rt->searching, 1, memory_order_relaxed);
			if (!atomic_compare_exchange_strong_explicit(
				    &v->run_state, &parked, WS_CLAIMED, memory_order_acq_rel,
				    memory_order_relaxed)) {
				atomic_fetch_sub_explicit(&rt->searching, 1, memory_order_relaxed);
				continue;
			}
			atomic_fetch_and_explicit(&rt->idle[i], ~(1ull << b), memory_order_relaxed);
			rt_worker_wake(v, 1);
			atomic_fetch_add_explicit(&v->rc.wakeups, 1, memory_order_relaxed);
			return true;
		}
	}
	return false;
}

void rt_notify_one(struct moirai_rt *rt)
{
	if (rt->nworkers == 1)
		return; /* nobody else to wake */
	/* F1 of the park protocol: our push before the loads below; pairs
	 * with the fence a parking worker issues after setting its idle bit
	 * (rt_worker.c), so either it sees our work or we see its bit. */
	moirai__full_fence();
	if (atomic_load_explicit(&rt->searching, memory_order_relaxed) > 0)
		return;
	claim_and_wake(rt, -1);
}

/* Strict-node work: only that node's workers can take it, so a searcher
 * elsewhere does not count. */
void rt_notify_node(struct moirai_rt *rt, int node_idx)
{
	moirai__full_fence();
	claim_and_wake(rt, node_idx);
}

/* ---- local queues ------------------------------------------------------ */

static struct moirai_ring *pnode_ring(const struct moirai_rt *rt, int node_idx, int level)
{
	return rt->pnode_mbox[node_idx * RT_LEVELS + level];
}

static unsigned level_limit(const struct rt_worker *w)
{
	return w->critical_only ? 1 : RT_LEVELS;
}

/* Relaxed flag: a submitter stores it before its enqueue, and the
 * enqueue-then-fence / park-then-fence pairing that makes the ring visible
 * to a worker's last look makes the flag visible too. */
static bool pnode_has(const struct rt_worker *w, int l)
{
	return atomic_load_explicit(&w->rt->pnode_used, memory_order_relaxed) &&
	       moirai_ring_count(pnode_ring(w->rt, w->node_idx, l)) > 0;
}

static bool level_has_work(const struct rt_worker *w, int l)
{
	return rt_deque_size(&w->dq[l]) > 0 || w->fifo_len[l] > 0 || pnode_has(w, l);
}

/* Out of line and cold: rt_push_local's fast path keeps few registers. */
__attribute__((noinline, cold)) static void spill(struct rt_worker *w, int l)
{
	struct moirai_rt *rt = w->rt;
	struct moirai__list batch;
	unsigned n = 0;

	/* Move the oldest half out, where any worker can find it. */
	moirai__list_init(&batch);
	for (int64_t k = rt_deque_size(&w->dq[l]) / 2; k > 0; k--) {
		bool lost;
		struct rt_task *t = rt_deque_steal(&w->dq[l], &lost);

		if (!t) {
			if (lost)
				k++;
			else
				break;
			continue;
		}
		moirai__list_add_tail(&batch, &t->link);
		n++;
	}
	pthread_mutex_lock(&rt->ovf_lock);
	while (!moirai__list_empty(&batch)) {
		struct moirai__list *it = batch.next;

		moirai__list_del(it);
		moirai__list_add_tail(&rt->ovf[l], it);
	}
	pthread_mutex_unlock(&rt->ovf_lock);
	atomic_fetch_add_explicit(&rt->ovf_count, n, memory_order_release);
	atomic_fetch_add_explicit(&rt->spills, n, memory_order_relaxed);
}

void rt_push_local(struct rt_worker *w, struct rt_task *t)
{
	int l = t->level;

	if (moirai_unlikely(t->flags & TF_STRICT_WORKER)) {
		moirai__list_add_tail(&w->fifo[l], &t->link);
		RT_COUNT(w->fifo_len[l], 1);
		return;
	}
	if (moirai_likely(rt_deque_push(&w->dq[l], t)))
		return;
	spill(w, l);
	if (!rt_deque_push(&w->dq[l], t)) {
		/* Thieves refilled nothing: the deque cannot be full after a
		 * spill of half, unless capacity is 1; keep it locally. */
		moirai__list_add_tail(&w->fifo[l], &t->link);
		RT_COUNT(w->fifo_len[l], 1);
	}
}

/*
 * Move mailbox submissions into the run queues.  Submitters raise
 * mbox_hint after their enqueue, so an empty drain (the common case inside
 * joins and loops) is one load of a word on the worker's first line, not
 * five ring operations.  Acquire on the exchange pairs with their release
 * store of the hint: every enqueue before it is visible to the dequeues.
 */
static void drain_mailboxes(struct rt_worker *w)
{
	void *buf[RT_DRAIN_BATCH];
	unsigned n, more = 0;

	if (!atomic_load_explicit(&w->mbox_hint, memory_order_relaxed))
		return;
	atomic_exchange_explicit(&w->mbox_hint, 0, memory_order_acquire);
	n = moirai_ring_dequeue_burst(w->strict_mbox, buf, RT_DRAIN_BATCH, NULL);
	more |= n == RT_DRAIN_BATCH;
	for (unsigned i = 0; i < n; i++) {
		struct rt_task *t = buf[i];

		/* Acquire pairs with the submitter's release store of QUEUED
		 * (mailbox_put): its fields are visible whatever the ring's own
		 * ordering (TSan does not see the RTS ring bodies). */
		(void)atomic_load_explicit(&t->state, memory_order_acquire);
		moirai__list_add_tail(&w->fifo[t->level], &t->link);
		RT_COUNT(w->fifo_len[t->level], 1);
	}
	for (unsigned l = 0; l < level_limit(w); l++) {
		n = moirai_ring_dequeue_burst(w->mbox[l], buf, RT_DRAIN_BATCH, NULL);
		more |= n == RT_DRAIN_BATCH;
		/* The whole burst's descriptors are in flight from other cores'
		 * caches: ask for them all before touching the first. */
		if (w->prefetch)
			for (unsigned i = 0; i < n; i++)
				moirai_prefetch_w(buf[i]);
		for (unsigned i = 0; i < n; i++) {
			(void)atomic_load_explicit(&((struct rt_task *)buf[i])->state,
						   memory_order_acquire);
			rt_push_local(w, buf[i]);
		}
	}
	/* A full batch may have left more behind: look again next time. */
	if (more)
		atomic_store_explicit(&w->mbox_hint, 1, memory_order_relaxed);
}

static struct rt_task *fifo_pop(struct rt_worker *w, int l)
{
	struct rt_task *t = moirai__list_first(&w->fifo[l], struct rt_task, link);

	if (t) {
		moirai__list_del(&t->link);
		RT_COUNT(w->fifo_len[l], (unsigned)-1);
	}
	return t;
}

static struct rt_task *own_oldest(struct rt_worker *w, int l)
{
	for (;;) {
		bool lost;
		struct rt_task *t = rt_deque_steal(&w->dq[l], &lost);

		if (t || !lost)
			return t;
	}
}

/*
 * Pop one task of level @l.  Newest first (take at the bottom) keeps
 * fork-join depth first and caches warm; every lifo_limit-th pop, and every
 * pop that aging forced, is a FIFO turn instead: the oldest of the deque's
 * top and the local FIFO list (strict tasks, continuations), alternately,
 * so nothing queued here waits more than ~2 x lifo_limit pops of its level.
 */
static struct rt_task *pop_level(struct rt_worker *w, int l, bool fifo_turn)
{
	struct rt_task *t = NULL;

	if (!fifo_turn && w->lifo_run[l] < w->rt->cfg.lifo_limit) {
		t = rt_deque_take(&w->dq[l]);
		if (t) {
			w->lifo_run[l]++;
			return t;
		}
		t = fifo_pop(w, l);
	} else {
		w->lifo_run[l] = 0;
		if ((w->fifo_toggle[l]++ & 1) && w->fifo_len[l])
			t = fifo_pop(w, l);
		if (!t)
			t = own_oldest(w, l);
		if (!t)
			t = fifo_pop(w, l);
	}
	if (!t) {
		if (!atomic_load_explicit(&w->rt->pnode_used, memory_order_relaxed) ||
		    moirai_ring_dequeue_burst(pnode_ring(w->rt, w->node_idx, l), (void **)&t, 1,
					      NULL) == 0)
			return NULL;
		/* Acquire pairs with the submitter's release of QUEUED: its
		 * fields are ours to read (the ring's own ordering aside). */
		(void)atomic_load_explicit(&t->state, memory_order_acquire);
	}
	return t;
}

/* Whether level @l (with work) waited past an aging bound. */
static bool starved(const struct rt_worker *w, int l, uint64_t now)
{
	const struct moirai_rt_config *c = &w->rt->cfg;

	return w->age_count[l] >= c->aging_dispatches || now - w->served_at[l] >= c->aging_ns;
}

/*
 * Which level to serve next: the most urgent with work, unless a less
 * urgent one has been passed over aging_dispatches times or for aging_ns
 * (the least urgent such level first: it is the most starved).  Returns
 * -1 when this worker has no work of its own.  Only chooses (and forgets
 * the waits of empty levels, @has says which have work): the dispatch is
 * counted by account_dispatch() once it is known what runs instead.
 */
static int pick_level(struct rt_worker *w, uint64_t now, bool *aged, bool has[RT_LEVELS])
{
	unsigned lim = level_limit(w);
	int top = -1;

	for (unsigned l = 0; l < lim; l++) {
		has[l] = level_has_work(w, (int)l);
		if (!has[l]) {
			w->age_count[l] = 0;
			w->served_at[l] = now;
		} else if (top < 0) {
			top = (int)l;
		}
	}
	*aged = false;
	if (top < 0)
		return -1;
	for (int l = (int)lim - 1; l > top; l--) {
		if (has[l] && starved(w, l, now)) {
			*aged = true;
			top = l;
			break;
		}
	}
	return top;
}

/*
 * Count a dispatch of level @served for aging: every less urgent level
 * with work was passed over once more, and @served itself starts waiting
 * afresh.  @local false: the task came from elsewhere (a sibling's
 * critical task), so no level of ours was served and each one with work,
 * @served included, was passed over: otherwise a stream of siblings'
 * critical tasks would keep a level here "served" without running it.
 */
static void account_dispatch(struct rt_worker *w, int served, bool local, const bool has[],
			     uint64_t now)
{
	for (int l = local ? served + 1 : served; l < (int)level_limit(w); l++)
		if (has[l])
			w->age_count[l]++;
	if (local) {
		w->age_count[served] = 0;
		w->served_at[served] = now;
	}
}

/* ---- stealing -------------------------------------------------------- */

static struct rt_task *steal_deque(struct rt_worker *w, struct rt_worker *v, int l, int cls)
{
	int64_t avail = rt_deque_size(&v->dq[l]);
	int64_t want = (avail + 1) / 2, room;
	struct rt_task *first = NULL;
	unsigned got = 0, spins = 0;

	if (avail <= 0)
		return NULL;
	/*
	 * A lone task of a worker that is running a task is usually the child
	 * it is about to join (fork-join): taking it would turn a function
	 * call into a cross-core hand-off.  Leave it to the owner for a short
	 * grace period (a racy peek at the top slot is fine: descriptors are
	 * type-stable, and a wrong guess only delays or hastens one steal).
	 */
	if (avail == 1 && atomic_load_explicit(&v->run_state, memory_order_relaxed) == WS_RUNNING) {
		struct rt_task *t = atomic_load_explicit(
			&v->dq[l].slots[atomic_load_explicit(&v->dq[l].top, memory_order_relaxed) &
					v->dq[l].mask],
			memory_order_relaxed);
		uint64_t now = moirai__ticks();

		if (t &&
		    now - __atomic_load_n(&t->t_submit, __ATOMIC_RELAXED) < w->rt->lone_grace_ticks)
			return NULL;
	}
	if (want > (int64_t)RT_STEAL_BATCH)
		want = RT_STEAL_BATCH;
	room = w->dq[l].mask + 1 - rt_deque_size(&w->dq[l]);
	if (want > room + 1)
		want = room + 1;
	while ((int64_t)got < want) {
		bool lost;
		struct rt_task *t = rt_deque_steal(&v->dq[l], &lost);

		if (!t) {
			if (lost && ++spins < 8)
				continue;
			break;
		}
		if (!first)
			first = t;
		else if (!rt_deque_push(&w->dq[l], t))
			rt_push_local(w, t);
		got++;
	}
	if (got) {
		RT_COUNT(w->c.steals[cls], got);
		atomic_fetch_add_explicit(&v->rc.stolen_from, got, memory_order_relaxed);
	}
	return first;
}

/* A victim's mailboxes are fair game while it is busy or blocked: it
 * would not get to them before its current task ends. */
static struct rt_task *take_mailbox(struct rt_worker *w, struct rt_worker *v, int l, int cls)
{
	void *t;

	if (moirai_ring_dequeue_burst(v->mbox[l], &t, 1, NULL) == 0)
		return NULL;
	/* Acquire pairs with the submitter's release of QUEUED (mailbox_put). */
	(void)atomic_load_explicit(&((struct rt_task *)t)->state, memory_order_acquire);
	RT_COUNT(w->c.steals[cls], 1);
	atomic_fetch_add_explicit(&v->rc.stolen_from, 1, memory_order_relaxed);
	return t;
}

static struct rt_task *steal_mailbox(struct rt_worker *w, struct rt_worker *v, int l, int cls)
{
	uint32_t st = atomic_load_explicit(&v->run_state, memory_order_relaxed);

	if (st != WS_RUNNING && !atomic_load_explicit(&v->block_depth, memory_order_relaxed))
		return NULL;
	return take_mailbox(w, v, l, cls);
}

static struct rt_task *take_overflow(struct rt_worker *w)
{
	struct moirai_rt *rt = w->rt;
	struct rt_task *t = NULL;

	if (!atomic_load_explicit(&rt->ovf_count, memory_order_acquire))
		return NULL;
	pthread_mutex_lock(&rt->ovf_lock);
	for (unsigned l = 0; l < level_limit(w) && !t; l++) {
		t = moirai__list_first(&rt->ovf[l], struct rt_task, link);
		if (t)
			moirai__list_del(&t->link);
	}
	pthread_mutex_unlock(&rt->ovf_lock);
	if (t)
		atomic_fetch_sub_explicit(&rt->ovf_count, 1, memory_order_relaxed);
	return t;
}

static struct rt_task *steal(struct rt_worker *w)
{
	struct moirai_rt *rt = w->rt;
	unsigned lim = level_limit(w);
	struct rt_task *t = take_overflow(w);

	if (t)
		return t;
	/* Highest priority first across all victims, then the next level:
	 * a critical task two nodes away beats a background one next door. */
	for (unsigned l = 0; l < lim; l++) {
		for (int i = 0; i < w->nsteal; i++) {
			struct rt_worker *v = rt->w[w->steal_order[i]];
			int cls = w->steal_class[i];

			if (v->critical_only && l != 0)
				continue;
			RT_COUNT(w->c.steal_attempts, 1);
			t = steal_deque(w, v, (int)l, cls);
			if (!t)
				t = steal_mailbox(w, v, (int)l, cls);
			if (t)
				return t;
		}
	}
	return NULL;
}

bool rt_urgent_waiting(const struct rt_worker *w, int level)
{
	/* The mailboxes too: a nudge that came while this task was being
	 * chosen must not be cleared by its start.  Submitters raise the hint
	 * after their enqueue, so with the hint down the mailboxes held
	 * nothing at the last drain and the ring headers (other cores'
	 * lines) need not be read: this runs before every task. */
	bool mail = atomic_load_explicit(&w->mbox_hint, memory_order_relaxed) != 0;

	for (int l = 0; l < level; l++)
		if (level_has_work(w, l) || (mail && moirai_ring_count(w->mbox[l])))
			return true;
	return false;
}

bool rt_work_queued(const struct rt_worker *w)
{
	if (moirai_ring_count(w->strict_mbox))
		return true;
	for (unsigned l = 0; l < RT_LEVELS; l++)
		if (rt_deque_size(&w->dq[l]) > 0 || moirai_ring_count(w->mbox[l]))
			return true;
	return false;
}

bool rt_work_visible(struct rt_worker *w)
{
	struct moirai_rt *rt = w->rt;
	unsigned lim = level_limit(w);

	if (moirai_ring_count(w->strict_mbox))
		return true;
	for (unsigned l = 0; l < lim; l++) {
		if (level_has_work(w, (int)l) || moirai_ring_count(w->mbox[l]))
			return true;
	}
	if (atomic_load_explicit(&rt->ovf_count, memory_order_acquire))
		return true;
	for (int i = 0; i < w->nsteal; i++) {
		struct rt_worker *v = rt->w[w->steal_order[i]];

		for (unsigned l = 0; l < lim; l++)
			if (!(v->critical_only && l) && rt_deque_size(&v->dq[l]) > 0)
				return true;
	}
	return false;
}

/* How many of the nearest siblings a dispatch looks at for critical work. */
#define RT_CRIT_PEEK 4

static struct rt_task *take_sibling_critical(struct rt_worker *w)
{
	int n = w->nsteal < RT_CRIT_PEEK ? w->nsteal : RT_CRIT_PEEK;

	for (int i = 0; i < n; i++) {
		struct rt_worker *v = w->rt->w[w->steal_order[i]];
		struct rt_task *t;

		/* The count first: a read of a line the owner rarely writes. */
		if (moirai_ring_count(v->mbox[0]) &&
		    (t = take_mailbox(w, v, 0, w->steal_class[i])) != NULL)
			return t;
	}
	return NULL;
}

/* The next task for @w: its own by level and aging, else stolen. */
static struct rt_task *next_task(struct rt_worker *w, uint64_t now)
{
	bool aged, has[RT_LEVELS];
	int l = pick_level(w, now, &aged, has);
	struct rt_task *t = NULL;

	/* Before a less urgent task of our own: a critical task waiting in a
	 * near sibling's mailbox.  The sibling may be preempted by the kernel
	 * or in a long task; a shared FIFO would be served by whichever thread
	 * runs, and per-worker queues must not do worse for critical work.
	 * Aging counts it as a more urgent dispatch of each of our levels, the
	 * most urgent included, and a level that waited past a bound is not
	 * passed over again: under a stream of them our work still runs. */
	if (l != 0 && !aged && (l < 0 || !starved(w, l, now)) &&
	    (t = take_sibling_critical(w)) != NULL) {
		if (l > 0)
			account_dispatch(w, l, false, has, now);
		rt_search_end(w);
		return t;
	}
	if (l >= 0) {
		account_dispatch(w, l, true, has, now);
		t = pop_level(w, l, aged);
		if (t && aged)
			RT_COUNT(w->c.aged[l], 1);
	}
	if (!t)
		t = steal(w);
	if (t)
		rt_search_end(w);
	return t;
}

/*
 * Inside a join: the newest task first, most urgent level first, no FIFO
 * turns and no aging.  The newest tasks are the joiner's own descendants,
 * so running them nested keeps the stack as deep as the recursion and no
 * deeper; an old task (a FIFO turn) would nest a whole unrelated subtree.
 * At the nesting limit only the worker's own newest tasks are taken, which
 * still finishes the join's own descendants instead of deadlocking.
 */
static struct rt_task *help_task(struct rt_worker *w, bool may_steal)
{
	struct rt_task *t = NULL;

	for (unsigned l = 0; l < level_limit(w) && !t; l++) {
		/* Most levels are empty inside a join: two local loads each,
		 * not two calls. */
		if (rt_deque_size(&w->dq[l]) > 0)
			t = rt_deque_take(&w->dq[l]);
		if (!t && w->fifo_len[l])
			t = fifo_pop(w, (int)l);
	}
	if (!t && may_steal)
		t = steal(w);
	return t;
}

void rt_step(struct rt_worker *w, uint64_t now, unsigned max_tasks, struct rt_step *out)
{
	/* A step also ends once its tasks ran for a task budget: pollers and
	 * timers (a pipeline's RX and TX) then wait at most that long, or one
	 * longer task, instead of max_tasks tasks of any length. */
	uint64_t start = now, budget = w->rt->cfg.task_budget_ns;
	int level;

	memset(out, 0, sizeof(*out));
	out->can_park = w->no_park_pollers == 0;
	if (w->ntimers)
		rt_timers_run(w, now, out);
	if (w->npollers)
		rt_pollers_run(w, now, out);
	drain_mailboxes(w);
	for (unsigned i = 0; i < max_tasks; i++) {
		struct rt_task *t;

		/* Fetch what was submitted meanwhile before choosing (one
		 * relaxed load of the hint when nothing was): a critical task in
		 * the mailbox must not wait for the end of the step while the
		 * worker picks background tasks one after another. */
		if (i)
			drain_mailboxes(w);
		t = next_task(w, now);
		if (!t)
			break;
		/* The next task's descriptor, while this one runs. */
		if (w->prefetch) {
			struct rt_task *nx = rt_deque_peek(&w->dq[t->level]);

			if (nx)
				moirai_prefetch_w(nx);
		}
		level = t->level;
		now = rt_task_run(w, t, now);
		/* The level was being served while the task ran: its wait for
		 * aging starts when the task ends, or a long task would make
		 * its own level look starved at the very next decision. */
		w->served_at[level] = now;
		out->ran++;
		/* 0 when the task was not run (cancelled): read afresh. */
		w->chain_ticks = w->last_end_ticks;
		w->last_end_ticks = 0;
		if (now - start >= budget)
			break;
	}
	w->chain_ticks = 0;
	if (w->help_depth == 0)
		rt_qsbr_quiescent(w);
	if (w->ntimers)
		out->next_due = w->timers[0]->expiry_ns;
	if (out->busy || out->ran)
		out->can_park = false;
}

bool rt_help_one(struct rt_worker *w)
{
	struct rt_task *t;

	w->help_depth++;
	drain_mailboxes(w);
	t = help_task(w, w->help_depth <= RT_MAX_HELP_DEPTH);
	if (t) {
		rt_search_end(w);
		/* The scheduling clock rt_task_run() returns is not used here
		 * (manual mode reads its own), so no clock read per task. */
		rt_task_run(w, t, 0);
	}
	w->help_depth--;
	return t != NULL;
}
