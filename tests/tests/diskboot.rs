//! Booting the kernel the guest's own disk names (`cocoon.boot=disk`), on
//! plain QEMU with the disk on IDE as an HVM domain's xvda is: disks made
//! by ci/make-guest-disk.sh as Debian's tools write them (grub.cfg from
//! Debian's own grub-mkconfig, a GRUB legacy menu.lst, extlinux), on MBR,
//! GPT and a whole-disk filesystem; the kernel that runs is the one the
//! configuration chooses, and a kernel update on the disk is followed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cocoon_tests::{firmware, initramfs, kernel, log_dir, workspace_root, ExitReason, Outcome, Qemu};

/// The filesystem UUID of every test disk (grub.cfg names the root by it).
const UUID: &str = "5d2f0a4e-8c1b-4f6a-9e3d-7b1c2a3d4e5f";

/// A bzImage's version string (`uname -r` once it runs).
fn version(k: &Path) -> String {
    let b = std::fs::read(k).unwrap();
    assert_eq!(&b[0x202..0x206], b"HdrS", "{} is not a bzImage", k.display());
    let p = u16::from_le_bytes([b[0x20e], b[0x20f]]) as usize + 0x200;
    let end = p + b[p..].iter().position(|&c| c == 0).unwrap();
    String::from_utf8_lossy(&b[p..end]).split_whitespace().next().unwrap().to_string()
}

fn make_disk(name: &str, table: &str, config: &str, suites: &[&str]) -> PathBuf {
    let out = log_dir().join(format!("{name}.disk.img"));
    let st = Command::new("bash")
        .arg(workspace_root().join("ci/make-guest-disk.sh"))
        .arg(&out)
        .args([table, config])
        .arg(initramfs("diskboot"))
        .args(suites.iter().map(|s| kernel(s)))
        .env("COCOON_DISK_UUID", UUID)
        .status()
        .expect("run ci/make-guest-disk.sh");
    assert!(st.success(), "ci/make-guest-disk.sh failed for {name}");
    out
}

fn boot(name: &str, disk: &Path, cocoon_args: &str) -> Outcome {
    Qemu::new(name, firmware())
        .append(&format!("cocoon.boot=disk {cocoon_args}"))
        .arg("-drive")
        .arg(&format!("file={},format=raw,if=ide,index=0,media=disk", disk.display()))
        .mem("512M")
        .timeout(Duration::from_secs(240))
        .run()
}

/// The guest ran `kernel`'s kernel to /init with `args` on its command line.
#[track_caller]
fn assert_ran(out: &Outcome, suite: &str, args: &[&str]) {
    out.assert_serial(&format!("COCOON-DISKBOOT: uname {}", version(&kernel(suite))));
    let line = out.serial.lines().find(|l| l.starts_with("COCOON-DISKBOOT: cmdline")).unwrap_or("");
    for a in args {
        assert!(line.split_whitespace().any(|w| w == *a), "{a} not on the command line: {line}");
    }
    out.assert_exit(ExitReason::GuestPoweroff);
}

#[test]
fn grub2_default_entry_operator_choice_and_a_kernel_update() {
    // Before the update: one kernel (bookworm, LZ4); update-grub's default.
    let disk = make_disk("diskboot_grub2", "dos", "grub2", &["bookworm"]);
    let out = boot("diskboot_grub2_before", &disk, "-- console=hvc0 extra=1");
    out.assert_serial("boot disk: IDE disk hda (xvda)");
    out.assert_serial("boot disk: Mbr partition table, 1 ext filesystem(s); /boot/grub/grub.cfg on partition 1");
    assert_ran(&out, "bookworm", &[&format!("root=UUID={UUID}"), "ro", "quiet", "console=hvc0", "extra=1"]);

    // The update: trixie's kernel (zstd) installed beside it and update-grub
    // run again: the newest is the default, the older one in the submenu.
    let disk = make_disk("diskboot_grub2", "dos", "grub2", &["bookworm", "trixie"]);
    let out = boot("diskboot_grub2_after", &disk, "-- console=hvc0");
    assert_ran(&out, "trixie", &[&format!("root=UUID={UUID}")]);

    // The operator picks the older kernel in "Advanced options" (entry 2 of
    // submenu 1: after the newest kernel and its recovery mode), as
    // pygrub's --entry / bootloader_args would.
    let out = boot("diskboot_grub2_entry", &disk, "cocoon.boot_entry=1>2 -- console=hvc0");
    assert_ran(&out, "bookworm", &[]);
}

#[test]
fn grub_legacy_menu_lst_on_gpt_and_extlinux_on_a_whole_disk() {
    let disk = make_disk("diskboot_legacy", "gpt", "legacy", &["bullseye", "bookworm"]);
    let out = boot("diskboot_legacy", &disk, "-- console=hvc0");
    out.assert_serial("boot disk: Gpt partition table, 1 ext filesystem(s); /boot/grub/menu.lst on partition 1");
    assert_ran(&out, "bookworm", &[&format!("root=UUID={UUID}"), "console=hvc0"]);

    let disk = make_disk("diskboot_extlinux", "none", "extlinux", &["bullseye"]);
    let out = boot("diskboot_extlinux", &disk, "-- console=hvc0");
    out.assert_serial("/boot/extlinux/extlinux.conf on partition 0");
    assert_ran(&out, "bullseye", &[&format!("root=UUID={UUID}")]);
}

#[test]
fn a_disk_cocoon_cannot_boot_from_stops_with_a_clear_error() {
    // No bootloader configuration: a filesystem without /boot/grub.
    let img = log_dir().join("diskboot_noconfig.disk.img");
    std::fs::write(&img, b"").unwrap(); // (mke2fs says "Creating regular file" otherwise)
    let root = log_dir().join("diskboot_noconfig.root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), "guest\n").unwrap();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("8M")
        .status()
        .expect("mke2fs (run ci/setup.sh)");
    assert!(st.success());
    let out = boot("diskboot_noconfig", &img, "");
    out.assert_serial("boot disk: no bootloader configuration on the disk (looked for /boot/grub/grub.cfg");
    out.assert_exit(ExitReason::BadInput);

    // No disk at all.
    let out =
        Qemu::new("diskboot_nodisk", firmware()).append("cocoon.boot=disk").timeout(Duration::from_secs(60)).run();
    out.assert_serial("cocoon.boot=disk, but there is no IDE disk");
    out.assert_exit(ExitReason::BadInput);
}
