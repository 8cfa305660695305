//! The CPUID a PV guest sees through the forced-emulation prefix: the
//! hardware's answer with what a PV guest must not use hidden, and Xen's
//! hypervisor leaves at 0x40000000.

use crate::hypercall::version::{COCOON_XEN_MAJOR, COCOON_XEN_MINOR};

const fn bit(n: u32) -> u32 {
    1 << n
}

// Leaf 1 ECX / EDX.
const L1_ECX_HIDE: u32 = bit(3) /* MONITOR */ | bit(5) /* VMX */ | bit(6) /* SMX */ | bit(7) /* EST */
    | bit(8) /* TM2 */ | bit(15) /* PDCM */ | bit(17) /* PCID */ | bit(18) /* DCA */ | bit(21) /* X2APIC */
    | bit(24) /* TSC_DEADLINE */ | bit(27) /* OSXSAVE (set from the guest's CR4) */ | bit(2) /* DTES64 */
    | bit(4) /* DS_CPL */;
const L1_ECX_HYPERVISOR: u32 = bit(31);
const L1_ECX_OSXSAVE: u32 = bit(27);
const L1_EDX_HIDE: u32 = bit(1) /* VME */ | bit(3) /* PSE */ | bit(9) /* APIC */ | bit(12) /* MTRR */
    | bit(13) /* PGE */ | bit(17) /* PSE36 */ | bit(21) /* DS */ | bit(22) /* ACPI */ | bit(29) /* TM */
    | bit(31) /* PBE */;
// Leaf 7 subleaf 0. Besides what a PV guest cannot use, the features whose
// MSRs Xen 4.17 does not offer a PV guest (so they would fault): TSC_ADJUST,
// SGX, TME, CET, the TSX/SRBDS controls, L1D_FLUSH, ARCH_CAPS, CORE_CAPS.
const L7_EBX_HIDE: u32 = bit(7) /* SMEP */ | bit(10) /* INVPCID */ | bit(20) /* SMAP */
    | bit(12) /* PQM */ | bit(15) /* PQE */ | bit(14) /* MPX */ | bit(25) /* PT */ | bit(1) /* TSC_ADJUST */
    | bit(2) /* SGX */;
const L7_ECX_HIDE: u32 = bit(2) /* UMIP */ | bit(3) /* PKU */ | bit(4) /* OSPKE */ | bit(5) /* WAITPKG */
    | bit(16) /* LA57 */ | bit(7) /* CET_SS */ | bit(13) /* TME */ | bit(30) /* SGX_LC */;
const L7_EDX_HIDE: u32 = bit(9) /* SRBDS_CTRL */ | bit(11) /* RTM_ALWAYS_ABORT */ | bit(13) /* TSX_FORCE_ABORT */
    | bit(19) /* ARCH_LBR */ | bit(20) /* CET_IBT */ | bit(28) /* L1D_FLUSH */ | bit(29) /* ARCH_CAPS */
    | bit(30) /* CORE_CAPS */;
// Leaf 0xd subleaf 1: XSAVES/XRSTORS are ring-0 instructions with the XSS MSR;
// XFD has its own MSRs. Neither is offered to a PV guest.
const LD1_EAX_HIDE: u32 = bit(3) /* XSAVES */ | bit(4) /* XFD */;
// Leaf 0x80000001. OSVW, IBS, LWP, NODEID_MSR, the extra perf counters and
// DBEXT come with MSRs Xen does not offer a PV guest.
const LX1_ECX_HIDE: u32 = bit(2) /* SVM */ | bit(3) /* EXTAPIC */ | bit(13) /* WDT */ | bit(9) /* OSVW */
    | bit(10) /* IBS */ | bit(15) /* LWP */ | bit(19) /* NODEID_MSR */ | bit(23) /* PERFCTR_CORE */
    | bit(24) /* PERFCTR_NB */ | bit(26) /* DBEXT */ | bit(28) /* PERFCTR_LLC */;
