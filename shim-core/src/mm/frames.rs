//! Page ownership and types: what keeps a PV guest from mapping Cocoon's
//! frames or writing its own live page tables (Xen's `get_page_type` scheme).
//!
//! Every machine frame has an owner and, while in use as a page table, a
//! descriptor page or a writable page, a type with a use count. A frame may
//! take a page-table type only when nothing maps it writable, and may be
//! mapped writable only while it has no such type. Tables are validated entry by entry when they
//! take their type, and release what their entries hold when they lose it.

use alloc::vec;
use alloc::vec::Vec;

use crate::abi::*;
use crate::builder::{Frame, GuestMemory};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Owner {
    /// Cocoon's own frames (and anything that is nobody's).
    None,
    Guest,
    /// Cocoon's frames the guest may map writable (shared_info, grant frames).
    SharedWithGuest,
    /// Guest RAM the guest gave up (`XENMEM_decrease_reservation`) while
    /// something still referred to it: no new mapping, type or hold can take
    /// it; it goes back to Xen once [`FrameInfo::unreferenced`].
    Leaving,
    /// Guest RAM given back to Xen (unpopulated in Cocoon's physmap): never
    /// read or written, until `XENMEM_populate_physmap` gives it to the guest again.
    Released,
}

/// Page types (levels 1-4 are page tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    None = 0,
    L1 = 1,
    L2 = 2,
    L3 = 3,
    L4 = 4,
    SegDesc = 5,
    /// Mapped writable by L1 entries, or held writable by Cocoon (Xen's
    /// `PGT_writable_page`): `type_count` counts those.
    Writable = 6,
}

impl PageType {
    /// The page-table level (1-4) of a table type.
    pub fn level(self) -> Option<u8> {
        match self {
            PageType::L1 | PageType::L2 | PageType::L3 | PageType::L4 => Some(self as u8),
            _ => None,
        }
    }

    pub fn table(level: u8) -> PageType {
        match level {
            1 => PageType::L1,
            2 => PageType::L2,
            3 => PageType::L3,
            _ => PageType::L4,
        }
    }
}

bitflags::bitflags! {
    /// A frame's flags (see [`FrameInfo::flags`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FrameFlags: u8 {
        /// Pinned by the guest (`MMUEXT_PIN_*`): one use of its type.
        const PINNED = 1;
        /// An L4 whose kernel half is the shared one (see
        /// [`SharedKernelHalf`]): its entries there hold no references of
        /// their own.
        const SHARES_KERNEL_HALF = 2;
    }
}

/// What Cocoon knows of one machine frame. Everything that refers to a
/// frame is counted, as Xen's `count_info` and `type_info`: present L1
/// entries mapping it and Cocoon's own holds in [`refs`](Self::refs), its
/// uses as its type in [`type_count`](Self::type_count) (as a page table or
/// descriptor page: references from higher-level tables, pins, base tables,
/// GDT frames, with one use for all the L4s sharing a kernel half, see
/// `SharedKernelHalf`; as a writable page: the writable mappings and
/// holds, which `refs` counts too). A frame neither counts is referenced by nothing, and
/// only such a frame may leave the guest (ballooning, `hypercall::memory`).
#[derive(Clone, Copy, Debug)]
pub struct FrameInfo {
    pub owner: Owner,
    pub ty: PageType,
    pub flags: FrameFlags,
    /// While the frame is a page table: which groups of 64 entries may hold
    /// a present entry (bit g: entries 64g..64g+63). Set when the table is
    /// validated and when an update writes a present entry, never cleared
    /// while typed, so releasing the table skips the groups left clear.
    pub present: u8,
    /// Uses as the page type `ty` (the type is dropped when it reaches 0).
    pub type_count: u32,
    /// Present L1 entries mapping this frame (read-only or writable), and
    /// Cocoon's long-lived holds ([`FrameTable::get_ref`], `get_writable`).
    pub refs: u32,
}

impl FrameInfo {
    #[inline]
    pub fn pinned(&self) -> bool {
        self.flags.contains(FrameFlags::PINNED)
    }

    /// Nothing maps, types or holds the frame.
    #[inline]
    pub fn unreferenced(&self) -> bool {
        self.refs == 0 && self.type_count == 0
    }

    /// L1 entries mapping the frame writable, and Cocoon's writable holds
    /// ([`FrameTable::get_writable`]).
    pub fn writable(&self) -> u32 {
        if self.ty == PageType::Writable {
            self.type_count
        } else {
            0
        }
    }
}

const EMPTY: FrameInfo = FrameInfo {
    owner: Owner::None,
    ty: PageType::None,
    flags: FrameFlags::empty(),
    present: 0,
    type_count: 0,
    refs: 0,
};
// Four bytes of flags and two counts: 12 bytes a frame (0.3% of RAM).
const _: () = assert!(core::mem::size_of::<FrameInfo>() == 12);

/// Entries per bit of [`FrameInfo::present`].
const PRESENT_GROUP: usize = L1_PAGETABLE_ENTRIES / 8;

/// Slots of [`FrameTable`]'s chunk masks: a power of two (16 bytes a slot).
const CHUNK_MASK_SLOTS: usize = 1024;

/// Why a page-table operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmError {
    /// Not a frame the guest may use.
    NotOwned(u64),
    /// The frame already has another type, or is mapped writable.
    TypeConflict(u64),
    /// A writable mapping of a page table or descriptor page.
    WritableTable(u64),
    /// Superpage or reserved bits.
    BadEntry(u64),
    ReservedSlot,
    /// The frame's reference count is at its limit (Xen's `get_page` fails the same way).
    TooManyRefs(u64),
    /// The update would make a frame a page table, and the caller has not
    /// flushed the TLBs first (see [`FrameTable::update_entry`]): nothing changed.
    Unflushed,
}

impl MmError {
    pub fn errno(self) -> i64 {
        -XEN_EINVAL
    }
}

/// Bits a guest may not set in an L1 entry (beyond the address): none of the
/// software/reserved bits Xen keeps for itself, and no global mappings (the
/// kernel/user switch reloads CR3 and must flush everything).
const L1_STRIP: u64 = _PAGE_GLOBAL;
/// Bits that make an L2-L4 entry unusable for a PV guest.
const LX_DISALLOW: u64 = _PAGE_PSE;

/// Tables that may take part in linear page tables at once (see [`LinearCounts`]).
pub const LINEAR_TABLES: usize = 64;

/// Xen's `linear_pt_count` for the few tables that have one: a linear
/// (same-level) entry pointing at *another* table counts +1 in the table
/// holding it and -1 in the table it points at, and no table may be both
/// (Xen's `inc_linear_entries`/`inc_linear_uses`: no chains, which keeps
/// releasing a table from recursing through them, XSA-240). Linux uses
/// none and a recursive slot pointing at its own table counts nothing, so
/// Cocoon keeps these counts beside the frame table, for up to
/// [`LINEAR_TABLES`] tables, rather than in every frame's 12 bytes.
#[derive(Clone, Copy)]
struct LinearCounts {
    slots: [(u64, i32); LINEAR_TABLES],
    /// A linear entry was refused because every slot is in use (logged once).
    full_logged: bool,
}

impl LinearCounts {
    const fn new() -> Self {
        LinearCounts { slots: [(0, 0); LINEAR_TABLES], full_logged: false }
    }

    fn get(&self, mfn: u64) -> i32 {
        self.slots.iter().find(|&&(m, c)| c != 0 && m == mfn).map_or(0, |&(_, c)| c)
    }

    /// Move `mfn`'s count by `delta` (±1), allowed only while it keeps the
    /// sign `delta` has (so contained entries and uses never mix).
    fn step(&mut self, mfn: u64, delta: i32) -> bool {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.1 != 0 && s.0 == mfn) {
            let next = slot.1 + delta;
            if next.signum() != delta.signum() {
                return false;
            }
            slot.1 = next;
            return true;
        }
        match self.slots.iter_mut().find(|s| s.1 == 0) {
            Some(slot) => {
                *slot = (mfn, delta);
                true
            }
            None => {
                if !self.full_logged {
                    self.full_logged = true;
                    log::warn!(
                        "linear page tables: more than {LINEAR_TABLES} tables in linear use at once; further linear entries are refused"
                    );
                }
                false
            }
        }
    }

    /// Undo one [`step`](Self::step) of `-delta`'s sign.
    fn unstep(&mut self, mfn: u64, delta: i32) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.1 != 0 && s.0 == mfn) {
            slot.1 += delta;
        } else {
            debug_assert!(false, "linear count of {mfn:#x} released more often than taken");
        }
    }
}

/// The whole frame table, indexed by machine frame.
/// The first L4 slot of the guest kernel's half above Cocoon's slots.
const KERNEL_HALF_FIRST: usize = HYPERVISOR_L4_LAST + 1;
/// The chunks of eight entries (as in [`present_chunks`]) of that half.
const KERNEL_HALF_CHUNKS: u64 = !0 << (KERNEL_HALF_FIRST / 8);
const _: () = assert!(KERNEL_HALF_FIRST.is_multiple_of(8) && KERNEL_HALF_FIRST < L4_PAGETABLE_ENTRIES);

/// The kernel half of L4 tables (slots [`KERNEL_HALF_FIRST`]..512), shared.
/// A PV Linux gives every process the same kernel half (its vmalloc L3s
/// are preallocated: 68 present entries in 6.1), and each L4 that took and
/// dropped a use of every L3 there cost a fork about 4k instructions. The
/// L4s whose kernel half is exactly this one's entries
/// ([`FrameFlags::SHARES_KERNEL_HALF`]) hold no use of those L3s each:
/// this holds one use of each for all of them while it has `users`. So
/// those L3s are typed exactly while some L4 refers to them, as in Xen;
/// only their count is smaller. Made from an L4 validated while it has no
/// users (its entries' uses become this one's); an update of a sharing
/// L4's kernel half first gives that L4 its own uses again
/// ([`FrameTable::unshare_kernel_half`]).
struct SharedKernelHalf {
    /// The entries, as validated (adjusted) in the L4 it was made from.
    entries: [u64; L4_PAGETABLE_ENTRIES - KERNEL_HALF_FIRST],
    /// Its chunks holding a present entry.
    chunks: u64,
    /// L4 tables sharing it; 0: none, and it holds nothing.
    users: u32,
}

