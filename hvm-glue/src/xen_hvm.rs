//! Talking to the Xen underneath an HVM/PVH Cocoon: the hypercall page
//! (installed through the MSR that CPUID names), HVM parameters, and the
//! domain's PV console ring, which Cocoon writes its log to (`xl console`).

use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use shim_core::abi::{
    __HYPERVISOR_event_channel_op, __HYPERVISOR_hvm_op, __HYPERVISOR_sched_op, EVTCHNOP_send, HVMOP_get_param,
    HVMOP_set_param, SCHEDOP_shutdown, SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, XenHvmParam,
    XenconsInterface, DOMID_SELF, XENCONS_OUT_SIZE, XEN_ENOSYS,
};
use shim_core::platform::ExitReason;
use spin::Mutex;

use crate::xen_detect::XenInfo;

/// Direct-map address of the hypercall page (0 until installed).
static HYPERCALL_PAGE: AtomicU64 = AtomicU64::new(0);

/// Install the hypercall page: `page_va`/`page_pa` is a page of Cocoon's own.
pub fn install_hypercall_page(xen: &XenInfo, page_va: u64, page_pa: u64) {
    #[cfg(target_os = "none")]
    // SAFETY: writing the Xen hypercall MSR with a page Cocoon owns makes Xen fill
    // that page with hypercall stubs; nothing else uses the page.
    unsafe {
        x86_64::registers::model_specific::Msr::new(xen.hypercall_msr).write(page_pa);
    }
    #[cfg(not(target_os = "none"))]
    let _ = (xen, page_pa);
    HYPERCALL_PAGE.store(page_va, Ordering::SeqCst);
}

/// A hypercall through the page with up to five arguments (rdi, rsi, rdx,
/// r10, r8, as the 64-bit ABI has them); `None` before the page is installed.
pub fn hypercall5(nr: u64, a: [u64; 5]) -> Option<i64> {
    let page = HYPERCALL_PAGE.load(Ordering::Relaxed);
    if page == 0 || nr >= 128 {
        return None;
    }
    #[cfg(target_os = "none")]
    {
        let ret: i64;
        // SAFETY: the stub at page + nr*32 is Xen's; it clobbers at most rax and the
        // argument registers (declared), plus rcx and r11. Pointer arguments refer to
        // memory mapped in the current address space, as Xen reads it. No red zone.
        unsafe {
            core::arch::asm!(
                "call {entry}",
                entry = in(reg) page + nr * 32,
                inlateout("rax") 0i64 => ret,
                inlateout("rdi") a[0] => _,
                inlateout("rsi") a[1] => _,
                inlateout("rdx") a[2] => _,
                inlateout("r10") a[3] => _,
                inlateout("r8") a[4] => _,
                lateout("rcx") _,
                lateout("r11") _,
            );
        }
        Some(ret)
    }
    #[cfg(not(target_os = "none"))]
    {
        let _ = a;
        None
    }
}

/// A two-argument hypercall; `None` before the page is installed.
pub fn hypercall2(nr: u64, a1: u64, a2: u64) -> Option<i64> {
    hypercall5(nr, [a1, a2, 0, 0, 0])
}

/// The `SHUTDOWN_*` code that ends this domain for `reason`: the guest's own
/// choice, a clean poweroff after a dry run, a crash for everything else.
pub fn shutdown_code(reason: ExitReason) -> u32 {
    match reason {
        ExitReason::GuestPoweroff | ExitReason::DryRunDone => SHUTDOWN_poweroff,
        ExitReason::GuestReboot => SHUTDOWN_reboot,
        ExitReason::GuestCrash | ExitReason::BadInput | ExitReason::CocoonFault | ExitReason::GuestFault => {
            SHUTDOWN_crash
        }
    }
}

/// Ask Xen to shut this domain down (`SCHEDOP_shutdown`, in every Xen since 3.0).
/// Returns only if there is no hypercall page or Xen refused.
pub fn shutdown(reason: ExitReason) -> Option<i64> {
    let arg: u32 = shutdown_code(reason);
    hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown, &arg as *const u32 as u64)
}

/// `HVMOP_set_param` for this domain: 0 or Xen's error (-ENOSYS without a hypercall page).
pub fn set_param(index: u32, value: u64) -> i64 {
    let p = XenHvmParam { domid: DOMID_SELF, _pad: 0, index, value };
    hypercall2(__HYPERVISOR_hvm_op, HVMOP_set_param, &p as *const _ as u64).unwrap_or(-XEN_ENOSYS)
}

/// `HVMOP_get_param` for this domain.
pub fn get_param(index: u32) -> Option<u64> {
    let mut p = XenHvmParam { domid: DOMID_SELF, _pad: 0, index, value: 0 };
    let rc = hypercall2(__HYPERVISOR_hvm_op, HVMOP_get_param, &mut p as *mut XenHvmParam as u64)?;
    (rc == 0).then_some(p.value)
}

fn evtchn_send(port: u32) {
    let p = port;
    let _ = hypercall2(__HYPERVISOR_event_channel_op, EVTCHNOP_send, &p as *const u32 as u64);
}

