//! Formatting a device (the reference's "ream").
//!
//! A new image holds three snapshot trees, each with a root directory:
//! `empty` (immutable, the template for new hierarchies), `adm` (mutable;
//! also holds the `users` file naming the first administrator) and `main`
//! (mutable, the default attach). The snapshot tree holds their labels and
//! records. Everything is written through the ordinary tree and commit code,
//! so a new image is exactly as checked as any other.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Config, Mutation, Store, TreeId};
use crate::alloc::{Allocator, Tier};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::format::msg::Msg;
use crate::format::superblock::Geometry;
use crate::format::value::{LabelVal, TreeRec, Xdir, DMDIR, LABEL_MUTABLE};
use crate::format::{key, Bptr};
use crate::ids::Gen;
use crate::tree::{self, Root};

/// Options for formatting.
#[derive(Debug, Clone)]
pub struct FormatOpts {
    /// The first administrator (a member of `adm`).
    pub user: String,
    /// Block cache for the formatting run.
    pub cache_bytes: usize,
}

/// The user id of `adm` in the default table.
pub const ADM_ID: i32 = -1;
/// Qid of the root directory of `empty` and `main`.
pub const QID_MAIN_ROOT: u64 = 0;
/// Qid of the root directory of `adm`.
pub const QID_ADM_ROOT: u64 = 1;
/// Qid of `/users` in `adm`.
pub const QID_USERS: u64 = 2;

/// Check a user name for the users table.
pub fn valid_user(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 64
        || name == "adm"
        || name == "none"
        || name == "nogroup"
        || name.starts_with('-')
        || name
            .bytes()
            .any(|c| c <= b' ' || c == b':' || c == b',' || c == b'/' || c == 0x7f);
    if bad {
        return Err(Error::Invalid(format!(
            "user name {name:?}: 1 to 64 printable bytes, no ':', ',' or '/', not adm, none or nogroup"
        )));
    }
    Ok(())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

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

impl Store {
    /// Format `dev` and return the new store, open. The image is durable
    /// when this returns.
    pub fn format(dev: Arc<dyn Device>, opts: &FormatOpts) -> Result<Store> {
        valid_user(&opts.user)?;
        let geo = Geometry::for_device(dev.size())?;
        // Whatever image was here stops being one before anything new is
        // written, so a crash mid-format never leaves an old superblock
        // pointing into half-overwritten space.
        let zero = [0u8; crate::format::BLKSZ];
        for at in [0, geo.sb_b().0, super::open::sb_b_addr(dev.size()).0] {
            dev.write_at(&zero, at).map_err(|e| Error::Io {
                op: crate::error::IoOp::Write,
                off: at,
                source: e,
            })?;
        }
        dev.flush().map_err(|e| Error::Io {
            op: crate::error::IoOp::Flush,
            off: 0,
            source: e,
        })?;
        let alloc = Allocator::format(geo)?;
        let mut m = Mutation {
            commit_gen: 0,
            nextgen: 1,
            nextqid: QID_USERS + 1,
            trees: Vec::new(),
        };
        let snap_gen = m.take_gen();
        let placeholder = Root {
            bp: Bptr::NONE,
            height: 1,
        };
        m.trees
            .push(super::open::snap_tree_state(placeholder, snap_gen));
        let cfg = Config {
            cache_bytes: opts.cache_bytes,
            read_only: false,
        };
        let s = Store::assemble(dev, &cfg, alloc, m, geo);
        s.populate(opts)?;
        s.sync()?;
        Ok(s)
    }

    fn populate(&self, opts: &FormatOpts) -> Result<()> {
        let now = now_ns();
        let mut m = self.mutlk.lock();
        // The snapshot tree starts as one empty leaf.
        let snap_wgen = m.tree(TreeId::SNAP)?.wgen;
        let root = tree::create(&super::ctx::WriteCtx::new(
            self,
            super::ctx::Policy::unshared(snap_wgen),
            Tier::Normal,
        ))?;
        m.trees[0].root = root;
        self.roots.write()[0] = super::Published::bare(root);
        let mut snap_msgs = Vec::new();
        for (label, mutable, qid) in [
            ("empty", false, QID_MAIN_ROOT),
            ("adm", true, QID_ADM_ROOT),
            ("main", true, QID_MAIN_ROOT),
        ] {
            let id = m.take_gen();
            let t = self.new_tree(&mut m, label, id)?;
            self.upsert_locked(&mut m, t, root_dir(qid, now), Tier::Normal)?;
            if label == "adm" {
                self.write_users(&mut m, t, &opts.user, now)?;
            }
            let ts = m.tree(t)?;
            let rec = TreeRec {
                nref: 0,
                nlbl: 1,
                ht: ts.root.height,
                flag: 0,
                gen: id.0,
                pred: TreeRec::NONE,
                succ: TreeRec::NONE,
                base: 0,
                root: ts.root.bp,
                log: Bptr::NONE,
                nodes: ts.nodes,
            };
            let flags = if mutable { LABEL_MUTABLE } else { 0 };
            snap_msgs.push(Msg::insert(
                key::label(label.as_bytes()),
                LabelVal { id: id.0, flags }.encode(),
            ));
            snap_msgs.push(Msg::insert(key::snap(id.0), rec.encode()));
            m.trees.pop();
            self.roots.write().pop();
        }
        self.upsert_locked(&mut m, TreeId::SNAP, snap_msgs, Tier::Normal)
    }

    /// A new, empty, mutable tree whose blocks are born in generation `id`.
    fn new_tree(&self, m: &mut Mutation, label: &str, id: Gen) -> Result<TreeId> {
        let root = tree::create(&super::ctx::WriteCtx::new(
            self,
            super::ctx::Policy::unshared(id),
            Tier::Normal,
        ))?;
        let mut st = super::open::snap_tree_state(root, id);
        st.label = label.to_string();
        st.nodes = 1;
        m.trees.push(st);
        self.roots.write().push(super::Published::bare(root));
        Ok(TreeId(m.trees.len() - 1))
    }

    fn write_users(&self, m: &mut Mutation, t: TreeId, user: &str, now: u64) -> Result<()> {
        let text = crate::users::default_table(user);
        let wgen = m.tree(t)?.wgen;
        let (bp, _b, ()) = self.new_zeroed(
            crate::alloc::Kind::Data {
                hint: QID_USERS,
                seq: true,
            },
            Tier::Normal,
            wgen,
            |buf| {
                buf[..text.len()].copy_from_slice(text.as_bytes());
                Ok(())
            },
        )?;
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
        let msgs = vec![
            Msg::insert(key::dat(QID_USERS, 0), bp.to_bytes().to_vec()),
            Msg::insert(key::ent(QID_ADM_ROOT, b"users"), d.encode()),
        ];
        self.upsert_locked(m, t, msgs, Tier::Normal)
    }
}
