//! The guest's PV console ring (`io/console.h`), bridged by Cocoon to its
//! own console (COM1 in the standalone backend).

use core::mem::offset_of;

use crate::abi::{XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};
use crate::builder::GuestMemory;

const IN: usize = offset_of!(XenconsInterface, input);
const IN_SIZE: u32 = XENCONS_IN_SIZE as u32;
const OUT: usize = offset_of!(XenconsInterface, output);
const OUT_SIZE: u32 = XENCONS_OUT_SIZE as u32;
const IN_CONS: usize = offset_of!(XenconsInterface, in_cons);
const IN_PROD: usize = offset_of!(XenconsInterface, in_prod);
const OUT_CONS: usize = offset_of!(XenconsInterface, out_cons);
const OUT_PROD: usize = offset_of!(XenconsInterface, out_prod);

fn rd(f: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(f[o..o + 4].try_into().unwrap())
}

fn wr(f: &mut [u8], o: usize, v: u32) {
    f[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

/// Take everything the guest wrote; `sink` gets it in order.
pub fn drain_output(mem: &mut impl GuestMemory, mfn: u64, mut sink: impl FnMut(&[u8])) -> bool {
    let f = mem.frame_mut(mfn);
    let (cons, prod) = (rd(f, OUT_CONS), rd(f, OUT_PROD));
    let n = prod.wrapping_sub(cons);
    if n == 0 || n > OUT_SIZE {
        return false;
    }
    let mut buf = [0u8; OUT_SIZE as usize];
    for i in 0..n {
        buf[i as usize] = f[OUT + (cons.wrapping_add(i) % OUT_SIZE) as usize];
    }
    wr(f, OUT_CONS, prod);
    sink(&buf[..n as usize]);
    true
}

/// Give the guest one input byte; false when its ring is full.
pub fn push_input(mem: &mut impl GuestMemory, mfn: u64, b: u8) -> bool {
    let f = mem.frame_mut(mfn);
    let (cons, prod) = (rd(f, IN_CONS), rd(f, IN_PROD));
    if prod.wrapping_sub(cons) >= IN_SIZE {
        return false;
    }
    f[IN + (prod % IN_SIZE) as usize] = b;
    wr(f, IN_PROD, prod.wrapping_add(1));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VecMemory;

    #[test]
    fn ring_wraps() {
        let mut m = VecMemory::new(0, 1);
        {
            let f = m.frame_mut(0);
            wr(f, OUT_CONS, 2040);
            wr(f, OUT_PROD, 2050);
            for i in 0..10u32 {
                f[OUT + ((2040 + i) % 2048) as usize] = b'a' + i as u8;
            }
        }
        let mut got = alloc::vec::Vec::new();
        assert!(drain_output(&mut m, 0, |b| got.extend_from_slice(b)));
        assert_eq!(got, b"abcdefghij");
        assert!(!drain_output(&mut m, 0, |_| panic!("nothing left")));
        assert!(push_input(&mut m, 0, b'x'));
        assert_eq!(m.frame(0)[IN], b'x');
    }
}
