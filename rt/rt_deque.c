/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The work-stealing deque of each worker and level (Chase-Lev, in the C11
 * form of Le, Pop, Cohen and Zappa Nardelli, "Correct and efficient
 * work-stealing for weak memory models", PPoPP 2013).  The owner's push
 * is a relaxed slot store and a release store of bottom (rt_int.h); take
 * and steal need the store-load ordering below, a seq_cst fence each,
 * because the owner and a thief may race for the last task.  Every store
 * of bottom is a release (plain moves on x86) so that a thief's acquire
 * load of any value of it sees the tasks pushed before, without relying
 * on release sequences through relaxed stores.
 */
#include <string.h>

#include "rt_int.h"

int rt_deque_init(struct rt_deque *d, unsigned capacity, int node)
{
	size_t len = (size_t)capacity * sizeof(*d->slots);

	if (!moirai__is_pow2(capacity))
		return moirai__err(-EINVAL, "rt: deque size %u is not a power of two", capacity);
	d->slots = moirai_malloc_node_flags(len, MOIRAI_CACHE_LINE, node, MOIRAI_ALLOC_F_PREFERRED);
	if (!d->slots)
		return moirai__err(-ENOMEM, "rt: cannot allocate a %u-slot deque", capacity);
	for (unsigned i = 0; i < capacity; i++)
		atomic_init(&d->slots[i], NULL);
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	d->mask = (int64_t)capacity - 1;
	return 0;
}

void rt_deque_fini(struct rt_deque *d)
{
	moirai_free((void *)d->slots);
	d->slots = NULL;
}

struct rt_task *rt_deque_take(struct rt_deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	struct rt_task *t = NULL;
	int64_t top;

	/* Empty as the owner sees it: top only grows, so a top already at
	 * bottom (even a stale one) means there is nothing to take.  Skips
	 * the fence, which the scheduler would otherwise pay for every empty
	 * level it looks at (three per normal-priority task in a join). */
	if (atomic_load_explicit(&d->top, memory_order_relaxed) > b)
		return NULL;
	atomic_store_explicit(&d->bottom, b, memory_order_release);
	/* Store bottom, then load top: pairs with the fence in steal, so the
	 * owner and a thief cannot both miss each other on the last task. */
	moirai__full_fence();
	top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (top <= b) {
		t = atomic_load_explicit(&d->slots[b & d->mask], memory_order_relaxed);
		if (top == b) {
			/* The last one: race the thieves for it. */
			if (!atomic_compare_exchange_strong_explicit(&d->top, &top, top + 1,
								     memory_order_seq_cst,
								     memory_order_relaxed))
				t = NULL;
			atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
		}
	} else {
		atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	}
	return t;
}

struct rt_task *rt_deque_steal(struct rt_deque *d, bool *lost)
{
	/* Acquire pairs with the CAS of other thieves (slot reuse). */
	int64_t top = atomic_load_explicit(&d->top, memory_order_acquire);
	struct rt_task *t;
	int64_t b;

	*lost = false;
	/* Load top, then bottom: pairs with the fence in take. */
	moirai__full_fence();
	/* Acquire pairs with the release fence of the owner's push: the
	 * slot and the task it points to are visible. */
	b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	if (top >= b)
		return NULL;
	t = atomic_load_explicit(&d->slots[top & d->mask], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&d->top, &top, top + 1, memory_order_seq_cst,
						     memory_order_relaxed)) {
		*lost = true;
		return NULL;
	}
	return t;
}
