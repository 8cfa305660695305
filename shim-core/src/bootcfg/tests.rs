//! Tests on real files (testdata/README.md says how each was made) and on
//! small hand-written ones for each rule and each malformed input.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;

const U: &str = "0f7e2b8c-3a4d-4e5f-9a6b-1c2d3e4f5a6b";
const ONE: &[u8] = include_bytes!("testdata/grub2-one-kernel.cfg");
const TWO: &[u8] = include_bytes!("testdata/grub2-two-kernels.cfg");
const SAVED: &[u8] = include_bytes!("testdata/grub2-saved.cfg");
const SAVED_ENV: &[u8] = include_bytes!("testdata/grub2-saved.grubenv");
const NEXT_ENV: &[u8] = include_bytes!("testdata/grub2-next-entry.grubenv");
const MENU: &[u8] = include_bytes!("testdata/menu.lst");
const MENU_SAVED: &[u8] = include_bytes!("testdata/menu-saved.lst");
const MENU_DEFAULT: &[u8] = include_bytes!("testdata/menu-saved.default");
const EXT_DEBIAN: &[u8] = include_bytes!("testdata/extlinux-debian.conf");
const EXT_ALPINE: &[u8] = include_bytes!("testdata/extlinux-alpine.conf");

fn grub2(cfg: &[u8], env: Option<&[u8]>, want: Option<&str>) -> Result<BootEntry, BootCfgError> {
    choose(ConfigKind::Grub2, cfg, env, want)
}

fn grub2_ok(cfg: &str, want: Option<&str>) -> BootEntry {
    grub2(cfg.as_bytes(), None, want).unwrap()
}

/// A grubenv block as grub-editenv writes it: header, variables, '#' to 1024.
fn grubenv(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut s = String::from("# GRUB Environment Block\n");
    for (k, v) in vars {
        s.push_str(&format!("{k}={v}\n"));
    }
    while s.len() < 1024 {
        s.push('#');
    }
    s.into_bytes()
}

/// The entry expected when a fixture's chosen entry names one kernel and
/// one initrd.
fn entry(title: &str, kernel: &str, initrd: &str, args: &str, device: Option<DeviceHint>) -> BootEntry {
    BootEntry { title: title.into(), kernel: kernel.into(), initrd: vec![initrd.into()], args: args.into(), device }
}

fn kernel_version(e: &BootEntry) -> &str {
    e.kernel.trim_start_matches("/boot/vmlinuz-")
}

// ---- GRUB 2 on grub-mkconfig's output ----

#[test]
fn grub2_one_kernel_default() {
    let e = grub2(ONE, None, None).unwrap();
    assert_eq!(
        e,
        entry(
            "Debian GNU/Linux",
            "/boot/vmlinuz-6.1.0-28-cloud-amd64",
            "/boot/initrd.img-6.1.0-28-cloud-amd64",
            &format!("root=UUID={U} ro quiet"),
            Some(DeviceHint::FsUuid(U.into()))
        )
    );
    // The same with an (empty) grubenv next to it.
    assert_eq!(grub2(ONE, Some(&grubenv(&[])), None).unwrap(), e);
}

#[test]
fn grub2_two_kernels_default_is_newest() {
    let e = grub2(TWO, None, None).unwrap();
    assert_eq!(kernel_version(&e), "6.1.0-28-cloud-amd64");
    assert_eq!(e.title, "Debian GNU/Linux");
}

#[test]
fn grub2_submenu_paths() {
    let adv = format!("gnulinux-advanced-{U}");
    let old = format!("gnulinux-6.1.0-27-cloud-amd64-advanced-{U}");
    let old_title = "Debian GNU/Linux, with Linux 6.1.0-27-cloud-amd64";
    for want in [
        "1>2".to_string(),
        format!("{adv}>{old}"),
        format!("Advanced options for Debian GNU/Linux>{old_title}"),
        format!("1>{old_title}"),
        " 1 > 2 ".to_string(),
    ] {
        let e = grub2(TWO, None, Some(&want)).unwrap();
        assert_eq!(e.title, old_title, "{want}");
        assert_eq!(kernel_version(&e), "6.1.0-27-cloud-amd64");
        assert_eq!(e.args, format!("root=UUID={U} ro quiet"));
    }
    let rescue = grub2(TWO, None, Some("1>3")).unwrap();
    assert!(rescue.title.ends_with("(recovery mode)"));
    assert_eq!(rescue.args, format!("root=UUID={U} ro single"));
    // A path ending at the submenu boots its first entry.
    let first = grub2(TWO, None, Some("1")).unwrap();
    assert_eq!(first.title, "Debian GNU/Linux, with Linux 6.1.0-28-cloud-amd64");
    // Top-level by id and title.
    let simple = format!("gnulinux-simple-{U}");
    assert_eq!(grub2(TWO, None, Some(&simple)).unwrap().title, "Debian GNU/Linux");
    assert_eq!(grub2(TWO, None, Some("Debian GNU/Linux")).unwrap().title, "Debian GNU/Linux");
}

