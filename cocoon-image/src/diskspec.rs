//! xl's disk specifications (`disk = [ "..." ]`), as Xen's
//! docs/misc/xl-disk-configuration and libxlu's scanner
//! (`tools/libs/util/libxlu_disk_l.l`) define them.
//!
//! A spec is a comma-separated run of words, each one of:
//! - `key=value` for `format`, `vdev`, `access`, `devtype`, `backend`,
//!   `backendtype`, `specification`, `script`, `colo-host`, `colo-port`,
//!   `colo-export`, `active-disk`, `hidden-disk`, `grant_usage` (0 or 1);
//! - a flag: `cdrom`, `direct-io-safe`, `discard`, `no-discard`, `colo`,
//!   `no-colo`, `trusted`, `untrusted`;
//! - `target=...`, which takes the rest of the spec, commas and all;
//! - a legacy prefix ending in `:` before the rest of a word: `raw:`,
//!   `qcow:`, `qcow2:`, `vhd:` (the format), `iscsi:`, `nbd:`, `enbd:`,
//!   `drbd:` (script `block-NAME`), `tapdisk:`, `tap:`, `tap2:`, `aio:`,
//!   `ioemu:`, `file:`, `phy:` (ignored), so `tap:aio:/img,xvda,w`;
//! - a positional word (no `=`), in the order target, format, vdev, access.
//!   After a legacy prefix the format is not positional, so
//!   `phy:/dev/vg/d,xvda,w` is target, vdev, access. A vdev may end in
//!   `:cdrom` or `:disk`; an empty target before `VDEV:cdrom` in the format
//!   slot means an empty drive (`,hdc:cdrom,r`).
//!
//! A missing format is raw; a cdrom is read-only; a spec needs a vdev, and a
//! target unless it is a cdrom.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow,
    Qcow2,
    Vhd,
    Qed,
    Empty,
}

impl Format {
    fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "" | "raw" => Format::Raw,
            "qcow" => Format::Qcow,
            "qcow2" => Format::Qcow2,
            "vhd" => Format::Vhd,
            "qed" => Format::Qed,
            "empty" => Format::Empty,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow => "qcow",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Qed => "qed",
            Format::Empty => "empty",
        }
    }
}

/// One parsed disk spec (only what a setting changed is `Some`/non-default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Disk {
    pub target: Option<String>,
    pub format: Option<Format>,
    pub vdev: Option<String>,
    pub readwrite: bool,
    pub cdrom: bool,
    /// `backend=`: the backend's domain name.
    pub backend: Option<String>,
    pub backendtype: Option<String>,
    pub specification: Option<String>,
    pub script: Option<String>,
    pub direct_io_safe: bool,
    pub discard: Option<bool>,
    pub trusted: Option<bool>,
    pub grant_usage: Option<bool>,
    /// `colo`, `no-colo` and the colo-* settings, as written.
    pub colo: Vec<String>,
    /// A legacy `phy:`/`file:`/`tap:`... prefix was given.
    pub legacy_prefix: Option<String>,
}

/// Where a vdev puts a disk, after Xen's docs/misc/vbd-interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vdev {
    /// The disk number (xvda, hda, sda, d0 are 0).
    pub disk: u32,
    /// 0 for the whole disk.
    pub partition: u32,
    /// `sdX`: emulated as SCSI, not IDE.
    pub scsi: bool,
}

/// Letters as a disk number: a=0 .. z=25, aa=26 ...
fn letters(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some(s.bytes().fold(0u32, |n, b| n * 26 + u32::from(b - b'a') + 1) - 1)
}

