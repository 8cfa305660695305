//! Scheduling: block (idle), yield, shutdown, and the vCPU's timers.

use super::unknown_op;
use core::sync::atomic::Ordering;

use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::platform::{ExitReason, Fault, Platform};
use crate::regs::GuestRegs;

/// How often Cocoon looks at its console input while the guest runs or idles.
pub const POLL_NS: u64 = 10_000_000;

/// Arm the platform timer for the earliest guest deadline (or the next poll).
/// On a real Xen the guest's timers are Xen's: Cocoon's own timer only polls
/// the console it serves, or the host's events when they come without an interrupt.
pub fn program_timer<P: Platform>(c: &mut Ctx, p: &mut P) {
    let now = p.now_ns();
    if let Some(f) = c.d.forward {
        let poll = f.local_console.is_some() || p.host_events_polled();
        p.set_timer(poll.then_some(now + POLL_NS));
        return;
    }
    let mut next = now + POLL_NS;
    if let Some(t) = c.v.singleshot {
        next = next.min(t);
    }
    if c.v.periodic_ns != 0 {
        next = next.min(c.v.periodic_next);
    }
    p.set_timer(Some(next.max(now + 1000)));
}

/// Expire this vCPU's timers; on vCPU 0 also move console input in and
/// output out.
pub fn tick<P: Platform>(c: &mut Ctx, p: &mut P) {
    if c.d.forward.is_some() {
        if c.v.id == 0 && c.d.local_console_port().is_some() {
            poll_console(c.d, p);
        }
        program_timer(c, p);
        return;
    }
    let now = p.now_ns();
    let mut fire = false;
    if c.v.singleshot.is_some_and(|t| t <= now) {
        c.v.singleshot = None;
        fire = true;
    }
    if c.v.periodic_ns != 0 && c.v.periodic_next <= now {
        let late = (now - c.v.periodic_next) / c.v.periodic_ns + 1;
        c.v.periodic_next += late * c.v.periodic_ns;
        fire = true;
    }
    if fire {
        c.update_time(p);
        c.raise_virq(p, VIRQ_TIMER);
    }
    if c.v.id == 0 {
        poll_console(c.d, p);
    }
    rescue_stalled(c, p, now);
    program_timer(c, p);
}

/// A vCPU whose timers went unserved this long lost its timer interrupt
/// (its deadline is never more than `POLL_NS` away while it is up).
pub const STALLED_NS: u64 = 100 * 1_000_000;

/// Note that this vCPU's timers are served, and kick any other vCPU that is
/// up and has not served its own for `STALLED_NS`. QEMU's TCG (10.0) now
/// and then leaves a local-APIC timer interrupt in the IRR without telling
/// the CPU, until another interrupt makes it look again; an idle vCPU then
/// sleeps on, a busy one runs without timer events, and the guest reports
/// RCU stalls and soft lockups (docs/internals.md, vCPUs). The kick is that other
/// interrupt. Takes no lock; allocates nothing.
fn rescue_stalled<P: Platform>(c: &mut Ctx, p: &mut P, now: u64) {
    let me = c.v.id as usize;
    c.d.vcpus[me].ticked_ns.store(now, Ordering::Relaxed);
    for (i, v) in c.d.vcpus.iter().enumerate() {
        let last = v.ticked_ns.load(Ordering::Relaxed);
        if i == me || last == 0 || now.saturating_sub(last) < STALLED_NS || !v.is_up() {
            continue;
        }
        // Kick once per stall: the next look waits another STALLED_NS.
        if v.ticked_ns.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            continue;
        }
        if v.rescues.fetch_add(1, Ordering::Relaxed) == 0 {
            log::info!(
                "timers: vCPU {i} served none for {} ms (its timer interrupt lost or late); vCPU {me} kicked it (logged once)",
                (now - last) / 1_000_000
            );
        }
        p.kick(i as u32);
    }
}

pub fn poll_console<P: Platform>(d: &Domain, p: &mut P) {
    let mut any = false;
    while let Some(b) = p.console_read() {
        // Serial terminals send CR for Enter; the guest's tty expects it as is.
        if !crate::console::push_input(p, d.console.mfn, b) {
            break;
        }
        any = true;
    }
    if any {
        // On a real Xen the port is Xen's to raise, in the guest's event ABI.
        match d.forward.and_then(|f| f.local_console) {
            Some(c) => super::forward::notify_local_console(p, c),
            None => {
                let port = d.console.port;
                d.send_to_vcpu(p, d.port_vcpu(port), port);
            }
        }
    }
}

/// Copy the guest's console output out. Several vCPUs may ask at once: the
/// domain lock keeps the ring's consumer index theirs one at a time.
pub fn flush_console<P: Platform>(d: &Domain, p: &mut P) {
    let mfn = d.console.mfn;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    let l = d.lock();
    crate::console::drain_output(p, mfn, |b| {
        buf[..b.len()].copy_from_slice(b);
        n = b.len();
    });
    drop(l);
    if n > 0 {
        p.console_write(&buf[..n]);
    }
}

