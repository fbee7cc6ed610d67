/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The hwloc seam: load a live, XML or synthetic hwloc topology and flatten
 * it into struct moirai_topo (numa_int.h).  Nothing outside this file sees
 * hwloc.  Topologies with missing levels are normal here: no Package, no L3,
 * no Core objects (each PU becomes its own core), Groups, memory-only NUMA
 * nodes, offline or disallowed PUs.
 *
 * Nothing hwloc returns is trusted for indexing: the logical indexes are
 * moirai's own, counted in one walk of the tree (the same order as hwloc's
 * logical indexes whenever a type sits at a single depth), and the result
 * goes through moirai__topo_check before anyone sees it.  XML never reaches
 * hwloc unchecked (topo_xml.c) and only through libxml2 (see
 * moirai__hwloc_has_libxml).  hwloc's own stderr banners are switched off
 * once per process with HWLOC_HIDE_ERRORS (see quiet_hwloc).
 */
#include <hwloc.h>
#include <hwloc/plugins.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "numa_int.h"

void moirai__topo_free(struct moirai_topo *t)
{
	if (!t)
		return;
	if (t->source != MOIRAI_TOPO_LIVE)
		moirai__foreign_topo_ref(-1);
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

/*
 * hwloc prints multi-line banners on stderr ("hwloc has encountered an
 * out-of-order XML topology load", "Topology does not contain any PU") for
 * input it dislikes; moirai reports through moirai_last_error and tools
 * promise one line.  hwloc 2.9 honours one switch, HWLOC_HIDE_ERRORS=2, read
 * once per process the first time hwloc has something to say.  So before
 * moirai's first load, unless the user chose a value, set it, make hwloc
 * read it (hwloc_hide_errors), and take it out of the environment again so
 * child processes do not inherit it.  This runs once; setenv/unsetenv are
 * not safe against a concurrent getenv in another thread, which is why it
 * is done at the first topology load rather than on every one.  If the
 * process had already made hwloc latch another value, hwloc keeps that.
 */
static void quiet_hwloc(void)
{
	if (getenv("HWLOC_HIDE_ERRORS")) {
		(void)hwloc_hide_errors();
		return;
	}
	if (setenv("HWLOC_HIDE_ERRORS", "2", 0) == 0) {
		(void)hwloc_hide_errors();
		unsetenv("HWLOC_HIDE_ERRORS");
	}
}

/*
 * Which XML parser hwloc will use cannot be asked; it can be observed.
 * hwloc's minimal parser only accepts a document whose first lines are the
 * XML declaration, a DOCTYPE and then <topology>; libxml2 accepts a comment
 * in between.  So a tiny document with a comment loads under libxml2 and
 * fails to load under the minimal parser.  hwloc makes the choice once per process
 * (HWLOC_LIBXML*, read once; the plugin, loaded while any topology exists),
 * so the answer is cached too.
 */
static const char probe_xml[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<!-- moirai: libxml2 reads this line, hwloc's minimal parser stops here -->\n"
	"<topology version=\"2.0\">\n"
	"  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x00000001\" "
	"complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" "
	"gp_index=\"1\">\n"
	"    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000001\" "
	"complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" "
	"gp_index=\"2\" local_memory=\"1\"/>\n"
	"    <object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\" "
	"complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" "
	"gp_index=\"3\"/>\n"
	"  </object>\n"
	"</topology>\n";

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static bool has_libxml;

static void hwloc_setup(void)
{
	hwloc_topology_t h;

	quiet_hwloc();
	if (hwloc_topology_init(&h) != 0)
		return;
	/* Both parsers accept the buffer at set time; the minimal one fails the load. */
	has_libxml = hwloc_topology_set_xmlbuffer(h, probe_xml, (int)strlen(probe_xml)) == 0 &&
		     hwloc_topology_load(h) == 0 && hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU) == 1;
	hwloc_topology_destroy(h);
}

bool moirai__hwloc_has_libxml(void)
{
	pthread_once(&setup_once, hwloc_setup);
	return has_libxml;
}

static int open_topology(enum moirai_topo_source kind, const char *arg, const char *xml,
			 size_t xml_len, hwloc_topology_t *out)
{
	hwloc_topology_t h;

	if (hwloc_topology_init(&h) != 0)
		return moirai__err(-ENOMEM, "topology: hwloc_topology_init failed");
	/*
	 * Keep disallowed PUs so "usable" can be told apart from "present";
	 * skip memory attributes and CPU kinds, which moirai does not use
	 * (less of hwloc's import code runs on foreign input).
	 */
	hwloc_topology_set_flags(h, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED |
					    HWLOC_TOPOLOGY_FLAG_NO_MEMATTRS |
					    HWLOC_TOPOLOGY_FLAG_NO_CPUKINDS);
	hwloc_topology_set_io_types_filter(h, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	/*
	 * The Linux backend finds PCI devices in sysfs by itself; the
	 * libpciaccess plugin adds nothing moirai uses, costs a config-space
	 * scan and leaks a few blocks on every load.
	 */
	hwloc_topology_set_components(h, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
	if (kind == MOIRAI_TOPO_XML) {
		/* The checked bytes, never the path: the file may change. */
		if (hwloc_topology_set_xmlbuffer(h, xml, (int)xml_len) != 0) {
			hwloc_topology_destroy(h);
			return moirai__err(-EINVAL, "topology: hwloc cannot parse XML file '%s'",
					   arg);
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
			return moirai__err(-EINVAL,
					   "topology: hwloc rejected XML file '%s' (inconsistent "
					   "export?)",
					   arg);
		if (kind == MOIRAI_TOPO_SYNTHETIC)
			return moirai__err(-EINVAL,
					   "topology: hwloc rejected synthetic description '%s'",
					   arg);
		return moirai__err(-EIO, "topology: hwloc could not load the live topology");
	}
	*out = h;
	return 0;
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

/*
 * One depth-first walk over the CPU-side tree assigns the logical indexes:
 * the n-th Package, L3 and Core met.  For a type at one depth this is
 * hwloc's own logical order; for a type hwloc reports at several depths it
 * still gives every object one dense index, and an object of a type inside
 * another of the same type (a Core in a Core) makes the topology invalid.
 */
struct walk {
	struct moirai_topo *t;
	int npus; /* capacity of t->pus */
	int smt;  /* PUs seen in the current core */
	const char *bad;
};

static int tag_obj(hwloc_obj_t o, int idx)
{
	o->userdata = (void *)(uintptr_t)(idx + 1);
	return idx;
}

static int index_of(hwloc_obj_t o)
{
	return o && o->userdata ? (int)(uintptr_t)o->userdata - 1 : -1;
}

static void walk(struct walk *w, hwloc_obj_t o, int pkg, int l3, int core)
{
	struct moirai_topo *t = w->t;

	if (w->bad)
		return;
	switch (o->type) {
	case HWLOC_OBJ_PACKAGE:
		if (pkg >= 0)
			w->bad = "a Package inside a Package";
		pkg = tag_obj(o, t->packages++);
		break;
	case HWLOC_OBJ_L3CACHE:
		if (l3 >= 0)
			w->bad = "an L3 cache inside an L3 cache";
		l3 = tag_obj(o, t->l3s++);
		break;
	case HWLOC_OBJ_CORE:
		if (core >= 0)
			w->bad = "Core objects at two depths (a Core inside a Core)";
		core = tag_obj(o, t->cores++);
		w->smt = 0;
		break;
	case HWLOC_OBJ_PU: {
		struct topo_pu *p;

		if (o->arity)
			w->bad = "a PU with child objects";
		if (t->npus >= w->npus) {
			w->bad = "more PUs in the tree than hwloc counts";
			return;
		}
		p = &t->pus[t->npus++];
		p->os_index = (int)o->os_index;
		if (o->os_index >= MOIRAI__TOPO_MAX_CPU_INDEX)
			w->bad = "a PU whose OS index is beyond 8191";
		p->core = core; /* -1: fixed up after the walk */
		p->smt_rank = core >= 0 ? w->smt++ : 0;
		p->l3 = l3;
		p->package = pkg;
		return;
	}
	default: break;
	}
	for (hwloc_obj_t c = o->first_child; c; c = c->next_sibling)
		walk(w, c, pkg, l3, core);
}

/* The first NUMA node (logical order) whose cpuset holds this PU. */
static int pu_node(hwloc_topology_t h, unsigned os_index)
{
	hwloc_obj_t n = NULL;
	int i = 0;

	while ((n = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, n))) {
		if (n->cpuset && hwloc_bitmap_isset(n->cpuset, os_index))
			return i;
		i++;
	}
	return -1;
}

static int fill_pus(hwloc_topology_t h, struct moirai_topo *t, const bool *isolated)
{
	int counted = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU), orphan = 0;
	struct walk w = { .t = t };
	hwloc_bitmap_t allowed;

	/* -1 means PUs at several depths; the walk below finds them all. */
	w.npus = counted > 0 ? counted : 0;
	if (t->source != MOIRAI_TOPO_LIVE && w.npus > MOIRAI_TOPO_MAX_PUS)
		return moirai__err(-EINVAL, "topology: %d PUs, more than the %d moirai accepts",
				   w.npus, MOIRAI_TOPO_MAX_PUS);
	t->pus = calloc((size_t)(w.npus > 0 ? w.npus : 1), sizeof(*t->pus));
	allowed = hwloc_bitmap_alloc();
	if (!t->pus || !allowed) {
		hwloc_bitmap_free(allowed);
		return -ENOMEM;
	}
	walk(&w, hwloc_get_root_obj(h), -1, -1, -1);
	if (!w.bad && t->npus != counted)
		w.bad = "PU objects hwloc does not count (PUs at several depths?)";
	if (w.bad) {
		hwloc_bitmap_free(allowed);
		return moirai__err(-EINVAL, "topology: invalid topology: %s", w.bad);
	}
	if (t->source == MOIRAI_TOPO_LIVE)
		live_allowed(h, allowed);
	else {
		hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(h));
		hwloc_bitmap_and(allowed, allowed, hwloc_topology_get_topology_cpuset(h));
	}
	for (int i = 0; i < t->npus; i++) {
		struct topo_pu *p = &t->pus[i];

		/* No Core level above it: the PU is its own core. */
		if (p->core < 0)
			orphan++;
		p->node_idx = pu_node(h, (unsigned)p->os_index);
		p->allowed = hwloc_bitmap_isset(allowed, (unsigned)p->os_index);
		p->isolated = isolated && isolated[p->os_index];
		if (p->allowed)
			t->allowed_pus++;
	}
	for (int i = 0, k = 0; i < t->npus; i++)
		if (t->pus[i].core < 0)
			t->pus[i].core = t->cores + k++;
	t->cores += orphan;
	hwloc_bitmap_free(allowed);
	return 0;
}

static int fill_nodes(hwloc_topology_t h, struct moirai_topo *t)
{
	hwloc_const_nodeset_t mems = hwloc_topology_get_allowed_nodeset(h);

	t->nnodes = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
	if (t->nnodes < 1)
		return moirai__err(-EINVAL, "topology: invalid topology: no NUMA node");
	if (t->source != MOIRAI_TOPO_LIVE && t->nnodes > MOIRAI_TOPO_MAX_NODES)
		return moirai__err(-EINVAL,
				   "topology: %d NUMA nodes, more than the %d moirai accepts",
				   t->nnodes, MOIRAI_TOPO_MAX_NODES);
	t->nodes = calloc((size_t)t->nnodes, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	for (int i = 0; i < t->nnodes; i++) {
		hwloc_obj_t n = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, (unsigned)i);
		struct topo_node *nd = &t->nodes[i];

		if (!n)
			return moirai__err(-EINVAL,
					   "topology: invalid topology: NUMA node %d missing", i);
		nd->os_index = (int)n->os_index;
		nd->package = index_of(hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_PACKAGE, n));
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

		if (p->node_idx >= 0) {
			struct topo_node *nd = &t->nodes[p->node_idx];

			nd->pus[nd->pu_count++] = p->os_index;
		}
	}
	return 0;
}

/* Logical index of a NUMA node object: its place in hwloc's NUMA list. */
static int node_index(const struct moirai_topo *t, hwloc_obj_t n)
{
	if (!n || n->type != HWLOC_OBJ_NUMANODE || n->logical_index >= (unsigned)t->nnodes)
		return -1;
	return (int)n->logical_index;
}

/*
 * Pick one NUMA distance matrix: the first that covers every node,
 * preferring latency (the SLIT, 10 = local) over bandwidth.  Values that
 * do not fit an int are corrupt, not far.
 */
static int fill_distances(hwloc_topology_t h, struct moirai_topo *t)
{
	struct hwloc_distances_s *d[16];
	unsigned nr = 16;
	int pick = -1, rc = 0;

	if (hwloc_distances_get_by_type(h, HWLOC_OBJ_NUMANODE, &nr, d, 0, 0) != 0)
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
		if (!t->distances)
			rc = -ENOMEM;
		for (unsigned a = 0; !rc && a < m->nbobjs; a++)
			for (unsigned b = 0; !rc && b < m->nbobjs; b++) {
				int la = node_index(t, m->objs[a]), lb = node_index(t, m->objs[b]);
				uint64_t val = m->values[a * m->nbobjs + b];

				if (la < 0 || lb < 0 || val == 0 || val > INT32_MAX)
					rc = moirai__err(-EINVAL,
							 "topology: invalid NUMA distance %llu",
							 (unsigned long long)val);
				else
					t->distances[la * t->nnodes + lb] = (int)val;
			}
	}
	for (unsigned i = 0; i < nr && i < 16; i++)
		hwloc_distances_release(h, d[i]);
	return rc;
}

