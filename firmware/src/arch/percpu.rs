//! Per-CPU state: each CPU's ring-0 stack with its [`CpuInfo`] on top, its
//! GDT and TSS, its IST stacks and its SYSCALL entry.
//!
//! A CPU's ring-0 block is [`RING0_STACK_SIZE`] bytes, aligned to its size:
//!
//! ```text
//! base + SIZE                +-----------------------------+
//!                            | CpuInfo (64 bytes)          |
//! ring0_top = TSS.RSP0  ---> +-----------------------------+
//!                            | guest frame (GuestRegs)     |  where a trap from the guest,
//!                            |   ...                       |  SYSCALL and cocoon_enter_guest
//!                            | ring-0 stack (grows down)   |  put the guest's registers
//!                            +-----------------------------+
//!                            | IST: #DB (8 KiB)            |
//! base + 3 * IST_STACK_SIZE  +-----------------------------+
//!                            | IST: #MC, NMI, #DF          |
//! base                       +-----------------------------+
//! ```
//!
//! So [`this`] is `rsp` rounded down to the block plus a constant, from the
//! ring-0 stack and from the IST stacks alike: no GS (the guest owns both GS
//! bases), no memory access, no lock. Everything Cocoon runs once the guest
//! has started runs on these stacks: traps from the guest land on RSP0, traps
//! while Cocoon runs stay there, and [`cocoon_enter_guest`] starts the guest
//! from the top of the calling CPU's block. APs run on theirs from their first
//! Rust instruction. The one exception is the boot CPU before it first enters
//! the guest: it runs `cocoon_main64` on the boot stack (`boot.rs`), where
//! `this()` must not be used; use [`cpu`]`(0)` there.
//!
//! The boot CPU's block and tables are statics; an AP's come from the heap
//! when it is started, so RAM is spent only for CPUs that exist (about
//! 192 KiB each: [`AP_HEAP_BYTES`]).
//!
//! [`cocoon_enter_guest`]: super::trap_entry::cocoon_enter_guest

use alloc::alloc::{alloc_zeroed, Layout};
use core::mem::size_of;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use shim_core::abi::{MSR_CSTAR, MSR_LSTAR};
use shim_core::regs::GuestRegs;
use x86_64::registers::model_specific::Msr;

use super::gdt::{CpuTables, IST_DEBUG_STACK_SIZE, IST_STACK_SIZE};
use super::syscall_entry;

/// CPUs Cocoon can run on (the SYSCALL stubs are generated for this many).
pub const MAX_CPUS: usize = 64;
/// A CPU's ring-0 block: IST stacks, ring-0 stack and `CpuInfo` (power of two).
pub const RING0_STACK_SIZE: usize = 128 * 1024;
const _: () = assert!(RING0_STACK_SIZE.is_power_of_two());

/// What `this()` finds at the top of the current ring-0 stack.
#[repr(C, align(64))]
pub struct CpuInfo {
    /// Cocoon's number for this CPU: 0 is the boot CPU, APs count up as they come online.
    pub cpu: u32,
    pub apic_id: u32,
    /// Opaque to this layer: the vCPU pinned to this CPU (`run.rs` sets it).
    pub vcpu: AtomicPtr<()>,
    /// The local APIC timer fired while Cocoon itself ran (not the guest).
    pub timer_fired: AtomicBool,
    /// An NMI came while Cocoon itself ran: the guest's, at its next exit.
    pub nmi_latched: AtomicBool,
    /// Cross-CPU requests, as bits (`run.rs` defines them), set before an `IPI_VECTOR`.
    pub mailbox: AtomicU32,
    /// TSS.RSP0: the ring-0 stack's top, just below this `CpuInfo`.
    pub ring0_top: u64,
    /// TLB-flush requests to this CPU (`vcpus.rs`): the CPUs asking (bits),
    /// what to flush, and how many of its own requests others have done.
    pub flush_from: AtomicU64,
    pub flush_va: AtomicU64,
    pub flush_acks: AtomicU32,
}
const _: () = assert!(size_of::<CpuInfo>() == 64);

/// Offset of the `CpuInfo` in a ring-0 block.
pub const INFO_OFFSET: usize = RING0_STACK_SIZE - size_of::<CpuInfo>();
/// The ring-0 stack proper: from the IST stacks to `ring0_top`.
pub const RING0_STACK_BYTES: usize = INFO_OFFSET - 3 * IST_STACK_SIZE - IST_DEBUG_STACK_SIZE;
const _: () = assert!(RING0_STACK_BYTES >= 64 * 1024 && size_of::<CpuInfo>().is_multiple_of(16));
const _: () = assert!(size_of::<GuestRegs>().is_multiple_of(16));

