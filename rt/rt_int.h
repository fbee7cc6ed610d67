/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to rt/: the runtime, worker and task structures and the
 * functions the rt/ files share.  Prefixed rt_ so that -Irt can never
 * shadow a system header.  Never installed.
 *
 * Who writes what (the rule every field below follows):
 *   - a worker's deques: bottom by the owner, top by the owner and thieves
 *     (CAS); its local lists, timers, pollers and counters by the owner only;
 *   - a worker's mailboxes: any thread enqueues, the owner (or a rescuer,
 *     while the owner blocks or is stuck) dequeues;
 *   - a task descriptor: the submitter until it is queued, then whoever
 *     runs it; its state word by everyone, with CAS.
 */
#ifndef MOIRAI_RT_INT_H
#define MOIRAI_RT_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "list.h"
#include "moirai/alloc.h"
#include "moirai/pool.h"
#include "moirai/ring.h"
#include "moirai/rt.h"
#include "waitq.h"

#define RT_LEVELS	  MOIRAI_PRIO_LEVELS
#define RT_MAX_WORKERS	  1024
#define RT_IDLE_WORDS	  (RT_MAX_WORKERS / 64)
#define RT_STEAL_BATCH	  32u
#define RT_DRAIN_BATCH	  32u
#define RT_MAX_HELP_DEPTH 64

/* ---- task descriptors ---------------------------------------------- */

enum rt_task_state {
	TS_FREE = 0,	  /* in a pool */
	TS_QUEUED = 1,	  /* in some queue, not started (or a continuation) */
	TS_RUNNING = 2,	  /* its body is running */
	TS_DONE = 3,	  /* returned a status */
	TS_CANCELLED = 4, /* cancelled before it started */
	TS_YIELDED = 5,	  /* a continuation, queued between runs */
	TS_SHUTDOWN = 6,  /* cancelled by stop(NOW) */
};

/* rt_task.flags: written by the submitter before the task is queued. */
#define TF_STRICT_WORKER 0x01u /* only task->worker may run it */
#define TF_STRICT_NODE	 0x02u /* only workers of task->node_idx */
#define TF_HANDLE	 0x08u /* a handle was handed out */

struct rt_node;

/*
 * 128 bytes, two cache lines: what the dispatcher reads on the first,
 * completion and bookkeeping on the second.
 */
struct rt_task {
	/* Line 0: dispatch. */
	moirai_task_fn fn;
	void *arg;
	_Atomic uint32_t state;
	uint8_t level; /* 0 = critical .. 3 = background */
	uint8_t flags;
	int16_t worker;	  /* affinity (hint or strict), -1 none */
	int16_t node_idx; /* strict node (plan node index), -1 none */
	uint16_t pad;
	int32_t status;
	uint64_t t_submit;	  /* for the queue-wait histogram and FIFO turns */
	struct moirai__list link; /* local FIFO lists, overflow */
	const char *name;
	/* Line 1: completion. */
	alignas(64) struct moirai_group *group;
	struct rt_node *home; /* the pool it came from */
	struct moirai__waitq done_wq;
	/* Generation (top 16 bits) and owners (OWN_* bits).  One word, so a
	 * stale handle's CAS fails once the descriptor has been reused. */
	_Atomic uint32_t own;
	struct moirai_rt *rt;
};

#define OWN_RT	   1u /* the runtime still queues or runs it */
#define OWN_HANDLE 2u /* a handle is out */
#define OWN_GEN(v) ((uint16_t)((v) >> 16))

static_assert(sizeof(struct rt_task) == 128, "task descriptor is two cache lines");

/* Handles carry the descriptor's generation in the pointer's unused top
 * 16 bits (x86-64 user addresses are below 2^47). */
#define RT_HANDLE_SHIFT 48

static inline struct moirai_task *rt_handle_of(struct rt_task *t)
{
	uintptr_t gen = OWN_GEN(atomic_load_explicit(&t->own, memory_order_relaxed));

	return (struct moirai_task *)((gen << RT_HANDLE_SHIFT) | (uintptr_t)t);
}