#[test]
fn grub2_want_missing() {
    for want in ["2", "1>4", "0>0", "nope", "1>nope"] {
        match grub2(TWO, None, Some(want)) {
            Err(BootCfgError::WantMissing { .. }) => {}
            other => panic!("{want}: {other:?}"),
        }
    }
    let msg = grub2(TWO, None, Some("7")).unwrap_err().to_string();
    assert_eq!(msg, "grub.cfg: requested entry 7 does not exist (2 entries)");
}

#[test]
fn grub2_saved_entry() {
    let e = grub2(SAVED, Some(SAVED_ENV), None).unwrap();
    assert_eq!(kernel_version(&e), "6.1.0-27-cloud-amd64");
    // No grubenv: default is "" and GRUB boots entry 0.
    let e = grub2(SAVED, None, None).unwrap();
    assert_eq!(kernel_version(&e), "6.1.0-28-cloud-amd64");
    // A saved entry whose kernel has been removed: back to entry 0.
    let stale = grubenv(&[("saved_entry", "gnulinux-5.10.0-9-amd64-advanced-x")]);
    let e = grub2(SAVED, Some(&stale), None).unwrap();
    assert_eq!(e.title, "Debian GNU/Linux");
    // The operator's choice still wins.
    let e = grub2(SAVED, Some(SAVED_ENV), Some("0")).unwrap();
    assert_eq!(e.title, "Debian GNU/Linux");
}

#[test]
fn grub2_next_entry_wins() {
    // next_entry=1>2 beats saved_entry (which names the same kernel here,
    // so check with a saved_entry that names the newest).
    let e = grub2(SAVED, Some(NEXT_ENV), None).unwrap();
    assert_eq!(e.title, "Debian GNU/Linux, with Linux 6.1.0-27-cloud-amd64");
    let env = grubenv(&[("saved_entry", "0"), ("next_entry", "1>3")]);
    let e = grub2(SAVED, Some(&env), None).unwrap();
    assert!(e.title.ends_with("(recovery mode)"));
    // GRUB_DEFAULT=0 configs honour next_entry too (grub-reboot).
    let e = grub2(TWO, Some(&env), None).unwrap();
    assert!(e.title.ends_with("(recovery mode)"));
}

#[test]
fn grub2_grubenv_without_header_is_ignored() {
    let e = grub2(SAVED, Some(b"saved_entry=1>2\n"), None).unwrap();
    assert_eq!(e.title, "Debian GNU/Linux");
}

// ---- GRUB 2 rules on small files ----

#[test]
fn grub2_default_forms() {
    let cfg =
        "set default=2\nmenuentry 'a' { linux /a }\nmenuentry b --id=bid { linux /b }\nmenuentry c { linux /c }\n";
    assert_eq!(grub2_ok(cfg, None).kernel, "/c");
    let cfg = cfg.replace("default=2", "default=bid");
    assert_eq!(grub2_ok(&cfg, None).kernel, "/b");
    let cfg = cfg.replace("default=bid", "default='a'");
    assert_eq!(grub2_ok(&cfg, None).kernel, "/a");
    let cfg = cfg.replace("default='a'", "default=5");
    let err = grub2(cfg.as_bytes(), None, None).unwrap_err();
    assert_eq!(err.to_string(), "grub.cfg: default entry 5 does not exist (3 entries)");
}

