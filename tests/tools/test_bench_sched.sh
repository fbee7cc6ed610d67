#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-bench sched (docs/bench.md): every case runs for every
# implementation it lists, the counts are exact (tasks run, fib(30),
# the array sum: a wrong one fails the case, so failed must be empty) and
# the figures are sane.  One --quick repeat of the whole suite; no timing
# is asserted.  Under TSan the oneTBB and OpenMP peers are left out: their
# runtimes are not instrumented, so TSan cannot see how they synchronise.
set -u
BUILD=${MOIRAI_BUILD:-build}
BENCH=$BUILD/bin/moirai-bench
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

impls=moirai,moirai_handle,moirai_nopf,pthread_pool,fifo_pool,tbb,openmp,serial
if [ "${SAN:-}" = thread ]; then
	impls=moirai,moirai_handle,moirai_nopf,pthread_pool,fifo_pool,serial
	echo "SAN=thread: tbb and openmp left out (uninstrumented runtimes)"
fi

if ! timeout 300 "$BENCH" sched --quick --repeats 1 --impl "$impls" --json >"$tmp/out" 2>"$tmp/err"; then
	echo "FAIL: moirai-bench sched exited non-zero"
	cat "$tmp/err"
	head -c 4000 "$tmp/out"
	exit 1
fi

IMPLS=$impls $PY - "$tmp/out" <<'PYEOF'
import json, os, sys

d = json.load(open(sys.argv[1]))
want_impls = set(os.environ["IMPLS"].split(","))
m = d["machine"]
cpus = m["cpus"]
fails = []

def fail(msg):
    fails.append(msg)

# The cases and who runs them (docs/bench.md, "sched").
cases = {
    "spawn_local": {"moirai", "moirai_handle", "moirai_nopf", "pthread_pool", "fifo_pool", "tbb", "openmp", "serial"},
    "spawn_inject": {"moirai", "moirai_handle", "moirai_nopf", "pthread_pool", "fifo_pool", "tbb", "openmp"},
    "fib30": {"moirai", "moirai_nopf", "pthread_pool", "fifo_pool", "tbb", "openmp", "serial"},
    "pfor_sum": {"moirai", "pthread_pool", "fifo_pool", "tbb", "openmp", "serial"},
    "flood_quiet": {"moirai", "fifo_pool", "pthread_pool"},
    "flood_critical": {"moirai", "fifo_pool", "pthread_pool"},
    "spawn_idle_cpu": {"moirai", "pthread_pool", "fifo_pool", "tbb", "openmp"},
    "spawn_wake_spin": {"moirai", "pthread_pool", "fifo_pool", "tbb"},
    "spawn_wake_parked": {"moirai", "pthread_pool", "fifo_pool", "tbb"},
}
# Skips that are allowed, and why they happen.
allowed_skip = {("spawn_inject", "openmp"): "OpenMP has no submission"}
if cpus < 2:
    for c in ("spawn_wake_spin", "spawn_wake_parked"):
        for i in cases[c]:
            allowed_skip[(c, i)] = "needs 2 usable CPUs"

if d["suite"] != "sched" or not m["quick"] or m["repeats"] != 1:
    fail("suite/quick/repeats in the machine block")
if d["failed"]:
    fail("failed: %s" % d["failed"])
res = {(r["case"], r["impl"]): r for r in d["results"]}
skip = {(s["case"], s["impl"]): s["reason"] for s in d["skipped"]}
for (c, i), why in skip.items():
    if (c, i) not in allowed_skip or allowed_skip[(c, i)] not in why:
        fail("unexpected skip %s/%s: %s" % (c, i, why))
for c, impls in cases.items():
    for i in impls & want_impls:
        if (c, i) not in res and (c, i) not in skip:
            fail("missing %s/%s" % (c, i))
for (c, i) in res:
    if c not in cases or i not in cases[c]:
        fail("unexpected result %s/%s" % (c, i))

spawn_tasks = 20 * 256 * 8
for (c, i), r in res.items():
    if r["repeats"] != 1 or len(r["ns_per_op_samples"]) != 1:
        fail("%s/%s: repeats" % (c, i))
    if c == "spawn_idle_cpu":
        # CPU per worker and second of idle time: 0 .. one core (1e9 ns),
        # with room for the clock granularity.
        if r["ops"] != cpus or not (0 <= r["ns_per_op"] <= 1.5e9):
            fail("%s/%s: ops %s, ns %s" % (c, i, r["ops"], r["ns_per_op"]))
        continue
    if not r["ns_per_op"] > 0:
        fail("%s/%s: ns_per_op %s" % (c, i, r["ns_per_op"]))
    if c.startswith("spawn_local") or c == "spawn_inject":
        if r["ops"] != spawn_tasks:
            fail("%s/%s: %s tasks, want %d" % (c, i, r["ops"], spawn_tasks))
    elif c == "fib30":
        if r["ops"] != 3 or "fib(30) = 832040" not in r.get("note", ""):
            fail("%s/%s: ops %s note %r" % (c, i, r["ops"], r.get("note")))
    elif c == "pfor_sum":
        if r["ops"] != 3 * (1 << 23):
            fail("%s/%s: ops %s" % (c, i, r["ops"]))
    elif c.startswith("flood") or c.startswith("spawn_wake"):
        n = 100 if c == "spawn_wake_parked" else 2000
        if r["ops"] != n:
            fail("%s/%s: %s samples, want %d" % (c, i, r["ops"], n))
        if not (0 <= r["p50_ns"] <= r["p99_ns"] <= r["p999_ns"]):
            fail("%s/%s: percentiles %s %s %s" % (c, i, r["p50_ns"], r["p99_ns"], r["p999_ns"]))
    if i != "moirai" and (c, "moirai") in res and "paired_ratio" not in r:
        fail("%s/%s: no paired ratio" % (c, i))

for f in fails:
    print("FAIL:", f)
if fails:
    sys.exit(1)
print("moirai-bench sched OK: %d results, %d skipped" % (len(res), len(skip)))
PYEOF
