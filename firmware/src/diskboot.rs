//! `cocoon.boot=disk`: boot the kernel the guest's own disk names, as pygrub
//! does, at every boot: the first IDE disk (the HVM domain's xvda/hda,
//! before Cocoon unplugs it), its partitions and ext filesystems, the
//! bootloader configuration and the entry it chooses (`shim_core::bootdisk`).
//! The kernel and initrds are read straight into RAM, where they then serve
//! as boot modules do; the guest gets those frames back once it is built.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt::Write;

use hvm_glue::ata::{AtaDisk, DmaArea, MachineAtaPorts};
use hvm_glue::bootinfo::{BootInfo, Module};
use hvm_glue::cmdline::Options;
use hvm_glue::layout::{phys_to_virt, virt_to_phys};
use log::{error, info};
use shim_core::abi::PAGE_SIZE;
use shim_core::bootdisk::{self, BootFile, BootPlan, SharedDisk};

use crate::arch::timer;
use crate::memory::{self, FrameRange};

/// The heap the disk reader needs: the DMA area (1 MiB and a bit), each
/// filesystem's block cache (288 KiB, 8 filesystems at most), the
/// configuration files (256 KiB each at most) and the parser's copies, a
/// journal's block map; taken from the bottom of the RAM the files go to and
/// free again afterwards.
const READER_HEAP_PAGES: u64 = (16 << 20) / PAGE_SIZE;
/// DMA read-ahead: one READ DMA EXT per MiB of kernel and initrd.
const READ_AHEAD_BYTES: usize = 1 << 20;
/// Room for the module strings: the path and the kernel command line (start_info
/// holds 1024 bytes; a longer line is reported when the guest is built).
const MODULE_STRING_BYTES: usize = 4096;

/// The disk's names as the device model gives them.
const IDE_NAMES: [&str; 4] = ["hda (xvda)", "hdb (xvdb)", "hdc (xvdc)", "hdd (xvdd)"];

/// Read the kernel and initrd the disk's bootloader configuration names; a
/// copy of `boot` with them as its modules. Errors are logged; `Err` means stop.
pub fn load(boot: &BootInfo, opts: &Options) -> Result<BootInfo, ()> {
    let disks = AtaDisk::probe(&mut MachineAtaPorts);
    let Some(mut disk) = disks.into_iter().next() else {
        error!("boot disk: cocoon.boot=disk, but there is no IDE disk (an HVM domain's first four disks, xvda-xvdd, are IDE disks until Cocoon unplugs them)");
        return Err(());
    };
    use shim_core::bootdisk::BlockDevice;
    let name = IDE_NAMES.get(disk.index as usize).copied().unwrap_or("?");
    info!("boot disk: IDE disk {name}, {} MiB, {} sector(s) per data request", disk.sectors() >> 11, disk.block());
    let Some(window) = memory::largest_free_low(boot).filter(|w| w.1 - w.0 > 2 * READER_HEAP_PAGES) else {
        error!(
            "boot disk: no free RAM below 4 GiB to read the kernel into (the reader alone needs {} MiB)",
            (READER_HEAP_PAGES * PAGE_SIZE) >> 20
        );
        return Err(());
    };
    // What outlives the reader is allocated before its heap is switched on.
    let mut kernel_string = String::with_capacity(MODULE_STRING_BYTES);
    let mut initrd_string = String::with_capacity(MODULE_STRING_BYTES);
    let mut placed: Vec<(u64, u64)> = Vec::with_capacity(2);
    let t0 = timer::now_ns();
    crate::heap::begin_scratch(phys_to_virt(window.0 * PAGE_SIZE) as usize, (READER_HEAP_PAGES * PAGE_SIZE) as usize);
    // The DMA area comes from the reader's heap too (below 4 GiB, contiguous).
    let layout = core::alloc::Layout::from_size_align(DmaArea::size_for(READ_AHEAD_BYTES), DmaArea::ALIGN)
        .expect("a valid layout");
    // SAFETY: a non-zero-sized layout; freed below, before the heap is switched off.
    let area_mem = unsafe { alloc::alloc::alloc(layout) };
    let bus_master = hvm_glue::pci::ide_bus_master(&hvm_glue::pci::PortPci);
    if let (false, Some(bm)) = (area_mem.is_null(), bus_master) {
        // SAFETY: the allocation is the disk's alone until it is dropped below;
        // the direct map is linear, so it is contiguous at its physical address.
        if let Some(area) = unsafe { DmaArea::new(area_mem, virt_to_phys(area_mem as u64), layout.size()) } {
            disk.enable_dma(bm, area);
        }
    }
    let mode = if disk.dma_enabled() { "bus-master DMA" } else { "PIO" };
    info!("boot disk: reading by {mode}");
    let ata = Rc::new(RefCell::new(disk));
    let shared: SharedDisk = ata.clone();
    let read = read_files(&shared, window, opts, &mut kernel_string, &mut initrd_string, &mut placed);
    drop(shared);
    if let Some(e) = ata.borrow().dma_failure {
        log::warn!("boot disk: DMA failed ({e}); the rest was read by PIO");
    }
    drop(ata);
    if !area_mem.is_null() {
        // SAFETY: allocated above with this layout; the disk that used it is gone.
        unsafe { alloc::alloc::dealloc(area_mem, layout) };
    }
    match crate::heap::end_scratch() {
        Ok(high) => log::debug!("boot disk: the reader used {} KiB of heap", high >> 10),
        Err(live) => {
            error!("boot disk: {live} allocations of the disk reader outlived it (a Cocoon bug)");
            return Err(());
        }
    }
    read?;
    let bytes: u64 = placed.iter().map(|p| p.1).sum();
    let ms = (timer::now_ns() - t0) / 1_000_000;
    info!("boot disk: read {} KiB in {ms} ms", bytes >> 10);
    let mut b = boot.clone();
    b.modules = placed
        .iter()
        .zip([kernel_string, initrd_string])
        .map(|(&(start, len), cmdline)| Module { start, len, cmdline })
        .collect();
    Ok(b)
}

