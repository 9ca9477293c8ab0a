//! Replays the `decode_9p` fuzz corpus (`tests/fuzz/corpus/decode_9p/`) through the fuzz
//! target's oracle in plain `cargo test`, so the seeds and every regression input found by
//! fuzzing keep being checked without cargo-fuzz.
//!
//! The seed frames are generated here. After changing the list, rewrite the files with
//! `GEFSD_WRITE_CORPUS=1 cargo test -p gefsd --test proto_corpus seeds`.

use std::fs;
use std::path::PathBuf;

use gefsd::proto::dmode::DMDIR;
use gefsd::proto::omode::{OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE};
use gefsd::proto::qidtype::{QTAUTH, QTDIR, QTFILE};
use gefsd::proto::{
    decode_r, decode_t, encode_r, encode_t, iounit, Qid, Rmsg, Stat, Tmsg, MAXWELEM, MSIZE_DEFAULT,
    MSIZE_MIN, NOFID, NOTAG,
};

#[path = "../../tests/fuzz/oracle_9p.rs"]
mod oracle;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/corpus/decode_9p")
}

fn t(tag: u16, m: Tmsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_t(tag, &m, &mut out).expect("encode seed");
    out
}

fn r(tag: u16, m: Rmsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_r(tag, &m, &mut out).expect("encode seed");
    out
}

fn qid(ty: u8, path: u64) -> Qid {
    Qid {
        ty,
        version: 7,
        path,
    }
}

fn file_stat(name: &str) -> Stat {
    Stat {
        ty: 0,
        dev: 0,
        qid: qid(QTFILE, 0x1234),
        mode: 0o644,
        atime: 1_700_000_000,
        mtime: 1_700_000_100,
        length: 4096,
        name: name.into(),
        uid: "glenda".into(),
        gid: "sys".into(),
        muid: "glenda".into(),
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}")).collect()
}

