//! Hypercall dispatch: `syscall` from guest kernel mode, number in rax,
//! arguments in rdi, rsi, rdx, r10, r8; the result goes back in rax.

pub mod callbacks;
pub mod descriptors;
pub mod events;
pub mod forward;
pub mod grant;
pub mod memory;
pub mod misc;
pub mod mmu;
pub mod sched;
pub mod suspend;
pub mod vcpu;
pub mod version;

use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::platform::Platform;
use crate::regs::GuestRegs;

/// What a hypercall leaves in rax.
pub enum Ret {
    Value(i64),
    /// The hypercall rewrote the registers itself (iret).
    Regs,
}

impl From<i64> for Ret {
    fn from(v: i64) -> Self {
        Ret::Value(v)
    }
}

pub type Args = [u64; 5];

/// Run hypercall `nr`.
pub fn dispatch<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, nr: u64, a: Args) -> Ret {
    c.v.stats.exits.exit(crate::stats::hypercall_exit(nr));
    match nr {
        __HYPERVISOR_multicall => multicall(c, p, regs, a[0], a[1]),
        __HYPERVISOR_iret => callbacks::iret(c, p, regs),
        __HYPERVISOR_sched_op => sched::sched_op(c, p, regs, a[0], a[1]).into(),
        _ => plain(c, p, nr, a).into(),
    }
}

/// Does hypercall `nr` neither read nor write the guest's registers (so
/// that [`plain`] runs it)? All but `multicall`, `iret` and `sched_op`.
#[inline]
pub fn is_plain(nr: u64) -> bool {
    !matches!(nr, __HYPERVISOR_multicall | __HYPERVISOR_iret | __HYPERVISOR_sched_op)
}

/// [`plain`], with the page-table hypercalls of a fork (43 `mmu_update`s,
/// 18 `update_va_mapping`s and 17 `mmuext_op`s a fork+exit+wait) called
/// straight, not through the general dispatch and its frame.
#[inline(always)]
pub fn plain_hot<P: Platform>(c: &mut Ctx, p: &mut P, nr: u64, a: &Args) -> i64 {
    match nr {
        __HYPERVISOR_mmu_update => mmu::mmu_update(c, p, a[0], a[1], a[2], a[3]),
        __HYPERVISOR_update_va_mapping => mmu::update_va_mapping(c, p, a[0], a[1], a[2]),
        __HYPERVISOR_mmuext_op => mmu::mmuext_op(c, p, a[0], a[1], a[2], a[3]),
        _ => plain(c, p, nr, *a),
    }
}

/// Run hypercall `nr`, one of those [`is_plain`] names (not counted here).
pub fn plain<P: Platform>(c: &mut Ctx, p: &mut P, nr: u64, a: Args) -> i64 {
    let fwd = c.d.forward.is_some();
    match nr {
        __HYPERVISOR_set_trap_table => callbacks::set_trap_table(c, p, a[0]),
        __HYPERVISOR_mmu_update => mmu::mmu_update(c, p, a[0], a[1], a[2], a[3]),
        __HYPERVISOR_set_gdt => descriptors::set_gdt(c, p, a[0], a[1]),
        __HYPERVISOR_stack_switch => {
            c.v.kernel_ss = a[0];
            c.v.kernel_sp = a[1];
            0
        }
        __HYPERVISOR_set_callbacks => callbacks::set_callbacks(c, a[0], a[1], a[2]),
        __HYPERVISOR_fpu_taskswitch => {
            c.v.virtual_ts = a[0] != 0;
            p.set_cr0_ts(a[0] != 0);
            0
        }
        __HYPERVISOR_set_debugreg => misc::set_debugreg(c, p, a[0], a[1]),
        __HYPERVISOR_get_debugreg => misc::get_debugreg(c, a[0]),
        __HYPERVISOR_update_descriptor => descriptors::update_descriptor(c, p, a[0], a[1]),
        __HYPERVISOR_memory_op => memory::memory_op(c, p, a[0], a[1]),
        __HYPERVISOR_update_va_mapping => mmu::update_va_mapping(c, p, a[0], a[1], a[2]),
        __HYPERVISOR_set_timer_op if fwd => forward::set_timer_op(p, c.v.id, a[0]),
        __HYPERVISOR_set_timer_op => sched::set_timer_op(c, p, a[0]),
        __HYPERVISOR_xen_version => version::xen_version(c, p, a[0], a[1]),
        __HYPERVISOR_console_io => misc::console_io(p, a[0], a[1], a[2]),
        __HYPERVISOR_grant_table_op if fwd => forward::grant_table_op(c, p, a[0], a[1], a[2]),
        __HYPERVISOR_grant_table_op => grant::grant_table_op(c, p, a[0], a[1], a[2]),
        __HYPERVISOR_vm_assist => misc::vm_assist(c, a[0], a[1]),
        __HYPERVISOR_vcpu_op if fwd => forward::vcpu_op(c, p, a[0], a[1], a[2]),
        __HYPERVISOR_vcpu_op => vcpu::vcpu_op(c, p, a[0], a[1], a[2]),
        __HYPERVISOR_set_segment_base => misc::set_segment_base(c, p, a[0], a[1]),
        __HYPERVISOR_mmuext_op => mmu::mmuext_op(c, p, a[0], a[1], a[2], a[3]),
        __HYPERVISOR_callback_op => callbacks::callback_op(c, p, a[0], a[1]),
        __HYPERVISOR_event_channel_op if fwd => forward::event_channel_op(c, p, a[0], a[1]),
        __HYPERVISOR_event_channel_op => events::event_channel_op(c, p, a[0], a[1]),
        __HYPERVISOR_physdev_op => misc::physdev_op(c, p, a[0], a[1]),
        _ => {
            debug_assert!(is_plain(nr), "hypercall {nr} is not a plain one");
            unknown(c, nr);
            -XEN_ENOSYS
        }
    }
}

