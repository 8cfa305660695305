//! The kernel's ELF file: header checks and loadable segments.

use alloc::vec::Vec;

use object::elf::{FileHeader64, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, EM_X86_64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;

use super::error::LoadError;

/// `e_ident` offsets.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

/// One `PT_LOAD` segment with a non-zero memory size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index among the program headers.
    pub index: usize,
    pub paddr: u64,
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    /// `PF_X`/`PF_W`/`PF_R`.
    pub flags: u32,
}

/// A parsed kernel ELF.
#[derive(Clone, Debug)]
pub struct ElfImage<'a> {
    pub data: &'a [u8],
    pub e_entry: u64,
    pub segments: Vec<Segment>,
}

impl<'a> ElfImage<'a> {
    pub fn header(&self) -> &'a FileHeader64<LE> {
        FileHeader64::<LE>::parse(self.data).expect("checked in parse")
    }

    /// The file bytes of a segment.
    pub fn segment_data(&self, s: &Segment) -> &'a [u8] {
        &self.data[s.offset as usize..(s.offset + s.filesz) as usize]
    }
}

/// Parse and check a 64-bit little-endian x86-64 ELF.
pub fn parse(data: &[u8]) -> Result<ElfImage<'_>, LoadError> {
    if data.len() < 16 || &data[..4] != b"\x7fELF" {
        return Err(LoadError::PayloadNotElf);
    }
    match data[EI_CLASS] {
        ELFCLASS64 => {}
        ELFCLASS32 => return Err(LoadError::Elf32Unsupported),
        _ => return Err(LoadError::WrongElf("unknown ELF class")),
    }
    if data[EI_DATA] != ELFDATA2LSB {
        return Err(LoadError::WrongElf("big-endian ELF"));
    }
    let hdr = FileHeader64::<LE>::parse(data).map_err(|_| LoadError::Truncated { what: "ELF header" })?;
    if hdr.e_machine(LE) != EM_X86_64 {
        return Err(LoadError::WrongElf("machine is not x86-64"));
    }
    let phdrs = hdr.program_headers(LE, data).map_err(|_| LoadError::BadElf("program headers lie outside the file"))?;
    let mut segments = Vec::new();
    for (index, ph) in phdrs.iter().enumerate() {
        if ph.p_type(LE) != PT_LOAD || ph.p_memsz(LE) == 0 {
            continue;
        }
        let s = Segment {
            index,
            paddr: ph.p_paddr(LE),
            vaddr: ph.p_vaddr(LE),
            offset: ph.p_offset(LE),
            filesz: ph.p_filesz(LE),
            memsz: ph.p_memsz(LE),
            flags: ph.p_flags(LE),
        };
        if s.filesz > s.memsz {
            return Err(LoadError::BadElf("segment file size exceeds its memory size"));
        }
        if s.offset.checked_add(s.filesz).is_none_or(|end| end > data.len() as u64) {
            return Err(LoadError::SegmentOutsideFile { index });
        }
        if s.paddr.checked_add(s.memsz).is_none() {
            return Err(LoadError::BadElf("segment wraps the address space"));
        }
        segments.push(s);
    }
    if segments.is_empty() {
        return Err(LoadError::NoLoadableSegments);
    }
    for (i, a) in segments.iter().enumerate() {
        for b in &segments[i + 1..] {
            if a.paddr < b.paddr + b.memsz && b.paddr < a.paddr + a.memsz {
                return Err(LoadError::SegmentsOverlap { a: a.index, b: b.index });
            }
        }
    }
    Ok(ElfImage { data, e_entry: hdr.e_entry(LE), segments })
}
