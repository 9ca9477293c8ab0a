//! T16: two users with different permissions (three: the files' owner, a member and leader of
//! their group, and someone else), through the real gefsd and python-9p. The administrator
//! adds the users to adm's `/users` through the `adm` attach, the table is reloaded with
//! `gefsd console users`, and `tests/py/perm_matrix.py` tries reads, writes, truncations,
//! creates, removes, renames, walks, listings and every kind of wstat as each user against
//! files and directories of many modes, comparing each answer with the one it computes from
//! Plan 9's rules (written out in the script), not with the implementation's.

use std::time::Duration;

use gefs_tests::cli::bin_path;
use gefs_tests::daemon::{self, Daemon, Opts, ADMIN};
use gefs_tests::py::{self, Py};

#[test]
fn permission_matrix_of_three_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "256M", ADMIN);
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let addr = format!("unix:{}", d.sock.display());
    let limit = Duration::from_secs(300);
    let out = py::run_ok(
        py::command(Py::Python9p, "perm_matrix.py").args(["setup", "--addr", &addr]),
        limit,
    );
    assert_eq!(py::last_json(&out)["phase"], "setup");
    let reload = d.console_ok(&["users"]);
    assert!(reload.contains("7 loaded"), "{reload}");
    let shown = d.console_ok(&["show", "users"]);
    assert!(shown.contains("100:staff:alice:alice,bob"), "{shown}");
    let out = py::run_ok(
        py::command(Py::Python9p, "perm_matrix.py")
            .args(["run", "--addr", &addr, "--gefsd"])
            .arg(bin_path("gefsd"))
            .arg("--console")
            .arg(&d.console),
        limit,
    );
    let v = py::last_json(&out);
    eprintln!("permission matrix: {v}");
    assert_eq!(v["mismatches"], 0, "{v}");
    assert!(v["checks"].as_u64().unwrap_or(0) >= 500, "{v}");
    // Both answers occur often: the matrix is not all-allow or all-deny.
    assert!(v["allowed"].as_u64().unwrap_or(0) >= 150, "{v}");
    assert!(v["denied"].as_u64().unwrap_or(0) >= 150, "{v}");
    d.stop();
    daemon::check_clean(&img);
}
