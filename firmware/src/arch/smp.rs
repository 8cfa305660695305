//! Starting the application processors (INIT–SIPI–SIPI), and IPIs.
//!
//! An AP starts in real mode at a page below 1 MiB: the trampoline below,
//! copied to a RAM page the memory map shows there ([`choose_trampoline_page`]).
//! It goes to 32-bit protected mode, then to long mode on the boot CPU's page
//! tables (Cocoon's boot tables: identity and direct map of the first 4 GiB,
//! and the direct map above, which shares the boot L3), and calls
//! [`cocoon_ap_entry`] on the AP's own ring-0 stack, prepared by
//! `percpu::prepare_ap`. The APs are started one after the other, each with
//! a bounded wait: the trampoline's data (stack, CPU number) is the current
//! AP's until it reports in.
//!
//! The page: Cocoon never gives RAM below 1 MiB to the guest (`memory.rs`),
//! so the trampoline cannot collide with guest memory. Its previous contents
//! (whatever the firmware or boot loader left there, read and parsed before)
//! are saved and put back once every AP has reported in or been given up on;
//! an AP given up on is sent INIT again, so it waits for a SIPI and never
//! runs from the page afterwards. The page is free for any use after
//! [`start_aps`] returns.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use hvm_glue::bootinfo::{BootInfo, MemKind};
use hvm_glue::layout::phys_to_virt;
use shim_core::regs::GuestRegs;

use super::apic::{self, ICR_ALL_BUT_SELF, ICR_FIXED, ICR_INIT, ICR_LEVEL_ASSERT, ICR_STARTUP, ICR_TRIGGER_LEVEL};
use super::percpu::{self, MAX_CPUS};
use super::timer;

/// The vector of cross-CPU requests (see `CpuInfo::mailbox`). Distinct from
/// TIMER_VECTOR (0xf0), xen::UPCALL_VECTOR (0xf3) and SPURIOUS_VECTOR (0xff).
pub const IPI_VECTOR: u8 = 0xf1;
const _: () = assert!(IPI_VECTOR != timer::TIMER_VECTOR && IPI_VECTOR != timer::SPURIOUS_VECTOR);
const _: () = assert!(IPI_VECTOR != crate::xen::UPCALL_VECTOR);

/// Mailbox bit of the bring-up check ([`ping_aps`]); the other bits are `run.rs`'s.
pub const MAILBOX_PING: u32 = 1 << 31;

const PAGE: u64 = 4096;
/// A SIPI vector is a page number below 1 MiB; 0xa0..0xbf are reserved
/// (Intel SDM 10.6.1), and the legacy VGA/BIOS area lies there anyway.
const SIPI_PAGE_LIMIT: u64 = 0x9f000;

/// INIT–SIPI–SIPI timing (Intel SDM 8.4.4.1, MP initialization example).
const INIT_DELAY_NS: u64 = 10_000_000;
const SIPI_DELAY_NS: u64 = 200_000;
/// How long an AP has to report in after its second SIPI.
const AP_TIMEOUT_NS: u64 = 1_000_000_000;

/// Layout of the trampoline page: code from offset 0, data from `TD`.
const TD: usize = 0xe00;
const TD_GDT: usize = TD; // 4 descriptors
const TD_GDTR: usize = TD + 0x20; // u16 limit, u32 base
const TD_PM32: usize = TD + 0x28; // far pointer: u32 offset, u16 selector
const TD_LM64: usize = TD + 0x30; // far pointer: u32 offset, u16 selector
const TD_CR3: usize = TD + 0x38; // u32
const TD_STACK: usize = TD + 0x40; // u64
const TD_CPU: usize = TD + 0x48; // u32
const TD_ENTRY: usize = TD + 0x50; // u64
const TD_END: usize = TD + 0x58;
const _: () = assert!(TD_END <= PAGE as usize);

/// The trampoline's GDT: null, 32-bit code (0x08), data (0x10), 64-bit code (0x18), as boot.rs's.
const TRAMP_GDT: [u64; 4] = [0, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0x00af_9a00_0000_ffff];
const TRAMP_CS32: u16 = 0x08;
const TRAMP_CS64: u16 = 0x18;

