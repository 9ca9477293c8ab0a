//! Fuzz target: the console's command parser, and the commands that only look, on arbitrary
//! lines (reliability plan T17). The checks live in `oracle_console.rs`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../oracle_console.rs"]
mod oracle;

fn server() -> &'static gefsd::server::Server {
    static S: OnceLock<gefsd::server::Server> = OnceLock::new();
    S.get_or_init(|| {
        let o = gefsd::server::Options {
            retain_every: None,
            ..Default::default()
        };
        gefsd::server::spawn_for_test(o).expect("server").0
    })
}

fuzz_target!(|data: &[u8]| oracle::check(Some(server()), data));
