//! `cocoon-image inspect` on real Debian kernels and on broken copies.

mod common;

use std::process::Command;

use common::kernel;

fn inspect(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon-image")).arg("inspect").args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn check_real(suite: &str) {
    let k = kernel(suite);
    let (ok, out, err) = inspect(&[k.to_str().unwrap(), "--mem", "512M"]);
    assert!(ok, "{err}");
    for want in [
        "container:    bzImage (boot protocol 2.",
        "compression:  lz4",
        "GUEST_OS             \"linux\"",
        "XEN_VERSION          \"xen-3.0\"",
        "VIRT_BASE            0xffffffff80000000",
        "INIT_P2M             0x8000000000",
        "FEATURES             \"!writable_page_tables|pae_pgdir_above_4gb\"",
        "required [writable_page_tables]",
        "layout for 512 MiB (131072 pages)",
        "kernel         pfn 0x001000-",
        "page tables",
        "nr_pt_frames",
        "boot stack",
        "INIT_P2M: 256 list + 3 table pages",
        "entry state:  rip 0xffffffff8",
    ] {
        assert!(out.contains(want), "{suite}: output lacks {want:?}:\n{out}");
    }
    // The ENTRY note and the entry state agree.
    let entry_note =
        out.lines().find(|l| l.contains(" ENTRY ")).unwrap().split_whitespace().last().unwrap().to_string();
    assert!(out.contains(&format!("entry state:  rip {entry_note} ")), "{out}");
}

#[test]
fn bookworm() {
    check_real("bookworm");
}

#[test]
fn bullseye() {
    check_real("bullseye");
}

#[test]
fn initrd_appears_in_layout() {
    let k = kernel("bookworm");
    let (ok, out, err) = inspect(&[k.to_str().unwrap(), "--initrd", k.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("initrd") && out.contains("by PFN (SIF_MOD_START_PFN)"), "{out}");
}

#[test]
fn truncated_and_corrupted_copies_fail_with_one_line() {
    let data = std::fs::read(kernel("bookworm")).unwrap();
    let dir = std::env::temp_dir().join(format!("cocoon-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truncated = dir.join("truncated");
    std::fs::write(&truncated, &data[..data.len() / 2]).unwrap();
    let mut bad = data.clone();
    bad[0x202] = b'X'; // bzImage magic gone
    let corrupt = dir.join("corrupt");
    std::fs::write(&corrupt, &bad).unwrap();
    let mut bad_payload = data.clone();
    let mid = bad_payload.len() / 3;
    bad_payload[mid..mid + 64].fill(0xff);
    let corrupt_payload = dir.join("corrupt-payload");
    std::fs::write(&corrupt_payload, &bad_payload).unwrap();
    for (f, want) in [(&truncated, "truncated"), (&corrupt, "unknown kernel format"), (&corrupt_payload, "")] {
        let (ok, out, err) = inspect(&[f.to_str().unwrap()]);
        assert!(!ok, "{} was accepted", f.display());
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "not one line: {err}");
        assert!(err.starts_with("cocoon-image: error: "), "{err}");
        assert!(err.contains(want), "{err}");
    }
    // Too little memory for the kernel is an error too.
    let (ok, _, err) = inspect(&[kernel("bookworm").to_str().unwrap(), "--mem", "32M"]);
    assert!(!ok && err.contains("cocoon-image: error:"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bundle_packs_and_refuses_bad_kernels() {
    let dir = std::env::temp_dir().join(format!("cocoon-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("b.bin");
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_cocoon-image")).args(args).output().unwrap();
    let k = kernel("bookworm");
    let r = run(&[
        "bundle",
        k.to_str().unwrap(),
        "--initrd",
        k.to_str().unwrap(),
        "--cmdline",
        "quiet",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let b = std::fs::read(&out).unwrap();
    assert!(b.starts_with(b"COCOONB1"));
    let bad = dir.join("bad");
    std::fs::write(&bad, b"not a kernel at all").unwrap();
    let r = run(&["bundle", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).starts_with("cocoon-image: error:"));
    std::fs::remove_dir_all(&dir).unwrap();
}
