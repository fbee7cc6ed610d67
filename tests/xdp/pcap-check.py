#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Compares what an AF_XDP test captured with what it sent.

    tests/xdp/pcap-check.py CAPTURE SENT [--ports LO-HI] [--ttl-dec N] [--any-mac]
                            [--macs DST,SRC] [--unordered]

Counts only the test's own flows: IPv4/UDP frames whose destination port is
in LO-HI (default 9000-9063); everything else on the link (IPv6 neighbour
discovery of a fresh veth) is reported and ignored.  For each flow the
captured frames must be exactly the sent ones, in order, with the TTL
lowered by N (default 0) and every IPv4 header checksum and UDP checksum
valid; with --any-mac the Ethernet addresses may differ, with --macs they
must be DST and SRC (12 hex digits each: what a router rewrote); with --unordered
each sent frame must arrive exactly once, in any order (a pipeline whose
workers process one flow in parallel).  Prints one line
per flow and a summary; exit 0 when all match, 1 otherwise, 2 bad usage
or unreadable files.  Standard library only.
"""
import collections
import struct
import sys


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file (too short)")
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        end = ">"
    else:
        raise ValueError(f"{path}: not a pcap file (magic {magic:#x})")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, want Ethernet (1)")
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            raise ValueError(f"{path}: truncated record at byte {off}")
        frames.append(data[off:off + incl])
        off += incl
    return frames


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_port(f):
    """Destination port of an IPv4/UDP frame, or None."""
    if len(f) < 42 or f[12:14] != b"\x08\x00" or f[14] >> 4 != 4:
        return None
    ihl = (f[14] & 15) * 4
    if ihl < 20 or f[23] != 17 or len(f) < 14 + ihl + 8:
        return None
    return struct.unpack("!H", f[14 + ihl + 2:14 + ihl + 4])[0]


def checksums_ok(f):
    ihl = (f[14] & 15) * 4
    ip = f[14:14 + ihl]
    total = struct.unpack("!H", ip[2:4])[0]
    if csum(ip) != 0:
        return "IPv4 header checksum"
    udp = f[14 + ihl:14 + total]
    ulen = struct.unpack("!H", udp[4:6])[0]
    if ulen != len(udp):
        return f"UDP length {ulen} != {len(udp)}"
    if struct.unpack("!H", udp[6:8])[0] == 0:
        return None  # no checksum (allowed for IPv4)
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
    if csum(pseudo + udp) != 0:
        return "UDP checksum"
    return None


def expected(sent, ttl_dec, macs=None):
    """The frame @sent should become: TTL lowered, IPv4 checksum redone,
    the MACs replaced."""
    f = bytearray(sent)
    if macs:
        f[0:12] = macs
    f[22] = (f[22] - ttl_dec) & 0xFF
    f[24:26] = b"\0\0"
    ihl = (f[14] & 15) * 4
    f[24:26] = struct.pack("!H", csum(bytes(f[14:14 + ihl])))
    return bytes(f)


def by_flow(frames, lo, hi):
    flows, other = {}, 0
    for f in frames:
        p = udp_port(f)
        if p is None or not lo <= p <= hi:
            other += 1
            continue
        flows.setdefault(p, []).append(f)
    return flows, other


def main(argv):
    args = argv[1:]
    lo, hi, ttl_dec, any_mac, unordered, macs, files = 9000, 9063, 0, False, False, None, []
    try:
        while args:
            a = args.pop(0)
            if a == "--ports":
                lo, hi = (int(x) for x in args.pop(0).split("-"))
            elif a == "--ttl-dec":
                ttl_dec = int(args.pop(0))
            elif a == "--any-mac":
                any_mac = True
            elif a == "--macs":
                d, src = args.pop(0).split(",")
                macs = bytes.fromhex(d) + bytes.fromhex(src)
                if len(macs) != 12:
                    raise ValueError("--macs takes DST,SRC of 12 hex digits each")
            elif a == "--unordered":
                unordered = True
            elif a.startswith("-"):
                raise ValueError(f"unknown option {a}")
            else:
                files.append(a)
        if len(files) != 2:
            raise ValueError("want CAPTURE and SENT")
        got, other = by_flow(read_pcap(files[0]), lo, hi)
        want, _ = by_flow(read_pcap(files[1]), lo, hi)
    except (ValueError, IndexError, OSError) as e:
        print(f"pcap-check: {e}", file=sys.stderr)
        return 2
    bad = 0
    for port in sorted(set(got) | set(want)):
        g, w = got.get(port, []), want.get(port, [])
        problems = []
        if len(g) != len(w):
            problems.append(f"{len(g)} frames, want {len(w)}")
        if unordered:
            cut = 12 if any_mac else 0
            left = collections.Counter(expected(wf, ttl_dec, macs)[cut:] for wf in w)
            for i, gf in enumerate(g):
                why = checksums_ok(gf)
                if why:
                    problems.append(f"frame {i}: bad {why}")
                elif left[gf[cut:]] > 0:
                    left[gf[cut:]] -= 1
                else:
                    problems.append(f"frame {i}: not one of the sent frames (or a duplicate)")
                if len(problems) > 5:
                    break
            missing = sum(left.values())
            if missing and len(problems) <= 5:
                problems.append(f"{missing} sent frames never arrived")
            g = []
        for i, (gf, wf) in enumerate(zip(g, w)):
            why = checksums_ok(gf)
            e = expected(wf, ttl_dec, macs)
            if any_mac:
                gf, e = gf[12:], e[12:]
            if why:
                problems.append(f"frame {i}: bad {why}")
            elif gf != e:
                problems.append(f"frame {i}: content differs (ttl {gf[22 - (12 if any_mac else 0)]}"
                                f", want {e[22 - (12 if any_mac else 0)]})")
            if len(problems) > 5:
                break
        print(f"port {port}: {len(got.get(port, []))} of {len(w)} frames"
              + (": " + "; ".join(problems) if problems else " ok"))
        bad += bool(problems)
    total = sum(len(v) for v in got.values())
    print(f"test frames {total}, other frames {other} (ignored), flows with problems {bad}")
    return 1 if bad or not want else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
