//! The PV core on the host: hypercalls, bounces, iret, event delivery,
//! emulation and the MMU checks, against a mock platform whose guest
//! accesses walk the real page tables the builder made.

use shim_core::abi::*;
use shim_core::builder::{build, DomainConfig, EntryState, GuestMemory, Layout, PhysMap};
use shim_core::domain::{
    Ctx, Domain, DomainSetup, Forward, LocalConsole, Vcpu, DOMID_STANDALONE, NR_GRANT_FRAMES, NR_STATUS_FRAMES,
};
use shim_core::loader;
use shim_core::mm::frames::PageType;
use shim_core::mm::walk::translate;
use shim_core::platform::{HostSuspend, Platform};
use shim_core::regs::*;
use shim_core::testing::*;
use shim_core::traps;
use shim_core::xenstore::XenStore;

const PAGES: u64 = 8192; // 32 MiB
const BASE: u64 = 0x100;
const SHARED: u64 = BASE + PAGES;
/// A free, writable kernel address for hypercall arguments (the synthetic kernel's bss).
const BUF: u64 = SYNTH_VIRT_BASE + 0x100_5000;
const STACK_TOP: u64 = SYNTH_VIRT_BASE + 0x100_7ff0;

struct Guest {
    d: Domain,
    v: Vcpu,
    p: MockPlatform,
    layout: Layout,
    entry: EntryState,
}

fn boot() -> Guest {
    boot_with(None, 1)
}

/// A guest on a real Xen (the mock answers every forwarded hypercall with 0).
fn boot_forwarded(f: Forward) -> Guest {
    let mut g = boot_with(Some(f), 1);
    g.p.xen = Some(0);
    g
}

fn boot_with(forward: Option<Forward>, nr_vcpus: u32) -> Guest {
    let elf = SynthKernel::linux_like().to_elf();
    let kernel = loader::load(&elf, PAGES * 4096).unwrap();
    let map = PhysMap::from_extents(&[(BASE, PAGES)]);
    let mut mem = VecMemory::new(0, SHARED + 1 + (NR_GRANT_FRAMES + NR_STATUS_FRAMES) as u64);
    let cfg = DomainConfig {
        cmdline: "",
        initrd: None,
        shared_info_mfn: SHARED,
        store_evtchn: 1,
        console_evtchn: 2,
        host_rings: Default::default(),
    };
    let (layout, entry) = build(&kernel, &map, &mut mem, &cfg).unwrap();
    let mut grant = [0u64; NR_GRANT_FRAMES];
    for (i, g) in grant.iter_mut().enumerate() {
        *g = SHARED + 1 + i as u64;
    }
    let console_mfn = map.mfn(layout.console.pfn);
    let store_mfn = map.mfn(layout.xenstore.pfn);
    let setup = DomainSetup {
        physmap: map,
        shared_info_mfn: SHARED,
        grant_mfns: grant,
        status_mfns: core::array::from_fn(|i| SHARED + 1 + (NR_GRANT_FRAMES + i) as u64),
        m2p: Box::leak(vec![0u64; 16384].into_boxed_slice()),
        m2p_span: 0,
        hypervisor_l4: [0; 16],
        max_mfn: SHARED + (NR_GRANT_FRAMES + NR_STATUS_FRAMES) as u64,
        console_mfn,
        store_mfn,
        console_port: 2,
        store_port: 1,
        xenstore: XenStore::new(1, "test", PAGES * 4),
        forward,
        nr_vcpus,
    };
    let d = Domain::new(setup);
    let mut v = d.boot_vcpu(Box::leak(vec![0u64; FIRST_RESERVED_GDT_ENTRY].into_boxed_slice()));
    let mut p = MockPlatform::new(mem);
    let l4 = entry.cr3 >> 12;
    d.lock().frames.get_type(&mut p, l4, PageType::L4).unwrap();
    d.lock().frames.get_type(&mut p, l4, PageType::L4).unwrap();
    d.lock().frames.pin(l4).unwrap();
    v.guest_table = l4;
    v.kernel_sp = entry.rsp;
    d.shared_info(&mut p).vcpu_info[0].evtchn_upcall_mask = 1;
    p.load_cr3(l4);
    Guest { d, v, p, layout, entry }
}

/// Registers of the guest kernel at some instruction, on its boot stack.
fn kregs(_g: &Guest) -> GuestRegs {
    GuestRegs {
        rip: SYNTH_VIRT_BASE + 0x100_0100,
        cs: FLAT_KERNEL_CS as u64,
        rflags: X86_EFLAGS_IF | X86_EFLAGS_MBS,
        rsp: STACK_TOP,
        ss: FLAT_KERNEL_SS as u64,
        ..Default::default()
    }
}

/// The handlers' view of the guest's one vCPU.
macro_rules! ctx {
    ($g:expr) => {
        &mut Ctx { v: &mut $g.v, d: &$g.d }
    };
}

/// The vCPU's vcpu_info.
fn vcpu_info(g: &mut Guest) -> &mut VcpuInfo {
    let ma = g.v.vcpu_info_maddr;
    let f = g.p.frame_mut(ma >> 12);
    // SAFETY: a 64-byte vcpu_info at an 8-aligned offset of the frame.
    unsafe { &mut *(f.as_mut_ptr().add((ma & 0xfff) as usize) as *mut VcpuInfo) }
}

fn hypercall(g: &mut Guest, nr: u64, args: [u64; 5]) -> i64 {
    let mut r = kregs(g);
    r.vector = ENTRY_SYSCALL;
    r.rax = nr;
    (r.rdi, r.rsi, r.rdx, r.r10, r.r8) = (args[0], args[1], args[2], args[3], args[4]);
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    r.rax as i64
}

fn put<T: Copy>(g: &mut Guest, va: u64, v: &T) {
    Domain::write_guest(&mut g.p, va, v).unwrap();
}

fn get<T: Copy>(g: &mut Guest, va: u64) -> T {
    Domain::read_guest::<MockPlatform, T>(&mut g.p, va).unwrap()
}

fn l1e_of(g: &mut Guest, va: u64) -> u64 {
    translate(&g.p.mem, g.v.guest_table, va).unwrap().l1e
}

/// The L1 table (MFN) mapping `va` in the kernel tables, by walking them.
fn l1_table_of(g: &Guest, va: u64) -> u64 {
    let mut t = g.v.guest_table;
    for level in (2..=4u32).rev() {
        let idx = ((va >> (12 + 9 * (level - 1))) & 511) as usize;
        t = (g.p.mem.read_u64(t, idx) & PADDR_MASK) >> PAGE_SHIFT;
    }
    t
}

#[test]
fn version_features_and_unknown_hypercalls() {
    let mut g = boot();
    assert_eq!(hypercall(&mut g, __HYPERVISOR_xen_version, [0; 5]), 0x0004_0011);
    put(&mut g, BUF, &[0u32, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_xen_version, [6, BUF, 0, 0, 0]), 0);
    let f: [u32; 2] = get(&mut g, BUF);
    assert_eq!(f[1], (1 << XENFEAT_mmu_pt_update_preserve_ad) | (1 << XENFEAT_gnttab_map_avail_bits));
    assert_eq!(hypercall(&mut g, 99, [0; 5]), -XEN_ENOSYS);
    assert_eq!(hypercall(&mut g, 99, [0; 5]), -XEN_ENOSYS);
    // XENVER_compile_info fills the whole 144-byte struct.
    for i in 0..18u64 {
        put(&mut g, BUF + 8 * i, &u64::MAX);
    }
    assert_eq!(hypercall(&mut g, __HYPERVISOR_xen_version, [XENVER_compile_info, BUF, 0, 0, 0]), 0);
    let tail: u64 = get(&mut g, BUF + 136);
    assert_eq!(tail, 0, "compile_date's last bytes written");
    // A bad pointer is -EFAULT, never a crash.
    assert_eq!(hypercall(&mut g, __HYPERVISOR_xen_version, [6, 0x1234_0000, 0, 0, 0]), -XEN_EFAULT);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_xen_version, [6, HYPERVISOR_VIRT_START + 64, 0, 0, 0]), -XEN_EFAULT);
}

#[test]
fn mmu_update_checks_every_entry() {
    let mut g = boot();
    let va = SYNTH_VIRT_BASE + 0x100_4000;
    // The machine address of the L1 entry for `va`.
    let l1_ma = (l1_table_of(&g, va) << 12) | (((va >> 12) & 511) * 8);
    let pt_mfn = g.entry.cr3 >> 12;
    let data_mfn = BASE + 0x100;
    let try_update = |g: &mut Guest, val: u64| {
        put(g, BUF, &[l1_ma, val]);
        hypercall(g, __HYPERVISOR_mmu_update, [BUF, 1, 0, DOMID_SELF_U64, 0])
    };
    // A plain data page, writable: fine, and the entry gains U (kernel runs in ring 3).
    assert_eq!(try_update(&mut g, (data_mfn << 12) | _PAGE_PRESENT | _PAGE_RW), 0);
    assert_ne!(l1e_of(&mut g, va) & _PAGE_USER, 0);
    // The L4 writable: refused.
    assert_eq!(try_update(&mut g, (pt_mfn << 12) | _PAGE_PRESENT | _PAGE_RW), -XEN_EINVAL);
    // ... read-only is fine.
    assert_eq!(try_update(&mut g, (pt_mfn << 12) | _PAGE_PRESENT), 0);
    // Cocoon's M2P/other frames outside the guest: refused even read-only.
    assert_eq!(try_update(&mut g, (0x5u64 << 12) | _PAGE_PRESENT), -XEN_EINVAL);
    // shared_info is Cocoon's but the guest may map it writable.
    assert_eq!(try_update(&mut g, (SHARED << 12) | _PAGE_PRESENT | _PAGE_RW), 0);
}

const DOMID_SELF_U64: u64 = 0x7ff0;

#[test]
fn a_recursive_l4_slot_maps_the_page_tables_read_only() {
    let mut g = boot();
    let l4 = g.entry.cr3 >> 12;
    let slot = 300u64;
    let try_update = |g: &mut Guest, val: u64| {
        put(g, BUF, &[(l4 << 12) | (slot * 8), val]);
        hypercall(g, __HYPERVISOR_mmu_update, [BUF, 1, 0, DOMID_SELF_U64, 0])
    };
    // Writable, the guest could write its own page tables: refused, as Xen does.
    assert_eq!(try_update(&mut g, (l4 << 12) | _PAGE_PRESENT | _PAGE_RW), -XEN_EINVAL);
    let before = g.d.lock().frames.get(l4).unwrap().type_count;
    assert_eq!(try_update(&mut g, (l4 << 12) | _PAGE_PRESENT), 0);
    assert_eq!(g.d.lock().frames.get(l4).unwrap().type_count, before, "a recursive slot holds nothing");
    // Through the slot four times, the L4 itself: its entry for the slot reads back.
    let va = 0xffff_0000_0000_0000 | (slot << 39) | (slot << 30) | (slot << 21) | (slot << 12);
    let e: u64 = get(&mut g, va + slot * 8);
    assert_eq!(e & !0xfff, l4 << 12);
    // Now making it writable is refused too, and removing it is fine.
    assert_eq!(try_update(&mut g, (l4 << 12) | _PAGE_PRESENT | _PAGE_RW), -XEN_EINVAL);
    assert_eq!(try_update(&mut g, 0), 0);
    assert_eq!(g.d.lock().frames.get(l4).unwrap().type_count, before);
}

#[test]
fn pin_refuses_a_table_with_writable_mappings() {
    let mut g = boot();
    // The synthetic kernel's data page is mapped writable by the initial tables.
    let data_pfn = (SYNTH_VIRT_BASE + 0x100_3000 - SYNTH_VIRT_BASE) >> 12;
    let mfn = BASE + data_pfn;
    put(&mut g, BUF, &[MMUEXT_PIN_L1_TABLE as u64, mfn, 0u64]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmuext_op, [BUF, 1, 0, DOMID_SELF_U64, 0]), -XEN_EINVAL);
    // A free page (past the mapping) pins fine, twice is an error, unpin works.
    let free = BASE + PAGES - 10;
    put(&mut g, BUF, &[MMUEXT_PIN_L1_TABLE as u64, free, 0u64]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmuext_op, [BUF, 1, 0, DOMID_SELF_U64, 0]), 0);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmuext_op, [BUF, 1, 0, DOMID_SELF_U64, 0]), -XEN_EINVAL);
    put(&mut g, BUF, &[4u64 /* UNPIN */, free, 0u64]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmuext_op, [BUF, 1, 0, DOMID_SELF_U64, 0]), 0);
    assert_eq!(g.d.lock().frames.get(free).unwrap().type_count, 0);
}

#[test]
fn page_fault_bounces_with_xen_frame() {
    let mut g = boot();
    let handler = SYNTH_VIRT_BASE + 0x100_0200;
    g.v.trap_ctxt[14] = TrapInfo { vector: 14, flags: TI_IF_MASK, cs: 0xe033, _pad: 0, address: handler };
    vcpu_info(&mut g).evtchn_upcall_mask = 0;
    let mut r = kregs(&g);
    r.vector = 14;
    r.error_code = PFEC_user_mode | PFEC_present | PFEC_write_access; // hardware says "user": the kernel runs in ring 3
    r.rcx = 0x1111;
    r.r11 = 0x2222;
    g.p.cr2 = 0xdead_b000;
    let (rip, rsp) = (r.rip, r.rsp);
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, handler);
    assert_eq!((r.cs, r.ss), (FLAT_KERNEL_CS as u64, FLAT_KERNEL_SS as u64));
    let frame: [u64; 8] = get(&mut g, r.rsp);
    assert_eq!(frame[0..2], [0x1111, 0x2222]);
    assert_eq!(frame[2], PFEC_present | PFEC_write_access, "U cleared for a kernel-mode fault");
    assert_eq!(frame[3], rip);
    assert_eq!(frame[4], FLAT_KERNEL_CS as u64 & !3, "kernel context: RPL 0, saved mask 0");
    assert_ne!(frame[5] & X86_EFLAGS_IF, 0, "IF reflects the unmasked events");
    assert_eq!(frame[6..8], [rsp, FLAT_KERNEL_SS as u64]);
    assert_eq!(r.rsp, (rsp & !0xf) - 64);
    assert_eq!(vcpu_info(&mut g).arch.cr2, 0xdead_b000);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_mask, 1, "TI_IF_MASK masks events");
}

#[test]
fn fault_without_handler_crashes_the_guest_cleanly() {
    let mut g = boot();
    let mut r = kregs(&g);
    r.vector = 0;
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| traps::guest_entry(ctx!(g), &mut g.p, &mut r)));
    let msg = res.unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(msg.contains("GuestFault"), "{msg}");
}

/// Guest user mode needs a user L4: pin an empty one (Cocoon adds its slots).
fn enter_user_mode(g: &mut Guest) -> u64 {
    let user_l4 = BASE + PAGES - 20;
    put(g, BUF, &[3u64 /* PIN_L4 */, user_l4, 0u64, 15 /* NEW_USER_BASEPTR */, user_l4, 0]);
    assert_eq!(hypercall(g, __HYPERVISOR_mmuext_op, [BUF, 2, 0, DOMID_SELF_U64, 0]), 0);
    user_l4
}

#[test]
fn iret_to_user_and_syscall_back() {
    let mut g = boot();
    linux_user_segments(&mut g);
    let user_l4 = enter_user_mode(&mut g);
    let kernel_l4 = g.v.guest_table;
    g.v.kernel_sp = STACK_TOP - 0x800;
    // iret frame: rax, r11, rcx, flags, rip, cs, rflags, rsp, ss
    let sp = STACK_TOP - 0x100;
    put(&mut g, sp, &[7u64, 0x11, 0x22, 0, 0x40_1000, 0x33, X86_EFLAGS_IF, 0x7fff_0000, 0x2b]);
    let mut r = kregs(&g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_iret;
    r.rsp = sp;
    let swaps = g.p.gs_swaps;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert!(!g.v.kernel_mode);
    assert_eq!(g.p.cr3, user_l4);
    assert_eq!(g.p.gs_swaps, swaps + 1);
    assert_eq!((r.rip, r.cs, r.rsp, r.ss, r.rax, r.rcx, r.r11), (0x40_1000, 0x33, 0x7fff_0000, 0x2b, 7, 0x22, 0x11));
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_mask, 0, "IF set in the frame unmasks");

    // A user syscall goes to the syscall callback on the kernel stack, in kernel mode.
    let cb = SYNTH_VIRT_BASE + 0x100_0300;
    g.v.syscall = shim_core::domain::Callback { address: cb, mask_events: true };
    let mut u = GuestRegs {
        vector: ENTRY_SYSCALL,
        rip: 0x40_1002,
        cs: 0x33,
        rsp: 0x7fff_0000,
        ss: 0x2b,
        rflags: 0x246 | X86_EFLAGS_DF,
        rcx: 0x40_1002,
        r11: 0x246,
        ..Default::default()
    };
    traps::guest_entry(ctx!(g), &mut g.p, &mut u);
    assert!(g.v.kernel_mode);
    assert_eq!(g.p.cr3, kernel_l4);
    assert_eq!(u.rip, cb);
    assert_eq!(u.rflags & X86_EFLAGS_DF, 0);
    let frame: [u64; 7] = get(&mut g, u.rsp);
    assert_eq!(frame, [0x40_1002, 0x246, 0x40_1002, 0x33, 0x246 | X86_EFLAGS_DF | X86_EFLAGS_IF, 0x7fff_0000, 0x2b]);
    assert!(u.rsp < STACK_TOP - 0x800 && u.rsp >= STACK_TOP - 0x800 - 64);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_mask, 1);
}

#[test]
fn an_iret_in_a_multicall_is_performed_and_ends_the_batch() {
    let mut g = boot();
    linux_user_segments(&mut g);
    enter_user_mode(&mut g);
    let sp = STACK_TOP - 0x100;
    put(&mut g, sp, &[7u64, 0x11, 0x22, 0, 0x40_1000, 0x33, X86_EFLAGS_IF, 0x7fff_0000, 0x2b]);
    // stack_switch, a nested multicall, iret, stack_switch: entries of
    // {op, result, args[6]}, results preset to a marker.
    let list = SYNTH_VIRT_BASE + 0x100_1c00;
    let marker = 0x5a5a_u64;
    let entries: [[u64; 8]; 4] = [
        [__HYPERVISOR_stack_switch, marker, 0x2b, STACK_TOP - 0x800, 0, 0, 0, 0],
        [__HYPERVISOR_multicall, marker, list, 1, 0, 0, 0, 0],
        [__HYPERVISOR_iret, marker, 0, 0, 0, 0, 0, 0],
        [__HYPERVISOR_stack_switch, marker, 0x2b, STACK_TOP - 0x900, 0, 0, 0, 0],
    ];
    for (i, e) in entries.iter().enumerate() {
        put(&mut g, list + 64 * i as u64, e);
    }
    let mut r = kregs(&g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_multicall;
    (r.rdi, r.rsi) = (list, 4);
    r.rsp = sp;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    // The iret ran: the guest is in user mode where the frame says.
    assert!(!g.v.kernel_mode);
    assert_eq!((r.rip, r.cs, r.rsp, r.rax, r.rcx, r.r11), (0x40_1000, 0x33, 0x7fff_0000, 7, 0x22, 0x11));
    // (The list is kernel memory: read it through the kernel's tables.)
    let kernel_l4 = g.v.guest_table;
    g.p.load_cr3(kernel_l4);
    let result = |g: &mut Guest, i: u64| get::<u64>(g, list + 64 * i + 8);
    assert_eq!(result(&mut g, 0), 0, "the stack switch ran");
    assert_eq!(result(&mut g, 1), (-XEN_EINVAL) as u64, "no multicall inside a multicall");
    assert_eq!(result(&mut g, 3), marker, "nothing after the iret ran");
    assert_eq!(g.v.kernel_sp, STACK_TOP - 0x800);
}

/// Linux's user code and data descriptors (GDT entries 6 and 5: 0x33, 0x2b).
fn linux_user_segments(g: &mut Guest) {
    g.v.gdt[5] = 0x00cf_f300_0000_ffff;
    g.v.gdt[6] = 0x00af_fb00_0000_ffff;
    g.v.gdt_state.entries = 16;
}

/// `HYPERVISOR_iret` to user code at 0x401000 (cs 0x33, ss 0x2b); the outcome.
fn iret_to_user(g: &mut Guest) -> std::thread::Result<()> {
    let sp = STACK_TOP - 0x100;
    put(g, sp, &[0u64, 0, 0, 0, 0x40_1000, 0x33, X86_EFLAGS_IF, 0x7fff_0000, 0x2b]);
    let mut r = kregs(g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_iret;
    r.rsp = sp;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| traps::guest_entry(ctx!(g), &mut g.p, &mut r)))
}

fn assert_guest_fault(res: std::thread::Result<()>) {
    let err = res.expect_err("the guest should have been stopped");
    assert!(err.downcast_ref::<String>().unwrap().contains("GuestFault"));
}

#[test]
fn iret_with_a_bad_selector_stops_the_guest_not_cocoon() {
    let mut g = boot();
    let _ = enter_user_mode(&mut g);
    // 0x33 names nothing yet: no GDT installed.
    assert_guest_fault(iret_to_user(&mut g));
}

#[test]
fn iret_to_user_without_user_tables_crashes() {
    let mut g = boot();
    assert_guest_fault(iret_to_user(&mut g));
}

#[test]
fn pending_event_is_delivered_on_the_way_out() {
    let mut g = boot();
    let cb = SYNTH_VIRT_BASE + 0x100_0400;
    g.v.event = shim_core::domain::Callback { address: cb, mask_events: true };
    // bind VIRQ_TIMER: {virq, vcpu, port}
    put(&mut g, BUF, &[0u32, 0, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [1, BUF, 0, 0, 0]), 0);
    let port: [u32; 3] = get(&mut g, BUF);
    assert!(port[2] > 2);
    ctx!(g).raise_virq(&mut g.p, 0);
    // Masked: nothing happens.
    let mut r = kregs(&g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_xen_version;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_ne!(r.rip, cb);
    // Unmasked: the upcall lands on top of the hypercall's return.
    vcpu_info(&mut g).evtchn_upcall_mask = 0;
    let mut r = kregs(&g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_xen_version;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, cb);
    assert_eq!(r.rax, 0x0004_0011, "the hypercall result is kept");
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_mask, 1);
    let si = g.d.shared_info(&mut g.p);
    assert_ne!(si.evtchn_pending[0] & (1 << port[2]), 0);
}

