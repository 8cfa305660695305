//! What the core asks of the platform underneath.

/// Why the machine ends. The platform maps each to a distinct status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// `cocoon.dry-run` finished: everything was set up, nothing was run.
    DryRunDone,
    /// The guest asked for SHUTDOWN_poweroff.
    GuestPoweroff,
    /// The guest asked for SHUTDOWN_reboot.
    GuestReboot,
    /// The guest asked for SHUTDOWN_crash (e.g. after a panic).
    GuestCrash,
    /// Cocoon was given something it cannot run (no kernel, malformed kernel).
    BadInput,
    /// Cocoon itself faulted or panicked.
    CocoonFault,
    /// The guest got itself into a state it cannot leave (the PV analogue of a triple fault).
    GuestFault,
}

impl ExitReason {
    pub const ALL: [ExitReason; 7] = [
        ExitReason::DryRunDone,
        ExitReason::GuestPoweroff,
        ExitReason::GuestReboot,
        ExitReason::GuestCrash,
        ExitReason::BadInput,
        ExitReason::CocoonFault,
        ExitReason::GuestFault,
    ];
}

/// How the domain came back from `Platform::host_suspend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostSuspend {
    /// Xen cancelled the suspend (a checkpoint, a failed save or migration):
    /// the same domain goes on and keeps everything.
    Cancelled,
    /// The domain was saved and runs again, restored or migrated: a new domain.
    /// The platform has mapped shared_info again and restored its event
    /// delivery; the guest's event channels and grant frames are gone. The
    /// ports of the domain's xenstore and console as the toolstack set them now
    /// (the console's: the host's PV console, or the guest's end of the one
    /// Cocoon serves).
    Resumed { store_evtchn: u32, console_evtchn: Option<u32> },
}

/// A guest memory access faulted (unmapped, read-only, or not the guest's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

/// The CPU and devices underneath, as the PV core needs them. The firmware
/// implements it over real hardware (and, later, a real Xen); tests over
/// plain memory. All methods are cheap: they sit on the trap path.
pub trait Platform: crate::builder::GuestMemory {
    /// Copy from guest virtual memory in the current address space. `Err` on a fault.
    fn copy_from_guest(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// Copy to guest virtual memory in the current address space. `Err` on a fault.
    fn copy_to_guest(&mut self, va: u64, buf: &[u8]) -> Result<(), Fault>;
    /// [`copy_from_guest`](Self::copy_from_guest) into bytes not yet
    /// initialised: `buf` itself, all of it initialised, on success. (This
    /// default zeroes them first; a platform whose copy needs no initialised
    /// destination skips that.)
    fn copy_from_guest_uninit<'a>(
        &mut self,
        va: u64,
        buf: &'a mut [core::mem::MaybeUninit<u8>],
    ) -> Result<&'a mut [u8], Fault> {
        buf.fill(core::mem::MaybeUninit::new(0));
        // SAFETY: every byte of `buf` was just initialised; MaybeUninit<u8> and u8 share their layout.
        let bytes = unsafe { &mut *(buf as *mut [core::mem::MaybeUninit<u8>] as *mut [u8]) };
        self.copy_from_guest(va, bytes)?;
        Ok(bytes)
    }

    /// Load `mfn` (an L4 with Cocoon's slots) into CR3; flushes the TLB.
    fn load_cr3(&mut self, l4_mfn: u64);
    fn flush_tlb(&mut self);
    fn invlpg(&mut self, va: u64);

    fn rdmsr(&mut self, msr: u32) -> u64;
    fn wrmsr(&mut self, msr: u32, value: u64);
    /// Exchange the active and inactive GS bases.
    fn swapgs(&mut self);
    /// Load a selector into the *user* %gs (null on a bad selector).
    fn load_user_gs_selector(&mut self, sel: u16);
    fn set_cr0_ts(&mut self, ts: bool);
    fn read_cr2(&self) -> u64;
    fn read_cr0(&self) -> u64;
    /// This CPU's CR4 (for the bits a PV guest sees from it).
    fn read_cr4(&self) -> u64;
    /// Set or clear CR4.FSGSBASE on this CPU, for the vCPU it runs (the
    /// guest's choice; the bit only lets ring 3 use {rd,wr}{fs,gs}base).
    fn set_cr4_fsgsbase(&mut self, on: bool);
    /// Load this CPU's debug register `reg` (0-3, 6 or 7) for the vCPU it runs.
    fn write_debugreg(&mut self, reg: u8, value: u64);
    /// DR6 as the last #DB left it; the register is reset to its quiet value.
    fn take_dr6(&mut self) -> u64;
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// XCR0 bits the CPU supports.
    fn xcr0_supported(&self) -> u64;
    fn xsetbv(&mut self, index: u32, value: u64);

    /// Nanoseconds since Cocoon started, and the TSC behind it.
    fn now_ns(&self) -> u64;
    fn rdtsc(&self) -> u64;
    /// pvclock scale: `(tsc_to_system_mul, tsc_shift)`.
    fn tsc_scale(&self) -> (u32, i8);
    /// Wall-clock seconds at `now_ns() == 0`.
    fn boot_wallclock(&self) -> u64;
    /// Arm the one timer for `deadline_ns` (or disarm with `None`).
    fn set_timer(&mut self, deadline_ns: Option<u64>);
    /// Let interrupts in and wait for one (`sti; hlt; cli`).
    fn wait_for_interrupt(&mut self);

    fn console_write(&mut self, bytes: &[u8]);
    fn console_read(&mut self) -> Option<u8>;

    /// End the machine.
    fn exit(&mut self, reason: ExitReason) -> !;

    /// A hypercall to the Xen underneath, with pointers valid in the current
    /// address space; `None` when there is none (the standalone backend).
    fn xen_hypercall(&mut self, nr: u64, args: [u64; 5]) -> Option<i64>;
    /// The same, made by the CPU of vCPU `vcpu` (Xen accepts some operations
    /// on a running vCPU only from that vCPU itself); pointers must be to
    /// Cocoon's own memory. Waits for the result.
    fn xen_hypercall_on(&mut self, vcpu: u32, nr: u64, args: [u64; 5]) -> Option<i64>;
    /// Suspend the domain for the toolstack (`xl save`, `xl migrate`) and,
    /// once it runs again, re-establish what the Xen underneath dropped.
    /// `Err`: no Xen underneath, or Xen's error code.
    fn host_suspend(&mut self) -> Result<HostSuspend, i64>;
    /// Did an NMI come to this CPU while Cocoon ran (not the guest)? Clears it.
    fn take_nmi(&mut self) -> bool;
    /// Give vCPU `vcpu` an NMI as if one had come to its CPU while Cocoon
    /// ran (`take_nmi` there returns it), and kick it (`VCPUOP_send_nmi`).
    fn send_nmi(&mut self, vcpu: u32);
    /// Does Cocoon have to poll for the host's events (no upcall interrupt)?
    fn host_events_polled(&self) -> bool;

    /// Make vCPU `vcpu` look at its events soon: interrupt the CPU it runs on
    /// (or wake it from `wait_for_interrupt`); nothing for the calling vCPU.
    fn kick(&mut self, vcpu: u32);
    /// Flush the TLBs of the vCPUs in `mask` (bit n = vCPU n), the caller's
    /// own included: one page (`Some(va)`) or everything but global pages.
    /// Returns once every remote flush is done.
    fn flush_tlb_mask(&mut self, mask: u64, va: Option<u64>);
    /// Start vCPU `vcpu`, which `VCPUOP_up` just marked up, on its CPU.
    fn start_vcpu(&mut self, vcpu: u32);
}
