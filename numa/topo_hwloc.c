/*
 * The hwloc seam: load a live, XML or synthetic hwloc topology and flatten
 * it into struct moirai_topo (numa_int.h).  Nothing outside this file sees
 * hwloc.  Topologies with missing levels are normal here: no Package, no L3,
 * no Core objects (each PU becomes its own core), Groups, memory-only NUMA
 * nodes, offline or disallowed PUs.
 */
#include <hwloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "numa_int.h"

#define MAX_CPUS 8192

void moirai__topo_free(struct moirai_topo *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nnodes; i++)
		free(t->nodes[i].pus);
	for (int i = 0; i < t->ndevices; i++)
		free(t->devices[i].name);
	free(t->devices);
	free(t->distances);
	free(t->nodes);
	free(t->pus);
	free(t);
}

static int open_topology(enum moirai_topo_source kind, const char *arg, hwloc_topology_t *out)
{
	hwloc_topology_t h;
	struct stat st;

	if (hwloc_topology_init(&h) != 0)
		return moirai__err(-ENOMEM, "topology: hwloc_topology_init failed");
	/* Keep disallowed PUs so "usable" can be told apart from "present". */
	hwloc_topology_set_flags(h, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
	hwloc_topology_set_io_types_filter(h, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	/*
	 * The Linux backend finds PCI devices in sysfs by itself; the
	 * libpciaccess plugin adds nothing moirai uses, costs a config-space
	 * scan and leaks a few blocks on every load.
	 */
	hwloc_topology_set_components(h, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
	if (kind == MOIRAI_TOPO_XML) {
		if (stat(arg, &st) != 0) {
			hwloc_topology_destroy(h);
			return moirai__err(-ENOENT, "topology: cannot open XML file '%s'", arg);
		}
		if (!S_ISREG(st.st_mode) || hwloc_topology_set_xml(h, arg) != 0) {
			hwloc_topology_destroy(h);
			return moirai__err(-EINVAL,
					   "topology: '%s' is not a readable hwloc XML file", arg);
		}
	} else if (kind == MOIRAI_TOPO_SYNTHETIC) {
		if (hwloc_topology_set_synthetic(h, arg) != 0) {
			hwloc_topology_destroy(h);
			return moirai__err(
				-EINVAL, "topology: cannot parse synthetic description '%s'", arg);
		}
	}
	if (hwloc_topology_load(h) != 0) {
		hwloc_topology_destroy(h);
		if (kind == MOIRAI_TOPO_XML)
			return moirai__err(
				-EINVAL,
				"topology: cannot parse XML file '%s' (corrupt or truncated?)",
				arg);
		return moirai__err(-EIO, "topology: hwloc could not load the %s topology",
				   kind == MOIRAI_TOPO_LIVE ? "live" : "synthetic");
	}
	*out = h;
	return 0;
}

/* The first NUMA node (logical order) whose cpuset holds this PU. */
static int pu_node(hwloc_topology_t h, hwloc_obj_t pu)
{
	hwloc_obj_t n = NULL;

	while ((n = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, n)))
		if (n->cpuset && hwloc_bitmap_isset(n->cpuset, pu->os_index))
			return (int)n->logical_index;
	return -1;
}

static int logical_of(hwloc_obj_t o)
{
	return o ? (int)o->logical_index : -1;
}

/* Usable CPUs of the live process: online, in the cgroup and the affinity. */
static void live_allowed(hwloc_topology_t h, hwloc_bitmap_t allowed)
{
	hwloc_bitmap_t bind = hwloc_bitmap_alloc();

	hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(h));
	hwloc_bitmap_and(allowed, allowed, hwloc_topology_get_topology_cpuset(h));
	/*
	 * hwloc restricts to the cgroup but not to the affinity mask (taskset)
	 * unless asked to; intersect it here.
	 */
	if (bind && hwloc_get_cpubind(h, bind, HWLOC_CPUBIND_PROCESS) == 0)
		hwloc_bitmap_and(allowed, allowed, bind);
	hwloc_bitmap_free(bind);
}

static int fill_pus(hwloc_topology_t h, struct moirai_topo *t, bool *isolated)
{
	int cores = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_CORE);
	int orphan = 0;
	hwloc_bitmap_t allowed = hwloc_bitmap_alloc();

	if (!allowed)
		return -ENOMEM;
	if (t->source == MOIRAI_TOPO_LIVE)
		live_allowed(h, allowed);
	else {
		hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(h));
		hwloc_bitmap_and(allowed, allowed, hwloc_topology_get_topology_cpuset(h));
	}
	t->npus = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU);
	t->pus = calloc((size_t)(t->npus > 0 ? t->npus : 1), sizeof(*t->pus));
	if (!t->pus) {
		hwloc_bitmap_free(allowed);
		return -ENOMEM;
	}
	for (int i = 0; i < t->npus; i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_type(h, HWLOC_OBJ_PU, (unsigned)i);
		hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, pu);
		struct topo_pu *p = &t->pus[i];

		p->os_index = (int)pu->os_index;
		if (core) {
			p->core = (int)core->logical_index;
			p->smt_rank = 0;
			for (hwloc_obj_t s = pu->prev_cousin; s; s = s->prev_cousin) {
				if (hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, s) != core)
					break;
				p->smt_rank++;
			}
		} else {
			/* No Core level: each PU is its own core. */
			p->core = cores + orphan++;
			p->smt_rank = 0;
		}
		p->l3 = logical_of(hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_L3CACHE, pu));
		p->package = logical_of(hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_PACKAGE, pu));
		p->node = pu_node(h, pu);
		p->allowed = hwloc_bitmap_isset(allowed, pu->os_index);
		p->isolated = isolated && pu->os_index < MAX_CPUS && isolated[pu->os_index];
		if (p->allowed)
			t->allowed_pus++;
	}
	t->cores = cores + orphan;
	hwloc_bitmap_free(allowed);
	return 0;
}

