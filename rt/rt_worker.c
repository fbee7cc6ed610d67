/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime's lifecycle and threads: create (topology, plan, placement,
 * pools, rings), the pinned worker thread that loops around the step
 * function and decides whether to spin or park, the housekeeping thread
 * (stuck tasks, task budgets, deferred frees), stop, wait and destroy.
 *
 * Parking (the other half of rt_notify_one() in rt_sched.c): a worker
 * leaves the searching count, announces itself on its waitq and in the
 * idle bitmap, issues a seq_cst fence, then looks at every queue it could
 * take from one last time before it sleeps.  A submitter pushes, fences,
 * then reads the searching count and the bitmap.  The two fences are
 * ordered, so either the worker sees the work or the submitter sees the
 * worker: no lost wake-up, and no system call when nobody sleeps.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moirai/numa.h"
#include "rt_int.h"
#include "rt_pub.h"

#define DEF_DEQUE	     4096u
#define DEF_AGING_DISPATCHES 32u
#define DEF_AGING_NS	     (2u * 1000u * 1000u)
#define DEF_LIFO_LIMIT	     16u
#define DEF_STOP_TIMEOUT_NS  (10ull * 1000u * 1000u * 1000u)
#define WORKER_STACK	     (8u << 20)
#define STEP_TASKS	     64u

_Thread_local struct moirai__rt_tls moirai_rt_tls;
_Thread_local struct rt_worker *rt_self_worker;

static _Atomic unsigned rt_ids;

struct moirai_rt *moirai_rt_current(void)
{
	return rt_self_worker ? rt_self_worker->rt : NULL;
}

bool moirai_rt_budget_spent(void)
{
	struct rt_worker *w = rt_self_worker;
	uint64_t since;

	if (!w)
		return false;
	moirai_rt_tls.yield_checks = 0;
	since = atomic_load_explicit(&w->running_since, memory_order_relaxed);
	return since && moirai__ticks() - since >= w->rt->budget_ticks;
}

static void bind_thread(struct rt_worker *w)
{
	rt_self_worker = w;
	moirai_rt_tls.worker_plus1 = w ? w->idx + 1 : 0;
	moirai_rt_tls.yield_checks = 0;
	moirai_rt_tls.yield_word = w ? &w->yield_word : NULL;
}

/* ---- configuration ---------------------------------------------------- */

/* Zero fields take the options table (MOIRAI_RT_* and friends). */
static int fill_defaults(struct moirai_rt_config *c)
{
	if (!c->mailbox_size)
		c->mailbox_size = (unsigned)moirai_option_get(MOIRAI_OPT_RT_MAILBOX);
	if (!c->tasks_per_node)
		c->tasks_per_node = (unsigned)moirai_option_get(MOIRAI_OPT_RT_TASKS);
	if (!c->deque_size)
		c->deque_size = DEF_DEQUE;
	if (!c->aging_dispatches)
		c->aging_dispatches = DEF_AGING_DISPATCHES;
	if (!c->aging_ns)
		c->aging_ns = DEF_AGING_NS;
	if (!c->lifo_limit)
		c->lifo_limit = DEF_LIFO_LIMIT;
	if (!c->task_budget_ns)
		c->task_budget_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_RT_BUDGET_US) * 1000u;
	if (!c->stuck_ns) {
		long ms = moirai_option_get(MOIRAI_OPT_RT_STUCK_MS);

		c->stuck_ns = ms ? (uint64_t)ms * 1000000u : UINT64_MAX;
	}
	if (!c->stop_timeout_ns)
		c->stop_timeout_ns = DEF_STOP_TIMEOUT_NS;
	if (!c->spin_ns)
		c->spin_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);
	if (c->idle == MOIRAI_RT_IDLE_PARK &&
	    strcmp(moirai_option_get_str(MOIRAI_OPT_RT_IDLE), "spin") == 0)
		c->idle = MOIRAI_RT_IDLE_SPIN;
	if (!(c->flags & MOIRAI_RT_F_NO_PREFETCH) && !moirai_option_get(MOIRAI_OPT_RT_PREFETCH))
		c->flags |= MOIRAI_RT_F_NO_PREFETCH;
	if (c->flags & ~(MOIRAI_RT_F_NO_PREFETCH | MOIRAI_RT_F_STATS))
		return moirai__err(-EINVAL, "rt: unknown flags 0x%x", c->flags);
	if (c->idle != MOIRAI_RT_IDLE_PARK && c->idle != MOIRAI_RT_IDLE_SPIN)
		return moirai__err(-EINVAL, "rt: unknown idle policy %d", (int)c->idle);
	if (!moirai__is_pow2(c->mailbox_size) || c->mailbox_size > (1u << 20))
		return moirai__err(-EINVAL, "rt: mailbox_size %u is not a power of two in 2..2^20",
				   c->mailbox_size);
	if (!moirai__is_pow2(c->deque_size) || c->deque_size < 2 || c->deque_size > (1u << 24))
		return moirai__err(-EINVAL, "rt: deque_size %u is not a power of two in 2..2^24",
				   c->deque_size);
	if (c->tasks_per_node > MOIRAI_POOL_MAX_OBJS)
		return moirai__err(-EINVAL, "rt: tasks_per_node %u is above %u", c->tasks_per_node,
				   MOIRAI_POOL_MAX_OBJS);
	return 0;
}

/* ---- per-worker state ------------------------------------------------- */

