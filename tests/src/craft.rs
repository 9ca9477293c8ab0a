//! Crafted images: a small populated file system written through the real
//! file-system layer, then changed with raw store messages that the
//! file-system layer would refuse (entries named `..`, directory cycles,
//! labels that are not UTF-8, impossible tree heights). Every block the
//! store writes carries valid hashes, so only structural checks stand
//! between such an image and the tools.

use std::path::Path;
use std::sync::Arc;

use gefs_core::alloc::Tier;
use gefs_core::format::key;
use gefs_core::format::msg::Msg;
use gefs_core::format::value::{Xdir, DMDIR};
use gefs_core::format::Encode;
use gefs_core::fs::{Entry, Fs, Mount, Who, ORDWR, OREAD};
use gefs_core::store::{Store, TreeId};

/// Size of a crafted image.
pub const SIZE: u64 = 32 << 20;

/// The login name the tests run as (the image's first administrator, so that
/// `gefsd` authenticating by peer credentials lets the test attach).
pub fn me() -> String {
    gefs_core::host::login_name().unwrap_or_else(|| "root".into())
}

/// A populated image at `path`: `/a` (3 bytes), `/dir/b` (20 KiB, two data
/// blocks), `/dir/sub/` (empty), committed. Returns the open file system.
pub fn populated(path: &Path) -> Fs {
    let (_, store) =
        gefs_core::image::format_image(path, Some(SIZE), &me(), false).expect("format");
    let fs = Fs::new(Arc::new(store), false).expect("fs");
    let who = adm(&fs);
    let (m, root) = fs.attach("main").expect("attach main");
    file(&fs, &m, &root, b"a", b"abc", &who);
    let d = dir(&fs, &m, &root, b"dir", &who);
    let big: Vec<u8> = (0..20 << 10).map(|i| (i % 251) as u8).collect();
    file(&fs, &m, &d, b"b", &big, &who);
    dir(&fs, &m, &d, b"sub", &who);
    drop((m, root, d));
    fs.sync().expect("sync");
    fs
}

/// A permissive requester acting as `adm`.
pub fn adm(fs: &Fs) -> Who {
    Who::permissive(fs.uid("adm").expect("adm"))
}

/// Create file `name` in `dir` holding `data`.
pub fn file(fs: &Fs, m: &Mount, dir: &Entry, name: &[u8], data: &[u8], who: &Who) -> Entry {
    let o = fs.create(m, dir, name, 0o644, ORDWR, who).expect("create");
    let mut off = 0;
    while off < data.len() {
        off += fs.write(&o, off as u64, &data[off..], who).expect("write");
    }
    o.entry().clone()
}

/// Create directory `name` in `dir`.
pub fn dir(fs: &Fs, m: &Mount, dir: &Entry, name: &[u8], who: &Who) -> Entry {
    let o = fs
        .create(m, dir, name, DMDIR | 0o755, OREAD, who)
        .expect("mkdir");
    o.entry().clone()
}

/// Apply raw messages to the tree of `label`.
pub fn raw(fs: &Fs, label: &str, msgs: Vec<Msg>) {
    let s = fs.store();
    let t = s.mount(label).expect("mount");
    s.upsert(t, msgs, Tier::Normal).expect("upsert");
    s.unmount(t);
}

/// Apply raw messages to the snapshot tree.
pub fn raw_snap(store: &Store, msgs: Vec<Msg>) {
    store
        .upsert(TreeId::SNAP, msgs, Tier::Normal)
        .expect("upsert snapshot tree");
}

/// An entry value: a directory (`dir`) or a regular file of `length` bytes.
pub fn xdir(qid: u64, dir: bool, length: u64) -> Xdir {
    Xdir {
        qid_path: qid,
        qid_type: if dir { (DMDIR >> 24) as u8 } else { 0 },
        mode: if dir { DMDIR | 0o755 } else { 0o644 },
        length,
        mtime: 1_600_000_000_000_000_000,
        atime: 1_600_000_000_000_000_000,
        uid: -1,
        gid: -1,
        muid: -1,
        ..Xdir::default()
    }
}

/// Messages that add a directory entry `name` under directory `pqid`; a
/// directory also gets its up-link.
pub fn entry_msgs(pqid: u64, name: &[u8], x: &Xdir) -> Vec<Msg> {
    let k = key::ent(pqid, name);
    let mut v = vec![Msg::insert(k.clone(), x.encode())];
    if x.mode & DMDIR != 0 {
        v.push(Msg::insert(key::up(x.qid_path), k));
    }
    v
}

/// Commit and close the image.
pub fn finish(fs: Fs) {
    fs.sync().expect("sync");
    drop(fs);
}
