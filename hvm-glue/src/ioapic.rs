//! The I/O APIC, just enough to route one level-triggered PCI interrupt to a
//! vector on this CPU (the Xen platform device's INTx, for Xen 3.4).

/// Where Xen's HVM platform (hvmloader's MADT) puts the I/O APIC; the same
/// since Xen 3.0. Checked by reading its version register before use.
pub const XEN_HVM_IOAPIC_BASE: u64 = 0xfec0_0000;

const IOREGSEL: usize = 0x00;
const IOWIN: usize = 0x10;
const IOAPICVER: u32 = 0x01;
const IOREDTBL: u32 = 0x10;

/// Redirection-entry bits.
const RTE_ACTIVE_LOW: u64 = 1 << 13;
const RTE_LEVEL: u64 = 1 << 15;

pub struct IoApic {
    /// Direct-map address of the register window.
    base: u64,
}

impl IoApic {
    /// # Safety
    /// `base` must map an I/O APIC's registers (uncached or emulated).
    pub unsafe fn new(base: u64) -> Self {
        IoApic { base }
    }

    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `new`'s contract: the window is an I/O APIC's.
        unsafe {
            core::ptr::write_volatile((self.base + IOREGSEL as u64) as *mut u32, reg);
            core::ptr::read_volatile((self.base + IOWIN as u64) as *const u32)
        }
    }

    fn write(&self, reg: u32, v: u32) {
        // SAFETY: as for `read`.
        unsafe {
            core::ptr::write_volatile((self.base + IOREGSEL as u64) as *mut u32, reg);
            core::ptr::write_volatile((self.base + IOWIN as u64) as *mut u32, v);
        }
    }

    /// The number of redirection entries, if the version register looks like an I/O APIC's.
    pub fn entries(&self) -> Option<u32> {
        let v = self.read(IOAPICVER);
        let (version, max) = (v & 0xff, (v >> 16) & 0xff);
        (v != !0 && (0x10..=0x2f).contains(&version)).then_some(max + 1)
    }

    /// Route `pin` (level-triggered, active low, as PCI INTx is) to `vector` on APIC `dest`.
    pub fn route_level(&self, pin: u32, vector: u8, dest: u8) {
        let rte = redirection_entry(vector, dest);
        self.write(IOREDTBL + 2 * pin + 1, (rte >> 32) as u32);
        self.write(IOREDTBL + 2 * pin, rte as u32);
    }
}

/// A fixed-delivery, physical-destination, level, active-low, unmasked entry.
pub fn redirection_entry(vector: u8, dest: u8) -> u64 {
    vector as u64 | RTE_ACTIVE_LOW | RTE_LEVEL | (dest as u64) << 56
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_layout() {
        assert_eq!(super::redirection_entry(0xf3, 0), 0xa0f3);
        assert_eq!(super::redirection_entry(0x30, 2) >> 56, 2);
    }
}
