//! SYSCALL: the per-CPU entry stubs, and the fast path for the guest's two
//! commonest exits (a process's system call bounced to the guest kernel, and
//! `HYPERVISOR_iret`), in assembly as Xen's `entry.S` has them.
//!
//! SYSCALL arrives with the guest's rsp, and Cocoon cannot use GS (the guest
//! owns both bases): each CPU gets its own stub (its LSTAR and CSTAR), which
//! finds that CPU's [`SyscallSlot`] by a RIP-relative address, switches to the
//! CPU's ring-0 stack and goes on to the common code with the slot in rax.
//!
//! The fast path follows the contract in [`shim_core::fastpath`]: it reads and
//! writes the vCPU in place, and hands over to the Rust path (the usual frame
//! and `trap_common`), with every guest register as SYSCALL left it, for any
//! case it does not handle. Its scratch registers live in the slot, so the
//! hand-over needs no stack. A fault reading or writing the guest's stack
//! inside it is turned into the hand-over by [`fixup_for`]. It allocates
//! nothing, takes no lock and does not run with `cocoon.stats` (its slot then
//! has no vCPU).

use core::mem::{offset_of, size_of};
use core::sync::atomic::AtomicU64;

use hvm_glue::layout::DIRECT_MAP_BASE;
use shim_core::abi::{__HYPERVISOR_iret, __HYPERVISOR_mmu_update, VMASST_TYPE_architectural_iopl};
use shim_core::abi::{VGCF_in_syscall, FLAT_KERNEL_CS, FLAT_KERNEL_SS, FLAT_USER_SS, HYPERVISOR_VIRT_END};
use shim_core::abi::{DOMID_SELF, PAGE_SIZE};
use shim_core::domain::{Domain, Vcpu};
use shim_core::fastpath as fp;
use shim_core::regs::{
    ENTRY_HYPERCALL_DONE, ENTRY_SYSCALL, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_MBS, X86_EFLAGS_VM,
};

use super::percpu::{CpuInfo, INFO_OFFSET, MAX_CPUS, RING0_STACK_SIZE};

/// A CPU's SYSCALL state. The stubs are code linked in .text; the slots are
/// data in .bss, on other pages (a write next to code would make TCG
/// retranslate it).
#[repr(C, align(64))]
pub struct SyscallSlot {
    /// The guest's rsp at SYSCALL.
    pub saved_rsp: u64,
    /// The CPU's ring-0 stack top (its TSS.RSP0).
    pub stack_top: u64,
    /// The vCPU the fast path serves (null: every SYSCALL takes the Rust path).
    pub vcpu: *mut Vcpu,
    /// The guest part of this CPU's GDT (`Vcpu::gdt`).
    pub gdt: *const u64,
    /// The domain's `vm_assist` bits.
    pub vm_assist: *const AtomicU64,
    /// The guest's registers the fast path uses as scratch.
    saved: [u64; 7],
    /// The iret being made: the guest's rcx and r11 (its rax goes in `saved`).
    t_rcx: u64,
    t_r11: u64,
    /// What this CPU's CR3 holds, once Cocoon loaded a guest page table on
    /// it (0 before): every later CR3 load stores here (`Hw::load_cr3` and
    /// the fast path), so a TLB flush reloads it without reading CR3. (A CR
    /// read exits to a host that intercepts them: under shadow paging, and
    /// nested on QEMU's TCG, which checks every CR read against the CR0-read
    /// intercept Xen sets.)
    cr3: u64,
    /// The pseudo-vector of the frame the hand-over to the Rust path builds.
    vector: u64,
}

impl SyscallSlot {
    const fn new() -> Self {
        SyscallSlot {
            saved_rsp: 0,
            stack_top: 0,
            vcpu: core::ptr::null_mut(),
            gdt: core::ptr::null(),
            vm_assist: core::ptr::null(),
            saved: [0; 7],
            t_rcx: 0,
            t_r11: 0,
            cr3: 0,
            vector: 0,
        }
    }
}

/// Index in `SyscallSlot::saved`.
const RAX: usize = 0;
const RDX: usize = 1;
const RSI: usize = 2;
const RDI: usize = 3;
const R8: usize = 4;
const R9: usize = 5;
const R10: usize = 6;

