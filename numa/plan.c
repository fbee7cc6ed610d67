/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pinning planner: turns a topology snapshot into a worker -> PU plan
 * and, per worker, a steal order (nearest victims first).
 *
 * Candidates are the usable cores (a core is usable when one of its PUs is
 * allowed and, unless use_isolated, not isolated); without SMT each core
 * yields its first usable PU, with SMT every usable PU.  Reserved
 * housekeeping cores are removed first.  Slots are then ordered:
 *   compact: node by node, L3 by L3 within a node, all physical cores of
 *            the L3 before any SMT sibling;
 *   spread:  round-robin over nodes; within a node round-robin over L3s;
 *            every node's first sibling before any second sibling.
 * With near_device, nodes are visited from the device's node outwards by
 * distance.  Everything is sorted on indexes, so a plan is deterministic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "numa_int.h"

struct moirai_plan {
	int count;
	enum moirai_plan_policy policy;
	bool smt;
	struct moirai_plan_worker *workers;
	int *steal; /* count * (count - 1) */
};

struct slot {
	int pu;	  /* logical PU index */
	int node; /* logical node; PUs without one use nnodes, visited last */
	int l3;
	int core;
	int rank; /* SMT rank among the core's usable PUs */
};

static const char *const policy_names[] = { "compact", "spread" };

const char *moirai_plan_policy_name(enum moirai_plan_policy p)
{
	return (unsigned)p < MOIRAI_ARRAY_SIZE(policy_names) ? policy_names[p] : NULL;
}

int moirai_plan_policy_parse(const char *name, enum moirai_plan_policy *out)
{
	for (unsigned i = 0; name && out && i < MOIRAI_ARRAY_SIZE(policy_names); i++) {
		if (!strcmp(name, policy_names[i])) {
			*out = (enum moirai_plan_policy)i;
			return 0;
		}
	}
	return moirai__err(-EINVAL, "plan: unknown policy '%s' (compact or spread)",
			   name ? name : "(null)");
}

static bool pu_usable(const struct topo_pu *p, const struct moirai_plan_opts *o)
{
	return p->allowed && (o->use_isolated || !p->isolated);
}

/*
 * Collect usable slots in topology order and drop reserved cores.
 * Returns the number of slots; *ncores gets the usable physical cores
 * after reservation (for the error message).
 */
static int collect_slots(const struct moirai_topo *t, const struct moirai_plan_opts *o,
			 struct slot *slots, int *ncores, int *npus_smt)
{
	bool *reserved = calloc((size_t)t->cores + 1, sizeof(bool));
	int *rank = calloc((size_t)t->cores + 1, sizeof(int));
	bool *node_done = calloc((size_t)t->nnodes + 1, sizeof(bool));
	bool *core_seen = calloc((size_t)t->cores + 1, sizeof(bool));
	int n = 0, to_reserve = o->reserve;

	if (!reserved || !rank || !node_done || !core_seen) {
		n = -ENOMEM;
		goto out;
	}
	/* Reserve whole cores, lowest first: housekeeping wants core 0. */
	for (int i = 0; i < t->npus; i++) {
		const struct topo_pu *p = &t->pus[i];
		int node = p->node_idx < 0 ? 0 : p->node_idx;

		if (!pu_usable(p, o) || core_seen[p->core])
			continue;
		core_seen[p->core] = true;
		if (to_reserve > 0) {
			reserved[p->core] = true;
			to_reserve--;
		}
		if (o->reserve_per_node && !node_done[node]) {
			reserved[p->core] = true;
			node_done[node] = true;
		}
	}
	*ncores = 0;
	*npus_smt = 0;
	memset(core_seen, 0, ((size_t)t->cores + 1) * sizeof(bool));
	for (int i = 0; i < t->npus; i++) {
		const struct topo_pu *p = &t->pus[i];

		if (!pu_usable(p, o) || reserved[p->core])
			continue;
		if (!core_seen[p->core])
			(*ncores)++;
		(*npus_smt)++;
		if (!o->smt && core_seen[p->core])
			continue;
		core_seen[p->core] = true;
		slots[n++] = (struct slot){ .pu = i,
					    .node = p->node_idx < 0 ? t->nnodes : p->node_idx,
					    .l3 = p->l3,
					    .core = p->core,
					    .rank = rank[p->core]++ };
	}
out:
	free(reserved);
	free(rank);
	free(node_done);
	free(core_seen);
	return n;
}

/*
 * Node visiting order: natural, or outwards from the device's node by
 * distance (ties by index).  Insertion sort: node counts are small and it
 * needs no global state, so planning stays thread-safe.
 */
