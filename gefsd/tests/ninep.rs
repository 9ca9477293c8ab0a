//! 9P2000 through a real socket: the message set, modes, walks, attaches and directory reads.

mod common;

use common::*;
use gefsd::proto::{dmode, omode, qidtype, Stat, Tmsg, MAXWELEM};

#[test]
fn files_and_directories() {
    let (s, a) = start();
    let mut c = attached(a);
    let root = c.stat(0).expect("stat root");
    assert_eq!(root.name, "/");
    assert_eq!(root.qid.ty, qidtype::QTDIR);
    // mkdir d; create d/f; write; read back.
    c.walk(0, 1, &[]).expect("clone");
    let (q, iounit) = c
        .create(1, "d", dmode::DMDIR | 0o775, omode::OREAD)
        .expect("mkdir");
    assert_eq!(q.ty, qidtype::QTDIR);
    assert_eq!(iounit, 1 << 20);
    c.clunk(1).expect("clunk");
    c.walk(0, 2, &["d"]).expect("walk d");
    c.create(2, "f", 0o644, omode::ORDWR).expect("create f");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.write(2, 0, &data).expect("write"), data.len() as u32);
    assert_eq!(c.read(2, 5, 10).expect("read"), &data[5..15]);
    c.clunk(2).expect("clunk");
    assert_eq!(get(&mut c, 3, &["d", "f"]), data);
    // stat, rename, remove.
    c.walk(0, 4, &["d", "f"]).expect("walk");
    let st = c.stat(4).expect("stat");
    assert_eq!(
        (st.name.as_str(), st.length, st.mode),
        ("f", data.len() as u64, 0o644)
    );
    assert_eq!(st.uid, me());
    c.wstat(4, &rename_to("g")).expect("rename");
    assert_eq!(c.stat(4).expect("stat").name, "g");
    assert_eq!(c.walk(0, 5, &["d", "f"]).expect("partial walk").len(), 1);
    c.wstat(
        4,
        &Stat {
            mode: 0o600,
            ..Stat::dont_touch()
        },
    )
    .expect("chmod");
    c.wstat(
        4,
        &Stat {
            length: 10,
            ..Stat::dont_touch()
        },
    )
    .expect("truncate");
    assert_eq!(c.stat(4).expect("stat").length, 10);
    assert_eq!(
        ename(c.wstat(
            4,
            &Stat {
                uid: "nobody-at-all".into(),
                ..Stat::dont_touch()
            }
        )),
        "unknown user"
    );
    assert_eq!(
        ename(c.wstat(
            4,
            &Stat {
                qid: Default::default(),
                ..Stat::dont_touch()
            }
        )),
        "wstat prohibited"
    );
    c.remove(4).expect("remove");
    assert_eq!(ename(c.stat(4)), "fid unknown or out of range");
    // A directory with an entry cannot be removed; the fid is clunked anyway.
    put(&mut c, 6, "x", b"1");
    c.walk(0, 7, &[]).expect("clone");
    assert_eq!(ename(c.remove(7)), "Device or resource busy");
    assert_eq!(ename(c.clunk(7)), "fid unknown or out of range");
    stop(s);
}

