//! `event_channel_op` for the standalone backend.

use super::unknown_op;
use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::events::*;
use crate::platform::{Fault, Platform};
use core::sync::atomic::Ordering;

fn read<P: Platform, T: Copy>(p: &mut P, arg: u64) -> Result<T, i64> {
    Domain::read_guest::<P, T>(p, arg).map_err(|_| -XEN_EFAULT)
}

fn write<P: Platform, T: Copy>(p: &mut P, arg: u64, v: &T) -> i64 {
    match Domain::write_guest(p, arg, v) {
        Ok(()) => 0,
        Err(Fault) => -XEN_EFAULT,
    }
}

/// The guest notified `port`: act for the backend behind it, or raise an IPI.
pub fn send<P: Platform>(c: &mut Ctx, p: &mut P, port: u32) -> i64 {
    let (what, vcpu) = {
        let l = c.d.lock();
        (l.evtchn.get(port), l.evtchn.vcpu_of(port))
    };
    match what {
        Some(Port::Backend(Backend::Console)) => {
            super::sched::flush_console(c.d, p);
            0
        }
        Some(Port::Backend(Backend::Xenstore)) => {
            let mfn = c.d.store_mfn;
            let answered = c.d.lock().xenstore.service(p, mfn);
            if answered {
                c.d.send_to_vcpu(p, vcpu, port);
            }
            0
        }
        Some(Port::Ipi) => {
            c.d.send_to_vcpu(p, vcpu, port);
            0
        }
        Some(_) => 0,
        None => -XEN_EINVAL,
    }
}

/// `EVTCHNOP_init_control` (Xen's `evtchn_fifo_init_control`): `ic.vcpu`'s
/// control block at `ic.offset` in frame `ic.control_gfn` (an MFN: the
/// guest is PV). The first one switches the domain from 2-level to FIFO.
fn init_control<P: Platform>(c: &mut Ctx, p: &mut P, ic: &EvtchnInitControl) -> i64 {
    if !vcpu_ok(c, ic.vcpu) {
        return -XEN_ENOENT;
    }
    let size = core::mem::size_of::<EvtchnFifoControlBlock>() as u64;
    if ic.offset as u64 > PAGE_SIZE - size || !ic.offset.is_multiple_of(8) {
        return -XEN_EINVAL;
    }
    let mfn = ic.control_gfn;
    let v = &c.d.vcpus[ic.vcpu as usize].fifo;
    let mut l = c.d.lock();
    // Xen's `map_guest_page`: the guest's own RAM, writable (not a page
    // table or descriptor page); held until EVTCHNOP_reset.
    if v.control_block().is_some() || l.frames.get_writable(mfn).is_err() {
        return -XEN_EINVAL;
    }
    let f = &c.d.evtchn_fifo;
    if let Err(rc) = f.map_control_block(v, (mfn << PAGE_SHIFT) | ic.offset as u64) {
        l.frames.put_writable(mfn);
        return rc;
    }
    if !c.d.fifo.load(Ordering::Acquire) {
        // The switch (Xen's `setup_ports`): ports pending in the 2-level
        // bitmap stay pending, raised once the event array covers them.
        // Scanned again after the switch for a raise that was under way.
        let si = c.d.shared_info(p) as *mut SharedInfo;
        let evtchn = &l.evtchn;
        // SAFETY: shared_info is mapped; its bits are read atomically.
        let pending2l = |port: u32| evtchn.get(port).is_some() && unsafe { is_pending(si, port) };
        f.reset_ports();
        f.carry_pending(pending2l);
        c.d.fifo.store(true, Ordering::Release);
        f.carry_pending(pending2l);
        log::info!("event channels: the guest switched to the FIFO ABI (vCPU {})", ic.vcpu);
    }
    0
}

/// `EVTCHNOP_expand_array` (Xen's `evtchn_fifo_expand_array`): one more
/// page of event words; ports it covers that were raised meanwhile are
/// raised now.
fn expand_array<P: Platform>(c: &mut Ctx, p: &mut P, mfn: u64) -> i64 {
    let f = &c.d.evtchn_fifo;
    let mut kick = 0u64;
    {
        let mut l = c.d.lock();
        if !c.d.fifo.load(Ordering::Acquire) {
            return -XEN_EOPNOTSUPP;
        }
        if f.nr_pages() >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES {
            return -XEN_ENOSPC;
        }
        if l.frames.get_writable(mfn).is_err() {
            return -XEN_EINVAL;
        }
        let ports = match f.add_page(mfn << PAGE_SHIFT) {
            Ok(r) => r,
            Err(rc) => {
                l.frames.put_writable(mfn);
                return rc;
            }
        };
        for port in ports.take_while(|&port| (port as usize) < NR_PORTS) {
            if f.take_early(port) && l.evtchn.get(port).is_some() {
                let vcpu = l.evtchn.vcpu_of(port);
                if c.d.fifo_raise(p, vcpu, port) != Raised::AlreadyPending {
                    kick |= 1 << (vcpu % 64);
                }
            }
        }
    }
    for vcpu in 0..64 {
        if kick & (1 << vcpu) != 0 {
            p.kick(vcpu);
        }
    }
    0
}

