//! FIFO event channels (`event_channel.h`, Xen 4.17's `common/event_fifo.c`):
//! init_control and expand_array with their checks, then events raised on
//! IPI ports linked into the vCPU's queue of their priority (HEAD, LINK,
//! READY, the upcall), a masked event linked only when unmasked, and
//! set_priority's range. Runs last: the domain stays on FIFO.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use super::pagetables::map_shared_info;
use super::{ensure_eq, Outcome};
use crate::mfn_of;
use crate::xen::*;

#[repr(C)]
#[derive(Default)]
struct InitControl {
    control_gfn: u64,
    offset: u32,
    vcpu: u32,
    link_bits: u8,
    _pad: [u8; 7],
}
const _: () = assert!(core::mem::size_of::<InitControl>() == 24);

#[repr(C, align(4096))]
struct Page([u32; 1024]);

static mut CONTROL: Page = Page([0; 1024]);
static mut ARRAY: Page = Page([0; 1024]);

fn evtchn<T>(cmd: u64, arg: &mut T) -> i64 {
    op(__HYPERVISOR_event_channel_op, cmd, arg)
}

fn word(port: u32) -> u32 {
    // SAFETY: event word `port` (< 1024) of the array page.
    unsafe { read_volatile((addr_of_mut!(ARRAY) as *mut u32).add(port as usize)) }
}

fn set_word(port: u32, v: u32) {
    // SAFETY: as word; single vCPU, nothing else writes it while we do
    // (Xen only sets bits the guest does not race with here).
    unsafe { write_volatile((addr_of_mut!(ARRAY) as *mut u32).add(port as usize), v) }
}

/// `ready` (index 0) or `head[p]` (index 2 + p) of the control block.
fn control(i: usize) -> u32 {
    // SAFETY: a word of the control block at offset 0 of CONTROL.
    unsafe { read_volatile((addr_of_mut!(CONTROL) as *mut u32).add(i)) }
}

fn init(gfn: u64, offset: u32, vcpu: u32) -> (i64, u8) {
    let mut a = InitControl { control_gfn: gfn, offset, vcpu, link_bits: 0xee, ..Default::default() };
    (evtchn(EVTCHNOP_init_control, &mut a), a.link_bits)
}

fn bind_ipi() -> Result<u32, super::Failed> {
    let mut a = [0u32, 0]; // vcpu 0; port out
    ensure_eq!(evtchn(EVTCHNOP_bind_ipi, &mut a), 0, "bind_ipi");
    Ok(a[1])
}

fn send(port: u32) -> i64 {
    let mut p = port;
    evtchn(EVTCHNOP_send, &mut p)
}

pub fn fifo_queues() -> Outcome {
    let si = map_shared_info()?;
    let cb = mfn_of(addr_of_mut!(CONTROL) as u64);
    let array = mfn_of(addr_of_mut!(ARRAY) as u64);
    let mut gfn = array;
    ensure_eq!(evtchn(EVTCHNOP_expand_array, &mut gfn), -XEN_EOPNOTSUPP, "expand_array before init_control");
    ensure_eq!(init(cb, 4090, 0).0, -XEN_EINVAL, "init_control at offset 4090");
    ensure_eq!(init(cb, 4, 0).0, -XEN_EINVAL, "init_control at an offset not 8-aligned");
    ensure_eq!(init(cb, 0, 99).0, -XEN_ENOENT, "init_control for vCPU 99");
    ensure_eq!(init(cb, 0, 0), (0, EVTCHN_FIFO_LINK_BITS), "init_control (rc, link_bits)");
    ensure_eq!(init(cb, 0, 0).0, -XEN_EINVAL, "init_control again for the same vCPU");
    // The array page, every word EVTCHN_FIFO_MASKED first as Linux hands it over.
    for p in 0..1024 {
        set_word(p, EVTCHN_FIFO_MASKED);
    }
    ensure_eq!(evtchn(EVTCHNOP_expand_array, &mut gfn), 0, "expand_array");
    let (a, b, c) = (bind_ipi()?, bind_ipi()?, bind_ipi()?);
    // SAFETY: vcpu_info[0].evtchn_upcall_pending, byte 0 of shared_info.
    let upcall = || unsafe { read_volatile(si as *const u8) };
    // SAFETY: as above; the guest clears it as its upcall handler would.
    unsafe { write_volatile(si as *mut u8, 0) };
    let q = EVTCHN_FIFO_PRIORITY_DEFAULT;
    set_word(a, 0);
    set_word(b, 0);
    ensure_eq!(send(a), 0, "send on the first IPI port");
    ensure_eq!(word(a), EVTCHN_FIFO_PENDING | EVTCHN_FIFO_LINKED, "its event word");
    ensure_eq!(control(2 + q), a, "HEAD of the default-priority queue");
    ensure_eq!(control(0), 1 << q, "READY");
    ensure_eq!(upcall(), 1, "evtchn_upcall_pending");
    ensure_eq!(send(a), 0, "send on it again");
    ensure_eq!(word(a), EVTCHN_FIFO_PENDING | EVTCHN_FIFO_LINKED, "its word after a second send");
    ensure_eq!(send(b), 0, "send on the second port");
    ensure_eq!(word(a) & EVTCHN_FIFO_LINK_MASK, b, "the first word's LINK");
    ensure_eq!(word(b), EVTCHN_FIFO_PENDING | EVTCHN_FIFO_LINKED, "the second word");
    // Still EVTCHN_FIFO_MASKED: pending, not linked, until unmasked.
    ensure_eq!(send(c), 0, "send on the masked port");
    ensure_eq!(word(c), EVTCHN_FIFO_PENDING | EVTCHN_FIFO_MASKED, "the masked port's word");
    let mut port = c;
    ensure_eq!(evtchn(EVTCHNOP_unmask, &mut port), 0, "unmask");
    ensure_eq!(word(c), EVTCHN_FIFO_PENDING | EVTCHN_FIFO_LINKED, "the word after unmask");
    ensure_eq!(word(b) & EVTCHN_FIFO_LINK_MASK, c, "the second word's LINK after unmask");
    let mut prio = [a, 16];
    ensure_eq!(evtchn(EVTCHNOP_set_priority, &mut prio), -XEN_EINVAL, "set_priority 16");
    let mut prio = [a, 3];
    ensure_eq!(evtchn(EVTCHNOP_set_priority, &mut prio), 0, "set_priority 3");
    let mut prio = [1023, 3];
    ensure_eq!(evtchn(EVTCHNOP_set_priority, &mut prio), -XEN_EINVAL, "set_priority of an unbound port");
    for p in [a, b, c] {
        let mut p = p;
        evtchn(EVTCHNOP_close, &mut p);
    }
    Ok(())
}
