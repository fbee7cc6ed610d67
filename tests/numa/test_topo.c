/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Topology probe: synthetic topologies of our own (SMT on/off, several
 * packages, several nodes per package, missing levels), the real machines
 * in tests/data/topologies checked against hwloc's own tools as an oracle,
 * and bad input (missing, truncated and garbage XML, random synthetic
 * strings) that must give errors, never crashes.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <moirai/numa.h>

#include "internal.h"
#include "numa_int.h"
#include "plan_check.h"
#include "testutil.h"

static struct moirai_topo *load_syn(const char *desc)
{
	struct moirai_topo *t = NULL;

	assert_int_equal(moirai_topo_load_synthetic(desc, &t), 0);
	assert_non_null(t);
	assert_int_equal(moirai_topo_source(t), MOIRAI_TOPO_SYNTHETIC);
	return t;
}

static void plan_all_ways(const struct moirai_topo *t)
{
	for (int pol = 0; pol < 2; pol++)
		for (int smt = 0; smt < 2; smt++) {
			struct moirai_plan_opts o = { .policy = pol, .smt = smt };

			assert_int_equal(check_plan(t, &o), usable_slots(t, smt, false));
		}
}

/* 2 packages x 2 nodes, one L3 per node, 4 cores of 2 PUs. */
static void test_syn_smt_multi_node(void **state)
{
	struct moirai_topo *t = load_syn("pack:2 numa:2 l3:1 core:4 pu:2");
	int pus[64];

	(void)state;
	assert_int_equal(moirai_topo_package_count(t), 2);
	assert_int_equal(moirai_topo_node_count(t), 4);
	assert_int_equal(moirai_topo_l3_count(t), 4);
	assert_int_equal(moirai_topo_core_count(t), 16);
	assert_int_equal(moirai_topo_pu_count(t), 32);
	assert_int_equal(moirai_topo_allowed_pu_count(t), 32);
	for (int n = 0; n < 4; n++) {
		struct moirai_topo_node nd;

		assert_int_equal(moirai_topo_node(t, n, &nd), 0);
		assert_int_equal(nd.os_index, n);
		assert_int_equal(nd.package, n / 2);
		assert_int_equal(nd.pu_count, 8);
		assert_int_equal(moirai_topo_node_pus(t, n, pus, 64), 8);
		for (int k = 0; k < 8; k++)
			assert_int_equal(pus[k], n * 8 + k);
	}
	for (int i = 0; i < 32; i++) {
		struct moirai_topo_pu pu;

		assert_int_equal(moirai_topo_pu(t, i, &pu), 0);
		assert_int_equal(pu.os_index, i);
		assert_int_equal(pu.core, i / 2);
		assert_int_equal(pu.smt_rank, i % 2);
		assert_int_equal(pu.node_idx, i / 8);
		assert_int_equal(pu.node, i / 8);
		assert_int_equal(pu.l3, i / 8);
		assert_int_equal(pu.package, i / 16);
		assert_true(pu.allowed);
		assert_false(pu.isolated);
	}
	assert_false(moirai_topo_has_distances(t));
	assert_int_equal(moirai_topo_distance(t, 1, 1), 10);
	assert_int_equal(moirai_topo_distance(t, 0, 3), 20);
	plan_all_ways(t);
	moirai_topo_destroy(t);
}

/* No SMT, no NUMA level in the description (hwloc adds one node). */
static void test_syn_no_smt_single_node(void **state)
{
	struct moirai_topo *t = load_syn("pack:1 l3:2 core:3 pu:1");

	(void)state;
	assert_int_equal(moirai_topo_package_count(t), 1);
	assert_int_equal(moirai_topo_node_count(t), 1);
	assert_int_equal(moirai_topo_l3_count(t), 2);
	assert_int_equal(moirai_topo_core_count(t), 6);
	assert_int_equal(moirai_topo_pu_count(t), 6);
	plan_all_ways(t);
	moirai_topo_destroy(t);
}

