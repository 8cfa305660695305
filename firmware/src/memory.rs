//! Who owns which physical frame: Cocoon, or the guest.
//!
//! Guest RAM is all RAM of the HVM container above 1 MiB except Cocoon's
//! image and the frames Cocoon keeps for itself. The frames still holding the
//! boot modules and the scratch arena go to the guest too, but at the end of
//! its PFN space, where the domain builder places nothing: they are read
//! while the domain is built and become free guest memory afterwards.

use alloc::vec::Vec;

use hvm_glue::bootinfo::{BootInfo, MemKind};
use hvm_glue::layout::{phys_to_virt, BOOT_MAPPED_BYTES};
use shim_core::abi::PAGE_SIZE;
use shim_core::builder::{Frame, GuestMemory, PhysMap};

extern "C" {
    static __image_phys_start: u8;
    static __image_phys_end: u8;
}

/// Half-open frame ranges `[start, end)`.
pub type FrameRange = (u64, u64);

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

pub struct MemoryPlan {
    /// Guest memory in PFN order (the P2M).
    pub physmap: PhysMap,
    /// PFNs from here on hold modules and scratch while the domain is built.
    pub reserved_from_pfn: u64,
    /// The scratch arena (frames), inside guest memory.
    pub scratch: FrameRange,
    /// Frames Cocoon took for itself (shared_info, ...), in order of `take`.
    pub cocoon_frames: Vec<u64>,
}

/// The frames of the Cocoon image.
pub fn image_frames() -> FrameRange {
    // SAFETY: linker-defined symbols; only their addresses are used.
    let (s, e) = unsafe { (&__image_phys_start as *const u8 as u64, &__image_phys_end as *const u8 as u64) };
    (s / PAGE_SIZE, e.div_ceil(PAGE_SIZE))
}

/// Split RAM between Cocoon and the guest. `cocoon_pages` frames are kept for
/// Cocoon; the scratch arena is sized for decompressing `kernel_len` bytes.
pub fn plan(boot: &BootInfo, cocoon_pages: u64, kernel_len: u64) -> Result<MemoryPlan, &'static str> {
    let limit = BOOT_MAPPED_BYTES / PAGE_SIZE;
    let mut free: Vec<FrameRange> = boot
        .memory
        .iter()
        .filter(|r| r.kind == MemKind::Ram)
        .map(|r| (r.base.div_ceil(PAGE_SIZE), ((r.base + r.len) / PAGE_SIZE).min(limit)))
        .filter(|(s, e)| s < e)
        .collect();
    free.sort();
    // Below 1 MiB: firmware data structures and legacy holes; not worth the risk.
    subtract(&mut free, (0, 0x100));
    subtract(&mut free, image_frames());
    let modules: Vec<FrameRange> =
        boot.modules.iter().map(|m| (m.start / PAGE_SIZE, (m.start + m.len).div_ceil(PAGE_SIZE))).collect();
    for m in &modules {
        subtract(&mut free, *m);
    }

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

    // Scratch: from the top of the largest range.
    let want = (kernel_len * 10 + (16 << 20)).div_ceil(PAGE_SIZE);
    let largest = free.iter().enumerate().max_by_key(|(_, r)| r.1 - r.0).map(|(i, _)| i).ok_or("no free RAM")?;
    let (ls, le) = free[largest];
    let size = want.min((le - ls) / 2);
    let scratch = (le - size, le);
    subtract(&mut free, scratch);

    let mut extents: Vec<(u64, u64)> = free.iter().map(|&(s, e)| (s, e - s)).collect();
    let reserved_from_pfn = extents.iter().map(|e| e.1).sum();
    for m in modules.iter().chain([&scratch]) {
        if m.1 > m.0 && m.1 <= limit {
            extents.push((m.0, m.1 - m.0));
        }
    }
    Ok(MemoryPlan { physmap: PhysMap::from_extents(&extents), reserved_from_pfn, scratch, cocoon_frames })
}

/// Guest memory, reached through Cocoon's direct map.
pub struct DirectMapGuest;

impl DirectMapGuest {
    pub fn frame_static(&self, mfn: u64) -> &'static Frame {
        assert!(mfn < BOOT_MAPPED_BYTES / PAGE_SIZE, "mfn {mfn:#x} outside the direct map");
        // SAFETY: the frame lies in the direct map and is RAM; the guest may change it
        // concurrently only through its own vCPU, which is not running while Cocoon is.
        unsafe { &*(phys_to_virt(mfn * PAGE_SIZE) as *const Frame) }
    }

    #[allow(clippy::mut_from_ref)]
    pub fn frame_static_mut(&self, mfn: u64) -> &'static mut Frame {
        assert!(mfn < BOOT_MAPPED_BYTES / PAGE_SIZE, "mfn {mfn:#x} outside the direct map");
        // SAFETY: as above; Cocoon runs on one CPU and callers do not keep two
        // references to the same frame alive across each other.
        unsafe { &mut *(phys_to_virt(mfn * PAGE_SIZE) as *mut Frame) }
    }
}

impl GuestMemory for DirectMapGuest {
    fn frame(&self, mfn: u64) -> &Frame {
        self.frame_static(mfn)
    }

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
