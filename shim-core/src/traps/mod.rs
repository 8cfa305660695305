//! Every entry from the guest: hypercalls, guest syscalls, exceptions and
//! software interrupts, bounced or emulated as Xen does, and the pending-event
//! check on the way back.

pub mod cpuid;
pub mod decode;
pub mod emulate;
pub mod fault_address;
pub mod msr;
pub mod ptwr;

use crate::abi::*;
use crate::domain::*;
use crate::hypercall::{self, Ret};
use crate::platform::Platform;
use crate::regs::*;
use crate::stats;

/// The software interrupt Linux uses for 32-bit system calls.
pub const INT80_VECTOR: u64 = 0x80;

pub const fn has_error_code(v: u64) -> bool {
    matches!(v, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Bounce exception `vector` into the guest's trap table.
pub fn inject<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, vector: u64, error_code: u64) {
    let t = c.v.trap_ctxt[vector as usize];
    let mut flags = 0;
    if has_error_code(vector) {
        flags |= TBF_EXCEPTION_ERRCODE;
    }
    if t.flags & TI_IF_MASK != 0 {
        flags |= TBF_INTERRUPT;
    }
    if let Err(why) = c.bounce(p, regs, t.address, flags, error_code) {
        let msg = alloc::format!("cannot deliver exception {vector} ({why})");
        c.crash(p, regs, &msg);
    }
}

/// The guest executed `int n`: deliver through trap_ctxt[n] if the guest
/// allowed it from this mode, else #GP as the hardware would, at the
/// instruction. `len` is the instruction's length; `at_insn` says whether
/// `regs.rip` is still at it (a #GP Cocoon decoded) or already past it (the
/// `int 0x80` gate, which lets ring 3 through as Xen's does).
fn soft_interrupt<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs, n: u64, len: u64, at_insn: bool) {
    let t = c.v.trap_ctxt[n as usize];
    // Guest kernel mode counts as ring 1 for the DPL check (PERMIT_SOFTINT).
    let ring = if c.v.kernel_mode { 1 } else { 3 };
    if t.address != 0 && (t.flags & TI_DPL_MASK) >= ring {
        if at_insn {
            regs.rip += len;
        }
        let flags = if t.flags & TI_IF_MASK != 0 { TBF_INTERRUPT } else { 0 };
        if let Err(why) = c.bounce(p, regs, t.address, flags, 0) {
            let msg = alloc::format!("cannot deliver int {n:#x} ({why})");
            c.crash(p, regs, &msg);
        }
    } else {
        // A #GP does not advance the instruction pointer (Xen's
        // int80_slow_path: "subq $2, UREGS_rip").
        if !at_insn {
            regs.rip = regs.rip.wrapping_sub(len);
        }
        inject(c, p, regs, TRAP_gp_fault, (n << 3) | 2);
    }
}

/// Handle an entry from the guest (ring 3). On return, `regs` is what the
/// guest resumes with.
pub fn guest_entry<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) {
    let kind = match regs.vector {
        ENTRY_SYSCALL if c.v.kernel_mode => None, // counted by number in `hypercall::dispatch`
        ENTRY_SYSCALL => Some(stats::EXIT_GUEST_SYSCALL),
        INT80_VECTOR => Some(stats::EXIT_INT80),
        v => Some(stats::EXIT_EXCEPTION + v.min(31) as usize),
    };
    if let Some(k) = kind {
        c.v.stats.exits.exit(k);
    }
    match regs.vector {
        ENTRY_SYSCALL => syscall(c, p, regs),
        TRAP_page_fault => page_fault(c, p, regs),
        TRAP_gp_fault => general_protection(c, p, regs),
        TRAP_invalid_op => invalid_op(c, p, regs),
        TRAP_no_device => {
            // Virtual CR0.TS: the guest's own #NM handler does the lazy FPU work.
            if c.v.virtual_ts {
                c.v.virtual_ts = false;
                p.set_cr0_ts(false);
            }
            inject(c, p, regs, TRAP_no_device, 0);
        }
        // `int3` and `into` (or `int $3`/`int $4`) through their DPL-3 gates:
        // exceptions, bounced whatever the guest's DPL (Xen's do_int3, do_trap).
        TRAP_int3 | 4 => inject(c, p, regs, regs.vector, 0),
        TRAP_debug => {
            crate::hypercall::misc::note_debug_exception(c, p);
            inject(c, p, regs, TRAP_debug, 0);
        }
        INT80_VECTOR => soft_interrupt(c, p, regs, INT80_VECTOR, 2, false),
        // An NMI for this vCPU (the HVM domain's: `xl trigger nmi`): the
        // guest's, delivered on the way out.
        TRAP_nmi => c.v.nmi_pending = true,
        TRAP_machine_check => {
            log::warn!("vector {} while the guest ran: ignored", regs.vector);
        }
        TRAP_double_fault => c.crash(p, regs, "double fault"),
        v if v < 32 => inject(c, p, regs, v, regs.error_code),
        _ => {}
    }
    exit_to_guest(c, p, regs);
}