/// This domain's PV console ring (`io/console.h`), as its frontend, for
/// Cocoon's log until the guest starts. A guest given the same ring is its
/// only producer from then on (see `console_hand_over`): two producers race
/// whenever Cocoon logs from a trap taken inside the guest's ring write, and a
/// producer index that goes backwards makes xenconsoled ignore the ring for
/// good.
pub struct XenConsole {
    ring: *mut u8,
    port: u32,
    /// Set when a wait for room timed out: drop instead of waiting again until
    /// the consumer moves.
    stalled: bool,
}

// SAFETY: the ring pointer refers to the console page in the direct map; all
// access goes through the mutex below.
unsafe impl Send for XenConsole {}

pub static XEN_CONSOLE: Mutex<Option<XenConsole>> = Mutex::new(None);

/// The guest owns the console ring: only the fatal path still writes to it.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

const OUT: usize = offset_of!(XenconsInterface, output);
const OUT_SIZE: u32 = XENCONS_OUT_SIZE as u32;
const OUT_CONS: usize = offset_of!(XenconsInterface, out_cons);
const OUT_PROD: usize = offset_of!(XenconsInterface, out_prod);

/// How long a write waits for xenconsoled to make room, in TSC cycles (about
/// 0.2 s at 2.5 GHz), and how often it notifies again meanwhile.
const ROOM_WAIT_CYCLES: u64 = 1 << 29;
const RENOTIFY_CYCLES: u64 = 1 << 24;

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl XenConsole {
    fn rd(&self, off: usize) -> u32 {
        // SAFETY: `off` is inside the 4 KiB ring page; Xen's console daemon updates it.
        unsafe { core::ptr::read_volatile(self.ring.add(off) as *const u32) }
    }

    fn wr(&self, off: usize, v: u32) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(self.ring.add(off) as *mut u32, v) }
    }

    /// Publish `prod`, notify, and wait (boundedly) until the ring has room.
    fn wait_for_room(&mut self, prod: u32) -> bool {
        core::sync::atomic::fence(Ordering::SeqCst);
        self.wr(OUT_PROD, prod);
        evtchn_send(self.port);
        if self.stalled {
            return false;
        }
        let start = rdtsc();
        let mut last_notify = start;
        while prod.wrapping_sub(self.rd(OUT_CONS)) >= OUT_SIZE {
            let now = rdtsc();
            if now.wrapping_sub(start) > ROOM_WAIT_CYCLES {
                self.stalled = true;
                return false;
            }
            if now.wrapping_sub(last_notify) > RENOTIFY_CYCLES {
                evtchn_send(self.port);
                last_notify = now;
            }
            core::hint::spin_loop();
        }
        true
    }

    /// Put `bytes` on the ring and notify. Nobody reading: what does not fit
    /// is dropped rather than holding Cocoon up.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut prod = self.rd(OUT_PROD);
        for &b in bytes {
            if prod.wrapping_sub(self.rd(OUT_CONS)) >= OUT_SIZE {
                if !self.wait_for_room(prod) {
                    return;
                }
            } else if self.stalled {
                self.stalled = false; // the consumer moved
            }
            // SAFETY: the index is masked into the 2 KiB output area.
            unsafe { self.ring.add(OUT + (prod % OUT_SIZE) as usize).write_volatile(b) };
            prod = prod.wrapping_add(1);
        }
        core::sync::atomic::fence(Ordering::SeqCst);
        self.wr(OUT_PROD, prod);
        evtchn_send(self.port);
    }
}

/// The guest starts with this ring as its console: from now on Cocoon writes
/// to it only on the fatal path (its log stays on the serial port).
pub fn console_hand_over() {
    HANDED_OVER.store(true, Ordering::Relaxed);
}

/// Write Cocoon's log to the domain's console ring (PFN, port), as
/// `xen_host::bring_up` found it; `ring_va` turns a PFN into a direct-map address.
pub fn init_console((pfn, port): (u64, u32), ring_va: impl Fn(u64) -> u64) {
    *XEN_CONSOLE.lock() = Some(XenConsole { ring: ring_va(pfn) as *mut u8, port, stalled: false });
}

/// The console's port changed (a restored domain's, allocated anew).
pub fn console_set_port(port: u32) {
    if let Some(c) = XEN_CONSOLE.lock().as_mut() {
        c.port = port;
        c.stalled = false;
    }
}

/// Write to the Xen console if there is one (the fault path may break a held lock).
pub fn console_write(bytes: &[u8], force: bool) {
    if !force && HANDED_OVER.load(Ordering::Relaxed) {
        return;
    }
    if force && XEN_CONSOLE.is_locked() {
        // SAFETY: only on the fatal path, which never returns to the holder.
        unsafe { XEN_CONSOLE.force_unlock() };
    }
    if let Some(c) = XEN_CONSOLE.lock().as_mut() {
        c.write(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_codes_follow_the_reason() {
        assert_eq!(shutdown_code(ExitReason::GuestPoweroff), SHUTDOWN_poweroff);
        assert_eq!(shutdown_code(ExitReason::GuestReboot), SHUTDOWN_reboot);
        assert_eq!(shutdown_code(ExitReason::GuestCrash), SHUTDOWN_crash);
        assert_eq!(shutdown_code(ExitReason::CocoonFault), SHUTDOWN_crash);
        assert_eq!(shutdown_code(ExitReason::DryRunDone), SHUTDOWN_poweroff);
    }
}
