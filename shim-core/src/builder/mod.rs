//! The domain builder: lay a loaded kernel, its initrd, the P2M list,
//! start_info, the xenstore and console pages, the bootstrap page tables and
//! the boot stack into guest memory exactly as Xen's builder does for a
//! 64-bit PV domU, and return the register state to start it with.

pub mod hypercall_page;
pub mod layout;
pub mod memory;
pub mod physmap;

use core::fmt;
use core::mem::size_of;

pub use layout::{plan, Layout, Region};
pub use memory::{Frame, GuestMemory};
pub use physmap::PhysMap;

use crate::abi::*;
use crate::loader::Kernel;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    NotEnoughMemory { need_pages: u64, have_pages: u64 },
    InitrdTooLarge { len: u64 },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NotEnoughMemory { need_pages, have_pages } => write!(
                f,
                "not enough guest memory: the initial layout needs {} pages ({} MiB), the guest has {} ({} MiB)",
                need_pages,
                need_pages >> 8,
                have_pages,
                have_pages >> 8
            ),
            BuildError::InitrdTooLarge { len } => write!(f, "initrd of {len} bytes does not fit"),
        }
    }
}

/// What the builder needs besides the kernel.
pub struct DomainConfig<'a> {
    pub cmdline: &'a str,
    pub initrd: Option<&'a [u8]>,
    /// Machine frame of the shared_info page (owned by Cocoon, not guest RAM).
    pub shared_info_mfn: u64,
    pub store_evtchn: u32,
    pub console_evtchn: u32,
    /// Which of the xenstore and console PFNs are mapped (in the physmap) to
    /// a real Xen's ring pages, which are live: the builder must not clear them.
    pub host_rings: HostRings,
}

/// See [`DomainConfig::host_rings`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostRings {
    pub store: bool,
    pub console: bool,
}

/// Register state of the first vCPU (`vcpu_x86_64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    pub rip: u64,
    pub rsp: u64,
    /// VA of start_info.
    pub rsi: u64,
    /// L4 machine address.
    pub cr3: u64,
    pub rflags: u64,
}

/// L1 entries as the builder writes them.
pub const L1_PROT: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED;
/// L2-L4 entries.
pub const LX_PROT: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_USER;

const PAGE: usize = PAGE_SIZE as usize;

fn zero_pages(mem: &mut impl GuestMemory, map: &PhysMap, r: &Region) {
    for pfn in r.pfn..r.end_pfn() {
        mem.frame_mut(map.mfn(pfn)).fill(0);
    }
}

/// Copy `data` to the guest starting at `pfn` + `offset` bytes.
fn copy_in(mem: &mut impl GuestMemory, map: &PhysMap, pfn: u64, offset: u64, mut data: &[u8]) {
    let mut pos = pfn * PAGE_SIZE + offset;
    while !data.is_empty() {
        let in_page = (pos % PAGE_SIZE) as usize;
        let n = (PAGE - in_page).min(data.len());
        mem.frame_mut(map.mfn(pos / PAGE_SIZE))[in_page..in_page + n].copy_from_slice(&data[..n]);
        data = &data[n..];
        pos += n as u64;
    }
}

/// Build the domain into `mem` and return its layout and entry state.
pub fn build(
    kernel: &Kernel,
    map: &PhysMap,
    mem: &mut impl GuestMemory,
    cfg: &DomainConfig,
) -> Result<(Layout, EntryState), BuildError> {
    let p = &kernel.params;
    let layout = plan(p, map.nr_pages(), cfg.initrd.map(|i| i.len() as u64))?;

    // Kernel: zero the image (bss and gaps), then copy each segment's file bytes.
    zero_pages(mem, map, &layout.kernel);
    for s in &kernel.segments {
        let va = s.paddr.wrapping_add(p.virt_offset);
        let off = va - layout.kernel.va.unwrap();
        copy_in(mem, map, layout.kernel.pfn, off, kernel.segment_data(s));
    }
    if let (Some(r), Some(data)) = (layout.initrd, cfg.initrd) {
        zero_pages(mem, map, &r);
        copy_in(mem, map, r.pfn, 0, data);
    }

    // P2M list: one u64 MFN per PFN.
    zero_pages(mem, map, &layout.p2m);
    for (pfn, &mfn) in map.mfns().iter().enumerate() {
        let byte = pfn * 8;
        mem.write_u64(map.mfn(layout.p2m.pfn + (byte / PAGE) as u64), (byte % PAGE) / 8, mfn);
    }

    for r in [&layout.start_info, &layout.page_tables, &layout.boot_stack] {
        zero_pages(mem, map, r);
    }
    if !cfg.host_rings.store {
        zero_pages(mem, map, &layout.xenstore);
    }
    if !cfg.host_rings.console {
        zero_pages(mem, map, &layout.console);
    }
    write_page_tables(&layout, map, mem);

    if let Some(h) = p.hypercall_page {
        let pfn = (h - p.virt_base) / PAGE_SIZE;
        hypercall_page::fill(mem.frame_mut(map.mfn(pfn)));
    }

    write_start_info(&layout, kernel, map, mem, cfg);

    let entry = EntryState {
        rip: p.entry,
        rsp: layout.va_of_pfn(layout.boot_stack.pfn + 1),
        rsi: layout.start_info.va.unwrap(),
        cr3: map.mfn(layout.page_tables.pfn) << PAGE_SHIFT,
        rflags: 1 << 9,
    };
    Ok((layout, entry))
}

