#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# tools/spdx-add.sh puts the license line where tools/spdx-check.sh looks
# for it, in each file kind's comment syntax, without breaking the file
# (scripts stay executable and run, man pages still lint), and changes
# nothing the second time; a file under another license is reported, never
# rewritten.  (The tree-wide check runs in CI, next to the format check.)
set -u
top=$(pwd)
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
TAG='SPDX-License-Identifier: BSD-3-Clause'

printf '/*\n * a module\n */\nint f(void);\nint f(void) { return 0; }\n' >a.c
printf '#ifndef A_H\n#define A_H\n#endif\n' >a.h
printf '#!/bin/sh\necho ran\n' >script && chmod 755 script
printf 'all:\n\ttrue\n' >Makefile
printf '.TH X 1\n.SH NAME\nx \\- y\n' >x.1
printf '# notes\n' >notes.md
printf '/* SPDX-License-Identifier: GPL-2.0 */\nint g;\n' >gpl.c
files="a.c a.h script Makefile x.1 notes.md gpl.c"

# shellcheck disable=SC2086
"$top/tools/spdx-check.sh" $files >out && fail "spdx-check passed untagged files"
grep -q 'no SPDX line: a.c' out || fail "spdx-check did not name a.c"
grep -q 'wrong license: gpl.c' out || fail "spdx-check did not flag gpl.c's license"
grep -q 'notes.md' out && fail "spdx-check checked a Markdown file"
# Vendored test data keeps its own license (tests/data/topologies): not checked.
printf '<?xml version="1.0"?>\n<topology/>\n' >data.xml
printf 'Copyright (c) someone else\n' >COPYING.other
"$top/tools/spdx-check.sh" data.xml COPYING.other >/dev/null || fail "spdx-check checked test data"

cp gpl.c gpl.c.orig
# shellcheck disable=SC2086
"$top/tools/spdx-add.sh" $files >/dev/null || fail "spdx-add failed"
[ "$(head -n 1 a.c)" = "/* $TAG */" ] || fail "a.c line 1: $(head -n 1 a.c)"
[ "$(sed -n 2p a.c)" = "/*" ] || fail "a.c lost its first line"
[ "$(head -n 1 a.h)" = "/* $TAG */" ] || fail "a.h line 1: $(head -n 1 a.h)"
[ "$(head -n 1 script)" = "#!/bin/sh" ] || fail "script lost its #! line"
[ "$(sed -n 2p script)" = "# $TAG" ] || fail "script line 2: $(sed -n 2p script)"
[ -x script ] && [ "$(./script)" = ran ] || fail "script no longer runs"
[ "$(head -n 1 Makefile)" = "# $TAG" ] || fail "Makefile line 1: $(head -n 1 Makefile)"
make -s -f Makefile >/dev/null 2>&1 || fail "Makefile broken"
[ "$(head -n 1 x.1)" = ".\\\" $TAG" ] || fail "x.1 line 1: $(head -n 1 x.1)"
if command -v groff >/dev/null 2>&1; then
	[ -z "$(groff -man -ww -z x.1 2>&1)" ] || fail "x.1 no longer lints"
fi
cmp -s gpl.c gpl.c.orig || fail "spdx-add rewrote a file under another license"
[ "$(cat notes.md)" = "# notes" ] || fail "spdx-add touched a Markdown file"

for f in $files; do cp "$f" "$f.once"; done
# shellcheck disable=SC2086
"$top/tools/spdx-add.sh" $files >/dev/null
for f in $files; do cmp -s "$f" "$f.once" || fail "second spdx-add changed $f"; done
"$top/tools/spdx-check.sh" a.c a.h script Makefile x.1 notes.md >/dev/null ||
	fail "spdx-check fails after spdx-add"

if [ "$fails" -ne 0 ]; then
	echo "spdx tools: $fails failure(s)"
	exit 1
fi
echo "spdx-add + spdx-check OK"
