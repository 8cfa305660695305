//! Xen's description of a PV kernel: ELF notes named "Xen" (from `PT_NOTE`
//! segments, else `SHT_NOTE` sections), or the legacy `__xen_guest` section
//! string of 2.6.18-era kernels. Mirrors `libelf-dominfo.c`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use object::elf::{FileHeader64, PT_NOTE, SHT_NOTE};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use object::LittleEndian as LE;

use super::elf::ElfImage;
use super::error::LoadError;
use crate::abi::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteSource {
    ProgramHeaders,
    Sections,
    XenGuestSection,
}

/// Everything the notes say, raw and interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XenNotes {
    pub source: Option<NoteSource>,
    /// Each Xen note as found: (type, descriptor bytes).
    pub raw: Vec<(u32, Vec<u8>)>,
    pub entry: Option<u64>,
    pub hypercall_page: Option<u64>,
    pub virt_base: Option<u64>,
    pub paddr_offset: Option<u64>,
    pub hv_start_low: Option<u64>,
    pub init_p2m: Option<u64>,
    pub phys32_entry: Option<u64>,
    pub suspend_cancel: Option<u64>,
    pub l1_mfn_valid: Option<(u64, u64)>,
    pub xen_version: Option<String>,
    pub guest_os: Option<String>,
    pub guest_version: Option<String>,
    pub loader: Option<String>,
    pub pae_mode: Option<String>,
    pub features: Option<String>,
    /// XENFEAT bits the kernel supports (submap 0), from FEATURES and SUPPORTED_FEATURES.
    pub supported: u32,
    /// XENFEAT bits the kernel requires ('!' in FEATURES).
    pub required: u32,
    pub mod_start_pfn: bool,
    pub bsd_symtab: bool,
}

/// XENFEAT names (`features.h`), by bit. libelf parses the first seven in
/// FEATURES strings; knowing the rest too is harmless and names them in reports.
const FEATURE_NAMES: [(&str, u32); 19] = [
    ("writable_page_tables", XENFEAT_writable_page_tables),
    ("writable_descriptor_tables", XENFEAT_writable_descriptor_tables),
    ("auto_translated_physmap", XENFEAT_auto_translated_physmap),
    ("supervisor_mode_kernel", XENFEAT_supervisor_mode_kernel),
    ("pae_pgdir_above_4gb", XENFEAT_pae_pgdir_above_4gb),
    ("mmu_pt_update_preserve_ad", XENFEAT_mmu_pt_update_preserve_ad),
    ("highmem_assist", XENFEAT_highmem_assist),
    ("gnttab_map_avail_bits", XENFEAT_gnttab_map_avail_bits),
    ("hvm_callback_vector", XENFEAT_hvm_callback_vector),
    ("hvm_safe_pvclock", XENFEAT_hvm_safe_pvclock),
    ("hvm_pirqs", XENFEAT_hvm_pirqs),
    ("dom0", XENFEAT_dom0),
    ("grant_map_identity", XENFEAT_grant_map_identity),
    ("memory_op_vnode_supported", XENFEAT_memory_op_vnode_supported),
    ("linux_rsdp_unrestricted", XENFEAT_linux_rsdp_unrestricted),
    ("not_direct_mapped", XENFEAT_not_direct_mapped),
    ("direct_mapped", XENFEAT_direct_mapped),
    ("runstate_phys_area", XENFEAT_runstate_phys_area),
    ("vcpu_time_phys_area", XENFEAT_vcpu_time_phys_area),
];

/// Name of a XENFEAT bit, for messages.
pub fn feature_name(bit: u32) -> &'static str {
    FEATURE_NAMES.iter().find(|(_, b)| *b == bit).map_or("unknown", |(n, _)| n)
}

/// Parse a FEATURES string ("a|!b|c") into supported and required bits.
pub fn parse_features(s: &str, supported: &mut u32, required: &mut u32) {
    for word in s.split('|') {
        let (req, name) = match word.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, word),
        };
        if let Some((_, bit)) = FEATURE_NAMES.iter().find(|(n, _)| *n == name) {
            *supported |= 1 << bit;
            if req {
                *required |= 1 << bit;
            }
        }
    }
}

