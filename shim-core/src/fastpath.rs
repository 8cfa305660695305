//! The contract between a vCPU's state and the platform's assembly fast path.
//!
//! The two commonest exits of a 64-bit PV guest are a process's `syscall`
//! (bounced to the guest kernel's syscall callback) and the kernel's
//! `HYPERVISOR_iret` back. Their Rust paths ([`crate::traps::guest_entry`],
//! [`crate::hypercall::callbacks::iret`]) save every register and run the
//! general dispatch; the platform may instead handle them in a few dozen
//! instructions of assembly, as Xen does in `entry.S`, reading and writing
//! the [`Vcpu`] in place at the offsets below.
//!
//! The fast path must do exactly what the Rust path does, and hand over to it
//! (with nothing changed) whenever a case is not one it handles:
//!
//! - **Guest syscall** (the vCPU in guest user mode): only with a syscall
//!   callback registered with `mask_events` (so no event can be due on the
//!   way in), a canonical callback address, no virtual IOPL to put in the
//!   frame (`iopl` 0 or `VMASST_TYPE_architectural_iopl` off), and the kernel stack's
//!   bounce frame above [`HYPERVISOR_VIRT_END`]. It switches to the kernel page
//!   table, writes the 7-word frame `rcx, r11, rip, cs | mask << 32, rflags,
//!   rsp, ss` below `kernel_sp & !15` (a fault there: back to the user table
//!   and the Rust path), swaps GS, sets `kernel_mode` and the upcall mask,
//!   counts [`COUNT_GUEST_SYSCALL`] and [`BOUNCES`], and enters the callback
//!   with `rflags` less TF, NT, RF, VM, AC, DF and IOPL.
//! - **`HYPERVISOR_iret`** (kernel mode, `rax` 23): only with the frame above
//!   `HYPERVISOR_VIRT_END`, `cs | 3` and `ss | 3` either Xen's flat selectors
//!   or present DPL-3 code/data descriptors of the guest GDT (the checks of
//!   `callbacks::selector_ok`), a `rip` [`Domain::guest_va_ok`] accepts, a
//!   user page table when returning to user mode, and no event due once the
//!   frame's IF unmasks them (`upcall_held` clear and no upcall pending),
//!   and not at the end of an NMI handler (`nmi_masked`: the Rust path unmasks NMIs),
//!   nor with `VMASST_TYPE_architectural_iopl` on (the frame's IOPL becomes
//!   the virtual IOPL: the Rust path sets it).
//!   Everything read from the frame before anything changes; a fault reading
//!   it hands over to the Rust path. It counts [`COUNT_IRET`].
//!
//! - **Page fault in guest user mode** (vector 14 from ring 3 with the vCPU
//!   in guest user mode): only with CR2 non-zero (the Rust path recovers a
//!   lost CR2), a page-fault handler registered, nothing due on the way out
//!   (no NMI pending or latched by the CPU while Cocoon ran, no upcall
//!   pending or held while events are unmasked), no
//!   virtual IOPL to put in the frame (as for a syscall), and the kernel
//!   stack's 8-word frame above [`HYPERVISOR_VIRT_END`]. As `traps::page_fault`
//!   and `Ctx::bounce` for it: CR2 into the `vcpu_info`, the kernel page table,
//!   the frame `rcx, r11, error | PFEC_user_mode, rip, cs | mask << 32,
//!   rflags (IF from the saved upcall mask), rsp, ss` below `kernel_sp & !15`
//!   (a fault there: back to the user table, CR2 restored, and the Rust
//!   path), the upcall mask set when the trap entry asks (`TI_IF_MASK`), GS
//!   swapped, `kernel_mode` set, [`COUNT_PAGE_FAULT`] and [`BOUNCES`]
//!   counted, and the handler entered on that frame with `rflags` less TF,
//!   NT, RF, VM and AC.
//! - **`rdmsr` of `MSR_FS_BASE`, `MSR_GS_BASE` or `MSR_SHADOW_GS_BASE` in
//!   guest kernel mode** (vector 13 from ring 3, error code 0, the bytes
//!   `0f 32` at a `rip` [`Domain::guest_va_ok`] accepts): only with nothing
//!   due on the way out (as for a page fault) and TF clear. As
//!   `traps::general_protection` and `traps::msr::read` for it: the CPU's
//!   own MSR into the guest's edx:eax (the guest's bases are the CPU's while
//!   it runs), `rip` past the instruction, [`COUNT_GP_FAULT`] and
//!   [`COUNT_RDMSR`] counted. A fault reading the instruction hands over to
//!   the Rust path.
//! - **Any other hypercall** (kernel mode): [`plain_hypercall`], called from
//!   the assembly with the guest's registers left where the fast path keeps
//!   them, runs those [`hypercall::is_plain`] names (all but `multicall`,
//!   `iret` and `sched_op`: they need the guest's registers) and says whether
//!   it did ([`PLAIN_DONE`]) or did nothing ([`PLAIN_NOT`]: the Rust path from
//!   the start). `mmu_update` of one request (`count` 1, no `pdone`,
//!   `DOMID_SELF`: Linux's `set_pte` outside a batch) whose 16 bytes lie in
//!   one page of guest memory the assembly may read itself (a fault reading
//!   them: the general call above) and, for an `MMU_NORMAL_PT_UPDATE`, pass
//!   to [`mmu_update_one`]. Then it returns straight to the caller
//!   (`sysretq` with the result in rax, the other registers as the guest
//!   left them, as Xen preserves them) unless something is due on the way
//!   out: an NMI the CPU latched while Cocoon ran, the vCPU going down, an
//!   NMI pending and not masked, or, with events unmasked, an upcall pending
//!   or held (as [`Ctx::events_due`] says). Then it takes the
//!   Rust path's way out with the result as the guest's rax (pseudo-vector
//!   [`ENTRY_HYPERCALL_DONE`]), which delivers it. The fast path only calls
//!   them with a canonical return address (no `sysretq` to any other).
//!
//! The SYSCALL and iret paths do not look for an NMI the CPU latched while
//! Cocoon ran (an NMI to the HVM domain, `xl trigger nmi`): it reaches the
//! guest at the next exit through Rust, as the next timer tick makes one.
//!
//! The platform enables the fast path per vCPU (not with `cocoon.stats`,
//! whose per-exit cycle counts need the Rust path).

