//! POSIX record locks (9P2000.L `Tlock`/`Tgetlock`), advisory, held in the server's memory.
//!
//! A lock belongs to an owner: the connection, and the client's process id and name as `Tlock`
//! gives them (two processes of one client are different owners; one process's locks through
//! two fids are the same owner's, as POSIX has it). Per file (tree and qid), the table keeps
//! each owner's byte ranges with their type, split and merged as `fcntl(F_SETLK)` does: a new
//! lock replaces the owner's own locks in its range, an unlock removes them; a lock conflicts
//! with another owner's overlapping range when either is a write lock.
//!
//! Nothing here ever waits: a conflicting request is answered `BLOCKED` and the Linux client
//! retries (it does for `F_SETLKW`). Every range remembers the fid that last set it, so
//! clunking the fid releases it, and a connection's end releases all of its ranges: a client
//! that dies holds nothing.
//!
//! Invariants: an owner's ranges on one file never overlap each other; every range is
//! non-empty; a file with no ranges has no entry. One mutex guards the table; it is never held
//! while taking another lock.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::proto::dotl::lock::{BLOCKED, RDLCK, SUCCESS, UNLCK, WRLCK};

/// A file: its tree and qid path.
pub type FileKey = gefs_core::fs::FileId;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The connection.
    pub conn: u64,
    /// The client's process id.
    pub proc_id: u32,
    /// The client's name.
    pub client_id: String,
}

/// One held range `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The owner.
    pub owner: Owner,
    /// The fid that last set it.
    pub fid: u32,
    /// [`RDLCK`] or [`WRLCK`].
    pub ty: u8,
    /// First byte.
    pub start: u64,
    /// One past the last byte (`u64::MAX`: to the end and beyond).
    pub end: u64,
}

impl Held {
    /// The length as 9P2000.L carries it (0 for "to the end").
    pub fn length(&self) -> u64 {
        if self.end == u64::MAX {
            0
        } else {
            self.end - self.start
        }
    }
}

/// The end of a range given as start and length (0: to the end).
pub fn end_of(start: u64, length: u64) -> u64 {
    if length == 0 {
        u64::MAX
    } else {
        start.saturating_add(length)
    }
}

/// Every file's locks.
#[derive(Debug, Default)]
pub struct Locks {
    t: Mutex<HashMap<FileKey, Vec<Held>>>,
}

impl Locks {
    /// Set (`RDLCK`, `WRLCK`) or clear (`UNLCK`) `[start, end)` of `file` for `owner` through
    /// `fid`. Returns `SUCCESS`, or `BLOCKED` if another owner holds a conflicting range (and
    /// then nothing changes). Any other type is refused with `None`.
    pub fn set(
        &self,
        file: FileKey,
        owner: &Owner,
        fid: u32,
        ty: u8,
        start: u64,
        end: u64,
    ) -> Option<u8> {
        if !matches!(ty, RDLCK | WRLCK | UNLCK) || end <= start {
            return None;
        }
        let mut t = self.t.lock();
        let held = t.entry(file).or_default();
        if ty != UNLCK && conflict(held, owner, ty, start, end).is_some() {
            return Some(BLOCKED);
        }
        // Cut the owner's ranges out of [start, end), keeping the parts outside it.
        let mut kept = Vec::with_capacity(held.len() + 2);
        for h in held.drain(..) {
            if h.owner != *owner || h.end <= start || h.start >= end {
                kept.push(h);
                continue;
            }
            if h.start < start {
                kept.push(Held {
                    end: start,
                    ..h.clone()
                });
            }
            if h.end > end {
                kept.push(Held { start: end, ..h });
            }
        }
        if ty != UNLCK {
            kept.push(Held {
                owner: owner.clone(),
                fid,
                ty,
                start,
                end,
            });
            merge(&mut kept, owner, ty);
        }
        *held = kept;
        if held.is_empty() {
            t.remove(&file);
        }
        Some(SUCCESS)
    }

    /// The first range of another owner that conflicts with `ty` on `[start, end)` of `file`.
    pub fn test(&self, file: FileKey, owner: &Owner, ty: u8, start: u64, end: u64) -> Option<Held> {
        let t = self.t.lock();
        conflict(t.get(&file)?, owner, ty, start, end).cloned()
    }

    /// Release every range set through `fid` of connection `conn`.
    pub fn release_fid(&self, conn: u64, fid: u32) {
        self.retain(|h| !(h.owner.conn == conn && h.fid == fid));
    }

    /// Release every range of connection `conn`.
    pub fn release_conn(&self, conn: u64) {
        self.retain(|h| h.owner.conn != conn);
    }

    fn retain(&self, keep: impl Fn(&Held) -> bool) {
        let mut t = self.t.lock();
        t.retain(|_, held| {
            held.retain(&keep);
            !held.is_empty()
        });
    }

    /// Files with locks (for tests and the console).
    pub fn files(&self) -> usize {
        self.t.lock().len()
    }
}

/// The first range of another owner overlapping `[start, end)` where either lock is a write.
fn conflict<'a>(held: &'a [Held], owner: &Owner, ty: u8, start: u64, end: u64) -> Option<&'a Held> {
    held.iter().find(|h| {
        h.owner != *owner && h.start < end && start < h.end && (h.ty == WRLCK || ty == WRLCK)
    })
}

