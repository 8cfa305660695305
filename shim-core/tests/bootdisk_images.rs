//! `bootdisk` on disk images made by the real tools: mke2fs (ext2, ext3,
//! ext4; 1 and 4 KiB blocks) with files from a directory, sfdisk (MBR and
//! GPT, with CRCs), and the bootloader configurations in their usual places.
//! Needs e2fsprogs and fdisk (ci/setup.sh installs them).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use shim_core::bootdisk::{self, BootError, MemDisk, SharedDisk, TableKind};

const SECTOR: usize = 512;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cocoon-bootdisk-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (run ci/setup.sh)"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A file's contents that differ at every offset (a misplaced block shows).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn write(root: &Path, path: &str, data: &[u8]) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A filesystem image of `mib` MiB holding `root`'s files.
fn mkfs(dir: &Path, kind: &str, block: u32, root: &Path, mib: u32, uuid: &str) -> Vec<u8> {
    let img = dir.join(format!("{kind}-{uuid}.img"));
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", kind, "-b", &block.to_string(), "-U", uuid, "-L", "cocoon-test", "-d"])
        .arg(root)
        .arg(&img)
        .arg(format!("{mib}M")));
    std::fs::read(img).unwrap()
}

/// A disk with `label` ("dos" or "gpt") and one partition per filesystem,
/// from sector 2048 on, laid out by sfdisk.
fn disk(dir: &Path, label: &str, filesystems: &[&[u8]]) -> Vec<u8> {
    let img = dir.join("disk.img");
    let mut script = format!("label: {label}\n");
    let mut start = 2048;
    for fs in filesystems {
        script += &format!("start={start}, size={}, type=linux\n", fs.len() / SECTOR);
        start += fs.len() / SECTOR;
    }
    let total = (start + 2048) * SECTOR; // room for GPT's backup
    std::fs::write(&img, vec![0u8; total]).unwrap();
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk (run ci/setup.sh)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk failed on {script}");
    let mut d = std::fs::read(&img).unwrap();
    let mut at = 2048 * SECTOR;
    for fs in filesystems {
        d[at..at + fs.len()].copy_from_slice(fs);
        at += fs.len();
    }
    d
}

fn shared(bytes: Vec<u8>) -> SharedDisk {
    Rc::new(RefCell::new(MemDisk::new(bytes)))
}

const GRUB_CFG: &str = "\
set default=\"0\"
menuentry 'Debian GNU/Linux' {
\tlinux\t/boot/vmlinuz-6.1.0-test root=/dev/xvda1 ro quiet
\tinitrd\t/boot/initrd.img-6.1.0-test
}
";

#[test]
fn every_ext_flavour_and_block_size_on_a_whole_disk() {
    let dir = scratch("flavours");
    let root = dir.join("root");
    // Big enough for indirect blocks (ext2/3) and several extents.
    let kernel = pattern(3 << 20, 7);
    let initrd = pattern(700_001, 9);
    write(&root, "/boot/grub/grub.cfg", GRUB_CFG.as_bytes());
    write(&root, "/boot/vmlinuz-6.1.0-test", &kernel);
    write(&root, "/boot/initrd.img-6.1.0-test", &initrd);
    for (kind, block) in [("ext2", 1024), ("ext3", 4096), ("ext4", 1024), ("ext4", 4096)] {
        let fs = mkfs(&dir, kind, block, &root, 16, "2f0e6a3c-54a1-4b7e-9d3a-0c1e2d3f4a5b");
        let d = shared(fs);
        let plan = bootdisk::plan(&d, None).unwrap_or_else(|e| panic!("{kind}/{block}: {e}"));
        assert_eq!(plan.table, TableKind::None, "{kind}");
        assert_eq!(plan.config, (0, "/boot/grub/grub.cfg".to_string()));
        assert_eq!(plan.entry.args, "root=/dev/xvda1 ro quiet");
        assert_eq!((plan.kernel.size, plan.initrds.len()), (kernel.len() as u64, 1));
        let mut k = vec![0u8; kernel.len()];
        plan.read(&plan.kernel, &mut k).unwrap();
        assert!(k == kernel, "{kind}/{block}: the kernel read back differs");
        let mut i = vec![0u8; initrd.len()];
        plan.read(&plan.initrds[0], &mut i).unwrap();
        assert!(i == initrd, "{kind}/{block}: the initrd read back differs");
    }
}

