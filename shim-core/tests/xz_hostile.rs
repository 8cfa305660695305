//! Malformed, truncated and hostile inputs: errors, never panics.

#[path = "decoders/xz_common.rs"]
mod common;

use common::*;
use shim_core::loader::decompress::{lzma::decode_lzma_alone, lzma::Lzma2Decoder, xz::decode, DecodeError};

/// A small valid stream: (name, compressed, uncompressed, is_xz, has_crc).
type Sample = (&'static str, Vec<u8>, Vec<u8>, bool, bool);

/// A few small valid streams.
fn small_streams() -> Vec<Sample> {
    let t = text(3000, 21);
    let x = x86_code(3000);
    let r = random(700, 22);
    let mut mixed = t.clone();
    mixed.extend_from_slice(&r);
    vec![
        ("xz crc32", xz(&["--check=crc32"], &t), t.clone(), true, true),
        ("xz crc64 x86", xz(&["--check=crc64", "--x86", "--lzma2=preset=6"], &x), x.clone(), true, true),
        ("xz none", xz(&["--check=none"], &t), t.clone(), true, false),
        ("xz random", xz(&["--check=crc32"], &r), r.clone(), true, true),
        ("xz multi-block", xz(&["--check=crc32", "--block-size=1000"], &mixed), mixed.clone(), true, true),
        ("lzma marker", xz(&["--format=lzma"], &t), t.clone(), false, false),
        ("lzma marker x86", xz(&["--format=lzma", "-0"], &x), x.clone(), false, false),
    ]
}

fn run(is_xz: bool, input: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    if is_xz {
        decode(input, out)
    } else {
        decode_lzma_alone(input, out)
    }
}

#[test]
fn every_prefix_is_an_error() {
    for (name, c, data, is_xz, _) in small_streams() {
        let mut out = vec![0u8; data.len() + 64];
        assert_eq!(run(is_xz, &c, &mut out), Ok(data.len()), "{name}");
        for cut in 0..c.len() {
            let r = run(is_xz, &c[..cut], &mut out);
            assert!(r.is_err(), "{name}: prefix of {cut}/{} bytes decoded: {r:?}", c.len());
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    for (name, c, data, is_xz, has_crc) in small_streams() {
        let mut out = vec![0u8; data.len() + 64];
        let mut accepted = 0;
        for at in 0..c.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut m = c.clone();
                m[at] ^= mask;
                if let Ok(n) = run(is_xz, &m, &mut out) {
                    accepted += 1;
                    // Only a legacy or check-less stream may decode wrongly.
                    assert!(!has_crc || (n == data.len() && out[..n] == data[..]), "{name}: flip {mask:#x} at {at}");
                }
            }
        }
        eprintln!("{name}: {} bytes, {accepted} of {} flips accepted", c.len(), c.len() * 3);
        if has_crc {
            assert_eq!(accepted, 0, "{name}");
        }
    }
}

#[test]
fn prng_mutations_never_panic() {
    let streams = small_streams();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..6000 {
        let (_, c, data, is_xz, _) = &streams[round % streams.len()];
        let mut m = c.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(m.len());
            match rng.below(6) {
                0 => m[at] ^= 1 << rng.below(8),
                1 => m[at] = rng.next() as u8,
                2 => {
                    m.remove(at);
                }
                3 => m.insert(at, rng.next() as u8),
                4 => m.truncate(at),
                _ => {
                    let b = m[at];
                    for x in m.iter_mut().skip(at).take(1 + rng.below(16)) {
                        *x = b;
                    }
                }
            }
            if m.is_empty() {
                break;
            }
        }
        // Random output sizes, including too small.
        let len = match rng.below(3) {
            0 => data.len(),
            1 => rng.below(data.len() + 1),
            _ => data.len() * 2,
        };
        let mut out = vec![0u8; len];
        let r = run(*is_xz, &m, &mut out);
        let key = match r {
            Ok(_) => "Ok".to_string(),
            Err(e) => format!("{e:?}").split('(').next().unwrap().to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    eprintln!("mutation outcomes: {outcomes:?}");
}

#[test]
fn bombs_hit_output_full() {
    let zeros = vec![0u8; 20 << 20];
    let mut out = vec![0u8; 64 << 10];
    let c = xz(&["-9"], &zeros);
    assert!(c.len() < 8 << 10);
    assert_eq!(decode(&c, &mut out), Err(DecodeError::OutputFull));
    let c = xz(&["--format=lzma", "-9"], &zeros);
    assert_eq!(decode_lzma_alone(&c, &mut out), Err(DecodeError::OutputFull));
    // A legacy header claiming a huge known size fails before decoding anything.
    let mut huge = c.clone();
    huge[5..13].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_eq!(decode_lzma_alone(&huge, &mut out), Err(DecodeError::OutputFull));
    // Empty output buffer.
    assert_eq!(decode(&c, &mut []), Err(DecodeError::Corrupt("xz stream header magic")));
    assert_eq!(decode_lzma_alone(&c, &mut []), Err(DecodeError::OutputFull));
}

/// Offset of the first block header in a single-stream xz file.
const BLOCK: usize = 12;

/// Rewrites the block header CRC32 after editing the header.
fn fix_block_header_crc(c: &mut [u8]) {
    let size = (usize::from(c[BLOCK]) + 1) * 4;
    let crc = crc32(&c[BLOCK..BLOCK + size - 4]);
    c[BLOCK + size - 4..BLOCK + size].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn bad_filter_ids() {
    let data = text(5000, 31);
    let mut out = vec![0u8; data.len()];
    // Single LZMA2 filter: flags at BLOCK+1, filter ID at BLOCK+2 (no size fields in xz's single-threaded output).
    let c = xz(&["-6", "-T1"], &data);
    assert_eq!(c[BLOCK + 1], 0x00, "no optional size fields");
    assert_eq!(c[BLOCK + 2], 0x21);
    for (id, expected) in [
        (0x22u8, DecodeError::Unsupported("xz filter unknown ID")),
        (0x03, DecodeError::Corrupt("xz filter chain does not end with LZMA2")),
        (0x04, DecodeError::Corrupt("xz filter chain does not end with LZMA2")),
        (0x7F, DecodeError::Unsupported("xz filter unknown ID")),
    ] {
        let mut m = c.clone();
        m[BLOCK + 2] = id;
        assert_eq!(decode(&m, &mut out), Err(DecodeError::Checksum("xz block header CRC32")));
        fix_block_header_crc(&mut m);
        assert_eq!(decode(&m, &mut out), Err(expected), "id {id:#x}");
    }
    // x86 + LZMA2: swap the two filters' roles.
    let c = xz(&["--x86", "--lzma2", "-T1"], &data);
    assert_eq!(&c[BLOCK + 1..BLOCK + 5], &[0x01, 0x04, 0x00, 0x21]);
    let mut m = c.clone();
    m[BLOCK + 2] = 0x21;
    fix_block_header_crc(&mut m);
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz LZMA2 filter not last in the chain")));
    let mut m = c.clone();
    m[BLOCK + 2] = 0x0A;
    fix_block_header_crc(&mut m);
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Unsupported("xz filter ARM64 BCJ")));
    // Reserved block flag bits.
    let mut m = c.clone();
    m[BLOCK + 1] |= 0x04;
    fix_block_header_crc(&mut m);
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Unsupported("xz block flags")));
    // LZMA2 dictionary size property above 40.
    let mut m = c.clone();
    m[BLOCK + 6] = 41;
    fix_block_header_crc(&mut m);
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz LZMA2 filter properties")));
}

