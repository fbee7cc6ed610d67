/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-top: a live view of a moirai runtime's workers, from the stats
 * segment the runtime publishes (MOIRAI_RT_STATS=1; moirai/rt.h,
 * "Published stats"; docs/top.md).  One row per worker (placement, load,
 * tasks/s per level, steals, parks, wake-ups, queue depth, full mailboxes,
 * stuck reports) and a footer with each level's queue-wait and run-time
 * percentiles over the refresh interval.  Rates come from two snapshots.
 * Without a target it lists the processes that publish, and stale
 * segments of dead ones (--clean removes those of the caller).
 *
 * Plain ANSI escapes (home, clear) and nothing else, so no curses library
 * is needed.  Exit status: 0 success, 1 runtime failure (a segment that
 * cannot be read, a stale target), 2 bad usage or no such target.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <moirai.h>
#include "../tool_json.h"

#define PID_MAX_LIMIT 4194304L /* the kernel's ceiling for pid_max */
#define MAX_LIST      4096
#define MAX_READ_FAIL 3 /* consecutive busy reads before giving up */
/* How long a view waits for the next runtime of its process once the
 * segment it shows is gone (moirai-pipeline --compare destroys one and
 * creates the next within milliseconds). */
#define REATTACH_S 5.0

struct args {
	const char *target; /* PID or segment name; NULL: list */
	char name[MOIRAI_RT_STATS_NAME_MAX + 1];
	long pid; /* > 0 when the target is a PID */
	double delay;
	long iterations; /* 0: until interrupted */
	bool once, json, clean;
};

static volatile sig_atomic_t stop_flag;
static struct termios saved_tty;
static bool tty_raw;

static void usage(FILE *f)
{
	fprintf(f, "usage: moirai-top [PID | NAME] [-d SECONDS] [-n COUNT] [--once [--json]]\n"
		   "       moirai-top [--json]\n"
		   "       moirai-top --clean [PID | NAME]\n"
		   "\n"
		   "Shows a moirai runtime's workers live, from the stats segment it publishes\n"
		   "(/dev/shm/moirai-stats.NAME; start the program with MOIRAI_RT_STATS=1).\n"
		   "Without a target, lists the processes that publish and stale segments.\n"
		   "The directory is MOIRAI_RT_STATS_DIR when set (writers must agree).\n"
		   "\n"
		   "  PID               the process (its segment is named after it)\n"
		   "  NAME              a segment name (MOIRAI_RT_STATS=NAME, or PID.N for a\n"
		   "                    process's second runtime)\n"
		   "  -d, --delay S     refresh every S seconds (default 1; 0.01..3600)\n"
		   "  -n, --iterations N  stop after N refreshes\n"
		   "  --once            print one report (two snapshots S seconds apart) and exit\n"
		   "  --json            with --once: one JSON document; without a target: the\n"
		   "                    list as JSON\n"
		   "  --clean           remove stale segments (dead processes) owned by you, or\n"
		   "                    only the one named\n"
		   "  -V, --version     print the version and exit\n"
		   "  -h, --help        print this help and exit\n"
		   "Keys (on a terminal): q quits.\n"
		   "Exit status: 0 ok, 1 runtime failure (unreadable or stale segment), 2 bad\n"
		   "usage or no such process or segment.\n");
}

