//! Snapshot tests: contents frozen at the snapshot, forks, deletion in
//! every order returning exactly the space only the deleted snapshot held.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::*;
use crate::check::{check_store, CheckOpts};
use crate::device::MemDev;
use crate::format::msg::Op;
use crate::format::Bptr;
use crate::format::Decode;
use crate::snap::Snaps;
use crate::store::overwrite_tests::{clean, holds, write};
use crate::store::{Store, TreeId};

const DEV: u64 = 64 << 20;

fn setup() -> (Arc<MemDev>, Store) {
    crate::testing::fresh_store(DEV, 8 << 20)
}

/// Open the store on `dev` again (8 MiB cache).
fn reopen(dev: &Arc<MemDev>) -> Store {
    crate::testing::open_store(dev, 8 << 20)
}

fn k(i: u64) -> Vec<u8> {
    key::conf(format!("k{i:05}").as_bytes())
}

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

fn dump(s: &Store, t: TreeId) -> Map {
    let mut out = Map::new();
    let mut last: Option<Vec<u8>> = None;
    loop {
        let from = match &last {
            Some(k) => Bound::Excluded(&k[..]),
            None => Bound::Included(&[key::KCONF][..]),
        };
        let b = s
            .scan(t, from, Bound::Excluded(&[key::KCONF + 1][..]), 500)
            .unwrap();
        if b.is_empty() {
            return out;
        }
        last = b.last().map(|(k, _)| k.clone());
        out.extend(b);
    }
}

fn data(s: &Store, t: TreeId, qid: u64, n: u64, fill: u8) {
    for i in 0..n {
        let bp = s
            .write_data(t, qid, true, Tier::Normal, |b| b.fill(fill))
            .unwrap();
        s.upsert(
            t,
            vec![Msg::insert(
                key::dat(qid, i * 16384),
                bp.to_bytes().to_vec(),
            )],
            Tier::Normal,
        )
        .unwrap();
    }
}

fn clear(s: &Store, t: TreeId, qid: u64, n: u64) {
    for i in 0..n {
        s.upsert(
            t,
            vec![Msg::bare(Op::Clearb, key::dat(qid, i * 16384))],
            Tier::Reserve,
        )
        .unwrap();
    }
}

fn assert_clean(dev: &Arc<MemDev>) {
    let r = check_store(
        &**dev,
        &CheckOpts {
            threads: 1,
            progress: None,
        },
    )
    .unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
}

fn used(s: &Store) -> u64 {
    s.allocator()
        .stats()
        .iter()
        .map(|a| a.blocks - a.free - a.limbo)
        .sum()
}

#[test]
fn a_snapshot_reads_back_as_it_was() {
    let (dev, s) = setup();
    let t = s.mount("main").unwrap();
    for i in 0..300 {
        s.upsert(t, vec![Msg::insert(k(i), vec![1; 100])], Tier::Normal)
            .unwrap();
    }
    let before = dump(&s, t);
    Snaps::new(&s).take("main", "monday", false).unwrap();
    for i in 0..300 {
        s.upsert(t, vec![Msg::insert(k(i), vec![2; 100])], Tier::Normal)
            .unwrap();
    }
    for i in 300..400 {
        s.upsert(t, vec![Msg::insert(k(i), vec![3; 10])], Tier::Normal)
            .unwrap();
    }
    let after = dump(&s, t);
    s.sync().unwrap();
    drop(s);
    let s = reopen(&dev);
    let mon = s.mount("monday").unwrap();
    assert_eq!(dump(&s, mon), before);
    assert!(matches!(
        s.upsert(mon, vec![Msg::insert(k(1), vec![])], Tier::Normal),
        Err(Error::ReadOnly)
    ));
    let t = s.mount("main").unwrap();
    assert_eq!(dump(&s, t), after);
    drop(s);
    assert_clean(&dev);
}

