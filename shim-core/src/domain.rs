//! The PV domain Cocoon runs and its vCPUs: what Xen keeps in `struct
//! domain` (shared by every vCPU, behind the domain lock where it changes)
//! and in `struct vcpu` (owned by the CPU the vCPU runs on), plus [`Ctx`],
//! the view of both every trap, interrupt and hypercall handler works on.
//! The locking rules are in [`crate::sync`].

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::abi::*;
use crate::builder::{GuestMemory, PhysMap};
use crate::events::fifo::{FifoDomain, FifoVcpu};
use crate::events::{self, Backend, EventChannels};
use crate::mm::balloon::Balloon;
use crate::mm::frames::{FrameTable, Owner};
use crate::platform::{ExitReason, Fault, Platform};
use crate::regs::*;
use crate::sync::{Lock, LockGuard};
use crate::xenstore::XenStore;

/// VM assists (`VMASST_TYPE_*`) a 64-bit PV guest may enable.
pub const VMASST_VALID: u64 = 0x3f | (1 << 32);

/// The most vCPUs Cocoon runs (one physical CPU each; TLB-flush masks are a u64).
pub const MAX_VCPUS: usize = 64;

/// A callback address and whether it masks events.
#[derive(Clone, Copy, Debug, Default)]
pub struct Callback {
    pub address: u64,
    pub mask_events: bool,
}
/// One vCPU's PV state, owned by the CPU it runs on.
pub struct Vcpu {
    pub id: u32,
    pub kernel_mode: bool,
    /// MFN of the kernel and (0 = none) user L4.
    pub guest_table: u64,
    pub guest_table_user: u64,
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    pub trap_ctxt: [TrapInfo; 256],
    pub event: Callback,
    pub failsafe: Callback,
    pub syscall: Callback,
    pub syscall32: Callback,
    pub sysenter: Callback,
    /// Where vcpu_info lives: machine address (in shared_info until registered).
    pub vcpu_info_maddr: u64,
    pub vcpu_info_registered: bool,
    pub virtual_ts: bool,
    /// The guest's view of CR4.
    pub cr4: u64,
    pub iopl: u32,
    pub debugreg: [u64; 8],
    /// DR7's I/O-breakpoint enables, kept out of the hardware register (Xen's `dr7_emul`).
    pub dr7_emul: u64,
    /// PHYSDEVOP_set_iobitmap: the guest's I/O bitmap (a kernel address) and
    /// how many ports it covers (Xen's `iobmp`, `iobmp_limit`).
    pub iobmp: u64,
    pub iobmp_limit: u32,
    pub runstate_va: Option<u64>,
    /// The secondary `vcpu_time_info` (`VCPUOP_register_vcpu_time_memory_area`)
    /// as a machine address: guest RAM held by `FrameTable::get_writable`,
    /// 8-aligned, the 32 bytes inside one page. Written with every pvclock update.
    pub time_area: Option<u64>,
    pub singleshot: Option<u64>,
    pub periodic_ns: u64,
    pub periodic_next: u64,
    /// SET_LDT: linear base and entry count (0 = none).
    pub ldt: (u64, u32),
    /// MSRs the guest can change (`traps::msr`).
    pub msr: crate::traps::msr::MsrState,
    /// The guest part of this CPU's GDT (entries 0..FIRST_RESERVED_GDT_ENTRY).
    pub gdt: &'static mut [u64],
    pub gdt_state: GdtState,
    /// An upcall taken back while the guest had events masked (level
    /// delivery on a real Xen, see `hypercall::forward::host_upcall`).
    pub upcall_held: bool,
    /// An NMI for the guest (`xl trigger nmi`, the host's NMI) waits to be
    /// delivered through trap_ctxt[2] (Xen's `nmi_pending`).
    pub nmi_pending: bool,
    /// The guest is in its NMI handler: no other NMI until its next
    /// HYPERVISOR_iret (Xen's `async_exception_mask` for VCPU_TRAP_NMI).
    pub nmi_masked: bool,
    /// The vCPU asked to go down (`VCPUOP_down` on itself): the platform
    /// parks it once the hypercall returns, until `VCPUOP_up`.
    pub going_down: bool,
    pub stats: Stats,
    /// Hypercall numbers already reported as unknown (log once each).
    pub unknown_logged: [u64; 2],
    /// The decoder's operand tables for `traps::fault_address`, made on first use.
    pub insn_info: Option<Box<iced_x86::InstructionInfoFactory>>,
    /// The last two instructions the page-table write emulation decoded,
    /// the latest first: the bytes fetched (and how many) and what they
    /// decoded to. Linux's writes to live L1s come from a few places (two
    /// at each fork, `ptep_set_wrprotect`'s among them), so the same bytes
    /// come again and are not decoded again (`traps::ptwr`).
    pub ptwr_insn: [([u8; 16], usize, Option<crate::traps::decode::Insn>); 2],
}

