/*
 * The one place a node argument is checked and MOIRAI_NODE_ANY is turned
 * into a node, so that every module (allocator, rings, pools, shm, the
 * runtime) gives the same answer and the same error code for the same
 * node: -ENODEV when it does not exist, -EPERM when the cgroup forbids it.
 */
#include <numa.h>
#include <stdbool.h>

#include "internal.h"
#include "moirai/numa.h"

static bool has_memory(int node)
{
	long long free_bytes;

	if (numa_available() < 0)
		return node == 0;
	return numa_node_size64(node, &free_bytes) > 0;
}

static bool in_mems_allowed(int node)
{
	struct bitmask *allowed;
	bool ok;

	if (numa_available() < 0)
		return node == 0;
	/* numa_get_mems_allowed() reads Mems_allowed of this task (cgroup). */
	allowed = numa_get_mems_allowed();
	ok = allowed && numa_bitmask_isbitset(allowed, (unsigned)node);
	if (allowed)
		numa_bitmask_free(allowed);
	return ok;
}

int moirai_numa_node_resolve(int node)
{
	int count = moirai_numa_node_count();

	if (node == MOIRAI_NODE_ANY) {
		int cur = moirai_numa_current_node();

		if (cur >= 0 && moirai_numa_node_is_allowed(cur))
			return cur;
		/* The caller's node has no memory we may use: the first allowed. */
		for (int n = 0; n < count; n++)
			if (moirai_numa_node_is_allowed(n))
				return n;
		return moirai__err(-ENODEV, "numa: no NUMA node has memory this process may use");
	}
	if (node < 0)
		return moirai__err(-EINVAL,
				   "numa: node %d is not a node number (MOIRAI_NODE_ANY is %d)",
				   node, MOIRAI_NODE_ANY);
	if (node >= count)
		return moirai__err(-ENODEV, "numa: NUMA node %d does not exist (nodes 0..%d)", node,
				   count - 1);
	if (!has_memory(node))
		return moirai__err(-ENODEV, "numa: NUMA node %d has no memory", node);
	if (!in_mems_allowed(node))
		return moirai__err(-EPERM,
				   "numa: NUMA node %d is not allowed by the cgroup (cpuset.mems)",
				   node);
	return node;
}