/// The frame of the level-`l` table covering `va` (any mapping that has one).
fn table_for(layout: &Layout, l: usize, va: u64) -> u64 {
    for m in layout.mappings.iter().flatten() {
        let lt = &m.levels[l];
        if lt.count > 0 && va >= lt.from && va <= lt.to {
            return lt.pfn + ((va - lt.from) >> (12 + 9 * (l as u32 + 1)));
        }
    }
    unreachable!("plan() gives every mapped address a table at every level")
}

fn write_page_tables(layout: &Layout, map: &PhysMap, mem: &mut impl GuestMemory) {
    for m in layout.mappings.iter().flatten() {
        // Leaf entries: every page of the mapping; page-table pages read-only.
        let pages = ((m.to - m.from) >> PAGE_SHIFT) + 1;
        for i in 0..pages {
            let va = m.from + i * PAGE_SIZE;
            let pfn = m.pfn + i;
            let mut prot = L1_PROT;
            if layout.is_page_table(pfn) {
                prot &= !_PAGE_RW;
            }
            let l1 = map.mfn(table_for(layout, 0, va));
            mem.write_u64(l1, ((va >> 12) & 511) as usize, (map.mfn(pfn) << PAGE_SHIFT) | prot);
        }
        // Each table of levels L1..L3 hangs off its parent.
        for l in 0..3 {
            let lt = m.levels[l];
            for t in 0..lt.count {
                let va = lt.from + (t << (12 + 9 * (l as u32 + 1)));
                let parent = map.mfn(table_for(layout, l + 1, va));
                let idx = ((va >> (12 + 9 * (l as u32 + 1))) & 511) as usize;
                mem.write_u64(parent, idx, (map.mfn(lt.pfn + t) << PAGE_SHIFT) | LX_PROT);
            }
        }
    }
}

fn write_start_info(layout: &Layout, kernel: &Kernel, map: &PhysMap, mem: &mut impl GuestMemory, cfg: &DomainConfig) {
    let p = &kernel.params;
    let mut si = StartInfo {
        magic: [0; 32],
        nr_pages: map.nr_pages(),
        shared_info: cfg.shared_info_mfn << PAGE_SHIFT,
        flags: 0,
        _pad0: 0,
        store_mfn: map.mfn(layout.xenstore.pfn),
        store_evtchn: cfg.store_evtchn,
        _pad1: 0,
        console_mfn: map.mfn(layout.console.pfn),
        console_evtchn: cfg.console_evtchn,
        _pad2: 0,
        pt_base: layout.page_tables.va.unwrap(),
        nr_pt_frames: layout.page_tables.pages,
        mfn_list: layout.p2m.va.unwrap(),
        mod_start: 0,
        mod_len: 0,
        cmd_line: [0; MAX_GUEST_CMDLINE],
        first_p2m_pfn: 0,
        nr_p2m_frames: 0,
    };
    si.magic[..XEN_START_INFO_MAGIC_X86_64.len()].copy_from_slice(XEN_START_INFO_MAGIC_X86_64);
    if p.init_p2m.is_some() {
        si.first_p2m_pfn = layout.p2m.pfn;
        si.nr_p2m_frames = layout.p2m.pages;
    }
    if let Some(r) = layout.initrd {
        match r.va {
            Some(va) => {
                si.mod_start = va;
                si.mod_len = layout.initrd_len;
            }
            None => {
                si.flags |= SIF_MOD_START_PFN;
                si.mod_start = r.pfn;
                si.mod_len = r.pages * PAGE_SIZE;
            }
        }
    }
    // Truncated like strncpy into cmd_line[MAX_GUEST_CMDLINE - 1].
    let c = cfg.cmdline.as_bytes();
    let n = c.len().min(MAX_GUEST_CMDLINE - 1);
    si.cmd_line[..n].copy_from_slice(&c[..n]);

    // SAFETY: StartInfo is repr(C) plain data with no padding left uninitialised
    // (every padding field is explicit); viewing it as bytes is sound.
    let bytes = unsafe { core::slice::from_raw_parts(&si as *const StartInfo as *const u8, size_of::<StartInfo>()) };
    copy_in(mem, map, layout.start_info.pfn, 0, bytes);
}
