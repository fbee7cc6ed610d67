#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# AF_XDP with a real client: a veth pair between two network namespaces of
# this test's own (nothing is attached to the host's interfaces), an XSK
# per RX queue on one end (build/tests/xdp/test_xsk --reflect, the wrapper
# of tools/moirai-pipeline/xsk.c), tcpreplay replaying tests/xdp/flows.pcap
# from the other end, and tcpdump there capturing what the sockets send
# back.  Asserts exact counts per flow at the socket and that the captured
# frames are exactly the sent ones, in order, checksums valid
# (tests/xdp/pcap-check.py); other frames on the link are ignored.
# Cases: SKB mode on one queue; auto mode (zero-copy, else driver, else
# SKB) on two queues.
#
# Skips (exit 77, with the reason) when not root, when network namespaces
# cannot be made (a container or chroot without them), or when XDP is
# unavailable.  The namespaces, links and processes go on every exit path.
set -u
BUILD=${MOIRAI_BUILD:-build}
BIN=$BUILD/tests/xdp/test_xsk
PCAP=tests/xdp/flows.pcap
CHECK=tests/xdp/pcap-check.py
EXPECT=175 # frames of the three flows in flows.pcap (gen-flows.py)
WAIT=${MOIRAI_XDP_TIMEOUT:-30}

skip() {
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "AF_XDP and network namespaces need root (run make check as root)"
for t in ip tcpreplay tcpdump python3 timeout; do
	command -v "$t" >/dev/null || {
		echo "FAIL: $t missing (tools/install-deps test installs it)"
		exit 1
	}
done
[ -x "$BIN" ] || {
	echo "FAIL: $BIN not built"
	exit 1
}

tmp=$(mktemp -d)
NS_TX=moirai-xdp-$$-tx # tcpreplay and tcpdump
NS_RX=moirai-xdp-$$-rx # the AF_XDP sockets
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	# deleting the namespaces deletes the veth pair with them
	ip netns del "$NS_TX" 2>/dev/null
	ip netns del "$NS_RX" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# wait_for FILE TEXT SECONDS: until FILE contains TEXT (bounded).
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# setup QUEUES: the two namespaces and the veth pair, both ends up.
setup() {
	local q=$1
	ip netns add "$NS_TX" 2>"$tmp/ns.err" || skip "cannot create a network namespace: $(cat "$tmp/ns.err")"
	ip netns add "$NS_RX" 2>"$tmp/ns.err" || skip "cannot create a network namespace: $(cat "$tmp/ns.err")"
	ip -n "$NS_TX" link add veth0 numtxqueues "$q" numrxqueues "$q" address 02:00:00:00:00:01 \
		type veth peer name veth1 netns "$NS_RX" numtxqueues "$q" numrxqueues "$q" \
		address 02:00:00:00:00:02 2>"$tmp/ns.err" || skip "cannot create a veth pair: $(cat "$tmp/ns.err")"
	for n in "$NS_TX" "$NS_RX"; do
		# fewer stray frames (router solicitations); they are ignored anyway
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		ip -n "$n" link set lo up
	done
	ip -n "$NS_TX" link set veth0 up && ip -n "$NS_RX" link set veth1 up ||
		skip "cannot bring the veth pair up"
}

teardown() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	pids=""
	ip netns del "$NS_TX" 2>/dev/null
	ip netns del "$NS_RX" 2>/dev/null
}

# run_case NAME MODE QUEUES
run_case() {
	local name=$1 mode=$2 q=$3 rrc tdp rp
	echo "---- $name: mode $mode, $q queue(s)"
	setup "$q"
	rm -f "$tmp"/*
	timeout -k 5 $((WAIT + 10)) ip netns exec "$NS_RX" "$BIN" --reflect veth1 --expect "$EXPECT" \
		--mode "$mode" --timeout "$WAIT" >"$tmp/reflect.out" 2>"$tmp/reflect.err" &
	rp=$!
	pids="$pids $rp"
	timeout -k 5 $((WAIT + 10)) ip netns exec "$NS_TX" tcpdump -i veth0 -Q in -U -nn -Z root \
		-w "$tmp/cap.pcap" udp >/dev/null 2>"$tmp/tcpdump.err" &
	tdp=$!
	pids="$pids $tdp"
	for f in reflect.out:ready tcpdump.err:listening; do
		if ! wait_for "$tmp/${f%%:*}" "${f#*:}" "$WAIT"; then
			# the reflector may have ended: XDP unavailable is a skip
			if ! kill -0 "$rp" 2>/dev/null; then
				wait "$rp"
				rrc=$?
				pids=${pids/ $rp/}
				[ "$rrc" -eq 77 ] && skip "XDP unavailable: $(cat "$tmp/reflect.err")"
			fi
			fail "$name: ${f%%:*} not ready after ${WAIT}s"
			cat "$tmp/reflect.err" "$tmp/tcpdump.err"
			teardown
			return
		fi
	done
	sed 's/^/    /' "$tmp/reflect.out"
	ip netns exec "$NS_TX" timeout "$WAIT" tcpreplay -i veth0 --topspeed "$PCAP" >"$tmp/replay.out" 2>&1 ||
		fail "$name: tcpreplay failed: $(tail -n 3 "$tmp/replay.out")"
	grep -q "Actual: $EXPECT packets" "$tmp/replay.out" ||
		fail "$name: tcpreplay did not send $EXPECT packets: $(grep Actual "$tmp/replay.out")"
	wait "$rp"
	rrc=$?
	pids=${pids/ $rp/}
	sed -n '/^port\|^rx_test\|^queue/s/^/    /p' "$tmp/reflect.out"
	[ "$rrc" -eq 0 ] || fail "$name: the reflector exited $rrc: $(cat "$tmp/reflect.err")"
	grep -qx "port 9001 100" "$tmp/reflect.out" || fail "$name: port 9001 count"
	grep -qx "port 9002 50" "$tmp/reflect.out" || fail "$name: port 9002 count"
	grep -qx "port 9003 25" "$tmp/reflect.out" || fail "$name: port 9003 count"
	grep -q "^rx_test $EXPECT .* tx $EXPECT tx_fail 0$" "$tmp/reflect.out" ||
		fail "$name: reflector totals"
	[ "$(grep -c "^socket veth1 queue" "$tmp/reflect.out")" -eq "$q" ] ||
		fail "$name: want one socket per RX queue ($q)"
	# Every reflected frame completed before the reflector exited, so it
	# is on the wire; tcpdump has it once its capture counter says so.
	for ((i = 0; i < WAIT * 10; i++)); do
		[ -s "$tmp/cap.pcap" ] && [ "$(python3 "$CHECK" "$tmp/cap.pcap" "$PCAP" 2>/dev/null |
			sed -n 's/^test frames \([0-9]*\).*/\1/p')" = "$EXPECT" ] && break
		sleep 0.1
	done
	kill "$tdp" 2>/dev/null
	wait "$tdp"
	pids=${pids/ $tdp/}
	if python3 "$CHECK" "$tmp/cap.pcap" "$PCAP" >"$tmp/check.out" 2>&1; then
		sed 's/^/    /' "$tmp/check.out"
	else
		fail "$name: captured frames differ from the sent ones"
		sed 's/^/    /' "$tmp/check.out"
	fi
	teardown
}

run_case "skb" skb 1
run_case "auto" auto 2

[ "$fails" -eq 0 ] && echo "xsk veth: all cases passed"
[ "$fails" -eq 0 ]
