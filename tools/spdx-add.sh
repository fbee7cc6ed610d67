#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Adds "SPDX-License-Identifier: BSD-3-Clause" to the files that lack it, in
# each file's comment syntax: the first line of a C file
# (/* ... */) or a man page (.\" ...), the first line or the one after #! of
# a script, Makefile or build file (# ...).  Files that already have it are
# left alone, so running it twice changes nothing.
#
#   tools/spdx-add.sh [FILE...]   (default: every tracked file that lacks it)
#
# tools/spdx-check.sh decides which files need the line and in which syntax.
set -eu
TAG='SPDX-License-Identifier: BSD-3-Clause'
case "${1:-}" in
-h | --help)
	sed -n '4,11s/^# \{0,1\}//p' "$0"
	exit 0
	;;
-*)
	echo "spdx-add: unknown option '$1' (see --help)" >&2
	exit 2
	;;
esac
check="$(cd "$(dirname "$0")" && pwd)/spdx-check.sh"
# Without arguments spdx-check lists tracked files relative to the top.
[ "$#" -gt 0 ] || cd "$(dirname "$0")/.."

"$check" --missing "$@" | while read -r style f; do
	case "$style" in
	c) line="/* $TAG */" ;;
	roff) line=".\\\" $TAG" ;;
	hash) line="# $TAG" ;;
	*)
		echo "spdx-add: unknown style '$style' for $f" >&2
		exit 1
		;;
	esac
	tmp="$f.spdx-add.$$"
	if [ "$style" = hash ] && [ "$(head -c 2 "$f")" = '#!' ]; then
		{ head -n 1 "$f"; printf '%s\n' "$line"; tail -n +2 "$f"; } >"$tmp"
	else
		{ printf '%s\n' "$line"; cat "$f"; } >"$tmp"
	fi
	# Keep the mode (scripts stay executable).
	chmod "$(stat -c %a "$f")" "$tmp"
	mv "$tmp" "$f"
	echo "added: $f"
done
