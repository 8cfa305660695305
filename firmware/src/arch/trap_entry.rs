//! Entry stubs: every vector, SYSCALL, and the way back to the guest.
//!
//! Every vector gets a stub that makes the stack look the same (an error
//! code, zero when the CPU pushes none, and the vector number) and jumps to
//! `trap_common` (#PF and #GP by way of their fast paths, [`super::pf_entry`] and
//! [`super::gp_entry`]), which saves the general registers into a
//! [`GuestRegs`](shim_core::regs::GuestRegs) and calls `cocoon_trap`. SYSCALL
//! (see [`super::syscall_entry`]) builds the same frame by hand on the CPU's
//! ring-0 stack when its fast path does not handle the call. The stubs
//! allocate nothing and take no lock.
//!
//! Also here: the guest-memory copy routine and the user-%gs load, whose
//! faults `cocoon_trap` turns into error returns through their fixup labels.

use core::mem::size_of;

use shim_core::regs::GuestRegs;

macro_rules! trap_stubs {
    ($($v:literal)*) => {
        core::arch::global_asm!(
            ".section .text.hot, \"ax\"",
            ".balign 16",
            $(
                concat!("trap_stub_", $v, ":"),
                concat!(".if ", $v, " == 8 || (", $v, " >= 10 && ", $v, " <= 14) || ", $v, " == 17 || ", $v, " == 21 || ", $v, " == 29 || ", $v, " == 30"),
                ".else",
                "push 0",
                ".endif",
                concat!("push ", $v),
                concat!(".if ", $v, " == 1 || ", $v, " == 2"),
                "jmp trap_ist_guest",
                concat!(".elseif ", $v, " == 13"),
                "jmp trap_gp",
                concat!(".elseif ", $v, " == 14"),
                "jmp trap_pf",
                ".else",
                "jmp trap_common",
                ".endif",
                ".balign 16",
            )*
            ".section .rodata",
            ".balign 8",
            ".global trap_stub_table",
            "trap_stub_table:",
            $( concat!(".quad trap_stub_", $v), )*
        );
    };
}

trap_stubs!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
    64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95
    96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119 120 121 122 123 124 125 126 127
    128 129 130 131 132 133 134 135 136 137 138 139 140 141 142 143 144 145 146 147 148 149 150 151 152 153 154 155 156 157 158 159
    160 161 162 163 164 165 166 167 168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185 186 187 188 189 190 191
    192 193 194 195 196 197 198 199 200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 215 216 217 218 219 220 221 222 223
    224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255
);

/// Number of vectors with a stub in `trap_stub_table`.
pub const NR_STUBS: usize = 256;

/// The stub's words and the CPU's frame: vector, error code, rip, cs, rflags, rsp, ss.
const TRAP_FRAME_BYTES: usize = 7 * 8;

// #DB and NMI arrive on IST stacks (gdt::IST_DEBUG, IST_NMI).
// #DB: one from Cocoon (a guest
// watchpoint hit while Cocoon copied guest memory, or the deferred #DB of
// `mov ss` + SYSCALL at the SYSCALL entry) is handled there: cocoon_trap only
// resets DR6. One from the guest moves to this CPU's ring-0 stack, where a
// trap from the guest always puts its frame, before anything else runs: its
// handling writes guest memory, which may hit a watchpoint again, and that
// #DB must find the IST stack free. The ring-0 top is found from RSP, as
// `percpu::this` does (the IST stacks lie in the CPU's ring-0 block); the
// copy touches only Cocoon's stacks. An NMI from the guest (`xl trigger nmi`)
// moves the same way: its delivery writes the guest's stack, and a fault
// there returns with `iretq`, which lets the next NMI in onto the IST stack.
// One that interrupts Cocoon stays there (cocoon_trap only latches it).
core::arch::global_asm!(
    r#"
    .section .text.hot, "ax"
    .balign 16
trap_ist_guest:
    test byte ptr [rsp + 24], 3
    jz trap_common
    push rax
    push rcx
    mov rax, rsp
    and rax, {block_mask}
    add rax, {frame_at}
    .irp off, 0, 8, 16, 24, 32, 40, 48
    mov rcx, [rsp + 16 + \off]
    mov [rax + \off], rcx
    .endr
    mov rcx, [rsp]
    mov [rax - 8], rcx
    mov rcx, [rsp + 8]
    mov [rax - 16], rcx
    lea rsp, [rax - 16]
    pop rax
    pop rcx
    jmp trap_common
    "#,
    block_mask = const !(super::percpu::RING0_STACK_SIZE as i64 - 1),
    frame_at = const super::percpu::INFO_OFFSET - TRAP_FRAME_BYTES,
);

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
    .global trap_exit
