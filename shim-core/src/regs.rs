//! The register frame every entry into Cocoon saves, and which the return
//! to the guest restores. The entry stubs in the firmware build it; the core
//! reads and edits it in place (bounces, iret, hypercall results).

/// Saved registers, lowest address first (the order the stubs push them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Vector number, or `ENTRY_SYSCALL` for the SYSCALL instruction.
    pub vector: u64,
    pub error_code: u64,
    // The hardware (or SYSCALL stub) frame.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<GuestRegs>() == 22 * 8);
const _: () = assert!(core::mem::offset_of!(GuestRegs, vector) == 15 * 8);
const _: () = assert!(core::mem::offset_of!(GuestRegs, rip) == 17 * 8);

/// Pseudo-vector the SYSCALL entry stub records.
pub const ENTRY_SYSCALL: u64 = 0x100;
/// Pseudo-vector of a hypercall the platform's fast path has run (its
/// result in rax), returning through the Rust path for what is due on the
/// way out (see [`crate::fastpath::plain_hypercall`]).
pub const ENTRY_HYPERCALL_DONE: u64 = 0x101;

pub const X86_EFLAGS_CF: u64 = 1 << 0;
pub const X86_EFLAGS_MBS: u64 = 1 << 1;
pub const X86_EFLAGS_TF: u64 = 1 << 8;
pub const X86_EFLAGS_IF: u64 = 1 << 9;
pub const X86_EFLAGS_DF: u64 = 1 << 10;
pub const X86_EFLAGS_IOPL: u64 = 3 << 12;
pub const X86_EFLAGS_NT: u64 = 1 << 14;
pub const X86_EFLAGS_RF: u64 = 1 << 16;
pub const X86_EFLAGS_VM: u64 = 1 << 17;
pub const X86_EFLAGS_AC: u64 = 1 << 18;

impl GuestRegs {
    /// Did this entry come from ring 3 (the guest, kernel or user)?
    #[inline]
    pub fn from_guest(&self) -> bool {
        self.cs & 3 == 3
    }

    /// General register by its x86 encoding (0 = rax .. 15 = r15).
    pub fn gpr(&self, n: u8) -> u64 {
        match n & 15 {
            0 => self.rax,
            1 => self.rcx,
            2 => self.rdx,
            3 => self.rbx,
            4 => self.rsp,
            5 => self.rbp,
            6 => self.rsi,
            7 => self.rdi,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            _ => self.r15,
        }
    }

    pub fn set_gpr(&mut self, n: u8, v: u64) {
        let r = match n & 15 {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            4 => &mut self.rsp,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            _ => &mut self.r15,
        };
        *r = v;
    }
}
