//! `cocoon-image convert`: a PV domain's xl config made into an HVM one that
//! runs the same guest in Cocoon. What carries over keeps its key and value;
//! everything that cannot is named in one note line each, with what happens
//! instead (on stderr and at the top of the new config).
//!
//! The guest boots one of two ways:
//! - from its own disk (`bootloader=` such as pygrub, or `kernel=` of a
//!   pv-grub image): Cocoon's `cocoon.boot=disk` reads the bootloader config
//!   (grub.cfg, menu.lst, extlinux) from the first disk through its emulated
//!   IDE device at every boot, so kernel updates inside the guest work as
//!   under pygrub. `--entry` becomes `cocoon.boot_entry=`, the guest
//!   arguments xl would give pygrub (`cmdline`, or `root` and `extra`, or
//!   `--args`) follow a lone `--`;
//! - from a kernel on the host (`kernel=`, or `--kernel`): packed with its
//!   initrd and command line into a bundle, as `cocoon-image hvm` does.

use std::path::{Path, PathBuf};

use cocoon_image::diskspec::{self, Disk, Vdev};
use cocoon_image::xlcfg::{string_literal, Config, Value};

use crate::hvm;

/// Keys that mean the same for an HVM domain: carried as they are.
const CARRIED: &[&str] = &[
    "uuid",
    "vcpus",
    "maxvcpus",
    "cpus",
    "cpus_soft",
    "cpu_weight",
    "cap",
    "pool",
    "on_poweroff",
    "on_reboot",
    "on_watchdog",
    "on_crash",
    "on_soft_reset",
    "tsc_mode",
    "localtime",
    "rtc_timeoffset",
    "max_grant_frames",
    "max_maptrack_frames",
    "max_grant_version",
    "max_event_channels",
    "shadow_memory",
    "seclabel",
    "init_seclabel",
    "nomigrate",
    "driver_domain",
    "cpuid",
    "claim_mode",
    "vif",
    "vtpm",
    "p9",
    "pvcalls",
    "channel",
    "vdispl",
    "vsnd",
    "device_model_override",
    "device_model_user",
    "dm_restrict",
    "vmtrace_buf_kb",
    "xend_suspend_evtchn_compat",
];

/// Keys that Cocoon's own settings replace.
const REPLACED: &[&str] = &[
    "type",
    "builder",
    "device_model_version",
    "serial",
    "vga",
    "stdvga",
    "vnc",
    "vnclisten",
    "vncdisplay",
    "vncunused",
    "vncpasswd",
    "sdl",
    "opengl",
    "nographic",
    "spice",
    "xen_platform_pci",
    "boot",
];

/// HVM settings that xl ignored for the PV domain and that now take effect.
const HVM_ONLY: &[&str] = &[
    "acpi",
    "acpi_s3",
    "acpi_s4",
    "acpi_laptop_slate",
    "apic",
    "pae",
    "hap",
    "oos",
    "nestedhvm",
    "viridian",
    "hpet",
    "vpt_align",
    "timer_mode",
    "altp2m",
    "altp2mhvm",
    "ms_vm_genid",
    "videoram",
    "soundhw",
    "vendor_device",
    "mca_caps",
    "device_model_args_hvm",
];

