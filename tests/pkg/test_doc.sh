#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# make doc's check in every make check: the public headers build an API
# reference with no doxygen warning beyond the known gaps, so a new public
# declaration without its documentation fails here (tools/doc-check.sh),
# and README's package table names every package of tools/install-deps.
# First the package check itself: a README that drops a package or lists
# it under the wrong class fails, naming it.
set -u
BUILD=${MOIRAI_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
sed '/^| `test` |/s/`tcpdump`/tcp-dump/' README.md >"$tmp/dropped.md"
if tools/readme-deps-check.sh "$tmp/dropped.md" >"$tmp/out"; then
	echo "FAIL: readme-deps-check passed a table without tcpdump"
	fails=$((fails + 1))
elif ! grep -q '^  test tcpdump$' "$tmp/out"; then
	echo "FAIL: readme-deps-check did not name test tcpdump:"
	cat "$tmp/out"
	fails=$((fails + 1))
fi
# libbpf1 moved from the runtime row to the build row.
sed -e '/^| `runtime` |/s/`libbpf1`//' -e '/^| `build` |/s/`libbpf-dev`/`libbpf-dev` `libbpf1`/' \
	README.md >"$tmp/moved.md"
if tools/readme-deps-check.sh "$tmp/moved.md" >"$tmp/out" || ! grep -q '^  runtime libbpf1$' "$tmp/out"; then
	echo "FAIL: readme-deps-check accepted libbpf1 in the wrong class:"
	cat "$tmp/out"
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ] || exit 1
exec tools/doc-check.sh "$BUILD/doc"