// The trampoline, position-independent: assembled here, copied to the page and
// run from there (never from .rodata). Real mode with CS = the page's segment,
// so data is addressed at DS:offset; EBX then holds the page's physical address.
core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .global cocoon_ap_tramp_start
    .global cocoon_ap_tramp_pm32
    .global cocoon_ap_tramp_lm64
    .global cocoon_ap_tramp_end
    .code16
cocoon_ap_tramp_start:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    movzwl %ax, %ebx
    shll $4, %ebx
    lgdtl {gdtr}
    movl %cr0, %eax
    orl $1, %eax                    /* PE */
    movl %eax, %cr0
    ljmpl *{pm32}

    .code32
cocoon_ap_tramp_pm32:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl {cr3}(%ebx), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx          /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    andl $0x9fffffff, %eax          /* caches on: CD and NW clear (INIT sets them) */
    orl $0x80010001, %eax           /* PG | WP | PE */
    movl %eax, %cr0
    ljmpl *{lm64}(%ebx)

    .code64
cocoon_ap_tramp_lm64:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    movl %ebx, %ebx
    movq {stack}(%rbx), %rsp
    movl {cpu}(%rbx), %edi
    movq {entry}(%rbx), %rax
    callq *%rax
    ud2
cocoon_ap_tramp_end:
    .text
    "#,
    gdtr = const TD_GDTR,
    pm32 = const TD_PM32,
    lm64 = const TD_LM64,
    cr3 = const TD_CR3,
    stack = const TD_STACK,
    cpu = const TD_CPU,
    entry = const TD_ENTRY,
    options(att_syntax)
);

extern "C" {
    static cocoon_ap_tramp_start: u8;
    static cocoon_ap_tramp_pm32: u8;
    static cocoon_ap_tramp_lm64: u8;
    static cocoon_ap_tramp_end: u8;
}

/// Physical address of the trampoline page (0: none found).
static TRAMPOLINE_PA: AtomicU64 = AtomicU64::new(0);
/// The caller's entry for APs.
static ENTRY: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
/// The AP being started (its CPU number) until it reports in (`REPORTED`) or
/// the boot CPU gives up (`GAVE_UP`): whichever comes first wins.
static STARTING: AtomicU32 = AtomicU32::new(IDLE);
const IDLE: u32 = u32::MAX;
const REPORTED: u32 = u32::MAX - 1;
const GAVE_UP: u32 = u32::MAX - 2;
/// APs that answered [`ping_aps`].
static PINGS: AtomicU32 = AtomicU32::new(0);

/// Pick the RAM page below 1 MiB the APs start from: the highest one under
/// the legacy areas that no boot module covers (page 0, the real-mode IVT, never).
pub fn choose_trampoline_page(boot: &BootInfo) -> Option<u64> {
    let in_module = |pa: u64| boot.modules.iter().any(|m| pa < m.start + m.len && m.start < pa + PAGE);
    let page = boot
        .memory
        .iter()
        .filter(|r| r.kind == MemKind::Ram)
        .filter_map(|r| {
            let end = (r.base + r.len).min(SIPI_PAGE_LIMIT) & !(PAGE - 1);
            let start = r.base.max(PAGE).next_multiple_of(PAGE);
            (start / PAGE..end / PAGE).rev().map(|f| f * PAGE).find(|&pa| !in_module(pa))
        })
        .max()?;
    TRAMPOLINE_PA.store(page, Ordering::Relaxed);
    Some(page)
}

fn wait_ns(ns: u64) {
    let t0 = timer::now_ns();
    while timer::now_ns().wrapping_sub(t0) < ns {
        core::hint::spin_loop();
    }
}

fn poke<T: Copy>(page: *mut u8, off: usize, v: T) {
    assert!(off + size_of::<T>() <= PAGE as usize);
    // SAFETY: `page` is the trampoline page (4 KiB, direct map), `off` inside it.
    unsafe { (page.add(off) as *mut T).write_unaligned(v) }
}

use core::mem::size_of;