/// Keys that cannot carry over, and what happens instead.
const DROPPED: &[(&str, &str)] = &[
    ("e820_host", "PV only (the host's memory map); the HVM domain has its own"),
    ("vfb", "the domain has no display (vga=\"none\"): use the console (xl console) or the network"),
    ("vkb", "no display, so no PV keyboard"),
    ("pci", "PCI passthrough to a PV guest needs pcifront, which Cocoon does not carry: nothing is passed through"),
    ("pci_permissive", "goes with pci, which is not carried"),
    ("pci_msitranslate", "goes with pci, which is not carried"),
    ("pci_seize", "goes with pci, which is not carried"),
    ("pci_power_mgmt", "goes with pci, which is not carried"),
    ("rdm", "goes with pci, which is not carried"),
    ("rdm_mem_boundary", "goes with pci, which is not carried"),
    ("gfx_passthru", "goes with pci, which is not carried"),
    ("irqs", "PV hardware access: Cocoon does not pass interrupts through to the guest"),
    ("iomem", "PV hardware access: Cocoon does not map I/O memory into the guest"),
    ("ioports", "PV hardware access: Cocoon does not pass I/O ports through to the guest"),
    ("dtdev", "Arm only"),
    ("device_tree", "Arm only"),
    ("virtio", "virtio-mmio devices are Arm only"),
    ("vnuma", "Cocoon shows the guest one NUMA node"),
    ("pvshim", "Xen's PV shim: Cocoon takes its place"),
    ("pvshim_path", "Xen's PV shim: Cocoon takes its place"),
    ("pvshim_cmdline", "Xen's PV shim: Cocoon takes its place"),
    ("pvshim_extra", "Xen's PV shim: Cocoon takes its place"),
    ("usbctrl", "PV USB is not carried through Cocoon, and emulated USB is invisible to a PV kernel"),
    ("usbdev", "PV USB is not carried through Cocoon, and emulated USB is invisible to a PV kernel"),
    ("usb", "emulated USB is invisible to a PV kernel"),
    ("usbdevice", "emulated USB is invisible to a PV kernel"),
    ("device_model_args", "arguments for the PV domain's QEMU (its vfb and qdisk), not for the HVM device model"),
    ("device_model_args_pv", "arguments for the PV domain's QEMU, not for the HVM device model"),
    ("device_model_stubdomain_override", "Cocoon's direct kernel boot is made for a device model in dom0"),
    ("device_model_stubdomain_seclabel", "Cocoon's direct kernel boot is made for a device model in dom0"),
    ("bios", "Cocoon starts through the default firmware's direct kernel boot"),
    ("firmware", "Cocoon starts through the default firmware's direct kernel boot"),
    ("bios_path_override", "Cocoon starts through the default firmware's direct kernel boot"),
    ("firmware_override", "Cocoon starts through the default firmware's direct kernel boot"),
    ("smbios_firmware", "Cocoon starts through the default firmware's direct kernel boot"),
    ("acpi_firmware", "Cocoon starts through the default firmware's direct kernel boot"),
];

/// Keys the boot mapping reads (see `boot`).
const BOOT_KEYS: &[&str] = &[
    "kernel",
    "ramdisk",
    "cmdline",
    "root",
    "extra",
    "bootloader",
    "bootloader_args",
    "bootloader_restrict",
    "bootloader_user",
];

/// What the operator asked besides the config.
#[derive(Default)]
pub struct Options<'a> {
    /// A new domain name (the uuid is then left to xl).
    pub name: Option<&'a str>,
    /// Boot this host kernel instead of what the config names.
    pub kernel: Option<&'a Path>,
    pub initrd: Option<&'a Path>,
    /// More `cocoon.*` words for Cocoon's command line.
    pub cocoon_options: &'a str,
}

#[derive(Debug, PartialEq)]
pub enum Boot {
    /// Cocoon reads the bootloader config from the first disk.
    Disk { entry: Option<String>, args: String },
    /// A host kernel and initrd, bundled with the guest's command line.
    Direct { kernel: PathBuf, initrd: Option<PathBuf>, cmdline: String },
}

/// The HVM domain to write.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub memory_mib: i64,
    pub boot: Boot,
    /// Cocoon's command line (the HVM domain's `cmdline`).
    pub cocoon_cmdline: String,
    /// Carried settings, in the config's order.
    pub settings: Vec<(String, Value)>,
    pub disks: Vec<Disk>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn note(&mut self, key: &str, v: &Value, what: &str) {
        self.notes.push(format!("{key} = {}: {what}", short(v)));
    }
}

/// A value for a note line: long lists and strings are cut.
fn short(v: &Value) -> String {
    let s = v.to_xl();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn string<'c>(cfg: &'c Config, key: &str) -> Result<Option<&'c str>, String> {
    match cfg.get(key) {
        None => Ok(None),
        Some(v) => v.atom().map(Some).ok_or_else(|| format!("`{key}' is a list but should be a single value")),
    }
}

fn number(cfg: &Config, key: &str) -> Result<Option<i64>, String> {
    match cfg.get(key) {
        None => Ok(None),
        Some(v) => v.number().map(Some).ok_or_else(|| format!("`{key}' = {} is not a number", v.to_xl())),
    }
}

