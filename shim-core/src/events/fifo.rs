//! FIFO event channels (Xen's `common/event_fifo.c`) for the standalone
//! backend, beside the 2-level ABI in the parent module.
//!
//! The guest gives each vCPU a control block (`EVTCHNOP_init_control`) and
//! the domain an event array, one page at a time (`EVTCHNOP_expand_array`):
//! a u32 event word per port (PENDING, MASKED, LINKED, BUSY, and a 17-bit
//! LINK to the next port). Raising a port sets PENDING and, when it is
//! neither MASKED nor already LINKED, appends it to the queue of its
//! priority on the vCPU it notifies: the LINK field of that queue's tail
//! word, or the control block's HEAD when the guest has emptied the queue;
//! then the READY bit of the priority and, if that was new, the vCPU's
//! `evtchn_upcall_pending`.
//!
//! Shared state and locking:
//! - event words and control blocks are guest memory, changed with atomic
//!   operations only, as the guest's vCPUs change them;
//! - the frames they live in are held writable (`FrameTable::get_writable`,
//!   under the domain lock) for as long as they are in use, so they can
//!   neither leave the guest nor become page tables;
//! - each vCPU's queue tails (Xen keeps one per queue, with a lock each) are
//!   behind a small per-vCPU lock, [`FifoVcpu`], taken after the domain lock
//!   and before nothing else. Two vCPUs' locks are taken in vCPU order. Every
//!   access to an event word or control block happens under one of these
//!   locks (only [`FifoDomain::is_pending`] reads without), so teardown, which
//!   takes them all, knows no CPU still uses a frame it releases.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::{Raised, NR_PORTS};
use crate::abi::*;
use crate::builder::GuestMemory;
use crate::sync::{Lock, LockGuard};

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
const BUSY: u32 = 1 << EVTCHN_FIFO_BUSY;

const WORDS_PER_PAGE: usize = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
const _: () = assert!(NR_PORTS <= EVTCHN_FIFO_NR_CHANNELS && MAX_VCPUS_FIFO <= 256);
/// vCPU ids fit in a byte of [`FifoDomain::port_state`].
const MAX_VCPUS_FIFO: usize = crate::domain::MAX_VCPUS;

/// An atomic view of a u32 in guest memory.
///
/// # Safety
/// `p` is valid and 4-aligned, and only accessed atomically by Cocoon.
unsafe fn at<'a>(p: *mut u32) -> &'a AtomicU32 {
    // SAFETY: per the contract.
    unsafe { AtomicU32::from_ptr(p) }
}

/// One vCPU's FIFO state (Xen's `struct evtchn_fifo_vcpu`), in
/// [`VcpuShared`](crate::domain::VcpuShared): other vCPUs raise events on it.
pub struct FifoVcpu {
    /// The control block's machine address (0: none yet). Set and cleared
    /// under the domain lock and this vCPU's queue lock.
    control: AtomicU64,
    /// The tail port of each queue (0: none), Xen's `evtchn_fifo_queue::tail`.
    tails: Lock<[u32; EVTCHN_FIFO_MAX_QUEUES]>,
}

impl Default for FifoVcpu {
    fn default() -> Self {
        Self::new()
    }
}

impl FifoVcpu {
    pub const fn new() -> Self {
        FifoVcpu { control: AtomicU64::new(0), tails: Lock::new([0; EVTCHN_FIFO_MAX_QUEUES]) }
    }

    /// The control block's machine address, if the guest gave one.
    pub fn control_block(&self) -> Option<u64> {
        let ma = self.control.load(Ordering::Acquire);
        (ma != 0).then_some(ma)
    }
}

/// The domain's FIFO state (Xen's `struct evtchn_fifo_domain` and the FIFO
/// fields of `struct evtchn`), in [`Domain`](crate::domain::Domain).
pub struct FifoDomain {
    /// Machine address of each event-array page, in the order given.
    pages: [AtomicU64; EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES],
    /// Pages in use: ports below `nr_pages * 1024` have an event word.
    /// Stored (Release) after the page it counts.
    nr_pages: AtomicU32,
    /// Per port: its priority (bits 0-7) and the queue it was last linked
    /// on (Xen's `fifo_lastq`): priority (bits 8-15), vCPU (bits 16-23).
    /// The last queue changes only under the locks of both vCPUs involved.
    port_state: [AtomicU32; NR_PORTS],
    /// Ports raised while no event word covered them (Xen's
    /// `evtchn->pending`), re-raised when the page comes.
    early: [AtomicU64; NR_PORTS / 64],
}

