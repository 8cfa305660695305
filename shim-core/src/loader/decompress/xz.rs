//! The xz container: streams, blocks, index, checks and the BCJ x86 filter, decoded in single-call mode.
//!
//! Every block's LZMA2 data is decoded straight into its place in `out` (which is its dictionary); a BCJ x86
//! filter is then undone in place over the finished block, and the block check is computed over the result.
//! Format facts follow "The .xz File Format" specification (version 1.1.0).

use super::lzma::Lzma2Decoder;
use super::DecodeError;
/// CRC-32 (IEEE, as xz, zlib and gzip use it).
use crc32fast::hash as crc32;

/// Stream header magic bytes.
const HEADER_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
/// Stream footer magic bytes.
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
/// Size of the stream header and of the stream footer.
const STREAM_HEADER_SIZE: usize = 12;
/// Filter ID of LZMA2.
const FILTER_LZMA2: u64 = 0x21;
/// Filter ID of the x86 BCJ filter.
const FILTER_X86: u64 = 0x04;
/// Largest LZMA2 dictionary-size property (40 means 4 GiB - 1).
const LZMA2_DICT_PROP_MAX: u8 = 40;
/// Longest variable-length integer, in bytes.
const VLI_MAX_BYTES: usize = 9;

/// Every xz stream in `input` (concatenated, with stream padding) into `out`. Returns bytes written.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let mut lzma2 = Lzma2Decoder::new()?;
    let mut ip = 0;
    let mut op = 0;
    loop {
        let (used, written) = decode_stream(&input[ip..], &mut out[op..], &mut lzma2)?;
        ip += used;
        op += written;
        let padding = input[ip..].iter().take_while(|&&b| b == 0).count();
        if padding % 4 != 0 {
            return Err(DecodeError::Corrupt("xz stream padding not a multiple of four bytes"));
        }
        ip += padding;
        if ip == input.len() {
            return Ok(op);
        }
    }
}

/// The integrity check named in the stream flags.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Crc32,
    Crc64,
}

impl Check {
    /// Parses the two stream-flag bytes.
    fn from_flags(flags: [u8; 2]) -> Result<Self, DecodeError> {
        if flags[0] != 0 || flags[1] & 0xF0 != 0 {
            return Err(DecodeError::Unsupported("xz stream flags"));
        }
        match flags[1] {
            0x00 => Ok(Self::None),
            0x01 => Ok(Self::Crc32),
            0x04 => Ok(Self::Crc64),
            0x0A => Err(DecodeError::Unsupported("xz SHA-256 check")),
            _ => Err(DecodeError::Unsupported("xz check type")),
        }
    }

    /// Size of the check field in bytes.
    fn size(self) -> usize {
        match self {
            Self::None => 0,
            Self::Crc32 => 4,
            Self::Crc64 => 8,
        }
    }

    /// Verifies `stored` (the block's check field) against `data` (the block's uncompressed data).
    fn verify(self, data: &[u8], stored: &[u8]) -> Result<(), DecodeError> {
        let ok = match self {
            Self::None => true,
            Self::Crc32 => stored == crc32(data).to_le_bytes(),
            Self::Crc64 => stored == crc64(data).to_le_bytes(),
        };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::Checksum(match self {
                Self::Crc64 => "xz block CRC64",
                _ => "xz block CRC32",
            }))
        }
    }
}

/// Running summary of the blocks seen, compared against the index.
#[derive(Default, PartialEq, Eq)]
struct RecordSummary {
    count: u64,
    unpadded: u64,
    uncompressed: u64,
    /// Order-sensitive mix of every (unpadded, uncompressed) pair.
    hash: u64,
}

impl RecordSummary {
    /// Adds one block record.
    fn add(&mut self, unpadded: u64, uncompressed: u64) -> Result<(), DecodeError> {
        const OVERFLOW: DecodeError = DecodeError::Corrupt("xz sizes overflow");
        self.count = self.count.checked_add(1).ok_or(OVERFLOW)?;
        self.unpadded = self.unpadded.checked_add(unpadded).ok_or(OVERFLOW)?;
        self.uncompressed = self.uncompressed.checked_add(uncompressed).ok_or(OVERFLOW)?;
        for v in [unpadded, uncompressed] {
            self.hash = (self.hash ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        }
        Ok(())
    }
}

/// Reads the little-endian `u32` at `at` (the caller checked the bounds).
fn le32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

/// Reads a variable-length integer at `*pos` of `buf`, advancing `*pos`.
fn read_vli(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for i in 0..VLI_MAX_BYTES {
        let Some(&b) = buf.get(*pos) else { return Err(DecodeError::Truncated(what)) };
        *pos += 1;
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(DecodeError::Corrupt("xz integer not minimally encoded"));
            }
            return Ok(value);
        }
    }
    Err(DecodeError::Corrupt("xz integer too long"))
}

