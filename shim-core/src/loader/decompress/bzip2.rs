//! bzip2, through libbz2-rs-sys (a Rust port of libbzip2). bzip2 has no
//! history window: its state is one block (at most 900 kB of symbols, about
//! 3.6 MB of tables), allocated for the call and freed after it.

use super::DecodeError;

pub fn decode(data: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    use libbz2_rs_sys::{BZ_DATA_ERROR, BZ_DATA_ERROR_MAGIC, BZ_MEM_ERROR, BZ_OK, BZ_OUTBUFF_FULL, BZ_UNEXPECTED_EOF};
    // bzip2 counts in u32: a payload or output beyond 4 GiB is not a kernel.
    let src_len = u32::try_from(data.len()).map_err(|_| DecodeError::Unsupported("bzip2 input over 4 GiB"))?;
    let mut dst_len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    // SAFETY: `out` is valid for `dst_len` bytes of writes and `data` for
    // `src_len` bytes of reads (the function only reads its `source`, whatever
    // its C signature says); small = 0 (the fast decoder), verbosity = 0.
    let rc = unsafe {
        libbz2_rs_sys::BZ2_bzBuffToBuffDecompress(
            out.as_mut_ptr().cast(),
            &mut dst_len,
            data.as_ptr() as *mut _,
            src_len,
            0,
            0,
        )
    };
    match rc {
        BZ_OK => Ok(dst_len as usize),
        BZ_OUTBUFF_FULL => Err(DecodeError::OutputFull),
        BZ_UNEXPECTED_EOF => Err(DecodeError::Truncated("bzip2 stream")),
        BZ_DATA_ERROR_MAGIC => Err(DecodeError::Corrupt("not a bzip2 stream")),
        BZ_DATA_ERROR => Err(DecodeError::Corrupt("bad bzip2 data or block CRC")),
        BZ_MEM_ERROR => Err(DecodeError::OutOfMemory(4 << 20)),
        _ => Err(DecodeError::Corrupt("bzip2 decoder error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// "hello hello hello\n" as `bzip2 -9` writes it.
    const HELLO: &[u8] = &[
        0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xe5, 0xb5, 0xf3, 0x09, 0x00, 0x00, 0x04, 0x51,
        0x00, 0x00, 0x10, 0x40, 0x00, 0x02, 0x44, 0xa0, 0x00, 0x21, 0xb5, 0x18, 0x0c, 0x02, 0x90, 0x69, 0xc2, 0xa3,
        0x0b, 0xb9, 0x22, 0x9c, 0x28, 0x48, 0x72, 0xda, 0xf9, 0x84, 0x80,
    ];

    #[test]
    fn decodes_and_bounds_the_output() {
        let mut out = vec![0u8; 64];
        let n = decode(HELLO, &mut out).unwrap();
        assert_eq!(&out[..n], b"hello hello hello\n");
        assert_eq!(decode(HELLO, &mut [0u8; 5]), Err(DecodeError::OutputFull));
    }

    #[test]
    fn truncations_and_flips_are_errors_not_panics() {
        let mut out = vec![0u8; 64];
        for n in 0..HELLO.len() {
            assert!(decode(&HELLO[..n], &mut out).is_err(), "prefix {n}");
        }
        for i in 0..HELLO.len() {
            let mut m = HELLO.to_vec();
            m[i] ^= 0x10;
            let _ = decode(&m, &mut out);
        }
    }
}
