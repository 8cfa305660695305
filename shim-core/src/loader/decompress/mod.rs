//! Kernel payload decompression straight into the kernel's destination: the
//! output buffer is the decoders' history window, so no format needs a
//! workspace as large as its window or dictionary (a zstd window of 128 MiB,
//! an xz dictionary of 32 MiB). Only fixed-size decoder state is allocated.
//!
//! Formats are told apart by their leading bytes, as Xen's
//! `xg_dom_bzimageloader.c` does. Linux appends the uncompressed size as a
//! u32 LE trailer to every format (gzip's ISIZE is that trailer); it sizes the
//! output buffer (`size_hint`), and the output itself is bounded by the buffer.

mod bzip2;
mod gzip;
mod lz4;
pub mod lzma;
mod lzo;
pub mod xz;
pub mod zstd;

use alloc::string::ToString;

use super::error::LoadError;

pub use lz4::LZ4_LEGACY_MAGIC;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Lzo,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lzo => "lzo",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Recognise a compressed stream by its first bytes.
    pub fn detect(data: &[u8]) -> Option<Compression> {
        let starts = |m: &[u8]| data.starts_with(m);
        Some(if starts(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if starts(b"BZh") {
            Compression::Bzip2
        } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if starts(&[0x5d, 0x00]) {
            Compression::Lzma
        } else if starts(&lzo::LZOP_MAGIC[..5]) {
            Compression::Lzo
        } else if starts(&LZ4_LEGACY_MAGIC.to_le_bytes()) {
            Compression::Lz4
        } else {
            return None;
        })
    }
}

/// What a decoder can say is wrong; turned into a `LoadError` naming the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends before `what` is complete.
    Truncated(&'static str),
    /// The stream is malformed: `what` says how.
    Corrupt(&'static str),
    /// The output would not fit in the buffer given (an undersized buffer or a bomb).
    OutputFull,
    /// A checksum in the stream does not match the data.
    Checksum(&'static str),
    /// A valid feature of the format this decoder does not implement.
    Unsupported(&'static str),
    /// A fixed-size allocation for decoder state failed (bytes asked for).
    OutOfMemory(usize),
}

impl DecodeError {
    fn into_load_error(self, c: Compression, out_len: usize) -> LoadError {
        let format = c.name();
        match self {
            DecodeError::Truncated(what) => LoadError::Truncated { what },
            DecodeError::Corrupt(what) => LoadError::Decompress { format, detail: what.to_string() },
            DecodeError::OutputFull => {
                LoadError::TooLarge { what: "decompressed kernel", size: out_len as u64 + 1, limit: out_len as u64 }
            }
            DecodeError::Checksum(what) => LoadError::Checksum { what },
            DecodeError::Unsupported(what) => LoadError::UnsupportedFeature { format, what },
            DecodeError::OutOfMemory(size) => LoadError::OutOfMemory { what: "decoder state", size: size as u64 },
        }
    }
}

/// The last 4 bytes as Linux's u32 LE size trailer.
pub(crate) fn trailer_u32(data: &[u8]) -> Option<u64> {
    let t = data.len().checked_sub(4).and_then(|n| data.get(n..))?;
    Some(u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as u64)
}

/// `data` without Linux's 4-byte size trailer.
fn strip_trailer(data: &[u8]) -> &[u8] {
    &data[..data.len().saturating_sub(4)]
}

/// The decompressed size the stream declares (Linux's trailer, or the legacy
/// lzma header's), to size the output buffer; `None` when it says nothing usable.
pub fn size_hint(c: Compression, data: &[u8]) -> Option<u64> {
    match c {
        Compression::None => Some(data.len() as u64),
        Compression::Lzma => {
            let declared = data.get(5..13).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8])));
            declared.filter(|&d| d != u64::MAX).or_else(|| trailer_u32(data))
        }
        _ => trailer_u32(data),
    }
    .filter(|&n| n > 0)
}

/// Decompress `data` in format `c` into `out`; returns the bytes written.
/// Output that would not fit in `out` is an error (`TooLarge`): a bomb or a
/// lying size.
pub fn decompress_into(c: Compression, data: &[u8], out: &mut [u8]) -> Result<usize, LoadError> {
    let r = match c {
        Compression::None => {
            let dst = out.get_mut(..data.len()).ok_or(DecodeError::OutputFull);
            dst.map(|d| {
                d.copy_from_slice(data);
                data.len()
            })
        }
        Compression::Gzip => gzip::decode(data, out),
        Compression::Lz4 => lz4::decode(data, out),
        Compression::Bzip2 => bzip2::decode(data, out),
        Compression::Lzo => lzo::decode(data, out),
        // Linux's size trailer follows the zstd frames and the xz streams; the
        // legacy lzma header carries its own size (or an end marker).
        Compression::Zstd => zstd::decode(strip_trailer(data), out),
        Compression::Xz => xz::decode(strip_trailer(data), out),
        Compression::Lzma => lzma::decode_lzma_alone(data, out),
    };
    r.map_err(|e| e.into_load_error(c, out.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Some(Compression::Gzip));
        assert_eq!(Compression::detect(b"BZh91AY"), Some(Compression::Bzip2));
        assert_eq!(Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]), Some(Compression::Xz));
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Compression::Zstd));
        assert_eq!(Compression::detect(&[0x5d, 0, 0, 0x80]), Some(Compression::Lzma));
        assert_eq!(Compression::detect(&[0x89, b'L', b'Z', b'O', 0, 0x0d]), Some(Compression::Lzo));
        assert_eq!(Compression::detect(&[0x02, 0x21, 0x4c, 0x18]), Some(Compression::Lz4));
        assert_eq!(Compression::detect(b"\x7fELF"), None);
    }

    #[test]
    fn size_hints() {
        assert_eq!(size_hint(Compression::Gzip, &[1, 2, 3, 4, 0x10, 0, 0, 0]), Some(16));
        assert_eq!(size_hint(Compression::Zstd, &[0, 0, 0]), None);
        let mut lz = vec![0x5d, 0, 0, 0x80, 0, 7, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(size_hint(Compression::Lzma, &lz), Some(7));
        lz[5..13].fill(0xff);
        lz.extend_from_slice(&9u32.to_le_bytes());
        assert_eq!(size_hint(Compression::Lzma, &lz), Some(9));
    }

    #[test]
    fn stored_payload_must_fit() {
        let mut out = [0u8; 4];
        assert_eq!(decompress_into(Compression::None, b"abc", &mut out), Ok(3));
        assert!(matches!(decompress_into(Compression::None, b"abcde", &mut out), Err(LoadError::TooLarge { .. })));
    }
}
