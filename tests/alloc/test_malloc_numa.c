/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The malloc drop-in's NUMA policy (docs/alloc.md, "NUMA policy"), with
 * plain malloc()/free(): this binary links libmoirai-malloc.a whole (the
 * Makefile), so its malloc is moirai's, as under LD_PRELOAD.  With one
 * thread pinned to each node that has CPUs:
 *  - every page of every block a thread mallocs (small, large, huge) is on
 *    the thread's node (move_pages);
 *  - blocks freed by the thread of another node go home: the freeing
 *    thread's next blocks are still on its own node, the owner's are on
 *    the owner's node, and the owner's node counts the remote frees;
 *  - a thread moved to another node gets memory of the new node for new
 *    allocations once it has taken a few slow paths.
 * Needs two nodes with CPUs (the 4-node VM, tests/vm/tests.list); skips on
 * a one-node box and in sanitizer builds (no drop-in there: the sanitizer
 * owns malloc).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moirai/alloc.h"
#include "moirai/numa.h"
#include "testutil.h"

#define MAXN   8
#define NBLK   48
#define REMOTE 200

static const size_t sizes[] = { 24, 64, 200, 1000, 5000, 30000, 100000, 3 << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static int ncpu_nodes;
static int node_of[MAXN]; /* node of each participant */
static int cpu_of[MAXN];  /* its first CPU */

static int first_cpu(int node)
{
	char path[96];
	int cpu = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &cpu) != 1)
		cpu = -1;
	fclose(f);
	return cpu;
}

static int pages_on(const char *p, size_t n, int node)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t first = (uintptr_t)p & ~(uintptr_t)(page - 1);
	int bad = 0;

	for (uintptr_t a = first; a < (uintptr_t)p + n; a += (uintptr_t)page)
		if (moirai_numa_page_node((const void *)a) != node)
			bad++;
	return bad;
}

/* Per participant: its blocks, handed to the next one to free. */
static char *blocks[MAXN][NBLK];
static pthread_barrier_t bar;
static _Atomic int misplaced, foreign_reuse;

static void alloc_check(int node, char **out, int n)
{
	for (int i = 0; i < n; i++) {
		size_t sz = sizes[i % NSIZES];
		char *p = malloc(sz);

		assert_non_null(p);
		memset(p, 0x5a, sz);
		int bad = pages_on(p, sz, node);

		if (moirai_alloc_ptr_node(p) != node || bad) {
			if (misplaced++ < 8)
				print_message(
					"block %d (%zu B): arena node %d, %d pages off node %d "
					"(thread on CPU %d)\n",
					i, sz, moirai_alloc_ptr_node(p), bad, node,
					moirai_numa_current_cpu());
		}
		out[i] = p;
	}
}

static void *participant(void *arg)
{
	int me = (int)(intptr_t)arg;
	int node = node_of[me];
	int next = (me + 1) % ncpu_nodes;
	char *again[NBLK];

	if (moirai_numa_pin_thread(cpu_of[me]) != 0)
		fail_msg("cannot pin to CPU %d: %s", cpu_of[me], moirai_last_error());
	alloc_check(node, blocks[me], NBLK);
	pthread_barrier_wait(&bar);
	/* Free the next node's blocks: remote frees, sent home. */
	for (int i = 0; i < NBLK; i++)
		free(blocks[next][i]);
	moirai_alloc_thread_flush();
	pthread_barrier_wait(&bar);
	/* New blocks are still ours, never the other node's just freed. */
	alloc_check(node, again, NBLK);
	for (int i = 0; i < NBLK; i++)
		for (int k = 0; k < NBLK; k++)
			if (again[i] == blocks[next][k] && moirai_alloc_ptr_node(again[i]) != node)
				foreign_reuse++;
	for (int i = 0; i < NBLK; i++)
		free(again[i]);
	return NULL;
}

static void test_pinned_threads(void **state)
{
	pthread_t t[MAXN];
	struct moirai_alloc_stats before[MAXN], after;

	(void)state;
	for (int i = 0; i < ncpu_nodes; i++)
		assert_int_equal(moirai_alloc_stats_get(node_of[i], &before[i]), 0);
	pthread_barrier_init(&bar, NULL, (unsigned)ncpu_nodes);
	for (int i = 0; i < ncpu_nodes; i++)
		assert_int_equal(pthread_create(&t[i], NULL, participant, (void *)(intptr_t)i), 0);
	for (int i = 0; i < ncpu_nodes; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(misplaced, 0);
	assert_int_equal(foreign_reuse, 0);
	/* Each node's blocks came home as remote frees (small and large ones). */
	for (int i = 0; i < ncpu_nodes; i++) {
		assert_int_equal(moirai_alloc_stats_get(node_of[i], &after), 0);
		print_message("node %d: remote frees %llu -> %llu\n", node_of[i],
			      (unsigned long long)before[i].remote_frees,
			      (unsigned long long)after.remote_frees);
		assert_true(after.remote_frees >= before[i].remote_frees + NBLK * 6 / 8);
	}
}

static void *migrant(void *arg)
{
	char *p[NBLK];

	(void)arg;
	if (moirai_numa_pin_thread(cpu_of[0]) != 0)
		fail_msg("cannot pin to CPU %d: %s", cpu_of[0], moirai_last_error());
	alloc_check(node_of[0], p, NBLK);
	for (int i = 0; i < NBLK; i++)
		free(p[i]);
	/* Moved: its slow paths notice the new node (64 of them at most). */
	if (moirai_numa_pin_thread(cpu_of[1]) != 0)
		fail_msg("cannot pin to CPU %d: %s", cpu_of[1], moirai_last_error());
	for (int i = 0; i < REMOTE; i++) {
		/* A large block: every call a slow path (volatile: not elided). */
		char *volatile big = malloc(200000);

		assert_non_null(big);
		big[0] = 1;
		free(big);
	}
	alloc_check(node_of[1], p, NBLK);
	for (int i = 0; i < NBLK; i++)
		free(p[i]);
	return NULL;
}

static void test_migrated_thread(void **state)
{
	pthread_t t;

	(void)state;
	misplaced = 0;
	assert_int_equal(pthread_create(&t, NULL, migrant, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(misplaced, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pinned_threads),
		cmocka_unit_test(test_migrated_thread),
	};
	static void *volatile probe;

	probe = malloc(64);
	if (moirai_alloc_ptr_node(probe) < 0) {
		printf("skipped: malloc is not moirai's here (sanitizer build: no drop-in)\n");
		return 0;
	}
	free(probe);
	for (int n = 0; n < moirai_numa_node_count() && ncpu_nodes < MAXN; n++) {
		int cpu = first_cpu(n);

		if (cpu >= 0 && moirai_alloc_node_is_available(n)) {
			node_of[ncpu_nodes] = n;
			cpu_of[ncpu_nodes] = cpu;
			ncpu_nodes++;
		}
	}
	if (ncpu_nodes < 2) {
		printf("skipped: needs two NUMA nodes with CPUs and memory (%d here; the 4-node VM "
		       "runs it)\n",
		       ncpu_nodes);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
