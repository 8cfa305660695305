//! `grant_table_op` for the standalone domain, as Xen 4.17's
//! `common/grant_table.c` and `arch/x86/pv/grant_table.c` do it for a PV
//! guest with no other domain: a v1 or v2 table in Cocoon's frames the
//! guest maps and fills, the domain's own grants mapped (`map`) and copied
//! (`copy`), entries swapped. On a real Xen, `hypercall::forward` runs instead.
//!
//! The domain's id for grants is [`DOMID_STANDALONE`]: the id a map names
//! (`rcu_lock_domain_by_id`, no DOMID_SELF) and grant entries grant to;
//! the sub-ops that take DOMID_SELF (`rcu_lock_domain_by_any_id`) take both.

mod copy;
mod entry;
mod map;

use alloc::vec;
use alloc::vec::Vec;

use crate::abi::*;
use crate::domain::{Ctx, Domain, Locked, DOMID_STANDALONE, NR_GRANT_FRAMES, NR_STATUS_FRAMES};
use crate::mm::frames::Owner;
use crate::platform::Platform;

// Xen's `active_grant_entry.pin`: four 8-bit use counts.
const GNTPIN_hstw_inc: u32 = 1;
const GNTPIN_hstr_inc: u32 = 1 << 8;
const GNTPIN_devw_inc: u32 = 1 << 16;
const GNTPIN_devr_inc: u32 = 1 << 24;
const GNTPIN_hstw_mask: u32 = 0xff;
const GNTPIN_devw_mask: u32 = 0xff << 16;
/// A count at its top bit: one more use could overflow it.
const GNTPIN_overflow: u32 = 0x8080_8080;
/// Handles Cocoon tracks at once (Xen: 1024 maptrack frames of 256).
pub const MAPTRACK_MAX: usize = 4096;

/// What an entry in use is (Xen's `active_grant_entry`).
#[derive(Clone, Copy, Debug, Default)]
struct Active {
    pin: u32,
    mfn: u64,
    start: u16,
    length: u16,
    sub_page: bool,
}

/// A host and/or device mapping (Xen's `grant_mapping`); flags 0 = free.
#[derive(Clone, Copy, Debug, Default)]
struct Mapping {
    flags: u16,
    gref: u32,
}

/// The standalone grant table's own state (the entries themselves are in
/// the shared frames): behind the domain lock.
#[derive(Default)]
pub struct GrantTable {
    v2: bool,
    /// One per entry of the largest table, made on first use.
    active: Vec<Active>,
    maptrack: Vec<Mapping>,
}

impl GrantTable {
    pub fn version(&self) -> u32 {
        if self.v2 {
            2
        } else {
            1
        }
    }

    fn act(&mut self, gref: u32) -> &mut Active {
        if self.active.is_empty() {
            self.active = vec![Active::default(); entry::per_frames(false, NR_GRANT_FRAMES) as usize];
        }
        &mut self.active[gref as usize]
    }

    fn pin(&self, gref: u32) -> u32 {
        self.active.get(gref as usize).map_or(0, |a| a.pin)
    }

    /// Is any entry in use (mapped; copies hold theirs only during the call)?
    pub fn any_pinned(&self) -> bool {
        self.active.iter().any(|a| a.pin != 0)
    }

    /// The first free handle, without taking it.
    fn free_handle(&mut self) -> Option<u32> {
        if let Some(h) = self.maptrack.iter().position(|m| m.flags == 0) {
            return Some(h as u32);
        }
        if self.maptrack.len() >= MAPTRACK_MAX {
            return None;
        }
        self.maptrack.push(Mapping::default());
        Some(self.maptrack.len() as u32 - 1)
    }
}

/// Frames of the table (Xen's `nr_grant_frames`, at least
/// `INITIAL_NR_GRANT_FRAMES`, 1).
fn nr_frames(l: &Locked) -> usize {
    l.grant_frames_set_up.clamp(1, NR_GRANT_FRAMES)
}

