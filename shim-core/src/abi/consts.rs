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
pub const XEN_ERANGE: i64 = 34;
pub const XEN_ENOSYS: i64 = 38;
pub const XEN_ETIME: i64 = 62;
pub const XEN_EOPNOTSUPP: i64 = 95;
pub const XEN_ETIMEDOUT: i64 = 110;

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
/// The three bits the guest kernel may use (Xen's `_PAGE_AVAIL`).
pub const _PAGE_AVAIL: u64 = 0xe00;
pub const _PAGE_NX: u64 = 1 << 63;
pub const PADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Entries of one page table at any level.
pub const L1_PAGETABLE_ENTRIES: usize = 512;
pub const L4_PAGETABLE_ENTRIES: usize = 512;
pub const L1_PAGETABLE_SHIFT: u32 = 12;
pub const L2_PAGETABLE_SHIFT: u32 = 21;
pub const L3_PAGETABLE_SHIFT: u32 = 30;
pub const L4_PAGETABLE_SHIFT: u32 = 39;
/// Invalid P2M/M2P entry.
pub const INVALID_MFN: u64 = !0;
pub const INVALID_P2M_ENTRY: u64 = !0;
/// An M2P entry for a frame that is nobody's page (`INVALID_M2P_ENTRY`).
pub const INVALID_M2P_ENTRY: u64 = !0;

// --- hvm/start_info.h (PVH) ---------------------------------------------------------
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

// --- mmu_update / mmuext_op / update_va_mapping (xen.h) ---
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
pub const MMU_PT_UPDATE_NO_TRANSLATE: u64 = 3;
pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
pub const MMUEXT_INVLPG_ALL: u32 = 11;
pub const MMUEXT_FLUSH_CACHE: u32 = 12;
pub const MMUEXT_SET_LDT: u32 = 13;
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
pub const MMUEXT_COPY_PAGE: u32 = 17;
pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
pub const MMUEXT_MARK_SUPER: u32 = 19;
pub const MMUEXT_UNMARK_SUPER: u32 = 20;
pub const UVMF_NONE: u64 = 0;
pub const UVMF_TLB_FLUSH: u64 = 1;
pub const UVMF_INVLPG: u64 = 2;
pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
/// Flush on every vCPU (`UVMF_MULTI` instead puts a vCPU-bitmap pointer in the flags).
pub const UVMF_ALL: u64 = 1 << 2;

// --- memory_op (memory.h) ---
pub const XENMEM_increase_reservation: u64 = 0;
pub const XENMEM_decrease_reservation: u64 = 1;
pub const XENMEM_maximum_ram_page: u64 = 2;
pub const XENMEM_current_reservation: u64 = 3;
pub const XENMEM_maximum_reservation: u64 = 4;
pub const XENMEM_machphys_mfn_list: u64 = 5;
pub const XENMEM_populate_physmap: u64 = 6;
pub const XENMEM_add_to_physmap: u64 = 7;
pub const XENMEM_memory_map: u64 = 9;
pub const XENMEM_machine_memory_map: u64 = 10;
pub const XENMEM_exchange: u64 = 11;
pub const XENMEM_machphys_mapping: u64 = 12;
pub const XENMEM_maximum_gpfn: u64 = 14;
/// The low bits of a memory_op command are the op (`MEMOP_CMD_MASK`); the
/// rest is the extent a continued reservation op starts at.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
pub const MEMOP_CMD_MASK: u64 = (1 << MEMOP_EXTENT_SHIFT) - 1;
/// The largest extent order a domU may use in reservation ops (Xen's
/// `CONFIG_DOMU_MAX_ORDER`: 2 MiB).
pub const DOMU_MAX_ORDER: u32 = 9;
/// `XENMEMF_address_bits(x)`: the low byte of `mem_flags` (0: no limit).
pub const XENMEMF_address_bits_mask: u32 = 0xff;
/// `XENMEMF_node(n)` is `(n + 1) << 8`; `XENMEMF_get_node` gives
/// `NUMA_NO_NODE` for 0.
pub const XENMEMF_node_shift: u32 = 8;
pub const NUMA_NO_NODE: u32 = 0xff;
/// `XENMEMF_exact_node_request`: only the node asked for (refused to a domU
/// that names a node, Xen's `propagate_node`).
pub const XENMEMF_exact_node_request: u32 = 1 << 17;

