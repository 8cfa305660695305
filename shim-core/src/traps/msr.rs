//! RDMSR/WRMSR from the guest kernel, answered as Xen 4.17 answers a 64-bit PV
//! guest (`arch/x86/msr.c` `guest_{rd,wr}msr`, `pv/emul-priv-op.c`
//! `{read,write}_msr`, `cpu/mcheck/vmce.c`). `None`/`false` means #GP, which
//! is also the answer for every MSR not listed (logged once per MSR).
//!
//! Whether an MSR exists follows the CPUID the guest sees (`cpuid::guest_cpuid`),
//! so a feature is advertised exactly when its MSRs work.

use super::cpuid::guest_cpuid;
use crate::abi::*;
use crate::domain::Ctx;
use crate::platform::Platform;

/// Machine-check banks the guest sees (Xen's `GUEST_MC_BANK_NUM`; bank 0 is
/// left idle for old processors' bank-0 quirk, bank 1 would carry errors).
pub const GUEST_MC_BANK_NUM: usize = 2;
/// Xen's `INTEL_GUEST_MCG_CAP`: software error recovery, the threshold-based
/// status bits, CMCI (advertised, never raised).
pub const INTEL_GUEST_MCG_CAP: u64 = MCG_SER_P | MCG_TES_P | MCG_CMCI_P | GUEST_MC_BANK_NUM as u64;
/// Xen's `AMD_GUEST_MCG_CAP` (every non-Intel vendor): the bank count alone.
pub const AMD_GUEST_MCG_CAP: u64 = GUEST_MC_BANK_NUM as u64;
/// The guest's IA32_MISC_ENABLE: Xen's `guest_misc_enable()` forces BTS and PEBS
/// unavailable and xTPR off, and hides perfmon and MONITOR; fast strings on.
pub const GUEST_MISC_ENABLE: u64 = MSR_IA32_MISC_ENABLE_FAST_STRING
    | MSR_IA32_MISC_ENABLE_BTS_UNAVAIL
    | MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL
    | MSR_IA32_MISC_ENABLE_XTPR_DISABLE;

const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NX: u64 = 1 << 11;

/// Per-vCPU MSR state a PV guest can change.
#[derive(Default, Debug)]
pub struct MsrState {
    pub spec_ctrl: u64,
    pub tsc_aux: u64,
    pub mcg_status: u64,
    pub mci_ctl2: [u64; GUEST_MC_BANK_NUM],
    /// MSRs already reported as unknown (each is logged once).
    pub logged: alloc::vec::Vec<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vendor {
    Intel,
    Amd,
    Hygon,
    Centaur,
    Shanghai,
    Other,
}

impl Vendor {
    /// From CPUID leaf 0 (EBX, EDX, ECX spell the vendor string).
    pub fn from_leaf0(l0: [u32; 4]) -> Vendor {
        match (l0[1], l0[3], l0[2]) {
            (0x756e_6547, 0x4965_6e69, 0x6c65_746e) => Vendor::Intel, // GenuineIntel
            (0x6874_7541, 0x6974_6e65, 0x444d_4163) => Vendor::Amd,   // AuthenticAMD
            (0x6f67_7948, 0x6e65_476e, 0x656e_6975) => Vendor::Hygon, // HygonGenuine
            (0x746e_6543, 0x4872_7561, 0x736c_7561) => Vendor::Centaur, // CentaurHauls
            (0x6853_2020, 0x6867_6e61, 0x2020_6961) => Vendor::Shanghai, // "  Shanghai  "
            _ => Vendor::Other,
        }
    }
    fn amd_like(self) -> bool {
        matches!(self, Vendor::Amd | Vendor::Hygon)
    }
}

/// The CPUID the guest sees, for the MSR decisions.
struct GuestCpu<'a, P: Platform> {
    p: &'a P,
}

