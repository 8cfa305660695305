//! Privileged instructions a PV guest kernel executes in ring 3, emulated as
//! Xen's `emul-priv-op.c` does, and CPUID through the forced-emulation prefix.

use super::cpuid::guest_cpuid;
use super::decode::Insn;
use crate::abi::*;
use crate::domain::Ctx;
use crate::platform::Platform;
use crate::regs::*;

/// `ud2; .ascii "xen"` before an instruction asks Xen to emulate it.
pub const XEN_EMULATE_PREFIX: [u8; 5] = [0x0f, 0x0b, b'x', b'e', b'n'];

const X86_CR0_TS: u64 = 1 << 3;
const X86_CR4_OSXSAVE: u64 = 1 << 18;
/// CR4 bits a PV guest controls (`pv_fixup_guest_cr4`): TSD, DE, OSFXSR,
/// OSXMMEXCPT, OSXSAVE.
const CR4_GUEST_MASK: u64 = (1 << 2) | (1 << 3) | (1 << 9) | (1 << 10) | X86_CR4_OSXSAVE;

/// `ud2 'xen' cpuid`: emulate CPUID with the PV policy.
pub fn forced_cpuid<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) -> bool {
    let mut b = [0u8; 7];
    if super::fetch(p, regs.rip, &mut b) != 7 || b[..5] != XEN_EMULATE_PREFIX || b[5..] != [0x0f, 0xa2] {
        return false;
    }
    let (leaf, sub) = (regs.rax as u32, regs.rcx as u32);
    let r = guest_cpuid(leaf, sub, p.cpuid(leaf, sub), c.v.cr4 & X86_CR4_OSXSAVE != 0);
    regs.rax = r[0] as u64;
    regs.rbx = r[1] as u64;
    regs.rcx = r[2] as u64;
    regs.rdx = r[3] as u64;
    regs.rip += 7;
    true
}

/// Emulate a privileged instruction (#GP(0) from guest kernel mode). False: not ours.
pub fn privileged<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, i: &Insn) -> bool {
    if !c.v.kernel_mode {
        return io(c, regs, i);
    }
    let len = i.len as u64;
    if i.two_byte {
        match i.opcode {
            0x32 => {
                // rdmsr: unknown MSRs #GP (Linux's *_safe accessors expect that).
                let Some(v) = super::msr::read(c, p, regs.rcx as u32) else { return false };
                regs.rax = v & 0xffff_ffff;
                regs.rdx = v >> 32;
            }
            0x30 => {
                let v = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
                if !super::msr::write(c, p, regs.rcx as u32, v) {
                    return false;
                }
            }
            0x01 if i.modrm == Some(0xd1) => {
                // xsetbv: XCR0 only, x87 always on, nothing the CPU lacks.
                let v = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
                if regs.rcx as u32 != 0 || v & 1 == 0 || v & !p.xcr0_supported() != 0 || (v & 4 != 0 && v & 2 == 0) {
                    return false;
                }
                p.xsetbv(0, v);
            }
            0x20 => {
                // mov %crN, %reg
                let v = match i.reg() {
                    0 => (p.read_cr0() & !X86_CR0_TS) | if c.v.virtual_ts { X86_CR0_TS } else { 0 },
                    2 => c.vcpu_info(p).arch.cr2,
                    3 => c.v.guest_table << PAGE_SHIFT,
                    4 => c.v.cr4,
                    _ => return false,
                };
                regs.set_gpr(i.rm(), v);
            }
            0x22 => {
                let v = regs.gpr(i.rm());
                match i.reg() {
                    0 => {
                        // Only TS may change.
                        let cur = (p.read_cr0() & !X86_CR0_TS) | if c.v.virtual_ts { X86_CR0_TS } else { 0 };
                        if (cur ^ v) & !X86_CR0_TS != 0 {
                            return false;
                        }
                        c.v.virtual_ts = v & X86_CR0_TS != 0;
                        p.set_cr0_ts(c.v.virtual_ts);
                    }
                    2 => c.vcpu_info(p).arch.cr2 = v,
                    4 => c.v.cr4 = v & CR4_GUEST_MASK,
                    _ => return false,
                }
            }
            0x06 => {
                // clts
                c.v.virtual_ts = false;
                p.set_cr0_ts(false);
            }
            0x09 | 0x08 => {} // wbinvd / invd: no cache control for a domU; ignored
            0x21 | 0x23 => {
                // mov to/from debug registers: the same store as set/get_debugreg.
                let reg = i.reg() as u64;
                if i.opcode == 0x21 {
                    let v = crate::hypercall::misc::get_debugreg(c, reg);
                    if v < 0 && v > -4096 {
                        return false;
                    }
                    regs.set_gpr(i.rm(), v as u64);
                } else if crate::hypercall::misc::set_debugreg(c, reg, regs.gpr(i.rm())) != 0 {
                    return false;
                }
            }
            _ => return false,
        }
        regs.rip += len;
        return true;
    }
    io(c, regs, i)
}

/// Port I/O: a domU has no ports. With sufficient virtual IOPL reads give
/// all ones and writes vanish, as on a Xen without I/O permissions granted;
/// without it the guest gets the #GP it would natively.
fn io(c: &mut Ctx, regs: &mut GuestRegs, i: &Insn) -> bool {
    if i.two_byte {
        return false;
    }
    let ring = if c.v.kernel_mode { 1 } else { 3 };
    if c.v.iopl < ring {
        return false;
    }
    let size = match i.opcode {
        0xe4 | 0xe6 | 0xec | 0xee | 0x6c | 0x6e => 1,
        0xe5 | 0xe7 | 0xed | 0xef | 0x6d | 0x6f => {
            if i.opsize16 {
                2
            } else {
                4
            }
        }
        0xfa | 0xfb => {
            // cli/sti with IOPL: the virtual IF is the event mask; nothing to do here.
            regs.rip += i.len as u64;
            return true;
        }
        _ => return false,
    };
    match i.opcode {
        0xe4 | 0xe5 | 0xec | 0xed => {
            let ones: u64 = if size == 4 { 0xffff_ffff } else { (1u64 << (size * 8)) - 1 };
            regs.rax = (regs.rax & !ones) | ones;
            if size == 4 {
                regs.rax &= 0xffff_ffff;
            }
        }
        0x6c..=0x6f => {
            // ins/outs: not emulated (no string I/O to devices that do not exist).
            return false;
        }
        _ => {}
    }
    regs.rip += i.len as u64;
    true
}
