//! Cocoon's own command line, and the guest's.
//!
//! Cocoon's options are `cocoon.*` words. Everything after a lone `--` is
//! the guest kernel's command line, used when the kernel module carries none
//! (PVH loaders give modules no string). Otherwise the kernel module's string
//! without its first word (the file name, as GRUB and QEMU pass it) is the
//! guest's command line.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::bootinfo::BootInfo;

/// A deliberate fault inside Cocoon, for testing the fault path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultInjection {
    /// `ud2`: invalid opcode (#UD).
    Ud,
    /// A read of an unmapped address (#PF).
    Pf,
    /// A non-canonical access (#GP).
    Gp,
    /// Division by zero (#DE).
    De,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bring up, load and lay out the kernel, print the plan, then exit cleanly.
    pub dry_run: bool,
    pub fault: Option<FaultInjection>,
    pub log_level: log::LevelFilter,
    /// `cocoon.*` words that were not understood (each is reported once).
    pub unknown: Vec<String>,
    /// The part after a lone `--`, if any.
    pub guest_tail: Option<String>,
    /// `cocoon.compat=3.4`: on Xen, use only what Xen 3.4 offers.
    pub compat: crate::xen_host::Compat,
    /// `cocoon.standalone`: on Xen too, serve the guest from Cocoon alone
    /// (no forwarding of events, grants, xenstore or console).
    pub standalone: bool,
    /// `cocoon.stats`: time every exit and report every kind at shutdown.
    pub stats: bool,
    /// `cocoon.fastpath=off`: every guest syscall and iret through the general
    /// (Rust) path, for comparison and as a way out.
    pub fastpath: bool,
    /// `cocoon.boot=disk`: boot the kernel the guest's own disk's bootloader
    /// configuration names (read from its first IDE disk), as pygrub does.
    pub boot_disk: bool,
    /// `cocoon.boot_entry=E`: the entry to boot instead of the default (an
    /// index, a title or an id, as pygrub's `--entry`).
    pub boot_entry: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            fault: None,
            log_level: log::LevelFilter::Info,
            unknown: Vec::new(),
            guest_tail: None,
            compat: crate::xen_host::Compat::None,
            standalone: false,
            stats: false,
            fastpath: true,
            boot_disk: false,
            boot_entry: None,
        }
    }
}

/// Parse Cocoon's command line.
pub fn parse(cmdline: &str) -> Options {
    let mut o = Options::default();
    let (ours, tail) = match split_dashes(cmdline) {
        Some((a, b)) => (a, Some(b.trim().to_string())),
        None => (cmdline, None),
    };
    o.guest_tail = tail;
    for word in ours.split_ascii_whitespace() {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        match (key, value) {
            ("cocoon.dry-run", None) => o.dry_run = true,
            ("cocoon.stats", None) => o.stats = true,
            ("cocoon.standalone", None) => o.standalone = true,
            ("cocoon.fastpath", Some("on")) => o.fastpath = true,
            ("cocoon.fastpath", Some("off")) => o.fastpath = false,
            ("cocoon.boot", Some("disk")) => o.boot_disk = true,
            ("cocoon.boot", Some("module")) => o.boot_disk = false,
            ("cocoon.boot_entry", Some(v)) if !v.is_empty() => o.boot_entry = Some(v.to_string()),
            ("cocoon.compat", Some("3.4")) => o.compat = crate::xen_host::Compat::Xen34,
            ("cocoon.compat", Some("none")) => o.compat = crate::xen_host::Compat::None,
            ("cocoon.fault", Some(v)) => match v {
                "ud" => o.fault = Some(FaultInjection::Ud),
                "pf" => o.fault = Some(FaultInjection::Pf),
                "gp" => o.fault = Some(FaultInjection::Gp),
                "de" => o.fault = Some(FaultInjection::De),
                _ => o.unknown.push(word.to_string()),
            },
            ("cocoon.log", Some(v)) => match v.parse() {
                Ok(l) => o.log_level = l,
                Err(_) => o.unknown.push(word.to_string()),
            },
            (k, _) if k.starts_with("cocoon.") => o.unknown.push(word.to_string()),
            // Anything else (a loader's own words, the image path) is not ours.
            _ => {}
        }
    }
    o
}

