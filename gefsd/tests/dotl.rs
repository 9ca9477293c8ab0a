//! 9P2000.L through a real server (TCP, or in-process sessions for peer credentials): every
//! message of the dialect, POSIX semantics, numeric ids, locks across connections, directory
//! offsets while the directory changes, and names that try to be paths.

mod common;

use common::*;
use gefs_core::fs::errno::*;
use gefsd::proto::dotl::{getattr, lock, setattr, Flock, SetAttr};
use gefsd::proto::{Dialect, Rmsg, RmsgL, Tmsg, TmsgL, MSIZE_DEFAULT, NOFID};
use gefsd::server::posix::ifmt::*;
use gefsd::server::Peer;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn the_dialect_is_chosen_at_tversion() {
    let (s, a) = start();
    let mut c = lattached(a);
    assert_eq!(c.dialect(), Dialect::L);
    // 9P2000's open, create, stat and wstat are not part of 9P2000.L.
    for m in [Tmsg::Open { fid: 0, mode: 0 }, Tmsg::Stat { fid: 0 }] {
        assert!(matches!(
            c.rpc(m),
            Err(gefsd::client::ClientError::Errno(EOPNOTSUPP))
        ));
    }
    // Errors are errnos.
    assert_eq!(errno(c.walk(0, 1, &["missing"])), ENOENT);
    assert_eq!(errno(c.getattr(77, getattr::BASIC)), EBADF);
    // The same connection may go back to 9P2000.
    c.version_in(MSIZE_DEFAULT, Dialect::P9).expect("9P2000");
    c.attach(0, &me(), "").expect("attach");
    assert_eq!(
        ename(c.walk(0, 1, &["missing"])),
        "directory entry not found"
    );
    stop(s);
}

#[test]
fn files_links_nodes_and_attributes() {
    let (s, a) = start();
    let mut c = lattached(a);
    let dq = c.mkdir(0, "d", 0o750, ME).expect("mkdir");
    assert_eq!(dq.ty, 0x80);
    c.walk(0, 1, &["d"]).expect("walk");
    let t0 = now_secs();
    c.lcreate(1, "f", O_RDWR | O_CREAT, S_IFREG | 0o4640, ME)
        .expect("lcreate");
    assert_eq!(attr(&mut c, 1).mode, S_IFREG | 0o4640, "the mode asked for");
    assert_eq!(c.write(1, 0, b"hello, linux").expect("write"), 12);
    assert_eq!(c.read(1, 7, 100).expect("read"), b"linux");
    c.fsync(1).expect("fsync");
    c.clunk(1).expect("clunk");
    c.walk(0, 2, &["d", "f"]).expect("walk");
    let at = attr(&mut c, 2);
    assert_eq!(at.valid & getattr::BASIC, getattr::BASIC);
    assert_eq!(
        (at.mode, at.uid, at.gid, at.nlink),
        (S_IFREG | 0o640, ME, ME, 1),
        "the owner's write cleared set-user-id"
    );
    assert_eq!((at.size, at.blocks), (12, 32));
    assert!(at.mtime_sec >= t0 && at.ctime_sec >= t0, "{at:?}");
    // The request mask is honoured.
    let only = c.getattr(2, getattr::SIZE).expect("getattr");
    assert_eq!((only.valid, only.size, only.mode), (getattr::SIZE, 12, 0));
    // chmod, truncate, times to the nanosecond, times to now.
    let set = |valid, f: &dyn Fn(&mut SetAttr)| {
        let mut a = SetAttr {
            valid,
            ..SetAttr::default()
        };
        f(&mut a);
        a
    };
    c.setattr(2, set(setattr::MODE, &|a| a.mode = 0o600))
        .expect("chmod");
    c.setattr(2, set(setattr::SIZE, &|a| a.size = 3))
        .expect("truncate");
    let explicit = setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET;
    c.setattr(
        2,
        set(explicit, &|a| {
            (a.atime_sec, a.atime_nsec) = (100, 5);
            (a.mtime_sec, a.mtime_nsec) = (200, 7);
        }),
    )
    .expect("utimensat");
    let at = attr(&mut c, 2);
    assert_eq!((at.mode, at.size), (S_IFREG | 0o600, 3));
    assert_eq!(
        (at.atime_sec, at.atime_nsec, at.mtime_sec, at.mtime_nsec),
        (100, 5, 200, 7)
    );
    assert!(at.ctime_sec >= t0);
    c.setattr(2, set(setattr::ATIME | setattr::MTIME, &|_| {}))
        .expect("touch");
    assert!(attr(&mut c, 2).mtime_sec >= t0);
    // Only the superuser gives a file away; the owner may change its group to one it is in.
    assert_eq!(
        errno(c.setattr(2, set(setattr::UID, &|a| a.uid = 0))),
        EPERM
    );
    c.setattr(2, set(setattr::GID, &|a| a.gid = 4_294_967_294))
        .expect("chgrp adm");
    assert_eq!(attr(&mut c, 2).gid, 4_294_967_294, "adm, id -1");
    // Symbolic links, pipes, sockets; no devices, no hard links, no xattrs.
    let lq = c.symlink(0, "l", "../../elsewhere", ME).expect("symlink");
    assert_eq!(lq.ty, 0x02, "QTSYMLINK");
    c.walk(0, 3, &["l"]).expect("walk to the link");
    assert_eq!(c.readlink(3).expect("readlink"), "../../elsewhere");
    let la = attr(&mut c, 3);
    assert_eq!((la.mode, la.size), (S_IFLNK | 0o777, 15));
    // walk(5): a walk that stops after the first element returns the qids it got.
    assert_eq!(c.walk(0, 4, &["l", "x"]).expect("partial walk").len(), 1);
    c.mknod(0, "fifo", S_IFIFO | 0o644, ME).expect("mkfifo");
    c.mknod(0, "sock", S_IFSOCK | 0o644, ME).expect("socket");
    assert_eq!(errno(c.mknod(0, "tty", S_IFCHR | 0o644, ME)), EPERM);
    c.walk(0, 4, &["fifo"]).expect("walk");
    assert_eq!(attr(&mut c, 4).mode, S_IFIFO | 0o644);
    assert_eq!(errno(c.link(0, 2, "hard")), EPERM);
    assert_eq!(errno(c.xattrwalk(2, 5, "user.x")), EOPNOTSUPP);
    // statfs.
    let st = c.statfs(0).expect("statfs");
    assert_eq!((st.ty, st.bsize, st.namelen), (0x0102_1997, 16_384, 244));
    assert!(st.blocks > st.bfree && st.bfree >= st.bavail && st.bavail > 0);
    // Creating what exists is EEXIST.
    assert_eq!(errno(c.mkdir(0, "d", 0o755, ME)), EEXIST);
    stop(s);
}

