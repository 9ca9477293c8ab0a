//! T10–T12, T15, T17 through a real socket to the real gefsd: bad input, table-driven. Each
//! case must be answered with Rerror or a closed connection, while a probe client
//! (`tests/py/probe.py`, python-9p, on its own connection) doing stat + read in a loop is
//! never refused, never disconnected and never stalled for long. The abusive side is gefsd's
//! own Rust client (raw frames where Python's clients refuse to encode them).
//!
//! After the cases: the server is alive, `gefsd console check` says ok, the image still
//! takes writes, gefsd's descriptor count is back to its baseline, and `gefs-check` passes
//! after the stop. (The codec and server fuzz targets and their corpus replays are in
//! `tests/fuzz/` and `gefsd/tests/*corpus*`.)

// Hand-built frames: 9P2000 is little-endian on the wire (intro(5)), as gefsd's codec allows.
#![allow(clippy::little_endian_bytes)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, Daemon, Opts, ADMIN};
use gefs_tests::py::{self, Py};
use gefsd::client::{Client, ClientError};
use gefsd::proto::{encode_t, omode, Rmsg, Tmsg, NOFID, NOTAG};

type C = Client<TcpStream>;

fn raw(a: SocketAddr) -> C {
    let s = TcpStream::connect(a).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let _ = s.set_nodelay(true);
    Client::new(s)
}

fn versioned(a: SocketAddr, msize: u32) -> C {
    let mut c = raw(a);
    c.version(msize).expect("version");
    c
}

fn attached(a: SocketAddr) -> C {
    let mut c = versioned(a, 1 << 16);
    c.attach(0, ADMIN, "").expect("attach");
    c
}

fn frame(tag: u16, m: &Tmsg) -> Vec<u8> {
    let mut v = Vec::new();
    encode_t(tag, m, &mut v).expect("encode");
    v
}

/// A frame of type `ty` and tag `tag` around `body`, with the right size.
fn framed(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 7) as u32).to_le_bytes().to_vec();
    v.push(ty);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// A Twalk of `names` built by hand (the encoder refuses more than 16).
fn walk_frame(tag: u16, fid: u32, newfid: u32, names: &[&str]) -> Vec<u8> {
    let mut b = fid.to_le_bytes().to_vec();
    b.extend_from_slice(&newfid.to_le_bytes());
    b.extend_from_slice(&(names.len() as u16).to_le_bytes());
    for n in names {
        b.extend_from_slice(&(n.len() as u16).to_le_bytes());
        b.extend_from_slice(n.as_bytes());
    }
    framed(110, tag, &b)
}

/// How a bad request was answered.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Answer {
    Rerror,
    Closed,
}

