#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# README's table of packages ("What gets installed") must name every
# package of tools/install-deps --list, in the row of its class: the
# script is the one list, and the table had drifted from it (the AF_XDP
# and benchmark packages were missing) before this check.  Run by
# tools/doc-check.sh, so by make check (tests/pkg/test_doc.sh) and make doc.
#
#   tools/readme-deps-check.sh [README]    (default: README.md of this tree)
set -u
top=$(cd "$(dirname "$0")/.." && pwd) || exit 2
README=${1:-$top/README.md}
[ -f "$README" ] || {
	echo "readme-deps-check: no such file: $README"
	exit 2
}
deps=$("$top/tools/install-deps" --list) || {
	echo "readme-deps-check: tools/install-deps --list failed"
	exit 2
}
[ -n "$deps" ] || {
	echo "readme-deps-check: tools/install-deps --list printed nothing"
	exit 2
}
# A row is "| `class` | for | packages | ...": each package in backquotes.
missing=$(printf '%s\n' "$deps" | while read -r class pkg _; do
	grep "^| \`$class\` |" "$README" | grep -qF "\`$pkg\`" || echo "$class $pkg"
done)
if [ -n "$missing" ]; then
	echo "README's package table lacks (class package, from tools/install-deps --list):"
	printf '%s\n' "$missing" | sed 's/^/  /'
	exit 1
fi
echo "README's package table matches tools/install-deps ($(printf '%s\n' "$deps" | wc -l) packages)"
