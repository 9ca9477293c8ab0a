//! What 9P2000.L needs of the file system: symbolic links, pipes and sockets, creates with
//! the mode and group asked for, POSIX permission and ownership rules, sticky directories,
//! rename across directories with replacement, times, ctime and statfs.

use super::perm::set_users;
use super::*;
use crate::format::value::{DMNAMEDPIPE, DMSETGID, DMSETUID, DMSETVTX, DMSYMLINK};

const ALICE: i32 = 2;
const BOB: i32 = 3;
const STAFF: i32 = 4;

const TABLE: &str = "-1:adm::glenda\n0:none::\n1:glenda:glenda:\n2:alice::\n3:bob::\n\
                     4:staff:alice:alice,bob\n";

fn setup() -> (Arc<MemDev>, Fs, Mount, Entry) {
    let dev = format(DEV);
    let fs = open(&dev);
    set_users(&fs, TABLE);
    let (m, root) = fs.attach("main").unwrap();
    // A directory everyone may write, as /tmp without the sticky bit.
    let c = Changes {
        mode: Some(DMDIR | 0o777),
        ..Changes::default()
    };
    fs.wstat(&m, &root, &c, &Who::permissive(GLENDA)).unwrap();
    let root = fs.stat(&m, &root).unwrap();
    (dev, fs, m, root)
}

fn px(uid: i32) -> Who {
    Who::posix(uid)
}

fn check_clean(dev: &Arc<MemDev>) {
    let r = crate::check::check(&**dev, &crate::check::CheckOpts::default()).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
}

#[test]
fn symlinks_hold_their_target_and_are_never_followed() {
    let (dev, fs, m, root) = setup();
    let target = b"../some/where/else";
    let l = fs
        .make(
            &m,
            &root,
            b"l",
            Kind::Symlink(target),
            0o777,
            None,
            &px(ALICE),
        )
        .unwrap();
    assert!(l.is_symlink());
    assert_eq!(l.dir.mode, DMSYMLINK | 0o777);
    assert_eq!(l.qid.ty, 0x02, "QTSYMLINK");
    assert_eq!(l.dir.length, target.len() as u64);
    assert_eq!(fs.readlink(&m, &l).unwrap(), target);
    // Never followed: a walk through it is not a walk into a directory.
    assert!(matches!(
        fs.walk(&m, &l, b"x", &px(ALICE)),
        Err(Error::NotDir)
    ));
    // A 9P2000 client sees a file with the bit; it may read it but not write it.
    let o = fs.open(&m, &l, OREAD, &Who::user(ALICE)).unwrap();
    assert_eq!(fs.read(&o, 0, 100).unwrap(), target);
    assert!(matches!(
        fs.open(&m, &l, OWRITE, &Who::user(ALICE)),
        Err(Error::NotPermitted)
    ));
    let trunc = Changes {
        length: Some(0),
        ..Changes::default()
    };
    assert!(matches!(
        fs.wstat(&m, &l, &trunc, &px(ALICE)),
        Err(Error::NotPermitted)
    ));
    // readlink of a file is EINVAL.
    let f = put(&fs, &m, &root, "f", b"x");
    assert!(matches!(fs.readlink(&m, &f), Err(Error::Invalid(_))));
    // Bad targets.
    for bad in [&b""[..], &[b'a'; MAX_TARGET + 1][..], b"a\0b"] {
        let r = fs.make(
            &m,
            &root,
            b"bad",
            Kind::Symlink(bad),
            0o777,
            None,
            &px(ALICE),
        );
        assert!(matches!(r, Err(Error::Invalid(_))), "{}", bad.len());
    }
    let long = vec![b'x'; MAX_TARGET];
    let ll = fs
        .make(
            &m,
            &root,
            b"long",
            Kind::Symlink(&long),
            0o777,
            None,
            &px(ALICE),
        )
        .unwrap();
    // Durable, and the checker knows the kind.
    fs.sync().unwrap();
    drop((m, root, l, ll, f, o));
    drop(fs);
    check_clean(&dev);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let l = fs.walk(&m, &root, b"l", &px(ALICE)).unwrap();
    assert_eq!(fs.readlink(&m, &l).unwrap(), target);
    let ll = fs.walk(&m, &root, b"long", &px(ALICE)).unwrap();
    assert_eq!(fs.readlink(&m, &ll).unwrap(), long);
    // Removing a link removes the link, and its block.
    fs.remove(&m, &l, &px(ALICE)).unwrap();
    fs.remove(&m, &ll, &px(ALICE)).unwrap();
    fs.sync().unwrap();
    drop((m, root, l, ll));
    drop(fs);
    check_clean(&dev);
}

