//! Who owns which physical frame: Cocoon, or the guest.
//!
//! Guest RAM is all RAM of the HVM container above 1 MiB (up to the 512 GiB
//! the direct map covers) except Cocoon's image and what Cocoon takes from
//! RAM at boot, sized from the memory map: page tables for the direct map
//! above 4 GiB, its heap, and the per-frame tables (frame table, M2P, P2M).
//! The frames still holding the boot modules and the scratch arena go to the
//! guest too, but at the end of its PFN space, where the domain builder places
//! nothing: they are read while the domain is built and become free guest
//! memory afterwards.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hvm_glue::bootinfo::{BootInfo, MemKind};
use hvm_glue::layout::{phys_to_virt, BOOT_MAPPED_BYTES};
use shim_core::abi::PAGE_SIZE;
use shim_core::builder::{Frame, GuestMemory, PhysMap};
use shim_core::mm::frames::FrameTable;

use crate::arch::paging::{self, mapped_end, mapped_end_frames, DIRECT_MAP_MAX};

extern "C" {
    static __image_phys_start: u8;
    static __image_phys_end: u8;
}

/// Half-open frame ranges `[start, end)`.
pub type FrameRange = (u64, u64);

/// Cocoon's heap, besides the per-frame tables: what the domain's state
/// (event channels, xenstore, ...) and the M2P's page tables need.
const HEAP_FIXED: u64 = 512 << 10;
/// The smallest guest Cocoon starts: Linux needs more, but this is where
/// Cocoon's own layout stops making sense.
const MIN_GUEST_PAGES: u64 = (16 << 20) / PAGE_SIZE;

fn subtract(ranges: &mut Vec<FrameRange>, cut: FrameRange) {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for &(s, e) in ranges.iter() {
        if cut.1 <= s || cut.0 >= e {
            out.push((s, e));
            continue;
        }
        if s < cut.0 {
            out.push((s, cut.0));
        }
        if cut.1 < e {
            out.push((cut.1, e));
        }
    }
    *ranges = out;
}

/// Take `n` frames from the top of the highest range that has them and ends at or below `below`.
fn take_top(free: &mut Vec<FrameRange>, n: u64, below: u64) -> Option<FrameRange> {
    let i = free.iter().rposition(|&(s, e)| e <= below && e - s >= n)?;
    let r = (free[i].1 - n, free[i].1);
    free[i].1 -= n;
    if free[i].0 == free[i].1 {
        free.remove(i);
    }
    Some(r)
}

/// Where the guest's RAM went: Cocoon's share, for the boot log.
#[derive(Clone, Copy, Debug, Default)]
pub struct Footprint {
    pub ram_pages: u64,
    pub image_pages: u64,
    pub directmap_pages: u64,
    pub heap_pages: u64,
    pub table_pages: u64,
    pub cocoon_frames: u64,
    pub ignored_pages: u64,
}

impl Footprint {
    pub fn total(&self) -> u64 {
        self.image_pages + self.directmap_pages + self.heap_pages + self.table_pages + self.cocoon_frames
    }
}

pub struct MemoryPlan {
    /// Guest memory in PFN order (the P2M).
    pub physmap: PhysMap,
    /// PFNs from here on hold modules and scratch while the domain is built.
    pub reserved_from_pfn: u64,
    /// The scratch arena (frames), inside guest memory.
    pub scratch: FrameRange,
    /// Frames Cocoon took for itself (shared_info, ...), in order of `take`.
    pub cocoon_frames: Vec<u64>,
    pub footprint: Footprint,
}

/// The frames of the Cocoon image.
pub fn image_frames() -> FrameRange {
    // SAFETY: linker-defined symbols; only their addresses are used.
    let (s, e) = unsafe { (&__image_phys_start as *const u8 as u64, &__image_phys_end as *const u8 as u64) };
    (s / PAGE_SIZE, e.div_ceil(PAGE_SIZE))
}

/// The largest stretch of RAM below 4 GiB (and the direct map's end) that
/// neither Cocoon's image, the boot modules nor the first MiB hold: where
/// `cocoon.boot=disk` reads the guest's kernel to, before `plan`.
pub fn largest_free_low(boot: &BootInfo) -> Option<FrameRange> {
    let below = mapped_end().min(1 << 32) / PAGE_SIZE;
    let mut free: Vec<FrameRange> =
        ram_frames(boot).into_iter().map(|(s, e)| (s, e.min(below))).filter(|(s, e)| s < e).collect();
    reserve_boot(&mut free, boot);
    free.into_iter().max_by_key(|r| r.1 - r.0)
}

