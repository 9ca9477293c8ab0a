//! The 9P2000 wire codec.
//!
//! # Wire format
//! Every message is one frame, `size[4] type[1] tag[2] body`, where `size` counts the whole
//! frame including itself. Integers are little-endian. A string `s` is `len[2]` followed by `len`
//! bytes of UTF-8 with no terminating NUL. Data (`Twrite`, `Rread`) is `count[4]` followed by
//! `count` bytes. A stat in `Tstat`/`Twstat` is preceded by its own byte count `nstat[2]`.
//! See intro(5) and the per-message pages of the Plan 9 manual, section 5.
//!
//! # Invariants of the decoder
//! These hold for [`decode_t`], [`decode_r`], [`Stat::decode`] and [`read_frame`], for every
//! input, including hostile ones:
//! - **No panic.** Every read goes through a bounds-checked cursor; indexing, slicing and
//!   truncating casts are denied by lint in this module.
//! - **No allocation beyond the frame.** A length read off the wire is checked against the
//!   bytes actually present before anything is allocated; the frame reader checks the size
//!   field against msize before allocating the frame buffer. A decoded message therefore owns at
//!   most about as many bytes as its frame had.
//! - **Exact framing.** The size field must equal the frame length, must be at least 7 and at
//!   most the connection's msize (and never above [`MSIZE_LIMIT`], which keeps sizes of 2³¹ and
//!   up, the "negative size" class, out). A body must be consumed exactly: trailing bytes are an
//!   error, so is a stat whose size fields disagree with its contents.
//! - **Canonical.** Every frame the decoder accepts is the exact encoding of the message it
//!   returns: `encode(decode(bytes)) == bytes`. The fuzz target and the corpus test check this.
//! - **Bounded collections and data.** A walk has at most [`MAXWELEM`] (16) names or qids;
//!   larger counts are a decode error (walk(5)), so a `Tmsg::Walk` in hand is always legal in
//!   size. `Twrite` and `Rread` data are at most `msize − IOHDRSZ` bytes ([`iounit`]).
//!
//! # Decisions
//! - **Strings are strict UTF-8.** Invalid UTF-8 is a decode error ([`DecodeErrorKind::InvalidUtf8`]),
//!   as intro(5) requires UTF-8 and every client we serve (Plan 9, plan9port, v9fs) sends it.
//!   Lossy decoding would break the canonical round trip; raw bytes would push the check onto
//!   every user of the types. Names containing NUL, `/`, `.` or `..` decode fine: whether a name
//!   is legal is decided by the file-system layer (gefs `okname`), which has to check them anyway.
//! - **Walk limit in the codec.** A `Twalk` with 17 or more names (or `Rwalk` with 17 or more
//!   qids) is a decode error carrying the tag, so the server answers `Rerror` and never sees an
//!   oversized walk. The encoder refuses to produce one.
//! - **Dialects.** 9P2000 and 9P2000.L ([`dotl`]): the decoder is told which one a connection
//!   speaks ([`decode_t_in`]); [`decode_t`] is 9P2000's. A 9P2000.L message is one more
//!   variant of [`Tmsg`] and [`Rmsg`] (`L`), the messages both dialects share are the same
//!   variants in both.
//! - **Version.** See [`negotiate`]: exactly `"9P2000"` or `"9P2000.L"`, msize floor [`MSIZE_MIN`], clamped to
//!   the server's maximum (default [`MSIZE_DEFAULT`], hard ceiling [`MSIZE_LIMIT`]).
//! - **What the codec does not check.** Tag and fid semantics (`NOTAG` only on `Tversion`,
//!   duplicate tags, fid state), open-mode bits, permission bits and names are the server's
//!   business; the codec only guarantees the message is well formed.
#![deny(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod codec;
pub mod dotl;
mod dotl_codec;
mod error;
mod frame;
mod msg;
mod stat;
mod version;
mod wire;

#[cfg(test)]
mod tests;

pub use codec::{
    decode_r, decode_r_in, decode_t, decode_t_in, encode_r, encode_rread_head, encode_t,
};
pub use dotl::{Dialect, RmsgL, TmsgL, VERSION_9P2000_L};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use frame::{read_frame, ReadFrameError};
pub use msg::{Frame, Qid, RFrame, Rmsg, TFrame, Tmsg};
pub use stat::Stat;
pub use version::{negotiate, VersionError};

/// Plan 9's protocol version.
pub const VERSION_9P2000: &str = "9P2000";
/// The version string of an `Rversion` that refuses the client's version (version(5)).
pub const VERSION_UNKNOWN: &str = "unknown";

/// Bytes of `size[4] type[1] tag[2]` at the start of every frame.
pub const HEADER_LEN: usize = 7;
/// Room reserved for the header of `Twrite`/`Rread` (fcall.h `IOHDRSZ`); a connection's I/O unit
/// is `msize − IOHDRSZ`.
pub const IOHDRSZ: u32 = 24;
/// Most names in a `Twalk`, and qids in an `Rwalk` (fcall.h `MAXWELEM`).
pub const MAXWELEM: usize = 16;
/// Bytes of an encoded [`Qid`]: `type[1] version[4] path[8]`.
pub const QID_LEN: usize = 13;
/// Bytes of a [`Stat`] with four empty strings, including its leading `size[2]` (fcall.h
/// `STATFIXLEN`).
pub const STAT_FIXED_LEN: usize = 49;

