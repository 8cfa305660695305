//! `cocoon-image hvm`: everything an operator needs to run a PV kernel in
//! Cocoon as an HVM domain: Cocoon as a bzImage (started by the device
//! model's direct kernel boot), one boot module with the PV kernel, initrd
//! and command line, and an xl config that ties them together.

use std::path::{Path, PathBuf};

use cocoon_image::xlcfg::string_literal;

pub struct HvmRequest<'a> {
    pub firmware: &'a Path,
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: Option<&'a str>,
    pub cocoon_options: &'a str,
    pub name: &'a str,
    pub memory_mib: u64,
    pub out_dir: &'a Path,
    /// Also write a bootable disk image and a config that boots it.
    pub disk: bool,
}

pub fn write(p: &Path, data: &[u8]) -> Result<(), String> {
    std::fs::write(p, data).map_err(|e| format!("{}: {e}", p.display()))
}

/// What every domain running Cocoon as HVM needs besides its boot: the
/// device model that does direct kernel boot, Cocoon's log and the guest's
/// fallback console on the serial port, no display, and the Xen platform
/// device (event delivery, unplugging the emulated disks and NICs).
pub const COCOON_HVM_SETTINGS: &str = "type = \"hvm\"\n\
    device_model_version = \"qemu-xen\"\n\
    serial = \"pty\"\n\
    vga = \"none\"\n\
    vnc = 0\n\
    sdl = 0\n\
    xen_platform_pci = 1\n";

/// A domain name that xl takes and that can name files.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || name.starts_with('.')
    {
        return Err(format!("'{name}' is not a usable domain name (letters, digits, '-', '_', '.')"));
    }
    Ok(())
}

/// `p` made absolute, for a config that may be used from anywhere; refused
/// if xl's disk syntax could not carry it.
pub fn abs_path(p: &Path) -> Result<String, String> {
    let a = std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let s = a.to_string_lossy().into_owned();
    if s.contains(',') || s.contains('"') || s.contains('\n') {
        return Err(format!("xl's syntax cannot take a path with a comma, quote or newline: {s:?}"));
    }
    Ok(s)
}

/// Write Cocoon's bzImage for `firmware` into `dir`: its path and a line on it.
pub fn write_bzimage(firmware: &Path, dir: &Path) -> Result<(PathBuf, String), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("cocoon.bzImage");
    let line = crate::bzimage(firmware, &path)?;
    Ok((path, line))
}

/// How the domain finds Cocoon: direct kernel boot, or a disk through its BIOS.
pub enum Boot<'a> {
    Direct { bzimage: &'a Path, bundle: &'a Path },
    Disk { image: &'a Path },
}

pub fn xl_config(r: &HvmRequest, boot: Boot) -> Result<String, String> {
    check_name(r.name)?;
    let q = |p: &Path| abs_path(p).map(|s| string_literal(&s));
    let boot = match boot {
        Boot::Direct { bzimage, bundle } => format!(
            "kernel = {}\nramdisk = {}\ncmdline = {}\n",
            q(bzimage)?,
            q(bundle)?,
            string_literal(r.cocoon_options)
        ),
        Boot::Disk { image } => {
            format!("disk = [ \"format=raw,vdev=hda,access=rw,target={}\" ]\nboot = \"c\"\n", abs_path(image)?)
        }
    };
    Ok(format!(
        "# Cocoon (PV-in-HVM shim) running {kernel} as an HVM domain.\n\
         # Made by cocoon-image hvm; `xl create` this file, `xl console -t serial {name}` to watch.\n\
         name = {q_name}\n\
         memory = {mem}\n\
         vcpus = 1\n\
         {boot}\
         {COCOON_HVM_SETTINGS}\
         on_crash = \"destroy\"\n\
         # Under nested virtualisation without hardware support (QEMU TCG), also:\n\
         # tsc_mode = \"native\"\n",
        kernel = r.kernel.display(),
        name = r.name,
        q_name = string_literal(r.name),
        mem = r.memory_mib,
    ))
}

pub fn run(r: &HvmRequest) -> Result<String, String> {
    if r.memory_mib < 64 {
        return Err(format!("{} MiB is too little memory for Cocoon and a guest", r.memory_mib));
    }
    let bz_path: PathBuf = r.out_dir.join("cocoon.bzImage");
    let bundle_path: PathBuf = r.out_dir.join(format!("{}.bundle", r.name));
    let cfg_path: PathBuf = r.out_dir.join(format!("{}.cfg", r.name));
    let cfg = xl_config(r, Boot::Direct { bzimage: &bz_path, bundle: &bundle_path })?;
    let (_, bz_line) = write_bzimage(r.firmware, r.out_dir)?;
    let mut report = crate::bundle(r.kernel, r.initrd, r.cmdline, &bundle_path)?;
    write(&cfg_path, cfg.as_bytes())?;
    report += &bz_line;
    report += &format!("{}: xl config, direct kernel boot (xl create {})\n", cfg_path.display(), cfg_path.display());
    if r.disk {
        let img = r.out_dir.join(format!("{}.img", r.name));
        let disk_cfg_path = r.out_dir.join(format!("{}-disk.cfg", r.name));
        let bytes = cocoon_image::disk::build(&img, &bz_path, &bundle_path, r.cocoon_options)?;
        write(&disk_cfg_path, xl_config(r, Boot::Disk { image: &img })?.as_bytes())?;
        report += &format!("{}: {bytes}-byte disk image (FAT, syslinux)\n", img.display());
        report += &format!("{}: xl config, boot from the disk image\n", disk_cfg_path.display());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(name: &'a str, opts: &'a str) -> HvmRequest<'a> {
        HvmRequest {
            firmware: Path::new("fw"),
            kernel: Path::new("/k/vmlinuz"),
            initrd: None,
            cmdline: None,
            cocoon_options: opts,
            name,
            memory_mib: 512,
            out_dir: Path::new("/out"),
            disk: false,
        }
    }

    #[test]
    fn config_names_the_files_and_options() {
        let boot = Boot::Direct { bzimage: Path::new("/out/cocoon.bzImage"), bundle: Path::new("/out/b") };
        let c = xl_config(&req("web1", "cocoon.log=debug"), boot).unwrap();
        assert!(c.contains("name = \"web1\"\n"));
        assert!(c.contains("type = \"hvm\"\n"));
        assert!(c.contains("kernel = \"/out/cocoon.bzImage\"\n"));
        assert!(c.contains("ramdisk = \"/out/b\"\n"));
        assert!(c.contains("cmdline = \"cocoon.log=debug\"\n"));
        assert!(c.contains("memory = 512\n"));
    }

    #[test]
    fn config_refuses_bad_names_and_escapes_quotes() {
        let p = Path::new("/x");
        let b = || Boot::Direct { bzimage: p, bundle: p };
        assert!(xl_config(&req("a b", ""), b()).is_err());
        assert!(xl_config(&req("", ""), b()).is_err());
        let quoted = xl_config(&req("ok", "say \"hi\""), b()).unwrap();
        assert!(quoted.contains("cmdline = \"say \\\"hi\\\"\"\n"), "{quoted}");
    }

    #[test]
    fn disk_config_boots_from_the_image() {
        let c = xl_config(&req("d", ""), Boot::Disk { image: Path::new("/out/d.img") }).unwrap();
        assert!(c.contains("disk = [ \"format=raw,vdev=hda,access=rw,target=/out/d.img\" ]\n"));
        assert!(c.contains("boot = \"c\"\n"));
        assert!(!c.contains("kernel ="));
    }
}
