//! File-name rules.
//!
//! A name is a byte string (9P strings are passed through unchanged; the
//! layer does not require UTF-8). A valid name is 1 to [`MAX_NAME`] bytes,
//! is not `.` or `..`, and has no `/` and no byte below 0x20 (NUL
//! included). [`MAX_NAME`] is the reference's limit: a `KENT` key is
//! `01 pqid[8] name`, well under the 256-byte key limit at 244 bytes, and
//! keeping the reference's number keeps names portable between the two.
//!
//! Create and rename use [`check`]; walk uses [`check_walk`], which maps an
//! overlong name to [`Error::NameTooLong`] before any key is built (the
//! reference aborts on a 245-byte walk element, defect #15).

use super::error::{Error, Result};

/// The longest name, in bytes.
pub const MAX_NAME: usize = 244;

/// Check a name for create or rename.
pub fn check(name: &[u8]) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Error::BadName);
    }
    if name.iter().any(|&c| c < 0x20 || c == b'/') {
        return Err(Error::BadName);
    }
    Ok(())
}

/// Check a walk element other than `..`: the same rules as [`check`]. A
/// name that could never have been created cannot be found, so a walk to it
/// fails without touching the tree.
pub fn check_walk(name: &[u8]) -> Result<()> {
    check(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check(b"a").is_ok());
        assert!(check(&[b'x'; MAX_NAME]).is_ok());
        assert!(matches!(
            check(&[b'x'; MAX_NAME + 1]),
            Err(Error::NameTooLong)
        ));
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", b"\x1f", b"/"] {
            assert!(matches!(check(bad), Err(Error::BadName)), "{bad:?}");
        }
        assert!(check(b"...").is_ok());
        assert!(check("ünï".as_bytes()).is_ok());
        assert!(check(b"\x7f").is_ok());
    }
}
