//! Kernel payload decompression, every format with an output limit so a
//! decompression bomb is an error rather than an exhausted machine.
//!
//! Formats are told apart by their leading bytes, as Xen's
//! `xg_dom_bzimageloader.c` does. Linux appends the uncompressed size as a
//! u32 LE trailer to every format but gzip (whose ISIZE plays that role);
//! it sizes the output buffer and is checked against the limit first.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::error::LoadError;

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
        } else if starts(&[0x89, b'L', b'Z', b'O', 0]) {
            Compression::Lzo
        } else if starts(&LZ4_LEGACY_MAGIC.to_le_bytes()) {
            Compression::Lz4
        } else {
            return None;
        })
    }
}

/// `lz4 -l` legacy frame magic.
pub const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Largest block of the legacy frame format.
const LZ4_LEGACY_BLOCK_SIZE: usize = 8 << 20;

fn trailer_u32(data: &[u8]) -> Option<u64> {
    let n = data.len();
    (n >= 4).then(|| u32::from_le_bytes(data[n - 4..].try_into().unwrap()) as u64)
}

/// Room for `additional` more bytes, or a clean error (no allocation may panic:
/// the firmware decompresses into a bounded arena).
fn reserve(v: &mut Vec<u8>, additional: usize) -> Result<(), LoadError> {
    v.try_reserve_exact(additional)
        .map_err(|_| LoadError::OutOfMemory { what: "the decompressed kernel", size: (v.len() + additional) as u64 })
}

/// An output buffer sized from the declared length, never past `limit`.
fn output_for(declared: Option<u64>, limit: u64, what: &'static str) -> Result<Vec<u8>, LoadError> {
    let mut v = Vec::new();
    match declared {
        Some(d) if d > limit => return Err(LoadError::TooLarge { what, size: d, limit }),
        Some(d) => reserve(&mut v, d as usize)?,
        None => {}
    }
    Ok(v)
}

fn corrupt(format: &'static str, detail: impl core::fmt::Debug) -> LoadError {
    LoadError::Decompress { format, detail: format!("{detail:?}") }
}

/// Decompress `data` in format `c` into at most `limit` bytes.
pub fn decompress(c: Compression, data: &[u8], limit: u64) -> Result<Vec<u8>, LoadError> {
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => gunzip(data, limit),
        Compression::Lz4 => lz4_legacy(data, limit),
        Compression::Zstd => zstd(data, limit),
        Compression::Xz => xz(data, limit),
        Compression::Lzma => lzma(data, limit),
        Compression::Bzip2 | Compression::Lzo => Err(LoadError::UnsupportedCompression(c.name())),
    }
}

// gzip header flags (RFC 1952).
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;

/// A gzip member: header (RFC 1952), raw deflate, CRC32 and ISIZE trailer.
pub fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>, LoadError> {
    let trunc = LoadError::Truncated { what: "gzip header" };
    if data.len() < 18 || data[2] != 8 {
        return Err(if data.len() < 18 { trunc } else { corrupt("gzip", "compression method is not deflate") });
    }
    let flags = data[3];
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = u16::from_le_bytes(data.get(pos..pos + 2).ok_or(trunc.clone())?.try_into().unwrap()) as usize;
        pos += 2 + xlen;
    }
    for f in [FNAME, FCOMMENT] {
        if flags & f != 0 {
            let nul = data.get(pos..).and_then(|d| d.iter().position(|&b| b == 0)).ok_or(trunc.clone())?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    if pos + 8 > data.len() {
        return Err(trunc);
    }
    let isize = trailer_u32(data);
    // ISIZE is the size modulo 2^32: only a hint for the first buffer.
    let mut out = output_for(isize.filter(|&n| n <= limit), limit, "decompressed kernel")?;
    inflate_raw(&data[pos..], &mut out, limit)?;
    Ok(out)
}

/// Raw deflate into `out`, growing it (fallibly) up to `limit` bytes.
fn inflate_raw(input: &[u8], out: &mut Vec<u8>, limit: u64) -> Result<(), LoadError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let mut state = alloc::boxed::Box::<DecompressorOxide>::default();
    let (mut in_pos, mut out_pos) = (0usize, 0usize);
    loop {
        if out_pos == out.len() {
            if out.len() as u64 >= limit {
                return Err(LoadError::TooLarge { what: "decompressed kernel", size: limit + 1, limit });
            }
            let new_len = (out.len().max(32 << 10) * 2).min(limit as usize);
            if new_len > out.capacity() {
                reserve(out, new_len - out.len())?;
            }
            out.resize(new_len, 0);
        }
        let (status, consumed, written) = decompress(
            &mut state,
            &input[in_pos..],
            out,
            out_pos,
            inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        in_pos += consumed;
        out_pos += written;
        match status {
            TINFLStatus::Done => {
                out.truncate(out_pos);
                return Ok(());
            }
            TINFLStatus::HasMoreOutput => continue,
            TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                return Err(LoadError::Truncated { what: "gzip stream" })
            }
            other => return Err(corrupt("gzip", other)),
        }
    }
}

