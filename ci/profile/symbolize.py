#!/usr/bin/env python3
"""Sum a tbprof.c profile by function (ci/profile.sh).

  symbolize.py --elf COCOON [--kallsyms MAP] [--base PROFILE --ops N] [--top K] [--direct] PROFILE

Cocoon's blocks are named from the ELF's symbols (nm), the guest kernel's
from MAP (lines of /proc/kallsyms) when given, and everything else is
summed as the guest kernel or guest user space. With --base, the figures
are PROFILE minus the base profile, divided by N: per operation when the
two runs differ only in N more operations.
"""
import argparse
import bisect
import collections
import subprocess

KERNEL = 0xFFFFFFFF80000000  # the PV kernel's image and modules (not Cocoon's slots)


def symbols(lines):
    syms = []
    for line in lines:
        p = line.split()
        if len(p) >= 3 and p[1] in "tTwW":
            try:
                syms.append((int(p[0], 16), p[2]))
            except ValueError:
                pass
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def load(path):
    blocks = collections.Counter()
    with open(path) as f:
        for line in f:
            pc, insns, runs = line.split()
            blocks[int(pc, 16)] += int(insns) * int(runs)
    return blocks


def by_function(blocks, cocoon, guest):
    out = collections.Counter()
    for pc, n in blocks.items():
        if pc >= KERNEL:
            table, prefix = guest, "guest "
        elif pc >= 0x800000000000:
            table, prefix = cocoon, ""
        else:
            out["(guest user space)"] += n
            continue
        addrs, names = table
        i = bisect.bisect_right(addrs, pc) - 1
        out[prefix + (names[i] if i >= 0 else "(no symbol)")] += n
    return out


def group(name):
    if name.startswith("guest "):
        return "guest kernel"
    return name.strip("()") if name.startswith("(guest user space") else "Cocoon"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elf", required=True)
    ap.add_argument("--kallsyms")
    ap.add_argument("--base")
    ap.add_argument("--ops", type=float, default=1)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--direct", action="store_true", help="a direct boot: no Cocoon; its decompressor runs low")
    ap.add_argument("profile")
    a = ap.parse_args()
    nm = subprocess.run(["nm", "-C", a.elf], capture_output=True, text=True, check=True).stdout
    cocoon = symbols(nm.splitlines())
    guest = symbols(open(a.kallsyms)) if a.kallsyms else ([], [])
    run = by_function(load(a.profile), cocoon, guest)
    if a.base:
        run.subtract(by_function(load(a.base), cocoon, guest))
    rows = {k: v / a.ops for k, v in run.items()}
    if a.direct and "(guest user space)" in rows:
        rows["(guest user space, and the kernel's decompressor)"] = rows.pop("(guest user space)")
    groups = collections.Counter()
    for k, v in rows.items():
        groups[group(k)] += v
    print("%14s  %s" % ("instructions", "where" + (" (per operation)" if a.base else "")))
    for k, v in sorted(groups.items(), key=lambda kv: -kv[1]):
        print("%14.0f  %s" % (v, "total: " + k))
    for k, v in sorted(rows.items(), key=lambda kv: -kv[1])[: a.top]:
        print("%14.0f  %s" % (v, k[:120]))


if __name__ == "__main__":
    main()
