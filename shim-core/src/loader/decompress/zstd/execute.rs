//! Sequence execution into the flat output buffer (RFC 8878 §3.1.1.4): literal copies and match
//! copies, where the output written so far is the history window.

use super::DecodeError;

/// Where the frame being decoded stands in the output buffer, and its repeat offsets
/// (RFC 8878 §3.1.1.5).
pub struct Cursor {
    /// Next byte of `out` to write.
    pub pos: usize,
    /// First byte of the current frame in `out`; matches may not reach before it.
    pub frame_start: usize,
    /// Repeated_Offset1..3.
    pub reps: [usize; 3],
}

impl Cursor {
    /// A cursor at the start of a frame, with the initial repeat offsets 1, 4, 8.
    pub fn new(frame_start: usize) -> Self {
        Self { pos: frame_start, frame_start, reps: [1, 4, 8] }
    }

    /// Turns an Offset_Value into a match offset and updates the repeat offsets
    /// (RFC 8878 §3.1.1.5). Values 1..=3 select repeat offsets, shifted by one when the literal
    /// length is 0 (the fourth case being Repeated_Offset1 - 1).
    #[inline(always)]
    pub fn resolve_offset(&mut self, value: u32, literal_length: usize) -> Result<usize, DecodeError> {
        let reps = &mut self.reps;
        if value > 3 {
            let offset = (value - 3) as usize;
            *reps = [offset, reps[0], reps[1]];
            return Ok(offset);
        }
        let index = value as usize + usize::from(literal_length == 0);
        let offset = match index {
            1 => return Ok(reps[0]),
            2 => reps[1],
            3 => reps[2],
            _ => reps[0].checked_sub(1).filter(|&o| o != 0).ok_or(DecodeError::Corrupt("zstd repeat offset of 0"))?,
        };
        if index == 2 {
            reps[1] = reps[0];
        } else {
            reps[2] = reps[1];
            reps[1] = reps[0];
        }
        reps[0] = offset;
        Ok(offset)
    }

    /// Copies `lits` to the output.
    #[inline(always)]
    pub fn copy_literals(&mut self, out: &mut [u8], lits: &[u8]) -> Result<(), DecodeError> {
        let end = self.pos + lits.len();
        let dst = out.get_mut(self.pos..end).ok_or(DecodeError::OutputFull)?;
        dst.copy_from_slice(lits);
        self.pos = end;
        Ok(())
    }

    /// Executes one sequence: `literal_length` literals from `lits[*lit_pos..]`, then a match of
    /// `match_length` bytes at distance `offset`.
    #[inline(always)]
    pub fn execute(
        &mut self,
        out: &mut [u8],
        lits: &[u8],
        lit_pos: &mut usize,
        literal_length: usize,
        match_length: usize,
        offset: usize,
    ) -> Result<(), DecodeError> {
        let pos = self.pos;
        let lit_end = *lit_pos + literal_length;
        let match_start = pos + literal_length;
        let end = match_start + match_length;
        if lit_end > lits.len() {
            return Err(DecodeError::Corrupt("zstd sequence literal length beyond the literals"));
        }
        if end > out.len() {
            return Err(DecodeError::OutputFull);
        }
        if offset > match_start - self.frame_start {
            return Err(DecodeError::Corrupt("zstd match distance beyond the frame start"));
        }
        if literal_length <= 16 && *lit_pos + 16 <= lits.len() && pos + 16 <= out.len() {
            // Short literal run: one fixed-size copy (the extra bytes are overwritten later).
            out[pos..pos + 16].copy_from_slice(&lits[*lit_pos..*lit_pos + 16]);
        } else {
            out[pos..match_start].copy_from_slice(&lits[*lit_pos..lit_end]);
        }
        *lit_pos = lit_end;
        copy_match(out, match_start, offset, match_length);
        self.pos = end;
        Ok(())
    }
}

/// Copies `len` bytes from `pos - offset` to `pos`, where the source may overlap the destination
/// (repeating the last `offset` bytes). Requires `1 <= offset <= pos` and `pos + len <= out.len()`.
#[inline(always)]
fn copy_match(out: &mut [u8], pos: usize, offset: usize, len: usize) {
    let src = pos - offset;
    if offset >= 16 && pos + len + 16 <= out.len() {
        // Non-overlapping 16-byte chunks; may write up to 15 bytes past the match, which later
        // output overwrites.
        let mut i = 0;
        while i < len {
            out.copy_within(src + i..src + i + 16, pos + i);
            i += 16;
        }
    } else if offset >= len {
        out.copy_within(src..src + len, pos);
    } else {
        copy_overlapping(out, src, pos, len);
    }
}

/// Overlapping match copy: `out[src..pos]` is one period; each step copies the whole filled region
/// after `src` (a multiple of the period), doubling it.
fn copy_overlapping(out: &mut [u8], src: usize, pos: usize, len: usize) {
    if pos - src == 1 {
        let byte = out[src];
        out[pos..pos + len].fill(byte);
        return;
    }
    let mut done = 0;
    while done < len {
        let n = (pos - src + done).min(len - done);
        out.copy_within(src..src + n, pos + done);
        done += n;
    }
}