/// The smallest msize [`negotiate`] accepts. 8192 is the default msize of Linux v9fs before 5.15
/// and leaves an I/O unit of 8168 bytes, while the largest non-data reply (an `Rwalk` with 16
/// qids, 217 bytes, or an `Rstat` with 245-byte names) fits many times over. Plan 9 clients send
/// 8192 + [`IOHDRSZ`] or more.
pub const MSIZE_MIN: u32 = 8192;
/// The server's default maximum msize: an I/O unit of exactly 1 MiB.
pub const MSIZE_DEFAULT: u32 = (1 << 20) + IOHDRSZ;
/// Hard ceiling on any msize, whatever the configuration or the caller passes to the decoder:
/// 16 MiB. It bounds per-connection buffers and keeps every accepted size below 2³¹.
pub const MSIZE_LIMIT: u32 = 1 << 24;

/// The tag of a `Tversion`, and of nothing else (version(5)).
pub const NOTAG: u16 = u16::MAX;
/// "No fid": the `afid` of a `Tattach` without authentication (attach(5)).
pub const NOFID: u32 = u32::MAX;

/// The I/O unit of a connection: the most data a `Twrite` may carry or an `Rread` may return,
/// `msize − IOHDRSZ`, with `msize` first capped at [`MSIZE_LIMIT`]. Servers advertise it as the
/// `iounit` of `Ropen`/`Rcreate` and clamp `Tread` counts to it.
pub fn iounit(msize: u32) -> u32 {
    msize.min(MSIZE_LIMIT).saturating_sub(IOHDRSZ)
}

/// Message type numbers (fcall.h). T-messages are even, their R-replies odd; 106 (`Terror`)
/// is illegal.
pub mod msgtype {
    /// Tversion.
    pub const TVERSION: u8 = 100;
    /// Rversion.
    pub const RVERSION: u8 = 101;
    /// Tauth.
    pub const TAUTH: u8 = 102;
    /// Rauth.
    pub const RAUTH: u8 = 103;
    /// Tattach.
    pub const TATTACH: u8 = 104;
    /// Rattach.
    pub const RATTACH: u8 = 105;
    /// Terror: never valid on the wire.
    pub const TERROR: u8 = 106;
    /// Rerror.
    pub const RERROR: u8 = 107;
    /// Tflush.
    pub const TFLUSH: u8 = 108;
    /// Rflush.
    pub const RFLUSH: u8 = 109;
    /// Twalk.
    pub const TWALK: u8 = 110;
    /// Rwalk.
    pub const RWALK: u8 = 111;
    /// Topen.
    pub const TOPEN: u8 = 112;
    /// Ropen.
    pub const ROPEN: u8 = 113;
    /// Tcreate.
    pub const TCREATE: u8 = 114;
    /// Rcreate.
    pub const RCREATE: u8 = 115;
    /// Tread.
    pub const TREAD: u8 = 116;
    /// Rread.
    pub const RREAD: u8 = 117;
    /// Twrite.
    pub const TWRITE: u8 = 118;
    /// Rwrite.
    pub const RWRITE: u8 = 119;
    /// Tclunk.
    pub const TCLUNK: u8 = 120;
    /// Rclunk.
    pub const RCLUNK: u8 = 121;
    /// Tremove.
    pub const TREMOVE: u8 = 122;
    /// Rremove.
    pub const RREMOVE: u8 = 123;
    /// Tstat.
    pub const TSTAT: u8 = 124;
    /// Rstat.
    pub const RSTAT: u8 = 125;
    /// Twstat.
    pub const TWSTAT: u8 = 126;
    /// Rwstat.
    pub const RWSTAT: u8 = 127;
}

/// Open modes of `Topen`/`Tcreate` (open(5)). The low two bits select the access; the others
/// are flags.
pub mod omode {
    /// Read access.
    pub const OREAD: u8 = 0;
    /// Write access.
    pub const OWRITE: u8 = 1;
    /// Read and write access.
    pub const ORDWR: u8 = 2;
    /// Execute access (read, and check execute permission).
    pub const OEXEC: u8 = 3;
    /// Mask of the access bits.
    pub const OACCMODE: u8 = 3;
    /// Truncate the file on open.
    pub const OTRUNC: u8 = 0x10;
    /// Remove the file when the fid is clunked.
    pub const ORCLOSE: u8 = 0x40;
}

/// Qid type bits: the high byte of a file's mode, as carried in [`Qid::ty`] (intro(5)).
pub mod qidtype {
    /// A directory.
    pub const QTDIR: u8 = 0x80;
    /// An append-only file.
    pub const QTAPPEND: u8 = 0x40;
    /// An exclusive-use file.
    pub const QTEXCL: u8 = 0x20;
    /// A mounted channel.
    pub const QTMOUNT: u8 = 0x10;
    /// An authentication file (the afid of `Tauth`).
    pub const QTAUTH: u8 = 0x08;
    /// A temporary file (not backed up).
    pub const QTTMP: u8 = 0x04;
    /// A plain file.
    pub const QTFILE: u8 = 0x00;
}

/// Mode bits of [`Stat::mode`] and of a `Tcreate` `perm` (stat(5)).
pub mod dmode {
    /// A directory.
    pub const DMDIR: u32 = 0x8000_0000;
    /// An append-only file.
    pub const DMAPPEND: u32 = 0x4000_0000;
    /// An exclusive-use file.
    pub const DMEXCL: u32 = 0x2000_0000;
    /// A mounted channel.
    pub const DMMOUNT: u32 = 0x1000_0000;
    /// An authentication file.
    pub const DMAUTH: u32 = 0x0800_0000;
    /// A temporary file.
    pub const DMTMP: u32 = 0x0400_0000;
    /// Read permission (shifted by 6, 3 or 0 for owner, group, other).
    pub const DMREAD: u32 = 0o4;
    /// Write permission.
    pub const DMWRITE: u32 = 0o2;
    /// Execute (search, for a directory) permission.
    pub const DMEXEC: u32 = 0o1;
}