#[test]
fn gpt_with_a_separate_boot_partition_named_by_uuid() {
    let dir = scratch("gpt");
    let (boot, root) = (dir.join("boot"), dir.join("root"));
    let kernel = pattern(1 << 20, 3);
    // A separate /boot: its paths have no /boot prefix; the root filesystem
    // has a decoy kernel of the same name that must not be taken.
    write(
        &boot,
        "/grub/grub.cfg",
        b"menuentry 'Debian' {\n\tsearch --no-floppy --fs-uuid --set=root 11111111-2222-4333-8444-555555555555\n\tlinux /vmlinuz-x root=/dev/xvda2\n}\n",
    );
    write(&boot, "/vmlinuz-x", &kernel);
    write(&root, "/vmlinuz-x", b"decoy");
    write(&root, "/etc/hostname", b"guest\n");
    let fs_boot = mkfs(&dir, "ext4", 4096, &boot, 8, "11111111-2222-4333-8444-555555555555");
    let fs_root = mkfs(&dir, "ext4", 4096, &root, 8, "99999999-2222-4333-8444-555555555555");
    let d = shared(disk(&dir, "gpt", &[&fs_root, &fs_boot]));
    let plan = bootdisk::plan(&d, None).unwrap();
    assert_eq!(plan.table, TableKind::Gpt);
    assert_eq!(plan.filesystems.len(), 2);
    assert_eq!(plan.config, (2, "/grub/grub.cfg".to_string()));
    assert_eq!(plan.partition_of(&plan.kernel), 2);
    let mut k = vec![0u8; plan.kernel.size as usize];
    plan.read(&plan.kernel, &mut k).unwrap();
    assert!(k == kernel);
}

#[test]
fn mbr_with_legacy_grub_menu_lst() {
    let dir = scratch("mbr");
    let root = dir.join("root");
    write(
        &root,
        "/boot/grub/menu.lst",
        b"default 0\ntimeout 5\n\ntitle Debian GNU/Linux, kernel 2.6.32-5-xen-amd64\nroot (hd0,0)\nkernel /boot/vmlinuz-2.6.32-5-xen-amd64 root=/dev/xvda1 ro console=hvc0\ninitrd /boot/initrd.img-2.6.32-5-xen-amd64\n",
    );
    write(&root, "/boot/vmlinuz-2.6.32-5-xen-amd64", &pattern(50_000, 1));
    write(&root, "/boot/initrd.img-2.6.32-5-xen-amd64", &pattern(20_000, 2));
    let fs = mkfs(&dir, "ext3", 4096, &root, 8, "01234567-89ab-4cde-8f01-23456789abcd");
    let d = shared(disk(&dir, "dos", &[&fs]));
    let plan = bootdisk::plan(&d, None).unwrap();
    assert_eq!(plan.table, TableKind::Mbr);
    assert_eq!(plan.config, (1, "/boot/grub/menu.lst".to_string()));
    assert_eq!(plan.kernel.path, "/boot/vmlinuz-2.6.32-5-xen-amd64");
    assert_eq!(plan.entry.args, "root=/dev/xvda1 ro console=hvc0");
}

#[test]
fn clear_errors_for_disks_that_cannot_boot() {
    let dir = scratch("errors");
    let root = dir.join("root");
    write(&root, "/etc/hostname", b"guest\n");
    let fs = mkfs(&dir, "ext4", 4096, &root, 8, "aaaaaaaa-2222-4333-8444-555555555555");
    let e = bootdisk::plan(&shared(fs), None).err().unwrap();
    assert_eq!(e, BootError::NoConfig);
    assert!(e.to_string().contains("/boot/grub/grub.cfg"), "{e}");

    write(&root, "/boot/grub/grub.cfg", GRUB_CFG.as_bytes());
    let fs = mkfs(&dir, "ext4", 4096, &root, 8, "bbbbbbbb-2222-4333-8444-555555555555");
    let e = bootdisk::plan(&shared(fs), None).err().unwrap();
    assert_eq!(e.to_string(), "the chosen entry's kernel /boot/vmlinuz-6.1.0-test is on no filesystem of the disk");

    let e = bootdisk::plan(&shared(vec![0u8; 4 << 20]), None).err().unwrap();
    assert_eq!(e, BootError::NoFilesystem { partitions: 1 });

    // Superblocks with sizes a guest could use against Cocoon's reader heap
    // (a 2 GiB block size; more blocks than the partition has) or that
    // disagree with the rest of the filesystem (8 blocks per group) are
    // clean errors, never an allocation failure or a panic.
    let fs = mkfs(&dir, "ext4", 4096, &root, 8, "cccccccc-2222-4333-8444-555555555555");
    for (offset, value) in [(24usize, 21u32), (32, 8), (4, u32::MAX)] {
        let mut bad = fs.clone();
        bad[1024 + offset..1024 + offset + 4].copy_from_slice(&value.to_le_bytes());
        match bootdisk::plan(&shared(bad), None) {
            Err(BootError::Filesystem { partition: 0, error }) => assert!(!error.is_empty()),
            Err(other) => panic!("superblock field {offset} = {value}: {other}"),
            Ok(_) => panic!("superblock field {offset} = {value} accepted"),
        }
    }
}
