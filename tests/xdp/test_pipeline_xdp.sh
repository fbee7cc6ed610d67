#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-pipeline through AF_XDP with a real client: tcpreplay replays
# tests/xdp/flows.pcap into a veth pair between two network namespaces of
# the test's own (tests/xdp/netns.sh), the pipeline runs on the other end
# with --iface, and tcpdump captures on the replaying side what the
# pipeline transmits back.  Asserts, counting only the test's own flows:
# exactly 100, 50 and 25 frames per flow out of the pipeline (its JSON,
# --per-flow) and on the wire, each sent frame exactly once with the TTL
# lowered by one, the MACs of the default route (dst 02:00:00:00:00:01,
# src 02:00:00:00:00:fe) and valid IPv4 and UDP checksums, nothing lost.
# Cases: SKB mode on one queue back out of the same interface; auto mode
# on two queues out of a second veth pair (--tx-iface).  The pipeline runs
# until SIGINT, sent once the capture holds every frame.
#
# Before that, as a user without capabilities (setpriv; so nothing is
# attached anywhere): --iface lo is refused with exit 2 and a message
# naming the interface and root; a missing interface is exit 2 too.
#
# Skips (exit 77, with the reason) when not root, when network namespaces
# cannot be made, or when XDP is unavailable.  Everything is removed on
# every exit path.
set -u
BUILD=${MOIRAI_BUILD:-build}
PL=$BUILD/bin/moirai-pipeline
EXPECT=175
WAIT=${MOIRAI_XDP_TIMEOUT:-30}
CHECK_OPTS="--ttl-dec 1 --macs 020000000001,0200000000fe --unordered"
. tests/xdp/netns.sh

xdp_require_root
[ -x "$PL" ] || {
	echo "FAIL: $PL not built"
	exit 1
}

# expect_bad NAME WANT-TEXT COMMAND...: exit 2, the text in its one stderr line.
expect_bad() {
	local name=$1 want=$2 rc
	shift 2
	"$@" --quiet >"$tmp/bad.out" 2>"$tmp/bad.err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		fail "$name: exit $rc, want 2: $(cat "$tmp/bad.err")"
	elif ! grep -qF -- "$want" "$tmp/bad.err"; then
		fail "$name: stderr lacks '$want': $(cat "$tmp/bad.err")"
	elif [ "$(wc -l <"$tmp/bad.err")" -ne 1 ]; then
		fail "$name: want one stderr line: $(cat "$tmp/bad.err")"
	else
		echo "ok: $name: $(cat "$tmp/bad.err")"
	fi
}

echo "---- refusals"
if command -v setpriv >/dev/null; then
	expect_bad "not root" "lo: AF_XDP needs root or CAP_NET_ADMIN/CAP_BPF" \
		setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		"$PL" --iface lo --workers 1
else
	fail "setpriv (util-linux) missing"
fi
expect_bad "no such interface" "mxdp-none0: no such network interface" \
	"$PL" --iface mxdp-none0 --workers 1
expect_bad "bad mode" "--xdp-mode: 'native'" "$PL" --iface lo --xdp-mode native
expect_bad "mode without an interface" "--xdp-mode applies to --iface" "$PL" --xdp-mode skb

