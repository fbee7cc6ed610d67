# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the AF_XDP tests (bash): skips, two network namespaces of the
# test's own joined by veth pairs, background processes, and cleanup on
# every exit path.  Nothing is attached to the host's interfaces: the
# sockets live in NS_RX, tcpreplay and tcpdump in NS_TX.
#
#   xdp_require_root           skip (exit 77) unless root; fail on missing tools
#   xdp_setup QUEUES           the namespaces, veth0 (NS_TX) <-> veth1 (NS_RX)
#   xdp_add_pair A B QUEUES    one more pair: A in NS_TX, B in NS_RX
#   xdp_bg VAR COMMAND...      start COMMAND in the background, its pid in VAR
#   xdp_reap PID               wait for a background pid; its status in $?
#   xdp_teardown               end the background processes, delete namespaces
#   xdp_wait_for FILE TEXT S   until FILE contains TEXT, at most S seconds
#   xdp_capture_count PCAP SENT [pcap-check options]: test frames captured
# The caller sets BUILD and uses $tmp (made here) for its files.

NS_TX=moirai-xdp-$$-tx
NS_RX=moirai-xdp-$$-rx
XDP_PCAP=tests/xdp/flows.pcap
XDP_CHECK=tests/xdp/pcap-check.py
xdp_pids=""
tmp=$(mktemp -d)
fails=0

xdp_skip() {
	echo "SKIP: $*"
	exit 77
}

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

xdp_teardown() {
	local p
	for p in $xdp_pids; do kill "$p" 2>/dev/null; done
	for p in $xdp_pids; do wait "$p" 2>/dev/null; done
	xdp_pids=""
	# deleting a namespace deletes its end of every veth pair, and the pair
	ip netns del "$NS_TX" 2>/dev/null
	ip netns del "$NS_RX" 2>/dev/null
}

xdp_cleanup() {
	xdp_teardown
	rm -rf "$tmp"
}
trap xdp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

xdp_require_root() {
	local t
	[ "$(id -u)" -eq 0 ] || xdp_skip "AF_XDP and network namespaces need root (run make check as root)"
	for t in ip tcpreplay tcpdump python3 timeout; do
		command -v "$t" >/dev/null || {
			echo "FAIL: $t missing (tools/install-deps test installs it)"
			exit 1
		}
	done
}

# xdp_add_pair A B QUEUES
xdp_add_pair() {
	ip -n "$NS_TX" link add "$1" numtxqueues "$3" numrxqueues "$3" type veth \
		peer name "$2" netns "$NS_RX" numtxqueues "$3" numrxqueues "$3" 2>"$tmp/ns.err" ||
		xdp_skip "cannot create a veth pair: $(cat "$tmp/ns.err")"
	ip -n "$NS_TX" link set "$1" up && ip -n "$NS_RX" link set "$2" up ||
		xdp_skip "cannot bring the veth pair up"
}

# xdp_setup QUEUES: veth0 02:00:00:00:00:01 in NS_TX, veth1 02:00:00:00:00:02
# in NS_RX (the MACs of flows.pcap).
xdp_setup() {
	local n
	ip netns add "$NS_TX" 2>"$tmp/ns.err" || xdp_skip "cannot create a network namespace: $(cat "$tmp/ns.err")"
	ip netns add "$NS_RX" 2>"$tmp/ns.err" || xdp_skip "cannot create a network namespace: $(cat "$tmp/ns.err")"
	for n in "$NS_TX" "$NS_RX"; do
		# fewer stray frames (router solicitations); they are ignored anyway
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		ip netns exec "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
		ip -n "$n" link set lo up
	done
	xdp_add_pair veth0 veth1 "$1"
	ip -n "$NS_TX" link set veth0 address 02:00:00:00:00:01
	ip -n "$NS_RX" link set veth1 address 02:00:00:00:00:02
}

# xdp_bg VAR COMMAND...: COMMAND in the background; VAR gets its pid.
xdp_bg() {
	local var=$1
	shift
	"$@" &
	xdp_pids="$xdp_pids $!"
	printf -v "$var" '%s' "$!"
}

# xdp_reap PID: wait for it and return its status.
xdp_reap() {
	local rc
	wait "$1"
	rc=$?
	xdp_pids=${xdp_pids/ $1/}
	return "$rc"
}

xdp_wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# xdp_capture_count PCAP [pcap-check options]: test frames in PCAP so far.
xdp_capture_count() {
	local f=$1
	shift
	[ -s "$f" ] || {
		echo 0
		return
	}
	python3 "$XDP_CHECK" "$@" "$f" "$XDP_PCAP" 2>/dev/null | sed -n 's/^test frames \([0-9]*\).*/\1/p'
}
