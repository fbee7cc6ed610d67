#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# `make run`: the main job.  Shows this machine as moirai sees it and the
# pinning plan its workers would get, the same planner on a foreign 4-node
# machine (so the NUMA decisions are visible even on a 1-node box), the
# allocator's per-node arenas, and two processes talking through the
# shared-memory transport.
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
echo
echo "== The allocator's node arenas after one probe per node (moirai-topo --alloc-stats)"
"$BIN/moirai-topo" --alloc-stats | sed -n '/^Allocator/,$p'
echo
echo "== Two processes exchanging 200000 x 64 B zero-copy messages over shared memory"
echo "   (moirai-shm-demo run 200000 64 --burst 32; equal checksums = exactly once, in order)"
"$BIN/moirai-shm-demo" run 200000 64 --burst 32
