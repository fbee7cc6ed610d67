/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline: the packet buffer and the port interface every source
 * and sink implements (the built-in generator, pcap replay, the pcap
 * writer, the counting sink, AF_XDP).
 *
 * A packet lives in one fixed-size buffer (struct pl_pkt) taken from the
 * node-local object pool of the worker that receives it; it records its
 * pool, so whoever is done with it (the TX stage, or a stage that drops
 * it) puts it back on the right node with pl_pkt_free().
 *
 * Ports are driven by the pipeline's pollers, each port by one worker:
 * rx_burst() is called only by the RX poller, tx_burst() only by the TX
 * poller, so a port needs no locking of its own.  open() and close() run
 * on the main thread before the runtime starts and after it stopped.
 *
 * Ownership: rx_burst() hands out buffers it took with pl_pkt_alloc() (the
 * caller owns them afterwards).  tx_burst() copies out (or writes) the
 * packets it accepts and returns how many; the caller keeps every buffer
 * and frees them, counting the ones not accepted as dropped (tx_full).
 */
#ifndef PL_PORT_H
#define PL_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <moirai.h>

/* Bytes of frame a buffer holds (a standard Ethernet frame without FCS
 * fits, with room for headroom rewrites). */
#define PL_PKT_DATA 2048u
/* Longest burst a port is asked for. */
#define PL_BURST_MAX 64
/* Bytes of the forward header (fwd.h) that precede the frame in a buffer. */
#define PL_WIRE_HDR 16u

/* Packet flags. */
#define PL_PKT_F_CRITICAL 0x1u /* classified onto the critical level */
#define PL_PKT_F_SLOW	  0x2u /* took the slow path */

/* Why a packet was dropped.  Every packet received is either forwarded or
 * counted under exactly one of these. */
enum pl_drop {
	PL_DROP_NO_BUFFER = 0, /* the pool was empty when it arrived (source side) */
	PL_DROP_OVERSIZE,      /* longer than a buffer (PL_PKT_DATA) */
	PL_DROP_QUEUE_FULL,    /* the classify -> process ring was full */
	PL_DROP_TRUNCATED,     /* shorter than its headers say */
	PL_DROP_NOT_IPV4,      /* EtherType is not IPv4 (VLAN tags included) */
	PL_DROP_BAD_IP_HEADER, /* version != 4 or IHL < 5 */
	PL_DROP_BAD_IP_LENGTH, /* total length below the header or beyond the frame */
	PL_DROP_BAD_IP_CHECKSUM,
	PL_DROP_BAD_IP_OPTIONS, /* malformed option list (slow path) */
	PL_DROP_FRAGMENT,	/* IPv4 fragment (no UDP header to check) */
	PL_DROP_NOT_UDP,	/* IP protocol is not UDP */
	PL_DROP_BAD_UDP_LENGTH,
	PL_DROP_BAD_UDP_CHECKSUM,
	PL_DROP_TTL_EXPIRED, /* TTL <= 1 on arrival */
	PL_DROP_NO_ROUTE,    /* no route, or a blackhole route */
	PL_DROP_TX_FULL,     /* the sink did not accept it */
	PL_DROP_NET_DOWN,    /* --forward: parked for the receiver when it failed */
	PL_DROP_REASONS
};

/* Name of a drop reason ("no_buffer", ...), as in the JSON "drops" object. */
const char *pl_drop_name(enum pl_drop reason);

struct pl_bufs;

/* A packet buffer: 64 bytes of metadata, then the frame. */
struct pl_pkt {
	struct moirai_pool *pool; /* the pool (node) it came from */
	uint64_t arrival_ns;	  /* when it arrived (generator: its scheduled time) */
	uint64_t seq;		  /* arrival order at its source, from 0 */
	uint32_t len;		  /* frame length, bytes */
	uint16_t flags;		  /* PL_PKT_F_* */
	uint16_t port;		  /* output port chosen by the route (0: the TX port) */
	uint32_t flow;		  /* generator: flow index; else 0 */
	uint32_t pad_;
	uint64_t hash; /* content hash of the frame as forwarded (process stage) */
	/* --forward / --listen: the header of the packet's message (fwd.h),
	 * right before the frame, so that header and frame are one message
	 * sent from and received into this buffer. */
	uint8_t wire[PL_WIRE_HDR];
	alignas(64) uint8_t data[PL_PKT_DATA];
};

_Static_assert(offsetof(struct pl_pkt, data) - offsetof(struct pl_pkt, wire) == PL_WIRE_HDR,
	       "the forward header ends where the frame starts");

/* Take one buffer from @bufs (the calling worker's node pool, through its
 * cache).  NULL when the pool is empty.  Worker only. */
