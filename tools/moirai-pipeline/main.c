/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline: packets flow RX -> classify -> process -> TX across the
 * pinned workers of a moirai runtime (pipeline.h).  This file is the
 * command line, the calibration of the slow path, the summary for people
 * and the JSON document for scripts; --compare runs the same seeded
 * traffic through the priority runtime and the FIFO baseline and prints
 * the critical flow's latency side by side.
 * Exit status: 0 success, 1 runtime failure (or packets lost), 2 bad input
 * or usage (including a pcap file that turns out corrupt mid-way: the
 * summary of what was replayed is printed first).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moirai.h>

#include "../tool_json.h"
#include "pipeline.h"
#include "xsk.h"

static const uint8_t default_nh_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t default_port_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };

struct args {
	struct pl_config cfg;
	const char *pcap, *iface, *tx_iface, *write, *routes_file, *listen;
	double slow_factor; /* slow path ~ this many fast paths */
	double fast_target; /* --fast-ns */
	double load;	    /* --load: rate from the calibration */
	const char *near;   /* --near, or the --iface device the topology knows */
	bool near_from_iface;
	bool compare, json, rate_set, quiet;
	struct pl_route *routes;
	int nroutes;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moirai-pipeline [--pcap FILE | --iface IF | --listen ADDR]\n"
		"                       [--write FILE | --tx-iface IF | --forward ADDR]\n"
		"                       [--xdp-mode auto|zerocopy|driver|skb]\n"
		"                       [--duration S] [--rate PPS | --load F] [--seed N]\n"
		"                       [--workers N] [--policy compact|spread] [--smt] [--reserve "
		"K]\n"
		"                       [--reserve-per-node] [--isolated] [--near DEVICE]\n"
		"                       [--sched priority|fifo | --compare] [--critical-share F]\n"
		"                       [--slow-share F] [--slow-factor X] [--fast-ns NS]\n"
		"                       [--flows N]\n"
		"                       [--critical-flows N] [--critical-dscp LIST]\n"
		"                       [--critical-flow ADDR[:PORT]] [--routes FILE]\n"
		"                       [--route-period MS] [--batch N] [--pool N] [--ring N]\n"
		"                       [--drain S]\n"
		"                       [--per-flow] [--quiet] [--json] [--stats | --no-stats]\n"
		"\n"
		"Runs packets RX -> classify -> process -> TX across the pinned workers of a\n"
		"moirai runtime: parse Ethernet/IPv4/UDP, verify checksums, look up a\n"
		"longest-prefix-match route (replaced during the run under QSBR), rewrite\n"
		"TTL/MAC/checksum; packets with IP options take a slow path.  Critical packets\n"
		"run on the critical priority.  Prints counts, drops by reason and per-class\n"
		"arrival -> TX latency.\n"
		"\n"
		"Source (default: the built-in generator, Poisson arrivals):\n"
		"  --pcap FILE         replay an Ethernet pcap file (as fast as buffers allow)\n"
		"  --iface IF          receive from AF_XDP sockets on every RX queue of IF\n"
		"                      (root; until interrupted, or for --duration S)\n"
		"  --listen ADDR       receive from one --forward sender at tcp://HOST:PORT\n"
		"                      (classified packets, their class carried), process and\n"
		"                      transmit them; ends when the sender closes\n"
		"Sink (default: count and discard):\n"
		"  --write FILE        write forwarded packets to a pcap file\n"
		"  --tx-iface IF       send through an AF_XDP socket on IF (with --iface the\n"
		"                      default is the --iface interface)\n"
		"  --forward ADDR      send packets after classify to a moirai-pipeline --listen\n"
		"                      at tcp://HOST:PORT (waits up to 5 s for it), one\n"
		"                      channel per class; no process stage here\n"
		"  --xdp-mode M        AF_XDP mode: auto (default: zerocopy, else driver, else\n"
		"                      skb), zerocopy, driver or skb\n"
		"Generator:\n"
		"  --duration S        arrivals for S seconds (default 2)\n"
		"  --rate PPS          mean arrival rate (default 100000)\n"
		"  --load F            instead, the rate that should keep the workers busy a\n"
		"                      share F of the time (estimated from the calibrated\n"
		"                      per-packet cost plus 500 ns of RX/TX/task overhead)\n"
		"  --seed N            traffic seed (default 1): same seed, same packets\n"
		"  --flows N           background flows (default 64)\n"
		"  --critical-flows N  critical flows, DSCP EF (default 4)\n"
		"  --critical-share F  share of packets in critical flows (default 0.01)\n"
		"  --slow-share F      share of packets with IP options: the slow path\n"
		"                      (default 0.005)\n"
		"Processing:\n"
		"  --slow-factor X     slow path costs about X fast paths (default 100)\n"
		"  --fast-ns NS        make the fast path cost about NS ns per packet with\n"
		"                      payload inspection rounds (default: parsing work only)\n"
		"  --critical-dscp LIST  comma-separated DSCP values classified critical\n"
		"                      (default 46, EF; 'none' for none)\n"
		"  --critical-flow ADDR[:PORT]  also critical: this destination (repeatable)\n"
		"  --routes FILE       route table, lines 'A.B.C.D/LEN MAC' or 'A.B.C.D/LEN drop'\n"
		"                      (default: 0.0.0.0/0 via 02:00:00:00:00:01)\n"
		"  --route-period MS   replace the route table every MS ms (default 100; 0 never)\n"
		"Runtime:\n"
		"  --workers N         workers (default: one per usable core)\n"
		"  --policy P          plan policy, compact (default) or spread\n"
		"  --smt               allow SMT siblings\n"
		"  --reserve K         keep the first K usable cores free\n"
		"  --reserve-per-node  keep the first usable core of every NUMA node free\n"
		"  --isolated          also plan CPUs isolated with isolcpus=/nohz_full=\n"
		"                      (skipped by default)\n"
		"  --near DEVICE       put workers on the NUMA node of network device DEVICE\n"
		"                      first (default with --iface: that interface, when the\n"
		"                      topology knows its node; a veth has none)\n"
		"  --io-worker         worker 0 only runs the RX and TX pollers; the others\n"
		"                      process (default: every worker processes, RX on\n"
		"                      worker 0, TX on the last)\n"
		"  --sched S           priority (default) or fifo (every packet one level)\n"
		"  --compare           run priority, then fifo, on the same traffic; side by side\n"
		"                      (after an unmeasured warm-up of up to 1 s)\n"
		"  --batch N           packets per process task, at most (default 1); a task\n"
		"                      yields between packets to more urgent work\n"
		"  --pool N            packet buffers per node (default 32768)\n"
		"  --ring N            slots of each classify -> process ring (default 16384)\n"
		"  --drain S           wait at most S seconds for packets in flight after the\n"
		"                      source ended (default 5)\n"
		"Output:\n"
		"  --per-flow          count packets and bytes per flow (in the summary and JSON)\n"
		"  --quiet             no live progress line (it is shown only on a terminal)\n"
		"  --json              one JSON document on stdout\n"
		"  --stats             publish the runtime's stats for moirai-top (the default,\n"
		"                      unless MOIRAI_RT_STATS=0): moirai-top PID shows the\n"
		"                      workers live, across the runs of --compare; with\n"
		"                      --stats a failure to publish is an error, by default\n"
		"                      a warning\n"
		"  --no-stats          do not publish (MOIRAI_RT_STATS=1 still does)\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"Exit status: 0 ok, 1 runtime failure or packets lost, 2 bad input.\n");
}

