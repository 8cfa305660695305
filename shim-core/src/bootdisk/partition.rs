//! Partition tables: MBR (primary and logical partitions) and GPT, read the
//! way Linux numbers them (`xvda1`...; logical MBR partitions from 5). A disk
//! without a table is one filesystem over the whole disk (partition 0).

use alloc::vec::Vec;

use super::{BlockDevice, DiskError, SECTOR};

/// One partition: Linux's number (0 = the whole disk) and where it lies, in sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub start: u64,
    pub sectors: u64,
}

/// The table a disk has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    Mbr,
    Gpt,
    None,
}

/// MBR partition types.
const MBR_EMPTY: u8 = 0x00;
const MBR_EXTENDED_CHS: u8 = 0x05;
const MBR_EXTENDED_LBA: u8 = 0x0f;
const MBR_EXTENDED_LINUX: u8 = 0x85;
const MBR_GPT_PROTECTIVE: u8 = 0xee;
/// GPT: "EFI PART" at LBA 1, entries of at least 128 bytes.
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
/// Bounds on what a guest's disk can make Cocoon read.
const MAX_LOGICAL: u32 = 64;
const MAX_GPT_ENTRIES: u32 = 1024;

fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from(le32(b, o)) | u64::from(le32(b, o + 4)) << 32
}

fn is_extended(t: u8) -> bool {
    matches!(t, MBR_EXTENDED_CHS | MBR_EXTENDED_LBA | MBR_EXTENDED_LINUX)
}

/// The four MBR slots of a sector with the 0x55AA signature: (type, start, sectors).
fn mbr_slots(s: &[u8; SECTOR]) -> Option<[(u8, u64, u64); 4]> {
    if s[510] != 0x55 || s[511] != 0xaa {
        return None;
    }
    let mut out = [(0u8, 0u64, 0u64); 4];
    for (i, slot) in out.iter_mut().enumerate() {
        let e = 446 + 16 * i;
        *slot = (s[e + 4], u64::from(le32(s, e + 8)), u64::from(le32(s, e + 12)));
    }
    Some(out)
}

/// Read the disk's partitions, in Linux's numbering.
pub fn read_partitions(dev: &mut dyn BlockDevice) -> Result<(TableKind, Vec<Partition>), DiskError> {
    let total = dev.sectors();
    let mut s0 = [0u8; SECTOR];
    dev.read(0, &mut s0)?;
    let Some(slots) = mbr_slots(&s0) else {
        return Ok((TableKind::None, alloc::vec![Partition { number: 0, start: 0, sectors: total }]));
    };
    if slots.iter().any(|s| s.0 == MBR_GPT_PROTECTIVE) {
        if let Some(parts) = read_gpt(dev, total)? {
            return Ok((TableKind::Gpt, parts));
        }
    }
    // A filesystem's own boot sector can carry 0x55AA (FAT, some ext
    // installers): slots outside the disk mean this is no table.
    let fits = |start: u64, len: u64| start > 0 && len > 0 && start.checked_add(len).is_some_and(|e| e <= total);
    let sane = slots.iter().all(|&(t, s, l)| t == MBR_EMPTY || fits(s, l));
    if !sane || slots.iter().all(|s| s.0 == MBR_EMPTY) {
        return Ok((TableKind::None, alloc::vec![Partition { number: 0, start: 0, sectors: total }]));
    }
    let mut parts = Vec::new();
    let mut extended = None;
    for (i, &(t, start, len)) in slots.iter().enumerate() {
        if t == MBR_EMPTY {
            continue;
        }
        if is_extended(t) {
            extended.get_or_insert((start, len));
        } else {
            parts.push(Partition { number: i as u32 + 1, start, sectors: len });
        }
    }
    if let Some((ext_start, ext_len)) = extended {
        read_logical(dev, ext_start, ext_len, total, &mut parts)?;
    }
    Ok((TableKind::Mbr, parts))
}

/// The chain of extended boot records: each holds one logical partition
/// (relative to itself) and the next record (relative to the extended one).
fn read_logical(
    dev: &mut dyn BlockDevice,
    ext_start: u64,
    ext_len: u64,
    total: u64,
    parts: &mut Vec<Partition>,
) -> Result<(), DiskError> {
    let mut ebr = ext_start;
    let mut number = 5;
    for _ in 0..MAX_LOGICAL {
        if ebr >= total {
            break;
        }
        let mut s = [0u8; SECTOR];
        dev.read(ebr, &mut s)?;
        let Some(slots) = mbr_slots(&s) else { break };
        let (t, rel, len) = slots[0];
        if t != MBR_EMPTY && len > 0 {
            let start = ebr.saturating_add(rel);
            if start.checked_add(len).is_some_and(|e| e <= total) {
                parts.push(Partition { number, start, sectors: len });
            }
            number += 1;
        }
        let (nt, next, _) = slots[1];
        if !is_extended(nt) || next == 0 || next >= ext_len {
            break;
        }
        ebr = ext_start + next;
    }
    Ok(())
}

