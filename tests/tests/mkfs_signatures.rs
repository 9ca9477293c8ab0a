//! gefs-mkfs refuses, without `-f`, a file that holds another file system,
//! a partition table, a LUKS header or swap (issue 8, finding 7), naming what
//! it found; with `-f` it formats. Signatures are written byte by byte (the
//! CI machine has no mkfs tools); a real ext4 is tried too when `mkfs.ext4`
//! is installed.

use std::os::unix::fs::FileExt;
use std::path::Path;

use gefs_tests::cli::bin;

const SIZE: u64 = 40 << 20;

/// Bytes to write at offsets.
type Sig = Vec<(u64, Vec<u8>)>;

/// `x` little-endian, as the foreign formats store it (the workspace's lints
/// keep `to_le_bytes` out of gefs-rs's big-endian code).
fn le(x: u64, n: usize) -> Vec<u8> {
    (0..n).map(|i| (x >> (8 * i)) as u8).collect()
}

/// (what the message must name, [(offset, bytes)]).
fn signatures() -> Vec<(&'static str, Sig)> {
    let mut fat = vec![(3, b"MSDOS5.0".to_vec()), (510, vec![0x55, 0xaa])];
    fat.push((82, b"FAT32   ".to_vec()));
    let mut mbr = vec![(510, vec![0x55, 0xaa])];
    // One partition entry: type 0x83 from LBA 2048.
    let mut e = vec![0u8; 16];
    e[4] = 0x83;
    e[8..12].copy_from_slice(&le(2048, 4));
    e[12..16].copy_from_slice(&le(4096, 4));
    mbr.push((446, e));
    let mut gpt = mbr.clone();
    gpt[1].1[4] = 0xee;
    gpt.push((512, b"EFI PART".to_vec()));
    let zfs = vec![(128 << 10, le(0x00ba_b10c, 8))];
    vec![
        ("ext2/3/4", vec![(1080, vec![0x53, 0xef])]),
        ("xfs", vec![(0, b"XFSB".to_vec())]),
        ("btrfs", vec![(0x10040, b"_BHRfS_M".to_vec())]),
        ("FAT", fat),
        (
            "NTFS",
            vec![(3, b"NTFS    ".to_vec()), (510, vec![0x55, 0xaa])],
        ),
        (
            "exFAT",
            vec![(3, b"EXFAT   ".to_vec()), (510, vec![0x55, 0xaa])],
        ),
        ("ZFS", zfs),
        ("swap", vec![(4086, b"SWAPSPACE2".to_vec())]),
        ("LUKS", vec![(0, b"LUKS\xba\xbe\x00\x02".to_vec())]),
        ("MBR", mbr),
        ("GPT", gpt),
        ("ISO 9660", vec![(0x8001, b"CD001".to_vec())]),
        ("squashfs", vec![(0, b"hsqs".to_vec())]),
        (
            "LVM2",
            vec![(512, b"LABELONE".to_vec()), (536, b"LVM2 001".to_vec())],
        ),
        ("f2fs", vec![(1024, le(0xf2f5_2010, 4))]),
        ("Linux RAID", vec![(4096, le(0xa92b_4efc, 4))]),
    ]
}

fn mkfs(img: &Path, force: bool) -> (Option<i32>, String) {
    let mut c = bin("gefs-mkfs");
    if force {
        c.arg("-f");
    }
    let o = c.args(["-u", "alice"]).arg(img).output().expect("runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn foreign_signatures_are_refused_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sig) in signatures() {
        let img = dir.path().join(format!("{}.img", name.replace('/', "")));
        let f = std::fs::File::create(&img).expect("create");
        f.set_len(SIZE).expect("size");
        for (off, b) in &sig {
            f.write_all_at(b, *off).expect("write signature");
        }
        drop(f);
        let (code, err) = mkfs(&img, false);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains(name) && err.contains("-f"), "{name}: {err}");
        // Refused means untouched.
        let f = std::fs::File::open(&img).expect("open");
        for (off, b) in &sig {
            let mut got = vec![0u8; b.len()];
            f.read_exact_at(&mut got, *off).expect("read");
            assert_eq!(&got, b, "{name}: signature changed");
        }
        let (code, err) = mkfs(&img, true);
        assert_eq!(code, Some(0), "{name} with -f: {err}");
    }
}

#[test]
fn blank_and_random_files_are_formatted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blank = dir.path().join("blank.img");
    std::fs::File::create(&blank)
        .and_then(|f| f.set_len(SIZE))
        .expect("blank");
    assert_eq!(mkfs(&blank, false).0, Some(0));
    let noise = dir.path().join("noise.img");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&noise, bytes).expect("noise");
    let (code, err) = mkfs(&noise, false);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_real_ext4_is_refused_when_mkfs_ext4_exists() {
    let Some(tool) = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("mkfs.ext4 not installed: the byte-level signature test covers ext4");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("ext4.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(SIZE))
        .expect("create");
    let st = std::process::Command::new(tool)
        .args(["-q", "-F"])
        .arg(&img)
        .status()
        .expect("mkfs.ext4 runs");
    assert!(st.success());
    let (code, err) = mkfs(&img, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("ext2/3/4"), "{err}");
}
