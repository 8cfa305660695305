//! Cocoon on a real Xen: the bring-up (hypercall page, Cocoon's log on the
//! domain's PV console, what the host offers and how its events arrive) and
//! the preparation of a domain whose event channels, grant table, timers,
//! shared_info, xenstore and console are the real Xen's (issue 6).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use alloc::format;
use alloc::string::String;
use hvm_glue::xen_detect::XenInfo;
use hvm_glue::xen_host::{self, Compat, Delivery, XenHost};
use hvm_glue::xen_hvm;
use log::{error, info};
use shim_core::abi::*;
use shim_core::builder::HostRings;
use shim_core::domain::{Forward, LocalConsole};
use shim_core::hypercall::forward;
use shim_core::platform::HostSuspend;

/// The vector Xen raises Cocoon's event interrupt on.
pub const UPCALL_VECTOR: u8 = 0xf3;

/// The host's events come without an interrupt: Cocoon polls for them.
static POLLED: AtomicBool = AtomicBool::new(false);
/// The upcall interrupt goes through the local APIC and needs an EOI.
static NEEDS_EOI: AtomicBool = AtomicBool::new(false);
/// Events come through the platform device's INTx, routed to the boot CPU only.
static INTX: AtomicBool = AtomicBool::new(false);
/// Per-vCPU upcall vectors: each AP asks for its own.
static UPCALL_PER_VCPU: AtomicBool = AtomicBool::new(false);
/// Xen's CPUID base, when on Xen.
static XEN_BASE: AtomicU32 = AtomicU32::new(0);
/// What a resumed domain must ask Xen for again (see `suspend`).
#[derive(Clone, Copy, Debug)]
struct ResumeState {
    compat: Compat,
    delivery: Delivery,
    /// The platform device's (device, function, pin) with `Delivery::PlatformIntx`.
    intx: Option<(u8, u8, u8)>,
    /// Where the guest's shared_info is (set by `prepare`).
    shared_info_gfn: u64,
    /// The console Cocoon serves, when the domain has no PV console.
    local_console: Option<LocalConsole>,
}
static RESUME: spin::Mutex<Option<ResumeState>> = spin::Mutex::new(None);
/// The kernel declared XEN_ELFNOTE_SUSPEND_CANCEL.
static SUSPEND_CANCEL: AtomicBool = AtomicBool::new(false);

pub fn set_suspend_cancel(yes: bool) {
    SUSPEND_CANCEL.store(yes, Ordering::Relaxed);
}

pub fn suspend_cancel() -> bool {
    SUSPEND_CANCEL.load(Ordering::Relaxed)
}

/// An AP is not the HVM vCPU of its number (or could not get its upcall
/// vector): the guest keeps one vCPU on Xen.
static AP_MISMATCH: AtomicBool = AtomicBool::new(false);

/// Must the calling CPU poll for the host's events? With the platform INTx
/// only the boot CPU gets the interrupt (Xen raises it for vCPU 0's events):
/// the other CPUs look at their vcpu_info from their own timer.
pub fn host_events_polled() -> bool {
    // Also asked on the boot stack (the first timer, armed before the guest
    // starts), where only the boot CPU runs and `percpu::this()` does not work.
    POLLED.load(Ordering::Relaxed)
        || (INTX.load(Ordering::Relaxed) && !crate::arch::boot::on_boot_stack() && crate::arch::percpu::this().cpu != 0)
}

/// Can guest vCPU n run on CPU n (every AP is the HVM domain's vCPU of its number)?
pub fn aps_match_vcpus() -> bool {
    !AP_MISMATCH.load(Ordering::Relaxed)
}

/// On an AP, on Xen: check that CPU `cpu` is the HVM domain's vCPU `cpu`
/// (guest vCPU numbers pass to Xen unchanged), and ask for its upcall
/// vector when events come that way.
pub fn ap_setup(cpu: u32) {
    let base = XEN_BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // Leaf base+4: HVM features; EBX is the vCPU id when EAX says so (Xen 4.5+).
    let r = core::arch::x86_64::__cpuid_count(base + 4, 0);
    if r.eax & hvm_glue::xen_detect::XEN_HVM_CPUID_VCPU_ID_PRESENT != 0 && r.ebx != cpu {
        error!("xen: CPU {cpu} is the domain's vCPU {}: the guest keeps one vCPU", r.ebx);
        AP_MISMATCH.store(true, Ordering::Relaxed);
        return;
    }
    if UPCALL_PER_VCPU.load(Ordering::Relaxed) {
        let v = XenHvmEvtchnUpcallVector { vcpu: cpu, vector: UPCALL_VECTOR };
        let rc = xen_hvm::hypercall2(__HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector, &v as *const _ as u64);
        if rc != Some(0) {
            error!("xen: vCPU {cpu}: no upcall vector ({rc:?}): the guest keeps one vCPU");
            AP_MISMATCH.store(true, Ordering::Relaxed);
        }
    }
}

