#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# `make run`: the main job.  Shows this machine as moirai sees it and the
# pinning plan its workers get, then runs the packet pipeline
# (moirai-pipeline, docs/pipeline.md) on the built-in generator twice on
# the same seeded traffic, with the priority runtime and with the FIFO
# baseline on the same cores, and ends with the side-by-side latency table
# of the critical flow.  --load 0.8: a background flood that keeps the
# workers busy four fifths of the time, so packets queue and the order in
# which they are served shows (at 0.3 the workers idle and the two runs
# look the same: docs/pipeline.md "make run").  MOIRAI_RUN_ARGS replaces the pipeline's options;
# MOIRAI_RUN_DURATION (seconds, default 3) shortens the default run only,
# so that tests/tools/test_run_demo.sh checks this output with these
# options in a bounded time.
set -eu
BUILD=${1:-build}
BIN=$BUILD/bin
ARGS=${MOIRAI_RUN_ARGS:---compare --duration ${MOIRAI_RUN_DURATION:-3} --load 0.8 --fast-ns 2000}

echo "== This machine (moirai-topo --plan all)"
"$BIN/moirai-topo" --plan all
echo
echo "== The pipeline: generator -> RX -> classify -> process -> TX, priority runtime vs FIFO"
echo "   (moirai-pipeline $ARGS)"
# shellcheck disable=SC2086
"$BIN/moirai-pipeline" $ARGS
