//! Glue between the file system and [`crate::users`]: permission checks on
//! a directory entry value (the reference's `fsaccess`, §10.2), and the
//! wstat ownership rules.
//!
//! `want` is a combination of [`READ`], [`WRITE`] and [`EXEC`]. A permissive
//! requester is allowed everything; otherwise the owner bits apply to the
//! owner and the group bits to members of the file's group (never to
//! `none`), and failing both, the other bits, which members of `nogroup` get
//! only for directory search. As in Plan 9, a member the group bits deny
//! still gets the other bits.
//!
//! Set-id bits (POSIX requesters only, regular files only): a write or a change of length by a
//! requester without the superuser's powers clears set-user-id, and set-group-id when the
//! group may execute the file or the requester is not in its group, as Linux does for a
//! writer without `CAP_FSETID`; a change of owner or group clears set-user-id whoever makes
//! it, and set-group-id on the same terms (Linux's `chown`). The group is the users table's:
//! a client's supplementary groups never reach the server.

use super::Who;
use crate::format::value::{Xdir, DMSETGID, DMSETUID};
use crate::users::{self, Users};

/// Why set-id bits may be cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetIdLoss {
    /// A write or a change of length.
    Write,
    /// A change of owner or group.
    Chown,
}

/// The set-id bits (`DMSETUID`, `DMSETGID`) of `d` that `why`, done by `who`, clears (module
/// doc); 0 for a Plan 9 requester or anything but a regular file.
pub fn setid_lost(t: &Users, who: &Who, d: &Xdir, why: SetIdLoss) -> u32 {
    if !who.posix || d.is_dir() || d.is_symlink() || d.is_special() || d.is_device() {
        return 0;
    }
    if why == SetIdLoss::Write && who.permissive {
        return 0;
    }
    let group_exec = d.mode & 0o010 != 0;
    let in_group = who.permissive || t.is_member(who.uid, d.gid);
    let sgid = if group_exec || !in_group { DMSETGID } else { 0 };
    d.mode & (DMSETUID | sgid)
}

/// Read permission.
pub const READ: u8 = users::DMREAD;
/// Write permission.
pub const WRITE: u8 = users::DMWRITE;
/// Execute (directory search) permission.
pub const EXEC: u8 = users::DMEXEC;

/// Whether `who` may access `d` for `want`.
pub fn allowed(t: &Users, who: &Who, d: &Xdir, want: u8) -> bool {
    users::allowed(t, who, d.uid, d.gid, d.mode, want)
}

/// Whether `who` may change the mode or mtime of `d`: the owner, the leader
/// of the file's group, or a permissive requester (never `none`).
pub fn may_chmod(t: &Users, who: &Who, d: &Xdir) -> bool {
    users::may_chmod_or_mtime(t, who, d.uid, d.gid)
}

/// Whether `who` may change the group of `d` to `gid`: a permissive
/// requester, the owner when a member of the new group, or the leader of
/// both the old and the new group.
pub fn may_chgrp(t: &Users, who: &Who, d: &Xdir, gid: i32) -> bool {
    users::may_chgrp(t, who, d.uid, d.gid, gid)
}
