//! A test helper: connect to a 9P server, negotiate, attach once, and print the outcome as one
//! JSON line, `{"ok":true,"qid_type":N}` or `{"ok":false,"error":"..."}`. The local-users test
//! runs it under a second uid (gefsd authenticates peers by their credentials).
//!
//!     gefs-attach-probe unix:PATH|tcp:HOST:PORT UNAME [ANAME]
//!
//! Exit 0 when it could talk to the server (whatever the attach's outcome), 1 when it could
//! not connect or negotiate, 2 on bad arguments.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use gefsd::client::{Client, ClientError};
use gefsd::proto::MSIZE_DEFAULT;

fn attach<S: Read + Write>(mut c: Client<S>, uname: &str, aname: &str) -> Result<String, String> {
    c.version(MSIZE_DEFAULT)
        .map_err(|e| format!("version: {e}"))?;
    Ok(match c.attach(0, uname, aname) {
        Ok(q) => format!("{{\"ok\":true,\"qid_type\":{}}}", q.ty),
        Err(ClientError::Rerror(e)) => serde_json::json!({"ok": false, "error": e}).to_string(),
        Err(e) => return Err(format!("attach: {e}")),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(uname)) = (args.first(), args.get(1)) else {
        eprintln!("usage: gefs-attach-probe unix:PATH|tcp:HOST:PORT UNAME [ANAME]");
        return ExitCode::from(2);
    };
    let aname = args.get(2).map_or("", String::as_str);
    let r = if let Some(p) = addr.strip_prefix("unix:") {
        UnixStream::connect(p)
            .map_err(|e| format!("connect {p}: {e}"))
            .and_then(|s| attach(Client::new(s), uname, aname))
    } else if let Some(a) = addr.strip_prefix("tcp:") {
        Client::tcp(a)
            .map_err(|e| format!("connect {a}: {e}"))
            .and_then(|c| attach(c, uname, aname))
    } else {
        eprintln!("gefs-attach-probe: address {addr:?}: expected unix:PATH or tcp:HOST:PORT");
        return ExitCode::from(2);
    };
    match r {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gefs-attach-probe: {e}");
            ExitCode::from(1)
        }
    }
}
