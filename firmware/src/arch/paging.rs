//! Cocoon's direct map beyond the first 4 GiB.
//!
//! The boot page tables map physical memory up to 4 GiB with 2 MiB pages
//! (`boot.rs`). RAM above that is mapped here, once the memory map is known:
//! one L2 table (4 KiB) per GiB that holds RAM, 2 MiB global pages over the
//! RAM ranges only. The L3 table is the boot direct map's, which every guest
//! L4 reaches through Cocoon's slot, so this must run before the guest's
//! first table is built.
//!
//! The direct map's pages are global: with CR4.PGE (`enable_global_pages`,
//! where the CPU has it) the switches between guest page tables keep
//! Cocoon's translations. Nothing here ever changes or removes a direct-map
//! entry once present (a CR3 load would not flush it).

use core::sync::atomic::{AtomicU64, Ordering};

use hvm_glue::layout::{phys_to_virt, BOOT_MAPPED_BYTES};

/// The physical end of what the direct map covers (mapped RAM lies below
/// it), in frames: every guest frame access compares with it.
static MAPPED_END_FRAMES: AtomicU64 = AtomicU64::new(BOOT_MAPPED_BYTES / PAGE_4K);
/// Physical memory the direct map can cover: one L4 slot.
pub const DIRECT_MAP_MAX: u64 = 512 << 30;

const PAGE_4K: u64 = 4096;
const PAGE_2M: u64 = 2 << 20;
const PAGE_1G: u64 = 1 << 30;
const PRESENT_RW: u64 = 0x3;
const PS: u64 = 0x80;
const GLOBAL: u64 = 0x100;
/// CR4.PGE.
const CR4_PGE: u64 = 1 << 7;

extern "C" {
    static mut boot_dm_l3: [u64; 512];
}

/// Turn on global pages on the calling CPU if it has them (CPUID.1:EDX.PGE);
/// returns whether it did.
pub fn enable_global_pages() -> bool {
    if super::cpu::cpuid(1, 0)[3] & (1 << 13) == 0 {
        return false;
    }
    // SAFETY: only the direct map (Cocoon's own, the same in every address
    // space) has global entries; setting PGE flushes the TLB.
    unsafe {
        let mut cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4);
        core::arch::asm!("mov cr4, {}", in(reg) cr4 | CR4_PGE);
    }
    true
}

pub fn mapped_end() -> u64 {
    mapped_end_frames() * PAGE_4K
}

/// [`mapped_end`] in frames.
#[inline]
pub fn mapped_end_frames() -> u64 {
    MAPPED_END_FRAMES.load(Ordering::Relaxed)
}

/// Page-table frames `map_ram` needs for `ranges` (half-open physical byte ranges).
pub fn tables_needed(ranges: &[(u64, u64)]) -> u64 {
    let mut n = 0;
    let mut last_gib = u64::MAX;
    for &(s, e) in ranges {
        let (s, e) = (s.max(BOOT_MAPPED_BYTES), e.min(DIRECT_MAP_MAX));
        if s >= e {
            continue;
        }
        for gib in s / PAGE_1G..e.div_ceil(PAGE_1G) {
            if gib != last_gib {
                n += 1;
                last_gib = gib;
            }
        }
    }
    n
}

/// Map `ranges` (sorted, half-open physical byte ranges) above 4 GiB, taking
/// page-table frames (already mapped, physical addresses) from `frames`.
pub fn map_ram(ranges: &[(u64, u64)], frames: &mut impl Iterator<Item = u64>) -> Result<(), &'static str> {
    // Only its address: the table is reached through the direct map.
    let l3_pa = core::ptr::addr_of!(boot_dm_l3) as u64;
    let l3 = phys_to_virt(l3_pa) as *mut u64;
    let mut end = BOOT_MAPPED_BYTES;
    for &(s, e) in ranges {
        let (s, e) = (s.max(BOOT_MAPPED_BYTES), e.min(DIRECT_MAP_MAX));
        let mut pa = s & !(PAGE_2M - 1);
        while pa < e {
            let i3 = (pa / PAGE_1G) as usize;
            // SAFETY: `l3` is the boot L3 (512 entries); `i3 < 512` as `pa` < 512 GiB.
            let l3e = unsafe { &mut *l3.add(i3) };
            if *l3e & 1 == 0 {
                let t = frames.next().ok_or("no frame left for the direct map's page tables")?;
                // SAFETY: a fresh frame below 4 GiB, mapped and used by nothing else.
                unsafe { core::ptr::write_bytes(phys_to_virt(t) as *mut u8, 0, 4096) };
                *l3e = t | PRESENT_RW;
            }
            let l2 = phys_to_virt(*l3e & 0x000f_ffff_ffff_f000) as *mut u64;
            // SAFETY: `l2` is an L2 table made above; the index is below 512.
            unsafe { *l2.add(((pa / PAGE_2M) % 512) as usize) = pa | PRESENT_RW | PS | GLOBAL };
            pa += PAGE_2M;
        }
        end = end.max(pa);
    }
    // Only new entries (never cached as present): a CR3 reload is more than enough.
    x86_64::instructions::tlb::flush_all();
    MAPPED_END_FRAMES.store(end / PAGE_4K, Ordering::Relaxed);
    Ok(())
}
