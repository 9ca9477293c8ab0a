//! `gefsd console`: send one command, or read commands interactively (prompt `gefs# `).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// What the console client connects to and how it answers.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// The console socket.
    pub socket: PathBuf,
    /// Ask for JSON.
    pub json: bool,
    /// The command; empty for interactive use.
    pub command: Vec<String>,
}

/// Quote a field for the console's tokenizer.
fn quote(f: &str) -> String {
    if !f.is_empty() && !f.contains(|c: char| c.is_whitespace() || c == '\'') {
        f.to_string()
    } else {
        format!("'{}'", f.replace('\'', "''"))
    }
}

/// Send `line` and read the answer: `(ok, body)`.
pub fn request(
    w: &mut UnixStream,
    r: &mut BufReader<UnixStream>,
    line: &str,
) -> io::Result<(bool, String)> {
    request_status(w, r, line).map(|(code, body)| (code == 0, body))
}

/// Send `line` and read the answer: the exit status it calls for (0 `ok`,
/// 1 `error`, 2 `unable`: the command could not be carried out) and the
/// body.
pub fn request_status(
    w: &mut UnixStream,
    r: &mut BufReader<UnixStream>,
    line: &str,
) -> io::Result<(i32, String)> {
    w.write_all(line.as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()?;
    let mut head = String::new();
    if r.read_line(&mut head)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the console",
        ));
    }
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed console answer");
    let (word, len) = head.trim_end().split_once(' ').ok_or_else(bad)?;
    let len: usize = len.parse().map_err(|_| bad())?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let code = match word {
        "ok" => 0,
        "unable" => 2,
        _ => 1,
    };
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// Run the client. Exit status: 0 every command succeeded, 1 a command failed (or a check
/// found problems), 2 no server, or a command could not be carried out (a check that could
/// not read the image).
pub fn run_client(o: &ClientOpts) -> i32 {
    let s = match UnixStream::connect(&o.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "gefsd console: {}: {e} (is gefsd running? give its console with --socket or -n)",
                o.socket.display()
            );
            return 2;
        }
    };
    let Ok(rs) = s.try_clone() else { return 2 };
    let (mut w, mut r) = (s, BufReader::new(rs));
    let prefix = if o.json { "json " } else { "" };
    if !o.command.is_empty() {
        let line: Vec<String> = o.command.iter().map(|f| quote(f)).collect();
        return match request_status(&mut w, &mut r, &format!("{prefix}{}", line.join(" "))) {
            Ok((code, body)) => {
                if code == 0 {
                    print!("{body}");
                } else {
                    eprint!("{body}");
                    if !body.ends_with('\n') {
                        eprintln!();
                    }
                }
                code
            }
            Err(e) => {
                eprintln!("gefsd console: {e}");
                2
            }
        };
    }
    let stdin = io::stdin();
    let mut status = 0;
    loop {
        print!("gefs# ");
        let _ = io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!();
                return status;
            }
            Ok(_) => {}
        }
        let line = line.trim_end_matches('\n');
        match request_status(&mut w, &mut r, &format!("{prefix}{line}")) {
            Ok((code, body)) => {
                print!("{body}");
                if code != 0 {
                    status = status.max(code);
                    if !body.ends_with('\n') {
                        println!();
                    }
                }
            }
            Err(e) => {
                eprintln!("gefsd console: {e}");
                return 2;
            }
        }
        if line.trim() == "halt" {
            return status;
        }
    }
}
