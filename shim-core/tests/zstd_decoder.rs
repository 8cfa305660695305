//! Tests: round trips against the `zstd` CLI, a real kernel, and hostile inputs.

use std::io::Write;
use std::process::{Command, Stdio};
use std::string::String;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::vec::Vec;
use std::{format, println, vec};

use shim_core::loader::decompress::zstd::decode;
use shim_core::loader::decompress::DecodeError;

/// Deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pseudo-English text.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "kernel",
        "decompresses",
        "itself",
        "into",
        "guest",
        "memory",
        "while",
        "a",
        "zstd",
        "frame",
        "window",
        "of",
        "bytes",
        "matches",
        "literals",
        "sequence",
        "offset",
        "huffman",
        "table",
        "and",
        "then",
        "boots",
        "quickly",
        "under",
        "emulation",
        "with",
        "repeat",
        "offsets",
        "\n",
    ];
    let mut rng = Rng(seed);
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        v.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        v.push(if rng.below(9) == 0 { b'.' } else { b' ' });
    }
    v.truncate(len);
    v
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

fn runs(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let byte = rng.next() as u8;
        let n = 1 + rng.below(5000);
        v.extend(std::iter::repeat_n(byte, n));
    }
    v.truncate(len);
    v
}

/// Text, random, runs, binary-like structures and far repeats interleaved.
fn mix(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        match rng.below(5) {
            0 => v.extend(text(1 + rng.below(20000), rng.next())),
            1 => v.extend(random(1 + rng.below(3000), rng.next())),
            2 => v.extend(runs(1 + rng.below(20000), rng.next())),
            3 => {
                for i in 0..rng.below(2000) as u32 {
                    v.extend_from_slice(&(i * 7).to_le_bytes());
                }
            }
            _ if !v.is_empty() => {
                let start = rng.below(v.len());
                let n = rng.below(v.len() - start).min(30000);
                let piece = v[start..start + n].to_vec();
                v.extend(piece);
            }
            _ => {}
        }
    }
    v.truncate(len);
    v
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Compresses `data` with the zstd CLI. Via a file the frame records the content size; via stdin
/// it does not.
fn zstd_cli(args: &[&str], data: &[u8], via_file: bool) -> Vec<u8> {
    let mut cmd = Command::new("zstd");
    cmd.args(["-q", "-c"]).args(args);
    let output = if via_file {
        let dir = std::env::temp_dir().join("zstd-flat-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("in-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, data).unwrap();
        let out = cmd.arg(&path).output().unwrap();
        std::fs::remove_file(&path).unwrap();
        out
    } else {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let owned = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&owned).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    };
    assert!(output.status.success(), "zstd {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Decodes into a buffer of exactly the expected size and compares.
fn check_round_trip(name: &str, data: &[u8], compressed: &[u8]) {
    let mut out = vec![0u8; data.len()];
    let n = decode(compressed, &mut out).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(n, data.len(), "{name}: length");
    assert!(out == data, "{name}: content differs");
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("text", text(400_000, 1)),
        ("random", random(300_000, 2)),
        ("runs", runs(500_000, 3)),
        ("mix", mix(700_000, 4)),
        ("small", text(100, 5)),
        ("empty", Vec::new()),
        ("one", vec![7]),
    ]
}

#[test]
fn round_trip_levels() {
    let configs: &[&[&str]] = &[
        &["-1"],
        &["-3"],
        &["-19"],
        &["--ultra", "-22"],
        &["--long=27"],
        &["-3", "--no-check"],
        &["-19", "--no-check"],
        &["-1", "--format=zstd"],
        &["-3", "--zstd=wlog=10"],
        &["-19", "--zstd=wlog=11"],
        &["-3", "-B1024", "-T2"],
        &["--fast=5"],
        &["-5", "--no-content-size"],
    ];
    for (name, data) in inputs() {
        for args in configs {
            for via_file in [true, false] {
                let c = zstd_cli(args, &data, via_file);
                check_round_trip(&format!("{name} {args:?} file={via_file}"), &data, &c);
            }
        }
    }
}

