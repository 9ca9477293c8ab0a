//! Measures the codec's "no allocation beyond the frame" invariant with a counting global
//! allocator: hostile lengths (a walk of 65535 names, 4 GiB of data, a 4 GiB frame) must cost
//! almost nothing, and a valid message may own at most about its frame's size.
//!
//! One `#[test]` only, so no other test thread allocates while a measurement runs.
#![allow(unsafe_code)] // The counting allocator below; nothing else here is unsafe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use gefsd::proto::msgtype::{RREAD, TCREATE, TVERSION, TWALK, TWRITE, TWSTAT};
use gefsd::proto::{
    decode_r, decode_t, encode_t, read_frame, Tmsg, MSIZE_DEFAULT, MSIZE_LIMIT, MSIZE_MIN,
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, SeqCst) + n;
    PEAK.fetch_max(now, SeqCst);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// updates two counters, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`; the caller
        // upholds the rest of `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), SeqCst);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the high-water mark while `f` ran, above what was live before (what `f`
/// returns is included: it is what the decoder hands out).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(SeqCst);
    PEAK.store(base, SeqCst);
    let out = f();
    (out, PEAK.load(SeqCst).saturating_sub(base))
}

/// Headroom for `Vec<String>` headers (16 × 24 bytes) and the like.
const SLACK: usize = 1024;

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 7).expect("fits");
    [&size.to_le_bytes()[..], &[ty, 1, 0], body].concat()
}

fn hostile_lengths_cost_nothing() {
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "Twalk nwname 65535",
            frame(TWALK, &[0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff]),
            false,
        ),
        (
            "Twrite count 2^32-1",
            frame(TWRITE, &[[0; 12].as_slice(), &[0xff; 4]].concat()),
            false,
        ),
        (
            "Tversion string 65535",
            frame(TVERSION, &[0, 32, 0, 0, 0xff, 0xff, b'9', b'P']),
            false,
        ),
        (
            "Tcreate name 65535",
            frame(TCREATE, &[1, 0, 0, 0, 0xff, 0xff]),
            false,
        ),
        (
            "Twstat nstat 65535",
            frame(TWSTAT, &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            false,
        ),
        ("Rread count 2^31", frame(RREAD, &[0, 0, 0, 0x80]), true),
    ];
    for (name, bytes, reply) in cases {
        for msize in [MSIZE_MIN, MSIZE_DEFAULT, u32::MAX] {
            let (r, peak) = peak_during(|| {
                if reply {
                    decode_r(&bytes, msize).map(|_| ())
                } else {
                    decode_t(&bytes, msize).map(|_| ())
                }
            });
            assert!(r.is_err(), "{name}");
            assert!(peak <= SLACK, "{name} under msize {msize}: {peak} bytes");
        }
    }
}

fn valid_messages_own_about_their_frame() {
    let msgs = [
        Tmsg::Walk {
            fid: 1,
            newfid: 2,
            wnames: (0..16).map(|i| format!("{i:0>200}")).collect(),
        },
        Tmsg::Write {
            fid: 1,
            offset: 0,
            data: vec![7; 1 << 20],
        },
        Tmsg::Attach {
            fid: 1,
            afid: 2,
            uname: "u".repeat(60_000),
            aname: "a".repeat(60_000),
        },
    ];
    for m in msgs {
        let mut bytes = Vec::new();
        encode_t(1, &m, &mut bytes).expect("encode");
        let (r, peak) = peak_during(|| decode_t(&bytes, MSIZE_DEFAULT));
        assert_eq!(r.expect("valid").1, m);
        assert!(
            peak <= bytes.len() + SLACK,
            "{}: {peak} bytes for a {}-byte frame",
            m.name(),
            bytes.len()
        );
    }
}

fn random_frames_stay_within_their_size() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut worst = 0usize;
    for i in 0..20_000u32 {
        let len = usize::try_from(next() % 300).expect("small");
        let body: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        let ty = 100 + u8::try_from(i % 28).expect("small");
        let bytes = frame(ty, &body);
        let (_, peak) = peak_during(|| {
            let _ = decode_t(&bytes, MSIZE_DEFAULT);
            let _ = decode_r(&bytes, MSIZE_DEFAULT);
        });
        worst = worst.max(peak.saturating_sub(bytes.len()));
    }
    assert!(
        worst <= SLACK,
        "a random frame allocated {worst} bytes beyond its size"
    );
}

fn frame_reader_allocates_only_what_arrives() {
    // A 4 GiB size field, even with no msize negotiated yet.
    let huge = [&u32::MAX.to_le_bytes()[..], &[120, 0, 0]].concat();
    let mut buf = Vec::new();
    let (r, peak) =
        peak_during(|| read_frame(&mut Cursor::new(&huge), u32::MAX, &mut buf).is_err());
    assert!(r);
    assert!(peak <= SLACK, "4 GiB size field: {peak} bytes");

    // A 16 MiB claim followed by 10 bytes and a hang-up.
    let stalled = [&MSIZE_LIMIT.to_le_bytes()[..], &[0; 10]].concat();
    let mut buf = Vec::new();
    let (r, peak) =
        peak_during(|| read_frame(&mut Cursor::new(&stalled), MSIZE_LIMIT, &mut buf).is_err());
    assert!(r);
    assert!(
        peak <= 64 * 1024 + SLACK,
        "stalled 16 MiB frame: {peak} bytes"
    );

    // A real 1 MiB frame: the buffer ends at the frame's size, not a power of two above it.
    let mut bytes = Vec::new();
    let big = Tmsg::Write {
        fid: 1,
        offset: 0,
        data: vec![1; 1 << 20],
    };
    encode_t(1, &big, &mut bytes).expect("encode");
    let mut buf = Vec::new();
    let (len, peak) = peak_during(|| {
        read_frame(&mut Cursor::new(&bytes), MSIZE_DEFAULT, &mut buf)
            .expect("read")
            .expect("frame")
            .len()
    });
    assert_eq!(len, bytes.len());
    assert!(peak <= bytes.len() + SLACK, "1 MiB frame: {peak} bytes");
    assert_eq!(buf.capacity(), bytes.len());
}

#[test]
fn decoding_never_allocates_beyond_the_frame() {
    // The counter itself works.
    let (v, peak) = peak_during(|| vec![0u8; 4096]);
    assert!(
        peak >= 4096 && v.len() == 4096,
        "counting allocator saw {peak} bytes"
    );
    hostile_lengths_cost_nothing();
    valid_messages_own_about_their_frame();
    random_frames_stay_within_their_size();
    frame_reader_allocates_only_what_arrives();
}
