/*
 * Private to numa/: the flattened topology model.  topo_hwloc.c is the one
 * seam to hwloc (it fills this struct from a live, XML or synthetic hwloc
 * topology); topo.c answers queries and plan.c plans on the struct alone, so
 * both can be tested on hand-made models without hwloc.
 */
#ifndef MOIRAI_NUMA_INT_H
#define MOIRAI_NUMA_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "moirai/numa.h"

struct topo_pu {
	int os_index;
	int core;     /* logical core */
	int l3;	      /* logical L3, -1 none */
	int node;     /* logical NUMA node, -1 none */
	int package;  /* logical package, -1 none */
	int smt_rank; /* position among the PUs of its core */
	bool allowed; /* cgroup cpuset & affinity mask & online */
	bool isolated;
};

struct topo_node {
	int os_index;
	int package;
	uint64_t memory_bytes;
	int pu_count;
	int *pus; /* OS indexes, pu_count entries */
	bool mem_allowed;
	int64_t hp2m_free;
	int64_t hp1g_free;
};

struct topo_device {
	char *name;
	const char *kind;
	int node; /* logical, -1 unknown */
};

struct moirai_topo {
	enum moirai_topo_source source;
	int packages, l3s, cores, offline_pus;
	int npus, nnodes, ndevices, allowed_pus;
	struct topo_pu *pus;	 /* logical (topology) order */
	struct topo_node *nodes; /* logical order */
	int *distances;		 /* nnodes * nnodes, NULL when absent */
	struct topo_device *devices;
	long cpu_quota_milli; /* -1 none */
};

/*
 * The hwloc seam.  Each fills *out (allocated with calloc; free with
 * moirai__topo_free) or returns -EINVAL/-ENOENT/-ENOMEM/-EIO with a
 * moirai__err message naming what was wrong.
 *   kind: MOIRAI_TOPO_LIVE (arg ignored), _XML (arg = path),
 *         _SYNTHETIC (arg = description).
 */
int moirai__topo_from_hwloc(enum moirai_topo_source kind, const char *arg,
			    struct moirai_topo **out);

/* Live-machine facts that hwloc does not give: sysfs and cgroup files. */
int moirai__sysfs_cpulist(const char *path, bool *set, int nset);
int64_t moirai__sysfs_hugepages_free(int node_os, long page_kb);
long moirai__cgroup_cpu_quota_milli(void);

void moirai__topo_free(struct moirai_topo *t);

#endif