const fn saved(reg: usize) -> usize {
    offset_of!(SyscallSlot, saved) + reg * 8
}

/// Offsets in a [`SyscallSlot`] the page-fault fast path (`pf_entry`) uses.
pub(super) const SLOT_VCPU: usize = offset_of!(SyscallSlot, vcpu);
pub(super) const SLOT_VM_ASSIST: usize = offset_of!(SyscallSlot, vm_assist);
pub(super) const SLOT_CR3: usize = offset_of!(SyscallSlot, cr3);

/// One slot per CPU, each in its own cache lines (no false sharing between CPUs).
#[no_mangle]
pub static mut COCOON_SYSCALL_SLOTS: [SyscallSlot; MAX_CPUS] = [const { SyscallSlot::new() }; MAX_CPUS];

const _: () = assert!(size_of::<SyscallSlot>() == 128);

macro_rules! syscall_stubs {
    ($($n:literal)*) => {
        core::arch::global_asm!(
            ".section .text.hot, \"ax\"",
            $(
                /* rcx = guest rip, r11 = guest rflags, rsp still the guest's. */
                ".balign 32",
                concat!("syscall_entry_", $n, ":"),
                concat!("mov [rip + COCOON_SYSCALL_SLOTS + ", $n, " * {stride}], rsp"),
                concat!("mov rsp, [rip + COCOON_SYSCALL_SLOTS + ", $n, " * {stride} + {stack_top}]"),
                concat!("mov [rip + COCOON_SYSCALL_SLOTS + ", $n, " * {stride} + {rax}], rax"),
                concat!("lea rax, [rip + COCOON_SYSCALL_SLOTS + ", $n, " * {stride}]"),
                "jmp syscall_common",
            )*
            ".section .rodata",
            ".balign 8",
            "syscall_stub_table:",
            $( concat!(".quad syscall_entry_", $n), )*
            stride = const size_of::<SyscallSlot>(),
            stack_top = const offset_of!(SyscallSlot, stack_top),
            rax = const saved(RAX),
        );
    };
}

syscall_stubs!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
);
const _: () = assert!(MAX_CPUS == 64, "syscall_stubs! lists one stub per CPU");

