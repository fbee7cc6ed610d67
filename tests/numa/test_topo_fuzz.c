/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Corrupt XML must never take the process down.  Many seeds, many source
 * files (synthetic exports made here with lstopo, and the real machines in
 * tests/data/topologies), mutations of several kinds, each input loaded in a
 * forked child under both of hwloc's parsers:
 *   libxml2: the public moirai_topo_load_xml (validator, then libxml2);
 *   minimal: HWLOC_LIBXML_IMPORT=0 through the test seam that lets the
 *            validator's output reach hwloc's minimal parser, to show the
 *            validator alone keeps that parser safe (the public call
 *            refuses it, and that refusal is checked too).
 * A child that crashes, hangs, prints anything on stderr, returns an error
 * without a message, or returns a topology or plan that breaks an
 * invariant is a failure: the input is saved under $MOIRAI_BUILD/fuzz-fail/
 * and the seed printed, and it belongs in tests/numa/corpus/, which every
 * run replays (every input that ever failed there is kept).
 *
 * This parent process never loads XML itself: hwloc decides its parser
 * once per process, so each child must start with hwloc untouched.
 *
 * Knobs: MOIRAI_FUZZ_SEED (first seed, default 1), MOIRAI_FUZZ_COUNT
 * (inputs per source and parser, default FUZZ_COUNT x MOIRAI_TEST_SCALE),
 * MOIRAI_FUZZ_SOURCE (only sources whose name contains it).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <moirai/numa.h>

#include "internal.h"
#include "numa_int.h"
#include "testutil.h"

enum outcome {
	OUT_LOADED = 0,
	OUT_REJECTED = 10,
	OUT_INVALID = 20,   /* loaded, but a topology or plan invariant fails */
	OUT_BAD_ERROR = 21, /* an error without a message, or an unexpected code */
	OUT_NOISE = 30,	    /* something on stderr */
	OUT_REFUSAL = 40,   /* the public call did not refuse the minimal parser */
};

struct source {
	char name[96];
	char *buf;
	size_t len;
};

/*
 * Inputs per source and parser in make check: with the 4 synthetic and 12
 * real-machine sources that is 800 loads, about 3 s here (each is a fork
 * and an hwloc load); make stress asks for 200 (6400 loads).
 */
#define FUZZ_COUNT 25

static struct source sources[32];
static int nsources, nreal;
static char tmpdir[] = "/tmp/moirai-fuzz-XXXXXX";
static long total_inputs, total_loaded, total_failures;

/* ---- independent checks of what a load returned --------------------- */

static bool check_topology(const struct moirai_topo *t)
{
	int npu = moirai_topo_pu_count(t), nn = moirai_topo_node_count(t);
	int cores = moirai_topo_core_count(t), l3 = moirai_topo_l3_count(t);
	int pk = moirai_topo_package_count(t), sum = 0, with_node = 0, allowed = 0;
	bool *seen;

	if (npu < 1 || npu > MOIRAI_TOPO_MAX_PUS || nn < 1 || nn > MOIRAI_TOPO_MAX_NODES ||
	    cores < 1 || cores > npu || l3 < 0 || pk < 0)
		return false;
	seen = calloc(8192, 1);
	if (!seen)
		return false;
	for (int i = 0; i < npu; i++) {
		struct moirai_topo_pu pu;

		if (moirai_topo_pu(t, i, &pu) || pu.os_index < 0 || pu.os_index >= 8192 ||
		    seen[pu.os_index] || pu.core < 0 || pu.core >= cores || pu.l3 < -1 ||
		    pu.l3 >= l3 || pu.node_idx < -1 || pu.node_idx >= nn || pu.package < -1 ||
		    pu.package >= pk || moirai_topo_pu_by_os(t, pu.os_index) != i) {
			free(seen);
			return false;
		}
		seen[pu.os_index] = 1;
		with_node += pu.node_idx >= 0;
		allowed += pu.allowed;
	}
	free(seen);
	if (allowed != moirai_topo_allowed_pu_count(t))
		return false;
	for (int n = 0; n < nn; n++) {
		struct moirai_topo_node nd;

		if (moirai_topo_node(t, n, &nd) || moirai_topo_node_by_os(t, nd.os_index) != n)
			return false;
		sum += moirai_topo_node_pus(t, n, NULL, 0);
		for (int m = 0; m < nn; m++)
			if (moirai_topo_distance(t, n, m) <= 0)
				return false;
	}
	return sum == with_node;
}

