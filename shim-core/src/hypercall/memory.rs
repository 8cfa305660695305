//! `memory_op`: the guest's view of its memory, and ballooning.
//!
//! Ballooning (XENMEM_decrease_reservation, XENMEM_populate_physmap,
//! XENMEM_increase_reservation) needs memory to give back and take from: on a
//! real Xen the guest's frames are Cocoon's GFNs, and those ops become the
//! same ops of Cocoon's HVM domain on those GFNs. A frame the guest gives up
//! stops being its own at once, but is only given back to Xen once nothing
//! refers to it any more (`FrameInfo::unreferenced`, Xen's
//! `guest_remove_page`); until then it waits as `Owner::Leaving`, and the
//! reservation ops look for such frames that lost their last reference
//! (`retry_leaving`).
//!
//! Standalone there is no Xen to give frames back to: Cocoon keeps them
//! itself. A frame given up becomes `Owner::Released` exactly as on Xen
//! (once nothing refers to it), and these released frames are the pool that
//! populate and increase take from: standalone they are simply
//! handed out again (zeroed, as Xen's are); on a real Xen, Xen populates
//! them again first. The guest's RAM never grows beyond what it started
//! with, and a guest that gave nothing up has nothing to take.

use super::unknown_op;
use crate::abi::*;
use crate::domain::{Ctx, Domain, Locked};
use crate::mm::frames::{FrameInfo, Owner};
use crate::platform::{Fault, Platform};
use crate::sync::LockGuard;

/// Frames per hypercall to the Xen underneath (an on-stack array).
const BATCH: usize = 64;

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
    let op = cmd & MEMOP_CMD_MASK;
    match op {
        XENMEM_current_reservation | XENMEM_maximum_reservation => {
            // The argument is a domid; only ourselves.
            match Domain::read_guest::<P, u16>(p, arg) {
                Ok(DOMID_SELF) | Ok(0) if op == XENMEM_maximum_reservation => nr,
                // What the guest has now: frames given back to Xen are not
                // its own; frames still waiting to go are (Xen's tot_pages).
                Ok(DOMID_SELF) | Ok(0) => {
                    let mut l = c.d.lock();
                    retry_leaving(c, p, &mut l, true);
                    nr - l.balloon.released as i64
                }
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
        XENMEM_increase_reservation | XENMEM_decrease_reservation | XENMEM_populate_physmap => {
            reservation_op(c, p, cmd, arg)
        }
        other => unknown_op("memory_op", other),
    }
}

/// The three reservation ops, as Xen's `do_memory_op` runs them: the result
/// is the number of extents done, counted from the start extent in `cmd`'s
/// high bits (a continuation). An unreadable argument, a domain other than
/// the guest, or an extent list outside the guest's addresses do nothing
/// and return the start extent, as Xen does (no errno).
fn reservation_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    let op = cmd & MEMOP_CMD_MASK;
    let start = cmd >> MEMOP_EXTENT_SHIFT;
    let Ok(r) = Domain::read_guest::<P, XenMemoryReservation>(p, arg) else {
        return start as i64;
    };
    // The extents the op covers, all in the guest's addresses (Xen's
    // `guest_handle_subrange_okay`; increase may have no list at all).
    let list_ok = |from: u64, to: u64| Domain::guest_va_ok(r.extent_start.wrapping_add(from * 8), (to - from) * 8);
    if r.nr_extents > (u32::MAX >> MEMOP_EXTENT_SHIFT) as u64
        || start >= r.nr_extents
        || !matches!(r.domid, DOMID_SELF | 0)
        || ((op != XENMEM_increase_reservation || r.extent_start != 0) && !list_ok(start, r.nr_extents))
    {
        return start as i64;
    }
    let done = if op == XENMEM_decrease_reservation {
        decrease_reservation(c, p, &r, start)
    } else {
        populate(c, p, &r, start, op == XENMEM_populate_physmap)
    };
    done as i64
}

