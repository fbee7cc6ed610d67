#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes the pcap files moirai-pipeline's tests replay, and what replaying
them must give, into tests/data/ (run at development time; the outputs are
committed, so building and testing need no Python beyond the JSON checks).

    tools/gen-pcaps.py [OUTDIR]        (default: tests/data next to this file)

With OUTDIR the corpus seeds go to OUTDIR/corpus instead of the tree's
tests/pipeline/corpus, so that a regeneration elsewhere (as
tests/tools/test_gen_pcaps.sh does, to prove the committed files are this
script's output) never writes into the source tree.

Good files (every frame built here, byte by byte, with the standard library):
  pl-basic.pcap   valid Ethernet/IPv4/UDP: three background flows, one
                  critical flow (DSCP EF), two frames with IP options (the
                  slow path), sizes 60..1514; little-endian, microseconds
  pl-mixed.pcap   valid frames and one of every malformed kind the parser
                  names (truncated, not IPv4, bad IP header/length/checksum,
                  bad options, fragment, not UDP, bad UDP length/checksum,
                  TTL 1, zero-length record, a record longer than a buffer)
  pl-nsec-be.pcap big-endian, nanosecond-magic file of valid frames
Bad files (each must give a clear error, never a crash):
  bad-magic.pcap, bad-short-header.pcap, bad-truncated.pcap (cut inside a
  record), bad-snaplen.pcap (snaplen 0xffffffff), bad-caplen.pcap (a record
  claiming 2^31 bytes), bad-linktype.pcap (802.11)
pl-expected.json holds, per good file and route table, what the pipeline
must report: packets and bytes in/out, drops by reason, per-flow counts and
the content checksums (sum of pl_frame_hash() of each frame, mod 2^64) of what
comes in and of what goes out after the rewrite (TTL - 1, MACs, IPv4
checksum), computed here independently of the C code.  pl-routes.txt is
the route table of the "routes" case.  The frames of pl-mixed.pcap also
seed the parser's regression corpus, tests/pipeline/corpus/REASON-*.bin.
"""
import json
import os
import struct
import sys

PORT_MAC = bytes.fromhex("0200000000fe")  # moirai-pipeline's source MAC
DEFAULT_NH = bytes.fromhex("020000000001")  # next hop of the default route
DSCP_EF = 46
MASK64 = (1 << 64) - 1
BUF = 2048  # PL_PKT_DATA

DROPS = ["no_buffer", "oversize", "queue_full", "truncated", "not_ipv4", "bad_ip_header",
         "bad_ip_length", "bad_ip_checksum", "bad_ip_options", "fragment", "not_udp",
         "bad_udp_length", "bad_udp_checksum", "ttl_expired", "no_route", "tx_full"]


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def ip2int(a):
    return struct.unpack("!I", bytes(int(x) for x in a.split(".")))[0]


def frame(src, dst, sport, dport, size, dscp=0, ttl=64, options=b"", proto=17, frag=0x4000,
          ident=1, fill=0, udp_len_delta=0, bad_ip_csum=False, bad_udp_csum=False,
          version=4, eth_type=0x0800, ip_len_delta=0):
    """An Ethernet/IPv4/UDP frame of @size bytes (without FCS)."""
    ihl = 20 + len(options)
    ip_len = size - 14
    udp_len = ip_len - ihl
    payload = bytes((fill + i * 7) & 0xff for i in range(udp_len - 8))
    s, d = ip2int(src), ip2int(dst)
    udp = struct.pack("!HHHH", sport, dport, udp_len + udp_len_delta, 0) + payload
    pseudo = struct.pack("!IIBBH", s, d, 0, 17, udp_len + udp_len_delta)
    c = (~csum(pseudo + udp[:udp_len]) & 0xffff) or 0xffff
    if bad_udp_csum:
        c ^= 0x0101
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    hdr = struct.pack("!BBHHHBBHII", (version << 4) | (ihl // 4), dscp << 2,
                      ip_len + ip_len_delta, ident, frag, ttl, proto, 0, s, d) + options
    ic = ~csum(hdr) & 0xffff
    if bad_ip_csum:
        ic ^= 0x00ff
    hdr = hdr[:10] + struct.pack("!H", ic) + hdr[12:]
    eth = PORT_MAC + bytes.fromhex("020000001000") + struct.pack("!H", eth_type)
    return eth + hdr + udp


def fnv(data):
    """pl_frame_hash(): FNV-1a 64 over little-endian 64-bit words, then the
    tail bytes."""
    h = 0xcbf29ce484222325
    n = len(data) // 8 * 8
    for (w,) in struct.iter_unpack("<Q", data[:n]):
        h ^= w
        h = (h * 0x100000001b3) & MASK64
    for b in data[n:]:
        h ^= b
        h = (h * 0x100000001b3) & MASK64
    return h


def write_pcap(path, records, big_endian=False, nsec=False, snaplen=65535, linktype=1,
               magic=None):
    e = ">" if big_endian else "<"
    if magic is None:
        magic = 0xa1b23c4d if nsec else 0xa1b2c3d4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for i, (data, wire_len) in enumerate(records):
        sec, frac = 1700000000 + i // 10, (i % 10) * (100000000 if nsec else 100000)
        out += struct.pack(e + "IIII", sec, frac, len(data), wire_len) + data
    with open(path, "wb") as f:
        f.write(out)
    return out


# ---- the oracle: what the pipeline does with a frame --------------------

def parse(f):
    """Drop reason or None, and (src, dst, sport, dport, ttl, options)."""
    n = len(f)
    if n < 14:
        return "truncated", None
    if struct.unpack("!H", f[12:14])[0] != 0x0800:
        return "not_ipv4", None
    if n < 34:
        return "truncated", None
    ip = f[14:]
    ihl = (ip[0] & 15) * 4
    if ip[0] >> 4 != 4 or ihl < 20:
        return "bad_ip_header", None
    if n < 14 + ihl:
        return "truncated", None
    ip_len = struct.unpack("!H", ip[2:4])[0]
    if ip_len < ihl:
        return "bad_ip_length", None
    if ip_len > n - 14:
        return "truncated", None
    if csum(ip[:ihl]) != 0xffff:
        return "bad_ip_checksum", None
    if ihl > 20 and not options_ok(ip[20:ihl]):
        return "bad_ip_options", None
    if struct.unpack("!H", ip[6:8])[0] & 0x3fff:
        return "fragment", None
    if ip[9] != 17:
        return "not_udp", None
    if ip_len - ihl < 8:
        return "bad_udp_length", None
    udp = ip[ihl:]
    udp_len = struct.unpack("!H", udp[4:6])[0]
    if udp_len < 8 or udp_len > ip_len - ihl:
        return "bad_udp_length", None
    s, d = struct.unpack("!II", ip[12:20])
    if struct.unpack("!H", udp[6:8])[0] != 0:
        pseudo = struct.pack("!IIBBH", s, d, 0, 17, udp_len)
        if csum(pseudo + udp[:udp_len]) != 0xffff:
            return "bad_udp_checksum", None
    sport, dport = struct.unpack("!HH", udp[:4])
    return None, (s, d, sport, dport, ip[8], ihl > 20)


def options_ok(o):
    i = 0
    while i < len(o):
        if o[i] == 0:
            return True
        if o[i] == 1:
            i += 1
            continue
        if i + 1 >= len(o) or o[i + 1] < 2 or o[i + 1] > len(o) - i:
            return False
        i += o[i + 1]
    return True


def lookup(routes, dst):
    best = None
    for prefix, plen, nh in routes:
        mask = (MASK64 << (32 - plen)) & 0xffffffff if plen else 0
        if dst & mask == prefix and (best is None or plen >= best[0]):
            best = (plen, nh)
    return best[1] if best else None


def forward(f, routes):
    """(drop reason, None) or (None, rewritten frame, 5-tuple)."""
    reason, h = parse(f)
    if reason:
        return reason, None, None
    s, d, sport, dport, ttl, _ = h
    if ttl <= 1:
        return "ttl_expired", None, None
    nh = lookup(routes, d)
    if nh is None or nh == "drop":
        return "no_route", None, None
    out = bytearray(f)
    out[0:6] = nh
    out[6:12] = PORT_MAC
    out[22] -= 1
    out[24:26] = b"\0\0"
    ihl = (out[14] & 15) * 4
    out[24:26] = struct.pack("!H", ~csum(bytes(out[14:14 + ihl])) & 0xffff)
    return None, bytes(out), (s, d, sport, dport)


def ipstr(x):
    return ".".join(str(b) for b in struct.pack("!I", x))


def expect(records, routes):
    e = {"packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0,
         "drops": {k: 0 for k in DROPS}, "checksum_in": 0, "checksum_out": 0,
         "critical_in": 0, "slow_path": 0, "flows": {}}
    for data, _ in records:
        e["packets_in"] += 1
        e["bytes_in"] += len(data)
        if len(data) > BUF:
            e["drops"]["oversize"] += 1
            continue
        e["checksum_in"] = (e["checksum_in"] + fnv(data)) & MASK64
        if len(data) >= 34 and data[12:14] == b"\x08\x00" and data[15] >> 2 == DSCP_EF:
            e["critical_in"] += 1
        reason, h = parse(data)
        if not reason and h[4] > 1 and h[5]:
            e["slow_path"] += 1
        reason, out, t = forward(data, routes)
        if reason:
            e["drops"][reason] += 1
            continue
        e["packets_out"] += 1
        e["bytes_out"] += len(out)
        e["checksum_out"] = (e["checksum_out"] + fnv(out)) & MASK64
        key = "%s:%d>%s:%d" % (ipstr(t[0]), t[2], ipstr(t[1]), t[3])
        fl = e["flows"].setdefault(key, [0, 0])
        fl[0] += 1
        fl[1] += len(out)
    e["checksum_in"] = "0x%016x" % e["checksum_in"]
    e["checksum_out"] = "0x%016x" % e["checksum_out"]
    return e


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "data")
    os.makedirs(outdir, exist_ok=True)
    ra = bytes([0x94, 4, 0, 0])  # Router Alert

    basic = []
    sizes = [60, 64, 128, 590, 1000, 1514]
    for i in range(48):
        flow = i % 3
        basic.append(frame("10.0.0.%d" % (flow + 1), "10.1.%d.%d" % (flow, flow + 1),
                           1024 + flow, 9000, sizes[i % len(sizes)], ident=i, fill=i))
    for i in range(8):
        basic.append(frame("10.0.255.1", "10.2.0.1", 2000, 5000, 60 + 40 * i, dscp=DSCP_EF,
                           ident=100 + i, fill=i))
    basic.append(frame("10.0.0.9", "192.168.7.7", 4000, 53, 200, options=ra, ident=200))
    basic.append(frame("10.0.0.9", "172.16.1.1", 4001, 53, 300, options=ra, ident=201))
    basic = [(f, len(f)) for f in basic]

    mixed = [(f, len(f)) for f in [
        frame("10.0.0.1", "10.1.0.1", 1024, 9000, 100, ident=1),
        frame("10.0.0.2", "10.1.0.2", 1025, 9000, 1514, ident=2),
        frame("10.0.255.2", "10.2.0.2", 2001, 5001, 80, dscp=DSCP_EF, ident=3),
        frame("10.0.0.3", "10.1.0.3", 1026, 9000, 200, options=ra, ident=4),
        frame("10.0.0.4", "10.1.0.4", 1027, 9000, 60, udp_len_delta=0, ident=5, bad_udp_csum=False),
    ]]
    bad_frames = [
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100)[:20],                   # truncated Ethernet+IP
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100)[:90],                   # IP length beyond frame
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, eth_type=0x0806),      # ARP: not IPv4
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, version=6),            # bad IP header
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, ip_len_delta=-80),     # IP length < header
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, bad_ip_csum=True),
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, options=bytes([0x94, 9, 0, 0])),  # bad option length
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, frag=0x2000),          # MF: fragment
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, proto=6),              # TCP: not UDP
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, udp_len_delta=40),     # UDP length beyond IP
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, bad_udp_csum=True),
        frame("10.0.0.5", "10.1.0.5", 1, 2, 100, ttl=1),                # TTL expires here
        b"",                                                             # zero-length record
        frame("10.0.0.5", "10.1.0.5", 1, 2, 1514) * 2,                   # longer than a buffer
    ]
    mixed += [(f, len(f)) for f in bad_frames]
    mixed.append((frame("10.0.0.6", "10.1.0.6", 1030, 9000, 60, ident=9)[:40], 60))  # snapped

    nsec = [(f, len(f)) for f in (frame("10.0.0.%d" % (i % 2 + 1), "10.1.0.1", 1024, 9000,
                                        64 + i, ident=i) for i in range(10))]

    write_pcap(os.path.join(outdir, "pl-basic.pcap"), basic)
    write_pcap(os.path.join(outdir, "pl-mixed.pcap"), mixed)
    write_pcap(os.path.join(outdir, "pl-nsec-be.pcap"), nsec, big_endian=True, nsec=True)

    good = write_pcap(os.path.join(outdir, "bad-magic.pcap"), basic[:3], magic=0x12345678)
    good = write_pcap(os.path.join(outdir, "bad-truncated.pcap"), basic[:5])
    with open(os.path.join(outdir, "bad-truncated.pcap"), "wb") as f:
        f.write(good[:-30])  # the last record loses 30 bytes
    with open(os.path.join(outdir, "bad-short-header.pcap"), "wb") as f:
        f.write(good[:13])
    write_pcap(os.path.join(outdir, "bad-snaplen.pcap"), basic[:3], snaplen=0xffffffff)
    good = write_pcap(os.path.join(outdir, "bad-caplen.pcap"), basic[:2])
    hdr2 = 24 + 16 + len(basic[0][0])  # second record header
    with open(os.path.join(outdir, "bad-caplen.pcap"), "wb") as f:
        f.write(good[:hdr2 + 8] + struct.pack("<II", 0x80000000, 0x80000000) + good[hdr2 + 16:])
    write_pcap(os.path.join(outdir, "bad-linktype.pcap"), basic[:2], linktype=105)

    default = [(0, 0, DEFAULT_NH)]
    route_lines = [("10.1.0.0/16", "02:00:00:00:00:10"), ("10.1.1.0/24", "02:00:00:00:00:11"),
                   ("10.2.0.0/24", "02:00:00:00:00:20"), ("192.168.0.0/16", "drop")]
    with open(os.path.join(outdir, "pl-routes.txt"), "w") as f:
        f.write("# tests/tools/test_pipeline_pcap.sh: the 'routes' case (tools/gen-pcaps.py)\n")
        for p, nh in route_lines:
            f.write("%-16s %s\n" % (p, nh))
    routes = []
    for p, nh in route_lines:
        a, plen = p.split("/")
        routes.append((ip2int(a), int(plen), "drop" if nh == "drop" else
                       bytes.fromhex(nh.replace(":", ""))))

    expected = {
        "pl-basic.pcap": expect(basic, default),
        "pl-mixed.pcap": expect(mixed, default),
        "pl-nsec-be.pcap": expect(nsec, default),
        "pl-basic.pcap+routes": expect(basic, routes),
    }
    # Seeds of the parser's regression corpus (tests/pipeline/corpus): each
    # frame of pl-mixed.pcap, named after what the parser must say.
    corpus = (os.path.join(outdir, "corpus") if len(sys.argv) > 1 else
              os.path.join(here, "..", "tests", "pipeline", "corpus"))
    os.makedirs(corpus, exist_ok=True)
    for i, (data, _) in enumerate(mixed):
        if len(data) > BUF:
            continue
        reason = parse(data)[0] or "ok"
        with open(os.path.join(corpus, "%s-mixed-%02d.bin" % (reason, i)), "wb") as f:
            f.write(data)
    with open(os.path.join(outdir, "pl-expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
