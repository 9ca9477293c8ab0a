//! Between Plan 9's view of a file and POSIX's, for 9P2000.L: modes, open flags, directory
//! entry types and `Rgetattr` attributes.
//!
//! Modes: the permission bits are the same; set-user-id, set-group-id and sticky are the
//! 9P2000.u bits `DMSETUID`, `DMSETGID`, `DMSETVTX`; the file type comes from the kind bits
//! (`DMDIR`, `DMSYMLINK`, `DMDEVICE` with its device's type, `DMNAMEDPIPE`, `DMSOCKET`, else a
//! regular file); a device node's `rdev` is Linux's `new_encode_dev` of its numbers. Plan 9's append-only,
//! exclusive and temporary bits have no POSIX form and are kept out of sight: a POSIX chmod
//! leaves them as they are.
//!
//! Numbers a 9P2000 stat gives as names: uid and gid are the users table's ids ([`linux_id`],
//! [`table_id`]). A table id is a signed 32-bit number and `adm` is −1 in every new image,
//! but Linux keeps 4294967295 (`(uid_t)-1`) for "no id": the kernel shows a file with it as
//! its overflow id and denies even root its overriding powers over it
//! (`privileged_wrt_inode_uidgid` wants both ids mapped). So a negative id −n travels as
//! 4294967295 − n: adm's −1 is 4294967294. Ids 0 to 2147483647 travel as themselves. The
//! mapping is one to one between table ids above −2147483648 and Linux ids below 4294967295;
//! −2147483648 has no Linux form (it travels as 4294967295, which means no id), and
//! 4294967295 from a client names no user.
//! A directory's link count is 1, "not counted", as btrfs reports it (counting subdirectories
//! would cost a scan per stat; `find` knows 1 means "do not use the count").

use gefs_core::fs::BLKSZ_U64;
use gefs_core::fs::{self, ORDWR, OREAD, OTRUNC, OWRITE};
use gefs_core::fs::{
    Xdir, DMAPPEND, DMEXCL, DMKIND, DMNAMEDPIPE, DMSETGID, DMSETUID, DMSETVTX, DMSOCKET, DMSYMLINK,
    DMTMP,
};

use super::dir::qid;
use crate::proto::dotl::{getattr, Attr};

/// POSIX file-type bits (`S_IF*`).
pub mod ifmt {
    /// Mask of the type bits.
    pub const S_IFMT: u32 = 0o170_000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140_000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120_000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100_000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060_000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040_000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020_000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010_000;
}

use ifmt::*;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Linux open flags 9P2000.L carries (`P9_DOTL_*`).
pub mod oflags {
    /// Access mode mask.
    pub const O_ACCMODE: u32 = 0o3;
    /// Write only.
    pub const O_WRONLY: u32 = 0o1;
    /// Read and write.
    pub const O_RDWR: u32 = 0o2;
    /// Truncate.
    pub const O_TRUNC: u32 = 0o1000;
    /// Must be a directory.
    pub const O_DIRECTORY: u32 = 0o200_000;
}

/// Linux's "no id", `(uid_t)-1`: in `Tsetattr`, "leave it as it is".
pub const NO_ID: u32 = u32::MAX;

/// The Linux id (uid or gid) that carries users-table id `id` (module doc).
pub fn linux_id(id: i32) -> u32 {
    match u32::try_from(id) {
        Ok(n) => n,
        Err(_) if id == i32::MIN => NO_ID,
        Err(_) => id.cast_unsigned().wrapping_sub(1),
    }
}

/// The users-table id that Linux id `n` carries; `None` for [`NO_ID`] (module doc).
pub fn table_id(n: u32) -> Option<i32> {
    match i32::try_from(n) {
        Ok(id) => Some(id),
        Err(_) if n == NO_ID => None,
        Err(_) => Some(n.wrapping_add(1).cast_signed()),
    }
}

/// `AT_REMOVEDIR` of `Tunlinkat`.
pub const AT_REMOVEDIR: u32 = 0x200;

/// `V9FS_MAGIC`, the `f_type` of a 9P file system.
pub const V9FS_MAGIC: u32 = 0x0102_1997;

/// The POSIX mode of an entry, file type included.
pub fn mode_of(d: &Xdir) -> u32 {
    let ty = if d.is_dir() {
        S_IFDIR
    } else if d.mode & DMSYMLINK != 0 {
        S_IFLNK
    } else if d.is_device() {
        match d.device() {
            Some(v) if v.block => S_IFBLK,
            _ => S_IFCHR,
        }
    } else if d.mode & DMNAMEDPIPE != 0 {
        S_IFIFO
    } else if d.mode & DMSOCKET != 0 {
        S_IFSOCK
    } else {
        S_IFREG
    };
    let mut m = ty | (d.mode & 0o777);
    for (p9, px) in [
        (DMSETUID, S_ISUID),
        (DMSETGID, S_ISGID),
        (DMSETVTX, S_ISVTX),
    ] {
        if d.mode & p9 != 0 {
            m |= px;
        }
    }
    m
}

