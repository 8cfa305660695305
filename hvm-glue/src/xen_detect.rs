//! Detecting Xen through the CPUID hypervisor leaves.
//!
//! Xen places its leaves at 0x40000000, or 0x100 higher (up to 0x4000ff00)
//! when it also offers Viridian or another interface at the base. At the
//! Xen base: leaf +0 gives the signature "XenVMMXenVMM" and the last leaf,
//! +1 the version (major << 16 | minor), +2 the hypercall-page count and
//! the MSR that installs them, +4 (when present) the HVM feature flags.

use core::fmt;

/// First and last base tried, and the stride between them.
pub const XEN_CPUID_FIRST: u32 = 0x4000_0000;
pub const XEN_CPUID_LAST: u32 = 0x4000_ff00;
pub const XEN_CPUID_STRIDE: u32 = 0x100;

/// "XenVMMXenVMM" as CPUID returns it in ebx, ecx, edx.
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;

/// Leaf +4 eax bits (`XEN_HVM_CPUID_*` in `arch-x86/cpuid.h`).
pub const XEN_HVM_CPUID_APIC_ACCESS_VIRT: u32 = 1 << 0;
pub const XEN_HVM_CPUID_X2APIC_VIRT: u32 = 1 << 1;
pub const XEN_HVM_CPUID_IOMMU_MAPPINGS: u32 = 1 << 2;
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;

/// One CPUID answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Something that answers CPUID: the real instruction, or a table in tests.
pub trait Cpuid {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;
}

/// The CPU's own CPUID instruction.
pub struct NativeCpuid;

impl Cpuid for NativeCpuid {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        #[allow(unused_unsafe)]
        // SAFETY: CPUID is available on every x86_64 CPU and has no side effects.
        let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
        CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
    }
}

/// What the Xen leaves say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenInfo {
    /// The base leaf where the signature was found.
    pub base: u32,
    /// The last Xen leaf (eax of the base leaf).
    pub max_leaf: u32,
    pub major: u16,
    pub minor: u16,
    /// Number of hypercall pages the MSR can install.
    pub hypercall_pages: u32,
    /// MSR whose write installs the hypercall page.
    pub hypercall_msr: u32,
    /// Leaf +4 eax, when the leaf exists.
    pub hvm_features: Option<u32>,
}

impl XenInfo {
    /// True when the running Xen is at least `major.minor`.
    pub fn at_least(&self, major: u16, minor: u16) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// Whether a base leaf answer carries the Xen signature.
pub fn is_xen_signature(r: &CpuidResult) -> bool {
    r.ebx == XEN_CPUID_SIGNATURE_EBX && r.ecx == XEN_CPUID_SIGNATURE_ECX && r.edx == XEN_CPUID_SIGNATURE_EDX
}

/// Scan the hypervisor leaves for Xen.
pub fn detect(cpu: &impl Cpuid) -> Option<XenInfo> {
    let mut base = XEN_CPUID_FIRST;
    loop {
        let r = cpu.cpuid(base, 0);
        // Xen always has at least leaves +1 and +2.
        if is_xen_signature(&r) && r.eax >= base + 2 {
            let version = cpu.cpuid(base + 1, 0).eax;
            let hc = cpu.cpuid(base + 2, 0);
            let hvm_features = (r.eax >= base + 4).then(|| cpu.cpuid(base + 4, 0).eax);
            return Some(XenInfo {
                base,
                max_leaf: r.eax,
                major: (version >> 16) as u16,
                minor: version as u16,
                hypercall_pages: hc.eax,
                hypercall_msr: hc.ebx,
                hvm_features,
            });
        }
        if base == XEN_CPUID_LAST {
            return None;
        }
        base += XEN_CPUID_STRIDE;
    }
}

/// The one log line that states what was found and which backend runs.
pub struct DetectionReport<'a>(pub &'a Option<XenInfo>);

