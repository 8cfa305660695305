//! The loader and builder on Debian's real PV kernels, fetched by
//! `ci/fetch-kernels.sh`. A missing kernel fails the test: nothing is skipped.

use std::path::PathBuf;

use shim_core::abi::*;
use shim_core::builder::{build, DomainConfig, PhysMap};
use shim_core::loader::{self, Compression, Container, Kernel};
use shim_core::testing::{verify_domain, VecMemory};

const GUEST_MEM: u64 = 512 << 20;

fn kernels_dir() -> PathBuf {
    match std::env::var_os("COCOON_KERNELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cocoon/kernels"),
    }
}

fn read(rel: &str) -> Vec<u8> {
    let p = kernels_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}; run ci/fetch-kernels.sh first", p.display()))
}

/// The Xen notes as `readelf -n` printed them: (type, descriptor bytes), in order.
fn readelf_xen_notes(suite: &str) -> Vec<(u32, Vec<u8>)> {
    let text = String::from_utf8(read(&format!("{suite}/readelf-n.txt"))).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"Xen") || words.len() < 3 {
            continue;
        }
        let size = u32::from_str_radix(words[1].trim_start_matches("0x"), 16).unwrap() as usize;
        let desc = &line[line.find(words[2]).unwrap()..];
        // readelf names a few types after generic notes; the rest it prints as numbers.
        let kind = if let Some(i) = desc.find("(0x") {
            u32::from_str_radix(&desc[i + 3..i + 11], 16).unwrap()
        } else if desc.starts_with("NT_VERSION") {
            1
        } else if desc.starts_with("NT_ARCH") {
            2
        } else if desc.starts_with("GO BUILDID") {
            4
        } else {
            panic!("unrecognised readelf note line: {line}")
        };
        let data_line = lines.next().unwrap();
        let hex = data_line.split_once("description data:").map(|(_, h)| h).unwrap_or("");
        let bytes: Vec<u8> = hex.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        assert_eq!(bytes.len(), size, "readelf line {line}");
        out.push((kind, bytes));
    }
    assert!(out.len() >= 10, "readelf found only {} Xen notes for {suite}", out.len());
    out
}

fn num(notes: &[(u32, Vec<u8>)], kind: u32) -> Option<u64> {
    notes.iter().find(|(k, _)| *k == kind).map(|(_, d)| {
        let mut b = [0u8; 8];
        b[..d.len()].copy_from_slice(d);
        u64::from_le_bytes(b)
    })
}

fn check_notes(suite: &str) {
    let file = read(&format!("{suite}/vmlinuz"));
    let k = loader::load(&file, GUEST_MEM).unwrap();
    assert!(matches!(k.container, Container::BzImage { .. }));
    let reference = readelf_xen_notes(suite);
    assert_eq!(k.notes.raw, reference, "notes differ from readelf -n");
    assert_eq!(k.notes.virt_base, num(&reference, XEN_ELFNOTE_VIRT_BASE));
    assert_eq!(k.notes.entry, num(&reference, XEN_ELFNOTE_ENTRY));
    assert_eq!(k.params.entry, num(&reference, XEN_ELFNOTE_ENTRY).unwrap());
    assert_eq!(k.notes.init_p2m, num(&reference, XEN_ELFNOTE_INIT_P2M));
    assert_eq!(k.notes.hypercall_page, num(&reference, XEN_ELFNOTE_HYPERCALL_PAGE));
    assert_eq!(k.notes.mod_start_pfn, num(&reference, XEN_ELFNOTE_MOD_START_PFN) == Some(1));
    assert_eq!(k.notes.guest_os.as_deref(), Some("linux"));
    assert_eq!(k.notes.xen_version.as_deref(), Some("xen-3.0"));
    assert_ne!(k.notes.supported & (1 << XENFEAT_pae_pgdir_above_4gb), 0);
    // The decompressed ELF is byte for byte what the system's lz4/xz produced.
    assert!(k.elf_bytes.as_ref() == read(&format!("{suite}/vmlinux")).as_slice(), "decompressed ELF differs");
}

fn check_build(suite: &str) {
    let file = read(&format!("{suite}/vmlinuz"));
    let k = loader::load(&file, GUEST_MEM).unwrap();
    build_and_verify(&k);
}

fn build_and_verify(k: &Kernel) {
    let pages = GUEST_MEM >> 12;
    // A P2M with a hole, so that PFN != MFN everywhere and extents matter.
    let map = PhysMap::from_extents(&[(0x800, 0x9000), (0x20000, pages - 0x9000)]);
    let mut mem = VecMemory::new(0x800, 0x20000 + pages - 0x800);
    let initrd: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 255) as u8).collect();
    let cfg = DomainConfig {
        cmdline: "console=hvc0 root=/dev/ram0 rdinit=/init",
        initrd: Some(&initrd),
        shared_info_mfn: 0xfeff0,
        store_evtchn: 1,
        console_evtchn: 2,
        host_rings: Default::default(),
    };
    let (layout, entry) = build(k, &map, &mut mem, &cfg).unwrap();
    verify_domain(k, &map, &mem, &layout, &entry, &cfg);
    // Linux: kernel at pfn 0x1000 (16 MiB), INIT_P2M in L4 slot 1, initrd by PFN.
    assert_eq!(layout.kernel.pfn, 0x1000);
    assert!(layout.initrd.unwrap().va.is_none());
    assert!(layout.mappings[1].is_some());
}

