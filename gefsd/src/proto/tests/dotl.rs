//! The 9P2000.L codec: round trips of every message (T10), its malformed-message table (T12:
//! truncated, oversized, wrong counts, wrong direction, names that are not UTF-8, the 9P2000
//! messages the dialect drops), truncation at every offset, and names with `..` and `/`,
//! which decode (the server refuses them: `gefsd/tests/dotl.rs`).

use proptest::collection::vec;
use proptest::prelude::*;

use super::strategies::{qid, string};
use super::{frame, resized};
use crate::proto::dotl::ltype::*;
use crate::proto::dotl::{Attr, Dirent, Flock, SetAttr, StatFs};
use crate::proto::msgtype::*;
use crate::proto::{
    decode_r_in, decode_t, decode_t_in, encode_r, encode_t, DecodeErrorKind as K, Dialect, Rmsg,
    RmsgL, Tmsg, TmsgL, MSIZE_DEFAULT, MSIZE_MIN,
};

const TAG: u16 = 0x4321;
const L: Dialect = Dialect::L;

fn flock(get: bool) -> impl Strategy<Value = Flock> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        string(),
    )
        .prop_map(
            move |(ty, flags, start, length, proc_id, client_id)| Flock {
                ty,
                flags: if get { 0 } else { flags },
                start,
                length,
                proc_id,
                client_id,
            },
        )
}

fn setattr() -> impl Strategy<Value = SetAttr> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        vec(any::<u64>(), 5),
    )
        .prop_map(|((valid, mode, uid, gid), t)| SetAttr {
            valid,
            mode,
            uid,
            gid,
            size: t[0],
            atime_sec: t[1],
            atime_nsec: t[2],
            mtime_sec: t[3],
            mtime_nsec: t[4],
        })
}

fn attr() -> impl Strategy<Value = Attr> {
    (qid(), any::<(u32, u32, u32)>(), vec(any::<u64>(), 16)).prop_map(
        |(qid, (mode, uid, gid), v)| Attr {
            valid: v[0],
            qid,
            mode,
            uid,
            gid,
            nlink: v[1],
            rdev: v[2],
            size: v[3],
            blksize: v[4],
            blocks: v[5],
            atime_sec: v[6],
            atime_nsec: v[7],
            mtime_sec: v[8],
            mtime_nsec: v[9],
            ctime_sec: v[10],
            ctime_nsec: v[11],
            btime_sec: v[12],
            btime_nsec: v[13],
            gen: v[14],
            data_version: v[15],
        },
    )
}