use core::mem::{offset_of, size_of};

use crate::abi::*;
use crate::domain::{Ctx, Vcpu};
use crate::hypercall::{self, Args};
use crate::platform::Platform;
use crate::regs::*;
use crate::stats::{hypercall_exit, Emulated, EXIT_EXCEPTION, EXIT_GUEST_SYSCALL};

/// `bool`: the vCPU is in guest kernel mode.
pub const KERNEL_MODE: usize = offset_of!(Vcpu, kernel_mode);
/// `u64`: MFN of the kernel L4.
pub const GUEST_TABLE: usize = offset_of!(Vcpu, guest_table);
/// `u64`: MFN of the user L4 (0 = none).
pub const GUEST_TABLE_USER: usize = offset_of!(Vcpu, guest_table_user);
/// `u64`: the guest kernel stack (`stack_switch`).
pub const KERNEL_SP: usize = offset_of!(Vcpu, kernel_sp);
/// `u64`: the syscall callback (0 = none).
pub const SYSCALL_ADDRESS: usize = offset_of!(Vcpu, syscall.address);
/// `bool`: the syscall callback masks events.
pub const SYSCALL_MASK_EVENTS: usize = offset_of!(Vcpu, syscall.mask_events);
/// `u64`: machine address of the vcpu_info.
pub const VCPU_INFO_MADDR: usize = offset_of!(Vcpu, vcpu_info_maddr);
/// `u32`: the virtual IOPL.
pub const IOPL: usize = offset_of!(Vcpu, iopl);
/// `bool`: an upcall is held back (see `Vcpu::upcall_held`).
pub const UPCALL_HELD: usize = offset_of!(Vcpu, upcall_held);
/// `bool`: the guest is in its NMI handler (see `Vcpu::nmi_masked`).
pub const NMI_MASKED: usize = offset_of!(Vcpu, nmi_masked);
/// `bool`: an NMI waits for the guest (see `Vcpu::nmi_pending`).
pub const NMI_PENDING: usize = offset_of!(Vcpu, nmi_pending);
/// `bool`: the vCPU takes itself down (see `Vcpu::going_down`).
pub const GOING_DOWN: usize = offset_of!(Vcpu, going_down);
/// `u64` and `u8`: the page-fault entry of the trap table (address, flags).
pub const PF_HANDLER: usize =
    offset_of!(Vcpu, trap_ctxt) + TRAP_page_fault as usize * size_of::<TrapInfo>() + offset_of!(TrapInfo, address);
pub const PF_FLAGS: usize =
    offset_of!(Vcpu, trap_ctxt) + TRAP_page_fault as usize * size_of::<TrapInfo>() + offset_of!(TrapInfo, flags);
/// `usize`: entries of the guest GDT.
pub const GDT_ENTRIES: usize = offset_of!(Vcpu, gdt_state.entries);
/// `u64` counters of `Vcpu::stats`.
pub const COUNT_GUEST_SYSCALL: usize = offset_of!(Vcpu, stats.exits.count) + 8 * EXIT_GUEST_SYSCALL;
pub const COUNT_IRET: usize = offset_of!(Vcpu, stats.exits.count) + 8 * hypercall_exit(__HYPERVISOR_iret);
pub const COUNT_PAGE_FAULT: usize =
    offset_of!(Vcpu, stats.exits.count) + 8 * (EXIT_EXCEPTION + TRAP_page_fault as usize);
