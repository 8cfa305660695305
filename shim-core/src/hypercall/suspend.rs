//! `SCHEDOP_shutdown(SHUTDOWN_suspend)`: the guest's part of `xl save` and
//! `xl migrate` on a real Xen.
//!
//! The toolstack asks the HVM domain to suspend (xenstore `control/shutdown`);
//! the PV guest inside reads the request and suspends as a PV guest does,
//! with its start_info's frame in the third argument. Cocoon suspends the HVM
//! domain in turn (`Platform::host_suspend`). When the domain runs again it
//! is either the same one (the suspend was cancelled: a checkpoint, or a save
//! that failed), where nothing was lost, or a new one made from the saved
//! image, where Xen has dropped what a PV toolstack's restore would rebuild
//! for a PV guest. Cocoon rebuilds it, as `xc_sr_restore_x86_pv.c` does,
//! before the guest's own resume runs:
//! - the platform maps shared_info again at the same frame and restores its
//!   event delivery (upcall vectors, `HVM_PARAM_CALLBACK_IRQ`);
//! - shared_info: every 2-level port masked, nothing pending, every legacy
//!   vcpu_info masked (the guest suspends with events masked everywhere, and
//!   unmasks as it binds its ports again);
//! - vcpu_info placements and grant frames are forgotten: the guest registers
//!   and sets them up again (`xen_vcpu_restore`, `gnttab_resume`), and Xen
//!   takes them again only in a domain that has none;
//! - start_info: the xenstore and console frames back from the PFNs the guest
//!   wrote before suspending (`xen_pv_pre_suspend`) to frames, and their
//!   ports as the toolstack allocated them in the new domain.

use core::sync::atomic::Ordering;

use crate::abi::*;
use crate::domain::{default_vcpu_info_maddr, Ctx};
use crate::platform::{HostSuspend, Platform};

pub fn suspend<P: Platform>(c: &mut Ctx, p: &mut P, start_info_mfn: u64) -> i64 {
    let Some(fwd) = c.d.forward else {
        // Standalone: there is no toolstack to save the domain.
        return -XEN_EOPNOTSUPP;
    };
    // Xen leaves the argument to the toolstack, which refuses to save a
    // domain whose start_info frame is not its own (nor one it may write,
    // a page table's): refuse it here.
    if !super::mmu::writable_plain_page(&c.d.lock().frames, start_info_mfn) {
        log::warn!(
            "suspend: start_info frame {start_info_mfn:#x} is not a page of the guest's own that may be written"
        );
        return -XEN_EINVAL;
    }
    log::info!("guest suspends (vCPU {}): suspending the domain for the toolstack", c.v.id);
    match p.host_suspend() {
        Err(rc) => {
            log::warn!("suspend: the domain could not suspend ({rc})");
            rc
        }
        Ok(HostSuspend::Cancelled) => {
            if !fwd.suspend_cancel {
                log::warn!("suspend cancelled, but the kernel has no XEN_ELFNOTE_SUSPEND_CANCEL: told anyway");
            }
            log::info!("suspend cancelled: the domain goes on");
            1
        }
        Ok(HostSuspend::Resumed { store_evtchn, console_evtchn }) => {
            forget_host_state(c, p);
            fix_start_info(c, p, start_info_mfn, store_evtchn, console_evtchn);
            log::info!(
                "domain resumed (restored or migrated): xenstore port {store_evtchn}, console port {}",
                console_evtchn.map_or(-1, |p| p as i64)
            );
            0
        }
    }
}

/// What Xen dropped with the old domain: Cocoon's record of it goes too.
fn forget_host_state<P: Platform>(c: &mut Ctx, p: &mut P) {
    let d = c.d;
    for (id, s) in d.vcpus.iter().enumerate() {
        let old = s.vcpu_info_maddr.swap(default_vcpu_info_maddr(d.shared_info_mfn, id as u32), Ordering::AcqRel);
        if s.vcpu_info_registered.swap(false, Ordering::AcqRel) {
            // Cocoon held the frame (writable) while Xen used it.
            d.lock().frames.put_writable(old >> PAGE_SHIFT);
        }
    }
    // The other vCPUs pick theirs up when the guest takes them down and up
    // again to register their vcpu_info (`xen_vcpu_restore`).
    c.v.vcpu_info_maddr = default_vcpu_info_maddr(d.shared_info_mfn, c.v.id);
    c.v.vcpu_info_registered = false;
    c.v.upcall_held = false;
    d.lock().grant_frames_set_up = 0;
    let si = d.shared_info(p);
    si.evtchn_pending = [0; 64];
    si.evtchn_mask = [!0; 64];
    for vi in si.vcpu_info.iter_mut() {
        vi.evtchn_upcall_pending = 0;
        vi.evtchn_upcall_mask = 1;
        vi.evtchn_pending_sel = 0;
    }
}

/// The guest's start_info as a PV restore leaves it: ring frames, new ports.
fn fix_start_info<P: Platform>(c: &mut Ctx, p: &mut P, mfn: u64, store_evtchn: u32, console_evtchn: Option<u32>) {
    // Held writable while written: it cannot have become a table meanwhile.
    if c.d.lock().frames.get_writable(mfn).is_err() {
        log::warn!("suspend: start_info frame {mfn:#x} is no longer one Cocoon may write: left as it was");
        return;
    }
    write_start_info(c, p, mfn, store_evtchn, console_evtchn);
    c.d.lock().frames.put_writable(mfn);
}

fn write_start_info<P: Platform>(c: &mut Ctx, p: &mut P, mfn: u64, store_evtchn: u32, console_evtchn: Option<u32>) {
    let frame = p.frame_mut(mfn);
    // SAFETY: a guest-owned 4 KiB frame held writable (by the caller); StartInfo
    // (1168 bytes of plain integers) fits and any bit pattern is valid.
    let si = unsafe { &mut *(frame.as_mut_ptr() as *mut StartInfo) };
    let to_mfn = |pfn: u64| (pfn < c.d.physmap.nr_pages()).then(|| c.d.physmap.mfn(pfn));
    match to_mfn(si.store_mfn) {
        Some(m) => si.store_mfn = m,
        None => log::warn!("suspend: start_info's xenstore PFN {:#x} is not the guest's", si.store_mfn),
    }
    si.store_evtchn = store_evtchn;
    match to_mfn(si.console_mfn) {
        Some(m) => si.console_mfn = m,
        None => log::warn!("suspend: start_info's console PFN {:#x} is not the guest's", si.console_mfn),
    }
    if let Some(port) = console_evtchn {
        si.console_evtchn = port;
    }
}
