//! ABI structures (64-bit guest layout), each with a compile-time check of
//! its size and field offsets against `xen/include/public/`.

use core::mem::{offset_of, size_of};

use super::consts::{EVTCHN_FIFO_MAX_QUEUES, MAX_GUEST_CMDLINE, XEN_LEGACY_MAX_VCPUS};

/// `struct start_info` (xen.h), 1168 bytes on x86_64.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StartInfo {
    pub magic: [u8; 32],
    pub nr_pages: u64,
    pub shared_info: u64,
    pub flags: u32,
    pub _pad0: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub _pad1: u32,
    /// `console.domU.mfn` (or `console.dom0.info_off`/`info_size`).
    pub console_mfn: u64,
    /// `console.domU.evtchn`.
    pub console_evtchn: u32,
    pub _pad2: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    pub first_p2m_pfn: u64,
    pub nr_p2m_frames: u64,
}

const _: () = {
    assert!(size_of::<StartInfo>() == 1168);
    assert!(offset_of!(StartInfo, nr_pages) == 32);
    assert!(offset_of!(StartInfo, shared_info) == 40);
    assert!(offset_of!(StartInfo, flags) == 48);
    assert!(offset_of!(StartInfo, store_mfn) == 56);
    assert!(offset_of!(StartInfo, store_evtchn) == 64);
    assert!(offset_of!(StartInfo, console_mfn) == 72);
    assert!(offset_of!(StartInfo, console_evtchn) == 80);
    assert!(offset_of!(StartInfo, pt_base) == 88);
    assert!(offset_of!(StartInfo, nr_pt_frames) == 96);
    assert!(offset_of!(StartInfo, mfn_list) == 104);
    assert!(offset_of!(StartInfo, mod_start) == 112);
    assert!(offset_of!(StartInfo, mod_len) == 120);
    assert!(offset_of!(StartInfo, cmd_line) == 128);
    assert!(offset_of!(StartInfo, first_p2m_pfn) == 1152);
    assert!(offset_of!(StartInfo, nr_p2m_frames) == 1160);
};

/// `struct vcpu_time_info` (xen.h), 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct VcpuTimeInfo {
    pub version: u32,
    pub pad0: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
    pub pad1: [u8; 2],
}

/// `vcpu_time_info.flags` bits.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

const _: () = {
    assert!(size_of::<VcpuTimeInfo>() == 32);
    assert!(offset_of!(VcpuTimeInfo, tsc_timestamp) == 8);
    assert!(offset_of!(VcpuTimeInfo, system_time) == 16);
    assert!(offset_of!(VcpuTimeInfo, tsc_to_system_mul) == 24);
    assert!(offset_of!(VcpuTimeInfo, tsc_shift) == 28);
    assert!(offset_of!(VcpuTimeInfo, flags) == 29);
};

/// `struct vcpu_register_time_memory_area` (vcpu.h): where the guest wants a
/// second copy of its `vcpu_time_info` (`addr.v`, a guest virtual address;
/// 0 = none), for its vDSO.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct VcpuRegisterTimeMemoryArea {
    pub addr: u64,
}

const _: () = {
    assert!(size_of::<VcpuRegisterTimeMemoryArea>() == 8);
    assert!(offset_of!(VcpuRegisterTimeMemoryArea, addr) == 0);
};

/// `struct arch_vcpu_info` (arch-x86/xen.h), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct ArchVcpuInfo {
    pub cr2: u64,
    pub pad: u64,
}

/// `struct vcpu_info` (xen.h), 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct VcpuInfo {
    pub evtchn_upcall_pending: u8,
    pub evtchn_upcall_mask: u8,
    pub _pad: [u8; 6],
    pub evtchn_pending_sel: u64,
    pub arch: ArchVcpuInfo,
    pub time: VcpuTimeInfo,
}

const _: () = {
    assert!(size_of::<VcpuInfo>() == 64);
    assert!(offset_of!(VcpuInfo, evtchn_upcall_mask) == 1);
    assert!(offset_of!(VcpuInfo, evtchn_pending_sel) == 8);
    assert!(offset_of!(VcpuInfo, arch) == 16);
    assert!(offset_of!(VcpuInfo, time) == 32);
};

/// `struct arch_shared_info` (arch-x86/xen.h), 48 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct ArchSharedInfo {
    pub max_pfn: u64,
    pub pfn_to_mfn_frame_list_list: u64,
    pub nmi_reason: u64,
    pub p2m_cr3: u64,
    pub p2m_vaddr: u64,
    pub p2m_generation: u64,
}

