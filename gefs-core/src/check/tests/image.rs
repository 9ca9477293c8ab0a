//! Populated images, where their blocks are, and the clean, leak and
//! reachable-but-free cases.

use std::sync::Arc;

use super::{run, run_store, show};
use crate::alloc::{replay, Tier};
use crate::check::sb::sb_b_addr;
use crate::check::Kind;
use crate::device::{Device, MemDev};
use crate::format::log::{decode_entries, payload, LogEntry, LogHeader};
use crate::format::msg::Msg;
use crate::format::superblock::Superblock;
use crate::format::value::Xdir;
use crate::format::Encode;
use crate::format::{block_hash, key, Bptr, BLKSZ, BLKSZ_U64, LOG_HDR};
use crate::ids::BlockAddr;
use crate::snap::Snaps;
use crate::store::{Config, Store, TreeId};
use crate::tree::{data_ptrs, walk};

/// Bytes of a test image.
pub(crate) const DEV: u64 = 64 << 20;

/// A populated image and its durable states after each commit, oldest first
/// (the last one is the image itself).
pub(crate) struct Img {
    pub dev: Arc<MemDev>,
    pub history: Vec<MemDev>,
}

fn conf_key(tag: &str, i: u64) -> Vec<u8> {
    key::conf(format!("{tag}{i:08}").as_bytes())
}

/// Format, then fill `main` (KCONF records, directory entries and data
/// blocks with their KDAT pointers, a consistent file system) and the
/// snapshot tree (KCONF records) over several commits, so that both trees
/// have height ≥ 2 and the logs have several entries.
pub(crate) fn build() -> Img {
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(8 << 20);
    let s = Store::format(dev.clone(), &opts).unwrap();
    let mut history = vec![dev.snapshot()];
    let t = s.mount("main").unwrap();
    // Three files holding the data, long enough for all of it.
    let files: Vec<u64> = (0..3).map(|_| s.next_qid()).collect();
    let msgs = files
        .iter()
        .map(|&q| {
            let d = Xdir {
                qid_path: q,
                mode: 0o644,
                length: 120 * BLKSZ_U64,
                ..Xdir::default()
            };
            Msg::insert(key::ent(0, format!("data{q}").as_bytes()), d.encode())
        })
        .collect();
    s.upsert(t, msgs, Tier::Normal).unwrap();
    for round in 0..4u64 {
        for batch in 0..10u64 {
            let msgs = (0..100)
                .map(|i| {
                    let n = round * 600 + batch * 100 + i;
                    Msg::insert(conf_key("k", n), vec![round as u8; 100])
                })
                .collect();
            s.upsert(t, msgs, Tier::Normal).unwrap();
        }
        let mut msgs = Vec::new();
        for j in 0..30u64 {
            let qid = files[(j % 3) as usize];
            let off = (round * 30 + j) * BLKSZ_U64;
            let bp = s
                .write_data(t, qid, true, Tier::Normal, |b| {
                    b[..8].copy_from_slice(&(qid ^ off).to_be_bytes());
                    b[BLKSZ - 1] = round as u8;
                })
                .unwrap();
            msgs.push(Msg::insert(key::dat(qid, off), bp.to_bytes().to_vec()));
            let d = Xdir {
                qid_path: s.next_qid(),
                mode: 0o644,
                ..Xdir::default()
            };
            let name = format!("f{round}.{j}");
            msgs.push(Msg::insert(key::ent(0, name.as_bytes()), d.encode()));
        }
        s.upsert(t, msgs, Tier::Normal).unwrap();
        let msgs = (0..60)
            .map(|i| Msg::insert(conf_key("s", round * 40 + i), vec![7; 200]))
            .collect();
        s.upsert(TreeId::SNAP, msgs, Tier::Normal).unwrap();
        // Odd rounds apply the buffered messages to the tree; even ones
        // leave them in the message log.
        if round % 2 == 1 {
            s.checkpoint().unwrap();
        }
        s.sync().unwrap();
        history.push(dev.snapshot());
    }
    drop(s);
    Img { dev, history }
}

/// Read and decode the superblock copy at `addr`.
pub(crate) fn read_superblock(dev: &dyn Device, addr: BlockAddr) -> crate::Result<Superblock> {
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, addr.0).unwrap();
    Superblock::decode(&b, addr)
}

/// Where the blocks of each class are.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub snap_pivots: Vec<BlockAddr>,
    pub snap_leaves: Vec<BlockAddr>,
    pub fs_pivots: Vec<BlockAddr>,
    pub fs_leaves: Vec<BlockAddr>,
    pub data: Vec<BlockAddr>,
    pub logs: Vec<BlockAddr>,
    pub sb: Option<Superblock>,
}

