/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The AF_XDP wrapper of moirai-pipeline (tools/moirai-pipeline/xsk.c).
 *
 * Without arguments: the cases that touch no interface's traffic -- bad
 * configurations, a missing interface (ENODEV), a queue out of range, the
 * not-root refusal (a child that dropped to nobody), mode names.  No XDP
 * program is ever attached here: the host's interfaces belong to everyone
 * on this machine.
 *
 * With --reflect IF (run by tests/xdp/test_xsk_veth.sh inside a network
 * namespace of its own): one XSK per RX queue of IF, each with its UMEM on
 * a node; every IPv4/UDP frame whose destination port is in the test's
 * range is counted per port and sent back unchanged through the same
 * socket's TX ring; everything else (IPv6 neighbour discovery on a fresh
 * link) is counted apart and released.  Prints "ready" once every socket
 * is bound, then a summary.  Exit 0 when exactly --expect test frames came
 * in and every transmitted frame completed, 1 otherwise, 77 when XDP is
 * unavailable (the script skips), 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include <moirai.h>

#include "../../tools/moirai-pipeline/xsk.h"

/* ---- unit cases ---------------------------------------------------------- */

static void test_bad_config(void **state)
{
	struct afxdp_config c = { .ifname = "lo", .rx = true, .node = MOIRAI_NODE_ANY };
	struct afxdp_sock *s = NULL;
	char err[256];

	c.frames = 1000;
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "lo: 1000 frames"));
	c.frames = 32;
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	c.frames = 0;
	c.frame_size = 3000;
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "frame size 3000"));
	c.frame_size = 0;
	c.rx = false;
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "neither RX nor TX"));
	c.rx = true;
	c.ifname = "";
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	c.ifname = "an-interface-name-too-long";
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	c.ifname = NULL;
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(afxdp_open(NULL, &s, NULL, 0), -EINVAL);
	assert_null(s);
}

static void test_no_such_interface(void **state)
{
	struct afxdp_config c = { .ifname = "mxdp-none0", .rx = true, .node = MOIRAI_NODE_ANY };
	struct afxdp_sock *s = NULL;
	char err[256];

	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -ENODEV);
	assert_string_equal(err, "mxdp-none0: no such network interface");
	assert_null(s);
	assert_int_equal(afxdp_queue_count("mxdp-none0"), -ENODEV);
}

static void test_queue_out_of_range(void **state)
{
	struct afxdp_config c = { .ifname = "lo", .rx = true, .node = MOIRAI_NODE_ANY };
	struct afxdp_sock *s = NULL;
	char err[256], want[64];
	int nq = afxdp_queue_count("lo");

	assert_true(nq >= 1);
	c.queue = (uint32_t)nq; /* refused before anything is attached */
	assert_int_equal(afxdp_open(&c, &s, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "lo: queue %d out of range", nq);
	assert_non_null(strstr(err, want));
}

/* As nobody, without capabilities: socket(AF_XDP) is refused before any
 * program is loaded, so this touches no traffic of the host's lo. */
static void open_as_nobody(void *arg)
{
	struct afxdp_config c = { .ifname = "lo", .rx = true, .node = MOIRAI_NODE_ANY };
	struct afxdp_sock *s = NULL;
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;
	char err[256];
	int rc;

	(void)arg;
	if (geteuid() == 0 &&
	    (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)))
		_exit(3);
	c.mode = AFXDP_MODE_SKB;
	rc = afxdp_open(&c, &s, err, sizeof(err));
	if (rc != -EPERM)
		_exit(4);
	if (!strstr(err, "lo: AF_XDP needs root or CAP_NET_ADMIN/CAP_BPF"))
		_exit(5);
	_exit(0);
}

