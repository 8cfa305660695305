//! Loader and builder on small synthetic kernels: every error path, and the
//! built domain checked by walking its page tables.

use shim_core::abi::*;
use shim_core::builder::{build, DomainConfig, GuestMemory, PhysMap};
use shim_core::loader::{self, Compression, Container, LoadError};
use shim_core::mm::walk::translate;
use shim_core::testing::*;

const MIB: u64 = 1 << 20;

fn load_err(file: &[u8]) -> LoadError {
    loader::load(file, 64 * MIB).unwrap_err()
}

#[test]
fn plain_elf_loads_with_its_notes() {
    let elf = SynthKernel::linux_like().to_elf();
    let k = loader::load(&elf, 64 * MIB).unwrap();
    assert_eq!((k.container, k.compression), (Container::Elf, Compression::None));
    assert_eq!(k.params.virt_base, SYNTH_VIRT_BASE);
    assert_eq!(k.params.virt_kstart, SYNTH_VIRT_BASE + 0x100_0000);
    assert_eq!(k.params.virt_kend, SYNTH_VIRT_BASE + 0x100_8000);
    assert_eq!(k.params.hypercall_page, Some(SYNTH_VIRT_BASE + 0x100_2000));
    assert_eq!(k.params.init_p2m, Some(0x80_0000_0000));
    assert!(k.params.mod_start_pfn);
    assert_eq!(k.notes.required, 1 << XENFEAT_writable_page_tables);
}

#[test]
fn lz4_bzimage_and_gzip_elf_load() {
    let elf = SynthKernel::linux_like().to_elf();
    let bz = bzimage(&lz4_legacy(&elf));
    let k = loader::load(&bz, 64 * MIB).unwrap();
    assert_eq!(k.compression, Compression::Lz4);
    assert_eq!(&*k.elf_bytes, &elf[..]);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&elf, 6));
    gz.extend_from_slice(&crc32fast::hash(&elf).to_le_bytes());
    gz.extend_from_slice(&(elf.len() as u32).to_le_bytes());
    let k = loader::load(&gz, 64 * MIB).unwrap();
    assert_eq!((k.container, &*k.elf_bytes), (Container::GzipElf, &elf[..]));
}

#[test]
fn truncated_and_corrupted_files() {
    let elf = SynthKernel::linux_like().to_elf();
    assert!(matches!(load_err(&elf[..40]), LoadError::Truncated { .. }));
    // Program headers cut off.
    assert!(matches!(load_err(&elf[..100]), LoadError::BadElf(_)));
    // Segment data cut off.
    assert!(matches!(load_err(&elf[..elf.len() - 10]), LoadError::SegmentOutsideFile { .. }));
    let bz = bzimage(&lz4_legacy(&elf));
    assert!(matches!(load_err(&bz[..bz.len() / 2]), LoadError::Truncated { .. }));
    let mut bad = elf.clone();
    bad[0] = b'X';
    assert!(matches!(load_err(&bad), LoadError::UnknownFormat { .. }));
    let mut short_elf = b"\x7fELF\x02\x01\x01".to_vec();
    short_elf.resize(40, 0);
    assert_eq!(load_err(&bzimage(&short_elf)), LoadError::Truncated { what: "ELF header" });
    assert_eq!(load_err(&bzimage(b"\x7fELFjunk")), LoadError::PayloadNotElf);
    // A bzip2 stream cut after its block magic, with Linux's size trailer.
    let e = load_err(&bzimage(b"BZh91AY&SY\x10\0\0\0"));
    assert!(matches!(e, LoadError::Truncated { .. } | LoadError::Decompress { format: "bzip2", .. }), "{e:?}");
}

#[test]
fn elf32_and_wrong_machine_are_refused() {
    let mut k = SynthKernel::linux_like();
    k.class = 1;
    assert_eq!(load_err(&k.to_elf()), LoadError::Elf32Unsupported);
    assert!(load_err(&k.to_elf()).to_string().contains("32-bit"));
    let mut k = SynthKernel::linux_like();
    k.machine = 3;
    assert!(matches!(load_err(&k.to_elf()), LoadError::WrongElf(_)));
}

#[test]
fn overlapping_segments() {
    let mut k = SynthKernel::linux_like();
    k.segments[1].0 = 0x100_2000;
    assert!(matches!(load_err(&k.to_elf()), LoadError::SegmentsOverlap { .. }));
}

