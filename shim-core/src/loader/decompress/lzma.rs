//! LZMA, LZMA2 and legacy `.lzma` ("LZMA alone") decoding into a flat output buffer.
//!
//! The output buffer is the dictionary: a match copies bytes already written to `out`, so nothing proportional
//! to the stream's dictionary size is ever allocated. The only allocations are the probability model
//! (fixed size, about 28 KiB for LZMA2; legacy streams with a large `lc + lp` need more) made fallibly.
//!
//! Format facts (state machine, probability model layout, LZMA2 control bytes) follow the LZMA specification
//! shipped with the LZMA SDK and the xz file-format description.

use super::DecodeError;
use alloc::vec::Vec;
use core::mem::size_of;

/// Number of states of the LZMA literal/match state machine.
const STATES: usize = 12;
/// Largest number of position states (`1 << pb` with `pb <= 4`).
const POS_STATES: usize = 16;
/// Probabilities per literal coder (normal tree plus the two "matched" trees).
const LITERAL_CODER_SIZE: usize = 0x300;
/// Initial probability: one half, on an 11-bit scale.
const PROB_INIT: u16 = 1 << 10;
/// Probability scale in bits.
const PROB_BITS: u32 = 11;
/// Shift of the adaptive probability update.
const MOVE_BITS: u32 = 5;
/// Range below which the decoder pulls in another input byte.
const TOP: u32 = 1 << 24;
/// First distance slot whose low bits are coded with direct bits and the align tree.
const END_POS_MODEL_INDEX: u32 = 14;
/// Size of the "special" distance probability array (`1 + kNumFullDistances - kEndPosModelIndex`).
const DIST_SPECIAL: usize = 1 + 128 - END_POS_MODEL_INDEX as usize;
/// Shortest match length.
const MATCH_LEN_MIN: usize = 2;
/// States below this one mean the previous symbol was a literal.
const LIT_STATES: usize = 7;
/// Next state after a literal, indexed by the current state.
const NEXT_AFTER_LITERAL: [u8; STATES] = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 4, 5];
/// `lc + lp` limit of LZMA2 (the literal table is allocated for this once).
const LZMA2_LCLP_MAX: u32 = 4;
/// Distance value that marks the end of the payload.
const END_MARKER_DIST: u32 = u32::MAX;

/// Range decoder over one contiguous compressed slice.
///
/// Reading past the end of the slice yields zero bytes and sets `overrun`; callers check it at symbol
/// boundaries, so corrupt input can never make the decoder spin or read out of bounds.
struct RangeDecoder<'a> {
    input: &'a [u8],
    pos: usize,
    range: u32,
    code: u32,
    overrun: bool,
}

impl<'a> RangeDecoder<'a> {
    /// Starts decoding `input`: the first byte must be zero, the next four are the initial code.
    fn new(input: &'a [u8]) -> Result<Self, DecodeError> {
        let Some(init) = input.get(..5) else { return Err(DecodeError::Truncated("LZMA range coder init")) };
        if init[0] != 0 {
            return Err(DecodeError::Corrupt("LZMA range coder first byte not zero"));
        }
        let code = u32::from_be_bytes([init[1], init[2], init[3], init[4]]);
        Ok(Self { input, pos: 5, range: u32::MAX, code, overrun: false })
    }

