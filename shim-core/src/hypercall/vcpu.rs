//! `vcpu_op`: bringing vCPUs up and down, their vcpu_info, runstate areas
//! and timers (`common/vcpu.c`, `arch/x86/domain.c`). vCPU n runs on CPU n;
//! a vCPU that is not up is changed only through its `VcpuShared`.

use core::sync::atomic::Ordering;

use alloc::boxed::Box;

use super::unknown_op;
use crate::abi::*;
use crate::domain::{
    pvclock_now, time_area, write_pvclock, Callback, Ctx, Domain, Vcpu, VcpuShared, VCPU_DOWN, VCPU_UNINITIALISED,
    VCPU_UP,
};
use crate::mm::frames::PageType;
use crate::platform::{Fault, Platform};
use crate::regs::{GuestRegs, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_MBS};

/// `struct vcpu_runstate_info`: state, state_entry_time, time[4].
#[repr(C)]
#[derive(Clone, Copy)]
struct RunstateInfo {
    state: i32,
    _pad: u32,
    state_entry_time: u64,
    time: [u64; 4],
}
const _: () = assert!(core::mem::size_of::<RunstateInfo>() == 48);

/// `RUNSTATE_running` and `RUNSTATE_offline` (vcpu.h).
const RUNSTATE_running: i32 = 0;
const RUNSTATE_offline: i32 = 3;

fn runstate<P: Platform>(p: &P, up: bool) -> RunstateInfo {
    let now = p.now_ns();
    let (state, time) = if up { (RUNSTATE_running, [now, 0, 0, 0]) } else { (RUNSTATE_offline, [0, 0, 0, now]) };
    RunstateInfo { state, _pad: 0, state_entry_time: now, time }
}

/// Write the runstate area: running, all time spent running.
pub fn update_runstate<P: Platform>(c: &mut Ctx, p: &mut P) {
    if let Some(va) = c.v.runstate_va {
        let r = runstate(p, true);
        let _ = Domain::write_guest(p, va, &r);
    }
}

pub fn vcpu_op<P: Platform>(c: &mut Ctx, p: &mut P, cmd: u64, vcpu: u64, arg: u64) -> i64 {
    let Some(target) = c.d.vcpus.get(vcpu as usize) else {
        return -XEN_ENOENT;
    };
    let own = vcpu == c.v.id as u64;
    match cmd {
        VCPUOP_is_up => target.is_up() as i64,
        VCPUOP_initialise => initialise(c, p, vcpu as u32, arg),
        VCPUOP_up => match target.state.load(Ordering::Acquire) {
            VCPU_UNINITIALISED => -XEN_EINVAL,
            VCPU_UP => 0,
            _ => {
                target.state.store(VCPU_UP, Ordering::Release);
                p.start_vcpu(vcpu as u32);
                0
            }
        },
        VCPUOP_down => {
            if target.state.load(Ordering::Acquire) == VCPU_UP {
                if own {
                    // The platform parks this vCPU once the hypercall returns.
                    c.v.going_down = true;
                } else {
                    target.state.store(VCPU_DOWN, Ordering::Release);
                    p.kick(vcpu as u32);
                }
            }
            0
        }
        VCPUOP_register_runstate_memory_area => {
            let Ok(va) = Domain::read_guest::<P, u64>(p, arg) else {
                return -XEN_EFAULT;
            };
            target.runstate_va.store(va, Ordering::Release);
            if own {
                c.v.runstate_va = (va != 0).then_some(va);
                update_runstate(c, p);
            } else if va != 0 {
                // Written now through the current tables (a kernel address is
                // the same in every address space of the guest).
                let _ = Domain::write_guest(p, va, &runstate(p, target.is_up()));
            }
            0
        }
        VCPUOP_get_runstate_info => {
            let r = runstate(p, target.is_up());
            match Domain::write_guest(p, arg, &r) {
                Ok(()) => 0,
                Err(Fault) => -XEN_EFAULT,
            }
        }
        VCPUOP_register_vcpu_info => register_vcpu_info(c, p, vcpu as u32, arg),
        // Xen: no argument; the NMI waits for a vCPU that is down. (Linux
        // calls it from its PV APIC driver's NMI IPI; a domU whose CPUID has
        // no APIC, as here, sends none: its sysrq-l and RCU stall reports
        // print only the calling CPU's stack.)
        VCPUOP_send_nmi if arg != 0 => -XEN_EINVAL,
        VCPUOP_send_nmi => {
            p.send_nmi(vcpu as u32);
            0
        }
        VCPUOP_register_vcpu_time_memory_area => register_time_area(c, p, vcpu as u32, arg),
        // Timers are the calling vCPU's own (Xen: -EINVAL for another's single-shot).
        VCPUOP_set_periodic_timer
        | VCPUOP_stop_periodic_timer
        | VCPUOP_set_singleshot_timer
        | VCPUOP_stop_singleshot_timer
            if !own =>
        {
            -XEN_EINVAL
        }
        VCPUOP_set_periodic_timer => {
            let Ok(period) = Domain::read_guest::<P, u64>(p, arg) else {
                return -XEN_EFAULT;
            };
            if period < 1_000_000 {
                return -XEN_EINVAL;
            }
            c.v.periodic_ns = period;
            c.v.periodic_next = p.now_ns() + period;
            super::sched::program_timer(c, p);
            0
        }
        VCPUOP_stop_periodic_timer => {
            c.v.periodic_ns = 0;
            super::sched::program_timer(c, p);
            0
        }
        VCPUOP_set_singleshot_timer => {
            let Ok(t) = Domain::read_guest::<P, [u64; 2]>(p, arg) else {
                return -XEN_EFAULT;
            };
            // A deadline in the past fires at once (VCPU_SSHOTTMR_future is ignored, as Xen does).
            c.v.singleshot = Some(t[0]);
            super::sched::program_timer(c, p);
            0
        }
        VCPUOP_stop_singleshot_timer => {
            c.v.singleshot = None;
            super::sched::program_timer(c, p);
            0
        }
        other => unknown_op("vcpu_op", other),
    }
}

