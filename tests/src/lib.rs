//! Integration-test harness: find (or build) the firmware, boot it under
//! QEMU/TCG with a timeout, and hand back the exit status and serial log.
//! Every run's serial log is kept under `target/itest-logs/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use hvm_glue::debug_exit::qemu_exit_status;
pub use shim_core::platform::ExitReason;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Where every QEMU run keeps its serial log.
pub fn log_dir() -> PathBuf {
    let d = workspace_root().join("target/itest-logs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The firmware ELF: `$COCOON_FIRMWARE` when set (the test script builds it
/// first), else built here into a separate target directory (so that this
/// nested cargo does not wait on the outer one's lock).
pub fn firmware() -> &'static Path {
    static FW: OnceLock<PathBuf> = OnceLock::new();
    FW.get_or_init(|| {
        if let Some(p) = std::env::var_os("COCOON_FIRMWARE") {
            let p = PathBuf::from(p);
            assert!(p.exists(), "COCOON_FIRMWARE={} does not exist", p.display());
            return p;
        }
        let target_dir = workspace_root().join("target/itest-build");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace_root())
            .args(["build", "--release", "-p", "cocoon-firmware", "--target", "x86_64-unknown-none"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("run cargo to build the firmware");
        assert!(status.success(), "building the firmware failed");
        target_dir.join("x86_64-unknown-none/release/cocoon")
    })
}

/// The PV conformance kernel (tests/conformance): `$COCOON_CONFORMANCE`
/// when set (the test script builds it first), else built here as the
/// firmware is.
pub fn conformance_kernel() -> &'static Path {
    static K: OnceLock<PathBuf> = OnceLock::new();
    K.get_or_init(|| {
        if let Some(p) = std::env::var_os("COCOON_CONFORMANCE") {
            let p = PathBuf::from(p);
            assert!(p.exists(), "COCOON_CONFORMANCE={} does not exist", p.display());
            return p;
        }
        let target_dir = workspace_root().join("target/itest-build");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace_root())
            .args(["build", "--release", "-p", "cocoon-conformance", "--target", "x86_64-unknown-none"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("run cargo to build the conformance kernel");
        assert!(status.success(), "building the conformance kernel failed");
        target_dir.join("x86_64-unknown-none/release/pvtest")
    })
}

/// A Debian test kernel fetched by `ci/fetch-kernels.sh` (a missing one fails the test).
pub fn kernel(suite: &str) -> PathBuf {
    let dir = match std::env::var_os("COCOON_KERNELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cocoon/kernels"),
    };
    let p = dir.join(suite).join("vmlinuz");
    assert!(p.exists(), "{} missing: run ci/fetch-kernels.sh", p.display());
    p
}

/// A guest initramfs built by `ci/make-initramfs.sh KIND` (`test` or `shell`).
pub fn initramfs(kind: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, p)) = built.iter().find(|(k, _)| k == kind) {
        return p.clone();
    }
    let out = Command::new("bash")
        .arg(workspace_root().join("ci/make-initramfs.sh"))
        .arg(kind)
        .output()
        .expect("run ci/make-initramfs.sh");
    assert!(out.status.success(), "make-initramfs failed: {}", String::from_utf8_lossy(&out.stderr));
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    built.push((kind.to_string(), p.clone()));
    p
}

/// Lines of a guest console log that show the kernel went wrong.
pub fn kernel_trouble(serial: &str) -> Vec<&str> {
    serial
        .lines()
        .filter(|l| !l.starts_with("cocoon:"))
        .filter(|l| ["BUG", "WARNING", "Oops", "panic", "Call Trace"].iter().any(|w| l.contains(w)))
        .collect()
}

/// The kernel's whole report around the first trouble line (its RIP, stack
/// and the lines before it), for a failure message: CI shows only that.
pub fn trouble_report(serial: &str) -> String {
    let lines: Vec<&str> = serial.lines().collect();
    let Some(first) = lines.iter().position(|l| !kernel_trouble(l).is_empty()) else {
        return String::new();
    };
    lines[first.saturating_sub(10)..(first + 40).min(lines.len())].join("\n")
}

/// A copy of the firmware without its multiboot header, so QEMU's `-kernel`
/// takes the PVH entry (QEMU prefers multiboot when both are present; real
/// PVH loaders such as Xen's ignore the multiboot header).
pub fn firmware_pvh_only() -> &'static Path {
    static FW: OnceLock<PathBuf> = OnceLock::new();
    FW.get_or_init(|| {
        let mut data = std::fs::read(firmware()).unwrap();
        let off = find_multiboot_header(&data).expect("firmware has a multiboot header");
        data[off..off + 4].copy_from_slice(&[0; 4]);
        let out = log_dir().join("cocoon-pvh-only.elf");
        std::fs::write(&out, data).unwrap();
        out
    })
}

/// The firmware as a Linux boot protocol image (what `cocoon-image bzimage` writes).
pub fn firmware_bzimage() -> &'static Path {
    static FW: OnceLock<PathBuf> = OnceLock::new();
    FW.get_or_init(|| {
        let img = cocoon_image::bzimage::build(&std::fs::read(firmware()).unwrap()).expect("bzImage");
        let out = log_dir().join("cocoon.bzImage");
        std::fs::write(&out, img).unwrap();
        out
    })
}