static inline struct rt_task *rt_task_of(const struct moirai_task *h, uint16_t *gen)
{
	uintptr_t v = (uintptr_t)h;

	*gen = (uint16_t)(v >> RT_HANDLE_SHIFT);
	return (struct rt_task *)(v & (((uintptr_t)1 << RT_HANDLE_SHIFT) - 1));
}

/* ---- Chase-Lev deque (rt_deque.c) ---------------------------------- */

/*
 * Bounded work-stealing deque (Chase & Lev 2005, in the C11 form of Le,
 * Pop, Cohen and Zappa Nardelli 2013).  The owner pushes and takes at the
 * bottom; anyone steals at the top with a CAS.  Slots are atomics so that
 * a thief's racy read of a slot being overwritten is a defined (and then
 * discarded, because its CAS fails) read.
 */
struct rt_deque {
	alignas(64) _Atomic int64_t top;    /* thieves (and FIFO turns) CAS it */
	alignas(64) _Atomic int64_t bottom; /* owner only writes it */
	_Atomic(struct rt_task *) *slots;   /* capacity entries, on the owner's node */
	int64_t mask;
};

int rt_deque_init(struct rt_deque *d, unsigned capacity, int node);
void rt_deque_fini(struct rt_deque *d);

/* Owner: push at the bottom; false when full. */
static inline bool rt_deque_push(struct rt_deque *d, struct rt_task *t)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	/* Acquire pairs with the thieves' CAS of top: a slot is reused only
	 * after the thief that took its previous task has finished reading. */
	int64_t top = atomic_load_explicit(&d->top, memory_order_acquire);

	if (moirai_unlikely(b - top > d->mask))
		return false;
	atomic_store_explicit(&d->slots[b & d->mask], t, memory_order_relaxed);
	/* Release: the slot (and the task it points to) before the new
	 * bottom; pairs with the acquire load of bottom in rt_deque_steal().
	 * A plain store on x86: no read-modify-write on the owner's push. */
	atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	return true;
}

/* Owner: take the newest task, or NULL. */
struct rt_task *rt_deque_take(struct rt_deque *d);
/* Anyone: take the oldest task; NULL when empty or when a race was lost
 * (*lost set: try again). */
struct rt_task *rt_deque_steal(struct rt_deque *d, bool *lost);

/* The owner's next take, without taking it (for prefetching: a racy peek
 * whose result may be stale, which only costs a wasted prefetch). */
static inline struct rt_task *rt_deque_peek(const struct rt_deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);

	return b > t ? atomic_load_explicit(&d->slots[(b - 1) & d->mask], memory_order_relaxed)
		     : NULL;
}

/* Tasks in the deque now (a snapshot; may be off by the ones in flight). */
static inline int64_t rt_deque_size(const struct rt_deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);

	return b > t ? b - t : 0;
}

/* ---- nodes ----------------------------------------------------------- */

/* One per live node that has workers: the task descriptor pool. */
struct rt_node {
	int node; /* OS node of the pool's memory */
	struct moirai_pool *pool;
};

/* A task group (task.h). */
#define RT_GROUP_PENDING_BITS 40 /* more tasks than any pool can hold */
#define RT_GROUP_PENDING_MASK ((UINT64_C(1) << RT_GROUP_PENDING_BITS) - 1)
#define RT_GROUP_NOTIFIER     (UINT64_C(1) << RT_GROUP_PENDING_BITS)
struct moirai_group {
	struct moirai_rt *rt;
	/* Low RT_GROUP_PENDING_BITS: tasks counted and not finished; above
	 * them: finishers that made the count 0 and still touch the group
	 * (their wake-up).  One word, so a finisher pays one locked
	 * instruction (rt_task.c group_done). */
	_Atomic uint64_t count;
	_Atomic int32_t first_error;
	uint32_t magic;
	struct moirai__waitq wq;
};

/* ---- pollers and timers (rt_poller.c) ------------------------------ */

