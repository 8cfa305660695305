//! Forwarding to the Xen underneath (issue 6). On a real Xen the PV guest's
//! event channels, grant table, timers and shared_info are the HVM domain's
//! own: a guest "MFN" is Cocoon's GFN, and while Cocoon handles a hypercall
//! the guest's page tables are loaded, so the guest's pointers mean the same
//! to Xen as to Cocoon. Most operations are therefore passed on unchanged;
//! what needs Cocoon (grant frames in its physmap, the guest's idea of its
//! vCPU, ports Cocoon serves itself) is handled here.

use crate::abi::*;
use crate::domain::{Ctx, Domain, LocalConsole, NR_GRANT_FRAMES};
use crate::platform::Platform;

/// Pass a hypercall on; -ENOSYS when there is no Xen to pass it to.
pub fn pass<P: Platform>(p: &mut P, nr: u64, args: [u64; 5]) -> i64 {
    let rc = p.xen_hypercall(nr, args).unwrap_or(-XEN_ENOSYS);
    log::trace!("forwarded hypercall {nr} {:x?} = {rc}", &args[..3]);
    rc
}

/// `XENMEM_add_to_physmap` for this domain.
pub fn add_to_physmap<P: Platform>(p: &mut P, space: u32, idx: u64, gpfn: u64) -> i64 {
    let a = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space, idx, gpfn };
    pass(p, __HYPERVISOR_memory_op, [XENMEM_add_to_physmap, &a as *const _ as u64, 0, 0, 0])
}

/// `event_channel_op`: every port is Xen's. The guest's end of a console
/// Cocoon serves is too, but Cocoon takes its sends (the guest's "there is
/// output") and keeps it open (its number must stay the guest's console).
pub fn event_channel_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    if let Some(local) = c.d.local_console_port() {
        // Both start with `evtchn_port_t port`.
        if matches!(cmd, EVTCHNOP_send | EVTCHNOP_close) && Domain::read_guest::<P, u32>(p, arg) == Ok(local) {
            return super::events::event_channel_op(c, p, cmd, arg);
        }
    }
    let rc = pass(p, __HYPERVISOR_event_channel_op, [cmd, arg, 0, 0, 0]);
    if cmd == EVTCHNOP_init_control && rc == 0 {
        c.d.fifo.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    rc
}

/// Raise the guest's end of the console Cocoon serves (there is input).
pub fn notify_local_console<P: Platform>(p: &mut P, c: LocalConsole) {
    let send = EvtchnSend { port: c.notify_port };
    let rc = pass(p, __HYPERVISOR_event_channel_op, [EVTCHNOP_send, &send as *const _ as u64, 0, 0, 0]);
    if rc != 0 {
        log::warn!(
            "console: cannot raise the guest's port {} (EVTCHNOP_send on {}: {rc})",
            c.guest_port,
            c.notify_port
        );
    }
}

/// `grant_table_op`: the grant frames are mapped into Cocoon's frames on
/// `setup_table` (XENMAPSPACE_grant_table), and the guest is told those
/// frames; everything else is Xen's.
pub fn grant_table_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, uop: u64, count: u64) -> i64 {
    if cmd != GNTTABOP_setup_table {
        return pass(p, __HYPERVISOR_grant_table_op, [cmd, uop, count, 0, 0]);
    }
    // {u16 dom; u32 nr_frames @4; i16 status @8; handle frame_list @16}
    for i in 0..count {
        let base = uop + i * 24;
        let Ok([dom_nr, _, list]) = Domain::read_guest::<P, [u64; 3]>(p, base) else {
            return -XEN_EFAULT;
        };
        let (dom, nr) = (dom_nr as u16, (dom_nr >> 32) as usize);
        let mut status: i16 = 0;
        if dom != DOMID_SELF && dom != 0 {
            status = -2; // GNTST_bad_domain
        } else if nr > NR_GRANT_FRAMES {
            status = -1; // GNTST_general_error
        } else {
            let mut l = c.d.lock();
            for f in l.grant_frames_set_up..nr {
                let rc = add_to_physmap(p, XENMAPSPACE_grant_table, f as u64, c.d.grant_mfns[f]);
                if rc != 0 {
                    log::warn!("grant frame {f}: XENMEM_add_to_physmap failed ({rc})");
                    status = -1;
                    break;
                }
                l.grant_frames_set_up = f + 1;
            }
            let set_up = l.grant_frames_set_up;
            drop(l);
            for f in 0..nr.min(set_up) {
                if Domain::write_guest(p, list + f as u64 * 8, &c.d.grant_mfns[f]).is_err() {
                    return -XEN_EFAULT;
                }
            }
        }
        if Domain::write_guest(p, base + 8, &status).is_err() {
            return -XEN_EFAULT;
        }
    }
    0
}

