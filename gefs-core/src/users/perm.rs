//! Permission checks (the reference's `fsaccess`) and the wstat rules.
//!
//! A request is described by `want`, a combination of [`DMREAD`],
//! [`DMWRITE`] and [`DMEXEC`], checked against a file's owner, group and
//! Plan 9 mode:
//!
//! 1. a permissive requester ([`Access::permissive`]) may do anything;
//! 2. a requester other than `none` gets the owner bits if it owns the file,
//!    and the group bits if it is a member of the file's group
//!    ([`Users::is_member`]); either suffices;
//! 3. otherwise the "other" bits apply: directory search (exec alone on a
//!    directory) is always allowed when they grant it, anything else only to
//!    users who are not members of `nogroup`;
//! 4. everything else is denied.
//!
//! `none` therefore only ever gets the "other" bits; in this module it also
//! never counts as an owner or group leader for wstat (the reference let
//! `none` chmod files it owned; we do not).
//!
//! A 9P2000.L requester ([`Access::posix`]) is checked by POSIX's rules
//! instead: exactly one class applies (the owner's bits to the owner, the
//! group's to members, the others' to everyone else, so a member the group
//! bits deny is denied); only the owner may change mode and times, and may
//! give the file a group it is a member of. POSIX's superuser
//! ([`Access::posix_root`]) may do anything but execute a file no one may
//! execute. `none` and `nogroup` keep their Plan 9 meaning.

use super::Users;
use crate::error::{Error, Result};
use crate::format::value::{DMAPPEND, DMDIR, DMEXCL, DMSETGID, DMSETUID, DMSETVTX, DMTMP};

/// Read permission (a `want` bit and the "other" read bit of a mode).
pub const DMREAD: u8 = 4;
/// Write permission.
pub const DMWRITE: u8 = 2;
/// Execute permission (search, for a directory).
pub const DMEXEC: u8 = 1;

/// 9P open mode: read.
pub const OREAD: u8 = 0;
/// 9P open mode: write.
pub const OWRITE: u8 = 1;
/// 9P open mode: read and write.
pub const ORDWR: u8 = 2;
/// 9P open mode: execute (checked as read + exec).
pub const OEXEC: u8 = 3;
/// 9P open flag: truncate (needs write permission).
pub const OTRUNC: u8 = 0x10;
/// 9P open flag: remove on clunk (its parent-directory check is the
/// caller's; it adds nothing to the file's `want`).
pub const ORCLOSE: u8 = 0x40;

/// The mode bits a wstat may set: directory, append-only, exclusive,
/// temporary and the nine permission bits.
pub const WSTAT_MODE_BITS: u32 = DMDIR | DMAPPEND | DMEXCL | DMTMP | 0o777;

/// The mode bits a 9P2000.L requester may set besides those of [`WSTAT_MODE_BITS`]:
/// set-user-id, set-group-id and sticky.
pub const POSIX_MODE_BITS: u32 = DMSETUID | DMSETGID | DMSETVTX;

/// Who is asking: a user id, whether the request skips all checks (a `%`
/// attach by an administrator, or any attach to a permissive server), and
/// whose rules apply (Plan 9's, or POSIX's for 9P2000.L).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The requester's user id.
    pub uid: i32,
    /// Whether every permission check passes (for POSIX: the superuser's powers).
    pub permissive: bool,
    /// POSIX's rules (a 9P2000.L attach) instead of Plan 9's.
    pub posix: bool,
}

impl Access {
    /// An ordinary, checked requester.
    pub fn user(uid: i32) -> Access {
        Access {
            uid,
            permissive: false,
            posix: false,
        }
    }

    /// A 9P2000.L requester, checked by POSIX's rules.
    pub fn posix(uid: i32) -> Access {
        Access {
            uid,
            permissive: false,
            posix: true,
        }
    }

