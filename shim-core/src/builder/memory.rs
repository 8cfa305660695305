//! Access to guest memory by machine frame, implemented over real memory by
//! the firmware and over a buffer by tests.

use crate::abi::PAGE_SIZE;

pub type Frame = [u8; PAGE_SIZE as usize];

pub trait GuestMemory {
    fn frame(&self, mfn: u64) -> &Frame;
    fn frame_mut(&mut self, mfn: u64) -> &mut Frame;

    #[inline]
    fn read_u64(&self, mfn: u64, index: usize) -> u64 {
        u64::from_le_bytes(self.frame(mfn)[index * 8..index * 8 + 8].try_into().unwrap())
    }

    #[inline]
    fn write_u64(&mut self, mfn: u64, index: usize, v: u64) {
        self.frame_mut(mfn)[index * 8..index * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
}