fn nr_entries(l: &Locked) -> u32 {
    entry::per_frames(l.grant.v2, nr_frames(l))
}

/// `rcu_lock_domain_by_any_id`: DOMID_SELF or the domain's own id.
fn is_self(dom: u16) -> bool {
    dom == DOMID_SELF || dom == DOMID_STANDALONE
}

/// A frame the domain may grant: its RAM, or Cocoon's frames it shares
/// (Xen's `get_page(pg, rd)` succeeds for both).
fn grantable(l: &Locked, mfn: u64) -> bool {
    matches!(l.frames.get(mfn).map(|f| f.owner), Some(Owner::Guest | Owner::SharedWithGuest))
}

/// Clear what a failed pin of `gref` set, given the entry's pin count
/// (Xen's `unlock_out_clear`).
fn clear_after_failure<P: Platform>(d: &Domain, p: &mut P, v2: bool, gref: u32, pin: u32, readonly: bool) {
    let mut bits = 0;
    if !readonly && pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask) == 0 {
        bits |= GTF_writing;
    }
    if pin == 0 {
        bits |= GTF_reading;
    }
    if bits != 0 {
        entry::clear_flags(d, p, v2, gref, bits);
    }
}

pub fn grant_table_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, uop: u64, count: u64) -> i64 {
    // Xen's `unsigned int cmd, count`.
    let (cmd, count) = (cmd as u32, count as u32);
    if (count as i32) < 0 {
        return -XEN_EINVAL;
    }
    let opaque = cmd & !GNTTABOP_CMD_MASK;
    let cmd = (cmd & GNTTABOP_CMD_MASK) as u64;
    if cmd != GNTTABOP_cache_flush && opaque != 0 {
        return -XEN_EINVAL;
    }
    // `guest_handle_okay` on the array, before anything is done.
    let array = |size: u64| Domain::guest_va_ok(uop, count as u64 * size);
    match cmd {
        GNTTABOP_map_grant_ref if !array(32) => -XEN_EFAULT,
        GNTTABOP_map_grant_ref => map::map_grant_ref(c, p, uop, count),
        GNTTABOP_unmap_grant_ref if !array(24) => -XEN_EFAULT,
        GNTTABOP_unmap_grant_ref => map::unmap_grant_ref(c, p, uop, count, false),
        GNTTABOP_unmap_and_replace if !array(24) => -XEN_EFAULT,
        GNTTABOP_unmap_and_replace => map::unmap_grant_ref(c, p, uop, count, true),
        GNTTABOP_setup_table => setup_table(c, p, uop, count),
        GNTTABOP_copy if !array(40) => -XEN_EFAULT,
        GNTTABOP_copy => copy::copy(c, p, uop, count),
        GNTTABOP_query_size => query_size(c, p, uop, count),
        GNTTABOP_set_version => set_version(c, p, uop),
        GNTTABOP_get_status_frames => get_status_frames(c, p, uop, count),
        GNTTABOP_get_version => get_version(c, p, uop),
        GNTTABOP_swap_grant_ref if !array(12) => -XEN_EFAULT,
        GNTTABOP_swap_grant_ref => swap_grant_ref(c, p, uop, count),
        // There is no other domain to transfer to.
        GNTTABOP_transfer => -XEN_EOPNOTSUPP,
        _ => -XEN_ENOSYS,
    }
}

fn query_size<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32) -> i64 {
    if count != 1 {
        return -XEN_EINVAL;
    }
    let Ok(mut op) = Domain::read_guest::<P, GnttabQuerySize>(p, uop) else {
        return -XEN_EFAULT;
    };
    if is_self(op.dom) {
        op.nr_frames = nr_frames(&c.d.lock()) as u32;
        op.max_nr_frames = NR_GRANT_FRAMES as u32;
        op.status = GNTST_okay;
    } else {
        op.status = GNTST_bad_domain;
    }
    match Domain::write_guest(p, uop, &op) {
        Ok(()) => 0,
        Err(_) => -XEN_EFAULT,
    }
}

