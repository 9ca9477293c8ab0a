//! The clock applies the write buffers at a quiet moment: after writes over 9P the
//! messages wait in the message logs; once no request has come for a tick, the buffers are
//! applied to the trees (and the next sync records them), and the data reads back.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_quiet_server_applies_its_write_buffers() {
    let mut o = opts(true);
    o.sync_every = Duration::from_millis(200);
    let (s, a) = start_with(o);
    let mut c = attached(a);
    let store = s.core().store().clone();
    let before = store.upserts();
    for i in 0..20u32 {
        put(&mut c, 1, &format!("f{i}"), &[i as u8; 3000]);
    }
    assert!(
        store.upserts() > before,
        "the creates and writes were upserts"
    );
    // They wait in the write buffer (and the message log): a checkpoint takes a whole tick
    // without upserts.
    assert!(store.stats().buffered > 0, "the writes were buffered");
    let t0 = Instant::now();
    while store.stats().buffered > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the buffers were never applied ({} messages)",
            store.stats().buffered
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..20u32 {
        assert_eq!(get(&mut c, 2, &[&format!("f{i}")]), vec![i as u8; 3000]);
    }
    stop(s);
}