/// Start every CPU in `apic_ids` but the calling (boot) CPU: INIT–SIPI–SIPI
/// each in turn, with a bounded wait. Each AP sets itself up (GDT, TSS, IDT,
/// SYSCALL, local APIC) on its own ring-0 stack and calls `entry(cpu)` there.
/// An AP that does not report in is logged and left out. Returns how many
/// CPUs are online, the boot CPU included. Call once, before the guest's
/// memory is built, on the boot page tables, with the heap and timer up.
pub fn start_aps(apic_ids: &[u32], entry: extern "C" fn(cpu: u32) -> !) -> usize {
    let me = percpu::cpu_apic_id(0);
    let others: Vec<u32> = apic_ids.iter().copied().filter(|&id| id != me).collect();
    if others.is_empty() {
        return percpu::nr_online();
    }
    let pa = TRAMPOLINE_PA.load(Ordering::Relaxed);
    if pa == 0 {
        log::warn!("smp: no free page below 1 MiB for the AP trampoline; running on the boot CPU only");
        return percpu::nr_online();
    }
    let cr3 = x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64();
    assert!(cr3 < 1 << 32, "the boot page tables lie below 4 GiB");
    ENTRY.store(entry as *mut (), Ordering::Release);

    // SAFETY: only the addresses of the trampoline's labels are taken.
    let (start, pm32, lm64, end) = unsafe {
        (
            &cocoon_ap_tramp_start as *const u8 as usize,
            &cocoon_ap_tramp_pm32 as *const u8 as usize,
            &cocoon_ap_tramp_lm64 as *const u8 as usize,
            &cocoon_ap_tramp_end as *const u8 as usize,
        )
    };
    assert!(end - start <= TD, "the trampoline's code overlaps its data");
    let page = phys_to_virt(pa) as *mut u8;
    let mut saved = alloc::vec![0u8; PAGE as usize];
    // SAFETY: the page is RAM below 1 MiB in the direct map, which nothing of
    // Cocoon's uses (see the module documentation); the blob is `end - start` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(page, saved.as_mut_ptr(), PAGE as usize);
        core::ptr::copy_nonoverlapping(start as *const u8, page, end - start);
    }
    for (i, d) in TRAMP_GDT.iter().enumerate() {
        poke(page, TD_GDT + 8 * i, *d);
    }
    poke(page, TD_GDTR, (TRAMP_GDT.len() * 8 - 1) as u16);
    poke(page, TD_GDTR + 2, (pa as usize + TD_GDT) as u32);
    poke(page, TD_PM32, (pa as usize + pm32 - start) as u32);
    poke(page, TD_PM32 + 4, TRAMP_CS32);
    poke(page, TD_LM64, (pa as usize + lm64 - start) as u32);
    poke(page, TD_LM64 + 4, TRAMP_CS64);
    poke(page, TD_CR3, cr3 as u32);
    poke(page, TD_ENTRY, cocoon_ap_entry as *const () as u64);
    let vector = (pa / PAGE) as u32;

    for &apic_id in &others {
        let n = percpu::nr_online();
        if n >= MAX_CPUS {
            log::warn!("smp: Cocoon runs on at most {MAX_CPUS} CPUs; the others stay off");
            break;
        }
        let Some(info) = percpu::prepare_ap(n, apic_id) else {
            log::warn!("smp: no memory for CPU {n}'s stacks and tables; the remaining CPUs stay off");
            break;
        };
        // The AP's first Rust frame starts below the guest frame's place (see
        // `cocoon_enter_guest`), so a `GuestRegs` it builds never lies there.
        poke(page, TD_STACK, info.ring0_top - size_of::<GuestRegs>() as u64);
        poke(page, TD_CPU, n as u32);
        STARTING.store(n as u32, Ordering::SeqCst);

        apic::send_ipi_raw(apic_id, ICR_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL);
        apic::send_ipi_raw(apic_id, ICR_INIT | ICR_TRIGGER_LEVEL);
        wait_ns(INIT_DELAY_NS);
        for _ in 0..2 {
            if STARTING.load(Ordering::Acquire) == REPORTED {
                break;
            }
            apic::send_ipi_raw(apic_id, ICR_STARTUP | vector);
            wait_ns(SIPI_DELAY_NS);
        }
        let t0 = timer::now_ns();
        while STARTING.load(Ordering::Acquire) != REPORTED && timer::now_ns().wrapping_sub(t0) < AP_TIMEOUT_NS {
            core::hint::spin_loop();
        }
        if STARTING.compare_exchange(n as u32, GAVE_UP, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            log::warn!(
                "smp: the CPU with APIC id {apic_id} did not come up within {} ms; going on without it",
                AP_TIMEOUT_NS / 1_000_000
            );
            // Back to wait-for-SIPI: it must not run from the page once it is restored.
            apic::send_ipi_raw(apic_id, ICR_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL);
            apic::send_ipi_raw(apic_id, ICR_INIT | ICR_TRIGGER_LEVEL);
        }
        STARTING.store(IDLE, Ordering::SeqCst);
    }
    // SAFETY: as above; no AP runs from the page any more.
    unsafe { core::ptr::copy_nonoverlapping(saved.as_ptr(), page, PAGE as usize) };
    percpu::nr_online()
}

