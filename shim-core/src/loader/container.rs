//! The outer container of a kernel file: a whole-file gzip (2.6.18-era
//! distribution kernels), a bzImage (boot protocol ≥ 2.08), or a plain ELF.

use super::decompress::Compression;
use super::error::LoadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Elf,
    GzipElf,
    BzImage { protocol: u16 },
}

/// bzImage header fields (Linux `Documentation/x86/boot.rst`).
const BZ_SETUP_SECTS: usize = 0x1f1;
const BZ_HEADER_MAGIC_OFF: usize = 0x202;
const BZ_HEADER_MAGIC: &[u8; 4] = b"HdrS";
const BZ_VERSION: usize = 0x206;
const BZ_PAYLOAD_OFFSET: usize = 0x248;
const BZ_PAYLOAD_LENGTH: usize = 0x24c;
const BZ_SYSSIZE: usize = 0x1f4;
const BZ_MIN_PROTOCOL: u16 = 0x0208;
/// Images of boot protocol 2.10 (Linux 2.6.31) and later end with a CRC32.
const BZ_CRC_PROTOCOL: u16 = 0x020a;
/// PE/COFF fields (EFI-stub kernels) that signing fills in after the CRC was taken.
const MZ_PE_OFFSET: usize = 0x3c;
const PE_OPT_CHECKSUM: usize = 24 + 64;
const PE32_CERT_DIR: usize = 24 + 96 + 32;
const PE32PLUS_CERT_DIR: usize = 24 + 112 + 32;

pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Where the payload to decompress lies, and how it is packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub container: Container,
    pub compression: Compression,
    pub data: &'a [u8],
}

fn u16_at(d: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(d[off..off + 2].try_into().unwrap())
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(d[off..off + 4].try_into().unwrap())
}

/// Identify the container and locate the (possibly compressed) ELF inside it.
pub fn open(file: &[u8]) -> Result<Payload<'_>, LoadError> {
    if file.len() < 4 {
        return Err(LoadError::Truncated { what: "kernel header" });
    }
    if file.starts_with(ELF_MAGIC) {
        return Ok(Payload { container: Container::Elf, compression: Compression::None, data: file });
    }
    if file.starts_with(&[0x1f, 0x8b]) {
        return Ok(Payload { container: Container::GzipElf, compression: Compression::Gzip, data: file });
    }
    if file.len() >= BZ_HEADER_MAGIC_OFF + 4 && &file[BZ_HEADER_MAGIC_OFF..BZ_HEADER_MAGIC_OFF + 4] == BZ_HEADER_MAGIC {
        if file.len() < BZ_PAYLOAD_LENGTH + 4 {
            return Err(LoadError::Truncated { what: "bzImage setup header" });
        }
        let protocol = u16_at(file, BZ_VERSION);
        if protocol < BZ_MIN_PROTOCOL {
            return Err(LoadError::OldBzImage { version: protocol });
        }
        // Xen does not apply the "0 means 4" rule for setup_sects; neither do we.
        let start = (file[BZ_SETUP_SECTS] as usize + 1) * 512 + u32_at(file, BZ_PAYLOAD_OFFSET) as usize;
        let len = u32_at(file, BZ_PAYLOAD_LENGTH) as usize;
        let data = start
            .checked_add(len)
            .and_then(|end| file.get(start..end))
            .ok_or(LoadError::Truncated { what: "bzImage payload" })?;
        if protocol >= BZ_CRC_PROTOCOL {
            check_crc(file)?;
        }
        let compression = if data.starts_with(ELF_MAGIC) {
            Compression::None
        } else {
            Compression::detect(data).ok_or(LoadError::UnknownFormat { head: head4(data) })?
        };
        return Ok(Payload { container: Container::BzImage { protocol }, compression, data });
    }
    Err(LoadError::UnknownFormat { head: head4(file) })
}

/// Linux's `arch/x86/boot/tools/build.c` ends the image (setup sectors plus
/// `syssize` paragraphs) with the CRC32 of everything before it, without the
/// final inversion. Signing an EFI-stub kernel afterwards (sbsign) sets the
/// PE checksum and certificate-table entry, which were 0 when the CRC was
/// taken, and appends the signature after the image: both are left out.
fn check_crc(file: &[u8]) -> Result<(), LoadError> {
    let setup_sects = if file[BZ_SETUP_SECTS] == 0 { 4 } else { file[BZ_SETUP_SECTS] as usize };
    let end = (setup_sects + 1) * 512 + u32_at(file, BZ_SYSSIZE) as usize * 16;
    let stored =
        file.get(end.saturating_sub(4)..end).filter(|_| end >= 4).ok_or(LoadError::Truncated { what: "bzImage" })?;
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let body = &file[..end - 4];
    // The signing-time fields, as (offset, length), when this is a PE image.
    let mut holes: [(usize, usize); 2] = [(0, 0); 2];
    if body.starts_with(b"MZ") && body.len() >= MZ_PE_OFFSET + 4 {
        let pe = u32_at(body, MZ_PE_OFFSET) as usize;
        if body.get(pe..pe + 4) == Some(b"PE\0\0") && body.len() >= pe + 26 {
            let cert = if u16_at(body, pe + 24) == 0x20b { PE32PLUS_CERT_DIR } else { PE32_CERT_DIR };
            holes = [(pe + PE_OPT_CHECKSUM, 4), (pe + cert, 8)];
        }
    }
    let mut h = crc32fast::Hasher::new();
    let mut pos = 0;
    for (off, len) in holes {
        if len == 0 || off + len > body.len() {
            continue;
        }
        h.update(&body[pos..off]);
        h.update(&[0u8; 8][..len]);
        pos = off + len;
    }
    h.update(&body[pos..]);
    if h.finalize() != !stored {
        return Err(LoadError::Checksum { what: "bzImage CRC32" });
    }
    Ok(())
}

