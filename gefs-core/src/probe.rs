//! Recognizing what a device already holds before formatting it: other
//! file systems, partition tables, encrypted and RAID volumes, swap.
//!
//! `gefs-mkfs` refuses a device that carries any of these unless forced,
//! and names what it found. The test is the well-known magic numbers at
//! their documented offsets (the ones `blkid` and the kernel use), read from
//! the first 512 KiB and the last 8 KiB of the device. A weak magic (two
//! bytes) is accepted only with a second field that makes sense, so that
//! random data is not taken for a file system.

use crate::device::{Device, DeviceExt};

/// Bytes read from the start of the device.
const HEAD: u64 = 512 << 10;

/// What `dev` holds, if it carries a known signature.
pub fn foreign(dev: &dyn Device) -> Option<&'static str> {
    let n = HEAD.min(dev.size());
    let mut head = vec![0u8; usize::try_from(n).ok()?];
    dev.read_bytes(&mut head, 0).ok()?;
    if let Some(what) = in_head(&head) {
        return Some(what);
    }
    // MD RAID superblock 1.0: 8 KiB from the end, 4 KiB aligned.
    let end = dev.size() & !4095;
    if end >= 8192 + HEAD {
        let mut b = [0u8; 4];
        if dev.read_bytes(&mut b, end - 8192).is_ok() && b == MD_MAGIC {
            return Some("Linux RAID member (md superblock 1.0)");
        }
    }
    None
}

/// `0xa92b4efc`, little-endian.
const MD_MAGIC: [u8; 4] = [0xfc, 0x4e, 0x2b, 0xa9];

fn at(b: &[u8], off: usize, want: &[u8]) -> bool {
    b.get(off..off + want.len()) == Some(want)
}

/// A little-endian `u32` (the byte order of the foreign formats probed; the
/// crate's lints keep `from_le_bytes` out of gefs-rs's own big-endian code).
fn u32le(b: &[u8], off: usize) -> Option<u32> {
    let x = b.get(off..off + 4)?;
    Some(x.iter().rev().fold(0u32, |a, &c| a << 8 | u32::from(c)))
}

/// The signatures found in the first bytes of a device, most specific
/// first (a FAT or NTFS boot sector also carries the MBR's `55 aa`).
fn in_head(b: &[u8]) -> Option<&'static str> {
    // The uberblock magic 0x00bab10c as stored by either byte order.
    const ZFS_LE: [u8; 8] = [0x0c, 0xb1, 0xba, 0, 0, 0, 0, 0];
    const ZFS_BE: [u8; 8] = [0, 0, 0, 0, 0, 0xba, 0xb1, 0x0c];
    let sig: &[(usize, &[u8], &'static str)] = &[
        (0, b"LUKS\xba\xbe", "LUKS encrypted volume"),
        (0, b"XFSB", "xfs"),
        (0, b"hsqs", "squashfs"),
        (0, b"sqsh", "squashfs"),
        (0x10040, b"_BHRfS_M", "btrfs"),
        (0x8001, b"CD001", "ISO 9660"),
        (3, b"NTFS    ", "NTFS"),
        (3, b"EXFAT   ", "exFAT"),
        (0, &MD_MAGIC, "Linux RAID member (md superblock 1.1)"),
        (4096, &MD_MAGIC, "Linux RAID member (md superblock 1.2)"),
        (1024, &[0x10, 0x20, 0xf5, 0xf2], "f2fs"),
        (0x10034, b"ReIsEr", "reiserfs"),
        (0x8000, b"JFS1", "jfs"),
        (512, b"EFI PART", "GPT partition table"),
        (4096, b"EFI PART", "GPT partition table"),
    ];
    for &(off, magic, what) in sig {
        if at(b, off, magic) {
            return Some(what);
        }
    }
    // ext2/3/4: magic 0xef53 at 1080, with a block size of 1 to 64 KiB.
    if at(b, 1080, &[0x53, 0xef]) && u32le(b, 1024 + 24).is_some_and(|l| l <= 6) {
        return Some("ext2/3/4");
    }
    for k in 0..4 {
        if at(b, 512 * k, b"LABELONE") && at(b, 512 * k + 24, b"LVM2 001") {
            return Some("LVM2 physical volume");
        }
    }
    for ps in [4096usize, 8192, 16384, 65536] {
        if at(b, ps - 10, b"SWAPSPACE2") || at(b, ps - 10, b"SWAP-SPACE") {
            return Some("swap");
        }
    }
    // ZFS: an uberblock (magic 0x00bab10c, either byte order) in the ring of
    // label 0 or label 1 (128 KiB into each 256 KiB label).
    for label in [0usize, 256 << 10] {
        for slot in (0..128 << 10).step_by(1024) {
            let o = label + (128 << 10) + slot;
            if at(b, o, &ZFS_LE) || at(b, o, &ZFS_BE) {
                return Some("ZFS");
            }
        }
    }
    if at(b, 510, &[0x55, 0xaa]) {
        let fat = at(b, 54, b"FAT12   ")
            || at(b, 54, b"FAT16   ")
            || at(b, 54, b"FAT     ")
            || at(b, 82, b"FAT32   ");
        if fat {
            return Some("FAT (vfat)");
        }
        // An MBR: a partition entry with a type and a valid boot flag.
        let part = (0..4).any(|i| {
            let e = 446 + 16 * i;
            b.get(e + 4).is_some_and(|&t| t != 0) && b.get(e).is_some_and(|&f| f & 0x7f == 0)
        });
        if part {
            return Some("MBR partition table");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_nothing_and_each_magic_is_named() {
        let blank = vec![0u8; HEAD as usize];
        assert_eq!(in_head(&blank), None);
        let mut b = blank.clone();
        b[1080] = 0x53;
        b[1081] = 0xef;
        assert_eq!(in_head(&b), Some("ext2/3/4"));
        b[1024 + 24] = 9;
        assert_eq!(in_head(&b), None, "an implausible block size is not ext");
        let mut b = blank.clone();
        b[510] = 0x55;
        b[511] = 0xaa;
        assert_eq!(in_head(&b), None, "55 aa alone is not a partition table");
        b[446 + 4] = 0x83;
        assert_eq!(in_head(&b), Some("MBR partition table"));
        b[82..90].copy_from_slice(b"FAT32   ");
        assert_eq!(in_head(&b), Some("FAT (vfat)"));
        let mut b = blank;
        b[(256 << 10) + (128 << 10) + 5 * 1024..][..8]
            .copy_from_slice(&0x00ba_b10cu64.to_be_bytes());
        assert_eq!(in_head(&b), Some("ZFS"));
    }
}
