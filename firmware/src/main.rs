//! Cocoon: a PV-in-HVM shim. This binary is the bootable firmware: entry,
//! long-mode setup, descriptor tables, heap and logging, and `main`, which
//! wires `hvm-glue` and `shim-core` together.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod diskboot;
mod fault;
mod heap;
mod hw;
mod logger;
mod memory;
mod physmem;
mod run;
mod vcpus;
mod xen;

use hvm_glue::bootinfo::{self, BootInfo};
use hvm_glue::cmdline::{self, FaultInjection, Options};
use hvm_glue::xen_detect::{self, DetectionReport, NativeCpuid};
use log::{error, info, warn};
use shim_core::abi::{MAX_GUEST_CMDLINE, PAGE_SIZE};
use shim_core::builder::{self, DomainConfig, EntryState, GuestMemory, HostRings, Layout};
use shim_core::loader;
use shim_core::platform::ExitReason;

use crate::arch::boot::{BOOT_PROTO_LINUX, BOOT_PROTO_MULTIBOOT, BOOT_PROTO_PVH};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Called by the entry stub in long mode, on the boot stack, in the direct map.
#[no_mangle]
extern "C" fn cocoon_main64(proto: u32, magic: u32, info_pa: u32) -> ! {
    arch::timer::note_entry();
    logger::init();
    arch::percpu::init_boot_cpu();
    arch::idt::init();
    heap::init();
    let global_pages = arch::cpu::init_for_guests();
    arch::cpu::mask_legacy_pic();

    let mem = physmem::DirectMap;
    let parsed = match proto {
        BOOT_PROTO_MULTIBOOT => bootinfo::parse_multiboot(&mem, magic, info_pa as u64),
        BOOT_PROTO_PVH => bootinfo::parse_pvh(&mem, info_pa as u64),
        BOOT_PROTO_LINUX => bootinfo::parse_linux(&mem, magic, info_pa as u64),
        _ => unreachable!("entry stub passes a known protocol"),
    };
    let boot = match parsed {
        Ok(b) => b,
        Err(e) => {
            error!("cannot read boot information: {e}");
            fault::stop(ExitReason::BadInput);
        }
    };
    let opts = cmdline::parse(&boot.cmdline);
    shim_core::stats::set_detailed(opts.stats);
    vcpus::set_fast_path(opts.fastpath && !opts.stats);
    log::set_max_level(opts.log_level);
    info!("Cocoon {VERSION} (PV-in-HVM shim) booted via {:?}", boot.protocol);
    if global_pages {
        info!("paging: Cocoon's own mappings are global pages (kept across guest page-table switches)");
    } else {
        info!("paging: no global pages on this CPU: every guest page-table switch flushes Cocoon's mappings too");
    }
    for w in &opts.unknown {
        warn!("ignoring unknown option '{w}'");
    }
    log_memory(&boot);

    if let Some(f) = opts.fault {
        inject_fault(f);
    }

    let xen = xen_detect::detect(&NativeCpuid);
    // With cocoon.boot=disk the emulated disk is read first and unplugged after (`run`).
    let host = xen.as_ref().and_then(|x| xen::bring_up(x, opts.compat, !opts.boot_disk));
    info!("{}", DetectionReport(&xen));
    // SAFETY: the direct map shows the first 4 GiB as they are, where firmware
    // keeps the ACPI tables; the RSDP address is the boot protocol's.
    let cpus = unsafe { hvm_glue::acpi_cpus::cpu_apic_ids(physmem::AcpiMap, boot.rsdp) };
    // Xen's time leaf (base + 3) states the TSC rate; it came with Xen 4.0, so
    // not under cocoon.compat=3.4.
    let xen_time_leaf = xen
        .as_ref()
        .filter(|x| x.max_leaf >= x.base + 3 && opts.compat != hvm_glue::xen_host::Compat::Xen34)
        .map(|x| x.base + 3);
    if let Err(e) = arch::timer::init(xen_time_leaf, xen.is_some()) {
        error!("time: {e}; Cocoon needs a timer to run a guest");
        fault::stop(ExitReason::CocoonFault);
    }
    arch::timer::log_phase("time calibration");

    run(&boot, &opts, host, cpus)
}