static int bad(const char *fmt, const char *what)
{
	fprintf(stderr, "moirai-pipeline: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	return 2;
}

static int num(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
		fprintf(stderr, "moirai-pipeline: %s takes a number in %g..%g, not '%s'\n", opt, lo,
			hi, s);
		return 2;
	}
	*out = v;
	return 0;
}

static int parse_ip(const char *s, uint32_t *ip)
{
	unsigned a, b, c, d;
	char tail;

	if (sscanf(s, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
	    c > 255 || d > 255)
		return -1;
	*ip = a << 24 | b << 16 | c << 8 | d;
	return 0;
}

static int parse_flow(struct args *a, const char *s)
{
	char buf[64], *colon;
	struct pl_flowmatch m = { 0 };
	double port;

	if (a->cfg.ncrit_flows == PL_MAX_CRIT_FLOWS)
		return bad("at most 64 --critical-flow options, not more ('%s')", s);
	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		if (num("--critical-flow PORT", colon + 1, 1, 65535, &port))
			return 2;
		m.dport = (uint16_t)port;
	}
	if (strlen(s) >= sizeof(buf) || parse_ip(buf, &m.dst))
		return bad("--critical-flow takes A.B.C.D or A.B.C.D:PORT, not '%s'", s);
	a->cfg.crit_flows[a->cfg.ncrit_flows++] = m;
	return 0;
}

static int parse_dscp(struct args *a, const char *s)
{
	char buf[256], *save, *tok;

	a->cfg.crit_dscp = 0;
	if (strcmp(s, "none") == 0)
		return 0;
	if (strlen(s) >= sizeof(buf))
		return bad("--critical-dscp: list too long ('%.40s...')", s);
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		double v;

		if (num("--critical-dscp", tok, 0, 63, &v) || v != floor(v))
			return v != floor(v) ? bad("--critical-dscp: '%s' is not an integer", tok)
					     : 2;
		a->cfg.crit_dscp |= 1ull << (int)v;
	}
	if (!a->cfg.crit_dscp)
		return bad("--critical-dscp: empty list '%s' (use 'none')", s);
	return 0;
}

