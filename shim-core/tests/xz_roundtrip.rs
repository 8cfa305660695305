//! Round trips against the real `xz` 5.4 CLI.

#[path = "decoders/xz_common.rs"]
mod common;

use common::*;
use shim_core::loader::decompress::{lzma::decode_lzma_alone, xz::decode, DecodeError};

/// Inputs every configuration is tried with.
fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("text", text(300_000, 1)),
        ("random", random(200_000, 2)),
        ("runs", runs(400_000, 3)),
        ("x86", x86_code(600_000)),
        ("empty", Vec::new()),
        ("one", vec![0x42]),
    ]
}

fn roundtrip_all(args: &[&str]) {
    for (name, data) in inputs() {
        eprintln!("xz {args:?} on {name}");
        let c = xz(args, &data);
        assert_xz_roundtrip(&c, &data);
    }
}

#[test]
fn preset_0() {
    roundtrip_all(&["-0"]);
}

#[test]
fn preset_6() {
    roundtrip_all(&["-6"]);
}

#[test]
fn preset_9e() {
    roundtrip_all(&["-9e"]);
}

#[test]
fn check_none() {
    roundtrip_all(&["--check=none"]);
}

#[test]
fn check_crc32() {
    roundtrip_all(&["--check=crc32"]);
}

#[test]
fn check_crc64() {
    roundtrip_all(&["--check=crc64"]);
}

#[test]
fn linux_style_x86_bcj() {
    roundtrip_all(&["--check=crc32", "--x86", "--lzma2=preset=6,dict=32MiB"]);
}

#[test]
fn x86_bcj_with_start_offset() {
    let data = x86_code(400_000);
    let c = xz(&["--x86=start=12345", "--lzma2=preset=1"], &data);
    assert_xz_roundtrip(&c, &data);
}

#[test]
fn lzma2_odd_properties() {
    let data = x86_code(300_000);
    for lzma2 in ["lc=0,lp=0,pb=0", "lc=4,lp=0,pb=4", "lc=1,lp=3,pb=1", "lc=0,lp=4,pb=2", "mode=fast,nice=273"] {
        let c = xz(&[&format!("--lzma2=preset=2,{lzma2}")], &data);
        assert_xz_roundtrip(&c, &data);
    }
}

#[test]
fn multi_block() {
    for (name, data) in inputs() {
        eprintln!("multi-block {name}");
        let c = xz(&["--block-size=100KiB", "-T1"], &data);
        assert_xz_roundtrip(&c, &data);
        let c = xz(&["--block-size=50KiB", "--x86", "--lzma2=preset=6", "--check=crc64"], &data);
        assert_xz_roundtrip(&c, &data);
    }
}

#[test]
fn concatenated_streams_with_padding() {
    let a = text(50_000, 7);
    let b = x86_code(80_000);
    let c = random(20_000, 8);
    let mut stream = xz(&["-6"], &a);
    stream.extend_from_slice(&[0; 8]);
    stream.extend(xz(&["--x86", "--lzma2=preset=3", "--check=crc32"], &b));
    stream.extend(xz(&["--check=none"], &[]));
    stream.extend_from_slice(&[0; 4]);
    stream.extend(xz(&["--check=crc64", "--block-size=7000"], &c));
    stream.extend_from_slice(&[0; 12]);
    let expected = [a, b, c].concat();
    assert_xz_roundtrip(&stream, &expected);
    // Padding that is not a multiple of four is rejected, as is trailing garbage.
    let mut bad = stream.clone();
    bad.push(0);
    let mut out = vec![0u8; expected.len()];
    assert!(matches!(decode(&bad, &mut out), Err(DecodeError::Corrupt(_))));
    let mut bad = stream.clone();
    bad.extend_from_slice(b"junk");
    assert!(decode(&bad, &mut out).is_err());
    // Padding before the first stream is not allowed.
    let mut bad = vec![0u8; 4];
    bad.extend_from_slice(&stream);
    assert!(decode(&bad, &mut out).is_err());
}

#[test]
fn sha256_is_unsupported() {
    let c = xz(&["--check=sha256"], b"hello");
    let mut out = [0u8; 16];
    assert_eq!(decode(&c, &mut out), Err(DecodeError::Unsupported("xz SHA-256 check")));
}

