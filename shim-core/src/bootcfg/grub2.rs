//! GRUB 2 `grub.cfg`: runs the script the way GRUB's normal mode would with
//! no one at the keyboard, then boots the entry `default` names.
//!
//! What runs: `set`/`unset`/`name=value`, `if`/`elif`/`else` with the `[ ]`
//! (`test`) expressions generated files use, `load_env` from the grubenv
//! companion, `search` (fs-uuid / label, `--set[=var]`), `menuentry` and
//! `submenu` definitions; inside the chosen entry `linux`/`linux16`/
//! `linuxefi` and `initrd`/`initrd16`/`initrdefi`. GRUB's `feature_*`
//! variables are set as GRUB 2.06 on a PC sets them (so `$menuentry_id_option`
//! is `--id`), and `grub_platform` is "pc".
//!
//! Documented choices where Cocoon cannot do what GRUB does:
//! - `save_env` writes nothing: a `next_entry` (set by `grub-reboot`) is
//!   booted every time, not once, until something in the guest clears it.
//! - Functions are never called (generated files only use them for video and
//!   `savedefault`); `source`, `configfile`, `blscfg` and loops do nothing.
//! - Commands that probe the machine (`loadfont`, `keystatus`, `cpuid`, and
//!   file tests other than `-s`/`-f`/`-e` on `$prefix/grubenv`, true when the
//!   companion exists) are false; every other command succeeds.
//! - A default naming a submenu boots the submenu's first entry.
//! - `search --file` sets no device (Cocoon cannot tell which filesystem
//!   GRUB would find first); `search --fs-uuid`/`--label` set it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::grub_script::{parse, Node, Part, Word};
use super::{parse_disk, split_device, text, BootCfgError, BootEntry, DeviceHint, MAX_ENTRIES};

const FILE: &str = "grub.cfg";
/// Commands run in all (the config, then the chosen submenus and entry).
const MAX_STEPS: usize = 200_000;
/// How the `root` variable records a `search` result (real GRUB stores the
/// device it found; Cocoon keeps what was searched for).
const UUID_DEV: &str = "fsuuid:";
/// The most text one command may expand to (x86 Linux takes a 2 KiB command
/// line), and the most variables: so that `set a=$a$a` repeated cannot make
/// memory or time grow without bound.
const MAX_EXPANSION: usize = 4096;
const MAX_VARS: usize = 1024;
const LABEL_DEV: &str = "fslabel:";

/// A menu item: an entry or a submenu, with the body it runs when chosen.
struct Item<'n> {
    title: String,
    id: Option<String>,
    submenu: bool,
    body: &'n [Node],
}

/// What the chosen entry's `linux` and `initrd` commands loaded.
#[derive(Default)]
struct Loaded {
    kernel: Option<(String, String, Option<DeviceHint>)>,
    initrd: Vec<String>,
}

struct Shell {
    vars: BTreeMap<String, String>,
    /// The grubenv companion's variables; `None` when there is none.
    grubenv: Option<Vec<(String, String)>>,
    steps: usize,
    loaded: Loaded,
}

pub fn choose(config: &[u8], companion: Option<&[u8]>, want: Option<&str>) -> Result<BootEntry, BootCfgError> {
    let src = text(config);
    let nodes = parse(&src)?;
    let mut sh = Shell::new(companion.map(parse_grubenv));
    let mut menu = Vec::new();
    sh.run(&nodes, &mut menu)?;
    if menu.is_empty() {
        return Err(BootCfgError::NoEntries { file: FILE });
    }

    let (path, from_companion, is_want) = match want {
        Some(w) => (w.trim().to_string(), false, true),
        None => {
            let d = sh.vars.get("default").cloned().unwrap_or_default();
            let from_env = !d.is_empty() && sh.grubenv.as_ref().is_some_and(|env| env.iter().any(|(_, v)| *v == d));
            let d = if d.is_empty() { "0".to_string() } else { d };
            (d, from_env, false)
        }
    };
    let (title, body) = match sh.select(&menu, &path)? {
        Some(found) => found,
        None if from_companion => match sh.select(&menu, "0")? {
            Some(found) => found,
            None => return Err(BootCfgError::NoEntries { file: FILE }),
        },
        None if is_want => return Err(BootCfgError::WantMissing { file: FILE, want: path, entries: menu.len() }),
        None => return Err(BootCfgError::DefaultMissing { file: FILE, default: path, entries: menu.len() }),
    };

    sh.vars.insert("chosen".into(), title.clone());
    sh.loaded = Loaded::default();
    sh.run(body, &mut Vec::new())?;
    let loaded = core::mem::take(&mut sh.loaded);
    match loaded.kernel {
        Some((kernel, args, device)) => Ok(BootEntry { title, kernel, initrd: loaded.initrd, args, device }),
        None => Err(BootCfgError::NoKernel { file: FILE, title }),
    }
}