/// What other vCPUs may see and change of a vCPU: atomics, and the context
/// `VCPUOP_initialise` leaves for it while it is down.
pub struct VcpuShared {
    pub state: AtomicU8,
    /// Where its vcpu_info lives (machine address), for events raised from
    /// other vCPUs.
    pub vcpu_info_maddr: AtomicU64,
    pub vcpu_info_registered: AtomicBool,
    /// Its runstate area (guest virtual address, 0 = none).
    pub runstate_va: AtomicU64,
    /// Its secondary time area: machine address | 1, 0 = none (see
    /// `Vcpu::time_area`). Another vCPU changes it only before this vCPU has
    /// started, under its `boot` lock (`hypercall::vcpu`).
    pub time_area: AtomicU64,
    /// VIRQ -> port bound to this vCPU (Xen's `virq_to_evtchn`), 0 = none.
    pub virq_port: [AtomicU32; events::NR_VIRQS],
    /// Its FIFO event channel control block and queues (standalone).
    pub fifo: FifoVcpu,
    /// The context to start from (`VCPUOP_initialise`), until it comes up.
    pub boot: Lock<Option<Box<VcpuGuestContext>>>,
    /// When its timers were last served (`hypercall::sched::tick`, on the
    /// `now_ns` scale; standalone only): another vCPU kicks it when this
    /// falls far behind (`sched::rescue_stalled`).
    pub ticked_ns: AtomicU64,
    /// How often another vCPU had to kick it so (logged the first time).
    pub rescues: AtomicU32,
}

/// `VcpuShared::state`.
pub const VCPU_UNINITIALISED: u8 = 0;
/// Initialised, not running (`VCPUOP_down`, or never brought up).
pub const VCPU_DOWN: u8 = 1;
pub const VCPU_UP: u8 = 2;

impl VcpuShared {
    fn new(vcpu_info_maddr: u64, state: u8) -> Self {
        VcpuShared {
            state: AtomicU8::new(state),
            vcpu_info_maddr: AtomicU64::new(vcpu_info_maddr),
            vcpu_info_registered: AtomicBool::new(false),
            runstate_va: AtomicU64::new(0),
            time_area: AtomicU64::new(0),
            virq_port: [const { AtomicU32::new(0) }; events::NR_VIRQS],
            fifo: FifoVcpu::new(),
            boot: Lock::new(None),
            ticked_ns: AtomicU64::new(0),
            rescues: AtomicU32::new(0),
        }
    }

    pub fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == VCPU_UP
    }
}

/// Guest descriptor tables as installed by `set_gdt`.
pub struct GdtState {
    pub frames: [u64; FIRST_RESERVED_GDT_PAGE],
    pub nr_frames: usize,
    pub entries: usize,
}

/// The guest's console: its ring page and port.
pub struct ConsoleState {
    pub mfn: u64,
    pub port: u32,
}

/// The domain runs on a real Xen and uses its event channels, grant table,
/// timers and shared_info (`hypercall::forward`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Forward {
    /// Xen raises the upcall interrupt for as long as `evtchn_upcall_pending`
    /// is set (the callback-vector delivery), not once per event.
    pub level: bool,
    /// The guest's console when Cocoon serves it (the host has no PV console
    /// for it).
    pub local_console: Option<LocalConsole>,
    /// The kernel declared XEN_ELFNOTE_SUSPEND_CANCEL: a cancelled suspend
    /// returns 1 and the guest goes on in the same domain.
    pub suspend_cancel: bool,
}

/// A console Cocoon serves on a real Xen: a loopback event channel of Xen's,
/// so that its ports cannot collide with the guest's and Xen raises the
/// guest's end in whichever event ABI (2-level or FIFO) the guest chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalConsole {
    /// The guest's end (start_info's console port); Cocoon takes its sends.
    pub guest_port: u32,
    /// Cocoon's end: a send on it raises `guest_port`.
    pub notify_port: u32,
}

/// Cocoon-provided memory the domain needs.
pub struct DomainSetup {
    pub physmap: PhysMap,
    pub shared_info_mfn: u64,
    pub grant_mfns: [u64; NR_GRANT_FRAMES],
    /// Frames for the v2 grant status (`GNTTABOP_set_version` 2; standalone only).
    pub status_mfns: [u64; NR_STATUS_FRAMES],
    /// The M2P table (one u64 per MFN), readable by the guest at MACH2PHYS_VIRT_START.
    pub m2p: &'static mut [u64],
    /// Entries the guest may look up: `m2p.len()`, or more when frames above the
    /// table (a real Xen's ring pages) have M2P entries mapped for them.
    pub m2p_span: u64,
    pub hypervisor_l4: [u64; 16],
    pub max_mfn: u64,
    pub console_mfn: u64,
    pub store_mfn: u64,
    pub console_port: u32,
    pub store_port: u32,
    pub xenstore: XenStore,
    /// On a real Xen: what is forwarded (None: the standalone backend).
    pub forward: Option<Forward>,
    /// vCPUs the guest may bring up (the first is up at start).
    pub nr_vcpus: u32,
}

