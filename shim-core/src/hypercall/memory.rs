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
//! populate, increase and exchange take from: standalone they are simply
//! handed out again (zeroed, as Xen's are); on a real Xen, Xen populates
//! them again first. The guest's RAM never grows beyond what it started
//! with, and a guest that gave nothing up has nothing to take.
//!
//! XENMEM_exchange (`exchange`) gives the guest frames from that pool for
//! frames it gives up, as Xen's `memory_exchange` does from its heap.

use core::mem::offset_of;

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
        XENMEM_exchange => exchange(c, p, cmd, arg),
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

// --- XENMEM_exchange ---
//
// Xen's `memory_exchange`: the guest gives up 2^k order-a extents for one
// order-(a+k) extent (or one for many), chunk by chunk. A chunk is all or
// nothing: its input frames are stolen (each must be the guest's and
// referenced by nothing, Xen's `steal_page`), its output extents taken from
// the pool below address_bits, and only then are the inputs given back and
// the outputs handed over, their M2P entries set to the GPFNs the guest
// named and their MFNs written over those GPFNs (a PV guest's list).
// `nr_exchanged` counts the input extents of the chunks done. Cocoon is
// never preempted, so one call does every chunk (Xen may return and
// continue; the guest sees the same result).
//
// On a real Xen, the same op of Cocoon's HVM domain would mean nothing
// useful: Xen refuses to steal pages from a translated domain (x86
// `steal_page` fails with -EOPNOTSUPP when paging_mode_external), and the
// guest's "MFNs" are Cocoon's GFNs anyway, whose contiguity only Cocoon can
// give. So the output extents come from the same pool as populate's (GFNs
// the guest ballooned out earlier, which Xen populates again), and the
// input frames go back to Xen as decrease_reservation gives them.

/// Frames in one chunk: 2^max(in order, out order).
const CHUNK_FRAMES: usize = 1 << DOMU_MAX_ORDER;

/// How the extents of an exchange form chunks (Xen's `in_chunk_order`,
/// `out_chunk_order`: one of them is 0), and the frame every output
/// extent must lie below.
struct Chunks {
    in_order: u32,
    out_order: u32,
    limit: u64,
}

fn exchange<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    if cmd >> MEMOP_EXTENT_SHIFT != 0 {
        return -XEN_EINVAL;
    }
    let Ok(x) = Domain::read_guest::<P, XenMemoryExchange>(p, arg) else {
        return -XEN_EFAULT;
    };
    // (error, nr_exchanged): both written back, as Xen's fail paths do.
    let (rc, done) = match exchange_chunks(&x) {
        Err(rc) => (rc, x.nr_exchanged),
        Ok(None) => return 0,
        Ok(Some(ch)) => exchange_all(c, p, &x, &ch),
    };
    let at = arg.wrapping_add(offset_of!(XenMemoryExchange, nr_exchanged) as u64);
    match Domain::write_guest(p, at, &done) {
        Ok(()) => rc,
        Err(Fault) => -XEN_EFAULT,
    }
}

/// Xen's checks before any chunk, in its order. `Ok(None)`: nothing left
/// to do (`nr_exchanged` already covers every input extent).
fn exchange_chunks(x: &XenMemoryExchange) -> Result<Option<Chunks>, i64> {
    let (i, o) = (&x.input, &x.output);
    if i.extent_order.max(o.extent_order) > DOMU_MAX_ORDER {
        return Err(-XEN_EPERM);
    }
    // Orders are at most 9 from here: no shift overflows.
    if x.nr_exchanged > i.nr_extents
        || i.domid != o.domid
        || (u64::MAX >> i.extent_order) < i.nr_extents
        || (u64::MAX >> o.extent_order) < o.nr_extents
        || i.nr_extents << i.extent_order != o.nr_extents << o.extent_order
    {
        return Err(-XEN_EINVAL);
    }
    if x.nr_exchanged == i.nr_extents {
        return Ok(None);
    }
    let (in_order, out_order) =
        (o.extent_order.saturating_sub(i.extent_order), i.extent_order.saturating_sub(o.extent_order));
    let out_first = (x.nr_exchanged >> in_order) << out_order;
    if !list_ok(i.extent_start, x.nr_exchanged, i.nr_extents) || !list_ok(o.extent_start, out_first, o.nr_extents) {
        return Err(-XEN_EFAULT);
    }
    // Xen's `propagate_node`: a domU may not insist on a NUMA node.
    let node = ((o.mem_flags >> XENMEMF_node_shift).wrapping_sub(1)) & 0xff;
    if node != NUMA_NO_NODE && o.mem_flags & XENMEMF_exact_node_request != 0 {
        return Err(-XEN_EINVAL);
    }
    // The guest is the only domain there is (DOMID_SELF, or 0 as the
    // reservation ops take it).
    if !matches!(i.domid, DOMID_SELF | 0) {
        return Err(-XEN_ESRCH);
    }
    Ok(Some(Chunks { in_order, out_order, limit: frame_limit(o.mem_flags) }))
}