/// Heap the APs' stacks and tables need (`percpu`), with room for the buddy
/// heap's alignment, for `cpus` (the MADT's APIC ids).
fn ap_heap_bytes(cpus: Option<&[u32]>) -> u64 {
    let aps = cpus.map_or(0, |c| c.len().clamp(1, arch::percpu::MAX_CPUS) - 1) as u64;
    if aps == 0 {
        return 0;
    }
    aps * arch::percpu::AP_HEAP_BYTES as u64 + arch::percpu::RING0_STACK_SIZE as u64
}

/// Start the platform's other CPUs (they park), and log the CPUs against the
/// one vCPU Cocoon gives the guest.
fn start_cpus(boot: &BootInfo, cpus: Option<&[u32]>) {
    let Some(ids) = cpus else {
        info!("vCPUs: no ACPI MADT found; the guest runs on 1 vCPU");
        return;
    };
    let n = ids.len();
    if n <= 1 {
        info!("vCPUs: the platform has {n} CPU; the guest runs on it");
        return;
    }
    let online = match arch::smp::choose_trampoline_page(boot) {
        Some(pa) => {
            log::debug!("smp: AP trampoline at {pa:#x}");
            arch::smp::start_aps(ids, ap_main)
        }
        None => {
            warn!("smp: no free page below 1 MiB for the AP trampoline");
            1
        }
    };
    let answered = arch::smp::ping_aps();
    info!("vCPUs: the platform has {n} CPUs, {online} online ({answered} APs answered an IPI)");
}

/// Where an AP lands, on its own ring-0 stack, once it is set up.
extern "C" fn ap_main(cpu: u32) -> ! {
    let info = arch::percpu::this();
    debug_assert_eq!(info.apic_id, arch::apic::id());
    info!("cpu {cpu} (APIC id {}) online", arch::apic::id());
    xen::ap_setup(cpu);
    vcpus::ap_loop(cpu)
}

/// Cocoon's cost to the guest, by part, as one line.
fn log_footprint(plan: &memory::MemoryPlan) {
    let f = &plan.footprint;
    let kib = |pages: u64| (pages * PAGE_SIZE) >> 10;
    info!(
        "memory: guest gets {} MiB ({} pages) of {} MiB RAM; Cocoon keeps {} KiB: image {} KiB, heap {} KiB, \
         frame table/M2P/P2M {} KiB ({} KiB per GiB), direct map {} KiB, shared frames {} KiB",
        plan.physmap.nr_pages() >> 8,
        plan.physmap.nr_pages(),
        f.ram_pages >> 8,
        kib(f.total()),
        kib(f.image_pages),
        kib(f.heap_pages),
        kib(f.table_pages),
        kib(f.table_pages) * (1 << 18) / f.ram_pages.max(1),
        kib(f.directmap_pages),
        kib(f.cocoon_frames)
    );
}

fn log_memory(boot: &BootInfo) {
    for r in &boot.memory {
        log::debug!("memory: {:#014x}-{:#014x} {:?}", r.base, r.base + r.len, r.kind);
    }
    info!("memory: {} MiB of RAM in {} map entries", boot.ram_bytes() >> 20, boot.memory.len());
}

/// Event channels the standalone backend gives the xenstore and console rings.
const STORE_EVTCHN: u32 = 1;
const CONSOLE_EVTCHN: u32 = 2;
/// The decoders' state while the kernel is decompressed: bzip2's block
/// (about 3.6 MB), a legacy lzma literal table (up to 6 MiB), and the rest.
const DECODER_PAGES: u64 = (8 << 20) / PAGE_SIZE;
/// Frames Cocoon keeps out of guest RAM: shared_info, the grant-table
/// frames and the v2 grant status frames.
const COCOON_PAGES: u64 = 1 + (shim_core::domain::NR_GRANT_FRAMES + shim_core::domain::NR_STATUS_FRAMES) as u64;

