//! The local APIC: xAPIC (MMIO through the direct map) or x2APIC (MSRs), as
//! the firmware left it, or x2APIC on Xen where the CPU has it. Every CPU
//! sees its own APIC at the same address, so these functions act on the
//! calling CPU's APIC.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hvm_glue::layout::phys_to_virt;
use shim_core::abi::MSR_IA32_APICBASE;
use x86_64::registers::model_specific::Msr;

/// IA32_APIC_BASE: the global enable and x2APIC-mode bits, and the base address.
const APICBASE_EXTD: u64 = 1 << 10;
const APICBASE_EN: u64 = 1 << 11;
const APICBASE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// x2APIC register `off` (xAPIC MMIO offset) is MSR `X2APIC_MSR_BASE + off / 16`.
const X2APIC_MSR_BASE: u32 = 0x800;

/// Register offsets (xAPIC MMIO layout).
pub const APIC_ID: usize = 0x20;
pub const APIC_TPR: usize = 0x80;
pub const APIC_EOI: usize = 0xb0;
pub const APIC_SVR: usize = 0xf0;
pub const APIC_ICR_LOW: usize = 0x300;
pub const APIC_ICR_HIGH: usize = 0x310;
pub const APIC_LVT_TIMER: usize = 0x320;
pub const APIC_TIMER_INIT: usize = 0x380;
pub const APIC_TIMER_CUR: usize = 0x390;
pub const APIC_TIMER_DIV: usize = 0x3e0;

/// SVR: APIC software enable.
pub const SVR_ENABLE: u32 = 1 << 8;

/// ICR fields.
pub const ICR_FIXED: u32 = 0 << 8;
pub const ICR_INIT: u32 = 5 << 8;
pub const ICR_STARTUP: u32 = 6 << 8;
pub const ICR_DELIVERY_PENDING: u32 = 1 << 12;
pub const ICR_LEVEL_ASSERT: u32 = 1 << 14;
pub const ICR_TRIGGER_LEVEL: u32 = 1 << 15;
pub const ICR_ALL_BUT_SELF: u32 = 3 << 18;

static X2APIC: AtomicBool = AtomicBool::new(false);
static BASE_VA: AtomicU64 = AtomicU64::new(0);

/// Find the boot CPU's APIC (its mode and, for xAPIC, its base address). On
/// Xen (`on_xen`) switch it to x2APIC mode where the CPU has one: an EOI or
/// a timer write is then an MSR write, which Xen handles without decoding an
/// instruction (an xAPIC's MMIO write is a nested page fault that Xen
/// emulates, once per timer tick and upcall). Without Xen the firmware's mode
/// stays (QEMU's instruction counting cannot read the x2APIC timer count).
/// Every other CPU's APIC is put in the same mode by [`enable_on_this_cpu`].
pub fn init_boot_cpu(on_xen: bool) {
    let mut msr = Msr::new(MSR_IA32_APICBASE);
    // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC; reading it has no side effects.
    let mut base = unsafe { msr.read() };
    // CPUID.1:ECX bit 21: x2APIC.
    let has_x2apic = core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0;
    if on_xen && has_x2apic && base & APICBASE_EN != 0 && base & APICBASE_EXTD == 0 {
        // SAFETY: xAPIC to x2APIC (EN and EXTD set) is an architectural
        // transition; nothing uses the APIC yet (interrupts are off).
        unsafe { msr.write(base | APICBASE_EXTD) };
        // SAFETY: as above.
        base = unsafe { msr.read() };
        log::info!("APIC: x2APIC mode (switched from xAPIC)");
    }
    X2APIC.store(base & APICBASE_EXTD != 0, Ordering::Relaxed);
    BASE_VA.store(phys_to_virt(base & APICBASE_ADDR), Ordering::Relaxed);
}

/// Whether the APICs are driven through MSRs.
pub fn x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// On an AP: globally enable its APIC in the boot CPU's mode (INIT leaves it
/// enabled in xAPIC mode; x2APIC must be switched on from there).
pub fn enable_on_this_cpu() {
    let mut msr = Msr::new(MSR_IA32_APICBASE);
    // SAFETY: setting the enable bits only moves the APIC from xAPIC to x2APIC
    // mode (a legal transition) or keeps it; the base address is unchanged.
    unsafe {
        let v = msr.read();
        let want = v | APICBASE_EN | if x2apic() { APICBASE_EXTD } else { 0 };
        if want != v {
            msr.write(want);
        }
    }
}

pub fn write(off: usize, v: u32) {
    if x2apic() {
        // SAFETY: an architectural x2APIC register of this CPU's APIC.
        unsafe { Msr::new(X2APIC_MSR_BASE + (off as u32 >> 4)).write(v as u64) }
    } else {
        // SAFETY: the local APIC page is MMIO mapped by the direct map.
        unsafe { ((BASE_VA.load(Ordering::Relaxed) + off as u64) as *mut u32).write_volatile(v) }
    }
}

pub fn read(off: usize) -> u32 {
    if x2apic() {
        // SAFETY: as above; reading an APIC register has no side effects.
        unsafe { Msr::new(X2APIC_MSR_BASE + (off as u32 >> 4)).read() as u32 }
    } else {
        // SAFETY: as above.
        unsafe { ((BASE_VA.load(Ordering::Relaxed) + off as u64) as *const u32).read_volatile() }
    }
}

pub fn eoi() {
    write(APIC_EOI, 0);
}

/// This CPU's APIC id (the full 32 bits in x2APIC mode).
pub fn id() -> u32 {
    if x2apic() {
        read(APIC_ID)
    } else {
        read(APIC_ID) >> 24
    }
}

/// Send an IPI: `low` is the ICR's low word (vector, delivery mode, level,
/// shorthand), `dest` the destination APIC id (ignored with a shorthand).
/// Waits until an xAPIC has accepted it. Interrupts are kept off meanwhile,
/// so an interrupt handler's IPI cannot tear the two xAPIC ICR writes apart.
pub fn send_ipi_raw(dest: u32, low: u32) {
    let was_enabled = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    if x2apic() {
        // SAFETY: writing the x2APIC ICR (one MSR) sends the IPI described.
        unsafe { Msr::new(X2APIC_MSR_BASE + (APIC_ICR_LOW as u32 >> 4)).write(((dest as u64) << 32) | low as u64) }
    } else {
        write(APIC_ICR_HIGH, dest << 24);
        write(APIC_ICR_LOW, low);
        while read(APIC_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
            core::hint::spin_loop();
        }
    }
    if was_enabled {
        x86_64::instructions::interrupts::enable();
    }
}