/// Frame header bytes of the first frame: reports whether the CLI set a checksum / FCS.
#[test]
fn cli_flags_reach_the_frame_header() {
    let data = text(10_000, 9);
    let with = zstd_cli(&["-3"], &data, true);
    let without = zstd_cli(&["-3", "--no-check"], &data, false);
    assert_ne!(with[4] & 4, 0);
    assert_eq!(without[4] & 4, 0);
    assert_eq!(without[4] >> 6, 0);
}

fn skippable(payload: &[u8], nibble: u8) -> Vec<u8> {
    let mut v = (0x184D_2A50u32 | u32::from(nibble)).to_le_bytes().to_vec();
    v.extend((payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn concatenated_frames_and_skippable() {
    let parts = [text(50_000, 11), random(20_000, 12), runs(80_000, 13), Vec::new(), mix(90_000, 14)];
    let levels = ["-1", "-19", "--long=27", "-3", "--ultra"];
    let mut stream = skippable(b"leading skippable frame", 0);
    let mut expected = Vec::new();
    for (i, (part, level)) in parts.iter().zip(levels).enumerate() {
        let args: &[&str] = if level == "--ultra" { &["--ultra", "-22"] } else { &[level] };
        stream.extend(zstd_cli(args, part, i % 2 == 0));
        stream.extend(skippable(&vec![0xAA; i * 10], i as u8 * 3));
        expected.extend_from_slice(part);
    }
    let mut out = vec![0u8; expected.len()];
    assert_eq!(decode(&stream, &mut out), Ok(expected.len()));
    assert!(out == expected);
    // A buffer larger than needed is fine too.
    let mut big = vec![0u8; expected.len() + 1000];
    assert_eq!(decode(&stream, &mut big), Ok(expected.len()));
    // Only skippable frames: nothing written.
    assert_eq!(decode(&skippable(b"x", 15), &mut out), Ok(0));
    // Trailing garbage after the last frame, e.g. a bzImage size trailer left in place.
    let mut trailing = stream.clone();
    trailing.extend((expected.len() as u32).to_le_bytes());
    assert_eq!(decode(&trailing, &mut big), Err(DecodeError::Corrupt("data after the last zstd frame")));
    trailing.truncate(stream.len() + 2);
    assert_eq!(decode(&trailing, &mut big), Err(DecodeError::Corrupt("data after the last zstd frame")));
}

#[test]
fn matches_may_not_cross_frames() {
    // Frame 2 is compressed with frame 1's content as a prefix, so it refers back into frame 1.
    let a = text(20_000, 21);
    let dir = std::env::temp_dir().join("zstd-flat-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join(format!("prefix-{}", std::process::id()));
    std::fs::write(&prefix, &a).unwrap();
    let prefix_arg = format!("--patch-from={}", prefix.display());
    let second = zstd_cli(&["-3", &prefix_arg], &a, true);
    std::fs::remove_file(&prefix).unwrap();
    let mut stream = zstd_cli(&["-3"], &a, true);
    let first_len = stream.len();
    stream.extend(&second);
    let mut out = vec![0u8; 2 * a.len()];
    assert_eq!(decode(&stream, &mut out), Err(DecodeError::Corrupt("zstd match distance beyond the frame start")));
    assert_eq!(decode(&stream[..first_len], &mut out), Ok(a.len()));
}

fn small_stream() -> (Vec<u8>, Vec<u8>) {
    let data = mix(6_000, 31);
    (zstd_cli(&["-19"], &data, true), data)
}

#[test]
fn every_truncation_fails() {
    let (c, data) = small_stream();
    let mut out = vec![0u8; data.len()];
    for len in 0..c.len() {
        assert!(decode(&c[..len], &mut out).is_err(), "prefix of {len} bytes decoded");
    }
}

#[test]
fn every_byte_flip_is_safe() {
    let (c, data) = small_stream();
    let mut out = vec![0u8; data.len() + 64];
    let mut errors = 0;
    for i in 0..c.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut m = c.clone();
            m[i] ^= mask;
            if decode(&m, &mut out).is_err() {
                errors += 1;
            }
        }
    }
    // The checksum catches nearly all of them.
    assert!(errors > c.len() * 3 * 9 / 10, "{errors} errors");
}

#[test]
fn output_one_byte_too_small() {
    for (name, data) in inputs() {
        if data.is_empty() {
            continue;
        }
        for via_file in [true, false] {
            let c = zstd_cli(&["-3"], &data, via_file);
            let mut out = vec![0u8; data.len() - 1];
            assert_eq!(decode(&c, &mut out), Err(DecodeError::OutputFull), "{name} file={via_file}");
        }
    }
}

/// Offset of the Frame_Content_Size field in a frame with `fhd` (after the magic).
fn fcs_offset(fhd: u8) -> usize {
    4 + 1 + usize::from(fhd & 0x20 == 0) + [0, 1, 2, 4][usize::from(fhd & 3)]
}

#[test]
fn lying_content_size() {
    // Single-segment frame (the window is the content size): a smaller claim also shrinks the
    // block maximum, so the error may come from either check.
    let data = text(3000, 41);
    let c = zstd_cli(&["-3", "--no-check"], &data, true);
    let fhd = c[4];
    assert_eq!(fhd >> 6, 1, "2-byte FCS expected");
    let at = fcs_offset(fhd);
    for delta in [1i32, -1] {
        let mut m = c.clone();
        let v = (i32::from(u16::from_le_bytes([m[at], m[at + 1]])) + delta) as u16;
        m[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let mut out = vec![0u8; data.len() + 10];
        assert!(matches!(decode(&m, &mut out), Err(DecodeError::Corrupt(_))), "delta {delta}");
    }
    // Frame with a window descriptor and a 4-byte FCS.
    let data = mix(3_000_000, 42);
    let c = zstd_cli(&["-1", "--zstd=wlog=20"], &data, true);
    let fhd = c[4];
    assert_eq!((fhd >> 6, fhd & 0x20), (2, 0), "4-byte FCS and a window descriptor expected");
    let at = fcs_offset(fhd);
    for delta in [1i64, -1, -100_000] {
        let mut m = c.clone();
        let v = (i64::from(u32::from_le_bytes(m[at..at + 4].try_into().unwrap())) + delta) as u32;
        m[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let mut out = vec![0u8; data.len() + 10];
        assert_eq!(decode(&m, &mut out), Err(DecodeError::Corrupt("zstd frame content size mismatch")), "{delta}");
    }
}

#[test]
fn dictionary_id_is_unsupported() {
    // Magic, FHD (single segment, 1-byte FCS, 1-byte dictionary ID), DID = 5, FCS = 1,
    // raw last block of one byte.
    let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x21, 5, 1, 0x09, 0, 0, b'x'];
    let mut out = [0u8; 4];
    assert_eq!(decode(&frame, &mut out), Err(DecodeError::Unsupported("zstd dictionary")));
    let mut no_dict = frame;
    no_dict[5] = 0;
    assert_eq!(decode(&no_dict, &mut out), Ok(1));
    assert_eq!(out[0], b'x');
}

#[test]
fn bad_checksum() {
    let data = text(5000, 51);
    let mut c = zstd_cli(&["-3"], &data, true);
    let last = c.len() - 1;
    c[last] ^= 0x10;
    let mut out = vec![0u8; data.len()];
    assert_eq!(decode(&c, &mut out), Err(DecodeError::Checksum("zstd content checksum")));
}

#[test]
fn rle_bomb() {
    // Window descriptor 0x88 (window 128 MiB... any), then 100 000 RLE blocks of 128 KiB each.
    let mut bomb = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x88];
    let block = (128 * 1024u32) << 3 | 1 << 1;
    for i in 0..100_000 {
        let h = block | u32::from(i == 99_999);
        bomb.extend_from_slice(&h.to_le_bytes()[..3]);
        bomb.push(0x55);
    }
    let mut out = vec![0u8; 1 << 20];
    assert_eq!(decode(&bomb, &mut out), Err(DecodeError::OutputFull));
    // A single-segment frame claiming 2^40 bytes fails before decoding anything.
    let mut claim = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
    claim.extend_from_slice(&(1u64 << 40).to_le_bytes());
    claim.extend_from_slice(&[0x03, 0, 0, 0x55]);
    assert_eq!(decode(&claim, &mut out), Err(DecodeError::OutputFull));
}

#[test]
fn malformed_headers() {
    let mut out = [0u8; 16];
    assert_eq!(decode(&[], &mut out), Err(DecodeError::Truncated("zstd frame magic")));
    assert_eq!(decode(b"hello world", &mut out), Err(DecodeError::Corrupt("not a zstd frame")));
    // Reserved FHD bit.
    assert!(matches!(decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x08, 0x50, 1, 0, 0], &mut out), Err(DecodeError::Corrupt(_))));
    // Reserved block type.
    assert!(matches!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x50, 0x07, 0, 0], &mut out),
        Err(DecodeError::Corrupt(_))
    ));
    // Skippable frame cut short.
    assert_eq!(decode(&skippable(b"abcdef", 1)[..9], &mut out), Err(DecodeError::Truncated("zstd skippable frame")));
    // Empty frame (empty input compressed).
    let empty = zstd_cli(&["-3"], &[], true);
    assert_eq!(decode(&empty, &mut out), Ok(0));
}

