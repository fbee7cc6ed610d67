#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Packaging cannot rot: install into a temporary DESTDIR and build small
# programs against it with pkg-config only, as a user would:
#   - shared: `pkg-config --cflags --libs moirai`, linked to libmoirai.so.0;
#   - static: `pkg-config --static --cflags --libs moirai` against a tree
#     that has only libmoirai.a, so the link needs exactly moirai.pc's
#     Requires.private and Libs.private (and fails without --static);
#   - the MOIRAI_RING_INLINE opt-in, with `pkg-config --cflags libdpdk` added.
# Also: the SONAME, only moirai_ symbols exported, the headers, moirai.pc
# and the man pages installed, and `make uninstall` leaving nothing behind.
set -eu
BUILD=${MOIRAI_BUILD:-build}
CC="${CC:-cc} ${SANFLAGS:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/moirai-test
fail() {
	echo "FAIL: $*"
	exit 1
}

inst() { # DESTDIR: make install there
	MAKEFLAGS= make -s --no-print-directory BUILD="$BUILD" SAN="${SAN:-}" \
		install DESTDIR="$1" PREFIX=$prefix >/dev/null
}
pc() { # DESTDIR pkg-config-args...: pkg-config as a user of that tree would run it
	d=$1
	shift
	PKG_CONFIG_PATH=$d$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$d pkg-config "$@"
}

inst "$tmp/d"
root=$tmp/d$prefix
for f in include/moirai.h include/moirai/version.h lib/pkgconfig/moirai.pc lib/libmoirai.a \
	lib/libmoirai.so.0 share/man/man1/moirai-topo.1; do
	[ -e "$root/$f" ] || fail "make install did not install $f"
done
pc "$tmp/d" --cflags moirai | grep -q dpdk && fail "moirai.pc's Cflags name DPDK: $(pc "$tmp/d" --cflags moirai)"

cat >"$tmp/hello.c" <<'EOC'
#include <moirai.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	struct moirai_topo *t;
	if (moirai_topo_load_synthetic("pack:2 core:2 pu:1", &t) != 0)
		return 1;
	int n = moirai_topo_pu_count(t);
	moirai_topo_destroy(t);
	/* The header and the library agree on the version. */
	if (strcmp(moirai_version(), MOIRAI_VERSION_STRING) != 0)
		return 3;
	printf("%s %d\n", moirai_version(), n);
	return n == 4 ? 0 : 2;
}
EOC

# shellcheck disable=SC2046,SC2086
$CC -std=c11 -Wall -Werror -o "$tmp/hello" "$tmp/hello.c" $(pc "$tmp/d" --cflags --libs moirai) ||
	fail "shared link with pkg-config --cflags --libs moirai (no DPDK flags)"
readelf -d "$tmp/hello" | grep -q 'NEEDED.*libmoirai\.so\.0' || fail "hello does not need libmoirai.so.0"
LD_LIBRARY_PATH=$root/lib "$tmp/hello" | grep -q '^0\.' || fail "shared program did not run"

# Static: a tree with libmoirai.a only, so -lmoirai can only mean the
# archive and every symbol it needs must come from moirai.pc.
inst "$tmp/s"
rm -f "$tmp/s$prefix"/lib/libmoirai.so*
# shellcheck disable=SC2046,SC2086
if $CC -std=c11 -o "$tmp/hello-nostatic" "$tmp/hello.c" \
	$(pc "$tmp/s" --cflags --libs moirai) >/dev/null 2>&1; then
	fail "libmoirai.a linked without --static: the test would not see a wrong Libs.private"
fi
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -Wall -Werror -o "$tmp/hello-static" "$tmp/hello.c" \
	$(pc "$tmp/s" --static --cflags --libs moirai) ||
	fail "static link with pkg-config --static --cflags --libs moirai: $(pc "$tmp/s" --static --libs moirai)"
readelf -d "$tmp/hello-static" | grep -q 'NEEDED.*libmoirai' && fail "hello-static still needs libmoirai.so"
"$tmp/hello-static" >/dev/null || fail "static program did not run"

# The opt-in inline ring fast paths: the user adds DPDK's cflags.
cat >"$tmp/inline.c" <<'EOC'
#include <moirai.h>
int main(void)
{
	struct moirai_ring *r;
	if (moirai_ring_create("pkg-test", 64, MOIRAI_NODE_ANY, MOIRAI_RING_F_SPSC, &r) != 0)
		return 1;
	int ok = moirai_ring_empty(r) && !moirai_ring_full(r);
	moirai_ring_destroy(r);
	return ok ? 0 : 2;
}
EOC
# shellcheck disable=SC2046
$CC -std=c11 -Wall -Werror -DMOIRAI_RING_INLINE -o "$tmp/inline" "$tmp/inline.c" \
	$(pkg-config --cflags libdpdk) $(pc "$tmp/d" --cflags --libs moirai) ||
	fail "MOIRAI_RING_INLINE program with pkg-config --cflags libdpdk"
LD_LIBRARY_PATH=$root/lib "$tmp/inline" || fail "MOIRAI_RING_INLINE program did not run"

so=$root/lib/libmoirai.so
objdump -p "$so" | grep -q 'SONAME *libmoirai.so.0' || fail "no SONAME"
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^moirai_' | grep -v '^_' || true)
[ -z "$bad" ] || fail "non-moirai_ symbols exported: $bad"
# moirai__ symbols stay hidden, except the few an inline fast path of a
# public header must reach (rt_inline.h's thread-local block): those are
# declared MOIRAI_API there, and are ABI (docs/abi.md).
for sym in $(nm -D --defined-only "$so" | awk '$3 ~ /^moirai__/ { print $3 }'); do
	grep -qw "MOIRAI_API.*$sym" include/moirai/*.h ||
		fail "internal $sym exported (not an inline seam declared MOIRAI_API in include/moirai/)"
done

MAKEFLAGS= make -s --no-print-directory BUILD="$BUILD" uninstall DESTDIR="$tmp/d" PREFIX=$prefix >/dev/null
left=$(find "$tmp/d" -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install + pkg-config (shared, static, inline opt-in) + uninstall OK"
