//! Space accounting against what deletion really frees: each snapshot's
//! unique space, predicted from the deadlists (or, for a tip, its tree),
//! must be what deleting it then returns, in every order; and the space
//! held only by snapshots must fall to nothing once they are gone.

use std::sync::Arc;

use super::*;
use crate::device::MemDev;
use crate::format::msg::Op;
use crate::format::BLKSZ_U64;
use crate::snap::Snaps;
use crate::store::{Store, TreeId};

fn setup() -> (Arc<MemDev>, Store) {
    crate::testing::fresh_store(64 << 20, 8 << 20)
}

fn data(s: &Store, t: TreeId, qid: u64, n: u64) {
    for i in 0..n {
        let bp = s
            .write_data(t, qid, true, Tier::Normal, |b| b.fill(qid as u8))
            .unwrap();
        let m = Msg::insert(key::dat(qid, i * 16384), bp.to_bytes().to_vec());
        s.upsert(t, vec![m], Tier::Normal).unwrap();
    }
}

fn clear(s: &Store, t: TreeId, qid: u64, n: u64) {
    for i in 0..n {
        let m = Msg::bare(Op::Clearb, key::dat(qid, i * 16384));
        s.upsert(t, vec![m], Tier::Reserve).unwrap();
    }
    // A clear frees its block when it reaches the leaf: apply the write
    // buffers, as a commit after clears does (`Fs::sync`, gefsd's commit).
    s.checkpoint().unwrap();
}

/// Blocks in use, not counting those waiting to be reused.
fn used(s: &Store) -> u64 {
    let st = s.allocator().stats();
    st.iter().map(|a| a.blocks - a.free - a.limbo).sum()
}

fn unique(s: &Store, label: &str) -> u64 {
    let l = Snaps::new(s).labels_space().unwrap();
    let l = l.iter().find(|l| l.name == label).unwrap();
    l.unique_bytes.unwrap() / BLKSZ_U64
}

/// Delete `label`, commit, and return the blocks that freed (the commit's
/// own snapshot-tree and log blocks could blur it by a block or two; in
/// practice they net out and the figures agree exactly).
fn delete(s: &Store, label: &str) -> u64 {
    let before = used(s);
    Snaps::new(s).delete(label).unwrap();
    s.sync().unwrap();
    before.saturating_sub(used(s))
}

fn close(predicted: u64, freed: u64, what: &str) {
    assert!(
        predicted.abs_diff(freed) <= 2,
        "{what}: predicted {predicted} blocks, deleting freed {freed}"
    );
}

#[test]
fn unique_space_is_what_deletion_frees_in_any_order() {
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 0, 2]] {
        let (_dev, s) = setup();
        let t = s.mount("main").unwrap();
        let names = ["a", "b", "c"];
        for (g, name) in names.iter().enumerate() {
            data(&s, t, 100 + g as u64, 30 + 10 * g as u64);
            clear(&s, t, 100 + g as u64, 10);
            Snaps::new(&s).take("main", name, false).unwrap();
            s.sync().unwrap();
        }
        for (g, _) in names.iter().enumerate() {
            clear(&s, t, 100 + g as u64, 30 + 10 * g as u64);
        }
        s.sync().unwrap();
        let held = Snaps::new(&s).space().unwrap().snapshots / BLKSZ_U64;
        // Every data block main dropped after a snapshot took it (20 + 30 +
        // 40) is held by snapshots, with the tree nodes they also hold.
        assert!((90..120).contains(&held), "snapshots hold {held} blocks");
        for &i in &order {
            let p = unique(&s, names[i]);
            let f = delete(&s, names[i]);
            close(p, f, &format!("order {order:?}, {}", names[i]));
        }
        assert_eq!(Snaps::new(&s).space().unwrap().snapshots, 0);
        assert!(Snaps::new(&s)
            .explain_full()
            .contains("no snapshot holds space"));
    }
}

#[test]
fn a_shared_snapshot_frees_nothing_and_a_tip_is_walked() {
    let (_dev, s) = setup();
    let t = s.mount("main").unwrap();
    data(&s, t, 100, 40);
    Snaps::new(&s).take("main", "a", false).unwrap();
    Snaps::new(&s).take("a", "a2", false).unwrap();
    s.sync().unwrap();
    clear(&s, t, 100, 40);
    s.sync().unwrap();
    // Two labels name one snapshot: deleting either frees nothing.
    assert_eq!((unique(&s, "a"), unique(&s, "a2")), (0, 0));
    let text = Snaps::new(&s).explain_full();
    assert!(text.contains("snapshots hold"), "{text}");
    close(0, delete(&s, "a2"), "a2");
    assert!(unique(&s, "a") >= 40);
    // A fork with its own snapshot; once the fork's label is gone, that
    // snapshot is a tip, and deleting it sweeps what only it holds.
    s.unmount(t);
    Snaps::new(&s).take("a", "fork", true).unwrap();
    s.sync().unwrap();
    let f = s.mount("fork").unwrap();
    data(&s, f, 200, 25);
    Snaps::new(&s).take("fork", "fs", false).unwrap();
    s.sync().unwrap();
    s.unmount(f);
    Snaps::new(&s).delete("fork").unwrap();
    s.sync().unwrap();
    let p = unique(&s, "fs");
    assert!(p >= 25, "tip fs holds {p} blocks");
    close(p, delete(&s, "fs"), "tip fs");
    let p = unique(&s, "a");
    close(p, delete(&s, "a"), "a");
    assert_eq!(Snaps::new(&s).space().unwrap().snapshots, 0);
}