/* Node of an I/O object: its first non-I/O ancestor's first local node. */
static int device_node(hwloc_topology_t h, const struct moirai_topo *t, hwloc_obj_t dev)
{
	hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(h, dev);
	hwloc_obj_t n = NULL;

	if (!anc || !anc->nodeset || hwloc_bitmap_iszero(anc->nodeset))
		return -1;
	while ((n = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, n)))
		if (hwloc_bitmap_isset(anc->nodeset, n->os_index))
			return node_index(t, n);
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
	while ((o = hwloc_get_next_osdev(h, o)) && t->ndevices < n) {
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
		t->devices[t->ndevices].node_idx = device_node(h, t, o);
		t->ndevices++;
	}
	return 0;
}

/* XML: read once, check, and refuse hwloc's minimal parser (see numa.h). */
static int xml_prepare(const char *path, unsigned flags, char **buf, size_t *len)
{
	int rc = moirai__xml_read(path, buf, len);

	if (rc)
		return rc;
	if (!moirai__hwloc_has_libxml() && !(flags & MOIRAI__TOPO_ANY_XML_PARSER)) {
		free(*buf);
		return moirai__err(
			-ENOTSUP,
			"topology: refusing to load '%s' with hwloc's minimal XML parser, "
			"which crashes on corrupt files: install libhwloc-plugins (hwloc's "
			"libxml2 importer) and leave HWLOC_LIBXML/HWLOC_LIBXML_IMPORT unset",
			path);
	}
	rc = moirai__xml_validate(path, *buf, *len);
	if (rc)
		free(*buf);
	return rc;
}