/// Number of event-channel ports in the 2-level ABI (64 words of 64 bits).
pub const EVTCHN_2L_NR_CHANNELS: usize = 64 * 64;

/// `struct shared_info` (xen.h), 3136 bytes on x86_64.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SharedInfo {
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    pub evtchn_pending: [u64; 64],
    pub evtchn_mask: [u64; 64],
    pub wc_version: u32,
    pub wc_sec: u32,
    pub wc_nsec: u32,
    pub wc_sec_hi: u32,
    pub arch: ArchSharedInfo,
}

const _: () = {
    assert!(size_of::<SharedInfo>() == 3136);
    assert!(offset_of!(SharedInfo, evtchn_pending) == 2048);
    assert!(offset_of!(SharedInfo, evtchn_mask) == 2560);
    assert!(offset_of!(SharedInfo, wc_version) == 3072);
    assert!(offset_of!(SharedInfo, wc_sec) == 3076);
    assert!(offset_of!(SharedInfo, wc_nsec) == 3080);
    assert!(offset_of!(SharedInfo, wc_sec_hi) == 3084);
    assert!(offset_of!(SharedInfo, arch) == 3088);
    assert!(offset_of!(ArchSharedInfo, p2m_generation) == 40);
};

/// `struct trap_info` (arch-x86/xen.h), 16 bytes: one virtual IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: DPL; bit 2: mask events on entry (`TI_IF_MASK`).
    pub flags: u8,
    pub cs: u16,
    pub _pad: u32,
    pub address: u64,
}

const _: () = {
    assert!(size_of::<TrapInfo>() == 16);
    assert!(offset_of!(TrapInfo, flags) == 1);
    assert!(offset_of!(TrapInfo, cs) == 2);
    assert!(offset_of!(TrapInfo, address) == 8);
};

/// `struct xencons_interface` (io/console.h): a PV console ring page.
#[repr(C)]
pub struct XenconsInterface {
    pub input: [u8; XENCONS_IN_SIZE],
    pub output: [u8; XENCONS_OUT_SIZE],
    pub in_cons: u32,
    pub in_prod: u32,
    pub out_cons: u32,
    pub out_prod: u32,
}

pub const XENCONS_IN_SIZE: usize = 1024;
pub const XENCONS_OUT_SIZE: usize = 2048;

const _: () = {
    assert!(offset_of!(XenconsInterface, output) == 1024);
    assert!(offset_of!(XenconsInterface, in_cons) == 3072);
    assert!(offset_of!(XenconsInterface, in_prod) == 3076);
    assert!(offset_of!(XenconsInterface, out_cons) == 3080);
    assert!(offset_of!(XenconsInterface, out_prod) == 3084);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::consts::*;

    #[test]
    fn event_bitmaps_cover_the_2l_port_space() {
        assert_eq!(EVTCHN_2L_NR_CHANNELS, 4096);
        assert_eq!(core::mem::size_of::<[u64; 64]>() * 8, EVTCHN_2L_NR_CHANNELS);
    }

    #[test]
    fn reserved_gdt_selectors_match_xen() {
        assert_eq!(FIRST_RESERVED_GDT_ENTRY, 7168);
        // 0xe023/0xe02b/0xe033 are entries 7172..=7174, RPL 3.
        assert_eq!((FLAT_RING3_CS32 >> 3, FLAT_RING3_DS32 >> 3, FLAT_RING3_CS64 >> 3), (7172, 7173, 7174));
        assert_eq!(FLAT_RING3_CS64 & 3, 3);
    }

    #[test]
    fn hypervisor_range_is_l4_256_to_271() {
        assert_eq!((HYPERVISOR_VIRT_START >> 39) & 511, HYPERVISOR_L4_FIRST as u64);
        assert_eq!(((HYPERVISOR_VIRT_END - 1) >> 39) & 511, HYPERVISOR_L4_LAST as u64);
        assert_eq!(MACH2PHYS_NR_ENTRIES, 1 << 35);
    }
}

