//! The device model's emulated IDE disks (PIIX's legacy ports), read with
//! PIO: how Cocoon reads the guest's own disk to boot the kernel its
//! bootloader configuration names (`cocoon.boot=disk`). An HVM domain's first
//! four `disk=` entries (xvda/hda to xvdd/hdd) are IDE disks until Cocoon
//! unplugs them; the same driver serves plain QEMU's `-drive if=ide`.
//!
//! Polled, interrupts off (nIEN), 28- or 48-bit LBA, 256 sectors a command.
//! With READ MULTIPLE, a block of up to 16 sectors (QEMU's limit) comes per
//! data request: one status poll and one `rep insd` (which Xen's emulator
//! passes to the device model a page at a time) per 8 KiB, against three
//! exits per sector with READ SECTORS: under Xen every port access is one.

mod dma;

use shim_core::bootdisk::{BlockDevice, DiskError, SECTOR};

pub use dma::DmaArea;

/// Port I/O, so tests can fake the controller.
pub trait AtaPorts {
    fn inb(&mut self, port: u16) -> u8;
    fn outb(&mut self, port: u16, v: u8);
    /// `dst.len() / 4` dword reads of the data port into `dst`.
    fn read_data(&mut self, port: u16, dst: &mut [u8]);
    fn outl(&mut self, port: u16, v: u32);
}

/// The machine's I/O ports.
#[derive(Clone, Copy)]
pub struct MachineAtaPorts;

#[cfg(target_os = "none")]
impl AtaPorts for MachineAtaPorts {
    fn inb(&mut self, port: u16) -> u8 {
        // SAFETY: the IDE channels' command and control blocks only; a status read has no side effect beyond the device's.
        unsafe { x86_64::instructions::port::Port::<u8>::new(port).read() }
    }
    fn outb(&mut self, port: u16, v: u8) {
        // SAFETY: the IDE channels' registers; the writes select, command and configure the emulated disk.
        unsafe { x86_64::instructions::port::Port::<u8>::new(port).write(v) }
    }
    fn outl(&mut self, port: u16, v: u32) {
        // SAFETY: the bus-master PRD table register; the table it names is ours (`DmaArea`).
        unsafe { x86_64::instructions::port::Port::<u32>::new(port).write(v) }
    }
    fn read_data(&mut self, port: u16, dst: &mut [u8]) {
        debug_assert!(dst.len().is_multiple_of(4));
        // SAFETY: `rep insd` writes exactly dst.len() bytes (dst.len() / 4
        // dwords) to dst, which is ours to write; DF is clear per the ABI.
        unsafe {
            core::arch::asm!(
                "rep insd",
                in("dx") port,
                inout("rdi") dst.as_mut_ptr() => _,
                inout("rcx") dst.len() / 4 => _,
                options(nostack, preserves_flags)
            );
        }
    }
}

/// The legacy channels: (command block, control block).
const CHANNELS: [(u16, u16); 2] = [(0x1f0, 0x3f6), (0x170, 0x376)];
const REG_ERROR: u16 = 1;
const REG_COUNT: u16 = 2;
const REG_LBA0: u16 = 3;
const REG_LBA1: u16 = 4;
const REG_LBA2: u16 = 5;
const REG_DEVICE: u16 = 6;
const REG_STATUS: u16 = 7;
const REG_COMMAND: u16 = 7;
const STATUS_ERR: u8 = 0x01;
const STATUS_DRQ: u8 = 0x08;
const STATUS_DF: u8 = 0x20;
const STATUS_BSY: u8 = 0x80;
const CTRL_NIEN: u8 = 0x02;
const DEVICE_LBA: u8 = 0x40;
const CMD_IDENTIFY: u8 = 0xec;
const CMD_READ_SECTORS: u8 = 0x20;
const CMD_READ_SECTORS_EXT: u8 = 0x24;
const CMD_READ_MULTIPLE: u8 = 0xc4;
const CMD_READ_MULTIPLE_EXT: u8 = 0x29;
const CMD_SET_MULTIPLE_MODE: u8 = 0xc6;
/// The largest block READ MULTIPLE is asked for (sectors, a power of two).
const MAX_BLOCK: u16 = 128;
/// Status polls before a device counts as gone. Under nested TCG a poll takes
/// tens of microseconds; an emulated disk answers within a few.
const POLL_LIMIT: u32 = 2_000_000;
/// Sectors per command (the 8-bit count's 0 = 256).
const MAX_PER_COMMAND: u64 = 256;