impl Default for FifoDomain {
    fn default() -> Self {
        Self::new()
    }
}

/// Which queue: (vCPU, priority).
type Queue = (u32, u32);

/// The queue locks an operation holds: one vCPU's, or two vCPUs' (taken in
/// vCPU order).
struct Held<'a> {
    a: (u32, LockGuard<'a, [u32; EVTCHN_FIFO_MAX_QUEUES]>),
    b: Option<(u32, LockGuard<'a, [u32; EVTCHN_FIFO_MAX_QUEUES]>)>,
}

impl<'a> Held<'a> {
    fn lock(x: (u32, &'a FifoVcpu), y: (u32, &'a FifoVcpu)) -> Self {
        if x.0 == y.0 {
            return Held { a: (x.0, x.1.tails.lock()), b: None };
        }
        let (lo, hi) = if x.0 < y.0 { (x, y) } else { (y, x) };
        let a = (lo.0, lo.1.tails.lock());
        let b = (hi.0, hi.1.tails.lock());
        Held { a, b: Some(b) }
    }

    /// Queue tails of `vcpu`, which must be one of the locked vCPUs.
    fn tails(&mut self, vcpu: u32) -> &mut [u32; EVTCHN_FIFO_MAX_QUEUES] {
        match &mut self.b {
            Some((id, g)) if *id == vcpu => g,
            _ => &mut self.a.1,
        }
    }
}

/// Set the LINK field of the LINKED event word `w` to `link` (Xen's
/// `evtchn_fifo_set_link`). False when `w` is no longer LINKED: the guest
/// consumed it, so the queue is empty. While the guest keeps changing the
/// word, BUSY holds its unmasking off (it may still set or clear MASKED,
/// clear PENDING, and clear LINKED, each once), so a few tries suffice.
fn set_link(w: &AtomicU32, link: u32) -> bool {
    let try_link = |cur: &mut u32| -> Option<bool> {
        if *cur & LINKED == 0 {
            return Some(false);
        }
        let new = (*cur & !(BUSY | EVTCHN_FIFO_LINK_MASK)) | link;
        match w.compare_exchange(*cur, new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => Some(true),
            Err(now) => {
                *cur = now;
                None
            }
        }
    };
    let mut cur = w.load(Ordering::SeqCst);
    if let Some(r) = try_link(&mut cur) {
        return r;
    }
    w.fetch_or(BUSY, Ordering::SeqCst);
    cur = w.load(Ordering::SeqCst);
    for _ in 0..4 {
        match try_link(&mut cur) {
            Some(true) => return true, // BUSY went with the new value
            Some(false) => {
                w.fetch_and(!BUSY, Ordering::SeqCst);
                return false;
            }
            None => {}
        }
    }
    log::debug!("FIFO event channels: could not link port {link} (the guest keeps changing its tail)");
    w.fetch_and(!BUSY, Ordering::SeqCst);
    true
}

/// Set `evtchn_upcall_pending` in `vi` (may be null): true if it was clear
/// (Xen's `vcpu_mark_events_pending`).
///
/// # Safety
/// `vi`, if not null, points to a mapped vcpu_info.
unsafe fn mark_events_pending(vi: *mut VcpuInfo) -> bool {
    if vi.is_null() {
        return false;
    }
    // SAFETY: per the contract; the flag is a byte changed atomically.
    unsafe { AtomicU8::from_ptr(core::ptr::addr_of_mut!((*vi).evtchn_upcall_pending)).swap(1, Ordering::SeqCst) == 0 }
}

impl FifoDomain {
    pub fn new() -> Self {
        FifoDomain {
            pages: [const { AtomicU64::new(0) }; EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES],
            nr_pages: AtomicU32::new(0),
            port_state: [const { AtomicU32::new(EVTCHN_FIFO_PRIORITY_DEFAULT) }; NR_PORTS],
            early: [const { AtomicU64::new(0) }; NR_PORTS / 64],
        }
    }

    /// Event-array pages the guest has given.
    pub fn nr_pages(&self) -> usize {
        self.nr_pages.load(Ordering::Acquire) as usize
    }

    /// Ports with an event word.
    pub fn nr_events(&self) -> usize {
        self.nr_pages() * WORDS_PER_PAGE
    }

    /// The event word of `port`, if a page covers it.
    fn word(&self, mem: &mut impl GuestMemory, port: u32) -> Option<*mut u32> {
        let (page, idx) = (port as usize / WORDS_PER_PAGE, port as usize % WORDS_PER_PAGE);
        if page >= self.nr_pages() {
            return None;
        }
        let ma = self.pages[page].load(Ordering::Relaxed);
        // SAFETY: `add_page` held the frame as writable guest RAM before
        // counting it; `idx` < 1024 keeps the u32 inside the 4 KiB frame.
        Some(unsafe { (mem.frame_mut(ma >> PAGE_SHIFT).as_mut_ptr() as *mut u32).add(idx) })
    }

    pub fn priority(&self, port: u32) -> u32 {
        self.port_state
            .get(port as usize)
            .map_or(EVTCHN_FIFO_PRIORITY_DEFAULT, |s| (s.load(Ordering::Relaxed) & 0xff).min(EVTCHN_FIFO_PRIORITY_MIN))
    }

    /// Xen's `evtchn_fifo_set_priority`, for a port the caller checked: only
    /// future links use it (a linked event stays where it is).
    pub fn set_priority(&self, port: u32, priority: u32) -> Result<(), i64> {
        if priority > EVTCHN_FIFO_PRIORITY_MIN {
            return Err(-XEN_EINVAL);
        }
        let s = self.port_state.get(port as usize).ok_or(-XEN_EINVAL)?;
        let _ = s.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| Some((v & !0xff) | priority));
        Ok(())
    }

    fn last_queue(&self, port: u32) -> Queue {
        let v = self.port_state[port as usize].load(Ordering::Acquire);
        (v >> 16 & 0xff, (v >> 8 & 0xff).min(EVTCHN_FIFO_PRIORITY_MIN))
    }

    fn set_last_queue(&self, port: u32, q: Queue) {
        let _ = self.port_state[port as usize].fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
            Some((v & 0xff) | (q.0 & 0xff) << 16 | (q.1 & 0xff) << 8)
        });
    }

    /// Before the domain switches to FIFO: every port at the default
    /// priority, on no queue, with nothing pending.
    pub fn reset_ports(&self) {
        for s in &self.port_state {
            s.store(EVTCHN_FIFO_PRIORITY_DEFAULT, Ordering::Relaxed);
        }
        for w in &self.early {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// The domain switches to FIFO (Xen's `setup_ports`): the ports
    /// `pending2l` says were pending in the 2-level bitmap are raised again
    /// once a page covers them.
    pub fn carry_pending(&self, pending2l: impl Fn(u32) -> bool) {
        for port in 1..NR_PORTS as u32 {
            if pending2l(port) {
                self.early[port as usize / 64].fetch_or(1 << (port % 64), Ordering::AcqRel);
            }
        }
    }

    /// Take `port`'s early pending flag (see [`early`](Self::early)).
    pub fn take_early(&self, port: u32) -> bool {
        let Some(w) = self.early.get(port as usize / 64) else { return false };
        let bit = 1u64 << (port % 64);
        w.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    /// Add event-array page `ma` (a frame the caller holds writable), as
    /// Xen's `add_page_to_event_array`; the ports it covers are returned for
    /// the caller to raise again those still pending. Under the domain lock.
    pub fn add_page(&self, ma: u64) -> Result<core::ops::Range<u32>, i64> {
        let n = self.nr_pages();
        if n >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES {
            return Err(-XEN_ENOSPC);
        }
        self.pages[n].store(ma, Ordering::Relaxed);
        self.nr_pages.store(n as u32 + 1, Ordering::Release);
        Ok((n * WORDS_PER_PAGE) as u32..((n + 1) * WORDS_PER_PAGE) as u32)
    }

    /// Forget every page and control block (EVTCHNOP_reset, a failed
    /// switch): `release` gets each frame held for them. Under the domain
    /// lock; `vcpus` are all the domain's vCPUs.
    pub fn teardown<'v>(&self, vcpus: impl Iterator<Item = &'v FifoVcpu>, mut release: impl FnMut(u64)) {
        let n = self.nr_pages();
        self.nr_pages.store(0, Ordering::Release);
        // Every word and control block access holds one of these locks:
        // once each has been taken, nothing uses the frames any more.
        for v in vcpus {
            let mut tails = v.tails.lock();
            *tails = [0; EVTCHN_FIFO_MAX_QUEUES];
            let ma = v.control.swap(0, Ordering::AcqRel);
            if ma != 0 {
                release(ma >> PAGE_SHIFT);
            }
        }
        for p in &self.pages[..n] {
            release(p.swap(0, Ordering::Relaxed) >> PAGE_SHIFT);
        }
        self.reset_ports();
    }

    /// Set `v`'s control block to machine address `ma` (a frame the caller
    /// holds writable). -EINVAL if it has one (Xen's `map_control_block`).
    pub fn map_control_block(&self, v: &FifoVcpu, ma: u64) -> Result<(), i64> {
        let mut tails = v.tails.lock();
        if v.control.load(Ordering::Acquire) != 0 {
            return Err(-XEN_EINVAL);
        }
        *tails = [0; EVTCHN_FIFO_MAX_QUEUES];
        v.control.store(ma, Ordering::Release);
        Ok(())
    }

    /// Raise `port` towards vCPU `vcpu` (Xen's `evtchn_fifo_set_pending`).
    /// `queues` gives each vCPU's FIFO state, `vi` is `vcpu`'s vcpu_info
    /// (null: none). Allocates nothing; takes `vcpu`'s queue lock, and that
    /// of the vCPU the port was last queued on if another.
    ///
    /// # Safety
    /// `vi`, if not null, points to a mapped vcpu_info.
    pub unsafe fn set_pending<'v>(
        &self,
        mem: &mut impl GuestMemory,
        queues: impl Fn(u32) -> Option<&'v FifoVcpu>,
        vcpu: u32,
        vi: *mut VcpuInfo,
        port: u32,
    ) -> Raised {
        let (Some(target), true) = (queues(vcpu), (port as usize) < NR_PORTS) else {
            return Raised::Pending;
        };
        let prio = self.priority(port);
        // Lock the target queue and the one the port was last linked on
        // (Xen tries three times, in case the port moves meanwhile).
        let mut tries = 0;
        let (mut h, last, locked) = loop {
            let last = self.last_queue(port);
            let old = queues(last.0).map_or((vcpu, target), |o| (last.0, o));
            let h = Held::lock((vcpu, target), old);
            tries += 1;
            if self.last_queue(port) == last && old.0 == last.0 {
                break (h, last, true);
            }
            if tries == 3 {
                break (h, last, false);
            }
            drop(h);
        };
        let Some(word) = self.word(mem, port) else {
            self.early[port as usize / 64].fetch_or(1 << (port % 64), Ordering::AcqRel);
            return Raised::Pending;
        };
        // SAFETY: an event word of a held page (see `word`), under a queue lock.
        let word = unsafe { at(word) };
        let was_pending = word.fetch_or(PENDING, Ordering::SeqCst) & PENDING != 0;
        let raised = if was_pending { Raised::AlreadyPending } else { Raised::Pending };
        if !locked {
            log::debug!("FIFO event channels: port {port} moved too often, event left pending");
            return raised;
        }
        let cb = target.control.load(Ordering::Acquire);
        // No control block: the guest may not unmask before it gives one,
        // so the event stays pending, unlinked (as Xen drops it).
        if cb == 0 || word.load(Ordering::SeqCst) & MASKED != 0 || word.fetch_or(LINKED, Ordering::SeqCst) & LINKED != 0
        {
            return raised;
        }
        // If the port was its old queue's tail, that queue is empty now:
        // forget the tail so that a later link there cannot reach this
        // event on its new queue.
        let q = (vcpu, prio);
        let old_tail = &mut h.tails(last.0)[last.1 as usize];
        if *old_tail == port {
            *old_tail = 0;
        }
        if last != q {
            self.set_last_queue(port, q);
        }
        let tail = core::mem::replace(&mut h.tails(vcpu)[prio as usize], port);
        let linked = tail != 0
            && tail != port
            && match self.word(mem, tail) {
                // SAFETY: as above, for the tail's word.
                Some(tw) => set_link(unsafe { at(tw) }, port),
                None => false,
            };
        if linked {
            return raised;
        }
        let off = (cb & (PAGE_SIZE - 1)) as usize;
        // SAFETY: `init_control` checked that the 72-byte, 8-aligned block
        // lies inside its frame, which is held writable while it is set.
        let ctl = unsafe { mem.frame_mut(cb >> PAGE_SHIFT).as_mut_ptr().add(off) as *mut EvtchnFifoControlBlock };
        // SAFETY: u32s of that block, changed atomically.
        let (head, ready) = unsafe {
            (at(core::ptr::addr_of_mut!((*ctl).head[prio as usize])), at(core::ptr::addr_of_mut!((*ctl).ready)))
        };
        head.store(port, Ordering::SeqCst);
        // SAFETY: per this function's contract.
        if ready.fetch_or(1 << prio, Ordering::SeqCst) & (1 << prio) == 0 && unsafe { mark_events_pending(vi) } {
            return Raised::Upcall;
        }
        raised
    }

    /// A closed port is no longer pending (Xen's `evtchn_fifo_clear_pending`;
    /// a linked event is left for the guest to skip), and its next binding
    /// starts at the default priority (Xen's `evtchn_fifo_init`).
    pub fn clear_pending(&self, mem: &mut impl GuestMemory, v: &FifoVcpu, port: u32) {
        if port as usize >= NR_PORTS {
            return;
        }
        let _ = self.set_priority(port, EVTCHN_FIFO_PRIORITY_DEFAULT);
        self.early[port as usize / 64].fetch_and(!(1 << (port % 64)), Ordering::AcqRel);
        let _held = v.tails.lock();
        if let Some(w) = self.word(mem, port) {
            // SAFETY: an event word of a held page, under a queue lock.
            unsafe { at(w) }.fetch_and(!PENDING, Ordering::SeqCst);
        }
    }

    /// Clear MASKED (Xen's `evtchn_fifo_unmask`, first half): is the port
    /// pending, to be raised again? Under `v`'s queue lock.
    pub fn unmask(&self, mem: &mut impl GuestMemory, v: &FifoVcpu, port: u32) -> bool {
        let _held = v.tails.lock();
        let Some(w) = self.word(mem, port) else { return false };
        // SAFETY: an event word of a held page, under a queue lock.
        let w = unsafe { at(w) };
        w.fetch_and(!MASKED, Ordering::SeqCst);
        w.load(Ordering::SeqCst) & PENDING != 0
    }

    /// Is `port` pending (SCHEDOP_poll)? A read only: takes no lock.
    pub fn is_pending(&self, mem: &mut impl GuestMemory, port: u32) -> bool {
        match self.word(mem, port) {
            // SAFETY: an event word of a page held when `word` looked it up;
            // if a reset released it since, this reads a frame still mapped.
            Some(w) => unsafe { at(w) }.load(Ordering::SeqCst) & PENDING != 0,
            None => {
                self.early.get(port as usize / 64).is_some_and(|w| w.load(Ordering::Acquire) & (1 << (port % 64)) != 0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_link_only_on_a_linked_word() {
        let w = AtomicU32::new(PENDING | 5);
        assert!(!set_link(&w, 9), "not linked: the queue is empty");
        assert_eq!(w.load(Ordering::Relaxed), PENDING | 5);
        let w = AtomicU32::new(PENDING | LINKED | BUSY | 5);
        assert!(set_link(&w, 9));
        assert_eq!(w.load(Ordering::Relaxed), PENDING | LINKED | 9, "LINK replaced, BUSY cleared");
    }

    /// Frames shared by test threads: frame n at mfn n.
    #[derive(Clone, Copy)]
    struct SharedFrames(*mut crate::builder::Frame);
    // SAFETY: the threads touch the frames through atomics only.
    unsafe impl Send for SharedFrames {}
    impl GuestMemory for SharedFrames {
        fn frame(&self, mfn: u64) -> &crate::builder::Frame {
            // SAFETY: the tests only name the frames they allocated.
            unsafe { &*self.0.add(mfn as usize) }
        }
        fn frame_mut(&mut self, mfn: u64) -> &mut crate::builder::Frame {
            // SAFETY: as above; the pointer is only used for atomic accesses.
            unsafe { &mut *self.0.add(mfn as usize) }
        }
    }

    #[test]
    fn concurrent_raises_on_one_queue_link_every_event_once() {
        // Frame 1: the control block; frame 2: the event array. Four CPUs
        // raise 64 ports each on vCPU 0's default queue at once: walking the
        // queue from HEAD finds every port exactly once.
        let mut frames = std::vec![[0u8; 4096]; 3];
        let mem = SharedFrames(frames.as_mut_ptr());
        let d = FifoDomain::new();
        let v = [FifoVcpu::new()];
        d.map_control_block(&v[0], 1 << PAGE_SHIFT).unwrap();
        d.add_page(2 << PAGE_SHIFT).unwrap();
        let mut vi = VcpuInfo::default();
        let vip = &mut vi as *mut VcpuInfo as usize;
        let upcalls: usize = std::thread::scope(|sc| {
            let hs: std::vec::Vec<_> = (0..4u32)
                .map(|t| {
                    let (d, v, mut mem) = (&d, &v, mem);
                    sc.spawn(move || {
                        (1..=64u32)
                            .filter(|i| {
                                let q = |n: u32| v.get(n as usize);
                                // SAFETY: vi outlives the scope; set_pending changes it atomically.
                                let r = unsafe { d.set_pending(&mut mem, q, 0, vip as *mut VcpuInfo, t * 64 + i) };
                                r == Raised::Upcall
                            })
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(upcalls, 1, "the first link sets READY and the upcall, no other");
        assert_eq!(vi.evtchn_upcall_pending, 1);
        let word = |port: u32| u32::from_le_bytes(frames[2][port as usize * 4..][..4].try_into().unwrap());
        let ctl = |off: usize| u32::from_le_bytes(frames[1][off..][..4].try_into().unwrap());
        assert_eq!(ctl(0), 1 << EVTCHN_FIFO_PRIORITY_DEFAULT, "READY");
        let mut seen = std::vec![false; 257];
        let mut port = ctl(8 + 4 * EVTCHN_FIFO_PRIORITY_DEFAULT as usize);
        let mut n = 0;
        while port != 0 {
            assert!(!seen[port as usize], "port {port} twice");
            seen[port as usize] = true;
            let w = word(port);
            assert_eq!(w & (PENDING | LINKED | MASKED | BUSY), PENDING | LINKED);
            port = w & EVTCHN_FIFO_LINK_MASK;
            n += 1;
        }
        assert_eq!(n, 256);
    }

    #[test]
    fn priorities_and_last_queue_share_a_word() {
        let d = FifoDomain::new();
        assert_eq!(d.priority(3), EVTCHN_FIFO_PRIORITY_DEFAULT);
        assert_eq!(d.set_priority(3, 16), Err(-XEN_EINVAL));
        d.set_priority(3, 2).unwrap();
        d.set_last_queue(3, (5, 2));
        assert_eq!((d.priority(3), d.last_queue(3)), (2, (5, 2)));
        d.set_priority(3, 15).unwrap();
        assert_eq!((d.priority(3), d.last_queue(3)), (15, (5, 2)));
        assert_eq!(d.set_priority(NR_PORTS as u32, 1), Err(-XEN_EINVAL));
    }
}
