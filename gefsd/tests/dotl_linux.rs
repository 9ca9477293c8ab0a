//! What the Linux kernel's 9P2000.L client (v9fs) relies on, through a real server: ids Linux
//! cannot represent, its root creating at the top of a fresh image, `Tlopen` with the flags of
//! a create, times to the nanosecond, `F_GETLK` as v9fs asks it (type `UNLCK`), `statfs`
//! following the allocator, and the set-id bits that a write, a truncate or a chown clears.
//! `tests/tests/linux_v9fs.rs` checks the same through the kernel itself.

mod common;

use std::net::TcpStream;

use common::*;
use gefs_core::fs::errno::*;
use gefsd::client::Client;
use gefsd::proto::dotl::{lock, setattr, Flock};
use gefsd::server::posix::ifmt::*;

/// adm's id, −1, as 9P2000.L carries it (Linux keeps 4294967295 for "no id").
const ADM: u32 = 4_294_967_294;
/// The users table of these tests: Linux's root is id 0 and a member of adm (the README's
/// "Mount it from Linux"), the first administrator keeps id 1, bob is 1000.
fn table() -> String {
    let me = me();
    format!(
        "-1:adm::{me},linuxroot\n0:linuxroot:linuxroot:\n1:{me}:{me}:\n2:none::\n1000:bob:bob:\n"
    )
}

#[test]
fn ids_linux_cannot_represent_and_root_at_the_top() {
    let (s, a) = start();
    set_users(&s, a, &table());
    let mut r = as_uid(a, 0);
    let top = attr(&mut r, 0);
    assert_eq!(
        (top.uid, top.gid),
        (ADM, ADM),
        "a fresh image's top is adm's"
    );
    // Linux's root (id 0, in adm) creates there, as on any file system.
    r.walk(0, 1, &[]).expect("clone");
    r.lcreate(1, "top", O_WRONLY | O_CREAT | O_EXCL, S_IFREG | 0o644, 0)
        .expect("root creates at the top");
    let f = attr(&mut r, 1);
    assert_eq!((f.uid, f.gid), (0, 0));
    r.mkdir(0, "topdir", 0o755, 0)
        .expect("root makes a directory");
    // Linux's ids name the table's: 4294967294 is adm; 4294967295 leaves an id alone.
    r.setattr(1, set(setattr::GID, |s| s.gid = ADM))
        .expect("chgrp adm");
    assert_eq!(attr(&mut r, 1).gid, ADM);
    r.setattr(
        1,
        set(setattr::UID | setattr::GID, |s| {
            (s.uid, s.gid) = (u32::MAX, u32::MAX)
        }),
    )
    .expect("chown -1 -1");
    let f = attr(&mut r, 1);
    assert_eq!((f.uid, f.gid), (0, ADM));
    // A group no user has is never given, not even by root: the parent's instead.
    r.walk(0, 2, &[]).expect("clone");
    r.lcreate(2, "g", O_RDWR | O_CREAT, S_IFREG | 0o644, 4242)
        .expect("create");
    assert_eq!(attr(&mut r, 2).gid, ADM, "the parent's group");
    // n_uname 4294967294 attaches as adm.
    let mut adm = as_uid(a, ADM);
    adm.walk(0, 1, &[]).expect("clone");
    adm.lcreate(1, "byadm", O_RDWR | O_CREAT, S_IFREG | 0o600, ADM)
        .expect("adm creates in its directory");
    let f = attr(&mut adm, 1);
    assert_eq!((f.uid, f.gid), (ADM, ADM));
    stop(s);
}