/// The guest command line as xl builds it: `cmdline`, else `root=ROOT EXTRA`.
fn guest_cmdline(cfg: &Config, notes: &mut Vec<String>) -> Result<Option<String>, String> {
    let (cmdline, root, extra) = (string(cfg, "cmdline")?, string(cfg, "root")?, string(cfg, "extra")?);
    if let Some(c) = cmdline {
        if root.is_some() || extra.is_some() {
            notes.push("root, extra: ignored because cmdline is set (as xl does)".into());
        }
        return Ok(Some(c.to_string()));
    }
    Ok(match (root, extra) {
        (Some(r), Some(e)) => Some(format!("root={r} {e}")),
        (Some(r), None) => Some(format!("root={r}")),
        (None, e) => e.map(str::to_string),
    })
}

/// pygrub's options (`bootloader_args`): the entry, the arguments, and a
/// note for each option that cannot carry over.
fn pygrub_args(cfg: &Config, notes: &mut Vec<String>) -> Result<(Option<String>, Option<String>), String> {
    let words: Vec<String> = match cfg.get("bootloader_args") {
        None => return Ok((None, None)),
        // A single string is split at spaces (xl's deprecated form).
        Some(Value::Str(s) | Value::Num(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| v.atom().map(str::to_string).ok_or("`bootloader_args' holds a list in its list".to_string()))
            .collect::<Result<_, _>>()?,
    };
    let (mut entry, mut args) = (None, None);
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let (opt, inline) = match w.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (w.as_str(), None),
        };
        let takes_value = ["-e", "--entry", "--args", "--kernel", "--ramdisk", "--output", "--output-format"];
        let value = if inline.is_none() && takes_value.contains(&opt) { it.next().cloned() } else { inline };
        match (opt, value) {
            ("-e" | "--entry", Some(v)) => entry = Some(v),
            ("--args", Some(v)) => args = Some(v),
            ("-q" | "--quiet" | "-n" | "--not-really", _) => {}
            (o, _) => {
                notes.push(format!("bootloader_args {o}: a pygrub option Cocoon has no counterpart for; not carried"))
            }
        }
    }
    Ok((entry, args))
}

fn is_pvgrub(kernel: &str) -> bool {
    Path::new(kernel).file_name().is_some_and(|f| f.to_string_lossy().contains("grub"))
}

/// Check that Cocoon can read the bootloader config: the first disk (the one
/// pygrub reads) must be a whole disk that HVM emulates as IDE, and the
/// first such disk.
fn check_boot_disk(disks: &[Disk]) -> Result<(), String> {
    let fallback = "or give --kernel (and --initrd) to boot a kernel from the host instead";
    let first =
        disks.first().ok_or(format!("the guest boots from its disk, but the config has no disk= ({fallback})"))?;
    let v =
        Vdev::parse(first.vdev()).ok_or(format!("the boot disk's vdev `{}' is not a Xen disk name", first.vdev()))?;
    if !v.emulated_ide() {
        let why = if v.partition != 0 {
            "a partition"
        } else if v.scsi {
            "an sdX (SCSI) disk"
        } else {
            "beyond the first four disks"
        };
        return Err(format!(
            "the boot disk `{}' is {why}: an HVM domain emulates only whole disks xvda..xvdd (hda..hdd) as IDE, \
             which is how Cocoon reads the bootloader config; make it a whole disk, {fallback}",
            first.vdev()
        ));
    }
    for d in &disks[1..] {
        if Vdev::parse(d.vdev()).is_some_and(|o| o.emulated_ide() && o.disk < v.disk) {
            return Err(format!(
                "`{}' comes before the boot disk `{}' on the emulated IDE bus, and Cocoon reads the first: \
                 list the boot disk's vdev lowest, {fallback}",
                d.vdev(),
                first.vdev()
            ));
        }
    }
    Ok(())
}

