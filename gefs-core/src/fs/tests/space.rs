//! Space accounting, bounded clearing, and walk cost at directory scale.

use std::time::Instant;

use super::*;
use crate::alloc::Tier;
use crate::format::msg::Msg;
use crate::format::Encode;

/// Blocks that may legitimately still be in use after everything was
/// removed: a few tree nodes, plus the data blocks whose `Clearb` messages
/// still wait in pivot buffers (a data block is freed when its message
/// reaches a leaf), at most one buffer's worth per pivot level.
fn slack(fs: &Fs, m: &Mount) -> u64 {
    let height = u64::from(fs.store().root(m.tree()).unwrap().height);
    let clearb = Msg::bare(crate::format::msg::Op::Clearb, key::dat(1, 0)).size();
    64 + (height - 1) * (crate::format::BUFSPC / clearb) as u64
}

/// Commit a few times, each with a small change: a commit releases the
/// frees an earlier one logged, and a commit with no change writes nothing.
fn settle_space(fs: &Fs, m: &Mount, root: &Entry) {
    for _ in 0..4 {
        let n = fs.store().next_qid();
        put(fs, m, root, &format!("settle{n}"), b"");
        fs.sync().unwrap();
    }
}

#[test]
fn space_returns_after_writing_and_removing_many_files() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    fs.sync().unwrap();
    let free0 = fs.store().allocator().free_blocks();
    for round in 0..3u64 {
        let mut made = Vec::new();
        for i in 0..60u64 {
            let n = ((i * 7919 + round) % 9) as usize * BLKSZ + (i as usize % 5) * 1000;
            made.push(put(&fs, &m, &root, &format!("f{round}-{i}"), &bytes(i, n)));
        }
        // Overwrite and truncate some, then remove them all.
        for (i, e) in made.iter().enumerate().step_by(3) {
            let o = fs.open(&m, e, ORDWR, &g).unwrap();
            fs.write(&o, 100, &bytes(99, 2 * BLKSZ), &g).unwrap();
            let c = Changes {
                length: Some((i * 500) as u64),
                ..Changes::default()
            };
            fs.wstat(&m, e, &c, &g).unwrap();
        }
        fs.sync().unwrap();
        for e in &made {
            fs.remove(&m, e, &g).unwrap();
        }
        fs.sync().unwrap();
    }
    settle_space(&fs, &m, &root);
    let free = fs.store().allocator().free_blocks();
    assert!(
        free + slack(&fs, &m) >= free0,
        "{free} of {free0} free blocks came back"
    );
}

#[test]
fn space_huge_remove_is_cleared_in_bounded_chunks() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let nblk = 1500usize;
    let o = fs.create(&m, &root, b"huge", 0o664, ORDWR, &g).unwrap();
    let chunk = bytes(5, MAX_IO);
    let mut off = 0u64;
    while off < (nblk * BLKSZ) as u64 {
        fs.write(&o, off, &chunk, &g).unwrap();
        off += MAX_IO as u64;
    }
    let nblk = off as usize / BLKSZ;
    fs.sync().unwrap();
    let free_full = fs.store().allocator().free_blocks();
    fs.remove(&m, o.entry(), &g).unwrap();
    let mut total = 0;
    let mut steps = 0;
    loop {
        let s = fs.sweep_step().unwrap();
        assert!(s.keys <= CLEAR_CHUNK, "a step cleared {} keys", s.keys);
        total += s.keys;
        steps += 1;
        // The writer lock is free between steps: others make progress.
        put(&fs, &m, &root, &format!("between{steps}"), b"x");
        if !s.more {
            break;
        }
    }
    assert_eq!(total, nblk);
    assert!(steps >= nblk / CLEAR_CHUNK);
    settle_space(&fs, &m, &root);
    let free = fs.store().allocator().free_blocks();
    assert!(
        free + slack(&fs, &m) >= free_full + nblk as u64,
        "{free} vs {free_full} + {nblk}"
    );
}

/// Fill directory `q` with `n` entries straight through the store.
fn fill_dir(fs: &Fs, m: &Mount, q: u64, n: usize) {
    let d = Xdir {
        qid_path: 0,
        mode: 0o644,
        ..Xdir::default()
    };
    for start in (0..n).step_by(2000) {
        let msgs = (start..n.min(start + 2000))
            .map(|i| {
                let x = Xdir {
                    qid_path: fs.store().next_qid(),
                    ..d
                };
                Msg::insert(key::ent(q, format!("entry{i:07}").as_bytes()), x.encode())
            })
            .collect();
        fs.store().upsert(m.tree(), msgs, Tier::Normal).unwrap();
    }
}

#[test]
fn walk_cost_in_a_100k_directory_vs_a_1k_one() {
    let dev = format(256 << 20);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let mut times = Vec::new();
    for (name, n) in [("small", 1_000usize), ("big", 100_000)] {
        let d = fs
            .create(&m, &root, name.as_bytes(), DMDIR | 0o775, OREAD, &g)
            .unwrap();
        fill_dir(&fs, &m, d.entry().qid.path, n);
        let walks = 2000;
        let t = Instant::now();
        for i in 0..walks {
            let el = format!("entry{:07}", (i * 7919) % n);
            let e = fs.walk(&m, d.entry(), el.as_bytes(), &g).unwrap();
            assert_eq!(e.name, el.as_bytes());
        }
        let per = t.elapsed() / walks as u32;
        println!("walk in a directory of {n} entries: {per:?} per walk");
        times.push(per);
    }
    println!(
        "walk cost ratio 100k/1k: {:.2}",
        times[1].as_secs_f64() / times[0].as_secs_f64()
    );
}

