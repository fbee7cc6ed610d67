/*
 * Topology loading and queries.  Loading picks the source (MOIRAI_TOPOLOGY,
 * an XML file, a synthetic description or the live machine) and hands off
 * to the hwloc seam; queries read the flattened model and never call hwloc,
 * so they are cheap and safe from any thread.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "numa_int.h"

int moirai_topo_load_live(struct moirai_topo **out)
{
	if (!out)
		return moirai__err(-EINVAL, "topology: NULL output pointer");
	return moirai__topo_from_hwloc(MOIRAI_TOPO_LIVE, NULL, out);
}

int moirai_topo_load_xml(const char *path, struct moirai_topo **out)
{
	if (!out || !path || !*path)
		return moirai__err(-EINVAL, "topology: missing XML path");
	return moirai__topo_from_hwloc(MOIRAI_TOPO_XML, path, out);
}

/*
 * hwloc builds whatever a synthetic string describes; "core:65536 pu:65536"
 * would take minutes and gigabytes.  Multiply the arities first and refuse
 * machines larger than any real one.
 */
#define SYNTHETIC_MAX_PUS (1L << 16)

static int synthetic_size_ok(const char *desc)
{
	double total = 1;

	for (const char *p = strchr(desc, ':'); p; p = strchr(p + 1, ':')) {
		char *end;
		double v = strtod(p + 1, &end);

		if (end != p + 1 && v > 0)
			total *= v;
	}
	return total <= (double)SYNTHETIC_MAX_PUS;
}

int moirai_topo_load_synthetic(const char *desc, struct moirai_topo **out)
{
	if (!out || !desc || !*desc)
		return moirai__err(-EINVAL, "topology: empty synthetic description");
	if (!synthetic_size_ok(desc))
		return moirai__err(
			-EINVAL, "topology: synthetic description '%s' describes more than %ld PUs",
			desc, SYNTHETIC_MAX_PUS);
	return moirai__topo_from_hwloc(MOIRAI_TOPO_SYNTHETIC, desc, out);
}

int moirai_topo_load(struct moirai_topo **out)
{
	const char *src = moirai_option_get_str(MOIRAI_OPT_TOPOLOGY);
	struct stat st;

	if (!out)
		return moirai__err(-EINVAL, "topology: NULL output pointer");
	if (!*src)
		return moirai_topo_load_live(out);
	/* A path that exists (or looks like a file) is XML, else synthetic. */
	if (stat(src, &st) == 0 || strstr(src, ".xml") || strchr(src, '/'))
		return moirai_topo_load_xml(src, out);
	return moirai_topo_load_synthetic(src, out);
}

void moirai_topo_destroy(struct moirai_topo *topo)
{
	moirai__topo_free(topo);
}

enum moirai_topo_source moirai_topo_source(const struct moirai_topo *topo)
{
	return topo ? topo->source : MOIRAI_TOPO_LIVE;
}

int moirai_topo_package_count(const struct moirai_topo *topo)
{
	return topo ? topo->packages : 0;
}

int moirai_topo_node_count(const struct moirai_topo *topo)
{
	return topo ? topo->nnodes : 0;
}

int moirai_topo_l3_count(const struct moirai_topo *topo)
{
	return topo ? topo->l3s : 0;
}

int moirai_topo_core_count(const struct moirai_topo *topo)
{
	return topo ? topo->cores : 0;
}

int moirai_topo_pu_count(const struct moirai_topo *topo)
{
	return topo ? topo->npus : 0;
}

int moirai_topo_allowed_pu_count(const struct moirai_topo *topo)
{
	return topo ? topo->allowed_pus : 0;
}

int moirai_topo_pu(const struct moirai_topo *topo, int idx, struct moirai_topo_pu *out)
{
	const struct topo_pu *p;

	if (!topo || !out)
		return -EINVAL;
	if (idx < 0 || idx >= topo->npus)
		return moirai__err(-ERANGE, "topology: PU index %d out of range (%d PUs)", idx,
				   topo->npus);
	p = &topo->pus[idx];
	*out = (struct moirai_topo_pu){
		.os_index = p->os_index,
		.core = p->core,
		.l3 = p->l3,
		.node = p->node,
		.package = p->package,
		.smt_rank = p->smt_rank,
		.online = true,
		.allowed = p->allowed,
		.isolated = p->isolated,
	};
	return 0;
}

