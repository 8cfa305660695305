//! The heart of Cocoon: the Xen PV ABI and everything that runs a PV guest,
//! independent of the platform underneath. It never touches hardware or the
//! hypervisor directly; `hvm-glue` (and test doubles) implement its traits.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod abi;
pub mod builder;
pub mod loader;
pub mod mm;
pub mod platform;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