/// One IDE disk: its channel, master or slave, size and addressing.
pub struct AtaDisk<P: AtaPorts> {
    ports: P,
    base: u16,
    slave: bool,
    sectors: u64,
    lba48: bool,
    /// Sectors per data request: READ MULTIPLE's block, or 1 (READ SECTORS).
    block: u16,
    /// The disk's index as the device model counts (0 = hda/xvda ... 3 = hdd/xvdd).
    pub index: u32,
    /// Bus-master DMA with read-ahead, once `enable_dma` succeeded.
    dma: Option<dma::Dma>,
    /// Why DMA was given up on, if it was (reads went on with PIO).
    pub dma_failure: Option<DiskError>,
}

impl<P: AtaPorts + Clone> AtaDisk<P> {
    /// The IDE hard disks present, in hda..hdd order (CD-ROMs and empty
    /// positions left out).
    pub fn probe(ports: &mut P) -> alloc::vec::Vec<AtaDisk<P>> {
        let mut found = alloc::vec::Vec::new();
        for (ch, &(base, ctrl)) in CHANNELS.iter().enumerate() {
            // A floating bus reads 0xff: no controller on this channel.
            if ports.inb(base + REG_STATUS) == 0xff {
                continue;
            }
            ports.outb(ctrl, CTRL_NIEN);
            for slave in [false, true] {
                if let Some((sectors, lba48, max_block)) = identify(ports, base, ctrl, slave) {
                    let block = set_multiple(ports, base, ctrl, slave, max_block);
                    found.push(AtaDisk {
                        ports: ports.clone(),
                        base,
                        slave,
                        sectors,
                        lba48,
                        block,
                        index: ch as u32 * 2 + slave as u32,
                        dma: None,
                        dma_failure: None,
                    });
                }
            }
        }
        found
    }
}

/// The ~400 ns a device needs after being selected: four status reads.
fn settle<P: AtaPorts>(ports: &mut P, ctrl: u16) {
    for _ in 0..4 {
        ports.inb(ctrl);
    }
}

fn select<P: AtaPorts>(ports: &mut P, base: u16, ctrl: u16, slave: bool, bits: u8) {
    ports.outb(base + REG_DEVICE, 0xa0 | bits | (slave as u8) << 4);
    settle(ports, ctrl);
}

/// Wait for BSY to clear, then for DRQ; the status when it came.
fn wait_drq<P: AtaPorts>(ports: &mut P, base: u16) -> Result<u8, DiskError> {
    for _ in 0..POLL_LIMIT {
        let s = ports.inb(base + REG_STATUS);
        if s & STATUS_BSY != 0 {
            continue;
        }
        if s & (STATUS_ERR | STATUS_DF) != 0 {
            return Err(DiskError::Device { status: s, error: ports.inb(base + REG_ERROR) });
        }
        if s & STATUS_DRQ != 0 {
            return Ok(s);
        }
    }
    Err(DiskError::Timeout)
}

