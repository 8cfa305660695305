//! extlinux / syslinux / isolinux configuration: `LABEL` entries with
//! `KERNEL`/`LINUX`, `APPEND`, `INITRD`, `MENU LABEL`, `MENU DEFAULT`; global
//! `DEFAULT`, `ONTIMEOUT`, `UI`, `PROMPT` and a global `APPEND` for labels
//! without their own. Keywords are case-insensitive. An `initrd=` inside
//! `APPEND` is taken out as the initrd (as pygrub does; comma-separated lists
//! give several). `INCLUDE` and `MENU INCLUDE` files are not read (the caller
//! passes one file); `TEXT HELP` ... `ENDTEXT` blocks are skipped.
//!
//! Which entry boots with no one at the keyboard: with a menu (`UI`, or an
//! old-style `DEFAULT menu.c32`) or a `PROMPT`, `ONTIMEOUT`, else the
//! `MENU DEFAULT` label, else `DEFAULT`; with neither, `DEFAULT`. A
//! `DEFAULT`/`ONTIMEOUT` that names no label is a command line ("vmlinuz
//! root=..."), as syslinux reads it; with none of them, the first label.
//! Paths may be relative to the config's directory: see `resolve_path`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{pick_flat, text, BootCfgError, BootEntry, MAX_ENTRIES};

const FILE: &str = "extlinux.conf";

#[derive(Default)]
struct Entry {
    label: String,
    menu_label: Option<String>,
    kernel: Option<String>,
    /// `None` when the label has no `APPEND` (the global one applies).
    append: Option<String>,
    initrd: Vec<String>,
}

impl Entry {
    fn title(&self) -> &str {
        self.menu_label.as_deref().unwrap_or(&self.label)
    }
}

#[derive(Default)]
struct Globals {
    default: Option<String>,
    ontimeout: Option<String>,
    menu_default: Option<usize>,
    append: Option<String>,
    ui: bool,
    prompt: bool,
}

pub fn choose(config: &[u8], want: Option<&str>) -> Result<BootEntry, BootCfgError> {
    let src = text(config);
    let mut entries: Vec<Entry> = Vec::new();
    let mut g = Globals::default();
    let mut in_text = false;

    for raw in src.lines() {
        let line = raw.trim();
        if in_text {
            in_text = !line.eq_ignore_ascii_case("endtext");
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kw, arg) = split(line);
        let kw = kw.to_ascii_lowercase();
        let cur = entries.last_mut();
        match (kw.as_str(), cur) {
            ("label", _) => {
                if entries.len() >= MAX_ENTRIES {
                    return Err(BootCfgError::TooComplex { file: FILE, what: "too many labels" });
                }
                entries.push(Entry { label: arg.to_string(), ..Entry::default() });
            }
            ("kernel" | "linux", Some(e)) => e.kernel = first_word(arg),
            ("append", Some(e)) => e.append = Some(arg.to_string()),
            ("append", None) => g.append = Some(arg.to_string()),
            ("initrd", Some(e)) => e.initrd.extend(list(arg)),
            ("menu", cur) => {
                let (sub, rest) = split(arg);
                match (sub.to_ascii_lowercase().as_str(), cur) {
                    ("label", Some(e)) => e.menu_label = Some(rest.to_string()),
                    ("default", Some(_)) => g.menu_default = entries.len().checked_sub(1),
                    _ => {}
                }
            }
            ("text", _) => in_text = true,
            ("default", _) => {
                g.default = Some(arg.to_string());
                g.ui |= first_word(arg).is_some_and(|k| k.to_ascii_lowercase().ends_with(".c32"));
            }
            ("ontimeout", _) => g.ontimeout = Some(arg.to_string()),
            ("ui", _) => g.ui = true,
            ("prompt", _) => g.prompt = arg.trim() != "0",
            // timeout, include, say, serial, localboot, ipappend, ...
            _ => {}
        }
    }

    let chosen = match want {
        Some(_) => Choice::Label(pick(&entries, want, 0)?),
        None => default_choice(&entries, &g)?,
    };
    let (title, kernel, append, mut initrd) = match chosen {
        Choice::Label(e) => {
            (e.title().to_string(), e.kernel.clone(), e.append.clone().or_else(|| g.append.clone()), e.initrd.clone())
        }
        Choice::CommandLine(cl) => {
            let (k, rest) = split(cl);
            (cl.to_string(), first_word(k), Some(rest.to_string()), Vec::new())
        }
    };
    let kernel = match kernel {
        Some(k) if !k.to_ascii_lowercase().ends_with(".c32") => k,
        _ => return Err(BootCfgError::NoKernel { file: FILE, title }),
    };
    // `APPEND -` means no arguments at all.
    let append = append.filter(|a| a.trim() != "-").unwrap_or_default();
    let mut args = Vec::new();
    for word in append.split_whitespace() {
        match word.strip_prefix("initrd=") {
            Some(files) => initrd.extend(list(files)),
            None => args.push(word),
        }
    }
    Ok(BootEntry { title, kernel, initrd, args: args.join(" "), device: None })
}

enum Choice<'a> {
    Label(&'a Entry),
    /// A DEFAULT/ONTIMEOUT that names no label: "kernel args...".
    CommandLine(&'a str),
}

fn pick<'a>(entries: &'a [Entry], want: Option<&str>, default: usize) -> Result<&'a Entry, BootCfgError> {
    pick_flat(FILE, entries, |e| [Some(e.label.as_str()), e.menu_label.as_deref()], want, default, false)
}

fn default_choice<'a>(entries: &'a [Entry], g: &'a Globals) -> Result<Choice<'a>, BootCfgError> {
    let by_name = |name: &'a str| -> Choice<'a> {
        let name = name.trim();
        match entries.iter().find(|e| e.label == name) {
            Some(e) => Choice::Label(e),
            None => Choice::CommandLine(name),
        }
    };
    let usable = |s: &&String| first_word(s).is_some_and(|k| !k.to_ascii_lowercase().ends_with(".c32"));
    if g.ui || g.prompt {
        if let Some(t) = g.ontimeout.as_ref().filter(usable) {
            return Ok(by_name(t));
        }
        if let Some(e) = g.menu_default.and_then(|i| entries.get(i)) {
            return Ok(Choice::Label(e));
        }
    }
    match g.default.as_ref().filter(usable) {
        Some(d) => Ok(by_name(d)),
        None => pick(entries, None, 0).map(Choice::Label),
    }
}

/// A keyword and the rest of its line.
fn split(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find([' ', '\t']) {
        Some(i) => (line.get(..i).unwrap_or(""), line.get(i..).unwrap_or("").trim()),
        None => (line, ""),
    }
}

fn first_word(s: &str) -> Option<String> {
    s.split_whitespace().next().map(String::from)
}

/// A comma-separated file list.
fn list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',').map(str::trim).filter(|f| !f.is_empty()).map(String::from)
}
