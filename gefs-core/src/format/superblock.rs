//! The superblock and the device geometry it records.
//!
//! Two identical copies live in the first and the last block of the device.
//! Each carries its own xxh3-64 checksum over its used bytes; the copy with the
//! higher `commit_gen` whose checksum (and, at open, whose roots) verify wins.
//! Allocation-log tails live in the superblock's arena table, so a commit
//! rewrites exactly two blocks in place: copy A, then (after a flush) copy B.
//!
//! The field offsets are one chain of constants (`OFF_*`, each the previous
//! plus its field's size) that [`Superblock::encode`] writes at and
//! [`Superblock::decode`] reads from. Decoding classifies a copy: not ours
//! ([`Error::NotGefs`]), newer than this build ([`Error::Version`]),
//! damaged ([`Error::Checksum`], or a [`DecodeError`] turned into
//! [`Error::Corrupt`] at the copy's address).

use super::codec::{get_u32, get_u64, set_u32, set_u64, DecodeError, DecodeResult};
use super::{block_hash, Bptr, BLKSZ, BLKSZ_U64, FORMAT_VERSION, PTRSZ};
use crate::error::{CorruptKind, Error, Result};
use crate::ids::BlockAddr;

/// The magic string at offset 0. Its first two bytes, "ge", double as the
/// superblock's type tag.
pub const MAGIC: [u8; 8] = *b"gefs-rs\0";
/// Most arenas a device may have.
pub const MAX_ARENAS: u32 = 255;
/// Fewest arenas mkfs creates.
pub const MIN_ARENAS: u64 = 8;
/// Most arenas mkfs creates.
pub const MAX_MKFS_ARENAS: u64 = 32;
/// Smallest device mkfs accepts.
pub const MIN_DEVICE: u64 = 32 << 20;
/// Deepest tree any reader will descend.
pub const MAX_HEIGHT: u32 = 32;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = OFF_MAGIC + MAGIC.len();
const OFF_BLKSZ: usize = OFF_VERSION + 4;
const OFF_NARENA: usize = OFF_BLKSZ + 4;
const OFF_SNAPHT: usize = OFF_NARENA + 4;
const OFF_FLAGS: usize = OFF_SNAPHT + 4;
const OFF_COMMIT: usize = OFF_FLAGS + 8;
const OFF_NEXTGEN: usize = OFF_COMMIT + 8;
const OFF_NEXTQID: usize = OFF_NEXTGEN + 8;
const OFF_DEVSIZE: usize = OFF_NEXTQID + 8;
const OFF_ASTART: usize = OFF_DEVSIZE + 8;
const OFF_ASIZE: usize = OFF_ASTART + 8;
const OFF_SNAPROOT: usize = OFF_ASIZE + 8;
/// Where the arena table starts.
pub const OFF_ARENAS: usize = OFF_SNAPROOT + super::PTRSZ;
/// Size of one arena record.
pub const ARENA_REC: usize = ARENA_RESERVED + 8;
// The fields of arena record, from its start.
const ARENA_TAIL: usize = 0;
const ARENA_NBLOCKS: usize = ARENA_TAIL + PTRSZ;
const ARENA_FREE: usize = ARENA_NBLOCKS + 8;
const ARENA_RESERVED: usize = ARENA_FREE + 8;

const _: () = assert!(OFF_ARENAS == 104 && ARENA_REC == 48);
const _: () = assert!(OFF_ARENAS + ARENA_REC * MAX_ARENAS as usize + 8 <= BLKSZ);

/// Where the arenas lie on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes of the device in use: a multiple of the block size; copy B of the
    /// superblock is its last block.
    pub dev_size: u64,
    /// Address of arena 0.
    pub arena_start: u64,
    /// Bytes per arena (a multiple of the block size).
    pub arena_size: u64,
    /// Number of arenas.
    pub narena: u32,
}

impl Geometry {
    /// The layout mkfs gives a device of `len` bytes: the usable space between
    /// the two superblocks split into 8 to 32 equal arenas (one per 4 TiB).
    pub fn for_device(len: u64) -> Result<Geometry> {
        let dev_size = len / BLKSZ_U64 * BLKSZ_U64;
        if dev_size < MIN_DEVICE {
            return Err(Error::Invalid(format!(
                "an image of {} is smaller than the minimum, {}: give a size of at least {}M",
                crate::units::human(len),
                crate::units::human(MIN_DEVICE),
                MIN_DEVICE >> 20
            )));
        }
        let usable = dev_size - 2 * BLKSZ_U64;
        let narena = usable.div_ceil(4 << 40).clamp(MIN_ARENAS, MAX_MKFS_ARENAS);
        let arena_size = usable / narena / BLKSZ_U64 * BLKSZ_U64;
        Ok(Geometry {
            dev_size,
            arena_start: BLKSZ_U64,
            arena_size,
            narena: narena as u32,
        })
    }