/// The variables of a `grubenv` block: "# GRUB Environment Block" then
/// `name=value` lines (backslash escapes), '#' padding. A file without the
/// header is not an environment block, as GRUB sees it: no variables.
fn parse_grubenv(bytes: &[u8]) -> Vec<(String, String)> {
    let src = text(bytes);
    let mut vars = Vec::new();
    if !src.starts_with("# GRUB Environment Block") {
        return vars;
    }
    for line in src.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let mut val = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    c => val.push(c),
                }
            }
            if vars.len() < MAX_ENTRIES {
                vars.push((k.to_string(), val));
            }
        }
    }
    vars
}

/// Whether a menu item matches one component of a default / `want` path: an
/// index, else a title or id.
fn find<'a, 'n>(menu: &'a [Item<'n>], comp: &str) -> Option<&'a Item<'n>> {
    match comp.parse::<usize>() {
        Ok(i) => menu.get(i),
        Err(_) => menu.iter().find(|e| e.title == comp || e.id.as_deref() == Some(comp)),
    }
}

impl Shell {
    fn new(grubenv: Option<Vec<(String, String)>>) -> Self {
        let mut vars = BTreeMap::new();
        for f in [
            "feature_chainloader_bpb",
            "feature_ntldr",
            "feature_platform_search_hint",
            "feature_default_font_path",
            "feature_all_video_module",
            "feature_menuentry_id",
            "feature_menuentry_options",
            "feature_200_final",
            "feature_nativedisk_cmd",
            "feature_timeout_style",
        ] {
            vars.insert(f.to_string(), "y".to_string());
        }
        vars.insert("grub_platform".into(), "pc".into());
        vars.insert("grub_cpu".into(), "i386".into());
        Shell { vars, grubenv, steps: 0, loaded: Loaded::default() }
    }

