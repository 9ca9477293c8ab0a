//! Fixed-layout values: directory entries, snapshot records, labels and
//! deadlist heads, each with its [`Encode`] and [`Decode`]. A value decodes
//! only from exactly its size (a snapshot record also from its version-1
//! size); anything else is [`CorruptKind::Value`].

use super::codec::{Decode, DecodeError, DecodeResult, Encode, PutBe, Reader};
use super::Bptr;
use crate::error::CorruptKind;

/// The error for a value of `len` bytes where `what` of `size` belongs.
fn wrong_size(what: &str, len: usize, size: usize) -> DecodeError {
    DecodeError::new(
        CorruptKind::Value,
        format!("{what} of {len} bytes (expected {size})"),
    )
}

/// Directory bit of a mode (and, shifted down by 24, of a qid type).
pub const DMDIR: u32 = 0x8000_0000;
/// Append-only.
pub const DMAPPEND: u32 = 0x4000_0000;
/// Exclusive use.
pub const DMEXCL: u32 = 0x2000_0000;
/// Not backed up.
pub const DMTMP: u32 = 0x0400_0000;
/// A symbolic link (9P2000.u): the entry's contents are the target, never followed by the
/// file system (format version 2).
pub const DMSYMLINK: u32 = 0x0200_0000;
/// A device node (9P2000.u `DMDEVICE`; format version 4): no contents; its `length` field
/// holds the device ([`Device`]). The file system never opens it for data.
pub const DMDEVICE: u32 = 0x0080_0000;
/// A named pipe, FIFO (9P2000.u; format version 2). It has no contents here.
pub const DMNAMEDPIPE: u32 = 0x0020_0000;
/// A Unix-domain socket (9P2000.u; format version 2). It has no contents here.
pub const DMSOCKET: u32 = 0x0010_0000;
/// Set user id on execution (9P2000.u; format version 2).
pub const DMSETUID: u32 = 0x0008_0000;
/// Set group id on execution (9P2000.u; format version 2).
pub const DMSETGID: u32 = 0x0004_0000;
/// Sticky (9P2000.u `DMSETVTX`; format version 2).
pub const DMSETVTX: u32 = 0x0001_0000;
/// The bits that say what kind of entry this is; no change may alter them.
pub const DMKIND: u32 = DMDIR | DMSYMLINK | DMDEVICE | DMNAMEDPIPE | DMSOCKET;

/// The device a device node names, kept in its entry's `length` field (FORMAT.md §7.1):
/// bits 63–40 zero, bits 39–32 the type (`b'b'` block, `b'c'` character), bits 31–20 the
/// major number, bits 19–0 the minor number (Linux's kernel `MKDEV` layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// A block device (else a character device).
    pub block: bool,
    /// Major number, below [`Device::MAJORS`].
    pub major: u32,
    /// Minor number, below [`Device::MINORS`].
    pub minor: u32,
}

impl Device {
    /// Major numbers are 12 bits.
    pub const MAJORS: u32 = 1 << 12;
    /// Minor numbers are 20 bits.
    pub const MINORS: u32 = 1 << 20;

    /// A device; `None` if a number is out of range.
    pub fn new(block: bool, major: u32, minor: u32) -> Option<Device> {
        (major < Self::MAJORS && minor < Self::MINORS).then_some(Device {
            block,
            major,
            minor,
        })
    }

    /// The `length` field that holds this device.
    pub fn encode(self) -> u64 {
        let ty = if self.block { b'b' } else { b'c' };
        (u64::from(ty) << 32) | (u64::from(self.major) << 20) | u64::from(self.minor)
    }

    /// The device a `length` field holds; `None` if it is no valid encoding.
    pub fn decode(v: u64) -> Option<Device> {
        let block = match v >> 32 {
            0x62 => true,
            0x63 => false,
            _ => return None,
        };
        let low = v as u32;
        Some(Device {
            block,
            major: low >> 20,
            minor: low & (Self::MINORS - 1),
        })
    }
}