#[test]
fn renames_and_unlinks() {
    let (s, a) = start();
    let mut c = lattached(a);
    c.mkdir(0, "a", 0o755, ME).expect("mkdir");
    c.mkdir(0, "b", 0o755, ME).expect("mkdir");
    c.walk(0, 1, &["a"]).expect("walk");
    c.walk(0, 2, &["b"]).expect("walk");
    c.walk(1, 3, &[]).expect("clone");
    c.lcreate(3, "f", O_RDWR | O_CREAT, 0o644, ME)
        .expect("create");
    c.write(3, 0, b"contents of f").expect("write");
    c.walk(2, 4, &[]).expect("clone");
    c.lcreate(4, "g", O_RDWR | O_CREAT, 0o644, ME)
        .expect("create");
    c.clunk(4).expect("clunk");
    // Trename across directories; the open fid follows the file.
    c.walk(1, 5, &["f"]).expect("walk");
    c.rename(5, 2, "f2").expect("rename");
    assert_eq!(c.read(3, 0, 100).expect("read"), b"contents of f");
    assert_eq!(errno(c.walk(1, 6, &["f"])), ENOENT);
    // Trenameat over an existing file replaces it.
    c.renameat(2, "f2", 2, "g").expect("renameat over g");
    c.walk(2, 6, &["g"]).expect("walk");
    assert_eq!(attr(&mut c, 6).size, 13);
    // A directory never moves under itself.
    c.mkdir(1, "sub", 0o755, ME).expect("mkdir");
    c.walk(1, 7, &["sub"]).expect("walk");
    assert_eq!(errno(c.renameat(0, "a", 7, "loop")), EINVAL);
    // Tunlinkat: the flag must match the kind; directories must be empty.
    assert_eq!(errno(c.unlinkat(2, "g", AT_REMOVEDIR)), ENOTDIR);
    assert_eq!(errno(c.unlinkat(0, "a", 0)), EISDIR);
    assert_eq!(errno(c.unlinkat(0, "a", AT_REMOVEDIR)), ENOTEMPTY);
    c.unlinkat(2, "g", 0).expect("unlink");
    c.unlinkat(1, "sub", AT_REMOVEDIR).expect("rmdir");
    assert_eq!(errno(c.unlinkat(2, "g", 0)), ENOENT);
    // The dump is read-only, and another tree is another device.
    stop(s);
}

