//! Booting the kernel the guest's own disk names, as pygrub does: find the
//! partitions, the ext2/3/4 filesystems on them, the first bootloader
//! configuration in pygrub's order (`bootcfg`), the entry it chooses, and the
//! kernel and initrds that entry names. The disk itself is a `BlockDevice`
//! (`hvm-glue`'s IDE driver, or a test image in memory).

pub mod fs;
pub mod partition;

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use crate::bootcfg::{self, BootEntry, DeviceHint};
pub use fs::Filesystem;
pub use partition::{Partition, TableKind};

/// Bytes per sector, as the disk is addressed.
pub const SECTOR: usize = 512;
/// The largest bootloader configuration (and companion file) Cocoon reads.
const MAX_CONFIG_BYTES: usize = 256 << 10;
/// Filesystems opened at most (each holds a block cache of about 300 KiB).
const MAX_FILESYSTEMS: usize = 8;
/// The largest kernel or initrd Cocoon loads.
pub const MAX_FILE_BYTES: u64 = 1 << 31;

/// A disk read in 512-byte sectors.
pub trait BlockDevice {
    /// The disk's size in sectors.
    fn sectors(&self) -> u64;
    /// Read `buf.len() / 512` sectors from `lba` on (`buf.len()` a multiple of 512).
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError>;
}

/// The disk, shared by every partition's filesystem.
pub type SharedDisk = Rc<RefCell<dyn BlockDevice>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// A read beyond the disk or the partition.
    OutOfRange,
    /// The device reported an error (its status and error registers).
    Device { status: u8, error: u8 },
    /// The device did not answer in time.
    Timeout,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange => write!(f, "read beyond the end of the disk or partition"),
            Self::Device { status, error } => {
                write!(f, "the disk failed a read (status {status:#04x}, error {error:#04x})")
            }
            Self::Timeout => write!(f, "the disk did not answer"),
        }
    }
}

impl core::error::Error for DiskError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    Disk(DiskError),
    /// No ext2/3/4 filesystem on any partition.
    NoFilesystem {
        partitions: usize,
    },
    Filesystem {
        partition: u32,
        error: String,
    },
    File {
        partition: u32,
        path: String,
        error: String,
    },
    /// No bootloader configuration on any filesystem.
    NoConfig,
    Config {
        partition: u32,
        path: String,
        error: String,
    },
    /// The entry names a file no filesystem has.
    Missing {
        what: &'static str,
        path: String,
    },
}

impl From<DiskError> for BootError {
    fn from(e: DiskError) -> Self {
        BootError::Disk(e)
    }
}

/// The partition as Linux names it on the first disk.
struct PartName(u32);

impl fmt::Display for PartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => write!(f, "the whole disk"),
            n => write!(f, "partition {n}"),
        }
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disk(e) => write!(f, "{e}"),
            Self::NoFilesystem { partitions } => {
                write!(f, "no ext2/3/4 filesystem on the disk ({partitions} partitions looked at)")
            }
            Self::Filesystem { partition, error } => {
                write!(f, "{}: unreadable filesystem: {error}", PartName(*partition))
            }
            Self::File { partition, path, error } => write!(f, "{}: {path}: {error}", PartName(*partition)),
            Self::NoConfig => {
                let names: Vec<&str> = bootcfg::CONFIG_FILES.iter().map(|c| c.0).collect();
                write!(f, "no bootloader configuration on the disk (looked for {})", names.join(", "))
            }
            Self::Config { partition, path, error } => write!(f, "{}: {path}: {error}", PartName(*partition)),
            Self::Missing { what, path } => {
                write!(f, "the chosen entry's {what} {path} is on no filesystem of the disk")
            }
        }
    }
}

impl core::error::Error for BootError {}

/// A file the entry names, on the filesystem that has it.
pub struct BootFile {
    pub path: String,
    pub size: u64,
    /// Index into `BootPlan::filesystems`.
    fs: usize,
}

/// What to boot: the entry, where its configuration was, and its files.
pub struct BootPlan {
    pub table: TableKind,
    pub filesystems: Vec<Filesystem>,
    /// The configuration file and the partition it is on.
    pub config: (u32, String),
    pub entry: BootEntry,
    pub kernel: BootFile,
    pub initrds: Vec<BootFile>,
}

impl BootPlan {
    /// Read `file` whole into `dst` (exactly its size).
    pub fn read(&self, file: &BootFile, dst: &mut [u8]) -> Result<(), BootError> {
        self.filesystems[file.fs].read_into(&file.path, dst)
    }

    /// The partition a file is on.
    pub fn partition_of(&self, file: &BootFile) -> u32 {
        self.filesystems[file.fs].partition.number
    }
}

