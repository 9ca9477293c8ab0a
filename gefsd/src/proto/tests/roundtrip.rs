//! T10 in `cargo test`: `decode(encode(m)) == m`, the size field equals the frame length and
//! `encoded_len`, encoding is deterministic and appends without disturbing what is already in the
//! buffer; and random or mutated bytes never panic and are accepted only in canonical form.

use proptest::collection::vec;
use proptest::prelude::*;

use super::strategies;
use super::{assert_canonical, frame, resized};
use crate::proto::{
    decode_r, decode_t, encode_r, encode_t, Stat, MSIZE_DEFAULT, MSIZE_LIMIT, MSIZE_MIN,
};

fn size_field(frame: &[u8]) -> usize {
    let size: [u8; 4] = frame[..4].try_into().expect("4 bytes");
    usize::try_from(u32::from_le_bytes(size)).expect("fits usize")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn tmsg_round_trip(tag: u16, msg in strategies::tmsg(), prefix in vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        encode_t(tag, &msg, &mut out).expect("encode");
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        let bytes = &out[prefix.len()..];
        prop_assert_eq!(size_field(bytes), bytes.len());
        prop_assert_eq!(msg.encoded_len(), bytes.len());
        prop_assert_eq!(bytes[4], msg.msg_type());
        prop_assert_eq!(decode_t(bytes, MSIZE_DEFAULT), Ok((tag, msg.clone())));
        let mut again = Vec::new();
        encode_t(tag, &msg, &mut again).expect("encode again");
        prop_assert_eq!(&again[..], bytes);
        // A T-message is never mistaken for a reply.
        prop_assert!(decode_r(bytes, MSIZE_DEFAULT).is_err());
    }

    #[test]
    fn rmsg_round_trip(tag: u16, msg in strategies::rmsg(), prefix in vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        encode_r(tag, &msg, &mut out).expect("encode");
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        let bytes = &out[prefix.len()..];
        prop_assert_eq!(size_field(bytes), bytes.len());
        prop_assert_eq!(msg.encoded_len(), bytes.len());
        prop_assert_eq!(bytes[4], msg.msg_type());
        prop_assert_eq!(decode_r(bytes, MSIZE_DEFAULT), Ok((tag, msg.clone())));
        let mut again = Vec::new();
        encode_r(tag, &msg, &mut again).expect("encode again");
        prop_assert_eq!(&again[..], bytes);
        prop_assert!(decode_t(bytes, MSIZE_DEFAULT).is_err());
    }

    /// Directory reads: stats packed back to back decode one by one, each consuming exactly
    /// its `encoded_len`.
    #[test]
    fn stat_entries_round_trip(stats in vec(strategies::stat(), 0..6)) {
        let mut data = Vec::new();
        for s in &stats {
            let before = data.len();
            s.encode(&mut data).expect("encode stat");
            prop_assert_eq!(data.len() - before, s.encoded_len());
        }
        let mut rest = &data[..];
        for s in &stats {
            let (got, used) = Stat::decode(rest).expect("decode stat");
            prop_assert_eq!(&got, s);
            prop_assert_eq!(used, s.encoded_len());
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    /// Every proper prefix of a valid frame is refused: with the original size field (a size
    /// mismatch) and with the size field patched to the prefix (a truncated body). Bodies are
    /// self-delimiting, so no prefix can be complete.
    #[test]
    fn every_prefix_is_refused(tag: u16, t in strategies::tmsg(), r in strategies::rmsg()) {
        let mut tb = Vec::new();
        encode_t(tag, &t, &mut tb).expect("encode");
        let mut rb = Vec::new();
        encode_r(tag, &r, &mut rb).expect("encode");
        for cut in 0..tb.len() {
            prop_assert!(decode_t(&tb[..cut], MSIZE_DEFAULT).is_err());
            prop_assert!(decode_t(&resized(&tb[..cut]), MSIZE_DEFAULT).is_err());
        }
        for cut in 0..rb.len() {
            prop_assert!(decode_r(&rb[..cut], MSIZE_DEFAULT).is_err());
            prop_assert!(decode_r(&resized(&rb[..cut]), MSIZE_DEFAULT).is_err());
        }
    }

    /// Valid frames with a few bytes changed: no panic; whatever is accepted is canonical.
    #[test]
    fn mutated_frames_never_panic(
        tag: u16,
        msg in strategies::tmsg(),
        reply in strategies::rmsg(),
        flips in vec((any::<usize>(), 1u8..), 1..5),
    ) {
        for mut bytes in [encode_one_t(tag, &msg), encode_one_r(tag, &reply)] {
            for &(at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            assert_canonical(&bytes, MSIZE_DEFAULT);
            assert_canonical(&resized(&bytes), MSIZE_DEFAULT);
        }
    }

    /// Arbitrary bodies under every type byte, with a correct size field so the body parsers
    /// (not the framing check) see the garbage.
    #[test]
    fn framed_garbage_never_panics(ty: u8, tag: u16, body in vec(any::<u8>(), 0..200)) {
        let bytes = frame(ty, tag, &body);
        for msize in [MSIZE_MIN, MSIZE_DEFAULT, u32::MAX] {
            assert_canonical(&bytes, msize);
        }
        let _ = Stat::decode(&body);
    }

    /// Raw arbitrary bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        for msize in [0, 7, MSIZE_MIN, MSIZE_LIMIT, u32::MAX] {
            assert_canonical(&bytes, msize);
        }
        if let Ok((s, used)) = Stat::decode(&bytes) {
            let mut out = Vec::new();
            s.encode(&mut out).expect("re-encode stat");
            prop_assert_eq!(&out[..], &bytes[..used]);
        }
    }
}

fn encode_one_t(tag: u16, msg: &crate::proto::Tmsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_t(tag, msg, &mut out).expect("encode");
    out
}

fn encode_one_r(tag: u16, msg: &crate::proto::Rmsg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_r(tag, msg, &mut out).expect("encode");
    out
}