#[test]
fn readdir_offsets_stay_good_while_the_directory_changes() {
    let (s, a) = start();
    let mut c = lattached(a);
    c.mkdir(0, "d", 0o755, ME).expect("mkdir");
    c.walk(0, 1, &["d"]).expect("walk");
    let names: Vec<String> = (0..200).map(|i| format!("file-{i:03}")).collect();
    for n in &names {
        c.walk(1, 2, &[]).expect("clone");
        c.lcreate(2, n, O_RDWR | O_CREAT, 0o644, ME)
            .expect("create");
        c.clunk(2).expect("clunk");
    }
    c.walk(1, 3, &[]).expect("clone");
    c.lopen(3, O_RDONLY | O_DIRECTORY).expect("opendir");
    let all = c.readdir_all(3, 200).expect("readdir");
    let got: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(got[..2], [".", ".."]);
    assert_eq!(
        got[2..],
        names.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert!(all[2..].iter().all(|d| d.ty == 8) && all[0].ty == 4);
    // Read the first part, change the directory, continue from the last offset seen.
    let first = c.readdir(3, 0, 1000).expect("readdir");
    let last = first.last().expect("entries");
    let seen = first.len() - 2;
    c.unlinkat(1, &names[seen - 1], 0)
        .expect("remove one already read");
    c.unlinkat(1, &names[seen + 5], 0)
        .expect("remove one not yet read");
    c.walk(1, 2, &[]).expect("clone");
    c.lcreate(2, "zzz-new", O_RDWR | O_CREAT, 0o644, ME)
        .expect("create");
    c.clunk(2).expect("clunk");
    let mut rest = Vec::new();
    let mut off = last.offset;
    loop {
        let b = c.readdir(3, off, 300).expect("readdir");
        let Some(l) = b.last() else { break };
        off = l.offset;
        rest.extend(b.into_iter().map(|d| d.name));
    }
    let mut want: Vec<String> = names[seen..].to_vec();
    want.retain(|n| *n != names[seen + 5]);
    want.push("zzz-new".into());
    assert_eq!(rest, want);
    // An offset never handed out is refused; a plain read of a directory too.
    assert_eq!(errno(c.readdir(3, 1 << 40, 300)), EINVAL);
    assert_eq!(errno(c.read(3, 0, 100)), EISDIR);
    // As diod allows (diodls -l does it): a walk from the open directory to a new fid, and
    // "." for the directory itself; never a walk that moves the open fid.
    assert_eq!(
        c.walk(3, 5, &[".", "file-000"])
            .expect("walk from an open fid")
            .len(),
        2
    );
    assert_eq!(errno(c.walk(3, 3, &["file-000"])), EBADF);
    // Tlopen O_DIRECTORY of a file is ENOTDIR.
    c.walk(1, 4, &["zzz-new"]).expect("walk");
    assert_eq!(errno(c.lopen(4, O_DIRECTORY)), ENOTDIR);
    stop(s);
}

fn flock(ty: u8, start: u64, length: u64, proc_id: u32) -> Flock {
    Flock {
        ty,
        flags: 0,
        start,
        length,
        proc_id,
        client_id: "testhost".into(),
    }
}

#[test]
fn record_locks_across_connections() {
    let (s, a) = start();
    let mut c1 = lattached(a);
    let mut c2 = lattached(a);
    c1.walk(0, 1, &[]).expect("clone");
    c1.lcreate(1, "db", O_RDWR | O_CREAT, 0o644, ME)
        .expect("create");
    c2.walk(0, 1, &["db"]).expect("walk");
    c2.lopen(1, O_RDWR).expect("open");
    assert_eq!(
        c1.lock(1, flock(lock::WRLCK, 0, 100, 7)).expect("lock"),
        lock::SUCCESS
    );
    assert_eq!(
        c2.lock(1, flock(lock::RDLCK, 50, 10, 9)).expect("lock"),
        lock::BLOCKED
    );
    let held = c2.getlock(1, flock(lock::RDLCK, 0, 0, 9)).expect("getlock");
    assert_eq!(
        (held.ty, held.start, held.length, held.proc_id),
        (lock::WRLCK, 0, 100, 7)
    );
    assert_eq!(held.client_id, "testhost");
    // Past its range, and for readers after an unlock, the file is free.
    assert_eq!(
        c2.lock(1, flock(lock::WRLCK, 100, 0, 9)).expect("lock"),
        lock::SUCCESS
    );
    assert_eq!(
        c1.lock(1, flock(lock::UNLCK, 0, 100, 7)).expect("unlock"),
        lock::SUCCESS
    );
    assert_eq!(
        c2.lock(1, flock(lock::RDLCK, 0, 100, 9)).expect("lock"),
        lock::SUCCESS
    );
    assert_eq!(
        c1.lock(1, flock(lock::RDLCK, 0, 100, 7)).expect("lock"),
        lock::SUCCESS
    );
    assert_eq!(
        c1.lock(1, flock(lock::WRLCK, 0, 10, 7)).expect("lock"),
        lock::BLOCKED
    );
    let free = c1
        .getlock(1, flock(lock::RDLCK, 0, 10, 7))
        .expect("getlock");
    assert_eq!(free.ty, lock::UNLCK);
    // Clunking releases a fid's locks; a connection's end releases all of them.
    c2.clunk(1).expect("clunk");
    assert_eq!(
        c1.lock(1, flock(lock::WRLCK, 0, 0, 7)).expect("lock"),
        lock::SUCCESS
    );
    c2.walk(0, 2, &["db"]).expect("walk");
    c2.lopen(2, O_RDWR).expect("open");
    assert_eq!(
        c2.lock(2, flock(lock::WRLCK, 5, 1, 9)).expect("lock"),
        lock::BLOCKED
    );
    drop(c1);
    let mut ok = false;
    for _ in 0..200 {
        if c2.lock(2, flock(lock::WRLCK, 5, 1, 9)).expect("lock") == lock::SUCCESS {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ok, "the closed connection's locks were released");
    // A lock needs an open fid.
    c2.walk(0, 3, &["db"]).expect("walk");
    assert_eq!(errno(c2.lock(3, flock(lock::WRLCK, 0, 1, 9))), EBADF);
    stop(s);
}

#[test]
fn names_are_never_paths_and_links_are_never_followed() {
    let (s, a) = start();
    let mut c = lattached(a);
    c.mkdir(0, "d", 0o777, ME).expect("mkdir");
    c.walk(0, 1, &["d"]).expect("walk");
    c.symlink(1, "up", "../../../../etc", ME).expect("symlink");
    let bad = ["..", ".", "", "/", "a/b", "../x", "x/..", "/etc", "a\0b"];
    for name in bad {
        assert_eq!(errno(c.mkdir(1, name, 0o755, ME)), EINVAL, "mkdir {name:?}");
        assert_eq!(
            errno(c.symlink(1, name, "t", ME)),
            EINVAL,
            "symlink {name:?}"
        );
        assert_eq!(
            errno(c.mknod(1, name, S_IFIFO | 0o600, ME)),
            EINVAL,
            "mknod {name:?}"
        );
        c.walk(1, 2, &[]).expect("clone");
        assert_eq!(
            errno(c.lcreate(2, name, O_RDWR | O_CREAT, 0o600, ME)),
            EINVAL,
            "lcreate {name:?}"
        );
        c.clunk(2).expect("clunk");
        c.walk(1, 3, &["up"]).expect("walk");
        assert_eq!(errno(c.rename(3, 1, name)), EINVAL, "rename {name:?}");
        c.clunk(3).expect("clunk");
        assert_eq!(
            errno(c.renameat(1, "up", 1, name)),
            EINVAL,
            "renameat to {name:?}"
        );
        assert_eq!(
            errno(c.renameat(1, name, 0, "x")),
            EINVAL,
            "renameat from {name:?}"
        );
        assert_eq!(errno(c.unlinkat(1, name, 0)), EINVAL, "unlinkat {name:?}");
        assert_eq!(
            errno(c.unlinkat(1, name, AT_REMOVEDIR)),
            EINVAL,
            "rmdir {name:?}"
        );
    }
    // Nothing appeared outside d, d is still there, and the link is only a link.
    c.walk(0, 4, &[]).expect("clone");
    c.lopen(4, O_RDONLY | O_DIRECTORY).expect("opendir");
    let root: Vec<String> = c
        .readdir_all(4, 4096)
        .expect("ls")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(root, [".", "..", "d"]);
    c.walk(1, 5, &["up"]).expect("walk");
    assert_eq!(c.readlink(5).expect("readlink"), "../../../../etc");
    assert_eq!(
        c.walk(1, 6, &["up", "passwd"]).expect("partial walk").len(),
        1
    );
    // Opening a link reads its target, never what it names; writing it is refused.
    assert_eq!(errno(c.lopen(5, O_RDWR)), EPERM);
    stop(s);
}

#[test]
fn numeric_ids_and_linux_root() {
    let (s, a) = start();
    let me = me();
    let mut c = lattached(a);
    c.mkdir(0, "pub", 0o777, ME).expect("mkdir");
    // n_uname names the user; an id no user has is none, who gets only the other bits.
    let mut u = lclient(a);
    u.attach_l(0, "", "", Some(ME)).expect("attach by id");
    u.walk(0, 1, &[]).expect("clone");
    u.lcreate(1, "mine", O_RDWR | O_CREAT, 0o644, ME)
        .expect("create");
    assert_eq!(attr(&mut u, 1).uid, ME);
    let mut n = lclient(a);
    n.attach_l(0, "", "", Some(4242))
        .expect("attach as an unknown id");
    assert_eq!(errno(n.mkdir(0, "x", 0o755, 4242)), EACCES);
    n.walk(0, 1, &["pub"]).expect("walk");
    n.mkdir(1, "none-was-here", 0o755, 4242)
        .expect("mkdir in a 0777 directory");
    n.walk(1, 2, &["none-was-here"]).expect("walk");
    let na = attr(&mut n, 2);
    assert_eq!((na.uid, na.gid), (0, ME), "none's id; the parent's group");
    // Linux's root is the table's id 0: none, by default.
    let mut r = lclient(a);
    r.attach_l(0, "", "", Some(0)).expect("attach as uid 0");
    r.walk(0, 1, &["pub"]).expect("walk");
    assert_eq!(
        errno(r.setattr(
            1,
            SetAttr {
                valid: setattr::UID,
                uid: 0,
                ..SetAttr::default()
            }
        )),
        EPERM
    );
    // Made an administrator, id 0 has the powers POSIX gives root.
    set_users(
        &s,
        a,
        &format!("-1:adm::{me},linuxroot\n0:linuxroot::\n1:{me}:{me}:\n9999:none::\n"),
    );
    let mut r = lclient(a);
    r.attach_l(0, "", "", Some(0)).expect("attach as uid 0");
    r.walk(0, 1, &["pub"]).expect("walk");
    r.setattr(
        1,
        SetAttr {
            valid: setattr::UID,
            uid: 0,
            ..SetAttr::default()
        },
    )
    .expect("root gives files away");
    assert_eq!(attr(&mut r, 1).uid, 0);
    stop(s);
}

#[test]
fn who_may_attach_as_whom() {
    let (s, _a) = start_with(opts(false));
    let me = me();
    let session = |uid: u32, user: &str| {
        let x = s.session_with(Peer {
            uid: Some(uid),
            user: Some(user.into()),
            desc: "test".into(),
        });
        let v = x.call(
            65535,
            Tmsg::Version {
                msize: MSIZE_DEFAULT,
                version: "9P2000.L".into(),
            },
        );
        assert!(matches!(v, Rmsg::Version { ref version, .. } if version == "9P2000.L"));
        x
    };
    let attach = |x: &gefsd::server::Session, fid: u32, uname: &str, n: u32| {
        x.call(
            1,
            Tmsg::L(TmsgL::Attach {
                fid,
                afid: NOFID,
                uname: uname.into(),
                aname: String::new(),
                n_uname: n,
            }),
        )
    };
    let refused = |r: &Rmsg| matches!(r, Rmsg::L(RmsgL::Lerror { ecode: EACCES }));
    // A root peer (a kernel mount) may attach as any user of the table, by name or by id.
    let k = session(0, "root");
    assert!(matches!(attach(&k, 1, &me, u32::MAX), Rmsg::Attach { .. }));
    assert!(matches!(attach(&k, 2, "", ME), Rmsg::Attach { .. }));
    assert!(matches!(
        attach(&k, 3, "adm", u32::MAX),
        Rmsg::Attach { .. }
    ));
    assert!(refused(&attach(&k, 4, "nosuchuser", u32::MAX)));
    // Any other peer only as itself.
    let other = session(1000, "someone");
    assert!(refused(&attach(&other, 1, &me, u32::MAX)));
    assert!(refused(&attach(&other, 1, "", ME)));
    let mine = session(1000, &me);
    assert!(matches!(attach(&mine, 1, "", ME), Rmsg::Attach { .. }));
    assert!(refused(&attach(&mine, 2, "adm", u32::MAX)));
    drop((k, other, mine));
    stop(s);
}
