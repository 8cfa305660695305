//! Cocoon: a PV-in-HVM shim. This binary is the bootable firmware: entry,
//! long-mode setup, descriptor tables, heap and logging, and `main`, which
//! wires `hvm-glue` and `shim-core` together.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod fault;
mod heap;
mod logger;
mod physmem;

use hvm_glue::bootinfo::{self, BootInfo};
use hvm_glue::cmdline::{self, FaultInjection, Options};
use hvm_glue::xen_detect::{self, DetectionReport, NativeCpuid};
use log::{error, info, warn};
use shim_core::platform::ExitReason;

use crate::arch::boot::{BOOT_PROTO_MULTIBOOT, BOOT_PROTO_PVH};
use crate::arch::trap_entry::TrapFrame;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Called by the entry stub in long mode, on the boot stack, in the direct map.
#[no_mangle]
extern "C" fn cocoon_main64(proto: u32, magic: u32, info_pa: u32) -> ! {
    logger::init();
    arch::gdt::init();
    arch::idt::init();
    heap::init();

    let mem = physmem::DirectMap;
    let parsed = match proto {
        BOOT_PROTO_MULTIBOOT => bootinfo::parse_multiboot(&mem, magic, info_pa as u64),
        BOOT_PROTO_PVH => bootinfo::parse_pvh(&mem, info_pa as u64),
        _ => unreachable!("entry stub passes a known protocol"),
    };
    let boot = match parsed {
        Ok(b) => b,
        Err(e) => {
            error!("cannot read boot information: {e}");
            fault::stop(ExitReason::BadInput);
        }
    };
    let opts = cmdline::parse(&boot.cmdline);
    log::set_max_level(opts.log_level);
    info!("Cocoon {VERSION} (PV-in-HVM shim) booted via {:?}", boot.protocol);
    for w in &opts.unknown {
        warn!("ignoring unknown option '{w}'");
    }
    log_memory(&boot);

    if let Some(f) = opts.fault {
        inject_fault(f);
    }

    let xen = xen_detect::detect(&NativeCpuid);
    info!("{}", DetectionReport(&xen));

    run(&boot, &opts)
}

fn log_memory(boot: &BootInfo) {
    for r in &boot.memory {
        log::debug!("memory: {:#014x}-{:#014x} {:?}", r.base, r.base + r.len, r.kind);
    }
    info!("memory: {} MiB of RAM in {} map entries", boot.ram_bytes() >> 20, boot.memory.len());
}

fn run(boot: &BootInfo, opts: &Options) -> ! {
    let Some(kernel) = boot.modules.first() else {
        error!("no PV kernel given: pass it as the first boot module (multiboot module or PVH module)");
        fault::stop(ExitReason::BadInput);
    };
    info!("kernel module: {} bytes at {:#x}", kernel.len, kernel.start);
    if let Some(initrd) = boot.modules.get(1) {
        info!("initrd module: {} bytes at {:#x}", initrd.len, initrd.start);
    }
    info!("guest command line: \"{}\"", cmdline::guest_cmdline(boot, opts));
    if opts.dry_run {
        info!("dry run: platform brought up, stopping before the guest runs");
        fault::stop(ExitReason::DryRunDone);
    }
    error!("running a PV kernel is not implemented yet; use cocoon.dry-run");
    fault::stop(ExitReason::BadInput);
}

/// A deliberate fault, so the fault path can be tested end to end.
fn inject_fault(f: FaultInjection) {
    warn!("injecting a deliberate {f:?} fault (cocoon.fault)");
    // SAFETY: each of these faults on purpose; the trap handler never returns here.
    unsafe {
        match f {
            FaultInjection::Ud => core::arch::asm!("ud2"),
            FaultInjection::Pf => {
                core::ptr::read_volatile(0xffff_8700_dead_0000 as *const u64);
            }
            FaultInjection::Gp => {
                core::ptr::read_volatile(0x8000_0000_0000_0000 as *const u64);
            }
            FaultInjection::De => core::arch::asm!(
                "xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx",
                out("eax") _, out("edx") _, out("ecx") _
            ),
        }
    }
}

/// Every interrupt and exception lands here from `trap_common`.
#[no_mangle]
extern "C" fn cocoon_trap(frame: &mut TrapFrame) {
    // Nothing runs below Cocoon yet: any trap is a fault in Cocoon.
    fault::cocoon_fault(frame)
}