/// Decodes one stream at the start of `input`. Returns `(input bytes consumed, output bytes written)`.
fn decode_stream(input: &[u8], out: &mut [u8], lzma2: &mut Lzma2Decoder) -> Result<(usize, usize), DecodeError> {
    let Some(header) = input.get(..STREAM_HEADER_SIZE) else {
        return Err(DecodeError::Truncated("xz stream header"));
    };
    if header[..6] != HEADER_MAGIC {
        return Err(DecodeError::Corrupt("xz stream header magic"));
    }
    if crc32(&header[6..8]) != le32(header, 8) {
        return Err(DecodeError::Checksum("xz stream header CRC32"));
    }
    let flags = [header[6], header[7]];
    let check = Check::from_flags(flags)?;
    let mut ip = STREAM_HEADER_SIZE;
    let mut op = 0;
    let mut blocks = RecordSummary::default();
    loop {
        let Some(&size_byte) = input.get(ip) else { return Err(DecodeError::Truncated("xz block header")) };
        if size_byte == 0 {
            break;
        }
        let (used, written) = decode_block(&input[ip..], &mut out[op..], lzma2, check, &mut blocks)?;
        ip += used;
        op += written;
    }
    let index_size = check_index(&input[ip..], &blocks)?;
    ip += index_size;
    let Some(footer) = input.get(ip..ip + STREAM_HEADER_SIZE) else {
        return Err(DecodeError::Truncated("xz stream footer"));
    };
    if footer[10..] != FOOTER_MAGIC {
        return Err(DecodeError::Corrupt("xz stream footer magic"));
    }
    if crc32(&footer[4..10]) != le32(footer, 0) {
        return Err(DecodeError::Checksum("xz stream footer CRC32"));
    }
    if (u64::from(le32(footer, 4)) + 1) * 4 != index_size as u64 {
        return Err(DecodeError::Corrupt("xz backward size does not match the index"));
    }
    if footer[8..10] != flags {
        return Err(DecodeError::Corrupt("xz stream footer flags differ from the header"));
    }
    Ok((ip + STREAM_HEADER_SIZE, op))
}

/// What a block header says about its block.
struct BlockHeader {
    /// Header size in bytes (including its CRC32).
    size: usize,
    compressed: Option<u64>,
    uncompressed: Option<u64>,
    /// Start offset of the BCJ x86 filter, when the chain has one.
    x86_start: Option<u32>,
}

/// Human-readable name of an unsupported filter ID.
fn unsupported_filter(id: u64) -> DecodeError {
    DecodeError::Unsupported(match id {
        0x03 => "xz filter delta",
        0x05 => "xz filter PowerPC BCJ",
        0x06 => "xz filter IA-64 BCJ",
        0x07 => "xz filter ARM BCJ",
        0x08 => "xz filter ARM-Thumb BCJ",
        0x09 => "xz filter SPARC BCJ",
        0x0A => "xz filter ARM64 BCJ",
        0x0B => "xz filter RISC-V BCJ",
        _ => "xz filter unknown ID",
    })
}

