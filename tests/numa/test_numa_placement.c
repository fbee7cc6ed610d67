/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Placement on the live machine: memory bound to a node is reported on that
 * node by the kernel (move_pages), a pinned thread runs on the CPU it was
 * pinned to, and pages move when a range is rebound.  It runs on any
 * machine (one node under `make check` here) and is the main test of
 * `make check-numa`, where a 4-node qemu guest sets:
 *   MOIRAI_VM=1                       running inside the check-numa guest
 *   MOIRAI_EXPECT_NODES=N             the guest has exactly N nodes, all
 *                                     allowed, each with one vCPU
 *   MOIRAI_EXPECT_DISTANCES="a,b;c,d" the SLIT qemu was given, row per node
 *   MOIRAI_EXPECT_HUGEPAGES_2M=N      free 2 MiB pages reserved at boot,
 *                                     summed over the nodes
 * so that the same assertions then cover real cross-node placement, and
 * the live topology (hwloc) is checked against what qemu was told.
 */
#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <moirai/numa.h>

#include "testutil.h"

#define PAGES		 4
#define MAX_EXPECT_NODES 64

/* MOIRAI_EXPECT_NODES as a count, or 0 when unset. */
static int expect_nodes(void)
{
	const char *s = getenv("MOIRAI_EXPECT_NODES");

	if (!s || !*s)
		return 0;
	return (int)strtol(s, NULL, 10);
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * Map PAGES pages bound to @node, write every page, and check that the
 * kernel reports each one on @node.
 */
static void check_node_placement(int node)
{
	size_t page = page_size();
	size_t len = PAGES * page;
	unsigned char *p = NULL;

	assert_int_equal(moirai_numa_map(len, node, (void **)&p), 0);
	assert_non_null(p);
	for (size_t i = 0; i < len; i += page)
		p[i] = (unsigned char)(i / page + 1);
	for (int i = 0; i < PAGES; i++) {
		int got = moirai_numa_page_node(p + (size_t)i * page);

		if (got != node)
			print_error("node %d: page %d reported on node %d\n", node, i, got);
		assert_int_equal(got, node);
		assert_int_equal(p[(size_t)i * page], i + 1);
	}
	assert_int_equal(moirai_numa_unmap(p, len), 0);
}

static void test_memory_on_every_allowed_node(void **state)
{
	int nodes = moirai_numa_node_count();
	int want = expect_nodes();
	int allowed = 0;

	(void)state;
	assert_true(nodes >= 1);
	if (want > 0)
		assert_int_equal(nodes, want);
	for (int n = 0; n < nodes; n++) {
		if (!moirai_numa_node_is_allowed(n)) {
			/* Inside the VM every node has memory and no cgroup. */
			if (want > 0)
				fail_msg("node %d is not allowed", n);
			continue;
		}
		allowed++;
		check_node_placement(n);
	}
	assert_true(allowed >= 1);
	if (want > 0)
		assert_int_equal(allowed, want);
}

/*
 * The acceptance case, stated on its own so that a regression
 * names it: memory bound to node 3 is on node 3 in the 4-node guest.
 */
static void test_memory_on_node_3(void **state)
{
	(void)state;
	if (expect_nodes() < 4)
		skip();
	assert_true(moirai_numa_node_is_allowed(3));
	check_node_placement(3);
}

/*
 * Rebinding a touched range with bind_range (MPOL_MF_MOVE) migrates its
 * pages: needs two allowed nodes, so it skips on a one-node machine.
 */
static void test_rebind_migrates_pages(void **state)
{
	size_t page = page_size();
	size_t len = PAGES * page;
	int nodes = moirai_numa_node_count();
	int from = -1, to = -1;
	unsigned char *p = NULL;

	(void)state;
	for (int n = 0; n < nodes; n++) {
		if (!moirai_numa_node_is_allowed(n))
			continue;
		if (from < 0)
			from = n;
		to = n;
	}
	if (from < 0 || from == to)
		skip();
	assert_int_equal(moirai_numa_map(len, from, (void **)&p), 0);
	memset(p, 0xa5, len);
	for (int i = 0; i < PAGES; i++)
		assert_int_equal(moirai_numa_page_node(p + (size_t)i * page), from);
	assert_int_equal(moirai_numa_bind_range(p, len, to), 0);
	for (int i = 0; i < PAGES; i++) {
		assert_int_equal(moirai_numa_page_node(p + (size_t)i * page), to);
		/* Migration keeps the contents. */
		assert_int_equal(p[(size_t)i * page + page - 1], 0xa5);
	}
	assert_int_equal(moirai_numa_unmap(p, len), 0);
}

/*
 * bind_fresh asks for no migration: pages touched before it stay on their
 * node, pages touched after it land on the new one.
 */
static void test_bind_fresh_moves_nothing(void **state)
{
	size_t page = page_size();
	size_t len = PAGES * page, half = PAGES / 2 * page;
	int nodes = moirai_numa_node_count();
	int from = -1, to = -1;
	unsigned char *p = NULL;

	(void)state;
	for (int n = 0; n < nodes; n++) {
		if (!moirai_numa_node_is_allowed(n))
			continue;
		if (from < 0)
			from = n;
		to = n;
	}
	if (from < 0 || from == to)
		skip();
	assert_int_equal(moirai_numa_map(len, from, (void **)&p), 0);
	memset(p, 0xa5, half);
	assert_int_equal(moirai_numa_bind_fresh(p, len, to), 0);
	memset(p + half, 0x5a, len - half);
	for (int i = 0; i < PAGES; i++)
		assert_int_equal(moirai_numa_page_node(p + (size_t)i * page),
				 (size_t)i * page < half ? from : to);
	assert_int_equal(moirai_numa_unmap(p, len), 0);
}

static void test_pin_to_every_allowed_cpu(void **state)
{
	cpu_set_t orig;
	int want = expect_nodes();
	int pinned = 0;
	bool reached[MAX_EXPECT_NODES] = { false };

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(orig), &orig), 0);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &orig))
			continue;
		assert_int_equal(moirai_numa_pin_thread(cpu), 0);
		/* Setting the affinity migrates the caller before returning. */
		assert_int_equal(moirai_numa_current_cpu(), cpu);
		if (numa_available() >= 0) {
			int node = moirai_numa_current_node();

			assert_int_equal(node, numa_node_of_cpu(cpu));
			if (node >= 0 && node < MAX_EXPECT_NODES)
				reached[node] = true;
		}
		pinned++;
	}
	assert_true(pinned >= 1);
	assert_int_equal(pinned, CPU_COUNT(&orig));
	/* The guest gives every node one vCPU: pinning must reach them all. */
	if (want > 0 && want <= MAX_EXPECT_NODES)
		for (int n = 0; n < want; n++)
			if (!reached[n])
				fail_msg("no allowed CPU ran on node %d", n);
	assert_int_equal(sched_setaffinity(0, sizeof(orig), &orig), 0);
}