fn run(
    boot: &BootInfo,
    opts: &Options,
    host: Option<hvm_glue::xen_host::XenHost>,
    cpus: Option<alloc::vec::Vec<u32>>,
) -> ! {
    let from_disk;
    let boot = if opts.boot_disk {
        from_disk = match diskboot::load(boot, opts) {
            Ok(b) => b,
            Err(()) => fault::stop(ExitReason::BadInput),
        };
        if host.is_some() {
            xen::unplug_emulated_devices();
        }
        &from_disk
    } else {
        boot
    };
    let Some(kernel) = boot.modules.first() else {
        error!("no PV kernel given: pass it as the first boot module (multiboot or PVH module, or the initrd of Cocoon's bzImage)");
        fault::stop(ExitReason::BadInput);
    };
    let cmdline = cmdline::guest_cmdline(boot, opts);
    info!("kernel module: {} bytes at {:#x}", kernel.len, kernel.start);
    if let Some(initrd) = boot.modules.get(1) {
        info!("initrd module: {} bytes at {:#x}", initrd.len, initrd.start);
    }
    info!("guest command line: \"{cmdline}\"");

    let Some(mut kernel_bytes) = memory::module_bytes(kernel.start, kernel.len) else {
        error!("kernel module lies outside mapped memory");
        fault::stop(ExitReason::BadInput);
    };
    let mut initrd_bytes = match boot.modules.get(1) {
        None => None,
        Some(m) => match memory::module_bytes(m.start, m.len) {
            Some(b) => Some(b),
            None => {
                error!("initrd module lies outside mapped memory");
                fault::stop(ExitReason::BadInput);
            }
        },
    };
    // A bundle (cocoon-image bundle) carries kernel, initrd and command line in one module.
    let mut cmdline = cmdline;
    if hvm_glue::bundle::is_bundle(kernel_bytes) {
        match hvm_glue::bundle::parse(kernel_bytes) {
            Ok(b) => {
                info!(
                    "bundle: kernel {} bytes, initrd {} bytes, command line {}",
                    b.kernel.len(),
                    b.initrd.map_or(0, |i| i.len()),
                    if b.cmdline.is_some() { "given" } else { "not given" }
                );
                kernel_bytes = b.kernel;
                initrd_bytes = b.initrd.or(initrd_bytes);
                if let Some(c) = b.cmdline {
                    cmdline = c.into();
                    info!("guest command line (from the bundle): \"{cmdline}\"");
                }
            }
            Err(e) => {
                error!("{e}");
                fault::stop(ExitReason::BadInput);
            }
        }
    }
    // The decompressed kernel goes to guest memory (the scratch arena), sized
    // from what the payload declares; the decoders' fixed state after it.
    let out_bytes = match loader::output_size(kernel_bytes) {
        Ok(n) => n.unwrap_or(0),
        Err(e) => {
            error!("kernel: {e}");
            fault::stop(ExitReason::BadInput);
        }
    };
    let out_pages = out_bytes.div_ceil(PAGE_SIZE);
    let ap_heap = ap_heap_bytes(cpus.as_deref());
    let mut plan = match memory::plan(boot, COCOON_PAGES, out_pages + DECODER_PAGES, ap_heap) {
        Ok(p) => p,
        Err(e) => {
            error!("memory: {e}");
            fault::stop(ExitReason::BadInput);
        }
    };
    let shared_info_mfn = plan.cocoon_frames[0];
    log_footprint(&plan);
    // The APs start before the guest's memory is built (their trampoline lies
    // below 1 MiB, which the guest never gets); their stacks come from the heap.
    start_cpus(boot, cpus.as_deref());
    if cmdline.len() >= MAX_GUEST_CMDLINE {
        let cut = alloc::string::String::from_utf8_lossy(&cmdline.as_bytes()[MAX_GUEST_CMDLINE - 1..]);
        warn!(
            "guest command line is {} bytes; start_info holds {}: the guest does not see \"{cut}\"",
            cmdline.len(),
            MAX_GUEST_CMDLINE - 1
        );
    }
    memory::DirectMapGuest.frame_mut(shared_info_mfn).fill(0);
    // On a real Xen the guest uses its event channels, grants, timers, shared_info,
    // xenstore and console; without one (or with cocoon.standalone), Cocoon's own.
    let fwd = match host {
        Some(_) if opts.standalone => {
            info!("cocoon.standalone: serving the guest from Cocoon alone");
            None
        }
        Some(h) => match xen::prepare(&h, shared_info_mfn) {
            Ok(f) => Some(f),
            Err(e) => {
                warn!("xen: {e}; serving the guest from Cocoon alone");
                None
            }
        },
        None => None,
    };
    let (store_port, console_port) = fwd.map_or((STORE_EVTCHN, CONSOLE_EVTCHN), |f| f.ports());

    // Decompress and build with the scratch arena, then hand it to the guest.
    let (start, end) = plan.scratch;
    let out = memory::scratch_bytes((start, start + out_pages));
    heap::begin_scratch(
        hvm_glue::layout::phys_to_virt((start + out_pages) * PAGE_SIZE) as usize,
        ((end - start - out_pages) * PAGE_SIZE) as usize,
    );
    let ports = (store_port, console_port);
    let built =
        build_domain(kernel_bytes, out, initrd_bytes, &mut plan, &cmdline, shared_info_mfn, fwd.as_ref(), ports);
    match heap::end_scratch() {
        Ok(high_water) => info!("scratch: {} KiB used while building", high_water >> 10),
        Err(live) => {
            error!("internal error: {live} scratch allocation(s) outlived the domain build");
            fault::stop(ExitReason::CocoonFault);
        }
    }
    let Some((layout, entry)) = built else {
        fault::stop(ExitReason::BadInput);
    };
    info!(
        "domain: entry rip {:#x} rsp {:#x} rsi {:#x} cr3 {:#x}; {} of {} pages laid out",
        entry.rip, entry.rsp, entry.rsi, entry.cr3, layout.pfn_alloc_end, layout.nr_pages
    );
    if opts.dry_run {
        info!("dry run: domain built, stopping before the guest runs");
        fault::stop(ExitReason::DryRunDone);
    }
    run::start(plan, &layout, &entry, store_port, console_port, fwd)
}