#[test]
fn a_write_that_fails_on_a_full_device_leaves_nothing_behind() {
    let dev = format(48 << 20);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    settle_space(&fs, &m, &root);
    let free0 = fs.store().allocator().free_blocks();
    let o = fs.create(&m, &root, b"fill", 0o664, ORDWR, &g).unwrap();
    let chunk = bytes(9, 1 << 20);
    let mut off = 0u64;
    let err = loop {
        match fs.write(&o, off, &chunk, &g) {
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
        if off.is_multiple_of(8 << 20) {
            fs.sync().unwrap();
        }
    };
    assert!(matches!(err, Error::NoSpace), "{err}");
    assert!(off > 16 << 20, "only {off} bytes fit");
    // The failed write changed nothing: the length is what succeeded.
    assert_eq!(fs.stat(&m, o.entry()).unwrap().dir.length, off);
    let tail = fs.read(&fs.open(&m, o.entry(), OREAD, &g).unwrap(), off - 10, 100);
    assert_eq!(tail.unwrap(), &chunk[chunk.len() - 10..]);
    // A full device still removes and syncs, and every block comes back.
    fs.remove(&m, o.entry(), &g).unwrap();
    fs.sync().unwrap();
    settle_space(&fs, &m, &root);
    let free = fs.store().allocator().free_blocks();
    assert!(
        free + slack(&fs, &m) >= free0,
        "{free} of {free0} came back"
    );
}

/// A remove commits with a durable note of its pending clear, so a crash
/// (here: the store is dropped without draining the clears) leaks nothing:
/// the next attach resumes the clear, and every block comes back. The data
/// space of a clear comes back at once, not when messages reach leaves.
#[test]
fn clears_survive_a_crash_and_free_eagerly() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    fs.sync().unwrap();
    let free0 = fs.store().allocator().free_blocks();
    let o = fs
        .create(&m, &root, b"big", 0o664, ORDWR, &glenda())
        .unwrap();
    let chunk = vec![7u8; MAX_IO];
    let mut off = 0u64;
    while off < 3000 * BLKSZ as u64 {
        off += fs.write(&o, off, &chunk, &glenda()).unwrap() as u64;
    }
    let e = fs.stat(&m, o.entry()).unwrap();
    drop(o);
    fs.sync().unwrap();
    fs.remove(&m, &e, &glenda()).unwrap();
    // Commit the remove with nearly all of its clear still pending.
    assert!(
        fs.sweep(1).unwrap(),
        "a 3000-block clear takes several steps"
    );
    fs.store().sync().unwrap();
    drop(m);
    drop(root);
    drop(fs);
    let clean = crate::check::check(&*dev, &crate::check::CheckOpts::default()).unwrap();
    assert!(clean.problems.is_empty(), "{:#?}", clean.problems);
    let fs = open(&dev);
    let (m, _root) = fs.attach("main").unwrap();
    assert!(
        fs.clears_pending() > 0,
        "the clear resumes after the restart"
    );
    fs.sync().unwrap();
    fs.store().sync().unwrap();
    let back = fs.store().allocator().free_blocks();
    assert!(
        back + 16 >= free0,
        "{back} of {free0} blocks free after the clear"
    );
    drop(m);
    drop(fs);
    let r = crate::check::check(&*dev, &crate::check::CheckOpts::default()).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
}

#[test]
fn overwrites_in_place_free_as_they_go() {
    // diodload's write: the same 64 KiB at offset 0 of one file, over and
    // over between two commits. Each write's blocks replace the previous
    // write's, which no log has seen: they are freed at once, never
    // written, and the image checks clean at every sync and after reopen.
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let e = put(&fs, &m, &root, "null", b"");
    fs.sync().unwrap();
    let free0 = fs.store().allocator().free_blocks();
    let written0 = fs.store().stats().blocks_written;
    let o = fs.open(&m, &e, ORDWR, &g).unwrap();
    for i in 0..500u64 {
        fs.write(&o, 0, &bytes(i, 4 * BLKSZ), &g).unwrap();
    }
    let used = free0 - fs.store().allocator().free_blocks();
    assert!(
        used <= 12,
        "{used} blocks held by 500 overwrites of 4 blocks"
    );
    assert_eq!(
        fs.store().stats().blocks_written,
        written0,
        "blocks written back before the commit"
    );
    assert_eq!(get(&fs, &m, &e), bytes(499, 4 * BLKSZ));
    fs.sync().unwrap();
    // A partial overwrite copies the block it replaces, which goes too.
    for i in 0..100u64 {
        fs.write(&o, 100, &bytes(1000 + i, 1000), &g).unwrap();
    }
    let mut want = bytes(499, 4 * BLKSZ);
    want[100..1100].copy_from_slice(&bytes(1099, 1000));
    assert_eq!(get(&fs, &m, &e), want);
    fs.sync().unwrap();
    drop(o);
    drop(m);
    drop(root);
    drop(fs);
    let r = crate::check::check(&*dev, &crate::check::CheckOpts::default()).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    let fs = open(&dev);
    let (m, _root) = fs.attach("main").unwrap();
    let e = walk_path(&fs, &m, &_root, "null", &glenda()).unwrap();
    assert_eq!(get(&fs, &m, &e), want);
    fs.store().checkpoint().unwrap();
    fs.sync().unwrap();
    drop(m);
    drop(fs);
    let r = crate::check::check(&*dev, &crate::check::CheckOpts::default()).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
}