#[test]
fn deleting_snapshots_in_any_order_returns_the_space() {
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]] {
        let (dev, s) = setup();
        let t = s.mount("main").unwrap();
        s.sync().unwrap();
        let fresh = used(&s);
        let names = ["a", "b", "c"];
        for (g, name) in names.iter().enumerate() {
            data(&s, t, 100 + g as u64, 40, g as u8);
            clear(&s, t, 100 + g as u64, 20);
            Snaps::new(&s).take("main", name, false).unwrap();
            s.sync().unwrap();
        }
        // Everything still reachable; the snapshots hold what main dropped.
        assert_clean(&dev);
        for q in 100..103 {
            clear(&s, t, q, 40);
        }
        s.sync().unwrap();
        assert_clean(&dev);
        let lists = s
            .scan(
                TreeId::SNAP,
                Bound::Included(&[key::KDLIST][..]),
                Bound::Excluded(&[key::KDLIST + 1][..]),
                1000,
            )
            .unwrap();
        assert!(
            lists.len() >= 3,
            "the snapshots' blocks sit on deadlists ({})",
            lists.len()
        );
        for &i in &order {
            Snaps::new(&s).delete(names[i]).unwrap();
            s.sync().unwrap();
            assert_clean(&dev);
        }
        settle(&s, t);
        let now = used(&s);
        assert!(
            now <= fresh + 4,
            "order {order:?}: {now} blocks used, {fresh} when fresh"
        );
        assert!(s
            .labels()
            .unwrap()
            .iter()
            .all(|l| !names.contains(&l.name.as_str())));
        drop(s);
        assert_clean(&dev);
    }
}

#[test]
fn forks_diverge_and_deleting_them_returns_the_space() {
    let (dev, s) = setup();
    let t = s.mount("main").unwrap();
    s.sync().unwrap();
    let fresh = used(&s);
    data(&s, t, 100, 30, 1);
    s.sync().unwrap();
    Snaps::new(&s).take("main", "dev", true).unwrap();
    s.sync().unwrap();
    let f = s.mount("dev").unwrap();
    data(&s, f, 100, 10, 9);
    data(&s, f, 200, 10, 8);
    clear(&s, t, 100, 30);
    s.sync().unwrap();
    assert_clean(&dev);
    let fk = s.lookup(f, &key::dat(100, 20 * 16384)).unwrap().unwrap();
    assert_eq!(
        s.read_data(&Bptr::from_slice(&fk).unwrap())
            .unwrap()
            .bytes()[0],
        1,
        "the fork keeps the original's blocks"
    );
    assert!(s.lookup(t, &key::dat(100, 0)).unwrap().is_none());
    drop(s);
    let s = reopen(&dev);
    assert!(Snaps::new(&s).delete("adm").is_err());
    Snaps::new(&s).delete("dev").unwrap();
    s.sync().unwrap();
    assert_clean(&dev);
    let t = s.mount("main").unwrap();
    settle(&s, t);
    let now = used(&s);
    assert!(now <= fresh + 4, "{now} blocks used, {fresh} when fresh");
    drop(s);
    assert_clean(&dev);
}

#[test]
fn labels_share_records_and_mounted_trees_are_protected() {
    let (_dev, s) = setup();
    let t = s.mount("main").unwrap();
    s.upsert(t, vec![Msg::insert(k(1), vec![1])], Tier::Normal)
        .unwrap();
    let a = Snaps::new(&s).take("main", "x", false).unwrap();
    let b = Snaps::new(&s).take("x", "y", false).unwrap();
    assert_eq!(
        a, b,
        "a second label on an immutable snapshot names the same record"
    );
    assert!(matches!(
        Snaps::new(&s).take("main", "x", false),
        Err(Error::Exists(_))
    ));
    assert!(Snaps::new(&s).take("main", "dump", false).is_err());
    assert!(Snaps::new(&s).take("main", "a/b", false).is_err());
    assert!(Snaps::new(&s).take("nope", "z", false).is_err());
    Snaps::new(&s).delete("x").unwrap();
    let y = s.mount("y").unwrap();
    assert_eq!(s.lookup(y, &k(1)).unwrap(), Some(vec![1]));
    assert!(
        Snaps::new(&s).delete("y").is_err(),
        "a mounted snapshot is in use"
    );
    assert!(Snaps::new(&s).delete("main").is_err());
    s.sync().unwrap();
}

#[test]
fn configuration_is_global_or_per_label() {
    let (dev, s) = setup();
    Snaps::new(&s).set_conf(None, "retain", b"@1d").unwrap();
    Snaps::new(&s)
        .set_conf(Some("main"), "retain", b"")
        .unwrap();
    Snaps::new(&s).clear_conf(None, "nothing-here").unwrap();
    assert!(Snaps::new(&s)
        .set_conf(Some("empty"), "retain", b"1@1h")
        .is_err());
    s.sync().unwrap();
    drop(s);
    let s = reopen(&dev);
    assert_eq!(
        Snaps::new(&s).conf(Some("main"), "retain").unwrap(),
        Some(vec![])
    );
    assert_eq!(
        Snaps::new(&s).conf(Some("adm"), "retain").unwrap(),
        Some(b"@1d".to_vec())
    );
    assert_eq!(
        Snaps::new(&s).conf(None, "retain").unwrap(),
        Some(b"@1d".to_vec())
    );
}

