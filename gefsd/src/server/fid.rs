//! Fids: what a connection's fid names, and the per-connection table.
//!
//! Invariants:
//! - a table holds at most `max_fids` fids; inserting beyond that is refused and changes
//!   nothing;
//! - a fid is in at most one table, under one number; it is removed before it is clunked, so
//!   no request can find a fid whose clunk has begun;
//! - lock order: a fid's own lock may be held while taking the table lock (walk binding a new
//!   fid), never the other way round; no thread holds two fid locks.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use gefs_core::fs::{Entry, Mount, Open, Who};

use super::dir::DirCursor;
use super::dir_l::LCursor;
use super::err::{msg, refuse, Result};
use crate::proto::Dialect;

/// Where a fid points.
#[derive(Debug, Clone)]
pub enum At {
    /// The `dump` directory: one entry per label.
    Dump,
    /// A file or directory of a mounted tree.
    Node {
        /// The mount (read-only when reached through `dump`).
        mount: Mount,
        /// The entry.
        entry: Entry,
        /// Reached through `dump`: `..` at the root returns to the dump directory.
        from_dump: bool,
    },
}

/// What an open fid holds.
#[derive(Debug)]
pub enum Opened {
    /// An open file or directory of a tree.
    Node {
        /// The file-system layer's open handle.
        open: Box<Open>,
        /// 9P2000 directory listing state (directories opened by Topen).
        cursor: Option<DirCursor>,
        /// 9P2000.L directory listing state (directories opened by Tlopen).
        lcursor: Option<Box<LCursor>>,
        /// The key under which a DMEXCL open is registered.
        excl: Option<ExclKey>,
    },
    /// The open dump directory (9P2000).
    Dump(DirCursor),
    /// The open dump directory (9P2000.L).
    DumpL(Box<LCursor>),
}

impl Opened {
    /// An open file or directory, with the listing state of `dialect` for a directory.
    pub fn node(open: Box<Open>, excl: Option<ExclKey>, dialect: Dialect) -> Opened {
        let dir = open.entry().is_dir();
        Opened::Node {
            cursor: (dir && dialect == Dialect::P9).then(DirCursor::default),
            lcursor: (dir && dialect == Dialect::L).then(Box::default),
            open,
            excl,
        }
    }

    /// Whether clunking this fid removes the file (ORCLOSE).
    pub fn rclose(&self) -> bool {
        match self {
            Opened::Node { open, .. } => open.info().rclose,
            Opened::Dump(_) | Opened::DumpL(_) => false,
        }
    }
}

/// Identifies an exclusive-use file across connections.
pub type ExclKey = gefs_core::fs::FileId;

/// One fid.
#[derive(Debug)]
pub struct Fid {
    /// The attached user, and whether the attach was permissive (`%`).
    pub who: Who,
    /// The user's name, for `show fid`.
    pub uname: String,
    /// Where it points.
    pub at: At,
    /// Its path from the attach point, `/`-separated (for logs).
    pub path: String,
    /// Open state, once opened.
    pub open: Option<Opened>,
}

impl Fid {
    /// A copy that points at the same place, unopened (walk's clone).
    pub fn clone_unopened(&self) -> Fid {
        Fid {
            who: self.who,
            uname: self.uname.clone(),
            at: self.at.clone(),
            path: self.path.clone(),
            open: None,
        }
    }

    /// `path` after walking `name` (`..` goes up, never above the attach point).
    pub fn path_after(path: &str, name: &str) -> String {
        if name == ".." {
            return match path.rsplit_once('/') {
                Some(("", _)) | None => "/".to_string(),
                Some((up, _)) => up.to_string(),
            };
        }
        if path.ends_with('/') {
            format!("{path}{name}")
        } else {
            format!("{path}/{name}")
        }
    }

    /// A one-line description for the console's `show fid`.
    pub fn describe(&self) -> String {
        let at = match &self.at {
            At::Dump => "dump".to_string(),
            At::Node {
                mount,
                entry,
                from_dump,
            } => format!(
                "{}{} qid {:#x}.{} {:?}",
                if *from_dump { "dump/" } else { "" },
                mount.label(),
                entry.qid.path,
                entry.qid.vers,
                String::from_utf8_lossy(&entry.name)
            ),
        };
        let open = match &self.open {
            None => "closed".to_string(),
            Some(Opened::Dump(_) | Opened::DumpL(_)) => "open dir".to_string(),
            Some(Opened::Node { open, .. }) => {
                let i = open.info();
                format!(
                    "open want {}{}{}{}",
                    i.want,
                    if i.rclose { " rclose" } else { "" },
                    if i.exclusive { " excl" } else { "" },
                    if i.append { " append" } else { "" }
                )
            }
        };
        format!(
            "user {}{} {at} {open}",
            self.uname,
            if self.who.permissive {
                " (permissive)"
            } else {
                ""
            }
        )
    }
}

/// A shared, lockable fid.
pub type FidRef = Arc<Mutex<Fid>>;

/// A connection's fids.
#[derive(Debug)]
pub struct FidTable {
    fids: Mutex<HashMap<u32, FidRef>>,
    max: usize,
}

impl FidTable {
    /// An empty table admitting at most `max` fids.
    pub fn new(max: usize) -> FidTable {
        FidTable {
            fids: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The fid numbered `n`.
    pub fn get(&self, n: u32) -> Result<FidRef> {
        match self.fids.lock().get(&n) {
            Some(f) => Ok(f.clone()),
            None => refuse(msg::UNKNOWN_FID),
        }
    }

    /// Whether `n` is in use.
    pub fn contains(&self, n: u32) -> bool {
        self.fids.lock().contains_key(&n)
    }

    /// Bind `n` to a new fid; refused if `n` is taken or the table is full.
    pub fn insert(&self, n: u32, fid: Fid) -> Result<FidRef> {
        let mut t = self.fids.lock();
        if t.contains_key(&n) {
            return refuse(msg::FID_IN_USE);
        }
        if t.len() >= self.max {
            return refuse(msg::TOO_MANY_FIDS);
        }
        let f = Arc::new(Mutex::new(fid));
        t.insert(n, f.clone());
        Ok(f)
    }

    /// Remove `n`, returning its fid.
    pub fn remove(&self, n: u32) -> Result<FidRef> {
        match self.fids.lock().remove(&n) {
            Some(f) => Ok(f),
            None => refuse(msg::UNKNOWN_FID),
        }
    }

    /// Remove every fid (Tversion, teardown).
    pub fn drain(&self) -> Vec<(u32, FidRef)> {
        self.fids.lock().drain().collect()
    }

    /// Number of fids.
    pub fn len(&self) -> usize {
        self.fids.lock().len()
    }

    /// Whether there are no fids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every fid number and its fid, for `show fid`.
    pub fn snapshot(&self) -> Vec<(u32, FidRef)> {
        let mut v: Vec<_> = self
            .fids
            .lock()
            .iter()
            .map(|(n, f)| (*n, f.clone()))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    }
}
