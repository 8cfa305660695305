//! Test support: synthetic PV kernels and guest memory in a buffer.

use alloc::vec;
use alloc::vec::Vec;

use crate::abi::*;
use crate::builder::{Frame, GuestMemory};

/// Guest memory as a vector of frames, for machine frames `[base, base + n)`.
pub struct VecMemory {
    pub base: u64,
    pub frames: Vec<Frame>,
}

impl VecMemory {
    pub fn new(base: u64, pages: u64) -> Self {
        VecMemory { base, frames: vec![[0u8; 4096]; pages as usize] }
    }
}

impl GuestMemory for VecMemory {
    fn frame(&self, mfn: u64) -> &Frame {
        &self.frames[(mfn - self.base) as usize]
    }
    fn frame_mut(&mut self, mfn: u64) -> &mut Frame {
        &mut self.frames[(mfn - self.base) as usize]
    }
}

/// A synthetic 64-bit PV kernel ELF.
#[derive(Clone, Debug)]
pub struct SynthKernel {
    /// (p_paddr, p_vaddr, file bytes, memsz)
    pub segments: Vec<(u64, u64, Vec<u8>, u64)>,
    /// (type, descriptor) notes named "Xen", in one PT_NOTE.
    pub notes: Vec<(u32, Vec<u8>)>,
    pub e_entry: u64,
    pub class: u8,
    pub machine: u16,
}

pub const SYNTH_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;

impl SynthKernel {
    /// A Linux-like kernel: 3 segments at pseudo-physical 16 MiB, the usual notes.
    pub fn linux_like() -> Self {
        let text: Vec<u8> = (0..0x3000u32).map(|i| (i % 251) as u8).collect();
        let data: Vec<u8> = (0..0x1800u32).map(|i| (i % 13) as u8 + 1).collect();
        let entry = SYNTH_VIRT_BASE + 0x100_0040;
        let hc = SYNTH_VIRT_BASE + 0x100_2000;
        SynthKernel {
            segments: vec![
                (0x100_0000, SYNTH_VIRT_BASE + 0x100_0000, text, 0x3000),
                (0x100_3000, SYNTH_VIRT_BASE + 0x100_3000, data, 0x5000),
            ],
            notes: vec![
                (XEN_ELFNOTE_GUEST_OS, b"linux\0".to_vec()),
                (XEN_ELFNOTE_XEN_VERSION, b"xen-3.0\0".to_vec()),
                (XEN_ELFNOTE_VIRT_BASE, SYNTH_VIRT_BASE.to_le_bytes().to_vec()),
                (XEN_ELFNOTE_PADDR_OFFSET, 0u64.to_le_bytes().to_vec()),
                (XEN_ELFNOTE_ENTRY, entry.to_le_bytes().to_vec()),
                (XEN_ELFNOTE_HYPERCALL_PAGE, hc.to_le_bytes().to_vec()),
                (XEN_ELFNOTE_FEATURES, b"!writable_page_tables|pae_pgdir_above_4gb\0".to_vec()),
                (XEN_ELFNOTE_LOADER, b"generic\0".to_vec()),
                (XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000u64.to_le_bytes().to_vec()),
                (XEN_ELFNOTE_MOD_START_PFN, 1u32.to_le_bytes().to_vec()),
            ],
            e_entry: entry,
            class: 2,
            machine: 62,
        }
    }

    pub fn set_note(&mut self, kind: u32, desc: &[u8]) {
        self.notes.retain(|(k, _)| *k != kind);
        self.notes.push((kind, desc.to_vec()));
    }

    pub fn remove_note(&mut self, kind: u32) {
        self.notes.retain(|(k, _)| *k != kind);
    }

    /// Serialise: ELF header, program headers (PT_LOADs then PT_NOTE), notes, segment data.
    pub fn to_elf(&self) -> Vec<u8> {
        let nph = self.segments.len() + 1;
        let ph_off = 64usize;
        let mut notes = Vec::new();
        for (kind, desc) in &self.notes {
            notes.extend_from_slice(&4u32.to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&kind.to_le_bytes());
            notes.extend_from_slice(b"Xen\0");
            notes.extend_from_slice(desc);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        }
        let notes_off = ph_off + nph * 56;
        let mut data_off = (notes_off + notes.len()).next_multiple_of(4096);
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = self.class;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out[18..20].copy_from_slice(&self.machine.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&self.e_entry.to_le_bytes());
        out[32..40].copy_from_slice(&(ph_off as u64).to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(nph as u16).to_le_bytes());
        out[58..60].copy_from_slice(&64u16.to_le_bytes());
        let mut bodies = Vec::new();
        for (paddr, vaddr, bytes, memsz) in &self.segments {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            ph[4..8].copy_from_slice(&7u32.to_le_bytes());
            ph[8..16].copy_from_slice(&(data_off as u64).to_le_bytes());
            ph[16..24].copy_from_slice(&vaddr.to_le_bytes());
            ph[24..32].copy_from_slice(&paddr.to_le_bytes());
            ph[32..40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            ph[40..48].copy_from_slice(&memsz.to_le_bytes());
            ph[48..56].copy_from_slice(&4096u64.to_le_bytes());
            out.extend_from_slice(&ph);
            bodies.push((data_off, bytes.clone()));
            data_off = (data_off + bytes.len()).next_multiple_of(4096);
        }
        let mut ph = [0u8; 56];
        ph[..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        ph[4..8].copy_from_slice(&4u32.to_le_bytes());
        ph[8..16].copy_from_slice(&(notes_off as u64).to_le_bytes());
        ph[32..40].copy_from_slice(&(notes.len() as u64).to_le_bytes());
        ph[40..48].copy_from_slice(&(notes.len() as u64).to_le_bytes());
        ph[48..56].copy_from_slice(&4u64.to_le_bytes());
        out.extend_from_slice(&ph);
        out.extend_from_slice(&notes);
        for (off, bytes) in bodies {
            out.resize(off, 0);
            out.extend_from_slice(&bytes);
        }
        out
    }
}

/// Wrap an ELF (or any payload) as a minimal bzImage with the given payload bytes.
pub fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 0x400];
    f[0x1f1] = 1;
    f[0x202..0x206].copy_from_slice(b"HdrS");
    f[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    f[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
    f[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// LZ4 legacy frame with Linux's size trailer.
pub fn lz4_legacy(payload: &[u8]) -> Vec<u8> {
    let mut f = crate::loader::decompress::LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
    for chunk in payload.chunks(8 << 20) {
        let b = lz4_flex::block::compress(chunk);
        f.extend_from_slice(&(b.len() as u32).to_le_bytes());
        f.extend_from_slice(&b);
    }
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f
}
