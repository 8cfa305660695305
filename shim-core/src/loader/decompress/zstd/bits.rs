//! Bit readers.
//!
//! RFC 8878 §4.1.1: FSE table descriptions are read forward, little-endian, least significant bit
//! first. RFC 8878 §4.1 / §4.2.2: FSE and Huffman bitstreams are read backward, starting from the
//! highest set bit (the end marker) of the last byte.

use super::DecodeError;

/// Loads 8 bytes at `at` as a little-endian `u64`, treating bytes past the end of `src` as zero.
fn load_le_padded(src: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let Some(rest) = src.get(at..) {
        let n = rest.len().min(8);
        if let (Some(dst), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(from);
        }
    }
    u64::from_le_bytes(buf)
}

/// Forward reader for FSE table descriptions (RFC 8878 §4.1.1). Reads past the end yield zeros;
/// [`ForwardBitReader::bytes_used`] reports whether the description actually fit.
pub struct ForwardBitReader<'a> {
    src: &'a [u8],
    bit_pos: usize,
}

impl<'a> ForwardBitReader<'a> {
    /// Starts reading at the first bit of `src`.
    pub fn new(src: &'a [u8]) -> Self {
        Self { src, bit_pos: 0 }
    }

    /// Returns the next `n` (≤ 32) bits without consuming them.
    pub fn peek(&self, n: u32) -> u32 {
        let word = load_le_padded(self.src, self.bit_pos / 8) >> (self.bit_pos % 8);
        (word & ((1u64 << n) - 1)) as u32
    }

    /// Consumes `n` bits.
    pub fn skip(&mut self, n: u32) {
        self.bit_pos = self.bit_pos.saturating_add(n as usize);
    }

    /// Reads and consumes `n` (≤ 32) bits.
    pub fn read(&mut self, n: u32) -> u32 {
        let v = self.peek(n);
        self.skip(n);
        v
    }

    /// Whole bytes touched so far, or `Truncated` if the reader went past the end of its input.
    pub fn bytes_used(&self) -> Result<usize, DecodeError> {
        let bytes = self.bit_pos.div_ceil(8);
        if bytes > self.src.len() {
            return Err(DecodeError::Truncated("zstd FSE table description"));
        }
        Ok(bytes)
    }
}

/// Backward reader for FSE and Huffman bitstreams (RFC 8878 §4.1, §4.2.2), with a 64-bit
/// container. The bits of `container` are consumed from the most significant end; `consumed`
/// counts consumed bits. Bits before the start of the stream read as zero; consuming them is an
/// "overflow" that callers detect with [`RevBitReader::overflowed`] or [`RevBitReader::finished`].
pub struct RevBitReader<'a> {
    src: &'a [u8],
    /// Offset in `src` of the 8 bytes held in `container` (0 once the start is reached).
    start: usize,
    container: u64,
    consumed: u32,
}

impl<'a> RevBitReader<'a> {
    /// Opens a backward bitstream: skips the zero padding and the end-marker bit of the last byte.
    pub fn new(src: &'a [u8]) -> Result<Self, DecodeError> {
        let last = *src.last().ok_or(DecodeError::Corrupt("empty zstd bitstream"))?;
        if last == 0 {
            return Err(DecodeError::Corrupt("zstd bitstream without end marker"));
        }
        let marker = last.leading_zeros() + 1;
        if src.len() >= 8 {
            let start = src.len() - 8;
            Ok(Self { src, start, container: load_le_padded(src, start), consumed: marker })
        } else {
            // The missing high bytes of the container count as consumed.
            let missing = (8 - src.len()) as u32 * 8;
            Ok(Self { src, start: 0, container: load_le_padded(src, 0), consumed: marker + missing })
        }
    }

    /// Moves the container back so that at least 57 unread bits are held (or all that remain).
    #[inline(always)]
    pub fn refill(&mut self) {
        if self.start == 0 {
            return;
        }
        let step = ((self.consumed / 8) as usize).min(self.start);
        self.start -= step;
        self.consumed -= (step * 8) as u32;
        self.container = match self.src.get(self.start..self.start + 8) {
            Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => 0,
        };
    }

    /// Returns the next `n` bits (1 ≤ n ≤ 56) without consuming them; zeros past the start.
    #[inline(always)]
    pub fn peek(&self, n: u32) -> u64 {
        self.container.checked_shl(self.consumed).unwrap_or(0) >> (64 - n)
    }

    /// Consumes `n` bits.
    #[inline(always)]
    pub fn consume(&mut self, n: u32) {
        self.consumed += n;
    }

    /// Reads and consumes `n` bits (0 ≤ n ≤ 56).
    #[inline(always)]
    pub fn read(&mut self, n: u32) -> u64 {
        let v = (self.container.checked_shl(self.consumed).unwrap_or(0) >> 1) >> (63 - n);
        self.consumed += n;
        v
    }

    /// True once more bits were consumed than the stream holds (only exact after `refill`).
    #[inline(always)]
    pub fn overflowed(&self) -> bool {
        self.consumed > 64
    }

    /// True when every bit of the stream was consumed, no more and no less.
    pub fn finished(&self) -> bool {
        self.start == 0 && self.consumed == 64
    }
}
