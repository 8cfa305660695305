//! Cocoon's memory allocator.
//!
//! Three arenas behind one `GlobalAlloc`:
//! - the main heap, a buddy allocator: a small arena in .bss for what boot
//!   needs before the memory map is read, then a region of RAM sized at boot
//!   (`add_region`), for everything small that lives as long as Cocoon;
//! - the table arena, a bump allocator over RAM sized from the number of
//!   frames (`add_tables`), for the large per-frame tables (frame table, M2P,
//!   P2M): allocations of `BIG` bytes or more go there, at their exact size
//!   (a buddy allocator would round 9 MiB up to 16);
//! - the scratch arena, a bump allocator over guest RAM, switched on only
//!   while the kernel is decompressed and the domain built (the guest gets it
//!   back afterwards). Every scratch allocation must be freed before the arena
//!   is switched off; `end_scratch` checks it.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use buddy_system_allocator::LockedHeap;
use spin::Mutex;

/// What boot needs before the memory map is read (boot information, command lines).
const BOOT_HEAP_SIZE: usize = 256 << 10;
/// Allocations from this size on go to the table arena when it has room.
const BIG: usize = 256 << 10;

#[repr(C, align(4096))]
struct Arena([u8; BOOT_HEAP_SIZE]);

static mut BOOT_ARENA: Arena = Arena([0; BOOT_HEAP_SIZE]);

/// A bump allocator that can give back (and grow) its most recent block.
struct Bump {
    start: usize,
    end: usize,
    top: usize,
    /// Start of the most recent live block, for in-place growth and release.
    last: usize,
    live: usize,
    high_water: usize,
}

impl Bump {
    const fn empty() -> Self {
        Bump { start: 0, end: 0, top: 0, last: 0, live: 0, high_water: 0 }
    }

    const fn over(start: usize, len: usize) -> Self {
        Bump { start, end: start + len, top: start, last: start, live: 0, high_water: 0 }
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
    tables: Mutex<Bump>,
    scratch: Mutex<Bump>,
    scratch_on: AtomicBool,
}

// SAFETY: alloc/dealloc route each pointer to the arena that handed it out
// (decided by address), and every arena is behind a lock.
unsafe impl GlobalAlloc for CocoonAllocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if self.scratch_on.load(Ordering::Relaxed) {
            return self.scratch.lock().alloc(l);
        }
        if l.size() >= BIG {
            let p = self.tables.lock().alloc(l);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.main.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        for arena in [&self.scratch, &self.tables] {
            let mut a = arena.lock();
            if a.contains(p as usize) {
                a.dealloc(p as usize, l);
                return;
            }
        }
        // SAFETY: `p` came from the main heap (it is in neither bump arena).
        unsafe { self.main.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        for arena in [&self.scratch, &self.tables] {
            let mut a = arena.lock();
            if a.contains(p as usize) && a.realloc_in_place(p as usize, l, new_size) {
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
    tables: Mutex::new(Bump::empty()),
    scratch: Mutex::new(Bump::empty()),
    scratch_on: AtomicBool::new(false),
};

/// The boot arena; enough until the memory map has been read.
pub fn init() {
    // SAFETY: the arena is used by nothing else, and this runs once.
    unsafe {
        let start = core::ptr::addr_of_mut!(BOOT_ARENA) as usize;
        ALLOCATOR.main.lock().init(start, BOOT_HEAP_SIZE);
    }
}

/// Give the main heap `[start, start + len)` (direct-map addresses of RAM
/// that nothing else uses, for as long as Cocoon runs).
pub fn add_region(start: usize, len: usize) {
    // SAFETY: the caller hands over memory nobody else uses.
    unsafe { ALLOCATOR.main.lock().add_to_heap(start, start + len) };
}

/// The table arena: `[start, start + len)`, as for `add_region`.
pub fn add_tables(start: usize, len: usize) {
    *ALLOCATOR.tables.lock() = Bump::over(start, len);
}

/// Bytes in use: (main heap, table arena), and the main heap's size.
pub fn usage() -> (usize, usize, usize) {
    let m = ALLOCATOR.main.lock();
    (m.stats_alloc_actual(), ALLOCATOR.tables.lock().high_water, m.stats_total_bytes())
}

/// Route new allocations to `[start, start + len)` (direct-map addresses of
/// memory nobody else uses until `end_scratch`).
pub fn begin_scratch(start: usize, len: usize) {
    *ALLOCATOR.scratch.lock() = Bump::over(start, len);
    ALLOCATOR.scratch_on.store(true, Ordering::SeqCst);
}

/// Stop using the scratch arena. Returns its high-water mark, or the number of
/// allocations still live in it (an error: they would point into guest memory).
pub fn end_scratch() -> Result<usize, usize> {
    ALLOCATOR.scratch_on.store(false, Ordering::SeqCst);
    let mut s = ALLOCATOR.scratch.lock();
    if s.live != 0 {
        return Err(s.live);
    }
    let high = s.high_water;
    // Forget the range: its RAM may become the main heap's or the table
    // arena's (the disk reader's does), whose blocks must not be freed here.
    *s = Bump::empty();
    Ok(high)
}