impl<P: Platform> GuestCpu<'_, P> {
    fn leaf(&self, leaf: u32, sub: u32) -> [u32; 4] {
        let max = if leaf >= 0x8000_0000 { self.p.cpuid(0x8000_0000, 0)[0] } else { self.p.cpuid(0, 0)[0] };
        if leaf > max {
            return [0; 4];
        }
        guest_cpuid(leaf, sub, self.p.cpuid(leaf, sub), false)
    }
    fn has(&self, leaf: u32, sub: u32, reg: usize, bit: u32) -> bool {
        self.leaf(leaf, sub)[reg] & (1 << bit) != 0
    }
    fn vendor(&self) -> Vendor {
        Vendor::from_leaf0(self.p.cpuid(0, 0))
    }
    fn ibrsb(&self) -> bool {
        self.has(7, 0, 3, 26)
    }
    fn spec_ctrl(&self) -> bool {
        self.ibrsb() || self.has(0x8000_0008, 0, 1, 14)
    }
    fn pred_cmd(&self) -> bool {
        self.ibrsb() || self.has(0x8000_0008, 0, 1, 12)
    }
    /// Xen's `msr_spec_ctrl_valid_bits()`.
    fn spec_ctrl_valid(&self) -> u64 {
        let l7_2 = self.leaf(7, 2)[3];
        let ssbd = self.has(7, 0, 3, 31) || self.has(0x8000_0008, 0, 1, 24);
        let psfd = l7_2 & 1 != 0 || self.has(0x8000_0008, 0, 1, 28);
        SPEC_CTRL_IBRS
            | SPEC_CTRL_STIBP
            | if ssbd { SPEC_CTRL_SSBD } else { 0 }
            | if psfd { SPEC_CTRL_PSFD } else { 0 }
            | if l7_2 & (1 << 1) != 0 { SPEC_CTRL_IPRED_DIS_U | SPEC_CTRL_IPRED_DIS_S } else { 0 }
            | if l7_2 & (1 << 2) != 0 { SPEC_CTRL_RRSBA_DIS_U | SPEC_CTRL_RRSBA_DIS_S } else { 0 }
            | if l7_2 & (1 << 4) != 0 { SPEC_CTRL_BHI_DIS_S } else { 0 }
    }
    /// RDTSCP or RDPID: TSC_AUX exists.
    fn tsc_aux(&self) -> bool {
        self.has(0x8000_0001, 0, 3, 27) || self.has(7, 0, 2, 22)
    }
}

fn guest_mcg_cap(v: Vendor) -> u64 {
    if v == Vendor::Intel {
        INTEL_GUEST_MCG_CAP
    } else {
        AMD_GUEST_MCG_CAP
    }
}

fn is_vmce_msr(msr: u32) -> bool {
    matches!(msr,
        MSR_P5_MC_ADDR | MSR_P5_MC_TYPE
        | MSR_IA32_MCG_CAP..=MSR_IA32_MCG_CTL
        | MSR_IA32_MC0_CTL2..=MSR_IA32_MCx_CTL2_LAST
        | MSR_IA32_MC0_CTL..=MSR_IA32_MCx_MISC_LAST
        | MSR_IA32_MCG_EXT_CTL)
}

/// An MCi_CTL/STATUS/ADDR/MISC of one of the guest's banks (Xen's `mce_bank_msr`).
fn guest_bank(cap: u64, msr: u32) -> bool {
    (((msr - MSR_IA32_MC0_CTL) / 4) as u64) < cap & MCG_CAP_COUNT
}

/// Bank i's CTL2 when it is one of the guest's banks on Intel (Xen's
/// `mce_vendor_bank_msr`), else None.
fn ctl2_bank(v: Vendor, cap: u64, msr: u32) -> Option<usize> {
    let bank = msr.wrapping_sub(MSR_IA32_MC0_CTL2) as u64;
    (v == Vendor::Intel && (MSR_IA32_MC0_CTL2..=MSR_IA32_MCx_CTL2_LAST).contains(&msr) && bank < cap & MCG_CAP_COUNT)
        .then_some(bank as usize)
}

