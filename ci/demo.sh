#!/usr/bin/env bash
# The README's run command: boot Debian's PV cloud kernel inside Cocoon under
# QEMU (TCG) with the console on this terminal. Installs what is missing.
# Extra arguments are added to Cocoon's own command line (e.g. cocoon.dry-run).
# Leave QEMU with Ctrl-A X.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
kernels=$(bash ci/fetch-kernels.sh)
fw=$(bash ci/build-firmware.sh)
suite=${COCOON_SUITE:-bookworm}
mods="$kernels/$suite/vmlinuz console=hvc0"
if [ -x ci/make-initramfs.sh ]; then
  initrd=$(bash ci/make-initramfs.sh "${COCOON_INITRAMFS_KIND:-shell}")
  mods="$mods,$initrd"
fi
echo "== booting Cocoon ($fw) with the $suite cloud kernel; Ctrl-A X quits" >&2
set +e
qemu-system-x86_64 -accel tcg -cpu max -m "${COCOON_MEM:-512M}" -nographic -no-reboot \
  -serial mon:stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$fw" -append "$*" -initrd "$mods"
status=$?
echo "== QEMU exited with status $status" >&2
