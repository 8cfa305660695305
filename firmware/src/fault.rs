//! What happens when Cocoon itself faults or panics: a register dump on
//! COM1 and a failure status, never a silent reset or hang.

use hvm_glue::debug_exit;
use hvm_glue::serial::force_write;
use shim_core::platform::ExitReason;

use shim_core::regs::GuestRegs as TrapFrame;

const NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "22", "23", "24", "25", "26", "27", "#HV", "#VC", "#SX", "31",
];

pub fn vector_name(v: u64) -> &'static str {
    NAMES.get(v as usize).copied().unwrap_or("IRQ")
}

/// Print everything known about a fault in Cocoon and end the machine.
pub fn cocoon_fault(f: &TrapFrame) -> ! {
    let cr0 = x86_64::registers::control::Cr0::read_raw();
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let cr3 = x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64();
    let cr4 = x86_64::registers::control::Cr4::read_raw();
    force_write(format_args!(
        "\n*** COCOON FAULT: vector {} ({}) error {:#x} at rip {:#018x}\n",
        f.vector,
        vector_name(f.vector),
        f.error_code,
        f.rip
    ));
    force_write(format_args!(
        "cr0={cr0:#018x} cr2={cr2:#018x} cr3={cr3:#018x} cr4={cr4:#018x}\n\
         rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n\
         rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}\n\
         r8 ={:#018x} r9 ={:#018x} r10={:#018x} r11={:#018x}\n\
         r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n\
         cs={:#06x} ss={:#06x} rflags={:#010x}\n",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.rsp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        f.cs,
        f.ss,
        f.rflags
    ));
    stop(ExitReason::CocoonFault)
}

/// End the machine with `reason`: debug-exit if present, else halt.
pub fn stop(reason: ExitReason) -> ! {
    force_write(format_args!(
        "cocoon: stopping ({reason:?}, debug-exit status {})\n",
        debug_exit::qemu_exit_status(reason)
    ));
    crate::vcpus::stop_others();
    debug_exit::request_exit(reason);
    // On Xen (no debug-exit device there), end the domain the way the reason says.
    if let Some(rc) = hvm_glue::xen_hvm::shutdown(reason) {
        force_write(format_args!("cocoon: Xen refused SCHEDOP_shutdown ({rc})\n"));
    }
    crate::arch::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    force_write(format_args!("\n*** COCOON PANIC: {info}\n"));
    stop(ExitReason::CocoonFault)
}