/// The next reply must be an Rerror, or the connection must close.
fn rerror_or_closed(c: &mut C) -> Result<Answer, String> {
    match c.recv() {
        Ok((_, Rmsg::Error { .. })) => Ok(Answer::Rerror),
        Ok((tag, r)) => Err(format!("answered {} (tag {tag})", r.name())),
        Err(ClientError::Closed | ClientError::Decode(_)) => Ok(Answer::Closed),
        Err(ClientError::Io(e)) if e.kind() != std::io::ErrorKind::WouldBlock => Ok(Answer::Closed),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

/// The next reply must be an Rerror (the connection goes on).
fn rerror(c: &mut C) -> Result<Answer, String> {
    match rerror_or_closed(c)? {
        Answer::Rerror => Ok(Answer::Rerror),
        Answer::Closed => Err("closed instead of Rerror".into()),
    }
}

/// After an Rerror the connection still serves.
fn still_serves(c: &mut C) -> Result<(), String> {
    c.rpc(Tmsg::Stat { fid: 0 })
        .map(|_| ())
        .map_err(|e| format!("connection no longer serves: {e}"))
}

fn send(c: &mut C, b: &[u8]) {
    let _ = c.send_raw(b);
}

type Case = (&'static str, fn(SocketAddr) -> Result<Answer, String>);

fn version_frame(msize: u32) -> Vec<u8> {
    frame(
        NOTAG,
        &Tmsg::Version {
            msize,
            version: "9P2000".into(),
        },
    )
}

const CASES: &[Case] = &[
    ("truncated frame, then EOF", |a| {
        let mut c = versioned(a, 8192);
        let mut f = 100u32.to_le_bytes().to_vec();
        f.extend_from_slice(&[116, 1, 0, 0, 0, 0, 0]);
        send(&mut c, &f);
        let _ = c.stream().shutdown(Shutdown::Write);
        rerror_or_closed(&mut c)
    }),
    ("truncated field inside a frame (Tclunk, 2-byte fid)", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &framed(120, 1, &[5, 0]));
        rerror_or_closed(&mut c)
    }),
    ("trailing bytes after a Tstat", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &framed(124, 1, &[0, 0, 0, 0, 9, 9, 9]));
        rerror_or_closed(&mut c)
    }),
    ("oversized frame: a Twrite larger than msize", |a| {
        let mut c = attached_small(a);
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Write {
                    fid: 0,
                    offset: 0,
                    data: vec![0; 9000],
                },
            ),
        );
        rerror_or_closed(&mut c)
    }),
    ("frame size 0xFFFFFFFF", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &u32::MAX.to_le_bytes());
        rerror_or_closed(&mut c)
    }),
    ("frame size 6 (below the header)", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &[6, 0, 0, 0, 124, 1]);
        rerror_or_closed(&mut c)
    }),
    ("frame size 0", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &[0, 0, 0, 0]);
        rerror_or_closed(&mut c)
    }),
    ("Tversion msize 0", |a| zero_msize(a, 0)),
    ("Tversion msize 1", |a| zero_msize(a, 1)),
    ("Tversion msize 100", |a| zero_msize(a, 100)),
    ("unknown type 200", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &framed(200, 1, &[]));
        rerror_or_closed(&mut c)
    }),
    ("type 0", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &framed(0, 1, &[1, 2, 3]));
        rerror_or_closed(&mut c)
    }),
    ("an R-message sent to the server (Rversion)", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &framed(101, 1, &[0, 32, 0, 0, 0, 0]));
        rerror_or_closed(&mut c)
    }),
    ("Terror", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &framed(106, 1, &[]));
        rerror_or_closed(&mut c)
    }),
    ("Tattach before Tversion", |a| {
        let mut c = raw(a);
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Attach {
                    fid: 0,
                    afid: NOFID,
                    uname: ADMIN.into(),
                    aname: String::new(),
                },
            ),
        );
        rerror_or_closed(&mut c)
    }),
    ("Twalk before Tattach", |a| {
        let mut c = versioned(a, 8192);
        send(&mut c, &walk_frame(1, 0, 1, &[]));
        rerror(&mut c)
    }),
    ("Tread before Topen", |a| {
        let mut c = attached(a);
        c.walk(0, 1, &["probe"]).map_err(|e| e.to_string())?;
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Read {
                    fid: 1,
                    offset: 0,
                    count: 100,
                },
            ),
        );
        let r = rerror(&mut c)?;
        still_serves(&mut c).map(|()| r)
    }),
    ("Twrite on an OREAD fid", |a| {
        let mut c = attached(a);
        c.walk(0, 1, &["probe"]).map_err(|e| e.to_string())?;
        c.open(1, omode::OREAD).map_err(|e| e.to_string())?;
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Write {
                    fid: 1,
                    offset: 0,
                    data: b"x".to_vec(),
                },
            ),
        );
        rerror(&mut c)
    }),
    ("Topen of an open fid", |a| {
        let mut c = attached(a);
        c.walk(0, 1, &["probe"]).map_err(|e| e.to_string())?;
        c.open(1, omode::OREAD).map_err(|e| e.to_string())?;
        send(&mut c, &frame(1, &Tmsg::Open { fid: 1, mode: 0 }));
        rerror(&mut c)
    }),
    ("Twalk from an open fid", |a| {
        let mut c = attached(a);
        c.walk(0, 1, &[]).map_err(|e| e.to_string())?;
        c.open(1, omode::OREAD).map_err(|e| e.to_string())?;
        send(&mut c, &walk_frame(1, 1, 2, &["probe"]));
        rerror(&mut c)
    }),
    ("Tclunk of an unknown fid", |a| {
        let mut c = attached(a);
        send(&mut c, &frame(1, &Tmsg::Clunk { fid: 77 }));
        rerror(&mut c)
    }),
    ("Tattach on a fid in use", |a| {
        let mut c = attached(a);
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Attach {
                    fid: 0,
                    afid: NOFID,
                    uname: ADMIN.into(),
                    aname: String::new(),
                },
            ),
        );
        rerror(&mut c)
    }),
    ("Tauth", |a| {
        let mut c = versioned(a, 8192);
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Auth {
                    afid: 5,
                    uname: ADMIN.into(),
                    aname: String::new(),
                },
            ),
        );
        rerror(&mut c)
    }),
    ("Tattach with a uname that is not UTF-8", |a| {
        let mut c = versioned(a, 8192);
        let mut b = 0u32.to_le_bytes().to_vec();
        b.extend_from_slice(&NOFID.to_le_bytes());
        b.extend_from_slice(&[2, 0, 0xff, 0xfe, 0, 0]);
        send(&mut c, &framed(104, 1, &b));
        rerror_or_closed(&mut c)
    }),
    ("Tcreate of a name with a slash", |a| {
        let mut c = attached(a);
        c.walk(0, 1, &[]).map_err(|e| e.to_string())?;
        send(
            &mut c,
            &frame(
                1,
                &Tmsg::Create {
                    fid: 1,
                    name: "a/b".into(),
                    perm: 0o644,
                    mode: 0,
                },
            ),
        );
        rerror(&mut c)
    }),
    ("a 17-element walk", |a| {
        let mut c = attached(a);
        let names = ["x"; 17];
        send(&mut c, &walk_frame(1, 0, 1, &names));
        rerror_or_closed(&mut c)
    }),
    ("a 16-element walk of missing names", |a| {
        let mut c = attached(a);
        send(&mut c, &walk_frame(1, 0, 1, &["nosuch"; 16]));
        let r = rerror(&mut c)?;
        still_serves(&mut c).map(|()| r)
    }),
    ("duplicate tag in flight (20 large writes, one tag)", |a| {
        let mut c = attached(a);
        c.walk(0, 1, &[]).map_err(|e| e.to_string())?;
        c.create(1, "duptag", 0o666, omode::ORDWR)
            .map_err(|e| e.to_string())?;
        let mut batch = Vec::new();
        for i in 0..20u64 {
            batch.extend(frame(
                7,
                &Tmsg::Write {
                    fid: 1,
                    offset: i << 16,
                    data: vec![1; 60_000],
                },
            ));
        }
        send(&mut c, &batch);
        for _ in 0..21 {
            match c.recv() {
                Ok((_, Rmsg::Error { .. })) => return Ok(Answer::Rerror),
                Ok(_) => {}
                Err(_) => return Ok(Answer::Closed),
            }
        }
        Err("20 requests with one tag, all answered without complaint".into())
    }),
    ("10,000 fids on one connection", |a| {
        let mut c = attached(a);
        let mut refused = 0;
        for fid in 1..=10_000u32 {
            match c.walk(0, fid, &[]) {
                Ok(_) => {}
                Err(e) if e.ename().is_some() => refused += 1,
                Err(e) => return Err(format!("fid {fid}: {e}")),
            }
        }
        if refused == 0 {
            return Err("10,000 fids, none refused".into());
        }
        still_serves(&mut c)?;
        c.clunk(1).map_err(|e| e.to_string())?;
        c.walk(0, 1, &[])
            .map_err(|e| format!("walk after a clunk: {e}"))?;
        Ok(Answer::Rerror)
    }),
    ("slow partial frames, a byte every 2 ms", |a| {
        let s = TcpStream::connect(a).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|e| e.to_string())?;
        let mut c = Client::new(s);
        let mut msgs = version_frame(8192);
        msgs.extend(frame(
            1,
            &Tmsg::Attach {
                fid: 0,
                afid: NOFID,
                uname: ADMIN.into(),
                aname: String::new(),
            },
        ));
        msgs.extend(frame(2, &Tmsg::Stat { fid: 0 }));
        for b in &msgs {
            c.send_raw(&[*b]).map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(2));
        }
        for want in ["Rversion", "Rattach", "Rstat"] {
            let (_, r) = c.recv().map_err(|e| e.to_string())?;
            if r.name() != want {
                return Err(format!("slow frames: {} for {want}", r.name()));
            }
        }
        // Served, not refused: report it as the connection going on.
        Ok(Answer::Rerror)
    }),
    (
        "Tversion loop: 2,000 on one connection, fids reset each time",
        |a| {
            let mut c = raw(a);
            for i in 0..2000u32 {
                let m = c
                    .version(8192 + i)
                    .map_err(|e| format!("Tversion {i}: {e}"))?;
                if m != 8192 + i {
                    return Err(format!("Tversion {i}: msize {m}"));
                }
                if i % 100 == 0 {
                    c.attach(0, ADMIN, "").map_err(|e| e.to_string())?;
                    c.walk(0, 1, &[]).map_err(|e| e.to_string())?;
                } else if i % 100 == 1 {
                    // The Tversion before this one dropped fids 0 and 1.
                    send(&mut c, &frame(1, &Tmsg::Stat { fid: 1 }));
                    rerror(&mut c)?;
                }
            }
            Ok(Answer::Rerror)
        },
    ),
];

