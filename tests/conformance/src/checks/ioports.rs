//! Port I/O from the guest kernel (ring 1 to Xen, ring 0 with
//! VMASST_TYPE_architectural_iopl), as Xen 4.17's `guest_io_okay` and
//! `guest_io_read` give it a domU: without virtual IOPL or I/O bitmap
//! permission a #GP(0) at the instruction; with it the access completes, and
//! a port with no device behind it reads all ones.

use core::arch::asm;

use super::{ensure_eq, Outcome};
use crate::traps;
use crate::xen::*;

/// `in al, 0x80` with al preset; `(al, traps taken, last trap)`.
fn in_port_80() -> (u8, u64, traps::Taken) {
    traps::expect_skip(2);
    let mut al: u8 = 0x12;
    // SAFETY: a port read; the hypervisor decides what it does.
    unsafe { asm!("in al, 0x80", inout("al") al) };
    let (n, t) = traps::taken();
    (al, n, t)
}

/// `in ax, dx` (66 ed) for `port`.
fn in_word(port: u16) -> (u16, u64, traps::Taken) {
    traps::expect_skip(2);
    let mut ax: u16 = 0x1234;
    // SAFETY: a port read; the hypervisor decides what it does.
    unsafe { asm!("in ax, dx", inout("ax") ax, in("dx") port) };
    let (n, t) = traps::taken();
    (ax, n, t)
}

fn set_iopl(iopl: u32) -> i64 {
    let mut arg = iopl;
    physdev_op(PHYSDEVOP_set_iopl, &mut arg)
}

#[repr(C)]
struct SetIobitmap {
    bitmap: u64,
    nr_ports: u32,
    _pad: u32,
}

fn set_iobitmap(bitmap: &[u8], nr_ports: u32) -> i64 {
    let mut arg = SetIobitmap { bitmap: bitmap.as_ptr() as u64, nr_ports, _pad: 0 };
    physdev_op(PHYSDEVOP_set_iobitmap, &mut arg)
}

pub fn without_iopl_is_gp() -> Outcome {
    let (al, n, t) = in_port_80();
    ensure_eq!(n, 1, "traps taken by in al, 0x80 at IOPL 0");
    ensure_eq!((t.vector, t.error_code), (13, Some(0)), "the trap");
    ensure_eq!(al, 0x12, "al after the faulting in");
    Ok(())
}

pub fn with_iopl_reads_all_ones() -> Outcome {
    ensure_eq!(set_iopl(1), 0, "PHYSDEVOP_set_iopl(1)");
    let (al, n, _) = in_port_80();
    let (ax, n2, _) = in_word(0x1234);
    ensure_eq!(set_iopl(0), 0, "PHYSDEVOP_set_iopl(0)");
    ensure_eq!(n, 0, "traps taken by in al, 0x80 at IOPL 1");
    ensure_eq!(al, 0xff, "port 0x80 (no device for a domU)");
    ensure_eq!(n2, 0, "traps taken by in ax, dx");
    ensure_eq!(ax, 0xffff, "port 0x1234");
    // And back at IOPL 0, the #GP again.
    ensure_eq!(in_port_80().1, 1, "traps taken after set_iopl(0)");
    Ok(())
}

pub fn architectural_iopl() -> Outcome {
    ensure_eq!(vm_assist(VMASST_CMD_enable, VMASST_TYPE_architectural_iopl), 0, "enable architectural_iopl");
    // The kernel is ring 0 now: IOPL 0 lets it.
    let (al, n, _) = in_port_80();
    ensure_eq!(vm_assist(VMASST_CMD_disable, VMASST_TYPE_architectural_iopl), 0, "disable architectural_iopl");
    ensure_eq!((n, al), (0, 0xff), "(traps, al) at IOPL 0 as ring 0");
    ensure_eq!(in_port_80().1, 1, "traps taken as ring 1 again");
    Ok(())
}

static mut BITMAP: [u8; 128] = [0xff; 128];

pub fn bitmap() -> Outcome {
    // SAFETY: only this check touches the bitmap, single-threaded.
    let bitmap = unsafe {
        let b = &mut *core::ptr::addr_of_mut!(BITMAP);
        b[0x80 / 8] &= !1; // port 0x80 allowed
        &*b
    };
    ensure_eq!(set_iobitmap(bitmap, 65537), -XEN_EINVAL, "more ports than there are");
    ensure_eq!(set_iobitmap(bitmap, 0x400), 0, "set_iobitmap(0x400 ports)");
    let (al, n, _) = in_port_80();
    let (_, n81, t81) = in_word(0x81);
    let (_, n7f, _) = in_word(0x7f);
    ensure_eq!(set_iobitmap(bitmap, 0x80), 0, "set_iobitmap(0x80 ports)");
    let (_, n_beyond, _) = in_port_80();
    ensure_eq!(set_iobitmap(bitmap, 0), 0, "set_iobitmap(0)");
    ensure_eq!((n, al), (0, 0xff), "(traps, al) for an allowed port");
    ensure_eq!((n81, t81.vector, t81.error_code), (1, 13, Some(0)), "a word at 0x81 (not allowed)");
    ensure_eq!(n7f, 1, "traps for a word at 0x7f (0x7f not allowed)");
    ensure_eq!(n_beyond, 1, "traps for a port beyond nr_ports");
    Ok(())
}

/// `int3`, its handler returning with `actions`; the frame's rflags.
fn int3_frame_rflags(actions: u64) -> u64 {
    traps::expect(0, actions);
    // SAFETY: a breakpoint trap to the kernel's own handler, which returns.
    unsafe { asm!("int3") };
    traps::taken().1.rflags
}

/// With VMASST_TYPE_architectural_iopl, exception frames carry the virtual
/// IOPL in rflags, and HYPERVISOR_iret takes the frame's IOPL as the new
/// virtual IOPL (Xen's `pv_create_exception_frame` and `do_iret`).
pub fn architectural_iopl_through_iret() -> Outcome {
    ensure_eq!(set_iopl(0), 0, "PHYSDEVOP_set_iopl(0)");
    ensure_eq!(vm_assist(VMASST_CMD_enable, VMASST_TYPE_architectural_iopl), 0, "enable architectural_iopl");
    let first = int3_frame_rflags(traps::SET_IOPL3);
    let second = int3_frame_rflags(traps::CLEAR_IOPL);
    let third = int3_frame_rflags(0);
    ensure_eq!(vm_assist(VMASST_CMD_disable, VMASST_TYPE_architectural_iopl), 0, "disable architectural_iopl");
    ensure_eq!(set_iopl(0), 0, "PHYSDEVOP_set_iopl(0)");
    let iopl = |rflags: u64| (rflags & traps::X86_EFLAGS_IOPL) >> 12;
    ensure_eq!(iopl(first), 0, "IOPL in the first frame (set_iopl(0))");
    ensure_eq!(iopl(second), 3, "IOPL in the frame after an iret with IOPL 3");
    ensure_eq!(iopl(third), 0, "IOPL in the frame after an iret with IOPL 0");
    Ok(())
}