/// XENMEM_decrease_reservation: the guest gives up frames (order-k extents
/// are 2^k frames from the MFN given, each given up on its own as Xen does).
/// The first frame that is not the guest's RAM stops the op (Xen's "Bad page
/// free"), the frames of its extent before it already given up. Frames
/// nothing refers to go back to Xen at once, `BATCH` per call.
fn decrease_reservation<P: Platform>(c: &mut Ctx, p: &mut P, r: &XenMemoryReservation, start: u64) -> u64 {
    if r.extent_order > DOMU_MAX_ORDER {
        return start;
    }
    let mut batch = [0u64; BATCH];
    let mut n = 0;
    let mut done = start;
    let mut l = c.d.lock();
    retry_leaving(c, p, &mut l, false);
    'extents: while done < r.nr_extents {
        let Ok(gmfn) = Domain::read_guest::<P, u64>(p, r.extent_start + done * 8) else {
            break;
        };
        for mfn in (0..1u64 << r.extent_order).map(|j| gmfn.wrapping_add(j)) {
            let Locked { frames, m2p, balloon, .. } = &mut *l;
            let unreferenced = match frames.take_from_guest(p, mfn) {
                Ok(u) => u,
                Err(e) => {
                    log::debug!("decrease_reservation: frame {mfn:#x} refused: {e:?}");
                    break 'extents;
                }
            };
            balloon.leaving += 1;
            // No lookup finds it the guest's any more.
            if let Some(e) = m2p.get_mut(mfn as usize) {
                *e = INVALID_M2P_ENTRY;
            }
            if unreferenced {
                batch[n] = mfn;
                n += 1;
                if n == BATCH {
                    give_back(c, p, &mut l, &batch[..n]);
                    n = 0;
                }
            }
        }
        done += 1;
    }
    give_back(c, p, &mut l, &batch[..n]);
    done
}

/// Give leaving frames nothing refers to back to Xen (standalone: to the
/// pool Cocoon keeps). Every CPU's TLB is flushed first: no stale
/// translation may reach a frame once it is Xen's (or once it is the
/// guest's again, say as a page table). Frames Xen does not take stay
/// leaving, for `retry_leaving`.
fn give_back<P: Platform>(c: &Ctx, p: &mut P, l: &mut LockGuard<'_, Locked>, mfns: &[u64]) {
    if mfns.is_empty() {
        return;
    }
    p.flush_tlb_mask(super::mmu::up_vcpus(c), None);
    let rc = match c.d.forward {
        Some(_) => xen_reservation(p, XENMEM_decrease_reservation, mfns),
        None => mfns.len() as i64,
    };
    let given = rc.clamp(0, mfns.len() as i64) as usize;
    let Locked { frames, balloon, .. } = &mut **l;
    for &mfn in &mfns[..given] {
        frames.set_released(mfn);
    }
    balloon.leaving -= given as u64;
    balloon.released += given as u64;
    if given < mfns.len() {
        log::warn!("Xen took back {given} of {} frames (XENMEM_decrease_reservation: {rc}); retried later", mfns.len());
    }
}

/// Leaving frames whose last reference went since they were given up (the
/// guest unmapped them late) go back to Xen: a search of the frame table,
/// made only while some frame is leaving, at most every 16th reservation op
/// unless `now` (a guest that keeps a given-up frame mapped for good costs
/// one search per 16 of its balloon calls).
fn retry_leaving<P: Platform>(c: &Ctx, p: &mut P, l: &mut LockGuard<'_, Locked>, now: bool) {
    if l.balloon.leaving == 0 {
        return;
    }
    l.balloon.since_retry += 1;
    if !now && l.balloon.since_retry < 16 {
        return;
    }
    l.balloon.since_retry = 0;
    let ready = |f: &FrameInfo| f.owner == Owner::Leaving && f.unreferenced();
    let mut from = 0;
    loop {
        let mut batch = [0u64; BATCH];
        let mut n = 0;
        while n < BATCH {
            match l.frames.find_from(from, ready) {
                Some(mfn) if mfn >= from && !batch[..n].contains(&mfn) => {
                    batch[n] = mfn;
                    n += 1;
                    from = mfn + 1;
                }
                _ => break,
            }
        }
        let before = l.balloon.leaving;
        give_back(c, p, l, &batch[..n]);
        if n < BATCH || l.balloon.leaving + n as u64 != before {
            return;
        }
    }
}

