#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-top's contract: exit 0/1/2 with one stderr line on failure; the
# list of publishers with live and stale segments; --once and --once --json
# (valid JSON with the documented fields) against a live publisher; a live
# view that ends after -n frames or when the process exits; a SIGKILLed
# publisher listed as stale, refused as a target, removed by --clean and by
# the next runtime; hostile files refused fast.  The publisher is
# build/tests/rt/test_rt_pub --publish; everything lives in a private
# stats directory (MOIRAI_RT_STATS_DIR), removed at the end.
set -u
. "$(dirname "$0")/../common/cli.sh"
TOP=$BUILD/bin/moirai-top
PUB=$BUILD/tests/rt/test_rt_pub
cli_stats_dir top
cli_one_line=1 # every failure, not only bad usage, is one stderr line

expect_err() { # description text
	grep -qF -- "$2" "$tmp/err" || fail "$1: stderr lacks '$2': $(cat "$tmp/err")"
}

expect_out() { # description extended-regex
	grep -qE -- "$2" "$tmp/out" || {
		fail "$1: stdout lacks /$2/"
		sed 's/^/    /' "$tmp/out" | head -20
	}
}

# Start a publisher; sets $pub to its pid once its segment exists.
start_pub() { # seconds (0: until killed)
	rm -f "$tmp/name"
	: >"$tmp/name"
	"$PUB" --publish "$1" >>"$tmp/name" 2>"$tmp/pub.err" &
	pub=$!
	pids="$pids $pub"
	i=0
	while [ ! -s "$tmp/name" ] && [ "$i" -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ "$(cat "$tmp/name")" = "$pub" ] || fail "publisher $pub named its segment '$(cat "$tmp/name")'"
}

# ---- bad usage: exit 2, one line -------------------------------------------
expect_status 2 "PID 0" "$TOP" 0
expect_err "PID 0" "bad PID '0'"
expect_status 2 "PID above the kernel's limit" "$TOP" 99999999999
expect_status 2 "negative PID (read as an option)" "$TOP" -1
expect_status 2 "bad name" "$TOP" 'a/b'
expect_status 2 "name with a leading dot" "$TOP" .hidden
expect_status 2 "-d 0" "$TOP" -d 0 1
expect_status 2 "-d abc" "$TOP" -d abc 1
expect_status 2 "-n 0" "$TOP" -n 0 1
expect_status 2 "--json without --once" "$TOP" --json 1
expect_status 2 "--clean with --once" "$TOP" --clean --once
expect_status 2 "--once without a target" "$TOP" --once
expect_status 2 "two targets" "$TOP" 1 2
expect_status 2 "unknown option" "$TOP" --frobnicate

# ---- no such target: exit 2, one line -----------------------------------
expect_status 2 "no such segment" "$TOP" --once no-such-segment
expect_err "no such segment" "no stats segment no-such-segment"
expect_status 2 "a process that does not publish" "$TOP" --once 1
expect_err "a process that does not publish" "process 1 does not publish stats"
dead=$(sh -c 'echo $$')
expect_status 2 "a dead pid" "$TOP" --once "$dead"
expect_err "a dead pid" "no process $dead"
expect_status 2 "--clean of nothing" "$TOP" --clean no-such-segment

# ---- the list, empty ---------------------------------------------------
expect_status 0 "empty list" "$TOP"
expect_out "empty list" "no moirai process publishes"
expect_status 0 "empty list, JSON" "$TOP" --json
json_check "empty list, JSON" "d == {'segments': []}"

# ---- a live publisher --------------------------------------------------
start_pub 0
expect_status 0 "list" "$TOP"
expect_out "list" "^$pub +$pub +live "
expect_status 0 "list, JSON" "$TOP" --json
json_check "list, JSON" "any(s['pid'] == $pub and s['state'] == 'live' and s['workers'] >= 1 and s['comm'] == 'test_rt_pub' for s in d['segments'])"
expect_status 0 "--once" "$TOP" --once -d 0.2 "$pub"
expect_out "--once header" "^moirai-top .* pid $pub \\(test_rt_pub\\)"
expect_out "--once worker row" "^ +0 +[0-9]+ +[0-9]+ (start|run|spin|park|exit) "
for l in critical high normal background; do
	expect_out "--once footer" "^$l "