pub struct FrameTable {
    info: Vec<FrameInfo>,
    /// Frames above the table (a real Xen's special pages, such as the xenstore
    /// and console rings): shared with the guest, never typed.
    shared_above: Vec<u64>,
    /// Cocoon's L4 entries for slots 256..=271, written into every guest L4.
    pub hypervisor_l4: [u64; 16],
    linear: LinearCounts,
    /// The exact present-chunk masks (as in [`present_chunks`]) of recently
    /// validated tables, `(mfn + 1, mask)` in slot `mfn % CHUNK_MASK_SLOTS`
    /// (0: empty): noted at validation, kept up by every update, taken at
    /// release, so that releasing such a table needs no pass over it. A
    /// table whose slot another one took is released as before, by a pass
    /// over its [`FrameInfo::present`] groups. (Beside the frame table, not
    /// in it: 8 bytes more a frame would break the footprint limit.)
    chunk_masks: alloc::boxed::Box<[(u64, u64); CHUNK_MASK_SLOTS]>,
    kernel_half: alloc::boxed::Box<SharedKernelHalf>,
}

#[inline]
fn entry_mfn(e: u64) -> u64 {
    (e & PADDR_MASK) >> PAGE_SHIFT
}

/// The entries of `chunk` or'ed together.
#[inline(always)]
fn or_entries(chunk: &[[u8; 8]]) -> u64 {
    chunk.iter().fold(0, |a, e| a | u64::from_le_bytes(*e))
}

/// Which chunks of eight entries of table `f` hold a present entry (bit
/// `c`: entries `8c..8c + 8`), looking only in the entry groups `groups`
/// names (see [`FrameInfo::present`]). One pass over the table, not inlined
/// (so compiled at shim-core's optimisation level, see Cargo.toml).
#[inline(never)]
fn present_chunks(f: &Frame, groups: u8) -> u64 {
    let (ents, _) = f.as_chunks::<8>();
    let mut mask = 0u64;
    // The groups first (one load an entry): most groups of a fresh or sparse
    // table are empty.
    let groups = groups & present_groups(f);
    for (g, group) in ents.chunks_exact(PRESENT_GROUP).enumerate() {
        if groups & (1 << g) == 0 {
            continue;
        }
        for (k, chunk) in group.chunks_exact(8).enumerate() {
            mask |= (or_entries(chunk) & _PAGE_PRESENT) << (g * (PRESENT_GROUP / 8) + k);
        }
    }
    mask
}

/// Which groups of entries (as in [`FrameInfo::present`]) of table `f` hold
/// a present entry. Not inlined: inlined, the compiler keeps the loads for
/// the chunk pass after it, in more registers than there are.
#[inline(never)]
fn present_groups(f: &Frame) -> u8 {
    let (ents, _) = f.as_chunks::<8>();
    ents.chunks_exact(PRESENT_GROUP)
        .enumerate()
        .fold(0, |m, (g, group)| m | (((or_entries(group) & _PAGE_PRESENT) as u8) << g))
}

