//! The checks, one per behaviour, each against Xen's documented result.

mod cpu;
mod debugregs;
mod events;
mod fifo;
mod grants;
mod hypercalls;
mod ioports;
mod memory;
mod multicall;
mod pagetables;
mod softint;

/// A check failed; the reason is already on the console.
#[derive(Debug)]
pub struct Failed;

pub type Outcome = Result<(), Failed>;

/// Fail the check unless `cond`, saying why on the console.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            println!("conformance:   {}", format_args!($($arg)*));
            return Err($crate::checks::Failed);
        }
    };
}

/// Fail the check unless `got == want`, saying what was compared.
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $what:expr) => {{
        let (got, want) = ($got, $want);
        if got != want {
            println!("conformance:   {}: got {:#x?}, Xen gives {:#x?}", $what, got, want);
            return Err($crate::checks::Failed);
        }
    }};
}

pub(crate) use {ensure, ensure_eq};

/// A named check.
pub type Check = (&'static str, fn() -> Outcome);

pub const ALL: &[Check] = &[
    ("unknown_hypercall_is_enosys", hypercalls::unknown_hypercall_is_enosys),
    ("debugreg_validity", debugregs::validity),
    ("debugreg_watchpoint", debugregs::watchpoint),
    ("debugreg_breakpoint", debugregs::breakpoint),
    ("debugreg_single_step", debugregs::single_step),
    ("port_io_without_iopl_is_gp", ioports::without_iopl_is_gp),
    ("port_io_with_iopl_reads_all_ones", ioports::with_iopl_reads_all_ones),
    ("port_io_architectural_iopl", ioports::architectural_iopl),
    ("port_io_bitmap", ioports::bitmap),
    ("architectural_iopl_through_iret", ioports::architectural_iopl_through_iret),
    ("int_n_follows_gate_dpl", softint::int_n_follows_gate_dpl),
    ("int3_is_an_exception", softint::int3_is_an_exception),
    ("multicall_iret_ends_the_batch", multicall::iret_ends_the_batch),
    ("page_fault_frame_and_cr2", pagetables::page_fault_frame_and_cr2),
    ("linear_l4_slot", pagetables::linear_l4_slot),
    ("mmu_update_reads_requests", pagetables::mmu_update_reads_requests),
    ("cr4_and_fsgsbase", cpu::cr4_and_fsgsbase),
    ("debugctl_faults", cpu::debugctl_faults),
    ("segment_base_msrs", cpu::segment_base_msrs),
    ("grant_v1_maps_copy_swap", grants::v1_maps_copy_swap),
    ("grant_v2_status_frames", grants::v2_status_frames),
    ("memory_exchange", memory::exchange_swaps_frames),
    ("upcall_as_a_hypercall_returns", events::upcall_as_a_hypercall_returns),
    ("nmi_as_a_hypercall_returns", events::nmi_as_a_hypercall_returns),
    // Last: the domain stays on FIFO.
    ("fifo_event_queues", fifo::fifo_queues),
];
