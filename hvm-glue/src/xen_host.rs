//! Cocoon as a guest of a real Xen: what this Xen offers (version, features),
//! how its events reach Cocoon (the best mechanism available, each choice
//! logged), and the resources the PV guest will use directly (shared_info,
//! grant frames, the xenstore and console rings and ports).
//!
//! Every call here has a fallback for Xen versions that lack it; nothing
//! assumes more than Xen 3.4 without checking.

use core::fmt;

use shim_core::abi::*;

use crate::xen_hvm::{get_param, hypercall2, set_param};

/// How Xen raises Cocoon's event interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `HVMOP_set_evtchn_upcall_vector` (Xen 4.6+): an edge through the local APIC.
    UpcallVector(u8),
    /// `HVM_PARAM_CALLBACK_IRQ` of the vector type (`XENFEAT_hvm_callback_vector`):
    /// injected while `evtchn_upcall_pending` is set (level-like), no EOI.
    CallbackVector(u8),
    /// The Xen platform PCI device's INTx (`HVM_PARAM_CALLBACK_IRQ` of the PCI
    /// type, every Xen since 3.0), routed through the I/O APIC pin `gsi` to the
    /// vector: level-triggered while vCPU 0's `evtchn_upcall_pending` is set.
    PlatformIntx { gsi: u32, vector: u8 },
    /// No interrupt: Cocoon polls `evtchn_upcall_pending` from its own timer.
    Polled,
}

impl Delivery {
    pub fn name(self) -> &'static str {
        match self {
            Delivery::UpcallVector(_) => "per-vCPU upcall vector",
            Delivery::CallbackVector(_) => "callback vector",
            Delivery::PlatformIntx { .. } => "platform PCI INTx",
            Delivery::Polled => "polled",
        }
    }

    /// Does Xen keep interrupting while `evtchn_upcall_pending` stays set?
    pub fn level(self) -> bool {
        matches!(self, Delivery::CallbackVector(_) | Delivery::PlatformIntx { .. })
    }

    /// Does the interrupt come through the local APIC (and need an EOI)?
    pub fn needs_eoi(self) -> bool {
        matches!(self, Delivery::UpcallVector(_) | Delivery::PlatformIntx { .. })
    }
}

/// `cocoon.compat=`: pretend to be on an older Xen, to exercise fallbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compat {
    #[default]
    None,
    /// Xen 3.4's interfaces: no upcall vector, no callback vector, no console param.
    Xen34,
}

/// What Cocoon found on the Xen underneath.
#[derive(Clone, Copy, Debug)]
pub struct XenHost {
    pub major: u32,
    pub minor: u32,
    /// XENVER_get_features submap 0.
    pub features: u32,
    pub delivery: Delivery,
    /// The domain's xenstore ring (GFN) and port.
    pub store: Option<(u64, u32)>,
    /// The domain's PV console ring (GFN) and port (absent before Xen 4.x HVM consoles).
    pub console: Option<(u64, u32)>,
}

impl XenHost {
    pub fn has_feature(&self, bit: u32) -> bool {
        bit < 32 && self.features & (1 << bit) != 0
    }
}

impl fmt::Display for XenHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Xen {}.{}, features {:#x}, events by ", self.major, self.minor, self.features)?;
        match self.delivery {
            Delivery::UpcallVector(v) => write!(f, "per-vCPU upcall vector {v:#x}")?,
            Delivery::CallbackVector(v) => write!(f, "callback vector {v:#x}")?,
            Delivery::PlatformIntx { gsi, vector } => write!(f, "platform PCI INTx (GSI {gsi}, vector {vector:#x})")?,
            Delivery::Polled => write!(f, "polling")?,
        }
        match self.store {
            Some((gfn, port)) => write!(f, ", xenstore gfn {gfn:#x} port {port}")?,
            None => write!(f, ", no xenstore")?,
        }
        match self.console {
            Some((gfn, port)) => write!(f, ", console gfn {gfn:#x} port {port}"),
            None => write!(f, ", no PV console"),
        }
    }
}

#[repr(C)]
struct FeatureInfo {
    submap_idx: u32,
    submap: u32,
}