static int fill_nodes(hwloc_topology_t h, struct moirai_topo *t)
{
	hwloc_const_nodeset_t mems = hwloc_topology_get_allowed_nodeset(h);

	t->nnodes = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
	t->nodes = calloc((size_t)(t->nnodes > 0 ? t->nnodes : 1), sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	for (int i = 0; i < t->nnodes; i++) {
		hwloc_obj_t n = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, (unsigned)i);
		struct topo_node *nd = &t->nodes[i];

		nd->os_index = (int)n->os_index;
		nd->package = logical_of(hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_PACKAGE, n));
		nd->memory_bytes = n->attr->numanode.local_memory;
		nd->mem_allowed = hwloc_bitmap_isset(mems, n->os_index);
		nd->hp2m_free = nd->hp1g_free = -1;
		if (t->source == MOIRAI_TOPO_LIVE) {
			nd->hp2m_free = moirai__sysfs_hugepages_free(nd->os_index, 2048);
			nd->hp1g_free = moirai__sysfs_hugepages_free(nd->os_index, 1048576);
		}
		nd->pus = calloc((size_t)(t->npus > 0 ? t->npus : 1), sizeof(int));
		if (!nd->pus)
			return -ENOMEM;
	}
	for (int i = 0; i < t->npus; i++) {
		struct topo_pu *p = &t->pus[i];

		if (p->node >= 0) {
			struct topo_node *nd = &t->nodes[p->node];

			nd->pus[nd->pu_count++] = p->os_index;
		}
	}
	return 0;
}

/*
 * Pick one NUMA distance matrix: the first that covers every node,
 * preferring latency (the SLIT, 10 = local) over bandwidth.
 */
static int fill_distances(hwloc_topology_t h, struct moirai_topo *t)
{
	struct hwloc_distances_s *d[16];
	unsigned nr = 16;
	int pick = -1;

	if (t->nnodes < 1 || hwloc_distances_get_by_type(h, HWLOC_OBJ_NUMANODE, &nr, d, 0, 0) != 0)
		return 0;
	for (unsigned i = 0; i < nr && i < 16; i++) {
		if ((int)d[i]->nbobjs != t->nnodes)
			continue;
		if (pick < 0 || ((d[i]->kind & HWLOC_DISTANCES_KIND_MEANS_LATENCY) &&
				 !(d[pick]->kind & HWLOC_DISTANCES_KIND_MEANS_LATENCY)))
			pick = (int)i;
	}
	if (pick >= 0) {
		struct hwloc_distances_s *m = d[pick];

		t->distances = calloc((size_t)t->nnodes * (size_t)t->nnodes, sizeof(int));
		if (t->distances) {
			for (unsigned a = 0; a < m->nbobjs; a++)
				for (unsigned b = 0; b < m->nbobjs; b++) {
					int la = (int)m->objs[a]->logical_index;
					int lb = (int)m->objs[b]->logical_index;

					t->distances[la * t->nnodes + lb] =
						(int)m->values[a * m->nbobjs + b];
				}
		}
	}
	for (unsigned i = 0; i < nr && i < 16; i++)
		hwloc_distances_release(h, d[i]);
	return (pick >= 0 && !t->distances) ? -ENOMEM : 0;
}

