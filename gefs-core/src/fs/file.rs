//! Opening, reading, writing and truncating files.
//!
//! Reads and writes go through an [`Open`], which only [`Fs::open`] and
//! [`Fs::create`] make, after the permission check for the open mode: a
//! handle that was walked to but never opened cannot read (reference defect
//! #5), and a directory can never be opened for writing or truncation
//! (defect #6).
//!
//! A write is one atomic batch: a new data block per piece (a whole-block
//! piece is written blind; a partial piece copies the old block if one
//! exists below the end of file, otherwise starts from zeros), one `KDAT`
//! insert per piece, and a `Wstat` with the new size (if it grew), mtime and
//! muid. Blocks written before a failed upsert are discarded, so a failure
//! leaves nothing allocated. Inserting over an old pointer frees the old
//! block in the tree.

use std::ops::Bound;

use super::error::{Error, Result};
use super::nodes::Loc;
use super::perm::{self, READ, WRITE};
use super::{now_ns, Entry, Fs, Mount, Who};
use crate::alloc::Tier;
use crate::format::key::{self, KeyView};
use crate::format::msg::{Msg, Wstat};
use crate::format::value::{Xdir, DMAPPEND, DMEXCL};
use crate::format::{Bptr, BLKSZ, BLKSZ_U64};
use crate::format::{Decode, Encode};
use crate::store::TreeId;
use crate::CorruptKind;

pub use crate::users::{OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE};

/// Most bytes one read or write moves.
pub const MAX_IO: usize = 4 << 20;
/// The largest file length (and end of a write).
pub const MAX_LEN: u64 = 1 << 60;

/// What an open grants, and what the server must enforce itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInfo {
    /// [`READ`](super::READ), [`WRITE`](super::WRITE), [`EXEC`](super::EXEC)
    /// bits checked.
    pub want: u8,
    /// `DMEXCL`: the server must refuse the open while any other handle of
    /// the same qid is open, and refuse further opens while this one is.
    pub exclusive: bool,
    /// `DMAPPEND`: every write goes to the end of file (done by
    /// [`Fs::write`]); `OTRUNC` is ignored.
    pub append: bool,
    /// The open truncates the file to zero.
    pub truncate: bool,
    /// `ORCLOSE`: the server calls [`Fs::remove`] when the handle closes
    /// (write permission on the parent was checked now, defect #7).
    pub rclose: bool,
}

/// An opened file or directory.
#[derive(Debug, Clone)]
pub struct Open {
    mount: Mount,
    entry: Entry,
    info: OpenInfo,
}

impl Open {
    /// The entry as of the open.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The mount.
    pub fn mount(&self) -> &Mount {
        &self.mount
    }

    /// What the open granted.
    pub fn info(&self) -> OpenInfo {
        self.info
    }

    fn need(&self, want: u8) -> Result<()> {
        if self.info.want & want == want {
            Ok(())
        } else {
            Err(Error::NotOpen)
        }
    }
}

fn want_of(omode: u8) -> Result<u8> {
    if omode & !(3 | OTRUNC | ORCLOSE) != 0 {
        return Err(Error::Invalid(format!("open mode {omode:#x}")));
    }
    Ok(crate::users::want_for_open(omode))
}

fn roundup(x: u64) -> u64 {
    x.div_ceil(BLKSZ_U64) * BLKSZ_U64
}

impl Fs {
    /// Check an open of `e` in mode `omode` by `who`, without opening.
    pub fn check_open(&self, m: &Mount, e: &Entry, omode: u8, who: &Who) -> Result<OpenInfo> {
        let want = want_of(omode)?;
        let (loc, d) = self.current(m, e)?;
        let rclose = omode & ORCLOSE != 0;
        if d.is_dir() && want & WRITE != 0 {
            return Err(Error::IsDir);
        }
        if d.is_device() {
            // The client's kernel interprets a device node; its data is never served.
            return Err(Error::NotPermitted);
        }
        if (d.is_symlink() || d.is_special()) && want & WRITE != 0 {
            return Err(Error::NotPermitted);
        }
        if (want & WRITE != 0 || rclose) && !m.mutable {
            return Err(Error::ReadOnly);
        }
        let users = self.users();
        if !perm::allowed(&users, who, &d, want) {
            return Err(Error::Perm);
        }
        if rclose {
            if loc.pqid == key::ROOT_PQID {
                return Err(Error::Root);
            }
            let (_, pd) = self.parent_of(m.tree, &loc)?;
            if !perm::allowed(&users, who, &pd, WRITE) {
                return Err(Error::Perm);
            }
        }
        let append = d.mode & DMAPPEND != 0;
        Ok(OpenInfo {
            want,
            exclusive: d.mode & DMEXCL != 0,
            append,
            truncate: omode & OTRUNC != 0 && !append,
            rclose,
        })
    }

