/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AF_XDP ports: a source on every RX queue of an interface (--iface) and a
 * sink on an interface (--tx-iface, by default the source's), over the
 * sockets of xsk.c.
 *
 * The source opens one socket per RX queue, each with its UMEM on the
 * node of the worker that polls it (the RX poller's, conf->node), and
 * copies every frame into a buffer of that node's pool, so the UMEM frame
 * goes back to the fill ring within the same poll.  A frame that finds no
 * buffer is dropped as no_buffer, one longer than a buffer as oversize.
 * The source ends after --duration seconds of receiving when one was
 * given, else when the run is interrupted (SIGINT, SIGTERM).
 *
 * The sink copies into TX frames of one socket: on the source's
 * interface it is the source's socket of queue 0 (its TX ring belongs to
 * the TX poller, its RX ring to the RX poller: each side keeps to one
 * thread), elsewhere a TX-only socket on queue 0 with its UMEM on the TX
 * poller's node.  Closing the sink waits (at most a second) until the
 * kernel has completed every frame, so what was accepted was sent.
 *
 * Each port prints one line on stderr when it opens (interface, queues,
 * mode, node) and one when it closes (counts and the kernel's drops).
 */
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "port.h"
#include "xsk.h"

#define XDP_MAX_QUEUES 64

struct xdp_sockets {
	char ifname[IF_NAMESIZE];
	int nq;
	struct afxdp_sock *sock[XDP_MAX_QUEUES];
	int refs; /* the source and a sink on the same interface */
};

struct xdp_in {
	struct xdp_sockets *xs;
	int next;	      /* queue to start the next burst at */
	uint64_t seq;	      /* arrival order */
	uint64_t duration_ns; /* 0: until interrupted */
	uint64_t end_ns;      /* set at the first poll */
};

struct xdp_out {
	struct xdp_sockets *xs; /* the source's, or NULL: a socket of our own */
	struct afxdp_sock *sock;
	char ifname[IF_NAMESIZE];
};

/* The source's sockets, for a sink on the same interface.  open() and
 * close() run on the main thread only (port.h). */
static struct xdp_sockets *source_sockets;

static void sockets_put(struct xdp_sockets *xs)
{
	if (--xs->refs > 0)
		return;
	if (source_sockets == xs)
		source_sockets = NULL;
	for (int q = 0; q < xs->nq; q++)
		afxdp_close(xs->sock[q]);
	free(xs);
}

static int in_open(struct pl_port *port, const struct pl_port_conf *conf, char *err, size_t errlen)
{
	struct xdp_sockets *xs;
	struct xdp_in *s;
	int nq, rc;

	if (!conf->path || !conf->path[0]) {
		snprintf(err, errlen, "--iface: no interface name");
		return -EINVAL;
	}
	nq = afxdp_queue_count(conf->path);
	if (nq < 0) {
		snprintf(err, errlen, "%s: no such network interface", conf->path);
		return -ENODEV;
	}
	if (nq > XDP_MAX_QUEUES)
		nq = XDP_MAX_QUEUES;
	xs = calloc(1, sizeof(*xs));
	s = calloc(1, sizeof(*s));
	if (!xs || !s) {
		free(xs);
		free(s);
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return -ENOMEM;
	}
	snprintf(xs->ifname, sizeof(xs->ifname), "%s", conf->path);
	for (int q = 0; q < nq; q++) {
		struct afxdp_config c = {
			.ifname = conf->path,
			.queue = (uint32_t)q,
			.node = conf->node,
			.mode = (enum afxdp_mode)conf->xdp_mode,
			.rx = true,
			.tx = q == 0, /* for a sink on the same interface */
		};

		rc = afxdp_open(&c, &xs->sock[q], err, errlen);
		if (rc) {
			xs->refs = 1;
			sockets_put(xs);
			free(s);
			return rc;
		}
		xs->nq = q + 1;
	}
	xs->refs = 1;
	source_sockets = xs;
	s->xs = xs;
	s->duration_ns = conf->duration_s > 0 ? (uint64_t)(conf->duration_s * 1e9) : 0;
	port->priv = s;
	fprintf(stderr, "moirai-pipeline: AF_XDP on %s: %d RX queue%s, mode %s, UMEM on node %d\n",
		xs->ifname, nq, nq == 1 ? "" : "s", afxdp_mode_name(afxdp_mode(xs->sock[0])),
		afxdp_node(xs->sock[0]));
	return 0;
}

static int in_rx(struct pl_port *port, struct pl_pkt **pkts, int n, uint64_t now)
{
	struct xdp_in *s = port->priv;
	struct xdp_sockets *xs = s->xs;
	struct afxdp_frame f[PL_BURST_MAX];
	int got = 0;

	if (s->duration_ns) {
		if (!s->end_ns)
			s->end_ns = now + s->duration_ns;
		else if (now >= s->end_ns)
			return -ENODATA;
	}
	if (n > PL_BURST_MAX)
		n = PL_BURST_MAX;
	for (int k = 0; k < xs->nq && got < n; k++) {
		struct afxdp_sock *sk = xs->sock[(s->next + k) % xs->nq];
		unsigned m = afxdp_rx_burst(sk, f, (unsigned)(n - got));

		for (unsigned i = 0; i < m; i++) {
			struct pl_pkt *p;

			if (f[i].len > PL_PKT_DATA) {
				pl_port_drop(port, PL_DROP_OVERSIZE, 1, f[i].len);
				continue;
			}
			p = pl_pkt_alloc(port->bufs);
			if (!p) {
				pl_port_drop(port, PL_DROP_NO_BUFFER, 1, f[i].len);
				continue;
			}
			pl_pkt_copy_in(p, f[i].data, f[i].len, now, s->seq++);
			pkts[got++] = p;
		}
		afxdp_rx_release(sk, f, m);
	}
	s->next = (s->next + 1) % xs->nq;
	return got;
}

static void print_stats(const char *what, const char *ifname, const struct afxdp_stats *st)
{
	fprintf(stderr,
		"moirai-pipeline: AF_XDP %s %s: rx %" PRIu64 ", tx %" PRIu64 " (completed %" PRIu64
		"); kernel drops: rx ring full %" PRIu64 ", fill ring empty %" PRIu64
		", other %" PRIu64 ", invalid descriptors %" PRIu64 "\n",
		what, ifname, st->rx_packets, st->tx_packets, st->tx_completed, st->k_rx_ring_full,
		st->k_fill_empty, st->k_rx_dropped, st->k_rx_invalid + st->k_tx_invalid);
}

static void in_close(struct pl_port *port)
{
	struct xdp_in *s = port->priv;
	struct afxdp_stats sum = { 0 }, st;

	if (!s)
		return;
	for (int q = 0; q < s->xs->nq; q++) {
		afxdp_stats_get(s->xs->sock[q], &st);
		sum.rx_packets += st.rx_packets;
		sum.k_rx_ring_full += st.k_rx_ring_full;
		sum.k_fill_empty += st.k_fill_empty;
		sum.k_rx_dropped += st.k_rx_dropped;
		sum.k_rx_invalid += st.k_rx_invalid;
	}
	print_stats("source", s->xs->ifname, &sum);
	sockets_put(s->xs);
	free(s);
	port->priv = NULL;
}

const struct pl_port_ops pl_xdp_in_ops = {
	.name = "xdp",
	.live = true,
	.open = in_open,
	.rx_burst = in_rx,
	.close = in_close,
};

/* ---- sink --------------------------------------------------------------- */

static int out_open(struct pl_port *port, const struct pl_port_conf *conf, char *err, size_t errlen)
{
	struct xdp_out *s;
	int rc;

	if (!conf->path || !conf->path[0]) {
		snprintf(err, errlen, "--tx-iface: no interface name");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return -ENOMEM;
	}
	snprintf(s->ifname, sizeof(s->ifname), "%s", conf->path);
	if (source_sockets && strcmp(source_sockets->ifname, conf->path) == 0) {
		s->xs = source_sockets;
		s->xs->refs++;
		s->sock = s->xs->sock[0];
	} else {
		struct afxdp_config c = {
			.ifname = conf->path,
			.queue = 0,
			.node = conf->node,
			.mode = (enum afxdp_mode)conf->xdp_mode,
			.rx = false,
			.tx = true,
		};

		rc = afxdp_open(&c, &s->sock, err, errlen);
		if (rc) {
			free(s);
			return rc;
		}
		fprintf(stderr,
			"moirai-pipeline: AF_XDP TX on %s: queue 0, mode %s, UMEM on node %d\n",
			conf->path, afxdp_mode_name(afxdp_mode(s->sock)), afxdp_node(s->sock));
	}
	port->priv = s;
	return 0;
}

static int out_tx(struct pl_port *port, struct pl_pkt *const *pkts, int n)
{
	struct xdp_out *s = port->priv;
	const void *data[PL_BURST_MAX];
	uint32_t lens[PL_BURST_MAX];
	int sent = 0;

	while (sent < n) {
		int m = n - sent < PL_BURST_MAX ? n - sent : PL_BURST_MAX;
		unsigned done;

		for (int i = 0; i < m; i++) {
			data[i] = pkts[sent + i]->data;
			lens[i] = pkts[sent + i]->len;
		}
		done = afxdp_tx_burst(s->sock, data, lens, (unsigned)m);
		/* a burst larger than the free frames: reap and retry, boundedly */
		for (int tries = 0; done == 0 && tries < 64; tries++) {
			afxdp_tx_reap(s->sock);
			done = afxdp_tx_burst(s->sock, data, lens, (unsigned)m);
		}
		if (done == 0)
			break;
		sent += (int)done;
	}
	return sent;
}

static void out_close(struct pl_port *port)
{
	struct xdp_out *s = port->priv;
	struct timespec ms = { 0, 1000 * 1000 };
	struct afxdp_stats st;

	if (!s)
		return;
	/* Accepted means sent: wait (bounded) for the completions. */
	for (int i = 0; i < 1000 && afxdp_tx_reap(s->sock) > 0; i++)
		nanosleep(&ms, NULL);
	afxdp_stats_get(s->sock, &st);
	if (st.tx_completed != st.tx_packets)
		pl_port_error(port, "AF_XDP TX: %" PRIu64 " of %" PRIu64 " frames not completed",
			      st.tx_packets - st.tx_completed, st.tx_packets);
	st.rx_packets = 0;
	st.k_rx_ring_full = st.k_fill_empty = st.k_rx_dropped = st.k_rx_invalid = 0;
	print_stats("sink", s->ifname, &st);
	if (s->xs)
		sockets_put(s->xs);
	else
		afxdp_close(s->sock);
	free(s);
	port->priv = NULL;
}

const struct pl_port_ops pl_xdp_out_ops = {
	.name = "xdp",
	.open = out_open,
	.tx_burst = out_tx,
	.close = out_close,
};
