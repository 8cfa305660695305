//! Time: the TSC calibrated against the PIT, the local APIC timer (one-shot)
//! as the timer interrupt (one per CPU; the rates are calibrated once, on the
//! boot CPU), and the CMOS RTC for the wall clock.

use core::sync::atomic::{AtomicU64, Ordering};

use shim_core::time::TimeScale;
use x86_64::instructions::port::Port;

use super::apic::{
    self, APIC_LVT_TIMER, APIC_SVR, APIC_TIMER_CUR, APIC_TIMER_DIV, APIC_TIMER_INIT, APIC_TPR, SVR_ENABLE,
};

/// Vector of the local APIC timer, and the spurious vector.
pub const TIMER_VECTOR: u8 = 0xf0;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const PIT_HZ: u64 = 1_193_182;
const CALIBRATE_MS: u64 = 50;

static APIC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC0: AtomicU64 = AtomicU64::new(0);
static SCALE: AtomicU64 = AtomicU64::new(0);
static WALLCLOCK: AtomicU64 = AtomicU64::new(0);
/// The TSC when Cocoon's Rust code started.
static ENTRY_TSC: AtomicU64 = AtomicU64::new(0);

/// Remember when Cocoon started (first thing in `main`).
pub fn note_entry() {
    ENTRY_TSC.store(rdtsc(), Ordering::Relaxed);
}

/// Log (at debug level) how long Cocoon has been booting when `phase` ends.
pub fn log_phase(phase: &str) {
    let ns = since_entry().1;
    log::debug!("boot: {phase} done at {}.{:03} ms", ns / 1_000_000, ns / 1000 % 1000);
}

/// The TSC at Cocoon's start, and the nanoseconds since then (once calibrated).
pub fn since_entry() -> (u64, u64) {
    let t0 = ENTRY_TSC.load(Ordering::Relaxed);
    (t0, scale().apply(rdtsc().wrapping_sub(t0)))
}

/// APIC timer divide configuration: divide by 16.
const APIC_TIMER_DIV_16: u32 = 0b0011;
/// LVT mask bit.
const LVT_MASKED: u32 = 1 << 16;

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn eoi() {
    apic::eoi();
}

/// This CPU's local APIC: software-enabled with the spurious vector, every
/// priority accepted, the timer dividing by 16 and masked until a deadline is set.
pub fn init_local_apic() {
    apic::write(APIC_SVR, SVR_ENABLE | SPURIOUS_VECTOR as u32);
    apic::write(APIC_TPR, 0);
    apic::write(APIC_TIMER_DIV, APIC_TIMER_DIV_16);
    apic::write(APIC_LVT_TIMER, LVT_MASKED);
}

pub fn scale() -> TimeScale {
    let v = SCALE.load(Ordering::Relaxed);
    TimeScale { mul: v as u32, shift: (v >> 32) as u8 as i8 }
}

/// Nanoseconds since calibration, on the same scale the guest's pvclock uses.
pub fn now_ns() -> u64 {
    scale().apply(rdtsc().wrapping_sub(TSC0.load(Ordering::Relaxed)))
}

pub fn wallclock_at_boot() -> u64 {
    WALLCLOCK.load(Ordering::Relaxed)
}

/// TSC rates outside this range mean the measurement went wrong.
const TSC_HZ_SANE: core::ops::RangeInclusive<u64> = 50_000_000..=20_000_000_000;

/// The TSC rate measured against PIT channel 2, or `None` when there is no
/// working PIT (a Xen PVH domain has none): the wait is bounded.
fn tsc_hz_from_pit() -> Option<u64> {
    let count = (PIT_HZ * CALIBRATE_MS / 1000) as u16;
    // SAFETY: the PIT and port 0x61 belong to Cocoon (the guest has no I/O ports).
    let (t0, t1) = unsafe {
        let mut p61 = Port::<u8>::new(0x61);
        let v = p61.read();
        p61.write((v & !0x02) | 0x01);
        Port::<u8>::new(0x43).write(0xb0);
        Port::<u8>::new(0x42).write(count as u8);
        Port::<u8>::new(0x42).write((count >> 8) as u8);
        let t0 = rdtsc();
        // At most ~1e10 cycles (seconds on any CPU) before giving up on the PIT.
        while p61.read() & 0x20 == 0 {
            if rdtsc().wrapping_sub(t0) > 10_000_000_000 {
                return None;
            }
        }
        (t0, rdtsc())
    };
    Some((t1 - t0) * 1000 / CALIBRATE_MS).filter(|hz| TSC_HZ_SANE.contains(hz))
}

/// The TSC rate the CPU (or Xen) states exactly: Xen's time leaf (kHz, at
/// `xen_time_leaf`), else leaf 0x15 (crystal ratio).
fn tsc_hz_stated(xen_time_leaf: Option<u32>) -> Option<u64> {
    let c = super::cpu::cpuid;
    if let Some(leaf) = xen_time_leaf {
        let khz = c(leaf, 0)[2] as u64;
        if khz != 0 {
            return Some(khz * 1000);
        }
    }
    if c(0, 0)[0] >= 0x15 {
        let [den, num, crystal, _] = c(0x15, 0);
        if den != 0 && num != 0 && crystal != 0 {
            return Some(crystal as u64 * num as u64 / den as u64);
        }
    }
    None
}