/// Splits a single-stream xz file into (index start, footer start).
fn index_and_footer(c: &[u8]) -> (usize, usize) {
    let footer = c.len() - 12;
    let backward = u32::from_le_bytes(c[footer + 4..footer + 8].try_into().unwrap());
    (footer - (backward as usize + 1) * 4, footer)
}

#[test]
fn bad_index_and_footer() {
    let data = text(5000, 41);
    let mut out = vec![0u8; data.len()];
    let c = xz(&["-6", "-T1"], &data);
    let (index, footer) = index_and_footer(&c);
    assert_eq!(c[index], 0x00);
    assert_eq!(c[index + 1], 0x01, "one record");
    let fix_index_crc = |m: &mut Vec<u8>| {
        let crc = crc32(&m[index..footer - 4]);
        m[footer - 4..footer].copy_from_slice(&crc.to_le_bytes());
    };
    // Wrong record count.
    let mut m = c.clone();
    m[index + 1] = 0x02;
    fix_index_crc(&mut m);
    assert!(matches!(decode(&m, &mut out), Err(DecodeError::Corrupt(_))));
    // Wrong unpadded size (first byte of the record).
    let mut m = c.clone();
    m[index + 2] ^= 0x04;
    // The records are compared with the blocks before the index CRC32 is checked.
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz index records do not match the blocks")));
    fix_index_crc(&mut m);
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz index records do not match the blocks")));
    // Index padding byte (the CRC catches it first, then the padding check).
    let mut m = c.clone();
    if footer - 4 > index + 4 {
        m[footer - 5] = 1;
        assert!(decode(&m, &mut out).is_err());
    }
    // Backward size off by one unit.
    let mut m = c.clone();
    m[footer + 4] += 1;
    let crc = crc32(&m[footer + 4..footer + 10]);
    m[footer..footer + 4].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz backward size does not match the index")));
    // Footer flags that differ from the header.
    let mut m = c.clone();
    m[footer + 9] ^= 0x05; // CRC64 (the default) becomes CRC32
    let crc = crc32(&m[footer + 4..footer + 10]);
    m[footer..footer + 4].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz stream footer flags differ from the header")));
    // Bad magic.
    let mut m = c.clone();
    m[c.len() - 1] = b'Z' + 1;
    assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("xz stream footer magic")));
    let mut m = c.clone();
    m[0] = 0;
    assert!(decode(&m, &mut out).is_err());
}