/// Parses and verifies the block header at the start of `input` (its first byte is non-zero).
fn parse_block_header(input: &[u8]) -> Result<BlockHeader, DecodeError> {
    let size = (usize::from(input[0]) + 1) * 4;
    let Some(header) = input.get(..size) else { return Err(DecodeError::Truncated("xz block header")) };
    let body = &header[..size - 4];
    if crc32(body) != le32(header, size - 4) {
        return Err(DecodeError::Checksum("xz block header CRC32"));
    }
    let flags = body[1];
    if flags & 0x3C != 0 {
        return Err(DecodeError::Unsupported("xz block flags"));
    }
    let mut pos = 2;
    const SHORT: &str = "xz block header fields";
    let compressed = if flags & 0x40 != 0 { Some(read_vli(body, &mut pos, SHORT)?) } else { None };
    let uncompressed = if flags & 0x80 != 0 { Some(read_vli(body, &mut pos, SHORT)?) } else { None };
    if compressed == Some(0) {
        return Err(DecodeError::Corrupt("xz block compressed size is zero"));
    }
    let filters = usize::from(flags & 0x03) + 1;
    let mut x86_start = None;
    for i in 0..filters {
        let id = read_vli(body, &mut pos, SHORT)?;
        let props_size = read_vli(body, &mut pos, SHORT)?;
        let props = usize::try_from(props_size)
            .ok()
            .and_then(|n| body.get(pos..).and_then(|rest| rest.get(..n)))
            .ok_or(DecodeError::Corrupt("xz filter properties overrun the block header"))?;
        pos += props.len();
        let last = i + 1 == filters;
        match id {
            FILTER_LZMA2 if last => match props {
                [dict] if *dict <= LZMA2_DICT_PROP_MAX => {}
                _ => return Err(DecodeError::Corrupt("xz LZMA2 filter properties")),
            },
            FILTER_LZMA2 => return Err(DecodeError::Corrupt("xz LZMA2 filter not last in the chain")),
            0x03..=0x0B if last => return Err(DecodeError::Corrupt("xz filter chain does not end with LZMA2")),
            FILTER_X86 if x86_start.is_none() => {
                x86_start = Some(match props {
                    [] => 0,
                    [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
                    _ => return Err(DecodeError::Corrupt("xz x86 filter properties")),
                });
            }
            FILTER_X86 => return Err(DecodeError::Unsupported("xz filter chain with two x86 filters")),
            _ => return Err(unsupported_filter(id)),
        }
    }
    if body[pos..].iter().any(|&b| b != 0) {
        return Err(DecodeError::Corrupt("xz block header padding not zero"));
    }
    Ok(BlockHeader { size, compressed, uncompressed, x86_start })
}

/// Decodes the block at the start of `input` into `out`, verifies it and records it in `blocks`.
/// Returns `(input bytes consumed, output bytes written)`.
fn decode_block(
    input: &[u8],
    out: &mut [u8],
    lzma2: &mut Lzma2Decoder,
    check: Check,
    blocks: &mut RecordSummary,
) -> Result<(usize, usize), DecodeError> {
    let header = parse_block_header(input)?;
    let mut data = &input[header.size..];
    if let Some(compressed) = header.compressed {
        match usize::try_from(compressed).ok().and_then(|n| data.get(..n)) {
            Some(d) => data = d,
            None => return Err(DecodeError::Truncated("xz block data")),
        }
    }
    let (used, written) = lzma2.decode(data, out)?;
    if header.compressed.is_some_and(|c| c != used as u64) {
        return Err(DecodeError::Corrupt("xz block compressed size mismatch"));
    }
    if header.uncompressed.is_some_and(|u| u != written as u64) {
        return Err(DecodeError::Corrupt("xz block uncompressed size mismatch"));
    }
    let block_out = &mut out[..written];
    if let Some(start) = header.x86_start {
        bcj_x86_decode(block_out, start);
    }
    let mut ip = header.size + used;
    let padding = (4 - used % 4) % 4;
    let Some(tail) = input.get(ip..).and_then(|rest| rest.get(..padding + check.size())) else {
        return Err(DecodeError::Truncated("xz block padding or check"));
    };
    if tail[..padding].iter().any(|&b| b != 0) {
        return Err(DecodeError::Corrupt("xz block padding not zero"));
    }
    check.verify(block_out, &tail[padding..])?;
    ip += tail.len();
    let unpadded = (header.size + used + check.size()) as u64;
    blocks.add(unpadded, written as u64)?;
    Ok((ip, written))
}

/// Validates the index at the start of `input` against the blocks seen. Returns the index size in bytes.
fn check_index(input: &[u8], blocks: &RecordSummary) -> Result<usize, DecodeError> {
    const SHORT: &str = "xz index";
    let mut pos = 1; // the index indicator, 0x00, was checked by the caller
    let count = read_vli(input, &mut pos, SHORT)?;
    if count != blocks.count {
        return Err(DecodeError::Corrupt("xz index record count does not match the blocks"));
    }
    let mut records = RecordSummary::default();
    for _ in 0..count {
        let unpadded = read_vli(input, &mut pos, SHORT)?;
        let uncompressed = read_vli(input, &mut pos, SHORT)?;
        records.add(unpadded, uncompressed)?;
    }
    if records != *blocks {
        return Err(DecodeError::Corrupt("xz index records do not match the blocks"));
    }
    let padding = (4 - pos % 4) % 4;
    let Some(tail) = input.get(pos..).and_then(|rest| rest.get(..padding + 4)) else {
        return Err(DecodeError::Truncated(SHORT));
    };
    if tail[..padding].iter().any(|&b| b != 0) {
        return Err(DecodeError::Corrupt("xz index padding not zero"));
    }
    pos += padding;
    if crc32(&input[..pos]) != le32(input, pos) {
        return Err(DecodeError::Checksum("xz index CRC32"));
    }
    Ok(pos + 4)
}

/// Undoes the BCJ x86 filter over one whole block, in place; `start` is the filter's start offset.
///
/// E8 (call) and E9 (jmp) opcodes whose 32-bit operand looks like a near address (top byte 0x00 or 0xFF) had
/// the operand turned from relative to absolute by the encoder; this turns it back. `prev_mask` remembers
/// which of the previous bytes were E8/E9 so that overlapping candidates are treated exactly like the encoder
/// did. The last four bytes are never converted.
fn bcj_x86_decode(buf: &mut [u8], start: u32) {
    /// True for the most significant operand bytes the filter converts.
    fn is_ms_byte(b: u8) -> bool {
        b == 0x00 || b == 0xFF
    }
    if buf.len() < 5 {
        return;
    }
    let limit = buf.len() - 5;
    let mut prev_mask: u32 = 0;
    // Position of the last E8/E9 seen; starts "long ago".
    let mut prev_pos: usize = 0;
    let mut seen_any = false;
    let mut i = 0;
    while i <= limit {
        let op = buf[i];
        if op & 0xFE != 0xE8 {
            i += 1;
            continue;
        }
        let gap = if seen_any { i - prev_pos } else { usize::MAX };
        seen_any = true;
        prev_pos = i;
        if gap > 5 {
            prev_mask = 0;
        } else {
            for _ in 0..gap {
                prev_mask = (prev_mask & 0x77) << 1;
            }
        }
        let top = buf[i + 4];
        let status = prev_mask >> 1;
        if is_ms_byte(top) && status <= 4 && status != 3 {
            let mut src = u32::from_le_bytes([buf[i + 1], buf[i + 2], buf[i + 3], top]);
            // Address of the next instruction, as the encoder saw it (wrapping like the 32-bit original).
            let here = start.wrapping_add(i as u32).wrapping_add(5);
            let mut dest;
            loop {
                dest = src.wrapping_sub(here);
                if prev_mask == 0 {
                    break;
                }
                let shift = 24 - 8 * [0, 1, 2, 2, 3][status as usize];
                if !is_ms_byte((dest >> shift) as u8) {
                    break;
                }
                src = dest ^ ((1u64 << (shift + 8)) - 1) as u32;
            }
            // Sign-extend bit 24 into the top byte.
            let dest = (dest & 0x00FF_FFFF) | if dest & 0x0100_0000 != 0 { 0xFF00_0000 } else { 0 };
            buf[i + 1..i + 5].copy_from_slice(&dest.to_le_bytes());
            i += 5;
            prev_mask = 0;
        } else {
            i += 1;
            prev_mask |= 1;
            if is_ms_byte(top) {
                prev_mask |= 0x10;
            }
        }
    }
}

/// Builds the reflected CRC table for `poly` at compile time.
const fn crc_table<const N: usize>(poly: u64) -> [u64; N] {
    let mut table = [0u64; N];
    let mut i = 0;
    while i < N {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-64 (ECMA-182, reflected 0xC96C5795D7870F42) table.
static CRC64_TABLE: [u64; 256] = crc_table::<256>(0xC96C_5795_D787_0F42);

/// CRC-64 (ECMA-182) of `data` as used by xz.
pub fn crc64(data: &[u8]) -> u64 {
    let mut crc = u64::MAX;
    for &b in data {
        crc = CRC64_TABLE[usize::from(crc as u8 ^ b)] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }
}
