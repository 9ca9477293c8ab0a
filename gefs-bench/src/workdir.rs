//! Where the benchmarks put their image and database files: a temporary
//! directory, removed afterwards, on a real disk.

use std::path::{Path, PathBuf};

use crate::BenchResult;

/// The default parent directory: `$CARGO_TARGET_DIR`, else `./target` if
/// it exists, else the current directory. Never the system temporary
/// directory, which is often a tmpfs.
pub fn default_parent() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let t = PathBuf::from("target");
    if t.is_dir() {
        t
    } else {
        PathBuf::from(".")
    }
}

/// The file system type of the mount holding `dir` (Linux
/// `/proc/self/mounts`; the longest mount point that prefixes it).
pub fn fs_type(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let mut f = l.split_whitespace();
        let (Some(_dev), Some(mp), Some(ty)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mp = mp.replace("\\040", " ");
        if dir.starts_with(&mp) && best.as_ref().is_none_or(|(n, _)| mp.len() > *n) {
            best = Some((mp.len(), ty.to_string()));
        }
    }
    best.map(|(_, t)| t)
}

/// A fresh temporary directory under `parent` (created if needed).
pub fn create(parent: &Path) -> BenchResult<tempfile::TempDir> {
    std::fs::create_dir_all(parent)?;
    Ok(tempfile::Builder::new()
        .prefix("gefs-bench-")
        .tempdir_in(parent)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_type_for_the_root() {
        if Path::new("/proc/self/mounts").exists() {
            assert!(fs_type(Path::new("/")).is_some());
        }
        let d = create(&std::env::temp_dir()).unwrap();
        assert!(d.path().is_dir());
    }
}