// Leaf 0x80000008 EBX: VIRT_SSBD is MSR_VIRT_SPEC_CTRL, which Cocoon does not emulate.
const LX8_EBX_HIDE: u32 = bit(25) /* VIRT_SSBD */;
const LX1_EDX_HIDE: u32 = bit(26) /* PAGE1GB */ | bit(3) /* PSE */ | bit(13) /* PGE */ | bit(9) /* APIC */
    | bit(12) /* MTRR */ | bit(17) /* PSE36 */;

/// The hypervisor leaves (`arch-x86/cpuid.h`), base 0x40000000.
pub const XEN_CPUID_BASE: u32 = 0x4000_0000;
/// MSR the guest would write to install a hypercall page (never needed: Cocoon builds it).
pub const COCOON_HYPERCALL_MSR: u32 = 0x4000_0000;

/// What the guest sees for (`leaf`, `subleaf`), given the hardware's answer.
pub fn guest_cpuid(leaf: u32, subleaf: u32, hw: [u32; 4], guest_osxsave: bool) -> [u32; 4] {
    let [mut a, mut b, mut c, mut d] = hw;
    match leaf {
        1 => {
            c &= !L1_ECX_HIDE;
            c |= L1_ECX_HYPERVISOR;
            if guest_osxsave && hw[2] & bit(26) != 0 {
                c |= L1_ECX_OSXSAVE;
            }
            d &= !L1_EDX_HIDE;
            // Initial APIC id 0; one logical processor.
            b &= 0x0000_ffff;
            b |= 1 << 16;
        }
        // 0xa: architectural performance monitoring, whose MSRs a PV guest
        // without a vPMU (Xen's default) does not get.
        5 | 6 | 0xa => return [0; 4],
        7 if subleaf == 0 => {
            b &= !L7_EBX_HIDE;
            c &= !L7_ECX_HIDE;
            d &= !L7_EDX_HIDE;
        }
        7 => {}
        0xd if subleaf == 1 => {
            a &= !LD1_EAX_HIDE;
            // The XSS-managed (supervisor) state components: none without XSAVES.
            c = 0;
            d = 0;
        }
        0x8000_0001 => {
            c &= !LX1_ECX_HIDE;
            d &= !LX1_EDX_HIDE;
        }
        0x8000_0008 => b &= !LX8_EBX_HIDE,
        0x4000_0000 => {
            return [XEN_CPUID_BASE + 2, 0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
        }
        0x4000_0001 => return [((COCOON_XEN_MAJOR << 16) | COCOON_XEN_MINOR) as u32, 0, 0, 0],
        0x4000_0002 => return [1, COCOON_HYPERCALL_MSR, 0, 0],
        0x4000_0003..=0x4fff_ffff => return [0; 4],
        _ => {}
    }
    a = match leaf {
        // Leaf 0xb/0x1f: topology of one CPU.
        0xb | 0x1f => 0,
        _ => a,
    };
    [a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_xen_leaves() {
        let l1 = guest_cpuid(1, 0, [0x806f8, 0x0102_0800, !0, !0], false);
        assert_eq!(l1[2] & L1_ECX_HIDE, 0);
        assert_ne!(l1[2] & L1_ECX_HYPERVISOR, 0);
        assert_eq!(l1[3] & (bit(9) | bit(13) | bit(3)), 0);
        assert_eq!(guest_cpuid(1, 0, [0, 0, bit(26), 0], true)[2] & L1_ECX_OSXSAVE, L1_ECX_OSXSAVE);
        let x = guest_cpuid(0x4000_0000, 0, [0; 4], false);
        assert_eq!(x[0], 0x4000_0002);
        let mut s = [0u8; 12];
        for (i, w) in x[1..].iter().enumerate() {
            s[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&s, b"XenVMMXenVMM");
        assert_eq!(guest_cpuid(0x4000_0001, 0, [0; 4], false)[0], 0x0004_0011);
        assert_eq!(guest_cpuid(7, 0, [0, !0, !0, 0], false)[1] & bit(20), 0);
    }
}