/// SET MULTIPLE MODE to the largest power of two the disk allows (IDENTIFY
/// word 47), up to MAX_BLOCK; the block size in force (1: READ SECTORS).
fn set_multiple<P: AtaPorts>(ports: &mut P, base: u16, ctrl: u16, slave: bool, max_block: u16) -> u16 {
    let mut block = MAX_BLOCK;
    while block > max_block {
        block >>= 1;
    }
    if block < 2 {
        return 1;
    }
    select(ports, base, ctrl, slave, 0);
    ports.outb(base + REG_COUNT, block as u8);
    ports.outb(base + REG_COMMAND, CMD_SET_MULTIPLE_MODE);
    for _ in 0..POLL_LIMIT {
        let s = ports.inb(base + REG_STATUS);
        if s & STATUS_BSY == 0 {
            return if s & (STATUS_ERR | STATUS_DF) == 0 { block } else { 1 };
        }
    }
    1
}

/// IDENTIFY DEVICE: the disk's size in sectors, whether it takes 48-bit LBA,
/// and its largest READ MULTIPLE block; `None` for no device, or a packet
/// (ATAPI) device.
fn identify<P: AtaPorts>(ports: &mut P, base: u16, ctrl: u16, slave: bool) -> Option<(u64, bool, u16)> {
    select(ports, base, ctrl, slave, 0);
    for r in [REG_COUNT, REG_LBA0, REG_LBA1, REG_LBA2] {
        ports.outb(base + r, 0);
    }
    ports.outb(base + REG_COMMAND, CMD_IDENTIFY);
    if ports.inb(base + REG_STATUS) == 0 {
        return None;
    }
    // A packet device aborts IDENTIFY DEVICE and leaves its signature.
    let status = wait_drq(ports, base);
    if ports.inb(base + REG_LBA1) != 0 || ports.inb(base + REG_LBA2) != 0 {
        return None;
    }
    status.ok()?;
    let mut id = [0u8; SECTOR];
    ports.read_data(base, &mut id);
    let word = |i: usize| u64::from(u16::from_le_bytes([id[2 * i], id[2 * i + 1]]));
    let lba48 = word(83) & (1 << 10) != 0;
    let sectors =
        if lba48 { word(100) | word(101) << 16 | word(102) << 32 | word(103) << 48 } else { word(60) | word(61) << 16 };
    (sectors > 0).then_some((sectors, lba48, word(47) as u16 & 0xff))
}

impl<P: AtaPorts> AtaDisk<P> {
    /// Sectors per data request (READ MULTIPLE's block; 1 without it).
    pub fn block(&self) -> u16 {
        self.block
    }

    /// Program the task file for `n` sectors from `lba` and issue the 28- or
    /// 48-bit form of a command (`cmds`: (28-bit, 48-bit)); `n` at most 256
    /// with 28-bit addressing, 65535 with 48-bit.
    fn issue(&mut self, lba: u64, n: u64, cmds: (u8, u8)) {
        let (base, p) = (self.base, &mut self.ports);
        let ctrl = CHANNELS.iter().find(|c| c.0 == base).map_or(base + 0x206, |c| c.1);
        if self.lba48 {
            select(p, base, ctrl, self.slave, DEVICE_LBA);
            // The high-order bytes first, then the low-order ones (the registers are FIFOs of two).
            p.outb(base + REG_COUNT, (n >> 8) as u8);
            p.outb(base + REG_LBA0, (lba >> 24) as u8);
            p.outb(base + REG_LBA1, (lba >> 32) as u8);
            p.outb(base + REG_LBA2, (lba >> 40) as u8);
            p.outb(base + REG_COUNT, n as u8);
            p.outb(base + REG_LBA0, lba as u8);
            p.outb(base + REG_LBA1, (lba >> 8) as u8);
            p.outb(base + REG_LBA2, (lba >> 16) as u8);
            p.outb(base + REG_COMMAND, cmds.1);
        } else {
            select(p, base, ctrl, self.slave, DEVICE_LBA | ((lba >> 24) as u8 & 0x0f));
            p.outb(base + REG_COUNT, n as u8); // 256 is written as 0
            p.outb(base + REG_LBA0, lba as u8);
            p.outb(base + REG_LBA1, (lba >> 8) as u8);
            p.outb(base + REG_LBA2, (lba >> 16) as u8);
            p.outb(base + REG_COMMAND, cmds.0);
        }
    }