fn int80_from_user() -> GuestRegs {
    GuestRegs {
        vector: 0x80,
        rip: 0x40_1002,
        cs: 0x33,
        rsp: 0x7fff_0000,
        ss: 0x2b,
        rflags: 0x202,
        ..Default::default()
    }
}

#[test]
fn software_interrupts_follow_the_trap_table_dpl() {
    let mut g = boot();
    linux_user_segments(&mut g);
    let _ = enter_user_mode(&mut g);
    g.v.kernel_sp = STACK_TOP - 0x800;
    let h80 = SYNTH_VIRT_BASE + 0x100_0500;
    let hgp = SYNTH_VIRT_BASE + 0x100_0600;
    g.v.trap_ctxt[13] = TrapInfo { vector: 13, flags: 0, cs: 0, _pad: 0, address: hgp };
    g.v.trap_ctxt[0x80] = TrapInfo { vector: 0x80, flags: 3, cs: 0, _pad: 0, address: h80 };
    g.v.kernel_mode = false;
    g.p.cr3 = g.v.guest_table_user;
    let mut u = int80_from_user();
    traps::guest_entry(ctx!(g), &mut g.p, &mut u);
    assert_eq!(u.rip, h80);
    // DPL 0: #GP with the int's error code.
    g.v.trap_ctxt[0x80].flags = 0;
    g.v.kernel_mode = false;
    g.p.cr3 = g.v.guest_table_user;
    let mut u = int80_from_user();
    traps::guest_entry(ctx!(g), &mut g.p, &mut u);
    assert_eq!(u.rip, hgp);
    let frame: [u64; 4] = get(&mut g, u.rsp);
    assert_eq!(frame[2], (0x80 << 3) | 2);
    assert_eq!(frame[3], 0x40_1000, "the #GP is at the int instruction, as Xen's int80_slow_path reports it");
    // int3 is an exception: delivered whatever its trap-table DPL (Xen's do_int3).
    let h3 = SYNTH_VIRT_BASE + 0x100_0700;
    g.v.trap_ctxt[3] = TrapInfo { vector: 3, flags: 0, cs: 0, _pad: 0, address: h3 };
    g.v.kernel_mode = false;
    g.p.cr3 = g.v.guest_table_user;
    let mut u = GuestRegs { vector: 3, ..int80_from_user() };
    traps::guest_entry(ctx!(g), &mut g.p, &mut u);
    assert_eq!(u.rip, h3);
    let frame: [u64; 3] = get(&mut g, u.rsp);
    assert_eq!(frame[2], 0x40_1002, "int3 reports the address after it");
}

/// Place instruction bytes at a kernel address (through the machine frame).
fn code(g: &mut Guest, va: u64, bytes: &[u8]) {
    let t = translate(&g.p.mem, g.v.guest_table, va).unwrap();
    let off = (va & 0xfff) as usize;
    g.p.mem.frame_mut(t.mfn)[off..off + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn forced_cpuid_and_msr_emulation() {
    let mut g = boot();
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    code(&mut g, rip, &[0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2]);
    let mut r = kregs(&g);
    r.vector = 6;
    r.rax = 0x4000_0000;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!((r.rax, r.rbx, r.rip), (0x4000_0002, 0x566e_6558, rip + 7));
    // wrmsr GS_BASE, before any trap table exists (Linux's first instruction).
    code(&mut g, rip, &[0x0f, 0x30]);
    let mut r = kregs(&g);
    r.vector = 13;
    r.rcx = 0xc000_0101;
    r.rax = 0x8765_4321;
    r.rdx = 0xffff_ffff;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, rip + 2);
    assert_eq!(g.p.msrs[&0xc000_0101], 0xffff_ffff_8765_4321);
    // rdmsr of the PAT gives Xen's fixed value.
    code(&mut g, rip, &[0x0f, 0x32]);
    let mut r = kregs(&g);
    r.vector = 13;
    r.rcx = 0x277;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!((r.rdx << 32) | r.rax, XEN_MSR_PAT);
}

/// Run one instruction the guest kernel executed at `rip`, which trapped with #GP(0).
fn gp_insn(g: &mut Guest, bytes: &[u8], set: impl FnOnce(&mut GuestRegs)) -> GuestRegs {
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    code(g, rip, bytes);
    let mut r = kregs(g);
    r.vector = 13;
    set(&mut r);
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    r
}

#[test]
fn port_io_is_what_xen_gives_a_domu() {
    let mut g = boot();
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    let hgp = SYNTH_VIRT_BASE + 0x100_0600;
    g.v.trap_ctxt[13] = TrapInfo { vector: 13, flags: 0, cs: 0, _pad: 0, address: hgp };
    // Without virtual IOPL (as the domain starts): the native #GP.
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x42], |_| ()).rip, hgp);
    // Linux's PHYSDEVOP_set_iopl(1): the guest kernel (ring 1) may.
    g.v.iopl = 1;
    // No vPIT for a PV domU: the PIT ports read all ones (what Linux's
    // quick_pit_calibrate polls 100,000 times on Xen too).
    let r = gp_insn(&mut g, &[0xe4, 0x42], |r| r.rax = 0xdead_beef_1234_5600);
    assert_eq!((r.rip, r.rax), (rip + 2, 0xdead_beef_1234_56ff));
    let r = gp_insn(&mut g, &[0xe6, 0x43], |r| r.rax = 0xb0);
    assert_eq!(r.rip, rip + 2);
    // The PCI address port latches a dword (Linux's pci_check_type1 reads
    // its 0x80000000 back); the data ports and other widths are all ones.
    let dx = |port: u64| move |r: &mut GuestRegs| (r.rdx, r.rax) = (port, 0xdead_beef_0000_0000);
    assert_eq!(gp_insn(&mut g, &[0xed], dx(0xcf8)).rax, 0, "Xen's pci_cf8 starts at 0");
    let r = gp_insn(&mut g, &[0xef], |r| (r.rdx, r.rax) = (0xcf8, 0x8000_0000));
    assert_eq!(r.rip, rip + 1);
    assert_eq!(gp_insn(&mut g, &[0xed], dx(0xcf8)).rax, 0x8000_0000, "32-bit in clears the upper half");
    assert_eq!(gp_insn(&mut g, &[0x66, 0xed], dx(0xcf8)).rax, 0xdead_beef_0000_ffff);
    assert_eq!(gp_insn(&mut g, &[0xec], dx(0xcf8)).rax, 0xdead_beef_0000_00ff);
    assert_eq!(gp_insn(&mut g, &[0xed], dx(0xcfc)).rax, 0xffff_ffff);
    assert_eq!(gp_insn(&mut g, &[0x66, 0xed], dx(0xcfe)).rax, 0xdead_beef_0000_ffff);
    let r = gp_insn(&mut g, &[0xee], |r| (r.rdx, r.rax) = (0xcf8, 0x12));
    assert_eq!(r.rip, rip + 1);
    assert_eq!(gp_insn(&mut g, &[0xed], dx(0xcf8)).rax, 0x8000_0000, "only a dword write latches");
    // The RTC index port latches its byte; the data port is all ones.
    gp_insn(&mut g, &[0xe6, 0x70], |r| r.rax = 0x8a);
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x70], |r| r.rax = 0).rax, 0x8a);
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x71], |r| r.rax = 0).rax, 0xff);
    assert_eq!(gp_insn(&mut g, &[0x66, 0xed], dx(0x70)).rax, 0xdead_beef_0000_ff8a);
    assert_eq!(gp_insn(&mut g, &[0xed], dx(0x6f)).rax, 0xffff_8aff);
    gp_insn(&mut g, &[0x66, 0xef], |r| (r.rdx, r.rax) = (0x70, 0x1234));
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x70], |r| r.rax = 0).rax, 0x34);
    // cli/sti: ignored, counted apart from port I/O.
    let before = g.v.stats.exits;
    assert_eq!(gp_insn(&mut g, &[0xfa], |_| ()).rip, rip + 1);
    let mut lines = Vec::new();
    g.v.stats.exits.report(true, |l| lines.push(l.to_string()));
    assert!(lines.iter().any(|l| l.starts_with("emulated cli/sti") && l.contains(" 1")), "{lines:?}");
    assert_ne!(before.emulated, g.v.stats.exits.emulated);
    // ins/outs are not emulated.
    assert_eq!(gp_insn(&mut g, &[0x6c], |r| r.rdx = 0x42).rip, hgp);
    // IOPL 0 with VMASST_TYPE_architectural_iopl: the guest kernel is ring 0 and may.
    g.v.iopl = 0;
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x42], |_| ()).rip, hgp);
    g.d.vm_assist.fetch_or(1 << VMASST_TYPE_architectural_iopl, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x42], |_| ()).rip, rip + 2);
}

/// CR4 as Xen 4.17 shows a PV guest (`pv_fixup_guest_cr4`): the bits it
/// toggles where its CPUID has them, the hardware's PAE/MCE/OSFXSR/
/// OSXMMEXCPT, nothing else; FSGSBASE goes into this CPU's CR4.
#[test]
fn cr4_reads_and_writes_as_xen_shows_them() {
    let mut g = boot();
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    let read = |g: &mut Guest| gp_insn(g, &[0x0f, 0x20, 0xe0], |_| ()).rax; // mov %cr4, %rax
    let write = |g: &mut Guest, v: u64| {
        let r = gp_insn(g, &[0x0f, 0x22, 0xe0], |r| r.rax = v); // mov %rax, %cr4
        assert_eq!(r.rip, rip + 3, "Xen drops the bits it does not allow; no #GP");
    };
    let visible = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    assert_eq!(read(&mut g), visible, "at boot: only the hardware's visible bits (PGE and OSXSAVE hidden)");
    // Leaf 7 without FSGSBASE: the bit is dropped, as are PGE and PSE.
    g.p.cpuid_leaves.insert((7, 0), [0, 0, 0, 0]);
    write(&mut g, visible | X86_CR4_FSGSBASE | (1 << 7) | (1 << 4) | X86_CR4_DE);
    assert_eq!(read(&mut g), visible | X86_CR4_DE);
    assert!(!g.p.cr4_fsgsbase);
    // With FSGSBASE: kept, and loaded into the CPU's CR4 until cleared.
    g.p.cpuid_leaves.insert((7, 0), [0, 1, 0, 0]);
    write(&mut g, X86_CR4_FSGSBASE | X86_CR4_OSXSAVE);
    assert_eq!(read(&mut g), visible | X86_CR4_FSGSBASE | X86_CR4_OSXSAVE);
    assert!(g.p.cr4_fsgsbase);
    write(&mut g, visible);
    assert!(!g.p.cr4_fsgsbase);
    assert_eq!(read(&mut g), visible);
}

#[test]
fn the_io_bitmap_grants_ports_as_xen_reads_it() {
    let mut g = boot();
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    let hgp = SYNTH_VIRT_BASE + 0x100_0600;
    g.v.trap_ctxt[13] = TrapInfo { vector: 13, flags: 0, cs: 0, _pad: 0, address: hgp };
    // Linux's TSS bitmap: all ones (no access) but ports 0x40-0x47 and 0x2e8.
    let bitmap = SYNTH_VIRT_BASE + 0x100_2000;
    let mut bits = vec![0xffu8; 8192];
    bits[8] = 0;
    bits[0x2e8 / 8] &= !(1 << (0x2e8 % 8));
    g.p.copy_to_guest(bitmap, &bits).unwrap();
    let arg = SYNTH_VIRT_BASE + 0x100_1f00;
    let set = |g: &mut Guest, ptr: u64, nr: u64| {
        put(g, arg, &[ptr, nr]);
        hypercall(g, __HYPERVISOR_physdev_op, [PHYSDEVOP_set_iobitmap, arg, 0, 0, 0])
    };
    assert_eq!(set(&mut g, bitmap, 65537), -XEN_EINVAL, "more ports than there are");
    assert_eq!(set(&mut g, HYPERVISOR_VIRT_START, 1024), -XEN_EINVAL, "a bitmap in Xen's range");
    assert_eq!(set(&mut g, bitmap, 0x400), 0);
    // The kernel (ring 1, IOPL 0): allowed ports read all ones, others #GP.
    let r = gp_insn(&mut g, &[0xe4, 0x42], |r| r.rax = 0x1200);
    assert_eq!((r.rip, r.rax), (rip + 2, 0x12ff));
    let dx = |port: u64| move |r: &mut GuestRegs| r.rdx = port;
    assert_eq!(gp_insn(&mut g, &[0x66, 0xed], dx(0x46)).rip, rip + 2, "0x46-0x47 both allowed");
    assert_eq!(gp_insn(&mut g, &[0x66, 0xed], dx(0x47)).rip, hgp, "0x48 is not");
    assert_eq!(gp_insn(&mut g, &[0xec], dx(0x2e8)).rip, rip + 1);
    assert_eq!(gp_insn(&mut g, &[0xec], dx(0x2e9)).rip, hgp);
    // Beyond nr_ports nothing is allowed, whatever the bitmap says.
    assert_eq!(set(&mut g, bitmap, 0x2e8), 0);
    assert_eq!(gp_insn(&mut g, &[0xec], dx(0x2e8)).rip, hgp);
    // An unreadable bitmap allows nothing.
    assert_eq!(set(&mut g, 0x7fff_ffff_0000, 0x400), 0);
    assert_eq!(gp_insn(&mut g, &[0xe4, 0x42], |_| ()).rip, hgp);
}

#[test]
fn debug_registers_as_xen_keeps_them_and_the_cpu_fires_them() {
    let mut g = boot();
    let set = |g: &mut Guest, reg: u64, v: u64| hypercall(g, __HYPERVISOR_set_debugreg, [reg, v, 0, 0, 0]);
    let get = |g: &mut Guest, reg: u64| hypercall(g, __HYPERVISOR_get_debugreg, [reg, 0, 0, 0, 0]);
    let watched = SYNTH_VIRT_BASE + 0x100_3000;
    assert_eq!(set(&mut g, 0, watched), 0);
    assert_eq!(g.p.debugregs[0], watched, "loaded into the CPU");
    assert_eq!(set(&mut g, 1, HYPERVISOR_VIRT_START + 0x1000), -XEN_EPERM, "no breakpoints in Cocoon");
    // DR7: a 4-byte write watchpoint on DR0; reserved bits forced.
    let dr7 = 1 | 1 << 16 | 3 << 18;
    assert_eq!(set(&mut g, 7, dr7 | 1 << 40), -XEN_EINVAL, "bits 32-63 are reserved");
    assert_eq!(set(&mut g, 7, dr7 | 1 << 11 | 1 << 12), 0);
    assert_eq!(g.p.debugregs[7], dr7 | X86_DR7_DEFAULT);
    assert_eq!(get(&mut g, 7), (dr7 | X86_DR7_DEFAULT) as i64);
    assert_eq!(set(&mut g, 7, dr7 | DR_GENERAL_DETECT), -XEN_EPERM, "GD is Xen's");
    assert_eq!(set(&mut g, 7, 1 | DR_IO << 16), -XEN_EPERM, "I/O breakpoints need CR4.DE");
    assert_eq!((set(&mut g, 8, 0), get(&mut g, 8)), (-XEN_ENODEV, -XEN_ENODEV));
    // Without CR4.DE, DR4 and DR5 are DR6 and DR7.
    assert_eq!(get(&mut g, 5), (dr7 | X86_DR7_DEFAULT) as i64);
    assert_eq!(set(&mut g, 6, 0), 0);
    assert_eq!(get(&mut g, 4), X86_DR6_DEFAULT as i64);
    // The watchpoint fires in the guest: the CPU's DR6 (B0, and BS as if
    // single-stepping too) goes to the vCPU's, the CPU's is reset, and the
    // guest's #DB handler runs.
    let hdb = SYNTH_VIRT_BASE + 0x100_0700;
    g.v.trap_ctxt[1] = TrapInfo { vector: 1, flags: 0, cs: 0, _pad: 0, address: hdb };
    g.p.debugregs[6] = X86_DR6_DEFAULT | 1 | 1 << 14;
    let mut r = kregs(&g);
    r.vector = TRAP_debug;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, hdb);
    assert_eq!(get(&mut g, 6), (X86_DR6_DEFAULT | 1 | 1 << 14) as i64);
    assert_eq!(g.p.debugregs[6], X86_DR6_DEFAULT);
    // Linux's handler clears it (set_debugreg(6, DR6_RESERVED)).
    assert_eq!(set(&mut g, 6, X86_DR6_DEFAULT), 0);
    assert_eq!(get(&mut g, 6), X86_DR6_DEFAULT as i64);
}

/// Registers of a guest-kernel write fault by an instruction storing through %rdi = `va`.
fn write_fault(g: &Guest, va: u64) -> GuestRegs {
    let mut r = kregs(g);
    r.vector = 14;
    r.error_code = PFEC_present | PFEC_write_access | PFEC_user_mode;
    r.rdi = va;
    r
}

#[test]
fn writes_to_live_l1_tables_are_emulated() {
    let mut g = boot();
    g.d.vm_assist.fetch_or(1 << VMASST_TYPE_writable_pagetables, std::sync::atomic::Ordering::Relaxed);
    // The L1 mapping the kernel image is itself mapped (read-only) in the initial mapping.
    let l1_pfn = g.layout.page_tables.pfn + 3; // L4, L3, L2, then the first L1
    let l1_va = g.layout.va_of_pfn(l1_pfn);
    let l1_mfn = BASE + l1_pfn;
    assert_eq!(g.d.lock().frames.get(l1_mfn).unwrap().ty, PageType::L1);
    let target_va = l1_va + 8 * 100; // entry 100
    let old = g.p.mem.read_u64(l1_mfn, 100);
    // mov %rsi,(%rdi) with a new read-only mapping of a data frame.
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    code(&mut g, rip, &[0x48, 0x89, 0x37]);
    let new = ((BASE + 0x200) << 12) | _PAGE_PRESENT;
    let mut r = write_fault(&g, target_va);
    r.rsi = new;
    g.p.cr2 = target_va;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, rip + 3, "emulated, not bounced");
    assert_eq!(g.p.mem.read_u64(l1_mfn, 100) & !(_PAGE_USER | _PAGE_GUEST_KERNEL), new);
    // xchg returns the old entry.
    code(&mut g, rip, &[0x48, 0x87, 0x07]);
    let mut r = write_fault(&g, target_va);
    r.rax = old;
    g.p.cr2 = target_va;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rax & PADDR_MASK, new & PADDR_MASK);
    assert_eq!(g.p.mem.read_u64(l1_mfn, 100), old);
    // The same xchg reported with CR2 = 0 (as the nested Xen 4.14/4.17 rig does):
    // the address comes from the instruction's operand.
    let mut r = write_fault(&g, target_va);
    r.rax = new;
    g.p.cr2 = 0;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, rip + 3, "emulated, not bounced");
    assert_eq!(r.rax, old);
    assert_eq!(g.p.mem.read_u64(l1_mfn, 100) & !(_PAGE_USER | _PAGE_GUEST_KERNEL), new);
    assert_eq!(g.v.stats.cr2_recovered, 1);
    code(&mut g, rip, &[0x48, 0x87, 0x07]);
    let mut r = write_fault(&g, target_va);
    r.rax = old;
    g.p.cr2 = target_va;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(g.p.mem.read_u64(l1_mfn, 100), old);
    // Other instructions at the same address, each run as itself (the
    // emulation remembers two decodes): or, mov, or.
    let or = [0x48, 0x09, 0x37]; // or %rsi,(%rdi)
    let mov = [0x48, 0x89, 0x37];
    for (bytes, rsi, want) in
        [(or, _PAGE_ACCESSED, old | _PAGE_ACCESSED), (mov, new, new), (or, _PAGE_DIRTY, new | _PAGE_DIRTY)]
    {
        code(&mut g, rip, &bytes);
        let mut r = write_fault(&g, target_va);
        r.rsi = rsi;
        g.p.cr2 = target_va;
        traps::guest_entry(ctx!(g), &mut g.p, &mut r);
        assert_eq!(r.rip, rip + 3, "{bytes:02x?}: emulated, not bounced");
        let got = g.p.mem.read_u64(l1_mfn, 100) & !(_PAGE_USER | _PAGE_GUEST_KERNEL);
        assert_eq!(got, want & !(_PAGE_USER | _PAGE_GUEST_KERNEL), "{bytes:02x?}");
    }
    // Mapping the L1 itself writable through a PTE write is refused: the #PF is bounced.
    g.v.trap_ctxt[14] = TrapInfo { vector: 14, flags: 0, cs: 0, _pad: 0, address: SYNTH_VIRT_BASE + 0x100_0700 };
    code(&mut g, rip, &[0x48, 0x89, 0x37]);
    let mut r = write_fault(&g, target_va);
    r.rsi = (l1_mfn << 12) | _PAGE_PRESENT | _PAGE_RW;
    g.p.cr2 = target_va;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, SYNTH_VIRT_BASE + 0x100_0700);
}

/// Deliver a #PF with CR2 read as 0 (the nested Xen 4.14/4.17 rig) for the
/// instruction `bytes` at the usual kernel RIP; the address the guest is told.
fn fault_with_cr2_lost(g: &mut Guest, bytes: &[u8], error_code: u64, set: impl Fn(&mut GuestRegs)) -> u64 {
    let mut r = kregs(g);
    if !bytes.is_empty() {
        code(g, r.rip, bytes);
    }
    r.vector = 14;
    r.error_code = error_code | PFEC_user_mode;
    set(&mut r);
    g.p.cr2 = 0;
    vcpu_info(g).arch.cr2 = 0xbad;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, SYNTH_VIRT_BASE + 0x100_0700, "bounced to the guest's handler");
    vcpu_info(g).arch.cr2
}

