//! Users and groups (the `users` file of the `adm` tree) and permissions.
//!
//! The table is Plan 9's users(6) format, one entry per line:
//!
//! ```text
//! id:name:leader:members
//! -1:adm::glenda
//! 0:none::
//! 1:glenda:glenda:
//! ```
//!
//! * `id` is a 32-bit signed integer (negative ids are allowed); `name` is a
//!   user name; `leader` is empty (no leader) or a user name; `members` is a
//!   comma-separated list of user names, possibly empty.
//! * Every user is also a group of the same name and id.
//! * Blank lines and lines whose first non-blank character is `#` are ignored.
//!   Each field is trimmed of surrounding white space; empty items in a
//!   member list (`a,,b`, a trailing comma) are skipped, and a member listed
//!   twice is kept once.
//!
//! Parsing takes two passes: the first collects ids and names, the second
//! resolves leaders and members by name, so a line may name users defined
//! later in the file.
//!
//! Invariants of a [`Users`] value (established by [`Users::parse`] and kept
//! because the table is immutable once built):
//! * names and ids are unique, and every name passes [`check_name`];
//! * every leader and member id names a user of the table;
//! * no group's leader is the `none` user;
//! * the special ids ([`Users::none_id`], [`Users::adm_id`],
//!   [`Users::nogroup_id`]) are the ids of the users named `none`, `adm` and
//!   `nogroup`, or the defaults 0, −1 and 9999 when the table has no such user.
//!
//! Permission checks ([`allowed`], [`want_for_open`]) and the wstat rules
//! ([`may_chmod_or_mtime`], [`may_chown`], [`may_chgrp`],
//! [`check_wstat_mode`]) live in the private `perm` submodule and are
//! re-exported here.

mod perm;
#[cfg(test)]
mod tests;

pub use perm::{
    allowed, check_wstat_mode, may_chgrp, may_chmod_or_mtime, may_chown, want_for_open, Access,
    DMEXEC, DMREAD, DMWRITE, OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE, POSIX_MODE_BITS,
    WSTAT_MODE_BITS,
};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A users file must be strictly smaller than this many bytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// The longest user name, in bytes (the wstat limit for uid and gid strings).
pub const MAX_NAME_BYTES: usize = 64;
/// The name of the anonymous user, who gets only "other" permissions.
pub const NONE_NAME: &str = "none";
/// The name of the administrators' group.
pub const ADM_NAME: &str = "adm";
/// The name of the group whose members are denied "other" permissions.
pub const NOGROUP_NAME: &str = "nogroup";
/// The id of `none` when the table has no user of that name.
pub const DEFAULT_NONE_ID: i32 = 0;
/// The id of `adm` when the table has no user of that name.
pub const DEFAULT_ADM_ID: i32 = -1;
/// The id of `nogroup` when the table has no user of that name.
pub const DEFAULT_NOGROUP_ID: i32 = 9999;

/// One user (and the group of the same name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    id: i32,
    name: String,
    leader: Option<i32>,
    members: Vec<i32>,
}

impl User {
    /// The user's (and group's) id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The user's (and group's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of the group's leader; `None` means no leader (then every
    /// member leads the group, see [`Users::is_leader`]).
    pub fn leader(&self) -> Option<i32> {
        self.leader
    }

    /// The ids of the group's listed members, in file order. The user itself
    /// is a member of its own group even when not listed.
    pub fn members(&self) -> &[i32] {
        &self.members
    }
}

/// A parsed users table. Immutable: a reload builds a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    /// In file order, so that [`Users::serialize`] keeps the author's order.
    users: Vec<User>,
    by_id: HashMap<i32, usize>,
    by_name: HashMap<String, usize>,
    none: i32,
    adm: i32,
    nogroup: i32,
}

/// Check that `name` may appear in a users table: 1 to [`MAX_NAME_BYTES`]
/// bytes, no control or white-space characters, no `:`, `,` or `/`.
pub fn check_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_NAME_BYTES {
        "is longer than 64 bytes"
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "contains a control or white-space character"
    } else if name.contains([':', ',', '/']) {
        "contains ':', ',' or '/'"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!("user name {name:?} {why}")))
}

/// Check the name of a new file system's first administrator: a name
/// [`check_name`] accepts that is not one of the table's own (`adm`,
/// `none`, `nogroup`) and does not start with `-` (the tools would read it
/// as an option). The one user-name rule of formatting.
pub fn check_first_admin(name: &str) -> Result<()> {
    check_name(name)?;
    let why = if [ADM_NAME, NONE_NAME, NOGROUP_NAME].contains(&name) {
        "is one of the table's own names (adm, none, nogroup)"
    } else if name.starts_with('-') {
        "starts with '-'"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!("user name {name:?} {why}")))
}

