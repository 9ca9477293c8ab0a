//! The administrative console: a Unix socket `NAME.cmd` beside the service, created mode 0600,
//! that refuses any peer whose uid (`SO_PEERCRED`) is not the server's own.
//!
//! Wire format: the client sends one command per line (see `parse`); the server answers each
//! with a header line `ok LEN` or `error LEN` and then exactly `LEN` bytes of text (or JSON).
//!
//! Wire format: the header word is `ok` (done), `error` (failed, or a check found problems)
//! or `unable` (could not be carried out: a check that cannot read the image); the client
//! exits 0, 1 or 2 accordingly.
//!
//! `check` on a live image (`scrub.rs`): the console commits, pins that commit
//! (`Store::pin_commit`: nothing it reaches is reused while pinned, and its superblocks are
//! captured) and checks it in parallel while the server goes on serving and committing.
//! `show check` shows the progress. The report lists every problem, each damaged block with
//! the files it takes with it, and a summary.

mod client;
pub mod parse;
mod run;
mod scrub;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::server::listen::{self, Accepted, Wakeable, Waker};
use crate::server::{Core, Stopper};

pub use client::{request, request_status, run_client, ClientOpts};
pub use parse::{parse, Command, Request, Show, HELP, MAX_LINE};
pub use run::{answer as answer_request, execute, Answer};
pub use scrub::{CheckView, ScrubState};

/// A running console listener.
#[derive(Debug)]
pub struct Handle {
    path: PathBuf,
    waker: Waker,
    accept: Option<JoinHandle<()>>,
}

impl Handle {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop listening and remove the socket.
    pub fn stop(mut self) {
        self.waker.wake();
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serve the console at `path`.
pub fn start(core: Arc<Core>, stopper: Stopper, path: PathBuf) -> io::Result<Handle> {
    let l = listen::bind_unix(&path, 0o600)?;
    l.set_nonblocking(true)?;
    let (waker, wake) = listen::waker()?;
    let me = rustix::process::getuid().as_raw();
    let accept = std::thread::Builder::new()
        .name("gefs-console".into())
        .spawn(move || accept_loop(core, stopper, l, me, wake))?;
    Ok(Handle {
        path,
        waker,
        accept: Some(accept),
    })
}

fn accept_loop(core: Arc<Core>, stopper: Stopper, l: UnixListener, me: u32, wake: Wakeable) {
    loop {
        let s = listen::accept(&l, &wake, listen::accept_unix);
        if core.stopping() {
            return;
        }
        let mut s = match s {
            Ok(Accepted::Conn(s)) => s,
            Ok(Accepted::Woken) => return,
            Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        let uid = rustix::net::sockopt::socket_peercred(&s)
            .ok()
            .map(|c| c.uid.as_raw());
        if uid != Some(me) {
            eprintln!("gefsd: console: refused a connection from uid {uid:?}");
            let _ = answer(
                &mut s,
                &Answer::Error("permission denied: the console is the owner's only".into()),
            );
            continue;
        }
        let (c, st) = (core.clone(), stopper.clone());
        let _ = std::thread::Builder::new()
            .name("gefs-console-conn".into())
            .spawn(move || serve(&c, &st, s));
    }
}

/// Write one framed answer.
fn answer(w: &mut impl Write, a: &Answer) -> io::Result<()> {
    let body = a.body();
    write!(w, "{} {}\n{body}", a.word(), body.len())?;
    w.flush()
}

/// Read one line of at most `MAX_LINE` bytes; `Ok(None)` at the end. A longer line is
/// consumed to its end and reported as `Err`.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        let mut skip = Vec::new();
        loop {
            skip.clear();
            let m = r.by_ref().take(64 * 1024).read_until(b'\n', &mut skip)?;
            if m == 0 || skip.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(Err(format!("line longer than {MAX_LINE} bytes"))));
    }
    Ok(Some(
        String::from_utf8(buf).map_err(|_| "line is not UTF-8".to_string()),
    ))
}

fn serve(core: &Arc<Core>, stopper: &Stopper, s: UnixStream) {
    let Ok(w) = s.try_clone() else { return };
    let mut w = w;
    let mut r = BufReader::new(s);
    while let Ok(Some(line)) = read_line(&mut r) {
        let out = match line.map(|l| parse(&l)) {
            Ok(Ok(None)) => Answer::Ok(String::new()),
            Ok(Ok(Some(req))) => run::answer(core, stopper, &req),
            Ok(Err(e)) | Err(e) => Answer::Error(e),
        };
        if answer(&mut w, &out).is_err() {
            return;
        }
    }
}
