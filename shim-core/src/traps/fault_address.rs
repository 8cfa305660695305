//! A page fault's address when the platform lost it.
//!
//! Nested under Xen 4.14 and 4.17 on QEMU TCG, every `mov %cr2` Cocoon runs
//! exits to the nested Xen (QEMU checks all CR reads against the CR0-read
//! intercept), and Xen before "x86/svm: Always sync guest CR2 on VMExit"
//! answers from a copy of CR2 it never updates: 0. The address is still
//! implied by the fault: an instruction fetch faults at RIP (or the next
//! page), and a data access faults at one of the faulting instruction's
//! memory accesses, explicit or implicit (stack, string). The candidate that
//! the guest's page tables make fault the way the error code says is the one.

use crate::abi::*;
use crate::domain::Ctx;
use crate::mm::walk::{translate, WalkError};
use crate::platform::Platform;
use crate::regs::GuestRegs;
use alloc::boxed::Box;
use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, InstructionInfoOptions, OpAccess, Register};

/// The page tables and the access a fault was taken with.
struct Access {
    l4_mfn: u64,
    error_code: u64,
}

impl Access {
    /// Would touching `va` fault with this error code? (The guest runs at CPL 3,
    /// so every access is a user access.)
    fn faults_at<P: Platform>(&self, p: &P, va: u64, fetch: bool) -> bool {
        let ec = self.error_code;
        match translate(p, self.l4_mfn, va) {
            Err(WalkError::NotPresent { .. }) => ec & PFEC_present == 0,
            Ok(t) => {
                ec & PFEC_present != 0 && (!t.user || (ec & PFEC_write_access != 0 && !t.writable) || (fetch && t.nx))
            }
            Err(_) => false,
        }
    }

    /// The first address of `va..va + len` that faults, if one does.
    fn first_fault<P: Platform>(&self, p: &P, va: u64, len: u64, fetch: bool) -> Option<u64> {
        if self.faults_at(p, va, fetch) {
            return Some(va);
        }
        let last = va.wrapping_add(len.max(1) - 1);
        let next_page = (va & !(PAGE_SIZE - 1)).wrapping_add(PAGE_SIZE);
        (last >> PAGE_SHIFT != va >> PAGE_SHIFT && self.faults_at(p, next_page, fetch)).then_some(next_page)
    }
}

/// The address the fault at `regs.rip` was taken for, from the guest's page
/// tables and the instruction; None when no candidate fits.
#[cold]
pub fn recover<P: Platform>(c: &mut Ctx, p: &mut P, regs: &GuestRegs) -> Option<u64> {
    let l4_mfn = if c.v.kernel_mode || c.v.guest_table_user == 0 { c.v.guest_table } else { c.v.guest_table_user };
    let access = Access { l4_mfn, error_code: regs.error_code };
    let mut bytes = [0u8; 15];
    if regs.error_code & PFEC_insn_fetch != 0 {
        // (Reported as such: Cocoon runs with EFER.NXE.)
        return access.first_fault(p, regs.rip, bytes.len() as u64, true);
    }
    // Without NX, a fetch fault says nothing of it: no (whole) instruction to read.
    let got = super::fetch(p, regs.rip, &mut bytes);
    let bitness = if regs.cs == FLAT_RING3_CS32 as u64 { 32 } else { 64 };
    let insn = Decoder::with_ip(bitness, &bytes[..got], regs.rip, DecoderOptions::NONE).decode();
    if insn.is_invalid() {
        return access.first_fault(p, regs.rip, bytes.len() as u64, true);
    }
    let (fs_base, gs_base) = (p.rdmsr(MSR_FS_BASE), p.rdmsr(MSR_GS_BASE));
    let value = |r: Register, _: usize, _: usize| -> Option<u64> {
        match r {
            Register::ES | Register::CS | Register::SS | Register::DS => Some(0),
            Register::FS => Some(fs_base),
            Register::GS => Some(gs_base),
            _ => {
                let full = r.full_register();
                if !(Register::RAX..=Register::R15).contains(&full) {
                    return None;
                }
                let v = regs.gpr((full as u32 - Register::RAX as u32) as u8);
                // Address registers are 16, 32 or 64 bits wide.
                Some(match r.size() {
                    2 => v & 0xffff,
                    4 => v & 0xffff_ffff,
                    _ => v,
                })
            }
        }
    };
    let write = regs.error_code & PFEC_write_access != 0;
    let factory = c.v.insn_info.get_or_insert_with(|| Box::new(InstructionInfoFactory::new()));
    let info = factory.info_options(&insn, InstructionInfoOptions::NO_REGISTER_USAGE);
    for m in info.used_memory() {
        let writes =
            matches!(m.access(), OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite);
        let reads =
            matches!(m.access(), OpAccess::Read | OpAccess::CondRead | OpAccess::ReadWrite | OpAccess::ReadCondWrite);
        if (write && !writes) || (!write && !reads) {
            continue;
        }
        let Some(va) = m.virtual_address(0, value) else { continue };
        let len = m.memory_size().size() as u64;
        if let Some(at) = access.first_fault(p, va, len, false) {
            return Some(at);
        }
    }
    None
}