static int bad(const char *fmt, const char *what)
{
	fprintf(stderr, "moirai-top: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	return 2;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MOIRAI_RT_STATS_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int parse_target(const char *t, struct args *a)
{
	size_t digits = strspn(t, "0123456789");

	a->target = t;
	if (*t && t[digits] == '\0') {
		char *end;
		long v;

		errno = 0;
		v = strtol(t, &end, 10);
		if (errno || v < 1 || v > PID_MAX_LIMIT)
			return bad("bad PID '%s' (1..4194304)", t);
		a->pid = v;
		snprintf(a->name, sizeof(a->name), "%ld", v);
		return 0;
	}
	if (!name_ok(t))
		return bad("bad PID or segment name '%.80s' (a name is 1..64 characters of "
			   "[A-Za-z0-9._-], not starting with '.')",
			   t);
	snprintf(a->name, sizeof(a->name), "%s", t);
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "once", no_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "clean", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	bool delay_set = false;
	char *end;
	int c;

	*a = (struct args){ .delay = 1.0 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hVd:n:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			errno = 0;
			a->delay = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(a->delay) ||
			    a->delay < 0.01 || a->delay > 3600)
				return bad("-d takes seconds in 0.01..3600, not '%s'", optarg);
			delay_set = true;
			break;
		case 'n':
			errno = 0;
			a->iterations = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || a->iterations < 1)
				return bad("-n takes a count >= 1, not '%s'", optarg);
			break;
		case 'o': a->once = true; break;
		case 'j': a->json = true; break;
		case 'c': a->clean = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("moirai-top %s\n", moirai_version()); exit(0);
		default:
			return bad("unknown or incomplete option '%s' (see --help)",
				   argv[optind - 1]);
		}
	}
	if (optind < argc && parse_target(argv[optind++], a))
		return 2;
	if (optind < argc)
		return bad("unexpected argument '%s' (see --help)", argv[optind]);
	if (a->clean && (a->once || a->json || a->iterations || delay_set))
		return bad("%s", "--clean takes no other option");
	if (a->once && a->iterations)
		return bad("%s", "--once and -n are exclusive");
	if (a->target && a->json && !a->once)
		return bad("%s", "--json with a target needs --once (one document)");
	if (!a->target && (a->once || a->iterations || delay_set))
		return bad("%s", "--once, -n and -d need a PID or segment name");
	return 0;
}

/* ---- output helpers --------------------------------------------------- */

/* A rate in 7 columns: 950, 12.3k, 1.20M, 3.40G. */
static const char *fmt_rate(double v, char *buf, size_t len)
{
	if (v < 999.5)
		snprintf(buf, len, "%.0f", v);
	else if (v < 999.5e3)
		snprintf(buf, len, "%.*fk", v < 9.995e3 ? 2 : v < 99.95e3 ? 1 : 0, v / 1e3);
	else if (v < 999.5e6)
		snprintf(buf, len, "%.*fM", v < 9.995e6 ? 2 : v < 99.95e6 ? 1 : 0, v / 1e6);
	else
		snprintf(buf, len, "%.2fG", v / 1e9);
	return buf;
}

static const char *state_name(enum moirai_rt_worker_state s)
{
	static const char *const names[] = { "start", "run", "spin", "park", "exit" };

	return (unsigned)s < 5 ? names[s] : "?";
}

static const char *seg_state_name(enum moirai_rt_segment_state s)
{
	static const char *const names[] = { "live", "stale", "unknown", "invalid" };

	return (unsigned)s < 4 ? names[s] : "?";
}

static uint64_t delta(uint64_t cur, uint64_t prev)
{
	return cur > prev ? cur - prev : 0; /* never trust a counter to only grow */
}

/* ---- one report --------------------------------------------------------- */

struct rates {
	double secs; /* between the two snapshots; 0 when they are the same */
	double spawned, refused, spills;
	double level[MOIRAI_PRIO_LEVELS];
};

static double per_s(uint64_t d, double secs)
{
	return secs > 0 ? (double)d / secs : 0;
}

static double interval(const struct moirai_rt_snapshot *p, const struct moirai_rt_snapshot *c)
{
	return p && c->time_ns > p->time_ns ? (double)(c->time_ns - p->time_ns) / 1e9 : 0;
}

static const struct moirai_rt_snapshot_worker *prev_worker(const struct moirai_rt_snapshot *p,
							   const struct moirai_rt_snapshot *c,
							   int i)
{
	static const struct moirai_rt_snapshot_worker zero;

	return p && i < p->workers && p->workers == c->workers ? &p->worker[i] : &zero;
}

static uint64_t steals_of(const struct moirai_rt_worker_stats *s)
{
	uint64_t n = 0;

	for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
		n += s->steals[c];
	return n;
}

