//! Running the PV guest: the M2P, the domain's state, the first entry, and
//! the trap dispatcher every later entry goes through.

use alloc::alloc::{alloc_zeroed, Layout as AllocLayout};

use hvm_glue::layout::{virt_to_phys, DIRECT_MAP_L4_SLOT};
use shim_core::abi::*;
use shim_core::builder::{EntryState, Layout};
use shim_core::domain::{Ctx, Domain, DomainSetup, Forward, Vcpu, NR_GRANT_FRAMES, NR_STATUS_FRAMES};
use shim_core::fastpath::{self, PlainExit};
use shim_core::hypercall::{forward, sched};
use shim_core::mm::frames::PageType;
use shim_core::platform::{ExitReason, Platform};
use shim_core::regs::{GuestRegs, ENTRY_HYPERCALL_DONE, X86_EFLAGS_IF, X86_EFLAGS_MBS};
use shim_core::xenstore::XenStore;
use shim_core::{stats, traps};

use crate::arch::smp::IPI_VECTOR;
use crate::arch::timer::{self, SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::arch::{percpu, trap_entry};
use crate::hw::Hw;
use crate::memory::MemoryPlan;
use crate::xen::{ForwardPlan, UPCALL_VECTOR};

/// The domain, shared by every CPU once the guest runs.
static DOMAIN: spin::Once<Domain> = spin::Once::new();

/// The domain, once the guest has been built.
pub fn domain() -> Option<&'static Domain> {
    DOMAIN.get()
}

/// Page-aligned zeroed frames from Cocoon's heap, as (direct-map address, first MFN).
fn alloc_frames(n: usize) -> (u64, u64) {
    let layout = AllocLayout::from_size_align(n * 4096, 4096).expect("frame layout");
    // SAFETY: a non-zero, page-aligned layout.
    let p = unsafe { alloc_zeroed(layout) };
    if p.is_null() {
        log::error!("out of memory for {n} of Cocoon's own frames");
        crate::fault::stop(ExitReason::CocoonFault);
    }
    (p as u64, virt_to_phys(p as u64) >> 12)
}

/// Build the read-only M2P and the tables mapping it at MACH2PHYS_VIRT_START:
/// a dense table for MFNs up to `max_mfn`, plus one page each for `extras`
/// (`(mfn, pfn)` of frames far above it, a real Xen's ring pages), the rest of
/// the range unmapped (the guest reads M2P entries with a fault fixup).
/// Returns the dense table, the L4 entry for slot 256 and the entries spanned.
fn build_m2p(max_mfn: u64, extras: &[(u64, u64)]) -> (&'static mut [u64], u64, u64) {
    const FLAGS: u64 = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
    let entries = (max_mfn + 1).next_multiple_of(512) as usize;
    let pages = entries / 512;
    let (m2p_va, m2p_mfn) = alloc_frames(pages);
    let (l3_va, l3_mfn) = alloc_frames(1);
    let table = |va: u64| va as *mut u64;
    // The next-level table under entry `idx` of `parent_va`, made on first use.
    let child = |parent_va: u64, idx: usize| -> u64 {
        // SAFETY: `parent_va` is one of the page-table frames allocated here.
        unsafe {
            let e = *table(parent_va).add(idx);
            if e != 0 {
                return crate::hw::frame_va(e >> 12);
            }
            let (va, mfn) = alloc_frames(1);
            *table(parent_va).add(idx) = (mfn << 12) | FLAGS | _PAGE_RW;
            va
        }
    };
    // Map M2P page number `pi` (512 entries each) to `mfn`.
    let map_page = |pi: u64, mfn: u64| {
        let (i3, i2, i1) = ((pi >> 18) as usize, ((pi >> 9) & 511) as usize, (pi & 511) as usize);
        assert!(i3 < 512, "M2P beyond its L4 slot");
        let l1 = child(child(l3_va, i3), i2);
        // SAFETY: `l1` is a page-table frame allocated here.
        unsafe { *table(l1).add(i1) = (mfn << 12) | FLAGS };
    };
    for i in 0..pages as u64 {
        map_page(i, m2p_mfn + i);
    }
    let mut span = entries as u64;
    // One page per 512 MFNs: extras sharing a page share it.
    let mut extra_pages: alloc::vec::Vec<(u64, u64)> = alloc::vec::Vec::new();
    for &(mfn, pfn) in extras {
        let pi = mfn / 512;
        if pi < pages as u64 {
            continue; // inside the dense table: the domain fills it in
        }
        let va = match extra_pages.iter().find(|(p, _)| *p == pi) {
            Some(&(_, va)) => va,
            None => {
                let (va, page_mfn) = alloc_frames(1);
                // SAFETY: a fresh page of 512 entries.
                unsafe { core::slice::from_raw_parts_mut(va as *mut u64, 512) }.fill(INVALID_MFN);
                map_page(pi, page_mfn);
                extra_pages.push((pi, va));
                va
            }
        };
        // SAFETY: `va` is one of the extra M2P pages allocated above.
        unsafe { *(va as *mut u64).add((mfn % 512) as usize) = pfn };
        span = span.max(mfn + 1);
    }
    // SAFETY: the dense table is `entries` u64s of freshly allocated frames.
    let m2p = unsafe { core::slice::from_raw_parts_mut(m2p_va as *mut u64, entries) };
    (m2p, (l3_mfn << 12) | FLAGS | _PAGE_RW, span)
}

