#!/usr/bin/env bash
# Build (and cache, a day at most) one column of the nested Xen matrix: the
# Xen hypervisor, the dom0 kernel and a dom0 root with the toolstack packed as
# an initramfs. Prints the directory holding
#   xen  dom0-vmlinuz  dom0-base.cpio  xen-version  [xen-shim-path]
# The guests, their configs and /init are added per run by ci/xen-matrix.sh.
# usage: build-rig.sh SUITE   (bullseye = Xen 4.14, bookworm = 4.17, trixie = 4.20)
set -euo pipefail
cd "$(dirname "$0")/../.."
suite=$1
# Xen version, and the package with the HVM device model (bullseye's Xen uses
# qemu-system-x86; qemu-system-xen exists from bookworm on).
case "$suite" in
  bullseye) xv=4.14 dm=qemu-system-x86 ;;
  bookworm) xv=4.17 dm=qemu-system-xen ;;
  trixie) xv=4.20 dm=qemu-system-xen ;;
  *) echo "unknown suite $suite" >&2; exit 1 ;;
esac
log() { printf '[build-rig %s] %s\n' "$suite" "$*" >&2; }
CACHE=${COCOON_CACHE:-$HOME/.cache/cocoon}
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
# The cache key is this script; package versions are re-resolved by
# debootstrap, so a root older than a day is rebuilt.
key=$(sha256sum ci/xen-matrix/build-rig.sh | cut -c1-16)
out=$CACHE/xen-matrix/$suite-$key
if [ -f "$out/done" ] && [ -n "$(find "$out/done" -mmin -1440)" ]; then
  echo "$out"
  exit 0
fi
rm -rf "$CACHE/xen-matrix/$suite-"*
mkdir -p "$out"
root=$out/root
log "debootstrap (about 1-2 minutes)"
debootstrap --variant=minbase \
  --include=xen-utils-$xv,xen-utils-common,xen-hypervisor-$xv-amd64,$dm,seabios,busybox,kmod,iproute2,procps,linux-image-amd64 \
  "$suite" "$root" http://deb.debian.org/debian >"$out/debootstrap.log" 2>&1 ||
  { log "debootstrap failed: see $out/debootstrap.log"; tail -5 "$out/debootstrap.log" >&2; exit 1; }
gunzip -c "$root"/boot/xen-$xv-amd64.gz >"$out/xen"
cp "$root"/boot/vmlinuz-* "$out/dom0-vmlinuz"

log "pruning the dom0 root"
kver=$(basename "$root"/lib/modules/*)
keep=$(mktemp -d)
for m in drivers/xen net/bridge net/llc net/802 drivers/net/tun.ko drivers/net/xen-netback drivers/block/loop.ko drivers/block/xen-blkback; do
  for f in "$root/lib/modules/$kver/kernel/$m"*; do
    [ -e "$f" ] || continue
    mkdir -p "$keep/$(dirname "${f#$root/lib/modules/$kver/}")"
    cp -a "$f" "$keep/$(dirname "${f#$root/lib/modules/$kver/}")/"
  done
done
rm -rf "$root/lib/modules/$kver/kernel"
mv "$keep/kernel" "$root/lib/modules/$kver/kernel"
rm -rf "$keep"
chroot "$root" depmod "$kver"
rm -rf "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale "$root"/usr/share/info \
  "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/boot/* "$root"/usr/lib/firmware

[ -f "$root/usr/lib/xen-$xv/boot/xen-shim" ] && echo "/usr/lib/xen-$xv/boot/xen-shim" >"$out/xen-shim-path"
echo "$xv" >"$out/xen-version"
log "packing the dom0 initramfs"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 >"$out/dom0-base.cpio")
rm -rf "$root"
touch "$out/done"
log "dom0-base.cpio $(du -h "$out/dom0-base.cpio" | cut -f1)"
echo "$out"