    /// Returns the next input byte, or zero (and records the overrun) past the end.
    #[inline(always)]
    fn next_byte(&mut self) -> u32 {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                u32::from(b)
            }
            None => {
                self.overrun = true;
                0
            }
        }
    }

    /// Keeps `range` at least `TOP` by shifting in one input byte.
    #[inline(always)]
    fn normalize(&mut self) {
        if self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | self.next_byte();
        }
    }

    /// Decodes one bit with the adaptive probability `prob`.
    #[inline(always)]
    fn bit(&mut self, prob: &mut u16) -> usize {
        self.normalize();
        let p = u32::from(*prob);
        let bound = (self.range >> PROB_BITS) * p;
        if self.code < bound {
            self.range = bound;
            *prob = (p + (((1 << PROB_BITS) - p) >> MOVE_BITS)) as u16;
            0
        } else {
            self.range -= bound;
            self.code -= bound;
            *prob = (p - (p >> MOVE_BITS)) as u16;
            1
        }
    }

    /// Decodes a bit tree of `N = 1 << bits` probabilities, most significant bit first.
    #[inline(always)]
    fn tree<const N: usize>(&mut self, probs: &mut [u16; N]) -> usize {
        let mut m = 1;
        while m < N {
            m = (m << 1) | self.bit(&mut probs[m]);
        }
        m - N
    }

    /// Decodes `bits` bits of a reverse (least significant bit first) bit tree rooted at `probs[1]`.
    #[inline(always)]
    fn reverse_tree(&mut self, probs: &mut [u16], bits: u32) -> u32 {
        let mut m = 1;
        let mut symbol = 0;
        for i in 0..bits {
            let b = self.bit(&mut probs[m]);
            m = (m << 1) | b;
            symbol |= (b as u32) << i;
        }
        symbol
    }

    /// Decodes `bits` (at most 26) bits with fixed probability one half.
    #[inline(always)]
    fn direct(&mut self, bits: u32) -> u32 {
        let mut value = 0;
        for _ in 0..bits {
            self.normalize();
            self.range >>= 1;
            let b = self.code >= self.range;
            if b {
                self.code -= self.range;
            }
            value = (value << 1) | u32::from(b);
        }
        value
    }

    /// True when the final normalization left the coder exactly at the end of its input with a zero code.
    fn finished_exactly(&mut self) -> bool {
        self.normalize();
        !self.overrun && self.code == 0 && self.pos == self.input.len()
    }
}

/// Probabilities of one length decoder (match lengths or repeated-match lengths).
#[derive(Clone)]
struct LenModel {
    choice: u16,
    choice2: u16,
    low: [[u16; 8]; POS_STATES],
    mid: [[u16; 8]; POS_STATES],
    high: [u16; 256],
}

impl LenModel {
    /// All probabilities at one half.
    const INIT: Self = Self {
        choice: PROB_INIT,
        choice2: PROB_INIT,
        low: [[PROB_INIT; 8]; POS_STATES],
        mid: [[PROB_INIT; 8]; POS_STATES],
        high: [PROB_INIT; 256],
    };

    /// Decodes a length (2..=273) for position state `pos_state`.
    #[inline(always)]
    fn decode(&mut self, rc: &mut RangeDecoder<'_>, pos_state: usize) -> usize {
        let ps = pos_state & (POS_STATES - 1);
        if rc.bit(&mut self.choice) == 0 {
            MATCH_LEN_MIN + rc.tree(&mut self.low[ps])
        } else if rc.bit(&mut self.choice2) == 0 {
            MATCH_LEN_MIN + 8 + rc.tree(&mut self.mid[ps])
        } else {
            MATCH_LEN_MIN + 16 + rc.tree(&mut self.high)
        }
    }
}

/// The fixed-size part of the LZMA probability model (everything but the literal coders).
#[derive(Clone)]
struct Model {
    is_match: [[u16; POS_STATES]; STATES],
    is_rep: [u16; STATES],
    is_rep0: [u16; STATES],
    is_rep1: [u16; STATES],
    is_rep2: [u16; STATES],
    is_rep0_long: [[u16; POS_STATES]; STATES],
    dist_slot: [[u16; 64]; 4],
    dist_special: [u16; DIST_SPECIAL],
    dist_align: [u16; 16],
    match_len: LenModel,
    rep_len: LenModel,
}

impl Model {
    /// All probabilities at one half.
    const INIT: Self = Self {
        is_match: [[PROB_INIT; POS_STATES]; STATES],
        is_rep: [PROB_INIT; STATES],
        is_rep0: [PROB_INIT; STATES],
        is_rep1: [PROB_INIT; STATES],
        is_rep2: [PROB_INIT; STATES],
        is_rep0_long: [[PROB_INIT; POS_STATES]; STATES],
        dist_slot: [[PROB_INIT; 64]; 4],
        dist_special: [PROB_INIT; DIST_SPECIAL],
        dist_align: [PROB_INIT; 16],
        match_len: LenModel::INIT,
        rep_len: LenModel::INIT,
    };

