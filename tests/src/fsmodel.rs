//! File-system workloads and their model (tests T3, T8): operations on a
//! small set of paths through `gefs_core::fs`, an in-memory model of what
//! every label must hold, and a verifier that compares a (recovered) image
//! with the model of one commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use gefs_core::device::Device;
use gefs_core::fs::{Changes, Entry, Fs, Mount, Who, MAX_IO, ORDWR, OREAD};
use gefs_core::snap::Snaps;
use gefs_core::store::{Config, Store};

/// One file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A directory.
    pub dir: bool,
    /// A symbolic link (its data is the target).
    pub link: bool,
    /// A device node: its device as the entry's length field holds it (format version 4).
    pub dev: Option<u64>,
    /// Permission bits.
    pub mode: u32,
    /// Contents (files).
    pub data: Vec<u8>,
}

/// Path → node, for one tree (paths like `A/foo`, no leading slash).
pub type Tree = BTreeMap<String, Node>;

/// What every label holds at one commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// `main`.
    pub main: Tree,
    /// Snapshot labels.
    pub snaps: BTreeMap<String, Tree>,
}

/// A file-system operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsOp {
    /// Make a directory.
    Mkdir(String),
    /// Create an empty file.
    Create(String),
    /// Write `len` bytes of `byte` at `off`.
    Write {
        /// The file.
        path: String,
        /// Offset.
        off: u64,
        /// Bytes.
        len: usize,
        /// Fill byte.
        byte: u8,
    },
    /// Set the length.
    Truncate {
        /// The file.
        path: String,
        /// New length.
        len: u64,
    },
    /// Remove a file or an empty directory.
    Remove(String),
    /// Rename within its directory.
    Rename {
        /// The entry.
        path: String,
        /// Its new name.
        to: String,
    },
    /// Change permission bits.
    Chmod {
        /// The entry.
        path: String,
        /// New bits.
        mode: u32,
    },
    /// Make a symbolic link (9P2000.L).
    Symlink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// Make a device node (`block` or character, `major`, `minor`; 9P2000.L, root powers).
    Device {
        /// The node.
        path: String,
        /// A block device.
        block: bool,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Move to another path, replacing what is there as POSIX rename does
    /// (9P2000.L).
    Move {
        /// The entry.
        path: String,
        /// Its new path.
        to: String,
    },
    /// Snapshot `main`.
    Snap(String),
    /// Delete a snapshot label.
    DelSnap(String),
    /// A null wstat: commit.
    Sync,
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

fn name(p: &str) -> &str {
    p.rsplit_once('/').map_or(p, |(_, n)| n)
}

/// Whether the model says `op` succeeds in `t` (with `snaps` existing).
pub fn valid(t: &Tree, snaps: &BTreeMap<String, Tree>, op: &FsOp) -> bool {
    let dir_ok = |p: &str| p.is_empty() || t.get(p).is_some_and(|n| n.dir);
    let file = |p: &str| t.get(p).is_some_and(|n| !n.dir);
    match op {
        FsOp::Mkdir(p) | FsOp::Create(p) => dir_ok(parent(p)) && !t.contains_key(p),
        FsOp::Write { path, .. } | FsOp::Truncate { path, .. } => {
            file(path) && !t.get(path).is_some_and(|n| n.link || n.dev.is_some())
        }
        FsOp::Remove(p) => match t.get(p) {
            Some(n) if n.dir => !t.keys().any(|k| parent(k) == p),
            Some(_) => true,
            None => false,
        },
        FsOp::Rename { path, to } => {
            let dest = if parent(path).is_empty() {
                to.clone()
            } else {
                format!("{}/{to}", parent(path))
            };
            t.contains_key(path) && !t.contains_key(&dest)
        }
        FsOp::Chmod { path, .. } => t.get(path).is_some_and(|n| !n.link),
        FsOp::Symlink { path, target } => {
            dir_ok(parent(path)) && !t.contains_key(path) && !target.is_empty()
        }
        FsOp::Device {
            path, major, minor, ..
        } => dir_ok(parent(path)) && !t.contains_key(path) && *major < 4096 && *minor < 1 << 20,
        FsOp::Move { path, to } => {
            let Some(src) = t.get(path) else { return false };
            let under = to.starts_with(&format!("{path}/"));
            let fits = match t.get(to) {
                None => true,
                Some(_) if to == path => true,
                Some(x) if x.dir => src.dir && !t.keys().any(|k| parent(k) == to),
                Some(_) => !src.dir,
            };
            dir_ok(parent(to)) && !under && fits
        }
        FsOp::Snap(n) => !snaps.contains_key(n),
        FsOp::DelSnap(n) => snaps.contains_key(n),
        FsOp::Sync => true,
    }
}

/// Apply a valid `op` to the model.
pub fn model_apply(img: &mut Image, op: &FsOp) {
    let t = &mut img.main;
    // create(5): a new file's permissions are masked by its directory's,
    // perm & (~0666 | dir & 0666) for a file and perm & (~0777 | dir & 0777)
    // for a directory (the root's are 0777 here).
    let dir_mode = |t: &Tree, p: &str| {
        let d = parent(p);
        if d.is_empty() {
            0o777
        } else {
            t.get(d).map_or(0o777, |n| n.mode)
        }
    };
    match op {
        FsOp::Mkdir(p) => {
            let mode = 0o775 & (!0o777 | dir_mode(t, p));
            t.insert(
                p.clone(),
                Node {
                    dir: true,
                    link: false,
                    dev: None,
                    mode,
                    data: Vec::new(),
                },
            );
        }
        FsOp::Create(p) => {
            let mode = 0o664 & (!0o666 | (dir_mode(t, p) & 0o666));
            t.insert(
                p.clone(),
                Node {
                    dir: false,
                    link: false,
                    dev: None,
                    mode,
                    data: Vec::new(),
                },
            );
        }
        FsOp::Write {
            path,
            off,
            len,
            byte,
        } => {
            if let Some(n) = t.get_mut(path) {
                let end = *off as usize + len;
                if n.data.len() < end {
                    n.data.resize(end, 0);
                }
                n.data[*off as usize..end].fill(*byte);
            }
        }
        FsOp::Truncate { path, len } => {
            if let Some(n) = t.get_mut(path) {
                n.data.resize(*len as usize, 0);
            }
        }
        FsOp::Remove(p) => {
            t.remove(p);
        }
        FsOp::Rename { path, to } => {
            let dest = if parent(path).is_empty() {
                to.clone()
            } else {
                format!("{}/{to}", parent(path))
            };
            move_subtree(t, path, &dest);
        }
        FsOp::Symlink { path, target } => {
            t.insert(
                path.clone(),
                Node {
                    dir: false,
                    link: true,
                    dev: None,
                    mode: 0o777,
                    data: target.as_bytes().to_vec(),
                },
            );
        }
        FsOp::Device {
            path,
            block,
            major,
            minor,
        } => {
            let dev =
                gefs_core::format::value::Device::new(*block, *major, *minor).map(|v| v.encode());
            t.insert(
                path.clone(),
                Node {
                    dir: false,
                    link: false,
                    dev,
                    mode: 0o640,
                    data: Vec::new(),
                },
            );
        }
        FsOp::Move { path, to } => {
            if path != to {
                t.remove(to);
                move_subtree(t, path, to);
            }
        }
        FsOp::Chmod { path, mode } => {
            if let Some(n) = t.get_mut(path) {
                n.mode = *mode;
            }
        }
        FsOp::Snap(n) => {
            img.snaps.insert(n.clone(), img.main.clone());
        }
        FsOp::DelSnap(n) => {
            img.snaps.remove(n);
        }
        FsOp::Sync => {}
    }
}

/// Move `path` and everything under it to `dest`.
fn move_subtree(t: &mut Tree, path: &str, dest: &str) {
    let moved: Vec<(String, Node)> = t
        .iter()
        .filter(|(k, _)| *k == path || k.starts_with(&format!("{path}/")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in moved {
        t.remove(&k);
        t.insert(format!("{dest}{}", &k[path.len()..]), v);
    }
}

/// A running file system with its model.
pub struct Session {
    /// The file system.
    pub fs: Fs,
    /// `main`.
    pub mount: Mount,
    /// Its root.
    pub root: Entry,
    /// The model now.
    pub now: Image,
    /// The model at each commit.
    pub at: BTreeMap<u64, Image>,
}

/// The administrator, permissive (so the model needs no permission rules).
pub fn who(fs: &Fs) -> Who {
    Who::permissive(fs.uid("adm").unwrap_or(-1))
}

fn walk(fs: &Fs, m: &Mount, root: &Entry, path: &str, w: &Who) -> gefs_core::fs::Result<Entry> {
    let mut e = root.clone();
    for el in path.split('/').filter(|s| !s.is_empty()) {
        e = fs.walk(m, &e, el.as_bytes(), w)?;
    }
    Ok(e)
}

impl Session {
    /// Open `dev` read-write, attach `main`, and take the model from what is
    /// there (which must match `now`).
    pub fn open(dev: Arc<dyn Device>, now: Image) -> Result<Session, String> {
        let cfg = Config {
            cache_bytes: 4 << 20,
            read_only: false,
        };
        let s = Store::open(dev, &cfg).map_err(|e| e.to_string())?;
        let g = s.commit_gen();
        let fs = Fs::new(Arc::new(s), false).map_err(|e| e.to_string())?;
        let (mount, root) = fs.attach("main").map_err(|e| e.to_string())?;
        let mut at = BTreeMap::new();
        at.insert(g, now.clone());
        Ok(Session {
            fs,
            mount,
            root,
            now,
            at,
        })
    }

    /// Apply `op` to the file system and, if the model says it is valid, to
    /// the model; an unexpected success or failure is an error.
    pub fn apply(&mut self, op: &FsOp) -> Result<(), String> {
        let ok = valid(&self.now.main, &self.now.snaps, op);
        let r = self.run(op);
        match (ok, r) {
            (true, Ok(())) => {
                model_apply(&mut self.now, op);
                if *op == FsOp::Sync {
                    let g = self.fs.store().commit_gen();
                    self.at.insert(g, self.now.clone());
                }
                Ok(())
            }
            (false, Err(_)) => Ok(()),
            (true, Err(e)) => Err(format!("{op:?} failed: {e}")),
            (false, Ok(())) => Err(format!("{op:?} succeeded but the model says it must fail")),
        }
    }

    /// Read `path` through the file system and compare it with the model: a file's length and
    /// contents, or that a path the model lacks is absent.
    pub fn check_path(&self, path: &str) -> Result<(), String> {
        let fs = &self.fs;
        let w = who(fs);
        let got = walk(fs, &self.mount, &self.root, path, &w);
        let want = self.now.main.get(path);
        let (e, node) = match (got, want) {
            (Err(_), None) => return Ok(()),
            (Ok(e), Some(n)) => (e, n),
            (Ok(_), None) => return Err(format!("/{path} exists; the model has no such entry")),
            (Err(x), Some(_)) => return Err(format!("/{path}: {x}")),
        };
        if e.is_dir() != node.dir {
            return Err(format!("/{path}: directory {} in the model", node.dir));
        }
        if node.dir {
            return Ok(());
        }
        let o = fs
            .open(&self.mount, &e, OREAD, &w)
            .map_err(|x| x.to_string())?;
        let mut data = Vec::new();
        loop {
            let chunk = fs
                .read(&o, data.len() as u64, MAX_IO)
                .map_err(|x| x.to_string())?;
            if chunk.is_empty() {
                break;
            }
            data.extend_from_slice(&chunk);
        }
        if data != node.data {
            return Err(format!(
                "/{path}: read {} bytes, the model has {} (or the contents differ)",
                data.len(),
                node.data.len()
            ));
        }
        Ok(())
    }

    fn run(&self, op: &FsOp) -> Result<(), String> {
        let fs = &self.fs;
        let m = &self.mount;
        let w = who(fs);
        let e = |x: gefs_core::fs::Error| x.to_string();
        let at = |p: &str| walk(fs, m, &self.root, p, &w).map_err(e);
        match op {
            FsOp::Mkdir(p) | FsOp::Create(p) => {
                let dir = at(parent(p))?;
                let perm = if matches!(op, FsOp::Mkdir(_)) {
                    gefs_core::format::value::DMDIR | 0o775
                } else {
                    0o664
                };
                fs.create(m, &dir, name(p).as_bytes(), perm, OREAD, &w)
                    .map(drop)
                    .map_err(e)
            }
            FsOp::Write {
                path,
                off,
                len,
                byte,
            } => {
                let f = at(path)?;
                let o = fs.open(m, &f, ORDWR, &w).map_err(e)?;
                let data = vec![*byte; *len];
                let mut done = 0;
                while done < *len {
                    let n = (*len - done).min(MAX_IO);
                    done += fs
                        .write(&o, off + done as u64, &data[done..done + n], &w)
                        .map_err(e)?;
                }
                Ok(())
            }
            FsOp::Truncate { path, len } => {
                let f = at(path)?;
                let c = Changes {
                    length: Some(*len),
                    ..Changes::default()
                };
                fs.wstat(m, &f, &c, &w).map(drop).map_err(e)
            }
            FsOp::Remove(p) => {
                let f = at(p)?;
                fs.remove(m, &f, &w).map_err(e)
            }
            FsOp::Rename { path, to } => {
                let f = at(path)?;
                let c = Changes {
                    name: Some(to.as_bytes().to_vec()),
                    ..Changes::default()
                };
                fs.wstat(m, &f, &c, &w).map(drop).map_err(e)
            }
            FsOp::Chmod { path, mode } => {
                let f = at(path)?;
                // The kind bits stay (a wstat may not change them).
                let bits = f.dir.mode & gefs_core::format::value::DMKIND;
                let c = Changes {
                    mode: Some(bits | mode),
                    ..Changes::default()
                };
                fs.wstat(m, &f, &c, &w).map(drop).map_err(e)
            }
            FsOp::Symlink { path, target } => {
                let dir = at(parent(path))?;
                let kind = gefs_core::fs::Kind::Symlink(target.as_bytes());
                fs.make(m, &dir, name(path).as_bytes(), kind, 0o777, None, &w)
                    .map(drop)
                    .map_err(e)
            }
            FsOp::Device {
                path,
                block,
                major,
                minor,
            } => {
                let dir = at(parent(path))?;
                let dev = gefs_core::format::value::Device::new(*block, *major, *minor)
                    .ok_or_else(|| format!("device {major},{minor}"))?;
                let kind = gefs_core::fs::Kind::Device(dev);
                fs.make(m, &dir, name(path).as_bytes(), kind, 0o640, None, &w)
                    .map(drop)
                    .map_err(e)
            }
            FsOp::Move { path, to } => {
                let f = at(path)?;
                let dir = at(parent(to))?;
                fs.rename(m, &f, &dir, name(to).as_bytes(), true, &w)
                    .map_err(e)
            }
            FsOp::Snap(n) => Snaps::new(fs.store())
                .take("main", n, false)
                .map(drop)
                .map_err(|x| x.to_string()),
            FsOp::DelSnap(n) => Snaps::new(fs.store()).delete(n).map_err(|x| x.to_string()),
            FsOp::Sync => {
                let c = Changes::default();
                fs.wstat(m, &self.root, &c, &w).map(drop).map_err(e)
            }
        }
    }
}

/// Compare the image on `dev` (opened read-only) with `want`: every label's
/// tree, entry by entry — type, mode, length, contents, directory listings
/// — and the set of snapshot labels.
pub fn verify(dev: Arc<dyn Device>, want: &Image) -> Result<(), String> {
    let cfg = Config {
        cache_bytes: 2 << 20,
        read_only: true,
    };
    let s = Store::open(dev, &cfg).map_err(|e| format!("open: {e}"))?;
    let labels: Vec<String> = s
        .labels()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|l| l.name)
        .filter(|n| !["main", "adm", "empty"].contains(&n.as_str()))
        .collect();
    let expect: Vec<String> = want.snaps.keys().cloned().collect();
    if labels != expect {
        return Err(format!("labels {labels:?}, expected {expect:?}"));
    }
    let fs = Fs::new(Arc::new(s), true).map_err(|e| e.to_string())?;
    compare(&fs, "main", &want.main)?;
    for (l, t) in &want.snaps {
        compare(&fs, l, t).map_err(|e| format!("snapshot {l}: {e}"))?;
    }
    Ok(())
}

fn compare(fs: &Fs, label: &str, want: &Tree) -> Result<(), String> {
    let e = |x: gefs_core::fs::Error| x.to_string();
    let (m, root) = fs.attach(label).map_err(e)?;
    let w = who(fs);
    let mut dirs: Vec<(String, Entry)> = vec![(String::new(), root)];
    let mut seen = 0;
    while let Some((path, d)) = dirs.pop() {
        let o = fs.open(&m, &d, OREAD, &w).map_err(e)?;
        let mut names = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = fs.readdir(&o, after.as_deref(), 64).map_err(e)?;
            let Some(last) = batch.last() else { break };
            after = Some(last.name.clone());
            names.extend(
                batch
                    .into_iter()
                    .map(|x| String::from_utf8_lossy(&x.name).into_owned()),
            );
        }
        let mut expect: Vec<String> = want
            .keys()
            .filter(|k| parent(k) == path)
            .map(|k| name(k).to_string())
            .collect();
        expect.sort();
        names.sort();
        if names != expect {
            return Err(format!("/{path}: entries {names:?}, expected {expect:?}"));
        }
        for n in names {
            let p = if path.is_empty() {
                n.clone()
            } else {
                format!("{path}/{n}")
            };
            let c = fs.walk(&m, &d, n.as_bytes(), &w).map_err(e)?;
            let node = &want[&p];
            seen += 1;
            if c.is_dir() != node.dir
                || c.is_symlink() != node.link
                || c.dir.mode & 0o777 != node.mode
            {
                return Err(format!(
                    "/{p}: mode {:o}, expected {:o} dir {}",
                    c.dir.mode, node.mode, node.dir
                ));
            }
            if c.is_dir() {
                dirs.push((p, c));
                continue;
            }
            let dev = c.dir.device().map(|v| v.encode());
            if c.dir.is_device() || node.dev.is_some() {
                if dev != node.dev || c.dir.length != node.dev.unwrap_or(u64::MAX) {
                    return Err(format!(
                        "/{p}: device {:#x}, expected {:?}",
                        c.dir.length, node.dev
                    ));
                }
                continue;
            }
            if c.dir.length != node.data.len() as u64 {
                return Err(format!(
                    "/{p}: length {}, expected {}",
                    c.dir.length,
                    node.data.len()
                ));
            }
            let o = fs.open(&m, &c, OREAD, &w).map_err(e)?;
            let mut got = Vec::new();
            while got.len() < node.data.len() {
                let chunk = fs.read(&o, got.len() as u64, MAX_IO).map_err(e)?;
                if chunk.is_empty() {
                    break;
                }
                got.extend_from_slice(&chunk);
            }
            if got != node.data {
                return Err(format!("/{p}: contents differ"));
            }
        }
    }
    if seen != want.len() {
        return Err(format!("{seen} entries, expected {}", want.len()));
    }
    Ok(())
}