fn split_letters_digits(s: &str) -> (&str, &str) {
    let i = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(i)
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

impl Vdev {
    pub fn parse(vdev: &str) -> Option<Vdev> {
        let part = |p: &str| if p.is_empty() { Some(0) } else { number(p) };
        if let Some(rest) = vdev.strip_prefix("xvd") {
            let (l, p) = split_letters_digits(rest);
            return Some(Vdev { disk: letters(l)?, partition: part(p)?, scsi: false });
        }
        for (prefix, max_disk, max_part, scsi) in [("hd", 3, 63, false), ("sd", 15, 15, true)] {
            if let Some(rest) = vdev.strip_prefix(prefix) {
                let (l, p) = split_letters_digits(rest);
                let (disk, partition) = (letters(l)?, part(p)?);
                return (disk <= max_disk && partition <= max_part).then_some(Vdev { disk, partition, scsi });
            }
        }
        let rest = vdev.strip_prefix('d')?;
        let (d, p) = match rest.split_once('p') {
            Some((d, p)) => (d, number(p)?),
            None => (rest, 0),
        };
        Some(Vdev { disk: number(d)?, partition: p, scsi: false })
    }

    /// Whether an HVM domain's device model shows this disk as an IDE disk
    /// (libxl emulates whole disks 0-3 that are not sdX).
    pub fn emulated_ide(self) -> bool {
        self.partition == 0 && self.disk < 4 && !self.scsi
    }
}

const KEYS: &[&str] = &[
    "format",
    "access",
    "backend",
    "backendtype",
    "specification",
    "vdev",
    "script",
    "devtype",
    "colo-host",
    "colo-port",
    "colo-export",
    "active-disk",
    "hidden-disk",
    "grant_usage",
];
const FLAGS: &[&str] = &["cdrom", "direct-io-safe", "discard", "no-discard", "colo", "no-colo", "trusted", "untrusted"];
const FORMAT_PREFIXES: &[&str] = &["raw", "qcow", "qcow2", "vhd"];
const SCRIPT_PREFIXES: &[&str] = &["iscsi", "nbd", "enbd", "drbd"];
const IGNORED_PREFIXES: &[&str] = &["tapdisk", "tap", "tap2", "aio", "ioemu", "file", "phy"];

fn err(spec: &str, near: &str, what: &str) -> String {
    format!("disk spec `{spec}': {what}: near `{near}'")
}

/// Set a string once (an empty one may be replaced, as libxlu allows).
fn save(spec: &str, slot: &mut Option<String>, what: &str, value: &str) -> Result<(), String> {
    if slot.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(err(spec, value, &format!("{what} respecified")));
    }
    *slot = Some(value.to_string());
    Ok(())
}

/// Set one of a few words once.
fn choose(spec: &str, slot: &mut Option<String>, what: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if !allowed.contains(&value) {
        return Err(err(spec, value, &format!("unknown value for {what}")));
    }
    if slot.as_deref().is_some_and(|old| old != value) {
        return Err(err(spec, value, &format!("{what} respecified")));
    }
    *slot = Some(value.to_string());
    Ok(())
}

struct Scan<'a> {
    spec: &'a str,
    disk: Disk,
    access_set: bool,
}

