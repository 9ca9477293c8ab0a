//! Choosing the superblock, by the rule [`Store::open`] uses, and judging
//! the copy not chosen.
//!
//! Both copies are read and decoded. Decoded copies are tried newest first
//! (copy A first on a tie); a copy is usable when every arena log replays to
//! the free count it records and its snapshot-tree root reads back with the
//! right hash and structure. The first usable copy is the one in use.
//!
//! Findings: a copy B *older* than the copy in use (usable or not) is a
//! warning: a crash between the two superblock writes leaves copy B one
//! commit behind, and the next commits may reuse the blocks it names. Copy
//! A is always written first, so a copy A older than copy B is damage. Any
//! damage to either copy is a problem, because a crash never causes it: a
//! copy that does not decode (checksum, magic, fields), bytes past the
//! checksum that are not zero, a copy at the commit in use that differs
//! from it, or a newer copy that is unusable. The used bytes of a
//! superblock (`104 + 48·narena + 8` ≤ 4096 for up to 83 arenas) lie in one
//! 4 KiB sector, and the media model makes a sector write atomic (a torn
//! write tears at 4 KiB), so a checksum failure is damage; only a copy whose
//! used bytes span sectors may be torn by a crash, and its checksum failure
//! stays a warning. The one other crash state: a copy B that is all zeros
//! while copy A holds the format's commit 1 (formatting stopped between the
//! two writes) is a warning. When no copy is usable but one decoded, that
//! is a problem and the check proceeds from the newest decoded copy, so
//! that the later phases name the damaged log or root blocks. When neither
//! copy decodes, the image cannot be checked at all (an `Err`).
//!
//! [`Store::open`]: crate::store::Store::open

use crate::alloc::{replay, Replayed};
use crate::device::{Device, DeviceExt};
use crate::error::{Error, Result};
use crate::format::node::NodeView;
use crate::format::superblock::Superblock;
use crate::format::{BLKSZ, BLKSZ_U64};
use crate::ids::BlockAddr;
use crate::CorruptKind;

use super::report::{CopyState, Kind, Problem, Role, SuperInfo};

/// The superblock the check proceeds from, and its replayed arenas.
pub(super) struct Chosen {
    pub sb: Superblock,
    pub info: SuperInfo,
    /// One replay per arena (errors are reported by the caller).
    pub replays: Vec<Result<Replayed>>,
}

const NAMES: [&str; 2] = ["A", "B"];

/// The device's last whole block (tests place copy B there).
#[cfg(test)]
pub(crate) use crate::store::sb_b_addr;

fn owner(i: usize) -> String {
    format!("superblock {}", NAMES[i])
}

/// What reading one copy found besides its decoding.
#[derive(Default)]
struct Read {
    /// Bytes past its checksum (not covered by it, written as zeros) are
    /// not zero.
    dirty: bool,
    /// All 16 KiB are zero (never written).
    blank: bool,
    /// Its used bytes, by the `narena` it claims, span more than one 4 KiB
    /// sector (so a crash may have torn it).
    spans: bool,
}

/// Read and decode one copy.
fn read_copy(dev: &dyn Device, addr: BlockAddr) -> (Result<Superblock>, Read) {
    let mut b = vec![0u8; BLKSZ];
    if let Err(e) = dev.read_bytes(&mut b, addr.0) {
        return (Err(e), Read::default());
    }
    let r = Superblock::decode(&b, addr);
    let narena = b
        .get(16..20)
        .and_then(|x| <[u8; 4]>::try_from(x).ok())
        .map_or(0, u32::from_be_bytes);
    let mut read = Read {
        dirty: false,
        blank: b.iter().all(|&x| x == 0),
        spans: narena <= crate::format::superblock::MAX_ARENAS
            && Superblock::encoded_len(narena) > SECTOR,
    };
    if let Ok(sb) = &r {
        let len = Superblock::encoded_len(sb.geometry.narena);
        read.dirty = b.get(len..).is_some_and(|t| t.iter().any(|&x| x != 0));
    }
    (r, read)
}

/// The unit the media model writes atomically.
const SECTOR: usize = 4096;

