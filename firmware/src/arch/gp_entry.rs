//! The #GP fast path: the guest kernel's `rdmsr` of a segment base (FS,
//! GS, and the inactive GS Linux reads at each context switch) answered in
//! assembly, following the contract in [`shim_core::fastpath`].
//!
//! Vector 13's stub comes here. Anything the contract does not cover (a
//! fault in Cocoon, an error code, guest user mode, no vCPU served by the
//! fast path on this CPU, an NMI or event due, a single-step, another
//! instruction or MSR) goes to `trap_common` with every guest register as
//! the CPU left it, where `traps::general_protection` decodes and emulates
//! it. Reading the instruction is the only access to guest memory; a fault
//! there is turned into the hand-over by [`fixup_for`].

use core::mem::{offset_of, size_of};

use hvm_glue::layout::DIRECT_MAP_BASE;
use shim_core::abi::{HYPERVISOR_VIRT_END, MSR_FS_BASE, MSR_SHADOW_GS_BASE};
use shim_core::fastpath as fp;
use shim_core::regs::X86_EFLAGS_TF;

use super::percpu::{CpuInfo, INFO_OFFSET, RING0_STACK_SIZE};
use super::syscall_entry::{SyscallSlot, SLOT_VCPU};

// The three MSRs the fast path reads are consecutive.
const _: () = assert!(MSR_SHADOW_GS_BASE == MSR_FS_BASE + 2);

core::arch::global_asm!(
    r#"
    .macro gp_pop_scratch
    pop r8
    pop rdx
    pop rcx
    pop rax
    .endm

    .section .text.hot, "ax"
    .balign 16
    /* The stub's vector and the CPU's error code and frame are on the stack;
       every other register is the guest's. */
    .global trap_gp
trap_gp:
    test byte ptr [rsp + 24], 3
    jz trap_common                      /* Cocoon's own fault */
    cmp qword ptr [rsp + 8], 0
    jne trap_common                     /* a selector's fault: the Rust path */
    push rax
    push rcx
    push rdx
    push r8                             /* the CPU's frame is now at rsp + 32 */
    /* rdx = the vCPU the fast path serves */
"#,
    fast_entry_vcpu!("gp_slow"),
    r#"
    cmp byte ptr [rdx + {kernel_mode}], 0
    je gp_slow                          /* guest user mode: port I/O, a #GP to bounce */
    cmp byte ptr [rdx + {nmi_pending}], 0
    jne gp_slow
    test qword ptr [rsp + 64], {eflags_tf}
    jnz gp_slow
"#,
    fast_entry_no_upcall_due!("r8d", "gp_slow"),
    r#"
    mov r8, [rsp + 48]                  /* r8 = rip: canonical, not Cocoon's */
"#,
    fast_guest_va_ok!("r8", "rcx", "gp_slow"),
    r#"
    .global gp_read
gp_read:
    movzx r8d, word ptr [r8]
    .global gp_read_end
gp_read_end:
    cmp r8d, 0x320f                     /* rdmsr, no prefix */
    jne gp_slow
    mov ecx, [rsp + 16]                 /* the guest's ecx: the MSR */
    lea r8d, [rcx + {minus_msr_fs_base}] /* ecx - MSR_FS_BASE, mod 2^32 */
    cmp r8d, 2
    ja gp_slow
    inc qword ptr [rdx + {count_gp}]
    inc qword ptr [rdx + {count_rdmsr}]
    rdmsr                               /* the guest's bases are the CPU's */
    mov [rsp + 24], rax                 /* into the guest's rax and rdx, */
    mov [rsp + 8], rdx                  /* upper halves clear */
    add qword ptr [rsp + 48], 2
    gp_pop_scratch
    add rsp, 16
    iretq

    .global gp_slow
gp_slow:
    gp_pop_scratch
    jmp trap_common
"#,
    block_mask = const !(RING0_STACK_SIZE as i64 - 1),
    cpu_number = const INFO_OFFSET + offset_of!(CpuInfo, cpu),
    nmi_latched = const INFO_OFFSET + offset_of!(CpuInfo, nmi_latched),
    stride = const size_of::<SyscallSlot>(),
    slot_vcpu = const SLOT_VCPU,
    kernel_mode = const fp::KERNEL_MODE,
    upcall_held = const fp::UPCALL_HELD,
    nmi_pending = const fp::NMI_PENDING,
    eflags_tf = const X86_EFLAGS_TF,
    direct_map = const DIRECT_MAP_BASE,
    vcpu_info_maddr = const fp::VCPU_INFO_MADDR,
    vi_mask = const fp::VI_UPCALL_MASK,
    vi_pending = const fp::VI_UPCALL_PENDING,
    hv_end = const HYPERVISOR_VIRT_END,
    minus_msr_fs_base = const MSR_FS_BASE.wrapping_neg(),
    count_gp = const fp::COUNT_GP_FAULT,
    count_rdmsr = const fp::COUNT_RDMSR,
);

extern "C" {
    static gp_read: u8;
    static gp_read_end: u8;
    static gp_slow: u8;
}

/// If `rip` faulted reading the guest's instruction in the #GP fast path,
/// where to resume: the hand-over to the Rust path.
pub fn fixup_for(rip: u64) -> Option<u64> {
    let addr = |s: &u8| s as *const u8 as u64;
    // SAFETY: only the addresses of these labels are taken.
    unsafe { (addr(&gp_read)..addr(&gp_read_end)).contains(&rip).then(|| addr(&gp_slow)) }
}