/* Missing levels: no Package, no L3, no Core objects. */
static void test_syn_missing_levels(void **state)
{
	struct moirai_topo *t = load_syn("numa:2 pu:4");

	(void)state;
	assert_int_equal(moirai_topo_package_count(t), 0);
	assert_int_equal(moirai_topo_l3_count(t), 0);
	assert_int_equal(moirai_topo_node_count(t), 2);
	assert_int_equal(moirai_topo_pu_count(t), 8);
	/* Each PU is its own core. */
	assert_int_equal(moirai_topo_core_count(t), 8);
	for (int i = 0; i < 8; i++) {
		struct moirai_topo_pu pu;

		assert_int_equal(moirai_topo_pu(t, i, &pu), 0);
		assert_int_equal(pu.l3, -1);
		assert_int_equal(pu.package, -1);
		assert_int_equal(pu.node_idx, i / 4);
		assert_int_equal(pu.node, i / 4);
	}
	plan_all_ways(t);
	moirai_topo_destroy(t);
}

/* Several nodes per package, SMT 4: spread crosses packages first. */
static void test_syn_spread_and_compact(void **state)
{
	struct moirai_topo *t = load_syn("pack:2 numa:2 core:2 pu:4");
	struct moirai_plan_opts o = { .workers = 4, .policy = MOIRAI_PLAN_SPREAD };
	struct moirai_plan *p;
	struct moirai_plan_worker w;

	(void)state;
	assert_int_equal(moirai_plan_create(t, &o, &p), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_int_equal(w.node_idx, i); /* one worker per node */
	}
	moirai_plan_destroy(p);
	o.policy = MOIRAI_PLAN_COMPACT;
	assert_int_equal(moirai_plan_create(t, &o, &p), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_int_equal(w.node_idx, i / 2); /* fill node 0's 2 cores first */
	}
	moirai_plan_destroy(p);
	/* With SMT, compact uses both physical cores before any sibling. */
	o.smt = true;
	o.workers = 3;
	assert_int_equal(moirai_plan_create(t, &o, &p), 0);
	assert_int_equal(moirai_plan_worker(p, 0, &w), 0);
	assert_int_equal(w.pu, 0);
	assert_int_equal(moirai_plan_worker(p, 1, &w), 0);
	assert_int_equal(w.pu, 4);
	assert_int_equal(moirai_plan_worker(p, 2, &w), 0);
	assert_int_equal(w.pu, 1);
	moirai_plan_destroy(p);
	moirai_topo_destroy(t);
}

static void test_env_topology(void **state)
{
	struct moirai_topo *t = NULL;

	(void)state;
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, "pack:3 core:2 pu:1"), 0);
	assert_int_equal(moirai_topo_load(&t), 0);
	assert_int_equal(moirai_topo_source(t), MOIRAI_TOPO_SYNTHETIC);
	assert_int_equal(moirai_topo_pu_count(t), 6);
	moirai_topo_destroy(t);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, "/nonexistent/x.xml"), 0);
	assert_int_equal(moirai_topo_load(&t), -ENOENT);
	assert_non_null(strstr(moirai_last_error(), "/nonexistent/x.xml"));
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, ""), 0);
	assert_int_equal(moirai_topo_load(&t), 0);
	assert_int_equal(moirai_topo_source(t), MOIRAI_TOPO_LIVE);
	moirai_topo_destroy(t);
}

/* ---- real machines, hwloc's tools as the oracle ---------------------- */

static long oracle(const char *file, const char *type)
{
	/* lstopo counts every object (memory-only NUMA nodes too). */
	return test_command_long("lstopo-no-graphics -i '%s' --only %s 2>/dev/null | wc -l", file,
				 type);
}

