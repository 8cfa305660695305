//! The Xen PV ABI as a 64-bit guest sees it: constants under their Xen names
//! and `#[repr(C)]` structures with compile-time layout checks against
//! `xen/include/public/`. This is the one place ABI facts live.

pub mod consts;
pub mod msr;
pub mod structs;

pub use consts::*;
pub use msr::*;
pub use structs::*;
