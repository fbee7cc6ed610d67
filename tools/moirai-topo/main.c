/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-topo: print the machine as moirai sees it and, with --plan, the
 * pinning plan.  For people first (a tree and a worker table), for scripts
 * second (--json: one document, the contract in docs/architecture.md).
 * Exit status: 0 success, 1 runtime failure, 2 bad input or usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moirai.h>
#include "../tool_json.h"

struct args {
	const char *input, *synthetic, *near;
	int workers; /* -1: no plan, 0: all */
	bool json, smt, reserve_per_node, isolated, alloc_stats;
	int reserve;
	enum moirai_plan_policy policy;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moirai-topo [--input FILE.xml | --synthetic DESC] [--plan N|all]\n"
		"                   [--policy compact|spread] [--smt] [--near DEVICE]\n"
		"                   [--reserve K] [--reserve-per-node] [--isolated]\n"
		"                   [--alloc-stats] [--json]\n"
		"\n"
		"Prints the machine (packages, NUMA nodes, L3 domains, cores, PUs, distances,\n"
		"usable CPUs, devices) and, with --plan, where each worker runs.\n"
		"\n"
		"  --input FILE      load an hwloc XML export instead of this machine\n"
		"  --synthetic DESC  load an hwloc synthetic topology, e.g. \"pack:2 numa:2 core:4 "
		"pu:2\"\n"
		"                    (without either, MOIRAI_TOPOLOGY is used if set, else this "
		"machine)\n"
		"  --plan N|all      plan N workers, or one per usable core (per PU with --smt)\n"
		"  --policy P        compact (fill one L3/node first, default) or spread\n"
		"                    (round-robin across nodes, then L3s)\n"
		"  --smt             allow SMT siblings (default: one worker per physical core)\n"
		"  --near DEVICE     put workers on DEVICE's NUMA node first (e.g. eth0, mlx5_0)\n"
		"  --reserve K       keep the first K usable cores free for housekeeping\n"
		"  --reserve-per-node keep the first usable core of every node free\n"
		"  --isolated        also plan CPUs isolated with isolcpus=/nohz_full= "
		"(data-plane\n"
		"                    cores are usually isolated on purpose; they are skipped by "
		"default)\n"
		"  --alloc-stats     probe the allocator on every live node (one small block\n"
		"                    each) and print its arenas: availability, page mode\n"
		"                    (hugetlb/thp/none), reserved, committed and in-use bytes\n"
		"  --json            one JSON document on stdout\n"
		"  -V, --version     print the version and exit\n"
		"  -h, --help        print this help and exit\n"
		"Exit status: 0 ok, 1 runtime failure, 2 bad input.\n");
}