    /// Follows a `>`-separated path of indices, titles or ids from the top
    /// menu, running each submenu's body to build its menu. `None` when a
    /// component names nothing. A path ending at a submenu goes on to the
    /// submenu's first entry.
    fn select<'n>(&mut self, top: &[Item<'n>], path: &str) -> Result<Option<(String, &'n [Node])>, BootCfgError> {
        let mut comps = path.split('>').map(str::trim).peekable();
        let Some(first) = comps.next() else {
            return Ok(None);
        };
        let Some(mut item) = find(top, first).map(|i| (i.title.clone(), i.submenu, i.body)) else {
            return Ok(None);
        };
        // Each round enters one submenu: bounded by the nesting of the parse.
        loop {
            let (title, submenu, body) = item;
            if !submenu {
                return Ok(if comps.peek().is_some() { None } else { Some((title, body)) });
            }
            let mut sub = Vec::new();
            self.run(body, &mut sub)?;
            if sub.is_empty() {
                return Err(BootCfgError::NoKernel { file: FILE, title });
            }
            let comp = comps.next().unwrap_or("0");
            match find(&sub, comp) {
                Some(i) => item = (i.title.clone(), i.submenu, i.body),
                None => return Ok(None),
            }
        }
    }

    /// Runs commands, adding the menu items they define to `menu`; returns
    /// the last command's status.
    fn run<'n>(&mut self, nodes: &'n [Node], menu: &mut Vec<Item<'n>>) -> Result<bool, BootCfgError> {
        let mut status = true;
        for node in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(BootCfgError::TooComplex { file: FILE, what: "too many commands" });
            }
            status = match node {
                Node::Cmd { words, .. } => {
                    let fields = self.expand(words)?;
                    self.command(&fields)?
                }
                Node::If { arms, otherwise } => {
                    let mut taken = None;
                    for (cond, body) in arms {
                        if self.run(cond, menu)? {
                            taken = Some(body);
                            break;
                        }
                    }
                    match taken {
                        Some(body) => self.run(body, menu)?,
                        None => self.run(otherwise, menu)?,
                    }
                }
                Node::Entry { line, submenu, args, body } => {
                    let fields = self.expand(args)?;
                    menu.push(entry_item(*line, *submenu, &fields, body)?);
                    if menu.len() > MAX_ENTRIES {
                        return Err(BootCfgError::TooComplex { file: FILE, what: "too many menu entries" });
                    }
                    true
                }
                Node::Skipped => true,
            };
        }
        Ok(status)
    }

    /// Expands words into fields: variables are substituted; an unquoted
    /// variable's value is split at blanks; a word of nothing but an empty
    /// unquoted variable vanishes.
    fn expand(&self, words: &[Word]) -> Result<Vec<String>, BootCfgError> {
        let mut fields = Vec::new();
        let mut total = 0usize;
        for w in words {
            let mut cur = String::new();
            let mut any = false;
            for part in &w.0 {
                match part {
                    Part::Lit { text, quoted } => {
                        cur.push_str(text);
                        any |= *quoted || !text.is_empty();
                    }
                    Part::Var { name, quoted: true } => {
                        cur.push_str(self.get(name));
                        any = true;
                    }
                    Part::Var { name, quoted: false } => {
                        let val = self.get(name);
                        let mut pieces = val.split([' ', '\t', '\n']).filter(|p| !p.is_empty());
                        if let Some(p) = pieces.next() {
                            cur.push_str(p);
                            any = true;
                        }
                        for p in pieces {
                            total = total.saturating_add(cur.len());
                            fields.push(core::mem::take(&mut cur));
                            cur.push_str(p);
                        }
                    }
                }
            }
            total = total.saturating_add(cur.len());
            if total > MAX_EXPANSION {
                return Err(BootCfgError::TooComplex { file: FILE, what: "a command expands to more than 4 KiB" });
            }
            if any {
                fields.push(cur);
            }
        }
        Ok(fields)
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), BootCfgError> {
        if self.vars.len() >= MAX_VARS && !self.vars.contains_key(name) {
            return Err(BootCfgError::TooComplex { file: FILE, what: "too many variables" });
        }
        self.vars.insert(name.into(), value);
        Ok(())
    }

    fn get(&self, name: &str) -> &str {
        self.vars.get(name).map_or("", String::as_str)
    }

    /// Runs one simple command; returns its status.
    fn command(&mut self, f: &[String]) -> Result<bool, BootCfgError> {
        let Some((cmd, args)) = f.split_first() else {
            return Ok(true);
        };
        if let Some((name, value)) = assignment(cmd) {
            self.set(name, value.into())?;
            return Ok(true);
        }
        Ok(match cmd.as_str() {
            "set" => {
                for a in args {
                    if let Some((name, value)) = assignment(a) {
                        self.set(name, value.into())?;
                    }
                }
                true
            }
            "unset" => {
                for a in args {
                    self.vars.remove(a);
                }
                true
            }
            "load_env" => self.load_env(args)?,
            "[" => match args.split_last() {
                Some((last, inner)) if last == "]" => self.test(inner),
                _ => false,
            },
            "test" => self.test(args),
            "true" => true,
            "false" | "loadfont" | "keystatus" | "cpuid" => false,
            "search" => {
                self.search(args)?;
                true
            }
            "search.fs_uuid" | "search.fs_label" => {
                if let Some(name) = args.first() {
                    let var = args.get(1).map_or("root", String::as_str);
                    let tag = if cmd == "search.fs_uuid" { UUID_DEV } else { LABEL_DEV };
                    self.set(var, format!("{tag}{name}"))?;
                }
                true
            }
            "linux" | "linux16" | "linuxefi" => {
                let mut rest = args.iter().skip_while(|a| a.starts_with("--"));
                if let Some(path) = rest.next() {
                    let (device, path) = self.locate(path);
                    let args = rest.map(|a| quote_arg(a)).collect::<Vec<_>>().join(" ");
                    self.loaded.kernel = Some((path, args, device));
                    self.loaded.initrd.clear();
                }
                true
            }
            // GRUB refuses an initrd before a kernel.
            "initrd" | "initrd16" | "initrdefi" if self.loaded.kernel.is_some() => {
                self.loaded.initrd = args.iter().filter(|a| !a.starts_with("--")).map(|a| self.locate(a).1).collect();
                true
            }
            _ => true,
        })
    }

    /// `load_env [-f FILE] [--skip-sig] [NAME...]`: the companion's
    /// variables (only the NAMEs, when given). False without a companion.
    fn load_env(&mut self, args: &[String]) -> Result<bool, BootCfgError> {
        let Some(env) = self.grubenv.take() else {
            return Ok(false);
        };
        let mut names = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-f" | "--file" => {
                    it.next();
                }
                a if a.starts_with('-') => {}
                a => names.push(a),
            }
        }
        let mut result = Ok(true);
        for (k, v) in &env {
            if names.is_empty() || names.contains(&k.as_str()) {
                if let Err(e) = self.set(k, v.clone()) {
                    result = Err(e);
                    break;
                }
            }
        }
        self.grubenv = Some(env);
        result
    }

    /// `search [--fs-uuid|--label|--file] [--set[=VAR]] [--no-floppy]
    /// [--hint...] NAME`: records what was searched for in VAR (default
    /// `root`) for uuid and label searches.
    fn search(&mut self, args: &[String]) -> Result<(), BootCfgError> {
        let mut tag = None;
        let mut var = None;
        let mut name = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-u" | "--fs-uuid" => tag = Some(UUID_DEV),
                "-l" | "--label" => tag = Some(LABEL_DEV),
                "-f" | "--file" => tag = None,
                "-s" | "--set" => var = Some("root".to_string()),
                "-h" | "--hint" => {
                    it.next();
                }
                a => {
                    if let Some(v) = a.strip_prefix("--set=") {
                        var = Some(v.to_string());
                    } else if !a.starts_with('-') {
                        name = Some(a);
                    }
                }
            }
        }
        if let (Some(tag), Some(var), Some(name)) = (tag, var, name) {
            self.set(&var, format!("{tag}{name}"))?;
        }
        Ok(())
    }

    /// A path's device (its "(dev)" prefix, else `$root`) and the path on it.
    fn locate(&self, path: &str) -> (Option<DeviceHint>, String) {
        let (dev, rest) = split_device(path);
        let dev = dev.unwrap_or_else(|| self.get("root"));
        let rest = if rest.is_empty() { "/" } else { rest };
        (device_hint(dev), rest.to_string())
    }

    /// `test` / `[ ]`: `EXPR -o EXPR`, `EXPR -a EXPR`, `! EXPR`, and
    /// primaries `STRING`, `-z S`, `-n S`, `-s/-f/-e/-d PATH`, `A = B`,
    /// `A == B`, `A != B`, integer `-eq -ne -lt -le -gt -ge`.
    fn test(&self, args: &[String]) -> bool {
        args.split(|a| a == "-o").any(|and| and.split(|a| a == "-a").all(|p| self.primary(p)))
    }

    fn primary(&self, mut p: &[String]) -> bool {
        let mut negate = false;
        while let Some((first, rest)) = p.split_first() {
            if first != "!" || rest.is_empty() {
                break;
            }
            negate = !negate;
            p = rest;
        }
        let value = match p {
            [] => false,
            [s] => !s.is_empty(),
            [op, s] => match op.as_str() {
                "-z" => s.is_empty(),
                "-n" => !s.is_empty(),
                "-s" | "-f" | "-e" => self.grubenv.is_some() && (s == "grubenv" || s.ends_with("/grubenv")),
                _ => false,
            },
            [a, op, b] => {
                let num = || Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?));
                match op.as_str() {
                    "=" | "==" => a == b,
                    "!=" => a != b,
                    "-eq" => num().is_some_and(|(x, y)| x == y),
                    "-ne" => num().is_some_and(|(x, y)| x != y),
                    "-lt" => num().is_some_and(|(x, y)| x < y),
                    "-le" => num().is_some_and(|(x, y)| x <= y),
                    "-gt" => num().is_some_and(|(x, y)| x > y),
                    "-ge" => num().is_some_and(|(x, y)| x >= y),
                    _ => false,
                }
            }
            _ => false,
        };
        value != negate
    }
}