/// The memory map's RAM, in whole frames.
fn ram_frames(boot: &BootInfo) -> Vec<FrameRange> {
    boot.memory
        .iter()
        .filter(|r| r.kind == MemKind::Ram)
        .map(|r| (r.base.div_ceil(PAGE_SIZE), (r.base + r.len) / PAGE_SIZE))
        .filter(|(s, e)| s < e)
        .collect()
}

/// Take out of `free` what is in use from boot on: the first MiB (firmware
/// data structures and legacy holes; not worth the risk), Cocoon's image and
/// the boot modules. Returns the modules' frames.
fn reserve_boot(free: &mut Vec<FrameRange>, boot: &BootInfo) -> Vec<FrameRange> {
    subtract(free, (0, 0x100));
    subtract(free, image_frames());
    let modules: Vec<FrameRange> =
        boot.modules.iter().map(|m| (m.start / PAGE_SIZE, (m.start + m.len).div_ceil(PAGE_SIZE))).collect();
    for m in &modules {
        subtract(free, *m);
    }
    modules
}

/// Split RAM between Cocoon and the guest. `cocoon_pages` frames are kept for
/// Cocoon; the scratch arena gets `scratch_pages` (the decompressed kernel and
/// the decoders' state). The heap gets `extra_heap` bytes more (the APs'
/// stacks and tables). Sets up Cocoon's heap and the direct map on the way.
pub fn plan(boot: &BootInfo, cocoon_pages: u64, scratch_pages: u64, extra_heap: u64) -> Result<MemoryPlan, String> {
    let limit = DIRECT_MAP_MAX / PAGE_SIZE;
    let ram = ram_frames(boot);
    let mut free: Vec<FrameRange> = ram.iter().map(|&(s, e)| (s, e.min(limit))).filter(|(s, e)| s < e).collect();
    free.sort();
    let mut fp = Footprint {
        ram_pages: ram.iter().map(|r| r.1 - r.0).sum(),
        image_pages: image_frames().1 - image_frames().0,
        ..Footprint::default()
    };
    fp.ignored_pages = ram.iter().map(|&(s, e)| e - s.max(limit).min(e)).sum();
    if fp.ignored_pages > 0 {
        log::warn!(
            "memory: {} MiB of RAM lie above {} GiB, beyond what Cocoon's direct map covers: not given to the guest",
            fp.ignored_pages >> 8,
            DIRECT_MAP_MAX >> 30
        );
    }
    // The frame table and M2P cover every RAM frame, modules' included (they become the guest's).
    let max_mfn = free.iter().map(|r| r.1).max().ok_or("no RAM")? - 1;
    let modules = reserve_boot(&mut free, boot);

    // The direct map above 4 GiB, its tables from below 4 GiB (already mapped).
    let bytes: Vec<(u64, u64)> = free.iter().map(|&(s, e)| (s * PAGE_SIZE, e * PAGE_SIZE)).collect();
    let dm = paging::tables_needed(&bytes);
    if dm > 0 {
        let (s, e) = take_top(&mut free, dm, BOOT_MAPPED_BYTES / PAGE_SIZE)
            .ok_or("no room below 4 GiB for the direct map's page tables")?;
        paging::map_ram(&bytes, &mut (s..e).map(|f| f * PAGE_SIZE))?;
        fp.directmap_pages = dm;
    }

    // Cocoon's heap and tables, sized from the frames they cover.
    let frames = max_mfn + 1;
    let m2p = frames.next_multiple_of(512) * 8;
    let m2p_tables = (frames.div_ceil(512 * 512) + 2) * PAGE_SIZE; // L1s, one L2 per GiB of M2P, the L3
    let tables = FrameTable::bytes_for(max_mfn) + m2p + PhysMap::bytes_for(frames) + 3 * PAGE_SIZE;
    let heap = HEAP_FIXED + m2p_tables + extra_heap;
    let (tp, hp) = (tables.div_ceil(PAGE_SIZE), heap.div_ceil(PAGE_SIZE));
    let (s, e) = take_top(&mut free, tp + hp, mapped_end() / PAGE_SIZE).ok_or_else(|| {
        format!("not enough RAM for Cocoon's tables: {} KiB in one piece", ((tp + hp) * PAGE_SIZE) >> 10)
    })?;
    crate::heap::add_region(phys_to_virt(s * PAGE_SIZE) as usize, (hp * PAGE_SIZE) as usize);
    crate::heap::add_tables(phys_to_virt((s + hp) * PAGE_SIZE) as usize, ((e - s - hp) * PAGE_SIZE) as usize);
    (fp.heap_pages, fp.table_pages) = (hp, tp);

    // Cocoon's own frames: from the top of the first range (low memory, out of the way).
    let mut cocoon_frames = Vec::new();
    for _ in 0..cocoon_pages {
        let r = free.first_mut().ok_or("no memory left for Cocoon")?;
        r.1 -= 1;
        cocoon_frames.push(r.1);
        if r.0 == r.1 {
            free.remove(0);
        }
    }
    fp.cocoon_frames = cocoon_pages;

    // Scratch: from the top of the largest range, leaving the guest's start in place.
    let largest = free.iter().enumerate().max_by_key(|(_, r)| r.1 - r.0).map(|(i, _)| i).ok_or("no free RAM")?;
    let (ls, le) = free[largest];
    if scratch_pages > (le - ls) * 3 / 4 {
        return Err(format!(
            "not enough memory to decompress the kernel: it needs {} MiB in one piece, the largest free range has {} MiB",
            scratch_pages >> 8,
            (le - ls) >> 8
        ));
    }
    let scratch = (le - scratch_pages, le);
    subtract(&mut free, scratch);

    let mut extents: Vec<(u64, u64)> = free.iter().map(|&(s, e)| (s, e - s)).collect();
    let reserved_from_pfn: u64 = extents.iter().map(|e| e.1).sum();
    for m in modules.iter().chain([&scratch]) {
        if m.1 > m.0 && m.1 <= limit {
            extents.push((m.0, m.1 - m.0));
        }
    }
    let physmap = PhysMap::from_extents(&extents);
    if physmap.nr_pages() < MIN_GUEST_PAGES {
        return Err(format!(
            "too little RAM: the guest would get {} MiB, Cocoon needs at least {} MiB for it",
            physmap.nr_pages() >> 8,
            MIN_GUEST_PAGES >> 8
        ));
    }
    Ok(MemoryPlan { physmap, reserved_from_pfn, scratch, cocoon_frames, footprint: fp })
}

