//! The guest's vCPUs on the platform's CPUs, as Xen's pv-shim runs them:
//! vCPU n on CPU n, no scheduler. Here: the APs' wait for their vCPU, a vCPU
//! coming up from the context `VCPUOP_initialise` left and going down and up
//! again, and the cross-CPU requests the core makes through the platform
//! (kicks, TLB shootdowns, stopping the machine), carried by `IPI_VECTOR`
//! and each CPU's `CpuInfo`.
//!
//! A TLB shootdown: the asking CPU records its request in each target's
//! `flush_va` (one page, or everything when requests differ) and sets its own
//! bit in the target's `flush_from`, sends the IPI, flushes its own TLB if
//! asked to, and waits until every target has counted its request done in
//! the asker's `flush_acks`. Waiting, it answers requests made to it (as a
//! CPU spinning for a lock does, `shim_core::sync`), so two CPUs flushing
//! each other, or a lock holder flushing a CPU that waits for the lock,
//! cannot deadlock.

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use alloc::boxed::Box;
use shim_core::abi::{MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE};
use shim_core::domain::{Ctx, Domain, Vcpu, VCPU_DOWN};
use shim_core::hypercall::{descriptors, sched, vcpu};
use shim_core::platform::Platform;
use shim_core::sync::Lock;

use crate::arch::percpu::{self, CpuInfo};
use crate::arch::smp::{self, IPI_VECTOR};
use crate::arch::syscall_entry;
use crate::arch::trap_entry;
use crate::hw::Hw;

/// Mailbox bit: stop this CPU (the machine is ending).
pub const MAILBOX_STOP: u32 = 1 << 0;

/// Mailbox bit: make the hypercall in this CPU's call slot (`xen_call_on`).
pub const MAILBOX_XEN_CALL: u32 = 1 << 1;

/// CPUs that stopped on request.
static STOPPED: AtomicU32 = AtomicU32::new(0);

/// A hypercall one CPU asks another to make, and its result.
struct CallSlot {
    nr: AtomicU64,
    args: [AtomicU64; 5],
    rc: AtomicI64,
    done: AtomicBool,
}

static CALLS: [CallSlot; percpu::MAX_CPUS] = [const {
    CallSlot {
        nr: AtomicU64::new(0),
        args: [const { AtomicU64::new(0) }; 5],
        rc: AtomicI64::new(0),
        done: AtomicBool::new(false),
    }
}; percpu::MAX_CPUS];
/// One cross-CPU hypercall at a time (they are rare: vCPU setup).
static CALL_LOCK: Lock<()> = Lock::new(());

/// Make hypercall `nr` to the Xen underneath on the CPU of vCPU `vcpu` and
/// wait for its result (pointers in `args` are to Cocoon's memory, mapped on
/// every CPU). `None` without a Xen or without that CPU; an error if that
/// CPU does not answer within a second.
pub fn xen_call_on(vcpu: u32, nr: u64, args: [u64; 5]) -> Option<i64> {
    let me = percpu::this();
    if vcpu == me.cpu {
        return hvm_glue::xen_hvm::hypercall5(nr, args);
    }
    let target = percpu::cpu(vcpu as usize)?;
    let _one_at_a_time = CALL_LOCK.lock();
    let slot = &CALLS[vcpu as usize];
    slot.nr.store(nr, Ordering::Relaxed);
    for (a, &v) in slot.args.iter().zip(&args) {
        a.store(v, Ordering::Relaxed);
    }
    slot.done.store(false, Ordering::Release);
    target.mailbox.fetch_or(MAILBOX_XEN_CALL, Ordering::AcqRel);
    smp::send_ipi(vcpu as usize, IPI_VECTOR);
    let t0 = crate::arch::timer::now_ns();
    while !slot.done.load(Ordering::Acquire) {
        if crate::arch::timer::now_ns() - t0 > 1_000_000_000 {
            log::error!("xen: CPU {vcpu} did not make hypercall {nr} for CPU {} within 1 s", me.cpu);
            return Some(-shim_core::abi::XEN_ETIMEDOUT);
        }
        service(me);
        core::hint::spin_loop();
    }
    Some(slot.rc.load(Ordering::Acquire))
}

