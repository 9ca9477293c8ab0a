//! Populating a tree from a host directory (`gefs-mkfs --from DIR`); the
//! way back is `export.rs`.
//!
//! Import copies regular files (contents, mode bits, mtime) and directories
//! (mode, mtime) depth first; symbolic links, devices, FIFOs and sockets
//! are skipped, each reported once. Everything is owned by one user (and
//! that user's group). Directory mtimes are set after their contents, so
//! the copy keeps the host's.

use std::fs as hostfs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::IoOp;
use crate::format::value::DMDIR;
use crate::fs::{Changes, Entry, Error, Fs, Mount, Result, Who, MAX_IO, ORDWR, OREAD};

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Imported {
    /// Regular files copied.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes of file data copied.
    pub bytes: u64,
    /// Things skipped, one line each (symlinks, devices, sockets, FIFOs).
    pub skipped: Vec<String>,
}

/// Progress callback: bytes copied so far.
pub type Progress<'a> = &'a mut dyn FnMut(&Imported);

fn host_err(p: &Path, e: std::io::Error) -> Error {
    Error::Store(crate::Error::io(
        IoOp::Open,
        0,
        std::io::Error::new(e.kind(), format!("{}: {e}", p.display())),
    ))
}

fn mtime_ns(md: &hostfs::Metadata) -> u64 {
    let s = u64::try_from(md.mtime()).unwrap_or(0);
    let n = u64::try_from(md.mtime_nsec()).unwrap_or(0);
    s.saturating_mul(1_000_000_000).saturating_add(n)
}

/// Copy the host directory `src` into the root of `label`, owned by user
/// `owner`. The caller commits (`Fs::sync`).
pub fn import(
    fs: &Fs,
    label: &str,
    src: &Path,
    owner: &str,
    progress: Progress<'_>,
) -> Result<Imported> {
    let uid = fs.uid(owner)?;
    let adm = fs.uid("adm")?;
    let who = Who::permissive(adm);
    let (m, root) = fs.attach(label)?;
    let md = hostfs::metadata(src).map_err(|e| host_err(src, e))?;
    if !md.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory",
            src.display()
        )));
    }
    let mut out = Imported::default();
    copy_dir(fs, &m, &root, src, uid, &who, &mut out, progress)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn copy_dir(
    fs: &Fs,
    m: &Mount,
    dir: &Entry,
    src: &Path,
    uid: i32,
    who: &Who,
    out: &mut Imported,
    progress: Progress<'_>,
) -> Result<()> {
    let mut names: Vec<PathBuf> = hostfs::read_dir(src)
        .map_err(|e| host_err(src, e))?
        .map(|d| d.map(|d| d.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| host_err(src, e))?;
    names.sort();
    for p in names {
        let md = hostfs::symlink_metadata(&p).map_err(|e| host_err(&p, e))?;
        let Some(name) = p.file_name().map(|n| n.as_encoded_bytes().to_vec()) else {
            continue;
        };
        let ft = md.file_type();
        let perm = md.permissions().mode() & 0o777;
        if ft.is_dir() {
            let o = fs.create(m, dir, &name, DMDIR | perm, OREAD, who)?;
            let e = o.entry().clone();
            drop(o);
            out.dirs += 1;
            copy_dir(fs, m, &e, &p, uid, who, out, progress)?;
            finish(fs, m, &e, DMDIR | perm, uid, mtime_ns(&md), who)?;
        } else if ft.is_file() {
            copy_file(fs, m, dir, &name, &p, perm, uid, mtime_ns(&md), who, out)?;
            progress(out);
        } else {
            let kind = if ft.is_symlink() {
                "symbolic link"
            } else {
                "special file"
            };
            out.skipped.push(format!("{}: {kind} skipped", p.display()));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn copy_file(
    fs: &Fs,
    m: &Mount,
    dir: &Entry,
    name: &[u8],
    p: &Path,
    perm: u32,
    uid: i32,
    mtime: u64,
    who: &Who,
    out: &mut Imported,
) -> Result<()> {
    let mut f = hostfs::File::open(p).map_err(|e| host_err(p, e))?;
    let o = fs.create(m, dir, name, perm | 0o200, ORDWR, who)?;
    let mut buf = vec![0u8; MAX_IO.min(1 << 20)];
    let mut off = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| host_err(p, e))?;
        if n == 0 {
            break;
        }
        let mut done = 0;
        while done < n {
            done += fs.write(&o, off + done as u64, &buf[done..n], who)?;
        }
        off += n as u64;
    }
    let e = o.entry().clone();
    drop(o);
    finish(fs, m, &e, perm, uid, mtime, who)?;
    out.files += 1;
    out.bytes += off;
    Ok(())
}

fn finish(fs: &Fs, m: &Mount, e: &Entry, mode: u32, uid: i32, mtime: u64, who: &Who) -> Result<()> {
    let c = Changes {
        mode: Some(mode),
        mtime: Some(mtime),
        uid: Some(uid),
        gid: Some(uid),
        ..Changes::default()
    };
    fs.wstat(m, e, &c, who)?;
    Ok(())
}
