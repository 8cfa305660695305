#!/usr/bin/env bash
# Where the instructions go, by function: the bookworm PV kernel inside
# Cocoon on plain QEMU with instruction counting, under a TCG plugin that
# counts every translated block's runs (ci/profile/tbprof.c), summed by
# Cocoon's symbols and, when the guest is asked for them, the kernel's.
#   bash ci/profile.sh fork     fork+exit+wait: two boots, 200 and 1200 forks,
#                               the difference per fork
#   bash ci/profile.sh boot     one boot to /init and power-off, in total
# COCOON_PROFILE_DIRECT=1 profiles the same kernel booted directly (no
# Cocoon, nokaslr) instead, to compare with.
# COCOON_PROFILE_TOP=K rows (default 30); COCOON_PROFILE_MEM=SIZE (default 1024M);
# COCOON_PROFILE_KEEP=DIR keeps the raw profiles, logs and kallsyms there
# (for a look block by block).
# Needs the plugin header from QEMU's source: ci/xen-matrix/build-qemu.sh
# fetches it (and builds the matrix's QEMU, cached) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-fork}
case "$mode" in fork | boot) ;; *) echo "usage: ci/profile.sh [fork|boot]" >&2; exit 2 ;; esac
bash ci/setup.sh >/dev/null
kernels=$(bash ci/fetch-kernels.sh)
fw=${COCOON_FIRMWARE:-$(bash ci/build-firmware.sh)}
k=$kernels/${COCOON_SUITE:-bookworm}/vmlinuz
qemu_dir=$(dirname "$(dirname "$(bash ci/xen-matrix/build-qemu.sh)")")
hdr=$(echo "$qemu_dir"/qemu-*/include/qemu/qemu-plugin.h)
[ -f "$hdr" ] || { echo "no qemu-plugin.h under $qemu_dir" >&2; exit 1; }
out=$(mktemp -d)
keep() { [ -z "${COCOON_PROFILE_KEEP:-}" ] || { mkdir -p "$COCOON_PROFILE_KEEP" && cp "$out"/prof-* "$out"/log-* "$out"/kallsyms "$COCOON_PROFILE_KEEP"/ 2>/dev/null; } || true; }
trap 'keep; rm -rf "$out"' EXIT
# shellcheck disable=SC2046 # pkg-config's flags are several words
gcc -O2 -shared -fPIC -o "$out/libtbprof.so" ci/profile/tbprof.c -I"$(dirname "$hdr")" $(pkg-config --cflags glib-2.0)

# busybox-static (as ci/make-initramfs.sh picks it).
bb=$(command -v busybox || true)
[ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -q "statically linked" || bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-static is missing: run ci/setup.sh" >&2; exit 1; }

# A busybox initramfs whose /init runs `guestbench --fork N` (N > 0), or
# prints the kernel's symbols (N = ksyms), and powers off.
initrd() {
  local stage=$out/stage-$1
  mkdir -p "$stage"/{bin,proc}
  cp "$bb" "$stage/bin/busybox"
  for app in sh mount grep sed poweroff; do ln -s busybox "$stage/bin/$app"; done
  gcc -O2 -static -o "$stage/bin/guestbench" ci/guestbench/guestbench.c
  {
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc'
    if [ "$1" = ksyms ]; then
      echo 'echo 0 >/proc/sys/kernel/kptr_restrict'
      echo 'grep " [tT] " /proc/kallsyms | sed "s/^/KSYM /"'
    elif [ "$1" != 0 ]; then
      echo "/bin/guestbench --fork $1"
    fi
    echo 'poweroff -f'
  } >"$stage/init"
  chmod +x "$stage/init"
  (cd "$stage" && find . | cpio -o -H newc 2>/dev/null | gzip) >"$out/init-$1.cpio.gz"
}
direct=${COCOON_PROFILE_DIRECT:-0}
qemu() { # qemu N [QEMU options]: boot Cocoon (or the kernel) with the initramfs for N
  local n=$1 boot
  shift
  initrd "$n"
  if [ "$direct" = 1 ]; then
    boot=(-kernel "$k" -append "console=ttyS0 quiet norandmaps nokaslr panic=-1" -initrd "$out/init-$n.cpio.gz")
  else
    boot=(-kernel "$fw" -initrd "$k console=hvc0 quiet norandmaps,$out/init-$n.cpio.gz")
  fi
  timeout 900 qemu-system-x86_64 -accel tcg -cpu max -m "${COCOON_PROFILE_MEM:-1024M}" -display none \
    -no-reboot -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 "$@" -serial "file:$out/log-$n" \
    "${boot[@]}" || true
}
run() { # run N: the profile of a boot that forks N times
  qemu "$1" -icount shift=0 -plugin "$out/libtbprof.so,out=$out/prof-$1"
  [ -s "$out/prof-$1" ] || { echo "no profile from the run with $1 forks: $(tail -3 "$out/log-$1")" >&2; exit 1; }
}
# The kernel's symbols, from a boot of its own (PV kernels have no KASLR;
# the direct one runs with nokaslr).
qemu ksyms
sed -n 's/^KSYM //p' "$out/log-ksyms" | tr -d '\r' >"$out/kallsyms"
[ -s "$out/kallsyms" ] || echo "(no kernel symbols: the guest rows stay unnamed)" >&2
top=(--top "${COCOON_PROFILE_TOP:-30}")
[ "$direct" = 1 ] && top+=(--direct)
if [ "$mode" = boot ]; then
  run 0
  python3 ci/profile/symbolize.py --elf "$fw" --kallsyms "$out/kallsyms" "${top[@]}" "$out/prof-0"
else
  run 200
  run 1200
  python3 ci/profile/symbolize.py --elf "$fw" --kallsyms "$out/kallsyms" "${top[@]}" \
    --base "$out/prof-200" --ops 1000 "$out/prof-1200"
fi