/// `struct xen_add_to_physmap` (memory.h): map `space`'s frame `idx` at `gpfn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenAddToPhysmap {
    pub domid: u16,
    pub size: u16,
    pub space: u32,
    pub idx: u64,
    pub gpfn: u64,
}
const _: () = {
    assert!(size_of::<XenAddToPhysmap>() == 24);
    assert!(offset_of!(XenAddToPhysmap, space) == 4);
    assert!(offset_of!(XenAddToPhysmap, idx) == 8);
    assert!(offset_of!(XenAddToPhysmap, gpfn) == 16);
};

/// `struct xen_memory_reservation` (memory.h): XENMEM_increase_reservation,
/// XENMEM_decrease_reservation and XENMEM_populate_physmap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenMemoryReservation {
    /// Guest handle to an array of `xen_pfn_t`: MFNs to give up (decrease),
    /// GPFNs to fill and then the MFNs given (populate), the MFNs given
    /// (increase, may be null).
    pub extent_start: u64,
    pub nr_extents: u64,
    pub extent_order: u32,
    /// `XENMEMF_*` (the low byte: address_bits).
    pub mem_flags: u32,
    pub domid: u16,
}
const _: () = {
    assert!(size_of::<XenMemoryReservation>() == 32);
    assert!(offset_of!(XenMemoryReservation, nr_extents) == 8);
    assert!(offset_of!(XenMemoryReservation, extent_order) == 16);
    assert!(offset_of!(XenMemoryReservation, mem_flags) == 20);
    assert!(offset_of!(XenMemoryReservation, domid) == 24);
};

/// `struct xen_memory_exchange` (memory.h): XENMEM_exchange.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenMemoryExchange {
    /// Xen's `in`: the extents given up (GMFN bases; `mem_flags` unused).
    pub input: XenMemoryReservation,
    /// Xen's `out`: the GPFN bases to fill, overwritten with the MFN bases
    /// given (a PV guest); `mem_flags` holds address_bits.
    pub output: XenMemoryReservation,
    /// [in/out] Input extents exchanged: where to start, and how far it got.
    pub nr_exchanged: u64,
}
const _: () = {
    assert!(size_of::<XenMemoryExchange>() == 72);
    assert!(offset_of!(XenMemoryExchange, output) == 32);
    assert!(offset_of!(XenMemoryExchange, nr_exchanged) == 64);
};

/// `struct xen_hvm_param` (hvm_op.h): HVMOP_{get,set}_param.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenHvmParam {
    pub domid: u16,
    pub _pad: u16,
    pub index: u32,
    pub value: u64,
}
const _: () = {
    assert!(size_of::<XenHvmParam>() == 16);
    assert!(offset_of!(XenHvmParam, index) == 4);
    assert!(offset_of!(XenHvmParam, value) == 8);
};

/// `struct xen_hvm_evtchn_upcall_vector` (hvm_op.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenHvmEvtchnUpcallVector {
    pub vcpu: u32,
    pub vector: u8,
}
const _: () = assert!(size_of::<XenHvmEvtchnUpcallVector>() == 8);

/// `struct evtchn_alloc_unbound` (event_channel.h): a port `dom` owns, open to `remote_dom`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnAllocUnbound {
    pub dom: u16,
    pub remote_dom: u16,
    /// OUT
    pub port: u32,
}
const _: () = {
    assert!(size_of::<EvtchnAllocUnbound>() == 8);
    assert!(offset_of!(EvtchnAllocUnbound, port) == 4);
};

/// `struct evtchn_bind_interdomain` (event_channel.h): connect to `remote_port` of `remote_dom`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindInterdomain {
    pub remote_dom: u16,
    pub remote_port: u32,
    /// OUT
    pub local_port: u32,
}
const _: () = {
    assert!(size_of::<EvtchnBindInterdomain>() == 12);
    assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);
    assert!(offset_of!(EvtchnBindInterdomain, local_port) == 8);
};

/// `struct evtchn_bind_virq` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindVirq {
    pub virq: u32,
    pub vcpu: u32,
    /// OUT
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindVirq>() == 12 && offset_of!(EvtchnBindVirq, port) == 8);

/// `struct evtchn_bind_ipi` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindIpi {
    pub vcpu: u32,
    /// OUT
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindIpi>() == 8 && offset_of!(EvtchnBindIpi, port) == 4);

/// `struct evtchn_bind_vcpu` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindVcpu {
    pub port: u32,
    pub vcpu: u32,
}
const _: () = assert!(size_of::<EvtchnBindVcpu>() == 8 && offset_of!(EvtchnBindVcpu, vcpu) == 4);

/// `struct evtchn_send` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnSend {
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnSend>() == 4);

