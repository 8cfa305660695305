//! The 32-bit entry points (multiboot and PVH), the switch to long mode, and
//! the jump into the direct map where the rest of Cocoon is linked.
//!
//! Both entries arrive in 32-bit protected mode with paging off and EBX
//! pointing at the boot information; neither provides a stack. The boot
//! page tables map the first 4 GiB twice with 2 MiB pages: identity (to
//! survive turning paging on, and for the APs' trampoline) and at the direct
//! map (L4 slot 260), each with its own L3 and L2s: the direct map's are
//! global pages (every guest L4 shares that L3), the identity map's are not
//! (the guest owns the lower half).

use hvm_glue::bootinfo::{LINUX_HDRS_MAGIC, XEN_HVM_START_MAGIC_VALUE};
use hvm_glue::debug_exit::debug_exit_value;
use hvm_glue::layout::{BOOT_MAPPED_BYTES, DIRECT_MAP_BASE, DIRECT_MAP_L4_SLOT};
use shim_core::abi::XEN_ELFNOTE_PHYS32_ENTRY;
use shim_core::platform::ExitReason;

/// Protocol numbers passed from the entry stub to `cocoon_main64`.
pub const BOOT_PROTO_MULTIBOOT: u32 = 1;
pub const BOOT_PROTO_PVH: u32 = 2;
pub const BOOT_PROTO_LINUX: u32 = 3;

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

    /* The Linux 32-bit boot protocol enters at the start of the protected-mode
       image (code32_start, 1 MiB) with ESI = boot_params. */
    .section .boot.entry, "ax"
    .code32
    jmp cocoon_linux32_entry
    .balign 4

    .section .boot.text, "ax"
    .code32
    .global cocoon_linux32_entry
cocoon_linux32_entry:
    cli
    cld
    movl ${proto_linux}, %ebp
    movl %esi, %ebx
    movl ${hdrs_magic}, %esi
    jmp boot32_common

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
    movl $(boot_stack_top - {virt_offset}), %esp

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

    /* L4[0] -> the identity L3, L4[DIRECT_MAP_L4_SLOT] -> the direct map's */
    movl $boot_l3, %eax
    orl $3, %eax
    movl %eax, boot_l4
    movl $boot_dm_l3, %eax
    orl $3, %eax
    movl %eax, boot_l4 + {dm_slot} * 8
    /* In each, L3[0..4] -> four L2s */
    movl $boot_l2, %eax
    orl $3, %eax
    movl $boot_l3, %edi
    movl $4, %ecx
2:  movl %eax, (%edi)
    movl %eax, boot_dm_l3 - boot_l3(%edi)
    addl $boot_dm_l2 - boot_l2, boot_dm_l3 - boot_l3(%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 2b
    /* 2048 2 MiB pages each: present, writable, PS; the direct map's global
       (kept across CR3 loads once CR4.PGE is on; the identity map never is) */
    movl $boot_l2, %edi
    movl $0x83, %eax
    movl $2048, %ecx
3:  movl %eax, (%edi)
    movl $0, 4(%edi)
    movl %eax, boot_dm_l2 - boot_l2(%edi)
    orl $0x100, boot_dm_l2 - boot_l2(%edi)
    movl $0, boot_dm_l2 - boot_l2 + 4(%edi)
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
    .global boot_l3
boot_l3:
    .fill 512, 8, 0
boot_l2:
    .fill 2048, 8, 0
    .global boot_dm_l3
boot_dm_l3:
    .fill 512, 8, 0
boot_dm_l2:
    .fill 2048, 8, 0

    /* The boot stack: in .bss (zeroed below, nothing on it then), not in the
       file; used at its physical address until long mode, then through the
       direct map. */
    .section .bss.boot_stack, "aw", @nobits
    .balign 16
    .global boot_stack
    .global boot_stack_top
boot_stack:
    .skip {stack_size}
boot_stack_top:
    "#,
    mb_magic = const MULTIBOOT_HEADER_MAGIC,
    mb_flags = const MULTIBOOT_HEADER_FLAGS,
    virt_offset = const DIRECT_MAP_BASE,
    phys32_entry = const XEN_ELFNOTE_PHYS32_ENTRY,
    proto_mb = const BOOT_PROTO_MULTIBOOT,
    proto_pvh = const BOOT_PROTO_PVH,
    proto_linux = const BOOT_PROTO_LINUX,
    hdrs_magic = const LINUX_HDRS_MAGIC,
    pvh_magic = const XEN_HVM_START_MAGIC_VALUE,
    dm_slot = const DIRECT_MAP_L4_SLOT,
    stack_size = const BOOT_STACK_SIZE,
    bad_input = const debug_exit_value(ExitReason::BadInput),
    options(att_syntax)
);

