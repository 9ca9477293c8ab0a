//! The frame reader over byte streams: back-to-back frames, a partial tail, a reader that hands
//! out one byte at a time (with interruptions), and hostile size fields refused after reading
//! only the 4 size bytes and without growing the buffer.

use std::io::{self, Cursor, Read};

use crate::proto::{
    decode_t, encode_t, read_frame, DecodeErrorKind, ReadFrameError, Tmsg, MSIZE_DEFAULT,
    MSIZE_LIMIT, MSIZE_MIN,
};

fn two_frames() -> (Vec<u8>, Tmsg, Tmsg) {
    let a = Tmsg::Version {
        msize: 8192,
        version: "9P2000".into(),
    };
    let b = Tmsg::Write {
        fid: 3,
        offset: 1 << 40,
        data: (0..=255).collect(),
    };
    let mut bytes = Vec::new();
    encode_t(0xffff, &a, &mut bytes).expect("encode");
    encode_t(1, &b, &mut bytes).expect("encode");
    (bytes, a, b)
}

/// Reads at most one byte per call and reports `Interrupted` before every other byte.
struct Trickle<'a> {
    data: &'a [u8],
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        match (self.data.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.data = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Serves `data`, then fails the test if asked for anything more: proves a refused size is
/// refused without reading (or waiting for) the body.
struct Guarded<'a> {
    data: &'a [u8],
}

impl Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(!self.data.is_empty(), "read past the size field");
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn back_to_back_frames_then_partial_tail() {
    let (mut bytes, a, b) = two_frames();
    let mut third = Vec::new();
    encode_t(2, &Tmsg::Clunk { fid: 3 }, &mut third).expect("encode");
    bytes.extend_from_slice(&third[..6]);
    let mut cursor = Cursor::new(bytes);
    let mut buf = Vec::new();

    let f = read_frame(&mut cursor, MSIZE_DEFAULT, &mut buf)
        .expect("frame 1")
        .expect("some");
    assert_eq!(decode_t(f, MSIZE_DEFAULT), Ok((0xffff, a)));
    let f = read_frame(&mut cursor, MSIZE_DEFAULT, &mut buf)
        .expect("frame 2")
        .expect("some");
    assert_eq!(decode_t(f, MSIZE_DEFAULT), Ok((1, b)));
    match read_frame(&mut cursor, MSIZE_DEFAULT, &mut buf) {
        Err(ReadFrameError::UnexpectedEof { got: 6, want: 11 }) => {}
        other => panic!("partial third frame: {other:?}"),
    }
}

#[test]
fn clean_end_of_stream_and_eof_inside_size_field() {
    let mut buf = Vec::new();
    let r = read_frame(&mut Cursor::new(Vec::new()), MSIZE_DEFAULT, &mut buf);
    assert!(matches!(r, Ok(None)));
    let r = read_frame(&mut Cursor::new(vec![11, 0]), MSIZE_DEFAULT, &mut buf);
    assert!(matches!(
        r,
        Err(ReadFrameError::UnexpectedEof { got: 2, want: 4 })
    ));
}

#[test]
fn one_byte_reads_still_yield_whole_frames() {
    let (bytes, a, b) = two_frames();
    let mut reader = Trickle {
        data: &bytes,
        interrupt: false,
    };
    let mut buf = Vec::new();
    let f = read_frame(&mut reader, MSIZE_MIN, &mut buf)
        .expect("frame 1")
        .expect("some");
    assert_eq!(decode_t(f, MSIZE_MIN), Ok((0xffff, a)));
    let f = read_frame(&mut reader, MSIZE_MIN, &mut buf)
        .expect("frame 2")
        .expect("some");
    assert_eq!(decode_t(f, MSIZE_MIN), Ok((1, b)));
    assert!(matches!(
        read_frame(&mut reader, MSIZE_MIN, &mut buf),
        Ok(None)
    ));
}

#[test]
fn hostile_sizes_are_refused_after_four_bytes() {
    let cases: [(u32, u32); 8] = [
        (0, MSIZE_DEFAULT),
        (3, MSIZE_DEFAULT),
        (6, MSIZE_DEFAULT),
        (MSIZE_DEFAULT + 1, MSIZE_DEFAULT),
        (0x8000_0000, MSIZE_DEFAULT),
        (u32::MAX, MSIZE_DEFAULT),
        (u32::MAX, u32::MAX),
        (MSIZE_LIMIT + 1, u32::MAX),
    ];
    for (size, msize) in cases {
        let field = size.to_le_bytes();
        let mut buf = Vec::new();
        let r = read_frame(&mut Guarded { data: &field }, msize, &mut buf);
        let Err(ReadFrameError::Size(e)) = r else {
            panic!("size {size} under msize {msize}: {r:?}");
        };
        assert!(e.is_framing());
        assert!(matches!(
            e.kind(),
            DecodeErrorKind::TooShort { .. } | DecodeErrorKind::TooLarge { .. }
        ));
        assert!(
            buf.capacity() <= 64,
            "size {size}: buffer grew to {}",
            buf.capacity()
        );
    }
}

#[test]
fn a_stalled_large_frame_holds_little_memory() {
    // Claims a 16 MiB frame, then sends 10 bytes and ends.
    let mut bytes = MSIZE_LIMIT.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 10]);
    let mut buf = Vec::new();
    let r = read_frame(&mut Cursor::new(bytes), MSIZE_LIMIT, &mut buf);
    assert!(matches!(
        r,
        Err(ReadFrameError::UnexpectedEof { got: 14, .. })
    ));
    assert!(buf.capacity() <= 64 * 1024, "grew to {}", buf.capacity());
}

#[test]
fn a_frame_of_exactly_msize_is_read_and_the_buffer_is_reused() {
    let data = vec![7u8; (MSIZE_MIN - 24) as usize];
    let big = Tmsg::Write {
        fid: 1,
        offset: 0,
        data,
    };
    let mut bytes = Vec::new();
    encode_t(5, &big, &mut bytes).expect("encode");
    encode_t(6, &Tmsg::Clunk { fid: 1 }, &mut bytes).expect("encode");
    let mut cursor = Cursor::new(bytes);
    let mut buf = Vec::new();
    let f = read_frame(&mut cursor, MSIZE_MIN - 1, &mut buf)
        .expect("read")
        .expect("some");
    assert_eq!(f.len(), (MSIZE_MIN - 1) as usize);
    let cap = buf.capacity();
    let f = read_frame(&mut cursor, MSIZE_MIN - 1, &mut buf)
        .expect("read")
        .expect("some");
    assert_eq!(decode_t(f, MSIZE_MIN), Ok((6, Tmsg::Clunk { fid: 1 })));
    assert_eq!(buf.capacity(), cap, "capacity kept across frames");
}

#[test]
fn io_errors_are_passed_through() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::ConnectionReset))
        }
    }
    let mut buf = Vec::new();
    let r = read_frame(&mut Broken, MSIZE_DEFAULT, &mut buf);
    assert!(matches!(r, Err(ReadFrameError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset));
}
