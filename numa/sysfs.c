/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live-machine facts that hwloc does not report: isolated and nohz_full CPU
 * lists, hugepages per node, the transparent hugepage mode, the kernel's
 * node distances and the cgroup CPU quota (v2 cpu.max or v1 cfs_quota_us /
 * cfs_period_us).  This is the one place moirai reads sysfs and procfs for
 * them (the allocator asks through moirai/numa.h).  Each reader tolerates a
 * missing file: containers and old kernels lack some of them.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "numa_int.h"

/*
 * Parse a kernel CPU or node list ("0-3,8,10-11") in @text, ending at NUL
 * or a newline, and set the listed entries of @set.  Returns the number
 * set, or -EINVAL on malformed text.
 */
int moirai__list_parse(const char *text, bool *set, int nset)
{
	const char *p = text;
	int count = 0;

	while (*p && *p != '\n') {
		char *end;
		long a = strtol(p, &end, 10), b;

		if (end == p || a < 0)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				return -EINVAL;
			p = end;
		}
		for (long c = a; c <= b && c < nset; c++) {
			set[c] = true;
			count++;
		}
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	return count;
}

static int read_small(const char *path, char *buf, size_t len);

/*
 * Parse a kernel CPU list ("0-3,8,10-11") from @path and set the listed
 * entries of @set.  Returns the number set, or -errno when unreadable,
 * -EINVAL on malformed text.  Plain open/read: the allocator's start calls
 * this through the node probe, before libc's stdio (or libnuma's
 * constructor) may be used from inside malloc.
 */
int moirai__sysfs_cpulist(const char *path, bool *set, int nset)
{
	char buf[4096];
	int rc = read_small(path, buf, sizeof(buf));

	if (rc)
		return rc;
	return moirai__list_parse(buf, set, nset);
}

/*
 * The node list of "Mems_allowed_list:" in /proc/self/status (the cpuset's
 * memory nodes), into @set.  Returns the number set or -errno (-ENOENT when
 * the kernel does not report it).
 */
int moirai__proc_mems_allowed(bool *set, int nset)
{
	static const char key[] = "\nMems_allowed_list:";
	char buf[8192];
	int rc = read_small("/proc/self/status", buf, sizeof(buf));
	const char *p;

	if (rc)
		return rc;
	p = strstr(buf, key);
	if (!p)
		return -ENOENT;
	p += sizeof(key) - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	return moirai__list_parse(p, set, nset);
}

/* Read a small sysfs file into @buf (NUL-terminated); -errno on failure. */
static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return 0;
}

static bool node_exists(int node)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return stat(path, &st) == 0;
}

/* One count under nodeN/hugepages/hugepages-SkB/: free_hugepages, nr_hugepages. */
static long hugepages_read(size_t page_size, int node, const char *file)
{
	char path[160], buf[32], *end;
	long long v;
	int rc;

	if (page_size < 4096 || (page_size & (page_size - 1)))
		return moirai__err(-EINVAL, "numa: hugepage size %zu is not a power of two >= 4096",
				   page_size);
	if (node < 0)
		return moirai__err(-EINVAL, "numa: node %d is not a node number", node);
	if (!node_exists(node))
		return moirai__err(-ENODEV, "numa: NUMA node %d does not exist", node);
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/hugepages/hugepages-%zukB/%s",
		 node, page_size / 1024, file);
	rc = read_small(path, buf, sizeof(buf));
	if (rc == -ENOENT)
		return moirai__err(-EOPNOTSUPP, "numa: the kernel has no %zu kB hugepages",
				   page_size / 1024);
	if (rc)
		return moirai__err(-EIO, "numa: cannot read %s: %s", path, moirai_strerror(rc));
	v = strtoll(buf, &end, 10);
	if (end == buf || v < 0 || (*end && *end != '\n'))
		return moirai__err(-EIO, "numa: unexpected contents in %s", path);
	return (long)v;
}

long moirai_numa_hugepages_free(size_t page_size, int node)
{
	return hugepages_read(page_size, node, "free_hugepages");
}

long moirai_numa_hugepages_total(size_t page_size, int node)
{
	return hugepages_read(page_size, node, "nr_hugepages");
}

int64_t moirai__sysfs_hugepages_free(int node_os, long page_kb)
{
	char path[160], buf[32], *end;
	long long v;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-%ldkB/free_hugepages",
		 node_os, page_kb);
	if (read_small(path, buf, sizeof(buf)))
		return -1;
	v = strtoll(buf, &end, 10);
	return end == buf || v < 0 ? -1 : v;
}

int moirai_numa_thp_mode(void)
{
	static const char path[] = "/sys/kernel/mm/transparent_hugepage/enabled";
	char buf[128];
	int rc = read_small(path, buf, sizeof(buf));

	if (rc == -ENOENT)
		return moirai__err(-EOPNOTSUPP, "numa: the kernel has no transparent hugepages");
	if (rc)
		return moirai__err(-EIO, "numa: cannot read %s: %s", path, moirai_strerror(rc));
	/* The selected mode is the bracketed word: "always [madvise] never". */
	if (strstr(buf, "[always]"))
		return MOIRAI_NUMA_THP_ALWAYS;
	if (strstr(buf, "[madvise]"))
		return MOIRAI_NUMA_THP_MADVISE;
	if (strstr(buf, "[never]"))
		return MOIRAI_NUMA_THP_NEVER;
	return moirai__err(-EIO, "numa: unexpected contents in %s", path);
}

