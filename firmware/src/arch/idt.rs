//! Cocoon's IDT, shared by every CPU: every vector with a stub goes to `trap_common`.

use super::gdt::{HYPERVISOR_CS, IST_DEBUG, IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use super::trap_entry::{stub_address, NR_STUBS};

#[repr(C, align(16))]
struct Idt([[u64; 2]; 256]);

static mut IDT: Idt = Idt([[0; 2]; 256]);

/// A 64-bit interrupt gate.
const fn gate(handler: u64, ist: u8, dpl: u64) -> [u64; 2] {
    let lo = (handler & 0xffff)
        | ((HYPERVISOR_CS as u64) << 16)
        | ((ist as u64) << 32)
        | (0x8e << 40)
        | (dpl << 45)
        | (((handler >> 16) & 0xffff) << 48);
    [lo, handler >> 32]
}

pub fn init() {
    // SAFETY: runs once on the boot CPU before interrupts are enabled.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for v in 0..NR_STUBS {
            let ist = match v {
                1 => IST_DEBUG,
                2 => IST_NMI,
                8 => IST_DOUBLE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            // int3, into and int 0x80 may be used from ring 3 (the guest), as on Xen.
            let dpl = if matches!(v, 3 | 4 | 0x80) { 3 } else { 0 };
            idt.0[v] = gate(stub_address(v), ist, dpl);
        }
    }
    load();
}

/// Load the (shared) IDT on the calling CPU.
pub fn load() {
    // SAFETY: the IDT is filled by `init` before any AP starts and never changes afterwards.
    unsafe {
        let idt = &*core::ptr::addr_of!(IDT);
        let ptr = x86_64::structures::DescriptorTablePointer {
            limit: (core::mem::size_of::<Idt>() - 1) as u16,
            base: x86_64::VirtAddr::new(idt.0.as_ptr() as u64),
        };
        x86_64::instructions::tables::lidt(&ptr);
    }
}
