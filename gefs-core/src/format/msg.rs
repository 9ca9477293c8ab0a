//! Bε-tree messages: what an upsert asks, and how each op changes a value.
//!
//! | op | argument | on an existing value | with no value |
//! |---|---|---|---|
//! | insert | the value | replace | create |
//! | delete | empty | remove | nothing |
//! | clearb | empty | remove | nothing |
//! | clobber | empty | remove | nothing |
//! | wstat | flags + fields | rewrite flagged `Xdir` fields, bump qid.vers | nothing |
//! | relink | id, dlbl, dref | snapshot record: succ = id, counts += deltas | nothing |
//! | reprev | id, dlbl, dref | snapshot record: pred = id, counts += deltas | nothing |
//!
//! When insert, delete or clearb replaces or removes a `KDAT` value (a data
//! block pointer) as it is applied in a leaf, the tree frees that data block;
//! clobber never does. Lookups and scans apply messages to copies and free
//! nothing.
//!
//! Unlike the reference, a message with no value to act on is harmless
//! everywhere (leaf, lookup, scan): it is simply dropped.

use super::codec::{Decode, DecodeError, DecodeResult, Encode, PutBe, Reader};
use super::value::{TreeRec, Xdir};
use super::{KEYMAX, VALMAX};
use crate::error::{CorruptKind, Error, Result};

/// A message operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Op {
    /// Set the value.
    Insert,
    /// Remove the value.
    Delete,
    /// Remove a data pointer that may be a hole (truncation and removal of
    /// file data).
    Clearb,
    /// Remove an entry that may already be gone.
    Clobber,
    /// Change directory-entry fields.
    Wstat,
    /// Change a snapshot record's successor and counts.
    Relink,
    /// Change a snapshot record's predecessor and counts.
    Reprev,
}

impl Op {
    /// The on-disk code.
    pub fn code(self) -> u8 {
        match self {
            Op::Insert => 1,
            Op::Delete => 2,
            Op::Clearb => 3,
            Op::Clobber => 4,
            Op::Wstat => 5,
            Op::Relink => 6,
            Op::Reprev => 7,
        }
    }

    /// The op with code `c`.
    pub fn from_code(c: u8) -> Option<Op> {
        Some(match c {
            1 => Op::Insert,
            2 => Op::Delete,
            3 => Op::Clearb,
            4 => Op::Clobber,
            5 => Op::Wstat,
            6 => Op::Relink,
            7 => Op::Reprev,
            _ => return None,
        })
    }

    /// Whether the op removes its value.
    pub fn is_removal(self) -> bool {
        matches!(self, Op::Delete | Op::Clearb | Op::Clobber)
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Delete => "delete",
            Op::Clearb => "clearb",
            Op::Clobber => "clobber",
            Op::Wstat => "wstat",
            Op::Relink => "relink",
            Op::Reprev => "reprev",
        }
    }
}

/// An owned message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// What to do.
    pub op: Op,
    /// To which key.
    pub key: Vec<u8>,
    /// The op's argument.
    pub val: Vec<u8>,
}

impl Msg {
    /// An insert.
    pub fn insert(key: Vec<u8>, val: Vec<u8>) -> Msg {
        Msg {
            op: Op::Insert,
            key,
            val,
        }
    }

    /// A delete.
    pub fn delete(key: Vec<u8>) -> Msg {
        Msg {
            op: Op::Delete,
            key,
            val: Vec::new(),
        }
    }

    /// A message with an empty argument.
    pub fn bare(op: Op, key: Vec<u8>) -> Msg {
        Msg {
            op,
            key,
            val: Vec::new(),
        }
    }

    /// Check limits and the argument's shape, so that a message that enters a
    /// tree can always be applied.
    pub fn validate(&self) -> Result<()> {
        validate(self.op, &self.key, &self.val)
    }