#[test]
fn other_filters_are_unsupported() {
    let data = text(10_000, 9);
    let mut out = vec![0u8; data.len()];
    for (args, what) in [
        (&["--delta=dist=4", "--lzma2"][..], "xz filter delta"),
        (&["--arm", "--lzma2"][..], "xz filter ARM BCJ"),
        (&["--armthumb", "--lzma2"][..], "xz filter ARM-Thumb BCJ"),
        (&["--powerpc", "--lzma2"][..], "xz filter PowerPC BCJ"),
        (&["--ia64", "--lzma2"][..], "xz filter IA-64 BCJ"),
        (&["--sparc", "--lzma2"][..], "xz filter SPARC BCJ"),
        (&["--x86", "--delta", "--lzma2"][..], "xz filter delta"),
    ] {
        let c = xz(args, &data);
        assert_eq!(decode(&c, &mut out), Err(DecodeError::Unsupported(what)), "{args:?}");
    }
}

/// Compresses with `xz --format=lzma` (size unknown, end marker present).
fn lzma_alone(args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut a = vec!["--format=lzma"];
    a.extend_from_slice(args);
    let c = xz(&a, data);
    assert_eq!(c[5..13], [0xFF; 8], "xz writes an unknown size");
    c
}

fn assert_lzma_roundtrip(c: &[u8], data: &[u8]) {
    let mut out = vec![0u8; data.len()];
    assert_eq!(decode_lzma_alone(c, &mut out), Ok(data.len()));
    assert!(out == data);
    // Bigger buffer: stops at the end marker.
    let mut big = vec![0u8; data.len() + 100];
    assert_eq!(decode_lzma_alone(c, &mut big), Ok(data.len()));
    assert!(big[..data.len()] == *data);
    if !data.is_empty() {
        let mut short = vec![0u8; data.len() - 1];
        assert_eq!(decode_lzma_alone(c, &mut short), Err(DecodeError::OutputFull));
    }
}

#[test]
fn legacy_lzma_with_end_marker() {
    for (name, data) in inputs() {
        for preset in ["-0", "-6", "-9e"] {
            eprintln!("lzma {preset} on {name}");
            let c = lzma_alone(&[preset], &data);
            assert_lzma_roundtrip(&c, &data);
        }
    }
    let data = text(100_000, 11);
    let c = lzma_alone(&["--lzma1=preset=6,lc=4,lp=0,pb=4"], &data);
    assert_lzma_roundtrip(&c, &data);
    let c = lzma_alone(&["--lzma1=preset=6,lc=0,lp=4,pb=0"], &data);
    assert_lzma_roundtrip(&c, &data);
}

#[test]
fn legacy_lzma_with_known_size() {
    for (name, data) in inputs() {
        eprintln!("lzma known size on {name}");
        let mut c = lzma_alone(&["-6"], &data);
        c[5..13].copy_from_slice(&(data.len() as u64).to_le_bytes());
        // Decoding stops at the declared size (the end marker after it is never read).
        let mut out = vec![0u8; data.len()];
        assert_eq!(decode_lzma_alone(&c, &mut out), Ok(data.len()));
        assert!(out == data);
        let mut big = vec![0u8; data.len() + 10];
        assert_eq!(decode_lzma_alone(&c, &mut big), Ok(data.len()));
        assert!(big[..data.len()] == data);
        if !data.is_empty() {
            let mut short = vec![0u8; data.len() - 1];
            assert_eq!(decode_lzma_alone(&c, &mut short), Err(DecodeError::OutputFull));
            // A declared size smaller than the data stops early; a bigger one hits the marker early.
            let mut shorter = c.clone();
            shorter[5..13].copy_from_slice(&(data.len() as u64 - 1).to_le_bytes());
            assert_eq!(decode_lzma_alone(&shorter, &mut big), Ok(data.len() - 1));
            assert!(big[..data.len() - 1] == data[..data.len() - 1]);
        }
        let mut longer = c.clone();
        longer[5..13].copy_from_slice(&(data.len() as u64 + 1).to_le_bytes());
        assert!(decode_lzma_alone(&longer, &mut big).is_err());
    }
}
