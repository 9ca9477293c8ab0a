//! Version negotiation: exactly "9P2000" or "9P2000.L", the msize floor and clamp (reliability plan S8).

use crate::proto::{iounit, negotiate, Rmsg, VersionError, MSIZE_DEFAULT, MSIZE_LIMIT, MSIZE_MIN};

#[test]
fn exact_9p2000_is_accepted_and_msize_clamped() {
    assert_eq!(
        negotiate(8192, "9P2000", MSIZE_DEFAULT),
        Ok((8192, "9P2000"))
    );
    assert_eq!(
        negotiate(8216, "9P2000", MSIZE_DEFAULT),
        Ok((8216, "9P2000"))
    );
    assert_eq!(
        negotiate(u32::MAX, "9P2000", MSIZE_DEFAULT),
        Ok((MSIZE_DEFAULT, "9P2000"))
    );
    // Our own maximum is clamped into [MSIZE_MIN, MSIZE_LIMIT].
    assert_eq!(
        negotiate(u32::MAX, "9P2000", u32::MAX),
        Ok((MSIZE_LIMIT, "9P2000"))
    );
    assert_eq!(negotiate(u32::MAX, "9P2000", 0), Ok((MSIZE_MIN, "9P2000")));
    // The default offers an I/O unit of exactly 1 MiB.
    assert_eq!(iounit(MSIZE_DEFAULT), 1 << 20);
    assert_eq!(iounit(0), 0);
    assert_eq!(iounit(u32::MAX), MSIZE_LIMIT - 24);
}

#[test]
fn linux_dialect_is_accepted() {
    assert_eq!(
        negotiate(65536, "9P2000.L", MSIZE_DEFAULT),
        Ok((65536, "9P2000.L"))
    );
    assert_eq!(
        crate::proto::Dialect::of("9P2000.L"),
        Some(crate::proto::Dialect::L)
    );
    assert_eq!(
        crate::proto::Dialect::of("9P2000"),
        Some(crate::proto::Dialect::P9)
    );
    assert_eq!(crate::proto::Dialect::of("9P2000.u"), None);
}

#[test]
fn other_versions_are_unknown() {
    for v in [
        "9P2000.l",
        "9P2000.L ",
        "9P2000.u",
        "9P2000.",
        "9P2000.x.y",
        "9P20000",
        "9P200",
        "9P",
        "9p2000",
        " 9P2000",
        "9P2000 ",
        "9P2000\0",
        "",
        "unknown",
        "9P1999",
    ] {
        assert_eq!(
            negotiate(MSIZE_DEFAULT, v, MSIZE_DEFAULT),
            Err(VersionError::UnknownVersion),
            "{v:?}"
        );
    }
}

#[test]
fn small_msizes_are_refused_with_rversion_unknown() {
    for msize in [0, 6, 7, 24, 4096, MSIZE_MIN - 1] {
        let err = negotiate(msize, "9P2000", MSIZE_DEFAULT).expect_err("too small");
        assert_eq!(err, VersionError::MsizeTooSmall { msize });
        // Never an msize below the floor, msize 0 least of all.
        assert_eq!(
            err.reply(msize, MSIZE_DEFAULT),
            Rmsg::Version {
                msize: MSIZE_MIN,
                version: "unknown".into()
            }
        );
        assert!(err.to_string().contains("msize"));
    }
    for msize in [MSIZE_MIN, 1 << 31, u32::MAX] {
        assert!(negotiate(msize, "9P2000", MSIZE_DEFAULT).is_ok(), "{msize}");
    }
    // The refusal never offers more than our maximum.
    let reply = VersionError::UnknownVersion.reply(u32::MAX, MSIZE_DEFAULT);
    assert_eq!(
        reply,
        Rmsg::Version {
            msize: MSIZE_DEFAULT,
            version: "unknown".into()
        }
    );
}