/// The table a new file system starts with; `first_admin` becomes a member
/// of `adm` and gets a group of its own, which it leads. The caller
/// validates the name ([`check_first_admin`]).
pub fn default_table(first_admin: &str) -> String {
    format!("-1:{ADM_NAME}::{first_admin}\n0:{NONE_NAME}::\n1:{first_admin}:{first_admin}:\n")
}

/// A line of the first pass: the fields resolved in the second pass.
struct Pending<'a> {
    line: usize,
    leader: &'a str,
    members: &'a str,
}

/// The state of the first pass: users with names and ids, and what each
/// line left for the second pass.
#[derive(Default)]
struct FirstPass<'a> {
    users: Vec<User>,
    pending: Vec<Pending<'a>>,
    by_id: HashMap<i32, usize>,
    by_name: HashMap<String, usize>,
}

impl<'a> FirstPass<'a> {
    /// Add line number `line` (trimmed, not blank, not a comment).
    fn add(&mut self, line: usize, text: &'a str) -> Result<()> {
        let fields: Vec<&str> = text.split(':').map(str::trim).collect();
        let [id, name, leader, members] = fields[..] else {
            return Err(line_err(
                line,
                format_args!(
                    "expected id:name:leader:members (3 colons), found {} colons",
                    fields.len().saturating_sub(1)
                ),
            ));
        };
        let id: i32 = id
            .parse()
            .map_err(|_| line_err(line, format_args!("id {id:?} is not a 32-bit integer")))?;
        check_name(name).map_err(|e| line_err(line, e))?;
        let line_of = |i: usize| self.pending.get(i).map_or(0, |p| p.line);
        if let Some(&prev) = self.by_name.get(name) {
            return Err(line_err(
                line,
                format_args!("duplicate name {name:?} (also on line {})", line_of(prev)),
            ));
        }
        if let Some(&prev) = self.by_id.get(&id) {
            return Err(line_err(
                line,
                format_args!("duplicate id {id} (also on line {})", line_of(prev)),
            ));
        }
        self.by_id.insert(id, self.users.len());
        self.by_name.insert(name.to_owned(), self.users.len());
        self.users.push(User {
            id,
            name: name.to_owned(),
            leader: None,
            members: Vec::new(),
        });
        self.pending.push(Pending {
            line,
            leader,
            members,
        });
        Ok(())
    }
}

fn line_err(line: usize, what: impl fmt::Display) -> Error {
    Error::Invalid(format!("users file line {line}: {what}"))
}

