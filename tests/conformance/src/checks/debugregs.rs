//! Guest debug registers: HYPERVISOR_set_debugreg/get_debugreg with Xen
//! 4.17's checks (`set_debugreg` in xen/arch/x86/pv/misc-hypercalls.c), and
//! breakpoints, watchpoints and single-steps delivered as #DB with DR6.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use super::{ensure, ensure_eq, Outcome};
use crate::traps::{self, CLEAR_TF, DISARM_DR7};
use crate::xen::*;

/// A 4-byte word the watchpoint watches (aligned to its length).
static WATCHED: AtomicU32 = AtomicU32::new(0);

fn watched() -> u64 {
    &WATCHED as *const AtomicU32 as u64
}

/// DR7's enable and RW/LEN fields for breakpoint `n`.
const fn dr7_bp(n: u64, rw: u64, len: u64) -> u64 {
    (1 << (2 * n)) | (rw << (16 + 4 * n)) | (len << (18 + 4 * n))
}

fn clear() {
    set_debugreg(7, 0);
    set_debugreg(6, X86_DR6_DEFAULT);
}

pub fn validity() -> Outcome {
    ensure_eq!(set_debugreg(0, watched()), 0, "DR0 = a kernel address");
    ensure_eq!(get_debugreg(0), watched() as i64, "DR0 read back");
    ensure_eq!(set_debugreg(1, HYPERVISOR_VIRT_START + 0x1000), -XEN_EPERM, "DR1 = an address in Xen's range");
    let dr7 = dr7_bp(0, DR_RW_WRITE, DR_LEN_4);
    ensure_eq!(set_debugreg(7, dr7 | 1 << 40), -XEN_EINVAL, "DR7 with bit 40 set");
    ensure_eq!(set_debugreg(7, dr7 | DR_GENERAL_DETECT), -XEN_EPERM, "DR7 with GD");
    ensure_eq!(set_debugreg(7, dr7_bp(0, DR_IO, DR_LEN_1)), -XEN_EPERM, "an I/O breakpoint without CR4.DE");
    // Reserved bits: 10 reads as 1, 11 and 12 as 0.
    ensure_eq!(set_debugreg(7, dr7 | 1 << 11 | 1 << 12), 0, "DR7 with reserved bits");
    ensure_eq!(get_debugreg(7), (dr7 | X86_DR7_DEFAULT) as i64, "DR7 read back");
    // Without CR4.DE, DR4 and DR5 alias DR6 and DR7.
    ensure_eq!(get_debugreg(5), (dr7 | X86_DR7_DEFAULT) as i64, "DR5 (DR7's alias)");
    set_debugreg(7, 0);
    ensure_eq!(set_debugreg(6, 0), 0, "DR6 = 0");
    ensure_eq!(get_debugreg(4), X86_DR6_DEFAULT as i64, "DR4 (DR6's alias, its fixed bits set)");
    ensure_eq!(set_debugreg(6, 1 << 32), -XEN_EINVAL, "DR6 with bit 32 set");
    ensure_eq!(set_debugreg(8, 0), -XEN_ENODEV, "set DR8");
    ensure_eq!(get_debugreg(8), -XEN_ENODEV, "get DR8");
    clear();
    Ok(())
}

/// A 4-byte write watchpoint on DR0 fires after the store, with B0 in DR6.
pub fn watchpoint() -> Outcome {
    clear();
    WATCHED.store(0, Ordering::SeqCst);
    ensure_eq!(set_debugreg(0, watched()), 0, "DR0");
    ensure_eq!(set_debugreg(7, dr7_bp(0, DR_RW_WRITE, DR_LEN_4)), 0, "DR7");
    traps::expect(0, 0);
    let after: u64;
    // SAFETY: a store to the watched word, which this module owns.
    unsafe {
        asm!(
            "lea {after}, [rip + 3f]",
            "mov dword ptr [{p}], 7",
            "3:",
            after = out(reg) after,
            p = in(reg) watched(),
        );
    }
    let (n, t) = traps::taken();
    let dr6 = get_debugreg(6) as u64;
    clear();
    ensure_eq!(WATCHED.load(Ordering::SeqCst), 7, "the watched word");
    ensure_eq!(n, 1, "traps taken");
    ensure_eq!(t.vector, 1, "vector");
    ensure_eq!(t.rip, after, "#DB rip (a data breakpoint traps after the access)");
    ensure!(dr6 & DR_TRAP0 != 0, "DR6 {dr6:#x} lacks B0");
    ensure_eq!(get_debugreg(6) as u64, X86_DR6_DEFAULT, "DR6 after the kernel cleared it");
    Ok(())
}

#[inline(never)]
extern "C" fn breakpoint_target() -> u64 {
    // Something the optimiser keeps.
    WATCHED.load(Ordering::SeqCst) as u64 + 0x5a
}

/// An execute breakpoint on DR1 faults at the instruction, with B1 in DR6.
pub fn breakpoint() -> Outcome {
    clear();
    WATCHED.store(0, Ordering::SeqCst);
    let target = breakpoint_target as *const () as u64;
    ensure_eq!(set_debugreg(1, target), 0, "DR1");
    ensure_eq!(set_debugreg(7, dr7_bp(1, DR_RW_EXECUTE, DR_LEN_1)), 0, "DR7");
    // The handler disarms DR7 so the instruction runs when it resumes.
    traps::expect(0, DISARM_DR7);
    let r = core::hint::black_box(breakpoint_target as extern "C" fn() -> u64)();
    let (n, t) = traps::taken();
    let dr6 = get_debugreg(6) as u64;
    clear();
    ensure_eq!(r, 0x5a, "the function's result");
    ensure_eq!(n, 1, "traps taken");
    ensure_eq!(t.vector, 1, "vector");
    ensure_eq!(t.rip, target, "#DB rip (an instruction breakpoint faults before it)");
    ensure!(dr6 & DR_TRAP1 != 0, "DR6 {dr6:#x} lacks B1");
    Ok(())
}

/// EFLAGS.TF: a #DB after the next instruction, with BS in DR6.
pub fn single_step() -> Outcome {
    clear();
    traps::expect(0, CLEAR_TF);
    let after: u64;
    // SAFETY: sets TF for one instruction; the #DB handler clears it in the
    // frame it returns through.
    unsafe {
        asm!(
            "lea {after}, [rip + 3f]",
            "pushfq",
            "or qword ptr [rsp], 0x100",
            "popfq",
            "nop",
            "3:",
            after = out(reg) after,
        );
    }
    let (n, t) = traps::taken();
    let dr6 = get_debugreg(6) as u64;
    clear();
    ensure_eq!(n, 1, "traps taken");
    ensure_eq!(t.vector, 1, "vector");
    ensure_eq!(t.rip, after, "#DB rip (after the stepped instruction)");
    ensure!(t.rflags & 0x100 != 0, "the frame's rflags {:#x} lack TF", t.rflags);
    ensure!(dr6 & DR_STEP != 0, "DR6 {dr6:#x} lacks BS");
    Ok(())
}
