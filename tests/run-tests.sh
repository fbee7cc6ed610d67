#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Runs each test binary given on the command line with a watchdog, then
# every public header compiled alone (the urcu test_build idea) and
# checked for leaked macros, and
# prints one summary line "N passed, N failed, N skipped".  A test that
# exits 77 (automake's convention) could not run here and says why on its
# last line (not root, no network namespaces).  A cmocka test that calls
# skip() inside a passing binary is reported the same way, one SKIP line
# naming binary:test with the last line it printed before skipping, and
# counted among the skipped (cmocka itself exits 0 for it, which read as a
# pass).  Exit status 1 on any failure.
set -u
TIMEOUT=${MOIRAI_TEST_TIMEOUT:-600}
# history_size=7 (TSan's largest): the suppressions of tests/tsan.supp
# match a frame of the *earlier* access (an RTS enqueue into a worker's
# mailbox), and with the default history a busy worker's earlier stack is
# overwritten before the report ("failed to restore the stack"), so the
# known DPDK false positive escaped its suppression (CI, a 2-worker
# pipeline run).  Memory per thread grows; test processes have few threads.
TSAN_OPTIONS="history_size=7:suppressions=$(pwd)/tests/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export TSAN_OPTIONS
pass=0
fail=0
skip=0
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
		# "[  SKIPPED ] test" follows the test's own output while it runs;
		# cmocka's summary lists the names again after "SKIPPED ] N test(s)".
		skipped=$(awk '/^\[  SKIPPED \] [0-9]+ test\(s\)/ { exit }
			/^\[  SKIPPED \] / { why = (prev ~ /^\[/) ? "(the test printed no reason)" : prev
				printf "%s\t%s\n", $4, why }
			{ prev = $0 }' "$log")
		if [ -n "$skipped" ]; then
			tab=$(printf '\t')
			while IFS=$tab read -r test why; do
				skip=$((skip + 1))
				printf '  SKIP  %-36s %s\n' "$name:$test" "$why"
			done <<EOF_SKIPPED
$skipped
EOF_SKIPPED
		fi
	else
		rc=$?
		if [ "$rc" -eq 77 ]; then
			skip=$((skip + 1))
			printf '  SKIP  %-36s %s\n' "$name" "$(tail -n 1 "$log")"
			continue
		fi
		fail=$((fail + 1))
		failed="$failed $name"
		printf '  FAIL  %-36s (exit %d)\n' "$name" "$rc"
		tail -n 40 "$log" | sed 's/^/        /'
	fi
done

# Every public header must compile on its own, warnings as errors, with no
# DPDK include path: by default the public headers include no DPDK header.
CC=${CC:-cc}
HDRLOG=${MOIRAI_BUILD:-build}/header.log
DPDK_INC="-I/usr/include/dpdk -I/usr/include/$(${CC} -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/dpdk"
header_check() { # label, source text, extra flags...
	label=$1 src=$2
	shift 2
	if printf '%b' "$src" | $CC -std=c11 -pedantic -Wall -Wextra -Werror -Iinclude "$@" \
		-fsyntax-only -x c - 2>"$HDRLOG"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed header:$label"
		printf '  FAIL  header %s\n' "$label"
		sed 's/^/        /' "$HDRLOG"
	fi
}
for h in include/moirai.h include/moirai/*.h; do
	case "$h" in *_inline.h) continue ;; esac
	header_check "$h alone" "#include \"${h#include/}\"\n"
done
# The opt-in inline ring fast paths, with DPDK's include path.
header_check "ring.h with MOIRAI_RING_INLINE" \
	'#define MOIRAI_RING_INLINE 1\n#include "moirai.h"\n' -msse4.2 $DPDK_INC
# moirai.h must not leak DPDK's (or anyone's) generic macros into programs.
leak='#include "moirai.h"\n'
for m in likely unlikely container_of typeof NS_PER_S LIST_HEAD TAILQ_HEAD \
	RTE_CACHE_LINE_SIZE RTE_RING_NAMESIZE RTE_USE_C11_MEM_MODEL min max; do
	leak="$leak#ifdef $m\n#error $m leaks from moirai.h\n#endif\n"
done
header_check "moirai.h leaks no macros" "$leak"

[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