    /// Decodes the distance of a new match of length `len`; `END_MARKER_DIST` is the end-of-payload marker.
    #[inline(always)]
    fn decode_distance(&mut self, rc: &mut RangeDecoder<'_>, len: usize) -> u32 {
        let len_state = if len < MATCH_LEN_MIN + 4 { len - MATCH_LEN_MIN } else { 3 };
        let slot = rc.tree(&mut self.dist_slot[len_state]) as u32;
        if slot < 4 {
            return slot;
        }
        let direct_bits = (slot >> 1) - 1;
        let base = (2 | (slot & 1)) << direct_bits;
        if slot < END_POS_MODEL_INDEX {
            // `base - slot` + the largest tree index stays below DIST_SPECIAL for every slot in 4..14.
            base | rc.reverse_tree(&mut self.dist_special[(base - slot) as usize..], direct_bits)
        } else {
            let high = rc.direct(direct_bits - 4) << 4;
            base | high | rc.reverse_tree(&mut self.dist_align, 4)
        }
    }
}

/// How a run of LZMA symbols ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EndMode {
    /// An LZMA2 chunk: exactly `end` bytes, no marker, no match crossing `end`.
    Chunk,
    /// Legacy stream with a known size: stop at `end`, a match crossing it is cut there.
    KnownSize,
    /// Legacy stream ended by the end-of-payload marker; `end` is the buffer end.
    Marker,
}

/// LZMA decoder state: properties, probability model, state machine and the four repeated distances.
struct LzmaDecoder {
    /// Exactly one element; a `Vec` so that the allocation can be fallible.
    model: Vec<Model>,
    /// `LITERAL_CODER_SIZE << (lc + lp)` probabilities (allocated for the largest `lc + lp` allowed).
    literal: Vec<u16>,
    /// Capacity of `literal` in coders, as `lc + lp`.
    lclp_max: u32,
    lc: u32,
    lp_mask: usize,
    pb_mask: usize,
    state: usize,
    reps: [usize; 4],
}

impl LzmaDecoder {
    /// Allocates a decoder able to use any `lc + lp <= lclp_max`.
    fn new(lclp_max: u32) -> Result<Self, DecodeError> {
        let mut model = Vec::new();
        model.try_reserve_exact(1).map_err(|_| DecodeError::OutOfMemory(size_of::<Model>()))?;
        model.push(Model::INIT);
        let coders = LITERAL_CODER_SIZE << lclp_max;
        let mut literal = Vec::new();
        literal.try_reserve_exact(coders).map_err(|_| DecodeError::OutOfMemory(coders * size_of::<u16>()))?;
        literal.resize(coders, PROB_INIT);
        Ok(Self { model, literal, lclp_max, lc: 0, lp_mask: 0, pb_mask: 0, state: 0, reps: [0; 4] })
    }

    /// Sets `lc`/`lp`/`pb` from the properties byte `(pb * 5 + lp) * 9 + lc`.
    fn set_props(&mut self, props: u8) -> Result<(), DecodeError> {
        let props = u32::from(props);
        if props >= 9 * 5 * 5 {
            return Err(DecodeError::Corrupt("LZMA properties byte out of range"));
        }
        let (lc, lp, pb) = (props % 9, (props / 9) % 5, props / 45);
        if lc + lp > self.lclp_max {
            return Err(DecodeError::Corrupt("LZMA lc + lp too large"));
        }
        self.lc = lc;
        self.lp_mask = (1 << lp) - 1;
        self.pb_mask = (1 << pb) - 1;
        Ok(())
    }