    /// Open `e`: check, then truncate if asked (which sets mtime, unlike the
    /// reference, defect #30).
    pub fn open(&self, m: &Mount, e: &Entry, omode: u8, who: &Who) -> Result<Open> {
        let info = self.check_open(m, e, omode, who)?;
        if info.truncate {
            self.set_length(m, e, 0, who)?;
        }
        Ok(Open {
            mount: m.clone(),
            entry: self.stat(m, e)?,
            info,
        })
    }

    /// An [`Open`] for an entry just created (no permission check: the
    /// creator may use it in the mode asked).
    pub(super) fn opened(&self, m: &Mount, e: Entry, omode: u8) -> Result<Open> {
        let want = want_of(omode)?;
        if e.is_dir() && want & WRITE != 0 {
            return Err(Error::IsDir);
        }
        let info = OpenInfo {
            want,
            exclusive: e.dir.mode & DMEXCL != 0,
            append: e.dir.mode & DMAPPEND != 0,
            truncate: false,
            rclose: omode & ORCLOSE != 0,
        };
        Ok(Open {
            mount: m.clone(),
            entry: e,
            info,
        })
    }

    /// Read up to `count` bytes at `off` from an open file: clipped to the
    /// length, holes as zeros, every block verified. One consistent tree.
    pub fn read(&self, o: &Open, off: u64, count: usize) -> Result<Vec<u8>> {
        o.need(READ)?;
        if o.entry.is_dir() {
            return Err(Error::IsDir);
        }
        let (tree, q, n) = (o.mount.tree, o.entry.qid.path, count.min(MAX_IO));
        let (_, data) = self.follow(&o.entry.node, |loc| {
            match self.read_at(tree, loc, q, off, n) {
                Err(Error::Gone) => Ok(None),
                r => r.map(Some),
            }
        })?;
        Ok(data)
    }

    /// The whole of a small file (the users file), at most `max` bytes.
    pub(super) fn read_all(&self, m: &Mount, e: &Entry, max: u64) -> Result<Vec<u8>> {
        let (loc, d) = self.current(m, e)?;
        if d.length >= max {
            return Err(Error::Invalid(format!("file of {} bytes", d.length)));
        }
        let n = usize::try_from(d.length).map_err(|_| Error::Invalid("length".into()))?;
        self.read_at(m.tree, &loc, d.qid_path, 0, n)
    }

    fn read_at(&self, tree: TreeId, loc: &Loc, qid: u64, off: u64, n: usize) -> Result<Vec<u8>> {
        let r = self.store.with_reader(tree, |ctx, root| {
            let Some(v) = crate::tree::lookup_at(ctx, root, &key::ent(loc.pqid, &loc.name))? else {
                return Ok(Err(Error::Gone));
            };
            let d = match super::walk::decode_xdir(&v) {
                Ok(d) if d.qid_path == qid => d,
                Ok(_) => return Ok(Err(Error::Gone)),
                Err(e) => return Ok(Err(e)),
            };
            if off >= d.length || n == 0 {
                return Ok(Ok(Vec::new()));
            }
            let n = (n as u64).min(d.length - off);
            let mut buf = vec![0u8; n as usize];
            let (lo, hi) = (key::dat(qid, off - off % BLKSZ_U64), key::dat(qid, off + n));
            let limit = (n / BLKSZ_U64 + 2) as usize;
            let kvs =
                crate::tree::scan_at(ctx, root, Bound::Included(&lo), Bound::Excluded(&hi), limit)?;
            for (k, v) in kvs {
                let Ok(KeyView::Dat { off: boff, .. }) = KeyView::decode(&k) else {
                    continue;
                };
                let bp = Bptr::from_slice(&v.val).map_err(|_| {
                    crate::Error::corrupt(v.addr, CorruptKind::Value, "data pointer")
                })?;
                // A null pointer is no block (FORMAT.md §7): a hole.
                if bp.is_none() {
                    continue;
                }
                let b = ctx.read_data(&bp)?;
                copy_overlap(&mut buf, off, b.bytes(), boff);
            }
            Ok(Ok(buf))
        })?;
        r
    }

