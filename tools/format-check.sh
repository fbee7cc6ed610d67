#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Fails when any C file differs from what clang-format (.clang-format) makes
# of it; prints the files.  `make format` fixes them.
set -u
bad=0
for f in $(git ls-files '*.c' '*.h' '*.cpp'); do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f"
		bad=1
	fi
done
[ "$bad" -eq 0 ] && echo "format OK"
exit "$bad"
