//! Cocoon as a Linux boot protocol image ("bzImage"), for loaders that only
//! start Linux: QEMU's and Xen HVM's direct kernel boot, syslinux, GRUB's
//! `linux`. The firmware ELF carries the real-mode setup (a non-allocated
//! `.setup16` section, see `firmware/src/arch/boot.rs`); this puts it in
//! front of the flat protected-mode image that loads at 1 MiB.

use object::read::elf::{ElfFile64, ProgramHeader};
use object::{elf, Endianness, Object, ObjectSection};

/// Where the protected-mode image loads (the boot protocol's default, and Cocoon's link address).
const PROT_BASE: u64 = 0x10_0000;
const HDR_SETUP_SECTS: usize = 0x1f1;
const HDR_SYSSIZE: usize = 0x1f4;
const HDR_BOOT_FLAG: usize = 0x1fe;
const HDR_MAGIC: usize = 0x202;
const HDR_VERSION: usize = 0x206;
const HDR_CODE32_START: usize = 0x214;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// The bzImage for the firmware ELF `fw`: setup sectors, then the flat image.
pub fn build(fw: &[u8]) -> Result<Vec<u8>, String> {
    let file = ElfFile64::<Endianness>::parse(fw).map_err(|e| format!("not a firmware ELF: {e}"))?;
    let setup = file
        .section_by_name(".setup16")
        .ok_or("the firmware has no .setup16 section (built before Linux boot support?)")?
        .data()
        .map_err(|e| format!(".setup16: {e}"))?;
    if setup.len() < 0x400 || setup.len() % 512 != 0 {
        return Err(format!(".setup16 is {} bytes, not a whole number of sectors", setup.len()));
    }
    if u32_at(setup, HDR_MAGIC) != 0x5372_6448 || u16_at(setup, HDR_BOOT_FLAG) != 0xaa55 {
        return Err(".setup16 has no Linux boot header".into());
    }
    if (setup[HDR_SETUP_SECTS] as usize + 1) * 512 != setup.len() {
        return Err(format!("setup_sects {} does not match .setup16's {} bytes", setup[HDR_SETUP_SECTS], setup.len()));
    }
    if u32_at(setup, HDR_CODE32_START) as u64 != PROT_BASE {
        return Err(format!("code32_start is {:#x}, not {PROT_BASE:#x}", u32_at(setup, HDR_CODE32_START)));
    }

    // The flat image: every PT_LOAD's file bytes at its physical address.
    let endian = file.endian();
    let mut flat = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) != elf::PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let pa = ph.p_paddr(endian);
        let data = ph.data(endian, fw).map_err(|_| "a PT_LOAD segment lies outside the file".to_string())?;
        let off = pa.checked_sub(PROT_BASE).ok_or(format!("a segment loads at {pa:#x}, below 1 MiB"))? as usize;
        if off + data.len() > flat.len() {
            flat.resize(off + data.len(), 0);
        }
        flat[off..off + data.len()].copy_from_slice(data);
    }
    if flat.is_empty() {
        return Err("the firmware has no loadable segments".into());
    }
    let syssize = u32_at(setup, HDR_SYSSIZE) as usize;
    if syssize != flat.len().div_ceil(16) {
        return Err(format!("syssize {syssize} does not match the {}-byte image", flat.len()));
    }
    let mut out = Vec::with_capacity(setup.len() + flat.len());
    out.extend_from_slice(setup);
    out.extend_from_slice(&flat);
    Ok(out)
}

/// One line on what `build` produced.
pub fn describe(img: &[u8]) -> String {
    let v = u16_at(img, HDR_VERSION);
    format!(
        "Linux boot protocol {}.{:02}, {} setup sectors, {} bytes at {PROT_BASE:#x}",
        v >> 8,
        v & 0xff,
        img[HDR_SETUP_SECTS],
        img.len() - (img[HDR_SETUP_SECTS] as usize + 1) * 512
    )
}
