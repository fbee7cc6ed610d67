#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# moirai-shm-demo end to end: the forked run agrees on checksums, serve and
# send talk as two separate processes, bad usage exits 2, and no segment
# file is left behind.
set -eu
BUILD=${MOIRAI_BUILD:-build}
demo=$BUILD/bin/moirai-shm-demo
name=demo-test-$$
out=$(mktemp)
trap 'rm -f "$out" /dev/shm/moirai.$name' EXIT

"$demo" run 20000 >"$out"
grep -q '^checksums match' "$out" || { cat "$out"; echo "run: checksums differ"; exit 1; }

"$demo" run 20000 64 --burst 16 | grep -q '^checksums match' || { echo "run --burst: checksums differ"; exit 1; }

"$demo" run 2000 100 --json | grep -q '"match": true' || { echo "run --json: no match"; exit 1; }

"$demo" pingpong 2000 | grep -q 'round trips of 64 bytes: p50' || { echo "pingpong failed"; exit 1; }
# Its percentiles come from the library's histogram (moirai/hist.h): every
# record counted, ordered figures, the summary fields every tool prints.
"$demo" pingpong 2000 --json >"$out" || { echo "pingpong --json failed"; exit 1; }
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
f = [d[k] for k in ("min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns")]
ok = d["round_trips"] == 2000 and d["count"] == 2000 and f == sorted(f) and f[0] > 0
ok = ok and f[0] <= d["mean_ns"] <= f[-1]
sys.exit(0 if ok else 1)' "$out" || { cat "$out"; echo "pingpong --json: not the histogram summary"; exit 1; }

# Two processes started separately: the sender waits for the segment.
"$demo" serve "$name" >"$out" &
srv=$!
"$demo" send "$name" 5000 200 | grep -q '^client  5000 messages' || { echo "send failed"; exit 1; }
wait "$srv" || { echo "serve failed"; exit 1; }
grep -q '^server  5000 messages, 1000000 bytes' "$out" || { cat "$out"; echo "serve: wrong count"; exit 1; }
[ ! -e "/dev/shm/moirai.$name" ] || { echo "segment left behind"; exit 1; }

for args in "" "bogus" "serve" "serve a/b" "send x" "send x 0" "send x 5 9999" "run -3" "pingpong 0" "--nope" "run --burst 0" "run --burst 257"; do
	rc=0
	# shellcheck disable=SC2086
	"$demo" $args >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || { echo "'$args' exited $rc, expected 2"; exit 1; }
done
echo "moirai-shm-demo OK"
