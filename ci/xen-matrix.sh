#!/usr/bin/env bash
# The nested Xen matrix: for each Xen version, boot Xen with a dom0 under
# QEMU (TCG), create the guests one after another with xl, and print a table
# of guest mode x result, boot time and guest benchmark.
#   ci/xen-matrix.sh [bullseye|bookworm|trixie ...]   (default: all three)
# Env: COCOON_MATRIX_ICOUNT=1 adds -icount shift=0 (instruction-counted time:
# repeatable figures, not real speed); COCOON_MATRIX_GUESTS="pv cocoon" runs only
# those rows; COCOON_MATRIX_STREAM=1 copies each guest's console to the serial
# log as it comes; COCOON_MATRIX_COCOON_OPTS adds options to Cocoon's command
# line; COCOON_MATRIX_REQUIRE="pv cocoon" makes the exit status fail unless
# those rows are ok in every column run; COCOON_MATRIX_CPU overrides the QEMU CPU;
# COCOON_MATRIX_QEMU is the outer QEMU binary (default: the one
# ci/xen-matrix/build-qemu.sh builds, Debian's version with a fix for a lost
# interrupt under nested SVM; "system" takes the installed qemu-system-x86_64).
# Logs stay in target/xen-matrix/.
set -uo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh >/dev/null || exit 1
suites=${*:-bullseye bookworm trixie}
kernels=$(bash ci/fetch-kernels.sh) || exit 1
guest_initrd=$(bash ci/make-initramfs.sh matrix) || exit 1
fw=$(bash ci/build-firmware.sh) || exit 1
cargo build -q --release -p cocoon-image || exit 1
qemu=${COCOON_MATRIX_QEMU:-}
[ -n "$qemu" ] || qemu=$(bash ci/xen-matrix/build-qemu.sh) || exit 1
[ "$qemu" != system ] || qemu=qemu-system-x86_64
echo "[xen-matrix] outer QEMU: $qemu" >&2
logs=$PWD/target/xen-matrix
mkdir -p "$logs"
status=0

# The outer QEMU's view of the nested machine (its monitor socket): the CPU's
# registers (HLT, IF, SVM guest mode), the local APIC (timer, IRR/ISR), the
# code at RIP; then, from QEMU's own state (gdb, when the binary has symbols as
# build-qemu.sh's does), what the monitor does not show: the CPU's pending
# interrupt requests and its SVM flags (hflags2: GIF, virtual interrupt masking).
dump_machine() {
  dump_monitor "$1" 2>&1 | tee "$1/machine.log"
  command -v gdb >/dev/null 2>&1 || return 0
  gdb -p "$2" -batch -nx -ex 'set $c = (X86CPU *)cpus_queue.tqh_first' \
    -ex 'printf "interrupt_request=%#x halted=%d\n", $c->parent_obj.interrupt_request, $c->parent_obj.halted' \
    -ex 'printf "hflags=%#x hflags2=%#x eflags=%#x int_ctl=%#x\n", $c->env.hflags, $c->env.hflags2, $c->env.eflags, $c->env.int_ctl' \
    2>/dev/null | grep -E '^(interrupt_request|hflags)=' | tee -a "$1/machine.log"
}
dump_monitor() {
  python3 - "$1/monitor.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
def cmd(c):
    s.sendall((c + "\n").encode())
    time.sleep(1)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
            if out.endswith(b"(qemu) "):
                break
    except socket.timeout:
        pass
    return out.decode(errors="replace").replace("\r", "")
cmd("")
for c in ("info registers", "info lapic", "x/6i $pc", "info pic"):
    print("== " + c)
    print(cmd(c).rsplit("(qemu) ", 1)[0].split("\n", 1)[-1].rstrip())
PY
}

