//! The PV kernel loader: from the file an operator has (bzImage, gzipped
//! ELF, plain ELF) to a checked description of what to place where, as
//! Xen's libelf and `xg_dom_bzimageloader.c` do.

pub mod container;
pub mod decompress;
pub mod elf;
pub mod error;
pub mod notes;

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

pub use container::Container;
pub use decompress::Compression;
pub use elf::{ElfImage, Segment};
pub use error::LoadError;
pub use notes::{NoteSource, XenNotes};

use crate::abi::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START, PAGE_SIZE};

/// Where the kernel goes, computed as `elf_xen_addr_calc_check` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelParams {
    /// VA of pseudo-physical 0.
    pub virt_base: u64,
    /// `virt_base - paddr_offset`: added to `p_paddr` to get a segment's VA.
    pub virt_offset: u64,
    /// `[virt_kstart, virt_kend)`: the image, bss included.
    pub virt_kstart: u64,
    pub virt_kend: u64,
    pub entry: u64,
    pub hypercall_page: Option<u64>,
    /// VA for the P2M list outside the initial mapping (INIT_P2M), when usable.
    pub init_p2m: Option<u64>,
    /// The kernel takes its initrd as an unmapped PFN range.
    pub mod_start_pfn: bool,
}

/// A kernel ready to be laid out.
#[derive(Clone)]
pub struct Kernel<'a> {
    pub container: Container,
    pub compression: Compression,
    /// The ELF bytes (borrowed when the file was a plain ELF).
    pub elf_bytes: Cow<'a, [u8]>,
    pub e_entry: u64,
    pub segments: Vec<Segment>,
    pub notes: XenNotes,
    pub params: KernelParams,
}

impl fmt::Debug for Kernel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the ELF bytes: tens of MiB.
        f.debug_struct("Kernel")
            .field("container", &self.container)
            .field("compression", &self.compression)
            .field("elf_len", &self.elf_bytes.len())
            .field("segments", &self.segments)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Kernel<'_> {
    /// The bytes of one segment, for copying into guest memory.
    pub fn segment_data(&self, s: &Segment) -> &[u8] {
        &self.elf_bytes[s.offset as usize..(s.offset + s.filesz) as usize]
    }
}

/// Compute and check the layout parameters.
pub fn params(e_entry: u64, segments: &[Segment], n: &XenNotes) -> Result<KernelParams, LoadError> {
    let legacy = n.source == Some(NoteSource::XenGuestSection);
    let virt_base = n.virt_base.unwrap_or(0);
    // Without PADDR_OFFSET: 0 with notes, VIRT_BASE with __xen_guest.
    let paddr_offset = n.paddr_offset.unwrap_or(if legacy { virt_base } else { 0 });
    let virt_offset = virt_base.wrapping_sub(paddr_offset);
    let pstart = segments.iter().map(|s| s.paddr).min().ok_or(LoadError::NoLoadableSegments)?;
    let pend = segments.iter().map(|s| s.paddr + s.memsz).max().unwrap();
    let virt_kstart = pstart.wrapping_add(virt_offset);
    let virt_kend = pend.wrapping_add(virt_offset);
    if virt_kend < virt_kstart {
        return Err(LoadError::BadLayout("the image wraps the address space"));
    }
    if virt_base > virt_kstart {
        return Err(LoadError::BadLayout("VIRT_BASE lies above the start of the image"));
    }
    if virt_kstart < HYPERVISOR_VIRT_END && virt_kend > HYPERVISOR_VIRT_START {
        return Err(LoadError::BadLayout("the image overlaps the hypervisor's reserved range"));
    }
    let entry = n.entry.unwrap_or(e_entry);
    if entry < virt_kstart || entry >= virt_kend {
        return Err(LoadError::EntryOutsideImage { entry, start: virt_kstart, end: virt_kend });
    }
    let hypercall_page = n.hypercall_page.filter(|&h| h != u64::MAX);
    if let Some(h) = hypercall_page {
        if h % PAGE_SIZE != 0 || h < virt_kstart || h.saturating_add(PAGE_SIZE) > virt_kend {
            return Err(LoadError::HypercallPageOutsideImage { va: h });
        }
    }
    // INIT_P2M must be page-aligned and below VIRT_BASE, else the P2M goes in the mapping.
    let init_p2m = n.init_p2m.filter(|&p| p % PAGE_SIZE == 0 && p < virt_base);
    Ok(KernelParams {
        virt_base,
        virt_offset,
        virt_kstart,
        virt_kend,
        entry,
        hypercall_page,
        init_p2m,
        mod_start_pfn: n.mod_start_pfn,
    })
}

/// How many bytes of output buffer `load_into` needs for `file`: `None` when
/// the payload is not compressed (the ELF is used where it lies), else the
/// size the payload declares. A payload that declares nothing cannot be sized.
pub fn output_size(file: &[u8]) -> Result<Option<u64>, LoadError> {
    let payload = container::open(file)?;
    match payload.compression {
        Compression::None => Ok(None),
        c => decompress::size_hint(c, payload.data)
            .map(Some)
            .ok_or(LoadError::Decompress { format: c.name(), detail: "the payload declares no size".into() }),
    }
}

/// Open, decompress into `out` (the output buffer is the decoder's window; no
/// other workspace) and check a kernel image of at most `limit` bytes.
pub fn load_into<'a>(file: &'a [u8], out: &'a mut [u8], limit: u64) -> Result<Kernel<'a>, LoadError> {
    let payload = container::open(file)?;
    let elf_bytes: Cow<[u8]> = match payload.compression {
        Compression::None => Cow::Borrowed(payload.data),
        c => {
            let n = decompress::decompress_into(c, payload.data, out)?;
            Cow::Borrowed(&out[..n])
        }
    };
    finish(payload.container, payload.compression, elf_bytes, limit)
}

/// `load_into` with an output buffer of the declared size, allocated here
/// (host tools and tests; the firmware decompresses into guest memory).
pub fn load(file: &[u8], limit: u64) -> Result<Kernel<'_>, LoadError> {
    let Some(size) = output_size(file)? else {
        return load_into(file, &mut [], limit);
    };
    if size > limit {
        return Err(LoadError::TooLarge { what: "decompressed kernel", size, limit });
    }
    let mut out = Vec::new();
    out.try_reserve_exact(size as usize)
        .map_err(|_| LoadError::OutOfMemory { what: "the decompressed kernel", size })?;
    out.resize(size as usize, 0);
    let payload = container::open(file)?;
    let n = decompress::decompress_into(payload.compression, payload.data, &mut out)?;
    out.truncate(n);
    finish(payload.container, payload.compression, Cow::Owned(out), limit)
}

fn finish(
    container: Container,
    compression: Compression,
    elf_bytes: Cow<'_, [u8]>,
    limit: u64,
) -> Result<Kernel<'_>, LoadError> {
    let (e_entry, segments, notes) = {
        let elf = elf::parse(&elf_bytes)?;
        let notes = notes::read(&elf)?;
        (elf.e_entry, elf.segments, notes)
    };
    notes::check(&notes)?;
    let params = params(e_entry, &segments, &notes)?;
    let size = params.virt_kend - params.virt_kstart;
    if size > limit {
        return Err(LoadError::TooLarge { what: "kernel image", size, limit });
    }
    Ok(Kernel { container, compression, elf_bytes, e_entry, segments, notes, params })
}
