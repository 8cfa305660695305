//! LZ4 legacy framing (`lz4 -l`, as Linux's bzImage uses): magic, then
//! `[u32 LE length][block]` repeated; a repeated magic starts a new stream.
//! The last 4 bytes are Linux's size trailer, not a block. Legacy blocks
//! (8 MiB of output at most) are independent: each decodes straight into
//! its place in the output.

use super::DecodeError;

/// `lz4 -l` legacy frame magic.
pub const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Largest block of the legacy frame format.
const LZ4_LEGACY_BLOCK_SIZE: usize = 8 << 20;

pub fn decode(data: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    if data.len() < 8 {
        return Err(DecodeError::Truncated("lz4 stream"));
    }
    let end = data.len() - 4;
    let (mut pos, mut written) = (4, 0usize);
    while pos + 4 <= end {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        if len == LZ4_LEGACY_MAGIC {
            continue;
        }
        let block = pos.checked_add(len as usize).filter(|&e| e <= end).map(|e| &data[pos..e]);
        let block = block.ok_or(DecodeError::Truncated("lz4 block"))?;
        pos += block.len();
        let room = out.len() - written;
        let dst = &mut out[written..written + room.min(LZ4_LEGACY_BLOCK_SIZE)];
        match lz4_flex::block::decompress_into(block, dst) {
            Ok(n) => written += n,
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if room < LZ4_LEGACY_BLOCK_SIZE => {
                return Err(DecodeError::OutputFull)
            }
            Err(_) => return Err(DecodeError::Corrupt("bad lz4 block")),
        }
    }
    if pos != end {
        return Err(DecodeError::Truncated("lz4 block length"));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn lz4_frame(payload: &[u8], blocks: usize) -> Vec<u8> {
        let mut f = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for chunk in payload.chunks(payload.len().div_ceil(blocks)) {
            let b = lz4_flex::block::compress(chunk);
            f.extend_from_slice(&(b.len() as u32).to_le_bytes());
            f.extend_from_slice(&b);
        }
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f
    }

    #[test]
    fn roundtrip_multi_block_and_concatenated() {
        let payload: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut f = lz4_frame(&payload[..600_000], 3);
        f.truncate(f.len() - 4);
        // A second stream, introduced by a stray magic word.
        let g = lz4_frame(&payload[600_000..], 2);
        f.extend_from_slice(&g);
        let n = f.len();
        f[n - 4..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut out = vec![0u8; payload.len()];
        assert_eq!(decode(&f, &mut out), Ok(payload.len()));
        assert_eq!(out, payload);
    }

    #[test]
    fn bomb_is_refused_by_the_output() {
        let f = lz4_frame(&vec![0u8; 1 << 20], 1);
        assert_eq!(decode(&f, &mut [0u8; 1000]), Err(DecodeError::OutputFull));
    }

    #[test]
    fn truncated_and_corrupt_blocks() {
        let f = lz4_frame(&[7u8; 5000], 1);
        let mut t = f[..f.len() - 10].to_vec();
        t.extend_from_slice(&5000u32.to_le_bytes());
        let mut out = vec![0u8; 8000];
        assert_eq!(decode(&t, &mut out), Err(DecodeError::Truncated("lz4 block")));
        let mut c = f.clone();
        c[8] = 0xff; // token claims a huge literal run
        c[9] = 0xff;
        assert!(decode(&c, &mut out).is_err());
        for i in 0..f.len() {
            let mut m = f.clone();
            m[i] ^= 0xa5;
            let _ = decode(&m, &mut out);
        }
    }
}