static int bad(const char *fmt, const char *what)
{
	fprintf(stderr, "moirai-topo: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	return 2;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "synthetic", required_argument, NULL, 's' },
		{ "plan", required_argument, NULL, 'p' },
		{ "policy", required_argument, NULL, 'P' },
		{ "smt", no_argument, NULL, 'S' },
		{ "near", required_argument, NULL, 'n' },
		{ "reserve", required_argument, NULL, 'r' },
		{ "reserve-per-node", no_argument, NULL, 'R' },
		{ "isolated", no_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'j' },
		{ "alloc-stats", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;
	char *end;

	*a = (struct args){ .workers = -1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'i': a->input = optarg; break;
		case 's': a->synthetic = optarg; break;
		case 'p':
			if (!strcmp(optarg, "all")) {
				a->workers = 0;
				break;
			}
			errno = 0;
			a->workers = (int)strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || a->workers <= 0)
				return bad(
					"--plan takes a positive worker count or 'all', not '%s'",
					optarg);
			break;
		case 'P':
			if (moirai_plan_policy_parse(optarg, &a->policy))
				return bad("unknown policy '%s' (compact or spread)", optarg);
			break;
		case 'S': a->smt = true; break;
		case 'n': a->near = optarg; break;
		case 'r':
			errno = 0;
			a->reserve = (int)strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || a->reserve < 0)
				return bad("--reserve takes a core count >= 0, not '%s'", optarg);
			break;
		case 'R': a->reserve_per_node = true; break;
		case 'I': a->isolated = true; break;
		case 'j': a->json = true; break;
		case 'A': a->alloc_stats = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("moirai-topo %s\n", moirai_version()); exit(0);
		default:
			return bad("unknown or incomplete option '%s' (see --help)",
				   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s' (see --help)", argv[optind]);
	if (a->input && a->synthetic)
		return bad("%s", "--input and --synthetic are exclusive");
	if (a->workers < 0 && (a->near || a->smt || a->reserve || a->reserve_per_node ||
			       a->isolated || a->policy != MOIRAI_PLAN_COMPACT))
		a->workers = 0; /* planning options imply --plan all */
	return 0;
}

static const char *source_name(enum moirai_topo_source s)
{
	return s == MOIRAI_TOPO_XML ? "xml" : s == MOIRAI_TOPO_SYNTHETIC ? "synthetic" : "live";
}

static int *node_pus(const struct moirai_topo *t, int node, int *count)
{
	int n = moirai_topo_node_pus(t, node, NULL, 0);
	int *pus = calloc((size_t)(n > 0 ? n : 1), sizeof(int));

	if (pus && n > 0)
		moirai_topo_node_pus(t, node, pus, n);
	*count = n > 0 ? n : 0;
	return pus;
}

/*
 * The allocator's view of the live machine: touch every node once so each
 * arena starts and shows the page mode it really gets here.
 */
static void alloc_probe(void)
{
	for (int n = 0; n < moirai_numa_node_count(); n++) {
		void *p;

		if (!moirai_alloc_node_is_available(n))
			continue;
		p = moirai_malloc_node(64, n);
		moirai_free(p);
	}
}

static void print_alloc_json(void)
{
	printf(",\n  \"alloc\": [");
	for (int n = 0; n < moirai_numa_node_count(); n++) {
		struct moirai_alloc_stats st;

		if (moirai_alloc_stats_get(n, &st))
			continue;
		printf("%s\n    { \"node\": %d, \"available\": %s, \"page_mode\": \"%s\","
		       " \"reserved\": %llu, \"committed\": %llu, \"committed_hugetlb\": %llu,"
		       " \"committed_thp\": %llu, \"committed_small\": %llu, \"in_use\": %llu,"
		       " \"free\": %llu, \"local_frees\": %llu, \"remote_frees\": %llu }",
		       n ? "," : "", st.node, st.available ? "true" : "false",
		       st.page_mode ? st.page_mode : "none", (unsigned long long)st.reserved,
		       (unsigned long long)st.committed, (unsigned long long)st.committed_hugetlb,
		       (unsigned long long)st.committed_thp, (unsigned long long)st.committed_small,
		       (unsigned long long)st.in_use, (unsigned long long)st.free,
		       (unsigned long long)st.local_frees, (unsigned long long)st.remote_frees);
	}
	printf("\n  ]");
}

static void print_json(const struct moirai_topo *t, const struct moirai_plan *p,
		       const struct args *a)
{
	int nn = moirai_topo_node_count(t);

	printf("{\n  \"source\": \"%s\",\n", source_name(moirai_topo_source(t)));
	printf("  \"packages\": %d, \"numa_nodes\": %d, \"l3_domains\": %d,\n",
	       moirai_topo_package_count(t), nn, moirai_topo_l3_count(t));
	printf("  \"cores\": %d, \"pus\": %d, \"allowed_pus\": %d,\n", moirai_topo_core_count(t),
	       moirai_topo_pu_count(t), moirai_topo_allowed_pu_count(t));
	printf("  \"nodes\": [");
	for (int i = 0; i < nn; i++) {
		struct moirai_topo_node nd;
		int cnt, *pus = node_pus(t, i, &cnt);

		moirai_topo_node(t, i, &nd);
		printf("%s\n    { \"os_index\": %d, \"memory_bytes\": %llu, \"mem_allowed\": %s,"
		       " \"hugepages_2m_free\": %lld, \"hugepages_1g_free\": %lld, \"pus\": [",
		       i ? "," : "", nd.os_index, (unsigned long long)nd.memory_bytes,
		       nd.mem_allowed ? "true" : "false", (long long)nd.hugepages_2m_free,
		       (long long)nd.hugepages_1g_free);
		for (int k = 0; pus && k < cnt; k++)
			printf("%s%d", k ? ", " : "", pus[k]);
		printf("] }");
		free(pus);
	}
	printf("\n  ],\n  \"distances\": ");
	if (moirai_topo_has_distances(t)) {
		printf("[");
		for (int i = 0; i < nn; i++) {
			printf("%s[", i ? ", " : "");
			for (int j = 0; j < nn; j++)
				printf("%s%d", j ? ", " : "", moirai_topo_distance(t, i, j));
			printf("]");
		}
		printf("],\n");
	} else {
		printf("null,\n");
	}
	printf("  \"isolated_pus\": [");
	for (int i = 0, k = 0; i < moirai_topo_pu_count(t); i++) {
		struct moirai_topo_pu pu;

		moirai_topo_pu(t, i, &pu);
		if (pu.isolated)
			printf("%s%d", k++ ? ", " : "", pu.os_index);
	}
	printf("],\n  \"cpu_quota_milli\": ");
	if (moirai_topo_cpu_quota_milli(t) >= 0)
		printf("%ld,\n", moirai_topo_cpu_quota_milli(t));
	else
		printf("null,\n");
	printf("  \"devices\": [");
	for (int i = 0; i < moirai_topo_device_count(t); i++) {
		struct moirai_topo_device d;

		moirai_topo_device(t, i, &d);
		printf("%s\n    { \"name\": ", i ? "," : "");
		tool_json_str(stdout, d.name);
		printf(", \"kind\": \"%s\", \"node\": %d }", d.kind, d.node);
	}
	printf("%s]", moirai_topo_device_count(t) ? "\n  " : "");
	if (a->alloc_stats)
		print_alloc_json();
	if (p) {
		printf(",\n  \"plan\": { \"policy\": \"%s\", \"smt\": %s, \"workers\": [",
		       moirai_plan_policy_name(a->policy), a->smt ? "true" : "false");
		for (int w = 0; w < moirai_plan_worker_count(p); w++) {
			struct moirai_plan_worker pw;

			moirai_plan_worker(p, w, &pw);
			printf("%s\n    { \"worker\": %d, \"pu\": %d, \"core\": %d, \"node\": %d,"
			       " \"l3\": %d, \"steal_order\": [",
			       w ? "," : "", pw.worker, pw.pu, pw.core, pw.node, pw.l3);
			for (int k = 0; k < pw.steal_count; k++)
				printf("%s%d", k ? ", " : "", pw.steal_order[k]);
			printf("] }");
		}
		printf("\n  ] }");
	}
	printf("\n}\n");
}

static void print_size(unsigned long long b)
{
	if (b >= 1ULL << 30)
		printf("%.1f GiB", (double)b / (double)(1ULL << 30));
	else
		printf("%.0f MiB", (double)b / (double)(1ULL << 20));
}

static void print_tree(const struct moirai_topo *t)
{
	int nn = moirai_topo_node_count(t), npu = moirai_topo_pu_count(t);

	printf("Machine (%s): %d package(s), %d NUMA node(s), %d L3 domain(s), %d cores, %d PUs, "
	       "%d usable\n",
	       source_name(moirai_topo_source(t)), moirai_topo_package_count(t), nn,
	       moirai_topo_l3_count(t), moirai_topo_core_count(t), npu,
	       moirai_topo_allowed_pu_count(t));
	printf("  (os = OS number, as taskset and numactl take it; idx = moirai's logical "
	       "index)\n");
	/* n == nn collects PUs that no NUMA node claims (partial XML exports). */
	for (int n = 0; n <= nn; n++) {
		struct moirai_topo_node nd;
		int last_l3 = -2, last_core = -1;
		bool orphans = false;

		if (n == nn) {
			for (int i = 0; i < npu; i++) {
				struct moirai_topo_pu pu;

				moirai_topo_pu(t, i, &pu);
				orphans |= pu.node_idx < 0;
			}
			if (!orphans)
				break;
			printf("  PUs without a NUMA node\n");
		} else {
			moirai_topo_node(t, n, &nd);
			printf("  NUMA node os %d (idx %d", nd.os_index, n);
			if (nd.package >= 0)
				printf(", package idx %d", nd.package);
			printf("): ");
			print_size(nd.memory_bytes);
			if (!nd.mem_allowed)
				printf(", memory not allowed by cgroup");
			if (nd.hugepages_2m_free >= 0)
				printf(", hugepages free: %lld x 2M, %lld x 1G",
				       (long long)nd.hugepages_2m_free,
				       (long long)nd.hugepages_1g_free);
			if (nd.pu_count == 0)
				printf(", memory only");
			printf("\n");
		}
		for (int i = 0; i < npu; i++) {
			struct moirai_topo_pu pu;

			moirai_topo_pu(t, i, &pu);
			if (pu.node_idx != (n == nn ? -1 : n))
				continue;
			if (pu.l3 != last_l3) {
				if (last_core >= 0)
					printf("\n");
				if (pu.l3 >= 0)
					printf("    L3 idx %d\n", pu.l3);
				last_l3 = pu.l3;
				last_core = -1;
			}
			if (pu.core != last_core) {
				printf("%s      core idx %-4d PU os", last_core >= 0 ? "\n" : "",
				       pu.core);
				last_core = pu.core;
			}
			printf(" %d%s%s", pu.os_index, pu.allowed ? "" : "(not usable)",
			       pu.isolated ? "(isolated)" : "");
		}
		if (last_core >= 0)
			printf("\n");
	}
	if (moirai_topo_has_distances(t)) {
		printf("  Distances (rows and columns: NUMA node os numbers):\n      ");
		for (int j = 0; j < nn; j++) {
			struct moirai_topo_node nd;

			moirai_topo_node(t, j, &nd);
			printf("%5d", nd.os_index);
		}
		printf("\n");
		for (int i = 0; i < nn; i++) {
			struct moirai_topo_node nd;

			moirai_topo_node(t, i, &nd);
			printf("  %3d ", nd.os_index);
			for (int j = 0; j < nn; j++)
				printf("%5d", moirai_topo_distance(t, i, j));
			printf("\n");
		}
	}
	for (int i = 0; i < moirai_topo_device_count(t); i++) {
		struct moirai_topo_device d;

		moirai_topo_device(t, i, &d);
		if (d.node >= 0)
			printf("  Device %-10s %-12s node os %d (idx %d)\n", d.name, d.kind, d.node,
			       d.node_idx);
		else
			printf("  Device %-10s %-12s node unknown\n", d.name, d.kind);
	}
	if (moirai_topo_cpu_quota_milli(t) >= 0)
		printf("  cgroup CPU quota: %.2f CPUs\n",
		       (double)moirai_topo_cpu_quota_milli(t) / 1000);
}

static void print_plan(const struct moirai_plan *p, const struct args *a)
{
	printf("\nPlan: %d workers, policy %s, %s\n", moirai_plan_worker_count(p),
	       moirai_plan_policy_name(a->policy),
	       a->smt ? "SMT siblings allowed" : "one per physical core");
	printf("  %-6s %-6s %-9s %-8s %-7s  %s\n", "worker", "pu os", "core idx", "node os",
	       "l3 idx", "steal order (workers)");
	for (int w = 0; w < moirai_plan_worker_count(p); w++) {
		struct moirai_plan_worker pw;

		moirai_plan_worker(p, w, &pw);
		printf("  %-6d %-6d %-9d %-8d %-7d ", pw.worker, pw.pu, pw.core, pw.node, pw.l3);
		for (int k = 0; k < pw.steal_count && k < 16; k++)
			printf(" %d", pw.steal_order[k]);
		if (pw.steal_count > 16)
			printf(" ... (%d)", pw.steal_count);
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	struct args a;
	struct moirai_topo *t = NULL;
	struct moirai_plan *p = NULL;
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	if (a.input)
		rc = moirai_topo_load_xml(a.input, &t);
	else if (a.synthetic)
		rc = moirai_topo_load_synthetic(a.synthetic, &t);
	else
		rc = moirai_topo_load(&t);
	if (rc) {
		fprintf(stderr, "moirai-topo: %s\n",
			*moirai_last_error() ? moirai_last_error() : moirai_strerror(rc));
		/*
		 * A bad file or description is bad input; a missing hwloc plugin
		 * (-ENOTSUP) or anything else is a runtime failure.
		 */
		return (rc == -EINVAL || rc == -ENOENT) ? 2 : 1;
	}
	if (a.workers >= 0) {
		struct moirai_plan_opts o = {
			.workers = a.workers,
			.policy = a.policy,
			.smt = a.smt,
			.reserve = a.reserve,
			.reserve_per_node = a.reserve_per_node,
			.use_isolated = a.isolated,
			.near_device = a.near,
		};

		rc = moirai_plan_create(t, &o, &p);
		if (rc) {
			fprintf(stderr, "moirai-topo: %s\n", moirai_last_error());
			moirai_topo_destroy(t);
			return rc == -ENOMEM ? 1 : 2;
		}
	}
	if (a.alloc_stats) {
		if (moirai_topo_source(t) != MOIRAI_TOPO_LIVE) {
			fprintf(stderr, "moirai-topo: --alloc-stats needs the live machine, not "
					"--input/--synthetic\n");
			moirai_plan_destroy(p);
			moirai_topo_destroy(t);
			return 2;
		}
		alloc_probe();
	}
	if (a.json) {
		print_json(t, p, &a);
	} else {
		print_tree(t);
		if (p)
			print_plan(p, &a);
		if (a.alloc_stats) {
			printf("\nAllocator (after one 64-byte probe per node):\n");
			if (moirai_alloc_stats_print(stdout))
				fprintf(stderr, "moirai-topo: %s\n", moirai_last_error());
		}
	}
	moirai_plan_destroy(p);
	moirai_topo_destroy(t);
	return 0;
}