/// `VCPUOP_register_vcpu_info`, for the calling vCPU or one that is not up.
fn register_vcpu_info<P: Platform>(c: &mut Ctx, p: &mut P, vcpu: u32, arg: u64) -> i64 {
    let Ok(r) = Domain::read_guest::<P, [u64; 2]>(p, arg) else {
        return -XEN_EFAULT;
    };
    let (mfn, offset) = (r[0], r[1] as u32 as u64);
    let own = vcpu == c.v.id;
    let target = &c.d.vcpus[vcpu as usize];
    if target.vcpu_info_registered.load(Ordering::Acquire) || (!own && target.is_up()) {
        return -XEN_EINVAL;
    }
    // Held writable for good (a vcpu_info cannot be registered twice), as
    // Xen maps it: Cocoon writes it, so the frame must never leave the guest
    // nor become a page table or descriptor page.
    if offset % 8 != 0 || offset + 64 > PAGE_SIZE || c.d.lock().frames.get_writable(mfn).is_err() {
        return -XEN_EINVAL;
    }
    let old_ma = target.vcpu_info_maddr.load(Ordering::Acquire);
    let old = if old_ma == 0 {
        VcpuInfo { evtchn_upcall_mask: 1, ..Default::default() }
    } else {
        let f = p.frame(old_ma >> PAGE_SHIFT);
        let o = (old_ma & (PAGE_SIZE - 1)) as usize;
        // SAFETY: a 64-byte, 8-aligned vcpu_info inside the frame (checked when set).
        unsafe { core::ptr::read_unaligned(f.as_ptr().add(o) as *const VcpuInfo) }
    };
    let new_ma = (mfn << PAGE_SHIFT) | offset;
    {
        let f = p.frame_mut(mfn);
        let mut v = old;
        // Xen sets every selector bit so the guest rescans all ports.
        v.evtchn_pending_sel = !0;
        v.evtchn_upcall_pending = 1;
        // SAFETY: as above, for the new location.
        unsafe { core::ptr::write_unaligned(f.as_mut_ptr().add(offset as usize) as *mut VcpuInfo, v) };
    }
    target.vcpu_info_maddr.store(new_ma, Ordering::Release);
    target.vcpu_info_registered.store(true, Ordering::Release);
    if own {
        c.v.vcpu_info_maddr = new_ma;
        c.v.vcpu_info_registered = true;
        c.update_time(p);
    }
    0
}