struct moirai_poller {
	struct moirai__list link; /* the worker's poller list */
	struct rt_worker *w;
	moirai_poller_fn fn;
	void *arg;
	uint64_t period_ns;
	uint64_t next_ns; /* next run for a timed poller */
	unsigned flags;
	uint32_t magic;
	bool dead;    /* unregistered while running: free after it returns */
	bool running; /* inside fn */
	int wake_fd;  /* moirai_poller_set_wake(): readable when there is work, or -1 */
	moirai_poller_arm_fn arm;
	void *arm_arg;
	char name[MOIRAI_POLLER_NAME_MAX + 1];
	/* Counters: written by the worker, read by anyone (relaxed). */
	uint64_t runs, busy, busy_ns, idle_ns;
};

/* ---- workers --------------------------------------------------------- */

enum rt_worker_run_state {
	WS_STARTING = 0,
	WS_RUNNING = 1,	 /* in a task */
	WS_SPINNING = 2, /* awake, nothing to run */
	WS_PARKED = 3,	 /* asleep (or about to sleep) on its waitq */
	WS_CLAIMED = 4,	 /* parked, and woken by rt_notify_one() as a searcher */
	WS_EXITED = 5,
};

/* Counters of one worker: written by the owner only (relaxed atomics via
 * the __atomic builtins, so readers on other threads are race-free). */
struct rt_counters {
	uint64_t tasks_run[RT_LEVELS];
	uint64_t continuations[RT_LEVELS];
	uint64_t aged[RT_LEVELS];
	uint64_t steals[MOIRAI_RT_STEAL_CLASSES];
	uint64_t steal_attempts;
	uint64_t parks;
	uint64_t polls_busy, polls_idle, poll_busy_ns, poll_idle_ns;
	uint64_t timers_fired;
	uint64_t busy_ns;
	uint64_t cancelled;
	uint64_t spawned; /* tasks this worker submitted (quiescence sums) */
	uint64_t done;	  /* tasks this worker finished or cancelled */
};

/* Counters others bump on a worker (atomic RMW; rare paths). */
struct rt_remote_counters {
	_Atomic uint64_t stolen_from;
	_Atomic uint64_t mailbox_full;
	_Atomic uint64_t wakeups;
	_Atomic uint64_t stuck_reports;
};

struct rt_worker {
	/* Line 0: read by should_yield() and by submitters choosing a target. */
	alignas(64) uint32_t yield_word; /* others set it: a more urgent task waits */
	_Atomic uint32_t run_state;	 /* enum rt_worker_run_state */
	_Atomic int32_t cur_level;	 /* level of the running task, RT_LEVELS when idle */
	_Atomic uint32_t block_depth;	 /* inside moirai_rt_block_begin() */
	_Atomic uint64_t running_since;	 /* start (ticks) of the innermost running task, 0 idle */
	const char *_Atomic cur_name;	 /* its name, for stuck reports */
	uint32_t reported_stuck;	 /* housekeeping only */
	uint64_t logged_stuck_at;	 /* housekeeping only */

	/* Identity, read-only after start. */
	alignas(64) struct moirai_rt *rt;
	int idx;
	int pu, node;		/* live placement */
	int plan_pu, plan_node; /* the plan's */
	int node_idx, l3, core; /* plan topology indexes */
	bool critical_only;
	bool prefetch; /* !(config.flags & MOIRAI_RT_F_NO_PREFETCH) */
	int nsteal;
	int *steal_order;		 /* victims nearest first */
	uint8_t *steal_class;		 /* class of each victim */
	struct rt_node *home;		 /* node pool for local spawns */
	struct moirai_pool_cache *cache; /* of home->pool */