static void check_xml(const char *path)
{
	struct moirai_topo *t = NULL;
	long cores;
	char cmd[1024];

	assert_int_equal(moirai_topo_load_xml(path, &t), 0);
	assert_int_equal(moirai_topo_source(t), MOIRAI_TOPO_XML);
	assert_int_equal(moirai_topo_package_count(t), oracle(path, "package"));
	assert_int_equal(moirai_topo_node_count(t), oracle(path, "numanode"));
	assert_int_equal(moirai_topo_l3_count(t), oracle(path, "l3cache"));
	assert_int_equal(moirai_topo_pu_count(t), oracle(path, "pu"));
	/* hwloc-calc is the README's oracle for PUs and cores. */
	assert_int_equal(moirai_topo_pu_count(t),
			 test_command_long("hwloc-calc -i '%s' -N pu all", path));
	cores = oracle(path, "core");
	assert_int_equal(moirai_topo_core_count(t), cores ? cores : moirai_topo_pu_count(t));
	/* Each node's PU list equals hwloc-calc's, in OS indexes. */
	for (int n = 0; n < moirai_topo_node_count(t); n++) {
		int pus[512], cnt = moirai_topo_node_pus(t, n, pus, 512);
		char expect[4096] = "", got[4096] = "";
		FILE *f;

		assert_true(cnt >= 0 && cnt <= 512);
		for (int k = 0; k < cnt; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%d", k ? "," : "",
				 pus[k]);
		snprintf(cmd, sizeof(cmd),
			 "hwloc-calc -i '%s' --physical-output --intersect pu numa:%d 2>/dev/null",
			 path, n);
		f = popen(cmd, "r");
		assert_non_null(f);
		if (!fgets(expect, sizeof(expect), f))
			expect[0] = '\0';
		pclose(f);
		expect[strcspn(expect, "\n")] = '\0';
		/* A node holding no PU of its own (memory-only, KNL MCDRAM) may list its
		 * neighbours' PUs in hwloc; moirai gives each PU its first node. */
		if (cnt > 0)
			assert_string_equal(got, expect);
	}
	plan_all_ways(t);
	moirai_topo_destroy(t);
}

static void test_shared_topologies(void **state)
{
	const char *dir = test_topologies_dir();
	struct dirent *e;
	DIR *d;
	int n = 0;

	(void)state;
	assert_non_null(dir); /* tests/data/topologies: in every clone */
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[1024];

		if (!strstr(e->d_name, ".xml"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		print_message("  %s\n", e->d_name);
		check_xml(path);
		n++;
	}
	closedir(d);
	assert_true(n >= TEST_TOPOLOGIES_MIN);
}

static struct moirai_topo *load_shared(const char *name)
{
	const char *dir = test_topologies_dir();
	char path[1024];
	struct moirai_topo *t = NULL;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(moirai_topo_load_xml(path, &t), 0);
	return t;
}

/* A cgroup-restricted export: 10 of 16 PUs, PUs 4 and 7-11 absent. */
static void test_shared_cpusets(void **state)
{
	struct moirai_topo *t = load_shared("16amd64-8n2c-cpusets.xml");
	static const int expect[] = { 0, 1, 2, 3, 5, 6, 12, 13, 14, 15 };
	struct moirai_plan *p;

	(void)state;
	assert_int_equal(moirai_topo_pu_count(t), 10);
	assert_int_equal(t->offline_pus, 6);
	for (int i = 0; i < 10; i++) {
		struct moirai_topo_pu pu;

		assert_int_equal(moirai_topo_pu(t, i, &pu), 0);
		assert_int_equal(pu.os_index, expect[i]);
	}
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ 0 }, &p), 0);
	assert_int_equal(moirai_plan_worker_count(p), 10);
	for (int i = 0; i < 10; i++) {
		struct moirai_plan_worker w;

		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_true(w.pu != 4 && (w.pu < 7 || w.pu > 11));
	}
	moirai_plan_destroy(p);
	assert_int_equal(moirai_plan_create(t, &(struct moirai_plan_opts){ .workers = 11 }, &p),
			 -ERANGE);
	assert_non_null(strstr(moirai_last_error(), "only 10 usable"));
	moirai_topo_destroy(t);
}

