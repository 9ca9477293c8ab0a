//! The one place where a failed request becomes an `Rerror` string.
//!
//! Handlers return [`Error`]; [`rerror`] turns it into the reply. File-system errors carry the
//! reference's Plan 9 strings ([`gefs_core::fs::Error::message`]); the server adds its own for
//! fid, tag, offset and protocol misuse. Nothing here is matched by its text, and no error ever
//! ends the server: at worst the connection that sent a malformed frame is closed.

use std::fmt;

use crate::proto::Rmsg;
use gefs_core::fs;

/// Why a request failed, as the client will be told.
#[derive(Debug)]
pub enum Error {
    /// From the file-system layer (or the store beneath it).
    Fs(fs::Error),
    /// The server's own refusals, with their fixed strings.
    Server(&'static str),
    /// A refusal that carries a detail (never another user's path or data).
    Detail(String),
}

/// The server's own error strings.
pub mod msg {
    /// The fid is not in the connection's table.
    pub const UNKNOWN_FID: &str = "unknown fid";
    /// The new fid of an attach, auth or walk is already in use.
    pub const FID_IN_USE: &str = "fid in use";
    /// A walk from, or an open of, a fid that is already open.
    pub const FID_OPEN: &str = "fid already open";
    /// An operation that needs an open fid on one that is not.
    pub const FID_NOT_OPEN: &str = "fid not open";
    /// The per-connection fid limit.
    pub const TOO_MANY_FIDS: &str = "too many fids";
    /// DMEXCL: another open fid holds the file.
    pub const LOCKED: &str = "open/create -- file is locked";
    /// read(5): a directory read must start at 0 or where the last one ended.
    pub const BAD_DIR_OFFSET: &str = "bad offset in directory read";
    /// A directory entry larger than the read's count.
    pub const DIR_ENTRY_TOO_BIG: &str = "directory entry does not fit in the read count";
    /// Unknown user, or the uname differs from the authenticated identity.
    pub const ATTACH_USER: &str = "attach -- unknown user or failed authentication";
    /// Tauth: authentication is by peer credentials, not by an auth file.
    pub const AUTH_BY_PEER: &str =
        "authentication is by peer credentials: attach with afid NOFID as your login name";
    /// Tauth with -A.
    pub const AUTH_NOT_NEEDED: &str = "authentication not required";
    /// An afid other than NOFID in Tattach.
    pub const NO_AUTH_FILE: &str = "attach -- there are no auth files: use afid NOFID";
    /// `none` may not attach dump, nor attach before an authenticated attach.
    pub const NONE_REFUSED: &str = "attach -- user none refused";
    /// An unknown attach specifier.
    pub const BAD_SPEC: &str = "attach -- bad specifier";
    /// A message before Tversion.
    pub const NO_VERSION: &str = "first message must be Tversion";
    /// Permission denied.
    pub const PERM: &str = "permission denied";
    /// The dump directory and its entries cannot change.
    pub const READ_ONLY: &str = "file system read only";
    /// A wstat changing type, dev or the qid.
    pub const WSTAT_QID: &str = "wstat -- attempt to change qid";
    /// A wstat changing muid.
    pub const WSTAT_MUID: &str = "wstat -- attempt to change muid";
    /// A user or group name over 64 bytes.
    pub const NAME_TOO_LONG: &str = "name too long";
    /// The server is shutting down.
    pub const SHUTTING_DOWN: &str = "server is shutting down";
    /// A reply that cannot be encoded within msize.
    pub const REPLY_TOO_BIG: &str = "reply too large for msize";
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
            Error::Fs(fs::Error::Invalid(what)) => format!("invalid argument: {what}"),
            Error::Fs(e) => e.message().to_string(),
            Error::Server(s) => (*s).to_string(),
            Error::Detail(s) => s.clone(),
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
    eprintln!("gefsd: {peer}: {what}: {e}{more}");
}

/// The reply for a failed request.
pub fn rerror(e: &Error) -> Rmsg {
    Rmsg::Error { ename: e.ename() }
}

/// Shorthand for handlers: a server refusal.
pub fn refuse<T>(s: &'static str) -> Result<T> {
    Err(Error::Server(s))
}

/// The result type of request handlers.
pub type Result<T> = std::result::Result<T, Error>;
