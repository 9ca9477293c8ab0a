//! The oracle of the `server_seq` fuzz target (reliability plan T11), shared with the corpus
//! replay in `gefsd/tests/server_corpus.rs`.
//!
//! The input drives an `arbitrary::Unstructured` that picks a sequence of T-messages over a
//! few fids, tags, names and users, sent through an in-process session of a real server (its
//! handlers, fid table, limits and workers). Invariants, after every message:
//! - exactly one reply, of the type answering the request or `Rerror` (`Rlerror` once the
//!   session has negotiated 9P2000.L, after which 9P2000.L requests are sent too) (the session
//!   returns one reply per call; its type is checked here);
//! - the reply encodes within the negotiated msize;
//! - the fid table never exceeds its limit, and is empty after a successful Tversion;
//! - no panic, and the file system never becomes read-only (only storage faults may do that).

use arbitrary::Unstructured;

use gefsd::proto::dotl::{Flock, SetAttr, NONUNAME};
use gefsd::proto::{Dialect, Rmsg, RmsgL, Stat, Tmsg, TmsgL, MSIZE_DEFAULT, NOFID};
use gefsd::server::Server;

const NAMES: [&str; 8] = ["a", "b", "..", "d", ".", "", "dump", "x/y"];
const USERS: [&str; 4] = ["", "none", "adm", "nobody"];
const SPECS: [&str; 7] = ["", "main", "dump", "%main", "adm", "%adm", "nope"];
const PERMS: [u32; 6] = [
    0o644,
    0o777 | 0x8000_0000,
    0x4000_0666,
    0x2000_0666,
    0o400,
    0x0800_0000,
];

fn pick<'a, T: Copy>(u: &mut Unstructured<'a>, xs: &[T]) -> arbitrary::Result<T> {
    Ok(*u.choose(xs)?)
}

fn fid(u: &mut Unstructured<'_>) -> arbitrary::Result<u32> {
    Ok(if u.ratio(1, 32)? {
        NOFID
    } else {
        u.int_in_range(0..=5)?
    })
}

fn offset(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => 0,
        1 => u.int_in_range(0..=70_000)?,
        2 => u64::MAX - u.int_in_range(0..=10)?,
        _ => 1 << 60,
    })
}

fn stat(u: &mut Unstructured<'_>, me: &str) -> arbitrary::Result<Stat> {
    let mut s = Stat::dont_touch();
    if u.arbitrary()? {
        return Ok(s);
    }
    if u.ratio(1, 3)? {
        s.name = pick(u, &NAMES)?.to_string();
    }
    if u.ratio(1, 3)? {
        s.length = offset(u)?;
    }
    if u.ratio(1, 3)? {
        s.mode = u.arbitrary()?;
    }
    if u.ratio(1, 4)? {
        s.uid = if u.arbitrary()? {
            me.to_string()
        } else {
            pick(u, &USERS)?.to_string()
        };
    }
    if u.ratio(1, 4)? {
        s.gid = pick(u, &USERS)?.to_string();
    }
    if u.ratio(1, 8)? {
        s.qid.path = u.arbitrary()?;
    }
    if u.ratio(1, 4)? {
        s.mtime = u.arbitrary()?;
    }
    Ok(s)
}

fn message(u: &mut Unstructured<'_>, me: &str) -> arbitrary::Result<Tmsg> {
    Ok(match u.int_in_range(0..=14)? {
        0 => Tmsg::Version {
            msize: if u.arbitrary()? {
                MSIZE_DEFAULT
            } else {
                u.arbitrary()?
            },
            version: if u.ratio(7, 8)? {
                "9P2000".into()
            } else {
                "9P2000.L".into()
            },
        },
        1 => Tmsg::Auth {
            afid: fid(u)?,
            uname: me.into(),
            aname: String::new(),
        },
        2 => Tmsg::Attach {
            fid: fid(u)?,
            afid: if u.ratio(1, 16)? { 1 } else { NOFID },
            uname: if u.ratio(3, 4)? {
                me.to_string()
            } else {
                pick(u, &USERS)?.to_string()
            },
            aname: pick(u, &SPECS)?.to_string(),
        },
        3 => Tmsg::Flush {
            oldtag: u.int_in_range(0..=7)?,
        },
        4 => {
            let n = u.int_in_range(0..=4)?;
            let mut wnames = Vec::new();
            for _ in 0..n {
                wnames.push(pick(u, &NAMES)?.to_string());
            }
            Tmsg::Walk {
                fid: fid(u)?,
                newfid: fid(u)?,
                wnames,
            }
        }
        5 => Tmsg::Open {
            fid: fid(u)?,
            mode: u.arbitrary()?,
        },
        6 => Tmsg::Create {
            fid: fid(u)?,
            name: pick(u, &NAMES)?.to_string(),
            perm: if u.ratio(1, 8)? {
                u.arbitrary()?
            } else {
                pick(u, &PERMS)?
            },
            mode: pick(u, &[0u8, 1, 2, 3, 0x10, 0x40, 0x52])?,
        },
        7 => Tmsg::Read {
            fid: fid(u)?,
            offset: offset(u)?,
            count: u.arbitrary()?,
        },
        8 => {
            let n = u.int_in_range(0..=20_000)?;
            Tmsg::Write {
                fid: fid(u)?,
                offset: offset(u)?,
                data: vec![u.arbitrary::<u8>()?; n],
            }
        }
        9 => Tmsg::Clunk { fid: fid(u)? },
        10 => Tmsg::Remove { fid: fid(u)? },
        11 | 12 => Tmsg::Stat { fid: fid(u)? },
        _ => Tmsg::Wstat {
            fid: fid(u)?,
            stat: stat(u, me)?,
        },
    })
}