    /// Bytes this message takes in a buffer, offset slot included.
    pub fn size(&self) -> usize {
        super::SLOTSZ + super::MSG_OVERHEAD + self.key.len() + self.val.len()
    }
}

/// Check a message's limits and argument shape, as a caller's input: the
/// answer is a usage error ([`Error::KeyTooLong`], [`Error::ValueTooLong`],
/// [`Error::Invalid`]). [`check`] is the same test for decoded bytes.
pub fn validate(op: Op, key: &[u8], val: &[u8]) -> Result<()> {
    check(op, key, val).map_err(|e| match e.kind {
        CorruptKind::Key if !key.is_empty() => Error::KeyTooLong(key.len()),
        CorruptKind::Value => Error::ValueTooLong(val.len()),
        _ => Error::Invalid(e.detail),
    })
}

/// Check a decoded message's limits and argument shape: an empty or
/// too long key is [`CorruptKind::Key`], a too long argument
/// [`CorruptKind::Value`], one its op cannot take [`CorruptKind::Message`].
pub fn check(op: Op, key: &[u8], val: &[u8]) -> DecodeResult<()> {
    if key.is_empty() {
        return Err(DecodeError::new(CorruptKind::Key, "empty key"));
    }
    if key.len() > KEYMAX {
        return Err(DecodeError::new(
            CorruptKind::Key,
            format!("key of {} bytes exceeds the limit", key.len()),
        ));
    }
    if val.len() > VALMAX {
        return Err(DecodeError::new(
            CorruptKind::Value,
            format!("value of {} bytes exceeds the limit", val.len()),
        ));
    }
    let ok = match op {
        Op::Insert => true,
        Op::Delete | Op::Clearb | Op::Clobber => val.is_empty(),
        Op::Wstat => Wstat::decode(val).is_ok(),
        Op::Relink | Op::Reprev => Relink::decode(val).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::new(
            CorruptKind::Message,
            format!("malformed {} argument", op.name()),
        ))
    }
}

/// The fields an `Owstat` message changes; `None` means "leave alone".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wstat {
    /// New length.
    pub size: Option<u64>,
    /// New mode (qid type follows).
    pub mode: Option<u32>,
    /// New mtime, ns.
    pub mtime: Option<u64>,
    /// New atime, ns.
    pub atime: Option<u64>,
    /// New owner.
    pub uid: Option<i32>,
    /// New group.
    pub gid: Option<i32>,
    /// New last modifier.
    pub muid: Option<i32>,
    /// How many times the message bumps the qid version; `None` means once
    /// (every wstat bumps it). Set when messages are combined
    /// ([`Wstat::then`]).
    pub bumps: Option<u32>,
    /// New ctime, ns: when the change happened (format version 2: a trailing u64 after the
    /// flagged fields, with no flag bit).
    pub ctime: Option<u64>,
}

const WS_SIZE: u8 = 1;
const WS_MODE: u8 = 2;
const WS_MTIME: u8 = 4;
const WS_ATIME: u8 = 8;
const WS_UID: u8 = 16;
const WS_GID: u8 = 32;
const WS_MUID: u8 = 64;
const WS_BUMPS: u8 = 128;

impl Encode for Wstat {
    /// A flag byte, then the present fields in flag-bit order, then the ctime if any.
    fn encode(&self) -> Vec<u8> {
        let mut v = vec![0u8];
        let mut f = 0;
        if let Some(x) = self.size {
            f |= WS_SIZE;
            v.put_u64(x);
        }
        if let Some(x) = self.mode {
            f |= WS_MODE;
            v.put_u32(x);
        }
        if let Some(x) = self.mtime {
            f |= WS_MTIME;
            v.put_u64(x);
        }
        if let Some(x) = self.atime {
            f |= WS_ATIME;
            v.put_u64(x);
        }
        if let Some(x) = self.uid {
            f |= WS_UID;
            v.put_u32(x as u32);
        }
        if let Some(x) = self.gid {
            f |= WS_GID;
            v.put_u32(x as u32);
        }
        if let Some(x) = self.muid {
            f |= WS_MUID;
            v.put_u32(x as u32);
        }
        if let Some(x) = self.bumps {
            f |= WS_BUMPS;
            v.put_u32(x);
        }
        if let Some(x) = self.ctime {
            v.put_u64(x);
        }
        if let Some(flags) = v.first_mut() {
            *flags = f;
        }
        v
    }
}

