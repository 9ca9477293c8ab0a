//! gefsd's own error types: why a commit, a stop or other work of the daemon outside a request
//! failed ([`Error`]), and why gefsd does not listen on an address ([`AddrError`]).
//!
//! A request's error is [`crate::server::err::Error`]; `server/err.rs` is the one place where
//! errors become 9P strings and errnos, a failed commit that answers a request (a null wstat, a
//! Tfsync) included (`err::commit_failed`). The text of an [`Error`] is what the console and the log
//! say; for a file-system error it is the same client-safe string a 9P2000 client gets (never a
//! block address or a path), and the engine's detail stays reachable through
//! [`std::error::Error::source`] for the log.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use gefs_core::fs;

/// Why work of the daemon failed. Cheap to clone: one commit's outcome answers every request
/// that waited for it.
#[derive(Debug, Clone)]
pub enum Error {
    /// The file system, or the store beneath it, failed or refused (a commit on a device that
    /// failed, a full device, damage).
    Fs(Arc<fs::Error>),
    /// The commit gate was held longer than the wait: another commit, or a console `check`.
    Busy(Duration),
    /// The worker that would have done it has stopped: the server is shutting down.
    Stopped,
}

/// Why gefsd does not listen on an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// The address does not parse or resolve.
    Bad {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        why: String,
    },
    /// A TCP address that is not loopback: gefsd authenticates only local peers.
    NotLoopback {
        /// The address as given.
        addr: String,
        /// Whether authentication was turned off (`-A`).
        noauth: bool,
    },
}

impl Error {
    /// The engine's error behind this one, if any (for the log: it names the block or the
    /// device offset).
    pub fn engine(&self) -> Option<&gefs_core::Error> {
        match self {
            Error::Fs(e) => match &**e {
                fs::Error::Store(e) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }

    /// The text with the engine's detail appended, for the operator (the log, standard error):
    /// `i/o error: i/o error: flush at offset 0x0: …`.
    pub fn detailed(&self) -> String {
        match self.engine() {
            Some(d) => format!("{self}: {d}"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Fs(e) => f.write_str(e.message()),
            Error::Busy(wait) => write!(
                f,
                "another commit or a check held the image for {} s",
                wait.as_secs()
            ),
            Error::Stopped => f.write_str("server is shutting down"),
        }
    }
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::Bad { addr, why } => write!(f, "address {addr:?}: {why}"),
            AddrError::NotLoopback { addr, noauth: true } => write!(
                f,
                "refusing to listen on {addr} with -A: without authentication anyone who can \
                 reach the port could attach as any user; listen on loopback \
                 (tcp!127.0.0.1!PORT) or a unix! socket"
            ),
            AddrError::NotLoopback {
                addr,
                noauth: false,
            } => write!(
                f,
                "refusing to listen on {addr}: it is not a loopback address, and gefsd \
                 authenticates TCP clients only by the peer credentials of local connections \
                 (9P2000 itself has no encryption); listen on loopback and tunnel remote clients \
                 (ssh -L), or use a unix! socket"
            ),
        }
    }
}

impl std::error::Error for AddrError {}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Fs(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<fs::Error> for Error {
    fn from(e: fs::Error) -> Error {
        Error::Fs(Arc::new(e))
    }
}

impl From<gefs_core::Error> for Error {
    fn from(e: gefs_core::Error) -> Error {
        Error::from(fs::Error::from(e))
    }
}

/// The result type of gefsd's own work.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_client_safe_and_the_detail_stays_reachable() {
        let e = Error::from(gefs_core::Error::Failed);
        assert_eq!(e.to_string(), "Input/output error");
        assert!(matches!(e.engine(), Some(gefs_core::Error::Failed)));
        let io = gefs_core::Error::io(
            gefs_core::error::IoOp::Flush,
            0,
            std::io::Error::other("medium error"),
        );
        let e = Error::from(io);
        assert_eq!(e.to_string(), "i/o error");
        assert!(
            e.detailed()
                .starts_with("i/o error: i/o error: flush at offset 0x0"),
            "{}",
            e.detailed()
        );
        let detail = e.engine().map(ToString::to_string).unwrap_or_default();
        assert!(
            detail.contains("flush") && detail.contains("medium error"),
            "{detail}"
        );
        assert!(Error::from(fs::Error::ReadOnly).engine().is_none());
        assert_eq!(
            Error::Busy(Duration::from_secs(5)).to_string(),
            "another commit or a check held the image for 5 s"
        );
        assert_eq!(Error::Stopped.to_string(), "server is shutting down");
    }

    #[test]
    fn addresses_say_what_is_wrong() {
        use crate::server::listen::{check_allowed, parse_addr};
        let e = parse_addr("il!host!564").map(drop).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address \"il!host!564\": only tcp! and unix! dial strings are supported"
        );
        let wild = parse_addr("tcp!*!5640").unwrap_or_else(|e| panic!("{e}"));
        for noauth in [false, true] {
            let e = check_allowed(&wild, noauth).unwrap_err();
            assert!(matches!(e, AddrError::NotLoopback { .. }), "{e:?}");
            assert!(
                e.to_string()
                    .starts_with("refusing to listen on tcp!*!5640"),
                "{e}"
            );
        }
    }
}
