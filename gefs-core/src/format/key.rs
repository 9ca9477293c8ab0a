//! Key families. The first byte of every key is its family; integers after it
//! are big-endian, so a byte compare orders keys by family, then numerically.
//!
//! | family | layout | value |
//! |---|---|---|
//! | `KDAT` 0 | `00 qid[8] off[8]` | data block pointer |
//! | `KENT` 1 | `01 pqid[8] name` | directory entry (`Xdir`) |
//! | `KUP` 2 | `02 qid[8]` | the `KENT` key of directory `qid` |
//! | `KLABEL` 3 | `03 name` | snapshot id + flags |
//! | `KSNAP` 4 | `04 id[8]` | snapshot record |
//! | `KDLIST` 5 | `05 owner[8] birth[8] seq[8]` | one deadlist segment: head and tail |
//! | `KCONF` 6 | `06 name` | configuration string |
//! | `KCLEAR` 7 | `07 qid[8]` | block offset: file `qid`'s data keys from there on are garbage to clear |

use super::codec::{get_u64, Decode, DecodeError, DecodeResult, PutBe};
use crate::error::CorruptKind;

/// Data block of a file.
pub const KDAT: u8 = 0;
/// Directory entry, keyed by parent qid and name.
pub const KENT: u8 = 1;
/// Up-link of a directory to its own entry.
pub const KUP: u8 = 2;
/// Snapshot label.
pub const KLABEL: u8 = 3;
/// Snapshot record.
pub const KSNAP: u8 = 4;
/// Deadlist.
pub const KDLIST: u8 = 5;
/// Configuration.
pub const KCONF: u8 = 6;
/// A pending clear of a removed or truncated file's data keys.
pub const KCLEAR: u8 = 7;

/// The parent qid of a root directory's entry.
pub const ROOT_PQID: u64 = u64::MAX;

fn fixed(kind: u8, a: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.put_u8(kind);
    k.put_u64(a);
    k
}

/// `KDAT` key of the block at byte offset `off` of file `qid`.
pub fn dat(qid: u64, off: u64) -> Vec<u8> {
    let mut k = fixed(KDAT, qid);
    k.put_u64(off);
    k
}

/// Prefix of every `KDAT` key of file `qid`.
pub fn dat_prefix(qid: u64) -> Vec<u8> {
    fixed(KDAT, qid)
}

/// `KENT` key of `name` in directory `pqid`.
pub fn ent(pqid: u64, name: &[u8]) -> Vec<u8> {
    let mut k = fixed(KENT, pqid);
    k.extend_from_slice(name);
    k
}

/// Prefix of every entry in directory `pqid`.
pub fn ent_prefix(pqid: u64) -> Vec<u8> {
    fixed(KENT, pqid)
}

/// `KUP` key of directory `qid`.
pub fn up(qid: u64) -> Vec<u8> {
    fixed(KUP, qid)
}

/// `KLABEL` key of a label.
pub fn label(name: &[u8]) -> Vec<u8> {
    let mut k = vec![KLABEL];
    k.extend_from_slice(name);
    k
}

/// `KSNAP` key of snapshot `id`.
pub fn snap(id: u64) -> Vec<u8> {
    fixed(KSNAP, id)
}

/// `KDLIST` key of one segment of the blocks born in `birth` and killed
/// while snapshot `owner`'s tree was the working version. A list may have
/// several segments (`seq` is globally unique); merging two lists re-keys
/// segments and never rewrites a block.
pub fn dlist(owner: u64, birth: u64, seq: u64) -> Vec<u8> {
    let mut k = fixed(KDLIST, owner);
    k.put_u64(birth);
    k.put_u64(seq);
    k
}

/// Prefix of every deadlist segment owned by `owner`.
pub fn dlist_prefix(owner: u64) -> Vec<u8> {
    fixed(KDLIST, owner)
}

/// `KCLEAR` key of file `qid`: a durable note that its data keys from a
/// block offset on (the value, 8 bytes) are unreachable and being cleared.
pub fn clear(qid: u64) -> Vec<u8> {
    fixed(KCLEAR, qid)
}

/// `KCONF` key.
pub fn conf(name: &[u8]) -> Vec<u8> {
    let mut k = vec![KCONF];
    k.extend_from_slice(name);
    k
}

/// The exclusive upper bound of all keys starting with `prefix`, or `None`
/// when no such bound exists (the prefix is all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A decoded key, for display and checking ([`show`] displays any bytes,
/// keys or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyView<'a> {
    /// Data block.
    Dat {
        /// File.
        qid: u64,
        /// Block offset.
        off: u64,
    },
    /// Directory entry.
    Ent {
        /// Parent directory.
        pqid: u64,
        /// Name.
        name: &'a [u8],
    },
    /// Directory up-link.
    Up {
        /// Directory.
        qid: u64,
    },
    /// Snapshot label.
    Label {
        /// Label name.
        name: &'a [u8],
    },
    /// Snapshot record.
    Snap {
        /// Snapshot id.
        id: u64,
    },
    /// Deadlist segment.
    Dlist {
        /// Owning snapshot.
        owner: u64,
        /// Birth generation.
        birth: u64,
        /// Segment number.
        seq: u64,
    },
    /// Configuration.
    Conf {
        /// Name.
        name: &'a [u8],
    },
    /// Pending clear.
    Clear {
        /// The file.
        qid: u64,
    },
}

