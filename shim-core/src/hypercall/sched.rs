//! Scheduling: block (idle), yield, shutdown, and the vCPU's timers.

use super::unknown_op;
use crate::abi::*;
use crate::domain::Domain;
use crate::platform::{ExitReason, Fault, Platform};
use crate::regs::GuestRegs;

/// How often Cocoon looks at its console input while the guest runs or idles.
pub const POLL_NS: u64 = 10_000_000;

/// Arm the platform timer for the earliest guest deadline (or the next poll).
/// On a real Xen the guest's timers are Xen's: Cocoon's own timer only polls
/// the console it serves, or the host's events when they come without an interrupt.
pub fn program_timer<P: Platform>(d: &mut Domain, p: &mut P) {
    let now = p.now_ns();
    if let Some(f) = d.forward {
        let poll = f.local_console.is_some() || p.host_events_polled();
        p.set_timer(poll.then_some(now + POLL_NS));
        return;
    }
    let mut next = now + POLL_NS;
    if let Some(t) = d.vcpu.singleshot {
        next = next.min(t);
    }
    if d.vcpu.periodic_ns != 0 {
        next = next.min(d.vcpu.periodic_next);
    }
    p.set_timer(Some(next.max(now + 1000)));
}

/// Expire the guest's timers, move console input in and output out.
pub fn tick<P: Platform>(d: &mut Domain, p: &mut P) {
    if d.forward.is_some() {
        if d.local_console_port().is_some() {
            poll_console(d, p);
        }
        program_timer(d, p);
        return;
    }
    let now = p.now_ns();
    let mut fire = false;
    if d.vcpu.singleshot.is_some_and(|t| t <= now) {
        d.vcpu.singleshot = None;
        fire = true;
    }
    if d.vcpu.periodic_ns != 0 && d.vcpu.periodic_next <= now {
        let late = (now - d.vcpu.periodic_next) / d.vcpu.periodic_ns + 1;
        d.vcpu.periodic_next += late * d.vcpu.periodic_ns;
        fire = true;
    }
    if fire {
        d.update_time(p);
        d.raise_virq(p, VIRQ_TIMER);
    }
    poll_console(d, p);
    program_timer(d, p);
}

pub fn poll_console<P: Platform>(d: &mut Domain, p: &mut P) {
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
                d.send_to_guest(p, port);
            }
        }
    }
}

pub fn flush_console<P: Platform>(d: &mut Domain, p: &mut P) {
    let mfn = d.console.mfn;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    crate::console::drain_output(p, mfn, |b| {
        buf[..b.len()].copy_from_slice(b);
        n = b.len();
    });
    if n > 0 {
        p.console_write(&buf[..n]);
    }
}

pub fn set_timer_op<P: Platform>(d: &mut Domain, p: &mut P, deadline: u64) -> i64 {
    d.vcpu.singleshot = (deadline != 0).then_some(deadline);
    program_timer(d, p);
    0
}

fn shutdown<P: Platform>(d: &mut Domain, p: &mut P, reason: u32) -> ! {
    flush_console(d, p);
    let (what, exit) = match reason {
        SHUTDOWN_poweroff => ("poweroff", ExitReason::GuestPoweroff),
        SHUTDOWN_reboot => ("reboot", ExitReason::GuestReboot),
        SHUTDOWN_crash => ("crash", ExitReason::GuestCrash),
        SHUTDOWN_watchdog => ("watchdog", ExitReason::GuestCrash),
        _ => ("unknown reason", ExitReason::GuestCrash),
    };
    log::info!(
        "guest shut down: {what} (reason {reason}); {} hypercalls, {} traps, {} bounces, {} emulated PTE writes",
        d.stats.hypercalls,
        d.stats.traps,
        d.stats.bounces,
        d.stats.ptwr_emulations
    );
    p.exit(exit)
}

pub fn sched_op<P: Platform>(d: &mut Domain, p: &mut P, _regs: &mut GuestRegs, cmd: u64, arg: u64) -> i64 {
    match cmd {
        SCHEDOP_yield => {
            flush_console(d, p);
            tick(d, p);
            0
        }
        SCHEDOP_block => {
            d.vcpu_info(p).evtchn_upcall_mask = 0;
            loop {
                // An upcall held back while events were masked is due now.
                d.release_held_upcall(p);
                tick(d, p);
                if d.vcpu_info(p).evtchn_upcall_pending != 0 {
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
                return -XEN_EOPNOTSUPP;
            }
            shutdown(d, p, reason)
        }
        SCHEDOP_shutdown_code => match Domain::read_guest::<P, u32>(p, arg) {
            Ok(r) => {
                d.shutdown_code = Some(r);
                0
            }
            Err(Fault) => -XEN_EFAULT,
        },
        SCHEDOP_poll if d.forward.is_some() => super::forward::pass(p, __HYPERVISOR_sched_op, [cmd, arg, 0, 0, 0]),
        SCHEDOP_poll => -XEN_ENOSYS,
        other => unknown_op("sched_op", other),
    }
}