/// A directory entry value (`KENT`), 61 bytes. The name lives in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Xdir {
    /// Last status change, ns since the epoch (format version 2; 0, "not recorded", in
    /// entries written by version 1, where [`Xdir::change_time`] falls back to `mtime`).
    pub ctime: u64,
    /// qid path: unique, never reused.
    pub qid_path: u64,
    /// qid version: bumped on every change.
    pub qid_vers: u32,
    /// qid type: mode >> 24.
    pub qid_type: u8,
    /// Plan 9 mode bits.
    pub mode: u32,
    /// Access time, ns since the epoch.
    pub atime: u64,
    /// Modification time, ns since the epoch.
    pub mtime: u64,
    /// Length in bytes.
    pub length: u64,
    /// Owner id.
    pub uid: i32,
    /// Group id.
    pub gid: i32,
    /// Last modifier id.
    pub muid: i32,
}

impl Xdir {
    /// Encoded size.
    pub const SIZE: usize = 61;
}

impl Encode for Xdir {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.put_u64(self.ctime);
        v.put_u64(self.qid_path);
        v.put_u32(self.qid_vers);
        v.put_u8(self.qid_type);
        v.put_u32(self.mode);
        v.put_u64(self.atime);
        v.put_u64(self.mtime);
        v.put_u64(self.length);
        v.put_u32(self.uid as u32);
        v.put_u32(self.gid as u32);
        v.put_u32(self.muid as u32);
        v
    }
}

impl Decode<'_> for Xdir {
    /// Exactly [`Xdir::SIZE`] bytes.
    fn decode(b: &[u8]) -> DecodeResult<Xdir> {
        if b.len() != Self::SIZE {
            return Err(wrong_size("directory entry", b.len(), Self::SIZE));
        }
        let mut r = Reader::new(b);
        Ok(Xdir {
            ctime: r.u64()?,
            qid_path: r.u64()?,
            qid_vers: r.u32()?,
            qid_type: r.u8()?,
            mode: r.u32()?,
            atime: r.u64()?,
            mtime: r.u64()?,
            length: r.u64()?,
            uid: r.u32()? as i32,
            gid: r.u32()? as i32,
            muid: r.u32()? as i32,
        })
    }
}

impl Xdir {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & DMDIR != 0
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & DMSYMLINK != 0
    }

    /// Whether this is a device node.
    pub fn is_device(&self) -> bool {
        self.mode & DMDEVICE != 0
    }

    /// The device a device node names; `None` for any other entry or a `length` that is no
    /// valid device encoding.
    pub fn device(&self) -> Option<Device> {
        self.is_device()
            .then(|| Device::decode(self.length))
            .flatten()
    }

    /// The size a stat shows: 0 for a directory or a device node (whose `length` field holds
    /// the device), otherwise `length`.
    pub fn size(&self) -> u64 {
        if self.is_dir() || self.is_device() {
            0
        } else {
            self.length
        }
    }

    /// Whether this is a named pipe or a socket: an entry with no contents of its own.
    pub fn is_special(&self) -> bool {
        self.mode & (DMNAMEDPIPE | DMSOCKET) != 0
    }

    /// The last status change: `ctime`, or `mtime` where it was not recorded.
    pub fn change_time(&self) -> u64 {
        if self.ctime == 0 {
            self.mtime
        } else {
            self.ctime
        }
    }
}

