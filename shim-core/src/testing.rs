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
    with_bzimage_crc(f)
}

/// End a bzImage as Linux's `build.c` does: whole paragraphs, `syssize`, and
/// the CRC32 (without the final inversion) of everything before it.
pub fn with_bzimage_crc(mut f: Vec<u8>) -> Vec<u8> {
    let setup = (f[0x1f1] as usize + 1) * 512;
    f.resize(setup + (f.len() + 4 - setup).next_multiple_of(16) - 4, 0);
    let paragraphs = ((f.len() + 4 - setup) / 16) as u32;
    f[0x1f4..0x1f8].copy_from_slice(&paragraphs.to_le_bytes());
    let crc = !crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_le_bytes());
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

/// Check a built domain the way a PV kernel will see it: by walking its page
/// tables from CR3. Panics with a message naming what is wrong.
pub fn verify_domain(
    kernel: &crate::loader::Kernel,
    map: &crate::builder::PhysMap,
    mem: &VecMemory,
    layout: &crate::builder::Layout,
    entry: &crate::builder::EntryState,
    cfg: &crate::builder::DomainConfig,
) {
    use crate::mm::walk::translate;
    let p = &kernel.params;
    let l4 = entry.cr3 >> PAGE_SHIFT;
    assert_eq!(l4, map.mfn(layout.page_tables.pfn), "CR3 is the first page-table frame");
    assert_eq!(entry.rip, p.entry);
    assert_eq!(entry.rsi, layout.start_info.va.unwrap());
    assert_eq!(entry.rsp, layout.boot_stack.va.unwrap() + PAGE_SIZE);

    // Every page of every segment: right frame, writable, right bytes (bss zero).
    let hc_page = p.hypercall_page;
    for s in &kernel.segments {
        let data = kernel.segment_data(s);
        let start = s.paddr.wrapping_add(p.virt_offset);
        let mut va = start & !(PAGE_SIZE - 1);
        while va < start + s.memsz {
            let t = translate(mem, l4, va).unwrap_or_else(|e| panic!("segment {} page {va:#x}: {e:?}", s.index));
            assert_eq!(t.mfn, map.mfn((va - p.virt_base) >> PAGE_SHIFT), "frame of {va:#x}");
            assert!(t.writable, "{va:#x} is read-only");
            if Some(va) != hc_page {
                let frame = mem.frame(t.mfn);
                for (i, got) in frame.iter().enumerate() {
                    let a = va + i as u64;
                    if a < start || a >= start + s.memsz {
                        continue;
                    }
                    let want = data.get((a - start) as usize).copied().unwrap_or(0);
                    assert_eq!(*got, want, "byte at {a:#x}");
                }
            }
            va += PAGE_SIZE;
        }
    }
    if let Some(h) = hc_page {
        let t = translate(mem, l4, h).unwrap();
        assert_eq!(&mem.frame(t.mfn)[17 * 32 + 3..17 * 32 + 8], &[0xb8, 17, 0, 0, 0], "hypercall page");
    }

    // Page-table frames of both mappings: never writable through the mapping.
    for m in layout.mappings.iter().flatten() {
        for pfn in m.first_table_pfn()..m.first_table_pfn() + m.tables {
            assert!(layout.is_page_table(pfn));
            let va = layout.va_of_pfn(pfn);
            if va < layout.virt_pgtab_end {
                let t = translate(mem, l4, va).unwrap();
                assert!(!t.writable && t.l1e & _PAGE_RW == 0, "page table pfn {pfn:#x} mapped writable");
            }
        }
    }
    // The whole initial mapping is there, and nothing past it.
    assert_eq!(layout.virt_pgtab_end % (4 << 20), 0);
    assert!(layout.virt_pgtab_end - entry.rsp >= 512 * 1024);
    translate(mem, l4, layout.virt_pgtab_end - PAGE_SIZE).expect("last page of the mapping");
    assert!(translate(mem, l4, layout.virt_pgtab_end).is_err());

    // start_info.
    let si = mem.frame(map.mfn(layout.start_info.pfn));
    let u64_at = |o: usize| u64::from_le_bytes(si[o..o + 8].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(si[o..o + 4].try_into().unwrap());
    assert_eq!(&si[..15], b"xen-3.0-x86_64\0");
    assert_eq!(u64_at(32), map.nr_pages());
    assert_eq!(u64_at(40), cfg.shared_info_mfn << PAGE_SHIFT);
    assert_eq!(u64_at(56), map.mfn(layout.xenstore.pfn));
    assert_eq!(u32_at(64), cfg.store_evtchn);
    assert_eq!(u64_at(72), map.mfn(layout.console.pfn));
    assert_eq!(u32_at(80), cfg.console_evtchn);
    assert_eq!(u64_at(88), layout.page_tables.va.unwrap());
    assert_eq!(translate(mem, l4, u64_at(88)).unwrap().mfn, l4, "pt_base maps the L4");
    assert_eq!(u64_at(96), layout.page_tables.pages);
    let c = cfg.cmdline.as_bytes();
    assert_eq!(&si[128..128 + c.len().min(1023)], &c[..c.len().min(1023)]);
    assert_eq!(si[128 + c.len().min(1023)], 0);

    // The P2M, read through mfn_list: every PFN's MFN.
    let mfn_list = u64_at(104);
    let nr = map.nr_pages();
    for pfn in (0..nr).step_by(97).chain([nr - 1]) {
        let va = mfn_list + pfn * 8;
        let t = translate(mem, l4, va).unwrap_or_else(|e| panic!("p2m entry {pfn:#x} at {va:#x}: {e:?}"));
        assert_eq!(mem.read_u64(t.mfn, ((va % PAGE_SIZE) / 8) as usize), map.mfn(pfn), "p2m[{pfn:#x}]");
    }
    if let Some(base) = p.init_p2m {
        assert_eq!(mfn_list, base);
        assert_eq!((u64_at(1152), u64_at(1160)), (layout.p2m.pfn, layout.p2m.pages));
    }

    // The initrd: where start_info says, with its bytes.
    if let (Some(r), Some(data)) = (layout.initrd, cfg.initrd) {
        let flags = u32_at(48);
        let first_mfn = if flags & SIF_MOD_START_PFN != 0 {
            assert_eq!(u64_at(112), r.pfn);
            assert!(r.pfn >= (layout.virt_pgtab_end - p.virt_base) >> PAGE_SHIFT);
            map.mfn(r.pfn)
        } else {
            assert_eq!(u64_at(112), r.va.unwrap());
            translate(mem, l4, r.va.unwrap()).unwrap().mfn
        };
        assert!(u64_at(120) >= data.len() as u64);
        let n = data.len().min(PAGE_SIZE as usize);
        assert_eq!(&mem.frame(first_mfn)[..n], &data[..n], "initrd bytes");
    }
}

/// A `Platform` over [`VecMemory`], for host tests of the PV core: guest
/// virtual accesses walk the current page tables (honouring read-only
/// mappings), MSRs and the GS swap are plain fields, time is set by the test,
/// and `exit` panics with the reason.
pub struct MockPlatform {
    pub mem: VecMemory,
    pub cr3: u64,
    pub msrs: alloc::collections::BTreeMap<u32, u64>,
    pub gs_swaps: u64,
    pub flushes: u64,
    pub now: u64,
    pub timer: Option<u64>,
    pub console_out: Vec<u8>,
    pub console_in: alloc::collections::VecDeque<u8>,
    pub cr0_ts: bool,
    pub cr4_fsgsbase: bool,
    pub cr2: u64,
    /// The CPU's debug registers as Cocoon loaded them (DR6 as a #DB left it).
    pub debugregs: [u64; 8],
    pub xcr0: u64,
    /// A Xen underneath: `Some(rc)` answers every hypercall with rc.
    pub xen: Option<i64>,
    /// Every hypercall passed to the Xen underneath.
    pub xen_calls: Vec<(u64, [u64; 5])>,
    /// XENMEM_add_to_physmap requests: (space, idx, gpfn).
    pub physmap_adds: Vec<(u32, u64, u64)>,
    /// Ports Cocoon itself (not a forwarded guest call) sent an event on.
    pub cocoon_sends: Vec<u32>,
    /// CPUID answers by (leaf, subleaf), before the defaults below.
    pub cpuid_leaves: alloc::collections::BTreeMap<(u32, u32), [u32; 4]>,
    /// vCPUs whose CPU was asked to make a hypercall (`xen_hypercall_on`).
    pub remote_xen_calls: Vec<u32>,
    /// vCPUs kicked (`Platform::kick`), in order.
    pub kicks: Vec<u32>,
    /// TLB flush requests: (vCPU mask, one page or all).
    pub tlb_flushes: Vec<(u64, Option<u64>)>,
    /// vCPUs started (`Platform::start_vcpu`).
    pub started: Vec<u32>,
    /// An NMI latched while Cocoon ran (`take_nmi`).
    pub nmi: bool,
    /// vCPUs given an NMI (`send_nmi`).
    pub nmis_sent: Vec<u32>,
    /// What `host_suspend` answers.
    pub suspend: Result<crate::platform::HostSuspend, i64>,
    /// GFNs Cocoon gave back to Xen (XENMEM_decrease_reservation on its own
    /// domain), in order; reading or writing one of them panics until Xen
    /// populates it again.
    pub xen_decreased: Vec<u64>,
    /// GFNs Xen populated for Cocoon (XENMEM_populate_physmap on its own domain).
    pub xen_populated: Vec<u64>,
    /// Xen has no memory to populate with (answers 0 extents).
    pub xen_out_of_memory: bool,
    pub unpopulated: alloc::collections::BTreeSet<u64>,
}

impl MockPlatform {
    pub fn new(mem: VecMemory) -> Self {
        MockPlatform {
            mem,
            cr3: 0,
            msrs: Default::default(),
            gs_swaps: 0,
            flushes: 0,
            now: 1_000_000,
            timer: None,
            console_out: Vec::new(),
            console_in: Default::default(),
            cr0_ts: false,
            cr4_fsgsbase: false,
            debugregs: [0, 0, 0, 0, 0, 0, X86_DR6_DEFAULT, X86_DR7_DEFAULT],
            cr2: 0,
            xcr0: 1,
            xen: None,
            xen_calls: Vec::new(),
            physmap_adds: Vec::new(),
            cocoon_sends: Vec::new(),
            cpuid_leaves: Default::default(),
            kicks: Vec::new(),
            remote_xen_calls: Vec::new(),
            tlb_flushes: Vec::new(),
            started: Vec::new(),
            nmi: false,
            nmis_sent: Vec::new(),
            suspend: Err(-XEN_ENOSYS),
            xen_decreased: Vec::new(),
            xen_populated: Vec::new(),
            xen_out_of_memory: false,
            unpopulated: Default::default(),
        }
    }

    /// Cocoon touches frame `mfn`: it must be populated.
    fn touch(&self, mfn: u64) {
        assert!(!self.unpopulated.contains(&mfn), "Cocoon touched GFN {mfn:#x}, which it gave back to Xen");
    }

    /// A fake XENMEM_decrease_reservation / XENMEM_populate_physmap of
    /// Cocoon's own domain (order 0, Cocoon's on-stack list).
    fn xen_reservation(&mut self, op: u64, arg: u64) -> i64 {
        // SAFETY: Cocoon passes a pointer to its own `xen_memory_reservation`,
        // alive for the call, whose list is its own array of `nr_extents` GFNs.
        let (r, gfns) = unsafe {
            let r = core::ptr::read_unaligned(arg as *const XenMemoryReservation);
            (r, core::slice::from_raw_parts(r.extent_start as *const u64, r.nr_extents as usize).to_vec())
        };
        assert_eq!((r.domid, r.extent_order), (DOMID_SELF, 0));
        if op == XENMEM_decrease_reservation {
            for &g in &gfns {
                assert!(self.unpopulated.insert(g), "GFN {g:#x} given back twice");
            }
            self.xen_decreased.extend_from_slice(&gfns);
            return gfns.len() as i64;
        }
        if self.xen_out_of_memory {
            return 0;
        }
        for &g in &gfns {
            assert!(self.unpopulated.remove(&g), "GFN {g:#x} populated while populated");
            self.mem.frame_mut(g).fill(0);
        }
        self.xen_populated.extend_from_slice(&gfns);
        gfns.len() as i64
    }

    fn walk(&mut self, va: u64, write: bool) -> Result<(u64, usize), crate::platform::Fault> {
        let t = crate::mm::walk::translate(&self.mem, self.cr3, va).map_err(|_| crate::platform::Fault)?;
        if write && !t.writable {
            return Err(crate::platform::Fault);
        }
        self.touch(t.mfn);
        Ok((t.mfn, (va & 0xfff) as usize))
    }
}

impl GuestMemory for MockPlatform {
    fn frame(&self, mfn: u64) -> &Frame {
        self.touch(mfn);
        self.mem.frame(mfn)
    }
    fn frame_mut(&mut self, mfn: u64) -> &mut Frame {
        self.touch(mfn);
        self.mem.frame_mut(mfn)
    }
}

impl crate::platform::Platform for MockPlatform {
    fn copy_from_guest(&mut self, va: u64, buf: &mut [u8]) -> Result<(), crate::platform::Fault> {
        for (i, b) in buf.iter_mut().enumerate() {
            let (mfn, off) = self.walk(va + i as u64, false)?;
            *b = self.mem.frame(mfn)[off];
        }
        Ok(())
    }
    fn copy_to_guest(&mut self, va: u64, buf: &[u8]) -> Result<(), crate::platform::Fault> {
        for (i, b) in buf.iter().enumerate() {
            let (mfn, off) = self.walk(va + i as u64, true)?;
            self.mem.frame_mut(mfn)[off] = *b;
        }
        Ok(())
    }
    fn load_cr3(&mut self, l4_mfn: u64) {
        self.cr3 = l4_mfn;
        self.flushes += 1;
    }
    fn flush_tlb(&mut self) {
        self.flushes += 1;
    }
    fn invlpg(&mut self, _va: u64) {}
    fn rdmsr(&mut self, msr: u32) -> u64 {
        self.msrs.get(&msr).copied().unwrap_or(0)
    }
    fn wrmsr(&mut self, msr: u32, value: u64) {
        self.msrs.insert(msr, value);
    }
    fn swapgs(&mut self) {
        self.gs_swaps += 1;
        let a = self.rdmsr(0xc000_0101);
        let b = self.rdmsr(0xc000_0102);
        self.wrmsr(0xc000_0101, b);
        self.wrmsr(0xc000_0102, a);
    }
    fn load_user_gs_selector(&mut self, _sel: u16) {}
    fn set_cr0_ts(&mut self, ts: bool) {
        self.cr0_ts = ts;
    }
    fn read_cr2(&self) -> u64 {
        self.cr2
    }
    fn read_cr0(&self) -> u64 {
        0x8005_0033 | if self.cr0_ts { 8 } else { 0 }
    }
    fn read_cr4(&self) -> u64 {
        // PAE, OSFXSR, OSXMMEXCPT, PGE, OSXSAVE as Cocoon runs.
        0x4_06a0 | if self.cr4_fsgsbase { X86_CR4_FSGSBASE } else { 0 }
    }
    fn set_cr4_fsgsbase(&mut self, on: bool) {
        self.cr4_fsgsbase = on;
    }
    fn write_debugreg(&mut self, reg: u8, value: u64) {
        self.debugregs[reg as usize & 7] = value;
    }
    fn take_dr6(&mut self) -> u64 {
        core::mem::replace(&mut self.debugregs[6], X86_DR6_DEFAULT)
    }
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        if let Some(r) = self.cpuid_leaves.get(&(leaf, subleaf)) {
            return *r;
        }
        match leaf {
            1 => [0x806f8, 0x0800, 0xffff_ffff, 0xffff_ffff],
            _ => [0x11, 0x22, 0x33, 0x44],
        }
    }
    fn xcr0_supported(&self) -> u64 {
        0b111
    }
    fn xsetbv(&mut self, _index: u32, value: u64) {
        self.xcr0 = value;
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn rdtsc(&self) -> u64 {
        self.now * 2
    }
    fn tsc_scale(&self) -> (u32, i8) {
        (0x8000_0000, 0)
    }
    fn boot_wallclock(&self) -> u64 {
        1_700_000_000
    }
    fn set_timer(&mut self, deadline_ns: Option<u64>) {
        self.timer = deadline_ns;
    }
    fn wait_for_interrupt(&mut self) {
        // Time passes until the armed timer.
        if let Some(t) = self.timer {
            self.now = self.now.max(t);
        }
    }
    fn console_write(&mut self, bytes: &[u8]) {
        self.console_out.extend_from_slice(bytes);
    }
    fn console_read(&mut self) -> Option<u8> {
        self.console_in.pop_front()
    }
    fn exit(&mut self, reason: crate::platform::ExitReason) -> ! {
        panic!("platform exit: {reason:?}")
    }

    fn xen_hypercall(&mut self, nr: u64, args: [u64; 5]) -> Option<i64> {
        let rc = self.xen?;
        self.xen_calls.push((nr, args));
        if nr == crate::abi::__HYPERVISOR_memory_op && args[0] == crate::abi::XENMEM_add_to_physmap {
            // SAFETY: Cocoon passes a pointer to its own `xen_add_to_physmap` (24 bytes:
            // domid, size, space, idx, gpfn), alive for the call.
            let raw = unsafe { core::ptr::read_unaligned(args[1] as *const [u64; 3]) };
            self.physmap_adds.push(((raw[0] >> 32) as u32, raw[1], raw[2]));
        }
        let guest_pointer = crate::mm::walk::translate(&self.mem, self.cr3, args[1]).is_ok();
        if nr == crate::abi::__HYPERVISOR_memory_op
            && matches!(args[0], XENMEM_decrease_reservation | XENMEM_populate_physmap)
            && !guest_pointer
        {
            return Some(self.xen_reservation(args[0], args[1]));
        }
        if nr == crate::abi::__HYPERVISOR_event_channel_op && args[0] == crate::abi::EVTCHNOP_send && !guest_pointer {
            // SAFETY: not a guest address, so Cocoon's own `evtchn_send`, alive for the call.
            self.cocoon_sends.push(unsafe { core::ptr::read_unaligned(args[1] as *const u32) });
        }
        Some(rc)
    }

    fn host_events_polled(&self) -> bool {
        false
    }

    fn take_nmi(&mut self) -> bool {
        core::mem::take(&mut self.nmi)
    }

    fn send_nmi(&mut self, vcpu: u32) {
        self.nmis_sent.push(vcpu);
    }

    fn host_suspend(&mut self) -> Result<crate::platform::HostSuspend, i64> {
        self.suspend
    }

    fn xen_hypercall_on(&mut self, vcpu: u32, nr: u64, args: [u64; 5]) -> Option<i64> {
        self.remote_xen_calls.push(vcpu);
        self.xen_hypercall(nr, args)
    }

    fn kick(&mut self, vcpu: u32) {
        self.kicks.push(vcpu);
    }

    fn flush_tlb_mask(&mut self, mask: u64, va: Option<u64>) {
        if va.is_none() {
            self.flushes += 1;
        }
        self.tlb_flushes.push((mask, va));
    }

    fn start_vcpu(&mut self, vcpu: u32) {
        self.started.push(vcpu);
    }
}
