#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# moirai-topo's contract: exit 0/1/2, one clear stderr line on bad input,
# valid JSON with the documented fields, plans that match the library.
set -u
. "$(dirname "$0")/../common/cli.sh"
TOPO=$BUILD/bin/moirai-topo

expect_status 0 "live tree" "$TOPO"
grep -q '^Machine (live)' "$tmp/out" || { echo "FAIL: live tree header"; fails=$((fails + 1)); }
expect_status 0 "--help" "$TOPO" --help
expect_status 0 "--version" "$TOPO" --version
expect_status 0 "live plan json" "$TOPO" --plan all --json
json_check "live json fields" "d['source']=='live' and d['pus']>=1 and d['allowed_pus']>=1 and len(d['nodes'])==d['numa_nodes'] and d['plan']['policy']=='compact' and len(d['plan']['workers'])==d['cores'] or d['allowed_pus']<d['pus']"
expect_status 0 "synthetic spread" "$TOPO" --synthetic "pack:2 numa:2 core:2 pu:2" --plan 4 --policy spread --json
json_check "spread visits every node" "d['source']=='synthetic' and d['numa_nodes']==4 and sorted(w['node'] for w in d['plan']['workers'])==[0,1,2,3] and all(len(w['steal_order'])==3 for w in d['plan']['workers']) and d['distances'] is None"
expect_status 0 "synthetic smt" "$TOPO" --synthetic "pack:1 core:2 pu:2" --plan all --smt --json
json_check "smt plans every PU" "len(d['plan']['workers'])==4 and d['plan']['smt'] is True"

expect_status 0 "alloc stats" "$TOPO" --alloc-stats --json
json_check "alloc stats per node" "len(d['alloc'])==d['numa_nodes'] and all(a['committed']>0 and a['page_mode'] in ('hugetlb','thp','none') for a in d['alloc'] if a['available'])"
expect_status 2 "alloc stats on a foreign topology" "$TOPO" --synthetic pu:2 --alloc-stats

# Bad input: one line on stderr, exit 2.
expect_status 2 "missing file" "$TOPO" --input /nonexistent.xml
expect_status 2 "invalid synthetic" "$TOPO" --synthetic "nuam:2"
grep -q "nuam:2" "$tmp/err" || { echo "FAIL: message names the bad description"; fails=$((fails + 1)); }
printf '<?xml version="1.0"?>\n<topology><object type="Mach' >"$tmp/cut.xml"
expect_status 2 "truncated xml" "$TOPO" --input "$tmp/cut.xml"
expect_status 2 "unknown policy" "$TOPO" --synthetic "pu:2" --plan 1 --policy fastest
expect_status 2 "zero workers" "$TOPO" --synthetic "pu:2" --plan 0
expect_status 2 "too many workers" "$TOPO" --synthetic "pack:1 core:2 pu:1" --plan 3
grep -q "only 2 usable" "$tmp/err" || { echo "FAIL: says how many are usable"; fails=$((fails + 1)); }
expect_status 2 "unknown device" "$TOPO" --synthetic "pu:2" --plan 1 --near eth7
expect_status 2 "unknown option" "$TOPO" --frobnicate
expect_status 2 "junk argument" "$TOPO" extra
expect_status 2 "both sources" "$TOPO" --input a.xml --synthetic pu:1
expect_status 2 "bad reserve" "$TOPO" --synthetic pu:2 --reserve -1

# Issue #8: corrupt or hostile input is one stderr line and exit 2, fast.
CORPUS=tests/numa/corpus
expect_status 2 "Core at two depths" "$TOPO" --input "$CORPUS/repro-core-at-two-depths.xml" --plan all
grep -q "Core object inside another Core" "$tmp/err" || { echo "FAIL: names the nested Core"; fails=$((fails + 1)); }
expect_status 2 "duplicate PU os_index" "$TOPO" --input "$CORPUS/repro-duplicate-pu-os-index.xml" --plan all --smt
expect_status 2 "out-of-order siblings (was hwloc's 9-line banner)" "$TOPO" --input "$CORPUS/out-of-order-pus.xml"
for f in "$CORPUS"/*seed*.xml; do
	"$TOPO" --input "$f" --plan all >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne 0 ] && { [ "$got" -ne 2 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ]; }; then
		echo "FAIL: $f: exit $got"; cat "$tmp/err"; fails=$((fails + 1))
	fi
done
expect_status 2 "65536 packages" timeout 10 "$TOPO" --synthetic "pack:65536 pu:1"
expect_status 2 "8192 PUs" timeout 10 "$TOPO" --synthetic "pack:64 core:64 pu:2"
grep -q "4096" "$tmp/err" || { echo "FAIL: says the cap"; fails=$((fails + 1)); }
mkfifo "$tmp/fifo"
expect_status 2 "a FIFO is not waited on" timeout 10 "$TOPO" --input "$tmp/fifo"
expect_status 2 "a directory" "$TOPO" --input "$tmp"
lstopo-no-graphics -f -i "pack:2 numa:2 core:2 pu:2" --of xml "$tmp/ok.xml" 2>/dev/null
expect_status 0 "synthetic export" "$TOPO" --input "$tmp/ok.xml"
# Without libxml2 hwloc would use its minimal parser: refused, one line, runtime failure.
HWLOC_LIBXML_IMPORT=0 "$TOPO" --input "$tmp/ok.xml" >"$tmp/out" 2>"$tmp/err"
if [ $? -ne 1 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q libhwloc-plugins "$tmp/err"; then
	echo "FAIL: minimal parser refused with one line naming libhwloc-plugins"; cat "$tmp/err"; fails=$((fails + 1))
fi
# Human output says which numbers are OS numbers and which are logical.
"$TOPO" --input "$tmp/ok.xml" --plan 2 >"$tmp/out" 2>&1
for label in "NUMA node os 0 (idx 0" "core idx 0" "PU os 0" "pu os" "node os" "l3 idx"; do
	grep -qF "$label" "$tmp/out" || { echo "FAIL: human output lacks '$label'"; fails=$((fails + 1)); }
done

# MOIRAI_TOPOLOGY chooses the source.
MOIRAI_TOPOLOGY="pack:3 core:1 pu:1" "$TOPO" --json >"$tmp/out" 2>/dev/null
json_check "env synthetic" "d['source']=='synthetic' and d['pus']==3"

# The real machines of the repository (tests/data/topologies/README.md).
T=tests/data/topologies
expect_status 0 "near eth0" "$TOPO" --input "$T/32em64t-2n8c2t-pci-normalio.xml" --plan 4 --near eth0 --json
json_check "--near eth0 puts workers on node 1" "d['source']=='xml' and all(w['node']==1 for w in d['plan']['workers'])"
n=0
for f in "$T"/*.xml; do
	expect_status 0 "$f" "$TOPO" --input "$f" --plan all --json
	pus=$(hwloc-calc -i "$f" -N pu all)
	json_check "$f pus == hwloc-calc ($pus)" "d['pus']==$pus and len(d['nodes'])==d['numa_nodes']"
	n=$((n + 1))
done
[ "$n" -ge 12 ] || { echo "FAIL: $n real-machine exports in $T, want 12"; fails=$((fails + 1)); }

cli_finish "moirai-topo CLI"