	/* Run queues (owner side). */
	struct rt_deque dq[RT_LEVELS];
	struct moirai__list fifo[RT_LEVELS]; /* strict tasks and continuations */
	unsigned fifo_len[RT_LEVELS];
	unsigned lifo_run[RT_LEVELS];	 /* consecutive newest-first pops */
	unsigned fifo_toggle[RT_LEVELS]; /* FIFO turns alternate deque top / list */
	unsigned age_count[RT_LEVELS];	 /* higher-level dispatches while waiting */
	uint64_t served_at[RT_LEVELS];	 /* last dispatch (or last seen empty) */
	/* Ticks at the end of the task rt_step() just ran, when it runs the
	 * next one straight away: that task's start (one TSC read per task
	 * instead of two; the few ns of choosing it count as its own). */
	uint64_t chain_ticks;
	uint64_t last_end_ticks; /* end of the last task rt_task_run() ran */
	unsigned help_depth;	 /* nested dispatch inside join */
	bool searching;		 /* counted in rt->searching */

	/* Mailboxes: any thread enqueues. */
	struct moirai_ring *mbox[RT_LEVELS]; /* stealable submissions */
	struct moirai_ring *strict_mbox;     /* moirai_rt_send() and strict tasks */

	/* Pollers and timers (owner only). */
	struct moirai__list pollers;
	unsigned npollers, no_park_pollers;
	unsigned wake_pollers; /* pollers with a wake fd (moirai_poller_set_wake) */
	bool walking_pollers;
	struct moirai_timer **timers; /* binary min-heap on expiry */
	unsigned ntimers, timer_cap;

	/* Set by submitters after a mailbox enqueue, cleared by the drain. */
	alignas(64) _Atomic uint32_t mbox_hint;

	/* Idle. */
	alignas(64) struct moirai__waitq wq;
	uint64_t spin_cur; /* adaptive spin window */
	uint64_t parked_at;
	/* Set (for good) by the worker once a poller has a wake fd: from then
	 * on it sleeps in ppoll() on those fds and on @efd instead of on the
	 * futex, and every waker also writes @efd (rt_worker_wake). */
	_Atomic uint32_t fd_sleep;
	int efd; /* eventfd, -1 until the first wake fd */

	alignas(64) struct rt_counters c;
	alignas(64) struct rt_remote_counters rc;
	struct moirai_hist *lat; /* [2 * RT_LEVELS]: wait then run, per level */

	/* The last stuck report (rt_stuck_record), with rc.stuck_reports:
	 * written by housekeeping, read by stats, both under rt->stuck_lock. */
	char stuck_task[MOIRAI_RT_STUCK_NAME_MAX + 1];
	uint64_t stuck_run_ns;
};

static_assert(offsetof(struct rt_worker, yield_word) == 0, "yield word first");
static_assert(offsetof(struct rt_worker, rt) % 64 == 0, "identity on its own line");
static_assert(offsetof(struct rt_worker, wq) % 64 == 0, "waitq on its own line");
static_assert(offsetof(struct rt_worker, c) % 64 == 0, "counters on their own lines");

/* What a worker thread starts from (rt_worker.c). */
struct rt_start {
	struct moirai_rt *rt;
	int idx;
	int pu, node, plan_pu, plan_node, node_idx, l3, core;
	struct rt_node *home;
	const struct moirai_plan *plan;
};

struct rt_deferred;
struct rt_pub;

/* ---- the runtime ----------------------------------------------------- */

enum rt_state {
	RS_STARTING = 0,
	RS_RUNNING = 1,
	RS_DRAINING = 2,   /* stop(DRAIN): no external spawns, run the rest */
	RS_CANCELLING = 3, /* stop(NOW): cancel what is queued */
	RS_EXITING = 4,	   /* quiescent: workers leave */
};