/// Heap an AP costs: its ring-0 block and its GDT/TSS (as the buddy heap rounds them).
pub const AP_HEAP_BYTES: usize = RING0_STACK_SIZE + size_of::<CpuTables>().next_power_of_two();

/// The boot CPU's ring-0 block and tables. A static aligned to 128 KiB would
/// make the linker align the image's data segment so, which breaks the flat
/// image multiboot loads (`linker/cocoon.ld`); so this is twice the block,
/// page-aligned: the block is the aligned window inside, the GDT and TSS go in
/// the larger of the two pieces around it (together 128 KiB, so one has 64).
#[repr(C, align(4096))]
struct BootArea([u8; 2 * RING0_STACK_SIZE]);
const _: () = assert!(size_of::<CpuTables>() <= RING0_STACK_SIZE / 2);

static mut BOOT_AREA: BootArea = BootArea([0; 2 * RING0_STACK_SIZE]);

static CPUS: [AtomicPtr<CpuInfo>; MAX_CPUS] = [const { AtomicPtr::new(null_mut()) }; MAX_CPUS];
static TABLES: [AtomicPtr<CpuTables>; MAX_CPUS] = [const { AtomicPtr::new(null_mut()) }; MAX_CPUS];
static NR_ONLINE: AtomicUsize = AtomicUsize::new(0);

/// The calling CPU's `CpuInfo`, from `rsp` alone.
///
/// Valid on a ring-0 or IST stack (see the module documentation): on any CPU
/// once it runs the guest or parks, on an AP from its first instruction in Rust;
/// not on the boot CPU's boot stack.
#[inline(always)]
pub fn this() -> &'static CpuInfo {
    let rsp: u64;
    // SAFETY: reads rsp, nothing else.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    let info = (rsp & !(RING0_STACK_SIZE as u64 - 1)) + INFO_OFFSET as u64;
    // SAFETY: on a ring-0 block (the documented condition), `prepare` put an
    // initialised `CpuInfo` here, which lives as long as Cocoon.
    unsafe { &*(info as *const CpuInfo) }
}

/// The `CpuInfo` of CPU `n`, if it is online (or being started).
pub fn cpu(n: usize) -> Option<&'static CpuInfo> {
    let p = CPUS.get(n)?.load(Ordering::Acquire);
    // SAFETY: a non-null entry points at a `CpuInfo` made by `prepare`, never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// How many CPUs run Cocoon: CPUs `0..nr_online()` are online.
pub fn nr_online() -> usize {
    NR_ONLINE.load(Ordering::Acquire)
}

/// The APIC id of CPU `n` (online).
pub fn cpu_apic_id(n: usize) -> u32 {
    cpu(n).expect("CPU is online").apic_id
}

/// The part of CPU `n`'s GDT that holds the guest's descriptors (entries 0..7168).
///
/// # Safety
/// Call at most once per CPU; the caller becomes the only user of these
/// entries (Cocoon's own descriptors live above FIRST_RESERVED_GDT_ENTRY).
pub unsafe fn guest_gdt(n: usize) -> &'static mut [u64] {
    let t = TABLES[n].load(Ordering::Acquire);
    assert!(!t.is_null(), "CPU {n} has no GDT");
    // SAFETY: `t` points at CPU n's tables (never freed); per the contract
    // nobody else holds a reference to the guest's entries.
    unsafe { (*t).guest_part() }
}

/// The APIC id of the calling CPU, as CPUID reports it (before the APIC is set up).
fn apic_id_from_cpuid() -> u32 {
    let c = super::cpu::cpuid;
    if c(0, 0)[0] >= 0xb && c(0xb, 0)[1] != 0 {
        return c(0xb, 0)[3]; // x2APIC id
    }
    c(1, 0)[1] >> 24
}

