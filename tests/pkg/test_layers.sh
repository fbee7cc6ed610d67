#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The include direction between layers (tools/layer-check.py, the table in
# docs/architecture.md) holds for this tree; and the checker itself finds
# each kind of violation in a small made-up tree that also has the planned
# rt/ and net/ modules, which it must accept.
set -u
PY=/usr/bin/python3
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$PY tools/layer-check.py . || fail "this tree breaks the layering (above)"

# put FILE LINE...: a fixture file with these lines.
put() {
	f=$tmp/t/$1
	shift
	mkdir -p "$(dirname "$f")"
	printf '%s\n' "$@" >"$f"
}
put lib/internal.h '#include "moirai/base.h"'
put lib/error.c '#include "internal.h"' '#include <stdio.h>'
put include/moirai/base.h '#include <stdint.h>'
put include/moirai/version.h ''
put include/moirai/numa.h '#include "moirai/base.h"'
put include/moirai/alloc.h '#include "moirai/base.h"'
put include/moirai/ring.h '#include "moirai/alloc.h"' '#include <rte_ring.h>'
put include/moirai/rt.h '#include "moirai/ring.h"'
put include/moirai/net.h '#include "moirai/rt.h"'
put include/moirai.h '#include "moirai/version.h"' '#include "moirai/net.h"'
put numa/topo.c '#include <hwloc.h>' '#include "internal.h"' '#include "moirai/numa.h"'
put alloc/alloc_int.h '#include "internal.h"' '#include "moirai/alloc.h"'
put alloc/heap.c '#include "alloc_int.h"' '#include "moirai/numa.h"'
put ring/ring.c '#include <rte_ring.h>' '#include "moirai/ring.h"' '#include "moirai/alloc.h"'
put rt/worker.c '#include "internal.h"' '#include "moirai/rt.h"' '#include <rte_rcu_qsbr.h>'
put net/ucx.c '#include "moirai/net.h"' '#include "moirai/rt.h"' '#include <ucp/api/ucp.h>'
# The one private header ring/ hands to net/ (PRIVATE_EXPORTS).
put ring/chan_backend.h '#include "moirai/ring.h"'
put net/chan.c '#include "../ring/chan_backend.h"'
put tools/moirai-x/main.c '#include <moirai.h>' '#include "x.h"' '#include <rte_ring.h>'
put tools/moirai-x/x.h '#include "moirai/ring.h"'
put tests/alloc/test_heap.c '#include "alloc_int.h"' '#include "internal.h"' '#include <numa.h>'
if ! $PY tools/layer-check.py "$tmp/t" >"$tmp/out"; then
	fail "a valid tree with rt/ and net/ was rejected:"
	cat "$tmp/out"
fi

# Each violation, with the words its report must carry.
put numa/up.c '#include "moirai/alloc.h"'
put rt/up.c '#include "moirai/net.h"'
put ring/peek.c '#include "../alloc/alloc_int.h"'
put tools/moirai-x/inside.c '#include "internal.h"'
put lib/hw.c '#include <hwloc.h>'
put alloc/dpdk.c '#include <rte_ring.h>'
put include/moirai/shm.h '#include "internal.h"'
put alloc/all.c '#include <moirai.h>'
put ring/typo.c '#include "rign_int.h"'
put sched/sched.c '#include "internal.h"'
put include/moirai/stray.h ''
put rt/backend.c '#include "../ring/chan_backend.h"'
$PY tools/layer-check.py "$tmp/t" >"$tmp/out"
rc=$?
[ "$rc" -eq 1 ] || fail "violations: exit $rc, want 1"
expect() { # file words
	grep -F "$1" "$tmp/out" | grep -qF "$2" || fail "not reported: $1 ($2)"
}
expect numa/up.c "numa may not use alloc, a later layer"
expect rt/up.c "rt may not use net, a later layer"
expect ring/peek.c "private header of alloc/"
expect tools/moirai-x/inside.c "tools use the public API only"
expect lib/hw.c "only numa/ may include it"
expect alloc/dpdk.c "only ring/ may include it"
expect include/moirai/shm.h "a public header includes private"
expect alloc/all.c "moirai.h includes every layer"
expect ring/typo.c "no such project header"
expect "sched/:" "does not know"
expect include/moirai/stray.h "no layer owns"
expect rt/backend.c "this one only with net/"
n=$(grep -vc '^layer-check:' "$tmp/out")
[ "$n" -eq 12 ] || {
	fail "want exactly the 12 violations, got $n:"
	cat "$tmp/out"
}

if [ "$fails" -ne 0 ]; then
	echo "layers: $fails failure(s)"
	exit 1
fi
echo "layers OK (tree clean; checker finds all 12 kinds of violation, accepts rt/ and net/)"
