//! Huffman coding of literals: tree descriptions, decoding table and streams (RFC 8878 §4.2).

use alloc::boxed::Box;

use super::bits::RevBitReader;
use super::fse::{self, FseCell};
use super::{alloc_array, DecodeError};

/// Longest Huffman code Zstandard allows (RFC 8878 §4.2.1, Max_Number_of_Bits).
pub const MAX_BITS: u32 = 11;

/// Cells of a full-size decoding table (one per `MAX_BITS`-bit prefix).
const TABLE_SIZE: usize = 1 << MAX_BITS;

/// Largest accuracy log of the FSE table compressing Huffman weights (RFC 8878 §4.2.1.2).
const WEIGHTS_MAX_LOG: u32 = 6;

/// One decoding-table entry: the literal a code prefix stands for and the code's length.
#[derive(Clone, Copy, Default)]
pub struct HufCell {
    symbol: u8,
    nb_bits: u8,
}

/// A Huffman decoding table, indexed by the next `max_bits` bits of a stream. It persists across
/// blocks of a frame for treeless literals (RFC 8878 §3.1.1.3.1.1).
pub struct HufTable {
    cells: Box<[HufCell; TABLE_SIZE]>,
    max_bits: u32,
    valid: bool,
}

impl HufTable {
    /// Allocates an empty (not yet valid) table.
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self { cells: alloc_array(HufCell::default())?, max_bits: 1, valid: false })
    }

    /// Forgets the table (at the start of a frame).
    pub fn reset(&mut self) {
        self.valid = false;
    }

    /// True when a table was read earlier in this frame.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Reads a Huffman tree description (RFC 8878 §4.2.1) at the start of `src`, builds the table,
    /// and returns the bytes used.
    pub fn read_description(&mut self, src: &[u8]) -> Result<usize, DecodeError> {
        let header = *src.first().ok_or(DecodeError::Truncated("zstd Huffman tree description"))?;
        let mut weights = [0u8; 256];
        let (count, used) = if header < 128 {
            let size = usize::from(header);
            let body = src.get(1..1 + size).ok_or(DecodeError::Truncated("zstd Huffman weights"))?;
            (decode_fse_weights(body, &mut weights)?, 1 + size)
        } else {
            let count = usize::from(header) - 127;
            let body = src.get(1..1 + count.div_ceil(2)).ok_or(DecodeError::Truncated("zstd Huffman weights"))?;
            for (i, w) in weights.iter_mut().take(count).enumerate() {
                let byte = body.get(i / 2).copied().unwrap_or(0);
                *w = if i % 2 == 0 { byte >> 4 } else { byte & 0xF };
            }
            (count, 1 + count.div_ceil(2))
        };
        self.build(&mut weights, count)?;
        Ok(used)
    }

    /// Completes the weights with the implied last one and fills the decoding table
    /// (RFC 8878 §4.2.1.1, §4.2.1.3): codes are assigned by increasing weight, then symbol.
    fn build(&mut self, weights: &mut [u8; 256], count: usize) -> Result<(), DecodeError> {
        let mut total: u32 = 0;
        for &w in weights.iter().take(count) {
            if u32::from(w) > MAX_BITS {
                return Err(DecodeError::Corrupt("zstd Huffman weight too large"));
            }
            if w > 0 {
                total += 1 << (w - 1);
            }
        }
        if total == 0 {
            return Err(DecodeError::Corrupt("zstd Huffman weights all zero"));
        }
        let max_bits = 32 - total.leading_zeros();
        if max_bits > MAX_BITS {
            return Err(DecodeError::Corrupt("zstd Huffman code too long"));
        }
        let rest = (1u32 << max_bits) - total;
        if !rest.is_power_of_two() {
            return Err(DecodeError::Corrupt("zstd Huffman weights incomplete"));
        }
        let last = weights.get_mut(count).ok_or(DecodeError::Corrupt("zstd Huffman: too many weights"))?;
        *last = (32 - rest.leading_zeros()) as u8;
        self.fill(&weights[..=count], max_bits);
        Ok(())
    }

    /// Fills `1 << max_bits` cells: each symbol of weight `w` covers `1 << (w - 1)` cells.
    fn fill(&mut self, weights: &[u8], max_bits: u32) {
        let mut rank_start = [0usize; MAX_BITS as usize + 2];
        for &w in weights {
            if w > 0 {
                rank_start[usize::from(w) + 1] += 1 << (w - 1);
            }
        }
        for w in 1..rank_start.len() {
            rank_start[w] += rank_start[w - 1];
        }
        for (symbol, &w) in weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            let start = rank_start[usize::from(w)];
            let len = 1usize << (w - 1);
            rank_start[usize::from(w)] += len;
            let cell = HufCell { symbol: symbol as u8, nb_bits: (max_bits + 1 - u32::from(w)) as u8 };
            if let Some(dst) = self.cells.get_mut(start..start + len) {
                dst.fill(cell);
            }
        }
        self.max_bits = max_bits;
        self.valid = true;
    }

    /// Decodes one Huffman stream (RFC 8878 §4.2.2) filling `dst` exactly; the stream must be
    /// consumed exactly.
    pub fn decode_stream(&self, src: &[u8], dst: &mut [u8]) -> Result<(), DecodeError> {
        let mut br = RevBitReader::new(src)?;
        let cells = &*self.cells;
        let max_bits = self.max_bits;
        let mut chunks = dst.chunks_exact_mut(4);
        for chunk in &mut chunks {
            br.refill();
            // 4 codes of at most 11 bits fit in the 57 bits a refill guarantees.
            chunk[0] = decode_symbol(cells, &mut br, max_bits);
            chunk[1] = decode_symbol(cells, &mut br, max_bits);
            chunk[2] = decode_symbol(cells, &mut br, max_bits);
            chunk[3] = decode_symbol(cells, &mut br, max_bits);
        }
        for byte in chunks.into_remainder() {
            br.refill();
            *byte = decode_symbol(cells, &mut br, max_bits);
        }
        br.refill();
        if !br.finished() {
            return Err(DecodeError::Corrupt("zstd Huffman stream not consumed exactly"));
        }
        Ok(())
    }
}