#[test]
fn entry_outside_image() {
    let mut k = SynthKernel::linux_like();
    k.set_note(XEN_ELFNOTE_ENTRY, &(SYNTH_VIRT_BASE + 0x200_0000u64).to_le_bytes());
    assert!(matches!(load_err(&k.to_elf()), LoadError::EntryOutsideImage { .. }));
    // Without an ENTRY note, e_entry is used and checked the same way.
    k.remove_note(XEN_ELFNOTE_ENTRY);
    k.e_entry = 0x1234;
    assert!(matches!(load_err(&k.to_elf()), LoadError::EntryOutsideImage { .. }));
}

#[test]
fn notes_with_bad_sizes() {
    let mut k = SynthKernel::linux_like();
    k.set_note(XEN_ELFNOTE_VIRT_BASE, &[1, 2, 3]);
    assert!(matches!(load_err(&k.to_elf()), LoadError::BadNote { note: XEN_ELFNOTE_VIRT_BASE, .. }));
    let mut k = SynthKernel::linux_like();
    k.set_note(XEN_ELFNOTE_SUPPORTED_FEATURES, &[1, 2, 3, 4, 5]);
    assert!(matches!(load_err(&k.to_elf()), LoadError::BadNote { .. }));
    // A note whose descsz runs past the segment.
    let mut elf = SynthKernel::linux_like().to_elf();
    let notes_off = 64 + 3 * 56;
    elf[notes_off + 4..notes_off + 8].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    assert!(matches!(load_err(&elf), LoadError::BadNote { .. }));
}

#[test]
fn not_a_xen_kernel_and_bad_versions() {
    let mut k = SynthKernel::linux_like();
    k.notes.clear();
    assert_eq!(load_err(&k.to_elf()), LoadError::NotXenKernel);
    let mut k = SynthKernel::linux_like();
    k.set_note(XEN_ELFNOTE_XEN_VERSION, b"xen-2.0\0");
    assert!(matches!(load_err(&k.to_elf()), LoadError::BadNote { note: XEN_ELFNOTE_XEN_VERSION, .. }));
    let mut k = SynthKernel::linux_like();
    k.set_note(XEN_ELFNOTE_FEATURES, b"!auto_translated_physmap\0");
    assert_eq!(load_err(&k.to_elf()), LoadError::RequiredFeature("auto_translated_physmap"));
}

#[test]
fn hypercall_page_outside_image_but_missing_is_fine() {
    let mut k = SynthKernel::linux_like();
    k.set_note(XEN_ELFNOTE_HYPERCALL_PAGE, &(SYNTH_VIRT_BASE + 0x900_0000u64).to_le_bytes());
    assert!(matches!(load_err(&k.to_elf()), LoadError::HypercallPageOutsideImage { .. }));
    // Linux >= 6.1.121 (and 5.10.233) has no HYPERCALL_PAGE note: that is valid.
    k.remove_note(XEN_ELFNOTE_HYPERCALL_PAGE);
    assert_eq!(loader::load(&k.to_elf(), 64 * MIB).unwrap().params.hypercall_page, None);
}

#[test]
fn virt_base_above_image() {
    let mut k = SynthKernel::linux_like();
    // Same virt_offset, but VIRT_BASE above the first segment.
    k.set_note(XEN_ELFNOTE_VIRT_BASE, &(SYNTH_VIRT_BASE + 0x200_0000u64).to_le_bytes());
    k.set_note(XEN_ELFNOTE_PADDR_OFFSET, &0x200_0000u64.to_le_bytes());
    assert_eq!(load_err(&k.to_elf()), LoadError::BadLayout("VIRT_BASE lies above the start of the image"));
}

#[test]
fn decompression_bomb() {
    let mut k = SynthKernel::linux_like();
    k.segments[1].2 = vec![0; 8 << 20];
    k.segments[1].3 = 8 << 20;
    let bz = bzimage(&lz4_legacy(&k.to_elf()));
    assert!(bz.len() < 200_000, "a small file that expands a lot");
    assert!(matches!(loader::load(&bz, 4 * MIB), Err(LoadError::TooLarge { .. })));
}

#[test]
fn kernel_larger_than_guest_memory() {
    let mut k = SynthKernel::linux_like();
    k.segments[1].3 = 100 * MIB; // 100 MiB of bss
    let elf = k.to_elf();
    let kernel = loader::load(&elf, 1 << 30).unwrap();
    let map = PhysMap::from_extents(&[(0x100, 16 * 256)]); // 16 MiB
    let mut mem = VecMemory::new(0x100, 16 * 256);
    let cfg = DomainConfig {
        cmdline: "",
        initrd: None,
        shared_info_mfn: 0xfffff,
        store_evtchn: 1,
        console_evtchn: 2,
        host_rings: Default::default(),
    };
    let e = build(&kernel, &map, &mut mem, &cfg).unwrap_err();
    assert!(e.to_string().contains("not enough guest memory"), "{e}");
    // And the loader itself refuses an image larger than its limit.
    assert!(matches!(loader::load(&elf, 64 * MIB), Err(LoadError::TooLarge { what: "kernel image", .. })));
}