pub fn set_timer_op<P: Platform>(c: &mut Ctx, p: &mut P, deadline: u64) -> i64 {
    c.v.singleshot = (deadline != 0).then_some(deadline);
    program_timer(c, p);
    0
}

fn shutdown<P: Platform>(c: &mut Ctx, p: &mut P, reason: u32) -> ! {
    flush_console(c.d, p);
    let (what, exit) = match reason {
        SHUTDOWN_poweroff => ("poweroff", ExitReason::GuestPoweroff),
        SHUTDOWN_reboot => ("reboot", ExitReason::GuestReboot),
        SHUTDOWN_crash => ("crash", ExitReason::GuestCrash),
        SHUTDOWN_watchdog => ("watchdog", ExitReason::GuestCrash),
        _ => ("unknown reason", ExitReason::GuestCrash),
    };
    log::info!("guest shut down: {what} (reason {reason}) from vCPU {}", c.v.id);
    for (i, v) in c.d.vcpus.iter().enumerate() {
        let n = v.rescues.load(Ordering::Relaxed);
        if n != 0 {
            log::info!("timers: vCPU {i} was kicked {n} times for timers left unserved (see `sched::rescue_stalled`)");
        }
    }
    crate::stats::log_report(c.v.id, &c.v.stats.exits);
    p.exit(exit)
}

/// `struct sched_poll`: ports (guest pointer), nr_ports, timeout.
#[repr(C)]
#[derive(Clone, Copy)]
struct SchedPoll {
    ports: u64,
    nr_ports: u32,
    _pad: u32,
    timeout: u64,
}
const _: () = assert!(core::mem::size_of::<SchedPoll>() == 24);

/// `SCHEDOP_poll` (standalone): block until one of the ports is pending or
/// the timeout (system time, 0 = none) passes. Linux's PV spinlocks wait here
/// on a masked port; a send to it kicks this vCPU (`Domain::send_to_vcpu`).
fn poll<P: Platform>(c: &mut Ctx, p: &mut P, arg: u64) -> i64 {
    let Ok(sp) = Domain::read_guest::<P, SchedPoll>(p, arg) else {
        return -XEN_EFAULT;
    };
    if sp.nr_ports > 128 {
        return -XEN_EINVAL;
    }
    let mut ports = [0u32; 128];
    for (i, slot) in ports.iter_mut().enumerate().take(sp.nr_ports as usize) {
        match Domain::read_guest::<P, u32>(p, sp.ports + i as u64 * 4) {
            Ok(port) if (port as usize) < crate::events::NR_PORTS => *slot = port,
            Ok(_) => return -XEN_EINVAL,
            Err(Fault) => return -XEN_EFAULT,
        }
    }
    let ports = &ports[..sp.nr_ports as usize];
    loop {
        if ports.iter().any(|&port| c.d.port_pending(p, port)) {
            return 0;
        }
        if sp.timeout != 0 && p.now_ns() >= sp.timeout {
            return 0;
        }
        // An upcall for this vCPU ends the poll too (Xen wakes the vCPU for it).
        if c.vcpu_info(p).evtchn_upcall_pending != 0 && c.vcpu_info(p).evtchn_upcall_mask == 0 {
            return 0;
        }
        tick(c, p);
        p.wait_for_interrupt();
    }
}

pub fn sched_op<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, cmd: u64, arg: u64) -> i64 {
    match cmd {
        SCHEDOP_yield => {
            if c.v.id == 0 {
                flush_console(c.d, p);
            }
            tick(c, p);
            0
        }
        SCHEDOP_block => {
            c.vcpu_info(p).evtchn_upcall_mask = 0;
            loop {
                // An upcall held back while events were masked is due now.
                c.release_held_upcall(p);
                tick(c, p);
                if c.vcpu_info(p).evtchn_upcall_pending != 0 {
                    break;
                }
                // An NMI wakes the vCPU too (Xen's vcpu_kick); it is delivered on the way out.
                if p.take_nmi() {
                    c.v.nmi_pending = true;
                }
                if c.v.nmi_pending && !c.v.nmi_masked {
                    break;
                }
                p.wait_for_interrupt();
            }
            0
        }
        SCHEDOP_shutdown => {
            let Ok(reason) = Domain::read_guest::<P, u32>(p, arg) else {
                return -XEN_EFAULT;
            };
            if reason == SHUTDOWN_suspend {
                // A PV guest passes its start_info's frame in the third argument.
                flush_console(c.d, p);
                return super::suspend::suspend(c, p, regs.rdx);
            }
            shutdown(c, p, reason)
        }
        SCHEDOP_shutdown_code => match Domain::read_guest::<P, u32>(p, arg) {
            Ok(r) => {
                c.d.shutdown_code.store(r as u64, core::sync::atomic::Ordering::Relaxed);
                0
            }
            Err(Fault) => -XEN_EFAULT,
        },
        SCHEDOP_poll if c.d.forward.is_some() => super::forward::pass(p, __HYPERVISOR_sched_op, [cmd, arg, 0, 0, 0]),
        SCHEDOP_poll => poll(c, p, arg),
        other => unknown_op("sched_op", other),
    }
}
