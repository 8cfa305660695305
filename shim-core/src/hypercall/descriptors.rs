//! GDT and descriptor updates. Cocoon keeps its own GDT; the guest's
//! descriptor frames are validated and copied into its first 14 pages.

use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::mm::frames::PageType;
use crate::platform::Platform;

/// A descriptor a PV guest may install (`check_descriptor`): code and data
/// segments get DPL 3 (the guest kernel runs in ring 3); system descriptors
/// are refused. Returns the descriptor to store.
pub fn check_descriptor(desc: u64) -> Option<u64> {
    const P: u64 = 1 << 47;
    const S: u64 = 1 << 44;
    const DPL: u64 = 3 << 45;
    if desc & P == 0 {
        return Some(desc);
    }
    if desc & S == 0 {
        return None;
    }
    Some(desc | DPL)
}

pub fn set_gdt<P: Platform>(c: &mut Ctx, p: &mut P, list: u64, entries: u64) -> i64 {
    if entries > FIRST_RESERVED_GDT_ENTRY as u64 {
        return -XEN_EINVAL;
    }
    let nr = entries.div_ceil(512) as usize;
    let mut frames = [0u64; FIRST_RESERVED_GDT_PAGE];
    for (i, f) in frames.iter_mut().enumerate().take(nr) {
        let Ok(mfn) = Domain::read_guest::<P, u64>(p, list + i as u64 * 8) else {
            return -XEN_EFAULT;
        };
        *f = mfn;
    }
    install_gdt(c, p, frames, entries)
}

/// Make `frames` (holding `entries` descriptors) this vCPU's GDT: validate
/// them, take them as descriptor pages, and copy them into its CPU's GDT.
pub fn install_gdt<P: Platform>(c: &mut Ctx, p: &mut P, frames: [u64; FIRST_RESERVED_GDT_PAGE], entries: u64) -> i64 {
    if entries > FIRST_RESERVED_GDT_ENTRY as u64 {
        return -XEN_EINVAL;
    }
    let nr = entries.div_ceil(512) as usize;
    let mut l = c.d.lock();
    // Take the new frames as descriptor pages before letting the old ones go.
    for i in 0..nr {
        if l.frames.get_type(p, frames[i], PageType::SegDesc).is_err() {
            for &f in &frames[..i] {
                l.frames.put_type(p, f);
            }
            return -XEN_EINVAL;
        }
    }
    for i in 0..nr {
        for j in 0..512usize {
            let idx = i * 512 + j;
            if idx as u64 >= entries {
                break;
            }
            let desc = p.read_u64(frames[i], j);
            let Some(ok) = check_descriptor(desc) else {
                for &f in &frames[..nr] {
                    l.frames.put_type(p, f);
                }
                return -XEN_EINVAL;
            };
            if ok != desc {
                p.write_u64(frames[i], j, ok);
            }
        }
    }
    for &f in &c.v.gdt_state.frames[..c.v.gdt_state.nr_frames] {
        l.frames.put_type(p, f);
    }
    drop(l);
    for (idx, slot) in c.v.gdt[..FIRST_RESERVED_GDT_ENTRY].iter_mut().enumerate() {
        *slot = if (idx as u64) < entries { p.read_u64(frames[idx / 512], idx % 512) } else { 0 };
    }
    c.v.gdt_state.frames = frames;
    c.v.gdt_state.nr_frames = nr;
    c.v.gdt_state.entries = entries as usize;
    0
}

pub fn update_descriptor<P: Platform>(c: &mut Ctx, p: &mut P, maddr: u64, desc: u64) -> i64 {
    let (mfn, off) = (maddr >> PAGE_SHIFT, (maddr & (PAGE_SIZE - 1)) as usize);
    let Some(desc) = check_descriptor(desc) else {
        return -XEN_EINVAL;
    };
    // Under the domain lock: the frame cannot change type or leave the guest
    // before the write. A descriptor page, or one that could be mapped writable.
    let l = c.d.lock();
    if off % 8 != 0 || !l.frames.owned_by_guest(mfn) {
        return -XEN_EINVAL;
    }
    match l.frames.get(mfn).map(|f| (f.ty, f.type_count)) {
        Some((PageType::SegDesc | PageType::Writable, _)) | Some((_, 0)) => {}
        _ => return -XEN_EINVAL,
    }
    p.write_u64(mfn, off / 8, desc);
    drop(l);
    // Mirror into this CPU's GDT when the frame is part of this vCPU's GDT
    // (Linux changes only its own CPU's GDT; another vCPU's copy would be
    // refreshed at its next set_gdt).
    for (i, &f) in c.v.gdt_state.frames[..c.v.gdt_state.nr_frames].iter().enumerate() {
        let idx = i * 512 + off / 8;
        if f == mfn && idx < c.v.gdt_state.entries {
            c.v.gdt[idx] = desc;
        }
    }
    0
}
