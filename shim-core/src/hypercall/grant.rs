//! `grant_table_op` for a domU with no backends: a v1 table of Cocoon's
//! frames the guest maps and fills; nothing ever maps its grants.

use crate::abi::*;
use crate::domain::{Ctx, Domain, NR_GRANT_FRAMES};
use crate::platform::{Fault, Platform};

const GNTST_okay: i16 = 0;
const GNTST_general_error: i16 = -1;
const GNTST_bad_domain: i16 = -2;

pub fn grant_table_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, uop: u64, count: u64) -> i64 {
    match cmd {
        GNTTABOP_query_size => {
            // {u16 dom; u32 nr_frames @4; u32 max_nr_frames @8; i16 status @12}
            let nr = c.d.lock().grant_frames_set_up.max(1) as u32;
            let out = (nr, NR_GRANT_FRAMES as u32, GNTST_okay as u16 as u32);
            match Domain::write_guest(p, uop + 4, &[out.0, out.1, out.2]) {
                Ok(()) => 0,
                Err(Fault) => -XEN_EFAULT,
            }
        }
        GNTTABOP_setup_table => {
            // {u16 dom; u32 nr_frames @4; i16 status @8; handle frame_list @16}
            for i in 0..count {
                let base = uop + i * 24;
                let Ok([dom_nr, status_pad, list]) = Domain::read_guest::<P, [u64; 3]>(p, base) else {
                    return -XEN_EFAULT;
                };
                let (dom, nr) = (dom_nr as u16, (dom_nr >> 32) as u32);
                let _ = status_pad;
                let status = if dom != 0x7ff0 && dom != 0 {
                    GNTST_bad_domain
                } else if nr as usize > NR_GRANT_FRAMES {
                    GNTST_general_error
                } else {
                    for f in 0..nr as u64 {
                        let mfn = c.d.grant_mfns[f as usize];
                        if Domain::write_guest(p, list + f * 8, &mfn).is_err() {
                            return -XEN_EFAULT;
                        }
                    }
                    let mut l = c.d.lock();
                    l.grant_frames_set_up = l.grant_frames_set_up.max(nr as usize);
                    GNTST_okay
                };
                if Domain::write_guest(p, base + 8, &status).is_err() {
                    return -XEN_EFAULT;
                }
            }
            0
        }
        GNTTABOP_set_version => {
            // {u32 version}: only v1.
            match Domain::read_guest::<P, u32>(p, uop) {
                Ok(1) => 0,
                Ok(_) => {
                    let _ = Domain::write_guest(p, uop, &1u32);
                    -XEN_EINVAL
                }
                Err(Fault) => -XEN_EFAULT,
            }
        }
        GNTTABOP_get_version => match Domain::write_guest(p, uop + 4, &1u32) {
            Ok(()) => 0,
            Err(Fault) => -XEN_EFAULT,
        },
        // Backend operations: there is no other domain to grant to.
        GNTTABOP_map_grant_ref | GNTTABOP_unmap_grant_ref | GNTTABOP_copy | GNTTABOP_transfer => -XEN_EOPNOTSUPP,
        _ => -XEN_ENOSYS,
    }
}