/// The Plan 9 permission and attribute bits of POSIX mode `mode` (its type bits ignored).
pub fn perm_of(mode: u32) -> u32 {
    let mut p = mode & 0o777;
    for (px, p9) in [
        (S_ISUID, DMSETUID),
        (S_ISGID, DMSETGID),
        (S_ISVTX, DMSETVTX),
    ] {
        if mode & px != 0 {
            p |= p9;
        }
    }
    p
}

/// The new Plan 9 mode of `d` after a POSIX chmod to `mode`: its kind and Plan 9-only bits
/// kept, the rest from `mode`.
pub fn chmod(d: &Xdir, mode: u32) -> u32 {
    (d.mode & (DMKIND | DMAPPEND | DMEXCL | DMTMP)) | perm_of(mode)
}

/// The `DT_*` type of an entry, for `Rreaddir`.
pub fn dirent_type(d: &Xdir) -> u8 {
    match mode_of(d) & S_IFMT {
        S_IFDIR => 4,
        S_IFLNK => 10,
        S_IFIFO => 1,
        S_IFSOCK => 12,
        S_IFBLK => 6,
        S_IFCHR => 2,
        _ => 8,
    }
}

/// The 9P open mode of Linux open `flags`, and whether the file must be a directory.
pub fn omode_of(flags: u32) -> (u8, bool) {
    let acc = match flags & oflags::O_ACCMODE {
        oflags::O_WRONLY => OWRITE,
        oflags::O_RDWR => ORDWR,
        _ => OREAD,
    };
    let trunc = if flags & oflags::O_TRUNC != 0 {
        OTRUNC
    } else {
        0
    };
    (acc | trunc, flags & oflags::O_DIRECTORY != 0)
}

/// The fields of `Rgetattr` this server fills.
pub const GETATTR_VALID: u64 = getattr::BASIC | getattr::DATA_VERSION;

/// Linux's `new_encode_dev`: the 32-bit device number v9fs decodes from `Rgetattr`'s `rdev`
/// (minor's low 8 bits, then 12 of major, then minor's upper 12 bits).
pub fn rdev(major: u32, minor: u32) -> u64 {
    u64::from((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12))
}