struct moirai_rt {
	/* Read-mostly. */
	struct moirai_rt_config cfg;
	int nworkers;
	struct rt_worker **w;
	struct rt_node *nodes;
	int nnodes;
	int nplan_nodes;
	struct moirai_ring **pnode_mbox; /* [nplan_nodes * RT_LEVELS] strict-node queues */
	/* Set (once, seq_cst) before the first strict-node enqueue: until
	 * then the workers' looks at their level skip those rings' headers. */
	_Atomic bool pnode_used;
	bool virtual_placement;
	bool manual; /* tests: no threads, the caller steps workers */
	uint64_t (*clock)(void);
	uint64_t budget_ticks, stuck_ticks; /* the config's, in moirai__ticks() */
	uint64_t lone_grace_ticks;	    /* rt_sched.c steal_deque() */
	unsigned id;
	void *qsbr;		   /* struct rte_rcu_qsbr */
	pthread_mutex_t qsbr_lock; /* every rte_rcu_qsbr_check (rt_qsbr.c) */
	struct moirai_plan *plan;
	struct rt_start *starts;
	pthread_t *threads;
	bool *thread_ok, *joined;

	/* Shared, written rarely. */
	alignas(64) _Atomic uint32_t state; /* enum rt_state */
	_Atomic uint32_t started;	    /* workers that finished starting */
	_Atomic int32_t start_error;
	_Atomic uint64_t ext_spawned;	  /* accepted from foreign threads */
	_Atomic uint64_t ext_refused;	  /* counted in ext_spawned, then refused */
	_Atomic uint64_t refused;	  /* -EAGAIN / no descriptor */
	_Atomic uint64_t cancelled_total; /* by stop(NOW) */
	_Atomic uint64_t spills;
	_Atomic uint32_t rr; /* round robin for foreign submissions */
	_Atomic bool stop_called;
	pthread_mutex_t stop_lock;
	pthread_mutex_t join_lock;  /* joining the worker threads (rt_worker.c) */
	pthread_mutex_t stuck_lock; /* every worker's last stuck report */

	/* Idle workers: a bitmap, and how many are searching for work. */
	alignas(64) _Atomic uint64_t idle[RT_IDLE_WORDS];
	alignas(64) _Atomic int32_t searching;

	/* Overflow of full deques, per level. */
	alignas(64) pthread_mutex_t ovf_lock;
	struct moirai__list ovf[RT_LEVELS];
	_Atomic uint32_t ovf_count;

	/* Housekeeping thread: stuck detector, budget flags, deferred frees. */
	pthread_t hk_thread;
	bool hk_started;
	struct moirai__waitq hk_wq;
	_Atomic uint32_t hk_stop;
	_Atomic uint32_t hk_long; /* every worker parked: hk sleeps until one wakes */
	/* Deferred frees: a lock-free stack pushed by anyone, popped by hk. */
	_Atomic(struct rt_deferred *) deferred;
	struct rt_deferred *deferred_wait; /* housekeeping only */
	_Atomic uint64_t deferred_pending, deferred_freed;

	/* moirai-top: the stats segment, or NULL (rt_pub.c): set at create
	 * before the threads start, used by housekeeping, freed at destroy. */
	struct rt_pub *pub;
};

/* The calling thread's worker (or NULL), and its runtime. */
extern _Thread_local struct rt_worker *rt_self_worker;

static inline struct rt_worker *rt_current_worker(const struct moirai_rt *rt)
{
	struct rt_worker *w = rt_self_worker;

	return w && w->rt == rt ? w : NULL;
}

/* Relaxed owner-only counter bump, race-free for readers. */
#define RT_COUNT(field, n)                                                            \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)
#define RT_READ(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* ---- shared between the rt/ files ------------------------------------ */

