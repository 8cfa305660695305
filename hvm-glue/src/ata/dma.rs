//! Bus-master DMA for the IDE disk (the PIIX IDE function's BMDMA registers,
//! as in "Programming Interface for Bus Master IDE Controller" 1.0), with
//! read-ahead: a miss reads the next MiB in one READ DMA EXT and later reads
//! are served from it. Under Xen each port access is an exit to the device
//! model; this way a 13 MiB kernel takes a few hundred of them instead of
//! one per 8 KiB (READ MULTIPLE) or three per sector (READ SECTORS).

use core::ptr::NonNull;
use core::sync::atomic::{compiler_fence, Ordering};

use shim_core::bootdisk::{DiskError, SECTOR};

use super::{AtaDisk, AtaPorts, POLL_LIMIT, REG_ERROR, REG_STATUS, STATUS_BSY, STATUS_DF, STATUS_DRQ, STATUS_ERR};

/// Bus-master registers, from the channel's base (primary +0, secondary +8).
const BM_COMMAND: u16 = 0;
const BM_STATUS: u16 = 2;
const BM_PRDT: u16 = 4;
const BM_CMD_START: u8 = 1 << 0;
/// The controller writes memory (a read from the disk).
const BM_CMD_TO_MEMORY: u8 = 1 << 3;
const BM_STATUS_ERROR: u8 = 1 << 1;
const BM_STATUS_IRQ: u8 = 1 << 2;
const CMD_READ_DMA: u8 = 0xc8;
const CMD_READ_DMA_EXT: u8 = 0x25;
/// A PRD entry's end-of-table flag; a byte count of 0 means 64 KiB.
const PRD_EOT: u32 = 1 << 31;
/// A PRD region may not cross a 64 KiB boundary; the data starts on one,
/// after the table.
const REGION: usize = 64 << 10;

/// Memory the controller writes by DMA: the PRD table, then (64 KiB on) the
/// read-ahead buffer. Physically contiguous, below 4 GiB, 64 KiB aligned.
pub struct DmaArea {
    virt: NonNull<u8>,
    phys: u32,
    len: usize,
}

impl DmaArea {
    /// The alignment an area needs (virtual and physical).
    pub const ALIGN: usize = REGION;

    /// The bytes an area with `data` bytes of read-ahead takes.
    pub const fn size_for(data: usize) -> usize {
        REGION + data
    }

    /// # Safety
    /// `[virt, virt + len)` is memory nothing else touches while the disk
    /// that gets it lives, and it is physically contiguous at `phys`.
    pub unsafe fn new(virt: *mut u8, phys: u64, len: usize) -> Option<Self> {
        let phys = u32::try_from(phys).ok().filter(|p| (*p as usize).is_multiple_of(REGION))?;
        let end_ok = u32::try_from(len).ok().and_then(|l| phys.checked_add(l)).is_some();
        if !end_ok || len < REGION + REGION || !(len - REGION).is_multiple_of(SECTOR) {
            return None;
        }
        Some(DmaArea { virt: NonNull::new(virt)?, phys, len })
    }

    fn data_sectors(&self) -> u64 {
        ((self.len - REGION) / SECTOR) as u64
    }

    /// The PRD table for `bytes` at data offset `off`: 64 KiB regions.
    fn write_prd(&mut self, off: usize, bytes: usize) {
        let table = self.virt.as_ptr() as *mut u32;
        let (mut at, end, mut i) = (off, off + bytes, 0);
        while at < end {
            let n = (end - at).min(REGION - at % REGION);
            let last = at + n == end;
            // SAFETY: entry i lies in the area's first 64 KiB (at most len / 64 KiB
            // + 1 entries of 8 bytes, far below 8192 for any area that fits in 4 GiB).
            unsafe {
                table.add(2 * i).write_volatile(self.phys + (REGION + at) as u32);
                table.add(2 * i + 1).write_volatile((n as u32 & 0xffff) | if last { PRD_EOT } else { 0 });
            }
            at += n;
            i += 1;
        }
    }
}

/// DMA state of a disk: its channel's bus-master registers, the area, and
/// which sectors the read-ahead buffer holds.
pub(super) struct Dma {
    bm: u16,
    area: DmaArea,
    /// (first sector, count) held in the buffer.
    cached: (u64, u64),
}

