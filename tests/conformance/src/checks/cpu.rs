//! What a PV kernel sees of the CPU: CR4 as Xen 4.17 shows it
//! (`pv_fixup_guest_cr4`: the bits the guest toggles, TSD, DE, FSGSBASE and
//! OSXSAVE, where its CPUID offers them, and the hardware's PAE, MCE,
//! OSFXSR and OSXMMEXCPT; anything else written is dropped), FSGSBASE
//! offered to PV guests (cpufeatureset.h marks it `A`), and CPUID, CR4, the
//! instructions and the FS_BASE MSR agreeing.

use core::arch::asm;

use super::{ensure, ensure_eq, Outcome};
use crate::traps;
use crate::xen::*;

/// CPUID through Xen's forced-emulation prefix (`ud2; .ascii "xen"; cpuid`).
fn xen_cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the hypervisor emulates the prefixed cpuid; rbx is saved by hand.
    unsafe {
        asm!(
            "mov {b:r}, rbx",
            "ud2",
            ".ascii \"xen\"",
            "cpuid",
            "xchg {b:r}, rbx",
            b = out(reg) b,
            inout("eax") leaf => a,
            inout("ecx") sub => c,
            out("edx") d,
        );
    }
    [a, b, c, d]
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: a privileged read the hypervisor emulates.
    unsafe { asm!("mov {}, cr4", out(reg) v) };
    v
}

fn write_cr4(v: u64) {
    // SAFETY: a privileged write the hypervisor emulates with its own checks.
    unsafe { asm!("mov cr4, {}", in(reg) v) };
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: a privileged read the hypervisor emulates.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi) };
    ((hi as u64) << 32) | lo as u64
}

/// `wrfsbase rax` then `rdfsbase rax` (5 bytes each; a #UD skips each);
/// `(rax, traps taken)`.
fn fsbase_roundtrip(v: u64) -> (u64, u64) {
    traps::expect_skip(5);
    let mut r = v;
    // SAFETY: writes this kernel's own FS base (unused by it), or #UDs.
    unsafe { asm!("wrfsbase rax", "xor eax, eax", "rdfsbase rax", inout("rax") r) };
    (r, traps::taken().0)
}

pub fn cr4_and_fsgsbase() -> Outcome {
    let cr4 = read_cr4();
    ensure_eq!(cr4 & PV_CR4_GUEST_MASK, 0, "the guest's own CR4 bits at boot");
    ensure!(cr4 & X86_CR4_PAE != 0, "CR4 {cr4:#x} lacks PAE");
    ensure_eq!(cr4 & !(PV_CR4_GUEST_MASK | PV_CR4_GUEST_VISIBLE_MASK), 0, "CR4 bits a PV guest never sees");
    let has = xen_cpuid(7, 0)[1] & 1 != 0;
    // Asking for FSGSBASE and PGE: PGE is dropped, FSGSBASE kept if offered.
    write_cr4(cr4 | X86_CR4_FSGSBASE | X86_CR4_PGE);
    let now = read_cr4();
    let want = cr4 | if has { X86_CR4_FSGSBASE } else { 0 };
    ensure_eq!(now, want, "CR4 after writing FSGSBASE and PGE");
    let (r, traps_taken) = fsbase_roundtrip(0x1234_5000);
    if has {
        ensure_eq!(traps_taken, 0, "traps taken by wrfsbase/rdfsbase with CR4.FSGSBASE");
        ensure_eq!(r, 0x1234_5000, "rdfsbase after wrfsbase");
        ensure_eq!(rdmsr(MSR_FS_BASE), 0x1234_5000, "MSR_FS_BASE after wrfsbase");
    } else {
        let (_, t) = traps::taken();
        ensure_eq!((traps_taken, t.vector), (2, 6), "wrfsbase/rdfsbase without FSGSBASE: (traps, vector)");
    }
    write_cr4(cr4);
    ensure_eq!(read_cr4(), cr4, "CR4 after clearing FSGSBASE");
    let (_, traps_taken) = fsbase_roundtrip(0);
    let (_, t) = traps::taken();
    ensure_eq!((traps_taken, t.vector), (2, 6), "wrfsbase/rdfsbase with CR4.FSGSBASE clear: (traps, vector)");
    crate::println!("conformance:   (the CPU {} FSGSBASE)", if has { "has" } else { "lacks" });
    Ok(())
}