static enum moirai_rt_steal_class steal_class(const struct rt_start *a,
					      const struct moirai_plan_worker *v)
{
	if (v->core == a->core)
		return MOIRAI_RT_STEAL_SMT;
	if (a->l3 >= 0 && v->l3 == a->l3)
		return MOIRAI_RT_STEAL_L3;
	if (v->node_idx == a->node_idx)
		return MOIRAI_RT_STEAL_NODE;
	return MOIRAI_RT_STEAL_REMOTE;
}

static void worker_free(struct rt_worker *w)
{
	if (!w)
		return;
	rt_pollers_fini(w);
	if (w->efd >= 0)
		close(w->efd);
	for (int l = 0; l < RT_LEVELS; l++) {
		if (w->dq[l].slots)
			rt_deque_fini(&w->dq[l]);
		moirai_ring_destroy(w->mbox[l]);
	}
	moirai_ring_destroy(w->strict_mbox);
	moirai_pool_cache_destroy(w->cache);
	moirai_free(w->timers);
	moirai_free(w->lat);
	moirai_free(w->steal_order);
	moirai_free(w->steal_class);
	moirai_free(w);
}

/* Build worker @a->idx's state on its node (called on the pinned thread). */
static int worker_init(const struct rt_start *a, struct rt_worker **out)
{
	struct moirai_rt *rt = a->rt;
	const struct moirai_rt_config *c = &rt->cfg;
	struct moirai_plan_worker pw;
	char name[MOIRAI_RING_NAME_MAX + 1];
	struct rt_worker *w;
	int rc;

	w = moirai_malloc_node_flags(sizeof(*w), MOIRAI_CACHE_LINE, a->node,
				     MOIRAI_ALLOC_F_PREFERRED);
	if (!w)
		return moirai__err(-ENOMEM, "rt: worker %d: no memory for its state", a->idx);
	memset(w, 0, sizeof(*w));
	w->rt = rt;
	w->idx = a->idx;
	w->pu = a->pu;
	w->node = a->node;
	w->plan_pu = a->plan_pu;
	w->plan_node = a->plan_node;
	w->node_idx = a->node_idx;
	w->l3 = a->l3;
	w->core = a->core;
	w->critical_only = (unsigned)a->idx < c->critical_workers;
	w->prefetch = !(c->flags & MOIRAI_RT_F_NO_PREFETCH);
	w->home = a->home;
	atomic_init(&w->run_state, WS_STARTING);
	atomic_init(&w->cur_level, RT_LEVELS);
	atomic_init(&w->running_since, 0);
	atomic_init(&w->cur_name, NULL);
	moirai__waitq_init(&w->wq);
	atomic_init(&w->fd_sleep, 0);
	w->efd = -1;
	moirai__list_init(&w->pollers);
	w->spin_cur = c->spin_ns;
	for (int l = 0; l < RT_LEVELS; l++) {
		moirai__list_init(&w->fifo[l]);
		w->served_at[l] = rt->clock();
	}

	rc = moirai_plan_worker(a->plan, a->idx, &pw);
	if (rc)
		goto err;
	w->nsteal = pw.steal_count;
	w->steal_order = moirai_malloc_node_flags((size_t)(pw.steal_count + 1) * sizeof(int), 0,
						  a->node, MOIRAI_ALLOC_F_PREFERRED);
	w->steal_class = moirai_malloc_node_flags((size_t)pw.steal_count + 1, 0, a->node,
						  MOIRAI_ALLOC_F_PREFERRED);
	w->lat = moirai_malloc_node_flags(2 * RT_LEVELS * sizeof(*w->lat), MOIRAI_CACHE_LINE,
					  a->node, MOIRAI_ALLOC_F_PREFERRED);
	if (!w->steal_order || !w->steal_class || !w->lat) {
		rc = moirai__err(-ENOMEM, "rt: worker %d: no memory for its state", a->idx);
		goto err;
	}
	memset(w->lat, 0, 2 * RT_LEVELS * sizeof(*w->lat));
	for (int i = 0; i < pw.steal_count; i++) {
		struct moirai_plan_worker v;

		w->steal_order[i] = pw.steal_order[i];
		rc = moirai_plan_worker(a->plan, pw.steal_order[i], &v);
		if (rc)
			goto err;
		w->steal_class[i] = (uint8_t)steal_class(a, &v);
	}
	for (int l = 0; l < RT_LEVELS; l++) {
		rc = rt_deque_init(&w->dq[l], c->deque_size, a->node);
		if (rc)
			goto err;
		snprintf(name, sizeof(name), "rt%u.w%d.%d", rt->id, a->idx, l);
		rc = moirai_ring_create(name, c->mailbox_size, a->node, 0, &w->mbox[l]);
		if (rc)
			goto err;
	}
	snprintf(name, sizeof(name), "rt%u.w%d.s", rt->id, a->idx);
	rc = moirai_ring_create(name, c->mailbox_size, a->node,
				MOIRAI_RING_F_MP_RTS_ENQ | MOIRAI_RING_F_SC_DEQ, &w->strict_mbox);
	if (rc)
		goto err;
	rc = moirai_pool_cache_create(a->home->pool, MOIRAI_POOL_CACHE_DEFAULT, &w->cache);
	if (rc)
		goto err;
	*out = w;
	return 0;

err:
	worker_free(w);
	return rc;
}

/* ---- the worker thread ---------------------------------------------- */

static void wake_all(struct moirai_rt *rt)
{
	for (int i = 0; i < rt->nworkers; i++)
		if (rt->w[i])
			rt_worker_wake(rt->w[i], INT_MAX);
}

