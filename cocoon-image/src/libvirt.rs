//! The converted domain as libvirt domain XML for libvirt's libxl driver
//! (`virsh -c xen:/// define NAME.xml`): an HVM (`xenfv`) domain that
//! direct-boots Cocoon, with the xl config's disks on the Xen bus, its
//! interfaces, memory, vCPUs, lifecycle actions and a pty serial console.
//! A setting of the xl config that this XML does not express is named in a
//! note; the xl config stays the complete one.

use std::path::Path;

use cocoon_image::diskspec::{Disk, Format};
use cocoon_image::xlcfg::Value;

use crate::convert::Plan;
use crate::hvm;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && (s.len() == 32 || s.len() == 36)
}

/// xl's lifecycle action as libvirt names it for `element` (None: no such action there).
fn action(element: &str, xl: &str) -> Option<&'static str> {
    let a = match xl {
        "destroy" => "destroy",
        "restart" => "restart",
        "rename-restart" => "rename-restart",
        "preserve" => "preserve",
        "coredump-destroy" => "coredump-destroy",
        "coredump-restart" => "coredump-restart",
        _ => return None,
    };
    (element == "on_crash" || !a.starts_with("coredump")).then_some(a)
}

/// xl's tsc_mode (name or number) as libvirt's tsc timer mode.
fn tsc_mode(v: &Value) -> Option<&'static str> {
    Some(match v.atom()? {
        "default" | "0" => "auto",
        "always_emulate" | "1" => "emulate",
        "native" | "2" => "native",
        "native_paravirt" | "3" => "paravirt",
        _ => return None,
    })
}

fn disk_xml(d: &Disk, notes: &mut Vec<String>) -> String {
    let device = if d.cdrom { "cdrom" } else { "disk" };
    let block = d.is_block();
    let kind = if block { "block" } else { "file" };
    let mut x = format!("    <disk type='{kind}' device='{device}'>\n");
    let driver = match d.backendtype.as_deref() {
        Some("phy") => "phy",
        Some("tap") => "tap",
        Some(_) => "qemu",
        None if block => "phy",
        None => "qemu",
    };
    let mut attrs = format!("name='{driver}'");
    if let Some(f) = d.format.filter(|&f| f != Format::Empty) {
        attrs += &format!(" type='{}'", f.name());
    }
    if let Some(disc) = d.discard {
        attrs += if disc { " discard='unmap'" } else { " discard='ignore'" };
    }
    x += &format!("      <driver {attrs}/>\n");
    if let Some(t) = d.target.as_deref().filter(|t| !t.is_empty()) {
        let attr = if block { "dev" } else { "file" };
        x += &format!("      <source {attr}='{}'/>\n", esc(t));
    }
    x += &format!("      <target dev='{}' bus='xen'/>\n", esc(d.vdev()));
    if !d.readwrite {
        x += "      <readonly/>\n";
    }
    if let Some(b) = &d.backend {
        x += &format!("      <backenddomain name='{}'/>\n", esc(b));
    }
    x += "    </disk>\n";
    let mut lost = Vec::new();
    if let Some(s) = &d.script {
        lost.push(format!("script={s}"));
    }
    if d.direct_io_safe {
        lost.push("direct-io-safe".into());
    }
    if let Some(t) = d.trusted {
        lost.push(if t { "trusted" } else { "untrusted" }.into());
    }
    if let Some(s) = &d.specification {
        lost.push(format!("specification={s}"));
    }
    if let Some(g) = d.grant_usage {
        lost.push(format!("grant_usage={}", u8::from(g)));
    }
    lost.extend(d.colo.iter().cloned());
    if !lost.is_empty() {
        notes.push(format!("disk {}: {} not expressed (in the xl config only)", d.vdev(), lost.join(", ")));
    }
    x
}