core::arch::global_asm!(
    r#"
    /* The selector at [rsi + off] of an iret frame, with RPL 3: Xen's flat
       one, or a present DPL-3 descriptor of the right kind in the guest GDT
       ((desc >> shift) & mask == want); else the Rust path. Uses edi, r8. */
    /* The guest's rsi, rdi, r8, r9 and r10 back from the slot (rax). */
    .macro restore_scratch
    mov rsi, [rax + {s_rsi}]
    mov rdi, [rax + {s_rdi}]
    mov r8, [rax + {s_r8}]
    mov r9, [rax + {s_r9}]
    mov r10, [rax + {s_r10}]
    .endm

    .macro iret_selector_ok off, flat, shift, mask, want
    movzx edi, word ptr [rsi + \off]
    or edi, 3
    cmp edi, \flat
    je .Lselector_ok\@
    test edi, 4
    jnz fast_miss
    shr edi, 3
    jz fast_miss
    cmp rdi, [rdx + {gdt_entries}]
    jae fast_miss
    mov r8, [rax + {slot_gdt}]
    mov r8, [r8 + rdi * 8]
    shr r8, \shift
    and r8d, \mask
    cmp r8d, \want
    jne fast_miss
.Lselector_ok\@:
    .endm

    .section .text.hot, "ax"
    .balign 64
    /* rax = this CPU's slot (the guest's rax in it), rsp = the ring-0 stack top,
       rcx and r11 = the guest's rip and rflags, every other register the guest's. */
syscall_common:
    mov [rax + {s_rdx}], rdx
    mov rdx, [rax + {slot_vcpu}]
    test rdx, rdx
    jz syscall_slow_rdx
    mov [rax + {s_rsi}], rsi
    mov [rax + {s_rdi}], rdi
    mov [rax + {s_r8}], r8
    mov [rax + {s_r9}], r9
    mov [rax + {s_r10}], r10
    cmp byte ptr [rdx + {kernel_mode}], 0
    jne fast_hypercall

    /* A process's system call: bounce to the guest kernel's syscall callback. */
    mov rsi, [rdx + {syscall_address}]
    test rsi, rsi
    jz fast_miss
    mov rdi, rsi
    sar rdi, 47
    inc rdi
    cmp rdi, 1
    ja fast_miss                     /* not canonical: no sysret to it */
    cmp byte ptr [rdx + {syscall_mask_events}], 0
    je fast_miss
    cmp dword ptr [rdx + {iopl}], 0
    je 2f
    mov r8, [rax + {slot_vm_assist}]
    test qword ptr [r8], {arch_iopl}
    jnz fast_miss                       /* the frame would carry the virtual IOPL */
2:
    mov rdi, [rdx + {kernel_sp}]
    and rdi, -16
    sub rdi, {frame_bytes}              /* rdi = the bounce frame */
    movabs r8, {hv_end}
    cmp rdi, r8
    jb fast_miss
    cmp rdi, -{frame_bytes}
    jae fast_miss
    movabs r8, {direct_map}
    add r8, [rdx + {vcpu_info_maddr}]   /* r8 = the vcpu_info */
    mov r9, [rdx + {guest_table}]
    shl r9, 12
    mov cr3, r9                         /* the guest kernel's page tables */
    mov [rax + {slot_cr3}], r9
    movzx r9d, byte ptr [r8 + {vi_mask}]
    mov rsi, r11
    and rsi, {not_if_iopl}
    test r9d, r9d
    jnz fast_syscall_masked
    or rsi, {eflags_if}
fast_syscall_masked:
    .global fast_syscall_write
fast_syscall_write:
    mov [rdi], rcx
    mov [rdi + 8], r11
    mov [rdi + 16], rcx
    mov [rdi + 32], rsi
    shl r9, 32
    or r9, {kernel_cs}
    mov [rdi + 24], r9
    mov rsi, [rax + {slot_rsp}]
    mov [rdi + 40], rsi
    mov qword ptr [rdi + 48], {user_ss}
    .global fast_syscall_written
fast_syscall_written:
    swapgs
    mov byte ptr [rdx + {kernel_mode}], 1
    mov byte ptr [r8 + {vi_mask}], 1
    inc qword ptr [rdx + {count_syscall}]
    inc qword ptr [rdx + {bounces}]
    mov rcx, [rdx + {syscall_address}]
    and r11, {not_bounce_flags}
    or r11, {eflags_if_mbs}
    mov rsp, rdi                        /* nothing below may fault: no stack of Cocoon's now */
    mov rdx, [rax + {s_rdx}]
    restore_scratch
    mov rax, [rax + {s_rax}]
    sysretq

    /* A fault writing the frame: back to the user's page tables (a process
       runs on them: its CR3 is not read, as a CR3 read exits to the host
       where CR reads are intercepted, as under shadow paging), and the Rust path. */
    .global fast_syscall_fault
fast_syscall_fault:
    mov r9, [rdx + {guest_table_user}]
    shl r9, 12
    mov cr3, r9
    mov [rax + {slot_cr3}], r9
    jmp fast_miss

    /* A hypercall: HYPERVISOR_iret here, the plain ones (fast_plain) in
       Rust without the Rust path's frame, the rest through the Rust path. */
fast_hypercall:
    cmp qword ptr [rax + {s_rax}], {nr_iret}
    jne fast_plain
    cmp byte ptr [rdx + {nmi_masked}], 0
    jne fast_miss                       /* the end of an NMI handler: Rust unmasks NMIs */
    mov r8, [rax + {slot_vm_assist}]
    test qword ptr [r8], {arch_iopl}
    jnz fast_miss                       /* the frame sets the virtual IOPL: Rust does */
    mov rsi, [rax + {slot_rsp}]         /* rsi = the iret frame */
    movabs r8, {hv_end}
    cmp rsi, r8
    jb fast_miss
    cmp rsi, -{iret_bytes}
    jae fast_miss
    .global fast_iret_read
fast_iret_read:
    iret_selector_ok {i_cs}, {kernel_cs}, {code_shift}, {code_mask}, {code_mask}
    iret_selector_ok {i_ss}, {user_ss}, {data_shift}, {data_mask}, {data_want}
    mov r9, [rsi + {i_rip}]             /* r9 = rip: canonical, not Cocoon's */
"#,
    fast_guest_va_ok!("r9", "r8", "fast_miss"),
    r#"
    xor edi, edi                        /* edi bit 0: to guest user mode; bit 1: the upcall mask */
    movzx r8d, byte ptr [rsi + {i_cs}]
    and r8d, 3
    cmp r8d, 3
    jne 5f
    cmp qword ptr [rdx + {guest_table_user}], 0
    je fast_miss
    mov edi, 1
5:
    movabs r10, {direct_map}
    add r10, [rdx + {vcpu_info_maddr}]  /* r10 = the vcpu_info */
    mov r8, [rsi + {i_rflags}]
    shr r8, 9
    and r8d, 1
    xor r8d, 1                          /* the upcall mask the frame asks for */
    lea edi, [rdi + r8 * 2]
    jnz 6f
    cmp byte ptr [rdx + {upcall_held}], 0
    jne fast_miss                    /* unmasking with an event due: Rust delivers it */
    cmp byte ptr [r10 + {vi_pending}], 0
    jne fast_miss
6:
    push qword ptr [rsi + {i_ss}]
    or qword ptr [rsp], 3
    push qword ptr [rsi + {i_rsp}]
    mov r8, [rsi + {i_rflags}]
    and r8, {not_iopl_vm}
    or r8, {eflags_if_mbs}
    push r8
    push qword ptr [rsi + {i_cs}]
    or qword ptr [rsp], 3
    push r9
    test dword ptr [rsi + {i_flags}], {in_syscall}
    jz 7f
    mov [rax + {t_rcx}], r9
    mov [rax + {t_r11}], r8
    jmp 8f
7:
    mov r8, [rsi + {i_rcx}]
    mov [rax + {t_rcx}], r8
    mov r8, [rsi + {i_r11}]
    mov [rax + {t_r11}], r8
8:
    mov r8, [rsi + {i_rax}]
    .global fast_iret_read_end
fast_iret_read_end:
    mov [rax + {s_rax}], r8
    test edi, 1
    jz 9f
    swapgs
    mov byte ptr [rdx + {kernel_mode}], 0
    mov r8, [rdx + {guest_table_user}]
    shl r8, 12
    mov cr3, r8
    mov [rax + {slot_cr3}], r8
9:
    shr edi, 1
    mov byte ptr [r10 + {vi_mask}], dil
    inc qword ptr [rdx + {count_iret}]
    mov rcx, [rax + {t_rcx}]
    mov r11, [rax + {t_r11}]
    mov rdx, [rax + {s_rdx}]
    restore_scratch
    mov rax, [rax + {s_rax}]
    iretq

    /* Any other hypercall: cocoon_plain_hypercall(vcpu, nr, rdi, rsi, rdx,
       r10, r8) runs a plain one (shim_core::fastpath::plain_hypercall) and
       says whether it did; one mmu_update request of the commonest kind is
       read here and run by cocoon_mmu_update_one(vcpu, ptr, val). Then back
       with sysretq (the guest's registers as they were, rcx and r11 aside as
       SYSCALL left them) unless something is due on the way out: then
       through the Rust path's way out; not a plain one (nothing done): the
       Rust path. Only with a canonical return address: sysretq to another
       would fault in ring 0. rax = the slot, rdx = the vCPU. */
fast_plain:
    mov r8, rcx
    sar r8, 47
    inc r8
    cmp r8, 1
    ja syscall_slow_regs
    push rax                            /* the slot */
    push rcx                            /* the guest's rip and rflags */
    push r11
    mov rsi, [rax + {s_rax}]            /* rsi = the hypercall's number */
    cmp rsi, {nr_mmu_update}
    jne fast_plain_call
    /* mmu_update(list, 1, NULL, DOMID_SELF) with the request's 16 bytes in
       one page of guest memory and an MMU_NORMAL_PT_UPDATE (Linux's set_pte
       outside a batch) */
    cmp qword ptr [rax + {s_rsi}], 1
    jne fast_plain_call
    cmp qword ptr [rax + {s_rdx}], 0
    jne fast_plain_call
    cmp qword ptr [rax + {s_r10}], {domid_self}
    jne fast_plain_call
    mov r9, [rax + {s_rdi}]             /* r9 = the request */
"#,
    fast_guest_va_ok!("r9", "r8", "fast_plain_call"),
    r#"
    mov r8d, r9d
    and r8d, {page_mask}
    cmp r8d, {page_size} - 16
    ja fast_plain_call
    mov rdi, rdx                        /* the vCPU */
    .global fast_mmu_read
fast_mmu_read:
    mov rsi, [r9]                       /* ptr */
    mov rdx, [r9 + 8]                   /* val */
    .global fast_mmu_read_end
fast_mmu_read_end:
    test sil, 3
    jnz fast_mmu_other
    sub rsp, 8                          /* the call on a 16-byte boundary */
    call cocoon_mmu_update_one          /* rax = the result, rdx = whether done */
    add rsp, 8
    jmp fast_plain_done
    .global fast_mmu_fault
fast_mmu_fault:                         /* reading the request faulted */
fast_mmu_other:
    mov rdx, rdi
    mov rsi, [rax + {s_rax}]
fast_plain_call:                        /* rax = the slot, rdx = the vCPU, rsi = the number */
    mov rdi, rdx
    mov rdx, [rax + {s_rdi}]
    mov rcx, [rax + {s_rsi}]
    mov r8, [rax + {s_rdx}]
    mov r9, [rax + {s_r10}]
    push qword ptr [rax + {s_r8}]       /* the seventh argument; the call on a 16-byte boundary */
    call cocoon_plain_hypercall         /* rax = the result, rdx = whether done */
    add rsp, 8
fast_plain_done:
    pop r11
    pop rcx
    pop rdi
    cmp rdx, {plain_not}
    je 1f
    mov [rdi + {s_rax}], rax            /* the result is the guest's rax */
    mov rax, rdi
    mov rdx, [rax + {slot_vcpu}]
    /* Anything due on the way out: the Rust path's way out delivers it. */
    mov r8, rsp
    and r8, {block_mask}
    cmp byte ptr [r8 + {nmi_latched}], 0
    jne syscall_done
    cmp byte ptr [rdx + {going_down}], 0
    jne syscall_done
    cmp byte ptr [rdx + {nmi_pending}], 0
    je 2f
    cmp byte ptr [rdx + {nmi_masked}], 0
    je syscall_done
2:
    movabs r8, {direct_map}
    add r8, [rdx + {vcpu_info_maddr}]   /* r8 = the vcpu_info */
    cmp byte ptr [r8 + {vi_mask}], 0
    jne 3f
    cmp byte ptr [r8 + {vi_pending}], 0
    jne syscall_done
    cmp byte ptr [rdx + {upcall_held}], 0
    jne syscall_done
3:
    mov rdx, [rax + {s_rdx}]
    restore_scratch
    mov rsp, [rax + {slot_rsp}]         /* nothing below may fault: the guest's stack */
    mov rax, [rax + {s_rax}]
    sysretq
1:
    mov rax, rdi
    jmp syscall_slow_regs

    /* The Rust path: the guest's registers back, and the frame trap_common
       expects, with the pseudo-vector ENTRY_SYSCALL, or ENTRY_HYPERCALL_DONE
       for a hypercall run above (its result now the guest's rax). */
syscall_done:
    mov qword ptr [rax + {slot_vector}], {done_vec}
    jmp 2f
    .global fast_miss
fast_miss:
    inc qword ptr [rdx + {fast_misses}]
syscall_slow_regs:
    mov qword ptr [rax + {slot_vector}], {syscall_vec}
2:
    restore_scratch
    jmp 3f
syscall_slow_rdx:
    mov qword ptr [rax + {slot_vector}], {syscall_vec}
3:
    mov rdx, [rax + {s_rdx}]
    mov rsp, [rax + {slot_stack_top}]
    push {user_ss}
    push qword ptr [rax + {slot_rsp}]
    push r11
    push {kernel_cs}
    push rcx
    push 0
    push qword ptr [rax + {slot_vector}]
    mov rax, [rax + {s_rax}]
    jmp trap_common
"#,
    slot_rsp = const offset_of!(SyscallSlot, saved_rsp),
    slot_stack_top = const offset_of!(SyscallSlot, stack_top),
    slot_vcpu = const SLOT_VCPU,
    slot_gdt = const offset_of!(SyscallSlot, gdt),
    slot_vm_assist = const SLOT_VM_ASSIST,
    arch_iopl = const 1u64 << VMASST_TYPE_architectural_iopl,
    s_rax = const saved(RAX),
    s_rdx = const saved(RDX),
    s_rsi = const saved(RSI),
    s_rdi = const saved(RDI),
    s_r8 = const saved(R8),
    s_r9 = const saved(R9),
    s_r10 = const saved(R10),
    t_rcx = const offset_of!(SyscallSlot, t_rcx),
    t_r11 = const offset_of!(SyscallSlot, t_r11),
    slot_cr3 = const SLOT_CR3,
    slot_vector = const offset_of!(SyscallSlot, vector),
    nr_mmu_update = const __HYPERVISOR_mmu_update,
    domid_self = const DOMID_SELF as u64,
    page_mask = const PAGE_SIZE - 1,
    page_size = const PAGE_SIZE,
    block_mask = const !(RING0_STACK_SIZE as i64 - 1),
    nmi_latched = const INFO_OFFSET + offset_of!(CpuInfo, nmi_latched),
    going_down = const fp::GOING_DOWN,
    nmi_pending = const fp::NMI_PENDING,
    plain_not = const fp::PLAIN_NOT,
    done_vec = const ENTRY_HYPERCALL_DONE,
    kernel_mode = const fp::KERNEL_MODE,
    guest_table = const fp::GUEST_TABLE,
    guest_table_user = const fp::GUEST_TABLE_USER,
    kernel_sp = const fp::KERNEL_SP,
    syscall_address = const fp::SYSCALL_ADDRESS,
    syscall_mask_events = const fp::SYSCALL_MASK_EVENTS,
    vcpu_info_maddr = const fp::VCPU_INFO_MADDR,
    iopl = const fp::IOPL,
    upcall_held = const fp::UPCALL_HELD,
    nmi_masked = const fp::NMI_MASKED,
    gdt_entries = const fp::GDT_ENTRIES,
    count_syscall = const fp::COUNT_GUEST_SYSCALL,
    count_iret = const fp::COUNT_IRET,
    bounces = const fp::BOUNCES,
    fast_misses = const fp::FAST_PATH_MISSES,
    vi_pending = const fp::VI_UPCALL_PENDING,
    vi_mask = const fp::VI_UPCALL_MASK,
    i_rax = const fp::IRET_RAX,
    i_r11 = const fp::IRET_R11,
    i_rcx = const fp::IRET_RCX,
    i_flags = const fp::IRET_FLAGS,
    i_rip = const fp::IRET_RIP,
    i_cs = const fp::IRET_CS,
    i_rflags = const fp::IRET_RFLAGS,
    i_rsp = const fp::IRET_RSP,
    i_ss = const fp::IRET_SS,
    iret_bytes = const fp::IRET_FRAME_BYTES,
    frame_bytes = const fp::SYSCALL_FRAME_WORDS * 8,
    code_shift = const fp::CODE_DESC_SHIFT,
    code_mask = const fp::CODE_DESC_MASK,
    data_shift = const fp::DATA_DESC_SHIFT,
    data_mask = const fp::DATA_DESC_MASK,
    data_want = const fp::DATA_DESC_WANT,
    hv_end = const HYPERVISOR_VIRT_END,
    direct_map = const DIRECT_MAP_BASE,
    kernel_cs = const FLAT_KERNEL_CS as u64,
    user_ss = const FLAT_USER_SS as u64,
    nr_iret = const __HYPERVISOR_iret,
    in_syscall = const VGCF_in_syscall,
    syscall_vec = const ENTRY_SYSCALL,
    eflags_if = const X86_EFLAGS_IF,
    eflags_if_mbs = const X86_EFLAGS_IF | X86_EFLAGS_MBS,
    not_if_iopl = const !(X86_EFLAGS_IF | X86_EFLAGS_IOPL) as i64,
    not_iopl_vm = const !(X86_EFLAGS_IOPL | X86_EFLAGS_VM) as i64,
    not_bounce_flags = const !fp::BOUNCE_CLEAR_FLAGS as i64,
);