/// Set up CPU `n`'s `CpuInfo`, TSS and GDT in `block` (a ring-0 block) and
/// `tables`, and point its SYSCALL slot at the stack. Returns the `CpuInfo`.
///
/// # Safety
/// `block` is `RING0_STACK_SIZE` bytes aligned to its size, `tables` valid,
/// both used by nothing else and never freed; CPU `n` is not running.
unsafe fn prepare(n: usize, apic_id: u32, block: *mut u8, tables: *mut CpuTables) -> &'static CpuInfo {
    let base = block as u64;
    let info_ptr = (base + INFO_OFFSET as u64) as *mut CpuInfo;
    let ring0_top = info_ptr as u64;
    // SAFETY: per the contract, the block and the tables are this CPU's alone.
    unsafe {
        info_ptr.write(CpuInfo {
            cpu: n as u32,
            apic_id,
            vcpu: AtomicPtr::new(null_mut()),
            timer_fired: AtomicBool::new(false),
            nmi_latched: AtomicBool::new(false),
            mailbox: AtomicU32::new(0),
            ring0_top,
            flush_from: AtomicU64::new(0),
            flush_va: AtomicU64::new(0),
            flush_acks: AtomicU32::new(0),
        });
        let ist = [
            base + IST_STACK_SIZE as u64,
            base + 2 * IST_STACK_SIZE as u64,
            base + 3 * IST_STACK_SIZE as u64,
            base + (3 * IST_STACK_SIZE + IST_DEBUG_STACK_SIZE) as u64,
        ];
        (*tables).fill(ring0_top, ist);
        syscall_entry::set_stack_top(n, ring0_top);
    }
    TABLES[n].store(tables, Ordering::Release);
    CPUS[n].store(info_ptr, Ordering::Release);
    // SAFETY: just initialised, and never freed.
    unsafe { &*info_ptr }
}

/// The calling CPU (number `n`) enters Cocoon's SYSCALL path through its own stub.
fn init_syscall(n: usize) {
    let entry = syscall_entry::syscall_entry(n);
    // SAFETY: the stub of CPU `n` switches to CPU n's ring-0 stack, set up by `prepare`.
    unsafe {
        Msr::new(MSR_LSTAR).write(entry);
        Msr::new(MSR_CSTAR).write(entry);
    }
}

/// The boot CPU: its GDT, TSS, IST stacks and ring-0 stack (statics), and its
/// SYSCALL entry. Runs first thing, once.
pub fn init_boot_cpu() {
    let area = core::ptr::addr_of_mut!(BOOT_AREA) as u64;
    let block = area.next_multiple_of(RING0_STACK_SIZE as u64);
    let before = block - area;
    let after = RING0_STACK_SIZE as u64 - before;
    let tables = if before >= after { area } else { block + RING0_STACK_SIZE as u64 };
    // SAFETY: runs once, on the boot CPU, before anything else uses its block or
    // tables: both inside BOOT_AREA (page-aligned pieces), apart from each other.
    unsafe {
        let tables = tables as *mut CpuTables; // zero (.bss) until `fill`
        prepare(0, apic_id_from_cpuid(), block as *mut u8, tables);
        (*tables).load();
    }
    init_syscall(0);
    NR_ONLINE.store(1, Ordering::Release);
}

/// Allocate and prepare AP number `n` (`n == nr_online()`), before it is started.
/// `None` when the heap has no room for it.
pub(super) fn prepare_ap(n: usize, apic_id: u32) -> Option<&'static CpuInfo> {
    assert!(n < MAX_CPUS && n == nr_online());
    let block_layout = Layout::from_size_align(RING0_STACK_SIZE, RING0_STACK_SIZE).ok()?;
    // SAFETY: non-zero layouts.
    let (block, tables) = unsafe { (alloc_zeroed(block_layout), alloc_zeroed(Layout::new::<CpuTables>())) };
    if block.is_null() || tables.is_null() {
        return None;
    }
    // SAFETY: fresh, zeroed, correctly sized and aligned allocations, kept forever;
    // AP `n` is not running (a failed start is reset with INIT before `n` is reused).
    Some(unsafe { prepare(n, apic_id, block, tables as *mut CpuTables) })
}

/// On AP `n`, on its ring-0 stack: load its GDT and TSS and its SYSCALL entry.
pub(super) fn init_this_ap(n: usize) {
    let t = TABLES[n].load(Ordering::Acquire);
    // SAFETY: `prepare_ap` filled CPU n's tables; only this CPU loads them.
    unsafe { (*t).load() };
    init_syscall(n);
}

/// AP `n` has finished its set-up: count it online.
pub(super) fn mark_online(n: usize) {
    let prev = NR_ONLINE.fetch_add(1, Ordering::AcqRel);
    debug_assert_eq!(prev, n);
}
