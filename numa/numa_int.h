/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to numa/: the flattened topology model.  topo_hwloc.c is the one
 * seam to hwloc (it fills this struct from a live, XML or synthetic hwloc
 * topology); topo.c answers queries and plan.c plans on the struct alone, so
 * both can be tested on hand-made models without hwloc.  topo_xml.c checks
 * XML files before hwloc sees them.
 */
#ifndef MOIRAI_NUMA_INT_H
#define MOIRAI_NUMA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/numa.h"

/*
 * Limits on foreign topologies (MOIRAI_TOPO_MAX_PUS and _NODES are public).
 * CPU numbers stop at 8192 because Linux does (CONFIG_NR_CPUS, x86 MAXSMP);
 * no real object has more than a few hundred children, and hwloc's
 * insertion cost grows with the width of a level (numa.h has the figures).
 */
#define MOIRAI__TOPO_MAX_CPU_INDEX 8192
#define MOIRAI__TOPO_MAX_ARITY	   1024
#define MOIRAI__TOPO_MAX_DIST_OBJS 1024
#define MOIRAI__XML_MAX_BYTES	   (32 << 20)
#define MOIRAI__XML_MAX_DEPTH	   64
#define MOIRAI__XML_MAX_OBJECTS	   65536
#define MOIRAI__XML_MAX_VALUE	   65536

struct topo_pu {
	int os_index;
	int core;     /* logical core */
	int l3;	      /* logical L3, -1 none */
	int node_idx; /* logical NUMA node, -1 none */
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
	int node_idx; /* logical, -1 unknown */
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

/* moirai__topo_from_hwloc flags. */
enum {
	/* Test seam: load XML even when hwloc would use its minimal parser. */
	MOIRAI__TOPO_ANY_XML_PARSER = 1 << 0,
};

/*
 * The hwloc seam.  Fills *out (allocated with calloc; free with
 * moirai__topo_free) or returns -EINVAL/-ENOENT/-ENOMEM/-EIO/-ENOTSUP with
 * a moirai__err message naming what was wrong.
 *   kind: MOIRAI_TOPO_LIVE (arg ignored), _XML (arg = path),
 *         _SYNTHETIC (arg = description).
 * Every topology it returns has passed moirai__topo_check.
 */
int moirai__topo_from_hwloc(enum moirai_topo_source kind, const char *arg, unsigned flags,
			    struct moirai_topo **out);

/*
 * Whether hwloc reads XML with libxml2 in this process (libhwloc-plugins
 * installed, HWLOC_LIBXML / HWLOC_LIBXML_IMPORT not 0).  Cached: hwloc
 * itself decides once per process.
 */
bool moirai__hwloc_has_libxml(void);

/* topo_xml.c: read a file whole (bounded), and check it as described there. */
int moirai__xml_read(const char *path, char **buf, size_t *len);
int moirai__xml_validate(const char *path, const char *buf, size_t len);

/*
 * The invariants every flattened topology keeps (dense logical indexes in
 * range, distinct OS indexes, every PU of a core on one node, sane
 * distances).  Returns 0, or -EINVAL with a message naming @what.
 */
int moirai__topo_check(const struct moirai_topo *t, const char *what);

/* Live-machine facts that hwloc does not give: sysfs and cgroup files. */
int moirai__sysfs_cpulist(const char *path, bool *set, int nset);
/* A CPU or node list in text ("0-3,8"): entries set, or -EINVAL. */
int moirai__list_parse(const char *text, bool *set, int nset);
/* The cpuset's memory nodes (/proc/self/status): entries set, or -errno. */
int moirai__proc_mems_allowed(bool *set, int nset);
int64_t moirai__sysfs_hugepages_free(int node_os, long page_kb);
long moirai__cgroup_cpu_quota_milli(void);

/* Live node @node as read once per process (resolve.c): 0 usable,
 * -ENODEV no such node or no memory, -EPERM not in the cgroup's mems. */
int moirai__numa_node_state(int node);

/* Foreign topologies alive in this process (bind.c warns when pinning). */
void moirai__foreign_topo_ref(int delta);

void moirai__topo_free(struct moirai_topo *t);

#endif