/// `flush_va`: nothing asked, or everything; otherwise a page address | 1.
const FLUSH_NOTHING: u64 = 0;
const FLUSH_ALL: u64 = u64::MAX;

fn flush_code(va: Option<u64>) -> u64 {
    match va {
        Some(va) => (va & !0xfff) | 1,
        None => FLUSH_ALL,
    }
}

fn flush_local(code: u64) {
    let mut hw = Hw;
    if code == FLUSH_ALL || code == FLUSH_NOTHING {
        hw.flush_tlb();
    } else {
        hw.invlpg(code & !1);
    }
}

/// Do what other CPUs asked of this one. Runs with interrupts off: from the
/// IPI handler, and from every wait (`shim_core::sync::relax`).
pub fn service(me: &CpuInfo) {
    let from = me.flush_from.swap(0, Ordering::SeqCst);
    if from != 0 {
        let code = me.flush_va.swap(FLUSH_NOTHING, Ordering::SeqCst);
        flush_local(code);
        for cpu in (0..64).filter(|b| from & (1 << b) != 0) {
            if let Some(asker) = percpu::cpu(cpu) {
                asker.flush_acks.fetch_add(1, Ordering::Release);
            }
        }
    }
    let m = smp::answer_ping(me.mailbox.swap(0, Ordering::AcqRel));
    if m & MAILBOX_XEN_CALL != 0 {
        let slot = &CALLS[me.cpu as usize];
        let args = core::array::from_fn(|i| slot.args[i].load(Ordering::Relaxed));
        let rc = hvm_glue::xen_hvm::hypercall5(slot.nr.load(Ordering::Relaxed), args);
        slot.rc.store(rc.unwrap_or(-shim_core::abi::XEN_ENOSYS), Ordering::Relaxed);
        slot.done.store(true, Ordering::Release);
    }
    if m & MAILBOX_STOP != 0 {
        STOPPED.fetch_add(1, Ordering::AcqRel);
        crate::arch::halt_forever();
    }
}

/// The `shim_core::sync` hook: one round of a wait, answering requests.
fn relax() {
    service(percpu::this());
    core::hint::spin_loop();
}

/// Flush the TLBs of the CPUs running the vCPUs in `mask` (see the module
/// documentation); returns when all are done.
pub fn flush_tlb_mask(mask: u64, va: Option<u64>) {
    let me = percpu::this();
    let code = flush_code(va);
    if mask & !(1 << me.cpu) == 0 {
        // Only this CPU (one vCPU, or a local flush): nobody to ask or wait for.
        if mask != 0 {
            flush_local(code);
        }
        return;
    }
    let acks0 = me.flush_acks.load(Ordering::Acquire);
    let mut sent = 0u32;
    for cpu in (0..percpu::nr_online()).filter(|&c| c != me.cpu as usize && mask & (1 << c) != 0) {
        let Some(t) = percpu::cpu(cpu) else { continue };
        let _ = t.flush_va.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
            Some(if old == FLUSH_NOTHING || old == code { code } else { FLUSH_ALL })
        });
        t.flush_from.fetch_or(1 << me.cpu, Ordering::SeqCst);
        smp::send_ipi(cpu, IPI_VECTOR);
        sent += 1;
    }
    if mask & (1 << me.cpu) != 0 {
        flush_local(code);
    }
    while me.flush_acks.load(Ordering::Acquire).wrapping_sub(acks0) < sent {
        service(me);
        core::hint::spin_loop();
    }
}

/// Interrupt the CPU of `vcpu` so that it looks at its events and state.
pub fn kick(vcpu: u32) {
    let me = percpu::this().cpu;
    if vcpu != me && (vcpu as usize) < percpu::nr_online() {
        smp::send_ipi(vcpu as usize, IPI_VECTOR);
    }
}

