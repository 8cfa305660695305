//! Finite State Entropy: table descriptions and decoding tables (RFC 8878 §4.1).

use super::bits::ForwardBitReader;
use super::DecodeError;

/// Largest alphabet an FSE table description may cover.
pub const MAX_SYMBOLS: usize = 256;

/// Largest accuracy log used anywhere in Zstandard (literal and match lengths, RFC 8878 §3.1.1.3.2.2).
pub const MAX_LOG: u32 = 9;

/// Number of cells of the largest decoding table.
pub const MAX_CELLS: usize = 1 << MAX_LOG;

/// One decoding-table state: the symbol it emits, the bits to read for the next state, and the
/// baseline those bits are added to (RFC 8878 §4.1.1, "FSE Decoding Table").
#[derive(Clone, Copy, Default)]
pub struct FseCell {
    pub symbol: u8,
    pub nb_bits: u8,
    pub base: u16,
}

/// A normalized probability distribution: `counts[s]` is -1 ("less than 1"), 0, or a positive
/// number of table cells; the absolute values sum to `1 << log`.
pub struct Distribution {
    pub counts: [i16; MAX_SYMBOLS],
    pub num_symbols: usize,
    pub log: u32,
}

impl Distribution {
    /// Builds a distribution from a transcribed table (predefined distributions, RFC 8878 §3.1.1.3.2.2).
    pub fn from_table(table: &[i16], log: u32) -> Self {
        let mut counts = [0i16; MAX_SYMBOLS];
        let n = table.len().min(MAX_SYMBOLS);
        counts[..n].copy_from_slice(&table[..n]);
        Self { counts, num_symbols: n, log }
    }
}

/// Reads an FSE table description (RFC 8878 §4.1.1) from the start of `src`, allowing symbols up to
/// `max_symbol` and accuracy logs up to `max_log`. Returns the distribution and the bytes used.
pub fn read_distribution(src: &[u8], max_symbol: usize, max_log: u32) -> Result<(Distribution, usize), DecodeError> {
    let mut br = ForwardBitReader::new(src);
    let log = br.read(4) + 5;
    if log > max_log {
        return Err(DecodeError::Corrupt("zstd FSE accuracy log too large"));
    }
    let mut counts = [0i16; MAX_SYMBOLS];
    let mut remaining: i32 = (1 << log) + 1;
    let mut threshold: i32 = 1 << log;
    let mut nb_bits: u32 = log + 1;
    let mut symbol = 0usize;
    let mut previous_zero = false;
    while remaining > 1 {
        if previous_zero {
            symbol = skip_zero_run(&mut br, symbol, max_symbol)?;
        }
        if symbol > max_symbol || symbol >= MAX_SYMBOLS {
            return Err(DecodeError::Corrupt("zstd FSE description has too many symbols"));
        }
        let max = 2 * threshold - 1 - remaining;
        let low = br.peek(nb_bits - 1) as i32;
        let value = if low < max {
            br.skip(nb_bits - 1);
            low
        } else {
            let v = br.read(nb_bits) as i32;
            if v >= threshold {
                v - max
            } else {
                v
            }
        };
        let prob = value - 1;
        remaining -= prob.abs();
        counts[symbol] = prob as i16;
        symbol += 1;
        previous_zero = prob == 0;
        if remaining < 1 {
            return Err(DecodeError::Corrupt("zstd FSE probabilities exceed the table"));
        }
        while remaining < threshold {
            nb_bits -= 1;
            threshold >>= 1;
        }
    }
    if remaining != 1 {
        return Err(DecodeError::Corrupt("zstd FSE probabilities do not fill the table"));
    }
    let used = br.bytes_used()?;
    Ok((Distribution { counts, num_symbols: symbol, log }, used))
}

/// After a zero probability, reads the 2-bit repeat flags giving how many more symbols have
/// probability zero (RFC 8878 §4.1.1). Returns the next symbol to read.
fn skip_zero_run(br: &mut ForwardBitReader<'_>, mut symbol: usize, max_symbol: usize) -> Result<usize, DecodeError> {
    loop {
        let repeat = br.read(2) as usize;
        symbol += repeat;
        if symbol > max_symbol {
            return Err(DecodeError::Corrupt("zstd FSE zero run past the last symbol"));
        }
        if repeat != 3 {
            return Ok(symbol);
        }
    }
}

/// Builds the decoding table of `dist` into `cells[..1 << dist.log]` (RFC 8878 §4.1.1): symbols
/// of probability -1 take the last cells, the others are spread with the step
/// `(size >> 1) + (size >> 3) + 3`, then each cell gets its number of bits and baseline.
pub fn build_table(dist: &Distribution, cells: &mut [FseCell]) -> Result<(), DecodeError> {
    let size = 1usize << dist.log;
    let cells = cells.get_mut(..size).ok_or(DecodeError::Corrupt("zstd FSE table too large"))?;
    let counts = dist.counts.get(..dist.num_symbols).unwrap_or(&[]);
    let mut next = [0u16; MAX_SYMBOLS];
    let mut high = size;
    for (symbol, &count) in counts.iter().enumerate() {
        if count == -1 {
            high = high.checked_sub(1).ok_or(DecodeError::Corrupt("zstd FSE table overfull"))?;
            cells[high] = FseCell { symbol: symbol as u8, nb_bits: 0, base: 0 };
            next[symbol] = 1;
        } else {
            next[symbol] = count.max(0) as u16;
        }
    }
    spread_symbols(counts, cells, high)?;
    for cell in cells.iter_mut() {
        let n = next[cell.symbol as usize];
        next[cell.symbol as usize] = n.wrapping_add(1);
        if n == 0 {
            return Err(DecodeError::Corrupt("zstd FSE table inconsistent"));
        }
        let nb_bits = dist.log.saturating_sub(15 - n.leading_zeros());
        cell.nb_bits = nb_bits as u8;
        cell.base = ((u32::from(n) << nb_bits) as usize).wrapping_sub(size) as u16;
    }
    Ok(())
}

/// Places each symbol of positive probability into `count` cells below `high`, walking the table
/// with the RFC 8878 §4.1.1 step. The walk must end back at position 0.
fn spread_symbols(counts: &[i16], cells: &mut [FseCell], high: usize) -> Result<(), DecodeError> {
    let size = cells.len();
    let mask = size - 1;
    let step = (size >> 1) + (size >> 3) + 3;
    let mut pos = 0usize;
    for (symbol, &count) in counts.iter().enumerate() {
        for _ in 0..count.max(0) {
            if pos >= high {
                return Err(DecodeError::Corrupt("zstd FSE table overfull"));
            }
            cells[pos].symbol = symbol as u8;
            pos = (pos + step) & mask;
            while pos >= high && pos != 0 {
                pos = (pos + step) & mask;
            }
        }
    }
    if pos != 0 {
        return Err(DecodeError::Corrupt("zstd FSE table inconsistent"));
    }
    Ok(())
}
