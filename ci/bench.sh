#!/usr/bin/env bash
# Guest benchmark on plain QEMU (TCG): the bookworm PV kernel inside Cocoon,
# against the same kernel booted directly as a plain (non-Xen) guest.
# Prints one table. Timings are wall-clock nanoseconds measured by the guest;
# under TCG they vary from run to run: compare ratios, repeat for confidence.
# Set COCOON_BENCH_ICOUNT=1 to run QEMU with -icount shift=0 (instruction-
# counted virtual time: repeatable figures, not real speed).
# COCOON_BENCH_GATE=FILE (with instruction counting) fails the run when a
# ratio is above the most FILE allows ("metric max-ratio" lines): ci/test.sh
# gates the goals issue 15 has reached with ci/bench-goals.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh >/dev/null
kernels=$(bash ci/fetch-kernels.sh)
fw=${COCOON_FIRMWARE:-$(bash ci/build-firmware.sh)}
init=$(bash ci/make-initramfs.sh bench)
k=$kernels/${COCOON_SUITE:-bookworm}/vmlinuz
icount=()
[ "${COCOON_BENCH_ICOUNT:-0}" = 1 ] && icount=(-icount shift=0)
# Both kernels run with norandmaps: where ASLR puts guestbench's 1 MiB
# mapping decides how many page tables it needs (mmap_munmap moved 136k-186k).
gate=${COCOON_BENCH_GATE:-}
if [ -n "$gate" ] && [ ${#icount[@]} = 0 ]; then
  echo "COCOON_BENCH_GATE needs COCOON_BENCH_ICOUNT=1 (wall-clock ratios move with the load)" >&2
  exit 2
fi
common=(-accel tcg -cpu max -m 1024M -display none -no-reboot -monitor none
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${icount[@]}")
out=$(mktemp -d)
timeout 600 qemu-system-x86_64 "${common[@]}" -serial "file:$out/cocoon.log" \
  -kernel "$fw" -initrd "$k console=hvc0 quiet norandmaps,$init" || true
timeout 600 qemu-system-x86_64 "${common[@]}" -serial "file:$out/native.log" \
  -kernel "$k" -append "console=ttyS0 quiet norandmaps" -initrd "$init" || true
# Boot to userspace: the TSC at /init's first command. Under instruction
# counting that is virtual ns since the machine started (instructions, and
# idle time), firmware, Cocoon and the kernel's own decompression included
# for both. (The kernel's uptime would not compare: the PV kernel's clock
# starts with Cocoon's, the direct kernel's after its decompression.)
boot_ns() { sed -n 's/.*COCOON-BENCH: tsc \([0-9]*\).*/\1/p' "$1" | head -1; }
declare -A ratio
printf '%-18s %14s %14s %8s\n' metric "native ns/op" "cocoon ns/op" ratio
for m in null_syscall page_fault fork_exit_wait fork_exec pipe_pingpong mmap_munmap clock_gettime boot_to_userspace; do
  if [ "$m" = boot_to_userspace ]; then
    n=$(boot_ns "$out/native.log")
    c=$(boot_ns "$out/cocoon.log")
  else
    n=$(sed -n "s/.*BENCH metric=$m ns_per_op=\([0-9]*\).*/\1/p" "$out/native.log")
    c=$(sed -n "s/.*BENCH metric=$m ns_per_op=\([0-9]*\).*/\1/p" "$out/cocoon.log")
  fi
  r=$(awk -v a="${n:-0}" -v b="${c:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }')
  ratio[$m]=$r
  printf '%-18s %14s %14s %8s\n' "$m" "${n:--}" "${c:--}" "$r"
done
grep -h "COCOON-BENCH: userspace" "$out/native.log" "$out/cocoon.log" | sed 's/^/uptime at userspace: /' || true
grep -h "fast path handed over" "$out/cocoon.log" | sed 's/^.*stats: /cocoon: /' || true
# Boot cost per GiB of RAM: boots to /init at two sizes, direct and through
# Cocoon (with cocoon.stats, for Cocoon's own part: its boot before the guest
# starts plus the instructions its exit handlers ran, entry stubs excepted).
if [ ${#icount[@]} != 0 ]; then
  meminit=$(bash ci/make-initramfs.sh meminfo)
  lo=${COCOON_BENCH_MEM_LO:-512} hi=${COCOON_BENCH_MEM_HI:-2048}
  for m in $lo $hi; do
    timeout 600 qemu-system-x86_64 "${common[@]/1024M/${m}M}" -serial "file:$out/cocoon-$m.log" \
      -kernel "$fw" -append cocoon.stats -initrd "$k console=hvc0 quiet,$meminit" || true
    timeout 600 qemu-system-x86_64 "${common[@]/1024M/${m}M}" -serial "file:$out/native-$m.log" \
      -kernel "$k" -append "console=ttyS0 quiet panic=-1" -initrd "$meminit" || true
  done
  own_ns() { # Cocoon's own boot: before the guest, and in its handlers until the end
    local pre cyc
    pre=$(sed -n "s/.*Cocoon's own boot took \([0-9.]*\) ms.*/\1/p" "$1" | awk '{ printf "%.0f", $1 * 1e6 }')
    cyc=$(grep "stats: vCPU" "$1" | awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "cycles") s += $i } END { printf "%.0f", s }')
    echo $((pre + cyc))
  }
  per_gib() { awk -v a="$1" -v b="$2" -v lo="$lo" -v hi="$hi" 'BEGIN { if (a > 0 && b > 0) printf "%.0f", (b - a) * 1024 / (hi - lo); else print "-" }'; }
  dn=$(per_gib "$(boot_ns "$out/native-$lo.log")" "$(boot_ns "$out/native-$hi.log")")
  cn=$(per_gib "$(boot_ns "$out/cocoon-$lo.log")" "$(boot_ns "$out/cocoon-$hi.log")")
  on=$(per_gib "$(own_ns "$out/cocoon-$lo.log")" "$(own_ns "$out/cocoon-$hi.log")")
  for row in "boot_per_gib $dn $cn" "cocoon_own_per_gib $dn $on"; do
    set -- $row
    r=$(awk -v a="$2" -v b="$3" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }')
    ratio[$1]=$r
    printf '%-18s %14s %14s %8s\n' "$1" "$2" "$3" "$r"
  done
  echo "(per GiB rows: ns per GiB of RAM between -m ${lo}M and ${hi}M; cocoon_own: Cocoon's boot before the guest and its exit handlers, against the whole direct boot)"
fi
rm -rf "$out"
if [ -n "$gate" ]; then
  fail=0
  while read -r m max _; do
    case "$m" in ''|'#'*) continue ;; esac
    r=${ratio[$m]:--}
    if [ "$r" = - ] || awk -v r="$r" -v m="$max" 'BEGIN { exit !(r > m) }'; then
      echo "bench gate: $m ratio $r, at most $max allowed ($gate)"
      fail=1
    else
      echo "bench gate: $m ratio $r <= $max: ok"
    fi
  done <"$gate"
  exit $fail
fi