/// Decide how the guest boots; the boot keys' notes go to `notes`.
fn boot(cfg: &Config, opts: &Options, disks: &[Disk], notes: &mut Vec<String>) -> Result<Boot, String> {
    let cmdline = guest_cmdline(cfg, notes)?;
    let bootloader = string(cfg, "bootloader")?.filter(|b| !b.is_empty());
    let kernel = string(cfg, "kernel")?;
    if let Some(k) = opts.kernel {
        if let Some(b) = bootloader {
            notes.push(format!("bootloader = {}: replaced by --kernel (a host kernel)", string_literal(b)));
        } else if let Some(old) = kernel {
            notes.push(format!("kernel = {}: replaced by --kernel", string_literal(old)));
        }
        if let Some(r) = string(cfg, "ramdisk")?.filter(|_| opts.initrd.is_none()) {
            notes.push(format!("ramdisk = {}: not used with --kernel (give --initrd)", string_literal(r)));
        }
        return Ok(Boot::Direct {
            kernel: k.to_path_buf(),
            initrd: opts.initrd.map(Path::to_path_buf),
            cmdline: cmdline.unwrap_or_default(),
        });
    }
    if opts.initrd.is_some() {
        return Err("--initrd goes with --kernel".into());
    }
    if let Some(b) = bootloader {
        let (entry, args) = pygrub_args(cfg, notes)?;
        if !Path::new(b).file_name().is_some_and(|f| f.to_string_lossy().contains("pygrub")) {
            notes.push(format!(
                "bootloader = {}: not run; Cocoon reads grub.cfg, menu.lst or extlinux.conf from the disk itself",
                string_literal(b)
            ));
        }
        for key in ["kernel", "ramdisk"] {
            if let Some(v) = string(cfg, key)? {
                notes.push(format!(
                    "{key} = {}: picks pygrub's entry by path, which Cocoon cannot: it boots the default entry \
                     (or bootloader_args' --entry)",
                    string_literal(v)
                ));
            }
        }
        for key in ["bootloader_restrict", "bootloader_user"] {
            if cfg.get(key).is_some() {
                notes.push(format!("{key}: no bootloader runs in dom0 any more (Cocoon reads the disk in the guest)"));
            }
        }
        check_boot_disk(disks)?;
        return Ok(Boot::Disk { entry, args: args.or(cmdline).unwrap_or_default() });
    }
    match kernel {
        Some(k) if is_pvgrub(k) => {
            for key in ["cmdline", "root", "extra", "ramdisk"] {
                if cfg.get(key).is_some() {
                    notes.push(format!(
                        "{key}: pv-grub's own setting (where its menu is): not carried; Cocoon finds the bootloader \
                         config on the disk itself"
                    ));
                }
            }
            check_boot_disk(disks)?;
            Ok(Boot::Disk { entry: None, args: String::new() })
        }
        Some(k) => Ok(Boot::Direct {
            kernel: PathBuf::from(k),
            initrd: string(cfg, "ramdisk")?.map(PathBuf::from),
            cmdline: cmdline.unwrap_or_default(),
        }),
        None => Err("the config has neither kernel= nor bootloader=: nothing to boot".into()),
    }
}

/// The disks of `disk=`, each parsed as xl would.
fn disks(cfg: &Config) -> Result<Vec<Disk>, String> {
    match cfg.get("disk") {
        None => Ok(Vec::new()),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| v.atom().ok_or("`disk' holds a list in its list".to_string()).and_then(diskspec::parse))
            .collect(),
        Some(_) => Err("`disk' should be a list: disk = [ \"...\" ]".into()),
    }
}

/// Cocoon's command line for a boot.
fn cocoon_cmdline(boot: &Boot, options: &str, notes: &mut Vec<String>) -> String {
    let mut words: Vec<String> = Vec::new();
    if let Boot::Disk { entry, args } = boot {
        words.push("cocoon.boot=disk".into());
        match entry {
            Some(e) if e.contains(char::is_whitespace) => notes.push(format!(
                "bootloader_args --entry={e:?}: has spaces, which Cocoon's command line cannot carry; \
                 the default entry boots (give its number instead)"
            )),
            Some(e) => words.push(format!("cocoon.boot_entry={e}")),
            None => {}
        }
        words.extend(options.split_whitespace().map(str::to_string));
        if !args.trim().is_empty() {
            words.push("--".into());
            words.push(args.trim().to_string());
        }
    } else {
        words.extend(options.split_whitespace().map(str::to_string));
    }
    words.join(" ")
}