/// `VCPUOP_register_vcpu_time_memory_area`: a second copy of the vCPU's
/// `vcpu_time_info` at a guest virtual address (Linux points its vDSO's
/// pvclock page there; 0 unregisters), written with every pvclock update
/// exactly as the primary copy (`Ctx::update_time`).
///
/// Xen keeps the virtual address and writes through the guest's kernel page
/// tables each time (`update_secondary_system_time`). Cocoon translates it
/// once, here, through the calling vCPU's kernel tables (a kernel address is
/// the same in every address space of the guest) and then writes the machine
/// frame through its direct map, as for vcpu_info, so the timer path walks
/// no tables (KVM's Xen emulation does the same). The frame must be guest
/// RAM mapped writable, and is held (`FrameTable::get_writable`) until the
/// area is replaced or unregistered, so it cannot become a page table or
/// descriptor page meanwhile. Differences from Xen: if the guest later
/// unmaps or remaps that address, Cocoon goes on writing the frame it
/// translated to (Xen would write the new frame, or nothing); an address
/// that is not mapped, mapped read-only or not guest RAM is refused at once
/// (-EFAULT; Xen accepts it and its writes fail), as is an area that is not
/// 8-aligned or crosses a page (-EINVAL; Xen copies byte-wise); and another
/// vCPU's area can only be set before that vCPU first runs (-EINVAL after:
/// its state is its CPU's own), where Xen allows it at any time.
fn register_time_area<P: Platform>(c: &mut Ctx, p: &mut P, vcpu: u32, arg: u64) -> i64 {
    let Ok(area) = Domain::read_guest::<P, VcpuRegisterTimeMemoryArea>(p, arg) else {
        return -XEN_EFAULT;
    };
    let va = area.addr;
    let size = core::mem::size_of::<VcpuTimeInfo>() as u64;
    let new_ma = if va == 0 {
        None
    } else {
        if !Domain::guest_va_ok(va, size) {
            return -XEN_EFAULT;
        }
        if !va.is_multiple_of(8) || (va & (PAGE_SIZE - 1)) + size > PAGE_SIZE {
            return -XEN_EINVAL;
        }
        match crate::mm::walk::translate(p, c.v.guest_table, va) {
            Ok(t) if t.writable => Some((t.mfn << PAGE_SHIFT) | (va & (PAGE_SIZE - 1))),
            _ => return -XEN_EFAULT,
        }
    };
    let own = vcpu == c.v.id;
    let target = &c.d.vcpus[vcpu as usize];
    let mut l = c.d.lock();
    if let Some(ma) = new_ma {
        if l.frames.get_writable(ma >> PAGE_SHIFT).is_err() {
            return -XEN_EFAULT;
        }
    }
    let encoded = new_ma.map_or(0, |ma| ma | 1);
    let old = if own {
        target.time_area.store(encoded, Ordering::Release);
        core::mem::replace(&mut c.v.time_area, new_ma)
    } else {
        // Only before the target first runs: `start_context` reads the area
        // under the same lock.
        let boot = target.boot.lock();
        if boot.is_none() && target.state.load(Ordering::Acquire) != VCPU_UNINITIALISED {
            drop(boot);
            if let Some(ma) = new_ma {
                l.frames.put_writable(ma >> PAGE_SHIFT);
            }
            return -XEN_EINVAL;
        }
        let old = target.time_area.swap(encoded, Ordering::AcqRel);
        (old != 0).then_some(old & !1)
    };
    if let Some(ma) = old {
        l.frames.put_writable(ma >> PAGE_SHIFT);
    }
    drop(l);
    // Written at once, as Xen's `force_update_vcpu_system_time` does (Linux
    // checks the copy's TSC_STABLE flag right after registering).
    if own {
        c.update_time(p);
    } else if let Some(ma) = new_ma {
        let u = pvclock_now(p);
        let t = time_area(p, ma);
        let begin = t.version.wrapping_add(1) | 1;
        write_pvclock(t, &u, begin);
    }
    0
}

/// `VCPUOP_initialise`: keep the context for when the vCPU comes up. The
/// base table takes its type reference now, as in Xen's `arch_set_info_guest`.
fn initialise<P: Platform>(c: &mut Ctx, p: &mut P, vcpu: u32, arg: u64) -> i64 {
    let target = &c.d.vcpus[vcpu as usize];
    if target.state.load(Ordering::Acquire) != VCPU_UNINITIALISED {
        return -XEN_EEXIST;
    }
    let size = core::mem::size_of::<VcpuGuestContext>();
    if !Domain::guest_va_ok(arg, size as u64) {
        return -XEN_EFAULT;
    }
    // SAFETY: VcpuGuestContext is plain integers: all-zero is a valid value.
    let mut ctx: Box<VcpuGuestContext> = unsafe { Box::new_zeroed().assume_init() };
    {
        // SAFETY: viewing the context as its bytes to fill it.
        let bytes = unsafe { core::slice::from_raw_parts_mut(&mut *ctx as *mut VcpuGuestContext as *mut u8, size) };
        if p.copy_from_guest(arg, bytes).is_err() {
            return -XEN_EFAULT;
        }
    }
    let ok_va = |va: u64| va == 0 || Domain::guest_va_ok(va, 1);
    if ctx.gdt_ents > FIRST_RESERVED_GDT_ENTRY as u64
        || ctx.ldt_ents != 0
        || ![
            ctx.user_regs.rip,
            ctx.kernel_sp,
            ctx.event_callback_eip,
            ctx.failsafe_callback_eip,
            ctx.syscall_callback_eip,
        ]
        .into_iter()
        .all(ok_va)
    {
        return -XEN_EINVAL;
    }
    let cr3 = ctx.ctrlreg[3] >> PAGE_SHIFT;
    let user = ctx.ctrlreg[1] >> PAGE_SHIFT;
    {
        let mut l = c.d.lock();
        if l.frames.may_promote(cr3) || (user != 0 && l.frames.may_promote(user)) {
            super::mmu::flush_before_promotion(c, p);
        }
        if let Err(e) = l.frames.get_type(p, cr3, PageType::L4) {
            log::debug!("VCPUOP_initialise: base table {cr3:#x} refused: {e:?}");
            return -XEN_EINVAL;
        }
        if user != 0 && l.frames.get_type(p, user, PageType::L4).is_err() {
            l.frames.put_type(p, cr3);
            return -XEN_EINVAL;
        }
    }
    let mut b = target.boot.lock();
    *b = Some(ctx);
    target.state.store(VCPU_DOWN, Ordering::Release);
    0
}

