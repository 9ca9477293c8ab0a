//! T12, codec half: table-driven malformed frames. Every case must be refused with the expected
//! kind of error (never a panic), and body errors must keep the tag so the server can answer
//! `Rerror` while framing errors say the stream is lost.

use super::{frame, resized};
use crate::proto::msgtype::*;
use crate::proto::{
    decode_r, decode_t, encode_r, encode_t, DecodeErrorKind as K, Qid, Rmsg, Stat, Tmsg,
    MSIZE_DEFAULT, MSIZE_LIMIT, MSIZE_MIN,
};

const TAG: u16 = 0x1234;

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

fn s(text: &str) -> Vec<u8> {
    let mut v = le16(u16::try_from(text.len()).expect("short")).to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn walk_body(n: u16) -> Vec<u8> {
    let mut b = cat(&[&le32(1), &le32(2), &le16(n)]);
    for _ in 0..n {
        b.extend_from_slice(&s("a"));
    }
    b
}

fn stat_bytes() -> Vec<u8> {
    let st = Stat {
        name: "f".into(),
        uid: "glenda".into(),
        ..Stat::default()
    };
    let mut v = Vec::new();
    st.encode(&mut v).expect("encode");
    v
}

/// A `Twstat` body with `nstat` and the stat's own size field overridden.
fn wstat_body(nstat: Option<u16>, size: Option<u16>, extra: &[u8]) -> Vec<u8> {
    let mut st = stat_bytes();
    st.extend_from_slice(extra);
    if let Some(size) = size {
        st[..2].copy_from_slice(&le16(size));
    }
    let n = nstat.unwrap_or(u16::try_from(st.len()).expect("short"));
    cat(&[&le32(7), &le16(n), &st])
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    msize: u32,
    /// Decode as a reply instead of a request.
    reply: bool,
    want: K,
}

fn t(name: &'static str, bytes: Vec<u8>, want: K) -> Case {
    Case {
        name,
        bytes,
        msize: MSIZE_DEFAULT,
        reply: false,
        want,
    }
}

fn r(name: &'static str, bytes: Vec<u8>, want: K) -> Case {
    Case {
        reply: true,
        ..t(name, bytes, want)
    }
}

fn cases() -> Vec<Case> {
    let clunk = frame(TCLUNK, TAG, &le32(1));
    let trunc = |field| K::Truncated { field };
    let mut v = vec![
        t("empty buffer", vec![], K::TooShort { size: 0 }),
        t("3 bytes", vec![7, 0, 0], K::TooShort { size: 3 }),
        t(
            "size field 0",
            vec![0, 0, 0, 0, TCLUNK, 0, 0],
            K::TooShort { size: 0 },
        ),
        t(
            "size field 4",
            vec![4, 0, 0, 0, TCLUNK, 0, 0],
            K::TooShort { size: 4 },
        ),
        t(
            "size field 6",
            vec![6, 0, 0, 0, TCLUNK, 0, 0],
            K::TooShort { size: 6 },
        ),
        t(
            "header only Tclunk",
            frame(TCLUNK, TAG, &[]),
            trunc("Tclunk fid"),
        ),
        t(
            "size larger than buffer",
            cat(&[&le32(12), &clunk[4..]]),
            K::SizeMismatch { size: 12, len: 11 },
        ),
        t(
            "size smaller than buffer",
            cat(&[&le32(10), &clunk[4..]]),
            K::SizeMismatch { size: 10, len: 11 },
        ),
        t(
            "size 2^31",
            cat(&[&le32(1 << 31), &clunk[4..]]),
            K::TooLarge {
                size: 1 << 31,
                msize: MSIZE_DEFAULT,
            },
        ),
        t(
            "size 2^32-1",
            cat(&[&le32(u32::MAX), &clunk[4..]]),
            K::TooLarge {
                size: u32::MAX,
                msize: MSIZE_DEFAULT,
            },
        ),
        Case {
            msize: u32::MAX,
            ..t(
                "size 2^32-1 under msize 2^32-1",
                cat(&[&le32(u32::MAX), &clunk[4..]]),
                K::TooLarge {
                    size: u32::MAX,
                    msize: MSIZE_LIMIT,
                },
            )
        },
        Case {
            msize: 10,
            ..t(
                "frame one byte over msize",
                clunk.clone(),
                K::TooLarge {
                    size: 11,
                    msize: 10,
                },
            )
        },
        t("type 0", frame(0, TAG, &[]), K::UnknownType { ty: 0 }),
        t("type 99", frame(99, TAG, &[]), K::UnknownType { ty: 99 }),
        t(
            "Terror",
            frame(TERROR, TAG, &s("x")),
            K::UnknownType { ty: TERROR },
        ),
        t("type 128", frame(128, TAG, &[]), K::UnknownType { ty: 128 }),
        t("type 255", frame(255, TAG, &[]), K::UnknownType { ty: 255 }),
        r(
            "Terror as reply",
            frame(TERROR, TAG, &s("x")),
            K::UnknownType { ty: TERROR },
        ),
        t(
            "Twalk 17 names",
            frame(TWALK, TAG, &walk_body(17)),
            K::TooManyWalkElements { count: 17 },
        ),
        t(
            "Twalk nwname 65535, no names",
            frame(
                TWALK,
                TAG,
                &walk_body(0)[..8]
                    .iter()
                    .copied()
                    .chain(le16(u16::MAX))
                    .collect::<Vec<_>>(),
            ),
            K::TooManyWalkElements { count: u16::MAX },
        ),
        t(
            "Twalk nwname 3, two names",
            frame(
                TWALK,
                TAG,
                &cat(&[&walk_body(2)[..8], &le16(3), &s("a"), &s("b")]),
            ),
            trunc("Twalk wname"),
        ),
        r(
            "Rwalk 17 qids",
            frame(RWALK, TAG, &cat(&[&le16(17), &[0; 17 * 13]])),
            K::TooManyWalkElements { count: 17 },
        ),
        r(
            "Rwalk nwqid 2, one qid",
            frame(RWALK, TAG, &cat(&[&le16(2), &[0; 13]])),
            trunc("Rwalk wqid"),
        ),
        t(
            "Tversion string overruns",
            frame(
                TVERSION,
                TAG,
                &cat(&[&le32(8192), &le16(u16::MAX), b"9P2000"]),
            ),
            trunc("Tversion version"),
        ),
        t(
            "Tattach aname missing",
            frame(
                TATTACH,
                TAG,
                &cat(&[&le32(1), &le32(u32::MAX), &s("glenda")]),
            ),
            trunc("Tattach aname"),
        ),
        t(
            "Tattach uname not UTF-8",
            frame(
                TATTACH,
                TAG,
                &cat(&[&le32(1), &le32(u32::MAX), &[2, 0, 0xc3, 0x28], &s("")]),
            ),
            K::InvalidUtf8 {
                field: "Tattach uname",
            },
        ),
        t(
            "Tcreate name is a surrogate",
            frame(
                TCREATE,
                TAG,
                &cat(&[&le32(1), &[3, 0, 0xed, 0xa0, 0x80], &le32(0o644), &[0]]),
            ),
            K::InvalidUtf8 {
                field: "Tcreate name",
            },
        ),
        t(
            "Twalk name overlong UTF-8",
            frame(
                TWALK,
                TAG,
                &cat(&[&le32(1), &le32(2), &le16(1), &[2, 0, 0xc0, 0xaf]]),
            ),
            K::InvalidUtf8 {
                field: "Twalk wname",
            },
        ),
        t(
            "Twrite count overruns frame",
            frame(
                TWRITE,
                TAG,
                &cat(&[&le32(1), &[0; 8], &le32(100), &[0; 10]]),
            ),
            trunc("Twrite data"),
        ),
        t(
            "Twrite count 2^32-1",
            frame(TWRITE, TAG, &cat(&[&le32(1), &[0; 8], &le32(u32::MAX)])),
            K::DataTooLarge {
                count: u32::MAX,
                max: MSIZE_DEFAULT - 24,
            },
        ),
        r(
            "Rread count overruns frame",
            frame(RREAD, TAG, &cat(&[&le32(5), b"abc"])),
            trunc("Rread data"),
        ),
        r(
            "Rread count 2^31",
            frame(RREAD, TAG, &le32(1 << 31)),
            K::DataTooLarge {
                count: 1 << 31,
                max: MSIZE_DEFAULT - 24,
            },
        ),
        t(
            "Tread count missing",
            frame(TREAD, TAG, &cat(&[&le32(1), &[0; 8]])),
            trunc("Tread count"),
        ),
        t(
            "Tflush oldtag half",
            frame(TFLUSH, TAG, &[1]),
            trunc("Tflush oldtag"),
        ),
        t(
            "Topen mode missing",
            frame(TOPEN, TAG, &le32(1)),
            trunc("Topen mode"),
        ),
        t(
            "Twstat nstat > stat size + 2",
            frame(TWSTAT, TAG, &wstat_body(None, None, &[0, 0])),
            K::StatSizeMismatch {
                declared: stat_bytes().len() + 2,
                actual: stat_bytes().len(),
            },
        ),
        t(
            "Twstat stat size > contents",
            frame(
                TWSTAT,
                TAG,
                &wstat_body(
                    None,
                    Some(u16::try_from(stat_bytes().len()).expect("short")),
                    &[0, 0],
                ),
            ),
            K::StatSizeMismatch {
                declared: stat_bytes().len(),
                actual: stat_bytes().len() - 2,
            },
        ),
        t(
            "Twstat stat size < contents",
            frame(TWSTAT, TAG, &wstat_body(None, Some(40), &[])),
            K::StatSizeMismatch {
                declared: stat_bytes().len(),
                actual: 42,
            },
        ),
        t(
            "Twstat nstat overruns frame",
            frame(TWSTAT, TAG, &wstat_body(Some(200), None, &[])),
            trunc("stat"),
        ),
        t(
            "Twstat stat size 0",
            frame(TWSTAT, TAG, &cat(&[&le32(1), &le16(2), &le16(0)])),
            trunc("stat type"),
        ),
        t(
            "Twstat string overruns stat",
            frame(TWSTAT, TAG, &{
                let mut b = wstat_body(None, None, &[]);
                let muid_len = b.len() - 2; // the last string is muid, empty: make it claim 1 byte
                b[muid_len] = 1;
                b
            }),
            trunc("stat muid"),
        ),
        r(
            "Rstat nstat 0",
            frame(RSTAT, TAG, &le16(0)),
            trunc("stat size"),
        ),
        t(
            "Tclunk trailing byte",
            cat(&[&resized(&cat(&[&clunk, &[0]]))]),
            K::TrailingBytes { count: 1 },
        ),
        r(
            "Rflush trailing bytes",
            frame(RFLUSH, TAG, b"junk"),
            K::TrailingBytes { count: 4 },
        ),
        r(
            "Rerror trailing byte",
            frame(RERROR, TAG, &cat(&[&s("no"), &[0]])),
            K::TrailingBytes { count: 1 },
        ),
        r(
            "Ropen iounit missing",
            frame(ROPEN, TAG, &[0; 13]),
            trunc("Ropen iounit"),
        ),
    ];
    // Every R type sent as a request, and every T type sent as a reply.
    for ty in (TVERSION..=RWSTAT).filter(|&ty| ty != TERROR) {
        let bytes = frame(ty, TAG, &[0; 32]);
        if ty % 2 == 1 {
            v.push(t("R type as T", bytes, K::WrongDirection { ty }));
        } else {
            v.push(r("T type as R", bytes, K::WrongDirection { ty }));
        }
    }
    v
}

#[test]
fn malformed_frames_are_refused() {
    let all = cases();
    assert!(all.len() >= 60, "only {} cases", all.len());
    for case in all {
        let got = if case.reply {
            decode_r(&case.bytes, case.msize).map(|_| ())
        } else {
            decode_t(&case.bytes, case.msize).map(|_| ())
        };
        let err = got.expect_err(case.name);
        assert_eq!(err.kind(), &case.want, "{}", case.name);
        assert!(!err.to_string().is_empty());
        if err.is_framing() {
            assert_eq!(err.tag(), None, "{}", case.name);
        } else {
            assert_eq!(
                err.tag(),
                Some(TAG),
                "{}: body errors keep the tag",
                case.name
            );
        }
    }
}

/// The T12 "truncated at every byte offset" rows, on fixed messages of every shape.
#[test]
fn truncated_at_every_offset() {
    let stat = Stat {
        name: "name".into(),
        uid: "u".into(),
        gid: "g".into(),
        muid: "m".into(),
        ..Stat::default()
    };
    let ts = [
        Tmsg::Version {
            msize: 8192,
            version: "9P2000".into(),
        },
        Tmsg::Attach {
            fid: 0,
            afid: u32::MAX,
            uname: "glenda".into(),
            aname: "main".into(),
        },
        Tmsg::Walk {
            fid: 0,
            newfid: 1,
            wnames: vec!["usr".into(), "glenda".into(), "lib".into()],
        },
        Tmsg::Create {
            fid: 1,
            name: "x".into(),
            perm: 0o644,
            mode: 1,
        },
        Tmsg::Write {
            fid: 1,
            offset: 99,
            data: b"hello".to_vec(),
        },
        Tmsg::Wstat {
            fid: 1,
            stat: stat.clone(),
        },
    ];
    let rs = [
        Rmsg::Walk {
            wqids: vec![Qid::default(); 3],
        },
        Rmsg::Read {
            data: b"hello".to_vec(),
        },
        Rmsg::Stat { stat },
        Rmsg::Error {
            ename: "file does not exist".into(),
        },
    ];
    let mut checked = 0;
    for m in &ts {
        let mut b = Vec::new();
        encode_t(TAG, m, &mut b).expect("encode");
        assert!(decode_t(&b, MSIZE_DEFAULT).is_ok());
        for cut in 0..b.len() {
            assert!(
                decode_t(&b[..cut], MSIZE_DEFAULT).is_err(),
                "{m:?} cut at {cut}"
            );
            let patched = resized(&b[..cut]);
            assert!(
                decode_t(&patched, MSIZE_DEFAULT).is_err(),
                "{m:?} cut at {cut}, resized"
            );
            checked += 2;
        }
    }
    for m in &rs {
        let mut b = Vec::new();
        encode_r(TAG, m, &mut b).expect("encode");
        assert!(decode_r(&b, MSIZE_DEFAULT).is_ok());
        for cut in 0..b.len() {
            assert!(
                decode_r(&b[..cut], MSIZE_DEFAULT).is_err(),
                "{m:?} cut at {cut}"
            );
            assert!(
                decode_r(&resized(&b[..cut]), MSIZE_DEFAULT).is_err(),
                "{m:?} cut at {cut}, resized"
            );
            checked += 2;
        }
    }
    assert!(checked > 300);
}

/// Frames exactly at the limits are accepted; one byte more is refused.
#[test]
fn limits_are_exact() {
    let iounit = MSIZE_MIN - 24;
    let write = |n: u32| Tmsg::Write {
        fid: 1,
        offset: 0,
        data: vec![0xa5; n as usize],
    };
    let mut at = Vec::new();
    encode_t(TAG, &write(iounit), &mut at).expect("encode");
    assert_eq!(
        at.len(),
        (MSIZE_MIN - 1) as usize,
        "Twrite header is 23 bytes"
    );
    assert!(decode_t(&at, MSIZE_MIN).is_ok());
    let mut over = Vec::new();
    encode_t(TAG, &write(iounit + 1), &mut over).expect("encode");
    assert_eq!(
        over.len(),
        MSIZE_MIN as usize,
        "fits msize, but not the iounit"
    );
    let err = decode_t(&over, MSIZE_MIN).expect_err("over iounit");
    assert_eq!(
        err.kind(),
        &K::DataTooLarge {
            count: iounit + 1,
            max: iounit
        }
    );

    // A frame of exactly msize is fine; msize - 1 is too small for it.
    let name = "n".repeat(MSIZE_MIN as usize - 7 - 4 - 2 - 4 - 1);
    let create = Tmsg::Create {
        fid: 1,
        name,
        perm: 0,
        mode: 0,
    };
    let mut b = Vec::new();
    encode_t(TAG, &create, &mut b).expect("encode");
    assert_eq!(b.len(), MSIZE_MIN as usize);
    assert!(decode_t(&b, MSIZE_MIN).is_ok());
    let err = decode_t(&b, MSIZE_MIN - 1).expect_err("over msize");
    assert!(err.is_framing());

    // Walks of exactly 16 are fine.
    let b = frame(TWALK, TAG, &walk_body(16));
    assert!(
        matches!(decode_t(&b, MSIZE_DEFAULT), Ok((TAG, Tmsg::Walk { wnames, .. })) if wnames.len() == 16)
    );
}