    /// A 9P2000.L requester with the powers POSIX gives the superuser.
    pub fn posix_root(uid: i32) -> Access {
        Access {
            uid,
            permissive: true,
            posix: true,
        }
    }

    /// A requester that skips permission checks.
    pub fn permissive(uid: i32) -> Access {
        Access {
            uid,
            permissive: true,
            posix: false,
        }
    }
}

/// The permissions an open with 9P mode `omode` needs: OREAD → read,
/// OWRITE → write, ORDWR → read + write, OEXEC → read + exec, and OTRUNC
/// adds write. Only the low two bits select the mode, so no `omode` maps to
/// an empty (always granted) request.
pub fn want_for_open(omode: u8) -> u8 {
    let base = match omode & 3 {
        OREAD => DMREAD,
        OWRITE => DMWRITE,
        ORDWR => DMREAD | DMWRITE,
        _ => DMREAD | DMEXEC,
    };
    if omode & OTRUNC != 0 {
        base | DMWRITE
    } else {
        base
    }
}

/// Whether `who` may access a file owned by `file_uid` and group `file_gid`
/// with Plan 9 mode `mode` for `want` (bits of [`DMREAD`], [`DMWRITE`],
/// [`DMEXEC`]; other bits are ignored):
///
/// 1. a permissive requester may do anything;
/// 2. a requester other than `none` is allowed if it owns the file and the
///    owner bits grant `want`, or if it is a member of the file's group
///    ([`Users::is_member`]) and the group bits grant it;
/// 3. otherwise, if the "other" bits grant `want`: exec alone on a directory
///    (search) is allowed, and anything else is allowed unless the requester
///    is a member of `nogroup`;
/// 4. everything else is denied.
pub fn allowed(
    users: &Users,
    who: &Access,
    file_uid: i32,
    file_gid: i32,
    mode: u32,
    want: u8,
) -> bool {
    if who.posix {
        return allowed_posix(users, who, file_uid, file_gid, mode, want);
    }
    if who.permissive {
        return true;
    }
    let want = u32::from(want & (DMREAD | DMWRITE | DMEXEC));
    let grants = |bits: u32| want & bits == want;
    if who.uid != users.none_id() {
        if who.uid == file_uid && grants(mode >> 6) {
            return true;
        }
        if users.is_member(who.uid, file_gid) && grants(mode >> 3) {
            return true;
        }
    }
    if grants(mode) {
        if mode & DMDIR != 0 && want == u32::from(DMEXEC) {
            return true;
        }
        if !users.is_member(who.uid, users.nogroup_id()) {
            return true;
        }
    }
    false
}

/// [`allowed`] by POSIX's rules: one class of bits applies.
fn allowed_posix(
    users: &Users,
    who: &Access,
    file_uid: i32,
    file_gid: i32,
    mode: u32,
    want: u8,
) -> bool {
    let want = u32::from(want & (DMREAD | DMWRITE | DMEXEC));
    let dir = mode & DMDIR != 0;
    if who.permissive {
        // The superuser executes a file only if someone may.
        return want & u32::from(DMEXEC) == 0 || dir || mode & 0o111 != 0;
    }
    let none = who.uid == users.none_id();
    let bits = if !none && who.uid == file_uid {
        mode >> 6
    } else if !none && users.is_member(who.uid, file_gid) {
        mode >> 3
    } else {
        let search = dir && want == u32::from(DMEXEC);
        if !search && users.is_member(who.uid, users.nogroup_id()) {
            return false;
        }
        mode
    };
    want & bits == want
}

/// Whether `who` may change a file's mode or mtime: a permissive requester,
/// the owner, or the leader of the file's group (never `none`). By POSIX's
/// rules, only the owner (or the superuser).
pub fn may_chmod_or_mtime(users: &Users, who: &Access, file_uid: i32, file_gid: i32) -> bool {
    who.permissive
        || (who.uid != users.none_id()
            && (who.uid == file_uid || (!who.posix && users.is_leader(who.uid, file_gid))))
}

