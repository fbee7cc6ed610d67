#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-pipeline pcap replay: the files of tests/data (tools/gen-pcaps.py
# wrote them and, independently of the C code, what replaying them must
# give: tests/data/pl-expected.json) replay with exact packet, byte, drop
# and per-flow counts and the known content checksums in and out, with one
# or two workers, either scheduler, the default route or a route table;
# what --write writes replays to the same packets; bad files (wrong magic,
# short header, truncated record, huge capture length, not Ethernet) exit 2
# with one line naming the file, and a huge snaplen is clamped, not fatal;
# --critical-flow and --critical-dscp put exactly the packets they name on
# the critical level.
set -u
. "$(dirname "$0")/../common/cli.sh"
PL=$BUILD/bin/moirai-pipeline
D=tests/data

run() { # expected-status description args...
	_rw=$1 _rd=$2
	shift 2
	expect_status "$_rw" "$_rd" "$PL" --quiet "$@"
}

# Compare the JSON run in $tmp/out with the expected case $1.
check() { # description expected-key
	if ! $PY - "$tmp/out" "$D/pl-expected.json" "$2" <<'PYEOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))[sys.argv[3]]
bad = []
for k in ("packets_in", "bytes_in", "packets_out", "bytes_out", "checksum_in",
          "checksum_out", "critical_in", "slow_path"):
    if d[k] != e[k]:
        bad.append("%s %s, want %s" % (k, d[k], e[k]))
for k, v in e["drops"].items():
    if d["drops"].get(k) != v:
        bad.append("drops.%s %s, want %s" % (k, d["drops"].get(k), v))
if d["lost"] != 0:
    bad.append("lost %s" % d["lost"])
flows = {"%s:%d>%s:%d" % (f["src"], f["sport"], f["dst"], f["dport"]): [f["packets"], f["bytes"]]
         for f in d["flows"]}
if flows != e["flows"]:
    bad.append("flows %s, want %s" % (flows, e["flows"]))
if bad:
    print("    " + "\n    ".join(bad))
    sys.exit(1)
PYEOF
		fail "$1"
	fi
}

for f in pl-basic pl-mixed pl-nsec-be; do
	for v in "--workers 1" "--workers 2" "--workers 2 --sched fifo"; do
		run 0 "$f $v" --pcap "$D/$f.pcap" --per-flow --json $v && check "$f.pcap $v" "$f.pcap"
	done
done
run 0 "routes" --pcap "$D/pl-basic.pcap" --routes "$D/pl-routes.txt" --per-flow --json &&
	check "pl-basic.pcap with pl-routes.txt" "pl-basic.pcap+routes"
run 0 "routes, replaced every ms" --pcap "$D/pl-basic.pcap" --routes "$D/pl-routes.txt" \
	--route-period 1 --per-flow --json && check "routes replaced" "pl-basic.pcap+routes"

# Classification: exactly the packets an option names go to the critical
# level, counted at TX per level.  pl-basic.pcap (tools/gen-pcaps.py) has
# 16 frames to each of 10.1.0.1, 10.1.1.2 and 10.1.2.3 (port 9000, DSCP
# 0), 8 to 10.2.0.1:5000 with DSCP EF and 2 with IP options (DSCP 0).
classify() { # description want-critical options...
	_cd=$1 _cw=$2
	shift 2
	run 0 "$_cd" --pcap "$D/pl-basic.pcap" --json "$@" &&
		json_check "$_cd: $_cw packets on the critical level" \
			"d['critical_in'] == $_cw and d['latency_ns']['critical']['count'] == $_cw and d['latency_ns']['normal']['count'] == 58 - $_cw and d['packets_out'] == 58 and d['lost'] == 0"
}
classify "default: DSCP EF only" 8
classify "--critical-flow ADDR:PORT" 24 --critical-flow 10.1.1.2:9000
classify "--critical-flow ADDR, any port" 24 --critical-flow 10.1.1.2
classify "--critical-flow, other port: no match" 8 --critical-flow 10.1.1.2:9001
classify "--critical-flow, source address: no match" 8 --critical-flow 10.0.0.2
classify "two --critical-flow" 40 --critical-flow 10.1.0.1:9000 --critical-flow 10.1.2.3
classify "--critical-dscp none" 0 --critical-dscp none
classify "--critical-dscp none, one flow" 16 --critical-dscp none --critical-flow 10.1.2.3:9000
classify "--critical-dscp 0 replaces EF" 50 --critical-dscp 0
classify "--critical-dscp 0,46" 58 --critical-dscp 0,46
classify "--critical-dscp 34 (none here)" 0 --critical-dscp 34
classify "--critical-dscp 34 and a flow" 16 --critical-dscp 34 --critical-flow 10.1.0.1:9000
classify "fifo keeps the class for the report" 24 --critical-flow 10.1.1.2:9000 --sched fifo
# The generator's critical flows are 10.2.0.k:5000+k (DSCP EF): named as
# flows with DSCP off, the same packets are critical as by DSCP.
GEN="--seed 7 --duration 0.2 --rate 20000 --critical-flows 2 --critical-share 0.05 --quiet --json"
run 0 "generator, critical by DSCP" $GEN &&
	gen_crit=$($PY -c "import json; d=json.load(open('$tmp/out')); print(d['critical_in'])")