static void park(struct rt_worker *w, uint64_t deadline)
{
	struct moirai_rt *rt = w->rt;
	uint64_t bit = 1ull << (w->idx % 64);
	_Atomic uint64_t *word = &rt->idle[w->idx / 64];
	uint32_t key, prev;

	rt_qsbr_offline(w);
	key = moirai__waitq_prepare(&w->wq);
	/* Leave the search first: a submitter that then sees no searcher
	 * finds our idle bit (set below, before the fence). */
	if (w->searching) {
		w->searching = false;
		atomic_fetch_sub_explicit(&rt->searching, 1, memory_order_relaxed);
	}
	atomic_store_explicit(&w->run_state, WS_PARKED, memory_order_relaxed);
	atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
	/* F2 of the park protocol (rt_notify_one() has F1). */
	moirai__full_fence();
	if (!rt_work_visible(w) && atomic_load(&rt->state) != RS_EXITING) {
		bool fds = atomic_load_explicit(&w->fd_sleep, memory_order_relaxed);

		/* A poller with a wake fd that still has work keeps us up. */
		if (!fds || rt_pollers_arm(w)) {
			RT_COUNT(w->c.parks, 1);
			w->parked_at = rt->clock();
			if (fds)
				rt_pollers_sleep(w, key, deadline);
			else
				moirai__waitq_park(&w->wq, key, deadline, 0);
		}
	}
	moirai__waitq_finish(&w->wq);
	atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed);
	/* Seq_cst, then the hk_long load: pairs with housekeeping's store of
	 * hk_long before it checks that everyone is parked. */
	prev = atomic_exchange(&w->run_state, WS_SPINNING);
	if (atomic_load(&rt->hk_long) && atomic_exchange(&rt->hk_long, 0))
		moirai__waitq_wake(&rt->hk_wq, 1, 0);
	/* Claimed by rt_notify_one(): it counted us as searching. */
	if (prev == WS_CLAIMED)
		w->searching = true;
	rt_qsbr_online(w);
}

/* Spin longer when work came soon after parking, shorter when sleeps
 * are long: between spin_ns / 8 and spin_ns. */
static void adapt_spin(struct rt_worker *w, uint64_t now)
{
	uint64_t max = w->rt->cfg.spin_ns, min = max / 8, slept = now - w->parked_at;

	if (slept < max && w->spin_cur < max)
		w->spin_cur = w->spin_cur * 2 > max ? max : w->spin_cur * 2;
	else if (slept > 16 * max && w->spin_cur > min)
		w->spin_cur = w->spin_cur / 2 < min ? min : w->spin_cur / 2;
}

bool rt_quiescent(const struct moirai_rt *rt)
{
	/* Done first, spawned second: a task's children are counted as
	 * spawned (release) before the task is counted as done, so equal sums
	 * mean nothing spawned before the done reads is still pending. */
	uint64_t done = atomic_load(&rt->ext_refused), spawned;

	for (int i = 0; i < rt->nworkers; i++)
		done += __atomic_load_n(&rt->w[i]->c.done, __ATOMIC_ACQUIRE);
	spawned = atomic_load(&rt->ext_spawned);
	for (int i = 0; i < rt->nworkers; i++)
		spawned += __atomic_load_n(&rt->w[i]->c.spawned, __ATOMIC_ACQUIRE);
	return done == spawned;
}

static void worker_loop(struct rt_worker *w)
{
	struct moirai_rt *rt = w->rt;
	uint64_t idle_since = 0;
	struct rt_step st;

	for (;;) {
		uint64_t now = rt->clock();
		uint32_t s;

		rt_step(w, now, STEP_TASKS, &st);
		if (st.ran || st.busy || st.fired) {
			idle_since = 0;
			continue;
		}
		s = atomic_load(&rt->state);
		if (s == RS_EXITING)
			break;
		if (s >= RS_DRAINING && rt_quiescent(rt)) {
			atomic_store(&rt->state, RS_EXITING);
			wake_all(rt);
			break;
		}
		rt_search_begin(w);
		if (!idle_since)
			idle_since = now;
		if (rt->cfg.idle == MOIRAI_RT_IDLE_SPIN || !st.can_park ||
		    now - idle_since < w->spin_cur) {
			moirai__cpu_relax();
			continue;
		}
		park(w, st.next_due);
		now = rt->clock();
		adapt_spin(w, now);
		idle_since = 0;
	}
	rt_search_end(w);
	rt_qsbr_offline(w);
	atomic_store_explicit(&w->run_state, WS_EXITED, memory_order_release);
}

static void *worker_main(void *arg)
{
	struct rt_start *a = arg;
	struct moirai_rt *rt = a->rt;
	struct rt_worker *w = NULL;
	char tname[16];
	int rc;

	snprintf(tname, sizeof(tname), "moirai-w%d", a->idx);
	pthread_setname_np(pthread_self(), tname);
	/* Pinned before it touches memory: first touch then lands on its node. */
	rc = moirai_numa_pin_thread(a->pu);
	if (!rc)
		rc = worker_init(a, &w);
	if (rc) {
		moirai__log(MOIRAI_LOG_ERROR, "rt: worker %d cannot start: %s", a->idx,
			    moirai_last_error());
		atomic_store(&rt->start_error, rc);
		atomic_fetch_add(&rt->started, 1);
		moirai__waitq_wake(&rt->hk_wq, INT_MAX, 0);
		return NULL;
	}
	bind_thread(w);
	/* Release: the worker's state before others find it in rt->w. */
	__atomic_store_n(&rt->w[a->idx], w, __ATOMIC_RELEASE);
	rt_qsbr_register(w);
	atomic_fetch_add(&rt->started, 1);
	moirai__waitq_wake(&rt->hk_wq, INT_MAX, 0);
	/* Everyone's state must exist before anyone steals. */
	while (atomic_load(&rt->state) == RS_STARTING) {
		uint32_t key = moirai__waitq_prepare(&w->wq);

		if (atomic_load(&rt->state) == RS_STARTING)
			moirai__waitq_park(&w->wq, key, 0, 0);
		moirai__waitq_finish(&w->wq);
	}
	atomic_store_explicit(&w->run_state, WS_SPINNING, memory_order_relaxed);
	if (atomic_load(&rt->state) != RS_EXITING)
		worker_loop(w);
	bind_thread(NULL);
	return NULL;
}

