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
const BZ_MIN_PROTOCOL: u16 = 0x0208;

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
        let compression = if data.starts_with(ELF_MAGIC) {
            Compression::None
        } else {
            Compression::detect(data).ok_or(LoadError::UnknownFormat { head: head4(data) })?
        };
        return Ok(Payload { container: Container::BzImage { protocol }, compression, data });
    }
    Err(LoadError::UnknownFormat { head: head4(file) })
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
        f
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
