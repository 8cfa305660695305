//! Page-table hypercalls: `mmu_update`, `update_va_mapping`, `mmuext_op`.

use crate::abi::*;
use crate::domain::Domain;
use crate::mm::frames::PageType;
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

/// Write one page-table (or plain) entry at machine address `ptr`.
pub fn pt_update<P: Platform>(d: &mut Domain, p: &mut P, ptr: u64, val: u64, preserve_ad: bool) -> i64 {
    let mfn = ptr >> PAGE_SHIFT;
    if ptr & 7 != 0 {
        return -XEN_EINVAL;
    }
    let idx = ((ptr & (PAGE_SIZE - 1)) / 8) as usize;
    match d.frames.update_entry(p, mfn, idx, val, preserve_ad) {
        Ok(promoted) => {
            if promoted {
                p.flush_tlb();
            }
            0
        }
        Err(e) => {
            log::debug!("mmu_update {ptr:#x} <- {val:#x} refused: {e:?}");
            e.errno()
        }
    }
}

/// Run `op` over `count` guest records of type `T` at `list` (mmu_update and
/// mmuext_op share this), reporting how many succeeded through `pdone`.
fn batch<P: Platform, T: Copy>(
    d: &mut Domain,
    p: &mut P,
    (list, count, pdone, dom): (u64, u64, u64, u64),
    mut op: impl FnMut(&mut Domain, &mut P, &T) -> i64,
) -> i64 {
    if dom != DOMID_SELF && dom != 0 {
        return -XEN_EPERM;
    }
    let count = count & !MMU_UPDATE_PREEMPTED;
    let size = core::mem::size_of::<T>() as u64;
    let mut done = 0u64;
    let mut rc = 0;
    for i in 0..count {
        let Ok(rec) = Domain::read_guest::<P, T>(p, list + i * size) else {
            rc = -XEN_EFAULT;
            break;
        };
        rc = op(d, p, &rec);
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

pub fn mmu_update<P: Platform>(d: &mut Domain, p: &mut P, list: u64, count: u64, pdone: u64, dom: u64) -> i64 {
    batch(d, p, (list, count, pdone, dom), |d, p, u: &MmuUpdate| match u.ptr & 3 {
        MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_NO_TRANSLATE => pt_update(d, p, u.ptr & !3, u.val, false),
        MMU_PT_UPDATE_PRESERVE_AD => pt_update(d, p, u.ptr & !3, u.val, true),
        _ => {
            let mfn = u.ptr >> PAGE_SHIFT;
            if d.frames.owned_by_guest(mfn) && (mfn as usize) < d.m2p.len() {
                d.m2p[mfn as usize] = u.val;
                0
            } else {
                -XEN_EINVAL
            }
        }
    })
}

/// The machine address of the L1 entry mapping `va` in the current kernel tables.
fn l1e_maddr<P: Platform>(d: &Domain, p: &mut P, va: u64) -> Option<u64> {
    let mut mfn = d.vcpu.guest_table;
    for level in (2..=4u32).rev() {
        let e = p.read_u64(mfn, ((va >> (12 + 9 * (level - 1))) & 511) as usize);
        if e & _PAGE_PRESENT == 0 || e & _PAGE_PSE != 0 {
            return None;
        }
        mfn = (e & PADDR_MASK) >> PAGE_SHIFT;
    }
    Some((mfn << PAGE_SHIFT) | (((va >> 12) & 511) * 8))
}

pub fn update_va_mapping<P: Platform>(d: &mut Domain, p: &mut P, va: u64, val: u64, flags: u64) -> i64 {
    if !Domain::guest_va_ok(va, 1) {
        return -XEN_EINVAL;
    }
    let Some(ma) = l1e_maddr(d, p, va) else {
        return -XEN_EINVAL;
    };
    // The L1 must be a live page table (it is, when it hangs off the base table).
    if d.frames.get(ma >> PAGE_SHIFT).map(|f| f.ty) != Some(PageType::L1) {
        return -XEN_EINVAL;
    }
    let rc = pt_update(d, p, ma, val, false);
    if rc != 0 {
        return rc;
    }
    match flags & UVMF_FLUSHTYPE_MASK {
        UVMF_TLB_FLUSH => p.flush_tlb(),
        UVMF_INVLPG => p.invlpg(va),
        _ => {}
    }
    0
}

/// Install `mfn` as a base table: it must validate as an L4.
fn new_baseptr<P: Platform>(d: &mut Domain, p: &mut P, mfn: u64, user: bool) -> i64 {
    if user && mfn == 0 {
        let old = core::mem::take(&mut d.vcpu.guest_table_user);
        if old != 0 {
            d.frames.put_type(p, old);
        }
        return 0;
    }
    match d.frames.get_type(p, mfn, PageType::L4) {
        Ok(promoted) => {
            if promoted {
                p.flush_tlb();
            }
        }
        Err(e) => {
            log::debug!("new base table {mfn:#x} refused: {e:?}");
            return -XEN_EINVAL;
        }
    }
    let slot = if user { &mut d.vcpu.guest_table_user } else { &mut d.vcpu.guest_table };
    let old = core::mem::replace(slot, mfn);
    if user != d.vcpu.kernel_mode {
        p.load_cr3(mfn);
    }
    if old != 0 {
        d.frames.put_type(p, old);
    }
    0
}

pub fn mmuext_op<P: Platform>(d: &mut Domain, p: &mut P, list: u64, count: u64, pdone: u64, dom: u64) -> i64 {
    batch(d, p, (list, count, pdone, dom), |d, p, op: &MmuextOp| {
        let rc = one_mmuext(d, p, op);
        if rc != 0 {
            log::debug!("mmuext_op cmd {} arg {:#x} failed: {rc}", op.cmd, op.arg1);
        }
        rc
    })
}

fn one_mmuext<P: Platform>(d: &mut Domain, p: &mut P, op: &MmuextOp) -> i64 {
    let mfn = op.arg1;
    match op.cmd {
        MMUEXT_PIN_L1_TABLE..=MMUEXT_PIN_L4_TABLE => {
            let ty = PageType::table(op.cmd as u8 + 1);
            if d.frames.get(mfn).is_some_and(|f| f.pinned) {
                return -XEN_EINVAL;
            }
            match d.frames.get_type(p, mfn, ty) {
                Ok(promoted) => {
                    if promoted {
                        p.flush_tlb();
                    }
                    let _ = d.frames.pin(mfn);
                    0
                }
                Err(e) => {
                    log::debug!("pin {ty:?} {mfn:#x} refused: {e:?}");
                    -XEN_EINVAL
                }
            }
        }
        MMUEXT_UNPIN_TABLE => {
            if !d.frames.unpin(mfn) {
                return -XEN_EINVAL;
            }
            d.frames.put_type(p, mfn);
            0
        }
        MMUEXT_NEW_BASEPTR => new_baseptr(d, p, mfn, false),
        MMUEXT_NEW_USER_BASEPTR => new_baseptr(d, p, mfn, true),
        MMUEXT_TLB_FLUSH_LOCAL | MMUEXT_TLB_FLUSH_MULTI | MMUEXT_TLB_FLUSH_ALL => {
            p.flush_tlb();
            0
        }
        MMUEXT_INVLPG_LOCAL | MMUEXT_INVLPG_MULTI | MMUEXT_INVLPG_ALL => {
            p.invlpg(op.arg1);
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
            d.vcpu.ldt = (base, ents);
            0
        }
        MMUEXT_CLEAR_PAGE => {
            if !writable_plain_page(d, mfn) {
                return -XEN_EINVAL;
            }
            p.frame_mut(mfn).fill(0);
            0
        }
        MMUEXT_COPY_PAGE => {
            let src = op.arg2;
            if !writable_plain_page(d, mfn) || !d.frames.owned_by_guest(src) {
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

fn writable_plain_page(d: &Domain, mfn: u64) -> bool {
    matches!(d.frames.get(mfn), Some(f) if f.owner == crate::mm::frames::Owner::Guest && (f.type_count == 0 || f.ty == PageType::None))
}