pub fn upcall_needs_eoi() -> bool {
    NEEDS_EOI.load(Ordering::Relaxed)
}

/// The hypercall page, Cocoon's log on the PV console, then the host's offer.
/// `unplug`: unplug the emulated disks and NICs now (`cocoon.boot=disk` does it
/// later, once it has read the guest's kernel from the first disk).
pub fn bring_up(x: &XenInfo, compat: Compat, unplug: bool) -> Option<XenHost> {
    let layout = core::alloc::Layout::from_size_align(4096, 4096).expect("page layout");
    // SAFETY: a page-sized, page-aligned allocation; it stays Cocoon's for good.
    let page = unsafe { alloc::alloc::alloc_zeroed(layout) } as u64;
    if page == 0 {
        error!("xen: no memory for the hypercall page");
        return None;
    }
    xen_hvm::install_hypercall_page(x, page, hvm_glue::layout::virt_to_phys(page));
    // The console ring as the host offers it (none under cocoon.compat=3.4:
    // Xen 3.4 has no console parameter).
    let mut host = xen_host::bring_up(UPCALL_VECTOR, compat);
    match host.console {
        Some(c) => {
            xen_hvm::init_console(c, |pfn| hvm_glue::layout::phys_to_virt(pfn << 12));
            info!("xen: hypercall page installed; Cocoon's log also on the PV console (pfn {:#x}, port {})", c.0, c.1)
        }
        None => info!("xen: hypercall page installed; no PV console used"),
    }
    if unplug {
        unplug_emulated_devices();
    }
    let mut intx = None;
    if host.delivery == Delivery::Polled {
        match platform_intx() {
            Ok((d, dev)) => {
                host.delivery = d;
                intx = Some(dev);
            }
            Err(why) => info!("xen: no platform PCI INTx ({why}): polling for events"),
        }
    }
    *RESUME.lock() =
        Some(ResumeState { compat, delivery: host.delivery, intx, shared_info_gfn: 0, local_console: None });
    POLLED.store(host.delivery == Delivery::Polled, Ordering::Relaxed);
    NEEDS_EOI.store(host.delivery.needs_eoi(), Ordering::Relaxed);
    INTX.store(matches!(host.delivery, Delivery::PlatformIntx { .. }), Ordering::Relaxed);
    UPCALL_PER_VCPU.store(matches!(host.delivery, Delivery::UpcallVector(_)), Ordering::Relaxed);
    XEN_BASE.store(x.base, Ordering::Relaxed);
    info!("xen: {host}{}", if compat == Compat::Xen34 { " (cocoon.compat=3.4)" } else { "" });
    Some(host)
}

/// The guest's disks and NICs are the PV ones: unplug the device model's
/// emulated twins (an HVM domain's; a PVH domain has no device model).
pub fn unplug_emulated_devices() {
    use hvm_glue::unplug::{self, MachinePorts, Unplug};
    let v = |s: &str| s.parse::<u32>().unwrap_or(0);
    let build = v(env!("CARGO_PKG_VERSION_MAJOR")) << 16
        | v(env!("CARGO_PKG_VERSION_MINOR")) << 8
        | v(env!("CARGO_PKG_VERSION_PATCH"));
    match unplug::unplug_emulated_devices(&mut MachinePorts, build) {
        Unplug::Done { protocol } => {
            info!("xen: emulated disks and NICs unplugged (platform device protocol {protocol})")
        }
        Unplug::NoProtocol => info!("xen: no emulated-device unplug protocol here"),
        Unplug::Blacklisted => error!("xen: the host blacklisted Cocoon's build {build:#x}: emulated devices stay"),
    }
}

