//! Hostile images (T9): random bytes are not a gefs image; random
//! mutations of a valid image, and of single nodes fed to the summarizer,
//! never panic.

use super::image::{build, layout};
use crate::check::sb::sb_b_addr;
use crate::check::summary::summarize;
use crate::check::{check, CheckOpts};
use crate::device::{Device, MemDev};
use crate::format::{BLKSZ, BLKSZ_U64};
use crate::testing::Rng;

#[test]
fn random_bytes_are_not_gefs() {
    let mut r = Rng(0x5eed);
    for size in [64u64 << 20, 40 << 20, 3 * BLKSZ_U64, 100] {
        let dev = MemDev::new(size);
        let mut b = vec![0u8; BLKSZ.min(size as usize)];
        for off in [0, sb_b_addr(size).0, size / 2 / BLKSZ_U64 * BLKSZ_U64] {
            if off + b.len() as u64 <= size {
                r.fill(&mut b);
                dev.write_at(&b, off).unwrap();
            }
        }
        assert!(check(&dev, &CheckOpts::default()).is_err(), "size {size}");
    }
}

#[test]
fn mutations_never_panic() {
    let img = build();
    let written = img.dev.written_pages();
    let mut r = Rng(0xfa11);
    let mut checked = 0;
    for _ in 0..300 {
        let dev = img.dev.snapshot();
        for _ in 0..1 + r.below(8) {
            let page = written[r.below(written.len() as u64) as usize];
            // Mostly headers and the first records, where decoders look.
            let off = if r.below(2) == 0 {
                r.below(64)
            } else {
                r.below(BLKSZ_U64)
            };
            dev.write_at(&[r.next_u64() as u8], page + off).unwrap();
        }
        let opts = CheckOpts {
            threads: 1 + r.below(2) as usize,
            progress: None,
        };
        if check(&dev, &opts).is_ok() {
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "only {checked} mutated images could be checked"
    );
}

#[test]
fn hostile_nodes_summarize_without_panic() {
    let img = build();
    let l = layout(&img.dev);
    let mut r = Rng(0xbad);
    let nodes: Vec<_> = [&l.snap_pivots, &l.snap_leaves, &l.fs_pivots, &l.fs_leaves]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let mut ok = 0;
    for i in 0..4000 {
        let a = nodes[i % nodes.len()];
        let mut b = vec![0u8; BLKSZ];
        img.dev.read_at(&mut b, a.0).unwrap();
        for _ in 0..1 + r.below(6) {
            let at = match r.below(3) {
                0 => r.below(16),
                1 => 16 + r.below(256),
                _ => r.below(BLKSZ_U64),
            } as usize;
            b[at] = r.next_u64() as u8;
        }
        if matches!(summarize(&b), Some(crate::check::summary::Sum::Node(_))) {
            ok += 1;
        }
    }
    assert!(ok > 0);
}

#[test]
fn newer_format_version_is_an_error() {
    let img = build();
    let dev = img.dev.snapshot();
    for a in [0, sb_b_addr(dev.size()).0] {
        let mut b = vec![0u8; 16];
        dev.read_at(&mut b, a).unwrap();
        b[11] = 9; // version, big-endian u32 at offset 8
        dev.write_at(&b, a).unwrap();
    }
    let e = check(&dev, &CheckOpts::default()).unwrap_err();
    assert!(matches!(e, crate::Error::Version { found: 9 }), "{e}");
}