#[test]
fn page_faults_with_cr2_lost_are_located() {
    let mut g = boot();
    g.v.trap_ctxt[14] = TrapInfo { vector: 14, flags: 0, cs: 0, _pad: 0, address: SYNTH_VIRT_BASE + 0x100_0700 };
    let unmapped = SYNTH_VIRT_BASE + 0x4000_0000;
    assert!(translate(&g.p.mem, g.v.guest_table, unmapped).is_err());
    let (w, p) = (PFEC_write_access, PFEC_present);
    // rep movsb: the store side is not present, then the load side.
    let movsb = [0xf3, 0xa4];
    let at = fault_with_cr2_lost(&mut g, &movsb, w, |r| (r.rsi, r.rdi, r.rcx) = (BUF, unmapped + 0x10, 64));
    assert_eq!(at, unmapped + 0x10);
    let at = fault_with_cr2_lost(&mut g, &movsb, 0, |r| (r.rsi, r.rdi, r.rcx) = (unmapped + 0x20, BUF, 64));
    assert_eq!(at, unmapped + 0x20);
    // Both sides read-only (live L1 tables): a write fault is the store's, not the load's.
    let l1_va = g.layout.va_of_pfn(g.layout.page_tables.pfn + 3);
    let at = fault_with_cr2_lost(&mut g, &movsb, p | w, |r| (r.rsi, r.rdi, r.rcx) = (l1_va, l1_va + 0x1000, 8));
    assert_eq!(at, l1_va + 0x1000);
    // A store straddling into an unmapped page faults at that page.
    let movq = [0x48, 0x89, 0x07]; // mov %rax,(%rdi)
    let mut end = SYNTH_VIRT_BASE;
    while translate(&g.p.mem, g.v.guest_table, end).is_ok() {
        end += PAGE_SIZE;
    }
    let at = fault_with_cr2_lost(&mut g, &movq, w, |r| r.rdi = end - 4);
    assert_eq!(at, end);
    // The same store as the last instruction before an unmapped page: the
    // data address, not the page after the instruction.
    code(&mut g, end - 3, &movq);
    let at = fault_with_cr2_lost(&mut g, &[], w, |r| (r.rip, r.rdi) = (end - 3, unmapped + 0x40));
    assert_eq!(at, unmapped + 0x40);
    // push: the implicit stack store (by a guest process: the guest kernel's
    // own stack must stay good for the bounce).
    g.v.guest_table_user = g.v.guest_table;
    g.v.kernel_mode = false;
    let at = fault_with_cr2_lost(&mut g, &[0x50], w, |r| {
        (r.cs, r.ss) = (FLAT_USER_CS as u64, FLAT_USER_SS as u64);
        r.rsp = unmapped + 0x1000;
    });
    assert_eq!(at, unmapped + 0xff8);
    assert!(g.v.kernel_mode);
    // %fs-relative load, with the guest's FS base.
    g.p.wrmsr(0xc000_0100, unmapped);
    let at = fault_with_cr2_lost(&mut g, &[0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0], 0, |_| {});
    assert_eq!(at, unmapped + 0x28);
    // An instruction fetch from an unmapped page.
    let at = fault_with_cr2_lost(&mut g, &[], PFEC_insn_fetch, |r| r.rip = unmapped + 0x100);
    assert_eq!(at, unmapped + 0x100);
    let recovered = g.v.stats.cr2_recovered;
    assert_eq!(recovered, 8);
    // A real NULL dereference stays at 0.
    let at = fault_with_cr2_lost(&mut g, &[0x48, 0x8b, 0x00], 0, |r| r.rax = 0);
    assert_eq!(at, 0);
    assert_eq!(g.v.stats.cr2_recovered, recovered);
}

#[test]
fn console_output_and_input() {
    let mut g = boot();
    // console_io write goes straight out.
    put(&mut g, BUF, b"hello\n");
    assert_eq!(hypercall(&mut g, __HYPERVISOR_console_io, [0, 6, BUF, 0, 0]), 6);
    assert!(g.p.console_out.ends_with(b"hello\n"));
    // Input typed on the console reaches the guest's ring and raises its port.
    g.p.console_in.extend(b"ls\r");
    shim_core::hypercall::sched::tick(ctx!(g), &mut g.p);
    let ring = g.p.mem.frame(g.d.console.mfn);
    assert_eq!(&ring[..3], b"ls\r");
    assert_ne!(g.d.shared_info(&mut g.p).evtchn_pending[0] & (1 << 2), 0);
}

/// HYPERVISOR_iret back to the guest kernel (RPL 0 in the frame's CS).
fn iret_to_kernel(g: &mut Guest) -> GuestRegs {
    let sp = STACK_TOP - 0x100;
    let (rip, cs, ss) = (SYNTH_VIRT_BASE + 0x100_0100, FLAT_KERNEL_CS as u64 & !3, FLAT_KERNEL_SS as u64);
    put(g, sp, &[0, 0, 0, 0, rip, cs, X86_EFLAGS_IF, STACK_TOP, ss]);
    let mut r = kregs(g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_iret;
    r.rsp = sp;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    r
}

#[test]
fn nmis_reach_the_guests_handler_one_at_a_time() {
    let mut g = boot();
    let handler = SYNTH_VIRT_BASE + 0x100_0600;
    vcpu_info(&mut g).evtchn_upcall_mask = 0;
    let nmi = |g: &mut Guest| {
        let mut r = kregs(g);
        r.vector = TRAP_nmi;
        traps::guest_entry(ctx!(g), &mut g.p, &mut r);
        r
    };
    // No handler yet: the NMI is lost, as Xen loses it.
    assert_eq!(nmi(&mut g).rip, kregs(&g).rip);
    assert!(!g.v.nmi_pending && !g.v.nmi_masked);
    // Linux registers it (older kernels by CALLBACKTYPE_nmi, newer in the trap table).
    put(&mut g, ARGS_VA, &[CALLBACKTYPE_nmi as u64, handler]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_callback_op, [CALLBACKOP_register, ARGS_VA, 0, 0, 0]), 0);
    assert_eq!(g.v.trap_ctxt[2].address, handler);
    let r = nmi(&mut g);
    assert_eq!(r.rip, handler, "delivered like exception 2");
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_mask, 1, "events masked on entry");
    assert!(g.v.nmi_masked);
    // A second one waits for the handler's HYPERVISOR_iret.
    let r = nmi(&mut g);
    assert_eq!(r.rip, kregs(&g).rip, "not nested");
    assert!(g.v.nmi_pending);
    let r = iret_to_kernel(&mut g);
    assert_eq!(r.rip, handler, "the waiting NMI comes once the first handler returned");
    assert!(g.v.nmi_masked && !g.v.nmi_pending);
    // One latched while Cocoon ran wakes a blocked vCPU.
    iret_to_kernel(&mut g);
    assert!(!g.v.nmi_masked);
    g.p.nmi = true;
    let mut r = kregs(&g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_sched_op;
    r.rdi = SCHEDOP_block;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, handler, "SCHEDOP_block returns into the NMI handler");
}

#[test]
fn block_waits_for_the_timer() {
    let mut g = boot();
    put(&mut g, BUF, &[0u32, 0, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [1, BUF, 0, 0, 0]), 0);
    g.v.periodic_ns = 0;
    // set_singleshot_timer(now + 5 ms), then block.
    let deadline = g.p.now + 5_000_000;
    put(&mut g, BUF + 64, &[deadline, 0u64]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_vcpu_op, [8, 0, BUF + 64, 0, 0]), 0);
    let cb = SYNTH_VIRT_BASE + 0x100_0400;
    g.v.event = shim_core::domain::Callback { address: cb, mask_events: true };
    let mut r = kregs(&g);
    r.vector = ENTRY_SYSCALL;
    r.rax = __HYPERVISOR_sched_op;
    r.rdi = 1; // SCHEDOP_block
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert!(g.p.now >= deadline, "blocked until the deadline");
    assert_eq!(r.rip, cb, "woken by the timer event");
}

/// A scratch guest address the tests write hypercall arguments to.
const ARGS_VA: u64 = SYNTH_VIRT_BASE + 0x100_3000;

#[test]
fn forwarded_event_channels_and_timers_go_to_xen() {
    let mut g = boot_forwarded(Forward::default());
    put(&mut g, ARGS_VA, &7u32);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_send, ARGS_VA, 0, 0, 0]), 0);
    assert_eq!(g.p.xen_calls.last(), Some(&(__HYPERVISOR_event_channel_op, [EVTCHNOP_send, ARGS_VA, 0, 0, 0])));
    // set_timer_op becomes a single-shot vCPU timer; 0 stops it.
    hypercall(&mut g, __HYPERVISOR_set_timer_op, [123_456_789, 0, 0, 0, 0]);
    let (nr, a) = *g.p.xen_calls.last().unwrap();
    assert_eq!((nr, a[0], a[1]), (__HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 0));
    hypercall(&mut g, __HYPERVISOR_set_timer_op, [0, 0, 0, 0, 0]);
    assert_eq!(g.p.xen_calls.last().unwrap().1[0], VCPUOP_stop_singleshot_timer);
    // The guest's vCPU timers are Xen's; the runstate area stays Cocoon's.
    let n = g.p.xen_calls.len();
    hypercall(&mut g, __HYPERVISOR_vcpu_op, [VCPUOP_stop_periodic_timer, 0, 0, 0, 0]);
    assert_eq!(g.p.xen_calls.len(), n + 1);
    put(&mut g, ARGS_VA, &0u64);
    hypercall(&mut g, __HYPERVISOR_vcpu_op, [VCPUOP_register_runstate_memory_area, 0, ARGS_VA, 0, 0]);
    assert_eq!(g.p.xen_calls.len(), n + 1);
    // Xen keeps the guest's time: Cocoon writes no pvclock of its own.
    let before = vcpu_info(&mut g).time.version;
    ctx!(g).update_time(&mut g.p);
    assert_eq!(vcpu_info(&mut g).time.version, before);
}

#[test]
fn forwarded_grant_setup_maps_the_frames_into_cocoons_physmap() {
    let mut g = boot_forwarded(Forward::default());
    // {dom = DOMID_SELF, nr_frames = 2, status, frame_list}
    let list = ARGS_VA + 0x100;
    put(&mut g, ARGS_VA, &[DOMID_SELF as u64 | (2 << 32), 0, list]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_setup_table, ARGS_VA, 1, 0, 0]), 0);
    let frames: [u64; 2] = get(&mut g, list);
    assert_eq!(frames, [g.d.grant_mfns[0], g.d.grant_mfns[1]]);
    assert_eq!(get::<i16>(&mut g, ARGS_VA + 8), 0);
    let want: Vec<_> = (0..2).map(|i| (XENMAPSPACE_grant_table, i as u64, g.d.grant_mfns[i])).collect();
    assert_eq!(g.p.physmap_adds, want);
    // Asking again maps nothing new; a failing Xen gives the guest an error status.
    hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_setup_table, ARGS_VA, 1, 0, 0]);
    assert_eq!(g.p.physmap_adds.len(), 2);
    g.p.xen = Some(-XEN_EINVAL);
    put(&mut g, ARGS_VA, &[DOMID_SELF as u64 | (3 << 32), 0, list]);
    hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_setup_table, ARGS_VA, 1, 0, 0]);
    assert_eq!(get::<i16>(&mut g, ARGS_VA + 8), -1);
    // Other grant operations are Xen's.
    g.p.xen = Some(0);
    hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_query_size, ARGS_VA, 1, 0, 0]);
    assert_eq!(g.p.xen_calls.last(), Some(&(__HYPERVISOR_grant_table_op, [GNTTABOP_query_size, ARGS_VA, 1, 0, 0])));
}

/// start_info's rings: (store_mfn, store_evtchn, console_mfn, console_evtchn).
fn rings_of(g: &mut Guest) -> (u64, u32, u64, u32) {
    let rsi = g.entry.rsi;
    (get(g, rsi + 56), get(g, rsi + 64), get(g, rsi + 72), get(g, rsi + 80))
}

/// SCHEDOP_shutdown(SHUTDOWN_suspend) as Linux's `xen_suspend` makes it:
/// start_info's ring frames turned into PFNs first, its frame in the third argument.
fn guest_suspends(g: &mut Guest) -> (i64, u64) {
    let si_mfn = g.d.physmap.mfn(g.layout.start_info.pfn);
    let rsi = g.entry.rsi;
    let (store_pfn, console_pfn) = (g.layout.xenstore.pfn, g.layout.console.pfn);
    let (store_mfn, _, console_mfn, _) = rings_of(g);
    assert_eq!((store_mfn, console_mfn), (g.d.physmap.mfn(store_pfn), g.d.physmap.mfn(console_pfn)));
    put(g, rsi + 56, &store_pfn);
    put(g, rsi + 72, &console_pfn);
    put(g, ARGS_VA, &SHUTDOWN_suspend);
    (hypercall(g, __HYPERVISOR_sched_op, [SCHEDOP_shutdown, ARGS_VA, si_mfn, 0, 0]), si_mfn)
}

#[test]
fn suspend_resumed_as_a_new_domain_rebuilds_what_a_pv_restore_does() {
    let mut g = boot_forwarded(Forward { suspend_cancel: true, ..Default::default() });
    let before = rings_of(&mut g);
    // The guest runs with its vcpu_info placed, grant frames set up, ports bound.
    let placed = [g.d.physmap.mfn(3), 0x40];
    let refs = g.d.lock().frames.get(placed[0]).unwrap().refs;
    put(&mut g, ARGS_VA + 0x100, &placed);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 0, ARGS_VA + 0x100), 0);
    assert_ne!(g.v.vcpu_info_maddr, g.d.shared_info_mfn << 12);
    put(&mut g, ARGS_VA, &[DOMID_SELF as u64 | (2 << 32), 0, ARGS_VA + 0x200]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_setup_table, ARGS_VA, 1, 0, 0]), 0);
    assert_eq!(g.p.physmap_adds.len(), 2);
    g.d.shared_info(&mut g.p).evtchn_pending[0] = 0b110;
    g.d.shared_info(&mut g.p).vcpu_info[1].evtchn_upcall_mask = 0;
    g.p.suspend = Ok(HostSuspend::Resumed { store_evtchn: 5, console_evtchn: Some(6) });
    let (rc, _) = guest_suspends(&mut g);
    assert_eq!(rc, 0, "resumed in a new domain");
    // start_info as a PV restore leaves it: frames again, the new domain's ports.
    assert_eq!(rings_of(&mut g), (before.0, 5, before.2, 6));
    // Every port masked, nothing pending, every legacy vcpu_info masked.
    let si = g.d.shared_info(&mut g.p);
    assert!(si.evtchn_mask.iter().all(|&w| w == !0) && si.evtchn_pending.iter().all(|&w| w == 0));
    assert!(si.vcpu_info.iter().all(|v| v.evtchn_upcall_mask == 1 && v.evtchn_upcall_pending == 0));
    // The vcpu_info placement is gone (Xen takes a new one), and so are the grant frames.
    assert_eq!(g.v.vcpu_info_maddr, g.d.shared_info_mfn << 12);
    assert!(!g.d.vcpus[0].vcpu_info_registered.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(
        g.d.lock().frames.get(placed[0]).unwrap().refs,
        refs,
        "Cocoon's hold on the old vcpu_info frame is gone"
    );
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 0, ARGS_VA + 0x100), 0);
    put(&mut g, ARGS_VA, &[DOMID_SELF as u64 | (2 << 32), 0, ARGS_VA + 0x200]);
    hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_setup_table, ARGS_VA, 1, 0, 0]);
    assert_eq!(g.p.physmap_adds.len(), 4, "gnttab_resume maps the frames into the new domain");
}

#[test]
fn suspend_cancelled_or_refused_changes_nothing() {
    let mut g = boot_forwarded(Forward { suspend_cancel: true, ..Default::default() });
    put(&mut g, ARGS_VA, &[DOMID_SELF as u64 | (1 << 32), 0, ARGS_VA + 0x200]);
    hypercall(&mut g, __HYPERVISOR_grant_table_op, [GNTTABOP_setup_table, ARGS_VA, 1, 0, 0]);
    g.d.shared_info(&mut g.p).evtchn_mask[0] = 0;
    g.p.suspend = Ok(HostSuspend::Cancelled);
    let (rc, _) = guest_suspends(&mut g);
    assert_eq!(rc, 1, "the suspend-cancel return");
    assert_eq!(rings_of(&mut g).0, g.layout.xenstore.pfn, "the guest converts its own PFNs back");
    let (rsi, store, console) = (g.entry.rsi, g.d.store_mfn, g.d.console.mfn);
    put(&mut g, rsi + 56, &store);
    put(&mut g, rsi + 72, &console);
    assert_eq!(g.d.shared_info(&mut g.p).evtchn_mask[0], 0);
    assert_eq!(g.d.lock().grant_frames_set_up, 1);
    // Xen refused: its error. A start_info frame that is not the guest's: -EINVAL.
    g.p.suspend = Err(-XEN_EPERM);
    assert_eq!(guest_suspends(&mut g).0, -XEN_EPERM);
    put(&mut g, ARGS_VA, &SHUTDOWN_suspend);
    let rc = hypercall(&mut g, __HYPERVISOR_sched_op, [SCHEDOP_shutdown, ARGS_VA, SHARED, 0, 0]);
    assert_eq!(rc, -XEN_EINVAL);
    // Standalone there is no toolstack to save the domain.
    let mut g = boot();
    assert_eq!(guest_suspends(&mut g).0, -XEN_EOPNOTSUPP);
}

#[test]
fn level_upcalls_are_held_while_the_guest_masks_events() {
    let mut g = boot_forwarded(Forward { level: true, ..Default::default() });
    g.v.event = shim_core::domain::Callback { address: SYNTH_VIRT_BASE + 0x100_0800, mask_events: true };
    let vi = vcpu_info(&mut g);
    vi.evtchn_upcall_mask = 1;
    vi.evtchn_upcall_pending = 1;
    vi.evtchn_pending_sel = 1;
    shim_core::hypercall::forward::host_upcall(ctx!(g), &mut g.p);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0, "taken so Xen stops raising it");
    let mut r = kregs(&g);
    traps::exit_to_guest(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, kregs(&g).rip, "still masked: nothing delivered");
    // The guest unmasks: the upcall comes back and is delivered.
    vcpu_info(&mut g).evtchn_upcall_mask = 0;
    traps::exit_to_guest(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, SYNTH_VIRT_BASE + 0x100_0800);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 1);
    // Held again, then the guest blocks: SCHEDOP_block unmasks and returns at once.
    let vi = vcpu_info(&mut g);
    vi.evtchn_upcall_mask = 1;
    shim_core::hypercall::forward::host_upcall(ctx!(g), &mut g.p);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_sched_op, [SCHEDOP_block, 0, 0, 0, 0]), 0);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 1);
    // Taken while unmasked too; once the guest has handled every port, nothing comes back.
    shim_core::hypercall::forward::host_upcall(ctx!(g), &mut g.p);
    let vi = vcpu_info(&mut g);
    vi.evtchn_upcall_mask = 0;
    vi.evtchn_pending_sel = 0;
    let before = g.v.stats.bounces;
    let mut r = kregs(&g);
    traps::exit_to_guest(ctx!(g), &mut g.p, &mut r);
    assert_eq!(g.v.stats.bounces, before, "no spurious upcall");
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0);
    // With FIFO channels the selector says nothing: a held upcall always comes back.
    g.p.xen = Some(0);
    hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_init_control, ARGS_VA, 0, 0, 0]);
    vcpu_info(&mut g).evtchn_upcall_pending = 1;
    shim_core::hypercall::forward::host_upcall(ctx!(g), &mut g.p);
    traps::exit_to_guest(ctx!(g), &mut g.p, &mut r);
    assert_eq!(g.v.stats.bounces, before + 1, "the FIFO guest gets its upcall back");
}

#[test]
fn a_console_port_cocoon_serves_is_not_forwarded() {
    let console = LocalConsole { guest_port: 9, notify_port: 11 };
    let mut g = boot_forwarded(Forward { local_console: Some(console), ..Default::default() });
    let n = g.p.xen_calls.len();
    put(&mut g, ARGS_VA, &9u32);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_send, ARGS_VA, 0, 0, 0]), 0);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_close, ARGS_VA, 0, 0, 0]), 0);
    assert_eq!(g.p.xen_calls.len(), n, "served by Cocoon");
    // The rest of the port's life (unmask, status, vCPU) is Xen's, as are other ports.
    hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_unmask, ARGS_VA, 0, 0, 0]);
    put(&mut g, ARGS_VA, &10u32);
    hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_send, ARGS_VA, 0, 0, 0]);
    assert_eq!(g.p.xen_calls.len(), n + 2);
    assert!(g.p.cocoon_sends.is_empty(), "the guest's sends are not Cocoon's");
}

#[test]
fn console_input_on_a_real_xen_is_raised_by_xen() {
    // The guest may use FIFO event channels, which Cocoon does not see: the
    // input must be raised through Xen, not in shared_info's 2-level bitmaps.
    let console = LocalConsole { guest_port: 9, notify_port: 11 };
    let mut g = boot_forwarded(Forward { local_console: Some(console), ..Default::default() });
    g.p.console_in.extend(b"hi\r");
    shim_core::hypercall::sched::tick(ctx!(g), &mut g.p);
    assert_eq!(g.p.cocoon_sends, [11]);
    assert_eq!(g.d.shared_info(&mut g.p).evtchn_pending[0], 0);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0);
    let ring = g.p.mem.frame(g.d.console.mfn);
    let in_prod = u32::from_le_bytes(ring[3076..3080].try_into().unwrap());
    assert_eq!((&ring[..3], in_prod), (&b"hi\r"[..], 3));
    // Nothing new, nothing raised.
    shim_core::hypercall::sched::tick(ctx!(g), &mut g.p);
    assert_eq!(g.p.cocoon_sends, [11]);
}

/// A CPU of `vendor` (leaf 0 registers EBX, EDX, ECX) with MCE/MCA, the given
/// leaf 7 EDX, leaf 0x80000001 EDX and 0x80000008 EBX.
fn set_cpu(g: &mut Guest, vendor: [u32; 3], l7_edx: u32, lx1_edx: u32, lx8_ebx: u32) {
    let c = &mut g.p.cpuid_leaves;
    c.insert((0, 0), [0xd, vendor[0], vendor[2], vendor[1]]);
    c.insert((1, 0), [0x806f8, 0x800, 0, (1 << 7) | (1 << 14)]);
    c.insert((7, 0), [0, 0, 0, l7_edx]);
    c.insert((7, 2), [0; 4]);
    c.insert((0x8000_0000, 0), [0x8000_0008, 0, 0, 0]);
    c.insert((0x8000_0001, 0), [0, 0, 0, lx1_edx]);
    c.insert((0x8000_0008, 0), [0, lx8_ebx, 0, 0]);
}
const INTEL: [u32; 3] = [0x756e_6547, 0x4965_6e69, 0x6c65_746e];
const AMD: [u32; 3] = [0x6874_7541, 0x6974_6e65, 0x444d_4163];