fn attached_small(a: SocketAddr) -> C {
    let mut c = versioned(a, 8192);
    c.attach(0, ADMIN, "").expect("attach");
    c
}

fn zero_msize(a: SocketAddr, msize: u32) -> Result<Answer, String> {
    let mut c = raw(a);
    send(&mut c, &version_frame(msize));
    match c.recv() {
        Ok((_, Rmsg::Version { version, msize: m })) => {
            if version == "unknown" {
                Ok(Answer::Rerror)
            } else {
                Err(format!(
                    "msize {msize} accepted as {version} with msize {m}"
                ))
            }
        }
        Ok((_, Rmsg::Error { .. })) => Ok(Answer::Rerror),
        Ok((_, r)) => Err(format!("answered {}", r.name())),
        Err(_) => Ok(Answer::Closed),
    }
}

fn start_probe(d: &Daemon) -> Child {
    let mut child = py::spawn(py::command(Py::Python9p, "probe.py").args([
        "--addr",
        &format!("unix:{}", d.sock.display()),
        "--user",
        ADMIN,
    ]));
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("probe ready");
    assert!(line.contains("ready"), "probe: {line}");
    child
}

fn stop_probe(mut child: Child) -> serde_json::Value {
    let _ = child.stdin.as_mut().expect("stdin").write_all(b"stop\n");
    let out = py::wait(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    py::last_json(&stdout)
}

fn assert_probe(v: &serde_json::Value, min_ops: u64) {
    assert_eq!(v["failures"], serde_json::json!([]), "probe failed: {v}");
    assert!(
        v["ops"].as_u64().unwrap_or(0) >= min_ops,
        "probe starved: {v}"
    );
    assert!(
        v["slowest_ms"].as_f64().unwrap_or(1e9) < 5000.0,
        "probe stalled: {v}"
    );
}

fn healthy_after(d: &mut Daemon, baseline_fds: usize) {
    assert!(d.alive(), "gefsd died: {}", d.log());
    let check = d.console_ok(&["check"]);
    assert!(check.trim_end().ends_with("; clean"), "{check}");
    let mut c = attached(d.tcp);
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "after-abuse", 0o644, omode::ORDWR)
        .expect("the image still takes writes");
    c.write(1, 0, b"still writable").expect("write");
    drop(c);
    // Every connection this test opened is closed: gefsd's descriptors are back.
    let t0 = Instant::now();
    loop {
        let n = d.fds().expect("fd count");
        if n <= baseline_fds {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "gefsd holds {n} descriptors, {baseline_fds} before the abuse"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_input_is_refused_while_a_probe_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "256M", ADMIN);
    let mut d = Daemon::start(dir.path(), &img, &Opts::default());
    let probe = start_probe(&d);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = d.fds().expect("fd count");
    let t0 = Instant::now();
    let mut failures = Vec::new();
    for (name, case) in CASES {
        let t = Instant::now();
        match case(d.tcp) {
            Ok(a) => eprintln!("  {name}: {a:?} ({} ms)", t.elapsed().as_millis()),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        if !d.alive() {
            failures.push(format!("{name}: gefsd died: {}", d.log()));
            break;
        }
    }
    eprintln!(
        "{} cases in {:.1} s",
        CASES.len(),
        t0.elapsed().as_secs_f64()
    );
    let v = stop_probe(probe);
    eprintln!("probe: {v}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_probe(&v, 50);
    healthy_after(&mut d, baseline);
    d.stop();
    daemon::check_clean(&img);
}

#[test]
fn a_thousand_connections_at_once_and_a_stalled_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "256M", ADMIN);
    let mut d = Daemon::start(dir.path(), &img, &Opts::default());
    let probe = start_probe(&d);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = d.fds().expect("fd count");
    // A frame that stalls after 3 bytes: dropped after gefsd's frame timeout (30 s).
    let a = d.tcp;
    let stalled = std::thread::spawn(move || {
        let mut s = TcpStream::connect(a).expect("connect");
        s.write_all(&version_frame(8192)[..3]).expect("partial");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let t0 = Instant::now();
        let mut b = [0u8; 1];
        let r = s.read(&mut b);
        (matches!(r, Ok(0) | Err(_)), t0.elapsed())
    });
    // 1,000 connections at once, each sending a Tversion.
    let t0 = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..1000 {
        match TcpStream::connect(a) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                conns.push(s);
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
    for s in &mut conns {
        let _ = s.write_all(&version_frame(8192));
    }
    let (mut served, mut closed) = (0, 0);
    for s in conns.iter_mut() {
        let mut c = Client::new(&mut *s);
        match c.recv() {
            Ok((_, Rmsg::Version { .. })) => served += 1,
            Ok((_, r)) => panic!("a flood connection answered {}", r.name()),
            Err(_) => closed += 1,
        }
    }
    eprintln!(
        "1000 connections: {served} served, {closed} closed at the limit ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        closed > 0,
        "no connection refused: the limit did not answer"
    );
    assert!(served > 0, "every connection refused");
    assert_eq!(served + closed, 1000);
    drop(conns);
    // Room again (once gefsd has seen the closes): a new client is served.
    let t1 = Instant::now();
    loop {
        let mut c = raw(d.tcp);
        let ok = c.version(8192).is_ok() && c.attach(0, ADMIN, "").is_ok() && c.stat(0).is_ok();
        if ok {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "no new connection served after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (was_closed, after) = stalled.join().expect("stalled thread");
    assert!(was_closed, "the stalled connection was not dropped");
    assert!(after < Duration::from_secs(45), "dropped after {after:?}");
    eprintln!("stalled frame dropped after {:.1} s", after.as_secs_f64());
    let v = stop_probe(probe);
    eprintln!("probe: {v}");
    assert_probe(&v, 50);
    healthy_after(&mut d, baseline);
    d.stop();
    daemon::check_clean(&img);
}
