//! Growing an image in place (issue 9): the power-cut harness over `Store::grow` — every
//! crash state of every flush epoch (prefixes, all-but-one, random subsets, 4 KiB tears,
//! every sector mask of each superblock write) opens as the old or the grown file system
//! with its contents unchanged, checks clean, and keeps working (a state left old grows when
//! the grow is run again) — and `gefs-mkfs --grow` through the real binaries: extending a
//! file with `-s`, growing into a file `truncate` extended, refusing a served image, and
//! refusing a grow that adds nothing.

use std::sync::Arc;

use gefs_core::device::{Device, MemDev, RecordingDev};
use gefs_core::format::superblock::Geometry;
use gefs_core::store::{Config, Store};
use gefs_tests::cli::{bin, code, ok};
use gefs_tests::daemon::{Daemon, Opts, ADMIN};
use gefs_tests::model::{apply, verify_state, workload_with, Model, State};
use gefs_tests::powercut::crash_images;

const OLD: u64 = 40 << 20;
const NEW: u64 = 72 << 20;

fn cfg(read_only: bool) -> Config {
    gefs_core::testing::config(4 << 20, read_only)
}

/// A formatted `OLD`-byte image with a workload of data and snapshots committed on it,
/// copied to the start of a `NEW`-byte device (as if its file had been extended); the
/// state it holds.
fn old_image(seed: u64) -> (MemDev, State, u64, Geometry) {
    let dev = Arc::new(MemDev::new(OLD));
    let opts = gefs_core::testing::format_opts(4 << 20);
    drop(Store::format(dev.clone(), &opts).expect("format"));
    let s = Store::open(dev.clone(), &cfg(false)).expect("open");
    let t = s.mount("main").expect("mount");
    let mut m = Model::start(&s, t).expect("model");
    for op in &workload_with(seed, 80, 8, &[]) {
        apply(&s, t, &mut m, op).expect("workload");
    }
    s.sync().expect("sync");
    let (gen, geo) = (s.commit_gen(), *s.geometry());
    drop(s);
    let big = MemDev::new(NEW);
    let mut buf = vec![0u8; 1 << 20];
    for off in (0..OLD).step_by(buf.len()) {
        dev.read_at(&mut buf, off).expect("read");
        big.write_at(&buf, off).expect("write");
    }
    (big, m.state(), gen, geo)
}

#[test]
fn grow_is_crash_safe_at_every_write() {
    let (mut states, mut unique, mut grown, mut old) = (0u64, 0u64, 0u64, 0u64);
    let mut violations = Vec::new();
    for seed in 1..=3u64 {
        let (big, want, gen, geo) = old_image(seed);
        let rec = Arc::new(RecordingDev::new(&big));
        let g = Store::grow(rec.clone()).expect("grow");
        assert_eq!(g.old, geo);
        assert!(g.added() >= 3, "{g:?}");
        let images = crash_images(&rec, gen, seed, 4000);
        unique += images.len() as u64;
        for (name, _, img) in images {
            states += 1;
            match verify(&img, &want, gen, &geo, &g.new) {
                Ok(true) => grown += 1,
                Ok(false) => old += 1,
                Err(v) => violations.push(format!("seed {seed}, {name}: {v}")),
            }
        }
    }
    println!(
        "grow power cuts: {states} crash states ({unique} distinct) over 3 grows: {old} opened \
         as the old file system, {grown} as the grown one; {} violations",
        violations.len()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert!(old > 0 && grown > 0, "both outcomes occur");
}

/// Check one crash image: it opens at the old commit (old layout) or the grow's (new
/// layout), holds `want`, checks clean, and takes new commits; an old one then grows.
/// `Ok(true)` when it had grown.
fn verify(
    img: &MemDev,
    want: &State,
    gen: u64,
    old: &Geometry,
    new: &Geometry,
) -> Result<bool, String> {
    let dev = Arc::new(img.snapshot());
    let s = Store::open(dev.clone(), &cfg(true)).map_err(|e| format!("does not open: {e}"))?;
    let grown = match (s.commit_gen(), s.geometry()) {
        (c, g) if c == gen && g == old => false,
        (c, g) if c == gen + 1 && g == new => true,
        (c, g) => return Err(format!("opened commit {c} with {g:?}")),
    };
    verify_state(&s, want)?;
    drop(s);
    let p = gefs_tests::checker::problems(&dev);
    if !p.is_empty() {
        return Err(format!("check: {}", p.join("; ")));
    }
    // Use it: a commit of more work, then (if still old) the grow again.
    let s = Store::open(dev.clone(), &cfg(false)).map_err(|e| e.to_string())?;
    let t = s.mount("main").map_err(|e| e.to_string())?;
    let mut m = Model {
        now: want.main.clone(),
        snaps: want.snaps.clone(),
        at: Default::default(),
    };
    let taken: Vec<String> = want.snaps.keys().cloned().collect();
    for op in &workload_with(0x9e0 ^ gen, 12, 4, &taken) {
        apply(&s, t, &mut m, op).map_err(|e| format!("{op:?}: {e}"))?;
    }
    s.sync().map_err(|e| e.to_string())?;
    drop(s);
    if !grown {
        let g = Store::grow(dev.clone()).map_err(|e| format!("grow again: {e}"))?;
        if g.new != *new {
            return Err(format!("grown again to {:?}", g.new));
        }
    }
    let s = Store::open(dev.clone(), &cfg(true)).map_err(|e| e.to_string())?;
    if s.geometry() != new {
        return Err(format!("ended with {:?}", s.geometry()));
    }
    verify_state(&s, &m.state())?;
    drop(s);
    let p = gefs_tests::checker::problems(&dev);
    if p.is_empty() {
        Ok(grown)
    } else {
        Err(format!("after use: {}", p.join("; ")))
    }
}

#[test]
fn mkfs_grow_through_the_binaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("a.txt"), b"kept across grows\n").expect("write");
    let img = dir.path().join("g.img");
    ok(bin("gefs-mkfs")
        .args(["-s", "64M", "-u", ADMIN, "--from"])
        .arg(&src)
        .arg(&img));
    // -s extends the file, then the file system grows into it.
    let out = ok(bin("gefs-mkfs").args(["--grow", "-s", "128M"]).arg(&img));
    assert!(
        out.contains("grew") && out.contains("8 to 16 arenas") && out.contains("128 MiB"),
        "{out}"
    );
    assert_eq!(std::fs::metadata(&img).expect("stat").len(), 128 << 20);
    ok(bin("gefs-check").arg("-q").arg(&img));
    let df: serde_json::Value =
        serde_json::from_str(&ok(bin("gefs-dump").arg("--json").arg(&img).arg("df")))
            .expect("json");
    assert!(df["size"].as_u64() > Some(120 << 20), "{df}");
    assert_eq!(df["arenas"].as_array().map(Vec::len), Some(16), "{df}");
    // A file extended by other means: --grow without -s uses its size.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open");
    f.set_len(200 << 20).expect("extend");
    drop(f);
    let out = ok(bin("gefs-mkfs").arg("--grow").arg(&img));
    assert!(
        out.contains("16 to 25 arenas") && out.contains("left for a later grow"),
        "{out}"
    );
    ok(bin("gefs-check").arg("-q").arg(&img));
    let cat = ok(bin("gefs-dump").arg(&img).args(["cat", "main", "/a.txt"]));
    assert_eq!(cat, "kept across grows\n");
    // Nothing to grow into, and a growth smaller than an arena: refused, image untouched.
    let (c, e) = code(bin("gefs-mkfs").arg("--grow").arg(&img));
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("no larger"), "{e}");
    let (c, e) = code(bin("gefs-mkfs").args(["--grow", "-s", "201M"]).arg(&img));
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("adds nothing") && e.contains("at least"), "{e}");
    let (c, e) = code(bin("gefs-mkfs").args(["--grow", "-s", "100M"]).arg(&img));
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("cannot shrink"), "{e}");
    ok(bin("gefs-check").arg("-q").arg(&img));
    // A served image: refused, with the image lock's message.
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let (c, e) = code(bin("gefs-mkfs").args(["--grow", "-s", "300M"]).arg(&img));
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("in use"), "{e}");
    d.stop();
    assert!(std::fs::metadata(&img).expect("stat").len() < 300 << 20);
    // Growing needs nothing else on the command line.
    let (c, e) = code(bin("gefs-mkfs").args(["--grow", "-u", "bob"]).arg(&img));
    assert_eq!(c, Some(2), "{e}");
}