/// Events through the Xen platform PCI device's INTx, routed by the I/O APIC
/// to Cocoon's vector (the mechanism Xen 3.4 has).
fn platform_intx() -> Result<(Delivery, (u8, u8, u8)), String> {
    use hvm_glue::ioapic::{IoApic, XEN_HVM_IOAPIC_BASE};
    use hvm_glue::pci::{self, PortPci, XEN_PLATFORM_DEVICE, XEN_PLATFORM_VENDOR};
    let dev =
        pci::find(&PortPci, XEN_PLATFORM_VENDOR, XEN_PLATFORM_DEVICE).ok_or("no Xen platform device on PCI bus 0")?;
    if dev.pin == 0 {
        return Err("the platform device has no interrupt pin".into());
    }
    let gsi = pci::xen_hvm_intx_gsi(dev.dev, dev.pin);
    // SAFETY: the I/O APIC's register window (emulated by Xen), in the direct map;
    // its version register is checked before anything is written.
    let ioapic = unsafe { IoApic::new(hvm_glue::layout::phys_to_virt(XEN_HVM_IOAPIC_BASE)) };
    let entries = ioapic.entries().ok_or("no I/O APIC at 0xfec00000")?;
    if gsi >= entries {
        return Err(format!("GSI {gsi} is beyond the I/O APIC's {entries} pins"));
    }
    // Physical destination: this CPU's initial APIC ID.
    let apic_id = (core::arch::x86_64::__cpuid(1).ebx >> 24) as u8;
    ioapic.route_level(gsi, UPCALL_VECTOR, apic_id);
    xen_host::set_callback_intx(dev.dev, dev.func, dev.pin)
        .map_err(|rc| format!("HVM_PARAM_CALLBACK_IRQ refused the PCI INTx ({rc})"))?;
    Ok((Delivery::PlatformIntx { gsi, vector: UPCALL_VECTOR }, (dev.dev, dev.func, dev.pin)))
}

/// Where the guest's console is on a real Xen.
#[derive(Clone, Copy, Debug)]
pub enum GuestConsole {
    /// The domain's own PV console ring (GFN) and port.
    Host(u64, u32),
    /// No PV console for the domain: Cocoon serves one on COM1, over a
    /// loopback channel of Xen's (see `LocalConsole`).
    Local(LocalConsole),
}

/// What the domain builder and the domain need to run a forwarded guest.
#[derive(Clone, Copy, Debug)]
pub struct ForwardPlan {
    pub forward: Forward,
    pub store: (u64, u32),
    pub console: GuestConsole,
}

impl ForwardPlan {
    /// The guest's xenstore and console ports.
    pub fn ports(&self) -> (u32, u32) {
        match self.console {
            GuestConsole::Host(_, p) | GuestConsole::Local(LocalConsole { guest_port: p, .. }) => (self.store.1, p),
        }
    }

    /// The guest's console is the domain's own PV console (not one Cocoon serves).
    pub fn host_console(&self) -> bool {
        matches!(self.console, GuestConsole::Host(..))
    }

    /// Which of the guest's ring pages are the real Xen's (the builder leaves them as they are).
    pub fn host_rings(&self) -> HostRings {
        HostRings { store: true, console: self.host_console() }
    }

    /// The real Xen's ring pages the guest maps (not guest RAM).
    pub fn ring_gfns(&self) -> ([u64; 2], usize) {
        match self.console {
            GuestConsole::Host(gfn, _) => ([self.store.0, gfn], 2),
            GuestConsole::Local(_) => ([self.store.0, 0], 1),
        }
    }
}

/// A loopback event channel for the console Cocoon serves: a port of this
/// domain's (the guest's end) bound to a second one (Cocoon's). Xen raises
/// the guest's end when Cocoon sends on its own, in whichever event ABI the
/// guest sets up; and Xen allocated both, so neither collides with the guest's.
fn loopback_channel() -> Result<LocalConsole, i64> {
    let call = |cmd: u64, arg: u64| match xen_hvm::hypercall2(__HYPERVISOR_event_channel_op, cmd, arg) {
        Some(0) => Ok(()),
        Some(rc) => Err(rc),
        None => Err(-XEN_ENOSYS),
    };
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    call(EVTCHNOP_alloc_unbound, &mut a as *mut _ as u64)?;
    let mut b = EvtchnBindInterdomain { remote_dom: DOMID_SELF, remote_port: a.port, local_port: 0 };
    call(EVTCHNOP_bind_interdomain, &mut b as *mut _ as u64)?;
    Ok(LocalConsole { guest_port: a.port, notify_port: b.local_port })
}