/// `struct evtchn_init_control` (event_channel.h): the FIFO control block
/// of `vcpu` at `offset` in frame `control_gfn` (an MFN for a PV guest).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnInitControl {
    pub control_gfn: u64,
    pub offset: u32,
    pub vcpu: u32,
    /// OUT: `EVTCHN_FIFO_LINK_BITS`.
    pub link_bits: u8,
    pub _pad: [u8; 7],
}
const _: () = {
    assert!(size_of::<EvtchnInitControl>() == 24);
    assert!(offset_of!(EvtchnInitControl, offset) == 8);
    assert!(offset_of!(EvtchnInitControl, vcpu) == 12);
    assert!(offset_of!(EvtchnInitControl, link_bits) == 16);
};

/// `struct evtchn_expand_array` (event_channel.h): one more event-array page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnExpandArray {
    pub array_gfn: u64,
}
const _: () = assert!(size_of::<EvtchnExpandArray>() == 8);

/// `struct evtchn_set_priority` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnSetPriority {
    pub port: u32,
    pub priority: u32,
}
const _: () = assert!(size_of::<EvtchnSetPriority>() == 8 && offset_of!(EvtchnSetPriority, priority) == 4);

/// `struct evtchn_fifo_control_block` (event_channel.h): per vCPU, in guest
/// memory. Bit q of `ready` says queue q (priority q) has events; `head[q]`
/// is the port the guest starts that queue from.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnFifoControlBlock {
    pub ready: u32,
    pub _rsvd: u32,
    pub head: [u32; EVTCHN_FIFO_MAX_QUEUES],
}
const _: () = {
    assert!(size_of::<EvtchnFifoControlBlock>() == 72);
    assert!(offset_of!(EvtchnFifoControlBlock, head) == 8);
};

/// `struct cpu_user_regs` (arch-x86/xen-x86_64.h), 200 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct CpuUserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub error_code: u32,
    pub entry_vector: u32,
    pub rip: u64,
    pub cs: u16,
    pub _pad0: u16,
    pub saved_upcall_mask: u8,
    pub _pad1: [u8; 3],
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u16,
    pub _pad2: [u16; 3],
    pub es: u16,
    pub _pad3: [u16; 3],
    pub ds: u16,
    pub _pad4: [u16; 3],
    pub fs: u16,
    pub _pad5: [u16; 3],
    pub gs: u16,
    pub _pad6: [u16; 3],
}

const _: () = {
    assert!(size_of::<CpuUserRegs>() == 200);
    assert!(offset_of!(CpuUserRegs, error_code) == 120);
    assert!(offset_of!(CpuUserRegs, rip) == 128);
    assert!(offset_of!(CpuUserRegs, cs) == 136);
    assert!(offset_of!(CpuUserRegs, saved_upcall_mask) == 140);
    assert!(offset_of!(CpuUserRegs, rflags) == 144);
    assert!(offset_of!(CpuUserRegs, rsp) == 152);
    assert!(offset_of!(CpuUserRegs, ss) == 160);
    assert!(offset_of!(CpuUserRegs, gs) == 192);
};

/// `struct vcpu_guest_context` (arch-x86/xen.h, 64-bit), what
/// `VCPUOP_initialise` starts a vCPU from; 5168 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VcpuGuestContext {
    pub fpu_ctxt: [u8; 512],
    pub flags: u64,
    pub user_regs: CpuUserRegs,
    pub trap_ctxt: [TrapInfo; 256],
    pub ldt_base: u64,
    pub ldt_ents: u64,
    pub gdt_frames: [u64; 16],
    pub gdt_ents: u64,
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    /// CR0-CR7; the user page table is in ctrlreg[1] (`xen_pfn_to_cr3`).
    pub ctrlreg: [u64; 8],
    pub debugreg: [u64; 8],
    pub event_callback_eip: u64,
    pub failsafe_callback_eip: u64,
    pub syscall_callback_eip: u64,
    pub vm_assist: u64,
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
}