/// Map a PV domain's config to the HVM domain that runs it in Cocoon.
pub fn plan(cfg: &Config, opts: &Options) -> Result<Plan, String> {
    let mut notes: Vec<String> = cfg.repeats.clone();
    match string(cfg, "type")?.or(string(cfg, "builder")?) {
        Some("hvm") => return Err("this is already an HVM domain's config".into()),
        Some("pvh") => return Err("this is a PVH domain's config; convert takes a PV domain's".into()),
        _ => {}
    }
    if number(cfg, "pvh")?.is_some_and(|p| p != 0) {
        return Err("this is a PVH domain's config (pvh=1); convert takes a PV domain's".into());
    }
    let name = match (opts.name, string(cfg, "name")?) {
        (Some(n), _) | (None, Some(n)) => n.to_string(),
        (None, None) => return Err("the config has no name= (or give --name)".into()),
    };
    hvm::check_name(&name)?;
    let memory_mib = number(cfg, "memory")?
        .ok_or("the config has no memory=; xl's default (32 MiB) is too little for Cocoon and a guest")?;
    if memory_mib < 64 {
        return Err(format!("memory = {memory_mib}: too little for Cocoon and a guest (at least 64 MiB)"));
    }
    let disks = disks(cfg)?;
    let boot = boot(cfg, opts, &disks, &mut notes)?;
    let cocoon_cmdline = cocoon_cmdline(&boot, opts.cocoon_options, &mut notes);
    let mut p = Plan { name, memory_mib, boot, cocoon_cmdline, settings: Vec::new(), disks, notes };
    for s in &cfg.settings {
        let (key, v) = (s.key.as_str(), &s.value);
        if let Some((_, why)) = DROPPED.iter().find(|(k, _)| *k == key) {
            p.note(key, v, &format!("not carried: {why}"));
        } else if REPLACED.contains(&key) {
            p.note(key, v, "replaced by what Cocoon needs (see the settings at the end)");
        } else if HVM_ONLY.contains(&key) {
            p.note(key, v, "ignored by xl for a PV domain, takes effect in the HVM one (carried)");
            p.settings.push((s.key.clone(), v.clone()));
        } else if key == "name" || key == "pvh" || BOOT_KEYS.contains(&key) {
        } else if key == "uuid" && opts.name.is_some() {
            p.note(key, v, "not carried, since --name gives a new domain (xl makes a new uuid)");
        } else if key == "maxmem" && v.number().is_some_and(|m| m > memory_mib) {
            p.note(
                key,
                v,
                &format!(
                    "set to memory ({memory_mib}): more would make an HVM domain populate-on-demand, \
                     which Cocoon cannot serve (balloon up no further than memory)"
                ),
            );
            p.settings.push((s.key.clone(), Value::Num(memory_mib.to_string())));
        } else if CARRIED.contains(&key) || key == "memory" || key == "maxmem" || key == "disk" {
            p.settings.push((s.key.clone(), v.clone()));
        } else {
            p.note(key, v, "not known to cocoon-image: carried as written (check it means the same for HVM)");
            p.settings.push((s.key.clone(), v.clone()));
        }
    }
    Ok(p)
}

/// The HVM domain's xl config. `source` is the PV config it came from.
pub fn xl_config(p: &Plan, source: &Path, bzimage: &Path, bundle: Option<&Path>) -> Result<String, String> {
    let mut out = format!(
        "# {name}: the PV domain of {src}, run in Cocoon (PV-in-HVM shim) as an HVM domain.\n\
         # Made by cocoon-image convert. `xl create` this file; `xl console {name}` is the guest's console,\n\
         # `xl console -t serial {name}` Cocoon's log. Back to PV: shut this down, `xl create {src}`.\n",
        name = p.name,
        src = source.display()
    );
    if !p.notes.is_empty() {
        out += "#\n# What did not carry over as it was:\n";
        for n in &p.notes {
            out += &format!("#   {n}\n");
        }
    }
    out += &format!("\nname = {}\n", string_literal(&p.name));
    for (k, v) in &p.settings {
        out += &format!("{k} = {}\n", v.to_xl());
    }
    out += "\n# What Cocoon needs.\n";
    out += hvm::COCOON_HVM_SETTINGS;
    out += &format!("kernel = {}\n", string_literal(&hvm::abs_path(bzimage)?));
    if let Some(b) = bundle {
        out += &format!("ramdisk = {}\n", string_literal(&hvm::abs_path(b)?));
    }
    out += &format!("cmdline = {}\n", string_literal(&p.cocoon_cmdline));
    Ok(out)
}

/// What `convert` asks for besides the config.
pub struct Request<'a> {
    pub config: &'a Path,
    pub firmware: &'a Path,
    pub out_dir: &'a Path,
    pub libvirt: bool,
    pub options: Options<'a>,
}

