#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The malloc drop-in (build/libmoirai-malloc.so, docs/alloc.md) under real
# programs: each runs with and without LD_PRELOAD and must give the same
# output (a gcc compile, python3, sort of a large file, moirai-topo, a
# threaded program, a fork test, dlopen/dlclose, a C++ program with every
# form of new/delete), then again in the drop-in's debug mode
# (MOIRAI_DEBUG=1: canaries, double-free and foreign-pointer checks), which
# must also catch the bugs it is for.  The static link (libmoirai-malloc.a
# whole in front of libmoirai.a) runs the API checks too.
#
# Skipped in sanitizer builds: ASan and TSan interpose malloc themselves
# and their runtime must be the first library of the process, so a second
# interposer cannot be layered on them (nor under valgrind); the debug
# mode is this allocator's own checker for that reason.
set -u
BUILD=${MOIRAI_BUILD:-build}
if [ -n "${SAN:-}" ]; then
	echo "skipped: SAN=$SAN interposes malloc itself; the drop-in cannot be layered on it"
	exit 0
fi
CC=${CC:-cc}
CXX=${CXX:-c++}
case "$CC" in *clang*) CXX=clang++ ;; esac
ROOT=$(pwd)
SO=$ROOT/$BUILD/libmoirai-malloc.so
D=$ROOT/$BUILD/tests/alloc/dropin
T=$(mktemp -d "${TMPDIR:-/tmp}/moirai-dropin.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$D"
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
[ -f "$SO" ] || {
	echo "FAIL: $SO missing (make all)"
	exit 1
}

# Exports: the moirai API, libc's allocation functions and C++'s operators.
bad=$(nm -D --defined-only "$SO" | awk '$2 ~ /[TDBRW]/ {print $3}' | grep -v '^moirai_' |
	grep -Ev '^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size)$' |
	grep -Ev '^_Z(nw|na|dl|da)' | grep -v '^_' || true)
[ -z "$bad" ] || fail "libmoirai-malloc.so exports $bad"
for sym in malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc \
	pvalloc malloc_usable_size _Znwm _ZdlPv _ZdlPvm _ZnwmSt11align_val_t _ZdlPvSt11align_val_t; do
	nm -D --defined-only "$SO" | grep -q " T $sym\$" || fail "libmoirai-malloc.so lacks $sym"
done

# The helpers: against libmoirai.so (moirai_* then resolve to the drop-in
# when it is preloaded), and statically with libmoirai-malloc.a.
HFLAGS="-O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -pthread"
# gcc warns about the deliberately huge sizes; clang has no such warning.
case "$CC" in *clang*) ;; *) HFLAGS="$HFLAGS -Wno-alloc-size-larger-than" ;; esac
$CC $HFLAGS tests/alloc/dropin/dropin_check.c -o "$D/dropin_check" -L"$BUILD" -lmoirai \
	-Wl,-rpath,"$ROOT/$BUILD" -ldl || fail "build dropin_check"
$CC $HFLAGS tests/alloc/dropin/dropin_check.c -o "$D/dropin_check_static" \
	-Wl,--whole-archive "$BUILD/libmoirai-malloc.a" -Wl,--no-whole-archive "$BUILD/libmoirai.a" \
	-lhwloc -lnuma -lrte_ring -lrte_rcu -lpthread -lm -ldl || fail "build dropin_check_static"
$CC -shared -fPIC -O1 -Wall -Werror tests/alloc/dropin/dropin_lib.c -o "$D/dropin_lib.so" ||
	fail "build dropin_lib.so"
$CXX -O1 -g -std=c++17 -fsized-deallocation -Wall -Wextra -Werror -pthread tests/alloc/dropin/dropin_cxx.cc \
	-o "$D/dropin_cxx" || fail "build dropin_cxx"
[ "$fails" -eq 0 ] || exit 1

# same NAME CMD...: stdout of CMD with and without the drop-in (and in
# debug mode) must match, and every run must exit 0.
same() {
	name=$1
	shift
	"$@" >"$T/plain.out" 2>"$T/plain.err" || fail "$name without the drop-in (exit $?)"
	for mode in release debug; do
		dbg=0
		[ "$mode" = debug ] && dbg=1
		if ! env MOIRAI_DEBUG=$dbg LD_PRELOAD="$SO" "$@" >"$T/$mode.out" 2>"$T/$mode.err"; then
			fail "$name under the drop-in ($mode)"
			head -20 "$T/$mode.err"
		elif ! cmp -s "$T/plain.out" "$T/$mode.out"; then
			fail "$name: output differs under the drop-in ($mode)"
			diff "$T/plain.out" "$T/$mode.out" | head -10
		fi
	done
	echo "ok: $name"
}

