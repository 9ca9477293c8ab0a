//! Labels: the names trees are mounted by. A label maps to a snapshot
//! record in the snapshot tree (FORMAT.md §9); the store reads them to
//! mount a tree and to say which labels exist when one does not. Taking,
//! forking and deleting snapshots is the snapshot layer's (`crate::snap`).

use std::ops::Bound;

use super::{Store, TreeId};
use crate::error::{Error, Result};
use crate::format::key;
use crate::format::value::{LabelVal, TreeRec};
use crate::format::Decode;
use crate::ids::BlockAddr;
use crate::CorruptKind;

/// One label as [`Store::labels`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LabelInfo {
    /// The label.
    pub name: String,
    /// The snapshot record it names.
    pub id: u64,
    /// Whether it names a live, mutable tree.
    pub mutable: bool,
}

/// Check a label name.
pub fn valid_label(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 200
        || name == "."
        || name == ".."
        || name.bytes().any(|c| c < 0x20 || c == b'/' || c == 0x7f);
    if bad {
        return Err(Error::Invalid(format!(
            "label {name:?}: 1 to 200 printable bytes, no '/'"
        )));
    }
    Ok(())
}

impl Store {
    /// The value of label `name`, if it exists.
    pub(crate) fn label_val(&self, name: &str) -> Result<Option<LabelVal>> {
        match self.lookup(TreeId::SNAP, &key::label(name.as_bytes()))? {
            None => Ok(None),
            Some(v) => LabelVal::decode(&v)
                .map(Some)
                .map_err(|_| self.snap_corrupt("label")),
        }
    }

    /// Snapshot record `id` as the snapshot tree holds it, if it exists.
    pub(crate) fn snap_record(&self, id: u64) -> Result<Option<TreeRec>> {
        match self.lookup(TreeId::SNAP, &key::snap(id))? {
            None => Ok(None),
            Some(v) => TreeRec::decode(&v)
                .map(Some)
                .map_err(|_| self.snap_corrupt("snapshot record")),
        }
    }

    /// The error for a label that does not exist, naming the labels that do.
    pub(crate) fn no_label(&self, name: &str) -> Error {
        Error::NoLabel {
            name: name.to_string(),
            labels: self
                .labels()
                .map(|l| l.into_iter().map(|l| l.name).collect())
                .unwrap_or_default(),
        }
    }

    /// Every label and the record it names. A name that is not UTF-8 (only
    /// a damaged image has one) is shown lossily.
    ///
    /// Each batch resumes after the raw key the previous one ended on, and
    /// a scan returns strictly ascending keys, so the loop ends after at
    /// most one pass over the labels.
    pub fn labels(&self) -> Result<Vec<LabelInfo>> {
        let lo = [key::KLABEL];
        let hi = [key::KLABEL + 1];
        let mut out: Vec<LabelInfo> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let from = match &last {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Included(&lo[..]),
            };
            let batch = self.scan(TreeId::SNAP, from, Bound::Excluded(&hi[..]), 512)?;
            let Some((k, _)) = batch.last() else {
                return Ok(out);
            };
            last = Some(k.clone());
            for (k, v) in batch {
                let lv = LabelVal::decode(&v).map_err(|_| self.snap_corrupt("label"))?;
                out.push(LabelInfo {
                    name: String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned(),
                    id: lv.id,
                    mutable: lv.is_mutable(),
                });
            }
        }
    }

    /// A corruption error in the snapshot tree, at its root.
    pub(crate) fn snap_corrupt(&self, what: &str) -> Error {
        let addr = self
            .root(TreeId::SNAP)
            .map_or(BlockAddr::NONE, |r| r.bp.addr);
        Error::corrupt(
            addr,
            CorruptKind::Value,
            format!("snapshot tree: malformed {what}"),
        )
    }
}
