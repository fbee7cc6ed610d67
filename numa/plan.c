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
		int node = p->node < 0 ? 0 : p->node;

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
					    .node = p->node < 0 ? t->nnodes : p->node,
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
 * Order the slots of one node into @out: compact walks L3 by L3 (rank 0
 * cores, then rank 1, ...); spread round-robins the L3s rank by rank.
 */
static int order_node(const struct slot *slots, int n, int node, bool spread, int nl3,
		      struct slot *out)
{
	int k = 0, maxrank = 0;

	for (int i = 0; i < n; i++)
		if (slots[i].node == node && slots[i].rank > maxrank)
			maxrank = slots[i].rank;
	/* L3 -1 (no L3) is treated as one domain, index nl3. */
	if (!spread) {
		for (int l3 = 0; l3 <= nl3; l3++)
			for (int r = 0; r <= maxrank; r++)
				for (int i = 0; i < n; i++) {
					const struct slot *s = &slots[i];
					int sl3 = s->l3 < 0 ? nl3 : s->l3;

					if (s->node == node && sl3 == l3 && s->rank == r)
						out[k++] = *s;
				}
		return k;
	}
	for (int r = 0; r <= maxrank; r++) {
		int *cursor = calloc((size_t)nl3 + 1, sizeof(int));
		bool progress = true;

		if (!cursor)
			return -ENOMEM;
		/* Round-robin: take the next unused slot of each L3 in turn. */
		while (progress) {
			progress = false;
			for (int l3 = 0; l3 <= nl3; l3++) {
				for (int i = cursor[l3]; i < n; i++) {
					const struct slot *s = &slots[i];
					int sl3 = s->l3 < 0 ? nl3 : s->l3;

					if (s->node != node || sl3 != l3 || s->rank != r)
						continue;
					out[k++] = *s;
					cursor[l3] = i + 1;
					progress = true;
					break;
				}
			}
		}
		free(cursor);
	}
	return k;
}

static int order_slots(const struct moirai_topo *t, const struct moirai_plan_opts *o, int near_node,
		       struct slot *slots, int n, struct slot *ordered)
{
	int nn = t->nnodes + 1; /* + the pseudo-node of node-less PUs */
	int *nodes = calloc((size_t)nn, sizeof(int));
	int *cnt = calloc((size_t)nn, sizeof(int));
	int *pos = calloc((size_t)nn, sizeof(int));
	struct slot *per = calloc((size_t)n * (size_t)nn + 1, sizeof(*per));
	int k = 0, rc = 0;

	if (!nodes || !cnt || !pos || !per) {
		rc = -ENOMEM;
		goto out;
	}
	order_nodes(t, near_node, nodes, nn - 1);
	nodes[nn - 1] = nn - 1;
	for (int i = 0; i < nn; i++) {
		cnt[i] = order_node(slots, n, nodes[i], o->policy == MOIRAI_PLAN_SPREAD, t->l3s,
				    per + (size_t)i * (size_t)n);
		if (cnt[i] < 0) {
			rc = cnt[i];
			goto out;
		}
	}
	if (o->policy == MOIRAI_PLAN_COMPACT) {
		for (int i = 0; i < nn; i++)
			for (int j = 0; j < cnt[i]; j++)
				ordered[k++] = per[(size_t)i * (size_t)n + (size_t)j];
	} else {
		/*
		 * Spread: physical cores of every node before any sibling, so
		 * round-robin per SMT rank, then over nodes.
		 */
		int maxrank = 0;

		for (int i = 0; i < n; i++)
			if (slots[i].rank > maxrank)
				maxrank = slots[i].rank;
		for (int r = 0; r <= maxrank; r++) {
			bool progress = true;

			while (progress) {
				progress = false;
				for (int i = 0; i < nn; i++) {
					struct slot *s;

					while (pos[i] < cnt[i] &&
					       per[(size_t)i * (size_t)n + (size_t)pos[i]].rank < r)
						pos[i]++;
					if (pos[i] >= cnt[i])
						continue;
					s = &per[(size_t)i * (size_t)n + (size_t)pos[i]];
					if (s->rank != r)
						continue;
					ordered[k++] = *s;
					pos[i]++;
					progress = true;
				}
			}
		}
	}
	rc = k;
out:
	free(nodes);
	free(cnt);
	free(pos);
	free(per);
	return rc;
}

/* Steal-order key: same core, same L3, same node, then by node distance. */
struct victim {
	int worker, class, dist;
};

static int cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	if (x->class != y->class)
		return x->class < y->class ? -1 : 1;
	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->worker < y->worker ? -1 : x->worker > y->worker;
}

static int build_steal(const struct moirai_topo *t, struct moirai_plan *p)
{
	int n = p->count;
	struct victim *v = calloc((size_t)n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	p->steal = calloc((size_t)n * (size_t)(n > 1 ? n - 1 : 1), sizeof(int));
	if (!p->steal) {
		free(v);
		return -ENOMEM;
	}
	for (int w = 0; w < n; w++) {
		const struct moirai_plan_worker *me = &p->workers[w];
		int k = 0;

		for (int o = 0; o < n; o++) {
			const struct moirai_plan_worker *it = &p->workers[o];

			if (o == w)
				continue;
			v[k].worker = o;
			v[k].dist = 0;
			if (it->core == me->core)
				v[k].class = 0;
			else if (me->l3 >= 0 && it->l3 == me->l3)
				v[k].class = 1;
			else if (it->node_idx == me->node_idx)
				v[k].class = 2;
			else {
				v[k].class = 3;
				/* Unknown locality sorts after every known distance. */
				v[k].dist = (me->node_idx >= 0 && it->node_idx >= 0)
						    ? moirai_topo_distance(t, me->node_idx,
									   it->node_idx)
						    : 1 << 20;
			}
			k++;
		}
		qsort(v, (size_t)k, sizeof(*v), cmp_victim);
		int *row = p->steal + (size_t)w * (size_t)(n - 1);

		for (int i = 0; i < k; i++)
			row[i] = v[i].worker;
		p->workers[w].steal_order = row;
		p->workers[w].steal_count = k;
	}
	free(v);
	return 0;
}

/*
 * Invariant walker (DEBUG builds, `make check`): distinct PUs, and every
 * steal order a permutation of the other workers.
 */
static bool plan_is_valid(const struct moirai_plan *p)
{
	for (int w = 0; w < p->count; w++) {
		long sum = 0;

		for (int o = w + 1; o < p->count; o++)
			if (p->workers[o].pu == p->workers[w].pu)
				return false;
		if (p->workers[w].steal_count != p->count - 1)
			return false;
		for (int k = 0; k < p->workers[w].steal_count; k++) {
			int v = p->workers[w].steal_order[k];

			if (v < 0 || v >= p->count || v == w)
				return false;
			sum += v;
		}
		if (sum != (long)p->count * (p->count - 1) / 2 - w)
			return false;
	}
	return true;
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
		near = moirai_topo_device_node(t, o.near_device);
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
			.node_idx = pu->node,
			.node = pu->node >= 0 ? t->nodes[pu->node].os_index : -1,
			.l3 = pu->l3,
		};
	}
	rc = build_steal(t, p);
	if (rc)
		goto err_free;
	moirai_assert_internal(plan_is_valid(p));
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
		return -EINVAL;
	if (idx < 0 || idx >= plan->count)
		return moirai__err(-ERANGE, "plan: worker %d out of range (%d workers)", idx,
				   plan->count);
	*out = plan->workers[idx];
	return 0;
}
