//! Crafted images against the real tools (issue 8, findings 1–3): hashes are
//! valid, the structure is hostile. Each tool must give a clean answer or a
//! clean error, within a time limit, and `gefs-dump export` must never write
//! outside its directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use gefs_core::format::key;
use gefs_core::format::msg::Msg;
use gefs_core::format::value::{LabelVal, TreeRec};
use gefs_core::format::{Decode, Encode};
use gefs_tests::cli::bin;
use gefs_tests::craft::{self, entry_msgs, xdir};

/// Long enough for any of these views on a 32 MiB image, short enough that a
/// hang fails the test instead of the run.
const LIMIT: Duration = Duration::from_secs(30);

fn run(tool: &str, img: &Path, args: &[&str]) -> Output {
    bin(tool)
        .arg(img)
        .args(args)
        .timeout(LIMIT)
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every path under `root`, relative, symbolic links not followed.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).expect("under root").to_path_buf());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out
}

/// A sandbox whose `a/b/out` is the export directory, with the image beside
/// `a`. Returns (sandbox, image, out).
fn sandbox() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let sb = tempfile::tempdir().expect("tempdir");
    let img = sb.path().join("img");
    let out = sb.path().join("a/b/out");
    (sb, img, out)
}

/// Nothing but `a/b` (and the image) outside `out`.
fn assert_confined(sb: &Path) {
    let outside: Vec<PathBuf> = tree(sb)
        .into_iter()
        .filter(|p| !p.starts_with("a/b/out"))
        .collect();
    let want: Vec<PathBuf> = ["a", "a/b", "img"].iter().map(PathBuf::from).collect();
    assert_eq!(outside, want, "export wrote outside its directory");
}

#[test]
fn export_of_an_entry_named_dotdot_stays_in_dir() {
    let (sb, img, out) = sandbox();
    // A name that sorts before "..", as in the finding; unique, so that a
    // regression that climbs to / cannot clobber anything real.
    let bait = format!("!gefs-escape-{}", std::process::id());
    let fs = craft::populated(&img);
    let who = craft::adm(&fs);
    let (m, root) = fs.attach("main").expect("attach");
    craft::file(&fs, &m, &root, bait.as_bytes(), b"escaped", &who);
    drop((m, root));
    let q = fs.store().next_qid();
    let mut msgs = entry_msgs(0, b"..", &xdir(q, true, 0));
    msgs.extend(entry_msgs(q, b"inside", &xdir(q + 1, false, 0)));
    craft::raw(&fs, "main", msgs);
    craft::finish(fs);

    let o = run(
        "gefs-dump",
        &img,
        &["export", "main", &out.to_string_lossy()],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("\"..\"") && err.contains("skipped"), "{err}");
    assert_confined(sb.path());
    let parent = sb.path().parent().expect("parent");
    assert!(
        !parent.join(&bait).exists(),
        "escaped to {}",
        parent.display()
    );
    assert!(!Path::new("/").join(&bait).exists(), "escaped to /");
    // The valid entries are exported.
    assert_eq!(std::fs::read(out.join(&bait)).expect("bait"), b"escaped");
    assert_eq!(std::fs::read(out.join("a")).expect("a"), b"abc");
    assert_eq!(
        std::fs::metadata(out.join("dir/b")).expect("b").len(),
        20 << 10
    );

    // ls shows the crafted entry itself, never the directory above it.
    let o = run("gefs-dump", &img, &["--json", "ls", "main", "/"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let dd = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == ".."))
        .expect("ls lists the entry named ..");
    assert_eq!(dd["qid"], q, "{v}");
}

