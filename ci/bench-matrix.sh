#!/usr/bin/env bash
# The nested-Xen benchmark in interleaved rounds (issue 15): plain PV,
# pv-shim and Cocoon (as PVH) on one nested Xen, each row run
# COCOON_BENCH_ROUNDS times (default 3) in the order pv, pvshim, cocoon, pv,
# pvshim, cocoon, ..., so that the machine's load moves every row alike. For
# each row and guestbench operation it prints the median and the min-max of
# the rounds, and Cocoon's median over pv-shim's: a ratio from one run.
# Wall-clock under TCG: compare rows within a run, not runs with each other.
#   bash ci/bench-matrix.sh [trixie|bookworm|bullseye]   (default trixie: Xen 4.20)
# COCOON_BENCH_ROWS picks the rows (default "pv pvshim cocoon").
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-trixie}
rounds=${COCOON_BENCH_ROUNDS:-3}
rows=${COCOON_BENCH_ROWS:-pv pvshim cocoon}
out=target/bench-matrix-$suite.out
mkdir -p target
echo "== $rounds interleaved rounds of: $rows (Xen of $suite; log in $out)" >&2
COCOON_MATRIX_GUESTS="$rows" COCOON_MATRIX_ROUNDS=$rounds \
  COCOON_MATRIX_TIMEOUT=${COCOON_MATRIX_TIMEOUT:-$((900 + rounds * 700))} \
  bash ci/xen-matrix.sh "$suite" >"$out" 2>&1 || echo "(the matrix run reported a failure: see $out)" >&2
python3 - "target/xen-matrix/$suite/results" "$rows" <<'PY'
import re, statistics, sys
path, rows = sys.argv[1], sys.argv[2].split()
vals = {}  # (row, metric) -> [values]
for line in open(path, errors="replace"):
    m = re.search(r"guest=(\S+) bench metric=(\S+) ns_per_op=(\d+)", line)
    if m:
        vals.setdefault((m[1], m[2]), []).append(int(m[3]))
        continue
    m = re.search(r"guest=(\S+) result=(\S+) userspace_s=([0-9.]+)", line)
    if m and m[2] == "ok":
        vals.setdefault((m[1], "userspace_s"), []).append(float(m[3]))
metrics = ["userspace_s", "null_syscall", "page_fault", "fork_exit_wait", "fork_exec",
           "pipe_pingpong", "mmap_munmap", "clock_gettime"]
xen = re.search(r"xen=(\S+)", open(path, errors="replace").read())
print(f"Xen {xen[1] if xen else '?'}: median [min-max] over the rounds; ns per op, userspace_s in s")
print(f"{'metric':16}" + "".join(f"{r:>36}" for r in rows) + "   cocoon/pvshim")
def fmt(v):
    return f"{v:.1f}" if isinstance(v, float) else str(v)
for met in metrics:
    line = f"{met:16}"
    med = {}
    for r in rows:
        v = vals.get((r, met), [])
        if v:
            med[r] = statistics.median(v)
            line += f"{fmt(med[r]) + ' [' + fmt(min(v)) + '-' + fmt(max(v)) + '] n=' + str(len(v)):>36}"
        else:
            line += f"{'-':>36}"
    if "cocoon" in med and med.get("pvshim"):
        line += f"   {med['cocoon'] / med['pvshim']:.2f}"
    print(line)
PY
