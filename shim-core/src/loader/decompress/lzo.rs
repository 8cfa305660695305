//! LZO (lzop's container around LZO1X blocks, as Linux's `unlzo` reads it).
//! Blocks are independent; each decodes straight into its place in the
//! output with the `lzo1x` crate. Adler-32 and CRC-32 checks of the
//! decompressed data are verified when the header asks for them.

use super::DecodeError;

/// lzop's magic.
pub const LZOP_MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
// Header flags.
const F_ADLER32_D: u32 = 0x0001;
const F_ADLER32_C: u32 = 0x0002;
const F_H_EXTRA_FIELD: u32 = 0x0040;
const F_CRC32_D: u32 = 0x0100;
const F_CRC32_C: u32 = 0x0200;
const F_H_FILTER: u32 = 0x0800;
/// lzop's largest block.
const MAX_BLOCK: usize = 64 << 20;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let b = self.pos.checked_add(n).and_then(|e| self.data.get(self.pos..e)).ok_or(DecodeError::Truncated(what))?;
        self.pos += n;
        Ok(b)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn be16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn be32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Adler-32 (RFC 1950), in runs short enough that the sums cannot overflow.
fn adler32(d: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for run in d.chunks(5552) {
        for &x in run {
            a += x as u32;
            b += a;
        }
        (a, b) = (a % 65521, b % 65521);
    }
    (b << 16) | a
}

/// The file header; returns its flags.
fn header(r: &mut Reader) -> Result<u32, DecodeError> {
    const H: &str = "lzop header";
    if r.bytes(9, H)? != LZOP_MAGIC {
        return Err(DecodeError::Corrupt("bad lzop magic"));
    }
    let version = r.be16(H)?;
    r.be16(H)?; // library version
    if version >= 0x0940 {
        r.be16(H)?; // version needed to extract
    }
    let method = r.u8(H)?;
    if !(1..=3).contains(&method) {
        return Err(DecodeError::Unsupported("lzop method other than LZO1X"));
    }
    if version >= 0x0940 {
        r.u8(H)?; // level
    }
    let flags = r.be32(H)?;
    if flags & F_H_FILTER != 0 {
        return Err(DecodeError::Unsupported("lzop filter"));
    }
    r.bytes(8, H)?; // mode, mtime_low
    if version >= 0x0940 {
        r.bytes(4, H)?; // mtime_high
    }
    let name_len = r.u8(H)? as usize;
    r.bytes(name_len + 4, H)?; // name, header checksum
    if flags & F_H_EXTRA_FIELD != 0 {
        let n = r.be32(H)? as usize;
        r.bytes(n, H)?;
        r.bytes(4, H)?;
    }
    Ok(flags)
}

pub fn decode(data: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let mut r = Reader { data, pos: 0 };
    let flags = header(&mut r)?;
    let mut written = 0usize;
    loop {
        const B: &str = "lzop block header";
        let dst_len = r.be32(B)? as usize;
        if dst_len == 0 {
            return Ok(written);
        }
        let src_len = r.be32(B)? as usize;
        if dst_len > MAX_BLOCK || src_len > dst_len {
            return Err(DecodeError::Corrupt("lzop block sizes out of range"));
        }
        let adler_d = if flags & F_ADLER32_D != 0 { Some(r.be32(B)?) } else { None };
        let crc_d = if flags & F_CRC32_D != 0 { Some(r.be32(B)?) } else { None };
        if src_len < dst_len {
            for f in [F_ADLER32_C, F_CRC32_C] {
                if flags & f != 0 {
                    r.be32(B)?; // a check of the compressed bytes: the data's own checks cover them
                }
            }
        }
        let src = r.bytes(src_len, "lzop block")?;
        let dst = written.checked_add(dst_len).and_then(|e| out.get_mut(written..e)).ok_or(DecodeError::OutputFull)?;
        if src_len == dst_len {
            dst.copy_from_slice(src);
        } else {
            lzo1x::decompress(src, dst).map_err(|_| DecodeError::Corrupt("bad LZO1X block"))?;
        }
        if adler_d.is_some_and(|a| a != adler32(dst)) {
            return Err(DecodeError::Checksum("lzop block Adler-32"));
        }
        if crc_d.is_some_and(|c| c != crc32fast::hash(dst)) {
            return Err(DecodeError::Checksum("lzop block CRC-32"));
        }
        written += dst_len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use alloc::vec;
    use alloc::vec::Vec;
    use std::process::Command;

    fn lzop(data: &[u8], args: &[&str]) -> Vec<u8> {
        static N: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(std::format!("cocoon-lzo-{}-{n}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        let o = Command::new("lzop").args(args).arg("-c").arg(&path).output().expect("lzop (ci/setup.sh installs it)");
        std::fs::remove_file(&path).unwrap();
        assert!(o.status.success());
        o.stdout
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3000 < 2000 {
                    (i % 97) as u8
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    #[test]
    fn roundtrips_against_lzop() {
        let data = sample(1 << 20);
        for args in [&["-9"][..], &["-1"], &["-9", "--crc32"], &["-1", "--no-checksum"]] {
            let z = lzop(&data, args);
            let mut out = vec![0u8; data.len()];
            assert_eq!(decode(&z, &mut out), Ok(data.len()), "{args:?}");
            assert_eq!(out, data);
            assert_eq!(decode(&z, &mut out[..data.len() - 1]), Err(DecodeError::OutputFull));
        }
    }

    #[test]
    fn truncations_and_flips_are_errors_not_panics() {
        let data = sample(40_000);
        let z = lzop(&data, &["-9"]);
        let mut out = vec![0u8; data.len()];
        for n in 0..z.len() {
            assert!(decode(&z[..n], &mut out).is_err(), "prefix {n}");
        }
        for i in (0..z.len()).step_by(3) {
            let mut m = z.clone();
            m[i] ^= 0x41;
            if let Ok(n) = decode(&m, &mut out) {
                // Only a flip in a field nothing checks (name, mtime) may pass.
                assert_eq!(&out[..n], &data[..], "flip at {i}");
            }
        }
    }
}
