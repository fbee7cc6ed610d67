/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CPU and memory binding on the live machine: thread pinning, mbind of a
 * range before first touch, the page -> node query (move_pages with NULL
 * nodes), getcpu, and node-bound mappings for long-lived buffers.  These
 * are thin, checked wrappers over libnuma's syscall stubs; they never touch
 * hwloc so that the allocator and rings can use them on a hot start path.
 *
 * Node arguments go through moirai_numa_node_resolve (resolve.c), so every
 * call gives -ENODEV for a node that does not exist and -EPERM for one the
 * cgroup forbids.  Pinning is checked against the affinity mask the process
 * started with: the kernel lets a thread widen its own mask to anything in
 * the cgroup, so without this check a taskset restriction would not hold.
 */
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "moirai/numa.h"
#include "numa_int.h"

#define MAX_NODES MOIRAI_TOPO_MAX_NODES

/*
 * The process affinity mask at load time, before the program (or moirai)
 * pinned anything: what taskset or the parent gave the process.  A
 * constructor, because the first pin may come after the main thread
 * narrowed its own mask.
 */
static cpu_set_t start_mask;
static bool start_mask_ok;

__attribute__((constructor)) static void capture_start_mask(void)
{
	start_mask_ok = sched_getaffinity(0, sizeof(start_mask), &start_mask) == 0;
}

/*
 * A foreign topology's CPU and node numbers are another machine's; pinning
 * or binding by them here is usually a mistake (MOIRAI_TOPOLOGY left set in
 * production).  Count the live foreign topologies and warn once.
 */
static atomic_int foreign_topos;
static atomic_bool foreign_warned;

void moirai__foreign_topo_ref(int delta)
{
	atomic_fetch_add_explicit(&foreign_topos, delta, memory_order_relaxed);
}

static void warn_if_foreign(const char *what, int num)
{
	/* Relaxed: a hint for the operator, ordered with nothing. */
	if (atomic_load_explicit(&foreign_topos, memory_order_relaxed) <= 0 ||
	    atomic_exchange_explicit(&foreign_warned, true, memory_order_relaxed))
		return;
	moirai__log(MOIRAI_LOG_WARN,
		    "numa: %s %d on the live machine while a foreign topology (XML, synthetic or "
		    "MOIRAI_TOPOLOGY) is loaded: its CPU and node numbers describe another "
		    "machine",
		    what, num);
}

static int node_count_cached;
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

/*
 * The highest online node + 1, from sysfs with plain reads.  Not libnuma:
 * the allocator asks at its start, which under the malloc drop-in can be
 * the first malloc of the process, made from inside libnuma's own
 * constructor before it has set its node counts (numa_max_node() would say
 * -1 and be cached).  A kernel without NUMA has no node list: one node.
 */
static void node_count_init(void)
{
	bool online[MAX_NODES] = { false };
	int max = -1;

	if (moirai__sysfs_cpulist("/sys/devices/system/node/online", online, MAX_NODES) > 0)
		for (int i = 0; i < MAX_NODES; i++)
			if (online[i])
				max = i;
	node_count_cached = max >= 0 ? max + 1 : 1;
}

int moirai_numa_node_count(void)
{
	pthread_once(&node_once, node_count_init);
	return node_count_cached;
}

bool moirai_numa_node_is_allowed(int node)
{
	return moirai__numa_node_state(node) == 0;
}