    /// Write `data` at `off` (or at the end for `DMAPPEND`) to an open file.
    /// Returns the bytes written.
    pub fn write(&self, o: &Open, off: u64, data: &[u8], who: &Who) -> Result<usize> {
        o.need(WRITE)?;
        if data.len() > MAX_IO {
            return Err(Error::Invalid(format!("write of {} bytes", data.len())));
        }
        let m = &o.mount;
        self.mutating(m)?;
        let q = o.entry.qid.path;
        let (_g, loc, d, off) = loop {
            let g = self.writer();
            let (loc, d) = self.current(m, &o.entry)?;
            if d.is_dir() {
                return Err(Error::IsDir);
            }
            let off = if d.mode & DMAPPEND != 0 {
                d.length
            } else {
                off
            };
            let end = off
                .checked_add(data.len() as u64)
                .filter(|&e| e <= MAX_LEN)
                .ok_or(Error::TooBig)?;
            if end > d.length && !self.ready_to_grow(m, q, d.length, end)? {
                drop(g);
                self.settle(m.tree, q)?;
                continue;
            }
            break (g, loc, d, off);
        };
        if data.is_empty() {
            return Ok(0);
        }
        let mut bps = Vec::new();
        let r = self.write_locked(m.tree, &loc, &d, off, data, who, &mut bps);
        if r.is_err() {
            self.discard(m.tree, &bps);
        }
        r.map(|()| data.len())
    }

    #[allow(clippy::too_many_arguments)]
    fn write_locked(
        &self,
        tree: TreeId,
        loc: &Loc,
        d: &Xdir,
        off: u64,
        data: &[u8],
        who: &Who,
        bps: &mut Vec<Bptr>,
    ) -> Result<()> {
        let q = d.qid_path;
        let mut msgs = Vec::new();
        let (mut pos, mut src) = (off, 0usize);
        while src < data.len() {
            let fo = (pos % BLKSZ_U64) as usize;
            let boff = pos - fo as u64;
            let n = (BLKSZ - fo).min(data.len() - src);
            let piece = &data[src..src + n];
            let old = if n < BLKSZ && boff < d.length {
                self.data_ptr(tree, q, boff)?
            } else {
                None
            };
            let old = match old {
                Some(bp) => Some(self.store.read_data(&bp)?),
                None => None,
            };
            let fill = |buf: &mut [u8; BLKSZ]| {
                if let Some(b) = &old {
                    buf.copy_from_slice(b.bytes());
                }
                buf[fo..fo + n].copy_from_slice(piece);
            };
            // A block copied whole, or written whole, needs no zeroing.
            let whole = old.is_some() || n == BLKSZ;
            let seq = fo + n == BLKSZ;
            let bp = if whole {
                self.store
                    .write_data_whole(tree, q, seq, Tier::Normal, fill)?
            } else {
                self.store.write_data(tree, q, seq, Tier::Normal, fill)?
            };
            bps.push(bp);
            msgs.push(Msg::insert(key::dat(q, boff), bp.to_bytes().to_vec()));
            pos += n as u64;
            src += n;
        }
        let now = now_ns();
        let lost = perm::setid_lost(&self.users(), who, d, perm::SetIdLoss::Write);
        let ws = Wstat {
            mode: (lost != 0).then_some(d.mode & !lost),
            size: (pos > d.length).then_some(pos),
            mtime: Some(now),
            ctime: Some(now),
            muid: Some(who.uid),
            ..Wstat::default()
        };
        msgs.push(Msg {
            op: crate::format::msg::Op::Wstat,
            key: key::ent(loc.pqid, &loc.name),
            val: ws.encode(),
        });
        self.store.upsert(tree, msgs, Tier::Normal)?;
        Ok(())
    }

