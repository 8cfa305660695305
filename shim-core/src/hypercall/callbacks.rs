//! The guest's entry points: trap table, callbacks, and `HYPERVISOR_iret`.

use super::Ret;
use crate::abi::*;
use crate::domain::*;
use crate::platform::Platform;
use crate::regs::*;

fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}

/// `set_trap_table`: entries until one with address 0; a NULL list clears all.
pub fn set_trap_table<P: Platform>(c: &mut Ctx, p: &mut P, list: u64) -> i64 {
    if list == 0 {
        c.v.trap_ctxt = [TrapInfo::default(); 256];
        return 0;
    }
    for i in 0..256u64 {
        let Ok(t) = Domain::read_guest::<P, TrapInfo>(p, list + i * 16) else {
            return -XEN_EFAULT;
        };
        if t.address == 0 {
            break;
        }
        c.v.trap_ctxt[t.vector as usize] = t;
    }
    0
}

pub fn set_callbacks(c: &mut Ctx, event: u64, failsafe: u64, syscall: u64) -> i64 {
    c.v.event = Callback { address: event, mask_events: true };
    c.v.failsafe = Callback { address: failsafe, mask_events: false };
    c.v.syscall = Callback { address: syscall, mask_events: false };
    0
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CallbackRegister {
    ty: u16,
    flags: u16,
    _pad: u32,
    address: u64,
}

pub fn callback_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    let Ok(r) = Domain::read_guest::<P, CallbackRegister>(p, arg) else {
        return -XEN_EFAULT;
    };
    let cb = match cmd {
        CALLBACKOP_register => {
            if !canonical(r.address) {
                return -XEN_EINVAL;
            }
            Callback { address: r.address, mask_events: r.flags & CALLBACKF_mask_events != 0 }
        }
        CALLBACKOP_unregister => Callback::default(),
        _ => return -XEN_ENOSYS,
    };
    let slot = match r.ty {
        CALLBACKTYPE_event => {
            // The event callback always masks events.
            c.v.event = Callback { mask_events: true, ..cb };
            return 0;
        }
        CALLBACKTYPE_failsafe => &mut c.v.failsafe,
        CALLBACKTYPE_syscall => &mut c.v.syscall,
        CALLBACKTYPE_syscall32 => &mut c.v.syscall32,
        CALLBACKTYPE_sysenter => &mut c.v.sysenter,
        CALLBACKTYPE_nmi => {
            // Xen's register_guest_nmi_callback: trap_ctxt[2], events masked on entry.
            c.v.trap_ctxt[TRAP_nmi as usize] = if cb.address == 0 {
                TrapInfo::default()
            } else {
                TrapInfo { vector: TRAP_nmi as u8, flags: TI_IF_MASK, cs: FLAT_KERNEL_CS, _pad: 0, address: cb.address }
            };
            return 0;
        }
        _ => return -XEN_EINVAL,
    };
    *slot = cb;
    0
}

/// Would `iretq` accept `sel` as a ring-3 code (or stack) selector? Cocoon's
/// own flat selectors, or a present DPL-3 descriptor of the right kind in the
/// guest's GDT. (Xen lets the CPU fault and bounces to the failsafe callback;
/// Cocoon checks first, so a bad frame never faults inside Cocoon.)
fn selector_ok(c: &Ctx, sel: u64, code: bool) -> bool {
    let sel = sel as u16;
    if sel & 4 != 0 {
        return false; // LDT selectors: Cocoon supports no LDT
    }
    let flat: &[u16] = if code { &[FLAT_RING3_CS64, FLAT_RING3_CS32] } else { &[FLAT_RING3_SS64] };
    if flat.contains(&sel) {
        return true;
    }
    let idx = (sel >> 3) as usize;
    if idx == 0 || idx >= c.v.gdt_state.entries {
        return false;
    }
    crate::fastpath::descriptor_ok(c.v.gdt[idx], code)
}

/// `HYPERVISOR_iret` (`pv/iret.c`).
pub fn iret<P: Platform>(c: &mut Ctx, p: &mut P, regs: &mut GuestRegs) -> Ret {
    let Ok(f) = Domain::read_guest::<P, IretContext>(p, regs.rsp) else {
        c.crash(p, regs, "iret: the iret frame is not readable");
    };
    if !selector_ok(c, f.cs | 3, true) || !selector_ok(c, f.ss | 3, false) || !Domain::guest_va_ok(f.rip, 1) {
        let msg = alloc::format!("iret to a bad frame: cs {:#x} ss {:#x} rip {:#x}", f.cs, f.ss, f.rip);
        c.crash(p, regs, &msg);
    }
    if f.cs & 3 == 3 {
        if c.v.guest_table_user == 0 {
            c.crash(p, regs, "iret to user mode without a user page table");
        }
        c.toggle_guest_mode(p);
    }
    regs.rip = f.rip;
    regs.cs = f.cs | 3;
    regs.rflags = (f.rflags & !(X86_EFLAGS_IOPL | X86_EFLAGS_VM)) | X86_EFLAGS_IF | X86_EFLAGS_MBS;
    regs.rsp = f.rsp;
    regs.ss = f.ss | 3;
    if f.flags & VGCF_IN_SYSCALL != 0 {
        // sysret semantics: rcx and r11 carry rip and rflags.
        regs.rcx = regs.rip;
        regs.r11 = regs.rflags;
    } else {
        regs.rcx = f.rcx;
        regs.r11 = f.r11;
    }
    regs.rax = f.rax;
    c.vcpu_info(p).evtchn_upcall_mask = (f.rflags & X86_EFLAGS_IF == 0) as u8;
    // With VMASST_TYPE_architectural_iopl the frame's IOPL is the virtual
    // IOPL from now on, as PHYSDEVOP_set_iopl would set it.
    if c.d.vm_assist(VMASST_TYPE_architectural_iopl) {
        c.v.iopl = ((f.rflags & X86_EFLAGS_IOPL) >> 12) as u32;
    }
    // The end of an NMI handler (Xen's async_exception_cleanup).
    c.v.nmi_masked = false;
    Ret::Regs
}
