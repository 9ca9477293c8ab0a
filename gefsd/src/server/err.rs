//! The one place where a failed request becomes an `Rerror` string (9P2000) or an errno
//! (9P2000.L).
//!
//! Handlers return [`Error`]; [`rerror`] turns it into the reply. File-system errors carry the
//! strings and errnos of [`gefs_core::fs::Error::message`] and [`gefs_core::fs::Error::errno`];
//! the server adds its own [`Refusal`]s for fid, tag, offset and protocol misuse. Every string
//! that names a condition Linux's 9P error table knows is that table's string, so a Linux
//! 9P2000 client derives the right errno (the `errno_map` test checks each). Nothing here is
//! matched by its text, and no error ever ends the server: at worst the connection that sent a
//! malformed frame is closed.

use std::fmt;

use crate::proto::{DecodeError, DecodeErrorKind, Dialect, Rmsg, RmsgL};
use gefs_core::fs;

/// Why a request failed, as the client will be told.
#[derive(Debug)]
pub enum Error {
    /// From the file-system layer (or the store beneath it).
    Fs(fs::Error),
    /// The server's own refusals, with their fixed strings.
    Server(Refusal),
    /// A refusal that carries a detail (never another user's path or data), and its errno.
    Detail(String, u32),
}

/// One of the server's own refusals: the `Rerror` string and the Linux errno of an `Rlerror`.
/// Where Linux's 9P error table (`net/9p/error.c`) has a string for the condition, the text is
/// that string, so a Linux client derives `errno` from it over 9P2000 too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The `Rerror` string.
    pub text: &'static str,
    /// The Linux errno.
    pub errno: u32,
}

/// The server's own refusals.
pub mod msg {
    use super::Refusal;
    use gefs_core::fs::errno::*;

    const fn r(text: &'static str, errno: u32) -> Refusal {
        Refusal { text, errno }
    }

    /// The fid is not in the connection's table.
    pub const UNKNOWN_FID: Refusal = r("fid unknown or out of range", EBADF);
    /// The new fid of an attach, auth or walk is already in use.
    pub const FID_IN_USE: Refusal = r("fid already in use", EBADF);
    /// A walk from, or an open of, a fid that is already open.
    pub const FID_OPEN: Refusal = r("bad use of fid", EBADF);
    /// An operation that needs an open fid on one that is not.
    pub const FID_NOT_OPEN: Refusal = r("bad use of fid", EBADF);
    /// The per-connection fid limit.
    pub const TOO_MANY_FIDS: Refusal = r("Too many open files", EMFILE);
    /// DMEXCL: another open fid holds the file.
    pub const LOCKED: Refusal = r("exclusive use file already open", EAGAIN);
    /// read(5): a directory read must start at 0 or where the last one ended.
    pub const BAD_DIR_OFFSET: Refusal = r("bad offset in directory read", ESPIPE);
    /// A directory entry larger than the read's count.
    pub const DIR_ENTRY_TOO_BIG: Refusal = r("Invalid argument", EINVAL);
    /// Unknown user, or the uname differs from the authenticated identity.
    pub const ATTACH_USER: Refusal = r("Permission denied", EACCES);
    /// Tauth: authentication is by peer credentials, not by an auth file. (Linux's kernel
    /// client sends no Tauth; the text says what to do instead. 9P2000.L clients built on
    /// diod's libnpclient take ENOENT for "no authentication required" and go on to attach.)
    pub const AUTH_BY_PEER: Refusal = r(
        "authentication is by peer credentials: attach with afid NOFID as your login name",
        ENOENT,
    );
    /// Tauth with -A.
    pub const AUTH_NOT_NEEDED: Refusal = r("authentication not required", ENOENT);
    /// An afid other than NOFID in Tattach.
    pub const NO_AUTH_FILE: Refusal = r(
        "attach -- there are no auth files: use afid NOFID",
        ECONNREFUSED,
    );
    /// `none` may not attach dump, nor attach before an authenticated attach.
    pub const NONE_REFUSED: Refusal = r("Permission denied", EACCES);
    /// An unknown attach specifier.
    pub const BAD_SPEC: Refusal = r("No such file or directory", ENOENT);
    /// A message before Tversion.
    pub const NO_VERSION: Refusal = r("protocol botch", EPROTO);
    /// Permission denied.
    pub const PERM: Refusal = r("permission denied", EACCES);
    /// The dump directory and its entries cannot change.
    pub const READ_ONLY: Refusal = r("read only file system", EROFS);
    /// A wstat changing type, dev or the qid.
    pub const WSTAT_QID: Refusal = r("wstat prohibited", EPERM);
    /// A wstat changing muid to someone other than the requester.
    pub const WSTAT_MUID: Refusal = r("wstat prohibited", EPERM);
    /// A user or group name over 64 bytes (it cannot name a user).
    pub const NAME_TOO_LONG: Refusal = r("unknown user", EINVAL);
    /// A commit could not have the image: another commit or a check held it.
    pub const BUSY: Refusal = r("Device or resource busy", EBUSY);
    /// The server is shutting down.
    pub const SHUTTING_DOWN: Refusal =
        r("Cannot send after transport endpoint shutdown", ESHUTDOWN);
    /// A reply that cannot be encoded within msize.
    pub const REPLY_TOO_BIG: Refusal = r("Message too long", EMSGSIZE);
    /// A message of the other dialect than the connection's.
    pub const NOT_IN_DIALECT: Refusal = r("Operation not supported", EOPNOTSUPP);
    /// 9P2000.L extended attributes: none are stored.
    pub const NO_XATTR: Refusal = r("Operation not supported", EOPNOTSUPP);
    /// A handler panicked: a bug, reported for that request only.
    pub const INTERNAL: Refusal = r("Remote I/O error", EREMOTEIO);
}