#[test]
fn pipes_and_sockets_are_entries_without_contents() {
    let (_d, fs, m, root) = setup();
    let p = fs
        .make(&m, &root, b"fifo", Kind::Pipe, 0o600, None, &px(ALICE))
        .unwrap();
    assert_eq!((p.dir.mode, p.dir.length), (DMNAMEDPIPE | 0o600, 0));
    assert!(matches!(
        fs.open(&m, &p, OWRITE, &px(ALICE)),
        Err(Error::NotPermitted)
    ));
    let s = fs
        .make(&m, &root, b"sock", Kind::Socket, 0o600, None, &px(ALICE))
        .unwrap();
    assert!(s.dir.is_special());
    // The kind never changes.
    let c = Changes {
        mode: Some(0o600),
        ..Changes::default()
    };
    assert!(matches!(
        fs.wstat(&m, &p, &c, &px(ALICE)),
        Err(Error::Wstat(WstatRule::DirBit))
    ));
}

#[test]
fn posix_creates_take_the_mode_and_group_asked_for() {
    let (_d, fs, m, root) = setup();
    // The parent's 0777 is not inherited, and the set-id bits are kept.
    let o = fs
        .make_open(
            &m,
            &root,
            b"f",
            DMSETUID | 0o640,
            Some(STAFF),
            ORDWR,
            &px(ALICE),
        )
        .unwrap();
    assert_eq!(o.entry().dir.mode, DMSETUID | 0o640);
    assert_eq!((o.entry().dir.uid, o.entry().dir.gid), (ALICE, STAFF));
    // A group the requester is not in: the parent's.
    let g = fs
        .make(&m, &root, b"g", Kind::File, 0o600, Some(GLENDA), &px(ALICE))
        .unwrap();
    assert_eq!(g.dir.gid, root.dir.gid);
    // Under a set-group-id directory: the directory's group, and new directories keep the bit.
    let d = fs
        .make(
            &m,
            &root,
            b"d",
            Kind::Dir,
            DMSETGID | 0o777,
            Some(STAFF),
            &px(ALICE),
        )
        .unwrap();
    assert_eq!(d.dir.mode, DMDIR | DMSETGID | 0o777);
    let sub = fs
        .make(&m, &d, b"sub", Kind::Dir, 0o755, Some(BOB), &px(BOB))
        .unwrap();
    assert_eq!(
        (sub.dir.gid, sub.dir.mode),
        (STAFF, DMDIR | DMSETGID | 0o755)
    );
    // Plan 9 creates may not set them.
    assert!(matches!(
        fs.create(&m, &root, b"p9", DMSETUID | 0o644, ORDWR, &glenda()),
        Err(Error::Invalid(_))
    ));
    // Nor does Plan 9's wstat; a POSIX chmod by the owner does.
    let c = Changes {
        mode: Some(DMSETVTX | 0o644),
        ..Changes::default()
    };
    assert!(fs.wstat(&m, &g, &c, &Who::user(ALICE)).is_err());
    let g = fs.wstat(&m, &g, &c, &px(ALICE)).unwrap();
    assert_eq!(g.dir.mode, DMSETVTX | 0o644);
    // A Plan 9 chmod may keep the POSIX bits it sees, not add others.
    let keep = Changes {
        mode: Some(DMSETVTX | 0o600),
        ..Changes::default()
    };
    let g = fs.wstat(&m, &g, &keep, &Who::user(ALICE)).unwrap();
    assert_eq!(g.dir.mode, DMSETVTX | 0o600);
    let add = Changes {
        mode: Some(DMSETVTX | DMSETUID | 0o600),
        ..Changes::default()
    };
    assert!(fs.wstat(&m, &g, &add, &Who::user(ALICE)).is_err());
    // A set-group-id bit for a group the owner is not in is dropped (POSIX).
    let c = Changes {
        mode: Some(DMSETGID | 0o644),
        ..Changes::default()
    };
    let h = fs
        .make(&m, &root, b"h", Kind::File, 0o600, None, &px(BOB))
        .unwrap();
    assert_ne!(h.dir.gid, BOB);
    let h = fs.wstat(&m, &h, &c, &px(BOB)).unwrap();
    assert_eq!(h.dir.mode, 0o644);
}