#[test]
fn vmce_msrs_as_xen_on_intel() {
    use shim_core::traps::msr::{read, write, INTEL_GUEST_MCG_CAP};
    let mut g = boot();
    set_cpu(&mut g, INTEL, 0, 0, 0);
    // Through the rdmsr trap, as Linux's mce_rdmsrl (no fixup) does it.
    let rip = SYNTH_VIRT_BASE + 0x100_0100;
    code(&mut g, rip, &[0x0f, 0x32]);
    let mut r = kregs(&g);
    r.vector = 13;
    r.rcx = MSR_IA32_MCG_CAP as u64;
    traps::guest_entry(ctx!(g), &mut g.p, &mut r);
    assert_eq!((r.rip, (r.rdx << 32) | r.rax), (rip + 2, INTEL_GUEST_MCG_CAP));
    assert_eq!(INTEL_GUEST_MCG_CAP, MCG_SER_P | MCG_TES_P | MCG_CMCI_P | 2);
    let (d, p) = (ctx!(g), &mut g.p);
    assert_eq!(read(d, p, MSR_IA32_MCG_STATUS), Some(0));
    assert_eq!(read(d, p, MSR_IA32_MCG_CTL), Some(0), "no MCG_CTL_P: reads 0");
    assert_eq!(read(d, p, MSR_IA32_MCG_EXT_CTL), None, "no LMCE: #GP");
    // The two guest banks: CTL all ones, STATUS/ADDR/MISC clear.
    for bank in 0..2 {
        let base = MSR_IA32_MC0_CTL + 4 * bank;
        assert_eq!(read(d, p, base), Some(!0));
        for m in 1..4 {
            assert_eq!(read(d, p, base + m), Some(0));
        }
    }
    // Banks past the count, inside the architectural range, read 0 (Xen's vmce_rdmsr).
    assert_eq!(read(d, p, MSR_IA32_MC0_CTL + 4 * 2), Some(0));
    assert_eq!(read(d, p, MSR_IA32_MCx_MISC_LAST), Some(0));
    assert_eq!(read(d, p, MSR_IA32_MCx_MISC_LAST + 1), None);
    // Writes as Xen takes them.
    assert!(write(d, p, MSR_IA32_MCG_STATUS, 4));
    assert_eq!(read(d, p, MSR_IA32_MCG_STATUS), Some(4));
    assert!(write(d, p, MSR_IA32_MCG_CAP, 0), "MCG_CAP is read-only, the write is ignored");
    assert_eq!(read(d, p, MSR_IA32_MCG_CAP), Some(INTEL_GUEST_MCG_CAP));
    assert!(write(d, p, MSR_IA32_MCG_CTL, !0));
    assert!(write(d, p, MSR_IA32_MC0_CTL + 4, 0x1234), "MCi_CTL writes are ignored");
    assert_eq!(read(d, p, MSR_IA32_MC0_CTL + 4), Some(!0));
    assert!(write(d, p, MSR_IA32_MC0_STATUS + 4, 0));
    assert!(!write(d, p, MSR_IA32_MC0_STATUS + 4, 1), "non-zero MCi_STATUS: #GP");
    assert!(!write(d, p, MSR_IA32_MC0_ADDR, 1));
    assert!(!write(d, p, MSR_IA32_MC0_MISC, 1));
    assert!(!write(d, p, MSR_IA32_MCG_EXT_CTL, 0));
    // CMCI: CTL2 kept for the guest's banks only.
    assert!(write(d, p, MSR_IA32_MC0_CTL2 + 1, 0x4000_0001));
    assert_eq!(read(d, p, MSR_IA32_MC0_CTL2 + 1), Some(0x4000_0001));
    assert!(write(d, p, MSR_IA32_MC0_CTL2 + 2, 5));
    assert_eq!(read(d, p, MSR_IA32_MC0_CTL2 + 2), Some(0));
    // P5_MC_* read 0 and are read-only.
    assert_eq!(read(d, p, MSR_P5_MC_ADDR), Some(0));
    assert!(!write(d, p, MSR_P5_MC_TYPE, 0));
    // Intel-only MSRs.
    assert_eq!(read(d, p, MSR_IA32_FEATURE_CONTROL), Some(IA32_FEATURE_CONTROL_LOCK));
    assert!(!write(d, p, MSR_IA32_FEATURE_CONTROL, 1));
    assert!(write(d, p, MSR_IA32_UCODE_REV, 0));
    assert!(!write(d, p, MSR_IA32_UCODE_REV, 1));
    p.msrs.insert(MSR_IA32_UCODE_REV, 0xf0_0000_0000);
    assert_eq!(read(d, p, MSR_IA32_UCODE_REV), Some(0xf0_0000_0000));
    assert_eq!(read(d, p, MSR_K8_HWCR), None);
    assert_eq!(read(d, p, MSR_AMD64_DE_CFG), None);
    assert_eq!(read(d, p, MSR_IA32_PERF_STATUS), Some(0));
    assert!(write(d, p, MSR_IA32_PERF_CTL, 0x1234));
}

#[test]
fn vmce_and_amd_msrs_as_xen_on_amd() {
    use shim_core::traps::msr::{read, write, AMD_GUEST_MCG_CAP};
    let mut g = boot();
    set_cpu(&mut g, AMD, 0, 0, 0);
    let (d, p) = (ctx!(g), &mut g.p);
    assert_eq!(read(d, p, MSR_IA32_MCG_CAP), Some(AMD_GUEST_MCG_CAP));
    assert_eq!(AMD_GUEST_MCG_CAP, 2);
    // No CMCI on AMD: CTL2 reads 0 and writes vanish.
    assert!(write(d, p, MSR_IA32_MC0_CTL2, 7));
    assert_eq!(read(d, p, MSR_IA32_MC0_CTL2), Some(0));
    assert_eq!(read(d, p, MSR_IA32_MC0_CTL + 4), Some(!0));
    // HWCR reads 0 (Linux reads it without a fixup), writes are dropped.
    assert_eq!(read(d, p, MSR_K8_HWCR), Some(0));
    assert!(write(d, p, MSR_K8_HWCR, 1 << 6));
    assert_eq!(read(d, p, MSR_AMD64_DE_CFG), Some(AMD64_DE_CFG_LFENCE_SERIALISE));
    assert!(write(d, p, MSR_AMD64_DE_CFG, 0));
    assert_eq!(read(d, p, MSR_IA32_FEATURE_CONTROL), None);
    assert!(!write(d, p, MSR_IA32_UCODE_REV, 0), "the write-0 ritual is Intel's");
    assert_eq!(read(d, p, MSR_IA32_PERF_STATUS), None);
    // Vendor-neutral answers.
    assert_eq!(read(d, p, MSR_INTEL_PLATFORM_INFO), Some(0));
    assert_eq!(read(d, p, MSR_INTEL_MISC_FEATURES_ENABLES), Some(0));
    assert!(write(d, p, MSR_INTEL_MISC_FEATURES_ENABLES, 0));
    assert!(!write(d, p, MSR_INTEL_MISC_FEATURES_ENABLES, 1), "no CPUID faulting to enable");
    assert_eq!(read(d, p, MSR_IA32_PERF_CAPABILITIES), Some(0));
    assert_eq!(read(d, p, MSR_IA32_MISC_ENABLE), Some(0x80_1801));
    assert!(write(d, p, MSR_IA32_MISC_ENABLE, 0), "Xen drops MISC_ENABLE writes");
    assert_eq!(read(d, p, MSR_ARCH_CAPABILITIES), None);
    assert_eq!(read(d, p, MSR_FAM10H_NODE_ID), None);
}

#[test]
fn msrs_follow_the_cpuid_the_guest_sees() {
    use shim_core::traps::msr::{read, write};
    let mut g = boot();
    // Nothing advertised: SPEC_CTRL, PRED_CMD and TSC_AUX fault.
    set_cpu(&mut g, INTEL, 0, 0, 0);
    let (d, p) = (ctx!(g), &mut g.p);
    assert_eq!(read(d, p, MSR_SPEC_CTRL), None);
    assert!(!write(d, p, MSR_SPEC_CTRL, 0));
    assert!(!write(d, p, MSR_PRED_CMD, 1));
    assert_eq!(read(d, p, MSR_TSC_AUX), None);
    assert!(!write(d, p, MSR_TSC_AUX, 1));
    // IBRSB (7.0 EDX 26) without SSBD; RDTSCP (0x80000001 EDX 27).
    set_cpu(&mut g, INTEL, 1 << 26, 1 << 27, 0);
    let (d, p) = (ctx!(g), &mut g.p);
    assert_eq!(read(d, p, MSR_SPEC_CTRL), Some(0));
    assert!(write(d, p, MSR_SPEC_CTRL, SPEC_CTRL_IBRS | SPEC_CTRL_STIBP));
    assert_eq!(read(d, p, MSR_SPEC_CTRL), Some(3));
    assert_eq!(p.msrs[&MSR_SPEC_CTRL], 3, "written through to the processor");
    assert!(!write(d, p, MSR_SPEC_CTRL, SPEC_CTRL_SSBD), "SSBD is not advertised");
    assert!(write(d, p, MSR_PRED_CMD, PRED_CMD_IBPB));
    assert!(!write(d, p, MSR_PRED_CMD, 2));
    assert_eq!(read(d, p, MSR_PRED_CMD), None, "write-only");
    assert!(write(d, p, MSR_TSC_AUX, 3));
    assert_eq!((read(d, p, MSR_TSC_AUX), p.msrs[&MSR_TSC_AUX]), (Some(3), 3));
    assert!(!write(d, p, MSR_TSC_AUX, 1 << 32));
    // AMD's SSBD (0x80000008 EBX 24) with IBRS (EBX 14).
    set_cpu(&mut g, AMD, 0, 0, (1 << 14) | (1 << 24));
    let (d, p) = (ctx!(g), &mut g.p);
    assert!(write(d, p, MSR_SPEC_CTRL, SPEC_CTRL_SSBD));
    assert!(!write(d, p, MSR_PRED_CMD, 1), "no IBPB advertised");
    // Features whose MSRs a PV guest does not get are hidden, not left to fault.
    let cpuid = |leaf, hw| shim_core::traps::cpuid::guest_cpuid(leaf, 0, hw, false);
    let l7 = cpuid(7, [0, !0, !0, !0]);
    assert_eq!(l7[3] & ((1 << 29) | (1 << 30) | (1 << 28) | (1 << 13) | (1 << 9)), 0);
    assert_eq!(l7[3] & (1 << 26), 1 << 26, "IBRSB stays: SPEC_CTRL is emulated");
    assert_eq!(l7[1] & (1 << 1), 0, "TSC_ADJUST");
    assert_eq!(cpuid(0x8000_0001, [!0; 4])[2] & ((1 << 19) | (1 << 9)), 0, "NODEID_MSR, OSVW");
    assert_eq!(cpuid(0xa, [!0; 4]), [0; 4], "no vPMU");
    assert_eq!(cpuid(1, [!0; 4])[3] & ((1 << 7) | (1 << 14)), (1 << 7) | (1 << 14), "MCE, MCA: vMCE");
}

#[test]
fn unknown_msrs_fault_and_are_logged_once() {
    use shim_core::traps::msr::{read, write};
    let mut g = boot();
    let (d, p) = (ctx!(g), &mut g.p);
    assert_eq!(read(d, p, MSR_MTRRcap), None);
    assert_eq!(read(d, p, MSR_MTRRcap), None);
    assert!(!write(d, p, MSR_MTRRdefType, 0));
    assert!(!write(d, p, MSR_AMD64_LS_CFG, 0));
    assert_eq!(d.v.msr.logged, vec![MSR_MTRRcap, MSR_MTRRdefType, MSR_AMD64_LS_CFG]);
}

// --- Several vCPUs: what one vCPU does to another (vCPU 0 calls, the others
// are reached through their VcpuShared, as on separate CPUs). ---

/// Small hypercall arguments, clear of the vcpu_guest_context at BUF.
const ARG: u64 = BUF + 0x1800;

fn vcpu_op(g: &mut Guest, cmd: u64, vcpu: u64, arg: u64) -> i64 {
    hypercall(g, __HYPERVISOR_vcpu_op, [cmd, vcpu, arg, 0, 0])
}

/// `VCPUOP_initialise` + `VCPUOP_up` for `vcpu`, starting at `rip` on the
/// current kernel tables.
fn bring_up(g: &mut Guest, vcpu: u64, rip: u64) {
    // SAFETY: plain integers; all-zero is valid.
    let mut ctx: VcpuGuestContext = unsafe { core::mem::zeroed() };
    ctx.user_regs.rip = rip;
    ctx.user_regs.rsp = STACK_TOP - 0x400;
    ctx.user_regs.rflags = 0x1000; // IOPL 1, as Linux passes it
    ctx.kernel_sp = STACK_TOP - 0x200;
    ctx.kernel_ss = FLAT_KERNEL_SS as u64;
    ctx.event_callback_eip = SYNTH_VIRT_BASE + 0x100_0800;
    ctx.ctrlreg[3] = g.v.guest_table << 12;
    ctx.gs_base_kernel = 0xffff_8880_0000_1000;
    put(g, BUF, &ctx);
    assert_eq!(vcpu_op(g, VCPUOP_initialise, vcpu, BUF), 0);
    assert_eq!(vcpu_op(g, VCPUOP_is_up, vcpu, 0), 0, "initialised, still down");
    assert_eq!(vcpu_op(g, VCPUOP_up, vcpu, 0), 0);
}

#[test]
fn smp_vcpus_come_up_from_their_context() {
    let mut g = boot_with(None, 2);
    assert_eq!(vcpu_op(&mut g, VCPUOP_is_up, 0, 0), 1);
    assert_eq!(vcpu_op(&mut g, VCPUOP_is_up, 1, 0), 0);
    assert_eq!(vcpu_op(&mut g, VCPUOP_is_up, 2, 0), -XEN_ENOENT, "only the vCPUs the domain has");
    assert_eq!(vcpu_op(&mut g, VCPUOP_up, 1, 0), -XEN_EINVAL, "not initialised");
    // vcpu_info for the down vCPU, as Linux registers all of them at boot.
    let t = translate(&g.p.mem, g.v.guest_table, ARG + 0x100).unwrap();
    put(&mut g, ARG, &[t.mfn, (ARG + 0x100) & 0xfff]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 1, ARG), 0);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 1, ARG), -XEN_EINVAL, "once only");
    let l4 = g.v.guest_table;
    let refs = g.d.lock().frames.get(l4).unwrap().type_count;
    bring_up(&mut g, 1, SYNTH_VIRT_BASE + 0x100_0100);
    assert_eq!(g.d.lock().frames.get(l4).unwrap().type_count, refs + 1, "the base table is referenced");
    assert_eq!(g.p.started, vec![1]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_is_up, 1, 0), 1);
    assert_eq!(vcpu_op(&mut g, VCPUOP_initialise, 1, BUF), -XEN_EEXIST);
    let gdt = Box::leak(vec![0u64; FIRST_RESERVED_GDT_ENTRY].into_boxed_slice());
    let st = shim_core::hypercall::vcpu::start_context(&g.d.vcpus[1], 1, gdt).expect("a context");
    assert_eq!(st.regs.rip, SYNTH_VIRT_BASE + 0x100_0100);
    assert_eq!((st.regs.cs, st.regs.ss), (FLAT_KERNEL_CS as u64, FLAT_KERNEL_SS as u64));
    assert_eq!(st.regs.rflags & X86_EFLAGS_IOPL, 0, "IOPL is virtual");
    assert_eq!(st.vcpu.iopl, 1);
    assert_eq!(st.vcpu.guest_table, l4);
    assert_eq!(st.vcpu.vcpu_info_maddr, (t.mfn << 12) | ((ARG + 0x100) & 0xfff));
    assert!(st.vcpu.kernel_mode && st.vcpu.id == 1);
    assert_eq!(st.bases[1], 0xffff_8880_0000_1000);
    assert!(shim_core::hypercall::vcpu::start_context(&g.d.vcpus[1], 1, st.vcpu.gdt).is_none(), "taken once");
    // Another vCPU taken down: marked down and kicked so its CPU parks it.
    assert_eq!(vcpu_op(&mut g, VCPUOP_down, 1, 0), 0);
    assert_eq!(vcpu_op(&mut g, VCPUOP_is_up, 1, 0), 0);
    assert_eq!(g.p.kicks.last(), Some(&1));
    // Down on itself: the platform parks it after the hypercall.
    assert_eq!(vcpu_op(&mut g, VCPUOP_down, 0, 0), 0);
    assert!(g.v.going_down);
}

#[test]
fn smp_events_reach_the_vcpu_they_are_bound_to() {
    let mut g = boot_with(None, 2);
    let t = translate(&g.p.mem, g.v.guest_table, ARG + 0x100).unwrap();
    put(&mut g, ARG, &[t.mfn, (ARG + 0x100) & 0xfff]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 1, ARG), 0);
    let vi1 = |g: &mut Guest| -> VcpuInfo { get(g, ARG + 0x100) };
    let mut v = vi1(&mut g);
    (v.evtchn_upcall_pending, v.evtchn_pending_sel) = (0, 0);
    put(&mut g, ARG + 0x100, &v);

    // An IPI port for vCPU 1, sent from vCPU 0.
    put(&mut g, ARG, &[1u32, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_ipi, ARG, 0, 0, 0]), 0);
    let port: u32 = get(&mut g, ARG + 4);
    put(&mut g, ARG, &port);
    g.p.kicks.clear();
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_send, ARG, 0, 0, 0]), 0);
    let v = vi1(&mut g);
    assert_eq!(v.evtchn_upcall_pending, 1);
    assert_eq!(v.evtchn_pending_sel, 1 << (port / 64));
    assert_eq!(g.p.kicks, vec![1], "vCPU 1 is kicked");
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0, "vCPU 0 is not told");
    // IPI ports stay on their vCPU.
    put(&mut g, ARG, &[port, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_vcpu, ARG, 0, 0, 0]), -XEN_EINVAL);

    // VIRQ_TIMER per vCPU; global VIRQs only on vCPU 0.
    put(&mut g, ARG, &[VIRQ_TIMER, 1, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_virq, ARG, 0, 0, 0]), 0);
    let timer1: u32 = get(&mut g, ARG + 8);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_virq, ARG, 0, 0, 0]), -XEN_EEXIST);
    put(&mut g, ARG, &[VIRQ_TIMER, 0, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_virq, ARG, 0, 0, 0]), 0);
    let timer0: u32 = get(&mut g, ARG + 8);
    assert_ne!(timer0, timer1);
    put(&mut g, ARG, &[VIRQ_CONSOLE, 1, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_virq, ARG, 0, 0, 0]), -XEN_EINVAL);
    // vCPU 0's timer raises its own port only.
    ctx!(g).raise_virq(&mut g.p, VIRQ_TIMER);
    let si = g.d.shared_info(&mut g.p);
    assert_ne!(si.evtchn_pending[timer0 as usize / 64] & (1 << (timer0 % 64)), 0);
    assert_eq!(si.evtchn_pending[timer1 as usize / 64] & (1 << (timer1 % 64)), 0);
    // Status names the vCPU; closing frees the binding for a new one.
    put(&mut g, ARG, &[0u32, timer1, 0, 0, 0, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_status, ARG, 0, 0, 0]), 0);
    let st: [u32; 4] = get(&mut g, ARG + 8);
    assert_eq!(st, [EVTCHNSTAT_VIRQ, 1, VIRQ_TIMER, 0]);
    put(&mut g, ARG, &timer1);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_close, ARG, 0, 0, 0]), 0);
    put(&mut g, ARG, &[VIRQ_TIMER, 1, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_virq, ARG, 0, 0, 0]), 0);

    // An unbound port moves to vCPU 1 with bind_vcpu; unmasking it there kicks vCPU 1.
    put(&mut g, ARG, &[0u32, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_alloc_unbound, ARG, 0, 0, 0]), 0);
    let un: u32 = get(&mut g, ARG + 4);
    put(&mut g, ARG, &[un, 1]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_bind_vcpu, ARG, 0, 0, 0]), 0);
    {
        let si = g.d.shared_info(&mut g.p);
        si.evtchn_mask[un as usize / 64] |= 1 << (un % 64);
        si.evtchn_pending[un as usize / 64] |= 1 << (un % 64);
    }
    let mut v = vi1(&mut g);
    (v.evtchn_upcall_pending, v.evtchn_pending_sel) = (0, 0);
    put(&mut g, ARG + 0x100, &v);
    g.p.kicks.clear();
    put(&mut g, ARG, &un);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_event_channel_op, [EVTCHNOP_unmask, ARG, 0, 0, 0]), 0);
    assert_eq!(vi1(&mut g).evtchn_upcall_pending, 1);
    assert_eq!(g.p.kicks, vec![1]);
}

// --- FIFO event channels, standalone (events::fifo) ---

/// Data pages of the synthetic kernel for the FIFO control blocks (vCPU n's
/// at offset 0x100 * n) and the first event-array page.
const FIFO_CTL: u64 = SYNTH_VIRT_BASE + 0x100_4000;
const FIFO_ARRAY: u64 = SYNTH_VIRT_BASE + 0x100_3000;

fn evtchn_op(g: &mut Guest, cmd: u64, arg: u64) -> i64 {
    hypercall(g, __HYPERVISOR_event_channel_op, [cmd, arg, 0, 0, 0])
}

fn mfn_of(g: &Guest, va: u64) -> u64 {
    translate(&g.p.mem, g.v.guest_table, va).unwrap().mfn
}

/// EVTCHNOP_init_control: the result and the link_bits written back.
fn init_control(g: &mut Guest, vcpu: u32, mfn: u64, offset: u32) -> (i64, u8) {
    put(g, ARG, &EvtchnInitControl { control_gfn: mfn, offset, vcpu, link_bits: 0xaa, _pad: [0; 7] });
    let rc = evtchn_op(g, EVTCHNOP_init_control, ARG);
    (rc, get::<EvtchnInitControl>(g, ARG).link_bits)
}

fn expand_array(g: &mut Guest, mfn: u64) -> i64 {
    put(g, ARG, &EvtchnExpandArray { array_gfn: mfn });
    evtchn_op(g, EVTCHNOP_expand_array, ARG)
}