/// Find the blocks through the store and the allocator (not the checker).
pub(crate) fn layout(dev: &MemDev) -> Layout {
    let d = Arc::new(dev.snapshot());
    let cfg = Config {
        cache_bytes: 8 << 20,
        read_only: true,
    };
    let s = Store::open(d.clone(), &cfg).unwrap();
    let mut l = Layout::default();
    s.with_reader(TreeId::SNAP, |ctx, root| {
        walk(ctx, root, |bp, v| {
            match v.is_leaf() {
                true => l.snap_leaves.push(bp.addr),
                false => l.snap_pivots.push(bp.addr),
            }
            Ok(())
        })
    })
    .unwrap();
    let t = s.mount("main").unwrap();
    s.with_reader(t, |ctx, root| {
        walk(ctx, root, |bp, v| {
            match v.is_leaf() {
                true => l.fs_leaves.push(bp.addr),
                false => l.fs_pivots.push(bp.addr),
            }
            Ok(())
        })?;
        data_ptrs(ctx, root, |bp| {
            l.data.push(bp.addr);
            Ok(())
        })
    })
    .unwrap();
    let sb = read_superblock(&*d, BlockAddr(0)).unwrap();
    for (i, rec) in sb.arenas.iter().enumerate() {
        let r = replay(&*d, &sb.geometry, i as u32, rec).unwrap();
        l.logs.extend(r.chain.iter().map(|p| p.addr));
    }
    l.sb = Some(sb);
    l
}

#[test]
fn clean_images_check_clean() {
    let img = build();
    for (i, state) in img.history.iter().enumerate() {
        let r = run(state);
        assert!(
            r.problems.is_empty() && r.warnings.is_empty(),
            "state {i}:\n{}",
            show(&r)
        );
        assert_eq!(r.superblock.used, "A");
    }
    let r = run(&*img.dev);
    let l = layout(&img.dev);
    assert!(
        !l.snap_pivots.is_empty() && !l.fs_pivots.is_empty(),
        "{l:?}"
    );
    let main = r.trees.iter().find(|t| t.labels == ["main"]).unwrap();
    assert!(main.height >= 2);
    assert_eq!(main.data_blocks, l.data.len() as u64);
    assert_eq!(main.pivots, l.fs_pivots.len() as u64);
    assert_eq!(main.leaves, l.fs_leaves.len() as u64);
    assert_eq!(r.trees[0].pivots, l.snap_pivots.len() as u64);
    assert_eq!(r.trees.len(), 4, "snapshot tree + empty, adm, main");
    assert_eq!(r.stats.labels, 3);
    assert_eq!(r.stats.log_blocks, l.logs.len() as u64);
    assert_eq!(r.stats.leaked_blocks, 0);
    // Every allocated block was checked: allocated = blocks - free.
    let g = l.sb.unwrap().geometry;
    let allocated = u64::from(g.narena) * g.arena_blocks() - r.stats.free_blocks;
    assert_eq!(r.stats.blocks_checked, allocated);
}

#[test]
fn one_thread_and_many_agree() {
    let img = build();
    let opts = |threads| super::super::CheckOpts {
        threads,
        progress: None,
    };
    let a = super::super::check(&*img.dev, &opts(1)).unwrap();
    let b = super::super::check(&*img.dev, &opts(5)).unwrap();
    assert_eq!(a.trees, b.trees);
    assert_eq!(a.stats.blocks_checked, b.stats.blocks_checked);
    assert!(a.problems.is_empty() && b.problems.is_empty());
}

#[test]
fn unreferenced_data_block_is_a_leak() {
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(8 << 20);
    let s = Store::format(dev.clone(), &opts).unwrap();
    let t = s.mount("main").unwrap();
    let bp = s
        .write_data(t, 5, true, Tier::Normal, |b| b[0] = 1)
        .unwrap();
    s.upsert(
        t,
        vec![Msg::insert(conf_key("x", 1), vec![1])],
        Tier::Normal,
    )
    .unwrap();
    s.sync().unwrap();
    drop(s);
    let r = run(&*dev);
    assert_eq!(r.problems.len(), 1, "{}", show(&r));
    let p = &r.problems[0];
    assert_eq!((p.kind, p.addr, p.blocks), (Kind::Leak, Some(bp.addr.0), 1));
    assert_eq!(r.stats.leaked_blocks, 1);
}

