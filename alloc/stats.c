/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Allocator statistics: per node (the arena plus every heap of the node)
 * and per heap, read from relaxed counters that their single writers keep
 * up to date, so a reader never takes a lock held on an allocation path
 * except the arena lock to walk the (never shrinking) heap list.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc_int.h"

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void heap_add(const struct heap *h, struct moirai_alloc_stats *out)
{
	out->in_use += LD(h->st.in_use);
	out->local_frees += LD(h->st.local_frees);
	out->local_frees += LD(h->bin_frees);
	out->remote_frees += LD(h->st.remote_frees);
}

static void arena_fill(struct arena *a, struct moirai_alloc_stats *out)
{
	out->node = a->node;
	out->available = LD(a->available);
	out->page_mode = moirai__mode_name((int)a->mode);
	out->reserved = LD(a->reserved);
	out->committed = LD(a->committed);
	out->committed_hugetlb = LD(a->committed_mode[MODE_HUGETLB]);
	out->committed_thp = LD(a->committed_mode[MODE_THP]);
	out->committed_small = LD(a->committed_mode[MODE_SMALL]);
	out->huge_in_use = LD(a->huge_in_use);
	out->decommitted = LD(a->decommitted);
	out->hugetlb_fallbacks = LD(a->hugetlb_fallbacks);
	out->preferred_fallbacks = LD(a->preferred_fallbacks);
	out->heaps = LD(a->nheaps);
	out->heaps_abandoned = LD(a->nabandoned);
	out->local_frees = LD(a->huge_frees);
	out->remote_frees = LD(a->huge_remote_frees);
	out->in_use = out->huge_in_use;
}

static void finish(struct moirai_alloc_stats *out)
{
	out->free = out->committed > out->in_use ? out->committed - out->in_use : 0;
}

/* The node vocabulary: -EINVAL not a node number, -ENODEV no such node. */
/*
 * Every node with an arena has stats, usable or not (available says
 * which); any other gets the resolver's verdict, as documented: -EINVAL
 * not a node number, -ENODEV otherwise (a node outside the arenas that the
 * cgroup also forbids is still "no such node" here).
 */
static int check_node(int node)
{
	int rc;

	if (node >= 0 && node < moirai__alloc_nodes)
		return 0;
	rc = moirai__alloc_node_refusal("alloc stats", node);
	return rc == -EINVAL ? rc : -ENODEV;
}

static int node_stats(int node, struct moirai_alloc_stats *out)
{
	struct arena *a = moirai__arenas[node];

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&a->lock);
	arena_fill(a, out);
	for (struct heap *h = a->heaps; h; h = h->next_all)
		heap_add(h, out);
	pthread_mutex_unlock(&a->lock);
	finish(out);
	return 0;
}

int moirai_alloc_stats_get(int node, struct moirai_alloc_stats *out)
{
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "alloc stats: NULL output");
	rc = moirai__alloc_init();
	if (rc)
		return rc;
	if (node == MOIRAI_NODE_ANY) {
		struct moirai_alloc_stats one;

		memset(out, 0, sizeof(*out));
		out->node = MOIRAI_NODE_ANY;
		out->page_mode = NULL;
		for (int n = 0; n < moirai__alloc_nodes; n++) {
			node_stats(n, &one);
			/* The nodes' common mode, or "mixed" when they differ. */
			if (!out->page_mode)
				out->page_mode = one.page_mode;
			else if (one.page_mode && strcmp(out->page_mode, one.page_mode))
				out->page_mode = "mixed";
			out->available |= one.available;
			out->reserved += one.reserved;
			out->committed += one.committed;
			out->committed_hugetlb += one.committed_hugetlb;
			out->committed_thp += one.committed_thp;
			out->committed_small += one.committed_small;
			out->in_use += one.in_use;
			out->huge_in_use += one.huge_in_use;
			out->decommitted += one.decommitted;
			out->local_frees += one.local_frees;
			out->remote_frees += one.remote_frees;
			out->hugetlb_fallbacks += one.hugetlb_fallbacks;
			out->preferred_fallbacks += one.preferred_fallbacks;
			out->heaps += one.heaps;
			out->heaps_abandoned += one.heaps_abandoned;
		}
		if (!out->page_mode)
			out->page_mode = "none";
		/* The part of the window no node has carved yet is reserved too. */
		out->reserved += moirai__window_free_bytes();
		finish(out);
		return 0;
	}
	rc = check_node(node);
	if (rc)
		return rc;
	return node_stats(node, out);
}

int moirai_alloc_heap_stats_get(int node, struct moirai_alloc_stats *out)
{
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "alloc stats: NULL output");
	rc = moirai__alloc_init();
	if (rc)
		return rc;
	rc = check_node(node);
	if (rc)
		return rc;
	struct heap *h = moirai__tld.heaps[node];

	if (!h)
		return moirai__err(-ENOENT, "alloc stats: this thread has no heap on node %d",
				   node);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&h->arena->lock);
	arena_fill(h->arena, out);
	pthread_mutex_unlock(&h->arena->lock);
	out->in_use = 0;
	out->local_frees = 0;
	out->remote_frees = 0;
	heap_add(h, out);
	out->committed = LD(h->st.slab_bytes);
	finish(out);
	return 0;
}

bool moirai_alloc_node_is_available(int node)
{
	if (moirai__alloc_init() != 0 || node < 0 || node >= moirai__alloc_nodes)
		return false;
	return LD(moirai__arenas[node]->available);
}

static int write_error(void)
{
	return moirai__err(-EIO, "alloc stats: cannot write: %s", moirai_strerror(errno));
}

static int print_row(FILE *f, const char *name, const struct moirai_alloc_stats *s)
{
	const double mib = 1024.0 * 1024.0;

	return fprintf(f,
		       "%-6s %-5s %-7s %10.1f %10.1f %9.1f %9.1f %9.1f %9.1f %9.1f %12" PRIu64
		       " %12" PRIu64 " %6" PRIu64 "\n",
		       name, s->available ? "yes" : "no", s->page_mode, (double)s->reserved / mib,
		       (double)s->committed / mib, (double)s->committed_hugetlb / mib,
		       (double)s->committed_thp / mib, (double)s->committed_small / mib,
		       (double)s->in_use / mib, (double)s->free / mib, s->local_frees,
		       s->remote_frees, s->heaps) < 0
		       ? write_error()
		       : 0;
}

int moirai_alloc_stats_print(FILE *f)
{
	struct moirai_alloc_stats s;
	char name[16];
	int rc;

	if (!f)
		return moirai__err(-EINVAL, "alloc stats: NULL stream");
	rc = moirai__alloc_init();
	if (rc)
		return rc;
	if (fprintf(f, "%-6s %-5s %-7s %10s %10s %9s %9s %9s %9s %9s %12s %12s %6s\n", "node",
		    "avail", "pages", "rsv MiB", "commit MiB", "hugetlb", "thp", "4k", "in use",
		    "free", "local frees", "remote frees", "heaps") < 0)
		return write_error();
	for (int n = 0; n < moirai__alloc_nodes; n++) {
		node_stats(n, &s);
		snprintf(name, sizeof(name), "%d", n);
		rc = print_row(f, name, &s);
		if (rc)
			return rc;
	}
	moirai_alloc_stats_get(MOIRAI_NODE_ANY, &s);
	return print_row(f, "total", &s);
}
