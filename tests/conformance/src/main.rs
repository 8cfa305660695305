//! The PV conformance kernel: a tiny 64-bit Xen PV kernel that checks the
//! PV ABI corners Cocoon emulates against what Xen 4.17 documents and does.
//! It runs each check in turn, prints `conformance: NAME ok` or
//! `conformance: NAME FAIL` after a line saying why, on the console (console_io), then a
//! summary, and shuts down with SHUTDOWN_poweroff when every check passed,
//! SHUTDOWN_crash otherwise. `tests/tests/conformance.rs` boots it inside
//! Cocoon under QEMU.
#![no_std]
#![no_main]

#[macro_use]
mod console;
mod checks;
mod traps;
mod xen;
mod xenstore;

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use xen::StartInfo;

// The ELF notes Xen's loader (and Cocoon's) reads.
global_asm!(
    ".macro xen_note type",
    ".balign 4",
    ".long 4",
    ".long 4f - 3f",
    ".long \\type",
    ".asciz \"Xen\"",
    ".balign 4",
    "3:",
    ".endm",
    ".pushsection .note.Xen, \"a\"",
    "xen_note 6",
    ".asciz \"cocoon-pvtest\"",
    "4: xen_note 5",
    ".asciz \"xen-3.0\"",
    "4: xen_note 8",
    ".asciz \"generic\"",
    "4: xen_note 3",
    ".quad 0xffffffff80000000",
    "4: xen_note 4",
    ".quad 0",
    "4: xen_note 1",
    ".quad pvtest_start",
    "4: xen_note 2",
    ".quad hypercall_page",
    "4:",
    ".balign 4",
    ".popsection",
);

// Entry, as Xen starts a 64-bit PV kernel: %rsi = start_info, events
// masked, on the boot stack. Switch to this kernel's own stack.
global_asm!(
    ".pushsection .text.entry, \"ax\"",
    ".globl pvtest_start",
    "pvtest_start:",
    "lea rsp, [rip + {stack} + {size}]",
    "mov rdi, rsi",
    "call {main}",
    "ud2",
    ".popsection",
    stack = sym STACK,
    size = const STACK_SIZE,
    main = sym pvtest_main,
);

const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Stack([u8; STACK_SIZE]);

static mut STACK: Stack = Stack([0; STACK_SIZE]);

/// start_info's virtual address.
static START_INFO: AtomicU64 = AtomicU64::new(0);

pub fn start_info() -> &'static StartInfo {
    // SAFETY: set once at entry to the start_info page Xen mapped for the
    // kernel, which stays mapped and is only read.
    unsafe { &*(START_INFO.load(Ordering::Relaxed) as *const StartInfo) }
}

/// The machine frame of a page of this kernel's initial mapping (start_info's P2M).
pub fn mfn_of(va: u64) -> u64 {
    let pfn = (va - xen::VIRT_BASE) >> 12;
    // SAFETY: mfn_list is the guest's P2M, mapped by the builder, with an
    // entry for every page of nr_pages; `va` is within the initial mapping.
    unsafe { *(start_info().mfn_list as *const u64).add(pfn as usize) }
}

extern "C" fn pvtest_main(si: u64) -> ! {
    START_INFO.store(si, Ordering::Relaxed);
    println!("conformance: PV ABI checks, start_info at {si:#x}");
    traps::init();
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks::ALL {
        traps::reset();
        match check() {
            Ok(()) => {
                passed += 1;
                println!("conformance: {name} ok");
            }
            Err(checks::Failed) => {
                failed += 1;
                println!("conformance: {name} FAIL: (the line above)");
            }
        }
    }
    println!("conformance: {passed} passed, {failed} failed");
    xen::shutdown(if failed == 0 { xen::SHUTDOWN_poweroff } else { xen::SHUTDOWN_crash })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("conformance: panic: {info}");
    xen::shutdown(xen::SHUTDOWN_crash)
}
