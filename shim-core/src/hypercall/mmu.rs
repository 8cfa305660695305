//! Page-table hypercalls: `mmu_update`, `update_va_mapping`, `mmuext_op`.

use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::mm::frames::{MmError, PageType};
use crate::platform::Platform;

const MMU_UPDATE_PREEMPTED: u64 = 1 << 31;
const DOMID_SELF: u64 = 0x7ff0;

#[repr(C)]
#[derive(Clone, Copy)]
struct MmuUpdate {
    ptr: u64,
    val: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MmuextOp {
    cmd: u32,
    _pad: u32,
    arg1: u64,
    arg2: u64,
}
const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);

/// Every vCPU that is up (bit n = vCPU n): who may hold stale translations.
pub fn up_vcpus(c: &Ctx) -> u64 {
    c.d.vcpus.iter().enumerate().filter(|(_, v)| v.is_up()).fold(0, |m, (i, _)| m | (1 << i))
}

/// A frame is about to become a page table: no CPU may keep a writable
/// translation of it from before, or another vCPU could write an entry while
/// the table is validated and leave it unchecked (Xen flushes on the type
/// change, before `alloc_page_type`). Called with the domain lock held, so no
/// new writable mapping can appear in between; a vCPU waiting for the lock
/// still answers the flush.
pub(crate) fn flush_before_promotion<P: Platform>(c: &Ctx, p: &mut P) {
    p.flush_tlb_mask(up_vcpus(c), None);
}

/// Write one page-table (or plain) entry at machine address `ptr`. Out of
/// line for every caller but the commonest ([`pt_update_inline`]).
#[inline(never)]
pub fn pt_update<P: Platform>(c: &mut Ctx, p: &mut P, ptr: u64, val: u64, preserve_ad: bool) -> i64 {
    pt_update_inline(c, p, ptr, val, preserve_ad, false)
}

/// [`pt_update`] inlined into its caller (no call, one frame with its
/// caller's), for the commonest: `fastpath::mmu_update_one` and
/// [`update_va_mapping`], 61 of a fork's 76 entry updates. With `live_l1`,
/// the entry must be one of a live L1 table (-EINVAL if not, checked under
/// the same lock as the write).
#[inline(always)]
pub(crate) fn pt_update_inline<P: Platform>(
    c: &mut Ctx,
    p: &mut P,
    ptr: u64,
    val: u64,
    preserve_ad: bool,
    live_l1: bool,
) -> i64 {
    let mfn = ptr >> PAGE_SHIFT;
    if ptr & 7 != 0 {
        return -XEN_EINVAL;
    }
    let idx = ((ptr & (PAGE_SIZE - 1)) / 8) as usize;
    let mut l = c.d.lock();
    if live_l1 && !l.frames.get(mfn).is_some_and(|f| f.ty == PageType::L1 && f.type_count > 0) {
        return -XEN_EINVAL;
    }
    let mut r = l.frames.update_entry(p, mfn, idx, val, preserve_ad, false);
    if r == Err(MmError::Unflushed) {
        // A new page table: flushed for, and then written (still locked).
        flush_before_promotion(c, p);
        r = l.frames.update_entry(p, mfn, idx, val, preserve_ad, true);
    }
    drop(l);
    match r {
        Ok(_) => 0,
        Err(e) => {
            log::debug!("mmu_update {ptr:#x} <- {val:#x} refused: {e:?}");
            e.errno()
        }
    }
}

/// Run `op` over `count` guest records of type `T` at `list` (mmu_update and
/// mmuext_op share this), reporting how many succeeded through `pdone`.
fn batch<P: Platform, T: Copy>(
    c: &mut Ctx,
    p: &mut P,
    (list, count, pdone, dom): (u64, u64, u64, u64),
    mut op: impl FnMut(&mut Ctx, &mut P, &T) -> i64,
) -> i64 {
    if dom != DOMID_SELF && dom != 0 {
        return -XEN_EPERM;
    }
    let count = count & !MMU_UPDATE_PREEMPTED;
    let size = core::mem::size_of::<T>() as u64;
    let mut done = 0u64;
    let mut rc = 0;
    let mut rec = core::mem::MaybeUninit::<T>::uninit();
    for i in 0..count {
        let Ok(rec) = Domain::read_guest_into(p, list + i * size, &mut rec) else {
            rc = -XEN_EFAULT;
            break;
        };
        rc = op(c, p, rec);
        if rc != 0 {
            break;
        }
        done += 1;
    }
    if pdone != 0 && Domain::write_guest(p, pdone, &done).is_err() {
        return -XEN_EFAULT;
    }
    rc
}

