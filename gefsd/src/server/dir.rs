//! Directory reads and stat entries.
//!
//! A directory read returns whole stat entries (read(5)). The offset rule: a read at offset 0
//! starts over, a read at the offset where the previous read on the fid ended continues, and any
//! other offset is refused ("bad offset in directory read"; the reference silently continued,
//! §13.2 #31). An entry that does not fit an empty reply is refused, not answered with 0 bytes
//! that the client would take for the end (#28); the entry is kept, so a retry at the same
//! offset with a larger count gets it.
//!
//! Entries are pulled from the file-system layer in small batches keyed by the last name
//! consumed, so a listing never holds more than one reply's worth of entries and a directory of
//! any size streams.

use gefs_core::fs::{self, Entry, LabelInfo, Xdir};
use gefs_core::users::Users;

use super::err::{msg, refuse, Error, Result};
use crate::proto::{dmode, qidtype, Qid, Stat};

/// The qid path of the dump directory (far above any path `next_qid` will hand out).
pub const DUMP_QID: u64 = 1 << 63;
/// The dump entry of snapshot record `id` has qid path `DUMP_ENTRY_QID | id`.
pub const DUMP_ENTRY_QID: u64 = (1 << 63) | (1 << 62);

/// The 9P qid of a file-system qid.
pub fn qid(q: fs::Qid) -> Qid {
    Qid {
        ty: q.ty,
        version: q.vers,
        path: q.path,
    }
}

fn secs(ns: u64) -> u32 {
    u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX)
}

/// The stat of a directory entry named `name` (`/` for a root).
pub fn stat_of(users: &Users, name: &[u8], d: &Xdir) -> Stat {
    let name = if name.is_empty() {
        "/".to_string()
    } else {
        String::from_utf8_lossy(name).into_owned()
    };
    Stat {
        ty: 0,
        dev: 0,
        qid: Qid {
            ty: d.qid_type,
            version: d.qid_vers,
            path: d.qid_path,
        },
        mode: d.mode,
        atime: secs(d.atime),
        mtime: secs(d.mtime),
        length: d.size(),
        name,
        uid: users.name_of(d.uid).to_string(),
        gid: users.group_name_of(d.gid).to_string(),
        muid: users.name_of(d.muid).to_string(),
    }
}

/// The stat of an entry as a fid holds it.
pub fn stat_of_entry(users: &Users, e: &Entry) -> Stat {
    stat_of(users, &e.name, &e.dir)
}

fn dump_stat(name: &str, path: u64, started: u32) -> Stat {
    Stat {
        ty: 0,
        dev: 0,
        qid: Qid {
            ty: qidtype::QTDIR,
            version: 0,
            path,
        },
        mode: dmode::DMDIR | 0o555,
        atime: started,
        mtime: started,
        length: 0,
        name: name.to_string(),
        uid: "adm".into(),
        gid: "adm".into(),
        muid: "adm".into(),
    }
}

/// The stat of the dump directory.
pub fn dump_root_stat(started: u32) -> Stat {
    dump_stat("dump", DUMP_QID, started)
}

/// The stat of the dump directory's entry for a label.
pub fn dump_entry_stat(l: &LabelInfo, started: u32) -> Stat {
    dump_stat(&l.name, DUMP_ENTRY_QID | (l.id & !DUMP_ENTRY_QID), started)
}

/// A fid's directory-listing state.
#[derive(Debug, Default)]
pub struct DirCursor {
    /// Where the previous read ended.
    offset: u64,
    /// The last name taken from the source.
    after: Option<Vec<u8>>,
    /// An encoded entry taken from the source but not yet sent.
    pending: Option<Vec<u8>>,
    /// The source has nothing after `after`.
    exhausted: bool,
}

/// Entries after a name: `fetch(after, limit)` returns up to `limit` `(name, stat)` pairs in
/// order, starting after `after` (from the first when `None`).
pub trait Source {
    /// The next entries.
    fn fetch(&mut self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Stat)>>;
}

impl<F> Source for F
where
    F: FnMut(Option<&[u8]>, usize) -> Result<Vec<(Vec<u8>, Stat)>>,
{
    fn fetch(&mut self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Stat)>> {
        self(after, limit)
    }
}

impl DirCursor {
    /// Read up to `count` bytes of packed stat entries at `off`.
    pub fn read(&mut self, off: u64, count: u32, src: &mut dyn Source) -> Result<Vec<u8>> {
        if off == 0 {
            *self = DirCursor::default();
        } else if off != self.offset {
            return refuse(msg::BAD_DIR_OFFSET);
        }
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if let Some(p) = self.pending.take() {
            if p.len() > count {
                self.pending = Some(p);
                return refuse(msg::DIR_ENTRY_TOO_BIG);
            }
            out.extend_from_slice(&p);
        }
        'fill: while !self.exhausted {
            let room = count.saturating_sub(out.len());
            let limit = (room / 64).clamp(1, 512);
            let batch = src.fetch(self.after.as_deref(), limit)?;
            let n = batch.len();
            for (name, st) in batch {
                let mut enc = Vec::with_capacity(st.encoded_len());
                st.encode(&mut enc)
                    .map_err(|e| Error::Detail(format!("directory entry: {e}"), fs::errno::EIO))?;
                self.after = Some(name);
                if out.len().saturating_add(enc.len()) > count {
                    let empty = out.is_empty();
                    self.pending = Some(enc);
                    if empty {
                        return refuse(msg::DIR_ENTRY_TOO_BIG);
                    }
                    break 'fill;
                }
                out.extend_from_slice(&enc);
            }
            if n < limit {
                self.exhausted = true;
            }
        }
        self.offset = self.offset.saturating_add(out.len() as u64);
        Ok(out)
    }
}