// --- xen_version (version.h) ---
pub const XENVER_version: u64 = 0;
pub const XENVER_extraversion: u64 = 1;
pub const XENVER_compile_info: u64 = 2;
pub const XENVER_capabilities: u64 = 3;
pub const XENVER_changeset: u64 = 4;
pub const XENVER_platform_parameters: u64 = 5;
pub const XENVER_get_features: u64 = 6;
pub const XENVER_pagesize: u64 = 7;
pub const XENVER_guest_handle: u64 = 8;
pub const XENVER_commandline: u64 = 9;
pub const XENVER_build_id: u64 = 10;

// --- vcpu_op (vcpu.h) ---
pub const VCPUOP_initialise: u64 = 0;
pub const VCPUOP_up: u64 = 1;
pub const VCPUOP_down: u64 = 2;
pub const VCPUOP_is_up: u64 = 3;
pub const VCPUOP_get_runstate_info: u64 = 4;
pub const VCPUOP_register_runstate_memory_area: u64 = 5;
pub const VCPUOP_set_periodic_timer: u64 = 6;
pub const VCPUOP_stop_periodic_timer: u64 = 7;
pub const VCPUOP_set_singleshot_timer: u64 = 8;
pub const VCPUOP_stop_singleshot_timer: u64 = 9;
pub const VCPUOP_register_vcpu_info: u64 = 10;
pub const VCPUOP_send_nmi: u64 = 11;
pub const VCPUOP_register_vcpu_time_memory_area: u64 = 13;

// --- sched_op (sched.h) ---
pub const SCHEDOP_yield: u64 = 0;
pub const SCHEDOP_block: u64 = 1;
pub const SCHEDOP_shutdown: u64 = 2;
pub const SCHEDOP_poll: u64 = 3;
pub const SCHEDOP_shutdown_code: u64 = 5;
pub const SHUTDOWN_poweroff: u32 = 0;
pub const SHUTDOWN_reboot: u32 = 1;
pub const SHUTDOWN_suspend: u32 = 2;
pub const SHUTDOWN_crash: u32 = 3;
pub const SHUTDOWN_watchdog: u32 = 4;

// --- event_channel_op (event_channel.h) ---
pub const EVTCHNOP_bind_interdomain: u64 = 0;
pub const EVTCHNOP_bind_virq: u64 = 1;
pub const EVTCHNOP_bind_pirq: u64 = 2;
pub const EVTCHNOP_close: u64 = 3;
pub const EVTCHNOP_send: u64 = 4;
pub const EVTCHNOP_status: u64 = 5;
pub const EVTCHNOP_alloc_unbound: u64 = 6;
pub const EVTCHNOP_bind_ipi: u64 = 7;
pub const EVTCHNOP_bind_vcpu: u64 = 8;
pub const EVTCHNOP_unmask: u64 = 9;
pub const EVTCHNOP_reset: u64 = 10;
pub const EVTCHNOP_init_control: u64 = 11;
pub const EVTCHNOP_expand_array: u64 = 12;
pub const EVTCHNOP_set_priority: u64 = 13;

// --- FIFO event channels (event_channel.h, "FIFO ABI") ---
/// Priorities run from 0 (highest) to 15 (lowest); new ports get 7.
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
pub const EVTCHN_FIFO_MAX_QUEUES: usize = EVTCHN_FIFO_PRIORITY_MIN as usize + 1;
/// Bit numbers in an `event_word_t` (a u32).
pub const EVTCHN_FIFO_PENDING: u32 = 31;
pub const EVTCHN_FIFO_MASKED: u32 = 30;
pub const EVTCHN_FIFO_LINKED: u32 = 29;
pub const EVTCHN_FIFO_BUSY: u32 = 28;
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
pub const EVTCHN_FIFO_NR_CHANNELS: usize = 1 << EVTCHN_FIFO_LINK_BITS;
/// Xen's `EVTCHN_FIFO_EVENT_WORDS_PER_PAGE` and `EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES` (event_fifo.c).
pub const EVTCHN_FIFO_EVENT_WORDS_PER_PAGE: usize = 4096 / 4;
pub const EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES: usize = EVTCHN_FIFO_NR_CHANNELS / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;