fn interface_xml(spec: &str, notes: &mut Vec<String>) -> String {
    let mut kv = Vec::new();
    for part in spec.split(',').map(str::trim_start).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        kv.push((k, v));
    }
    let get = |key: &str| kv.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut x = match get("bridge") {
        Some(b) => format!("    <interface type='bridge'>\n      <source bridge='{}'/>\n", esc(b)),
        None => "    <interface type='ethernet'>\n".to_string(),
    };
    if let Some(m) = get("mac") {
        x += &format!("      <mac address='{}'/>\n", esc(m));
    }
    if let Some(ip) = get("ip") {
        for a in ip.split_whitespace() {
            x += &format!("      <ip address='{}'/>\n", esc(a));
        }
    }
    if let Some(s) = get("script") {
        x += &format!("      <script path='{}'/>\n", esc(s));
    }
    if let Some(n) = get("vifname") {
        x += &format!("      <target dev='{}'/>\n", esc(n));
    }
    match (get("type"), get("model")) {
        (Some("vif"), _) => x += "      <model type='netfront'/>\n",
        (_, Some(m)) => x += &format!("      <model type='{}'/>\n", esc(m)),
        _ => {}
    }
    if let Some(b) = get("backend") {
        x += &format!("      <backenddomain name='{}'/>\n", esc(b));
    }
    if let Some(m) = get("mtu") {
        x += &format!("      <mtu size='{}'/>\n", esc(m));
    }
    x += "    </interface>\n";
    let known = ["bridge", "mac", "ip", "script", "vifname", "type", "model", "backend", "mtu"];
    let lost: Vec<String> = kv.iter().filter(|(k, _)| !known.contains(k)).map(|(k, v)| format!("{k}={v}")).collect();
    if !lost.is_empty() {
        notes.push(format!("vif `{spec}': {} not expressed (in the xl config only)", lost.join(", ")));
    }
    x
}