impl fmt::Display for DetectionReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(x) => write!(
                f,
                "platform: Xen {}.{} detected (CPUID base {:#x}, hypercall MSR {:#x}, {} page(s)); backend: xen",
                x.major, x.minor, x.base, x.hypercall_msr, x.hypercall_pages
            ),
            None => write!(
                f,
                "platform: no Xen (no XenVMMXenVMM signature in CPUID {XEN_CPUID_FIRST:#x}-{XEN_CPUID_LAST:#x}); backend: standalone"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Table(HashMap<u32, CpuidResult>);

    impl Cpuid for Table {
        fn cpuid(&self, leaf: u32, _: u32) -> CpuidResult {
            self.0.get(&leaf).copied().unwrap_or_default()
        }
    }

    fn xen_at(base: u32, max_off: u32, ver: u32) -> Table {
        let mut t = HashMap::new();
        t.insert(
            base,
            CpuidResult {
                eax: base + max_off,
                ebx: XEN_CPUID_SIGNATURE_EBX,
                ecx: XEN_CPUID_SIGNATURE_ECX,
                edx: XEN_CPUID_SIGNATURE_EDX,
            },
        );
        t.insert(base + 1, CpuidResult { eax: ver, ..Default::default() });
        t.insert(base + 2, CpuidResult { eax: 1, ebx: 0x4000_0000, ..Default::default() });
        t.insert(base + 4, CpuidResult { eax: XEN_HVM_CPUID_VCPU_ID_PRESENT, ..Default::default() });
        Table(t)
    }

    #[test]
    fn signature_bytes_spell_xenvmm() {
        let mut s = [0u8; 12];
        s[..4].copy_from_slice(&XEN_CPUID_SIGNATURE_EBX.to_le_bytes());
        s[4..8].copy_from_slice(&XEN_CPUID_SIGNATURE_ECX.to_le_bytes());
        s[8..].copy_from_slice(&XEN_CPUID_SIGNATURE_EDX.to_le_bytes());
        assert_eq!(&s, b"XenVMMXenVMM");
    }

    #[test]
    fn finds_xen_at_base() {
        let x = detect(&xen_at(0x4000_0000, 5, 0x0004_0011)).unwrap();
        assert_eq!((x.base, x.major, x.minor), (0x4000_0000, 4, 17));
        assert_eq!(x.hypercall_msr, 0x4000_0000);
        assert_eq!(x.hvm_features, Some(XEN_HVM_CPUID_VCPU_ID_PRESENT));
        assert!(x.at_least(4, 6) && !x.at_least(4, 18));
    }

    #[test]
    fn finds_xen_behind_viridian() {
        let mut t = xen_at(0x4000_0100, 4, 0x0003_0004);
        // Viridian's "Microsoft Hv" at the base must not stop the scan.
        t.0.insert(0x4000_0000, CpuidResult { eax: 0x4000_0006, ebx: 0x7263_694d, ecx: 0x666f_736f, edx: 0x7648_2074 });
        let x = detect(&t).unwrap();
        assert_eq!((x.base, x.major, x.minor), (0x4000_0100, 3, 4));
    }

    #[test]
    fn finds_xen_at_last_base() {
        assert_eq!(detect(&xen_at(0x4000_ff00, 2, 0x0004_0000)).unwrap().hvm_features, None);
    }

    #[test]
    fn leaf4_missing_on_old_xen() {
        let x = detect(&xen_at(0x4000_0000, 2, 0x0003_0004)).unwrap();
        assert_eq!(x.hvm_features, None);
    }

    #[test]
    fn no_xen_on_plain_hardware() {
        assert_eq!(detect(&Table(HashMap::new())), None);
        let line = DetectionReport(&None).to_string();
        assert!(line.contains("no Xen") && line.contains("standalone"), "{line}");
    }

    #[test]
    fn truncated_leaf_range_is_not_xen() {
        // Signature but max leaf below base+2: not a usable Xen.
        assert_eq!(detect(&xen_at(0x4000_0000, 1, 0x0004_0011)), None);
    }

    #[test]
    fn report_names_version() {
        let x = detect(&xen_at(0x4000_0000, 5, 0x0004_0011));
        let line = DetectionReport(&x).to_string();
        assert!(line.contains("Xen 4.17") && line.contains("backend: xen"), "{line}");
    }
}