// --- grant_table_op (grant_table.h) ---
pub const GNTTABOP_map_grant_ref: u64 = 0;
pub const GNTTABOP_unmap_grant_ref: u64 = 1;
pub const GNTTABOP_setup_table: u64 = 2;
pub const GNTTABOP_dump_table: u64 = 3;
pub const GNTTABOP_transfer: u64 = 4;
pub const GNTTABOP_copy: u64 = 5;
pub const GNTTABOP_query_size: u64 = 6;
pub const GNTTABOP_unmap_and_replace: u64 = 7;
pub const GNTTABOP_set_version: u64 = 8;
pub const GNTTABOP_get_status_frames: u64 = 9;
pub const GNTTABOP_get_version: u64 = 10;
pub const GNTTABOP_swap_grant_ref: u64 = 11;
pub const GNTTABOP_cache_flush: u64 = 12;
/// Bits of `cmd` above these carry a continuation's progress (cache_flush only;
/// grant_table.c's `GNTTABOP_CONTINUATION_ARG_SHIFT`/`GNTTABOP_CMD_MASK`).
pub const GNTTABOP_CONTINUATION_ARG_SHIFT: u32 = 12;
pub const GNTTABOP_CMD_MASK: u32 = (1 << GNTTABOP_CONTINUATION_ARG_SHIFT) - 1;
/// Entries 0-7 are the toolstack's (xenstore, console): kept across a version switch.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
// Grant entry flags (`GTF_*`).
pub const GTF_invalid: u16 = 0;
pub const GTF_permit_access: u16 = 1;
pub const GTF_accept_transfer: u16 = 2;
pub const GTF_transitive: u16 = 3;
pub const GTF_type_mask: u16 = 3;
pub const GTF_readonly: u16 = 1 << 2;
pub const GTF_reading: u16 = 1 << 3;
pub const GTF_writing: u16 = 1 << 4;
pub const GTF_PWT: u16 = 1 << 5;
pub const GTF_PCD: u16 = 1 << 6;
pub const GTF_PAT: u16 = 1 << 7;
pub const GTF_sub_page: u16 = 1 << 8;
// gnttab_map_grant_ref.flags (`GNTMAP_*`).
pub const GNTMAP_device_map: u32 = 1 << 0;
pub const GNTMAP_host_map: u32 = 1 << 1;
pub const GNTMAP_readonly: u32 = 1 << 2;
pub const GNTMAP_application_map: u32 = 1 << 3;
pub const GNTMAP_contains_pte: u32 = 1 << 4;
pub const GNTMAP_can_fail: u32 = 1 << 5;
/// Bits 16.. of the map flags go to the PTE's available bits (XENFEAT_gnttab_map_avail_bits).
pub const _GNTMAP_guest_avail0: u32 = 16;
// gnttab_copy.flags (`GNTCOPY_*`).
pub const GNTCOPY_source_gref: u16 = 1 << 0;
pub const GNTCOPY_dest_gref: u16 = 1 << 1;
pub const GNTCOPY_can_fail: u16 = 1 << 2;
// Grant operation status (`GNTST_*`): all errors are negative.
pub const GNTST_okay: i16 = 0;
pub const GNTST_general_error: i16 = -1;
pub const GNTST_bad_domain: i16 = -2;
pub const GNTST_bad_gntref: i16 = -3;
pub const GNTST_bad_handle: i16 = -4;
pub const GNTST_bad_virt_addr: i16 = -5;
pub const GNTST_bad_dev_addr: i16 = -6;
pub const GNTST_no_device_space: i16 = -7;
pub const GNTST_permission_denied: i16 = -8;
pub const GNTST_bad_page: i16 = -9;
pub const GNTST_bad_copy_arg: i16 = -10;
pub const GNTST_address_too_big: i16 = -11;
pub const GNTST_eagain: i16 = -12;

// --- console_io, set_segment_base, physdev_op (xen.h, physdev.h) ---
pub const CONSOLEIO_write: u64 = 0;
pub const CONSOLEIO_read: u64 = 1;
pub const SEGBASE_FS: u64 = 0;
pub const SEGBASE_GS_USER: u64 = 1;
pub const SEGBASE_GS_KERNEL: u64 = 2;
pub const SEGBASE_GS_USER_SEL: u64 = 3;
pub const PHYSDEVOP_set_iopl: u64 = 6;
pub const PHYSDEVOP_set_iobitmap: u64 = 7;
/// The size of a PV guest's I/O bitmap (one bit per port).
pub const IOBMP_BYTES: u64 = 8192;