/// Build with a non-identity, two-extent P2M and check everything through the page tables.
#[test]
fn built_domain_is_consistent() {
    let synth = SynthKernel::linux_like();
    let elf = synth.to_elf();
    let kernel = loader::load(&elf, 64 * MIB).unwrap();
    let pages = 64 * 256; // 64 MiB
    let map = PhysMap::from_extents(&[(0x1000, 0x2000), (0x8000, pages - 0x2000)]);
    let mut mem = VecMemory::new(0x1000, 0x8000 + pages);
    let initrd: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let cfg = DomainConfig {
        cmdline: "console=hvc0 root=/dev/ram0",
        initrd: Some(&initrd),
        shared_info_mfn: 0xabcde,
        store_evtchn: 1,
        console_evtchn: 2,
        host_rings: Default::default(),
    };
    let (layout, entry) = build(&kernel, &map, &mut mem, &cfg).unwrap();
    verify_domain(&kernel, &map, &mem, &layout, &entry, &cfg);
    assert_eq!(entry.rip, SYNTH_VIRT_BASE + 0x100_0040);
    // The INIT_P2M mapping has its own L3, L2 and L1 after the list.
    let m = layout.mappings[1].unwrap();
    assert_eq!(m.first_table_pfn(), layout.p2m.pfn + layout.p2m_list_pages);
    assert_eq!(layout.p2m.pages, layout.p2m_list_pages + m.tables);
    assert_eq!(m.tables, 3);
    // The unmapped initrd lies past the mapping, rounded to pages in mod_len.
    let si = mem.frame(map.mfn(layout.start_info.pfn));
    assert_eq!(u32::from_le_bytes(si[48..52].try_into().unwrap()), SIF_MOD_START_PFN);
    assert_eq!(u64::from_le_bytes(si[120..128].try_into().unwrap()), 3 * 4096);
    let r = layout.initrd.unwrap();
    assert!(translate(&mem, entry.cr3 >> 12, layout.va_of_pfn(r.pfn)).is_err());
    assert_eq!(&mem.frame(map.mfn(r.pfn + 2))[..10_000 - 8192], &initrd[8192..]);
}

#[test]
fn mapped_initrd_and_in_mapping_p2m_without_notes() {
    let mut synth = SynthKernel::linux_like();
    synth.remove_note(XEN_ELFNOTE_MOD_START_PFN);
    synth.remove_note(XEN_ELFNOTE_INIT_P2M);
    let elf = synth.to_elf();
    let kernel = loader::load(&elf, 64 * MIB).unwrap();
    let map = PhysMap::from_extents(&[(0x100, 32 * 256)]);
    let mut mem = VecMemory::new(0x100, 32 * 256);
    let initrd = vec![0x5au8; 5000];
    let cfg = DomainConfig {
        cmdline: "",
        initrd: Some(&initrd),
        shared_info_mfn: 1,
        store_evtchn: 1,
        console_evtchn: 2,
        host_rings: Default::default(),
    };
    let (layout, entry) = build(&kernel, &map, &mut mem, &cfg).unwrap();
    verify_domain(&kernel, &map, &mem, &layout, &entry, &cfg);
    let l4 = entry.cr3 >> 12;
    let si = mem.frame(map.mfn(layout.start_info.pfn));
    let mod_start = u64::from_le_bytes(si[112..120].try_into().unwrap());
    assert_eq!(u32::from_le_bytes(si[48..52].try_into().unwrap()), 0);
    assert_eq!(mod_start, layout.initrd.unwrap().va.unwrap());
    assert_eq!(u64::from_le_bytes(si[120..128].try_into().unwrap()), 5000);
    let t = translate(&mem, l4, mod_start + 4096).unwrap();
    assert_eq!(mem.frame(t.mfn)[..5000 - 4096], initrd[4096..]);
    // The P2M sits inside the mapping, at mfn_list.
    let mfn_list = u64::from_le_bytes(si[104..112].try_into().unwrap());
    let t = translate(&mem, l4, mfn_list + 8 * 5).unwrap();
    assert_eq!(mem.read_u64(t.mfn, 5), map.mfn(5));
    assert_eq!(layout.mappings[1], None);
    assert_eq!(u64::from_le_bytes(si[1152..1160].try_into().unwrap()), 0);
}
