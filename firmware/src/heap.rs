//! Cocoon's heap: a buddy allocator over a static arena in .bss.

use buddy_system_allocator::LockedHeap;

const HEAP_SIZE: usize = 8 << 20;

#[repr(C, align(4096))]
struct Arena([u8; HEAP_SIZE]);

static mut ARENA: Arena = Arena([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

pub fn init() {
    // SAFETY: the arena is used by nothing else, and this runs once.
    unsafe {
        let start = core::ptr::addr_of_mut!(ARENA) as usize;
        HEAP.lock().init(start, HEAP_SIZE);
    }
}