#[test]
fn grub2_device_hints() {
    let e = grub2_ok("menuentry x { linux (hd0,gpt2)/vmlinuz root=/dev/xvda2\n initrd (hd0,gpt2)/initrd }", None);
    assert_eq!(e.kernel, "/vmlinuz");
    assert_eq!(e.initrd, vec!["/initrd"]);
    assert_eq!(e.device, Some(DeviceHint::Partition { disk: 0, part: 2 }));
    let e = grub2_ok("set root='hd1,msdos3'\nmenuentry x { linux /vmlinuz }", None);
    assert_eq!(e.device, Some(DeviceHint::Partition { disk: 1, part: 3 }));
    let e = grub2_ok("menuentry x { set root=(hd0,5); linux /vmlinuz }", None);
    assert_eq!(e.device, Some(DeviceHint::Partition { disk: 0, part: 5 }));
    let e = grub2_ok("menuentry x { set root=(hd2); linux /vmlinuz }", None);
    assert_eq!(e.device, Some(DeviceHint::Partition { disk: 2, part: 0 }));
    let e = grub2_ok("menuentry x { search --no-floppy --label --set=root BOOT\n linux /vmlinuz }", None);
    assert_eq!(e.device, Some(DeviceHint::FsLabel("BOOT".into())));
    let e = grub2_ok("menuentry x { search.fs_uuid 1234-ABCD root; linux /vmlinuz }", None);
    assert_eq!(e.device, Some(DeviceHint::FsUuid("1234-ABCD".into())));
    let e = grub2_ok("menuentry x { search --set=dev --fs-uuid u1; linux ($dev)/k }", None);
    assert_eq!(e.device, Some(DeviceHint::FsUuid("u1".into())));
    let e = grub2_ok("menuentry x { search -f /vmlinuz --set=root; linux /vmlinuz }", None);
    assert_eq!(e.device, None);
    let e = grub2_ok("menuentry x { set root=lvm/vg-root; linux /vmlinuz }", None);
    assert_eq!(e.device, None);
}

#[test]
fn grub2_initrds_and_kernel_commands() {
    let e =
        grub2_ok("menuentry x {\n linux16 /boot/vmlinuz ro\n initrd16 /boot/intel-ucode.img /boot/initrd.img\n}", None);
    assert_eq!(e.initrd, vec!["/boot/intel-ucode.img", "/boot/initrd.img"]);
    assert_eq!(e.args, "ro");
    let e = grub2_ok("menuentry x {\n linuxefi /k a\n initrdefi /i\n}", None);
    assert_eq!((e.kernel.as_str(), e.initrd.len()), ("/k", 1));
    // An initrd before any kernel is refused by GRUB: not kept.
    let e = grub2_ok("menuentry x { initrd /early; linux /k }", None);
    assert!(e.initrd.is_empty());
}

