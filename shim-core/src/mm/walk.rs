//! Walking a 64-bit PV guest's page tables by machine frame.

use crate::abi::*;
use crate::builder::GuestMemory;

/// Where a virtual address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub mfn: u64,
    /// The leaf (L1) entry.
    pub l1e: u64,
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Not executable (NX at some level).
    pub nx: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    NotCanonical,
    /// Entry not present at this level (4 = L4 .. 1 = L1).
    NotPresent {
        level: u8,
    },
    /// A superpage where the walker expects a table (PV guests have none).
    Superpage {
        level: u8,
    },
}

/// Translate `va` through the L4 at machine frame `l4_mfn`.
pub fn translate(mem: &impl GuestMemory, l4_mfn: u64, va: u64) -> Result<Translation, WalkError> {
    let canonical = ((va as i64) << 16 >> 16) as u64 == va;
    if !canonical {
        return Err(WalkError::NotCanonical);
    }
    let mut mfn = l4_mfn;
    let (mut writable, mut user, mut nx) = (true, true, false);
    for level in (1..=4u8).rev() {
        let idx = ((va >> (12 + 9 * (level as u32 - 1))) & 511) as usize;
        let e = mem.read_u64(mfn, idx);
        if e & _PAGE_PRESENT == 0 {
            return Err(WalkError::NotPresent { level });
        }
        if level > 1 && level < 4 && e & _PAGE_PSE != 0 {
            return Err(WalkError::Superpage { level });
        }
        writable &= e & _PAGE_RW != 0;
        user &= e & _PAGE_USER != 0;
        nx |= e & _PAGE_NX != 0;
        mfn = (e & PADDR_MASK) >> PAGE_SHIFT;
        if level == 1 {
            return Ok(Translation { mfn, l1e: e, writable, user, nx });
        }
    }
    unreachable!()
}
