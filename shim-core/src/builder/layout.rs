//! Planning a 64-bit PV domain's initial memory, in the order `xl` uses
//! (`xc_dom_build_image`, `xg_dom_x86.c`). Pure arithmetic: nothing is
//! written here, so `inspect` can print the plan of a kernel it never runs.

use super::BuildError;
use crate::abi::PAGE_SIZE;
use crate::loader::KernelParams;

/// Virtual addresses are 48 bits for the page-table arithmetic (`VIRT_BITS_X86_64`).
const VADDR_MASK: u64 = (1 << 48) - 1;
/// Table levels 0..=3 are L1..L4; a table at level `l` spans `1 << level_bits(l)` bytes.
const fn level_bits(l: usize) -> u32 {
    12 + 9 * (l as u32 + 1)
}
/// 512 KiB of slack past the boot stack, and the 4 MiB round-up, as xl does.
const PT_PADDING_PAGES: u64 = (512 * 1024) / PAGE_SIZE;
const PT_ALIGN_MASK: u64 = (4 << 20) - 1;

/// Pages in `[pfn, pfn + pages)`, mapped at `va` when it is in the initial mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub pfn: u64,
    pub pages: u64,
    pub va: Option<u64>,
}

impl Region {
    pub fn end_pfn(&self) -> u64 {
        self.pfn + self.pages
    }
}

/// The tables of one level of one mapping: they cover `[from, to]` (inclusive,
/// 48-bit) and occupy `count` frames from `pfn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelTables {
    pub from: u64,
    pub to: u64,
    pub pfn: u64,
    pub count: u64,
}

/// One virtual mapping: `[from, to]` → PFNs from `pfn`, with its own tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub from: u64,
    pub to: u64,
    pub pfn: u64,
    /// Indexed by level: 0 = L1 .. 3 = L4.
    pub levels: [LevelTables; 4],
    pub tables: u64,
}

impl Mapping {
    /// First frame of this mapping's tables.
    pub fn first_table_pfn(&self) -> u64 {
        self.levels[3].pfn
    }
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub nr_pages: u64,
    pub virt_base: u64,
    pub kernel: Region,
    /// The initrd: mapped (`va` set) or an unmapped PFN range (MOD_START_PFN).
    pub initrd: Option<Region>,
    pub initrd_len: u64,
    /// The P2M list (and, at INIT_P2M, its own page tables after it).
    pub p2m: Region,
    pub p2m_list_pages: u64,
    pub start_info: Region,
    pub xenstore: Region,
    pub console: Region,
    pub page_tables: Region,
    pub boot_stack: Region,
    /// End of the initial mapping (`virt_pgtab_end`).
    pub virt_pgtab_end: u64,
    /// First PFN nothing was placed at.
    pub pfn_alloc_end: u64,
    /// `mappings[0]` is the main mapping, `mappings[1]` the INIT_P2M one.
    pub mappings: [Option<Mapping>; 2],
}

impl Layout {
    pub fn va_of_pfn(&self, pfn: u64) -> u64 {
        self.virt_base + pfn * PAGE_SIZE
    }

    /// Does `pfn` hold a page table of either mapping?
    pub fn is_page_table(&self, pfn: u64) -> bool {
        self.mappings.iter().flatten().any(|m| pfn >= m.first_table_pfn() && pfn < m.first_table_pfn() + m.tables)
    }
}

fn pages_for(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE)
}

/// Count the tables for `[from, to]`, sharing what earlier mappings have (`count_pgtables`).
fn count_tables(from: u64, to: u64, pfn: u64, table_pfn: u64, earlier: &[Mapping]) -> Mapping {
    let mut m = Mapping { from: from & VADDR_MASK, to: to & VADDR_MASK, pfn, ..Default::default() };
    for l in (0..4).rev() {
        m.levels[l].pfn = table_pfn + m.tables;
        if l == 3 {
            // The one L4, in the first mapping only.
            if earlier.is_empty() {
                m.levels[3] = LevelTables { from: 0, to: VADDR_MASK, pfn: table_pfn, count: 1 };
                m.tables += 1;
            }
            continue;
        }
        let mask = (1u64 << level_bits(l)) - 1;
        let (mut lf, mut lt) = (m.from & !mask, m.to | mask);
        let mut shared = false;
        for e in earlier {
            let el = e.levels[l];
            if el.count == 0 {
                continue;
            }
            if lf >= el.from && lt <= el.to {
                shared = true;
                break;
            }
            if lf >= el.from && lf <= el.to {
                lf = el.to + 1;
            }
            if lt >= el.from && lt <= el.to {
                lt = el.from - 1;
            }
        }
        if !shared && lf < lt {
            let count = ((lt - lf) >> level_bits(l)) + 1;
            m.levels[l] = LevelTables { from: lf, to: lt, pfn: m.levels[l].pfn, count };
            m.tables += count;
        } else {
            m.levels[l] = LevelTables { pfn: m.levels[l].pfn, ..Default::default() };
        }
    }
    m
}