/// Every 9P2000.L request, and the 9P2000 ones the dialect keeps.
pub(super) fn tmsg_l() -> impl Strategy<Value = Tmsg> {
    let u = any::<u32>;
    let l = prop_oneof![
        (u(), string(), string(), u()).prop_map(|(afid, uname, aname, n_uname)| TmsgL::Auth {
            afid,
            uname,
            aname,
            n_uname
        }),
        (u(), u(), string(), string(), u()).prop_map(|(fid, afid, uname, aname, n_uname)| {
            TmsgL::Attach {
                fid,
                afid,
                uname,
                aname,
                n_uname,
            }
        }),
        u().prop_map(|fid| TmsgL::Statfs { fid }),
        (u(), u()).prop_map(|(fid, flags)| TmsgL::Lopen { fid, flags }),
        (u(), string(), u(), u(), u()).prop_map(|(fid, name, flags, mode, gid)| TmsgL::Lcreate {
            fid,
            name,
            flags,
            mode,
            gid
        }),
        (u(), string(), string(), u()).prop_map(|(fid, name, symtgt, gid)| TmsgL::Symlink {
            fid,
            name,
            symtgt,
            gid
        }),
        (u(), string(), u(), u(), u(), u()).prop_map(|(dfid, name, mode, major, minor, gid)| {
            TmsgL::Mknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            }
        }),
        (u(), u(), string()).prop_map(|(fid, dfid, name)| TmsgL::Rename { fid, dfid, name }),
        u().prop_map(|fid| TmsgL::Readlink { fid }),
        (u(), any::<u64>()).prop_map(|(fid, request_mask)| TmsgL::Getattr { fid, request_mask }),
        (u(), setattr()).prop_map(|(fid, attr)| TmsgL::Setattr { fid, attr }),
        (u(), u(), string()).prop_map(|(fid, newfid, name)| TmsgL::Xattrwalk { fid, newfid, name }),
        (u(), string(), any::<u64>(), u()).prop_map(|(fid, name, attr_size, flags)| {
            TmsgL::Xattrcreate {
                fid,
                name,
                attr_size,
                flags,
            }
        }),
        (u(), any::<u64>(), u()).prop_map(|(fid, offset, count)| TmsgL::Readdir {
            fid,
            offset,
            count
        }),
        (u(), u()).prop_map(|(fid, datasync)| TmsgL::Fsync { fid, datasync }),
        (u(), flock(false)).prop_map(|(fid, lock)| TmsgL::Lock { fid, lock }),
        (u(), flock(true)).prop_map(|(fid, lock)| TmsgL::Getlock { fid, lock }),
        (u(), u(), string()).prop_map(|(dfid, fid, name)| TmsgL::Link { dfid, fid, name }),
        (u(), string(), u(), u()).prop_map(|(dfid, name, mode, gid)| TmsgL::Mkdir {
            dfid,
            name,
            mode,
            gid
        }),
        (u(), string(), u(), string()).prop_map(|(olddirfid, oldname, newdirfid, newname)| {
            TmsgL::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            }
        }),
        (u(), string(), u()).prop_map(|(dirfid, name, flags)| TmsgL::Unlinkat {
            dirfid,
            name,
            flags
        }),
    ];
    prop_oneof![
        4 => l.prop_map(Tmsg::L),
        1 => super::strategies::tmsg().prop_filter("kept by 9P2000.L", |m| matches!(
            m,
            Tmsg::Version { .. }
                | Tmsg::Flush { .. }
                | Tmsg::Walk { .. }
                | Tmsg::Read { .. }
                | Tmsg::Write { .. }
                | Tmsg::Clunk { .. }
                | Tmsg::Remove { .. }
        )),
    ]
}

/// Every 9P2000.L reply, and the 9P2000 ones the dialect keeps.
pub(super) fn rmsg_l() -> impl Strategy<Value = Rmsg> {
    let u = any::<u32>;
    let statfs = (u(), u(), vec(any::<u64>(), 6), u()).prop_map(|(ty, bsize, v, namelen)| {
        RmsgL::Statfs(StatFs {
            ty,
            bsize,
            blocks: v[0],
            bfree: v[1],
            bavail: v[2],
            files: v[3],
            ffree: v[4],
            fsid: v[5],
            namelen,
        })
    });
    let l = prop_oneof![
        u().prop_map(|ecode| RmsgL::Lerror { ecode }),
        statfs,
        (qid(), u()).prop_map(|(qid, iounit)| RmsgL::Lopen { qid, iounit }),
        (qid(), u()).prop_map(|(qid, iounit)| RmsgL::Lcreate { qid, iounit }),
        qid().prop_map(|qid| RmsgL::Symlink { qid }),
        qid().prop_map(|qid| RmsgL::Mknod { qid }),
        qid().prop_map(|qid| RmsgL::Mkdir { qid }),
        string().prop_map(|target| RmsgL::Readlink { target }),
        attr().prop_map(RmsgL::Getattr),
        any::<u64>().prop_map(|size| RmsgL::Xattrwalk { size }),
        vec(any::<u8>(), 0..512).prop_map(|data| RmsgL::Readdir { data }),
        any::<u8>().prop_map(|status| RmsgL::Lock { status }),
        flock(true).prop_map(RmsgL::Getlock),
        Just(RmsgL::Rename),
        Just(RmsgL::Setattr),
        Just(RmsgL::Xattrcreate),
        Just(RmsgL::Fsync),
        Just(RmsgL::Link),
        Just(RmsgL::Renameat),
        Just(RmsgL::Unlinkat),
    ];
    prop_oneof![
        4 => l.prop_map(Rmsg::L),
        1 => super::strategies::rmsg().prop_filter("kept by 9P2000.L", |m| matches!(
            m,
            Rmsg::Version { .. }
                | Rmsg::Auth { .. }
                | Rmsg::Attach { .. }
                | Rmsg::Flush
                | Rmsg::Walk { .. }
                | Rmsg::Read { .. }
                | Rmsg::Write { .. }
                | Rmsg::Clunk
                | Rmsg::Remove
        )),
    ]
}