/// Where the trampoline lands an AP, on its own ring-0 stack.
extern "C" fn cocoon_ap_entry(cpu: u32) -> ! {
    let n = cpu as usize;
    percpu::init_this_ap(n);
    super::idt::load();
    let _ = super::cpu::init_for_guests(); // as the boot CPU (the same CPUID)
    apic::enable_on_this_cpu();
    timer::init_local_apic();
    if STARTING.compare_exchange(cpu, REPORTED, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // Too late: the boot CPU has given up on this CPU and is about to INIT it.
        super::halt_forever();
    }
    percpu::mark_online(n);
    let entry = ENTRY.load(Ordering::Acquire);
    // SAFETY: `start_aps` stored an `extern "C" fn(u32) -> !` here before any AP started.
    let entry: extern "C" fn(u32) -> ! = unsafe { core::mem::transmute(entry) };
    entry(cpu)
}

/// Send `vector` to CPU `cpu` (fixed delivery to its APIC id).
pub fn send_ipi(cpu: usize, vector: u8) {
    apic::send_ipi_raw(percpu::cpu_apic_id(cpu), ICR_FIXED | ICR_LEVEL_ASSERT | vector as u32);
}

/// Send `vector` to every CPU but the calling one.
pub fn send_ipi_all_but_self(vector: u8) {
    apic::send_ipi_raw(0, ICR_ALL_BUT_SELF | ICR_FIXED | ICR_LEVEL_ASSERT | vector as u32);
}

/// Answer the bring-up check if `mailbox` (bits taken from a CPU's mailbox)
/// carries it; returns the other bits.
pub fn answer_ping(mailbox: u32) -> u32 {
    if mailbox & MAILBOX_PING != 0 {
        PINGS.fetch_add(1, Ordering::AcqRel);
    }
    mailbox & !MAILBOX_PING
}

/// The bring-up check: an IPI to every online AP, once addressed to each
/// (`send_ipi`) and once by shorthand (`send_ipi_all_but_self`), each answered
/// through its mailbox. Returns how many APs answered both (bounded waits).
pub fn ping_aps() -> usize {
    let n = percpu::nr_online();
    let round = |all_but_self: bool| {
        let before = PINGS.load(Ordering::Acquire) as usize;
        for cpu in 1..n {
            percpu::cpu(cpu).expect("online CPU").mailbox.fetch_or(MAILBOX_PING, Ordering::AcqRel);
            if !all_but_self {
                send_ipi(cpu, IPI_VECTOR);
            }
        }
        if all_but_self {
            send_ipi_all_but_self(IPI_VECTOR);
        }
        let t0 = timer::now_ns();
        while (PINGS.load(Ordering::Acquire) as usize) < before + n - 1
            && timer::now_ns().wrapping_sub(t0) < AP_TIMEOUT_NS
        {
            core::hint::spin_loop();
        }
        PINGS.load(Ordering::Acquire) as usize - before
    };
    round(false).min(round(true))
}
