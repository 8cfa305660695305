//! Boot loader configuration readers: given the bytes of a guest's own
//! `grub.cfg`, `menu.lst` or `extlinux.conf`, find the kernel, initrd(s) and
//! command line that the guest's boot loader would boot, as Xen's pygrub does
//! for PV guests.
//!
//! Everything here reads guest-controlled bytes: no input can panic, loop
//! without bound or recurse without bound; malformed input gives a
//! [`BootCfgError`]. Non-UTF-8 bytes are read as U+FFFD.
//!
//! The caller (disk and filesystem code) looks for [`CONFIG_FILES`] on each
//! filesystem in order, reads the [`companion_file`] next to the one it finds
//! (when there is one), and calls [`choose`].

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

mod extlinux;
mod grub2;
mod grub_legacy;
mod grub_script;

/// Where a path lives, when the config says: grub 2's `search --fs-uuid
/// --set=root`, `set root='hd0,gpt2'` or a `(hd0,msdos1)/vmlinuz` prefix,
/// legacy grub's `root (hd0,0)` or `uuid`. Extlinux never says (its paths are
/// on the filesystem holding the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceHint {
    FsUuid(String),
    FsLabel(String),
    /// `disk` counts from 0 (`hd0`); `part` is the 1-based partition number
    /// as Linux counts it (legacy grub's 0-based numbers are converted); 0 is
    /// the whole disk.
    Partition {
        disk: u32,
        part: u32,
    },
}

/// The entry to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    pub title: String,
    /// Path on its filesystem, e.g. "/boot/vmlinuz-6.1.0-28-cloud-amd64", or
    /// "/vmlinuz-..." on a separate /boot. Extlinux may give a path relative
    /// to the config file's directory: pass it through [`resolve_path`].
    pub kernel: String,
    /// Grub 2 and extlinux allow several; Linux concatenates them in order.
    pub initrd: Vec<String>,
    /// The kernel command line as the config gives it (grub 2 variables
    /// expanded where grub would expand them).
    pub args: String,
    pub device: Option<DeviceHint>,
}

/// The syntax of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Grub2,
    GrubLegacy,
    Extlinux,
}

impl ConfigKind {
    /// The name used in error messages.
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigKind::Grub2 => "grub.cfg",
            ConfigKind::GrubLegacy => "menu.lst",
            ConfigKind::Extlinux => "extlinux.conf",
        }
    }
}

/// The files to look for on each filesystem, first found wins, in pygrub's
/// order: grub 2, then extlinux/isolinux, then legacy grub. Paths are from the
/// filesystem's root, so "/grub/grub.cfg" is the one on a separate /boot.
pub const CONFIG_FILES: &[(&str, ConfigKind)] = &[
    ("/boot/grub/grub.cfg", ConfigKind::Grub2),
    ("/grub/grub.cfg", ConfigKind::Grub2),
    ("/boot/grub2/grub.cfg", ConfigKind::Grub2),
    ("/grub2/grub.cfg", ConfigKind::Grub2),
    ("/boot/isolinux/isolinux.cfg", ConfigKind::Extlinux),
    ("/boot/extlinux/extlinux.conf", ConfigKind::Extlinux),
    ("/boot/extlinux.conf", ConfigKind::Extlinux),
    ("/extlinux/extlinux.conf", ConfigKind::Extlinux),
    ("/extlinux.conf", ConfigKind::Extlinux),
    ("/boot/grub/menu.lst", ConfigKind::GrubLegacy),
    ("/boot/grub/grub.conf", ConfigKind::GrubLegacy),
    ("/grub/menu.lst", ConfigKind::GrubLegacy),
    ("/grub/grub.conf", ConfigKind::GrubLegacy),
];

/// The extra file a kind reads besides its config, on the same filesystem:
/// grub 2's `grubenv` next to `grub.cfg` (`saved_entry`, `next_entry`), and
/// legacy grub's `default` next to `menu.lst` (for `default saved`). Extlinux
/// has none. A missing companion is not an error: pass `None` to [`choose`].
pub fn companion_file(kind: ConfigKind, config_path: &str) -> Option<String> {
    let name = match kind {
        ConfigKind::Grub2 => "grubenv",
        ConfigKind::GrubLegacy => "default",
        ConfigKind::Extlinux => return None,
    };
    Some(format!("{}/{}", parent_dir(config_path), name))
}

/// Choose the entry to boot. `want` is the operator's choice with pygrub's
/// `--entry` meaning: an index "N" or an entry's title (grub 2 also takes an
/// id and "N>M" / "title>title" / "id>id" submenu paths; extlinux a label).
/// `None` boots what the config's default names. `companion` is the
/// [`companion_file`]'s contents when it exists.
///
/// An operator's `want` that names nothing is an error, and so is a default
/// written in the config that names nothing; a default that comes from the
/// companion file (grubenv's `saved_entry`/`next_entry`, legacy's `default`
/// file) and has gone stale (its kernel was removed) falls back to the first
/// entry, as the boot loaders do.
pub fn choose(
    kind: ConfigKind,
    config: &[u8],
    companion: Option<&[u8]>,
    want: Option<&str>,
) -> Result<BootEntry, BootCfgError> {
    match kind {
        ConfigKind::Grub2 => grub2::choose(config, companion, want),
        ConfigKind::GrubLegacy => grub_legacy::choose(config, companion, want),
        ConfigKind::Extlinux => extlinux::choose(config, want),
    }
}

