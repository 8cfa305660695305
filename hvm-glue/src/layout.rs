//! Cocoon's own place in the address space.
//!
//! Cocoon lives in the range that the 64-bit PV ABI reserves for the
//! hypervisor (L4 slots 256–271). Slot 256 starts with the guest-visible M2P,
//! so Cocoon's direct map of all physical memory (which also holds its image)
//! sits in slot 260. `linker/cocoon.ld` repeats `DIRECT_MAP_BASE` as
//! `COCOON_VIRT_OFFSET`; the integration tests check the built ELF agrees.

/// Virtual address of physical address 0 in Cocoon's direct map (L4 slot 260).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8200_0000_0000;
/// L4 slot of the direct map.
pub const DIRECT_MAP_L4_SLOT: usize = 260;
/// Physical load address of the firmware image.
pub const IMAGE_PHYS_BASE: u64 = 0x10_0000;
/// Physical memory mapped by the boot page tables (4 GiB, 2 MiB pages).
pub const BOOT_MAPPED_BYTES: u64 = 4 << 30;

/// The direct-map virtual address of physical address `pa`.
#[inline]
pub const fn phys_to_virt(pa: u64) -> u64 {
    DIRECT_MAP_BASE + pa
}

/// The physical address behind a direct-map virtual address.
#[inline]
pub const fn virt_to_phys(va: u64) -> u64 {
    va - DIRECT_MAP_BASE
}

const _: () = assert!(DIRECT_MAP_BASE == 0xffff_8000_0000_0000 + ((DIRECT_MAP_L4_SLOT as u64 - 256) << 39));
const _: () = assert!(DIRECT_MAP_L4_SLOT >= 256 && DIRECT_MAP_L4_SLOT < 272);