/* Node of an I/O object: its first non-I/O ancestor's first local node. */
static int device_node(hwloc_topology_t h, hwloc_obj_t dev)
{
	hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(h, dev);
	hwloc_obj_t n = NULL;

	if (!anc || !anc->nodeset || hwloc_bitmap_iszero(anc->nodeset))
		return -1;
	while ((n = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, n)))
		if (hwloc_bitmap_isset(anc->nodeset, n->os_index))
			return (int)n->logical_index;
	return -1;
}

static int fill_devices(hwloc_topology_t h, struct moirai_topo *t)
{
	hwloc_obj_t o = NULL;
	int n = 0;

	while ((o = hwloc_get_next_osdev(h, o)))
		n++;
	t->devices = calloc((size_t)(n > 0 ? n : 1), sizeof(*t->devices));
	if (!t->devices)
		return -ENOMEM;
	while ((o = hwloc_get_next_osdev(h, o))) {
		const char *kind;

		if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK)
			kind = "network";
		else if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS)
			kind = "openfabrics";
		else
			continue;
		if (!o->name)
			continue;
		t->devices[t->ndevices].name = strdup(o->name);
		if (!t->devices[t->ndevices].name)
			return -ENOMEM;
		t->devices[t->ndevices].kind = kind;
		t->devices[t->ndevices].node = device_node(h, o);
		t->ndevices++;
	}
	return 0;
}

int moirai__topo_from_hwloc(enum moirai_topo_source kind, const char *arg, struct moirai_topo **out)
{
	hwloc_topology_t h = NULL;
	struct moirai_topo *t;
	bool *isolated = NULL;
	int rc;

	rc = open_topology(kind, arg, &h);
	if (rc)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = -ENOMEM;
		goto err_destroy_hwloc;
	}
	t->source = kind;
	t->cpu_quota_milli = -1;
	t->packages = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PACKAGE);
	t->l3s = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_L3CACHE);
	if (kind == MOIRAI_TOPO_LIVE) {
		isolated = calloc(MAX_CPUS, sizeof(bool));
		if (!isolated) {
			rc = -ENOMEM;
			goto err_free_topo;
		}
		moirai__sysfs_cpulist("/sys/devices/system/cpu/isolated", isolated, MAX_CPUS);
		moirai__sysfs_cpulist("/sys/devices/system/cpu/nohz_full", isolated, MAX_CPUS);
		t->cpu_quota_milli = moirai__cgroup_cpu_quota_milli();
	}
	{
		hwloc_const_cpuset_t all = hwloc_topology_get_complete_cpuset(h);
		hwloc_const_cpuset_t present = hwloc_topology_get_topology_cpuset(h);
		int w_all = hwloc_bitmap_weight(all), w_pres = hwloc_bitmap_weight(present);

		t->offline_pus = (w_all > w_pres) ? w_all - w_pres : 0;
	}
	rc = fill_pus(h, t, isolated);
	if (!rc)
		rc = fill_nodes(h, t);
	if (!rc)
		rc = fill_distances(h, t);
	if (!rc)
		rc = fill_devices(h, t);
	if (rc) {
		rc = moirai__err(rc, "topology: out of memory while flattening");
		goto err_free_topo;
	}
	free(isolated);
	hwloc_topology_destroy(h);
	*out = t;
	return 0;

err_free_topo:
	free(isolated);
	moirai__topo_free(t);
err_destroy_hwloc:
	hwloc_topology_destroy(h);
	return rc;
}
