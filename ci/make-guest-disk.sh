#!/usr/bin/env bash
# Build a guest's disk as a Debian PV guest has it, for booting from the
# guest's own disk (cocoon.boot=disk, pygrub): one ext4 filesystem (the root)
# holding /boot/vmlinuz-VERSION and /boot/initrd.img-VERSION for each kernel
# given, and a bootloader configuration as Debian's tools write it
# (ci/guest-bootcfg.sh).
#
#   ci/make-guest-disk.sh OUT TABLE CONFIG INITRD KERNEL[:INITRD]...
#     TABLE   dos | gpt | none (a filesystem over the whole disk)
#     CONFIG  grub2 | legacy | extlinux
#     INITRD  the initramfs beside every kernel that names none of its own
#   Env: COCOON_DISK_UUID (the filesystem's UUID; random by default),
#        COCOON_DISK_STAGE=DIR (more files, copied to the root as they are).
# Needs root for CONFIG=grub2 (grub-mkconfig runs in a mount namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 5 ] || { echo "usage: $0 OUT dos|gpt|none grub2|legacy|extlinux INITRD KERNEL[:INITRD]..." >&2; exit 2; }
out=$1 table=$2 config=$3 initrd=$4
shift 4
uuid=${COCOON_DISK_UUID:-$(cat /proc/sys/kernel/random/uuid)}
root=$(mktemp -d)
fs=$(mktemp)
trap 'rm -rf "$root" "$fs"' EXIT
[ -n "${COCOON_DISK_STAGE:-}" ] && cp -a "$COCOON_DISK_STAGE/." "$root/"
mkdir -p "$root/boot" "$root/etc"
[ -f "$root/etc/hostname" ] || echo guest >"$root/etc/hostname"

versions=()
for arg in "$@"; do
  k=${arg%%:*} i=$initrd
  [ "$arg" = "$k" ] || i=${arg#*:}
  v=$(python3 ci/kernel-version.py "$k")
  cp "$k" "$root/boot/vmlinuz-$v"
  cp "$i" "$root/boot/initrd.img-$v"
  versions+=("$v")
done
bash ci/guest-bootcfg.sh "$root" "$config" "$uuid"

# The filesystem: its files plus 32 MiB, in whole MiB.
mib=$(($(du -sm "$root" | cut -f1) + 32))
mke2fs -q -F -t ext4 -U "$uuid" -L root -d "$root" "$fs" "${mib}M"
rm -f "$out"
if [ "$table" = none ]; then
  mv "$fs" "$out"
else
  truncate -s $(((mib + 2) << 20)) "$out"
  printf 'label: %s\nstart=2048, size=%d, type=linux\n' "$table" $((mib * 2048)) |
    sfdisk -q --no-reread --no-tell-kernel "$out" >/dev/null
  dd if="$fs" of="$out" bs=1M seek=1 conv=notrunc status=none
fi
echo "$out: $table, $config, ext4 $uuid, kernels ${versions[*]}" >&2
