//! Ending the machine with a status: QEMU's `isa-debug-exit` device.
//!
//! Writing `v` to port 0xf4 makes QEMU exit with status `(v << 1) | 1`. On a
//! machine without the device the write does nothing and the caller halts.

use shim_core::platform::ExitReason;

/// I/O port of `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// The value written to the debug-exit port for each reason.
pub const fn debug_exit_value(reason: ExitReason) -> u32 {
    match reason {
        ExitReason::DryRunDone => 0x10,
        ExitReason::GuestPoweroff => 0x11,
        ExitReason::GuestReboot => 0x12,
        ExitReason::GuestCrash => 0x13,
        ExitReason::BadInput => 0x20,
        ExitReason::CocoonFault => 0x21,
        ExitReason::GuestFault => 0x22,
    }
}

/// The process exit status QEMU reports for `reason`.
pub const fn qemu_exit_status(reason: ExitReason) -> i32 {
    ((debug_exit_value(reason) << 1) | 1) as i32
}

/// Ask QEMU to exit; returns if no debug-exit device is present.
pub fn request_exit(reason: ExitReason) {
    #[cfg(target_os = "none")]
    {
        use x86_64::instructions::port::Port;
        let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
        // SAFETY: port 0xf4 is the isa-debug-exit device or unclaimed; writing
        // to an unclaimed ISA port has no effect.
        unsafe { port.write(debug_exit_value(reason)) };
    }
    #[cfg(not(target_os = "none"))]
    let _ = reason;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_distinct_and_never_qemu_generic_failure() {
        let all = ExitReason::ALL;
        for (i, a) in all.iter().enumerate() {
            assert_ne!(qemu_exit_status(*a), 1, "{a:?} collides with QEMU's own error status");
            for b in &all[i + 1..] {
                assert_ne!(qemu_exit_status(*a), qemu_exit_status(*b));
            }
        }
        assert_eq!(qemu_exit_status(ExitReason::GuestPoweroff), 35);
    }
}