/// A 9P2000.L request.
fn lmessage(u: &mut Unstructured<'_>, me: &str) -> arbitrary::Result<TmsgL> {
    let name = |u: &mut Unstructured<'_>| -> arbitrary::Result<String> {
        Ok(pick(u, &NAMES)?.to_string())
    };
    Ok(match u.int_in_range(0..=17)? {
        0 => TmsgL::Attach {
            fid: fid(u)?,
            afid: NOFID,
            uname: if u.arbitrary()? {
                me.into()
            } else {
                String::new()
            },
            aname: pick(u, &SPECS)?.to_string(),
            n_uname: pick(u, &[1, 0, 4242, NONUNAME])?,
        },
        1 => TmsgL::Lopen {
            fid: fid(u)?,
            flags: pick(u, &[0, 1, 2, 3, 0o1002, 0o200_000, 0o2_304_000])?,
        },
        2 => TmsgL::Lcreate {
            fid: fid(u)?,
            name: name(u)?,
            flags: pick(u, &[0o102, 0o1102, 0o101])?,
            mode: pick(u, &[0o100_644, 0o4755, 0o7777, u32::MAX])?,
            gid: pick(u, &[1, 0, u32::MAX, 4242])?,
        },
        3 => TmsgL::Mkdir {
            dfid: fid(u)?,
            name: name(u)?,
            mode: pick(u, &[0o755, 0o1777, 0o2775])?,
            gid: pick(u, &[1, 0, 4242])?,
        },
        4 => TmsgL::Symlink {
            fid: fid(u)?,
            name: name(u)?,
            symtgt: name(u)?,
            gid: 1,
        },
        5 => TmsgL::Mknod {
            dfid: fid(u)?,
            name: name(u)?,
            mode: pick(u, &[0o010_644, 0o140_600, 0o020_600, 0o100_600, 0o040_755])?,
            major: 1,
            minor: 3,
            gid: 1,
        },
        6 => TmsgL::Rename {
            fid: fid(u)?,
            dfid: fid(u)?,
            name: name(u)?,
        },
        7 => TmsgL::Renameat {
            olddirfid: fid(u)?,
            oldname: name(u)?,
            newdirfid: fid(u)?,
            newname: name(u)?,
        },
        8 => TmsgL::Unlinkat {
            dirfid: fid(u)?,
            name: name(u)?,
            flags: pick(u, &[0, 0x200, 1])?,
        },
        9 => TmsgL::Getattr {
            fid: fid(u)?,
            request_mask: u.arbitrary()?,
        },
        10 => TmsgL::Setattr {
            fid: fid(u)?,
            attr: SetAttr {
                valid: u.arbitrary()?,
                mode: u.arbitrary()?,
                uid: pick(u, &[1, 0, u32::MAX, 4242])?,
                gid: pick(u, &[1, 0, u32::MAX, 4242])?,
                size: offset(u)?,
                atime_sec: u.arbitrary()?,
                atime_nsec: u.arbitrary()?,
                mtime_sec: u.arbitrary()?,
                mtime_nsec: u.arbitrary()?,
            },
        },
        11 => TmsgL::Readdir {
            fid: fid(u)?,
            offset: pick(u, &[0, 1, 2, 3, 7, u64::MAX])?,
            count: u.arbitrary()?,
        },
        12 => TmsgL::Fsync {
            fid: fid(u)?,
            datasync: 0,
        },
        13 | 14 => {
            let lock = Flock {
                ty: u.int_in_range(0..=3)?,
                flags: u.int_in_range(0..=3)?,
                start: offset(u)?,
                length: offset(u)?,
                proc_id: u.int_in_range(1..=3)?,
                client_id: "fuzz".into(),
            };
            if u.arbitrary()? {
                TmsgL::Lock { fid: fid(u)?, lock }
            } else {
                TmsgL::Getlock {
                    fid: fid(u)?,
                    lock: Flock { flags: 0, ..lock },
                }
            }
        }
        15 => TmsgL::Readlink { fid: fid(u)? },
        16 => TmsgL::Link {
            dfid: fid(u)?,
            fid: fid(u)?,
            name: name(u)?,
        },
        _ => TmsgL::Statfs { fid: fid(u)? },
    })
}