const _: () = {
    assert!(size_of::<VcpuGuestContext>() == 5168);
    assert!(offset_of!(VcpuGuestContext, flags) == 512);
    assert!(offset_of!(VcpuGuestContext, user_regs) == 520);
    assert!(offset_of!(VcpuGuestContext, trap_ctxt) == 720);
    assert!(offset_of!(VcpuGuestContext, ldt_base) == 4816);
    assert!(offset_of!(VcpuGuestContext, gdt_frames) == 4832);
    assert!(offset_of!(VcpuGuestContext, gdt_ents) == 4960);
    assert!(offset_of!(VcpuGuestContext, kernel_sp) == 4976);
    assert!(offset_of!(VcpuGuestContext, ctrlreg) == 4984);
    assert!(offset_of!(VcpuGuestContext, debugreg) == 5048);
    assert!(offset_of!(VcpuGuestContext, event_callback_eip) == 5112);
    assert!(offset_of!(VcpuGuestContext, vm_assist) == 5136);
    assert!(offset_of!(VcpuGuestContext, gs_base_user) == 5160);
};

/// `struct vcpu_register_vcpu_info` (vcpu.h): where a vCPU's vcpu_info goes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuRegisterVcpuInfo {
    pub mfn: u64,
    pub offset: u32,
    pub rsvd: u32,
}
const _: () = assert!(size_of::<VcpuRegisterVcpuInfo>() == 16 && offset_of!(VcpuRegisterVcpuInfo, offset) == 8);

/// `struct iret_context`: the frame the guest pushes before `HYPERVISOR_iret`
/// (`public/arch-x86/xen-x86_64.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IretContext {
    pub rax: u64,
    pub r11: u64,
    pub rcx: u64,
    pub flags: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = {
    assert!(size_of::<IretContext>() == 72);
    assert!(offset_of!(IretContext, flags) == 24 && offset_of!(IretContext, rip) == 32);
    assert!(offset_of!(IretContext, rflags) == 48 && offset_of!(IretContext, ss) == 64);
};

/// `struct grant_entry_v1` (grant_table.h): 512 to a frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*`, written by the guest and (reading/writing) by the hypervisor.
    pub flags: u16,
    pub domid: u16,
    pub frame: u32,
}
const _: () = {
    assert!(size_of::<GrantEntryV1>() == 8);
    assert!(offset_of!(GrantEntryV1, domid) == 2);
    assert!(offset_of!(GrantEntryV1, frame) == 4);
};

/// `union grant_entry_v2` (grant_table.h), 256 to a frame: the header,
/// then `full_page {pad0; frame}`, `sub_page {page_off; length; frame}` or
/// `transitive {trans_domid; pad0; gref}` as `GTF_*` says.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV2 {
    pub flags: u16,
    pub domid: u16,
    /// `sub_page.page_off`, or `transitive.trans_domid`.
    pub page_off: u16,
    /// `sub_page.length`.
    pub length: u16,
    /// `full_page.frame`/`sub_page.frame`; its low half is `transitive.gref`.
    pub frame: u64,
}
const _: () = {
    assert!(size_of::<GrantEntryV2>() == 16);
    assert!(offset_of!(GrantEntryV2, page_off) == 4);
    assert!(offset_of!(GrantEntryV2, length) == 6);
    assert!(offset_of!(GrantEntryV2, frame) == 8);
};

/// `struct gnttab_map_grant_ref` (GNTTABOP_map_grant_ref).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabMapGrantRef {
    pub host_addr: u64,
    /// `GNTMAP_*`.
    pub flags: u32,
    pub r#ref: u32,
    pub dom: u16,
    pub status: i16,
    pub handle: u32,
    pub dev_bus_addr: u64,
}
const _: () = {
    assert!(size_of::<GnttabMapGrantRef>() == 32);
    assert!(offset_of!(GnttabMapGrantRef, flags) == 8);
    assert!(offset_of!(GnttabMapGrantRef, r#ref) == 12);
    assert!(offset_of!(GnttabMapGrantRef, dom) == 16);
    assert!(offset_of!(GnttabMapGrantRef, status) == 18);
    assert!(offset_of!(GnttabMapGrantRef, handle) == 20);
    assert!(offset_of!(GnttabMapGrantRef, dev_bus_addr) == 24);
};

/// `struct gnttab_unmap_grant_ref` (GNTTABOP_unmap_grant_ref).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabUnmapGrantRef {
    pub host_addr: u64,
    pub dev_bus_addr: u64,
    pub handle: u32,
    pub status: i16,
}
const _: () = {
    assert!(size_of::<GnttabUnmapGrantRef>() == 24);
    assert!(offset_of!(GnttabUnmapGrantRef, dev_bus_addr) == 8);
    assert!(offset_of!(GnttabUnmapGrantRef, handle) == 16);
    assert!(offset_of!(GnttabUnmapGrantRef, status) == 20);
};

/// `struct gnttab_unmap_and_replace` (GNTTABOP_unmap_and_replace).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabUnmapAndReplace {
    pub host_addr: u64,
    pub new_addr: u64,
    pub handle: u32,
    pub status: i16,
}
const _: () = {
    assert!(size_of::<GnttabUnmapAndReplace>() == 24);
    assert!(offset_of!(GnttabUnmapAndReplace, new_addr) == 8);
    assert!(offset_of!(GnttabUnmapAndReplace, handle) == 16);
    assert!(offset_of!(GnttabUnmapAndReplace, status) == 20);
};