/* Offline PUs: 16 in the machine, 7 online, 6 cores. */
static void test_shared_offline(void **state)
{
	struct moirai_topo *t = load_shared("16em64t-4s2c2t-offlines.xml");

	(void)state;
	assert_int_equal(moirai_topo_pu_count(t), 7);
	assert_int_equal(moirai_topo_core_count(t), 6);
	assert_int_equal(t->offline_pus, 9);
	assert_int_equal(usable_slots(t, false, false), 6);
	assert_int_equal(check_plan(t, &(struct moirai_plan_opts){ .smt = true }), 7);
	moirai_topo_destroy(t);
}

/* NIC locality: eth0 is on node 1 of the 32-PU machine, node 0 of the 24. */
static void test_shared_nic(void **state)
{
	struct moirai_topo *t = load_shared("32em64t-2n8c2t-pci-normalio.xml");
	struct moirai_plan_opts o = { .workers = 8, .near_device = "eth0" };
	struct moirai_plan *p;
	struct moirai_topo_node nd;

	(void)state;
	assert_int_equal(moirai_topo_device_node(t, "eth0"), 1);
	assert_int_equal(moirai_topo_device_node_idx(t, "eth0"), 1);
	assert_int_equal(moirai_topo_device_node(t, "mlx5_0"), 1);
	assert_int_equal(moirai_topo_device_node(t, "eth9"), -ENODEV);
	assert_int_equal(moirai_topo_device_node_idx(t, "eth9"), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "eth9"));
	assert_int_equal(moirai_plan_create(t, &o, &p), 0);
	for (int i = 0; i < 8; i++) {
		struct moirai_plan_worker w;

		assert_int_equal(moirai_plan_worker(p, i, &w), 0);
		assert_int_equal(w.node, 1);
	}
	moirai_plan_destroy(p);
	/* 9 workers: node 1 has 8 cores, the 9th spills to node 0. */
	o.workers = 9;
	assert_int_equal(moirai_plan_create(t, &o, &p), 0);
	{
		struct moirai_plan_worker w;

		assert_int_equal(moirai_plan_worker(p, 8, &w), 0);
		assert_int_equal(w.node, 0);
	}
	moirai_plan_destroy(p);
	o.near_device = "nope0";
	assert_int_equal(moirai_plan_create(t, &o, &p), -ENODEV);
	assert_int_equal(moirai_topo_node(t, 1, &nd), 0);
	assert_int_equal(nd.os_index, 1);
	moirai_topo_destroy(t);

	t = load_shared("24em64t-2n6c2t-pci.xml");
	assert_int_equal(moirai_topo_device_node(t, "eth0"), 0);
	assert_int_equal(moirai_topo_device_node(t, "ib0"), 0);
	moirai_topo_destroy(t);
}

/* Distances: matrix present, 10 on the diagonal, symmetric here. */
static void test_shared_distances(void **state)
{
	struct moirai_topo *t = load_shared("16amd64-4distances.xml");
	int nn;

	(void)state;
	assert_true(moirai_topo_has_distances(t));
	nn = moirai_topo_node_count(t);
	assert_int_equal(nn, 8);
	for (int a = 0; a < nn; a++) {
		assert_int_equal(moirai_topo_distance(t, a, a), 10);
		for (int b = 0; b < nn; b++) {
			assert_true(moirai_topo_distance(t, a, b) >= 10);
			if (a != b)
				assert_true(moirai_topo_distance(t, a, b) > 10);
		}
	}
	assert_int_equal(moirai_topo_distance(t, 0, nn), -ERANGE);
	moirai_topo_destroy(t);
}

