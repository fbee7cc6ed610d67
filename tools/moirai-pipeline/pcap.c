/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pcap replay (a source) and the pcap writer (a sink), through libpcap.
 *
 * Replay is closed-loop: a record is read only when a buffer is free for
 * it, so a replay never drops for want of buffers and its counts are
 * exact.  libpcap validates the file (magic, version, header, record
 * lengths against the snapshot length, truncation) and we report its
 * message with the file name; records longer than a buffer are dropped
 * as oversize, zero-length and short records reach the parser and are
 * dropped by it with their reason.  Only Ethernet (DLT_EN10MB) files are
 * accepted.
 */
#include <errno.h>
#include <stdlib.h>

#include <pcap/pcap.h>

#include "port.h"

struct pcap_in {
	pcap_t *pc;
	const char *path;
	uint64_t seq;
	bool eof;
};

static int in_open(struct pl_port *port, const struct pl_port_conf *conf, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct pcap_in *s;
	int dlt;

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return -ENOMEM;
	}
	s->path = conf->path;
	s->pc = pcap_open_offline_with_tstamp_precision(conf->path, PCAP_TSTAMP_PRECISION_NANO,
							ebuf);
	if (!s->pc) {
		snprintf(err, errlen, "%s: %s", conf->path, ebuf[0] ? ebuf : "cannot read");
		free(s);
		return -EINVAL;
	}
	dlt = pcap_datalink(s->pc);
	if (dlt != DLT_EN10MB) {
		const char *name = pcap_datalink_val_to_name(dlt);

		snprintf(err, errlen, "%s: link type %d (%s) is not Ethernet (DLT_EN10MB)",
			 conf->path, dlt, name ? name : "unknown");
		pcap_close(s->pc);
		free(s);
		return -EINVAL;
	}
	port->priv = s;
	return 0;
}

static int in_rx(struct pl_port *port, struct pl_pkt **pkts, int n, uint64_t now)
{
	struct pcap_in *s = port->priv;
	int got = 0;

	if (s->eof)
		return -ENODATA;
	while (got < n) {
		struct pcap_pkthdr *h;
		const u_char *data;
		struct pl_pkt *p = pl_pkt_alloc(port->bufs);
		int rc;

		if (!p)
			break; /* closed loop: read on when a buffer is back */
		rc = pcap_next_ex(s->pc, &h, &data);
		if (rc != 1) {
			pl_pkt_free(p);
			s->eof = true;
			if (rc == PCAP_ERROR) {
				pl_port_error(port, "%s: record %llu: %s", s->path,
					      (unsigned long long)s->seq + 1, pcap_geterr(s->pc));
				return got ? got : -EIO;
			}
			return got ? got : -ENODATA;
		}
		if (h->caplen > PL_PKT_DATA) {
			pl_port_drop(port, PL_DROP_OVERSIZE, 1, h->caplen);
			pl_pkt_free(p);
			s->seq++;
			continue;
		}
		pl_pkt_copy_in(p, data, h->caplen, now, s->seq++);
		pkts[got++] = p;
	}
	return got;
}

static void in_close(struct pl_port *port)
{
	struct pcap_in *s = port->priv;

	if (!s)
		return;
	pcap_close(s->pc);
	free(s);
	port->priv = NULL;
}

const struct pl_port_ops pl_pcap_in_ops = {
	.name = "pcap",
	.open = in_open,
	.rx_burst = in_rx,
	.close = in_close,
};

/* ---- writer ------------------------------------------------------------ */

struct pcap_out {
	pcap_t *pc;
	pcap_dumper_t *d;
	const char *path;
	uint64_t start_ns;
};

static int out_open(struct pl_port *port, const struct pl_port_conf *conf, char *err, size_t errlen)
{
	struct pcap_out *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return -ENOMEM;
	}
	s->path = conf->path;
	s->pc = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
	if (!s->pc) {
		snprintf(err, errlen, "%s: pcap_open_dead failed", conf->path);
		free(s);
		return -ENOMEM;
	}
	s->d = pcap_dump_open(s->pc, conf->path);
	if (!s->d) {
		snprintf(err, errlen, "%s", pcap_geterr(s->pc));
		pcap_close(s->pc);
		free(s);
		return -EINVAL; /* a path that cannot be written: bad input */
	}
	port->priv = s;
	return 0;
}

static int out_tx(struct pl_port *port, struct pl_pkt *const *pkts, int n)
{
	struct pcap_out *s = port->priv;

	for (int i = 0; i < n; i++) {
		struct pcap_pkthdr h;
		uint64_t t;

		if (!s->start_ns)
			s->start_ns = pkts[i]->arrival_ns;
		/* Timestamps: arrival, relative to the first packet written. */
		t = pkts[i]->arrival_ns > s->start_ns ? pkts[i]->arrival_ns - s->start_ns : 0;
		h.ts.tv_sec = (time_t)(t / 1000000000u);
		h.ts.tv_usec = (suseconds_t)(t % 1000000000u); /* nanoseconds: NANO precision */
		h.caplen = h.len = pkts[i]->len;
		pcap_dump((u_char *)s->d, &h, pkts[i]->data);
	}
	return n;
}

static void out_close(struct pl_port *port)
{
	struct pcap_out *s = port->priv;

	if (!s)
		return;
	if (pcap_dump_flush(s->d) != 0)
		pl_port_error(port, "%s: write error", s->path);
	pcap_dump_close(s->d);
	pcap_close(s->pc);
	free(s);
	port->priv = NULL;
}

const struct pl_port_ops pl_pcap_out_ops = {
	.name = "pcap-out",
	.open = out_open,
	.tx_burst = out_tx,
	.close = out_close,
};