impl<P: AtaPorts> AtaDisk<P> {
    /// Read by DMA from now on, through the controller whose bus-master
    /// registers start at `bm_base` (`pci::ide_bus_master`).
    pub fn enable_dma(&mut self, bm_base: u16, area: DmaArea) {
        let bm = bm_base + if self.base == super::CHANNELS[0].0 { 0 } else { 8 };
        self.dma = Some(Dma { bm, area, cached: (0, 0) });
    }

    pub fn dma_enabled(&self) -> bool {
        self.dma.is_some()
    }

    /// `buf` from `lba` on, through the read-ahead buffer.
    pub(super) fn read_dma(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let Some(mut d) = self.dma.take() else { return Err(DiskError::Timeout) };
        let r = self.read_through(&mut d, lba, buf);
        self.dma = Some(d);
        r
    }

    fn read_through(&mut self, d: &mut Dma, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let (mut at, mut done) = (lba, 0usize);
        while done < buf.len() {
            let (first, count) = d.cached;
            if at < first || at >= first + count {
                self.fill(d, at)?;
                continue;
            }
            let skip = ((at - first) as usize) * SECTOR;
            let n = (buf.len() - done).min(count as usize * SECTOR - skip);
            compiler_fence(Ordering::SeqCst);
            // SAFETY: [REGION + skip, + n) lies in the area's data (n ends at the
            // cached count), which the controller finished writing (fill).
            unsafe {
                core::ptr::copy_nonoverlapping(d.area.virt.as_ptr().add(REGION + skip), buf[done..].as_mut_ptr(), n);
            }
            done += n;
            at += (n / SECTOR) as u64;
        }
        Ok(())
    }

    /// Read the buffer's worth from `lba` on (to the disk's end at most).
    fn fill(&mut self, d: &mut Dma, lba: u64) -> Result<(), DiskError> {
        d.cached = (0, 0);
        let total = d.area.data_sectors().min(self.sectors - lba);
        let mut done = 0;
        while done < total {
            let n = (total - done).min(self.max_per_command());
            self.dma_command(d, lba + done, n, done as usize * SECTOR)?;
            done += n;
        }
        d.cached = (lba, total);
        Ok(())
    }

    /// One READ DMA (EXT) of `n` sectors to the data buffer at `off`.
    fn dma_command(&mut self, d: &mut Dma, lba: u64, n: u64, off: usize) -> Result<(), DiskError> {
        d.area.write_prd(off, n as usize * SECTOR);
        compiler_fence(Ordering::SeqCst);
        let bm = d.bm;
        self.ports.outl(bm + BM_PRDT, d.area.phys);
        self.ports.outb(bm + BM_COMMAND, BM_CMD_TO_MEMORY);
        let st = self.ports.inb(bm + BM_STATUS);
        self.ports.outb(bm + BM_STATUS, st | BM_STATUS_ERROR | BM_STATUS_IRQ);
        self.issue(lba, n, (CMD_READ_DMA, CMD_READ_DMA_EXT));
        self.ports.outb(bm + BM_COMMAND, BM_CMD_TO_MEMORY | BM_CMD_START);
        let base = self.base;
        let mut status = None;
        for _ in 0..POLL_LIMIT {
            let s = self.ports.inb(base + REG_STATUS);
            if s & (STATUS_ERR | STATUS_DF) != 0 || s & (STATUS_BSY | STATUS_DRQ) == 0 {
                status = Some(s);
                break;
            }
        }
        let bms = self.ports.inb(bm + BM_STATUS);
        self.ports.outb(bm + BM_COMMAND, BM_CMD_TO_MEMORY);
        compiler_fence(Ordering::SeqCst);
        let s = status.ok_or(DiskError::Timeout)?;
        if s & (STATUS_ERR | STATUS_DF) != 0 {
            return Err(DiskError::Device { status: s, error: self.ports.inb(base + REG_ERROR) });
        }
        if bms & BM_STATUS_ERROR != 0 {
            return Err(DiskError::Device { status: s, error: bms });
        }
        Ok(())
    }
}