impl Users {
    /// Parse a users file. Errors name the offending line.
    pub fn parse(text: &str) -> Result<Users> {
        if text.len() >= MAX_FILE_BYTES {
            return Err(Error::Invalid(format!(
                "users file is {} bytes; it must be smaller than {MAX_FILE_BYTES}",
                text.len()
            )));
        }
        let mut first = FirstPass::default();
        for (i, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                first.add(i + 1, trimmed)?;
            }
        }
        let FirstPass {
            users,
            pending,
            by_id,
            by_name,
        } = first;
        let mut table = Users::from_parts(users, by_id, by_name);
        let mut resolved = Vec::with_capacity(pending.len());
        for p in &pending {
            resolved.push(table.resolve(p)?);
        }
        for (user, (leader, members)) in table.users.iter_mut().zip(resolved) {
            user.leader = leader;
            user.members = members;
        }
        Ok(table)
    }

    /// Parse a users file read as bytes (as from the `users` file of the
    /// `adm` tree); text that is not UTF-8 is an error.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Users> {
        if bytes.len() >= MAX_FILE_BYTES {
            return Err(Error::Invalid(format!(
                "users file is {} bytes; it must be smaller than {MAX_FILE_BYTES}",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes
                .get(..e.valid_up_to())
                .map_or(0, |ok| ok.iter().filter(|&&b| b == b'\n').count())
                + 1;
            line_err(line, "not valid UTF-8")
        })?;
        Users::parse(text)
    }

    /// The second pass for one line: its leader and member ids.
    fn resolve(&self, p: &Pending<'_>) -> Result<(Option<i32>, Vec<i32>)> {
        let leader = if p.leader.is_empty() {
            None
        } else {
            let id = self
                .by_name(p.leader)
                .ok_or_else(|| line_err(p.line, format_args!("unknown leader {:?}", p.leader)))?
                .id;
            if id == self.none {
                return Err(line_err(p.line, "none cannot be a group leader"));
            }
            Some(id)
        };
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        for m in p
            .members
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            let id = self
                .by_name(m)
                .ok_or_else(|| line_err(p.line, format_args!("unknown member {m:?}")))?
                .id;
            if seen.insert(id) {
                members.push(id);
            }
        }
        Ok((leader, members))
    }

    /// Build the table from users whose maps are already consistent, and
    /// look up the special ids by name.
    fn from_parts(
        users: Vec<User>,
        by_id: HashMap<i32, usize>,
        by_name: HashMap<String, usize>,
    ) -> Users {
        let special = |name: &str, default: i32| {
            by_name
                .get(name)
                .and_then(|&i| users.get(i))
                .map_or(default, |u| u.id)
        };
        let none = special(NONE_NAME, DEFAULT_NONE_ID);
        let adm = special(ADM_NAME, DEFAULT_ADM_ID);
        let nogroup = special(NOGROUP_NAME, DEFAULT_NOGROUP_ID);
        Users {
            users,
            by_id,
            by_name,
            none,
            adm,
            nogroup,
        }
    }

    /// The table used when the stored one is unusable and the server is
    /// permissive: `-1:adm::` and `0:none::`.
    pub fn fallback() -> Users {
        let users = vec![
            User {
                id: DEFAULT_ADM_ID,
                name: ADM_NAME.to_owned(),
                leader: None,
                members: Vec::new(),
            },
            User {
                id: DEFAULT_NONE_ID,
                name: NONE_NAME.to_owned(),
                leader: None,
                members: Vec::new(),
            },
        ];
        let by_id = users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
        let by_name = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();
        Users::from_parts(users, by_id, by_name)
    }

    /// The user called `name`.
    pub fn by_name(&self, name: &str) -> Option<&User> {
        self.by_name.get(name).and_then(|&i| self.users.get(i))
    }

    /// The user with id `id`.
    pub fn by_id(&self, id: i32) -> Option<&User> {
        self.by_id.get(&id).and_then(|&i| self.users.get(i))
    }

    /// The name a stat shows for a uid or muid: the user's name, or `none`
    /// when the id is not in the table.
    pub fn name_of(&self, id: i32) -> &str {
        self.by_id(id).map_or(NONE_NAME, User::name)
    }

    /// The name a stat shows for a gid: the group's name; for an id not in
    /// the table, the name of the `nogroup` user if the table has one, else
    /// `none`. (The reference assigned this fallback to the wrong variable
    /// and failed the stat, defect #9.)
    pub fn group_name_of(&self, id: i32) -> &str {
        self.by_id(id)
            .or_else(|| self.by_id(self.nogroup))
            .map_or(NONE_NAME, User::name)
    }

    /// Whether user `uid` is a member of group `gid`: both exist and either
    /// `uid == gid` or `uid` is listed among the group's members.
    pub fn is_member(&self, uid: i32, gid: i32) -> bool {
        match (self.by_id(uid), self.by_id(gid)) {
            (Some(_), Some(g)) => uid == gid || g.members.contains(&uid),
            _ => false,
        }
    }

    /// Whether user `uid` leads group `gid`: the group exists and either it
    /// names `uid` as its leader, or it has no leader and `uid` is a member
    /// (in the sense of [`Users::is_member`], so a user leads its own
    /// leaderless group).
    pub fn is_leader(&self, uid: i32, gid: i32) -> bool {
        match self.by_id(gid) {
            Some(g) => match g.leader {
                Some(l) => l == uid,
                None => self.is_member(uid, gid),
            },
            None => false,
        }
    }

    /// The id of `none` (looked up by name; [`DEFAULT_NONE_ID`] if absent).
    pub fn none_id(&self) -> i32 {
        self.none
    }

    /// The id of `adm` (looked up by name; [`DEFAULT_ADM_ID`] if absent).
    pub fn adm_id(&self) -> i32 {
        self.adm
    }

    /// The id of `nogroup` (looked up by name; [`DEFAULT_NOGROUP_ID`] if
    /// absent).
    pub fn nogroup_id(&self) -> i32 {
        self.nogroup
    }

    /// The users in file order.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the table has no users at all.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The table in users(6) format, one line per user in file order
    /// (comments and blank lines are not kept). Parsing the result gives an
    /// equal table.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        for u in &self.users {
            let leader = u.leader.map_or("", |l| self.name_of(l));
            out.push_str(&u.id.to_string());
            out.push(':');
            out.push_str(&u.name);
            out.push(':');
            out.push_str(leader);
            out.push(':');
            for (i, &m) in u.members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(self.name_of(m));
            }
            out.push('\n');
        }
        out
    }
}

impl FromStr for Users {
    type Err = Error;

    fn from_str(s: &str) -> Result<Users> {
        Users::parse(s)
    }
}
