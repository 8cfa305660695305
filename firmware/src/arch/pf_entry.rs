//! The page-fault fast path: a #PF from guest user mode bounced to the guest
//! kernel's page-fault handler in assembly, as Xen's `entry.S` bounces
//! exceptions, following the contract in [`shim_core::fastpath`].
//!
//! Vector 14's stub comes here. Anything the contract does not cover (a
//! fault in Cocoon, guest kernel mode (page-table writes are emulated there),
//! no vCPU served by the fast path on this CPU, CR2 read as 0, an event or
//! NMI due (an NMI latched while Cocoon ran included), a virtual IOPL, a kernel stack outside the guest's upper half)
//! goes to `trap_common` with every guest register as the CPU left it. The
//! CPU's slot is found from the ring-0 stack (its `CpuInfo` holds the CPU's
//! number), as `percpu::this` finds it; the scratch registers are saved on
//! that stack. A fault writing the guest's stack is turned into the
//! hand-over by [`fixup_for`], which also puts CR2 back for the Rust path.

use core::mem::{offset_of, size_of};

use hvm_glue::layout::DIRECT_MAP_BASE;
use shim_core::abi::{PFEC_user_mode, VMASST_TYPE_architectural_iopl, TI_IF_MASK};
use shim_core::abi::{FLAT_KERNEL_CS, FLAT_KERNEL_SS, HYPERVISOR_VIRT_END};
use shim_core::fastpath as fp;
use shim_core::regs::{X86_EFLAGS_IF, X86_EFLAGS_IOPL};

use super::percpu::{CpuInfo, INFO_OFFSET, RING0_STACK_SIZE};
use super::syscall_entry::{SyscallSlot, SLOT_CR3, SLOT_VCPU, SLOT_VM_ASSIST};