static uint64_t queued_of(const struct moirai_rt_worker_stats *s)
{
	uint64_t n = 0;

	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++)
		n += s->queue_depth[l];
	return n;
}

/* Busy share of the interval: time in tasks and busy pollers, 0..100 %. */
static double load_of(const struct moirai_rt_snapshot_worker *pw,
		      const struct moirai_rt_snapshot_worker *cw, double secs)
{
	uint64_t busy = delta(cw->stats.busy_ns + cw->stats.poll_busy_ns + cw->running_ns,
			      pw->stats.busy_ns + pw->stats.poll_busy_ns + pw->running_ns);
	double pct = secs > 0 ? (double)busy / (secs * 1e9) * 100.0 : 0;

	return pct > 100 ? 100 : pct;
}

static void lat_figures(const struct moirai_hist *h, uint64_t out[5])
{
	static const double qs[3] = { 50, 99, 99.9 };

	out[0] = moirai_hist_count(h);
	moirai_hist_percentiles(h, qs, 3, out + 1);
	out[4] = moirai_hist_max(h);
}

static void print_text(const struct moirai_rt_snapshot *p, const struct moirai_rt_snapshot *c,
		       bool tty)
{
	double secs = interval(p, c);
	char r[MOIRAI_PRIO_LEVELS + 8][16];
	uint64_t age = moirai_now_ns() > c->time_ns ? moirai_now_ns() - c->time_ns : 0;
	char fmt[16];

	if (tty)
		fputs("\033[H\033[J", stdout);
	printf("moirai-top %s  pid %d (%s)  segment %s  %d worker%s%s%s%s\n", moirai_version(),
	       c->pid, c->comm, c->name, c->workers, c->workers == 1 ? "" : "s",
	       c->rt.virtual_placement ? "  virtual placement" : "",
	       c->rt.stopping ? "  STOPPING" : "", c->idle ? "  idle (all parked)" : "");
	printf("spawned %s/s  refused %s/s  spilled %s/s  deferred %" PRIu64
	       "  | published every %u ms, %.0f ms ago, took %.1f us (max %.1f us)\n",
	       fmt_rate(per_s(delta(c->rt.spawned, p ? p->rt.spawned : 0), secs), r[0], 16),
	       fmt_rate(per_s(delta(c->rt.refused, p ? p->rt.refused : 0), secs), r[1], 16),
	       fmt_rate(per_s(delta(c->rt.overflow_spills, p ? p->rt.overflow_spills : 0), secs),
			r[2], 16),
	       c->rt.deferred_pending, c->period_ms, (double)age / 1e6, (double)c->publish_ns / 1e3,
	       (double)c->publish_max_ns / 1e3);
	printf("\n%4s %4s %4s %-5s %6s %7s %7s %7s %7s %7s %7s %7s %6s %5s %5s\n", "W", "PU",
	       "NODE", "STATE", "LOAD%", "CRIT/s", "HIGH/s", "NORM/s", "BKGD/s", "STEAL/s",
	       "PARK/s", "WAKE/s", "QUEUE", "MBXF", "STUCK");
	for (int i = 0; i < c->workers; i++) {
		const struct moirai_rt_snapshot_worker *cw = &c->worker[i];
		const struct moirai_rt_snapshot_worker *pw = prev_worker(p, c, i);

		for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++)
			fmt_rate(per_s(delta(cw->stats.tasks_run[l], pw->stats.tasks_run[l]), secs),
				 r[l], 16);
		printf("%4d %4d %4d %-5s %6.1f %7s %7s %7s %7s %7s %7s %7s %6" PRIu64 " %5" PRIu64
		       " %5" PRIu64 "%s\n",
		       i, cw->info.pu, cw->info.node, state_name(cw->state), load_of(pw, cw, secs),
		       r[0], r[1], r[2], r[3],
		       fmt_rate(per_s(delta(steals_of(&cw->stats), steals_of(&pw->stats)), secs),
				r[4], 16),
		       fmt_rate(per_s(delta(cw->stats.parks, pw->stats.parks), secs), r[5], 16),
		       fmt_rate(per_s(delta(cw->stats.wakeups, pw->stats.wakeups), secs), r[6], 16),
		       queued_of(&cw->stats), cw->stats.mailbox_full, cw->stats.stuck_reports,
		       cw->info.critical_only ? "  critical lane" : "");
	}
	printf("\n%-10s %8s %8s %8s  %8s %8s %8s  %8s   (last %.2f s)\n", "LEVEL", "WAIT p50",
	       "p99", "p99.9", "RUN p50", "p99", "p99.9", "TASKS/s", secs);
	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		enum moirai_prio prio = moirai_prio_from_index(l);
		uint64_t f[2][5], n = 0;

		for (int k = 0; k < 2; k++) {
			struct moirai_hist h;

			moirai_rt_snapshot_latency(p, c, prio, (enum moirai_rt_latency)k, &h);
			lat_figures(&h, f[k]);
		}
		for (int i = 0; i < c->workers; i++)
			n += delta(c->worker[i].stats.tasks_run[l],
				   prev_worker(p, c, i)->stats.tasks_run[l]);
		printf("%-10s", moirai_prio_name(prio));
		for (int k = 0; k < 2; k++) {
			for (int q = 1; q <= 3; q++) {
				if (f[k][0])
					moirai_hist_format_ns(f[k][q], fmt, sizeof(fmt));
				else
					snprintf(fmt, sizeof(fmt), "-");
				printf(" %8s", fmt);
			}
			printf(" ");
		}
		printf(" %8s\n", fmt_rate(per_s(n, secs), r[0], 16));
	}
	fflush(stdout);
}

