#!/usr/bin/env bash
# Install everything Cocoon's build and tests need on a fresh Debian 12 machine.
# Idempotent: each step is skipped when already done.
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
  [ "${major:-0}" -ge 8 ]
}

if ! qemu_ok; then
  # Debian 12's QEMU 7.2 has TCG bugs that real guests hit: take 10.x from bookworm-backports.
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding bookworm-backports"
    echo "deb http://deb.debian.org/debian bookworm-backports main" |
      $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    apt_updated=0
  fi
  apt_update
  log "installing qemu-system-x86 from bookworm-backports"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports \
    --no-install-recommends qemu-system-x86 >/dev/null
fi
qemu_ok || { log "qemu-system-x86_64 >= 8 is required"; exit 1; }

need_pkgs=()
command -v cpio >/dev/null 2>&1 || need_pkgs+=(cpio)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" || need_pkgs+=(busybox-static file)
command -v readelf >/dev/null 2>&1 || need_pkgs+=(binutils)
command -v lz4 >/dev/null 2>&1 || need_pkgs+=(lz4)
command -v xz >/dev/null 2>&1 || need_pkgs+=(xz-utils)
command -v zstd >/dev/null 2>&1 || need_pkgs+=(zstd)
command -v bzip2 >/dev/null 2>&1 || need_pkgs+=(bzip2)
command -v lzop >/dev/null 2>&1 || need_pkgs+=(lzop)
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
# Guest disk images for the boot-from-disk tests: ext2/3/4 and partition tables.
command -v mke2fs >/dev/null 2>&1 || need_pkgs+=(e2fsprogs)
command -v sfdisk >/dev/null 2>&1 || need_pkgs+=(fdisk)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need_pkgs+=(libc6-dev)
# Bootable disk images (cocoon-image hvm --disk): FAT, mtools, syslinux.
command -v mkfs.fat >/dev/null 2>&1 || need_pkgs+=(dosfstools)
command -v mcopy >/dev/null 2>&1 || need_pkgs+=(mtools)
command -v syslinux >/dev/null 2>&1 || need_pkgs+=(syslinux)
# cocoon-image convert's test checks its libvirt XML against libvirt's schemas
# (virt-xml-validate runs xmllint, which Debian 12's libvirt-clients does not pull in).
command -v virt-xml-validate >/dev/null 2>&1 || need_pkgs+=(libvirt-clients)
command -v xmllint >/dev/null 2>&1 || need_pkgs+=(libxml2-utils)
# The nested Xen matrix builds its dom0 roots with debootstrap (here, so that
# two columns built at once never race for apt).
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# ... and runs under a QEMU it builds from Debian's source with one fix
# (ci/xen-matrix/build-qemu.sh): its build tools and libraries.
command -v ninja >/dev/null 2>&1 || need_pkgs+=(ninja-build)
command -v patch >/dev/null 2>&1 || need_pkgs+=(patch)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
pkg-config --exists glib-2.0 gmodule-2.0 2>/dev/null || need_pkgs+=(libglib2.0-dev)
pkg-config --exists zlib 2>/dev/null || need_pkgs+=(zlib1g-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  apt_update
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_pkgs[@]}" >/dev/null
fi

# The toolchain is pinned in rust-toolchain.toml; make sure its components and target exist.
cd "$(dirname "$0")/.."
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then
  log "adding rust target x86_64-unknown-none"
  rustup target add x86_64-unknown-none
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
log "ok: $(qemu-system-x86_64 --version | head -1)"