core::arch::global_asm!(
    r#"
    /* The guest's registers the fast path uses, back from the ring-0 stack. */
    .macro pf_pop_scratch
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    .endm

    .section .text.hot, "ax"
    .balign 16
    /* The stub's vector and the CPU's error code and frame are on the stack;
       every other register is the guest's. */
    .global trap_pf
trap_pf:
    test byte ptr [rsp + 24], 3
    jz trap_common                      /* Cocoon's own fault */
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9                             /* the CPU's frame is now at rsp + 56 */
    /* rax = this CPU's slot, rdx = the vCPU the fast path serves */
"#,
    fast_entry_vcpu!("pf_slow"),
    r#"
    cmp byte ptr [rdx + {kernel_mode}], 0
    jne pf_slow
    cmp byte ptr [rdx + {nmi_pending}], 0
    jne pf_slow
    cmp dword ptr [rdx + {iopl}], 0
    je 1f
    mov r8, [rax + {slot_vm_assist}]
    test qword ptr [r8], {arch_iopl}
    jnz pf_slow                         /* the frame would carry the virtual IOPL */
1:
    cmp qword ptr [rdx + {pf_handler}], 0
    je pf_slow
    mov rdi, cr2                        /* rdi = CR2 */
    test rdi, rdi
    jz pf_slow
    /* rcx = the vcpu_info, r9 = the upcall mask the frame saves */
"#,
    fast_entry_no_upcall_due!("r9d", "pf_slow"),
    r#"
    mov rsi, [rdx + {kernel_sp}]
    and rsi, -16
    sub rsi, {frame_bytes}              /* rsi = the bounce frame */
    movabs r8, {hv_end}
    cmp rsi, r8
    jb pf_slow
    cmp rsi, -{frame_bytes}
    jae pf_slow
    mov [rcx + {vi_cr2}], rdi
    mov r8, [rdx + {guest_table}]
    shl r8, 12
    mov cr3, r8                         /* the guest kernel's page tables */
    mov [rax + {slot_cr3}], r8
    .global pf_write
pf_write:
    mov r8, [rsp + 40]                  /* the guest's rcx */
    mov [rsi], r8
    mov [rsi + 8], r11
    mov r8, [rsp + 64]                  /* the error code */
    or r8, {pfec_user}
    mov [rsi + 16], r8
    mov r8, [rsp + 72]                  /* rip */
    mov [rsi + 24], r8
    mov r8, r9
    shl r8, 32
    or r8, [rsp + 80]                   /* cs | saved mask << 32 */
    mov [rsi + 32], r8
    mov r8, [rsp + 88]                  /* rflags: IF from the saved mask */
    and r8, {not_if_iopl}
    test r9d, r9d
    jnz 3f
    or r8, {eflags_if}
3:
    mov [rsi + 40], r8
    mov r8, [rsp + 96]                  /* rsp */
    mov [rsi + 48], r8
    mov r8, [rsp + 104]                 /* ss */
    mov [rsi + 56], r8
    .global pf_written
pf_written:
    test byte ptr [rdx + {pf_flags}], {ti_if_mask}
    jz 4f
    mov byte ptr [rcx + {vi_mask}], 1
4:
    swapgs
    mov byte ptr [rdx + {kernel_mode}], 1
    inc qword ptr [rdx + {count_pf}]
    inc qword ptr [rdx + {bounces}]
    mov r8, [rdx + {pf_handler}]
    mov [rsp + 72], r8                  /* into the handler, on the frame */
    mov qword ptr [rsp + 80], {kernel_cs}
    and qword ptr [rsp + 88], {not_exception_flags}
    mov [rsp + 96], rsi
    mov qword ptr [rsp + 104], {kernel_ss}
    pf_pop_scratch
    add rsp, 16
    iretq

    /* A fault writing the frame: back to the user's page tables and the
       CR2 of the guest's fault, and the Rust path. */
    .global pf_fault
pf_fault:
    mov r8, [rdx + {guest_table_user}]
    shl r8, 12
    mov cr3, r8
    mov [rax + {slot_cr3}], r8
    mov cr2, rdi
pf_slow:
    pf_pop_scratch
    jmp trap_common
"#,
    block_mask = const !(RING0_STACK_SIZE as i64 - 1),
    cpu_number = const INFO_OFFSET + offset_of!(CpuInfo, cpu),
    nmi_latched = const INFO_OFFSET + offset_of!(CpuInfo, nmi_latched),
    stride = const size_of::<SyscallSlot>(),
    slot_vcpu = const SLOT_VCPU,
    slot_vm_assist = const SLOT_VM_ASSIST,
    slot_cr3 = const SLOT_CR3,
    kernel_mode = const fp::KERNEL_MODE,
    upcall_held = const fp::UPCALL_HELD,
    nmi_pending = const fp::NMI_PENDING,
    iopl = const fp::IOPL,
    arch_iopl = const 1u64 << VMASST_TYPE_architectural_iopl,
    pf_handler = const fp::PF_HANDLER,
    pf_flags = const fp::PF_FLAGS,
    ti_if_mask = const TI_IF_MASK,
    direct_map = const DIRECT_MAP_BASE,
    vcpu_info_maddr = const fp::VCPU_INFO_MADDR,
    vi_mask = const fp::VI_UPCALL_MASK,
    vi_pending = const fp::VI_UPCALL_PENDING,
    vi_cr2 = const fp::VI_CR2,
    kernel_sp = const fp::KERNEL_SP,
    frame_bytes = const fp::PF_FRAME_WORDS * 8,
    hv_end = const HYPERVISOR_VIRT_END,
    guest_table = const fp::GUEST_TABLE,
    guest_table_user = const fp::GUEST_TABLE_USER,
    pfec_user = const PFEC_user_mode,
    not_if_iopl = const !(X86_EFLAGS_IF | X86_EFLAGS_IOPL) as i64,
    eflags_if = const X86_EFLAGS_IF,
    count_pf = const fp::COUNT_PAGE_FAULT,
    bounces = const fp::BOUNCES,
    kernel_cs = const FLAT_KERNEL_CS as u64,
    kernel_ss = const FLAT_KERNEL_SS as u64,
    not_exception_flags = const !fp::EXCEPTION_CLEAR_FLAGS as i64,
);

extern "C" {
    static pf_write: u8;
    static pf_written: u8;
    static pf_fault: u8;
}

/// If `rip` faulted writing the guest's stack in the page-fault fast path,
/// where to resume: the hand-over to the Rust path.
pub fn fixup_for(rip: u64) -> Option<u64> {
    let addr = |s: &u8| s as *const u8 as u64;
    // SAFETY: only the addresses of these labels are taken.
    unsafe { (addr(&pf_write)..addr(&pf_written)).contains(&rip).then(|| addr(&pf_fault)) }
}
