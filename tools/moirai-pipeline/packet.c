/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ethernet/IPv4/UDP parsing and verification, the forwarding rewrite, and
 * the frame hash (packet.h).  The parser checks every length against the
 * frame before it reads, in the order the headers nest, and names the
 * first thing wrong as the drop reason.
 */
#include <endian.h>
#include <string.h>

#include <nmmintrin.h>

#include "packet.h"

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

uint32_t pl_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;

	/* 32-bit big-endian words (two 16-bit words each: one's complement
	 * addition is associative, so folding the 32-bit sums later gives the
	 * same result); a 64-bit accumulator cannot overflow for any frame. */
	while (len >= 4) {
		s += rd32(p);
		p += 4;
		len -= 4;
	}
	while (len >= 2) {
		s += rd16(p);
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t pl_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t pl_ip_csum(const uint8_t *ip, uint32_t ihl)
{
	return (uint16_t)~pl_csum_fold(pl_csum_add(0, ip, ihl));
}

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint32_t udp_len)
{
	return (src >> 16) + (src & 0xffffu) + (dst >> 16) + (dst & 0xffffu) + PL_IPPROTO_UDP +
	       udp_len;
}

uint16_t pl_udp_csum(uint32_t src, uint32_t dst, const uint8_t *udp, uint32_t udp_len)
{
	uint16_t c =
		(uint16_t)~pl_csum_fold(pl_csum_add(pseudo_sum(src, dst, udp_len), udp, udp_len));

	return c ? c : 0xffff;
}

/* Walk the option list of an IPv4 header (RFC 791): EOL ends it, NOP is
 * one byte, every other option has a length byte >= 2 that stays inside
 * the header. */
static bool options_ok(const uint8_t *opt, uint32_t n)
{
	uint32_t i = 0;

	while (i < n) {
		uint8_t type = opt[i];

		if (type == 0) /* end of list: the rest is padding */
			return true;
		if (type == 1) {
			i++;
			continue;
		}
		if (i + 1 >= n)
			return false;
		if (opt[i + 1] < 2 || opt[i + 1] > n - i)
			return false;
		i += opt[i + 1];
	}
	return true;
}

int pl_parse(const uint8_t *f, uint32_t len, struct pl_hdrs *h)
{
	const uint8_t *ip, *udp;
	uint32_t ihl, ip_len, frag, udp_len;

	if (len < PL_ETH_HLEN)
		return PL_DROP_TRUNCATED;
	if (rd16(f + 12) != PL_ETHERTYPE_IP)
		return PL_DROP_NOT_IPV4;
	if (len < PL_ETH_HLEN + 20)
		return PL_DROP_TRUNCATED;
	ip = f + PL_ETH_HLEN;
	ihl = (ip[0] & 0xfu) * 4u;
	if ((ip[0] >> 4) != 4 || ihl < 20)
		return PL_DROP_BAD_IP_HEADER;
	if (len < PL_ETH_HLEN + ihl)
		return PL_DROP_TRUNCATED;
	ip_len = rd16(ip + 2);
	if (ip_len < ihl)
		return PL_DROP_BAD_IP_LENGTH;
	if (ip_len > len - PL_ETH_HLEN)
		return PL_DROP_TRUNCATED;
	if (pl_csum_fold(pl_csum_add(0, ip, ihl)) != 0xffff)
		return PL_DROP_BAD_IP_CHECKSUM;
	if (ihl > 20 && !options_ok(ip + 20, ihl - 20))
		return PL_DROP_BAD_IP_OPTIONS;
	frag = rd16(ip + 6);
	if (frag & 0x3fffu) /* MF set or a fragment offset */
		return PL_DROP_FRAGMENT;
	if (ip[9] != PL_IPPROTO_UDP)
		return PL_DROP_NOT_UDP;
	if (ip_len - ihl < 8)
		return PL_DROP_BAD_UDP_LENGTH;
	udp = ip + ihl;
	udp_len = rd16(udp + 4);
	if (udp_len < 8 || udp_len > ip_len - ihl)
		return PL_DROP_BAD_UDP_LENGTH;
	h->src = rd32(ip + 12);
	h->dst = rd32(ip + 16);
	if (rd16(udp + 6) != 0 &&
	    pl_csum_fold(pl_csum_add(pseudo_sum(h->src, h->dst, udp_len), udp, udp_len)) != 0xffff)
		return PL_DROP_BAD_UDP_CHECKSUM;
	h->l3 = PL_ETH_HLEN;
	h->ihl = ihl;
	h->ip_len = ip_len;
	h->l4 = PL_ETH_HLEN + ihl;
	h->udp_len = udp_len;
	h->sport = rd16(udp);
	h->dport = rd16(udp + 2);
	h->dscp = ip[1] >> 2;
	h->ttl = ip[8];
	h->options = ihl > 20;
	return PL_PARSE_OK;
}

bool pl_peek(const uint8_t *f, uint32_t len, uint8_t *dscp, uint32_t *dst, uint16_t *dport)
{
	uint32_t ihl;

	if (len < PL_ETH_HLEN + 20 || rd16(f + 12) != PL_ETHERTYPE_IP)
		return false;
	ihl = (f[PL_ETH_HLEN] & 0xfu) * 4u;
	*dscp = f[PL_ETH_HLEN + 1] >> 2;
	*dst = rd32(f + PL_ETH_HLEN + 16);
	*dport = 0;
	if (ihl >= 20 && len >= PL_ETH_HLEN + ihl + 4)
		*dport = rd16(f + PL_ETH_HLEN + ihl + 2);
	return true;
}

void pl_rewrite(uint8_t *f, const struct pl_hdrs *h, const uint8_t dmac[6], const uint8_t smac[6])
{
	uint8_t *ip = f + h->l3;
	uint32_t sum;
	uint16_t old_word, new_word;

	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the TTL/protocol word. */
	old_word = rd16(ip + 8);
	ip[8]--;
	new_word = rd16(ip + 8);
	sum = (uint16_t)~rd16(ip + 10);
	sum += (uint16_t)~old_word;
	sum += new_word;
	wr16(ip + 10, (uint16_t)~pl_csum_fold(sum));
}

uint64_t pl_frame_hash(const uint8_t *f, uint32_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t i = 0;

	/* FNV-1a over little-endian 64-bit words, then the tail bytes: a
	 * multiply per 8 bytes instead of per byte. */
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, f + i, 8);
		h ^= le64toh(w);
		h *= 0x100000001b3ull;
	}
	for (; i < len; i++) {
		h ^= f[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint32_t pl_slow_work(const uint8_t *f, uint32_t len, unsigned iters)
{
	uint32_t crc = 0xffffffffu;

	for (unsigned it = 0; it < iters; it++) {
		uint32_t i = 0;
		uint64_t w;

		for (; i + 8 <= len; i += 8) {
			memcpy(&w, f + i, 8);
			crc = (uint32_t)_mm_crc32_u64(crc, w);
		}
		for (; i < len; i++)
			crc = _mm_crc32_u8(crc, f[i]);
		crc ^= it;
	}
	return crc;
}