/* ---- bad input ------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
	struct moirai_topo *t = (void *)0x1;

	(void)state;
	assert_int_equal(moirai_topo_load_xml(NULL, &t), -EINVAL);
	assert_int_equal(moirai_topo_load_xml("x.xml", NULL), -EINVAL);
	assert_int_equal(moirai_topo_load_synthetic(NULL, &t), -EINVAL);
	assert_int_equal(moirai_topo_load_synthetic("", &t), -EINVAL);
	assert_int_equal(moirai_topo_load_xml("/nonexistent.xml", &t), -ENOENT);
	assert_int_equal(moirai_topo_load_xml("/tmp", &t), -EINVAL);
	assert_int_equal(moirai_topo_load_synthetic("nuam:2", &t), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "nuam:2"));
	assert_int_equal(moirai_topo_pu(NULL, 0, NULL), -EINVAL);
	moirai_topo_destroy(NULL);
	assert_int_equal(moirai_topo_pu_count(NULL), 0);

	t = load_syn("pack:1 core:2 pu:1");
	{
		struct moirai_topo_pu pu;
		struct moirai_topo_node nd;
		struct moirai_topo_device dev;

		assert_int_equal(moirai_topo_pu(t, 2, &pu), -ERANGE);
		assert_int_equal(moirai_topo_pu(t, -1, &pu), -ERANGE);
		assert_int_equal(moirai_topo_node(t, 1, &nd), -ERANGE);
		assert_int_equal(moirai_topo_node_pus(t, 0, NULL, 4), -EINVAL);
		assert_int_equal(moirai_topo_node_pus(t, 0, NULL, 0), 2);
		assert_int_equal(moirai_topo_device(t, 0, &dev), -ERANGE);
		assert_int_equal(moirai_topo_node_by_os(t, 7), -ENODEV);
		assert_int_equal(moirai_topo_pu_by_os(t, 7), -ENODEV);
		assert_int_equal(moirai_topo_cpu_quota_milli(t), -ENODATA);
	}
	moirai_topo_destroy(t);
}

static void test_synthetic_garbage(void **state)
{
	static const char *const bad[] = {
		"nuam:2",
		"garbage",
		"pack:",
		"pack:2 pu:",
		":::",
		"pack:2 core:x pu:1",
		"pu:99999999999999999999",
		"pack:-1 pu:2",
		"(",
		"pack:0 pu:1",
		"pu:2 pack:2",
		"pack:2 pu:1 extra",
		"pack:2 numa:2 core:65536 pu:65536",
	};
	static const char *const tokens[] = {
		"pack:", "numa:", "core:",	"pu:", "l3:", "group:", "2",	    "0", "-1",
		"(",	 ")",	  "memory=1GB", " ",   "x",   "1",	"indexes=", "4", ":",
	};
	unsigned seed = 12345;
	int crashes_avoided = 0;

	(void)state;
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(bad); i++) {
		struct moirai_topo *t = NULL;

		assert_true(moirai_topo_load_synthetic(bad[i], &t) < 0);
		assert_null(t);
	}
	/* Random token soup: any answer is fine, a crash or hang is not. */
	for (int i = 0; i < 300; i++) {
		char desc[128] = "";
		struct moirai_topo *t = NULL;
		int len = 1 + (int)(rand_r(&seed) % 8);

		for (int k = 0; k < len; k++)
			strncat(desc, tokens[rand_r(&seed) % MOIRAI_ARRAY_SIZE(tokens)],
				sizeof(desc) - strlen(desc) - 1);
		if (moirai_topo_load_synthetic(desc, &t) == 0) {
			assert_true(moirai_topo_pu_count(t) >= 1);
			moirai_topo_destroy(t);
		} else {
			crashes_avoided++;
		}
	}
	assert_true(crashes_avoided > 0);
}

