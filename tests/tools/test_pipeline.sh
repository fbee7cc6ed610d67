#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-pipeline's contract on the built-in generator: a fixed seed gives
# exactly the same packets (counts and content checksums) whatever the
# workers, the scheduler or the machine's load, every packet is accounted
# for with zero loss, the JSON document has the documented fields, and bad
# usage exits 2 with one line on stderr.  Counts and checksums only, never
# timings.
set -u
. "$(dirname "$0")/../common/cli.sh"
PL=$BUILD/bin/moirai-pipeline

# The generator is deterministic: these are the packets of seed 7, 0.2 s
# at 20000 pps (critical 1%, slow 0.5%), and what the rewrite makes of them.
GEN="--seed 7 --duration 0.2 --rate 20000 --quiet --json"
expect_status 0 "generator run" "$PL" $GEN --workers 1
cp "$tmp/out" "$tmp/ref.json"
json_check "zero loss, every packet forwarded" \
	"d['lost'] == 0 and d['packets_out'] == d['packets_in'] and sum(d['drops'].values()) == 0 and d['buffers_leaked'] == 0"
json_check "documented fields" \
	"all(k in d for k in ('packets_in','packets_out','bytes_in','bytes_out','lost','drops','pps','latency_ns','workers')) and all(k in d['latency_ns'][l] for l in ('critical','normal') for k in ('p50','p99','p999')) and isinstance(d['lost'], int) and isinstance(d['workers'], list)"
json_check "critical packets reach TX on the critical level" \
	"d['latency_ns']['critical']['count'] == d['critical_in'] > 0 and d['latency_ns']['normal']['count'] == d['packets_out'] - d['critical_in']"
json_check "slow-path packets were generated" "d['slow_path'] > 0"
ref_in=$($PY -c "import json; d=json.load(open('$tmp/ref.json')); print(d['packets_in'], d['bytes_in'], d['checksum_in'], d['checksum_out'], d['critical_in'], d['slow_path'])")
for variant in "--workers 2" "--workers 2 --sched fifo" "--sched priority --route-period 1" \
	"--fast-ns 3000 --batch 8" "--workers 2 --io-worker"; do
	expect_status 0 "generator run $variant" "$PL" $GEN $variant
	got=$($PY -c "import json; d=json.load(open('$tmp/out')); print(d['packets_in'], d['bytes_in'], d['checksum_in'], d['checksum_out'], d['critical_in'], d['slow_path'])")
	[ "$got" = "$ref_in" ] || fail "$variant: counts/checksums '$got', want '$ref_in' (same seed)"
	json_check "$variant: zero loss" "d['lost'] == 0 and d['packets_out'] == d['packets_in']"
done
json_check "route table replaced and old tables freed" "d['routes']['replacements'] > 0 and d['routes']['freed'] == d['routes']['replacements']"
# Another seed gives other packets.
expect_status 0 "seed 8" "$PL" --seed 8 --duration 0.2 --rate 20000 --quiet --json
json_check "another seed, other content" "d['checksum_in'] != '$(echo "$ref_in" | cut -d' ' -f3)'"

# --compare: one document, the fifo run in "fifo", same traffic.
expect_status 0 "compare" "$PL" $GEN --compare
json_check "compare has a fifo object of the same shape and the same traffic" \
	"d['sched'] == 'priority' and d['fifo']['sched'] == 'fifo' and d['fifo']['packets_in'] == d['packets_in'] and d['fifo']['checksum_out'] == d['checksum_out'] and d['fifo']['lost'] == 0 and 'p99' in d['fifo']['latency_ns']['critical']"

# The text summary says there was no loss.
expect_status 0 "text summary" "$PL" --seed 7 --duration 0.1 --rate 10000 --quiet
grep -q "lost 0" "$tmp/out" || fail "summary does not say 'lost 0'"

# Bad usage.
# (never a real interface here: as root that would attach an XDP program
# to it; tests/xdp/test_pipeline_xdp.sh runs AF_XDP in namespaces of its own)
expect_status 2 "--iface: no such interface" "$PL" --iface mxdp-none0 --workers 1
grep -q "mxdp-none0: no such network interface" "$tmp/err" ||
	fail "--iface: message lacks 'no such network interface'"
expect_status 2 "bad rate" "$PL" --rate -5
expect_status 2 "bad sched" "$PL" --sched lifo
expect_status 2 "compare with sched" "$PL" --compare --sched fifo
expect_status 2 "bad dscp" "$PL" --critical-dscp 64
expect_status 2 "bad flow" "$PL" --critical-flow 10.0.0.300
expect_status 2 "extra argument" "$PL" extra
expect_status 2 "rate and load" "$PL" --rate 10 --load 0.5
expect_status 2 "bad batch" "$PL" --batch 0
expect_status 2 "missing route file" "$PL" --routes "$tmp/none"
printf '10.0.0.0/8 02:00:00:00:00:02\n10.1.2.3/8 drop\n' >"$tmp/routes"
expect_status 2 "route with host bits" "$PL" --routes "$tmp/routes"
grep -q "routes:2" "$tmp/err" || fail "route error does not name the line: $(cat "$tmp/err")"

cli_finish pipeline