impl<'a> Decode<'a> for KeyView<'a> {
    /// A key of a known family with that family's length; anything else is
    /// [`CorruptKind::Key`].
    fn decode(k: &'a [u8]) -> DecodeResult<KeyView<'a>> {
        let u = |o: usize| get_u64(k, o);
        let rest = || k.get(1..).unwrap_or_default();
        let name = || k.get(9..).unwrap_or_default();
        let v = match (k.first().copied(), k.len()) {
            (Some(KDAT), 17) => u(1).zip(u(9)).map(|(qid, off)| KeyView::Dat { qid, off }),
            (Some(KENT), n) if n >= 9 => u(1).map(|pqid| KeyView::Ent { pqid, name: name() }),
            (Some(KUP), 9) => u(1).map(|qid| KeyView::Up { qid }),
            (Some(KLABEL), n) if n > 1 => Some(KeyView::Label { name: rest() }),
            (Some(KSNAP), 9) => u(1).map(|id| KeyView::Snap { id }),
            (Some(KDLIST), 25) => match (u(1), u(9), u(17)) {
                (Some(owner), Some(birth), Some(seq)) => Some(KeyView::Dlist { owner, birth, seq }),
                _ => None,
            },
            (Some(KCONF), n) if n > 1 => Some(KeyView::Conf { name: rest() }),
            (Some(KCLEAR), 9) => u(1).map(|qid| KeyView::Clear { qid }),
            _ => None,
        };
        v.ok_or_else(|| DecodeError::new(CorruptKind::Key, format!("malformed key {}", Raw(k))))
    }
}

/// Display any bytes as a key: its [`KeyView`] if it decodes, else
/// `raw:` and its bytes in hex.
pub fn show(k: &[u8]) -> Show<'_> {
    Show(k)
}

/// What [`show`] returns.
#[derive(Debug, Clone, Copy)]
pub struct Show<'a>(&'a [u8]);

impl std::fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match KeyView::decode(self.0) {
            Ok(v) => v.fmt(f),
            Err(_) => Raw(self.0).fmt(f),
        }
    }
}

/// Bytes shown as `raw:` and hex.
struct Raw<'a>(&'a [u8]);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("raw:")?;
        for x in self.0 {
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for KeyView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            KeyView::Dat { qid, off } => write!(f, "dat qid:{qid} off:{off:#x}"),
            KeyView::Ent { pqid, name } => {
                if *pqid == ROOT_PQID {
                    write!(f, "ent dir:root name:{:?}", s(name))
                } else {
                    write!(f, "ent dir:{pqid} name:{:?}", s(name))
                }
            }
            KeyView::Up { qid } => write!(f, "up dir:{qid}"),
            KeyView::Label { name } => write!(f, "label {:?}", s(name)),
            KeyView::Snap { id } => write!(f, "snap id:{id}"),
            KeyView::Dlist { owner, birth, seq } => {
                write!(f, "dlist gen:{owner} bgen:{birth} seq:{seq}")
            }
            KeyView::Conf { name } => write!(f, "conf {:?}", s(name)),
            KeyView::Clear { qid } => write!(f, "clear qid:{qid}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_numbers() {
        assert!(dat(1, 0x4000) < dat(1, 0x10000));
        assert!(dat(1, u64::MAX) < dat(2, 0));
        assert!(dat(9, 0) < ent(0, b"a"));
        assert!(ent(5, b"a") < ent(5, b"b"));
        assert!(ent(5, b"zz") < ent(6, b""));
    }

    #[test]
    fn parse_round_trip() {
        assert_eq!(
            KeyView::decode(&dat(3, 16384)),
            Ok(KeyView::Dat { qid: 3, off: 16384 })
        );
        assert_eq!(
            KeyView::decode(&ent(3, b"x")),
            Ok(KeyView::Ent {
                pqid: 3,
                name: b"x"
            })
        );
        assert_eq!(
            KeyView::decode(&dlist(4, 2, 9)),
            Ok(KeyView::Dlist {
                owner: 4,
                birth: 2,
                seq: 9
            })
        );
        assert_eq!(
            KeyView::decode(&[0x42]).map_err(|e| e.kind),
            Err(CorruptKind::Key)
        );
        assert_eq!(show(&[0x42, 1]).to_string(), "raw:4201");
        assert_eq!(show(&up(7)).to_string(), "up dir:7");
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
