//! Boot the firmware under QEMU through both entry paths.

use cocoon_tests::{firmware, firmware_bzimage, firmware_pvh_only, kernel, log_dir, ExitReason, Qemu};

fn dummy_module(name: &str) -> String {
    let p = log_dir().join(name);
    std::fs::write(&p, vec![0x5a; 12345]).unwrap();
    p.display().to_string()
}

/// The dry run loads the real kernel and builds its domain in real memory.
#[test]
fn multiboot_dry_run_builds_the_domain() {
    let k = kernel("bookworm");
    let initrd = dummy_module("mb-initrd.bin");
    let out = Qemu::new("multiboot_dry_run", firmware())
        .append("cocoon.dry-run")
        .modules(&[format!("{} console=hvc0 root=/dev/ram0", k.display()), initrd])
        .run();
    out.assert_serial("Cocoon 0.1.0 (PV-in-HVM shim) booted via Multiboot");
    out.assert_serial(
        "platform: no Xen (no XenVMMXenVMM signature in CPUID 0x40000000-0x4000ff00); backend: standalone",
    );
    out.assert_serial("initrd module: 12345 bytes at");
    out.assert_serial("guest command line: \"console=hvc0 root=/dev/ram0\"");
    out.assert_serial("MiB of RAM");
    out.assert_serial("kernel: BzImage { protocol: 527 }, lz4 compression, 16 Xen notes");
    out.assert_serial("domain: entry rip 0xffffffff8");
    out.assert_exit(ExitReason::DryRunDone);
}

/// Limits said out loud: more CPUs than Cocoon runs on (counted in the ACPI
/// MADT), a command line longer than start_info holds, too little RAM.
#[test]
fn limits_are_logged() {
    let k = kernel("bookworm");
    let long = format!("console=hvc0 {}end-of-line", "x".repeat(1100));
    let out = Qemu::new("limits_dry_run", firmware())
        .append("cocoon.dry-run")
        .arg("-smp")
        .arg("66")
        .modules(&[format!("{} {long}", k.display())])
        .run();
    out.assert_serial("smp: Cocoon runs on at most 64 CPUs; the others stay off");
    out.assert_serial("vCPUs: the platform has 66 CPUs, 64 online (63 APs answered an IPI)");
    out.assert_serial("guest command line is 1124 bytes; start_info holds 1023: the guest does not see");
    out.assert_serial("xxend-of-line\"");
    out.assert_exit(ExitReason::DryRunDone);
    let out = Qemu::new("too_little_ram", firmware()).mem("32M").modules(&[k.display().to_string()]).run();
    out.assert_serial("memory: not enough memory to decompress the kernel");
    out.assert_exit(ExitReason::BadInput);
}

#[test]
fn pvh_dry_run_builds_the_domain() {
    let k = kernel("bullseye");
    let out = Qemu::new("pvh_dry_run", firmware_pvh_only())
        .append("cocoon.dry-run cocoon.nonsense -- console=hvc0 quiet")
        .arg("-initrd")
        .arg(k.to_str().unwrap())
        .run();
    out.assert_serial("booted via Pvh");
    out.assert_serial("backend: standalone");
    out.assert_serial("ignoring unknown option 'cocoon.nonsense'");
    out.assert_serial("guest command line: \"console=hvc0 quiet\"");
    out.assert_serial("kernel: BzImage");
    out.assert_serial("domain: entry rip 0xffffffff8");
    out.assert_exit(ExitReason::DryRunDone);
}

/// The bzImage form with a plain kernel as its initrd: the guest command line
/// after `--`, the memory map from the real-mode stub's E820 walk.
#[test]
fn bzimage_dry_run_builds_the_domain() {
    let k = kernel("bookworm");
    let out = Qemu::new("bzimage_dry_run", firmware_bzimage())
        .append("cocoon.dry-run -- console=hvc0 quiet")
        .arg("-initrd")
        .arg(k.to_str().unwrap())
        .run();
    out.assert_serial("booted via Linux");
    out.assert_serial("guest command line: \"console=hvc0 quiet\"");
    out.assert_serial("memory: 511 MiB of RAM");
    out.assert_serial("kernel: BzImage");
    out.assert_serial("domain: entry rip 0xffffffff8");
    out.assert_exit(ExitReason::DryRunDone);
}

#[test]
fn bzimage_without_initrd_is_a_clean_error() {
    let out = Qemu::new("bzimage_no_kernel", firmware_bzimage()).append("cocoon.dry-run").run();
    out.assert_serial("no PV kernel given");
    out.assert_exit(ExitReason::BadInput);
}

#[test]
fn no_kernel_is_a_clean_error() {
    let out = Qemu::new("no_kernel", firmware()).append("cocoon.dry-run").run();
    out.assert_serial("no PV kernel given");
    out.assert_exit(ExitReason::BadInput);
}

#[test]
fn malformed_kernel_is_a_clean_error() {
    let m = dummy_module("not-a-kernel.bin");
    let out = Qemu::new("malformed_kernel", firmware()).append("cocoon.dry-run").modules(&[m]).run();
    out.assert_serial("kernel: unknown kernel format (starts 5a 5a 5a 5a");
    out.assert_exit(ExitReason::BadInput);
}

#[test]
fn too_little_memory_is_a_clean_error() {
    let k = kernel("bookworm");
    let out = Qemu::new("too_little_memory", firmware())
        .append("cocoon.dry-run")
        .mem("80M")
        .modules(&[k.display().to_string()])
        .run();
    out.assert_serial("cocoon: [ERROR]");
    out.assert_exit(ExitReason::BadInput);
}

fn fault_run(name: &str, fw: &std::path::Path, fault: &str) -> cocoon_tests::Outcome {
    let m = dummy_module(&format!("{name}.bin"));
    Qemu::new(name, fw).append(&format!("cocoon.fault={fault}")).arg("-initrd").arg(&m).run()
}

#[test]
fn page_fault_dumps_registers_and_fails() {
    let out = fault_run("fault_pf", firmware(), "pf");
    out.assert_serial("*** COCOON FAULT: vector 14 (#PF) error 0x0 at rip 0xffff82");
    out.assert_serial("cr2=0xffff8700dead0000");
    for reg in ["rax=", "rbx=", "rsp=", "r15=", "cs=0xe008", "rflags="] {
        out.assert_serial(reg);
    }
    out.assert_exit(ExitReason::CocoonFault);
}

#[test]
fn other_faults_in_cocoon_are_reported() {
    for (f, line) in [("ud", "vector 6 (#UD)"), ("gp", "vector 13 (#GP)"), ("de", "vector 0 (#DE)")] {
        let out = fault_run(&format!("fault_{f}"), firmware_pvh_only(), f);
        out.assert_serial(&format!("*** COCOON FAULT: {line}"));
        out.assert_exit(ExitReason::CocoonFault);
    }
}

/// No PIT and no TSC rate in CPUID: a clear error and a clean stop, not a hang.
#[test]
fn no_time_source_is_a_clean_error() {
    let k = kernel("bookworm");
    let out = Qemu::new("no_time_source", firmware())
        .arg("-M")
        .arg("pc,pit=off")
        .arg("-cpu")
        .arg("qemu64")
        .append("cocoon.dry-run")
        .modules(&[k.display().to_string()])
        .run();
    out.assert_serial("time: no PIT and no TSC rate in CPUID");
    out.assert_exit(ExitReason::CocoonFault);
}