/// Replay every arena and read the snapshot root; the reason the copy is
/// unusable, if it is.
fn evaluate(dev: &dyn Device, sb: &Superblock) -> (Vec<Result<Replayed>>, Option<String>) {
    let g = &sb.geometry;
    let mut why: Option<String> = None;
    if g.dev_size > dev.size() {
        why = Some(format!(
            "it describes {} bytes, the device has {}",
            g.dev_size,
            dev.size()
        ));
    }
    let replays: Vec<Result<Replayed>> = sb
        .arenas
        .iter()
        .enumerate()
        .map(|(i, rec)| replay(dev, g, i as u32, rec))
        .collect();
    for (i, r) in replays.iter().enumerate() {
        if let Err(e) = r {
            why.get_or_insert_with(|| format!("arena {i} log: {e}"));
        }
    }
    if let Err(e) = read_root(dev, sb) {
        why.get_or_insert_with(|| format!("snapshot tree root: {e}"));
    }
    (replays, why)
}

fn read_root(dev: &dyn Device, sb: &Superblock) -> Result<()> {
    let bp = sb.snap_root;
    if !bp.addr.0.is_multiple_of(BLKSZ_U64) || sb.geometry.arena_of(bp.addr).is_none() {
        return Err(Error::corrupt(
            bp.addr,
            CorruptKind::Pointer,
            "pointer outside the arenas",
        ));
    }
    let mut b = Box::new([0u8; BLKSZ]);
    dev.read_block(&bp, &mut b)?;
    NodeView::new(&b[..])
        .and_then(|v| v.validate())
        .map_err(|e| e.at(bp.addr))
}

/// One decoded copy and what trying it found.
struct Tried {
    copy: usize,
    sb: Superblock,
    replays: Option<Vec<Result<Replayed>>>,
    why: Option<String>,
}

/// Read and decode both copies. Copies that decode are returned newest
/// first; the others' reasons by copy, with what the read saw. `Err` when
/// neither decodes.
#[allow(clippy::type_complexity)]
fn decode_both(
    dev: &dyn Device,
    addrs: &[BlockAddr; 2],
    problems: &mut Vec<Problem>,
) -> Result<(Vec<Tried>, [Option<(String, Read)>; 2])> {
    let mut tried: Vec<Tried> = Vec::new();
    let mut bad: [Option<(String, Read)>; 2] = [None, None];
    let mut versions: [Option<u32>; 2] = [None, None];
    for (i, &addr) in addrs.iter().enumerate() {
        let (r, read) = read_copy(dev, addr);
        if read.dirty {
            problems.push(Problem::block(
                Kind::Superblock,
                addr,
                Role::Superblock,
                owner(i),
                "damaged: bytes past the checksum are not zero".to_string(),
            ));
        }
        match r {
            Ok(sb) => tried.push(Tried {
                copy: i,
                sb,
                replays: None,
                why: None,
            }),
            Err(Error::NotGefs { why }) => bad[i] = Some((why, read)),
            Err(e) => {
                if let Error::Version { found } = e {
                    versions[i] = Some(found);
                }
                let torn = matches!(e, Error::Checksum { .. }) && read.spans;
                bad[i] = Some((
                    e.to_string(),
                    Read {
                        spans: torn,
                        ..read
                    },
                ));
            }
        }
    }
    if tried.is_empty() {
        if let Some(found) = versions.into_iter().flatten().max() {
            return Err(Error::Version { found });
        }
        return Err(Error::NotGefs {
            why: format!(
                "copy A: {}; copy B: {}",
                bad[0].as_ref().map_or("?", |b| b.0.as_str()),
                bad[1].as_ref().map_or("?", |b| b.0.as_str())
            ),
        });
    }
    tried.sort_by_key(|t| std::cmp::Reverse(t.sb.commit_gen));
    Ok((tried, bad))
}

/// Try the decoded copies newest first; the index of the first usable one.
fn pick(dev: &dyn Device, tried: &mut [Tried]) -> Option<usize> {
    for k in 0..tried.len() {
        // Identical copies give identical results: evaluate once.
        let same = (0..k).find(|&j| tried[j].sb == tried[k].sb);
        let (replays, why) = match same {
            Some(j) => (None, tried[j].why.clone()),
            None => {
                let (r, w) = evaluate(dev, &tried[k].sb);
                (Some(r), w)
            }
        };
        tried[k].replays = replays;
        tried[k].why = why;
        if tried[k].why.is_none() {
            return Some(k);
        }
    }
    None
}

