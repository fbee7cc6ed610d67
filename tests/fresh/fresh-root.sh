#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Proves that tools/install-deps is complete: what README tells a new user
# to do works on an empty Debian 12 machine.  Builds a minimal Debian 12
# root with debootstrap (minbase plus git, make and sudo: what a user has
# before README), clones this repository's HEAD into it, and runs README's
# commands there as an ordinary user with sudo:
#
#   1. make run      must install the runtime and build classes by itself,
#                    build, and run; the test class must still be absent.
#   2. make check    must install the test class by itself and pass.
#   3. a second empty root gets only `tools/install-deps runtime` and the
#      tools and library from `make install`: they must run there.
#
# The roots have their own /usr and dpkg database, and the commands run with
# an empty environment, so nothing installed on the host can help them: the
# earlier failure was a package installed by hand on the CI machine.
#
# usage: tests/fresh/fresh-root.sh [--keep] [-- COMMAND...]
#   --keep            leave the roots in $MOIRAI_FRESH_DIR (default build/fresh)
#   -- COMMAND...     run COMMAND (as the user, in the clone) instead of 1-3
#   MOIRAI_FRESH_MIRROR, MOIRAI_FRESH_SECURITY   Debian and security mirrors
#                     (default: the ones this host's apt uses)
# Needs root (debootstrap, chroot, mounts).  Exit status: 0 all passed,
# 1 a step failed (its output is shown), 2 bad usage or environment.
#
# Everything that mounts runs in a private mount namespace (unshare -m):
# the bind mounts of /dev and /sys are never visible outside it and vanish
# with it on every exit path, so deleting the roots cannot reach the host's
# /dev.  The trap unmounts them too, in order.
set -euo pipefail

SUITE=bookworm
me=fresh-root
say() { printf '%s: %s\n' "$me" "$*" >&2; }
usage_error() {
	say "$*"
	exit 2
}
elapsed() { echo "$(($(date +%s) - $1))s"; }

cd "$(dirname "$0")/../.."
REPO=$(pwd)
DIR=${MOIRAI_FRESH_DIR:-$REPO/build/fresh}
ROOT=$DIR/root     # make run + make check
RTROOT=$DIR/rtroot # runtime class only
USER_NAME=dev
CLONE=/home/$USER_NAME/moirai