/* ---- housekeeping --------------------------------------------------- */

void rt_stuck_record(struct rt_worker *w, const char *name, uint64_t run_ns)
{
	struct moirai_rt *rt = w->rt;

	/* Copied: the stats outlive the task (its name is a static string by
	 * contract, but the report must not depend on it).  One lock so that a
	 * reader never pairs one report's name with another's run time. */
	pthread_mutex_lock(&rt->stuck_lock);
	snprintf(w->stuck_task, sizeof(w->stuck_task), "%s", name ? name : "?");
	w->stuck_run_ns = run_ns;
	atomic_fetch_add_explicit(&w->rc.stuck_reports, 1, memory_order_relaxed);
	pthread_mutex_unlock(&rt->stuck_lock);
}

/* Worker run times are in ticks (rt_task_run): compare in ticks. */
static void check_workers(struct moirai_rt *rt, bool *busy)
{
	const struct moirai_rt_config *c = &rt->cfg;
	uint64_t now = moirai__ticks();

	*busy = false;
	for (int i = 0; i < rt->nworkers; i++) {
		struct rt_worker *w = rt->w[i];
		uint64_t since = atomic_load_explicit(&w->running_since, memory_order_relaxed);

		if (!since || since >= now)
			continue;
		*busy = true;
		if (now - since >= rt->budget_ticks)
			__atomic_store_n(&w->yield_word, 1, __ATOMIC_RELAXED);
		/* Long in one task with work queued behind it: make sure a
		 * sibling is looking (cheap when one already is). */
		if (c->stuck_ns != UINT64_MAX && now - since >= rt->stuck_ticks &&
		    rt_work_queued(w))
			rt_notify_one(rt);
		if (c->stuck_ns != UINT64_MAX && now - since >= rt->stuck_ticks &&
		    w->reported_stuck != (uint32_t)since) {
			const char *name = atomic_load_explicit(&w->cur_name, memory_order_relaxed);
			uint64_t ran_ns = moirai__ticks_to_ns(now - since);

			w->reported_stuck = (uint32_t)since;
			/* In the stats as in the log: worker, task, run time. */
			rt_stuck_record(w, name, ran_ns);
			/* Every report is counted; the log says it once a second
			 * per worker, so a preempted box does not flood stderr. */
			if (w->logged_stuck_at &&
			    now - w->logged_stuck_at < moirai__ns_to_ticks(1000000000u))
				continue;
			w->logged_stuck_at = now;
			moirai__log(MOIRAI_LOG_WARN,
				    "rt: worker %d (moirai-w%d): task '%s' has run for %llu ms "
				    "(stuck-task threshold %llu ms); its queued work can be stolen",
				    i, i, name ? name : "?",
				    (unsigned long long)(ran_ns / 1000000u),
				    (unsigned long long)(c->stuck_ns / 1000000u));
		}
	}
}

static bool all_parked(const struct moirai_rt *rt)
{
	for (int i = 0; i < rt->nworkers; i++) {
		uint32_t s = atomic_load(&rt->w[i]->run_state);

		if (s != WS_PARKED && s != WS_EXITED)
			return false;
	}
	return true;
}

/*
 * Checks every worker each period (stuck_ns / 4, at least 1 ms) while any
 * may be running; when every worker is parked it sleeps until one wakes
 * (the worker wakes it: see park()), so an idle runtime costs nothing.
 */
static void *hk_main(void *arg)
{
	struct moirai_rt *rt = arg;
	const struct moirai_rt_config *c = &rt->cfg;
	uint64_t period = c->stuck_ns == UINT64_MAX ? 10u * 1000u * 1000u : c->stuck_ns / 4;

	pthread_setname_np(pthread_self(), "moirai-hk");
	if (period < 1000000u)
		period = 1000000u;
	while (!atomic_load(&rt->hk_stop)) {
		uint64_t now = rt->clock(), until = now + period;
		uint32_t key;
		bool busy = false;

		if (c->stuck_ns != UINT64_MAX || c->task_budget_ns)
			check_workers(rt, &busy);
		rt_deferred_collect(rt, false);
		key = moirai__waitq_prepare(&rt->hk_wq);
		/* Store hk_long, then look: pairs with park()'s exchange. */
		atomic_store(&rt->hk_long, 1);
		if (all_parked(rt) && !atomic_load(&rt->deferred_pending))
			until = 0; /* until a worker wakes, or a defer_free */
		else
			atomic_store(&rt->hk_long, 0);
		/* moirai-top: publish the stats when due (rt_pub.c). */
		until = rt_pub_tick(rt, until);
		if (!atomic_load(&rt->hk_stop))
			moirai__waitq_park(&rt->hk_wq, key, until, 0);
		moirai__waitq_finish(&rt->hk_wq);
		atomic_store(&rt->hk_long, 0);
	}
	return NULL;
}

/* ---- create / stop / destroy ---------------------------------------- */