static void test_xml_corrupt(void **state)
{
	char full[] = "/tmp/moirai-topo-XXXXXX", cut[] = "/tmp/moirai-cut-XXXXXX";
	int fd = mkstemp(full), fd2 = mkstemp(cut);
	char *buf;
	long size;
	FILE *f;
	unsigned seed = 99;
	struct moirai_topo *t = NULL;

	(void)state;
	assert_true(fd >= 0 && fd2 >= 0);
	close(fd);
	close(fd2);
	assert_int_equal(test_command_long("lstopo-no-graphics -f -i 'pack:2 numa:2 core:2 pu:2' "
					   "--of xml '%s' >/dev/null 2>&1; echo $?",
					   full),
			 0);
	assert_int_equal(moirai_topo_load_xml(full, &t), 0);
	assert_int_equal(moirai_topo_pu_count(t), 16);
	moirai_topo_destroy(t);

	f = fopen(full, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	/* Truncated anywhere before the root closes: always an error. */
	for (long cutlen = 0; cutlen < size - 20; cutlen += size / 23 + 1) {
		f = fopen(cut, "wb");
		fwrite(buf, 1, (size_t)cutlen, f);
		fclose(f);
		t = NULL;
		assert_int_equal(moirai_topo_load_xml(cut, &t), -EINVAL);
		assert_null(t);
	}
	/* Random byte corruption: error or a sane topology, never a crash. */
	for (int i = 0; i < 60; i++) {
		char *m = malloc((size_t)size);

		memcpy(m, buf, (size_t)size);
		for (int k = 0; k < 8; k++)
			m[rand_r(&seed) % (unsigned)size] = (char)(rand_r(&seed) & 0xff);
		f = fopen(cut, "wb");
		fwrite(m, 1, (size_t)size, f);
		fclose(f);
		free(m);
		t = NULL;
		if (moirai_topo_load_xml(cut, &t) == 0) {
			assert_true(moirai_topo_pu_count(t) >= 0);
			moirai_topo_destroy(t);
		}
	}
	/* Not XML at all. */
	f = fopen(cut, "wb");
	fputs("this is not xml\n", f);
	fclose(f);
	assert_int_equal(moirai_topo_load_xml(cut, &t), -EINVAL);
	free(buf);
	unlink(full);
	unlink(cut);
}

/* ---- issue #8 reproductions and the checks behind them ---------------- */

/* An lstopo export of @desc with the first @from replaced by @to. */
static void export_edited(const char *desc, const char *from, const char *to, char *path)
{
	char cmd[1024];

	strcpy(path, "/tmp/moirai-edit-XXXXXX");
	close(mkstemp(path));
	snprintf(
		cmd, sizeof(cmd),
		"lstopo-no-graphics -f -i '%s' --of xml - 2>/dev/null | sed '0,/%s/s//%s/' > '%s'; "
		"echo $?",
		desc, from, to, path);
	assert_int_equal(test_command_long("%s", cmd), 0);
}

/* One word changed (Package -> Core): hwloc counted -1 cores, plan overflowed. */
static void test_repro_core_at_two_depths(void **state)
{
	struct moirai_topo *t = NULL;
	char path[64];

	(void)state;
	export_edited("pack:2 numa:2 core:2 pu:2", "type=\"Package\"", "type=\"Core\"", path);
	assert_int_equal(moirai_topo_load_xml(path, &t), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(moirai_last_error(), "Core object inside another Core"));
	/* Through MOIRAI_TOPOLOGY, as any linked program would load it. */
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, path), 0);
	assert_int_equal(moirai_topo_load(&t), -EINVAL);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, ""), 0);
	unlink(path);
}

/* Two PUs called 0: the plan pinned two workers to one CPU. */
static void test_repro_duplicate_pu(void **state)
{
	struct moirai_topo *t = NULL;
	char path[64];

	(void)state;
	export_edited("pack:2 numa:2 core:2 pu:2", "type=\"PU\" os_index=\"1\"",
		      "type=\"PU\" os_index=\"0\"", path);
	assert_int_equal(moirai_topo_load_xml(path, &t), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(moirai_last_error(), "PU P#0"));
	unlink(path);
}

/*
 * The checks after hwloc, on hand-broken models: each broken invariant is
 * refused with -EINVAL and says what is wrong.
 */
