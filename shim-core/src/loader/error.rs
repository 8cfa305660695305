//! Everything that can be wrong with a kernel image, as values with a clear
//! one-line message. The loader never panics on bad input.

use alloc::string::String;
use core::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The input ends before `what` is complete.
    Truncated {
        what: &'static str,
    },
    /// Not gzip, bzImage or ELF.
    UnknownFormat {
        head: [u8; 4],
    },
    /// A bzImage older than boot protocol 2.08 (no payload fields).
    OldBzImage {
        version: u16,
    },
    /// A compression format Cocoon does not decode.
    UnsupportedCompression(&'static str),
    /// The compressed stream is corrupt.
    Decompress {
        format: &'static str,
        detail: String,
    },
    /// A checksum in the image does not match its data: the file is damaged.
    Checksum {
        what: &'static str,
    },
    /// A valid feature of a compression format that Cocoon's decoder lacks.
    UnsupportedFeature {
        format: &'static str,
        what: &'static str,
    },
    /// Decompressed output would exceed the limit (guest memory): a decompression bomb.
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    /// Cocoon could not allocate a buffer of `size` bytes for `what`.
    OutOfMemory {
        what: &'static str,
        size: u64,
    },
    /// The decompressed payload is not an ELF file.
    PayloadNotElf,
    /// A 32-bit (PAE) PV kernel.
    Elf32Unsupported,
    /// Not an x86-64 little-endian executable.
    WrongElf(&'static str),
    /// A structural problem in the ELF file.
    BadElf(&'static str),
    NoLoadableSegments,
    SegmentOutsideFile {
        index: usize,
    },
    SegmentsOverlap {
        a: usize,
        b: usize,
    },
    /// No Xen notes and no `__xen_guest` section: not a PV kernel.
    NotXenKernel,
    BadNote {
        note: u32,
        detail: &'static str,
    },
    BadXenGuestString(&'static str),
    /// A check of `elf_xen_addr_calc_check` failed.
    BadLayout(&'static str),
    EntryOutsideImage {
        entry: u64,
        start: u64,
        end: u64,
    },
    HypercallPageOutsideImage {
        va: u64,
    },
    /// The kernel requires a feature Cocoon cannot provide.
    RequiredFeature(&'static str),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LoadError::*;
        match self {
            Truncated { what } => write!(f, "truncated kernel image: {what} is incomplete"),
            UnknownFormat { head } => write!(
                f,
                "unknown kernel format (starts {:02x} {:02x} {:02x} {:02x}; expected ELF, gzip or bzImage)",
                head[0], head[1], head[2], head[3]
            ),
            OldBzImage { version } => write!(
                f,
                "bzImage boot protocol {}.{:02} is too old (2.08 or newer carries the payload)",
                version >> 8,
                version & 0xff
            ),
            UnsupportedCompression(c) => write!(f, "{c}-compressed kernels are not supported"),
            Decompress { format, detail } => write!(f, "corrupt {format} data: {detail}"),
            Checksum { what } => write!(f, "the kernel image is damaged: its {what} does not match"),
            UnsupportedFeature { format, what } => write!(f, "{format} kernel uses {what}, which Cocoon cannot decode"),
            TooLarge { what, size, limit } => {
                write!(f, "{what} is larger than the {limit} bytes available (at least {size} bytes)")
            }
            OutOfMemory { what, size } => write!(f, "out of memory: no room for {size} bytes of {what}"),
            PayloadNotElf => write!(f, "the decompressed kernel is not an ELF file"),
            Elf32Unsupported => write!(f, "32-bit (PAE) PV kernels are not supported yet; only 64-bit PV kernels run"),
            WrongElf(w) => write!(f, "not a 64-bit x86 PV kernel: {w}"),
            BadElf(w) => write!(f, "malformed ELF: {w}"),
            NoLoadableSegments => write!(f, "the kernel ELF has no loadable segments"),
            SegmentOutsideFile { index } => write!(f, "ELF segment {index} lies outside the file"),
            SegmentsOverlap { a, b } => write!(f, "ELF segments {a} and {b} overlap"),
            NotXenKernel => write!(f, "not a Xen PV kernel: no Xen ELF notes and no __xen_guest section"),
            BadNote { note, detail } => write!(f, "bad Xen ELF note {note}: {detail}"),
            BadXenGuestString(w) => write!(f, "bad __xen_guest string: {w}"),
            BadLayout(w) => write!(f, "bad kernel layout: {w}"),
            EntryOutsideImage { entry, start, end } => {
                write!(f, "entry point {entry:#x} lies outside the kernel image {start:#x}-{end:#x}")
            }
            HypercallPageOutsideImage { va } => write!(f, "hypercall page {va:#x} lies outside the kernel image"),
            RequiredFeature(name) => {
                write!(f, "the kernel requires Xen feature '{name}', which Cocoon does not provide")
            }
        }
    }
}
