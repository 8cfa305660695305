//! CPU state for running a PV guest: SYSCALL, NX, PAT, the FPU/XSAVE
//! controls the guest's ring-3 code relies on (per CPU), and the legacy PIC silenced.

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::gdt::HYPERVISOR_CS;
use shim_core::abi::{
    FLAT_RING3_CS32, MSR_EFER, MSR_IA32_CR_PAT as MSR_PAT, MSR_STAR, MSR_SYSCALL_MASK as MSR_SFMASK, XEN_MSR_PAT,
};

const EFER_SCE: u64 = 1;
const EFER_NXE: u64 = 1 << 11;
/// SYSCALL clears TF, IF, DF, NT, AC (and RF/VM) like Xen's SYSCALL_MASK.
const SFMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 18);

/// XCR0 bits Cocoon offers a guest: x87, SSE, AVX (when present).
pub const XCR0_OFFERED: u64 = 0b111;

pub fn cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID has no side effects.
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, sub) };
    [r.eax, r.ebx, r.ecx, r.edx]
}

pub fn has_xsave() -> bool {
    cpuid(1, 0)[2] & (1 << 26) != 0
}

/// XCR0 bits the CPU supports (within what Cocoon offers).
pub fn xcr0_supported() -> u64 {
    if !has_xsave() {
        return 0;
    }
    let r = cpuid(0xd, 0);
    ((r[3] as u64) << 32 | r[0] as u64) & XCR0_OFFERED
}

/// The calling CPU's state for running a PV guest (every CPU runs this; its
/// SYSCALL entry, LSTAR and CSTAR, is `percpu`'s). Returns whether the CPU
/// keeps Cocoon's translations across guest page-table switches (global pages).
pub fn init_for_guests() -> bool {
    // SAFETY: Cocoon owns these MSRs and control registers; the values set up
    // SYSCALL with Cocoon's selectors, NX, and the PAT the PV ABI fixes.
    unsafe {
        let mut efer = Msr::new(MSR_EFER);
        let mut v = efer.read() | EFER_SCE;
        if cpuid(0x8000_0001, 0)[3] & (1 << 20) != 0 {
            v |= EFER_NXE;
        }
        efer.write(v);
        // SYSCALL: CS = 0xe008, SS = 0xe010; (SYSRET base 0xe023, never used).
        Msr::new(MSR_STAR).write(((FLAT_RING3_CS32 as u64) << 48) | ((HYPERVISOR_CS as u64) << 32));
        Msr::new(MSR_SFMASK).write(SFMASK);
        Msr::new(MSR_PAT).write(XEN_MSR_PAT);

        // FPU for the guest: MP, NE; no EM. CR4: OSFXSR, OSXMMEXCPT, OSXSAVE.
        let mut cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0);
        cr0 = (cr0 & !(1 << 2)) | (1 << 1) | (1 << 5);
        core::arch::asm!("mov cr0, {}", in(reg) cr0);
        let mut cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4);
        cr4 |= (1 << 9) | (1 << 10);
        if has_xsave() {
            cr4 |= 1 << 18;
        }
        core::arch::asm!("mov cr4, {}", in(reg) cr4);
        if has_xsave() {
            let x = xcr0_supported() & 0b11 | 1;
            core::arch::asm!("xsetbv", in("ecx") 0u32, in("eax") x as u32, in("edx") (x >> 32) as u32);
        }
    }
    super::paging::enable_global_pages()
}

/// Once, on the boot CPU.
pub fn mask_legacy_pic() {
    // SAFETY: the PIC's data ports belong to Cocoon.
    unsafe {
        // The legacy PIC: everything masked (the local APIC timer is used).
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
}

/// Set or clear CR4.FSGSBASE (bit 16) on this CPU; a no-op when it already is.
pub fn set_cr4_fsgsbase(on: bool) {
    const FSGSBASE: u64 = 1 << 16;
    let cr4 = x86_64::registers::control::Cr4::read_raw();
    let new = if on { cr4 | FSGSBASE } else { cr4 & !FSGSBASE };
    if new != cr4 {
        // SAFETY: FSGSBASE only lets ring 3 read and write the FS/GS bases,
        // which are the guest's while it runs; the core sets it only when
        // the CPU has the instructions (CPUID 7.0:EBX[0]).
        unsafe { core::arch::asm!("mov cr4, {}", in(reg) new, options(nostack)) };
    }
}

/// Load debug register `reg` (0-3, 6, 7; anything else is ignored).
pub fn write_debugreg(reg: u8, value: u64) {
    // SAFETY: moves to debug registers change only what raises #DB; the guest's
    // addresses were checked (set_debugreg), and #DB in Cocoon is tolerated (run.rs).
    unsafe {
        match reg {
            0 => core::arch::asm!("mov dr0, {}", in(reg) value, options(nomem, nostack)),
            1 => core::arch::asm!("mov dr1, {}", in(reg) value, options(nomem, nostack)),
            2 => core::arch::asm!("mov dr2, {}", in(reg) value, options(nomem, nostack)),
            3 => core::arch::asm!("mov dr3, {}", in(reg) value, options(nomem, nostack)),
            6 => core::arch::asm!("mov dr6, {}", in(reg) value, options(nomem, nostack)),
            7 => core::arch::asm!("mov dr7, {}", in(reg) value, options(nomem, nostack)),
            _ => {}
        }
    }
}

/// DR6 as the last #DB left it; reset to its quiet value, as Xen's do_debug does.
pub fn take_dr6() -> u64 {
    let dr6: u64;
    // SAFETY: reading and resetting DR6 has no effect beyond the register.
    unsafe {
        core::arch::asm!("mov {}, dr6", out(reg) dr6, options(nomem, nostack));
        core::arch::asm!("mov dr6, {}", in(reg) shim_core::abi::X86_DR6_DEFAULT, options(nomem, nostack));
    }
    dr6
}
