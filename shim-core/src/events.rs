//! Event channels kept by Cocoon for the standalone backend: VIRQs and IPIs
//! per vCPU, and the console and xenstore ports whose other end is Cocoon
//! itself. The bindings are behind the domain lock; the pending and mask
//! bits live in guest pages and change atomically: here in the 2-level ABI
//! (`common/event_2l.c`), in [`fifo`] once the guest switches to the FIFO ABI.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::abi::{SharedInfo, VcpuInfo, EVTCHN_2L_NR_CHANNELS};

pub mod fifo;

/// VIRQ numbers Cocoon binds (`VIRQ_*` are in `abi`).
pub const NR_VIRQS: usize = 24;

/// Ports this implementation hands out (Linux takes about seven per vCPU).
pub const NR_PORTS: usize = 1024;
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
    /// The vCPU each port notifies (`EVTCHNOP_bind_vcpu` moves it).
    pub notify_vcpu: [u8; NR_PORTS],
}

impl Default for EventChannels {
    fn default() -> Self {
        Self::new()
    }
}

impl EventChannels {
    pub const fn new() -> Self {
        EventChannels { ports: [Port::Free; NR_PORTS], notify_vcpu: [0; NR_PORTS] }
    }

    /// Reserve `port` for a backend (done before the guest starts).
    pub fn bind_backend(&mut self, port: u32, b: Backend) {
        self.ports[port as usize] = Port::Backend(b);
    }

    /// A free port (port 0 is never used), notifying `vcpu`.
    pub fn alloc(&mut self, what: Port, vcpu: u32) -> Option<u32> {
        let p = (1..NR_PORTS).find(|&p| self.ports[p] == Port::Free)?;
        self.ports[p] = what;
        self.notify_vcpu[p] = vcpu as u8;
        Some(p as u32)
    }

    /// The vCPU `port` notifies (0 for ports not in use).
    pub fn vcpu_of(&self, port: u32) -> u32 {
        self.notify_vcpu.get(port as usize).copied().unwrap_or(0) as u32
    }

    pub fn get(&self, port: u32) -> Option<Port> {
        self.ports.get(port as usize).copied().filter(|p| *p != Port::Free)
    }

    /// Free `port`; what it was bound to (None: it was not in use).
    pub fn close(&mut self, port: u32) -> Option<(Port, u32)> {
        match self.ports.get(port as usize).copied() {
            Some(Port::Free) | None => None,
            Some(p) => {
                self.ports[port as usize] = Port::Free;
                Some((p, self.vcpu_of(port)))
            }
        }
    }
}

/// An atomic view of a u64 in a guest page.
///
/// # Safety
/// `p` is valid, 8-aligned, and only accessed atomically by Cocoon's CPUs.
unsafe fn atomic_u64<'a>(p: *mut u64) -> &'a AtomicU64 {
    // SAFETY: per the contract.
    unsafe { AtomicU64::from_ptr(p) }
}

/// What raising a port did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raised {
    AlreadyPending,
    /// Newly pending, but masked (or no vcpu_info): no upcall; a vCPU
    /// polling the port (`SCHEDOP_poll`) still has to look.
    Pending,
    Upcall,
}

/// Mark `port` pending and, if unmasked, flag the upcall on `vcpu`
/// (`evtchn_2l_set_pending`), with atomic operations as the guest's own
/// vCPUs use on the same words. `vcpu` may be null (a vCPU with no
/// vcpu_info yet): the port stays pending for a later unmask or rescan.
///
/// # Safety
/// `shared` points to the shared_info page and `vcpu`, if not null, to a
/// vcpu_info, both mapped and 8-aligned.
pub unsafe fn raise(shared: *mut SharedInfo, vcpu: *mut VcpuInfo, port: u32) -> Raised {
    let (w, bit) = ((port / 64) as usize, 1u64 << (port % 64));
    // SAFETY: per the contract; the words are u64s of those pages.
    unsafe {
        let pending = atomic_u64(core::ptr::addr_of_mut!((*shared).evtchn_pending[w]));
        if pending.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
            return Raised::AlreadyPending;
        }
        let mask = atomic_u64(core::ptr::addr_of_mut!((*shared).evtchn_mask[w]));
        if mask.load(Ordering::SeqCst) & bit != 0 || vcpu.is_null() || !raise_sel(vcpu, w) {
            return Raised::Pending;
        }
    }
    Raised::Upcall
}

/// Set selector bit `w` and, if it was clear, the upcall flag.
///
/// # Safety
/// `vcpu` points to a mapped vcpu_info.
unsafe fn raise_sel(vcpu: *mut VcpuInfo, w: usize) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let sel = atomic_u64(core::ptr::addr_of_mut!((*vcpu).evtchn_pending_sel));
        if sel.fetch_or(1 << w, Ordering::SeqCst) & (1 << w) != 0 {
            return false;
        }
        AtomicU8::from_ptr(core::ptr::addr_of_mut!((*vcpu).evtchn_upcall_pending)).store(1, Ordering::SeqCst);
    }
    true
}