/// Rewrite the allocation log of `addr`'s arena (and both superblocks) so
/// that it records `addr` as freed by the last commit: a consistent log that
/// contradicts the trees.
pub(crate) fn log_free(dev: &MemDev, addr: BlockAddr) {
    let mut sb = read_superblock(dev, BlockAddr(0)).unwrap();
    let i = sb.geometry.arena_of(addr).unwrap() as usize;
    let tail = sb.arenas[i].log_tail;
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, tail.addr.0).unwrap();
    let mut h = LogHeader::decode(&b).unwrap();
    let mut es = decode_entries(payload(&b, &h)).unwrap();
    let sync = es.pop().unwrap();
    es.push(LogEntry::Free {
        addr: addr.0,
        len: BLKSZ_U64,
    });
    es.push(sync);
    let mut p = Vec::new();
    for e in &es {
        e.encode(&mut p);
    }
    h.nbytes = p.len();
    let mut nb = Box::new([0u8; BLKSZ]);
    h.encode(&mut nb);
    nb[LOG_HDR..LOG_HDR + p.len()].copy_from_slice(&p);
    dev.write_at(&nb[..], tail.addr.0).unwrap();
    sb.arenas[i].log_tail = Bptr {
        hash: block_hash(&nb[..]),
        ..tail
    };
    sb.arenas[i].free_blocks += 1;
    let enc = sb.encode();
    dev.write_at(&enc[..], 0).unwrap();
    dev.write_at(&enc[..], sb_b_addr(dev.size()).0).unwrap();
}

#[test]
fn reachable_block_marked_free() {
    let img = build();
    let l = layout(&img.dev);
    for victim in [l.fs_leaves[1], l.data[3], l.snap_leaves[0]] {
        let dev = img.dev.snapshot();
        log_free(&dev, victim);
        // The store accepts the log: only a check finds the contradiction.
        let cfg = Config {
            cache_bytes: 1 << 20,
            read_only: true,
        };
        assert!(Store::open(Arc::new(dev.snapshot()), &cfg).is_ok());
        let r = run(&dev);
        assert_eq!(r.problems.len(), 1, "{}", show(&r));
        let p = &r.problems[0];
        assert_eq!((p.kind, p.addr), (Kind::ReachableFree, Some(victim.0)));
    }
}

#[test]
fn reference_from_two_parents_is_reported() {
    // Point a second KDAT key at a data block the tree already holds.
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(8 << 20);
    let s = Store::format(dev.clone(), &opts).unwrap();
    let t = s.mount("main").unwrap();
    let bp = s
        .write_data(t, 5, true, Tier::Normal, |b| b[0] = 1)
        .unwrap();
    let v = bp.to_bytes().to_vec();
    let msgs = vec![
        Msg::insert(key::dat(5, 0), v.clone()),
        Msg::insert(key::dat(6, 0), v),
    ];
    s.upsert(t, msgs, Tier::Normal).unwrap();
    s.sync().unwrap();
    drop(s);
    let r = run_store(&*dev);
    assert_eq!(r.problems.len(), 1, "{}", show(&r));
    assert_eq!(
        (r.problems[0].kind, r.problems[0].addr),
        (Kind::Shared, Some(bp.addr.0))
    );
}

#[test]
fn deadlists_are_followed_and_keep_their_blocks() {
    use crate::format::log::LogHeader;
    use crate::format::value::DlistVal;
    use crate::format::BlockType;
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(8 << 20);
    let s = Store::format(dev.clone(), &opts).unwrap();
    let t = s.mount("main").unwrap();
    // A block no tree references, kept allocated by a deadlist entry.
    let kept = s
        .write_data(t, 5, true, Tier::Normal, |b| b[0] = 9)
        .unwrap();
    let seg = |seq: u64, prev: Bptr, addrs: Vec<u64>| {
        move |b: &mut [u8; BLKSZ]| {
            LogHeader {
                kind: BlockType::Dlist,
                nbytes: 8 * addrs.len(),
                seq,
                prev,
            }
            .encode(b);
            for (i, a) in addrs.iter().enumerate() {
                b[LOG_HDR + 8 * i..LOG_HDR + 8 * i + 8].copy_from_slice(&a.to_be_bytes());
            }
        }
    };
    let tail = s
        .write_data(
            TreeId::SNAP,
            0,
            false,
            Tier::Normal,
            seg(0, Bptr::NONE, vec![]),
        )
        .unwrap();
    let head = s
        .write_data(
            TreeId::SNAP,
            0,
            false,
            Tier::Normal,
            seg(1, tail, vec![kept.addr.0]),
        )
        .unwrap();
    let v = DlistVal { head, tail }.encode();
    s.upsert(
        TreeId::SNAP,
        vec![Msg::insert(key::dlist(3, 1, 0), v)],
        Tier::Normal,
    )
    .unwrap();
    s.sync().unwrap();
    drop(s);
    let r = run(&*dev);
    assert!(r.problems.is_empty(), "{}", show(&r));
    assert_eq!(r.stats.deadlist_blocks, 2);
    assert_eq!(r.stats.deadlisted_blocks, 1);
    // A damaged segment block is reported; what it kept becomes a leak.
    let bad = dev.snapshot();
    bad.write_at(&[0xff; 8], tail.addr.0 + 100).unwrap();
    let r = run(&bad);
    assert!(
        r.problems
            .iter()
            .any(|p| p.addr == Some(tail.addr.0) && p.kind == Kind::Hash),
        "{}",
        show(&r)
    );
}