/// Entries `first..end` of a guest list of u64s lie in the guest's
/// addresses (Xen's `guest_handle_subrange_okay`).
fn list_ok(base: u64, first: u64, end: u64) -> bool {
    let n = end.wrapping_sub(first);
    n < u64::MAX / 8 && Domain::guest_va_ok(base.wrapping_add(first.wrapping_mul(8)), n * 8)
}

/// The frame output extents must lie below, from address_bits (Xen's
/// zones: frames below 2^bits bytes; 12 bits or fewer leave frames 0-1).
fn frame_limit(mem_flags: u32) -> u64 {
    match mem_flags & XENMEMF_address_bits_mask {
        0 => u64::MAX,
        b if b <= PAGE_SHIFT => 2,
        b if b - PAGE_SHIFT >= 64 => u64::MAX,
        b => 1 << (b - PAGE_SHIFT),
    }
}

/// Every chunk from `nr_exchanged` on: (0, all input extents), or the
/// first chunk's error and the input extents of the chunks before it.
fn exchange_all<P: Platform>(c: &Ctx, p: &mut P, x: &XenMemoryExchange, ch: &Chunks) -> (i64, u64) {
    let mut l = c.d.lock();
    // Frames given up earlier whose last reference went since join the pool.
    retry_leaving(c, p, &mut l, true);
    for i in x.nr_exchanged >> ch.in_order..x.input.nr_extents >> ch.in_order {
        if let Err(rc) = exchange_chunk(c, p, &mut l, x, ch, i) {
            return (rc, i << ch.in_order);
        }
    }
    (0, x.input.nr_extents)
}

/// Chunk `i`: steal its input frames, take its output extents, then hand
/// over. A failure before the hand-over undoes the chunk; one while
/// writing the guest's list (a fault) leaves it done but reported failed,
/// as Xen does.
fn exchange_chunk<P: Platform>(
    c: &Ctx,
    p: &mut P,
    l: &mut LockGuard<'_, Locked>,
    x: &XenMemoryExchange,
    ch: &Chunks,
    i: u64,
) -> Result<(), i64> {
    let mut stolen = [0u64; CHUNK_FRAMES];
    let mut n_in = 0;
    let mut heads = [0u64; CHUNK_FRAMES];
    let mut n_out = 0;
    let r = steal_inputs(p, l, x, ch, i, &mut stolen, &mut n_in)
        .and_then(|()| take_outputs(c, p, l, x, ch, &mut heads, &mut n_out));
    if let Err(rc) = r {
        for &mfn in &stolen[..n_in] {
            l.frames.set_owner(mfn, Owner::Guest);
        }
        return Err(rc);
    }
    release_inputs(c, p, l, &stolen[..n_in]);
    hand_over(c, p, l, x, ch, i, &heads[..n_out])
}

/// Take every frame of chunk `i`'s input extents from the guest, noting
/// each in `stolen` (`n` of them) as it goes. -EINVAL for a frame that is
/// not the guest's or that anything refers to, -EFAULT for an unreadable list.
fn steal_inputs<P: Platform>(
    p: &mut P,
    l: &mut LockGuard<'_, Locked>,
    x: &XenMemoryExchange,
    ch: &Chunks,
    i: u64,
    stolen: &mut [u64; CHUNK_FRAMES],
    n: &mut usize,
) -> Result<(), i64> {
    for j in 0..1u64 << ch.in_order {
        let at = x.input.extent_start.wrapping_add(((i << ch.in_order) + j).wrapping_mul(8));
        let gmfn = Domain::read_guest::<P, u64>(p, at).map_err(|Fault| -XEN_EFAULT)?;
        for mfn in (0..1u64 << x.input.extent_order).map(|k| gmfn.wrapping_add(k)) {
            if !l.frames.steal(mfn) {
                log::debug!("exchange: frame {mfn:#x} is not the guest's or is in use");
                return Err(-XEN_EINVAL);
            }
            stolen[*n] = mfn;
            *n += 1;
        }
    }
    Ok(())
}

/// Take the chunk's output extents from the pool (`heads`, `n` of them),
/// populated by Xen when there is one. -ENOMEM, everything put back, when
/// the pool has no such extent below the limit or Xen does not populate.
fn take_outputs<P: Platform>(
    c: &Ctx,
    p: &mut P,
    l: &mut LockGuard<'_, Locked>,
    x: &XenMemoryExchange,
    ch: &Chunks,
    heads: &mut [u64; CHUNK_FRAMES],
    n: &mut usize,
) -> Result<(), i64> {
    let order = x.output.extent_order;
    for _ in 0..1u64 << ch.out_order {
        let Some(head) = l.frames.find_released_extent(order, ch.limit) else {
            unwind_outputs(c, p, l, &heads[..*n], order, 0);
            return Err(-XEN_ENOMEM);
        };
        // Out of the pool, nobody's meanwhile.
        for mfn in head..head + (1 << order) {
            l.frames.set_owner(mfn, Owner::Leaving);
        }
        l.balloon.released = l.balloon.released.saturating_sub(1 << order);
        heads[*n] = head;
        *n += 1;
    }
    if c.d.forward.is_some() {
        let populated = xen_populate(p, extent_frames(&heads[..*n], order));
        if populated < *n << order {
            log::warn!("exchange: Xen populated {populated} of {} frames", *n << order);
            unwind_outputs(c, p, l, &heads[..*n], order, populated);
            return Err(-XEN_ENOMEM);
        }
    }
    Ok(())
}