/// MSR_IA32_DEBUGCTLMSR: Xen 4.17 has no case for it in a PV guest's
/// `read_msr`/`write_msr` (nor in `guest_{rd,wr}msr`), and libxl leaves
/// `msr_relaxed` off for a new domain: both #GP (2 bytes each, skipped).
pub fn debugctl_faults() -> Outcome {
    traps::expect_skip(2);
    let (mut lo, mut hi) = (0x1111u32, 0x2222u32);
    // SAFETY: privileged MSR accesses the hypervisor emulates or refuses.
    unsafe {
        asm!("rdmsr", in("ecx") MSR_IA32_DEBUGCTLMSR, inout("eax") lo, inout("edx") hi);
        asm!("wrmsr", in("ecx") MSR_IA32_DEBUGCTLMSR, in("eax") 0u32, in("edx") 0u32);
    }
    let (n, t) = traps::taken();
    ensure_eq!(
        (n, t.vector, t.error_code),
        (2, 13, Some(0)),
        "rdmsr and wrmsr of DEBUGCTL: (traps, vector, error code)"
    );
    ensure_eq!((lo, hi), (0x1111, 0x2222), "eax:edx after the faulting rdmsr");
    Ok(())
}

/// `rdmsr` of `msr` with garbage in rax and rdx first: the whole registers.
fn rdmsr_full(msr: u32) -> (u64, u64) {
    let (mut rax, mut rdx) = (0xdead_beef_0000_0000u64, 0xfeed_face_0000_0000u64);
    // SAFETY: a privileged read the hypervisor emulates.
    unsafe { asm!("rdmsr", in("ecx") msr, inout("rax") rax, inout("rdx") rdx) };
    (rax, rdx)
}

/// The segment-base MSRs read back what `HYPERVISOR_set_segment_base` set
/// (Xen's `read_msr`: FS, the active GS and the inactive GS, the user's, of
/// a vCPU in kernel mode), as edx:eax with the upper halves of rax and rdx
/// clear (a 32-bit register write). Cocoon answers these in its #GP fast
/// path (`firmware/src/arch/gp_entry.rs`).
pub fn segment_base_msrs() -> Outcome {
    let kernel_gs = rdmsr(MSR_GS_BASE);
    let cases = [
        (SEGBASE_FS, MSR_FS_BASE, 0x0000_7f12_3456_7000u64),
        (SEGBASE_GS_USER, MSR_SHADOW_GS_BASE, 0x0000_7f98_7654_3000),
        (SEGBASE_GS_KERNEL, MSR_GS_BASE, 0xffff_8800_1234_5000),
    ];
    for (which, msr, v) in cases {
        ensure_eq!(hypercall(__HYPERVISOR_set_segment_base, [which, v, 0, 0, 0]), 0, "set_segment_base");
        let (rax, rdx) = rdmsr_full(msr);
        // Restore the kernel's GS base before anything can fail.
        let _ = hypercall(__HYPERVISOR_set_segment_base, [SEGBASE_GS_KERNEL, kernel_gs, 0, 0, 0]);
        ensure_eq!((rax, rdx), (v & 0xffff_ffff, v >> 32), "rax and rdx after rdmsr of the base just set");
    }
    for which in [SEGBASE_FS, SEGBASE_GS_USER] {
        ensure_eq!(hypercall(__HYPERVISOR_set_segment_base, [which, 0, 0, 0, 0]), 0, "set_segment_base back to 0");
    }
    ensure_eq!(rdmsr(MSR_GS_BASE), kernel_gs, "the kernel's GS base, restored");
    Ok(())
}
