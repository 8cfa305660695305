//! Ballooning's bookkeeping: how many guest RAM frames the guest gave up
//! (`XENMEM_decrease_reservation`) are on their way back to Xen or with Xen.
//! The frames are found by their state in the frame table
//! ([`Owner::Leaving`](super::frames::Owner::Leaving),
//! [`Owner::Released`](super::frames::Owner::Released)), not kept in lists:
//! a guest ballooning half its memory away would otherwise need Cocoon's
//! heap to grow by 8 bytes a frame, which it does not have. The operations
//! are in `hypercall::memory`.

/// Behind the domain lock, with the frame table.
#[derive(Default)]
pub struct Balloon {
    /// Frames the guest gave up that are not Xen's yet (`Owner::Leaving`):
    /// still referenced, or refused by Xen. Given back by a later
    /// reservation op once nothing refers to them.
    pub leaving: u64,
    /// Frames given back to Xen (`Owner::Released`), which populate and
    /// increase hand out again. Only frames of the guest's original RAM.
    pub released: u64,
    /// Where the next search for a released frame starts (next fit).
    pub cursor: u64,
    /// Reservation ops since the last search for leaving frames that lost
    /// their last reference (see `hypercall::memory::retry_leaving`).
    pub since_retry: u32,
}
