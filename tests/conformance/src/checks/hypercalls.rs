//! Hypercalls Xen does not have.

use super::{ensure_eq, Outcome};
use crate::xen::{hypercall, XEN_ENOSYS};

/// Xen's hypercall table has no entry 50: -ENOSYS, every time.
pub fn unknown_hypercall_is_enosys() -> Outcome {
    ensure_eq!(hypercall(50, [0; 5]), -XEN_ENOSYS, "hypercall 50");
    ensure_eq!(hypercall(50, [1, 2, 3, 4, 5]), -XEN_ENOSYS, "hypercall 50 again");
    Ok(())
}
