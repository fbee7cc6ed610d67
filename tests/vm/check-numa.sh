#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# make check-numa: run the tests in tests/vm/tests.list inside a qemu guest
# with 4 NUMA nodes (one vCPU and 256 MiB each) and a non-uniform distance
# matrix, booted from the Debian kernel and a busybox initramfs.
#
#   tests/vm/check-numa.sh [BUILD]          (BUILD defaults to "build")
#
# Steps: resolve linux-image-amd64 to its real package with apt-cache,
# `apt-get download` it once and keep only vmlinuz in the cache; pack busybox,
# tests/vm/init, each listed test binary and the shared libraries ldd lists
# into an initramfs; boot with KVM if it comes up within a short timeout,
# else with TCG; parse the per-test results the guest prints on its serial
# console.  Exit 0 only if every listed test ran and passed.
#
# Environment:
#   MOIRAI_VM_TIMEOUT=300       whole run, seconds (download + boot + tests)
#   MOIRAI_VM_KVM_TIMEOUT=15    seconds KVM gets to reach the guest's /init
#   MOIRAI_VM_ACCEL=auto        auto | kvm | tcg
#   MOIRAI_VM_CACHE=DIR         kernel cache (default /var/cache/moirai-vm
#                               if writable, else BUILD/vm/cache)
#   MOIRAI_VM_KERNEL=FILE       boot this bzImage, skip the download
#   MOIRAI_VM_KVM_CPU=host      -cpu model for the KVM attempt
#   MOIRAI_VM_LIST=FILE         run this list instead of tests/vm/tests.list
#   MOIRAI_VM_TEST_TIMEOUT=120  seconds per test inside the guest
#   MOIRAI_VM_VERBOSE=1         print the whole console log
set -uo pipefail

START=$(date +%s)
cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-build}
VMDIR=$BUILD/vm
LIST=${MOIRAI_VM_LIST:-tests/vm/tests.list}
TIMEOUT=${MOIRAI_VM_TIMEOUT:-300}
KVM_TIMEOUT=${MOIRAI_VM_KVM_TIMEOUT:-15}
ACCEL=${MOIRAI_VM_ACCEL:-auto}

# The guest's topology, defined once: qemu's -numa options and the
# MOIRAI_EXPECT_* variables the tests check are both derived from these.
NODES=4
NODE_MEM_MB=256
# Row i is node i's distance to nodes 0..3: 10 local, 20 to the node in
# the same pair, 30 across pairs (symmetric, as the ACPI SLIT must be).
DISTANCES="10,20,30,30;20,10,30,30;30,30,10,20;30,30,20,10"
HUGEPAGES=16 # 2 MiB pages reserved at boot, spread over the nodes

say() { printf 'vm: %s\n' "$*"; }
die() {
	printf 'vm: FAIL: %s\n' "$*" >&2
	say "0 passed, 1 failed"
	exit 1
}
remaining() {
	local r=$((TIMEOUT - ($(date +%s) - START)))

	echo $((r > 0 ? r : 1))
}

for tool in qemu-system-x86_64 busybox cpio ldd apt-get apt-cache dpkg-deb; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (run tools/install-deps)"
done
[ -f "$LIST" ] || die "$LIST missing"
mkdir -p "$VMDIR" || die "cannot create $VMDIR"

# ---- kernel ------------------------------------------------------------

pick_cache() {
	local d=${MOIRAI_VM_CACHE:-/var/cache/moirai-vm}

	if mkdir -p "$d" 2>/dev/null && [ -w "$d" ]; then
		echo "$d"
	else
		mkdir -p "$VMDIR/cache" && echo "$VMDIR/cache"
	fi
}

# linux-image-amd64 is a metapackage; its dependency is the package that
# holds vmlinuz (linux-image-6.1.0-N-amd64).
resolve_kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

