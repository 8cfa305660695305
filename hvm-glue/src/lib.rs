//! HVM-specific glue for Cocoon.
//!
//! Everything here is `no_std`; the pure logic (CPUID signature parsing, boot
//! information parsing, command-line options) is unit-tested on the host.
#![cfg_attr(not(test), no_std)]
#![allow(non_upper_case_globals)]

extern crate alloc;

pub mod acpi_cpus;
pub mod ata;
pub mod bootinfo;
pub mod bundle;
pub mod cmdline;
pub mod debug_exit;
pub mod ioapic;
pub mod layout;
pub mod pci;
pub mod serial;
pub mod unplug;
pub mod xen_detect;
pub mod xen_host;
pub mod xen_hvm;