/// A kernel or initrd path as the config gave it, made absolute on its
/// filesystem: relative paths (extlinux allows them) are taken from the
/// config file's directory; "." and ".." are folded (".." stops at "/").
pub fn resolve_path(config_path: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined;
    let full = if path.starts_with('/') {
        path
    } else {
        joined = format!("{}/{}", parent_dir(config_path), path);
        joined.as_str()
    };
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Why no entry could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootCfgError {
    /// The file does not parse: `line` is 1-based.
    Syntax { file: &'static str, line: usize, msg: String },
    /// The file defines no entry at all.
    NoEntries { file: &'static str },
    /// The config's own default names no entry.
    DefaultMissing { file: &'static str, default: String, entries: usize },
    /// The operator's choice names no entry.
    WantMissing { file: &'static str, want: String, entries: usize },
    /// The chosen entry loads no Linux kernel (a chainloader, a hypervisor,
    /// an empty submenu...).
    NoKernel { file: &'static str, title: String },
    /// The file needs more work than any real config does (nesting, steps,
    /// entries): refused rather than followed.
    TooComplex { file: &'static str, what: &'static str },
}

impl fmt::Display for BootCfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootCfgError::Syntax { file, line, msg } => write!(f, "{file} line {line}: {msg}"),
            BootCfgError::NoEntries { file } => write!(f, "{file}: no boot entries"),
            BootCfgError::DefaultMissing { file, default, entries } => {
                write!(f, "{file}: default entry {default} does not exist ({entries} entries)")
            }
            BootCfgError::WantMissing { file, want, entries } => {
                write!(f, "{file}: requested entry {want} does not exist ({entries} entries)")
            }
            BootCfgError::NoKernel { file, title } => {
                write!(f, "{file}: entry '{title}' loads no Linux kernel")
            }
            BootCfgError::TooComplex { file, what } => {
                write!(f, "{file}: too complex to follow ({what})")
            }
        }
    }
}

/// How many entries a menu may have: far above any real config.
pub(crate) const MAX_ENTRIES: usize = 4096;

/// Guest bytes as text; invalid UTF-8 becomes U+FFFD.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The directory part of an absolute path ("/boot/grub/grub.cfg" ->
/// "/boot/grub", "/x" -> "").
fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => path.get(..i).unwrap_or(""),
        None => "",
    }
}

/// Splits a grub "(device)/path" into the device name and the path; a path
/// without a prefix has no device.
pub(crate) fn split_device(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix('(') {
        if let Some(end) = rest.find(')') {
            let dev = rest.get(..end).unwrap_or("");
            let tail = rest.get(end + 1..).unwrap_or("");
            return (Some(dev), tail);
        }
    }
    (None, path)
}

/// A grub device name "hdD" or "hdD,P" (P may be "msdosN", "gptN" or "N")
/// as a [`DeviceHint::Partition`]. `zero_based` is legacy grub's numbering.
/// Anything else (cd0, fd0, lvm/..., a nested "hd0,msdos1,bsd1") is `None`.
pub(crate) fn parse_disk(name: &str, zero_based: bool) -> Option<DeviceHint> {
    let name = name.trim().trim_start_matches('(').trim_end_matches(')');
    let rest = name.strip_prefix("hd")?;
    let (disk, part) = match rest.split_once(',') {
        Some((d, p)) => (d, Some(p)),
        None => (rest, None),
    };
    let disk: u32 = disk.parse().ok()?;
    let part = match part {
        None => 0,
        Some(p) => {
            let digits = p.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            let n: u32 = digits.parse().ok()?;
            if zero_based {
                n.checked_add(1)?
            } else if n == 0 {
                return None;
            } else {
                n
            }
        }
    };
    Some(DeviceHint::Partition { disk, part })
}

/// Picks from a flat menu by the operator's `want` (an index, else a name that
/// `names` lists for an entry) or else by `default` (an index).
/// `default_from_companion` says the default came from a state file, where a
/// stale index falls back to the first entry instead of failing.
pub(crate) fn pick_flat<'a, T>(
    file: &'static str,
    entries: &'a [T],
    names: impl Fn(&T) -> [Option<&str>; 2],
    want: Option<&str>,
    default: usize,
    default_from_companion: bool,
) -> Result<&'a T, BootCfgError> {
    if entries.is_empty() {
        return Err(BootCfgError::NoEntries { file });
    }
    if let Some(w) = want {
        let w = w.trim();
        let found = match w.parse::<usize>() {
            Ok(i) => entries.get(i),
            Err(_) => entries.iter().find(|e| names(e).contains(&Some(w))),
        };
        return found.ok_or_else(|| BootCfgError::WantMissing { file, want: w.into(), entries: entries.len() });
    }
    match entries.get(default) {
        Some(e) => Ok(e),
        None if default_from_companion => entries.first().ok_or(BootCfgError::NoEntries { file }),
        None => Err(BootCfgError::DefaultMissing { file, default: format!("{default}"), entries: entries.len() }),
    }
}

#[cfg(test)]
mod tests;
