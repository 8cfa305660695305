//! Why the guest left to Cocoon, counted per vCPU: each hypercall by
//! number, each exception by vector, guest system calls, interrupts, and the
//! instructions Cocoon emulated by kind; with `cocoon.stats`, also the TSC
//! cycles Cocoon spent on each. Printed at shutdown, so that a regression
//! points at its cause. Counting is a plain increment on the vCPU's own
//! state (no lock, no atomic); cycles cost two `rdtsc` per exit and are only
//! taken when asked for.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::abi::*;
use crate::regs::{GuestRegs, ENTRY_SYSCALL};

/// Exit kinds: hypercalls 0..63 by number (63 also holds larger numbers),
/// then exceptions by vector, then the rest.
pub const EXIT_HYPERCALL: usize = 0;
const NR_HYPERCALL_SLOTS: usize = 64;
pub const EXIT_EXCEPTION: usize = EXIT_HYPERCALL + NR_HYPERCALL_SLOTS;
/// A system call of a guest process, bounced to the guest kernel.
pub const EXIT_GUEST_SYSCALL: usize = EXIT_EXCEPTION + 32;
/// `int 0x80` (32-bit system calls).
pub const EXIT_INT80: usize = EXIT_GUEST_SYSCALL + 1;
pub const EXIT_TIMER: usize = EXIT_INT80 + 1;
/// A cross-CPU request (kick, TLB shootdown).
pub const EXIT_IPI: usize = EXIT_TIMER + 1;
/// The host Xen's event upcall.
pub const EXIT_UPCALL: usize = EXIT_IPI + 1;
pub const EXIT_OTHER_INTERRUPT: usize = EXIT_UPCALL + 1;
pub const NR_EXITS: usize = EXIT_OTHER_INTERRUPT + 1;

/// Emulated instructions, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulated {
    Rdmsr,
    Wrmsr,
    Cpuid,
    CrRead,
    CrWrite,
    Xsetbv,
    PortIo,
    /// cli/sti in the guest kernel (ignored, as on Xen).
    CliSti,
    /// A write to a live page table (`traps::ptwr`).
    PageTableWrite,
    /// clts, wbinvd, debug-register moves.
    Other,
}
const NR_EMULATED: usize = 10;
const EMULATED_NAMES: [&str; NR_EMULATED] = [
    "rdmsr",
    "wrmsr",
    "cpuid",
    "mov from cr/dr",
    "mov to cr/dr",
    "xsetbv",
    "port I/O",
    "cli/sti",
    "page-table write",
    "other",
];

impl Emulated {
    /// The kind of a privileged instruction `traps::emulate` handled.
    pub fn of(two_byte: bool, opcode: u8) -> Emulated {
        match (two_byte, opcode) {
            (true, 0x32) => Emulated::Rdmsr,
            (true, 0x30) => Emulated::Wrmsr,
            (true, 0x01) => Emulated::Xsetbv,
            (true, 0x20 | 0x21) => Emulated::CrRead,
            (true, 0x22 | 0x23) => Emulated::CrWrite,
            (true, _) => Emulated::Other,
            (false, 0xfa | 0xfb) => Emulated::CliSti,
            (false, _) => Emulated::PortIo,
        }
    }
}

static DETAILED: AtomicBool = AtomicBool::new(false);

/// `cocoon.stats`: time every exit, and report every kind at shutdown.
pub fn set_detailed(on: bool) {
    DETAILED.store(on, Ordering::Relaxed);
}

#[inline]
pub fn detailed() -> bool {
    DETAILED.load(Ordering::Relaxed)
}

/// Report `s` (vCPU `id`'s) as log lines.
pub fn log_report(id: u32, s: &ExitStats) {
    log::info!("stats: vCPU {id}: {} exits to Cocoon, {} of them hypercalls", s.total(), s.hypercalls());
    s.report(detailed(), |l| log::info!("stats: vCPU {id}:   {l}"));
}

#[derive(Clone, Copy, Debug)]
pub struct ExitStats {
    pub count: [u64; NR_EXITS],
    pub cycles: [u64; NR_EXITS],
    pub emulated: [u64; NR_EMULATED],
    /// Guest syscalls and irets the platform's fast path handed to the Rust
    /// path (see `crate::fastpath`); counted in `count` too.
    pub fast_path_misses: u64,
}

impl Default for ExitStats {
    fn default() -> Self {
        ExitStats { count: [0; NR_EXITS], cycles: [0; NR_EXITS], emulated: [0; NR_EMULATED], fast_path_misses: 0 }
    }
}

