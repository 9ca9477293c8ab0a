//! The real `gefsd` binary as a child process, for end-to-end tests.
//!
//! [`Daemon::start`] formats nothing: call [`format`] first (or reuse an image), then start
//! gefsd on it listening on `unix!DIR/9p.sock` and `tcp!127.0.0.1!0`; the TCP port the kernel
//! chose is read from gefsd's "serving" line. gefsd's standard error is collected in the
//! background (so the pipe never fills) and shown when something fails. The console is
//! reached through the `gefsd console` CLI client, as an administrator would.
//!
//! Dropping a [`Daemon`] that is still running SIGKILLs it, so a failed test leaves no
//! server behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::bin_path;

/// Format `image` (`gefs-mkfs -s SIZE -u ADMIN -f`), panicking on failure.
pub fn format(image: &Path, size: &str, admin: &str) {
    let out = Command::new(bin_path("gefs-mkfs"))
        .args(["-f", "-s", size, "-u", admin])
        .arg(image)
        .output()
        .expect("gefs-mkfs runs");
    assert!(
        out.status.success(),
        "gefs-mkfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `gefs-check` on `image`: its exit code and its standard output (one line per problem).
pub fn check(image: &Path) -> (Option<i32>, String) {
    let out = Command::new(bin_path("gefs-check"))
        .arg("-q")
        .arg(image)
        .output()
        .expect("gefs-check runs");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Run `gefs-check` on `image` and require exit 0.
pub fn check_clean(image: &Path) {
    let (code, text) = check(image);
    assert_eq!(code, Some(0), "gefs-check {}: {text}", image.display());
}

/// How to start gefsd.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `-m`: the block cache (empty: gefsd's default).
    pub cache: String,
    /// `-A`: attach as any user in the table.
    pub noauth: bool,
    /// More arguments.
    pub extra: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            cache: "64M".into(),
            noauth: true,
            extra: Vec::new(),
        }
    }
}

/// A running gefsd.
#[derive(Debug)]
pub struct Daemon {
    /// The image served.
    pub image: PathBuf,
    /// The Unix socket listener.
    pub sock: PathBuf,
    /// The TCP listener (loopback, a port the kernel chose).
    pub tcp: SocketAddr,
    /// The console socket.
    pub console: PathBuf,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Start gefsd on `image`, with its sockets in `dir`; wait until it serves.
    pub fn start(dir: &Path, image: &Path, o: &Opts) -> Daemon {
        Daemon::try_start(dir, image, o).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Daemon::start`], or gefsd's exit status and standard error if it exits before
    /// serving.
    pub fn try_start(dir: &Path, image: &Path, o: &Opts) -> Result<Daemon, String> {
        Daemon::try_start_env(dir, image, o, &[])
    }

    /// [`Daemon::try_start`] with more environment variables (e.g. `RUST_LOG`).
    pub fn try_start_env(
        dir: &Path,
        image: &Path,
        o: &Opts,
        env: &[(&str, &str)],
    ) -> Result<Daemon, String> {
        let sock = dir.join("9p.sock");
        // The long options, as a service unit or a script would write them.
        let mut args: Vec<String> = vec![
            "--image".into(),
            image.display().to_string(),
            "--listen".into(),
            format!("unix!{}", sock.display()),
            "--listen".into(),
            "tcp!127.0.0.1!0".into(),
        ];
        if !o.cache.is_empty() {
            args.extend(["--cache".into(), o.cache.clone()]);
        }
        if o.noauth {
            args.push("--no-auth".into());
        }
        args.extend(o.extra.iter().cloned());
        let mut child = Command::new(gefsd_path())
            .args(&args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gefsd");
        let err = child.stderr.take().expect("stderr piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                // The text and the JSON form of the "serving" event.
                if line.contains(": serving ") || line.contains("\"serving ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line.clone());
                    }
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let t0 = Instant::now();
        let line = loop {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
                break l;
            }
            if let Ok(Some(st)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "gefsd exited {st} before serving: {}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                ));
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "gefsd did not start"
            );
        };
        let tcp = line
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .find_map(|w| w.strip_prefix("tcp!127.0.0.1!"))
            .and_then(|p| p.parse::<u16>().ok())
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .unwrap_or_else(|| panic!("no TCP address in {line:?}"));
        Ok(Daemon {
            image: image.to_path_buf(),
            sock,
            tcp,
            console: dir.join("gefs.cmd"),
            child: Some(child),
            stderr,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything gefsd wrote to standard error so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `gefsd console --socket CONSOLE ARGS...`: success, standard output, standard error.
    pub fn console(&self, args: &[&str]) -> (bool, String, String) {
        console_at(&self.console, args)
    }

    /// A console command that must succeed; its output.
    pub fn console_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.console(args);
        assert!(ok, "console {args:?}: {out}{err}\n{}", self.log());
        out
    }

    /// `VmRSS` and `VmHWM` of the process, in bytes.
    pub fn rss(&self) -> Option<(u64, u64)> {
        proc_rss(self.pid())
    }

    /// The number of open file descriptors of the process.
    pub fn fds(&self) -> Option<usize> {
        proc_fds(self.pid())
    }

    /// SIGKILL the process and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Send `sig` to the process.
    pub fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pid) = i32::try_from(self.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// Wait for the process to exit (at most `limit`); its status.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let t0 = Instant::now();
        let c = self.child.as_mut().expect("running");
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                self.child = None;
                return st;
            }
            if t0.elapsed() > limit {
                let _ = c.kill();
                panic!("gefsd did not exit within {limit:?}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: gefsd commits and exits 0.
    pub fn stop(mut self) {
        self.signal(rustix::process::Signal::TERM);
        let st = self.wait(Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(50));
        assert!(st.success(), "gefsd exit {st}: {}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The gefsd binary [`Daemon::start`] runs: the workspace's, or the one `GEFS_TEST_GEFSD`
/// names (to measure an older build against the same test).
pub fn gefsd_path() -> PathBuf {
    std::env::var_os("GEFS_TEST_GEFSD").map_or_else(|| bin_path("gefsd"), PathBuf::from)
}

/// `gefsd console --socket PATH ARGS...`.
pub fn console_at(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin_path("gefsd"))
        .arg("console")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("gefsd console runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `VmRSS` and `VmHWM` of process `pid`, in bytes.
pub fn proc_rss(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let l = s.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = l.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The unit of the times in `/proc/PID/stat`: Linux reports them in `USER_HZ` ticks, 100 a
/// second on every architecture it runs on (`sysconf(_SC_CLK_TCK)`).
const USER_HZ: u64 = 100;

/// The CPU time (user and system) process `pid` has used so far.
pub fn proc_cpu(pid: u32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces: the
    // first is field 3 of proc_pid_stat(5), so utime (14) and stime (15) are the 12th and
    // 13th.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks.saturating_mul(1000) / USER_HZ))
}

/// The number of open file descriptors of process `pid`.
pub fn proc_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// A user name that is safe to use as the image's administrator.
pub const ADMIN: &str = "alice";

/// A client of gefsd's Unix socket `sock`, versioned at the default msize and attached to
/// `main` as [`ADMIN`] on fid 0.
pub fn attached(sock: &Path) -> gefsd::client::Client<std::os::unix::net::UnixStream> {
    let mut c = gefsd::client::Client::unix(sock).expect("connect");
    c.version(gefsd::proto::MSIZE_DEFAULT).expect("version");
    c.attach(0, ADMIN, "").expect("attach");
    c
}