/// An NMI for `vcpu` (`VCPUOP_send_nmi`): latched on its CPU as a real one
/// that came while Cocoon ran, taken at that vCPU's next exit; a kick makes
/// that soon. Also for the calling vCPU (taken on the hypercall's way out).
pub fn send_nmi(vcpu: u32) {
    if let Some(cpu) = percpu::cpu(vcpu as usize) {
        cpu.nmi_latched.store(true, Ordering::Release);
        kick(vcpu);
    }
}

/// Stop every other CPU (the machine is ending), waiting a little for them,
/// then report their vCPUs' exit statistics (the caller reports its own).
pub fn stop_others() {
    let n = percpu::nr_online();
    if n <= 1 {
        return;
    }
    let me = crate::arch::apic::id();
    for cpu in (0..n).filter_map(percpu::cpu).filter(|c| c.apic_id != me) {
        cpu.mailbox.fetch_or(MAILBOX_STOP, Ordering::AcqRel);
    }
    smp::send_ipi_all_but_self(IPI_VECTOR);
    let t0 = crate::arch::timer::now_ns();
    while (STOPPED.load(Ordering::Acquire) as usize) < n - 1 && crate::arch::timer::now_ns() - t0 < 100_000_000 {
        core::hint::spin_loop();
    }
    if (STOPPED.load(Ordering::Acquire) as usize) < n - 1 {
        return; // a CPU still runs: its vCPU's counters are not for reading
    }
    for cpu in (0..n).filter_map(percpu::cpu).filter(|c| c.apic_id != me) {
        let v = cpu.vcpu.load(Ordering::Acquire) as *const Vcpu;
        if !v.is_null() {
            // SAFETY: the CPU owning this vCPU has halted for good (counted in
            // STOPPED); nothing else writes it.
            let v = unsafe { &*v };
            shim_core::stats::log_report(v.id, &v.stats.exits);
        }
    }
}

/// Start using the cross-CPU hooks: call on a ring-0 stack, once the domain exists.
pub fn enable_relax() {
    shim_core::sync::set_relax(relax);
}

/// This CPU's vCPU, if it runs one.
pub fn this_vcpu() -> Option<&'static mut Vcpu> {
    let p = percpu::this().vcpu.load(Ordering::Acquire) as *mut Vcpu;
    // SAFETY: set once by `install` to a leaked Vcpu that only this CPU uses,
    // and only with interrupts off (one trap at a time): no other reference lives.
    (!p.is_null()).then(|| unsafe { &mut *p })
}

/// Whether vCPUs get the SYSCALL fast path (`arch::syscall_entry`): not with
/// `cocoon.fastpath=off`, nor with `cocoon.stats` (it times exits in Rust).
static FAST_PATH: AtomicBool = AtomicBool::new(true);

pub fn set_fast_path(on: bool) {
    FAST_PATH.store(on, Ordering::Relaxed);
}