static int live_cpus(int **pus, int **nodes, int *n)
{
	struct moirai_topo *live;
	int count, k = 0, rc = moirai_topo_load_live(&live);

	if (rc)
		return rc;
	count = moirai_topo_pu_count(live);
	*pus = malloc((size_t)count * sizeof(int));
	*nodes = malloc((size_t)count * sizeof(int));
	if (!*pus || !*nodes) {
		moirai_topo_destroy(live);
		return moirai__err(-ENOMEM, "rt: out of memory");
	}
	for (int i = 0; i < count; i++) {
		struct moirai_topo_pu pu;

		if (moirai_topo_pu(live, i, &pu) || !pu.online || !pu.allowed)
			continue;
		(*pus)[k] = pu.os_index;
		(*nodes)[k] = pu.node >= 0 ? pu.node : 0;
		k++;
	}
	moirai_topo_destroy(live);
	*n = k;
	return k ? 0 : moirai__err(-ENODEV, "rt: no usable CPU on this machine");
}

static int node_pool(struct moirai_rt *rt, int node, struct rt_node **out)
{
	char name[MOIRAI_POOL_NAME_MAX + 1];
	int rc;

	for (int i = 0; i < rt->nnodes; i++) {
		if (rt->nodes[i].node == node) {
			*out = &rt->nodes[i];
			return 0;
		}
	}
	snprintf(name, sizeof(name), "rt%u.tasks.n%d", rt->id, node);
	/* Populated: the pool is cycled in FIFO order, so a lazily faulted one
	 * takes a fault (a huge page: milliseconds here) on spawns throughout
	 * the first 65536 tasks, inside whatever worker spawns (perf: the
	 * pipeline's RX worker in its first run). */
	rc = moirai_pool_create(name, sizeof(struct rt_task), rt->cfg.tasks_per_node, node,
				MOIRAI_POOL_F_CACHE_ALIGN | MOIRAI_POOL_F_POPULATE,
				&rt->nodes[rt->nnodes].pool);
	if (rc)
		return rc;
	rt->nodes[rt->nnodes].node = node;
	*out = &rt->nodes[rt->nnodes++];
	return 0;
}

uint64_t moirai__rt_tasks_in_use(const struct moirai_rt *rt)
{
	uint64_t n = 0;

	/* Every cache of a pool counts as free (moirai/pool.h), the workers'
	 * and the submitting threads' alike: exact while nobody spawns. */
	for (int i = 0; i < rt->nnodes; i++)
		n += moirai_pool_in_use_count(rt->nodes[i].pool);
	return n;
}

static void rt_free(struct moirai_rt *rt)
{
	uint64_t lost;

	rt_pub_fini(rt); /* moirai-top: unlink the stats segment (rt_pub.c) */
	if (rt->w) {
		for (int i = 0; i < rt->nworkers; i++)
			worker_free(rt->w[i]);
	}
	/* Workers are gone: every descriptor must be back in its pool, or a
	 * handle is still out.  Said here because nothing else can see it: a
	 * lost descriptor is inside the pool's slab, which is freed whole, so
	 * ASan and valgrind report no leak. */
	lost = moirai__rt_tasks_in_use(rt);
	if (lost)
		moirai__log(MOIRAI_LOG_WARN,
			    "rt: destroy: %llu task descriptors never went back to their pools "
			    "(handles not joined or detached, or lost)",
			    (unsigned long long)lost);
	if (rt->pnode_mbox) {
		for (int i = 0; i < rt->nplan_nodes * RT_LEVELS; i++)
			moirai_ring_destroy(rt->pnode_mbox[i]);
	}
	rt_deferred_collect(rt, true);
	for (int i = 0; i < rt->nnodes; i++)
		moirai_pool_destroy(rt->nodes[i].pool);
	rt_qsbr_fini(rt);
	free(rt->nodes);
	free(rt->pnode_mbox);
	free(rt->w);
	free(rt->starts);
	free(rt->threads);
	free(rt->thread_ok);
	free(rt->joined);
	pthread_mutex_destroy(&rt->stop_lock);
	pthread_mutex_destroy(&rt->join_lock);
	pthread_mutex_destroy(&rt->stuck_lock);
	pthread_mutex_destroy(&rt->ovf_lock);
	free(rt);
}