trap_exit:
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

    /* cocoon_enter_guest(regs, ring0_top): start the guest from a saved frame,
       on this CPU's ring-0 stack (the frame goes where a trap from the guest puts it). */
    .global cocoon_enter_guest
cocoon_enter_guest:
    mov rsp, rsi
    sub rsp, {frame}
    mov rsi, rdi
    mov rdi, rsp
    mov rcx, {frame_quads}
    rep movsq
    jmp trap_exit

    /* u64 cocoon_copy_guest(dst, src, len): 0, or 1 if a fault cut it short.
       Eight bytes at a time, then the rest: bounce and iret frames are whole
       words, and each iteration of a rep string instruction costs as much as
       an instruction. */
    .global cocoon_copy_guest
    .global cocoon_copy_guest_insn
    .global cocoon_copy_guest_insn_tail
    .global cocoon_copy_guest_fixup
cocoon_copy_guest:
    mov rcx, rdx
    shr rcx, 3
cocoon_copy_guest_insn:
    rep movsq
    mov ecx, edx
    and ecx, 7
cocoon_copy_guest_insn_tail:
    rep movsb
    xor eax, eax
    ret
cocoon_copy_guest_fixup:
    mov eax, 1
    ret

    /* cocoon_load_user_gs(sel): in guest kernel mode, load the user %gs. */
    .global cocoon_load_user_gs
    .global cocoon_load_gs_insn
    .global cocoon_load_gs_fixup
cocoon_load_user_gs:
    swapgs
cocoon_load_gs_insn:
    mov gs, di
cocoon_load_gs_done:
    swapgs
    ret
cocoon_load_gs_fixup:
    xor edi, edi
    mov gs, di
    jmp cocoon_load_gs_done
"#,
    frame = const size_of::<GuestRegs>(),
    frame_quads = const size_of::<GuestRegs>() / 8,
);

extern "C" {
    static trap_stub_table: [u64; NR_STUBS];
    /// Start the guest from `regs` on the ring-0 stack whose top is `ring0_top`
    /// (a `CpuInfo::ring0_top`: the calling CPU's own). `regs` must not lie in
    /// the top `size_of::<GuestRegs>()` bytes of that stack.
    pub fn cocoon_enter_guest(regs: *const GuestRegs, ring0_top: u64) -> !;
    pub fn cocoon_copy_guest(dst: *mut u8, src: *const u8, len: usize) -> u64;
    pub fn cocoon_load_user_gs(sel: u16);
    static cocoon_copy_guest_insn: u8;
    static cocoon_copy_guest_insn_tail: u8;
    static cocoon_copy_guest_fixup: u8;
    static cocoon_load_gs_insn: u8;
    static cocoon_load_gs_fixup: u8;
}

/// Address of the stub for `vector`.
pub fn stub_address(vector: usize) -> u64 {
    // SAFETY: `trap_stub_table` is an immutable table emitted above.
    unsafe { trap_stub_table[vector] }
}

/// If `rip` faulted inside a routine with a fixup, where to resume.
pub fn fixup_for(rip: u64) -> Option<u64> {
    // SAFETY: only the addresses of these labels are taken.
    unsafe {
        if rip == &cocoon_copy_guest_insn as *const u8 as u64 || rip == &cocoon_copy_guest_insn_tail as *const u8 as u64
        {
            return Some(&cocoon_copy_guest_fixup as *const u8 as u64);
        }
        if rip == &cocoon_load_gs_insn as *const u8 as u64 {
            return Some(&cocoon_load_gs_fixup as *const u8 as u64);
        }
    }
    super::syscall_entry::fixup_for(rip)
        .or_else(|| super::pf_entry::fixup_for(rip))
        .or_else(|| super::gp_entry::fixup_for(rip))
}
