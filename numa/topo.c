/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Topology loading and queries.  Loading picks the source (MOIRAI_TOPOLOGY,
 * an XML file, a synthetic description or the live machine) and hands off
 * to the hwloc seam; queries read the flattened model and never call hwloc,
 * so they are cheap and safe from any thread.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "internal.h"
#include "numa_int.h"

int moirai_topo_load_live(struct moirai_topo **out)
{
	if (!out)
		return moirai__err(-EINVAL, "topology: NULL output pointer");
	return moirai__topo_from_hwloc(MOIRAI_TOPO_LIVE, NULL, 0, out);
}

int moirai_topo_load_xml(const char *path, struct moirai_topo **out)
{
	if (!out || !path || !*path)
		return moirai__err(-EINVAL, "topology: missing XML path");
	return moirai__topo_from_hwloc(MOIRAI_TOPO_XML, path, 0, out);
}

/*
 * hwloc builds whatever a synthetic string describes, and its insertion
 * cost grows with the width of a level times the machine size: "pack:65536
 * pu:1" takes about an hour, "pack:4096 pu:1" three seconds, a realistic
 * 4096-PU shape a tenth of one.  So size the description before hwloc sees
 * it: the product of the arities is the PU count, the product down to a
 * NUMA level (or at a bracketed memory level) the node count, and
 * "indexes=" lists may not name CPUs or nodes beyond what Linux numbers.
 * Anything this scan cannot read is left for hwloc to reject.
 */
static int synthetic_size_check(const char *desc)
{
	double pus = 1, nodes = 0;
	int depth = 0;

	for (const char *p = desc; *p;) {
		const char *tok = p, *colon;
		size_t len;
		bool memory = false, numa;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		tok = p;
		/* A level: up to the next blank outside parentheses. */
		for (depth = 0; *p && (depth > 0 || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '(')
				depth++;
			else if (*p == ')' && depth > 0)
				depth--;
		}
		len = (size_t)(p - tok);
		if (*tok == '[') {
			memory = true;
			tok++;
			len--;
		}
		numa = (len >= 4 && !strncasecmp(tok, "numa", 4)) ||
		       (len >= 4 && !strncasecmp(tok, "node", 4));
		colon = memchr(tok, ':', len);
		if (colon && !memory) {
			char *end;
			double arity = strtod(colon + 1, &end);

			if (end > colon + 1 && arity > MOIRAI__TOPO_MAX_ARITY)
				return moirai__err(-EINVAL,
						   "topology: synthetic level '%.*s' has more than "
						   "%d children per parent",
						   (int)(len < 40 ? len : 40), tok,
						   MOIRAI__TOPO_MAX_ARITY);
			if (end > colon + 1 && arity >= 1)
				pus *= arity;
		}
		if (numa || memory)
			nodes += memory ? pus : 0;
		if (numa && !memory)
			nodes = pus;
		for (const char *ix = tok; (ix = strstr(ix, "indexes=")) && ix < tok + len;) {
			for (ix += 8; *ix && *ix != ')' && *ix != ' '; ix++) {
				if (*ix >= '0' && *ix <= '9' &&
				    strtol(ix, NULL, 10) >= MOIRAI__TOPO_MAX_CPU_INDEX)
					return moirai__err(-EINVAL,
							   "topology: synthetic indexes beyond %d",
							   MOIRAI__TOPO_MAX_CPU_INDEX - 1);
				while (*ix >= '0' && *ix <= '9')
					ix++;
				if (!*ix || *ix == ')' || *ix == ' ')
					break;
			}
		}
	}
	if (pus > MOIRAI_TOPO_MAX_PUS)
		return moirai__err(
			-EINVAL,
			"topology: synthetic description '%.60s' has %.0f PUs, more than "
			"the %d moirai accepts (the largest real machines have a few "
			"thousand)",
			desc, pus, MOIRAI_TOPO_MAX_PUS);
	if (nodes > MOIRAI_TOPO_MAX_NODES)
		return moirai__err(
			-EINVAL,
			"topology: synthetic description '%.60s' has %.0f NUMA nodes, more "
			"than the %d Linux supports",
			desc, nodes, MOIRAI_TOPO_MAX_NODES);
	return 0;
}

