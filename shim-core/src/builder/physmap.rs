//! The one place where guest pseudo-physical frames (PFNs) meet machine
//! frames (MFNs). In Cocoon a guest "MFN" is a frame number of the HVM
//! container (a GFN of the Xen underneath, or a plain physical frame on QEMU).

use alloc::vec::Vec;

/// Guest PFN → MFN, for every page the guest owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysMap {
    mfns: Vec<u64>,
}

impl PhysMap {
    /// Guest memory made of machine extents `(first_mfn, pages)`, in PFN order.
    pub fn from_extents(extents: &[(u64, u64)]) -> Self {
        // Exactly sized: a grown vector would leave its doubled capacity behind.
        let mut mfns = Vec::with_capacity(extents.iter().map(|e| e.1 as usize).sum());
        for &(start, n) in extents {
            mfns.extend(start..start + n);
        }
        PhysMap { mfns }
    }

    /// Cocoon's memory for a map of `pages` guest pages.
    pub const fn bytes_for(pages: u64) -> u64 {
        pages * core::mem::size_of::<u64>() as u64
    }

    pub fn nr_pages(&self) -> u64 {
        self.mfns.len() as u64
    }

    /// The machine frame of guest frame `pfn`.
    #[inline]
    pub fn mfn(&self, pfn: u64) -> u64 {
        self.mfns[pfn as usize]
    }

    /// Back guest frame `pfn` by `mfn` instead (a real Xen's page, such as a ring).
    pub fn set(&mut self, pfn: u64, mfn: u64) {
        self.mfns[pfn as usize] = mfn;
    }

    pub fn mfns(&self) -> &[u64] {
        &self.mfns
    }
}
