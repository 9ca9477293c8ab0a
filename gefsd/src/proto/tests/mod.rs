//! Unit tests of the codec: proptest round trips (reliability plan T10), table-driven malformed
//! frames (T12), the streaming frame reader, version negotiation and the stat helpers.

mod dotl;
mod encode;
mod malformed;
mod roundtrip;
mod strategies;
mod stream;
mod version;

use super::{decode_r, decode_t, encode_r, encode_t};

/// A frame with a correct size field around `body`.
fn frame(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 7).expect("test frame fits u32");
    let mut f = size.to_le_bytes().to_vec();
    f.push(ty);
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// `bytes` with the size field rewritten to its length.
fn resized(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    if v.len() >= 4 {
        let size = u32::try_from(v.len()).expect("fits u32");
        v[..4].copy_from_slice(&size.to_le_bytes());
    }
    v
}

/// Decodes `bytes` both ways under `msize`; whatever is accepted must re-encode to exactly
/// `bytes` (the decoder is canonical). Returns whether either direction accepted it.
fn assert_canonical(bytes: &[u8], msize: u32) -> bool {
    let mut accepted = false;
    if let Ok((tag, m)) = decode_t(bytes, msize) {
        let mut out = Vec::new();
        encode_t(tag, &m, &mut out).expect("re-encode T");
        assert_eq!(out, bytes, "T-message {m:?} is not canonical");
        assert_eq!(m.encoded_len(), bytes.len());
        accepted = true;
    }
    if let Ok((tag, m)) = decode_r(bytes, msize) {
        let mut out = Vec::new();
        encode_r(tag, &m, &mut out).expect("re-encode R");
        assert_eq!(out, bytes, "R-message {m:?} is not canonical");
        assert_eq!(m.encoded_len(), bytes.len());
        accepted = true;
    }
    accepted
}