run 0 "generator, critical by flow" $GEN --critical-dscp none \
	--critical-flow 10.2.0.0:5000 --critical-flow 10.2.0.1:5001 &&
	json_check "generator: the two flows are the ${gen_crit:-?} DSCP-EF packets" \
		"d['critical_in'] == ${gen_crit:-0} > 0 and d['latency_ns']['critical']['count'] == d['critical_in']"
run 0 "generator, one of the two flows" $GEN --critical-dscp none --critical-flow 10.2.0.1:5001 &&
	json_check "generator: one flow, fewer critical" "0 < d['critical_in'] < ${gen_crit:-0}"

# --write: the output file replays to exactly what was forwarded.
run 0 "write" --pcap "$D/pl-mixed.pcap" --write "$tmp/w.pcap" --json && cp "$tmp/out" "$tmp/w1.json"
run 0 "replay what was written" --pcap "$tmp/w.pcap" --json &&
	$PY - "$tmp/w1.json" "$tmp/out" <<'PYEOF' || fail "written file does not replay to the forwarded packets"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ok = (b["packets_in"] == a["packets_out"] and b["bytes_in"] == a["bytes_out"]
      and b["checksum_in"] == a["checksum_out"] and b["lost"] == 0)
sys.exit(0 if ok else 1)
PYEOF
run 2 "write to a directory that does not exist" --pcap "$D/pl-basic.pcap" --write "$tmp/no/such/dir.pcap"

# Bad files: a clear error naming the file, never a crash.
for f in bad-magic bad-short-header bad-linktype; do
	run 2 "$f" --pcap "$D/$f.pcap" && { grep -q "$f.pcap" "$tmp/err" || fail "$f: error does not name the file: $(cat "$tmp/err")"; }
done
run 2 "missing file" --pcap "$tmp/none.pcap"
grep -q "none.pcap" "$tmp/err" || fail "missing file: error does not name it"
# Truncated record / absurd capture length: the records before it are
# replayed and accounted for, then exit 2 with the record number.
run 2 "bad-truncated" --pcap "$D/bad-truncated.pcap" --json &&
	{ grep -q "record 5: truncated" "$tmp/err" || fail "bad-truncated: $(cat "$tmp/err")"; }
$PY -c "import json,sys; d=json.load(open('$tmp/out')); sys.exit(0 if d['packets_in'] == 4 and d['lost'] == 0 and 'source_error' in d else 1)" ||
	fail "bad-truncated: the four whole records are not accounted for"
run 2 "bad-caplen" --pcap "$D/bad-caplen.pcap" --json &&
	{ grep -q "record 2: invalid packet capture length" "$tmp/err" || fail "bad-caplen: $(cat "$tmp/err")"; }
run 0 "bad-snaplen (clamped by libpcap)" --pcap "$D/bad-snaplen.pcap" --json &&
	{ $PY -c "import json,sys; d=json.load(open('$tmp/out')); sys.exit(0 if d['packets_out'] == 3 else 1)" || fail "bad-snaplen: want 3 packets out"; }
# Not a pcap file at all, and an empty one.
: >"$tmp/empty.pcap"
run 2 "empty file" --pcap "$tmp/empty.pcap"
run 2 "a directory" --pcap "$D"

cli_finish "pipeline pcap"