# The disk of the boot-from-disk rows (CONFIG grub2 or legacy) at OUT: the
# matrix initramfs's files as the root filesystem (its /init finds the disk's
# root partition and runs there), bookworm's cloud kernel in /boot, and in
# /stage trixie's with the configuration for both kernels. Sets kb and kt.
diskboot_image() {
  local config=$1 out=$2 uuid=8a1e33c5-5b0e-4c3e-9f5e-2d6f0c1b7a90 st after trixie_initrd
  trixie_initrd=$(bash ci/make-initramfs.sh matrix trixie) || return 1
  kb=$(python3 ci/kernel-version.py "$kernels/bookworm/vmlinuz") || return 1
  kt=$(python3 ci/kernel-version.py "$kernels/trixie/vmlinuz") || return 1
  st=$(mktemp -d) after=$(mktemp -d)
  (cd "$st" && gzip -dc "$guest_initrd" | cpio -id --quiet) || return 1
  touch "$st/.xvda-root"
  mkdir -p "$st/stage/boot" "$after/boot"
  cp "$kernels/trixie/vmlinuz" "$st/stage/boot/vmlinuz-$kt"
  cp "$trixie_initrd" "$st/stage/boot/initrd.img-$kt"
  cp "$kernels/bookworm/vmlinuz" "$after/boot/vmlinuz-$kb"
  cp "$guest_initrd" "$after/boot/initrd.img-$kb"
  cp "$st/stage/boot/"* "$after/boot/"
  bash ci/guest-bootcfg.sh "$after" "$config" "$uuid" || return 1
  rm "$after"/boot/vmlinuz-* "$after"/boot/initrd.img-*
  mkdir -p "$st/stage/after"
  cp -a "$after/boot" "$st/stage/after/"
  COCOON_DISK_UUID=$uuid COCOON_DISK_STAGE=$st \
    bash ci/make-guest-disk.sh "$out" dos "$config" "$guest_initrd" "$kernels/bookworm/vmlinuz" 2>/dev/null || return 1
  rm -rf "$st" "$after"
}

