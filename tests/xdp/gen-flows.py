#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes tests/xdp/flows.pcap, the AF_XDP tests' traffic (committed output).

    tests/xdp/gen-flows.py [OUT]     (default: flows.pcap beside this file)

Three IPv4/UDP flows from 198.18.0.1 to 198.19.0.1 (RFC 2544 benchmarking
addresses: the frames never leave the tests' own network namespaces),
destination ports 9001, 9002 and 9003 with 100, 50 and 25 frames of 60,
554 and 1514 bytes (minimum, middle, full MTU), interleaved by a fixed
rule.  TTL 64, IP ID = sequence number, valid IPv4 and UDP checksums; the
payload carries the flow, the per-flow sequence and a pattern, so a
checker can tell every frame apart.  MACs 02:00:00:00:00:01 ->
02:00:00:00:00:02.  Standard library only; the output is deterministic.
"""
import os
import struct
import sys

FLOWS = [  # (dst port, frames, UDP payload bytes)
    (9001, 100, 18),
    (9002, 50, 512),
    (9003, 25, 1472),
]
SRC_IP = bytes([198, 18, 0, 1])
DST_IP = bytes([198, 19, 0, 1])
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(port, seq, ident, size):
    payload = struct.pack("!HI", port, seq)
    payload += bytes((seq + i) & 0xFF for i in range(size - len(payload)))
    udp_len = 8 + len(payload)
    sport = 40000 + port % 1000
    pseudo = SRC_IP + DST_IP + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, port, udp_len, 0) + payload
    uc = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", uc) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident & 0xFFFF, 0x4000, 64, 17, 0,
                     SRC_IP, DST_IP)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return DST_MAC + SRC_MAC + b"\x08\x00" + ip + udp


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "flows.pcap")
    # Interleave: frame k of a flow with n frames sits at position k/n.
    order = sorted(((k / n, i, k) for i, (_, n, _) in enumerate(FLOWS) for k in range(n)))
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ident, (_, i, k) in enumerate(order):
            port, _, size = FLOWS[i]
            data = frame(port, k, ident, size)
            ts = 1_700_000_000 * 1_000_000 + ident * 1000  # 1 ms apart
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(data), len(data)))
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
