#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Every tool has a man page (man/man1/TOOL.1) that renders without a single
# groff warning, names every option its --help prints, and documents no
# option that --help does not know.
set -u
BUILD=${MOIRAI_BUILD:-build}
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
if ! command -v groff >/dev/null 2>&1; then
	echo "groff missing: run tools/install-deps test"
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Options in a text: words that start with - or -- (not "x-y" inside words).
options() {
	grep -oE '(^|[^a-zA-Z0-9_-])--?[a-zA-Z][a-zA-Z0-9-]*' "$1" | sed 's/^[^-]*//' | sort -u
}

n=0
for tool in "$BUILD"/bin/*; do
	name=$(basename "$tool")
	page=man/man1/$name.1
	n=$((n + 1))
	if [ ! -f "$page" ]; then
		fail "$name has no man page ($page)"
		continue
	fi
	# -ww: all warnings; -z: no output.  Any message is a failure.
	if ! groff -man -Tutf8 -ww -z "$page" 2>"$tmp/lint" || [ -s "$tmp/lint" ]; then
		fail "$page does not render cleanly:"
		sed 's/^/    /' "$tmp/lint"
	fi
	# Plain ASCII, one paragraph per line, no hyphenation: options stay whole.
	groff -man -Tascii -P-cbou -rLL=400n -rHY=0 "$page" 2>/dev/null >"$tmp/page"
	"$tool" --help >"$tmp/help" 2>&1
	options "$tmp/help" >"$tmp/help-opts"
	[ -s "$tmp/help-opts" ] || fail "$name --help names no option"
	while read -r o; do
		grep -qE -- "(^|[^a-zA-Z0-9_-])$o([^a-zA-Z0-9_-]|$)" "$tmp/page" ||
			fail "$page does not document $o (from $name --help)"
	done <"$tmp/help-opts"
	# The OPTIONS entries (.TP tags) must all be options --help knows.
	awk '/^\.SH/ { in_opts = ($2 == "OPTIONS") } in_opts && tag { print; tag = 0 }
		in_opts && /^\.TP/ { tag = 1 }' "$page" |
		sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' >"$tmp/tags"
	options "$tmp/tags" >"$tmp/tag-opts"
	while read -r o; do
		grep -qxF -- "$o" "$tmp/help-opts" ||
			fail "$page documents $o, which $name --help does not list"
	done <"$tmp/tag-opts"
	grep -q '^\.TH .*@VERSION@' "$page" || fail "$page: .TH should carry @VERSION@ (make install fills it in)"
done
[ "$n" -gt 0 ] || fail "no tools in $BUILD/bin"
for page in man/man1/*.1; do
	[ -x "$BUILD/bin/$(basename "$page" .1)" ] || fail "$page documents no built tool"
done

if [ "$fails" -ne 0 ]; then
	echo "man pages: $fails failure(s)"
	exit 1
fi
echo "man pages OK ($n tools)"
