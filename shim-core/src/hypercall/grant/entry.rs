//! The shared grant entries (in Cocoon's grant frames) and the v2 status
//! words (in its status frames) as Cocoon reads and changes them. The guest
//! writes them at any time from any vCPU, so what Xen does with one atomic
//! access is one atomic access here too. Callers have checked `gref`
//! against the table's size (`GrantTable::nr_entries`).

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering::SeqCst};

use crate::abi::*;
use crate::builder::GuestMemory;
use crate::domain::{Domain, DOMID_STANDALONE};

const V1_PER_FRAME: u32 = (PAGE_SIZE / 8) as u32;
const V2_PER_FRAME: u32 = (PAGE_SIZE / 16) as u32;
const STATUS_PER_FRAME: u32 = (PAGE_SIZE / 2) as u32;

/// Entries a table of `frames` frames holds in `version`.
pub fn per_frames(v2: bool, frames: usize) -> u32 {
    frames as u32 * if v2 { V2_PER_FRAME } else { V1_PER_FRAME }
}

/// The machine frame and offset of entry `gref`.
fn place(d: &Domain, v2: bool, gref: u32) -> (u64, usize) {
    let (per, size) = if v2 { (V2_PER_FRAME, 16) } else { (V1_PER_FRAME, 8) };
    (d.grant_mfns[(gref / per) as usize], (gref % per) as usize * size)
}

/// Bytes `off..off + size` of frame `mfn`, aligned to `size`.
fn ptr(mem: &mut impl GuestMemory, mfn: u64, off: usize, size: usize) -> *mut u8 {
    debug_assert!(off.is_multiple_of(size) && off + size <= PAGE_SIZE as usize);
    mem.frame_mut(mfn)[off..off + size].as_mut_ptr()
}

fn a16(mem: &mut impl GuestMemory, mfn: u64, off: usize) -> &AtomicU16 {
    // SAFETY: two bytes of a page-aligned frame at an even offset, alive as
    // long as `mem`'s borrow; the guest touches them only by its own atomic or
    // plain accesses, which is what sharing them with it means (Xen's
    // guest_cmpxchg and friends).
    unsafe { AtomicU16::from_ptr(ptr(mem, mfn, off, 2) as *mut u16) }
}

fn a32(mem: &mut impl GuestMemory, mfn: u64, off: usize) -> &AtomicU32 {
    // SAFETY: as `a16`, four bytes at an offset that is a multiple of 4.
    unsafe { AtomicU32::from_ptr(ptr(mem, mfn, off, 4) as *mut u32) }
}

fn a64(mem: &mut impl GuestMemory, mfn: u64, off: usize) -> &AtomicU64 {
    // SAFETY: as `a16`, eight bytes at an offset that is a multiple of 8.
    unsafe { AtomicU64::from_ptr(ptr(mem, mfn, off, 8) as *mut u64) }
}

/// The entry's header, `flags | domid << 16` (Xen's `union grant_combo`).
pub fn header(d: &Domain, mem: &mut impl GuestMemory, v2: bool, gref: u32) -> u32 {
    let (mfn, off) = place(d, v2, gref);
    a32(mem, mfn, off).load(SeqCst)
}

/// `full_page.frame` (v1: `frame`).
pub fn frame(d: &Domain, mem: &mut impl GuestMemory, v2: bool, gref: u32) -> u64 {
    let (mfn, off) = place(d, v2, gref);
    if v2 {
        a64(mem, mfn, off + 8).load(SeqCst)
    } else {
        a32(mem, mfn, off + 4).load(SeqCst) as u64
    }
}

/// A v2 entry's `sub_page.page_off` and `sub_page.length`.
pub fn sub_page(d: &Domain, mem: &mut impl GuestMemory, gref: u32) -> (u16, u16) {
    let (mfn, off) = place(d, true, gref);
    let w = a32(mem, mfn, off + 4).load(SeqCst);
    (w as u16, (w >> 16) as u16)
}

fn status_word<'m>(d: &Domain, mem: &'m mut impl GuestMemory, gref: u32) -> &'m AtomicU16 {
    let mfn = d.status_mfns[(gref / STATUS_PER_FRAME) as usize];
    a16(mem, mfn, (gref % STATUS_PER_FRAME) as usize * 2)
}