/// The domain XML and a note for each setting it leaves out.
pub fn domain_xml(p: &Plan, bzimage: &Path, bundle: Option<&Path>) -> Result<(String, Vec<String>), String> {
    let mut notes = Vec::new();
    let num = |k: &str| p.get(k).and_then(Value::number);
    let mut x = format!("<domain type='xen'>\n  <name>{}</name>\n", esc(&p.name));
    if let Some(u) = p.get("uuid").and_then(Value::atom) {
        if is_uuid(u) {
            x += &format!("  <uuid>{u}</uuid>\n");
        } else {
            notes.push(format!("uuid {u:?} is not in libvirt's form: left out (libvirt makes one)"));
        }
    }
    x += &format!(
        "  <memory unit='MiB'>{m}</memory>\n  <currentMemory unit='MiB'>{m}</currentMemory>\n",
        m = p.memory_mib
    );
    let vcpus = num("vcpus").unwrap_or(1);
    let max = num("maxvcpus").unwrap_or(vcpus).max(vcpus);
    let mut vattrs = String::from(" placement='static'");
    if let Some(c) = p.get("cpus").and_then(Value::atom) {
        if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit() || ",-^".contains(ch)) {
            vattrs += &format!(" cpuset='{c}'");
        } else {
            notes.push(format!("cpus {c:?}: not a plain CPU list, left out"));
        }
    }
    if max > vcpus {
        vattrs += &format!(" current='{vcpus}'");
    }
    x += &format!("  <vcpu{vattrs}>{max}</vcpu>\n");
    x += "  <os>\n    <type arch='x86_64' machine='xenfv'>hvm</type>\n";
    x += &format!("    <kernel>{}</kernel>\n", esc(&hvm::abs_path(bzimage)?));
    if let Some(b) = bundle {
        x += &format!("    <initrd>{}</initrd>\n", esc(&hvm::abs_path(b)?));
    }
    x += &format!("    <cmdline>{}</cmdline>\n  </os>\n", esc(&p.cocoon_cmdline));
    x += "  <features>\n";
    for f in ["acpi", "apic", "pae"] {
        if num(f) != Some(0) {
            x += &format!("    <{f}/>\n");
        }
    }
    x += "  </features>\n";
    let offset = if num("localtime") == Some(1) { "localtime" } else { "utc" };
    match p.get("tsc_mode").map(|v| (v, tsc_mode(v))) {
        Some((_, Some(mode))) => {
            x += &format!("  <clock offset='{offset}'>\n    <timer name='tsc' mode='{mode}'/>\n  </clock>\n")
        }
        Some((v, None)) => {
            notes.push(format!("tsc_mode {}: not a mode libvirt knows, left out", v.to_xl()));
            x += &format!("  <clock offset='{offset}'/>\n");
        }
        None => x += &format!("  <clock offset='{offset}'/>\n"),
    }
    for element in ["on_poweroff", "on_reboot", "on_crash"] {
        let Some(v) = p.get(element).and_then(Value::atom) else { continue };
        match action(element, v) {
            Some(a) => x += &format!("  <{element}>{a}</{element}>\n"),
            None => notes.push(format!("{element} {v:?}: libvirt has no such action there, left out")),
        }
    }
    x += "  <devices>\n";
    for d in &p.disks {
        x += &disk_xml(d, &mut notes);
    }
    if let Some(Value::List(vifs)) = p.get("vif") {
        for v in vifs.iter().filter_map(Value::atom) {
            x += &interface_xml(v, &mut notes);
        }
    }
    x += "    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n\
          \x20   <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n\
          \x20   <video>\n      <model type='none'/>\n    </video>\n  </devices>\n</domain>\n";
    let expressed = [
        "uuid",
        "memory",
        "maxmem",
        "vcpus",
        "maxvcpus",
        "cpus",
        "localtime",
        "tsc_mode",
        "on_poweroff",
        "on_reboot",
        "on_crash",
        "disk",
        "vif",
        "acpi",
        "apic",
        "pae",
    ];
    for (k, _) in p.settings.iter().filter(|(k, _)| !expressed.contains(&k.as_str())) {
        notes.push(format!("{k}: not expressed (in the xl config only)"));
    }
    Ok((x, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{plan, Options};

    fn xml(text: &str) -> (String, Vec<String>) {
        let p = plan(&cocoon_image::xlcfg::parse(text).unwrap(), &Options::default()).unwrap();
        let bundle = matches!(p.boot, crate::convert::Boot::Direct { .. }).then_some(Path::new("/o/b"));
        domain_xml(&p, Path::new("/o/cocoon.bzImage"), bundle).unwrap()
    }

    #[test]
    fn pygrub_domain() {
        let (x, notes) = xml(include_str!("../tests/data/web1-pygrub.cfg"));
        crate::assert_has_all(
&x,
        &[
            "<domain type='xen'>\n  <name>web1</name>\n  <uuid>3f2a9c1e-6b1d-4c8e-9f3a-2d5e7b9c0a11</uuid>\n",
            "<memory unit='MiB'>2048</memory>\n  <currentMemory unit='MiB'>2048</currentMemory>\n",
            "<vcpu placement='static' current='2'>4</vcpu>\n",
            "<type arch='x86_64' machine='xenfv'>hvm</type>\n    <kernel>/o/cocoon.bzImage</kernel>\n    \
             <cmdline>cocoon.boot=disk cocoon.boot_entry=1 -- root=/dev/xvda1 ro console=hvc0</cmdline>\n",
            "<disk type='block' device='disk'>\n      <driver name='phy' type='raw'/>\n      \
             <source dev='/dev/vg0/web1-root'/>\n      <target dev='xvda' bus='xen'/>\n    </disk>\n",
            "<target dev='xvdb' bus='xen'/>",
            "<interface type='bridge'>\n      <source bridge='xenbr0'/>\n      <mac address='00:16:3e:4a:12:7f'/>\n",
            "<on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>restart</on_crash>\n",
            "<serial type='pty'>",
            "<console type='pty'>\n      <target type='serial' port='0'/>",
        ],
    );
        assert!(!x.contains("<initrd>"), "{x}");
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn direct_boot_files_cdrom_and_what_is_left_out() {
        let (x, notes) =
            xml("name='k'\nmemory=512\nkernel='/k'\ndisk=['tap:qcow2:/srv/k&1.qcow2,xvda,w', ',hdc:cdrom,r', \
             'vdev=xvdb,script=block-x,target=/srv/b']\nvif=['bridge=br0,rate=10Mb/s,type=vif,vifname=k0']\n\
             on_crash='coredump-restart'\non_reboot='soft-reset'\ntsc_mode='native'\nlocaltime=1\nnomigrate=1\n");
        crate::assert_has_all(
&x,
        &[
            "<initrd>/o/b</initrd>\n    <cmdline></cmdline>\n",
            "<disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      \
             <source file='/srv/k&amp;1.qcow2'/>\n",
            "<disk type='file' device='cdrom'>\n      <driver name='qemu'/>\n      <target dev='hdc' bus='xen'/>\n      \
             <readonly/>\n",
            "<model type='netfront'/>",
            "<target dev='k0'/>",
            "<on_crash>coredump-restart</on_crash>",
            "<clock offset='localtime'>\n    <timer name='tsc' mode='native'/>\n  </clock>\n",
        ],
    );
        assert!(!x.contains("on_reboot"), "{x}");
        assert_eq!(
            notes,
            [
                "on_reboot \"soft-reset\": libvirt has no such action there, left out",
                "disk xvdb: script=block-x not expressed (in the xl config only)",
                "vif `bridge=br0,rate=10Mb/s,type=vif,vifname=k0': rate=10Mb/s not expressed (in the xl config only)",
                "nomigrate: not expressed (in the xl config only)",
            ]
        );
    }
}