/// Is `vcpu` one of the domain's vCPUs?
fn vcpu_ok(c: &Ctx, vcpu: u32) -> bool {
    (vcpu as usize) < c.d.vcpus.len()
}

pub fn event_channel_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    let r = (|| -> Result<i64, i64> {
        Ok(match cmd {
            EVTCHNOP_bind_virq => {
                let mut b = read::<P, EvtchnBindVirq>(p, arg)?;
                if b.virq as usize >= NR_VIRQS || !vcpu_ok(c, b.vcpu) {
                    return Ok(-XEN_EINVAL);
                }
                // Global VIRQs bind to vCPU 0 only (Xen's `virq_is_global`).
                if b.vcpu != 0 && !VIRQ_PER_VCPU.contains(&b.virq) {
                    return Ok(-XEN_EINVAL);
                }
                let slot = &c.d.vcpus[b.vcpu as usize].virq_port[b.virq as usize];
                let mut l = c.d.lock();
                if slot.load(core::sync::atomic::Ordering::Relaxed) != 0 {
                    return Ok(-XEN_EEXIST);
                }
                let Some(port) = l.evtchn.alloc(Port::Virq(b.virq), b.vcpu) else { return Ok(-XEN_ENOSPC) };
                slot.store(port, core::sync::atomic::Ordering::Release);
                drop(l);
                b.port = port;
                write(p, arg, &b)
            }
            EVTCHNOP_bind_ipi => {
                let mut b = read::<P, EvtchnBindIpi>(p, arg)?;
                if !vcpu_ok(c, b.vcpu) {
                    return Ok(-XEN_ENOENT);
                }
                let Some(port) = c.d.lock().evtchn.alloc(Port::Ipi, b.vcpu) else { return Ok(-XEN_ENOSPC) };
                b.port = port;
                write(p, arg, &b)
            }
            EVTCHNOP_alloc_unbound => {
                let mut b = read::<P, EvtchnAllocUnbound>(p, arg)?;
                let Some(port) = c.d.lock().evtchn.alloc(Port::Unbound, 0) else { return Ok(-XEN_ENOSPC) };
                b.port = port;
                write(p, arg, &b)
            }
            EVTCHNOP_close => {
                let port = read::<P, u32>(p, arg)?;
                let mut l = c.d.lock();
                if matches!(l.evtchn.get(port), Some(Port::Backend(_))) {
                    // Cocoon's own backends stay bound.
                    return Ok(0);
                }
                let closed = l.evtchn.close(port);
                drop(l);
                if let Some((_, vcpu)) = closed {
                    if c.d.fifo.load(Ordering::Acquire) {
                        c.d.evtchn_fifo.clear_pending(p, &c.d.vcpus[vcpu as usize].fifo, port);
                    } else {
                        let si = c.d.shared_info(p) as *mut SharedInfo;
                        // SAFETY: shared_info is mapped; the bit changes atomically.
                        unsafe { clear_pending(si, port) };
                    }
                }
                match closed {
                    Some((Port::Virq(v), vcpu)) => {
                        if let Some(s) = c.d.vcpus.get(vcpu as usize).and_then(|s| s.virq_port.get(v as usize)) {
                            s.store(0, core::sync::atomic::Ordering::Release);
                        }
                        0
                    }
                    Some(_) => 0,
                    None => -XEN_EINVAL,
                }
            }
            EVTCHNOP_send => {
                let port = read::<P, u32>(p, arg)?;
                send(c, p, port)
            }
            EVTCHNOP_unmask => {
                let port = read::<P, u32>(p, arg)?;
                if port as usize >= NR_PORTS {
                    return Ok(-XEN_EINVAL);
                }
                let vcpu = c.d.port_vcpu(port);
                if c.d.fifo.load(Ordering::Acquire) {
                    // Xen's `evtchn_fifo_unmask`: clear MASKED, link again if pending.
                    if c.d.evtchn_fifo.unmask(p, &c.d.vcpus[vcpu as usize].fifo, port)
                        && c.d.fifo_raise(p, vcpu, port) == Raised::Upcall
                    {
                        p.kick(vcpu);
                    }
                    return Ok(0);
                }
                let si = c.d.shared_info(p) as *mut SharedInfo;
                let vi = c.d.vcpu_info_ptr(p, vcpu);
                // SAFETY: both live in Cocoon's direct map; unmask changes them atomically.
                if unsafe { unmask(si, vi, port) } {
                    p.kick(vcpu);
                }
                0
            }
            EVTCHNOP_bind_vcpu => {
                let b = read::<P, EvtchnBindVcpu>(p, arg)?;
                if !vcpu_ok(c, b.vcpu) {
                    return Ok(-XEN_ENOENT);
                }
                let mut l = c.d.lock();
                match l.evtchn.get(b.port) {
                    // Per-vCPU VIRQs and IPIs stay where they were bound (Xen: -EINVAL).
                    Some(Port::Virq(v)) if VIRQ_PER_VCPU.contains(&v) => -XEN_EINVAL,
                    Some(Port::Ipi) => -XEN_EINVAL,
                    Some(Port::Virq(v)) => {
                        let old = l.evtchn.vcpu_of(b.port);
                        c.d.vcpus[old as usize].virq_port[v as usize].store(0, core::sync::atomic::Ordering::Release);
                        c.d.vcpus[b.vcpu as usize].virq_port[v as usize]
                            .store(b.port, core::sync::atomic::Ordering::Release);
                        l.evtchn.notify_vcpu[b.port as usize] = b.vcpu as u8;
                        0
                    }
                    Some(_) => {
                        l.evtchn.notify_vcpu[b.port as usize] = b.vcpu as u8;
                        0
                    }
                    None => -XEN_EINVAL,
                }
            }
            EVTCHNOP_status => {
                // {u16 dom; u32 port @4; u32 status @8; u32 vcpu @12; union @16}
                let port = read::<P, u32>(p, arg + 4)?;
                let (what, vcpu) = {
                    let l = c.d.lock();
                    (l.evtchn.get(port), l.evtchn.vcpu_of(port))
                };
                let (status, extra) = match what {
                    None => (EVTCHNSTAT_CLOSED, 0),
                    Some(Port::Unbound) => (EVTCHNSTAT_UNBOUND, 0),
                    Some(Port::Virq(v)) => (EVTCHNSTAT_VIRQ, v),
                    Some(Port::Ipi) => (EVTCHNSTAT_IPI, 0),
                    Some(Port::Free) => (EVTCHNSTAT_CLOSED, 0),
                    Some(Port::Backend(_)) => (EVTCHNSTAT_INTERDOMAIN, 0),
                };
                write(p, arg + 8, &[status, vcpu, extra, 0])
            }
            EVTCHNOP_reset => {
                // Back to 2-level, as Xen's `evtchn_reset` (the ports stay bound).
                let mut l = c.d.lock();
                if c.d.fifo.swap(false, Ordering::AcqRel) {
                    let frames = &mut l.frames;
                    c.d.evtchn_fifo.teardown(c.d.vcpus.iter().map(|v| &v.fifo), |mfn| frames.put_writable(mfn));
                }
                0
            }
            EVTCHNOP_init_control => {
                let mut ic = read::<P, EvtchnInitControl>(p, arg)?;
                match init_control(c, p, &ic) {
                    0 => {
                        ic.link_bits = EVTCHN_FIFO_LINK_BITS as u8;
                        write(p, arg, &ic)
                    }
                    rc => rc,
                }
            }
            EVTCHNOP_expand_array => {
                let ea = read::<P, EvtchnExpandArray>(p, arg)?;
                expand_array(c, p, ea.array_gfn)
            }
            EVTCHNOP_set_priority => {
                let sp = read::<P, EvtchnSetPriority>(p, arg)?;
                if c.d.lock().evtchn.get(sp.port).is_none() {
                    return Ok(-XEN_EINVAL);
                }
                if !c.d.fifo.load(Ordering::Acquire) {
                    return Ok(-XEN_ENOSYS); // 2-level has no priorities
                }
                match c.d.evtchn_fifo.set_priority(sp.port, sp.priority) {
                    Ok(()) => 0,
                    Err(rc) => rc,
                }
            }
            EVTCHNOP_bind_interdomain | EVTCHNOP_bind_pirq => -XEN_EPERM,
            other => unknown_op("event_channel_op", other),
        })
    })();
    r.unwrap_or_else(|e| e)
}