#[inline(never)]
pub fn mmu_update<P: Platform>(c: &mut Ctx, p: &mut P, list: u64, count: u64, pdone: u64, dom: u64) -> i64 {
    // One plain update and no count asked for (Linux's `set_pte` outside a
    // batch, 43 a fork+exit+wait): no batch around it.
    if count == 1 && pdone == 0 && dom == DOMID_SELF {
        return match Domain::read_guest::<P, MmuUpdate>(p, list) {
            Ok(u) if u.ptr & 3 == MMU_NORMAL_PT_UPDATE => pt_update(c, p, u.ptr, u.val, false),
            Ok(_) => batch(c, p, (list, count, pdone, dom), one_update),
            Err(_) => -XEN_EFAULT,
        };
    }
    batch(c, p, (list, count, pdone, dom), one_update)
}

/// One `mmu_update` request.
fn one_update<P: Platform>(c: &mut Ctx, p: &mut P, u: &MmuUpdate) -> i64 {
    match u.ptr & 3 {
        MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_NO_TRANSLATE => pt_update(c, p, u.ptr & !3, u.val, false),
        MMU_PT_UPDATE_PRESERVE_AD => pt_update(c, p, u.ptr & !3, u.val, true),
        _ => {
            let mfn = u.ptr >> PAGE_SHIFT;
            let mut l = c.d.lock();
            // Only the guest's frames: a frame it gave up keeps its invalid entry.
            if l.frames.owned_by_guest(mfn) && (mfn as usize) < l.m2p.len() {
                l.m2p[mfn as usize] = u.val;
                0
            } else {
                -XEN_EINVAL
            }
        }
    }
}

/// The machine address of the L1 entry mapping `va` in the current kernel tables.
pub(crate) fn l1e_maddr<P: Platform>(c: &Ctx, p: &mut P, va: u64) -> Option<u64> {
    let mut mfn = c.v.guest_table;
    for level in (2..=4u32).rev() {
        let e = p.read_u64(mfn, ((va >> (12 + 9 * (level - 1))) & 511) as usize);
        if e & _PAGE_PRESENT == 0 || e & _PAGE_PSE != 0 {
            return None;
        }
        mfn = (e & PADDR_MASK) >> PAGE_SHIFT;
    }
    Some((mfn << PAGE_SHIFT) | (((va >> 12) & 511) * 8))
}

/// The vCPUs a flush request names: `UVMF_LOCAL` (0), `UVMF_ALL`, or a
/// pointer to a vCPU bitmap (`UVMF_MULTI`, and the mmuext `*_MULTI` ops).
fn flush_targets<P: Platform>(c: &Ctx, p: &mut P, sel: u64) -> Result<u64, i64> {
    match sel {
        0 => Ok(1 << c.v.id),
        UVMF_ALL => Ok(up_vcpus(c)),
        ptr => Domain::read_guest::<P, u64>(p, ptr).map(|m| m & up_vcpus(c)).map_err(|_| -XEN_EFAULT),
    }
}

#[inline(never)]
pub fn update_va_mapping<P: Platform>(c: &mut Ctx, p: &mut P, va: u64, val: u64, flags: u64) -> i64 {
    if !Domain::guest_va_ok(va, 1) {
        return -XEN_EINVAL;
    }
    let Some(ma) = l1e_maddr(c, p, va) else {
        return -XEN_EINVAL;
    };
    // The L1 must be a live page table (it is, when it hangs off the base table).
    let rc = pt_update_inline(c, p, ma, val, false, true);
    if rc != 0 {
        return rc;
    }
    let kind = flags & UVMF_FLUSHTYPE_MASK;
    if kind == UVMF_NONE {
        return 0;
    }
    let mask = match flush_targets(c, p, flags & !UVMF_FLUSHTYPE_MASK) {
        Ok(m) => m,
        Err(e) => return e,
    };
    p.flush_tlb_mask(mask, (kind == UVMF_INVLPG).then_some(va));
    0
}

/// Install `mfn` as a base table: it must validate as an L4.
fn new_baseptr<P: Platform>(c: &mut Ctx, p: &mut P, mfn: u64, user: bool) -> i64 {
    if user && mfn == 0 {
        let old = core::mem::take(&mut c.v.guest_table_user);
        if old != 0 {
            c.d.lock().frames.put_type(p, old);
        }
        return 0;
    }
    let mut l = c.d.lock();
    if l.frames.may_promote(mfn) {
        flush_before_promotion(c, p);
    }
    let r = l.frames.get_type(p, mfn, PageType::L4);
    drop(l);
    match r {
        Ok(_) => {}
        Err(e) => {
            log::debug!("new base table {mfn:#x} refused: {e:?}");
            return -XEN_EINVAL;
        }
    }
    let slot = if user { &mut c.v.guest_table_user } else { &mut c.v.guest_table };
    let old = core::mem::replace(slot, mfn);
    if user != c.v.kernel_mode {
        p.load_cr3(mfn);
    }
    if old != 0 {
        c.d.lock().frames.put_type(p, old);
    }
    0
}

