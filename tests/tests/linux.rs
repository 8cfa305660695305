//! Debian's unmodified PV cloud kernels, run inside Cocoon on plain QEMU
//! (standalone backend) to userspace, with the acceptance checks of /init.

use std::time::Duration;

use cocoon_tests::{firmware, initramfs, kernel, kernel_trouble, ExitReason, Qemu};

fn run_acceptance(suite: &str) {
    let k = kernel(suite);
    let init = initramfs("test");
    let out = Qemu::new(&format!("linux_{suite}"), firmware())
        .arg("-cpu")
        .arg("max")
        .modules(&[format!("{} console=hvc0", k.display()), init.display().to_string()])
        .timeout(Duration::from_secs(300))
        .run();
    out.assert_serial("Hypervisor detected: Xen PV");
    out.assert_serial("on Xen");
    out.assert_serial("xen:events: Using 2-level ABI");
    out.assert_serial("COCOON-TEST: init started");
    out.assert_serial("COCOON-TEST: fork-exec 200 ok");
    out.assert_serial("COCOON-TEST: pipe ping-pong 100 ok");
    out.assert_serial("COCOON-TEST: 64 MiB touched ok");
    out.assert_serial("COCOON-TEST: sleep 1 took");
    out.assert_serial("COCOON-TEST: PASS");
    out.assert_serial("guest shut down: poweroff");
    let trouble = kernel_trouble(&out.serial);
    assert!(trouble.is_empty(), "kernel log has trouble ({}):\n{}", out.log_path.display(), trouble.join("\n"));
    out.assert_exit(ExitReason::GuestPoweroff);
    eprintln!("{suite}: guest ran to poweroff in {:?}", out.elapsed);
}

#[test]
fn bookworm_6_1_runs_to_userspace() {
    run_acceptance("bookworm");
}

#[test]
fn bullseye_5_10_runs_to_userspace() {
    run_acceptance("bullseye");
}

/// A guest that panics (no root file system) ends QEMU with the crash status.
#[test]
fn guest_panic_ends_with_crash_status() {
    let k = kernel("bookworm");
    let out = Qemu::new("linux_panic", firmware())
        .arg("-cpu")
        .arg("max")
        .modules(&[format!("{} console=hvc0 root=/dev/nonexistent", k.display())])
        .timeout(Duration::from_secs(300))
        .run();
    out.assert_serial("Kernel panic - not syncing");
    out.assert_serial("guest shut down: crash (reason 3)");
    out.assert_exit(ExitReason::GuestCrash);
}

/// The bookworm kernel, the test initramfs and "console=hvc0" as one bundle file.
fn test_bundle(name: &str) -> std::path::PathBuf {
    let k = std::fs::read(kernel("bookworm")).unwrap();
    let init = std::fs::read(initramfs("test")).unwrap();
    let path = cocoon_tests::log_dir().join(name);
    std::fs::write(&path, hvm_glue::bundle::build(&k, Some(&init), Some("console=hvc0"))).unwrap();
    path
}

/// A bundle from `test_bundle` ran its acceptance checks cleanly, booted via `protocol`.
fn assert_bundle_passed(out: &cocoon_tests::Outcome, protocol: &str) {
    out.assert_serial(&format!("booted via {protocol}"));
    out.assert_serial("guest command line (from the bundle): \"console=hvc0\"");
    out.assert_serial("COCOON-TEST: PASS");
    let trouble = kernel_trouble(&out.serial);
    assert!(trouble.is_empty(), "kernel log has trouble:\n{}", trouble.join("\n"));
    out.assert_exit(ExitReason::GuestPoweroff);
}

/// Through the PVH entry with one module: a bundle of kernel, initrd and command
/// line (what Xen's PVH `ramdisk=` can carry).
#[test]
fn pvh_bundle_runs_to_userspace() {
    let path = test_bundle("pvh-bundle.bin");
    let out = Qemu::new("linux_pvh_bundle", cocoon_tests::firmware_pvh_only())
        .arg("-cpu")
        .arg("max")
        .arg("-initrd")
        .arg(path.to_str().unwrap())
        .timeout(Duration::from_secs(300))
        .run();
    assert_bundle_passed(&out, "Pvh");
}

/// Cocoon as a bzImage (Linux boot protocol, as Xen HVM direct kernel boot and
/// syslinux start it), with the bundle as its initrd and its options on the
/// kernel command line: the real-mode stub, E820 and boot_params.
#[test]
fn bzimage_bundle_runs_to_userspace() {
    let path = test_bundle("bzimage-bundle.bin");
    let out = Qemu::new("linux_bzimage_bundle", cocoon_tests::firmware_bzimage())
        .arg("-initrd")
        .arg(path.to_str().unwrap())
        .append("cocoon.log=debug")
        .timeout(Duration::from_secs(300))
        .run();
    assert_bundle_passed(&out, "Linux");
}

/// The operator's disk image: SeaBIOS boots syslinux from the FAT image, which
/// starts Cocoon's bzImage with the bundle (`cocoon-image hvm --disk`).
#[test]
fn disk_image_through_the_bios_runs_to_userspace() {
    let bundle = test_bundle("disk-bundle.bin");
    let img = cocoon_tests::log_dir().join("cocoon-disk.img");
    cocoon_image::disk::build(&img, cocoon_tests::firmware_bzimage(), &bundle, "cocoon.log=info").unwrap();
    let out = Qemu::without_kernel("linux_disk_image")
        .arg("-drive")
        .arg(&format!("file={},format=raw,if=ide", img.display()))
        .timeout(Duration::from_secs(300))
        .run();
    out.assert_serial("booted via Linux");
    out.assert_serial("COCOON-TEST: PASS");
    out.assert_exit(ExitReason::GuestPoweroff);
}
