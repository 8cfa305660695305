//! Literals section of a compressed block (RFC 8878 §3.1.1.3.1).

use super::huffman::HufTable;
use super::DecodeError;

/// Literals_Block_Type values (RFC 8878 §3.1.1.3.1.1).
const RAW: u8 = 0;
const RLE: u8 = 1;
const COMPRESSED: u8 = 2;

/// Sizes read from a literals section header.
struct Header {
    block_type: u8,
    regenerated: usize,
    compressed: usize,
    four_streams: bool,
    len: usize,
}

/// Reads the literals section header (RFC 8878 §3.1.1.3.1.1). `compressed` is meaningless for raw
/// and RLE literals.
fn read_header(src: &[u8]) -> Result<Header, DecodeError> {
    let b0 = *src.first().ok_or(DecodeError::Truncated("zstd literals header"))?;
    let block_type = b0 & 3;
    let size_format = (b0 >> 2) & 3;
    let byte = |i: usize| src.get(i).map(|&b| b as usize).ok_or(DecodeError::Truncated("zstd literals header"));
    if block_type == RAW || block_type == RLE {
        let (regenerated, len) = match size_format {
            0 | 2 => (usize::from(b0 >> 3), 1),
            1 => (usize::from(b0 >> 4) + (byte(1)? << 4), 2),
            _ => (usize::from(b0 >> 4) + (byte(1)? << 4) + (byte(2)? << 12), 3),
        };
        return Ok(Header { block_type, regenerated, compressed: 0, four_streams: false, len });
    }
    let (len, bits) = match size_format {
        0 | 1 => (3, 10),
        2 => (4, 14),
        _ => (5, 18),
    };
    let mut h: u64 = 0;
    for i in 0..len {
        h |= (byte(i)? as u64) << (8 * i);
    }
    let mask = (1u64 << bits) - 1;
    let regenerated = ((h >> 4) & mask) as usize;
    let compressed = ((h >> (4 + bits)) & mask) as usize;
    Ok(Header { block_type, regenerated, compressed, four_streams: size_format != 0, len })
}

/// Decodes the literals section at the start of `src`. Raw literals are returned in place;
/// RLE and Huffman literals are written to `buf`. Returns the literals and the bytes used.
pub fn decode<'a>(
    src: &'a [u8],
    huf: &mut HufTable,
    buf: &'a mut [u8],
    block_max: usize,
) -> Result<(&'a [u8], usize), DecodeError> {
    let h = read_header(src)?;
    if h.regenerated > block_max {
        return Err(DecodeError::Corrupt("zstd literals larger than the block maximum"));
    }
    let body = src.get(h.len..).ok_or(DecodeError::Truncated("zstd literals"))?;
    match h.block_type {
        RAW => {
            let lits = body.get(..h.regenerated).ok_or(DecodeError::Truncated("zstd raw literals"))?;
            Ok((lits, h.len + h.regenerated))
        }
        RLE => {
            let byte = *body.first().ok_or(DecodeError::Truncated("zstd RLE literals"))?;
            let out = buf.get_mut(..h.regenerated).ok_or(DecodeError::Corrupt("zstd literals too large"))?;
            out.fill(byte);
            Ok((out, h.len + 1))
        }
        _ => {
            let data = body.get(..h.compressed).ok_or(DecodeError::Truncated("zstd compressed literals"))?;
            let tree_len = if h.block_type == COMPRESSED {
                huf.read_description(data)?
            } else if huf.is_valid() {
                0
            } else {
                return Err(DecodeError::Corrupt("zstd treeless literals without a previous table"));
            };
            let streams = data.get(tree_len..).ok_or(DecodeError::Corrupt("zstd Huffman tree overruns literals"))?;
            let out = buf.get_mut(..h.regenerated).ok_or(DecodeError::Corrupt("zstd literals too large"))?;
            if h.four_streams {
                decode_four_streams(huf, streams, out)?;
            } else {
                huf.decode_stream(streams, out)?;
            }
            Ok((out, h.len + h.compressed))
        }
    }
}

/// Decodes four Huffman streams behind a 6-byte jump table (RFC 8878 §3.1.1.3.1.6): the first
/// three regenerate `(size + 3) / 4` bytes each, the fourth the rest.
fn decode_four_streams(huf: &HufTable, src: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let jump = src.get(..6).ok_or(DecodeError::Corrupt("zstd literals jump table truncated"))?;
    let s1 = usize::from(u16::from_le_bytes([jump[0], jump[1]]));
    let s2 = usize::from(u16::from_le_bytes([jump[2], jump[3]]));
    let s3 = usize::from(u16::from_le_bytes([jump[4], jump[5]]));
    let (_, streams) = src.split_at(6);
    let bad = DecodeError::Corrupt("zstd literals jump table inconsistent");
    let (st1, rest) = streams.split_at_checked(s1).ok_or(bad.clone())?;
    let (st2, rest) = rest.split_at_checked(s2).ok_or(bad.clone())?;
    let (st3, st4) = rest.split_at_checked(s3).ok_or(bad.clone())?;
    let segment = out.len().div_ceil(4);
    let (o1, rest) = out.split_at_mut_checked(segment).ok_or(bad.clone())?;
    let (o2, rest) = rest.split_at_mut_checked(segment).ok_or(bad.clone())?;
    let (o3, o4) = rest.split_at_mut_checked(segment).ok_or(bad)?;
    huf.decode_stream(st1, o1)?;
    huf.decode_stream(st2, o2)?;
    huf.decode_stream(st3, o3)?;
    huf.decode_stream(st4, o4)
}