static void json_lat(const struct moirai_rt_snapshot *p, const struct moirai_rt_snapshot *c)
{
	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		enum moirai_prio prio = moirai_prio_from_index(l);

		printf("%s\"%s\": {", l ? ", " : "", moirai_prio_name(prio));
		for (int k = 0; k < 2; k++) {
			struct moirai_hist h;
			uint64_t f[5];

			moirai_rt_snapshot_latency(p, c, prio, (enum moirai_rt_latency)k, &h);
			lat_figures(&h, f);
			printf("%s\"%s\": {\"count\": %" PRIu64 ", \"p50\": %" PRIu64
			       ", \"p99\": %" PRIu64 ", \"p999\": %" PRIu64 ", \"max\": %" PRIu64
			       "}",
			       k ? ", " : "", k ? "run" : "wait", f[0], f[1], f[2], f[3], f[4]);
		}
		printf("}");
	}
}

static void print_json(const struct moirai_rt_snapshot *p, const struct moirai_rt_snapshot *c)
{
	double secs = interval(p, c);

	printf("{\"pid\": %d, \"name\": ", c->pid);
	tool_json_str(stdout, c->name);
	printf(", \"comm\": ");
	tool_json_str(stdout, c->comm);
	printf(", \"uid\": %ld, \"workers_count\": %d, \"virtual_placement\": %s, \"stopping\": %s"
	       ", \"idle\": %s, \"interval_s\": %.6f, \"seq\": %" PRIu64 ", \"publishes\": %" PRIu64
	       ", \"publish_period_ms\": %u, \"publish_ns\": %" PRIu64
	       ", \"publish_max_ns\": %" PRIu64 ", \"spawned\": %" PRIu64 ", \"refused\": %" PRIu64
	       ", \"overflow_spills\": %" PRIu64 ", \"deferred_pending\": %" PRIu64
	       ", \"spawned_per_s\": %.1f, \"refused_per_s\": %.1f, \"workers\": [",
	       c->uid, c->workers, c->rt.virtual_placement ? "true" : "false",
	       c->rt.stopping ? "true" : "false", c->idle ? "true" : "false", secs, c->seq,
	       c->publishes, c->period_ms, c->publish_ns, c->publish_max_ns, c->rt.spawned,
	       c->rt.refused, c->rt.overflow_spills, c->rt.deferred_pending,
	       per_s(delta(c->rt.spawned, p ? p->rt.spawned : 0), secs),
	       per_s(delta(c->rt.refused, p ? p->rt.refused : 0), secs));
	for (int i = 0; i < c->workers; i++) {
		const struct moirai_rt_snapshot_worker *cw = &c->worker[i];
		const struct moirai_rt_snapshot_worker *pw = prev_worker(p, c, i);
		const struct moirai_rt_worker_stats *s = &cw->stats;

		printf("%s{\"worker\": %d, \"pu\": %d, \"node\": %d, \"plan_pu\": %d, "
		       "\"plan_node\": "
		       "%d, \"critical_only\": %s, \"state\": \"%s\", \"level\": %d"
		       ", \"running_ns\": %" PRIu64 ", \"load\": %.2f",
		       i ? ", " : "", i, cw->info.pu, cw->info.node, cw->info.plan_pu,
		       cw->info.plan_node, cw->info.critical_only ? "true" : "false",
		       state_name(cw->state), cw->level, cw->running_ns, load_of(pw, cw, secs));
		printf(", \"tasks_run\": {");
		for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++)
			printf("%s\"%s\": %" PRIu64, l ? ", " : "",
			       moirai_prio_name(moirai_prio_from_index(l)), s->tasks_run[l]);
		printf("}, \"tasks_per_s\": {");
		for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++)
			printf("%s\"%s\": %.1f", l ? ", " : "",
			       moirai_prio_name(moirai_prio_from_index(l)),
			       per_s(delta(s->tasks_run[l], pw->stats.tasks_run[l]), secs));
		printf("}, \"queue_depth\": {");
		for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++)
			printf("%s\"%s\": %" PRIu64, l ? ", " : "",
			       moirai_prio_name(moirai_prio_from_index(l)), s->queue_depth[l]);
		printf("}, \"steals\": %" PRIu64 ", \"steals_per_s\": %.1f, \"parks\": %" PRIu64
		       ", \"parks_per_s\": %.1f, \"wakeups\": %" PRIu64 ", \"wakeups_per_s\": %.1f"
		       ", \"stolen_from\": %" PRIu64 ", \"mailbox_full\": %" PRIu64
		       ", \"stuck_reports\": %" PRIu64 ", \"busy_ns\": %" PRIu64
		       ", \"poll_busy_ns\": %" PRIu64 ", \"cancelled\": %" PRIu64 "}",
		       steals_of(s), per_s(delta(steals_of(s), steals_of(&pw->stats)), secs),
		       s->parks, per_s(delta(s->parks, pw->stats.parks), secs), s->wakeups,
		       per_s(delta(s->wakeups, pw->stats.wakeups), secs), s->stolen_from,
		       s->mailbox_full, s->stuck_reports, s->busy_ns, s->poll_busy_ns,
		       s->cancelled);
	}
	printf("], \"latency_ns\": {");
	json_lat(p, c);
	printf("}, \"latency_total_ns\": {");
	json_lat(NULL, c);
	printf("}}\n");
	fflush(stdout);
}