impl Scan<'_> {
    fn set_format(&mut self, s: &str) -> Result<(), String> {
        let f = Format::parse(s).ok_or_else(|| err(self.spec, s, "unknown value for format"))?;
        if self.disk.format.is_some_and(|old| old != f) {
            return Err(err(self.spec, s, "format respecified"));
        }
        self.disk.format = Some(f);
        Ok(())
    }

    fn set_access(&mut self, s: &str) -> Result<(), String> {
        self.disk.readwrite = match s {
            "r" | "ro" => false,
            "rw" | "w" | "" => true,
            _ => return Err(err(self.spec, s, "unknown value for access")),
        };
        Ok(())
    }

    /// `VDEV:cdrom` or `VDEV:disk`; false (nothing done) without a colon.
    fn vdev_devtype(&mut self, word: &str) -> Result<bool, String> {
        let Some((vdev, kind)) = word.rsplit_once(':') else { return Ok(false) };
        save(self.spec, &mut self.disk.vdev, "vdev", vdev)?;
        self.disk.cdrom = match kind {
            "cdrom" => true,
            "disk" => false,
            _ => return Err(err(self.spec, kind, "unknown deprecated type")),
        };
        Ok(true)
    }

    fn keyed(&mut self, key: &str, value: &str) -> Result<(), String> {
        let (spec, d) = (self.spec, &mut self.disk);
        match key {
            "format" => self.set_format(value),
            "access" => self.set_access(value),
            "devtype" if value == "cdrom" || value == "disk" => {
                d.cdrom = value == "cdrom";
                Ok(())
            }
            "devtype" => Err(err(spec, &format!("devtype={value}"), "unknown value for type")),
            "backend" => save(spec, &mut d.backend, "backend", value),
            "backendtype" => {
                choose(spec, &mut d.backendtype, "backendtype", value, &["phy", "tap", "qdisk", "standalone"])
            }
            "specification" => choose(spec, &mut d.specification, "specification", value, &["xen", "virtio"]),
            "vdev" => save(spec, &mut d.vdev, "vdev", value),
            "script" => save(spec, &mut d.script, "script", value),
            "grant_usage" if value == "0" || value == "1" => {
                d.grant_usage = Some(value == "1");
                Ok(())
            }
            "grant_usage" => Err(err(spec, &format!("{key}={value}"), "bad disk syntax")),
            "colo-port" if value.parse::<u16>().map_or(true, |p| p == 0) => {
                Err(err(spec, value, "unknown value for colo_port"))
            }
            _ => {
                d.colo.push(format!("{key}={value}"));
                Ok(())
            }
        }
    }

    fn flag(&mut self, word: &str) {
        let d = &mut self.disk;
        match word {
            "cdrom" => d.cdrom = true,
            "direct-io-safe" => d.direct_io_safe = true,
            "discard" | "no-discard" => d.discard = Some(word == "discard"),
            "trusted" | "untrusted" => d.trusted = Some(word == "trusted"),
            _ => d.colo.push(word.to_string()),
        }
    }

    fn positional(&mut self, word: &str) -> Result<(), String> {
        if self.disk.target.is_none() {
            self.disk.target = Some(word.to_string());
        } else if self.disk.legacy_prefix.is_none() && self.disk.format.is_none() {
            if self.disk.target.as_deref() == Some("") && self.vdev_devtype(word)? {
                self.disk.format = Some(Format::Empty);
            } else {
                self.set_format(word)?;
            }
        } else if self.disk.vdev.is_none() {
            if !self.vdev_devtype(word)? {
                self.disk.vdev = Some(word.to_string());
            }
        } else if !self.access_set {
            self.access_set = true;
            self.set_access(word)?;
        } else {
            return Err(err(self.spec, word, "too many positional parameters"));
        }
        Ok(())
    }

    /// A legacy `name:` prefix at the start of `rest`: its length.
    fn prefix(&mut self, rest: &str) -> Result<Option<usize>, String> {
        let n = rest.bytes().take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit()).count();
        if n == 0 || !rest.as_bytes()[0].is_ascii_lowercase() || rest.as_bytes().get(n) != Some(&b':') {
            return Ok(None);
        }
        let name = &rest[..n];
        if FORMAT_PREFIXES.contains(&name) {
            self.set_format(name)?;
        } else if SCRIPT_PREFIXES.contains(&name) {
            save(self.spec, &mut self.disk.script, "script", &format!("block-{name}"))?;
        } else if !IGNORED_PREFIXES.contains(&name) {
            // `hdc:cdrom` is a vdev: only `name:` before a non-alphanumeric is a prefix.
            if rest.as_bytes().get(n + 1).is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return Ok(None);
            }
            return Err(err(self.spec, &rest[..=n], "unknown deprecated disk prefix"));
        }
        self.disk.legacy_prefix.get_or_insert_with(String::new).push_str(&rest[..=n]);
        Ok(Some(n + 1))
    }
}

/// Parse one disk spec.
pub fn parse(spec: &str) -> Result<Disk, String> {
    let mut s = Scan { spec, disk: Disk { readwrite: true, ..Disk::default() }, access_set: false };
    let mut rest = spec;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\n']);
        if rest.is_empty() {
            break;
        }
        if let Some(t) = rest.strip_prefix("target=") {
            save(spec, &mut s.disk.target, "target", t.strip_suffix(',').unwrap_or(t))?;
            break;
        }
        if let Some(n) = s.prefix(rest)? {
            rest = &rest[n..];
            continue;
        }
        // The word up to the next comma (which it consumes).
        let (word, after) = match rest.find(',') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if let Some((key, value)) = word.split_once('=') {
            if KEYS.contains(&key) {
                s.keyed(key, value)?;
            } else if !key.is_empty()
                && key.starts_with(|c: char| c.is_ascii_lowercase())
                && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(spec, word, "unknown parameter"));
            } else {
                return Err(err(spec, word, "bad disk syntax"));
            }
        } else if FLAGS.contains(&word) {
            s.flag(word);
        } else {
            s.positional(word)?;
        }
        rest = after;
    }
    let mut d = s.disk;
    if d.format.is_none() {
        d.format = Some(Format::Raw);
    }
    if d.cdrom {
        d.readwrite = false;
        if d.target.as_deref().unwrap_or("").is_empty() {
            d.format = Some(Format::Empty);
        }
    }
    if d.vdev.is_none() {
        return Err(format!("disk spec `{spec}': no vdev specified"));
    }
    if d.target.is_none() && !d.cdrom {
        return Err(format!("disk spec `{spec}': no target specified (and device not removable)"));
    }
    Ok(d)
}

