# SPDX-License-Identifier: BSD-3-Clause
#
# Shared by the tools' contract tests (tests/*/test_*.sh): sourced, never
# run.  Each test keeps its own checks; what they all need to agree on —
# how a failed expectation is reported, that bad usage (exit 2) prints
# exactly one stderr line, where a run's output lands — lives here once.
#
# After `. tests/common/cli.sh`: $BUILD, $PY, $tmp (removed at exit; a test
# with its own cleanup sets cli_cleanup to a function name before sourcing),
# $fails, and the functions below.  A test ends with `cli_finish NAME`.
BUILD=${MOIRAI_BUILD:-build}
PY=/usr/bin/python3
fails=0
tmp=$(mktemp -d)
cli_exit() {
	[ -n "${cli_cleanup:-}" ] && "$cli_cleanup"
	rm -rf "$tmp"
}
trap cli_exit EXIT

# A private stats directory for runtimes' segments (MOIRAI_RT_STATS_DIR,
# exported; also $D), and $pids: the background processes the test
# starts.  Both are removed at exit (this sets cli_cleanup).
cli_stats_dir() { # name
	MOIRAI_RT_STATS_DIR=$(mktemp -d "/dev/shm/moirai-test-$1.XXXXXX")
	export MOIRAI_RT_STATS_DIR
	D=$MOIRAI_RT_STATS_DIR
	pids=""
	cli_cleanup=cli_stats_cleanup
}
cli_stats_cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$D"
}

fail() { # message...
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# Runs a command into $tmp/out and $tmp/err; its status must be the one
# expected, and a status of cli_one_line (default 2, bad usage) or above
# must come with exactly one stderr line.  Returns 1 on a wrong status, so
# `expect_status 0 ... && json_check ...` checks only what ran as meant.
expect_status() { # expected-status description command...
	want=$1 what=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$what: exit $got, want $want"
		sed 's/^/    /' "$tmp/out" "$tmp/err" | tail -30
		return 1
	fi
	if [ "$want" -ge "${cli_one_line:-2}" ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
		fail "$what: want exactly one stderr line"
		sed 's/^/    /' "$tmp/err"
	fi
	return 0
}

# A Python expression over d, the JSON document in $tmp/out (or FILE).
json_check() { # description python-expression-on-d [file]
	f=${3:-$tmp/out}
	if ! $PY -c "import json,sys; d=json.load(open('$f')); sys.exit(0 if ($2) else 1)"; then
		fail "$1"
		head -c 3000 "$f" | sed 's/^/    /'
	fi
}

cli_finish() { # name
	if [ "$fails" -ne 0 ]; then
		echo "$1: $fails failure(s)"
		exit 1
	fi
	echo "$1 OK"
	exit 0
}