/// Every message type, edge sizes, a session stream and a few malformed frames.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let at_min = usize::try_from(iounit(MSIZE_MIN)).expect("fits");
    let mut dir = Vec::new();
    for name in ["lib", "naïve", "ロ"] {
        file_stat(name).encode(&mut dir).expect("encode stat");
    }
    let mut session = t(
        NOTAG,
        Tmsg::Version {
            msize: MSIZE_DEFAULT,
            version: "9P2000".into(),
        },
    );
    session.extend(t(
        1,
        Tmsg::Attach {
            fid: 0,
            afid: NOFID,
            uname: "glenda".into(),
            aname: String::new(),
        },
    ));
    session.extend(t(
        2,
        Tmsg::Walk {
            fid: 0,
            newfid: 1,
            wnames: vec!["usr".into(), "glenda".into()],
        },
    ));
    session.extend(t(
        3,
        Tmsg::Open {
            fid: 1,
            mode: OREAD,
        },
    ));
    session.extend(t(
        4,
        Tmsg::Read {
            fid: 1,
            offset: 0,
            count: 8168,
        },
    ));
    session.extend(t(5, Tmsg::Clunk { fid: 1 }));
    let mut walk17 = t(
        9,
        Tmsg::Walk {
            fid: 0,
            newfid: 1,
            wnames: names(16),
        },
    );
    walk17[15] = 17; // nwname
    walk17.extend_from_slice(&[1, 0, b'x']);
    let size = u32::try_from(walk17.len()).expect("fits");
    walk17[..4].copy_from_slice(&size.to_le_bytes());
    let mut trailing = t(10, Tmsg::Clunk { fid: 1 });
    trailing.push(0);
    let mut truncated_write = t(
        11,
        Tmsg::Write {
            fid: 1,
            offset: 0,
            data: b"hello".to_vec(),
        },
    );
    truncated_write.truncate(truncated_write.len() - 2);
    vec![
        (
            "t_version_8216",
            t(
                NOTAG,
                Tmsg::Version {
                    msize: 8216,
                    version: "9P2000".into(),
                },
            ),
        ),
        (
            "t_version_9p2000L",
            t(
                NOTAG,
                Tmsg::Version {
                    msize: 131_096,
                    version: "9P2000.L".into(),
                },
            ),
        ),
        (
            "t_auth",
            t(
                1,
                Tmsg::Auth {
                    afid: 0,
                    uname: "glenda".into(),
                    aname: "main".into(),
                },
            ),
        ),
        (
            "t_attach_nofid",
            t(
                1,
                Tmsg::Attach {
                    fid: 0,
                    afid: NOFID,
                    uname: "glenda".into(),
                    aname: String::new(),
                },
            ),
        ),
        (
            "t_attach_dump",
            t(
                2,
                Tmsg::Attach {
                    fid: 1,
                    afid: 0,
                    uname: "adm".into(),
                    aname: "dump".into(),
                },
            ),
        ),
        ("t_flush", t(3, Tmsg::Flush { oldtag: 2 })),
        (
            "t_walk_clone",
            t(
                4,
                Tmsg::Walk {
                    fid: 0,
                    newfid: 1,
                    wnames: vec![],
                },
            ),
        ),
        (
            "t_walk_3",
            t(
                4,
                Tmsg::Walk {
                    fid: 0,
                    newfid: 1,
                    wnames: names(3),
                },
            ),
        ),
        (
            "t_walk_16",
            t(
                4,
                Tmsg::Walk {
                    fid: 0,
                    newfid: 0,
                    wnames: names(MAXWELEM),
                },
            ),
        ),
        (
            "t_walk_dotdot",
            t(
                4,
                Tmsg::Walk {
                    fid: 0,
                    newfid: 2,
                    wnames: vec!["..".into(); 3],
                },
            ),
        ),
        (
            "t_open_oread",
            t(
                5,
                Tmsg::Open {
                    fid: 1,
                    mode: OREAD,
                },
            ),
        ),
        (
            "t_open_owrite",
            t(
                5,
                Tmsg::Open {
                    fid: 1,
                    mode: OWRITE,
                },
            ),
        ),
        (
            "t_open_ordwr_otrunc",
            t(
                5,
                Tmsg::Open {
                    fid: 1,
                    mode: ORDWR | OTRUNC,
                },
            ),
        ),
        (
            "t_open_oexec_orclose",
            t(
                5,
                Tmsg::Open {
                    fid: 1,
                    mode: OEXEC | ORCLOSE,
                },
            ),
        ),
        (
            "t_create_dir",
            t(
                6,
                Tmsg::Create {
                    fid: 1,
                    name: "src".into(),
                    perm: DMDIR | 0o755,
                    mode: OREAD,
                },
            ),
        ),
        (
            "t_create_utf8",
            t(
                6,
                Tmsg::Create {
                    fid: 1,
                    name: "naïve ロ".into(),
                    perm: 0o644,
                    mode: ORDWR,
                },
            ),
        ),
        (
            "t_read",
            t(
                7,
                Tmsg::Read {
                    fid: 1,
                    offset: 0,
                    count: 8168,
                },
            ),
        ),
        (
            "t_read_extremes",
            t(
                7,
                Tmsg::Read {
                    fid: 1,
                    offset: u64::MAX,
                    count: u32::MAX,
                },
            ),
        ),
        (
            "t_write_empty",
            t(
                8,
                Tmsg::Write {
                    fid: 1,
                    offset: 0,
                    data: vec![],
                },
            ),
        ),
        (
            "t_write_hello",
            t(
                8,
                Tmsg::Write {
                    fid: 1,
                    offset: 12,
                    data: b"hello".to_vec(),
                },
            ),
        ),
        (
            "t_write_iounit_min",
            t(
                8,
                Tmsg::Write {
                    fid: 1,
                    offset: 0,
                    data: vec![0x5a; at_min],
                },
            ),
        ),
        (
            "t_write_iounit_min_plus1",
            t(
                8,
                Tmsg::Write {
                    fid: 1,
                    offset: 0,
                    data: vec![0x5a; at_min + 1],
                },
            ),
        ),
        ("t_clunk", t(9, Tmsg::Clunk { fid: 1 })),
        ("t_remove", t(9, Tmsg::Remove { fid: 1 })),
        ("t_stat", t(9, Tmsg::Stat { fid: 1 })),
        (
            "t_wstat_sync",
            t(
                10,
                Tmsg::Wstat {
                    fid: 1,
                    stat: Stat::dont_touch(),
                },
            ),
        ),
        (
            "t_wstat_rename",
            t(
                10,
                Tmsg::Wstat {
                    fid: 1,
                    stat: Stat {
                        name: "new".into(),
                        ..Stat::dont_touch()
                    },
                },
            ),
        ),
        (
            "t_wstat_truncate",
            t(
                10,
                Tmsg::Wstat {
                    fid: 1,
                    stat: Stat {
                        length: 0,
                        ..Stat::dont_touch()
                    },
                },
            ),
        ),
        (
            "r_version",
            r(
                NOTAG,
                Rmsg::Version {
                    msize: 8216,
                    version: "9P2000".into(),
                },
            ),
        ),
        (
            "r_version_unknown",
            r(
                NOTAG,
                Rmsg::Version {
                    msize: 8216,
                    version: "unknown".into(),
                },
            ),
        ),
        (
            "r_auth",
            r(
                1,
                Rmsg::Auth {
                    aqid: qid(QTAUTH, 1),
                },
            ),
        ),
        ("r_attach", r(1, Rmsg::Attach { qid: qid(QTDIR, 0) })),
        (
            "r_error",
            r(
                2,
                Rmsg::Error {
                    ename: "directory entry not found".into(),
                },
            ),
        ),
        ("r_flush", r(3, Rmsg::Flush)),
        ("r_walk_0", r(4, Rmsg::Walk { wqids: vec![] })),
        (
            "r_walk_16",
            r(
                4,
                Rmsg::Walk {
                    wqids: (0..16).map(|p| qid(QTDIR, p)).collect(),
                },
            ),
        ),
        (
            "r_open",
            r(
                5,
                Rmsg::Open {
                    qid: qid(QTFILE, 9),
                    iounit: iounit(MSIZE_DEFAULT),
                },
            ),
        ),
        (
            "r_create",
            r(
                6,
                Rmsg::Create {
                    qid: qid(QTDIR, 10),
                    iounit: 8168,
                },
            ),
        ),
        ("r_read_empty", r(7, Rmsg::Read { data: vec![] })),
        (
            "r_read_hello",
            r(
                7,
                Rmsg::Read {
                    data: b"hello, world\n".to_vec(),
                },
            ),
        ),
        ("r_read_dir", r(7, Rmsg::Read { data: dir.clone() })),
        ("r_write", r(8, Rmsg::Write { count: 5 })),
        ("r_clunk", r(9, Rmsg::Clunk)),
        ("r_remove", r(9, Rmsg::Remove)),
        (
            "r_stat",
            r(
                9,
                Rmsg::Stat {
                    stat: file_stat("lib"),
                },
            ),
        ),
        ("r_wstat", r(10, Rmsg::Wstat)),
        ("stat_entries", dir),
        ("stream_session", session),
        ("bad_walk_17", walk17),
        ("bad_trailing_byte", trailing),
        ("bad_truncated_write", truncated_write),
        (
            "bad_size_4gib",
            [&u32::MAX.to_le_bytes()[..], &[120, 0, 0, 1, 0, 0, 0]].concat(),
        ),
    ]
}