/// Is `port` pending in the 2-level bitmap?
///
/// # Safety
/// `shared` points to the mapped shared_info page.
pub unsafe fn is_pending(shared: *mut SharedInfo, port: u32) -> bool {
    let (w, bit) = ((port as usize / 64) % 64, 1u64 << (port % 64));
    // SAFETY: per the contract; the word changes atomically.
    unsafe { atomic_u64(core::ptr::addr_of_mut!((*shared).evtchn_pending[w])).load(Ordering::SeqCst) & bit != 0 }
}

/// A port was closed: it is no longer pending (Xen's `evtchn_port_clear_pending`
/// in `evtchn_close`), so a new binding of the same number starts clean.
///
/// # Safety
/// `shared` points to the mapped shared_info page.
pub unsafe fn clear_pending(shared: *mut SharedInfo, port: u32) {
    let (w, bit) = ((port / 64) as usize, 1u64 << (port % 64));
    // SAFETY: per the contract.
    unsafe { atomic_u64(core::ptr::addr_of_mut!((*shared).evtchn_pending[w])).fetch_and(!bit, Ordering::SeqCst) };
}

/// `EVTCHNOP_unmask`: clear the mask and re-raise on `vcpu` if the port was
/// pending. Returns true when `vcpu` now has an upcall to take.
///
/// # Safety
/// As for [`raise`].
pub unsafe fn unmask(shared: *mut SharedInfo, vcpu: *mut VcpuInfo, port: u32) -> bool {
    let (w, bit) = ((port / 64) as usize, 1u64 << (port % 64));
    // SAFETY: per the contract.
    unsafe {
        let mask = atomic_u64(core::ptr::addr_of_mut!((*shared).evtchn_mask[w]));
        let was_masked = mask.fetch_and(!bit, Ordering::SeqCst) & bit != 0;
        let pending = atomic_u64(core::ptr::addr_of_mut!((*shared).evtchn_pending[w]));
        if was_masked && pending.load(Ordering::SeqCst) & bit != 0 && !vcpu.is_null() {
            return raise_sel(vcpu, w);
        }
    }
    false
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
        let (sp, vp) = (&mut *s as *mut SharedInfo, &mut v as *mut VcpuInfo);
        // SAFETY: both point to live, aligned structs (here: test memory).
        unsafe {
            assert_eq!(raise(sp, vp, 70), Raised::Upcall);
            assert_eq!(((*vp).evtchn_upcall_pending, (*vp).evtchn_pending_sel), (1, 2));
            assert_eq!(raise(sp, vp, 70), Raised::AlreadyPending);
            (*vp).evtchn_upcall_pending = 0;
            (*vp).evtchn_pending_sel = 0;
            (*sp).evtchn_mask[0] = 1 << 5;
            assert_eq!(raise(sp, vp, 5), Raised::Pending, "masked");
            assert_eq!((*vp).evtchn_upcall_pending, 0);
            assert!(unmask(sp, vp, 5));
            assert_eq!(((*vp).evtchn_upcall_pending, (*vp).evtchn_pending_sel), (1, 1));
        }
    }

    #[test]
    fn concurrent_raises_lose_nothing() {
        // Four CPUs raise disjoint ports on the same words at once: every
        // port ends pending, and exactly one raise per selector word reports
        // the upcall (the one that set the selector bit).
        let (mut s, mut v) = zeroed();
        let (sp, vp) = (&mut *s as *mut SharedInfo as usize, &mut v as *mut VcpuInfo as usize);
        let upcalls: usize = std::thread::scope(|sc| {
            let hs: std::vec::Vec<_> = (0..4u32)
                .map(|t| {
                    sc.spawn(move || {
                        (0..64u32)
                            .filter(|i| {
                                let port = t * 64 + i;
                                // SAFETY: the structs outlive the scope; access is atomic.
                                unsafe { raise(sp as *mut SharedInfo, vp as *mut VcpuInfo, port) == Raised::Upcall }
                            })
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(upcalls, 4, "one upcall per selector word");
        assert!(s.evtchn_pending[..4].iter().all(|&w| w == !0));
        assert_eq!(v.evtchn_pending_sel, 0b1111);
    }

    #[test]
    fn ports() {
        let mut e = EventChannels::new();
        e.bind_backend(1, Backend::Xenstore);
        let p = e.alloc(Port::Virq(VIRQ_TIMER), 3).unwrap();
        assert_eq!(p, 2);
        assert_eq!(e.vcpu_of(p), 3);
        assert_eq!(e.close(p), Some((Port::Virq(VIRQ_TIMER), 3)));
        assert_eq!(e.close(p), None);
        assert_eq!(e.get(1), Some(Port::Backend(Backend::Xenstore)));
    }
}
