#!/usr/bin/env bash
# Guest benchmark on plain QEMU (TCG): the bookworm PV kernel inside Cocoon,
# against the same kernel booted directly as a plain (non-Xen) guest.
# Prints one table. Timings are wall-clock nanoseconds measured by the guest;
# under TCG they vary from run to run: compare ratios, repeat for confidence.
# Set COCOON_BENCH_ICOUNT=1 to run QEMU with -icount shift=0 (instruction-
# counted virtual time: repeatable figures, not real speed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh >/dev/null
kernels=$(bash ci/fetch-kernels.sh)
fw=${COCOON_FIRMWARE:-$(bash ci/build-firmware.sh)}
init=$(bash ci/make-initramfs.sh bench)
k=$kernels/${COCOON_SUITE:-bookworm}/vmlinuz
icount=()
[ "${COCOON_BENCH_ICOUNT:-0}" = 1 ] && icount=(-icount shift=0)
common=(-accel tcg -cpu max -m 1024M -display none -no-reboot -monitor none
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${icount[@]}")
out=$(mktemp -d)
timeout 600 qemu-system-x86_64 "${common[@]}" -serial "file:$out/cocoon.log" \
  -kernel "$fw" -initrd "$k console=hvc0 quiet,$init" || true
timeout 600 qemu-system-x86_64 "${common[@]}" -serial "file:$out/native.log" \
  -kernel "$k" -append "console=ttyS0 quiet" -initrd "$init" || true
printf '%-16s %14s %14s %8s\n' metric "native ns/op" "cocoon ns/op" ratio
for m in null_syscall page_fault fork_exit_wait fork_exec pipe_pingpong mmap_munmap clock_gettime; do
  n=$(sed -n "s/.*BENCH metric=$m ns_per_op=\([0-9]*\).*/\1/p" "$out/native.log")
  c=$(sed -n "s/.*BENCH metric=$m ns_per_op=\([0-9]*\).*/\1/p" "$out/cocoon.log")
  r=$(awk -v a="${n:-0}" -v b="${c:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }')
  printf '%-16s %14s %14s %8s\n' "$m" "${n:--}" "${c:--}" "$r"
done
grep -h "COCOON-BENCH: userspace" "$out/native.log" "$out/cocoon.log" | sed 's/^/boot: /'
rm -rf "$out"