/// A snapshot record (`KSNAP` value), 104 bytes: a tree is its root plus
/// the messages of its message log applied on top (`mlog.rs`). Records
/// written before format version 3 are 72 bytes (no `log`, no `nodes`) and
/// decode as a tree with an empty log and an unrecorded node count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeRec {
    /// Successors or forks that depend on this snapshot.
    pub nref: u32,
    /// Labels pointing here.
    pub nlbl: u32,
    /// Tree height (1 = one leaf).
    pub ht: u32,
    /// Reserved, 0.
    pub flag: u32,
    /// This snapshot's id.
    pub gen: u64,
    /// Previous snapshot in this history, or `u64::MAX`.
    pub pred: u64,
    /// Next snapshot, or `u64::MAX` for a tip.
    pub succ: u64,
    /// Fork point: blocks born at or before it belong to the original history.
    pub base: u64,
    /// Root of the tree.
    pub root: Bptr,
    /// Newest block of the tree's message log (messages accepted after the
    /// tree at `root` was written, oldest first), or null when it has none.
    pub log: Bptr,
    /// Nodes of the tree at `root` (pivots and leaves), or
    /// [`TreeRec::NODES_UNKNOWN`] when not recorded.
    pub nodes: u64,
}

impl TreeRec {
    /// Encoded size.
    pub const SIZE: usize = 104;
    /// Encoded size of a record written before format version 3.
    pub const SIZE_V1: usize = 72;
    /// `nodes` of a tree whose node count is not recorded (a record of
    /// [`TreeRec::SIZE_V1`] bytes, or a tree descended from one).
    pub const NODES_UNKNOWN: u64 = u64::MAX;
    /// "No snapshot" in `pred`/`succ`.
    pub const NONE: u64 = u64::MAX;
}

impl Encode for TreeRec {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.put_u32(self.nref);
        v.put_u32(self.nlbl);
        v.put_u32(self.ht);
        v.put_u32(self.flag);
        v.put_u64(self.gen);
        v.put_u64(self.pred);
        v.put_u64(self.succ);
        v.put_u64(self.base);
        v.extend_from_slice(&self.root.to_bytes());
        v.extend_from_slice(&self.log.to_bytes());
        v.put_u64(self.nodes);
        v
    }
}

impl Decode<'_> for TreeRec {
    /// Exactly [`TreeRec::SIZE`] bytes, or [`TreeRec::SIZE_V1`] (an empty
    /// log, nodes unknown).
    fn decode(b: &[u8]) -> DecodeResult<TreeRec> {
        if b.len() == Self::SIZE_V1 {
            let mut v = b.to_vec();
            v.extend_from_slice(&Bptr::NONE.to_bytes());
            v.extend_from_slice(&Self::NODES_UNKNOWN.to_be_bytes());
            return Self::decode(&v);
        }
        if b.len() != Self::SIZE {
            return Err(wrong_size("snapshot record", b.len(), Self::SIZE));
        }
        let mut r = Reader::new(b);
        Ok(TreeRec {
            nref: r.u32()?,
            nlbl: r.u32()?,
            ht: r.u32()?,
            flag: r.u32()?,
            gen: r.u64()?,
            pred: r.u64()?,
            succ: r.u64()?,
            base: r.u64()?,
            root: Bptr::read(&mut r)?,
            log: Bptr::read(&mut r)?,
            nodes: r.u64()?,
        })
    }
}

/// Label flag: the label moves with each commit of its tree.
pub const LABEL_MUTABLE: u32 = 1;

/// A label value (`KLABEL`): which snapshot, and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelVal {
    /// Snapshot id.
    pub id: u64,
    /// `LABEL_*` flags.
    pub flags: u32,
}

impl LabelVal {
    /// Encoded size.
    pub const SIZE: usize = 12;
}

impl Encode for LabelVal {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.put_u64(self.id);
        v.put_u32(self.flags);
        v
    }
}

impl Decode<'_> for LabelVal {
    /// Exactly [`LabelVal::SIZE`] bytes.
    fn decode(b: &[u8]) -> DecodeResult<LabelVal> {
        if b.len() != Self::SIZE {
            return Err(wrong_size("label value", b.len(), Self::SIZE));
        }
        let mut r = Reader::new(b);
        Ok(LabelVal {
            id: r.u64()?,
            flags: r.u32()?,
        })
    }
}