/* ---- the list and --clean --------------------------------------------- */

static int list_segments(struct moirai_rt_segment **out)
{
	int n = moirai_rt_monitor_list(NULL, 0), got;

	if (n < 0) {
		fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
		return -1;
	}
	if (n > MAX_LIST)
		n = MAX_LIST;
	*out = calloc((size_t)(n ? n : 1), sizeof(**out));
	if (!*out) {
		fprintf(stderr, "moirai-top: out of memory\n");
		return -1;
	}
	got = moirai_rt_monitor_list(*out, n);
	if (got < 0) {
		fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
		free(*out);
		return -1;
	}
	return got < n ? got : n;
}

static int do_list(bool json)
{
	struct moirai_rt_segment *s;
	int n = list_segments(&s);

	if (n < 0)
		return 1;
	if (json) {
		printf("{\"segments\": [");
		for (int i = 0; i < n; i++) {
			printf("%s{\"name\": ", i ? ", " : "");
			tool_json_str(stdout, s[i].name);
			printf(", \"pid\": %d, \"state\": \"%s\", \"uid\": %ld, \"workers\": %d"
			       ", \"comm\": ",
			       s[i].pid, seg_state_name(s[i].state), s[i].uid, s[i].workers);
			tool_json_str(stdout, s[i].comm);
			printf(", \"detail\": ");
			tool_json_str(stdout, s[i].detail);
			printf("}");
		}
		printf("]}\n");
	} else if (n == 0) {
		printf("no moirai process publishes stats (start one with MOIRAI_RT_STATS=1)\n");
	} else {
		printf("%-20s %8s %-8s %6s %7s %-16s %s\n", "NAME", "PID", "STATE", "UID",
		       "WORKERS", "COMMAND", "DETAIL");
		for (int i = 0; i < n; i++)
			printf("%-20s %8d %-8s %6ld %7d %-16s %s\n", s[i].name, s[i].pid,
			       seg_state_name(s[i].state), s[i].uid, s[i].workers, s[i].comm,
			       s[i].detail);
	}
	free(s);
	return 0;
}

