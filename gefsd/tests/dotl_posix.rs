//! POSIX semantics that pjdfstest checks through v9fs (`tests/vm/PJDFSTEST.md`), each through a
//! real server with the messages v9fs sends for the system call: what a handle open for
//! writing may do to its file whatever the file's mode says.

mod common;

use std::net::SocketAddr;

use common::*;
use gefs_core::fs::errno::*;
use gefsd::proto::dotl::setattr;
use gefsd::server::posix::ifmt::*;

/// The users table: the first administrator is id 1, bob is 1000.
fn table() -> String {
    let me = me();
    format!("-1:adm::{me}\n1:{me}:{me}:\n2:none::\n1000:bob:bob:\n")
}

/// A directory every user may write in, as `name` under the top.
fn shared_dir(a: SocketAddr, name: &str) {
    let mut r = lattached(a);
    r.mkdir(0, name, 0o777, ME).expect("mkdir");
    r.walk(0, 1, &[name]).expect("walk");
    r.setattr(1, set(setattr::MODE, |s| s.mode = 0o777))
        .expect("chmod 0777");
}

/// pjdfstest ftruncate/00.t: `open(O_CREAT|O_RDWR, 0)` then `ftruncate` succeeds, and so does
/// `futimens(NULL)`, because the handle was opened for writing (v9fs sends both on the open
/// fid); a path truncate of the same file is refused, and a handle opened for reading gives
/// no such right.
#[test]
fn a_handle_open_for_writing_may_truncate_whatever_the_mode() {
    let (s, a) = start();
    set_users(&s, a, &table());
    shared_dir(a, "d");
    let mut b = as_uid(a, BOB);
    b.walk(0, 1, &["d"]).expect("walk");
    b.lcreate(1, "f", O_RDWR | O_CREAT, S_IFREG, BOB)
        .expect("create with mode 0");
    assert_eq!(b.write(1, 0, b"some bytes").expect("write"), 10);
    b.setattr(
        1,
        set(setattr::SIZE | setattr::MTIME | setattr::CTIME, |s| {
            s.size = 3
        }),
    )
    .expect("ftruncate on the open fid");
    assert_eq!(attr(&mut b, 1).size, 3);
    b.setattr(1, set(setattr::ATIME | setattr::MTIME, |_| {}))
        .expect("futimens(NULL) on the open fid");
    // The same file by path: mode 0 refuses the owner.
    b.walk(0, 2, &["d", "f"]).expect("walk");
    assert_eq!(
        errno(b.setattr(2, set(setattr::SIZE, |s| s.size = 0))),
        EACCES,
        "truncate by path"
    );
    // Opened for reading (as the owner after chmod 0400): no truncate through it.
    b.setattr(2, set(setattr::MODE, |s| s.mode = 0o400))
        .expect("chmod 0400");
    b.walk(0, 3, &["d", "f"]).expect("walk");
    b.lopen(3, O_RDONLY).expect("open for reading");
    assert_eq!(
        errno(b.setattr(3, set(setattr::SIZE, |s| s.size = 0))),
        EACCES,
        "ftruncate on a read-only fid"
    );
    assert_eq!(attr(&mut b, 2).size, 3);
    stop(s);
}