    /// Resets the state machine, the repeated distances and every probability.
    fn reset_state(&mut self) {
        self.state = 0;
        self.reps = [0; 4];
        if let Some(model) = self.model.first_mut() {
            *model = Model::INIT;
        }
        let used = LITERAL_CODER_SIZE << (self.lc + self.lp_mask.count_ones());
        for p in self.literal.iter_mut().take(used) {
            *p = PROB_INIT;
        }
    }

    /// Decodes symbols into `out` from `*pos`, where the dictionary starts at `dict_start`, until `end`
    /// (or the end marker, in `EndMode::Marker`). Returns whether the end marker was seen.
    #[inline(never)]
    fn run(
        &mut self,
        rc: &mut RangeDecoder<'_>,
        out: &mut [u8],
        pos: &mut usize,
        dict_start: usize,
        end: usize,
        mode: EndMode,
    ) -> Result<bool, DecodeError> {
        let Some(model) = self.model.first_mut() else { return Err(DecodeError::OutOfMemory(0)) };
        let literal = &mut self.literal[..];
        let (lc, lp_mask, pb_mask) = (self.lc, self.lp_mask, self.pb_mask);
        let mut state = self.state;
        let mut reps = self.reps;
        let mut p = *pos;
        let mut marker = false;
        // In `Marker` mode only the end marker (or a full buffer) ends the loop.
        let stop = if mode == EndMode::Marker { usize::MAX } else { end };
        while p < stop {
            if rc.overrun {
                break;
            }
            let rel = p - dict_start;
            let pos_state = rel & pb_mask;
            if rc.bit(&mut model.is_match[state][pos_state]) == 0 {
                if p >= out.len() {
                    return Err(DecodeError::OutputFull);
                }
                let prev = if rel > 0 { usize::from(out[p - 1]) } else { 0 };
                let coder = ((rel & lp_mask) << lc) + (prev >> (8 - lc));
                let Some(probs) = literal.get_mut(coder * LITERAL_CODER_SIZE..(coder + 1) * LITERAL_CODER_SIZE) else {
                    return Err(DecodeError::Corrupt("LZMA literal coder out of range"));
                };
                let byte = if state < LIT_STATES {
                    decode_literal(rc, probs)
                } else {
                    if reps[0] >= rel {
                        return Err(DecodeError::Corrupt("match distance beyond the dictionary start"));
                    }
                    decode_matched_literal(rc, probs, out[p - reps[0] - 1])
                };
                out[p] = byte;
                p += 1;
                state = usize::from(NEXT_AFTER_LITERAL[state]);
                continue;
            }
            let len;
            if rc.bit(&mut model.is_rep[state]) == 0 {
                len = model.match_len.decode(rc, pos_state);
                state = if state < LIT_STATES { 7 } else { 10 };
                let dist = model.decode_distance(rc, len);
                if dist == END_MARKER_DIST {
                    marker = true;
                    break;
                }
                reps = [dist as usize, reps[0], reps[1], reps[2]];
            } else {
                if rc.bit(&mut model.is_rep0[state]) == 0 {
                    if rc.bit(&mut model.is_rep0_long[state][pos_state]) == 0 {
                        state = if state < LIT_STATES { 9 } else { 11 };
                        if reps[0] >= rel {
                            return Err(DecodeError::Corrupt("match distance beyond the dictionary start"));
                        }
                        if p >= out.len() {
                            return Err(DecodeError::OutputFull);
                        }
                        out[p] = out[p - reps[0] - 1];
                        p += 1;
                        continue;
                    }
                } else {
                    let dist;
                    if rc.bit(&mut model.is_rep1[state]) == 0 {
                        dist = reps[1];
                    } else {
                        if rc.bit(&mut model.is_rep2[state]) == 0 {
                            dist = reps[2];
                        } else {
                            dist = reps[3];
                            reps[3] = reps[2];
                        }
                        reps[2] = reps[1];
                    }
                    reps[1] = reps[0];
                    reps[0] = dist;
                }
                len = model.rep_len.decode(rc, pos_state);
                state = if state < LIT_STATES { 8 } else { 11 };
            }
            if reps[0] >= rel {
                return Err(DecodeError::Corrupt("match distance beyond the dictionary start"));
            }
            let room = out.len().min(end).saturating_sub(p);
            let len = if len <= room {
                len
            } else {
                match mode {
                    EndMode::Chunk => return Err(DecodeError::Corrupt("LZMA2 match crosses the chunk end")),
                    EndMode::KnownSize => room,
                    EndMode::Marker => return Err(DecodeError::OutputFull),
                }
            };
            copy_match(out, p, reps[0] + 1, len);
            p += len;
        }
        self.state = state;
        self.reps = reps;
        *pos = p;
        if rc.overrun {
            return Err(DecodeError::Truncated("LZMA compressed data"));
        }
        Ok(marker)
    }
}