/* ---- the live topology against the binding layer and the VM's SLIT -- */

/*
 * Parse MOIRAI_EXPECT_DISTANCES ("10,20;20,10": rows by ';', columns by
 * ',') into @m.  Returns the row count; fails the test unless the matrix
 * is square.
 */
static int parse_distances(const char *s, int m[MAX_EXPECT_NODES][MAX_EXPECT_NODES])
{
	int rows = 0, cols = 0, width = -1;
	const char *p = s;

	for (;;) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || rows >= MAX_EXPECT_NODES || cols >= MAX_EXPECT_NODES)
			fail_msg("MOIRAI_EXPECT_DISTANCES: bad matrix near '%s'", p);
		m[rows][cols++] = (int)v;
		p = end;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p != ';' && *p != '\0')
			fail_msg("MOIRAI_EXPECT_DISTANCES: bad character '%c'", *p);
		if (width >= 0 && cols != width)
			fail_msg("MOIRAI_EXPECT_DISTANCES: row %d has %d columns, not %d", rows,
				 cols, width);
		width = cols;
		rows++;
		cols = 0;
		if (*p == '\0')
			break;
		p++;
	}
	if (rows != width)
		fail_msg("MOIRAI_EXPECT_DISTANCES: %d rows of %d columns", rows, width);
	return rows;
}

/*
 * The live topology agrees with the binding layer everywhere (node count,
 * local distance 10, every OS node present); in the VM its node count,
 * OS indexes and full distance matrix equal what qemu was given.
 */