fn head4(d: &[u8]) -> [u8; 4] {
    let mut h = [0; 4];
    for (i, b) in d.iter().take(4).enumerate() {
        h[i] = *b;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal bzImage header around `payload`.
    pub fn bzimage(payload: &[u8], protocol: u16) -> Vec<u8> {
        let mut f = vec![0u8; 0x600];
        f[BZ_SETUP_SECTS] = 1; // setup = 2 sectors with the boot sector
        f[BZ_HEADER_MAGIC_OFF..BZ_HEADER_MAGIC_OFF + 4].copy_from_slice(BZ_HEADER_MAGIC);
        f[BZ_VERSION..BZ_VERSION + 2].copy_from_slice(&protocol.to_le_bytes());
        f[BZ_PAYLOAD_OFFSET..BZ_PAYLOAD_OFFSET + 4].copy_from_slice(&0x100u32.to_le_bytes());
        f[BZ_PAYLOAD_LENGTH..BZ_PAYLOAD_LENGTH + 4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        f.resize(0x500, 0);
        f.extend_from_slice(payload);
        f.extend_from_slice(&[0xaa; 16]); // trailing bytes past the payload
        crate::testing::with_bzimage_crc(f)
    }

    #[test]
    fn crc_is_checked_and_signing_fields_are_ignored() {
        let f = bzimage(&[0x02, 0x21, 0x4c, 0x18, 1, 2, 3, 4], 0x020f);
        let mut bad = f.clone();
        bad[0x400] ^= 1;
        assert_eq!(open(&bad), Err(LoadError::Checksum { what: "bzImage CRC32" }));
        // An EFI-stub image: PE header at 0x80 (PE32+); signing sets the checksum
        // and the certificate-table entry and appends a signature.
        let mut unsigned = f[..f.len() - 4].to_vec();
        unsigned[..2].copy_from_slice(b"MZ");
        unsigned[MZ_PE_OFFSET..MZ_PE_OFFSET + 4].copy_from_slice(&0x80u32.to_le_bytes());
        unsigned[0x80..0x84].copy_from_slice(b"PE\0\0");
        unsigned[0x80 + 24..0x80 + 26].copy_from_slice(&0x20bu16.to_le_bytes());
        let unsigned = crate::testing::with_bzimage_crc(unsigned[..unsigned.len() - 12].to_vec());
        let mut signed = unsigned.clone();
        signed[0x80 + PE_OPT_CHECKSUM] = 0x5a;
        signed[0x80 + PE32PLUS_CERT_DIR..0x80 + PE32PLUS_CERT_DIR + 8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        signed.extend_from_slice(&[0x30; 1472]);
        assert!(open(&signed).is_ok());
        signed[0x80 + PE_OPT_CHECKSUM + 4] ^= 1; // outside the signing fields
        assert_eq!(open(&signed), Err(LoadError::Checksum { what: "bzImage CRC32" }));
    }

    #[test]
    fn plain_elf_and_gzip() {
        assert_eq!(open(b"\x7fELF\x02\x01").unwrap().container, Container::Elf);
        let g = open(&[0x1f, 0x8b, 8, 0]).unwrap();
        assert_eq!((g.container, g.compression), (Container::GzipElf, Compression::Gzip));
    }

    #[test]
    fn bzimage_payload_located() {
        let f = bzimage(&[0x02, 0x21, 0x4c, 0x18, 1, 2, 3, 4], 0x020f);
        let p = open(&f).unwrap();
        assert_eq!(p.container, Container::BzImage { protocol: 0x020f });
        assert_eq!(p.compression, Compression::Lz4);
        assert_eq!(p.data, &[0x02, 0x21, 0x4c, 0x18, 1, 2, 3, 4]);
    }

    #[test]
    fn bzimage_errors() {
        assert_eq!(open(&bzimage(b"\x1f\x8b", 0x0206)), Err(LoadError::OldBzImage { version: 0x0206 }));
        let f = bzimage(&[0x02, 0x21, 0x4c, 0x18, 1, 2, 3, 4], 0x020f);
        assert_eq!(open(&f[..0x504]), Err(LoadError::Truncated { what: "bzImage payload" }));
        assert_eq!(open(&f[..0x210]), Err(LoadError::Truncated { what: "bzImage setup header" }));
        assert!(matches!(open(&bzimage(b"nope", 0x020f)), Err(LoadError::UnknownFormat { .. })));
    }

    #[test]
    fn unknown_and_tiny() {
        assert_eq!(open(b"MZ\x90\x00 pe file"), Err(LoadError::UnknownFormat { head: *b"MZ\x90\x00" }));
        assert_eq!(open(b"\x7fE"), Err(LoadError::Truncated { what: "kernel header" }));
    }
}