fn numeric(kind: u32, desc: &[u8]) -> Result<u64, LoadError> {
    Ok(match desc.len() {
        1 => desc[0] as u64,
        2 => u16::from_le_bytes(desc.try_into().unwrap()) as u64,
        4 => u32::from_le_bytes(desc.try_into().unwrap()) as u64,
        8 => u64::from_le_bytes(desc.try_into().unwrap()),
        _ => return Err(LoadError::BadNote { note: kind, detail: "numeric value is not 1, 2, 4 or 8 bytes" }),
    })
}

fn string(desc: &[u8]) -> String {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    String::from_utf8_lossy(&desc[..end]).into_owned()
}

impl XenNotes {
    fn apply(&mut self, kind: u32, desc: &[u8]) -> Result<(), LoadError> {
        self.raw.push((kind, desc.to_vec()));
        match kind {
            XEN_ELFNOTE_ENTRY => self.entry = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_HYPERCALL_PAGE => self.hypercall_page = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_VIRT_BASE => self.virt_base = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_PADDR_OFFSET => self.paddr_offset = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_HV_START_LOW => self.hv_start_low = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_INIT_P2M => self.init_p2m = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_PHYS32_ENTRY => self.phys32_entry = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_SUSPEND_CANCEL => self.suspend_cancel = Some(numeric(kind, desc)?),
            XEN_ELFNOTE_MOD_START_PFN => self.mod_start_pfn = numeric(kind, desc)? != 0,
            XEN_ELFNOTE_XEN_VERSION => self.xen_version = Some(string(desc)),
            XEN_ELFNOTE_GUEST_OS => self.guest_os = Some(string(desc)),
            XEN_ELFNOTE_GUEST_VERSION => self.guest_version = Some(string(desc)),
            XEN_ELFNOTE_LOADER => self.loader = Some(string(desc)),
            XEN_ELFNOTE_PAE_MODE => self.pae_mode = Some(string(desc)),
            XEN_ELFNOTE_BSD_SYMTAB => self.bsd_symtab = string(desc).starts_with("yes"),
            XEN_ELFNOTE_FEATURES => {
                let s = string(desc);
                parse_features(&s, &mut self.supported, &mut self.required);
                self.features = Some(s);
            }
            XEN_ELFNOTE_SUPPORTED_FEATURES => {
                if desc.is_empty() || !desc.len().is_multiple_of(4) {
                    return Err(LoadError::BadNote { note: kind, detail: "not a whole number of 32-bit words" });
                }
                self.supported |= u32::from_le_bytes(desc[..4].try_into().unwrap());
            }
            XEN_ELFNOTE_L1_MFN_VALID => {
                let (m, v) = match desc.len() {
                    8 => (
                        u32::from_le_bytes(desc[..4].try_into().unwrap()) as u64,
                        u32::from_le_bytes(desc[4..].try_into().unwrap()) as u64,
                    ),
                    16 => (
                        u64::from_le_bytes(desc[..8].try_into().unwrap()),
                        u64::from_le_bytes(desc[8..].try_into().unwrap()),
                    ),
                    _ => return Err(LoadError::BadNote { note: kind, detail: "not one mask/value pair" }),
                };
                self.l1_mfn_valid = Some((m, v));
            }
            // INFO, PHYS32_RELOC and unknown types are recorded but unused.
            _ => {}
        }
        Ok(())
    }
}

/// Longest legacy `__xen_guest` key and value (libelf's limits).
const XEN_GUEST_KEY_MAX: usize = 31;
const XEN_GUEST_VALUE_MAX: usize = 127;

fn parse_number(s: &str) -> Result<u64, LoadError> {
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    r.map_err(|_| LoadError::BadXenGuestString("a number does not parse"))
}

