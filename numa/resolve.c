/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one place a node argument is checked and MOIRAI_NODE_ANY is turned
 * into a node, so that every module (allocator, rings, pools, shm, the
 * runtime) gives the same answer and the same error code for the same
 * node: -ENODEV when it does not exist, -EPERM when the cgroup forbids it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "moirai/numa.h"
#include "numa_int.h"

/*
 * What each live node is, read once per process: libnuma's queries read
 * sysfs and /proc and call malloc every time, and the allocator asks on
 * its slow paths from every thread (a thread's first glibc malloc reserves
 * a 64 MiB arena: under RLIMIT_AS that alone stopped threads from
 * starting).  Hotplugged memory or a changed cgroup after start is not
 * seen, as the allocator, which decides availability at first use, does
 * not see it either.
 */
#define STATE_NODES 1024

static int8_t node_state[STATE_NODES]; /* 0 usable, -ENODEV, -EPERM */
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

/*
 * From sysfs and /proc with plain reads, not libnuma (whose queries need
 * its constructor to have run: the allocator's start, which asks here, can
 * be the process's first malloc, called from inside that constructor under
 * the malloc drop-in).  A node is usable when it is online, has memory
 * (has_memory: N_MEMORY, what numa_node_size64() > 0 said) and is in the
 * cpuset's Mems_allowed_list.  Without the node files (a kernel without
 * NUMA) node 0 is the one usable node; without Mems_allowed_list every
 * node is allowed.
 */
static void state_init(void)
{
	static bool mem[STATE_NODES], allowed[STATE_NODES];
	int n = moirai_numa_node_count();
	bool have_mem =
		moirai__sysfs_cpulist("/sys/devices/system/node/has_memory", mem, STATE_NODES) > 0;
	bool have_allowed = moirai__proc_mems_allowed(allowed, STATE_NODES) > 0;

	for (int i = 0; i < STATE_NODES; i++) {
		if (i >= n)
			node_state[i] = -ENODEV;
		else if (!have_mem)
			node_state[i] = i == 0 ? 0 : -ENODEV;
		else if (!mem[i])
			node_state[i] = -ENODEV;
		else if (have_allowed && !allowed[i])
			node_state[i] = -EPERM;
		else
			node_state[i] = 0;
	}
}

int moirai__numa_node_state(int node)
{
	if (node < 0 || node >= STATE_NODES)
		return -ENODEV;
	pthread_once(&state_once, state_init);
	return node_state[node];
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
	if (moirai__numa_node_state(node) == -ENODEV)
		return moirai__err(-ENODEV, "numa: NUMA node %d has no memory", node);
	if (moirai__numa_node_state(node) == -EPERM)
		return moirai__err(-EPERM,
				   "numa: NUMA node %d is not allowed by the cgroup (cpuset.mems)",
				   node);
	return node;
}