int moirai_numa_pin_thread(int pu)
{
	cpu_set_t set;
	int rc;

	if (pu < 0 || pu >= CPU_SETSIZE)
		return moirai__err(-EINVAL, "pin: CPU %d is out of range (0..%d)", pu,
				   CPU_SETSIZE - 1);
	warn_if_foreign("pinning to CPU", pu);
	if (start_mask_ok && !CPU_ISSET(pu, &start_mask))
		return moirai__err(-EINVAL,
				   "pin: CPU %d is not in this process's affinity mask (taskset) "
				   "(%d CPUs in it)",
				   pu, CPU_COUNT(&start_mask));
	CPU_ZERO(&set);
	CPU_SET(pu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	/* The kernel refuses CPUs that are offline or outside the cgroup cpuset. */
	if (rc == EINVAL)
		return moirai__err(-EINVAL, "pin: CPU %d is offline or outside the cgroup's cpuset",
				   pu);
	if (rc)
		return moirai__err(-rc, "pin: cannot pin to CPU %d: %s", pu, moirai_strerror(rc));
	return 0;
}

static int check_range(const char *what, void *addr, size_t len, int node)
{
	long page = sysconf(_SC_PAGESIZE);
	int rc;

	if (!addr || len == 0 || ((uintptr_t)addr & (uintptr_t)(page - 1)))
		return moirai__err(-EINVAL, "%s: range %p+%zu is empty or not page-aligned", what,
				   addr, len);
	/* MOIRAI_NODE_ANY is no node to bind to. */
	if (node == MOIRAI_NODE_ANY)
		return moirai__err(-EINVAL, "%s: needs a node, not MOIRAI_NODE_ANY", what);
	rc = moirai_numa_node_resolve(node);
	if (rc < 0)
		return rc;
	if (node >= MAX_NODES)
		return moirai__err(-ENODEV, "%s: node %d is beyond %d", what, node, MAX_NODES - 1);
	warn_if_foreign("binding memory to node", node);
	return 0;
}

static int set_policy(const char *what, void *addr, size_t len, int node, int mode, unsigned flags)
{
	unsigned long mask[MAX_NODES / (8 * sizeof(unsigned long))] = { 0 };
	int rc = check_range(what, addr, len, node);

	if (rc)
		return rc;
	mask[node / (8 * sizeof(unsigned long))] |= 1UL << (node % (8 * sizeof(unsigned long)));
	if (mbind(addr, len, mode, mask, MAX_NODES + 1, flags) != 0) {
		int e = errno;

		/*
		 * The arguments were checked; EINVAL now means the cgroup's
		 * cpuset.mems changed under us and no longer has the node.
		 */
		if (e == EINVAL)
			return moirai__err(-EPERM,
					   "%s: mbind to node %d refused (cgroup cpuset.mems)",
					   what, node);
		return moirai__err(e == EIO ? -EIO : -e, "%s: mbind to node %d failed: %s", what,
				   node, moirai_strerror(e));
	}
	return 0;
}

int moirai_numa_bind_range(void *addr, size_t len, int node)
{
	return set_policy("bind", addr, len, node, MPOL_BIND, MPOL_MF_MOVE);
}

int moirai_numa_bind_fresh(void *addr, size_t len, int node)
{
	return set_policy("bind", addr, len, node, MPOL_BIND, 0);
}

int moirai_numa_prefer_range(void *addr, size_t len, int node)
{
	return set_policy("prefer", addr, len, node, MPOL_PREFERRED, 0);
}

int moirai_numa_page_node(const void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = (void *)((uintptr_t)addr & ~(uintptr_t)(page - 1));
	int status = -1;

	if (!addr)
		return moirai__err(-EINVAL, "page_node: NULL address");
	if (move_pages(0, 1, &p, NULL, &status, 0) != 0)
		return moirai__err(-errno, "page_node: move_pages(%p) failed: %s", addr,
				   moirai_strerror(errno));
	/* A negative status is an errno for that page (-EFAULT: not present). */
	if (status < 0)
		return moirai__err(status, "page_node: page %p: %s", p, moirai_strerror(status));
	return status;
}

int moirai_numa_current_cpu(void)
{
	unsigned cpu, node;

	if (getcpu(&cpu, &node) != 0)
		return -errno;
	return (int)cpu;
}

int moirai_numa_current_node(void)
{
	unsigned cpu, node;

	if (getcpu(&cpu, &node) != 0)
		return -errno;
	return (int)node;
}

int moirai_numa_map(size_t len, int node, void **out)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size;
	void *p;
	int rc;

	if (!out || len == 0 || len > SIZE_MAX - (size_t)page)
		return moirai__err(-EINVAL, "map: invalid size %zu", len);
	*out = NULL;
	node = moirai_numa_node_resolve(node);
	if (node < 0)
		return node;
	size = moirai__align_up(len, (size_t)page);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		return moirai__err(-ENOMEM, "map: cannot map %zu bytes", size);
	rc = moirai_numa_bind_fresh(p, size, node);
	if (rc) {
		munmap(p, size);
		return rc;
	}
	*out = p;
	return 0;
}

int moirai_numa_unmap(void *addr, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size;

	if (!addr)
		return 0;
	if (len == 0 || len > SIZE_MAX - (size_t)page)
		return moirai__err(-EINVAL, "unmap: invalid size %zu", len);
	size = moirai__align_up(len, (size_t)page);
	if (munmap(addr, size) != 0)
		return moirai__err(-errno, "unmap: %s", moirai_strerror(errno));
	return 0;
}