/// Choose the event delivery: the per-vCPU vector, else the callback vector,
/// else polling.
fn choose_delivery(features: u32, vector: u8, compat: Compat) -> Delivery {
    let callback_vector = features & (1 << XENFEAT_hvm_callback_vector) != 0;
    if compat == Compat::None {
        let v = XenHvmEvtchnUpcallVector { vcpu: 0, vector };
        let rc = hypercall2(__HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector, &v as *const _ as u64);
        if rc == Some(0) {
            // A non-zero HVM_PARAM_CALLBACK_IRQ tells the toolstack the guest has PV
            // drivers (`xl shutdown` checks it). Not the vector type: Xen would then
            // inject it for as long as evtchn_upcall_pending is set. GSI 1 (the
            // keyboard's, never raised: the per-vCPU vector takes precedence) is
            // what Linux uses for the same purpose.
            let _ = set_param(HVM_PARAM_CALLBACK_IRQ, (HVM_PARAM_CALLBACK_TYPE_GSI << 56) | 1);
            return Delivery::UpcallVector(vector);
        }
        log::info!("xen: no per-vCPU upcall vector ({}), trying the callback vector", rc.unwrap_or(-XEN_ENOSYS));
        if callback_vector {
            let rc = set_param(HVM_PARAM_CALLBACK_IRQ, (HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | vector as u64);
            if rc == 0 {
                return Delivery::CallbackVector(vector);
            }
            log::info!("xen: callback vector refused ({rc})");
        }
    }
    Delivery::Polled
}

/// Ask Xen to raise the platform device's INTx for events (`pin` 1 = INTA).
pub fn set_callback_intx(dev: u8, func: u8, pin: u8) -> Result<(), i64> {
    let devfn = ((dev as u64) << 3) | func as u64;
    let value = (HVM_PARAM_CALLBACK_TYPE_PCI_INTX << 56) | devfn << 8 | pin.saturating_sub(1) as u64;
    match set_param(HVM_PARAM_CALLBACK_IRQ, value) {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// Find out what this Xen offers and set up event delivery on `vector`.
pub fn bring_up(vector: u8, compat: Compat) -> XenHost {
    let v = hypercall2(__HYPERVISOR_xen_version, XENVER_version, 0).unwrap_or(0) as u32;
    let mut fi = FeatureInfo { submap_idx: 0, submap: 0 };
    let features = match hypercall2(__HYPERVISOR_xen_version, XENVER_get_features, &mut fi as *mut _ as u64) {
        Some(0) => fi.submap,
        _ => 0,
    };
    let features = if compat == Compat::Xen34 { features & !(1 << XENFEAT_hvm_callback_vector) } else { features };
    let delivery = choose_delivery(features, vector, compat);
    let (store, console) = rings(compat);
    XenHost { major: v >> 16, minor: v & 0xffff, features, delivery, store, console }
}

/// A ring page of the domain's (GFN) and its event channel.
pub type Ring = (u64, u32);

/// The domain's xenstore and PV console rings (GFN, port) as the toolstack
/// set them (no console under `cocoon.compat=3.4`: Xen 3.4 has no parameter).
pub fn rings(compat: Compat) -> (Option<Ring>, Option<Ring>) {
    let ring = |pfn_param, port_param| {
        let gfn = get_param(pfn_param).filter(|&g| g != 0)?;
        Some((gfn, get_param(port_param)? as u32))
    };
    let store = ring(HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN);
    let console = if compat == Compat::Xen34 { None } else { ring(HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN) };
    (store, console)
}

/// After a restore or migration (a new domain): ask for the same event
/// delivery again, for vCPUs `0..nr_vcpus` (Xen saves neither the upcall
/// vectors nor `HVM_PARAM_CALLBACK_IRQ` with an HVM domain). `intx` is the
/// platform device's (device, function, pin) for `Delivery::PlatformIntx`,
/// whose I/O APIC routing is part of the saved machine.
pub fn restore_delivery(delivery: Delivery, nr_vcpus: u32, intx: Option<(u8, u8, u8)>) -> Result<(), i64> {
    let ok = |rc: i64| if rc == 0 { Ok(()) } else { Err(rc) };
    match delivery {
        Delivery::UpcallVector(vector) => {
            for vcpu in 0..nr_vcpus {
                let v = XenHvmEvtchnUpcallVector { vcpu, vector };
                let rc = hypercall2(__HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector, &v as *const _ as u64);
                ok(rc.unwrap_or(-XEN_ENOSYS))?;
            }
            ok(set_param(HVM_PARAM_CALLBACK_IRQ, (HVM_PARAM_CALLBACK_TYPE_GSI << 56) | 1))
        }
        Delivery::CallbackVector(vector) => {
            ok(set_param(HVM_PARAM_CALLBACK_IRQ, (HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | vector as u64))
        }
        Delivery::PlatformIntx { .. } => match intx {
            Some((dev, func, pin)) => set_callback_intx(dev, func, pin),
            None => Err(-XEN_EINVAL),
        },
        Delivery::Polled => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_every_choice() {
        let h = XenHost {
            major: 4,
            minor: 17,
            features: 0x1f0,
            delivery: Delivery::UpcallVector(0xf3),
            store: Some((0xfeffc, 1)),
            console: None,
        };
        assert_eq!(
            h.to_string(),
            "Xen 4.17, features 0x1f0, events by per-vCPU upcall vector 0xf3, xenstore gfn 0xfeffc port 1, no PV console"
        );
        assert!(h.has_feature(XENFEAT_hvm_callback_vector) && !h.has_feature(XENFEAT_dom0));
        assert!(Delivery::CallbackVector(1).level() && !Delivery::UpcallVector(1).level());
    }

    #[test]
    fn without_a_hypercall_page_everything_falls_back() {
        let h = bring_up(0xf3, Compat::None);
        assert_eq!(h.delivery, Delivery::Polled);
        assert!(h.store.is_none() && h.console.is_none());
    }
}
