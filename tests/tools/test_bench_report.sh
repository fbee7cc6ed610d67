#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-bench all --out DIR --plot DIR (docs/bench.md): on a tiny slice of
# every suite (one quick repeat, a few seconds), the Markdown file has the
# machine block and one table per measured quantity, the JSON file the
# metadata and the spread of each figure, and every SVG gnuplot drew is
# well-formed SVG with a line per implementation (latency) or bars
# (throughput), among them the flood_critical priority-against-FIFO plot
# README points to.  Contents and counts only, never a time.
set -u
BUILD=${MOIRAI_BUILD:-build}
BENCH=$BUILD/bin/moirai-bench
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "gnuplot missing: run tools/install-deps test"
	exit 1
fi
# --plot without gnuplot on the PATH: exit 2, one line, before any run.
PATH=/nonexistent "$BENCH" all --quick --plot "$tmp/x" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 2 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q gnuplot "$tmp/err"; then
	echo "FAIL: --plot without gnuplot: exit $rc"
	cat "$tmp/err"
	exit 1
fi

impls=moirai,fifo_pool,rte_ring,moirai_fifo
cases=single_thread_b8,flood_critical,spawn_local,pipeline
if ! timeout 240 "$BENCH" all --quick --repeats 1 --case "$cases" --impl "$impls" \
	--out "$tmp/r" --plot "$tmp/r" >"$tmp/out" 2>"$tmp/err"; then
	echo "FAIL: moirai-bench all --out --plot exited non-zero"
	cat "$tmp/err" "$tmp/out"
	exit 1
fi

$PY - "$tmp/r" <<'PYEOF'
import glob, json, os, sys
import xml.etree.ElementTree as ET

d = sys.argv[1]
fails = []
j = json.load(open(os.path.join(d, "bench.json")))
m = j["machine"]
for k in ("moirai_version", "commit", "cpu_model", "cpus", "cores", "numa_nodes", "kernel", "quick", "repeats"):
    if k not in m:
        fails.append("bench.json: machine.%s missing" % k)
if j["suite"] != "all" or m["quick"] is not True or m["repeats"] != 1:
    fails.append("bench.json: suite/quick/repeats")
if j["failed"]:
    fails.append("bench.json: failed %s" % j["failed"])
have = {(r["suite"], r["case"], r["impl"]) for r in j["results"]}
skipped = {(s["suite"], s["case"], s["impl"]) for s in j["skipped"]}
want = [("ring", "single_thread_b8", "moirai"), ("ring", "single_thread_b8", "rte_ring"),
        ("sched", "flood_critical", "moirai"), ("sched", "flood_critical", "fifo_pool"),
        ("sched", "spawn_local", "moirai"), ("sched", "spawn_local", "fifo_pool"),
        ("pipeline", "pipeline_critical", "moirai"), ("pipeline", "pipeline_critical", "moirai_fifo"),
        ("pipeline", "pipeline_pps", "moirai")]
for w in want:
    if w not in have:
        fails.append("bench.json: no result for %s/%s/%s" % w)
for r in j["results"]:
    if not (r["ns_per_op_min"] <= r["ns_per_op"] <= r["ns_per_op_max"]):
        fails.append("bench.json: spread of %s/%s" % (r["case"], r["impl"]))
    if "p99_ns" in r and ("cdf_ns" not in r or len(r["cdf_ns"]) != len(r["cdf_q"])):
        fails.append("bench.json: no CDF for %s/%s" % (r["case"], r["impl"]))

md = open(os.path.join(d, "bench.md")).read()
for s in ("# moirai-bench all", "| CPU model |", "| physical cores usable / all |", "| NUMA nodes |", "| kernel |", "| run | quick",
          "## ring", "## sched", "## pipeline", "**ns/op**", "**latency p99, ns**",
          "| `flood_critical` |", "| `single_thread_b8` |", "| `pipeline_critical` |"):
    if s not in md:
        fails.append("bench.md: no %r" % s)
for line in md.splitlines():
    if line.startswith("| `") and line.count("|") < 3:
        fails.append("bench.md: short table row %r" % line)

svgs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "*.svg")))
want_svg = ["pipeline-pipeline_critical-latency.svg", "pipeline-throughput.svg",
            "ring-throughput.svg", "sched-flood_critical-latency.svg", "sched-throughput.svg"]
for w in want_svg:
    if w not in svgs:
        fails.append("no %s (have %s)" % (w, svgs))
ns = "{http://www.w3.org/2000/svg}"
for s in svgs:
    try:
        root = ET.parse(os.path.join(d, s)).getroot()
    except ET.ParseError as e:
        fails.append("%s: not XML: %s" % (s, e))
        continue
    if root.tag != ns + "svg":
        fails.append("%s: root is %s" % (s, root.tag))
    texts = [t.text or "" for t in root.iter(ns + "text")]
    if "latency" in s:
        for impl in (("moirai", "fifo_pool") if s.startswith("sched") else ("moirai", "moirai_fifo")):
            if impl not in texts:
                fails.append("%s: no line labelled %s" % (s, impl))
        if not any("share slower" in t for t in texts):
            fails.append("%s: no axis label" % s)
    else:
        if not any("operations" in t for t in texts):
            fails.append("%s: no title/axis" % s)

for f in fails:
    print("FAIL:", f)
if fails:
    sys.exit(1)
print("moirai-bench report OK: %d results, %d SVG" % (len(j["results"]), len(svgs)))
PYEOF