/* rt_sched.c: the step function and the dispatch it holds. */
struct rt_step {
	unsigned ran;	   /* tasks run */
	unsigned busy;	   /* pollers that reported busy */
	unsigned fired;	   /* timers fired */
	bool can_park;	   /* every poller idle and none forbids parking */
	uint64_t next_due; /* earliest timer or timed poller, 0 none */
};
void rt_step(struct rt_worker *w, uint64_t now, unsigned max_tasks, struct rt_step *out);
/* Run at most one task (join helping); returns whether one ran. */
bool rt_help_one(struct rt_worker *w);
/* Queue a task on @w from @w itself (local push, spill on overflow). */
void rt_push_local(struct rt_worker *w, struct rt_task *t);
/* Whether @w holds queued work more urgent than @level. */
bool rt_urgent_waiting(const struct rt_worker *w, int level);
/* Whether @w's stealable queues or mailboxes hold work (a snapshot). */
bool rt_work_queued(const struct rt_worker *w);
/* Whether any queue a dry worker could take from holds work. */
bool rt_work_visible(struct rt_worker *w);
/* Wake one parked worker if nobody is searching (after a push). */
void rt_notify_one(struct moirai_rt *rt);
/* Wake a parked worker of plan node @node_idx (strict-node work). */
void rt_notify_node(struct moirai_rt *rt, int node_idx);
/* Wake @w if it sleeps (after a mailbox enqueue for it). */
void rt_wake_worker(struct rt_worker *w);
/* The searching count: enter when running dry, leave on finding work. */
void rt_search_begin(struct rt_worker *w);
void rt_search_end(struct rt_worker *w);

/* rt_task.c */
/* Run @t, started at @now; returns the time it ended (the next start). */
uint64_t rt_task_run(struct rt_worker *w, struct rt_task *t, uint64_t now);
/* From a worker: run other tasks until @done(ctx) (non-zero) or the
 * deadline (0: none); 0 or -ETIMEDOUT. */
int rt_help_until(struct rt_worker *w, int (*done)(void *ctx), void *ctx, uint64_t deadline);
void rt_task_cancel_queued(struct rt_worker *w, struct rt_task *t, int status);
int rt_submit(struct moirai_rt *rt, struct rt_worker *self, struct rt_task *t);
struct rt_task *rt_task_alloc(struct moirai_rt *rt, struct rt_worker *self, struct rt_node *home);

/* rt_poller.c */
void rt_timers_run(struct rt_worker *w, uint64_t now, struct rt_step *out);
void rt_pollers_run(struct rt_worker *w, uint64_t now, struct rt_step *out);
void rt_pollers_fini(struct rt_worker *w);
/* Wake @w's sleep (up to @n sleepers of its waitq): the futex, and its
 * eventfd once it sleeps in ppoll (fd_sleep).  Every wake of a worker's
 * waitq goes through here. */
void rt_worker_wake(struct rt_worker *w, int n);
/* Before a park: arm every poller that has a wake fd; false when one says
 * it has work (then the worker must not sleep). */
bool rt_pollers_arm(struct rt_worker *w);
/* The park's sleep once fd_sleep is set: ppoll on the wake fds and the
 * eventfd until one is readable, the waitq moved past @key, or @deadline
 * (absolute ns, 0 none). */
void rt_pollers_sleep(struct rt_worker *w, uint32_t key, uint64_t deadline);

/* rt_qsbr.c */
int rt_qsbr_init(struct moirai_rt *rt);
void rt_qsbr_fini(struct moirai_rt *rt);
void rt_qsbr_register(struct rt_worker *w);
void rt_qsbr_quiescent(struct rt_worker *w);
void rt_qsbr_offline(struct rt_worker *w);
void rt_qsbr_online(struct rt_worker *w);
void rt_deferred_collect(struct moirai_rt *rt, bool all);

/* rt_worker.c: the pinned thread and the housekeeping thread. */
int rt_workers_start(struct moirai_rt *rt);
void rt_workers_join(struct moirai_rt *rt);
bool rt_quiescent(const struct moirai_rt *rt);
/* Task descriptors out of the node pools (in use: pool size - free). */
uint64_t moirai__rt_tasks_in_use(const struct moirai_rt *rt);
/* Record (count, name, run time) a stuck report of a task on @w. */
void rt_stuck_record(struct rt_worker *w, const char *name, uint64_t run_ns);

/* Tests: a runtime without threads whose workers the caller steps with a
 * fake clock (tests/rt/). */
int moirai__rt_create_manual(const struct moirai_rt_config *cfg, uint64_t (*clock)(void),
			     struct moirai_rt **out);
void moirai__rt_bind_thread(struct moirai_rt *rt, int worker);

#endif /* MOIRAI_RT_INT_H */