/// Grant-table frames (Xen's `max_grant_frames` for the domain).
pub const NR_GRANT_FRAMES: usize = 4;
/// v2 status frames for that many grant frames (Xen's
/// `grant_to_status_frames`: 2-byte status for 256 v2 entries a frame).
pub const NR_STATUS_FRAMES: usize = (NR_GRANT_FRAMES * 256 * 2).div_ceil(PAGE_SIZE as usize);

/// The standalone domain's own id: what its xenstore tree's `domid` says,
/// what its grant entries grant to and its maps name, and what the grant
/// ops that take DOMID_SELF accept beside it.
pub const DOMID_STANDALONE: u16 = 1;

/// What changes per domain while the guest runs: behind the domain lock.
pub struct Locked {
    pub frames: FrameTable,
    pub m2p: &'static mut [u64],
    pub evtchn: EventChannels,
    pub xenstore: XenStore,
    pub grant_frames_set_up: usize,
    /// The standalone grant table's state (`hypercall::grant`).
    pub grant: crate::hypercall::grant::GrantTable,
    pub balloon: Balloon,
}

pub struct Domain {
    pub physmap: PhysMap,
    pub shared_info_mfn: u64,
    pub grant_mfns: [u64; NR_GRANT_FRAMES],
    pub status_mfns: [u64; NR_STATUS_FRAMES],
    pub m2p_span: u64,
    pub console: ConsoleState,
    pub store_mfn: u64,
    pub store_port: u32,
    pub forward: Option<Forward>,
    /// The guest set up FIFO event channels (`EVTCHNOP_init_control`), with
    /// Xen or standalone with Cocoon: its pending events are in its event
    /// array, not in `evtchn_pending_sel`. Set and cleared under the domain lock.
    pub fifo: AtomicBool,
    /// Standalone: the FIFO event array and per-port state (`events::fifo`).
    pub evtchn_fifo: Box<FifoDomain>,
    pub vm_assist: AtomicU64,
    /// The dword last written to port 0xcf8 (`traps::emulate`), Xen's `d->arch.pci_cf8`.
    pub pci_cf8: AtomicU32,
    /// The byte last written to port 0x70 (`traps::emulate`), Xen's `d->arch.cmos_idx`.
    pub cmos_idx: AtomicU8,
    /// SCHEDOP_shutdown_code, u32::MAX + 1 while unset.
    pub shutdown_code: AtomicU64,
    pub vcpus: Box<[VcpuShared]>,
    locked: Lock<Locked>,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Stats {
    /// Exits by kind and emulated instructions (`crate::stats`).
    pub exits: crate::stats::ExitStats,
    pub bounces: u64,
    /// Page faults whose CR2 the platform reported as 0 (see `traps::fault_address`).
    pub cr2_recovered: u64,
}

/// One handler's view: its vCPU (exclusively) and the domain (shared).
pub struct Ctx<'a> {
    pub v: &'a mut Vcpu,
    pub d: &'a Domain,
}

impl Vcpu {
    /// A vCPU as Xen starts one: kernel mode, no callbacks, a 10 ms periodic
    /// timer, vcpu_info in shared_info (vCPUs beyond the legacy 32 have none
    /// until the guest registers one).
    pub fn new(id: u32, vcpu_info_maddr: u64, gdt: &'static mut [u64]) -> Self {
        Vcpu {
            id,
            kernel_mode: true,
            guest_table: 0,
            guest_table_user: 0,
            kernel_ss: FLAT_KERNEL_SS as u64,
            kernel_sp: 0,
            trap_ctxt: [TrapInfo::default(); 256],
            event: Callback::default(),
            failsafe: Callback::default(),
            syscall: Callback::default(),
            syscall32: Callback::default(),
            sysenter: Callback::default(),
            vcpu_info_maddr,
            vcpu_info_registered: false,
            virtual_ts: false,
            cr4: 0,
            iopl: 0,
            debugreg: [0, 0, 0, 0, 0, 0, X86_DR6_DEFAULT, X86_DR7_DEFAULT],
            dr7_emul: 0,
            iobmp: 0,
            iobmp_limit: 0,
            runstate_va: None,
            time_area: None,
            singleshot: None,
            periodic_ns: 10_000_000,
            periodic_next: 0,
            ldt: (0, 0),
            msr: Default::default(),
            gdt,
            gdt_state: GdtState { frames: [0; FIRST_RESERVED_GDT_PAGE], nr_frames: 0, entries: 0 },
            upcall_held: false,
            nmi_pending: false,
            nmi_masked: false,
            going_down: false,
            stats: Stats::default(),
            unknown_logged: [0; 2],
            insn_info: None,
            ptwr_insn: [([0; 16], 0, None); 2],
        }
    }
}