impl Decode<'_> for Wstat {
    /// Missing fields, or trailing bytes other than one u64 ctime, are errors.
    fn decode(b: &[u8]) -> DecodeResult<Wstat> {
        let mut r = Reader::new(b);
        let f = r.u8()?;
        let mut w = Wstat::default();
        if f & WS_SIZE != 0 {
            w.size = Some(r.u64()?);
        }
        if f & WS_MODE != 0 {
            w.mode = Some(r.u32()?);
        }
        if f & WS_MTIME != 0 {
            w.mtime = Some(r.u64()?);
        }
        if f & WS_ATIME != 0 {
            w.atime = Some(r.u64()?);
        }
        if f & WS_UID != 0 {
            w.uid = Some(r.u32()? as i32);
        }
        if f & WS_GID != 0 {
            w.gid = Some(r.u32()? as i32);
        }
        if f & WS_MUID != 0 {
            w.muid = Some(r.u32()? as i32);
        }
        if f & WS_BUMPS != 0 {
            w.bumps = Some(r.u32()?);
        }
        if r.remaining() == 8 {
            w.ctime = Some(r.u64()?);
        }
        r.finish()?;
        Ok(w)
    }
}

impl Wstat {
    /// Apply to a directory entry, bumping its version.
    pub fn apply(&self, d: &mut Xdir) {
        if let Some(x) = self.size {
            d.length = x;
        }
        if let Some(x) = self.mode {
            d.mode = x;
            d.qid_type = (x >> 24) as u8;
        }
        if let Some(x) = self.mtime {
            d.mtime = x;
        }
        if let Some(x) = self.atime {
            d.atime = x;
        }
        if let Some(x) = self.uid {
            d.uid = x;
        }
        if let Some(x) = self.gid {
            d.gid = x;
        }
        if let Some(x) = self.muid {
            d.muid = x;
        }
        if let Some(x) = self.ctime {
            d.ctime = x;
        }
        d.qid_vers = d.qid_vers.wrapping_add(self.bumps.unwrap_or(1));
    }

    /// One message with the effect of `self` followed by `later`: `later`'s
    /// fields over `self`'s, and both bumps.
    pub fn then(&self, later: &Wstat) -> Wstat {
        Wstat {
            size: later.size.or(self.size),
            mode: later.mode.or(self.mode),
            mtime: later.mtime.or(self.mtime),
            atime: later.atime.or(self.atime),
            uid: later.uid.or(self.uid),
            gid: later.gid.or(self.gid),
            muid: later.muid.or(self.muid),
            ctime: later.ctime.or(self.ctime),
            bumps: Some(
                self.bumps
                    .unwrap_or(1)
                    .wrapping_add(later.bumps.unwrap_or(1)),
            ),
        }
    }
}

/// The argument of `Orelink`/`Oreprev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relink {
    /// The new successor (relink) or predecessor (reprev).
    pub id: u64,
    /// Change to the label count.
    pub dlbl: i8,
    /// Change to the reference count.
    pub dref: i8,
}

impl Encode for Relink {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(10);
        v.put_u64(self.id);
        v.push(self.dlbl as u8);
        v.push(self.dref as u8);
        v
    }
}

impl Decode<'_> for Relink {
    /// Exactly 10 bytes.
    fn decode(b: &[u8]) -> DecodeResult<Relink> {
        let mut r = Reader::new(b);
        let rl = Relink {
            id: r.u64()?,
            dlbl: r.i8()?,
            dref: r.i8()?,
        };
        r.finish()?;
        Ok(rl)
    }
}

