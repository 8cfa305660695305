//! `cocoon-image convert` end to end: the files it writes, its notes, its
//! refusals, and its libvirt XML checked by libvirt's own schema
//! (`virt-xml-validate`, from libvirt-clients and libxml2-utils, which
//! ci/setup.sh installs; a missing validator fails the test).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("convert-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `convert CONFIG -o DIR --firmware FW ARGS...`: success, stdout, stderr.
fn convert(config: &Path, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon-image"))
        .arg("convert")
        .arg(config)
        .arg("-o")
        .arg(dir)
        .arg("--firmware")
        .arg(common::firmware())
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn validate(xml: &Path) {
    let out =
        Command::new("virt-xml-validate").arg(xml).arg("domain").output().unwrap_or_else(|e| {
            panic!("virt-xml-validate: {e} (install libvirt-clients and libxml2-utils: ci/setup.sh)")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} does not validate:\n{text}\n{}",
        xml.display(),
        std::fs::read_to_string(xml).unwrap()
    );
    assert!(text.contains("validates"), "{text}");
}

#[test]
fn pygrub_domain_with_libvirt_xml() {
    let dir = scratch("pygrub");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/web1-pygrub.cfg");
    let (ok, out, err) = convert(&cfg, &dir, &["--libvirt"]);
    assert!(ok, "{err}");
    assert!(out.contains("cocoon.bzImage: Linux boot protocol 2."), "{out}");
    assert!(out.contains("web1.cfg: xl config (boots entry 1 of the bootloader config on its first disk)"), "{out}");
    assert!(!dir.join("web1.bundle").exists());
    let notes: Vec<&str> = err.lines().collect();
    assert_eq!(notes.len(), 4, "{err}");
    assert!(notes.iter().all(|l| l.starts_with("cocoon-image: note: ")), "{err}");
    assert!(notes[1].starts_with("cocoon-image: note: maxmem = 4096: set to memory (2048)"), "{err}");
    let xl = std::fs::read_to_string(dir.join("web1.cfg")).unwrap();
    let bz = std::path::absolute(dir.join("cocoon.bzImage")).unwrap();
    assert!(xl.contains(&format!("kernel = \"{}\"\n", bz.display())), "{xl}");
    assert!(xl.contains("cmdline = \"cocoon.boot=disk cocoon.boot_entry=1 -- root=/dev/xvda1 ro console=hvc0\"\n"));
    // The result reads back as a config.
    assert_eq!(cocoon_image::xlcfg::parse(&xl).unwrap().get("vcpus").unwrap().number(), Some(2));
    validate(&dir.join("web1.xml"));
}

#[test]
fn host_kernel_domain_gets_a_bundle() {
    let dir = scratch("kernel");
    let cfg = dir.join("k.cfg");
    let kernel = common::kernel("bookworm");
    std::fs::write(
        &cfg,
        format!(
            "name = 'k1'\nmemory = 512\nvcpus = 2\nkernel = '{}'\nroot = '/dev/xvda1 ro'\nextra = 'console=hvc0'\n\
             disk = [ 'file:/srv/k1.img,xvda1,w', 'format=qcow2,vdev=xvdb,target=/srv/k1-data.qcow2' ]\n\
             vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0,model=e1000' ]\non_crash = 'coredump-restart'\n",
            kernel.display()
        ),
    )
    .unwrap();
    let (ok, out, err) = convert(&cfg, &dir, &["--libvirt", "--cocoon-options", "cocoon.log=debug"]);
    assert!(ok, "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("k1.bundle: "), "{out}");
    assert!(dir.join("k1.bundle").exists());
    let xl = std::fs::read_to_string(dir.join("k1.cfg")).unwrap();
    assert!(xl.contains("ramdisk = \""), "{xl}");
    assert!(xl.contains("cmdline = \"cocoon.log=debug\"\n"), "{xl}");
    let bundle = std::fs::read(dir.join("k1.bundle")).unwrap();
    assert!(bundle.windows(31).any(|w| w == b"root=/dev/xvda1 ro console=hvc0"));
    validate(&dir.join("k1.xml"));
}

#[test]
fn refusals_are_one_line_and_fail() {
    let dir = scratch("refusals");
    for (text, want) in [
        ("name = 'x'\nmemory = 512\ndisk = [ 'a',\n", "bad.cfg:3:8: unterminated list (no closing ])"),
        ("name = \"x\nmemory = 512\n", "bad.cfg:1:8: unterminated string (no closing \")"),
        (
            "name='p'\nmemory=512\nbootloader='pygrub'\ndisk=['phy:/dev/vg/p,xvda1,w']\n",
            "bad.cfg: the boot disk `xvda1' is a partition",
        ),
    ] {
        let cfg = dir.join("bad.cfg");
        std::fs::write(&cfg, text).unwrap();
        let (ok, _, err) = convert(&cfg, &dir, &[]);
        assert!(!ok, "{text}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("cocoon-image: error: ") && err.contains(want), "{err}");
    }
}