    /// Address of superblock copy B.
    pub fn sb_b(&self) -> BlockAddr {
        BlockAddr(self.dev_size - BLKSZ_U64)
    }

    /// First address of arena `i`.
    pub fn arena_base(&self, i: u32) -> u64 {
        self.arena_start + u64::from(i) * self.arena_size
    }

    /// Whether `addr` lies in some arena (no division: for every read).
    pub fn in_arenas(&self, addr: BlockAddr) -> bool {
        addr.0 >= self.arena_start
            && addr.0 - self.arena_start < u64::from(self.narena).saturating_mul(self.arena_size)
    }

    /// The arena holding `addr`, if any.
    pub fn arena_of(&self, addr: BlockAddr) -> Option<u32> {
        if addr.0 < self.arena_start {
            return None;
        }
        let i = (addr.0 - self.arena_start) / self.arena_size;
        (i < u64::from(self.narena)).then_some(i as u32)
    }

    /// Blocks per arena.
    pub fn arena_blocks(&self) -> u64 {
        self.arena_size / BLKSZ_U64
    }

    fn validate(&self) -> DecodeResult<()> {
        let b = BLKSZ_U64;
        let bad = |what: String| Err(DecodeError::new(CorruptKind::Header, what));
        if !self.dev_size.is_multiple_of(b)
            || !self.arena_size.is_multiple_of(b)
            || self.arena_start != b
        {
            return bad("geometry not block aligned".into());
        }
        if self.narena == 0 || self.narena > MAX_ARENAS {
            return bad(format!("bad arena count {}", self.narena));
        }
        if self.arena_size < 16 * b {
            return bad(format!("arena size {} too small", self.arena_size));
        }
        let end = u64::from(self.narena)
            .checked_mul(self.arena_size)
            .and_then(|x| x.checked_add(self.arena_start));
        match end {
            Some(end) if end <= self.dev_size.saturating_sub(b) => Ok(()),
            _ => bad("arenas overrun the device".into()),
        }
    }
}

/// One arena's entry in the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaRec {
    /// The last block of the arena's allocation log (the chain runs backwards
    /// from here to the first block through each block's `prev` pointer).
    pub log_tail: Bptr,
    /// Number of blocks in the log chain.
    pub log_blocks: u64,
    /// Free blocks in the arena as of this commit (a cross-check for replay).
    pub free_blocks: u64,
}

/// The decoded superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The format version the copy was written with ([`Superblock::decode`]); `encode`
    /// always writes [`FORMAT_VERSION`].
    pub version: u32,
    /// Where things are.
    pub geometry: Geometry,
    /// Commit sequence number; the newer of two valid copies wins.
    pub commit_gen: u64,
    /// Next generation number to hand out.
    pub nextgen: u64,
    /// Next qid path to hand out.
    pub nextqid: u64,
    /// Feature flags (none defined; must be 0).
    pub flags: u64,
    /// Root of the snapshot tree.
    pub snap_root: Bptr,
    /// Height of the snapshot tree (1 = a single leaf).
    pub snap_height: u32,
    /// One record per arena.
    pub arenas: Vec<ArenaRec>,
}

impl Superblock {
    /// Number of bytes the encoding uses, checksum included.
    pub fn encoded_len(narena: u32) -> usize {
        OFF_ARENAS + ARENA_REC * narena as usize + 8
    }

