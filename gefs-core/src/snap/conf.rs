//! Settings (`KCONF` keys): global ones in the snapshot tree, per-label ones
//! in the tree a mutable label names (the retention schedule is one).

use crate::alloc::Tier;
use crate::error::{Error, Result};
use crate::format::key;
use crate::format::msg::Msg;
use crate::store::{ReadCtx, TreeId};
use crate::tree::{self, Root};

use super::Snaps;

impl Snaps<'_> {
    /// Set a configuration key: globally (in the snapshot tree) or for the
    /// tree a mutable label names.
    pub fn set_conf(&self, label: Option<&str>, name: &str, val: &[u8]) -> Result<()> {
        let t = self.conf_tree(label)?;
        let r = self.s.upsert(
            t,
            vec![Msg::insert(key::conf(name.as_bytes()), val.to_vec())],
            Tier::Reserve,
        );
        self.s.unmount(t);
        r
    }

    /// Remove a configuration key (removing one that is not set is not an
    /// error; the reference asserts, §13.2 #17).
    pub fn clear_conf(&self, label: Option<&str>, name: &str) -> Result<()> {
        let t = self.conf_tree(label)?;
        let r = self.s.upsert(
            t,
            vec![Msg::delete(key::conf(name.as_bytes()))],
            Tier::Reserve,
        );
        self.s.unmount(t);
        r
    }

    /// A configuration key, looked up in a label's tree (if given and set
    /// there), then globally.
    ///
    /// Reading a label's setting does not mount its tree (a mounted label cannot be deleted,
    /// and the daemon's retention pass reads every mutable label's `retain`).
    pub fn conf(&self, label: Option<&str>, name: &str) -> Result<Option<Vec<u8>>> {
        if let Some(l) = label {
            if let Some(v) = self.label_lookup(l, &key::conf(name.as_bytes()))? {
                return Ok(Some(v));
            }
        }
        self.s.lookup(TreeId::SNAP, &key::conf(name.as_bytes()))
    }

    /// Look a key up in the tree `label` names without mounting it: a mounted tree's current
    /// root and write buffer, else the root and message log its snapshot record holds (which
    /// only a mount can change).
    fn label_lookup(&self, label: &str, k: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(t) = self.s.mounted_label(label) {
            return self.s.lookup(t, k);
        }
        let _g = self.s.pin_epoch();
        let lv = self
            .s
            .label_val(label)?
            .ok_or_else(|| self.s.no_label(label))?;
        let rec = self
            .s
            .snap_record(lv.id)?
            .ok_or_else(|| Error::NotFound(format!("snapshot record {}", lv.id)))?;
        let root = Root {
            bp: rec.root,
            height: rec.ht,
        };
        let rl = self.s.read_log(&rec.log)?;
        let recs = rl.recs()?;
        let run = crate::tree::pending::Run::from_recs(recs);
        let runs: crate::tree::pending::Runs = std::sync::Arc::from(vec![std::sync::Arc::new(run)]);
        tree::lookup(&ReadCtx::with_runs(self.s, runs), &root, k)
    }

    fn conf_tree(&self, label: Option<&str>) -> Result<TreeId> {
        let Some(l) = label else {
            return Ok(TreeId::SNAP);
        };
        match self.s.label_val(l)? {
            Some(lv) if lv.is_mutable() => self.s.mount(l),
            Some(_) => Err(Error::Invalid(format!(
                "{l} is an immutable snapshot; settings go on mutable labels"
            ))),
            None => Err(self.s.no_label(l)),
        }
    }
}