/// Cocoon's entries for L4 slots 256..=271 of every guest L4.
fn hypervisor_l4(m2p_l4e: u64) -> [u64; 16] {
    let cr3 = x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64();
    let boot_l4 = crate::hw::frame_va(cr3 >> 12) as *const u64;
    let mut slots = [0u64; 16];
    slots[0] = m2p_l4e;
    // SAFETY: the boot L4 is mapped through the direct map.
    slots[DIRECT_MAP_L4_SLOT - HYPERVISOR_L4_FIRST] = unsafe { *boot_l4.add(DIRECT_MAP_L4_SLOT) };
    slots
}

/// Turn the built domain into a running guest. Never returns.
pub fn start(
    plan: MemoryPlan,
    layout: &Layout,
    entry: &EntryState,
    store_port: u32,
    console_port: u32,
    fwd: Option<ForwardPlan>,
) -> ! {
    let mut hw = Hw;
    // A real Xen's ring pages sit far above RAM: they get M2P entries of their own
    // rather than a table (and a frame table) sized up to them.
    let (rings, n_rings) = fwd.map(|f| f.ring_gfns()).unwrap_or(([0; 2], 0));
    let rings = &rings[..n_rings];
    let ram = plan.physmap.mfns().iter().copied().filter(|m| !rings.contains(m));
    let max_mfn = ram.chain(plan.cocoon_frames.iter().copied()).max().unwrap_or(0);
    let extras: alloc::vec::Vec<(u64, u64)> = [layout.xenstore.pfn, layout.console.pfn]
        .iter()
        .map(|&pfn| (plan.physmap.mfn(pfn), pfn))
        .filter(|(mfn, _)| rings.contains(mfn))
        .collect();
    let (m2p, m2p_l4e, m2p_span) = build_m2p(max_mfn, &extras);
    let mut grant_mfns = [0u64; NR_GRANT_FRAMES];
    grant_mfns.copy_from_slice(&plan.cocoon_frames[1..1 + NR_GRANT_FRAMES]);
    let mut status_mfns = [0u64; NR_STATUS_FRAMES];
    status_mfns.copy_from_slice(&plan.cocoon_frames[1 + NR_GRANT_FRAMES..1 + NR_GRANT_FRAMES + NR_STATUS_FRAMES]);
    for &g in grant_mfns.iter().chain(&status_mfns) {
        hw_zero(g);
    }
    let nr_pages = plan.physmap.nr_pages();
    let console_mfn = plan.physmap.mfn(layout.console.pfn);
    let store_mfn = plan.physmap.mfn(layout.xenstore.pfn);
    let setup = DomainSetup {
        physmap: plan.physmap,
        shared_info_mfn: plan.cocoon_frames[0],
        grant_mfns,
        status_mfns,
        m2p,
        m2p_span,
        hypervisor_l4: hypervisor_l4(m2p_l4e),
        max_mfn,
        console_mfn,
        store_mfn,
        console_port,
        store_port,
        xenstore: XenStore::new(shim_core::domain::DOMID_STANDALONE as u32, "cocoon-guest", nr_pages * 4),
        forward: fwd.map(|f| Forward { suspend_cancel: crate::xen::suspend_cancel(), ..f.forward }),
        nr_vcpus: nr_vcpus(fwd.is_some()),
    };
    let d = DOMAIN.call_once(|| Domain::new(setup));
    // SAFETY: called once; the guest's GDT entries belong to vCPU 0 from now on.
    let mut v = d.boot_vcpu(unsafe { percpu::guest_gdt(0) });

    // The builder's tables: validated, pinned, and the base table (two type references).
    let l4 = entry.cr3 >> PAGE_SHIFT;
    for _ in 0..2 {
        if let Err(e) = d.lock().frames.get_type(&mut hw, l4, PageType::L4) {
            log::error!("the initial page tables do not validate: {e:?}");
            crate::fault::stop(ExitReason::CocoonFault);
        }
    }
    let _ = d.lock().frames.pin(l4);
    v.guest_table = l4;
    v.kernel_sp = entry.rsp;
    for vi in d.shared_info(&mut hw).vcpu_info.iter_mut() {
        vi.evtchn_upcall_mask = 1;
    }
    d.set_wallclock(&mut hw);
    let mut c = Ctx { v: &mut v, d };
    c.update_time(&mut hw);
    // A PV vCPU starts with a 10 ms periodic timer (Linux stops it).
    c.v.periodic_next = hw.now_ns() + c.v.periodic_ns;
    sched::program_timer(&mut c, &mut hw);
    // Still on the boot stack, where `percpu::this()` (which `Hw::load_cr3`
    // uses) reads no `CpuInfo`: the boot CPU's slot by its number instead.
    let boot_cpu = percpu::cpu(0).expect("the boot CPU");
    crate::arch::syscall_entry::load_cr3(boot_cpu.cpu as usize, l4 << PAGE_SHIFT);

    let regs = GuestRegs {
        rip: entry.rip,
        cs: FLAT_KERNEL_CS as u64,
        rflags: X86_EFLAGS_IF | X86_EFLAGS_MBS,
        rsp: entry.rsp,
        ss: FLAT_KERNEL_SS as u64,
        rsi: entry.rsi,
        ..Default::default()
    };
    let (heap_used, tables_used, heap_size) = crate::heap::usage();
    log::info!(
        "starting the guest at {:#x}; Cocoon's heap: {} of {} KiB in use, tables {} KiB",
        regs.rip,
        heap_used >> 10,
        heap_size >> 10,
        tables_used >> 10
    );
    if fwd.is_some_and(|f| f.host_console()) {
        // The domain's PV console is the guest's now; Cocoon's log stays on COM1.
        log::info!("xen: the PV console is the guest's from here on; Cocoon's log continues on the serial port");
        hvm_glue::xen_hvm::console_hand_over();
    }
    d.lock().xenstore.set_vcpus(d.nr_vcpus());
    crate::vcpus::install(boot_cpu, d, v);
    let (entry_tsc, ns) = crate::arch::timer::since_entry();
    log::info!(
        "starting the guest: Cocoon's own boot took {}.{:03} ms (TSC {entry_tsc} at its start, {} now)",
        ns / 1_000_000,
        ns / 1000 % 1000,
        crate::arch::timer::rdtsc()
    );
    let ring0_top = boot_cpu.ring0_top;
    // SAFETY: `regs` is a complete ring-3 frame (on the boot stack, not the ring-0
    // stack); the guest's L4 is loaded; this is the boot CPU, whose stack top this is.
    crate::vcpus::enable_relax();
    unsafe { trap_entry::cocoon_enter_guest(&regs, ring0_top) }
}

