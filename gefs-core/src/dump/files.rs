//! File views of a snapshot: `ls`, `stat` and `cat` of a path, and the
//! deadlist segments a snapshot owns.

use serde::Serialize;

use crate::format::value::Xdir;
use crate::fs::{Entry, Fs, Mount, Who, MAX_IO, OREAD};
use crate::snap::Snaps;
use crate::store::Store;

/// One entry as `ls` and `stat` show it.
#[derive(Debug, Clone, Serialize)]
pub struct StatView {
    /// Name ("/" for a root).
    pub name: String,
    /// qid path.
    pub qid: u64,
    /// qid version.
    pub vers: u32,
    /// Plan 9 mode, octal with type letters (`d` dir, `a` append, `l` exclusive, `t`
    /// temporary, `b` block device, `c` character device).
    pub mode: String,
    /// Length in bytes (0 for a device node).
    pub length: u64,
    /// A device node's major and minor numbers, `MAJOR,MINOR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Owner.
    pub uid: String,
    /// Group.
    pub gid: String,
    /// Last modifier.
    pub muid: String,
    /// Modification time, ns since the epoch.
    pub mtime: u64,
}

fn mode_text(d: &Xdir) -> String {
    let mode = d.mode;
    let mut t = String::new();
    if let Some(dev) = d.device() {
        t.push(if dev.block { 'b' } else { 'c' });
    }
    for (bit, c) in [
        (crate::format::value::DMDIR, 'd'),
        (crate::format::value::DMAPPEND, 'a'),
        (crate::format::value::DMEXCL, 'l'),
        (crate::format::value::DMTMP, 't'),
    ] {
        if mode & bit != 0 {
            t.push(c);
        }
    }
    if t.is_empty() {
        t.push('-');
    }
    format!("{t}{:04o}", mode & 0o7777)
}

fn view(fs: &Fs, e: &Entry) -> StatView {
    view_of(fs, &e.name, &e.dir)
}

fn view_of(fs: &Fs, name: &[u8], d: &Xdir) -> StatView {
    let u = fs.users();
    StatView {
        name: if name.is_empty() {
            "/".into()
        } else {
            String::from_utf8_lossy(name).into_owned()
        },
        qid: d.qid_path,
        vers: d.qid_vers,
        mode: mode_text(d),
        length: d.size(),
        device: d.device().map(|v| format!("{},{}", v.major, v.minor)),
        uid: u.name_of(d.uid).to_string(),
        gid: u.group_name_of(d.gid).to_string(),
        muid: u.name_of(d.muid).to_string(),
        mtime: d.mtime,
    }
}

/// Walk `path` (slash separated) from the root of `label`.
pub fn resolve(fs: &Fs, label: &str, path: &str) -> crate::fs::Result<(Mount, Entry)> {
    let (m, mut e) = fs.attach(label)?;
    let who = Who::permissive(fs.uid("adm")?);
    for el in path.split('/').filter(|s| !s.is_empty()) {
        e = fs.walk(&m, &e, el.as_bytes(), &who)?;
    }
    Ok((m, e))
}

/// `stat`: one entry.
pub fn stat(fs: &Fs, label: &str, path: &str) -> crate::fs::Result<StatView> {
    let (_, e) = resolve(fs, label, path)?;
    Ok(view(fs, &e))
}

/// `ls`: a directory's entries in key order (or the one entry of a file),
/// as the listing holds them: an entry is shown from its own value, never
/// walked to, so a damaged entry named `..` shows itself, not the
/// directory above.
pub fn ls(fs: &Fs, label: &str, path: &str) -> crate::fs::Result<Vec<StatView>> {
    let (m, e) = resolve(fs, label, path)?;
    if !e.is_dir() {
        return Ok(vec![view(fs, &e)]);
    }
    let who = Who::permissive(fs.uid("adm")?);
    let o = fs.open(&m, &e, OREAD, &who)?;
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = fs.readdir(&o, after.as_deref(), 512)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.name.clone());
        out.extend(batch.iter().map(|de| view_of(fs, &de.name, &de.dir)));
    }
    Ok(out)
}

/// `cat`: a file's contents, written to `out`.
pub fn cat(
    fs: &Fs,
    label: &str,
    path: &str,
    out: &mut dyn std::io::Write,
) -> crate::fs::Result<u64> {
    let (m, e) = resolve(fs, label, path)?;
    let who = Who::permissive(fs.uid("adm")?);
    let o = fs.open(&m, &e, OREAD, &who)?;
    let mut off = 0u64;
    while off < e.dir.length {
        let chunk = fs.read(&o, off, MAX_IO.min(1 << 20))?;
        if chunk.is_empty() {
            break;
        }
        match out.write_all(&chunk) {
            // The reader went away (`| head`): it has what it wanted.
            Err(x) if x.kind() == std::io::ErrorKind::BrokenPipe => return Ok(off),
            r => r.map_err(|x| crate::fs::Error::Invalid(format!("writing output: {x}")))?,
        }
        off += chunk.len() as u64;
    }
    Ok(off)
}

/// One deadlist segment in the `deadlist` view.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    /// Birth generation of its blocks.
    pub birth: u64,
    /// Segment number.
    pub seq: u64,
    /// Blocks it lists.
    pub blocks: u64,
    /// Its own chain blocks.
    pub chain: u64,
}

/// The deadlist segments owned by the snapshot `label` names.
pub fn deadlist(s: &Store, label: &str) -> crate::Result<Vec<SegmentView>> {
    let id = s
        .labels()?
        .into_iter()
        .find(|l| l.name == label)
        .map(|l| l.id)
        .ok_or_else(|| s.no_label(label))?;
    let mut out = Vec::new();
    for seg in Snaps::new(s).segments(id)? {
        let (addrs, chain) = Snaps::new(s).read_segment(&seg)?;
        out.push(SegmentView {
            birth: seg.birth,
            seq: seg.seq,
            blocks: addrs.len() as u64,
            chain: chain.len() as u64,
        });
    }
    Ok(out)
}
