//! What the core asks of the platform underneath.

/// Why the machine ends. The platform maps each to a distinct status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// `cocoon.dry-run` finished: everything was set up, nothing was run.
    DryRunDone,
    /// The guest asked for SHUTDOWN_poweroff.
    GuestPoweroff,
    /// The guest asked for SHUTDOWN_reboot.
    GuestReboot,
    /// The guest asked for SHUTDOWN_crash (e.g. after a panic).
    GuestCrash,
    /// Cocoon was given something it cannot run (no kernel, malformed kernel).
    BadInput,
    /// Cocoon itself faulted or panicked.
    CocoonFault,
    /// The guest got itself into a state it cannot leave (the PV analogue of a triple fault).
    GuestFault,
}

impl ExitReason {
    pub const ALL: [ExitReason; 7] = [
        ExitReason::DryRunDone,
        ExitReason::GuestPoweroff,
        ExitReason::GuestReboot,
        ExitReason::GuestCrash,
        ExitReason::BadInput,
        ExitReason::CocoonFault,
        ExitReason::GuestFault,
    ];
}