/// vcpu_info of vCPU `id` before the guest registers one: in shared_info for
/// the first 32 (`XEN_LEGACY_MAX_VCPUS`), none (0) beyond.
pub fn default_vcpu_info_maddr(shared_info_mfn: u64, id: u32) -> u64 {
    if (id as usize) < XEN_LEGACY_MAX_VCPUS {
        (shared_info_mfn << PAGE_SHIFT) + id as u64 * core::mem::size_of::<VcpuInfo>() as u64
    } else {
        0
    }
}

impl Domain {
    pub fn new(s: DomainSetup) -> Self {
        let mut frames = FrameTable::new(s.max_mfn, s.hypervisor_l4);
        for &mfn in s.physmap.mfns() {
            frames.set_owner(mfn, Owner::Guest);
        }
        frames.set_owner(s.shared_info_mfn, Owner::SharedWithGuest);
        for &g in &s.grant_mfns {
            frames.set_owner(g, Owner::SharedWithGuest);
        }
        if s.forward.is_some() {
            // The xenstore and console rings are the real Xen's pages, not guest RAM.
            frames.set_owner(s.store_mfn, Owner::SharedWithGuest);
            if s.forward.and_then(|f| f.local_console).is_none() {
                frames.set_owner(s.console_mfn, Owner::SharedWithGuest);
            }
        }
        // The rings Cocoon serves in guest RAM (both standalone, the console
        // when it serves it on a real Xen) are read and written for as long
        // as the domain lives: held writable (Xen's `PGT_writable_page`), so
        // they never leave the guest nor become a page table it writes into.
        for ring in [s.console_mfn, s.store_mfn] {
            let _ = frames.get_writable(ring); // refused for the real Xen's pages
        }
        let mut evtchn = EventChannels::new();
        match s.forward {
            None => {
                evtchn.bind_backend(s.store_port, Backend::Xenstore);
                evtchn.bind_backend(s.console_port, Backend::Console);
            }
            Some(Forward { local_console: Some(c), .. }) => evtchn.bind_backend(c.guest_port, Backend::Console),
            Some(_) => {}
        }
        let m2p = s.m2p;
        let m2p_span = s.m2p_span.max(m2p.len() as u64);
        m2p.fill(INVALID_M2P_ENTRY);
        for (pfn, &mfn) in s.physmap.mfns().iter().enumerate() {
            if let Some(e) = m2p.get_mut(mfn as usize) {
                *e = pfn as u64;
            }
        }
        let nr = (s.nr_vcpus as usize).clamp(1, MAX_VCPUS);
        let vcpus: Vec<VcpuShared> = (0..nr as u32)
            .map(|id| {
                let state = if id == 0 { VCPU_UP } else { VCPU_UNINITIALISED };
                VcpuShared::new(default_vcpu_info_maddr(s.shared_info_mfn, id), state)
            })
            .collect();
        Domain {
            physmap: s.physmap,
            shared_info_mfn: s.shared_info_mfn,
            grant_mfns: s.grant_mfns,
            status_mfns: s.status_mfns,
            m2p_span,
            console: ConsoleState { mfn: s.console_mfn, port: s.console_port },
            store_mfn: s.store_mfn,
            store_port: s.store_port,
            forward: s.forward,
            fifo: AtomicBool::new(false),
            evtchn_fifo: Box::new(FifoDomain::new()),
            vm_assist: AtomicU64::new(0),
            pci_cf8: AtomicU32::new(0),
            cmos_idx: AtomicU8::new(0),
            shutdown_code: AtomicU64::new(1 << 32),
            vcpus: vcpus.into_boxed_slice(),
            locked: Lock::new(Locked {
                frames,
                m2p,
                evtchn,
                xenstore: s.xenstore,
                grant_frames_set_up: 0,
                grant: Default::default(),
                balloon: Balloon::default(),
            }),
        }
    }

    /// vCPU 0, as the domain builder leaves it: `gdt` is its CPU's guest GDT part.
    pub fn boot_vcpu(&self, gdt: &'static mut [u64]) -> Vcpu {
        Vcpu::new(0, default_vcpu_info_maddr(self.shared_info_mfn, 0), gdt)
    }