# ---- inside the private mount namespace ---------------------------------
if [ "${1:-}" = "--inner" ]; then
	shift
	keep=$1
	shift

	mounted=() # mount points, in mount order
	cleanup() {
		rc=$?
		trap - EXIT INT TERM
		# End what is still running inside a root (a daemon a package
		# started, a test that hung): only our own descendants live there.
		for r in "$ROOT" "$RTROOT"; do
			for p in /proc/[0-9]*; do
				[ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] && kill -9 "${p#/proc/}" 2>/dev/null
			done
		done
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
			umount -R "${mounted[i]}" 2>/dev/null || umount -R -l "${mounted[i]}" ||
				say "cannot unmount ${mounted[i]}"
		done
		exit "$rc"
	}
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	mount_api() { # ROOT: /proc, /sys, /dev (and a private /dev/shm) for a chroot
		# (mount and record apart: set -e must see a failed mount)
		mount -t proc proc "$1/proc"
		mounted+=("$1/proc")
		mount --rbind /sys "$1/sys"
		mounted+=("$1/sys")
		mount --rbind /dev "$1/dev"
		mounted+=("$1/dev")
		# A tmpfs of its own: the tests' shm segments stay out of the host's.
		mount -t tmpfs -o mode=1777,nosuid,nodev shm "$1/dev/shm"
		mounted+=("$1/dev/shm")
	}

	# as_user ROOT COMMAND: run a shell command as the user, in the clone,
	# with nothing of this process's environment.
	as_user() {
		chroot --userspec="$USER_NAME:$USER_NAME" "$1" \
			/usr/bin/env -i HOME="/home/$USER_NAME" USER="$USER_NAME" LOGNAME="$USER_NAME" \
			PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TERM=dumb \
			/bin/bash -c "cd $CLONE 2>/dev/null || cd; $2"
	}

	# step NAME ROOT COMMAND: one checked step, timed, with its log on failure.
	step() {
		local name=$1 root=$2 cmd=$3 t log
		log=$DIR/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log
		t=$(date +%s)
		say "---- $name"
		if as_user "$root" "$cmd" >"$log" 2>&1; then
			say "     ok ($(elapsed "$t"))"
		else
			local rc=$?
			say "     FAILED (exit $rc after $(elapsed "$t")): $cmd"
			tail -n 60 "$log" | sed 's/^/     | /' >&2
			say "     full log: $log"
			exit 1
		fi
	}

	# ---- the empty root
	t0=$(date +%s)
	include=git,make,sudo
	case "$MIRROR$SECURITY" in *https:*) include=$include,ca-certificates ;; esac
	say "debootstrap $SUITE (minbase + $include) from $MIRROR"
	debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT" "$MIRROR" \
		>"$DIR/debootstrap.log" 2>&1 || {
		tail -n 30 "$DIR/debootstrap.log" >&2
		say "debootstrap failed (log: $DIR/debootstrap.log)"
		exit 1
	}
	{
		echo "deb $MIRROR $SUITE main"
		echo "deb $MIRROR $SUITE-updates main"
		[ -z "$SECURITY" ] || echo "deb $SECURITY $SUITE-security main"
	} >"$ROOT/etc/apt/sources.list"
	# The host's way of reaching its mirror (proxy, snapshot validity),
	# and nothing else of its configuration.
	apt-config dump Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until \
		Acquire::Check-Date | grep -E '^Acquire::' >"$ROOT/etc/apt/apt.conf.d/99fresh-root" || true
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" # packages start no services
	chmod 755 "$ROOT/usr/sbin/policy-rc.d"
	printf '127.0.0.1 localhost %s\n' "$(hostname)" >"$ROOT/etc/hosts"
	chroot "$ROOT" useradd -m -s /bin/bash "$USER_NAME"
	echo "$USER_NAME ALL=(ALL) NOPASSWD: ALL" >"$ROOT/etc/sudoers.d/$USER_NAME"
	chmod 440 "$ROOT/etc/sudoers.d/$USER_NAME"
	# The runtime-only root starts from the same empty system.
	cp -a "$ROOT" "$RTROOT"
	empty_mb=$(du -smx "$ROOT" | cut -f1)
	say "empty roots ready ($(elapsed "$t0"); $empty_mb MB each)"

	# ---- the clone, as a user gets it and nothing beside it: the tests'
	# data (tests/data/topologies) is in the repository.
	git clone -q --no-checkout "$REPO" "$ROOT$CLONE"
	git -C "$ROOT$CLONE" checkout -q --detach "$HEAD"
	mkdir -p "$RTROOT$CLONE/tools"
	cp "$ROOT$CLONE/tools/install-deps" "$RTROOT$CLONE/tools/"
	chroot "$ROOT" chown -R "$USER_NAME:$USER_NAME" "/home/$USER_NAME"
	chroot "$RTROOT" chown -R "$USER_NAME:$USER_NAME" "/home/$USER_NAME"

	mount_api "$ROOT"
	mount_api "$RTROOT"

	if [ "$#" -gt 0 ]; then
		step "custom command" "$ROOT" "$*"
		exit 0
	fi

	# The root must start without the project's packages, or it proves
	# nothing (and the classes must each be missing something).
	step "the root starts empty" "$ROOT" \
		'! tools/install-deps --check runtime && ! tools/install-deps --check build &&
		 ! tools/install-deps --check test && ! command -v cc && ! test -e /usr/include/hwloc.h'

	step "make run (README)" "$ROOT" 'make run && test -x build/bin/moirai-topo'
	say "     root now $(du -smx "$ROOT" | cut -f1) MB"
	step "make run installed runtime + build, not test" "$ROOT" \
		'tools/install-deps --check runtime build || exit 1
		 if tools/install-deps --check test; then echo "make run installed the test class"; exit 1; fi'
	step "make check (README)" "$ROOT" 'make check'
	say "     root now $(du -smx "$ROOT" | cut -f1) MB"
	step "every class installed" "$ROOT" 'tools/install-deps --check all'

	# ---- runtime class alone: what a user of the installed tools needs
	step "make install" "$ROOT" 'make install DESTDIR=$HOME/stage PREFIX=/usr/local >/dev/null'
	cp -a "$ROOT/home/$USER_NAME/stage/usr/local/." "$RTROOT/usr/local/"
	chroot "$RTROOT" ldconfig
	step "runtime root: install-deps runtime" "$RTROOT" \
		'tools/install-deps runtime && ! tools/install-deps --check build'
	say "     runtime root now $(du -smx "$RTROOT" | cut -f1) MB (empty: $empty_mb MB)"
	step "runtime root: the installed tools and library run" "$RTROOT" '
		set -e
		moirai-topo --plan all
		moirai-topo --synthetic "pack:2 numa:2 core:2 pu:1" --plan 4 --policy spread
		moirai-topo --alloc-stats
		moirai-shm-demo run 20000 64 --burst 8
		moirai-pipeline --duration 0.2 --rate 20000 --quiet
		printf "<?xml version=\"1.0\"?>\n<topology><object type=\"Mach" >/tmp/cut.xml
		rc=0; moirai-topo --input /tmp/cut.xml 2>/tmp/err || rc=$?
		cat /tmp/err; test "$rc" -eq 2
		! ldd /usr/local/lib/libmoirai.so | grep "not found"
		! ldd /usr/local/bin/moirai-topo /usr/local/bin/moirai-shm-demo \
			/usr/local/bin/moirai-pipeline | grep "not found"'
	say "all steps passed ($(elapsed "$t0") in the namespace)"
	exit 0
