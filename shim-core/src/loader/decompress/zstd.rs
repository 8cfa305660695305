//! Zstandard decoder (RFC 8878) whose output buffer is its history window.
//!
//! [`decode`] decodes concatenated frames in one call into one flat buffer, like Linux's
//! `zstd_decompress_dctx` into a preallocated buffer: matches are copied from the output written
//! so far, so nothing proportional to the frame's Window_Size is allocated. The only allocations
//! are fixed-size tables and the 128 KiB literals buffer (about 150 KiB in all).

use super::DecodeError;

mod bits;
mod execute;
mod frame;
mod fse;
mod huffman;
mod literals;
mod sequences;
mod xxhash;

use alloc::boxed::Box;
use alloc::vec::Vec;

/// Magic_Number of a Zstandard frame (RFC 8878 §3.1.1).
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Skippable frames use the magic numbers 0x184D2A50..=0x184D2A5F (RFC 8878 §3.1.2).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// Decode every frame of `input` (zstd frames and skippable frames, concatenated) into `out`,
/// using `out` itself as the history window. Returns the number of bytes written.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let mut decoder: Option<frame::FrameDecoder> = None;
    let mut at = 0usize;
    let mut pos = 0usize;
    let mut frames = 0usize;
    loop {
        let rest = input.get(at..).unwrap_or(&[]);
        if rest.is_empty() && frames > 0 {
            return Ok(pos);
        }
        let magic = match rest.get(..4) {
            Some(m) => u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
            None if frames > 0 => return Err(DecodeError::Corrupt("data after the last zstd frame")),
            None => return Err(DecodeError::Truncated("zstd frame magic")),
        };
        let body = &rest[4..];
        let used = if magic == ZSTD_MAGIC {
            let dec = match decoder.as_mut() {
                Some(d) => d,
                None => decoder.insert(frame::FrameDecoder::new()?),
            };
            let (used, end) = dec.decode_frame(body, out, pos)?;
            pos = end;
            used
        } else if magic & 0xFFFF_FFF0 == SKIPPABLE_MAGIC {
            skippable_len(body)?
        } else if frames > 0 {
            return Err(DecodeError::Corrupt("data after the last zstd frame"));
        } else {
            return Err(DecodeError::Corrupt("not a zstd frame"));
        };
        at += 4 + used;
        frames += 1;
    }
}

/// Length of a skippable frame after its magic number: Frame_Size plus its 4 bytes (RFC 8878 §3.1.2).
fn skippable_len(body: &[u8]) -> Result<usize, DecodeError> {
    let size = body.get(..4).ok_or(DecodeError::Truncated("zstd skippable frame"))?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    if body.len() - 4 < size {
        return Err(DecodeError::Truncated("zstd skippable frame"));
    }
    Ok(4 + size)
}

/// Allocates a boxed array of `N` copies of `fill`, failing with `OutOfMemory` instead of aborting.
fn alloc_array<T: Copy, const N: usize>(fill: T) -> Result<Box<[T; N]>, DecodeError> {
    let bytes = N.saturating_mul(core::mem::size_of::<T>());
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(N).map_err(|_| DecodeError::OutOfMemory(bytes))?;
    v.resize(N, fill);
    v.into_boxed_slice().try_into().map_err(|_| DecodeError::OutOfMemory(bytes))
}
