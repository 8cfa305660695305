//! ABI constants, named as in Xen's public headers.
#![allow(non_upper_case_globals)]

// --- xen.h: hypercall numbers ---------------------------------------------
pub const __HYPERVISOR_set_trap_table: u64 = 0;
pub const __HYPERVISOR_mmu_update: u64 = 1;
pub const __HYPERVISOR_set_gdt: u64 = 2;
pub const __HYPERVISOR_stack_switch: u64 = 3;
pub const __HYPERVISOR_set_callbacks: u64 = 4;
pub const __HYPERVISOR_fpu_taskswitch: u64 = 5;
pub const __HYPERVISOR_sched_op_compat: u64 = 6;
pub const __HYPERVISOR_platform_op: u64 = 7;
pub const __HYPERVISOR_set_debugreg: u64 = 8;
pub const __HYPERVISOR_get_debugreg: u64 = 9;
pub const __HYPERVISOR_update_descriptor: u64 = 10;
pub const __HYPERVISOR_memory_op: u64 = 12;
pub const __HYPERVISOR_multicall: u64 = 13;
pub const __HYPERVISOR_update_va_mapping: u64 = 14;
pub const __HYPERVISOR_set_timer_op: u64 = 15;
pub const __HYPERVISOR_event_channel_op_compat: u64 = 16;
pub const __HYPERVISOR_xen_version: u64 = 17;
pub const __HYPERVISOR_console_io: u64 = 18;
pub const __HYPERVISOR_physdev_op_compat: u64 = 19;
pub const __HYPERVISOR_grant_table_op: u64 = 20;
pub const __HYPERVISOR_vm_assist: u64 = 21;
pub const __HYPERVISOR_update_va_mapping_otherdomain: u64 = 22;
pub const __HYPERVISOR_iret: u64 = 23;
pub const __HYPERVISOR_vcpu_op: u64 = 24;
pub const __HYPERVISOR_set_segment_base: u64 = 25;
pub const __HYPERVISOR_mmuext_op: u64 = 26;
pub const __HYPERVISOR_xsm_op: u64 = 27;
pub const __HYPERVISOR_nmi_op: u64 = 28;
pub const __HYPERVISOR_sched_op: u64 = 29;
pub const __HYPERVISOR_callback_op: u64 = 30;
pub const __HYPERVISOR_xenoprof_op: u64 = 31;
pub const __HYPERVISOR_event_channel_op: u64 = 32;
pub const __HYPERVISOR_physdev_op: u64 = 33;
pub const __HYPERVISOR_hvm_op: u64 = 34;
pub const __HYPERVISOR_sysctl: u64 = 35;
pub const __HYPERVISOR_domctl: u64 = 36;
pub const __HYPERVISOR_kexec_op: u64 = 37;
pub const __HYPERVISOR_xenpmu_op: u64 = 40;

// --- errno.h (returned negated) --------------------------------------------
pub const XEN_EPERM: i64 = 1;
pub const XEN_ENOENT: i64 = 2;
pub const XEN_ESRCH: i64 = 3;
pub const XEN_EAGAIN: i64 = 11;
pub const XEN_ENOMEM: i64 = 12;
pub const XEN_EACCES: i64 = 13;
pub const XEN_EFAULT: i64 = 14;
pub const XEN_EBUSY: i64 = 16;
pub const XEN_EEXIST: i64 = 17;
pub const XEN_ENODEV: i64 = 19;
pub const XEN_EINVAL: i64 = 22;
pub const XEN_ENOSPC: i64 = 28;
pub const XEN_ENOSYS: i64 = 38;
pub const XEN_ETIME: i64 = 62;
pub const XEN_EOPNOTSUPP: i64 = 95;

// --- xen.h: start_info ------------------------------------------------------
pub const XEN_START_INFO_MAGIC_X86_64: &[u8] = b"xen-3.0-x86_64";
pub const MAX_GUEST_CMDLINE: usize = 1024;
pub const SIF_PRIVILEGED: u32 = 1 << 0;
pub const SIF_INITDOMAIN: u32 = 1 << 1;
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