fetch_kernel() {
	local cache pkg tmp deb

	cache=$(pick_cache) || die "no writable kernel cache directory"
	pkg=$(resolve_kernel_pkg)
	if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
		say "apt-cache does not know linux-image-amd64; apt-get update"
		timeout "$(remaining)" apt-get update -qq >/dev/null 2>&1
		pkg=$(resolve_kernel_pkg)
	fi
	if [ -n "$pkg" ] && [ -s "$cache/vmlinuz-${pkg#linux-image-}" ]; then
		KERNEL=$cache/vmlinuz-${pkg#linux-image-}
		return
	fi
	if [ -n "$pkg" ]; then
		say "downloading $pkg (vmlinuz only is kept, in $cache)"
		tmp=$(mktemp -d "$cache/dl.XXXXXX") || die "cannot write to $cache"
		# apt drops to user _apt for downloads; let it write there.
		chmod 755 "$tmp"
		chown _apt "$tmp" 2>/dev/null
		if (cd "$tmp" && timeout "$(remaining)" apt-get download -q "$pkg" \
			>download.log 2>&1); then
			deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
			# Extract /boot only: the modules are not needed (the
			# features the tests use are built in) and are 400 MB.
			if [ -n "$deb" ] && dpkg-deb --fsys-tarfile "$deb" |
				tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'; then
				mv "$tmp"/boot/vmlinuz-* "$cache/vmlinuz-${pkg#linux-image-}"
			fi
		else
			sed 's/^/    /' "$tmp/download.log" >&2
		fi
		rm -rf "$tmp"
		if [ -s "$cache/vmlinuz-${pkg#linux-image-}" ]; then
			KERNEL=$cache/vmlinuz-${pkg#linux-image-}
			return
		fi
	fi
	# Offline or unknown package: any kernel fetched before will do.
	KERNEL=$(ls -t "$cache"/vmlinuz-* 2>/dev/null | head -n 1)
	[ -n "$KERNEL" ] && say "using the cached $KERNEL"
}

if [ -n "${MOIRAI_VM_KERNEL:-}" ]; then
	KERNEL=$MOIRAI_VM_KERNEL
else
	KERNEL=
	fetch_kernel
fi
[ -n "$KERNEL" ] && [ -s "$KERNEL" ] ||
	die "no kernel: apt-get download of linux-image-amd64's package failed"
say "kernel $KERNEL"

# ---- initramfs ---------------------------------------------------------

ROOT=$VMDIR/root
INITRD=$VMDIR/initramfs.cpio
rm -rf "$ROOT"
mkdir -p "$ROOT/bin" "$ROOT/vm" "$ROOT/build" || die "cannot create $ROOT"

# Copy a file to the same absolute path under the root, following links.
copy_abs() {
	[ -e "$ROOT$1" ] && return 0
	mkdir -p "$ROOT$(dirname "$1")" && cp -L "$1" "$ROOT$1"
}

# Copy the shared libraries and the loader that ldd lists for $1.
copy_libs() {
	local lib

	# "libx.so.1 => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
	# a static binary prints "not a dynamic executable" and has none.
	for lib in $(ldd "$1" 2>/dev/null |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		copy_abs "$lib" || return 1
	done
	if ldd "$1" 2>/dev/null | grep -q '=> not found'; then
		ldd "$1" | grep 'not found' >&2
		return 1
	fi
}

cp -L "$(command -v busybox)" "$ROOT/bin/busybox" || die "cannot copy busybox"
copy_libs "$ROOT/bin/busybox" || die "cannot copy busybox's libraries"
cp tests/vm/init "$ROOT/init" && chmod 755 "$ROOT/init" "$ROOT/bin/busybox"

ntests=0
: >"$ROOT/vm/tests"
while read -r path args; do
	case "$path" in '' | '#'*) continue ;; esac
	# "mems=LIST path args": run inside a cgroup whose cpuset.mems is LIST.
	mems=-
	case "$path" in
	mems=*)
		mems=${path#mems=}
		path=${args%% *}
		case "$args" in *' '*) args=${args#* } ;; *) args= ;; esac
		;;
	esac
	bin=$BUILD/$path
	[ -x "$bin" ] || die "$bin (from $LIST) is not built"
	mkdir -p "$ROOT/build/$(dirname "$path")"
	cp "$bin" "$ROOT/build/$path" || die "cannot copy $bin"
	copy_libs "$bin" || die "cannot copy the libraries of $bin"
	printf '%s %s %s\n' "$mems" "$path" "$args" >>"$ROOT/vm/tests"
	ntests=$((ntests + 1))
done <"$LIST"
[ "$ntests" -gt 0 ] || die "$LIST lists no test"

cat >"$ROOT/vm/env" <<EOF
MOIRAI_VM=1
MOIRAI_EXPECT_NODES=$NODES
MOIRAI_EXPECT_DISTANCES="$DISTANCES"
MOIRAI_EXPECT_HUGEPAGES_2M=$HUGEPAGES
MOIRAI_VM_TEST_TIMEOUT=${MOIRAI_VM_TEST_TIMEOUT:-120}
EOF
[ -n "${MOIRAI_TEST_SCALE:-}" ] &&
	echo "MOIRAI_TEST_SCALE=$MOIRAI_TEST_SCALE" >>"$ROOT/vm/env"

(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
	>"$INITRD" || die "cpio failed"
say "initramfs $INITRD ($(($(stat -c %s "$INITRD") / 1024)) KiB, $ntests tests)"

# ---- qemu command line -------------------------------------------------

QEMU_NUMA=()
for ((n = 0; n < NODES; n++)); do
	QEMU_NUMA+=(-object "memory-backend-ram,id=mem$n,size=${NODE_MEM_MB}M"
		-numa "node,nodeid=$n,cpus=$n,memdev=mem$n")
done
IFS=';' read -r -a ROWS <<<"$DISTANCES"
[ "${#ROWS[@]}" -eq "$NODES" ] || die "DISTANCES has ${#ROWS[@]} rows, not $NODES"
for ((a = 0; a < NODES; a++)); do
	IFS=',' read -r -a COLS <<<"${ROWS[a]}"
	[ "${#COLS[@]}" -eq "$NODES" ] || die "DISTANCES row $a is not $NODES wide"
	for ((b = 0; b < NODES; b++)); do
		[ "$a" -ne "$b" ] &&
			QEMU_NUMA+=(-numa "dist,src=$a,dst=$b,val=${COLS[b]}")
	done
done

LOG=$VMDIR/console.log
QEMU_PID=

stop_qemu() {
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null
		sleep 0.5
		kill -9 "$QEMU_PID" 2>/dev/null
	fi
	QEMU_PID=
}
trap stop_qemu EXIT
trap 'stop_qemu; exit 130' INT TERM

# start_qemu ACCEL: boot in the background, console to $LOG.
start_qemu() {
	local accel_args

	if [ "$1" = kvm ]; then
		accel_args=(-accel kvm -cpu "${MOIRAI_VM_KVM_CPU:-host}")
	else
		# -cpu max: the tests are built with -msse4.2.
		accel_args=(-accel tcg -cpu max)
	fi
	: >"$LOG"
	qemu-system-x86_64 "${accel_args[@]}" \
		-machine q35 -smp "$NODES,sockets=$NODES,cores=1,threads=1" \
		-m "$((NODES * NODE_MEM_MB))M" "${QEMU_NUMA[@]}" \
		-kernel "$KERNEL" -initrd "$INITRD" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 hugepages=$HUGEPAGES" \
		-display none -monitor none -serial "file:$LOG" -no-reboot \
		-nodefaults -no-user-config \
		</dev/null >"$VMDIR/qemu.log" 2>&1 &
	QEMU_PID=$!
	# Liveness is polled with kill -0; disowning keeps bash from printing
	# "Aborted" when a KVM attempt dies (its error is in qemu.log).
	disown "$QEMU_PID"
}

# wait_for PATTERN SECONDS: 0 once $LOG has PATTERN, 1 if qemu exited
# first, 2 on timeout.
wait_for() {
	local deadline=$(($(date +%s) + $2))

	while :; do
		grep -q "$1" "$LOG" 2>/dev/null && return 0
		kill -0 "$QEMU_PID" 2>/dev/null || {
			grep -q "$1" "$LOG" 2>/dev/null && return 0
			return 1
		}
		[ "$(date +%s)" -ge "$deadline" ] && return 2
		sleep 0.2
	done
}

# boot ACCEL SECONDS: start qemu and wait for the guest's /init.
boot() {
	local t0 t1

	t0=$(date +%s.%N)
	start_qemu "$1"
	wait_for 'MOIRAI-VM: booted' "$2"
	local rc=$?
	t1=$(date +%s.%N)
	BOOT_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	return $rc
}

USED=
kvm_usable() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
if [ "$ACCEL" != tcg ] && kvm_usable; then
	limit=$KVM_TIMEOUT
	[ "$ACCEL" = kvm ] && limit=$(remaining)
	boot kvm "$limit"
	case $? in
	0) USED=kvm ;;
	1) say "KVM: qemu exited before the guest booted: $(tail -n 2 "$VMDIR/qemu.log" | tr '\n' ' ')" ;;
	2) say "KVM: guest did not reach /init within ${limit}s" ;;
	esac
	[ -z "$USED" ] && stop_qemu