/// Split at a lone `--` word.
fn split_dashes(s: &str) -> Option<(&str, &str)> {
    let mut idx = 0;
    for word in s.split_ascii_whitespace() {
        let at = s[idx..].find(word).map(|p| p + idx)?;
        idx = at + word.len();
        if word == "--" {
            return Some((&s[..at], &s[idx..]));
        }
    }
    None
}

/// The guest kernel's command line: module 1's string minus its first word,
/// else what followed `--` on Cocoon's own line, else empty.
pub fn guest_cmdline(boot: &BootInfo, opts: &Options) -> String {
    if let Some(m) = boot.modules.first() {
        let s = m.cmdline.trim_start();
        if let Some((_, rest)) = s.split_once(|c: char| c.is_ascii_whitespace()) {
            let rest = rest.trim();
            if !rest.is_empty() {
                return rest.to_string();
            }
        }
    }
    opts.guest_tail.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootinfo::{BootProtocol, Module};

    fn boot_with(module_cmdline: &str) -> BootInfo {
        BootInfo {
            protocol: BootProtocol::Multiboot,
            cmdline: String::new(),
            modules: vec![Module { start: 0, len: 1, cmdline: module_cmdline.into() }],
            memory: vec![],
            rsdp: None,
        }
    }

    #[test]
    fn options() {
        let o = parse("/boot/cocoon cocoon.dry-run cocoon.fault=pf cocoon.log=debug cocoon.bogus quiet");
        assert!(o.dry_run);
        assert_eq!(o.fault, Some(FaultInjection::Pf));
        assert_eq!(o.log_level, log::LevelFilter::Debug);
        assert_eq!(o.unknown, vec!["cocoon.bogus".to_string()]);
        assert_eq!(o.guest_tail, None);
    }

    #[test]
    fn bad_values_are_reported() {
        let o = parse("cocoon.fault=xx cocoon.log=loud cocoon.compat=2.0");
        assert_eq!(o.fault, None);
        assert_eq!(o.compat, crate::xen_host::Compat::None);
        assert_eq!(o.unknown.len(), 3);
    }

    #[test]
    fn xen_options() {
        let o = parse("cocoon.compat=3.4 cocoon.standalone");
        assert_eq!(o.compat, crate::xen_host::Compat::Xen34);
        assert!(o.standalone && o.fastpath && o.unknown.is_empty());
        assert!(!parse("cocoon.fastpath=off").fastpath);
        assert_eq!(parse("cocoon.fastpath=maybe").unknown.len(), 1);
    }

    #[test]
    fn boot_from_disk_options() {
        let o = parse("cocoon.boot=disk cocoon.boot_entry=1>2 -- quiet");
        assert!(o.boot_disk && o.unknown.is_empty());
        assert_eq!(o.boot_entry.as_deref(), Some("1>2"));
        assert_eq!(o.guest_tail.as_deref(), Some("quiet"));
        assert!(!parse("").boot_disk);
        assert_eq!(parse("cocoon.boot=floppy cocoon.boot_entry=").unknown.len(), 2);
    }

    #[test]
    fn dashes_split_guest_line() {
        let o = parse("cocoon.dry-run -- console=hvc0 cocoon.fault=ud");
        assert!(o.dry_run);
        assert_eq!(o.fault, None, "words after -- belong to the guest");
        assert_eq!(o.guest_tail.as_deref(), Some("console=hvc0 cocoon.fault=ud"));
        // A word merely containing dashes does not split.
        assert_eq!(parse("a--b --x").guest_tail, None);
    }

    #[test]
    fn guest_line_from_module_string() {
        let o = parse("-- from-dashes");
        assert_eq!(guest_cmdline(&boot_with("/vmlinuz console=hvc0 quiet"), &o), "console=hvc0 quiet");
        assert_eq!(guest_cmdline(&boot_with("/vmlinuz"), &o), "from-dashes");
        assert_eq!(guest_cmdline(&boot_with(""), &parse("")), "");
    }
}