/// Xen's `vmce_rdmsr` as `guest_rdmsr` uses it: MSRs of the vMCE ranges that
/// are not the guest's (banks past the count, CTL2 off Intel, P5_MC_*) read 0.
fn vmce_read(c: &Ctx, v: Vendor, msr: u32) -> Option<u64> {
    let cap = guest_mcg_cap(v);
    let s = &c.v.msr;
    Some(match msr {
        MSR_IA32_MCG_STATUS => s.mcg_status,
        MSR_IA32_MCG_CAP => cap,
        MSR_IA32_MCG_CTL => {
            if cap & MCG_CTL_P != 0 {
                !0
            } else {
                0
            }
        }
        // No LMCE for the guest: #GP.
        MSR_IA32_MCG_EXT_CTL => return None,
        MSR_IA32_MC0_CTL..=MSR_IA32_MCx_MISC_LAST if guest_bank(cap, msr) => {
            // MCi_CTL: all ones; STATUS/ADDR/MISC: no error was ever injected.
            if (msr - MSR_IA32_MC0_CTL).is_multiple_of(4) {
                !0
            } else {
                0
            }
        }
        _ => match ctl2_bank(v, cap, msr) {
            Some(b) => s.mci_ctl2[b],
            None => 0,
        },
    })
}

/// Xen's `vmce_wrmsr`: MCG_CAP and MCG_CTL and MCi_CTL writes are ignored,
/// MCG_STATUS is kept, MCi_STATUS/ADDR/MISC take only 0, CTL2 is kept for the
/// guest's banks; the rest of the ranges is ignored.
fn vmce_write(c: &mut Ctx, v: Vendor, msr: u32, val: u64) -> bool {
    let cap = guest_mcg_cap(v);
    match msr {
        // P5_MC_* are read-only in Xen's tables (not in guest_wrmsr's list).
        MSR_P5_MC_ADDR | MSR_P5_MC_TYPE => return false,
        MSR_IA32_MCG_STATUS => c.v.msr.mcg_status = val,
        MSR_IA32_MCG_CAP | MSR_IA32_MCG_CTL => {}
        MSR_IA32_MCG_EXT_CTL => return false,
        MSR_IA32_MC0_CTL..=MSR_IA32_MCx_MISC_LAST if guest_bank(cap, msr) => {
            if !(msr - MSR_IA32_MC0_CTL).is_multiple_of(4) && val != 0 {
                return false;
            }
        }
        _ => {
            if let Some(b) = ctl2_bank(v, cap, msr) {
                c.v.msr.mci_ctl2[b] = val;
            }
        }
    }
    true
}

fn log_unknown(c: &mut Ctx, msr: u32, what: &str) {
    if !c.v.msr.logged.contains(&msr) {
        c.v.msr.logged.push(msr);
        log::debug!("{what} of unknown MSR {msr:#x}: #GP (reported once)");
    }
}

/// RDMSR: the value, or None for #GP.
pub fn read<P: Platform>(c: &mut Ctx, p: &mut P, msr: u32) -> Option<u64> {
    // The segment bases first, without a CPUID: Linux reads the inactive GS
    // base at each context switch, and CPUID exits to the host.
    if matches!(msr, MSR_FS_BASE | MSR_GS_BASE | MSR_SHADOW_GS_BASE) {
        return Some(p.rdmsr(msr));
    }
    let cpu = GuestCpu { p: &*p };
    let vendor = cpu.vendor();
    let v = match msr {
        MSR_EFER => EFER_SCE | EFER_LME | EFER_LMA | (p.rdmsr(MSR_EFER) & EFER_NX),
        MSR_IA32_CR_PAT => XEN_MSR_PAT,
        MSR_IA32_APICBASE => 0xfee0_0900,
        MSR_IA32_MISC_ENABLE => GUEST_MISC_ENABLE,
        MSR_IA32_TSC => p.rdtsc(),
        MSR_STAR | MSR_LSTAR | MSR_CSTAR | MSR_SYSCALL_MASK => 0,
        MSR_TSC_AUX if cpu.tsc_aux() => c.v.msr.tsc_aux,
        // Xen routes these ranges to its vMCE whatever CPUID says.
        m if is_vmce_msr(m) => return vmce_read(c, vendor, m),
        MSR_SPEC_CTRL if cpu.spec_ctrl() => c.v.msr.spec_ctrl,
        // No CPUID faulting to offer: PLATFORM_INFO is 0 and the enables stay 0.
        MSR_INTEL_PLATFORM_INFO | MSR_INTEL_MISC_FEATURES_ENABLES => 0,
        MSR_IA32_FEATURE_CONTROL if matches!(vendor, Vendor::Intel | Vendor::Centaur | Vendor::Shanghai) => {
            // Locked, VMX off (hidden), no LMCE.
            IA32_FEATURE_CONTROL_LOCK
        }
        // The microcode revision is the processor's (Xen forwards its own read).
        MSR_IA32_UCODE_REV if matches!(vendor, Vendor::Intel | Vendor::Amd) => p.rdmsr(MSR_IA32_UCODE_REV),
        MSR_IA32_PERF_CAPABILITIES => 0,
        MSR_IA32_PERF_STATUS | MSR_IA32_PERF_CTL if matches!(vendor, Vendor::Intel | Vendor::Centaur) => 0,
        MSR_IA32_THERM_STATUS if vendor == Vendor::Intel => 0,
        MSR_K8_HWCR if vendor.amd_like() => 0,
        MSR_AMD64_DE_CFG if vendor.amd_like() => AMD64_DE_CFG_LFENCE_SERIALISE,
        // Write-only, or not offered to a PV guest (their CPUID bits are hidden).
        MSR_PRED_CMD
        | MSR_FLUSH_CMD
        | MSR_ARCH_CAPABILITIES
        | MSR_CORE_CAPABILITIES
        | MSR_TSX_FORCE_ABORT
        | MSR_TSX_CTRL
        | MSR_MCU_OPT_CTRL => return None,
        _ => {
            log_unknown(c, msr, "rdmsr");
            return None;
        }
    };
    Some(v)
}

