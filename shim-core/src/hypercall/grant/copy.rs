//! GNTTABOP_copy between the domain's own grants and frames, as Xen's
//! `gnttab_copy`: each side is a grant ref (pinned for the copy, as
//! `acquire_grant_for_copy`) or, for DOMID_SELF only, a frame.

use super::*;

/// One side of a copy, claimed (Xen's `gnttab_copy_buf`).
struct Buf {
    gref: Option<u32>,
    mfn: u64,
    off: u16,
    len: u16,
    /// A writable hold on the frame (the destination, when guest RAM).
    writable: bool,
}

pub fn copy<P: Platform>(c: &mut Ctx, p: &mut P, uop: u64, count: u32) -> i64 {
    for i in 0..count as u64 {
        let va = uop + i * 40;
        let Ok(op) = Domain::read_guest::<P, GnttabCopy>(p, va) else {
            return -XEN_EFAULT;
        };
        let status = copy_one(c.d, p, &op);
        if Domain::write_guest(p, va + 36, &status).is_err() {
            return -XEN_EFAULT;
        }
    }
    0
}

/// Xen's `gnttab_copy_lock_domain`: only DOMID_SELF names a frame.
fn check_domain(domid: u16, is_gref: bool) -> Result<(), i16> {
    if domid != DOMID_SELF && !is_gref {
        return Err(GNTST_permission_denied);
    }
    if !is_self(domid) {
        return Err(GNTST_bad_domain);
    }
    Ok(())
}

fn copy_one<P: Platform>(d: &Domain, p: &mut P, op: &GnttabCopy) -> i16 {
    let (src_gref, dst_gref) = (op.flags & GNTCOPY_source_gref != 0, op.flags & GNTCOPY_dest_gref != 0);
    if let Err(e) = check_domain(op.source.domid, src_gref).and_then(|_| check_domain(op.dest.domid, dst_gref)) {
        return e;
    }
    let mut l = d.lock();
    let src = match claim(d, &mut l, p, &op.source, src_gref, true) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let dst = match claim(d, &mut l, p, &op.dest, dst_gref, false) {
        Ok(b) => b,
        Err(e) => {
            release(d, &mut l, p, &src, true);
            return e;
        }
    };
    let rc = copy_bytes(p, op, &src, &dst);
    release(d, &mut l, p, &dst, false);
    release(d, &mut l, p, &src, true);
    rc
}

/// Xen's `gnttab_copy_claim_buf`.
fn claim<P: Platform>(
    d: &Domain,
    l: &mut Locked,
    p: &mut P,
    ptr: &GnttabCopyPtr,
    is_gref: bool,
    readonly: bool,
) -> Result<Buf, i16> {
    let mut buf = if is_gref {
        let gref = ptr.u as u32;
        let (mfn, off, len) = acquire(d, l, p, gref, readonly)?;
        Buf { gref: Some(gref), mfn, off, len, writable: false }
    } else {
        if !grantable(l, ptr.u) {
            return Err(GNTST_bad_page);
        }
        Buf { gref: None, mfn: ptr.u, off: 0, len: PAGE_SIZE as u16, writable: false }
    };
    // The destination needs a writable frame: not a page table or
    // descriptor page (Cocoon's shared frames never are).
    if !readonly && l.frames.owned_by_guest(buf.mfn) {
        if l.frames.get_writable(buf.mfn).is_err() {
            release(d, l, p, &buf, readonly);
            return Err(GNTST_general_error);
        }
        buf.writable = true;
    }
    Ok(buf)
}