#[test]
fn fuzz_mutations() {
    let sources: Vec<Vec<u8>> = vec![
        zstd_cli(&["-19"], &mix(20_000, 61), true),
        zstd_cli(&["-1"], &text(30_000, 62), false),
        zstd_cli(&["-3", "--zstd=wlog=10"], &mix(8_000, 63), true),
        zstd_cli(&["--ultra", "-22", "--no-check"], &runs(20_000, 64), true),
    ];
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut out = vec![0u8; 64 * 1024];
    let mut ok = 0;
    for _ in 0..4000 {
        let mut m = sources[rng.below(sources.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(m.len());
            match rng.below(6) {
                0 => m[i] ^= 1 << rng.below(8),
                1 => m[i] = rng.next() as u8,
                2 => m.truncate(i.max(1)),
                3 => m.insert(i, rng.next() as u8),
                4 => {
                    m.remove(i);
                }
                _ => {
                    let j = rng.below(m.len());
                    m.swap(i, j);
                }
            }
            if m.is_empty() {
                m.push(0);
            }
        }
        if decode(&m, &mut out).is_ok() {
            ok += 1;
        }
    }
    println!("fuzz: {ok} of 4000 mutants decoded without error");
}

/// Random byte soup after a valid header: exercises every parser on garbage.
#[test]
fn fuzz_garbage_blocks() {
    let mut rng = Rng(77);
    let mut out = vec![0u8; 300_000];
    for _ in 0..3000 {
        let mut m = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x70];
        let len = 3 + rng.below(400);
        let mut body = random(len, rng.next());
        body[0] = (body[0] & !0x06) | 0x04; // compressed block
        body[0] |= 1;
        let size = (len - 3) as u32;
        body[0] = (body[0] & 7) | ((size as u8) << 3);
        body[1] = (size >> 5) as u8;
        body[2] = (size >> 13) as u8;
        m.extend(body);
        let _ = decode(&m, &mut out);
    }
}

