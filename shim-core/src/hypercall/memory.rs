//! `memory_op`: the guest's view of its memory.

use super::unknown_op;
use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::platform::{Fault, Platform};

const DOMID_SELF: u16 = 0x7ff0;

#[repr(C)]
#[derive(Clone, Copy)]
struct MemoryMap {
    nr_entries: u32,
    _pad: u32,
    buffer: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct E820Entry {
    addr: u64,
    size: u64,
    ty: u32,
}

pub fn memory_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    let nr = c.d.nr_pages() as i64;
    match cmd & 0x3f {
        XENMEM_current_reservation | XENMEM_maximum_reservation => {
            // The argument is a domid; only ourselves.
            match Domain::read_guest::<P, u16>(p, arg) {
                Ok(DOMID_SELF) | Ok(0) => nr,
                Ok(_) => -XEN_ESRCH,
                Err(Fault) => -XEN_EFAULT,
            }
        }
        XENMEM_maximum_ram_page => c.d.lock().frames.len() as i64 - 1,
        XENMEM_maximum_gpfn => nr - 1,
        XENMEM_memory_map => {
            let Ok(mut m) = Domain::read_guest::<P, MemoryMap>(p, arg) else {
                return -XEN_EFAULT;
            };
            if m.nr_entries < 1 {
                return -XEN_EINVAL;
            }
            // One RAM range: every PFN the guest has.
            let e = E820Entry { addr: 0, size: c.d.nr_pages() * PAGE_SIZE, ty: 1 };
            let bytes: [u8; 20] = {
                let mut b = [0u8; 20];
                b[..8].copy_from_slice(&e.addr.to_le_bytes());
                b[8..16].copy_from_slice(&e.size.to_le_bytes());
                b[16..].copy_from_slice(&e.ty.to_le_bytes());
                b
            };
            if !Domain::guest_va_ok(m.buffer, 20) || p.copy_to_guest(m.buffer, &bytes).is_err() {
                return -XEN_EFAULT;
            }
            m.nr_entries = 1;
            if Domain::write_guest(p, arg, &m.nr_entries).is_err() {
                return -XEN_EFAULT;
            }
            0
        }
        XENMEM_machphys_mapping => {
            // {v_start, v_end, max_mfn}
            let max_mfn = c.d.m2p_span - 1;
            let v = [MACH2PHYS_VIRT_START, MACH2PHYS_VIRT_START + c.d.m2p_span * 8, max_mfn];
            if Domain::write_guest(p, arg, &v).is_err() {
                return -XEN_EFAULT;
            }
            0
        }
        // No ballooning in the standalone backend: nothing is taken or given.
        XENMEM_increase_reservation | XENMEM_decrease_reservation | XENMEM_populate_physmap => 0,
        other => unknown_op("memory_op", other),
    }
}
