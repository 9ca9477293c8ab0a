//! A scripted workload on the store's `main` tree and its reference model:
//! the exact key/value map the tree must hold after each operation, and a
//! copy of it at every completed commit.

use std::collections::BTreeMap;
use std::ops::Bound;

use gefs_core::alloc::Tier;
use gefs_core::format::key;
use gefs_core::format::msg::Msg;
use gefs_core::format::Bptr;
use gefs_core::snap::Snaps;
use gefs_core::store::{Store, TreeId};
use gefs_core::Result;

use crate::rng::Rng;

/// The expected contents of one tree.
pub type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of a workload.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert or overwrite small keys.
    Put(Vec<(Vec<u8>, Vec<u8>)>),
    /// Delete keys (present or not).
    Del(Vec<Vec<u8>>),
    /// Write a data block for (qid, block) and point a `KDAT` key at it
    /// (freeing any block it replaces).
    Data {
        /// The file.
        qid: u64,
        /// Block number within it.
        blk: u64,
        /// The byte the block is filled with.
        fill: u8,
    },
    /// Remove a `KDAT` key (its block is freed).
    Clear {
        /// The file.
        qid: u64,
        /// Block number within it.
        blk: u64,
    },
    /// Take an immutable snapshot of `main`.
    Snap(String),
    /// Delete a snapshot label.
    DelSnap(String),
    /// Commit.
    Sync,
}

/// A seeded workload of `n` steps with a sync roughly every `sync_every`.
pub fn workload(seed: u64, n: usize, sync_every: u64) -> Vec<Op> {
    workload_with(seed, n, sync_every, &[])
}

/// A seeded workload that also takes and deletes snapshots of `main`,
/// never reusing a name in `taken` (snapshots that already exist).
pub fn workload_with(seed: u64, n: usize, sync_every: u64, taken: &[String]) -> Vec<Op> {
    let mut r = Rng::new(seed);
    let mut ops = Vec::with_capacity(n + 1);
    let mut live: Vec<String> = taken.to_vec();
    let mut next = 0;
    for _ in 0..n {
        if r.chance(1, 14) {
            if live.len() < 4 || r.chance(1, 3) {
                let name = format!("snap{seed}.{next}");
                next += 1;
                live.push(name.clone());
                ops.push(Op::Snap(name));
            } else {
                let i = r.below(live.len() as u64) as usize;
                ops.push(Op::DelSnap(live.swap_remove(i)));
            }
            continue;
        }
        let op = match r.below(10) {
            0..=3 => Op::Put(
                (0..1 + r.below(12))
                    .map(|_| {
                        let k = conf_key(r.below(600));
                        let len = [8, 40, 200, 500][r.below(4) as usize];
                        (k, vec![r.next_u64() as u8; len])
                    })
                    .collect(),
            ),
            4 => Op::Del(
                (0..1 + r.below(8))
                    .map(|_| conf_key(r.below(600)))
                    .collect(),
            ),
            5..=7 => Op::Data {
                qid: 100 + r.below(6),
                blk: r.below(24),
                fill: r.next_u64() as u8,
            },
            _ => Op::Clear {
                qid: 100 + r.below(6),
                blk: r.below(24),
            },
        };
        ops.push(op);
        if r.chance(1, sync_every) {
            ops.push(Op::Sync);
        }
    }
    ops.push(Op::Sync);
    ops
}

/// A configuration-family key (the engine is agnostic of key families).
pub fn conf_key(i: u64) -> Vec<u8> {
    key::conf(format!("k{i:05}").as_bytes())
}

/// What the image must hold: `main` and every snapshot label's contents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State {
    /// The `main` tree.
    pub main: Map,
    /// Each snapshot label (besides main, adm and empty).
    pub snaps: BTreeMap<String, Map>,
}

/// The model: current contents, and contents at every commit.
#[derive(Debug, Default, Clone)]
pub struct Model {
    /// After the last operation.
    pub now: Map,
    /// Snapshots after the last operation.
    pub snaps: BTreeMap<String, Map>,
    /// At each commit generation.
    pub at: BTreeMap<u64, State>,
}

impl Model {
    /// Start from the store's current contents of `t` (at its commit),
    /// with no snapshots besides the image's own labels.
    pub fn start(s: &Store, t: TreeId) -> Result<Model> {
        let now = dump(s, t)?;
        let mut m = Model {
            now,
            ..Model::default()
        };
        m.at.insert(s.commit_gen(), m.state());
        Ok(m)
    }

    /// The current state.
    pub fn state(&self) -> State {
        State {
            main: self.now.clone(),
            snaps: self.snaps.clone(),
        }
    }
}

/// Every key of tree `t`.
pub fn dump(s: &Store, t: TreeId) -> Result<Map> {
    let mut out = Map::new();
    let mut from: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let lo = if first {
            Bound::Unbounded
        } else {
            Bound::Excluded(&from[..])
        };
        let batch = s.scan(t, lo, Bound::Unbounded, 1000)?;
        if batch.is_empty() {
            return Ok(out);
        }
        first = false;
        from = batch.last().map(|(k, _)| k.clone()).unwrap_or_default();
        out.extend(batch);
    }
}

