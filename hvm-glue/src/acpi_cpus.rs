//! The platform's CPUs: the APIC ids of the enabled (and online-capable)
//! local APIC and x2APIC entries of the ACPI MADT, read with the `acpi` crate. The
//! tables are found from the RSDP the boot protocol gives (PVH), else by the
//! BIOS search (multiboot and the Linux boot protocol on QEMU or Xen HVM).

use alloc::vec::Vec;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables};

/// MADT local APIC flags: the processor is enabled, or may be brought online.
const LAPIC_ENABLED: u32 = 1 << 0;
const LAPIC_ONLINE_CAPABLE: u32 = 1 << 1;

/// The APIC ids of the CPUs the MADT lists, in its order (the boot CPU's among
/// them), each once; `None` when there are no ACPI tables (or no MADT).
///
/// # Safety
/// `handler` must map physical memory faithfully, and `rsdp`, when given,
/// must be the physical address of the platform's RSDP.
pub unsafe fn cpu_apic_ids<H: AcpiHandler>(handler: H, rsdp: Option<u64>) -> Option<Vec<u32>> {
    // SAFETY: the caller vouches for the handler and the RSDP address.
    let tables = unsafe {
        match rsdp {
            Some(p) => AcpiTables::from_rsdp(handler, p as usize),
            None => AcpiTables::search_for_rsdp_bios(handler),
        }
    }
    .ok()?;
    let madt = tables.find_table::<Madt>().ok()?;
    let usable = |flags: u32| flags & (LAPIC_ENABLED | LAPIC_ONLINE_CAPABLE) != 0;
    let mut ids = Vec::new();
    for e in madt.get().entries() {
        let id = match e {
            MadtEntry::LocalApic(a) if usable(a.flags) => a.apic_id as u32,
            MadtEntry::LocalX2Apic(x) if usable(x.flags) => x.x2apic_id,
            _ => continue,
        };
        // A CPU may be listed both ways (firmware lists ids below 255 as local APICs).
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Some(ids)
}
