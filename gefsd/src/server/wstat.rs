//! Twstat as real clients send it.
//!
//! stat(5) asks a client to send "don't touch" (all ones, or an empty string) in every field
//! it does not change, and the strict reading refuses any other value in type, dev, qid and
//! muid. Real clients send more:
//! - Linux v9fs renames with a blank wstat that also sets muid to the mount's user name
//!   (`v9fs_vfs_rename`);
//! - 9pfs and python-9p programs send the whole stat they were given, with one field changed;
//! - plan9port and Plan 9 programs start from `nulldir` and set the fields they change.
//!
//! [`normalize`] turns each of these into the strict form by comparing the request with what a
//! `Tstat` would report now: a field equal to its current value is no change and becomes "don't
//! touch"; muid naming the requester becomes "don't touch" too (every change sets muid to the
//! requester anyway). The qid version is always "don't touch": it is the server's to bump, and
//! a copy of an earlier stat carries the version of that moment, which is no request. What
//! remains in type, dev, qid or muid after that is a real change, which 9P forbids.
//!
//! A request that was not all "don't touch" on the wire but is after normalizing changes
//! nothing: it is answered at once and is not a sync (only the literal null wstat is).

use crate::proto::Stat;

/// The request `req` with every field that equals `cur` (the file's stat as `Tstat` would
/// report it now), and a muid naming one of `requester` (the requester's names), replaced by
/// "don't touch".
pub fn normalize(req: &Stat, cur: &Stat, requester: &[&str]) -> Stat {
    let dt = Stat::dont_touch();
    let mut s = req.clone();
    if s.ty == cur.ty {
        s.ty = dt.ty;
    }
    if s.dev == cur.dev {
        s.dev = dt.dev;
    }
    if s.qid.ty == cur.qid.ty {
        s.qid.ty = dt.qid.ty;
    }
    if s.qid.path == cur.qid.path {
        s.qid.path = dt.qid.path;
    }
    s.qid.version = dt.qid.version;
    if s.mode == cur.mode {
        s.mode = dt.mode;
    }
    if s.atime == cur.atime {
        s.atime = dt.atime;
    }
    if s.mtime == cur.mtime {
        s.mtime = dt.mtime;
    }
    if s.length == cur.length {
        s.length = dt.length;
    }
    for (field, now) in [
        (&mut s.name, &cur.name),
        (&mut s.uid, &cur.uid),
        (&mut s.gid, &cur.gid),
    ] {
        if field == now {
            field.clear();
        }
    }
    if s.muid == cur.muid || requester.contains(&s.muid.as_str()) {
        s.muid.clear();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Qid;

    fn cur() -> Stat {
        Stat {
            ty: 0,
            dev: 0,
            qid: Qid {
                ty: 0,
                version: 7,
                path: 42,
            },
            mode: 0o644,
            atime: 100,
            mtime: 200,
            length: 5,
            name: "f".into(),
            uid: "alice".into(),
            gid: "staff".into(),
            muid: "bob".into(),
        }
    }

    #[test]
    fn a_full_copy_is_no_change() {
        let n = normalize(&cur(), &cur(), &["alice"]);
        assert!(n.is_dont_touch(), "{n:?}");
        // A copy with an older version is no change either.
        let mut old = cur();
        old.qid.version = 3;
        assert!(normalize(&old, &cur(), &["alice"]).is_dont_touch());
    }

    #[test]
    fn muid_of_the_requester_or_unchanged_is_no_change() {
        let mut r = Stat::dont_touch();
        r.muid = "carol".into();
        assert!(normalize(&r, &cur(), &["carol"]).is_dont_touch());
        r.muid = "bob".into();
        assert!(normalize(&r, &cur(), &["carol"]).is_dont_touch());
        r.muid = "mallory".into();
        assert_eq!(normalize(&r, &cur(), &["carol"]).muid, "mallory");
    }

    #[test]
    fn real_changes_stay() {
        let mut r = cur();
        r.name = "g".into();
        r.length = 0;
        r.qid.path = 43;
        let n = normalize(&r, &cur(), &["alice"]);
        assert_eq!((n.name.as_str(), n.length, n.qid.path), ("g", 0, 43));
        assert!(n.uid.is_empty() && n.mode == u32::MAX && n.mtime == u32::MAX);
    }
}