int moirai_topo_node(const struct moirai_topo *topo, int idx, struct moirai_topo_node *out)
{
	const struct topo_node *n;

	if (!topo || !out)
		return -EINVAL;
	if (idx < 0 || idx >= topo->nnodes)
		return moirai__err(-ERANGE, "topology: node index %d out of range (%d nodes)", idx,
				   topo->nnodes);
	n = &topo->nodes[idx];
	*out = (struct moirai_topo_node){
		.os_index = n->os_index,
		.package = n->package,
		.memory_bytes = n->memory_bytes,
		.pu_count = n->pu_count,
		.mem_allowed = n->mem_allowed,
		.hugepages_2m_free = n->hp2m_free,
		.hugepages_1g_free = n->hp1g_free,
	};
	return 0;
}

int moirai_topo_node_pus(const struct moirai_topo *topo, int idx, int *pus, int max)
{
	const struct topo_node *n;

	if (!topo || max < 0 || (max > 0 && !pus))
		return -EINVAL;
	if (idx < 0 || idx >= topo->nnodes)
		return moirai__err(-ERANGE, "topology: node index %d out of range (%d nodes)", idx,
				   topo->nnodes);
	n = &topo->nodes[idx];
	for (int i = 0; i < n->pu_count && i < max; i++)
		pus[i] = n->pus[i];
	return n->pu_count;
}

int moirai_topo_node_by_os(const struct moirai_topo *topo, int os_index)
{
	if (!topo)
		return -EINVAL;
	for (int i = 0; i < topo->nnodes; i++)
		if (topo->nodes[i].os_index == os_index)
			return i;
	return moirai__err(-ENODEV, "topology: no NUMA node with OS index %d", os_index);
}

int moirai_topo_pu_by_os(const struct moirai_topo *topo, int os_index)
{
	if (!topo)
		return -EINVAL;
	for (int i = 0; i < topo->npus; i++)
		if (topo->pus[i].os_index == os_index)
			return i;
	return moirai__err(-ENODEV, "topology: no PU with OS index %d", os_index);
}

bool moirai_topo_has_distances(const struct moirai_topo *topo)
{
	return topo && topo->distances;
}

int moirai_topo_distance(const struct moirai_topo *topo, int a, int b)
{
	if (!topo)
		return -EINVAL;
	if (a < 0 || b < 0 || a >= topo->nnodes || b >= topo->nnodes)
		return moirai__err(-ERANGE, "topology: node pair (%d, %d) out of range", a, b);
	if (topo->distances)
		return topo->distances[a * topo->nnodes + b];
	return a == b ? 10 : 20;
}

int moirai_topo_device_count(const struct moirai_topo *topo)
{
	return topo ? topo->ndevices : 0;
}

int moirai_topo_device(const struct moirai_topo *topo, int idx, struct moirai_topo_device *out)
{
	if (!topo || !out)
		return -EINVAL;
	if (idx < 0 || idx >= topo->ndevices)
		return -ERANGE;
	out->name = topo->devices[idx].name;
	out->kind = topo->devices[idx].kind;
	out->node = topo->devices[idx].node;
	return 0;
}

int moirai_topo_device_node(const struct moirai_topo *topo, const char *name)
{
	if (!topo || !name)
		return -EINVAL;
	for (int i = 0; i < topo->ndevices; i++) {
		if (strcmp(topo->devices[i].name, name))
			continue;
		if (topo->devices[i].node < 0)
			return moirai__err(-ENODATA, "topology: device '%s' has no NUMA locality",
					   name);
		return topo->devices[i].node;
	}
	return moirai__err(-ENODEV, "topology: no network device named '%s' (%d known)", name,
			   topo->ndevices);
}

long moirai_topo_cpu_quota_milli(const struct moirai_topo *topo)
{
	if (!topo || topo->cpu_quota_milli < 0)
		return -ENODATA;
	return topo->cpu_quota_milli;
}
