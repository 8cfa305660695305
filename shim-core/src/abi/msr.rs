//! MSR numbers, named as in Xen's `asm/msr-index.h` (Intel's SDM names where Xen
//! has none), and the bits Cocoon's MSR emulation uses.
#![allow(non_upper_case_globals)]

// --- Segment bases and syscall (AMD64) ---------------------------------------
pub const MSR_EFER: u32 = 0xc000_0080;
pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_SHADOW_GS_BASE: u32 = 0xc000_0102;
pub const MSR_TSC_AUX: u32 = 0xc000_0103;

// --- Architectural -------------------------------------------------------------
/// Pentium machine-check address and type (read through the vMCE as 0).
pub const MSR_P5_MC_ADDR: u32 = 0x0;
pub const MSR_P5_MC_TYPE: u32 = 0x1;
pub const MSR_IA32_TSC: u32 = 0x10;
pub const MSR_IA32_APICBASE: u32 = 0x1b;
pub const MSR_IA32_FEATURE_CONTROL: u32 = 0x3a;
pub const IA32_FEATURE_CONTROL_LOCK: u64 = 1 << 0;
pub const MSR_SPEC_CTRL: u32 = 0x48;
pub const SPEC_CTRL_IBRS: u64 = 1 << 0;
pub const SPEC_CTRL_STIBP: u64 = 1 << 1;
pub const SPEC_CTRL_SSBD: u64 = 1 << 2;
pub const SPEC_CTRL_IPRED_DIS_U: u64 = 1 << 3;
pub const SPEC_CTRL_IPRED_DIS_S: u64 = 1 << 4;
pub const SPEC_CTRL_RRSBA_DIS_U: u64 = 1 << 5;
pub const SPEC_CTRL_RRSBA_DIS_S: u64 = 1 << 6;
pub const SPEC_CTRL_PSFD: u64 = 1 << 7;
pub const SPEC_CTRL_BHI_DIS_S: u64 = 1 << 10;
pub const MSR_PRED_CMD: u32 = 0x49;
pub const PRED_CMD_IBPB: u64 = 1 << 0;
/// Intel's `IA32_BIOS_SIGN_ID`; AMD's `MSR_AMD_PATCHLEVEL` is the same MSR.
pub const MSR_IA32_UCODE_REV: u32 = 0x8b;
pub const MSR_INTEL_PLATFORM_INFO: u32 = 0xce;
pub const MSR_CORE_CAPABILITIES: u32 = 0xcf;
pub const MSR_ARCH_CAPABILITIES: u32 = 0x10a;
pub const MSR_FLUSH_CMD: u32 = 0x10b;
pub const MSR_TSX_FORCE_ABORT: u32 = 0x10f;
pub const MSR_TSX_CTRL: u32 = 0x122;
pub const MSR_MCU_OPT_CTRL: u32 = 0x123;
pub const MSR_INTEL_MISC_FEATURES_ENABLES: u32 = 0x140;
pub const MSR_IA32_PERF_STATUS: u32 = 0x198;
pub const MSR_IA32_PERF_CTL: u32 = 0x199;
pub const MSR_IA32_THERM_STATUS: u32 = 0x19c;
pub const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
pub const MSR_IA32_MISC_ENABLE_FAST_STRING: u64 = 1 << 0;
pub const MSR_IA32_MISC_ENABLE_BTS_UNAVAIL: u64 = 1 << 11;
pub const MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL: u64 = 1 << 12;
pub const MSR_IA32_MISC_ENABLE_XTPR_DISABLE: u64 = 1 << 23;
pub const MSR_IA32_CR_PAT: u32 = 0x277;
pub const MSR_IA32_PERF_CAPABILITIES: u32 = 0x345;

// --- Machine check (Intel SDM vol. 3 ch. 16; Xen's vmce.c) -----------------
pub const MSR_IA32_MCG_CAP: u32 = 0x179;
pub const MSR_IA32_MCG_STATUS: u32 = 0x17a;
pub const MSR_IA32_MCG_CTL: u32 = 0x17b;
pub const MSR_IA32_MCG_EXT_CTL: u32 = 0x4d0;
/// MCi_CTL2 of bank 0; bank i at `MSR_IA32_MC0_CTL2 + i` (Intel, with CMCI).
pub const MSR_IA32_MC0_CTL2: u32 = 0x280;
/// MCi_CTL/STATUS/ADDR/MISC of bank 0; bank i at `MSR_IA32_MC0_CTL + 4 * i`.
pub const MSR_IA32_MC0_CTL: u32 = 0x400;
pub const MSR_IA32_MC0_STATUS: u32 = 0x401;
pub const MSR_IA32_MC0_ADDR: u32 = 0x402;
pub const MSR_IA32_MC0_MISC: u32 = 0x403;
/// The architectural MSR ranges Xen routes to its vMCE (32 banks).
pub const MSR_IA32_MCx_CTL2_LAST: u32 = MSR_IA32_MC0_CTL2 + 31;
pub const MSR_IA32_MCx_MISC_LAST: u32 = MSR_IA32_MC0_MISC + 4 * 31;
pub const MCG_CAP_COUNT: u64 = 0xff;
pub const MCG_CTL_P: u64 = 1 << 8;
pub const MCG_CMCI_P: u64 = 1 << 10;
pub const MCG_TES_P: u64 = 1 << 11;
pub const MCG_SER_P: u64 = 1 << 24;
pub const MCG_LMCE_P: u64 = 1 << 27;

// --- AMD ------------------------------------------------------------------
pub const MSR_K8_HWCR: u32 = 0xc001_0015;
pub const MSR_K8_SYSCFG: u32 = 0xc001_0010;
pub const MSR_AMD64_LS_CFG: u32 = 0xc001_1020;
pub const MSR_AMD64_DE_CFG: u32 = 0xc001_1029;
pub const AMD64_DE_CFG_LFENCE_SERIALISE: u64 = 1 << 1;
pub const MSR_FAM10H_NODE_ID: u32 = 0xc001_100c;
pub const MSR_AMD64_OSVW_ID_LENGTH: u32 = 0xc001_0140;
pub const MSR_VIRT_SPEC_CTRL: u32 = 0xc001_011f;

// --- MTRRs (hidden from a PV guest's CPUID, as Xen does) ---------------------
pub const MSR_MTRRcap: u32 = 0xfe;
pub const MSR_MTRRdefType: u32 = 0x2ff;