// --- callback_op (callback.h) ---
pub const CALLBACKOP_register: u64 = 0;
pub const CALLBACKOP_unregister: u64 = 1;

// --- callbacks, trap bounces, VM assists (callback.h, xen.h) ---
pub const CALLBACKTYPE_event: u16 = 0;
pub const CALLBACKTYPE_failsafe: u16 = 1;
pub const CALLBACKTYPE_syscall: u16 = 2;
pub const CALLBACKTYPE_syscall32: u16 = 7;
pub const CALLBACKTYPE_sysenter: u16 = 5;
pub const CALLBACKTYPE_nmi: u16 = 4;
pub const CALLBACKF_mask_events: u16 = 1;
pub const TBF_EXCEPTION_ERRCODE: u8 = 2;
pub const TBF_INTERRUPT: u8 = 8;
pub const TBF_FAILSAFE: u8 = 16;
pub const VMASST_TYPE_4gb_segments: u32 = 0;
pub const VMASST_TYPE_4gb_segments_notify: u32 = 1;
pub const VMASST_TYPE_writable_pagetables: u32 = 2;
pub const VMASST_TYPE_pae_extended_cr3: u32 = 3;
pub const VMASST_TYPE_architectural_iopl: u32 = 4;
pub const VMASST_TYPE_runstate_update_flag: u32 = 5;
pub const VMASST_TYPE_m2p_strict: u32 = 32;

// --- VIRQs and event-channel status (xen.h, event_channel.h) ---
pub const VIRQ_TIMER: u32 = 0;
pub const VIRQ_DEBUG: u32 = 1;
pub const VIRQ_CONSOLE: u32 = 2;
pub const VIRQ_XENOPROF: u32 = 7;
pub const VIRQ_XENPMU: u32 = 13;
/// VIRQs bound per vCPU; the others are global (Xen's `virq_is_global`).
pub const VIRQ_PER_VCPU: [u32; 4] = [VIRQ_TIMER, VIRQ_DEBUG, VIRQ_XENOPROF, VIRQ_XENPMU];
pub const EVTCHNSTAT_CLOSED: u32 = 0;
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
pub const EVTCHNSTAT_VIRQ: u32 = 4;
pub const EVTCHNSTAT_IPI: u32 = 5;

// --- xenstore wire protocol (io/xs_wire.h) ---
pub const XS_CONTROL: u32 = 0;
pub const XS_DIRECTORY: u32 = 1;
pub const XS_READ: u32 = 2;
pub const XS_GET_PERMS: u32 = 3;
pub const XS_WATCH: u32 = 4;
pub const XS_UNWATCH: u32 = 5;
pub const XS_TRANSACTION_START: u32 = 6;
pub const XS_TRANSACTION_END: u32 = 7;
pub const XS_INTRODUCE: u32 = 8;
pub const XS_RELEASE: u32 = 9;
pub const XS_GET_DOMAIN_PATH: u32 = 10;
pub const XS_WRITE: u32 = 11;
pub const XS_MKDIR: u32 = 12;
pub const XS_RM: u32 = 13;
pub const XS_SET_PERMS: u32 = 14;
pub const XS_WATCH_EVENT: u32 = 15;
pub const XS_ERROR: u32 = 16;
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
pub const XS_RESUME: u32 = 18;
pub const XS_SET_TARGET: u32 = 19;
pub const XS_RESET_WATCHES: u32 = 21;
pub const XS_DIRECTORY_PART: u32 = 22;

// --- x86 trap vectors and #PF error bits (Xen names) ---
/// Debug registers: DR6 and DR7 as reset (their reserved bits), DR6's
/// status bits that a #DB sets, DR7's enable bits and general-detect bit.
pub const X86_DR6_DEFAULT: u64 = 0xffff_0ff0;
pub const X86_DR7_DEFAULT: u64 = 0x0000_0400;
pub const DR7_ACTIVE_MASK: u64 = 0xff;
pub const DR_GENERAL_DETECT: u64 = 1 << 13;
/// DR7's R/W field value for an I/O breakpoint, and where the fields start.
pub const DR_IO: u64 = 2;
pub const DR_CONTROL_SHIFT: u64 = 16;
pub const DR_CONTROL_SIZE: u64 = 4;

