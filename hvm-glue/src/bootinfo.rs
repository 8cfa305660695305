//! Boot information from the two ways Cocoon is started: multiboot (v1) and
//! the PVH entry (`hvm_start_info`). Both become one [`BootInfo`].
//!
//! The parsers read physical memory through [`PhysMem`], so tests can feed
//! them a byte buffer and the firmware its direct map.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// EAX at the multiboot entry.
pub const MULTIBOOT_BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// `hvm_start_info.magic` (`XEN_HVM_START_MAGIC_VALUE`).
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// The Linux boot protocol's header signature "HdrS" (at boot_params + 0x202).
pub const LINUX_HDRS_MAGIC: u32 = 0x5372_6448;

// multiboot_info.flags bits.
pub const MULTIBOOT_INFO_MEMORY: u32 = 1 << 0;
pub const MULTIBOOT_INFO_CMDLINE: u32 = 1 << 2;
pub const MULTIBOOT_INFO_MODS: u32 = 1 << 3;
pub const MULTIBOOT_INFO_MEM_MAP: u32 = 1 << 6;

// E820 / multiboot / hvm_memmap_table_entry types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
pub const E820_ACPI: u32 = 3;
pub const E820_NVS: u32 = 4;
pub const E820_UNUSABLE: u32 = 5;

/// Longest command line read from boot information.
pub const MAX_CMDLINE: usize = 4096;
/// Most modules and memory-map entries accepted.
pub const MAX_MODULES: usize = 64;
pub const MAX_MEMMAP_ENTRIES: usize = 1024;