#[test]
fn directory_reads_follow_read5_offsets() {
    let (s, a) = start();
    let mut c = attached(a);
    let names: Vec<String> = (0..200).map(|i| format!("file-{i:03}")).collect();
    for n in &names {
        put(&mut c, 1, n, b"");
    }
    c.walk(0, 2, &[]).expect("clone");
    c.open(2, omode::OREAD).expect("open dir");
    // Small reads: whole entries only, each continuing where the last ended.
    let mut got = Vec::new();
    let mut off = 0u64;
    loop {
        let b = c.read(2, off, 300).expect("read");
        if b.is_empty() {
            break;
        }
        assert!(b.len() <= 300);
        off += b.len() as u64;
        let mut rest = &b[..];
        while !rest.is_empty() {
            let (st, n) = Stat::decode(rest).expect("whole entries");
            got.push(st.name);
            rest = &rest[n..];
        }
    }
    assert_eq!(got, names);
    // Any other offset is refused; 0 restarts.
    assert_eq!(ename(c.read(2, 7, 300)), "bad offset in directory read");
    assert!(!c.read(2, 0, 300).expect("restart").is_empty());
    // An entry that cannot fit an empty reply is an error, not an empty (EOF) reply, and a
    // retry with room gets it.
    assert_eq!(
        ename(c.read(2, 0, 10)),
        gefsd::server::err::msg::DIR_ENTRY_TOO_BIG.text
    );
    assert!(!c.read(2, 0, 1000).expect("retry").is_empty());
    let all = c.read_dir(2).expect("read_dir");
    assert_eq!(all.len(), 200);
    // A directory cannot be written, nor opened for writing.
    assert_eq!(ename(c.write(2, 0, b"x")), "Is a directory");
    c.walk(0, 3, &[]).expect("clone");
    assert_eq!(ename(c.open(3, omode::OWRITE)), "Is a directory");
    // A fid must be open to be read.
    c.walk(0, 4, &[&names[0]]).expect("walk");
    assert_eq!(ename(c.read(4, 0, 10)), "bad use of fid");
    stop(s);
}

#[test]
fn append_truncate_exclusive_and_rclose() {
    let (s, a) = start();
    let mut c = attached(a);
    // DMAPPEND: every write goes to the end; OTRUNC is ignored.
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "log", dmode::DMAPPEND | 0o666, omode::OWRITE)
        .expect("create");
    c.write(1, 0, b"one ").expect("w");
    c.write(1, 0, b"two").expect("w");
    c.clunk(1).expect("clunk");
    c.walk(0, 1, &["log"]).expect("walk");
    c.open(1, omode::OWRITE | omode::OTRUNC)
        .expect("open trunc");
    c.clunk(1).expect("clunk");
    assert_eq!(get(&mut c, 2, &["log"]), b"one two");
    // OTRUNC on a plain file.
    put(&mut c, 1, "t", b"0123456789");
    c.walk(0, 1, &["t"]).expect("walk");
    c.open(1, omode::ORDWR | omode::OTRUNC).expect("trunc");
    assert_eq!(c.stat(1).expect("stat").length, 0);
    c.write(1, 3, b"x").expect("write past end");
    assert_eq!(c.read(1, 0, 100).expect("read"), b"\0\0\0x");
    c.clunk(1).expect("clunk");
    // DMEXCL: a second open anywhere fails while the first is open.
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "lock", dmode::DMEXCL | 0o666, omode::ORDWR)
        .expect("create excl");
    let mut d = attached(a);
    d.walk(0, 1, &["lock"]).expect("walk");
    assert_eq!(
        ename(d.open(1, omode::OREAD)),
        "exclusive use file already open"
    );
    c.walk(0, 2, &["lock"]).expect("walk");
    assert_eq!(
        ename(c.open(2, omode::OREAD)),
        "exclusive use file already open"
    );
    c.clunk(1).expect("clunk");
    d.open(1, omode::OREAD).expect("open after release");
    d.clunk(1).expect("clunk");
    // ORCLOSE: the file goes when the fid is clunked.
    put(&mut c, 3, "tmp", b"x");
    c.walk(0, 3, &["tmp"]).expect("walk");
    c.open(3, omode::OREAD | omode::ORCLOSE)
        .expect("open rclose");
    c.walk(0, 4, &["tmp"]).expect("still there");
    c.clunk(4).expect("clunk");
    c.clunk(3).expect("clunk rclose");
    assert!(ename(c.walk(0, 4, &["tmp"])).contains("not found"));
    // ORCLOSE on a connection that goes away.
    put(&mut c, 3, "tmp2", b"x");
    let mut e = attached(a);
    e.walk(0, 1, &["tmp2"]).expect("walk");
    e.open(1, omode::OREAD | omode::ORCLOSE)
        .expect("open rclose");
    drop(e);
    let mut gone = false;
    for _ in 0..200 {
        if c.walk(0, 4, &["tmp2"]).is_err() {
            gone = true;
            break;
        }
        c.clunk(4).expect("clunk");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(gone, "ORCLOSE file survived its connection");
    stop(s);
}

