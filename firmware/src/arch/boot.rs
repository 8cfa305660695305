//! The 32-bit entry points (multiboot and PVH), the switch to long mode, and
//! the jump into the direct map where the rest of Cocoon is linked.
//!
//! Both entries arrive in 32-bit protected mode with paging off and EBX
//! pointing at the boot information; neither provides a stack. The boot
//! page tables map the first 4 GiB twice with 2 MiB pages: identity (to
//! survive turning paging on) and at the direct map (L4 slot 260).

use hvm_glue::bootinfo::XEN_HVM_START_MAGIC_VALUE;
use hvm_glue::debug_exit::debug_exit_value;
use hvm_glue::layout::{BOOT_MAPPED_BYTES, DIRECT_MAP_BASE, DIRECT_MAP_L4_SLOT};
use shim_core::abi::XEN_ELFNOTE_PHYS32_ENTRY;
use shim_core::platform::ExitReason;

/// Protocol numbers passed from the entry stub to `cocoon_main64`.
pub const BOOT_PROTO_MULTIBOOT: u32 = 1;
pub const BOOT_PROTO_PVH: u32 = 2;

/// Multiboot v1 header: magic, flags (page-align modules, memory info, address fields).
const MULTIBOOT_HEADER_MAGIC: u32 = 0x1bad_b002;
const MULTIBOOT_HEADER_FLAGS: u32 = (1 << 0) | (1 << 1) | (1 << 16);

const BOOT_STACK_SIZE: usize = 128 * 1024;
const _: () = assert!(BOOT_MAPPED_BYTES == 2048 * (2 << 20));

core::arch::global_asm!(
    r#"
    .set MB_MAGIC, {mb_magic}
    .set MB_FLAGS, {mb_flags}
    .set VIRT_OFFSET, {virt_offset}

    .section .multiboot_header, "a"
    .balign 4
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long multiboot_header          /* header_addr */
    .long __image_phys_start        /* load_addr */
    .long __load_end_phys           /* load_end_addr */
    .long __bss_end_phys            /* bss_end_addr */
    .long cocoon_multiboot_entry    /* entry_addr */

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                         /* namesz */
    .long 8                         /* descsz */
    .long {phys32_entry}            /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad cocoon_pvh_entry
    .balign 4

    .section .boot.text, "ax"
    .code32
    .global cocoon_multiboot_entry
cocoon_multiboot_entry:
    cli
    cld
    movl ${proto_mb}, %ebp
    movl %eax, %esi
    jmp boot32_common

    .global cocoon_pvh_entry
cocoon_pvh_entry:
    cli
    cld
    movl ${proto_pvh}, %ebp
    movl ${pvh_magic}, %esi

boot32_common:
    lgdt boot_gdtr
    ljmp $0x08, $1f
1:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    movl $boot_stack_top, %esp

    /* Long mode present? (cpuid clobbers ebx, which holds the boot info) */
    pushl %ebx
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc no_long_mode
    popl %ebx

    /* Zero .bss (loaders should, but a PVH loader may not). */
    movl $__bss_start_phys, %edi
    movl $__bss_end_phys, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    /* L4[0] and L4[DIRECT_MAP_L4_SLOT] -> the one L3 */
    movl $boot_l3, %eax
    orl $3, %eax
    movl %eax, boot_l4
    movl %eax, boot_l4 + {dm_slot} * 8
    /* L3[0..4] -> four L2s */
    movl $boot_l2, %eax
    orl $3, %eax
    movl $boot_l3, %edi
    movl $4, %ecx
2:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 2b
    /* 2048 2 MiB pages: present, writable, PS */
    movl $boot_l2, %edi
    movl $0x83, %eax
    movl $2048, %ecx
3:  movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 3b

    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $boot_l4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx          /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax           /* PG | WP | PE */
    movl %eax, %cr0
    ljmp $0x18, $boot64

no_long_mode:
    movl $no_lm_msg, %esi
4:  lodsb
    testb %al, %al
    jz 5f
    movw $0x3f8, %dx
    outb %al, %dx
    jmp 4b
5:  movw $0xf4, %dx
    movl ${bad_input}, %eax
    outl %eax, %dx
6:  hlt
    jmp 6b

    .code64
boot64:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    /* Continue on the same stack through the direct map. */
    movabsq $VIRT_OFFSET, %rax
    addq %rax, %rsp
    movl %ebp, %edi                 /* protocol */
    movl %esi, %esi                 /* magic */
    movl %ebx, %edx                 /* boot info (physical) */
    movabsq $cocoon_main64, %rax
    call *%rax
    ud2

    .section .boot.data, "aw"
no_lm_msg:
    .asciz "cocoon: this CPU has no long mode; stopping\r\n"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: data */
    .quad 0x00af9a000000ffff        /* 0x18: 64-bit code */
boot_gdt_end:
boot_gdtr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
    .balign 4096
boot_l4:
    .fill 512, 8, 0
boot_l3:
    .fill 512, 8, 0
boot_l2:
    .fill 2048, 8, 0
boot_stack:
    .fill {stack_size}, 1, 0
boot_stack_top:
    "#,
    mb_magic = const MULTIBOOT_HEADER_MAGIC,
    mb_flags = const MULTIBOOT_HEADER_FLAGS,
    virt_offset = const DIRECT_MAP_BASE,
    phys32_entry = const XEN_ELFNOTE_PHYS32_ENTRY,
    proto_mb = const BOOT_PROTO_MULTIBOOT,
    proto_pvh = const BOOT_PROTO_PVH,
    pvh_magic = const XEN_HVM_START_MAGIC_VALUE,
    dm_slot = const DIRECT_MAP_L4_SLOT,
    stack_size = const BOOT_STACK_SIZE,
    bad_input = const debug_exit_value(ExitReason::BadInput),
    options(att_syntax)
);