pub const COUNT_GP_FAULT: usize = offset_of!(Vcpu, stats.exits.count) + 8 * (EXIT_EXCEPTION + TRAP_gp_fault as usize);
pub const COUNT_RDMSR: usize = offset_of!(Vcpu, stats.exits.emulated) + 8 * Emulated::Rdmsr as usize;
pub const BOUNCES: usize = offset_of!(Vcpu, stats.bounces);
/// `u64`: syscalls and irets the fast path handed to the Rust path.
pub const FAST_PATH_MISSES: usize = offset_of!(Vcpu, stats.exits.fast_path_misses);

/// Whether [`plain_hypercall`] ran the hypercall (in the second word of [`PlainExit`]).
pub const PLAIN_DONE: u64 = 0;
pub const PLAIN_NOT: u64 = 2;

/// What [`plain_hypercall`] returns: the result and whether it ran.
#[repr(C)]
pub struct PlainExit {
    pub value: i64,
    pub how: u64,
}

/// A kernel-mode hypercall from the fast path (see the module's
/// documentation): run it if it is a plain one, as
/// [`hypercall::dispatch`] would. Whether the guest may be returned to
/// straight away is the assembly's to check.
pub fn plain_hypercall<P: Platform>(c: &mut Ctx, p: &mut P, nr: u64, a: Args) -> PlainExit {
    if !hypercall::is_plain(nr) {
        return PlainExit { value: 0, how: PLAIN_NOT };
    }
    c.v.stats.exits.exit(hypercall_exit(nr));
    PlainExit { value: hypercall::plain_hot(c, p, nr, &a), how: PLAIN_DONE }
}

/// `mmu_update` of the one request `(ptr, val)` the assembly read, an
/// `MMU_NORMAL_PT_UPDATE` (`ptr & 3` 0), with no count asked for and
/// `DOMID_SELF`: what [`hypercall::mmu::mmu_update`] does with it.
pub fn mmu_update_one<P: Platform>(c: &mut Ctx, p: &mut P, ptr: u64, val: u64) -> i64 {
    debug_assert_eq!(ptr & 3, MMU_NORMAL_PT_UPDATE);
    c.v.stats.exits.exit(hypercall_exit(__HYPERVISOR_mmu_update));
    hypercall::mmu::pt_update_inline(c, p, ptr, val, false, false)
}

/// `u8` fields of the `vcpu_info`.
pub const VI_UPCALL_PENDING: usize = offset_of!(VcpuInfo, evtchn_upcall_pending);
pub const VI_UPCALL_MASK: usize = offset_of!(VcpuInfo, evtchn_upcall_mask);
/// `u64`: the `vcpu_info`'s CR2.
pub const VI_CR2: usize = offset_of!(VcpuInfo, arch.cr2);

/// The bounce frame of a guest syscall, in words.
pub const SYSCALL_FRAME_WORDS: usize = 7;
/// The bounce frame of a page fault (with its error code), in words.
pub const PF_FRAME_WORDS: usize = 8;
/// `rflags` bits cleared on entry to an exception handler (`Ctx::bounce`).
pub const EXCEPTION_CLEAR_FLAGS: u64 = X86_EFLAGS_TF | X86_EFLAGS_NT | X86_EFLAGS_RF | X86_EFLAGS_VM | X86_EFLAGS_AC;
/// `rflags` bits cleared on entry to the guest kernel (`Ctx::bounce`, and DF for a syscall).
pub const BOUNCE_CLEAR_FLAGS: u64 =
    X86_EFLAGS_TF | X86_EFLAGS_NT | X86_EFLAGS_RF | X86_EFLAGS_VM | X86_EFLAGS_AC | X86_EFLAGS_DF | X86_EFLAGS_IOPL;

/// Offsets in the `IretContext` the iret frame is.
pub const IRET_RAX: usize = offset_of!(IretContext, rax);
pub const IRET_R11: usize = offset_of!(IretContext, r11);
pub const IRET_RCX: usize = offset_of!(IretContext, rcx);
pub const IRET_FLAGS: usize = offset_of!(IretContext, flags);
pub const IRET_RIP: usize = offset_of!(IretContext, rip);
pub const IRET_CS: usize = offset_of!(IretContext, cs);
pub const IRET_RFLAGS: usize = offset_of!(IretContext, rflags);
pub const IRET_RSP: usize = offset_of!(IretContext, rsp);
pub const IRET_SS: usize = offset_of!(IretContext, ss);
pub const IRET_FRAME_BYTES: usize = core::mem::size_of::<IretContext>();

