/*
 * The live machine: the probe's counts against sysfs and the affinity mask,
 * and the binding helpers' error paths.  (Per-node placement and pinning on
 * every CPU are in test_numa_placement, which also runs in the 4-node VM.)
 */
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <moirai/numa.h>

#include "internal.h"
#include "numa_int.h"
#include "testutil.h"

static int sysfs_node_count(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "node", 4) && e->d_name[4] >= '0' && e->d_name[4] <= '9')
			n++;
	closedir(d);
	return n ? n : 1;
}

static void test_live_counts(void **state)
{
	struct moirai_topo *t = NULL;
	cpu_set_t set;
	bool online[8192] = { false };
	int n_online;

	(void)state;
	assert_int_equal(moirai_topo_load_live(&t), 0);
	assert_int_equal(moirai_topo_source(t), MOIRAI_TOPO_LIVE);
	n_online = moirai__sysfs_cpulist("/sys/devices/system/cpu/online", online, 8192);
	assert_true(n_online > 0);
	assert_int_equal(moirai_topo_pu_count(t), n_online);
	assert_int_equal(moirai_topo_pu_count(t), sysconf(_SC_NPROCESSORS_ONLN));
	/* Usable = the affinity mask (what nproc prints) within online CPUs. */
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_int_equal(moirai_topo_allowed_pu_count(t), CPU_COUNT(&set));
	assert_int_equal(moirai_topo_node_count(t), sysfs_node_count());
	assert_int_equal(moirai_numa_node_count(), sysfs_node_count());
	for (int i = 0; i < moirai_topo_pu_count(t); i++) {
		struct moirai_topo_pu pu;

		assert_int_equal(moirai_topo_pu(t, i, &pu), 0);
		assert_true(online[pu.os_index]);
		assert_int_equal(pu.allowed, CPU_ISSET(pu.os_index, &set) ? 1 : 0);
	}
	for (int n = 0; n < moirai_topo_node_count(t); n++) {
		struct moirai_topo_node nd;

		assert_int_equal(moirai_topo_node(t, n, &nd), 0);
		assert_true(nd.memory_bytes > 0);
		assert_true(nd.mem_allowed);
		assert_int_equal(moirai_numa_node_is_allowed(nd.os_index), true);
		assert_true(nd.hugepages_2m_free >= 0 || nd.hugepages_2m_free == -1);
	}
	moirai_topo_destroy(t);
}

/* A narrower affinity mask shrinks the usable set (taskset semantics). */
static void test_live_affinity_restricts(void **state)
{
	cpu_set_t saved, one;
	struct moirai_topo *t = NULL;
	int cpu = moirai_numa_current_cpu();

	(void)state;
	assert_true(cpu >= 0);
	assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
	if (CPU_COUNT(&saved) < 2)
		skip();
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	/* The process mask is what hwloc reads; set it for the whole process. */
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(moirai_topo_load_live(&t), 0);
	assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
	assert_int_equal(moirai_topo_allowed_pu_count(t), 1);
	assert_int_equal(moirai_topo_pu_count(t), sysconf(_SC_NPROCESSORS_ONLN));
	{
		struct moirai_plan *p;
		struct moirai_plan_worker w;

		assert_int_equal(moirai_plan_create(t, NULL, &p), 0);
		assert_int_equal(moirai_plan_worker_count(p), 1);
		assert_int_equal(moirai_plan_worker(p, 0, &w), 0);
		assert_int_equal(w.pu, cpu);
		moirai_plan_destroy(p);
	}
	moirai_topo_destroy(t);
}

static void test_bind_errors(void **state)
{
	cpu_set_t saved;
	long page = sysconf(_SC_PAGESIZE);
	void *m = NULL;
	char *p;

	(void)state;
	assert_int_equal(moirai_numa_pin_thread(-1), -EINVAL);
	assert_int_equal(moirai_numa_pin_thread(1 << 20), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "out of range"));
	assert_int_equal(moirai_numa_map(0, 0, &m), -EINVAL);
	assert_int_equal(moirai_numa_map(4096, 0, NULL), -EINVAL);
	assert_int_equal(moirai_numa_map(4096, 4000, &m), -ENODEV);
	assert_null(m);
	assert_false(moirai_numa_node_is_allowed(-1));
	assert_false(moirai_numa_node_is_allowed(moirai_numa_node_count()));
	/*
	 * MOIRAI_NODE_ANY means the caller's node: hold the thread on its CPU
	 * so the node chosen and the node checked below are the same (in the
	 * VM each node has one CPU and the scheduler moves us between them).
	 */
	assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
	assert_int_equal(moirai_numa_pin_thread(moirai_numa_current_cpu()), 0);
	assert_int_equal(moirai_numa_map((size_t)page * 2, MOIRAI_NODE_ANY, &m), 0);
	p = m;
	assert_int_equal(moirai_numa_bind_range(p + 1, (size_t)page, 0), -EINVAL);
	assert_int_equal(moirai_numa_bind_range(p, 0, 0), -EINVAL);
	assert_int_equal(moirai_numa_bind_range(p, (size_t)page, 5000), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "node 5000"));
	/* Untouched page: no node yet; touched: the caller's node. */
	assert_true(moirai_numa_page_node(p) < 0);
	p[0] = 1;
	assert_int_equal(moirai_numa_page_node(p), moirai_numa_current_node());
	assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
	assert_int_equal(moirai_numa_page_node(NULL), -EINVAL);
	assert_int_equal(moirai_numa_prefer_range(p, (size_t)page, 0), 0);
	assert_int_equal(moirai_numa_unmap(m, (size_t)page * 2), 0);
	assert_int_equal(moirai_numa_unmap(NULL, 0), 0);
	assert_int_equal(moirai_numa_unmap(p, 0), -EINVAL);
}

static void test_cpulist_parser(void **state)
{
	char path[] = "/tmp/moirai-cpulist-XXXXXX";
	int fd = mkstemp(path);
	bool set[64] = { false };
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("0-3,8,10-11\n", f);
	fclose(f);
	assert_int_equal(moirai__sysfs_cpulist(path, set, 64), 7);
	assert_true(set[0] && set[3] && set[8] && set[10] && set[11]);
	assert_false(set[4] || set[9] || set[12]);
	f = fopen(path, "w");
	fputs("3-1\n", f);
	fclose(f);
	assert_int_equal(moirai__sysfs_cpulist(path, set, 64), -EINVAL);
	f = fopen(path, "w");
	fputs("\n", f);
	fclose(f);
	assert_int_equal(moirai__sysfs_cpulist(path, set, 64), 0);
	unlink(path);
	assert_true(moirai__sysfs_cpulist("/nonexistent", set, 64) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_counts),
		cmocka_unit_test(test_live_affinity_restricts),
		cmocka_unit_test(test_bind_errors),
		cmocka_unit_test(test_cpulist_parser),
	};

	return cmocka_run_group_tests_name("live", tests, NULL, NULL);
}