/// WRMSR: false for #GP.
pub fn write<P: Platform>(c: &mut Ctx, p: &mut P, msr: u32, v: u64) -> bool {
    // The segment bases first, without a CPUID (as in `read`).
    if matches!(msr, MSR_FS_BASE | MSR_GS_BASE | MSR_SHADOW_GS_BASE) {
        let canonical = ((v as i64) << 16 >> 16) as u64 == v;
        if canonical {
            p.wrmsr(msr, v);
        }
        return canonical;
    }
    let cpu = GuestCpu { p: &*p };
    let vendor = cpu.vendor();
    match msr {
        // A PV kernel's own syscall MSRs mean nothing: the pv ops swallow them, as Xen does.
        MSR_STAR | MSR_LSTAR | MSR_CSTAR | MSR_SYSCALL_MASK => {}
        MSR_IA32_CR_PAT => return v == XEN_MSR_PAT,
        MSR_EFER => {}
        // Xen drops every MISC_ENABLE write (logging those that change it).
        MSR_IA32_MISC_ENABLE => {}
        MSR_TSC_AUX if cpu.tsc_aux() => {
            if v >> 32 != 0 {
                return false;
            }
            // The guest's RDTSCP/RDPID run natively and read the real MSR.
            c.v.msr.tsc_aux = v;
            p.wrmsr(MSR_TSC_AUX, v);
        }
        m if is_vmce_msr(m) => return vmce_write(c, vendor, m, v),
        MSR_SPEC_CTRL if cpu.spec_ctrl() => {
            if v & !cpu.spec_ctrl_valid() != 0 {
                return false;
            }
            c.v.msr.spec_ctrl = v;
            p.wrmsr(MSR_SPEC_CTRL, v);
        }
        MSR_PRED_CMD if cpu.pred_cmd() => {
            if v & !PRED_CMD_IBPB != 0 {
                return false;
            }
            p.wrmsr(MSR_PRED_CMD, v);
        }
        // No CPUID faulting: only 0 is valid.
        MSR_INTEL_MISC_FEATURES_ENABLES => return v == 0,
        // Intel documents writing 0 before reading the revision.
        MSR_IA32_UCODE_REV => return vendor == Vendor::Intel && v == 0,
        MSR_IA32_PERF_CTL if matches!(vendor, Vendor::Intel | Vendor::Centaur) => {}
        MSR_K8_HWCR | MSR_AMD64_DE_CFG if vendor.amd_like() => {}
        MSR_IA32_FEATURE_CONTROL
        | MSR_INTEL_PLATFORM_INFO
        | MSR_ARCH_CAPABILITIES
        | MSR_CORE_CAPABILITIES
        | MSR_IA32_PERF_CAPABILITIES
        | MSR_FLUSH_CMD
        | MSR_TSX_FORCE_ABORT
        | MSR_TSX_CTRL
        | MSR_MCU_OPT_CTRL => return false,
        _ => {
            log_unknown(c, msr, "wrmsr");
            return false;
        }
    }
    true
}