#[test]
fn lopen_takes_the_flags_of_a_create() {
    let (s, a) = start();
    set_users(&s, a, &table());
    let mut c = lattached(a);
    c.walk(0, 1, &[]).expect("clone");
    c.lcreate(1, "f", O_WRONLY | O_CREAT | O_EXCL, S_IFREG | 0o644, ME)
        .expect("create");
    c.write(1, 0, b"hello").expect("write");
    // v9fs may open again what it just created, with the create's flags: O_CREAT and O_EXCL
    // mean nothing to an open of an existing file.
    c.walk(0, 2, &["f"]).expect("walk");
    c.lopen(2, O_RDWR | O_CREAT | O_EXCL)
        .expect("open with O_CREAT|O_EXCL");
    assert_eq!(c.read(2, 0, 10).expect("read"), b"hello");
    // O_TRUNC truncates, with or without them.
    c.walk(0, 3, &["f"]).expect("walk");
    c.lopen(3, O_WRONLY | O_CREAT | O_TRUNC)
        .expect("open O_TRUNC");
    assert_eq!(attr(&mut c, 3).size, 0);
    c.write(3, 0, b"again").expect("write");
    // A create of an existing name is EEXIST.
    c.walk(0, 4, &[]).expect("clone");
    assert_eq!(
        errno(c.lcreate(4, "f", O_WRONLY | O_CREAT | O_EXCL, S_IFREG | 0o644, ME)),
        EEXIST
    );
    // O_TRUNC needs write permission, even with O_RDONLY (open(2)); nothing is cut.
    let mut b = as_uid(a, BOB);
    b.walk(0, 1, &["f"]).expect("walk");
    assert_eq!(errno(b.lopen(1, O_RDONLY | O_TRUNC)), EACCES);
    b.lopen(1, O_RDONLY | O_CREAT).expect("bob may read");
    assert_eq!(b.read(1, 0, 10).expect("read"), b"again");
    stop(s);
}

#[test]
fn times_keep_their_nanoseconds() {
    let (s, a) = start();
    let mut c = lattached(a);
    c.walk(0, 1, &[]).expect("clone");
    c.lcreate(1, "f", O_RDWR | O_CREAT, S_IFREG | 0o644, ME)
        .expect("create");
    let explicit = setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET;
    c.setattr(
        1,
        set(explicit, |s| {
            (s.atime_sec, s.atime_nsec) = (1_234_567_890, 123_456_789);
            (s.mtime_sec, s.mtime_nsec) = (1_234_567_890, 987_654_321);
        }),
    )
    .expect("utimensat");
    // Read back through another connection, which has nothing cached.
    let mut o = lattached(a);
    o.walk(0, 1, &["f"]).expect("walk");
    let t = attr(&mut o, 1);
    assert_eq!(
        (t.atime_sec, t.atime_nsec, t.mtime_sec, t.mtime_nsec),
        (1_234_567_890, 123_456_789, 1_234_567_890, 987_654_321)
    );
    stop(s);
}

fn flock(ty: u8, start: u64, length: u64, proc_id: u32) -> Flock {
    Flock {
        ty,
        flags: 0,
        start,
        length,
        proc_id,
        client_id: "guest".into(),
    }
}

