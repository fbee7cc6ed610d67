#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The public headers are usable from C++:
#   1. each compiles alone as C++11 with -pedantic -Wall -Wextra -Werror,
#      by default without any DPDK flag, and with -DMOIRAI_RING_INLINE and
#      DPDK's flags (the opt-in inline ring fast paths); the C twin of
#      this check is in tests/run-tests.sh;
#   2. a C++ program that takes the address of every MOIRAI_API function
#      links against libmoirai.a: each has C linkage (extern "C") and is
#      defined by the library, not only declared.
# Headers listed in KNOWN_FAIL are known to fail step 1 for one reason:
# they are reported as XFAIL as long as every error the compiler gives
# contains that word; any other error fails, and so does a listed header
# that starts passing, until it is removed from the list (the list only
# shrinks).
set -u
BUILD=${MOIRAI_BUILD:-build}
CXX=${CXX:-g++}
# header                 every error has   why (remove the line when it is fixed)
KNOWN_FAIL='
'
DPDK_CFLAGS=$(pkg-config --cflags libdpdk 2>/dev/null) || DPDK_CFLAGS=""
CXXFLAGS="-std=c++11 -pedantic -Wall -Wextra -Werror -Iinclude"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
xfail=0
known() { printf '%s\n' "$KNOWN_FAIL" | awk -v h="$1" '$1 == h { found = 1 } END { exit !found }'; }
reason() { printf '%s\n' "$KNOWN_FAIL" | awk -v h="$1" '$1 == h { print $2 }'; }

for mode in default inline; do
	extra=""
	[ "$mode" = inline ] && extra="-DMOIRAI_RING_INLINE $DPDK_CFLAGS"
	for h in include/moirai.h include/moirai/*.h; do
		case "$h" in *_inline.h) continue ;; esac # "include X.h instead"
		# shellcheck disable=SC2086
		if printf '#include "%s"\nint main() { return 0; }\n' "${h#include/}" |
			$CXX $CXXFLAGS $extra -fsyntax-only -x c++ - >"$tmp/log" 2>&1; then
			if known "$h"; then
				echo "  FAIL  $h ($mode) compiles as C++ now: remove it from KNOWN_FAIL in $0"
				fail=$((fail + 1))
			else
				pass=$((pass + 1))
			fi
		elif known "$h" && ! grep 'error:' "$tmp/log" | grep -qv "$(reason "$h")"; then
			echo "  XFAIL $h ($mode) as C++ (known):" \
				"$(grep -m 1 'error:' "$tmp/log" | sed 's/^.* error: //')"
			xfail=$((xfail + 1))
		else
			echo "  FAIL  $h ($mode) does not compile as C++11 -pedantic -Werror:"
			sed 's/^/        /' "$tmp/log" | head -n 20
			fail=$((fail + 1))
		fi
	done
done

# Every exported function, by address, from C++ (no -pedantic here: that
# is step 1's job, and the known failures must not hide linkage errors).
fns=$(grep -h 'MOIRAI_API' include/moirai/*.h | grep -v '#define' |
	sed -nE 's/.*[ *](moirai_[a-z0-9_]+)\(.*/\1/p' | sort -u)
{
	for h in include/moirai/*.h; do
		case "$h" in *_inline.h) ;; *) printf '#include "%s"\n' "${h#include/}" ;; esac
	done
	echo '#include <cstdio>'
	echo 'typedef void (*fn)();'
	echo 'static const fn fns[] = {'
	for f in $fns; do echo "	reinterpret_cast<fn>(&$f),"; done
	echo '};'
	printf '%s\n' 'int main() { std::printf("%zu\n", sizeof(fns) / sizeof(fns[0])); return 0; }'
} >"$tmp/all.cc"
# shellcheck disable=SC2086
if $CXX -std=c++11 -Wall -Iinclude ${SANFLAGS:-} -o "$tmp/all" "$tmp/all.cc" \
	"$BUILD/libmoirai.a" $(sed -n 's/^LDLIBS_DEPS *:= *//p' Makefile) >"$tmp/log" 2>&1 &&
	n=$("$tmp/all") && [ "$n" -eq "$(echo "$fns" | wc -w)" ]; then
	pass=$((pass + 1))
else
	echo "  FAIL  a C++ program using every MOIRAI_API function does not link and run:"
	grep -E 'undefined reference|error' "$tmp/log" | sed 's/^/        /' | head -n 20
	fail=$((fail + 1))
fi

echo "C++ headers: $pass passed, $fail failed, $xfail known failures"
[ "$fail" -eq 0 ]
