/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The built-in open-loop generator (a source port).  Arrivals are a
 * Poisson process at the configured rate: exponential gaps drawn from a
 * seeded generator, fixed before the run, so two runs with one seed see
 * the same packets at the same offsets from their start whatever the
 * pipeline does.  Each packet is stamped with its scheduled arrival time,
 * not the time the poller got to it, so a late poller shows up as
 * latency (no coordinated omission).  A packet that finds the pool empty
 * is dropped (no_buffer), as a NIC would.
 *
 * Content: packet i depends only on (seed, i).  A packet belongs to a
 * critical flow (DSCP EF, 10.2.0.k:5000+k) with probability
 * critical_share, else to one of the background flows (10.1.x.y:9000);
 * frame sizes follow a simple IMIX (60 x7, 590 x4, 1514 x1 in 12); with
 * probability slow_share it carries an IPv4 Router Alert option, which
 * sends it down the slow path.  IPv4 and UDP checksums are valid.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "packet.h"

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double unit(uint64_t *s)
{
	return ((double)(splitmix(s) >> 11) + 1.0) / 9007199254740992.0;
}

static void gen_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void gen_wr32(uint8_t *p, uint32_t v)
{
	gen_wr16(p, (uint16_t)(v >> 16));
	gen_wr16(p + 2, (uint16_t)v);
}

void pl_gen_init(struct pl_gen *g, const struct pl_port_conf *c)
{
	memset(g, 0, sizeof(*g));
	g->seed = c->seed;
	g->arrival_rng = c->seed ^ 0x6172726976616c73ull; /* "arrivals" */
	g->rate = c->rate_pps;
	g->duration_ns = (uint64_t)(c->duration_s * 1e9);
	g->critical_share = c->critical_share;
	g->slow_share = c->slow_share;
	g->flows = c->flows ? c->flows : 1;
	g->critical_flows = c->critical_flows ? c->critical_flows : 1;
	g->start_ns = c->start_ns;
	g->next_ns = 0;
	{
		uint64_t bs = c->seed ^ 0x7061796c6f616473ull; /* "payloads" */

		for (unsigned k = 0; k < PL_GEN_BLOCK; k += 8) {
			uint64_t v = splitmix(&bs);

			memcpy(g->block + k, &v, 8);
		}
		g->prefix[0] = 0;
		for (unsigned k = 0; k < PL_GEN_BLOCK / 2; k++)
			g->prefix[k + 1] = g->prefix[k] +
					   (uint32_t)(g->block[2 * k] << 8 | g->block[2 * k + 1]);
	}
	if (g->rate > 0)
		g->next_ns = (uint64_t)(-log(unit(&g->arrival_rng)) / g->rate * 1e9);
}

