//! The 9P2000.L seeds of the `decode_9p` fuzz corpus (`tests/fuzz/corpus/decode_9p/l_*`):
//! every message of the dialect, path-like names, and malformed frames. The replay of the whole
//! corpus through the oracle (which decodes in both dialects) is `proto_corpus.rs`'s.
//!
//! After changing the list, rewrite the files with
//! `GEFSD_WRITE_CORPUS=1 cargo test -p gefsd --test proto_corpus_l`.

use std::fs;
use std::path::PathBuf;

use gefsd::proto::dotl::{lock, Attr, Flock, SetAttr, StatFs, NONUNAME};
use gefsd::proto::{
    decode_r_in, decode_t_in, encode_r, encode_t, Dialect, Qid, Rmsg, RmsgL, Tmsg, TmsgL,
    MSIZE_DEFAULT, NOFID, NOTAG,
};

#[path = "../../tests/fuzz/oracle_9p.rs"]
mod oracle;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/corpus/decode_9p")
}

fn t(tag: u16, m: TmsgL) -> Vec<u8> {
    let mut out = Vec::new();
    encode_t(tag, &Tmsg::L(m), &mut out).expect("encode seed");
    out
}

fn r(tag: u16, m: RmsgL) -> Vec<u8> {
    let mut out = Vec::new();
    encode_r(tag, &Rmsg::L(m), &mut out).expect("encode seed");
    out
}

fn q(ty: u8, path: u64) -> Qid {
    Qid {
        ty,
        version: 3,
        path,
    }
}

