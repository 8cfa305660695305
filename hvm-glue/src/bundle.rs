//! One boot module carrying a PV kernel, its initrd and command line, for
//! loaders that pass a single module (Xen's PVH `ramdisk=`). Written by
//! `cocoon-image bundle`.
//!
//! Layout (little-endian): `"COCOONB1"`, u32 version (1), u32 count, then
//! `count` entries of {u32 kind, u32 reserved, u64 offset, u64 length}
//! (offsets from the start of the module), then the payloads.

use core::fmt;

pub const BUNDLE_MAGIC: &[u8; 8] = b"COCOONB1";
pub const BUNDLE_VERSION: u32 = 1;
pub const KIND_KERNEL: u32 = 1;
pub const KIND_INITRD: u32 = 2;
pub const KIND_CMDLINE: u32 = 3;
const HEADER: usize = 16;
const ENTRY: usize = 24;
const MAX_ENTRIES: u32 = 16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub kernel: &'a [u8],
    pub initrd: Option<&'a [u8]>,
    pub cmdline: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    Truncated,
    Version(u32),
    TooManyEntries(u32),
    OutOfBounds { index: u32 },
    NoKernel,
    BadCmdline,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "bundle: truncated header"),
            Self::Version(v) => write!(f, "bundle: unknown version {v}"),
            Self::TooManyEntries(n) => write!(f, "bundle: {n} entries is too many"),
            Self::OutOfBounds { index } => write!(f, "bundle: entry {index} lies outside the module"),
            Self::NoKernel => write!(f, "bundle: no kernel entry"),
            Self::BadCmdline => write!(f, "bundle: the command line is not UTF-8"),
        }
    }
}

pub fn is_bundle(module: &[u8]) -> bool {
    module.starts_with(BUNDLE_MAGIC)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

pub fn parse(m: &[u8]) -> Result<Bundle<'_>, BundleError> {
    if m.len() < HEADER || !is_bundle(m) {
        return Err(BundleError::Truncated);
    }
    let (version, count) = (u32_at(m, 8), u32_at(m, 12));
    if version != BUNDLE_VERSION {
        return Err(BundleError::Version(version));
    }
    if count > MAX_ENTRIES {
        return Err(BundleError::TooManyEntries(count));
    }
    if m.len() < HEADER + count as usize * ENTRY {
        return Err(BundleError::Truncated);
    }
    let mut b = Bundle::default();
    let mut have_kernel = false;
    for i in 0..count {
        let e = HEADER + i as usize * ENTRY;
        let (kind, off, len) = (u32_at(m, e), u64_at(m, e + 8), u64_at(m, e + 16));
        let data = off
            .checked_add(len)
            .filter(|&end| end <= m.len() as u64)
            .map(|end| &m[off as usize..end as usize])
            .ok_or(BundleError::OutOfBounds { index: i })?;
        match kind {
            KIND_KERNEL => {
                b.kernel = data;
                have_kernel = true;
            }
            KIND_INITRD => b.initrd = Some(data),
            KIND_CMDLINE => b.cmdline = Some(core::str::from_utf8(data).map_err(|_| BundleError::BadCmdline)?),
            _ => {}
        }
    }
    if !have_kernel {
        return Err(BundleError::NoKernel);
    }
    Ok(b)
}

/// Build a bundle (host side: the image tool and tests).
#[cfg(any(test, not(target_os = "none")))]
pub fn build(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> alloc::vec::Vec<u8> {
    let mut parts: alloc::vec::Vec<(u32, &[u8])> = alloc::vec![(KIND_KERNEL, kernel)];
    if let Some(i) = initrd {
        parts.push((KIND_INITRD, i));
    }
    if let Some(c) = cmdline {
        parts.push((KIND_CMDLINE, c.as_bytes()));
    }
    let mut out = alloc::vec::Vec::new();
    out.extend_from_slice(BUNDLE_MAGIC);
    out.extend_from_slice(&BUNDLE_VERSION.to_le_bytes());
    out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    // Payloads start page-aligned after the table.
    let mut off = (HEADER + parts.len() * ENTRY).next_multiple_of(4096) as u64;
    for (kind, data) in &parts {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        off = (off + data.len() as u64).next_multiple_of(4096);
    }
    for (_, data) in &parts {
        out.resize(out.len().next_multiple_of(4096), 0);
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let b = build(b"KERNEL", Some(b"INITRD"), Some("console=hvc0"));
        let p = parse(&b).unwrap();
        assert_eq!((p.kernel, p.initrd, p.cmdline), (&b"KERNEL"[..], Some(&b"INITRD"[..]), Some("console=hvc0")));
        let only_kernel = build(b"K", None, None);
        let k = parse(&only_kernel).unwrap();
        assert_eq!((k.initrd, k.cmdline), (None, None));
    }

    #[test]
    fn malformed() {
        let b = build(b"KERNEL", Some(b"INITRD"), None);
        assert_eq!(parse(&b[..10]), Err(BundleError::Truncated));
        assert_eq!(parse(&b[..b.len() - 1]), Err(BundleError::OutOfBounds { index: 1 }));
        let mut v = b.clone();
        v[8] = 2;
        assert_eq!(parse(&v), Err(BundleError::Version(2)));
        let mut n = b.clone();
        n[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(parse(&n), Err(BundleError::TooManyEntries(1000)));
        let mut nk = b.clone();
        nk[16] = 9; // the kernel entry becomes an unknown kind
        assert_eq!(parse(&nk), Err(BundleError::NoKernel));
        let mut huge = b.clone();
        huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&huge), Err(BundleError::OutOfBounds { .. })));
    }
}
