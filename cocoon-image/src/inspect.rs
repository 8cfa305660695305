//! The `inspect` report.

use std::fmt::Write;
use std::path::Path;

use shim_core::abi::*;
use shim_core::builder::{plan, Region};
use shim_core::loader::{self, Container, NoteSource};

fn note_name(kind: u32) -> &'static str {
    const NAMES: [&str; 20] = [
        "INFO",
        "ENTRY",
        "HYPERCALL_PAGE",
        "VIRT_BASE",
        "PADDR_OFFSET",
        "XEN_VERSION",
        "GUEST_OS",
        "GUEST_VERSION",
        "LOADER",
        "PAE_MODE",
        "FEATURES",
        "BSD_SYMTAB",
        "HV_START_LOW",
        "L1_MFN_VALID",
        "SUSPEND_CANCEL",
        "INIT_P2M",
        "MOD_START_PFN",
        "SUPPORTED_FEATURES",
        "PHYS32_ENTRY",
        "PHYS32_RELOC",
    ];
    NAMES.get(kind as usize).copied().unwrap_or("unknown")
}

fn is_string_note(kind: u32) -> bool {
    matches!(
        kind,
        XEN_ELFNOTE_XEN_VERSION
            | XEN_ELFNOTE_GUEST_OS
            | XEN_ELFNOTE_GUEST_VERSION
            | XEN_ELFNOTE_LOADER
            | XEN_ELFNOTE_PAE_MODE
            | XEN_ELFNOTE_FEATURES
            | XEN_ELFNOTE_BSD_SYMTAB
    )
}

fn describe_note(kind: u32, desc: &[u8]) -> String {
    if is_string_note(kind) {
        let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
        return format!("\"{}\"", String::from_utf8_lossy(&desc[..end]));
    }
    match desc.len() {
        1 | 2 | 4 | 8 => {
            let mut b = [0u8; 8];
            b[..desc.len()].copy_from_slice(desc);
            format!("{:#x}", u64::from_le_bytes(b))
        }
        _ => desc.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
    }
}

fn region_line(out: &mut String, name: &str, r: &Region, note: &str) {
    let va = r.va.map_or("(not mapped)".to_string(), |v| format!("{v:#018x}"));
    let _ = writeln!(out, "  {name:<14} pfn {:#08x}-{:#08x} {:>7} pages  {va}  {note}", r.pfn, r.end_pfn(), r.pages);
}

fn features(bits: u32) -> String {
    let names: Vec<&str> = (0..32).filter(|b| bits & (1 << b) != 0).map(loader::notes::feature_name).collect();
    names.join(", ")
}

pub fn run(path: &Path, mem: u64, initrd: Option<&Path>) -> Result<String, String> {
    let file = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let initrd_len = match initrd {
        Some(p) => Some(std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?.len()),
        None => None,
    };
    let k = loader::load(&file, mem).map_err(|e| format!("{}: {e}", path.display()))?;
    let p = &k.params;
    let mut o = String::new();
    let _ = writeln!(o, "kernel:       {} ({} bytes)", path.display(), file.len());
    let container = match k.container {
        Container::Elf => "ELF".to_string(),
        Container::GzipElf => "gzip-compressed ELF".to_string(),
        Container::BzImage { protocol } => format!("bzImage (boot protocol {}.{:02})", protocol >> 8, protocol & 0xff),
    };
    let _ = writeln!(o, "container:    {container}");
    let _ = writeln!(o, "compression:  {} ({} bytes of ELF)", k.compression.name(), k.elf_bytes.len());
    let source = match k.notes.source {
        Some(NoteSource::ProgramHeaders) => "PT_NOTE segments",
        Some(NoteSource::Sections) => "SHT_NOTE sections",
        Some(NoteSource::XenGuestSection) => "legacy __xen_guest section",
        None => "none",
    };
    let _ = writeln!(o, "Xen notes:    {} (from {source})", k.notes.raw.len());
    for (kind, desc) in &k.notes.raw {
        let _ = writeln!(o, "  {:>2} {:<20} {}", kind, note_name(*kind), describe_note(*kind, desc));
    }
    let _ = writeln!(
        o,
        "features:     supported [{}]; required [{}]",
        features(k.notes.supported),
        features(k.notes.required)
    );
    let _ = writeln!(o, "segments:     {}", k.segments.len());
    for s in &k.segments {
        let f = |bit: u32, c: char| if s.flags & bit != 0 { c } else { '-' };
        let _ = writeln!(
            o,
            "  [{}] paddr {:#010x} -> va {:#018x}  file {:>9} mem {:>9}  {}{}{}",
            s.index,
            s.paddr,
            s.paddr.wrapping_add(p.virt_offset),
            s.filesz,
            s.memsz,
            f(4, 'R'),
            f(2, 'W'),
            f(1, 'X')
        );
    }
    let _ = writeln!(o, "image:        {:#018x}-{:#018x} (VIRT_BASE {:#x})", p.virt_kstart, p.virt_kend, p.virt_base);
    let _ = writeln!(o, "entry:        {:#018x}", p.entry);
    match p.hypercall_page {
        Some(h) => {
            let _ = writeln!(o, "hypercall page: {h:#018x}");
        }
        None => {
            let _ = writeln!(o, "hypercall page: none (the kernel issues syscall directly)");
        }
    }

    let nr_pages = mem / PAGE_SIZE;
    let l = plan(p, nr_pages, initrd_len).map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = writeln!(o, "layout for {} MiB ({} pages):", mem >> 20, nr_pages);
    region_line(&mut o, "kernel", &l.kernel, "");
    if let Some(r) = &l.initrd {
        let how = if r.va.is_some() { "mapped" } else { "by PFN (SIF_MOD_START_PFN)" };
        region_line(&mut o, "initrd", r, how);
    }
    if p.init_p2m.is_none() {
        region_line(&mut o, "p2m list", &l.p2m, "");
    }
    region_line(&mut o, "start_info", &l.start_info, "");
    region_line(&mut o, "xenstore", &l.xenstore, "");
    region_line(&mut o, "console", &l.console, "");
    let pt_note = format!("nr_pt_frames {}, read-only", l.page_tables.pages);
    region_line(&mut o, "page tables", &l.page_tables, &pt_note);
    region_line(&mut o, "boot stack", &l.boot_stack, "");
    if let Some(m) = &l.mappings[1] {
        let note = format!("INIT_P2M: {} list + {} table pages", l.p2m_list_pages, m.tables);
        region_line(&mut o, "p2m", &l.p2m, &note);
    }
    let _ =
        writeln!(o, "  mapping ends at {:#018x} (virt_pgtab_end); {} pages used", l.virt_pgtab_end, l.pfn_alloc_end);
    let _ = writeln!(
        o,
        "entry state:  rip {:#x} rsp {:#x} rsi {:#x} (start_info) cr3 = pfn {:#x}",
        p.entry,
        l.va_of_pfn(l.boot_stack.pfn + 1),
        l.start_info.va.unwrap(),
        l.page_tables.pfn
    );
    Ok(o)
}
