//! Small hypercalls: debug registers, console_io, vm_assist, segment bases, physdev.

use crate::abi::*;
use crate::domain::*;
use crate::platform::{Fault, Platform};

pub fn set_debugreg(c: &mut Ctx, reg: u64, value: u64) -> i64 {
    match reg {
        0..=3 => {
            if !Domain::guest_va_ok(value, 1) {
                return -XEN_EPERM;
            }
            c.v.debugreg[reg as usize] = value;
        }
        6 => c.v.debugreg[6] = (value & 0xffff_efff) | 0xffff_0ff0,
        7 => {
            // Cocoon does not arm hardware breakpoints for the guest yet: enabling one fails.
            if value & 0xff != 0 {
                return -XEN_EPERM;
            }
            c.v.debugreg[7] = (value & 0xffff_ffff) | 0x400;
        }
        _ => return -XEN_EINVAL,
    }
    0
}

pub fn get_debugreg(c: &mut Ctx, reg: u64) -> i64 {
    match reg {
        0..=3 | 6 | 7 => c.v.debugreg[reg as usize] as i64,
        _ => -XEN_EINVAL,
    }
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
        PHYSDEVOP_set_iobitmap => 0,
        _ => -XEN_ENOSYS,
    }
}
