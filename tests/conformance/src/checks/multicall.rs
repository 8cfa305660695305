//! A multicall whose batch holds an iret: Xen performs the iret (the guest
//! resumes where its frame says, with its rax, r11 and rcx), writes the
//! iret's result (the restored rax) and ends the batch
//! (`arch_do_multicall_call` returns mc_exit); later entries do not run.

use core::arch::asm;

use super::{ensure_eq, Outcome};
use crate::xen::*;

const MARKER: u64 = 0x5a5a;

pub fn iret_ends_the_batch() -> Outcome {
    let mut list = [
        MulticallEntry { op: __HYPERVISOR_xen_version, result: MARKER, args: [0; 6] },
        MulticallEntry { op: __HYPERVISOR_iret, result: MARKER, args: [0; 6] },
        MulticallEntry { op: __HYPERVISOR_xen_version, result: MARKER, args: [0; 6] },
    ];
    let (landed, rax, r11): (u64, u64, u64);
    // SAFETY: builds an iret frame below the current stack pointer (the
    // target is not built with a red zone), then calls multicall. The iret
    // in the batch returns to label 3 with the saved stack pointer; if the
    // multicall returns instead, the stack is put back the same way.
    // Every register the hypercall or the iret may change is an output.
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov eax, ss",
            "push rax",
            "push r12",
            "pushfq",
            "and qword ptr [rsp], ~0x200", // IF clear: events stay masked
            "mov eax, cs",
            "and eax, ~3",      // RPL 0: back to the kernel (RPL 3 would be user mode)
            "push rax",
            "lea rax, [rip + 3f]",
            "push rax",
            "push 0",           // iret's flags: no VGCF_in_syscall
            // The stub pushes rcx and r11 and the call its return address:
            // at the syscall, the frame reads rax = r11, r11 = rcx, rcx = the
            // return address, then the words pushed above.
            "mov r11, 0x12345678",
            "mov rcx, 0xabcd",
            "call r14",
            "mov r13, 0",       // the multicall returned: no iret
            "jmp 4f",
            "3:",
            "mov r13, 1",
            "cmp rsp, r12",
            "je 4f",
            "mov r13, 2",       // the iret's rsp was not the frame's
            "4:",
            "mov rsp, r12",
            in("r14") stub(__HYPERVISOR_multicall),
            inout("rdi") list.as_mut_ptr() => _,
            inout("rsi") list.len() => _,
            out("rdx") _, out("r10") _, out("r8") _, out("r9") _,
            out("rax") rax, out("rcx") _, out("r11") r11,
            out("r12") _, out("r13") landed,
        );
    }
    ensure_eq!(landed, 1, "where the guest resumed (1: the iret frame's rip and rsp, 0: after the multicall)");
    ensure_eq!(rax, 0x1234_5678, "rax after the iret (the frame's)");
    ensure_eq!(r11, 0xabcd, "r11 after the iret (the frame's)");
    ensure_eq!(list[0].result, hypercall(__HYPERVISOR_xen_version, [0; 5]) as u64, "the first call's result");
    ensure_eq!(list[1].result, 0x1234_5678, "the iret's result (its restored rax)");
    ensure_eq!(list[2].result, MARKER, "the entry after the iret (must not run)");
    Ok(())
}
