#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# moirai-bench's contract (docs/bench.md), not its numbers: exit 0/1/2,
# one stderr line on bad usage, suites without cases refused, and JSON
# with every documented field.  Each run is a tiny --quick slice (a few
# seconds in all): benchmarks proper stay out of make check.
set -u
. "$(dirname "$0")/../common/cli.sh"
BENCH=$BUILD/bin/moirai-bench

grep_check() { # description pattern file
	if ! grep -q -- "$2" "$3"; then
		echo "FAIL: $1: no '$2' in"; cat "$3"; fails=$((fails + 1))
	fi
}

expect_status 0 "--help" "$BENCH" --help
for s in ring alloc sched net all; do
	grep_check "--help lists $s" "^    $s " "$tmp/out"
done
expect_status 0 "--version" "$BENCH" --version

# Suites listed without cases, unknown suites and bad options: exit 2.
# (The sched suite has cases: tests/tools/test_bench_sched.sh.)
expect_status 0 "net --list" "$BENCH" net --list
for c in lat_b1 tput_b1 tput_b32; do
	for i in moirai ucx_perftest tcp_socket; do
		grep_check "net lists $c/$i" "$c.*$i" "$tmp/out"
	done
done
expect_status 2 "unknown suite" "$BENCH" nosuch
expect_status 2 "missing suite" "$BENCH"
expect_status 2 "bad option" "$BENCH" ring --nosuch
expect_status 2 "two suites" "$BENCH" ring alloc
expect_status 2 "repeats 0" "$BENCH" ring --repeats 0
expect_status 2 "repeats junk" "$BENCH" ring --repeats 3x
expect_status 2 "repeats without value" "$BENCH" ring --repeats
expect_status 2 "filter matches nothing" "$BENCH" ring --case nosuchcase
expect_status 0 "list" "$BENCH" all --list
grep_check "list shows the out-of-line impl" "moirai_outline" "$tmp/out"

# Ring: repeats, spread, ratio, machine metadata.
expect_status 0 "ring json" "$BENCH" ring --quick --case single_thread_b8 --repeats 3 --json
json_check "machine fields" "all(k in d['machine'] for k in ('moirai_version','commit','commit_source','cpu_model','cpus','cpus_online','cpus_usable','cores','cores_usable','numa_nodes','kernel','thp','compiler','quick','iteration_divisor','repeats','warmup','order','started','duration_s','loadavg_start','loadavg_end')) and d['suite']=='ring' and d['machine']['quick'] is True and d['machine']['repeats']==3 and len(d['machine']['loadavg_start'])==3"
# "cores" are physical cores, as moirai-topo counts them, not logical CPUs.
topo_cores=$("$BUILD/bin/moirai-topo" --json | $PY -c "import json,sys; d=json.load(sys.stdin); print(d['cores'])")
json_check "physical cores: moirai-topo's $topo_cores, at most the CPUs" \
	"d['machine']['cores'] == $topo_cores and 0 < d['machine']['cores_usable'] <= d['machine']['cores'] <= d['machine']['cpus_online'] and d['machine']['cores_usable'] <= d['machine']['cpus_usable']"
json_check "ring results" "sorted(r['impl'] for r in d['results'])==['ck_ring','moirai','moirai_outline','rte_ring'] and all(r['repeats']==3 and len(r['ns_per_op_samples'])==3 and r['ns_per_op_min']<=r['ns_per_op']<=r['ns_per_op_max'] and r['ops']>0 for r in d['results'])"
json_check "ratios against moirai" "all(('ratio' in r)==(r['impl']!='moirai') and ('paired_ratio' in r)==(r['impl']!='moirai') for r in d['results']) and all(r['paired_ratio_min']<=r['paired_ratio']<=r['paired_ratio_max'] for r in d['results'] if 'ratio' in r) and all(isinstance(r['ratio_significant'],bool) for r in d['results'] if 'ratio' in r) and d['skipped']==[] and d['failed']==[]"
expect_status 0 "ring table" "$BENCH" ring --quick --case single_thread_b32 --repeats 1
grep_check "table shows spread" "\[[0-9.]*-[0-9.]*\]" "$tmp/out"
grep_check "one repeat is untested" "x?" "$tmp/out"

# Latency percentiles where measured.
expect_status 0 "pingpong json" "$BENCH" ring --quick --case pingpong_spin --impl moirai --repeats 1 --json
json_check "latency fields" "len(d['results'])==1 and all(r['p50_ns_min']<=r['p50_ns']<=r['p50_ns_max'] and 0<r['p50_ns']<=r['p99_ns']<=r['p999_ns'] for r in d['results'])"

# Allocator: a fresh process per measurement, peak RSS; 10^6 sets full only.
expect_status 0 "alloc live set" "$BENCH" alloc --quick --case live_10k_1thr --impl moirai --repeats 2 --json
json_check "live set result" "len(d['results'])==1 and all(r['ops']==1000000 and r['repeats']==2 and r['peak_rss_kb_min']<=r['peak_rss_kb']<=r['peak_rss_kb_max'] and r['peak_rss_kb']>5000 for r in d['results'])"
expect_status 0 "alloc 1m quick" "$BENCH" alloc --quick --case live_1m_1thr --impl glibc --json
json_check "1m skipped in quick runs" "d['results']==[] and len(d['skipped'])==1 and 'full runs only' in d['skipped'][0]['reason']"

cli_finish "moirai-bench CLI"
