//! The online check: a pinned commit checks clean while the store churns
//! on (files removed and rewritten, many commits), because nothing the pin
//! holds is reused; and without the pin the same churn does reuse its
//! blocks, which is what the pin is for.

use std::sync::Arc;

use super::show;
use crate::check::{check, check_pinned, CheckOpts};
use crate::device::{Device, MemDev};
use crate::fs::{Fs, Who, MAX_IO, ORDWR};

fn fs() -> (Arc<MemDev>, Fs) {
    crate::testing::fresh_fs(48 << 20, 8 << 20)
}

/// Replace every file `f0`..`f7` of main's root with `len` new bytes, and
/// commit after each.
fn churn(fs: &Fs, round: u8, len: usize) {
    let who = Who::user(1);
    let (m, root) = fs.attach("main").unwrap();
    for i in 0..8 {
        let name = format!("f{i}");
        if let Ok(e) = fs.walk(&m, &root, name.as_bytes(), &who) {
            fs.remove(&m, &e, &who).unwrap();
        }
        let o = fs
            .create(&m, &root, name.as_bytes(), 0o664, ORDWR, &who)
            .unwrap();
        let chunk = vec![round.wrapping_add(i); MAX_IO];
        let mut off = 0;
        while off < len {
            let n = (len - off).min(MAX_IO);
            off += fs.write(&o, off as u64, &chunk[..n], &who).unwrap();
        }
        drop(o);
        fs.sync().unwrap();
        // Let background clears of removed files run to the end.
        while fs.sweep(1000).unwrap() {}
        fs.sync().unwrap();
    }
}

fn opts() -> CheckOpts {
    CheckOpts {
        threads: 2,
        progress: None,
    }
}

/// The superblocks of the pinned commit over the device as it is now, as
/// an ordinary device: what a check that did not pin would read.
struct Unpinned<'a>(&'a MemDev, [(u64, Vec<u8>); 2]);

impl Device for Unpinned<'_> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        self.0.read_at(buf, off)?;
        for (at, img) in &self.1 {
            if *at == off && buf.len() == img.len() {
                buf.copy_from_slice(img);
            }
        }
        Ok(())
    }
    fn write_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
        Err(std::io::ErrorKind::PermissionDenied.into())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
}

#[test]
fn a_pinned_commit_checks_clean_while_commits_go_on() {
    let (dev, fs) = fs();
    churn(&fs, 1, 1 << 20);
    let s = fs.store().clone();
    let pin = s.pin_commit().unwrap();
    let gen = pin.commit_gen;
    // What these free stays parked while pinned: 8 + 4 MiB of 48.
    churn(&fs, 2, 1 << 20);
    churn(&fs, 3, 512 << 10);
    assert!(s.commit_gen() > gen + 10);
    let r = check_pinned(&pin, &opts()).unwrap();
    assert!(r.is_clean(), "{}", show(&r));
    assert_eq!(r.superblock.commit_gen, gen);
    drop(pin);
    // The parked frees are reusable again: churning on stays within the
    // device, and the image is clean at the end.
    churn(&fs, 4, 2 << 20);
    let r = check(&*dev, &opts()).unwrap();
    assert!(r.is_clean(), "{}", show(&r));
}

#[test]
fn without_the_pin_the_old_commit_is_overwritten() {
    let (dev, fs) = fs();
    churn(&fs, 1, 2 << 20);
    let s = fs.store().clone();
    let imgs = {
        let pin = s.pin_commit().unwrap();
        pin.superblocks.clone().map(|(at, b)| (at, b.into_vec()))
    };
    churn(&fs, 2, 2 << 20);
    churn(&fs, 3, 2 << 20);
    let r = check(&Unpinned(&dev, imgs), &opts()).unwrap();
    assert!(
        !r.is_clean(),
        "the old commit's blocks were all still intact"
    );
}