/// LZ4 legacy framing (`lz4 -l`, as Linux's bzImage uses): magic, then
/// `[u32 LE length][block]` repeated; a repeated magic starts a new stream.
/// The last 4 bytes are Linux's size trailer, not a block.
pub fn lz4_legacy(data: &[u8], limit: u64) -> Result<Vec<u8>, LoadError> {
    if data.len() < 8 {
        return Err(LoadError::Truncated { what: "lz4 stream" });
    }
    let mut out = output_for(trailer_u32(data), limit, "decompressed kernel")?;
    let end = data.len() - 4;
    let mut pos = 4;
    while pos + 4 <= end {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
        pos += 4;
        if len == LZ4_LEGACY_MAGIC {
            continue;
        }
        let len = len as usize;
        let block = data.get(pos..pos + len).filter(|_| pos + len <= end);
        let block = block.ok_or(LoadError::Truncated { what: "lz4 block" })?;
        pos += len;
        let start = out.len();
        let room = (limit as usize).saturating_sub(start).min(LZ4_LEGACY_BLOCK_SIZE);
        // Grow by what this block may need, not by doubling: a kernel is tens of MiB.
        if out.capacity() < start + room {
            let more = start + room - out.len();
            reserve(&mut out, more)?;
        }
        out.resize(start + room, 0);
        match lz4_flex::block::decompress_into(block, &mut out[start..]) {
            Ok(n) => out.truncate(start + n),
            Err(lz4_flex::block::DecompressError::OutputTooSmall { expected, .. }) if room < LZ4_LEGACY_BLOCK_SIZE => {
                return Err(LoadError::TooLarge { what: "decompressed kernel", size: (start + expected) as u64, limit })
            }
            Err(e) => return Err(corrupt("lz4", e)),
        }
    }
    Ok(out)
}

fn zstd(data: &[u8], limit: u64) -> Result<Vec<u8>, LoadError> {
    let declared = trailer_u32(data);
    let _ = output_for(declared, limit, "decompressed kernel")?;
    // The frames end where the trailer begins; decode into a buffer bounded by the limit.
    let body = &data[..data.len().saturating_sub(4)];
    let cap = declared.map_or(limit, |d| d.min(limit)) as usize;
    let mut out = Vec::new();
    reserve(&mut out, cap)?;
    out.resize(cap, 0);
    let mut dec = ruzstd::decoding::FrameDecoder::new();
    match dec.decode_all(body, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(ruzstd::decoding::errors::FrameDecoderError::TargetTooSmall) => {
            Err(LoadError::TooLarge { what: "decompressed kernel", size: cap as u64 + 1, limit })
        }
        Err(e) => Err(corrupt("zstd", e)),
    }
}

