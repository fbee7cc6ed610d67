#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Network channels between two "hosts": network namespaces joined by a veth
# pair (addresses exist inside the namespaces only), one process per
# namespace (tests/net/test_net in peer mode), UCX's TCP transport:
#   1. 10^6 messages from two senders (bursts of 1..32) with exact-once and
#      per-sender order checks (scaled down under sanitizers, scaled by
#      MOIRAI_TEST_SCALE), the second sender coalescing its sends;
#   2. variable-length messages in bursts, contents checked, coalesced;
#   3. a sender killed (SIGKILL) mid-stream: the receiver gets -ECONNRESET
#      after an in-order prefix, and a new sender connects to the same
#      listener afterwards;
#   4. the same stream over loopback inside one namespace, with UCX's own
#      choice of transports (shared memory where it offers one).
# Needs root and network namespaces: without them it says why and passes
# (skipped).  Every process has a timeout; the namespaces are removed on
# every exit path.
set -u
BUILD=${MOIRAI_BUILD:-build}
BIN=$BUILD/tests/net/test_net
me=test_net_netns

skip() {
	echo "$me: SKIP: $*"
	exit 0
}

[ -x "$BIN" ] || { echo "$me: $BIN not built"; exit 1; }

A=moirai-net-$$-a
B=moirai-net-$$-b
VA=mn$$a
VB=mn$$b
PORT=13337
tmp=$(mktemp -d)
pids=""
. tests/common/netns.sh

cleanup() {
	for p in $pids; do
		kill -9 "$p" 2>/dev/null
	done
	netns_remove
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

netns_pair 10.233.0.1 10.233.0.2

scale=${MOIRAI_TEST_SCALE:-1}
case "${SAN:-}" in
thread) div=50 ;;
address) div=10 ;;
*) div=1 ;;
esac
N=$((500000 * scale / div)) # per sender: two senders, 10^6 in all
NV=$((20000 * scale / div))
fail=0

# run NAME NS TIMEOUT ARGS...: a peer in the background, its output in a file.
run() {
	name=$1 ns=$2 t=$3
	shift 3
	timeout -s KILL "$t" ip netns exec "$ns" "$BIN" "$@" >"$tmp/$name.out" 2>&1 &
	pids="$pids $!"
	eval "pid_$name=$!"
}
# check NAME: its exit status and last line
check() {
	eval "p=\$pid_$1"
	if wait "$p"; then
		echo "  $1: $(tail -n 1 "$tmp/$1.out")"
	else
		echo "$me: FAIL: $1 (exit $?):"
		sed 's/^/    /' "$tmp/$1.out"
		fail=1
	fi
}

echo "$me: 1. two senders x $N messages (the second coalesces), namespace $B -> $A over TCP"
start=$(date +%s)
run srv1 "$A" 120 --serve tcp://10.233.0.1:$PORT --senders 2 --count "$N"
run snd1a "$B" 120 --send tcp://10.233.0.1:$PORT --id 0 --count "$N" --burst 32
run snd1b "$B" 120 --send tcp://10.233.0.1:$PORT --id 1 --count "$N" --burst 32 --coalesce 16384
check snd1a
check snd1b
check srv1
echo "  ($(($(date +%s) - start)) s)"

echo "$me: 2. variable-length messages, $NV in bursts of 1..16, coalesced into 8 KiB"
run srv2 "$A" 120 --serve tcp://10.233.0.1:$((PORT + 1)) --senders 1 --count "$NV" --var
run snd2 "$B" 120 --send tcp://10.233.0.1:$((PORT + 1)) --id 3 --count "$NV" --var --burst 16 \
	--coalesce 8192
check snd2
check srv2

# (the reconnect uses a new port: the killed connection may hold the old one
# for a while; reconnecting to one listener is test_net.c's)
echo "$me: 3. a sender killed mid-stream, then a new connection"
run srv3 "$A" 120 --serve tcp://10.233.0.1:$((PORT + 2)) --senders 1 --count 1000000000 \
	--reset --progress "$tmp/progress"
run snd3 "$B" 120 --send tcp://10.233.0.1:$((PORT + 2)) --id 2 --count 1000000000 --burst 8
i=0
while [ ! -e "$tmp/progress" ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -e "$tmp/progress" ] || echo "$me: the receiver never got 10000 messages"
netns_kill "$B" # the sender (timeout's child) is the only process there
wait "$pid_snd3" 2>/dev/null
check srv3
run srv3b "$A" 120 --serve tcp://10.233.0.1:$((PORT + 3)) --senders 1 --count 1000
run snd3b "$B" 120 --send tcp://10.233.0.1:$((PORT + 3)) --id 4 --count 1000
check snd3b
check srv3b

echo "$me: 4. loopback inside namespace $A, UCX's own transports"
run srv4 "$A" 120 --serve tcp://127.0.0.1:$PORT --senders 1 --count "$N" --tls any
run snd4 "$A" 120 --send tcp://127.0.0.1:$PORT --id 5 --count "$N" --burst 32 --tls any
check snd4
check srv4

[ $fail -eq 0 ] && echo "$me: ok"
exit $fail