/// Find what the disk's bootloader configuration boots. `want` is the
/// operator's choice of entry (pygrub's `--entry`), `None` the default.
pub fn plan(disk: &SharedDisk, want: Option<&str>) -> Result<BootPlan, BootError> {
    let (table, parts) = partition::read_partitions(&mut *disk.borrow_mut())?;
    let mut filesystems = Vec::new();
    let mut first_error = None;
    for p in &parts {
        if filesystems.len() == MAX_FILESYSTEMS {
            log::warn!("boot disk: only the first {MAX_FILESYSTEMS} ext filesystems are looked at");
            break;
        }
        match Filesystem::open(disk, *p) {
            Ok(Some(f)) => filesystems.push(f),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if filesystems.is_empty() {
        return Err(first_error.unwrap_or(BootError::NoFilesystem { partitions: parts.len() }));
    }
    let (cfg_fs, path, entry) = find_entry(&filesystems, want)?;
    // Paths relative to the configuration's directory (extlinux allows them).
    let resolve = |p: &str| bootcfg::resolve_path(&path, p);
    let kernel = locate(&filesystems, cfg_fs, &entry.device, &resolve(&entry.kernel), "kernel")?;
    let mut initrds = Vec::new();
    for i in &entry.initrd {
        initrds.push(locate(&filesystems, cfg_fs, &entry.device, &resolve(i), "initrd")?);
    }
    let config = (filesystems[cfg_fs].partition.number, path);
    Ok(BootPlan { table, filesystems, config, entry, kernel, initrds })
}

/// The first configuration in pygrub's order, on the first filesystem that
/// has one, and the entry it chooses.
fn find_entry(filesystems: &[Filesystem], want: Option<&str>) -> Result<(usize, String, BootEntry), BootError> {
    for (i, f) in filesystems.iter().enumerate() {
        for &(path, kind) in bootcfg::CONFIG_FILES {
            let Some(cfg) = f.read_small(path, MAX_CONFIG_BYTES)? else { continue };
            let companion = match bootcfg::companion_file(kind, path) {
                Some(c) => f.read_small(&c, MAX_CONFIG_BYTES).ok().flatten(),
                None => None,
            };
            let entry = bootcfg::choose(kind, &cfg, companion.as_deref(), want).map_err(|e| BootError::Config {
                partition: f.partition.number,
                path: path.to_string(),
                error: e.to_string(),
            })?;
            return Ok((i, path.to_string(), entry));
        }
    }
    Err(BootError::NoConfig)
}

/// The filesystem a hint names (by UUID, label or partition number).
fn hinted(filesystems: &[Filesystem], hint: &DeviceHint) -> Option<usize> {
    filesystems.iter().position(|f| match hint {
        DeviceHint::FsUuid(u) => f.uuid().eq_ignore_ascii_case(u),
        DeviceHint::FsLabel(l) => f.label() == *l,
        DeviceHint::Partition { part, .. } => f.partition.number == *part,
    })
}

/// Where `path` is: on the hinted filesystem, else on the configuration's
/// (pygrub reads the kernel from the configuration's filesystem), else on
/// any (a separate /boot named by its mount point's view).
fn locate(
    filesystems: &[Filesystem],
    cfg_fs: usize,
    hint: &Option<DeviceHint>,
    path: &str,
    what: &'static str,
) -> Result<BootFile, BootError> {
    if path.is_empty() {
        return Err(BootError::Missing { what, path: "(none given)".to_string() });
    }
    let mut order: Vec<usize> = Vec::new();
    if let Some(i) = hint.as_ref().and_then(|h| hinted(filesystems, h)) {
        order.push(i);
    }
    order.push(cfg_fs);
    order.extend(0..filesystems.len());
    for i in order {
        if let Some(size) = filesystems[i].size(path)? {
            if size > MAX_FILE_BYTES {
                return Err(BootError::File {
                    partition: filesystems[i].partition.number,
                    path: path.to_string(),
                    error: alloc::format!("is {size} bytes; Cocoon loads at most {MAX_FILE_BYTES}"),
                });
            }
            return Ok(BootFile { path: path.to_string(), size, fs: i });
        }
    }
    Err(BootError::Missing { what, path: path.to_string() })
}

/// A disk image in memory, for tests.
#[cfg(any(test, feature = "testing"))]
pub struct MemDisk(pub Vec<u8>);

#[cfg(any(test, feature = "testing"))]
impl MemDisk {
    pub fn new(bytes: Vec<u8>) -> Self {
        MemDisk(bytes)
    }
}

#[cfg(any(test, feature = "testing"))]
impl BlockDevice for MemDisk {
    fn sectors(&self) -> u64 {
        (self.0.len() / SECTOR) as u64
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let start = usize::try_from(lba).ok().and_then(|l| l.checked_mul(SECTOR)).ok_or(DiskError::OutOfRange)?;
        let src = start.checked_add(buf.len()).and_then(|e| self.0.get(start..e)).ok_or(DiskError::OutOfRange)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