static void order_nodes(const struct moirai_topo *t, int origin, int *nodes, int nn)
{
	for (int i = 0; i < nn; i++)
		nodes[i] = i;
	if (origin < 0)
		return;
	for (int i = 1; i < nn; i++) {
		int x = nodes[i], j = i - 1;
		int dx = x == origin ? -1 : moirai_topo_distance(t, origin, x);

		while (j >= 0) {
			int y = nodes[j];
			int dy = y == origin ? -1 : moirai_topo_distance(t, origin, y);

			if (dy < dx || (dy == dx && y < x))
				break;
			nodes[j + 1] = y;
			j--;
		}
		nodes[j + 1] = x;
	}
}

/*
 * Slots are ordered by sorting on keys, so ordering costs O(n log n)
 * however many nodes and L3s there are (the nested loops over nodes x L3s x
 * slots this replaces took 1.9 s for "numa:256 l3:1 pu:4" and grow with the
 * square of the node count).  The keys encode the documented
 * policies exactly:
 *   compact: (node position, L3, SMT rank, topology order);
 *   spread:  within a node, rank by rank, round-robin over its L3s
 *            (occ = how many slots of the same node, L3 and rank came
 *            before); across nodes, rank by rank, round-robin over nodes
 *            (m = how many slots of the same node and rank came before).
 */
struct keyed {
	struct slot s;
	int k[4];
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	for (int i = 0; i < 4; i++)
		if (x->k[i] != y->k[i])
			return x->k[i] < y->k[i] ? -1 : 1;
	return 0;
}

static void sort_keyed(struct keyed *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_keyed);
}

static int order_slots(const struct moirai_topo *t, const struct moirai_plan_opts *o, int near_node,
		       struct slot *slots, int n, struct slot *ordered)
{
	int nn = t->nnodes + 1; /* + the pseudo-node of node-less PUs, visited last */
	int *nodes = calloc((size_t)nn, sizeof(int));
	int *nodepos = calloc((size_t)nn, sizeof(int));
	struct keyed *v = calloc((size_t)n + 1, sizeof(*v));
	int rc = n;

	if (!nodes || !nodepos || !v) {
		rc = -ENOMEM;
		goto out;
	}
	order_nodes(t, near_node, nodes, nn - 1);
	nodes[nn - 1] = nn - 1;
	for (int i = 0; i < nn; i++)
		nodepos[nodes[i]] = i;
	for (int i = 0; i < n; i++) {
		const struct slot *s = &slots[i];
		int l3 = s->l3 < 0 ? t->l3s : s->l3;

		v[i].s = *s;
		if (o->policy == MOIRAI_PLAN_COMPACT)
			v[i].k[0] = nodepos[s->node], v[i].k[1] = l3, v[i].k[2] = s->rank;
		else
			v[i].k[0] = s->node, v[i].k[1] = l3, v[i].k[2] = s->rank;
		v[i].k[3] = i;
	}
	sort_keyed(v, n);
	if (o->policy == MOIRAI_PLAN_SPREAD) {
		/* occ within (node, L3, rank); then order each node's slots. */
		int prev[3] = { -1, -1, -1 };

		for (int i = 0, occ = 0; i < n; i++) {
			bool same = v[i].k[0] == prev[0] && v[i].k[1] == prev[1] &&
				    v[i].k[2] == prev[2];

			memcpy(prev, v[i].k, sizeof(prev));
			occ = same ? occ + 1 : 0;
			v[i].k[3] = v[i].k[1]; /* L3 */
			v[i].k[1] = v[i].k[2]; /* rank */
			v[i].k[2] = occ;
			v[i].k[0] = nodepos[v[i].s.node];
		}
		sort_keyed(v, n);
		/* m within (node, rank); then round-robin the nodes. */
		prev[0] = prev[1] = -1;
		for (int i = 0, m = 0; i < n; i++) {
			bool same = v[i].k[0] == prev[0] && v[i].k[1] == prev[1];

			prev[0] = v[i].k[0];
			prev[1] = v[i].k[1];
			m = same ? m + 1 : 0;
			v[i].k[3] = v[i].k[0]; /* node position */
			v[i].k[0] = v[i].k[1]; /* rank */
			v[i].k[1] = m;
			v[i].k[2] = 0;
		}
		sort_keyed(v, n);
	}
	for (int i = 0; i < n; i++)
		ordered[i] = v[i].s;
out:
	free(nodes);
	free(nodepos);
	free(v);
	return rc;
}

/*
 * Steal orders: for each worker, the others sorted by (class, distance,
 * worker): class 0 same core, 1 same L3, 2 same node, 3 other nodes by
 * distance (unknown locality after every known distance).  Sorting each
 * row with qsort was O(n^2 log n), about a second for 4096 workers; here
 * each row is one counting sort over buckets (class 0..2, then one bucket
 * per distinct distance from the worker's node), stable in worker order:
 * O(n^2) in all (a fifth of that time), with the per-node distance ranks
 * computed once per node.  The result is identical.
 */
