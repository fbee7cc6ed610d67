#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The options every tool shares (docs/architecture.md, "Tool contracts"): -h and
# --help print the same usage on stdout and exit 0; -V and --version print
# "TOOL VERSION" and exit 0; an unknown option exits 2 with exactly one line
# on stderr and nothing on stdout.
set -u
BUILD=${MOIRAI_BUILD:-build}
VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
for tool in "$BUILD"/bin/*; do
	name=$(basename "$tool")
	n=$((n + 1))
	for o in -h --help; do
		"$tool" "$o" >"$tmp/$o.out" 2>"$tmp/err"
		rc=$?
		[ "$rc" -eq 0 ] || fail "$name $o: exit $rc"
		[ -s "$tmp/err" ] && fail "$name $o wrote to stderr: $(head -n 1 "$tmp/err")"
		head -n 1 "$tmp/$o.out" | grep -q "^usage: $name" || fail "$name $o does not start with 'usage: $name'"
	done
	cmp -s "$tmp/-h.out" "$tmp/--help.out" || fail "$name -h and --help differ"
	for o in -V --version; do
		out=$("$tool" "$o" 2>&1)
		rc=$?
		[ "$rc" -eq 0 ] || fail "$name $o: exit $rc"
		[ "$out" = "$name $VERSION" ] || fail "$name $o printed '$out', want '$name $VERSION'"
	done
	"$tool" --no-such-option >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "$name --no-such-option: exit $rc, want 2"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$name --no-such-option: want one stderr line, got: $(cat "$tmp/err")"
	[ -s "$tmp/out" ] && fail "$name --no-such-option wrote to stdout"
done
[ "$n" -gt 0 ] || fail "no tools in $BUILD/bin"
if [ "$fails" -ne 0 ]; then
	echo "tool options: $fails failure(s)"
	exit 1
fi
echo "tool options OK ($n tools: -h --help -V --version, unknown option)"