static bool check_plans(const struct moirai_topo *t)
{
	for (int pol = 0; pol < 2; pol++)
		for (int smt = 0; smt < 2; smt++) {
			struct moirai_plan_opts o = { .policy = pol, .smt = smt };
			struct moirai_plan *p = NULL;
			bool *used;
			int rc = moirai_plan_create(t, &o, &p), n;

			if (rc == -ERANGE) /* no usable core: a clean answer */
				continue;
			if (rc)
				return false;
			n = moirai_plan_worker_count(p);
			used = calloc(8192 + (size_t)n, 1);
			for (int w = 0; used && w < n; w++) {
				struct moirai_plan_worker pw;
				bool *mine = used + 8192;

				if (moirai_plan_worker(p, w, &pw) || pw.pu < 0 || pw.pu >= 8192 ||
				    used[pw.pu] || pw.steal_count != n - 1) {
					free(used);
					moirai_plan_destroy(p);
					return false;
				}
				used[pw.pu] = 1;
				memset(mine, 0, (size_t)n);
				for (int k = 0; k < pw.steal_count; k++) {
					int v = pw.steal_order[k];

					if (v < 0 || v >= n || v == w || mine[v]) {
						free(used);
						moirai_plan_destroy(p);
						return false;
					}
					mine[v] = 1;
				}
			}
			free(used);
			moirai_plan_destroy(p);
		}
	return true;
}

/* ---- one input in a child --------------------------------------------- */

static int child_load(const char *path, bool minimal)
{
	struct moirai_topo *t = NULL;
	char errpath[300];
	struct stat st;
	int fd, rc;

	snprintf(errpath, sizeof(errpath), "%s/stderr.%d", tmpdir, (int)getpid());
	fd = open(errpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0 || dup2(fd, 2) < 0)
		return OUT_BAD_ERROR;
	close(fd);
	alarm(20);
	if (minimal) {
		setenv("HWLOC_LIBXML_IMPORT", "0", 1);
		/* The public entry refuses the minimal parser... */
		rc = moirai_topo_load_xml(path, &t);
		if (rc != -ENOTSUP && rc != -ENOENT && !(rc == -EINVAL && t == NULL))
			return OUT_REFUSAL;
		if (rc == -ENOTSUP && !strstr(moirai_last_error(), "libhwloc-plugins"))
			return OUT_REFUSAL;
		/* ...and the validator alone keeps it safe behind the seam. */
		rc = moirai__topo_from_hwloc(MOIRAI_TOPO_XML, path, MOIRAI__TOPO_ANY_XML_PARSER,
					     &t);
	} else {
		rc = moirai_topo_load_xml(path, &t);
	}
	if (rc == 0) {
		bool ok = t && check_topology(t) && check_plans(t);

		moirai_topo_destroy(t);
		rc = ok ? OUT_LOADED : OUT_INVALID;
	} else {
		const char *msg = moirai_last_error();

		rc = (t == NULL && (rc == -EINVAL || rc == -ENOENT) &&
		      !strncmp(msg, "topology: ", 10) && !strchr(msg, '\n'))
			     ? OUT_REJECTED
			     : OUT_BAD_ERROR;
	}
	if (stat(errpath, &st) == 0 && st.st_size > 0)
		rc = OUT_NOISE;
	unlink(errpath);
	return rc;
}

static const char *describe(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "%s (signal %d)", WTERMSIG(status) == SIGALRM ? "hang" : "crash",
			 WTERMSIG(status));
	else if (WEXITSTATUS(status) == OUT_INVALID)
		snprintf(buf, len, "invalid topology or plan accepted");
	else if (WEXITSTATUS(status) == OUT_BAD_ERROR)
		snprintf(buf, len, "error without a proper message");
	else if (WEXITSTATUS(status) == OUT_NOISE)
		snprintf(buf, len, "output on stderr");
	else if (WEXITSTATUS(status) == OUT_REFUSAL)
		snprintf(buf, len, "minimal parser not refused");
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	return buf;
}