#[test]
fn grub2_words_quotes_and_variables() {
    let cfg = r#"
        set opts="quiet  splash"
        set lit='$opts'
        name=value
        menuentry "Title with \"quotes\"" --class os {
            linux /vmlinuz root=/dev/xvda1 $opts "a b" ${unset}x $lit a\ b "${name}" '' c\
d
        }
    "#;
    let e = grub2_ok(cfg, None);
    assert_eq!(e.title, "Title with \"quotes\"");
    assert_eq!(e.args, r#"root=/dev/xvda1 quiet splash "a b" x $opts "a b" value  cd"#);
}

#[test]
fn grub2_if_and_tests() {
    let cfg = r#"
        set v=3
        if [ "$v" -gt 5 ]; then set k=/a
        elif [ x"${v}" = x3 -a -n "$v" ]; then set k=/b
        else set k=/c; fi
        if [ -z "$nothing" ] ; then set i=/i1 ; fi
        if [ ! -s $prefix/grubenv ]; then set j=nogrubenv; else set j=grubenv; fi
        if loadfont unicode; then set k=/font; fi
        if test a != a -o 1 -eq 1; then set t=yes; fi
        menuentry x { linux $k $j $t; initrd $i }
    "#;
    let e = grub2_ok(cfg, None);
    assert_eq!((e.kernel.as_str(), e.args.as_str()), ("/b", "nogrubenv yes"));
    assert_eq!(e.initrd, vec!["/i1"]);
    let e = grub2(cfg.as_bytes(), Some(&grubenv(&[])), None).unwrap();
    assert_eq!(e.args, "grubenv yes");
}

#[test]
fn grub2_skips_functions_loops_and_unknown_commands() {
    let cfg = "function f { set k=/bad }\nfor i in 1 2; do set k=/bad; done\nf\nfrobnicate --x\nset k=/good\nmenuentry x { linux $k }";
    assert_eq!(grub2_ok(cfg, None).kernel, "/good");
}

#[test]
fn grub2_malformed() {
    let cases: &[(&str, &str)] = &[
        ("menuentry 'x { linux /k }", "grub.cfg line 1: unterminated quote"),
        ("menuentry x {\n linux /k\n", "grub.cfg line 1: no '}' closes this block"),
        ("\nif true; then\n set a=b\n", "grub.cfg line 2: no 'fi' closes this block"),
        ("fi", "grub.cfg line 1: unexpected 'fi'"),
        ("menuentry x\n{ linux /k }", "grub.cfg line 1: menuentry without '{'"),
        ("menuentry --class x { linux /k }", "grub.cfg line 1: menuentry without a title"),
        ("echo ${unclosed", "grub.cfg line 1: unterminated ${"),
        ("set a=b", "grub.cfg: no boot entries"),
        ("menuentry 'chain' { chainloader +1 }", "grub.cfg: entry 'chain' loads no Linux kernel"),
        ("submenu 's' { }", "grub.cfg: entry 's' loads no Linux kernel"),
    ];
    for (cfg, msg) in cases {
        let err = grub2(cfg.as_bytes(), None, None).unwrap_err();
        assert_eq!(err.to_string(), *msg, "{cfg}");
    }
    let deep = "if true; then ".repeat(100) + &"fi; ".repeat(100);
    assert!(matches!(grub2(deep.as_bytes(), None, None), Err(BootCfgError::TooComplex { .. })));
    let doubling = "set a=0123456789\n".to_string() + &"set a=$a$a\n".repeat(40) + "menuentry x { linux /k }";
    assert_eq!(
        grub2(doubling.as_bytes(), None, None).unwrap_err().to_string(),
        "grub.cfg: too complex to follow (a command expands to more than 4 KiB)"
    );
    let many: String = (0..2000).map(|i| format!("v{i}=1\n")).collect();
    assert!(matches!(grub2(many.as_bytes(), None, None), Err(BootCfgError::TooComplex { .. })));
    let subs = "submenu s { ".repeat(100) + &"} ".repeat(100);
    assert!(grub2(subs.as_bytes(), None, Some("0>0>0")).is_err());
}

#[test]
fn grub2_nested_submenus() {
    let cfg = "submenu a { submenu b { menuentry c { linux /c } menuentry d { linux /d } } }";
    assert_eq!(grub2_ok(cfg, Some("0>0>1")).kernel, "/d");
    assert_eq!(grub2_ok(cfg, Some("a>b>c")).kernel, "/c");
    assert_eq!(grub2_ok(cfg, None).kernel, "/c");
}

// ---- GRUB legacy ----

fn legacy(cfg: &[u8], companion: Option<&[u8]>, want: Option<&str>) -> Result<BootEntry, BootCfgError> {
    choose(ConfigKind::GrubLegacy, cfg, companion, want)
}

#[test]
fn legacy_debian_menu_lst() {
    let e = legacy(MENU, None, None).unwrap();
    assert_eq!(
        e,
        entry(
            "Debian GNU/Linux, kernel 2.6.32-5-xen-amd64",
            "/boot/vmlinuz-2.6.32-5-xen-amd64",
            "/boot/initrd.img-2.6.32-5-xen-amd64",
            &format!("root=UUID={U} ro quiet"),
            Some(DeviceHint::Partition { disk: 0, part: 1 })
        )
    );
    let e = legacy(MENU, None, Some("Debian GNU/Linux, kernel 2.6.26-2-xen-amd64")).unwrap();
    assert_eq!(e.kernel, "/boot/vmlinuz-2.6.26-2-xen-amd64");
    assert_eq!(legacy(MENU, None, Some("3")).unwrap().args, format!("root=UUID={U} ro single"));
    assert_eq!(
        legacy(MENU, None, Some("4")).unwrap_err().to_string(),
        "menu.lst: requested entry 4 does not exist (4 entries)"
    );
}

#[test]
fn legacy_default_saved() {
    let e = legacy(MENU_SAVED, Some(MENU_DEFAULT), None).unwrap();
    assert_eq!(e.title, "Debian GNU/Linux, kernel 2.6.26-2-xen-amd64");
    // No default file, or a stale one: entry 0.
    assert_eq!(legacy(MENU_SAVED, None, None).unwrap().kernel, "/boot/vmlinuz-2.6.32-5-xen-amd64");
    let e = legacy(MENU_SAVED, Some(b"9\n#\n"), None).unwrap();
    assert_eq!(e.kernel, "/boot/vmlinuz-2.6.32-5-xen-amd64");
}

#[test]
fn legacy_rules() {
    let cfg = "default=1\ntimeout=3\ntitle a\nkernel /a\ntitle b\nuuid 11-22\nkernel --no-mem-option (hd1,2)/b  x=1   y\ninitrd (hd1,2)/bi\n";
    let e = legacy(cfg.as_bytes(), None, None).unwrap();
    assert_eq!((e.kernel.as_str(), e.args.as_str()), ("/b", "x=1 y"));
    assert_eq!(e.initrd, vec!["/bi"]);
    assert_eq!(e.device, Some(DeviceHint::Partition { disk: 1, part: 3 }));
    let e = legacy(b"title a\nuuid 11-22\nkernel /a\n", None, None).unwrap();
    assert_eq!(e.device, Some(DeviceHint::FsUuid("11-22".into())));
    let e = legacy(b"title a\nroot (hd0)\nkernel /a\n", None, None).unwrap();
    assert_eq!(e.device, Some(DeviceHint::Partition { disk: 0, part: 0 }));
}

#[test]
fn legacy_malformed() {
    let cases: &[(&str, &str)] = &[
        ("timeout 5\n\n# c\nkernel /vmlinuz", "menu.lst line 4: kernel without title"),
        ("default 5\ntitle a\nkernel /a", "menu.lst: default entry 5 does not exist (1 entries)"),
        ("default x\ntitle a\nkernel /a", "menu.lst line 1: default is not a number or 'saved'"),
        ("title a\nkernel", "menu.lst line 2: kernel without a path"),
        ("title w\nrootnoverify (hd0,0)\nchainloader +1", "menu.lst: entry 'w' loads no Linux kernel"),
        ("# nothing", "menu.lst: no boot entries"),
    ];
    for (cfg, msg) in cases {
        assert_eq!(legacy(cfg.as_bytes(), None, None).unwrap_err().to_string(), *msg);
    }
}

// ---- extlinux ----

fn ext(cfg: &[u8], want: Option<&str>) -> Result<BootEntry, BootCfgError> {
    choose(ConfigKind::Extlinux, cfg, None, want)
}

#[test]
fn extlinux_debian() {
    let e = ext(EXT_DEBIAN, None).unwrap();
    assert_eq!(
        e,
        entry(
            "Debian GNU/Linux, kernel 3.2.0-4-amd64",
            "/boot/vmlinuz-3.2.0-4-amd64",
            "/boot/initrd.img-3.2.0-4-amd64",
            &format!("root=UUID={U} ro quiet"),
            None
        )
    );
    for want in ["l0r", "1", "Debian GNU/Linux, kernel 3.2.0-4-amd64 (rescue mode)"] {
        assert_eq!(ext(EXT_DEBIAN, Some(want)).unwrap().args, format!("root=UUID={U} ro single"));
    }
    assert!(matches!(ext(EXT_DEBIAN, Some("l1")), Err(BootCfgError::WantMissing { .. })));
}

#[test]
fn extlinux_alpine_menu_default_and_relative_paths() {
    let e = ext(EXT_ALPINE, None).unwrap();
    assert_eq!(e.title, "Linux lts");
    assert_eq!((e.kernel.as_str(), e.initrd.clone()), ("vmlinuz-lts", vec!["initramfs-lts".to_string()]));
    assert_eq!(resolve_path("/boot/extlinux.conf", &e.kernel), "/boot/vmlinuz-lts");
    assert_eq!(resolve_path("/extlinux/extlinux.conf", "../vmlinuz"), "/vmlinuz");
    assert_eq!(resolve_path("/boot/extlinux/extlinux.conf", "/boot/./k"), "/boot/k");
    assert_eq!(ext(EXT_ALPINE, Some("virt")).unwrap().kernel, "vmlinuz-virt");
}

#[test]
fn extlinux_rules() {
    // Global APPEND, APPEND -, initrd lists, case, DEFAULT as a command line.
    let cfg = "append console=hvc0\nLABEL a\n KERNEL /a\nlabel b\n linux /b\n Append -\nlabel c\n kernel /c\n initrd /i1,/i2\n append x initrd=/i3 y\n";
    assert_eq!(ext(cfg.as_bytes(), None).unwrap().args, "console=hvc0");
    assert_eq!(ext(cfg.as_bytes(), Some("b")).unwrap().args, "");
    let c = ext(cfg.as_bytes(), Some("c")).unwrap();
    assert_eq!((c.args.as_str(), c.initrd.len()), ("x y", 3));
    let e = ext(b"DEFAULT /vmlinuz root=/dev/xvda1 ro\nlabel a\n kernel /a\n", None).unwrap();
    assert_eq!((e.kernel.as_str(), e.args.as_str()), ("/vmlinuz", "root=/dev/xvda1 ro"));
    // With a prompt, ONTIMEOUT wins over DEFAULT.
    let e = ext(b"default a\nprompt 1\nontimeout b\nlabel a\n kernel /a\nlabel b\n kernel /b\n", None).unwrap();
    assert_eq!(e.kernel, "/b");
}

#[test]
fn extlinux_malformed() {
    assert_eq!(ext(b"# empty\n", None).unwrap_err().to_string(), "extlinux.conf: no boot entries");
    assert_eq!(
        ext(b"default x\nlabel x\n kernel mboot.c32\n", None).unwrap_err().to_string(),
        "extlinux.conf: entry 'x' loads no Linux kernel"
    );
    assert!(ext(b"label x\n localboot 0\n", None).is_err());
}

// ---- the shared parts ----

#[test]
fn search_order_and_companions() {
    assert_eq!(CONFIG_FILES.first(), Some(&("/boot/grub/grub.cfg", ConfigKind::Grub2)));
    assert_eq!(CONFIG_FILES.len(), 13);
    assert_eq!(companion_file(ConfigKind::Grub2, "/boot/grub/grub.cfg").as_deref(), Some("/boot/grub/grubenv"));
    assert_eq!(companion_file(ConfigKind::GrubLegacy, "/grub/menu.lst").as_deref(), Some("/grub/default"));
    assert_eq!(companion_file(ConfigKind::Extlinux, "/extlinux.conf"), None);
}

#[test]
fn garbage_is_an_error() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for kind in [ConfigKind::Grub2, ConfigKind::GrubLegacy, ConfigKind::Extlinux] {
        assert!(choose(kind, &garbage, Some(&garbage), None).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                             want in proptest::option::of("[0-9a-z> ]{0,8}")) {
        for kind in [ConfigKind::Grub2, ConfigKind::GrubLegacy, ConfigKind::Extlinux] {
            let _ = choose(kind, &bytes, Some(&bytes), want.as_deref());
        }
    }

    /// Real files with a few bytes changed reach deeper than random bytes.
    #[test]
    fn never_panics_on_mutated_files(edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
                                     which in 0usize..5) {
        let (kind, base, comp): (ConfigKind, &[u8], Option<&[u8]>) = match which {
            0 => (ConfigKind::Grub2, TWO, Some(NEXT_ENV)),
            1 => (ConfigKind::Grub2, SAVED, Some(SAVED_ENV)),
            2 => (ConfigKind::GrubLegacy, MENU_SAVED, Some(MENU_DEFAULT)),
            3 => (ConfigKind::Extlinux, EXT_DEBIAN, None),
            _ => (ConfigKind::Extlinux, EXT_ALPINE, None),
        };
        let mut cfg = base.to_vec();
        for (at, byte) in edits {
            let i = usize::from(at) % cfg.len();
            if let Some(b) = cfg.get_mut(i) {
                *b = byte;
            }
        }
        let _ = choose(kind, &cfg, comp, None);
        let _ = choose(kind, &cfg, comp, Some("1>2"));
    }
}
