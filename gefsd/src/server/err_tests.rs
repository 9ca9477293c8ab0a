//! Every error string the server sends, through Linux's 9P error table: the errno a Linux
//! 9P2000 client derives from the string must be the errno a 9P2000.L `Rlerror` carries.

use super::{msg, Error, Refusal};
use gefs_core::fs::{self, errno::*, WstatRule};

/// The entries of Linux's `net/9p/error.c` (`errmap`) for the strings we send, verbatim. The
/// kernel matches the whole string, case included; anything else becomes ESERVERFAULT (526).
const LINUX_ERRMAP: &[(&str, u32)] = &[
    ("Operation not permitted", EPERM),
    ("wstat prohibited", EPERM),
    ("No such file or directory", ENOENT),
    ("directory entry not found", ENOENT),
    ("Input/output error", EIO),
    ("Permission denied", EACCES),
    ("Device or resource busy", EBUSY),
    ("Is a directory", EISDIR),
    ("Invalid argument", EINVAL),
    ("Too many open files", EMFILE),
    ("File name too long", ENAMETOOLONG),
    ("Bad message", EBADMSG),
    ("Message too long", EMSGSIZE),
    ("Cannot send after transport endpoint shutdown", ESHUTDOWN),
    ("Remote I/O error", EREMOTEIO),
    ("Operation not supported", EOPNOTSUPP),
    ("Invalid cross-device link", EXDEV),
    ("fid unknown or out of range", EBADF),
    ("permission denied", EACCES),
    ("bad offset in directory read", ESPIPE),
    ("bad use of fid", EBADF),
    ("wstat can't convert between files and directories", EPERM),
    ("directory is not empty", ENOTEMPTY),
    ("file exists", EEXIST),
    ("fid already in use", EBADF),
    ("i/o error", EIO),
    ("illegal mode", EINVAL),
    ("not a directory", ENOTDIR),
    ("not a member of proposed group", EPERM),
    ("read only file system", EROFS),
    ("unknown user", EINVAL),
    ("exclusive use file already open", EAGAIN),
    ("protocol botch", EPROTO),
    ("file system is full", ENOSPC),
    ("file has been removed", EIDRM),
    ("file too big", EFBIG),
];

/// What a Linux 9P2000 client makes of an `Rerror` string (`p9_errstr2errno`), or `None` for
/// a string the table does not know.
fn linux_errno(s: &str) -> Option<u32> {
    LINUX_ERRMAP.iter().find(|(t, _)| *t == s).map(|&(_, e)| e)
}

fn io_error() -> gefs_core::Error {
    gefs_core::Error::io(
        gefs_core::error::IoOp::Read,
        0,
        std::io::Error::other("device"),
    )
}

/// Every file-system error, and every refusal of the server's own.
fn every_error() -> Vec<Error> {
    let fs_errors = vec![
        fs::Error::NotFound,
        fs::Error::Exists,
        fs::Error::Perm,
        fs::Error::NotDir,
        fs::Error::IsDir,
        fs::Error::NotEmpty,
        fs::Error::NameTooLong,
        fs::Error::BadName,
        fs::Error::Gone,
        fs::Error::Root,
        fs::Error::ReadOnly,
        fs::Error::NoSpace,
        fs::Error::NotOpen,
        fs::Error::TooBig,
        fs::Error::Wstat(WstatRule::NotOwner),
        fs::Error::Wstat(WstatRule::NotInGroup),
        fs::Error::Wstat(WstatRule::NotPermissive),
        fs::Error::Wstat(WstatRule::DirBit),
        fs::Error::Wstat(WstatRule::UnknownBits),
        fs::Error::Wstat(WstatRule::DirLength),
        fs::Error::NoUser,
        fs::Error::Invalid("offset".into()),
        fs::Error::Store(gefs_core::Error::corrupt(
            gefs_core::BlockAddr(4096),
            gefs_core::CorruptKind::Value,
            "x",
        )),
        fs::Error::Store(io_error()),
        fs::Error::Store(gefs_core::Error::Internal("bug".into())),
        fs::Error::from(gefs_core::Error::NoSpace),
        fs::Error::from(gefs_core::Error::ReadOnly),
        fs::Error::from(gefs_core::Error::Failed),
    ];
    let refusals: Vec<Refusal> = vec![
        msg::UNKNOWN_FID,
        msg::FID_IN_USE,
        msg::FID_OPEN,
        msg::FID_NOT_OPEN,
        msg::TOO_MANY_FIDS,
        msg::LOCKED,
        msg::BAD_DIR_OFFSET,
        msg::DIR_ENTRY_TOO_BIG,
        msg::ATTACH_USER,
        msg::NONE_REFUSED,
        msg::BAD_SPEC,
        msg::NO_VERSION,
        msg::PERM,
        msg::READ_ONLY,
        msg::WSTAT_QID,
        msg::WSTAT_MUID,
        msg::NAME_TOO_LONG,
        msg::BUSY,
        msg::SHUTTING_DOWN,
        msg::REPLY_TOO_BIG,
        msg::INTERNAL,
        msg::NO_XATTR,
        msg::NOT_IN_DIALECT,
    ];
    fs_errors
        .into_iter()
        .map(Error::Fs)
        .chain(refusals.into_iter().map(Error::Server))
        .collect()
}

#[test]
fn every_string_reaches_linux_as_its_errno() {
    for e in every_error() {
        let s = e.ename();
        let derived = linux_errno(&s).unwrap_or_else(|| panic!("{e:?}: Linux does not know {s:?}"));
        match e {
            // The one deliberate difference: .L says ESTALE (the kernel then looks the path up
            // again); Linux's table has no string for ESTALE.
            Error::Fs(fs::Error::Gone) => {
                assert_eq!((derived, e.errno()), (EIDRM, ESTALE), "{e:?}");
            }
            _ => assert_eq!(derived, e.errno(), "{e:?}: {s:?}"),
        }
    }
}

#[test]
fn tauth_answers_say_what_to_do() {
    // Tauth is never sent by Linux's kernel client (it attaches with afid NOFID); these
    // answers keep words that tell a Plan 9 user what to do instead. In 9P2000.L, ENOENT is
    // how a server says "no authentication needed" to diod's clients.
    for r in [msg::AUTH_BY_PEER, msg::AUTH_NOT_NEEDED, msg::NO_AUTH_FILE] {
        assert_eq!(linux_errno(r.text), None, "{r:?}");
    }
    assert_eq!(msg::AUTH_BY_PEER.errno, ENOENT);
    assert_eq!(msg::AUTH_NOT_NEEDED.errno, ENOENT);
    assert_eq!(msg::NO_AUTH_FILE.errno, ECONNREFUSED);
}

#[test]
fn details_stay_out_of_the_string() {
    let e = Error::Fs(fs::Error::Invalid("offset 99 of qid 7".into()));
    assert_eq!(e.ename(), "Invalid argument");
    let e = Error::Fs(fs::Error::Store(io_error()));
    assert_eq!(e.ename(), "i/o error");
}

#[test]
fn a_failed_device_is_not_a_read_only_file_system() {
    let failed = Error::from(gefs_core::Error::Failed);
    let read_only = Error::from(gefs_core::Error::ReadOnly);
    assert_eq!(
        (failed.ename().as_str(), failed.errno()),
        ("Input/output error", EIO)
    );
    assert_eq!(
        (read_only.ename().as_str(), read_only.errno()),
        ("read only file system", EROFS)
    );
    // One failed request and a latched store are both EIO, told apart by their strings.
    assert_ne!(
        failed.ename(),
        Error::Fs(fs::Error::Store(io_error())).ename()
    );
}