    /// The domain lock (see `crate::sync` for what it covers and the order).
    #[inline]
    pub fn lock(&self) -> LockGuard<'_, Locked> {
        self.locked.lock()
    }

    pub fn nr_pages(&self) -> u64 {
        self.physmap.nr_pages()
    }

    pub fn nr_vcpus(&self) -> u32 {
        self.vcpus.len() as u32
    }

    pub fn vm_assist(&self, ty: u32) -> bool {
        self.vm_assist.load(Ordering::Relaxed) & (1 << ty) != 0
    }

    /// The shared_info page.
    pub fn shared_info<'a>(&self, mem: &'a mut impl GuestMemory) -> &'a mut SharedInfo {
        let f = mem.frame_mut(self.shared_info_mfn);
        // SAFETY: the frame is 4 KiB, page-aligned, Cocoon-owned; SharedInfo (3136
        // bytes, plain integers) fits and any bit pattern is valid.
        unsafe { &mut *(f.as_mut_ptr() as *mut SharedInfo) }
    }

    /// Raise `port` towards vCPU `vcpu`, in the 2-level bitmaps or the FIFO
    /// queues, whichever the guest chose, and kick that vCPU if this made the
    /// port newly pending (a poller may wait for it) or an upcall pending for
    /// it. Standalone only: on a real Xen ports are Xen's to raise
    /// (`hypercall::forward::notify_local_console`). Takes no lock with
    /// 2-level channels; with FIFO channels the queue lock of `vcpu`
    /// (`events::fifo`). Allocates nothing.
    pub fn send_to_vcpu(&self, p: &mut impl Platform, vcpu: u32, port: u32) {
        debug_assert!(self.forward.is_none(), "port {port} raised by hand on a real Xen");
        if vcpu as usize >= self.vcpus.len() {
            return;
        }
        let raised = if self.fifo.load(Ordering::Acquire) {
            self.fifo_raise(p, vcpu, port)
        } else {
            let si = self.shared_info(p) as *mut SharedInfo;
            let vi = self.vcpu_info_ptr(p, vcpu);
            // SAFETY: both point into Cocoon's direct map (vi may be inside si);
            // `raise` changes them with atomic operations only.
            unsafe { events::raise(si, vi, port) }
        };
        if raised != events::Raised::AlreadyPending {
            p.kick(vcpu);
        }
    }

    /// Raise `port` towards `vcpu` in the FIFO queues (no kick).
    pub fn fifo_raise(&self, mem: &mut impl GuestMemory, vcpu: u32, port: u32) -> events::Raised {
        let vi = self.vcpu_info_ptr(mem, vcpu);
        let queues = |v: u32| self.vcpus.get(v as usize).map(|s| &s.fifo);
        // SAFETY: vi is null or a registered vcpu_info in Cocoon's direct map.
        unsafe { self.evtchn_fifo.set_pending(mem, queues, vcpu, vi, port) }
    }

    /// Is `port` pending, in whichever ABI the guest runs (SCHEDOP_poll)?
    pub fn port_pending(&self, mem: &mut impl GuestMemory, port: u32) -> bool {
        if self.fifo.load(Ordering::Acquire) && self.forward.is_none() {
            return self.evtchn_fifo.is_pending(mem, port);
        }
        let si = self.shared_info(mem) as *mut SharedInfo;
        // SAFETY: shared_info is mapped; the bit is read atomically.
        unsafe { events::is_pending(si, port) }
    }

    /// vCPU `vcpu`'s vcpu_info, as another vCPU reaches it (null before it
    /// has one); change it with atomic operations only (`events`).
    pub fn vcpu_info_ptr(&self, mem: &mut impl GuestMemory, vcpu: u32) -> *mut VcpuInfo {
        let ma = self.vcpus.get(vcpu as usize).map_or(0, |v| v.vcpu_info_maddr.load(Ordering::Acquire));
        if ma == 0 {
            return core::ptr::null_mut();
        }
        let off = (ma & (PAGE_SIZE - 1)) as usize;
        // SAFETY: `register_vcpu_info` checked the offset keeps the 64 bytes in the frame.
        unsafe { mem.frame_mut(ma >> PAGE_SHIFT).as_mut_ptr().add(off) as *mut VcpuInfo }
    }

    /// The vCPU an event-channel port notifies (0 for an unknown port).
    pub fn port_vcpu(&self, port: u32) -> u32 {
        self.lock().evtchn.vcpu_of(port)
    }

    /// The port Cocoon serves for the guest's console on a real Xen, if any.
    pub fn local_console_port(&self) -> Option<u32> {
        self.forward.and_then(|f| f.local_console).map(|c| c.guest_port)
    }

    pub fn set_wallclock<P: Platform>(&self, p: &mut P) {
        if self.forward.is_some() {
            return;
        }
        let secs = p.boot_wallclock();
        let si = self.shared_info(p);
        si.wc_version = si.wc_version.wrapping_add(1) | 1;
        si.wc_sec = secs as u32;
        si.wc_sec_hi = (secs >> 32) as u32;
        si.wc_nsec = 0;
        si.wc_version = si.wc_version.wrapping_add(1);
    }

    /// Is `va` a guest address (canonical, outside the hypervisor's range)?
    pub fn guest_va_ok(va: u64, len: u64) -> bool {
        let end = va.wrapping_add(len);
        let canonical = |a: u64| ((a as i64) << 16 >> 16) as u64 == a;
        end >= va
            && canonical(va)
            && canonical(end.saturating_sub(1))
            && (end <= HYPERVISOR_VIRT_START || va >= HYPERVISOR_VIRT_END)
    }

    pub fn read_guest<P: Platform, T: Copy>(p: &mut P, va: u64) -> Result<T, Fault> {
        let mut v = core::mem::MaybeUninit::<T>::uninit();
        Self::read_guest_into(p, va, &mut v).copied()
    }

    /// [`read_guest`](Self::read_guest) into `out`, read in place (a record
    /// a loop looks at, not moved).
    #[inline(always)]
    pub fn read_guest_into<'a, P: Platform, T: Copy>(
        p: &mut P,
        va: u64,
        out: &'a mut core::mem::MaybeUninit<T>,
    ) -> Result<&'a T, Fault> {
        let n = core::mem::size_of::<T>();
        if !Self::guest_va_ok(va, n as u64) {
            return Err(Fault);
        }
        let at = out.as_mut_ptr() as *mut core::mem::MaybeUninit<u8>;
        // SAFETY: the `n` bytes of `out`, as bytes that may be uninitialised.
        let bytes = unsafe { core::slice::from_raw_parts_mut(at, n) };
        let done = p.copy_from_guest_uninit(va, bytes)?;
        // Initialised (the platform's word for the slice it returns) only if
        // that slice is all of `out`.
        if done.as_ptr() != at as *const u8 || done.len() != n {
            return Err(Fault);
        }
        // SAFETY: every byte of `out` is initialised (above); T is plain data
        // (Copy, integers), valid for any bytes.
        Ok(unsafe { out.assume_init_ref() })
    }

    pub fn write_guest<P: Platform, T: Copy>(p: &mut P, va: u64, v: &T) -> Result<(), Fault> {
        let n = core::mem::size_of::<T>();
        if !Self::guest_va_ok(va, n as u64) {
            return Err(Fault);
        }
        // SAFETY: viewing a plain-data value as its bytes.
        let bytes = unsafe { core::slice::from_raw_parts(v as *const T as *const u8, n) };
        p.copy_to_guest(va, bytes)
    }
}