/* Everything but the threads; @manual: the caller builds the workers. */
static int rt_build(const struct moirai_rt_config *config, struct moirai_rt **out)
{
	struct moirai_topo *own_topo = NULL;
	const struct moirai_topo *topo;
	struct moirai_plan_opts po = { 0 };
	struct moirai_plan *plan = NULL;
	struct moirai_rt *rt;
	int *lpus = NULL, *lnodes = NULL, nlive = 0, rc;
	char name[MOIRAI_RING_NAME_MAX + 1];

	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return moirai__err(-ENOMEM, "rt: out of memory");
	if (config)
		rt->cfg = *config;
	rt->cfg.topo = NULL;
	rt->cfg.plan = NULL;
	rt->id = atomic_fetch_add(&rt_ids, 1);
	rt->clock = moirai_now_ns;
	pthread_mutex_init(&rt->stop_lock, NULL);
	pthread_mutex_init(&rt->join_lock, NULL);
	pthread_mutex_init(&rt->stuck_lock, NULL);
	pthread_mutex_init(&rt->ovf_lock, NULL);
	for (int l = 0; l < RT_LEVELS; l++)
		moirai__list_init(&rt->ovf[l]);
	moirai__waitq_init(&rt->hk_wq);
	rc = fill_defaults(&rt->cfg);
	if (rc)
		goto err;
	moirai__ticks_init();
	rt->budget_ticks = moirai__ns_to_ticks(rt->cfg.task_budget_ns);
	rt->lone_grace_ticks = moirai__ns_to_ticks(20000u);
	rt->stuck_ticks =
		rt->cfg.stuck_ns == UINT64_MAX ? UINT64_MAX : moirai__ns_to_ticks(rt->cfg.stuck_ns);

	topo = config && config->topo ? config->topo : NULL;
	if (!topo) {
		rc = moirai_topo_load(&own_topo);
		if (rc)
			goto err;
		topo = own_topo;
	}
	rt->virtual_placement = moirai_topo_source(topo) != MOIRAI_TOPO_LIVE;
	if (rt->virtual_placement && !rt->cfg.virtual_placement) {
		rc = moirai__err(-EINVAL,
				 "rt: the topology is foreign (%s): its CPUs may not exist here; "
				 "set virtual_placement to run its plan on the live CPUs",
				 moirai_topo_source(topo) == MOIRAI_TOPO_XML ? "an XML file"
									     : "synthetic");
		goto err;
	}
	if (config && config->plan)
		po = *config->plan;
	if (po.workers == 0)
		po.workers = (int)moirai_option_get(MOIRAI_OPT_WORKERS);
	rc = moirai_plan_create(topo, &po, &plan);
	if (rc)
		goto err;
	rt->nworkers = moirai_plan_worker_count(plan);
	if (rt->nworkers > RT_MAX_WORKERS) {
		rc = moirai__err(-ERANGE, "rt: %d workers is more than %d", rt->nworkers,
				 RT_MAX_WORKERS);
		goto err;
	}
	if (rt->cfg.critical_workers >= (unsigned)rt->nworkers) {
		rc = moirai__err(-EINVAL,
				 "rt: critical_workers %u leaves no worker of the %d for "
				 "other work",
				 rt->cfg.critical_workers, rt->nworkers);
		goto err;
	}
	if (rt->virtual_placement) {
		rc = live_cpus(&lpus, &lnodes, &nlive);
		if (rc)
			goto err;
		moirai__log(
			MOIRAI_LOG_WARN,
			"rt: virtual placement: a plan of %d workers on a foreign topology runs "
			"on %d live CPUs",
			rt->nworkers, nlive);
	}
	rt->nplan_nodes = moirai_topo_node_count(topo);
	rt->w = calloc((size_t)rt->nworkers, sizeof(*rt->w));
	rt->nodes = calloc((size_t)rt->nworkers, sizeof(*rt->nodes));
	rt->starts = calloc((size_t)rt->nworkers, sizeof(*rt->starts));
	rt->threads = calloc((size_t)rt->nworkers, sizeof(*rt->threads));
	rt->joined = calloc((size_t)rt->nworkers, sizeof(*rt->joined));
	rt->thread_ok = calloc((size_t)rt->nworkers, sizeof(*rt->thread_ok));
	rt->pnode_mbox = calloc((size_t)rt->nplan_nodes * RT_LEVELS, sizeof(*rt->pnode_mbox));
	if (!rt->w || !rt->nodes || !rt->starts || !rt->threads || !rt->joined || !rt->thread_ok ||
	    !rt->pnode_mbox) {
		rc = moirai__err(-ENOMEM, "rt: out of memory");
		goto err;
	}
	for (int i = 0; i < rt->nworkers; i++) {
		struct rt_start *a = &rt->starts[i];
		struct moirai_plan_worker pw;

		moirai_plan_worker(plan, i, &pw);
		a->rt = rt;
		a->idx = i;
		a->plan_pu = pw.pu;
		a->plan_node = pw.node;
		a->node_idx = pw.node_idx;
		a->l3 = pw.l3;
		a->core = pw.core;
		a->pu = rt->virtual_placement ? lpus[i % nlive] : pw.pu;
		a->node = rt->virtual_placement ? lnodes[i % nlive] : pw.node;
		a->plan = plan;
		rc = node_pool(rt, a->node, &a->home);
		if (rc)
			goto err;
	}
	for (int n = 0; n < rt->nplan_nodes; n++) {
		int node = -1;

		for (int i = 0; i < rt->nworkers && node < 0; i++)
			if (rt->starts[i].node_idx == n)
				node = rt->starts[i].node;
		if (node < 0)
			node = rt->starts[0].node;
		for (int l = 0; l < RT_LEVELS; l++) {
			snprintf(name, sizeof(name), "rt%u.n%d.%d", rt->id, n, l);
			rc = moirai_ring_create(name, rt->cfg.mailbox_size, node, 0,
						&rt->pnode_mbox[n * RT_LEVELS + l]);
			if (rc)
				goto err;
		}
	}
	rc = rt_qsbr_init(rt);
	if (rc)
		goto err;
	rt->plan = plan;
	free(lpus);
	free(lnodes);
	moirai_topo_destroy(own_topo);
	*out = rt;
	return 0;

err:
	free(lpus);
	free(lnodes);
	moirai_plan_destroy(plan);
	moirai_topo_destroy(own_topo);
	rt_free(rt);
	return rc;
}

static int join_workers_locked(struct moirai_rt *rt, uint64_t deadline);

/* @deadline (moirai_now_ns()) as the CLOCK_REALTIME time that pthread's
 * timed waits take; a deadline already past is now. */
