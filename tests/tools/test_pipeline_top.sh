#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-top on moirai-pipeline: the pipeline publishes its runtime's stats
# by default, and `moirai-top PID --once --json` shows the pipeline's own
# workers (the count and CPUs of its JSON summary, its pid and name) and
# counters that are its packets' (process tasks at the critical and normal
# levels, no more than the packets of each class); a live view of
# --compare follows the process from the warm-up run's runtime to the next
# ones and ends, exit 0, when the process does; --no-stats publishes
# nothing; a default that cannot publish warns once and runs, --stats
# fails.  Counts only, never a time.  Segments live in a private stats
# directory (MOIRAI_RT_STATS_DIR), removed at the end.
set -u
. "$(dirname "$0")/../common/cli.sh"
PL=$BUILD/bin/moirai-pipeline
TOP=$BUILD/bin/moirai-top
cli_stats_dir pltop

# Start the pipeline in the background; $pl is its pid once its segment
# exists (after the calibration), or the test fails.
start_pl() { # output-file options...
	_o=$1
	shift
	"$PL" "$@" >"$_o" 2>"$_o.err" &
	pl=$!
	pids="$pids $pl"
	_i=0
	while [ ! -e "$D/moirai-stats.$pl" ] && [ "$_i" -lt 400 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	[ -e "$D/moirai-stats.$pl" ] || fail "pipeline $pl published no segment in 20 s: $(cat "$_o.err")"
}

# ---- one run: moirai-top --once --json shows the pipeline's workers ------
start_pl "$tmp/pl.json" --workers 2 --duration 3 --rate 20000 --critical-share 0.05 \
	--seed 3 --quiet --json
# The segment appears at the runtime's create, before the packet pools are
# filled: take snapshots until packets of both classes have been processed.
i=0
while :; do
	expect_status 0 "moirai-top --once --json on the pipeline" timeout 30 "$TOP" --once --json -d 0.2 "$pl" || break
	cp "$tmp/out" "$tmp/top.json"
	$PY -c "import json,sys; d=json.load(open('$tmp/top.json')); r=lambda l: sum(w['tasks_run'][l] for w in d['workers']); sys.exit(0 if r('normal') > 0 and r('critical') > 4 else 1)" && break
	i=$((i + 1))
	[ "$i" -lt 40 ] && kill -0 "$pl" 2>/dev/null || { fail "no processed packets seen in $i snapshots"; break; }
done
wait "$pl"
rc=$?
[ "$rc" -eq 0 ] || fail "pipeline exit $rc: $(cat "$tmp/pl.json.err")"
$PY - "$tmp/top.json" "$tmp/pl.json" "$pl" <<'PYEOF' || fail "moirai-top's view is not the pipeline's (above)"
import json, sys
t = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
pid = int(sys.argv[3])
bad = []
def need(c, what):
    if not c:
        bad.append(what)
need(t["pid"] == pid and t["name"] == str(pid), "pid %s name %s, want %d" % (t["pid"], t["name"], pid))
need(t["comm"] == "moirai-pipeline"[:15], "comm %r" % t["comm"])
need(p["stats"] == str(pid), "the pipeline's JSON names segment %r" % p["stats"])
need(t["workers_count"] == len(t["workers"]) == len(p["workers"]) == 2,
     "workers: top %d, pipeline %d, want 2" % (t["workers_count"], len(p["workers"])))
need([w["pu"] for w in t["workers"]] == [w["pu"] for w in p["workers"]],
     "worker CPUs: top %s, pipeline %s" % ([w["pu"] for w in t["workers"]], [w["pu"] for w in p["workers"]]))
run = {l: sum(w["tasks_run"][l] for w in t["workers"]) for l in ("critical", "high", "normal", "background")}
crit, norm = p["critical_in"], p["packets_in"] - p["critical_in"]
# One process task per packet (--batch 1) at its class's level, and the
# runtime's own: registering and unregistering each of the two pollers
# (RX, TX) is a critical task (rt/rt_poller.c).  What moirai-top saw
# mid-run is some of those, and nothing else.
need(4 < run["critical"] <= crit + 4, "critical tasks %d, want 5..%d (critical packets + 4)" % (run["critical"], crit + 4))
need(0 < run["normal"] <= norm, "normal tasks %d, want 1..%d (normal packets)" % (run["normal"], norm))
need(run["high"] == 0 and run["background"] == 0, "tasks at high/background: %s" % run)
# Packets dropped before classify (no buffer, oversize, class ring full)
# never get a task.
tasked = p["packets_in"] - sum(p["drops"][k] for k in ("no_buffer", "oversize", "queue_full"))
ntasks = sum(w["tasks"] for w in p["workers"])
need(ntasks == tasked + 4, "pipeline: %d tasks, want one per packet queued (%d) and 4 for the pollers" % (ntasks, tasked))
for b in bad:
    print("    " + b)
sys.exit(1 if bad else 0)
PYEOF
[ -e "$D/moirai-stats.$pl" ] && fail "the pipeline left its segment behind"

# ---- --compare: the live view follows each run's runtime -----------------
start_pl "$tmp/cmp.json" --compare --workers 2 --duration 1.5 --rate 20000 --seed 3 --quiet --json
expect_status 0 "live view of --compare until the process exits" timeout 60 "$TOP" -d 0.2 "$pl"
wait "$pl"
rc=$?
[ "$rc" -eq 0 ] || fail "pipeline --compare exit $rc: $(cat "$tmp/cmp.json.err")"
n=$(grep -c "moirai-top: process $pl replaced its runtime; following the new one (segment $pl, 2 workers)" "$tmp/err")
# The warm-up, priority and fifo runs each have a runtime: the view
# attached during one of the first two follows at least one replacement.
[ "$n" -ge 1 ] || fail "the live view did not follow the next run's runtime: $(cat "$tmp/err")"
[ "$(tail -n 1 "$tmp/err")" = "moirai-top: the process has exited" ] ||
	fail "the live view did not end with the process: $(tail -n 3 "$tmp/err")"
frames=$(grep -c "^moirai-top .*pid $pl (moirai-pipelin.*segment $pl  2 workers" "$tmp/out")
[ "$frames" -gt "$n" ] || fail "$frames frames for $n runtimes followed"
echo "note: followed $n runtime replacement(s), $frames frames"

# ---- --no-stats, and a default that cannot publish -----------------------
expect_status 0 "--no-stats" "$PL" --no-stats --duration 0.1 --rate 10000 --quiet --json
json_check "--no-stats: no segment" "d['stats'] is None"
expect_status 0 "stats directory missing: the default warns" env MOIRAI_RT_STATS_DIR="$tmp/none" \
	"$PL" --duration 0.1 --rate 10000 --quiet --json --compare
json_check "no segment, the runs went on" "d['stats'] is None and d['fifo']['stats'] is None and d['lost'] == 0"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "not publishing stats for moirai-top: .*$tmp/none" "$tmp/err" ||
	fail "want one warning naming the directory: $(cat "$tmp/err")"
expect_status 1 "stats directory missing with --stats: an error" env MOIRAI_RT_STATS_DIR="$tmp/none" \
	"$PL" --stats --duration 0.1 --rate 10000 --quiet
grep -q "$tmp/none" "$tmp/err" || fail "--stats error does not name the directory: $(cat "$tmp/err")"
expect_status 2 "--stats with --no-stats" "$PL" --stats --no-stats

cli_finish "moirai-top on moirai-pipeline"
