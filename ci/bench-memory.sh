#!/usr/bin/env bash
# Cocoon's memory footprint: the guest's MemTotal inside Cocoon against the
# same kernel booted directly by QEMU, at the same -m, and Cocoon's own
# breakdown from its boot log. The goal (issue 13): at most 2 MiB + 1% of RAM.
#   ci/bench-memory.sh [SIZES...]   (default: 512M 4G)
# COCOON_SUITE picks the kernel (default bookworm, the cloud kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh >&2
K=$(bash ci/fetch-kernels.sh)/${COCOON_SUITE:-bookworm}/vmlinuz
FW=$(bash ci/build-firmware.sh)
INIT=$(bash ci/make-initramfs.sh meminfo)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(512M 4G)
log=target/bench-memory
mkdir -p "$log"

qemu() { # NAME MEM ARGS...: run, print the serial log's path
  local name=$1 mem=$2
  shift 2
  timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -display none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial "file:$log/$name.log" "$@" >/dev/null 2>&1 || true
}
memtotal() { sed -n 's/.*COCOON-MEM: MemTotal: \([0-9]*\) kB.*/\1/p' "$1" | head -1; }

printf '%-8s %14s %14s %12s %14s %8s\n' "-m" "direct (kB)" "Cocoon (kB)" "cost (kB)" "goal (kB)" "result"
for m in "${sizes[@]}"; do
  qemu "direct-$m" "$m" -kernel "$K" -initrd "$INIT" -append "console=ttyS0 panic=-1"
  qemu "cocoon-$m" "$m" -kernel "$FW" -initrd "$K console=hvc0,$INIT"
  d=$(memtotal "$log/direct-$m.log")
  c=$(memtotal "$log/cocoon-$m.log")
  [ -n "$d" ] && [ -n "$c" ] || { echo "$m: no MemTotal (logs in $log)"; exit 1; }
  ram_kb=$(( $(numfmt --from=iec "$m") / 1024 ))
  goal=$((2048 + ram_kb / 100))
  cost=$((d - c))
  printf '%-8s %14d %14d %12d %14d %8s\n' "$m" "$d" "$c" "$cost" "$goal" "$([ $cost -le $goal ] && echo ok || echo over)"
  grep -o 'Cocoon keeps.*' "$log/cocoon-$m.log" | head -1 | sed 's/^/         /'
done