static struct timespec realtime_at(uint64_t deadline)
{
	struct timespec ts;
	uint64_t now = moirai_now_ns(), left = deadline > now ? deadline - now : 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(left / 1000000000u);
	ts.tv_nsec += (long)(left % 1000000000u);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/*
 * Join every worker thread by @deadline (0: wait forever).  Waiting stops,
 * moirai_rt_wait() and destroy may run at once on several threads: one
 * lock makes each thread be joined exactly once.
 */
static int join_workers(struct moirai_rt *rt, uint64_t deadline)
{
	int rc;

	if (!deadline) {
		pthread_mutex_lock(&rt->join_lock);
	} else {
		struct timespec ts = realtime_at(deadline);

		if (pthread_mutex_timedlock(&rt->join_lock, &ts) != 0)
			return moirai__err(-ETIMEDOUT,
					   "rt: stop timed out waiting for another thread's join");
	}
	rc = join_workers_locked(rt, deadline);
	pthread_mutex_unlock(&rt->join_lock);
	return rc;
}

static int join_workers_locked(struct moirai_rt *rt, uint64_t deadline)
{
	char stuck[256] = "";
	size_t used = 0;
	int late = 0;

	for (int i = 0; i < rt->nworkers; i++) {
		struct timespec ts;

		if (!rt->thread_ok[i] || rt->joined[i])
			continue;
		if (!deadline) {
			pthread_join(rt->threads[i], NULL);
			rt->joined[i] = true;
			continue;
		}
		ts = realtime_at(deadline);
		if (pthread_timedjoin_np(rt->threads[i], NULL, &ts) == 0) {
			rt->joined[i] = true;
			continue;
		}
		late++;
		/* Name the workers that hold the stop up: those inside a task
		 * (the others only wait for them). */
		struct rt_worker *w = rt->w[i];
		uint64_t since = w ? atomic_load(&w->running_since) : 0;

		if (since && used < sizeof(stuck)) {
			const char *name = atomic_load(&w->cur_name);
			int k = snprintf(
				stuck + used, sizeof(stuck) - used,
				"%sworker %d (moirai-w%d) in task '%s' for %llu ms",
				used ? ", " : "", i, i, name ? name : "?",
				(unsigned long long)(moirai__ticks_to_ns(moirai__ticks() - since) /
						     1000000u));

			if (k > 0)
				used += (size_t)k;
		}
	}
	if (!late)
		return 0;
	moirai__log(MOIRAI_LOG_ERROR, "rt: stop timed out: %d workers still running%s%s", late,
		    used ? ": " : "", stuck);
	return moirai__err(-ETIMEDOUT, "rt: stop timed out: %d workers still running%s%s", late,
			   used ? ": " : "", stuck);
}

static void stop_hk(struct moirai_rt *rt)
{
	if (!rt->hk_started)
		return;
	atomic_store(&rt->hk_stop, 1);
	moirai__waitq_wake(&rt->hk_wq, INT_MAX, 0);
	pthread_join(rt->hk_thread, NULL);
	rt->hk_started = false;
}

int moirai_rt_create(const struct moirai_rt_config *config, struct moirai_rt **out)
{
	struct moirai_rt *rt;
	pthread_attr_t attr;
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "rt: NULL out pointer");
	*out = NULL;
	rc = rt_build(config, &rt);
	if (rc)
		return rc;
	/* moirai-top: the stats segment, when asked for (rt_pub.c). */
	rc = rt_pub_init(rt);
	if (rc) {
		moirai_plan_destroy(rt->plan);
		rt_free(rt);
		return rc;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	for (int i = 0; i < rt->nworkers; i++) {
		rc = pthread_create(&rt->threads[i], &attr, worker_main, &rt->starts[i]);
		if (rc) {
			rc = moirai__err(-EAGAIN, "rt: cannot start worker thread %d: %s", i,
					 moirai_strerror(rc));
			atomic_store(&rt->start_error, rc);
			break;
		}
		rt->thread_ok[i] = true;
	}
	pthread_attr_destroy(&attr);
	/* Wait for every started worker to report (ready or failed). */
	for (;;) {
		uint32_t key = moirai__waitq_prepare(&rt->hk_wq);
		int started = 0;

		for (int i = 0; i < rt->nworkers; i++)
			started += rt->thread_ok[i];
		if ((int)atomic_load(&rt->started) >= started) {
			moirai__waitq_finish(&rt->hk_wq);
			break;
		}
		moirai__waitq_park(&rt->hk_wq, key, 0, 0);
		moirai__waitq_finish(&rt->hk_wq);
	}
	rc = atomic_load(&rt->start_error);
	if (!rc && pthread_create(&rt->hk_thread, NULL, hk_main, rt) != 0)
		rc = moirai__err(-EAGAIN, "rt: cannot start the housekeeping thread");
	else if (!rc)
		rt->hk_started = true;
	if (rc) {
		atomic_store(&rt->state, RS_EXITING);
		wake_all(rt);
		for (int i = 0; i < rt->nworkers; i++)
			if (!rt->w[i] && rt->thread_ok[i]) {
				/* Failed workers exit on their own. */
			}
		for (int i = 0; i < rt->nworkers; i++)
			if (rt->w[i])
				rt_worker_wake(rt->w[i], INT_MAX);
		join_workers(rt, 0);
		stop_hk(rt);
		moirai_plan_destroy(rt->plan);
		rt_free(rt);
		return rc;
	}
	atomic_store(&rt->state, RS_RUNNING);
	wake_all(rt);
	*out = rt;
	return 0;
}

int moirai__rt_create_manual(const struct moirai_rt_config *cfg, uint64_t (*clock)(void),
			     struct moirai_rt **out)
{
	struct moirai_rt *rt;
	int rc = rt_build(cfg, &rt);