fn release<P: Platform>(d: &Domain, l: &mut Locked, p: &mut P, buf: &Buf, readonly: bool) {
    if let Some(gref) = buf.gref {
        let v2 = l.grant.v2;
        let act = l.grant.act(gref);
        act.pin = act.pin.wrapping_sub(if readonly { GNTPIN_hstr_inc } else { GNTPIN_hstw_inc });
        let pin = act.pin;
        let mut bits = 0;
        if !readonly && pin & (GNTPIN_devw_mask | GNTPIN_hstw_mask) == 0 {
            bits |= GTF_writing;
        }
        if pin == 0 {
            bits |= GTF_reading;
        }
        if bits != 0 {
            entry::clear_flags(d, p, v2, gref, bits);
        }
    }
    if buf.writable {
        l.frames.put_writable(buf.mfn);
    }
}

/// Xen's `acquire_grant_for_copy` for a grant of the domain's own: the
/// frame and the part of it the grant covers.
fn acquire<P: Platform>(d: &Domain, l: &mut Locked, p: &mut P, gref: u32, ro: bool) -> Result<(u64, u16, u16), i16> {
    if gref >= nr_entries(l) {
        return Err(GNTST_bad_gntref);
    }
    let v2 = l.grant.v2;
    let old = *l.grant.act(gref);
    if old.pin & GNTPIN_overflow != 0 {
        return Err(GNTST_general_error);
    }
    let flags = entry::header(d, p, v2, gref) as u16;
    let needs_status = old.pin == 0 || (!ro && old.pin & (GNTPIN_devw_mask | GNTPIN_hstw_mask) == 0);
    let mut act = old;
    if v2 && flags & GTF_type_mask == GTF_transitive {
        if needs_status {
            entry::set_status(d, p, true, gref, old.pin != 0, ro, false)?;
        }
        // Through another domain's grant: there is none (and one naming
        // this domain is self-referential).
        clear_after_failure(d, p, v2, gref, old.pin, ro);
        return Err(GNTST_general_error);
    } else if needs_status {
        entry::set_status(d, p, v2, gref, old.pin != 0, ro, false)?;
        let gfn = entry::frame(d, p, v2, gref);
        let (start, length, sub_page) = if v2 && flags & GTF_sub_page != 0 {
            let (off, len) = entry::sub_page(d, p, gref);
            (off, len, true)
        } else {
            (0, PAGE_SIZE as u16, false)
        };
        if !grantable(l, gfn) {
            clear_after_failure(d, p, v2, gref, old.pin, ro);
            return Err(GNTST_bad_page);
        }
        if old.pin == 0 {
            act = Active { pin: 0, mfn: gfn, start, length, sub_page };
        }
    } else if !grantable(l, old.mfn) {
        // Pinned, but the frame left the domain.
        clear_after_failure(d, p, v2, gref, old.pin, ro);
        return Err(GNTST_bad_domain);
    }
    act.pin = old.pin + if ro { GNTPIN_hstr_inc } else { GNTPIN_hstw_inc };
    *l.grant.act(gref) = act;
    Ok((act.mfn, act.start, act.length))
}

/// Xen's `gnttab_copy_buf`: the checks, then the bytes.
fn copy_bytes<P: Platform>(p: &mut P, op: &GnttabCopy, src: &Buf, dst: &Buf) -> i16 {
    let (so, dso, len) = (op.source.offset as u32, op.dest.offset as u32, op.len as u32);
    if so + len > PAGE_SIZE as u32 || dso + len > PAGE_SIZE as u32 {
        return GNTST_bad_copy_arg;
    }
    let inside = |o: u32, b: &Buf| o >= b.off as u32 && o + len <= b.off as u32 + b.len as u32;
    if !inside(so, src) || !inside(dso, dst) {
        return GNTST_general_error;
    }
    let (so, dso, len) = (so as usize, dso as usize, len as usize);
    if src.mfn == dst.mfn {
        p.frame_mut(dst.mfn).copy_within(so..so + len, dso);
        return GNTST_okay;
    }
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        chunk[..n].copy_from_slice(&p.frame(src.mfn)[so + done..so + done + n]);
        p.frame_mut(dst.mfn)[dso + done..dso + done + n].copy_from_slice(&chunk[..n]);
        done += n;
    }
    GNTST_okay
}