/// The exit kind of hypercall `nr`.
#[inline]
pub const fn hypercall_exit(nr: u64) -> usize {
    let nr = nr as usize;
    EXIT_HYPERCALL + if nr < NR_HYPERCALL_SLOTS { nr } else { NR_HYPERCALL_SLOTS - 1 }
}

/// The exit kind of an entry with `regs`, before it is handled (for cycle
/// totals; `kernel_mode`: the vCPU was in guest kernel mode).
pub fn exit_kind(kernel_mode: bool, regs: &GuestRegs, timer: u64, ipi: u64, upcall: u64) -> usize {
    match regs.vector {
        ENTRY_SYSCALL if kernel_mode => hypercall_exit(regs.rax),
        ENTRY_SYSCALL => EXIT_GUEST_SYSCALL,
        0x80 => EXIT_INT80,
        v if v < 32 => EXIT_EXCEPTION + v as usize,
        v if v == timer => EXIT_TIMER,
        v if v == ipi => EXIT_IPI,
        v if v == upcall => EXIT_UPCALL,
        _ => EXIT_OTHER_INTERRUPT,
    }
}

impl ExitStats {
    #[inline]
    pub fn exit(&mut self, kind: usize) {
        if let Some(c) = self.count.get_mut(kind) {
            *c += 1;
        }
    }

    #[inline]
    pub fn emulated(&mut self, what: Emulated) {
        self.emulated[what as usize] += 1;
    }

    pub fn add_cycles(&mut self, kind: usize, cycles: u64) {
        if let Some(c) = self.cycles.get_mut(kind) {
            *c += cycles;
        }
    }

    pub fn total(&self) -> u64 {
        self.count.iter().sum()
    }

    pub fn hypercalls(&self) -> u64 {
        self.count[EXIT_HYPERCALL..EXIT_HYPERCALL + NR_HYPERCALL_SLOTS].iter().sum()
    }

    /// One line per kind seen, most frequent first: "name count [cycles]".
    /// `full`: every kind; else the ten most frequent.
    pub fn report(&self, full: bool, mut line: impl FnMut(&str)) {
        let mut kinds: alloc::vec::Vec<usize> = (0..NR_EXITS).filter(|&k| self.count[k] != 0).collect();
        kinds.sort_by(|&a, &b| self.count[b].cmp(&self.count[a]));
        let shown = if full { kinds.len() } else { kinds.len().min(10) };
        let mut s = alloc::string::String::new();
        for &k in &kinds[..shown] {
            s.clear();
            let _ = write!(s, "{:<24} {:>12}", exit_name(k), self.count[k]);
            if self.cycles[k] != 0 {
                let _ = write!(s, " {:>14} cycles ({} per exit)", self.cycles[k], self.cycles[k] / self.count[k]);
            }
            line(&s);
        }
        for (i, &n) in self.emulated.iter().enumerate() {
            if n != 0 {
                s.clear();
                let _ = write!(s, "emulated {:<15} {:>12}", EMULATED_NAMES[i], n);
                line(&s);
            }
        }
        if self.fast_path_misses != 0 {
            s.clear();
            let _ = write!(s, "{:<24} {:>12}", "fast path handed over", self.fast_path_misses);
            line(&s);
        }
    }
}

/// What exit kind `k` is, for people.
pub fn exit_name(k: usize) -> alloc::string::String {
    use alloc::format;
    match k {
        _ if k < EXIT_EXCEPTION => {
            let nr = (k - EXIT_HYPERCALL) as u64;
            match hypercall_name(nr) {
                Some(n) => format!("hypercall {n}"),
                None if k == EXIT_EXCEPTION - 1 => format!("hypercall {nr}+"),
                None => format!("hypercall {nr}"),
            }
        }
        _ if k < EXIT_GUEST_SYSCALL => format!("exception {}", k - EXIT_EXCEPTION),
        EXIT_GUEST_SYSCALL => "guest system call".into(),
        EXIT_INT80 => "int 0x80".into(),
        EXIT_TIMER => "timer interrupt".into(),
        EXIT_IPI => "IPI".into(),
        EXIT_UPCALL => "host event upcall".into(),
        _ => "other interrupt".into(),
    }
}