fn t(m: &Tmsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_t(TAG, m, &mut out).expect("encode");
    out
}

fn r(m: &Rmsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_r(TAG, m, &mut out).expect("encode");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn tmsg_l_round_trip(msg in tmsg_l()) {
        let b = t(&msg);
        prop_assert_eq!(msg.encoded_len(), b.len());
        prop_assert_eq!(b[4], msg.msg_type());
        prop_assert_eq!(decode_t_in(&b, MSIZE_DEFAULT, L), Ok((TAG, msg.clone())));
        prop_assert!(decode_r_in(&b, MSIZE_DEFAULT, L).is_err());
        // A 9P2000.L-only message is unknown to 9P2000.
        if matches!(msg, Tmsg::L(_)) {
            prop_assert!(decode_t(&b, MSIZE_DEFAULT).is_err());
        }
        for cut in 0..b.len() {
            prop_assert!(decode_t_in(&b[..cut], MSIZE_DEFAULT, L).is_err());
            prop_assert!(decode_t_in(&resized(&b[..cut]), MSIZE_DEFAULT, L).is_err());
        }
    }

    #[test]
    fn rmsg_l_round_trip(msg in rmsg_l()) {
        let b = r(&msg);
        prop_assert_eq!(msg.encoded_len(), b.len());
        prop_assert_eq!(b[4], msg.msg_type());
        prop_assert_eq!(decode_r_in(&b, MSIZE_DEFAULT, L), Ok((TAG, msg.clone())));
        prop_assert!(decode_t_in(&b, MSIZE_DEFAULT, L).is_err());
        for cut in 0..b.len() {
            prop_assert!(decode_r_in(&b[..cut], MSIZE_DEFAULT, L).is_err());
        }
    }

    #[test]
    fn framed_garbage_never_panics_l(ty: u8, body in vec(any::<u8>(), 0..200)) {
        let b = frame(ty, TAG, &body);
        for msize in [MSIZE_MIN, MSIZE_DEFAULT] {
            if let Ok((tag, m)) = decode_t_in(&b, msize, L) {
                let mut out = Vec::new();
                encode_t(tag, &m, &mut out).expect("re-encode");
                prop_assert_eq!(&out, &b);
            }
            if let Ok((tag, m)) = decode_r_in(&b, msize, L) {
                let mut out = Vec::new();
                encode_r(tag, &m, &mut out).expect("re-encode");
                prop_assert_eq!(&out, &b);
            }
        }
    }
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

fn s(text: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(text.len())
        .expect("short")
        .to_le_bytes()
        .to_vec();
    v.extend_from_slice(text);
    v
}

/// (name, frame, decode as a reply, expected error).
fn cases() -> Vec<(&'static str, Vec<u8>, bool, K)> {
    let trunc = |field| K::Truncated { field };
    let mut v = Vec::new();
    // Every request type with an empty body: truncated in its first field.
    for (ty, field) in [
        (TSTATFS, "Tstatfs fid"),
        (TLOPEN, "Tlopen fid"),
        (TLCREATE, "Tlcreate fid"),
        (TSYMLINK, "Tsymlink fid"),
        (TMKNOD, "Tmknod dfid"),
        (TRENAME, "Trename fid"),
        (TREADLINK, "Treadlink fid"),
        (TGETATTR, "Tgetattr fid"),
        (TSETATTR, "Tsetattr fid"),
        (TXATTRWALK, "Txattrwalk fid"),
        (TXATTRCREATE, "Txattrcreate fid"),
        (TREADDIR, "Treaddir fid"),
        (TFSYNC, "Tfsync fid"),
        (TLOCK, "Tlock fid"),
        (TGETLOCK, "Tgetlock fid"),
        (TLINK, "Tlink dfid"),
        (TMKDIR, "Tmkdir dfid"),
        (TRENAMEAT, "Trenameat olddirfid"),
        (TUNLINKAT, "Tunlinkat dirfid"),
        (TATTACH, "Tattach fid"),
        (TAUTH, "Tauth afid"),
    ] {
        v.push(("empty body", frame(ty, TAG, &[]), false, trunc(field)));
    }
    let mut add = |name, bytes, reply, want| v.push((name, bytes, reply, want));
    // Missing trailing fields.
    add(
        "Tattach without n_uname (a 9P2000 attach)",
        frame(
            TATTACH,
            TAG,
            &[&le32(0)[..], &le32(!0), &s(b"u"), &s(b"")].concat(),
        ),
        false,
        trunc("Tattach n_uname"),
    );
    add(
        "Tfsync without datasync",
        frame(TFSYNC, TAG, &le32(1)),
        false,
        trunc("Tfsync datasync"),
    );
    add(
        "Tgetattr with a 4-byte mask",
        frame(TGETATTR, TAG, &[le32(1), le32(0x7ff)].concat()),
        false,
        trunc("Tgetattr request_mask"),
    );
    // Wrong counts: a string longer than the frame, trailing bytes.
    add(
        "Tsymlink target count past the end",
        frame(
            TSYMLINK,
            TAG,
            &[&le32(1)[..], &s(b"l"), &[200, 0, b'x']].concat(),
        ),
        false,
        trunc("Tsymlink symtgt"),
    );
    add(
        "Trenameat newname count past the end",
        frame(
            TRENAMEAT,
            TAG,
            &[&le32(1)[..], &s(b"a"), &le32(2), &[9, 0]].concat(),
        ),
        false,
        trunc("Trenameat newname"),
    );
    add(
        "Tlock client_id count past the end",
        frame(
            TLOCK,
            TAG,
            &[
                &le32(1)[..],
                &[1],
                &le32(0),
                &[0; 16],
                &le32(7),
                &[0xff, 0xff],
            ]
            .concat(),
        ),
        false,
        trunc("Tlock client_id"),
    );
    add(
        "Tunlinkat with a trailing byte",
        frame(
            TUNLINKAT,
            TAG,
            &[&le32(1)[..], &s(b"x"), &le32(0), &[0]].concat(),
        ),
        false,
        K::TrailingBytes { count: 1 },
    );
    // Names that are not UTF-8.
    for (name, ty, body, field) in [
        (
            "Tlcreate name not UTF-8",
            TLCREATE,
            [
                &le32(1)[..],
                &s(b"\xff\xfe"),
                &le32(2),
                &le32(0o644),
                &le32(0),
            ]
            .concat(),
            "Tlcreate name",
        ),
        (
            "Tsymlink target not UTF-8",
            TSYMLINK,
            [&le32(1)[..], &s(b"l"), &s(b"\xc3"), &le32(0)].concat(),
            "Tsymlink symtgt",
        ),
        (
            "Trenameat oldname not UTF-8",
            TRENAMEAT,
            [&le32(1)[..], &s(b"\x80"), &le32(2), &s(b"b")].concat(),
            "Trenameat oldname",
        ),
        (
            "Tmkdir name not UTF-8",
            TMKDIR,
            [&le32(1)[..], &s(b"a\xffb"), &le32(0o755), &le32(0)].concat(),
            "Tmkdir name",
        ),
    ] {
        add(name, frame(ty, TAG, &body), false, K::InvalidUtf8 { field });
    }
    // Oversized: readdir data beyond the I/O unit.
    let big = crate::proto::iounit(MSIZE_MIN) + 1;
    let mut rd = le32(big).to_vec();
    rd.resize(rd.len() + big as usize, 0);
    add(
        "Rreaddir data beyond the I/O unit",
        frame(RREADDIR, TAG, &rd),
        true,
        K::DataTooLarge {
            count: big,
            max: big - 1,
        },
    );
    // The messages 9P2000.L drops, and the wrong direction.
    for ty in [TOPEN, TCREATE, TSTAT, TWSTAT] {
        add(
            "a 9P2000-only request",
            frame(ty, TAG, &le32(0)),
            false,
            K::UnknownType { ty },
        );
    }
    add(
        "Rerror in 9P2000.L",
        frame(RERROR, TAG, &s(b"no")),
        true,
        K::UnknownType { ty: RERROR },
    );
    add(
        "Rgetattr sent as a request",
        frame(RGETATTR, TAG, &[]),
        false,
        K::WrongDirection { ty: RGETATTR },
    );
    add(
        "Tgetattr sent as a reply",
        frame(TGETATTR, TAG, &[]),
        true,
        K::WrongDirection { ty: TGETATTR },
    );
    add(
        "Tlerror does not exist",
        frame(6, TAG, &[]),
        false,
        K::UnknownType { ty: 6 },
    );
    v
}

#[test]
fn malformed_l_frames_are_refused() {
    let all = cases();
    assert!(all.len() >= 40, "only {} cases", all.len());
    for (name, bytes, reply, want) in all {
        let msize = if matches!(want, K::DataTooLarge { .. }) {
            MSIZE_MIN
        } else {
            MSIZE_DEFAULT
        };
        let got = if reply {
            decode_r_in(&bytes, msize, L).map(|_| ())
        } else {
            decode_t_in(&bytes, msize, L).map(|_| ())
        };
        let err = got.expect_err(name);
        assert_eq!(err.kind(), &want, "{name}");
        assert_eq!(err.tag(), Some(TAG), "{name}: body errors keep the tag");
    }
}

/// Names with `..` and `/` are the server's to refuse; the codec passes them through intact.
#[test]
fn path_like_names_decode_unchanged() {
    for name in ["..", ".", "/", "a/b", "../../etc", ""] {
        let msgs = [
            TmsgL::Lcreate {
                fid: 1,
                name: name.into(),
                flags: 0,
                mode: 0,
                gid: 0,
            },
            TmsgL::Symlink {
                fid: 1,
                name: name.into(),
                symtgt: name.into(),
                gid: 0,
            },
            TmsgL::Renameat {
                olddirfid: 1,
                oldname: name.into(),
                newdirfid: 2,
                newname: name.into(),
            },
            TmsgL::Unlinkat {
                dirfid: 1,
                name: name.into(),
                flags: 0,
            },
        ];
        for m in msgs {
            let m = Tmsg::L(m);
            assert_eq!(decode_t_in(&t(&m), MSIZE_DEFAULT, L), Ok((TAG, m)));
        }
    }
}

#[test]
fn dirents_pack_and_unpack() {
    let ds = vec![
        Dirent {
            qid: crate::proto::Qid::default(),
            offset: 1,
            ty: 4,
            name: ".".into(),
        },
        Dirent {
            qid: crate::proto::Qid {
                ty: 2,
                version: 3,
                path: 4,
            },
            offset: 99,
            ty: 10,
            name: "link→".into(),
        },
    ];
    let mut b = Vec::new();
    for d in &ds {
        let before = b.len();
        d.encode(&mut b).expect("encode");
        assert_eq!(b.len() - before, d.encoded_len());
    }
    assert_eq!(Dirent::decode_all(&b).expect("decode"), ds);
    assert!(Dirent::decode_all(&b[..b.len() - 1]).is_err());
}
