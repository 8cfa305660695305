//! The standalone platform: the PV core's `Platform` over the real (virtual)
//! CPU, the local APIC timer and COM1.

use core::sync::atomic::Ordering;

use hvm_glue::layout::phys_to_virt;
use hvm_glue::serial::COM1;
use shim_core::builder::{Frame, GuestMemory};
use shim_core::platform::{ExitReason, Fault, Platform};

use crate::arch::{cpu, percpu, timer, trap_entry};

pub struct Hw;

impl GuestMemory for Hw {
    #[inline]
    fn frame(&self, mfn: u64) -> &Frame {
        crate::memory::DirectMapGuest.frame_static(mfn)
    }
    #[inline]
    fn frame_mut(&mut self, mfn: u64) -> &mut Frame {
        crate::memory::DirectMapGuest.frame_static_mut(mfn)
    }
}

impl Platform for Hw {
    fn copy_from_guest(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        // SAFETY: `va` was checked to be a guest address (not Cocoon's range); a
        // fault inside the copy is turned into an error by its fixup.
        match unsafe { trap_entry::cocoon_copy_guest(buf.as_mut_ptr(), va as *const u8, buf.len()) } {
            0 => Ok(()),
            _ => Err(Fault),
        }
    }

    fn copy_from_guest_uninit<'a>(
        &mut self,
        va: u64,
        buf: &'a mut [core::mem::MaybeUninit<u8>],
    ) -> Result<&'a mut [u8], Fault> {
        // SAFETY: as in `copy_from_guest`; the copy only writes `buf` (through a
        // raw pointer, so its bytes need not be initialised).
        match unsafe { trap_entry::cocoon_copy_guest(buf.as_mut_ptr() as *mut u8, va as *const u8, buf.len()) } {
            // SAFETY: the copy reports 0 only when it wrote every byte of `buf`;
            // MaybeUninit<u8> and u8 share their layout.
            0 => Ok(unsafe { &mut *(buf as *mut [core::mem::MaybeUninit<u8>] as *mut [u8]) }),
            _ => Err(Fault),
        }
    }

    fn copy_to_guest(&mut self, va: u64, buf: &[u8]) -> Result<(), Fault> {
        // SAFETY: as above; writes honour the guest's read-only mappings (CR0.WP).
        match unsafe { trap_entry::cocoon_copy_guest(va as *mut u8, buf.as_ptr(), buf.len()) } {
            0 => Ok(()),
            _ => Err(Fault),
        }
    }

    fn load_cr3(&mut self, l4_mfn: u64) {
        // The L4 was validated and carries Cocoon's slots, so Cocoon stays mapped.
        crate::arch::syscall_entry::load_cr3(percpu::this().cpu as usize, l4_mfn << 12);
    }

    fn flush_tlb(&mut self) {
        crate::arch::syscall_entry::reload_cr3(percpu::this().cpu as usize);
    }

    fn invlpg(&mut self, va: u64) {
        // SAFETY: INVLPG only drops a translation.
        unsafe { core::arch::asm!("invlpg [{}]", in(reg) va) };
    }

    fn rdmsr(&mut self, msr: u32) -> u64 {
        // SAFETY: the core only reads MSRs that exist: segment bases, EFER, and
        // the microcode revision on Intel/AMD (architectural there).
        unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
    }

    fn wrmsr(&mut self, msr: u32, value: u64) {
        // SAFETY: the core only writes the segment bases (canonical values) and
        // SPEC_CTRL, PRED_CMD and TSC_AUX when the CPUID it passes on enumerates
        // them, with their reserved bits clear (`shim_core::traps::msr`).
        unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) }
    }

    fn swapgs(&mut self) {
        // SAFETY: Cocoon never uses GS itself; swapping exchanges the guest's two bases.
        unsafe { core::arch::asm!("swapgs") };
    }

    fn load_user_gs_selector(&mut self, sel: u16) {
        // SAFETY: a bad selector faults inside the routine and loads null instead.
        unsafe { trap_entry::cocoon_load_user_gs(sel) };
    }

    fn set_cr0_ts(&mut self, ts: bool) {
        // SAFETY: CR0.TS only makes FPU use trap (Cocoon never uses the FPU).
        unsafe {
            if ts {
                core::arch::asm!("mov {t}, cr0", "or {t}, 8", "mov cr0, {t}", t = out(reg) _);
            } else {
                core::arch::asm!("clts");
            }
        }
    }

    fn read_cr2(&self) -> u64 {
        x86_64::registers::control::Cr2::read_raw()
    }

    fn read_cr0(&self) -> u64 {
        x86_64::registers::control::Cr0::read_raw()
    }

    fn read_cr4(&self) -> u64 {
        x86_64::registers::control::Cr4::read_raw()
    }

    fn set_cr4_fsgsbase(&mut self, on: bool) {
        cpu::set_cr4_fsgsbase(on);
    }

    fn write_debugreg(&mut self, reg: u8, value: u64) {
        cpu::write_debugreg(reg, value);
    }

    fn take_dr6(&mut self) -> u64 {
        cpu::take_dr6()
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        cpu::cpuid(leaf, subleaf)
    }

    fn xcr0_supported(&self) -> u64 {
        cpu::xcr0_supported()
    }

    fn xsetbv(&mut self, index: u32, value: u64) {
        // SAFETY: the core checked `value` against what the CPU supports.
        unsafe { core::arch::asm!("xsetbv", in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32) };
    }

    fn now_ns(&self) -> u64 {
        timer::now_ns()
    }

    fn rdtsc(&self) -> u64 {
        timer::rdtsc()
    }

    fn tsc_scale(&self) -> (u32, i8) {
        let s = timer::scale();
        (s.mul, s.shift)
    }

    fn boot_wallclock(&self) -> u64 {
        timer::wallclock_at_boot()
    }

    fn set_timer(&mut self, deadline_ns: Option<u64>) {
        timer::set_deadline(deadline_ns);
    }

    fn wait_for_interrupt(&mut self) {
        // This CPU's flag, set by its timer interrupt while Cocoon itself runs.
        let fired = &percpu::this().timer_fired;
        if fired.swap(false, Ordering::Relaxed) {
            return;
        }
        // SAFETY: sti;hlt is atomic with respect to interrupts; the handler only
        // touches `timer_fired` and the APIC when it interrupts Cocoon.
        unsafe { core::arch::asm!("sti", "hlt", "cli") };
        fired.store(false, Ordering::Relaxed);
    }

    fn console_write(&mut self, bytes: &[u8]) {
        COM1.lock().write_bytes(bytes);
        hvm_glue::xen_hvm::console_write(bytes, false);
    }

    fn console_read(&mut self) -> Option<u8> {
        COM1.lock().try_read_byte()
    }

    fn exit(&mut self, reason: ExitReason) -> ! {
        crate::fault::stop(reason)
    }

    fn xen_hypercall(&mut self, nr: u64, args: [u64; 5]) -> Option<i64> {
        hvm_glue::xen_hvm::hypercall5(nr, args)
    }

    #[inline]
    fn take_nmi(&mut self) -> bool {
        let latch = &crate::arch::percpu::this().nmi_latched;
        latch.load(Ordering::Relaxed) && latch.swap(false, Ordering::Relaxed)
    }

    fn send_nmi(&mut self, vcpu: u32) {
        crate::vcpus::send_nmi(vcpu);
    }

    fn host_suspend(&mut self) -> Result<shim_core::platform::HostSuspend, i64> {
        crate::xen::suspend()
    }

    fn host_events_polled(&self) -> bool {
        crate::xen::host_events_polled()
    }

    fn xen_hypercall_on(&mut self, vcpu: u32, nr: u64, args: [u64; 5]) -> Option<i64> {
        crate::vcpus::xen_call_on(vcpu, nr, args)
    }

    fn kick(&mut self, vcpu: u32) {
        crate::vcpus::kick(vcpu);
    }

    fn flush_tlb_mask(&mut self, mask: u64, va: Option<u64>) {
        crate::vcpus::flush_tlb_mask(mask, va);
    }

    fn start_vcpu(&mut self, vcpu: u32) {
        crate::vcpus::kick(vcpu);
    }
}

/// The direct-map address of machine frame `mfn` (for tables Cocoon builds).
pub fn frame_va(mfn: u64) -> u64 {
    phys_to_virt(mfn << 12)
}
