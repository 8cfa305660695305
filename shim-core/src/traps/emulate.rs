//! Privileged instructions a PV guest kernel executes in ring 3, emulated as
//! Xen's `emul-priv-op.c` does, and CPUID through the forced-emulation prefix.

use super::cpuid::guest_cpuid;
use super::decode::Insn;
use crate::abi::*;
use crate::domain::{Ctx, Domain};
use crate::platform::Platform;
use crate::regs::*;
use core::sync::atomic::Ordering;

/// `ud2; .ascii "xen"` before an instruction asks Xen to emulate it.
pub const XEN_EMULATE_PREFIX: [u8; 5] = [0x0f, 0x0b, b'x', b'e', b'n'];

const X86_CR0_TS: u64 = 1 << 3;

/// The guest's view of CR4 after it writes `cr4` (`pv_fixup_guest_cr4`):
/// of the bits it controls, those its CPUID offers (FSGSBASE and OSXSAVE
/// only where the CPU has them; TSD and DE always); the rest are dropped.
fn fixup_guest_cr4<P: Platform>(p: &P, cr4: u64) -> u64 {
    let mut allowed = PV_CR4_GUEST_MASK;
    if p.cpuid(7, 0)[1] & 1 == 0 {
        allowed &= !X86_CR4_FSGSBASE;
    }
    if p.cpuid(1, 0)[2] & (1 << 26) == 0 {
        allowed &= !X86_CR4_OSXSAVE;
    }
    cr4 & allowed
}

/// CR4 as the guest reads it: its own bits, and the hardware's PAE, MCE,
/// OSFXSR and OSXMMEXCPT (`PV_CR4_GUEST_VISIBLE_MASK`).
pub fn guest_cr4<P: Platform>(c: &Ctx, p: &P) -> u64 {
    (c.v.cr4 & PV_CR4_GUEST_MASK) | (p.read_cr4() & PV_CR4_GUEST_VISIBLE_MASK)
}

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
        return io(c, p, regs, i);
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
                    4 => guest_cr4(c, p),
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
                    4 => {
                        // As Xen's write_cr: the bits a PV guest may not
                        // have are dropped, not refused. FSGSBASE is loaded
                        // into this CPU's CR4 (pv_make_cr4).
                        let new = fixup_guest_cr4(p, v);
                        if (new ^ c.v.cr4) & X86_CR4_FSGSBASE != 0 {
                            p.set_cr4_fsgsbase(new & X86_CR4_FSGSBASE != 0);
                        }
                        c.v.cr4 = new;
                    }
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
                    let Some(v) = crate::hypercall::misc::read_debugreg(c, reg) else {
                        return false;
                    };
                    regs.set_gpr(i.rm(), v);
                } else if crate::hypercall::misc::set_debugreg(c, p, reg, regs.gpr(i.rm())) != 0 {
                    return false;
                }
            }
            _ => return false,
        }
        regs.rip += len;
        return true;
    }
    io(c, p, regs, i)
}

/// The PCI configuration address port: Xen latches a dword written there
/// and gives it back to a dword read (`d->arch.pci_cf8`).
const PCI_CONF_ADDRESS: u32 = 0xcf8;
/// The PCI configuration data ports 0xcfc..=0xcff: all ones for a domU
/// (`pci_cfg_ok` is for the hardware domain only).
const PCI_CONF_DATA: u32 = 0xcfc;
/// The RTC/CMOS index port: Xen latches the byte written there and gives it
/// back (`d->arch.cmos_idx`, `rtc_guest_read`/`rtc_guest_write`); the data
/// port 0x71 reads all ones and drops writes for a domU.
const RTC_INDEX: u32 = 0x70;

/// Xen's `iopl_ok`: the guest kernel is ring 1 (ring 0 with
/// VMASST_TYPE_architectural_iopl), guest user mode ring 3, against the
/// virtual IOPL of PHYSDEVOP_set_iopl.
fn iopl_ok(c: &Ctx) -> bool {
    let cpl = match (c.v.kernel_mode, c.d.vm_assist(VMASST_TYPE_architectural_iopl)) {
        (true, true) => 0,
        (true, false) => 1,
        (false, _) => 3,
    };
    cpl <= c.v.iopl
}