fn hw_zero(mfn: u64) {
    crate::memory::DirectMapGuest.frame_static_mut(mfn).fill(0);
}

/// Every interrupt, exception and SYSCALL lands here from `trap_common`.
#[no_mangle]
extern "C" fn cocoon_trap(regs: &mut GuestRegs) {
    let v = regs.vector;
    if !regs.from_guest() {
        // Cocoon itself was interrupted or faulted.
        match v {
            v if v == TIMER_VECTOR as u64 => {
                percpu::this().timer_fired.store(true, core::sync::atomic::Ordering::Relaxed);
                timer::eoi();
                return;
            }
            v if v == SPURIOUS_VECTOR as u64 => return,
            // An NMI for this vCPU (`xl trigger nmi`) while Cocoon ran: kept
            // for the guest (delivered at its next exit, or wakes SCHEDOP_block).
            2 => {
                percpu::this().nmi_latched.store(true, core::sync::atomic::Ordering::Relaxed);
                return;
            }
            v if v == IPI_VECTOR as u64 => {
                timer::eoi();
                crate::vcpus::service(percpu::this());
                return;
            }
            // A guest watchpoint hit by Cocoon touching guest memory (a copy,
            // the fast path's stack frame): ignored, as Xen ignores watchpoints
            // that trigger within Xen; DR6 is reset so the guest's next #DB
            // does not report this hit.
            1 => {
                crate::arch::cpu::take_dr6();
                return;
            }
            13 | 14 => {
                if let Some(fix) = trap_entry::fixup_for(regs.rip) {
                    regs.rip = fix;
                    return;
                }
            }
            // Anything else, the host's event upcall included, only wakes `hlt`
            // (an EOI with nothing in service, as after a callback vector, is harmless).
            // Return with interrupts off: a level source (the platform device's
            // INTx, the callback vector) stays asserted until the guest's upcall
            // is taken, and with IF set it would interrupt again before `hlt`'s
            // `cli`, forever.
            v if (32..256).contains(&v) => {
                timer::eoi();
                regs.rflags &= !X86_EFLAGS_IF;
                return;
            }
            _ => {}
        }
        crate::fault::cocoon_fault(regs)
    }
    let Some(d) = DOMAIN.get() else { crate::fault::cocoon_fault(regs) };
    let Some(vcpu) = crate::vcpus::this_vcpu() else { crate::fault::cocoon_fault(regs) };
    let c = &mut Ctx { v: vcpu, d };
    if stats::detailed() {
        // `cocoon.stats`: what this exit cost, by kind.
        let kind =
            stats::exit_kind(c.v.kernel_mode, regs, TIMER_VECTOR as u64, IPI_VECTOR as u64, UPCALL_VECTOR as u64);
        let t0 = timer::rdtsc();
        handle_guest_exit(c, regs);
        // (A vCPU that went down and up again inside counts the time it was down.)
        c.v.stats.exits.add_cycles(kind, timer::rdtsc().wrapping_sub(t0));
    } else {
        handle_guest_exit(c, regs);
    }
}

