//! Fuzz target: arbitrary sequences of 9P requests against an in-process server on an
//! in-memory device (reliability plan T11). The checks live in `oracle_server.rs`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../oracle_server.rs"]
mod oracle;

fn server() -> &'static (gefsd::server::Server, String) {
    static S: OnceLock<(gefsd::server::Server, String)> = OnceLock::new();
    S.get_or_init(|| {
        let me = gefsd::server::current_user();
        let o = gefsd::server::Options {
            retain_every: None,
            ..Default::default()
        };
        let (s, _) = gefsd::server::spawn_for_test(o).expect("server");
        (s, me)
    })
}

fuzz_target!(|data: &[u8]| {
    let (s, me) = server();
    let _ = oracle::check(s, me, data);
});