	if (rc)
		return rc;
	rt->manual = true;
	if (clock)
		rt->clock = clock;
	for (int i = 0; i < rt->nworkers; i++) {
		rc = worker_init(&rt->starts[i], &rt->w[i]);
		if (rc) {
			moirai_plan_destroy(rt->plan);
			rt_free(rt);
			return rc;
		}
		atomic_store(&rt->w[i]->run_state, WS_SPINNING);
		rt_qsbr_register(rt->w[i]);
	}
	atomic_store(&rt->state, RS_RUNNING);
	*out = rt;
	return 0;
}

void moirai__rt_bind_thread(struct moirai_rt *rt, int worker)
{
	bind_thread(rt && worker >= 0 && worker < rt->nworkers ? rt->w[worker] : NULL);
}

int moirai_rt_stop(struct moirai_rt *rt, enum moirai_rt_stop_mode mode, int64_t timeout_ns)
{
	uint64_t deadline;
	int rc;

	if (!rt)
		return moirai__err(-EINVAL, "rt stop: NULL runtime");
	if (mode != MOIRAI_RT_STOP_DRAIN && mode != MOIRAI_RT_STOP_NOW)
		return moirai__err(-EINVAL, "rt stop: unknown mode %d", (int)mode);
	rc = moirai__timeout_deadline("rt stop", timeout_ns, &deadline);
	if (rc)
		return rc;
	pthread_mutex_lock(&rt->stop_lock);
	if (rt->stop_called) {
		pthread_mutex_unlock(&rt->stop_lock);
		return moirai__err(-EALREADY, "rt stop: already called");
	}
	rt->stop_called = true;
	atomic_store(&rt->state, mode == MOIRAI_RT_STOP_DRAIN ? RS_DRAINING : RS_CANCELLING);
	pthread_mutex_unlock(&rt->stop_lock);
	wake_all(rt);
	if (rt_current_worker(rt))
		return moirai__err(-EINPROGRESS, "rt stop: called from a worker, which cannot join "
						 "the workers; moirai_rt_wait() does");
	if (rt->manual)
		return 0;
	rc = join_workers(rt, timeout_ns == 0 ? moirai_now_ns() : deadline);
	if (rc)
		return rc;
	return (int)atomic_load(&rt->cancelled_total);
}

int moirai_rt_wait(struct moirai_rt *rt, int64_t timeout_ns)
{
	uint64_t deadline;
	int rc;

	if (!rt)
		return moirai__err(-EINVAL, "rt wait: NULL runtime");
	if (rt_current_worker(rt))
		return moirai__err(-EINVAL, "rt wait: a worker cannot wait for its own runtime");
	rc = moirai__timeout_deadline("rt wait", timeout_ns, &deadline);
	if (rc)
		return rc;
	if (!rt->stop_called)
		return moirai__err(-EINVAL, "rt wait: moirai_rt_stop() was not called");
	if (rt->manual)
		return 0;
	return join_workers(rt, timeout_ns == 0 ? moirai_now_ns() : deadline);
}

int moirai_rt_destroy(struct moirai_rt *rt)
{
	uint64_t deadline;
	int rc;

	if (!rt)
		return 0;
	if (rt_current_worker(rt))
		return moirai__err(-EINVAL, "rt destroy: called from a worker of the runtime");
	rc = moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, (int64_t)rt->cfg.stop_timeout_ns);
	if (rc == -EALREADY) {
		deadline = moirai_now_ns() + rt->cfg.stop_timeout_ns;
		rc = rt->manual ? 0 : join_workers(rt, deadline);
	}
	if (rc < 0)
		return moirai__err(-EBUSY, "rt destroy: %s", moirai_last_error());
	stop_hk(rt);
	moirai_plan_destroy(rt->plan);
	rt->plan = NULL;
	bind_thread(rt_self_worker && rt_self_worker->rt == rt ? NULL : rt_self_worker);
	rt_free(rt);
	return 0;
}

/* ---- blocking regions ----------------------------------------------- */

int moirai_rt_block_begin(void)
{
	struct rt_worker *w = rt_self_worker;

	if (!w)
		return moirai__err(-EINVAL, "rt block_begin: not called from a worker");
	atomic_fetch_add_explicit(&w->block_depth, 1, memory_order_relaxed);
	/* A sibling can take what waits here (deques and mailboxes). */
	if (rt_work_visible(w))
		rt_notify_one(w->rt);
	return 0;
}

int moirai_rt_block_end(void)
{
	struct rt_worker *w = rt_self_worker;

	if (!w || !atomic_load_explicit(&w->block_depth, memory_order_relaxed))
		return moirai__err(-EINVAL, "rt block_end: not in a blocking region");
	atomic_fetch_sub_explicit(&w->block_depth, 1, memory_order_relaxed);
	return 0;
}

/* ---- queries -------------------------------------------------------- */

int moirai_rt_worker_count(const struct moirai_rt *rt)
{
	return rt ? rt->nworkers : 0;
}

int moirai_rt_worker_info(const struct moirai_rt *rt, int idx, struct moirai_rt_worker_info *out)
{
	const struct rt_worker *w;

	if (!rt || !out)
		return moirai__err(-EINVAL, "rt: NULL argument to worker_info");
	if (idx < 0 || idx >= rt->nworkers)
		return moirai__err(-ERANGE, "rt: worker %d out of range (%d workers)", idx,
				   rt->nworkers);
	w = rt->w[idx];
	out->worker = idx;
	out->pu = w->pu;
	out->node = w->node;
	out->plan_pu = w->plan_pu;
	out->plan_node = w->plan_node;
	out->node_idx = w->node_idx;
	out->l3 = w->l3;
	out->critical_only = w->critical_only;
	out->virtual_placement = rt->virtual_placement;
	return 0;
}