/// Decodes a plain literal (eight-bit tree).
#[inline(always)]
fn decode_literal(rc: &mut RangeDecoder<'_>, probs: &mut [u16]) -> u8 {
    let mut symbol = 1;
    while symbol < 0x100 {
        symbol = (symbol << 1) | rc.bit(&mut probs[symbol]);
    }
    symbol as u8
}

/// Decodes a literal after a match, using the byte at distance `rep0` as context until the first mismatch.
#[inline(always)]
fn decode_matched_literal(rc: &mut RangeDecoder<'_>, probs: &mut [u16], match_byte: u8) -> u8 {
    let mut match_byte = usize::from(match_byte);
    let mut symbol = 1;
    while symbol < 0x100 {
        let match_bit = (match_byte >> 7) & 1;
        match_byte <<= 1;
        let b = rc.bit(&mut probs[((1 + match_bit) << 8) + symbol]);
        symbol = (symbol << 1) | b;
        if b != match_bit {
            while symbol < 0x100 {
                symbol = (symbol << 1) | rc.bit(&mut probs[symbol]);
            }
            break;
        }
    }
    symbol as u8
}

/// Copies `len` bytes from `dist` bytes back to `pos`; the caller checked `dist <= pos` and `pos + len <= out.len()`.
#[inline(always)]
fn copy_match(out: &mut [u8], pos: usize, dist: usize, len: usize) {
    let src = pos - dist;
    if dist >= len {
        out.copy_within(src..src + len, pos);
    } else {
        for i in pos..pos + len {
            out[i] = out[i - dist];
        }
    }
}

