/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime's NUMA behaviour on the live machine (one node on the host;
 * four in the qemu guest of make check-numa, whose distances are 20 within
 * a pair and 30 across): every worker runs on its planned node and keeps
 * its state, its queues and the descriptors of the tasks it spawns there
 * (move_pages), a dry worker steals from the nearest node first as the
 * distance matrix says, and a loop over a node's data starts on that node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt_int.h"
#include "testutil.h"

static int page_node(const void *p)
{
	int n = moirai_numa_page_node(p);

	if (n < 0)
		fail_msg("move_pages on %p: %d (%s)", p, n, moirai_last_error());
	return n;
}

struct probe {
	struct moirai_rt *rt;
	int node_now;  /* node the task ran on */
	int desc_node; /* node of the descriptor of a task it spawned */
};

static int noop(void *arg)
{
	(void)arg;
	return 0;
}

static int probe_task(void *arg)
{
	struct probe *p = arg;
	struct moirai_task *h;
	uint16_t gen;

	p->node_now = moirai_numa_current_node();
	/* A spawn from a worker takes a descriptor from its node's pool. */
	assert_int_equal(moirai_rt_spawn(p->rt, noop, NULL, NULL, &h), 0);
	p->desc_node = page_node(rt_task_of(h, &gen));
	assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	return 0;
}