/// Port I/O as Xen 4.17 gives it a domU (`read_io`/`write_io` in
/// `emul-priv-op.c`): with sufficient virtual IOPL the access succeeds, but
/// no port reaches hardware (`admin_io_okay` grants a domU none), so
/// `guest_io_read`/`guest_io_write` apply; without it the guest gets the #GP
/// it would natively. The PIT ports 0x42, 0x43 and 0x61 go to
/// `pv_pit_handler`, which without a vPIT (libxl gives a PV domU none) is
/// all ones as well.
/// Xen's `guest_io_okay`: the virtual IOPL allows it, or the guest's I/O
/// bitmap (PHYSDEVOP_set_iobitmap) has clear bits for every port of the
/// access. The bitmap is in guest kernel memory: from user mode it is read
/// through the kernel's page tables, as Xen's toggle_guest_pt; bytes that
/// cannot be read count as all ones (no access).
fn guest_io_okay<P: Platform>(c: &mut Ctx, p: &mut P, port: u32, bytes: u32) -> bool {
    if iopl_ok(c) {
        return true;
    }
    if port + bytes > c.v.iobmp_limit {
        return false;
    }
    let mut x = [0xffu8; 2];
    let at = c.v.iobmp + (port >> 3) as u64;
    let user = !c.v.kernel_mode;
    if user {
        p.load_cr3(c.v.guest_table);
    }
    if p.copy_from_guest(at, &mut x[..1]).is_ok() && p.copy_from_guest(at + 1, &mut x[1..]).is_err() {
        x[1] = 0xff;
    }
    if user {
        p.load_cr3(c.v.guest_table_user);
    }
    let mask = u16::from_le_bytes(x) as u32;
    mask & (((1 << bytes) - 1) << (port & 7)) == 0
}

fn io<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, i: &Insn) -> bool {
    if i.two_byte {
        return false;
    }
    let size = match i.opcode {
        0xe4 | 0xe6 | 0xec | 0xee => 1,
        0xe5 | 0xe7 | 0xed | 0xef => {
            if i.opsize16 {
                2
            } else {
                4
            }
        }
        0xfa | 0xfb if iopl_ok(c) => {
            // cli/sti with IOPL: ignored, as Xen's `validate` does (the
            // virtual IF is the event mask, which a POPF could not restore).
            regs.rip += i.len as u64;
            return true;
        }
        // ins/outs: not emulated (no string I/O to devices that do not exist).
        _ => return false,
    };
    let port = match i.opcode {
        0xe4..=0xe7 => i.imm as u8 as u32,
        _ => regs.rdx as u16 as u32,
    };
    if !guest_io_okay(c, p, port, size) {
        return false;
    }
    match i.opcode {
        0xe4 | 0xe5 | 0xec | 0xed => {
            let v = guest_io_read(c.d, port, size) as u64;
            regs.rax = match size {
                // A 32-bit destination clears the upper half, as natively.
                4 => v,
                _ => {
                    let mask = (1u64 << (size * 8)) - 1;
                    (regs.rax & !mask) | (v & mask)
                }
            };
        }
        _ => guest_io_write(c.d, port, size, regs.rax as u32),
    }
    regs.rip += i.len as u64;
    true
}

/// The width of the next piece of an access at `port` with `bytes` left: a
/// dword at 0xcf8 is one register, the data window is split at its dword
/// end (3 bytes as 2), anything else goes a byte at a time (Xen's loop).
fn piece(port: u32, bytes: u32) -> u32 {
    if port == PCI_CONF_ADDRESS && bytes == 4 {
        4
    } else if port & !3 == PCI_CONF_DATA {
        match bytes.min(4 - (port & 3)) {
            3 => 2,
            n => n,
        }
    } else {
        1
    }
}

/// Whether an access touches a port Xen gives a domU anything but all ones
/// or nothing for (the RTC index, the PCI configuration ports).
fn latched(port: u32, bytes: u32) -> bool {
    let end = port + bytes;
    (port <= RTC_INDEX && end > RTC_INDEX) || (port < PCI_CONF_DATA + 4 && end > PCI_CONF_ADDRESS)
}

/// Xen's `guest_io_read` for a domU: all ones except the latched index ports.
fn guest_io_read(d: &Domain, mut port: u32, mut bytes: u32) -> u32 {
    if !latched(port, bytes) {
        return u32::MAX >> (32 - bytes * 8);
    }
    let (mut data, mut shift) = (0u32, 0);
    while bytes != 0 {
        let size = piece(port, bytes);
        let sub = match port {
            RTC_INDEX => d.cmos_idx.load(Ordering::Relaxed) as u32,
            PCI_CONF_ADDRESS if size == 4 => return d.pci_cf8.load(Ordering::Relaxed),
            _ => !0,
        };
        if size == 4 {
            return sub;
        }
        data |= (sub & ((1 << (size * 8)) - 1)) << shift;
        shift += size * 8;
        port += size;
        bytes -= size;
    }
    data
}

/// Xen's `guest_io_write` for a domU: dropped except the latched index ports.
fn guest_io_write(d: &Domain, mut port: u32, mut bytes: u32, mut data: u32) {
    if !latched(port, bytes) {
        return;
    }
    while bytes != 0 {
        let size = piece(port, bytes);
        match port {
            RTC_INDEX => d.cmos_idx.store(data as u8, Ordering::Relaxed),
            PCI_CONF_ADDRESS if size == 4 => d.pci_cf8.store(data, Ordering::Relaxed),
            _ => {}
        }
        if size == 4 {
            return;
        }
        port += size;
        bytes -= size;
        data >>= size * 8;
    }
}
