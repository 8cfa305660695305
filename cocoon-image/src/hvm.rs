//! `cocoon-image hvm`: everything an operator needs to run a PV kernel in
//! Cocoon as an HVM domain: Cocoon as a bzImage (started by the device
//! model's direct kernel boot), one boot module with the PV kernel, initrd
//! and command line, and an xl config that ties them together.

use std::path::{Path, PathBuf};

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

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, data: &[u8]) -> Result<(), String> {
    std::fs::write(p, data).map_err(|e| format!("{}: {e}", p.display()))
}

/// An xl config string value: refuse what xl's parser cannot take.
fn quoted(what: &str, s: &str) -> Result<String, String> {
    if s.contains('"') || s.contains('\n') || s.contains('\\') {
        return Err(format!("the {what} may not contain quotes, backslashes or newlines: {s:?}"));
    }
    Ok(format!("\"{s}\""))
}

/// How the domain finds Cocoon: direct kernel boot, or a disk through its BIOS.
pub enum Boot<'a> {
    Direct { bzimage: &'a Path, bundle: &'a Path },
    Disk { image: &'a Path },
}

pub fn xl_config(r: &HvmRequest, boot: Boot) -> Result<String, String> {
    if r.name.is_empty() || !r.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!("'{}' is not a usable domain name", r.name));
    }
    let abs_plain = |p: &Path| -> Result<String, String> {
        let a = std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let s = a.to_string_lossy().into_owned();
        quoted("path", &s)?;
        if s.contains(',') {
            return Err(format!("xl's disk syntax cannot take a path with a comma: {s}"));
        }
        Ok(s)
    };
    let abs = |p: &Path| abs_plain(p).map(|s| format!("\"{s}\""));
    let boot = match boot {
        Boot::Direct { bzimage, bundle } => format!(
            "kernel = {}\nramdisk = {}\ncmdline = {}\n",
            abs(bzimage)?,
            abs(bundle)?,
            quoted("Cocoon options", r.cocoon_options)?
        ),
        Boot::Disk { image } => {
            format!("disk = [ \"format=raw,vdev=hda,access=rw,target={}\" ]\nboot = \"c\"\n", abs_plain(image)?)
        }
    };
    Ok(format!(
        "# Cocoon (PV-in-HVM shim) running {kernel} as an HVM domain.\n\
         # Made by cocoon-image hvm; `xl create` this file, `xl console -t serial {name}` to watch.\n\
         name = {q_name}\n\
         type = \"hvm\"\n\
         memory = {mem}\n\
         vcpus = 1\n\
         {boot}\
         device_model_version = \"qemu-xen\"\n\
         serial = \"pty\"\n\
         vga = \"none\"\n\
         vnc = 0\n\
         sdl = 0\n\
         on_crash = \"destroy\"\n\
         # Under nested virtualisation without hardware support (QEMU TCG), also:\n\
         # tsc_mode = \"native\"\n",
        kernel = r.kernel.display(),
        name = r.name,
        q_name = quoted("name", r.name)?,
        mem = r.memory_mib,
    ))
}

pub fn run(r: &HvmRequest) -> Result<String, String> {
    if r.memory_mib < 64 {
        return Err(format!("{} MiB is too little memory for Cocoon and a guest", r.memory_mib));
    }
    let fw = read(r.firmware)?;
    let bz = cocoon_image::bzimage::build(&fw).map_err(|e| format!("{}: {e}", r.firmware.display()))?;
    std::fs::create_dir_all(r.out_dir).map_err(|e| format!("{}: {e}", r.out_dir.display()))?;
    let bz_path: PathBuf = r.out_dir.join("cocoon.bzImage");
    let bundle_path: PathBuf = r.out_dir.join(format!("{}.bundle", r.name));
    let cfg_path: PathBuf = r.out_dir.join(format!("{}.cfg", r.name));
    let cfg = xl_config(r, Boot::Direct { bzimage: &bz_path, bundle: &bundle_path })?;
    let mut report = crate::bundle(r.kernel, r.initrd, r.cmdline, &bundle_path)?;
    write(&bz_path, &bz)?;
    write(&cfg_path, cfg.as_bytes())?;
    report += &format!("{}: {}\n", bz_path.display(), cocoon_image::bzimage::describe(&bz));
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
    fn config_refuses_what_xl_cannot_parse() {
        let p = Path::new("/x");
        let b = || Boot::Direct { bzimage: p, bundle: p };
        assert!(xl_config(&req("a b", ""), b()).is_err());
        assert!(xl_config(&req("", ""), b()).is_err());
        assert!(xl_config(&req("ok", "say \"hi\""), b()).is_err());
    }

    #[test]
    fn disk_config_boots_from_the_image() {
        let c = xl_config(&req("d", ""), Boot::Disk { image: Path::new("/out/d.img") }).unwrap();
        assert!(c.contains("disk = [ \"format=raw,vdev=hda,access=rw,target=/out/d.img\" ]\n"));
        assert!(c.contains("boot = \"c\"\n"));
        assert!(!c.contains("kernel ="));
    }
}