/// Drain a reader into a vector, refusing to grow past `limit`.
fn read_limited<R: lzma_rust2::Read>(
    mut r: R,
    mut out: Vec<u8>,
    limit: u64,
    format: &'static str,
) -> Result<Vec<u8>, LoadError> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut chunk).map_err(|e| corrupt(format, e))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() as u64 + n as u64 > limit {
            return Err(LoadError::TooLarge { what: "decompressed kernel", size: (out.len() + n) as u64, limit });
        }
        if out.capacity() < out.len() + n {
            let grow = (out.len() + n).max(out.len() * 2).min(limit as usize) - out.len();
            let grow = grow.max(n);
            reserve(&mut out, grow)?;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

fn xz(data: &[u8], limit: u64) -> Result<Vec<u8>, LoadError> {
    let out = output_for(trailer_u32(data), limit, "decompressed kernel")?;
    let body = &data[..data.len().saturating_sub(4)];
    read_limited(lzma_rust2::XzReader::new(body, false), out, limit, "xz")
}

fn lzma(data: &[u8], limit: u64) -> Result<Vec<u8>, LoadError> {
    if data.len() < 13 {
        return Err(LoadError::Truncated { what: "lzma header" });
    }
    let declared = u64::from_le_bytes(data[5..13].try_into().unwrap());
    // u64::MAX means "unknown size"; fall back to Linux's trailer.
    let hint = if declared == u64::MAX { trailer_u32(data) } else { Some(declared) };
    let out = output_for(hint, limit, "decompressed kernel")?;
    // No memory limit here: the dictionary grows with the output, which `limit` bounds.
    let reader = lzma_rust2::LzmaReader::new_mem_limit(data, u32::MAX, None).map_err(|e| corrupt("lzma", e))?;
    read_limited(reader, out, limit, "lzma")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lz4_frame(payload: &[u8], blocks: usize) -> Vec<u8> {
        let mut f = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for chunk in payload.chunks(payload.len().div_ceil(blocks)) {
            let b = lz4_flex::block::compress(chunk);
            f.extend_from_slice(&(b.len() as u32).to_le_bytes());
            f.extend_from_slice(&b);
        }
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f
    }

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
    fn lz4_roundtrip_multi_block_and_concatenated() {
        let payload: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut f = lz4_frame(&payload[..600_000], 3);
        f.truncate(f.len() - 4);
        // A second stream, introduced by a stray magic word.
        let g = lz4_frame(&payload[600_000..], 2);
        f.extend_from_slice(&g);
        let n = f.len();
        f[n - 4..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        assert_eq!(lz4_legacy(&f, 1 << 30).unwrap(), payload);
    }

    #[test]
    fn lz4_bomb_is_refused_by_trailer_and_by_output() {
        let payload = vec![0u8; 1 << 20];
        let f = lz4_frame(&payload, 1);
        assert!(matches!(lz4_legacy(&f, 1000), Err(LoadError::TooLarge { .. })));
        // A lying trailer does not help: the output itself is bounded.
        let mut g = f.clone();
        let n = g.len();
        g[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert!(matches!(lz4_legacy(&g, 4096), Err(LoadError::TooLarge { .. })));
    }

    #[test]
    fn lz4_truncated_block() {
        let f = lz4_frame(&[7u8; 5000], 1);
        let mut t = f[..f.len() - 10].to_vec();
        t.extend_from_slice(&5000u32.to_le_bytes());
        assert_eq!(lz4_legacy(&t, 1 << 20), Err(LoadError::Truncated { what: "lz4 block" }));
    }

    #[test]
    fn lz4_corrupt_block() {
        let mut f = lz4_frame(&[7u8; 5000], 1);
        f[8] = 0xff; // token claims a huge literal run
        f[9] = 0xff;
        assert!(matches!(
            lz4_legacy(&f, 1 << 20),
            Err(LoadError::Decompress { format: "lz4", .. }) | Err(LoadError::Truncated { .. })
        ));
    }

    fn gzip_of(payload: &[u8], name: Option<&[u8]>) -> Vec<u8> {
        let mut g = vec![0x1f, 0x8b, 8, if name.is_some() { FNAME } else { 0 }, 0, 0, 0, 0, 0, 3];
        if let Some(n) = name {
            g.extend_from_slice(n);
            g.push(0);
        }
        g.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(payload, 6));
        g.extend_from_slice(&[0; 4]); // CRC (not checked)
        g.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        g
    }

    #[test]
    fn gzip_roundtrip_with_name() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        assert_eq!(gunzip(&gzip_of(&payload, Some(b"vmlinux")), 1 << 20).unwrap(), payload);
    }

    #[test]
    fn gzip_bomb_and_truncation() {
        let g = gzip_of(&vec![0u8; 1 << 20], None);
        assert!(matches!(gunzip(&g, 4096), Err(LoadError::TooLarge { .. })));
        assert!(matches!(gunzip(&g[..12], 1 << 30), Err(LoadError::Truncated { .. })));
        let mut bad = g.clone();
        bad[2] = 9;
        assert!(matches!(gunzip(&bad, 1 << 30), Err(LoadError::Decompress { .. })));
        let mut name_unterminated = vec![0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 3];
        name_unterminated.extend_from_slice(&[b'a'; 20]);
        assert!(matches!(gunzip(&name_unterminated, 1 << 30), Err(LoadError::Truncated { .. })));
    }

    #[test]
    fn unsupported_formats_are_named() {
        let e = decompress(Compression::Bzip2, b"BZh9", 100).unwrap_err();
        assert_eq!(e.to_string(), "bzip2-compressed kernels are not supported");
        assert!(decompress(Compression::Lzo, b"\x89LZO\0", 100).unwrap_err().to_string().contains("lzo"));
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let junk = [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0];
        assert!(decompress(Compression::Xz, &junk, 1 << 20).is_err());
        let junk = [0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(decompress(Compression::Zstd, &junk, 1 << 20).is_err());
        let junk = [0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(decompress(Compression::Lzma, &junk, 1 << 20).is_err());
    }
}
