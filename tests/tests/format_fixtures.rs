//! Format drift (issue 11): today's binaries open the pinned image of every format version
//! in `tests/fixtures/` (how each was made: `tests/fixtures/README.md`). Offline, gefs-check
//! finds it clean and gefs-dump reads back every byte, mode and time and the snapshot;
//! served, it takes a write and its first commit records the current version, after which
//! it is still clean and still holds the old files. A pinned version that this build no
//! longer reads must be refused by version, never misread.

use std::io::Read;
use std::path::{Path, PathBuf};

use gefs_core::format::FORMAT_VERSION;
use gefs_tests::cli::{bin, code, ok};
use gefs_tests::daemon::{check_clean, Daemon, Opts};
use gefsd::client::Client;
use gefsd::proto::omode;

/// Oldest format version this build reads (FORMAT.md §2, "Version semantics").
const OLDEST_READ: u32 = 1;
/// `2020-01-02 03:04:05 UTC`, every fixture file's mtime.
const MTIME: u64 = 1_577_934_245;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Unpack `format-vN.img.gz` into `dir`.
fn unpack(version: u32, dir: &Path) -> PathBuf {
    let gz = fixtures().join(format!("format-v{version}.img.gz"));
    let f = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut bytes)
        .expect("gunzip fixture");
    let img = dir.join(format!("v{version}.img"));
    std::fs::write(&img, bytes).expect("write image");
    img
}

/// The version field of superblock copy A (FORMAT.md §2: bytes 8..12, big-endian).
fn version_of(img: &Path) -> u32 {
    let mut head = [0u8; 12];
    std::fs::File::open(img)
        .and_then(|mut f| f.read_exact(&mut head))
        .expect("read superblock");
    u32::from_be_bytes([head[8], head[9], head[10], head[11]])
}

fn numbers() -> Vec<u8> {
    (1..=5000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn random_bin() -> Vec<u8> {
    std::fs::read(fixtures().join("content/docs/random.bin")).expect("fixture content")
}

/// Export `label` and compare it with what the fixture was made from.
fn assert_content(img: &Path, label: &str, version: u32, dir: &Path) {
    let out = dir.join(format!("export-{label}"));
    ok(bin("gefs-dump").arg(img).args(["export", label]).arg(&out));
    let hello = format!("hello, format version {version}\n");
    let files: [(&str, Vec<u8>, u32); 3] = [
        ("hello.txt", hello.into_bytes(), 0o644),
        ("docs/numbers.txt", numbers(), 0o640),
        ("docs/random.bin", random_bin(), 0o644),
    ];
    for (name, want, mode) in files {
        let p = out.join(name);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("{label}:{name}: {e}"));
        assert!(got == want, "{label}:{name}: {} bytes differ", got.len());
        let md = std::fs::metadata(&p).expect("metadata");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(md.mode() & 0o777, mode, "{label}:{name} mode");
        assert_eq!(md.mtime() as u64, MTIME, "{label}:{name} mtime");
    }
    let cat = ok(bin("gefs-dump")
        .arg(img)
        .args(["cat", "main", "/docs/numbers.txt"]));
    assert!(cat.as_bytes() == numbers(), "gefs-dump cat numbers.txt");
}

/// One pinned version, offline then served.
fn exercise(version: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(version, dir.path());
    assert_eq!(version_of(&img), version, "fixture's own version");
    if !(OLDEST_READ..=FORMAT_VERSION).contains(&version) {
        let (c, out) = code(bin("gefs-check").arg(&img));
        assert_eq!(c, Some(2), "v{version}: {out}");
        assert!(out.contains("format version"), "v{version}: {out}");
        return;
    }
    check_clean(&img);
    assert_content(&img, "main", version, dir.path());
    assert_content(&img, "frozen", version, dir.path());
    let labels = ok(bin("gefs-snap").arg(&img).arg("-l"));
    assert!(labels.contains("frozen"), "{labels}");

    // Served: a write, a commit, and the image is the current version.
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 16).expect("version");
    c.attach(0, "alice", "").expect("attach");
    c.walk(0, 1, &[]).expect("walk");
    c.create(1, "new.txt", 0o644, omode::OWRITE)
        .expect("create");
    c.write(1, 0, b"written by today's build\n").expect("write");
    c.clunk(1).expect("clunk");
    c.walk(0, 2, &["docs", "numbers.txt"])
        .expect("walk old file");
    c.open(2, omode::OREAD).expect("open old file");
    assert!(c.read_all(2).expect("read old file") == numbers());
    c.clunk(2).expect("clunk");
    drop(c);
    d.console_ok(&["sync"]);
    d.stop();
    assert_eq!(
        version_of(&img),
        FORMAT_VERSION,
        "v{version} after a commit"
    );
    check_clean(&img);
    assert_content(&img, "frozen", version, dir.path());
    let new = ok(bin("gefs-dump").arg(&img).args(["cat", "main", "/new.txt"]));
    assert_eq!(new, "written by today's build\n");
}

#[test]
fn every_pinned_format_version_opens_or_is_refused_by_version() {
    let mut seen = Vec::new();
    for e in std::fs::read_dir(fixtures()).expect("fixtures dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if let Some(v) = name
            .strip_prefix("format-v")
            .and_then(|s| s.strip_suffix(".img.gz"))
        {
            seen.push(v.parse::<u32>().expect("version in fixture name"));
        }
    }
    seen.sort_unstable();
    // Every version up to the current one has its image: a format change adds one.
    assert_eq!(
        seen,
        (1..=FORMAT_VERSION).collect::<Vec<_>>(),
        "tests/fixtures/ must pin every format version"
    );
    for v in seen {
        exercise(v);
    }
}
