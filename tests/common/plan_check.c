/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdlib.h>
#include <string.h>

#include "plan_check.h"
#include "testutil.h"

int usable_slots(const struct moirai_topo *t, bool smt, bool use_isolated)
{
	int npu = moirai_topo_pu_count(t), ncore = moirai_topo_core_count(t);
	bool *seen = calloc((size_t)ncore + 1, 1);
	int n = 0;

	assert_non_null(seen);
	for (int i = 0; i < npu; i++) {
		struct moirai_topo_pu pu;

		assert_int_equal(moirai_topo_pu(t, i, &pu), 0);
		if (!pu.allowed || (pu.isolated && !use_isolated))
			continue;
		if (!smt && seen[pu.core])
			continue;
		seen[pu.core] = true;
		n++;
	}
	free(seen);
	return n;
}

/* Steal class as documented: same core, same L3, same node, other. */
static int steal_class(const struct moirai_plan_worker *a, const struct moirai_plan_worker *b)
{
	if (a->core == b->core)
		return 0;
	if (a->l3 >= 0 && a->l3 == b->l3)
		return 1;
	if (a->node_idx == b->node_idx)
		return 2;
	return 3;
}

static int steal_dist(const struct moirai_topo *t, const struct moirai_plan_worker *a,
		      const struct moirai_plan_worker *b)
{
	if (steal_class(a, b) < 3)
		return 0;
	if (a->node_idx < 0 || b->node_idx < 0)
		return 1 << 20;
	return moirai_topo_distance(t, a->node_idx, b->node_idx);
}

int check_plan(const struct moirai_topo *t, const struct moirai_plan_opts *opts)
{
	struct moirai_plan *p = NULL, *p2 = NULL;
	int n, npu = moirai_topo_pu_count(t);
	struct moirai_plan_worker *w;
	bool *pu_used, *core_used;

	assert_int_equal(moirai_plan_create(t, opts, &p), 0);
	assert_int_equal(moirai_plan_create(t, opts, &p2), 0);
	n = moirai_plan_worker_count(p);
	assert_true(n > 0);
	assert_int_equal(n, moirai_plan_worker_count(p2));
	if (opts->workers)
		assert_int_equal(n, opts->workers);
	w = calloc((size_t)n, sizeof(*w));
	pu_used = calloc(65536, 1);
	core_used = calloc((size_t)moirai_topo_core_count(t) + 1, 1);
	assert_non_null(w);
	assert_non_null(pu_used);
	assert_non_null(core_used);
	for (int i = 0; i < n; i++) {
		struct moirai_plan_worker again;
		struct moirai_topo_pu pu;
		int idx;

		assert_int_equal(moirai_plan_worker(p, i, &w[i]), 0);
		assert_int_equal(moirai_plan_worker(p2, i, &again), 0);
		/* Deterministic. */
		assert_int_equal(w[i].pu, again.pu);
		assert_memory_equal(w[i].steal_order, again.steal_order,
				    (size_t)w[i].steal_count * sizeof(int));
		assert_int_equal(w[i].worker, i);
		idx = moirai_topo_pu_by_os(t, w[i].pu);
		assert_true(idx >= 0 && idx < npu);
		assert_int_equal(moirai_topo_pu(t, idx, &pu), 0);
		/* A usable PU, used once, matching the topology. */
		assert_true(pu.allowed);
		if (!opts->use_isolated)
			assert_false(pu.isolated);
		assert_false(pu_used[w[i].pu]);
		pu_used[w[i].pu] = true;
		assert_int_equal(w[i].core, pu.core);
		assert_int_equal(w[i].l3, pu.l3);
		assert_int_equal(w[i].node_idx, pu.node_idx);
		assert_int_equal(w[i].node, pu.node);
		if (!opts->smt) {
			assert_false(core_used[pu.core]);
			core_used[pu.core] = true;
		}
	}
	/* Steal orders: every other worker once, nearest first. */
	for (int i = 0; i < n; i++) {
		bool *seen = calloc((size_t)n, 1);

		assert_non_null(seen);
		assert_int_equal(w[i].steal_count, n - 1);
		for (int k = 0; k < w[i].steal_count; k++) {
			int v = w[i].steal_order[k];

			assert_true(v >= 0 && v < n && v != i);
			assert_false(seen[v]);
			seen[v] = true;
			if (k > 0) {
				const struct moirai_plan_worker *a = &w[w[i].steal_order[k - 1]];
				const struct moirai_plan_worker *b = &w[v];
				int ca = steal_class(&w[i], a), cb = steal_class(&w[i], b);

				assert_true(ca <= cb);
				if (ca == cb) {
					int da = steal_dist(t, &w[i], a),
					    db = steal_dist(t, &w[i], b);

					assert_true(da <= db);
					if (da == db)
						assert_true(w[i].steal_order[k - 1] < v);
				}
			}
		}
		free(seen);
	}
	/* Placement policy. */
	if (opts->policy == MOIRAI_PLAN_SPREAD && !opts->near_device) {
		/* The first k workers sit on k distinct nodes, k = nodes with slots. */
		int nn = moirai_topo_node_count(t) + 1, k = 0;
		bool *has = calloc((size_t)nn + 1, 1), *used = calloc((size_t)nn + 1, 1);

		assert_non_null(has);
		assert_non_null(used);
		for (int i = 0; i < n; i++)
			has[w[i].node_idx + 1] = true;
		for (int i = 0; i <= nn; i++)
			k += has[i];
		/* Only nodes that have a slot at all can be visited. */
		for (int i = 0; i < k && i < n; i++) {
			assert_false(used[w[i].node_idx + 1]);
			used[w[i].node_idx + 1] = true;
		}
		free(has);
		free(used);
	} else if (opts->policy == MOIRAI_PLAN_COMPACT) {
		/* Never come back to a node once left. */
		int nn = moirai_topo_node_count(t) + 1;
		bool *left = calloc((size_t)nn + 1, 1);

		assert_non_null(left);
		for (int i = 1; i < n; i++) {
			if (w[i].node_idx != w[i - 1].node_idx) {
				left[w[i - 1].node_idx + 1] = true;
				assert_false(left[w[i].node_idx + 1]);
			}
		}
		free(left);
	}
	free(w);
	free(pu_used);
	free(core_used);
	moirai_plan_destroy(p);
	moirai_plan_destroy(p2);
	return n;
}
