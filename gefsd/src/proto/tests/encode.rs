//! Encoder refusals (the buffer is left untouched), byte-exact encodings checked against the
//! manual's layouts, and the wstat "don't touch" helpers.

use crate::proto::qidtype::QTDIR;
use crate::proto::{
    decode_r, decode_t, encode_r, encode_rread_head, encode_t, EncodeError, Qid, Rmsg, Stat, Tmsg,
    MSIZE_LIMIT, NOFID, NOTAG, STAT_FIXED_LEN,
};

#[test]
fn refusals_leave_the_buffer_untouched() {
    let long = "x".repeat(65536);
    let cases: Vec<(Tmsg, EncodeError)> = vec![
        (
            Tmsg::Version {
                msize: 8192,
                version: long.clone(),
            },
            EncodeError::StringTooLong {
                field: "Tversion version",
                len: 65536,
            },
        ),
        (
            Tmsg::Walk {
                fid: 0,
                newfid: 1,
                wnames: vec!["a".into(); 17],
            },
            EncodeError::TooManyWalkElements { count: 17 },
        ),
        (
            Tmsg::Wstat {
                fid: 0,
                stat: Stat {
                    name: long.clone(),
                    ..Stat::default()
                },
            },
            EncodeError::StatTooLarge {
                len: STAT_FIXED_LEN + 65536,
            },
        ),
        (
            Tmsg::Write {
                fid: 0,
                offset: 0,
                data: vec![0; MSIZE_LIMIT as usize],
            },
            EncodeError::FrameTooLarge {
                len: MSIZE_LIMIT as usize + 23,
            },
        ),
    ];
    for (msg, want) in cases {
        let mut out = b"keep".to_vec();
        assert_eq!(encode_t(1, &msg, &mut out), Err(want));
        assert_eq!(out, b"keep");
    }
    let mut out = b"keep".to_vec();
    let walk = Rmsg::Walk {
        wqids: vec![Qid::default(); 17],
    };
    assert_eq!(
        encode_r(1, &walk, &mut out),
        Err(EncodeError::TooManyWalkElements { count: 17 })
    );
    let err = encode_r(1, &Rmsg::Error { ename: long }, &mut out).expect_err("long ename");
    assert!(err.to_string().contains("65535"));
    assert_eq!(out, b"keep");
}

/// Byte-exact against the layouts of intro(5), attach(5) and walk(5).
#[test]
fn known_encodings() {
    let mut out = Vec::new();
    let v = Tmsg::Version {
        msize: 8216,
        version: "9P2000".into(),
    };
    encode_t(NOTAG, &v, &mut out).expect("encode");
    assert_eq!(
        out,
        [
            19, 0, 0, 0, 100, 0xff, 0xff, 0x18, 0x20, 0, 0, 6, 0, b'9', b'P', b'2', b'0', b'0',
            b'0'
        ]
    );

    out.clear();
    let a = Tmsg::Attach {
        fid: 1,
        afid: NOFID,
        uname: "u".into(),
        aname: "".into(),
    };
    encode_t(2, &a, &mut out).expect("encode");
    assert_eq!(
        out,
        [20, 0, 0, 0, 104, 2, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, b'u', 0, 0]
    );

    out.clear();
    let q = Qid {
        ty: QTDIR,
        version: 1,
        path: 0x0102_0304_0506_0708,
    };
    encode_r(3, &Rmsg::Walk { wqids: vec![q] }, &mut out).expect("encode");
    assert_eq!(
        out,
        [22, 0, 0, 0, 111, 3, 0, 1, 0, 0x80, 1, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(decode_r(&out, 8192), Ok((3, Rmsg::Walk { wqids: vec![q] })));
}

#[test]
fn rstat_carries_nstat_and_stat_size() {
    let st = Stat {
        name: "f".into(),
        ..Stat::default()
    };
    assert_eq!(st.encoded_len(), STAT_FIXED_LEN + 1);
    let mut out = Vec::new();
    encode_r(9, &Rmsg::Stat { stat: st.clone() }, &mut out).expect("encode");
    // size[4] type tag[2] nstat[2] size[2] ...
    assert_eq!(out.len(), 7 + 2 + STAT_FIXED_LEN + 1);
    assert_eq!(out[7..9], [50, 0]);
    assert_eq!(out[9..11], [48, 0]);
    assert_eq!(decode_r(&out, 8192), Ok((9, Rmsg::Stat { stat: st })));
}

#[test]
fn dont_touch_helpers() {
    let dt = Stat::dont_touch();
    assert!(dt.is_dont_touch());
    assert!(!dt.wstat_changes_fixed());
    assert_eq!(dt.encoded_len(), STAT_FIXED_LEN);
    assert_eq!(
        (
            dt.wstat_mode(),
            dt.wstat_atime(),
            dt.wstat_mtime(),
            dt.wstat_length()
        ),
        (None, None, None, None)
    );
    assert_eq!(
        (
            dt.wstat_name(),
            dt.wstat_uid(),
            dt.wstat_gid(),
            dt.wstat_muid()
        ),
        (None, None, None, None)
    );

    let rename = Stat {
        name: "new".into(),
        mode: 0o600,
        ..Stat::dont_touch()
    };
    assert!(!rename.is_dont_touch());
    assert_eq!(rename.wstat_name(), Some("new"));
    assert_eq!(rename.wstat_mode(), Some(0o600));
    assert_eq!(rename.wstat_length(), None);
    let qid_change = Stat {
        qid: Qid { path: 5, ..dt.qid },
        ..Stat::dont_touch()
    };
    assert!(qid_change.wstat_changes_fixed());
    let truncate = Stat {
        length: 0,
        ..Stat::dont_touch()
    };
    assert_eq!(truncate.wstat_length(), Some(0));

    // The all-ones encoding survives the trip.
    let mut out = Vec::new();
    encode_t(
        4,
        &Tmsg::Wstat {
            fid: 1,
            stat: rename.clone(),
        },
        &mut out,
    )
    .expect("encode");
    assert_eq!(
        decode_t(&out, 8192),
        Ok((
            4,
            Tmsg::Wstat {
                fid: 1,
                stat: rename
            }
        ))
    );
}

#[test]
fn names_and_types() {
    assert_eq!(Tmsg::Clunk { fid: 0 }.name(), "Tclunk");
    assert_eq!(Rmsg::Flush.name(), "Rflush");
    assert_eq!(
        Rmsg::Error {
            ename: String::new()
        }
        .msg_type(),
        107
    );
}

#[test]
fn rread_head_is_the_prefix_of_the_whole_frame() {
    for len in [0usize, 1, 4096, 1 << 20] {
        let data = vec![0xa5u8; len];
        let mut whole = Vec::new();
        encode_r(9, &Rmsg::Read { data: data.clone() }, &mut whole).expect("encode");
        let mut head = Vec::new();
        encode_rread_head(9, len, &mut head).expect("head");
        head.extend_from_slice(&data);
        assert_eq!(head, whole, "{len}");
    }
    let mut out = Vec::new();
    assert!(encode_rread_head(1, MSIZE_LIMIT as usize, &mut out).is_err());
    assert!(out.is_empty());
}