static void test_worker_memory_on_node(void **state)
{
	struct moirai_rt_config cfg = {
		.plan = &(struct moirai_plan_opts){ .policy = MOIRAI_PLAN_SPREAD },
	};
	struct moirai_rt *rt;
	int n, nodes_seen = 0;
	bool seen[64] = { false };

	(void)state;
	assert_int_equal(moirai_rt_create(&cfg, &rt), 0);
	n = moirai_rt_worker_count(rt);
	for (int i = 0; i < n; i++) {
		struct rt_worker *w = rt->w[i];
		struct moirai_rt_worker_info wi;
		struct probe p = { rt, -1, -1 };
		struct moirai_task *h;
		struct moirai_ring_info ri;

		assert_int_equal(moirai_rt_worker_info(rt, i, &wi), 0);
		/* State the worker allocated itself, after pinning. */
		assert_int_equal(page_node(w), wi.node);
		assert_int_equal(page_node(&w->c), wi.node);
		assert_int_equal(page_node((const void *)w->dq[2].slots), wi.node);
		assert_int_equal(moirai_ring_info(w->mbox[0], &ri), 0);
		assert_int_equal(ri.node, wi.node);
		assert_int_equal(moirai_pool_node(w->home->pool), wi.node);
		assert_int_equal(moirai_rt_spawn(rt, probe_task, &p,
						 &(struct moirai_spawn_opts){
							 .flags = MOIRAI_SPAWN_F_WORKER |
								  MOIRAI_SPAWN_F_STRICT,
							 .worker = i },
						 &h),
				 0);
		assert_int_equal(moirai_task_join(h, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
		assert_int_equal(p.node_now, wi.node);
		assert_int_equal(p.desc_node, wi.node);
		if (wi.node < 64 && !seen[wi.node]) {
			seen[wi.node] = true;
			nodes_seen++;
		}
	}
	/* Spread: one worker per node before any node gets a second. */
	if (n >= moirai_numa_node_count())
		assert_int_equal(nodes_seen, moirai_numa_node_count());
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static int log_id = -1;

static int record(void *arg)
{
	log_id = (int)(intptr_t)arg;
	return 0;
}

/*
 * One worker per node, a task queued on every other worker: the dry
 * worker 0 takes its first task from the worker on the nearest node (by
 * the live distance matrix), then the next nearest, never a farther one
 * while a nearer one has work.
 */
static void test_steal_nearest_node(void **state)
{
	struct moirai_rt_config cfg = {
		.plan = &(struct moirai_plan_opts){ .policy = MOIRAI_PLAN_SPREAD },
	};
	struct moirai_topo *topo;
	struct moirai_rt *rt;
	int n, prev_dist = 0;

	(void)state;
	assert_int_equal(moirai_topo_load_live(&topo), 0);
	cfg.topo = topo;
	assert_int_equal(moirai__rt_create_manual(&cfg, NULL, &rt), 0);
	n = rt->nworkers;
	if (n < 2) {
		moirai_rt_destroy(rt);
		moirai_topo_destroy(topo);
		skip();
	}
	for (int i = 1; i < n; i++) {
		moirai__rt_bind_thread(rt, i);
		assert_int_equal(moirai_rt_spawn(rt, record, (void *)(intptr_t)i, NULL, NULL), 0);
	}
	moirai__rt_bind_thread(rt, 0);
	for (int k = 1; k < n; k++) {
		struct rt_step st;
		int v, d;

		log_id = -1;
		rt_step(rt->w[0], rt->clock(), 1, &st);
		v = log_id;
		assert_true(v >= 1 && v < n);
		d = moirai_topo_distance(topo, rt->w[0]->node_idx, rt->w[v]->node_idx);
		/* Never farther than a victim that still had work. */
		for (int j = 1; j < n; j++) {
			if (rt_deque_size(&rt->w[j]->dq[2]) == 0)
				continue;
			assert_true(moirai_topo_distance(topo, rt->w[0]->node_idx,
							 rt->w[j]->node_idx) >= d);
		}
		assert_true(d >= prev_dist);
		prev_dist = d;
	}
	moirai__rt_bind_thread(NULL, -1);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	moirai_topo_destroy(topo);
}

struct first_chunk {
	_Atomic int node; /* where the chunk holding index 0 ran */
	_Atomic int chunks;
};

static void mark_first(size_t begin, size_t end, void *arg)
{
	struct first_chunk *f = arg;

	(void)end;
	if (begin == 0)
		atomic_store(&f->node, moirai_numa_current_node());
	atomic_fetch_add(&f->chunks, 1);
}

/*
 * A loop over data in a node arena, started from a foreign thread with the
 * data's node as its affinity (moirai_alloc_ptr_node, as task.h says):
 * its root runs on that node's worker, which keeps the leftmost chunk, so
 * index 0 is processed there whatever the other workers steal.  Every
 * node that has a worker, data allocated on each in turn.
 */
static void test_loop_starts_on_data_node(void **state)
{
	struct moirai_rt_config cfg = {
		.plan = &(struct moirai_plan_opts){ .policy = MOIRAI_PLAN_SPREAD },
	};
	enum { N = 1 << 16 };
	bool has_worker[64] = { false };
	struct moirai_rt *rt;

	(void)state;
	assert_int_equal(moirai_rt_create(&cfg, &rt), 0);
	for (int i = 0; i < moirai_rt_worker_count(rt); i++) {
		struct moirai_rt_worker_info wi;

		assert_int_equal(moirai_rt_worker_info(rt, i, &wi), 0);
		if (wi.node >= 0 && wi.node < 64)
			has_worker[wi.node] = true;
	}
	for (int node = 0; node < 64; node++) {
		if (!has_worker[node])
			continue;
		uint32_t *data = moirai_malloc_node(N * sizeof(*data), node);
		struct first_chunk f = { -1, 0 };

		assert_non_null(data);
		memset(data, 0, N * sizeof(*data)); /* first touch: the pages exist */
		assert_int_equal(moirai_alloc_ptr_node(data), node);
		assert_int_equal(moirai_parallel_for(rt, 0, N, N / 16, mark_first, &f,
						     &(struct moirai_spawn_opts){
							     /* Strict: as a hint, a sibling
							      * may take the root out of a
							      * mailbox while its worker still
							      * ends the last loop's task. */
							     .flags = MOIRAI_SPAWN_F_NODE |
								      MOIRAI_SPAWN_F_STRICT,
							     .node = moirai_alloc_ptr_node(data) }),
				 0);
		assert_int_equal(atomic_load(&f.node), node);
		assert_int_equal(atomic_load(&f.chunks), 16);
		moirai_free(data);
	}
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_memory_on_node),
		cmocka_unit_test(test_steal_nearest_node),
		cmocka_unit_test(test_loop_starts_on_data_node),
	};

	return cmocka_run_group_tests_name("rt_numa", tests, NULL, NULL);
}