/// The pvclock values for now (the version is left to [`write_pvclock`]).
pub fn pvclock_now<P: Platform>(p: &P) -> VcpuTimeInfo {
    let (mul, shift) = p.tsc_scale();
    let (tsc, now) = (p.rdtsc(), p.now_ns());
    VcpuTimeInfo {
        tsc_timestamp: tsc,
        system_time: now,
        tsc_to_system_mul: mul,
        tsc_shift: shift,
        flags: XEN_PVCLOCK_TSC_STABLE_BIT,
        ..Default::default()
    }
}

/// Write `u` to a guest-visible `vcpu_time_info` under the version protocol:
/// `begin` (odd) while the fields change, `begin + 1` once they are done.
pub fn write_pvclock(t: &mut VcpuTimeInfo, u: &VcpuTimeInfo, begin: u32) {
    t.version = begin;
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    t.tsc_timestamp = u.tsc_timestamp;
    t.system_time = u.system_time;
    t.tsc_to_system_mul = u.tsc_to_system_mul;
    t.tsc_shift = u.tsc_shift;
    t.flags = u.flags;
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    t.version = begin.wrapping_add(1);
}

/// The secondary time area at machine address `ma` (`Vcpu::time_area`).
pub fn time_area(mem: &mut impl GuestMemory, ma: u64) -> &mut VcpuTimeInfo {
    let f = mem.frame_mut(ma >> PAGE_SHIFT);
    let off = (ma & (PAGE_SIZE - 1)) as usize;
    // SAFETY: registration checked that the 32-byte struct is 8-aligned and
    // inside the page, and holds the frame as guest RAM that cannot become a
    // page table or descriptor page; VcpuTimeInfo is plain integers.
    unsafe { &mut *(f.as_mut_ptr().add(off) as *mut VcpuTimeInfo) }
}

