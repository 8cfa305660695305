//! Physical memory as seen through Cocoon's direct map.

use hvm_glue::bootinfo::PhysMem;
use hvm_glue::layout::phys_to_virt;

use crate::arch::paging::mapped_end;

/// Reads through the direct map, refusing what the boot page tables do not map.
pub struct DirectMap;

/// `len` bytes at physical address `pa`, through the direct map (`None` beyond it).
pub fn bytes(pa: u64, len: usize) -> Option<&'static [u8]> {
    let end = pa.checked_add(len as u64)?;
    if end > mapped_end() {
        return None;
    }
    // SAFETY: [pa, end) lies below the direct map's end, mapped read-write; the
    // bytes are plain memory.
    Some(unsafe { core::slice::from_raw_parts(phys_to_virt(pa) as *const u8, len) })
}

impl PhysMem for DirectMap {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        bytes(pa, len)
    }
}

/// ACPI tables through the direct map (firmware puts them below 4 GiB, which
/// the boot page tables map); nothing to unmap.
#[derive(Clone, Copy)]
pub struct AcpiMap;

impl acpi::AcpiHandler for AcpiMap {
    unsafe fn map_physical_region<T>(&self, pa: usize, size: usize) -> acpi::PhysicalMapping<Self, T> {
        let va = core::ptr::NonNull::new(phys_to_virt(pa as u64) as *mut T).expect("direct-map addresses are not null");
        // SAFETY: `va` is where the direct map shows `pa`, for as long as Cocoon runs.
        unsafe { acpi::PhysicalMapping::new(pa, va, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &acpi::PhysicalMapping<Self, T>) {}
}
