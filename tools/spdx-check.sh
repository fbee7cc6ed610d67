#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Every tracked source file, script, Makefile, man page and build file must
# name its license in its first lines: "SPDX-License-Identifier:
# BSD-3-Clause" (LICENSE has the text).  tools/spdx-add.sh adds the line.
#
#   tools/spdx-check.sh [FILE...]   check FILEs (default: every tracked file)
#   tools/spdx-check.sh --missing   print "STYLE FILE" for each file without any
#                                   SPDX line (for tools/spdx-add.sh)
#
# STYLE is the comment syntax the line takes in that file: c, hash
# (after the #! line if there is one) or roff.  Files of other kinds
# (Markdown, LICENSE, data lists, test data: the pcaps of tests/data and
# the hwloc XML exports of tests/data/topologies, which are hwloc's and keep
# its BSD license in COPYING.hwloc there) are not checked.  Exit status: 0
# all tagged, 1 some are not, 2 bad usage.
set -u
TAG='SPDX-License-Identifier: BSD-3-Clause'
HEAD_LINES=5 # "near the top": the tag must be within the first lines

# comment_style FILE: c, hash, roff, or nothing for a file that is not checked.
comment_style() {
	case "$1" in
	*.c | *.h | *.cpp) echo c ;;
	*.[1-9]) echo roff ;;
	Makefile | */Makefile | *.mk | *.sh | *.py | *.pc.in | Doxyfile | */Doxyfile) echo hash ;;
	*.md | *.txt | *.xml | *.json | *.list | *.supp | LICENSE | COPYING* | */COPYING* | .gitignore | */.gitignore | .clang-format) ;;
	*)
		# Scripts without an extension (tools/install-deps, .ci/run).
		if [ "$(head -c 2 "$1" 2>/dev/null)" = '#!' ]; then
			echo hash
		fi
		;;
	esac
}

mode=check
case "${1:-}" in
--missing)
	mode=missing
	shift
	;;
-h | --help)
	sed -n '4,17s/^# \{0,1\}//p' "$0"
	exit 0
	;;
-*)
	echo "spdx-check: unknown option '$1' (see --help)" >&2
	exit 2
	;;
esac

if [ "$#" -eq 0 ]; then
	cd "$(dirname "$0")/.." || exit 2
	files=$(git ls-files 2>/dev/null) || {
		echo "spdx-check: not a git checkout (pass the files to check)" >&2
		exit 2
	}
	set -- $files
fi

bad=0
checked=0
for f in "$@"; do
	[ -f "$f" ] || {
		echo "spdx-check: no such file: $f" >&2
		exit 2
	}
	style=$(comment_style "$f")
	[ -n "$style" ] || continue
	checked=$((checked + 1))
	top=$(head -n "$HEAD_LINES" "$f")
	case "$top" in
	*"$TAG"*) continue ;;
	esac
	bad=$((bad + 1))
	other=$(printf '%s\n' "$top" | grep -o 'SPDX-License-Identifier: *[^ */]*' | head -n 1)
	if [ "$mode" = missing ]; then
		# A file under another license is for a person to decide.
		[ -n "$other" ] || echo "$style $f"
	else
		if [ -n "$other" ]; then
			echo "wrong license: $f ($other, expected BSD-3-Clause)"
		else
			echo "no SPDX line: $f (tools/spdx-add.sh $f)"
		fi
	fi
done
[ "$mode" = missing ] && exit 0
if [ "$bad" -ne 0 ]; then
	echo "spdx: $bad of $checked files lack '$TAG' in their first $HEAD_LINES lines"
	exit 1
fi
echo "spdx OK ($checked files)"
