//! Page faults and page-table updates as Xen gives them a 64-bit PV kernel.

use core::arch::asm;

use super::{ensure_eq, Outcome};
use crate::traps;
use crate::xen::*;
use crate::{mfn_of, start_info};

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// Where shared_info gets mapped.
static mut SHARED_INFO: Page = Page([0; 4096]);

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Map shared_info (again) at SHARED_INFO; its address.
pub fn map_shared_info() -> Result<u64, super::Failed> {
    let va = core::ptr::addr_of!(SHARED_INFO) as u64;
    let pte = (start_info().shared_info & ADDR_MASK) | _PAGE_PRESENT | _PAGE_RW;
    ensure_eq!(update_va_mapping(va, pte, UVMF_INVLPG), 0, "map shared_info");
    Ok(va)
}

/// A kernel-mode #PF: the frame has the hardware's error code with the
/// user bit cleared (the guest kernel is supervisor to itself, Xen's
/// `pv_inject_event`), rip at the instruction, and the address in the
/// vCPU's `arch.cr2` in shared_info.
pub fn page_fault_frame_and_cr2() -> Outcome {
    let va = map_shared_info()?;
    let cr2 = || {
        // SAFETY: vcpu_info[0].arch.cr2 in the shared_info page mapped above.
        unsafe { core::ptr::read_volatile((va + 16) as *const u64) }
    };
    let unmapped = 0x1000u64;
    traps::expect_skip(3);
    let mut v: u64 = 0x77;
    // SAFETY: a read of an unmapped user address; the #PF handler resumes
    // after the 3-byte instruction (48 8b 01).
    unsafe { asm!("mov rax, qword ptr [rcx]", in("rcx") unmapped, inout("rax") v) };
    let (n, t) = traps::taken();
    ensure_eq!((n, t.vector, t.error_code), (1, 14, Some(0)), "read of an unmapped page: (traps, vector, error code)");
    ensure_eq!(v, 0x77, "rax after the faulting read");
    ensure_eq!(cr2(), unmapped, "vcpu_info.arch.cr2");
    traps::expect_skip(3);
    // SAFETY: a write to the unmapped page, skipped as above (48 89 01).
    unsafe { asm!("mov qword ptr [rcx], rax", in("rcx") unmapped + 8, in("rax") 0u64) };
    let (n, t) = traps::taken();
    ensure_eq!((n, t.vector, t.error_code), (1, 14, Some(2)), "write to an unmapped page");
    ensure_eq!(cr2(), unmapped + 8, "vcpu_info.arch.cr2 of the write");
    Ok(())
}

/// Two pages for a request that straddles them.
static mut REQUEST_PAGES: [Page; 2] = [Page([0; 4096]), Page([0; 4096])];

