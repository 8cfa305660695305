//! Sequences section of a compressed block (RFC 8878 §3.1.1.3.2): header, compression modes,
//! the three FSE decoding tables, and the sequence bitstream.

use alloc::boxed::Box;

use super::bits::RevBitReader;
use super::execute::Cursor;
use super::fse::{self, Distribution, FseCell, MAX_CELLS};
use super::{alloc_array, DecodeError};

/// Literals_Lengths_Code baselines and extra bits (RFC 8878 §3.1.1.3.2.1.1).
const LL_BASE: [u32; 36] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024,
    2048, 4096, 8192, 16384, 32768, 65536,
];
const LL_EXTRA: [u8; 36] =
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

/// Match_Length_Code baselines and extra bits (RFC 8878 §3.1.1.3.2.1.1).
const ML_BASE: [u32; 53] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
    33, 34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387, 32771, 65539,
];
const ML_EXTRA: [u8; 53] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2,
    3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];

/// Predefined distributions (RFC 8878 §3.1.1.3.2.2), accuracy logs 6, 6 and 5.
const LL_DEFAULT: [i16; 36] =
    [4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1];
const ML_DEFAULT: [i16; 53] = [
    1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
];
const OF_DEFAULT: [i16; 29] =
    [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1];

/// Which of the three sequence fields a table decodes.
#[derive(Clone, Copy)]
enum Field {
    LiteralLength,
    Offset,
    MatchLength,
}

impl Field {
    /// Largest code, largest accuracy log, and predefined distribution (RFC 8878 §3.1.1.3.2.2).
    fn limits(self) -> (usize, u32, &'static [i16], u32) {
        match self {
            Field::LiteralLength => (35, 9, &LL_DEFAULT, 6),
            Field::Offset => (31, 8, &OF_DEFAULT, 5),
            Field::MatchLength => (52, 9, &ML_DEFAULT, 6),
        }
    }

    /// Baseline and extra bits of a code. Offset code `n` means `(1 << n) + n extra bits`.
    fn baseline(self, code: u8) -> (u32, u8) {
        let c = usize::from(code);
        match self {
            Field::LiteralLength => (LL_BASE.get(c).copied().unwrap_or(0), LL_EXTRA.get(c).copied().unwrap_or(0)),
            Field::MatchLength => (ML_BASE.get(c).copied().unwrap_or(0), ML_EXTRA.get(c).copied().unwrap_or(0)),
            Field::Offset => (1u32 << (code & 31), code & 31),
        }
    }
}

/// A decoding-table state with the field's baseline and extra bits folded in.
#[derive(Clone, Copy, Default)]
struct SeqCell {
    base: u32,
    next: u16,
    nb_bits: u8,
    extra: u8,
}

/// One of the three sequence decoding tables; it persists across blocks for Repeat_Mode.
struct SeqTable {
    cells: Box<[SeqCell; MAX_CELLS]>,
    log: u32,
    valid: bool,
}

impl SeqTable {
    fn new() -> Result<Self, DecodeError> {
        Ok(Self { cells: alloc_array(SeqCell::default())?, log: 0, valid: false })
    }

    /// Sets the table up per its Compression_Mode (RFC 8878 §3.1.1.3.2.1) from the start of `src`;
    /// returns the bytes used.
    fn setup(
        &mut self,
        mode: u8,
        src: &[u8],
        field: Field,
        scratch: &mut [FseCell; MAX_CELLS],
    ) -> Result<usize, DecodeError> {
        let (max_symbol, max_log, default, default_log) = field.limits();
        let used = match mode {
            0 => {
                self.load(&Distribution::from_table(default, default_log), field, scratch)?;
                0
            }
            1 => {
                let symbol = *src.first().ok_or(DecodeError::Truncated("zstd RLE sequence code"))?;
                if usize::from(symbol) > max_symbol {
                    return Err(DecodeError::Corrupt("zstd RLE sequence code out of range"));
                }
                let (base, extra) = field.baseline(symbol);
                self.cells[0] = SeqCell { base, next: 0, nb_bits: 0, extra };
                self.log = 0;
                1
            }
            2 => {
                let (dist, used) = fse::read_distribution(src, max_symbol, max_log)?;
                self.load(&dist, field, scratch)?;
                used
            }
            _ => {
                if !self.valid {
                    return Err(DecodeError::Corrupt("zstd repeat sequence table without a previous one"));
                }
                0
            }
        };
        self.valid = true;
        Ok(used)
    }

    /// Builds the FSE table of `dist` and folds in the field's baselines.
    fn load(
        &mut self,
        dist: &Distribution,
        field: Field,
        scratch: &mut [FseCell; MAX_CELLS],
    ) -> Result<(), DecodeError> {
        fse::build_table(dist, scratch)?;
        let size = 1usize << dist.log;
        for (dst, src) in self.cells.iter_mut().zip(scratch.iter()).take(size) {
            let (base, extra) = field.baseline(src.symbol);
            *dst = SeqCell { base, next: src.base, nb_bits: src.nb_bits, extra };
        }
        self.log = dist.log;
        Ok(())
    }
}