/// The v2 status word of `gref`.
pub fn status(d: &Domain, mem: &mut impl GuestMemory, gref: u32) -> u16 {
    status_word(d, mem, gref).load(SeqCst)
}

pub fn set_status_word(d: &Domain, mem: &mut impl GuestMemory, gref: u32, v: u16) {
    status_word(d, mem, gref).store(v, SeqCst)
}

/// Xen's `gnttab_clear_flags`: clear `bits` in the status (v1: the flags).
pub fn clear_flags(d: &Domain, mem: &mut impl GuestMemory, v2: bool, gref: u32, bits: u16) {
    if v2 {
        status_word(d, mem, gref).fetch_and(!bits, SeqCst);
    } else {
        let (mfn, off) = place(d, false, gref);
        a32(mem, mfn, off).fetch_and(!(bits as u32), SeqCst);
    }
}

/// The whole entry, as raw words (v1: one, v2: two), for swaps and version switches.
pub fn raw(d: &Domain, mem: &mut impl GuestMemory, v2: bool, gref: u32) -> [u64; 2] {
    let (mfn, off) = place(d, v2, gref);
    let lo = a64(mem, mfn, off).load(SeqCst);
    [lo, if v2 { a64(mem, mfn, off + 8).load(SeqCst) } else { 0 }]
}

pub fn set_raw(d: &Domain, mem: &mut impl GuestMemory, v2: bool, gref: u32, e: [u64; 2]) {
    let (mfn, off) = place(d, v2, gref);
    a64(mem, mfn, off).store(e[0], SeqCst);
    if v2 {
        a64(mem, mfn, off + 8).store(e[1], SeqCst);
    }
}

/// Xen's `_set_status`: mark entry `gref` as in use for reading (and
/// writing unless `readonly`) by the domain itself. An entry not yet pinned must
/// be a `GTF_permit_access` grant to the domain itself (v2: or a transitive one; a map,
/// `mapflag`, also refuses `GTF_sub_page`), and a writer needs no
/// `GTF_readonly`. Refusals are Xen's GNTST_general_error.
pub fn set_status(
    d: &Domain,
    mem: &mut impl GuestMemory,
    v2: bool,
    gref: u32,
    pinned: bool,
    readonly: bool,
    mapflag: bool,
) -> Result<(), i16> {
    let ldom = DOMID_STANDALONE;
    let mask = GTF_type_mask | if mapflag { GTF_sub_page } else { 0 };
    let bad = |raw: u32| {
        let (flags, domid) = (raw as u16, (raw >> 16) as u16);
        let ty = flags & mask;
        let type_ok = ty == GTF_permit_access || (v2 && ty == GTF_transitive);
        !pinned && (!type_ok || domid != ldom)
    };
    let (mfn, off) = place(d, v2, gref);
    if !v2 {
        // A few tries only: the guest may change the entry faster than a
        // read-modify-cmpxchg goes round.
        let hdr = a32(mem, mfn, off);
        let mut cur = hdr.load(SeqCst);
        for _ in 0..5 {
            if bad(cur) {
                return Err(GNTST_general_error);
            }
            let mut new = cur | GTF_reading as u32;
            if !readonly {
                if cur & GTF_readonly as u32 != 0 {
                    return Err(GNTST_general_error);
                }
                new |= GTF_writing as u32;
            }
            match hdr.compare_exchange(cur, new, SeqCst, SeqCst) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
        return Err(GNTST_general_error);
    }
    let cur = a32(mem, mfn, off).load(SeqCst);
    if bad(cur) {
        return Err(GNTST_general_error);
    }
    if readonly {
        status_word(d, mem, gref).fetch_or(GTF_reading, SeqCst);
    } else {
        if cur as u16 & GTF_readonly != 0 {
            return Err(GNTST_general_error);
        }
        status_word(d, mem, gref).fetch_or(GTF_reading | GTF_writing, SeqCst);
    }
    // The guest sees the status before the flags are checked again.
    let now = a32(mem, mfn, off).load(SeqCst);
    let ro_now = now as u16 & GTF_readonly != 0;
    if !pinned {
        if bad(now) || (!readonly && ro_now) {
            clear_flags(d, mem, true, gref, GTF_writing | GTF_reading);
            return Err(GNTST_general_error);
        }
    } else if ro_now {
        clear_flags(d, mem, true, gref, GTF_writing);
        return Err(GNTST_general_error);
    }
    Ok(())
}
