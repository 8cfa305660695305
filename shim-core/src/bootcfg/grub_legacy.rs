//! GRUB legacy (0.97) `menu.lst` / `grub.conf`: global `default N` or
//! `default saved` (then the number in the `default` file next to it, as
//! `grub-set-default` writes it), then `title` entries with `root (hdD,P)`
//! (0-based P), `uuid`, `kernel PATH ARGS...` and `initrd PATH`. Comments,
//! including Debian's `# kopt=` / `# groot=` magic comments, are comments.
//!
//! `fallback` names the entry GRUB boots when the default fails to load;
//! Cocoon cannot see that happen, so it is read and not used. `savedefault`
//! writes nothing (as grub2's `save_env` in `grub2.rs`).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::MAX_ENTRIES;
use super::{parse_disk, pick_flat, split_device, text, BootCfgError, BootEntry, DeviceHint};

const FILE: &str = "menu.lst";

struct Entry {
    title: String,
    root: Option<DeviceHint>,
    kernel: Option<(String, String, Option<DeviceHint>)>,
    initrd: Option<String>,
}

fn syntax(line: usize, msg: &str) -> BootCfgError {
    BootCfgError::Syntax { file: FILE, line, msg: msg.into() }
}

/// A line's command and its argument: legacy GRUB also accepts
/// `default=0`, with '=' before any blank.
fn split_command(line: &str) -> (&str, &str) {
    let blank = line.find([' ', '\t']);
    let eq = line.find('=');
    let at = match (blank, eq) {
        (Some(b), Some(e)) => Some(b.min(e)),
        (b, e) => b.or(e),
    };
    match at {
        Some(i) => (line.get(..i).unwrap_or(""), line.get(i + 1..).unwrap_or("").trim()),
        None => (line, ""),
    }
}

pub fn choose(config: &[u8], companion: Option<&[u8]>, want: Option<&str>) -> Result<BootEntry, BootCfgError> {
    let src = text(config);
    let mut entries: Vec<Entry> = Vec::new();
    let mut default = 0usize;
    let mut saved = false;

    for (n, raw) in src.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, arg) = split_command(line);
        let cmd = cmd.to_ascii_lowercase();
        if cmd == "title" {
            if entries.len() >= MAX_ENTRIES {
                return Err(BootCfgError::TooComplex { file: FILE, what: "too many menu entries" });
            }
            entries.push(Entry { title: arg.to_string(), root: None, kernel: None, initrd: None });
            continue;
        }
        match (cmd.as_str(), entries.last_mut()) {
            ("default", None) => {
                if arg == "saved" {
                    saved = true;
                } else {
                    default = arg.parse().map_err(|_| syntax(line_no, "default is not a number or 'saved'"))?;
                }
            }
            ("root" | "rootnoverify", Some(e)) => {
                e.root = parse_disk(arg, true);
            }
            ("uuid", Some(e)) => e.root = Some(DeviceHint::FsUuid(arg.to_string())),
            ("kernel", Some(e)) => {
                // Options such as --type=linux or --no-mem-option come first.
                let mut words = arg.split_whitespace();
                let path =
                    words.find(|w| !w.starts_with("--")).ok_or_else(|| syntax(line_no, "kernel without a path"))?;
                let (dev, path) = split_device(path);
                let args = words.collect::<Vec<_>>().join(" ");
                e.kernel = Some((path.to_string(), args, dev.and_then(|d| parse_disk(d, true))));
            }
            ("initrd", Some(e)) => {
                let path = arg.split_whitespace().next().unwrap_or("");
                e.initrd = Some(split_device(path).1.to_string());
            }
            (c @ ("root" | "rootnoverify" | "uuid" | "kernel" | "initrd"), None) => {
                return Err(syntax(line_no, &alloc::format!("{c} without title")));
            }
            // timeout, fallback, hiddenmenu, color, password, savedefault,
            // boot, quiet, chainloader, module, ...: nothing to follow.
            _ => {}
        }
    }

    let from_companion = saved;
    if saved {
        default = companion.and_then(saved_default).unwrap_or(0);
    }
    let e = pick_flat(FILE, &entries, |e| [Some(e.title.as_str()), None], want, default, from_companion)?;
    let Some((kernel, args, dev)) = &e.kernel else {
        return Err(BootCfgError::NoKernel { file: FILE, title: e.title.clone() });
    };
    Ok(BootEntry {
        title: e.title.clone(),
        kernel: kernel.clone(),
        initrd: e.initrd.iter().cloned().collect(),
        args: args.clone(),
        device: dev.clone().or_else(|| e.root.clone()),
    })
}

/// The entry number in legacy GRUB's `default` file: the first line, a
/// number (the rest is '#' padding).
fn saved_default(bytes: &[u8]) -> Option<usize> {
    text(bytes).lines().next()?.trim().parse().ok()
}