/// Read access to physical memory.
pub trait PhysMem {
    /// `len` bytes at physical address `pa`, or `None` when not readable.
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootProtocol {
    Multiboot,
    Pvh,
    /// The Linux boot protocol (Cocoon as a bzImage; its 16-bit stub turns the
    /// real-mode entry into the 32-bit one).
    Linux,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    Ram,
    Reserved,
    Acpi,
    Nvs,
    Unusable,
}

impl MemKind {
    fn from_e820(t: u32) -> Self {
        match t {
            E820_RAM => MemKind::Ram,
            E820_ACPI => MemKind::Acpi,
            E820_NVS => MemKind::Nvs,
            E820_UNUSABLE => MemKind::Unusable,
            _ => MemKind::Reserved,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    pub base: u64,
    pub len: u64,
    pub kind: MemKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    pub len: u64,
    pub cmdline: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    pub protocol: BootProtocol,
    pub cmdline: String,
    pub modules: Vec<Module>,
    pub memory: Vec<MemRegion>,
    pub rsdp: Option<u64>,
}

impl BootInfo {
    /// Total bytes of RAM in the memory map.
    pub fn ram_bytes(&self) -> u64 {
        self.memory.iter().filter(|r| r.kind == MemKind::Ram).map(|r| r.len).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    BadMagic { protocol: BootProtocol, magic: u32 },
    Unreadable { what: &'static str, pa: u64 },
    TooMany { what: &'static str, count: u64 },
    NoMemoryMap,
    BadModule { index: usize, start: u64, end: u64 },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { protocol, magic } => write!(f, "{protocol:?} boot with bad magic {magic:#x}"),
            Self::Unreadable { what, pa } => write!(f, "boot information: {what} at {pa:#x} is not readable"),
            Self::TooMany { what, count } => write!(f, "boot information: {count} {what} is too many"),
            Self::NoMemoryMap => write!(f, "boot information has no memory map"),
            Self::BadModule { index, start, end } => {
                write!(f, "boot module {index} has a bad range {start:#x}-{end:#x}")
            }
        }
    }
}

fn bytes<'m>(mem: &'m dyn PhysMem, pa: u64, len: usize, what: &'static str) -> Result<&'m [u8], BootInfoError> {
    mem.read(pa, len).filter(|b| b.len() == len).ok_or(BootInfoError::Unreadable { what, pa })
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// A NUL-terminated string; stops at `MAX_CMDLINE` or the end of readable memory.
fn c_string(mem: &dyn PhysMem, pa: u64, what: &'static str) -> Result<String, BootInfoError> {
    if pa == 0 {
        return Ok(String::new());
    }
    let mut out = Vec::new();
    for i in 0..MAX_CMDLINE as u64 {
        let b = bytes(mem, pa + i, 1, what)?[0];
        if b == 0 {
            break;
        }
        out.push(b);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn check_module(index: usize, start: u64, end: u64) -> Result<(), BootInfoError> {
    if end < start {
        return Err(BootInfoError::BadModule { index, start, end });
    }
    Ok(())
}

/// Parse multiboot (v1) information at physical address `info_pa`.
pub fn parse_multiboot(mem: &dyn PhysMem, magic: u32, info_pa: u64) -> Result<BootInfo, BootInfoError> {
    if magic != MULTIBOOT_BOOTLOADER_MAGIC {
        return Err(BootInfoError::BadMagic { protocol: BootProtocol::Multiboot, magic });
    }
    let info = bytes(mem, info_pa, 52, "multiboot_info")?;
    let flags = u32_at(info, 0);

    let cmdline = if flags & MULTIBOOT_INFO_CMDLINE != 0 {
        c_string(mem, u32_at(info, 16) as u64, "command line")?
    } else {
        String::new()
    };

    let mut modules = Vec::new();
    if flags & MULTIBOOT_INFO_MODS != 0 {
        let count = u32_at(info, 20) as u64;
        if count as usize > MAX_MODULES {
            return Err(BootInfoError::TooMany { what: "modules", count });
        }
        let addr = u32_at(info, 24) as u64;
        for i in 0..count {
            let m = bytes(mem, addr + i * 16, 16, "module list")?;
            let (start, end) = (u32_at(m, 0) as u64, u32_at(m, 4) as u64);
            check_module(i as usize, start, end)?;
            let cmdline = c_string(mem, u32_at(m, 8) as u64, "module string")?;
            modules.push(Module { start, len: end - start, cmdline });
        }
    }

    let mut memory = Vec::new();
    if flags & MULTIBOOT_INFO_MEM_MAP != 0 {
        let len = u32_at(info, 44) as u64;
        let addr = u32_at(info, 48) as u64;
        let mut off = 0;
        // Each entry is preceded by its own size (not counting the size field).
        while off + 24 <= len {
            if memory.len() >= MAX_MEMMAP_ENTRIES {
                return Err(BootInfoError::TooMany { what: "memory-map entries", count: memory.len() as u64 });
            }
            let e = bytes(mem, addr + off, 24, "memory map")?;
            let size = u32_at(e, 0) as u64;
            memory.push(MemRegion { base: u64_at(e, 4), len: u64_at(e, 12), kind: MemKind::from_e820(u32_at(e, 20)) });
            off += size.max(20) + 4;
        }
    } else if flags & MULTIBOOT_INFO_MEMORY != 0 {
        memory.push(MemRegion { base: 0, len: u32_at(info, 4) as u64 * 1024, kind: MemKind::Ram });
        memory.push(MemRegion { base: 1 << 20, len: u32_at(info, 8) as u64 * 1024, kind: MemKind::Ram });
    }
    if memory.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }
    Ok(BootInfo { protocol: BootProtocol::Multiboot, cmdline, modules, memory, rsdp: None })
}

/// Parse `struct hvm_start_info` at physical address `info_pa`.
pub fn parse_pvh(mem: &dyn PhysMem, info_pa: u64) -> Result<BootInfo, BootInfoError> {
    let head = bytes(mem, info_pa, 4, "hvm_start_info")?;
    let magic = u32_at(head, 0);
    if magic != XEN_HVM_START_MAGIC_VALUE {
        return Err(BootInfoError::BadMagic { protocol: BootProtocol::Pvh, magic });
    }
    // Version 0 ends after rsdp_paddr (48 bytes); version 1 adds the memory map (56).
    let version = u32_at(bytes(mem, info_pa, 8, "hvm_start_info")?, 4);
    let si = bytes(mem, info_pa, if version >= 1 { 56 } else { 48 }, "hvm_start_info")?;
    let nr_modules = u32_at(si, 12) as u64;
    let modlist = u64_at(si, 16);
    let cmdline = c_string(mem, u64_at(si, 24), "command line")?;
    let rsdp = Some(u64_at(si, 32)).filter(|&p| p != 0);

    if nr_modules as usize > MAX_MODULES {
        return Err(BootInfoError::TooMany { what: "modules", count: nr_modules });
    }
    let mut modules = Vec::new();
    for i in 0..nr_modules {
        let m = bytes(mem, modlist + i * 32, 32, "module list")?;
        let (start, len) = (u64_at(m, 0), u64_at(m, 8));
        check_module(i as usize, start, start.checked_add(len).unwrap_or(0))?;
        let cmdline = c_string(mem, u64_at(m, 16), "module string")?;
        modules.push(Module { start, len, cmdline });
    }

    let mut memory = Vec::new();
    if version >= 1 {
        let (addr, n) = (u64_at(si, 40), u32_at(si, 48) as u64);
        if n as usize > MAX_MEMMAP_ENTRIES {
            return Err(BootInfoError::TooMany { what: "memory-map entries", count: n });
        }
        for i in 0..n {
            let e = bytes(mem, addr + i * 24, 24, "memory map")?;
            memory.push(MemRegion { base: u64_at(e, 0), len: u64_at(e, 8), kind: MemKind::from_e820(u32_at(e, 16)) });
        }
    }
    if memory.is_empty() {
        // Version 0 has no map; the caller must get one elsewhere (CMOS/E820 are not reachable
        // from PVH), so this is an error rather than a guess.
        return Err(BootInfoError::NoMemoryMap);
    }
    Ok(BootInfo { protocol: BootProtocol::Pvh, cmdline, modules, memory, rsdp })
}

// struct boot_params offsets (arch/x86/include/uapi/asm/bootparam.h).
const BP_ACPI_RSDP_ADDR: usize = 0x070;
const BP_EXT_RAMDISK_IMAGE: usize = 0x0c0;
const BP_EXT_RAMDISK_SIZE: usize = 0x0c4;
const BP_EXT_CMD_LINE_PTR: usize = 0x0c8;
const BP_E820_ENTRIES: usize = 0x1e8;
const BP_HDR_MAGIC: usize = 0x202;
const BP_HDR_VERSION: usize = 0x206;
const BP_HDR_RAMDISK_IMAGE: usize = 0x218;
const BP_HDR_RAMDISK_SIZE: usize = 0x21c;
const BP_HDR_CMD_LINE_PTR: usize = 0x228;
const BP_E820_TABLE: usize = 0x2d0;
const BP_E820_MAX: usize = 128;
const BOOT_PARAMS_SIZE: usize = 4096;

/// Parse a Linux `struct boot_params` (the zero page) at `bp_pa`: the E820
/// table, the command line, and the ramdisk as the one module.
pub fn parse_linux(mem: &dyn PhysMem, magic: u32, bp_pa: u64) -> Result<BootInfo, BootInfoError> {
    let bp = bytes(mem, bp_pa, BOOT_PARAMS_SIZE, "boot_params")?;
    let hdr_magic = u32_at(bp, BP_HDR_MAGIC);
    if magic != LINUX_HDRS_MAGIC || hdr_magic != LINUX_HDRS_MAGIC {
        return Err(BootInfoError::BadMagic { protocol: BootProtocol::Linux, magic: hdr_magic });
    }
    let version = u16::from_le_bytes([bp[BP_HDR_VERSION], bp[BP_HDR_VERSION + 1]]);
    // The ext_ fields hold the high 32 bits of addresses above 4 GiB (protocol 2.12).
    let hi = |off: usize| if version >= 0x020c { (u32_at(bp, off) as u64) << 32 } else { 0 };
    let cmdline_pa = u32_at(bp, BP_HDR_CMD_LINE_PTR) as u64 | hi(BP_EXT_CMD_LINE_PTR);
    let cmdline = c_string(mem, cmdline_pa, "command line")?;

    let mut modules = Vec::new();
    let rd_start = u32_at(bp, BP_HDR_RAMDISK_IMAGE) as u64 | hi(BP_EXT_RAMDISK_IMAGE);
    let rd_len = u32_at(bp, BP_HDR_RAMDISK_SIZE) as u64 | hi(BP_EXT_RAMDISK_SIZE);
    if rd_len != 0 {
        check_module(0, rd_start, rd_start.checked_add(rd_len).unwrap_or(0))?;
        modules.push(Module { start: rd_start, len: rd_len, cmdline: String::new() });
    }

    let n = bp[BP_E820_ENTRIES] as usize;
    if n > BP_E820_MAX {
        return Err(BootInfoError::TooMany { what: "memory-map entries", count: n as u64 });
    }
    let memory: Vec<MemRegion> = (0..n)
        .map(|i| {
            let e = &bp[BP_E820_TABLE + i * 20..BP_E820_TABLE + i * 20 + 20];
            MemRegion { base: u64_at(e, 0), len: u64_at(e, 8), kind: MemKind::from_e820(u32_at(e, 16)) }
        })
        .collect();
    if memory.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }
    let rsdp = Some(u64_at(bp, BP_ACPI_RSDP_ADDR)).filter(|&p| p != 0 && version >= 0x020e);
    Ok(BootInfo { protocol: BootProtocol::Linux, cmdline, modules, memory, rsdp })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical memory as a buffer starting at `base`.
    struct Buf {
        base: u64,
        data: Vec<u8>,
    }

    impl PhysMem for Buf {
        fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
            let off = pa.checked_sub(self.base)? as usize;
            self.data.get(off..off.checked_add(len)?)
        }
    }

    impl Buf {
        fn new() -> Self {
            Buf { base: 0x1000, data: vec![0; 0x4000] }
        }
        fn put(&mut self, pa: u64, b: &[u8]) {
            let off = (pa - self.base) as usize;
            self.data[off..off + b.len()].copy_from_slice(b);
        }
        fn put32(&mut self, pa: u64, v: u32) {
            self.put(pa, &v.to_le_bytes())
        }
        fn put64(&mut self, pa: u64, v: u64) {
            self.put(pa, &v.to_le_bytes())
        }
    }

    fn multiboot_fixture() -> Buf {
        let mut m = Buf::new();
        let info = 0x1000;
        m.put32(info, MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP);
        m.put32(info + 16, 0x1800); // cmdline
        m.put(0x1800, b"cocoon.dry-run -- ignored\0");
        m.put32(info + 20, 2);
        m.put32(info + 24, 0x1900);
        m.put32(0x1900, 0x20_0000);
        m.put32(0x1904, 0x28_0000);
        m.put32(0x1908, 0x1a00);
        m.put(0x1a00, b"/boot/vmlinuz console=hvc0 root=/dev/ram0\0");
        m.put32(0x1910, 0x30_0000);
        m.put32(0x1914, 0x30_1000);
        m.put32(0x1918, 0);
        // Two memory-map entries, the second with an oversized `size` field.
        m.put32(info + 44, 24 + 28);
        m.put32(info + 48, 0x2000);
        m.put32(0x2000, 20);
        m.put64(0x2004, 0);
        m.put64(0x200c, 0x9fc00);
        m.put32(0x2014, E820_RAM);
        m.put32(0x2018, 24);
        m.put64(0x201c, 0x10_0000);
        m.put64(0x2024, 0x7ee0_0000);
        m.put32(0x202c, E820_RAM);
        m
    }

    #[test]
    fn multiboot_full() {
        let m = multiboot_fixture();
        let bi = parse_multiboot(&m, MULTIBOOT_BOOTLOADER_MAGIC, 0x1000).unwrap();
        assert_eq!(bi.protocol, BootProtocol::Multiboot);
        assert_eq!(bi.cmdline, "cocoon.dry-run -- ignored");
        assert_eq!(bi.modules.len(), 2);
        assert_eq!(
            bi.modules[0],
            Module { start: 0x20_0000, len: 0x8_0000, cmdline: "/boot/vmlinuz console=hvc0 root=/dev/ram0".into() }
        );
        assert_eq!(bi.modules[1].cmdline, "");
        assert_eq!(bi.memory.len(), 2);
        assert_eq!(bi.memory[1], MemRegion { base: 0x10_0000, len: 0x7ee0_0000, kind: MemKind::Ram });
        assert_eq!(bi.ram_bytes(), 0x9fc00 + 0x7ee0_0000);
    }

    #[test]
    fn multiboot_bad_magic() {
        let m = multiboot_fixture();
        assert!(matches!(parse_multiboot(&m, 0x1234, 0x1000), Err(BootInfoError::BadMagic { .. })));
    }

    #[test]
    fn multiboot_fallback_to_mem_lower_upper() {
        let mut m = Buf::new();
        m.put32(0x1000, MULTIBOOT_INFO_MEMORY);
        m.put32(0x1004, 639);
        m.put32(0x1008, 127 * 1024);
        let bi = parse_multiboot(&m, MULTIBOOT_BOOTLOADER_MAGIC, 0x1000).unwrap();
        assert_eq!(bi.memory[1], MemRegion { base: 1 << 20, len: 127 << 20, kind: MemKind::Ram });
        assert!(bi.modules.is_empty() && bi.cmdline.is_empty());
    }

    #[test]
    fn multiboot_without_memory_is_an_error() {
        let mut m = Buf::new();
        m.put32(0x1000, 0);
        assert_eq!(parse_multiboot(&m, MULTIBOOT_BOOTLOADER_MAGIC, 0x1000), Err(BootInfoError::NoMemoryMap));
    }

    #[test]
    fn multiboot_module_list_out_of_memory() {
        let mut m = multiboot_fixture();
        m.put32(0x1018, 0xdead_0000);
        assert!(matches!(
            parse_multiboot(&m, MULTIBOOT_BOOTLOADER_MAGIC, 0x1000),
            Err(BootInfoError::Unreadable { what: "module list", .. })
        ));
    }

    #[test]
    fn multiboot_module_end_before_start() {
        let mut m = multiboot_fixture();
        m.put32(0x1904, 0x10_0000);
        assert!(matches!(
            parse_multiboot(&m, MULTIBOOT_BOOTLOADER_MAGIC, 0x1000),
            Err(BootInfoError::BadModule { index: 0, .. })
        ));
    }

    #[test]
    fn multiboot_too_many_modules() {
        let mut m = multiboot_fixture();
        m.put32(0x1014, 1000);
        assert!(matches!(parse_multiboot(&m, MULTIBOOT_BOOTLOADER_MAGIC, 0x1000), Err(BootInfoError::TooMany { .. })));
    }

    fn pvh_fixture(version: u32) -> Buf {
        let mut m = Buf::new();
        let si = 0x1000;
        m.put32(si, XEN_HVM_START_MAGIC_VALUE);
        m.put32(si + 4, version);
        m.put32(si + 12, 1);
        m.put64(si + 16, 0x1100);
        m.put64(si + 24, 0x1200);
        m.put64(si + 32, 0xf_0000);
        m.put64(si + 40, 0x1300);
        m.put32(si + 48, 3);
        m.put(0x1200, b"-- console=hvc0\0");
        m.put64(0x1100, 0x40_0000);
        m.put64(0x1108, 0x12345);
        m.put64(0x1110, 0);
        for (i, (b, l, t)) in
            [(0u64, 0x9fc00u64, E820_RAM), (0xf_0000, 0x1_0000, E820_RESERVED), (0x10_0000, 0x1ff0_0000, E820_RAM)]
                .iter()
                .enumerate()
        {
            let e = 0x1300 + i as u64 * 24;
            m.put64(e, *b);
            m.put64(e + 8, *l);
            m.put32(e + 16, *t);
        }
        m
    }

    #[test]
    fn pvh_v1() {
        let bi = parse_pvh(&pvh_fixture(1), 0x1000).unwrap();
        assert_eq!(bi.protocol, BootProtocol::Pvh);
        assert_eq!(bi.cmdline, "-- console=hvc0");
        assert_eq!(bi.modules, vec![Module { start: 0x40_0000, len: 0x12345, cmdline: String::new() }]);
        assert_eq!(bi.memory.len(), 3);
        assert_eq!(bi.memory[1].kind, MemKind::Reserved);
        assert_eq!(bi.rsdp, Some(0xf_0000));
        assert_eq!(bi.ram_bytes(), 0x9fc00 + 0x1ff0_0000);
    }

    #[test]
    fn pvh_v0_has_no_memory_map() {
        assert_eq!(parse_pvh(&pvh_fixture(0), 0x1000), Err(BootInfoError::NoMemoryMap));
    }

    #[test]
    fn pvh_bad_magic() {
        let mut m = pvh_fixture(1);
        m.put32(0x1000, MULTIBOOT_BOOTLOADER_MAGIC);
        assert!(matches!(parse_pvh(&m, 0x1000), Err(BootInfoError::BadMagic { protocol: BootProtocol::Pvh, .. })));
    }

    #[test]
    fn pvh_module_overflow() {
        let mut m = pvh_fixture(1);
        m.put64(0x1108, u64::MAX);
        assert!(matches!(parse_pvh(&m, 0x1000), Err(BootInfoError::BadModule { .. })));
    }

    fn linux_fixture() -> Buf {
        let mut m = Buf { base: 0x1_0000, data: vec![0; 0x2_0000] };
        let bp = 0x1_0000;
        m.put32(bp + BP_HDR_MAGIC as u64, LINUX_HDRS_MAGIC);
        m.put(bp + BP_HDR_VERSION as u64, &0x020au16.to_le_bytes());
        m.put32(bp + BP_HDR_RAMDISK_IMAGE as u64, 0x1_8000);
        m.put32(bp + BP_HDR_RAMDISK_SIZE as u64, 0x2345);
        m.put32(bp + BP_HDR_CMD_LINE_PTR as u64, 0x2_0000);
        m.put(0x2_0000, b"cocoon.log=debug -- console=hvc0\0");
        m.put(bp + BP_E820_ENTRIES as u64, &[2]);
        for (i, (b, l, t)) in [(0u64, 0x9fc00u64, E820_RAM), (0x10_0000, 0x1ff0_0000, E820_RAM)].iter().enumerate() {
            let e = bp + BP_E820_TABLE as u64 + i as u64 * 20;
            m.put64(e, *b);
            m.put64(e + 8, *l);
            m.put32(e + 16, *t);
        }
        m
    }

    #[test]
    fn linux_boot_params() {
        let bi = parse_linux(&linux_fixture(), LINUX_HDRS_MAGIC, 0x1_0000).unwrap();
        assert_eq!(bi.protocol, BootProtocol::Linux);
        assert_eq!(bi.cmdline, "cocoon.log=debug -- console=hvc0");
        assert_eq!(bi.modules, vec![Module { start: 0x1_8000, len: 0x2345, cmdline: String::new() }]);
        assert_eq!(bi.memory[1], MemRegion { base: 0x10_0000, len: 0x1ff0_0000, kind: MemKind::Ram });
        assert_eq!(bi.rsdp, None);
    }

    #[test]
    fn linux_without_e820_or_header() {
        let mut m = linux_fixture();
        m.put(0x1_0000 + BP_E820_ENTRIES as u64, &[0]);
        assert_eq!(parse_linux(&m, LINUX_HDRS_MAGIC, 0x1_0000), Err(BootInfoError::NoMemoryMap));
        m.put(0x1_0000 + BP_E820_ENTRIES as u64, &[200]);
        assert!(matches!(parse_linux(&m, LINUX_HDRS_MAGIC, 0x1_0000), Err(BootInfoError::TooMany { .. })));
        m.put32(0x1_0000 + BP_HDR_MAGIC as u64, 0);
        assert!(matches!(parse_linux(&m, LINUX_HDRS_MAGIC, 0x1_0000), Err(BootInfoError::BadMagic { .. })));
    }

    #[test]
    fn unterminated_cmdline_is_an_error_not_an_overread() {
        let mut m = pvh_fixture(1);
        // The string runs to the end of readable memory without a NUL.
        m.put64(0x1018, 0x4f00);
        m.put(0x4f00, &[b'x'; 0x100]);
        assert!(matches!(parse_pvh(&m, 0x1000), Err(BootInfoError::Unreadable { what: "command line", .. })));
    }

    #[test]
    fn overlong_cmdline_is_cut_at_the_limit() {
        let mut m = Buf { base: 0x1000, data: vec![0; 0x4000] };
        let fx = pvh_fixture(1);
        m.data.copy_from_slice(&fx.data);
        m.put(0x2000, &[b'y'; MAX_CMDLINE + 100]);
        m.put64(0x1018, 0x2000);
        assert_eq!(parse_pvh(&m, 0x1000).unwrap().cmdline.len(), MAX_CMDLINE);
    }
}