/// Append `s` to `out` without growing it (growth would come from the
/// reader's heap); false if it does not fit.
fn push_fixed(out: &mut String, s: &str) -> bool {
    if out.len() + s.len() > out.capacity() {
        return false;
    }
    out.push_str(s);
    true
}

/// Everything that runs on the reader's heap: find the entry, place and read
/// its files. The module strings and placements go to the caller's buffers.
fn read_files(
    disk: &SharedDisk,
    window: FrameRange,
    opts: &Options,
    kernel_string: &mut String,
    initrd_string: &mut String,
    placed: &mut Vec<(u64, u64)>,
) -> Result<(), ()> {
    let plan = bootdisk::plan(disk, opts.boot_entry.as_deref()).map_err(|e| error!("boot disk: {e}"))?;
    let (cfg_part, cfg_path) = &plan.config;
    info!(
        "boot disk: {:?} partition table, {} ext filesystem(s); {cfg_path} on partition {cfg_part} chooses \"{}\"",
        plan.table,
        plan.filesystems.len(),
        plan.entry.title
    );
    let initrd_bytes: u64 = plan.initrds.iter().map(|f| f.size.next_multiple_of(4)).sum();
    // The files at the top of the window, the reader's heap at its bottom.
    let pages = |b: u64| b.div_ceil(PAGE_SIZE);
    let need = pages(plan.kernel.size) + pages(initrd_bytes);
    if window.1 - window.0 < need + READER_HEAP_PAGES {
        error!(
            "boot disk: the kernel and initrd take {} MiB; the largest free RAM below 4 GiB has {} MiB",
            (need * PAGE_SIZE) >> 20,
            ((window.1 - window.0) * PAGE_SIZE) >> 20
        );
        return Err(());
    }
    let kernel_at = window.1 - need;
    read_one(&plan, &plan.kernel, kernel_at)?;
    placed.push((kernel_at * PAGE_SIZE, plan.kernel.size));
    // Several initrds are laid end to end, 4-byte aligned, as GRUB does; the
    // kernel unpacks one archive after the other.
    if !plan.initrds.is_empty() {
        let initrd_at = kernel_at + pages(plan.kernel.size);
        let mut off = 0;
        for f in &plan.initrds {
            let dst = memory::scratch_bytes((initrd_at, initrd_at + pages(initrd_bytes)));
            plan.read(f, &mut dst[off as usize..(off + f.size) as usize]).map_err(|e| error!("boot disk: {e}"))?;
            dst[(off + f.size) as usize..(off + f.size.next_multiple_of(4)) as usize].fill(0);
            info!("boot disk: initrd {} ({} KiB) from partition {}", f.path, f.size >> 10, plan.partition_of(f));
            off += f.size.next_multiple_of(4);
        }
        placed.push((initrd_at * PAGE_SIZE, initrd_bytes));
    }
    // Module strings as boot loaders give them: the file, then the arguments
    // (the entry's, then the words after `--` on Cocoon's line, as pygrub appends `extra`).
    let mut line = String::new();
    let _ = write!(line, "{} {}", plan.kernel.path, plan.entry.args.trim());
    if let Some(t) = opts.guest_tail.as_deref().filter(|t| !t.trim().is_empty()) {
        let _ = write!(line, " {}", t.trim());
    }
    let names: Vec<&str> = plan.initrds.iter().map(|f| f.path.as_str()).collect();
    if !push_fixed(kernel_string, &line) || !push_fixed(initrd_string, &names.join(",")) {
        error!("boot disk: the entry's command line is longer than {MODULE_STRING_BYTES} bytes");
        return Err(());
    }
    Ok(())
}

fn read_one(plan: &BootPlan, f: &BootFile, at_pfn: u64) -> Result<(), ()> {
    let dst = memory::scratch_bytes((at_pfn, at_pfn + f.size.div_ceil(PAGE_SIZE)));
    plan.read(f, &mut dst[..f.size as usize]).map_err(|e| error!("boot disk: {e}"))?;
    info!("boot disk: kernel {} ({} KiB) from partition {}", f.path, f.size >> 10, plan.partition_of(f));
    Ok(())
}