/* Load @path under one parser in a fresh child; 0 when the outcome is fine. */
static int run_one(const char *path, bool minimal, const char *what, long seed)
{
	pid_t pid;
	int status = 0;
	char why[64];

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_load(path, minimal));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	total_inputs++;
	if (WIFEXITED(status) &&
	    (WEXITSTATUS(status) == OUT_LOADED || WEXITSTATUS(status) == OUT_REJECTED)) {
		total_loaded += WEXITSTATUS(status) == OUT_LOADED;
		return 0;
	}
	total_failures++;
	{
		const char *b = getenv("MOIRAI_BUILD");
		char dir[300], keep[600], cmd[1400];

		snprintf(dir, sizeof(dir), "%s/fuzz-fail", b && *b ? b : "build");
		mkdir(dir, 0755);
		snprintf(keep, sizeof(keep), "%s/%s-seed%ld-%s.xml", dir, what, seed,
			 minimal ? "minimal" : "libxml2");
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, keep);
		if (system(cmd) != 0)
			keep[0] = '\0';
		print_message("FUZZ FAILURE: %s seed %ld, %s parser: %s; input kept as %s "
			      "(reproduce: MOIRAI_FUZZ_SOURCE=%s MOIRAI_FUZZ_SEED=%ld "
			      "MOIRAI_FUZZ_COUNT=1; add it to tests/numa/corpus/)\n",
			      what, seed, minimal ? "minimal" : "libxml2",
			      describe(status, why, 64), keep, what, seed);
	}
	return 1;
}

/* ---- mutations ---------------------------------------------------------- */

struct mbuf {
	char *p;
	size_t len, cap;
};

static unsigned rnd(unsigned *s, unsigned n)
{
	return n ? (unsigned)(rand_r(s) % (int)n) : 0;
}