#[test]
fn posix_owner_and_time_rules() {
    let (_d, fs, m, root) = setup();
    let f = fs
        .make(&m, &root, b"f", Kind::File, 0o666, None, &px(ALICE))
        .unwrap();
    let c0 = f.dir.change_time();
    // Only the owner sets an explicit time; anyone who may write sets "now".
    let explicit = Changes {
        mtime: Some(1_000_000_000),
        atime: Some(2_000_000_000),
        ..Changes::default()
    };
    assert!(matches!(
        fs.wstat(&m, &f, &explicit, &px(BOB)),
        Err(Error::Wstat(WstatRule::NotOwner))
    ));
    let now = Changes {
        times_now: true,
        mtime: Some(now_ns()),
        atime: Some(now_ns()),
        ..Changes::default()
    };
    fs.wstat(&m, &f, &now, &px(BOB)).unwrap();
    let f = fs.wstat(&m, &f, &explicit, &px(ALICE)).unwrap();
    assert_eq!((f.dir.mtime, f.dir.atime), (1_000_000_000, 2_000_000_000));
    // A chmod changes ctime, not mtime.
    let c1 = f.dir.change_time();
    assert!(c1 >= c0);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let c = Changes {
        mode: Some(0o600),
        ..Changes::default()
    };
    let f = fs.wstat(&m, &f, &c, &px(ALICE)).unwrap();
    assert!(f.dir.ctime > c1);
    assert_eq!(f.dir.mtime, 1_000_000_000);
    // Only the superuser gives files away; the owner may change to a group it is in.
    let chown = Changes {
        uid: Some(BOB),
        ..Changes::default()
    };
    assert!(fs.wstat(&m, &f, &chown, &px(ALICE)).is_err());
    let chgrp = Changes {
        gid: Some(STAFF),
        ..Changes::default()
    };
    let f = fs.wstat(&m, &f, &chgrp, &px(ALICE)).unwrap();
    assert_eq!(f.dir.gid, STAFF);
    let f = fs.wstat(&m, &f, &chown, &Who::posix_root(0)).unwrap();
    assert_eq!(f.dir.uid, BOB);
    // A group leader is no owner under POSIX (alice leads staff).
    let chmod = Changes {
        mode: Some(0o640),
        ..Changes::default()
    };
    assert!(fs.wstat(&m, &f, &chmod, &px(ALICE)).is_err());
    assert!(fs.wstat(&m, &f, &chmod, &Who::user(ALICE)).is_ok());
}

#[test]
fn sticky_directories_keep_other_users_entries() {
    let (_d, fs, m, root) = setup();
    let tmp = fs
        .make(
            &m,
            &root,
            b"tmp",
            Kind::Dir,
            DMSETVTX | 0o777,
            None,
            &px(GLENDA),
        )
        .unwrap();
    let a = fs
        .make(&m, &tmp, b"a", Kind::File, 0o666, None, &px(ALICE))
        .unwrap();
    let b = fs
        .make(&m, &tmp, b"b", Kind::File, 0o666, None, &px(BOB))
        .unwrap();
    assert!(matches!(
        fs.remove(&m, &a, &px(BOB)),
        Err(Error::NotPermitted)
    ));
    assert!(matches!(
        fs.rename(&m, &a, &tmp, b"a2", true, &px(BOB)),
        Err(Error::NotPermitted)
    ));
    // Replacing another user's entry is refused too.
    assert!(matches!(
        fs.rename(&m, &b, &tmp, b"a", true, &px(BOB)),
        Err(Error::NotPermitted)
    ));
    // Plan 9 has no sticky rule; the owner, the directory's owner and the superuser may.
    fs.rename(&m, &a, &tmp, b"a2", true, &px(ALICE)).unwrap();
    fs.remove(&m, &b, &px(GLENDA)).unwrap();
    fs.remove(&m, &a, &Who::user(BOB)).unwrap();
}