uint32_t pl_gen_frame(const struct pl_gen *g, uint64_t i, uint8_t *f, uint32_t *flow, bool *crit)
{
	uint64_t s = g->seed * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xd1b54a32d192ed03ull;
	uint64_t r = splitmix(&s);
	bool critical = unit(&s) <= g->critical_share && g->critical_share > 0;
	bool slow = g->slow_share > 0 && unit(&s) <= g->slow_share;
	unsigned size_pick = (unsigned)(r % 12);
	uint32_t len = size_pick < 7 ? 60 : size_pick < 11 ? 590 : 1514;
	uint32_t ihl = slow ? 24 : 20;
	uint32_t fl, src, dst;
	uint16_t sport, dport;
	uint8_t dscp;
	uint8_t *ip = f + PL_ETH_HLEN, *udp, *pay;
	uint32_t ip_len = len - PL_ETH_HLEN, udp_len = ip_len - ihl;

	if (critical) {
		fl = (uint32_t)((r >> 8) % g->critical_flows);
		src = 0x0a00ff00u | (fl & 0xff);
		dst = 0x0a020000u | fl;
		sport = (uint16_t)(2000 + fl);
		dport = (uint16_t)(5000 + fl);
		dscp = PL_DSCP_EF;
		*flow = fl;
	} else {
		fl = (uint32_t)((r >> 8) % g->flows);
		src = 0x0a000000u | (fl & 0xffff);
		dst = 0x0a010000u | (fl & 0xffff);
		sport = (uint16_t)(1024 + (fl & 0x7fff));
		dport = 9000;
		dscp = 0;
		*flow = g->critical_flows + fl;
	}
	*crit = critical;
	/* Ethernet: to our port, from a per-flow station. */
	static const uint8_t port_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
	memcpy(f, port_mac, 6);
	f[6] = 0x02;
	f[7] = 0x00;
	gen_wr32(f + 8, 0x10000000u | *flow);
	gen_wr16(f + 12, PL_ETHERTYPE_IP);
	/* IPv4 */
	ip[0] = (uint8_t)(0x40 | ihl / 4);
	ip[1] = (uint8_t)(dscp << 2);
	gen_wr16(ip + 2, (uint16_t)ip_len);
	gen_wr16(ip + 4, (uint16_t)i);
	gen_wr16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = PL_IPPROTO_UDP;
	gen_wr16(ip + 10, 0);
	gen_wr32(ip + 12, src);
	gen_wr32(ip + 16, dst);
	if (slow) { /* Router Alert (RFC 2113) */
		ip[20] = 0x94;
		ip[21] = 4;
		ip[22] = 0;
		ip[23] = 0;
	}
	gen_wr16(ip + 10, pl_ip_csum(ip, ihl));
	/* UDP, then a deterministic payload: the packet index first. */
	udp = ip + ihl;
	gen_wr16(udp, sport);
	gen_wr16(udp + 2, dport);
	gen_wr16(udp + 4, (uint16_t)udp_len);
	gen_wr16(udp + 6, 0);
	pay = udp + 8;
	/* Payload: the packet index, then a slice of the seeded block at a
	 * per-packet even offset.  The UDP checksum comes from the block's
	 * prefix sums (O(1), so generating costs a copy, as a NIC's DMA
	 * would): one's complement addition is associative, so summing the
	 * 16-bit words in any grouping and folding once gives the same sum. */
	{
		uint32_t off = (uint32_t)(splitmix(&s) % (PL_GEN_BLOCK / 4)) * 2;
		uint32_t n = udp_len - 16, even = n & ~1u;
		uint64_t sum = (src >> 16) + (src & 0xffffu) + (dst >> 16) + (dst & 0xffffu) +
			       PL_IPPROTO_UDP + udp_len + sport + dport + udp_len;

		memcpy(pay, &i, 8);
		for (int k = 0; k < 8; k += 2)
			sum += (uint32_t)(pay[k] << 8 | pay[k + 1]);
		memcpy(pay + 8, g->block + off, n);
		sum += g->prefix[(off + even) / 2] - g->prefix[off / 2];
		if (n & 1)
			sum += (uint32_t)g->block[off + n - 1] << 8;
		while (sum >> 16)
			sum = (sum & 0xffffu) + (sum >> 16);
		sum = ~sum & 0xffffu;
		gen_wr16(udp + 6, sum ? (uint16_t)sum : 0xffff);
	}
	return len;
}

static int gen_open(struct pl_port *port, const struct pl_port_conf *conf, char *err, size_t errlen)
{
	struct pl_gen *g = calloc(1, sizeof(*g));

	if (!g) {
		snprintf(err, errlen, "generator: out of memory");
		return -ENOMEM;
	}
	pl_gen_init(g, conf);
	port->priv = g;
	return 0;
}

static int gen_rx(struct pl_port *port, struct pl_pkt **pkts, int n, uint64_t now)
{
	struct pl_gen *g = port->priv;
	int got = 0;

	if (g->rate <= 0 || g->next_ns >= g->duration_ns)
		return -ENODATA;
	if (g->start_ns == 0)
		g->start_ns = now; /* time zero is the first poll */
	while (got < n && g->next_ns < g->duration_ns && g->start_ns + g->next_ns <= now) {
		struct pl_pkt *p = pl_pkt_alloc(port->bufs);
		uint8_t tmp[PL_PKT_DATA];
		uint32_t flow;
		bool crit;

		if (p) {
			p->len = pl_gen_frame(g, g->seq, p->data, &flow, &crit);
			p->arrival_ns = g->start_ns + g->next_ns;
			p->seq = g->seq;
			p->flow = flow;
			p->flags = 0;
			p->port = 0;
			pkts[got++] = p;
		} else {
			uint32_t len = pl_gen_frame(g, g->seq, tmp, &flow, &crit);

			pl_port_drop(port, PL_DROP_NO_BUFFER, 1, len);
		}
		g->seq++;
		g->next_ns += (uint64_t)(-log(unit(&g->arrival_rng)) / g->rate * 1e9);
	}
	return got;
}

static void gen_close(struct pl_port *port)
{
	free(port->priv);
	port->priv = NULL;
}

const struct pl_port_ops pl_gen_ops = {
	.name = "gen",
	.live = true,
	.open = gen_open,
	.rx_burst = gen_rx,
	.close = gen_close,
};