/// Parse the legacy `__xen_guest` string ("KEY=VALUE,KEY=VALUE,...").
pub fn parse_xen_guest(s: &[u8]) -> Result<XenNotes, LoadError> {
    let s = string(s);
    let mut n = XenNotes { source: Some(NoteSource::XenGuestSection), ..Default::default() };
    let mut hypercall_pfn = None;
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.len() > XEN_GUEST_KEY_MAX || v.len() > XEN_GUEST_VALUE_MAX {
            return Err(LoadError::BadXenGuestString("key or value too long"));
        }
        match k {
            "GUEST_OS" => n.guest_os = Some(v.to_string()),
            "GUEST_VER" => n.guest_version = Some(v.to_string()),
            "XEN_VER" => n.xen_version = Some(v.to_string()),
            "LOADER" => n.loader = Some(v.to_string()),
            "PAE" => n.pae_mode = Some(v.to_string()),
            "BSD_SYMTAB" => n.bsd_symtab = true,
            "VIRT_BASE" => n.virt_base = Some(parse_number(v)?),
            "VIRT_ENTRY" => n.entry = Some(parse_number(v)?),
            "ELF_PADDR_OFFSET" => n.paddr_offset = Some(parse_number(v)?),
            "HYPERCALL_PAGE" => hypercall_pfn = Some(parse_number(v)?),
            "FEATURES" => {
                parse_features(v, &mut n.supported, &mut n.required);
                n.features = Some(v.to_string());
            }
            _ => {}
        }
    }
    // HYPERCALL_PAGE is a page number relative to VIRT_BASE.
    if let Some(pfn) = hypercall_pfn {
        let base = n.virt_base.unwrap_or(0);
        n.hypercall_page = pfn.checked_mul(PAGE_SIZE).and_then(|o| o.checked_add(base));
        if n.hypercall_page.is_none() {
            return Err(LoadError::BadXenGuestString("HYPERCALL_PAGE out of range"));
        }
    }
    Ok(n)
}

/// Find and parse the kernel's Xen notes.
pub fn read(elf: &ElfImage) -> Result<XenNotes, LoadError> {
    let hdr: &FileHeader64<LE> = elf.header();
    let data = elf.data;
    let bad = |detail| LoadError::BadNote { note: 0, detail };

    // Every "Xen" note of one segment or section.
    let take = |n: &mut XenNotes, notes: Option<NoteIterator<'_, FileHeader64<LE>>>| -> Result<(), LoadError> {
        let Some(mut notes) = notes else { return Ok(()) };
        while let Some(note) = notes.next().map_err(|_| bad("note sizes run past their segment or section"))? {
            if note.name() == b"Xen" {
                n.apply(note.n_type(LE), note.desc())?;
            }
        }
        Ok(())
    };

    let mut n = XenNotes::default();
    let phdrs = hdr.program_headers(LE, data).map_err(|_| bad("program headers unreadable"))?;
    for ph in phdrs.iter().filter(|p| p.p_type(LE) == PT_NOTE) {
        take(&mut n, ph.notes(LE, data).map_err(|_| bad("note segment lies outside the file"))?)?;
    }
    if !n.raw.is_empty() {
        n.source = Some(NoteSource::ProgramHeaders);
        return Ok(n);
    }

    let sections = hdr.sections(LE, data).map_err(|_| LoadError::BadElf("section headers lie outside the file"))?;
    for sh in sections.iter().filter(|s| s.sh_type(LE) == SHT_NOTE) {
        take(&mut n, sh.notes(LE, data).map_err(|_| bad("note section lies outside the file"))?)?;
    }
    if !n.raw.is_empty() {
        n.source = Some(NoteSource::Sections);
        return Ok(n);
    }

    if let Some((_, sh)) = sections.section_by_name(LE, b"__xen_guest") {
        let bytes = sh.data(LE, data).map_err(|_| LoadError::BadXenGuestString("section lies outside the file"))?;
        return parse_xen_guest(bytes);
    }
    Err(LoadError::NotXenKernel)
}