static int do_clean(const struct args *a)
{
	struct moirai_rt_segment *s;
	int n, removed = 0, rc = 0;

	if (a->target) {
		rc = moirai_rt_monitor_clean(a->name);
		if (rc) {
			fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
			return rc == -ENOENT ? 2 : 1;
		}
		printf("removed %s\n", a->name);
		return 0;
	}
	n = list_segments(&s);
	if (n < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		if (s[i].state != MOIRAI_RT_SEGMENT_STALE || s[i].uid != (long)geteuid())
			continue;
		if (moirai_rt_monitor_clean(s[i].name) == 0) {
			printf("removed %s (%s)\n", s[i].name, s[i].detail);
			removed++;
		} else {
			fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
			rc = 1;
		}
	}
	printf("%d stale segment%s removed\n", removed, removed == 1 ? "" : "s");
	free(s);
	return rc;
}

/* ---- attaching and the live loop --------------------------------------- */

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_raw = false;
}

static void tty_setup(void)
{
	struct termios t;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
		tty_raw = true;
		atexit(tty_restore);
	}
}

/* Wait @secs; false when the user quit (q, or a signal). */
static bool wait_or_quit(double secs)
{
	uint64_t end = moirai_now_ns() + (uint64_t)(secs * 1e9);

	while (!stop_flag) {
		uint64_t now = moirai_now_ns();
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		int ms;

		if (now >= end)
			return true;
		ms = (int)((end - now + 999999) / 1000000);
		if (!tty_raw) {
			struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(&pfd, 1, ms) > 0) {
			char ch;

			if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
				return false;
		}
	}
	return false;
}

static const char *stats_dir(void)
{
	const char *d = moirai_option_get_str(MOIRAI_OPT_RT_STATS_DIR);

	return *d ? d : MOIRAI_RT_STATS_DEFAULT_DIR;
}

/* The uid the segment's file must have: that of the process it names (so
 * that nobody can pass a file of theirs off as another user's process),
 * else ours. */
static long expected_uid(long pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%ld", pid);
	if (pid > 0 && stat(path, &st) == 0)
		return (long)st.st_uid;
	return MOIRAI_RT_MONITOR_UID_SELF;
}

static int attach(const struct args *a, struct moirai_rt_monitor **mon)
{
	struct moirai_rt_segment seg;
	char path[64];
	struct stat st;
	int rc = moirai_rt_monitor_stat(a->name, &seg);

	if (rc == -ENOENT) {
		snprintf(path, sizeof(path), "/proc/%ld", a->pid);
		if (a->pid > 0 && stat(path, &st) == 0)
			fprintf(stderr,
				"moirai-top: process %ld does not publish stats (no %s/%s%s; start "
				"it with MOIRAI_RT_STATS=1)\n",
				a->pid, stats_dir(), MOIRAI_RT_STATS_PREFIX, a->name);
		else if (a->pid > 0)
			fprintf(stderr, "moirai-top: no process %ld and no stats segment of it\n",
				a->pid);
		else
			fprintf(stderr, "moirai-top: no stats segment %s (%s/%s%s)\n", a->name,
				stats_dir(), MOIRAI_RT_STATS_PREFIX, a->name);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
		return 1;
	}
	if (seg.state == MOIRAI_RT_SEGMENT_STALE) {
		fprintf(stderr,
			"moirai-top: segment %s is stale: %s (moirai-top --clean removes it)\n",
			a->name, seg.detail);
		return 1;
	}
	if (seg.state == MOIRAI_RT_SEGMENT_INVALID) {
		fprintf(stderr, "moirai-top: segment %s: %s\n", a->name, seg.detail);
		return 1;
	}
	if (a->pid > 0 && seg.pid != a->pid) {
		fprintf(stderr, "moirai-top: segment %s was written by process %d, not %ld\n",
			a->name, seg.pid, a->pid);
		return 1;
	}
	if (moirai_rt_monitor_open(a->name, expected_uid(seg.pid), mon)) {
		fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
		return 1;
	}
	return 0;
}