/// Load the kernel and build the domain; every failure is logged here (no
/// allocation may outlive the scratch arena, so nothing is returned but plain data).
#[allow(clippy::too_many_arguments)]
fn build_domain(
    kernel: &[u8],
    out: &mut [u8],
    initrd: Option<&[u8]>,
    plan: &mut memory::MemoryPlan,
    cmdline: &str,
    shared_info_mfn: u64,
    fwd: Option<&xen::ForwardPlan>,
    (store_evtchn, console_evtchn): (u32, u32),
) -> Option<(Layout, EntryState)> {
    let guest_bytes = plan.physmap.nr_pages() * PAGE_SIZE;
    let k = match loader::load_into(kernel, out, guest_bytes) {
        Ok(k) => k,
        Err(e) => {
            error!("kernel: {e}");
            return None;
        }
    };
    arch::timer::log_phase("kernel decompression");
    xen::set_suspend_cancel(k.notes.suspend_cancel.is_some());
    let p = &k.params;
    info!(
        "kernel: {:?}, {} compression, {} Xen notes, image {:#x}-{:#x}, entry {:#x}, hypercall page {}",
        k.container,
        k.compression.name(),
        k.notes.raw.len(),
        p.virt_kstart,
        p.virt_kend,
        p.entry,
        if p.hypercall_page.is_some() { "yes" } else { "none" }
    );
    // The builder must not write where the modules and the scratch arena still are.
    match builder::plan(p, plan.physmap.nr_pages(), initrd.map(|i| i.len() as u64)) {
        Ok(l) if l.pfn_alloc_end <= plan.reserved_from_pfn => {
            // The guest's xenstore and console pages are the real Xen's rings.
            if let Some(f) = fwd {
                plan.physmap.set(l.xenstore.pfn, f.store.0);
                if let xen::GuestConsole::Host(gfn, _) = f.console {
                    plan.physmap.set(l.console.pfn, gfn);
                }
            }
        }
        Ok(l) => {
            error!(
                "not enough memory: the initial layout needs {} pages, {} are free while the boot modules are in use",
                l.pfn_alloc_end, plan.reserved_from_pfn
            );
            return None;
        }
        Err(e) => {
            error!("{e}");
            return None;
        }
    }
    let host_rings = fwd.map_or(HostRings::default(), |f| f.host_rings());
    let cfg = DomainConfig { cmdline, initrd, shared_info_mfn, store_evtchn, console_evtchn, host_rings };
    match builder::build(&k, &plan.physmap, &mut memory::DirectMapGuest, &cfg) {
        Ok(r) => {
            arch::timer::log_phase("domain build");
            Some(r)
        }
        Err(e) => {
            error!("{e}");
            None
        }
    }
}

/// A deliberate fault, so the fault path can be tested end to end.
fn inject_fault(f: FaultInjection) {
    warn!("injecting a deliberate {f:?} fault (cocoon.fault)");
    // SAFETY: each of these faults on purpose; the trap handler never returns here.
    unsafe {
        match f {
            FaultInjection::Ud => core::arch::asm!("ud2"),
            FaultInjection::Pf => {
                core::ptr::read_volatile(0xffff_8700_dead_0000 as *const u64);
            }
            FaultInjection::Gp => {
                core::ptr::read_volatile(0x8000_0000_0000_0000 as *const u64);
            }
            FaultInjection::De => core::arch::asm!(
                "xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx",
                out("eax") _, out("edx") _, out("ecx") _
            ),
        }
    }
}