/// `struct gnttab_setup_table` (GNTTABOP_setup_table).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabSetupTable {
    pub dom: u16,
    pub nr_frames: u32,
    pub status: i16,
    /// Guest handle to `nr_frames` `xen_pfn_t`s.
    pub frame_list: u64,
}
const _: () = {
    assert!(size_of::<GnttabSetupTable>() == 24);
    assert!(offset_of!(GnttabSetupTable, nr_frames) == 4);
    assert!(offset_of!(GnttabSetupTable, status) == 8);
    assert!(offset_of!(GnttabSetupTable, frame_list) == 16);
};

/// `struct gnttab_query_size` (GNTTABOP_query_size).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabQuerySize {
    pub dom: u16,
    pub nr_frames: u32,
    pub max_nr_frames: u32,
    pub status: i16,
}
const _: () = {
    assert!(size_of::<GnttabQuerySize>() == 16);
    assert!(offset_of!(GnttabQuerySize, nr_frames) == 4);
    assert!(offset_of!(GnttabQuerySize, max_nr_frames) == 8);
    assert!(offset_of!(GnttabQuerySize, status) == 12);
};

/// One side of `struct gnttab_copy`: a grant ref (`u.ref`) or a frame (`u.gmfn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabCopyPtr {
    /// `u.gmfn`; `u.ref` is its low 32 bits.
    pub u: u64,
    pub domid: u16,
    pub offset: u16,
}
const _: () = {
    assert!(size_of::<GnttabCopyPtr>() == 16);
    assert!(offset_of!(GnttabCopyPtr, domid) == 8);
    assert!(offset_of!(GnttabCopyPtr, offset) == 10);
};

/// `struct gnttab_copy` (GNTTABOP_copy).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabCopy {
    pub source: GnttabCopyPtr,
    pub dest: GnttabCopyPtr,
    pub len: u16,
    /// `GNTCOPY_*`.
    pub flags: u16,
    pub status: i16,
}
const _: () = {
    assert!(size_of::<GnttabCopy>() == 40);
    assert!(offset_of!(GnttabCopy, dest) == 16);
    assert!(offset_of!(GnttabCopy, len) == 32);
    assert!(offset_of!(GnttabCopy, flags) == 34);
    assert!(offset_of!(GnttabCopy, status) == 36);
};

/// `struct gnttab_get_status_frames` (GNTTABOP_get_status_frames).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabGetStatusFrames {
    pub nr_frames: u32,
    pub dom: u16,
    pub status: i16,
    /// Guest handle to `nr_frames` u64s.
    pub frame_list: u64,
}
const _: () = {
    assert!(size_of::<GnttabGetStatusFrames>() == 16);
    assert!(offset_of!(GnttabGetStatusFrames, dom) == 4);
    assert!(offset_of!(GnttabGetStatusFrames, status) == 6);
    assert!(offset_of!(GnttabGetStatusFrames, frame_list) == 8);
};

/// `struct gnttab_get_version` (GNTTABOP_get_version).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabGetVersion {
    pub dom: u16,
    pub pad: u16,
    pub version: u32,
}
const _: () = {
    assert!(size_of::<GnttabGetVersion>() == 8);
    assert!(offset_of!(GnttabGetVersion, version) == 4);
};

/// `struct gnttab_swap_grant_ref` (GNTTABOP_swap_grant_ref).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabSwapGrantRef {
    pub ref_a: u32,
    pub ref_b: u32,
    pub status: i16,
}
const _: () = {
    assert!(size_of::<GnttabSwapGrantRef>() == 12);
    assert!(offset_of!(GnttabSwapGrantRef, ref_b) == 4);
    assert!(offset_of!(GnttabSwapGrantRef, status) == 8);
};
