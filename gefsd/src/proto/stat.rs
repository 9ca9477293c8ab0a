//! The 9P2000 stat structure (stat(5)):
//!
//! ```text
//! size[2] type[2] dev[4] qid[13] mode[4] atime[4] mtime[4] length[8]
//! name[s] uid[s] gid[s] muid[s]
//! ```
//!
//! `size` counts the bytes that follow it. In `Rstat` and `Twstat` the structure is preceded by
//! a second count `nstat[2]` which must equal `size + 2`; in a directory's `Rread` data, entries
//! follow each other with no extra count. The decoder insists both counts agree with the
//! contents exactly.

use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::msg::Qid;
use super::wire::{put_qid, put_str, put_u16, put_u32, put_u64, str_len, Reader};
use super::STAT_FIXED_LEN;

/// A file's metadata as 9P2000 carries it.
///
/// In a `Twstat`, a field whose value is "don't touch" (all bits set for numbers, empty for
/// strings) asks the server to leave it unchanged; start from [`Stat::dont_touch`] and set only
/// the fields to change, and read requests with the `wstat_*` accessors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// For kernel use; 0 from file servers.
    pub ty: u16,
    /// For kernel use; 0 from file servers.
    pub dev: u32,
    /// The file's qid.
    pub qid: Qid,
    /// Permissions and [`super::dmode`] bits.
    pub mode: u32,
    /// Last access time, seconds since the epoch.
    pub atime: u32,
    /// Last modification time, seconds since the epoch.
    pub mtime: u32,
    /// Length in bytes (0 for directories).
    pub length: u64,
    /// Last element of the path.
    pub name: String,
    /// Owner.
    pub uid: String,
    /// Group.
    pub gid: String,
    /// Last modifier.
    pub muid: String,
}

impl Stat {
    /// A wstat request that changes nothing: every number all ones, every string empty
    /// (stat(5)). A `Twstat` of exactly this asks the server to commit the file to stable
    /// storage.
    pub fn dont_touch() -> Stat {
        Stat {
            ty: u16::MAX,
            dev: u32::MAX,
            qid: Qid {
                ty: u8::MAX,
                version: u32::MAX,
                path: u64::MAX,
            },
            mode: u32::MAX,
            atime: u32::MAX,
            mtime: u32::MAX,
            length: u64::MAX,
            name: String::new(),
            uid: String::new(),
            gid: String::new(),
            muid: String::new(),
        }
    }

    /// True if this wstat request changes nothing at all.
    pub fn is_dont_touch(&self) -> bool {
        *self == Stat::dont_touch()
    }

    /// True if a wstat request tries to change a field clients may never change: `type`,
    /// `dev` or any part of the qid (the server answers "wstat -- attempt to change qid").
    pub fn wstat_changes_fixed(&self) -> bool {
        self.ty != u16::MAX
            || self.dev != u32::MAX
            || self.qid.ty != u8::MAX
            || self.qid.version != u32::MAX
            || self.qid.path != u64::MAX
    }

    /// The requested mode, or `None` to leave it.
    pub fn wstat_mode(&self) -> Option<u32> {
        (self.mode != u32::MAX).then_some(self.mode)
    }

    /// The requested access time, or `None` to leave it.
    pub fn wstat_atime(&self) -> Option<u32> {
        (self.atime != u32::MAX).then_some(self.atime)
    }

    /// The requested modification time, or `None` to leave it.
    pub fn wstat_mtime(&self) -> Option<u32> {
        (self.mtime != u32::MAX).then_some(self.mtime)
    }

    /// The requested length, or `None` to leave it.
    pub fn wstat_length(&self) -> Option<u64> {
        (self.length != u64::MAX).then_some(self.length)
    }

    /// The requested new name, or `None` to leave it.
    pub fn wstat_name(&self) -> Option<&str> {
        non_empty(&self.name)
    }

    /// The requested owner, or `None` to leave it.
    pub fn wstat_uid(&self) -> Option<&str> {
        non_empty(&self.uid)
    }

