//! Primitive fields: a bounds-checked little-endian cursor over a borrowed frame, and the
//! matching appenders. Every length read here is checked against the bytes remaining before
//! anything is allocated from it.

use super::error::{DecodeErrorKind, EncodeError};
use super::msg::Qid;
use super::QID_LEN;

/// A cursor over the bytes of one frame body (or one stat). Reads never go past the end: a short
/// read is [`DecodeErrorKind::Truncated`] naming the field.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes, borrowed.
    pub(crate) fn bytes(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeErrorKind> {
        match self.rest.split_at_checked(n) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(DecodeErrorKind::Truncated { field }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeErrorKind> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeErrorKind::Truncated { field })?;
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeErrorKind> {
        Ok(u8::from_le_bytes(self.array::<1>(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeErrorKind> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeErrorKind> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeErrorKind> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A 9P string `len[2] bytes[len]`, which must be UTF-8. Allocates only after the bytes
    /// are known to be present.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeErrorKind> {
        let len = self.u16(field)?;
        let raw = self.bytes(usize::from(len), field)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeErrorKind::InvalidUtf8 { field }),
        }
    }

    /// Data `count[4] bytes[count]`, at most `max` bytes.
    pub(crate) fn data(
        &mut self,
        max: u32,
        field: &'static str,
    ) -> Result<Vec<u8>, DecodeErrorKind> {
        let count = self.u32(field)?;
        if count > max {
            return Err(DecodeErrorKind::DataTooLarge { count, max });
        }
        let len = usize::try_from(count).map_err(|_| DecodeErrorKind::Truncated { field })?;
        Ok(self.bytes(len, field)?.to_vec())
    }

    pub(crate) fn qid(&mut self, field: &'static str) -> Result<Qid, DecodeErrorKind> {
        Ok(Qid {
            ty: self.u8(field)?,
            version: self.u32(field)?,
            path: self.u64(field)?,
        })
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeErrorKind> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(DecodeErrorKind::TrailingBytes { count }),
        }
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<(), EncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| EncodeError::StringTooLong {
        field,
        len: s.len(),
    })?;
    put_u16(out, len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub(crate) fn put_data(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    let len =
        u32::try_from(data.len()).map_err(|_| EncodeError::FrameTooLarge { len: data.len() })?;
    put_u32(out, len);
    out.extend_from_slice(data);
    Ok(())
}

pub(crate) fn put_qid(out: &mut Vec<u8>, q: &Qid) {
    put_u8(out, q.ty);
    put_u32(out, q.version);
    put_u64(out, q.path);
}

/// Encoded length of a string field: `len[2]` plus its bytes.
pub(crate) fn str_len(s: &str) -> usize {
    s.len().saturating_add(2)
}

/// Encoded length of a data field: `count[4]` plus its bytes.
pub(crate) fn data_len(d: &[u8]) -> usize {
    d.len().saturating_add(4)
}

/// Encoded length of `n` qids.
pub(crate) fn qids_len(n: usize) -> usize {
    n.saturating_mul(QID_LEN)
}