/// Read both copies and choose; see the module docs for what is reported.
pub(super) fn choose(
    dev: &dyn Device,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Result<Chosen> {
    if dev.size() < 2 * BLKSZ_U64 {
        return Err(Error::NotGefs {
            why: format!("device of {} bytes is too small", dev.size()),
        });
    }
    let a = read_copy(dev, BlockAddr(0)).0.ok();
    let addrs = [
        BlockAddr(0),
        crate::store::copy_b_addr(dev.size(), a.as_ref()),
    ];
    let (mut tried, bad) = decode_both(dev, &addrs, problems)?;
    let used = pick(dev, &mut tried);
    let base = used.unwrap_or(0);
    let mut copies = addrs.map(|a| CopyState {
        addr: a.0,
        commit_gen: None,
        state: "damaged".into(),
        why: String::new(),
    });
    let base_sb = tried[base].sb.clone();
    for (i, b) in bad.iter().enumerate() {
        let Some((w, read)) = b else { continue };
        copies[i].why = w.clone();
        let (list, what) = if read.blank && i == 1 && base_sb.commit_gen == 1 {
            copies[i].state = "unwritten".into();
            (
                &mut *warnings,
                format!("never written (formatting stopped): {w}"),
            )
        } else if read.spans {
            (&mut *warnings, format!("damaged or torn by a crash: {w}"))
        } else {
            (&mut *problems, format!("damaged: {w}"))
        };
        list.push(Problem::block(
            Kind::Superblock,
            addrs[i],
            Role::Superblock,
            owner(i),
            what,
        ));
    }
    for t in &tried {
        let c = &mut copies[t.copy];
        c.commit_gen = Some(t.sb.commit_gen);
        let (state, why) = judge(t, &base_sb, used.is_some());
        c.state = state.into();
        c.why = why.clone();
        if state != "ok" && used.is_some() {
            // Copy A is written first, so only copy B may lag.
            let older = t.sb.commit_gen < base_sb.commit_gen && t.copy == 1;
            let list = if older {
                &mut *warnings
            } else {
                &mut *problems
            };
            list.push(Problem::block(
                Kind::Superblock,
                addrs[t.copy],
                Role::Superblock,
                owner(t.copy),
                format!("{}: {why}", if older { state } else { "damaged" }),
            ));
        }
    }
    if used.is_none() {
        let whys: Vec<String> = (0..2)
            .map(|i| format!("copy {}: {} {}", NAMES[i], copies[i].state, copies[i].why))
            .collect();
        problems.push(Problem {
            kind: Kind::Superblock,
            addr: None,
            blocks: 0,
            role: Role::Superblock,
            owner: String::new(),
            what: format!(
                "no usable superblock ({}); checking from copy {}",
                whys.join("; "),
                NAMES[tried[base].copy]
            ),
            files: Vec::new(),
        });
    }
    let replays = take_replays(dev, &mut tried, base);
    let g = base_sb.geometry;
    Ok(Chosen {
        info: SuperInfo {
            used: match used {
                Some(k) => NAMES[tried[k].copy].into(),
                None => "none".into(),
            },
            commit_gen: base_sb.commit_gen,
            copies,
            narena: g.narena,
            arena_size: g.arena_size,
            dev_size: g.dev_size,
        },
        sb: base_sb,
        replays,
    })
}

/// The state of a decoded copy against the one the check proceeds from.
fn judge(t: &Tried, base: &Superblock, usable: bool) -> (&'static str, String) {
    if &t.sb == base {
        return match (&t.why, usable) {
            (Some(w), false) => ("unusable", w.clone()),
            _ => ("ok", String::new()),
        };
    }
    match &t.why {
        Some(w) if !usable || t.sb.commit_gen >= base.commit_gen => {
            ("unusable", format!("commit {}: {w}", t.sb.commit_gen))
        }
        _ if t.sb.commit_gen < base.commit_gen => (
            "stale",
            format!(
                "commit {}, the copy in use has commit {}",
                t.sb.commit_gen, base.commit_gen
            ),
        ),
        _ => (
            "stale",
            format!("differs from the copy in use at commit {}", base.commit_gen),
        ),
    }
}

/// The replays of candidate `base` (evaluated, or shared with an identical
/// copy tried earlier, or, if it was never tried, computed now).
fn take_replays(dev: &dyn Device, tried: &mut [Tried], base: usize) -> Vec<Result<Replayed>> {
    if let Some(r) = tried[base].replays.take() {
        return r;
    }
    let same = (0..tried.len()).find(|&j| j != base && tried[j].sb == tried[base].sb);
    if let Some(r) = same.and_then(|j| tried[j].replays.take()) {
        return r;
    }
    evaluate(dev, &tried[base].sb).0
}