/// What a vCPU starts with on its CPU: its state, its registers, and its
/// segment bases (FS, kernel GS, user GS) for the platform to load.
pub struct VcpuStart {
    pub vcpu: Vcpu,
    pub regs: GuestRegs,
    pub bases: [u64; 3],
    /// GDT frames and entry count to install (`descriptors::install_gdt`).
    pub gdt: ([u64; FIRST_RESERVED_GDT_PAGE], u64),
}

/// Build vCPU `id` from the context `VCPUOP_initialise` left (None: it has
/// none). `gdt` is the guest part of the GDT of the CPU it will run on.
pub fn start_context(shared: &VcpuShared, id: u32, gdt: &'static mut [u64]) -> Option<VcpuStart> {
    let (ctx, time_area) = {
        let mut boot = shared.boot.lock();
        // Under the lock `register_time_area` changes it under.
        (boot.take()?, shared.time_area.load(Ordering::Acquire))
    };
    let mut v = Vcpu::new(id, shared.vcpu_info_maddr.load(Ordering::Acquire), gdt);
    v.vcpu_info_registered = shared.vcpu_info_registered.load(Ordering::Acquire);
    let rs = shared.runstate_va.load(Ordering::Acquire);
    v.runstate_va = (rs != 0).then_some(rs);
    v.time_area = (time_area != 0).then_some(time_area & !1);
    v.trap_ctxt = ctx.trap_ctxt;
    v.kernel_ss = ctx.kernel_ss;
    v.kernel_sp = ctx.kernel_sp;
    v.guest_table = ctx.ctrlreg[3] >> PAGE_SHIFT;
    v.guest_table_user = ctx.ctrlreg[1] >> PAGE_SHIFT;
    v.event = Callback { address: ctx.event_callback_eip, mask_events: true };
    v.failsafe = Callback { address: ctx.failsafe_callback_eip, mask_events: false };
    v.syscall = Callback { address: ctx.syscall_callback_eip, mask_events: false };
    // IOPL is virtual (Xen keeps it per vCPU, out of the real flags).
    v.iopl = ((ctx.user_regs.rflags & X86_EFLAGS_IOPL) >> 12) as u32;
    // A new vCPU starts with no periodic timer running until it asks (Linux
    // stops it at once anyway).
    v.periodic_ns = 0;
    let u = &ctx.user_regs;
    let regs = GuestRegs {
        rip: u.rip,
        cs: FLAT_KERNEL_CS as u64,
        rflags: (u.rflags & !X86_EFLAGS_IOPL) | X86_EFLAGS_IF | X86_EFLAGS_MBS,
        rsp: u.rsp,
        ss: FLAT_KERNEL_SS as u64,
        rax: u.rax,
        rbx: u.rbx,
        rcx: u.rcx,
        rdx: u.rdx,
        rsi: u.rsi,
        rdi: u.rdi,
        rbp: u.rbp,
        r8: u.r8,
        r9: u.r9,
        r10: u.r10,
        r11: u.r11,
        r12: u.r12,
        r13: u.r13,
        r14: u.r14,
        r15: u.r15,
        ..Default::default()
    };
    let mut frames = [0u64; FIRST_RESERVED_GDT_PAGE];
    frames.copy_from_slice(&ctx.gdt_frames[..FIRST_RESERVED_GDT_PAGE]);
    Some(VcpuStart {
        vcpu: v,
        regs,
        bases: [ctx.fs_base, ctx.gs_base_kernel, ctx.gs_base_user],
        gdt: (frames, ctx.gdt_ents),
    })
}