#[test]
fn raw_lzma2_control_bytes() {
    let mut dec = Lzma2Decoder::new().unwrap();
    let mut out = [0u8; 16];
    assert_eq!(dec.decode(&[0x00], &mut out), Ok((1, 0)));
    assert_eq!(dec.decode(&[0x01, 0x00, 0x02, b'a', b'b', b'c', 0x02, 0x00, 0x00, b'd', 0x00], &mut out), Ok((11, 4)));
    assert_eq!(&out[..4], b"abcd");
    // No dictionary reset first.
    assert!(matches!(dec.decode(&[0x02, 0x00, 0x00, b'a', 0x00], &mut out), Err(DecodeError::Corrupt(_))));
    // Invalid control byte.
    assert!(matches!(dec.decode(&[0x03], &mut out), Err(DecodeError::Corrupt(_))));
    // LZMA chunk without properties after a dictionary reset.
    let r = dec.decode(&[0x01, 0x00, 0x00, b'a', 0x80, 0x00, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0x00], &mut out);
    assert_eq!(r, Err(DecodeError::Corrupt("LZMA2 chunk without required properties")));
    // Properties with lc + lp > 4.
    let r = dec.decode(&[0xE0, 0x00, 0x00, 0x00, 0x05, 8, 0, 0, 0, 0, 0, 0x00], &mut out);
    assert_eq!(r, Err(DecodeError::Corrupt("LZMA lc + lp too large")));
    // Uncompressed chunk larger than the output.
    let big = [&[0x01u8, 0x00, 0x10][..], &[7u8; 17][..], &[0x00][..]].concat();
    assert_eq!(dec.decode(&big, &mut out), Err(DecodeError::OutputFull));
    // Missing end byte.
    assert_eq!(dec.decode(&[0x01, 0x00, 0x00, b'a'], &mut out), Err(DecodeError::Truncated("LZMA2 control byte")));
}

#[test]
fn legacy_header_errors() {
    let mut out = [0u8; 16];
    assert_eq!(decode_lzma_alone(&[0x5D, 0, 0, 1], &mut out), Err(DecodeError::Truncated("lzma header")));
    let mut h = vec![225u8, 0, 0, 1, 0];
    h.extend_from_slice(&[0xFF; 8]);
    h.extend_from_slice(&[0; 5]);
    assert!(matches!(decode_lzma_alone(&h, &mut out), Err(DecodeError::Corrupt(_))));
    // lc = 8, lp = 4 is valid for the legacy format (a 6 MiB literal table); an all-zero body is truncated.
    h[0] = (4 * 5 + 4) * 9 + 8;
    assert!(decode_lzma_alone(&h, &mut out).is_err());
    // Nonzero first range-coder byte.
    h[0] = 0x5D;
    h[13] = 1;
    assert_eq!(decode_lzma_alone(&h, &mut out), Err(DecodeError::Corrupt("LZMA range coder first byte not zero")));
}