elif [ "$ACCEL" = kvm ]; then
	die "MOIRAI_VM_ACCEL=kvm but /dev/kvm is not usable"
elif [ "$ACCEL" != tcg ]; then
	say "KVM: /dev/kvm is not usable by $(id -un)"
fi
if [ -z "$USED" ]; then
	[ "$ACCEL" = kvm ] && die "KVM did not boot the guest"
	say "using TCG (software emulation)"
	boot tcg "$(remaining)"
	case $? in
	0) USED=tcg ;;
	1) tail -n 30 "$LOG" "$VMDIR/qemu.log" >&2
	   die "qemu exited before the guest booted (log: $LOG)" ;;
	2) tail -n 30 "$LOG" >&2
	   die "timeout: guest did not boot within ${TIMEOUT}s (log: $LOG)" ;;
	esac
fi
guest_up=$(sed -n 's/.*MOIRAI-VM: booted uptime=\([0-9.]*\).*/\1/p' "$LOG" | head -n 1)
say "accel=$USED: booted to /init in ${BOOT_SECS}s (guest uptime ${guest_up}s)"

wait_for 'MOIRAI-VM: done' "$(remaining)"
finished=$?
[ $finished -eq 2 ] && say "FAIL: timeout: the tests did not finish within ${TIMEOUT}s overall"
# Give a finished guest a moment to power off, then make sure it is gone.
for _ in 1 2 3 4 5 6 7 8 9 10; do
	kill -0 "$QEMU_PID" 2>/dev/null || break
	sleep 0.2
