//! GNTTABOP_map_grant_ref, unmap_grant_ref and unmap_and_replace of the
//! domain's own grants, as Xen's `map_grant_ref`/`unmap_common` and the PV
//! `create_grant_pv_mapping`/`replace_grant_pv_mapping`.
//!
//! Counting: a host mapping is an L1 entry written through
//! `FrameTable::update_entry`, so it holds the reference (and, writable,
//! the writable type) any present L1 entry holds; a device mapping holds a
//! reference (`get_ref`), or a writable one (`get_writable`). Either keeps
//! the frame from leaving the guest while mapped.

use super::*;
use crate::mm::frames::PageType;

/// What a map refused by `_set_status` reports: Xen 4.17's
/// `if ( (rc = _set_status(...) != GNTST_okay) )` stores the comparison,
/// so the guest sees 1, not GNTST_general_error.
pub const MAP_SET_STATUS_FAILED: i16 = 1;

/// The flags of a grant's PTE (Xen's `grant_to_pte_flags`, no cache
/// attributes: those are for I/O memory only).
fn pte_flags<P: Platform>(p: &mut P, flags: u32) -> u64 {
    let nx = if p.rdmsr(MSR_EFER) & (1 << 11) != 0 { _PAGE_NX } else { 0 };
    let mut f = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY | nx;
    if flags & GNTMAP_application_map != 0 {
        f |= _PAGE_USER;
    }
    if flags & GNTMAP_readonly == 0 {
        f |= _PAGE_RW;
    }
    f | (((flags >> _GNTMAP_guest_avail0) as u64) << 9) & _PAGE_AVAIL
}

/// The machine address of the L1 entry `addr` names (a PTE's machine
/// address with GNTMAP_contains_pte, else a linear address in the current
/// tables), in a live L1 table of the guest's.
fn l1e_of<P: Platform>(c: &Ctx, l: &Locked, p: &mut P, addr: u64, contains_pte: bool) -> Option<u64> {
    let ma = if contains_pte {
        if addr & 7 != 0 {
            return None;
        }
        addr
    } else {
        if !Domain::guest_va_ok(addr, 1) {
            return None;
        }
        crate::hypercall::mmu::l1e_maddr(c, p, addr)?
    };
    let f = l.frames.get(ma >> PAGE_SHIFT)?;
    (f.owner == Owner::Guest && f.ty == PageType::L1 && f.type_count > 0).then_some(ma)
}

fn write_l1e<P: Platform>(l: &mut Locked, p: &mut P, ma: u64, val: u64) -> Result<(), i16> {
    let idx = ((ma & (PAGE_SIZE - 1)) / 8) as usize;
    // A live L1 entry (`l1e_of`): no update of one makes a new page table.
    l.frames.update_entry(p, ma >> PAGE_SHIFT, idx, val, false, true).map(|_| ()).map_err(|_| GNTST_general_error)
}

pub fn map_grant_ref<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32) -> i64 {
    for i in 0..count as u64 {
        let va = uop + i * 32;
        let Ok(mut op) = Domain::read_guest::<P, GnttabMapGrantRef>(p, va) else {
            return -XEN_EFAULT;
        };
        map_one(c, p, &mut op);
        if Domain::write_guest(p, va, &op).is_err() {
            return -XEN_EFAULT;
        }
    }
    0
}