static void test_topo_check_invariants(void **state)
{
	struct moirai_topo *t = load_syn("pack:2 numa:2 core:2 pu:2");

	(void)state;
	assert_int_equal(moirai__topo_check(t, "test"), 0);
	t->pus[1].os_index = 0;
	assert_int_equal(moirai__topo_check(t, "test"), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "same OS index"));
	t->pus[1].os_index = 1;
	t->pus[3].core = -1;
	assert_int_equal(moirai__topo_check(t, "test"), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "core index"));
	t->pus[3].core = t->cores;
	assert_int_equal(moirai__topo_check(t, "test"), -EINVAL);
	t->pus[3].core = 1;
	t->pus[3].node_idx = 3; /* core 1's other PU is on node 0 */
	assert_int_equal(moirai__topo_check(t, "test"), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "different NUMA nodes"));
	t->pus[3].node_idx = 0;
	t->cores = -1;
	assert_int_equal(moirai__topo_check(t, "test"), -EINVAL);
	t->cores = 8;
	t->nodes[2].os_index = 1;
	assert_int_equal(moirai__topo_check(t, "test"), -EINVAL);
	t->nodes[2].os_index = 2;
	assert_int_equal(moirai__topo_check(t, "test"), 0);
	moirai_topo_destroy(t);
}

/*
 * A model that slipped past the checks (two PUs with one OS index): the
 * planner's own invariant check refuses the plan with -EINVAL in every
 * build (the library is built without DEBUG by `make check`, with it under
 * the sanitizers and DEBUG=1); a child, so that an abort fails the test
 * instead of ending it.
 */
static void plan_duplicate_child(void *arg)
{
	struct moirai_topo *t = arg;
	struct moirai_plan *p = NULL;
	int rc = moirai_plan_create(t, &(struct moirai_plan_opts){ .smt = true }, &p);

	_exit(rc == -EINVAL && !p && strstr(moirai_last_error(), "two workers on one PU") ? 0 : 1);
}

static void test_plan_refuses_broken_model(void **state)
{
	struct moirai_topo *t = load_syn("pack:1 core:2 pu:2");
	int status;

	(void)state;
	t->pus[1].os_index = 0;
	/* -EINVAL with the reason in every build, DEBUG and sanitizer builds
	 * too: an abort there would hide what a release build does. */
	status = test_run_in_child(plan_duplicate_child, t);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	t->pus[1].os_index = 1;
	moirai_topo_destroy(t);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sizes: refused at once above the caps; the largest accepted plans fast. */
static void test_caps(void **state)
{
	static const struct {
		const char *desc, *says;
	} big[] = {
		{ "pack:65536 pu:1", "children per parent" },
		{ "pack:1025 pu:1", "children per parent" },
		{ "pack:64 core:64 pu:2", "more than the 4096" },
		{ "pack:16 numa:128 pu:2", "NUMA nodes" },
		{ "pack:2 pu:2(indexes=0,1,2,9000)", "indexes beyond" },
		{ "core:99999999999999999999 pu:1", "children per parent" },
	};
	struct moirai_topo *t = NULL;
	struct moirai_plan *p = NULL;
	double t0;

	(void)state;
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(big); i++) {
		t0 = now_s();
		assert_int_equal(moirai_topo_load_synthetic(big[i].desc, &t), -EINVAL);
		assert_true(now_s() - t0 < 0.1);
		if (!strstr(moirai_last_error(), big[i].says))
			fail_msg("'%s': %s", big[i].desc, moirai_last_error());
	}
	/* The largest accepted machine: 4096 PUs, as wide as allowed. */
	t0 = now_s();
	assert_int_equal(moirai_topo_load_synthetic("pack:4 core:1024 pu:1", &t), 0);
	print_message("  4096-PU load %.2fs\n", now_s() - t0);
	assert_int_equal(moirai_topo_pu_count(t), MOIRAI_TOPO_MAX_PUS);
	for (int pol = 0; pol < 2; pol++) {
		t0 = now_s();
		assert_int_equal(
			moirai_plan_create(t, &(struct moirai_plan_opts){ .policy = pol }, &p), 0);
		print_message("  4096-worker %s plan %.2fs\n", pol ? "spread" : "compact",
			      now_s() - t0);
		/* Well under a second on a quiet core; generous for sanitizers. */
		assert_true(now_s() - t0 < 10.0);
		assert_int_equal(moirai_plan_worker_count(p), 4096);
		moirai_plan_destroy(p);
	}
	moirai_topo_destroy(t);
}