static void test_not_root(void **state)
{
	int st = test_run_in_child(open_as_nobody, NULL);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_mode_names(void **state)
{
	enum afxdp_mode m;

	for (int i = AFXDP_MODE_AUTO; i <= AFXDP_MODE_SKB; i++) {
		assert_int_equal(afxdp_mode_parse(afxdp_mode_name((enum afxdp_mode)i), &m), 0);
		assert_int_equal((int)m, i);
	}
	assert_int_equal(afxdp_mode_parse("native", &m), -EINVAL);
	assert_int_equal(afxdp_mode_parse(NULL, &m), -EINVAL);
	assert_string_equal(afxdp_mode_name((enum afxdp_mode)42), "?");
}

/* ---- --reflect ------------------------------------------------------------ */

#define MAX_QUEUES 64
#define BURST	   32
#define NPORTS	   64

struct reflect {
	const char *ifname;
	enum afxdp_mode mode;
	int node;
	long expect;
	double timeout, linger;
	unsigned port_lo, port_hi;
	int queues;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Destination port of an IPv4/UDP frame, or -1. */
static int udp_dport(const uint8_t *p, uint32_t len)
{
	uint32_t ihl;

	if (len < 14 + 20 + 8 || p[12] != 0x08 || p[13] != 0x00 || (p[14] >> 4) != 4)
		return -1;
	ihl = (uint32_t)(p[14] & 15) * 4;
	if (ihl < 20 || p[14 + 9] != 17 || len < 14 + ihl + 8)
		return -1;
	return (p[14 + ihl + 2] << 8) | p[14 + ihl + 3];
}

static int reflect_main(const struct reflect *r)
{
	struct afxdp_sock *socks[MAX_QUEUES] = { 0 };
	struct pollfd pfd[MAX_QUEUES];
	long per_port[NPORTS] = { 0 };
	long rx_test = 0, rx_other = 0, tx = 0, tx_fail = 0;
	double start, deadline, done_at = 0;
	char err[256];
	int nq, rc, status = 1;

	nq = afxdp_queue_count(r->ifname);
	if (nq < 0) {
		fprintf(stderr, "test_xsk: %s: no such network interface\n", r->ifname);
		return 2;
	}
	if (r->queues > 0 && r->queues < nq)
		nq = r->queues;
	if (nq > MAX_QUEUES)
		nq = MAX_QUEUES;
	for (int q = 0; q < nq; q++) {
		struct afxdp_config c = {
			.ifname = r->ifname,
			.queue = (uint32_t)q,
			.node = r->node,
			.mode = r->mode,
			.rx = true,
			.tx = true,
		};
		rc = afxdp_open(&c, &socks[q], err, sizeof(err));
		if (rc) {
			fprintf(stderr, "test_xsk: %s\n", err);
			status = rc == -EOPNOTSUPP ? 77 : 1;
			goto out;
		}
		pfd[q].fd = afxdp_fd(socks[q]);
		pfd[q].events = POLLIN;
		printf("socket %s queue %d mode %s node %d\n", r->ifname, q,
		       afxdp_mode_name(afxdp_mode(socks[q])), afxdp_node(socks[q]));
	}
	printf("ready\n");
	fflush(stdout);

	start = now_s();
	deadline = start + r->timeout;
	for (;;) {
		unsigned busy = 0, inflight = 0;
		double t;

		for (int q = 0; q < nq; q++) {
			struct afxdp_frame f[BURST];
			const void *pkts[BURST];
			uint32_t lens[BURST];
			unsigned n, k = 0, sent = 0;

			n = afxdp_rx_burst(socks[q], f, BURST);
			busy += n;
			for (unsigned i = 0; i < n; i++) {
				int port = udp_dport(f[i].data, f[i].len);

				if (port >= (int)r->port_lo && port <= (int)r->port_hi) {
					rx_test++;
					per_port[(unsigned)port - r->port_lo]++;
					pkts[k] = f[i].data;
					lens[k++] = f[i].len;
				} else {
					rx_other++;
				}
			}
			/* bounded: frames complete as the peer takes them */
			for (int tries = 0; sent < k && tries < 100000; tries++) {
				unsigned m = afxdp_tx_burst(socks[q], pkts + sent, lens + sent,
							    k - sent);
				sent += m;
				if (!m) {
					afxdp_tx_reap(socks[q]);
					usleep(10);
				}
			}
			tx += sent;
			tx_fail += k - sent;
			afxdp_rx_release(socks[q], f, n);
			inflight += afxdp_tx_reap(socks[q]);
		}
		t = now_s();
		if (rx_test >= r->expect && inflight == 0) {
			/* stay a little to see frames beyond the expected */
			if (done_at == 0)
				done_at = t;
			else if (t - done_at >= r->linger)
				break;
		}
		if (t > deadline) {
			fprintf(stderr, "test_xsk: timeout after %.0f s: %ld of %ld test frames\n",
				r->timeout, rx_test, r->expect);
			break;
		}
		if (!busy)
			poll(pfd, (nfds_t)nq, inflight ? 0 : 5);
	}

	for (unsigned p = 0; p <= r->port_hi - r->port_lo && p < NPORTS; p++)
		if (per_port[p])
			printf("port %u %ld\n", r->port_lo + p, per_port[p]);
	printf("rx_test %ld rx_other %ld tx %ld tx_fail %ld\n", rx_test, rx_other, tx, tx_fail);
	for (int q = 0; q < nq; q++) {
		struct afxdp_stats st;

		afxdp_stats_get(socks[q], &st);
		printf("queue %d rx %llu tx %llu completed %llu kicks %llu kick_errors %llu "
		       "k_rx_dropped %llu k_rx_ring_full %llu k_fill_empty %llu\n",
		       q, (unsigned long long)st.rx_packets, (unsigned long long)st.tx_packets,
		       (unsigned long long)st.tx_completed, (unsigned long long)st.tx_kicks,
		       (unsigned long long)st.tx_kick_errors, (unsigned long long)st.k_rx_dropped,
		       (unsigned long long)st.k_rx_ring_full, (unsigned long long)st.k_fill_empty);
		if (st.tx_completed != st.tx_packets)
			fprintf(stderr, "test_xsk: queue %d: %llu of %llu frames completed\n", q,
				(unsigned long long)st.tx_completed,
				(unsigned long long)st.tx_packets);
	}
	status = rx_test == r->expect && tx == rx_test && tx_fail == 0 ? 0 : 1;
out:
	for (int q = 0; q < nq; q++)
		afxdp_close(socks[q]);
	return status;
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr,
		"test_xsk: %s '%s' (usage: test_xsk [--reflect IF --expect N "
		"[--mode auto|zerocopy|driver|skb] [--ports LO-HI] [--queues N] "
		"[--node N] [--timeout S] [--linger S]])\n",
		what, arg ? arg : "");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reflect", required_argument, NULL, 'r' },
		{ "expect", required_argument, NULL, 'e' },
		{ "mode", required_argument, NULL, 'm' },
		{ "ports", required_argument, NULL, 'p' },
		{ "queues", required_argument, NULL, 'q' },
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "linger", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct reflect r = {
		.node = MOIRAI_NODE_ANY,
		.expect = -1,
		.timeout = 30,
		.linger = 0.3,
		.port_lo = 9000,
		.port_hi = 9063,
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': r.ifname = optarg; break;
		case 'e':
			r.expect = strtol(optarg, &end, 10);
			if (*end || r.expect < 0)
				return usage_error("bad --expect", optarg);
			break;
		case 'm':
			if (afxdp_mode_parse(optarg, &r.mode))
				return usage_error("unknown --mode", optarg);
			break;
		case 'p':
			if (sscanf(optarg, "%u-%u", &r.port_lo, &r.port_hi) != 2 ||
			    r.port_lo > r.port_hi || r.port_hi - r.port_lo >= NPORTS ||
			    r.port_hi > 65535)
				return usage_error("bad --ports (LO-HI, at most 64 ports)", optarg);
			break;
		case 'q':
			r.queues = (int)strtol(optarg, &end, 10);
			if (*end || r.queues < 1)
				return usage_error("bad --queues", optarg);
			break;
		case 'n':
			r.node = (int)strtol(optarg, &end, 10);
			if (*end || r.node < 0)
				return usage_error("bad --node", optarg);
			break;
		case 't':
			r.timeout = strtod(optarg, &end);
			if (*end || !(r.timeout > 0 && r.timeout <= 600))
				return usage_error("bad --timeout", optarg);
			break;
		case 'l':
			r.linger = strtod(optarg, &end);
			if (*end || !(r.linger >= 0 && r.linger <= 10))
				return usage_error("bad --linger", optarg);
			break;
		default: return usage_error("bad option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (r.ifname) {
		if (r.expect < 0)
			return usage_error("--reflect needs --expect", r.ifname);
		return reflect_main(&r);
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),	   cmocka_unit_test(test_no_such_interface),
		cmocka_unit_test(test_queue_out_of_range), cmocka_unit_test(test_not_root),
		cmocka_unit_test(test_mode_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
