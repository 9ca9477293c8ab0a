//! Device nodes through 9P2000.L (`ops_l.rs`, Tmknod): a requester with root powers (Linux uid
//! 0 as an administrator) makes block and character devices; Rgetattr shows their type and
//! `rdev` as Linux encodes it; chmod, chown, rename and unlink work as on any file; their data is
//! never served (EPERM through 9P2000.L, an error string through 9P2000, whose stat shows
//! `DMDEVICE`); anyone else gets EPERM, as a Linux process without `CAP_MKNOD` does.

mod common;

use common::*;
use gefs_core::fs::errno::*;
use gefs_core::fs::DMDEVICE;
use gefsd::proto::dotl::setattr;
use gefsd::server::posix::ifmt::*;

/// The users table: toor (id 0) is an administrator, so Linux's uid 0 has root powers.
fn table() -> String {
    let me = me();
    format!("-1:adm::{me},toor\n0:toor::\n1:{me}:{me}:\n2:none::\n1000:bob:bob:\n")
}

#[test]
fn root_makes_device_nodes_that_behave_as_files_without_data() {
    let (s, a) = start();
    set_users(&s, a, &table());
    let mut r = as_uid(a, 0);
    r.mkdir(0, "d", 0o777, 0).expect("mkdir");
    r.walk(0, 1, &["d"]).expect("walk");
    r.setattr(1, set(setattr::MODE, |s| s.mode = 0o777))
        .expect("chmod 0777");
    r.mknod_dev(1, "null", S_IFCHR | 0o666, (1, 3), 0)
        .expect("mknod c 1 3");
    r.mknod_dev(1, "sda1", S_IFBLK | 0o640, (8, 0x12345), 0)
        .expect("mknod b 8 0x12345");
    r.walk(1, 2, &["null"]).expect("walk");
    r.walk(1, 3, &["sda1"]).expect("walk");
    let c = attr(&mut r, 2);
    assert_eq!((c.mode, c.rdev, c.size), (S_IFCHR | 0o666, 0x103, 0));
    let b = attr(&mut r, 3);
    assert_eq!((b.mode, b.rdev, b.size), (S_IFBLK | 0o640, 0x1230_0845, 0));
    let types: Vec<(String, u8)> = {
        r.walk(1, 9, &[]).expect("clone");
        r.lopen(9, O_RDONLY).expect("open the directory");
        let mut v: Vec<_> = r
            .readdir_all(9, 8192)
            .expect("readdir")
            .into_iter()
            .filter(|d| d.name != "." && d.name != "..")
            .map(|d| (d.name, d.ty))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        types,
        [("null".into(), 2), ("sda1".into(), 6)],
        "DT_CHR, DT_BLK"
    );
    // Out-of-range numbers, an unknown type, an existing name.
    assert_eq!(
        errno(r.mknod_dev(1, "big", S_IFCHR | 0o600, (4096, 0), 0)),
        EINVAL
    );
    assert_eq!(
        errno(r.mknod_dev(1, "big", S_IFCHR | 0o600, (0, 1 << 20), 0)),
        EINVAL
    );
    assert_eq!(
        errno(r.mknod_dev(1, "null", S_IFCHR | 0o600, (1, 3), 0)),
        EEXIST
    );
    // chmod, chown, utimes; the device stays the same.
    r.setattr(2, set(setattr::MODE, |s| s.mode = 0o600))
        .expect("chmod");
    r.setattr(
        2,
        set(setattr::UID | setattr::GID, |s| (s.uid, s.gid) = (BOB, BOB)),
    )
    .expect("chown");
    r.setattr(
        2,
        set(
            setattr::ATIME | setattr::MTIME | setattr::ATIME_SET | setattr::MTIME_SET,
            |s| (s.atime_sec, s.mtime_sec) = (100, 200),
        ),
    )
    .expect("utimes");
    let c = attr(&mut r, 2);
    assert_eq!(
        (c.mode, c.uid, c.gid, c.rdev, c.mtime_sec),
        (S_IFCHR | 0o600, BOB, BOB, 0x103, 200)
    );
    // No size, no data.
    assert_eq!(
        errno(r.setattr(2, set(setattr::SIZE, |s| s.size = 10))),
        EPERM
    );
    r.walk(2, 4, &[]).expect("clone");
    assert_eq!(errno(r.lopen(4, O_RDONLY)), EPERM, "open for reading");
    assert_eq!(errno(r.lopen(4, O_RDWR)), EPERM, "open for writing");
    // Rename, then unlink.
    r.renameat(1, "null", 1, "zero").expect("rename");
    r.walk(1, 5, &["zero"]).expect("walk to the new name");
    assert_eq!(attr(&mut r, 5).rdev, 0x103);
    r.unlinkat(1, "zero", 0).expect("unlink");
    assert_eq!(errno(r.walk(1, 6, &["zero"])), ENOENT);

    // Without root powers: EPERM, even for an administrator attached by name.
    let mut b = as_uid(a, BOB);
    b.walk(0, 1, &["d"]).expect("walk");
    assert_eq!(
        errno(b.mknod_dev(1, "tty", S_IFCHR | 0o644, (5, 0), BOB)),
        EPERM
    );
    b.mknod(1, "fifo", S_IFIFO | 0o644, BOB)
        .expect("a pipe needs no powers");
    let mut m = lattached(a);
    m.walk(0, 1, &["d"]).expect("walk");
    assert_eq!(
        errno(m.mknod_dev(1, "tty", S_IFBLK | 0o644, (5, 0), ME)),
        EPERM
    );

    // 9P2000: the stat shows DMDEVICE and length 0; the data is refused with an error string.
    let mut p = client(a);
    p.attach(0, &me(), "").expect("attach");
    p.walk(0, 1, &["d", "sda1"]).expect("walk");
    let st = p.stat(1).expect("stat");
    assert_eq!((st.mode & DMDEVICE, st.length), (DMDEVICE, 0));
    let e = p.open(1, 0).expect_err("open of a device node");
    assert_eq!(e.ename(), Some("Operation not permitted"));
    stop(s);
}
