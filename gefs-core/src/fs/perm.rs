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

use super::Who;
use crate::format::value::Xdir;
use crate::users::{self, Users};

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
