//! Boot the firmware under QEMU through both entry paths.

use cocoon_tests::{firmware, firmware_pvh_only, log_dir, ExitReason, Qemu};

fn dummy_module(name: &str) -> String {
    let p = log_dir().join(name);
    std::fs::write(&p, vec![0x5a; 12345]).unwrap();
    p.display().to_string()
}

#[test]
fn multiboot_dry_run() {
    let m = dummy_module("mb-kernel.bin");
    let out = Qemu::new("multiboot_dry_run", firmware())
        .append("cocoon.dry-run")
        .modules(&[format!("{m} console=hvc0 root=/dev/ram0")])
        .run();
    out.assert_serial("Cocoon 0.1.0 (PV-in-HVM shim) booted via Multiboot");
    out.assert_serial(
        "platform: no Xen (no XenVMMXenVMM signature in CPUID 0x40000000-0x4000ff00); backend: standalone",
    );
    out.assert_serial("kernel module: 12345 bytes at");
    out.assert_serial("guest command line: \"console=hvc0 root=/dev/ram0\"");
    out.assert_serial("MiB of RAM");
    out.assert_exit(ExitReason::DryRunDone);
}

#[test]
fn pvh_dry_run() {
    let m = dummy_module("pvh-kernel.bin");
    let out = Qemu::new("pvh_dry_run", firmware_pvh_only())
        .append("cocoon.dry-run cocoon.nonsense -- console=hvc0 quiet")
        .arg("-initrd")
        .arg(&m)
        .run();
    out.assert_serial("booted via Pvh");
    out.assert_serial("backend: standalone");
    out.assert_serial("ignoring unknown option 'cocoon.nonsense'");
    out.assert_serial("kernel module: 12345 bytes at");
    out.assert_serial("guest command line: \"console=hvc0 quiet\"");
    out.assert_exit(ExitReason::DryRunDone);
}

#[test]
fn no_kernel_is_a_clean_error() {
    let out = Qemu::new("no_kernel", firmware()).append("cocoon.dry-run").run();
    out.assert_serial("no PV kernel given");
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
