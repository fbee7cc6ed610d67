/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline: Ethernet/IPv4/UDP parsing, checksum verification and
 * the forwarding rewrite.  Pure functions over a byte buffer and its
 * length (no allocation, no global state), so the fuzz test drives them
 * with arbitrary bytes.  Every read is bounds-checked against the frame
 * length before it happens.
 */
#ifndef PL_PACKET_H
#define PL_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define PL_ETH_HLEN	14
#define PL_ETHERTYPE_IP 0x0800
#define PL_IPPROTO_UDP	17
#define PL_DSCP_EF	46
#define PL_PARSE_OK	(-1) /* pl_parse() result: no drop */

/* What pl_parse() found (valid when it returns PL_PARSE_OK). */
struct pl_hdrs {
	uint32_t l3;	   /* offset of the IPv4 header */
	uint32_t ihl;	   /* IPv4 header length, bytes (20..60) */
	uint32_t ip_len;   /* IPv4 total length */
	uint32_t l4;	   /* offset of the UDP header */
	uint32_t udp_len;  /* UDP length (header + payload) */
	uint32_t src, dst; /* addresses, host order */
	uint16_t sport, dport;
	uint8_t dscp, ttl;
	bool options; /* IHL > 5: the slow path */
};

/*
 * Parse and verify one frame: Ethernet II with EtherType IPv4, an IPv4
 * header with a valid checksum and lengths inside the frame, no fragment,
 * UDP with a length inside the IP payload and a valid checksum (0 means
 * none, allowed for IPv4).  IP options are walked and checked
 * (PL_DROP_BAD_IP_OPTIONS).
 * Returns PL_PARSE_OK and fills @h, or the enum pl_drop reason.
 */
int pl_parse(const uint8_t *frame, uint32_t len, struct pl_hdrs *h);

/* Classification peek (no verification): DSCP and destination of an
 * IPv4/UDP frame.  Returns false when the frame is too short or not IPv4
 * (it is classified as not critical, and pl_parse() rejects it later). */
bool pl_peek(const uint8_t *frame, uint32_t len, uint8_t *dscp, uint32_t *dst, uint16_t *dport);

/* The Internet checksum (RFC 1071) of @len bytes, folded, not inverted,
 * added to @sum. */
uint32_t pl_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t pl_csum_fold(uint32_t sum);
/* IPv4 header checksum to store (over @ihl bytes, checksum field taken as
 * it is: zero it first). */
uint16_t pl_ip_csum(const uint8_t *ip, uint32_t ihl);
/* UDP checksum to store over the pseudo header and @udp_len bytes of the
 * UDP header and payload (checksum field zeroed first by the caller);
 * 0 is transmitted as 0xffff. */
uint16_t pl_udp_csum(uint32_t src, uint32_t dst, const uint8_t *udp, uint32_t udp_len);

/* Forwarding rewrite of a frame pl_parse() accepted: destination MAC to
 * @dmac, source MAC to @smac, TTL - 1 with the IPv4 checksum updated
 * incrementally (RFC 1624).  The caller checked TTL > 1. */
void pl_rewrite(uint8_t *frame, const struct pl_hdrs *h, const uint8_t dmac[6],
		const uint8_t smac[6]);

/* Content hash of a frame: FNV-1a 64 over its little-endian 64-bit words,
 * then its last len % 8 bytes one by one.  Summed over packets (mod 2^64)
 * it is the order-independent checksum of a run. */
uint64_t pl_frame_hash(const uint8_t *frame, uint32_t len);

/* The slow path's extra work: @iters rounds of CRC32C over the frame
 * (deep inspection), returned so that it cannot be optimised away. */
uint32_t pl_slow_work(const uint8_t *frame, uint32_t len, unsigned iters);

#endif /* PL_PACKET_H */