impl Relink {
    fn apply(&self, t: &mut TreeRec, succ: bool) {
        if succ {
            t.succ = self.id;
        } else {
            t.pred = self.id;
        }
        t.nlbl = t.nlbl.saturating_add_signed(i32::from(self.dlbl));
        t.nref = t.nref.saturating_add_signed(i32::from(self.dref));
    }
}

/// Apply one message to the current value of its key. Returns the new value.
/// A removal or a message with nothing to act on yields `None`. A value of the
/// wrong shape for a wstat or relink is corruption, reported as an error.
pub fn apply(op: Op, arg: &[u8], cur: Option<Vec<u8>>) -> DecodeResult<Option<Vec<u8>>> {
    fn bad(kind: CorruptKind, what: &'static str) -> impl Fn(DecodeError) -> DecodeError {
        move |_| DecodeError::new(kind, what)
    }
    match op {
        Op::Insert => Ok(Some(arg.to_vec())),
        Op::Delete | Op::Clearb | Op::Clobber => Ok(None),
        Op::Wstat => {
            let Some(v) = cur else { return Ok(None) };
            let w = Wstat::decode(arg)
                .map_err(bad(CorruptKind::Message, "malformed wstat argument"))?;
            let mut d = Xdir::decode(&v).map_err(bad(
                CorruptKind::Value,
                "wstat on a value that is not a directory entry",
            ))?;
            w.apply(&mut d);
            Ok(Some(d.encode()))
        }
        Op::Relink | Op::Reprev => {
            let Some(v) = cur else { return Ok(None) };
            let rl = Relink::decode(arg)
                .map_err(bad(CorruptKind::Message, "malformed relink argument"))?;
            let mut t = TreeRec::decode(&v).map_err(bad(
                CorruptKind::Value,
                "relink on a value that is not a snapshot record",
            ))?;
            rl.apply(&mut t, op == Op::Relink);
            Ok(Some(t.encode()))
        }
    }
}