enum {
	O_PCAP = 256,
	O_IFACE,
	O_TX_IFACE,
	O_XDP_MODE,
	O_WRITE,
	O_DURATION,
	O_RATE,
	O_LOAD,
	O_SEED,
	O_FLOWS,
	O_CRIT_FLOWS,
	O_CRIT_SHARE,
	O_SLOW_SHARE,
	O_SLOW_FACTOR,
	O_FAST_NS,
	O_CRIT_DSCP,
	O_CRIT_FLOW,
	O_ROUTES,
	O_ROUTE_PERIOD,
	O_WORKERS,
	O_POLICY,
	O_SMT,
	O_RESERVE,
	O_RESERVE_PER_NODE,
	O_ISOLATED,
	O_NEAR,
	O_IO_WORKER,
	O_SCHED,
	O_COMPARE,
	O_BATCH,
	O_POOL,
	O_RING,
	O_DRAIN,
	O_PER_FLOW,
	O_QUIET,
	O_JSON,
	O_LISTEN,
	O_FORWARD,
	O_STATS,
	O_NO_STATS,
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "pcap", required_argument, NULL, O_PCAP },
		{ "iface", required_argument, NULL, O_IFACE },
		{ "tx-iface", required_argument, NULL, O_TX_IFACE },
		{ "xdp-mode", required_argument, NULL, O_XDP_MODE },
		{ "write", required_argument, NULL, O_WRITE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "rate", required_argument, NULL, O_RATE },
		{ "load", required_argument, NULL, O_LOAD },
		{ "seed", required_argument, NULL, O_SEED },
		{ "flows", required_argument, NULL, O_FLOWS },
		{ "critical-flows", required_argument, NULL, O_CRIT_FLOWS },
		{ "critical-share", required_argument, NULL, O_CRIT_SHARE },
		{ "slow-share", required_argument, NULL, O_SLOW_SHARE },
		{ "slow-factor", required_argument, NULL, O_SLOW_FACTOR },
		{ "fast-ns", required_argument, NULL, O_FAST_NS },
		{ "critical-dscp", required_argument, NULL, O_CRIT_DSCP },
		{ "critical-flow", required_argument, NULL, O_CRIT_FLOW },
		{ "routes", required_argument, NULL, O_ROUTES },
		{ "route-period", required_argument, NULL, O_ROUTE_PERIOD },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "smt", no_argument, NULL, O_SMT },
		{ "reserve", required_argument, NULL, O_RESERVE },
		{ "reserve-per-node", no_argument, NULL, O_RESERVE_PER_NODE },
		{ "isolated", no_argument, NULL, O_ISOLATED },
		{ "near", required_argument, NULL, O_NEAR },
		{ "io-worker", no_argument, NULL, O_IO_WORKER },
		{ "sched", required_argument, NULL, O_SCHED },
		{ "compare", no_argument, NULL, O_COMPARE },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "pool", required_argument, NULL, O_POOL },
		{ "ring", required_argument, NULL, O_RING },
		{ "drain", required_argument, NULL, O_DRAIN },
		{ "per-flow", no_argument, NULL, O_PER_FLOW },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "json", no_argument, NULL, O_JSON },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "forward", required_argument, NULL, O_FORWARD },
		{ "stats", no_argument, NULL, O_STATS },
		{ "no-stats", no_argument, NULL, O_NO_STATS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct pl_config *c = &a->cfg;
	bool sched_set = false, duration_set = false, xdp_mode_set = false, stats_set = false;
	enum afxdp_mode xdp_mode;
	double v, period_ms = 100;
	int o;

	c->src.rate_pps = 100000;
	c->src.duration_s = 2;
	c->src.seed = 1;
	c->src.flows = 64;
	c->src.critical_flows = 4;
	c->src.critical_share = 0.01;
	c->src.slow_share = 0.005;
	c->crit_dscp = 1ull << 46;
	c->pool_size = 32768;
	c->ring_size = 16384;
	c->batch = 1;
	c->drain_s = 5;
	/* Published by default: one publish per 100 ms on the housekeeping
	 * thread (tens of microseconds for a few workers, docs/top.md),
	 * nothing on the workers' paths, and a failure only warns; the
	 * operator's MOIRAI_RT_STATS=0 turns the default off. */
	c->stats = strcmp(moirai_option_get_str(MOIRAI_OPT_RT_STATS), "0") != 0;
	a->slow_factor = 100;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (o) {
		case O_PCAP: a->pcap = optarg; break;
		case O_IFACE: a->iface = optarg; break;
		case O_TX_IFACE: a->tx_iface = optarg; break;
		case O_XDP_MODE:
			if (afxdp_mode_parse(optarg, &xdp_mode))
				return bad("--xdp-mode: '%s' is not auto, zerocopy, driver or skb",
					   optarg);
			c->src.xdp_mode = c->sink.xdp_mode = (int)xdp_mode;
			xdp_mode_set = true;
			break;
		case O_WRITE: a->write = optarg; break;
		case O_DURATION:
			if (num("--duration", optarg, 0.001, 86400, &c->src.duration_s))
				return 2;
			duration_set = true;
			break;
		case O_RATE:
			if (num("--rate", optarg, 1, 1e9, &c->src.rate_pps))
				return 2;
			a->rate_set = true;
			break;
		case O_LOAD:
			if (num("--load", optarg, 0.01, 10, &a->load))
				return 2;
			break;
		case O_SEED:
			if (num("--seed", optarg, 0, 9007199254740992.0, &v) || v != floor(v))
				return v != floor(v)
					       ? bad("--seed takes an integer, not '%s'", optarg)
					       : 2;
			c->src.seed = (uint64_t)v;
			break;
		case O_FLOWS:
			if (num("--flows", optarg, 1, 65536, &v))
				return 2;
			c->src.flows = (unsigned)v;
			break;
		case O_CRIT_FLOWS:
			if (num("--critical-flows", optarg, 1, 256, &v))
				return 2;
			c->src.critical_flows = (unsigned)v;
			break;
		case O_CRIT_SHARE:
			if (num("--critical-share", optarg, 0, 1, &c->src.critical_share))
				return 2;
			break;
		case O_SLOW_SHARE:
			if (num("--slow-share", optarg, 0, 1, &c->src.slow_share))
				return 2;
			break;
		case O_SLOW_FACTOR:
			if (num("--slow-factor", optarg, 0, 100000, &a->slow_factor))
				return 2;
			break;
		case O_FAST_NS:
			if (num("--fast-ns", optarg, 0, 1e7, &a->fast_target))
				return 2;
			break;
		case O_CRIT_DSCP:
			if (parse_dscp(a, optarg))
				return 2;
			break;
		case O_CRIT_FLOW:
			if (parse_flow(a, optarg))
				return 2;
			break;
		case O_ROUTES: a->routes_file = optarg; break;
		case O_ROUTE_PERIOD:
			if (num("--route-period", optarg, 0, 3600000, &period_ms))
				return 2;
			break;
		case O_WORKERS:
			if (num("--workers", optarg, 1, PL_MAX_WORKERS, &v) || v != floor(v))
				return v != floor(v)
					       ? bad("--workers takes an integer, not '%s'", optarg)
					       : 2;
			c->plan.workers = (int)v;
			break;
		case O_POLICY:
			if (strcmp(optarg, "compact") == 0)
				c->plan.policy = MOIRAI_PLAN_COMPACT;
			else if (strcmp(optarg, "spread") == 0)
				c->plan.policy = MOIRAI_PLAN_SPREAD;
			else
				return bad("--policy takes compact or spread, not '%s'", optarg);
			break;
		case O_SMT: c->plan.smt = true; break;
		case O_RESERVE:
			if (num("--reserve", optarg, 0, 4096, &v) || v != floor(v))
				return v != floor(v)
					       ? bad("--reserve takes an integer, not '%s'", optarg)
					       : 2;
			c->plan.reserve = (int)v;
			break;
		case O_RESERVE_PER_NODE: c->plan.reserve_per_node = true; break;
		case O_ISOLATED: c->plan.use_isolated = true; break;
		case O_NEAR:
			if (!*optarg)
				return bad("%s", "--near takes a device name, not ''");
			a->near = optarg;
			break;
		case O_SCHED:
			if (strcmp(optarg, "priority") == 0)
				c->sched = PL_SCHED_PRIORITY;
			else if (strcmp(optarg, "fifo") == 0)
				c->sched = PL_SCHED_FIFO;
			else
				return bad("--sched takes priority or fifo, not '%s'", optarg);
			sched_set = true;
			break;
		case O_COMPARE: a->compare = true; break;
		case O_IO_WORKER: c->io_worker = true; break;
		case O_BATCH:
			if (num("--batch", optarg, 1, 4096, &v))
				return 2;
			c->batch = (unsigned)v;
			break;
		case O_POOL:
			if (num("--pool", optarg, 64, 1 << 22, &v))
				return 2;
			c->pool_size = (unsigned)v;
			break;
		case O_RING:
			if (num("--ring", optarg, 2, 1 << 22, &v) ||
			    ((unsigned)v & ((unsigned)v - 1)))
				return bad("--ring takes a power of two in 2..4194304, not '%s'",
					   optarg);
			c->ring_size = (unsigned)v;
			break;
		case O_DRAIN:
			if (num("--drain", optarg, 0, 3600, &c->drain_s))
				return 2;
			break;
		case O_PER_FLOW: c->per_flow = true; break;
		case O_QUIET: a->quiet = true; break;
		case O_JSON: a->json = true; break;
		case O_STATS:
			if (stats_set && !c->stats)
				return bad("%s", "--stats and --no-stats are exclusive");
			c->stats = c->stats_required = stats_set = true;
			break;
		case O_NO_STATS:
			if (stats_set && c->stats)
				return bad("%s", "--stats and --no-stats are exclusive");
			c->stats = c->stats_required = false;
			stats_set = true;
			break;
		case O_LISTEN:
			if (strncmp(optarg, "tcp://", 6) != 0)
				return bad("--listen takes tcp://HOST:PORT, not '%s'", optarg);
			a->listen = optarg;
			break;
		case O_FORWARD:
			if (strncmp(optarg, "tcp://", 6) != 0)
				return bad("--forward takes tcp://HOST:PORT, not '%s'", optarg);
			c->forward = optarg;
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("moirai-pipeline %s\n", moirai_version()); exit(0);
		default:
			return bad("unknown or incomplete option '%s' (see --help)",
				   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s' (see --help)", argv[optind]);
	if ((a->pcap != NULL) + (a->iface != NULL) + (a->listen != NULL) > 1)
		return bad("%s", "--pcap, --iface and --listen are exclusive (one source)");
	if ((a->write != NULL) + (a->tx_iface != NULL) + (c->forward != NULL) > 1)
		return bad("%s", "--write, --tx-iface and --forward are exclusive (one sink)");
	if (c->forward && a->listen)
		return bad("%s", "--forward and --listen are the two sides: one per process");
	if (a->compare && (c->forward || a->listen))
		return bad("%s", "--compare runs twice on the same traffic: not with --forward or "
				 "--listen");

	if (xdp_mode_set && !a->iface && !a->tx_iface)
		return bad("%s", "--xdp-mode applies to --iface and --tx-iface");
	if (a->compare && a->iface)
		return bad("%s", "--compare runs twice on the same traffic: not with --iface");
	if (a->iface && !duration_set)
		c->src.duration_s = 0; /* until interrupted */
	if (a->compare && sched_set)
		return bad("%s", "--compare runs both schedulers: drop --sched");
	if (a->load > 0 && a->rate_set)
		return bad("%s", "--rate and --load are exclusive");
	if (a->compare && a->write)
		return bad("%s", "--compare runs twice: --write would keep only the second run");
	c->route_period_ns = (uint64_t)(period_ms * 1e6);
	c->progress = !a->quiet && isatty(2);
	return 0;
}

/* The plan options that differ from the defaults, as on the command line
 * ("" for none). */
static const char *plan_args(const struct args *a, char *buf, size_t len)
{
	const struct moirai_plan_opts *o = &a->cfg.plan;
	int n = 0;

	buf[0] = '\0';
#define ADD(...)                                                              \
	do {                                                                  \
		if (n >= 0 && (size_t)n < len)                                \
			n += snprintf(buf + n, len - (size_t)n, __VA_ARGS__); \
	} while (0)
	if (o->workers)
		ADD(" --workers %d", o->workers);
	if (o->policy == MOIRAI_PLAN_SPREAD)
		ADD(" --policy spread");
	if (o->smt)
		ADD(" --smt");
	if (o->reserve)
		ADD(" --reserve %d", o->reserve);
	if (o->reserve_per_node)
		ADD(" --reserve-per-node");
	if (o->use_isolated)
		ADD(" --isolated");
	if (a->near)
		ADD(" --near %s%s", a->near, a->near_from_iface ? " (from --iface)" : "");
#undef ADD
	return buf[0] ? buf + 1 : buf;
}

/*
 * Make the plan the runtime will make, from the same topology
 * (moirai_topo_load(): MOIRAI_TOPOLOGY too), before any run: options it
 * refuses (too many workers for what --reserve leaves, an unknown --near
 * device) are bad input, exit 2, and its worker count sizes --load.  With
 * --iface and no --near the interface is the device to be near, when the
 * topology knows it: a NIC on a bus has a node; a veth, or a name a
 * foreign topology lacks, has none to prefer, as the planner treats a
 * device without locality.
 */
static int plan_setup(struct args *a, int *workers)
{
	struct moirai_topo *t;
	struct moirai_plan *p;
	char opts[256];
	int rc = moirai_topo_load(&t);

	if (rc) {
		fprintf(stderr, "moirai-pipeline: %s\n", moirai_last_error());
		return 2;
	}
	if (a->near) {
		a->cfg.plan.near_device = a->near;
	} else if (a->iface && moirai_topo_device_node_idx(t, a->iface) != -ENODEV) {
		a->cfg.plan.near_device = a->near = a->iface;
		a->near_from_iface = true;
	}
	rc = moirai_plan_create(t, &a->cfg.plan, &p);
	if (rc) {
		const char *o = plan_args(a, opts, sizeof(opts));

		if (rc == -ENODEV)
			fprintf(stderr, "moirai-pipeline: --near %s: %s\n", a->near,
				moirai_last_error());
		else
			fprintf(stderr, "moirai-pipeline: plan options '%s': %s\n",
				*o ? o : "(defaults)", moirai_last_error());
		moirai_topo_destroy(t);
		return 2;
	}
	*workers = moirai_plan_worker_count(p);
	moirai_plan_destroy(p);
	moirai_topo_destroy(t);
	return 0;
}

/* ---- output ---------------------------------------------------------------- */

static const char *fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns < 10000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	return buf;
}

static const char *fmt_bytes(uint64_t b, char *buf, size_t len)
{
	if (b < 10 * 1024)
		snprintf(buf, len, "%" PRIu64 " B", b);
	else if (b < 10 * 1024 * 1024)
		snprintf(buf, len, "%.1f KiB", (double)b / 1024);
	else
		snprintf(buf, len, "%.1f MiB", (double)b / 1048576);
	return buf;
}

static const char *ipstr(uint32_t ip, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
	return buf;
}

static const char *src_name(const struct args *a)
{
	return a->pcap ? "pcap" : a->iface ? "xdp" : a->listen ? "net" : "gen";
}

static const char *sink_name(const struct args *a)
{
	return a->cfg.forward		 ? "net"
	       : a->write		 ? "pcap"
	       : a->tx_iface || a->iface ? "xdp"
					 : "count";
}

static uint64_t drops_sum(const struct pl_result *r)
{
	uint64_t d = 0;

	for (int i = 0; i < PL_DROP_REASONS; i++)
		d += r->drops[i];
	return d;
}

static void print_text(const struct args *a, const struct pl_result *r)
{
	const char *sched = r->sched == PL_SCHED_FIFO ? "fifo" : "priority";
	char b1[32], b2[32], b3[32], b4[32], b5[32];
	uint64_t d = drops_sum(r);

	printf("== sched %s: %s -> %s, %d workers\n", sched, src_name(a), sink_name(a),
	       r->nworkers);
	{
		char opts[256];
		const char *o = plan_args(a, opts, sizeof(opts));

		printf("plan      %s\n", *o ? o : "defaults (one worker per usable core, compact)");
	}
	printf("packets   in  %-10" PRIu64 " (%s)\n", r->packets_in,
	       fmt_bytes(r->bytes_in, b1, sizeof(b1)));
	printf("          out %-10" PRIu64 " (%s)\n", r->packets_out,
	       fmt_bytes(r->bytes_out, b1, sizeof(b1)));
	printf("          dropped %" PRIu64 ", lost %" PRId64 "\n", d, r->lost);
	if (d) {
		printf("drops    ");
		for (int i = 0; i < PL_DROP_REASONS; i++)
			if (r->drops[i])
				printf(" %s %" PRIu64, pl_drop_name(i), r->drops[i]);
		printf("\n");
	}
	printf("rate      %.0f packets/s over %.3f s (run %.3f s)\n", r->pps, r->active_s,
	       r->elapsed_s);
	if (r->fwd_send)
		printf("forward   %s: %" PRIu64 " packets over the net (critical %" PRIu64
		       "), %" PRIu64 " active messages; window full %" PRIu64
		       " times (packets parked), RX paused %" PRIu64 " polls; %s\n",
		       a->cfg.forward, r->fwd.packets, r->fwd.critical, r->fwd.ams, r->fwd.stalls,
		       r->rx_paused,
		       r->fwd.confirmed ? "the receiver confirmed every packet"
					: "NOT confirmed by the receiver");
	if (r->fwd_listen)
		printf("listen    %s: %" PRIu64 " packets from the sender (critical %" PRIu64
		       "), %" PRIu64 " active messages\n",
		       a->listen, r->fwd.packets, r->fwd.critical, r->fwd.ams);
	printf("classes   critical %" PRIu64 ", slow path %" PRIu64
	       "; process tasks yielded to more urgent work %" PRIu64 " times\n",
	       r->critical_in, r->slow_packets, r->yields);
	printf("latency   arrival -> TX %10s %10s %10s %10s %10s\n", "packets", "p50", "p99",
	       "p99.9", "max");
	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		const struct moirai_hist *h = &r->lat[l];
		const double qs[3] = { 50, 99, 99.9 };
		uint64_t p[3];

		if (!moirai_hist_count(h))
			continue;
		moirai_hist_percentiles(h, qs, 3, p);
		printf("  %-22s %10" PRIu64 " %10s %10s %10s %10s\n",
		       moirai_prio_name(moirai_prio_from_index(l)), moirai_hist_count(h),
		       fmt_ns(p[0], b1, sizeof(b1)), fmt_ns(p[1], b2, sizeof(b2)),
		       fmt_ns(p[2], b3, sizeof(b3)), fmt_ns(moirai_hist_max(h), b4, sizeof(b4)));
	}
	for (int l = 0; r->fwd_listen && l < MOIRAI_PRIO_LEVELS; l++) {
		const struct moirai_hist *h = &r->fwd_lat[l];
		const double qs[3] = { 50, 99, 99.9 };
		uint64_t p[3];
		char name[40];

		if (!moirai_hist_count(h))
			continue;
		moirai_hist_percentiles(h, qs, 3, p);
		snprintf(name, sizeof(name), "%s (from sender)",
			 moirai_prio_name(moirai_prio_from_index(l)));
		printf("  %-22s %10" PRIu64 " %10s %10s %10s %10s\n", name, moirai_hist_count(h),
		       fmt_ns(p[0], b1, sizeof(b1)), fmt_ns(p[1], b2, sizeof(b2)),
		       fmt_ns(p[2], b3, sizeof(b3)), fmt_ns(moirai_hist_max(h), b4, sizeof(b4)));
	}
	if (moirai_hist_count(&r->rx_lag)) {
		const double qs[3] = { 50, 99, 99.9 };
		uint64_t p[3];

		moirai_hist_percentiles(&r->rx_lag, qs, 3, p);
		printf("  %-22s %10" PRIu64 " %10s %10s %10s %10s\n", "(arrival -> RX poll)",
		       moirai_hist_count(&r->rx_lag), fmt_ns(p[0], b1, sizeof(b1)),
		       fmt_ns(p[1], b2, sizeof(b2)), fmt_ns(p[2], b3, sizeof(b3)),
		       fmt_ns(moirai_hist_max(&r->rx_lag), b4, sizeof(b4)));
	}
	printf("workers   %6s %4s %5s %6s %10s %10s %8s %8s\n", "worker", "pu", "node", "load",
	       "packets", "tasks", "steals", "stolen");
	for (int w = 0; w < r->nworkers; w++)
		printf("          %6d %4d %5d %5.0f%% %10" PRIu64 " %10" PRIu64 " %8" PRIu64
		       " %8" PRIu64 "\n",
		       w, r->w[w].pu, r->w[w].node, r->w[w].load * 100, r->w[w].processed,
		       r->w[w].tasks, r->w[w].steals, r->w[w].stolen_from);
	for (int m = 0; m < r->nnodes; m++) {
		const struct pl_mem_result *x = &r->mem[m];

		printf("memory    node %d: %u buffers (%s), peak %u packets in flight (all nodes); "
		       "allocator %s "
		       "committed, %s in use\n",
		       x->node, x->pool_buffers, fmt_bytes(x->pool_bytes, b1, sizeof(b1)),
		       x->pool_peak_in_use, fmt_bytes(x->committed, b2, sizeof(b2)),
		       fmt_bytes(x->in_use, b3, sizeof(b3)));
	}
	printf("routes    %d route%s, table %s; replaced %" PRIu64 " times, %" PRIu64
	       " old tables freed after a grace period\n",
	       a->nroutes, a->nroutes == 1 ? "" : "s", fmt_bytes(r->route_bytes, b1, sizeof(b1)),
	       r->route_updates, r->routes_freed);
	printf("checksum  in 0x%016" PRIx64 "  out 0x%016" PRIx64 "\n", r->checksum_in,
	       r->checksum_out);
	if (r->stats_name[0])
		printf("stats     published for moirai-top as segment %s\n", r->stats_name);
	if (r->nflows) {
		printf("flows     %d%s\n", r->nflows,
		       r->flows_truncated ? " (table full: truncated)" : "");
		for (int i = 0; i < r->nflows; i++)
			printf("          %s:%u -> %s:%u  %" PRIu64 " packets, %" PRIu64 " bytes\n",
			       ipstr(r->flows[i].src, b4, sizeof(b4)), r->flows[i].sport,
			       ipstr(r->flows[i].dst, b5, sizeof(b5)), r->flows[i].dport,
			       r->flows[i].packets, r->flows[i].bytes);
	}
	if (r->lost == 0 && !r->buffers_leaked)
		printf("accounted every packet received was forwarded or dropped with a reason "
		       "(lost 0)%s\n",
		       d ? "" : "; no drops");
	else
		printf("LOST      %" PRId64 " packets not accounted for, %" PRIu64
		       " buffers not back in their pool%s\n",
		       r->lost, r->buffers_leaked, r->drain_timeout ? " (drain timed out)" : "");
}

