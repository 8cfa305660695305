//! Debian's unmodified PV kernels (bullseye, bookworm and trixie; cloud and
//! generic), run inside Cocoon on plain QEMU (standalone backend) to
//! userspace with the acceptance checks of /init, at memory sizes from
//! 256 MiB to 16 GiB (QEMU allocates lazily).

use std::time::Duration;

use cocoon_tests::{firmware, initramfs, kernel, kernel_trouble, trouble_report, ExitReason, Qemu};

fn run_acceptance(suite: &str, mem: &str) {
    let out = run_acceptance_smp(suite, mem, 1, "");
    // One CPU: no AP is started, nothing about them is logged.
    let cocoon_says = |what: &str| out.serial.lines().any(|l| l.starts_with("cocoon:") && l.contains(what));
    assert!(!cocoon_says(") online"), "an AP line on one CPU ({})", out.log_path.display());
    assert!(!cocoon_says("smp:"), "an smp line on one CPU ({})", out.log_path.display());
    out.assert_serial("vCPUs: the platform has 1 CPU; the guest runs on it");
}

/// Seconds of the parallel workload on several CPUs (`smpstress`).
const SMP_SECONDS: u32 = 60;

fn run_acceptance_smp(suite: &str, mem: &str, smp: u32, cocoon_args: &str) -> cocoon_tests::Outcome {
    let k = kernel(suite);
    let init = initramfs("test");
    let name = if smp == 1 { format!("linux_{suite}_{mem}") } else { format!("linux_{suite}_{mem}_smp{smp}") };
    let mut q = Qemu::new(&name, firmware());
    if !cocoon_args.is_empty() {
        q = q.append(cocoon_args);
    }
    let out = q
        .arg("-cpu")
        .arg("max")
        .arg("-smp")
        .arg(&smp.to_string())
        .mem(mem)
        .modules(&[
            format!("{} console=hvc0 cocoon_test.smp_seconds={SMP_SECONDS} cocoon_test.nmi=1", k.display()),
            init.display().to_string(),
        ])
        .monitor_when("COCOON-TEST: waiting for an NMI", "nmi")
        .timeout(Duration::from_secs(if smp == 1 { 300 } else { 300 + 3 * SMP_SECONDS as u64 }))
        .run();
    out.assert_serial(&format!("COCOON-TEST: nproc {smp}, {smp} in cpuinfo"));
    out.assert_serial("Hypervisor detected: Xen PV");
    out.assert_serial("on Xen");
    // Standalone, Cocoon offers the FIFO ABI (events::fifo) and Linux takes it.
    out.assert_serial("xen:events: Using FIFO-based ABI");
    out.assert_serial("COCOON-TEST: init started");
    out.assert_serial("COCOON-TEST: fork-exec 200 ok");
    out.assert_serial("COCOON-TEST: pipe ping-pong 100 ok");
    out.assert_serial("COCOON-TEST: 64 MiB touched ok");
    out.assert_serial("COCOON-TEST: sleep 1 took");
    // QEMU's `nmi` (every CPU's): each guest CPU's NMI handler runs and the guest goes on.
    out.assert_serial("COCOON-TEST: NMI received");
    out.assert_serial("NMI received for unknown reason");
    for t in ["watch", "break", "ioperm", "iopl"] {
        out.assert_serial(&format!("COCOON-TEST: abi {t} ok"));
    }
    out.assert_serial("COCOON-TEST: PASS");
    out.assert_serial("guest shut down: poweroff");
    let trouble = kernel_trouble(&out.serial);
    assert!(
        trouble.is_empty(),
        "kernel log has trouble ({}):\n{}\n-- around the first:\n{}",
        out.log_path.display(),
        trouble.join("\n"),
        trouble_report(&out.serial)
    );
    assert!(!out.serial.contains("unchecked MSR access"), "an MSR access faulted ({})", out.log_path.display());
    // The vDSO reads the pvclock copy VCPUOP_register_vcpu_time_memory_area
    // keeps (Linux says nothing when it gets it).
    assert!(
        !out.serial.lines().any(|l| l.contains("VDSO_CLOCKMODE") && l.contains("not supported")),
        "no pvclock vDSO ({})",
        out.log_path.display()
    );
    out.assert_exit(ExitReason::GuestPoweroff);
    assert_sees_all_ram(&out, mem);
    eprintln!("{suite} at {mem}, {smp} CPU(s): guest ran to poweroff in {:?}", out.elapsed);
    out
}