/// Log an unknown hypercall the first time it is seen.
pub fn unknown(c: &mut Ctx, nr: u64) {
    let (w, b) = ((nr / 64) as usize, nr % 64);
    if w >= c.v.unknown_logged.len() || c.v.unknown_logged[w] & (1 << b) == 0 {
        if w < c.v.unknown_logged.len() {
            c.v.unknown_logged[w] |= 1 << b;
        }
        log::warn!("hypercall {nr} is not implemented: -ENOSYS (reported once)");
    }
}

/// Log an unknown sub-operation once per (hypercall, cmd) pair would need a
/// table; sub-ops are rare, so they are logged at debug level.
pub fn unknown_op(what: &str, cmd: u64) -> i64 {
    log::debug!("{what} op {cmd} is not implemented: -ENOSYS");
    -XEN_ENOSYS
}

/// `struct multicall_entry`: op, result, args[6].
#[repr(C)]
#[derive(Clone, Copy)]
struct MulticallEntry {
    op: u64,
    result: u64,
    args: [u64; 6],
}
const _: () = assert!(core::mem::size_of::<MulticallEntry>() == 64);

/// What Cocoon reads of a `multicall_entry`: all but the sixth argument,
/// which no hypercall it runs takes (56 bytes, not 64: a batch reads a word
/// less an entry, and its arguments are passed on as they were read).
#[repr(C)]
#[derive(Clone, Copy)]
struct MulticallCall {
    op: u64,
    result: u64,
    args: Args,
}
const _: () = assert!(
    core::mem::size_of::<MulticallCall>() == 56
        && core::mem::offset_of!(MulticallCall, args) == core::mem::offset_of!(MulticallEntry, args)
        && core::mem::offset_of!(MulticallCall, result) == core::mem::offset_of!(MulticallEntry, result)
);

/// A batch, as Xen's do_multicall: each entry's result is written back; a
/// nested multicall is refused (-EINVAL, "reentry is disallowed") and the
/// batch goes on; an iret is performed and ends the batch (Xen's `mc_exit`):
/// the guest resumes where its iret frame says, the entries after it unrun.
fn multicall<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, list: u64, n: u64) -> Ret {
    let mut call = core::mem::MaybeUninit::<MulticallCall>::uninit();
    for i in 0..n {
        let va = list + i * core::mem::size_of::<MulticallEntry>() as u64;
        let Ok(&MulticallCall { op, ref args, .. }) = Domain::read_guest_into(p, va, &mut call) else {
            return Ret::Value(-XEN_EFAULT);
        };
        if op == __HYPERVISOR_iret {
            let r = callbacks::iret(c, p, regs);
            // Best effort, as Xen's: the guest has left the batch.
            let result = match r {
                Ret::Value(v) => v as u64,
                Ret::Regs => regs.rax,
            };
            let _ = Domain::write_guest(p, va + 8, &result);
            return r;
        }
        let result = if op == __HYPERVISOR_multicall {
            (-XEN_EINVAL) as u64
        } else if is_plain(op) {
            // As `dispatch` would, without another frame (a pin's batch has a dozen).
            c.v.stats.exits.exit(crate::stats::hypercall_exit(op));
            plain_hot(c, p, op, args) as u64
        } else {
            match dispatch(c, p, regs, op, *args) {
                Ret::Value(v) => v as u64,
                Ret::Regs => 0,
            }
        };
        if Domain::write_guest(p, va + 8, &result).is_err() {
            return Ret::Value(-XEN_EFAULT);
        }
    }
    Ret::Value(0)
}