#[test]
fn walks_partial_long_and_dotdot() {
    let (s, a) = start();
    let mut c = attached(a);
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "a", dmode::DMDIR | 0o777, omode::OREAD)
        .expect("mkdir a");
    c.clunk(1).expect("clunk");
    c.walk(0, 1, &["a"]).expect("walk a");
    c.create(1, "b", dmode::DMDIR | 0o777, omode::OREAD)
        .expect("mkdir b");
    c.clunk(1).expect("clunk");
    // Partial: the qids found so far; newfid not bound.
    let q = c.walk(0, 2, &["a", "b", "nope", "x"]).expect("partial");
    assert_eq!(q.len(), 2);
    assert_eq!(ename(c.stat(2)), "fid unknown or out of range");
    // First element failing is an error.
    assert!(ename(c.walk(0, 2, &["nope"])).contains("not found"));
    // 16 elements work; 17 are refused by the codec, with an Rerror on the same tag.
    let sixteen: Vec<&str> = std::iter::repeat_n("..", MAXWELEM).collect();
    let q = c.walk(0, 2, &sixteen).expect("16 ..");
    assert_eq!(q.len(), 16);
    let root = c.stat(0).expect("stat").qid;
    assert!(q.iter().all(|x| *x == root), "`..` at the root stays there");
    c.clunk(2).expect("clunk");
    let mut raw = Vec::new();
    gefsd::proto::encode_t(
        9,
        &Tmsg::Walk {
            fid: 0,
            newfid: 3,
            wnames: vec![],
        },
        &mut raw,
    )
    .expect("encode");
    // Patch nwname to 17 with 17 names appended.
    raw.truncate(raw.len() - 2);
    raw.extend_from_slice(&17u16.to_le_bytes());
    for _ in 0..17 {
        raw.extend_from_slice(&1u16.to_le_bytes());
        raw.push(b'a');
    }
    let len = raw.len() as u32;
    raw[..4].copy_from_slice(&len.to_le_bytes());
    c.send_raw(&raw).expect("send");
    let (tag, r) = c.recv().expect("reply");
    assert_eq!(tag, 9);
    assert!(matches!(r, gefsd::proto::Rmsg::Error { .. }), "{r:?}");
    // .. from a subdirectory, and from a walked-to fid back to the root.
    let q = c.walk(0, 3, &["a", "b", "..", ".."]).expect("down and up");
    assert_eq!(q[3], root);
    // Walking from an open fid is refused.
    c.open(3, omode::OREAD).expect("open");
    assert_eq!(ename(c.walk(3, 4, &[])), "bad use of fid");
    // newfid in use.
    c.walk(0, 5, &[]).expect("clone");
    assert_eq!(ename(c.walk(0, 5, &[])), "fid already in use");
    stop(s);
}