/* Files that are not regular, empty, or too large: refused without reading. */
static void test_xml_not_a_file(void **state)
{
	char fifo[] = "/tmp/moirai-fifo-XXXXXX", big[] = "/tmp/moirai-big-XXXXXX";
	struct moirai_topo *t = NULL;
	int fd;

	(void)state;
	close(mkstemp(fifo));
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* A FIFO with no writer would block a plain open() forever. */
	assert_int_equal(moirai_topo_load_xml(fifo, &t), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "not a regular file"));
	unlink(fifo);
	assert_int_equal(moirai_topo_load_xml("/tmp", &t), -EINVAL);
	fd = mkstemp(big);
	assert_true(fd >= 0);
	assert_int_equal(moirai_topo_load_xml(big, &t), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "empty"));
	assert_int_equal(ftruncate(fd, (off_t)MOIRAI__XML_MAX_BYTES + 1), 0);
	close(fd);
	assert_int_equal(moirai_topo_load_xml(big, &t), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "larger than"));
	unlink(big);
	assert_null(t);
}

/* What the validator refuses, each with its line and reason. */
static void test_xml_validator_messages(void **state)
{
	static const struct {
		const char *from, *to, *says;
	} edits[] = {
		{ " complete_cpuset=\"0x000000ff\"", "", "lacks one of" },
		{ "cpuset=\"0x00000003\"", "cpuset=\"0x00000003\" cpuset=\"0x00000003\"", "twice" },
		{ "<object type=\"Package\"", "<!-- x --><object type=\"Package\"", "comments" },
		{ "cpuset=\"0x00000003\"", "cpuset=\"0xf...f\"", "bad cpuset" },
		{ "type=\"NUMANode\" os_index=\"0\"", "type=\"NUMANode\" os_index=\"4096\"",
		  "NUMANode" },
		{ "type=\"Core\"", "type=\"Corr\"", "unknown object type" },
		{ "gp_index=\"2\"", "gp_index=\"3\"", "gp_index 3 used twice" },
		{ "<topology version=\"2.0\">", "<topology>", "hwloc 1.x" },
		{ "type=\"PU\" os_index=\"0\"", "type=\"PU\" os_index=\"8192\"", "below 8192" },
	};

	(void)state;
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(edits); i++) {
		struct moirai_topo *t = NULL;
		char path[64];

		export_edited("pack:2 numa:2 core:2 pu:2", edits[i].from, edits[i].to, path);
		assert_int_equal(moirai_topo_load_xml(path, &t), -EINVAL);
		assert_null(t);
		if (!strstr(moirai_last_error(), edits[i].says) ||
		    !strstr(moirai_last_error(), "topology: '"))
			fail_msg("edit %zu: %s", i, moirai_last_error());
		unlink(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_smt_multi_node),
		cmocka_unit_test(test_syn_no_smt_single_node),
		cmocka_unit_test(test_syn_missing_levels),
		cmocka_unit_test(test_syn_spread_and_compact),
		cmocka_unit_test(test_env_topology),
		cmocka_unit_test(test_shared_topologies),
		cmocka_unit_test(test_shared_cpusets),
		cmocka_unit_test(test_shared_offline),
		cmocka_unit_test(test_shared_nic),
		cmocka_unit_test(test_shared_distances),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_synthetic_garbage),
		cmocka_unit_test(test_xml_corrupt),
		cmocka_unit_test(test_repro_core_at_two_depths),
		cmocka_unit_test(test_repro_duplicate_pu),
		cmocka_unit_test(test_topo_check_invariants),
		cmocka_unit_test(test_plan_refuses_broken_model),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_xml_not_a_file),
		cmocka_unit_test(test_xml_validator_messages),
	};

	return cmocka_run_group_tests_name("topo", tests, NULL, NULL);
}