/// Make the real shared_info the guest's (at `shared_info_gfn`) and decide
/// where its xenstore and console are.
pub fn prepare(host: &XenHost, shared_info_gfn: u64) -> Result<ForwardPlan, String> {
    let store = host.store.ok_or("the domain has no xenstore ring")?;
    match forward::add_to_physmap(&mut crate::hw::Hw, XENMAPSPACE_shared_info, 0, shared_info_gfn) {
        0 => {}
        rc => return Err(format!("cannot map shared_info (XENMEM_add_to_physmap: {rc})")),
    }
    let console = match host.console {
        Some((gfn, port)) => GuestConsole::Host(gfn, port),
        None => {
            GuestConsole::Local(loopback_channel().map_err(|rc| format!("cannot set up a console channel ({rc})"))?)
        }
    };
    let local_console = match console {
        GuestConsole::Local(c) => Some(c),
        GuestConsole::Host(..) => None,
    };
    let forward = Forward { level: host.delivery.level(), local_console, suspend_cancel: false };
    if let Some(r) = RESUME.lock().as_mut() {
        r.shared_info_gfn = shared_info_gfn;
        r.local_console = local_console;
    }
    info!(
        "xen: forwarding the guest's events, grants and timers; shared_info at gfn {shared_info_gfn:#x}; xenstore gfn \
         {:#x} port {}; console {}",
        store.0,
        store.1,
        match console {
            GuestConsole::Host(g, p) => format!("gfn {g:#x} port {p} (the domain's PV console)"),
            GuestConsole::Local(c) => {
                format!("on COM1 through Cocoon (port {}, raised through port {})", c.guest_port, c.notify_port)
            }
        }
    );
    Ok(ForwardPlan { forward, store, console })
}

/// Suspend the HVM domain for the toolstack (the guest asked for
/// SHUTDOWN_suspend) and, when it runs again as a new domain (restored or
/// migrated), ask Xen again for what it keeps per domain and did not save:
/// shared_info at its frame, the event delivery, the console Cocoon serves;
/// the emulated disks and NICs are unplugged again (a new device model).
pub fn suspend() -> Result<HostSuspend, i64> {
    let Some(st) = *RESUME.lock() else {
        return Err(-XEN_EOPNOTSUPP);
    };
    let reason: u32 = SHUTDOWN_suspend;
    let rc = xen_hvm::hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown, &reason as *const u32 as u64)
        .unwrap_or(-XEN_ENOSYS);
    match rc {
        0 => {}
        1 => return Ok(HostSuspend::Cancelled),
        rc => return Err(rc),
    }
    // A new domain: nothing may run on the old one's shared_info.
    let rc = forward::add_to_physmap(&mut crate::hw::Hw, XENMAPSPACE_shared_info, 0, st.shared_info_gfn);
    if rc != 0 {
        error!("xen: resumed, but shared_info cannot be mapped again (XENMEM_add_to_physmap: {rc})");
        crate::fault::stop(shim_core::platform::ExitReason::CocoonFault);
    }
    let nr_vcpus = crate::arch::percpu::nr_online() as u32;
    if let Err(rc) = xen_host::restore_delivery(st.delivery, nr_vcpus, st.intx) {
        error!("xen: resumed, but the event delivery cannot be set up again ({rc})");
        crate::fault::stop(shim_core::platform::ExitReason::CocoonFault);
    }
    let (store, console) = xen_host::rings(st.compat);
    let Some((_, store_port)) = store else {
        error!("xen: resumed without a xenstore ring");
        crate::fault::stop(shim_core::platform::ExitReason::CocoonFault);
    };
    if let Some((_, port)) = console {
        xen_hvm::console_set_port(port);
    }
    let console_port = match st.local_console {
        None => console.map(|c| c.1),
        Some(old) => match loopback_channel() {
            Ok(new) if new == old => Some(new.guest_port),
            Ok(new) => {
                error!(
                    "xen: the console's channel came back as ports {}/{} (was {}/{}): the guest's console is lost",
                    new.guest_port, new.notify_port, old.guest_port, old.notify_port
                );
                Some(old.guest_port)
            }
            Err(rc) => {
                error!("xen: cannot set up the console's channel again ({rc})");
                Some(old.guest_port)
            }
        },
    };
    unplug_emulated_devices();
    info!("xen: resumed as a new domain: shared_info, {} event delivery, store port {store_port}", st.delivery.name());
    Ok(HostSuspend::Resumed { store_evtchn: store_port, console_evtchn: console_port })
}
