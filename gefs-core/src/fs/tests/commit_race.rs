//! Commits racing writers. A write allocates its data blocks, then upserts
//! the keys that reference them; a commit from another thread (gefsd's sync
//! worker, the clock, a client's null wstat) landing between the two used to
//! make the allocations durable without the keys, so a crash right after it
//! left leaked blocks. Every commit is a state a crash can leave, so each
//! image taken right after one must check clean.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::check::{check, CheckOpts};

/// Postmortem: T5 (gefsd SIGKILLed under load) found the leak the module doc describes.
/// Pins: every commit taken while writers run leaves an image that checks clean (no leaked
/// block), as commits now wait for file-system writes in progress (`Store::begin_op`).
#[test]
fn commits_racing_writes_never_leak_a_block() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let o = fs.create(&m, &root, b"f", 0o664, ORDWR, &glenda()).unwrap();
    let stop = AtomicBool::new(false);
    let data = bytes(1, 8 * BLKSZ);
    let images = std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let off = (writes % 4) * 8 * BLKSZ_U64;
                fs.write(&o, off, &data, &glenda()).unwrap();
                writes += 1;
            }
            writes
        });
        let mut images = Vec::new();
        while images.len() < 60 {
            if fs.store().sync().unwrap().wrote {
                images.push(dev.snapshot());
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().unwrap() > 0);
        images
    });
    for (i, img) in images.iter().enumerate() {
        let r = check(img, &CheckOpts::default()).unwrap();
        assert!(
            r.problems.is_empty(),
            "image after commit {i}: {:#?}",
            r.problems
        );
    }
}