/// When a message of op `a` with argument `a_arg` is followed, for the same
/// key, by a wstat with argument `w`: the argument that gives one message of
/// op `a` the effect of both, if there is one. An insert of an entry becomes
/// the insert of the changed entry ([`apply`] computes it); two wstats become
/// one ([`Wstat::then`]); after a delete, clearb or clobber the wstat is an
/// orphan and `a` stays as it is. `None` for anything else, and for
/// arguments that do not decode (left for [`apply`] to report).
pub fn fold_wstat(a: Op, a_arg: &[u8], w: &[u8]) -> Option<Vec<u8>> {
    match a {
        Op::Insert => apply(Op::Wstat, w, Some(a_arg.to_vec())).ok()?,
        Op::Wstat => Some(
            Wstat::decode(a_arg)
                .ok()?
                .then(&Wstat::decode(w).ok()?)
                .encode(),
        ),
        Op::Delete | Op::Clearb | Op::Clobber => {
            Wstat::decode(w).ok()?;
            Some(a_arg.to_vec())
        }
        Op::Relink | Op::Reprev => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wstat_round_trip_and_apply() {
        let w = Wstat {
            size: Some(10),
            mode: Some(0x8000_01ff),
            muid: Some(-1),
            ..Wstat::default()
        };
        let e = w.encode();
        assert_eq!(Wstat::decode(&e), Ok(w));
        let d = Xdir::default();
        let out = apply(Op::Wstat, &e, Some(d.encode())).unwrap().unwrap();
        let d2 = Xdir::decode(&out).unwrap();
        assert_eq!(d2.length, 10);
        assert_eq!(d2.qid_type, 0x80);
        assert_eq!(d2.qid_vers, 1);
        assert_eq!(d2.muid, -1);
        assert!(Wstat::decode(&[0x80]).is_err());
        assert!(Wstat::decode(&[WS_SIZE, 1]).is_err());
    }

    #[test]
    fn wstat_ctime_trails_the_flagged_fields() {
        let w = Wstat {
            mode: Some(0o644),
            ctime: Some(77),
            ..Wstat::default()
        };
        let e = w.encode();
        assert_eq!(e.len(), 1 + 4 + 8);
        assert_eq!(Wstat::decode(&e), Ok(w));
        // A version-1 argument (no ctime) still decodes, and leaves ctime alone.
        let old = Wstat {
            mode: Some(0o600),
            ..Wstat::default()
        };
        assert_eq!(old.encode().len(), 5);
        let d = Xdir {
            ctime: 5,
            ..Xdir::default()
        };
        let out = apply(Op::Wstat, &old.encode(), Some(d.encode()))
            .unwrap()
            .unwrap();
        assert_eq!(Xdir::decode(&out).unwrap().ctime, 5);
        let out = apply(Op::Wstat, &e, Some(d.encode())).unwrap().unwrap();
        assert_eq!(Xdir::decode(&out).unwrap().ctime, 77);
        // Anything but 0 or 8 trailing bytes is malformed.
        let mut bad = e.clone();
        bad.push(0);
        assert!(Wstat::decode(&bad).is_err());
        assert!(Wstat::decode(&e[..e.len() - 1]).is_err());
        // Combining keeps the later ctime.
        let later = Wstat {
            ctime: Some(99),
            ..Wstat::default()
        };
        assert_eq!(w.then(&later).ctime, Some(99));
        assert_eq!(w.then(&Wstat::default()).ctime, Some(77));
    }

    #[test]
    fn wstats_combine_exactly() {
        let ws = [
            Wstat {
                size: Some(10),
                mtime: Some(5),
                ..Wstat::default()
            },
            Wstat::default(),
            Wstat {
                mode: Some(0x8000_01ff),
                mtime: Some(7),
                uid: Some(3),
                ..Wstat::default()
            },
            Wstat {
                gid: Some(-1),
                muid: Some(4),
                atime: Some(9),
                bumps: Some(u32::MAX),
                ..Wstat::default()
            },
        ];
        let d0 = Xdir {
            qid_vers: 7,
            ..Xdir::default()
        };
        for a in &ws {
            for b in &ws {
                let (mut one, mut two) = (d0, d0);
                a.then(b).apply(&mut one);
                a.apply(&mut two);
                b.apply(&mut two);
                assert_eq!(one, two, "{a:?} then {b:?}");
                let c = a.then(b);
                assert_eq!(Wstat::decode(&c.encode()), Ok(c));
            }
        }
        assert!(Wstat::decode(&[WS_BUMPS, 0, 0, 1]).is_err());
        assert_eq!(
            Wstat::decode(&[WS_BUMPS, 0, 0, 0, 3]).map(|w| w.bumps),
            Ok(Some(3))
        );
    }

    #[test]
    fn orphans_are_harmless() {
        for op in [Op::Delete, Op::Clearb, Op::Clobber] {
            assert_eq!(apply(op, &[], None), Ok(None));
        }
        assert_eq!(apply(Op::Wstat, &Wstat::default().encode(), None), Ok(None));
        let rl = Relink {
            id: 1,
            dlbl: -1,
            dref: 1,
        }
        .encode();
        assert_eq!(apply(Op::Relink, &rl, None), Ok(None));
    }

    #[test]
    fn validation() {
        assert!(validate(Op::Insert, &[1; 257], &[]).is_err());
        assert!(validate(Op::Insert, &[1], &[0; 513]).is_err());
        assert!(validate(Op::Delete, &[1], &[0]).is_err());
        assert!(validate(Op::Relink, &[1], &[0; 9]).is_err());
        assert!(validate(Op::Insert, &[], &[]).is_err());
        assert!(validate(Op::Insert, &[1; 256], &[0; 512]).is_ok());
    }
}