fn invalid_op<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) {
    if emulate::forced_cpuid(c, p, regs) {
        c.v.stats.exits.emulated(stats::Emulated::Cpuid);
    } else {
        inject(c, p, regs, TRAP_invalid_op, 0);
    }
}

/// The last thing before returning to the guest.
pub fn exit_to_guest<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) {
    if let Err(why) = c.deliver_events(p, regs) {
        let msg = alloc::format!("cannot deliver an event upcall ({why})");
        c.crash(p, regs, &msg);
    }
}

fn syscall<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) {
    if c.v.kernel_mode {
        let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
        if let Ret::Value(v) = hypercall::dispatch(c, p, regs, regs.rax, args) {
            regs.rax = v as u64;
        }
        return;
    }
    // A system call of a guest process: into the guest kernel's syscall entry.
    let cb = c.v.syscall;
    if cb.address == 0 {
        // No entry point: #UD at the syscall instruction.
        regs.rip -= 2;
        inject(c, p, regs, TRAP_invalid_op, 0);
        return;
    }
    let flags = if cb.mask_events { TBF_INTERRUPT } else { 0 };
    if let Err(why) = c.bounce(p, regs, cb.address, flags, 0) {
        let msg = alloc::format!("cannot deliver a system call ({why})");
        c.crash(p, regs, &msg);
    }
    regs.rflags &= !X86_EFLAGS_DF;
}

fn page_fault<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) {
    let mut cr2 = p.read_cr2();
    let ec = regs.error_code;
    if cr2 == 0 {
        cr2 = recover_cr2(c, p, regs);
    }
    if c.v.kernel_mode
        && ec & (PFEC_present | PFEC_write_access | PFEC_insn_fetch | PFEC_reserved_bit)
            == PFEC_present | PFEC_write_access
        && c.d.vm_assist(VMASST_TYPE_writable_pagetables)
        && ptwr::emulate(c, p, regs, cr2)
    {
        return;
    }
    c.vcpu_info(p).arch.cr2 = cr2;
    // The hardware says "user" for both guest modes; only guest user mode is.
    let ec = if c.v.kernel_mode { ec & !PFEC_user_mode } else { ec | PFEC_user_mode };
    inject(c, p, regs, TRAP_page_fault, ec);
}

/// CR2 read as 0: find the address from the page tables and the instruction
/// (see `fault_address`); keep 0 when nothing fits (a real NULL access).
#[cold]
fn recover_cr2<P: Platform>(c: &mut Ctx, p: &mut P, regs: &GuestRegs) -> u64 {
    let Some(addr) = fault_address::recover(c, p, regs) else { return 0 };
    if addr != 0 {
        c.v.stats.cr2_recovered += 1;
        if c.v.stats.cr2_recovered == 1 {
            log::warn!(
                "the platform reported a page fault at {:#x} (error {:#x}) with CR2 = 0; the page tables and \
                 the instruction say {addr:#x} (reported once)",
                regs.rip,
                regs.error_code
            );
        }
    }
    addr
}

fn general_protection<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) {
    // Decode rather than trust the error code alone (TCG and CPUs differ).
    let mut b = [0u8; 16];
    let got = fetch(p, regs.rip, &mut b);
    if let Some(insn) = decode::decode(&b[..got]) {
        if !insn.two_byte && insn.opcode == 0xcd {
            soft_interrupt(c, p, regs, insn.imm & 0xff, insn.len as u64, true);
            return;
        }
        if regs.error_code == 0 && emulate::privileged(c, p, regs, &insn) {
            c.v.stats.exits.emulated(stats::Emulated::of(insn.two_byte, insn.opcode));
            return;
        }
    }
    inject(c, p, regs, TRAP_gp_fault, regs.error_code);
}

/// Read up to `buf.len()` instruction bytes at `rip` (fewer at a page end).
pub fn fetch<P: Platform>(p: &mut P, rip: u64, buf: &mut [u8]) -> usize {
    if !Domain::guest_va_ok(rip, buf.len() as u64) {
        return 0;
    }
    if p.copy_from_guest(rip, buf).is_ok() {
        return buf.len();
    }
    let first = (PAGE_SIZE - (rip & (PAGE_SIZE - 1))) as usize;
    let n = first.min(buf.len());
    if p.copy_from_guest(rip, &mut buf[..n]).is_ok() {
        n
    } else {
        0
    }
}