    /// The most sectors one command moves.
    fn max_per_command(&self) -> u64 {
        if self.lba48 {
            65535
        } else {
            MAX_PER_COMMAND
        }
    }

    /// One command's worth (at most 256 sectors) from `lba` into `buf`, by PIO.
    fn read_chunk(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let n = (buf.len() / SECTOR) as u64;
        let cmds = if self.block > 1 {
            (CMD_READ_MULTIPLE, CMD_READ_MULTIPLE_EXT)
        } else {
            (CMD_READ_SECTORS, CMD_READ_SECTORS_EXT)
        };
        self.issue(lba, n, cmds);
        let (base, p) = (self.base, &mut self.ports);
        for block in buf.chunks_mut(self.block as usize * SECTOR) {
            wait_drq(p, base)?;
            p.read_data(base, block);
        }
        Ok(())
    }
}

impl<P: AtaPorts> BlockDevice for AtaDisk<P> {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let n = (buf.len() / SECTOR) as u64;
        let end = lba.checked_add(n).filter(|&e| e <= self.sectors).ok_or(DiskError::OutOfRange)?;
        if !self.lba48 && end > 1 << 28 {
            return Err(DiskError::OutOfRange);
        }
        let buf = &mut buf[..n as usize * SECTOR];
        if self.dma.is_some() {
            match self.read_dma(lba, buf) {
                Ok(()) => return Ok(()),
                // Give DMA up and read on with PIO (the caller learns why from dma_failure).
                Err(e) => {
                    self.dma = None;
                    self.dma_failure = Some(e);
                }
            }
        }
        let mut lba = lba;
        for chunk in buf.chunks_mut(MAX_PER_COMMAND as usize * SECTOR) {
            self.read_chunk(lba, chunk)?;
            lba += (chunk.len() / SECTOR) as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    /// A primary-channel IDE controller with one disk (master), as QEMU's
    /// PIIX emulates it, for the commands the driver sends.
    struct Fake {
        disk: Vec<u8>,
        lba48: bool,
        regs: [u8; 8],
        hob: [u8; 8],
        data: Vec<u8>,
        pos: usize,
        status: u8,
        commands: Vec<u8>,
        /// IDENTIFY word 47 (0: no READ MULTIPLE) and the block set.
        max_block: u8,
        block: usize,
        /// Bytes per data request the driver took (a block at most).
        largest_read: usize,
        /// The bus master: its registers, the memory it writes (a test
        /// buffer standing at "physical" FAKE_PHYS), a DMA command waiting
        /// for the start bit (disk bytes), and the transfers made.
        bm_command: u8,
        bm_status: u8,
        prdt: u32,
        memory: *mut u8,
        dma_pending: Option<(usize, usize)>,
        dma_commands: usize,
    }

    const FAKE_BM_COMMAND: u16 = 0xc040;
    const FAKE_BM_STATUS: u16 = 0xc042;
    const FAKE_BM_PRDT: u16 = 0xc044;
    const FAKE_PHYS: u64 = 0x0100_0000;
    const FAKE_READ_DMA: u8 = 0xc8;
    const FAKE_READ_DMA_EXT: u8 = 0x25;

    impl Fake {
        /// Walk the PRD table and copy the disk's bytes where it says, as
        /// the controller does once started.
        fn dma_transfer(&mut self, start: usize, len: usize) {
            let at = |phys: u32| (phys as u64 - FAKE_PHYS) as usize;
            let (mut done, mut entry) = (0, at(self.prdt));
            loop {
                // SAFETY: the test's area is live and the table lies in it.
                let (addr, flags) = unsafe {
                    let e = self.memory.add(entry) as *const u32;
                    (e.read_unaligned(), e.add(1).read_unaligned())
                };
                let n = match flags & 0xffff {
                    0 => 65536,
                    n => n as usize,
                };
                assert!(at(addr) % 65536 + n <= 65536, "a PRD region crosses 64 KiB");
                // SAFETY: as above; the driver's PRD regions lie in its area.
                unsafe {
                    core::ptr::copy_nonoverlapping(self.disk[start + done..].as_ptr(), self.memory.add(at(addr)), n);
                }
                done += n;
                entry += 8;
                if flags & (1 << 31) != 0 {
                    break;
                }
            }
            assert_eq!(done, len, "the PRD table covers the command");
            self.dma_commands += 1;
            self.status = 0x50;
            self.bm_status = (self.bm_status & !1) | 4;
        }
    }

    #[derive(Clone)]
    struct FakePorts(Rc<RefCell<Fake>>);

    impl AtaPorts for FakePorts {
        fn inb(&mut self, port: u16) -> u8 {
            let f = self.0.borrow();
            match port {
                0x1f7 | 0x3f6 if f.regs[6] & 0x10 != 0 => 0, // no slave
                0x1f7 | 0x3f6 => f.status,
                0x1f1..=0x1f6 => f.regs[(port - 0x1f0) as usize],
                FAKE_BM_STATUS => f.bm_status,
                _ => 0xff, // no secondary channel
            }
        }
        fn outb(&mut self, port: u16, v: u8) {
            let mut f = self.0.borrow_mut();
            match port {
                0x1f2..=0x1f6 => {
                    let r = (port - 0x1f0) as usize;
                    f.hob[r] = f.regs[r];
                    f.regs[r] = v;
                }
                0x1f7 => {
                    f.commands.push(v);
                    let sel_slave = f.regs[6] & 0x10 != 0;
                    if sel_slave {
                        return;
                    }
                    f.pos = 0;
                    match v {
                        CMD_IDENTIFY => {
                            let mut id = alloc::vec![0u8; SECTOR];
                            let n = (f.disk.len() / SECTOR) as u64;
                            if f.lba48 {
                                id[167] = 1 << 2; // word 83 bit 10
                                id[200..208].copy_from_slice(&n.to_le_bytes());
                            } else {
                                id[120..124].copy_from_slice(&(n as u32).to_le_bytes());
                            }
                            id[94] = f.max_block;
                            f.data = id;
                            f.status = 0x58;
                        }
                        CMD_SET_MULTIPLE_MODE => {
                            let n = f.regs[2];
                            if n == 0 || n > f.max_block || !n.is_power_of_two() {
                                f.status = 0x51;
                            } else {
                                f.block = n as usize;
                                f.status = 0x50;
                            }
                        }
                        CMD_READ_MULTIPLE | CMD_READ_MULTIPLE_EXT if f.block < 2 => f.status = 0x51,
                        CMD_READ_SECTORS
                        | CMD_READ_SECTORS_EXT
                        | CMD_READ_MULTIPLE
                        | CMD_READ_MULTIPLE_EXT
                        | FAKE_READ_DMA
                        | FAKE_READ_DMA_EXT => {
                            let r = f.regs;
                            let h = f.hob;
                            let ext = [CMD_READ_SECTORS_EXT, CMD_READ_MULTIPLE_EXT, FAKE_READ_DMA_EXT].contains(&v);
                            let (lba, count) = if ext {
                                let lba = [r[3], r[4], r[5], h[3], h[4], h[5]]
                                    .iter()
                                    .enumerate()
                                    .fold(0u64, |a, (i, &b)| a | u64::from(b) << (8 * i));
                                let c = u32::from(r[2]) | u32::from(h[2]) << 8;
                                (lba, if c == 0 { 65536 } else { c })
                            } else {
                                let lba = u64::from(r[3])
                                    | u64::from(r[4]) << 8
                                    | u64::from(r[5]) << 16
                                    | u64::from(r[6] & 0xf) << 24;
                                (lba, if r[2] == 0 { 256 } else { u32::from(r[2]) })
                            };
                            let s = lba as usize * SECTOR;
                            match f.disk.get(s..s + count as usize * SECTOR) {
                                // A DMA read waits for the bus master's start (QEMU: DRQ meanwhile).
                                Some(_) if v == FAKE_READ_DMA || v == FAKE_READ_DMA_EXT => {
                                    f.dma_pending = Some((s, count as usize * SECTOR));
                                    f.status = 0x58;
                                }
                                Some(d) => {
                                    f.data = d.to_vec();
                                    f.status = 0x58;
                                }
                                None => {
                                    f.status = 0x51;
                                    f.regs[1] = 0x10; // IDNF
                                }
                            }
                        }
                        _ => f.status = 0x51,
                    }
                }
                FAKE_BM_STATUS => f.bm_status &= !(v & 0x06),
                FAKE_BM_COMMAND => {
                    f.bm_command = v;
                    if v & 1 != 0 {
                        if let Some((start, len)) = f.dma_pending.take() {
                            f.dma_transfer(start, len);
                        }
                    }
                }
                _ => {}
            }
        }
        fn outl(&mut self, port: u16, v: u32) {
            assert_eq!(port, FAKE_BM_PRDT);
            self.0.borrow_mut().prdt = v;
        }
        fn read_data(&mut self, _port: u16, dst: &mut [u8]) {
            let mut f = self.0.borrow_mut();
            let p = f.pos;
            let per_request =
                if f.commands.last().is_some_and(|&c| c == CMD_READ_MULTIPLE || c == CMD_READ_MULTIPLE_EXT) {
                    f.block * SECTOR
                } else {
                    SECTOR
                };
            assert!(dst.len() <= per_request, "{} bytes read in one data request of {per_request}", dst.len());
            f.largest_read = f.largest_read.max(dst.len());
            dst.copy_from_slice(&f.data[p..p + dst.len()]);
            f.pos += dst.len();
            if f.pos >= f.data.len() {
                f.status = 0x50;
            }
        }
    }

    fn fake(sectors: usize, lba48: bool) -> FakePorts {
        fake_with(sectors, lba48, 0)
    }

    fn fake_with(sectors: usize, lba48: bool, max_block: u8) -> FakePorts {
        let disk = (0..sectors * SECTOR).map(|i| (i / SECTOR) as u8 ^ (i as u8)).collect();
        FakePorts(Rc::new(RefCell::new(Fake {
            disk,
            lba48,
            regs: [0; 8],
            hob: [0; 8],
            data: Vec::new(),
            pos: 0,
            status: 0x50,
            commands: Vec::new(),
            max_block,
            block: 0,
            largest_read: 0,
            bm_command: 0,
            bm_status: 0,
            prdt: 0,
            memory: core::ptr::null_mut(),
            dma_pending: None,
            dma_commands: 0,
        })))
    }

    #[test]
    fn finds_the_master_disk_and_reads_across_commands() {
        for lba48 in [false, true] {
            let mut p = fake(700, lba48);
            let mut disks = AtaDisk::probe(&mut p);
            assert_eq!(disks.len(), 1, "only the primary master is there");
            let d = &mut disks[0];
            assert_eq!((d.index, d.sectors(), d.lba48), (0, 700, lba48));
            let mut buf = alloc::vec![0u8; 600 * SECTOR];
            d.read(50, &mut buf).unwrap();
            assert_eq!(buf[..], p.0.borrow().disk[50 * SECTOR..650 * SECTOR]);
            let reads = p.0.borrow().commands.iter().filter(|&&c| c != CMD_IDENTIFY).count();
            assert_eq!(reads, 3, "256 + 256 + 88 sectors");
            assert_eq!(d.read(650, &mut buf[..100 * SECTOR]), Err(DiskError::OutOfRange));
        }
    }

    #[test]
    fn read_multiple_takes_a_block_per_data_request() {
        for (max_block, want) in [(16u8, 16u16), (12, 8), (1, 1)] {
            let mut p = fake_with(700, true, max_block);
            let mut d = AtaDisk::probe(&mut p).remove(0);
            assert_eq!(d.block, want, "IDENTIFY says {max_block}");
            let mut buf = alloc::vec![0u8; 300 * SECTOR];
            d.read(7, &mut buf).unwrap();
            assert_eq!(buf[..], p.0.borrow().disk[7 * SECTOR..307 * SECTOR]);
            assert_eq!(p.0.borrow().largest_read, want as usize * SECTOR);
            let cmd = if want > 1 { CMD_READ_MULTIPLE_EXT } else { CMD_READ_SECTORS_EXT };
            assert_eq!(p.0.borrow().commands.last(), Some(&cmd));
        }
    }

    /// A disk of `sectors` with DMA on: a 64 KiB-aligned area (the PRD
    /// table, then `ahead` bytes of read-ahead) the fake controller writes.
    fn dma_disk(sectors: usize, lba48: bool, ahead: usize) -> (FakePorts, AtaDisk<FakePorts>) {
        let mut p = fake_with(sectors, lba48, 16);
        let mut d = AtaDisk::probe(&mut p).remove(0);
        let len = DmaArea::size_for(ahead);
        let mem = alloc::vec![0u8; len + DmaArea::ALIGN].leak();
        let at = mem.as_ptr().align_offset(DmaArea::ALIGN);
        p.0.borrow_mut().memory = mem[at..].as_mut_ptr();
        // SAFETY: the leaked buffer is the test's alone.
        let area = unsafe { DmaArea::new(mem[at..].as_mut_ptr(), FAKE_PHYS, len) }.unwrap();
        d.enable_dma(0xc040, area);
        (p, d)
    }

    #[test]
    fn dma_reads_ahead_a_buffer_at_a_time() {
        let (p, mut d) = dma_disk(3000, true, 256 << 10);
        // ext4-view's pattern: 32 KiB at a time, forwards, and a look back.
        let disk = p.0.borrow().disk.clone();
        for (lba, n) in [(100u64, 64usize), (164, 64), (228, 512), (2990, 10), (101, 3)] {
            let mut buf = alloc::vec![0u8; n * SECTOR];
            d.read(lba, &mut buf).unwrap();
            assert!(buf[..] == disk[lba as usize * SECTOR..][..n * SECTOR], "sectors {lba}+{n}");
        }
        assert!(d.dma_enabled() && d.dma_failure.is_none());
        // 100..612 (miss), 612..740 (miss for the end of the 512), 2990 (miss), 101 (miss).
        assert_eq!(p.0.borrow().dma_commands, 4);
    }

    #[test]
    fn a_dma_error_falls_back_to_pio() {
        let (p, mut d) = dma_disk(100, false, 64 << 10);
        // The device refuses a read past its real end (DMA, then PIO): DMA
        // is given up and the next read is by PIO.
        let mut buf = alloc::vec![0u8; 8 * SECTOR];
        p.0.borrow_mut().disk.truncate(95 * SECTOR);
        assert!(d.read(90, &mut buf).is_err());
        assert!(!d.dma_enabled());
        assert!(matches!(d.dma_failure, Some(DiskError::Device { .. })));
        d.read(10, &mut buf).unwrap();
    }

    #[test]
    fn a_device_error_is_reported_not_waited_on() {
        let mut p = fake(100, false);
        let mut d = AtaDisk::probe(&mut p).remove(0);
        d.sectors = 1000; // the device knows better than the size we believe
        let mut buf = alloc::vec![0u8; SECTOR];
        assert_eq!(d.read(500, &mut buf), Err(DiskError::Device { status: 0x51, error: 0x10 }));
    }
}
