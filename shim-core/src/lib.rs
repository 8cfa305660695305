//! The heart of Cocoon: the Xen PV ABI and everything that runs a PV guest,
//! independent of the platform underneath. It never touches hardware or the
//! hypervisor directly; `hvm-glue` (and test doubles) implement its traits.
#![cfg_attr(not(test), no_std)]
// ABI constants keep their Xen names (`__HYPERVISOR_mmu_update`, `XENFEAT_dom0`, ...).
#![allow(non_upper_case_globals)]

extern crate alloc;

pub mod abi;
pub mod bootcfg;
pub mod bootdisk;
pub mod builder;
pub mod console;
pub mod domain;
pub mod events;
pub mod fastpath;
pub mod hypercall;
pub mod loader;
pub mod mm;
pub mod platform;
pub mod regs;
pub mod stats;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod traps;
pub mod xenstore;
