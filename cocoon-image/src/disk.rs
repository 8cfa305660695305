//! A bootable disk image for an HVM domain booting through its BIOS
//! (hvmloader + SeaBIOS, or any PC BIOS): a FAT filesystem over the whole disk
//! with syslinux in its boot sector, starting Cocoon's bzImage with the bundle
//! as its initrd. Built with the standard tools (`mkfs.fat`, `mcopy` from
//! mtools, `syslinux`); a missing one is named in the error.

use std::path::Path;
use std::process::Command;

fn tool(cmd: &mut Command, what: &str, package: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e} (install the {package} package)"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// syslinux.cfg for the image: no prompt, one entry.
pub fn syslinux_cfg(cocoon_options: &str) -> String {
    format!("DEFAULT cocoon\nPROMPT 0\nTIMEOUT 0\nLABEL cocoon\n  LINUX /cocoon.bz\n  INITRD /bundle.bin\n  APPEND {cocoon_options}\n")
}

/// Write `out`: a FAT disk image holding `bzimage` and `bundle`, booting them with syslinux.
pub fn build(out: &Path, bzimage: &Path, bundle: &Path, cocoon_options: &str) -> Result<u64, String> {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()));
    // Room for both files, the FAT and syslinux, rounded up to a MiB.
    let need = size(bzimage)? + size(bundle)? + (4 << 20);
    let kib = need.div_ceil(1 << 20) * 1024;
    let _ = std::fs::remove_file(out);
    let cfg = out.with_extension("syslinux.cfg");
    std::fs::write(&cfg, syslinux_cfg(cocoon_options)).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let result = (|| {
        tool(Command::new("mkfs.fat").arg("-C").arg(out).arg(kib.to_string()), "mkfs.fat", "dosfstools")?;
        for (src, name) in [(bzimage, "::cocoon.bz"), (bundle, "::bundle.bin"), (cfg.as_path(), "::syslinux.cfg")] {
            tool(Command::new("mcopy").arg("-i").arg(out).arg(src).arg(name), "mcopy", "mtools")?;
        }
        tool(Command::new("syslinux").arg("--install").arg(out), "syslinux", "syslinux")
    })();
    let _ = std::fs::remove_file(&cfg);
    result.map(|()| kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_boots_cocoon_with_its_options() {
        let c = super::syslinux_cfg("cocoon.log=debug");
        assert!(c.contains("LINUX /cocoon.bz\n"));
        assert!(c.contains("INITRD /bundle.bin\n"));
        assert!(c.contains("APPEND cocoon.log=debug\n"));
    }
}