fi

# ---- on the host --------------------------------------------------------
keep=0
while [ "$#" -gt 0 ]; do
	case "$1" in
	--keep) keep=1 ;;
	--)
		shift
		break
		;;
	-h | --help)
		sed -n '4,27s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) usage_error "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

[ "$(id -u)" -eq 0 ] || usage_error "needs root (debootstrap, chroot and mounts)"
command -v debootstrap >/dev/null || usage_error "debootstrap missing: run tools/install-deps test"
command -v unshare >/dev/null || usage_error "unshare (util-linux) missing"

# apt_uri SUITE: the first Debian URI this host's apt uses for SUITE.
apt_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822: one paragraph per source; the first deb URI whose Suites
		# has SUITE, unless the paragraph says Enabled: no.
		awk -v suite="$1" 'BEGIN { RS = ""; FS = "\n" }
			{ uri = ""; ok = 0; deb = 0; off = 0
			  for (i = 1; i <= NF; i++) {
				l = $i; if (l ~ /^#/) continue
				if (l ~ /^URIs:/) { split(substr(l, 6), u, " "); uri = u[1] }
				if (l ~ /^Types:/ && l ~ /(^|[ \t])deb([ \t]|$)/) deb = 1
				if (l ~ /^Enabled:[ \t]*no/) off = 1
				if (l ~ /^Suites:/) { n = split(substr(l, 8), s, " ")
					for (j = 1; j <= n; j++) if (s[j] == suite) ok = 1 } }
			  if (ok && deb && !off && uri != "") { print uri; exit } }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$1" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while (i <= NF && $i !~ /\]$/) i++
			if ($2 ~ /^\[/) i++; if ($(i + 1) == suite) { print $i; exit } }' "$f"
	done
}
MIRROR=${MOIRAI_FRESH_MIRROR:-$(apt_uri "$SUITE" | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${MOIRAI_FRESH_SECURITY:-$(apt_uri "$SUITE-security" | head -n 1)}

HEAD=$(git rev-parse HEAD) || usage_error "not a git checkout: $REPO"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	say "note: testing commit ${HEAD:0:12}; uncommitted changes are not in the clone"
fi

# No process may still run in an old root before it is deleted.
busy() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case "$r" in "$DIR"/*) return 0 ;; esac
	done
	return 1
}
remove_roots() {
	! busy || {
		say "a process still runs inside $DIR: not deleting it"
		return 1
	}
	# In this (host) namespace nothing is ever mounted under $DIR, so
	# --one-file-system only guards against the impossible.
	if grep -q " ${DIR}/" /proc/self/mountinfo; then
		say "something is mounted under $DIR: not deleting it"
		return 1
	fi
	rm -rf --one-file-system "$ROOT" "$RTROOT"
}

mkdir -p "$DIR"
remove_roots || exit 1
rm -f "$DIR"/*.log

export MIRROR SECURITY HEAD
rc=0
start=$(date +%s)
unshare --mount --propagation private -- "$0" --inner "$keep" "$@" || rc=$?
say "wall time $(elapsed "$start") (exit $rc)"
if [ "$keep" -eq 0 ]; then
	t=$(date +%s)
	remove_roots || rc=1
	say "removed the roots ($(elapsed "$t"))"
else
	say "kept $ROOT and $RTROOT"
fi
exit "$rc"
