#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# make doc: the API reference of include/ (Doxyfile) into OUTDIR/html
# (default build/doc), and the documentation checks.
#
# README's table of packages must match tools/install-deps
# (tools/readme-deps-check.sh).
#
# The API reference: Doxyfile turns every gap into a warning (undocumented
# declaration, parameter without @param, a malformed command) and doxygen
# fails on any; here each warning, without its line number, must be listed
# in tools/doxygen-known-warnings.txt, the gaps the headers had when the
# check came in.  A new warning fails, and so does a listed one that is
# gone: delete its line, the list only shrinks.
#
#   tools/doc-check.sh [OUTDIR]
set -u
cd "$(dirname "$0")/.." || exit 2
OUT=${1:-build/doc}
KNOWN=tools/doxygen-known-warnings.txt
VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
bad=0
tools/readme-deps-check.sh || bad=1

if ! command -v doxygen >/dev/null 2>&1; then
	echo "doxygen missing: run tools/install-deps test"
	exit 1
fi
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1

# The output directory is the caller's; everything else is Doxyfile's.
{
	cat Doxyfile
	echo "OUTPUT_DIRECTORY = $OUT"
	echo "PROJECT_NUMBER = $VERSION"
} | doxygen - >"$OUT/doxygen.out" 2>"$OUT/warnings.log"
rc=$?
if [ ! -s "$OUT/html/index.html" ]; then
	cat "$OUT/warnings.log" "$OUT/doxygen.out"
	echo "make doc: doxygen produced no HTML (exit $rc)"
	exit 1
fi
[ "$rc" -eq 0 ] || [ -s "$OUT/warnings.log" ] || {
	echo "make doc: doxygen failed (exit $rc) without a warning"
	exit 1
}

# One line per warning: continuation lines joined, path and line dropped.
top=$(pwd)/
awk '/^  / { line = line " " substr($0, 3); next }
	{ if (line != "") print line; line = $0 } END { if (line != "") print line }' "$OUT/warnings.log" |
	sed -e "s|^$top||" -e 's|^include/||' -e 's|^\([^:]*\):[0-9]*: *|\1: |' \
		-e 's/: \(error\|warning\): /: /' | LC_ALL=C sort -u >"$OUT/warnings.txt"
grep -v '^#' "$KNOWN" 2>/dev/null | grep . | LC_ALL=C sort -u >"$OUT/known.txt"

new=$(LC_ALL=C comm -23 "$OUT/warnings.txt" "$OUT/known.txt")
gone=$(LC_ALL=C comm -13 "$OUT/warnings.txt" "$OUT/known.txt")
kept=$(LC_ALL=C comm -12 "$OUT/warnings.txt" "$OUT/known.txt" | wc -l)
if [ -n "$new" ]; then
	echo "make doc: new doxygen warnings (document the declaration; see $OUT/warnings.log):"
	printf '%s\n' "$new" | sed 's/^/  /'
	bad=1
fi
if [ -n "$gone" ]; then
	echo "make doc: fixed, so delete these lines from $KNOWN:"
	printf '%s\n' "$gone" | sed 's/^/  /'
	bad=1
fi
[ "$bad" -eq 0 ] || exit 1
[ "$kept" -eq 0 ] || echo "make doc: $kept known documentation gaps left ($KNOWN)"
echo "API reference: $OUT/html/index.html"