fn setup_table<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32) -> i64 {
    if count != 1 {
        return -XEN_EINVAL;
    }
    let Ok(mut op) = Domain::read_guest::<P, GnttabSetupTable>(p, uop) else {
        return -XEN_EFAULT;
    };
    if !Domain::guest_va_ok(op.frame_list, op.nr_frames as u64 * 8) {
        return -XEN_EFAULT;
    }
    op.status = if !is_self(op.dom) {
        GNTST_bad_domain
    } else if op.nr_frames as usize > NR_GRANT_FRAMES {
        GNTST_general_error
    } else {
        let mut l = c.d.lock();
        l.grant_frames_set_up = l.grant_frames_set_up.max(op.nr_frames as usize);
        drop(l);
        let mut st = GNTST_okay;
        for (i, mfn) in c.d.grant_mfns.iter().take(op.nr_frames as usize).enumerate() {
            if Domain::write_guest(p, op.frame_list + i as u64 * 8, mfn).is_err() {
                st = GNTST_bad_virt_addr;
            }
        }
        st
    };
    match Domain::write_guest(p, uop + 8, &op.status) {
        Ok(()) => 0,
        Err(_) => -XEN_EFAULT,
    }
}

fn get_version<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64) -> i64 {
    let Ok(op) = Domain::read_guest::<P, GnttabGetVersion>(p, uop) else {
        return -XEN_EFAULT;
    };
    if !is_self(op.dom) {
        return -XEN_ESRCH;
    }
    let version = c.d.lock().grant.version();
    match Domain::write_guest(p, uop + 4, &version) {
        Ok(()) => 0,
        Err(_) => -XEN_EFAULT,
    }
}

fn get_status_frames<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32) -> i64 {
    if count != 1 {
        return -XEN_EINVAL;
    }
    let Ok(op) = Domain::read_guest::<P, GnttabGetStatusFrames>(p, uop) else {
        return -XEN_EFAULT;
    };
    let status = if !is_self(op.dom) {
        GNTST_bad_domain
    } else {
        // v2 has the status frames for its table (one covers 8 grant frames).
        let nr_status = if c.d.lock().grant.v2 { NR_STATUS_FRAMES } else { 0 };
        if op.nr_frames as usize > nr_status {
            GNTST_general_error
        } else {
            let mut st = GNTST_okay;
            for (i, mfn) in c.d.status_mfns.iter().take(op.nr_frames as usize).enumerate() {
                if Domain::write_guest(p, op.frame_list.wrapping_add(i as u64 * 8), mfn).is_err() {
                    st = GNTST_bad_virt_addr;
                }
            }
            st
        }
    };
    match Domain::write_guest(p, uop + 6, &status) {
        Ok(()) => 0,
        Err(_) => -XEN_EFAULT,
    }
}

fn set_version<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64) -> i64 {
    let Ok(want) = Domain::read_guest::<P, u32>(p, uop) else {
        return -XEN_EFAULT;
    };
    let d = c.d;
    let mut l = d.lock();
    let res = match want {
        1 | 2 if want == l.grant.version() => 0,
        1 | 2 => switch_version(d, p, &mut l, want == 2),
        _ => -XEN_EINVAL,
    };
    let now = l.grant.version();
    drop(l);
    // The version in effect goes back, whatever happened.
    match Domain::write_guest(p, uop, &now) {
        Ok(()) => res,
        Err(_) => -XEN_EFAULT,
    }
}

