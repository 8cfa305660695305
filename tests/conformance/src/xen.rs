//! The slice of Xen's public ABI this kernel uses, transcribed from
//! `xen/include/public/` (xen.h, physdev.h, sched.h, memory.h, event_channel.h,
//! grant_table.h, arch-x86/xen-x86_64.h) on its own, not shared with Cocoon:
//! the checks compare Cocoon with these documented values.

#![allow(non_upper_case_globals, dead_code)]

use core::arch::{asm, global_asm};

pub const __HYPERVISOR_set_trap_table: u64 = 0;
pub const __HYPERVISOR_mmu_update: u64 = 1;
pub const __HYPERVISOR_set_debugreg: u64 = 8;
pub const __HYPERVISOR_get_debugreg: u64 = 9;
pub const __HYPERVISOR_memory_op: u64 = 12;
pub const __HYPERVISOR_multicall: u64 = 13;
pub const __HYPERVISOR_update_va_mapping: u64 = 14;
pub const __HYPERVISOR_xen_version: u64 = 17;
pub const __HYPERVISOR_console_io: u64 = 18;
pub const __HYPERVISOR_grant_table_op: u64 = 20;
pub const __HYPERVISOR_vm_assist: u64 = 21;
pub const __HYPERVISOR_iret: u64 = 23;
pub const __HYPERVISOR_vcpu_op: u64 = 24;
pub const __HYPERVISOR_set_segment_base: u64 = 25;
pub const __HYPERVISOR_sched_op: u64 = 29;
pub const __HYPERVISOR_callback_op: u64 = 30;
pub const __HYPERVISOR_event_channel_op: u64 = 32;
pub const __HYPERVISOR_physdev_op: u64 = 33;

pub const XEN_EPERM: i64 = 1;
pub const XEN_ENOENT: i64 = 2;
pub const XEN_ENOMEM: i64 = 12;
pub const XEN_EFAULT: i64 = 14;
pub const XEN_ENODEV: i64 = 19;
pub const XEN_EINVAL: i64 = 22;
pub const XEN_ENOSYS: i64 = 38;
pub const XEN_EBUSY: i64 = 16;
pub const XEN_EOPNOTSUPP: i64 = 95;

pub const CONSOLEIO_write: u64 = 0;
pub const EVTCHNOP_send: u64 = 4;

// vcpu.h
pub const VCPUOP_send_nmi: u64 = 11;

// callback.h
pub const CALLBACKOP_register: u64 = 0;
pub const CALLBACKTYPE_event: u16 = 0;

/// `struct callback_register` (64-bit): type, flags, the address.
#[repr(C)]
pub struct CallbackRegister {
    pub ty: u16,
    pub flags: u16,
    pub _pad: u32,
    pub address: u64,
}
const _: () = assert!(core::mem::size_of::<CallbackRegister>() == 16);
pub const SCHEDOP_shutdown: u64 = 2;
pub const SHUTDOWN_poweroff: u32 = 0;
pub const SHUTDOWN_crash: u32 = 3;
pub const PHYSDEVOP_set_iopl: u64 = 6;
pub const PHYSDEVOP_set_iobitmap: u64 = 7;
pub const VMASST_CMD_enable: u64 = 0;
pub const VMASST_CMD_disable: u64 = 1;
pub const VMASST_TYPE_architectural_iopl: u64 = 4;
pub const DOMID_SELF: u64 = 0x7ff0;
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
pub const UVMF_INVLPG: u64 = 2;

/// `trap_info.flags`: the gate's DPL in bits 0-1; bit 2 masks events on entry.
pub const TI_DPL_MASK: u8 = 3;

pub const _PAGE_PRESENT: u64 = 1 << 0;
pub const _PAGE_RW: u64 = 1 << 1;
pub const _PAGE_USER: u64 = 1 << 2;

/// DR6 bits that read as 1 (`X86_DR6_DEFAULT`) and its status bits.
pub const X86_DR6_DEFAULT: u64 = 0xffff_0ff0;
pub const DR_TRAP0: u64 = 1 << 0;
pub const DR_TRAP1: u64 = 1 << 1;
pub const DR_STEP: u64 = 1 << 14;
/// DR7 bit 10 reads as 1; GD (bit 13) is Xen's.
pub const X86_DR7_DEFAULT: u64 = 1 << 10;
pub const DR_GENERAL_DETECT: u64 = 1 << 13;

