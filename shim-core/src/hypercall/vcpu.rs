//! `vcpu_op`: one vCPU, its vcpu_info, runstate area and timers.

use super::unknown_op;
use crate::abi::*;
use crate::domain::Domain;
use crate::platform::{Fault, Platform};

/// `struct vcpu_runstate_info`: state, state_entry_time, time[4].
#[repr(C)]
#[derive(Clone, Copy)]
struct RunstateInfo {
    state: i32,
    _pad: u32,
    state_entry_time: u64,
    time: [u64; 4],
}
const _: () = assert!(core::mem::size_of::<RunstateInfo>() == 48);

/// Write the runstate area: always running, all time spent running.
pub fn update_runstate<P: Platform>(d: &mut Domain, p: &mut P) {
    if let Some(va) = d.vcpu.runstate_va {
        let now = p.now_ns();
        let r = RunstateInfo { state: 0, _pad: 0, state_entry_time: 0, time: [now, 0, 0, 0] };
        let _ = Domain::write_guest(p, va, &r);
    }
}

pub fn vcpu_op<P: Platform>(d: &mut Domain, p: &mut P, cmd: u64, vcpu: u64, arg: u64) -> i64 {
    if vcpu != 0 {
        return -XEN_ENOENT;
    }
    match cmd {
        VCPUOP_is_up => 1,
        VCPUOP_up => 0,
        VCPUOP_register_runstate_memory_area => {
            let Ok(va) = Domain::read_guest::<P, u64>(p, arg) else {
                return -XEN_EFAULT;
            };
            d.vcpu.runstate_va = (va != 0).then_some(va);
            update_runstate(d, p);
            0
        }
        VCPUOP_get_runstate_info => {
            let r = RunstateInfo { state: 0, _pad: 0, state_entry_time: 0, time: [p.now_ns(), 0, 0, 0] };
            match Domain::write_guest(p, arg, &r) {
                Ok(()) => 0,
                Err(Fault) => -XEN_EFAULT,
            }
        }
        VCPUOP_register_vcpu_info => {
            let Ok(r) = Domain::read_guest::<P, [u64; 2]>(p, arg) else {
                return -XEN_EFAULT;
            };
            let (mfn, offset) = (r[0], r[1] as u32 as u64);
            if d.vcpu.vcpu_info_registered {
                return -XEN_EINVAL;
            }
            if offset % 8 != 0 || offset + 64 > PAGE_SIZE || !d.frames.owned_by_guest(mfn) {
                return -XEN_EINVAL;
            }
            let old = *d.vcpu_info(p);
            d.vcpu.vcpu_info_maddr = (mfn << PAGE_SHIFT) | offset;
            d.vcpu.vcpu_info_registered = true;
            let new = d.vcpu_info(p);
            *new = old;
            // Xen sets every selector bit so the guest rescans all ports.
            new.evtchn_pending_sel = !0;
            new.evtchn_upcall_pending = 1;
            d.update_time(p);
            0
        }
        VCPUOP_set_periodic_timer => {
            let Ok(period) = Domain::read_guest::<P, u64>(p, arg) else {
                return -XEN_EFAULT;
            };
            if period < 1_000_000 {
                return -XEN_EINVAL;
            }
            d.vcpu.periodic_ns = period;
            d.vcpu.periodic_next = p.now_ns() + period;
            super::sched::program_timer(d, p);
            0
        }
        VCPUOP_stop_periodic_timer => {
            d.vcpu.periodic_ns = 0;
            super::sched::program_timer(d, p);
            0
        }
        VCPUOP_set_singleshot_timer => {
            let Ok(t) = Domain::read_guest::<P, [u64; 2]>(p, arg) else {
                return -XEN_EFAULT;
            };
            // A deadline in the past fires at once (VCPU_SSHOTTMR_future is ignored, as Xen does).
            d.vcpu.singleshot = Some(t[0]);
            super::sched::program_timer(d, p);
            0
        }
        VCPUOP_stop_singleshot_timer => {
            d.vcpu.singleshot = None;
            super::sched::program_timer(d, p);
            0
        }
        other => unknown_op("vcpu_op", other),
    }
}