run_column() {
  local suite=$1 rig run ov xv shim qpid t0 limit=${COCOON_MATRIX_TIMEOUT:-1500}
  rig=$(bash ci/xen-matrix/build-rig.sh "$suite") || { echo "MATRIX: suite=$suite stage=build result=fail"; return 1; }
  xv=$(cat "$rig/xen-version")
  shim=$(cat "$rig/xen-shim-path" 2>/dev/null || true)
  run=$logs/$suite
  rm -rf "$run" && mkdir -p "$run"
  ov=$(mktemp -d)
  mkdir -p "$ov/matrix/guests"
  cp "$kernels/bookworm/vmlinuz" "$ov/matrix/vmlinuz"
  cp "$guest_initrd" "$ov/matrix/guest.cpio.gz"
  cp "$fw" "$ov/matrix/cocoon.elf"
  # Xen's PVH loader passes one module: Cocoon gets kernel, initrd and command line bundled.
  target/release/cocoon-image bundle "$kernels/bookworm/vmlinuz" --initrd "$guest_initrd" \
    --cmdline "console=hvc0" -o "$ov/matrix/cocoon-bundle.bin" >/dev/null || return 1
  echo "$xv" >"$ov/matrix/xen-version"
  [ "${COCOON_MATRIX_STREAM:-0}" = 1 ] && touch "$ov/matrix/stream"
  install -m 755 ci/xen-matrix/dom0-init "$ov/init"
  install -m 755 ci/xen-matrix/vif-min ci/xen-matrix/block-min "$ov/matrix/"
  printf '# timeout=180\nname="pv"\ntype="pv"\nmemory=512\nkernel="/matrix/vmlinuz"\nramdisk="/matrix/guest.cpio.gz"\nextra="console=hvc0"\n' >"$ov/matrix/guests/1-pv.cfg"
  if [ -n "$shim" ]; then
    printf '# timeout=240\nname="pvshim"\ntype="pvh"\npvshim=1\npvshim_path="%s"\ncpuid="host,family=23,model=1"\nmemory=512\nkernel="/matrix/vmlinuz"\nramdisk="/matrix/guest.cpio.gz"\nextra="console=hvc0"\ntsc_mode="native"\n' "$shim" >"$ov/matrix/guests/2-pvshim.cfg"
  fi
  printf '# timeout=300\nname="hvm"\ntype="hvm"\nmemory=512\nkernel="/matrix/vmlinuz"\nramdisk="/matrix/guest.cpio.gz"\ncmdline="console=ttyS0 earlyprintk=serial,ttyS0,115200"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/hvm-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' >"$ov/matrix/guests/3-hvm.cfg"
  # Cocoon wrapping the same PV kernel, as a PVH guest, with its standalone backend
  # (forwarding to the Xen underneath is issue 6); its console is the domain's PV console.
  printf '# timeout=240\nname="cocoon"\ntype="pvh"\nmemory=512\nkernel="/matrix/cocoon.elf"\nramdisk="/matrix/cocoon-bundle.bin"\ncmdline="%s"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/4-cocoon.cfg"
  # The device rows: Cocoon with a disk from dom0's blkback and a network
  # interface on dom0's bridge; the guest tests them (matrix.devices=1).
  target/release/cocoon-image bundle "$kernels/bookworm/vmlinuz" --initrd "$guest_initrd" \
    --cmdline "console=hvc0 matrix.devices=1" -o "$ov/matrix/cocoon-dev-bundle.bin" >/dev/null || return 1
  printf '# timeout=300\n# devices\nname="cocoondev"\ntype="pvh"\nmemory=512\nkernel="/matrix/cocoon.elf"\nramdisk="/matrix/cocoon-dev-bundle.bin"\ncmdline="%s"\ndisk=["format=raw,vdev=xvda,access=rw,backendtype=qdisk,target=/tmp/xvda.img"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/6-cocoondev.cfg"
  # The same as an HVM domain, its disk from blkback (a loop device in dom0).
  printf '# timeout=300\n# devices\n# console=pv\nname="cocoonhvmdev"\ntype="hvm"\nmemory=512\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-dev-bundle.bin"\ncmdline="%s"\ndisk=["format=raw,vdev=xvda,access=rw,script=/matrix/block-min,target=/dev/loop0"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/cocoonhvmdev-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/7-cocoonhvmdev.cfg"
  # The same with cocoon.compat=3.4: events through the platform PCI INTx and the
  # guest's console on the emulated serial port (a pty: `xl console -t serial`).
  printf '# timeout=400\n# devices\n# console=serial\nname="cocoonhvmdev34"\ntype="hvm"\nmemory=512\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-dev-bundle.bin"\ncmdline="cocoon.compat=3.4 %s"\ndisk=["format=raw,vdev=xvda,access=rw,script=/matrix/block-min,target=/dev/loop1"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ndevice_model_version="qemu-xen"\nserial="pty"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/9-cocoonhvmdev34.cfg"
  # The lifecycle rows (issue 17): Cocoon as an HVM domain with a disk from
  # blkback and a vif, its guest running a disk workload (matrix.lifecycle=1);
  # dom0-init pauses, saves and restores, migrates (to the same host), balloons,
  # reboots and destroys it, checking the guest after each step ("# lifecycle",
  # lifecycle_row). 256 MiB: the save file and a migration's second copy are
  # that size. Cocoon's log is on a pty (dom0-init follows it across domain IDs).
  target/release/cocoon-image bundle "$kernels/bookworm/vmlinuz" --initrd "$guest_initrd" \
    --cmdline "console=hvc0 matrix.lifecycle=1" -o "$ov/matrix/cocoon-life-bundle.bin" >/dev/null || return 1
  printf '# timeout=900\n# lifecycle\n# console=pv\nname="cocoonlife"\ntype="hvm"\nmemory=256\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-life-bundle.bin"\ncmdline="%s"\ndisk=["format=raw,vdev=xvda,access=rw,script=/matrix/block-min,target=/dev/loop2"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ndevice_model_version="qemu-xen"\nserial="pty"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/998-cocoonlife.cfg"
  # The same with two vCPUs (not in CI's rows: its time): a suspend stops
  # the second vCPU in the guest's stop_machine, and a restore must give
  # both their event delivery, vcpu_info and timers again.
  printf '# timeout=900\n# lifecycle\n# console=pv\nname="cocoonlifesmp"\ntype="hvm"\nvcpus=2\nmemory=256\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-life-bundle.bin"\ncmdline="%s"\ndisk=["format=raw,vdev=xvda,access=rw,script=/matrix/block-min,target=/dev/loop4"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ndevice_model_version="qemu-xen"\nserial="pty"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/998-cocoonlifesmp.cfg"
  # The same with cocoon.compat=3.4 (the guest's console on the serial pty),
  # ending with `xl shutdown` instead of `xl destroy` (the guest powers off).
  # On an idle machine the row took 352 s on 4.20 (boot 103 s).
  printf '# timeout=1200\n# lifecycle\n# lifecycle-end=shutdown\n# console=serial\nname="cocoonlife34"\ntype="hvm"\nmemory=256\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-life-bundle.bin"\ncmdline="cocoon.compat=3.4 %s"\ndisk=["format=raw,vdev=xvda,access=rw,script=/matrix/block-min,target=/dev/loop3"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ndevice_model_version="qemu-xen"\nserial="pty"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/999-cocoonlife34.cfg"
  # Cocoon as an HVM domain, as operators run it: its bzImage form started by the
  # device model's direct kernel boot, the bundle as the ramdisk.
  target/release/cocoon-image bzimage "$fw" -o "$ov/matrix/cocoon.bzImage" >/dev/null || return 1
  printf '# timeout=240\n# console=pv\nname="cocoonhvm"\ntype="hvm"\nmemory=512\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-bundle.bin"\ncmdline="%s"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/cocoonhvm-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/5-cocoonhvm.cfg"
  # The same with cocoon.compat=3.4: events through the platform PCI INTx, and
  # (no console parameter) the guest's console on COM1 through Cocoon.
  printf '# timeout=420\nname="cocoonhvm34"\ntype="hvm"\nmemory=512\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-bundle.bin"\ncmdline="cocoon.compat=3.4 %s"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/cocoonhvm34-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/8-cocoonhvm34.cfg"
  # Cocoon as an HVM domain of 4 GiB (RAM below and above 4 GiB) with the
  # generic kernel (linux-image-amd64: zstd with a 128 MiB window, machine
  # checks), on 4.20: the guest must see its RAM ("# memory-check", dom0-init).
  if [ "$suite" = trixie ]; then
    target/release/cocoon-image bundle "$kernels/trixie-generic/vmlinuz" --initrd "$guest_initrd" \
      --cmdline "console=hvc0" -o "$ov/matrix/cocoon-generic-bundle.bin" >/dev/null || return 1
    printf '# timeout=600\n# console=pv\n# memory-check\nname="cocoonhvmgen4g"\ntype="hvm"\nmemory=4096\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-generic-bundle.bin"\ncmdline="%s"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/cocoonhvmgen4g-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/99-cocoonhvmgen4g.cfg"
  fi
  # The SMP rows (issue 14; not in ci/test.sh's required rows yet): two vCPUs,
  # and the guest checks them (matrix.smp=2 on its command line, "# smp=2" for
  # dom0-init): nproc, the pinned parallel workload (smpstress, 30 s), its last
  # CPU offline and online again, no kernel complaint; then `xl vcpu-set` 2 -> 1
  # -> 2, recorded but not deciding the row. Plain PV is the reference.
  printf '# timeout=240\n# smp=2\nname="pvsmp"\ntype="pv"\nvcpus=2\nmemory=512\nkernel="/matrix/vmlinuz"\nramdisk="/matrix/guest.cpio.gz"\nextra="console=hvc0 matrix.smp=2"\n' >"$ov/matrix/guests/995-pvsmp.cfg"
  # (earlyprintk=xen: a kernel that panics before its console is up says why
  # on Cocoon's serial log, which a failed row prints.)
  target/release/cocoon-image bundle "$kernels/bookworm/vmlinuz" --initrd "$guest_initrd" \
    --cmdline "console=hvc0 matrix.smp=2 earlyprintk=xen" -o "$ov/matrix/cocoon-smp-bundle.bin" >/dev/null || return 1
  printf '# timeout=300\n# console=pv\n# smp=2\nname="cocoonhvmsmp"\ntype="hvm"\nvcpus=2\nmemory=512\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-smp-bundle.bin"\ncmdline="%s"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/cocoonhvmsmp-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/996-cocoonhvmsmp.cfg"
  printf '# timeout=480\n# smp=2\nname="cocoonhvmsmp34"\ntype="hvm"\nvcpus=2\nmemory=512\nkernel="/matrix/cocoon.bzImage"\nramdisk="/matrix/cocoon-smp-bundle.bin"\ncmdline="cocoon.compat=3.4 %s"\ndevice_model_version="qemu-xen"\nserial="file:/tmp/cocoonhvmsmp34-serial.log"\nvnc=0\nsdl=0\nvga="none"\ntsc_mode="native"\n' "${COCOON_MATRIX_COCOON_OPTS:-}" >"$ov/matrix/guests/997-cocoonhvmsmp34.cfg"
  # Booting from the guest's own disk (issue 16): a PV domain as operators
  # have it, bootloader="pygrub", with a disk like a Debian guest's (MBR, ext4
  # root, the bookworm cloud kernel and its initrd in /boot, grub.cfg from
  # Debian's grub-mkconfig), a vif, and the trixie kernel waiting in /stage:
  # the guest installs it with the grub.cfg update-grub writes for both and
  # reboots into it. pvgrub runs it as plain PV; cocoongrub is the same config
  # converted by `cocoon-image convert` in dom0, and cocoonlegacy the same
  # with a GRUB legacy menu.lst. Each guest gets its own copy of its disk.
  local want_disk
  want_disk=" ${COCOON_MATRIX_GUESTS:-pvgrub cocoongrub cocoonlegacy} "
  if [[ $want_disk == *" pvgrub "* || $want_disk == *" cocoongrub "* || $want_disk == *" cocoonlegacy "* ]]; then
    mkdir -p "$ov/matrix/convert"
    cp target/release/cocoon-image "$ov/matrix/cocoon-image"
    for config in grub2 legacy; do
      diskboot_image "$config" "$ov/matrix/disk-$config.img" || return 1
    done
    pvgrub_cfg() { # NAME CONFIG
      printf '# timeout=600\n# devices\n# diskboot=%s %s\n# disk-copy=/matrix/disk-%s.img /tmp/%s.img\nname="%s"\ntype="pv"\nmemory=512\nvcpus=1\nbootloader="pygrub"\nextra="console=hvc0 matrix.devices=1 matrix.diskboot=1"\ndisk=["format=raw,vdev=xvda,access=rw,backendtype=qdisk,target=/tmp/%s.img"]\nvif=["bridge=xenbr0,script=/matrix/vif-min"]\non_reboot="restart"\ntsc_mode="native"\n' \
        "$kb" "$kt" "$2" "$1" "$1" "$1"
    }
    pvgrub_cfg pvgrub grub2 >"$ov/matrix/guests/980-pvgrub.cfg"
    pvgrub_cfg cocoongrub grub2 >"$ov/matrix/convert/981-cocoongrub.cfg"
    pvgrub_cfg cocoonlegacy legacy >"$ov/matrix/convert/982-cocoonlegacy.cfg"
  fi
  if [ -n "${COCOON_MATRIX_GUESTS:-}" ]; then
    for f in "$ov"/matrix/convert/*.cfg; do
      [ -e "$f" ] || continue
      n=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$f")
      case " $COCOON_MATRIX_GUESTS " in *" $n "*) ;; *) rm -f "$f" ;; esac
    done
    for f in "$ov"/matrix/guests/*.cfg; do
      n=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$f")
      case " $COCOON_MATRIX_GUESTS " in *" $n "*) ;; *) rm -f "$f" ;; esac
    done
  fi
  # The nested machine: dom0's 1536 MiB and room for the 512 MiB rows; a
  # 4 GiB row needs 3 GiB more.
  local mem=3072
  [ -f "$ov/matrix/guests/99-cocoonhvmgen4g.cfg" ] && mem=6144
  # COCOON_MATRIX_ROUNDS=N (ci/bench-matrix.sh): every row N times,
  # interleaved (each row's round 1, then each row's round 2, ...), so that
  # a change in the machine's load falls on every row alike. The order turns
  # by one row each round (pv, pvshim, cocoon; pvshim, cocoon, pv; ...): a
  # row that runs later in the nested machine's life (more translated code
  # in QEMU's caches, more domains created before it) is not always the same.
  if [ "${COCOON_MATRIX_ROUNDS:-1}" -gt 1 ]; then
    local cfgs=("$ov"/matrix/guests/*.cfg) n i
    n=${#cfgs[@]}
    if [ -e "${cfgs[0]}" ]; then
      for r in $(seq 1 "$COCOON_MATRIX_ROUNDS"); do
        for i in $(seq 0 $((n - 1))); do
          cp "${cfgs[$i]}" "$ov/matrix/guests/r$(printf %02d "$r")-p$(printf %02d $(((i + n - (r - 1) % n) % n)))-$(basename "${cfgs[$i]}")"
        done
      done
      rm -f "${cfgs[@]}"
    fi
    touch "$ov/matrix/rounds"
  fi
  (cd "$ov" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 >"$run/overlay.cpio")
  rm -rf "$ov"
  cat "$rig/dom0-base.cpio" "$run/overlay.cpio" >"$run/dom0.cpio"
  local icount=()
  [ "${COCOON_MATRIX_ICOUNT:-0}" = 1 ] && icount=(-icount shift=0)
  t0=$(date +%s)
  "$qemu" -accel tcg -cpu "${COCOON_MATRIX_CPU:-max,-smap,-smep,-xsave}" -m $mem -smp 1 -display none -vga none -nic none -no-reboot \
    -monitor "unix:$run/monitor.sock,server=on,wait=off" -serial "file:$run/serial.log" "${icount[@]}" \
    -kernel "$rig/xen" -append "console=com1 com1=115200 dom0_mem=1536M,max:1536M loglvl=all guest_loglvl=all" \
    -initrd "$rig/dom0-vmlinuz console=hvc0 earlyprintk=xen,$run/dom0.cpio" >"$run/qemu.log" 2>&1 &
  qpid=$!
  # Stages: dom0 up in 300 s, toolstack 120 s later, everything within $limit s.
  # A nested machine that takes no CPU time for 60 s has stopped (dom0's own
  # tests wake every 0.2 s): its state is dumped and the column ends there.
  local stage=dom0 deadline=$((t0 + 300)) cpu last_cpu=-1 idle=0
  while kill -0 $qpid 2>/dev/null; do
    sleep 2
    cpu=$(awk '{print $14 + $15}' "/proc/$qpid/stat" 2>/dev/null)
    if [ "$cpu" = "$last_cpu" ]; then idle=$((idle + 1)); else idle=0 last_cpu=$cpu; fi
    if [ $idle -ge 30 ]; then
      echo "MATRIX: stage=$stage result=stopped detail=the-nested-machine-took-no-cpu-for-60s after_s=$(($(date +%s) - t0))" |
        tee -a "$run/serial.log"
      dump_machine "$run" $qpid | sed "s/^/MATRIX-MACHINE: suite=$suite /"
      break
    fi
    if grep -q "MATRIX: all done" "$run/serial.log" 2>/dev/null; then break; fi
    if [ $stage = dom0 ] && grep -q "MATRIX: stage=dom0 result=ok" "$run/serial.log" 2>/dev/null; then
      stage=toolstack deadline=$(($(date +%s) + 120))
    fi
    if [ $stage = toolstack ] && grep -q "MATRIX: stage=toolstack result=ok" "$run/serial.log" 2>/dev/null; then
      stage=guests deadline=$((t0 + limit))
    fi
    if [ "$(date +%s)" -gt $deadline ]; then
      echo "MATRIX: stage=$stage result=timeout after_s=$(($(date +%s) - t0))" | tee -a "$run/serial.log"
      dump_machine "$run" $qpid | sed "s/^/MATRIX-MACHINE: suite=$suite /"
      break
    fi
  done
  kill $qpid 2>/dev/null
  wait $qpid 2>/dev/null
  echo "MATRIX: suite=$suite wall_s=$(($(date +%s) - t0))" >>"$run/serial.log"
  grep -a "^MATRIX" "$run/serial.log" | sed "s/^MATRIX: /MATRIX: suite=$suite xen=$xv /" >"$run/results"
}

for s in $suites; do
  echo "== Xen matrix column: $s (logs in $logs/$s)" >&2
  run_column "$s" || status=1
done

# The table.
metrics="null_syscall page_fault fork_exit_wait fork_exec pipe_pingpong mmap_munmap clock_gettime"
for s in $suites; do
  r=$logs/$s/results
  [ -f "$r" ] || { echo "$s: no results"; status=1; continue; }
  echo
  echo "Xen $(sed -n 's/.*xen=\([0-9.]*\) .*/\1/p' "$r" | head -1) ($s), $(grep -o 'wall_s=[0-9]*' "$r" | tail -1)"
  grep -E "stage=.*result=(fail|timeout|stopped)" "$r" | sed 's/^/  /'
  grep -E " step=" "$r" | sed 's/^MATRIX: suite=[^ ]* xen=[^ ]* /  /'
  printf '  %-14s %-10s %11s %6s' guest result "userspace_s" "row_s"
  for m in $metrics; do printf ' %14s' "$m"; done
  echo
  pv_vals=()
  for g in pv pvshim hvm cocoon cocoonhvm cocoonhvm34 cocoondev cocoonhvmdev cocoonhvmdev34 cocoonhvmgen4g \
    pvsmp cocoonhvmsmp cocoonhvmsmp34 pvgrub cocoongrub cocoonlegacy cocoonlife cocoonlifesmp cocoonlife34; do
    line=$(grep "guest=$g result=" "$r" | tail -1)
    [ -n "$line" ] || continue
    res=$(echo "$line" | sed -n 's/.*result=\([^ ]*\).*/\1/p')
    us=$(echo "$line" | sed -n 's/.*userspace_s=\([^ ]*\).*/\1/p')
    rs=$(echo "$line" | sed -n 's/.*row_s=\([^ ]*\).*/\1/p')
    printf '  %-14s %-10s %11s %6s' "$g" "$res" "$us" "${rs:--}"
    for m in $metrics; do
      v=$(grep "guest=$g bench metric=$m " "$r" | sed -n 's/.*ns_per_op=\([0-9]*\).*/\1/p' | tail -1)
      base=$(grep "guest=pv bench metric=$m " "$r" | sed -n 's/.*ns_per_op=\([0-9]*\).*/\1/p' | tail -1)
      if [ -n "$v" ] && [ -n "$base" ] && [ "$base" -gt 0 ]; then
        printf ' %14s' "$v($(awk -v a="$v" -v b="$base" 'BEGIN { printf "%.2fx", a / b }'))"
      else
        printf ' %14s' "${v:--}"
      fi
    done
    echo
  done
done
for s in $suites; do
  for g in ${COCOON_MATRIX_REQUIRE:-}; do
    if ! grep -q "guest=$g result=ok" "$logs/$s/results" 2>/dev/null; then
      echo "MATRIX: required row $g is not ok on $s"
      status=1
    fi
  done
done
echo
echo "(ns per operation measured by the guest's CLOCK_MONOTONIC under QEMU TCG$([ "${COCOON_MATRIX_ICOUNT:-0}" = 1 ] && echo ' with -icount shift=0'); ratios are to plain PV; userspace_s is from xl create to the guest's first userspace line, row_s to the row's end)"
exit $status