/// XENMEM_decrease_reservation or XENMEM_populate_physmap on Cocoon's own
/// domain, for the order-0 GFNs `gfns`. Returns how many Xen did.
fn xen_reservation<P: Platform>(p: &mut P, op: u64, gfns: &[u64]) -> i64 {
    let r = XenMemoryReservation {
        extent_start: gfns.as_ptr() as u64,
        nr_extents: gfns.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    super::forward::pass(p, __HYPERVISOR_memory_op, [op, &r as *const _ as u64, 0, 0, 0])
}

/// XENMEM_populate_physmap (`gpfns`: the guest names the PFN of each frame,
/// and gets its MFN back in the same slot) and XENMEM_increase_reservation
/// (the MFNs are written to the list if there is one). The frames are the
/// ones the guest gave back earlier (never more than it started with), which
/// Xen populates again (standalone: zeroed), found in the frame table from
/// where the last search stopped. Extents are order 0 only: Cocoon has no contiguous frames to
/// promise, and answers a larger order as Xen does when it has no memory of
/// that order (no extent done). Stops, with the count so far, when no frame
/// is left or Xen refuses (the guest's balloon retries later).
fn populate<P: Platform>(c: &mut Ctx, p: &mut P, r: &XenMemoryReservation, start: u64, gpfns: bool) -> u64 {
    // `XENMEMF_address_bits`: frames below 2^bits only.
    let bits = r.mem_flags & 0xff;
    if r.extent_order > 0 || (bits != 0 && bits <= PAGE_SHIFT) {
        return start;
    }
    let below = |mfn: u64| bits == 0 || bits >= 64 || mfn < 1 << (bits - PAGE_SHIFT);
    retry_leaving(c, p, &mut c.d.lock(), false);
    let mut done = start;
    while done < r.nr_extents {
        let want = (r.nr_extents - done).min(BATCH as u64) as usize;
        let mut pfn = [INVALID_M2P_ENTRY; BATCH];
        let mut n = want;
        if gpfns {
            for (k, slot) in pfn[..want].iter_mut().enumerate() {
                match Domain::read_guest::<P, u64>(p, r.extent_start + (done + k as u64) * 8) {
                    Ok(v) => *slot = v,
                    Err(Fault) => {
                        n = k;
                        break;
                    }
                }
            }
        }
        // Frames to hand out: released ones, taken while Xen populates them
        // (the lock is held throughout).
        let mut mfns = [0u64; BATCH];
        let mut l = c.d.lock();
        let mut got = 0;
        // Each search finds the next released frame after the last one
        // (wrapping): `released` searches visit each at most once.
        let mut left = l.balloon.released;
        let mut from = l.balloon.cursor;
        while got < n && left > 0 {
            let Some(mfn) = l.frames.find_from(from, |f| f.owner == Owner::Released) else { break };
            from = mfn + 1;
            left -= 1;
            if below(mfn) {
                mfns[got] = mfn;
                got += 1;
            }
        }
        l.balloon.cursor = from;
        let rc = match c.d.forward {
            _ if got == 0 => 0,
            Some(_) => xen_reservation(p, XENMEM_populate_physmap, &mfns[..got]),
            None => {
                scrub(p, &mfns[..got]);
                got as i64
            }
        };
        let filled = rc.clamp(0, got as i64) as usize;
        {
            let Locked { frames, m2p, balloon, .. } = &mut *l;
            for (&mfn, &gpfn) in mfns[..filled].iter().zip(&pfn) {
                frames.give_to_guest(mfn);
                if let Some(e) = m2p.get_mut(mfn as usize) {
                    *e = gpfn;
                }
            }
            balloon.released -= filled as u64;
        }
        drop(l);
        if filled < got {
            log::warn!("Xen populated {filled} of {got} frames (XENMEM_populate_physmap: {rc})");
        }
        for (k, &mfn) in mfns[..filled].iter().enumerate() {
            if (gpfns || r.extent_start != 0) && Domain::write_guest(p, r.extent_start + done * 8, &mfn).is_err() {
                // The guest cannot learn of these: they go back.
                take_back_unreported(c, p, &mfns[k..filled]);
                return done;
            }
            done += 1;
        }
        if filled < want {
            break;
        }
    }
    done
}

/// Frames just given to the guest that it was never told of: given up again.
fn take_back_unreported<P: Platform>(c: &Ctx, p: &mut P, mfns: &[u64]) {
    let mut l = c.d.lock();
    let mut batch = [0u64; BATCH];
    let mut n = 0;
    for &mfn in mfns.iter().take(BATCH) {
        let Locked { frames, m2p, balloon, .. } = &mut *l;
        if let Ok(unreferenced) = frames.take_from_guest(p, mfn) {
            balloon.leaving += 1;
            if let Some(e) = m2p.get_mut(mfn as usize) {
                *e = INVALID_M2P_ENTRY;
            }
            if unreferenced {
                batch[n] = mfn;
                n += 1;
            }
        }
    }
    give_back(c, p, &mut l, &batch[..n]);
}

/// Zero frames the guest gets from the pool, as Xen gives scrubbed pages
/// (standalone; on a real Xen, Xen populates them zeroed).
fn scrub<P: Platform>(p: &mut P, mfns: &[u64]) {
    for &mfn in mfns {
        p.frame_mut(mfn).fill(0);
    }
}