fn record(s: &Store, label: &str) -> Option<TreeRec> {
    let id = s
        .labels()
        .unwrap()
        .into_iter()
        .find(|l| l.name == label)?
        .id;
    s.lookup(TreeId::SNAP, &key::snap(id))
        .unwrap()
        .map(|v| TreeRec::decode(&v).unwrap())
}

fn records(s: &Store) -> usize {
    s.scan(
        TreeId::SNAP,
        Bound::Included(&[key::KSNAP][..]),
        Bound::Excluded(&[key::KSNAP + 1][..]),
        10_000,
    )
    .unwrap()
    .len()
}

/// Apply the buffered messages (removals free their blocks only once they
/// reach the tree) and commit until every freed block is reusable.
fn settle(s: &Store, t: TreeId) {
    s.checkpoint().unwrap();
    for _ in 0..2 {
        s.upsert(t, vec![Msg::insert(k(0), vec![0])], Tier::Normal)
            .unwrap();
        s.upsert(t, vec![Msg::delete(k(0))], Tier::Normal).unwrap();
        s.sync().unwrap();
    }
}

/// Reference defect §13.2 #11: merging a deadlist into a non-empty one
/// relinked from a stale tail, orphaning earlier merges, and rewrote a
/// block in place outside the commit. Ours re-keys whole segments: delete
/// the middle snapshots one by one (each merge lands on the same
/// successor), and every block is still accounted for, then freed.
#[test]
fn regress_11_repeated_merges_keep_every_segment() {
    let (dev, s) = setup();
    let t = s.mount("main").unwrap();
    s.sync().unwrap();
    let fresh = used(&s);
    data(&s, t, 100, 60, 1);
    s.sync().unwrap();
    for i in 0..6u64 {
        Snaps::new(&s)
            .take("main", &format!("m{i}"), false)
            .unwrap();
        // Kill blocks the new snapshot holds: they go to deadlists.
        for b in (i * 10)..(i * 10 + 10) {
            s.upsert(
                t,
                vec![Msg::bare(Op::Clearb, key::dat(100, b * 16384))],
                Tier::Reserve,
            )
            .unwrap();
        }
        s.sync().unwrap();
    }
    // Delete m4, m3, m2, m1: each time the lists merge into the next one.
    for i in (1..5).rev() {
        Snaps::new(&s).delete(&format!("m{i}")).unwrap();
        s.sync().unwrap();
        assert_clean(&dev);
    }
    Snaps::new(&s).delete("m0").unwrap();
    Snaps::new(&s).delete("m5").unwrap();
    settle(&s, t);
    assert_clean(&dev);
    assert!(used(&s) <= fresh + 4, "{} used, {fresh} fresh", used(&s));
}

/// Reference defect §13.2 #12: label deletion never decremented `nlbl` on
/// disk, fork deletion never decremented the fork point's `nref`, so such
/// snapshots were never reclaimed. Ours keep both exact.
#[test]
fn regress_12_counts_are_exact_and_every_snapshot_is_reclaimed() {
    let (dev, s) = setup();
    let t = s.mount("main").unwrap();
    s.sync().unwrap();
    let (fresh, recs) = (used(&s), records(&s));
    data(&s, t, 100, 20, 1);
    // Two labels on one snapshot (the minute and hour labels coinciding).
    Snaps::new(&s).take("main", "main@minute.x", false).unwrap();
    Snaps::new(&s)
        .take("main@minute.x", "main@hour.x", false)
        .unwrap();
    assert_eq!(record(&s, "main@hour.x").unwrap().nlbl, 2);
    // A fork of it.
    Snaps::new(&s).take("main@hour.x", "fork", true).unwrap();
    assert_eq!(record(&s, "main@hour.x").unwrap().nref, 1);
    clear(&s, t, 100, 20);
    s.sync().unwrap();
    Snaps::new(&s).delete("main@minute.x").unwrap();
    assert_eq!(record(&s, "main@hour.x").unwrap().nlbl, 1);
    Snaps::new(&s).delete("main@hour.x").unwrap();
    s.sync().unwrap();
    // The fork still holds it: the record stays, unlabelled.
    assert_eq!(records(&s), recs + 2);
    Snaps::new(&s).delete("fork").unwrap();
    settle(&s, t);
    assert_eq!(records(&s), recs, "every record reclaimed");
    assert_clean(&dev);
    assert!(used(&s) <= fresh + 4, "{} used, {fresh} fresh", used(&s));
}