/// Make `v` the vCPU of CPU `cpu` (for good). Runs on that CPU.
pub fn install(cpu: &CpuInfo, d: &'static Domain, v: Vcpu) -> &'static mut Vcpu {
    let v = Box::leak(Box::new(v));
    cpu.vcpu.store(v as *mut Vcpu as *mut (), Ordering::Release);
    if FAST_PATH.load(Ordering::Relaxed) {
        syscall_entry::attach(cpu.cpu as usize, v as *mut Vcpu, v.gdt.as_ptr(), d);
    }
    v
}

/// An AP's life: wait (halted, answering requests) until its vCPU is up,
/// then run it. Replaces the bring-up park once Cocoon runs SMP guests.
pub extern "C" fn ap_loop(cpu: u32) -> ! {
    let me = percpu::this();
    loop {
        // SAFETY: sti;hlt is atomic with respect to interrupts (an IPI sent since
        // the last look ends the hlt); the IPI handler only services the mailbox.
        unsafe { core::arch::asm!("sti", "hlt", "cli") };
        service(me);
        let Some(d) = crate::run::domain() else { continue };
        if d.vcpus.get(cpu as usize).is_some_and(|v| v.is_up()) {
            run_vcpu(me, d)
        }
    }
}

/// Start this CPU's vCPU from its `VCPUOP_initialise` context.
fn run_vcpu(me: &'static CpuInfo, d: &'static Domain) -> ! {
    let n = me.cpu;
    // SAFETY: once per CPU: this CPU's vCPU takes its guest GDT entries.
    let gdt = unsafe { percpu::guest_gdt(n as usize) };
    let Some(st) = vcpu::start_context(&d.vcpus[n as usize], n, gdt) else {
        log::error!("vCPU {n} was brought up with no context");
        d.vcpus[n as usize].state.store(VCPU_DOWN, Ordering::Release);
        crate::arch::halt_forever()
    };
    let v = install(me, d, st.vcpu);
    let mut hw = Hw;
    let c = &mut Ctx { v, d };
    if st.gdt.1 != 0 && descriptors::install_gdt(c, &mut hw, st.gdt.0, st.gdt.1) != 0 {
        c.crash(&mut hw, &st.regs, "VCPUOP_initialise: the GDT frames do not validate");
    }
    // Null data selectors first (loading one may clear a base), then the bases:
    // in guest kernel mode the active GS base is the kernel's.
    // SAFETY: null selectors are valid in 64-bit mode; Cocoon uses no segment base.
    unsafe {
        core::arch::asm!("mov ds, {0:e}", "mov es, {0:e}", "mov fs, {0:e}", "mov gs, {0:e}", in(reg) 0u32);
    }
    hw.wrmsr(MSR_FS_BASE, st.bases[0]);
    hw.wrmsr(MSR_GS_BASE, st.bases[1]);
    hw.wrmsr(MSR_SHADOW_GS_BASE, st.bases[2]);
    hw.load_cr3(c.v.guest_table);
    c.update_time(&mut hw);
    vcpu::update_runstate(c, &mut hw);
    sched::program_timer(c, &mut hw);
    log::info!("vCPU {n} up on CPU {n} (APIC id {}) at {:#x}", me.apic_id, st.regs.rip);
    // SAFETY: a complete ring-3 frame built below this CPU's guest-frame slot
    // (the AP's stack starts under it); the vCPU's L4 is loaded.
    unsafe { trap_entry::cocoon_enter_guest(&st.regs, me.ring0_top) }
}

/// The vCPU went down (`VCPUOP_down`, on itself or from another vCPU): it
/// stays here, halted, until `VCPUOP_up`, then goes on where it was.
pub fn park_down(c: &mut Ctx, hw: &mut Hw) {
    c.v.going_down = false;
    let me = &c.d.vcpus[c.v.id as usize];
    me.state.store(VCPU_DOWN, Ordering::Release);
    // No timers while down: nothing for other vCPUs to watch (`sched::tick`).
    me.ticked_ns.store(0, Ordering::Relaxed);
    hw.set_timer(None);
    log::debug!("vCPU {} down", c.v.id);
    while !me.is_up() {
        hw.wait_for_interrupt();
        // Another vCPU may make Xen calls on this one's behalf meanwhile
        // (VCPUOP_register_vcpu_info, which Xen takes only from the vCPU itself).
        service(percpu::this());
    }
    log::debug!("vCPU {} up again", c.v.id);
    // Its vcpu_info may have moved while it was down (a resumed domain's guest
    // registers it again between VCPUOP_down and VCPUOP_up).
    c.v.vcpu_info_maddr = me.vcpu_info_maddr.load(Ordering::Acquire);
    c.v.vcpu_info_registered = me.vcpu_info_registered.load(Ordering::Acquire);
    c.update_time(hw);
    sched::program_timer(c, hw);
}