fn split_ns(ns: u64) -> (u64, u64) {
    (ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The attributes of entry value `d` (qid from it), with the fields `mask` asks for and this
/// server has (the others zero and not valid).
pub fn attr_of(d: &Xdir, mask: u64) -> Attr {
    let valid = mask & GETATTR_VALID;
    let want = |bit: u64| valid & bit != 0;
    let mut a = Attr {
        valid,
        qid: qid(fs::Qid::of(d)),
        ..Attr::default()
    };
    if want(getattr::MODE) {
        a.mode = mode_of(d);
    }
    if want(getattr::NLINK) {
        a.nlink = 1;
    }
    if want(getattr::UID) {
        a.uid = linux_id(d.uid);
    }
    if want(getattr::GID) {
        a.gid = linux_id(d.gid);
    }
    if want(getattr::RDEV) {
        a.rdev = d.device().map_or(0, |v| rdev(v.major, v.minor));
    }
    let size = d.size();
    if want(getattr::SIZE) {
        a.size = size;
    }
    if want(getattr::BLOCKS) {
        a.blksize = BLKSZ_U64;
        a.blocks = size.div_ceil(BLKSZ_U64) * (BLKSZ_U64 / 512);
    }
    if want(getattr::ATIME) {
        (a.atime_sec, a.atime_nsec) = split_ns(d.atime);
    }
    if want(getattr::MTIME) {
        (a.mtime_sec, a.mtime_nsec) = split_ns(d.mtime);
    }
    if want(getattr::CTIME) {
        (a.ctime_sec, a.ctime_nsec) = split_ns(d.change_time());
    }
    if want(getattr::DATA_VERSION) {
        a.data_version = u64::from(d.qid_vers);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use gefs_core::fs::DMDIR;

    #[test]
    fn device_numbers_as_linux_encodes_them() {
        // new_encode_dev(MKDEV(1, 3)) is 0x103; a minor past 8 bits moves up by 12.
        assert_eq!(rdev(1, 3), 0x103);
        assert_eq!(rdev(8, 0x12345), 0x1230_0845);
        assert_eq!(rdev(4095, 0xf_ffff), 0xffff_ffff);
        let d = |block, major, minor| Xdir {
            mode: gefs_core::fs::DMDEVICE | 0o640,
            length: gefs_core::fs::Device::new(block, major, minor)
                .unwrap()
                .encode(),
            ..Xdir::default()
        };
        assert_eq!(mode_of(&d(true, 8, 1)), S_IFBLK | 0o640);
        assert_eq!(mode_of(&d(false, 1, 3)), S_IFCHR | 0o640);
        assert_eq!(dirent_type(&d(true, 8, 1)), 6);
        let a = attr_of(&d(false, 1, 3), getattr::ALL);
        assert_eq!((a.rdev, a.size, a.blocks), (0x103, 0, 0));
    }

    #[test]
    fn modes_both_ways() {
        let d = |mode| Xdir {
            mode,
            ..Xdir::default()
        };
        assert_eq!(mode_of(&d(0o644)), S_IFREG | 0o644);
        assert_eq!(
            mode_of(&d(DMDIR | DMSETGID | 0o2775 & 0o777)),
            S_IFDIR | S_ISGID | 0o775
        );
        assert_eq!(mode_of(&d(DMSYMLINK | 0o777)), S_IFLNK | 0o777);
        assert_eq!(mode_of(&d(DMNAMEDPIPE | 0o600)), S_IFIFO | 0o600);
        assert_eq!(mode_of(&d(DMSOCKET | 0o600)), S_IFSOCK | 0o600);
        assert_eq!(
            mode_of(&d(DMAPPEND | DMSETUID | DMSETVTX | 0o755)),
            S_IFREG | 0o5755
        );
        assert_eq!(
            perm_of(S_IFREG | 0o7644),
            DMSETUID | DMSETGID | DMSETVTX | 0o644
        );
        assert_eq!(
            chmod(&d(DMDIR | DMAPPEND | 0o755), 0o1700),
            DMDIR | DMAPPEND | DMSETVTX | 0o700
        );
        assert_eq!(dirent_type(&d(DMDIR)), 4);
        assert_eq!(dirent_type(&d(DMSYMLINK)), 10);
        assert_eq!(dirent_type(&d(0)), 8);
        assert_eq!(omode_of(0o2_304_000), (OREAD, true));
        assert_eq!(omode_of(0x8241), (OWRITE | OTRUNC, false));
        assert_eq!(omode_of(2), (ORDWR, false));
    }

    #[test]
    fn ids_linux_can_represent() {
        for (id, n) in [
            (0, 0),
            (1000, 1000),
            (i32::MAX, 2_147_483_647),
            (-1, 4_294_967_294),
            (-2, 4_294_967_293),
            (i32::MIN + 1, 2_147_483_648),
        ] {
            assert_eq!(linux_id(id), n, "table id {id}");
            assert_eq!(table_id(n), Some(id), "Linux id {n}");
        }
        // One to one over everything but the two ends.
        for id in [i32::MIN + 1, -65_536, -3, 3, 65_534, i32::MAX - 1] {
            assert_eq!(table_id(linux_id(id)), Some(id));
        }
        assert_eq!(linux_id(i32::MIN), NO_ID);
        assert_eq!(table_id(NO_ID), None);
    }

    #[test]
    fn getattr_honours_the_mask() {
        let d = Xdir {
            mode: 0o640,
            length: 20_000,
            uid: 1000,
            gid: -1,
            atime: 5_000_000_001,
            mtime: 6_000_000_002,
            ctime: 7_000_000_003,
            qid_vers: 9,
            ..Xdir::default()
        };
        let a = attr_of(&d, getattr::ALL);
        assert_eq!(a.valid, GETATTR_VALID);
        assert_eq!(
            (a.mode, a.uid, a.gid, a.nlink),
            (S_IFREG | 0o640, 1000, 4_294_967_294, 1)
        );
        assert_eq!((a.size, a.blocks, a.blksize), (20_000, 64, 16_384));
        assert_eq!((a.atime_sec, a.atime_nsec), (5, 1));
        assert_eq!((a.mtime_sec, a.mtime_nsec), (6, 2));
        assert_eq!((a.ctime_sec, a.ctime_nsec), (7, 3));
        assert_eq!(a.data_version, 9);
        let m = attr_of(&d, getattr::SIZE | getattr::BTIME);
        assert_eq!(m.valid, getattr::SIZE);
        assert_eq!((m.size, m.mode, m.mtime_sec), (20_000, 0, 0));
    }
}
