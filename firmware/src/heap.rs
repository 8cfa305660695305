//! Cocoon's memory allocator.
//!
//! Two arenas behind one `GlobalAlloc`:
//! - the main heap, a buddy allocator over a static arena in .bss, for
//!   everything that lives as long as Cocoon;
//! - the scratch arena, a bump allocator over guest RAM, switched on only
//!   while the kernel is decompressed and the domain built (tens of MiB that
//!   the guest gets back afterwards). Every scratch allocation must be freed
//!   before the arena is switched off; `end_scratch` checks it.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use buddy_system_allocator::LockedHeap;
use spin::Mutex;

const HEAP_SIZE: usize = 32 << 20;

#[repr(C, align(4096))]
struct Arena([u8; HEAP_SIZE]);

static mut ARENA: Arena = Arena([0; HEAP_SIZE]);

/// A bump allocator that can give back (and grow) its most recent block.
struct Scratch {
    start: usize,
    end: usize,
    top: usize,
    /// Start of the most recent live block, for in-place growth and release.
    last: usize,
    live: usize,
    high_water: usize,
}

impl Scratch {
    const fn empty() -> Self {
        Scratch { start: 0, end: 0, top: 0, last: 0, live: 0, high_water: 0 }
    }

    fn contains(&self, p: usize) -> bool {
        p >= self.start && p < self.end
    }

    fn alloc(&mut self, l: Layout) -> *mut u8 {
        let p = (self.top + l.align() - 1) & !(l.align() - 1);
        match p.checked_add(l.size()) {
            Some(e) if e <= self.end => {
                self.top = e;
                self.last = p;
                self.live += 1;
                self.high_water = self.high_water.max(e - self.start);
                p as *mut u8
            }
            _ => null_mut(),
        }
    }

    fn dealloc(&mut self, p: usize, l: Layout) {
        self.live -= 1;
        if p == self.last && p + l.size() == self.top {
            self.top = p;
        }
        if self.live == 0 {
            self.top = self.start;
        }
    }

    /// Grow or shrink the most recent block in place, if that is the one asked for.
    fn realloc_in_place(&mut self, p: usize, l: Layout, new_size: usize) -> bool {
        if p == self.last && p + l.size() == self.top && p + new_size <= self.end {
            self.top = p + new_size;
            self.high_water = self.high_water.max(self.top - self.start);
            return true;
        }
        false
    }
}

pub struct CocoonAllocator {
    main: LockedHeap<32>,
    scratch: Mutex<Scratch>,
    scratch_on: AtomicBool,
}

// SAFETY: alloc/dealloc route each pointer to the arena that handed it out
// (decided by address), and both arenas are behind locks.
unsafe impl GlobalAlloc for CocoonAllocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if self.scratch_on.load(Ordering::Relaxed) {
            return self.scratch.lock().alloc(l);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.main.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let mut s = self.scratch.lock();
        if s.contains(p as usize) {
            s.dealloc(p as usize, l);
            return;
        }
        drop(s);
        // SAFETY: `p` came from the main heap (it is not in the scratch arena).
        unsafe { self.main.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        {
            let mut s = self.scratch.lock();
            if s.contains(p as usize) && s.realloc_in_place(p as usize, l, new_size) {
                return p;
            }
        }
        // SAFETY: the default strategy: allocate, copy, free, with the caller's guarantees.
        unsafe {
            let new_l = Layout::from_size_align_unchecked(new_size, l.align());
            let q = self.alloc(new_l);
            if !q.is_null() {
                core::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                self.dealloc(p, l);
            }
            q
        }
    }
}

#[global_allocator]
pub static ALLOCATOR: CocoonAllocator = CocoonAllocator {
    main: LockedHeap::empty(),
    scratch: Mutex::new(Scratch::empty()),
    scratch_on: AtomicBool::new(false),
};

pub fn init() {
    // SAFETY: the arena is used by nothing else, and this runs once.
    unsafe {
        let start = core::ptr::addr_of_mut!(ARENA) as usize;
        ALLOCATOR.main.lock().init(start, HEAP_SIZE);
    }
}

/// Route new allocations to `[start, start + len)` (direct-map addresses of
/// memory nobody else uses until `end_scratch`).
pub fn begin_scratch(start: usize, len: usize) {
    let mut s = ALLOCATOR.scratch.lock();
    *s = Scratch { start, end: start + len, top: start, last: start, live: 0, high_water: 0 };
    ALLOCATOR.scratch_on.store(true, Ordering::SeqCst);
}

/// Stop using the scratch arena. Returns its high-water mark, or the number of
/// allocations still live in it (an error: they would point into guest memory).
pub fn end_scratch() -> Result<usize, usize> {
    ALLOCATOR.scratch_on.store(false, Ordering::SeqCst);
    let s = ALLOCATOR.scratch.lock();
    if s.live != 0 {
        return Err(s.live);
    }
    Ok(s.high_water)
}