/// CR4 bits (Xen's `X86_CR4_*`).
pub const X86_CR4_TSD: u64 = 1 << 2;
pub const X86_CR4_DE: u64 = 1 << 3;
pub const X86_CR4_PAE: u64 = 1 << 5;
pub const X86_CR4_MCE: u64 = 1 << 6;
pub const X86_CR4_OSFXSR: u64 = 1 << 9;
pub const X86_CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const X86_CR4_FSGSBASE: u64 = 1 << 16;
pub const X86_CR4_OSXSAVE: u64 = 1 << 18;
/// The CR4 bits a PV guest toggles in its view (`PV_CR4_GUEST_MASK`), and
/// those it sees from the hardware's setting (`PV_CR4_GUEST_VISIBLE_MASK`).
pub const PV_CR4_GUEST_MASK: u64 = X86_CR4_TSD | X86_CR4_DE | X86_CR4_FSGSBASE | X86_CR4_OSXSAVE;
pub const PV_CR4_GUEST_VISIBLE_MASK: u64 = X86_CR4_PAE | X86_CR4_MCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;

pub const TRAP_divide_error: u64 = 0;
pub const TRAP_debug: u64 = 1;
pub const TRAP_nmi: u64 = 2;
pub const TRAP_int3: u64 = 3;
pub const TRAP_invalid_op: u64 = 6;
pub const TRAP_no_device: u64 = 7;
pub const TRAP_double_fault: u64 = 8;
pub const TRAP_gp_fault: u64 = 13;
pub const TRAP_page_fault: u64 = 14;
pub const TRAP_machine_check: u64 = 18;
pub const PFEC_present: u64 = 1;
pub const PFEC_write_access: u64 = 2;
pub const PFEC_user_mode: u64 = 4;
pub const PFEC_reserved_bit: u64 = 8;
pub const PFEC_insn_fetch: u64 = 16;

// --- hvm/hvm_op.h, hvm/params.h (Cocoon as an HVM/PVH guest of a real Xen) ---
pub const HVMOP_set_param: u64 = 0;
pub const HVMOP_get_param: u64 = 1;
/// Per-vCPU event upcall vector (Xen 4.6 and later).
pub const HVMOP_set_evtchn_upcall_vector: u64 = 23;
/// HVM_PARAM_CALLBACK_IRQ value types (bits 63:56).
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;
// XENMEM_add_to_physmap spaces.
pub const XENMAPSPACE_shared_info: u32 = 0;
pub const XENMAPSPACE_grant_table: u32 = 1;
pub const XENMAPSPACE_gmfn: u32 = 2;
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
pub const HVM_PARAM_STORE_PFN: u32 = 1;
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
pub const DOMID_SELF: u16 = 0x7ff0;

// --- The Xen platform device's emulated-device unplug protocol
// (docs/misc/hvm-emulated-unplug.pandoc, hvm/pvdrivers.h; names as Linux's
// include/xen/platform_pci.h) ---
pub const XEN_IOPORT_BASE: u16 = 0x10;
/// Read 16 bits: the magic; write 16 bits: the unplug mask; write 32 bits: the build number.
pub const XEN_IOPORT_MAGIC: u16 = XEN_IOPORT_BASE;
pub const XEN_IOPORT_UNPLUG: u16 = XEN_IOPORT_BASE;
pub const XEN_IOPORT_DRVVER: u16 = XEN_IOPORT_BASE;
/// Read 8 bits: the protocol version; write 16 bits: the product number.
pub const XEN_IOPORT_PROTOVER: u16 = XEN_IOPORT_BASE + 2;
pub const XEN_IOPORT_PRODNUM: u16 = XEN_IOPORT_BASE + 2;
pub const XEN_IOPORT_MAGIC_VAL: u16 = 0x49d2;
/// What the magic reads as once the drivers' product and build are blacklisted.
pub const XEN_IOPORT_MAGIC_BLACKLISTED: u16 = 0xd249;
/// Product "linux" in pvdrivers.h: the frontends Cocoon's guest brings are Linux's.
pub const XEN_IOPORT_LINUX_PRODNUM: u16 = 0x0003;
pub const XEN_UNPLUG_ALL_IDE_DISKS: u16 = 1 << 0;
pub const XEN_UNPLUG_ALL_NICS: u16 = 1 << 1;
pub const XEN_UNPLUG_AUX_IDE_DISKS: u16 = 1 << 2;
pub const XEN_UNPLUG_NVME_DISKS: u16 = 1 << 3;