#[test]
fn getlock_as_linux_asks_it() {
    let (s, a) = start();
    let (mut c1, mut c2) = (lattached(a), lattached(a));
    c1.walk(0, 1, &[]).expect("clone");
    c1.lcreate(1, "db", O_RDWR | O_CREAT, S_IFREG | 0o644, ME)
        .expect("create");
    c2.walk(0, 1, &["db"]).expect("walk");
    c2.lopen(1, O_RDWR).expect("open");
    assert_eq!(
        c1.lock(1, flock(lock::WRLCK, 0, 100, 7)).expect("lock"),
        lock::SUCCESS
    );
    // v9fs asks F_GETLK with type UNLCK whatever the program asked: the answer is the lock in
    // the way, with its owner.
    let held = c2
        .getlock(1, flock(lock::UNLCK, 50, 10, 9))
        .expect("getlock");
    assert_eq!(
        (held.ty, held.start, held.length, held.proc_id),
        (lock::WRLCK, 0, 100, 7)
    );
    assert_eq!(held.client_id, "guest");
    // An owner's own lock is never in its way.
    let own = c1.getlock(1, flock(lock::UNLCK, 0, 0, 7)).expect("getlock");
    assert_eq!(own.ty, lock::UNLCK);
    // UNLCK tests as a write lock: a read lock is in its way, not in a read lock's.
    c1.lock(1, flock(lock::RDLCK, 0, 100, 7))
        .expect("downgrade");
    let r = c2.getlock(1, flock(lock::UNLCK, 0, 0, 9)).expect("getlock");
    assert_eq!((r.ty, r.start, r.length), (lock::RDLCK, 0, 100));
    let r = c2.getlock(1, flock(lock::RDLCK, 0, 0, 9)).expect("getlock");
    assert_eq!(r.ty, lock::UNLCK);
    // Released with its fid: the range asked comes back, unlocked.
    c1.clunk(1).expect("clunk");
    let free = c2
        .getlock(1, flock(lock::UNLCK, 0, 100, 9))
        .expect("getlock");
    assert_eq!(
        (free.ty, free.start, free.length, free.proc_id),
        (lock::UNLCK, 0, 100, 9)
    );
    assert_eq!(errno(c2.getlock(1, flock(9, 0, 1, 9))), EINVAL);
    stop(s);
}