/// The processor's base frequency (leaf 0x16): near the TSC rate on most
/// CPUs, but not stated as it; the last resort.
fn tsc_hz_nominal() -> Option<u64> {
    let c = super::cpu::cpuid;
    if c(0, 0)[0] >= 0x16 {
        let mhz = c(0x16, 0)[0] as u64;
        if mhz != 0 {
            return Some(mhz * 1_000_000);
        }
    }
    None
}

/// Find the TSC rate (as CPUID or Xen states it, else measured against the
/// PIT over 50 ms, else the nominal rate), calibrate the APIC timer against
/// the TSC, enable the local APIC, and read the RTC. `xen_time_leaf` is Xen's
/// time leaf when Cocoon runs on a Xen that has one; `on_xen` whether it runs
/// on Xen at all.
pub fn init(xen_time_leaf: Option<u32>, on_xen: bool) -> Result<(), &'static str> {
    apic::init_boot_cpu(on_xen);
    init_local_apic(); // the timer masked while calibrating

    let sane = |hz: &u64| TSC_HZ_SANE.contains(hz);
    let (tsc, source) = if let Some(hz) = tsc_hz_stated(xen_time_leaf).filter(sane) {
        (hz, if xen_time_leaf.is_some() { "Xen's time leaf" } else { "CPUID" })
    } else if let Some(hz) = tsc_hz_from_pit() {
        (hz, "PIT")
    } else {
        (tsc_hz_nominal().filter(sane).ok_or("no PIT and no TSC rate in CPUID")?, "CPUID base frequency")
    };
    // APIC timer ticks over 10 ms of TSC.
    apic::write(APIC_TIMER_INIT, u32::MAX);
    let t0 = rdtsc();
    while rdtsc().wrapping_sub(t0) < tsc / 100 {}
    let apic_ticks = u32::MAX - apic::read(APIC_TIMER_CUR);
    apic::write(APIC_TIMER_INIT, 0);
    let apic = apic_ticks as u64 * 100;
    if apic == 0 {
        return Err("the local APIC timer does not count");
    }
    APIC_HZ.store(apic, Ordering::Relaxed);
    let s = TimeScale::for_hz(tsc);
    SCALE.store(s.mul as u64 | ((s.shift as u8 as u64) << 32), Ordering::Relaxed);
    TSC0.store(rdtsc(), Ordering::Relaxed);
    WALLCLOCK.store(read_rtc(), Ordering::Relaxed);
    log::info!(
        "time: TSC {} MHz (from the {source}), APIC timer {} MHz, wall clock {}",
        tsc / 1_000_000,
        apic / 1_000_000,
        wallclock_at_boot()
    );
    Ok(())
}

/// Fire TIMER_VECTOR on this CPU once at `deadline_ns` (on the `now_ns` scale), or never.
pub fn set_deadline(deadline_ns: Option<u64>) {
    match deadline_ns {
        None => apic::write(APIC_TIMER_INIT, 0),
        Some(t) => {
            let delta = t.saturating_sub(now_ns()).max(10_000);
            let ticks = (delta as u128 * APIC_HZ.load(Ordering::Relaxed) as u128 / 1_000_000_000) as u64;
            apic::write(APIC_LVT_TIMER, TIMER_VECTOR as u32);
            apic::write(APIC_TIMER_INIT, ticks.clamp(1, u32::MAX as u64) as u32);
        }
    }
}

fn cmos(reg: u8) -> u8 {
    // SAFETY: the CMOS index/data ports belong to Cocoon.
    unsafe {
        Port::<u8>::new(0x70).write(reg);
        Port::<u8>::new(0x71).read()
    }
}

/// Seconds since the Unix epoch, from the RTC.
fn read_rtc() -> u64 {
    // No RTC (a Xen PVH domain has none) reads all ones: no wall clock then.
    if cmos(0x0a) == 0xff && cmos(0x0b) == 0xff {
        return 0;
    }
    // Wait out an update in progress, but not forever.
    let t0 = rdtsc();
    while cmos(0x0a) & 0x80 != 0 {
        if rdtsc().wrapping_sub(t0) > 10_000_000_000 {
            return 0;
        }
    }
    let status_b = cmos(0x0b);
    let bcd = status_b & 0x04 == 0;
    let conv = |v: u8| if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v } as u64;
    let (sec, min, mut hour) = (conv(cmos(0x00)), conv(cmos(0x02)), cmos(0x04));
    let (day, mon, year) = (conv(cmos(0x07)), conv(cmos(0x08)), conv(cmos(0x09)) + 2000);
    let pm = hour & 0x80 != 0;
    hour &= 0x7f;
    let mut hour = conv(hour);
    if status_b & 0x02 == 0 && pm {
        hour = (hour + 12) % 24;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mon <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let m = mon as i64;
    let doy = ((153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5) as u64 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3600 + min * 60 + sec
}