/// A kernel-mode hypercall from the SYSCALL fast path (`arch::syscall_entry`)
/// of vCPU `v`, the one its slot serves, with the guest's arguments (rdi,
/// rsi, rdx, r10, r8): run it if it is a plain one
/// (`shim_core::fastpath::plain_hypercall`), on this CPU's ring-0 stack with
/// interrupts off, as `cocoon_trap` runs.
#[no_mangle]
extern "C" fn cocoon_plain_hypercall(v: *mut Vcpu, nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> PlainExit {
    let Some(d) = DOMAIN.get() else { return PlainExit { value: 0, how: fastpath::PLAIN_NOT } };
    // SAFETY: `v` is the vCPU the slot serves (`syscall_entry::attach`): a
    // leaked Vcpu only this CPU uses, with interrupts off (no other reference lives).
    let v = unsafe { &mut *v };
    fastpath::plain_hypercall(&mut Ctx { v, d }, &mut Hw, nr, [a0, a1, a2, a3, a4])
}

/// The fast path's `mmu_update` of one plain request `(ptr, val)` it read
/// (`shim_core::fastpath::mmu_update_one`), for vCPU `v` as above.
#[no_mangle]
extern "C" fn cocoon_mmu_update_one(v: *mut Vcpu, ptr: u64, val: u64) -> PlainExit {
    let Some(d) = DOMAIN.get() else { return PlainExit { value: 0, how: fastpath::PLAIN_NOT } };
    // SAFETY: as in `cocoon_plain_hypercall`.
    let v = unsafe { &mut *v };
    PlainExit { value: fastpath::mmu_update_one(&mut Ctx { v, d }, &mut Hw, ptr, val), how: fastpath::PLAIN_DONE }
}

/// An entry from the guest (or an interrupt while it ran), on its vCPU.
fn handle_guest_exit(c: &mut Ctx, regs: &mut GuestRegs) {
    let d = c.d;
    let mut hw = Hw;
    if hw.take_nmi() {
        c.v.nmi_pending = true;
    }
    match regs.vector {
        v if v == IPI_VECTOR as u64 => {
            c.v.stats.exits.exit(stats::EXIT_IPI);
            timer::eoi();
            crate::vcpus::service(percpu::this());
            // Taken down by another vCPU (VCPUOP_down): wait here until up again.
            if !d.vcpus[c.v.id as usize].is_up() {
                crate::vcpus::park_down(c, &mut hw);
            }
            traps::exit_to_guest(c, &mut hw, regs);
        }
        v if v == TIMER_VECTOR as u64 => {
            c.v.stats.exits.exit(stats::EXIT_TIMER);
            timer::eoi();
            sched::tick(c, &mut hw);
            traps::exit_to_guest(c, &mut hw, regs);
        }
        v if v == SPURIOUS_VECTOR as u64 => traps::exit_to_guest(c, &mut hw, regs),
        v if v == UPCALL_VECTOR as u64 => {
            c.v.stats.exits.exit(stats::EXIT_UPCALL);
            // Take a level upcall before the EOI, so the line is low when it lands.
            forward::host_upcall(c, &mut hw);
            if crate::xen::upcall_needs_eoi() {
                timer::eoi();
            }
            traps::exit_to_guest(c, &mut hw, regs);
        }
        v if (32..256).contains(&v) && v != traps::INT80_VECTOR => {
            c.v.stats.exits.exit(stats::EXIT_OTHER_INTERRUPT);
            timer::eoi();
            traps::exit_to_guest(c, &mut hw, regs);
        }
        v => {
            if v == ENTRY_HYPERCALL_DONE {
                // The fast path ran it (counted there): only the way out is left.
                traps::exit_to_guest(c, &mut hw, regs);
            } else {
                traps::guest_entry(c, &mut hw, regs);
            }
            if c.v.going_down {
                // VCPUOP_down on itself: the hypercall returns when it is up again.
                crate::vcpus::park_down(c, &mut hw);
                traps::exit_to_guest(c, &mut hw, regs);
            }
        }
    }
}

/// How many vCPUs the guest gets: one per CPU Cocoon runs on. On a real Xen
/// guest vCPU n is the HVM domain's vCPU n (its timers, upcalls and
/// vcpu_info are Xen's), which every AP checked (`xen::ap_setup`).
fn nr_vcpus(on_xen: bool) -> u32 {
    let cpus = percpu::nr_online() as u32;
    if on_xen && cpus > 1 && !crate::xen::aps_match_vcpus() {
        log::warn!("vCPUs: the CPUs are not the domain's vCPUs in order; the guest runs on 1, {} stay idle", cpus - 1);
        return 1;
    }
    log::info!("vCPUs: the guest may bring up {cpus} (vCPU n runs on CPU n)");
    cpus
}
