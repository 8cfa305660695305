//! `int $N` from the guest kernel: delivered through trap_table[N] when the
//! gate's DPL allows the guest kernel (ring 1 to Xen), with the frame's rip
//! after the instruction; else #GP with error code (N << 3) | 2 at the
//! instruction, as the hardware and Xen's do_general_protection give it.
//! int3 is an exception, delivered whatever its gate's DPL.

use core::arch::asm;

use super::{ensure_eq, Outcome};
use crate::traps;

/// Run `int $N` for the constant `$n`; `(address of the int, address after, traps, last)`.
macro_rules! int_n {
    ($n:literal, $skip:expr) => {{
        if $skip {
            traps::expect_skip(2);
        } else {
            traps::expect(0, 0);
        }
        let (at, after): (u64, u64);
        // SAFETY: a software interrupt through the kernel's own trap table.
        unsafe {
            asm!(
                "lea {at}, [rip + 3f]",
                "lea {after}, [rip + 4f]",
                "3:",
                concat!("int ", $n),
                "4:",
                at = out(reg) at,
                after = out(reg) after,
            );
        }
        let (n, t) = traps::taken();
        (at, after, n, t)
    }};
}

pub fn int_n_follows_gate_dpl() -> Outcome {
    let (_, after, n, t) = int_n!("0x41", false);
    ensure_eq!((n, t.vector, t.error_code), (1, 0x41, None), "int $0x41 through a DPL 1 gate");
    ensure_eq!(t.rip, after, "its frame's rip");
    let (at, _, n, t) = int_n!("0x40", true);
    ensure_eq!((n, t.vector, t.error_code), (1, 13, Some((0x40 << 3) | 2)), "int $0x40 through a DPL 0 gate");
    ensure_eq!(t.rip, at, "the #GP's rip");
    let (at, _, n, t) = int_n!("0x80", true);
    ensure_eq!((n, t.vector, t.error_code), (1, 13, Some((0x80 << 3) | 2)), "int $0x80 through a DPL 0 gate");
    ensure_eq!(t.rip, at, "the #GP's rip");
    ensure_eq!(traps::install(3), 0, "trap table with int $0x80 at DPL 3");
    let (_, after, n, t) = int_n!("0x80", false);
    traps::install(0);
    ensure_eq!((n, t.vector, t.error_code), (1, 0x80, None), "int $0x80 through a DPL 3 gate");
    ensure_eq!(t.rip, after, "its frame's rip");
    Ok(())
}

pub fn int3_is_an_exception() -> Outcome {
    traps::expect(0, 0);
    let after: u64;
    // SAFETY: a breakpoint trap to the kernel's own handler, which returns.
    unsafe { asm!("lea {after}, [rip + 3f]", "int3", "3:", after = out(reg) after) };
    let (n, t) = traps::taken();
    ensure_eq!((n, t.vector, t.error_code), (1, 3, None), "int3");
    ensure_eq!(t.rip, after, "int3's frame rip (after it)");
    // A frame from kernel mode shows the kernel's CS with RPL 0, which an
    // iret takes back to kernel mode (RPL 3 means user mode to Xen).
    ensure_eq!(t.cs & 0xffff, 0xe030, "the frame's cs (FLAT_KERNEL_CS, RPL cleared)");
    Ok(())
}