#[test]
fn seeds_are_current() {
    let dir = corpus_dir();
    let write = std::env::var_os("GEFSD_WRITE_CORPUS").is_some();
    if write {
        fs::create_dir_all(&dir).expect("create corpus dir");
    }
    let all = seeds();
    assert!(all.len() >= 30);
    for (name, bytes) in all {
        let path = dir.join(name);
        if write {
            fs::write(&path, &bytes).expect("write seed");
        }
        let on_disk = fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with GEFSD_WRITE_CORPUS=1",
                path.display()
            )
        });
        assert_eq!(
            on_disk, bytes,
            "{name} is stale; regenerate with GEFSD_WRITE_CORPUS=1"
        );
        let valid =
            decode_t(&bytes, MSIZE_DEFAULT).is_ok() || decode_r(&bytes, MSIZE_DEFAULT).is_ok();
        let expect_valid =
            !name.starts_with("bad_") && !name.starts_with("stat_") && !name.starts_with("stream_");
        assert_eq!(valid, expect_valid, "{name}");
    }
}

#[test]
fn corpus_replays_through_the_oracle() {
    let mut entries: Vec<_> = fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(entries.len() >= 30, "only {} corpus files", entries.len());
    for path in entries {
        let bytes = fs::read(&path).expect("read corpus file");
        let run = std::panic::catch_unwind(|| oracle::check(&bytes));
        assert!(run.is_ok(), "oracle failed on {}", path.display());
    }
}
