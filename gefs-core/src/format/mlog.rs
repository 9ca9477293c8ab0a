//! Message-log records: how a tree's accepted-but-unapplied messages are
//! laid out, in message-log blocks on disk and in the write buffer's runs in
//! memory (one encoding for both, so a commit's log write is a copy).
//!
//! ```text
//! record:  op u8 · klen u16 · key[klen] · vlen u16 · arg[vlen]
//! ```
//!
//! The record is a pivot buffer's message record without its offset slot
//! (`node.rs`). A message-log block (type 5) is a log header (`log.rs`:
//! type, `nbytes`, flags 0, `seq`, `prev`) followed by `nbytes` of records
//! back to back, oldest first; a record never spans two blocks. The chain
//! runs backwards from its newest block, which the tree's snapshot record
//! names (`value.rs`, `TreeRec::log`); replaying it means reading it back to
//! `seq` 0 and taking the records of every block in order.
//!
//! Every decoder checks lengths before use and every record's validity
//! ([`msg::check`]); nothing here panics on input.

use super::codec::{DecodeError, DecodeResult, Reader};
use super::msg::{self, Op};
use super::MSG_OVERHEAD;
use crate::error::CorruptKind;

/// Bytes a record with a `klen`-byte key and a `vlen`-byte argument takes.
pub fn size(klen: usize, vlen: usize) -> usize {
    MSG_OVERHEAD + klen + vlen
}

/// Append a record to `out`. The caller has validated the message (key ≤
/// `KEYMAX`, argument ≤ `VALMAX`), so both lengths fit their `u16`.
pub fn put(out: &mut Vec<u8>, op: Op, key: &[u8], arg: &[u8]) {
    out.push(op.code());
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(arg.len() as u16).to_be_bytes());
    out.extend_from_slice(arg);
}

/// The record at `at` in `buf`: op, key, argument, and where the next one
/// starts. An error if it is truncated or its op is unknown (its contents
/// are not validated: see [`decode`]).
#[inline]
pub fn record(buf: &[u8], at: usize) -> DecodeResult<(Op, &[u8], &[u8], usize)> {
    let mut r = Reader::new(buf.get(at..).unwrap_or_default());
    let code = r.u8()?;
    let op = Op::from_code(code)
        .ok_or_else(|| DecodeError::new(CorruptKind::Message, format!("bad op {code}")))?;
    let kl = usize::from(r.u16()?);
    let key = r.bytes(kl)?;
    let vl = usize::from(r.u16()?);
    let arg = r.bytes(vl)?;
    Ok((op, key, arg, at + r.pos()))
}

/// One decoded record: op, key, argument.
pub type Record<'a> = (Op, &'a [u8], &'a [u8]);

/// Decode and validate every record of a message-log payload, in order.
pub fn decode(payload: &[u8]) -> DecodeResult<Vec<Record<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let (op, key, arg, next) =
            record(payload, at).map_err(|e| e.context(format_args!("record at {at}")))?;
        msg::check(op, key, arg).map_err(|e| e.context(format_args!("record at {at}")))?;
        out.push((op, key, arg));
        at = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_an_error() {
        let mut b = Vec::new();
        put(&mut b, Op::Insert, b"key", b"value");
        put(&mut b, Op::Delete, b"k2", b"");
        assert_eq!(b.len(), size(3, 5) + size(2, 0));
        let r = decode(&b).unwrap();
        assert_eq!(
            r,
            vec![
                (Op::Insert, &b"key"[..], &b"value"[..]),
                (Op::Delete, &b"k2"[..], &b""[..])
            ]
        );
        assert!(decode(&b[..b.len() - 1]).is_err(), "truncated");
        let mut bad = b.clone();
        bad[0] = 9;
        assert!(decode(&bad).is_err(), "unknown op");
        let mut empty = Vec::new();
        put(&mut empty, Op::Insert, b"", b"v");
        assert!(decode(&empty).is_err(), "empty key");
        let mut arg = Vec::new();
        put(&mut arg, Op::Delete, b"k", b"x");
        assert!(decode(&arg).is_err(), "a delete carries no argument");
    }
}
