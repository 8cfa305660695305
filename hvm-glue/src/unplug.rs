//! Unplugging the device model's emulated disks and NICs (the Xen platform
//! device's protocol, `docs/misc/hvm-emulated-unplug.pandoc`). An HVM domain's
//! `disk=` and `vif=` entries appear twice: as emulated IDE/NVMe disks and NICs
//! in QEMU, and as xenstore devices for the PV frontends. Cocoon's guest uses
//! the PV ones; unplugging the emulated ones, as Linux's PVHVM drivers do,
//! closes QEMU's handle on the same disk image before blkback opens it.

use shim_core::abi::*;

/// Port I/O, so tests can fake the device model.
pub trait PortIo {
    fn inb(&mut self, port: u16) -> u8;
    fn inw(&mut self, port: u16) -> u16;
    fn outw(&mut self, port: u16, v: u16);
    fn outl(&mut self, port: u16, v: u32);
}

/// The machine's I/O ports.
pub struct MachinePorts;

#[cfg(target_os = "none")]
impl PortIo for MachinePorts {
    fn inb(&mut self, port: u16) -> u8 {
        // SAFETY: the platform device's unplug ports (0x10-0x13) only; reads have no side effects.
        unsafe { x86_64::instructions::port::Port::<u8>::new(port).read() }
    }
    fn inw(&mut self, port: u16) -> u16 {
        // SAFETY: as for `inb`.
        unsafe { x86_64::instructions::port::Port::<u16>::new(port).read() }
    }
    fn outw(&mut self, port: u16, v: u16) {
        // SAFETY: the unplug protocol's writes; they affect the device model's emulated devices only.
        unsafe { x86_64::instructions::port::Port::<u16>::new(port).write(v) }
    }
    fn outl(&mut self, port: u16, v: u32) {
        // SAFETY: as for `outw`.
        unsafe { x86_64::instructions::port::Port::<u32>::new(port).write(v) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unplug {
    /// The emulated disks and NICs are gone (protocol version as read).
    Done { protocol: u8 },
    /// No unplug protocol here (no platform device, or a PVH domain).
    NoProtocol,
    /// The host blacklisted this product and build: leave the devices alone.
    Blacklisted,
}

/// Run the protocol: check the magic, identify (protocol 1 and later), unplug
/// every emulated disk and NIC. `build` is the build number reported.
pub fn unplug_emulated_devices(io: &mut impl PortIo, build: u32) -> Unplug {
    if io.inw(XEN_IOPORT_MAGIC) != XEN_IOPORT_MAGIC_VAL {
        return Unplug::NoProtocol;
    }
    let protocol = io.inb(XEN_IOPORT_PROTOVER);
    if protocol != 0 {
        io.outw(XEN_IOPORT_PRODNUM, XEN_IOPORT_LINUX_PRODNUM);
        io.outl(XEN_IOPORT_DRVVER, build);
        if io.inw(XEN_IOPORT_MAGIC) != XEN_IOPORT_MAGIC_VAL {
            return Unplug::Blacklisted;
        }
    }
    io.outw(
        XEN_IOPORT_UNPLUG,
        XEN_UNPLUG_ALL_IDE_DISKS | XEN_UNPLUG_ALL_NICS | XEN_UNPLUG_AUX_IDE_DISKS | XEN_UNPLUG_NVME_DISKS,
    );
    Unplug::Done { protocol }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// QEMU's side: magic, protocol 1, a blacklist of one build.
    struct DeviceModel {
        magic: u16,
        protocol: u8,
        blacklisted_build: Option<u32>,
        writes: Vec<(u16, u32)>,
    }

    impl PortIo for DeviceModel {
        fn inb(&mut self, port: u16) -> u8 {
            assert_eq!(port, XEN_IOPORT_PROTOVER);
            self.protocol
        }
        fn inw(&mut self, port: u16) -> u16 {
            assert_eq!(port, XEN_IOPORT_MAGIC);
            self.magic
        }
        fn outw(&mut self, port: u16, v: u16) {
            self.writes.push((port, v as u32));
        }
        fn outl(&mut self, port: u16, v: u32) {
            self.writes.push((port, v));
            if Some(v) == self.blacklisted_build {
                self.magic = XEN_IOPORT_MAGIC_BLACKLISTED;
            }
        }
    }

    fn dm(magic: u16, protocol: u8, blacklisted_build: Option<u32>) -> DeviceModel {
        DeviceModel { magic, protocol, blacklisted_build, writes: Vec::new() }
    }

    #[test]
    fn identifies_then_unplugs_disks_and_nics() {
        let mut d = dm(XEN_IOPORT_MAGIC_VAL, 1, None);
        assert_eq!(unplug_emulated_devices(&mut d, 7), Unplug::Done { protocol: 1 });
        assert_eq!(d.writes, [(XEN_IOPORT_PRODNUM, 3), (XEN_IOPORT_DRVVER, 7), (XEN_IOPORT_UNPLUG, 0xf)]);
        // Protocol 0: no identification, straight to the unplug.
        let mut d = dm(XEN_IOPORT_MAGIC_VAL, 0, None);
        assert_eq!(unplug_emulated_devices(&mut d, 7), Unplug::Done { protocol: 0 });
        assert_eq!(d.writes, [(XEN_IOPORT_UNPLUG, 0xf)]);
    }

    #[test]
    fn no_magic_or_blacklisted_leaves_devices_alone() {
        let mut d = dm(0xffff, 1, None);
        assert_eq!(unplug_emulated_devices(&mut d, 7), Unplug::NoProtocol);
        assert!(d.writes.is_empty());
        let mut d = dm(XEN_IOPORT_MAGIC_VAL, 1, Some(7));
        assert_eq!(unplug_emulated_devices(&mut d, 7), Unplug::Blacklisted);
        assert_eq!(d.writes, [(XEN_IOPORT_PRODNUM, 3), (XEN_IOPORT_DRVVER, 7)], "no unplug");
    }
}