/// Plan a domain of `nr_pages` pages for a kernel with `p`, and an initrd of `initrd_len` bytes.
pub fn plan(p: &KernelParams, nr_pages: u64, initrd_len: Option<u64>) -> Result<Layout, BuildError> {
    let need = |pages: u64| BuildError::NotEnoughMemory { need_pages: pages, have_pages: nr_pages };
    let vb = p.virt_base;

    // Kernel image, after padding from VIRT_BASE.
    let kstart = p.virt_kstart & !(PAGE_SIZE - 1);
    let kernel = Region { pfn: (kstart - vb) / PAGE_SIZE, pages: pages_for(p.virt_kend - kstart), va: Some(kstart) };
    // Checked first, so that no later arithmetic on PFNs can overflow.
    if kernel.end_pfn() > nr_pages {
        return Err(need(kernel.end_pfn()));
    }
    let mut pfn_end = kernel.end_pfn();
    let alloc = |pages: u64, pfn_end: &mut u64| {
        let r = Region { pfn: *pfn_end, pages, va: Some(vb + *pfn_end * PAGE_SIZE) };
        *pfn_end += pages;
        r
    };

    let mapped_initrd = match initrd_len {
        Some(len) if !p.mod_start_pfn => Some(alloc(pages_for(len), &mut pfn_end)),
        _ => None,
    };
    let p2m_list_pages = pages_for(nr_pages * 8);
    let p2m_in_mapping = p.init_p2m.is_none().then(|| alloc(p2m_list_pages, &mut pfn_end));
    let start_info = alloc(1, &mut pfn_end);
    let xenstore = alloc(1, &mut pfn_end);
    let console = alloc(1, &mut pfn_end);

    // Page tables and the space they map are solved together (alloc_pgtables_pv).
    let extra = 1 + PT_PADDING_PAGES;
    let mut pages = extra;
    let (main, try_virt_end) = loop {
        let try_virt_end = (vb + (pfn_end + pages) * PAGE_SIZE) | PT_ALIGN_MASK;
        let last_pfn = (try_virt_end + 1 - vb) / PAGE_SIZE;
        if last_pfn > nr_pages {
            return Err(need(last_pfn));
        }
        let m = count_tables(vb, try_virt_end, 0, pfn_end, &[]);
        pages = m.tables + extra;
        if pfn_end + pages <= (try_virt_end + 1 - vb) / PAGE_SIZE {
            break (m, try_virt_end);
        }
    };
    let page_tables = alloc(main.tables, &mut pfn_end);
    let boot_stack = alloc(1, &mut pfn_end);
    let virt_pgtab_end = try_virt_end.wrapping_add(1);
    // Everything up to the end of the mapping belongs to the initial image.
    pfn_end = (virt_pgtab_end - vb) / PAGE_SIZE;

    let initrd = match (mapped_initrd, initrd_len) {
        (Some(r), _) => Some(r),
        (None, Some(len)) => {
            let r = Region { pfn: pfn_end, pages: pages_for(len), va: None };
            pfn_end += r.pages;
            Some(r)
        }
        (None, None) => None,
    };

    let (p2m, p2m_mapping) = match (p2m_in_mapping, p.init_p2m) {
        (Some(r), _) => (r, None),
        (None, Some(base)) => {
            let m =
                count_tables(base, base + p2m_list_pages * PAGE_SIZE - 1, pfn_end, pfn_end + p2m_list_pages, &[main]);
            let r = Region { pfn: pfn_end, pages: p2m_list_pages + m.tables, va: Some(base) };
            pfn_end += r.pages;
            (r, Some(m))
        }
        (None, None) => unreachable!("the P2M is placed in the mapping when INIT_P2M is absent"),
    };
    if pfn_end > nr_pages {
        return Err(need(pfn_end));
    }
    Ok(Layout {
        nr_pages,
        virt_base: vb,
        kernel,
        initrd,
        initrd_len: initrd_len.unwrap_or(0),
        p2m,
        p2m_list_pages,
        start_info,
        xenstore,
        console,
        page_tables,
        boot_stack,
        virt_pgtab_end,
        pfn_alloc_end: pfn_end,
        mappings: [Some(main), p2m_mapping],
    })
}