/// Join `owner`'s ranges of type `ty` that touch or overlap.
fn merge(held: &mut Vec<Held>, owner: &Owner, ty: u8) {
    let (mut mine, mut rest): (Vec<Held>, Vec<Held>) = held
        .drain(..)
        .partition(|h| h.owner == *owner && h.ty == ty);
    mine.sort_by_key(|h| h.start);
    let mut out: Vec<Held> = Vec::with_capacity(mine.len());
    for h in mine {
        match out.last_mut() {
            Some(last) if h.start <= last.end => {
                last.end = last.end.max(h.end);
                last.fid = h.fid;
            }
            _ => out.push(h),
        }
    }
    rest.extend(out);
    *held = rest;
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;
    use gefs_core::fs::Fs;

    /// A file of `main` in a fresh memory file system (a key outlives it).
    static F: LazyLock<FileKey> = LazyLock::new(|| {
        let store = crate::server::memory_store(32 << 20, "glenda").expect("memory store");
        let fs = Fs::new(store, false).expect("file system");
        let (m, _) = fs.attach("main").expect("attach main");
        m.file_id(7)
    });

    fn owner(conn: u64, proc_id: u32) -> Owner {
        Owner {
            conn,
            proc_id,
            client_id: "host".into(),
        }
    }

    #[test]
    fn conflicts_are_between_owners_and_need_a_writer() {
        let l = Locks::default();
        let (a, b) = (owner(1, 10), owner(2, 10));
        assert_eq!(l.set(*F, &a, 1, RDLCK, 0, 100), Some(SUCCESS));
        assert_eq!(
            l.set(*F, &b, 5, RDLCK, 50, 150),
            Some(SUCCESS),
            "readers share"
        );
        assert_eq!(l.set(*F, &b, 5, WRLCK, 50, 150), Some(BLOCKED));
        assert_eq!(
            l.set(*F, &b, 5, WRLCK, 100, 150),
            Some(SUCCESS),
            "upgrade past a's range"
        );
        assert_eq!(l.test(*F, &a, WRLCK, 0, 10), None, "a's own range");
        let h = l.test(*F, &a, RDLCK, 120, 130).expect("b's write lock");
        assert_eq!((h.owner.conn, h.start, h.length()), (2, 100, 50));
        // The same process through another connection is another owner.
        assert_eq!(l.set(*F, &owner(3, 10), 9, WRLCK, 0, 1), Some(BLOCKED));
    }

    #[test]
    fn ranges_split_and_merge_as_fcntl_does() {
        let l = Locks::default();
        let (a, b) = (owner(1, 1), owner(1, 2));
        assert_eq!(l.set(*F, &a, 1, WRLCK, 0, end_of(0, 0)), Some(SUCCESS));
        // Unlock a hole in the middle: b may now lock it, and only it.
        assert_eq!(l.set(*F, &a, 1, UNLCK, 10, 20), Some(SUCCESS));
        assert_eq!(l.set(*F, &b, 2, WRLCK, 10, 20), Some(SUCCESS));
        assert_eq!(l.set(*F, &b, 2, WRLCK, 9, 20), Some(BLOCKED));
        assert_eq!(l.set(*F, &b, 2, WRLCK, 10, 21), Some(BLOCKED));
        // A read lock over part of a's write lock turns that part into a read lock.
        assert_eq!(l.set(*F, &a, 1, RDLCK, 30, 40), Some(SUCCESS));
        assert_eq!(l.set(*F, &b, 2, RDLCK, 30, 40), Some(SUCCESS));
        assert_eq!(l.set(*F, &b, 2, RDLCK, 29, 40), Some(BLOCKED));
        // Unlocking all clears the file; adjacent ranges of one owner and type merge.
        assert_eq!(l.set(*F, &a, 1, UNLCK, 0, u64::MAX), Some(SUCCESS));
        assert_eq!(l.set(*F, &b, 2, UNLCK, 0, u64::MAX), Some(SUCCESS));
        assert_eq!(l.files(), 0);
        assert_eq!(l.set(*F, &a, 1, WRLCK, 0, 10), Some(SUCCESS));
        assert_eq!(l.set(*F, &a, 1, WRLCK, 10, 20), Some(SUCCESS));
        let h = l.test(*F, &b, RDLCK, 5, 15).expect("a's lock");
        assert_eq!((h.start, h.end), (0, 20));
        assert_eq!(l.set(*F, &a, 1, 3, 0, 1), None, "unknown type");
        assert_eq!(l.set(*F, &a, 1, WRLCK, 5, 5), None, "empty range");
    }

    #[test]
    fn clunk_and_disconnect_release() {
        let l = Locks::default();
        let (a, b) = (owner(1, 1), owner(2, 1));
        l.set(*F, &a, 4, WRLCK, 0, 10);
        l.set(*F, &a, 5, WRLCK, 20, 30);
        l.set(*F, &b, 1, RDLCK, 40, 50);
        l.release_fid(1, 4);
        assert_eq!(l.set(*F, &b, 1, WRLCK, 0, 10), Some(SUCCESS));
        assert_eq!(l.set(*F, &b, 1, WRLCK, 20, 30), Some(BLOCKED));
        l.release_conn(1);
        assert_eq!(l.set(*F, &b, 1, WRLCK, 20, 30), Some(SUCCESS));
        l.release_conn(2);
        assert_eq!(l.files(), 0);
    }
}