/*
 * The kernel's distance table, read once.  nodeN/distance lists one value
 * per *online* node in node order ("10 21" for nodes 0 and 2 when node 1
 * is absent), so each row is matched against the online list, not read as
 * node 0, 1, 2...  Rows the kernel does not give stay 0 ("unknown").
 */
static struct {
	pthread_once_t once;
	int n;	   /* highest node + 1 */
	int *dist; /* n * n, 0 = unknown */
	bool *exists;
} dtab = { .once = PTHREAD_ONCE_INIT };

static void distance_table_init(void)
{
	bool online[MOIRAI_TOPO_MAX_NODES] = { false };
	int order[MOIRAI_TOPO_MAX_NODES], nonline = 0, n = 0;

	if (moirai__sysfs_cpulist("/sys/devices/system/node/online", online,
				  MOIRAI_TOPO_MAX_NODES) <= 0)
		return;
	for (int i = 0; i < MOIRAI_TOPO_MAX_NODES; i++)
		if (online[i]) {
			order[nonline++] = i;
			n = i + 1;
		}
	dtab.dist = calloc((size_t)n * (size_t)n, sizeof(int));
	dtab.exists = calloc((size_t)n, sizeof(bool));
	if (!dtab.dist || !dtab.exists) {
		free(dtab.dist);
		free(dtab.exists);
		dtab.dist = NULL;
		dtab.exists = NULL;
		return;
	}
	dtab.n = n;
	for (int k = 0; k < nonline; k++) {
		int a = order[k];
		char path[64], *buf = malloc(8 * MOIRAI_TOPO_MAX_NODES), *p, *end;

		dtab.exists[a] = true;
		if (!buf)
			continue;
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/distance", a);
		if (read_small(path, buf, 8 * MOIRAI_TOPO_MAX_NODES) == 0) {
			p = buf;
			for (int j = 0; j < nonline; j++, p = end) {
				long d = strtol(p, &end, 10);

				if (end == p || d <= 0 || d > 1000000)
					break;
				dtab.dist[a * n + order[j]] = (int)d;
			}
		}
		free(buf);
	}
}

int moirai_numa_distance(int node_a, int node_b)
{
	int d;

	if (node_a < 0 || node_b < 0)
		return moirai__err(-EINVAL, "numa: node pair (%d, %d) has a negative node", node_a,
				   node_b);
	pthread_once(&dtab.once, distance_table_init);
	if (!dtab.exists) {
		/* No node directory at all: a machine without NUMA has node 0. */
		if (node_a == 0 && node_b == 0)
			return 10;
		return moirai__err(-ENODEV, "numa: no NUMA node %d", node_a ? node_a : node_b);
	}
	if (node_a >= dtab.n || !dtab.exists[node_a] || node_b >= dtab.n || !dtab.exists[node_b])
		return moirai__err(-ENODEV, "numa: NUMA node %d does not exist",
				   (node_a >= dtab.n || !dtab.exists[node_a]) ? node_a : node_b);
	d = dtab.dist[node_a * dtab.n + node_b];
	if (d > 0)
		return d;
	return node_a == node_b ? 10 : 20;
}

/* The cgroup path of this process in the unified (v2) or cpu (v1) tree. */
static int cgroup_path(bool v2, char *out, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/cgroup", "r");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':'), *path;

		if (!ctrl)
			continue;
		path = strchr(ctrl + 1, ':');
		if (!path)
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		ctrl++;
		if ((v2 && *ctrl == '\0') ||
		    (!v2 &&
		     (strstr(ctrl, "cpu,") || !strcmp(ctrl, "cpu") || strstr(ctrl, ",cpu")))) {
			snprintf(out, len, "%s", path);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

static bool read_two(const char *path, char *a, long *b)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "%31s %ld", a, b) == 2;
	fclose(f);
	return ok;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

long moirai__cgroup_cpu_quota_milli(void)
{
	char cg[768], path[1024], quota[32];
	long period;

	if (cgroup_path(true, cg, sizeof(cg)) == 0) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", cg);
		if (read_two(path, quota, &period) && strcmp(quota, "max") && period > 0)
			return atol(quota) * 1000 / period;
	}
	if (cgroup_path(false, cg, sizeof(cg)) == 0) {
		static const char *const roots[] = { "/sys/fs/cgroup/cpu,cpuacct",
						     "/sys/fs/cgroup/cpu" };

		for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(roots); i++) {
			long q, p;

			snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", roots[i], cg);
			q = read_long(path);
			snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", roots[i], cg);
			p = read_long(path);
			if (q > 0 && p > 0)
				return q * 1000 / p;
		}
	}
	return -1;
}
