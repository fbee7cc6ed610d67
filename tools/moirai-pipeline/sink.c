/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The counting sink: accepts every packet and forgets it (the pipeline's
 * TX stage counts packets, bytes and the content checksum for every sink).
 */
#include "port.h"

static int count_open(struct pl_port *port, const struct pl_port_conf *conf, char *err,
		      size_t errlen)
{
	(void)port;
	(void)conf;
	(void)err;
	(void)errlen;
	return 0;
}

static int count_tx(struct pl_port *port, struct pl_pkt *const *pkts, int n)
{
	(void)port;
	(void)pkts;
	return n;
}

static void count_close(struct pl_port *port)
{
	(void)port;
}

const struct pl_port_ops pl_count_ops = {
	.name = "count",
	.open = count_open,
	.tx_burst = count_tx,
	.close = count_close,
};