#[test]
fn bookworm_notes_match_readelf() {
    check_notes("bookworm");
}

#[test]
fn bullseye_notes_match_readelf() {
    check_notes("bullseye");
}

/// Every kernel Debian ships for bullseye, bookworm and trixie, cloud and
/// generic (lz4, xz with a 32 MiB dictionary, zstd with a 128 MiB window),
/// decompresses into a buffer of exactly its declared size to what the
/// system's own tools produced, and its notes match readelf's.
#[test]
fn every_debian_kernel_decompresses_in_place() {
    for suite in ["bullseye", "bookworm", "trixie", "bullseye-generic", "bookworm-generic", "trixie-generic"] {
        let file = read(&format!("{suite}/vmlinuz"));
        let size = loader::output_size(&file).unwrap().expect("a compressed payload") as usize;
        let mut out = vec![0u8; size];
        let t = std::time::Instant::now();
        let k = loader::load_into(&file, &mut out, GUEST_MEM).unwrap_or_else(|e| panic!("{suite}: {e}"));
        eprintln!("{suite}: {:?}, {} bytes in {:?}", k.compression, k.elf_bytes.len(), t.elapsed());
        assert!(k.elf_bytes.as_ref() == read(&format!("{suite}/vmlinux")).as_slice(), "{suite}: ELF differs");
        assert_eq!(k.notes.raw, readelf_xen_notes(suite), "{suite}: notes differ from readelf -n");
        // One byte short of the declared size: a clean error.
        let k = loader::load_into(&file, &mut out[..size - 1], GUEST_MEM);
        assert!(matches!(k, Err(loader::LoadError::TooLarge { .. })), "{suite}: {:?}", k.err());
    }
}

/// Bytes flipped inside the compressed payload: the bzImage CRC32 refuses the file.
#[test]
fn a_damaged_payload_fails_its_crc() {
    let mut file = read("bookworm/vmlinuz");
    let mid = file.len() / 2;
    for b in &mut file[mid..mid + 8] {
        *b ^= 0xff;
    }
    let e = loader::load(&file, GUEST_MEM).unwrap_err();
    assert_eq!(e, loader::LoadError::Checksum { what: "bzImage CRC32" });
    assert!(e.to_string().contains("damaged"), "{e}");
}

#[test]
fn bookworm_domain_builds_and_walks() {
    check_build("bookworm");
}

#[test]
fn bullseye_domain_builds_and_walks() {
    check_build("bullseye");
}

/// The same real kernel re-packed by the system's compressors, in every format.
#[test]
fn every_supported_format_decodes_the_real_kernel() {
    let vmlinux = read("bookworm/vmlinux");
    for (file, container, compression) in [
        ("vmlinuz-xz", "bz", Compression::Xz),
        ("vmlinuz-lzma", "bz", Compression::Lzma),
        ("vmlinuz-zstd", "bz", Compression::Zstd),
        ("vmlinuz-gzip", "bz", Compression::Gzip),
        ("vmlinuz-bzip2", "bz", Compression::Bzip2),
        ("vmlinuz-lzo", "bz", Compression::Lzo),
        ("vmlinux.gz", "gz", Compression::Gzip),
    ] {
        let data = read(&format!("bookworm/variants/{file}"));
        let t = std::time::Instant::now();
        let k = loader::load(&data, GUEST_MEM).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file}: {:?} in {:?}", k.compression, t.elapsed());
        assert_eq!(k.compression, compression, "{file}");
        match container {
            "bz" => assert!(matches!(k.container, Container::BzImage { .. })),
            _ => assert_eq!(k.container, Container::GzipElf),
        }
        assert!(k.elf_bytes.as_ref() == vmlinux.as_slice(), "{file}: decompressed ELF differs");
    }
    // The plain ELF loads as itself.
    let k = loader::load(&vmlinux, GUEST_MEM).unwrap();
    assert_eq!((k.container, k.compression), (Container::Elf, Compression::None));
}

#[test]
fn truncated_and_corrupted_real_kernels_fail_cleanly() {
    let file = read("bookworm/vmlinuz");
    for cut in [100, 0x300, file.len() / 3, file.len() / 2] {
        let e = loader::load(&file[..cut], GUEST_MEM).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
    let mut bad = file.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 4096] {
        *b ^= 0x5a;
    }
    assert!(loader::load(&bad, GUEST_MEM).is_err());
    // Less memory than the kernel needs: refused as a bomb/too large, not a crash.
    assert!(loader::load(&file, 16 << 20).is_err());
}