/// The GPT's used entries (Linux numbers a GPT partition by its slot + 1).
/// `None` when the header is not there (a protective MBR alone).
fn read_gpt(dev: &mut dyn BlockDevice, total: u64) -> Result<Option<Vec<Partition>>, DiskError> {
    let mut h = [0u8; SECTOR];
    dev.read(1, &mut h)?;
    if &h[..8] != GPT_SIGNATURE {
        return Ok(None);
    }
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80).min(MAX_GPT_ENTRIES);
    let size = le32(&h, 84) as usize;
    if !(128..=SECTOR).contains(&size) || !SECTOR.is_multiple_of(size) {
        return Ok(None);
    }
    let per_sector = SECTOR / size;
    let mut parts = Vec::new();
    let mut s = [0u8; SECTOR];
    for i in 0..count as usize {
        if i % per_sector == 0 {
            let lba = entries_lba.saturating_add((i / per_sector) as u64);
            if lba >= total {
                break;
            }
            dev.read(lba, &mut s)?;
        }
        let e = &s[(i % per_sector) * size..][..size];
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if first == 0 || last < first || last >= total {
            continue;
        }
        parts.push(Partition { number: i as u32 + 1, start: first, sectors: last - first + 1 });
    }
    Ok(Some(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootdisk::MemDisk;

    fn mbr_entry(s: &mut [u8], slot: usize, t: u8, start: u32, len: u32) {
        let e = 446 + 16 * slot;
        s[e + 4] = t;
        s[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
        s[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xaa;
    }

    #[test]
    fn mbr_primary_and_logical_partitions_are_numbered_as_linux_does() {
        let mut d = alloc::vec![0u8; 4096 * SECTOR];
        mbr_entry(&mut d[..SECTOR], 0, 0x83, 2048, 1000);
        mbr_entry(&mut d[..SECTOR], 2, MBR_EXTENDED_LBA, 3100, 900);
        // First EBR at 3100: logical at +10, next EBR at extended+400.
        mbr_entry(&mut d[3100 * SECTOR..3101 * SECTOR], 0, 0x83, 10, 300);
        mbr_entry(&mut d[3100 * SECTOR..3101 * SECTOR], 1, MBR_EXTENDED_CHS, 400, 400);
        mbr_entry(&mut d[3500 * SECTOR..3501 * SECTOR], 0, 0x82, 5, 100);
        let mut dev = MemDisk::new(d);
        let (kind, p) = read_partitions(&mut dev).unwrap();
        assert_eq!(kind, TableKind::Mbr);
        assert_eq!(
            p,
            [
                Partition { number: 1, start: 2048, sectors: 1000 },
                Partition { number: 5, start: 3110, sectors: 300 },
                Partition { number: 6, start: 3505, sectors: 100 },
            ]
        );
    }

    #[test]
    fn gpt_entries_keep_their_slot_numbers() {
        let mut d = alloc::vec![0u8; 4096 * SECTOR];
        mbr_entry(&mut d[..SECTOR], 0, MBR_GPT_PROTECTIVE, 1, 4095);
        let h = &mut d[SECTOR..2 * SECTOR];
        h[..8].copy_from_slice(GPT_SIGNATURE);
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        for (slot, first, last) in [(0usize, 34u64, 2081u64), (2, 2082, 4000)] {
            let e = &mut d[2 * SECTOR + slot * 128..][..128];
            e[0] = 0xaf; // any non-zero type GUID
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last.to_le_bytes());
        }
        let mut dev = MemDisk::new(d);
        let (kind, p) = read_partitions(&mut dev).unwrap();
        assert_eq!(kind, TableKind::Gpt);
        assert_eq!(
            p,
            [Partition { number: 1, start: 34, sectors: 2048 }, Partition { number: 3, start: 2082, sectors: 1919 }]
        );
    }

    #[test]
    fn no_table_or_a_nonsense_one_is_the_whole_disk() {
        let mut dev = MemDisk::new(alloc::vec![0u8; 64 * SECTOR]);
        assert_eq!(read_partitions(&mut dev).unwrap().0, TableKind::None);
        let mut d = alloc::vec![0u8; 64 * SECTOR];
        mbr_entry(&mut d[..SECTOR], 0, 0x83, 10, 1 << 30); // beyond the disk
        let mut dev = MemDisk::new(d);
        let (kind, p) = read_partitions(&mut dev).unwrap();
        assert_eq!((kind, p[0]), (TableKind::None, Partition { number: 0, start: 0, sectors: 64 }));
    }

    #[test]
    fn an_ebr_loop_ends() {
        let mut d = alloc::vec![0u8; 4096 * SECTOR];
        mbr_entry(&mut d[..SECTOR], 0, MBR_EXTENDED_LBA, 100, 1000);
        mbr_entry(&mut d[100 * SECTOR..101 * SECTOR], 0, 0x83, 10, 20);
        mbr_entry(&mut d[100 * SECTOR..101 * SECTOR], 1, MBR_EXTENDED_LBA, 0, 0); // next = 0: end
        mbr_entry(&mut d[100 * SECTOR..101 * SECTOR], 1, MBR_EXTENDED_LBA, 1, 10); // points back near itself
        mbr_entry(&mut d[101 * SECTOR..102 * SECTOR], 1, MBR_EXTENDED_LBA, 1, 10); // and again, forever
        let mut dev = MemDisk::new(d);
        let (_, p) = read_partitions(&mut dev).unwrap();
        assert!(p.len() <= MAX_LOGICAL as usize + 4);
    }
}
