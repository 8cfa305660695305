//! `xen_version`: what Cocoon says it is, and which features it provides.

use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::platform::{Fault, Platform};

/// The Xen interface version Cocoon implements.
pub const COCOON_XEN_MAJOR: u64 = 4;
pub const COCOON_XEN_MINOR: u64 = 17;

/// Feature bits Cocoon really provides to a 64-bit PV guest: PRESERVE_AD
/// updates (`mmu_update`), and grant-map "available bits" (Cocoon refuses
/// every grant mapping, so none are ever lost). Linux 6.1 requires both.
pub const COCOON_FEATURES: u32 = (1 << XENFEAT_mmu_pt_update_preserve_ad) | (1 << XENFEAT_gnttab_map_avail_bits);

fn put_str<P: Platform>(p: &mut P, arg: u64, s: &[u8], size: usize) -> i64 {
    let mut buf = [0u8; 1024];
    let n = s.len().min(size - 1);
    buf[..n].copy_from_slice(&s[..n]);
    if !Domain::guest_va_ok(arg, size as u64) || p.copy_to_guest(arg, &buf[..size]).is_err() {
        return -XEN_EFAULT;
    }
    0
}

pub fn xen_version<P: Platform>(_c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    match cmd {
        XENVER_version => ((COCOON_XEN_MAJOR << 16) | COCOON_XEN_MINOR) as i64,
        XENVER_extraversion => put_str(p, arg, b".0-cocoon", 16),
        // struct xen_compile_info: compiler[64], compile_by[16], compile_domain[32], compile_date[32].
        XENVER_compile_info => put_str(p, arg, b"cocoon", 144),
        XENVER_capabilities => put_str(p, arg, b"xen-3.0-x86_64 ", 1024),
        XENVER_changeset => put_str(p, arg, b"cocoon", 64),
        XENVER_commandline => put_str(p, arg, b"", 1024),
        XENVER_platform_parameters => match Domain::write_guest(p, arg, &HYPERVISOR_VIRT_START) {
            Ok(()) => 0,
            Err(Fault) => -XEN_EFAULT,
        },
        XENVER_get_features => {
            let Ok(idx) = Domain::read_guest::<P, u32>(p, arg) else {
                return -XEN_EFAULT;
            };
            if idx >= XENFEAT_NR_SUBMAPS {
                return -XEN_EINVAL;
            }
            match Domain::write_guest(p, arg + 4, &COCOON_FEATURES) {
                Ok(()) => 0,
                Err(Fault) => -XEN_EFAULT,
            }
        }
        XENVER_pagesize => PAGE_SIZE as i64,
        XENVER_guest_handle => match Domain::write_guest(p, arg, &[0u8; 16]) {
            Ok(()) => 0,
            Err(Fault) => -XEN_EFAULT,
        },
        _ => -XEN_ENOSYS,
    }
}