/// Xen's acceptance checks on the notes (`elf_xen_note_check`).
pub fn check(n: &XenNotes) -> Result<(), LoadError> {
    let loader_ok = n.loader.as_deref().is_some_and(|l| l.starts_with("generic"));
    let os_ok = n.guest_os.as_deref().is_some_and(|o| o.starts_with("linux"));
    if !loader_ok && !os_ok {
        return Err(LoadError::BadNote {
            note: XEN_ELFNOTE_LOADER,
            detail: "only images for the generic loader or Linux are loaded (LOADER or GUEST_OS)",
        });
    }
    if !n.xen_version.as_deref().is_some_and(|v| v.starts_with("xen-3.0")) {
        return Err(LoadError::BadNote {
            note: XEN_ELFNOTE_XEN_VERSION,
            detail: "XEN_VERSION must begin with xen-3.0",
        });
    }
    // Features a PV domU in Cocoon can never have.
    for bit in
        [XENFEAT_auto_translated_physmap, XENFEAT_supervisor_mode_kernel, XENFEAT_hvm_callback_vector, XENFEAT_dom0]
    {
        if n.required & (1 << bit) != 0 {
            return Err(LoadError::RequiredFeature(feature_name(bit)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_string() {
        let (mut s, mut r) = (0, 0);
        parse_features("!writable_page_tables|pae_pgdir_above_4gb|bogus", &mut s, &mut r);
        assert_eq!(s, (1 << XENFEAT_writable_page_tables) | (1 << XENFEAT_pae_pgdir_above_4gb));
        assert_eq!(r, 1 << XENFEAT_writable_page_tables);
    }

    #[test]
    fn numeric_sizes() {
        assert_eq!(numeric(1, &[0x12]).unwrap(), 0x12);
        assert_eq!(numeric(1, &[0x34, 0x12]).unwrap(), 0x1234);
        assert_eq!(numeric(1, &0x8000_0000u32.to_le_bytes()).unwrap(), 0x8000_0000);
        assert_eq!(numeric(1, &u64::MAX.to_le_bytes()).unwrap(), u64::MAX);
        assert!(matches!(numeric(3, &[1, 2, 3]), Err(LoadError::BadNote { note: 3, .. })));
    }

    #[test]
    fn legacy_xen_guest_string() {
        let s = b"GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000,\
ELF_PADDR_OFFSET=0xffffffff80000000,HYPERCALL_PAGE=0x101,FEATURES=writable_page_tables|!pae_pgdir_above_4gb,LOADER=generic\0";
        let n = parse_xen_guest(s).unwrap();
        assert_eq!(n.virt_base, Some(0xffff_ffff_8000_0000));
        assert_eq!(n.hypercall_page, Some(0xffff_ffff_8010_1000));
        assert_eq!(n.required, 1 << XENFEAT_pae_pgdir_above_4gb);
        check(&n).unwrap();
    }

    #[test]
    fn legacy_errors() {
        assert!(matches!(parse_xen_guest(b"VIRT_BASE=0xzz"), Err(LoadError::BadXenGuestString(_))));
        let long = alloc::format!("GUEST_OS={}", "x".repeat(200));
        assert!(matches!(parse_xen_guest(long.as_bytes()), Err(LoadError::BadXenGuestString(_))));
        assert!(matches!(
            parse_xen_guest(b"VIRT_BASE=0xffffffffffffffff,HYPERCALL_PAGE=0xfffffffffff"),
            Err(LoadError::BadXenGuestString(_))
        ));
    }

    #[test]
    fn acceptance_checks() {
        let mut n =
            XenNotes { guest_os: Some("linux".into()), xen_version: Some("xen-3.0".into()), ..Default::default() };
        check(&n).unwrap();
        n.xen_version = Some("xen-2.0".into());
        assert!(check(&n).is_err());
        n.xen_version = Some("xen-3.0".into());
        n.guest_os = Some("plan9".into());
        assert!(check(&n).is_err());
        n.loader = Some("generic".into());
        check(&n).unwrap();
        n.required = 1 << XENFEAT_dom0;
        assert_eq!(check(&n), Err(LoadError::RequiredFeature("dom0")));
    }
}
