#!/usr/bin/env bash
# Print the grub.cfg that Debian's own grub-mkconfig (/etc/grub.d/00_header,
# 10_linux, ...) writes for a root filesystem holding ROOTDIR/boot/vmlinuz-*
# and ROOTDIR/boot/initrd.img-*, as if that filesystem were /dev/sda1 (msdos
# partition 1 of the first disk, ext4) with the UUID FS_UUID.
#
#   ci/grub-mkconfig.sh ROOTDIR FS_UUID [GRUB_DEFAULT]
#
# GRUB_DEFAULT defaults to 0; with "saved", ROOTDIR/boot/grub/grubenv (made
# with grub-editenv) is what grub-mkconfig reads. The grub.cfg goes to stdout.
#
# grub-mkconfig looks at the running system (/boot, /dev/disk/by-uuid, the
# block devices through grub-probe), so it runs in a private mount namespace
# where ROOTDIR/boot is /boot, /etc/default/grub is Debian's default file with
# GRUB_DEFAULT changed, /dev/disk/by-uuid/FS_UUID exists, and grub-probe and
# grub-mkrelpath are small stand-ins that describe the disk above. Nothing
# outside the namespace changes but one thing: ROOTDIR/boot/grub is created
# when missing (grub-install would have made it; 05_debian_theme needs it).
# Needs root; installs grub-common and grub2-common with apt-get when missing.
set -euo pipefail

log() { printf '[grub-mkconfig] %s\n' "$*" >&2; }

if [ "${COCOON_GRUB_NS:-}" != 1 ]; then
  [ $# -ge 2 ] || { echo "usage: $0 ROOTDIR FS_UUID [GRUB_DEFAULT]" >&2; exit 2; }
  [ -d "$1/boot" ] || { log "$1/boot is not a directory"; exit 1; }
  [ "$(id -u)" -eq 0 ] || { log "must run as root (mount namespace, apt-get)"; exit 1; }
  if ! [ -x /usr/sbin/grub-mkconfig ] || ! [ -x /etc/grub.d/10_linux ] || ! command -v unshare >/dev/null; then
    log "installing grub-common grub2-common"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      grub-common grub2-common util-linux >&2
  fi
  root=$(cd "$1" && pwd)
  COCOON_GRUB_NS=1 exec unshare --mount --propagation private "$0" "$root" "$2" "${3:-0}"
fi

# From here on: inside the private mount namespace.
root=$1 uuid=$2 default=$3
# Everything made here lives on a tmpfs that only this namespace sees.
work=$(mktemp -d)
mount -t tmpfs tmpfs "$work"
trap 'cd /; umount -R -l "$work"; rmdir "$work"' EXIT

# grub-probe: the answers for /dev/sda1, an ext4 partition on an msdos disk.
cat >"$work/grub-probe" <<EOF
#!/bin/sh
target= device=
while [ \$# -gt 0 ]; do
  case "\$1" in
    --target=*) target=\${1#--target=} ;;
    -t) shift; target=\$1 ;;
    --device) device=1 ;;
    -d) device=1 ;;
  esac
  shift
done
case "\$target" in
  device) echo /dev/sda1 ;;
  fs) echo ext2 ;;
  fs_uuid) echo $uuid ;;
  partmap) echo msdos ;;
  abstraction|cryptodisk_uuid) ;;
  compatibility_hint) echo hd0,msdos1 ;;
  hints_string) echo "--hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 --hint-baremetal=ahci0,msdos1 " ;;
  drive) echo "(hd0,msdos1)" ;;
  disk) echo /dev/sda ;;
  *) exit 1 ;;
esac
EOF
# grub-mkrelpath: / and /boot are one filesystem, so paths stay as they are.
printf '#!/bin/sh\nprintf "%%s\\n" "$1"\n' >"$work/grub-mkrelpath"
chmod +x "$work/grub-probe" "$work/grub-mkrelpath"
mount --bind "$work/grub-probe" /usr/sbin/grub-probe
mount --bind "$work/grub-mkrelpath" /usr/bin/grub-mkrelpath

# Debian's shipped /etc/default/grub with the chosen GRUB_DEFAULT.
mkdir "$work/default"
sed "s/^GRUB_DEFAULT=.*/GRUB_DEFAULT=$default/" /usr/share/grub/default/grub >"$work/default/grub"
mkdir "$work/default/grub.d"
mount --bind "$work/default" /etc/default

# 05_debian_theme works in /boot/grub, which grub-install would have made.
mkdir -p "$root/boot/grub"
mount --bind "$root/boot" /boot

# /dev with the by-uuid link (10_linux uses root=UUID=... only when it exists).
mkdir "$work/dev"
mount -t tmpfs tmpfs "$work/dev"
for n in null zero urandom random full tty; do
  [ -e "/dev/$n" ] || continue
  touch "$work/dev/$n"
  mount --bind "/dev/$n" "$work/dev/$n"
done
ln -s /proc/self/fd "$work/dev/fd"
mkdir -p "$work/dev/disk/by-uuid"
touch "$work/dev/sda" "$work/dev/sda1"
ln -s ../../sda1 "$work/dev/disk/by-uuid/$uuid"
mount --rbind "$work/dev" /dev

/usr/sbin/grub-mkconfig 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
