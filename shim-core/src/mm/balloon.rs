//! Ballooning's bookkeeping: guest RAM frames the guest gave up
//! (`XENMEM_decrease_reservation`) and where each one is on its way back to
//! Xen. The frame states themselves are in the frame table
//! ([`Owner::Leaving`](super::frames::Owner::Leaving),
//! [`Owner::Released`](super::frames::Owner::Released)); the operations are
//! in `hypercall::memory`.

use alloc::vec::Vec;

/// Behind the domain lock, with the frame table.
#[derive(Default)]
pub struct Balloon {
    /// Frames the guest gave up that were still referenced then
    /// ([`Owner::Leaving`](super::frames::Owner::Leaving)): given back to
    /// Xen by the first reservation op after their last reference goes.
    pub pending: Vec<u64>,
    /// Frames given back to Xen, which populate and increase hand out again
    /// (the last one given back first). Only frames of the guest's original
    /// RAM are ever here.
    pub released: Vec<u64>,
}
