//! The oracle for 9P2000 and 9P2000.L codec inputs, shared by the `decode_9p` fuzz target and
//! the corpus replay tests (`gefsd/tests/proto_corpus.rs`, `proto_corpus_l.rs`). Any violation
//! panics.
//!
//! For each input, under several msizes and in both dialects:
//! - `decode_t_in` / `decode_r_in` never panic; what they accept is no larger than the msize and
//!   re-encodes to exactly the input (the decoder is canonical), with `encoded_len` equal to
//!   the input's length;
//! - a decoded walk has at most 16 elements and decoded data fits the I/O unit;
//! - `read_frame` over the input as a stream never yields a frame above the msize, and every
//!   frame it yields gets the same checks;
//! - `Stat::decode` never panics and what it accepts re-encodes to the bytes it consumed;
//! - every error formats without panicking.

use std::io::Cursor;

use gefsd::proto::{
    decode_r_in, decode_t_in, encode_r, encode_t, iounit, read_frame, Dialect, Rmsg, RmsgL, Stat,
    Tmsg, MAXWELEM, MSIZE_DEFAULT, MSIZE_LIMIT, MSIZE_MIN,
};

/// The msizes every input is decoded under: the floor, the default and "no msize yet".
const MSIZES: [u32; 3] = [MSIZE_MIN, MSIZE_DEFAULT, u32::MAX];

/// Runs every check on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    for msize in MSIZES {
        check_frame(data, msize);
        check_stream(data, msize);
    }
    match Stat::decode(data) {
        Ok((stat, used)) => {
            assert!(used <= data.len());
            let mut out = Vec::new();
            stat.encode(&mut out).expect("re-encode an accepted stat");
            assert_eq!(Some(&out[..]), data.get(..used), "stat is not canonical");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Checks `data` as one complete frame, in both dialects.
fn check_frame(data: &[u8], msize: u32) {
    for dialect in [Dialect::P9, Dialect::L] {
        check_frame_in(data, msize, dialect);
    }
}

fn check_frame_in(data: &[u8], msize: u32, dialect: Dialect) {
    let limit = usize::try_from(msize.min(MSIZE_LIMIT)).expect("u32 fits usize");
    match decode_t_in(data, msize, dialect) {
        Ok((tag, msg)) => {
            assert!(data.len() <= limit, "accepted a frame above msize");
            check_t(&msg, msize);
            let mut out = Vec::new();
            encode_t(tag, &msg, &mut out).expect("re-encode an accepted T-message");
            assert_eq!(out, data, "T-message is not canonical");
            assert_eq!(msg.encoded_len(), data.len());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match decode_r_in(data, msize, dialect) {
        Ok((tag, msg)) => {
            assert!(data.len() <= limit, "accepted a frame above msize");
            check_r(&msg, msize);
            let mut out = Vec::new();
            encode_r(tag, &msg, &mut out).expect("re-encode an accepted R-message");
            assert_eq!(out, data, "R-message is not canonical");
            assert_eq!(msg.encoded_len(), data.len());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn check_t(msg: &Tmsg, msize: u32) {
    match msg {
        Tmsg::Walk { wnames, .. } => assert!(wnames.len() <= MAXWELEM),
        Tmsg::Write { data, .. } => assert!(fits_iounit(data, msize)),
        _ => {}
    }
}

fn check_r(msg: &Rmsg, msize: u32) {
    match msg {
        Rmsg::Walk { wqids } => assert!(wqids.len() <= MAXWELEM),
        Rmsg::Read { data } | Rmsg::L(RmsgL::Readdir { data }) => {
            assert!(fits_iounit(data, msize))
        }
        _ => {}
    }
}

fn fits_iounit(data: &[u8], msize: u32) -> bool {
    u32::try_from(data.len()).is_ok_and(|n| n <= iounit(msize))
}

/// Checks `data` as a stream of frames.
fn check_stream(data: &[u8], msize: u32) {
    let limit = usize::try_from(msize.min(MSIZE_LIMIT)).expect("u32 fits usize");
    let mut cursor = Cursor::new(data);
    let mut buf = Vec::new();
    // Each frame consumes at least 7 bytes, so this bounds the loop.
    for _ in 0..=data.len() / 7 {
        match read_frame(&mut cursor, msize, &mut buf) {
            Ok(Some(frame)) => {
                assert!(frame.len() <= limit, "read a frame above msize");
                let frame = frame.to_vec();
                check_frame(&frame, msize);
            }
            Ok(None) => return,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return;
            }
        }
    }
    // A frame is at least 7 bytes, so the stream must have ended by now.
    assert!(matches!(read_frame(&mut cursor, msize, &mut buf), Ok(None)));
}