// --- arch-x86/xen-x86_64.h --------------------------------------------------
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
pub const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;
pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;
/// First and last L4 slot of the hypervisor range (256..=271).
pub const HYPERVISOR_L4_FIRST: usize = 256;
pub const HYPERVISOR_L4_LAST: usize = 271;
pub const FLAT_RING3_CS32: u16 = 0xe023;
pub const FLAT_RING3_DS32: u16 = 0xe02b;
pub const FLAT_RING3_CS64: u16 = 0xe033;
pub const FLAT_RING3_DS64: u16 = 0x0000;
pub const FLAT_RING3_SS32: u16 = 0xe02b;
pub const FLAT_RING3_SS64: u16 = 0xe02b;
pub const FLAT_KERNEL_CS: u16 = FLAT_RING3_CS64;
pub const FLAT_KERNEL_DS: u16 = FLAT_RING3_DS64;
pub const FLAT_KERNEL_SS: u16 = FLAT_RING3_SS64;
pub const FLAT_USER_CS: u16 = FLAT_RING3_CS64;
pub const FLAT_USER_SS: u16 = FLAT_RING3_SS64;
pub const VGCF_in_syscall: u64 = 1 << 8;
/// `HYPERVISOR_iret` frame flag: return with sysret semantics.
pub const VGCF_IN_SYSCALL: u64 = VGCF_in_syscall;
pub const FIRST_RESERVED_GDT_PAGE: usize = 14;
pub const FIRST_RESERVED_GDT_ENTRY: usize = FIRST_RESERVED_GDT_PAGE * 4096 / 8;
/// The PAT value a PV guest sees (`XEN_MSR_PAT`).
pub const XEN_MSR_PAT: u64 = 0x0000_0501_0007_0406;

// --- arch-x86/xen.h: trap_info flags -----------------------------------------
/// `trap_info.flags` bits 0-1: the DPL a software interrupt needs.
pub const TI_DPL_MASK: u8 = 3;
/// `trap_info.flags` bit 2: clear the event mask on entry (interrupt gate).
pub const TI_IF_MASK: u8 = 4;

// --- elfnote.h ---------------------------------------------------------------
pub const XEN_ELFNOTE_INFO: u32 = 0;
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
pub const XEN_ELFNOTE_LOADER: u32 = 8;
pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
pub const XEN_ELFNOTE_PHYS32_RELOC: u32 = 19;
pub const XEN_ELFNOTE_MAX: u32 = XEN_ELFNOTE_PHYS32_RELOC;

// --- features.h (XENFEAT_* bit numbers) -----------------------------------------
pub const XENFEAT_writable_page_tables: u32 = 0;
pub const XENFEAT_writable_descriptor_tables: u32 = 1;
pub const XENFEAT_auto_translated_physmap: u32 = 2;
pub const XENFEAT_supervisor_mode_kernel: u32 = 3;
pub const XENFEAT_pae_pgdir_above_4gb: u32 = 4;
pub const XENFEAT_mmu_pt_update_preserve_ad: u32 = 5;
pub const XENFEAT_highmem_assist: u32 = 6;
pub const XENFEAT_gnttab_map_avail_bits: u32 = 7;
pub const XENFEAT_hvm_callback_vector: u32 = 8;
pub const XENFEAT_hvm_safe_pvclock: u32 = 9;
pub const XENFEAT_hvm_pirqs: u32 = 10;
pub const XENFEAT_dom0: u32 = 11;
pub const XENFEAT_grant_map_identity: u32 = 12;
pub const XENFEAT_memory_op_vnode_supported: u32 = 13;
pub const XENFEAT_ARM_SMCCC_supported: u32 = 14;
pub const XENFEAT_linux_rsdp_unrestricted: u32 = 15;
pub const XENFEAT_not_direct_mapped: u32 = 16;
pub const XENFEAT_direct_mapped: u32 = 17;
pub const XENFEAT_runstate_phys_area: u32 = 18;
pub const XENFEAT_vcpu_time_phys_area: u32 = 19;
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

// --- x86 page-table entry bits (as Xen names them) --------------------------------
pub const _PAGE_PRESENT: u64 = 1 << 0;
pub const _PAGE_RW: u64 = 1 << 1;
pub const _PAGE_USER: u64 = 1 << 2;
pub const _PAGE_PWT: u64 = 1 << 3;
pub const _PAGE_PCD: u64 = 1 << 4;
pub const _PAGE_ACCESSED: u64 = 1 << 5;
pub const _PAGE_DIRTY: u64 = 1 << 6;
pub const _PAGE_PSE: u64 = 1 << 7;
pub const _PAGE_PAT: u64 = 1 << 7;
pub const _PAGE_GLOBAL: u64 = 1 << 8;
/// Software bit Xen sets on kernel-mode L1 entries of 64-bit PV guests.
pub const _PAGE_GUEST_KERNEL: u64 = 1 << 52;
pub const _PAGE_NX: u64 = 1 << 63;
pub const PADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Entries of one page table at any level.
pub const L1_PAGETABLE_ENTRIES: usize = 512;
pub const L1_PAGETABLE_SHIFT: u32 = 12;
pub const L2_PAGETABLE_SHIFT: u32 = 21;
pub const L3_PAGETABLE_SHIFT: u32 = 30;
pub const L4_PAGETABLE_SHIFT: u32 = 39;
/// Invalid P2M/M2P entry.
pub const INVALID_MFN: u64 = !0;
pub const INVALID_P2M_ENTRY: u64 = !0;

// --- hvm/start_info.h (PVH) ---------------------------------------------------------
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