/// The literal length, offset and match length tables of a frame.
pub struct SeqTables {
    ll: SeqTable,
    of: SeqTable,
    ml: SeqTable,
    scratch: Box<[FseCell; MAX_CELLS]>,
}

impl SeqTables {
    /// Allocates the tables (about 14 KiB).
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self {
            ll: SeqTable::new()?,
            of: SeqTable::new()?,
            ml: SeqTable::new()?,
            scratch: alloc_array(FseCell::default())?,
        })
    }

    /// Forgets all tables (at the start of a frame).
    pub fn reset(&mut self) {
        self.ll.valid = false;
        self.of.valid = false;
        self.ml.valid = false;
    }

    /// Decodes the sequences section `src` and executes it against `lits`, writing at `cur`.
    pub fn decode_and_execute(
        &mut self,
        src: &[u8],
        lits: &[u8],
        out: &mut [u8],
        cur: &mut Cursor,
    ) -> Result<(), DecodeError> {
        let (count, mut at) = read_count(src)?;
        if count == 0 {
            if at != src.len() {
                return Err(DecodeError::Corrupt("zstd data after an empty sequences section"));
            }
            return cur.copy_literals(out, lits);
        }
        let modes = *src.get(at).ok_or(DecodeError::Truncated("zstd sequence compression modes"))?;
        at += 1;
        if modes & 3 != 0 {
            return Err(DecodeError::Corrupt("zstd sequence compression modes reserved bits"));
        }
        let rest = |at: usize| src.get(at..).ok_or(DecodeError::Truncated("zstd sequence tables"));
        at += self.ll.setup(modes >> 6, rest(at)?, Field::LiteralLength, &mut self.scratch)?;
        at += self.of.setup((modes >> 4) & 3, rest(at)?, Field::Offset, &mut self.scratch)?;
        at += self.ml.setup((modes >> 2) & 3, rest(at)?, Field::MatchLength, &mut self.scratch)?;
        let stream = rest(at)?;
        let lit_pos = self.run(stream, count, lits, out, cur)?;
        let tail = lits.get(lit_pos..).ok_or(DecodeError::Corrupt("zstd literals overrun"))?;
        cur.copy_literals(out, tail)
    }

    /// Decodes `count` sequences from the backward bitstream `stream` (RFC 8878 §3.1.1.3.2.2) and
    /// executes each as it is decoded. Returns the number of literals used.
    fn run(
        &self,
        stream: &[u8],
        count: usize,
        lits: &[u8],
        out: &mut [u8],
        cur: &mut Cursor,
    ) -> Result<usize, DecodeError> {
        let mut br = RevBitReader::new(stream)?;
        let (ll_cells, of_cells, ml_cells) = (&*self.ll.cells, &*self.of.cells, &*self.ml.cells);
        let mask = MAX_CELLS - 1;
        let mut ll_state = br.read(self.ll.log) as usize;
        let mut of_state = br.read(self.of.log) as usize;
        let mut ml_state = br.read(self.ml.log) as usize;
        let mut lit_pos = 0usize;
        for remaining in (0..count).rev() {
            br.refill();
            if br.overflowed() {
                return Err(DecodeError::Corrupt("zstd sequence bitstream overrun"));
            }
            let ll_cell = ll_cells[ll_state & mask];
            let of_cell = of_cells[of_state & mask];
            let ml_cell = ml_cells[ml_state & mask];
            // Extra bits come in the order offset, match length, literal length.
            let offset_value = of_cell.base + br.read(u32::from(of_cell.extra)) as u32;
            let match_length = (ml_cell.base + br.read(u32::from(ml_cell.extra)) as u32) as usize;
            br.refill();
            let literal_length = (ll_cell.base + br.read(u32::from(ll_cell.extra)) as u32) as usize;
            if remaining != 0 {
                // State updates come in the order literal length, match length, offset.
                ll_state = usize::from(ll_cell.next) + br.read(u32::from(ll_cell.nb_bits)) as usize;
                ml_state = usize::from(ml_cell.next) + br.read(u32::from(ml_cell.nb_bits)) as usize;
                of_state = usize::from(of_cell.next) + br.read(u32::from(of_cell.nb_bits)) as usize;
            }
            let offset = cur.resolve_offset(offset_value, literal_length)?;
            cur.execute(out, lits, &mut lit_pos, literal_length, match_length, offset)?;
        }
        br.refill();
        if !br.finished() {
            return Err(DecodeError::Corrupt("zstd sequence bitstream not consumed exactly"));
        }
        Ok(lit_pos)
    }
}

/// Reads Number_of_Sequences (RFC 8878 §3.1.1.3.2.1); returns it and the bytes used.
fn read_count(src: &[u8]) -> Result<(usize, usize), DecodeError> {
    let byte = |i: usize| src.get(i).map(|&b| usize::from(b)).ok_or(DecodeError::Truncated("zstd sequences header"));
    let b0 = byte(0)?;
    Ok(match b0 {
        0..=127 => (b0, 1),
        128..=254 => (((b0 - 128) << 8) + byte(1)?, 2),
        _ => (byte(1)? + (byte(2)? << 8) + 0x7F00, 3),
    })
}