/// `name=value` with a valid variable name.
fn assignment(s: &str) -> Option<(&str, &str)> {
    let (name, value) = s.split_once('=')?;
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((name, value))
}

/// A menu item from `menuentry`/`submenu` arguments: options (`--class X`,
/// `--users X`, `--hotkey X`, `--id X`, `--id=X`, flags) and the title, the
/// first other argument.
fn entry_item<'n>(line: usize, submenu: bool, fields: &[String], body: &'n [Node]) -> Result<Item<'n>, BootCfgError> {
    let mut title = None;
    let mut id = None;
    let mut it = fields.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--id" => id = it.next().cloned(),
            "--class" | "--users" | "--hotkey" | "--source" => {
                it.next();
            }
            a if a.starts_with("--id=") => id = a.get(5..).map(String::from),
            a if a.starts_with("--") => {}
            a if title.is_none() => title = Some(a.to_string()),
            _ => {}
        }
    }
    let kind = if submenu { "submenu" } else { "menuentry" };
    let title =
        title.ok_or_else(|| BootCfgError::Syntax { file: FILE, line, msg: format!("{kind} without a title") })?;
    Ok(Item { title, id, submenu, body })
}

/// A device as `$root` or a "(dev)" prefix holds it.
fn device_hint(dev: &str) -> Option<DeviceHint> {
    let dev = dev.trim().trim_start_matches('(').trim_end_matches(')');
    if let Some(u) = dev.strip_prefix(UUID_DEV) {
        return Some(DeviceHint::FsUuid(u.into()));
    }
    if let Some(l) = dev.strip_prefix(LABEL_DEV) {
        return Some(DeviceHint::FsLabel(l.into()));
    }
    parse_disk(dev, false)
}

/// A kernel argument as Linux reads it: one with blanks inside is quoted.
fn quote_arg(a: &str) -> String {
    if a.contains([' ', '\t', '\n']) {
        format!("\"{a}\"")
    } else {
        a.to_string()
    }
}
