//! PCI configuration space through the legacy ports (0xcf8/0xcfc), enough to
//! find the Xen platform device and its interrupt pin, and the IDE
//! controller's bus-master registers.

/// The Xen platform PCI device (`xen-platform`): vendor "XS", device 1.
pub const XEN_PLATFORM_VENDOR: u16 = 0x5853;
pub const XEN_PLATFORM_DEVICE: u16 = 0x0001;

const PCI_COMMAND: u8 = 0x04;
const PCI_CLASS_REVISION: u8 = 0x08;
const PCI_BAR4: u8 = 0x20;
const PCI_INTERRUPT_LINE: u8 = 0x3c;
const PCI_COMMAND_IO: u32 = 1 << 0;
const PCI_COMMAND_MASTER: u32 = 1 << 2;
/// Class 01 (mass storage), subclass 01 (IDE).
const PCI_CLASS_IDE: u32 = 0x0101;

/// Configuration-space access, so tests can fake a bus.
pub trait PciConfig {
    fn read32(&self, bus: u8, dev: u8, func: u8, off: u8) -> u32;
    fn write32(&self, bus: u8, dev: u8, func: u8, off: u8, v: u32);
}

fn config_address(bus: u8, dev: u8, func: u8, off: u8) -> u32 {
    0x8000_0000u32 | (bus as u32) << 16 | ((dev as u32) & 31) << 11 | ((func as u32) & 7) << 8 | (off as u32 & 0xfc)
}

/// The machine's configuration space (configuration mechanism #1).
pub struct PortPci;

impl PciConfig for PortPci {
    fn read32(&self, bus: u8, dev: u8, func: u8, off: u8) -> u32 {
        let addr = config_address(bus, dev, func, off);
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

    fn write32(&self, bus: u8, dev: u8, func: u8, off: u8, v: u32) {
        let addr = config_address(bus, dev, func, off);
        #[cfg(target_os = "none")]
        // SAFETY: a configuration register write; callers write only what they
        // mean to change (the IDE controller's command register).
        unsafe {
            x86_64::instructions::port::Port::<u32>::new(0xcf8).write(addr);
            x86_64::instructions::port::Port::<u32>::new(0xcfc).write(v);
        }
        #[cfg(not(target_os = "none"))]
        let _ = (addr, v);
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

/// The first IDE controller on bus 0 whose BAR4 holds bus-master (BMDMA)
/// registers in I/O space: their base port, with the controller's I/O
/// decoding and bus mastering switched on.
pub fn ide_bus_master(cfg: &dyn PciConfig) -> Option<u16> {
    for dev in 0..32u8 {
        for func in 0..8u8 {
            if cfg.read32(0, dev, func, 0) as u16 == 0xffff {
                if func == 0 {
                    break;
                }
                continue;
            }
            if cfg.read32(0, dev, func, PCI_CLASS_REVISION) >> 16 != PCI_CLASS_IDE {
                continue;
            }
            let bar = cfg.read32(0, dev, func, PCI_BAR4);
            let base = (bar & 0xfffc) as u16;
            if bar & 1 == 0 || base == 0 {
                continue;
            }
            let cmd = cfg.read32(0, dev, func, PCI_COMMAND) & 0xffff;
            let want = cmd | PCI_COMMAND_IO | PCI_COMMAND_MASTER;
            if want != cmd {
                cfg.write32(0, dev, func, PCI_COMMAND, want);
            }
            return Some(base);
        }
    }
    None
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

    /// A host bridge, QEMU's PIIX3 IDE at 00:01.1 (BMDMA at 0xc040, bus
    /// mastering off) and the Xen platform device at 00:02.0.
    struct FakeBus(core::cell::Cell<u32>);
    impl PciConfig for FakeBus {
        fn read32(&self, bus: u8, dev: u8, func: u8, off: u8) -> u32 {
            match (bus, dev, func, off) {
                (0, 0, 0, 0) => 0x1237_8086,
                (0, 1, 0, 0) => 0x7000_8086,
                (0, 1, 0, 8) => 0x0601_0000,
                (0, 1, 1, 0) => 0x7010_8086,
                (0, 1, 1, 8) => 0x0101_8000,
                (0, 1, 1, 4) => self.0.get(),
                (0, 1, 1, 0x20) => 0xc041,
                (0, 2, 0, 0) => 0x0001_5853,
                (0, 2, 0, 0x3c) => 0x0000_010a,
                _ => !0,
            }
        }
        fn write32(&self, bus: u8, dev: u8, func: u8, off: u8, v: u32) {
            assert_eq!((bus, dev, func, off), (0, 1, 1, 4), "only the IDE command register is written");
            self.0.set(v);
        }
    }

    #[test]
    fn finds_the_ide_bus_master_registers_and_turns_bus_mastering_on() {
        let bus = FakeBus(core::cell::Cell::new(0x0280_0001));
        assert_eq!(ide_bus_master(&bus), Some(0xc040));
        // The status half is written as 0: its bits clear when written with 1.
        assert_eq!(bus.0.get(), 0x0000_0005);
    }

    #[test]
    fn finds_the_platform_device_and_its_pin() {
        let bus = FakeBus(core::cell::Cell::new(0));
        let d = find(&bus, XEN_PLATFORM_VENDOR, XEN_PLATFORM_DEVICE).unwrap();
        assert_eq!(d, PciDevice { bus: 0, dev: 2, func: 0, pin: 1, line: 10 });
        assert!(find(&bus, 0x1234, 1).is_none());
    }

    #[test]
    fn intx_gsis_follow_xens_rotation() {
        assert_eq!(xen_hvm_intx_gsi(2, 1), 24);
        assert_eq!(xen_hvm_intx_gsi(3, 1), 28);
        assert_eq!(xen_hvm_intx_gsi(8, 2), 18);
    }
}