    /// The data pointer at block offset `boff` of `q`, if any (a null
    /// pointer is no block).
    fn data_ptr(&self, tree: TreeId, q: u64, boff: u64) -> Result<Option<Bptr>> {
        match self.lookup_at(tree, &key::dat(q, boff))? {
            Some(v) => {
                Ok(Some(Bptr::from_slice(&v.val).map_err(|_| {
                    crate::Error::corrupt(v.addr, CorruptKind::Value, "data pointer")
                })?)
                .filter(|p| !p.is_none()))
            }
            None => Ok(None),
        }
    }

    /// Free blocks written for a batch that failed (best effort: the store
    /// latches read-only if it cannot).
    pub(super) fn discard(&self, tree: TreeId, bps: &[Bptr]) {
        for bp in bps {
            let _ = self.store.discard_data(tree, bp);
        }
    }

    /// Whether file `q` may grow from `len` to `end` now: no clear pending,
    /// and no keys left in the range it grows over (leftovers of a clear a
    /// crash interrupted, which are then queued). Writer lock held.
    pub(super) fn ready_to_grow(&self, m: &Mount, q: u64, len: u64, end: u64) -> Result<bool> {
        let tree = m.tree();
        if self.clear_pending(tree, q) {
            return Ok(false);
        }
        let from = roundup(len);
        if from >= end {
            return Ok(true);
        }
        let (lo, hi) = (key::dat(q, from), key::dat(q, end));
        let left = self
            .store
            .scan(tree, Bound::Included(&lo), Bound::Excluded(&hi), 1)?;
        if left.is_empty() {
            return Ok(true);
        }
        self.queue_clear(m, q, from);
        Ok(false)
    }

    /// The messages that shrink file `d` (at `loc`) to `nl` < its length:
    /// the tail of the block holding the new end zeroed (a new block,
    /// returned for discarding if the batch fails). The caller adds the
    /// size and queues the clear from `roundup(nl)` after the upsert.
    pub(super) fn shrink_msgs(
        &self,
        tree: TreeId,
        d: &Xdir,
        nl: u64,
        msgs: &mut Vec<Msg>,
    ) -> Result<Option<Bptr>> {
        let from = roundup(nl);
        msgs.push(self.clear_note(tree, d.qid_path, from));
        let keep = (nl % BLKSZ_U64) as usize;
        if keep == 0 {
            return Ok(None);
        }
        let boff = nl - keep as u64;
        let Some(old) = self.data_ptr(tree, d.qid_path, boff)? else {
            return Ok(None);
        };
        let ob = self.store.read_data(&old)?;
        let bp = self
            .store
            .write_data(tree, d.qid_path, false, Tier::Reserve, |buf| {
                buf[..keep].copy_from_slice(&ob.bytes()[..keep]);
            })?;
        msgs.push(Msg::insert(
            key::dat(d.qid_path, boff),
            bp.to_bytes().to_vec(),
        ));
        Ok(Some(bp))
    }

    /// Set the length of file `e` (truncate or extend), with mtime and muid;
    /// the write permission is the caller's to check.
    pub(super) fn set_length(&self, m: &Mount, e: &Entry, nl: u64, who: &Who) -> Result<()> {
        let changes = super::Changes {
            length: Some(nl),
            mtime: Some(now_ns()),
            ..super::Changes::default()
        };
        self.apply_changes(m, e, &changes, who, false)
    }
}

/// Copy the part of block `blk` (at file offset `boff`) that overlaps
/// `buf` (at file offset `off`).
fn copy_overlap(buf: &mut [u8], off: u64, blk: &[u8; BLKSZ], boff: u64) {
    let end = off + buf.len() as u64;
    let lo = off.max(boff);
    let hi = end.min(boff + BLKSZ_U64);
    if lo >= hi {
        return;
    }
    let (n, b0, d0) = (
        (hi - lo) as usize,
        (lo - boff) as usize,
        (lo - off) as usize,
    );
    buf[d0..d0 + n].copy_from_slice(&blk[b0..b0 + n]);
}
