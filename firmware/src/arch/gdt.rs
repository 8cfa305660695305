//! Cocoon's GDT and TSS.
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

const GDT_ENTRIES: usize = FIRST_RESERVED_GDT_ENTRY + 16;

/// Interrupt-stack-table slots.
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;
const IST_STACK_SIZE: usize = 16 * 1024;

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

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

#[repr(C, align(16))]
struct IstStacks([[u8; IST_STACK_SIZE]; 3]);

/// Kernel-stack for entries from ring 3 (guest), used as TSS.RSP0.
#[repr(C, align(16))]
struct Stack([u8; 64 * 1024]);

static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
static mut TSS: Tss = Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: size_of::<Tss>() as u16,
};
static mut IST_STACKS: IstStacks = IstStacks([[0; IST_STACK_SIZE]; 3]);
static mut RING0_STACK: Stack = Stack([0; 64 * 1024]);

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

/// Load the GDT, reload segments and the task register.
pub fn init() {
    // SAFETY: runs once on the boot CPU before anything else uses GDT or TSS.
    unsafe {
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        let ist = &*core::ptr::addr_of!(IST_STACKS);
        for (i, slot) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK].iter().enumerate() {
            tss.ist[*slot as usize - 1] = ist.0[i].as_ptr() as u64 + IST_STACK_SIZE as u64;
        }
        let r0 = &*core::ptr::addr_of!(RING0_STACK);
        tss.rsp[0] = r0.0.as_ptr() as u64 + r0.0.len() as u64;
        *core::ptr::addr_of_mut!(super::trap_entry::RING0_STACK_TOP) = tss.rsp[0];

        let base = FIRST_RESERVED_GDT_ENTRY;
        gdt.0[base + 1] = seg(true, 0, true);
        gdt.0[base + 2] = seg(false, 0, false);
        gdt.0[base + 4] = seg(true, 3, false); // 0xe023 ring-3 compat code
        gdt.0[base + 5] = seg(false, 3, false); // 0xe02b ring-3 data
        gdt.0[base + 6] = seg(true, 3, true); // 0xe033 ring-3 64-bit code
        let tss_addr = tss as *const Tss as u64;
        let limit = (size_of::<Tss>() - 1) as u64;
        gdt.0[base + 8] = limit | ((tss_addr & 0xff_ffff) << 16) | (0x89 << 40) | (((tss_addr >> 24) & 0xff) << 56);
        gdt.0[base + 9] = tss_addr >> 32;

        let ptr = x86_64::structures::DescriptorTablePointer {
            limit: (GDT_ENTRIES * 8 - 1) as u16,
            base: x86_64::VirtAddr::new(gdt.0.as_ptr() as u64),
        };
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

/// The part of the GDT that holds the guest's descriptors (entries 0..7168).
///
/// # Safety
/// Call once; the caller becomes the only user of these entries.
pub unsafe fn guest_part() -> &'static mut [u64] {
    // SAFETY: per the contract, nobody else holds a reference to these entries;
    // Cocoon's own descriptors live above FIRST_RESERVED_GDT_ENTRY.
    unsafe {
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        &mut gdt.0[..FIRST_RESERVED_GDT_ENTRY]
    }
}