/// The kernel's virtual base (its VIRT_BASE note): pseudo-physical 0.
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Xen's reserved range in a 64-bit PV guest's address space.
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;

/// `struct start_info` (64-bit), the fields read here.
#[repr(C)]
pub struct StartInfo {
    pub magic: [u8; 32],
    pub nr_pages: u64,
    pub shared_info: u64,
    pub flags: u32,
    _pad0: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    _pad1: u32,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    _pad2: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub cmd_line: [u8; 1024],
}

const _: () = {
    assert!(core::mem::offset_of!(StartInfo, shared_info) == 40);
    assert!(core::mem::offset_of!(StartInfo, pt_base) == 88);
    assert!(core::mem::offset_of!(StartInfo, mfn_list) == 104);
    assert!(core::mem::offset_of!(StartInfo, cmd_line) == 128);
};

/// `struct trap_info`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TrapInfo {
    pub vector: u8,
    pub flags: u8,
    pub cs: u16,
    pub _pad: u32,
    pub address: u64,
}

const _: () = assert!(core::mem::size_of::<TrapInfo>() == 16);

/// `struct multicall_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MulticallEntry {
    pub op: u64,
    pub result: u64,
    pub args: [u64; 6],
}

const _: () = assert!(core::mem::size_of::<MulticallEntry>() == 64);

/// `struct mmu_update`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}

// The hypercall page Xen (here Cocoon) fills at boot: 32 bytes per hypercall.
global_asm!(
    ".pushsection .text.hypercall_page, \"ax\"",
    ".balign 4096",
    ".globl hypercall_page",
    "hypercall_page:",
    ".fill 4096, 1, 0xcc",
    ".popsection",
);

extern "C" {
    static hypercall_page: [u8; 4096];
}

/// The address of hypercall `nr`'s stub.
pub fn stub(nr: u64) -> u64 {
    core::ptr::addr_of!(hypercall_page) as u64 + nr * 32
}