#[test]
fn export_stops_at_a_directory_cycle() {
    let (sb, img, out) = sandbox();
    let fs = craft::populated(&img);
    // /dir/loop is the root directory again (qid 0).
    let dirq = {
        let (m, root) = fs.attach("main").expect("attach");
        let who = craft::adm(&fs);
        fs.walk(&m, &root, b"dir", &who).expect("dir").qid.path
    };
    craft::raw(&fs, "main", entry_msgs(dirq, b"loop", &xdir(0, true, 0)));
    craft::finish(fs);

    let o = run(
        "gefs-dump",
        &img,
        &["export", "main", &out.to_string_lossy()],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cycle"), "{err}");
    assert_confined(sb.path());
    let got = tree(&out);
    assert!(got.len() < 10, "{got:?}");
    assert!(got.contains(Path::new("dir/b")), "{got:?}");
}

#[test]
fn export_never_follows_a_planted_symlink() {
    let (sb, img, out) = sandbox();
    craft::finish(craft::populated(&img));
    let victim = sb.path().join("victim");
    let victim_dir = sb.path().join("victimdir");
    std::fs::write(&victim, b"keep").expect("victim");
    std::fs::create_dir(&victim_dir).expect("victim dir");
    std::fs::create_dir_all(&out).expect("out");
    std::os::unix::fs::symlink(&victim, out.join("a")).expect("symlink a");
    std::os::unix::fs::symlink(&victim_dir, out.join("dir")).expect("symlink dir");

    let o = run(
        "gefs-dump",
        &img,
        &["export", "main", &out.to_string_lossy()],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep");
    assert_eq!(tree(&victim_dir).len(), 0, "wrote through a symlink");
    let md = std::fs::symlink_metadata(out.join("a")).expect("a");
    assert!(
        md.file_type().is_symlink(),
        "the planted link is left alone"
    );
}

#[test]
fn export_keeps_the_holes_of_a_sparse_file() {
    use std::os::unix::fs::MetadataExt;
    let (_sb, img, out) = sandbox();
    let fs = craft::populated(&img);
    let who = craft::adm(&fs);
    let (m, root) = fs.attach("main").expect("attach");
    let e = craft::file(&fs, &m, &root, b"sparse", b"", &who);
    let o = fs.open(&m, &e, gefs_core::fs::ORDWR, &who).expect("open");
    fs.write(&o, 3 << 20, b"tail", &who).expect("write");
    let q = e.qid.path;
    drop((o, e, m, root));
    // Lengths that writing zeros would take hours over: 1 TiB (the host can
    // hold it sparse) and 2^62 (the host cannot hold it at all).
    let mut msgs = entry_msgs(0, b"sparse", &xdir(q, false, 1 << 40));
    let q2 = fs.store().next_qid();
    msgs.extend(entry_msgs(0, b"huge", &xdir(q2, false, 1 << 62)));
    craft::raw(&fs, "main", msgs);
    craft::finish(fs);

    let o = run(
        "gefs-dump",
        &img,
        &["export", "main", &out.to_string_lossy()],
    );
    let err = text(&o.stderr);
    assert!(o.status.code().is_some(), "killed: {err}");
    let md = std::fs::metadata(out.join("sparse")).expect("sparse exported");
    assert_eq!(md.len(), 1 << 40);
    assert!(
        md.blocks() * 512 <= 1 << 20,
        "{} blocks written",
        md.blocks()
    );
    let f = std::fs::File::open(out.join("sparse")).expect("open");
    let mut b = [0u8; 4];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, 3 << 20).expect("read");
    assert_eq!(&b, b"tail");
    assert!(
        err.contains("huge"),
        "the unrepresentable length is reported: {err}"
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
}

/// The record of the tree `label` names.
fn record(store: &gefs_core::store::Store, label: &str) -> TreeRec {
    let t = gefs_core::store::TreeId::SNAP;
    let lv = store
        .lookup(t, &key::label(label.as_bytes()))
        .expect("lookup")
        .expect("label");
    let lv = LabelVal::decode(&lv).expect("label value");
    let r = store.lookup(t, &key::snap(lv.id)).expect("lookup");
    TreeRec::decode(&r.expect("record")).expect("record value")
}

#[test]
fn a_label_that_is_not_utf8_does_not_hang_the_tools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("img");
    let fs = craft::populated(&img);
    let main = record(fs.store(), "main");
    let lv = LabelVal {
        id: main.gen,
        flags: 0,
    };
    craft::raw_snap(
        fs.store(),
        vec![Msg::insert(key::label(&[0xff]), lv.encode())],
    );
    craft::finish(fs);
    for args in [&["deadlist", "main"][..], &["snaps"], &["--json", "snaps"]] {
        let o = run("gefs-dump", &img, args);
        assert!(o.status.code().is_some(), "{args:?} hung");
    }
    let o = run("gefs-snap", &img, &["-l"]);
    assert!(o.status.code().is_some(), "gefs-snap -l hung");
    assert!(text(&o.stdout).contains("main"), "{}", text(&o.stdout));
    let o = run("gefs-check", &img, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("label"), "{}", text(&o.stdout));
}

#[test]
fn an_absurd_tree_height_is_a_clean_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("img");
    let fs = craft::populated(&img);
    let main = record(fs.store(), "main");
    let bad = TreeRec {
        ht: u32::MAX,
        ..main
    };
    craft::raw_snap(
        fs.store(),
        vec![Msg::insert(key::snap(main.gen), bad.encode())],
    );
    craft::finish(fs);
    for args in [
        &["tree", "main"][..],
        &["ls", "main"],
        &["cat", "main", "a"],
    ] {
        let o = run("gefs-dump", &img, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("height"), "{args:?}: {err}");
    }
    let o = run("gefs-check", &img, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
}

/// FORMAT.md §7: a null `KDAT` pointer is no block. The checker took it for
/// a hole while reads failed on it ("pointer outside the arenas"); found by
/// the image fuzzer (tests/image_fuzz.rs).
#[test]
fn a_null_data_pointer_reads_as_a_hole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("img");
    let fs = craft::populated(&img);
    let q = {
        let (m, root) = fs.attach("main").expect("attach");
        let who = craft::adm(&fs);
        let d = fs.walk(&m, &root, b"dir", &who).expect("dir");
        fs.walk(&m, &d, b"b", &who).expect("b").qid.path
    };
    let none = gefs_core::format::Bptr::NONE.to_bytes().to_vec();
    craft::raw(&fs, "main", vec![Msg::insert(key::dat(q, 0), none)]);
    craft::finish(fs);
    let o = run("gefs-check", &img, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = run("gefs-dump", &img, &["cat", "main", "/dir/b"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(o.stdout.len(), 20 << 10);
    assert!(
        o.stdout[..16384].iter().all(|&x| x == 0),
        "the hole reads as zeros"
    );
    let want: Vec<u8> = (16384..20 << 10).map(|i| (i % 251) as u8).collect();
    assert_eq!(&o.stdout[16384..], &want[..]);
}

/// A device node (format version 4): `gefs-check` accepts a valid one and reports a bad
/// encoding as damage; `gefs-dump ls` shows its kind and numbers; `gefs-dump export` never
/// makes one on the host, and says so on standard error.
#[test]
fn device_nodes_are_checked_listed_and_never_exported() {
    use gefs_core::format::value::{Device, DMDEVICE};
    let (sb, img, out) = sandbox();
    let fs = craft::populated(&img);
    let who = craft::adm(&fs);
    let (m, root) = fs.attach("main").expect("attach");
    let dev = Device::new(false, 1, 3).expect("device");
    fs.make(
        &m,
        &root,
        b"null",
        gefs_core::fs::Kind::Device(dev),
        0o666,
        None,
        &who,
    )
    .expect("mknod");
    drop((m, root));
    craft::finish(fs);

    let o = run("gefs-check", &img, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = run("gefs-dump", &img, &["ls", "main", "/", "--json"]);
    let ls = text(&o.stdout);
    assert!(
        ls.contains("\"c0666\"") && ls.contains("\"1,3\""),
        "ls shows the kind and numbers: {ls}"
    );
    let o = run(
        "gefs-dump",
        &img,
        &["export", "main", &out.to_string_lossy()],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("/null: character device 1,3"),
        "the device is named on stderr: {err}"
    );
    assert!(out.join("a").exists(), "the files are exported");
    assert!(
        std::fs::symlink_metadata(out.join("null")).is_err(),
        "no device node on the host"
    );
    assert_confined(sb.path());

    // A device entry whose length field is no device encoding is damage.
    let (_sb2, img, _) = sandbox();
    let fs = craft::populated(&img);
    let q = fs.store().next_qid();
    let mut x = xdir(q, false, 0x64_0000_0000);
    x.mode = DMDEVICE | 0o600;
    craft::raw(&fs, "main", entry_msgs(0, b"bad", &x));
    craft::finish(fs);
    let o = run("gefs-check", &img, &[]);
    let report = text(&o.stdout) + &text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(report.contains("no valid device"), "{report}");
}