/* Whether process @pid still runs and is the one that started at
 * @start_time (clock ticks after boot, /proc/PID/stat field 22): not gone,
 * not a zombie, not a new process under a reused pid. */
static bool proc_alive(int pid, uint64_t start_time)
{
	char path[64], buf[1024], *p, *save;
	unsigned long long start;
	size_t n;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields follow
	 * the last ')'; the first of them is field 3, the state. */
	p = strrchr(buf, ')');
	if (!p)
		return false;
	p = strtok_r(p + 1, " ", &save);
	for (field = 3; p && field < 22; field++) {
		if (field == 3 && (*p == 'Z' || *p == 'X'))
			return false;
		p = strtok_r(NULL, " ", &save);
	}
	return p && sscanf(p, "%llu", &start) == 1 && start == start_time;
}

/*
 * The segment @last came from is gone but its process may have replaced
 * its runtime: the name comes back for the new runtime's segment (a
 * process's runtimes take its pid as their name one after the other).
 * Wait up to REATTACH_S, while that process lives, for a live segment of
 * the same name written by the same process (pid and start time), and open
 * it.  0 with *mon replaced; -ESRCH the process is gone; -ENOENT no new
 * segment in time; -EINTR the user quit.
 */
static int reattach(const struct args *a, const struct moirai_rt_snapshot *last,
		    struct moirai_rt_monitor **mon)
{
	uint64_t end = moirai_now_ns() + (uint64_t)(REATTACH_S * 1e9);

	for (;;) {
		struct moirai_rt_segment seg;
		struct moirai_rt_monitor *m;
		struct moirai_rt_snapshot *s = NULL;

		if (!proc_alive(last->pid, last->start_time))
			return -ESRCH;
		if (moirai_rt_monitor_stat(a->name, &seg) == 0 &&
		    seg.state == MOIRAI_RT_SEGMENT_LIVE && seg.pid == last->pid &&
		    moirai_rt_monitor_open(a->name, expected_uid(seg.pid), &m) == 0) {
			bool same = moirai_rt_monitor_read(m, &s) == 0 && s->pid == last->pid &&
				    s->start_time == last->start_time;

			if (same) {
				moirai_rt_snapshot_free(s);
				moirai_rt_monitor_close(*mon);
				*mon = m;
				return 0;
			}
			moirai_rt_snapshot_free(s);
			moirai_rt_monitor_close(m);
		}
		if (moirai_now_ns() >= end)
			return -ENOENT;
		if (!wait_or_quit(0.02))
			return -EINTR;
	}
}

/*
 * The segment shown is gone (its runtime was destroyed): follow the
 * process's next runtime, if any (reattach()).  Its counters start again
 * from zero, so no rate may mix the two: the next frame's interval starts
 * at the new runtime's first snapshot, *cur, and *prev is dropped.
 * 0 following; -ENOENT, -ESRCH, -EINTR as reattach(); -EIO the new segment
 * could not be read (said on stderr).
 */
static int follow_next(const struct args *a, struct moirai_rt_monitor **mon,
		       struct moirai_rt_snapshot **prev, struct moirai_rt_snapshot **cur)
{
	int rc = reattach(a, *cur, mon);

