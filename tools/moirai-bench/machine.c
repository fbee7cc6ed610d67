/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What moirai-bench says about the machine and the run in its JSON
 * "machine" object (docs/bench.md): enough to tell, months later, whether
 * two documents can be compared at all and under what load each was taken.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <moirai.h>

#include "bench.h"

static void read_cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + strspn(colon + 1, " \t");
		snprintf(buf, len, "%.*s", (int)strcspn(colon, "\n"), colon);
		break;
	}
	fclose(f);
}

/* The bracketed word of the THP "enabled" file: always, madvise or never. */
static void read_thp(char *buf, size_t len)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128], *open, *close;

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && (open = strchr(line, '[')) &&
	    (close = strchr(open, ']')))
		snprintf(buf, len, "%.*s", (int)(close - open - 1), open + 1);
	fclose(f);
}

/* First line of @cmd's output into @buf; false when it printed nothing. */
static bool first_line(const char *cmd, char *buf, size_t len)
{
	FILE *f = popen(cmd, "r");
	bool ok = false;

	if (!f)
		return false;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = '\0';
		ok = buf[0] != '\0';
	}
	/* Drain, so that the command never dies of SIGPIPE. */
	while (fgetc(f) != EOF)
		;
	return pclose(f) == 0 && ok;
}

/*
 * The commit: what the build passed (-DMOIRAI_COMMIT), which describes the
 * binary; otherwise the HEAD of the checkout the binary sits in
 * (<root>/build/bin/moirai-bench, or build-clang/...), plus "-dirty" for uncommitted
 * changes to tracked files.  The second describes the tree at run time,
 * which is the binary's only if it was rebuilt since: commit_source says
 * which one it is.
 */
static void read_commit(struct bench_machine *m)
{
	char exe[4096], cmd[4400], dirty[8];
	ssize_t len;
	char *slash;

	if (MOIRAI_COMMIT[0]) {
		snprintf(m->commit, sizeof(m->commit), "%s", MOIRAI_COMMIT);
		m->commit_source = "build";
		return;
	}
	snprintf(m->commit, sizeof(m->commit), "unknown");
	m->commit_source = "unknown";
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return;
	exe[len] = '\0';
	/* Strip "/bin/moirai-bench" and the build directory. */
	for (int i = 0; i < 3 && (slash = strrchr(exe, '/')); i++)
		*slash = '\0';
	if (!exe[0] || strchr(exe, '\''))
		return;
	snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse --short=12 HEAD 2>/dev/null", exe);
	if (!first_line(cmd, m->commit, sizeof(m->commit))) {
		snprintf(m->commit, sizeof(m->commit), "unknown");
		return;
	}
	m->commit_source = "git";
	snprintf(cmd, sizeof(cmd),
		 "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null | head -1", exe);
	if (first_line(cmd, dirty, sizeof(dirty)))
		strncat(m->commit, "-dirty", sizeof(m->commit) - strlen(m->commit) - 1);
}

/* Physical cores, and those with a PU this process may run on: the live
 * machine's, whatever MOIRAI_TOPOLOGY says (that steers plans, not what
 * the benchmark ran on). */
static void read_cores(struct bench_machine *m)
{
	struct moirai_topo *t;
	bool *seen;
	int n;

	m->cores = m->cores_usable = -1;
	if (moirai_topo_load_live(&t) != 0)
		return;
	n = moirai_topo_core_count(t);
	seen = calloc((size_t)(n > 0 ? n : 1), sizeof(*seen));
	if (seen) {
		m->cores = n;
		m->cores_usable = 0;
		for (int i = 0; i < moirai_topo_pu_count(t); i++) {
			struct moirai_topo_pu pu;

			if (moirai_topo_pu(t, i, &pu) || !pu.allowed || pu.core < 0 ||
			    pu.core >= n || seen[pu.core])
				continue;
			seen[pu.core] = true;
			m->cores_usable++;
		}
		free(seen);
	}
	moirai_topo_destroy(t);
}

void bench__machine_probe(struct bench_machine *m)
{
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;

	read_cpu_model(m->cpu_model, sizeof(m->cpu_model));
	read_thp(m->thp, sizeof(m->thp));
	read_commit(m);
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%s %s %s %s", u.sysname, u.release,
			 u.version, u.machine);
	else
		snprintf(m->kernel, sizeof(m->kernel), "unknown");
	if (gmtime_r(&now, &tm))
		strftime(m->started, sizeof(m->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (getloadavg(m->load_start, 3) != 3)
		m->load_start[0] = m->load_start[1] = m->load_start[2] = -1;
	m->cpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	read_cores(m);
	m->numa_nodes = moirai_numa_node_count();
}

void bench__machine_finish(struct bench_machine *m, uint64_t t0_ns)
{
	if (getloadavg(m->load_end, 3) != 3)
		m->load_end[0] = m->load_end[1] = m->load_end[2] = -1;
	m->duration_s = (double)(moirai_now_ns() - t0_ns) / 1e9;
}
