//! Version negotiation (version(5)).
//!
//! The server speaks exactly `"9P2000"` and `"9P2000.L"` (the dialect, [`super::Dialect`], is
//! the connection's from then on). Any other string, including `"9P2000.u"` and the reference's
//! prefix match `"9P2000.*"` (gefs-reference §13.2 #28), gets an `Rversion` with version
//! `"unknown"`, not an `Rerror`.
//!
//! The msize is `min(client, our_max)`, with `our_max` itself clamped to
//! [`MSIZE_MIN`]`..=`[`MSIZE_LIMIT`]. A client offering less than [`MSIZE_MIN`] is refused the
//! same way as an unknown version: there would be no room for useful I/O, and the reference's
//! acceptance of msize 0 is a known hazard (reliability plan S8).

use std::fmt;

use super::dotl::VERSION_9P2000_L;
use super::msg::Rmsg;
use super::{MSIZE_LIMIT, MSIZE_MIN, VERSION_9P2000, VERSION_UNKNOWN};

/// Why a `Tversion` was refused. Either way the reply is [`VersionError::reply`], an `Rversion`
/// with version `"unknown"`, and the connection stays unversioned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionError {
    /// The version string is neither `"9P2000"` nor `"9P2000.L"`.
    UnknownVersion,
    /// The client's msize is below [`MSIZE_MIN`].
    MsizeTooSmall {
        /// The client's msize.
        msize: u32,
    },
}

impl VersionError {
    /// The reply to send: `Rversion { msize: client's msize brought into [MSIZE_MIN, ours],
    /// version: "unknown" }`. It never names an msize below the floor (the reference answers
    /// a `Tversion` of msize 0 with msize 0): a refused client learns the least it must offer.
    pub fn reply(&self, client_msize: u32, our_max: u32) -> Rmsg {
        Rmsg::Version {
            msize: client_msize.clamp(MSIZE_MIN, clamp_max(our_max)),
            version: VERSION_UNKNOWN.to_owned(),
        }
    }
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::UnknownVersion => f.write_str("unknown 9P version"),
            VersionError::MsizeTooSmall { msize } => {
                write!(f, "msize {msize} is below the minimum {MSIZE_MIN}")
            }
        }
    }
}

impl std::error::Error for VersionError {}

/// Negotiates a `Tversion { msize: client_msize, version: client_version }` against the server's
/// maximum `our_max`. On success returns the msize to use and the version to answer
/// (`"9P2000"` or `"9P2000.L"`, see [`super::Dialect::of`]); the server then aborts outstanding
/// I/O and clunks every fid (version(5)).
pub fn negotiate(
    client_msize: u32,
    client_version: &str,
    our_max: u32,
) -> Result<(u32, &'static str), VersionError> {
    let version = match client_version {
        VERSION_9P2000 => VERSION_9P2000,
        VERSION_9P2000_L => VERSION_9P2000_L,
        _ => return Err(VersionError::UnknownVersion),
    };
    if client_msize < MSIZE_MIN {
        return Err(VersionError::MsizeTooSmall {
            msize: client_msize,
        });
    }
    Ok((client_msize.min(clamp_max(our_max)), version))
}

fn clamp_max(our_max: u32) -> u32 {
    our_max.clamp(MSIZE_MIN, MSIZE_LIMIT)
}