    /// Encode into a full block (the unused tail is zero).
    pub fn encode(&self) -> Box<[u8; BLKSZ]> {
        let mut b = Box::new([0u8; BLKSZ]);
        let g = &self.geometry;
        let buf = &mut b[..];
        if let Some(m) = buf.get_mut(OFF_MAGIC..OFF_VERSION) {
            m.copy_from_slice(&MAGIC);
        }
        set_u32(buf, OFF_VERSION, FORMAT_VERSION);
        set_u32(buf, OFF_BLKSZ, BLKSZ as u32);
        set_u32(buf, OFF_NARENA, g.narena);
        set_u32(buf, OFF_SNAPHT, self.snap_height);
        set_u64(buf, OFF_FLAGS, self.flags);
        set_u64(buf, OFF_COMMIT, self.commit_gen);
        set_u64(buf, OFF_NEXTGEN, self.nextgen);
        set_u64(buf, OFF_NEXTQID, self.nextqid);
        set_u64(buf, OFF_DEVSIZE, g.dev_size);
        set_u64(buf, OFF_ASTART, g.arena_start);
        set_u64(buf, OFF_ASIZE, g.arena_size);
        set_ptr(buf, OFF_SNAPROOT, &self.snap_root);
        for (i, a) in self.arenas.iter().enumerate() {
            let at = OFF_ARENAS + i * ARENA_REC;
            set_ptr(buf, at + ARENA_TAIL, &a.log_tail);
            set_u64(buf, at + ARENA_NBLOCKS, a.log_blocks);
            set_u64(buf, at + ARENA_FREE, a.free_blocks);
            set_u64(buf, at + ARENA_RESERVED, 0);
        }
        let len = Self::encoded_len(self.arenas.len() as u32);
        let h = block_hash(buf.get(..len - 8).unwrap_or_default());
        set_u64(buf, len - 8, h);
        b
    }

    /// Decode and validate one copy read from `addr`.
    pub fn decode(buf: &[u8], addr: BlockAddr) -> Result<Superblock> {
        if buf.len() < OFF_ARENAS + 8 || buf.get(OFF_MAGIC..OFF_VERSION) != Some(&MAGIC[..]) {
            return Err(Error::NotGefs {
                why: format!("superblock at {addr}: bad magic"),
            });
        }
        let version = get_u32(buf, OFF_VERSION).unwrap_or(0);
        if version > FORMAT_VERSION {
            return Err(Error::Version { found: version });
        }
        let narena = get_u32(buf, OFF_NARENA).unwrap_or(0);
        if version != 0 && narena != 0 && narena <= MAX_ARENAS {
            let len = Self::encoded_len(narena);
            let sum = get_u64(buf, len - 8);
            let actual = block_hash(buf.get(..len - 8).unwrap_or_default());
            if let Some(expected) = sum.filter(|&s| s != actual) {
                return Err(Error::Checksum {
                    addr,
                    expected,
                    actual,
                });
            }
        }
        Self::decode_fields(buf).map_err(|e| e.at(addr))
    }

    /// Decode the fields of a copy whose magic, version and checksum
    /// [`Superblock::decode`] has checked.
    fn decode_fields(buf: &[u8]) -> DecodeResult<Superblock> {
        let bad = |kind, what: String| Err(DecodeError::new(kind, what));
        let u32_at = |off| get_u32(buf, off).ok_or_else(|| short("superblock"));
        let u64_at = |off| get_u64(buf, off).ok_or_else(|| short("superblock"));
        let ptr_at = |off: usize| Bptr::from_slice(buf.get(off..).unwrap_or_default());
        let version = u32_at(OFF_VERSION)?;
        if version == 0 {
            return bad(CorruptKind::Header, "superblock version 0".into());
        }
        let blksz = u32_at(OFF_BLKSZ)?;
        let narena = u32_at(OFF_NARENA)?;
        if narena == 0 || narena > MAX_ARENAS {
            return bad(CorruptKind::Count, format!("bad arena count {narena}"));
        }
        if blksz as usize != BLKSZ {
            return bad(
                CorruptKind::Header,
                format!("block size {blksz} is not {BLKSZ}"),
            );
        }
        let snap_height = u32_at(OFF_SNAPHT)?;
        let flags = u64_at(OFF_FLAGS)?;
        let geometry = Geometry {
            dev_size: u64_at(OFF_DEVSIZE)?,
            arena_start: u64_at(OFF_ASTART)?,
            arena_size: u64_at(OFF_ASIZE)?,
            narena,
        };
        geometry.validate()?;
        if flags != 0 {
            return bad(
                CorruptKind::Header,
                format!("unknown feature flags {flags:#x}"),
            );
        }
        if snap_height == 0 || snap_height > MAX_HEIGHT {
            return bad(
                CorruptKind::Level,
                format!("bad snapshot tree height {snap_height}"),
            );
        }
        let snap_root = ptr_at(OFF_SNAPROOT)?;
        let mut arenas = Vec::with_capacity(narena as usize);
        for i in 0..narena {
            let at = OFF_ARENAS + i as usize * ARENA_REC;
            let log_tail = ptr_at(at + ARENA_TAIL)?;
            let log_blocks = u64_at(at + ARENA_NBLOCKS)?;
            let free_blocks = u64_at(at + ARENA_FREE)?;
            if log_tail.is_none() || geometry.arena_of(log_tail.addr) != Some(i) {
                return bad(
                    CorruptKind::Pointer,
                    format!("arena {i}: log tail {} outside the arena", log_tail.addr),
                );
            }
            if free_blocks > geometry.arena_blocks() || log_blocks == 0 {
                return bad(CorruptKind::Count, format!("arena {i}: bad counts"));
            }
            arenas.push(ArenaRec {
                log_tail,
                log_blocks,
                free_blocks,
            });
        }
        if snap_root.is_none() || geometry.arena_of(snap_root.addr).is_none() {
            return bad(
                CorruptKind::Pointer,
                "snapshot tree root outside the arenas".into(),
            );
        }
        Ok(Superblock {
            version,
            geometry,
            commit_gen: u64_at(OFF_COMMIT)?,
            nextgen: u64_at(OFF_NEXTGEN)?,
            nextqid: u64_at(OFF_NEXTQID)?,
            flags,
            snap_root,
            snap_height,
            arenas,
        })
    }
}