/// `mmu_update` reads its requests from guest memory as Xen's
/// `copy_from_guest` does: a list that is not mapped, lies in the
/// hypervisor's range or is not canonical is -EFAULT with nothing done; a
/// request across a page boundary is read whole; a machine-to-phys request
/// for a frame that is not the guest's is -EINVAL. (Cocoon reads the commonest
/// request, one normal update, in its entry assembly: these are its edges.)
pub fn mmu_update_reads_requests() -> Outcome {
    let l4 = mfn_of(start_info().pt_base);
    let slot = 301u64;
    let one = |list: u64| hypercall(__HYPERVISOR_mmu_update, [list, 1, 0, DOMID_SELF, 0]);
    ensure_eq!(one(0x1000), -XEN_EFAULT, "a list at an unmapped address");
    ensure_eq!(one(0x1000 - 8), -XEN_EFAULT, "a list across a page boundary into an unmapped page");
    ensure_eq!(one(0x8000_0000_0000), -XEN_EFAULT, "a list at a non-canonical address");
    ensure_eq!(one(0x7fff_ffff_fff8), -XEN_EFAULT, "a list whose second word is not canonical");
    // The read-only M2P lies in the hypervisor's range, mapped: a list there
    // is -EFAULT even where it reads as a normal update (an entry made a
    // multiple of 4 for the check, then put back).
    let base = core::ptr::addr_of_mut!(REQUEST_PAGES) as u64;
    let mfn = [mfn_of(base), mfn_of(base + 4096)].into_iter().find(|m| m % 512 != 511).unwrap_or(0);
    let machphys = |mfn: u64, pfn: u64| MmuUpdate { ptr: (mfn << 12) | MMU_MACHPHYS_UPDATE, val: pfn };
    let pfn = m2p(mfn);
    ensure_eq!(mmu_update(&[machphys(mfn, pfn & !3)]), 0, "an M2P entry of the guest's own");
    let in_m2p = one(RO_MPT_VIRT_START + 8 * mfn);
    ensure_eq!(mmu_update(&[machphys(mfn, pfn)]), 0, "the M2P entry put back");
    ensure_eq!(in_m2p, -XEN_EFAULT, "a list in the hypervisor's range (the M2P)");
    let across = base + 4096 - 8;
    let put = |at: u64, req: MmuUpdate| {
        // SAFETY: 16 bytes inside REQUEST_PAGES (two pages), unaligned writes.
        unsafe {
            core::ptr::write_unaligned(at as *mut u64, req.ptr);
            core::ptr::write_unaligned((at + 8) as *mut u64, req.val);
        }
    };
    let entry = (l4 << 12) | (slot * 8) | MMU_NORMAL_PT_UPDATE;
    put(across, MmuUpdate { ptr: entry, val: (l4 << 12) | _PAGE_PRESENT });
    ensure_eq!(one(across), 0, "a request across a page boundary: a read-only recursive L4 entry");
    let va = 0xffff_0000_0000_0000 | (slot << 39) | (slot << 30) | (slot << 21) | (slot << 12);
    // SAFETY: the recursive slot just installed maps the L4 at `va`, read-only.
    let e = unsafe { core::ptr::read_volatile((va + slot * 8) as *const u64) };
    ensure_eq!(e & ADDR_MASK, l4 << 12, "the entry the request across pages wrote, read through it");
    put(across, MmuUpdate { ptr: entry, val: 0 });
    ensure_eq!(one(across), 0, "removing it the same way");
    // Another kind of request, in one page and across two.
    for at in [base, across] {
        put(at, machphys(0xf_ffff_ffff, 0));
        ensure_eq!(one(at), -XEN_EINVAL, "a machine-to-phys update of a frame that is not the guest's");
    }
    Ok(())
}

/// The M2P's entry for `mfn`.
fn m2p(mfn: u64) -> u64 {
    // SAFETY: the M2P Xen maps read-only into every PV guest.
    unsafe { core::ptr::read_volatile((RO_MPT_VIRT_START + 8 * mfn) as *const u64) }
}

/// Linear page tables as Xen 4.17 allows them (`get_l4_linear_pagetable`):
/// an L4 entry pointing at its own L4 read-only is a recursive slot; a
/// writable one is refused (-EINVAL) since the guest could then write its
/// page tables.
pub fn linear_l4_slot() -> Outcome {
    let l4 = mfn_of(start_info().pt_base);
    let slot = 300u64;
    let set = |val: u64| mmu_update(&[MmuUpdate { ptr: (l4 << 12) | (slot * 8) | MMU_NORMAL_PT_UPDATE, val }]);
    ensure_eq!(set((l4 << 12) | _PAGE_PRESENT | _PAGE_RW), -XEN_EINVAL, "a writable recursive L4 entry");
    ensure_eq!(set((l4 << 12) | _PAGE_PRESENT), 0, "a read-only recursive L4 entry");
    // Through the slot four times: the L4 itself.
    let va = 0xffff_0000_0000_0000 | (slot << 39) | (slot << 30) | (slot << 21) | (slot << 12);
    // SAFETY: the recursive slot just installed maps the L4 at `va`, read-only.
    let e = unsafe { core::ptr::read_volatile((va + slot * 8) as *const u64) };
    ensure_eq!(e & ADDR_MASK, l4 << 12, "the slot's own entry read through it");
    ensure_eq!(set((l4 << 12) | _PAGE_PRESENT | _PAGE_RW), -XEN_EINVAL, "making the live entry writable");
    ensure_eq!(set(0), 0, "removing it");
    Ok(())
}
