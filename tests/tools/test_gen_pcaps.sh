#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The committed test traffic is the output of the project's scripts, byte
# for byte: tools/gen-pcaps.py regenerates every file of tests/data (the
# pcaps, pl-expected.json, pl-routes.txt) and the parser corpus seeds of
# tests/pipeline/corpus, tests/xdp/gen-flows.py regenerates
# tests/xdp/flows.pcap.  Without this check a script could drift from the
# files the tests replay (or a file be edited by hand) unnoticed.  Both
# scripts write into a temporary directory, never into the tree.
set -u
. "$(dirname "$0")/../common/cli.sh"

# Every file of WANT is in GOT, identical, and GOT holds nothing more.
same_dir() { # description got-dir want-dir want-glob
	_n=0
	for _g in "$2"/*; do
		[ -f "$_g" ] || continue
		_n=$((_n + 1))
		_b=$(basename "$_g")
		if [ ! -f "$3/$_b" ]; then
			fail "$1: the script writes $_b, which is not committed in $3"
		elif ! cmp -s "$_g" "$3/$_b"; then
			fail "$1: $3/$_b differs from what the script writes ($(cmp "$_g" "$3/$_b" | head -1))"
		fi
	done
	[ "$_n" -gt 0 ] || fail "$1: the script wrote nothing into $2"
	for _w in "$3"/$4; do
		[ -f "$_w" ] || continue
		[ -f "$2/$(basename "$_w")" ] || fail "$1: $_w is committed but the script does not write it"
	done
}

expect_status 0 "tools/gen-pcaps.py" $PY tools/gen-pcaps.py "$tmp/data"
same_dir "tests/data" "$tmp/data" tests/data "*"
same_dir "corpus seeds" "$tmp/data/corpus" tests/pipeline/corpus "*-mixed-*.bin"

expect_status 0 "tests/xdp/gen-flows.py" $PY tests/xdp/gen-flows.py "$tmp/flows.pcap"
cmp -s "$tmp/flows.pcap" tests/xdp/flows.pcap ||
	fail "tests/xdp/flows.pcap differs from what tests/xdp/gen-flows.py writes"

cli_finish "generated test traffic"
