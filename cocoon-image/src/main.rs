//! `cocoon-image`: the operator's host tool.
//!
//! `inspect KERNEL [--mem SIZE] [--initrd FILE]` shows what Cocoon sees in a
//! PV kernel: its container and compression, the Xen notes, the loadable
//! segments and the initial domain layout for a given amount of memory.
//! `bundle` packs kernel, initrd and command line into one boot module;
//! `bzimage` turns the firmware into a Linux boot protocol image; `hvm` makes
//! both plus an xl config for running the kernel in Cocoon as an HVM domain;
//! `convert` turns a PV domain's xl config into one that runs it in Cocoon.
//! A kernel Cocoon cannot run gives a one-line error and a non-zero exit.

mod convert;
mod hvm;
mod libvirt;

use cocoon_image::bzimage;
mod inspect;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cocoon-image", version, about = "Cocoon's host tool for PV kernels")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the container, compression, Xen notes and planned layout of a PV kernel.
    Inspect {
        /// The kernel: bzImage, gzip-compressed ELF or plain ELF.
        kernel: std::path::PathBuf,
        /// Guest memory (bytes, or with a K/M/G suffix).
        #[arg(long, default_value = "512M", value_parser = parse_size)]
        mem: u64,
        /// An initrd, to place it in the layout.
        #[arg(long)]
        initrd: Option<std::path::PathBuf>,
    },
    /// Pack a PV kernel, initrd and command line into one boot module (for
    /// loaders that pass only one, such as Xen's PVH `ramdisk=`).
    Bundle {
        kernel: std::path::PathBuf,
        #[arg(long)]
        initrd: Option<std::path::PathBuf>,
        /// The guest kernel's command line.
        #[arg(long)]
        cmdline: Option<String>,
        /// Where to write the bundle.
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
    /// Turn the firmware ELF into a Linux boot protocol image (bzImage) for
    /// loaders that only start Linux (QEMU and Xen HVM direct kernel boot, syslinux).
    Bzimage {
        firmware: std::path::PathBuf,
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
    /// Make Cocoon's bzImage, a bundle and an xl config that runs the PV
    /// kernel in Cocoon as an HVM domain.
    Hvm {
        kernel: std::path::PathBuf,
        /// The firmware ELF (target/x86_64-unknown-none/release/cocoon).
        #[arg(long)]
        firmware: std::path::PathBuf,
        #[arg(long)]
        initrd: Option<std::path::PathBuf>,
        /// The guest kernel's command line.
        #[arg(long, default_value = "console=hvc0")]
        cmdline: String,
        /// Cocoon's own options (the HVM domain's command line).
        #[arg(long, default_value = "")]
        cocoon_options: String,
        /// The domain's name (also names the bundle and config files).
        #[arg(long, default_value = "cocoon")]
        name: String,
        /// The domain's memory in MiB.
        #[arg(long, default_value_t = 512)]
        memory: u64,
        /// The directory to write into.
        #[arg(short, long)]
        output: std::path::PathBuf,
        /// Also write NAME.img, a bootable disk (FAT + syslinux; needs mkfs.fat,
        /// mcopy and syslinux), and NAME-disk.cfg, which boots it.
        #[arg(long)]
        disk: bool,
    },
    /// Turn a PV domain's xl config into an HVM one that runs the same guest
    /// in Cocoon (writes DIR/cocoon.bzImage, DIR/NAME.cfg and, for a host
    /// kernel, DIR/NAME.bundle). What cannot carry over is named on stderr.
    Convert {
        /// The PV domain's xl config (it is left as it is: keep it to go back to PV).
        config: std::path::PathBuf,
        /// The firmware ELF (target/x86_64-unknown-none/release/cocoon).
        #[arg(long)]
        firmware: std::path::PathBuf,
        /// The directory to write into.
        #[arg(short, long)]
        output: std::path::PathBuf,
        /// Also write DIR/NAME.xml, the domain for libvirt's libxl driver.
        #[arg(long)]
        libvirt: bool,
        /// A new domain name (the uuid is then not carried over).
        #[arg(long)]
        name: Option<String>,
        /// Boot this kernel from the host instead of the guest's bootloader
        /// (needed when the boot disk is a partition such as xvda1).
        #[arg(long)]
        kernel: Option<std::path::PathBuf>,
        /// The initrd for --kernel.
        #[arg(long, requires = "kernel")]
        initrd: Option<std::path::PathBuf>,
        /// More of Cocoon's own options (cocoon.* words).
        #[arg(long, default_value = "")]
        cocoon_options: String,
    },
}

/// "512M", "1G", "65536K", "1048576" (bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 512M)"))?;
    n.checked_mul(mult).filter(|&b| b >= 1 << 20).ok_or_else(|| format!("'{s}' is out of range (at least 1M)"))
}

fn bzimage(firmware: &Path, out: &Path) -> Result<String, String> {
    let fw = std::fs::read(firmware).map_err(|e| format!("{}: {e}", firmware.display()))?;
    let img = bzimage::build(&fw).map_err(|e| format!("{}: {e}", firmware.display()))?;
    std::fs::write(out, &img).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!("{}: {}\n", out.display(), bzimage::describe(&img)))
}

fn bundle(kernel: &Path, initrd: Option<&Path>, cmdline: Option<&str>, out: &Path) -> Result<String, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let k = read(kernel)?;
    // Refuse a kernel Cocoon could not run, here rather than at boot.
    shim_core::loader::load(&k, u64::MAX >> 1).map_err(|e| format!("{}: {e}", kernel.display()))?;
    let i = initrd.map(read).transpose()?;
    let b = hvm_glue::bundle::build(&k, i.as_deref(), cmdline);
    std::fs::write(out, &b).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!("{}: {} bytes (kernel {}, initrd {})\n", out.display(), b.len(), k.len(), i.map_or(0, |i| i.len())))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { kernel, mem, initrd } => inspect::run(&kernel, mem, initrd.as_deref()),
        Command::Bundle { kernel, initrd, cmdline, output } => {
            bundle(&kernel, initrd.as_deref(), cmdline.as_deref(), &output)
        }
        Command::Bzimage { firmware, output } => bzimage(&firmware, &output),
        Command::Hvm { kernel, firmware, initrd, cmdline, cocoon_options, name, memory, output, disk } => {
            hvm::run(&hvm::HvmRequest {
                firmware: &firmware,
                kernel: &kernel,
                initrd: initrd.as_deref(),
                cmdline: Some(&cmdline),
                cocoon_options: &cocoon_options,
                name: &name,
                memory_mib: memory,
                out_dir: &output,
                disk,
            })
        }
        Command::Convert { config, firmware, output, libvirt, name, kernel, initrd, cocoon_options } => {
            convert::run(&convert::Request {
                config: &config,
                firmware: &firmware,
                out_dir: &output,
                libvirt,
                options: convert::Options {
                    name: name.as_deref(),
                    kernel: kernel.as_deref(),
                    initrd: initrd.as_deref(),
                    cocoon_options: &cocoon_options,
                },
            })
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cocoon-image: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Test helper: `text` contains every one of `wants`.
#[cfg(test)]
fn assert_has_all(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "lacks {want:?}:\n{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("4096k"), Ok(4 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("12").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
