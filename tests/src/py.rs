//! The independent Python 9P2000 clients the end-to-end tests drive gefsd with, each in its
//! own virtual environment (both install a top-level package named `py9p`):
//!
//! - [`Py::Python9p`]: PyPI `python-9p`, a synchronous multiplexed client over plan9port's
//!   codec (`py9p.Client`), which can also send raw messages;
//! - [`Py::P9fs`]: PyPI `p9fs`, an fsspec file system over its own `py9p` package.
//!
//! [`python`] creates `<target>/py/venv-<name>` on first use (`python3 -m venv`, falling back
//! to `virtualenv` when the interpreter has no `ensurepip`), installs the pinned packages with
//! pip, and marks the environment ready; later calls, from any thread or process, find it
//! ready. `GEFS_PYTHON` names another interpreter than `python3`. The scripts live in
//! `tests/py/`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One of the Python clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Py {
    /// PyPI `python-9p`.
    Python9p,
    /// PyPI `p9fs` (with fsspec).
    P9fs,
}

impl Py {
    /// The environment's name.
    pub fn name(self) -> &'static str {
        match self {
            Py::Python9p => "python-9p",
            Py::P9fs => "p9fs",
        }
    }

    /// The pinned requirements.
    pub fn requirements(self) -> &'static [&'static str] {
        match self {
            Py::Python9p => &["python-9p==0.1.0"],
            Py::P9fs => &["p9fs==0.0.4", "fsspec==2026.9.0"],
        }
    }

    /// Both clients.
    pub fn all() -> [Py; 2] {
        [Py::Python9p, Py::P9fs]
    }
}

/// The target directory of this test executable (`<target>/<profile>/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// The directory of the virtual environments: `<target>/py`.
pub fn venv_root() -> PathBuf {
    target_dir().join("py")
}

/// The directory of the Python scripts (`tests/py`).
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py")
}

fn interpreter() -> String {
    std::env::var("GEFS_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(c: &mut Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn create_venv(dir: &Path) -> Result<(), String> {
    let py = interpreter();
    let first = run(
        Command::new(&py).arg("-m").arg("venv").arg(dir),
        "python3 -m venv",
    );
    if first.is_ok() && dir.join("bin/python").exists() {
        return Ok(());
    }
    // No ensurepip (Debian's python3 without python3-venv): virtualenv from PyPI.
    let _ = std::fs::remove_dir_all(dir);
    if run(
        Command::new(&py).args(["-m", "virtualenv", "--version"]),
        "virtualenv",
    )
    .is_err()
    {
        run(
            Command::new(&py).args([
                "-m",
                "pip",
                "install",
                "--user",
                "--disable-pip-version-check",
                "-q",
                "virtualenv",
            ]),
            "pip install --user virtualenv",
        )
        .map_err(|e| format!("{}\n{e}", first.err().unwrap_or_default()))?;
    }
    run(
        Command::new(&py).arg("-m").arg("virtualenv").arg(dir),
        "python3 -m virtualenv",
    )
}

/// The interpreter of `client`'s environment, created and installed if needed.
pub fn python(client: Py) -> PathBuf {
    static LOCAL: Mutex<()> = Mutex::new(());
    let _g = LOCAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = venv_root();
    std::fs::create_dir_all(&root).expect("create target/py");
    // Other test processes may be doing the same: one at a time.
    let lock = File::create(root.join(".lock")).expect("lock file");
    lock.lock().expect("lock target/py");
    let dir = root.join(format!("venv-{}", client.name()));
    let ready = dir.join(".gefs-ready");
    let want = client.requirements().join(" ");
    let bin = dir.join("bin/python");
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(want.as_str()) && bin.exists() {
        return bin;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let t0 = Instant::now();
    let result = create_venv(&dir).and_then(|()| {
        run(
            Command::new(&bin)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                .args(client.requirements()),
            &format!("pip install {want}"),
        )
    });
    if let Err(e) = result {
        panic!(
            "cannot set up the Python environment {} (needs python3 with venv or pip, and \
             PyPI): {e}",
            dir.display()
        );
    }
    std::fs::write(&ready, &want).expect("mark the environment ready");
    eprintln!(
        "py: created {} ({want}) in {:.1} s",
        dir.display(),
        t0.elapsed().as_secs_f64()
    );
    bin
}

/// A command running `tests/py/SCRIPT` with `client`'s interpreter.
pub fn command(client: Py, script: &str) -> Command {
    let mut c = Command::new(python(client));
    c.arg(scripts().join(script))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("GEFS_CLIENT", client.name());
    c
}

/// Spawn `c` with piped standard output and error.
pub fn spawn(c: &mut Command) -> Child {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python")
}

/// Start `worker.py` as `user` over `addr` (`unix:PATH` or `tcp:HOST:PORT`): worker `id`, with
/// files of its own under `dir` and shared ones under `shared`, plus `extra` arguments. Returns
/// once it printed its ready line (connected and attached; waiting for `go` on its standard
/// input), with that line.
pub fn start_worker(
    client: Py,
    addr: &str,
    user: &str,
    id: u32,
    dir: &str,
    extra: &[&str],
) -> (Child, String) {
    let id = id.to_string();
    let mut c = command(client, "worker.py");
    c.args([
        "--addr", addr, "--user", user, "--id", &id, "--dir", dir, "--shared", "shared",
    ])
    .args(extra);
    let mut child = spawn(&mut c);
    let mut line = String::new();
    let out = child.stdout.as_mut().expect("worker stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)
        .expect("worker ready line");
    (child, line)
}

/// Wait for `child` at most `limit` (then kill it); its output.
pub fn wait(child: Child, limit: Duration) -> Output {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => {
            let _ = h.join();
            r.expect("wait for python")
        }
        Err(_) => {
            // Kill the one process this test started, by its id.
            if let Some(pid) = i32::try_from(id)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let out = rx
                .recv_timeout(Duration::from_secs(10))
                .ok()
                .and_then(Result::ok);
            panic!(
                "python did not finish within {limit:?}: {}",
                out.map(|o| format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ))
                .unwrap_or_default()
            );
        }
    }
}

/// Run `c` to completion within `limit`; require exit 0; its standard output. Its standard
/// error is passed through to the test's output.
pub fn run_ok(c: &mut Command, limit: Duration) -> String {
    let out = wait(spawn(c), limit);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "python failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// The last line of `out` that parses as JSON.
pub fn last_json(out: &str) -> serde_json::Value {
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .unwrap_or_else(|| panic!("no JSON line in the output:\n{out}"))
}