/// Every frame of the order-`order` extents at `heads`, in order.
fn extent_frames(heads: &[u64], order: u32) -> impl Iterator<Item = u64> + '_ {
    heads.iter().flat_map(move |&h| h..h + (1 << order))
}

/// XENMEM_populate_physmap of Cocoon's domain for `frames`, `BATCH` at a
/// time, up to the first Xen refuses: how many it populated.
fn xen_populate<P: Platform>(p: &mut P, frames: impl Iterator<Item = u64>) -> usize {
    let mut batch = [0u64; BATCH];
    let (mut n, mut done) = (0, 0);
    let mut flush = |p: &mut P, batch: &[u64]| {
        let got = xen_reservation(p, XENMEM_populate_physmap, batch).clamp(0, batch.len() as i64) as usize;
        done += got;
        got == batch.len()
    };
    for mfn in frames {
        batch[n] = mfn;
        n += 1;
        if n == BATCH {
            if !flush(p, &batch) {
                return done;
            }
            n = 0;
        }
    }
    if n > 0 {
        flush(p, &batch[..n]);
    }
    done
}

/// Put output extents taken from the pool back: the first `populated`
/// frames, which Xen populated, go back to it as leaving frames do; the
/// rest are released again at once.
fn unwind_outputs<P: Platform>(
    c: &Ctx,
    p: &mut P,
    l: &mut LockGuard<'_, Locked>,
    heads: &[u64],
    order: u32,
    populated: usize,
) {
    let mut batch = [0u64; BATCH];
    let mut n = 0;
    for (k, mfn) in extent_frames(heads, order).enumerate() {
        if k >= populated {
            l.frames.set_owner(mfn, Owner::Released);
            l.balloon.released += 1;
            continue;
        }
        l.balloon.leaving += 1;
        batch[n] = mfn;
        n += 1;
        if n == BATCH {
            give_back(c, p, l, &batch);
            n = 0;
        }
    }
    give_back(c, p, l, &batch[..n]);
}

/// The stolen input frames leave the guest's M2P and go to the pool (Xen's
/// `guest_physmap_remove_page` and `free_domheap_page`).
fn release_inputs<P: Platform>(c: &Ctx, p: &mut P, l: &mut LockGuard<'_, Locked>, stolen: &[u64]) {
    for &mfn in stolen {
        if let Some(e) = l.m2p.get_mut(mfn as usize) {
            *e = INVALID_M2P_ENTRY;
        }
    }
    l.balloon.leaving += stolen.len() as u64;
    for batch in stolen.chunks(BATCH) {
        give_back(c, p, l, batch);
    }
}

/// Give chunk `i`'s output extents to the guest: each at the GPFN its list
/// slot names (M2P), its MFN written over that slot. A slot that cannot be
/// read or written is -EFAULT; the extents are the guest's all the same
/// (Xen's `assign_pages` comes first), one whose GPFN could not be read
/// without an M2P entry.
fn hand_over<P: Platform>(
    c: &Ctx,
    p: &mut P,
    l: &mut LockGuard<'_, Locked>,
    x: &XenMemoryExchange,
    ch: &Chunks,
    i: u64,
    heads: &[u64],
) -> Result<(), i64> {
    let order = x.output.extent_order;
    let mut rc = Ok(());
    for (j, &head) in heads.iter().enumerate() {
        let frames = head..head + (1 << order);
        if c.d.forward.is_none() {
            for mfn in frames.clone() {
                p.frame_mut(mfn).fill(0);
            }
        }
        for mfn in frames.clone() {
            l.frames.set_owner(mfn, Owner::Guest);
        }
        let at = x.output.extent_start.wrapping_add(((i << ch.out_order) + j as u64).wrapping_mul(8));
        let Ok(gpfn) = Domain::read_guest::<P, u64>(p, at) else {
            rc = Err(-XEN_EFAULT);
            continue;
        };
        for (k, mfn) in frames.enumerate() {
            if let Some(e) = l.m2p.get_mut(mfn as usize) {
                *e = gpfn.wrapping_add(k as u64);
            }
        }
        if Domain::write_guest(p, at, &head).is_err() {
            rc = Err(-XEN_EFAULT);
        }
    }
    rc
}
