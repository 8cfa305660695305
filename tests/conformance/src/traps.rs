//! The kernel's trap table and handlers. Xen delivers an exception on the
//! kernel stack as `rcx, r11, [error code], rip, cs, rflags, rsp, ss`; each
//! handler saves the other registers, records what it got, applies what the
//! running check asked for (resume elsewhere, clear TF, disarm DR7), and
//! returns through HYPERVISOR_iret as a PV kernel does.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::xen::{self, TrapInfo};

global_asm!(
    ".macro pvtest_trap vec, err",
    ".globl pvtest_trap_\\vec",
    "pvtest_trap_\\vec:",
    "push rax",
    "push rbx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push rbp",
    "push r8",
    "push r9",
    "push r10",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "lea rdi, [rsp + 13 * 8]",
    "mov esi, \\vec",
    "mov edx, \\err",
    "mov rbx, rsp",
    "and rsp, -16",
    "call {handler}",
    "mov rsp, rbx",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rbx",
    "pop rax",
    "pop rcx",
    "pop r11",
    ".if \\err",
    "add rsp, 8",
    ".endif",
    // iret's `flags` word (no VGCF_in_syscall), then the iret stub.
    "push 0",
    "jmp hypercall_page + 23 * 32",
    ".endm",
    "pvtest_trap 1, 0",
    "pvtest_trap 2, 0",
    "pvtest_trap 3, 0",
    "pvtest_trap 6, 0",
    "pvtest_trap 13, 1",
    "pvtest_trap 14, 1",
    "pvtest_trap 64, 0",
    "pvtest_trap 65, 0",
    "pvtest_trap 128, 0",
    "pvtest_trap 256, 0",
    handler = sym pvtest_trap,
);

extern "C" {
    fn pvtest_trap_1();
    fn pvtest_trap_2();
    fn pvtest_trap_3();
    fn pvtest_trap_6();
    fn pvtest_trap_13();
    fn pvtest_trap_14();
    fn pvtest_trap_64();
    fn pvtest_trap_65();
    fn pvtest_trap_128();
    fn pvtest_trap_256();
}

/// The `vector` an event upcall is recorded with (not an exception's).
pub const EVENT_VECTOR: u64 = 256;

/// The event callback's entry: recorded as a trap of [`EVENT_VECTOR`], the
/// byte at the address [`ack_upcalls_at`] gave cleared.
pub fn event_entry() -> u64 {
    pvtest_trap_256 as *const () as u64
}

/// Where the event callback clears `evtchn_upcall_pending` (0: nowhere).
static UPCALL_PENDING_AT: AtomicU64 = AtomicU64::new(0);

/// Have the event callback clear the `evtchn_upcall_pending` byte at `va`
/// (vcpu_info 0 of the mapped shared_info) as a kernel's handler does.
pub fn ack_upcalls_at(va: u64) {
    UPCALL_PENDING_AT.store(va, Ordering::SeqCst);
}

const FLAT_KERNEL_CS: u16 = 0xe033;

fn entry(vector: u8, dpl: u8, handler: unsafe extern "C" fn()) -> TrapInfo {
    TrapInfo { vector, flags: dpl & xen::TI_DPL_MASK, cs: FLAT_KERNEL_CS, _pad: 0, address: handler as usize as u64 }
}

/// Install the trap table: exceptions at DPL 0 (int3 at 3, as Linux), and
/// three software-interrupt gates for the `int $N` checks: 0x40 at DPL 0,
/// 0x41 at DPL 1 (the guest kernel's ring), 0x80 at `int80_dpl`.
pub fn install(int80_dpl: u8) -> i64 {
    let table = [
        entry(1, 0, pvtest_trap_1),
        entry(2, 0, pvtest_trap_2),
        entry(3, 3, pvtest_trap_3),
        entry(6, 0, pvtest_trap_6),
        entry(13, 0, pvtest_trap_13),
        entry(14, 0, pvtest_trap_14),
        entry(0x40, 0, pvtest_trap_64),
        entry(0x41, 1, pvtest_trap_65),
        entry(0x80, int80_dpl, pvtest_trap_128),
        TrapInfo { vector: 0, flags: 0, cs: 0, _pad: 0, address: 0 },
    ];
    xen::set_trap_table(&table)
}

pub fn init() {
    let rc = install(0);
    if rc != 0 {
        println!("conformance: set_trap_table failed ({rc})");
        xen::shutdown(xen::SHUTDOWN_crash);
    }
}

/// What the last trap was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    pub vector: u64,
    pub error_code: Option<u64>,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
}