/// Whether `who` may change a file's owner: only a permissive requester.
pub fn may_chown(who: &Access) -> bool {
    who.permissive
}

/// Whether `who` may change a file's group from `old_gid` to `new_gid`: a
/// permissive requester, the owner if a member of the new group, or the
/// leader of both the old and the new group (never `none`). Call it only
/// when the group actually changes.
pub fn may_chgrp(users: &Users, who: &Access, file_uid: i32, old_gid: i32, new_gid: i32) -> bool {
    if who.permissive {
        return true;
    }
    if who.uid == users.none_id() {
        return false;
    }
    (who.uid == file_uid && users.is_member(who.uid, new_gid))
        || (!who.posix && users.is_leader(who.uid, old_gid) && users.is_leader(who.uid, new_gid))
}

/// Check a wstat's new mode against the old one: the directory bit cannot
/// change, and only [`WSTAT_MODE_BITS`] may be set.
pub fn check_wstat_mode(old: u32, new: u32) -> Result<()> {
    if (old ^ new) & DMDIR != 0 {
        return Err(Error::Invalid(format!(
            "wstat mode {new:#o}: the directory bit cannot change (was {old:#o})"
        )));
    }
    if new & !WSTAT_MODE_BITS != 0 {
        return Err(Error::Invalid(format!(
            "wstat mode {new:#x}: bits {:#x} are not settable",
            new & !WSTAT_MODE_BITS
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// adm has no leader (glenda, its member, leads it); sys is led by alice,
    /// who is not a member; staff has no leader; mallory is in nogroup.
    const TABLE: &str = "\
-1:adm::glenda
0:none::
1:glenda:glenda:
2:alice::
3:bob::
4:carol::
5:mallory::
10:sys:alice:bob,carol
20:staff::bob,carol
9999:nogroup::mallory
";

    const NONE: i32 = 0;
    const GLENDA: i32 = 1;
    const ALICE: i32 = 2;
    const BOB: i32 = 3;
    const CAROL: i32 = 4;
    const MALLORY: i32 = 5;
    const SYS: i32 = 10;
    const STAFF: i32 = 20;

    fn users() -> Users {
        Users::parse(TABLE).unwrap()
    }

    const D: u32 = DMDIR;
    const R: u8 = DMREAD;
    const W: u8 = DMWRITE;
    const X: u8 = DMEXEC;

    /// (requester, file uid, file gid, mode, want, expected, what)
    type Case = (Access, i32, i32, u32, u8, bool, &'static str);

    #[test]
    fn permission_matrix() {
        let (u, pm) = (Access::user, Access::permissive);
        let cases: &[Case] = &[
            // Owner.
            (u(ALICE), ALICE, SYS, 0o640, R, true, "owner read"),
            (u(ALICE), ALICE, SYS, 0o640, W, true, "owner write"),
            (u(ALICE), ALICE, SYS, 0o640, X, false, "owner exec denied"),
            (u(ALICE), ALICE, SYS, 0o640, R | W, true, "owner rw"),
            (u(ALICE), ALICE, SYS, 0o440, R | W, false, "owner rw, no w"),
            (u(ALICE), ALICE, SYS, 0o700, X, true, "owner exec"),
            (u(ALICE), ALICE, SYS, 0o004, R, true, "owner falls to other"),
            (u(ALICE), ALICE, SYS, 0o070, R, false, "owner, not member"),
            // Group member (listed), and the user's own group.
            (u(BOB), ALICE, SYS, 0o640, R, true, "member read"),
            (u(BOB), ALICE, SYS, 0o640, W, false, "member write denied"),
            (u(BOB), ALICE, SYS, 0o670, W | X, true, "member wx"),
            (u(BOB), ALICE, SYS, 0o604, R, true, "member falls to other"),
            (u(BOB), ALICE, BOB, 0o040, R, true, "uid == gid is member"),
            // The leader of sys is not a member: no group bits.
            (u(ALICE), GLENDA, SYS, 0o070, R, false, "leader not member"),
            (u(ALICE), GLENDA, SYS, 0o074, R, true, "leader gets other"),
            // Other.
            (u(GLENDA), ALICE, SYS, 0o640, R, false, "other denied"),
            (u(GLENDA), ALICE, SYS, 0o644, R, true, "other read"),
            (u(GLENDA), ALICE, SYS, 0o646, W, true, "other write"),
            (u(GLENDA), ALICE, SYS, 0o645, R | X, true, "other rx"),
            (u(GLENDA), ALICE, SYS, 0o641, R | X, false, "other rx, no r"),
            (u(GLENDA), ALICE, STAFF, D | 0o751, X, true, "dir search"),
            (u(GLENDA), ALICE, STAFF, D | 0o750, X, false, "no search"),
            // none: other bits only, even as owner or group.
            (u(NONE), ALICE, SYS, 0o644, R, true, "none other read"),
            (u(NONE), NONE, SYS, 0o600, R, false, "none not owner"),
            (u(NONE), ALICE, NONE, 0o060, R, false, "none not member"),
            (u(NONE), NONE, NONE, 0o666, W, true, "none other write"),
            // nogroup members: other bits only for directory search.
            (u(MALLORY), ALICE, SYS, 0o644, R, false, "nogroup read"),
            (u(MALLORY), ALICE, SYS, 0o646, W, false, "nogroup write"),
            (u(MALLORY), ALICE, SYS, D | 0o755, X, true, "nogroup search"),
            (u(MALLORY), ALICE, SYS, D | 0o755, R, false, "nogroup ls"),
            (u(MALLORY), ALICE, SYS, 0o755, X, false, "nogroup exec file"),
            (u(MALLORY), MALLORY, SYS, 0o600, R, true, "nogroup owner"),
            // Unknown requester and unknown group.
            (u(77), ALICE, SYS, 0o644, R, true, "unknown user other"),
            (u(BOB), ALICE, 77, 0o070, R, false, "unknown group"),
            // Permissive.
            (pm(CAROL), ALICE, SYS, 0, R | W | X, true, "permissive"),
            (pm(NONE), ALICE, SYS, 0, W, true, "permissive none"),
        ];
        let users = users();
        for &(who, fu, fg, mode, want, expect, what) in cases {
            assert_eq!(
                allowed(&users, &who, fu, fg, mode, want),
                expect,
                "{what}: {who:?} on uid {fu} gid {fg} mode {mode:#o} want {want}"
            );
        }
    }

    #[test]
    fn permission_matrix_exhaustive_bits() {
        // For every mode and want, the three classes behave like the bit
        // formula: owner alice, group sys (member bob), other glenda.
        let users = users();
        for mode in 0..0o1000u32 {
            for want in 1..8u8 {
                let w = u32::from(want);
                let owner = w & (mode >> 6) == w || w & mode == w;
                let member = w & (mode >> 3) == w || w & mode == w;
                let other = w & mode == w;
                let ok = |uid| allowed(&users, &Access::user(uid), ALICE, SYS, mode, want);
                assert_eq!(ok(ALICE), owner, "owner, mode {mode:#o} want {want}");
                assert_eq!(ok(BOB), member, "member, mode {mode:#o} want {want}");
                assert_eq!(ok(GLENDA), other, "other, mode {mode:#o} want {want}");
                assert!(!ok(MALLORY), "nogroup, mode {mode:#o} want {want}");
            }
        }
    }

    #[test]
    fn nogroup_absent_denies_nobody() {
        let users = Users::parse("0:none::\n1:a::\n").unwrap();
        assert_eq!(users.nogroup_id(), 9999);
        assert!(allowed(&users, &Access::user(1), 5, 5, 0o004, R));
    }

    #[test]
    fn open_mode_to_want() {
        let cases = [
            (OREAD, R),
            (OWRITE, W),
            (ORDWR, R | W),
            (OEXEC, R | X),
            (OREAD | OTRUNC, R | W),
            (OWRITE | OTRUNC, W),
            (OEXEC | OTRUNC, R | W | X),
            (OREAD | ORCLOSE, R),
            (ORDWR | ORCLOSE | OTRUNC, R | W),
            (0x20, R), // OCEXEC adds nothing
        ];
        for (omode, want) in cases {
            assert_eq!(want_for_open(omode), want, "omode {omode:#x}");
        }
        for omode in 0..=u8::MAX {
            assert_ne!(want_for_open(omode), 0, "omode {omode:#x}");
        }
    }

    #[test]
    fn chmod_and_mtime_rules() {
        let users = users();
        let u = Access::user;
        // (who, file uid, file gid, expected, what)
        let cases = [
            (u(ALICE), ALICE, STAFF, true, "owner"),
            (u(ALICE), GLENDA, SYS, true, "named leader of the group"),
            (u(BOB), GLENDA, SYS, false, "member of a led group"),
            (u(BOB), GLENDA, STAFF, true, "member of a leaderless group"),
            (u(GLENDA), ALICE, SYS, false, "other"),
            (u(BOB), ALICE, BOB, true, "leads own leaderless group"),
            (u(NONE), NONE, NONE, false, "none never owns"),
            (Access::permissive(CAROL), ALICE, SYS, true, "permissive"),
            (u(GLENDA), ALICE, -1, true, "leaderless adm"),
        ];
        for (who, fu, fg, expect, what) in cases {
            assert_eq!(may_chmod_or_mtime(&users, &who, fu, fg), expect, "{what}");
        }
    }

    #[test]
    fn posix_one_class_applies() {
        let users = users();
        let (p, root) = (Access::posix, Access::posix_root);
        let cases: &[Case] = &[
            (p(ALICE), ALICE, SYS, 0o640, R, true, "owner read"),
            (
                p(ALICE),
                ALICE,
                SYS,
                0o004,
                R,
                false,
                "owner denied by its bits",
            ),
            (
                p(ALICE),
                ALICE,
                SYS,
                0o070,
                R,
                false,
                "owner, group bits not its",
            ),
            (p(BOB), ALICE, SYS, 0o640, R, true, "member read"),
            (
                p(BOB),
                ALICE,
                SYS,
                0o604,
                R,
                false,
                "member denied by group bits",
            ),
            (p(GLENDA), ALICE, SYS, 0o644, R, true, "other read"),
            (p(GLENDA), ALICE, SYS, 0o640, R, false, "other denied"),
            (
                p(NONE),
                NONE,
                NONE,
                0o600,
                R,
                false,
                "none is never the owner",
            ),
            (p(NONE), ALICE, SYS, 0o604, R, true, "none gets other"),
            (p(MALLORY), ALICE, SYS, 0o644, R, false, "nogroup read"),
            (p(MALLORY), ALICE, SYS, D | 0o711, X, true, "nogroup search"),
            (
                root(NONE),
                ALICE,
                SYS,
                0,
                R | W,
                true,
                "superuser reads and writes",
            ),
            (
                root(NONE),
                ALICE,
                SYS,
                0o600,
                X,
                false,
                "superuser exec, no x bit",
            ),
            (
                root(NONE),
                ALICE,
                SYS,
                0o001,
                X,
                true,
                "superuser exec, an x bit",
            ),
            (root(NONE), ALICE, SYS, D, X, true, "superuser search"),
        ];
        for &(who, fu, fg, mode, want, expect, what) in cases {
            assert_eq!(
                allowed(&users, &who, fu, fg, mode, want),
                expect,
                "{what}: {who:?} on uid {fu} gid {fg} mode {mode:#o} want {want}"
            );
        }
        // Exhaustively: exactly one class.
        for mode in 0..0o1000u32 {
            for want in 1..8u8 {
                let w = u32::from(want);
                let ok = |uid| allowed(&users, &p(uid), ALICE, SYS, mode, want);
                assert_eq!(ok(ALICE), w & (mode >> 6) == w, "mode {mode:#o} {want}");
                assert_eq!(ok(BOB), w & (mode >> 3) == w, "mode {mode:#o} {want}");
                assert_eq!(ok(GLENDA), w & mode == w, "mode {mode:#o} {want}");
            }
        }
    }

    #[test]
    fn posix_owner_rules() {
        let users = users();
        let p = Access::posix;
        assert!(may_chmod_or_mtime(&users, &p(ALICE), ALICE, SYS));
        assert!(
            !may_chmod_or_mtime(&users, &p(ALICE), GLENDA, SYS),
            "leader"
        );
        assert!(!may_chmod_or_mtime(&users, &p(NONE), NONE, NONE));
        assert!(may_chmod_or_mtime(
            &users,
            &Access::posix_root(NONE),
            ALICE,
            SYS
        ));
        assert!(may_chgrp(&users, &p(BOB), BOB, BOB, SYS), "owner, member");
        assert!(
            !may_chgrp(&users, &p(ALICE), GLENDA, SYS, ALICE),
            "leader of both"
        );
        assert!(
            !may_chgrp(&users, &p(ALICE), ALICE, STAFF, SYS),
            "not a member"
        );
        assert!(!may_chown(&p(ALICE)));
        assert!(may_chown(&Access::posix_root(ALICE)));
    }

    #[test]
    fn chown_only_permissive() {
        assert!(may_chown(&Access::permissive(BOB)));
        assert!(!may_chown(&Access::user(BOB)));
        assert!(!may_chown(&Access::user(-1)));
    }

    #[test]
    fn chgrp_rules() {
        let users = users();
        let u = Access::user;
        // (who, file uid, old gid, new gid, expected, what)
        let cases = [
            (u(BOB), BOB, BOB, SYS, true, "owner, member of new"),
            (
                u(BOB),
                BOB,
                BOB,
                STAFF,
                true,
                "owner, member of new (leaderless)",
            ),
            (
                u(ALICE),
                ALICE,
                STAFF,
                SYS,
                false,
                "owner, leads new, not member",
            ),
            (u(ALICE), GLENDA, SYS, ALICE, true, "leader of both"),
            (
                u(BOB),
                GLENDA,
                STAFF,
                BOB,
                true,
                "leader of both (leaderless)",
            ),
            (u(BOB), GLENDA, SYS, STAFF, false, "leader of new only"),
            (u(BOB), GLENDA, STAFF, SYS, false, "leader of old only"),
            (u(GLENDA), ALICE, SYS, STAFF, false, "stranger"),
            (u(NONE), NONE, NONE, STAFF, false, "none"),
            (
                Access::permissive(CAROL),
                ALICE,
                SYS,
                77,
                true,
                "permissive",
            ),
            (u(BOB), BOB, BOB, 77, false, "unknown new group"),
        ];
        for (who, fu, old, new, expect, what) in cases {
            assert_eq!(may_chgrp(&users, &who, fu, old, new), expect, "{what}");
        }
    }

    #[test]
    fn wstat_mode_rules() {
        assert!(check_wstat_mode(0o644, 0o600).is_ok());
        assert!(check_wstat_mode(0o644, DMAPPEND | DMEXCL | DMTMP | 0o777).is_ok());
        assert!(check_wstat_mode(DMDIR | 0o755, DMDIR | 0o700).is_ok());
        assert!(check_wstat_mode(DMDIR | 0o755, 0o755).is_err());
        assert!(check_wstat_mode(0o644, DMDIR | 0o644).is_err());
        assert!(check_wstat_mode(0o644, 0o4644).is_err());
        assert!(check_wstat_mode(0o644, 0x0800_0000 | 0o644).is_err());
    }
}