static void test_live_topology(void **state)
{
	static int want[MAX_EXPECT_NODES][MAX_EXPECT_NODES];
	const char *dist = getenv("MOIRAI_EXPECT_DISTANCES");
	const char *hp = getenv("MOIRAI_EXPECT_HUGEPAGES_2M");
	struct moirai_topo *topo = NULL;
	struct moirai_topo_node node;
	int nodes, expect = expect_nodes();

	(void)state;
	assert_int_equal(moirai_topo_load_live(&topo), 0);
	assert_non_null(topo);
	nodes = moirai_topo_node_count(topo);
	assert_int_equal(nodes, moirai_numa_node_count());
	if (expect > 0)
		assert_int_equal(nodes, expect);
	for (int a = 0; a < nodes; a++) {
		assert_int_equal(moirai_topo_node(topo, a, &node), 0);
		assert_int_equal(moirai_topo_distance(topo, a, a), 10);
		if (expect > 0) {
			/* The guest's nodes are 0..N-1, each with memory. */
			assert_int_equal(node.os_index, a);
			assert_int_equal(moirai_topo_node_by_os(topo, a), a);
			assert_true(node.memory_bytes > 0);
			assert_true(node.mem_allowed);
			assert_int_equal(node.pu_count, 1);
		}
	}
	if (hp && *hp) {
		/* The kernel spreads hugepages= over the nodes. */
		long sum = 0;

		for (int a = 0; a < nodes; a++) {
			assert_int_equal(moirai_topo_node(topo, a, &node), 0);
			assert_true(node.hugepages_2m_free >= 0);
			sum += node.hugepages_2m_free;
		}
		assert_int_equal(sum, strtol(hp, NULL, 10));
	}
	if (dist && *dist) {
		int rows = parse_distances(dist, want);

		assert_int_equal(nodes, rows);
		assert_true(moirai_topo_has_distances(topo));
		for (int a = 0; a < rows; a++)
			for (int b = 0; b < rows; b++) {
				int got = moirai_topo_distance(topo, a, b);

				if (got != want[a][b])
					print_error("distance(%d,%d) = %d, qemu was given %d\n", a,
						    b, got, want[a][b]);
				assert_int_equal(got, want[a][b]);
			}
	}
	moirai_topo_destroy(topo);
}

static void test_negative(void **state)
{
	size_t page = page_size();
	int nodes = moirai_numa_node_count();
	void *p = (void *)1;
	int rc;

	(void)state;
	assert_false(moirai_numa_node_is_allowed(-1));
	assert_false(moirai_numa_node_is_allowed(nodes));
	assert_int_equal(moirai_numa_map(page, nodes, &p), -ENODEV);
	assert_null(p);
	assert_int_equal(moirai_numa_map(0, 0, &p), -EINVAL);
	assert_int_equal(moirai_numa_map(page, 0, NULL), -EINVAL);
	assert_int_equal(moirai_numa_page_node(NULL), -EINVAL);
	assert_int_equal(moirai_numa_pin_thread(-1), -EINVAL);
	assert_int_equal(moirai_numa_pin_thread(CPU_SETSIZE), -EINVAL);
	assert_int_equal(moirai_numa_unmap(NULL, page), 0);

	/* An untouched page has no node; an unmapped one faults. */
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	rc = moirai_numa_page_node(p);
	assert_true(rc == -ENOENT || rc == -EFAULT);
	assert_int_equal(munmap(p, page), 0);
	assert_int_equal(moirai_numa_page_node(p), -EFAULT);

	/* Binding a range to a node that does not exist is refused. */
	assert_int_equal(moirai_numa_map(page, 0, &p), 0);
	assert_int_equal(moirai_numa_bind_range(p, page, nodes), -ENODEV);
	assert_int_equal(moirai_numa_bind_range((char *)p + 1, page, 0), -EINVAL);
	assert_int_equal(moirai_numa_unmap(p, page), 0);

	/* Distances outside the topology are refused, not guessed. */
	struct moirai_topo *topo = NULL;

	assert_int_equal(moirai_topo_load_live(NULL), -EINVAL);
	assert_int_equal(moirai_topo_load_live(&topo), 0);
	assert_int_equal(moirai_topo_distance(topo, -1, 0), -ERANGE);
	assert_int_equal(moirai_topo_distance(topo, 0, nodes), -ERANGE);
	assert_int_equal(moirai_topo_distance(NULL, 0, 0), -EINVAL);
	moirai_topo_destroy(topo);
}

int main(void)
{
	const struct CMUnitTest placement[] = {
		cmocka_unit_test(test_memory_on_every_allowed_node),
		cmocka_unit_test(test_memory_on_node_3),
		cmocka_unit_test(test_rebind_migrates_pages),
		cmocka_unit_test(test_bind_fresh_moves_nothing),
		cmocka_unit_test(test_pin_to_every_allowed_cpu),
		cmocka_unit_test(test_live_topology),
	};
	const struct CMUnitTest negative[] = {
		cmocka_unit_test(test_negative),
	};
	int failed = 0;

	alarm(60); /* a hung syscall fails the test instead of the run */
	failed += cmocka_run_group_tests_name("numa placement", placement, NULL, NULL);
	failed += cmocka_run_group_tests_name("numa placement negative", negative, NULL, NULL);
	return failed ? 1 : 0;
}