/// Guest memory, reached through Cocoon's direct map.
pub struct DirectMapGuest;

impl DirectMapGuest {
    #[inline]
    pub fn frame_static(&self, mfn: u64) -> &'static Frame {
        assert!(mfn < mapped_end_frames(), "mfn {mfn:#x} outside the direct map");
        // SAFETY: the frame lies in the direct map and is RAM; the guest may change it
        // concurrently only through its own vCPU, which is not running while Cocoon is.
        unsafe { &*(phys_to_virt(mfn * PAGE_SIZE) as *const Frame) }
    }

    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn frame_static_mut(&self, mfn: u64) -> &'static mut Frame {
        assert!(mfn < mapped_end_frames(), "mfn {mfn:#x} outside the direct map");
        // SAFETY: as above; Cocoon runs on one CPU and callers do not keep two
        // references to the same frame alive across each other.
        unsafe { &mut *(phys_to_virt(mfn * PAGE_SIZE) as *mut Frame) }
    }
}

impl GuestMemory for DirectMapGuest {
    #[inline]
    fn frame(&self, mfn: u64) -> &Frame {
        self.frame_static(mfn)
    }

    #[inline]
    fn frame_mut(&mut self, mfn: u64) -> &mut Frame {
        self.frame_static_mut(mfn)
    }
}

/// The bytes of a boot module, through the direct map.
/// (The module's frames sit past `reserved_from_pfn`: nothing writes them
/// until the domain is built.)
pub fn module_bytes(start: u64, len: u64) -> Option<&'static [u8]> {
    crate::physmem::bytes(start, usize::try_from(len).ok()?)
}

/// The scratch arena's frames as bytes: the decompressed kernel's destination.
#[allow(clippy::mut_from_ref)]
pub fn scratch_bytes(r: FrameRange) -> &'static mut [u8] {
    // SAFETY: the scratch frames are RAM in the direct map that nothing else
    // uses until the domain is built (the plan keeps them out of every other use).
    unsafe {
        core::slice::from_raw_parts_mut(phys_to_virt(r.0 * PAGE_SIZE) as *mut u8, ((r.1 - r.0) * PAGE_SIZE) as usize)
    }
}