/// The groups of 64 entries (as in [`FrameInfo::present`]) holding one of
/// the chunks `chunks` names: bit `g` for a non-zero byte `g`.
#[inline]
fn groups_of_chunks(chunks: u64) -> u8 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The top bit of each byte: set for a non-zero byte.
    let tops = (((chunks & LOW7) + LOW7) | chunks) & !LOW7;
    // Bit 8g + 7 to bit 56 + g (each product bit lands apart: no carries).
    ((tops >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// Entries `8c..8c + 8` of table `f` (chunk `c`, as in [`present_chunks`]).
#[inline(always)]
fn chunk_entries(f: &Frame, c: usize) -> [u64; 8] {
    let (ents, _) = f.as_chunks::<8>();
    core::array::from_fn(|k| u64::from_le_bytes(ents[c * 8 + k]))
}

/// The chunks (as in [`present_chunks`]) holding an entry below index `upto`.
#[inline(always)]
fn below_chunk_of(upto: usize) -> u64 {
    if upto >= L1_PAGETABLE_ENTRIES {
        !0
    } else {
        (1u64 << upto.div_ceil(8)) - 1
    }
}

impl FrameTable {
    pub fn new(max_mfn: u64, hypervisor_l4: [u64; 16]) -> Self {
        FrameTable {
            info: vec![EMPTY; max_mfn as usize + 1],
            shared_above: Vec::new(),
            hypervisor_l4,
            linear: LinearCounts::new(),
            // Built on the heap, not on the stack (16 KiB); the length is the array's.
            chunk_masks: vec![(0, 0); CHUNK_MASK_SLOTS].into_boxed_slice().try_into().expect("CHUNK_MASK_SLOTS slots"),
            kernel_half: alloc::boxed::Box::new(SharedKernelHalf {
                entries: [0; L4_PAGETABLE_ENTRIES - KERNEL_HALF_FIRST],
                chunks: 0,
                users: 0,
            }),
        }
    }

    /// Cocoon's memory for a table of frames `0..=max_mfn`.
    pub const fn bytes_for(max_mfn: u64) -> u64 {
        (max_mfn + 1) * core::mem::size_of::<FrameInfo>() as u64
    }

    pub fn len(&self) -> u64 {
        self.info.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }

    /// Record who owns `mfn`. A frame above the table can only be shared with the guest.
    pub fn set_owner(&mut self, mfn: u64, owner: Owner) {
        match self.info.get_mut(mfn as usize) {
            Some(f) => f.owner = owner,
            None if owner == Owner::None => self.shared_above.retain(|&m| m != mfn),
            None if !self.shared_above.contains(&mfn) => self.shared_above.push(mfn),
            None => {}
        }
    }

    pub fn get(&self, mfn: u64) -> Option<&FrameInfo> {
        self.info.get(mfn as usize)
    }

    /// The first frame from `from` on, wrapping around once, that `pred` picks.
    pub fn find_from(&self, from: u64, pred: impl Fn(&FrameInfo) -> bool) -> Option<u64> {
        let from = (from as usize).min(self.info.len());
        let (head, tail) = self.info.split_at(from);
        let hit = |fs: &[FrameInfo], base: usize| fs.iter().position(&pred).map(|i| (base + i) as u64);
        hit(tail, from).or_else(|| hit(head, 0))
    }

    pub fn owned_by_guest(&self, mfn: u64) -> bool {
        matches!(self.get(mfn), Some(f) if f.owner == Owner::Guest)
    }

    /// Adjust a guest L1 entry the way Xen does for a 64-bit PV guest: the
    /// guest kernel runs in ring 3, so every present mapping must be user-accessible.
    #[inline(always)]
    pub fn adjust_l1e(e: u64) -> u64 {
        if e & _PAGE_PRESENT == 0 {
            return e;
        }
        let mut e = e & !L1_STRIP;
        if e & _PAGE_USER == 0 {
            e |= _PAGE_USER | _PAGE_GUEST_KERNEL;
        }
        e
    }

    pub fn adjust_lxe(e: u64) -> u64 {
        if e & _PAGE_PRESENT == 0 {
            e
        } else {
            e | _PAGE_USER
        }
    }

    /// Take the references a new L1 entry needs.
    #[inline(always)]
    pub fn get_l1e(&mut self, e: u64) -> Result<(), MmError> {
        if e & _PAGE_PRESENT == 0 {
            return Ok(());
        }
        let mfn = entry_mfn(e);
        let Some(f) = self.info.get_mut(mfn as usize) else {
            // Frames above the table are never page tables: nothing to count.
            return if self.shared_above.contains(&mfn) { Ok(()) } else { Err(MmError::NotOwned(mfn)) };
        };
        if !matches!(f.owner, Owner::Guest | Owner::SharedWithGuest) {
            return Err(MmError::NotOwned(mfn));
        }
        let Some(refs) = f.refs.checked_add(1) else {
            return Err(MmError::TooManyRefs(mfn));
        };
        if e & _PAGE_RW != 0 {
            if f.type_count > 0 && f.ty != PageType::Writable {
                return Err(MmError::WritableTable(mfn));
            }
            f.ty = PageType::Writable;
            // Cannot overflow: the writable uses are some of `refs`.
            f.type_count += 1;
        }
        f.refs = refs;
        Ok(())
    }

    #[inline(always)]
    pub fn put_l1e(&mut self, e: u64) {
        if e & _PAGE_PRESENT != 0 {
            if let Some(f) = self.info.get_mut(entry_mfn(e) as usize) {
                Self::drop_ref(f, e & _PAGE_RW != 0);
            }
        }
    }

    /// Drop one reference (a writable one with `writable`). A count already
    /// at 0 would be a bookkeeping bug: it wraps to "referenced forever"
    /// rather than letting a frame in use leave the guest.
    #[inline(always)]
    fn drop_ref(f: &mut FrameInfo, writable: bool) {
        debug_assert!(
            f.refs > 0 && (!writable || (f.ty == PageType::Writable && f.type_count > 0)),
            "unbalanced frame references: {f:?}"
        );
        f.refs = f.refs.wrapping_sub(1);
        if writable {
            f.type_count = f.type_count.wrapping_sub(1);
            if f.type_count == 0 {
                f.ty = PageType::None;
            }
        }
    }

    /// Take the references entry `e` of table `table`, of level `level`
    /// (2..=4), needs.
    #[inline]
    pub fn get_lxe(&mut self, mem: &mut impl GuestMemory, table: u64, level: u8, e: u64) -> Result<bool, MmError> {
        if e & _PAGE_PRESENT == 0 {
            return Ok(false);
        }
        if e & LX_DISALLOW != 0 {
            return Err(MmError::BadEntry(e));
        }
        let (mfn, ty) = (entry_mfn(e), PageType::table(level - 1));
        // Already a table of that type (shared kernel tables, L1s pinned
        // before their L2): one more use, as in `get_type`.
        if let Some(f) = self.info.get_mut(mfn as usize) {
            if f.owner == Owner::Guest && f.type_count > 0 && f.ty == ty {
                f.type_count += 1;
                return Ok(false);
            }
        }
        match self.get_type(mem, mfn, ty) {
            // As Xen, only once the entry failed as an ordinary one.
            Err(MmError::TypeConflict(_)) => self.get_linear(table, level, e).map(|_| false),
            r => r,
        }
    }

    /// Xen's `get_lN_linear_pagetable` (`pv-linear-pt`, on by default): a
    /// read-only entry of a level-`level` table pointing at a table of the
    /// same level. At itself (a recursive slot) it takes nothing; at another
    /// table, which must be a validated one of that level, one use of its
    /// type, counted as a linear use in both (see [`LinearCounts`]).
    fn get_linear(&mut self, table: u64, level: u8, e: u64) -> Result<(), MmError> {
        let mfn = entry_mfn(e);
        if e & _PAGE_RW != 0 {
            return Err(MmError::TypeConflict(mfn));
        }
        if mfn == table {
            return Ok(());
        }
        let same = PageType::table(level);
        match self.info.get(mfn as usize) {
            Some(f) if f.owner == Owner::Guest && f.ty == same && f.type_count > 0 && f.type_count < u32::MAX => {}
            _ => return Err(MmError::TypeConflict(mfn)),
        }
        if self.info.get(table as usize).is_none_or(|t| t.owner != Owner::Guest) {
            return Err(MmError::NotOwned(table));
        }
        if !self.linear.step(table, 1) {
            return Err(MmError::TypeConflict(mfn));
        }
        if !self.linear.step(mfn, -1) {
            self.linear.unstep(table, -1);
            return Err(MmError::TypeConflict(mfn));
        }
        self.info[mfn as usize].type_count += 1;
        Ok(())
    }

    /// Drop what entry `e` of table `table`, of level `level`, holds.
    #[inline]
    pub fn put_lxe(&mut self, mem: &mut impl GuestMemory, table: u64, level: u8, e: u64) {
        if e & _PAGE_PRESENT != 0 {
            let mfn = entry_mfn(e);
            if let Some(f) = self.info.get_mut(mfn as usize) {
                // A linear entry: at its own table it holds nothing; at
                // another, a linear use in both as well (Xen's `put_pt_page`).
                if f.ty == PageType::table(level) && f.type_count > 0 {
                    if mfn == table {
                        return;
                    }
                    self.linear.unstep(mfn, 1);
                    self.linear.unstep(table, -1);
                } else if f.type_count > 1 {
                    // Not the last use: nothing to release, as in `put_type`.
                    f.type_count -= 1;
                    return;
                }
            }
            self.put_type(mem, mfn);
        }
    }

    /// Is present entry `e` of table `table` (level `level`) a linear one?
    fn is_linear(&self, table: u64, level: u8, e: u64) -> bool {
        let mfn = entry_mfn(e);
        mfn == table || self.get(mfn).is_some_and(|f| f.ty == PageType::table(level) && f.type_count > 0)
    }

    /// The linear-table count of `mfn` (Xen's `linear_pt_count`): linear
    /// entries it holds (> 0), or its uses as another table's (< 0).
    pub fn linear_count(&self, mfn: u64) -> i32 {
        self.linear.get(mfn)
    }

    /// Is slot `i` of an L4 the guest's (not the hypervisor's)?
    #[inline]
    pub fn is_guest_l4_slot(i: usize) -> bool {
        !(HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST).contains(&i)
    }

    /// Would giving `mfn` a table type validate it (it has no type yet), and
    /// so possibly make it and the tables below it page tables? The caller
    /// then flushes every CPU's TLB first (see `hypercall::mmu`).
    pub fn may_promote(&self, mfn: u64) -> bool {
        self.get(mfn).is_some_and(|f| f.owner == Owner::Guest && f.type_count == 0)
    }

    /// Give `mfn` the type `ty` (validating it if it had none). Returns true
    /// when the frame newly became a page table. No CPU may hold a writable
    /// translation of it from before while it is validated: the caller
    /// flushes first when [`may_promote`](Self::may_promote) says so.
    pub fn get_type(&mut self, mem: &mut impl GuestMemory, mfn: u64, ty: PageType) -> Result<bool, MmError> {
        let Some(f) = self.info.get(mfn as usize).copied() else {
            return Err(MmError::NotOwned(mfn));
        };
        if f.owner != Owner::Guest {
            return Err(MmError::NotOwned(mfn));
        }
        // A frame mapped writable has the Writable type: a conflict too.
        if f.type_count > 0 {
            if f.ty != ty {
                return Err(MmError::TypeConflict(mfn));
            }
            self.info[mfn as usize].type_count += 1;
            return Ok(false);
        }
        {
            let fm = &mut self.info[mfn as usize];
            fm.ty = ty;
            fm.type_count = 1;
        }
        if let Err(e) = self.validate(mem, mfn, ty) {
            let fm = &mut self.info[mfn as usize];
            fm.ty = PageType::None;
            fm.type_count = 0;
            return Err(e);
        }
        Ok(ty != PageType::SegDesc)
    }

    pub fn put_type(&mut self, mem: &mut impl GuestMemory, mfn: u64) {
        let Some(f) = self.info.get_mut(mfn as usize) else { return };
        if f.type_count == 0 {
            return;
        }
        f.type_count -= 1;
        if f.type_count == 0 {
            let (ty, groups) = (f.ty, f.present);
            f.ty = PageType::None;
            self.devalidate(mem, mfn, ty, groups);
        }
    }

    /// The chunks of eight entries (as in [`present_chunks`]) of a
    /// level-`level` table that belong to the guest: all but Cocoon's L4 slots.
    #[inline]
    fn guest_chunks(level: u8) -> u64 {
        const _: () = assert!(HYPERVISOR_L4_FIRST.is_multiple_of(8) && (HYPERVISOR_L4_LAST + 1).is_multiple_of(8));
        const HYPERVISOR: u64 = ((1 << ((HYPERVISOR_L4_LAST + 1) / 8)) - 1) & !((1 << (HYPERVISOR_L4_FIRST / 8)) - 1);
        if level == 4 {
            !HYPERVISOR
        } else {
            !0
        }
    }

    /// The present guest entries of table `mfn` (level `level`) in the entry
    /// groups `groups` names and below index `upto`, as a chunk mask.
    #[inline]
    fn chunks_to_visit(mem: &impl GuestMemory, mfn: u64, level: u8, groups: u8, upto: usize) -> u64 {
        present_chunks(mem.frame(mfn), groups) & Self::guest_chunks(level) & below_chunk_of(upto)
    }

    /// Note `chunks` as the exact present-chunk mask of table `mfn`.
    #[inline]
    fn note_chunks(&mut self, mfn: u64, chunks: u64) {
        self.chunk_masks[mfn as usize % CHUNK_MASK_SLOTS] = (mfn + 1, chunks);
    }

    /// An entry of chunk `c` of table `mfn` became present.
    #[inline(always)]
    fn note_present(&mut self, mfn: u64, c: usize) {
        let slot = &mut self.chunk_masks[mfn as usize % CHUNK_MASK_SLOTS];
        if slot.0 == mfn + 1 {
            slot.1 |= 1 << c;
        }
    }

    /// Table `mfn`'s exact present-chunk mask, if its slot still holds it
    /// (the slot is emptied).
    #[inline]
    fn take_chunks(&mut self, mfn: u64) -> Option<u64> {
        let slot = &mut self.chunk_masks[mfn as usize % CHUNK_MASK_SLOTS];
        (slot.0 == mfn + 1).then(|| core::mem::take(slot).1)
    }

    /// Take the references every present entry of table `mfn` needs (Xen's
    /// `alloc_lN_table`), and note where they are. Only present entries cost
    /// more than a load: a fresh or sparse table is mostly empty.
    fn validate(&mut self, mem: &mut impl GuestMemory, mfn: u64, ty: PageType) -> Result<(), MmError> {
        let Some(level) = ty.level() else { return Ok(()) };
        if level == 1 {
            let r = self.validate_l1(mem.frame_mut(mfn));
            return match r {
                Ok((groups, chunks)) => {
                    self.info[mfn as usize].present = groups;
                    self.note_chunks(mfn, chunks);
                    Ok(())
                }
                Err((j, err)) => {
                    let f = mem.frame(mfn);
                    self.release_l1(f, j, present_chunks(f, !0) & below_chunk_of(j));
                    Err(err)
                }
            };
        }
        let all = Self::chunks_to_visit(mem, mfn, level, !0, L1_PAGETABLE_ENTRIES);
        // An L4 whose kernel half is the shared one takes no uses there.
        let shares = level == 4 && self.kernel_half_matches(mem.frame(mfn), all);
        let taken = if shares { all & !KERNEL_HALF_CHUNKS } else { all };
        let mut chunks = taken;
        while chunks != 0 {
            let c = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            // Read once: taking an entry's references writes no entry of this
            // table (a table it validates has another type, so another frame).
            for (k, e) in chunk_entries(mem.frame(mfn), c).into_iter().enumerate() {
                if e & _PAGE_PRESENT == 0 {
                    continue;
                }
                let j = c * 8 + k;
                if let Err(err) = self.get_lxe(mem, mfn, level, e) {
                    // Undo the entries already taken.
                    self.release_entries(mem, mfn, level, j, taken & below_chunk_of(j));
                    return Err(err);
                }
                let adj = Self::adjust_lxe(e);
                if adj != e {
                    mem.write_u64(mfn, j, adj);
                }
            }
        }
        if level == 4 {
            let (ents, _) = mem.frame_mut(mfn).as_chunks_mut::<8>();
            for (slot, e) in ents[HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST].iter_mut().zip(self.hypervisor_l4) {
                *slot = e.to_le_bytes();
            }
            if shares {
                self.kernel_half.users += 1;
                self.info[mfn as usize].flags.insert(FrameFlags::SHARES_KERNEL_HALF);
            } else if self.kernel_half.users == 0 && all & KERNEL_HALF_CHUNKS != 0 {
                self.make_kernel_half(mem.frame(mfn), mfn, all & KERNEL_HALF_CHUNKS);
            }
        }
        // The groups of 64 entries (eight chunks) holding a present entry.
        let groups = groups_of_chunks(all);
        self.info[mfn as usize].present = groups;
        self.note_chunks(mfn, all);
        Ok(())
    }

    /// Is the kernel half of L4 `f`, whose present chunks are `all`, the
    /// shared one (entry for entry)? Compares only the chunks holding a
    /// present entry: the others hold none in either.
    #[inline]
    fn kernel_half_matches(&self, f: &Frame, all: u64) -> bool {
        let h = &*self.kernel_half;
        if h.users == 0 || all & KERNEL_HALF_CHUNKS != h.chunks {
            return false;
        }
        let mut chunks = h.chunks;
        while chunks != 0 {
            let c = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            let base = c * 8 - KERNEL_HALF_FIRST;
            let diff = chunk_entries(f, c).iter().zip(&h.entries[base..base + 8]).fold(0, |d, (a, b)| d | (a ^ b));
            if diff != 0 {
                return false;
            }
        }
        true
    }

    /// Make the shared kernel half from the validated L4 `mfn` (`f`), whose
    /// kernel half's present chunks are `chunks`, if every present entry
    /// there points at an L3 (a linear one, at an L4, stays the table's
    /// own): the uses its entries took become the shared half's.
    #[cold]
    fn make_kernel_half(&mut self, f: &Frame, mfn: u64, chunks: u64) {
        let (ents, _) = f.as_chunks::<8>();
        let ents = &ents[KERNEL_HALF_FIRST..];
        let plain = ents
            .iter()
            .map(|e| u64::from_le_bytes(*e))
            .all(|e| e & _PAGE_PRESENT == 0 || self.get(entry_mfn(e)).is_some_and(|t| t.ty == PageType::L3));
        if !plain {
            return;
        }
        let h = &mut *self.kernel_half;
        for (s, e) in h.entries.iter_mut().zip(ents) {
            *s = u64::from_le_bytes(*e);
        }
        h.chunks = chunks;
        h.users = 1;
        self.info[mfn as usize].flags.insert(FrameFlags::SHARES_KERNEL_HALF);
    }

    /// One L4 stops sharing the kernel half; the last one releases what
    /// the half holds.
    fn leave_kernel_half(&mut self, mem: &mut impl GuestMemory) {
        self.kernel_half.users -= 1;
        if self.kernel_half.users != 0 {
            return;
        }
        let mut chunks = core::mem::take(&mut self.kernel_half.chunks);
        while chunks != 0 {
            let c = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            let base = c * 8 - KERNEL_HALF_FIRST;
            let ents: [u64; 8] = core::array::from_fn(|k| self.kernel_half.entries[base + k]);
            for e in ents {
                // Each holds one use of an L3 (never a linear entry, see
                // `make_kernel_half`).
                if e & _PAGE_PRESENT != 0 {
                    self.put_type(mem, entry_mfn(e));
                }
            }
        }
    }

    /// L4 `mfn`, sharing the kernel half, takes its own uses of the L3s
    /// there again (before an update of an entry there).
    #[cold]
    fn unshare_kernel_half(&mut self, mem: &mut impl GuestMemory, mfn: u64) {
        self.info[mfn as usize].flags.remove(FrameFlags::SHARES_KERNEL_HALF);
        let mut chunks = self.kernel_half.chunks;
        while chunks != 0 {
            let c = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            for k in 0..8 {
                let e = self.kernel_half.entries[c * 8 + k - KERNEL_HALF_FIRST];
                if e & _PAGE_PRESENT != 0 {
                    // Typed as L3 while the half holds it: one more use.
                    self.info[entry_mfn(e) as usize].type_count += 1;
                }
            }
        }
        self.leave_kernel_half(mem);
    }

    /// [`validate`](Self::validate) for an L1 table `f`, in one pass over its
    /// entries, eight at a time (most L1s are dense: the guest's direct map
    /// is 262,144 present entries per GiB): the entry groups holding a
    /// present entry and the chunks holding one, or the index of the entry
    /// refused (those below it hold references). Not generic and not inlined into the generic callers, so
    /// that it is compiled with shim-core's optimisation level (see Cargo.toml).
    #[inline(never)]
    fn validate_l1(&mut self, f: &mut Frame) -> Result<(u8, u64), (usize, MmError)> {
        let (mut groups, mut chunks) = (0u8, 0u64);
        let (ents, _) = f.as_chunks_mut::<8>();
        for (g, group) in ents.chunks_exact_mut(PRESENT_GROUP).enumerate() {
            // A whole group first (one load an entry), as `present_chunks`.
            if or_entries(group) & _PAGE_PRESENT == 0 {
                continue;
            }
            for (k, chunk) in group.chunks_exact_mut(8).enumerate() {
                if or_entries(chunk) & _PAGE_PRESENT == 0 {
                    continue;
                }
                let c = g * (PRESENT_GROUP / 8) + k;
                for (i, slot) in chunk.iter_mut().enumerate() {
                    let e = u64::from_le_bytes(*slot);
                    if e & _PAGE_PRESENT == 0 {
                        continue;
                    }
                    if let Err(err) = self.get_l1e(e) {
                        return Err((c * 8 + i, err));
                    }
                    let adj = Self::adjust_l1e(e);
                    if adj != e {
                        *slot = adj.to_le_bytes();
                    }
                }
                chunks |= 1 << c;
            }
            groups |= 1 << g;
        }
        Ok((groups, chunks))
    }

    /// [`release_entries`](Self::release_entries) for an L1 table `f`
    /// (not inlined, as `validate_l1`).
    #[inline(never)]
    fn release_l1(&mut self, f: &Frame, upto: usize, mut chunks: u64) {
        let (ents, _) = f.as_chunks::<8>();
        while chunks != 0 {
            let c = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            for slot in &ents[c * 8..(c * 8 + 8).min(upto)] {
                self.put_l1e(u64::from_le_bytes(*slot));
            }
        }
    }

    /// Drop what the entries of table `mfn` below index `upto`, in the
    /// chunks `chunks` names (guest chunks below `upto` only), hold.
    fn release_entries(&mut self, mem: &mut impl GuestMemory, mfn: u64, level: u8, upto: usize, mut chunks: u64) {
        if level == 1 {
            self.release_l1(mem.frame(mfn), upto, chunks);
            return;
        }
        while chunks != 0 {
            let c = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            // Read once: releasing writes no entry of this table.
            let ents = chunk_entries(mem.frame(mfn), c);
            for &e in &ents[..(upto - c * 8).min(8)] {
                if e & _PAGE_PRESENT != 0 {
                    self.put_lxe(mem, mfn, level, e);
                }
            }
        }
    }

    /// Release everything table `mfn` holds (Xen's `free_lN_table`): its
    /// present entries all lie in the entry groups `groups` names, and in
    /// the chunks its noted mask names while it has one.
    fn devalidate(&mut self, mem: &mut impl GuestMemory, mfn: u64, ty: PageType, groups: u8) {
        if let Some(level) = ty.level() {
            let noted = self.take_chunks(mfn);
            #[cfg(debug_assertions)]
            {
                let stray = Self::chunks_to_visit(mem, mfn, level, !groups, L1_PAGETABLE_ENTRIES);
                assert!(stray == 0, "table {mfn:#x}: chunks {stray:#x} are present outside the groups {groups:#010b}");
                if let Some(noted) = noted {
                    let stray = Self::chunks_to_visit(mem, mfn, level, !0, L1_PAGETABLE_ENTRIES) & !noted;
                    assert!(stray == 0, "table {mfn:#x}: chunks {stray:#x} are present outside the noted {noted:#x}");
                }
            }
            let chunks = match noted {
                Some(chunks) => chunks,
                None => Self::chunks_to_visit(mem, mfn, level, groups, L1_PAGETABLE_ENTRIES),
            };
            let f = &mut self.info[mfn as usize];
            if level == 4 && f.flags.contains(FrameFlags::SHARES_KERNEL_HALF) {
                f.flags.remove(FrameFlags::SHARES_KERNEL_HALF);
                self.release_entries(mem, mfn, level, L1_PAGETABLE_ENTRIES, chunks & !KERNEL_HALF_CHUNKS);
                self.leave_kernel_half(mem);
                return;
            }
            self.release_entries(mem, mfn, level, L1_PAGETABLE_ENTRIES, chunks);
        }
    }

    /// Hold guest RAM frame `mfn` as Cocoon writes it (Xen's
    /// `get_page_and_type(PGT_writable_page)` for an area it maps): like a
    /// writable mapping, the frame cannot become a page table or descriptor
    /// page until [`put_writable`](Self::put_writable).
    pub fn get_writable(&mut self, mfn: u64) -> Result<(), MmError> {
        let f = self.info.get_mut(mfn as usize).ok_or(MmError::NotOwned(mfn))?;
        if f.owner != Owner::Guest {
            return Err(MmError::NotOwned(mfn));
        }
        if f.type_count > 0 && f.ty != PageType::Writable {
            return Err(MmError::WritableTable(mfn));
        }
        f.refs = f.refs.checked_add(1).ok_or(MmError::TooManyRefs(mfn))?;
        f.ty = PageType::Writable;
        f.type_count += 1;
        Ok(())
    }

    pub fn put_writable(&mut self, mfn: u64) {
        if let Some(f) = self.info.get_mut(mfn as usize) {
            Self::drop_ref(f, true);
        }
    }

    /// Hold guest RAM frame `mfn` that Cocoon reads or writes for as long as
    /// the guest keeps it there (a registered vcpu_info, a console ring
    /// Cocoon serves): Xen's `get_page`. The frame cannot leave the guest
    /// until [`put_ref`](Self::put_ref).
    pub fn get_ref(&mut self, mfn: u64) -> Result<(), MmError> {
        let f = self.info.get_mut(mfn as usize).ok_or(MmError::NotOwned(mfn))?;
        if f.owner != Owner::Guest {
            return Err(MmError::NotOwned(mfn));
        }
        f.refs = f.refs.checked_add(1).ok_or(MmError::TooManyRefs(mfn))?;
        Ok(())
    }

    pub fn put_ref(&mut self, mfn: u64) {
        if let Some(f) = self.info.get_mut(mfn as usize) {
            Self::drop_ref(f, false);
        }
    }

    /// The guest gives up RAM frame `mfn` (Xen's `guest_remove_page`): a pin
    /// is dropped, as Xen does, and the frame stops being the guest's at
    /// once. Returns whether nothing refers to it any more (it may go back
    /// to Xen now); otherwise it waits, [`Owner::Leaving`], until its
    /// references are gone.
    pub fn take_from_guest(&mut self, mem: &mut impl GuestMemory, mfn: u64) -> Result<bool, MmError> {
        let f = self.info.get_mut(mfn as usize).ok_or(MmError::NotOwned(mfn))?;
        if f.owner != Owner::Guest {
            return Err(MmError::NotOwned(mfn));
        }
        f.owner = Owner::Leaving;
        if f.pinned() {
            f.flags.remove(FrameFlags::PINNED);
            self.put_type(mem, mfn);
        }
        Ok(self.info[mfn as usize].unreferenced())
    }

    /// Xen's `steal_page` (XENMEM_exchange): the guest's frame `mfn` leaves
    /// it at once ([`Owner::Leaving`]), but only if nothing maps, types or
    /// holds it. False (the frame unchanged) otherwise.
    pub fn steal(&mut self, mfn: u64) -> bool {
        match self.info.get_mut(mfn as usize) {
            Some(f) if f.owner == Owner::Guest && f.unreferenced() => {
                f.owner = Owner::Leaving;
                true
            }
            _ => false,
        }
    }

    /// The first `2^order` frames, aligned to their size and all below frame
    /// `limit`, that are [`Owner::Released`] (as Xen's buddy allocator hands
    /// out an extent), searched from frame 0.
    pub fn find_released_extent(&self, order: u32, limit: u64) -> Option<u64> {
        let n = 1u64 << order;
        let end = limit.min(self.len());
        let released = |f: &FrameInfo| f.owner == Owner::Released;
        let mut base = 0;
        while base + n <= end {
            // The next released frame (the search wraps: below `base` means none).
            let hit = self.find_from(base, released).filter(|&m| m >= base)?;
            base = hit & !(n - 1);
            match (base..base + n).find(|&m| !self.get(m).is_some_and(released)) {
                None if base + n <= end => return Some(base),
                None => return None,
                Some(taken) => base = (taken & !(n - 1)) + n,
            }
        }
        None
    }

    /// Record that the unreferenced frame `mfn` was given back to Xen.
    pub fn set_released(&mut self, mfn: u64) {
        if let Some(f) = self.info.get_mut(mfn as usize) {
            debug_assert!(f.owner == Owner::Leaving && f.unreferenced(), "releasing a frame in use: {f:?}");
            f.owner = Owner::Released;
        }
    }

    /// Give the guest a frame back that Xen populated again.
    pub fn give_to_guest(&mut self, mfn: u64) {
        if let Some(f) = self.info.get_mut(mfn as usize) {
            debug_assert!(f.owner == Owner::Released && f.unreferenced(), "repopulating a frame in use: {f:?}");
            f.owner = Owner::Guest;
        }
    }

    pub fn pin(&mut self, mfn: u64) -> Result<(), MmError> {
        let f = self.info.get_mut(mfn as usize).ok_or(MmError::NotOwned(mfn))?;
        if f.pinned() {
            return Err(MmError::TypeConflict(mfn));
        }
        f.flags.insert(FrameFlags::PINNED);
        Ok(())
    }

    pub fn unpin(&mut self, mfn: u64) -> bool {
        match self.info.get_mut(mfn as usize) {
            Some(f) if f.pinned() => {
                f.flags.remove(FrameFlags::PINNED);
                true
            }
            _ => false,
        }
    }

    /// Replace entry `index` of the typed table `mfn` with `new` (unadjusted),
    /// taking the new entry's references before dropping the old one's.
    /// With `preserve_ad`, the old accessed/dirty bits are kept. An update
    /// that would make a frame a page table (see [`may_promote`](Self::may_promote))
    /// is refused with [`MmError::Unflushed`], nothing changed, unless
    /// `flushed` says the caller flushed the TLBs for it. Inlined into its
    /// one hot caller (`hypercall::mmu::pt_update`).
    #[inline(always)]
    pub fn update_entry(
        &mut self,
        mem: &mut impl GuestMemory,
        mfn: u64,
        index: usize,
        new: u64,
        preserve_ad: bool,
        flushed: bool,
    ) -> Result<bool, MmError> {
        let f = *self.info.get(mfn as usize).ok_or(MmError::NotOwned(mfn))?;
        let old = mem.read_u64(mfn, index);
        let new = if preserve_ad { new | (old & (_PAGE_ACCESSED | _PAGE_DIRTY)) } else { new };
        let mut promoted = false;
        let adj = match (f.ty, f.type_count > 0) {
            (PageType::L1, true) => {
                self.get_l1e(new)?;
                self.put_l1e(old);
                Self::adjust_l1e(new)
            }
            (PageType::L2 | PageType::L3 | PageType::L4, true) => {
                let (adj, p) = self.update_lxe(mem, f, mfn, index, old, new, flushed)?;
                promoted = p;
                adj
            }
            (PageType::SegDesc, true) => return Err(MmError::TypeConflict(mfn)),
            // Not a live table: an ordinary guest page.
            _ => {
                if f.owner != Owner::Guest {
                    return Err(MmError::NotOwned(mfn));
                }
                new
            }
        };
        if f.type_count > 0 && f.ty.level().is_some() && adj & _PAGE_PRESENT != 0 {
            self.info[mfn as usize].present |= 1 << (index / PRESENT_GROUP);
            self.note_present(mfn, index / 8);
        }
        mem.write_u64(mfn, index, adj);
        Ok(promoted)
    }

    /// [`update_entry`](Self::update_entry) of a live L2-L4 `mfn` (`f`):
    /// the adjusted entry and whether a frame became a table. Out of line:
    /// rare next to L1 updates, and it keeps their frame small.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn update_lxe(
        &mut self,
        mem: &mut impl GuestMemory,
        f: FrameInfo,
        mfn: u64,
        index: usize,
        old: u64,
        new: u64,
        flushed: bool,
    ) -> Result<(u64, bool), MmError> {
        let level = f.ty as u8;
        if level == 4 && !Self::is_guest_l4_slot(index) {
            return Err(MmError::ReservedSlot);
        }
        if level == 4 && index >= KERNEL_HALF_FIRST && f.flags.contains(FrameFlags::SHARES_KERNEL_HALF) {
            self.unshare_kernel_half(mem, mfn);
        }
        let unchanged = (old ^ new) & (PADDR_MASK | _PAGE_PRESENT) == 0 && old & _PAGE_PRESENT != 0;
        let promoted = if unchanged {
            // Same target: only flags change; no new reference, but
            // the flags are checked as for a new entry (PSE would
            // turn the table it points at into a 2 MiB/1 GiB page).
            if new & LX_DISALLOW != 0 {
                return Err(MmError::BadEntry(new));
            }
            // Nor may a linear entry become writable (Xen's fast
            // path excludes RW, so the full check refuses it).
            if new & _PAGE_RW != 0 && old & _PAGE_RW == 0 && self.is_linear(mfn, level, new) {
                return Err(MmError::TypeConflict(entry_mfn(new)));
            }
            false
        } else {
            if !flushed && new & _PAGE_PRESENT != 0 && self.may_promote(entry_mfn(new)) {
                return Err(MmError::Unflushed);
            }
            let promoted = self.get_lxe(mem, mfn, level, new)?;
            self.put_lxe(mem, mfn, level, old);
            promoted
        };
        Ok((Self::adjust_lxe(new), promoted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VecMemory;

    fn setup() -> (FrameTable, VecMemory) {
        let mut ft = FrameTable::new(64, [0x1234_5003; 16]);
        for m in 0..48 {
            ft.set_owner(m, Owner::Guest);
        }
        (ft, VecMemory::new(0, 65))
    }

    fn e(mfn: u64, flags: u64) -> u64 {
        (mfn << 12) | flags
    }

    #[test]
    fn l1_validation_adjusts_and_counts() {
        let (mut ft, mut mem) = setup();
        mem.write_u64(10, 0, e(20, _PAGE_PRESENT | _PAGE_RW));
        mem.write_u64(10, 1, e(21, _PAGE_PRESENT | _PAGE_GLOBAL));
        ft.get_type(&mut mem, 10, PageType::L1).unwrap();
        assert_eq!(mem.read_u64(10, 0), e(20, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_GUEST_KERNEL));
        assert_eq!(mem.read_u64(10, 1) & _PAGE_GLOBAL, 0);
        assert_eq!(ft.get(20).unwrap().writable(), 1);
        // A frame mapped writable cannot become a table.
        assert_eq!(ft.get_type(&mut mem, 20, PageType::L1), Err(MmError::TypeConflict(20)));
        ft.put_type(&mut mem, 10);
        assert_eq!(ft.get(20).unwrap().writable(), 0);
        ft.get_type(&mut mem, 20, PageType::L1).unwrap();
    }

    #[test]
    fn frames_above_the_table_are_shared_only_once_given() {
        let (mut ft, mut mem) = setup();
        let ring = 0xfeffc;
        mem.write_u64(14, 0, e(ring, _PAGE_PRESENT | _PAGE_RW));
        assert_eq!(ft.get_type(&mut mem, 14, PageType::L1), Err(MmError::NotOwned(ring)));
        ft.set_owner(ring, Owner::SharedWithGuest);
        ft.get_type(&mut mem, 14, PageType::L1).unwrap();
        assert!(!ft.owned_by_guest(ring), "shared, not the guest's RAM");
        assert_eq!(ft.get_type(&mut mem, ring, PageType::L1), Err(MmError::NotOwned(ring)), "never a table");
        ft.put_type(&mut mem, 14);
        ft.set_owner(ring, Owner::None);
        assert_eq!(ft.get_type(&mut mem, 14, PageType::L1), Err(MmError::NotOwned(ring)));
    }

    #[test]
    fn tables_cannot_be_mapped_writable_or_point_outside() {
        let (mut ft, mut mem) = setup();
        ft.get_type(&mut mem, 11, PageType::L1).unwrap();
        mem.write_u64(12, 0, e(11, _PAGE_PRESENT | _PAGE_RW));
        assert_eq!(ft.get_type(&mut mem, 12, PageType::L1), Err(MmError::WritableTable(11)));
        mem.write_u64(12, 0, e(11, _PAGE_PRESENT));
        ft.get_type(&mut mem, 12, PageType::L1).unwrap();
        // Cocoon's frames (not owned) cannot be mapped at all.
        mem.write_u64(13, 0, e(50, _PAGE_PRESENT));
        assert_eq!(ft.get_type(&mut mem, 13, PageType::L1), Err(MmError::NotOwned(50)));
        assert_eq!(ft.get(13).unwrap().type_count, 0, "failed validation leaves no type");
    }

    #[test]
    fn hierarchy_and_reserved_slots() {
        let (mut ft, mut mem) = setup();
        mem.write_u64(1, 511, e(2, _PAGE_PRESENT | _PAGE_RW));
        mem.write_u64(1, 260, e(40, _PAGE_PRESENT)); // guest junk in a hypervisor slot: ignored
        mem.write_u64(2, 510, e(3, _PAGE_PRESENT | _PAGE_RW));
        mem.write_u64(3, 0, e(4, _PAGE_PRESENT | _PAGE_RW));
        mem.write_u64(4, 0, e(30, _PAGE_PRESENT | _PAGE_RW));
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        assert_eq!(ft.get(4).unwrap().ty, PageType::L1);
        assert_eq!(mem.read_u64(1, 260), 0x1234_5003, "Cocoon's slot written");
        assert_ne!(mem.read_u64(2, 510) & _PAGE_USER, 0);
        // Writing a hypervisor slot is refused.
        assert_eq!(ft.update_entry(&mut mem, 1, 256, e(5, _PAGE_PRESENT), false, true), Err(MmError::ReservedSlot));
        // Superpages are refused, in a new entry and as a flag added to a
        // live one (which would make the L1 it points at a 2 MiB page).
        assert!(matches!(
            ft.update_entry(&mut mem, 3, 1, e(6, _PAGE_PRESENT | _PAGE_PSE), false, true),
            Err(MmError::BadEntry(_))
        ));
        assert!(matches!(
            ft.update_entry(&mut mem, 3, 0, e(4, _PAGE_PRESENT | _PAGE_RW | _PAGE_PSE), false, true),
            Err(MmError::BadEntry(_))
        ));
        assert_eq!(mem.read_u64(3, 0) & _PAGE_PSE, 0, "the live entry is unchanged");
        ft.update_entry(&mut mem, 3, 0, e(4, _PAGE_PRESENT), false, true).unwrap();
        // Dropping the top releases everything.
        ft.put_type(&mut mem, 1);
        for m in [2, 3, 4] {
            assert_eq!(ft.get(m).unwrap().type_count, 0);
        }
        assert_eq!(ft.get(30).unwrap().writable(), 0);
    }

    #[test]
    fn scans_find_every_present_entry_and_undo_exactly() {
        let (mut ft, mut mem) = setup();
        // Entries at group edges, with non-present junk in between.
        let slots = [0usize, 7, 8, 9, 63, 64, 300, 511];
        for (k, &i) in slots.iter().enumerate() {
            mem.write_u64(10, i, e(20 + k as u64, _PAGE_PRESENT | _PAGE_RW));
        }
        mem.write_u64(10, 5, e(40, _PAGE_RW)); // not present: no reference
        ft.get_type(&mut mem, 10, PageType::L1).unwrap();
        for k in 0..slots.len() as u64 {
            assert_eq!(ft.get(20 + k).unwrap().writable(), 1, "entry {k}");
        }
        assert_eq!(ft.get(40).unwrap().writable(), 0);
        ft.put_type(&mut mem, 10);
        for k in 0..slots.len() as u64 {
            assert_eq!(ft.get(20 + k).unwrap().writable(), 0, "entry {k} released");
        }
        // A bad entry in the middle: what came before it is given back, nothing after.
        mem.write_u64(10, 200, e(50, _PAGE_PRESENT));
        assert_eq!(ft.get_type(&mut mem, 10, PageType::L1), Err(MmError::NotOwned(50)));
        for k in 0..slots.len() as u64 {
            assert_eq!(ft.get(20 + k).unwrap().writable(), 0, "entry {k} after a failed validation");
        }
        // An L4's guest slots on both sides of Cocoon's, and only those.
        mem.write_u64(1, 255, e(2, _PAGE_PRESENT));
        mem.write_u64(1, 272, e(3, _PAGE_PRESENT));
        mem.write_u64(1, 263, e(4, _PAGE_PRESENT));
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        assert_eq!((ft.get(2).unwrap().ty, ft.get(3).unwrap().ty), (PageType::L3, PageType::L3));
        assert_eq!(ft.get(4).unwrap().type_count, 0, "a hypervisor slot holds nothing");
        ft.put_type(&mut mem, 1);
        assert_eq!((ft.get(2).unwrap().type_count, ft.get(3).unwrap().type_count), (0, 0));
    }

    #[test]
    fn entries_added_to_a_live_table_are_released_with_it() {
        let (mut ft, mut mem) = setup();
        // Validated empty: no group holds a present entry yet.
        ft.get_type(&mut mem, 10, PageType::L1).unwrap();
        assert_eq!(ft.get(10).unwrap().present, 0);
        for (i, m) in [(0, 20), (130, 21), (511, 22)] {
            ft.update_entry(&mut mem, 10, i, e(m, _PAGE_PRESENT | _PAGE_RW), false, true).unwrap();
        }
        // A non-present write marks nothing; clearing an entry keeps its group marked.
        ft.update_entry(&mut mem, 10, 300, e(23, _PAGE_RW), false, true).unwrap();
        ft.update_entry(&mut mem, 10, 0, 0, false, true).unwrap();
        assert_eq!(ft.get(10).unwrap().present, 0b1000_0101);
        assert_eq!((ft.get(20).unwrap().writable(), ft.get(21).unwrap().writable()), (0, 1));
        ft.put_type(&mut mem, 10);
        for m in 20..24 {
            assert_eq!(ft.get(m).unwrap().writable(), 0, "frame {m}");
        }
        // The same for an L2 gaining an L1 (a shared, already typed one too).
        ft.get_type(&mut mem, 11, PageType::L2).unwrap();
        ft.get_type(&mut mem, 12, PageType::L1).unwrap();
        ft.update_entry(&mut mem, 11, 200, e(12, _PAGE_PRESENT), false, true).unwrap();
        // Frame 13 has no type yet: the entry would make it a table, which
        // waits for the caller's flush and changes nothing until then.
        assert_eq!(ft.update_entry(&mut mem, 11, 201, e(13, _PAGE_PRESENT), false, false), Err(MmError::Unflushed));
        assert_eq!((mem.read_u64(11, 201), ft.get(13).unwrap().type_count), (0, 0));
        ft.update_entry(&mut mem, 11, 201, e(13, _PAGE_PRESENT), false, true).unwrap();
        assert_eq!((ft.get(12).unwrap().type_count, ft.get(13).unwrap().type_count), (2, 1));
        ft.put_type(&mut mem, 11);
        assert_eq!((ft.get(12).unwrap().type_count, ft.get(13).unwrap().type_count), (1, 0));
        // Validation recomputes the groups from what the table holds.
        mem.write_u64(14, 70, e(24, _PAGE_PRESENT));
        ft.get_type(&mut mem, 14, PageType::L1).unwrap();
        assert_eq!(ft.get(14).unwrap().present, 0b10);
    }

    #[test]
    #[should_panic(expected = "present outside the groups")]
    fn debug_builds_check_the_presence_summary() {
        let (mut ft, mut mem) = setup();
        mem.write_u64(10, 100, e(20, _PAGE_PRESENT | _PAGE_RW));
        ft.get_type(&mut mem, 10, PageType::L1).unwrap();
        ft.info[10].present = 0; // as if an update had not been noted
        ft.put_type(&mut mem, 10);
    }

    #[test]
    #[should_panic(expected = "present outside the noted")]
    fn debug_builds_check_the_noted_chunks() {
        let (mut ft, mut mem) = setup();
        mem.write_u64(11, 100, e(10, _PAGE_PRESENT));
        ft.get_type(&mut mem, 11, PageType::L2).unwrap();
        ft.chunk_masks[11].1 = 0; // as if an update had not been noted
        ft.put_type(&mut mem, 11);
    }

    #[test]
    fn noted_chunks_release_exactly_and_an_evicted_table_falls_back_to_its_groups() {
        for evict in [false, true] {
            let (mut ft, mut mem) = setup();
            // An L3 holding an L2 with entries in three chunks (one written
            // by an update), each an L1 holding a page.
            for (i, m) in [(5, 20), (70, 21), (300, 22)] {
                mem.write_u64(m, 0, e(m + 10, _PAGE_PRESENT | _PAGE_RW));
                mem.write_u64(10, i, e(m, _PAGE_PRESENT));
            }
            mem.write_u64(11, 9, e(10, _PAGE_PRESENT));
            ft.get_type(&mut mem, 11, PageType::L3).unwrap();
            assert_eq!(ft.chunk_masks[10], (11, (1 << 0) | (1 << 8) | (1 << 37)), "noted at validation");
            assert_eq!(ft.chunk_masks[20], (21, 1), "an L1's too");
            ft.update_entry(&mut mem, 10, 450, e(23, _PAGE_PRESENT), false, true).unwrap();
            assert_eq!(ft.chunk_masks[10].1 >> 56, 1, "and kept up by updates");
            if evict {
                // Tables whose slots others took: released by their groups.
                ft.note_chunks(10 + CHUNK_MASK_SLOTS as u64, 0);
                ft.note_chunks(11 + CHUNK_MASK_SLOTS as u64, 0);
            }
            ft.put_type(&mut mem, 11);
            for m in [10, 20, 21, 22, 23, 30, 31, 32] {
                assert!(ft.get(m).unwrap().unreferenced(), "evicted {evict}: frame {m} still held");
            }
            assert_ne!(ft.chunk_masks[10].0, 11, "the slot is taken at release");
        }
    }

    #[test]
    fn every_reference_is_counted_and_a_leaving_frame_takes_no_new_one() {
        let (mut ft, mut mem) = setup();
        mem.write_u64(10, 0, e(20, _PAGE_PRESENT));
        mem.write_u64(10, 1, e(20, _PAGE_PRESENT | _PAGE_RW));
        mem.write_u64(10, 2, e(21, _PAGE_RW)); // not present: nothing
        ft.get_type(&mut mem, 10, PageType::L1).unwrap();
        let f = *ft.get(20).unwrap();
        assert_eq!((f.refs, f.writable()), (2, 1), "read-only mappings count too");
        assert!(ft.get(21).unwrap().unreferenced());
        ft.get_ref(20).unwrap();
        ft.get_writable(20).unwrap();
        assert_eq!((ft.get(20).unwrap().refs, ft.get(20).unwrap().writable()), (4, 2));
        // Given up while referenced: it waits, and nothing new can take it.
        assert_eq!(ft.take_from_guest(&mut mem, 20), Ok(false));
        assert_eq!(ft.get(20).unwrap().owner, Owner::Leaving);
        mem.write_u64(11, 0, e(20, _PAGE_PRESENT));
        assert_eq!(ft.get_type(&mut mem, 11, PageType::L1), Err(MmError::NotOwned(20)));
        assert_eq!(ft.get_ref(20), Err(MmError::NotOwned(20)));
        assert_eq!(ft.get_writable(20), Err(MmError::NotOwned(20)));
        assert_eq!(ft.get_type(&mut mem, 20, PageType::L1), Err(MmError::NotOwned(20)));
        assert_eq!(ft.take_from_guest(&mut mem, 20), Err(MmError::NotOwned(20)), "only once");
        ft.put_ref(20);
        ft.put_writable(20);
        ft.put_type(&mut mem, 10);
        assert!(ft.get(20).unwrap().unreferenced());
        ft.set_released(20);
        ft.give_to_guest(20);
        assert!(ft.owned_by_guest(20));
        // A pinned table given up loses its pin (and so its type) at once.
        ft.get_type(&mut mem, 12, PageType::L1).unwrap();
        ft.pin(12).unwrap();
        assert_eq!(ft.take_from_guest(&mut mem, 12), Ok(true));
        assert!(!ft.get(12).unwrap().pinned());
        // A count at its limit refuses one more reference.
        ft.info[22].refs = u32::MAX;
        mem.write_u64(13, 0, e(22, _PAGE_PRESENT));
        assert_eq!(ft.get_type(&mut mem, 13, PageType::L1), Err(MmError::TooManyRefs(22)));
        assert_eq!(ft.get_ref(22), Err(MmError::TooManyRefs(22)));
    }

    #[test]
    fn update_entry_on_plain_and_typed_pages() {
        let (mut ft, mut mem) = setup();
        ft.update_entry(&mut mem, 7, 3, 0xdead, false, true).unwrap();
        assert_eq!(mem.read_u64(7, 3), 0xdead);
        ft.get_type(&mut mem, 8, PageType::L1).unwrap();
        mem.write_u64(8, 5, e(9, _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_USER));
        ft.update_entry(&mut mem, 8, 5, e(9, _PAGE_PRESENT | _PAGE_USER), true, true).unwrap();
        assert_ne!(mem.read_u64(8, 5) & _PAGE_DIRTY, 0, "A/D preserved");
        assert!(
            ft.update_entry(&mut mem, 8, 6, e(8, _PAGE_PRESENT | _PAGE_RW), false, true).is_err(),
            "self-map writable"
        );
    }

    #[test]
    fn a_recursive_slot_is_read_only_and_holds_nothing() {
        let (mut ft, mut mem) = setup();
        // NetBSD-style: an L4 slot pointing at its own L4, read-only.
        mem.write_u64(1, 0, e(2, _PAGE_PRESENT | _PAGE_RW));
        mem.write_u64(1, 300, e(1, _PAGE_PRESENT));
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        assert_eq!(ft.get(1).unwrap().type_count, 1, "the slot takes no use of its own table");
        assert_eq!(ft.linear_count(1), 0);
        assert_ne!(mem.read_u64(1, 300) & _PAGE_USER, 0, "adjusted as any L4 entry");
        // Writable, it would let the guest write its page tables.
        assert_eq!(
            ft.update_entry(&mut mem, 1, 300, e(1, _PAGE_PRESENT | _PAGE_RW), false, true),
            Err(MmError::TypeConflict(1))
        );
        assert_eq!(
            ft.update_entry(&mut mem, 1, 301, e(1, _PAGE_PRESENT | _PAGE_RW), false, true),
            Err(MmError::TypeConflict(1))
        );
        ft.update_entry(&mut mem, 1, 301, e(1, _PAGE_PRESENT), false, true).unwrap();
        ft.update_entry(&mut mem, 1, 301, 0, false, true).unwrap();
        assert_eq!(ft.get(1).unwrap().type_count, 1);
        // A table validated with a writable one is refused, and keeps no type.
        mem.write_u64(3, 7, e(3, _PAGE_PRESENT | _PAGE_RW));
        assert_eq!(ft.get_type(&mut mem, 3, PageType::L2), Err(MmError::TypeConflict(3)));
        assert_eq!(ft.get(3).unwrap().type_count, 0);
        ft.put_type(&mut mem, 1);
        assert_eq!(ft.get(1).unwrap().type_count, 0);
        assert_eq!(ft.get(2).unwrap().type_count, 0);
    }

    #[test]
    fn linear_entries_to_other_tables_are_counted_and_never_chain() {
        let (mut ft, mut mem) = setup();
        // B and C: validated, pinned L2s. A: an L2 with a read-only entry at B.
        for t in [11, 12] {
            ft.get_type(&mut mem, t, PageType::L2).unwrap();
            ft.pin(t).unwrap();
        }
        mem.write_u64(10, 4, e(11, _PAGE_PRESENT));
        ft.get_type(&mut mem, 10, PageType::L2).unwrap();
        assert_eq!(ft.get(11).unwrap().type_count, 2, "a use of B's type");
        assert_eq!((ft.linear_count(10), ft.linear_count(11)), (1, -1));
        // B is mapped linearly, so it may not hold linear entries itself;
        // A holds them, so no table may map it linearly.
        assert_eq!(ft.update_entry(&mut mem, 11, 0, e(12, _PAGE_PRESENT), false, true), Err(MmError::TypeConflict(12)));
        assert_eq!(ft.update_entry(&mut mem, 12, 0, e(10, _PAGE_PRESENT), false, true), Err(MmError::TypeConflict(10)));
        assert_eq!((ft.linear_count(11), ft.linear_count(12)), (-1, 0), "refusals leave the counts");
        // Another linear entry in A, at C; a writable one is refused.
        assert_eq!(
            ft.update_entry(&mut mem, 10, 5, e(12, _PAGE_PRESENT | _PAGE_RW), false, true),
            Err(MmError::TypeConflict(12))
        );
        ft.update_entry(&mut mem, 10, 5, e(12, _PAGE_PRESENT | _PAGE_ACCESSED), false, true).unwrap();
        assert_eq!((ft.linear_count(10), ft.linear_count(12)), (2, -1));
        // Nor may a live one become writable.
        assert_eq!(
            ft.update_entry(&mut mem, 10, 5, e(12, _PAGE_PRESENT | _PAGE_RW), false, true),
            Err(MmError::TypeConflict(12))
        );
        // Only a validated table of the same level: an L3 is not one.
        ft.get_type(&mut mem, 13, PageType::L3).unwrap();
        assert_eq!(ft.update_entry(&mut mem, 10, 6, e(13, _PAGE_PRESENT), false, true), Err(MmError::TypeConflict(13)));
        // Removing the entry gives everything back.
        ft.update_entry(&mut mem, 10, 5, 0, false, true).unwrap();
        assert_eq!((ft.linear_count(10), ft.linear_count(12)), (1, 0));
        assert_eq!(ft.get(12).unwrap().type_count, 1);
        // So does releasing A; then B is free to hold linear entries.
        ft.put_type(&mut mem, 10);
        assert_eq!((ft.linear_count(10), ft.linear_count(11)), (0, 0));
        assert_eq!(ft.get(11).unwrap().type_count, 1, "B keeps its pin");
        ft.update_entry(&mut mem, 11, 0, e(12, _PAGE_PRESENT), false, true).unwrap();
        assert_eq!((ft.linear_count(11), ft.linear_count(12)), (1, -1));
        // A table held only by a linear entry is released with it.
        assert!(ft.unpin(12));
        ft.put_type(&mut mem, 12);
        assert_eq!(ft.get(12).unwrap().type_count, 1);
        ft.update_entry(&mut mem, 11, 0, 0, false, true).unwrap();
        assert_eq!(ft.get(12).unwrap().type_count, 0);
        assert_eq!(ft.linear_count(11), 0);
    }

    #[test]
    fn linear_counts_have_a_limit_and_free_their_slots() {
        let (mut ft, mut mem) = setup();
        ft.get_type(&mut mem, 40, PageType::L2).unwrap();
        ft.pin(40).unwrap();
        // Each of 36 tables maps table 40 linearly: 37 slots.
        for t in 1..=36 {
            mem.write_u64(t, 0, e(40, _PAGE_PRESENT));
            ft.get_type(&mut mem, t, PageType::L2).unwrap();
        }
        assert_eq!(ft.linear_count(40), -36);
        for t in 1..=36 {
            ft.put_type(&mut mem, t);
        }
        assert_eq!(ft.linear_count(40), 0);
        assert_eq!(ft.get(40).unwrap().type_count, 1);
        // Past the side table's room, a linear entry is refused, not a panic.
        let mut big = FrameTable::new(200, [0; 16]);
        let mut mem = VecMemory::new(0, 201);
        for m in 0..=200 {
            big.set_owner(m, Owner::Guest);
        }
        let mut refused = 0;
        for k in 0..40u64 {
            let (holder, target) = (2 * k + 1, 2 * k + 2);
            big.get_type(&mut mem, target, PageType::L2).unwrap();
            mem.write_u64(holder, 0, e(target, _PAGE_PRESENT));
            if big.get_type(&mut mem, holder, PageType::L2).is_err() {
                refused += 1;
                assert_eq!(big.get(holder).unwrap().type_count, 0);
            }
        }
        assert_eq!(refused, 40 - LINEAR_TABLES / 2);
    }

    #[test]
    fn a_live_l1_update_keeps_accessed_and_dirty_if_asked_and_changes_nothing_if_refused() {
        let (mut ft, mut mem) = setup();
        let ad = _PAGE_ACCESSED | _PAGE_DIRTY;
        mem.write_u64(10, 3, e(20, _PAGE_PRESENT | _PAGE_RW | ad));
        ft.get_type(&mut mem, 10, PageType::L1).unwrap();
        // The same frame read-only, the hardware's A/D bits kept.
        ft.update_entry(&mut mem, 10, 3, e(20, _PAGE_PRESENT), true, false).unwrap();
        assert_eq!(mem.read_u64(10, 3) & (ad | _PAGE_RW), ad);
        assert_eq!((ft.get(20).unwrap().refs, ft.get(20).unwrap().writable()), (1, 0));
        // Without preserve_ad the new value is taken as given.
        ft.update_entry(&mut mem, 10, 3, e(21, _PAGE_PRESENT | _PAGE_RW), false, false).unwrap();
        assert_eq!(mem.read_u64(10, 3) & ad, 0);
        assert_eq!((ft.get(20).unwrap().refs, ft.get(21).unwrap().writable()), (0, 1));
        // A frame that is not the guest's: refused, nothing changed.
        let before = mem.read_u64(10, 3);
        assert_eq!(ft.update_entry(&mut mem, 10, 3, e(50, _PAGE_PRESENT), false, false), Err(MmError::NotOwned(50)));
        assert_eq!(mem.read_u64(10, 3), before);
        assert_eq!(ft.get(21).unwrap().writable(), 1);
        // Nor may a live L1 map a page table writable.
        assert_eq!(
            ft.update_entry(&mut mem, 10, 4, e(10, _PAGE_PRESENT | _PAGE_RW), false, false),
            Err(MmError::WritableTable(10))
        );
        assert_eq!(mem.read_u64(10, 4), 0);
    }

    /// A kernel half pointing at the L3s `l3s` (slots 272, 300, 511), as
    /// validation leaves it (with `_PAGE_USER`), written into L4 `l4`.
    fn kernel_half(mem: &mut VecMemory, l4: u64, l3s: [u64; 3]) {
        for (slot, l3) in [272, 300, 511].into_iter().zip(l3s) {
            mem.write_u64(l4, slot, e(l3, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER));
        }
    }

    fn type_counts<const N: usize>(ft: &FrameTable, mfns: [u64; N]) -> [u32; N] {
        mfns.map(|m| ft.get(m).unwrap().type_count)
    }

    fn shares(ft: &FrameTable, l4: u64) -> bool {
        ft.get(l4).unwrap().flags.contains(FrameFlags::SHARES_KERNEL_HALF)
    }

    #[test]
    fn l4s_with_the_same_kernel_half_share_one_use_of_each_l3() {
        let (mut ft, mut mem) = setup();
        kernel_half(&mut mem, 1, [30, 31, 32]);
        kernel_half(&mut mem, 2, [30, 31, 32]);
        mem.write_u64(2, 0, e(33, _PAGE_PRESENT | _PAGE_RW));
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        ft.get_type(&mut mem, 2, PageType::L4).unwrap();
        assert!(shares(&ft, 1) && shares(&ft, 2));
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [1, 1, 1, 1], "one use of each L3 for both L4s");
        // The L3s stay typed while an L4 refers to them, and no longer.
        ft.put_type(&mut mem, 1);
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [1, 1, 1, 1]);
        ft.put_type(&mut mem, 2);
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [0; 4]);
        assert_eq!(ft.get(31).unwrap().ty, PageType::None);
        // Made again by the next L4 (an unadjusted copy does not match it,
        // and takes its own uses).
        kernel_half(&mut mem, 3, [30, 31, 32]);
        ft.get_type(&mut mem, 3, PageType::L4).unwrap();
        mem.write_u64(2, 272, e(30, _PAGE_PRESENT | _PAGE_RW));
        ft.get_type(&mut mem, 2, PageType::L4).unwrap();
        assert!(shares(&ft, 3) && !shares(&ft, 2));
        assert_eq!(type_counts(&ft, [30, 31, 32]), [2, 2, 2]);
        ft.put_type(&mut mem, 3);
        ft.put_type(&mut mem, 2);
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [0; 4]);
    }

    #[test]
    fn writing_a_shared_kernel_half_gives_the_l4_its_own_uses() {
        let (mut ft, mut mem) = setup();
        for l4 in [1, 2, 3] {
            kernel_half(&mut mem, l4, [30, 31, 32]);
        }
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        ft.get_type(&mut mem, 2, PageType::L4).unwrap();
        ft.update_entry(&mut mem, 2, 300, e(33, _PAGE_PRESENT | _PAGE_RW), false, true).unwrap();
        assert!(shares(&ft, 1) && !shares(&ft, 2));
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [2, 1, 2, 1]);
        // The user half is the L4's own: writing it keeps the sharing.
        ft.update_entry(&mut mem, 1, 7, e(34, _PAGE_PRESENT | _PAGE_RW), false, true).unwrap();
        assert!(shares(&ft, 1));
        // The last sharer goes: the half releases its uses.
        ft.put_type(&mut mem, 1);
        assert_eq!(type_counts(&ft, [30, 31, 32, 33, 34]), [1, 0, 1, 1, 0]);
        // A half with no users is made again from the next L4.
        ft.get_type(&mut mem, 3, PageType::L4).unwrap();
        assert!(shares(&ft, 3));
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [2, 1, 2, 1]);
        // Clearing an entry of a sharing L4 (the unchanged-target path too).
        ft.update_entry(&mut mem, 3, 511, e(32, _PAGE_PRESENT), false, true).unwrap();
        assert!(!shares(&ft, 3));
        ft.update_entry(&mut mem, 3, 511, 0, false, true).unwrap();
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [2, 1, 1, 1]);
        ft.put_type(&mut mem, 2);
        ft.put_type(&mut mem, 3);
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [0; 4]);
    }

    #[test]
    fn a_kernel_half_with_a_linear_entry_is_not_shared() {
        let (mut ft, mut mem) = setup();
        kernel_half(&mut mem, 1, [30, 31, 32]);
        mem.write_u64(1, 400, e(1, _PAGE_PRESENT)); // recursive, read-only
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        assert!(!shares(&ft, 1));
        kernel_half(&mut mem, 2, [30, 31, 32]);
        ft.get_type(&mut mem, 2, PageType::L4).unwrap();
        assert!(shares(&ft, 2), "made from the next L4");
        assert_eq!(type_counts(&ft, [30, 31, 32]), [2, 2, 2]);
        ft.put_type(&mut mem, 1);
        ft.put_type(&mut mem, 2);
        assert_eq!(type_counts(&ft, [1, 30, 31, 32]), [0; 4]);
    }

    #[test]
    fn groups_of_chunks_marks_the_non_zero_bytes() {
        let slow = |c: u64| (0..8).fold(0u8, |g, i| g | (((c >> (8 * i)) & 0xff != 0) as u8) << i);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Sparse values too: most bytes zero, single bits, 0x80s.
            for c in [x, x & (x >> 3) & (x >> 5), 1 << (x % 64), 0x80 << (8 * (x % 8)), x & 0x0101_0101_0101_0101] {
                assert_eq!(groups_of_chunks(c), slow(c), "{c:#x}");
            }
        }
        assert_eq!((groups_of_chunks(0), groups_of_chunks(!0)), (0, 0xff));
    }

    #[test]
    fn a_kernel_half_with_one_entry_more_is_not_shared() {
        let (mut ft, mut mem) = setup();
        kernel_half(&mut mem, 1, [30, 31, 32]);
        ft.get_type(&mut mem, 1, PageType::L4).unwrap();
        assert!(shares(&ft, 1));
        // One L3 more: in a chunk where the shared half has no entry, and in one where it has.
        for (l4, slot) in [(2, 400), (3, 273)] {
            kernel_half(&mut mem, l4, [30, 31, 32]);
            mem.write_u64(l4, slot, e(33, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER));
            ft.get_type(&mut mem, l4, PageType::L4).unwrap();
            assert!(!shares(&ft, l4), "slot {slot}");
        }
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [3, 3, 3, 2], "the others take their own uses");
        for l4 in [1, 2, 3] {
            ft.put_type(&mut mem, l4);
        }
        assert_eq!(type_counts(&ft, [30, 31, 32, 33]), [0; 4]);
    }

    /// One step of [`sharing_kernel_halves_keeps_every_l3_typed_exactly_while_referenced`].
    #[derive(Clone, Debug)]
    enum L4Op {
        /// Validate L4 `.0` (if it has no type) with kernel half `.1`.
        Validate(u64, usize),
        Release(u64),
        /// Write slot `.1` of L4 `.0` (if typed): at L3 `.2`, or cleared.
        Write(u64, usize, Option<u64>),
    }

    fn l4_op() -> impl proptest::strategy::Strategy<Value = L4Op> {
        use proptest::prelude::*;
        let l4 = 1u64..5;
        let slot = prop::sample::select(vec![0usize, 272, 300, 400, 511]);
        prop_oneof![
            (l4.clone(), 0usize..4).prop_map(|(m, t)| L4Op::Validate(m, t)),
            l4.clone().prop_map(L4Op::Release),
            (l4, slot, prop::option::of(30u64..36)).prop_map(|(m, s, t)| L4Op::Write(m, s, t)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        /// Whatever the order of validations, releases and writes, an L3 is
        /// typed exactly while a typed L4 has a present entry at it, and
        /// nothing is left once every L4 is released.
        #[test]
        fn sharing_kernel_halves_keeps_every_l3_typed_exactly_while_referenced(
            ops in proptest::collection::vec(l4_op(), 1..40)
        ) {
            let (mut ft, mut mem) = setup();
            let halves = [[30, 31, 32], [30, 31, 32], [30, 33, 32], [34, 35, 30]];
            for op in ops {
                match op {
                    L4Op::Validate(m, t) if ft.get(m).unwrap().type_count == 0 => {
                        for slot in [0, 272, 300, 400, 511] {
                            mem.write_u64(m, slot, 0);
                        }
                        kernel_half(&mut mem, m, halves[t]);
                        ft.get_type(&mut mem, m, PageType::L4).unwrap();
                    }
                    L4Op::Release(m) => ft.put_type(&mut mem, m),
                    L4Op::Write(m, slot, l3) if ft.get(m).unwrap().type_count > 0 => {
                        let v = l3.map_or(0, |t| e(t, _PAGE_PRESENT | _PAGE_RW));
                        ft.update_entry(&mut mem, m, slot, v, false, true).unwrap();
                    }
                    _ => {}
                }
                for l3 in 30..36u64 {
                    let referenced = (1..5u64).any(|m| {
                        ft.get(m).unwrap().type_count > 0
                            && [0, 272, 300, 400, 511].iter().any(|&s| {
                                let v = mem.read_u64(m, s);
                                v & _PAGE_PRESENT != 0 && entry_mfn(v) == l3
                            })
                    });
                    let f = ft.get(l3).unwrap();
                    proptest::prop_assert_eq!(f.type_count > 0, referenced, "L3 {}", l3);
                    proptest::prop_assert_eq!(f.ty == PageType::L3, referenced, "L3 {}", l3);
                }
            }
            for m in 1..5u64 {
                ft.put_type(&mut mem, m);
            }
            for l3 in 30..36u64 {
                proptest::prop_assert_eq!(ft.get(l3).unwrap().type_count, 0);
            }
        }
    }
}
