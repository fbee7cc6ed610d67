/*
 * Live-machine facts that hwloc does not report: isolated and nohz_full CPU
 * lists, free hugepages per node, and the cgroup CPU quota (v2 cpu.max or
 * v1 cfs_quota_us / cfs_period_us).  Each reader tolerates a missing file:
 * containers and old kernels lack some of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "numa_int.h"

/*
 * Parse a kernel CPU list ("0-3,8,10-11") from @path and set the listed
 * entries of @set.  Returns the number set, or -errno when unreadable,
 * -EINVAL on malformed text.
 */
int moirai__sysfs_cpulist(const char *path, bool *set, int nset)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	int count = 0;
	char *p;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = buf;
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
	}
	return count;
}

int64_t moirai__sysfs_hugepages_free(int node_os, long page_kb)
{
	char path[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-%ldkB/free_hugepages",
		 node_os, page_kb);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
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
