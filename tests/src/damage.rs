//! Damaging an image on purpose, for the tests of what the checker and gefsd
//! report: where a tree's root is (from gefs-check's JSON report) and a
//! four-byte flip at an offset.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The root address of the tree labelled `label`, from gefs-check's `--json`
/// report.
pub fn root_of(report: &serde_json::Value, label: &str) -> u64 {
    report["trees"]
        .as_array()
        .expect("trees")
        .iter()
        .find(|t| {
            t["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == label))
        })
        .and_then(|t| t["root"].as_u64())
        .expect("tree root")
}

/// Flip four bytes of `img` at `off` (xor 0x5a).
pub fn flip(img: &Path, off: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open");
    let mut b = [0u8; 4];
    f.seek(SeekFrom::Start(off)).expect("seek");
    f.read_exact(&mut b).expect("read");
    for x in &mut b {
        *x ^= 0x5a;
    }
    f.seek(SeekFrom::Start(off)).expect("seek");
    f.write_all(&b).expect("write");
}