impl Ctx<'_> {
    /// This vCPU's vcpu_info (in shared_info, or where the guest registered it).
    pub fn vcpu_info<'a>(&self, mem: &'a mut impl GuestMemory) -> &'a mut VcpuInfo {
        let ma = self.v.vcpu_info_maddr;
        let f = mem.frame_mut(ma >> PAGE_SHIFT);
        let off = (ma & (PAGE_SIZE - 1)) as usize;
        // SAFETY: `register_vcpu_info` checked the offset is 8-aligned and the 64-byte
        // struct fits in the page; VcpuInfo is plain integers. Other vCPUs change
        // only its pending flags, atomically (`events::raise`).
        unsafe { &mut *(f.as_mut_ptr().add(off) as *mut VcpuInfo) }
    }

    /// Raise `port` towards this vCPU (no kick needed: it is running here).
    pub fn send_to_self(&mut self, p: &mut impl Platform, port: u32) {
        self.d.send_to_vcpu(p, self.v.id, port);
    }

    /// Raise this vCPU's binding of `virq`, if it has one. Takes no lock.
    pub fn raise_virq(&mut self, p: &mut impl Platform, virq: u32) {
        let Some(slot) = self.d.vcpus.get(self.v.id as usize).and_then(|s| s.virq_port.get(virq as usize)) else {
            return;
        };
        let port = slot.load(Ordering::Relaxed);
        if port != 0 {
            self.send_to_self(p, port);
        }
    }

    /// Update the vCPU's pvclock from the platform (a real Xen keeps it itself).
    pub fn update_time<P: Platform>(&mut self, p: &mut P) {
        if self.d.forward.is_some() {
            return;
        }
        let u = pvclock_now(p);
        let t = &mut self.vcpu_info(p).time;
        let begin = t.version.wrapping_add(1) | 1;
        write_pvclock(t, &u, begin);
        let id = self.v.id as usize;
        if self.v.vcpu_info_registered && id < XEN_LEGACY_MAX_VCPUS {
            // Keep the legacy slot current too (Linux reads it early).
            let t = &mut self.d.shared_info(p).vcpu_info[id].time;
            let begin_legacy = t.version.wrapping_add(1) | 1;
            write_pvclock(t, &u, begin_legacy);
        }
        if let Some(ma) = self.v.time_area {
            // The secondary copy, after the primary and with its versions, as
            // Xen's `update_secondary_system_time` writes it.
            write_pvclock(time_area(p, ma), &u, begin);
        }
    }

    /// Switch between guest kernel and user mode (`toggle_guest_mode`).
    pub fn toggle_guest_mode<P: Platform>(&mut self, p: &mut P) {
        self.v.kernel_mode = !self.v.kernel_mode;
        p.swapgs();
        let table = if self.v.kernel_mode { self.v.guest_table } else { self.v.guest_table_user };
        p.load_cr3(table);
    }

    /// Build a bounce frame on the guest kernel stack and redirect `regs` to
    /// `handler` (`create_bounce_frame`). Fails if the guest stack is unusable.
    pub fn bounce<P: Platform>(
        &mut self,
        p: &mut P,
        regs: &mut GuestRegs,
        handler: u64,
        flags: u8,
        error_code: u64,
    ) -> Result<(), &'static str> {
        if handler == 0 {
            return Err("no handler registered");
        }
        self.v.stats.bounces += 1;
        let mut cs = regs.cs;
        let sp = if !self.v.kernel_mode {
            self.toggle_guest_mode(p);
            self.v.kernel_sp
        } else {
            cs &= !3;
            regs.rsp
        };
        let vi = self.vcpu_info(p);
        let saved_mask = vi.evtchn_upcall_mask as u64;
        if flags & TBF_INTERRUPT != 0 {
            vi.evtchn_upcall_mask = 1;
        }
        let mut rflags = regs.rflags & !(X86_EFLAGS_IF | X86_EFLAGS_IOPL);
        if saved_mask == 0 {
            rflags |= X86_EFLAGS_IF;
        }
        if self.d.vm_assist(VMASST_TYPE_architectural_iopl) {
            rflags |= (self.v.iopl as u64 & 3) << 12;
        }
        let mut frame = [0u64; 13];
        let mut n = 0;
        let mut push = |v: u64| {
            frame[n] = v;
            n += 1;
        };
        push(regs.rcx);
        push(regs.r11);
        if flags & TBF_FAILSAFE != 0 {
            for _ in 0..4 {
                push(0); // ds, es, fs, gs as loaded: reported null
            }
        }
        if flags & TBF_EXCEPTION_ERRCODE != 0 {
            push(error_code);
        }
        push(regs.rip);
        push(cs | (saved_mask << 32));
        push(rflags);
        push(regs.rsp);
        push(regs.ss);
        let base = (sp & !0xf).wrapping_sub(n as u64 * 8);
        // Frames may not be written into the hypervisor's range.
        if !Domain::guest_va_ok(base, n as u64 * 8) {
            return Err("guest kernel stack lies in the hypervisor's range");
        }
        // SAFETY: viewing the u64 array as bytes.
        let bytes = unsafe { core::slice::from_raw_parts(frame.as_ptr() as *const u8, n * 8) };
        if p.copy_to_guest(base, bytes).is_err() {
            return Err("cannot write the bounce frame to the guest kernel stack");
        }
        regs.rip = handler;
        regs.cs = FLAT_KERNEL_CS as u64;
        regs.ss = FLAT_KERNEL_SS as u64;
        regs.rsp = base;
        regs.rflags &= !crate::fastpath::EXCEPTION_CLEAR_FLAGS;
        Ok(())
    }

    /// A level upcall Cocoon took (see `hypercall::forward::host_upcall`):
    /// once the guest has events unmasked, give it back if any port may still
    /// be pending for it. With 2-level channels the selector says whether the
    /// guest handled them all meanwhile; with FIFO channels only the guest's
    /// queues do, so the upcall always comes back.
    pub fn release_held_upcall(&mut self, mem: &mut impl GuestMemory) {
        if !self.v.upcall_held {
            return;
        }
        let fifo = self.d.fifo.load(Ordering::Relaxed);
        let vi = self.vcpu_info(mem);
        if vi.evtchn_upcall_mask == 0 {
            if fifo || vi.evtchn_pending_sel != 0 {
                vi.evtchn_upcall_pending = 1;
            }
            self.v.upcall_held = false;
        }
    }

    /// Would [`deliver_events`](Self::deliver_events) have anything to do
    /// now: an NMI to deliver or, with events unmasked, an upcall pending or
    /// held back (masked, neither changes anything)?
    pub fn events_due(&mut self, mem: &mut impl GuestMemory) -> bool {
        if self.v.nmi_pending && !self.v.nmi_masked {
            return true;
        }
        let held = self.v.upcall_held;
        let vi = self.vcpu_info(mem);
        vi.evtchn_upcall_mask == 0 && (vi.evtchn_upcall_pending != 0 || held)
    }

    /// Before any return to the guest: take a pending, unmasked upcall.
    pub fn deliver_events<P: Platform>(&mut self, p: &mut P, regs: &mut GuestRegs) -> Result<(), &'static str> {
        if self.v.nmi_pending && !self.v.nmi_masked {
            self.deliver_nmi(p, regs)?;
        }
        self.release_held_upcall(p);
        let vi = self.vcpu_info(p);
        if vi.evtchn_upcall_pending != 0 && vi.evtchn_upcall_mask == 0 {
            let h = self.v.event.address;
            return self.bounce(p, regs, h, TBF_INTERRUPT, 0);
        }
        Ok(())
    }

    /// An NMI, as Xen's `process_nmi` delivers it: through trap_ctxt[2] (set by
    /// the trap table or CALLBACKTYPE_nmi) like an exception, masking further
    /// NMIs until the guest's next HYPERVISOR_iret; lost if there is no handler.
    #[cold]
    fn deliver_nmi<P: Platform>(&mut self, p: &mut P, regs: &mut GuestRegs) -> Result<(), &'static str> {
        self.v.nmi_pending = false;
        let t = self.v.trap_ctxt[TRAP_nmi as usize];
        if t.address == 0 {
            log::warn!("vCPU {}: an NMI, and the guest has no NMI handler: dropped", self.v.id);
            return Ok(());
        }
        let flags = if t.flags & TI_IF_MASK != 0 { TBF_INTERRUPT } else { 0 };
        self.bounce(p, regs, t.address, flags, 0)?;
        self.v.nmi_masked = true;
        log::info!("vCPU {}: NMI delivered to the guest", self.v.id);
        Ok(())
    }

    /// Crash the guest: report and end the machine.
    pub fn crash<P: Platform>(&mut self, p: &mut P, regs: &GuestRegs, why: &str) -> ! {
        log::error!(
            "guest crashed on vCPU {}: {why}\n  rip {:#018x} cs {:#x} rflags {:#x} rsp {:#018x} ss {:#x} ({} mode)\n  \
             rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n  rsi {:#018x} rdi {:#018x} rbp {:#018x} \
             r8 {:#018x}\n  r9 {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}\n  r13 {:#018x} r14 {:#018x} \
             r15 {:#018x} vector {:#x} error {:#x}",
            self.v.id,
            regs.rip,
            regs.cs,
            regs.rflags,
            regs.rsp,
            regs.ss,
            if self.v.kernel_mode { "kernel" } else { "user" },
            regs.rax,
            regs.rbx,
            regs.rcx,
            regs.rdx,
            regs.rsi,
            regs.rdi,
            regs.rbp,
            regs.r8,
            regs.r9,
            regs.r10,
            regs.r11,
            regs.r12,
            regs.r13,
            regs.r14,
            regs.r15,
            regs.vector,
            regs.error_code
        );
        p.exit(ExitReason::GuestFault)
    }
}