	if (rc)
		return rc;
	moirai_rt_snapshot_free(*prev);
	moirai_rt_snapshot_free(*cur);
	*prev = *cur = NULL;
	if (moirai_rt_monitor_read(*mon, cur)) {
		fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
		return -EIO;
	}
	fprintf(stderr,
		"moirai-top: process %d replaced its runtime; following the new one (segment %s, "
		"%d worker%s)\n",
		(*cur)->pid, (*cur)->name, (*cur)->workers, (*cur)->workers == 1 ? "" : "s");
	return 0;
}

/* A snapshot newer than @last (bounded wait while the writer publishes).
 * 0 with *out set (it may equal @last's seq if none came: idle or slow). */
static int read_newer(struct moirai_rt_monitor *mon, const struct moirai_rt_snapshot *last,
		      double wait_s, struct moirai_rt_snapshot **out)
{
	uint64_t end = moirai_now_ns() + (uint64_t)(wait_s * 1e9);

	for (;;) {
		int rc = moirai_rt_monitor_read(mon, out);

		if (rc)
			return rc;
		if (!last || (*out)->seq != last->seq || (*out)->idle || moirai_now_ns() >= end)
			return 0;
		moirai_rt_snapshot_free(*out);
		*out = NULL;
		if (!wait_or_quit(0.01))
			return -EINTR;
	}
}

static int run(const struct args *a)
{
	struct moirai_rt_monitor *mon = NULL;
	struct moirai_rt_snapshot *prev = NULL, *cur = NULL, *next;
	bool tty = isatty(STDOUT_FILENO) && !a->once;
	int rc = attach(a, &mon), fails = 0;
	long frames = 0;

	if (rc)
		return rc;
	tty_setup();
	rc = moirai_rt_monitor_read(mon, &cur);
	if (rc) {
		fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
		rc = 1;
		goto out;
	}
	for (;;) {
		double grace;
		int check;

		if (!wait_or_quit(a->delay))
			break;
		/* Give a slow writer up to two periods to show something new. */
		grace = a->once ? 2.0 * cur->period_ms / 1e3 + 0.1 : 0;
		rc = read_newer(mon, cur, grace, &next);
		if (rc == -EINTR)
			break;
		if (rc) {
			fprintf(stderr, "moirai-top: %s\n", moirai_last_error());
			if (rc == -EAGAIN && !a->once && ++fails < MAX_READ_FAIL)
				continue;
			rc = 1;
			goto out;
		}
		fails = 0;
		if (next->seq != cur->seq || !prev) {
			moirai_rt_snapshot_free(prev);
			prev = cur;
			cur = next;
		} else if (cur->idle || next->idle) {
			/* Nothing published since every worker parked: nothing ran. */
			moirai_rt_snapshot_free(prev);
			prev = next;
		} else {
			moirai_rt_snapshot_free(next); /* a slow writer: keep the last rates */
		}
		if (a->once && a->json)
			print_json(prev, cur);
		else
			print_text(prev, cur, tty);
		frames++;
		if (a->once || (a->iterations && frames >= a->iterations))
			break;
		check = moirai_rt_monitor_check(mon);
		if (check == -ENOENT) {
			check = follow_next(a, &mon, &prev, &cur);
			if (check == 0)
				continue;
			if (check == -EINTR)
				break;
			if (check == -EIO) {
				rc = 1;
				goto out;
			}
		}
		if (check == -ENOENT || check == -ESRCH) {
			fprintf(stderr, "moirai-top: %s\n",
				check == -ENOENT ? "the segment is gone (the runtime was destroyed)"
						 : "the process has exited");
			break;
		}
	}
	rc = 0;
out:
	tty_restore();
	moirai_rt_snapshot_free(prev);
	moirai_rt_snapshot_free(cur);
	moirai_rt_monitor_close(mon);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a;
	int rc = parse_args(argc, argv, &a);

	if (rc)
		return rc;
	if (a.clean)
		return do_clean(&a);
	if (!a.target)
		return do_list(a.json);
	return run(&a);
}