done
stop_qemu

# ---- results -----------------------------------------------------------

sed -n 's/\r$//; s/^MOIRAI-VM: \(nodes=.*\)/vm: guest \1/p' "$LOG"

if [ "${MOIRAI_VM_VERBOSE:-0}" = 1 ]; then
	tr -d '\r' <"$LOG"
else
	# The tests' own output: everything after the boot marker.
	tr -d '\r' <"$LOG" | sed -n '/MOIRAI-VM: booted/,$p' |
		grep -v '^MOIRAI-VM: \(booted\|nodes=\|done\)\|reboot: Power down' |
		sed 's/^MOIRAI-VM: start [0-9]* \(.*\)/---- \1/; /^MOIRAI-VM: result/d'
fi

pass=0
fail=0
failed=
n=0
while read -r line; do
	n=$((n + 1))
	path=${line% }
	case "$path" in
	"- "*) path=${path#- } ;;
	*) path="${path#* } [cpuset.mems=${path%% *}]" ;;
	esac
	rc=$(tr -d '\r' <"$LOG" |
		sed -n "s/^MOIRAI-VM: result $n \([0-9]*\)\$/\1/p" | head -n 1)
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1))
		printf '  PASS  %s\n' "$path"
	else
		fail=$((fail + 1))
		failed="$failed '$path'"
		if [ -n "$rc" ]; then
			printf '  FAIL  %s (exit %s)\n' "$path" "$rc"
		else
			printf '  FAIL  %s (did not finish)\n' "$path"
		fi
	fi
done <"$ROOT/vm/tests"

if [ $finished -ne 0 ] && [ "$fail" -eq 0 ]; then
	# Every test reported but /init did not: count the guest itself.
	fail=1
	failed="$failed (guest)"
fi
[ -n "$failed" ] && say "failed:$failed (console log: $LOG)"
say "accel=$USED boot=${BOOT_SECS}s total=$(($(date +%s) - START))s"
say "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
