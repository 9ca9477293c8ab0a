//! Image files and block devices as the tools open them: exclusive locks for
//! writers, shared ones for readers, and the refusal to format over an
//! existing gefs image, or anything else `probe` recognizes, unless forced.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::device::{Device, DeviceExt, FileDev, OpenMode};
use crate::error::{Error, IoOp, Result};
use crate::format::superblock::MAGIC;
use crate::format::BLKSZ_U64;
use crate::store::{Config, FormatOpts, Store};

/// The size of a new image when none is given.
pub const DEFAULT_SIZE: u64 = 1 << 30;

fn open_err(path: &Path, e: io::Error) -> Error {
    let what = if e.kind() == io::ErrorKind::WouldBlock {
        match lock_holder(path) {
            Some((pid, name)) if name == "gefsd" => format!(
                "{}: in use by gefsd (pid {pid}); stop it, or use `gefsd console` (snap, \
                 check, df) while it serves",
                path.display()
            ),
            Some((pid, name)) => format!(
                "{}: in use by another process, {name} (pid {pid}), which holds the image's \
                 lock; try again when it has finished",
                path.display()
            ),
            None => format!(
                "{}: in use by another process (it holds the image's lock)",
                path.display()
            ),
        }
    } else {
        format!("{}: {e}", path.display())
    };
    Error::io(IoOp::Open, 0, io::Error::new(e.kind(), what))
}

/// The process holding an `flock` on `path`, from `/proc/locks`, and its
/// command name: for the message that names who has the image. `None` when
/// it cannot be told (no `/proc`, or the holder has gone).
fn lock_holder(path: &Path) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).ok()?;
    let dev = md.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let id = format!("{major:02x}:{minor:02x}:{}", md.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid: u32 = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&id.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some((pid, comm.trim().to_string()))
}

/// Open an image for reading or writing, taking its lock.
pub fn open_device(path: &Path, read_only: bool) -> Result<Arc<dyn Device>> {
    let mode = if read_only {
        OpenMode::ReadOnly
    } else {
        OpenMode::ReadWrite
    };
    let d = FileDev::open(path, mode).map_err(|e| open_err(path, e))?;
    Ok(Arc::new(d))
}

/// Open an existing image as a store.
pub fn open_store(path: &Path, cfg: &Config) -> Result<Store> {
    Store::open(open_device(path, cfg.read_only)?, cfg)
}

/// Whether either superblock position holds a gefs-rs magic.
pub fn looks_like_gefs(dev: &dyn Device) -> bool {
    let size = dev.size();
    let mut b = [0u8; 8];
    let at_b = (size / BLKSZ_U64).saturating_sub(1) * BLKSZ_U64;
    [0, at_b]
        .iter()
        .any(|&off| dev.read_bytes(&mut b, off).is_ok() && b == MAGIC)
}

/// What [`format_image`] made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Made {
    /// Bytes the file system spans.
    pub size: u64,
    /// Whether a new file was created (or an existing one resized).
    pub created: bool,
    /// Arenas.
    pub narena: u32,
    /// Bytes per arena.
    pub arena_size: u64,
    /// The first administrator.
    pub user: String,
}

/// Format `path`: create it (sparse) if absent, resize a regular file when
/// `size` is given, or use a block device at its size. Refuses to overwrite
/// an existing gefs image, another file system, a partition table, an
/// encrypted or RAID volume or swap ([`crate::probe`]) unless `force`.
pub fn format_image(
    path: &Path,
    size: Option<u64>,
    user: &str,
    force: bool,
) -> Result<(Made, Store)> {
    crate::users::check_first_admin(user)?;
    let exists = path.exists();
    let (dev, created) = if exists {
        let mut d = FileDev::open(path, OpenMode::ReadWrite).map_err(|e| open_err(path, e))?;
        if looks_like_gefs(&d) && !force {
            return Err(Error::Refused(format!(
                "{} already holds a gefs image; use -f to format it anyway",
                path.display()
            )));
        }
        if let Some(what) = crate::probe::foreign(&d).filter(|_| !force) {
            return Err(Error::Refused(format!(
                "{} holds a {what} signature; formatting would destroy it; use -f to format it \
                 anyway",
                path.display()
            )));
        }
        let is_file = d.is_file().map_err(|e| open_err(path, e))?;
        match size {
            Some(s) if is_file && s != d.size() => {
                d.resize(s).map_err(|e| open_err(path, e))?;
                (d, true)
            }
            Some(s) if !is_file && s != d.size() => {
                return Err(Error::Invalid(format!(
                    "{} is a device of {} bytes; -s {s} cannot resize it",
                    path.display(),
                    d.size()
                )))
            }
            _ => (d, false),
        }
    } else {
        let s = size.unwrap_or(DEFAULT_SIZE);
        (
            FileDev::create(path, s).map_err(|e| open_err(path, e))?,
            true,
        )
    };
    let dev: Arc<dyn Device> = Arc::new(dev);
    let opts = FormatOpts {
        user: user.to_string(),
        cache_bytes: 16 << 20,
    };
    let s = match Store::format(dev.clone(), &opts) {
        Ok(s) => s,
        Err(e) => {
            if !exists {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    let g = *s.geometry();
    let made = Made {
        size: g.dev_size,
        created,
        narena: g.narena,
        arena_size: g.arena_size,
        user: user.to_string(),
    };
    Ok((made, s))
}

/// Grow the image at `path` in place ([`Store::grow`]): a regular file is
/// first extended to `size` when one is given (never shrunk); a block device
/// is used at its own size. Holds the image's lock throughout, so an image in
/// use (served) is refused, and a size that would add nothing is refused
/// before the file is touched.
pub fn grow_image(path: &Path, size: Option<u64>) -> Result<crate::store::Grown> {
    let mut d = FileDev::open(path, OpenMode::ReadWrite).map_err(|e| open_err(path, e))?;
    if let Some(s) = size {
        let is_file = d.is_file().map_err(|e| open_err(path, e))?;
        if !is_file && s != d.size() {
            return Err(Error::Invalid(format!(
                "{} is a device of {} bytes; -s cannot resize it (grow the device, then \
                 run --grow without -s)",
                path.display(),
                d.size()
            )));
        }
        if s < d.size() {
            return Err(Error::Invalid(format!(
                "{} has {} bytes; --grow cannot shrink it to {s}",
                path.display(),
                d.size()
            )));
        }
        if let Ok(sb) = crate::store::read_superblock(&d, crate::ids::BlockAddr(0)) {
            crate::store::grow_geometry(&sb.geometry, s)?;
        }
        d.extend(s).map_err(|e| open_err(path, e))?;
    }
    Store::grow(Arc::new(d))
}