/// An image whose `main` has two snapshots and overwrites between them, so
/// that trees share blocks and deadlist segments exist; also returns the
/// open store.
pub(crate) fn build_with_snapshots() -> (Img, Store) {
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(8 << 20);
    let s = Store::format(dev.clone(), &opts).unwrap();
    let mut history = vec![dev.snapshot()];
    let t = s.mount("main").unwrap();
    let file = s.next_qid();
    let d = Xdir {
        qid_path: file,
        mode: 0o644,
        length: 20 * BLKSZ_U64,
        ..Xdir::default()
    };
    s.upsert(
        t,
        vec![Msg::insert(key::ent(0, b"data"), d.encode())],
        Tier::Normal,
    )
    .unwrap();
    for round in 1..=3u64 {
        for batch in 0..5u64 {
            let msgs = (0..200)
                .map(|i| Msg::insert(conf_key("k", batch * 200 + i), vec![round as u8; 90]))
                .collect();
            s.upsert(t, msgs, Tier::Normal).unwrap();
        }
        let mut msgs = Vec::new();
        for j in 0..20u64 {
            let bp = s
                .write_data(t, file, true, Tier::Normal, |b| b[0] = round as u8)
                .unwrap();
            msgs.push(Msg::insert(
                key::dat(file, j * BLKSZ_U64),
                bp.to_bytes().to_vec(),
            ));
        }
        s.upsert(t, msgs, Tier::Normal).unwrap();
        // Round 2's messages stay in main's message log, which snap2 then
        // shares; the other rounds apply them to the tree.
        if round != 2 {
            s.checkpoint().unwrap();
        }
        s.sync().unwrap();
        history.push(dev.snapshot());
        if round < 3 {
            Snaps::new(&s)
                .take("main", &format!("snap{round}"), false)
                .unwrap();
        }
    }
    s.sync().unwrap();
    history.push(dev.snapshot());
    (Img { dev, history }, s)
}

/// Every deadlist block of the image the store has open.
pub(crate) fn deadlist_blocks(s: &Store) -> Vec<BlockAddr> {
    let mut out = Vec::new();
    for l in s.labels().unwrap() {
        for seg in Snaps::new(s).segments(l.id).unwrap() {
            let mut bp = seg.val.head;
            loop {
                out.push(bp.addr);
                if bp == seg.val.tail {
                    break;
                }
                let b = {
                    let mut b = vec![0u8; BLKSZ];
                    s.device().read_at(&mut b, bp.addr.0).unwrap();
                    b
                };
                bp = LogHeader::decode(&b).unwrap().prev;
            }
        }
    }
    out
}

#[test]
fn snapshots_and_their_deadlists_check_clean() {
    let (img, s) = build_with_snapshots();
    let r = run(&*img.dev);
    assert!(
        r.problems.is_empty() && r.warnings.is_empty(),
        "{}",
        show(&r)
    );
    assert!(r.stats.shared_blocks > 0, "{:?}", r.stats);
    assert_eq!(r.stats.deadlist_blocks, deadlist_blocks(&s).len() as u64);
    assert!(r.stats.deadlist_blocks > 0);
    let names: Vec<&str> = r
        .trees
        .iter()
        .flat_map(|t| &t.labels)
        .map(String::as_str)
        .collect();
    assert!(
        names.contains(&"snap1") && names.contains(&"snap2"),
        "{names:?}"
    );
    Snaps::new(&s).delete("snap1").unwrap();
    let t = s.mount("main").unwrap();
    s.upsert(
        t,
        vec![Msg::insert(conf_key("k", 1), vec![9; 90])],
        Tier::Normal,
    )
    .unwrap();
    s.sync().unwrap();
    let r = run(&*img.dev);
    assert!(
        r.problems.is_empty() && r.warnings.is_empty(),
        "{}",
        show(&r)
    );
}