#[inline(never)]
pub fn mmuext_op<P: Platform>(c: &mut Ctx, p: &mut P, list: u64, count: u64, pdone: u64, dom: u64) -> i64 {
    batch(c, p, (list, count, pdone, dom), |c, p, op: &MmuextOp| {
        let rc = one_mmuext(c, p, op);
        if rc != 0 {
            log::debug!("mmuext_op cmd {} arg {:#x} failed: {rc}", op.cmd, op.arg1);
        }
        rc
    })
}

fn one_mmuext<P: Platform>(c: &mut Ctx, p: &mut P, op: &MmuextOp) -> i64 {
    let mfn = op.arg1;
    match op.cmd {
        MMUEXT_PIN_L1_TABLE..=MMUEXT_PIN_L4_TABLE => {
            let ty = PageType::table(op.cmd as u8 + 1);
            let mut l = c.d.lock();
            if l.frames.get(mfn).is_some_and(|f| f.pinned()) {
                return -XEN_EINVAL;
            }
            if l.frames.may_promote(mfn) {
                flush_before_promotion(c, p);
            }
            match l.frames.get_type(p, mfn, ty) {
                Ok(_) => {
                    let _ = l.frames.pin(mfn);
                    0
                }
                Err(e) => {
                    log::debug!("pin {ty:?} {mfn:#x} refused: {e:?}");
                    -XEN_EINVAL
                }
            }
        }
        MMUEXT_UNPIN_TABLE => {
            let mut l = c.d.lock();
            if !l.frames.unpin(mfn) {
                return -XEN_EINVAL;
            }
            l.frames.put_type(p, mfn);
            0
        }
        MMUEXT_NEW_BASEPTR => new_baseptr(c, p, mfn, false),
        MMUEXT_NEW_USER_BASEPTR => new_baseptr(c, p, mfn, true),
        MMUEXT_TLB_FLUSH_LOCAL => {
            p.flush_tlb_mask(1 << c.v.id, None);
            0
        }
        MMUEXT_INVLPG_LOCAL => {
            p.flush_tlb_mask(1 << c.v.id, Some(op.arg1));
            0
        }
        MMUEXT_TLB_FLUSH_MULTI | MMUEXT_INVLPG_MULTI => {
            // arg2: a guest pointer to the vCPU bitmap.
            let Ok(mask) = flush_targets(c, p, op.arg2.max(1)) else { return -XEN_EFAULT };
            let va = (op.cmd == MMUEXT_INVLPG_MULTI).then_some(op.arg1);
            p.flush_tlb_mask(mask, va);
            0
        }
        MMUEXT_TLB_FLUSH_ALL => {
            p.flush_tlb_mask(up_vcpus(c), None);
            0
        }
        MMUEXT_INVLPG_ALL => {
            p.flush_tlb_mask(up_vcpus(c), Some(op.arg1));
            0
        }
        MMUEXT_FLUSH_CACHE | MMUEXT_FLUSH_CACHE_GLOBAL => -XEN_EACCES,
        MMUEXT_SET_LDT => {
            let (base, ents) = (op.arg1, op.arg2 as u32);
            if ents > 8192 || base & (PAGE_SIZE - 1) != 0 || !Domain::guest_va_ok(base, ents as u64 * 8) {
                return -XEN_EINVAL;
            }
            if ents != 0 {
                log::warn!("SET_LDT with {ents} entries: LDTs are not supported yet");
                return -XEN_ENOSYS;
            }
            c.v.ldt = (base, ents);
            0
        }
        // Under the domain lock: neither frame can leave the guest meanwhile.
        MMUEXT_CLEAR_PAGE => {
            let l = c.d.lock();
            if !writable_plain_page(&l.frames, mfn) {
                return -XEN_EINVAL;
            }
            p.frame_mut(mfn).fill(0);
            0
        }
        MMUEXT_COPY_PAGE => {
            let src = op.arg2;
            let l = c.d.lock();
            if !writable_plain_page(&l.frames, mfn) || !l.frames.owned_by_guest(src) {
                return -XEN_EINVAL;
            }
            let copy = *p.frame(src);
            *p.frame_mut(mfn) = copy;
            0
        }
        MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => -XEN_EOPNOTSUPP,
        _ => -XEN_ENOSYS,
    }
}

/// Is `mfn` a guest page Cocoon may write for the guest (no table or descriptor type)?
pub(crate) fn writable_plain_page(frames: &crate::mm::frames::FrameTable, mfn: u64) -> bool {
    matches!(frames.get(mfn), Some(f) if f.owner == crate::mm::frames::Owner::Guest && (f.type_count == 0 || matches!(f.ty, PageType::None | PageType::Writable)))
}
