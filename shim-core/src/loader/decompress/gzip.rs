//! gzip (RFC 1952): header, raw deflate straight into the output (the whole
//! output is the window), CRC32 and ISIZE of the member checked.

use super::DecodeError;

// Header flags.
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;

/// Where the deflate data of the member in `data` starts.
fn header_len(data: &[u8]) -> Result<usize, DecodeError> {
    let trunc = DecodeError::Truncated("gzip header");
    if data.len() < 10 {
        return Err(trunc);
    }
    if data[2] != 8 {
        return Err(DecodeError::Corrupt("compression method is not deflate"));
    }
    let flags = data[3];
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let x = data.get(pos..pos + 2).ok_or(trunc.clone())?;
        pos += 2 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    for f in [FNAME, FCOMMENT] {
        if flags & f != 0 {
            let nul = data.get(pos..).and_then(|d| d.iter().position(|&b| b == 0)).ok_or(trunc.clone())?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    if pos > data.len() {
        return Err(trunc);
    }
    Ok(pos)
}

/// One gzip member into `out`; returns the bytes written.
pub fn decode(data: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let start = header_len(data)?;
    let mut state = alloc::boxed::Box::<DecompressorOxide>::default();
    let (status, consumed, written) =
        decompress(&mut state, &data[start..], out, 0, inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF);
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => return Err(DecodeError::OutputFull),
        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
            return Err(DecodeError::Truncated("gzip stream"))
        }
        _ => return Err(DecodeError::Corrupt("bad deflate data")),
    }
    let t = data.get(start + consumed..start + consumed + 8).ok_or(DecodeError::Truncated("gzip trailer"))?;
    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    if isize != written as u32 {
        return Err(DecodeError::Corrupt("ISIZE does not match the decompressed length"));
    }
    if crc32fast::hash(&out[..written]) != crc {
        return Err(DecodeError::Checksum("gzip CRC32"));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn gzip_of(payload: &[u8], name: Option<&[u8]>) -> Vec<u8> {
        let mut g = vec![0x1f, 0x8b, 8, if name.is_some() { FNAME } else { 0 }, 0, 0, 0, 0, 0, 3];
        if let Some(n) = name {
            g.extend_from_slice(n);
            g.push(0);
        }
        g.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(payload, 6));
        g.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        g.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        g
    }

    #[test]
    fn roundtrip_with_name() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut out = vec![0u8; payload.len()];
        assert_eq!(decode(&gzip_of(&payload, Some(b"vmlinux")), &mut out), Ok(payload.len()));
        assert_eq!(out, payload);
    }

    #[test]
    fn bomb_truncation_corruption() {
        let g = gzip_of(&vec![0u8; 1 << 20], None);
        assert_eq!(decode(&g, &mut [0u8; 4096]), Err(DecodeError::OutputFull));
        let mut big = vec![0u8; 2 << 20];
        assert!(matches!(decode(&g[..12], &mut big), Err(DecodeError::Truncated(_))));
        assert!(matches!(decode(&g[..g.len() - 3], &mut big), Err(DecodeError::Truncated(_))));
        let mut bad = g.clone();
        bad[2] = 9;
        assert!(matches!(decode(&bad, &mut big), Err(DecodeError::Corrupt(_))));
        let mut crc = g.clone();
        let n = crc.len();
        crc[n - 8] ^= 1;
        assert_eq!(decode(&crc, &mut big), Err(DecodeError::Checksum("gzip CRC32")));
        let mut name_unterminated = vec![0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 3];
        name_unterminated.extend_from_slice(&[b'a'; 20]);
        assert!(matches!(decode(&name_unterminated, &mut big), Err(DecodeError::Truncated(_))));
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_not_a_panic() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 13) as u8).collect();
        let g = gzip_of(&payload, Some(b"x"));
        let mut out = vec![0u8; 4000];
        for n in 0..g.len() {
            assert!(decode(&g[..n], &mut out).is_err(), "prefix {n}");
        }
        for i in 0..g.len() {
            let mut m = g.clone();
            m[i] ^= 0x55;
            let _ = decode(&m, &mut out);
        }
    }
}