static void json_lat(const struct moirai_hist *h)
{
	const double qs[3] = { 50, 99, 99.9 };
	uint64_t p[3];

	moirai_hist_percentiles(h, qs, 3, p);
	printf("{ \"count\": %" PRIu64 ", \"p50\": %" PRIu64 ", \"p99\": %" PRIu64
	       ", \"p999\": %" PRIu64 ", \"max\": %" PRIu64 " }",
	       moirai_hist_count(h), p[0], p[1], p[2], moirai_hist_max(h));
}

static void print_json_run(const struct args *a, const struct pl_result *r, const char *indent)
{
	printf("{\n%s  \"sched\": \"%s\",\n", indent,
	       r->sched == PL_SCHED_FIFO ? "fifo" : "priority");
	printf("%s  \"packets_in\": %" PRIu64 ", \"packets_out\": %" PRIu64
	       ", \"bytes_in\": %" PRIu64 ", \"bytes_out\": %" PRIu64 ",\n",
	       indent, r->packets_in, r->packets_out, r->bytes_in, r->bytes_out);
	printf("%s  \"lost\": %" PRId64 ", \"buffers_leaked\": %" PRIu64 ",\n", indent, r->lost,
	       r->buffers_leaked);
	printf("%s  \"drops\": {", indent);
	for (int i = 0; i < PL_DROP_REASONS; i++)
		printf("%s \"%s\": %" PRIu64, i ? "," : "", pl_drop_name(i), r->drops[i]);
	printf(" },\n");
	printf("%s  \"pps\": %.1f, \"active_s\": %.6f, \"elapsed_s\": %.6f,\n", indent, r->pps,
	       r->active_s, r->elapsed_s);
	printf("%s  \"critical_in\": %" PRIu64 ", \"slow_path\": %" PRIu64 ", \"yields\": %" PRIu64
	       ",\n",
	       indent, r->critical_in, r->slow_packets, r->yields);
	printf("%s  \"checksum_in\": \"0x%016" PRIx64 "\", \"checksum_out\": \"0x%016" PRIx64
	       "\",\n",
	       indent, r->checksum_in, r->checksum_out);
	printf("%s  \"latency_ns\": {", indent);
	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		printf("%s\n%s    \"%s\": ", l ? "," : "", indent,
		       moirai_prio_name(moirai_prio_from_index(l)));
		json_lat(&r->lat[l]);
	}
	printf(" },\n%s  \"rx_wait_ns\": ", indent);
	json_lat(&r->rx_lag);
	printf(",\n");
	printf("%s  \"workers\": [", indent);
	for (int w = 0; w < r->nworkers; w++)
		printf("%s\n%s    { \"worker\": %d, \"pu\": %d, \"node\": %d, \"plan_pu\": %d, "
		       "\"plan_node\": %d, \"load\": %.4f, "
		       "\"packets\": %" PRIu64 ", \"tasks\": %" PRIu64 ", \"steals\": %" PRIu64
		       ", \"stolen_from\": %" PRIu64 ", \"parks\": %" PRIu64
		       ", \"mailbox_full\": %" PRIu64 " }",
		       w ? "," : "", indent, w, r->w[w].pu, r->w[w].node, r->w[w].plan_pu,
		       r->w[w].plan_node, r->w[w].load, r->w[w].processed, r->w[w].tasks,
		       r->w[w].steals, r->w[w].stolen_from, r->w[w].parks, r->w[w].mailbox_full);
	printf(" ],\n");
	printf("%s  \"memory\": [", indent);
	for (int m = 0; m < r->nnodes; m++)
		printf("%s\n%s    { \"node\": %d, \"pool_buffers\": %u, \"pool_bytes\": %" PRIu64
		       ", \"peak_in_flight\": %u, \"committed_bytes\": %" PRIu64
		       ", \"in_use_bytes\": %" PRIu64 " }",
		       m ? "," : "", indent, r->mem[m].node, r->mem[m].pool_buffers,
		       r->mem[m].pool_bytes, r->mem[m].pool_peak_in_use, r->mem[m].committed,
		       r->mem[m].in_use);
	printf(" ],\n");
	printf("%s  \"routes\": { \"count\": %d, \"table_bytes\": %" PRIu64
	       ", \"replacements\": %" PRIu64 ", \"freed\": %" PRIu64 " },\n",
	       indent, a->nroutes, r->route_bytes, r->route_updates, r->routes_freed);
	/* The segment moirai-top read during this run (null: not published). */
	printf("%s  \"stats\": ", indent);
	if (r->stats_name[0])
		tool_json_str(stdout, r->stats_name);
	else
		printf("null");
	if (a->cfg.per_flow) {
		char s[32], d[32];

		printf(",\n%s  \"flows_truncated\": %s,\n%s  \"flows\": [", indent,
		       r->flows_truncated ? "true" : "false", indent);
		for (int i = 0; i < r->nflows; i++)
			printf("%s\n%s    { \"src\": \"%s\", \"sport\": %u, \"dst\": \"%s\", "
			       "\"dport\": %u, \"packets\": %" PRIu64 ", \"bytes\": %" PRIu64 " }",
			       i ? "," : "", indent, ipstr(r->flows[i].src, s, sizeof(s)),
			       r->flows[i].sport, ipstr(r->flows[i].dst, d, sizeof(d)),
			       r->flows[i].dport, r->flows[i].packets, r->flows[i].bytes);
		printf(" ]");
	}
	if (r->fwd_send || r->fwd_listen) {
		printf(",\n%s  \"forwarded_net\": %" PRIu64 ",\n", indent,
		       r->fwd_send ? r->packets_out : 0);
		printf("%s  \"net\": { \"role\": \"%s\", \"address\": ", indent,
		       r->fwd_send ? "forward" : "listen");
		tool_json_str(stdout, r->fwd_send ? a->cfg.forward : a->listen);
		printf(", \"packets\": %" PRIu64 ", \"critical\": %" PRIu64 ", \"ams\": %" PRIu64
		       ", \"stalls\": %" PRIu64 ", \"window_full\": %" PRIu64
		       ", \"rx_paused\": %" PRIu64 ", \"refused\": %" PRIu64
		       ", \"confirmed\": %s, \"error\": ",
		       r->fwd.packets, r->fwd.critical, r->fwd.ams, r->fwd.stalls,
		       r->fwd.window_full, r->rx_paused, r->fwd.refused,
		       r->fwd.confirmed ? "true" : "false");
		tool_json_str(stdout, r->net_error);
		printf(" }");
		if (r->fwd_listen) {
			printf(",\n%s  \"forward_latency_ns\": {", indent);
			for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
				printf("%s\n%s    \"%s\": ", l ? "," : "", indent,
				       moirai_prio_name(moirai_prio_from_index(l)));
				json_lat(&r->fwd_lat[l]);
			}
			printf(" }");
		}
	}
	if (r->src_error[0]) {
		printf(",\n%s  \"source_error\": \"", indent);
		for (const char *p = r->src_error; *p; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p >= 0x20)
				putchar(*p);
		printf("\"");
	}
}

