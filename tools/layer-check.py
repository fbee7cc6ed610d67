#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Checks the include direction between moirai's layers (docs/architecture.md).

    tools/layer-check.py [ROOT]      (default: the repository this file is in)

Every #include of every .c and .h file is checked against one table, LAYERS
below; nothing else encodes the layering:
  - a module (lib/ numa/ alloc/ ring/ rt/ net/) includes public headers of its
    own layer or the layers before it, its own private headers, and of the
    other modules' private headers only lib's shared plumbing (SHARED_PRIVATE)
    and the few a module hands to named later layers (PRIVATE_EXPORTS);
  - a public header (include/moirai/) includes public headers of its own layer
    or before, never a private header;
  - a third-party header that a layer claims (hwloc, libnuma, DPDK, UCX) is
    included only by that layer's module and public headers;
  - tools/ include the public API only (and headers of their own directory,
    and the shared tools/*.h);
  - tests/ may include anything of the project.
A directory of C sources or a public header the table does not know is an
error too, so the table stays complete as modules are added.  Exit status:
0 clean, 1 violations (one line each), 2 bad usage.
"""
import fnmatch
import os
import re
import sys

# The layers, in order: each may use only the layers before it.
#   (module directory, public headers it owns in include/moirai/,
#    third-party headers only it may include)
LAYERS = [
    ("lib", ["base.h", "version.h", "hist.h"], []),
    ("numa", ["numa.h"], ["hwloc.h", "hwloc/*", "numa.h", "numaif.h"]),
    ("alloc", ["alloc.h"], []),
    ("ring", ["ring.h", "ring_inline.h", "channel.h", "pool.h", "pool_inline.h", "shm.h"],
     ["rte_*"]),
    ("rt", ["rt.h", "rt_inline.h", "task.h", "poller.h"], ["rte_rcu_*"]),
    ("net", ["net.h", "net_*.h"], ["ucp/*", "ucs/*", "uct/*"]),
]
# Private headers every module may include: the plumbing of lib/ that the
# other layers share (error recording and logging, the futex event count,
# intrusive lists, fault injection).  Any other private header stays inside
# its module.
SHARED_PRIVATE = {"lib/internal.h", "lib/waitq.h", "lib/list.h", "lib/fault.h"}
# Private headers a module hands to named later layers only, each with the
# reason: a seam that must stay out of the installed API but that a later
# layer has to fill in, because the earlier one may not call it.
PRIVATE_EXPORTS = {
    # The moirai_chan backend table: moirai_chan_* (ring/) call into net/
    # through it, so that a network endpoint is a struct moirai_chan
    # (net/net_chan.c) without ring/ including net/.
    "ring/chan_backend.h": {"net"},
}
UMBRELLA = "include/moirai.h"  # includes every layer: for tools and users
# Directories that hold C sources but are not modules.
NOT_MODULES = {"include", "tools", "tests", "docs", "man", ".git"}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def layer_index(module):
    for i, (name, _, _) in enumerate(LAYERS):
        if name == module:
            return i
    return None


def public_owner(name):
    """Layer index owning include/moirai/NAME, or None."""
    for i, (_, headers, _) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in headers):
            return i
    return None


def external_owners(header):
    """Layer indexes that claim third-party HEADER (empty: anyone may)."""
    return [i for i, (_, _, ext) in enumerate(LAYERS)
            if any(fnmatch.fnmatchcase(header, pattern) for pattern in ext)]


def source_files(root):
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        dirs[:] = sorted(d for d in dirs
                         if not (rel == "." and (d.startswith("build") or d in (".git",))))
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.normpath(os.path.join(rel, f))


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        if len(argv) == 2 and argv[1] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        print("layer-check: usage: tools/layer-check.py [ROOT]", file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(__file__), "..")
    if not os.path.isdir(root):
        print(f"layer-check: no such directory: {root}", file=sys.stderr)
        return 2
    root = os.path.abspath(root)
    files = list(source_files(root))
    fileset = set(files)
    errors = []

    # The table must know every module directory and every public header.
    for d in sorted({f.split(os.sep)[0] for f in files if os.sep in f}):
        if d not in NOT_MODULES and layer_index(d) is None:
            errors.append(f"{d}/: a directory of C sources that LAYERS in "
                          f"tools/layer-check.py does not know")
    for hdr, users in sorted(PRIVATE_EXPORTS.items()):
        owner = layer_index(hdr.split("/")[0])
        for u in sorted(users):
            if owner is None or layer_index(u) is None or layer_index(u) <= owner:
                errors.append(f"{hdr}: PRIVATE_EXPORTS hands it to {u}/, which is not a "
                              f"later layer")
    for f in files:
        if f.startswith("include/moirai/") and public_owner(f[len("include/moirai/"):]) is None:
            errors.append(f"{f}: a public header no layer owns (add it to LAYERS)")

    def resolve(src, name, quoted):
        """Project path of an included file, or None for a system header."""
        if not quoted:
            if name == "moirai.h" or name.startswith("moirai/"):
                return os.path.normpath("include/" + name)
            return None
        # Like the compiler: the including file's directory, then -I paths
        # (include/ and lib/ for everything, the module dirs for tests).
        candidates = [os.path.join(os.path.dirname(src), name), "include/" + name,
                      "lib/" + name, "tests/common/" + name]
        candidates += [f"{m}/{name}" for m, _, _ in LAYERS]
        for c in candidates:
            c = os.path.normpath(c)
            if c in fileset:
                return c
        return "?"

    for f in files:
        top = f.split(os.sep)[0]
        if f.startswith("include/"):
            kind = "umbrella" if f == UMBRELLA else "public"
            me = public_owner(f[len("include/moirai/"):]) if kind == "public" else None
        elif top == "tools":
            kind, me = "tool", None
        elif top == "tests":
            kind, me = "test", None
        else:
            kind, me = "module", layer_index(top)
        if kind in ("public", "module") and me is None:
            continue  # already reported above
        try:
            with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except OSError as e:
            errors.append(f"{f}: cannot read: {e}")
            continue
        for lineno, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            quoted, name = m.group(1) == '"', m.group(2)
            close = '"' if quoted else ">"
            where = f"{f}:{lineno}: #include {m.group(1)}{name}{close}"
            target = resolve(f, name, quoted)
            if target == "?":
                errors.append(f"{where}: no such project header")
                continue
            if target is None:  # third-party or system header
                owners = external_owners(name)
                if owners and kind in ("public", "module") and me not in owners:
                    names = ", ".join(LAYERS[i][0] + "/" for i in owners)
                    errors.append(f"{where}: only {names} may include it "
                                  f"(here: {LAYERS[me][0]})")
                continue
            if kind == "test":
                continue
            if target == UMBRELLA:
                if kind != "tool":
                    errors.append(f"{where}: moirai.h includes every layer; "
                                  f"include the module headers this layer may use")
                continue
            if target.startswith("include/moirai/"):
                owner = public_owner(target[len("include/moirai/"):])
                if owner is None:
                    continue  # reported above
                if kind in ("public", "module") and owner > me:
                    errors.append(f"{where}: {LAYERS[me][0]} may not use "
                                  f"{LAYERS[owner][0]}, a later layer")
                continue
            # A private header: of a module, of a tool or of the tests.
            ttop = target.split(os.sep)[0]
            if kind == "umbrella" or kind == "public":
                errors.append(f"{where}: a public header includes private {target}")
            elif kind == "tool":
                # tools/*.h (no directory of their own) are shared by the tools.
                if os.path.dirname(target) not in (os.path.dirname(f), "tools"):
                    errors.append(f"{where}: tools use the public API only, not {target}")
            elif (ttop != top and target not in SHARED_PRIVATE
                  and top not in PRIVATE_EXPORTS.get(target, ())):
                only = PRIVATE_EXPORTS.get(target)
                errors.append(f"{where}: private header of {ttop}/ (shared are only "
                              f"{', '.join(sorted(SHARED_PRIVATE))}"
                              + (f"; this one only with {', '.join(sorted(only))}/)"
                                 if only else ")"))

    for e in errors:
        print(e)
    if errors:
        print(f"layer-check: {len(errors)} violation(s)")
        return 1
    print(f"layer-check: {len(files)} files, include direction OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
