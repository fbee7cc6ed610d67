#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# AF_XDP with a real client: a veth pair between two network namespaces of
# this test's own (tests/xdp/netns.sh; nothing is attached to the host's
# interfaces), an XSK per RX queue on one end (build/tests/xdp/test_xsk
# --reflect, the wrapper of tools/moirai-pipeline/xsk.c), tcpreplay
# replaying tests/xdp/flows.pcap from the other end, and tcpdump there
# capturing what the sockets send back.  Asserts exact counts per flow at
# the socket and that the captured frames are exactly the sent ones, in
# order, checksums valid (tests/xdp/pcap-check.py); other frames on the
# link are ignored.  Cases: SKB mode on one queue; auto mode (zero-copy,
# else driver, else SKB) on two queues.
#
# Skips (exit 77, with the reason) when not root, when network namespaces
# cannot be made (a container or chroot without them), or when XDP is
# unavailable.  The namespaces, links and processes go on every exit path.
set -u
BUILD=${MOIRAI_BUILD:-build}
BIN=$BUILD/tests/xdp/test_xsk
EXPECT=175 # frames of the three flows in flows.pcap (gen-flows.py)
WAIT=${MOIRAI_XDP_TIMEOUT:-30}
. tests/xdp/netns.sh

xdp_require_root
[ -x "$BIN" ] || {
	echo "FAIL: $BIN not built"
	exit 1
}

# run_case NAME MODE QUEUES
run_case() {
	local name=$1 mode=$2 q=$3 rrc rp tdp f i
	echo "---- $name: mode $mode, $q queue(s)"
	xdp_setup "$q"
	rm -f "$tmp"/*
	xdp_bg rp timeout -k 5 $((WAIT + 10)) ip netns exec "$NS_RX" "$BIN" --reflect veth1 \
		--expect "$EXPECT" --mode "$mode" --timeout "$WAIT" >"$tmp/reflect.out" 2>"$tmp/reflect.err"
	xdp_bg tdp timeout -k 5 $((WAIT + 10)) ip netns exec "$NS_TX" tcpdump -i veth0 -Q in -U -nn \
		-Z root -w "$tmp/cap.pcap" udp >/dev/null 2>"$tmp/tcpdump.err"
	for f in reflect.out:ready tcpdump.err:listening; do
		if ! xdp_wait_for "$tmp/${f%%:*}" "${f#*:}" "$WAIT"; then
			# the reflector may have ended: XDP unavailable is a skip
			if ! kill -0 "$rp" 2>/dev/null; then
				xdp_reap "$rp"
				[ $? -eq 77 ] && xdp_skip "XDP unavailable: $(cat "$tmp/reflect.err")"
			fi
			fail "$name: ${f%%:*} not ready after ${WAIT}s"
			cat "$tmp/reflect.err" "$tmp/tcpdump.err"
			xdp_teardown
			return
		fi
	done
	sed 's/^/    /' "$tmp/reflect.out"
	ip netns exec "$NS_TX" timeout "$WAIT" tcpreplay -i veth0 --topspeed "$XDP_PCAP" \
		>"$tmp/replay.out" 2>&1 || fail "$name: tcpreplay failed: $(tail -n 3 "$tmp/replay.out")"
	grep -q "Actual: $EXPECT packets" "$tmp/replay.out" ||
		fail "$name: tcpreplay did not send $EXPECT packets: $(grep Actual "$tmp/replay.out")"
	xdp_reap "$rp"
	rrc=$?
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
	# is on the wire; wait (bounded) until tcpdump has written them all.
	for ((i = 0; i < WAIT * 10; i++)); do
		[ "$(xdp_capture_count "$tmp/cap.pcap")" = "$EXPECT" ] && break
		sleep 0.1
	done
	kill "$tdp" 2>/dev/null
	xdp_reap "$tdp"
	if python3 "$XDP_CHECK" "$tmp/cap.pcap" "$XDP_PCAP" >"$tmp/check.out" 2>&1; then
		sed 's/^/    /' "$tmp/check.out"
	else
		fail "$name: captured frames differ from the sent ones"
		sed 's/^/    /' "$tmp/check.out"
	fi
	xdp_teardown
}

run_case "skb" skb 1
run_case "auto" auto 2

[ "$fails" -eq 0 ] && echo "xsk veth: all cases passed"
[ "$fails" -eq 0 ]