/// Reference defect §13.2 #25 (in part): blocks written at format time had
/// generation 0 and leaked when replaced. Ours are ordinary blocks: replacing
/// the formatted root of `main` many times leaves the used space unchanged.
#[test]
fn regress_25_formatted_blocks_are_reclaimed_when_replaced() {
    let (dev, s) = setup();
    let t = s.mount("main").unwrap();
    let before = used(&s);
    for i in 0..20u64 {
        s.upsert(t, vec![Msg::insert(k(i % 3), vec![i as u8])], Tier::Normal)
            .unwrap();
        s.sync().unwrap();
    }
    for i in 0..3 {
        s.upsert(t, vec![Msg::delete(k(i))], Tier::Normal).unwrap();
    }
    settle(&s, t);
    assert!(
        used(&s) <= before + 1,
        "{} used, {before} after formatting",
        used(&s)
    );
    assert_clean(&dev);
}

/// A label's tree is in use while mounted, and deletable once every holder
/// has unmounted it — also when its last changes are still uncommitted.
/// Postmortem: mounts were never released, so a snapshot that any client had attached to
/// stayed "in use" until gefsd restarted, and `snap -d` refused it.
#[test]
fn unmounted_trees_can_be_deleted() {
    let (dev, s) = setup();
    Snaps::new(&s).take("main", "fork", true).unwrap();
    let a = s.mount("fork").unwrap();
    let b = s.mount("fork").unwrap();
    assert_eq!(a, b);
    s.upsert(a, vec![Msg::insert(k(1), vec![1; 300])], Tier::Normal)
        .unwrap();
    assert!(Snaps::new(&s).delete("fork").is_err(), "two holders");
    s.unmount(a);
    assert!(Snaps::new(&s).delete("fork").is_err(), "one holder");
    s.unmount(b);
    Snaps::new(&s).delete("fork").unwrap();
    s.sync().unwrap();
    assert_clean(&dev);
    // Reusing the label reopens the slot with the new tree.
    Snaps::new(&s).take("main", "fork", true).unwrap();
    let c = s.mount("fork").unwrap();
    assert_eq!(s.lookup(c, &k(1)).unwrap(), None);
    s.unmount(c);
    s.sync().unwrap();
    assert_clean(&dev);
}

/// Upserts still in the write buffer are in a snapshot taken before they
/// reach the tree (moved here from the store's write-buffer tests).
#[test]
fn readers_and_snapshots_see_the_buffer() {
    let (_dev, s) = setup();
    let t = s.mount("main").unwrap();
    s.upsert(t, vec![Msg::insert(k(1), b"one".to_vec())], Tier::Normal)
        .unwrap();
    s.upsert(t, vec![Msg::insert(k(2), b"two".to_vec())], Tier::Normal)
        .unwrap();
    // Buffered: the tree itself does not hold them yet.
    let (tree_only, through_ctx) = s
        .with_reader(t, |ctx, root| {
            let bare = crate::tree::lookup(&ReadCtx::new(&s), root, &k(1))?;
            let seen = crate::tree::scan(ctx, root, Bound::Included(&k(0)), Bound::Unbounded, 10)?;
            Ok((bare, seen))
        })
        .unwrap();
    assert_eq!(tree_only, None);
    assert_eq!(
        through_ctx,
        vec![(k(1), b"one".to_vec()), (k(2), b"two".to_vec())]
    );
    // A snapshot taken now holds them.
    Snaps::new(&s).take("main", "snap1", false).unwrap();
    s.sync().unwrap();
    let snap = s.mount("snap1").unwrap();
    assert_eq!(s.lookup(snap, &k(2)).unwrap(), Some(b"two".to_vec()));
}

#[test]
fn a_snapshot_keeps_what_it_saw() {
    // Buffered overwrites (store/overwrite.rs) meet a snapshot: taking it
    // logs the buffer first, so the inserts it saw are no longer taken
    // back, and the snapshot reads its own contents.
    let (dev, s) = setup();
    let t = s.mount("main").unwrap();
    for i in 0..10u8 {
        write(&s, t, 0, i);
    }
    Snaps::new(&s).take("main", "old", false).unwrap();
    for i in 10..40u8 {
        write(&s, t, 0, i);
    }
    let old = s.mount("old").unwrap();
    holds(&s, old, 0, 9);
    holds(&s, t, 0, 39);
    s.sync().unwrap();
    s.unmount(old);
    drop(s);
    clean(&dev);
    let s = reopen(&dev);
    let old = s.mount("old").unwrap();
    let t = s.mount("main").unwrap();
    holds(&s, old, 0, 9);
    holds(&s, t, 0, 39);
    s.unmount(old);
    Snaps::new(&s).delete("old").unwrap();
    s.checkpoint().unwrap();
    s.sync().unwrap();
    drop(s);
    clean(&dev);
}