impl From<fs::Error> for Error {
    fn from(e: fs::Error) -> Error {
        Error::Fs(e)
    }
}

impl From<gefs_core::Error> for Error {
    fn from(e: gefs_core::Error) -> Error {
        Error::Fs(fs::Error::from(e))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ename())
    }
}

impl Error {
    /// The string an `Rerror` carries. Engine errors say only their class (corruption, i/o,
    /// internal), never the block address or file name behind them.
    pub fn ename(&self) -> String {
        match self {
            Error::Fs(e) => e.message().to_string(),
            Error::Server(r) => r.text.to_string(),
            Error::Detail(s, _) => s.clone(),
        }
    }

    /// The Linux errno an `Rlerror` carries.
    pub fn errno(&self) -> u32 {
        match self {
            Error::Fs(e) => e.errno(),
            Error::Server(r) => r.errno,
            Error::Detail(_, n) => *n,
        }
    }
}

impl Error {
    /// The storage error behind this one, if the stored data is damaged or the device failed
    /// (as opposed to a refusal or a usage error).
    pub fn damage(&self) -> Option<&gefs_core::Error> {
        match self {
            Error::Fs(fs::Error::Store(e))
                if e.is_corruption() || matches!(e, gefs_core::Error::Io { .. }) =>
            {
                Some(e)
            }
            _ => None,
        }
    }
}

/// Most damage reports logged per second; the rest are counted and summed up in the next
/// line logged, so a client re-reading a damaged file cannot flood the log.
const DAMAGE_LOGS_PER_SEC: u64 = 10;

/// Log a request that met damaged data or a failing device: the client sees only "block
/// contents corrupted" or "i/o error"; the operator sees the block and the path here.
/// `what` names the request and the file (`Tread main:/a/b`).
pub fn log_damage(peer: &str, what: &str, e: &gefs_core::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static WINDOW: Mutex<(u64, u64)> = Mutex::new((0, 0));
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let allowed = match WINDOW.lock() {
        Ok(mut w) => {
            if w.0 != now {
                *w = (now, 0);
            }
            w.1 += 1;
            w.1 <= DAMAGE_LOGS_PER_SEC
        }
        Err(_) => true,
    };
    if !allowed {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let skipped = SUPPRESSED.swap(0, Ordering::Relaxed);
    let more = if skipped > 0 {
        format!(" ({skipped} similar reports suppressed)")
    } else {
        String::new()
    };
    let addr = match e {
        gefs_core::Error::Checksum { addr, .. } | gefs_core::Error::Corrupt { addr, .. } => {
            Some(addr.to_string())
        }
        _ => None,
    };
    tracing::error!(
        peer,
        request = what,
        addr = addr.as_deref(),
        suppressed = skipped,
        "{peer}: {what}: {e}{more}"
    );
}

/// The 9P2000 reply for a failed request.
pub fn rerror(e: &Error) -> Rmsg {
    Rmsg::Error { ename: e.ename() }
}

/// The reply for a failed request in `dialect`: `Rerror` with the string, or `Rlerror` with
/// the errno.
pub fn reply(dialect: Dialect, e: &Error) -> Rmsg {
    match dialect {
        Dialect::P9 => rerror(e),
        Dialect::L => Rmsg::L(RmsgL::Lerror { ecode: e.errno() }),
    }
}

/// The reply to a sync request (a null wstat, a Tfsync) whose commit failed: 9P2000 gets the
/// string a request failing with the same error gets; 9P2000.L gets EIO whatever the cause,
/// as fsync(2) reports written data that may not be durable.
pub fn commit_failed(dialect: Dialect, e: &crate::error::Error) -> Rmsg {
    match dialect {
        Dialect::P9 => Rmsg::Error {
            ename: match e {
                crate::error::Error::Fs(e) => e.message(),
                crate::error::Error::Busy(_) => msg::BUSY.text,
                crate::error::Error::Stopped => msg::SHUTTING_DOWN.text,
            }
            .to_string(),
        },
        Dialect::L => Rmsg::L(RmsgL::Lerror {
            ecode: fs::errno::EIO,
        }),
    }
}

/// The reply to a request that did not decode (its tag intact): 9P2000 says what was wrong;
/// 9P2000.L says EOPNOTSUPP for a message it does not have (a client may then fall back to
/// another) and EPROTO for a malformed one.
pub fn decode_reply(dialect: Dialect, e: &DecodeError) -> Rmsg {
    match dialect {
        Dialect::P9 => Rmsg::Error {
            ename: e.to_string(),
        },
        Dialect::L => Rmsg::L(RmsgL::Lerror {
            ecode: match e.kind() {
                DecodeErrorKind::UnknownType { .. } => fs::errno::EOPNOTSUPP,
                _ => fs::errno::EPROTO,
            },
        }),
    }
}

/// Shorthand for handlers: a server refusal.
pub fn refuse<T>(r: Refusal) -> Result<T> {
    Err(Error::Server(r))
}

/// The result type of request handlers.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
#[path = "err_tests.rs"]
mod tests;