#[test]
fn attach_specs_dump_percent_adm() {
    let (s, a) = start();
    let mut c = attached(a);
    put(&mut c, 1, "f", b"v1");
    // A snapshot, through the console machinery's admin call.
    let core = s.core().clone();
    gefs_core::admin::run_snap(
        core.store(),
        &gefs_core::admin::Snap::Take {
            old: "main".into(),
            new: "snap1".into(),
            mutable: false,
        },
    )
    .expect("snapshot");
    // Attach the snapshot by name: read-only.
    c.attach(10, &me(), "snap1").expect("attach snap1");
    c.walk(10, 11, &["f"]).expect("walk");
    assert_eq!(ename(c.open(11, omode::OWRITE)), "read only file system");
    // dump: one directory per label, owned by adm, read-only.
    c.attach(20, &me(), "dump").expect("attach dump");
    let st = c.stat(20).expect("stat dump");
    assert_eq!(
        (st.name.as_str(), st.mode, st.uid.as_str()),
        ("dump", dmode::DMDIR | 0o555, "adm")
    );
    c.walk(20, 21, &[]).expect("clone");
    c.open(21, omode::OREAD).expect("open dump");
    let names: Vec<String> = c
        .read_dir(21)
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    for l in ["adm", "main", "snap1"] {
        assert!(names.iter().any(|n| n == l), "{l} in {names:?}");
    }
    let q = c.walk(20, 22, &["main", "f"]).expect("walk dump/main/f");
    assert_eq!(q.len(), 2);
    assert_eq!(ename(c.open(22, omode::OWRITE)), "read only file system");
    c.open(22, omode::OREAD).expect("open");
    assert_eq!(c.read(22, 0, 100).expect("read"), b"v1");
    // .. from a dump-mounted root returns to the dump directory.
    let q = c.walk(20, 23, &["snap1", ".."]).expect("up");
    assert_eq!(q[1], st.qid);
    c.walk(0, 24, &[]).expect("clone");
    assert_eq!(
        ename(c.create(20, "x", 0o666, omode::OWRITE)),
        "permission denied"
    );
    // %main: allowed for adm members (the first administrator is one).
    c.attach(30, &me(), "%main").expect("attach %main");
    // adm holds the users file.
    c.attach(40, &me(), "adm").expect("attach adm");
    c.walk(40, 41, &["users"]).expect("walk users");
    // Bad specs and users.
    assert_eq!(
        ename(c.attach(50, &me(), "no-such-label")),
        "No such file or directory"
    );
    assert_eq!(
        ename(c.attach(50, "nobody-at-all", "")),
        "Permission denied"
    );
    assert_eq!(ename(c.attach(0, &me(), "")), "fid already in use");
    // none: no dump, no %.
    assert_eq!(ename(c.attach(50, "none", "dump")), "Permission denied");
    assert_eq!(ename(c.attach(50, "none", "%main")), "permission denied");
    c.attach(50, "none", "")
        .expect("none may attach main under -A");
    stop(s);
}

#[test]
fn peer_credentials() {
    let (s, a) = start_with(opts(false));
    let mut c = client(a);
    // Tauth explains the scheme.
    let r = c.rpc(Tmsg::Auth {
        afid: 1,
        uname: me(),
        aname: String::new(),
    });
    assert!(ename(r).contains("peer credentials"));
    // none before an authenticated attach: refused; another user: refused, unless the peer is
    // root (the rule for kernel mounts; `dotl.rs` tests both peers through sessions).
    assert_eq!(ename(c.attach(1, "none", "")), "Permission denied");
    if rustix::process::getuid().is_root() {
        c.attach(1, "adm", "")
            .expect("a root peer attaches as anyone");
        c.clunk(1).expect("clunk");
    } else {
        assert_eq!(ename(c.attach(1, "adm", "")), "Permission denied");
    }
    c.attach(1, &me(), "").expect("attach as myself");
    c.attach(2, "none", "")
        .expect("none after an authenticated attach");
    // In-process connections (socket pairs) carry credentials too.
    let mut p = gefsd::client::Client::new(s.connect().expect("pair"));
    p.version(8192 + 24).expect("version");
    p.attach(1, &me(), "").expect("attach over a pair");
    stop(s);
}

#[test]
fn tversion_resets_fids() {
    let (s, a) = start();
    let mut c = attached(a);
    c.walk(0, 1, &[]).expect("clone");
    for _ in 0..3 {
        c.version(1 << 20).expect("version");
        assert_eq!(ename(c.stat(0)), "fid unknown or out of range");
        assert_eq!(ename(c.stat(1)), "fid unknown or out of range");
        c.attach(0, &me(), "").expect("attach again");
    }
    // An unknown version is answered "unknown", and the session is unversioned.
    let r = c.rpc(Tmsg::Version {
        msize: 1 << 20,
        version: "9P2000.u".into(),
    });
    assert!(
        matches!(r, Ok(gefsd::proto::Rmsg::Version { ref version, .. }) if version == "unknown")
    );
    assert_eq!(ename(c.stat(0)), "protocol botch");
    stop(s);
}