fn set_priority(g: &mut Guest, port: u32, priority: u32) -> i64 {
    put(g, ARG, &EvtchnSetPriority { port, priority });
    evtchn_op(g, EVTCHNOP_set_priority, ARG)
}

fn bind_ipi(g: &mut Guest, vcpu: u32) -> u32 {
    put(g, ARG, &EvtchnBindIpi { vcpu, port: 0 });
    assert_eq!(evtchn_op(g, EVTCHNOP_bind_ipi, ARG), 0);
    get::<EvtchnBindIpi>(g, ARG).port
}

fn bind_virq(g: &mut Guest, virq: u32, vcpu: u32) -> u32 {
    put(g, ARG, &EvtchnBindVirq { virq, vcpu, port: 0 });
    assert_eq!(evtchn_op(g, EVTCHNOP_bind_virq, ARG), 0);
    get::<EvtchnBindVirq>(g, ARG).port
}

fn send(g: &mut Guest, port: u32) {
    put(g, ARG, &port);
    assert_eq!(evtchn_op(g, EVTCHNOP_send, ARG), 0);
}

fn word(g: &mut Guest, port: u32) -> u32 {
    get(g, FIFO_ARRAY + port as u64 * 4)
}

fn set_word(g: &mut Guest, port: u32, w: u32) {
    put(g, FIFO_ARRAY + port as u64 * 4, &w);
}

fn control_block(g: &mut Guest, vcpu: u32) -> EvtchnFifoControlBlock {
    get(g, FIFO_CTL + 0x100 * vcpu as u64)
}

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;

/// Linux's `evtchn_fifo_unmask`: clear MASKED itself unless the event is
/// pending, in which case Xen unmasks it (and links it).
fn guest_unmask(g: &mut Guest, port: u32) {
    let w = word(g, port);
    if w & PENDING == 0 {
        set_word(g, port, w & !MASKED);
    } else {
        put(g, ARG, &port);
        assert_eq!(evtchn_op(g, EVTCHNOP_unmask, ARG), 0);
    }
}

/// A guest as Linux sets FIFO up: vCPU 0's control block, then one
/// event-array page with every event masked (`init_array_page`).
fn fifo_guest(nr_vcpus: u32) -> Guest {
    let mut g = boot_with(None, nr_vcpus);
    let (ctl, array) = (mfn_of(&g, FIFO_CTL), mfn_of(&g, FIFO_ARRAY));
    g.p.frame_mut(ctl).fill(0);
    assert_eq!(init_control(&mut g, 0, ctl, 0), (0, EVTCHN_FIFO_LINK_BITS as u8));
    for port in 0..1024 {
        set_word(&mut g, port, MASKED);
    }
    assert_eq!(expand_array(&mut g, array), 0);
    vcpu_info(&mut g).evtchn_upcall_pending = 0;
    g
}

#[test]
fn fifo_init_control_checks_as_xen() {
    let mut g = boot();
    let ctl = mfn_of(&g, FIFO_CTL);
    let l4 = g.v.guest_table;
    let before = refs(&g, ctl);
    // Before any control block: no event array, no priorities.
    let ipi = bind_ipi(&mut g, 0);
    let array = mfn_of(&g, FIFO_ARRAY);
    assert_eq!(expand_array(&mut g, array), -XEN_EOPNOTSUPP);
    assert_eq!(set_priority(&mut g, ipi, 3), -XEN_ENOSYS, "2-level has no priorities");
    assert_eq!(init_control(&mut g, 1, ctl, 0), (-XEN_ENOENT, 0xaa), "no such vCPU; nothing written back");
    assert_eq!(init_control(&mut g, 0, ctl, 4096 - 72 + 8).0, -XEN_EINVAL, "past the page");
    assert_eq!(init_control(&mut g, 0, ctl, 4).0, -XEN_EINVAL, "not 8-aligned");
    assert_eq!(init_control(&mut g, 0, SHARED, 0).0, -XEN_EINVAL, "not the guest's RAM");
    assert_eq!(init_control(&mut g, 0, l4, 0).0, -XEN_EINVAL, "a page table");
    assert_eq!(init_control(&mut g, 0, 1 << 40, 0).0, -XEN_EINVAL, "no such frame");
    assert!(!g.d.fifo.load(std::sync::atomic::Ordering::Relaxed), "still 2-level");
    assert_eq!(refs(&g, ctl), before);
    // The last offset that fits, 8-aligned: the domain is FIFO now.
    assert_eq!(init_control(&mut g, 0, ctl, 4096 - 72), (0, EVTCHN_FIFO_LINK_BITS as u8));
    assert!(g.d.fifo.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(refs(&g, ctl), (before.0 + 1, before.1 + 1, before.2 + 1), "held writable");
    assert_eq!(init_control(&mut g, 0, ctl, 0).0, -XEN_EINVAL, "vCPU 0 has one");
    assert_eq!(refs(&g, ctl), (before.0 + 1, before.1 + 1, before.2 + 1));
    assert_eq!(set_priority(&mut g, ipi, 3), 0);
    // EVTCHNOP_reset: back to 2-level, the frame released.
    assert_eq!(evtchn_op(&mut g, EVTCHNOP_reset, ARG), 0);
    assert!(!g.d.fifo.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(refs(&g, ctl), before);
    send(&mut g, ipi);
    let si = g.d.shared_info(&mut g.p);
    assert_ne!(si.evtchn_pending[0] & (1 << ipi), 0, "raised in the 2-level bitmap again");
}

#[test]
fn fifo_expand_array_to_xens_limit() {
    let mut g = boot();
    let (ctl, array) = (mfn_of(&g, FIFO_CTL), mfn_of(&g, FIFO_ARRAY));
    assert_eq!(init_control(&mut g, 0, ctl, 0).0, 0);
    let before = refs(&g, array);
    assert_eq!(expand_array(&mut g, SHARED), -XEN_EINVAL, "not the guest's RAM");
    let l4 = g.v.guest_table;
    assert_eq!(expand_array(&mut g, l4), -XEN_EINVAL, "a page table");
    // Xen takes 128 pages (2^17 event words); one frame may serve as all of them.
    for _ in 0..EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES {
        assert_eq!(expand_array(&mut g, array), 0);
    }
    assert_eq!(expand_array(&mut g, array), -XEN_ENOSPC);
    assert_eq!(refs(&g, array).0, before.0 + EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES as u32);
    assert_eq!(g.d.evtchn_fifo.nr_events(), EVTCHN_FIFO_NR_CHANNELS);
    assert_eq!(evtchn_op(&mut g, EVTCHNOP_reset, ARG), 0);
    assert_eq!(refs(&g, array), before, "every page released");
    assert_eq!(g.d.evtchn_fifo.nr_events(), 0);
}

#[test]
fn fifo_set_priority_checks_port_and_priority() {
    let mut g = fifo_guest(1);
    let ipi = bind_ipi(&mut g, 0);
    assert_eq!(set_priority(&mut g, ipi, EVTCHN_FIFO_PRIORITY_MIN + 1), -XEN_EINVAL);
    assert_eq!(set_priority(&mut g, 100, 3), -XEN_EINVAL, "not bound");
    assert_eq!(set_priority(&mut g, 1 << 20, 3), -XEN_EINVAL, "no such port");
    assert_eq!(set_priority(&mut g, ipi, EVTCHN_FIFO_PRIORITY_MAX), 0);
    assert_eq!(g.d.evtchn_fifo.priority(ipi), 0);
    // A closed port's next binding starts at the default again.
    put(&mut g, ARG, &ipi);
    assert_eq!(evtchn_op(&mut g, EVTCHNOP_close, ARG), 0);
    assert_eq!(bind_ipi(&mut g, 0), ipi);
    assert_eq!(g.d.evtchn_fifo.priority(ipi), EVTCHN_FIFO_PRIORITY_DEFAULT);
}

#[test]
fn fifo_events_are_linked_on_their_queue_and_raise_the_upcall() {
    let mut g = fifo_guest(1);
    let cb = SYNTH_VIRT_BASE + 0x100_0400;
    g.v.event = shim_core::domain::Callback { address: cb, mask_events: true };
    let timer = bind_virq(&mut g, VIRQ_TIMER, 0);
    guest_unmask(&mut g, timer);
    assert_eq!(word(&mut g, timer), 0);
    ctx!(g).raise_virq(&mut g.p, VIRQ_TIMER);
    let prio = EVTCHN_FIFO_PRIORITY_DEFAULT as usize;
    assert_eq!(word(&mut g, timer), PENDING | LINKED, "linked, nothing after it");
    let c = control_block(&mut g, 0);
    assert_eq!((c.ready, c.head[prio]), (1 << prio, timer), "HEAD of the default queue, READY");
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 1);
    let si = g.d.shared_info(&mut g.p);
    assert_eq!(si.evtchn_pending[0], 0, "the 2-level bitmap is not used");
    // Raised again while pending and linked: nothing changes.
    ctx!(g).raise_virq(&mut g.p, VIRQ_TIMER);
    assert_eq!(word(&mut g, timer), PENDING | LINKED);
    // A second event on the same queue goes after it: the tail's LINK.
    let ipi = bind_ipi(&mut g, 0);
    guest_unmask(&mut g, ipi);
    send(&mut g, ipi);
    assert_eq!(word(&mut g, timer), PENDING | LINKED | ipi);
    assert_eq!(word(&mut g, ipi), PENDING | LINKED);
    assert_eq!(control_block(&mut g, 0).head[prio], timer, "HEAD stays");
    // The upcall reaches the guest's callback on the way out.
    vcpu_info(&mut g).evtchn_upcall_mask = 0;
    let mut r = kregs(&g);
    traps::exit_to_guest(ctx!(g), &mut g.p, &mut r);
    assert_eq!(r.rip, cb);
    // The guest consumes the queue as Linux does (clear READY, LINKED, PENDING).
    for port in [timer, ipi] {
        set_word(&mut g, port, 0);
    }
    put(&mut g, FIFO_CTL, &0u32);
    vcpu_info(&mut g).evtchn_upcall_pending = 0;
    // The queue is empty (its tail unlinked): the next event is its new HEAD.
    send(&mut g, ipi);
    assert_eq!(word(&mut g, ipi), PENDING | LINKED);
    let c = control_block(&mut g, 0);
    assert_eq!((c.ready, c.head[prio]), (1 << prio, ipi));
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 1);
    // Closing clears PENDING.
    put(&mut g, ARG, &ipi);
    assert_eq!(evtchn_op(&mut g, EVTCHNOP_close, ARG), 0);
    assert_eq!(word(&mut g, ipi) & PENDING, 0);
}

#[test]
fn fifo_masked_events_wait_for_unmask() {
    let mut g = fifo_guest(1);
    let ipi = bind_ipi(&mut g, 0);
    send(&mut g, ipi);
    assert_eq!(word(&mut g, ipi), PENDING | MASKED, "pending, not linked");
    assert_eq!(control_block(&mut g, 0).ready, 0);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0);
    assert!(g.d.port_pending(&mut g.p, ipi), "SCHEDOP_poll sees it");
    // SCHEDOP_poll on it returns at once.
    put(&mut g, ARG + 0x40, &ipi);
    put(&mut g, ARG, &[ARG + 0x40, 1, 0]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_sched_op, [SCHEDOP_poll, ARG, 0, 0, 0]), 0);
    guest_unmask(&mut g, ipi);
    assert_eq!(word(&mut g, ipi), PENDING | LINKED);
    let c = control_block(&mut g, 0);
    let prio = EVTCHN_FIFO_PRIORITY_DEFAULT as usize;
    assert_eq!((c.ready, c.head[prio]), (1 << prio, ipi));
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 1);
}

#[test]
fn fifo_priorities_have_their_own_queues() {
    let mut g = fifo_guest(1);
    let (a, b) = (bind_ipi(&mut g, 0), bind_ipi(&mut g, 0));
    assert_eq!(set_priority(&mut g, b, 2), 0);
    for port in [a, b] {
        guest_unmask(&mut g, port);
        send(&mut g, port);
    }
    assert_eq!((word(&mut g, a), word(&mut g, b)), (PENDING | LINKED, PENDING | LINKED), "no link between them");
    let c = control_block(&mut g, 0);
    assert_eq!(c.ready, 1 << 7 | 1 << 2);
    assert_eq!((c.head[7], c.head[2]), (a, b));
}

#[test]
fn fifo_switch_and_late_pages_keep_pending_events() {
    let mut g = boot();
    let ipi = bind_ipi(&mut g, 0);
    send(&mut g, ipi); // pending in the 2-level bitmap
    let (ctl, array) = (mfn_of(&g, FIFO_CTL), mfn_of(&g, FIFO_ARRAY));
    g.p.frame_mut(ctl).fill(0);
    assert_eq!(init_control(&mut g, 0, ctl, 0).0, 0);
    let late = bind_ipi(&mut g, 0);
    send(&mut g, late); // no event word yet
    assert!(g.d.port_pending(&mut g.p, late));
    g.p.frame_mut(array).fill(0); // this time the guest leaves them unmasked
    vcpu_info(&mut g).evtchn_upcall_pending = 0;
    assert_eq!(expand_array(&mut g, array), 0);
    // Both are raised once the page is there, in port order.
    assert_eq!(word(&mut g, ipi), PENDING | LINKED | late);
    assert_eq!(word(&mut g, late), PENDING | LINKED);
    assert_eq!(control_block(&mut g, 0).head[7], ipi);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 1);
}

#[test]
fn smp_fifo_events_go_to_the_control_block_of_their_vcpu() {
    let mut g = fifo_guest(2);
    let t = translate(&g.p.mem, g.v.guest_table, ARG + 0x100).unwrap();
    put(&mut g, ARG, &[t.mfn, (ARG + 0x100) & 0xfff]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 1, ARG), 0);
    let mut v: VcpuInfo = get(&mut g, ARG + 0x100);
    v.evtchn_upcall_pending = 0;
    put(&mut g, ARG + 0x100, &v);
    let ctl = mfn_of(&g, FIFO_CTL);
    assert_eq!(init_control(&mut g, 1, ctl, 0x100), (0, EVTCHN_FIFO_LINK_BITS as u8));
    let ipi = bind_ipi(&mut g, 1);
    guest_unmask(&mut g, ipi);
    g.p.kicks.clear();
    send(&mut g, ipi);
    let prio = EVTCHN_FIFO_PRIORITY_DEFAULT as usize;
    let c1 = control_block(&mut g, 1);
    assert_eq!((c1.ready, c1.head[prio]), (1 << prio, ipi), "vCPU 1's queue");
    assert_eq!(control_block(&mut g, 0).ready, 0, "not vCPU 0's");
    assert_eq!(get::<VcpuInfo>(&mut g, ARG + 0x100).evtchn_upcall_pending, 1);
    assert_eq!(vcpu_info(&mut g).evtchn_upcall_pending, 0);
    assert_eq!(g.p.kicks, vec![1]);
    // A global VIRQ moved to vCPU 1 follows it: off vCPU 0's queue, onto vCPU 1's.
    let con = bind_virq(&mut g, VIRQ_CONSOLE, 0);
    guest_unmask(&mut g, con);
    ctx!(g).raise_virq(&mut g.p, VIRQ_CONSOLE);
    assert_eq!(control_block(&mut g, 0).head[prio], con);
    set_word(&mut g, con, 0); // consumed by vCPU 0
    put(&mut g, ARG, &[con, 1]);
    assert_eq!(evtchn_op(&mut g, EVTCHNOP_bind_vcpu, ARG), 0);
    g.d.send_to_vcpu(&mut g.p, 1, con);
    assert_eq!(word(&mut g, ipi), PENDING | LINKED | con, "after the IPI on vCPU 1's queue");
    // vCPU 0's queue forgot it: its next event there is a new HEAD.
    let ipi0 = bind_ipi(&mut g, 0);
    guest_unmask(&mut g, ipi0);
    put(&mut g, FIFO_CTL, &0u32);
    send(&mut g, ipi0);
    assert_eq!(word(&mut g, con), PENDING | LINKED, "not linked to from vCPU 0's queue");
    assert_eq!(control_block(&mut g, 0).head[prio], ipi0);
}

#[test]
fn smp_tlb_flushes_reach_the_vcpus_named() {
    let mut g = boot_with(None, 4);
    bring_up(&mut g, 2, SYNTH_VIRT_BASE + 0x100_0100);
    let mmuext = |g: &mut Guest, cmd: u32, arg1: u64, arg2: u64| {
        put(g, ARG, &(cmd as u64, arg1, arg2));
        hypercall(g, __HYPERVISOR_mmuext_op, [ARG, 1, 0, DOMID_SELF_U64, 0])
    };
    g.p.tlb_flushes.clear();
    assert_eq!(mmuext(&mut g, MMUEXT_TLB_FLUSH_ALL, 0, 0), 0);
    assert_eq!(g.p.tlb_flushes.last(), Some(&(0b101, None)), "every vCPU that is up");
    put(&mut g, ARG + 0x40, &0b1111u64);
    assert_eq!(mmuext(&mut g, MMUEXT_TLB_FLUSH_MULTI, 0, ARG + 0x40), 0);
    assert_eq!(g.p.tlb_flushes.last(), Some(&(0b101, None)), "the mask, less vCPUs that are down");
    put(&mut g, ARG + 0x40, &0b100u64);
    assert_eq!(mmuext(&mut g, MMUEXT_INVLPG_MULTI, BUF, ARG + 0x40), 0);
    assert_eq!(g.p.tlb_flushes.last(), Some(&(0b100, Some(BUF))));
    assert_eq!(mmuext(&mut g, MMUEXT_INVLPG_LOCAL, BUF, 0), 0);
    assert_eq!(g.p.tlb_flushes.last(), Some(&(0b1, Some(BUF))));
    assert_eq!(mmuext(&mut g, MMUEXT_TLB_FLUSH_MULTI, 0, 0x10), -XEN_EFAULT, "an unreadable mask");
    // update_va_mapping with UVMF_ALL and with a mask pointer (UVMF_MULTI).
    let l1e = l1e_of(&mut g, ARG);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_update_va_mapping, [ARG, l1e, UVMF_INVLPG | UVMF_ALL, 0, 0]), 0);
    assert_eq!(g.p.tlb_flushes.last(), Some(&(0b101, Some(ARG))));
    put(&mut g, ARG + 0x40, &0b100u64);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_update_va_mapping, [ARG, l1e, UVMF_TLB_FLUSH | (ARG + 0x40), 0, 0]), 0);
    assert_eq!(g.p.tlb_flushes.last(), Some(&(0b100, None)));
}

/// A page of the synthetic kernel's bss for the secondary time area.
const TIME_AREA: u64 = SYNTH_VIRT_BASE + 0x100_6000;

fn register_time_area(g: &mut Guest, vcpu: u64, va: u64) -> i64 {
    put(g, ARG, &VcpuRegisterTimeMemoryArea { addr: va });
    vcpu_op(g, VCPUOP_register_vcpu_time_memory_area, vcpu, ARG)
}

fn writable_refs(g: &mut Guest, va: u64) -> u32 {
    let mfn = translate(&g.p.mem, g.v.guest_table, va).unwrap().mfn;
    g.d.lock().frames.get(mfn).unwrap().writable()
}

fn time_fields(t: &VcpuTimeInfo) -> (u32, u64, u64, u32, i8, u8) {
    (t.version, t.tsc_timestamp, t.system_time, t.tsc_to_system_mul, t.tsc_shift, t.flags)
}

#[test]
fn pvclock_time_area_is_a_second_copy_of_vcpu_time() {
    let mut g = boot();
    ctx!(g).update_time(&mut g.p);
    let refs = writable_refs(&mut g, TIME_AREA);
    put(&mut g, TIME_AREA, &[0xaau8; 32]);
    assert_eq!(register_time_area(&mut g, 0, TIME_AREA), 0);
    assert_eq!(writable_refs(&mut g, TIME_AREA), refs + 1, "the frame is held while registered");
    // Written at once, with the primary's values and versions (even: done).
    let copy: VcpuTimeInfo = get(&mut g, TIME_AREA);
    let primary = vcpu_info(&mut g).time;
    assert_eq!(time_fields(&copy), time_fields(&primary));
    assert_eq!(copy.version % 2, 0);
    assert_eq!(copy.flags & XEN_PVCLOCK_TSC_STABLE_BIT, XEN_PVCLOCK_TSC_STABLE_BIT, "the vDSO needs it");
    assert_eq!(copy.system_time, g.p.now);

    // Every update writes it again: an explicit one, and the timer tick.
    g.p.now += 5_000_000;
    ctx!(g).update_time(&mut g.p);
    let copy: VcpuTimeInfo = get(&mut g, TIME_AREA);
    assert_eq!(time_fields(&copy), time_fields(&vcpu_info(&mut g).time));
    assert_eq!((copy.system_time, copy.tsc_timestamp), (g.p.now, g.p.now * 2));
    g.v.periodic_next = g.p.now + 1_000;
    g.p.now += 10_000_000;
    shim_core::hypercall::sched::tick(ctx!(g), &mut g.p);
    let copy: VcpuTimeInfo = get(&mut g, TIME_AREA);
    assert_eq!(time_fields(&copy), time_fields(&vcpu_info(&mut g).time));
    assert_eq!(copy.system_time, g.p.now, "the timer tick updates it");

    // Moved within the page: the frame stays held once; the new place is written.
    assert_eq!(register_time_area(&mut g, 0, TIME_AREA + 0x40), 0);
    assert_eq!(writable_refs(&mut g, TIME_AREA), refs + 1);
    let copy: VcpuTimeInfo = get(&mut g, TIME_AREA + 0x40);
    assert_eq!(time_fields(&copy), time_fields(&vcpu_info(&mut g).time));

    // NULL unregisters: the frame is released and no longer written.
    assert_eq!(register_time_area(&mut g, 0, 0), 0);
    assert_eq!(writable_refs(&mut g, TIME_AREA), refs);
    assert_eq!(g.v.time_area, None);
    let before: VcpuTimeInfo = get(&mut g, TIME_AREA + 0x40);
    g.p.now += 1_000_000;
    ctx!(g).update_time(&mut g.p);
    let after: VcpuTimeInfo = get(&mut g, TIME_AREA + 0x40);
    assert_eq!(time_fields(&after), time_fields(&before));
    assert_ne!(vcpu_info(&mut g).time.system_time, after.system_time);
    assert_eq!(register_time_area(&mut g, 0, 0), 0, "unregistering twice is fine");
}