static int node_slot(const struct moirai_topo *t, int node_idx)
{
	return node_idx < 0 ? t->nnodes : node_idx;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/* rank[k]: position of dist(me, k) among the distinct distances from me. */
static int distance_ranks(const struct moirai_topo *t, int me, int *rank, int *tmp)
{
	int ns = t->nnodes + 1, nd = 0;

	for (int k = 0; k < ns; k++)
		tmp[k] = (me == t->nnodes || k == t->nnodes) ? 1 << 20
							     : moirai_topo_distance(t, me, k);
	memcpy(rank, tmp, (size_t)ns * sizeof(int));
	qsort(tmp, (size_t)ns, sizeof(int), cmp_int);
	for (int k = 0; k < ns; k++)
		if (k == 0 || tmp[k] != tmp[k - 1])
			tmp[nd++] = tmp[k];
	for (int k = 0; k < ns; k++) {
		int lo = 0, hi = nd - 1;

		while (lo < hi) {
			int mid = (lo + hi) / 2;

			if (tmp[mid] < rank[k])
				lo = mid + 1;
			else
				hi = mid;
		}
		rank[k] = lo;
	}
	return nd;
}

static int build_steal(const struct moirai_topo *t, struct moirai_plan *p)
{
	int n = p->count, ns = t->nnodes + 1, rc = 0;
	int *ranks = NULL, *tmp = NULL, *bucket = NULL, *count = NULL;
	bool *ranked = NULL;

	p->steal = calloc((size_t)n * (size_t)(n > 1 ? n - 1 : 1), sizeof(int));
	ranks = malloc((size_t)ns * (size_t)ns * sizeof(int));
	tmp = malloc((size_t)ns * sizeof(int));
	bucket = malloc((size_t)n * sizeof(int));
	count = malloc(((size_t)ns + 4) * sizeof(int));
	ranked = calloc((size_t)ns, sizeof(bool));
	if (!p->steal || !ranks || !tmp || !bucket || !count || !ranked) {
		rc = -ENOMEM;
		goto out;
	}
	for (int w = 0; w < n; w++) {
		const struct moirai_plan_worker *me = &p->workers[w];
		int ms = node_slot(t, me->node_idx), *r = ranks + (size_t)ms * (size_t)ns;
		int *row = p->steal + (size_t)w * (size_t)(n - 1), nb = 3 + ns;

		if (!ranked[ms]) {
			distance_ranks(t, ms, r, tmp);
			ranked[ms] = true;
		}
		memset(count, 0, (size_t)nb * sizeof(int));
		for (int o = 0; o < n; o++) {
			const struct moirai_plan_worker *it = &p->workers[o];
			int b;

			if (o == w)
				continue;
			if (it->core == me->core)
				b = 0;
			else if (me->l3 >= 0 && it->l3 == me->l3)
				b = 1;
			else if (it->node_idx == me->node_idx)
				b = 2;
			else
				b = 3 + r[node_slot(t, it->node_idx)];
			bucket[o] = b;
			count[b]++;
		}
		for (int b = 0, at = 0; b < nb; b++) {
			int c = count[b];

			count[b] = at;
			at += c;
		}
		for (int o = 0; o < n; o++)
			if (o != w)
				row[count[bucket[o]]++] = o;
		p->workers[w].steal_order = row;
		p->workers[w].steal_count = n - 1;
	}
out:
	free(ranks);
	free(tmp);
	free(bucket);
	free(count);
	free(ranked);
	return rc;
}

/*
 * The plan's invariants: distinct PUs (and CPU numbers Linux can have),
 * and every steal order a permutation of the other workers.  Checked in
 * every build, not only DEBUG: a plan of a foreign topology is input that
 * moirai pins threads by, and the check is O(n^2) like building it.
 * Returns NULL or what is broken.
 */
static const char *plan_broken(const struct moirai_plan *p)
{
	bool *pu_used = calloc(MOIRAI__TOPO_MAX_CPU_INDEX, sizeof(bool));
	int *stamp = calloc((size_t)p->count + 1, sizeof(int));
	const char *why = NULL;

	if (!pu_used || !stamp) {
		why = "out of memory checking the plan";
		goto out;
	}
	for (int w = 0; w < p->count && !why; w++) {
		const struct moirai_plan_worker *me = &p->workers[w];

		if (me->pu < 0 || me->pu >= MOIRAI__TOPO_MAX_CPU_INDEX || pu_used[me->pu]) {
			why = "two workers on one PU";
			break;
		}
		pu_used[me->pu] = true;
		if (me->steal_count != p->count - 1) {
			why = "a steal order of the wrong length";
			break;
		}
		for (int k = 0; k < me->steal_count; k++) {
			int v = me->steal_order[k];

			if (v < 0 || v >= p->count || v == w || stamp[v] == w + 1) {
				why = "a steal order that is not a permutation of the others";
				break;
			}
			stamp[v] = w + 1;
		}
	}
out:
	free(pu_used);
	free(stamp);
	return why;
}

int moirai_plan_create(const struct moirai_topo *t, const struct moirai_plan_opts *opts,
		       struct moirai_plan **out)
{
	struct moirai_plan_opts o = opts ? *opts : (struct moirai_plan_opts){ 0 };
	struct slot *slots = NULL, *ordered = NULL;
	struct moirai_plan *p = NULL;
	int near = -1, n, ncores, npus, want, rc;

	if (!t || !out)
		return moirai__err(-EINVAL, "plan: NULL topology or output");
	*out = NULL;
	if (o.policy != MOIRAI_PLAN_COMPACT && o.policy != MOIRAI_PLAN_SPREAD)
		return moirai__err(-EINVAL, "plan: unknown policy %d", (int)o.policy);
	if (o.workers < 0)
		return moirai__err(-EINVAL, "plan: worker count %d is negative", o.workers);
	if (o.reserve < 0)
		return moirai__err(-EINVAL, "plan: reserve count %d is negative", o.reserve);
	if (o.near_device) {
		near = moirai_topo_device_node_idx(t, o.near_device);
		if (near == -ENODATA)
			near = -1; /* known device without locality: no preference */
		else if (near < 0)
			return near;
	}
	slots = calloc((size_t)t->npus + 1, sizeof(*slots));
	ordered = calloc((size_t)t->npus + 1, sizeof(*ordered));
	p = calloc(1, sizeof(*p));
	if (!slots || !ordered || !p) {
		rc = -ENOMEM;
		goto err_free;
	}
	n = collect_slots(t, &o, slots, &ncores, &npus);
	if (n < 0) {
		rc = n;
		goto err_free;
	}
	want = o.workers ? o.workers : n;
	if (n == 0 || want > n) {
		rc = moirai__err(-ERANGE,
				 "plan: %d workers requested but only %d usable %s (%d cores, %d "
				 "PUs with SMT%s%s)",
				 want, n, o.smt ? "PUs" : "cores", ncores, npus,
				 o.reserve || o.reserve_per_node
					 ? ", after reserving housekeeping cores"
					 : "",
				 o.use_isolated ? "" : ", isolated CPUs excluded");
		goto err_free;
	}
	n = order_slots(t, &o, near, slots, n, ordered);
	if (n < 0) {
		rc = n;
		goto err_free;
	}
	p->count = want;
	p->policy = o.policy;
	p->smt = o.smt;
	p->workers = calloc((size_t)want, sizeof(*p->workers));
	if (!p->workers) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (int w = 0; w < want; w++) {
		const struct slot *s = &ordered[w];
		const struct topo_pu *pu = &t->pus[s->pu];

		p->workers[w] = (struct moirai_plan_worker){
			.worker = w,
			.pu = pu->os_index,
			.core = pu->core,
			.node_idx = pu->node_idx,
			.node = pu->node_idx >= 0 ? t->nodes[pu->node_idx].os_index : -1,
			.l3 = pu->l3,
		};
	}
	rc = build_steal(t, p);
	if (rc)
		goto err_free;
	{
		/* Refused, never asserted, in every build: a corrupt topology
		 * model (duplicate PU numbers, issue #8) reaches this from
		 * outside, and the library does not abort on bad input. */
		const char *why = plan_broken(p);

		if (why) {
			rc = moirai__err(-EINVAL, "plan: refusing an invalid plan: %s", why);
			goto err_free;
		}
	}
	free(slots);
	free(ordered);
	*out = p;
	return 0;

err_free:
	free(slots);
	free(ordered);
	moirai_plan_destroy(p);
	if (rc == -ENOMEM)
		moirai__err(rc, "plan: out of memory");
	return rc;
}

void moirai_plan_destroy(struct moirai_plan *plan)
{
	if (!plan)
		return;
	free(plan->workers);
	free(plan->steal);
	free(plan);
}

int moirai_plan_worker_count(const struct moirai_plan *plan)
{
	return plan ? plan->count : 0;
}

int moirai_plan_worker(const struct moirai_plan *plan, int idx, struct moirai_plan_worker *out)
{
	if (!plan || !out)
		return moirai__err(-EINVAL, "plan: NULL argument");
	if (idx < 0 || idx >= plan->count)
		return moirai__err(-ERANGE, "plan: worker %d out of range (%d workers)", idx,
				   plan->count);
	*out = plan->workers[idx];
	return 0;
}
