//! Small hypercalls: debug registers, console_io, vm_assist, segment bases, physdev.

use crate::abi::*;
use crate::domain::*;
use crate::platform::{Fault, Platform};

/// HYPERVISOR_set_debugreg, as Xen 4.17's `set_debugreg` (-ENODEV where the
/// CPU would raise #UD, -EINVAL for a reserved bit, -EPERM for one that is
/// not the guest's to set): the value is kept for
/// the vCPU and loaded into this CPU's register (the guest's vCPU runs here),
/// so its breakpoints and watchpoints fire in the guest as natively.
pub fn set_debugreg<P: Platform>(c: &mut Ctx, p: &mut P, reg: u64, value: u64) -> i64 {
    let de = c.v.cr4 & X86_CR4_DE != 0;
    match reg {
        0..=3 => {
            // Only guest addresses: a breakpoint never fires in Cocoon's code.
            if !Domain::guest_va_ok(value, 8) {
                return -XEN_EPERM;
            }
            c.v.debugreg[reg as usize] = value;
            p.write_debugreg(reg as u8, value);
        }
        4 if de => return -XEN_ENODEV,
        4..=7 if value >> 32 != 0 => return -XEN_EINVAL,
        4 | 6 => {
            // Bits 4-11 and 16-31 read as 1, bit 12 as 0, 32-63 as 0.
            let v = (value & 0xffff_efff) | X86_DR6_DEFAULT;
            c.v.debugreg[6] = v;
            p.write_debugreg(6, v);
        }
        5 if de => return -XEN_ENODEV,
        5 | 7 => {
            // Bit 10 reads as 1; bits 11, 12, 14 and 15 as 0.
            let mut v = (value & 0xffff_27ff) | X86_DR7_DEFAULT;
            if v & DR_GENERAL_DETECT != 0 {
                return -XEN_EPERM;
            }
            // I/O breakpoints exist only with CR4.DE; Xen emulates their
            // enables (the CPU cannot see the guest's port accesses) and keeps
            // them out of the hardware register.
            let mut io_enable = 0;
            if v & DR7_ACTIVE_MASK != 0 {
                for field in 0..4 {
                    let shift = DR_CONTROL_SHIFT + field * DR_CONTROL_SIZE;
                    if (v >> shift) & 3 == DR_IO {
                        if !de {
                            return -XEN_EPERM;
                        }
                        io_enable |= v & (3 << (2 * field));
                    }
                }
            }
            v &= !io_enable;
            c.v.dr7_emul = io_enable;
            c.v.debugreg[7] = v;
            p.write_debugreg(7, v);
        }
        _ => return -XEN_ENODEV,
    }
    0
}

/// HYPERVISOR_get_debugreg, as Xen's: DR7 with the emulated I/O enables.
/// (A DR0-3 address in the top page reads as a value in -4095..-1: the
/// hypercall cannot tell it from an error, as with Xen.)
pub fn get_debugreg(c: &mut Ctx, reg: u64) -> i64 {
    read_debugreg(c, reg).map_or(-XEN_ENODEV, |v| v as i64)
}

/// Debug register `reg` as the guest reads it; `None` where the CPU would raise #UD.
pub fn read_debugreg(c: &Ctx, reg: u64) -> Option<u64> {
    let de = c.v.cr4 & X86_CR4_DE != 0;
    match reg {
        0..=3 | 6 => Some(c.v.debugreg[reg as usize]),
        4 if !de => Some(c.v.debugreg[6]),
        5 | 7 if reg == 7 || !de => Some(c.v.debugreg[7] | c.v.dr7_emul),
        _ => None,
    }
}

/// A #DB the guest took: the CPU's DR6 merged into the vCPU's as Xen's
/// `do_debug` does (status bits accumulate until the guest clears them; the
/// active-low ones clear), for the guest's handler to read with get_debugreg.
pub fn note_debug_exception<P: Platform>(c: &mut Ctx, p: &mut P) {
    let dr6 = p.take_dr6();
    c.v.debugreg[6] |= dr6 & !X86_DR6_DEFAULT;
    c.v.debugreg[6] &= dr6 | !X86_DR6_DEFAULT;
}

pub fn console_io<P: Platform>(p: &mut P, cmd: u64, count: u64, buf: u64) -> i64 {
    match cmd {
        CONSOLEIO_write => {
            let mut done = 0;
            let mut chunk = [0u8; 256];
            while done < count {
                let n = (count - done).min(chunk.len() as u64) as usize;
                if !Domain::guest_va_ok(buf + done, n as u64) || p.copy_from_guest(buf + done, &mut chunk[..n]).is_err()
                {
                    return -XEN_EFAULT;
                }
                p.console_write(&chunk[..n]);
                done += n as u64;
            }
            count as i64
        }
        CONSOLEIO_read => 0,
        _ => -XEN_ENOSYS,
    }
}

pub fn vm_assist(c: &mut Ctx, cmd: u64, ty: u64) -> i64 {
    if ty >= 64 || VMASST_VALID & (1 << ty) == 0 {
        return -XEN_EINVAL;
    }
    match cmd {
        0 => {
            c.d.vm_assist.fetch_or(1 << ty, core::sync::atomic::Ordering::Relaxed);
        }
        1 => {
            c.d.vm_assist.fetch_and(!(1 << ty), core::sync::atomic::Ordering::Relaxed);
        }
        _ => return -XEN_ENOSYS,
    }
    0
}

pub fn set_segment_base<P: Platform>(c: &mut Ctx, p: &mut P, which: u64, base: u64) -> i64 {
    let canonical = ((base as i64) << 16 >> 16) as u64 == base;
    if which != SEGBASE_GS_USER_SEL && !canonical {
        return -XEN_EINVAL;
    }
    // In guest kernel mode the active GS base is the kernel's.
    let (active, inactive) = (MSR_GS_BASE, MSR_SHADOW_GS_BASE);
    match which {
        SEGBASE_FS => p.wrmsr(MSR_FS_BASE, base),
        SEGBASE_GS_USER => p.wrmsr(if c.v.kernel_mode { inactive } else { active }, base),
        SEGBASE_GS_KERNEL => p.wrmsr(if c.v.kernel_mode { active } else { inactive }, base),
        SEGBASE_GS_USER_SEL => p.load_user_gs_selector(base as u16),
        _ => return -XEN_EINVAL,
    }
    0
}

pub fn physdev_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, arg: u64) -> i64 {
    match cmd {
        PHYSDEVOP_set_iopl => match Domain::read_guest::<P, u32>(p, arg) {
            Ok(iopl) if iopl <= 3 => {
                c.v.iopl = iopl;
                0
            }
            Ok(_) => -XEN_EINVAL,
            Err(Fault) => -XEN_EFAULT,
        },
        PHYSDEVOP_set_iobitmap => {
            // struct physdev_set_iobitmap { uint8_t *bitmap; uint32_t nr_ports; }
            let Ok(a) = Domain::read_guest::<P, [u64; 2]>(p, arg) else {
                return -XEN_EFAULT;
            };
            let (bitmap, nr_ports) = (a[0], a[1] as u32);
            if !Domain::guest_va_ok(bitmap, IOBMP_BYTES) || nr_ports > 65536 {
                return -XEN_EINVAL;
            }
            c.v.iobmp = bitmap;
            c.v.iobmp_limit = nr_ports;
            0
        }
        _ => -XEN_ENOSYS,
    }
}