/// Apply one operation to the store and the model. A failed operation
/// leaves the model as it was (the store promises atomic batches).
pub fn apply(s: &Store, t: TreeId, m: &mut Model, op: &Op) -> Result<()> {
    match op {
        Op::Put(kvs) => {
            let msgs = kvs
                .iter()
                .map(|(k, v)| Msg::insert(k.clone(), v.clone()))
                .collect();
            s.upsert(t, msgs, Tier::Normal)?;
            for (k, v) in kvs {
                m.now.insert(k.clone(), v.clone());
            }
        }
        Op::Del(ks) => {
            s.upsert(
                t,
                ks.iter().map(|k| Msg::delete(k.clone())).collect(),
                Tier::Reserve,
            )?;
            for k in ks {
                m.now.remove(k);
            }
        }
        Op::Data { qid, blk, fill } => {
            let bp = s.write_data(t, *qid, true, Tier::Normal, |b| b.fill(*fill))?;
            let k = key::dat(*qid, blk * 16384);
            let v = bp.to_bytes().to_vec();
            if let Err(e) = s.upsert(t, vec![Msg::insert(k.clone(), v.clone())], Tier::Normal) {
                let _ = s.discard_data(t, &bp);
                return Err(e);
            }
            m.now.insert(k, v);
        }
        Op::Clear { qid, blk } => {
            let k = key::dat(*qid, blk * 16384);
            s.upsert(
                t,
                vec![Msg::bare(gefs_core::format::msg::Op::Clearb, k.clone())],
                Tier::Reserve,
            )?;
            m.now.remove(&k);
        }
        Op::Snap(name) => {
            Snaps::new(s).take("main", name, false)?;
            m.snaps.insert(name.clone(), m.now.clone());
        }
        Op::DelSnap(name) => {
            Snaps::new(s).delete(name)?;
            m.snaps.remove(name);
        }
        Op::Sync => {
            let c = s.sync()?;
            let st = m.state();
            m.at.insert(c.gen, st);
        }
    }
    Ok(())
}

/// How a (possibly damaged) image read back against the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// Every label, key, value and data block exactly as the model says.
    Exact,
    /// The store refused: a read failed with an error (corruption, I/O, open).
    Refused(String),
    /// The store answered, and the answer differs from the model: silent damage.
    Wrong(String),
}

/// Compare the store with `want`: `main`, the set of snapshot labels and every snapshot.
pub fn verify_state(s: &Store, want: &State) -> std::result::Result<(), String> {
    match read_back(s, want) {
        ReadBack::Exact => Ok(()),
        ReadBack::Refused(e) | ReadBack::Wrong(e) => Err(e),
    }
}

/// [`verify_state`], telling a refusal from a wrong answer.
pub fn read_back(s: &Store, want: &State) -> ReadBack {
    let t = match s.mount("main") {
        Ok(t) => t,
        Err(e) => return ReadBack::Refused(format!("mount main: {e}")),
    };
    let r = read_tree(s, t, &want.main);
    if r != ReadBack::Exact {
        return r;
    }
    let labels = match s.labels() {
        Ok(l) => l,
        Err(e) => return ReadBack::Refused(format!("labels: {e}")),
    };
    let have: Vec<&str> = labels
        .iter()
        .map(|l| l.name.as_str())
        .filter(|n| !["main", "adm", "empty"].contains(n))
        .collect();
    let expect: Vec<&str> = want.snaps.keys().map(String::as_str).collect();
    if have != expect {
        return ReadBack::Wrong(format!("labels {have:?}, expected {expect:?}"));
    }
    for (name, map) in &want.snaps {
        let t = match s.mount(name) {
            Ok(t) => t,
            Err(e) => return ReadBack::Refused(format!("mount {name}: {e}")),
        };
        match read_tree(s, t, map) {
            ReadBack::Exact => {}
            ReadBack::Refused(e) => return ReadBack::Refused(format!("snapshot {name}: {e}")),
            ReadBack::Wrong(e) => return ReadBack::Wrong(format!("snapshot {name}: {e}")),
        }
    }
    ReadBack::Exact
}

/// Check that tree `t` holds exactly `want`, and that every data block it
/// points to reads back (its hash verified).
pub fn verify(s: &Store, t: TreeId, want: &Map) -> std::result::Result<(), String> {
    match read_tree(s, t, want) {
        ReadBack::Exact => Ok(()),
        ReadBack::Refused(e) | ReadBack::Wrong(e) => Err(e),
    }
}

fn read_tree(s: &Store, t: TreeId, want: &Map) -> ReadBack {
    let got = match dump(s, t) {
        Ok(g) => g,
        Err(e) => return ReadBack::Refused(format!("scan: {e}")),
    };
    if &got != want {
        let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
        let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
        let differ = want
            .iter()
            .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
            .count();
        return ReadBack::Wrong(format!(
            "tree differs from the model: {missing} missing, {extra} extra, {differ} changed"
        ));
    }
    for (k, v) in &got {
        if k.first() == Some(&key::KDAT) {
            let Ok(bp) = Bptr::from_slice(v) else {
                return ReadBack::Wrong("bad data pointer".to_string());
            };
            if let Err(e) = s.read_data(&bp) {
                return ReadBack::Refused(format!("data block: {e}"));
            }
        }
    }
    ReadBack::Exact
}