#[test]
fn pvclock_time_area_refuses_bad_addresses() {
    let mut g = boot();
    let refs = writable_refs(&mut g, TIME_AREA);
    let unmapped = SYNTH_VIRT_BASE + 0x4000_0000;
    assert!(translate(&g.p.mem, g.v.guest_table, unmapped).is_err());
    assert_eq!(register_time_area(&mut g, 0, unmapped), -XEN_EFAULT, "not mapped");
    assert_eq!(register_time_area(&mut g, 0, TIME_AREA + 0xff0), -XEN_EINVAL, "crosses a page");
    assert_eq!(register_time_area(&mut g, 0, TIME_AREA + 4), -XEN_EINVAL, "not 8-aligned");
    assert_eq!(register_time_area(&mut g, 0, HYPERVISOR_VIRT_START + 0x1000), -XEN_EFAULT, "Cocoon's range");
    assert_eq!(register_time_area(&mut g, 0, 0x0000_8000_0000_0000), -XEN_EFAULT, "not canonical");
    let pt = g.layout.va_of_pfn(g.layout.page_tables.pfn);
    assert!(!translate(&g.p.mem, g.v.guest_table, pt).unwrap().writable);
    assert_eq!(register_time_area(&mut g, 0, pt), -XEN_EFAULT, "mapped read-only (a page table)");
    assert_eq!(register_time_area(&mut g, 1, TIME_AREA), -XEN_ENOENT, "no such vCPU");
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_time_memory_area, 0, unmapped), -XEN_EFAULT, "bad argument");
    assert_eq!(writable_refs(&mut g, TIME_AREA), refs, "nothing held");
    assert_eq!(g.v.time_area, None);
}

#[test]
fn smp_time_area_of_another_vcpu_only_before_it_runs() {
    let mut g = boot_with(None, 2);
    assert_eq!(register_time_area(&mut g, 1, TIME_AREA), 0, "not initialised yet");
    let copy: VcpuTimeInfo = get(&mut g, TIME_AREA);
    assert_eq!((copy.version % 2, copy.system_time), (0, g.p.now), "written at once");
    bring_up(&mut g, 1, SYNTH_VIRT_BASE + 0x100_0100);
    assert_eq!(register_time_area(&mut g, 1, TIME_AREA + 0x100), 0, "up, not yet started");
    assert_eq!(g.v.time_area, None, "vCPU 0 has none");
    let refs = writable_refs(&mut g, TIME_AREA);
    let gdt = Box::leak(vec![0u64; FIRST_RESERVED_GDT_ENTRY].into_boxed_slice());
    let st = shim_core::hypercall::vcpu::start_context(&g.d.vcpus[1], 1, gdt).expect("a context");
    let mfn = translate(&g.p.mem, g.v.guest_table, TIME_AREA).unwrap().mfn;
    assert_eq!(st.vcpu.time_area, Some((mfn << 12) | 0x100));
    assert_eq!(register_time_area(&mut g, 1, TIME_AREA), -XEN_EINVAL, "it runs: its own state");
    assert_eq!(writable_refs(&mut g, TIME_AREA), refs);
}

#[test]
fn forwarded_time_area_goes_to_xen() {
    let mut g = boot_forwarded(Forward::default());
    let n = g.p.xen_calls.len();
    put(&mut g, TIME_AREA, &[0xaau8; 32]);
    assert_eq!(register_time_area(&mut g, 0, TIME_AREA), 0);
    let (nr, a) = *g.p.xen_calls.last().unwrap();
    assert_eq!(
        (g.p.xen_calls.len(), nr, a[0], a[1]),
        (n + 1, __HYPERVISOR_vcpu_op, VCPUOP_register_vcpu_time_memory_area, 0)
    );
    assert_eq!(register_time_area(&mut g, 0, 0), 0, "unregistering goes to Xen too");
    assert_eq!(g.p.xen_calls.len(), n + 2);
    assert_eq!(register_time_area(&mut g, 0, HYPERVISOR_VIRT_START), -XEN_EFAULT, "Cocoon's range");
    assert_eq!(register_time_area(&mut g, 1, TIME_AREA), -XEN_ENOENT);
    assert_eq!(g.p.xen_calls.len(), n + 2, "refused without asking Xen");
    assert_eq!(g.v.time_area, None, "Xen keeps it");
    ctx!(g).update_time(&mut g.p);
    assert_eq!(get::<[u8; 32]>(&mut g, TIME_AREA), [0xaa; 32], "Cocoon writes no copy");
}

#[test]
fn forwarded_time_area_of_another_vcpu_is_refused() {
    let mut g = boot_with(Some(Forward::default()), 2);
    g.p.xen = Some(0);
    // Its CPU may still run on Cocoon's own tables, which Xen would write through.
    assert_eq!(register_time_area(&mut g, 1, TIME_AREA), -XEN_EINVAL);
    assert!(g.p.xen_calls.iter().all(|c| c.0 != __HYPERVISOR_vcpu_op));
}

#[test]
fn forwarded_vcpu_info_of_another_vcpu_is_registered_from_its_cpu() {
    // Xen before 4.19 maps another vCPU's vcpu_info only while it is down;
    // the HVM domain's vCPUs are all up, so that vCPU's CPU makes the call.
    let mut g = boot_with(Some(Forward::default()), 2);
    g.p.xen = Some(0);
    let t = translate(&g.p.mem, g.v.guest_table, ARG + 0x100).unwrap();
    put(&mut g, ARG, &[t.mfn, (ARG + 0x100) & 0xfff]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 1, ARG), 0);
    assert_eq!(g.p.remote_xen_calls, vec![1]);
    assert_eq!(
        g.d.vcpus[1].vcpu_info_maddr.load(std::sync::atomic::Ordering::Relaxed),
        (t.mfn << 12) | ((ARG + 0x100) & 0xfff)
    );
    // Its own: made here.
    put(&mut g, ARG, &[t.mfn, (ARG + 0x140) & 0xfff]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 0, ARG), 0);
    assert_eq!(g.p.remote_xen_calls, vec![1]);
    assert_eq!(g.v.vcpu_info_maddr, (t.mfn << 12) | ((ARG + 0x140) & 0xfff));
}

#[test]
fn promotion_flushes_every_vcpu_before_validating() {
    let mut g = boot_with(None, 4);
    bring_up(&mut g, 2, SYNTH_VIRT_BASE + 0x100_0100);
    let pin = |g: &mut Guest, mfn: u64| {
        put(g, ARG, &(MMUEXT_PIN_L1_TABLE as u64, mfn, 0u64));
        hypercall(g, __HYPERVISOR_mmuext_op, [ARG, 1, 0, DOMID_SELF_U64, 0])
    };
    // A free frame whose one entry maps a frame outside the guest: the
    // validation refuses it, but only after every vCPU has flushed (a stale
    // writable translation elsewhere could change the table while it is read).
    let free = BASE + PAGES - 10;
    g.p.mem.write_u64(free, 0, (0x5u64 << 12) | _PAGE_PRESENT);
    g.p.tlb_flushes.clear();
    assert_eq!(pin(&mut g, free), -XEN_EINVAL);
    assert_eq!(g.p.tlb_flushes, vec![(0b101, None)], "the flush comes before the validation");
    // An L1 the initial tables already use: no frame changes type, no flush.
    let t = l1_table_of(&g, ARG);
    assert_eq!(g.d.lock().frames.get(t).unwrap().ty, PageType::L1);
    g.p.tlb_flushes.clear();
    assert_eq!(pin(&mut g, t), 0);
    assert!(g.p.tlb_flushes.is_empty());
}

#[test]
fn mmu_update_batches_stop_at_the_first_failure() {
    let mut g = boot();
    let va = SYNTH_VIRT_BASE + 0x100_4000;
    let l1 = l1_table_of(&g, va);
    let data = |i: u64| ((BASE + 0x100 + i) << 12) | _PAGE_PRESENT;
    // 40 records (more than one chunk read at a time); the 36th maps a frame
    // outside the guest: 35 are done, the rest not even tried.
    let mut recs: [[u64; 2]; 40] = core::array::from_fn(|i| [(l1 << 12) | ((100 + i as u64) * 8), data(i as u64)]);
    recs[35][1] = (0x5u64 << 12) | _PAGE_PRESENT;
    put(&mut g, BUF, &recs);
    let done_at = BUF + 0x800;
    let untried = g.p.mem.read_u64(l1, 100 + 36);
    assert_ne!(untried & PADDR_MASK, data(36) & PADDR_MASK);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmu_update, [BUF, 40, done_at, DOMID_SELF_U64, 0]), -XEN_EINVAL);
    assert_eq!(get::<u64>(&mut g, done_at), 35);
    assert_eq!(g.p.mem.read_u64(l1, 100 + 34) & !(_PAGE_USER | _PAGE_GUEST_KERNEL), data(34));
    assert_eq!(g.p.mem.read_u64(l1, 100 + 36), untried, "not tried after the failure");
    // A list running into an unmapped page: the readable records are done, then -EFAULT.
    let mut end = BUF;
    while translate(&g.p.mem, g.v.guest_table, end).is_ok() {
        end += 0x1000;
    }
    let start = end - 3 * 16;
    let recs: [[u64; 2]; 3] = core::array::from_fn(|i| [(l1 << 12) | ((200 + i as u64) * 8), data(i as u64)]);
    put(&mut g, start, &recs);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmu_update, [start, 10, done_at, DOMID_SELF_U64, 0]), -XEN_EFAULT);
    assert_eq!(get::<u64>(&mut g, done_at), 3);
}

// --- Ballooning (memory_op reservation ops) ---

/// The `xen_memory_reservation` and its extent list, in the guest's bss.
const RES: u64 = BUF + 0x200;
const LIST: u64 = BUF + 0x300;

fn reservation(g: &mut Guest, cmd: u64, list: &[u64], order: u32, domid: u16) -> i64 {
    for (i, x) in list.iter().enumerate() {
        put(g, LIST + 8 * i as u64, x);
    }
    let r = XenMemoryReservation {
        extent_start: LIST,
        nr_extents: list.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid,
    };
    put(g, RES, &r);
    hypercall(g, __HYPERVISOR_memory_op, [cmd, RES, 0, 0, 0])
}

fn decrease(g: &mut Guest, mfns: &[u64]) -> i64 {
    reservation(g, XENMEM_decrease_reservation, mfns, 0, DOMID_SELF)
}

fn current_reservation(g: &mut Guest) -> i64 {
    put(g, RES, &DOMID_SELF);
    hypercall(g, __HYPERVISOR_memory_op, [XENMEM_current_reservation, RES, 0, 0, 0])
}

/// Write `val` into the kernel L1 entry mapping `va` (mmu_update).
fn set_l1e(g: &mut Guest, va: u64, val: u64) -> i64 {
    let l1_ma = (l1_table_of(g, va) << 12) | (((va >> 12) & 511) * 8);
    put(g, BUF, &[l1_ma, val]);
    hypercall(g, __HYPERVISOR_mmu_update, [BUF, 1, 0, DOMID_SELF_U64, 0])
}

fn mmuext(g: &mut Guest, cmd: u32, mfn: u64) -> i64 {
    put(g, BUF, &[cmd as u64, mfn, 0u64]);
    hypercall(g, __HYPERVISOR_mmuext_op, [BUF, 1, 0, DOMID_SELF_U64, 0])
}

/// A kernel address whose L1 entry the balloon tests rewrite (a data page).
const MAP_VA: u64 = SYNTH_VIRT_BASE + 0x100_4000;

fn refs(g: &Guest, mfn: u64) -> (u32, u32, u32) {
    let f = *g.d.lock().frames.get(mfn).unwrap();
    (f.refs, f.type_count, f.writable())
}

#[test]
fn balloon_an_unreferenced_frame_goes_to_xen_at_once() {
    let mut g = boot_forwarded(Forward::default());
    let f = BASE + PAGES - 30;
    g.d.lock().m2p[f as usize] = PAGES - 30;
    assert_eq!(current_reservation(&mut g), PAGES as i64);
    assert_eq!(decrease(&mut g, &[f]), 1);
    assert_eq!(g.p.xen_decreased, vec![f], "given back to Xen, as Cocoon's GFN");
    assert!(g.p.tlb_flushes.iter().any(|&(_, va)| va.is_none()), "every TLB flushed first");
    assert_eq!(g.d.lock().m2p[f as usize], INVALID_M2P_ENTRY);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 1);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_memory_op, [XENMEM_maximum_reservation, RES, 0, 0, 0]), PAGES as i64);
    // The guest cannot map it, type it, or give it up twice.
    assert_eq!(set_l1e(&mut g, MAP_VA, (f << 12) | _PAGE_PRESENT), -XEN_EINVAL);
    assert_eq!(
        hypercall(&mut g, __HYPERVISOR_update_va_mapping, [MAP_VA, (f << 12) | _PAGE_PRESENT, 0, 0, 0]),
        -XEN_EINVAL
    );
    assert_eq!(mmuext(&mut g, MMUEXT_PIN_L1_TABLE, f), -XEN_EINVAL);
    assert_eq!(mmuext(&mut g, MMUEXT_CLEAR_PAGE, f), -XEN_EINVAL);
    put(&mut g, BUF, &[(f << 12) | MMU_MACHPHYS_UPDATE, 7u64]);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_mmu_update, [BUF, 1, 0, DOMID_SELF_U64, 0]), -XEN_EINVAL);
    assert_eq!(decrease(&mut g, &[f]), 0);
    assert_eq!(g.p.xen_decreased, vec![f]);
}

#[test]
fn balloon_a_mapped_frame_waits_for_its_last_mapping() {
    let mut g = boot_forwarded(Forward::default());
    let f = BASE + PAGES - 31;
    assert_eq!(set_l1e(&mut g, MAP_VA, (f << 12) | _PAGE_PRESENT), 0, "read-only");
    assert_eq!(refs(&g, f), (1, 0, 0));
    assert_eq!(decrease(&mut g, &[f]), 1, "done, as far as the guest is concerned");
    assert!(g.p.xen_decreased.is_empty(), "still mapped: not Xen's yet");
    assert_eq!(current_reservation(&mut g), PAGES as i64, "still the domain's (Xen's tot_pages)");
    // No second mapping, even where the first one is.
    assert_eq!(set_l1e(&mut g, MAP_VA, (f << 12) | _PAGE_PRESENT | _PAGE_ACCESSED), -XEN_EINVAL);
    assert!(g.p.xen_decreased.is_empty());
    // Unmapped: it goes at the next reservation op.
    assert_eq!(set_l1e(&mut g, MAP_VA, 0), 0);
    assert_eq!(refs(&g, f), (0, 0, 0));
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 1);
    assert_eq!(g.p.xen_decreased, vec![f]);
}

#[test]
fn balloon_a_page_table_waits_until_no_table_refers_to_it() {
    let mut g = boot_forwarded(Forward::default());
    // A user L4, pinned and in use as the user base table.
    let user_l4 = enter_user_mode(&mut g);
    assert_eq!(refs(&g, user_l4).1, 2, "the pin and the base table");
    assert_eq!(decrease(&mut g, &[user_l4]), 1);
    assert_eq!(refs(&g, user_l4).1, 1, "the pin is dropped, as Xen's guest_remove_page does");
    assert_eq!(mmuext(&mut g, MMUEXT_UNPIN_TABLE, user_l4), -XEN_EINVAL);
    assert_eq!(current_reservation(&mut g), PAGES as i64);
    assert!(g.p.xen_decreased.is_empty(), "still the user base table");
    assert_eq!(mmuext(&mut g, MMUEXT_NEW_USER_BASEPTR, 0), 0);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 1);
    assert_eq!(g.p.xen_decreased, vec![user_l4]);

    // A pinned L1 mapping two frames: given up, it is unpinned and
    // released (its entries dropped) before it goes to Xen.
    let (l1, a, b) = (BASE + PAGES - 40, BASE + PAGES - 41, BASE + PAGES - 42);
    g.p.mem.write_u64(l1, 0, (a << 12) | _PAGE_PRESENT | _PAGE_RW);
    g.p.mem.write_u64(l1, 9, (b << 12) | _PAGE_PRESENT);
    assert_eq!(mmuext(&mut g, MMUEXT_PIN_L1_TABLE, l1), 0);
    assert_eq!((refs(&g, a), refs(&g, b)), ((1, 1, 1), (1, 0, 0)));
    assert_eq!(decrease(&mut g, &[l1]), 1);
    assert_eq!(g.p.xen_decreased, vec![user_l4, l1]);
    assert_eq!((refs(&g, a), refs(&g, b)), ((0, 0, 0), (0, 0, 0)));
}

#[test]
fn balloon_a_registered_vcpu_info_frame_never_leaves() {
    let mut g = boot_forwarded(Forward::default());
    let t = translate(&g.p.mem, g.v.guest_table, ARG + 0x100).unwrap();
    put(&mut g, ARG, &[t.mfn, (ARG + 0x100) & 0xfff]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 0, ARG), 0);
    let before = refs(&g, t.mfn).0;
    // Unmapped by the guest, the frame is still Cocoon's to write.
    assert_eq!(set_l1e(&mut g, ARG, 0), 0);
    assert_eq!(refs(&g, t.mfn).0, before - 1);
    assert_eq!(decrease(&mut g, &[t.mfn]), 1);
    assert_eq!(current_reservation(&mut g), PAGES as i64);
    assert!(g.p.xen_decreased.is_empty(), "held by Cocoon for the vcpu_info");
}

#[test]
fn balloon_populate_gives_released_frames_back() {
    let mut g = boot_forwarded(Forward::default());
    let (f1, f2) = (BASE + PAGES - 50, BASE + PAGES - 51);
    assert_eq!(decrease(&mut g, &[f1, f2]), 2);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 2);
    // Xen has nothing: no extent done, the frames stay given back.
    g.p.xen_out_of_memory = true;
    assert_eq!(reservation(&mut g, XENMEM_populate_physmap, &[0x77], 0, DOMID_SELF), 0);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 2);
    g.p.xen_out_of_memory = false;
    // Larger orders: no contiguous frames to give.
    assert_eq!(reservation(&mut g, XENMEM_populate_physmap, &[0x77], 1, DOMID_SELF), 0);
    // Three asked, two there: two done, MFNs written back, M2P set.
    assert_eq!(reservation(&mut g, XENMEM_populate_physmap, &[0x77, 0x78, 0x79], 0, DOMID_SELF), 2);
    let out: [u64; 3] = get(&mut g, LIST);
    let mut given = g.p.xen_populated.clone();
    assert_eq!(out[..2], given[..]);
    assert_eq!(out[2], 0x79, "the extent not done is left alone");
    given.sort();
    assert_eq!(given, vec![f2, f1]);
    assert_eq!(g.d.lock().m2p[out[0] as usize], 0x77);
    assert_eq!(g.d.lock().m2p[out[1] as usize], 0x78);
    assert_eq!(current_reservation(&mut g), PAGES as i64);
    // The guest's again: mappable.
    assert_eq!(set_l1e(&mut g, MAP_VA, (out[0] << 12) | _PAGE_PRESENT | _PAGE_RW), 0);
    // Nothing left: increase_reservation does nothing.
    assert_eq!(reservation(&mut g, XENMEM_increase_reservation, &[0], 0, DOMID_SELF), 0);
    // Given up and taken again with increase_reservation: the MFN is written
    // back, the M2P entry is the guest's to set.
    assert_eq!(decrease(&mut g, &[out[1]]), 1);
    assert_eq!(reservation(&mut g, XENMEM_increase_reservation, &[0], 0, DOMID_SELF), 1);
    assert_eq!(get::<u64>(&mut g, LIST), out[1]);
    assert_eq!(g.d.lock().m2p[out[1] as usize], INVALID_M2P_ENTRY);
}

#[test]
fn balloon_bad_requests_do_nothing_as_on_xen() {
    let mut g = boot_forwarded(Forward::default());
    let f = BASE + PAGES - 60;
    // Another domain, a bad order, a bad argument or list pointer: 0 extents, nothing taken.
    assert_eq!(reservation(&mut g, XENMEM_decrease_reservation, &[f], 0, 5), 0);
    assert_eq!(reservation(&mut g, XENMEM_decrease_reservation, &[f], 10, DOMID_SELF), 0);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_memory_op, [XENMEM_decrease_reservation, 0x1234_0000, 0, 0, 0]), 0);
    put(
        &mut g,
        RES,
        &XenMemoryReservation { extent_start: HYPERVISOR_VIRT_START, nr_extents: 1, ..Default::default() },
    );
    assert_eq!(hypercall(&mut g, __HYPERVISOR_memory_op, [XENMEM_decrease_reservation, RES, 0, 0, 0]), 0);
    // Not the guest's RAM: shared_info, a grant frame, a Cocoon frame.
    for m in [SHARED, SHARED + 1, 5] {
        assert_eq!(decrease(&mut g, &[m]), 0, "frame {m:#x}");
    }
    assert!(g.p.xen_decreased.is_empty());
    // The first bad extent stops the op; a continuation starts where the cmd says.
    assert_eq!(decrease(&mut g, &[f, SHARED, f - 1]), 1);
    put(&mut g, LIST, &[0u64, f - 1]);
    put(
        &mut g,
        RES,
        &XenMemoryReservation { extent_start: LIST, nr_extents: 2, domid: DOMID_SELF, ..Default::default() },
    );
    let cmd = XENMEM_decrease_reservation | (1 << MEMOP_EXTENT_SHIFT);
    assert_eq!(hypercall(&mut g, __HYPERVISOR_memory_op, [cmd, RES, 0, 0, 0]), 2);
    // An order-1 extent: two frames.
    assert_eq!(reservation(&mut g, XENMEM_decrease_reservation, &[f - 3], 1, DOMID_SELF), 1);
    assert_eq!(g.p.xen_decreased, vec![f, f - 1, f - 3, f - 2]);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 4);
}