#[test]
fn rename_across_directories() {
    let (dev, fs, m, root) = setup();
    let who = px(ALICE);
    let mk = |dir: &Entry, name: &[u8]| fs.make(&m, dir, name, Kind::Dir, 0o755, None, &who);
    let a = mk(&root, b"a").unwrap();
    let b = mk(&root, b"b").unwrap();
    let f = fs
        .make(&m, &a, b"f", Kind::File, 0o644, None, &who)
        .unwrap();
    let o = fs.open(&m, &f, ORDWR, &who).unwrap();
    fs.write(&o, 0, b"moving data", &who).unwrap();
    fs.rename(&m, &f, &b, b"g", false, &who).unwrap();
    let f = fs.stat(&m, &f).unwrap();
    assert_eq!((f.name.as_slice(), f.parent), (&b"g"[..], b.qid.path));
    assert!(matches!(fs.walk(&m, &a, b"f", &who), Err(Error::NotFound)));
    assert_eq!(fs.read(&o, 0, 100).unwrap(), b"moving data");
    // Replacing: refused unless asked; a file replaces a file, whose handles see it gone.
    let t = fs
        .make(&m, &a, b"t", Kind::File, 0o644, None, &who)
        .unwrap();
    let to = fs.open(&m, &t, ORDWR, &who).unwrap();
    fs.write(&to, 0, &vec![7u8; 3 * BLKSZ], &who).unwrap();
    assert!(matches!(
        fs.rename(&m, &f, &a, b"t", false, &who),
        Err(Error::Exists)
    ));
    fs.rename(&m, &f, &a, b"t", true, &who).unwrap();
    assert!(matches!(fs.stat(&m, &t), Err(Error::Gone)));
    let t2 = fs.walk(&m, &a, b"t", &who).unwrap();
    assert_eq!(t2.qid.path, f.qid.path);
    // Kinds: a directory only replaces an empty directory; a file never a directory.
    let d1 = mk(&a, b"d1").unwrap();
    let d2 = mk(&b, b"d2").unwrap();
    let _inner = mk(&d2, b"inner").unwrap();
    assert!(matches!(
        fs.rename(&m, &d1, &b, b"d2", true, &who),
        Err(Error::NotEmpty)
    ));
    assert!(matches!(
        fs.rename(&m, &d1, &a, b"t", true, &who),
        Err(Error::NotDir)
    ));
    assert!(matches!(
        fs.rename(&m, &t2, &b, b"d2", true, &who),
        Err(Error::IsDir)
    ));
    let empty = mk(&b, b"empty").unwrap();
    fs.rename(&m, &d1, &b, b"empty", true, &who).unwrap();
    assert!(matches!(fs.stat(&m, &empty), Err(Error::Gone)));
    // The moved directory's `..` is its new parent.
    let d1 = fs.stat(&m, &d1).unwrap();
    assert_eq!(fs.walk(&m, &d1, b"..", &who).unwrap().qid.path, b.qid.path);
    // Never under itself.
    assert!(matches!(
        fs.rename(&m, &b, &d2, b"loop", true, &who),
        Err(Error::Invalid(_))
    ));
    let inner = fs.walk(&m, &d2, b"inner", &who).unwrap();
    assert!(matches!(
        fs.rename(&m, &b, &inner, b"loop", true, &who),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        fs.rename(&m, &b, &b, b"self", true, &who),
        Err(Error::Invalid(_))
    ));
    // To its own name: nothing happens.
    fs.rename(&m, &d2, &b, b"d2", true, &who).unwrap();
    assert!(matches!(
        fs.rename(&m, &root, &a, b"r", true, &who),
        Err(Error::Root)
    ));
    // A whole subtree moves with its directory.
    fs.rename(&m, &d2, &a, b"d2moved", true, &who).unwrap();
    let moved = walk_path(&fs, &m, &root, "a/d2moved/inner", &who).unwrap();
    assert_eq!(moved.qid.path, inner.qid.path);
    fs.sync().unwrap();
    drop((m, root, a, b, f, o, t, to, t2, d1, d2, empty, inner, moved));
    drop(fs);
    check_clean(&dev);
}

#[test]
fn statfs_counts_the_allocator() {
    let (_d, fs, m, root) = setup();
    let s0 = fs.statfs();
    assert_eq!(s0.bsize as usize, BLKSZ);
    assert!(
        s0.blocks > s0.bfree && s0.bfree > s0.bavail && s0.bavail > 0,
        "{s0:?}"
    );
    let size = s0.blocks * BLKSZ_U64;
    assert!(size <= DEV && size > DEV / 10 * 9, "{s0:?}");
    put(&fs, &m, &root, "big", &vec![1u8; 64 * BLKSZ]);
    let s1 = fs.statfs();
    assert!(s1.bfree + 64 <= s0.bfree, "{s0:?} {s1:?}");
}
