//! Interrupt and exception entry stubs.
//!
//! Every vector gets a stub that makes the stack look the same (an error
//! code, zero when the CPU pushes none, and the vector number) and jumps to
//! `trap_common`, which saves the general registers into a [`TrapFrame`] and
//! calls `cocoon_trap`. The stubs allocate nothing and take no lock.

/// Registers as saved by `trap_common`, lowest address first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
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
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);
const _: () = assert!(core::mem::offset_of!(TrapFrame, vector) == 15 * 8);

macro_rules! trap_stubs {
    ($($v:literal)*) => {
        core::arch::global_asm!(
            ".section .text.hot, \"ax\"",
            ".balign 16",
            ".global trap_stub_table",
            $(
                concat!("trap_stub_", $v, ":"),
                concat!(".if ", $v, " == 8 || (", $v, " >= 10 && ", $v, " <= 14) || ", $v, " == 17 || ", $v, " == 21 || ", $v, " == 29 || ", $v, " == 30"),
                ".else",
                "push 0",
                ".endif",
                concat!("push ", $v),
                "jmp trap_common",
                ".balign 16",
            )*
            ".section .rodata",
            ".balign 8",
            "trap_stub_table:",
            $( concat!(".quad trap_stub_", $v), )*
        );
    };
}

trap_stubs!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
);

/// Number of vectors with a stub in `trap_stub_table`.
pub const NR_STUBS: usize = 64;

core::arch::global_asm!(
    r#"
    .section .text.hot, "ax"
    .balign 16
trap_common:
    cld
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    call cocoon_trap
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
"#
);

extern "C" {
    static trap_stub_table: [u64; NR_STUBS];
}

/// Address of the stub for `vector`.
pub fn stub_address(vector: usize) -> u64 {
    // SAFETY: `trap_stub_table` is an immutable table emitted above.
    unsafe { trap_stub_table[vector] }
}
