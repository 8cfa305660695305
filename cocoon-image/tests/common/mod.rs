//! What the CLI tests share: the Debian test kernels and the firmware.

use std::path::PathBuf;

fn kernels_dir() -> PathBuf {
    match std::env::var_os("COCOON_KERNELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cocoon/kernels"),
    }
}

/// A kernel fetched by `ci/fetch-kernels.sh` (a missing one fails the test).
pub fn kernel(suite: &str) -> PathBuf {
    let p = kernels_dir().join(suite).join("vmlinuz");
    assert!(p.exists(), "{} missing: run ci/fetch-kernels.sh", p.display());
    p
}

/// The firmware ELF: `$COCOON_FIRMWARE` (set by ci/test.sh), else the one
/// `ci/build-firmware.sh` builds (a missing one fails the test).
#[allow(dead_code)]
pub fn firmware() -> PathBuf {
    let p = match std::env::var_os("COCOON_FIRMWARE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/x86_64-unknown-none/release/cocoon"),
    };
    assert!(p.exists(), "{} missing: run ci/build-firmware.sh", p.display());
    p
}
