/* SPDX-License-Identifier: BSD-3-Clause */
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
#include <sys/wait.h>
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
	assert_int_equal(moirai_numa_bind_fresh(p + 1, (size_t)page, 0), -EINVAL);
	assert_int_equal(moirai_numa_bind_fresh(p, 0, 0), -EINVAL);
	assert_int_equal(moirai_numa_bind_fresh(p, (size_t)page, 5000), -ENODEV);
	assert_int_equal(moirai_numa_bind_fresh(p, (size_t)page, MOIRAI_NODE_ANY), -EINVAL);
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

/*
 * taskset semantics: a CPU outside the mask the process started with is
 * refused, even though the kernel would let a thread widen its own mask.
 * The mask is taken when libmoirai loads, so the check runs in a re-exec'd
 * copy of this binary started with a one-CPU mask.
 */
static int pin_child(int allowed_cpu, int other_cpu)
{
	int rc = moirai_numa_pin_thread(other_cpu);

	if (rc != -EINVAL || !strstr(moirai_last_error(), "affinity mask"))
		return 1;
	if (moirai_numa_pin_thread(allowed_cpu) != 0)
		return 2;
	return moirai_numa_current_cpu() == allowed_cpu ? 0 : 3;
}

static void test_pin_outside_start_mask(void **state)
{
	cpu_set_t saved, one;
	int a = -1, b = -1, status;
	pid_t pid;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
	for (int c = 0; c < CPU_SETSIZE && b < 0; c++)
		if (CPU_ISSET(c, &saved)) {
			if (a < 0)
				a = c;
			else
				b = c;
		}
	if (b < 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char arg_a[16], arg_b[16];

		CPU_ZERO(&one);
		CPU_SET(a, &one);
		if (sched_setaffinity(0, sizeof(one), &one) != 0)
			_exit(9);
		snprintf(arg_a, sizeof(arg_a), "%d", a);
		snprintf(arg_b, sizeof(arg_b), "%d", b);
		execl("/proc/self/exe", "test_live", "--pin-child", arg_a, arg_b, (char *)NULL);
		_exit(8);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* In this process CPU b is in the start mask: pinning works. */
	assert_int_equal(moirai_numa_pin_thread(b), 0);
	assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

/* Read the stderr a child produced into @buf. */
static void child_stderr(void (*fn)(void), char *buf, size_t len)
{
	char path[] = "/tmp/moirai-stderr-XXXXXX";
	int fd = mkstemp(path), status;
	pid_t pid;
	FILE *f;
	size_t n;

	assert_true(fd >= 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd, 2);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f = fdopen(fd, "r");
	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
}

static void pin_twice(void)
{
	int cpu = moirai_numa_current_cpu();

	if (moirai_numa_pin_thread(cpu) || moirai_numa_pin_thread(cpu))
		_exit(1);
}

static void foreign_then_pin(void)
{
	struct moirai_topo *t = NULL;

	if (moirai_topo_load_synthetic("pack:2 core:2 pu:1", &t))
		_exit(1);
	pin_twice();
	moirai_topo_destroy(t);
}

static void foreign_destroyed_then_pin(void)
{
	struct moirai_topo *t = NULL;

	if (moirai_topo_load_synthetic("pack:2 core:2 pu:1", &t))
		_exit(1);
	moirai_topo_destroy(t);
	pin_twice();
}

/* Pinning while a foreign topology is loaded warns, once. */
static void test_foreign_pin_warns(void **state)
{
	char out[2048];
	const char *w;

	(void)state;
	child_stderr(foreign_then_pin, out, sizeof(out));
	w = strstr(out, "foreign topology");
	assert_non_null(w);
	assert_non_null(strstr(out, "moirai warn: "));
	assert_null(strstr(w + 1, "foreign topology")); /* once */
	child_stderr(pin_twice, out, sizeof(out));
	assert_string_equal(out, "");
	child_stderr(foreign_destroyed_then_pin, out, sizeof(out));
	assert_string_equal(out, "");
}

static long read_sysfs_long(const char *fmt, int node, size_t kb)
{
	char path[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), fmt, node, kb);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The live queries alloc/ uses, against sysfs read here independently. */
static void test_hugepage_queries(void **state)
{
	static const char *const fmt_free =
		"/sys/devices/system/node/node%d/hugepages/hugepages-%zukB/free_hugepages";
	static const char *const fmt_total =
		"/sys/devices/system/node/node%d/hugepages/hugepages-%zukB/nr_hugepages";
	static const size_t sizes[] = { 2u << 20, 1u << 30 };
	int checked = 0;

	(void)state;
	for (int node = 0; node < moirai_numa_node_count(); node++) {
		for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(sizes); i++) {
			long want = read_sysfs_long(fmt_free, node, sizes[i] / 1024);
			long got = moirai_numa_hugepages_free(sizes[i], node);

			if (want < 0) {
				assert_true(got == -EOPNOTSUPP || got == -ENODEV);
				continue;
			}
			assert_int_equal(got, want);
			assert_int_equal(moirai_numa_hugepages_total(sizes[i], node),
					 read_sysfs_long(fmt_total, node, sizes[i] / 1024));
			checked++;
		}
	}
	print_message("  %d node/size pairs checked\n", checked);
	assert_int_equal(moirai_numa_hugepages_free(3000, 0), -EINVAL);
	assert_int_equal(moirai_numa_hugepages_free(0, 0), -EINVAL);
	assert_int_equal(moirai_numa_hugepages_free(2u << 20, -1), -EINVAL);
	assert_int_equal(moirai_numa_hugepages_free(2u << 20, 5000), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "5000"));
	assert_int_equal(moirai_numa_hugepages_total(2u << 20, 5000), -ENODEV);
	/* No kernel has 8 KiB hugepages. */
	if (read_sysfs_long("/sys/devices/system/node/node%d/hugepages/hugepages-%zukB/"
			    "free_hugepages",
			    0, 8) < 0 &&
	    moirai_numa_node_count() >= 1 && read_sysfs_long(fmt_free, 0, 2048) >= 0)
		assert_int_equal(moirai_numa_hugepages_free(8192, 0), -EOPNOTSUPP);
}

