//! x86_64 bring-up: entry, descriptor tables, trap stubs, per-CPU state and APs.

/// Assembly text shared by the exception fast paths (`pf_entry`, `gp_entry`),
/// run on the stub's frame on this CPU's ring-0 stack with rax and rdx free:
/// rax = this CPU's `SyscallSlot`, rdx = the vCPU its fast path serves; to
/// `$slow` when an NMI came while Cocoon ran or no vCPU is served. Uses the
/// operands `block_mask`, `nmi_latched`, `cpu_number`, `stride`, `slot_vcpu`.
macro_rules! fast_entry_vcpu {
    ($slow:literal) => {
        concat!(
            "mov rax, rsp\n",
            "and rax, {block_mask}\n",
            "cmp byte ptr [rax + {nmi_latched}], 0\n",
            concat!("jne ", $slow, "\n"),
            "mov eax, dword ptr [rax + {cpu_number}]\n",
            "imul rax, rax, {stride}\n",
            "lea rdx, [rip + COCOON_SYSCALL_SLOTS]\n",
            "add rax, rdx\n",
            "mov rdx, [rax + {slot_vcpu}]\n",
            "test rdx, rdx\n",
            concat!("jz ", $slow, "\n"),
        )
    };
}

/// Assembly text shared by the exception fast paths, after
/// [`fast_entry_vcpu`]: rcx = the vCPU's `vcpu_info`, `$mask` (a 32-bit
/// register other than ecx and edx) = its upcall mask; to `$slow` when events are unmasked and an
/// upcall is pending or held (the Rust path delivers it). Uses the operands
/// `direct_map`, `vcpu_info_maddr`, `vi_mask`, `vi_pending`, `upcall_held`.
macro_rules! fast_entry_no_upcall_due {
    ($mask:literal, $slow:literal) => {
        concat!(
            "movabs rcx, {direct_map}\n",
            "add rcx, [rdx + {vcpu_info_maddr}]\n",
            concat!("movzx ", $mask, ", byte ptr [rcx + {vi_mask}]\n"),
            concat!("test ", $mask, ", ", $mask, "\n"),
            "jnz 7f\n",
            "cmp byte ptr [rcx + {vi_pending}], 0\n",
            concat!("jne ", $slow, "\n"),
            "cmp byte ptr [rdx + {upcall_held}], 0\n",
            concat!("jne ", $slow, "\n"),
            "7:\n",
        )
    };
}

/// Assembly text: to `$slow` unless the address in `$reg` is canonical and
/// not in Cocoon's range (the lower half, or `HYPERVISOR_VIRT_END` and
/// above, as `Domain::guest_va_ok` checks it); `$scratch` is clobbered.
/// Uses the operand `hv_end`.
macro_rules! fast_guest_va_ok {
    ($reg:literal, $scratch:literal, $slow:literal) => {
        concat!(
            concat!("mov ", $scratch, ", ", $reg, "\n"),
            concat!("sar ", $scratch, ", 47\n"),
            "jz 17f\n",
            concat!("cmp ", $scratch, ", -1\n"),
            concat!("jne ", $slow, "\n"),
            concat!("movabs ", $scratch, ", {hv_end}\n"),
            concat!("cmp ", $reg, ", ", $scratch, "\n"),
            concat!("jb ", $slow, "\n"),
            "17:\n",
        )
    };
}

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod gp_entry;
pub mod idt;
pub mod paging;
pub mod percpu;
pub mod pf_entry;
pub mod smp;
pub mod syscall_entry;
pub mod timer;
pub mod trap_entry;

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
