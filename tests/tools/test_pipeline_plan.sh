#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-pipeline's plan options reach the plan its runtime runs: with
# --reserve, --reserve-per-node, --isolated, --policy, --smt and --near
# DEVICE its workers sit on exactly the CPUs moirai-topo plans for the same
# options (--reserve 1 leaves the first core out), the JSON "plan" object
# says what was asked, --isolated changes what the planner counts, and
# --near puts the workers of a foreign two-node topology (virtual
# placement) on the device's node; with --iface and no --near the
# interface is the device (as root, a veth named like the topology's NIC
# in a network namespace of the test's own).  Bad plan options exit 2
# with one line naming them.  Counts and CPUs only, never a time.
set -u
. "$(dirname "$0")/../common/cli.sh"
PL=$BUILD/bin/moirai-pipeline
TOPO=$BUILD/bin/moirai-topo
RUN="--duration 0.1 --rate 10000 --quiet --json"

# CPUs of moirai-topo's plan for some options ("" when it refuses them).
topo_pus() { # options...
	"$TOPO" --plan all "$@" --json 2>/dev/null |
		$PY -c "import json,sys; print(' '.join(str(w['pu']) for w in json.load(sys.stdin)['plan']['workers']))" 2>/dev/null
}

default_pus=$(topo_pus)
n=$(echo "$default_pus" | wc -w)
[ "$n" -ge 1 ] || fail "moirai-topo plans no worker"
for opts in "" "--reserve 1" "--reserve-per-node" "--isolated" "--policy spread" "--smt" \
	"--policy spread --reserve 1 --isolated"; do
	exp_pus=$(topo_pus $opts)
	if [ -z "$exp_pus" ]; then
		# The planner refuses them here (one usable core): so must the pipeline.
		expect_status 2 "pipeline $opts, refused by the planner" "$PL" $RUN $opts
		continue
	fi
	expect_status 0 "pipeline $opts" "$PL" $RUN $opts || continue
	json_check "$opts: workers on moirai-topo's CPUs ($exp_pus)" \
		"' '.join(str(w['pu']) for w in d['workers']) == '$exp_pus' and d['plan']['workers'] == len(d['workers']) and d['lost'] == 0"
done
if [ "$n" -ge 2 ]; then
	json_check "the plan object says what was asked" \
		"d['plan'] == {'policy': 'spread', 'smt': False, 'workers': len(d['workers']), 'reserve': 1, 'reserve_per_node': False, 'isolated': True, 'near': None, 'near_from_iface': False}"
	first=${default_pus%% *}
	expect_status 0 "--reserve 1" "$PL" $RUN --reserve 1 &&
		json_check "--reserve 1 leaves CPU $first (the first core) out" \
			"len(d['workers']) == $n - 1 and $first not in [w['pu'] for w in d['workers']] and d['plan']['reserve'] == 1"
	expect_status 0 "--reserve-per-node" "$PL" $RUN --reserve-per-node &&
		json_check "--reserve-per-node: in the plan object" "d['plan']['reserve_per_node'] is True"
else
	echo "note: one usable core, --reserve 1 cannot leave one out here"
fi
# --near: a device the live topology knows.
dev=$("$TOPO" --json | $PY -c "import json,sys; d=[x['name'] for x in json.load(sys.stdin)['devices'] if x['kind'] == 'network']; print(d[0] if d else '')")
if [ -n "$dev" ]; then
	exp_pus=$(topo_pus --near "$dev")
	expect_status 0 "--near $dev" "$PL" $RUN --near "$dev" &&
		json_check "--near $dev: moirai-topo's CPUs ($exp_pus), named in the plan" \
			"' '.join(str(w['pu']) for w in d['workers']) == '$exp_pus' and d['plan']['near'] == '$dev' and d['plan']['near_from_iface'] is False"
else
	echo "note: no network device with a node here, --near on the live machine not run"
fi

