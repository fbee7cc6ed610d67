/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data-parallel loops by recursive halving (Cilk/TBB style): a range
 * bigger than the grain keeps its left half and spawns its right half,
 * again and again, then runs its own leftmost chunk and joins the halves
 * it spawned, newest first.  The spawned halves sit in the worker's deque
 * oldest-largest at the top, so a thief takes the largest piece left.
 * Each half's state lives on the stack frame that joins it, so a loop
 * allocates nothing but task descriptors; a half that cannot be spawned
 * (no descriptor left) is run inline instead.
 */
#include <string.h>

#include "rt_int.h"

#define MAX_SPLITS 64
#define STACK_ACC  64 /* accumulators up to this size live on the stack */

struct loop {
	struct moirai_rt *rt;
	size_t grain;
	moirai_for_fn fn;
	const struct moirai_reduce_ops *ops;
	void *arg;
	int prio;
};

struct range {
	const struct loop *lp;
	size_t begin, end;
	void *acc; /* reduce: this range's accumulator */
};

static int run_range(void *arg);

static void split_and_run(const struct loop *lp, size_t begin, size_t end, void *acc)
{
	struct range child[MAX_SPLITS];
	struct moirai_task *h[MAX_SPLITS];
	unsigned char stack_acc[MAX_SPLITS][STACK_ACC] __attribute__((aligned(16)));
	unsigned char *heap_acc = NULL;
	struct moirai_spawn_opts o = { .prio = lp->prio };
	size_t acc_size = lp->ops ? lp->ops->acc_size : 0;
	int n = 0;

	if (acc_size > STACK_ACC) {
		heap_acc = moirai_malloc(acc_size * MAX_SPLITS);
		if (!heap_acc)
			goto serial; /* no memory for partial results: fold it all here */
	}
	while (end - begin > lp->grain && n < MAX_SPLITS) {
		size_t mid = begin + (end - begin) / 2;
		struct range *c = &child[n];

		c->lp = lp;
		c->begin = mid;
		c->end = end;
		c->acc = NULL;
		if (lp->ops) {
			c->acc = heap_acc ? heap_acc + (size_t)n * acc_size : stack_acc[n];
			lp->ops->init(c->acc, lp->arg);
		}
		if (moirai_rt_spawn(lp->rt, run_range, c, &o, &h[n]) != 0) {
			/* No descriptor: this half is done by us, later, in order. */
			break;
		}
		end = mid;
		n++;
	}
serial:
	if (lp->ops)
		lp->ops->body(begin, end, acc, lp->arg);
	else
		lp->fn(begin, end, lp->arg);
	/* Newest first: the halves nearest ours, combined left to right. */
	for (int i = n - 1; i >= 0; i--) {
		moirai_task_join(h[i], MOIRAI_TIMEOUT_FOREVER, NULL);
		if (lp->ops)
			lp->ops->combine(acc, child[i].acc, lp->arg);
	}
	moirai_free(heap_acc);
}

static int run_range(void *arg)
{
	struct range *r = arg;

	split_and_run(r->lp, r->begin, r->end, r->acc);
	return 0;
}

static int loop_common(struct loop *lp, size_t begin, size_t end,
		       const struct moirai_spawn_opts *opts, void *acc)
{
	struct range root = { lp, begin, end, acc };
	struct moirai_task *h;
	int rc, n = moirai_rt_worker_count(lp->rt);

	/* Checked here too: from a worker the root runs inline, and a bad
	 * option would only make every split fail and the loop run serially. */
	if (opts && moirai_prio_index(opts->prio) < 0)
		return moirai__err(-EINVAL, "parallel loop: %d is not a priority", opts->prio);
	if (opts &&
	    (opts->flags & ~(MOIRAI_SPAWN_F_WORKER | MOIRAI_SPAWN_F_NODE | MOIRAI_SPAWN_F_STRICT)))
		return moirai__err(-EINVAL, "parallel loop: unknown spawn flags 0x%x", opts->flags);

	if (lp->grain == 0) {
		lp->grain = (end - begin) / (8u * (unsigned)(n > 0 ? n : 1));
		if (lp->grain == 0)
			lp->grain = 1;
	}
	lp->prio = opts ? opts->prio : MOIRAI_PRIO_NORMAL;
	if (begin == end)
		return 0;
	/* From one of the runtime's workers without a placement wish: take
	 * part directly.  Otherwise start the root where asked and wait. */
	if (rt_current_worker(lp->rt) &&
	    (!opts || !(opts->flags & (MOIRAI_SPAWN_F_NODE | MOIRAI_SPAWN_F_WORKER)))) {
		split_and_run(lp, begin, end, acc);
		return 0;
	}
	rc = moirai_rt_spawn(lp->rt, run_range, &root, opts, &h);
	if (rc)
		return rc;
	return moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, NULL);
}

int moirai_parallel_for(struct moirai_rt *rt, size_t begin, size_t end, size_t grain,
			moirai_for_fn fn, void *arg, const struct moirai_spawn_opts *opts)
{
	struct loop lp = { .rt = rt, .grain = grain, .fn = fn, .arg = arg };

	if (!rt || !fn)
		return moirai__err(-EINVAL, "parallel_for: NULL %s", rt ? "body" : "runtime");
	if (begin > end)
		return moirai__err(-EINVAL, "parallel_for: begin %zu > end %zu", begin, end);
	return loop_common(&lp, begin, end, opts, NULL);
}

int moirai_parallel_reduce(struct moirai_rt *rt, size_t begin, size_t end, size_t grain,
			   const struct moirai_reduce_ops *ops, void *arg, void *result,
			   const struct moirai_spawn_opts *opts)
{
	struct loop lp = { .rt = rt, .grain = grain, .ops = ops, .arg = arg };

	if (!rt || !ops || !result || !ops->init || !ops->body || !ops->combine)
		return moirai__err(-EINVAL, "parallel_reduce: NULL argument");
	if (ops->acc_size == 0 || ops->acc_size > 4096)
		return moirai__err(-EINVAL, "parallel_reduce: acc_size %zu is not in 1..4096",
				   ops->acc_size);
	if (begin > end)
		return moirai__err(-EINVAL, "parallel_reduce: begin %zu > end %zu", begin, end);
	ops->init(result, arg);
	return loop_common(&lp, begin, end, opts, result);
}
