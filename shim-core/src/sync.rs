//! Locks for state several vCPUs share, and the locking rules.
//!
//! Execution model (Xen's pv-shim): vCPU *n* runs only on physical CPU *n*,
//! and Cocoon handles its traps there with interrupts off. So:
//!
//! - A [`Vcpu`](crate::domain::Vcpu) belongs to its CPU: no lock. Another
//!   vCPU reaches it only through its [`VcpuShared`](crate::domain::VcpuShared)
//!   (atomics, and a small lock for the context `VCPUOP_initialise` leaves
//!   for a vCPU that is down).
//! - The trap and hypercall paths of one vCPU that touch only that vCPU
//!   (bounces, iret, syscalls, stack_switch, fpu_taskswitch, callbacks,
//!   segment bases, timers, raising its own VIRQs) take no lock.
//! - Event-channel pending and mask bits in shared_info, and the pending
//!   flags in each vcpu_info, are changed with atomic operations only, as the
//!   guest's own vCPUs change them (Xen's `guest_test_and_set_bit`).
//! - Everything else per domain (page types and counts, the M2P, event
//!   channel bindings, grant frames, the xenstore and console backends) is
//!   behind the one domain lock, [`Domain::lock`](crate::domain::Domain::lock).
//!
//! Order: the domain lock, then a down vCPU's boot-context lock, then the
//! console. A vCPU's FIFO event queue lock (`events::fifo`; two of them in
//! vCPU order) comes after the domain lock and before nothing else. No lock is held across a return to the guest or a wait for an
//! interrupt. A CPU that waits for a lock, or for other CPUs to acknowledge a
//! TLB flush, keeps answering flush requests meanwhile (the [`relax`] hook),
//! so a lock holder waiting for acknowledgements cannot deadlock against a
//! CPU spinning for its lock with interrupts off.

use core::sync::atomic::{AtomicPtr, Ordering};

static RELAX: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Set what a CPU does while it spins (the firmware answers its CPU's
/// mailbox there). Without a hook, spinning is a plain pause.
pub fn set_relax(f: fn()) {
    RELAX.store(f as *mut (), Ordering::Release);
}

/// One round of waiting: the hook, or a pause.
#[inline]
pub fn relax() {
    let f = RELAX.load(Ordering::Acquire);
    if f.is_null() {
        core::hint::spin_loop();
    } else {
        // SAFETY: only `set_relax` stores here, and it stores a `fn()`.
        let f: fn() = unsafe { core::mem::transmute::<*mut (), fn()>(f) };
        f();
    }
}

/// A spinlock that keeps answering the CPU's mailbox while it waits.
pub struct Lock<T>(spin::Mutex<T>);

pub type LockGuard<'a, T> = spin::MutexGuard<'a, T>;

impl<T> Lock<T> {
    pub const fn new(v: T) -> Self {
        Lock(spin::Mutex::new(v))
    }

    #[inline]
    pub fn lock(&self) -> LockGuard<'_, T> {
        loop {
            if let Some(g) = self.0.try_lock() {
                return g;
            }
            while self.0.is_locked() {
                relax();
            }
        }
    }

    pub fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        self.0.try_lock()
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_excludes_across_threads() {
        let l = std::sync::Arc::new(Lock::new(0u64));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *l.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*l.lock(), 40_000);
    }
}