static void replace(struct mbuf *m, size_t at, size_t del, const char *ins, size_t ilen)
{
	if (at > m->len)
		at = m->len;
	if (del > m->len - at)
		del = m->len - at;
	if (m->len - del + ilen + 1 > m->cap) {
		m->cap = (m->len - del + ilen + 1) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memmove(m->p + at + ilen, m->p + at + del, m->len - at - del);
	memcpy(m->p + at, ins, ilen);
	m->len = m->len - del + ilen;
	m->p[m->len] = '\0';
}

/* Offsets of every occurrence of @pat; returns a random one or -1. */
static long pick(const struct mbuf *m, const char *pat, unsigned *s)
{
	size_t pl = strlen(pat);
	long count = 0, want;

	for (size_t i = 0; i + pl <= m->len; i++)
		count += !memcmp(m->p + i, pat, pl);
	if (!count)
		return -1;
	want = (long)rnd(s, (unsigned)count);
	for (size_t i = 0; i + pl <= m->len; i++)
		if (!memcmp(m->p + i, pat, pl) && want-- == 0)
			return (long)i;
	return -1;
}

/* A random line: [*start, *end) including its newline. */
static bool pick_line(const struct mbuf *m, unsigned *s, size_t *start, size_t *end)
{
	size_t at;

	if (!m->len)
		return false;
	at = rnd(s, (unsigned)m->len);
	while (at > 0 && m->p[at - 1] != '\n')
		at--;
	*start = at;
	while (at < m->len && m->p[at] != '\n')
		at++;
	*end = at < m->len ? at + 1 : at;
	return true;
}

static const char *const values[] = {
	"-1",
	"0",
	"4294967295",
	"4294967296",
	"18446744073709551615",
	"18446744073709551616",
	"99999999999999999999",
	"-2147483648",
	"2147483648",
	"",
	"0x",
	"0xf...f",
	"0xf...f,0x1",
	"0x1,",
	",0x1",
	"0x00000001,,",
	"0xffffffff,0xffffffff,0xffffffff",
	"0x100000000",
	"0xg",
	"1e9",
	"nan",
	"0x00000001",
	"0x80000000,0x0",
	"&amp;",
	"&#x41;",
	"&bogus;",
	"a\"b",
	"os",
	"gp",
	"base64",
	"1-1",
	"9-9",
	"0000:00:00.0",
	"65536",
	"8192",
	"1024",
	"7",
	"3",
};

static const char *const attr_names[] = {
	"os_index",
	"cpuset",
	"complete_cpuset",
	"nodeset",
	"complete_nodeset",
	"allowed_cpuset",
	"gp_index",
	"local_memory",
	"type",
	"depth",
	"cache_size",
	"cache_type",
	"kind",
	"subkind",
	"nbobjs",
	"length",
	"osdev_type",
	"bridge_type",
	"name",
	"value",
	"xx",
	"Cpuset",
	"cpu set",
};

static const char *const type_names[] = {
	"Machine",  "Package", "Core",	 "PU",	  "NUMANode", "Group",	"L3Cache",
	"L2Cache",  "L1Cache", "Die",	 "Misc",  "Bridge",   "PCIDev", "OSDev",
	"MemCache", "Bogus",   "System", "Cache", "pu",	      "",
};

static const char *const junk[] = {
	"<!-- c -->",
	"<![CDATA[x]]>",
	"text",
	"<",
	">",
	"&",
	"\"",
	"\r",
	"\t",
	"</object>",
	"<object type=\"PU\" os_index=\"0\"/>",
	"<info/>",
	"<?pi?>",
	"\xff\xfe",
	"\xc3\x28",
	"<object>",
	"/>",
};

static void mutate_once(struct mbuf *m, unsigned *s)
{
	long at;
	size_t a, b, c, d;
	char num[32];

	switch (rnd(s, 13)) {
	case 0: /* byte flips */
		for (unsigned k = 1 + rnd(s, 8); k-- && m->len;)
			m->p[rnd(s, (unsigned)m->len)] = (char)rnd(s, 256);
		break;
	case 1: /* truncation */
		m->len = rnd(s, (unsigned)m->len + 1);
		m->p[m->len] = '\0';
		break;
	case 2: /* attribute value edit */
		at = pick(m, "=\"", s);
		if (at >= 0) {
			char *q = memchr(m->p + at + 2, '"', m->len - (size_t)at - 2);
			const char *v = values[rnd(s, MOIRAI_ARRAY_SIZE(values))];

			if (q)
				replace(m, (size_t)at + 2, (size_t)(q - m->p) - (size_t)at - 2, v,
					strlen(v));
		}
		break;
	case 3: /* attribute name edit */
		at = pick(m, "=\"", s);
		if (at > 0) {
			size_t st = (size_t)at;
			const char *v = attr_names[rnd(s, MOIRAI_ARRAY_SIZE(attr_names))];

			while (st > 0 && m->p[st - 1] != ' ')
				st--;
			replace(m, st, (size_t)at - st, v, strlen(v));
		}
		break;
	case 4: /* remove an attribute */
		at = pick(m, "=\"", s);
		if (at > 0) {
			size_t st = (size_t)at;
			char *q = memchr(m->p + at + 2, '"', m->len - (size_t)at - 2);

			while (st > 0 && m->p[st - 1] != ' ')
				st--;
			if (q && st > 0)
				replace(m, st - 1, (size_t)(q - m->p) + 1 - (st - 1), "", 0);
		}
		break;
	case 5: /* duplicate an element (line) */
		if (pick_line(m, s, &a, &b)) {
			char *dup = strndup(m->p + a, b - a);

			replace(m, a, 0, dup, b - a);
			free(dup);
		}
		break;
	case 6: /* remove an element (line) */
		if (pick_line(m, s, &a, &b))
			replace(m, a, b - a, "", 0);
		break;
	case 7: /* swap an object type */
		at = pick(m, "type=\"", s);
		if (at >= 0) {
			char *q = memchr(m->p + at + 6, '"', m->len - (size_t)at - 6);
			const char *v = type_names[rnd(s, MOIRAI_ARRAY_SIZE(type_names))];

			if (q)
				replace(m, (size_t)at + 6, (size_t)(q - m->p) - (size_t)at - 6, v,
					strlen(v));
		}
		break;
	case 8: /* swap two lines */
		if (pick_line(m, s, &a, &b) && pick_line(m, s, &c, &d) && b <= c) {
			char *x = strndup(m->p + a, b - a), *y = strndup(m->p + c, d - c);

			replace(m, c, d - c, x, b - a);
			replace(m, a, b - a, y, d - c);
			free(x);
			free(y);
		}
		break;
	case 9: /* duplicate an attribute */
		at = pick(m, " cpuset=\"", s);
		if (at >= 0) {
			char *q = memchr(m->p + at + 9, '"', m->len - (size_t)at - 9);

			if (q) {
				char *dup = strndup(m->p + at, (size_t)(q - m->p) + 1 - (size_t)at);

				replace(m, (size_t)at, 0, dup, strlen(dup));
				free(dup);
			}
		}
		break;
	case 10: /* junk */
		if (m->len) {
			const char *j = junk[rnd(s, MOIRAI_ARRAY_SIZE(junk))];

			replace(m, rnd(s, (unsigned)m->len), 0, j, strlen(j));
		}
		break;
	case 11: /* huge or negative number in place of a digit run */
		at = pick(m, "=\"", s);
		if (at >= 0 && (size_t)at + 2 < m->len && m->p[at + 2] >= '0' &&
		    m->p[at + 2] <= '9') {
			size_t e = (size_t)at + 2;
			static const long long nums[] = { -1,	-4096, 1LL << 31, 1LL << 32,
							  8191, 8192,  1LL << 40, 1000000000000LL };

			while (e < m->len && m->p[e] >= '0' && m->p[e] <= '9')
				e++;
			snprintf(num, sizeof(num), "%lld", nums[rnd(s, MOIRAI_ARRAY_SIZE(nums))]);
			replace(m, (size_t)at + 2, e - (size_t)at - 2, num, strlen(num));
		}
		break;
	default: /* tag name edit */
		at = pick(m, "<object", s);
		if (at >= 0) {
			const char *v = rnd(s, 2) ? "objekt" : "distances2";

			replace(m, (size_t)at + 1, 6, v, strlen(v));
		}
		break;
	}
}

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;
	char *b;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	b[n] = '\0';
	*len = (size_t)n;
	return b;
}