/// The number after `key` in the serial log.
fn number_after(serial: &str, key: &str) -> Option<u64> {
    let rest = &serial[serial.find(key)? + key.len()..];
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Cocoon gave the guest all RAM but its footprint (at most 2 MiB + 1%), and
/// the guest kernel has it: MemTotal within what a kernel keeps for itself.
fn assert_sees_all_ram(out: &cocoon_tests::Outcome, mem: &str) {
    let ram_mib = match mem.strip_suffix('G') {
        Some(g) => g.parse::<u64>().unwrap() << 10,
        None => mem.trim_end_matches('M').parse::<u64>().unwrap(),
    };
    let given = number_after(&out.serial, "memory: guest gets").expect("Cocoon's memory line");
    let seen_ram = number_after(&out.serial, "pages) of").expect("Cocoon's memory line");
    // QEMU's map leaves out a little (the BIOS area, the first MiB).
    assert!(seen_ram + 2 >= ram_mib, "Cocoon saw {seen_ram} MiB of {ram_mib}");
    assert!(given + 2 + ram_mib / 100 >= seen_ram, "the guest got {given} MiB of {seen_ram}: over 2 MiB + 1%");
    let mem_total_kib = number_after(&out.serial, "COCOON-TEST: MemTotal:").expect("MemTotal line");
    // The kernel's image, its page structures (1.6%) and early reservations.
    let floor = (given << 10) * 96 / 100 - (60 << 10);
    assert!(mem_total_kib >= floor, "MemTotal {mem_total_kib} kB, expected at least {floor} kB of {given} MiB");
}

/// Several CPUs: Cocoon starts the APs (INIT-SIPI-SIPI), the guest brings
/// up a vCPU on each (VCPUOP_initialise/up), runs a pinned parallel workload
/// for a minute (fork/exec, pipes across CPUs, threads of one mm mapping and
/// unmapping memory: TLB shootdowns), and takes its last CPU offline and
/// online again; no kernel complaint (lockups, stalls, BUG, WARNING).
fn run_smp(suite: &str, smp: u32, cocoon_args: &str) {
    let out = run_acceptance_smp(suite, "512M", smp, cocoon_args);
    // Every vCPU's exits are reported at shutdown (the other CPUs stopped first).
    for cpu in 0..smp {
        out.assert_serial(&format!("stats: vCPU {cpu}: "));
    }
    out.assert_serial("hypercall iret");
    for cpu in 1..smp {
        out.assert_serial(&format!("cpu {cpu} (APIC id {cpu}) online"));
        out.assert_serial(&format!("vCPU {cpu} up on CPU {cpu}"));
    }
    out.assert_serial(&format!("vCPUs: the platform has {smp} CPUs, {smp} online ({} APs answered an IPI)", smp - 1));
    out.assert_serial(&format!("vCPUs: the guest may bring up {smp}"));
    out.assert_serial(&format!("smp: Brought up 1 node, {smp} CPUs"));
    out.assert_serial("smpstress: ok");
    out.assert_serial("COCOON-TEST: smpstress ok");
    out.assert_serial(&format!("COCOON-TEST: cpu{} offline and online again ok", smp - 1));
    let stalls: Vec<&str> = out
        .serial
        .lines()
        .filter(|l| !l.starts_with("cocoon:"))
        .filter(|l| {
            [
                "self-detected stall",
                "detected stalls",
                "stall on CPU",
                "soft lockup",
                "hard LOCKUP",
                "blocked for more than",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect();
    assert!(stalls.is_empty(), "the kernel complains ({}):\n{}", out.log_path.display(), stalls.join("\n"));
}

#[test]
fn smp4_bookworm_workload_and_cpu_hotplug() {
    // With the cycles each kind of exit cost.
    run_smp("bookworm", 4, "cocoon.stats");
}

#[test]
fn smp2_bullseye_workload_and_cpu_hotplug() {
    run_smp("bullseye", 2, "");
}

#[test]
fn smp2_bookworm_workload_and_cpu_hotplug() {
    run_smp("bookworm", 2, "");
}

#[test]
fn smp4_bullseye_workload_and_cpu_hotplug() {
    run_smp("bullseye", 4, "");
}

#[test]
fn bookworm_6_1_runs_to_userspace() {
    run_acceptance("bookworm", "1G");
}

#[test]
fn bullseye_5_10_runs_to_userspace() {
    run_acceptance("bullseye", "512M");
}

#[test]
fn trixie_6_12_runs_to_userspace() {
    run_acceptance("trixie", "512M");
}

#[test]
fn bookworm_generic_runs_to_userspace() {
    run_acceptance("bookworm-generic", "512M");
}

#[test]
fn bullseye_generic_runs_to_userspace() {
    run_acceptance("bullseye-generic", "512M");
}

#[test]
fn trixie_generic_runs_to_userspace() {
    run_acceptance("trixie-generic", "512M");
}

#[test]
fn bookworm_at_256_mib() {
    run_acceptance("bookworm", "256M");
}

#[test]
fn bookworm_at_3_gib() {
    run_acceptance("bookworm", "3G");
}

#[test]
fn bookworm_at_6_gib() {
    run_acceptance("bookworm", "6G");
}

#[test]
fn bookworm_at_16_gib() {
    run_acceptance("bookworm", "16G");
}

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