struct pl_pkt *pl_pkt_alloc(struct pl_bufs *bufs);
/* Give a buffer back to the pool it came from (any worker). */
void pl_pkt_free(struct pl_pkt *p);

/* A frame copied in from outside (a pcap record, an AF_XDP frame) into
 * @p: such a source knows no flow and no class, and the route has not
 * chosen a port yet.  The caller checked @len <= PL_PKT_DATA. */
static inline void pl_pkt_copy_in(struct pl_pkt *p, const void *frame, uint32_t len,
				  uint64_t now_ns, uint64_t seq)
{
	memcpy(p->data, frame, len);
	p->len = len;
	p->arrival_ns = now_ns;
	p->seq = seq;
	p->flow = 0;
	p->flags = 0;
	p->port = 0;
}

struct pl_port;

/* What open() gets: the parsed command line's part for this port. */
struct pl_port_conf {
	const char *path;  /* file (pcap in/out) or interface name; may be NULL */
	uint64_t seed;	   /* generator seed */
	double rate_pps;   /* generator: mean arrival rate (Poisson) */
	double duration_s; /* generator: arrivals in [0, duration) */
	double critical_share;
	double slow_share;
	unsigned flows;		 /* generator: background flows */
	unsigned critical_flows; /* generator: critical flows (DSCP EF) */
	uint64_t start_ns;	 /* CLOCK_MONOTONIC time 0 of the run */
	int queue;		 /* AF_XDP queue id */
	int node;		 /* NUMA node of the worker that polls the port (set by pl_run) */
	int xdp_mode;		 /* AF_XDP: enum afxdp_mode (xsk.h), 0 auto */
};

struct pl_port_ops {
	const char *name; /* "gen", "pcap", "pcap-out", "count", "xdp", "net", ... */
	/* A source whose packets come classified (PL_PKT_F_CRITICAL set by
	 * rx_burst(): the net source takes the sender's class). */
	bool classified;
	/* A source that cannot wait (an interface, the open-loop generator):
	 * holding it back only moves the loss to the NIC's ring, where every
	 * class is dropped alike.  --forward tail-drops its normal packets
	 * instead when their park is full, so critical ones keep going. */
	bool live;
	/* Open the port; 0 or -errno with a message in @err (for people, one
	 * line naming what is wrong: the file, the field, the offset). */
	int (*open)(struct pl_port *port, const struct pl_port_conf *conf, char *err,
		    size_t errlen);
	/* Receive up to @n packets into @pkts at time @now_ns: 0..n, or
	 * -ENODATA when the source is exhausted (nothing will come again), or
	 * another -errno on a hard error (message through pl_port_error()).
	 * Packets that arrive but cannot be buffered are counted with
	 * pl_port_drop() and not returned.  NULL for a sink. */
	int (*rx_burst)(struct pl_port *port, struct pl_pkt **pkts, int n, uint64_t now_ns);
	/* Send @n packets; returns how many were accepted (a prefix of
	 * @pkts).  NULL for a source. */
	int (*tx_burst)(struct pl_port *port, struct pl_pkt *const *pkts, int n);
	/* Flush and release; called once after a successful open() (a failed
	 * open() releases what it took itself). */
	void (*close)(struct pl_port *port);
};

struct pl_port {
	const struct pl_port_ops *ops;
	void *priv;		/* the implementation's state */
	struct pl_bufs *bufs;	/* where rx_burst() takes buffers */
	struct pl_stats *stats; /* where pl_port_drop() counts */
	/* A classified source: the most packets of class 0 (critical) and 1
	 * (normal) its next rx_burst() may return; the RX poller sets them
	 * to the room in the class rings before each call. */
	unsigned class_room[2];
	char error[256]; /* last hard error (rx/tx), for the summary */
};

/* Count @n arrivals of @bytes total that were dropped for @reason before
 * they became packets (no buffer, oversize).  RX poller only. */
void pl_port_drop(struct pl_port *port, enum pl_drop reason, uint64_t n, uint64_t bytes);
/* Record a hard error message on @port (printf format). */
void pl_port_error(struct pl_port *port, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The implementations. */
extern const struct pl_port_ops pl_gen_ops;	 /* built-in generator (source) */
extern const struct pl_port_ops pl_pcap_in_ops;	 /* pcap replay (source), libpcap */
extern const struct pl_port_ops pl_pcap_out_ops; /* pcap writer (sink), libpcap */
extern const struct pl_port_ops pl_count_ops;	 /* counting sink */
extern const struct pl_port_ops pl_xdp_in_ops;	 /* AF_XDP on every RX queue (source), xdp.c */
extern const struct pl_port_ops pl_xdp_out_ops;	 /* AF_XDP TX (sink), xdp.c */

#endif /* PL_PORT_H */