fn map_one<P: Platform>(c: &mut Ctx, p: &mut P, op: &mut GnttabMapGrantRef) {
    if op.flags & (GNTMAP_device_map | GNTMAP_host_map) == 0 {
        op.status = GNTST_bad_gntref;
        return;
    }
    if op.dom != DOMID_STANDALONE {
        op.status = GNTST_bad_domain;
        return;
    }
    let d = c.d;
    let mut l = d.lock();
    let Some(handle) = l.grant.free_handle() else {
        op.status = GNTST_no_device_space;
        return;
    };
    let gref = op.r#ref;
    if gref >= nr_entries(&l) {
        op.status = GNTST_bad_gntref;
        return;
    }
    let (v2, ro) = (l.grant.v2, op.flags & GNTMAP_readonly != 0);
    let old = *l.grant.act(gref);
    if old.pin != 0 && (old.pin & GNTPIN_overflow != 0 || old.sub_page) {
        op.status = GNTST_general_error;
        return;
    }
    let mut act = old;
    if old.pin == 0 || (!ro && old.pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask) == 0) {
        if entry::set_status(d, p, v2, gref, old.pin != 0, ro, true).is_err() {
            op.status = MAP_SET_STATUS_FAILED;
            return;
        }
        if old.pin == 0 {
            let gfn = entry::frame(d, p, v2, gref);
            if !grantable(&l, gfn) {
                clear_after_failure(d, p, v2, gref, old.pin, ro);
                op.status = GNTST_bad_page;
                return;
            }
            act = Active { pin: 0, mfn: gfn, start: 0, length: PAGE_SIZE as u16, sub_page: false };
        }
    }
    let mfn = act.mfn;
    match hold_and_map(c, &mut l, p, op, mfn) {
        Ok(()) => {
            let mut inc = 0;
            if op.flags & GNTMAP_device_map != 0 {
                inc += if ro { GNTPIN_devr_inc } else { GNTPIN_devw_inc };
            }
            if op.flags & GNTMAP_host_map != 0 {
                inc += if ro { GNTPIN_hstr_inc } else { GNTPIN_hstw_inc };
            }
            act.pin = old.pin + inc;
            *l.grant.act(gref) = act;
            // Xen keeps the flags' low 16 bits (`grant_mapping.flags`).
            l.grant.maptrack[handle as usize] = Mapping { flags: op.flags as u16, gref };
            op.dev_bus_addr = mfn << PAGE_SHIFT;
            op.handle = handle;
            op.status = GNTST_okay;
        }
        Err(st) => {
            clear_after_failure(d, p, v2, gref, old.pin, ro);
            op.status = st;
        }
    }
}