static void print_compare(const struct pl_result *pr, const struct pl_result *fi)
{
	static const struct {
		const char *name;
		double q;
	} rows[] = { { "p50", 50 }, { "p99", 99 }, { "p99.9", 99.9 } };
	char b1[32], b2[32];

	for (int l = 0; l < MOIRAI_PRIO_LEVELS; l++) {
		const struct moirai_hist *hp = &pr->lat[l], *hf = &fi->lat[l];

		if (!moirai_hist_count(hp) && !moirai_hist_count(hf))
			continue;
		printf("%-10s %-7s %12s %12s %14s\n", moirai_prio_name(moirai_prio_from_index(l)),
		       "", "priority", "fifo", "fifo/priority");
		if (l == moirai_prio_index(MOIRAI_PRIO_CRITICAL) && pr->critical_in &&
		    fi->critical_in)
			printf("%-10s %-7s %11.1f%% %11.1f%%   (of %" PRIu64 " critical packets)\n",
			       "", "sent",
			       100.0 * (double)moirai_hist_count(hp) / (double)pr->critical_in,
			       100.0 * (double)moirai_hist_count(hf) / (double)fi->critical_in,
			       pr->critical_in);
		for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			uint64_t a = moirai_hist_percentile(hp, rows[i].q);
			uint64_t b = moirai_hist_percentile(hf, rows[i].q);

			printf("%-10s %-7s %12s %12s %13.2fx\n", "", rows[i].name,
			       fmt_ns(a, b1, sizeof(b1)), fmt_ns(b, b2, sizeof(b2)),
			       a ? (double)b / (double)a : 0.0);
		}
	}
}