/// Offset of a valid multiboot v1 header in the first 8 KiB, as loaders search for it.
pub fn find_multiboot_header(data: &[u8]) -> Option<usize> {
    let end = data.len().min(8192);
    (0..end.saturating_sub(12)).step_by(4).find(|&i| {
        let w = |k: usize| u32::from_le_bytes(data[i + 4 * k..i + 4 * k + 4].try_into().unwrap());
        w(0) == 0x1bad_b002 && w(0).wrapping_add(w(1)).wrapping_add(w(2)) == 0
    })
}

/// One QEMU run.
pub struct Qemu {
    name: String,
    args: Vec<String>,
    mem: String,
    timeout: Duration,
    /// Monitor commands to send, each once the serial log shows its line.
    monitor: Vec<(String, String)>,
}

/// What a run left behind.
#[derive(Debug)]
pub struct Outcome {
    /// QEMU's exit status; `None` when the run timed out and was killed.
    pub status: Option<i32>,
    pub serial: String,
    pub log_path: PathBuf,
    pub elapsed: Duration,
}

impl Outcome {
    /// Assert the run ended through the debug-exit device with `reason`.
    #[track_caller]
    pub fn assert_exit(&self, reason: ExitReason) {
        assert_eq!(
            self.status,
            Some(qemu_exit_status(reason)),
            "expected exit {:?} (status {}), got {:?}; serial log kept at {}:\n{}",
            reason,
            qemu_exit_status(reason),
            self.status,
            self.log_path.display(),
            self.tail()
        );
    }

    /// Assert the serial log contains `needle`.
    #[track_caller]
    pub fn assert_serial(&self, needle: &str) {
        assert!(
            self.serial.contains(needle),
            "serial log lacks {needle:?}; kept at {}:\n{}",
            self.log_path.display(),
            self.tail()
        );
    }

    fn tail(&self) -> String {
        let lines: Vec<&str> = self.serial.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Qemu {
    /// A machine booting `kernel` with `-kernel`, serial to a log file, the
    /// debug-exit device, no display, no reboot.
    pub fn new(name: &str, kernel: &Path) -> Self {
        Self::without_kernel(name).arg("-kernel").arg(&kernel.display().to_string())
    }

    /// The same machine booting from its BIOS (add a disk with `arg`).
    pub fn without_kernel(name: &str) -> Self {
        let args = [
            "-accel",
            "tcg",
            "-m",
            "512M",
            "-display",
            "none",
            "-no-reboot",
            "-monitor",
            "none",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Qemu { name: name.to_string(), args, mem: "512M".into(), timeout: Duration::from_secs(60), monitor: Vec::new() }
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn append(self, cmdline: &str) -> Self {
        self.arg("-append").arg(cmdline)
    }

    /// Multiboot modules (QEMU's `-initrd` list; each entry is "path args").
    pub fn modules(self, mods: &[String]) -> Self {
        let joined = mods.iter().map(|m| m.replace(',', ",,")).collect::<Vec<_>>().join(",");
        self.arg("-initrd").arg(&joined)
    }

    /// Guest RAM (`-m`), 512M unless set.
    pub fn mem(mut self, m: &str) -> Self {
        self.mem = m.to_string();
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Send `command` to QEMU's monitor once the serial log contains `line`
    /// (in the order given; e.g. `nmi`, as `xl trigger nmi` on a real Xen).
    pub fn monitor_when(mut self, line: &str, command: &str) -> Self {
        self.monitor.push((line.to_string(), command.to_string()));
        self
    }

    /// Boot and wait for QEMU to end (or kill it at the timeout).
    pub fn run(mut self) -> Outcome {
        let log_path = log_dir().join(format!("{}.serial.log", self.name));
        let _ = std::fs::remove_file(&log_path);
        let sock = log_dir().join(format!("{}.monitor", self.name));
        if !self.monitor.is_empty() {
            let _ = std::fs::remove_file(&sock);
            if let Some(i) = self.args.iter().position(|a| a == "-monitor") {
                self.args[i + 1] = format!("unix:{},server=on,wait=off", sock.display());
            }
        }
        let mut pending = self.monitor.iter();
        let mut next = pending.next();
        let start = Instant::now();
        let mut child = Command::new("qemu-system-x86_64")
            .args(&self.args)
            .arg("-m")
            .arg(&self.mem)
            .arg("-serial")
            .arg(format!("file:{}", log_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64 (run ci/setup.sh)");
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st.code();
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            if let Some((line, command)) = next {
                let log = std::fs::read(&log_path).unwrap_or_default();
                if String::from_utf8_lossy(&log).contains(line.as_str()) {
                    send_monitor(&sock, command);
                    next = pending.next();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = start.elapsed();
        let mut serial = std::fs::read(&log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if status.is_none() {
            serial.push_str(&format!("\n[harness] killed after {:?} timeout\n", self.timeout));
        }
        if let Some(mut e) = child.stderr.take() {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            if !s.trim().is_empty() {
                serial.push_str(&format!("\n[qemu stderr]\n{s}"));
            }
        }
        let _ = std::fs::write(&log_path, &serial);
        Outcome { status, serial, log_path, elapsed }
    }
}

/// One command to a QEMU monitor on a Unix socket; what it answers is dropped.
fn send_monitor(sock: &Path, command: &str) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect to QEMU's monitor");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut banner = [0u8; 512];
    let _ = s.read(&mut banner);
    s.write_all(format!("{command}\n").as_bytes()).expect("write to QEMU's monitor");
    let _ = s.read(&mut banner);
}
