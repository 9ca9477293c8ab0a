//! Model-based test (T4): seeded random operations against an in-memory
//! model (path → kind, mode, owner, group, bytes), checked after every
//! operation, with commits and reopens (drop the `Fs` and `Store`, open
//! again from the same `MemDev`) at random points.
//!
//! Snapshots: the model keeps one [`MTree`] per label (`Harness::trees`).
//! [`Op::Snap`] takes an immutable snapshot of `main` through the store and
//! clones the model's `main` under the new label; from then on
//! [`Harness::check_all`] verifies every label, across commits and reopens,
//! and a change to a snapshot must fail with [`Error::ReadOnly`]. Further
//! snapshot operations (forks, which are mutable trees of their own, and
//! label deletion) plug in the same way: a variant of [`Op`], a weight in
//! [`Harness::pick`], and the matching change to `trees`.

use std::collections::BTreeMap;

use super::*;
use crate::snap::Snaps;
use crate::testing::Rng;

/// Names entries are drawn from (few, so collisions happen).
const NAMES: [&str; 8] = ["a", "b", "c", "dd", "e", "long-name-f", "g", "h"];

/// One expected entry.
#[derive(Debug, Clone)]
struct MNode {
    is_dir: bool,
    mode: u32,
    gid: i32,
    data: Vec<u8>,
}

/// One tree's expected contents; "" is the root.
#[derive(Debug, Clone, Default)]
struct MTree {
    nodes: BTreeMap<String, MNode>,
}

impl MTree {
    fn children(&self, dir: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|p| !p.is_empty() && parent(p) == dir)
            .cloned()
            .collect()
    }
}

