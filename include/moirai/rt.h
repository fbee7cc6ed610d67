/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/rt.h
 * @brief The runtime: pinned workers from a plan, priority run queues,
 *        topology-ordered work stealing, idle spinning and parking,
 *        quiescent-state reclamation (QSBR), stats and shutdown.
 *
 * Design: moirai_rt_create() turns a topology and the planner's options
 * into one worker thread per planned PU ("moirai-w0", "moirai-w1", ...).
 * Each worker pins itself to its PU before it touches memory, then
 * allocates its own state (run queues, mailboxes, stats) on its node.
 *
 * Every scheduling decision lives in one step function per worker (after
 * SPDK's spdk_thread_poll): it takes the clock as an argument, fires due
 * timers, runs due pollers, moves submitted tasks into the run queues,
 * and runs tasks in priority order; the pinned thread only loops around it
 * and decides whether to spin or sleep.  That is why priority, aging,
 * timers and pollers are tested single-threaded with a fake clock.
 *
 * Priorities (enum moirai_prio): a worker runs the highest non-empty
 * level.  Aging keeps lower levels moving under a sustained flood of
 * higher ones: a non-empty level is served at least once every
 * @c aging_dispatches dispatches of higher levels (default 32; critical
 * tasks a worker takes from a sibling's mailbox count as such) and at the
 * first dispatch decision after its oldest task has waited @c aging_ns
 * (default 2 ms).  Tasks run to completion; long tasks keep latency low by
 * asking moirai_rt_should_yield() and returning MOIRAI_TASK_CONTINUE.
 * These bounds hold between top-level tasks: a worker whose task waits in
 * moirai_task_join() or moirai_group_wait() runs other tasks meanwhile,
 * newest and most urgent first with no aging, so a less urgent level it
 * holds waits for the whole join (and so do its pollers and timers).
 *
 * Queues: each worker has one work-stealing deque per level (Chase-Lev:
 * the owner pushes and pops at the bottom with no atomic read-modify-write
 * on push; thieves take from the top), plus one mailbox ring per level for
 * submissions from other threads (a moirai ring, RTS producers, so a
 * preempted submitter never stalls another) and one strict mailbox for
 * moirai_rt_send().  The owner pops its newest task first (depth first,
 * cache-warm), but never more than @c lifo_limit times in a row at one
 * level while older tasks wait: then it takes the oldest, so a pair of
 * tasks that keep spawning each other cannot starve the rest (the Tokio
 * LIFO-slot problem, tokio#5712).
 *
 * Stealing: a worker that runs dry tries its victims in the plan's steal
 * order (SMT sibling, same L3, same node, then other nodes by distance),
 * highest priority first, and takes half of a victim's deque (at most 32
 * tasks) in one visit.  Stats count steals by distance class.
 *
 * Idle: a worker with nothing to run keeps polling for @c spin_ns (adapted
 * between spin_ns/8 and spin_ns to how soon work has been arriving), then
 * parks on a futex, but only once every poller on it has reported idle.
 * A submission to a parked worker wakes exactly that worker; a spawn that
 * leaves work for others wakes one parked worker only when none is
 * already searching; neither makes a system call when nobody is parked.
 *
 * Placement: a live topology is pinned as planned.  A foreign topology
 * (MOIRAI_TOPOLOGY, an XML file, a synthetic description) describes CPUs
 * that may not exist here: moirai_rt_create() refuses it with -EINVAL
 * unless @c virtual_placement is set, which keeps the foreign plan's
 * structure (workers, nodes, L3s, steal orders, distance classes) and maps
 * worker i onto the i-th usable live CPU (round robin), with memory on the
 * live node of that CPU.  The runtime logs that at warning level and says
 * so in its stats.
 *
 * Stats: counters per worker and latency histograms per level, read in
 * process (moirai_rt_stats_get() and friends) or, for moirai-top and other
 * processes, published in a read-only shared-memory segment (the
 * "Published stats" section below, docs/top.md).
 *
 * Threads and safety: every function here is thread-safe unless it says
 * otherwise.  Functions marked "worker only" must be called from inside a
 * task, poller or timer callback of the runtime.
 */
#ifndef MOIRAI_RT_H
#define MOIRAI_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "moirai/base.h"
#include "moirai/hist.h"
#include "moirai/numa.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque runtime. */
struct moirai_rt;

/**
 * Task priorities: a larger value is more urgent, and 0 is normal, so a
 * zeroed struct moirai_spawn_opts asks for normal priority.  Per-level
 * arrays in the stats are indexed by moirai_prio_index(): 0 is critical,
 * MOIRAI_PRIO_LEVELS - 1 is background.
 */
enum moirai_prio {
	MOIRAI_PRIO_BACKGROUND = -1, /**< batch work that only needs to progress */
	MOIRAI_PRIO_NORMAL = 0,	     /**< the default */
	MOIRAI_PRIO_HIGH = 1,	     /**< ahead of normal work */
	MOIRAI_PRIO_CRITICAL = 2,    /**< latency-critical: runs first, may have its own lane */
};

/** Number of priority levels. */
#define MOIRAI_PRIO_LEVELS 4

/**
 * Array index of a priority, most urgent first (critical 0 .. background 3).
 * @param prio an enum moirai_prio value.
 * @return the index; -1 for a value that is not a priority.  Thread-safe.
 */
static inline int moirai_prio_index(int prio)
{
	return prio >= MOIRAI_PRIO_BACKGROUND && prio <= MOIRAI_PRIO_CRITICAL
		       ? MOIRAI_PRIO_CRITICAL - prio
		       : -1;
}

/**
 * The priority at array index @p idx (0 = critical); the inverse of
 * moirai_prio_index().
 * @param idx 0..MOIRAI_PRIO_LEVELS-1 (not checked).
 * @return the priority; for an index out of range, a value that is not a
 *         priority.  Thread-safe.
 */
static inline enum moirai_prio moirai_prio_from_index(int idx)
{
	return (enum moirai_prio)(MOIRAI_PRIO_CRITICAL - idx);
}

/** What an idle worker does after its spin window. */
enum moirai_rt_idle {
	MOIRAI_RT_IDLE_PARK = 0, /**< spin for spin_ns, then sleep on a futex (default) */
	MOIRAI_RT_IDLE_SPIN = 1, /**< never sleep: poll forever (dedicated cores) */
};

/** How moirai_rt_stop() ends the runtime. */
enum moirai_rt_stop_mode {
	/** Refuse new submissions from outside, run everything queued (and
	 *  whatever those tasks spawn) to completion, then stop. */
	MOIRAI_RT_STOP_DRAIN = 0,
	/** Cancel every queued task (counted in the stats and in the return
	 *  of moirai_rt_stop()), let running tasks finish, then stop. */
	MOIRAI_RT_STOP_NOW = 1,
};

/** Config flag: do not prefetch the next task descriptor (to measure it). */
#define MOIRAI_RT_F_NO_PREFETCH 0x1u
/** Config flag: publish the stats for moirai-top (see "Published stats"). */
#define MOIRAI_RT_F_STATS 0x2u

/**
 * Runtime configuration.  Zero-initialised means defaults everywhere; the
 * defaults of workers, idle, spin_ns, mailbox_size, tasks_per_node,
 * task_budget_ns, stuck_ns and prefetching come from the options table
 * (MOIRAI_WORKERS, MOIRAI_RT_IDLE, MOIRAI_SPIN_NS, MOIRAI_RT_MAILBOX,
 * MOIRAI_RT_TASKS, MOIRAI_RT_BUDGET_US, MOIRAI_RT_STUCK_MS,
 * MOIRAI_RT_PREFETCH, MOIRAI_RT_STATS, MOIRAI_RT_STATS_MS), the rest are
 * constants stated per field.
 */
struct moirai_rt_config {
	/** Topology to plan on; NULL loads one with moirai_topo_load()
	 *  (MOIRAI_TOPOLOGY or the live machine).  Borrowed during create. */
	const struct moirai_topo *topo;
	/** Planner options (workers, policy, SMT, reserve, near device, ...);
	 *  NULL means defaults.  plan.workers == 0 takes MOIRAI_WORKERS, and 0
	 *  there means one worker per usable core. */
	const struct moirai_plan_opts *plan;
	/** Run a foreign topology's plan on the live CPUs (see Placement in
	 *  the design block at the top of this file). */
	bool virtual_placement;
	/** Reserve the first K workers for critical tasks only (0: none). */
	unsigned critical_workers;
	/** Idle policy; default MOIRAI_RT_IDLE_PARK (or MOIRAI_RT_IDLE=spin). */
	enum moirai_rt_idle idle;
	/** Longest idle spin before parking, ns; 0 = MOIRAI_SPIN_NS. */
	uint64_t spin_ns;
	/** Slots of each mailbox ring per worker and level (a power of two);
	 *  0 = MOIRAI_RT_MAILBOX (1024). */
	unsigned mailbox_size;
	/** Task descriptors per NUMA node; 0 = MOIRAI_RT_TASKS (65536). */
	unsigned tasks_per_node;
	/** Run queue (deque) slots per worker and level; 0 = 4096.  A full
	 *  deque spills its oldest half to a shared overflow list. */
	unsigned deque_size;
	/** Aging: serve a waiting level at least once per this many higher-
	 *  level dispatches; 0 = 32. */
	unsigned aging_dispatches;
	/** Aging: serve a level whose oldest task waited this long, ns; 0 = 2 ms. */
	uint64_t aging_ns;
	/** Most consecutive newest-first pops at one level; 0 = 16. */
	unsigned lifo_limit;
	/** Run time after which moirai_rt_should_yield() turns true, ns;
	 *  0 = MOIRAI_RT_BUDGET_US (200 us). */
	uint64_t task_budget_ns;
	/** Stuck-task threshold, ns; 0 = MOIRAI_RT_STUCK_MS (10 ms);
	 *  UINT64_MAX disables the detector. */
	uint64_t stuck_ns;
	/** Timeout of the stop inside moirai_rt_destroy(), ns; 0 = 10 s. */
	uint64_t stop_timeout_ns;
	/** MOIRAI_RT_F_* flags. */
	unsigned flags;
	/** Publish the stats under this segment name (see "Published stats";
	 *  copied).  NULL: with MOIRAI_RT_F_STATS, the name the MOIRAI_RT_STATS
	 *  option gives, else one after the process id; without the flag the
	 *  option alone decides ("" or "0" off, "1" a segment named after the
	 *  process, anything else the segment name). */
	const char *stats_name;
	/** Publish period, ms, 1..60000; 0 = MOIRAI_RT_STATS_MS (100). */
	unsigned stats_period_ms;
};

/**
 * Create and start a runtime.
 * @param config configuration, NULL for defaults (copied; pointers in it
 *        are only used during the call).
 * @param[out] out the runtime.
 * @return 0; -EINVAL bad configuration (a foreign topology without
 *         virtual_placement, critical_workers >= workers, sizes out of
 *         range); -ERANGE more workers than usable cores (from the
 *         planner); -ENODEV, -EPERM node problems; -ENOMEM; -EAGAIN a
 *         thread could not be started (everything started is joined);
 *         with stats publishing asked for in @p config (flag or name):
 *         -EINVAL a bad stats name or period, -EEXIST a live segment (or a
 *         file that is not a stale segment of this user) has the name,
 *         other -errno from creating it (-EACCES, -ENOSPC, ...).  Publishing
 *         asked for only by the MOIRAI_RT_STATS option never fails create:
 *         a problem is logged at warning level and the runtime runs
 *         without it.  moirai_last_error() says which.  Thread-safe.
 */
MOIRAI_API int moirai_rt_create(const struct moirai_rt_config *config, struct moirai_rt **out);

/**
 * Stop the runtime: exactly once in effect (later calls return -EALREADY
 * and change nothing).  Callable from any thread, including a task: from
 * a worker it only starts the stop and returns -EINPROGRESS (a worker
 * cannot wait for itself); moirai_rt_wait() or moirai_rt_destroy() from
 * another thread waits for the end.
 * @param rt the runtime.
 * @param mode drain or cancel what is queued.
 * @param timeout_ns how long to wait for the workers (MOIRAI_TIMEOUT_FOREVER,
 *        or ns).
 * @return the number of queued tasks cancelled (>= 0; always 0 for DRAIN);
 *         -EINPROGRESS called from a worker; -EALREADY stop was already
 *         called; -ETIMEDOUT workers still busy at the deadline (each
 *         stuck worker is logged with the task it runs; moirai_rt_wait()
 *         may be called again); -EINVAL NULL or bad mode or timeout.
 */
MOIRAI_API int moirai_rt_stop(struct moirai_rt *rt, enum moirai_rt_stop_mode mode,
			      int64_t timeout_ns);

/**
 * Wait until a stopped runtime's workers have all exited and been joined.
 * Not safe concurrently with another moirai_rt_wait(), a waiting
 * moirai_rt_stop() or moirai_rt_destroy() on @p rt: each joins the worker
 * threads, unlocked.
 * @param rt the runtime.
 * @param timeout_ns MOIRAI_TIMEOUT_FOREVER, or at most that many ns
 *        (MOIRAI_TIMEOUT_TRY checks once).
 * @return 0; -ETIMEDOUT workers still running at the deadline (also for
 *         MOIRAI_TIMEOUT_TRY; call again); -EINVAL NULL, called from a
 *         worker, a timeout below -1, or stop was never called.
 */
MOIRAI_API int moirai_rt_wait(struct moirai_rt *rt, int64_t timeout_ns);

/**
 * Stop (drain, up to config.stop_timeout_ns) if not stopped yet, join
 * every thread, release every pool, ring and per-worker state.
 * @param rt the runtime; NULL is a no-op returning 0.
 * @return 0; -EBUSY a worker is still running a task after the timeout
 *         (nothing is freed: call again later); -EINVAL called from a
 *         worker of @p rt.  Not safe concurrently with other calls on @p rt.
 */
MOIRAI_API int moirai_rt_destroy(struct moirai_rt *rt);

/**
 * Workers of a runtime.
 * @param rt the runtime.
 * @return the number of workers; 0 for NULL.  Thread-safe.
 */
MOIRAI_API int moirai_rt_worker_count(const struct moirai_rt *rt);

/** Where a worker runs. */
struct moirai_rt_worker_info {
	int worker;		/**< index, 0..count-1 */
	int pu;			/**< OS CPU it is pinned to (live) */
	int node;		/**< OS node its memory is on (live) */
	int plan_pu;		/**< OS CPU of the plan (differs under virtual placement) */
	int plan_node;		/**< OS node of the plan */
	int node_idx;		/**< logical node index in the plan's topology */
	int l3;			/**< logical L3 index in the plan's topology, -1 if none */
	bool critical_only;	/**< part of the critical lane */
	bool virtual_placement; /**< the plan came from a foreign topology */
};

/**
 * Describe worker @p idx.
 * @param rt the runtime.
 * @param idx worker index, 0..worker_count-1.
 * @param[out] out the description.
 * @return 0; -EINVAL NULL @p rt or @p out; -ERANGE bad index.  Thread-safe.
 */
MOIRAI_API int moirai_rt_worker_info(const struct moirai_rt *rt, int idx,
				     struct moirai_rt_worker_info *out);

/**
 * The runtime the calling thread works for.
 * @return the runtime, or NULL on a foreign thread.  Thread-safe.
 */
MOIRAI_API struct moirai_rt *moirai_rt_current(void);

/* ---- Blocking regions ------------------------------------------------ */

/**
 * Declare that the current task is about to block (a system call, a lock,
 * a synchronous disk read): until moirai_rt_block_end(), siblings may take
 * this worker's queued work, including its mailboxes, and a parked sibling
 * is woken to do so.  Nesting is counted.  Worker only.
 * @return 0; -EINVAL not called from a worker.
 */
MOIRAI_API int moirai_rt_block_begin(void);

/**
 * End a blocking region started with moirai_rt_block_begin().  Worker only.
 * @return 0; -EINVAL not in a blocking region.
 */
MOIRAI_API int moirai_rt_block_end(void);

/* ---- Quiescent-state based reclamation ------------------------------- */

/**
 * Free @p p with @p free_fn once every worker has passed a quiescent state
 * (finished the task, poller or timer callback it was running when this
 * was called): readers on workers need no lock, no fence, no counter.
 * Workers report quiescence between tasks and go offline before they
 * park, so a sleeping worker never delays reclamation.  A worker inside a
 * join (moirai_task_join() or moirai_group_wait() from a task) reports no
 * quiescent state until the join returns, even while it runs other tasks:
 * a long join delays the free (and moirai_rt_synchronize()) as long.  Built on DPDK's
 * rte_rcu_qsbr; the deferred list is moirai's (DPDK's defer queue needs
 * the EAL).  Readers must be tasks/pollers/timers of @p rt.
 * @param rt the runtime.
 * @param p the object (not NULL).
 * @param free_fn called as free_fn(p, arg) on the housekeeping thread
 *        (moirai_free when NULL).
 * @param arg passed to @p free_fn.
 * @return 0; -EINVAL NULL rt or p; -ESHUTDOWN the runtime has stopped
 *         (nothing deferred: free it yourself once no reader can run);
 *         -ENOMEM.  Thread-safe.
 */
MOIRAI_API int moirai_rt_defer_free(struct moirai_rt *rt, void *p,
				    void (*free_fn)(void *p, void *arg), void *arg);

/**
 * Wait for a grace period: every worker has passed a quiescent state since
 * the call began.  From a worker, the caller's own worker counts as
 * quiescent (it is between reads by contract).  The wait spins and yields
 * the CPU; it never sleeps on a futex, and from a worker it runs no other
 * tasks meanwhile.
 * @param rt the runtime.
 * @param timeout_ns MOIRAI_TIMEOUT_TRY checks once, MOIRAI_TIMEOUT_FOREVER,
 *        or at most that many ns.
 * @return 0; -ETIMEDOUT no grace period yet at the deadline (also for
 *         MOIRAI_TIMEOUT_TRY, which does not return -EAGAIN); -EINVAL NULL
 *         or a timeout below -1.  Thread-safe.
 */
MOIRAI_API int moirai_rt_synchronize(struct moirai_rt *rt, int64_t timeout_ns);

/* ---- Stats ------------------------------------------------------------ */

/** Steal distance classes, nearest first. */
enum moirai_rt_steal_class {
	MOIRAI_RT_STEAL_SMT = 0,    /**< SMT sibling (same core) */
	MOIRAI_RT_STEAL_L3 = 1,	    /**< same L3 domain */
	MOIRAI_RT_STEAL_NODE = 2,   /**< same NUMA node */
	MOIRAI_RT_STEAL_REMOTE = 3, /**< another node */
};

/** Number of steal distance classes. */
#define MOIRAI_RT_STEAL_CLASSES 4

/** Longest task name a stuck report keeps (moirai_rt_worker_stats.stuck_task). */
#define MOIRAI_RT_STUCK_NAME_MAX 31

/** Counters of one worker (a snapshot: other threads keep counting). */
struct moirai_rt_worker_stats {
	/* Per-level arrays are indexed by moirai_prio_index(): critical first. */
	uint64_t tasks_run[MOIRAI_PRIO_LEVELS];	      /**< tasks run, per level */
	uint64_t continuations[MOIRAI_PRIO_LEVELS];   /**< MOIRAI_TASK_CONTINUE re-queues */
	uint64_t aged_dispatches[MOIRAI_PRIO_LEVELS]; /**< dispatches forced by aging */
	uint64_t queue_depth[MOIRAI_PRIO_LEVELS];     /**< queued now, per level */
	uint64_t steals[MOIRAI_RT_STEAL_CLASSES];     /**< tasks stolen by this worker */
	uint64_t steal_attempts;		      /**< victim visits */
	uint64_t stolen_from;			      /**< tasks others took from it */
	uint64_t mailbox_full;			      /**< submissions refused (-EAGAIN) */
	uint64_t parks;				      /**< times it slept */
	uint64_t wakeups;			      /**< futex wake-ups sent to it */
	uint64_t polls_busy;			      /**< poller runs that found work */
	uint64_t polls_idle;			      /**< poller runs that found none */
	uint64_t poll_busy_ns;			      /**< time in busy poller runs */
	uint64_t poll_idle_ns;			      /**< time in idle poller runs */
	uint64_t timers_fired;			      /**< timer callbacks run */
	uint64_t busy_ns;			      /**< time in tasks */
	uint64_t stuck_reports;			      /**< tasks reported stuck here */
	uint64_t cancelled;			      /**< queued tasks cancelled */
	/** The last stuck report here: how long its task had run, ns (0: none). */
	uint64_t stuck_run_ns;
	/** The last stuck report here: its task's name (moirai_spawn_opts.name,
	 *  truncated; "?" for an unnamed task, "" before any report).  Read with
	 *  stuck_reports and stuck_run_ns as one report.  Neither is published:
	 *  empty in a moirai_rt_snapshot. */
	char stuck_task[MOIRAI_RT_STUCK_NAME_MAX + 1];
};

/** Runtime-wide state and counters. */
struct moirai_rt_stats {
	int workers;		   /**< worker count */
	bool virtual_placement;	   /**< plan from a foreign topology */
	bool stopping;		   /**< stop was called */
	uint64_t spawned;	   /**< tasks submitted and accepted */
	uint64_t refused;	   /**< submissions refused (full, no descriptor) */
	uint64_t deferred_pending; /**< defer_free objects not yet freed */
	uint64_t deferred_freed;   /**< defer_free objects freed */
	uint64_t overflow_spills;  /**< tasks spilled from full deques */
	/** Task descriptors out of their node pools: queued, running, or done
	 *  with a handle not given back yet.  0 once the runtime has stopped
	 *  and every handle was joined or detached; moirai_rt_destroy() logs a
	 *  warning with the count when it is not (a descriptor lost inside a
	 *  pool is invisible to leak checkers: the pool frees its slab).
	 *  Not published: 0 in a moirai_rt_snapshot. */
	uint64_t tasks_in_use;
};

/**
 * Read the runtime-wide counters.
 * @param rt the runtime.
 * @param[out] out the counters (relaxed snapshots, not one consistent cut).
 * @return 0; -EINVAL NULL argument.  Thread-safe.
 */
MOIRAI_API int moirai_rt_stats_get(const struct moirai_rt *rt, struct moirai_rt_stats *out);

/**
 * Read one worker's counters.
 * @param rt the runtime.
 * @param worker worker index, 0..worker_count-1.
 * @param[out] out the counters (relaxed snapshots; queue_depth is
 *        approximate).
 * @return 0; -EINVAL NULL argument; -ERANGE bad index.  Thread-safe.
 */
MOIRAI_API int moirai_rt_worker_stats_get(const struct moirai_rt *rt, int worker,
					  struct moirai_rt_worker_stats *out);

/** Which per-level latency a histogram query is for. */
enum moirai_rt_latency {
	MOIRAI_RT_LAT_WAIT = 0, /**< submit -> start (queueing delay) */
	MOIRAI_RT_LAT_RUN = 1,	/**< start -> end of one run of the task */
};

/**
 * Merge the latency histogram of level @p prio over all workers (or one
 * worker when @p worker >= 0) into @p out (which the caller zeroes first
 * for a fresh snapshot).  Relative error of percentiles: see moirai/hist.h.
 * @param rt the runtime.
 * @param worker worker index, or any negative value for all workers.
 * @param prio the level.
 * @param kind queueing delay or run time.
 * @param[out] out the histogram merged into; the calling thread acts as
 *        its only writer (moirai_hist_merge()).
 * @return 0; -EINVAL NULL, bad level or kind; -ERANGE @p worker >= the
 *         worker count.  Thread-safe.
 */
MOIRAI_API int moirai_rt_latency_get(const struct moirai_rt *rt, int worker, enum moirai_prio prio,
				     enum moirai_rt_latency kind, struct moirai_hist *out);

/**
 * Print the runtime's stats: every field of moirai_rt_stats, of each
 * worker's moirai_rt_worker_stats (one snapshot per worker) and both
 * latency histograms of every level.  Text, for people: a summary line,
 * then tables of a "worker" column and one named column per counter, one
 * row per worker; a line per worker with a stuck report; a "wait" and a
 * "run" line per level that has records.  JSON (@p json), one document
 * keyed by the API's field names: the runtime's counters, "workers" (an
 * array of per-worker objects; per-level counters as objects keyed by
 * level name, steals keyed by class) and "latency_ns" (per level, "wait"
 * and "run": count, min, mean, p50, p90, p99, p999, max).
 * @param rt the runtime.
 * @param f the stream to write to.
 * @param json true for JSON, false for text.
 * @return 0; -EINVAL NULL argument; -ENOMEM; -EIO the stream's error
 *         indicator is set after writing.  Thread-safe (the counters are
 *         snapshots).
 */
MOIRAI_API int moirai_rt_stats_print(const struct moirai_rt *rt, FILE *f, bool json);

/**
 * Name of a priority level.
 * @param prio the level.
 * @return a static string ("critical", "high", "normal", "background");
 *         NULL for a value that is not a priority.  Thread-safe.
 */
MOIRAI_API const char *moirai_prio_name(enum moirai_prio prio);

/* ---- Published stats (moirai-top) -------------------------------------- */

/*
 * A runtime created with MOIRAI_RT_F_STATS, a stats_name, or the
 * MOIRAI_RT_STATS option publishes its stats in a read-only shared-memory
 * segment, the file DIR/moirai-stats.NAME (mode 0644, DIR the
 * MOIRAI_RT_STATS_DIR option, by default MOIRAI_RT_STATS_DEFAULT_DIR),
 * rewritten by the housekeeping thread every stats_period_ms (default 100)
 * from the counters above, and removed by moirai_rt_destroy().  NAME is the
 * process id ("4242"; "4242.1", "4242.2", ... for further runtimes of the
 * same process) unless a name is given.  The format, the seqlock that keeps
 * a reader's copy consistent and what a reader checks are in docs/top.md.
 *
 * Readers (moirai-top, or any program) use the moirai_rt_monitor_*()
 * functions below: they never write the segment, never block its writer,
 * and never trust it: every snapshot is copied into local memory, checked
 * (magic, version, sizes, identity, sequence) and clamped before it is
 * returned.  Reader and writer must share a pid namespace for liveness.
 */

/** Directory of the stats segments unless the MOIRAI_RT_STATS_DIR option
 *  names another (writers and readers of one machine must agree). */
#define MOIRAI_RT_STATS_DEFAULT_DIR "/dev/shm"
/** File name prefix of a stats segment (the name follows it). */
#define MOIRAI_RT_STATS_PREFIX "moirai-stats."
/** Longest stats segment name, not counting the NUL. */
#define MOIRAI_RT_STATS_NAME_MAX 64

/**
 * The name this runtime publishes its stats under.
 * @param rt the runtime.
 * @param[out] buf receives the name (not the path), NUL-terminated.
 * @param len size of @p buf (MOIRAI_RT_STATS_NAME_MAX + 1 always suffices).
 * @return 0; -EINVAL NULL argument or @p len 0; -ENOENT the runtime does not
 *         publish; -ENOSPC the name did not fit.  Thread-safe.
 */
MOIRAI_API int moirai_rt_stats_name(const struct moirai_rt *rt, char *buf, size_t len);

/** Opaque reader handle on one stats segment. */
struct moirai_rt_monitor;

/** What a worker was doing when its snapshot was taken. */
enum moirai_rt_worker_state {
	MOIRAI_RT_WORKER_STARTING = 0, /**< not running its loop yet */
	MOIRAI_RT_WORKER_RUNNING = 1,  /**< inside a task */
	MOIRAI_RT_WORKER_SPINNING = 2, /**< awake, looking for work */
	MOIRAI_RT_WORKER_PARKED = 3,   /**< asleep */
	MOIRAI_RT_WORKER_EXITED = 4,   /**< left its loop (runtime stopping) */
};

/** One worker in a snapshot. */
struct moirai_rt_snapshot_worker {
	struct moirai_rt_worker_info info;   /**< placement (as moirai_rt_worker_info()) */
	enum moirai_rt_worker_state state;   /**< what it was doing */
	int level;			     /**< level index of its running task, -1 none */
	uint64_t running_ns;		     /**< how long that task had run, 0 none */
	struct moirai_rt_worker_stats stats; /**< its counters */
};

/**
 * A consistent copy of one published snapshot, in the reader's memory.
 * Counters are as published (cumulative since the runtime started); rates
 * come from two snapshots (difference over @c time_ns).
 */
struct moirai_rt_snapshot {
	char name[MOIRAI_RT_STATS_NAME_MAX + 1]; /**< segment name */
	char comm[16];				 /**< the process's name (printable ASCII) */
	int pid;				 /**< the writer's process id */
	long uid;				 /**< its effective uid (the file's owner) */
	uint64_t start_time;	   /**< process start, clock ticks after boot (/proc/PID/stat 22) */
	unsigned period_ms;	   /**< publish period */
	uint64_t seq;		   /**< publish sequence number (even, grows by 2 per publish) */
	uint64_t publishes;	   /**< snapshots published so far */
	uint64_t time_ns;	   /**< CLOCK_MONOTONIC when the counters were read */
	uint64_t publish_ns;	   /**< how long the last publish took on the housekeeping thread */
	uint64_t publish_max_ns;   /**< the longest publish so far */
	bool idle;		   /**< every worker was parked (no publishes until one wakes) */
	struct moirai_rt_stats rt; /**< runtime-wide counters */
	int workers;		   /**< entries in @c worker (== rt.workers) */
	struct moirai_rt_snapshot_worker *worker; /**< per worker, index order */
	/** Latency per kind (enum moirai_rt_latency) and level index, merged over
	 *  the workers, cumulative.  Query with the moirai/hist.h functions. */
	struct moirai_hist latency[2][MOIRAI_PRIO_LEVELS];
};

/** Flag for @c uid of moirai_rt_monitor_open(): the caller's effective uid. */
#define MOIRAI_RT_MONITOR_UID_SELF (-1L)

/**
 * Open stats segment @p name for reading: O_RDONLY | O_NOFOLLOW |
 * O_NONBLOCK, then checked to be a regular file owned by @p uid, writable
 * by nobody else, of the exact size its header states, with our magic and
 * layout version.  Nothing is mapped: every read copies the file with
 * pread() (a truncated file gives an error, never SIGBUS).
 * @param name 1..MOIRAI_RT_STATS_NAME_MAX characters of [A-Za-z0-9._-],
 *        not starting with '.' (a pid, or the name the runtime was given).
 * @param uid the owner the file must have; MOIRAI_RT_MONITOR_UID_SELF for
 *        the caller's effective uid.
 * @param[out] out the handle.
 * @return 0; -EINVAL bad name or NULL @p out; -ENOENT no such segment;
 *         -EPERM a symbolic link, not a regular file, owned by another uid,
 *         or writable by group or others; -EACCES not readable; -EPROTO
 *         not a moirai stats segment (magic) or another layout version;
 *         -EBADMSG truncated, or sizes that do not add up; -ENOMEM.
 *         moirai_last_error() says which check failed.  Thread-safe.
 */
MOIRAI_API int moirai_rt_monitor_open(const char *name, long uid, struct moirai_rt_monitor **out);

/**
 * Copy the latest snapshot.  Retries a bounded number of times (for at
 * most about 100 ms) while the writer is in the middle of a publish; the
 * copy is then checked again as on open (identity and sizes must not have
 * changed) and every field is clamped to its range before it is returned.
 * @param mon the handle.
 * @param[out] out a new snapshot; free it with moirai_rt_snapshot_free().
 * @return 0; -EAGAIN the writer kept the segment busy (sequence odd or
 *         changing) through every retry: a stuck, dying or hostile writer;
 *         -EBADMSG truncated, resized or changed identity; -EPROTO magic or
 *         version changed; -EINVAL NULL argument; -ENOMEM; -EIO read error.
 *         Not safe concurrently with other calls on @p mon.
 */
MOIRAI_API int moirai_rt_monitor_read(struct moirai_rt_monitor *mon,
				      struct moirai_rt_snapshot **out);

/**
 * Whether the segment's writer is still there.
 * @param mon the handle.
 * @return 0 the process lives and the segment still has its name;
 *         -ENOENT the name is gone or names another file (the runtime was
 *         destroyed); -ESRCH the process is dead (a stale segment);
 *         -EXDEV another pid namespace: cannot tell; -EINVAL NULL.
 *         Thread-safe.
 */
MOIRAI_API int moirai_rt_monitor_check(const struct moirai_rt_monitor *mon);

/**
 * Close a handle.  Not safe concurrently with other calls on @p mon.
 * @param mon the handle; NULL is a no-op.
 */
MOIRAI_API void moirai_rt_monitor_close(struct moirai_rt_monitor *mon);

/**
 * Free a snapshot from moirai_rt_monitor_read().
 * @param snap the snapshot; NULL is a no-op.
 */
MOIRAI_API void moirai_rt_snapshot_free(struct moirai_rt_snapshot *snap);

/**
 * The latency records published between two snapshots of one runtime:
 * @p cur's histogram minus @p prev's, bucket by bucket (percentiles within
 * the bounds of moirai/hist.h; min and max are bucket bounds).
 * @param prev the earlier snapshot, or NULL for everything since start.
 * @param cur the later one.
 * @param prio the level.
 * @param kind wait or run time.
 * @param[out] out overwritten with the difference.
 * @return 0; -EINVAL NULL @p cur or @p out, bad level or kind, or
 *         snapshots of different runtimes or in the wrong order.
 *         Thread-safe.
 */
MOIRAI_API int moirai_rt_snapshot_latency(const struct moirai_rt_snapshot *prev,
					  const struct moirai_rt_snapshot *cur,
					  enum moirai_prio prio, enum moirai_rt_latency kind,
					  struct moirai_hist *out);

/** What a stats segment found on the system is. */
enum moirai_rt_segment_state {
	MOIRAI_RT_SEGMENT_LIVE = 0,    /**< its process runs */
	MOIRAI_RT_SEGMENT_STALE = 1,   /**< its process is gone (also: pid reused, rebooted) */
	MOIRAI_RT_SEGMENT_UNKNOWN = 2, /**< written in another pid namespace: cannot tell */
	MOIRAI_RT_SEGMENT_INVALID = 3, /**< not a readable segment (see @c detail) */
};

/** One stats segment found on the system. */
struct moirai_rt_segment {
	char name[MOIRAI_RT_STATS_NAME_MAX + 1]; /**< segment name */
	enum moirai_rt_segment_state state;	 /**< live, stale, ... */
	int pid;				 /**< its writer (0 when invalid) */
	long uid;				 /**< the file's owner */
	int workers;				 /**< worker count (0 when invalid) */
	char comm[16];				 /**< the process's name */
	char detail[128]; /**< why it is stale or invalid, for people ("" when live) */
};

/**
 * Describe stats segment @p name (read with the checks of
 * moirai_rt_monitor_open(), owner not required to be the caller).
 * @param name the segment name.
 * @param[out] out its description.
 * @return 0 (see @p out->state); -EINVAL bad name or NULL; -ENOENT no such
 *         segment.  Thread-safe.
 */
MOIRAI_API int moirai_rt_monitor_stat(const char *name, struct moirai_rt_segment *out);

/**
 * List the stats segments in the stats directory (the MOIRAI_RT_STATS_DIR
 * option, by default MOIRAI_RT_STATS_DEFAULT_DIR), sorted by name.  Bounded:
 * looks at no more than 4096 directory entries.
 * @param[out] out receives up to @p max entries (may be NULL when @p max is 0).
 * @param max capacity of @p out.
 * @return the number of segments found (may exceed @p max: call again with
 *         more room); -EINVAL NULL @p out with @p max > 0; other -errno
 *         from opendir.  Thread-safe.
 */
MOIRAI_API int moirai_rt_monitor_list(struct moirai_rt_segment *out, int max);

/**
 * Remove stats segment @p name if it is stale and owned by the caller's
 * effective uid (a live, unknown or invalid one is never removed).  Safe
 * against a new runtime reusing the name meanwhile: only the file that was
 * checked is removed.
 * @param name the segment name.
 * @return 0 removed; -EINVAL bad name; -ENOENT no such segment; -EBUSY its
 *         process is alive (or in another pid namespace); -EPERM owned by
 *         another uid; -EPROTO not a valid stats segment (left alone);
 *         other -errno from rename/unlink.  Thread-safe.
 */
MOIRAI_API int moirai_rt_monitor_clean(const char *name);

#ifdef __cplusplus
}
#endif

#include "moirai/rt_inline.h"
#include "moirai/task.h"
#include "moirai/poller.h"

#endif /* MOIRAI_RT_H */
