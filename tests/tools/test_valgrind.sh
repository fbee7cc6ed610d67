#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Memcheck over the tools, where a sanitizer build is not what users run:
# no invalid access and no definite leak in the release binaries, on the
# live machine, a foreign XML, bad input and the two-process shm demo;
# then over the runtime (tests/rt/test_rt, a few of its tests).
set -u
BUILD=${MOIRAI_BUILD:-build}
if [ -n "${SAN:-}" ]; then
	echo "skipped: valgrind does not run sanitizer builds"
	exit 0
fi
if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind missing: run tools/install-deps"
	exit 1
fi
VG="valgrind -q --suppressions=tests/valgrind.supp --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --trace-children=no"
fails=0
run() { # expected-status command...
	want=$1
	shift
	$VG "$@" >/dev/null 2>"$BUILD/valgrind.log"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL (exit $got, want $want): $*${MOIRAI_TEST_FILTER:+ (MOIRAI_TEST_FILTER=$MOIRAI_TEST_FILTER)}"
		grep -v '^hwloc\|^May be\|^and reloading' "$BUILD/valgrind.log" | head -30
		fails=$((fails + 1))
	fi
}
run 0 "$BUILD/bin/moirai-topo" --plan all --json --alloc-stats
run 0 "$BUILD/bin/moirai-topo" --synthetic "pack:2 numa:2 l3:1 core:4 pu:2" --plan all --smt --policy spread
run 2 "$BUILD/bin/moirai-topo" --synthetic "nuam:2"
run 2 "$BUILD/bin/moirai-topo" --synthetic "pack:1 core:2 pu:1" --plan 3
run 0 "$BUILD/bin/moirai-topo" --input tests/data/topologies/32em64t-2n8c2t-pci-normalio.xml --plan 8 --near eth0
run 0 "$BUILD/bin/moirai-shm-demo" run 2000 64
# The runtime: worker threads, node pools, rings, the housekeeping thread,
# foreign submitters' pool caches, handles, a stop that times out, and
# create/load/stop/destroy with thousands of tasks and timers outstanding
# (each stop mode once: MOIRAI_TEST_VALGRIND).  One process per test
# (MOIRAI_TEST_FILTER): about 5 s each, most of it hwloc's probe under
# memcheck; test_qsbr is left out (its readers spin: ~5 minutes here).
MOIRAI_TEST_VALGRIND=1
export MOIRAI_TEST_VALGRIND
for t in test_lifecycle test_spawn_join_foreign test_handles test_stop_timeout \
	test_shutdown_under_load; do
	MOIRAI_TEST_FILTER=$t
	export MOIRAI_TEST_FILTER
	run 0 "$BUILD/tests/rt/test_rt"
done
unset MOIRAI_TEST_FILTER MOIRAI_TEST_VALGRIND
[ "$fails" -eq 0 ] && echo "valgrind OK"
exit "$fails"