/* ---- setup: the sources ------------------------------------------------ */

static void add_source(const char *name, const char *path)
{
	if (nsources == (int)MOIRAI_ARRAY_SIZE(sources))
		return;
	snprintf(sources[nsources].name, sizeof(sources[nsources].name), "%s", name);
	sources[nsources].buf = slurp(path, &sources[nsources].len);
	if (sources[nsources].buf)
		nsources++;
}

static int setup(void **state)
{
	static const char *const syn[] = { "pack:2 numa:2 core:2 pu:2", "pack:1 l3:2 core:3 pu:2",
					   "numa:2 pu:4", "pack:2 l3:2 core:2 pu:1" };
	const char *dir = test_topologies_dir();

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(syn); i++) {
		char path[300], name[32];

		snprintf(path, sizeof(path), "%s/syn%zu.xml", tmpdir, i);
		snprintf(name, sizeof(name), "syn%zu", i);
		assert_int_equal(test_command_long("lstopo-no-graphics -f -i '%s' --of xml '%s' "
						   ">/dev/null 2>&1; echo $?",
						   syn[i], path),
				 0);
		add_source(name, path);
	}
	/* The real machines are in every clone: without them the fuzz would
	 * quietly shrink to the synthetic sources, so their absence fails. */
	if (dir) {
		DIR *d = opendir(dir);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[1024];
			int before = nsources;

			if (!strstr(e->d_name, ".xml"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			add_source(e->d_name, path);
			nreal += nsources > before;
		}
		if (d)
			closedir(d);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];

	(void)state;
	for (int i = 0; i < nsources; i++)
		free(sources[i].buf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return -1;
	print_message("fuzz: %ld loads, %ld loaded fine, %ld failures\n", total_inputs,
		      total_loaded, total_failures);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

/* The unmutated sources load under libxml2 (the validator accepts real exports). */
static void test_sources_load(void **state)
{
	(void)state;
	print_message("sources: %d synthetic, %d real machines from %s\n", nsources - nreal, nreal,
		      test_topologies_dir() ? test_topologies_dir() : "(none)");
	assert_true(nreal >= TEST_TOPOLOGIES_MIN);
	assert_true(nsources - nreal >= 4);
	for (int i = 0; i < nsources; i++) {
		char path[300];

		snprintf(path, sizeof(path), "%s/src.xml", tmpdir);
		write_file(path, sources[i].buf, sources[i].len);
		assert_int_equal(run_one(path, false, sources[i].name, 0), 0);
		assert_int_equal(run_one(path, true, sources[i].name, 0), 0);
	}
}

static void fuzz_parser(bool minimal)
{
	const char *s0 = getenv("MOIRAI_FUZZ_SEED"), *sc = getenv("MOIRAI_FUZZ_COUNT");
	const char *only = getenv("MOIRAI_FUZZ_SOURCE");
	long first = s0 ? strtol(s0, NULL, 10) : 1;
	long count = sc ? strtol(sc, NULL, 10) : FUZZ_COUNT * test_scale();
	long failures = 0, inputs = 0;
	char path[300];
	time_t start = time(NULL);

	snprintf(path, sizeof(path), "%s/mut-%s.xml", tmpdir, minimal ? "min" : "lx");
	for (int i = 0; i < nsources; i++) {
		if (only && !strstr(sources[i].name, only))
			continue;
		for (long seed = first; seed < first + count; seed++) {
			unsigned s = (unsigned)(seed * 7919 + i * 104729);
			struct mbuf m = { malloc(sources[i].len + 1), sources[i].len,
					  sources[i].len + 1 };

			assert_non_null(m.p);
			memcpy(m.p, sources[i].buf, sources[i].len + 1);
			for (unsigned k = 1 + rnd(&s, 3); k--;)
				mutate_once(&m, &s);
			write_file(path, m.p, m.len);
			free(m.p);
			failures += run_one(path, minimal, sources[i].name, seed);
			inputs++;
		}
	}
	print_message("fuzz (%s parser): seeds %ld..%ld on %d sources, %ld inputs, %ld failures, "
		      "%lds\n",
		      minimal ? "minimal" : "libxml2", first, first + count - 1, nsources, inputs,
		      failures, (long)(time(NULL) - start));
	assert_int_equal(failures, 0);
	/* make check's promise (README): hundreds of inputs per parser. */
	if (!sc && !only)
		assert_true(inputs >= 300);
}

static void test_fuzz_libxml2(void **state)
{
	(void)state;
	fuzz_parser(false);
}

static void test_fuzz_minimal(void **state)
{
	(void)state;
	fuzz_parser(true);
}

/* Every input that ever failed, under both parsers. */
static void test_corpus(void **state)
{
	const char *dirs[] = { "tests/numa/corpus", "../tests/numa/corpus" };
	DIR *d = NULL;
	struct dirent *e;
	const char *dir = NULL;
	int n = 0, failures = 0;

	(void)state;
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(dirs) && !d; i++)
		if ((d = opendir(dirs[i])))
			dir = dirs[i];
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[1024];

		if (!strstr(e->d_name, ".xml"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		failures += run_one(path, false, e->d_name, -1);
		failures += run_one(path, true, e->d_name, -1);
		n++;
	}
	closedir(d);
	print_message("corpus: %d inputs replayed, %d failures\n", n, failures);
	assert_true(n >= 20);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources_load),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_fuzz_libxml2),
		cmocka_unit_test(test_fuzz_minimal),
	};

	return cmocka_run_group_tests_name("topo_fuzz", tests, setup, teardown);
}