# run_case NAME MODE QUEUES TX: TX is "same" (back out of veth1) or "pair"
# (--tx-iface veth2, captured on its peer veth3).
run_case() {
	local name=$1 mode=$2 q=$3 tx=$4 pp tdp prc i capif=veth0 txopt=()
	echo "---- $name: mode $mode, $q queue(s), TX $tx"
	xdp_setup "$q"
	if [ "$tx" = pair ]; then
		xdp_add_pair veth3 veth2 1
		capif=veth3
		txopt=(--tx-iface veth2)
	fi
	rm -f "$tmp"/*
	xdp_bg tdp timeout -k 5 $((WAIT * 2)) ip netns exec "$NS_TX" tcpdump -i "$capif" -Q in -U \
		-nn -Z root -w "$tmp/cap.pcap" udp >/dev/null 2>"$tmp/tcpdump.err"
	xdp_bg pp timeout -k 5 $((WAIT * 2)) ip netns exec "$NS_RX" "$PL" --iface veth1 \
		"${txopt[@]}" --xdp-mode "$mode" --workers 2 --per-flow --json --quiet \
		>"$tmp/pl.json" 2>"$tmp/pl.err"
	if ! xdp_wait_for "$tmp/tcpdump.err" listening "$WAIT"; then
		fail "$name: tcpdump not ready after ${WAIT}s: $(cat "$tmp/tcpdump.err")"
		xdp_teardown
		return
	fi
	# The sockets are bound when the pipeline says so: frames that come
	# before its RX poller runs wait in their RX rings.
	if ! xdp_wait_for "$tmp/pl.err" "AF_XDP on veth1" "$WAIT"; then
		if ! kill -0 "$pp" 2>/dev/null; then
			xdp_reap "$pp"
			prc=$?
			if [ "$prc" -eq 2 ] && grep -q "XDP is unavailable\|AF_XDP sockets are not available" "$tmp/pl.err"; then
				xdp_skip "XDP unavailable: $(cat "$tmp/pl.err")"
			fi
		fi
		fail "$name: the pipeline's sockets not ready after ${WAIT}s: $(cat "$tmp/pl.err")"
		xdp_teardown
		return
	fi
	ip netns exec "$NS_TX" timeout "$WAIT" tcpreplay -i veth0 --topspeed "$XDP_PCAP" \
		>"$tmp/replay.out" 2>&1 || fail "$name: tcpreplay failed: $(tail -n 3 "$tmp/replay.out")"
	grep -q "Actual: $EXPECT packets" "$tmp/replay.out" ||
		fail "$name: tcpreplay did not send $EXPECT packets: $(grep Actual "$tmp/replay.out")"
	# Until every test frame is back on the wire (bounded), then stop the
	# pipeline as a person would, with SIGINT.
	for ((i = 0; i < WAIT * 10; i++)); do
		[ "$(xdp_capture_count "$tmp/cap.pcap" $CHECK_OPTS)" = "$EXPECT" ] && break
		sleep 0.1
	done
	kill -INT "$pp"
	xdp_reap "$pp"
	prc=$?
	sed 's/^/    /' "$tmp/pl.err"
	[ "$prc" -eq 0 ] || fail "$name: moirai-pipeline exited $prc"
	grep -q "mode $([ "$mode" = auto ] && echo '[a-z]*' || echo "$mode")," "$tmp/pl.err" ||
		fail "$name: no mode line"
	grep -q "AF_XDP on veth1: $q RX queue" "$tmp/pl.err" || fail "$name: want $q RX queues"
	if ! python3 - "$tmp/pl.json" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
flows = {f["dport"]: f["packets"] for f in d["flows"] if 9000 <= f["dport"] <= 9063}
want = {9001: 100, 9002: 50, 9003: 25}
ok = flows == want and d["lost"] == 0 and d["buffers_leaked"] == 0 and d["drops"]["tx_full"] == 0
print(f"    pipeline: in {d['packets_in']} out {d['packets_out']} lost {d['lost']} "
      f"test flows {flows} source {d['source']} sink {d['sink']}")
sys.exit(0 if ok and d["source"] == "xdp" and d["sink"] == "xdp" else 1)
EOF
		fail "$name: the pipeline's JSON (flows 100/50/25, nothing lost, xdp -> xdp)"
	fi
	sleep 0.2 # (frames the pipeline might have sent beyond the expected)
	kill "$tdp" 2>/dev/null
	xdp_reap "$tdp"
	# shellcheck disable=SC2086
	if python3 "$XDP_CHECK" $CHECK_OPTS "$tmp/cap.pcap" "$XDP_PCAP" >"$tmp/check.out" 2>&1; then
		sed 's/^/    /' "$tmp/check.out"
	else
		fail "$name: what the pipeline sent is not what it should have"
		sed 's/^/    /' "$tmp/check.out"
	fi
	xdp_teardown
}

run_case "skb, same interface" skb 1 same
run_case "auto, --tx-iface" auto 2 pair

[ "$fails" -eq 0 ] && echo "pipeline xdp: all cases passed"
[ "$fails" -eq 0 ]