/// Xen's version switch: refused while an entry past the reserved ones is
/// in use; the reserved entries are carried over, the rest cleared.
fn switch_version<P: Platform>(d: &Domain, p: &mut P, l: &mut Locked, to_v2: bool) -> i64 {
    let from_v2 = l.grant.v2;
    if (GNTTAB_NR_RESERVED_ENTRIES..nr_entries(l)).any(|r| l.grant.pin(r) != 0) {
        return -XEN_EBUSY;
    }
    let reserved = GNTTAB_NR_RESERVED_ENTRIES as usize;
    // The reserved entries as v1 ones (flags with reading/writing).
    let mut saved = [GrantEntryV1::default(); GNTTAB_NR_RESERVED_ENTRIES as usize];
    for (r, s) in saved.iter_mut().enumerate() {
        let raw = entry::raw(d, p, from_v2, r as u32);
        let (flags, domid) = (raw[0] as u16, (raw[0] >> 16) as u16);
        if !from_v2 {
            *s = GrantEntryV1 { flags, domid, frame: (raw[0] >> 32) as u32 };
            continue;
        }
        match flags & GTF_type_mask {
            GTF_permit_access if raw[1] >> 32 != 0 => return -XEN_ERANGE,
            GTF_transitive => return -XEN_ERANGE,
            GTF_permit_access => {
                let status = entry::status(d, p, r as u32);
                *s = GrantEntryV1 { flags: flags | status, domid, frame: raw[1] as u32 };
            }
            _ => {}
        }
    }
    if from_v2 {
        // The status frames go, unless the guest still maps one.
        if d.status_mfns.iter().any(|&m| l.frames.get(m).is_some_and(|f| !f.unreferenced())) {
            return -XEN_EBUSY;
        }
        for &m in &d.status_mfns {
            l.frames.set_owner(m, Owner::None);
        }
    } else {
        for &m in &d.status_mfns {
            p.frame_mut(m).fill(0);
            l.frames.set_owner(m, Owner::SharedWithGuest);
        }
    }
    for &m in d.grant_mfns.iter().take(nr_frames(l)) {
        p.frame_mut(m).fill(0);
    }
    for (r, s) in saved.iter().enumerate().take(reserved) {
        let r = r as u32;
        let moving = GTF_reading | GTF_writing;
        if to_v2 {
            entry::set_status_word(d, p, r, s.flags & moving);
            let hdr = (s.flags & !moving) as u64 | (s.domid as u64) << 16;
            entry::set_raw(d, p, true, r, [hdr, s.frame as u64]);
        } else {
            let e = s.flags as u64 | (s.domid as u64) << 16 | (s.frame as u64) << 32;
            entry::set_raw(d, p, false, r, [e, 0]);
        }
    }
    l.grant.v2 = to_v2;
    0
}

fn swap_grant_ref<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32) -> i64 {
    for i in 0..count as u64 {
        let va = uop + i * 12;
        let Ok(op) = Domain::read_guest::<P, GnttabSwapGrantRef>(p, va) else {
            return -XEN_EFAULT;
        };
        let status = swap_one(c.d, p, op.ref_a, op.ref_b);
        if Domain::write_guest(p, va + 8, &status).is_err() {
            return -XEN_EFAULT;
        }
    }
    0
}

fn swap_one<P: Platform>(d: &Domain, p: &mut P, a: u32, b: u32) -> i16 {
    let l = d.lock();
    let n = nr_entries(&l);
    if a >= n || b >= n {
        return GNTST_bad_gntref;
    }
    if a == b {
        return GNTST_okay;
    }
    if l.grant.pin(a) != 0 || l.grant.pin(b) != 0 {
        return GNTST_eagain;
    }
    let v2 = l.grant.v2;
    let (ea, eb) = (entry::raw(d, p, v2, a), entry::raw(d, p, v2, b));
    entry::set_raw(d, p, v2, a, eb);
    entry::set_raw(d, p, v2, b, ea);
    if v2 {
        let (sa, sb) = (entry::status(d, p, a), entry::status(d, p, b));
        entry::set_status_word(d, p, a, sb);
        entry::set_status_word(d, p, b, sa);
    }
    0
}