// The flat selectors the stubs push and the fast path compares with are Xen's.
const _: () = assert!(FLAT_KERNEL_SS == FLAT_USER_SS && FLAT_KERNEL_CS == shim_core::abi::FLAT_USER_CS);

/// The SYSCALL entry (LSTAR and CSTAR) of `cpu`.
pub fn syscall_entry(cpu: usize) -> u64 {
    // SAFETY: `syscall_stub_table` is an immutable table of MAX_CPUS addresses emitted above.
    unsafe { syscall_stub_table[cpu] }
}

/// Let the fast path serve `vcpu` on CPU `cpu` (its own CPU, for good), with
/// `gdt` the guest part of that CPU's GDT. Called before the vCPU first runs.
pub fn attach(cpu: usize, vcpu: *mut Vcpu, gdt: *const u64, d: &'static Domain) {
    // SAFETY: CPU `cpu`'s slot is only used by its own SYSCALL entry, which
    // cannot run while this CPU (the same one) prepares its vCPU with
    // interrupts off; the vCPU and the GDT live as long as Cocoon.
    unsafe {
        let slot = &mut (*core::ptr::addr_of_mut!(COCOON_SYSCALL_SLOTS))[cpu];
        slot.gdt = gdt;
        slot.vm_assist = &d.vm_assist;
        slot.vcpu = vcpu;
    }
}