/// Hypercall `nr` with up to five arguments, through the hypercall page.
pub fn hypercall(nr: u64, a: [u64; 5]) -> i64 {
    let ret: i64;
    // SAFETY: the stub is Xen's calling convention (arguments in rdi, rsi,
    // rdx, r10, r8; rcx and r11 preserved by the stub, the rest by the
    // hypervisor); the arguments are checked by the hypervisor, and the
    // memory they point at is the caller's to lend.
    unsafe {
        asm!(
            "call {s}",
            s = in(reg) stub(nr),
            inlateout("rdi") a[0] => _,
            inlateout("rsi") a[1] => _,
            inlateout("rdx") a[2] => _,
            inlateout("r10") a[3] => _,
            inlateout("r8") a[4] => _,
            lateout("rax") ret,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// Hypercall with a pointer to `arg` as its second argument (`cmd`, `&arg`).
pub fn op<T>(nr: u64, cmd: u64, arg: &mut T) -> i64 {
    hypercall(nr, [cmd, arg as *mut T as u64, 0, 0, 0])
}

pub fn console_write(s: &[u8]) {
    hypercall(__HYPERVISOR_console_io, [CONSOLEIO_write, s.len() as u64, s.as_ptr() as u64, 0, 0]);
}

pub fn shutdown(reason: u32) -> ! {
    let mut r = reason;
    op(__HYPERVISOR_sched_op, SCHEDOP_shutdown, &mut r);
    loop {
        core::hint::spin_loop();
    }
}

pub fn set_debugreg(reg: u64, value: u64) -> i64 {
    hypercall(__HYPERVISOR_set_debugreg, [reg, value, 0, 0, 0])
}

pub fn get_debugreg(reg: u64) -> i64 {
    hypercall(__HYPERVISOR_get_debugreg, [reg, 0, 0, 0, 0])
}

pub fn set_trap_table(traps: &[TrapInfo]) -> i64 {
    hypercall(__HYPERVISOR_set_trap_table, [traps.as_ptr() as u64, 0, 0, 0, 0])
}

pub fn mmu_update(reqs: &[MmuUpdate]) -> i64 {
    hypercall(__HYPERVISOR_mmu_update, [reqs.as_ptr() as u64, reqs.len() as u64, 0, DOMID_SELF, 0])
}

pub fn update_va_mapping(va: u64, pte: u64, flags: u64) -> i64 {
    hypercall(__HYPERVISOR_update_va_mapping, [va, pte, flags, 0, 0])
}

pub fn physdev_op<T>(cmd: u64, arg: &mut T) -> i64 {
    op(__HYPERVISOR_physdev_op, cmd, arg)
}

pub fn vm_assist(cmd: u64, ty: u64) -> i64 {
    hypercall(__HYPERVISOR_vm_assist, [cmd, ty, 0, 0, 0])
}

// CPU registers and MSRs (x86; Xen names, `pv_fixup_guest_cr4` masks from xen/arch/x86/include/asm/pv/domain.h)
pub const X86_CR4_TSD: u64 = 1 << 2;
pub const X86_CR4_DE: u64 = 1 << 3;
pub const X86_CR4_PAE: u64 = 1 << 5;
pub const X86_CR4_MCE: u64 = 1 << 6;
pub const X86_CR4_PGE: u64 = 1 << 7;
pub const X86_CR4_OSFXSR: u64 = 1 << 9;
pub const X86_CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const X86_CR4_FSGSBASE: u64 = 1 << 16;
pub const X86_CR4_OSXSAVE: u64 = 1 << 18;
pub const PV_CR4_GUEST_MASK: u64 = X86_CR4_TSD | X86_CR4_DE | X86_CR4_FSGSBASE | X86_CR4_OSXSAVE;
pub const PV_CR4_GUEST_VISIBLE_MASK: u64 = X86_CR4_PAE | X86_CR4_MCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_SHADOW_GS_BASE: u32 = 0xc000_0102;
// HYPERVISOR_set_segment_base's `which`
pub const SEGBASE_FS: u64 = 0;
pub const SEGBASE_GS_USER: u64 = 1;
pub const SEGBASE_GS_KERNEL: u64 = 2;
pub const MSR_IA32_DEBUGCTLMSR: u32 = 0x1d9;

// DR7 fields
pub const DR_RW_EXECUTE: u64 = 0;
pub const DR_RW_WRITE: u64 = 1;
pub const DR_IO: u64 = 2;
pub const DR_LEN_1: u64 = 0;
pub const DR_LEN_4: u64 = 3;

// event_channel.h
pub const EVTCHNOP_close: u64 = 3;
pub const EVTCHNOP_bind_ipi: u64 = 7;
pub const EVTCHNOP_unmask: u64 = 9;
pub const EVTCHNOP_init_control: u64 = 11;
pub const EVTCHNOP_expand_array: u64 = 12;
pub const EVTCHNOP_set_priority: u64 = 13;
pub const EVTCHN_FIFO_LINK_BITS: u8 = 17;
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: usize = 7;
pub const EVTCHN_FIFO_PENDING: u32 = 1 << 31;
pub const EVTCHN_FIFO_MASKED: u32 = 1 << 30;
pub const EVTCHN_FIFO_LINKED: u32 = 1 << 29;
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << 17) - 1;

// grant_table.h
pub const GNTTABOP_map_grant_ref: u64 = 0;
pub const GNTTABOP_unmap_grant_ref: u64 = 1;
pub const GNTTABOP_setup_table: u64 = 2;
pub const GNTTABOP_copy: u64 = 5;
pub const GNTTABOP_query_size: u64 = 6;
pub const GNTTABOP_set_version: u64 = 8;
pub const GNTTABOP_get_status_frames: u64 = 9;
pub const GNTTABOP_get_version: u64 = 10;
pub const GNTTABOP_swap_grant_ref: u64 = 11;
pub const GTF_permit_access: u16 = 1;
pub const GTF_readonly: u16 = 1 << 2;
pub const GTF_reading: u16 = 1 << 3;
pub const GTF_writing: u16 = 1 << 4;
pub const GNTMAP_device_map: u32 = 1 << 0;
pub const GNTMAP_host_map: u32 = 1 << 1;
pub const GNTMAP_readonly: u32 = 1 << 2;
pub const GNTCOPY_source_gref: u16 = 1;
pub const GNTST_okay: i16 = 0;
pub const GNTST_bad_domain: i16 = -2;
pub const GNTST_bad_gntref: i16 = -3;
pub const GNTST_bad_handle: i16 = -4;
pub const GNTST_bad_copy_arg: i16 = -10;

// memory.h and the M2P
pub const XENMEM_decrease_reservation: u64 = 1;
pub const XENMEM_exchange: u64 = 11;
/// The read-only M2P every 64-bit PV guest sees.
pub const RO_MPT_VIRT_START: u64 = 0xffff_8000_0000_0000;
pub const INVALID_M2P_ENTRY: u64 = !0;
