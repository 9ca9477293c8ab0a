//! First start and memory (issue 9): gefsd serves a fresh image at once and holds only the
//! memory it uses, whatever its cache size. The block cache's pool is reserved at start and
//! backed by the kernel only as blocks are cached (`gefs-core/src/cache/pool.rs`); before,
//! the default cache (25% of RAM, up to 4 GiB) was zeroed up front, which took 8–25 s and
//! 4 GiB of RSS on a 1 GiB image.
//!
//! The times and sizes are printed; the assertions are generous bounds (a loaded machine
//! starts slower), far below what touching the whole cache would cost.

use std::path::Path;
use std::time::{Duration, Instant};

use gefs_tests::daemon::{format, Daemon, Opts, ADMIN};
use gefsd::client::Client;
use gefsd::proto::omode;

const MIB: u64 = 1 << 20;

/// Start gefsd on `image` with `cache` (empty: the default): start-to-listen time, and the
/// daemon once idle.
fn start(dir: &Path, image: &Path, cache: &str) -> (Duration, Daemon) {
    let t0 = Instant::now();
    let d = Daemon::start(
        dir,
        image,
        &Opts {
            cache: cache.into(),
            ..Opts::default()
        },
    );
    let t = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    (t, d)
}

fn rss(d: &Daemon) -> u64 {
    d.rss().expect("gefsd's /proc status").0
}

#[test]
fn first_start_is_quick_and_memory_follows_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("a.img");
    format(&image, "1G", ADMIN);
    for cache in ["", "16G"] {
        let (t, d) = start(dir.path(), &image, cache);
        let idle = rss(&d);
        let name = if cache.is_empty() { "default" } else { cache };
        println!(
            "cache {name}: start-to-listen {:.3} s, idle RSS {:.1} MiB",
            t.as_secs_f64(),
            idle as f64 / MIB as f64
        );
        assert!(t < Duration::from_secs(10), "start took {t:?}");
        assert!(idle < 128 * MIB, "idle RSS {idle} bytes with cache {name}");
        if cache.is_empty() {
            // Memory grows with the blocks actually cached: write 96 MiB (cached as they
            // are written, and kept: the default cache holds the whole image).
            let mut c = Client::unix(&d.sock).expect("connect");
            c.version(1 << 20).expect("version");
            c.attach(0, ADMIN, "").expect("attach");
            c.walk(0, 1, &[]).expect("walk");
            c.create(1, "big", 0o644, omode::OWRITE).expect("create");
            let chunk = vec![7u8; 256 << 10];
            let mut off = 0;
            while off < 96 * MIB {
                off += u64::from(c.write(1, off, &chunk).expect("write"));
            }
            c.clunk(1).expect("clunk");
            let used = rss(&d);
            println!(
                "after writing 96 MiB: RSS {:.1} MiB",
                used as f64 / MIB as f64
            );
            assert!(
                used > idle + 64 * MIB,
                "RSS {used} after writing 96 MiB (idle {idle})"
            );
        }
        d.stop();
    }
}
