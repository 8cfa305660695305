//! `event_channel_op` for the standalone backend.

use super::unknown_op;
use crate::abi::*;
use crate::domain::Domain;
use crate::events::*;
use crate::platform::{Fault, Platform};

fn read<P: Platform, T: Copy>(p: &mut P, arg: u64) -> Result<T, i64> {
    Domain::read_guest::<P, T>(p, arg).map_err(|_| -XEN_EFAULT)
}

fn write<P: Platform, T: Copy>(p: &mut P, arg: u64, v: &T) -> i64 {
    match Domain::write_guest(p, arg, v) {
        Ok(()) => 0,
        Err(Fault) => -XEN_EFAULT,
    }
}

/// The guest notified `port`: act for the backend behind it.
pub fn send<P: Platform>(d: &mut Domain, p: &mut P, port: u32) -> i64 {
    match d.evtchn.get(port) {
        Some(Port::Backend(Backend::Console)) => {
            super::sched::flush_console(d, p);
            0
        }
        Some(Port::Backend(Backend::Xenstore)) => {
            let mfn = d.store_mfn;
            if d.xenstore.service(p, mfn) {
                d.send_to_guest(p, port);
            }
            0
        }
        Some(Port::Ipi) => {
            d.send_to_guest(p, port);
            0
        }
        Some(_) => 0,
        None => -XEN_EINVAL,
    }
}

pub fn event_channel_op<P: Platform>(d: &mut Domain, p: &mut P, cmd: u64, arg: u64) -> i64 {
    let r = (|| -> Result<i64, i64> {
        Ok(match cmd {
            EVTCHNOP_bind_virq => {
                // {u32 virq; u32 vcpu; u32 port (out)}
                let [virq, vcpu, _] = read::<P, [u32; 3]>(p, arg)?;
                if virq as usize >= NR_VIRQS || vcpu != 0 {
                    return Ok(-XEN_EINVAL);
                }
                if d.evtchn.virq_port[virq as usize] != 0 {
                    return Ok(-XEN_EEXIST);
                }
                let Some(port) = d.evtchn.alloc(Port::Virq(virq)) else { return Ok(-XEN_ENOSPC) };
                d.evtchn.virq_port[virq as usize] = port;
                write(p, arg + 8, &port)
            }
            EVTCHNOP_bind_ipi => {
                // {u32 vcpu; u32 port (out)}
                let [vcpu, _] = read::<P, [u32; 2]>(p, arg)?;
                if vcpu != 0 {
                    return Ok(-XEN_ENOENT);
                }
                let Some(port) = d.evtchn.alloc(Port::Ipi) else { return Ok(-XEN_ENOSPC) };
                write(p, arg + 4, &port)
            }
            EVTCHNOP_alloc_unbound => {
                // {u16 dom; u16 remote_dom; u32 port (out)}
                let Some(port) = d.evtchn.alloc(Port::Unbound) else { return Ok(-XEN_ENOSPC) };
                write(p, arg + 4, &port)
            }
            EVTCHNOP_close => {
                let port = read::<P, u32>(p, arg)?;
                if matches!(d.evtchn.get(port), Some(Port::Backend(_))) {
                    // Cocoon's own backends stay bound.
                    return Ok(0);
                }
                if d.evtchn.close(port) {
                    0
                } else {
                    -XEN_EINVAL
                }
            }
            EVTCHNOP_send => {
                let port = read::<P, u32>(p, arg)?;
                send(d, p, port)
            }
            EVTCHNOP_unmask => {
                let port = read::<P, u32>(p, arg)?;
                if port as usize >= NR_PORTS {
                    return Ok(-XEN_EINVAL);
                }
                let si = d.shared_info(p) as *mut SharedInfo;
                let vi = d.vcpu_info(p) as *mut VcpuInfo;
                // SAFETY: both live in Cocoon's direct map; unmask touches disjoint fields.
                unsafe { unmask(&mut *si, &mut *vi, port) };
                0
            }
            EVTCHNOP_bind_vcpu => {
                let [_, vcpu] = read::<P, [u32; 2]>(p, arg)?;
                if vcpu == 0 {
                    0
                } else {
                    -XEN_ENOENT
                }
            }
            EVTCHNOP_status => {
                // {u16 dom; u32 port @4; u32 status @8; u32 vcpu @12; union @16}
                let port = read::<P, u32>(p, arg + 4)?;
                let (status, extra) = match d.evtchn.get(port) {
                    None => (EVTCHNSTAT_CLOSED, 0),
                    Some(Port::Unbound) => (EVTCHNSTAT_UNBOUND, 0),
                    Some(Port::Virq(v)) => (EVTCHNSTAT_VIRQ, v),
                    Some(Port::Ipi) => (EVTCHNSTAT_IPI, 0),
                    Some(Port::Free) => (EVTCHNSTAT_CLOSED, 0),
                    Some(Port::Backend(_)) => (EVTCHNSTAT_INTERDOMAIN, 0),
                };
                write(p, arg + 8, &[status, 0, extra, 0])
            }
            EVTCHNOP_reset => 0,
            // FIFO ABI: not offered, the guest falls back to 2-level.
            EVTCHNOP_init_control | EVTCHNOP_expand_array | EVTCHNOP_set_priority => -XEN_ENOSYS,
            EVTCHNOP_bind_interdomain | EVTCHNOP_bind_pirq => -XEN_EPERM,
            other => unknown_op("event_channel_op", other),
        })
    })();
    r.unwrap_or_else(|e| e)
}