#[test]
fn balloon_standalone_keeps_given_up_frames_for_the_guest() {
    let mut g = boot();
    let f = BASE + PAGES - 30;
    g.p.mem.write_u64(f, 3, 0xdead);
    assert_eq!(decrease(&mut g, &[f]), 1);
    assert_eq!(decrease(&mut g, &[f]), 0, "only once");
    assert!(g.p.xen_calls.is_empty(), "no Xen to call");
    assert!(!g.d.lock().frames.owned_by_guest(f));
    assert_eq!(g.d.lock().m2p[f as usize], INVALID_M2P_ENTRY);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 1);
    assert_eq!(set_l1e(&mut g, MAP_VA, (f << 12) | _PAGE_PRESENT), -XEN_EINVAL);
    // Taken again: zeroed, at the PFN the guest names.
    assert_eq!(reservation(&mut g, XENMEM_populate_physmap, &[0x10, 0x11], 0, DOMID_SELF), 1);
    assert_eq!(get::<[u64; 2]>(&mut g, LIST), [f, 0x11]);
    assert_eq!(g.p.mem.read_u64(f, 3), 0);
    assert_eq!(g.d.lock().m2p[f as usize], 0x10);
    assert_eq!(current_reservation(&mut g), PAGES as i64);
    assert_eq!(reservation(&mut g, XENMEM_increase_reservation, &[0], 0, DOMID_SELF), 0, "nothing left");
    // A mapped frame waits for its last mapping, as on Xen.
    assert_eq!(set_l1e(&mut g, MAP_VA, (f << 12) | _PAGE_PRESENT), 0);
    assert_eq!(decrease(&mut g, &[f]), 1);
    assert_eq!(current_reservation(&mut g), PAGES as i64);
    assert_eq!(set_l1e(&mut g, MAP_VA, 0), 0);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 1);
}

// --- XENMEM_exchange ---

const EXCH: u64 = BUF + 0x800;
const OUT_LIST: u64 = BUF + 0xc00;

/// An exchange of the order-`io` extents `ins` for order-`oo` extents at
/// the GPFNs `outs`, below `bits` address bits: (result, nr_exchanged).
fn exchange(g: &mut Guest, ins: &[u64], io: u32, outs: &[u64], oo: u32, bits: u32) -> (i64, u64) {
    let x = exchange_args(g, ins, io, outs, oo, bits);
    exchange_raw(g, &x, XENMEM_exchange)
}

fn exchange_args(g: &mut Guest, ins: &[u64], io: u32, outs: &[u64], oo: u32, bits: u32) -> XenMemoryExchange {
    for (i, x) in ins.iter().enumerate() {
        put(g, LIST + 8 * i as u64, x);
    }
    for (i, x) in outs.iter().enumerate() {
        put(g, OUT_LIST + 8 * i as u64, x);
    }
    let r = |start, list: &[u64], order, mem_flags| XenMemoryReservation {
        extent_start: start,
        nr_extents: list.len() as u64,
        extent_order: order,
        mem_flags,
        domid: DOMID_SELF,
    };
    XenMemoryExchange { input: r(LIST, ins, io, 0), output: r(OUT_LIST, outs, oo, bits), nr_exchanged: 0 }
}

fn exchange_raw(g: &mut Guest, x: &XenMemoryExchange, cmd: u64) -> (i64, u64) {
    put(g, EXCH, x);
    let rc = hypercall(g, __HYPERVISOR_memory_op, [cmd, EXCH, 0, 0, 0]);
    (rc, get::<XenMemoryExchange>(g, EXCH).nr_exchanged)
}

fn owner(g: &Guest, mfn: u64) -> shim_core::mm::frames::Owner {
    g.d.lock().frames.get(mfn).unwrap().owner
}

/// Frames at the top of the guest's RAM, `A` aligned to 4 (the pool the
/// tests balloon out), and guest frames to exchange.
const A: u64 = BASE + PAGES - 64;
const X: u64 = BASE + PAGES - 101;

#[test]
fn exchange_two_frames_for_one_contiguous_extent_below_address_bits() {
    use shim_core::mm::frames::Owner;
    let mut g = boot();
    assert_eq!(decrease(&mut g, &[A, A + 1]), 2);
    g.p.mem.write_u64(A + 1, 7, 0xdead);
    let gpfn = X - BASE;
    assert_eq!(g.d.lock().m2p[X as usize], gpfn);
    let flushes = g.p.tlb_flushes.len();
    // 2 order-0 extents for 1 order-1 extent below 64 MiB (A is below).
    assert_eq!(exchange(&mut g, &[X, X + 1], 0, &[gpfn], 1, 26), (0, 2));
    assert_eq!(get::<u64>(&mut g, OUT_LIST), A, "the MFN written over the GPFN");
    {
        let l = g.d.lock();
        assert_eq!((l.m2p[A as usize], l.m2p[A as usize + 1]), (gpfn, gpfn + 1));
        assert_eq!((l.m2p[X as usize], l.m2p[X as usize + 1]), (INVALID_M2P_ENTRY, INVALID_M2P_ENTRY));
    }
    assert_eq!((owner(&g, A), owner(&g, A + 1)), (Owner::Guest, Owner::Guest));
    assert_eq!((owner(&g, X), owner(&g, X + 1)), (Owner::Released, Owner::Released));
    assert_eq!(g.p.mem.read_u64(A + 1, 7), 0, "zeroed");
    assert!(g.p.tlb_flushes.len() > flushes, "TLBs flushed before the old frames left");
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 2, "as many frames as before");
    // The old frames are no one's to map, the new ones are the guest's.
    assert_eq!(set_l1e(&mut g, MAP_VA, (X << 12) | _PAGE_PRESENT), -XEN_EINVAL);
    assert_eq!(set_l1e(&mut g, MAP_VA, ((A + 1) << 12) | _PAGE_PRESENT | _PAGE_RW), 0);
    assert_eq!(set_l1e(&mut g, MAP_VA, 0), 0);
    // And back: one order-1 extent for two order-0 ones (the pool's X, X + 1).
    assert_eq!(exchange(&mut g, &[A], 1, &[0x40, 0x41], 0, 0), (0, 1));
    assert_eq!(get::<[u64; 2]>(&mut g, OUT_LIST), [X, X + 1]);
    let m2p = |g: &Guest, m: u64| g.d.lock().m2p[m as usize];
    assert_eq!((m2p(&g, X), m2p(&g, X + 1)), (0x40, 0x41));
    assert_eq!((owner(&g, A), owner(&g, A + 1)), (Owner::Released, Owner::Released));
}

#[test]
fn exchange_stops_at_a_frame_still_in_use_keeping_the_chunks_done() {
    use shim_core::mm::frames::Owner;
    let mut g = boot();
    assert_eq!(decrease(&mut g, &[A, A + 1, A + 2, A + 3]), 4);
    let (z, w) = (X + 2, X + 3);
    assert_eq!(set_l1e(&mut g, MAP_VA, (w << 12) | _PAGE_PRESENT), 0, "w mapped read-only");
    let gp = [X - BASE, z - BASE];
    // Two chunks: X, X + 1 go; z is stolen, then w refuses: z comes back.
    assert_eq!(exchange(&mut g, &[X, X + 1, z, w], 0, &gp, 1, 0), (-XEN_EINVAL, 2));
    assert_eq!(get::<[u64; 2]>(&mut g, OUT_LIST), [A, gp[1]], "the chunk not done is left alone");
    assert_eq!((owner(&g, X), owner(&g, z), owner(&g, w)), (Owner::Released, Owner::Guest, Owner::Guest));
    assert_eq!(g.d.lock().m2p[z as usize], z - BASE);
    assert_eq!(refs(&g, w), (1, 0, 0));
    assert_eq!((owner(&g, A + 2), owner(&g, A + 3)), (Owner::Released, Owner::Released));
    // Continued from nr_exchanged once w is unmapped: the second chunk.
    assert_eq!(set_l1e(&mut g, MAP_VA, 0), 0);
    let mut x = exchange_args(&mut g, &[X, X + 1, z, w], 0, &[A, gp[1]], 1, 0);
    x.nr_exchanged = 2;
    assert_eq!(exchange_raw(&mut g, &x, XENMEM_exchange), (0, 4));
    assert_eq!(get::<[u64; 2]>(&mut g, OUT_LIST), [A, A + 2]);
    // A page table, a pinned one, a frame listed twice, Cocoon's frames: refused.
    let l4 = g.v.guest_table;
    for bad in [[l4, X + 4], [X + 4, X + 4], [SHARED, X + 4], [5, X + 4]] {
        assert_eq!(exchange(&mut g, &bad, 0, &[0], 1, 0), (-XEN_EINVAL, 0), "{bad:x?}");
        assert_eq!(owner(&g, X + 4), Owner::Guest);
    }
}

#[test]
fn exchange_argument_checks_are_xens() {
    let mut g = boot();
    assert_eq!(decrease(&mut g, &[A, A + 1]), 2);
    let base = exchange_args(&mut g, &[X, X + 1], 0, &[0], 1, 0);
    let with = |f: &dyn Fn(&mut XenMemoryExchange)| {
        let mut x = base;
        f(&mut x);
        x
    };
    let cases: [(XenMemoryExchange, i64); 9] = [
        // Orders above the domU limit: -EPERM before anything else.
        (with(&|x| x.output.extent_order = 10), -XEN_EPERM),
        // 2 order-0 for 1 order-2: sizes differ.
        (with(&|x| x.output.extent_order = 2), -XEN_EINVAL),
        (with(&|x| x.input.nr_extents = 3), -XEN_EINVAL),
        (with(&|x| x.output.domid = 0), -XEN_EINVAL),
        (with(&|x| x.nr_exchanged = 3), -XEN_EINVAL),
        // Lists outside the guest's addresses.
        (with(&|x| x.input.extent_start = HYPERVISOR_VIRT_START), -XEN_EFAULT),
        (with(&|x| x.output.extent_start = HYPERVISOR_VIRT_START), -XEN_EFAULT),
        // A domU insisting on a NUMA node.
        (with(&|x| x.output.mem_flags = (1 << 8) | XENMEMF_exact_node_request), -XEN_EINVAL),
        // Another domain.
        (with(&|x| (x.input.domid, x.output.domid) = (5, 5)), -XEN_ESRCH),
    ];
    for (x, rc) in cases {
        assert_eq!(exchange_raw(&mut g, &x, XENMEM_exchange), (rc, x.nr_exchanged), "{x:x?}");
        assert!(g.d.lock().frames.owned_by_guest(X));
    }
    // A continuation's start extent in cmd: -EINVAL, nothing written back.
    let mut x = base;
    x.nr_exchanged = 1;
    put(&mut g, EXCH, &x);
    assert_eq!(
        hypercall(&mut g, __HYPERVISOR_memory_op, [XENMEM_exchange | (1 << MEMOP_EXTENT_SHIFT), EXCH, 0, 0, 0]),
        -XEN_EINVAL
    );
    // Everything already exchanged: 0, nothing written back.
    x.nr_exchanged = 2;
    assert_eq!(exchange_raw(&mut g, &x, XENMEM_exchange), (0, 2));
    // An unreadable argument.
    assert_eq!(hypercall(&mut g, __HYPERVISOR_memory_op, [XENMEM_exchange, 0x1234_0000, 0, 0, 0]), -XEN_EFAULT);
    // Domain 0 is the guest itself, as for the reservation ops.
    let x = with(&|x| (x.input.domid, x.output.domid) = (0, 0));
    assert_eq!(exchange_raw(&mut g, &x, XENMEM_exchange), (0, 2));
}

#[test]
fn exchange_with_nothing_free_below_address_bits_is_enomem() {
    use shim_core::mm::frames::Owner;
    let mut g = boot();
    // Nothing given up: nothing to give.
    assert_eq!(exchange(&mut g, &[X, X + 1], 0, &[0x33], 1, 0), (-XEN_ENOMEM, 0));
    assert_eq!((owner(&g, X), owner(&g, X + 1)), (Owner::Guest, Owner::Guest));
    assert_eq!(g.d.lock().m2p[X as usize], X - BASE);
    assert_eq!(get::<u64>(&mut g, OUT_LIST), 0x33);
    // Frames given up, but none below 1 MiB, or no aligned pair.
    assert_eq!(decrease(&mut g, &[A + 1, A + 2]), 2);
    assert_eq!(exchange(&mut g, &[X, X + 1], 0, &[0x33], 1, 20), (-XEN_ENOMEM, 0));
    assert_eq!(exchange(&mut g, &[X, X + 1], 0, &[0x33], 1, 0), (-XEN_ENOMEM, 0));
    assert_eq!((owner(&g, A + 1), owner(&g, A + 2)), (Owner::Released, Owner::Released));
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 2);
    // Order 0 out works from either.
    assert_eq!(exchange(&mut g, &[X], 0, &[0x33], 0, 0), (0, 1));
    assert_eq!(get::<u64>(&mut g, OUT_LIST), A + 1);
}

#[test]
fn exchange_on_xen_populates_the_new_frames_and_gives_the_old_back() {
    use shim_core::mm::frames::Owner;
    let mut g = boot_forwarded(Forward::default());
    assert_eq!(decrease(&mut g, &[A, A + 1]), 2);
    assert_eq!(g.p.xen_decreased, vec![A, A + 1]);
    // Xen has no memory: -ENOMEM, the pool as it was.
    g.p.xen_out_of_memory = true;
    assert_eq!(exchange(&mut g, &[X, X + 1], 0, &[0x33], 1, 0), (-XEN_ENOMEM, 0));
    assert_eq!((owner(&g, A), owner(&g, X)), (Owner::Released, Owner::Guest));
    g.p.xen_out_of_memory = false;
    assert_eq!(exchange(&mut g, &[X, X + 1], 0, &[0x33], 1, 0), (0, 2));
    assert_eq!(g.p.xen_populated, vec![A, A + 1]);
    assert_eq!(g.p.xen_decreased, vec![A, A + 1, X, X + 1]);
    assert_eq!(get::<u64>(&mut g, OUT_LIST), A);
    assert_eq!(current_reservation(&mut g), PAGES as i64 - 2);
}

#[test]
fn frame_references_come_back_after_fork_like_cycles() {
    let mut g = boot();
    let snapshot =
        |g: &Guest| -> Vec<(u32, u32, u32)> { (0..=SHARED + NR_GRANT_FRAMES as u64).map(|m| refs(g, m)).collect() };
    let before = snapshot(&g);
    let data = BASE + 0x100;
    let (l3, l2, l1) = (BASE + PAGES - 70, BASE + PAGES - 71, BASE + PAGES - 72);
    for _ in 0..3 {
        // A child's tables: an L1 mapping a shared data page read-only twice
        // and a page table read-only, hung under an L2 and an L3, pinned.
        g.p.mem.write_u64(l1, 0, (data << 12) | _PAGE_PRESENT);
        g.p.mem.write_u64(l1, 1, (data << 12) | _PAGE_PRESENT);
        g.p.mem.write_u64(l1, 2, (l2 << 12) | _PAGE_PRESENT);
        g.p.mem.write_u64(l2, 3, (l1 << 12) | _PAGE_PRESENT | _PAGE_RW);
        g.p.mem.write_u64(l3, 4, (l2 << 12) | _PAGE_PRESENT | _PAGE_RW);
        assert_eq!(mmuext(&mut g, MMUEXT_PIN_L3_TABLE, l3), 0);
        assert_eq!(refs(&g, data).0, before[data as usize].0 + 2);
        assert_eq!(refs(&g, l2), (1, 1, 0), "mapped once, referenced by the L3");
        // Copy-on-write: one mapping made writable, then dropped.
        let ma = (l1 << 12) | 8;
        put(&mut g, BUF, &[ma, (data << 12) | _PAGE_PRESENT | _PAGE_RW]);
        assert_eq!(hypercall(&mut g, __HYPERVISOR_mmu_update, [BUF, 1, 0, DOMID_SELF_U64, 0]), 0);
        assert_eq!(refs(&g, data).2, before[data as usize].2 + 1);
        put(&mut g, BUF, &[ma, 0u64]);
        assert_eq!(hypercall(&mut g, __HYPERVISOR_mmu_update, [BUF, 1, 0, DOMID_SELF_U64, 0]), 0);
        // Exit: unpinned, everything released.
        assert_eq!(mmuext(&mut g, MMUEXT_UNPIN_TABLE, l3), 0);
        assert_eq!(snapshot(&g), before);
    }
}

// --- The standalone grant table (hypercall::grant) ---

/// Two guest RAM frames the grant tests grant (high up, unused by the kernel).
const GA: u64 = BASE + PAGES - 40;
const GB: u64 = BASE + PAGES - 41;
const GOP: u64 = BUF + 0x400;

fn gnttab(g: &mut Guest, cmd: u64, count: u64) -> i64 {
    hypercall(g, __HYPERVISOR_grant_table_op, [cmd, GOP, count, 0, 0])
}

/// The guest writes grant entry `gref` (version 1 or 2) granting `frame` to itself.
fn grant(g: &mut Guest, v2: bool, gref: u32, frame: u64, flags: u16) {
    let hdr = flags as u64 | (DOMID_STANDALONE as u64) << 16;
    if v2 {
        let m = g.d.grant_mfns[(gref / 256) as usize];
        let i = (gref % 256) as usize * 2;
        g.p.mem.write_u64(m, i + 1, frame);
        g.p.mem.write_u64(m, i, hdr);
    } else {
        let m = g.d.grant_mfns[(gref / 512) as usize];
        g.p.mem.write_u64(m, (gref % 512) as usize, hdr | frame << 32);
    }
}

/// The entry's GTF_reading/GTF_writing as the guest sees them (v2: in the status frame).
fn in_use(g: &mut Guest, v2: bool, gref: u32) -> u16 {
    let w = if v2 {
        let m = g.d.status_mfns[0];
        g.p.mem.read_u64(m, gref as usize / 4) >> (16 * (gref % 4))
    } else {
        g.p.mem.read_u64(g.d.grant_mfns[(gref / 512) as usize], (gref % 512) as usize)
    };
    w as u16 & (GTF_reading | GTF_writing)
}