fn fl(ty: u8) -> Flock {
    Flock {
        ty,
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 4242,
        client_id: "guest".into(),
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let attach = t(
        1,
        TmsgL::Attach {
            fid: 0,
            afid: NOFID,
            uname: String::new(),
            aname: String::new(),
            n_uname: 1000,
        },
    );
    let mut session = Vec::new();
    encode_t(
        NOTAG,
        &Tmsg::Version {
            msize: MSIZE_DEFAULT,
            version: "9P2000.L".into(),
        },
        &mut session,
    )
    .expect("encode");
    session.extend(attach.clone());
    session.extend(t(
        2,
        TmsgL::Getattr {
            fid: 0,
            request_mask: 0x7ff,
        },
    ));
    let mut trailing = t(
        3,
        TmsgL::Fsync {
            fid: 1,
            datasync: 0,
        },
    );
    trailing.push(0);
    let size = u32::try_from(trailing.len()).expect("fits");
    trailing[..4].copy_from_slice(&size.to_le_bytes());
    let mut short_lock = t(
        4,
        TmsgL::Lock {
            fid: 1,
            lock: fl(lock::WRLCK),
        },
    );
    short_lock.truncate(short_lock.len() - 3);
    let mut dirents = Vec::new();
    for (name, ty, off) in [(".", 4, 1), ("..", 4, 2), ("file", 8, 3), ("lnk", 10, 4)] {
        gefsd::proto::dotl::Dirent {
            qid: q(0, off),
            offset: off,
            ty,
            name: name.into(),
        }
        .encode(&mut dirents)
        .expect("encode");
    }
    vec![
        ("l_t_attach_n_uname", attach),
        (
            "l_t_attach_uname",
            t(
                1,
                TmsgL::Attach {
                    fid: 0,
                    afid: NOFID,
                    uname: "glenda".into(),
                    aname: "dump".into(),
                    n_uname: NONUNAME,
                },
            ),
        ),
        (
            "l_t_auth",
            t(
                1,
                TmsgL::Auth {
                    afid: 9,
                    uname: "glenda".into(),
                    aname: String::new(),
                    n_uname: NONUNAME,
                },
            ),
        ),
        ("l_t_statfs", t(2, TmsgL::Statfs { fid: 0 })),
        (
            "l_t_lopen_dir",
            t(
                2,
                TmsgL::Lopen {
                    fid: 1,
                    flags: 0o2_304_000,
                },
            ),
        ),
        (
            "l_t_lcreate",
            t(
                2,
                TmsgL::Lcreate {
                    fid: 1,
                    name: "foo".into(),
                    flags: 0x8241,
                    mode: 0o100_644,
                    gid: 1000,
                },
            ),
        ),
        (
            "l_t_lcreate_dotdot",
            t(
                2,
                TmsgL::Lcreate {
                    fid: 1,
                    name: "..".into(),
                    flags: 0x8241,
                    mode: 0o100_644,
                    gid: 1000,
                },
            ),
        ),
        (
            "l_t_symlink",
            t(
                2,
                TmsgL::Symlink {
                    fid: 1,
                    name: "up".into(),
                    symtgt: "../../../../etc/passwd".into(),
                    gid: 1000,
                },
            ),
        ),
        (
            "l_t_symlink_slash_name",
            t(
                2,
                TmsgL::Symlink {
                    fid: 1,
                    name: "a/b".into(),
                    symtgt: "/".into(),
                    gid: 1000,
                },
            ),
        ),
        (
            "l_t_mknod_fifo",
            t(
                2,
                TmsgL::Mknod {
                    dfid: 1,
                    name: "fifo".into(),
                    mode: 0o010_644,
                    major: 0,
                    minor: 0,
                    gid: 1000,
                },
            ),
        ),
        (
            "l_t_rename",
            t(
                2,
                TmsgL::Rename {
                    fid: 2,
                    dfid: 1,
                    name: "new".into(),
                },
            ),
        ),
        ("l_t_readlink", t(2, TmsgL::Readlink { fid: 2 })),
        (
            "l_t_getattr_all",
            t(
                2,
                TmsgL::Getattr {
                    fid: 2,
                    request_mask: 0x3fff,
                },
            ),
        ),
        (
            "l_t_setattr",
            t(
                2,
                TmsgL::Setattr {
                    fid: 2,
                    attr: SetAttr {
                        valid: 0x1ff,
                        mode: 0o4755,
                        uid: 1000,
                        gid: 1000,
                        size: 12,
                        atime_sec: 1,
                        atime_nsec: 2,
                        mtime_sec: 3,
                        mtime_nsec: 999_999_999,
                    },
                },
            ),
        ),
        (
            "l_t_xattrwalk",
            t(
                2,
                TmsgL::Xattrwalk {
                    fid: 2,
                    newfid: 3,
                    name: "user.x".into(),
                },
            ),
        ),
        (
            "l_t_xattrcreate",
            t(
                2,
                TmsgL::Xattrcreate {
                    fid: 2,
                    name: "user.x".into(),
                    attr_size: 4,
                    flags: 0,
                },
            ),
        ),
        (
            "l_t_readdir",
            t(
                2,
                TmsgL::Readdir {
                    fid: 1,
                    offset: 0,
                    count: 65_488,
                },
            ),
        ),
        (
            "l_t_fsync",
            t(
                2,
                TmsgL::Fsync {
                    fid: 1,
                    datasync: 1,
                },
            ),
        ),
        (
            "l_t_lock",
            t(
                2,
                TmsgL::Lock {
                    fid: 1,
                    lock: Flock {
                        flags: lock::FLAGS_BLOCK,
                        ..fl(lock::WRLCK)
                    },
                },
            ),
        ),
        (
            "l_t_getlock",
            t(
                2,
                TmsgL::Getlock {
                    fid: 1,
                    lock: fl(lock::RDLCK),
                },
            ),
        ),
        (
            "l_t_link",
            t(
                2,
                TmsgL::Link {
                    dfid: 1,
                    fid: 2,
                    name: "hard".into(),
                },
            ),
        ),
        (
            "l_t_mkdir",
            t(
                2,
                TmsgL::Mkdir {
                    dfid: 1,
                    name: "newdir".into(),
                    mode: 0o040_755,
                    gid: 1000,
                },
            ),
        ),
        (
            "l_t_renameat",
            t(
                2,
                TmsgL::Renameat {
                    olddirfid: 1,
                    oldname: "a".into(),
                    newdirfid: 4,
                    newname: "../b".into(),
                },
            ),
        ),
        (
            "l_t_unlinkat_dir",
            t(
                2,
                TmsgL::Unlinkat {
                    dirfid: 1,
                    name: "newdir".into(),
                    flags: 0x200,
                },
            ),
        ),
        ("l_r_lerror", r(2, RmsgL::Lerror { ecode: 2 })),
        (
            "l_r_statfs",
            r(
                2,
                RmsgL::Statfs(StatFs {
                    ty: 0x0102_1997,
                    bsize: 16_384,
                    blocks: 1000,
                    bfree: 900,
                    bavail: 800,
                    files: 1000,
                    ffree: 900,
                    fsid: 0,
                    namelen: 244,
                }),
            ),
        ),
        (
            "l_r_lopen",
            r(
                2,
                RmsgL::Lopen {
                    qid: q(0x80, 1),
                    iounit: 0,
                },
            ),
        ),
        (
            "l_r_lcreate",
            r(
                2,
                RmsgL::Lcreate {
                    qid: q(0, 5),
                    iounit: 65_512,
                },
            ),
        ),
        ("l_r_symlink", r(2, RmsgL::Symlink { qid: q(2, 6) })),
        ("l_r_mknod", r(2, RmsgL::Mknod { qid: q(0, 7) })),
        ("l_r_mkdir", r(2, RmsgL::Mkdir { qid: q(0x80, 8) })),
        (
            "l_r_readlink",
            r(
                2,
                RmsgL::Readlink {
                    target: "../up".into(),
                },
            ),
        ),
        (
            "l_r_getattr",
            r(
                2,
                RmsgL::Getattr(Attr {
                    valid: 0x27ff,
                    qid: q(0, 5),
                    mode: 0o100_644,
                    uid: 1000,
                    gid: 1000,
                    nlink: 1,
                    size: 6,
                    blksize: 16_384,
                    blocks: 32,
                    mtime_sec: 1_700_000_000,
                    mtime_nsec: 123,
                    ..Attr::default()
                }),
            ),
        ),
        ("l_r_xattrwalk", r(2, RmsgL::Xattrwalk { size: 0 })),
        ("l_r_readdir", r(2, RmsgL::Readdir { data: dirents })),
        (
            "l_r_readdir_empty",
            r(2, RmsgL::Readdir { data: Vec::new() }),
        ),
        (
            "l_r_lock",
            r(
                2,
                RmsgL::Lock {
                    status: lock::BLOCKED,
                },
            ),
        ),
        ("l_r_getlock", r(2, RmsgL::Getlock(fl(lock::UNLCK)))),
        ("l_r_setattr", r(2, RmsgL::Setattr)),
        ("l_r_unlinkat", r(2, RmsgL::Unlinkat)),
        ("l_stream_session", session),
        ("l_bad_fsync_trailing", trailing),
        ("l_bad_lock_truncated", short_lock),
    ]
}

#[test]
fn l_seeds_are_current() {
    let dir = corpus_dir();
    let write = std::env::var_os("GEFSD_WRITE_CORPUS").is_some();
    let all = seeds();
    assert!(all.len() >= 40);
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
        let valid = decode_t_in(&bytes, MSIZE_DEFAULT, Dialect::L).is_ok()
            || decode_r_in(&bytes, MSIZE_DEFAULT, Dialect::L).is_ok();
        let expect_valid = !name.starts_with("l_bad_") && !name.starts_with("l_stream_");
        assert_eq!(valid, expect_valid, "{name}");
        oracle::check(&bytes);
    }
}
