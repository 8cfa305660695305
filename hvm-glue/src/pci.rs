//! PCI configuration space through the legacy ports (0xcf8/0xcfc), enough to
//! find the Xen platform device and its interrupt pin.

/// The Xen platform PCI device (`xen-platform`): vendor "XS", device 1.
pub const XEN_PLATFORM_VENDOR: u16 = 0x5853;
pub const XEN_PLATFORM_DEVICE: u16 = 0x0001;

const PCI_INTERRUPT_LINE: u8 = 0x3c;

/// Configuration-space reads, so tests can fake a bus.
pub trait PciConfig {
    fn read32(&self, bus: u8, dev: u8, func: u8, off: u8) -> u32;
}

/// The machine's configuration space (configuration mechanism #1).
pub struct PortPci;

impl PciConfig for PortPci {
    fn read32(&self, bus: u8, dev: u8, func: u8, off: u8) -> u32 {
        let addr = 0x8000_0000u32
            | (bus as u32) << 16
            | ((dev as u32) & 31) << 11
            | ((func as u32) & 7) << 8
            | (off as u32 & 0xfc);
        #[cfg(target_os = "none")]
        // SAFETY: the configuration address and data ports have no side effects
        // beyond selecting and reading a configuration register.
        unsafe {
            x86_64::instructions::port::Port::<u32>::new(0xcf8).write(addr);
            x86_64::instructions::port::Port::<u32>::new(0xcfc).read()
        }
        #[cfg(not(target_os = "none"))]
        {
            let _ = addr;
            !0
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciDevice {
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
    /// Interrupt pin: 1 = INTA .. 4 = INTD, 0 = none.
    pub pin: u8,
    /// The interrupt line firmware assigned (an ISA IRQ), 0xff = none.
    pub line: u8,
}

/// The first function 0 on bus 0 with this vendor and device ID.
pub fn find(cfg: &dyn PciConfig, vendor: u16, device: u16) -> Option<PciDevice> {
    (0..32u8).find_map(|dev| {
        let id = cfg.read32(0, dev, 0, 0);
        if id as u16 != vendor || (id >> 16) as u16 != device {
            return None;
        }
        let irq = cfg.read32(0, dev, 0, PCI_INTERRUPT_LINE);
        Some(PciDevice { bus: 0, dev, func: 0, pin: (irq >> 8) as u8, line: irq as u8 })
    })
}

/// The GSI Xen's HVM platform routes a PCI INTx to (`hvm_pci_intx_gsi`; the
/// DSDT's _PRT says the same): pins rotate by device number over GSIs 16-47.
pub fn xen_hvm_intx_gsi(dev: u8, pin: u8) -> u32 {
    let (dev, intx) = (dev as u32, pin.saturating_sub(1) as u32);
    (((dev << 2) + (dev >> 3) + intx) & 31) + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeBus;
    impl PciConfig for FakeBus {
        fn read32(&self, bus: u8, dev: u8, _func: u8, off: u8) -> u32 {
            match (bus, dev, off) {
                (0, 0, 0) => 0x1237_8086,
                (0, 2, 0) => 0x0001_5853,
                (0, 2, 0x3c) => 0x0000_010a,
                _ => !0,
            }
        }
    }

    #[test]
    fn finds_the_platform_device_and_its_pin() {
        let d = find(&FakeBus, XEN_PLATFORM_VENDOR, XEN_PLATFORM_DEVICE).unwrap();
        assert_eq!(d, PciDevice { bus: 0, dev: 2, func: 0, pin: 1, line: 10 });
        assert!(find(&FakeBus, 0x1234, 1).is_none());
    }

    #[test]
    fn intx_gsis_follow_xens_rotation() {
        assert_eq!(xen_hvm_intx_gsi(2, 1), 24);
        assert_eq!(xen_hvm_intx_gsi(3, 1), 28);
        assert_eq!(xen_hvm_intx_gsi(8, 2), 18);
    }
}
