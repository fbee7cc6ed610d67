#!/bin/sh
# Runs each test binary given on the command line with a watchdog, then
# every public header compiled alone (the urcu test_build idea), and
# prints one summary line "N passed, N failed".  Exit status 1 on any failure.
set -u
TIMEOUT=${MOIRAI_TEST_TIMEOUT:-600}
TSAN_OPTIONS="suppressions=$(pwd)/tests/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export TSAN_OPTIONS
pass=0
fail=0
failed=""
LOGDIR=${MOIRAI_BUILD:-build}/logs
for t in "$@"; do
	name=${t#*tests/}
	log=$LOGDIR/$name.log
	mkdir -p "$(dirname "$log")"
	start=$(date +%s)
	if timeout --kill-after=10 "$TIMEOUT" "$t" >"$log" 2>&1; then
		pass=$((pass + 1))
		printf '  PASS  %-36s %4ss\n' "$name" "$(( $(date +%s) - start ))"
	else
		rc=$?
		fail=$((fail + 1))
		failed="$failed $name"
		printf '  FAIL  %-36s (exit %d)\n' "$name" "$rc"
		tail -n 40 "$log" | sed 's/^/        /'
	fi
done

# Every public header must compile on its own, warnings as errors.
CC=${CC:-cc}
for h in include/moirai.h include/moirai/*.h; do
	case "$h" in *_inline.h) continue ;; esac
	if printf '#include "%s"\n' "${h#include/}" |
		$CC -std=c11 -pedantic -Wall -Wextra -Werror -Iinclude \
			-I/usr/include/dpdk -I/usr/include/x86_64-linux-gnu/dpdk \
			-msse4.2 -fsyntax-only -x c - 2>"${MOIRAI_BUILD:-build}/header.log"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed header:$h"
		printf '  FAIL  header %s compiles alone\n' "$h"
		sed 's/^/        /' "${MOIRAI_BUILD:-build}/header.log"
	fi
done

[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