fn short(what: &str) -> DecodeError {
    DecodeError::new(CorruptKind::Truncated, format!("{what} truncated"))
}

fn set_ptr(buf: &mut [u8], off: usize, p: &Bptr) {
    if let Some(dst) = buf.get_mut(off..off + PTRSZ) {
        dst.copy_from_slice(&p.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Gen;

    fn sample() -> Superblock {
        let g = Geometry::for_device(64 << 20).unwrap();
        let arenas = (0..g.narena)
            .map(|i| ArenaRec {
                log_tail: Bptr {
                    addr: BlockAddr(g.arena_base(i)),
                    hash: 1,
                    gen: Gen(1),
                },
                log_blocks: 1,
                free_blocks: 10,
            })
            .collect();
        Superblock {
            version: FORMAT_VERSION,
            geometry: g,
            commit_gen: 3,
            nextgen: 4,
            nextqid: 5,
            flags: 0,
            snap_root: Bptr {
                addr: BlockAddr(g.arena_base(0) + BLKSZ_U64),
                hash: 2,
                gen: Gen(0),
            },
            snap_height: 1,
            arenas,
        }
    }

    #[test]
    fn round_trip() {
        let sb = sample();
        let enc = sb.encode();
        assert_eq!(Superblock::decode(&enc[..], BlockAddr(0)).unwrap(), sb);
    }

    #[test]
    fn geometry() {
        let g = Geometry::for_device((1 << 30) + 5).unwrap();
        assert_eq!(g.narena, 8);
        assert_eq!(g.dev_size, 1 << 30);
        assert!(g.arena_base(7) + g.arena_size <= g.sb_b().0);
        assert_eq!(g.arena_of(BlockAddr(g.arena_base(3))), Some(3));
        assert_eq!(g.arena_of(BlockAddr(0)), None);
        assert!(Geometry::for_device(1 << 20).is_err());
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let enc = sample().encode();
        let len = Superblock::encoded_len(8);
        for bit in 0..len * 8 {
            let mut b = enc.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Superblock::decode(&b[..], BlockAddr(0)).is_err(),
                "bit {bit}"
            );
        }
    }

    /// Reference defect §13.2 #32: `blksz` and `bufspc` were never checked on
    /// load. Ours rejects a superblock whose block size is not ours, even
    /// with a valid checksum.
    #[test]
    fn regress_32_block_size_is_validated() {
        let mut b = sample().encode();
        b[OFF_BLKSZ..OFF_BLKSZ + 4].copy_from_slice(&8192u32.to_be_bytes());
        let len = Superblock::encoded_len(8);
        let h = block_hash(&b[..len - 8]);
        b[len - 8..len].copy_from_slice(&h.to_be_bytes());
        let e = Superblock::decode(&b[..], BlockAddr(0)).unwrap_err();
        assert!(e.to_string().contains("block size 8192"), "{e}");
    }

    #[test]
    fn newer_version_is_distinguished() {
        let mut b = sample().encode();
        b[OFF_VERSION + 3] = 9;
        assert!(matches!(
            Superblock::decode(&b[..], BlockAddr(0)),
            Err(Error::Version { found: 9 })
        ));
    }
}
