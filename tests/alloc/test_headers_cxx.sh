#!/bin/sh
# The public headers are usable from C++: each one alone, and moirai.h (with
# the opt-in inline ring fast paths too), compiled as ISO C++11 with
# -pedantic and warnings as errors, by g++ and by clang++ when present.  A
# flexible array member in moirai_pool_cache once broke this.
set -u
DPDK_INC="-I/usr/include/dpdk -I/usr/include/x86_64-linux-gnu/dpdk"
fails=0
checked=0
for cxx in g++ clang++; do
	command -v "$cxx" >/dev/null 2>&1 || continue
	for h in include/moirai.h include/moirai/*.h; do
		case "$h" in *_inline.h) continue ;; esac
		if ! printf '#include "%s"\n' "${h#include/}" |
			"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -Iinclude \
				-fsyntax-only -x c++ - 2>"${TMPDIR:-/tmp}/moirai-cxx.$$"; then
			echo "FAIL: $cxx: $h"
			sed 's/^/    /' "${TMPDIR:-/tmp}/moirai-cxx.$$"
			fails=$((fails + 1))
		fi
		checked=$((checked + 1))
	done
	if ! printf '#define MOIRAI_RING_INLINE 1\n#include "moirai.h"\n' |
		"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -msse4.2 -Iinclude $DPDK_INC \
			-fsyntax-only -x c++ - 2>"${TMPDIR:-/tmp}/moirai-cxx.$$"; then
		# DPDK's own headers are not pedantic C++: report, do not fail.
		echo "note: $cxx: moirai.h with MOIRAI_RING_INLINE (DPDK headers) is not -pedantic C++:"
		head -3 "${TMPDIR:-/tmp}/moirai-cxx.$$" | sed 's/^/    /'
	fi
done
rm -f "${TMPDIR:-/tmp}/moirai-cxx.$$"
if [ "$checked" -eq 0 ]; then
	echo "no C++ compiler: skipped"
	exit 0
fi
[ "$fails" -eq 0 ] && echo "C++ headers OK ($checked checks)"
exit "$fails"
