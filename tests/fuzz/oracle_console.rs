//! The oracle of the `console` fuzz target (reliability plan T17), shared with the corpus
//! replay in `gefsd/tests/server_corpus.rs`: the console parser never panics, refuses lines
//! over the limit, and every accepted command carries the argument count it needs. Commands
//! that only look (help, df, show, snap -l) are also run against `server`.

use gefsd::console::{execute, parse, Command, Request, Show, MAX_LINE};
use gefsd::server::Server;

/// Run one input.
pub fn check(server: Option<&Server>, data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let parsed = parse(&line);
    if line.len() > MAX_LINE {
        assert!(parsed.is_err(), "a line over the limit was accepted");
    }
    let Ok(Some(req)) = parsed else { return };
    match &req.cmd {
        Command::Set(a) => assert!((2..=3).contains(&a.len())),
        Command::Clear(a) => assert!((1..=2).contains(&a.len())),
        _ => {}
    }
    let safe = matches!(
        req.cmd,
        Command::Help
            | Command::Df
            | Command::Snap(gefs_core::admin::Snap::List)
            | Command::Show(Show::Cache | Show::Alloc | Show::Free | Show::Fid | Show::Users)
    );
    if let (Some(s), true) = (server, safe) {
        let r = execute(
            s.core(),
            &s.stopper(),
            &Request {
                cmd: req.cmd.clone(),
                json: req.json,
            },
        );
        assert!(r.is_ok(), "{:?}: {r:?}", req.cmd);
    }
}