// The real-mode part of a Linux boot protocol image ("bzImage"), for loaders
// that only start Linux: QEMU's `-kernel` and Xen HVM direct kernel boot
// (qemu-xen's linuxboot ROM), syslinux, GRUB's `linux`. It is a non-allocated
// section linked at 0, so its labels are offsets from the start of the setup
// area; `cocoon-image bzimage` puts it in front of the flat protected-mode
// image (loaded at 1 MiB, entered at code32_start).
//
// The loader puts it at some segment X with DS = ES = SS = X and jumps to
// X+0x20:0 (offset 0x200). The stub reads the BIOS E820 map into the
// boot_params layout in place (the setup area's first 4 KiB is the zero page,
// with the header the loader filled in at 0x1f1), enables A20 and enters
// 32-bit protected mode at code32_start with ESI = boot_params, as the 32-bit
// protocol specifies.
core::arch::global_asm!(
    r#"
    .section .setup16, "", @progbits
    .code16
setup_start:
    .fill 0x1f1, 1, 0
    .byte (setup_end - setup_start) / 512 - 1   /* 0x1f1 setup_sects */
    .word 0                         /* root_flags */
    .long __cocoon_syssize          /* syssize (16-byte units) */
    .word 0                         /* ram_size */
    .word 0xffff                    /* vid_mode: normal */
    .word 0                         /* root_dev */
    .word 0xaa55                    /* boot_flag */
    jmp header_end                  /* 0x200: entered at X+0x20:0 */
    .ascii "HdrS"                   /* 0x202 */
    .word 0x020a                    /* version 2.10 */
    .long 0                         /* realmode_swtch */
    .word 0x1000                    /* start_sys_seg */
    .word setup_version - 0x200     /* kernel_version */
    .byte 0                         /* type_of_loader */
    .byte 0x81                      /* loadflags: LOADED_HIGH | CAN_USE_HEAP */
    .word 0x8000                    /* setup_move_size */
    .long __image_phys_start        /* code32_start */
    .long 0                         /* ramdisk_image */
    .long 0                         /* ramdisk_size */
    .long 0                         /* bootsect_kludge */
    .word 0                         /* heap_end_ptr */
    .byte 0, 0                      /* ext_loader_ver, ext_loader_type */
    .long 0                         /* cmd_line_ptr */
    .long 0x7fffffff                /* initrd_addr_max */
    .long 0x1000                    /* kernel_alignment */
    .byte 0, 0                      /* relocatable_kernel, min_alignment */
    .word 0                         /* xloadflags */
    .long 4095                      /* cmdline_size */
    .long 0                         /* hardware_subarch */
    .quad 0                         /* hardware_subarch_data */
    .long 0, 0                      /* payload_offset, payload_length */
    .quad 0                         /* setup_data */
    .quad __image_phys_start        /* pref_address */
    .long __cocoon_init_size        /* init_size */
    .long 0                         /* handover_offset */
header_end:
    jmp setup_main
    /* 0x2d0..0xcd0: the E820 table of boot_params; 0x1000: the code. */
    .fill 0x1000 - (. - setup_start), 1, 0

setup_main:
    cli
    cld
    pushw %ds                       /* CS = DS = X, so labels are offsets */
    pushw $1f
    lretw
1:  movw %ds, %ax
    movw %ax, %es
    /* boot_params starts as zeros up to the header. */
    xorw %di, %di
    xorb %al, %al
    movw $0x1f1, %cx
    rep stosb

    /* E820 into boot_params.e820_table (0x2d0), count in e820_entries (0x1e8). */
    xorl %ebx, %ebx
    movw $0x2d0, %di
2:  movl $0xe820, %eax
    movl $20, %ecx
    movl $0x534d4150, %edx          /* "SMAP" */
    int $0x15
    jc 3f
    cmpl $0x534d4150, %eax
    jne 3f
    incb %ds:0x1e8
    addw $20, %di
    cmpb $128, %ds:0x1e8
    jae 3f
    testl %ebx, %ebx
    jnz 2b
3:  cli

    /* A20 through the fast gate (port 0x92). */
    inb $0x92, %al
    orb $2, %al
    andb $0xfe, %al
    outb %al, $0x92

    xorl %eax, %eax
    movw %ds, %ax
    shll $4, %eax
    movl %eax, %esi                 /* boot_params, linear */
    addl $setup_gdt, %eax
    movl %eax, setup_gdtr + 2
    movl %esi, %eax
    addl $setup_pm32, %eax
    movl %eax, setup_pm32_ptr
    movl %ds:0x214, %ecx            /* code32_start, as the loader left it */
    lgdtl setup_gdtr
    movl %cr0, %eax
    orb $1, %al
    movl %eax, %cr0
    ljmpl *setup_pm32_ptr

    .code32
setup_pm32:
    movl $0x18, %eax                /* __BOOT_DS */
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %fs
    movl %eax, %gs
    movl %eax, %ss
    jmp *%ecx

    .balign 8
setup_gdt:
    .quad 0, 0
    .quad 0x00cf9a000000ffff        /* 0x10: __BOOT_CS */
    .quad 0x00cf92000000ffff        /* 0x18: __BOOT_DS */
setup_gdtr:
    .word 31
    .long 0
setup_pm32_ptr:
    .long 0
    .word 0x10
setup_version:
    .asciz "Cocoon PV-in-HVM shim"
    .balign 512
setup_end:
    .code64
    .text
    "#,
    options(att_syntax)
);

extern "C" {
    static boot_stack: u8;
    static boot_stack_top: u8;
}

/// Does the caller run on the boot stack (the boot CPU before it first
/// enters the guest), where `percpu::this()` finds no `CpuInfo`? The image,
/// the stack with it, is linked at its direct-map address, which `rsp` holds.
pub fn on_boot_stack() -> bool {
    let rsp: u64;
    // SAFETY: reads rsp, nothing else.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    // Only the labels' addresses are taken (no read: safe).
    let (low, top) = (&raw const boot_stack as u64, &raw const boot_stack_top as u64);
    (low..=top).contains(&rsp)
}
