//! x86_64 bring-up: entry, descriptor tables, trap stubs, per-CPU state and APs.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod gp_entry;
pub mod idt;
pub mod paging;
pub mod percpu;
pub mod pf_entry;
pub mod smp;
pub mod syscall_entry;
pub mod timer;
pub mod trap_entry;

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