impl LabelVal {
    /// Whether the label moves.
    pub fn is_mutable(&self) -> bool {
        self.flags & LABEL_MUTABLE != 0
    }
}

/// A deadlist value (`KDLIST`): the newest and the oldest block of its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DlistVal {
    /// Newest block.
    pub head: Bptr,
    /// Oldest block.
    pub tail: Bptr,
}

impl DlistVal {
    /// Encoded size.
    pub const SIZE: usize = 48;
}

impl Encode for DlistVal {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.extend_from_slice(&self.head.to_bytes());
        v.extend_from_slice(&self.tail.to_bytes());
        v
    }
}

impl Decode<'_> for DlistVal {
    /// Exactly [`DlistVal::SIZE`] bytes.
    fn decode(b: &[u8]) -> DecodeResult<DlistVal> {
        if b.len() != Self::SIZE {
            return Err(wrong_size("deadlist value", b.len(), Self::SIZE));
        }
        let mut r = Reader::new(b);
        Ok(DlistVal {
            head: Bptr::read(&mut r)?,
            tail: Bptr::read(&mut r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BlockAddr, Gen};

    #[test]
    fn device_encoding() {
        let c = Device::new(false, 1, 3).unwrap();
        assert_eq!(c.encode(), 0x63_0010_0003);
        assert_eq!(Device::decode(c.encode()), Some(c));
        let b = Device::new(true, 4095, (1 << 20) - 1).unwrap();
        assert_eq!(b.encode(), 0x62_ffff_ffff);
        assert_eq!(Device::decode(b.encode()), Some(b));
        assert_eq!(Device::new(false, 4096, 0), None);
        assert_eq!(Device::new(false, 0, 1 << 20), None);
        for bad in [
            0,
            0x61_0000_0000,
            0x64_0000_0000,
            0x0162_0000_0000,
            u64::MAX,
        ] {
            assert_eq!(Device::decode(bad), None, "{bad:#x}");
        }
        let d = Xdir {
            mode: DMDEVICE | 0o600,
            length: c.encode(),
            ..Xdir::default()
        };
        assert_eq!((d.device(), d.size()), (Some(c), 0));
    }

    #[test]
    fn xdir_round_trip() {
        let d = Xdir {
            qid_path: 9,
            qid_vers: 2,
            qid_type: 0x80,
            mode: DMDIR | 0o775,
            mtime: 5,
            length: 77,
            uid: -1,
            gid: 3,
            muid: 0,
            ..Xdir::default()
        };
        let e = d.encode();
        assert_eq!(e.len(), Xdir::SIZE);
        assert_eq!(Xdir::decode(&e), Ok(d));
        assert_eq!(
            Xdir::decode(&e[1..]).map_err(|e| e.kind),
            Err(CorruptKind::Value)
        );
    }

    #[test]
    fn tree_round_trip() {
        let t = TreeRec {
            nref: 1,
            nlbl: 2,
            ht: 3,
            flag: 0,
            gen: 4,
            pred: TreeRec::NONE,
            succ: 6,
            base: 0,
            root: Bptr {
                addr: BlockAddr(16384),
                hash: 5,
                gen: Gen(4),
            },
            log: Bptr {
                addr: BlockAddr(32768),
                hash: 9,
                gen: Gen(4),
            },
            nodes: 7,
        };
        let e = t.encode();
        assert_eq!(e.len(), TreeRec::SIZE);
        assert_eq!(TreeRec::decode(&e), Ok(t));
        let l = LabelVal {
            id: 3,
            flags: LABEL_MUTABLE,
        };
        assert_eq!(LabelVal::decode(&l.encode()), Ok(l));
        let d = DlistVal {
            head: t.root,
            tail: Bptr::NONE,
        };
        assert_eq!(DlistVal::decode(&d.encode()), Ok(d));
    }
}
