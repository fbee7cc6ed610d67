# SPDX-License-Identifier: BSD-3-Clause
#
# Shared by the tests that run peers on two "hosts" (tests/*/test_*.sh):
# sourced, never run.  Two network namespaces joined by one veth pair,
# addresses inside the namespaces only.  Each test keeps its own idea of a
# skip (a pass, or exit 77) and its own traps; how the pair is made, and
# that whatever runs in the namespaces dies with them, lives here once.
#
# Before `. tests/common/netns.sh`: $A and $B (namespace names), $VA and
# $VB (the veth ends, put in $A and $B), $me (the test's name), $tmp, and
# a function skip MESSAGE that does not return.
# (AF_XDP's tests have their own, bash, topology: tests/xdp/netns.sh.)

# Every process left in namespace NS (the peers, under timeout), by pid.
netns_kill() { # NS
	for p in $(ip netns pids "$1" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null
	done
}

# For the test's cleanup, on every exit path: safe when nothing was made.
netns_remove() {
	netns_kill "$A"
	netns_kill "$B"
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
}

# $A and $B joined by $VA/$VB with ADDR_A and ADDR_B (/24), lo up in both.
# Skips where namespaces or veth pairs cannot be had (not root, no ip, a
# chroot that cannot mount /sys); exits 1 when a made pair cannot be set up.
netns_pair() { # ADDR_A ADDR_B
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and veth pairs)"
	command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
	if ! ip netns add "$A" 2>"$tmp/err"; then
		skip "cannot create a network namespace: $(cat "$tmp/err")"
	fi
	ip netns add "$B" || skip "cannot create a second network namespace"
	if ! ip link add "$VA" type veth peer name "$VB" 2>"$tmp/err"; then
		skip "cannot create a veth pair: $(cat "$tmp/err")"
	fi
	ip link set "$VA" netns "$A" && ip link set "$VB" netns "$B" &&
		ip -n "$A" addr add "$1/24" dev "$VA" &&
		ip -n "$B" addr add "$2/24" dev "$VB" &&
		ip -n "$A" link set "$VA" up && ip -n "$B" link set "$VB" up &&
		ip -n "$A" link set lo up && ip -n "$B" link set lo up ||
		{
			echo "$me: cannot configure the veth pair"
			exit 1
		}
	# Entering a namespace mounts /sys afresh: a chroot may not allow it.
	if ! ip netns exec "$A" true 2>"$tmp/err"; then
		skip "cannot enter a network namespace: $(cat "$tmp/err")"
	fi
}
