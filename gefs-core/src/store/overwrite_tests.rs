//! Buffered overwrites (`overwrite.rs`): blocks replaced before any log saw
//! them come back at once, and nothing else changes — what readers see,
//! what a crash leaves, what the check finds.

use std::sync::Arc;

use super::*;
use crate::device::MemDev;
use crate::format::key;

use super::tests::{fmt, open, DEV};

/// The file every test overwrites.
const Q: u64 = 7;

/// Write block `off` of file `Q` as `fill` bytes, as the file layer does:
/// a new data block, then the `KDAT` insert naming it.
pub(crate) fn write(s: &Store, t: TreeId, off: u64, fill: u8) -> Bptr {
    let _op = s.begin_op();
    let bp = s
        .write_data(t, Q, true, Tier::Normal, |b| b.fill(fill))
        .unwrap();
    let m = Msg::insert(key::dat(Q, off * BLKSZ as u64), bp.to_bytes().to_vec());
    s.upsert(t, vec![m], Tier::Normal).unwrap();
    bp
}

/// Block `off` of file `Q` holds `fill` bytes.
pub(crate) fn holds(s: &Store, t: TreeId, off: u64, fill: u8) {
    let v = s
        .lookup(t, &key::dat(Q, off * BLKSZ as u64))
        .unwrap()
        .expect("data key");
    let bp = Bptr::from_slice(&v).unwrap();
    let b = s.read_data(&bp).unwrap();
    assert!(b.bytes().iter().all(|&x| x == fill), "block {off}");
}

/// The check finds every block accounted for: no leak, nothing reachable
/// and free, nothing shared. (These trees hold data keys of no file, which
/// the file-level findings report; the file layer's own test is
/// `fs::tests::space::overwrites_in_place_free_as_they_go`.)
pub(crate) fn clean(dev: &MemDev) {
    use crate::check::Kind;
    let r = crate::check::check(dev, &crate::check::CheckOpts::default()).unwrap();
    let bad: Vec<_> = r
        .problems
        .iter()
        .filter(|p| !matches!(p.kind, Kind::Qid | Kind::DataKey))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn blocks_overwritten_before_any_log_come_back_at_once() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    s.sync().unwrap();
    let free0 = s.allocator().free_blocks();
    let written0 = s.stats().blocks_written;
    for i in 0..2000u32 {
        write(&s, t, u64::from(i % 4), i as u8);
    }
    // Four blocks live, and nothing the overwrites replaced was written.
    let used = free0 - s.allocator().free_blocks();
    assert!(used <= 8, "{used} blocks held by 2000 overwrites of 4");
    assert_eq!(s.stats().blocks_written, written0);
    assert!(s.cache.dirty_count() <= 8);
    for off in 0..4 {
        holds(&s, t, off, (1996 + off) as u8);
    }
    s.sync().unwrap();
    // The log holds the live inserts only: reopen, apply, check.
    drop(s);
    clean(&dev);
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    for off in 0..4 {
        holds(&s, t, off, (1996 + off) as u8);
    }
    assert!(s.checkpoint().unwrap());
    s.sync().unwrap();
    drop(s);
    clean(&dev);
}

#[test]
fn logged_overwrites_wait_for_the_tree() {
    // An insert a commit logged is not taken back: its block is freed when
    // the buffer reaches the tree, once, and a crash at any sync in between
    // opens clean with the synced contents.
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let free0 = s.allocator().free_blocks();
    let mut crashes = Vec::new();
    for round in 0..5u8 {
        for i in 0..50u8 {
            write(&s, t, u64::from(i % 3), round * 50 + i);
        }
        if round == 2 {
            // Applied: the chain goes stale, and what follows is unlogged.
            assert!(s.checkpoint().unwrap());
        }
        s.sync().unwrap();
        crashes.push((dev.snapshot(), round * 50));
        // Unsynced overwrites a crash loses.
        for i in 0..20u8 {
            write(&s, t, u64::from(i % 3), 255 - i);
        }
    }
    for (img, base) in crashes {
        let img = Arc::new(img);
        clean(&img);
        let s = open(&img);
        let t = s.mount("main").unwrap();
        // The round's last write of each block: 48, 49 and 47.
        for (off, last) in [(0, 48), (1, 49), (2, 47)] {
            holds(&s, t, off, base + last);
        }
        s.checkpoint().unwrap();
        s.sync().unwrap();
        drop(s);
        clean(&img);
    }
    s.checkpoint().unwrap();
    s.sync().unwrap();
    s.sync().unwrap();
    let used = free0 - s.allocator().free_blocks();
    assert!(
        used < 64,
        "{used} blocks still held after the buffer was applied"
    );
    drop(s);
    clean(&dev);
}

#[test]
fn readers_of_the_old_buffer_keep_their_block() {
    // A reader that found the replaced block before the overwrite reads
    // it intact: the block is not reused while the reader's guard lives.
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    write(&s, t, 0, 1);
    s.with_reader(t, |ctx, root| {
        let v = crate::tree::lookup(ctx, root, &key::dat(Q, 0))?.expect("data key");
        let bp = Bptr::from_slice(&v).unwrap();
        // Fewer frees than would make the writer wait for this reader.
        for i in 2..60u8 {
            write(&s, t, 0, i);
        }
        let b = ctx.read_data(&bp)?;
        assert!(b.bytes().iter().all(|&x| x == 1));
        Ok(())
    })
    .unwrap();
    holds(&s, t, 0, 59);
    s.sync().unwrap();
    drop(s);
    clean(&dev);
}
