#!/usr/bin/env bash
# Build a busybox initramfs for the guest and print its path.
#   make-initramfs.sh test   the acceptance test (/init runs the checks, powers off)
#   make-initramfs.sh shell  an interactive busybox shell on hvc0
#   make-initramfs.sh bench  runs guestbench (ci/guestbench) and powers off
#   make-initramfs.sh diskboot says which kernel runs with what command line, powers off
#   make-initramfs.sh matrix a nested-Xen matrix guest: markers and guestbench, then idle
#                            (or, with matrix.devices=1, the PV disk, network and console)
#   make-initramfs.sh matrix SUITE  the same with SUITE's frontend modules (default bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-test}
msuite=${2:-bookworm}
src=ci/initramfs/init-$kind
[ -f "$src" ] || { echo "unknown initramfs kind '$kind'" >&2; exit 1; }
bb=$(command -v busybox || true)
[ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -q "statically linked" || bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-static is missing: run ci/setup.sh" >&2; exit 1; }
out_dir=${COCOON_CACHE:-$HOME/.cache/cocoon}/initramfs
mkdir -p "$out_dir"
out=$out_dir/$kind.cpio.gz
[ "$msuite" = bookworm ] || out=$out_dir/$kind-$msuite.cpio.gz
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,etc}
cp "$bb" "$stage/bin/busybox"
for app in $("$stage/bin/busybox" --list); do
  [ -e "$stage/bin/$app" ] || ln -s busybox "$stage/bin/$app"
done
# The kernel runs /sbin/poweroff and /sbin/reboot for an orderly shutdown
# (e.g. `xl shutdown`); busybox's then signal init.
for app in poweroff reboot halt; do ln -s ../bin/busybox "$stage/sbin/$app"; done
gcc -O2 -static -o "$stage/bin/guestbench" ci/guestbench/guestbench.c
gcc -O2 -static -pthread -o "$stage/bin/smpstress" ci/guestbench/smpstress.c
gcc -O2 -static -o "$stage/bin/abitest" ci/guestbench/abitest.c
cp "$src" "$stage/init"
# The matrix guest loads the PV disk and network frontends (ci/fetch-kernels.sh).
if [ "$kind" = matrix ]; then
  mods=${COCOON_CACHE:-$HOME/.cache/cocoon}/kernels/$msuite/modules
  [ -s "$mods/order" ] || { echo "no frontend modules in $mods: run ci/fetch-kernels.sh" >&2; exit 1; }
  mkdir -p "$stage/lib/modules"
  cp "$mods"/order "$mods"/*.ko "$stage/lib/modules/"
fi
chmod 755 "$stage/init"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
mknod -m 666 "$stage/dev/zero" c 1 5
mknod -m 600 "$stage/dev/hvc0" c 229 0
tmp=$(mktemp "$out_dir/.$kind.XXXXXX")
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9 >"$tmp")
mv "$tmp" "$out"
echo "$out"
