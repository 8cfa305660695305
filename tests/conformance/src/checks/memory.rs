//! XENMEM_exchange (`memory.h`, Xen 4.17's `memory_exchange`) as a 64-bit PV
//! guest uses it: frames given up (decrease_reservation) are what the
//! hypervisor has free; an exchange swaps unmapped frames of the guest for
//! free ones, writing the new MFNs over the GPFNs it was given and the M2P.

use core::ptr::{addr_of, read_volatile};

use super::{ensure, ensure_eq, Outcome};
use crate::mfn_of;
use crate::xen::*;

#[repr(C)]
#[derive(Clone, Copy)]
struct Reservation {
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
}

#[repr(C)]
struct Exchange {
    input: Reservation,
    output: Reservation,
    nr_exchanged: u64,
}

const _: () = {
    assert!(core::mem::size_of::<Reservation>() == 32);
    assert!(core::mem::size_of::<Exchange>() == 72);
    assert!(core::mem::offset_of!(Exchange, nr_exchanged) == 64);
};

#[repr(C, align(4096))]
struct Pages([[u8; 4096]; 3]);

/// A = given up first, B = exchanged, C = stays mapped.
static mut PAGES: Pages = Pages([[0x5a; 4096]; 3]);

fn page(i: usize) -> u64 {
    addr_of!(PAGES) as u64 + 4096 * i as u64
}

fn m2p(mfn: u64) -> u64 {
    // SAFETY: the M2P Xen maps read-only into every PV guest.
    unsafe { read_volatile((RO_MPT_VIRT_START + 8 * mfn) as *const u64) }
}

fn reservation(list: &mut [u64], order: u32, mem_flags: u32) -> Reservation {
    Reservation {
        extent_start: list.as_mut_ptr() as u64,
        nr_extents: list.len() as u64,
        extent_order: order,
        mem_flags,
        domid: DOMID_SELF as u16,
    }
}

fn exchange(input: Reservation, output: Reservation) -> (i64, u64) {
    let mut x = Exchange { input, output, nr_exchanged: 0 };
    let rc = hypercall(__HYPERVISOR_memory_op, [XENMEM_exchange, &mut x as *mut Exchange as u64, 0, 0, 0]);
    (rc, x.nr_exchanged)
}

pub fn exchange_swaps_frames() -> Outcome {
    let (a, b, c) = (mfn_of(page(0)), mfn_of(page(1)), mfn_of(page(2)));
    let pfn_b = (page(1) - VIRT_BASE) >> 12;
    // Give up A: unmapped first, as a balloon driver does.
    ensure_eq!(update_va_mapping(page(0), 0, UVMF_INVLPG), 0, "unmapping A");
    let mut list = [a];
    let mut r = reservation(&mut list, 0, 0);
    ensure_eq!(
        hypercall(__HYPERVISOR_memory_op, [XENMEM_decrease_reservation, &mut r as *mut _ as u64, 0, 0, 0]),
        1,
        "decrease_reservation of A"
    );
    // Checks before any work: orders, the conservation of pages.
    let (mut inl, mut outl) = ([c], [pfn_b]);
    ensure_eq!(
        exchange(reservation(&mut inl, 10, 0), reservation(&mut outl, 10, 0)).0,
        -XEN_EPERM,
        "an exchange of order-10 extents"
    );
    ensure_eq!(
        exchange(reservation(&mut inl, 0, 0), reservation(&mut outl, 1, 0)).0,
        -XEN_EINVAL,
        "one page in, two out"
    );
    // C is still mapped: it cannot be taken (steal_page fails).
    let (rc, done) = exchange(reservation(&mut inl, 0, 0), reservation(&mut outl, 0, 0));
    ensure_eq!((rc, done), (-XEN_EINVAL, 0), "exchanging a mapped page: (rc, nr_exchanged)");
    ensure_eq!(m2p(c), (page(2) - VIRT_BASE) >> 12, "C's M2P entry after the refused exchange");
    // B, unmapped, for a frame below 4 GiB placed at B's GPFN.
    ensure_eq!(update_va_mapping(page(1), 0, UVMF_INVLPG), 0, "unmapping B");
    let (mut inl, mut outl) = ([b], [pfn_b]);
    let (rc, done) = exchange(reservation(&mut inl, 0, 0), reservation(&mut outl, 0, 32));
    ensure_eq!((rc, done), (0, 1), "exchanging B: (rc, nr_exchanged)");
    let new = outl[0];
    ensure!(new != b && new < (1 << 20), "the new frame {new:#x} (B was {b:#x}; below 4 GiB asked)");
    ensure_eq!(m2p(new), pfn_b, "the new frame's M2P entry");
    ensure_eq!(m2p(b), INVALID_M2P_ENTRY, "B's old frame's M2P entry");
    ensure_eq!(
        update_va_mapping(page(1), (b << 12) | _PAGE_PRESENT | _PAGE_RW, UVMF_INVLPG),
        -XEN_EINVAL,
        "mapping B's old frame"
    );
    ensure_eq!(
        update_va_mapping(page(1), (new << 12) | _PAGE_PRESENT | _PAGE_RW, UVMF_INVLPG),
        0,
        "mapping the new frame at B"
    );
    // SAFETY: page B, mapped again just above.
    let first = unsafe { read_volatile(page(1) as *const u64) };
    ensure_eq!(first, 0, "the new frame's contents (zeroed)");
    // Nothing free below 8 KiB (frames 0 and 1): -ENOMEM, the input untouched.
    ensure_eq!(update_va_mapping(page(2), 0, UVMF_INVLPG), 0, "unmapping C");
    let (mut inl, mut outl) = ([c], [(page(2) - VIRT_BASE) >> 12]);
    let (rc, done) = exchange(reservation(&mut inl, 0, 0), reservation(&mut outl, 0, 13));
    ensure_eq!((rc, done), (-XEN_ENOMEM, 0), "an exchange for a frame below 8 KiB: (rc, nr_exchanged)");
    ensure_eq!(m2p(c), (page(2) - VIRT_BASE) >> 12, "C's M2P entry after it");
    ensure_eq!(update_va_mapping(page(2), (c << 12) | _PAGE_PRESENT | _PAGE_RW, UVMF_INVLPG), 0, "mapping C again");
    Ok(())
}
