//! Exporting a snapshot's tree to a host directory (`gefs-dump export`):
//! files (data, mode bits, mtime) and directories (mode, mtime).
//!
//! The image is untrusted input, so nothing it holds ever names a host
//! path. Invariants:
//! - every entry name passes the 9P name rule ([`names::check`]: no `/`, no
//!   byte below 0x20, not empty, `.` or `..`, at most 244 bytes); an entry
//!   that fails is reported and skipped;
//! - every host object is made relative to an open descriptor of its parent
//!   directory, with one path component (`mkdirat`, `openat`), starting
//!   from DIR; nothing is opened through a symbolic link (`O_NOFOLLOW`), so
//!   a link planted in DIR is reported and left alone, and no path ever
//!   leads out of DIR;
//! - an existing file is replaced (unlinked, then created with `O_EXCL`),
//!   never written through, so a hard link to a file outside DIR is not
//!   changed; anything else in the way (a directory where a file goes, a
//!   file where a directory goes, a device) is reported and left alone;
//! - a device node is never made on the host: it is listed in
//!   [`Exported::devices`] (not an error: the export is otherwise complete);
//! - a directory whose qid was exported already (a directory cycle, or one
//!   directory under two names) is reported and skipped, and nesting is
//!   bounded by [`MAX_DEPTH`] (one open descriptor per level);
//! - a file's data is written block by block at its offsets, only where the
//!   image holds a block: holes stay holes, and the bytes written never
//!   exceed the data blocks the image holds, whatever length it claims. The
//!   length is then set with `ftruncate`; a length the host cannot hold is
//!   reported, and the file keeps its data.
//!
//! Damage met while reading one entry or listing one directory (a corrupt
//! block, an undecodable value) is reported and the entry skipped, or the
//! listing cut short; a failure of the host (no space, no permission on
//! DIR) stops the export with an error.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::IoOp;
use crate::format::key::{self, KeyView};
use crate::format::Decode;
use crate::format::{Bptr, BLKSZ};
use crate::fs::{names, Entry, Error, Fs, Mount, Result, Who, OREAD};

/// Deepest directory nesting exported.
pub const MAX_DEPTH: usize = 256;

/// What an export did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Exported {
    /// Files written.
    pub files: u64,
    /// Directories made.
    pub dirs: u64,
    /// Bytes of data written (holes not counted).
    pub bytes: u64,
    /// Entries skipped or cut short, one line each, with the reason.
    pub skipped: Vec<String>,
    /// Device nodes, never made on the host: one line each, path and device.
    pub devices: Vec<String>,
}

fn host_err(what: &str, e: impl Into<io::Error>) -> Error {
    let e: io::Error = e.into();
    Error::Store(crate::Error::io(
        IoOp::Write,
        0,
        io::Error::new(e.kind(), format!("{what}: {e}")),
    ))
}

/// Copy the tree of `label` into the host directory `dst` (created if
/// absent). Existing files of the same names are replaced. Entries that
/// cannot be exported safely are listed in [`Exported::skipped`].
pub fn export(fs: &Fs, label: &str, dst: &Path) -> Result<Exported> {
    let who = Who::permissive(fs.uid("adm")?);
    let (m, root) = fs.attach(label)?;
    std::fs::create_dir_all(dst).map_err(|e| host_err(&dst.display().to_string(), e))?;
    let top = rustix::fs::open(
        dst,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| host_err(&dst.display().to_string(), e))?;
    let mut x = Exporter {
        fs,
        m: &m,
        who,
        out: Exported::default(),
        seen: HashSet::from([root.qid.path]),
    };
    x.dir(top.as_fd(), &root, "", 0)?;
    Ok(x.out)
}

struct Exporter<'a> {
    fs: &'a Fs,
    m: &'a Mount,
    who: Who,
    out: Exported,
    /// Directories exported so far, by qid path.
    seen: HashSet<u64>,
}

/// What to do about one entry.
enum Step {
    Done,
    Skip(String),
}

