//! Property tests: the loader and builder take untrusted input, so no input
//! may make them panic, hang or allocate without bound. Mutations of valid
//! kernels (plain ELF and LZ4 bzImage) and raw random bytes.

use proptest::prelude::*;
use shim_core::builder::{build, DomainConfig, PhysMap};
use shim_core::loader;
use shim_core::testing::*;

const LIMIT: u64 = 32 << 20;

fn try_everything(data: &[u8]) {
    if let Ok(k) = loader::load(data, LIMIT) {
        let map = PhysMap::from_extents(&[(0x10, 8192)]);
        let mut mem = VecMemory::new(0x10, 8192);
        let cfg = DomainConfig {
            cmdline: "x",
            initrd: Some(&[1, 2, 3]),
            shared_info_mfn: 1,
            store_evtchn: 1,
            console_evtchn: 2,
            host_rings: Default::default(),
        };
        let _ = build(&k, &map, &mut mem, &cfg);
    }
}

fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(pos, val) in edits {
        let n = base.len();
        base[pos % n] = val;
    }
    if let Some(c) = cut {
        let n = base.len();
        base.truncate(c % n);
    }
    base
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_elf(edits in prop::collection::vec((0usize..4096, any::<u8>()), 1..8), cut in prop::option::of(any::<usize>())) {
        // Mutations aimed at the headers and notes, where the parsing is.
        try_everything(&mutate(SynthKernel::linux_like().to_elf(), &edits, cut));
    }

    #[test]
    fn mutated_bzimage(edits in prop::collection::vec((0usize..100_000, any::<u8>()), 1..8), cut in prop::option::of(any::<usize>())) {
        let bz = bzimage(&lz4_legacy(&SynthKernel::linux_like().to_elf()));
        try_everything(&mutate(bz, &edits, cut));
    }

    #[test]
    fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        try_everything(&data);
    }

    #[test]
    fn random_after_magic(magic in prop::sample::select(vec![
        b"\x7fELF\x02\x01\x01\x00".to_vec(), vec![0x1f, 0x8b, 8, 0], vec![0x02, 0x21, 0x4c, 0x18],
    ]), rest in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut d = magic.clone();
        d.extend_from_slice(&rest);
        try_everything(&d);
        try_everything(&bzimage(&d));
    }
}