/* Publishing was the default and failed: say so once (the run went on). */
static void stats_warn(const struct pl_result *r)
{
	static bool warned;

	if (r->stats_error[0] && !warned) {
		fprintf(stderr, "moirai-pipeline: not publishing stats for moirai-top: %s\n",
			r->stats_error);
		warned = true;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	pl_interrupt();
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct pl_result res[2];
	struct pl_route def;
	double fast_ns = 0, iter_ns = 0;
	char err[512] = "";
	int rc, nruns, status = 0, workers;

	if (parse_args(argc, argv, &a))
		return 2;
	if (plan_setup(&a, &workers))
		return 2;
	if (a.routes_file) {
		a.nroutes = pl_routes_parse(a.routes_file, &a.routes, err, sizeof(err));
		if (a.nroutes < 0)
			return bad("%s", err);
	} else {
		pl_routes_default(&def, default_nh_mac);
		a.routes = &def;
		a.nroutes = 1;
	}
	a.cfg.routes = a.routes;
	a.cfg.nroutes = a.nroutes;
	memcpy(a.cfg.port_mac, default_port_mac, 6);
	a.cfg.src_ops = a.pcap	   ? &pl_pcap_in_ops
			: a.iface  ? &pl_xdp_in_ops
			: a.listen ? &pl_net_in_ops
				   : &pl_gen_ops;
	a.cfg.src.path = a.pcap ? a.pcap : a.iface ? a.iface : a.listen;
	/* AF_XDP TX: --tx-iface, or by default back out of the --iface interface */
	/* --forward: the packets leave through the net before the process
	 * stage; the TX stage stays idle on the counting sink. */
	a.cfg.sink_ops = a.cfg.forward		 ? &pl_count_ops
			 : a.write		 ? &pl_pcap_out_ops
			 : a.tx_iface || a.iface ? &pl_xdp_out_ops
						 : &pl_count_ops;
	a.cfg.sink.path = a.write ? a.write : a.tx_iface ? a.tx_iface : a.iface;

	/* The slow path costs slow_factor fast paths, measured here. */
	pl_calibrate(&a.cfg, &fast_ns, &iter_ns);
	if (a.fast_target > fast_ns) {
		/* --fast-ns: heavier per-packet work, made of inspection rounds. */
		a.cfg.fast_iters = (unsigned)round((a.fast_target - fast_ns) / iter_ns);
		fast_ns += a.cfg.fast_iters * iter_ns;
	}
	a.cfg.slow_iters = (unsigned)fmax(1, round(a.slow_factor * fast_ns / iter_ns));
	if (a.load > 0) {
		double per_pkt = fast_ns + a.cfg.src.slow_share * a.cfg.slow_iters * iter_ns + 500;

		a.cfg.src.rate_pps = fmax(1, a.load * workers * 1e9 / per_pkt);
	}
	if (!a.json && !a.pcap && !a.iface && !a.listen)
		printf("moirai-pipeline %s: generator seed %" PRIu64 ", %.0f packets/s Poisson for "
		       "%g s, critical %.2f%%, slow path %.2f%%\n"
		       "calibrated: fast path %.0f ns/packet (%u inspection rounds), slow path %u "
		       "more "
		       "CRC rounds (~%.0fx)\n",
		       moirai_version(), a.cfg.src.seed, a.cfg.src.rate_pps, a.cfg.src.duration_s,
		       a.cfg.src.critical_share * 100, a.cfg.src.slow_share * 100, fast_ns,
		       a.cfg.fast_iters, a.cfg.slow_iters,
		       fast_ns > 0 ? (fast_ns + a.cfg.slow_iters * iter_ns) / fast_ns : 0);

	if (a.cfg.stats && !a.json) {
		/* Where to watch it: the runtime names its segment after the
		 * pid unless MOIRAI_RT_STATS gives a name (moirai/rt.h). */
		const char *opt = moirai_option_get_str(MOIRAI_OPT_RT_STATS);

		if (*opt && strcmp(opt, "1") != 0)
			printf("live view: moirai-top %s\n", opt);
		else
			printf("live view: moirai-top %ld\n", (long)getpid());
		fflush(stdout);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	nruns = a.compare ? 2 : 1;
	if (a.compare && !a.pcap) {
		/*
		 * A run that is not measured first, on the same traffic: the
		 * first run of a process pays for what the second finds warm
		 * (its p99 of arrival -> RX poll was 2.5 ms against 0.5 ms in
		 * the same process, both ways round), which made --compare
		 * favour whichever scheduler went second.
		 */
		struct pl_config w = a.cfg;
		struct pl_result wr;

		w.sched = PL_SCHED_PRIORITY;
		w.label = "warm-up";
		w.src.duration_s = fmin(a.cfg.src.duration_s, 1.0);
		rc = pl_run(&w, &wr, err, sizeof(err));
		if (rc == 0) {
			stats_warn(&wr);
			pl_result_fini(&wr);
		}
	}
	for (int i = 0; i < nruns; i++) {
		if (a.compare)
			a.cfg.sched = i == 0 ? PL_SCHED_PRIORITY : PL_SCHED_FIFO;
		a.cfg.label = a.compare ? (i == 0 ? "priority" : "fifo") : NULL;
		rc = pl_run(&a.cfg, &res[i], err, sizeof(err));
		if (rc) {
			for (int k = 0; k < i; k++)
				pl_result_fini(&res[k]);
			if (a.routes != &def)
				free(a.routes);
			fprintf(stderr, "moirai-pipeline: %s\n", err);
			/* bad input, or an interface that cannot be used
			 * (not root, no such interface, no XDP): exit 2 */
			return rc == -EINVAL || rc == -EPERM || rc == -ENODEV ||
					       rc == -EOPNOTSUPP || rc == -EADDRNOTAVAIL ||
					       rc == -EPROTO || rc == -EPROTONOSUPPORT
				       ? 2
				       : 1;
		}
		stats_warn(&res[i]);
		if (res[i].interrupted)
			nruns = i + 1;
	}
	if (a.json) {
		print_json_run(&a, &res[0], "");
		if (nruns == 2) {
			printf(",\n  \"fifo\": ");
			print_json_run(&a, &res[1], "  ");
			printf("\n  }");
		}
		printf(",\n  \"plan\": { \"policy\": \"%s\", \"smt\": %s, \"workers\": %d, "
		       "\"reserve\": %d, \"reserve_per_node\": %s, \"isolated\": %s, \"near\": ",
		       a.cfg.plan.policy == MOIRAI_PLAN_SPREAD ? "spread" : "compact",
		       a.cfg.plan.smt ? "true" : "false", workers, a.cfg.plan.reserve,
		       a.cfg.plan.reserve_per_node ? "true" : "false",
		       a.cfg.plan.use_isolated ? "true" : "false");
		if (a.near)
			tool_json_str(stdout, a.near);
		else
			printf("null");
		printf(", \"near_from_iface\": %s }", a.near_from_iface ? "true" : "false");
		printf(",\n  \"source\": \"%s\", \"sink\": \"%s\", \"seed\": %" PRIu64
		       ", \"rate_pps\": %.1f, \"duration_s\": %g,\n"
		       "  \"critical_share\": %g, \"slow_share\": %g, \"slow_iters\": %u, "
		       "\"fast_iters\": %u, "
		       "\"fast_path_ns\": %.1f\n}\n",
		       src_name(&a), sink_name(&a), a.cfg.src.seed, a.cfg.src.rate_pps,
		       a.cfg.src.duration_s, a.cfg.src.critical_share, a.cfg.src.slow_share,
		       a.cfg.slow_iters, a.cfg.fast_iters, fast_ns);
	} else {
		for (int i = 0; i < nruns; i++)
			print_text(&a, &res[i]);
		if (nruns == 2) {
			printf("== arrival -> TX latency, same seeded traffic, same %d workers\n",
			       res[0].nworkers);
			print_compare(&res[0], &res[1]);
		}
	}
	for (int i = 0; i < nruns; i++) {
		if (res[i].src_error[0]) {
			fprintf(stderr, "moirai-pipeline: %s\n", res[i].src_error);
			status = 2;
		} else if (res[i].net_error[0]) {
			/* The peer failed: a runtime failure; the accounting
			 * above still balances. */
			fprintf(stderr, "moirai-pipeline: %s\n", res[i].net_error);
			status = 1;
		} else if (res[i].lost || res[i].buffers_leaked) {
			if (!status)
				fprintf(stderr, "moirai-pipeline: %" PRId64 " packets lost\n",
					res[i].lost);
			status = status ? status : 1;
		}
		pl_result_fini(&res[i]);
	}
	if (a.routes != &def)
		free(a.routes);
	return status;
}
