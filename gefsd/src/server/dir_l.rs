//! 9P2000.L directory reads (`Treaddir`).
//!
//! Each entry carries an offset that the client passes back to continue after it (Linux does,
//! from whichever entry its buffer ended at, even in the middle of the previous reply). The
//! offsets here are cookies, numbered per open fid: 1 is "after `.`", 2 "after `..`", and every
//! other entry returned gets a fresh number mapped to its name. Entries come from the tree in
//! name order, so "after this name" is a position that stays meaningful while the directory
//! changes: entries added or removed elsewhere never shift it (the offsets are stable), and an
//! entry removed after it was returned still marks its place.
//!
//! The map keeps the newest numbers, at most [`MAX_COOKIES`] of them and [`MAX_COOKIE_BYTES`]
//! of names (so an open directory holds at most that much, whatever a client does); an offset
//! never handed out, or forgotten, is refused (EINVAL). Linux keeps each reply and asks for
//! more only from the last entry of the previous one, so only `seekdir` to an old position
//! can meet a forgotten offset. A listing starts with `.` and `..`, as Linux's own file systems do (the
//! kernel does not add them for 9P).

use std::collections::BTreeMap;

use gefs_core::fs::Xdir;

use super::err::{msg, refuse, Error, Result};
use super::posix::dirent_type;
use crate::proto::dotl::Dirent;
use crate::proto::Qid;

/// Most cookies kept per open directory.
pub const MAX_COOKIES: usize = 4096;
/// Most bytes of names kept per open directory.
pub const MAX_COOKIE_BYTES: usize = 64 << 10;

const AFTER_DOT: u64 = 1;
const AFTER_DOTDOT: u64 = 2;

/// Where a listing continues.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pos {
    Start,
    AfterDot,
    AfterDotDot,
    After(Vec<u8>),
}

/// An open directory's cookies.
#[derive(Debug)]
pub struct LCursor {
    cookies: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    next: u64,
}

impl Default for LCursor {
    fn default() -> Self {
        LCursor {
            cookies: BTreeMap::new(),
            bytes: 0,
            next: AFTER_DOTDOT + 1,
        }
    }
}

/// Entries after a name, in name order: `fetch(after, limit)`.
pub type Fetch<'a> = dyn FnMut(Option<&[u8]>, usize) -> Result<Vec<(Vec<u8>, Xdir)>> + 'a;

impl LCursor {
    /// Entries after `offset`, packed into at most `count` bytes. `dot` and `dotdot` are the
    /// qids of the directory and of its parent.
    pub fn read(
        &mut self,
        offset: u64,
        count: u32,
        dot: Qid,
        dotdot: Qid,
        fetch: &mut Fetch<'_>,
    ) -> Result<Vec<u8>> {
        let mut pos = match offset {
            0 => Pos::Start,
            AFTER_DOT => Pos::AfterDot,
            AFTER_DOTDOT => Pos::AfterDotDot,
            n => match self.cookies.get(&n) {
                Some(name) => Pos::After(name.clone()),
                None => return Err(Error::Detail("Invalid argument".into(), bad_offset())),
            },
        };
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let push = |d: &Dirent, out: &mut Vec<u8>| -> Result<bool> {
            if out.len().saturating_add(d.encoded_len()) > count {
                return Ok(false);
            }
            d.encode(out)
                .map_err(|e| Error::Detail(format!("directory entry: {e}"), bad_offset()))?;
            Ok(true)
        };
        for (at, name, q, next) in [
            (Pos::Start, ".", dot, AFTER_DOT),
            (Pos::AfterDot, "..", dotdot, AFTER_DOTDOT),
        ] {
            if pos != at {
                continue;
            }
            let d = Dirent {
                qid: q,
                offset: next,
                ty: 4,
                name: name.into(),
            };
            if !push(&d, &mut out)? {
                return finish(out);
            }
            pos = if next == AFTER_DOT {
                Pos::AfterDot
            } else {
                Pos::AfterDotDot
            };
        }
        let mut after = match pos {
            Pos::After(n) => Some(n),
            _ => None,
        };
        loop {
            let room = count.saturating_sub(out.len());
            let limit = (room / 24).clamp(1, 512);
            let batch = fetch(after.as_deref(), limit)?;
            let n = batch.len();
            for (name, x) in batch {
                let cookie = self.next;
                let d = Dirent {
                    qid: super::dir::qid(gefs_core::fs::Qid::of(&x)),
                    offset: cookie,
                    ty: dirent_type(&x),
                    name: String::from_utf8_lossy(&name).into_owned(),
                };
                if !push(&d, &mut out)? {
                    return finish(out);
                }
                self.next += 1;
                self.remember(cookie, &name);
                after = Some(name);
            }
            if n < limit {
                return Ok(out);
            }
        }
    }
}

