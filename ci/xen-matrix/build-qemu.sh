#!/usr/bin/env bash
# Build the outer QEMU for the nested Xen matrix: the installed Debian
# version's upstream source with one fix (qemu-svm-interrupt-request.patch),
# x86_64 system emulation only, the PC devices nested Xen uses and nothing else.
# Prints the binary's path; cached in target/qemu/VERSION.
#
# Why: in QEMU 10.0's TCG, the SVM VMRUN and #VMEXIT helpers update
# cpu->interrupt_request without the BQL, while the main loop sets
# CPU_INTERRUPT_POLL in it when the local APIC's timer fires. When the two
# meet, the POLL is lost: the APIC holds the interrupt in IRR, the CPU is never
# told, and once it halts (Xen's idle loop, IF set) it sleeps for good. Upstream
# QEMU has since made these updates atomic (cpu_set_interrupt and
# cpu_reset_interrupt in svm_helper.c). See README, the nested Xen matrix.
set -euo pipefail

log() { printf '[build-qemu] %s\n' "$*" >&2; }
cd "$(dirname "$0")/../.."
here=$PWD
patch_file=$here/ci/xen-matrix/qemu-svm-interrupt-request.patch

pkgver=$(dpkg-query -W -f '${Version}' qemu-system-x86 2>/dev/null) || {
  log "qemu-system-x86 is not installed (run ci/setup.sh)"
  exit 1
}
# 1:10.0.2+ds-2+deb13u1~bpo12+1 -> 10.0.2+ds (the upstream tarball's version)
upver=${pkgver#*:}
upver=${upver%-*}
out=$here/target/qemu/$upver
bin=$out/bin/qemu-system-x86_64
stamp="$pkgver $(cat "$patch_file" "$here/ci/xen-matrix/build-qemu.sh" | sha256sum | cut -c1-16)"
if [ -x "$bin" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi

# The source through apt (which checks it against the suite's signed index).
suite=$(apt-cache policy qemu-system-x86 |
  awk '/^ \*\*\*/ {getline; print $3; exit}' | cut -d/ -f1)
[ -n "$suite" ] && [ "$suite" != "/var/lib/dpkg/status" ] || suite=bookworm-backports
apt_dir=$here/target/qemu/apt
mkdir -p "$apt_dir"
echo "deb-src http://deb.debian.org/debian $suite main" >"$apt_dir/sources.list"
# shellcheck source=ci/apt-view.sh
. ci/apt-view.sh
apt_view "$apt_dir"
tarball=$here/target/qemu/qemu_$upver.orig.tar.xz
if [ ! -s "$tarball" ]; then
  log "fetching the source of qemu $pkgver ($suite)"
  apt-get "${APT_OPTS[@]}" update -qq >&2 || { log "apt-get update (deb-src $suite) failed"; exit 1; }
  (cd "$here/target/qemu" &&
    apt-get "${APT_OPTS[@]}" source -qq --download-only --tar-only "qemu=$pkgver" >&2) ||
    { log "apt-get source qemu=$pkgver failed"; exit 1; }
  [ -s "$tarball" ] || { log "apt-get source left no $tarball"; exit 1; }
fi

log "building qemu $upver with the SVM interrupt_request fix (log: $out/build.log)"
rm -rf "$out" && mkdir -p "$out"
tar -C "$out" -xf "$tarball"
src=$(echo "$out"/qemu-*/)
src=${src%/}
patch -d "$src" -p1 --forward --quiet <"$patch_file" || { log "the fix does not apply to qemu $upver"; exit 1; }
# Debian's +ds tarball drops the vendored wheels of QEMU's build tools: fetch
# the versions its configure installs (pythondeps.toml, group [meson]) from PyPI.
wheels=$(sed -n '/^\[meson\]/,/^\[/s/^\([a-z]*\) = {.*installed = "\([^"]*\)".*/\1==\2/p' "$src/pythondeps.toml")
[ -n "$wheels" ] || { log "cannot read the build tools' versions from pythondeps.toml"; exit 1; }
# shellcheck disable=SC2086 # one argument per tool
python3 -m pip download -q --no-deps -d "$src/python/wheels" $wheels >&2 ||
  { log "pip download of $(echo $wheels) failed"; exit 1; }
# Debian's +ds tarball also drops the prebuilt EDK2 images; nothing here needs them.
sed -i 's/^\( *unpack_edk2_blobs = \)bzip2.found()/\1false/' "$src/meson.build"
grep -q 'unpack_edk2_blobs = false$' "$src/meson.build" || { log "cannot turn off the EDK2 images"; exit 1; }
# The default PC machine as nested Xen sees it (HPET, PIT, RTC, PIC, I/O APIC,
# ACPI, COM1 and the legacy ISA devices) without VGA and NIC: the matrix runs
# it with -vga none -nic none.
printf 'CONFIG_%s=y\n' I440FX HPET FDC_ISA PARALLEL VMPORT VMMOUSE \
  >"$src/configs/devices/x86_64-softmmu/cocoon-matrix.mak"
mkdir -p "$out/build"
(
  cd "$out/build"
  "$src/configure" --target-list=x86_64-softmmu --without-default-features --without-default-devices \
    --with-devices-x86_64=cocoon-matrix --enable-tcg --disable-download --disable-docs --disable-werror \
    --disable-install-blobs --disable-relocatable --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu &&
    ninja -j"$(nproc)" qemu-system-x86_64
) >"$out/build.log" 2>&1 || {
  tail -20 "$out/build.log" >&2
  log "build failed (log: $out/build.log)"
  exit 1
}
# Outside the build tree it takes its firmware (SeaBIOS, the multiboot option
# ROM) from Debian's packages, as the packaged QEMU does.
install -D -m 755 "$out/build/qemu-system-x86_64" "$bin"
echo "$stamp" >"$out/stamp"
echo "$bin"
