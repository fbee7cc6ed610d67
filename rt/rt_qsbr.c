/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Quiescent-state based reclamation on DPDK's rte_rcu_qsbr (its core
 * needs no EAL; its defer queue, rte_rcu_qsbr_dq_create, does, so the
 * deferred list is ours).  Workers report a quiescent state after every
 * step at the top level (never inside a join: the joining task may hold
 * references across it), go offline before they park and online after.
 *
 * moirai_rt_defer_free() pushes (object, token) on a lock-free stack; the
 * housekeeping thread takes the whole stack, frees what every worker has
 * passed, and keeps the rest on a list only it touches.
 *
 * Every rte_rcu_qsbr_check() goes through one mutex: its fast path reads
 * v->acked_token, which another checker may have stored (relaxed) after
 * its own acquire loads of the readers' counters.  Without the lock a
 * checker could free on the strength of that plain read, with no
 * happens-before edge from the readers' last accesses (TSan reports it,
 * rightly, for the C11 model); under the lock the edge runs readers ->
 * first checker -> mutex -> second checker.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include <rte_rcu_qsbr.h>

#include "rt_int.h"

struct rt_deferred {
	struct rt_deferred *next;
	void *p;
	void (*fn)(void *p, void *arg);
	void *arg;
	uint64_t token;
};

static struct rte_rcu_qsbr *qv(const struct moirai_rt *rt)
{
	return rt->qsbr;
}

int rt_qsbr_init(struct moirai_rt *rt)
{
	size_t sz = rte_rcu_qsbr_get_memsize((uint32_t)rt->nworkers);
	void *mem;

	mem = moirai_malloc_node_flags(sz, MOIRAI_CACHE_LINE, MOIRAI_NODE_ANY, 0);
	if (!mem)
		return moirai__err(-ENOMEM, "rt: no memory for QSBR state");
	if (rte_rcu_qsbr_init(mem, (uint32_t)rt->nworkers) != 0) {
		moirai_free(mem);
		return moirai__err(-EINVAL, "rt: rte_rcu_qsbr_init(%d) failed", rt->nworkers);
	}
	rt->qsbr = mem;
	pthread_mutex_init(&rt->qsbr_lock, NULL);
	return 0;
}

void rt_qsbr_fini(struct moirai_rt *rt)
{
	if (!rt->qsbr)
		return;
	pthread_mutex_destroy(&rt->qsbr_lock);
	moirai_free(rt->qsbr);
	rt->qsbr = NULL;
}

void rt_qsbr_register(struct rt_worker *w)
{
	rte_rcu_qsbr_thread_register(qv(w->rt), (unsigned)w->idx);
	rt_qsbr_online(w);
}

void rt_qsbr_quiescent(struct rt_worker *w)
{
	rte_rcu_qsbr_quiescent(qv(w->rt), (unsigned)w->idx);
}

void rt_qsbr_offline(struct rt_worker *w)
{
	rte_rcu_qsbr_thread_offline(qv(w->rt), (unsigned)w->idx);
}

void rt_qsbr_online(struct rt_worker *w)
{
	struct rte_rcu_qsbr *v = qv(w->rt);

	/*
	 * rte_rcu_qsbr_thread_online(), but publishing the counter with a
	 * release store where DPDK 22.11 uses a relaxed one.  A checker that
	 * reads the counter and frees must be ordered after everything this
	 * worker read before it went offline: in C11 the release sequence of
	 * the offline store gives that; under C++20 rules, which TSan checks
	 * (and TSan does not model the fence below), only a release store
	 * does.  Same cost on x86; the fence keeps DPDK's other half: the
	 * token is loaded before any later read of protected data.
	 */
	uint64_t t = __atomic_load_n(&v->token, __ATOMIC_RELAXED);

	__atomic_store_n(&v->qsbr_cnt[w->idx].cnt, t, __ATOMIC_RELEASE);
	moirai__full_fence();
}

static void default_free(void *p, void *arg)
{
	(void)arg;
	moirai_free(p);
}

int moirai_rt_defer_free(struct moirai_rt *rt, void *p, void (*free_fn)(void *p, void *arg),
			 void *arg)
{
	struct rt_deferred *d;

	if (!rt || !p)
		return moirai__err(-EINVAL, "defer_free: NULL %s", rt ? "object" : "runtime");
	if (atomic_load(&rt->state) == RS_EXITING)
		return moirai__err(-ESHUTDOWN, "defer_free: the runtime has stopped");
	d = moirai_malloc(sizeof(*d));
	if (!d)
		return moirai__err(-ENOMEM, "defer_free: out of memory");
	d->p = p;
	d->fn = free_fn ? free_fn : default_free;
	d->arg = arg;
	/* The token is taken after the caller unpublished p: readers that
	 * could still see p have not passed it yet. */
	d->token = rte_rcu_qsbr_start(qv(rt));
	d->next = atomic_load_explicit(&rt->deferred, memory_order_relaxed);
	/* Release: the entry before it is visible on the stack. */
	while (!atomic_compare_exchange_weak_explicit(&rt->deferred, &d->next, d,
						      memory_order_release, memory_order_relaxed))
		;
	atomic_fetch_add_explicit(&rt->deferred_pending, 1, memory_order_relaxed);
	if (!rt->hk_started)
		return 0;
	moirai__waitq_notify(&rt->hk_wq, 1, 0);
	return 0;
}

static int check(struct moirai_rt *rt, uint64_t token)
{
	int done;

	pthread_mutex_lock(&rt->qsbr_lock);
	done = rte_rcu_qsbr_check(qv(rt), token, false);
	pthread_mutex_unlock(&rt->qsbr_lock);
	return done;
}

/* Housekeeping only (or destroy, with every worker gone: @all). */
void rt_deferred_collect(struct moirai_rt *rt, bool all)
{
	/* Acquire pairs with the pushers' release CAS. */
	struct rt_deferred *d = atomic_exchange_explicit(&rt->deferred, NULL, memory_order_acquire);
	struct rt_deferred **keep = &rt->deferred_wait;

	/* Entries not yet reclaimable from an earlier round come first. */
	while (*keep)
		keep = &(*keep)->next;
	*keep = d;
	for (struct rt_deferred **pp = &rt->deferred_wait; *pp;) {
		struct rt_deferred *e = *pp;

		if (!all && check(rt, e->token) != 1) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		e->fn(e->p, e->arg);
		moirai_free(e);
		atomic_fetch_sub_explicit(&rt->deferred_pending, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&rt->deferred_freed, 1, memory_order_relaxed);
	}
}

int moirai_rt_synchronize(struct moirai_rt *rt, int64_t timeout_ns)
{
	struct rt_worker *self;
	uint64_t deadline, token;
	unsigned spins = 0;
	int rc;

	if (!rt)
		return moirai__err(-EINVAL, "synchronize: NULL runtime");
	rc = moirai__timeout_deadline("synchronize", timeout_ns, &deadline);
	if (rc)
		return rc;
	token = rte_rcu_qsbr_start(qv(rt));
	self = rt_current_worker(rt);
	if (self)
		rte_rcu_qsbr_quiescent(qv(rt), (unsigned)self->idx);
	while (check(rt, token) != 1) {
		if (timeout_ns == 0 || (deadline && moirai_now_ns() >= deadline))
			return -ETIMEDOUT;
		if (++spins % 16 == 0)
			sched_yield();
		else
			moirai__cpu_relax();
	}
	return 0;
}
