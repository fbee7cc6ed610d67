/*
 * CPU and memory binding on the live machine: thread pinning, mbind of a
 * range before first touch, the page -> node query (move_pages with NULL
 * nodes), getcpu, and node-bound mappings for long-lived buffers.  These
 * are thin, checked wrappers over libnuma's syscall stubs; they never touch
 * hwloc so that the allocator and rings can use them on a hot start path.
 */
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "moirai/numa.h"

#define MAX_NODES 1024

static int node_count_cached;
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

static void node_count_init(void)
{
	int max = -1;

	if (numa_available() >= 0)
		max = numa_max_node();
	node_count_cached = max >= 0 ? max + 1 : 1;
}

int moirai_numa_node_count(void)
{
	pthread_once(&node_once, node_count_init);
	return node_count_cached;
}

bool moirai_numa_node_is_allowed(int node)
{
	if (node < 0 || node >= moirai_numa_node_count())
		return false;
	if (numa_available() < 0)
		return node == 0;
	/* numa_get_mems_allowed() reads Mems_allowed of this task (cgroup). */
	struct bitmask *allowed = numa_get_mems_allowed();
	bool ok = allowed && numa_bitmask_isbitset(allowed, (unsigned)node);

	if (allowed)
		numa_bitmask_free(allowed);
	if (!ok)
		return false;
	long long free_bytes;

	return numa_node_size64(node, &free_bytes) > 0;
}

int moirai_numa_pin_thread(int pu)
{
	cpu_set_t set;
	int rc;

	if (pu < 0 || pu >= CPU_SETSIZE)
		return moirai__err(-EINVAL, "pin: CPU %d is out of range", pu);
	CPU_ZERO(&set);
	CPU_SET(pu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc)
		return moirai__err(-rc, "pin: cannot pin to CPU %d: %s", pu, moirai_strerror(rc));
	return 0;
}

static int check_range(const char *what, void *addr, size_t len, int node)
{
	long page = sysconf(_SC_PAGESIZE);

	if (!addr || len == 0 || ((uintptr_t)addr & (uintptr_t)(page - 1)))
		return moirai__err(-EINVAL, "%s: range %p+%zu is empty or not page-aligned", what,
				   addr, len);
	if (node < 0 || node >= moirai_numa_node_count() || node >= MAX_NODES)
		return moirai__err(-EINVAL, "%s: node %d does not exist (%d nodes)", what, node,
				   moirai_numa_node_count());
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

		return moirai__err(e == EIO ? -EIO : -e, "%s: mbind to node %d failed: %s%s", what,
				   node, moirai_strerror(e),
				   e == EINVAL ? " (node not in the cgroup's MemsAllowed?)" : "");
	}
	return 0;
}

int moirai_numa_bind_range(void *addr, size_t len, int node)
{
	return set_policy("bind", addr, len, node, MPOL_BIND, MPOL_MF_MOVE);
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
	if (node == MOIRAI_NODE_ANY) {
		node = moirai_numa_current_node();
		if (node < 0)
			node = 0;
	}
	if (!moirai_numa_node_is_allowed(node))
		return moirai__err(-EINVAL, "map: node %d does not exist or is not allowed", node);
	size = (len + (size_t)page - 1) & ~((size_t)page - 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		return moirai__err(-ENOMEM, "map: cannot map %zu bytes", size);
	rc = moirai_numa_bind_range(p, size, node);
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
	size = (len + (size_t)page - 1) & ~((size_t)page - 1);
	if (munmap(addr, size) != 0)
		return moirai__err(-errno, "unmap: %s", moirai_strerror(errno));
	return 0;
}
