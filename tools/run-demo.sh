#!/bin/sh
# `make run`: the main job.  Shows this machine as moirai sees it and the
# pinning plan its workers would get, then the same planner on a foreign
# 4-node machine, so the NUMA decisions are visible even on a 1-node box.
set -eu
BUILD=${1:-build}
BIN=$BUILD/bin

echo "== This machine (moirai-topo --plan all)"
"$BIN/moirai-topo" --plan all
echo
echo "== A 2-package, 4-node machine with SMT, spread policy, 4 workers"
echo "   (moirai-topo --synthetic 'pack:2 numa:2 l3:1 core:4 pu:2' --plan 4 --policy spread)"
"$BIN/moirai-topo" --synthetic 'pack:2 numa:2 l3:1 core:4 pu:2' --plan 4 --policy spread |
	sed -n '/^Plan:/,$p'
for extra in "$BUILD"/bin/moirai-demo "$BUILD"/bin/moirai-shm-demo; do
	[ -x "$extra" ] || continue
	echo
	echo "== $(basename "$extra")"
	"$extra" --quick || exit 1
done
