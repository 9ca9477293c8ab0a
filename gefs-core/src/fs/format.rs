//! What a new file system holds: a root directory in each of `empty`,
//! `adm` and `main`, and in `adm` the users file naming the first
//! administrator ([`users::default_table`]). [`Store::format`] is defined
//! here; the store makes the labels and trees (`store/format.rs`) and this
//! fills them.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::device::Device;
use crate::error::Result;
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::value::{Xdir, DMDIR};
use crate::format::Encode;
use crate::store::{FormatOpts, Seed, Store};
use crate::users;

/// The user id of `adm` in the default table.
pub const ADM_ID: i32 = users::DEFAULT_ADM_ID;
/// Qid of the root directory of `empty` and `main`.
pub const QID_MAIN_ROOT: u64 = 0;
/// Qid of the root directory of `adm`.
pub const QID_ADM_ROOT: u64 = 1;
/// Qid of `/users` in `adm`.
pub const QID_USERS: u64 = 2;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The messages of a root directory with qid `qid`.
fn root_dir(qid: u64, now: u64) -> Vec<Msg> {
    let d = Xdir {
        qid_path: qid,
        qid_type: (DMDIR >> 24) as u8,
        mode: DMDIR | 0o775,
        atime: now,
        mtime: now,
        uid: ADM_ID,
        gid: ADM_ID,
        muid: ADM_ID,
        ..Xdir::default()
    };
    let ent = key::ent(key::ROOT_PQID, b"");
    vec![
        Msg::insert(ent.clone(), d.encode()),
        Msg::insert(key::up(qid), ent),
    ]
}

/// Write `/users` into `adm`'s tree: the default table for `user`.
fn write_users(seed: &mut Seed<'_>, user: &str, now: u64) -> Result<()> {
    let text = users::default_table(user);
    let bp = seed.write_data(QID_USERS, text.as_bytes())?;
    let d = Xdir {
        qid_path: QID_USERS,
        mode: 0o664,
        atime: now,
        mtime: now,
        length: text.len() as u64,
        uid: ADM_ID,
        gid: ADM_ID,
        muid: ADM_ID,
        ..Xdir::default()
    };
    seed.upsert(vec![
        Msg::insert(key::dat(QID_USERS, 0), bp.to_bytes().to_vec()),
        Msg::insert(key::ent(QID_ADM_ROOT, b"users"), d.encode()),
    ])
}

impl Store {
    /// Format `dev` as a new file system whose first administrator is
    /// `opts.user` ([`users::check_first_admin`]) and return the store,
    /// open. The image is durable when this returns.
    pub fn format(dev: Arc<dyn Device>, opts: &FormatOpts) -> Result<Store> {
        users::check_first_admin(&opts.user)?;
        let now = now_ns();
        Store::format_trees(dev, opts.cache_bytes, QID_USERS + 1, &mut |seed, label| {
            let qid = if label == "adm" {
                QID_ADM_ROOT
            } else {
                QID_MAIN_ROOT
            };
            seed.upsert(root_dir(qid, now))?;
            if label == "adm" {
                write_users(seed, &opts.user, now)?;
            }
            Ok(())
        })
    }
}
