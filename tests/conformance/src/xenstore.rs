//! Just enough of a xenstore client to read one key: the ring in the
//! store page (`io/xs_wire.h`, `struct xenstore_domain_interface`), one
//! XS_READ, EVTCHNOP_send to the store's port, and a poll for the answer.

use core::sync::atomic::{fence, Ordering};

use crate::xen::*;

const XS_READ: u32 = 2;
const XS_ERROR: u32 = 16;
const RING: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// Where the store page is mapped.
static mut STORE: Page = Page([0; 4096]);

fn page() -> *mut u8 {
    core::ptr::addr_of_mut!(STORE) as *mut u8
}

fn idx(off: usize) -> *mut u32 {
    // SAFETY: an index word inside the store page.
    unsafe { page().add(off) as *mut u32 }
}

fn rd(off: usize) -> u32 {
    // SAFETY: as idx; the other end writes it, hence volatile.
    unsafe { core::ptr::read_volatile(idx(off)) }
}

fn wr(off: usize, v: u32) {
    // SAFETY: as idx.
    unsafe { core::ptr::write_volatile(idx(off), v) }
}

fn put(ring: usize, prod: &mut u32, bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: a byte of the request ring.
        unsafe { core::ptr::write_volatile(page().add(ring + (*prod as usize % RING)), b) };
        *prod = prod.wrapping_add(1);
    }
}

fn get(cons: &mut u32) -> u8 {
    // SAFETY: a byte of the response ring.
    let b = unsafe { core::ptr::read_volatile(page().add(RING + (*cons as usize % RING))) };
    *cons = cons.wrapping_add(1);
    b
}

/// Read `key` (relative to the domain's home) into `out`; its length.
pub fn read(key: &str, out: &mut [u8]) -> Result<usize, &'static str> {
    let si = crate::start_info();
    let pte = (si.store_mfn << 12) | _PAGE_PRESENT | _PAGE_RW;
    if update_va_mapping(page() as u64, pte, UVMF_INVLPG) != 0 {
        return Err("cannot map the store page");
    }
    let mut prod = rd(REQ_PROD);
    let len = key.len() as u32 + 1;
    let header = [XS_READ, 0x77, 0, len];
    for w in header {
        put(0, &mut prod, &w.to_le_bytes());
    }
    put(0, &mut prod, key.as_bytes());
    put(0, &mut prod, &[0]);
    fence(Ordering::SeqCst);
    wr(REQ_PROD, prod);
    let mut send = si.store_evtchn;
    op(__HYPERVISOR_event_channel_op, EVTCHNOP_send, &mut send);
    let mut cons = rd(RSP_CONS);
    let mut spins = 0u64;
    while rd(RSP_PROD).wrapping_sub(cons) < 16 {
        spins += 1;
        if spins > 100_000_000 {
            return Err("no answer from xenstore");
        }
        core::hint::spin_loop();
    }
    let mut h = [0u32; 4];
    for w in h.iter_mut() {
        *w = u32::from_le_bytes([get(&mut cons), get(&mut cons), get(&mut cons), get(&mut cons)]);
    }
    while rd(RSP_PROD).wrapping_sub(cons) < h[3] {
        core::hint::spin_loop();
    }
    let n = (h[3] as usize).min(out.len());
    for b in out.iter_mut().take(n) {
        *b = get(&mut cons);
    }
    for _ in n..h[3] as usize {
        get(&mut cons);
    }
    wr(RSP_CONS, cons);
    let _ = rd(REQ_CONS);
    if h[0] == XS_ERROR {
        return Err("xenstore answered an error");
    }
    Ok(n)
}

/// The domain's id, from its `domid` key.
pub fn domid() -> Result<u16, &'static str> {
    let mut buf = [0u8; 16];
    let n = read("domid", &mut buf)?;
    let s = core::str::from_utf8(&buf[..n]).map_err(|_| "domid is not text")?;
    s.trim_end_matches('\0').parse().map_err(|_| "domid is not a number")
}