impl LCursor {
    /// Map `cookie` to `name`, forgetting the oldest beyond the limits (never the newest).
    fn remember(&mut self, cookie: u64, name: &[u8]) {
        self.bytes += name.len();
        self.cookies.insert(cookie, name.to_vec());
        while self.cookies.len() > 1
            && (self.cookies.len() > MAX_COOKIES || self.bytes > MAX_COOKIE_BYTES)
        {
            if let Some((_, old)) = self.cookies.pop_first() {
                self.bytes -= old.len();
            }
        }
    }
}

fn bad_offset() -> u32 {
    gefs_core::fs::errno::EINVAL
}

/// A reply that ran out of room: refused if not even one entry fitted (an empty reply would
/// read as the end of the directory).
fn finish(out: Vec<u8>) -> Result<Vec<u8>> {
    if out.is_empty() {
        return refuse(msg::DIR_ENTRY_TOO_BIG);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(names: &[&str]) -> Vec<(Vec<u8>, Xdir)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let x = Xdir {
                    qid_path: i as u64 + 10,
                    ..Xdir::default()
                };
                (n.as_bytes().to_vec(), x)
            })
            .collect()
    }

    type Entries = Vec<(Vec<u8>, Xdir)>;

    fn source(d: &[(Vec<u8>, Xdir)]) -> impl FnMut(Option<&[u8]>, usize) -> Result<Entries> + '_ {
        move |after, limit| {
            Ok(d.iter()
                .filter(|(n, _)| after.is_none_or(|a| n.as_slice() > a))
                .take(limit)
                .cloned()
                .collect())
        }
    }

    fn names(b: &[u8]) -> Vec<(String, u64)> {
        Dirent::decode_all(b)
            .expect("entries")
            .into_iter()
            .map(|d| (d.name, d.offset))
            .collect()
    }

    #[test]
    fn offsets_resume_anywhere_and_survive_changes() {
        let mut c = LCursor::default();
        let d = dir(&["a", "b", "c", "d"]);
        let q = Qid::default();
        let all = names(&c.read(0, 4096, q, q, &mut source(&d)).expect("read"));
        let got: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, [".", "..", "a", "b", "c", "d"]);
        // Resume after "b" (mid-reply, as Linux does when its buffer fills).
        let off_b = all[3].1;
        let d2 = dir(&["a", "aa", "c", "d", "e"]); // "b" removed, "aa" and "e" added
        let rest = names(&c.read(off_b, 4096, q, q, &mut source(&d2)).expect("read"));
        let got: Vec<&str> = rest.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, ["c", "d", "e"]);
        // The end: nothing after the last entry.
        let last = rest.last().expect("entries").1;
        assert!(c
            .read(last, 4096, q, q, &mut source(&d2))
            .expect("end")
            .is_empty());
        // Unknown offsets are refused; 1 and 2 are the dot entries.
        assert!(c.read(999_999, 4096, q, q, &mut source(&d2)).is_err());
        let after_dot = names(&c.read(1, 4096, q, q, &mut source(&d2)).expect("read"));
        assert_eq!(after_dot[0].0, "..");
    }

    #[test]
    fn memory_is_bounded_and_the_newest_offsets_kept() {
        let mut c = LCursor::default();
        let all: Vec<String> = (0..3 * MAX_COOKIES).map(|i| format!("{i:0200}")).collect();
        let d: Vec<(Vec<u8>, Xdir)> = all
            .iter()
            .map(|n| (n.clone().into_bytes(), Xdir::default()))
            .collect();
        let q = Qid::default();
        let (mut off, mut n) = (0, 0);
        loop {
            let b = c.read(off, 1 << 20, q, q, &mut source(&d)).expect("read");
            let Some(last) = names(&b).pop() else { break };
            n += Dirent::decode_all(&b).expect("entries").len();
            off = last.1;
        }
        assert_eq!(n, all.len() + 2);
        assert!(c.bytes <= MAX_COOKIE_BYTES && c.cookies.len() <= MAX_COOKIES);
        assert!(c.cookies.contains_key(&off));
    }

    #[test]
    fn small_counts_return_whole_entries_or_refuse() {
        let mut c = LCursor::default();
        let d = dir(&["alpha", "beta"]);
        let q = Qid::default();
        let one = names(&c.read(0, 30, q, q, &mut source(&d)).expect("read"));
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(c.read(0, 10, q, q, &mut source(&d)).is_err());
        // Reading the whole directory in small pieces sees every entry once.
        let (mut off, mut seen) = (0, Vec::new());
        loop {
            let b = c.read(off, 40, q, q, &mut source(&d)).expect("read");
            if b.is_empty() {
                break;
            }
            let got = names(&b);
            off = got.last().expect("one").1;
            seen.extend(got.into_iter().map(|(n, _)| n));
        }
        assert_eq!(seen, [".", "..", "alpha", "beta"]);
    }
}