#[test]
fn hand_made_rle_literals() {
    // Single-segment frame, FCS 5; one compressed block: RLE literals "z" x5, no sequences.
    let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x20, 5, 0x1D, 0, 0, (5 << 3) | 1, b'z', 0];
    let mut out = [0u8; 5];
    assert_eq!(decode(&frame, &mut out), Ok(5));
    assert_eq!(&out, b"zzzzz");
}

#[test]
fn hand_made_direct_huffman_weights() {
    // One compressed block: Huffman literals, 1 stream, tree with direct 4-bit weights
    // (symbol 0 weight 1, symbol 1 implied weight 1), 8 one-bit codes "10110010", no sequences.
    let block = [0x82, 0x00, 0x01, 0x80, 0x10, 0xB2, 0x01, 0x00];
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x20, 16, 0x44, 0, 0];
    frame.extend_from_slice(&block);
    // Second block, treeless: reuses the table; 8 codes "01001101".
    frame.extend_from_slice(&[0x35, 0, 0, 0x83, 0x80, 0x00, 0x4D, 0x01, 0x00]);
    let mut out = [0u8; 16];
    assert_eq!(decode(&frame, &mut out), Ok(16));
    assert_eq!(out, [1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1]);
    // Treeless literals in the first block of a frame have no table to reuse.
    let mut first = vec![0x28, 0xB5, 0x2F, 0xFD, 0x20, 8];
    first.extend_from_slice(&[0x35, 0, 0, 0x83, 0x80, 0x00, 0x4D, 0x01, 0x00]);
    assert_eq!(decode(&first, &mut out), Err(DecodeError::Corrupt("zstd treeless literals without a previous table")));
}