/// Read the config, write the HVM domain's files; the notes go to stderr.
pub fn run(r: &Request) -> Result<String, String> {
    let src = r.config;
    let text = std::fs::read_to_string(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let cfg = cocoon_image::xlcfg::parse(&text).map_err(|e| format!("{}:{e}", src.display()))?;
    let plan = plan(&cfg, &r.options).map_err(|e| format!("{}: {e}", src.display()))?;
    let (bz_path, mut report) = hvm::write_bzimage(r.firmware, r.out_dir)?;
    let bundle_path = match &plan.boot {
        Boot::Direct { kernel, initrd, cmdline } => {
            let b = r.out_dir.join(format!("{}.bundle", plan.name));
            let cmdline = (!cmdline.is_empty()).then_some(cmdline.as_str());
            report += &crate::bundle(kernel, initrd.as_deref(), cmdline, &b)?;
            Some(b)
        }
        Boot::Disk { .. } => None,
    };
    let cfg_path = r.out_dir.join(format!("{}.cfg", plan.name));
    hvm::write(&cfg_path, xl_config(&plan, src, &bz_path, bundle_path.as_deref())?.as_bytes())?;
    report += &format!("{}: xl config ({})\n", cfg_path.display(), describe(&plan.boot));
    let mut notes = plan.notes.clone();
    if r.libvirt {
        let xml_path = r.out_dir.join(format!("{}.xml", plan.name));
        let (xml, xml_notes) = crate::libvirt::domain_xml(&plan, &bz_path, bundle_path.as_deref())?;
        hvm::write(&xml_path, xml.as_bytes())?;
        report += &format!("{}: libvirt domain XML (virsh define {})\n", xml_path.display(), xml_path.display());
        notes.extend(xml_notes.into_iter().map(|n| format!("libvirt XML: {n}")));
    }
    for n in &notes {
        eprintln!("cocoon-image: note: {n}");
    }
    Ok(report)
}

fn describe(boot: &Boot) -> String {
    match boot {
        Boot::Disk { entry: Some(e), .. } => format!("boots entry {e} of the bootloader config on its first disk"),
        Boot::Disk { entry: None, .. } => "boots the default entry of the bootloader config on its first disk".into(),
        Boot::Direct { kernel, .. } => format!("boots {} from the host", kernel.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_image::xlcfg::parse;

    const PYGRUB: &str = include_str!("../tests/data/web1-pygrub.cfg");

    fn plan_of(text: &str, opts: &Options) -> Result<Plan, String> {
        plan(&parse(text).unwrap(), opts)
    }

    fn ok(text: &str) -> Plan {
        plan_of(text, &Options::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn config(p: &Plan) -> String {
        let bundle = matches!(p.boot, Boot::Direct { .. }).then_some(Path::new("/out/x.bundle"));
        xl_config(p, Path::new("/etc/xen/web1.cfg"), Path::new("/out/cocoon.bzImage"), bundle).unwrap()
    }

    #[test]
    fn pygrub_domain_boots_from_its_disk() {
        let p = ok(PYGRUB);
        assert_eq!(p.boot, Boot::Disk { entry: Some("1".into()), args: "root=/dev/xvda1 ro console=hvc0".into() });
        assert_eq!(p.cocoon_cmdline, "cocoon.boot=disk cocoon.boot_entry=1 -- root=/dev/xvda1 ro console=hvc0");
        let c = config(&p);
        crate::assert_has_all(
            &c,
            &[
                "name = \"web1\"\n",
                "uuid = \"3f2a9c1e-6b1d-4c8e-9f3a-2d5e7b9c0a11\"\n",
                "memory = 2048\n",
                "maxmem = 2048\n",
                "vcpus = 2\n",
                "maxvcpus = 4\n",
                "disk = [ \"phy:/dev/vg0/web1-root,xvda,w\", \"phy:/dev/vg0/web1-data,xvdb,w\" ]\n",
                "vif = [ \"mac=00:16:3e:4a:12:7f,bridge=xenbr0\" ]\n",
                "on_poweroff = \"destroy\"\non_reboot = \"restart\"\non_crash = \"restart\"\n",
                "type = \"hvm\"\n",
                "device_model_version = \"qemu-xen\"\n",
                "serial = \"pty\"\n",
                "vga = \"none\"\nvnc = 0\nsdl = 0\nxen_platform_pci = 1\n",
                "kernel = \"/out/cocoon.bzImage\"\n",
                "cmdline = \"cocoon.boot=disk cocoon.boot_entry=1 -- root=/dev/xvda1 ro console=hvc0\"\n",
            ],
        );
        assert!(!c.contains("ramdisk ="), "{c}");
        assert!(!c.contains("bootloader"), "{c}");
        // The result is a config xl reads.
        let back = parse(&c).unwrap();
        assert_eq!(back.get("memory").unwrap().number(), Some(2048));
        assert!(back.repeats.is_empty());
    }

    #[test]
    fn what_cannot_carry_over_is_named_once_each() {
        let p = ok(PYGRUB);
        assert_eq!(
            p.notes,
            [
                "type = \"pv\": replaced by what Cocoon needs (see the settings at the end)",
                "maxmem = 4096: set to memory (2048): more would make an HVM domain populate-on-demand, which \
                 Cocoon cannot serve (balloon up no further than memory)",
                "vfb = [ \"vnc=1,vnclisten=127.0.0.1\" ]: not carried: the domain has no display (vga=\"none\"): \
                 use the console (xl console) or the network",
                "e820_host = 1: not carried: PV only (the host's memory map); the HVM domain has its own",
            ]
        );
        let c = config(&p);
        assert!(c.contains("# What did not carry over as it was:\n#   type = \"pv\": replaced"), "{c}");
        assert!(c.contains("\n#   maxmem = 4096: set to memory (2048)"), "{c}");
        assert!(!c.contains("\ne820_host =") && !c.contains("\nvfb ="), "{c}");
    }

    #[test]
    fn host_kernel_goes_in_a_bundle_with_xl_command_line() {
        let p = ok("name='k'\nmemory=512\nkernel='/boot/vmlinuz'\nramdisk='/boot/initrd.img'\n\
                    root='/dev/xvda1 ro'\nextra='console=hvc0'\ndisk=['/dev/vg/k,raw,xvda1,w']\n");
        assert_eq!(
            p.boot,
            Boot::Direct {
                kernel: "/boot/vmlinuz".into(),
                initrd: Some("/boot/initrd.img".into()),
                cmdline: "root=/dev/xvda1 ro console=hvc0".into()
            }
        );
        assert_eq!(p.cocoon_cmdline, "");
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        let c = config(&p);
        assert!(c.contains("kernel = \"/out/cocoon.bzImage\"\nramdisk = \"/out/x.bundle\"\ncmdline = \"\"\n"), "{c}");
        // cmdline wins over root and extra, as in xl.
        let p = ok("name='k'\nmemory=512\nkernel='/k'\ncmdline='a b'\nroot='/dev/x'\n");
        assert_eq!(p.boot, Boot::Direct { kernel: "/k".into(), initrd: None, cmdline: "a b".into() });
        assert_eq!(p.notes, ["root, extra: ignored because cmdline is set (as xl does)"]);
    }

    #[test]
    fn partition_boot_disk_cannot_boot_from_disk() {
        let text = "name='p'\nmemory=512\nbootloader='pygrub'\ndisk=['phy:/dev/vg/p,xvda1,w']\nextra='console=hvc0'\n";
        let e = plan_of(text, &Options::default()).unwrap_err();
        assert!(e.starts_with("the boot disk `xvda1' is a partition: an HVM domain emulates only whole disks"), "{e}");
        assert!(e.ends_with("or give --kernel (and --initrd) to boot a kernel from the host instead"), "{e}");
        let opts = Options { kernel: Some(Path::new("/srv/vmlinuz")), ..Options::default() };
        let p = plan_of(text, &opts).unwrap();
        assert_eq!(
            p.boot,
            Boot::Direct { kernel: "/srv/vmlinuz".into(), initrd: None, cmdline: "console=hvc0".into() }
        );
        assert_eq!(p.notes, ["bootloader = \"pygrub\": replaced by --kernel (a host kernel)"]);
        for (disk, why) in [("xvde", "beyond the first four"), ("sda", "an sdX (SCSI) disk")] {
            let t = format!("name='p'\nmemory=512\nbootloader='pygrub'\ndisk=['/d,raw,{disk},w']\n");
            let e = plan_of(&t, &Options::default()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let t = "name='p'\nmemory=512\nbootloader='pygrub'\ndisk=['/d,raw,xvdb,w','/e,raw,xvda,w']\n";
        assert!(plan_of(t, &Options::default()).unwrap_err().starts_with("`xvda' comes before the boot disk `xvdb'"));
        let t = "name='p'\nmemory=512\nbootloader='pygrub'\n";
        assert!(plan_of(t, &Options::default()).unwrap_err().contains("has no disk="));
    }

    #[test]
    fn pvgrub_and_bootloader_args() {
        let p = ok("name='g'\nmemory=512\nkernel='/usr/lib/grub-xen/grub-x86_64-xen.bin'\n\
                    extra='(hd0,0)/boot/grub/menu.lst'\ndisk=['/d,raw,xvda,w']\n");
        assert_eq!(p.boot, Boot::Disk { entry: None, args: String::new() });
        assert_eq!(p.cocoon_cmdline, "cocoon.boot=disk");
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].starts_with("extra: pv-grub's own setting"), "{:?}", p.notes);
        let p = plan_of(
            "name='g'\nmemory=512\nbootloader='/usr/lib/xen/bin/pygrub'\nbootloader_args=['--entry=Debian GNU/Linux', \
             '--args=quiet', '-i']\ndisk=['/d,raw,hda,w']\nextra='ignored since --args wins'\n",
            &Options { cocoon_options: "cocoon.log=debug", ..Options::default() },
        )
        .unwrap();
        assert_eq!(p.cocoon_cmdline, "cocoon.boot=disk cocoon.log=debug -- quiet");
        assert_eq!(
            p.notes,
            [
                "bootloader_args -i: a pygrub option Cocoon has no counterpart for; not carried",
                "bootloader_args --entry=\"Debian GNU/Linux\": has spaces, which Cocoon's command line cannot \
                 carry; the default entry boots (give its number instead)",
            ]
        );
        let p = ok("name='g'\nmemory=512\nbootloader='pygrub'\nbootloader_args='-e 2'\ndisk=['/d,raw,xvda,w']\n");
        assert_eq!(p.cocoon_cmdline, "cocoon.boot=disk cocoon.boot_entry=2");
    }

    #[test]
    fn unknown_hvm_only_and_renamed() {
        let p = plan_of(
            "name='u'\nuuid='1-2'\nmemory=512\nkernel='/k'\nfrobnicate=1\nviridian=1\nvnc=1\n",
            &Options { name: Some("u2"), ..Options::default() },
        )
        .unwrap();
        assert_eq!(p.name, "u2");
        assert_eq!(
            p.notes,
            [
                "uuid = \"1-2\": not carried, since --name gives a new domain (xl makes a new uuid)",
                "frobnicate = 1: not known to cocoon-image: carried as written (check it means the same for HVM)",
                "viridian = 1: ignored by xl for a PV domain, takes effect in the HVM one (carried)",
                "vnc = 1: replaced by what Cocoon needs (see the settings at the end)",
            ]
        );
        assert_eq!(p.get("frobnicate"), Some(&Value::Num("1".into())));
        assert_eq!(p.get("uuid"), None);
        assert_eq!(p.get("vnc"), None);
    }

    #[test]
    fn refusals() {
        let e = |t: &str| plan_of(t, &Options::default()).unwrap_err();
        assert_eq!(e("name='a'\nmemory=512\ntype='hvm'\n"), "this is already an HVM domain's config");
        assert!(e("name='a'\nmemory=512\ntype='pvh'\nkernel='/k'\n").starts_with("this is a PVH"));
        assert!(e("name='a'\nkernel='/k'\n").starts_with("the config has no memory="));
        assert!(e("name='a'\nmemory=32\nkernel='/k'\n").starts_with("memory = 32: too little"));
        assert_eq!(e("memory=512\nkernel='/k'\n"), "the config has no name= (or give --name)");
        assert!(e("name='a b'\nmemory=512\nkernel='/k'\n").contains("not a usable domain name"));
        assert_eq!(e("name='a'\nmemory=512\n"), "the config has neither kernel= nor bootloader=: nothing to boot");
        assert!(e("name='a'\nmemory=512\nkernel='/k'\ndisk=['/x,xvda,w']\n").contains("unknown value for format"));
        assert_eq!(e("name='a'\nmemory='lots'\nkernel='/k'\n"), "`memory' = \"lots\" is not a number");
    }
}