fn parent(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The operations.
#[derive(Debug)]
enum Op {
    Create {
        dir: String,
        name: &'static str,
        is_dir: bool,
        perm: u32,
    },
    Write {
        path: String,
        off: u64,
        len: usize,
        seed: u64,
    },
    Truncate {
        path: String,
        len: u64,
    },
    Rename {
        path: String,
        name: &'static str,
    },
    Remove {
        path: String,
    },
    Chmod {
        path: String,
        perm: u32,
    },
    Chgrp {
        path: String,
        gid: i32,
    },
    Read {
        path: String,
        off: u64,
        len: usize,
    },
    Sweep {
        steps: usize,
    },
    Reopen,
    Snap,
}

/// Most snapshots one run takes.
const MAX_SNAPS: usize = 4;

struct Harness {
    dev: Arc<MemDev>,
    fs: Option<Fs>,
    rng: Rng,
    trees: BTreeMap<String, MTree>,
    who: Who,
}

impl Harness {
    fn new(seed: u64) -> Harness {
        let dev = format(DEV);
        let fs = open(&dev);
        let (m, root) = fs.attach("main").unwrap();
        let mut t = MTree::default();
        t.nodes.insert(
            String::new(),
            MNode {
                is_dir: true,
                mode: root.dir.mode,
                gid: root.dir.gid,
                data: Vec::new(),
            },
        );
        drop(m);
        Harness {
            dev,
            fs: Some(fs),
            rng: Rng::new(seed),
            trees: BTreeMap::from([("main".to_string(), t)]),
            who: Who::permissive(GLENDA),
        }
    }

    fn fs(&self) -> &Fs {
        self.fs.as_ref().expect("fs is open")
    }

    fn model(&mut self) -> &mut MTree {
        self.trees.get_mut("main").expect("main")
    }

    fn any(&mut self, dirs: Option<bool>) -> Option<String> {
        let c: Vec<String> = self.trees["main"]
            .nodes
            .iter()
            .filter(|(_, n)| dirs.is_none_or(|d| n.is_dir == d))
            .map(|(p, _)| p.clone())
            .collect();
        if c.is_empty() {
            return None;
        }
        let i = self.rng.below(c.len() as u64) as usize;
        Some(c[i].clone())
    }

    fn name(&mut self) -> &'static str {
        NAMES[self.rng.below(NAMES.len() as u64) as usize]
    }

    fn len_of(&self, p: &str) -> u64 {
        self.trees["main"]
            .nodes
            .get(p)
            .map_or(0, |n| n.data.len() as u64)
    }

    /// Choose the next operation.
    fn pick(&mut self) -> Op {
        let r = self.rng.below(100);
        let file = self.any(Some(false));
        match (r, file) {
            (0..=19, _) | (_, None) => Op::Create {
                dir: self.any(Some(true)).unwrap_or_default(),
                name: self.name(),
                is_dir: self.rng.below(4) == 0,
                perm: self.rng.below(0o1000) as u32,
            },
            (20..=44, Some(path)) => {
                let len = self.len_of(&path);
                let off = self.rng.below(len + 2 * BLKSZ_U64);
                let len = match self.rng.below(3) {
                    0 => 1 + self.rng.below(100) as usize,
                    1 => BLKSZ,
                    _ => self.rng.below(3 * BLKSZ_U64 + 1) as usize,
                };
                Op::Write {
                    path,
                    off,
                    len,
                    seed: self.rng.next_u64(),
                }
            }
            (45..=54, Some(path)) => {
                let len = self.len_of(&path);
                Op::Truncate {
                    path,
                    len: self.rng.below(2 * len + BLKSZ_U64),
                }
            }
            (55..=62, _) => Op::Rename {
                path: self.any(None).unwrap_or_default(),
                name: self.name(),
            },
            (63..=70, _) => Op::Remove {
                path: self.any(None).unwrap_or_default(),
            },
            (71..=75, _) => Op::Chmod {
                path: self.any(None).unwrap_or_default(),
                perm: self.rng.below(0o1000) as u32,
            },
            (76..=78, _) => Op::Chgrp {
                path: self.any(None).unwrap_or_default(),
                gid: [-1, 0, 1][self.rng.below(3) as usize],
            },
            (79..=94, Some(path)) => {
                let len = self.len_of(&path);
                Op::Read {
                    path,
                    off: self.rng.below(len + 100),
                    len: self.rng.below(3 * BLKSZ_U64) as usize,
                }
            }
            (95..=96, _) => Op::Sweep {
                steps: 1 + self.rng.below(3) as usize,
            },
            (97, _) if self.trees.len() <= MAX_SNAPS => Op::Snap,
            _ => Op::Reopen,
        }
    }

    fn walk(&self, path: &str) -> (Mount, Entry) {
        let fs = self.fs();
        let (m, root) = fs.attach("main").unwrap();
        let e = walk_path(fs, &m, &root, path, &self.who).unwrap();
        (m, e)
    }

    /// Apply `op` to the file system and the model; check the result.
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Create {
                dir,
                name,
                is_dir,
                perm,
            } => self.create(dir, name, *is_dir, *perm),
            Op::Write {
                path,
                off,
                len,
                seed,
            } => self.write(path, *off, *len, *seed),
            Op::Truncate { path, len } => self.truncate(path, *len),
            Op::Rename { path, name } => self.rename(path, name),
            Op::Remove { path } => self.remove(path),
            Op::Chmod { path, perm } => self.chmod(path, *perm),
            Op::Chgrp { path, gid } => {
                let (m, e) = self.walk(path);
                let c = Changes {
                    gid: Some(*gid),
                    ..Changes::default()
                };
                self.fs().wstat(&m, &e, &c, &self.who).unwrap();
                if let Some(n) = self.model().nodes.get_mut(path) {
                    n.gid = *gid;
                }
            }
            Op::Read { path, off, len } => {
                let (m, e) = self.walk(path);
                let o = self.fs().open(&m, &e, OREAD, &self.who).unwrap();
                let got = self.fs().read(&o, *off, *len).unwrap();
                let data = &self.trees["main"].nodes[path].data;
                let lo = (*off as usize).min(data.len());
                let hi = (lo + len).min(data.len());
                assert_eq!(got, &data[lo..hi], "read {path} at {off}");
            }
            Op::Sweep { steps } => {
                self.fs().sweep(*steps).unwrap();
            }
            Op::Reopen => self.reopen(),
            Op::Snap => self.snap(),
        }
    }

    fn snap(&mut self) {
        let label = format!("snap{}", self.trees.len());
        Snaps::new(self.fs().store())
            .take("main", &label, false)
            .unwrap();
        let t = self.trees["main"].clone();
        self.trees.insert(label.clone(), t);
        let (m, root) = self.fs().attach(&label).unwrap();
        assert!(!m.is_mutable());
        let r = self.fs().create(&m, &root, b"x", 0o666, OREAD, &self.who);
        assert!(matches!(r, Err(Error::ReadOnly)), "{r:?}");
        let r = self.fs().remove(&m, &root, &self.who);
        assert!(matches!(r, Err(Error::ReadOnly)), "{r:?}");
        self.check_all();
    }

    fn create(&mut self, dir: &str, name: &'static str, is_dir: bool, perm: u32) {
        let (m, d) = self.walk(dir);
        let path = join(dir, name);
        let p = if is_dir { DMDIR | perm } else { perm };
        let r = self
            .fs()
            .create(&m, &d, name.as_bytes(), p, OREAD, &self.who);
        if self.trees["main"].nodes.contains_key(&path) {
            assert!(matches!(r, Err(Error::Exists)), "create {path}: {r:?}");
            return;
        }
        let o = r.unwrap();
        let inherit = if is_dir { 0o777 } else { 0o666 };
        let mode = p & (!inherit | (d.dir.mode & inherit));
        assert_eq!(o.entry().dir.mode, mode);
        let gid = d.dir.gid;
        self.model().nodes.insert(
            path,
            MNode {
                is_dir,
                mode,
                gid,
                data: Vec::new(),
            },
        );
    }

    fn write(&mut self, path: &str, off: u64, len: usize, seed: u64) {
        let (m, e) = self.walk(path);
        let o = self.fs().open(&m, &e, ORDWR, &self.who).unwrap();
        let data = bytes(seed, len);
        assert_eq!(self.fs().write(&o, off, &data, &self.who).unwrap(), len);
        if len == 0 {
            return;
        }
        let n = self.model().nodes.get_mut(path).expect("file");
        let end = off as usize + len;
        if n.data.len() < end {
            n.data.resize(end, 0);
        }
        n.data[off as usize..end].copy_from_slice(&data);
    }

    fn truncate(&mut self, path: &str, len: u64) {
        let (m, e) = self.walk(path);
        let c = Changes {
            length: Some(len),
            ..Changes::default()
        };
        self.fs().wstat(&m, &e, &c, &self.who).unwrap();
        let n = self.model().nodes.get_mut(path).expect("file");
        n.data.resize(len as usize, 0);
    }

    fn rename(&mut self, path: &str, name: &'static str) {
        let (m, e) = self.walk(path);
        let c = Changes {
            name: Some(name.as_bytes().to_vec()),
            ..Changes::default()
        };
        let r = self.fs().wstat(&m, &e, &c, &self.who);
        let to = join(parent(path), name);
        if path.is_empty() {
            assert!(matches!(r, Err(Error::Root)), "{r:?}");
            return;
        }
        if to == path {
            r.unwrap();
            return;
        }
        if self.trees["main"].nodes.contains_key(&to) {
            assert!(
                matches!(r, Err(Error::Exists)),
                "rename {path} to {to}: {r:?}"
            );
            return;
        }
        assert_eq!(r.unwrap().name, name.as_bytes());
        let t = self.model();
        let moved: Vec<String> = t
            .nodes
            .keys()
            .filter(|p| *p == path || p.starts_with(&format!("{path}/")))
            .cloned()
            .collect();
        for p in moved {
            if let Some(n) = t.nodes.remove(&p) {
                t.nodes.insert(format!("{to}{}", &p[path.len()..]), n);
            }
        }
    }

    fn remove(&mut self, path: &str) {
        let (m, e) = self.walk(path);
        let r = self.fs().remove(&m, &e, &self.who);
        if path.is_empty() {
            assert!(matches!(r, Err(Error::Root)), "{r:?}");
        } else if !self.trees["main"].children(path).is_empty() {
            assert!(matches!(r, Err(Error::NotEmpty)), "remove {path}: {r:?}");
        } else {
            r.unwrap();
            self.model().nodes.remove(path);
        }
    }

    fn chmod(&mut self, path: &str, perm: u32) {
        let (m, e) = self.walk(path);
        let mode = (e.dir.mode & !0o777) | perm;
        let c = Changes {
            mode: Some(mode),
            ..Changes::default()
        };
        self.fs().wstat(&m, &e, &c, &self.who).unwrap();
        if let Some(n) = self.model().nodes.get_mut(path) {
            n.mode = mode;
        }
    }

    fn reopen(&mut self) {
        self.fs().sync().unwrap();
        self.fs = None;
        self.fs = Some(open(&self.dev));
        self.check_all();
    }

    /// Check one path against the model.
    fn check(&self, label: &str, path: &str) {
        let Some(want) = self.trees[label].nodes.get(path) else {
            return;
        };
        let fs = self.fs();
        let (m, root) = fs.attach(label).unwrap();
        let e = walk_path(fs, &m, &root, path, &self.who).unwrap();
        assert_eq!(e.is_dir(), want.is_dir, "{path}");
        assert_eq!(e.dir.mode, want.mode, "mode of {path}");
        assert_eq!(e.dir.gid, want.gid, "gid of {path}");
        let o = fs.open(&m, &e, OREAD, &self.who).unwrap();
        if want.is_dir {
            let got: Vec<Vec<u8>> = fs
                .readdir(&o, None, 1000)
                .unwrap()
                .into_iter()
                .map(|d| d.name)
                .collect();
            let mut names: Vec<Vec<u8>> = self.trees[label]
                .children(path)
                .iter()
                .map(|c| c.rsplit('/').next().unwrap_or("").as_bytes().to_vec())
                .collect();
            names.sort();
            assert_eq!(got, names, "listing of {path:?}");
        } else {
            assert_eq!(e.dir.length, want.data.len() as u64, "length of {path}");
            let got = fs.read(&o, 0, want.data.len() + 10).unwrap();
            assert!(got == want.data, "contents of {path}");
        }
    }

    /// Check every path of every label.
    fn check_all(&self) {
        for (label, t) in &self.trees {
            for p in t.nodes.keys() {
                self.check(label, p);
            }
        }
    }
}

fn touched(op: &Op) -> Option<&str> {
    match op {
        Op::Write { path, .. } | Op::Truncate { path, .. } | Op::Chmod { path, .. } => Some(path),
        Op::Create { dir, .. } => Some(dir),
        Op::Rename { path, .. } | Op::Remove { path } => Some(parent(path)),
        _ => None,
    }
}

fn run(seed: u64, ops: usize) {
    let mut h = Harness::new(seed);
    for i in 0..ops {
        let op = h.pick();
        h.apply(&op);
        if let Some(p) = touched(&op) {
            h.check("main", p);
        }
        if i % 250 == 249 {
            h.check_all();
        }
    }
    h.fs().sync().unwrap();
    h.check_all();
    assert_eq!(h.fs().clears_pending(), 0);
}

#[test]
fn model_seed_1() {
    run(1, 1500);
}

#[test]
fn model_seed_2() {
    run(2, 1500);
}

#[test]
fn model_seed_3() {
    run(3, 1500);
}

#[test]
fn model_seed_4() {
    run(0xfeed, 1500);
}
