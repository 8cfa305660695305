//! Event channels, 2-level ABI (`common/event_2l.c`), kept by Cocoon for the
//! standalone backend: VIRQs, IPIs to the one vCPU, and the console and
//! xenstore ports whose other end is Cocoon itself.

use crate::abi::{SharedInfo, VcpuInfo, EVTCHN_2L_NR_CHANNELS};

/// VIRQ numbers Cocoon binds (`VIRQ_*` are in `abi`).
pub const NR_VIRQS: usize = 24;

/// Ports this small implementation hands out (Linux needs a dozen).
pub const NR_PORTS: usize = 256;
const _: () = assert!(NR_PORTS <= EVTCHN_2L_NR_CHANNELS);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Free,
    /// Allocated, no peer yet (`alloc_unbound`).
    Unbound,
    Virq(u32),
    Ipi,
    /// The other end is one of Cocoon's own backends.
    Backend(Backend),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Console,
    Xenstore,
}

pub struct EventChannels {
    pub ports: [Port; NR_PORTS],
    pub virq_port: [u32; NR_VIRQS],
}

impl Default for EventChannels {
    fn default() -> Self {
        Self::new()
    }
}

impl EventChannels {
    pub const fn new() -> Self {
        EventChannels { ports: [Port::Free; NR_PORTS], virq_port: [0; NR_VIRQS] }
    }

    /// Reserve `port` for a backend (done before the guest starts).
    pub fn bind_backend(&mut self, port: u32, b: Backend) {
        self.ports[port as usize] = Port::Backend(b);
    }

    /// A free port (port 0 is never used).
    pub fn alloc(&mut self, what: Port) -> Option<u32> {
        let p = (1..NR_PORTS).find(|&p| self.ports[p] == Port::Free)?;
        self.ports[p] = what;
        Some(p as u32)
    }

    pub fn get(&self, port: u32) -> Option<Port> {
        self.ports.get(port as usize).copied().filter(|p| *p != Port::Free)
    }

    pub fn close(&mut self, port: u32) -> bool {
        match self.ports.get(port as usize).copied() {
            Some(Port::Virq(v)) => {
                self.virq_port[v as usize] = 0;
                self.ports[port as usize] = Port::Free;
                true
            }
            Some(Port::Free) | None => false,
            Some(_) => {
                self.ports[port as usize] = Port::Free;
                true
            }
        }
    }
}

fn test_and_set(word: &mut u64, bit: u32) -> bool {
    let old = *word & (1 << bit) != 0;
    *word |= 1 << bit;
    old
}

/// Mark `port` pending and, if unmasked, flag the upcall (`evtchn_2l_set_pending`).
/// Returns true when the vCPU now has an upcall to take.
pub fn set_pending(shared: &mut SharedInfo, vcpu: &mut VcpuInfo, port: u32) -> bool {
    let (w, b) = ((port / 64) as usize, port % 64);
    if test_and_set(&mut shared.evtchn_pending[w], b) {
        return false;
    }
    if shared.evtchn_mask[w] & (1 << b) == 0 && !test_and_set(&mut vcpu.evtchn_pending_sel, w as u32) {
        vcpu.evtchn_upcall_pending = 1;
        return true;
    }
    false
}

/// `EVTCHNOP_unmask`: clear the mask and re-raise if the port was pending.
pub fn unmask(shared: &mut SharedInfo, vcpu: &mut VcpuInfo, port: u32) {
    let (w, b) = ((port / 64) as usize, port % 64);
    let was_masked = shared.evtchn_mask[w] & (1 << b) != 0;
    shared.evtchn_mask[w] &= !(1 << b);
    if was_masked && shared.evtchn_pending[w] & (1 << b) != 0 && !test_and_set(&mut vcpu.evtchn_pending_sel, w as u32) {
        vcpu.evtchn_upcall_pending = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::VIRQ_TIMER;

    fn zeroed() -> (alloc::boxed::Box<SharedInfo>, VcpuInfo) {
        // SAFETY: SharedInfo is plain integers; all-zero is a valid value.
        let s: alloc::boxed::Box<SharedInfo> = unsafe { alloc::boxed::Box::new_zeroed().assume_init() };
        (s, VcpuInfo::default())
    }

    #[test]
    fn raise_masked_and_unmask() {
        let (mut s, mut v) = zeroed();
        assert!(set_pending(&mut s, &mut v, 70));
        assert_eq!((v.evtchn_upcall_pending, v.evtchn_pending_sel), (1, 2));
        assert!(!set_pending(&mut s, &mut v, 70), "already pending");
        v.evtchn_upcall_pending = 0;
        v.evtchn_pending_sel = 0;
        s.evtchn_mask[0] = 1 << 5;
        assert!(!set_pending(&mut s, &mut v, 5));
        assert_eq!(v.evtchn_upcall_pending, 0);
        unmask(&mut s, &mut v, 5);
        assert_eq!((v.evtchn_upcall_pending, v.evtchn_pending_sel), (1, 1));
    }

    #[test]
    fn ports() {
        let mut e = EventChannels::new();
        e.bind_backend(1, Backend::Xenstore);
        let p = e.alloc(Port::Virq(VIRQ_TIMER)).unwrap();
        assert_eq!(p, 2);
        assert!(e.close(p) && !e.close(p));
        assert_eq!(e.get(1), Some(Port::Backend(Backend::Xenstore)));
    }
}
