#!/bin/sh
# Packaging cannot rot: install into a temporary DESTDIR, then build a tiny
# program with `pkg-config --cflags --libs moirai` against it (shared and
# static) and run it.  Also checks that libmoirai.so exports only moirai_
# symbols and carries its SONAME.
set -eu
BUILD=${MOIRAI_BUILD:-build}
CC="${CC:-cc} ${SANFLAGS:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/moirai-test

MAKEFLAGS= make -s --no-print-directory BUILD="$BUILD" SAN="${SAN:-}" install DESTDIR="$tmp" PREFIX=$prefix >/dev/null
root=$tmp$prefix
export PKG_CONFIG_PATH=$root/lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$tmp
# The sysroot prefix also applies to the DPDK -I paths moirai.pc carries
# (moirai/ring.h includes rte_ring.h): show the system's DPDK headers there.
for d in /usr/include/dpdk /usr/include/x86_64-linux-gnu/dpdk; do
	mkdir -p "$tmp$(dirname "$d")" && ln -s "$d" "$tmp$d"
done

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
	printf("%s %d\n", moirai_version(), n);
	return n == 4 ? 0 : 2;
}
EOC
# shellcheck disable=SC2046
$CC -std=c11 -Wall -Werror -o "$tmp/hello" "$tmp/hello.c" $(pkg-config --cflags --libs moirai)
LD_LIBRARY_PATH=$root/lib "$tmp/hello" | grep -q '^0\.' || { echo "shared link failed"; exit 1; }
# libmoirai.a with its dependencies shared (Debian ships no static libudev,
# which a fully static hwloc would need): the Libs.private of moirai.pc.
priv=$(sed -n 's/^Libs.private: //p' "$root/lib/pkgconfig/moirai.pc")
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -Wall -Werror -o "$tmp/hello-static" "$tmp/hello.c" \
	$(pkg-config --cflags moirai) "$root/lib/libmoirai.a" \
	$(pkg-config --libs hwloc) $priv
"$tmp/hello-static" >/dev/null || { echo "static link failed"; exit 1; }

so=$root/lib/libmoirai.so
objdump -p "$so" | grep -q 'SONAME *libmoirai.so.0' || { echo "no SONAME"; exit 1; }
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^moirai_' | grep -v '^_' || true)
if [ -n "$bad" ]; then
	echo "non-moirai_ symbols exported: $bad"
	exit 1
fi
nm -D --defined-only "$so" | grep -q ' moirai__' && { echo "internal moirai__ symbol exported"; exit 1; }
echo "install + pkg-config OK"