int moirai_topo_load_synthetic(const char *desc, struct moirai_topo **out)
{
	int rc;

	if (!out || !desc || !*desc)
		return moirai__err(-EINVAL, "topology: empty synthetic description");
	rc = synthetic_size_check(desc);
	if (rc)
		return rc;
	return moirai__topo_from_hwloc(MOIRAI_TOPO_SYNTHETIC, desc, 0, out);
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
		return moirai__err(-EINVAL, "topology: NULL argument");
	if (idx < 0 || idx >= topo->npus)
		return moirai__err(-ERANGE, "topology: PU index %d out of range (%d PUs)", idx,
				   topo->npus);
	p = &topo->pus[idx];
	*out = (struct moirai_topo_pu){
		.os_index = p->os_index,
		.core = p->core,
		.l3 = p->l3,
		.node_idx = p->node_idx,
		.node = p->node_idx >= 0 ? topo->nodes[p->node_idx].os_index : -1,
		.package = p->package,
		.smt_rank = p->smt_rank,
		.online = true,
		.allowed = p->allowed,
		.isolated = p->isolated,
	};
	return 0;
}

int moirai_topo_node(const struct moirai_topo *topo, int node_idx, struct moirai_topo_node *out)
{
	const struct topo_node *n;

	if (!topo || !out)
		return moirai__err(-EINVAL, "topology: NULL argument");
	if (node_idx < 0 || node_idx >= topo->nnodes)
		return moirai__err(-ERANGE, "topology: node_idx %d out of range (%d nodes)",
				   node_idx, topo->nnodes);
	n = &topo->nodes[node_idx];
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

int moirai_topo_node_pus(const struct moirai_topo *topo, int node_idx, int *pus, int max)
{
	const struct topo_node *n;

	if (!topo || max < 0 || (max > 0 && !pus))
		return moirai__err(
			-EINVAL, "topology: NULL topology, or a negative or unbacked max %d", max);
	if (node_idx < 0 || node_idx >= topo->nnodes)
		return moirai__err(-ERANGE, "topology: node_idx %d out of range (%d nodes)",
				   node_idx, topo->nnodes);
	n = &topo->nodes[node_idx];
	for (int i = 0; i < n->pu_count && i < max; i++)
		pus[i] = n->pus[i];
	return n->pu_count;
}

int moirai_topo_node_by_os(const struct moirai_topo *topo, int node)
{
	if (!topo)
		return moirai__err(-EINVAL, "topology: NULL argument");
	for (int i = 0; i < topo->nnodes; i++)
		if (topo->nodes[i].os_index == node)
			return i;
	return moirai__err(-ENODEV, "topology: no NUMA node with OS index %d", node);
}

int moirai_topo_pu_by_os(const struct moirai_topo *topo, int pu)
{
	if (!topo)
		return moirai__err(-EINVAL, "topology: NULL argument");
	for (int i = 0; i < topo->npus; i++)
		if (topo->pus[i].os_index == pu)
			return i;
	return moirai__err(-ENODEV, "topology: no PU with OS index %d", pu);
}

bool moirai_topo_has_distances(const struct moirai_topo *topo)
{
	return topo && topo->distances;
}

int moirai_topo_distance(const struct moirai_topo *topo, int a_node_idx, int b_node_idx)
{
	if (!topo)
		return moirai__err(-EINVAL, "topology: NULL argument");
	if (a_node_idx < 0 || b_node_idx < 0 || a_node_idx >= topo->nnodes ||
	    b_node_idx >= topo->nnodes)
		return moirai__err(-ERANGE,
				   "topology: node_idx pair (%d, %d) out of range (%d nodes)",
				   a_node_idx, b_node_idx, topo->nnodes);
	if (topo->distances)
		return topo->distances[a_node_idx * topo->nnodes + b_node_idx];
	return a_node_idx == b_node_idx ? 10 : 20;
}

int moirai_topo_device_count(const struct moirai_topo *topo)
{
	return topo ? topo->ndevices : 0;
}

int moirai_topo_device(const struct moirai_topo *topo, int idx, struct moirai_topo_device *out)
{
	if (!topo || !out)
		return moirai__err(-EINVAL, "topology: NULL argument");
	if (idx < 0 || idx >= topo->ndevices)
		return moirai__err(-ERANGE, "topology: device index %d out of range (%d devices)",
				   idx, topo->ndevices);
	out->name = topo->devices[idx].name;
	out->kind = topo->devices[idx].kind;
	out->node_idx = topo->devices[idx].node_idx;
	out->node = out->node_idx >= 0 ? topo->nodes[out->node_idx].os_index : -1;
	return 0;
}

int moirai_topo_device_node_idx(const struct moirai_topo *topo, const char *name)
{
	if (!topo || !name)
		return moirai__err(-EINVAL, "topology: NULL topology or device name");
	for (int i = 0; i < topo->ndevices; i++) {
		if (strcmp(topo->devices[i].name, name))
			continue;
		if (topo->devices[i].node_idx < 0)
			return moirai__err(-ENODATA, "topology: device '%s' has no NUMA locality",
					   name);
		return topo->devices[i].node_idx;
	}
	return moirai__err(-ENODEV, "topology: no network device named '%s' (%d known)", name,
			   topo->ndevices);
}

int moirai_topo_device_node(const struct moirai_topo *topo, const char *name)
{
	int idx = moirai_topo_device_node_idx(topo, name);

	return idx < 0 ? idx : topo->nodes[idx].os_index;
}

long moirai_topo_cpu_quota_milli(const struct moirai_topo *topo)
{
	if (!topo || topo->cpu_quota_milli < 0)
		return moirai__err(-ENODATA, "topology: no CPU quota (%s)",
				   !topo ? "NULL topology" : "none set, or a foreign machine");
	return topo->cpu_quota_milli;
}

/*
 * The invariants the planner and every query rely on.  hwloc does not
 * promise them for foreign input (and a corrupt file breaks them: Core
 * objects at two depths made hwloc count -1 cores), so every topology is
 * checked before it is handed out; a hand-edited model in a test can be
 * checked the same way.  O(PUs + nodes^2).
 */
int moirai__topo_check(const struct moirai_topo *t, const char *what)
{
	bool *seen = NULL, *node_seen = NULL;
	int *core_node = NULL, with_node = 0, allowed = 0, sum = 0, rc = 0;
	const char *why = NULL;
	int bad = -1;

	if (t->npus < 1 || t->nnodes < 1 || t->cores < 1 || t->packages < 0 || t->l3s < 0 ||
	    t->cores > t->npus) {
		why = "impossible counts";
		goto out;
	}
	seen = calloc(MOIRAI__TOPO_MAX_CPU_INDEX, sizeof(bool));
	node_seen = calloc(MOIRAI__TOPO_MAX_CPU_INDEX, sizeof(bool));
	core_node = malloc((size_t)t->cores * sizeof(int));
	if (!seen || !node_seen || !core_node) {
		rc = moirai__err(-ENOMEM, "topology: out of memory checking %s", what);
		goto out;
	}
	for (int c = 0; c < t->cores; c++)
		core_node[c] = -2;
	for (int i = 0; i < t->npus && !why; i++) {
		const struct topo_pu *p = &t->pus[i];

		bad = p->os_index;
		if (p->os_index < 0 || p->os_index >= MOIRAI__TOPO_MAX_CPU_INDEX)
			why = "PU OS index out of range";
		else if (seen[p->os_index])
			why = "two PUs with the same OS index";
		else if (p->core < 0 || p->core >= t->cores)
			why = "PU core index out of range";
		else if (p->l3 < -1 || p->l3 >= t->l3s || p->package < -1 ||
			 p->package >= t->packages || p->node_idx < -1 || p->node_idx >= t->nnodes)
			why = "PU L3, package or node index out of range";
		else if (p->smt_rank < 0 || p->smt_rank >= t->npus)
			why = "PU SMT rank out of range";
		else if (core_node[p->core] != -2 && core_node[p->core] != p->node_idx)
			why = "PUs of one core on different NUMA nodes";
		if (why)
			break;
		seen[p->os_index] = true;
		core_node[p->core] = p->node_idx;
		with_node += p->node_idx >= 0;
		allowed += p->allowed;
	}
	bad = -1;
	if (!why && allowed != t->allowed_pus)
		why = "allowed PU count does not match the PUs";
	for (int n = 0; n < t->nnodes && !why; n++) {
		const struct topo_node *nd = &t->nodes[n];

		bad = nd->os_index;
		if (nd->os_index < 0 || nd->os_index >= MOIRAI__TOPO_MAX_CPU_INDEX)
			why = "NUMA node OS index out of range";
		else if (node_seen[nd->os_index])
			why = "two NUMA nodes with the same OS index";
		else if (nd->pu_count < 0 || nd->pu_count > t->npus || nd->package < -1 ||
			 nd->package >= t->packages)
			why = "NUMA node with impossible fields";
		if (!why)
			node_seen[nd->os_index] = true;
		sum += nd->pu_count;
	}
	bad = -1;
	if (!why && sum != with_node)
		why = "node PU lists do not match the PUs";
	for (int i = 0; t->distances && !why && i < t->nnodes * t->nnodes; i++)
		if (t->distances[i] <= 0)
			why = "a NUMA distance that is not positive";
	for (int i = 0; !why && i < t->ndevices; i++)
		if (t->devices[i].node_idx < -1 || t->devices[i].node_idx >= t->nnodes)
			why = "a device node index out of range";
out:
	if (why && !rc) {
		if (bad >= 0)
			rc = moirai__err(-EINVAL, "topology: invalid topology from %s: %s (%d)",
					 what, why, bad);
		else
			rc = moirai__err(-EINVAL, "topology: invalid topology from %s: %s", what,
					 why);
	}
	free(seen);
	free(node_seen);
	free(core_node);
	return rc;
}
