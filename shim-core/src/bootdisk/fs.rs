//! One partition's filesystem, read with the `ext4-view` crate (ext2, ext3
//! and ext4). Files are streamed into the caller's buffer: a kernel and its
//! initrd go straight to where the domain builder takes them from.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;

use ext4_view::{Ext4, Ext4Read};

use super::partition::Partition;
use super::{BootError, SharedDisk, SECTOR};

/// ext2/3/4's superblock magic (at byte 56 of the superblock, which is at 1024).
const EXT_MAGIC: u16 = 0xef53;
/// What Cocoon's reader heap can hold of a filesystem's metadata: block
/// groups (ext4-view keeps every descriptor) and the block size (its cache
/// holds 72 blocks).
const MAX_GROUPS: u64 = 1 << 16;
const MAX_LOG_BLOCK_SIZE: u32 = 2; // 4 KiB

/// Refuse superblocks whose sizes the reader could not hold or that do not
/// fit the partition, before `ext4-view` allocates from them (a guest's disk
/// is guest data: a wrong size must be an error, not an allocation failure).
fn sane_superblock(sb: &[u8; 1024], partition_bytes: u64) -> Result<(), &'static str> {
    let le32 = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    let log_block = le32(24);
    if log_block > MAX_LOG_BLOCK_SIZE {
        return Err("block size above 4 KiB");
    }
    let block = 1024u64 << log_block;
    let incompat = le32(0x60);
    let blocks = u64::from(le32(4)) | if incompat & 0x80 != 0 { u64::from(le32(0x150)) << 32 } else { 0 };
    let per_group = u64::from(le32(32));
    if per_group < 8 || blocks == 0 {
        return Err("no blocks or no blocks per group");
    }
    if blocks.saturating_mul(block) > partition_bytes {
        return Err("larger than its partition");
    }
    if blocks.div_ceil(per_group) > MAX_GROUPS {
        return Err("more block groups than Cocoon reads (65536)");
    }
    Ok(())
}

/// A partition's bytes for `ext4-view`, through the shared disk.
struct PartitionReader {
    disk: SharedDisk,
    start: u64,
    len: u64,
}

impl Ext4Read for PartitionReader {
    fn read(&mut self, start_byte: u64, dst: &mut [u8]) -> Result<(), Box<dyn core::error::Error + Send + Sync>> {
        let end = start_byte.checked_add(dst.len() as u64).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Box::new(BootError::Disk(super::DiskError::OutOfRange)));
        }
        read_bytes(&self.disk, self.start + start_byte, dst).map_err(|e| Box::new(e) as _)
    }
}

/// `dst.len()` bytes at byte `pos` of the disk: whole sectors straight into
/// `dst`, the unaligned ends through one sector of bounce buffer.
pub(super) fn read_bytes(disk: &SharedDisk, mut pos: u64, mut dst: &mut [u8]) -> Result<(), BootError> {
    let mut d = disk.borrow_mut();
    let sector = SECTOR as u64;
    while !dst.is_empty() {
        let off = (pos % sector) as usize;
        if off == 0 && dst.len() >= SECTOR {
            let n = dst.len() / SECTOR * SECTOR;
            let (now, rest) = dst.split_at_mut(n);
            d.read(pos / sector, now)?;
            pos += n as u64;
            dst = rest;
        } else {
            let mut b = [0u8; SECTOR];
            d.read(pos / sector, &mut b)?;
            let n = (SECTOR - off).min(dst.len());
            let (now, rest) = dst.split_at_mut(n);
            now.copy_from_slice(&b[off..off + n]);
            pos += n as u64;
            dst = rest;
        }
    }
    Ok(())
}

/// An ext filesystem on one partition.
pub struct Filesystem {
    pub partition: Partition,
    fs: Ext4,
}

impl Filesystem {
    /// Open the partition's filesystem; `Ok(None)` when it is not ext2/3/4.
    pub fn open(disk: &SharedDisk, partition: Partition) -> Result<Option<Filesystem>, BootError> {
        let start = partition.start.saturating_mul(SECTOR as u64);
        let len = partition.sectors.saturating_mul(SECTOR as u64);
        if len < 2048 {
            return Ok(None);
        }
        let mut sb = [0u8; 1024];
        read_bytes(disk, start + 1024, &mut sb)?;
        if u16::from_le_bytes([sb[56], sb[57]]) != EXT_MAGIC {
            return Ok(None);
        }
        sane_superblock(&sb, len).map_err(|why| BootError::Filesystem {
            partition: partition.number,
            error: alloc::string::String::from(why),
        })?;
        let reader = PartitionReader { disk: disk.clone(), start, len };
        let fs = Ext4::load(Box::new(reader))
            .map_err(|e| BootError::Filesystem { partition: partition.number, error: e.to_string() })?;
        Ok(Some(Filesystem { partition, fs }))
    }

    /// The filesystem's UUID as GRUB and blkid write it (lower-case, hyphenated).
    pub fn uuid(&self) -> String {
        format!("{}", self.fs.uuid())
    }

    pub fn label(&self) -> String {
        self.fs.label().to_str().unwrap_or("").to_string()
    }

    /// A regular file's size, following symlinks; `None` when it does not exist.
    pub fn size(&self, path: &str) -> Result<Option<u64>, BootError> {
        match self.fs.metadata(path) {
            Ok(m) if m.is_dir() => Err(self.error(path, "is a directory")),
            Ok(m) => Ok(Some(m.len())),
            Err(ext4_view::Ext4Error::NotFound) => Ok(None),
            Err(e) => Err(self.error(path, &e.to_string())),
        }
    }

    /// A small file whole (a bootloader's configuration), at most `limit` bytes.
    pub fn read_small(&self, path: &str, limit: usize) -> Result<Option<alloc::vec::Vec<u8>>, BootError> {
        let Some(size) = self.size(path)? else { return Ok(None) };
        if size > limit as u64 {
            return Err(self.error(path, &format!("is {size} bytes, more than the {limit} Cocoon reads")));
        }
        let mut buf = vec![0u8; size as usize];
        self.read_into(path, &mut buf)?;
        Ok(Some(buf))
    }

    /// The whole file into `dst`, which must be exactly its size.
    pub fn read_into(&self, path: &str, dst: &mut [u8]) -> Result<(), BootError> {
        let mut f = self.fs.open(path).map_err(|e| self.error(path, &e.to_string()))?;
        let mut done = 0;
        while done < dst.len() {
            let n = f.read_bytes(&mut dst[done..]).map_err(|e| self.error(path, &e.to_string()))?;
            if n == 0 {
                return Err(self.error(path, "ended before its size"));
            }
            done += n;
        }
        Ok(())
    }

    fn error(&self, path: &str, what: &str) -> BootError {
        BootError::File { partition: self.partition.number, path: path.to_string(), error: what.to_string() }
    }
}
