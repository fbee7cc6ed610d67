#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# One version everywhere: the Makefile's VERSION, the macros of
# include/moirai/version.h (and that they encode each other), what
# moirai_version() and every tool's --version print, moirai.pc's Version,
# and the shared library's file name and SONAME (docs/abi.md).
set -u
BUILD=${MOIRAI_BUILD:-build}
CC=${CC:-cc}
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mk() { sed -n "s/^$1 *:= *//p" Makefile; }
VERSION=$(mk VERSION)
SOVERSION=$(mk SOVERSION)
case "$VERSION" in
[0-9]*.[0-9]*.[0-9]*) ;;
*) fail "Makefile VERSION '$VERSION' is not MAJOR.MINOR.PATCH" ;;
esac
case "$SOVERSION" in
'' | *[!0-9]*) fail "Makefile SOVERSION '$SOVERSION' is not a number" ;;
esac

cat >"$tmp/v.c" <<'EOC'
#include <stdio.h>
#include "moirai/version.h"
int main(void)
{
	char s[64];
	snprintf(s, sizeof(s), "%d.%d.%d", MOIRAI_VERSION_MAJOR, MOIRAI_VERSION_MINOR,
		 MOIRAI_VERSION_PATCH);
	printf("%s %s %d %d\n", MOIRAI_VERSION_STRING, s, MOIRAI_VERSION_NUMBER,
	       (MOIRAI_VERSION_MAJOR << 16) | (MOIRAI_VERSION_MINOR << 8) | MOIRAI_VERSION_PATCH);
	return MOIRAI_VERSION_MINOR > 255 || MOIRAI_VERSION_PATCH > 255;
}
EOC
if $CC -std=c11 -Wall -Wextra -Werror -Iinclude -o "$tmp/v" "$tmp/v.c" && "$tmp/v" >"$tmp/out"; then
	read -r str parts num encoded <"$tmp/out"
	[ "$str" = "$VERSION" ] || fail "MOIRAI_VERSION_STRING $str, Makefile VERSION $VERSION"
	[ "$parts" = "$VERSION" ] || fail "MOIRAI_VERSION_MAJOR.MINOR.PATCH $parts, Makefile VERSION $VERSION"
	[ "$num" = "$encoded" ] || fail "MOIRAI_VERSION_NUMBER $num, want $encoded"
else
	fail "version.h does not compile alone, or a part is above 255"
fi

for t in "$BUILD"/bin/*; do
	got=$("$t" --version 2>&1)
	[ "$got" = "$(basename "$t") $VERSION" ] || fail "$t --version says '$got', want '$(basename "$t") $VERSION'"
done

[ -e "$BUILD/libmoirai.so.$VERSION" ] || fail "no $BUILD/libmoirai.so.$VERSION"
soname=$(objdump -p "$BUILD/libmoirai.so.$VERSION" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libmoirai.so.$SOVERSION" ] || fail "SONAME '$soname', want libmoirai.so.$SOVERSION"

pcv=$(sed -e "s/@VERSION@/$VERSION/" moirai.pc.in | sed -n 's/^Version: //p')
grep -q '^Version: @VERSION@$' moirai.pc.in || fail "moirai.pc.in's Version is not @VERSION@ ($pcv)"

if [ "$fails" -ne 0 ]; then
	echo "version: $fails mismatch(es)"
	exit 1
fi
echo "version $VERSION (SONAME libmoirai.so.$SOVERSION) agrees everywhere"
