/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline across hosts: the stage boundary over the network
 * (--forward on the sender, --listen on the receiver), on moirai's network
 * channels (moirai/net.h, UCX).
 *
 * The sender classifies and sends each packet to the receiver, which
 * processes and transmits it.  Two channels join them, one per class
 * (critical, then normal), so the critical flow never waits behind
 * normal traffic in a send window or in the receiver's queue: each class
 * has its own credits, and the receiver polls the critical channel first.
 * Each channel starts with a hello (magic, version, class, a session id
 * shared by the two channels of one sender); every packet is one
 * variable-length message: a 16-byte header (struct pl_wire_pkt: flags,
 * the sender's arrival time) followed by the frame.  The header sits in
 * the packet buffer just before the frame (pl_pkt.wire), so a packet goes
 * out of, and arrives into, its buffer without another copy.
 *
 * A struct pl_fwd belongs to the runtime worker that created it (worker
 * 0, which runs the RX poller): its net's progress runs as a poller of
 * that worker, and every call below comes from it.
 */
#ifndef PL_FWD_H
#define PL_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "port.h"

/* Protocol of the forward boundary (the hello carries it). */
#define PL_FWD_MAGIC   0x4d504657u /* "MPFW" read as a little-endian word */
#define PL_FWD_VERSION 1u
/* The largest message: header + the largest frame a buffer holds. */
#define PL_FWD_MSG_MAX (PL_WIRE_HDR + PL_PKT_DATA)
/* Connect: how long the sender waits for a receiver to listen. */
#define PL_FWD_CONNECT_NS (5ull * 1000 * 1000 * 1000)

/* The first message of each channel. */
struct pl_wire_hello {
	uint32_t magic;	  /* PL_FWD_MAGIC */
	uint16_t version; /* PL_FWD_VERSION */
	uint16_t cls;	  /* 0 critical, 1 normal */
	uint64_t session; /* the same on both channels of one sender */
};

/* The header's flag of the end message: the last message the sender
 * sends on a channel, a header alone whose arrival_ns is the number of
 * packets it sent there; the receiver answers on the same channel with a
 * receipt of the same shape carrying the number it received. */
#define PL_WIRE_F_END 0x8000u

/* The header in front of every forwarded frame. */
struct pl_wire_pkt {
	uint16_t flags;	     /* PL_PKT_F_CRITICAL as the sender classified it; PL_WIRE_F_END */
	uint16_t reserved;   /* 0 */
	uint32_t reserved2;  /* 0 */
	uint64_t arrival_ns; /* the sender's arrival time (CLOCK_MONOTONIC) */
};

_Static_assert(sizeof(struct pl_wire_hello) == PL_WIRE_HDR, "hello is one header long");
_Static_assert(sizeof(struct pl_wire_pkt) == PL_WIRE_HDR, "packet header size");

struct pl_fwd;

/* Counters of one side (a snapshot, owner only). */
struct pl_fwd_stats {
	uint64_t packets;     /* sent (sender) or received (receiver) */
	uint64_t critical;    /* of them on the critical channel */
	uint64_t stalls;      /* sender: sends that found a window full (packets parked) */
	uint64_t window_full; /* sender: the net's count of sends without credit */
	uint64_t ams;	      /* UCX active messages that carried them */
	uint64_t refused;     /* receiver: connections refused (by the net's handshake, or
			       * a sender after the first: turned_away) */
	uint64_t turned_away; /* receiver: senders after the first, disconnected */
	bool confirmed;	      /* sender: the receiver's receipts matched every packet sent */
};

/* Create a net on the calling worker for @addr (tcp://HOST:PORT) and,
 * for the receiver (@listen), listen there.  0, or -errno with a one-line
 * message in @err (the address and what is wrong with it). */
int pl_fwd_open(const char *addr, bool listen, struct pl_fwd **out, char *err, size_t errlen);

/* Sender: connect the channels not connected yet and send their hellos,
 * each attempt bounded by @timeout_ns (> 0).  0 once both are; else
 * -errno with a message in @err: -ECONNREFUSED (nobody listens yet) and
 * -ETIMEDOUT can be retried by calling again. */
int pl_fwd_connect(struct pl_fwd *f, int64_t timeout_ns, char *err, size_t errlen);

/* Sender: send up to @n packets of class @cls (0 critical, 1 normal) as
 * one burst; the buffers stay the caller's.  Returns how many were
 * accepted (a prefix; fewer than @n, or 0, when the window is full:
 * backpressure, counted as a stall), or -EPIPE / -ECONNRESET when the
 * receiver closed or failed (message: pl_fwd_error()). */
int pl_fwd_send(struct pl_fwd *f, int cls, struct pl_pkt *const *pkts, int n);

/* Sender, after its last packet: send the end message on each channel
 * and take the receiver's receipts (non-blocking: call again until it
 * returns 1).  1 when the receiver confirmed every packet sent, 0 not yet,
 * -errno when the receiver failed, closed or counted another number
 * (message: pl_fwd_error()). */
int pl_fwd_finish(struct pl_fwd *f);

/* Receiver: accept the sender (non-blocking), then take up to @n
 * packets, critical channel first, at most @room[c] from the channel of
 * class c (0 critical, 1 normal), into buffers from @bufs: their
 * flags carry the sender's class and arrival_ns is @now_ns.  Returns the
 * count (0: nothing yet, or no free buffer: the sender is held back by
 * its window), -ENODATA once both channels ended with the end message (receipts
 * sent), -EPROTO for a
 * peer that is not a pipeline sender, -ECONNRESET when the sender failed
 * (after everything that arrived was returned); message: pl_fwd_error(). */
int pl_fwd_recv(struct pl_fwd *f, struct pl_bufs *bufs, struct pl_pkt **pkts, int n,
		const unsigned room[2], uint64_t now_ns);

/* The sender's arrival time of a packet pl_fwd_recv() returned. */
uint64_t pl_fwd_origin_ns(const struct pl_pkt *p);

/* Counters; the last error ("" none). */
void pl_fwd_stats(const struct pl_fwd *f, struct pl_fwd_stats *out);
const char *pl_fwd_error(const struct pl_fwd *f);

/* Close the channels (the peer sees end of stream after what was sent),
 * the listener and the net.  Owner only; NULL is a no-op. */
void pl_fwd_destroy(struct pl_fwd *f);

/* The receiver as a source port (--listen): pl_run() sets port->priv to
 * the struct pl_fwd it made with pl_fwd_listen() on worker 0. */
extern const struct pl_port_ops pl_net_in_ops;

#endif /* PL_FWD_H */