fn map(g: &mut Guest, gref: u32, flags: u32, host_addr: u64) -> GnttabMapGrantRef {
    let op = GnttabMapGrantRef { host_addr, flags, r#ref: gref, dom: DOMID_STANDALONE, ..Default::default() };
    put(g, GOP, &op);
    assert_eq!(gnttab(g, GNTTABOP_map_grant_ref, 1), 0);
    get(g, GOP)
}

fn unmap(g: &mut Guest, host_addr: u64, dev_bus_addr: u64, handle: u32) -> i16 {
    put(g, GOP, &GnttabUnmapGrantRef { host_addr, dev_bus_addr, handle, status: 99 });
    assert_eq!(gnttab(g, GNTTABOP_unmap_grant_ref, 1), 0);
    get::<GnttabUnmapGrantRef>(g, GOP).status
}

fn set_version(g: &mut Guest, v: u32) -> (i64, u32) {
    put(g, GOP, &v);
    let rc = gnttab(g, GNTTABOP_set_version, 1);
    (rc, get(g, GOP))
}

#[test]
fn grant_v2_has_status_frames() {
    let mut g = boot();
    let q = |g: &mut Guest, nr: u32| {
        put(g, GOP, &GnttabGetStatusFrames { nr_frames: nr, dom: DOMID_SELF, status: 99, frame_list: GOP + 0x40 });
        put(g, GOP + 0x40, &0u64);
        assert_eq!(gnttab(g, GNTTABOP_get_status_frames, 1), 0);
        (get::<GnttabGetStatusFrames>(g, GOP).status, get::<u64>(g, GOP + 0x40))
    };
    assert_eq!(q(&mut g, 1).0, GNTST_general_error, "v1 has no status frames");
    assert_eq!(q(&mut g, 0).0, GNTST_okay);
    assert_eq!(set_version(&mut g, 3), (-XEN_EINVAL, 1));
    assert_eq!(set_version(&mut g, 2), (0, 2));
    put(&mut g, GOP, &GnttabGetVersion { dom: DOMID_SELF, pad: 0, version: 0 });
    assert_eq!(gnttab(&mut g, GNTTABOP_get_version, 1), 0);
    assert_eq!(get::<GnttabGetVersion>(&mut g, GOP).version, 2);
    put(&mut g, GOP, &GnttabGetVersion { dom: 5, pad: 0, version: 0 });
    assert_eq!(gnttab(&mut g, GNTTABOP_get_version, 1), -XEN_ESRCH);
    let status_mfn = g.d.status_mfns[0];
    assert_eq!(q(&mut g, 1), (GNTST_okay, status_mfn));
    assert_eq!(q(&mut g, 2).0, GNTST_general_error);
    put(&mut g, GOP, &GnttabGetStatusFrames { nr_frames: 1, dom: DOMID_SELF, ..Default::default() });
    assert_eq!(gnttab(&mut g, GNTTABOP_get_status_frames, 2), -XEN_EINVAL);
    // The guest may map the status frame now; while it does, no way back to v1.
    assert_eq!(set_l1e(&mut g, MAP_VA, (status_mfn << 12) | _PAGE_PRESENT), 0);
    assert_eq!(set_version(&mut g, 1), (-XEN_EBUSY, 2));
    let data = g.d.physmap.mfn(0x1004);
    assert_eq!(set_l1e(&mut g, MAP_VA, (data << 12) | _PAGE_PRESENT | _PAGE_RW), 0);
    assert_eq!(set_version(&mut g, 1), (0, 1));
    assert_eq!(set_l1e(&mut g, MAP_VA, (status_mfn << 12) | _PAGE_PRESENT), -XEN_EINVAL, "gone in v1");
    // setup_table and query_size: one op each (count 1), up to 4 frames.
    put(&mut g, GOP, &GnttabSetupTable { dom: DOMID_SELF, nr_frames: 2, status: 99, frame_list: GOP + 0x40 });
    assert_eq!(gnttab(&mut g, GNTTABOP_setup_table, 1), 0);
    assert_eq!(get::<GnttabSetupTable>(&mut g, GOP).status, GNTST_okay);
    assert_eq!(get::<[u64; 2]>(&mut g, GOP + 0x40), [g.d.grant_mfns[0], g.d.grant_mfns[1]]);
    assert_eq!(gnttab(&mut g, GNTTABOP_setup_table, 2), -XEN_EINVAL);
    put(&mut g, GOP, &GnttabQuerySize { dom: DOMID_SELF, ..Default::default() });
    assert_eq!(gnttab(&mut g, GNTTABOP_query_size, 1), 0);
    let qs: GnttabQuerySize = get(&mut g, GOP);
    assert_eq!((qs.nr_frames, qs.max_nr_frames, qs.status), (2, 4, GNTST_okay));
}

/// Map `GA` through grant 10 at `MAP_VA`, read it, unmap it: in v1 or v2.
fn map_and_unmap_at_a_va(v2: bool) {
    let mut g = boot();
    if v2 {
        assert_eq!(set_version(&mut g, 2), (0, 2));
    }
    g.p.mem.write_u64(GA, 3, 0x1234_5678_9abc_def0);
    let before = refs(&g, GA);
    grant(&mut g, v2, 10, GA, GTF_permit_access);
    let m = map(&mut g, 10, GNTMAP_host_map, MAP_VA);
    assert_eq!(m.status, GNTST_okay);
    assert_eq!(m.dev_bus_addr, GA << 12);
    let t = translate(&g.p.mem, g.v.guest_table, MAP_VA).unwrap();
    assert_eq!(t.mfn, GA);
    assert!(t.writable && t.l1e & _PAGE_USER != 0);
    assert_eq!(get::<u64>(&mut g, MAP_VA + 24), 0x1234_5678_9abc_def0, "the granted frame's data");
    put(&mut g, MAP_VA + 32, &7u64);
    assert_eq!(g.p.mem.read_u64(GA, 4), 7);
    assert_eq!(in_use(&mut g, v2, 10), GTF_reading | GTF_writing);
    assert_eq!(refs(&g, GA), (before.0 + 1, before.1 + 1, before.2 + 1), "the PTE holds the frame");
    // The table cannot change version while the grant is in use.
    assert_eq!(set_version(&mut g, if v2 { 1 } else { 2 }).0, -XEN_EBUSY);
    // A wrong handle; then the mapping goes, and the handle with it.
    assert_eq!(unmap(&mut g, MAP_VA, 0, m.handle + 5), GNTST_bad_handle);
    assert_eq!(unmap(&mut g, MAP_VA, 0x1000, m.handle), GNTST_general_error, "dev_bus_addr is not the frame");
    assert_eq!(unmap(&mut g, MAP_VA, 0, m.handle), GNTST_okay);
    assert!(translate(&g.p.mem, g.v.guest_table, MAP_VA).is_err(), "PTE cleared");
    assert_eq!(in_use(&mut g, v2, 10), 0);
    assert_eq!(refs(&g, GA), before, "reference dropped");
    assert_eq!(unmap(&mut g, MAP_VA, 0, m.handle), GNTST_bad_handle);
    assert_eq!(set_version(&mut g, if v2 { 1 } else { 2 }).0, 0);
}

#[test]
fn grant_v1_of_the_domains_own_maps_at_a_va() {
    map_and_unmap_at_a_va(false);
}

#[test]
fn grant_v2_of_the_domains_own_maps_at_a_va() {
    map_and_unmap_at_a_va(true);
}

#[test]
fn grant_map_refusals_and_the_pte_checks() {
    let mut g = boot();
    grant(&mut g, false, 9, GA, GTF_permit_access | GTF_readonly);
    // A read-only grant mapped writable: Xen 4.17 reports 1 (see map.rs).
    assert_eq!(map(&mut g, 9, GNTMAP_host_map, MAP_VA).status, 1);
    assert_eq!(in_use(&mut g, false, 9), 0);
    let ro = map(&mut g, 9, GNTMAP_host_map | GNTMAP_readonly, MAP_VA);
    assert_eq!(ro.status, GNTST_okay);
    assert!(!translate(&g.p.mem, g.v.guest_table, MAP_VA).unwrap().writable);
    assert_eq!(in_use(&mut g, false, 9), GTF_reading);
    assert_eq!(unmap(&mut g, MAP_VA, 0, ro.handle), GNTST_okay);
    // Bad refs, domains, flags.
    assert_eq!(map(&mut g, 512, GNTMAP_host_map, MAP_VA).status, GNTST_bad_gntref, "one frame: 512 entries");
    assert_eq!(map(&mut g, 9, 0, MAP_VA).status, GNTST_bad_gntref);
    put(
        &mut g,
        GOP,
        &GnttabMapGrantRef {
            host_addr: MAP_VA,
            flags: GNTMAP_host_map,
            r#ref: 9,
            dom: DOMID_SELF,
            ..Default::default()
        },
    );
    assert_eq!(gnttab(&mut g, GNTTABOP_map_grant_ref, 1), 0);
    assert_eq!(get::<GnttabMapGrantRef>(&mut g, GOP).status, GNTST_bad_domain, "a map names the domain's id");
    grant(&mut g, false, 11, GA, 0);
    assert_eq!(map(&mut g, 11, GNTMAP_host_map | GNTMAP_readonly, MAP_VA).status, 1, "not a permit_access grant");
    grant(&mut g, false, 12, SHARED + 200, GTF_permit_access);
    assert_eq!(map(&mut g, 12, GNTMAP_host_map | GNTMAP_readonly, MAP_VA).status, GNTST_bad_page);
    assert_eq!(in_use(&mut g, false, 12), 0);
    // A mapping the guest overwrote is not the grant's any more: unmap fails, the grant stays in use.
    grant(&mut g, false, 13, GA, GTF_permit_access);
    let m = map(&mut g, 13, GNTMAP_host_map, MAP_VA);
    assert_eq!(m.status, GNTST_okay);
    let data = g.d.physmap.mfn(0x1004);
    assert_eq!(set_l1e(&mut g, MAP_VA, (data << 12) | _PAGE_PRESENT | _PAGE_RW), 0);
    assert_eq!(unmap(&mut g, MAP_VA, 0, m.handle), GNTST_general_error);
    assert_eq!(in_use(&mut g, false, 13), GTF_reading | GTF_writing);
    assert_eq!(translate(&g.p.mem, g.v.guest_table, MAP_VA).unwrap().mfn, data, "the guest's entry is left");
    // By PTE address (contains_pte) and with the device mapping too.
    let l1_ma = (l1_table_of(&g, MAP_VA) << 12) | (((MAP_VA >> 12) & 511) * 8);
    let before = refs(&g, GB);
    grant(&mut g, false, 14, GB, GTF_permit_access);
    let m = map(&mut g, 14, GNTMAP_host_map | GNTMAP_contains_pte | GNTMAP_device_map, l1_ma);
    assert_eq!((m.status, m.dev_bus_addr), (GNTST_okay, GB << 12));
    assert_eq!(translate(&g.p.mem, g.v.guest_table, MAP_VA).unwrap().mfn, GB);
    assert_eq!(refs(&g, GB), (before.0 + 2, before.1 + 2, before.2 + 2), "PTE and device hold it");
    assert_eq!(unmap(&mut g, l1_ma + 4, 0, m.handle), GNTST_general_error, "misaligned");
    assert_eq!(unmap(&mut g, l1_ma, 0, m.handle), GNTST_okay);
    assert_eq!(in_use(&mut g, false, 14), GTF_reading | GTF_writing, "the device mapping is left");
    assert_eq!(unmap(&mut g, 0, GB << 12, m.handle), GNTST_okay);
    assert_eq!((in_use(&mut g, false, 14), refs(&g, GB)), (0, before));
}

fn copy(g: &mut Guest, op: GnttabCopy) -> i16 {
    put(g, GOP, &GnttabCopy { status: 99, ..op });
    assert_eq!(gnttab(g, GNTTABOP_copy, 1), 0);
    get::<GnttabCopy>(g, GOP).status
}

#[test]
fn grant_copy_between_grants_and_frames() {
    let mut g = boot();
    for i in 0..8 {
        g.p.mem.write_u64(GA, i, 0x0101_0101_0101_0101 * (i as u64 + 1));
    }
    grant(&mut g, false, 20, GA, GTF_permit_access | GTF_readonly);
    grant(&mut g, false, 21, GB, GTF_permit_access);
    let side = |u: u64, domid: u16, offset: u16| GnttabCopyPtr { u, domid, offset };
    let flags = GNTCOPY_source_gref | GNTCOPY_dest_gref;
    let op = GnttabCopy {
        source: side(20, DOMID_STANDALONE, 8),
        dest: side(21, DOMID_STANDALONE, 100),
        len: 16,
        flags,
        status: 0,
    };
    assert_eq!(copy(&mut g, op), GNTST_okay);
    assert_eq!(&g.p.mem.frame(GB)[100..116], &g.p.mem.frame(GA)[8..24]);
    assert_eq!((in_use(&mut g, false, 20), in_use(&mut g, false, 21)), (0, 0), "pinned only for the copy");
    // A grant to a frame (DOMID_SELF names frames).
    let to_frame = GnttabCopy {
        source: side(20, DOMID_STANDALONE, 0),
        dest: side(GB, DOMID_SELF, 4000),
        len: 64,
        flags: GNTCOPY_source_gref,
        status: 0,
    };
    assert_eq!(copy(&mut g, to_frame), GNTST_okay);
    assert_eq!(&g.p.mem.frame(GB)[4000..4064], &g.p.mem.frame(GA)[0..64]);
    assert_eq!(copy(&mut g, GnttabCopy { len: 97, ..to_frame }), GNTST_bad_copy_arg, "past the page");
    assert_eq!(copy(&mut g, GnttabCopy { dest: side(GB, 0, 0), ..to_frame }), GNTST_permission_denied);
    assert_eq!(copy(&mut g, GnttabCopy { source: side(5000, DOMID_STANDALONE, 0), ..to_frame }), GNTST_bad_gntref);
    assert_eq!(copy(&mut g, GnttabCopy { source: side(21, 9, 0), ..to_frame }), GNTST_bad_domain);
    // The read-only grant cannot be written.
    let into_ro = GnttabCopy {
        source: side(21, DOMID_STANDALONE, 0),
        dest: side(20, DOMID_STANDALONE, 0),
        len: 8,
        flags,
        status: 0,
    };
    assert_eq!(copy(&mut g, into_ro), GNTST_general_error);
    assert_eq!(in_use(&mut g, false, 21), 0);
    // Nor may a page table be the destination.
    let l4 = g.v.guest_table;
    let into_table = GnttabCopy {
        source: side(21, DOMID_STANDALONE, 0),
        dest: side(l4, DOMID_SELF, 0),
        len: 8,
        flags: GNTCOPY_source_gref,
        status: 0,
    };
    assert_eq!(copy(&mut g, into_table), GNTST_general_error);
}

#[test]
fn grant_swap_refuses_entries_in_use() {
    for v2 in [false, true] {
        let mut g = boot();
        if v2 {
            set_version(&mut g, 2);
        }
        grant(&mut g, v2, 30, GA, GTF_permit_access);
        grant(&mut g, v2, 31, GB, GTF_permit_access | GTF_readonly);
        let swap = |g: &mut Guest, a: u32, b: u32| {
            put(g, GOP, &GnttabSwapGrantRef { ref_a: a, ref_b: b, status: 99 });
            assert_eq!(gnttab(g, GNTTABOP_swap_grant_ref, 1), 0);
            get::<GnttabSwapGrantRef>(g, GOP).status
        };
        assert_eq!(swap(&mut g, 30, 31), GNTST_okay);
        let m = map(&mut g, 30, GNTMAP_host_map | GNTMAP_readonly, MAP_VA);
        assert_eq!(m.status, GNTST_okay);
        assert_eq!(translate(&g.p.mem, g.v.guest_table, MAP_VA).unwrap().mfn, GB, "entry 30 is now 31's");
        assert_eq!(swap(&mut g, 30, 31), GNTST_eagain);
        assert_eq!(swap(&mut g, 31, 30), GNTST_eagain);
        assert_eq!(swap(&mut g, 30, 9999), GNTST_bad_gntref);
        assert_eq!(swap(&mut g, 30, 30), GNTST_okay);
        assert_eq!(unmap(&mut g, MAP_VA, 0, m.handle), GNTST_okay);
        assert_eq!(swap(&mut g, 30, 31), GNTST_okay);
        assert_eq!(map(&mut g, 30, GNTMAP_host_map, MAP_VA).status, GNTST_okay, "30 grants GA writable again");
    }
}

/// Random hypercalls with random arguments, many of them pointing at guest
/// memory full of random bytes: whatever a guest asks, Cocoon answers it or
/// stops the guest (the platform's `exit`), and never panics on its own
/// (an index, an overflow, an unwrap). sched_op is left out: a block with
/// no event due waits for the timer.
#[test]
fn random_hypercalls_never_panic_cocoon() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut g = boot();
    let mut bugs = Vec::new();
    let (mut stopped, mut calls) = (0, 0);
    for i in 0..8_000u32 {
        if i % 500 == 0 {
            g = boot();
        }
        for k in 0..64 {
            let v = next();
            // Small numbers are likelier to pass the first checks.
            let v = if v & 1 == 0 { v >> 40 } else { v };
            // The last call may have unmapped the buffer: start again.
            if Domain::write_guest(&mut g.p, BUF + 8 * k, &v).is_err() {
                g = boot();
                put(&mut g, BUF + 8 * k, &v);
            }
        }
        let arg = |kind: u64, r: u64| match kind % 8 {
            0 => BUF + (r % 64) * 8,
            1 => r % 16,
            2 => r,
            3 => HYPERVISOR_VIRT_START + (r % 0x1000) * 8,
            4 => 0,
            5 => DOMID_SELF as u64,
            6 => BUF,
            _ => r % 4096,
        };
        let nr = loop {
            let n = next() % 41;
            if n != __HYPERVISOR_sched_op && n != __HYPERVISOR_sched_op_compat {
                break n;
            }
        };
        let args: [u64; 5] = core::array::from_fn(|_| arg(next(), next()));
        calls += 1;
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hypercall(&mut g, nr, args)));
        if let Err(e) = res {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            if !msg.starts_with("platform exit") {
                bugs.push(format!("hypercall {nr} {args:#x?}: {msg}"));
            }
            stopped += 1;
            g = boot();
        } else if !g.v.kernel_mode || g.p.cr3 != g.v.guest_table {
            // An iret to user mode, or a new base pointer: start again.
            g = boot();
        }
    }
    std::panic::set_hook(quiet);
    eprintln!("{calls} random hypercalls, {stopped} stopped the guest, {} panicked in Cocoon", bugs.len());
    assert!(bugs.is_empty(), "{} of {calls} calls panicked in Cocoon:\n{}", bugs.len(), bugs.join("\n"));
    assert!(stopped < calls / 2, "most calls stopped the guest ({stopped} of {calls}): the test exercises little");
}

/// The fast path's Rust half: `plain_hypercall` runs the plain hypercalls
/// as `dispatch` would and refuses the others, `mmu_update_one` is one plain
/// request's `mmu_update`, and the Rust path's way out after them
/// (`ENTRY_HYPERCALL_DONE`) delivers what is due. Whether the assembly
/// returns directly is the conformance kernel's check
/// `upcall_as_a_hypercall_returns`.
#[test]
fn plain_hypercalls_run_as_dispatch_runs_them() {
    use shim_core::fastpath::{mmu_update_one, plain_hypercall, PLAIN_DONE, PLAIN_NOT};
    use shim_core::stats::hypercall_exit;
    let mut g = boot();
    let count = |g: &Guest, nr: u64| g.v.stats.exits.count[hypercall_exit(nr)];
    // The three that need the guest's registers: nothing done, nothing counted.
    for nr in [__HYPERVISOR_multicall, __HYPERVISOR_iret, __HYPERVISOR_sched_op] {
        let r = plain_hypercall(ctx!(g), &mut g.p, nr, [SCHEDOP_yield, 0, 0, 0, 0]);
        assert_eq!(r.how, PLAIN_NOT, "hypercall {nr}");
        assert_eq!(count(&g, nr), 0, "hypercall {nr}");
    }
    // A plain one runs as dispatch runs it, counted.
    let sp = STACK_TOP - 0x400;
    let r = plain_hypercall(ctx!(g), &mut g.p, __HYPERVISOR_stack_switch, [FLAT_KERNEL_SS as u64, sp, 0, 0, 0]);
    assert_eq!((r.value, r.how, g.v.kernel_sp), (0, PLAIN_DONE, sp));
    assert_eq!(count(&g, __HYPERVISOR_stack_switch), 1);
    let r = plain_hypercall(ctx!(g), &mut g.p, 60, [0; 5]);
    assert_eq!((r.value, r.how), (-XEN_ENOSYS, PLAIN_DONE));
    // One plain mmu_update request, as the assembly reads it: as mmu_update.
    let (l1, idx) = (l1_table_of(&g, MAP_VA), ((MAP_VA >> 12) & 511) as usize);
    let l1_ma = (l1 << 12) | (idx as u64 * 8);
    let old = g.p.mem.read_u64(l1, idx);
    let data = translate(&g.p.mem, g.v.guest_table, ARG).unwrap().mfn;
    assert_eq!(mmu_update_one(ctx!(g), &mut g.p, l1_ma, (data << 12) | _PAGE_PRESENT), 0);
    assert_eq!(g.p.mem.read_u64(l1, idx) & PADDR_MASK, data << 12);
    assert_eq!(count(&g, __HYPERVISOR_mmu_update), 1);
    // A writable mapping of a live page table is refused as mmu_update refuses it.
    let l4 = g.v.guest_table;
    assert_eq!(mmu_update_one(ctx!(g), &mut g.p, l1_ma, (l4 << 12) | _PAGE_PRESENT | _PAGE_RW), -XEN_EINVAL);
    assert_eq!(g.p.mem.read_u64(l1, idx) & PADDR_MASK, data << 12, "unchanged");
    assert_eq!(mmu_update_one(ctx!(g), &mut g.p, l1_ma, old), 0);
    // An upcall pending and unmasked: the Rust path's way out delivers it.
    vcpu_info(&mut g).evtchn_upcall_pending = 1;
    vcpu_info(&mut g).evtchn_upcall_mask = 0;
    let mut regs = kregs(&g);
    regs.vector = ENTRY_HYPERCALL_DONE;
    g.v.event.address = SYNTH_VIRT_BASE + 0x100_0200;
    traps::exit_to_guest(ctx!(g), &mut g.p, &mut regs);
    assert_eq!(regs.rip, g.v.event.address);
}

/// Frames Cocoon writes for as long as the guest keeps them there (the rings
/// it serves, a registered vcpu_info) are held writable, as Xen maps them:
/// unmapped by the guest, such a frame still cannot become a page table that
/// Cocoon's writes would fill with entries nobody validated.
#[test]
fn frames_cocoon_writes_never_become_page_tables() {
    for forwarded in [false, true] {
        let mut g = if forwarded { boot_forwarded(Forward::default()) } else { boot() };
        if !forwarded {
            let (store_mfn, _, console_mfn, _) = rings_of(&mut g);
            for ring in [store_mfn, console_mfn] {
                let (refs_before, types, writable) = refs(&g, ring);
                assert!(writable >= 1 && writable == types && refs_before >= 1, "ring {ring:#x}: {:?}", refs(&g, ring));
            }
        }
        let t = translate(&g.p.mem, g.v.guest_table, ARG + 0x100).unwrap();
        put(&mut g, ARG, &[t.mfn, (ARG + 0x100) & 0xfff]);
        assert_eq!(vcpu_op(&mut g, VCPUOP_register_vcpu_info, 0, ARG), 0);
        assert_eq!(set_l1e(&mut g, ARG, 0), 0);
        assert_eq!(refs(&g, t.mfn), (1, 1, 1), "forwarded {forwarded}: only Cocoon's writable hold is left");
        assert_eq!(mmuext(&mut g, MMUEXT_PIN_L1_TABLE, t.mfn), -XEN_EINVAL, "forwarded {forwarded}");
        assert_eq!(refs(&g, t.mfn), (1, 1, 1));
    }
}

#[test]
fn a_vcpu_whose_timers_go_unserved_is_kicked_once_per_stall() {
    use shim_core::domain::{VCPU_DOWN, VCPU_UP};
    use shim_core::hypercall::sched::{tick, STALLED_NS};
    use std::sync::atomic::Ordering::Relaxed;
    let mut g = boot_with(None, 3);
    let (v1, v2) = (&g.d.vcpus[1], &g.d.vcpus[2]);
    v1.state.store(VCPU_UP, Relaxed);
    v2.state.store(VCPU_DOWN, Relaxed);
    let t0 = g.p.now;
    v1.ticked_ns.store(t0, Relaxed);
    v2.ticked_ns.store(t0, Relaxed);
    // Served recently: nobody is kicked, and vCPU 0 notes its own tick.
    g.p.now = t0 + STALLED_NS - 1;
    tick(ctx!(g), &mut g.p);
    assert!(g.p.kicks.is_empty(), "{:?}", g.p.kicks);
    assert_eq!(g.d.vcpus[0].ticked_ns.load(Relaxed), g.p.now);
    // vCPU 1 (up) has served none for STALLED_NS: kicked; vCPU 2 is down: not.
    g.p.now = t0 + STALLED_NS;
    tick(ctx!(g), &mut g.p);
    assert_eq!(g.p.kicks, vec![1]);
    assert_eq!(g.d.vcpus[1].rescues.load(Relaxed), 1);
    assert_eq!(g.d.vcpus[2].rescues.load(Relaxed), 0);
    // Once per stall: the next kick only after another STALLED_NS.
    g.p.now += STALLED_NS / 2;
    tick(ctx!(g), &mut g.p);
    assert_eq!(g.p.kicks, vec![1]);
    g.p.now += STALLED_NS / 2;
    tick(ctx!(g), &mut g.p);
    assert_eq!(g.p.kicks, vec![1, 1]);
    // Served again: left alone.
    g.d.vcpus[1].ticked_ns.store(g.p.now, Relaxed);
    g.p.now += STALLED_NS / 2;
    tick(ctx!(g), &mut g.p);
    assert_eq!(g.p.kicks, vec![1, 1]);
}

#[test]
fn vcpuop_send_nmi_gives_the_target_an_nmi() {
    let mut g = boot_with(None, 2);
    assert_eq!(vcpu_op(&mut g, VCPUOP_send_nmi, 1, 0), 0);
    assert_eq!(vcpu_op(&mut g, VCPUOP_send_nmi, 0, 0), 0, "also to itself");
    assert_eq!(g.p.nmis_sent, vec![1, 0]);
    assert_eq!(vcpu_op(&mut g, VCPUOP_send_nmi, 1, ARG), -XEN_EINVAL, "takes no argument");
    assert_eq!(vcpu_op(&mut g, VCPUOP_send_nmi, 2, 0), -XEN_ENOENT);
    assert_eq!(g.p.nmis_sent, vec![1, 0]);
}