/// A grow cut short after its first step leaves the old file system on a larger device, with
/// a copy of its superblock at the device's end (where readers look for copy B when copy A
/// does not decode). Used as it is, every commit must keep that copy current: every crash
/// state of later commits opens at the last acknowledged commit or the next, and so does
/// each with copy A destroyed (a power cut tears a superblock only within a 4 KiB sector, so
/// only damage makes copy A undecodable; the copy read then must not be the stale one).
#[test]
fn an_old_image_on_a_grown_device_survives_power_cuts() {
    let (big, st, _, _) = old_image(7);
    let mut sb = vec![0u8; 16384];
    big.read_at(&mut sb, 0).expect("read");
    big.write_at(&sb, NEW - 16384).expect("write");
    let rec = Arc::new(RecordingDev::new(&big));
    let s = Store::open(rec.clone(), &cfg(false)).expect("open");
    assert_eq!(s.geometry().dev_size, OLD);
    let first = s.commit_gen();
    let t = s.mount("main").expect("mount");
    let taken: Vec<String> = st.snaps.keys().cloned().collect();
    let mut m = Model {
        now: st.main.clone(),
        snaps: st.snaps.clone(),
        at: [(first, st)].into(),
    };
    for op in &workload_with(11, 40, 5, &taken) {
        apply(&s, t, &mut m, op).expect("workload");
        if matches!(op, gefs_tests::model::Op::Sync) {
            rec.mark(s.commit_gen());
        }
    }
    drop(s);
    let mut violations = Vec::new();
    let images = crash_images(&rec, first, 11, 3000);
    let damaged: Vec<(String, u64, MemDev)> = images
        .iter()
        .map(|(name, acked, img)| {
            let z = img.snapshot();
            z.write_at(&[0u8; 16384], 0).expect("write");
            (format!("{name}, copy A destroyed"), *acked, z)
        })
        .collect();
    for (name, acked, img) in images.iter().chain(&damaged) {
        let s = match Store::open(Arc::new(img.snapshot()), &cfg(true)) {
            Ok(s) => s,
            Err(e) => {
                violations.push(format!("{name}: does not open: {e}"));
                continue;
            }
        };
        let g = s.commit_gen();
        match m.at.get(&g) {
            Some(want) if g == *acked || g == acked + 1 => {
                if let Err(v) = verify_state(&s, want) {
                    violations.push(format!("{name}: commit {g}: {v}"));
                }
            }
            _ => violations.push(format!("{name}: opened commit {g}, acknowledged {acked}")),
        }
    }
    println!(
        "old image on a grown device: {} crash states (and each with copy A destroyed) over {} \
         commits, {} violations",
        images.len(),
        m.at.len(),
        violations.len()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
