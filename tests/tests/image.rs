//! Checks on the built firmware ELF itself.

use cocoon_tests::{find_multiboot_header, firmware};
use hvm_glue::layout::{DIRECT_MAP_BASE, IMAGE_PHYS_BASE};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

fn load() -> Vec<u8> {
    std::fs::read(firmware()).unwrap()
}

#[test]
fn firmware_is_under_one_mib() {
    let len = load().len();
    assert!(len < 1 << 20, "firmware ELF is {len} bytes");
}

#[test]
fn image_is_flat_and_lives_in_the_reserved_range() {
    let data = load();
    let hdr = elf::FileHeader64::<Endianness>::parse(&*data).unwrap();
    let e = hdr.endian().unwrap();
    let mut delta = None;
    let mut high = 0;
    for ph in hdr.program_headers(e, &*data).unwrap() {
        if ph.p_type(e) != elf::PT_LOAD {
            continue;
        }
        let (off, va, pa) = (ph.p_offset(e), ph.p_vaddr(e), ph.p_paddr(e));
        assert!(pa >= IMAGE_PHYS_BASE);
        // One flat image: file offset follows physical address one for one.
        let d = pa.wrapping_sub(off);
        assert_eq!(*delta.get_or_insert(d), d, "segment at {pa:#x} breaks the flat layout");
        if va != pa {
            assert_eq!(va - pa, DIRECT_MAP_BASE, "segment at {va:#x} is not in the direct map");
            assert!(va >> 39 & 511 >= 256 && va >> 39 & 511 <= 271, "outside the hypervisor slots");
            high += 1;
        }
    }
    assert!(high >= 3, "text, rodata and data must be linked high");
}

/// Physical address minus file offset, the same for every loaded segment.
fn phys_minus_offset(data: &[u8]) -> u64 {
    let hdr = elf::FileHeader64::<Endianness>::parse(data).unwrap();
    let e = hdr.endian().unwrap();
    let ph = hdr.program_headers(e, data).unwrap().iter().find(|p| p.p_type(e) == elf::PT_LOAD).unwrap();
    ph.p_paddr(e).wrapping_sub(ph.p_offset(e))
}

#[test]
fn multiboot_header_describes_the_image() {
    let data = load();
    let off = find_multiboot_header(&data).expect("multiboot header in the first 8 KiB");
    let w = |k: usize| u32::from_le_bytes(data[off + 4 * k..off + 4 * k + 4].try_into().unwrap());
    assert_ne!(w(1) & (1 << 16), 0, "address-field kludge needed for an ELF64");
    let (header_addr, load_addr, load_end, bss_end, entry) =
        (w(3) as u64, w(4) as u64, w(5) as u64, w(6) as u64, w(7) as u64);
    assert_eq!(load_addr, IMAGE_PHYS_BASE);
    // The loader copies the file from (off - (header_addr - load_addr)) to load_addr: that
    // must agree with where the ELF puts each byte.
    assert_eq!(header_addr.wrapping_sub(off as u64), phys_minus_offset(&data));
    assert!(load_end > load_addr && bss_end >= load_end && entry >= load_addr && entry < load_end);
    let file_start = off - (header_addr - load_addr) as usize;
    assert!(file_start + (load_end - load_addr) as usize <= data.len(), "load_end beyond the file");
    let hdr = elf::FileHeader64::<Endianness>::parse(&*data).unwrap();
    assert_eq!(hdr.e_entry.get(hdr.endian().unwrap()), entry, "ELF entry is the multiboot entry");
}

#[test]
fn pvh_note_names_a_32bit_entry() {
    let data = load();
    let hdr = elf::FileHeader64::<Endianness>::parse(&*data).unwrap();
    let e = hdr.endian().unwrap();
    let mut entry = None;
    for ph in hdr.program_headers(e, &*data).unwrap() {
        if let Some(mut notes) = ph.notes(e, &*data).unwrap() {
            while let Some(n) = notes.next().unwrap() {
                if n.name() == b"Xen" && n.n_type(e) == 18 {
                    entry = Some(u64::from_le_bytes(n.desc().try_into().unwrap()));
                }
            }
        }
    }
    let entry = entry.expect("XEN_ELFNOTE_PHYS32_ENTRY");
    assert!((IMAGE_PHYS_BASE..1 << 32).contains(&entry));
}