/// A GDT descriptor `(desc >> CODE_DESC_SHIFT) & CODE_DESC_MASK == CODE_DESC_MASK`
/// is a present DPL-3 code segment (bits 43-47).
pub const CODE_DESC_SHIFT: u32 = 43;
pub const CODE_DESC_MASK: u64 = 0x1f;
/// `(desc >> DATA_DESC_SHIFT) & DATA_DESC_MASK == DATA_DESC_WANT`: a present
/// DPL-3 writable data segment (bits 41 and 44-47 set, 43 clear).
pub const DATA_DESC_SHIFT: u32 = 41;
pub const DATA_DESC_MASK: u64 = 0x7d;
pub const DATA_DESC_WANT: u64 = 0x79;

// The assembly reads these fields with the widths documented above.
const _: fn(&Vcpu) = |v| {
    let _: (&bool, &u64, &u64, &u64) = (&v.kernel_mode, &v.guest_table, &v.guest_table_user, &v.kernel_sp);
    let _: (&u64, &bool, &u64, &u32, &bool) =
        (&v.syscall.address, &v.syscall.mask_events, &v.vcpu_info_maddr, &v.iopl, &v.upcall_held);
    let _: (&bool, &bool, &bool) = (&v.nmi_masked, &v.nmi_pending, &v.going_down);
    let _: (&u64, &u8) = (&v.trap_ctxt[TRAP_page_fault as usize].address, &v.trap_ctxt[TRAP_page_fault as usize].flags);
    let _: (&usize, &u64, &u64) = (&v.gdt_state.entries, &v.stats.bounces, &v.stats.exits.fast_path_misses);
    let _: &[u64; crate::stats::NR_EXITS] = &v.stats.exits.count;
};
const _: () = {
    assert!(IRET_FRAME_BYTES == 72 && IRET_RAX == 0 && IRET_SS == 64);
    assert!(VI_UPCALL_PENDING == 0 && VI_UPCALL_MASK == 1);
    assert!(HYPERVISOR_VIRT_END > HYPERVISOR_VIRT_START);
};

/// The checks the fast path makes of a descriptor, as `callbacks::selector_ok`
/// makes them (kept here so a host test can hold the two together).
pub const fn descriptor_ok(desc: u64, code: bool) -> bool {
    if code {
        (desc >> CODE_DESC_SHIFT) & CODE_DESC_MASK == CODE_DESC_MASK
    } else {
        (desc >> DATA_DESC_SHIFT) & DATA_DESC_MASK == DATA_DESC_WANT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Domain;

    /// Where the fast path puts a guest syscall's bounce frame, if it may.
    /// (As the assembly decides it.)
    fn syscall_frame_base(kernel_sp: u64) -> Option<u64> {
        let len = SYSCALL_FRAME_WORDS as u64 * 8;
        let base = (kernel_sp & !0xf).wrapping_sub(len);
        (base >= HYPERVISOR_VIRT_END && base < len.wrapping_neg()).then_some(base)
    }

    #[test]
    fn descriptor_checks_match_selector_ok() {
        // Every combination of the bits that matter (41-47).
        for bits in 0..128u64 {
            let desc = bits << 41;
            let present = desc & (1 << 47) != 0;
            let dpl3 = (desc >> 45) & 3 == 3;
            let s = desc & (1 << 44) != 0;
            let is_code = desc & (1 << 43) != 0;
            let writable = desc & (1 << 41) != 0;
            assert_eq!(descriptor_ok(desc, true), present && dpl3 && s && is_code, "{desc:#x}");
            assert_eq!(descriptor_ok(desc, false), present && dpl3 && s && !is_code && writable, "{desc:#x}");
        }
    }

    #[test]
    fn syscall_frames_only_in_the_kernel_half() {
        assert_eq!(syscall_frame_base(0xffff_8880_0010_0008), Some(0xffff_8880_0010_0000 - 56));
        assert_eq!(syscall_frame_base(HYPERVISOR_VIRT_END + 0x40), Some(HYPERVISOR_VIRT_END + 8));
        assert_eq!(syscall_frame_base(HYPERVISOR_VIRT_END + 0x3f), None);
        assert_eq!(syscall_frame_base(0x7fff_0000_1000), None);
        assert_eq!(syscall_frame_base(40), None);
        assert_eq!(syscall_frame_base(0), None);
        // Wherever it accepts, the Rust path's check accepts too.
        for sp in [HYPERVISOR_VIRT_END + 56, 0xffff_ffff_ffff_fff0, 0xffff_ffff_ffff_ffc0, 0xffff_c900_0000_4000] {
            if let Some(b) = syscall_frame_base(sp) {
                assert!(Domain::guest_va_ok(b, 56), "{sp:#x}");
            }
        }
    }
}