impl Disk {
    pub fn vdev(&self) -> &str {
        self.vdev.as_deref().unwrap_or("")
    }

    /// The target is a block device (dom0's blkback), not a file.
    pub fn is_block(&self) -> bool {
        self.backendtype.as_deref() == Some("phy")
            || self.legacy_prefix.as_deref().is_some_and(|p| p.starts_with("phy:"))
            || self.target.as_deref().is_some_and(|t| t.starts_with("/dev/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(spec: &str) -> Disk {
        parse(spec).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `spec` is refused with an error containing `want`.
    fn refused(spec: &str, want: &str) {
        let e = parse(spec).expect_err(spec);
        assert!(e.contains(want), "{spec}: {e}");
    }

    fn base(target: &str, vdev: &str) -> Disk {
        Disk {
            target: Some(target.into()),
            vdev: Some(vdev.into()),
            format: Some(Format::Raw),
            readwrite: true,
            ..Disk::default()
        }
    }

    #[test]
    fn positional_forms() {
        assert_eq!(d("/dev/vg/guest,raw,xvda,rw"), base("/dev/vg/guest", "xvda"));
        assert_eq!(d("/dev/vg/guest,,xvda"), base("/dev/vg/guest", "xvda"));
        assert_eq!(
            d("/img.qcow2,qcow2,hda,r"),
            Disk { format: Some(Format::Qcow2), readwrite: false, ..base("/img.qcow2", "hda") }
        );
        // Blanks before a word are skipped, blanks after it are part of it (as in libxlu).
        assert_eq!(d(" /a b, raw,\txvdb, w"), base("/a b", "xvdb"));
        refused("/a,raw ,xvdb", "unknown value for format: near `raw '");
        refused("/dev/vg/guest,xvda,w", "unknown value for format: near `xvda'");
        refused("/d,raw,xvda,w,extra", "too many positional parameters: near `extra'");
    }

    #[test]
    fn legacy_prefixes() {
        let phy = d("phy:/dev/vg0/guest,xvda,w");
        assert_eq!(phy, Disk { legacy_prefix: Some("phy:".into()), ..base("/dev/vg0/guest", "xvda") });
        assert!(phy.is_block());
        let tap = d("tap:aio:/srv/guest.img,xvda1,w");
        assert_eq!(tap.legacy_prefix.as_deref(), Some("tap:aio:"));
        assert_eq!(tap.target.as_deref(), Some("/srv/guest.img"));
        assert!(!tap.is_block());
        let q = d("tap:qcow2:/srv/g.qcow2,xvda,r");
        assert_eq!((q.format, q.readwrite), (Some(Format::Qcow2), false));
        assert_eq!(d("file:/srv/g.img,hda,w").vdev(), "hda");
        assert_eq!(d("tap2:vhd:/srv/g.vhd,xvdb,w").format, Some(Format::Vhd));
        assert_eq!(d("iscsi:iqn.2001-04.com.example:storage,xvdc,w").script.as_deref(), Some("block-iscsi"));
        assert_eq!(d("drbd:res0,xvda,w").target.as_deref(), Some("res0"));
        refused("nfs:/srv/x,xvda,w", "unknown deprecated disk prefix: near `nfs:'");
    }

    #[test]
    fn keyed_forms_and_flags() {
        let k = d("format=qcow2, vdev=xvdb, access=ro, backendtype=qdisk, script=block-x, discard, trusted, \
                   direct-io-safe, specification=xen, backend=dd, grant_usage=1, target=/srv/a,b.img");
        assert_eq!(k.target.as_deref(), Some("/srv/a,b.img"));
        assert_eq!(k.format, Some(Format::Qcow2));
        assert_eq!(k.vdev(), "xvdb");
        assert!(!k.readwrite);
        assert_eq!(k.backendtype.as_deref(), Some("qdisk"));
        assert_eq!(k.script.as_deref(), Some("block-x"));
        assert_eq!((k.discard, k.trusted, k.direct_io_safe), (Some(true), Some(true), true));
        assert_eq!(k.specification.as_deref(), Some("xen"));
        assert_eq!(k.backend.as_deref(), Some("dd"));
        assert_eq!(k.grant_usage, Some(true));
        let c = d("vdev=xvdc,no-discard,untrusted,colo,colo-host=h,colo-port=9000,colo-export=e,active-disk=a,hidden-disk=b,target=/x");
        assert_eq!((c.discard, c.trusted), (Some(false), Some(false)));
        assert_eq!(
            c.colo,
            ["colo", "colo-host=h", "colo-port=9000", "colo-export=e", "active-disk=a", "hidden-disk=b"]
        );
        refused("vdev=xvda,cache=none,target=/x", "unknown parameter: near `cache=none'");
        refused("vdev=xvda,access=rwx,target=/x", "unknown value for access");
        refused("vdev=xvda,devtype=floppy,target=/x", "unknown value for type");
        refused("vdev=xvda,backendtype=nbd,target=/x", "unknown value for backendtype");
        refused("vdev=xvda,colo-port=0,target=/x", "unknown value for colo_port");
        refused("vdev=xvda,vdev=xvdb,target=/x", "vdev respecified");
        refused("format=raw,format=qcow2,vdev=xvda,target=/x", "format respecified");
        refused("vdev=xvda,Target=/x", "bad disk syntax");
    }

    #[test]
    fn cdroms() {
        let empty = d(",hdc:cdrom,r");
        assert_eq!(
            (empty.cdrom, empty.format, empty.vdev(), empty.readwrite),
            (true, Some(Format::Empty), "hdc", false)
        );
        assert_eq!(empty.target.as_deref(), Some(""));
        let iso = d("/srv/d.iso,raw,hdc:cdrom,r");
        assert_eq!((iso.cdrom, iso.format, iso.vdev()), (true, Some(Format::Raw), "hdc"));
        let kw = d("vdev=hdc,devtype=cdrom");
        assert_eq!((kw.cdrom, kw.target.clone(), kw.format), (true, None, Some(Format::Empty)));
        assert!(d("file:/srv/d.iso,hdc:cdrom,r").cdrom);
        assert!(d("/srv/d.iso,raw,hdd,r,cdrom").cdrom);
        refused("/srv/d.iso,raw,hdc:floppy,r", "unknown deprecated type: near `floppy'");
    }

    #[test]
    fn incomplete_specs() {
        refused("/dev/vg/x", "no vdev specified");
        refused("vdev=xvda", "no target specified (and device not removable)");
        refused("", "no vdev specified");
    }

    #[test]
    fn vdevs() {
        let v = |s: &str| Vdev::parse(s);
        assert_eq!(v("xvda"), Some(Vdev { disk: 0, partition: 0, scsi: false }));
        assert_eq!(v("xvdd"), Some(Vdev { disk: 3, partition: 0, scsi: false }));
        assert_eq!(v("xvda1"), Some(Vdev { disk: 0, partition: 1, scsi: false }));
        assert_eq!(v("xvdaa"), Some(Vdev { disk: 26, partition: 0, scsi: false }));
        assert_eq!(v("hdc"), Some(Vdev { disk: 2, partition: 0, scsi: false }));
        assert_eq!(v("sdb2"), Some(Vdev { disk: 1, partition: 2, scsi: true }));
        assert_eq!(v("d5p3"), Some(Vdev { disk: 5, partition: 3, scsi: false }));
        assert_eq!(v("hdz"), None);
        assert_eq!(v("xvd"), None);
        assert_eq!(v("xvda01"), None);
        assert_eq!(v("vda"), None);
        assert!(v("xvda").unwrap().emulated_ide());
        assert!(v("hdd").unwrap().emulated_ide());
        assert!(!v("xvde").unwrap().emulated_ide());
        assert!(!v("xvda1").unwrap().emulated_ide());
        assert!(!v("sda").unwrap().emulated_ide());
    }
}
