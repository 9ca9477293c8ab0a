//! Running the workspace's binaries from tests.
//!
//! `cargo test` builds only the binaries of the package under test, so the
//! first call builds every workspace binary in the target directory and
//! profile this test was built in (a no-op when they are up to date), and
//! every later call returns the built binary.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Once;

use assert_cmd::Command;

/// The target directory and profile of this test executable
/// (`<target>/<profile>/deps/<test>`).
fn target_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile name")
        .to_string();
    let target = profile_dir.parent().expect("target dir").to_path_buf();
    (target, profile)
}

/// The path of workspace binary `name`, built if needed.
pub fn bin_path(name: &str) -> PathBuf {
    static ONCE: Once = Once::new();
    let (target, profile) = target_profile();
    ONCE.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = std::process::Command::new(cargo);
        c.args(["build", "--quiet", "--workspace", "--bins"])
            .env("CARGO_TARGET_DIR", &target);
        if profile == "release" {
            c.arg("--release");
        }
        let st = c.status().expect("cargo runs");
        assert!(st.success(), "building the workspace's binaries failed");
    });
    target.join(profile).join(name)
}

/// A command running workspace binary `name`.
pub fn bin(name: &str) -> Command {
    Command::new(bin_path(name))
}

/// Run `c`, require success, return its standard output.
pub fn ok(c: &mut Command) -> String {
    let out = c.output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `c`; its exit code and standard error.
pub fn code(c: &mut Command) -> (Option<i32>, String) {
    let out: Output = c.output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Open the image file at `path`, waiting up to 5 s while it is "in use": flock locks
/// belong to the open file description, so a child that another test thread forked while
/// this test held the image open keeps the lock until it execs.
pub fn open_image(path: &Path, mode: gefs_core::device::OpenMode) -> gefs_core::device::FileDev {
    let t0 = std::time::Instant::now();
    loop {
        match gefs_core::device::FileDev::open(path, mode) {
            Ok(d) => return d,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && t0.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("open {}: {e}", path.display()),
        }
    }
}
