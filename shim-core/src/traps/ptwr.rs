//! Writable page tables (`VMASST_TYPE_writable_pagetables`, `pv/ro-page-fault.c`):
//! a guest kernel store to a read-only-mapped, live L1 table is decoded,
//! checked like `mmu_update` and done on the guest's behalf.

use super::decode::{decode, Insn};
use crate::abi::*;
use crate::domain::Ctx;
use crate::mm::frames::PageType;
use crate::mm::walk::translate;
use crate::platform::Platform;
use crate::regs::*;

/// The new entry value and what the instruction leaves in registers/flags.
struct Outcome {
    new: u64,
    /// (register, value) to write back, e.g. the old value for xchg.
    reg: Option<(u8, u64)>,
    /// Flags to set/clear: (mask, value).
    flags: Option<(u64, u64)>,
}

const ZF: u64 = 1 << 6;
const FLAGS_ARITH: u64 = X86_EFLAGS_CF | (1 << 2) | (1 << 4) | ZF | (1 << 7) | (1 << 11);

/// Compute what `insn` does to the `size`-byte value `old` at the fault address.
fn compute(insn: &Insn, regs: &GuestRegs, old: u64, size: usize) -> Option<Outcome> {
    let mask = if size == 8 { !0 } else { (1u64 << (size * 8)) - 1 };
    let src = regs.gpr(insn.reg()) & mask;
    let imm = insn.imm & mask;
    let logic_flags = |v: u64| {
        let mut f = 0;
        if v & mask == 0 {
            f |= ZF;
        }
        if v & (1 << (size * 8 - 1)) != 0 {
            f |= 1 << 7;
        }
        if (v as u8).count_ones().is_multiple_of(2) {
            f |= 1 << 2;
        }
        Some((FLAGS_ARITH, f))
    };
    let bit_flags = |b: u64| Some((X86_EFLAGS_CF, if old & (1 << b) != 0 { X86_EFLAGS_CF } else { 0 }));
    Some(match (insn.two_byte, insn.opcode, insn.reg() & 7) {
        (false, 0x88 | 0x89, _) => Outcome { new: src, reg: None, flags: None },
        (false, 0xc6 | 0xc7, 0) => Outcome { new: imm, reg: None, flags: None },
        (false, 0x86 | 0x87, _) => Outcome { new: src, reg: Some((insn.reg(), old)), flags: None },
        (false, 0x08 | 0x09, _) => Outcome { new: old | src, reg: None, flags: logic_flags(old | src) },
        (false, 0x20 | 0x21, _) => Outcome { new: old & src, reg: None, flags: logic_flags(old & src) },
        (false, 0x80 | 0x81 | 0x83, 1) => Outcome { new: old | imm, reg: None, flags: logic_flags(old | imm) },
        (false, 0x80 | 0x81 | 0x83, 4) => Outcome { new: old & imm, reg: None, flags: logic_flags(old & imm) },
        (true, 0xb0 | 0xb1, _) => {
            let acc = regs.rax & mask;
            if acc == old {
                Outcome { new: src, reg: None, flags: Some((ZF, ZF)) }
            } else {
                Outcome { new: old, reg: Some((0, old)), flags: Some((ZF, 0)) }
            }
        }
        (true, 0xab, _) => Outcome {
            new: old | (1 << (src % (size as u64 * 8))),
            reg: None,
            flags: bit_flags(src % (size as u64 * 8)),
        },
        (true, 0xb3, _) => Outcome {
            new: old & !(1 << (src % (size as u64 * 8))),
            reg: None,
            flags: bit_flags(src % (size as u64 * 8)),
        },
        (true, 0xba, 5) => Outcome {
            new: old | (1 << (imm % (size as u64 * 8))),
            reg: None,
            flags: bit_flags(imm % (size as u64 * 8)),
        },
        (true, 0xba, 6) => Outcome {
            new: old & !(1 << (imm % (size as u64 * 8))),
            reg: None,
            flags: bit_flags(imm % (size as u64 * 8)),
        },
        _ => return None,
    })
}

fn operand_size(insn: &Insn) -> usize {
    match (insn.two_byte, insn.opcode) {
        (false, 0x88 | 0x86 | 0x08 | 0x20 | 0x80 | 0xc6) | (true, 0xb0) => 1,
        _ => insn.opsize(),
    }
}

/// Try to emulate a write fault at `cr2`. False: not a page-table write (bounce the #PF).
pub fn emulate<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, cr2: u64) -> bool {
    // Which frame does the faulting address hit, and is it a live L1 table?
    let Ok(t) = translate(p, c.v.guest_table, cr2) else { return false };
    if t.writable {
        return false;
    }
    match c.d.lock().frames.get(t.mfn) {
        Some(f) if f.ty == PageType::L1 && f.type_count > 0 => {}
        _ => return false,
    }
    let mut b = [0u8; 16];
    let got = super::fetch(p, regs.rip, &mut b);
    // The same bytes decode the same: the last two are remembered (a fork
    // write-protects with one instruction and clears with another).
    let insn = match c.v.ptwr_insn.iter().find(|(last, n, _)| *n == got && *last == b) {
        Some(&(_, _, insn)) => insn,
        None => {
            let insn = decode(&b[..got]);
            c.v.ptwr_insn[1] = c.v.ptwr_insn[0];
            c.v.ptwr_insn[0] = (b, got, insn);
            insn
        }
    };
    let Some(insn) = insn else {
        log::warn!(
            "page-table write by an instruction Cocoon does not decode at {:#x}: {:02x?}",
            regs.rip,
            &b[..got.min(8)]
        );
        return false;
    };
    if insn.mod_() == 3 {
        return false;
    }
    let size = operand_size(&insn);
    // Naturally aligned, inside one entry.
    if !cr2.is_multiple_of(size as u64) {
        return false;
    }
    let entry_ma = (t.mfn << PAGE_SHIFT) | (cr2 & (PAGE_SIZE - 1) & !7);
    let shift = (cr2 & 7) * 8;
    let old_entry = p.read_u64(t.mfn, ((cr2 & (PAGE_SIZE - 1)) / 8) as usize);
    let mask = if size == 8 { !0u64 } else { (1u64 << (size * 8)) - 1 };
    let old = (old_entry >> shift) & mask;
    let Some(out) = compute(&insn, regs, old, size) else {
        log::warn!("page-table write by an unsupported instruction at {:#x}: {:02x?}", regs.rip, &b[..insn.len]);
        return false;
    };
    let new_entry = (old_entry & !(mask << shift)) | ((out.new & mask) << shift);
    if new_entry != old_entry && crate::hypercall::mmu::pt_update(c, p, entry_ma, new_entry, false) != 0 {
        // Refused like a bad mmu_update: the guest sees the page fault.
        return false;
    }
    if let Some((r, v)) = out.reg {
        let cur = regs.gpr(r);
        let merged = if size >= 4 { v } else { (cur & !mask) | v };
        regs.set_gpr(r, merged);
    }
    if let Some((m, v)) = out.flags {
        regs.rflags = (regs.rflags & !m) | v;
    }
    regs.rip += insn.len as u64;
    c.v.stats.exits.emulated(crate::stats::Emulated::PageTableWrite);
    true
}