done
expect_status 0 "--once --json" "$TOP" --once --json -d 0.3 "$pub"
$PY -m json.tool "$tmp/out" >/dev/null || fail "--once --json is not valid JSON"
json_check "--once --json fields" "d['pid'] == $pub and d['name'] == '$pub' and d['workers_count'] == len(d['workers']) >= 1 and d['interval_s'] > 0 and set(d['latency_ns']) == {'critical', 'high', 'normal', 'background'} and all(set(v) == {'wait', 'run'} for v in d['latency_ns'].values()) and all(0 <= w['load'] <= 100 for w in d['workers']) and d['seq'] % 2 == 0 and d['publish_period_ms'] == 20"
json_check "--once --json counts" "sum(w['tasks_run'][l] for w in d['workers'] for l in w['tasks_run']) > 0 and d['spawned'] > 0 and all(d['latency_total_ns'][l]['wait']['count'] > 0 for l in d['latency_total_ns'])"
expect_status 0 "live view, 3 frames" timeout 20 "$TOP" -d 0.1 -n 3 "$pub"
[ "$(grep -c '^moirai-top ' "$tmp/out")" -eq 3 ] || fail "live view: want 3 frames, got $(grep -c '^moirai-top ' "$tmp/out")"
expect_status 1 "--clean of a live segment" "$TOP" --clean "$pub"
expect_err "--clean of a live segment" "is alive"
[ -e "$D/moirai-stats.$pub" ] || fail "--clean removed a live segment"

# ---- killed: stale -------------------------------------------------------
kill -9 "$pub"
wait "$pub" 2>/dev/null
expect_status 0 "list with a stale segment" "$TOP"
expect_out "list with a stale segment" "^$pub +$pub +stale .*process $pub is gone"
expect_status 1 "a stale target" "$TOP" --once "$pub"
expect_err "a stale target" "is stale"
expect_status 0 "--clean" "$TOP" --clean
expect_out "--clean" "^removed $pub "
expect_out "--clean" "^1 stale segment removed"
[ -e "$D/moirai-stats.$pub" ] && fail "--clean left $D/moirai-stats.$pub"

# The next runtime removes a dead process's segment.
start_pub 0
old=$pub
kill -9 "$old"
wait "$old" 2>/dev/null
[ -e "$D/moirai-stats.$old" ] || fail "a killed publisher left no segment"
start_pub 0
[ -e "$D/moirai-stats.$old" ] && fail "a new runtime did not remove the stale $old"
kill -TERM "$pub"
wait "$pub" 2>/dev/null
[ -e "$D/moirai-stats.$pub" ] && fail "a publisher that exited cleanly left its segment"

# A segment named like a PID but written by another process is not that
# PID's (MOIRAI_RT_STATS=NUMBER): refused, by name it is fine.
dead=$(sh -c 'echo $$')
MOIRAI_RT_STATS=$dead "$PUB" --publish 0 >"$tmp/fake" 2>/dev/null &
fake=$!
pids="$pids $fake"
i=0
while [ ! -s "$tmp/fake" ] && [ "$i" -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
[ "$(cat "$tmp/fake")" = "$dead" ] || fail "MOIRAI_RT_STATS=$dead named the segment '$(cat "$tmp/fake")'"
expect_status 1 "a PID's segment written by another process" "$TOP" --once -d 0.1 "$dead"
expect_err "a PID's segment written by another process" "written by process $fake, not $dead"
kill -TERM "$fake"
wait "$fake" 2>/dev/null

# The live view ends when the process does, with exit 0 and a note.
start_pub 1
expect_status 0 "watched process exits" timeout 20 "$TOP" -d 0.2 "$pub"
grep -qE "segment is gone|process has exited" "$tmp/err" || fail "no note when the process ended: $(cat "$tmp/err")"
wait "$pub" 2>/dev/null

# ---- hostile files: refused fast, one line, exit 1 -------------------------
head -c 128000 /dev/urandom >"$D/moirai-stats.junk"
expect_status 1 "random bytes" timeout 10 "$TOP" --once junk
expect_err "random bytes" "bad magic"
: >"$D/moirai-stats.empty"
expect_status 1 "empty file" timeout 10 "$TOP" --once empty
expect_err "empty file" "truncated"
mkfifo "$D/moirai-stats.fifo"
expect_status 1 "a FIFO" timeout 10 "$TOP" --once fifo
expect_err "a FIFO" "not a regular file"
ln -s /etc/passwd "$D/moirai-stats.link"
expect_status 1 "a symlink" timeout 10 "$TOP" --once link
expect_err "a symlink" "symbolic link"
expect_status 0 "list with invalid files" timeout 10 "$TOP"
expect_out "list with invalid files" "^junk .* invalid "
expect_status 0 "--clean leaves invalid files" "$TOP" --clean
[ -e "$D/moirai-stats.junk" ] || fail "--clean removed a file that is not a stale segment"

cli_finish "moirai-top CLI"