#[test]
fn statfs_follows_the_allocator() {
    let (s, a) = start();
    let mut c = lattached(a);
    let s0 = c.statfs(0).expect("statfs");
    let bs = u64::from(s0.bsize);
    c.walk(0, 1, &[]).expect("clone");
    c.lcreate(1, "big", O_RDWR | O_CREAT, S_IFREG | 0o644, ME)
        .expect("create");
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let n = 4u64;
    for i in 0..n {
        c.write(1, i << 20, &chunk).expect("write");
    }
    let data_blocks = (n << 20) / bs;
    // Written but not committed: already taken.
    let s1 = c.statfs(0).expect("statfs");
    assert_eq!(s1.blocks, s0.blocks);
    assert!(s1.bfree + data_blocks <= s0.bfree, "{s0:?} {s1:?}");
    assert!(s1.bavail <= s1.bfree);
    c.fsync(1).expect("fsync");
    let s2 = c.statfs(0).expect("statfs");
    assert!(s2.bfree + data_blocks <= s0.bfree, "{s0:?} {s2:?}");
    // Removed and committed: free again once no reader can see the blocks.
    c.clunk(1).expect("clunk");
    c.unlinkat(0, "big", 0).expect("unlink");
    let mut s3 = s2.clone();
    for _ in 0..50 {
        c.fsync(0).expect("fsync");
        s3 = c.statfs(0).expect("statfs");
        if s3.bfree >= s2.bfree + data_blocks {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(s3.bfree >= s2.bfree + data_blocks, "{s2:?} {s3:?}");
    stop(s);
}

#[test]
fn writes_truncates_and_chowns_clear_setid_bits() {
    let (s, a) = start();
    set_users(&s, a, &table());
    let mut o = lattached(a);
    o.mkdir(0, "d", 0o777, ME).expect("mkdir");
    o.walk(0, 1, &["d"]).expect("walk");
    let mut next = 10;
    // A file of the first administrator's (group ME) with mode `mode`; a fid of it for `c`.
    let mut mk = |o: &mut Client<TcpStream>, name: &str, mode: u32| {
        next += 1;
        o.walk(1, next, &[]).expect("clone");
        o.lcreate(next, name, O_RDWR | O_CREAT, S_IFREG | mode, ME)
            .expect("create");
        assert_eq!(attr(o, next).mode, S_IFREG | mode, "{name} as made");
        o.clunk(next).expect("clunk");
    };
    let mode = |c: &mut Client<TcpStream>, name: &str| {
        c.walk(0, 99, &["d", name]).expect("walk");
        let m = attr(c, 99).mode & 0o7777;
        c.clunk(99).expect("clunk");
        m
    };
    let write = |c: &mut Client<TcpStream>, name: &str| {
        c.walk(0, 98, &["d", name]).expect("walk");
        c.lopen(98, O_WRONLY).expect("open");
        c.write(98, 0, b"x").expect("write");
        c.clunk(98).expect("clunk");
    };
    let mut b = as_uid(a, BOB);
    let mut r = as_uid(a, 0);
    // Another user's write clears set-user-id, and set-group-id when the group may execute
    // or the writer is not in the group.
    mk(&mut o, "w1", 0o6777);
    write(&mut b, "w1");
    assert_eq!(mode(&mut o, "w1"), 0o777);
    mk(&mut o, "w2", 0o2766);
    write(&mut b, "w2");
    assert_eq!(mode(&mut o, "w2"), 0o766, "bob is not in the group");
    // The owner's own write too, but a member keeps set-group-id without group execute.
    mk(&mut o, "w3", 0o6766);
    write(&mut o, "w3");
    assert_eq!(mode(&mut o, "w3"), 0o2766);
    // The superuser's writes keep them (CAP_FSETID).
    mk(&mut o, "w4", 0o6777);
    write(&mut r, "w4");
    assert_eq!(mode(&mut o, "w4"), 0o6777);
    // A truncate is a write.
    mk(&mut o, "t1", 0o6777);
    b.walk(0, 2, &["d", "t1"]).expect("walk");
    b.setattr(2, set(setattr::SIZE, |s| s.size = 0))
        .expect("truncate");
    assert_eq!(mode(&mut o, "t1"), 0o777);
    // Linux's kernel clears them itself before a cached write, as the writer: anyone who may
    // write the file may clear them, and do nothing else to the mode.
    mk(&mut o, "k1", 0o6777);
    b.walk(0, 3, &["d", "k1"]).expect("walk");
    assert_eq!(
        errno(b.setattr(3, set(setattr::MODE, |s| s.mode = 0o6775))),
        EPERM
    );
    b.setattr(3, set(setattr::MODE, |s| s.mode = S_IFREG | 0o777))
        .expect("clear the set-id bits");
    assert_eq!(mode(&mut o, "k1"), 0o777);
    // Not on a file the requester may not write.
    mk(&mut o, "k2", 0o6755);
    b.walk(0, 6, &["d", "k2"]).expect("walk");
    assert_eq!(
        errno(b.setattr(6, set(setattr::MODE, |s| s.mode = S_IFREG | 0o755))),
        EPERM
    );
    assert_eq!(mode(&mut o, "k2"), 0o6755);
    // A change of owner clears set-user-id even by the superuser; set-group-id stays when
    // the group may not execute.
    mk(&mut o, "c1", 0o6755);
    mk(&mut o, "c2", 0o6745);
    for name in ["c1", "c2"] {
        r.walk(0, 4, &["d", name]).expect("walk");
        r.setattr(4, set(setattr::UID, |s| s.uid = BOB))
            .expect("chown");
        r.clunk(4).expect("clunk");
    }
    assert_eq!((mode(&mut o, "c1"), mode(&mut o, "c2")), (0o755, 0o2745));
    // A chown that says the mode itself gets that mode.
    mk(&mut o, "c3", 0o6755);
    r.walk(0, 5, &["d", "c3"]).expect("walk");
    r.setattr(
        5,
        set(setattr::UID | setattr::MODE, |s| {
            (s.uid, s.mode) = (BOB, 0o6700)
        }),
    )
    .expect("chown and chmod");
    assert_eq!(mode(&mut o, "c3"), 0o6700);
    // Plan 9's rules for 9P2000 fids: a write keeps them.
    mk(&mut o, "p9", 0o6777);
    let mut p = client(a);
    p.attach(0, "bob", "").expect("attach bob");
    p.walk(0, 1, &["d", "p9"]).expect("walk");
    p.open(1, gefsd::proto::omode::OWRITE).expect("open");
    p.write(1, 0, b"x").expect("write");
    assert_eq!(mode(&mut o, "p9"), 0o6777);
    stop(s);
}