/// Xen's name of hypercall `nr` (without `__HYPERVISOR_`).
pub fn hypercall_name(nr: u64) -> Option<&'static str> {
    Some(match nr {
        __HYPERVISOR_set_trap_table => "set_trap_table",
        __HYPERVISOR_mmu_update => "mmu_update",
        __HYPERVISOR_set_gdt => "set_gdt",
        __HYPERVISOR_stack_switch => "stack_switch",
        __HYPERVISOR_set_callbacks => "set_callbacks",
        __HYPERVISOR_fpu_taskswitch => "fpu_taskswitch",
        __HYPERVISOR_sched_op_compat => "sched_op_compat",
        __HYPERVISOR_platform_op => "platform_op",
        __HYPERVISOR_set_debugreg => "set_debugreg",
        __HYPERVISOR_get_debugreg => "get_debugreg",
        __HYPERVISOR_update_descriptor => "update_descriptor",
        __HYPERVISOR_memory_op => "memory_op",
        __HYPERVISOR_multicall => "multicall",
        __HYPERVISOR_update_va_mapping => "update_va_mapping",
        __HYPERVISOR_set_timer_op => "set_timer_op",
        __HYPERVISOR_event_channel_op_compat => "event_channel_op_compat",
        __HYPERVISOR_xen_version => "xen_version",
        __HYPERVISOR_console_io => "console_io",
        __HYPERVISOR_physdev_op_compat => "physdev_op_compat",
        __HYPERVISOR_grant_table_op => "grant_table_op",
        __HYPERVISOR_vm_assist => "vm_assist",
        __HYPERVISOR_update_va_mapping_otherdomain => "update_va_mapping_otherdomain",
        __HYPERVISOR_iret => "iret",
        __HYPERVISOR_vcpu_op => "vcpu_op",
        __HYPERVISOR_set_segment_base => "set_segment_base",
        __HYPERVISOR_mmuext_op => "mmuext_op",
        __HYPERVISOR_xsm_op => "xsm_op",
        __HYPERVISOR_nmi_op => "nmi_op",
        __HYPERVISOR_sched_op => "sched_op",
        __HYPERVISOR_callback_op => "callback_op",
        __HYPERVISOR_xenoprof_op => "xenoprof_op",
        __HYPERVISOR_event_channel_op => "event_channel_op",
        __HYPERVISOR_physdev_op => "physdev_op",
        __HYPERVISOR_hvm_op => "hvm_op",
        __HYPERVISOR_sysctl => "sysctl",
        __HYPERVISOR_domctl => "domctl",
        __HYPERVISOR_kexec_op => "kexec_op",
        __HYPERVISOR_xenpmu_op => "xenpmu_op",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_names_and_report() {
        let mut s = ExitStats::default();
        let r = |vector, rax| GuestRegs { vector, rax, ..Default::default() };
        assert_eq!(exit_kind(true, &r(ENTRY_SYSCALL, __HYPERVISOR_iret), 0xf0, 0xf1, 0xf3), hypercall_exit(23));
        assert_eq!(exit_kind(true, &r(ENTRY_SYSCALL, 1 << 40), 0xf0, 0xf1, 0xf3), EXIT_EXCEPTION - 1);
        assert_eq!(exit_kind(false, &r(ENTRY_SYSCALL, 23), 0xf0, 0xf1, 0xf3), EXIT_GUEST_SYSCALL);
        assert_eq!(exit_kind(false, &r(14, 0), 0xf0, 0xf1, 0xf3), EXIT_EXCEPTION + 14);
        assert_eq!(exit_kind(false, &r(0xf1, 0), 0xf0, 0xf1, 0xf3), EXIT_IPI);
        assert_eq!(exit_kind(false, &r(0x31, 0), 0xf0, 0xf1, 0xf3), EXIT_OTHER_INTERRUPT);
        for _ in 0..3 {
            s.exit(hypercall_exit(__HYPERVISOR_mmu_update));
        }
        s.exit(EXIT_EXCEPTION + 14);
        s.add_cycles(EXIT_EXCEPTION + 14, 900);
        s.emulated(Emulated::Cpuid);
        assert_eq!((s.total(), s.hypercalls()), (4, 3));
        let mut lines = alloc::vec::Vec::new();
        s.report(false, |l| lines.push(alloc::string::String::from(l)));
        assert!(lines[0].starts_with("hypercall mmu_update") && lines[0].ends_with(" 3"), "{lines:?}");
        assert!(lines[1].starts_with("exception 14") && lines[1].contains("900 cycles (900 per exit)"));
        assert!(lines[2].starts_with("emulated cpuid"));
        assert_eq!(exit_name(EXIT_EXCEPTION - 1), "hypercall 63+");
    }
}