impl Exporter<'_> {
    fn skip(&mut self, path: &str, why: impl std::fmt::Display) {
        self.out.skipped.push(format!("{path}: {why}: skipped"));
    }

    /// Export the contents of directory `d` into the open host directory
    /// `at` (`path` is its name relative to DIR, for messages).
    fn dir(&mut self, at: BorrowedFd<'_>, d: &Entry, path: &str, depth: usize) -> Result<()> {
        let shown_dir = if path.is_empty() { "/" } else { path };
        let o = match self.fs.open(self.m, d, OREAD, &self.who) {
            Ok(o) => o,
            Err(e) => {
                self.skip(shown_dir, format!("directory cannot be read: {e}"));
                return Ok(());
            }
        };
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = match self.fs.readdir(&o, after.as_deref(), 256) {
                Ok(b) => b,
                Err(e) => {
                    self.skip(shown_dir, format!("listing cut short: {e}"));
                    return Ok(());
                }
            };
            let Some(last) = batch.last() else { break };
            after = Some(last.name.clone());
            for de in batch {
                let shown = format!("{path}/{}", String::from_utf8_lossy(&de.name));
                if let Err(e) = names::check(&de.name) {
                    let why = format!(
                        "entry name {:?} in the image is {e}",
                        de.name.escape_ascii().to_string()
                    );
                    self.skip(&shown, why);
                    continue;
                }
                let step = match self.fs.walk(self.m, d, &de.name, &self.who) {
                    Ok(e) if e.dir.is_device() => {
                        let what = match e.dir.device() {
                            Some(v) if v.block => format!("block device {},{}", v.major, v.minor),
                            Some(v) => format!("character device {},{}", v.major, v.minor),
                            None => "device node".to_string(),
                        };
                        self.out.devices.push(format!("{shown}: {what}"));
                        Step::Done
                    }
                    Ok(e) if e.is_dir() => self.subdir(at, &e, &de.name, &shown, depth)?,
                    Ok(e) => self.file(at, &e, &de.name, &shown)?,
                    Err(e) => Step::Skip(format!("cannot be read: {e}")),
                };
                if let Step::Skip(why) = step {
                    self.skip(&shown, why);
                }
            }
        }
        Ok(())
    }

    fn subdir(
        &mut self,
        at: BorrowedFd<'_>,
        e: &Entry,
        name: &[u8],
        shown: &str,
        depth: usize,
    ) -> Result<Step> {
        if !self.seen.insert(e.qid.path) {
            return Ok(Step::Skip(format!(
                "directory qid {} was exported already (a directory cycle in the image)",
                e.qid.path
            )));
        }
        if depth + 1 >= MAX_DEPTH {
            return Ok(Step::Skip(format!(
                "directories nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(host_err(shown, e)),
        }
        let fd = match rustix::fs::openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => return Ok(in_the_way(at, name, e)),
        };
        self.out.dirs += 1;
        self.dir(fd.as_fd(), e, shown, depth + 1)?;
        set_meta(fd, e.dir.mode & 0o777, e.dir.mtime, shown)?;
        Ok(Step::Done)
    }

    fn file(&mut self, at: BorrowedFd<'_>, e: &Entry, name: &[u8], shown: &str) -> Result<Step> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let mode = Mode::from_raw_mode(0o600);
        let fd = match rustix::fs::openat(at, name, flags | OFlags::CLOEXEC, mode) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::EXIST) => {
                // Replace a regular file; leave anything else alone.
                match rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                        rustix::fs::unlinkat(at, name, AtFlags::empty())
                            .map_err(|x| host_err(shown, x))?;
                        match rustix::fs::openat(at, name, flags | OFlags::CLOEXEC, mode) {
                            Ok(fd) => fd,
                            Err(x) => return Ok(in_the_way(at, name, x)),
                        }
                    }
                    _ => return Ok(in_the_way(at, name, rustix::io::Errno::EXIST)),
                }
            }
            Err(x) => return Ok(in_the_way(at, name, x)),
        };
        let f = File::from(fd);
        let step = self.data(&f, e, shown)?;
        set_meta(OwnedFd::from(f), e.dir.mode & 0o777, e.dir.mtime, shown)?;
        self.out.files += 1;
        Ok(step)
    }

    /// Write the blocks the image holds for `e` at their offsets, then set
    /// the length.
    fn data(&mut self, f: &File, e: &Entry, shown: &str) -> Result<Step> {
        let o = match self.fs.open(self.m, e, OREAD, &self.who) {
            Ok(o) => o,
            Err(x) => return Ok(Step::Skip(format!("cannot be opened: {x}"))),
        };
        let (q, len) = (e.qid.path, e.dir.length);
        let (lo, hi) = (key::dat(q, 0), key::dat(q, u64::MAX));
        let mut from = Bound::Included(lo);
        let mut end = 0u64;
        'blocks: loop {
            let b = match &from {
                Bound::Included(k) => Bound::Included(&k[..]),
                Bound::Excluded(k) => Bound::Excluded(&k[..]),
                Bound::Unbounded => Bound::Unbounded,
            };
            let kvs = match self
                .fs
                .store()
                .scan(self.m.tree(), b, Bound::Included(&hi), 256)
            {
                Ok(kvs) => kvs,
                Err(x) => return Ok(Step::Skip(format!("data cannot be read: {x}"))),
            };
            let Some((last, _)) = kvs.last() else { break };
            from = Bound::Excluded(last.clone());
            for (k, v) in kvs {
                let Ok(KeyView::Dat { off, .. }) = KeyView::decode(&k) else {
                    continue;
                };
                if off >= len {
                    break 'blocks;
                }
                if Bptr::from_slice(&v).is_ok_and(|p| p.is_none()) {
                    continue;
                }
                let chunk = match self.fs.read(&o, off, BLKSZ) {
                    Ok(c) => c,
                    Err(x) => return Ok(Step::Skip(format!("block at {off} cannot be read: {x}"))),
                };
                f.write_all_at(&chunk, off)
                    .map_err(|x| host_err(shown, x))?;
                self.out.bytes += chunk.len() as u64;
                end = end.max(off + chunk.len() as u64);
            }
        }
        if let Err(x) = f.set_len(len) {
            f.set_len(end).map_err(|x| host_err(shown, x))?;
            return Ok(Step::Skip(format!(
                "length {len} cannot be held here ({x}); its {end} bytes of data were kept"
            )));
        }
        Ok(Step::Done)
    }
}

/// Why `name` in `at` could not be used, after `openat` failed with `e`.
fn in_the_way(at: BorrowedFd<'_>, name: &[u8], e: rustix::io::Errno) -> Step {
    let what = match rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => "a symbolic link is in the way (never followed)",
            FileType::Directory => "a directory is in the way",
            FileType::RegularFile => "a file is in the way",
            _ => "a special file is in the way",
        },
        Err(_) => "cannot be created",
    };
    Step::Skip(format!("{what} ({e})"))
}

/// Set the mode bits and mtime of an open file or directory.
fn set_meta(fd: OwnedFd, mode: u32, mtime_ns: u64, shown: &str) -> Result<()> {
    let f = File::from(fd);
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|x| host_err(shown, x))?;
    let t = UNIX_EPOCH + Duration::from_nanos(mtime_ns);
    f.set_modified(t).map_err(|x| host_err(shown, x))
}
