//! gefs-snap through its real binary: list, take, fork, delete, settings,
//! retention passes, and refusing an image another process holds.

use gefs_tests::cli::{bin, code, ok};

fn labels(img: &std::path::Path) -> Vec<String> {
    let j: serde_json::Value =
        serde_json::from_str(&ok(bin("gefs-snap").arg("--json").arg(img).arg("-l"))).expect("json");
    j.as_array()
        .expect("array")
        .iter()
        .map(|l| l["name"].as_str().expect("name").to_string())
        .collect()
}

fn clean(img: &std::path::Path) {
    let out = bin("gefs-check").arg("-q").arg(img).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn take_fork_delete_and_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("s.img");
    ok(bin("gefs-mkfs")
        .args(["-s", "64M", "-u", "alice"])
        .arg(&img));
    assert_eq!(labels(&img), ["adm", "empty", "main"]);
    assert!(
        ok(bin("gefs-snap").arg(&img).args(["main", "monday"])).contains("labeled: main as monday")
    );
    assert!(ok(bin("gefs-snap").arg(&img).args(["-m", "monday", "scratch"])).contains("forked"));
    assert_eq!(labels(&img), ["adm", "empty", "main", "monday", "scratch"]);
    clean(&img);
    let (c, e) = code(bin("gefs-snap").arg(&img).args(["main", "monday"]));
    assert_eq!(c, Some(1));
    assert!(e.contains("already exists"), "{e}");
    for bad in [
        &["-d", "adm"][..],
        &["-d", "empty"],
        &["main", "dump"],
        &["-d", "nosuch"],
    ] {
        assert_eq!(
            code(bin("gefs-snap").arg(&img).args(bad)).0,
            Some(1),
            "{bad:?}"
        );
    }
    for bad in [
        &["-m"][..],
        &["-d"],
        &["-x", "a", "b"],
        &["set"],
        &["clear", "a", "b", "c"],
    ] {
        assert_ne!(
            code(bin("gefs-snap").arg(&img).args(bad)).0,
            Some(0),
            "{bad:?}"
        );
    }
    // main, and the last label of a mutable tree, take their files with them: -f.
    let (c, e) = code(bin("gefs-snap").arg(&img).args(["-d", "scratch"]));
    assert_eq!(c, Some(1), "{e}");
    assert!(
        e.contains("last label of a mutable tree") && e.contains("-f"),
        "{e}"
    );
    let (c, e) = code(bin("gefs-snap").arg(&img).args(["-d", "main"]));
    assert_eq!(c, Some(1), "{e}");
    assert!(e.contains("snap -d -f main"), "{e}");
    let (c, e) = code(bin("gefs-snap").arg(&img).args(["-d", "nosuch"]));
    assert_eq!(c, Some(1), "{e}");
    assert!(
        e.contains("label nosuch not found; labels: adm, empty, main, monday, scratch"),
        "{e}"
    );
    ok(bin("gefs-snap").arg(&img).args(["-d", "scratch", "-f"]));
    ok(bin("gefs-snap").arg(&img).args(["-d", "monday"]));
    assert_eq!(labels(&img), ["adm", "empty", "main"]);
    clean(&img);
}

#[test]
fn retention_reaches_a_steady_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ok(bin("gefs-mkfs")
        .args(["-s", "64M", "-u", "alice"])
        .arg(&img));
    ok(bin("gefs-snap").arg(&img).args(["set", "retain", ""]));
    ok(bin("gefs-snap")
        .arg(&img)
        .args(["set", "main", "retain", "3@1h 2@1d"]));
    assert_eq!(
        code(
            bin("gefs-snap")
                .arg(&img)
                .args(["set", "main", "retain", "3@1x"])
        )
        .0,
        Some(1)
    );
    let t0 = 1_800_000_000u64;
    for h in 0..60 {
        ok(bin("gefs-snap")
            .arg("--now")
            .arg((t0 + h * 3600).to_string())
            .arg(&img)
            .arg("retain"));
    }
    let l = labels(&img);
    let hourly = l.iter().filter(|x| x.starts_with("main@hour.")).count();
    let daily = l.iter().filter(|x| x.starts_with("main@day.")).count();
    assert_eq!((hourly, daily), (3, 2), "{l:?}");
    assert!(
        !l.iter().any(|x| x.starts_with("adm@")),
        "the global empty schedule disables adm's: {l:?}"
    );
    clean(&img);
    ok(bin("gefs-snap").arg(&img).args(["clear", "main", "retain"]));
    ok(bin("gefs-snap").arg(&img).args(["clear", "never-set"]));
}

#[test]
fn an_image_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("l.img");
    ok(bin("gefs-mkfs")
        .args(["-s", "64M", "-u", "alice"])
        .arg(&img));
    let held = gefs_core::device::FileDev::open(&img, gefs_core::device::OpenMode::ReadWrite)
        .expect("lock");
    let (c, e) = code(bin("gefs-snap").arg(&img).args(["main", "x"]));
    assert_eq!(c, Some(2));
    assert!(e.contains("in use by another process"), "{e}");
    let (c, e) = code(bin("gefs-mkfs").arg("-f").arg(&img));
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("in use"), "{e}");
    drop(held);
    ok(bin("gefs-snap").arg(&img).args(["main", "x"]));
}
