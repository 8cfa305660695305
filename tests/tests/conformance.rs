//! The PV conformance kernel (tests/conformance) inside Cocoon, standalone:
//! every check must pass, each against Xen's documented result.

use cocoon_tests::{conformance_kernel, firmware, ExitReason, Qemu};

/// The checks the kernel runs; each must report `ok` (a check missing from
/// the log fails too, so none can be skipped silently).
const CHECKS: &[&str] = &[
    "unknown_hypercall_is_enosys",
    "debugreg_validity",
    "debugreg_watchpoint",
    "debugreg_breakpoint",
    "debugreg_single_step",
    "port_io_without_iopl_is_gp",
    "port_io_with_iopl_reads_all_ones",
    "port_io_architectural_iopl",
    "port_io_bitmap",
    "architectural_iopl_through_iret",
    "int_n_follows_gate_dpl",
    "int3_is_an_exception",
    "multicall_iret_ends_the_batch",
    "page_fault_frame_and_cr2",
    "linear_l4_slot",
    "mmu_update_reads_requests",
    "cr4_and_fsgsbase",
    "debugctl_faults",
    "segment_base_msrs",
    "grant_v1_maps_copy_swap",
    "grant_v2_status_frames",
    "memory_exchange",
    "upcall_as_a_hypercall_returns",
    "nmi_as_a_hypercall_returns",
    "fifo_event_queues",
];

/// Both with QEMU's default CPU (no FSGSBASE) and with `-cpu max` (FSGSBASE).
#[test]
fn pv_abi_conformance_standalone() {
    run("conformance", None, "lacks");
    run("conformance_cpu_max", Some("max"), "has");
}

fn run(name: &str, cpu: Option<&str>, fsgsbase: &str) {
    let k = conformance_kernel();
    let mut q = Qemu::new(name, firmware()).modules(&[k.display().to_string()]);
    if let Some(cpu) = cpu {
        q = q.arg("-cpu").arg(cpu);
    }
    let out = q.run();
    out.assert_serial(&format!("(the CPU {fsgsbase} FSGSBASE)"));
    let failed: Vec<&str> = out.serial.lines().filter(|l| l.contains(" FAIL: ") || l.contains("panic")).collect();
    let missing: Vec<&&str> = CHECKS.iter().filter(|c| !out.serial.contains(&format!("conformance: {c} ok"))).collect();
    assert!(
        failed.is_empty() && missing.is_empty(),
        "failed: {failed:#?}\nnot ok: {missing:?}\nlog: {}",
        out.log_path.display()
    );
    out.assert_serial(&format!("conformance: {} passed, 0 failed", CHECKS.len()));
    out.assert_exit(ExitReason::GuestPoweroff);
}
