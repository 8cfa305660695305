//! The layout of Cocoon's GDT and TSS (one pair per CPU: `percpu.rs`).
//!
//! The selectors are Xen's: Cocoon's own descriptors sit in the two GDT pages
//! the PV ABI reserves for the hypervisor (entries 7168 onwards), so the
//! guest's frames can later fill entries 0..7168 without moving ours, and
//! `FLAT_RING3_*` (0xe023/0xe02b/0xe033) mean what a PV guest expects.

use core::mem::size_of;

use shim_core::abi::FIRST_RESERVED_GDT_ENTRY;

/// Ring-0 code and data (Xen's `__HYPERVISOR_CS`/`__HYPERVISOR_DS`).
pub const HYPERVISOR_CS: u16 = ((FIRST_RESERVED_GDT_ENTRY + 1) << 3) as u16;
pub const HYPERVISOR_DS: u16 = ((FIRST_RESERVED_GDT_ENTRY + 2) << 3) as u16;
/// The TSS (two entries), as Xen's `TSS_SELECTOR`.
pub const TSS_SELECTOR: u16 = ((FIRST_RESERVED_GDT_ENTRY + 8) << 3) as u16;
const _: () = assert!(HYPERVISOR_CS == 0xe008 && HYPERVISOR_DS == 0xe010 && TSS_SELECTOR == 0xe040);

pub const GDT_ENTRIES: usize = FIRST_RESERVED_GDT_ENTRY + 16;

/// Interrupt-stack-table slots.
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;
/// #DB: a guest can arm data breakpoints, and one hit by `mov ss, [x]` just
/// before SYSCALL is delivered at Cocoon's SYSCALL entry, in ring 0, with the
/// guest's RSP still loaded (CVE-2018-8897, Xen's XSA-260): without a stack
/// of its own the CPU would push the frame wherever the guest pointed RSP.
pub const IST_DEBUG: u8 = 4;
pub const IST_STACK_SIZE: usize = 16 * 1024;
/// #DB's stack: the entry stub moves a #DB from the guest off it at once, so
/// it only ever holds one from Cocoon, which touches no guest memory.
pub const IST_DEBUG_STACK_SIZE: usize = 8 * 1024;

/// Hardware TSS (64-bit), 104 bytes.
#[repr(C, packed(4))]
pub struct Tss {
    _reserved0: u32,
    pub rsp: [u64; 3],
    _reserved1: u64,
    pub ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    pub iomap_base: u16,
}
const _: () = assert!(size_of::<Tss>() == 104);

/// One CPU's GDT and TSS, together (the GDT is 14 pages plus Cocoon's part,
/// the TSS fits in the rest of its last page).
#[repr(C, align(4096))]
pub struct CpuTables {
    gdt: [u64; GDT_ENTRIES],
    tss: Tss,
}

impl CpuTables {
    /// Cocoon's descriptors and the TSS: `rsp0` for entries from the guest,
    /// `ist` the tops of the IST stacks, in the order of the `IST_*` slots.
    pub fn fill(&mut self, rsp0: u64, ist: [u64; 4]) {
        let tss = &mut self.tss;
        tss.iomap_base = size_of::<Tss>() as u16;
        for (i, slot) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK, IST_DEBUG].iter().enumerate() {
            tss.ist[*slot as usize - 1] = ist[i];
        }
        tss.rsp[0] = rsp0;
        let tss_addr = tss as *const Tss as u64;

        let gdt = &mut self.gdt;
        let base = FIRST_RESERVED_GDT_ENTRY;
        gdt[base + 1] = seg(true, 0, true);
        gdt[base + 2] = seg(false, 0, false);
        gdt[base + 4] = seg(true, 3, false); // 0xe023 ring-3 compat code
        gdt[base + 5] = seg(false, 3, false); // 0xe02b ring-3 data
        gdt[base + 6] = seg(true, 3, true); // 0xe033 ring-3 64-bit code
        let limit = (size_of::<Tss>() - 1) as u64;
        gdt[base + 8] = limit | ((tss_addr & 0xff_ffff) << 16) | (0x89 << 40) | (((tss_addr >> 24) & 0xff) << 56);
        gdt[base + 9] = tss_addr >> 32;
    }

    /// The part of the GDT that holds the guest's descriptors (entries 0..7168).
    pub fn guest_part(&mut self) -> &mut [u64] {
        &mut self.gdt[..FIRST_RESERVED_GDT_ENTRY]
    }

    /// Load this GDT on the calling CPU, reload the segments and the task register.
    ///
    /// # Safety
    /// `fill` has run; the tables stay in place for as long as the CPU runs,
    /// and no other CPU loads them (the TSS descriptor becomes busy).
    pub unsafe fn load(&'static self) {
        let ptr = x86_64::structures::DescriptorTablePointer {
            limit: (GDT_ENTRIES * 8 - 1) as u16,
            base: x86_64::VirtAddr::new(self.gdt.as_ptr() as u64),
        };
        // SAFETY: per the contract the GDT holds Cocoon's descriptors and an
        // available TSS; the far return reloads CS with the same flat code.
        unsafe {
            x86_64::instructions::tables::lgdt(&ptr);
            core::arch::asm!(
                "push {cs}",
                "lea {tmp}, [rip + 2f]",
                "push {tmp}",
                "retfq",
                "2:",
                "mov ds, {ds:e}",
                "mov es, {ds:e}",
                "mov ss, {ds:e}",
                "ltr {tss:x}",
                cs = in(reg) HYPERVISOR_CS as u64,
                ds = in(reg) HYPERVISOR_DS as u32,
                tss = in(reg) TSS_SELECTOR,
                tmp = out(reg) _,
            );
        }
    }
}

const fn seg(code: bool, dpl: u64, long: bool) -> u64 {
    // limit 0xfffff, G, P, S, accessed; code: readable; data: writable.
    let mut d: u64 = 0x000f_0000_0000_ffff | (1 << 55) | (1 << 47) | (1 << 44) | (1 << 40) | (dpl << 45);
    if code {
        d |= (1 << 43) | (1 << 41);
        if long {
            d |= 1 << 53;
        } else {
            d |= 1 << 54;
        }
    } else {
        d |= (1 << 41) | (1 << 54);
    }
    d
}