static COUNT: AtomicU64 = AtomicU64::new(0);
static VECTOR: AtomicU64 = AtomicU64::new(0);
static ERROR: AtomicU64 = AtomicU64::new(u64::MAX);
static RIP: AtomicU64 = AtomicU64::new(0);
static CS: AtomicU64 = AtomicU64::new(0);
static RFLAGS: AtomicU64 = AtomicU64::new(0);
/// Where the next trap resumes (0: where Xen's frame says).
static RESUME_AT: AtomicU64 = AtomicU64::new(0);
/// Or: how many bytes past the trapping instruction's address every trap
/// until the next `expect` resumes.
static SKIP: AtomicU64 = AtomicU64::new(0);
/// Bits of ACTIONS: what the next handler does besides recording.
static ACTIONS: AtomicU64 = AtomicU64::new(0);
pub const CLEAR_TF: u64 = 1;
pub const DISARM_DR7: u64 = 2;
/// Return with IOPL 3 in the frame's rflags (or `CLEAR_IOPL`: with 0).
pub const SET_IOPL3: u64 = 4;
pub const CLEAR_IOPL: u64 = 8;

const X86_EFLAGS_TF: u64 = 1 << 8;
pub const X86_EFLAGS_IOPL: u64 = 3 << 12;

pub fn reset() {
    COUNT.store(0, Ordering::SeqCst);
    RESUME_AT.store(0, Ordering::SeqCst);
    SKIP.store(0, Ordering::SeqCst);
    ACTIONS.store(0, Ordering::SeqCst);
}

/// Expect a trap: resume at `resume` (0: as the frame says), doing `actions`.
pub fn expect(resume: u64, actions: u64) {
    COUNT.store(0, Ordering::SeqCst);
    RESUME_AT.store(resume, Ordering::SeqCst);
    SKIP.store(0, Ordering::SeqCst);
    ACTIONS.store(actions, Ordering::SeqCst);
}

/// Expect faults at instructions of `len` bytes, each resumed after it.
pub fn expect_skip(len: u64) {
    expect(0, 0);
    SKIP.store(len, Ordering::SeqCst);
}

/// How many traps were taken since `expect`/`reset`, and the last one.
pub fn taken() -> (u64, Taken) {
    let e = ERROR.load(Ordering::SeqCst);
    (
        COUNT.load(Ordering::SeqCst),
        Taken {
            vector: VECTOR.load(Ordering::SeqCst),
            error_code: (e != u64::MAX).then_some(e),
            rip: RIP.load(Ordering::SeqCst),
            cs: CS.load(Ordering::SeqCst),
            rflags: RFLAGS.load(Ordering::SeqCst),
        },
    )
}

extern "C" fn pvtest_trap(frame: *mut u64, vector: u64, has_error: u64) {
    // SAFETY: `frame` is Xen's bounce frame on this stack: rcx, r11, the
    // error code when `has_error`, then rip, cs, rflags, rsp, ss.
    let f = unsafe { core::slice::from_raw_parts_mut(frame, 7 + has_error as usize) };
    let at = 2 + has_error as usize;
    COUNT.fetch_add(1, Ordering::SeqCst);
    VECTOR.store(vector, Ordering::SeqCst);
    ERROR.store(if has_error != 0 { f[2] } else { u64::MAX }, Ordering::SeqCst);
    RIP.store(f[at], Ordering::SeqCst);
    CS.store(f[at + 1], Ordering::SeqCst);
    RFLAGS.store(f[at + 2], Ordering::SeqCst);
    if vector == EVENT_VECTOR {
        let at = UPCALL_PENDING_AT.load(Ordering::SeqCst);
        if at != 0 {
            // SAFETY: the mapped vcpu_info's evtchn_upcall_pending byte (ack_upcalls_at).
            unsafe { core::ptr::write_volatile(at as *mut u8, 0) };
        }
        return;
    }
    let actions = ACTIONS.swap(0, Ordering::SeqCst);
    if actions & CLEAR_TF != 0 {
        f[at + 2] &= !X86_EFLAGS_TF;
    }
    if actions & SET_IOPL3 != 0 {
        f[at + 2] |= X86_EFLAGS_IOPL;
    }
    if actions & CLEAR_IOPL != 0 {
        f[at + 2] &= !X86_EFLAGS_IOPL;
    }
    if actions & DISARM_DR7 != 0 {
        xen::set_debugreg(7, 0);
    }
    let resume = RESUME_AT.swap(0, Ordering::SeqCst);
    let skip = SKIP.load(Ordering::SeqCst);
    if resume != 0 {
        f[at] = resume;
    } else if skip != 0 {
        f[at] += skip;
    } else if matches!(vector, 6 | 13 | 14) {
        // A fault nobody expected would recur forever.
        println!("conformance: unexpected trap {vector} at {:#x} (error code {:#x})", f[at], f[2]);
        xen::shutdown(xen::SHUTDOWN_crash);
    }
}