# The drop-in is in effect (malloc is moirai's, shared with moirai_malloc*).
for mode in 0 1; do
	MOIRAI_DEBUG=$mode LD_PRELOAD="$SO" "$D/dropin_check" api --moirai >/dev/null ||
		fail "api checks under the drop-in (MOIRAI_DEBUG=$mode)"
	MOIRAI_DEBUG=$mode "$D/dropin_check_static" api --moirai >/dev/null ||
		fail "api checks linked statically (MOIRAI_DEBUG=$mode)"
done
"$D/dropin_check" api --glibc >/dev/null || fail "api checks without the drop-in"
"$D/dropin_check_static" threads >/dev/null || fail "threads linked statically"
"$D/dropin_check_static" fork >/dev/null || fail "fork linked statically"
echo "ok: api, preloaded and static"

same "api" "$D/dropin_check" api
same "threads" "$D/dropin_check" threads
same "fork" "$D/dropin_check" fork
same "dlopen" "$D/dropin_check" dlopen "$D/dropin_lib.so"
same "c++ new/delete" "$D/dropin_cxx"

# A compile: the object files must be identical.
printf '#include <stdio.h>\n#include <stdlib.h>\nstruct s { int a[8]; };\nint main(void) { struct s *p = calloc(4, sizeof *p); printf("%%d\\n", p[3].a[7]); free(p); return 0; }\n' >"$T/prog.c"
for mode in plain release debug; do
	case $mode in
	plain) $CC -O2 -c "$T/prog.c" -o "$T/$mode.o" || fail "cc without the drop-in" ;;
	*) env MOIRAI_DEBUG=$([ $mode = debug ] && echo 1 || echo 0) LD_PRELOAD="$SO" \
		$CC -O2 -c "$T/prog.c" -o "$T/$mode.o" || fail "cc under the drop-in ($mode)" ;;
	esac
done
cmp -s "$T/plain.o" "$T/release.o" && cmp -s "$T/plain.o" "$T/debug.o" ||
	fail "cc: object files differ under the drop-in"
echo "ok: cc -O2 -c"

if command -v python3 >/dev/null 2>&1; then
	same "python3" python3 -c '
import hashlib, json, collections
d = {str(i): [i] * (i % 50) for i in range(20000)}
c = collections.Counter(len(v) for v in d.values())
s = json.dumps(d, sort_keys=True)
print(len(s), hashlib.sha256(s.encode()).hexdigest(), sorted(c.items())[:5])
'
fi

# sort of a large file (about 8 MB), not sorted to begin with.
awk 'BEGIN { x = 1; for (i = 0; i < 400000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%d line %d %x\n", x, i, x } }' >"$T/big.txt"
same "sort" sort "$T/big.txt"
same "sort -n" sort -n -k1,1 "$T/big.txt"

# moirai's own tool, statically linked: its copy of moirai and the drop-in's.
same "moirai-topo" "$ROOT/$BUILD/bin/moirai-topo" --synthetic "pack:2 numa:2 l3:1 core:4 pu:2" --plan all --json

# Debug mode catches what it is for; release mode does not crash.
for bug in double-free overrun foreign-in-window; do
	MOIRAI_DEBUG=1 LD_PRELOAD="$SO" "$D/dropin_check" $bug >/dev/null 2>"$T/bug.err"
	rc=$?
	if [ "$rc" -ne 134 ] || ! grep -q '^moirai: ' "$T/bug.err"; then
		fail "debug mode did not report $bug (exit $rc)"
		head -5 "$T/bug.err"
	fi
done
LD_PRELOAD="$SO" "$D/dropin_check" foreign-in-window || fail "release: a bad free crashed"
echo "ok: debug mode reports double free, overrun, a free of no block"

[ "$fails" -eq 0 ] && echo "malloc drop-in OK"
[ "$fails" -eq 0 ]
