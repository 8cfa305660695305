//! Zstandard frames and blocks (RFC 8878 §3.1.1): frame header, block loop, content size and
//! content checksum checks.

use alloc::boxed::Box;

use super::execute::Cursor;
use super::huffman::HufTable;
use super::sequences::SeqTables;
use super::{alloc_array, literals, xxhash, DecodeError};

/// Largest block size of any frame (RFC 8878 §3.1.1.2.3, 128 KiB).
pub const MAX_BLOCK: usize = 128 * 1024;

/// The fields of a frame header that decoding needs (RFC 8878 §3.1.1.1).
struct FrameHeader {
    window_size: u64,
    content_size: Option<u64>,
    has_checksum: bool,
    len: usize,
}

/// Reads a little-endian unsigned integer of up to 8 bytes.
fn le_uint(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Window_Size from a Window_Descriptor (RFC 8878 §3.1.1.1.2).
fn window_size(descriptor: u8) -> u64 {
    let base = 1u64 << (10 + u32::from(descriptor >> 3));
    base + (base / 8) * u64::from(descriptor & 7)
}

/// Parses the frame header that follows the magic number (RFC 8878 §3.1.1.1).
fn parse_header(src: &[u8]) -> Result<FrameHeader, DecodeError> {
    let fhd = *src.first().ok_or(DecodeError::Truncated("zstd frame header"))?;
    if fhd & 0x08 != 0 {
        return Err(DecodeError::Corrupt("zstd frame header reserved bit set"));
    }
    let single_segment = fhd & 0x20 != 0;
    let fcs_len = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let did_len = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let wd_len = usize::from(!single_segment);
    let len = 1 + wd_len + did_len + fcs_len;
    let header = src.get(..len).ok_or(DecodeError::Truncated("zstd frame header"))?;
    let (wd, rest) = header[1..].split_at(wd_len);
    let (did, fcs) = rest.split_at(did_len);
    if le_uint(did) != 0 {
        return Err(DecodeError::Unsupported("zstd dictionary"));
    }
    let content_size = match fcs_len {
        0 => None,
        2 => Some(le_uint(fcs) + 256),
        _ => Some(le_uint(fcs)),
    };
    let window = match (wd.first(), content_size) {
        (Some(&d), _) => window_size(d),
        (None, Some(size)) => size,
        (None, None) => 0,
    };
    Ok(FrameHeader { window_size: window, content_size, has_checksum: fhd & 0x04 != 0, len })
}

/// Decoder state that persists across the blocks of a frame: the Huffman table, the sequence
/// tables, and the buffer for RLE and Huffman literals. Its size does not depend on the window.
pub struct FrameDecoder {
    huf: HufTable,
    seq: SeqTables,
    lits: Box<[u8; MAX_BLOCK]>,
}

impl FrameDecoder {
    /// Allocates the decoder state (about 146 KiB).
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self { huf: HufTable::new()?, seq: SeqTables::new()?, lits: alloc_array(0u8)? })
    }

    /// Decodes the frame whose header starts `src` (just after the magic number) into
    /// `out[start..]`. Returns the input bytes used and the end of the frame's output.
    pub fn decode_frame(&mut self, src: &[u8], out: &mut [u8], start: usize) -> Result<(usize, usize), DecodeError> {
        let header = parse_header(src)?;
        if let Some(size) = header.content_size {
            if size > (out.len() - start) as u64 {
                return Err(DecodeError::OutputFull);
            }
        }
        let block_max = header.window_size.min(MAX_BLOCK as u64) as usize;
        self.huf.reset();
        self.seq.reset();
        let mut cur = Cursor::new(start);
        let mut at = header.len;
        loop {
            let bh = src.get(at..at + 3).ok_or(DecodeError::Truncated("zstd block header"))?;
            let bh = le_uint(bh) as usize;
            at += 3;
            let (last, block_type, size) = (bh & 1 != 0, (bh >> 1) & 3, bh >> 3);
            if size > block_max {
                return Err(DecodeError::Corrupt("zstd block larger than the block maximum"));
            }
            at += self.decode_block(block_type, size, src.get(at..).unwrap_or(&[]), out, &mut cur, block_max)?;
            if last {
                break;
            }
        }
        let content = &out[start..cur.pos];
        if header.content_size.is_some_and(|size| size != content.len() as u64) {
            return Err(DecodeError::Corrupt("zstd frame content size mismatch"));
        }
        if header.has_checksum {
            let stored = src.get(at..at + 4).ok_or(DecodeError::Truncated("zstd content checksum"))?;
            at += 4;
            if le_uint(stored) as u32 != xxhash::xxh64(content) as u32 {
                return Err(DecodeError::Checksum("zstd content checksum"));
            }
        }
        Ok((at, cur.pos))
    }

    /// Decodes one block (RFC 8878 §3.1.1.2) of Block_Type `block_type` and Block_Size `size`
    /// whose content starts `src`; returns the input bytes used.
    fn decode_block(
        &mut self,
        block_type: usize,
        size: usize,
        src: &[u8],
        out: &mut [u8],
        cur: &mut Cursor,
        block_max: usize,
    ) -> Result<usize, DecodeError> {
        match block_type {
            0 => {
                let data = src.get(..size).ok_or(DecodeError::Truncated("zstd raw block"))?;
                cur.copy_literals(out, data)?;
                Ok(size)
            }
            1 => {
                let byte = *src.first().ok_or(DecodeError::Truncated("zstd RLE block"))?;
                let dst = out.get_mut(cur.pos..cur.pos + size).ok_or(DecodeError::OutputFull)?;
                dst.fill(byte);
                cur.pos += size;
                Ok(1)
            }
            2 => {
                let data = src.get(..size).ok_or(DecodeError::Truncated("zstd compressed block"))?;
                let block_start = cur.pos;
                let (lits, used) = literals::decode(data, &mut self.huf, &mut self.lits[..], block_max)?;
                let seq = data.get(used..).ok_or(DecodeError::Truncated("zstd sequences section"))?;
                self.seq.decode_and_execute(seq, lits, out, cur)?;
                if cur.pos - block_start > block_max {
                    return Err(DecodeError::Corrupt("zstd block decodes past the block maximum"));
                }
                Ok(size)
            }
            _ => Err(DecodeError::Corrupt("zstd reserved block type")),
        }
    }
}
