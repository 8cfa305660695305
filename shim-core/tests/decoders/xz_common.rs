//! Shared helpers for the integration tests: the `xz` CLI, test data and a deterministic PRNG.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Runs `/usr/bin/xz` with `args`, feeding `data` on stdin; returns stdout.
pub fn xz(args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("/usr/bin/xz")
        .args(args)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn xz");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success(), "xz {args:?} failed");
    out
}

/// Small xorshift64* PRNG (deterministic).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pseudo-English text of `len` bytes.
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "kernel",
        "decompress",
        "memory",
        "guest",
        "of",
        "and",
        "a",
        "page",
        "table",
        "to",
        "in",
        "virtual",
        "machine",
        "cocoon",
        "is",
        "with",
        "lzma",
        "range",
        "coder",
        "dictionary",
        "match",
        "literal",
        "state",
    ];
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// `len` random bytes.
pub fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Long runs of a few byte values.
pub fn runs(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let b = rng.next() as u8 & 3;
        let n = 1 + rng.below(5000);
        out.extend(std::iter::repeat_n(b, n));
    }
    out.truncate(len);
    out
}

/// x86-64 machine code: a copy of /bin/bash (truncated to `max` bytes).
pub fn x86_code(max: usize) -> Vec<u8> {
    let mut data = std::fs::read("/bin/bash").expect("read /bin/bash");
    data.truncate(max);
    data
}

/// Decodes `compressed` with `shim_core::loader::decompress::xz::decode` into a buffer of exactly `expected.len()` bytes and compares.
pub fn assert_xz_roundtrip(compressed: &[u8], expected: &[u8]) {
    let mut out = vec![0u8; expected.len()];
    let n = shim_core::loader::decompress::xz::decode(compressed, &mut out).expect("decode");
    assert_eq!(n, expected.len());
    assert!(out == expected, "output differs");
    // A buffer one byte short must fail with OutputFull.
    if !expected.is_empty() {
        let mut short = vec![0u8; expected.len() - 1];
        assert_eq!(
            shim_core::loader::decompress::xz::decode(compressed, &mut short),
            Err(shim_core::loader::decompress::DecodeError::OutputFull)
        );
    }
}

/// CRC-32 (independent of the library) for building hand-made streams.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