/// Whether `r` answers `t`.
fn answers(t: &Tmsg, r: &Rmsg) -> bool {
    if let Tmsg::L(l) = t {
        return match (l, r) {
            (_, Rmsg::L(RmsgL::Lerror { .. })) => true,
            (TmsgL::Attach { .. }, Rmsg::Attach { .. }) => true,
            (TmsgL::Auth { .. }, Rmsg::Auth { .. }) => true,
            (l, Rmsg::L(x)) => x.msg_type() == l.msg_type() + 1,
            _ => false,
        };
    }
    matches!(
        (t, r),
        (_, Rmsg::Error { .. } | Rmsg::L(RmsgL::Lerror { .. }))
            | (Tmsg::Version { .. }, Rmsg::Version { .. })
            | (Tmsg::Auth { .. }, Rmsg::Auth { .. })
            | (Tmsg::Attach { .. }, Rmsg::Attach { .. })
            | (Tmsg::Flush { .. }, Rmsg::Flush)
            | (Tmsg::Walk { .. }, Rmsg::Walk { .. })
            | (Tmsg::Open { .. }, Rmsg::Open { .. })
            | (Tmsg::Create { .. }, Rmsg::Create { .. })
            | (Tmsg::Read { .. }, Rmsg::Read { .. })
            | (Tmsg::Write { .. }, Rmsg::Write { .. })
            | (Tmsg::Clunk { .. }, Rmsg::Clunk)
            | (Tmsg::Remove { .. }, Rmsg::Remove)
            | (Tmsg::Stat { .. }, Rmsg::Stat { .. })
            | (Tmsg::Wstat { .. }, Rmsg::Wstat)
    )
}

/// Run one input against `server` (whose first administrator is `me`) in 9P2000, then in
/// 9P2000.L; returns how many requests succeeded (for the corpus replay's coverage floor).
/// (The fuzz target's entry; the replay counts each dialect with [`check_in`].)
#[allow(dead_code)]
pub fn check(server: &Server, me: &str, data: &[u8]) -> usize {
    check_in(server, me, data, Dialect::P9) + check_in(server, me, data, Dialect::L)
}

/// Run one input, starting in `dialect`.
pub fn check_in(server: &Server, me: &str, data: &[u8], mut dialect: Dialect) -> usize {
    let mut u = Unstructured::new(data);
    let s = server.session(Some(me.to_string()));
    let mut msize = MSIZE_DEFAULT;
    let v = s.call(
        0xFFFF,
        Tmsg::Version {
            msize,
            version: if dialect == Dialect::L {
                "9P2000.L".into()
            } else {
                "9P2000".into()
            },
        },
    );
    assert!(matches!(v, Rmsg::Version { .. }));
    let mut ok = 0;
    for step in 0..64u16 {
        let m = if dialect == Dialect::L && u.ratio(1, 2).unwrap_or(false) {
            lmessage(&mut u, me).map(Tmsg::L)
        } else {
            message(&mut u, me)
        };
        let Ok(m) = m else { break };
        let is_version = matches!(m, Tmsg::Version { .. });
        let r = s.call(step % 8, m.clone());
        assert!(answers(&m, &r), "{m:?} answered by {r:?}");
        if !matches!(r, Rmsg::Error { .. } | Rmsg::L(RmsgL::Lerror { .. })) {
            ok += 1;
        }
        assert!(
            r.encoded_len() <= msize.max(gefsd::proto::MSIZE_MIN) as usize,
            "reply over msize: {r:?}"
        );
        assert!(s.fids() <= s.max_fids(), "fid table over its limit");
        if let (true, Rmsg::Version { msize: m, version }) = (is_version, &r) {
            assert_eq!(s.fids(), 0, "Tversion must free every fid");
            if let Some(d) = Dialect::of(version) {
                msize = *m;
                dialect = d;
            }
        }
        assert!(
            !server.core().store().is_read_only(),
            "a client made the file system read-only with {m:?}"
        );
    }
    ok
}