# What the planner counts: isolated CPUs are excluded unless --isolated.
expect_status 2 "one worker too many" "$PL" $RUN --workers $((n + 1))
grep -q "usable cores.*isolated CPUs excluded" "$tmp/err" || fail "too many workers: $(cat "$tmp/err")"
expect_status 2 "one worker too many, --isolated" "$PL" $RUN --workers $((n + 1)) --isolated
grep -q "isolated CPUs excluded" "$tmp/err" && fail "--isolated did not reach the planner: $(cat "$tmp/err")"
grep -q "plan options '--workers $((n + 1)) --isolated'" "$tmp/err" || fail "the message does not name the options: $(cat "$tmp/err")"

# Bad plan options: exit 2, one line naming them.
expect_status 2 "--near an unknown device" "$PL" $RUN --near nosuch0
grep -q "\-\-near nosuch0: .*no network device named 'nosuch0'" "$tmp/err" || fail "--near nosuch0: $(cat "$tmp/err")"
expect_status 2 "--near empty" "$PL" $RUN --near ""
expect_status 2 "--near without a value" "$PL" --near
expect_status 2 "--reserve 1.5" "$PL" $RUN --reserve 1.5
grep -q "reserve.*1.5" "$tmp/err" || fail "--reserve 1.5: $(cat "$tmp/err")"
expect_status 2 "--reserve -1" "$PL" $RUN --reserve -1
expect_status 2 "--reserve every core" "$PL" $RUN --reserve "$n"
grep -q "plan options '--reserve $n'.*after reserving housekeeping cores" "$tmp/err" || fail "--reserve $n: $(cat "$tmp/err")"
expect_status 2 "--reserve-per-node with an argument" "$PL" $RUN --reserve-per-node=1

# A foreign two-node topology (virtual placement): --near eth0 plans the
# workers on eth0's node (1) where compact would start at node 0.
X=tests/data/topologies/32em64t-2n8c2t-pci-normalio.xml
expect_status 0 "foreign topology" env MOIRAI_TOPOLOGY="$X" "$PL" $RUN --workers 2 &&
	json_check "foreign topology: compact plans node 0" "[w['plan_node'] for w in d['workers']] == [0, 0] and d['plan']['near'] is None"
expect_status 0 "foreign topology, --near eth0" env MOIRAI_TOPOLOGY="$X" "$PL" $RUN --workers 2 --near eth0 &&
	json_check "foreign topology, --near eth0: node 1" "[w['plan_node'] for w in d['workers']] == [1, 1] and d['plan']['near'] == 'eth0'"

# --iface defaults --near to the interface.  As root, in a network
# namespace of the test's own, a veth pair named eth0/eth1: the foreign
# topology knows an eth0 (node 1) and no veth-pl0.
NS=moirai-plan-$$
cleanup() { ip netns del "$NS" 2>/dev/null; }
cli_cleanup=cleanup
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1 && ip netns add "$NS" 2>/dev/null &&
	ip -n "$NS" link add eth0 type veth peer name veth-pl0 && ip -n "$NS" link set eth0 up &&
	ip -n "$NS" link set veth-pl0 up && ip netns exec "$NS" true 2>/dev/null; then
	for f in "eth0 1 True 'eth0'" "veth-pl0 0 False None"; do
		set -- $f
		expect_status 0 "--iface $1" ip netns exec "$NS" env MOIRAI_TOPOLOGY="$X" \
			timeout 60 "$PL" --iface "$1" --xdp-mode skb --workers 2 $RUN &&
			json_check "--iface $1: near $4, plan node $2" \
				"[w['plan_node'] for w in d['workers']] == [$2, $2] and d['plan']['near'] == $4 and d['plan']['near_from_iface'] is $3 and d['source'] == 'xdp'"
	done
else
	echo "note: not root or no network namespaces: --iface's default --near not run"
fi

cli_finish "pipeline plan options"
