#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-stress in make check: every scenario for a second (clean: exit 0,
# the report and valid JSON with the documented fields), fault injection
# reported and reconciled with nothing lost or leaked, a deliberately
# broken invariant (--self-test-violation drops one item) detected with
# exit 1 by every scenario's checker, and bad usage exit 2 with one line.
# `make stress` runs the same scenarios longer, clean and with faults.
set -u
. "$(dirname "$0")/../common/cli.sh"
STRESS=$BUILD/bin/moirai-stress
SECS=${MOIRAI_STRESS_CHECK_SECS:-1}

run() { # expected-status description args...
	_rw=$1 _rd=$2
	shift 2
	expect_status "$_rw" "$_rd" "$STRESS" "$@"
}

scenarios=$("$STRESS" --help | sed -n 's/^    \([a-z]*\)  .*/\1/p' | grep -v '^all$')
[ -n "$scenarios" ] || fail "--help lists no scenario"
for s in $scenarios; do
	if run 0 "$s" "$s" -d "$SECS" -s 1 --json; then
		json_check "$s: JSON fields" "d['ok'] and d['violations'] == 0 and d['seed'] == 1 and
			len(d['scenarios']) == 1 and d['scenarios'][0]['name'] == '$s' and
			d['scenarios'][0]['ops'] > 0 and d['scenarios'][0]['rounds'] > 0 and
			d['scenarios'][0]['mem_delta_bytes'] == 0 and d['scenarios'][0]['threads_left'] == 0 and
			set(d['scenarios'][0]['faults_injected']) == {'arena_commit', 'pool_get', 'ring_enqueue'}"
	fi
done
n=$(echo "$scenarios" | wc -w)
run 0 "all (text)" all -d 0.1 -s 3 &&
	{ [ "$(grep -c ' B ' "$tmp/out")" -eq "$n" ] || fail "all: want $n scenario lines"; } &&
	{ grep -q '^OK: 0 violations' "$tmp/out" || fail "all: no OK line"; }

# Fault injection: reported per site, every injected pool_get and
# ring_enqueue fault seen by the pool storm's callers, nothing lost.
if run 0 "pool with faults" pool -d "$SECS" -s 2 --fault pool_get=5,ring_enqueue=3 --json; then
	json_check "pool: faults injected and seen" "d['fault'] == 'pool_get=5,ring_enqueue=3' and
		d['scenarios'][0]['faults_injected']['pool_get'] > 0 and
		d['scenarios'][0]['faults_injected']['ring_enqueue'] > 0 and
		d['scenarios'][0]['failures_seen']['pool_get'] >= d['scenarios'][0]['faults_injected']['pool_get'] and
		d['scenarios'][0]['violations'] == 0"
fi
if run 0 "alloc with commit faults" alloc -d "$SECS" -s 4 --fault arena_commit=3 --json; then
	json_check "alloc: commit faults injected" "d['scenarios'][0]['faults_injected']['arena_commit'] > 0 and
		d['scenarios'][0]['mem_delta_bytes'] == 0"
fi
# The environment variable arms them too.
MOIRAI_FAULT=ring_enqueue=2 "$STRESS" ring -d 0.2 -s 5 --json >"$tmp/out" 2>"$tmp/err" ||
	fail "MOIRAI_FAULT=ring_enqueue=2: exit $?"
json_check "MOIRAI_FAULT: injected" "d['fault'] == 'ring_enqueue=2' and
	d['scenarios'][0]['faults_injected']['ring_enqueue'] > 0"

# The checkers can fail: one item dropped on purpose is a violation.
for s in $scenarios; do
	if run 1 "$s --self-test-violation" "$s" -d 0.3 -s 6 --self-test-violation; then
		grep -q 'violation: ' "$tmp/out" || fail "$s --self-test-violation: no violation line"
		grep -q '^FAIL: ' "$tmp/out" || fail "$s --self-test-violation: no FAIL line"
	fi
done

# Bad usage.
run 2 "no scenario"
run 2 "unknown scenario" nosuch && grep -q "unknown scenario 'nosuch'" "$tmp/err" ||
	fail "unknown scenario: message"
run 2 "bad fault spec" ring --fault ring_enqueue=0 &&
	{ grep -q "ring_enqueue: N must be" "$tmp/err" || fail "bad fault: message $(cat "$tmp/err")"; }
run 2 "unknown fault site" ring --fault disk=3
run 2 "duration 0" ring -d 0
run 2 "duration junk" ring -d 1s
run 2 "threads 1" ring -t 1
run 2 "seed junk" ring -s x
run 2 "two scenarios" ring pool

if [ "$fails" -ne 0 ]; then
	echo "moirai-stress: $fails failure(s)"
	exit 1
fi
echo "moirai-stress OK ($n scenarios, faults, self-test violations, usage)"