/// `vcpu_op`: Xen runs the guest's timers (VIRQ_TIMER comes from it) and
/// knows its vcpu_info and pvclock copies; guest vCPU n is the HVM domain's
/// vCPU n (Cocoon runs it on that CPU), so vCPU numbers pass unchanged.
/// Bringing vCPUs up and down and the runstate area stay Cocoon's (Xen would write the runstate
/// through whichever page tables are loaded when it deschedules the vCPU).
pub fn vcpu_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, vcpu: u64, arg: u64) -> i64 {
    let Some(target) = c.d.vcpus.get(vcpu as usize) else {
        return -XEN_ENOENT;
    };
    match cmd {
        VCPUOP_set_periodic_timer
        | VCPUOP_stop_periodic_timer
        | VCPUOP_set_singleshot_timer
        | VCPUOP_stop_singleshot_timer => pass(p, __HYPERVISOR_vcpu_op, [cmd, vcpu, arg, 0, 0]),
        VCPUOP_register_vcpu_info => {
            let Ok([mfn, offset]) = Domain::read_guest::<P, [u64; 2]>(p, arg) else {
                return -XEN_EFAULT;
            };
            let offset = offset as u32 as u64;
            // Held writable while registered, as Xen maps it: Cocoon reads and
            // writes it (upcall flags), so the frame must not leave the guest
            // nor become a page table or descriptor page meanwhile.
            if !offset.is_multiple_of(8) || offset + 64 > PAGE_SIZE || c.d.lock().frames.get_writable(mfn).is_err() {
                return -XEN_EINVAL;
            }
            // Xen before 4.19 takes another vCPU's vcpu_info only while that
            // vCPU is down (`map_vcpu_info`), and the HVM domain's vCPUs are
            // all up (idle in Cocoon until the guest starts them): the CPU
            // of that vCPU makes the call. Xen gets Cocoon's copy of the
            // argument, the frame held above, whichever CPU calls.
            let info = VcpuRegisterVcpuInfo { mfn, offset: offset as u32, rsvd: 0 };
            let args = [cmd, vcpu, &info as *const _ as u64, 0, 0];
            let rc = if vcpu == c.v.id as u64 {
                pass(p, __HYPERVISOR_vcpu_op, args)
            } else {
                p.xen_hypercall_on(vcpu as u32, __HYPERVISOR_vcpu_op, args).unwrap_or(-XEN_ENOSYS)
            };
            if rc != 0 {
                c.d.lock().frames.put_writable(mfn);
            } else {
                let ma = (mfn << PAGE_SHIFT) | offset;
                let old = target.vcpu_info_maddr.swap(ma, core::sync::atomic::Ordering::AcqRel);
                if target.vcpu_info_registered.swap(true, core::sync::atomic::Ordering::AcqRel) {
                    // Xen took a new area: the old one is no longer used.
                    c.d.lock().frames.put_writable(old >> PAGE_SHIFT);
                }
                if vcpu == c.v.id as u64 {
                    c.v.vcpu_info_maddr = ma;
                    c.v.vcpu_info_registered = true;
                }
            }
            rc
        }
        // Xen keeps the guest's pvclock, so it keeps the secondary copy too
        // (guest vCPU n is the HVM domain's vCPU n). For an HVM domain Xen
        // writes it through whatever page tables the vCPU has loaded when it
        // updates the time, honouring read-only entries (CR0.WP): the
        // guest's kernel tables, or its user tables, which do not map the
        // area (that update is missed; a 64-bit PV guest on Xen misses the
        // same ones until it enters its kernel). So: an address in Cocoon's
        // range is refused (Xen would write there), and only the calling
        // vCPU's own area is passed on, since a CPU whose vCPU has not
        // started runs on Cocoon's boot tables, which map Cocoon's memory at
        // guest addresses. (Xen 4.18's VCPUOP_register_vcpu_time_phys_area,
        // by frame, would depend on no tables.)
        VCPUOP_register_vcpu_time_memory_area => {
            if vcpu >= c.d.nr_vcpus() as u64 {
                return -XEN_ENOENT;
            }
            if vcpu != c.v.id as u64 {
                return -XEN_EINVAL;
            }
            let Ok(area) = Domain::read_guest::<P, VcpuRegisterTimeMemoryArea>(p, arg) else {
                return -XEN_EFAULT;
            };
            if area.addr != 0 && !Domain::guest_va_ok(area.addr, core::mem::size_of::<VcpuTimeInfo>() as u64) {
                return -XEN_EFAULT;
            }
            // Cocoon's copy of the argument: the one checked.
            pass(p, __HYPERVISOR_vcpu_op, [cmd, vcpu, &area as *const _ as u64, 0, 0])
        }
        _ => super::vcpu::vcpu_op(c, p, cmd, vcpu, arg),
    }
}

/// `set_timer_op` (not in Xen's HVM hypercall table): the same deadline as a
/// single-shot vCPU timer.
pub fn set_timer_op<P: Platform>(p: &mut P, vcpu: u32, deadline: u64) -> i64 {
    let t: [u64; 2] = [deadline, 0];
    let cmd = if deadline == 0 { VCPUOP_stop_singleshot_timer } else { VCPUOP_set_singleshot_timer };
    pass(p, __HYPERVISOR_vcpu_op, [cmd, vcpu as u64, &t as *const _ as u64, 0, 0])
}

/// The host raised Cocoon's event interrupt. With a level-like delivery Xen
/// keeps raising it (the callback vector) or keeps the line asserted (the
/// platform INTx) while `evtchn_upcall_pending` is set, which would stop the
/// guest running: Cocoon takes the flag (Xen lowers the line at its next exit,
/// so take it before the EOI) and gives it back when the guest can take the
/// upcall (`Domain::release_held_upcall`). Xen only raises the interrupt when
/// it sets the flag itself, so Cocoon setting it again raises nothing.
pub fn host_upcall<P: Platform>(c: &mut Ctx, p: &mut P) {
    if !c.d.forward.is_some_and(|f| f.level) {
        return;
    }
    let vi = c.vcpu_info(p);
    if vi.evtchn_upcall_pending != 0 {
        vi.evtchn_upcall_pending = 0;
        c.v.upcall_held = true;
    }
}
