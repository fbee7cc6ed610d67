#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""mimalloc-bench's own programs under each allocator, side by side.

    tools/moirai-bench/mimalloc-bench.py [--quick] [--repeats N] [--bench A,B]
        [--alloc A,B] [--src DIR] [--build DIR] [--moirai SO] [--json FILE]

Builds the benchmark programs of daanx/mimalloc-bench from a read-only
copy of its sources (--src, default ../shared/mimalloc-bench: test data,
never copied into this project) into --build (default
build/mimalloc-bench) with cmake, then runs each program under LD_PRELOAD
of each allocator, as upstream's bench.sh does: moirai
(build/libmoirai-malloc.so), mimalloc (libmimalloc2.0), jemalloc,
tcmalloc (minimal) and glibc (no preload).  Every round runs every
(program, allocator) pair once, allocators in rotating order, --repeats
rounds (default 3).  For each pair it prints the median cost [min-max] and
the peak RSS (/usr/bin/time's %M, as bench.sh); the cost is the wall time for
programs that do a fixed amount of work, and the inverse of the rate for
those that run for a fixed time and print a rate (larson, rptest,
xmalloc-test, glibc-thread).  Ratios are peer / moirai of the medians
(above 1: moirai faster), with the range of the per-round (paired) ratios;
the last rows are the geometric means of the ratios over the programs, and
the RSS table gives moirai's peak RSS over mimalloc's per program.

--quick uses shorter parameters (a 31-digit cfrac number, a tenth of the
barnes bodies, 2 s for the timed programs, a tenth of the cache-scratch
repetitions) and leaves out the four programs whose work cannot be
shortened from the command line (espresso, rptest, glibc-simple,
alloc-test: 15-35 s each on a 2-vCPU VM); the default runs upstream's
bench.sh parameters, P = the number of usable CPUs.

Exit status: 0, 1 a program failed or the build failed, 2 bad usage.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = {
    "mimalloc": LIBDIR + "/libmimalloc.so.2",
    "jemalloc": LIBDIR + "/libjemalloc.so.2",
    "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4",
    "glibc": "",
}
ALLOCS = ["moirai", "mimalloc", "jemalloc", "tcmalloc", "glibc"]
TARGETS = ["cfrac", "espresso", "barnes", "larson-sized", "mstress", "rptest", "xmalloc-test",
           "cache-scratch", "glibc-simple", "glibc-thread", "alloc-test"]

RATE_RES = {
    "larson": re.compile(r"Throughput\s*=\s*([0-9.]+)"),
    "rptest": re.compile(r"([0-9]+(?:\.[0-9]+)?) memory ops/CPU second"),
    "xmalloc": re.compile(r"free/sec:\s*([0-9.]+)\s*M"),
    "glibc-thread": re.compile(r"^([0-9]+) iterations", re.M),
}


def programs(p, quick, src, build):
    """(name, argv, stdin file or None, rate regex key or None)."""
    b = lambda n: os.path.join(build, n)
    if quick:
        barnes_in = os.path.join(build, "barnes-quick.input")
        with open(os.path.join(src, "bench", "barnes", "input")) as f:
            lines = f.read().split("\n")
        # The second line is the number of bodies: a tenth of it.
        lines[1] = str(max(1024, int(lines[1]) // 10))
        with open(barnes_in, "w") as f:
            f.write("\n".join(lines))
        return [
            ("cfrac", [b("cfrac"), "1754518652050731705637113883637"], None, None),
            ("barnes", [b("barnes")], barnes_in, None),
            ("larson", [b("larson-sized"), "2", "8", "1000", "5000", "100", "4141", str(p)], None,
             "larson"),
            ("mstress", [b("mstress"), str(p), "50", "25"], None, None),
            ("xmalloc-test", [b("xmalloc-test"), "-w", str(p), "-t", "2", "-s", "64"], None,
             "xmalloc"),
            ("cache-scratch1", [b("cache-scratch"), "1", "1000", "1", "200000", str(p)], None, None),
            ("cache-scratchP", [b("cache-scratch"), str(p), "1000", "1", "200000", str(p)], None,
             None),
            ("glibc-thread", [b("glibc-thread"), str(p)], None, "glibc-thread"),
        ]
    return [
        ("cfrac", [b("cfrac"), "17545186520507317056371138836327483792789528"], None, None),
        ("espresso", [b("espresso"), os.path.join(src, "bench", "espresso", "largest.espresso")],
         None, None),
        ("barnes", [b("barnes")], os.path.join(src, "bench", "barnes", "input"), None),
        ("larson", [b("larson-sized"), "5", "8", "1000", "5000", "100", "4141", str(p)], None,
         "larson"),
        ("mstress", [b("mstress"), str(p), "50", "25"], None, None),
        ("rptest", [b("rptest"), str(p), "0", "1", "2", "500", "1000", "100", "8", "16000"], None,
         "rptest"),
        ("xmalloc-test", [b("xmalloc-test"), "-w", str(p), "-t", "5", "-s", "64"], None, "xmalloc"),
        ("cache-scratch1", [b("cache-scratch"), "1", "1000", "1", "2000000", str(p)], None, None),
        ("cache-scratchP", [b("cache-scratch"), str(p), "1000", "1", "2000000", str(p)], None,
         None),
        ("glibc-simple", [b("glibc-simple")], None, None),
        ("glibc-thread", [b("glibc-thread"), str(p)], None, "glibc-thread"),
        ("alloc-test1", [b("alloc-test"), "1"], None, None),
        ("alloc-testP", [b("alloc-test"), str(p)], None, None),
    ]


def die(msg):
    print(f"mimalloc-bench: {msg}", file=sys.stderr)
    sys.exit(2)


def build_programs(src, build):
    if all(os.access(os.path.join(build, t), os.X_OK) for t in TARGETS):
        return
    os.makedirs(build, exist_ok=True)
    log = os.path.join(build, "build.log")
    with open(log, "w") as f:
        ok = subprocess.call(["cmake", "-S", os.path.join(src, "bench"), "-B", build,
                              "-DCMAKE_BUILD_TYPE=Release"], stdout=f, stderr=f) == 0
        ok = ok and subprocess.call(["make", "-C", build, "-j2"] + TARGETS, stdout=f,
                                    stderr=f) == 0
    if not ok:
        print(f"mimalloc-bench: building the programs failed, see {log}", file=sys.stderr)
        sys.exit(1)


def run_one(argv, stdin, preload, rate_key, outdir, tag):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    out_path = os.path.join(outdir, tag + ".out")
    rss_path = os.path.join(outdir, tag + ".rss")
    # Through /usr/bin/time as bench.sh does: ru_maxrss survives exec, so a
    # child forked from this Python process would report Python's RSS.
    with open(out_path, "w") as out, open(stdin or os.devnull) as inp:
        t0 = time.monotonic()
        # The preload through env, after time: time itself runs on glibc.
        rc = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss_path, "/usr/bin/env",
                              "LD_PRELOAD=" + preload] + argv, stdin=inp,
                             stdout=out, stderr=subprocess.STDOUT, env=env, cwd=outdir)
        wall = time.monotonic() - t0
    text = open(out_path, errors="replace").read()
    try:
        maxrss = int(open(rss_path).read().split()[-1])
    except (OSError, ValueError, IndexError):
        maxrss = 0
    if rc != 0:
        return None, maxrss, f"exit {rc}: {text[-300:]}"
    if rate_key:
        m = RATE_RES[rate_key].search(text)
        if not m or float(m.group(1)) <= 0:
            return None, maxrss, f"no rate in the output: {text[-300:]}"
        rate = float(m.group(1)) * (1e6 if rate_key == "xmalloc" else 1.0)  # "5.8 M"
        return 1.0 / rate, maxrss, None
    return wall, maxrss, None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def fmt_cost(c, rate):
    """Seconds, or the rate itself for timed programs."""
    if rate:
        r = 1.0 / c
        return f"{r / 1e6:.2f}M/s" if r >= 1e6 else f"{r / 1e3:.1f}k/s"
    return f"{c:.2f}s"


def main(argv):
    ap = argparse.ArgumentParser(add_help=True, description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bench", default="")
    ap.add_argument("--alloc", default=",".join(ALLOCS))
    ap.add_argument("--src", default="")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "mimalloc-bench"))
    ap.add_argument("--moirai", default=os.path.join(ROOT, "build", "libmoirai-malloc.so"))
    ap.add_argument("--json", default="")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        sys.exit(0 if e.code == 0 else 2)
    if a.repeats < 1 or a.repeats > 100:
        die(f"--repeats {a.repeats}: expected 1..100")
    src = a.src
    if not src:
        for c in (os.path.join(ROOT, "..", "shared", "mimalloc-bench"),
                  os.path.join(ROOT, "..", "..", "shared", "mimalloc-bench")):
            if os.path.isdir(os.path.join(c, "bench")):
                src = c
                break
    if not src or not os.path.isfile(os.path.join(src, "bench", "CMakeLists.txt")):
        die(f"no mimalloc-bench sources at '{src or '../shared/mimalloc-bench'}' (--src DIR)")
    src = os.path.abspath(src)
    allocs = [x for x in a.alloc.split(",") if x]
    for x in allocs:
        if x not in ALLOCS:
            die(f"--alloc: unknown allocator '{x}' (known: {', '.join(ALLOCS)})")
    preload = dict(PEERS)
    preload["moirai"] = os.path.abspath(a.moirai)
    for x in allocs:
        if preload[x] and not os.path.isfile(preload[x]):
            die(f"{x}: {preload[x]} missing (make all; tools/install-deps test)")
    build = os.path.abspath(a.build)
    p = len(os.sched_getaffinity(0))
    build_programs(src, build)
    progs = programs(p, a.quick, src, build)
    if a.bench:
        want = a.bench.split(",")
        names = [n for n, *_ in progs]
        for w in want:
            if w not in names:
                die(f"--bench: unknown program '{w}' (here: {', '.join(names)})")
        progs = [x for x in progs if x[0] in want]
    outdir = os.path.join(build, "runs")
    os.makedirs(outdir, exist_ok=True)
    # cost[prog][alloc] = [per round], rss likewise (KiB)
    cost = {n: {x: [] for x in allocs} for n, *_ in progs}
    rss = {n: {x: [] for x in allocs} for n, *_ in progs}
    failed = []
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()[0]
    for r in range(a.repeats):
        for i, (name, cmd, stdin, rate) in enumerate(progs):
            k = (r + i) % len(allocs)
            for x in allocs[k:] + allocs[:k]:
                c, m, err = run_one(cmd, stdin, preload[x], rate, outdir, f"{name}-{x}")
                if err:
                    failed.append(f"{name} under {x}: {err}")
                    c = None
                cost[name][x].append(c)
                rss[name][x].append(m)
                print(f"  round {r + 1}/{a.repeats} {name:15s} {x:9s} "
                      f"{fmt_cost(c, rate) if c else 'FAILED':>10s} {m / 1024:7.1f} MiB",
                      file=sys.stderr, flush=True)
    load1 = os.getloadavg()[0]

    peers = [x for x in allocs if x != "moirai"]
    print(f"mimalloc-bench programs ({'--quick' if a.quick else 'bench.sh parameters'}, "
          f"P={p}, {a.repeats} interleaved rounds, {start}, load {load0:.1f} -> {load1:.1f})")
    print("median [min-max]; (ratio peer/moirai of the medians, range of the paired ratios); "
          "above 1: moirai faster")
    head = f"{'program':15s} {'moirai':>24s}" + "".join(f" {x:>28s}" for x in peers)
    print(head)
    ratios = {x: [] for x in peers}
    results = []
    for name, cmd, stdin, rate in progs:
        row = f"{name:15s}"
        mc = [c for c in cost[name].get("moirai", []) if c]
        for x in allocs:
            cs = [c for c in cost[name][x] if c]
            if not cs:
                row += f" {'FAILED':>28s}"
                continue
            med = statistics.median(cs)
            cell = f"{fmt_cost(med, rate)} [{fmt_cost(min(cs), rate)}-{fmt_cost(max(cs), rate)}]"
            if rate:  # a rate: [min-max] of the rate
                cell = (f"{fmt_cost(med, rate)} [{fmt_cost(max(cs), rate)}-"
                        f"{fmt_cost(min(cs), rate)}]")
            results.append({"program": name, "impl": x, "cost_median": med,
                            "costs": cost[name][x], "rate": bool(rate),
                            "peak_rss_kb": rss[name][x]})
            if x == "moirai" or not mc:
                row += f" {cell:>24s}" if x == "moirai" else f" {cell:>28s}"
                continue
            ratio = med / statistics.median(mc)
            paired = [pc / m for pc, m in zip(cost[name][x], cost[name]["moirai"]) if pc and m]
            ratios[x].append(ratio)
            rng = f"{min(paired):.2f}-{max(paired):.2f}" if paired else "-"
            row += f" {cell + f' ({ratio:.2f}x {rng})':>28s}"
        print(row)
    if "moirai" in allocs:
        print(f"{'geomean':15s} {'':>24s}" +
              "".join(f" {geomean(ratios[x]):>27.2f}x" for x in peers))
    print()
    print("peak RSS, MiB (median); last column moirai / mimalloc")
    print(f"{'program':15s}" + "".join(f" {x:>9s}" for x in allocs) + "  moirai/mimalloc")
    worst = 0.0
    for name, *_ in progs:
        row = f"{name:15s}"
        for x in allocs:
            ms = rss[name][x]
            row += f" {statistics.median(ms) / 1024:9.1f}" if ms else f" {'-':>9s}"
        if "moirai" in allocs and "mimalloc" in allocs:
            q = statistics.median(rss[name]["moirai"]) / statistics.median(rss[name]["mimalloc"])
            worst = max(worst, q)
            row += f"  {q:.2f}x"
        print(row)
    if failed:
        print()
        for f in failed:
            print(f"FAILED: {f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"suite": "mimalloc-bench", "quick": a.quick, "cpus": p,
                       "repeats": a.repeats, "start": start, "load": [load0, load1],
                       "results": results,
                       "geomean_ratio": {x: geomean(ratios[x]) for x in peers}}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