static void test_thp_mode(void **state)
{
	char buf[256] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	int mode = moirai_numa_thp_mode();

	(void)state;
	if (!f) {
		assert_int_equal(mode, -EOPNOTSUPP);
		return;
	}
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	if (strstr(buf, "[always]"))
		assert_int_equal(mode, MOIRAI_NUMA_THP_ALWAYS);
	else if (strstr(buf, "[madvise]"))
		assert_int_equal(mode, MOIRAI_NUMA_THP_MADVISE);
	else
		assert_int_equal(mode, MOIRAI_NUMA_THP_NEVER);
}

/*
 * Live distances: the kernel's rows list the online nodes in order, so
 * entry k of node a's row is the distance to the k-th online node.
 */
static void test_numa_distance(void **state)
{
	bool online[1024] = { false };
	int order[1024], n = 0;

	(void)state;
	assert_true(moirai__sysfs_cpulist("/sys/devices/system/node/online", online, 1024) > 0);
	for (int i = 0; i < 1024; i++)
		if (online[i])
			order[n++] = i;
	for (int k = 0; k < n; k++) {
		char path[96];
		FILE *f;

		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/distance", order[k]);
		f = fopen(path, "r");
		assert_non_null(f);
		for (int j = 0; j < n; j++) {
			int d;

			assert_int_equal(fscanf(f, "%d", &d), 1);
			assert_int_equal(moirai_numa_distance(order[k], order[j]), d);
		}
		fclose(f);
		assert_true(moirai_numa_distance(order[k], order[k]) > 0);
	}
	assert_int_equal(moirai_numa_distance(-1, 0), -EINVAL);
	assert_int_equal(moirai_numa_distance(0, 5000), -ENODEV);
	assert_int_equal(moirai_numa_distance(5000, 0), -ENODEV);
}

/* Node vocabulary: -ENODEV absent, -EINVAL not a node number. */
static void test_node_errors(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	int nodes = moirai_numa_node_count();
	void *m = NULL;

	(void)state;
	assert_int_equal(moirai_numa_map((size_t)page, nodes, &m), -ENODEV);
	assert_int_equal(moirai_numa_map((size_t)page, -7, &m), -EINVAL);
	assert_int_equal(moirai_numa_map((size_t)page, 0, &m), 0);
	assert_int_equal(moirai_numa_bind_range(m, (size_t)page, nodes), -ENODEV);
	assert_int_equal(moirai_numa_bind_range(m, (size_t)page, -7), -EINVAL);
	assert_int_equal(moirai_numa_bind_range(m, (size_t)page, MOIRAI_NODE_ANY), -EINVAL);
	assert_int_equal(moirai_numa_prefer_range(m, (size_t)page, nodes), -ENODEV);
	assert_int_equal(moirai_numa_unmap(m, (size_t)page), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_counts),
		cmocka_unit_test(test_live_affinity_restricts),
		cmocka_unit_test(test_bind_errors),
		cmocka_unit_test(test_cpulist_parser),
		cmocka_unit_test(test_pin_outside_start_mask),
		cmocka_unit_test(test_foreign_pin_warns),
		cmocka_unit_test(test_hugepage_queries),
		cmocka_unit_test(test_thp_mode),
		cmocka_unit_test(test_numa_distance),
		cmocka_unit_test(test_node_errors),
	};

	if (argc == 4 && !strcmp(argv[1], "--pin-child"))
		return pin_child(atoi(argv[2]), atoi(argv[3]));

	return cmocka_run_group_tests_name("live", tests, NULL, NULL);
}
