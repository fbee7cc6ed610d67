#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# What `make run` prints (tools/run-demo.sh, the Makefile's run target),
# with its own options and a short duration: the machine and the pinning
# plan as moirai-topo --plan all shows them, both pipeline runs with
# nothing lost, and at the end the side-by-side arrival -> TX latency table
# with the priority and FIFO columns for the critical flow (share sent,
# p50, p99, p99.9) and for the background.  Shapes and counts only: which
# scheduler wins is a measurement, not a test.
set -u
. "$(dirname "$0")/../common/cli.sh"

grep -q '^run:' Makefile && grep -A2 '^run:' Makefile | grep -q 'tools/run-demo.sh $(BUILD)' ||
	fail "the Makefile's run target does not run tools/run-demo.sh \$(BUILD)"

expect_status 0 "tools/run-demo.sh" env MOIRAI_RUN_DURATION=0.3 tools/run-demo.sh "$BUILD"
cp "$tmp/out" "$tmp/demo"
expect_status 0 "moirai-topo --plan all" "$BUILD/bin/moirai-topo" --plan all
cp "$tmp/out" "$tmp/topo"

$PY - "$tmp/demo" "$tmp/topo" <<'PYEOF' || fail "make run's output (above)"
import re, sys
demo = open(sys.argv[1]).read().splitlines()
topo = open(sys.argv[2]).read().splitlines()
bad = []

def need(cond, what):
    if not cond:
        bad.append(what)

need(demo and demo[0] == "== This machine (moirai-topo --plan all)", "starts with the machine header")
# The topology section: the machine summary and the whole plan, as
# moirai-topo prints them (free memory may differ between the two runs).
machine = [l for l in topo if l.startswith("Machine (")]
need(machine and machine[0] in demo, "the machine line %r" % machine[:1])
plan = topo[next((i for i, l in enumerate(topo) if l.startswith("Plan: ")), len(topo)):]
need(plan and all(l in demo for l in plan), "the plan section of moirai-topo --plan all")
need(any(l.startswith("  NUMA node os ") for l in demo), "a NUMA node line")
start = next((i for i, l in enumerate(demo) if l.startswith("== The pipeline:")), None)
need(start is not None, "the pipeline header")
start = start or 0
need("   (moirai-pipeline --compare --duration 0.3 --load 0.8 --fast-ns 2000)" in demo,
     "the pipeline's options, make run's with the short duration")
runs = [l for l in demo[start:] if l.startswith("== sched ")]
need(len(runs) == 2 and runs[0].startswith("== sched priority: gen -> count")
     and runs[1].startswith("== sched fifo: gen -> count"), "a priority and a fifo summary: %r" % runs)
need(sum("(lost 0)" in l for l in demo) == 2, "both runs say lost 0")
# The side-by-side table, last.
t = next((i for i, l in enumerate(demo) if l.startswith("== arrival -> TX latency, same seeded traffic")), None)
need(t is not None, "the side-by-side table header")
if t is not None:
    tab = demo[t + 1:]
    hdr = re.compile(r"^(critical|normal) +priority +fifo +fifo/priority$")
    num = r"[0-9.]+ (ns|us|ms|s)"
    row = re.compile(r"^ +(p50|p99|p99\.9) +%s +%s +[0-9.]+x$" % (num, num))
    sent = re.compile(r"^ +sent +[0-9.]+% +[0-9.]+% +\(of [0-9]+ critical packets\)$")
    need(len(tab) == 9, "the table is the last 9 lines, have %d" % len(tab))
    need(len(tab) > 0 and hdr.match(tab[0]) and tab[0].startswith("critical"), "critical header %r" % tab[:1])
    need(len(tab) > 1 and sent.match(tab[1]), "critical share sent %r" % tab[1:2])
    need([row.match(l).group(1) if row.match(l) else l for l in tab[2:5]] == ["p50", "p99", "p99.9"],
         "critical p50/p99/p99.9 rows with both schedulers: %r" % tab[2:5])
    need(len(tab) > 5 and hdr.match(tab[5]) and tab[5].startswith("normal"), "normal header %r" % tab[5:6])
    need([row.match(l).group(1) if row.match(l) else l for l in tab[6:9]] == ["p50", "p99", "p99.9"],
         "normal p50/p99/p99.9 rows with both schedulers: %r" % tab[6:9])
for b in bad:
    print("    missing or wrong:", b)
sys.exit(1 if bad else 0)
PYEOF
[ "$fails" -eq 0 ] || sed 's/^/    | /' "$tmp/demo"

cli_finish "make run output"
