//! Events as a 64-bit PV kernel sees them around its hypercalls (2-level
//! event channels, `xen.h`'s vcpu_info): an event raised while the vCPU's
//! upcalls are masked waits; once unmasked, any hypercall's return delivers
//! it through the event callback before the kernel runs on (Linux unmasks
//! with `xen_irq_enable`, then makes a hypercall to have it delivered).
//! An NMI sent to the vCPU itself is delivered through trap 2 the same way.
//! Cocoon returns from most hypercalls in its entry assembly: these check
//! that it leaves through the delivering path when it must.

use core::ptr::{read_volatile, write_volatile};

use super::pagetables::map_shared_info;
use super::{ensure, ensure_eq, Outcome};
use crate::traps;
use crate::xen::*;

/// Offsets in shared_info: vcpu_info 0's pending and mask bytes and
/// pending_sel word, and the 2-level pending bitmap.
const UPCALL_PENDING: u64 = 0;
const UPCALL_MASK: u64 = 1;
const PENDING_SEL: u64 = 8;
const EVTCHN_PENDING: u64 = 0x800;

fn evtchn<T>(cmd: u64, arg: &mut T) -> i64 {
    op(__HYPERVISOR_event_channel_op, cmd, arg)
}

fn byte(va: u64) -> u8 {
    // SAFETY: a byte of the mapped shared_info.
    unsafe { read_volatile(va as *const u8) }
}

fn set_byte(va: u64, v: u8) {
    // SAFETY: as `byte`; the guest's own fields.
    unsafe { write_volatile(va as *mut u8, v) }
}

/// Clear port `port`'s pending bit and the selector, as the kernel's handler would.
fn clear_port(si: u64, port: u32) {
    let word = (si + EVTCHN_PENDING + (port as u64 / 64) * 8) as *mut u64;
    // SAFETY: words of the mapped shared_info; nothing raises this port meanwhile.
    unsafe {
        write_volatile(word, read_volatile(word) & !(1 << (port % 64)));
        write_volatile((si + PENDING_SEL) as *mut u64, 0);
    }
}

/// Whether the one trap since the last reset was `vector` (an upcall:
/// [`traps::EVENT_VECTOR`]) taken on return from hypercall `nr`.
fn taken_after(vector: u64, nr: u64) -> Result<(), super::Failed> {
    let (n, t) = traps::taken();
    ensure_eq!((n, t.vector), (1, vector), "traps taken, and which");
    ensure!(
        (stub(nr)..stub(nr) + 32).contains(&t.rip),
        "vector {vector} interrupted {:#x}, not hypercall {nr}'s return in its stub at {:#x}",
        t.rip,
        stub(nr)
    );
    Ok(())
}

fn upcall_after(nr: u64) -> Result<(), super::Failed> {
    taken_after(traps::EVENT_VECTOR, nr)
}

/// An NMI sent to the vCPU itself (`VCPUOP_send_nmi`) is delivered through
/// trap 2 as the hypercall returns, as Xen delivers it on its way out.
pub fn nmi_as_a_hypercall_returns() -> Outcome {
    traps::reset();
    ensure_eq!(hypercall(__HYPERVISOR_vcpu_op, [VCPUOP_send_nmi, 0, 0, 0, 0]), 0, "VCPUOP_send_nmi to itself");
    taken_after(2, __HYPERVISOR_vcpu_op)
}

pub fn upcall_as_a_hypercall_returns() -> Outcome {
    let si = map_shared_info()?;
    traps::ack_upcalls_at(si + UPCALL_PENDING);
    let mut cb = CallbackRegister { ty: CALLBACKTYPE_event, flags: 0, _pad: 0, address: traps::event_entry() };
    ensure_eq!(op(__HYPERVISOR_callback_op, CALLBACKOP_register, &mut cb), 0, "register the event callback");
    let mut a = [0u32, 0]; // vcpu 0; port out
    ensure_eq!(evtchn(EVTCHNOP_bind_ipi, &mut a), 0, "bind_ipi");
    let mut port = a[1];
    set_byte(si + UPCALL_MASK, 1);
    traps::reset();
    ensure_eq!(evtchn(EVTCHNOP_send, &mut port), 0, "send with upcalls masked");
    ensure_eq!(traps::taken().0, 0, "upcalls taken while masked");
    ensure_eq!(byte(si + UPCALL_PENDING), 1, "evtchn_upcall_pending");
    // Unmasked with the event pending: the next hypercall's return delivers
    // it (the count reset first: an exit in between may deliver it too).
    traps::reset();
    set_byte(si + UPCALL_MASK, 0);
    ensure!(hypercall(__HYPERVISOR_xen_version, [0; 5]) > 0, "xen_version");
    upcall_after(__HYPERVISOR_xen_version)?;
    ensure_eq!((byte(si + UPCALL_PENDING), byte(si + UPCALL_MASK)), (0, 0), "pending and mask after the handler");
    clear_port(si, port);
    // Raised while unmasked: delivered as the send returns.
    traps::reset();
    ensure_eq!(evtchn(EVTCHNOP_send, &mut port), 0, "send with upcalls unmasked");
    upcall_after(__HYPERVISOR_event_channel_op)?;
    set_byte(si + UPCALL_MASK, 1);
    clear_port(si, port);
    traps::ack_upcalls_at(0);
    ensure_eq!(evtchn(EVTCHNOP_close, &mut port), 0, "close");
    Ok(())
}