int moirai__topo_from_hwloc(enum moirai_topo_source kind, const char *arg, unsigned flags,
			    struct moirai_topo **out)
{
	hwloc_topology_t h = NULL;
	struct moirai_topo *t;
	bool *isolated = NULL;
	char *xml = NULL;
	size_t xml_len = 0;
	int rc;

	pthread_once(&setup_once, hwloc_setup);
	if (kind == MOIRAI_TOPO_XML) {
		rc = xml_prepare(arg, flags, &xml, &xml_len);
		if (rc)
			return rc;
	}
	rc = open_topology(kind, arg, xml, xml_len, &h);
	free(xml);
	if (rc)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = moirai__err(-ENOMEM, "topology: out of memory");
		goto err_destroy_hwloc;
	}
	t->source = kind;
	if (kind != MOIRAI_TOPO_LIVE)
		moirai__foreign_topo_ref(1);
	t->cpu_quota_milli = -1;
	if (kind == MOIRAI_TOPO_LIVE) {
		isolated = calloc(MOIRAI__TOPO_MAX_CPU_INDEX, sizeof(bool));
		if (!isolated) {
			rc = moirai__err(-ENOMEM, "topology: out of memory");
			goto err_free_topo;
		}
		moirai__sysfs_cpulist("/sys/devices/system/cpu/isolated", isolated,
				      MOIRAI__TOPO_MAX_CPU_INDEX);
		moirai__sysfs_cpulist("/sys/devices/system/cpu/nohz_full", isolated,
				      MOIRAI__TOPO_MAX_CPU_INDEX);
		t->cpu_quota_milli = moirai__cgroup_cpu_quota_milli();
	}
	{
		hwloc_const_cpuset_t all = hwloc_topology_get_complete_cpuset(h);
		hwloc_const_cpuset_t present = hwloc_topology_get_topology_cpuset(h);
		int w_all = hwloc_bitmap_weight(all), w_pres = hwloc_bitmap_weight(present);

		t->offline_pus = (w_all > w_pres && w_pres >= 0) ? w_all - w_pres : 0;
	}
	rc = fill_pus(h, t, isolated);
	if (!rc)
		rc = fill_nodes(h, t);
	if (!rc)
		rc = fill_distances(h, t);
	if (!rc)
		rc = fill_devices(h, t);
	if (rc == -ENOMEM)
		rc = moirai__err(rc, "topology: out of memory while flattening");
	if (!rc)
		rc = moirai__topo_check(t, kind == MOIRAI_TOPO_LIVE ? "the live machine" : arg);
	/* hwloc built the live topology from the kernel: an inconsistency there is an I/O error. */
	if (rc == -EINVAL && kind == MOIRAI_TOPO_LIVE)
		rc = -EIO;
	if (rc)
		goto err_free_topo;
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