/// Decodes one literal: looks up the next `max_bits` bits and consumes the code's length.
#[inline(always)]
fn decode_symbol(cells: &[HufCell; TABLE_SIZE], br: &mut RevBitReader<'_>, max_bits: u32) -> u8 {
    let cell = cells[(br.peek(max_bits) as usize) & (TABLE_SIZE - 1)];
    br.consume(u32::from(cell.nb_bits));
    cell.symbol
}

/// Decodes FSE-compressed Huffman weights (RFC 8878 §4.2.1.2): an FSE table description, then a
/// backward bitstream read with two interleaved states. Returns the number of weights.
fn decode_fse_weights(src: &[u8], weights: &mut [u8; 256]) -> Result<usize, DecodeError> {
    let (dist, used) = fse::read_distribution(src, 255, WEIGHTS_MAX_LOG)?;
    let mut cells = [FseCell::default(); 1 << WEIGHTS_MAX_LOG];
    fse::build_table(&dist, &mut cells)?;
    let stream = src.get(used..).ok_or(DecodeError::Truncated("zstd Huffman weights"))?;
    let mut br = RevBitReader::new(stream)?;
    let mask = (1usize << dist.log) - 1;
    let mut states = [br.read(dist.log) as usize & mask, br.read(dist.log) as usize & mask];
    br.refill();
    let mut count = 0usize;
    let mut turn = 0usize;
    loop {
        // Emit the symbol of the current state and advance it.
        let cell = cells[states[turn] & mask];
        push_weight(weights, &mut count, cell.symbol)?;
        states[turn] = (usize::from(cell.base) + br.read(u32::from(cell.nb_bits)) as usize) & mask;
        br.refill();
        if br.overflowed() {
            // The other state still holds one last symbol.
            push_weight(weights, &mut count, cells[states[turn ^ 1] & mask].symbol)?;
            return Ok(count);
        }
        turn ^= 1;
    }
}

/// Appends one decoded weight, refusing more than 255 (the last weight is implied).
fn push_weight(weights: &mut [u8; 256], count: &mut usize, w: u8) -> Result<(), DecodeError> {
    if *count >= 255 {
        return Err(DecodeError::Corrupt("zstd Huffman: too many weights"));
    }
    weights[*count] = w;
    *count += 1;
    Ok(())
}