/// Load CR3 with `cr3` on this CPU (`cpu`), noting it for [`reload_cr3`].
pub fn load_cr3(cpu: usize, cr3: u64) {
    // SAFETY: the L4 at `cr3` carries Cocoon's slots (the caller's
    // condition); the slot's `cr3` is only used by this CPU, with interrupts
    // off (no SYSCALL or flush request can come between the two stores).
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) cr3);
        (*core::ptr::addr_of_mut!(COCOON_SYSCALL_SLOTS))[cpu].cr3 = cr3;
    }
}

/// Flush this CPU's (`cpu`) TLB, global pages excepted, by loading CR3 again.
pub fn reload_cr3(cpu: usize) {
    // SAFETY: as in `load_cr3`; a noted value is what CR3 holds, and before
    // one is noted CR3 is read instead (Cocoon's boot tables).
    unsafe {
        let noted = (*core::ptr::addr_of!(COCOON_SYSCALL_SLOTS))[cpu].cr3;
        if noted != 0 {
            core::arch::asm!("mov cr3, {}", in(reg) noted);
        } else {
            core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _);
        }
    }
}

/// Set CPU `cpu`'s ring-0 stack top (when its ring-0 block is prepared).
pub fn set_stack_top(cpu: usize, top: u64) {
    // SAFETY: as in `attach`: CPU `cpu` is not running SYSCALLs yet.
    unsafe { (*core::ptr::addr_of_mut!(COCOON_SYSCALL_SLOTS))[cpu].stack_top = top };
}

extern "C" {
    static syscall_stub_table: [u64; MAX_CPUS];
    static fast_syscall_write: u8;
    static fast_syscall_written: u8;
    static fast_syscall_fault: u8;
    static fast_iret_read: u8;
    static fast_iret_read_end: u8;
    static fast_miss: u8;
    static fast_mmu_read: u8;
    static fast_mmu_read_end: u8;
    static fast_mmu_fault: u8;
}

/// If `rip` faulted reading or writing the guest's stack in the fast path,
/// where to resume: the hand-over to the Rust path.
pub fn fixup_for(rip: u64) -> Option<u64> {
    let addr = |s: &u8| s as *const u8 as u64;
    // SAFETY: only the addresses of these labels are taken.
    unsafe {
        if (addr(&fast_syscall_write)..addr(&fast_syscall_written)).contains(&rip) {
            return Some(addr(&fast_syscall_fault));
        }
        if (addr(&fast_iret_read)..addr(&fast_iret_read_end)).contains(&rip) {
            return Some(addr(&fast_miss));
        }
        if (addr(&fast_mmu_read)..addr(&fast_mmu_read_end)).contains(&rip) {
            return Some(addr(&fast_mmu_fault));
        }
    }
    None
}
