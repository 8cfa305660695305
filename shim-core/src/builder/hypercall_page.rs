//! The hypercall page of a 64-bit PV guest (`pv_ring3_init_hypercall_page`).
//!
//! 32 bytes per hypercall: `push %rcx; push %r11; mov $nr,%eax; syscall;
//! pop %r11; pop %rcx; ret`. Slot 23 (iret) is entered by a jump with the
//! iret frame already pushed, so it pushes %rax too and never returns.

use super::memory::Frame;
use crate::abi::__HYPERVISOR_iret;

pub const HYPERCALL_STUB_SIZE: usize = 32;

pub fn fill(page: &mut Frame) {
    page.fill(0xcc);
    for (nr, stub) in page.chunks_exact_mut(HYPERCALL_STUB_SIZE).enumerate() {
        let n = (nr as u32).to_le_bytes();
        if nr as u64 == __HYPERVISOR_iret {
            // push %rcx; push %r11; push %rax; mov $23,%eax; syscall
            stub[..11].copy_from_slice(&[0x51, 0x41, 0x53, 0x50, 0xb8, n[0], n[1], n[2], n[3], 0x0f, 0x05]);
        } else {
            // push %rcx; push %r11; mov $nr,%eax; syscall; pop %r11; pop %rcx; ret
            stub[..14]
                .copy_from_slice(&[0x51, 0x41, 0x53, 0xb8, n[0], n[1], n[2], n[3], 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs() {
        let mut p = [0u8; 4096];
        fill(&mut p);
        assert_eq!(&p[..14], &[0x51, 0x41, 0x53, 0xb8, 0, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
        assert_eq!(p[14], 0xcc);
        let s29 = &p[29 * 32..29 * 32 + 14];
        assert_eq!(&s29[3..8], &[0xb8, 29, 0, 0, 0]);
        assert_eq!(&p[23 * 32..23 * 32 + 12], &[0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05, 0xcc]);
        assert_eq!(&p[127 * 32 + 3..127 * 32 + 8], &[0xb8, 127, 0, 0, 0]);
    }
}