/// Take the device mapping's hold and write the host mapping's PTE.
fn hold_and_map<P: Platform>(c: &Ctx, l: &mut Locked, p: &mut P, op: &GnttabMapGrantRef, mfn: u64) -> Result<(), i16> {
    // Xen's "could not pin": the frame is no longer the domain's.
    if !grantable(l, mfn) {
        return Err(GNTST_general_error);
    }
    let ro = op.flags & GNTMAP_readonly != 0;
    let device = op.flags & GNTMAP_device_map != 0;
    if device {
        let held = if ro { l.frames.get_ref(mfn) } else { l.frames.get_writable(mfn) };
        held.map_err(|_| GNTST_general_error)?;
    }
    if op.flags & GNTMAP_host_map != 0 {
        let pte = (mfn << PAGE_SHIFT) | pte_flags(p, op.flags);
        let r = match l1e_of(c, l, p, op.host_addr, op.flags & GNTMAP_contains_pte != 0) {
            Some(ma) => write_l1e(l, p, ma, pte),
            None => Err(GNTST_general_error),
        };
        if let Err(e) = r {
            if device {
                release_device(l, mfn, ro);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn release_device(l: &mut Locked, mfn: u64, ro: bool) {
    if ro {
        l.frames.put_ref(mfn);
    } else {
        l.frames.put_writable(mfn);
    }
}

/// unmap_grant_ref (`replace`: unmap_and_replace, whose second address
/// field is `new_addr` and which never unmaps a device mapping).
pub fn unmap_grant_ref<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32, replace: bool) -> i64 {
    let mut rc = 0;
    for i in 0..count as u64 {
        let va = uop + i * 24;
        let Ok(op) = Domain::read_guest::<P, GnttabUnmapGrantRef>(p, va) else {
            rc = -XEN_EFAULT;
            break;
        };
        let (dev_bus_addr, new_addr) = if replace { (0, op.dev_bus_addr) } else { (op.dev_bus_addr, 0) };
        let status = unmap_one(c, p, op.host_addr, dev_bus_addr, new_addr, op.handle);
        if Domain::write_guest(p, va + 20, &status).is_err() {
            rc = -XEN_EFAULT;
            break;
        }
    }
    // No stale translation of an unmapped grant survives the batch.
    p.flush_tlb_mask(crate::hypercall::mmu::up_vcpus(c), None);
    rc
}

fn unmap_one<P: Platform>(c: &Ctx, p: &mut P, host_addr: u64, dev_bus_addr: u64, new_addr: u64, handle: u32) -> i16 {
    let d = c.d;
    let mut l = d.lock();
    let Some(&map) = l.grant.maptrack.get(handle as usize) else {
        return GNTST_bad_handle;
    };
    if map.flags == 0 {
        return GNTST_bad_handle;
    }
    if map.gref >= nr_entries(&l) {
        return GNTST_bad_handle;
    }
    let flags = map.flags as u32;
    let ro = flags & GNTMAP_readonly != 0;
    let mfn = l.grant.act(map.gref).mfn;
    if dev_bus_addr != 0 && dev_bus_addr != mfn << PAGE_SHIFT {
        return GNTST_general_error;
    }
    let mut left = flags;
    let mut pin_dec = 0;
    if host_addr != 0 && flags & GNTMAP_host_map != 0 {
        if let Err(st) = replace_host_mapping(c, &mut l, p, host_addr, mfn, new_addr, flags) {
            return st;
        }
        left &= !GNTMAP_host_map;
        pin_dec += if ro { GNTPIN_hstr_inc } else { GNTPIN_hstw_inc };
    }
    if dev_bus_addr != 0 && flags & GNTMAP_device_map != 0 {
        left &= !GNTMAP_device_map;
        release_device(&mut l, mfn, ro);
        pin_dec += if ro { GNTPIN_devr_inc } else { GNTPIN_devw_inc };
    }
    l.grant.maptrack[handle as usize].flags =
        if left & (GNTMAP_device_map | GNTMAP_host_map) == 0 { 0 } else { left as u16 };
    if pin_dec != 0 {
        let v2 = l.grant.v2;
        let act = l.grant.act(map.gref);
        act.pin = act.pin.wrapping_sub(pin_dec);
        let pin = act.pin;
        let mut bits = 0;
        if pin & (GNTPIN_devw_mask | GNTPIN_hstw_mask) == 0 && !ro {
            bits |= GTF_writing;
        }
        if pin == 0 {
            bits |= GTF_reading;
        }
        if bits != 0 {
            entry::clear_flags(d, p, v2, map.gref, bits);
        }
    }
    GNTST_okay
}

/// Xen's `replace_grant_pv_mapping`: the entry at `addr` must still map
/// `mfn` present and with the grant's writability; it becomes empty, or
/// (unmap_and_replace) takes the entry at `new_addr`, which becomes empty.
fn replace_host_mapping<P: Platform>(
    c: &Ctx,
    l: &mut Locked,
    p: &mut P,
    addr: u64,
    mfn: u64,
    new_addr: u64,
    flags: u32,
) -> Result<(), i16> {
    let contains_pte = flags & GNTMAP_contains_pte != 0;
    if contains_pte && new_addr != 0 {
        return Err(GNTST_general_error);
    }
    // The entry unmap_and_replace moves (Xen's `steal_linear_address`).
    let stolen = if new_addr != 0 {
        let Some(ma) = l1e_of(c, l, p, new_addr, false) else {
            return Err(GNTST_general_error);
        };
        Some((ma, p.read_u64(ma >> PAGE_SHIFT, ((ma & (PAGE_SIZE - 1)) / 8) as usize)))
    } else {
        None
    };
    let r = (|| {
        let ma = l1e_of(c, l, p, addr, contains_pte).ok_or(GNTST_general_error)?;
        let old = p.read_u64(ma >> PAGE_SHIFT, ((ma & (PAGE_SIZE - 1)) / 8) as usize);
        let want = pte_flags(p, flags);
        if (old & PADDR_MASK) >> PAGE_SHIFT != mfn || (old ^ want) & (_PAGE_PRESENT | _PAGE_RW) != 0 {
            log::debug!("grant unmap: PTE {old:#x} at {addr:#x} does not map frame {mfn:#x} as granted");
            return Err(GNTST_general_error);
        }
        write_l1e(l, p, ma, stolen.map_or(0, |s| s.1))
    })();
    if let Some((ma, _)) = stolen {
        // Xen zaps `new_addr` first, and keeps it zapped whatever follows.
        let _ = write_l1e(l, p, ma, 0);
    }
    r
}
