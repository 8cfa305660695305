//! Cocoon: a PV-in-HVM shim. This binary is the bootable firmware: entry,
//! long-mode setup, descriptor tables, heap and logging, and `main`, which
//! wires `hvm-glue` and `shim-core` together.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod fault;
mod heap;
mod hw;
mod logger;
mod memory;
mod physmem;
mod run;

use hvm_glue::bootinfo::{self, BootInfo};
use hvm_glue::cmdline::{self, FaultInjection, Options};
use hvm_glue::xen_detect::{self, DetectionReport, NativeCpuid};
use log::{error, info, warn};
use shim_core::abi::PAGE_SIZE;
use shim_core::builder::{self, DomainConfig, EntryState, GuestMemory, Layout};
use shim_core::loader;
use shim_core::platform::ExitReason;

use crate::arch::boot::{BOOT_PROTO_LINUX, BOOT_PROTO_MULTIBOOT, BOOT_PROTO_PVH};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Called by the entry stub in long mode, on the boot stack, in the direct map.
#[no_mangle]
extern "C" fn cocoon_main64(proto: u32, magic: u32, info_pa: u32) -> ! {
    logger::init();
    arch::gdt::init();
    arch::idt::init();
    heap::init();
    arch::cpu::init_for_guests();

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
    log::set_max_level(opts.log_level);
    info!("Cocoon {VERSION} (PV-in-HVM shim) booted via {:?}", boot.protocol);
    for w in &opts.unknown {
        warn!("ignoring unknown option '{w}'");
    }
    log_memory(&boot);

    if let Some(f) = opts.fault {
        inject_fault(f);
    }

    let xen = xen_detect::detect(&NativeCpuid);
    if let Some(x) = &xen {
        xen_bringup(x);
    }
    info!("{}", DetectionReport(&xen));
    if let Err(e) = arch::timer::init(xen.map(|x| x.base)) {
        error!("time: {e}; Cocoon needs a timer to run a guest");
        fault::stop(ExitReason::CocoonFault);
    }

    run(&boot, &opts)
}

/// On Xen: the hypercall page, then this domain's PV console for Cocoon's log.
/// (Forwarding the guest's devices to the Xen underneath is issue 6.)
fn xen_bringup(x: &xen_detect::XenInfo) {
    let layout = core::alloc::Layout::from_size_align(4096, 4096).expect("page layout");
    // SAFETY: a page-sized, page-aligned allocation; it stays Cocoon's for good.
    let page = unsafe { alloc::alloc::alloc_zeroed(layout) } as u64;
    if page == 0 {
        error!("xen: no memory for the hypercall page");
        return;
    }
    hvm_glue::xen_hvm::install_hypercall_page(x, page, hvm_glue::layout::virt_to_phys(page));
    match hvm_glue::xen_hvm::init_console(|pfn| hvm_glue::layout::phys_to_virt(pfn << 12)) {
        Some((pfn, port)) => {
            info!("xen: hypercall page installed; Cocoon's log also on the PV console (pfn {pfn:#x}, port {port})")
        }
        None => info!("xen: hypercall page installed; this domain has no PV console"),
    }
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
/// Frames Cocoon keeps out of guest RAM: shared_info and the grant-table frames.
const COCOON_PAGES: u64 = 1 + shim_core::domain::NR_GRANT_FRAMES as u64;

fn run(boot: &BootInfo, opts: &Options) -> ! {
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

    let plan = match memory::plan(boot, COCOON_PAGES, kernel.len) {
        Ok(p) => p,
        Err(e) => {
            error!("memory: {e}");
            fault::stop(ExitReason::BadInput);
        }
    };
    let shared_info_mfn = plan.cocoon_frames[0];
    info!(
        "memory: guest gets {} MiB ({} pages), Cocoon keeps {} frame(s) besides its image; scratch {} MiB",
        plan.physmap.nr_pages() >> 8,
        plan.physmap.nr_pages(),
        plan.cocoon_frames.len(),
        (plan.scratch.1 - plan.scratch.0) >> 8
    );

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
    memory::DirectMapGuest.frame_mut(shared_info_mfn).fill(0);

    // Decompress and build with the scratch arena, then hand it to the guest.
    let (start, end) = plan.scratch;
    heap::begin_scratch(
        hvm_glue::layout::phys_to_virt(start * PAGE_SIZE) as usize,
        ((end - start) * PAGE_SIZE) as usize,
    );
    let built = build_domain(kernel_bytes, initrd_bytes, &plan, &cmdline, shared_info_mfn);
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
    run::start(plan, &layout, &entry, STORE_EVTCHN, CONSOLE_EVTCHN)
}

/// Load the kernel and build the domain; every failure is logged here (no
/// allocation may outlive the scratch arena, so nothing is returned but plain data).
fn build_domain(
    kernel: &[u8],
    initrd: Option<&[u8]>,
    plan: &memory::MemoryPlan,
    cmdline: &str,
    shared_info_mfn: u64,
) -> Option<(Layout, EntryState)> {
    let guest_bytes = plan.physmap.nr_pages() * PAGE_SIZE;
    let k = match loader::load(kernel, guest_bytes) {
        Ok(k) => k,
        Err(e) => {
            error!("kernel: {e}");
            return None;
        }
    };
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
        Ok(l) if l.pfn_alloc_end <= plan.reserved_from_pfn => {}
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
    let cfg =
        DomainConfig { cmdline, initrd, shared_info_mfn, store_evtchn: STORE_EVTCHN, console_evtchn: CONSOLE_EVTCHN };
    match builder::build(&k, &plan.physmap, &mut memory::DirectMapGuest, &cfg) {
        Ok(r) => Some(r),
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