    /// The requested group, or `None` to leave it.
    pub fn wstat_gid(&self) -> Option<&str> {
        non_empty(&self.gid)
    }

    /// The requested last modifier, or `None` to leave it.
    pub fn wstat_muid(&self) -> Option<&str> {
        non_empty(&self.muid)
    }

    /// Bytes of the encoding, including the leading `size[2]`. A directory read packs entries
    /// while the next one's `encoded_len` still fits the count.
    pub fn encoded_len(&self) -> usize {
        [&self.name, &self.uid, &self.gid, &self.muid]
            .iter()
            .fold(STAT_FIXED_LEN - 8, |n, s| n.saturating_add(str_len(s)))
    }

    /// Appends the encoding (with its leading `size[2]`, without any `nstat[2]`) to `out`.
    /// On error `out` is unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_inner(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let len = self.encoded_len();
        let size = len
            .checked_sub(2)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(EncodeError::StatTooLarge { len })?;
        put_u16(out, size);
        put_u16(out, self.ty);
        put_u32(out, self.dev);
        put_qid(out, &self.qid);
        put_u32(out, self.mode);
        put_u32(out, self.atime);
        put_u32(out, self.mtime);
        put_u64(out, self.length);
        put_str(out, &self.name, "stat name")?;
        put_str(out, &self.uid, "stat uid")?;
        put_str(out, &self.gid, "stat gid")?;
        put_str(out, &self.muid, "stat muid")
    }

    /// Decodes one stat entry at the start of `buf` (as packed in a directory's `Rread` data)
    /// and returns it with the number of bytes it occupied. The entry must fill exactly the size
    /// its `size[2]` field declares.
    pub fn decode(buf: &[u8]) -> Result<(Stat, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let stat = decode_sized(&mut r).map_err(|k| DecodeError::new(None, k))?;
        Ok((stat, buf.len().saturating_sub(r.remaining())))
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Reads `nstat[2]` and then a stat that must fill exactly `nstat` bytes (the form inside
/// `Rstat` and `Twstat`): `nstat` must equal the stat's own `size` plus 2.
pub(crate) fn decode_counted(r: &mut Reader<'_>) -> Result<Stat, DecodeErrorKind> {
    let nstat = r.u16("nstat")?;
    let mut inner = Reader::new(r.bytes(usize::from(nstat), "stat")?);
    let size = inner.u16("stat size")?;
    if usize::from(size).saturating_add(2) != usize::from(nstat) {
        return Err(DecodeErrorKind::StatSizeMismatch {
            declared: usize::from(nstat),
            actual: usize::from(size).saturating_add(2),
        });
    }
    decode_fields(inner.bytes(usize::from(size), "stat")?)
}

/// Reads `size[2]` and the fields, which must fill exactly `size` bytes.
fn decode_sized(r: &mut Reader<'_>) -> Result<Stat, DecodeErrorKind> {
    let size = r.u16("stat size")?;
    decode_fields(r.bytes(usize::from(size), "stat")?)
}

/// Decodes the fields after `size[2]`; they must fill `raw` exactly.
fn decode_fields(raw: &[u8]) -> Result<Stat, DecodeErrorKind> {
    let mut f = Reader::new(raw);
    let stat = Stat {
        ty: f.u16("stat type")?,
        dev: f.u32("stat dev")?,
        qid: f.qid("stat qid")?,
        mode: f.u32("stat mode")?,
        atime: f.u32("stat atime")?,
        mtime: f.u32("stat mtime")?,
        length: f.u64("stat length")?,
        name: f.string("stat name")?,
        uid: f.string("stat uid")?,
        gid: f.string("stat gid")?,
        muid: f.string("stat muid")?,
    };
    if f.remaining() != 0 {
        return Err(DecodeErrorKind::StatSizeMismatch {
            declared: raw.len(),
            actual: raw.len().saturating_sub(f.remaining()),
        });
    }
    Ok(stat)
}