/// Reads a big-endian `u16` at `at`.
fn be16(input: &[u8], at: usize) -> Option<usize> {
    let b = input.get(at..at + 2)?;
    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

/// LZMA2 decoder; one instance can decode many LZMA2 streams (xz blocks) in turn.
pub struct Lzma2Decoder {
    lzma: LzmaDecoder,
}

impl Lzma2Decoder {
    /// Allocates the fixed probability model (about 28 KiB).
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self { lzma: LzmaDecoder::new(LZMA2_LCLP_MAX)? })
    }

    /// Decodes one LZMA2 stream (up to and including its end byte 0x00) from the start of `input` into `out`,
    /// which is also its dictionary. Returns `(input bytes consumed, output bytes written)`.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), DecodeError> {
        let mut ip = 0;
        let mut op = 0;
        let mut dict_start = 0;
        let mut need_dict_reset = true;
        let mut need_props = true;
        loop {
            let Some(&control) = input.get(ip) else { return Err(DecodeError::Truncated("LZMA2 control byte")) };
            ip += 1;
            if control == 0 {
                return Ok((ip, op));
            }
            if control >= 0xE0 || control == 1 {
                need_props = true;
                need_dict_reset = false;
                dict_start = op;
            } else if need_dict_reset {
                return Err(DecodeError::Corrupt("LZMA2 stream does not start with a dictionary reset"));
            }
            if control >= 0x80 {
                let (Some(unpacked), Some(packed)) = (be16(input, ip), be16(input, ip + 2)) else {
                    return Err(DecodeError::Truncated("LZMA2 chunk header"));
                };
                ip += 4;
                let unpacked = ((usize::from(control & 0x1F) << 16) | unpacked) + 1;
                let packed = packed + 1;
                if control >= 0xC0 {
                    let Some(&props) = input.get(ip) else { return Err(DecodeError::Truncated("LZMA2 properties")) };
                    ip += 1;
                    self.lzma.set_props(props)?;
                    need_props = false;
                } else if need_props {
                    return Err(DecodeError::Corrupt("LZMA2 chunk without required properties"));
                }
                if control >= 0xA0 {
                    self.lzma.reset_state();
                }
                let Some(data) = input.get(ip..).and_then(|rest| rest.get(..packed)) else {
                    return Err(DecodeError::Truncated("LZMA2 compressed chunk"));
                };
                let end = op + unpacked;
                if end > out.len() {
                    return Err(DecodeError::OutputFull);
                }
                let mut rc = RangeDecoder::new(data)?;
                let marker = self.lzma.run(&mut rc, out, &mut op, dict_start, end, EndMode::Chunk)?;
                if marker || op != end || !rc.finished_exactly() {
                    return Err(DecodeError::Corrupt("LZMA2 chunk sizes do not match its data"));
                }
                ip += packed;
            } else if control <= 2 {
                let Some(size) = be16(input, ip) else { return Err(DecodeError::Truncated("LZMA2 chunk header")) };
                ip += 2;
                let size = size + 1;
                let Some(data) = input.get(ip..).and_then(|rest| rest.get(..size)) else {
                    return Err(DecodeError::Truncated("LZMA2 uncompressed chunk"));
                };
                let Some(dst) = out.get_mut(op..op + size) else { return Err(DecodeError::OutputFull) };
                dst.copy_from_slice(data);
                op += size;
                ip += size;
            } else {
                return Err(DecodeError::Corrupt("LZMA2 invalid control byte"));
            }
        }
    }
}

/// Size of the legacy `.lzma` header: properties byte, dictionary size (u32 LE), uncompressed size (u64 LE).
const ALONE_HEADER_SIZE: usize = 13;
/// `lc + lp` limit of legacy streams (`lc <= 8`, `lp <= 4`).
const ALONE_LCLP_MAX: u32 = 12;

/// Legacy .lzma ("LZMA alone": 5-byte props+dict, u64 LE size or u64::MAX with end marker) into `out`.
///
/// Returns the number of bytes written. Data after the compressed stream is ignored.
pub fn decode_lzma_alone(input: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let Some(header) = input.get(..ALONE_HEADER_SIZE) else { return Err(DecodeError::Truncated("lzma header")) };
    let props = header[0];
    if u32::from(props) >= 9 * 5 * 5 {
        return Err(DecodeError::Corrupt("lzma properties byte out of range"));
    }
    let mut size_bytes = [0u8; 8];
    size_bytes.copy_from_slice(&header[5..13]);
    let size = u64::from_le_bytes(size_bytes);
    let (end, mode) = if size == u64::MAX {
        (out.len(), EndMode::Marker)
    } else {
        match usize::try_from(size) {
            Ok(n) if n <= out.len() => (n, EndMode::KnownSize),
            _ => return Err(DecodeError::OutputFull),
        }
    };
    let lclp = props % 9 + (props / 9) % 5;
    let mut lzma = LzmaDecoder::new(u32::from(lclp).min(ALONE_LCLP_MAX))?;
    lzma.set_props(props)?;
    let mut rc = RangeDecoder::new(&input[ALONE_HEADER_SIZE..])?;
    let mut pos = 0;
    let marker = lzma.run(&mut rc, out, &mut pos, 0, end, mode)?;
    if marker {
        if mode == EndMode::KnownSize && pos != end {
            return Err(DecodeError::Corrupt("lzma end marker before the declared size"));
        }
        rc.normalize();
        if rc.overrun {
            return Err(DecodeError::Truncated("lzma compressed data"));
        }
        if rc.code != 0 {
            return Err(DecodeError::Corrupt("lzma data after the end marker"));
        }
    }
    Ok(pos)
}
