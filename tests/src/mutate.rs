//! Structure-aware image mutation (reliability plan T9).
//!
//! [`Indexed::new`] walks a pristine image from its superblock and records
//! every reachable block with its class (superblock, allocation log,
//! snapshot-tree or file-tree pivot and leaf, deadlist, message log, data) and every
//! pointer to it (the block holding the pointer, and the pointer). A
//! [`Mutant`] changes **one field of one block** — a header field, an offset
//! slot, a key, a value field (entries, snapshot records, labels, deadlist
//! heads), a message op or argument, a child pointer or fill, a log or
//! deadlist entry, a message-log record, a data byte — chosen by parsing the block per FORMAT.md,
//! then recomputes that block's hash in every pointer to it, and so on up to
//! both superblock copies (whose checksums are recomputed too). The damage
//! therefore passes every hash check: only structural checks stand between
//! it and the readers. A pointer is mutated either to another real block
//! (with that block's hash, so it still verifies), to a new generation, to
//! null or to a wrong address.

use std::collections::{HashMap, HashSet};

use gefs_core::device::{Device, MemDev};
use gefs_core::format::key::{KDAT, KDLIST, KENT, KLABEL, KSNAP};
use gefs_core::format::log::LogHeader;
use gefs_core::format::mlog;
use gefs_core::format::msg::Op;
use gefs_core::format::node::NodeView;
use gefs_core::format::superblock::{Superblock, ARENA_REC, OFF_ARENAS};
use gefs_core::format::value::{DlistVal, TreeRec};
use gefs_core::format::Decode;
use gefs_core::format::{
    block_hash, Bptr, BLKSZ, BLKSZ_U64, LEAFSPC, LOG_HDR, NODE_HDR, PIVSPC, PTRSZ,
};
use gefs_core::ids::BlockAddr;

use crate::rng::Rng;

/// The class of a block, as the pointer that leads to it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A superblock copy (both are mutated alike unless said otherwise).
    Super,
    /// An allocation-log block.
    Log,
    /// A pivot of the snapshot tree.
    SnapPivot,
    /// A leaf of the snapshot tree (labels, snapshot records, deadlist heads).
    SnapLeaf,
    /// A pivot of a file tree.
    FsPivot,
    /// A leaf of a file tree (entries, up-links, data pointers).
    FsLeaf,
    /// A deadlist block.
    Dlist,
    /// A message-log block (a tree's messages not yet applied to it).
    Mlog,
    /// A data block.
    Data,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 9] = [
        Class::Super,
        Class::Log,
        Class::SnapPivot,
        Class::SnapLeaf,
        Class::FsPivot,
        Class::FsLeaf,
        Class::Dlist,
        Class::Mlog,
        Class::Data,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Super => "superblock",
            Class::Log => "alloc-log",
            Class::SnapPivot => "snap-pivot",
            Class::SnapLeaf => "snap-leaf",
            Class::FsPivot => "fs-pivot",
            Class::FsLeaf => "fs-leaf",
            Class::Dlist => "deadlist",
            Class::Mlog => "message-log",
            Class::Data => "data",
        }
    }
}

/// The parent "address" of a pointer held by the superblocks.
const SB: u64 = u64::MAX;

/// A pristine image and its block graph.
pub struct Indexed {
    /// The image.
    pub base: MemDev,
    /// Every reachable block and its class, by address.
    pub blocks: Vec<(u64, Class)>,
    /// For each block, the blocks holding a pointer to it, with that pointer.
    refs: HashMap<u64, Vec<(u64, Bptr)>>,
    /// Every pointer met (for mutations that redirect a pointer).
    ptrs: Vec<Bptr>,
    /// Where copy B is.
    sb_b: u64,
}

fn read(dev: &dyn Device, a: u64) -> Vec<u8> {
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, a).expect("read");
    b
}

impl Indexed {
    /// Walk `base` from its superblock.
    pub fn new(base: MemDev) -> Indexed {
        let sb_b = (base.size() / BLKSZ_U64 - 1) * BLKSZ_U64;
        let sb = Superblock::decode(&read(&base, 0), BlockAddr(0)).expect("pristine superblock");
        let mut ix = Indexed {
            base,
            blocks: vec![(0, Class::Super), (sb_b, Class::Super)],
            refs: HashMap::new(),
            ptrs: Vec::new(),
            sb_b,
        };
        let mut seen: HashSet<u64> = HashSet::new();
        ix.node(SB, sb.snap_root, true, &mut seen);
        for a in &sb.arenas {
            ix.chain(SB, a.log_tail, Class::Log, &mut seen);
        }
        ix.blocks.sort();
        ix.blocks.dedup_by_key(|b| b.0);
        ix
    }

    fn link(&mut self, parent: u64, bp: Bptr) {
        self.refs.entry(bp.addr.0).or_default().push((parent, bp));
        self.ptrs.push(bp);
    }

    fn chain(&mut self, parent: u64, bp: Bptr, class: Class, seen: &mut HashSet<u64>) {
        let (mut parent, mut bp) = (parent, bp);
        loop {
            self.link(parent, bp);
            if !seen.insert(bp.addr.0) {
                return;
            }
            self.blocks.push((bp.addr.0, class));
            let b = read(&self.base, bp.addr.0);
            let Ok(h) = LogHeader::decode(&b) else { return };
            if class == Class::Mlog {
                self.mlog_data(bp.addr.0, &b, h.nbytes, seen);
            }
            // A message log's oldest block (seq 0) ends its chain whatever
            // its `prev` holds.
            if h.prev.is_none() || (class == Class::Mlog && h.seq == 0) {
                return;
            }
            parent = bp.addr.0;
            bp = h.prev;
        }
    }

    fn node(&mut self, parent: u64, bp: Bptr, snap: bool, seen: &mut HashSet<u64>) {
        self.link(parent, bp);
        if !seen.insert(bp.addr.0) {
            return;
        }
        let b = read(&self.base, bp.addr.0);
        let Ok(v) = NodeView::new(&b) else { return };
        let class = match (snap, v.is_leaf()) {
            (true, false) => Class::SnapPivot,
            (true, true) => Class::SnapLeaf,
            (false, false) => Class::FsPivot,
            (false, true) => Class::FsLeaf,
        };
        self.blocks.push((bp.addr.0, class));
        let me = bp.addr.0;
        let mut vals: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for i in 0..v.nval() {
            if v.is_leaf() {
                if let Ok((k, x)) = v.kv(i) {
                    vals.push((k.to_vec(), x.to_vec()));
                }
            } else if let Ok((_, c, _)) = v.child(i) {
                self.node(me, c, snap, seen);
            }
        }
        for j in 0..v.nbuf() {
            if let Ok((Op::Insert, k, x)) = v.msg(j) {
                vals.push((k.to_vec(), x.to_vec()));
            }
        }
        for (k, x) in vals {
            match (snap, k.first().copied()) {
                (true, Some(KSNAP)) => {
                    if let Ok(r) = TreeRec::decode(&x) {
                        self.node(me, r.root, false, seen);
                        if !r.log.is_none() {
                            self.chain(me, r.log, Class::Mlog, seen);
                        }
                    }
                }
                (true, Some(KDLIST)) => {
                    if let Ok(d) = DlistVal::decode(&x) {
                        self.chain(me, d.head, Class::Dlist, seen);
                        self.link(me, d.tail);
                    }
                }
                (false, Some(KDAT)) => match Bptr::from_slice(&x) {
                    Ok(p) if !p.is_none() => {
                        self.link(me, p);
                        if seen.insert(p.addr.0) {
                            self.blocks.push((p.addr.0, Class::Data));
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// The data blocks that a message-log block's inserts of `KDAT` keys
    /// point to (messages not yet applied to the tree).
    fn mlog_data(&mut self, me: u64, b: &[u8], nbytes: usize, seen: &mut HashSet<u64>) {
        let end = LOG_HDR + nbytes.min(BLKSZ - LOG_HDR);
        let mut at = LOG_HDR;
        let mut ptrs = Vec::new();
        while let Ok((op, k, x, next)) = mlog::record(&b[..end], at) {
            if op == Op::Insert && k.first() == Some(&KDAT) {
                if let Ok(p) = Bptr::from_slice(x) {
                    ptrs.push(p);
                }
            }
            at = next;
        }
        for p in ptrs.into_iter().filter(|p| !p.is_none()) {
            self.link(me, p);
            if seen.insert(p.addr.0) {
                self.blocks.push((p.addr.0, Class::Data));
            }
        }
    }

    /// How many blocks of `c` the image has.
    pub fn count(&self, c: Class) -> usize {
        self.blocks.iter().filter(|b| b.1 == c).count()
    }

    /// Every reachable block address.
    pub fn addrs(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.iter().map(|b| b.0)
    }
}

/// One mutated image.
pub struct Mutant {
    /// The class of the block changed.
    pub class: Class,
    /// The field changed, e.g. `node header: nval`.
    pub field: String,
    /// The block changed.
    pub addr: u64,
    /// The image.
    pub dev: MemDev,
}

/// A field of a block: where, how wide, and what it is.
#[derive(Debug, Clone)]
struct Field {
    off: usize,
    len: usize,
    kind: Kind,
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A big-endian integer of `len` bytes.
    Int,
    /// A 24-byte block pointer.
    Ptr,
    /// Name or key bytes.
    Bytes,
}

fn f(off: usize, len: usize, kind: Kind, name: impl Into<String>) -> Field {
    Field {
        off,
        len,
        kind,
        name: name.into(),
    }
}

fn be(b: &[u8], off: usize, len: usize) -> u64 {
    b.get(off..off + len)
        .map_or(0, |x| x.iter().fold(0u64, |a, &c| a << 8 | u64::from(c)))
}

/// The fields of a superblock copy.
fn super_fields(b: &[u8]) -> Vec<Field> {
    let mut v = vec![
        f(8, 4, Kind::Int, "superblock: version"),
        f(12, 4, Kind::Int, "superblock: blksz"),
        f(16, 4, Kind::Int, "superblock: narena"),
        f(20, 4, Kind::Int, "superblock: snap_height"),
        f(24, 8, Kind::Int, "superblock: flags"),
        f(32, 8, Kind::Int, "superblock: commit_gen"),
        f(40, 8, Kind::Int, "superblock: nextgen"),
        f(48, 8, Kind::Int, "superblock: nextqid"),
        f(56, 8, Kind::Int, "superblock: dev_size"),
        f(64, 8, Kind::Int, "superblock: arena_start"),
        f(72, 8, Kind::Int, "superblock: arena_size"),
        f(80, 24, Kind::Ptr, "superblock: snap_root"),
    ];
    let n = be(b, 16, 4) as usize;
    for i in 0..n.min(255) {
        let o = OFF_ARENAS + ARENA_REC * i;
        v.push(f(o, 24, Kind::Ptr, "arena: log_tail"));
        v.push(f(o + 24, 8, Kind::Int, "arena: log_blocks"));
        v.push(f(o + 32, 8, Kind::Int, "arena: free_blocks"));
        v.push(f(o + 40, 8, Kind::Int, "arena: reserved"));
    }
    v.push(f(BLKSZ - 64, 8, Kind::Int, "superblock: past the checksum"));
    v
}

/// The fields of a value of key family `fam` at `off` (`len` bytes).
fn value_fields(fam: u8, off: usize, len: usize, what: &str, out: &mut Vec<Field>) {
    let layout: &[(usize, usize, Kind, &str)] = match (fam, len) {
        (KENT, 61) => &[
            (0, 8, Kind::Int, "entry ctime"),
            (8, 8, Kind::Int, "entry qid_path"),
            (16, 4, Kind::Int, "entry qid_vers"),
            (20, 1, Kind::Int, "entry qid_type"),
            (21, 4, Kind::Int, "entry mode"),
            (33, 8, Kind::Int, "entry mtime"),
            (41, 8, Kind::Int, "entry length"),
            (49, 4, Kind::Int, "entry uid"),
            (53, 4, Kind::Int, "entry gid"),
        ],
        (KSNAP, 72 | 104) => &[
            (0, 4, Kind::Int, "snapshot record nref"),
            (4, 4, Kind::Int, "snapshot record nlbl"),
            (8, 4, Kind::Int, "snapshot record ht"),
            (16, 8, Kind::Int, "snapshot record gen"),
            (24, 8, Kind::Int, "snapshot record pred"),
            (32, 8, Kind::Int, "snapshot record succ"),
            (40, 8, Kind::Int, "snapshot record base"),
            (48, 24, Kind::Ptr, "snapshot record root"),
            (72, 24, Kind::Ptr, "snapshot record log"),
            (96, 8, Kind::Int, "snapshot record nodes"),
        ],
        (KLABEL, 12) => &[
            (0, 8, Kind::Int, "label id"),
            (8, 4, Kind::Int, "label flags"),
        ],
        (KDLIST, 48) => &[
            (0, 24, Kind::Ptr, "deadlist head"),
            (24, 24, Kind::Ptr, "deadlist tail"),
        ],
        (KDAT, 24) => &[(0, 24, Kind::Ptr, "data pointer")],
        _ => &[],
    };
    if layout.is_empty() && len > 0 {
        out.push(f(off, len, Kind::Bytes, format!("{what} bytes")));
    }
    for &(o, l, k, n) in layout {
        out.push(f(off + o, l, k, format!("{what}: {n}")));
    }
}

/// The fields of a key at `off` (`len` bytes).
fn key_fields(b: &[u8], off: usize, len: usize, out: &mut Vec<Field>) {
    if len == 0 {
        return;
    }
    out.push(f(off, 1, Kind::Int, "key: family"));
    let fam = b.get(off).copied().unwrap_or(0);
    match fam {
        KDAT if len == 17 => {
            out.push(f(off + 1, 8, Kind::Int, "key: data qid"));
            out.push(f(off + 9, 8, Kind::Int, "key: data offset"));
        }
        KENT if len >= 9 => {
            out.push(f(off + 1, 8, Kind::Int, "key: entry parent qid"));
            if len > 9 {
                out.push(f(off + 9, len - 9, Kind::Bytes, "key: entry name"));
            }
        }
        KSNAP if len == 9 => out.push(f(off + 1, 8, Kind::Int, "key: snapshot id")),
        KLABEL if len > 1 => out.push(f(off + 1, len - 1, Kind::Bytes, "key: label name")),
        KDLIST if len == 25 => {
            out.push(f(off + 1, 8, Kind::Int, "key: deadlist owner"));
            out.push(f(off + 9, 8, Kind::Int, "key: deadlist birth"));
            out.push(f(off + 17, 8, Kind::Int, "key: deadlist seq"));
        }
        _ if len > 1 => out.push(f(off + 1, len - 1, Kind::Bytes, "key: bytes")),
        _ => {}
    }
}

/// The fields of a tree node.
fn node_fields(b: &[u8]) -> Vec<Field> {
    let mut v: Vec<Field> = [
        (0, "type"),
        (2, "level"),
        (4, "nval"),
        (6, "valsz"),
        (8, "nbuf"),
        (10, "bufsz"),
    ]
    .iter()
    .map(|&(o, n)| f(o, 2, Kind::Int, format!("node header: {n}")))
    .collect();
    v.push(f(12, 4, Kind::Int, "node header: reserved"));
    let leaf = be(b, 0, 2) == 2;
    let nval = be(b, 4, 2) as usize;
    let nbuf = be(b, 8, 2) as usize;
    let karea = NODE_HDR;
    let klen_area = if leaf { LEAFSPC } else { PIVSPC };
    for i in 0..nval.min(klen_area / 2) {
        let so = karea + 2 * i;
        v.push(f(so, 2, Kind::Int, "offset slot"));
        let r = karea + be(b, so, 2) as usize;
        let kl = be(b, r, 2) as usize;
        v.push(f(r, 2, Kind::Int, "record: key length"));
        key_fields(b, r + 2, kl, &mut v);
        let vo = r + 2 + kl;
        v.push(f(vo, 2, Kind::Int, "record: value length"));
        let vl = be(b, vo, 2) as usize;
        if leaf {
            let fam = b.get(r + 2).copied().unwrap_or(0xff);
            value_fields(fam, vo + 2, vl, "value", &mut v);
        } else {
            v.push(f(vo + 2, PTRSZ, Kind::Ptr, "child pointer"));
            v.push(f(vo + 2 + PTRSZ, 2, Kind::Int, "child fill"));
        }
    }
    if !leaf {
        let barea = NODE_HDR + PIVSPC;
        for j in 0..nbuf.min(PIVSPC / 2) {
            let so = barea + 2 * j;
            v.push(f(so, 2, Kind::Int, "message slot"));
            let r = barea + be(b, so, 2) as usize;
            v.push(f(r, 1, Kind::Int, "message op"));
            let kl = be(b, r + 1, 2) as usize;
            v.push(f(r + 1, 2, Kind::Int, "message: key length"));
            key_fields(b, r + 3, kl, &mut v);
            let vo = r + 3 + kl;
            v.push(f(vo, 2, Kind::Int, "message: argument length"));
            let vl = be(b, vo, 2) as usize;
            let fam = b.get(r + 3).copied().unwrap_or(0xff);
            match Op::from_code(b.get(r).copied().unwrap_or(0)) {
                Some(Op::Insert) => value_fields(fam, vo + 2, vl, "message argument", &mut v),
                Some(Op::Relink | Op::Reprev) if vl == 10 => {
                    v.push(f(vo + 2, 8, Kind::Int, "message argument: relink id"));
                    v.push(f(vo + 10, 1, Kind::Int, "message argument: dlbl"));
                    v.push(f(vo + 11, 1, Kind::Int, "message argument: dref"));
                }
                Some(Op::Wstat) if vl > 0 => {
                    v.push(f(vo + 2, 1, Kind::Int, "message argument: wstat flags"));
                    if vl > 1 {
                        v.push(f(
                            vo + 3,
                            vl - 1,
                            Kind::Bytes,
                            "message argument: wstat fields",
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    v.retain(|x| x.off + x.len <= BLKSZ);
    v
}

/// The fields of a log or deadlist block.
fn chain_fields(b: &[u8], dlist: bool) -> Vec<Field> {
    let what = if dlist { "deadlist" } else { "log" };
    let mut v = vec![
        f(0, 2, Kind::Int, format!("{what} header: type")),
        f(2, 2, Kind::Int, format!("{what} header: nbytes")),
        f(4, 4, Kind::Int, format!("{what} header: flags")),
        f(8, 8, Kind::Int, format!("{what} header: seq")),
        f(16, 24, Kind::Ptr, format!("{what} header: prev")),
    ];
    let n = (be(b, 2, 2) as usize).min(BLKSZ - LOG_HDR) / 8;
    for i in 0..n {
        v.push(f(LOG_HDR + 8 * i, 8, Kind::Int, format!("{what} entry")));
    }
    v
}

/// The fields of a message-log block: its header, and each record's op,
/// lengths, key and argument (`format/mlog.rs`).
fn mlog_fields(b: &[u8]) -> Vec<Field> {
    let mut v = vec![
        f(0, 2, Kind::Int, "message log header: type"),
        f(2, 2, Kind::Int, "message log header: nbytes"),
        f(4, 4, Kind::Int, "message log header: flags"),
        f(8, 8, Kind::Int, "message log header: seq"),
        f(16, 24, Kind::Ptr, "message log header: prev"),
    ];
    let end = LOG_HDR + (be(b, 2, 2) as usize).min(BLKSZ - LOG_HDR);
    let mut at = LOG_HDR;
    while let Ok((_, key, arg, next)) = mlog::record(&b[..end], at) {
        let ks = at + 3;
        let vs = ks + key.len() + 2;
        v.push(f(at, 1, Kind::Int, "message log record: op"));
        v.push(f(at + 1, 2, Kind::Int, "message log record: klen"));
        key_fields(b, ks, key.len(), &mut v);
        v.push(f(vs - 2, 2, Kind::Int, "message log record: vlen"));
        if let Some(&fam) = key.first() {
            value_fields(fam, vs, arg.len(), "message log record argument", &mut v);
        }
        at = next;
    }
    v.retain(|x| x.off + x.len <= BLKSZ);
    v
}

impl Indexed {
    /// Make the `i`-th mutant of a run: a class chosen evenly among the
    /// classes the image has, a block of it, one of its fields.
    pub fn mutant(&self, rng: &mut Rng) -> Mutant {
        let classes: Vec<Class> = Class::ALL
            .into_iter()
            .filter(|&c| self.count(c) > 0)
            .collect();
        let class = classes[rng.below(classes.len() as u64) as usize];
        let of: Vec<u64> = self
            .blocks
            .iter()
            .filter(|b| b.1 == class)
            .map(|b| b.0)
            .collect();
        let addr = of[rng.below(of.len() as u64) as usize];
        let dev = self.base.snapshot();
        let mut b = read(&dev, addr);
        let fields = match class {
            Class::Super => super_fields(&b),
            Class::Log => chain_fields(&b, false),
            Class::Dlist => chain_fields(&b, true),
            Class::Mlog => mlog_fields(&b),
            Class::Data => vec![f(rng.below(BLKSZ_U64) as usize, 1, Kind::Int, "data byte")],
            _ => node_fields(&b),
        };
        let fl = fields[rng.below(fields.len() as u64) as usize].clone();
        let how = self.change(&mut b, &fl, rng);
        let field = format!("{} ({how})", fl.name);
        if class == Class::Super {
            reseal(&mut b);
            // Mostly both copies, as a commit writes them; sometimes one.
            let targets: &[u64] = match rng.below(8) {
                0 => &[0],
                1 => &[self.sb_b],
                _ => &[0, self.sb_b],
            };
            for &t in targets {
                dev.write_at(&b, t).expect("write");
            }
        } else {
            let old = block_hash(&read(&dev, addr));
            dev.write_at(&b, addr).expect("write");
            let mut cur: HashMap<u64, u64> = HashMap::new();
            cur.insert(addr, old);
            self.rehash(&dev, addr, &mut cur);
        }
        Mutant {
            class,
            field,
            addr,
            dev,
        }
    }

    /// Change field `fl` of `b`; says how.
    fn change(&self, b: &mut [u8], fl: &Field, rng: &mut Rng) -> String {
        let at = fl.off..fl.off + fl.len;
        match fl.kind {
            Kind::Ptr => {
                let old = Bptr::from_slice(&b[at.clone()]).unwrap_or(Bptr::NONE);
                let (new, how) = match rng.below(5) {
                    0 | 1 => {
                        let p = self.ptrs[rng.below(self.ptrs.len() as u64) as usize];
                        (p, "another real block")
                    }
                    2 => {
                        let g = [old.gen.0 + 1, 1 << 40, 0, u64::MAX][rng.below(4) as usize];
                        (
                            Bptr {
                                gen: gefs_core::Gen(g),
                                ..old
                            },
                            "generation",
                        )
                    }
                    3 => (Bptr::NONE, "null"),
                    _ => {
                        let a = [old.addr.0 + 1, old.addr.0 + BLKSZ_U64, 0, 1 << 50]
                            [rng.below(4) as usize];
                        (
                            Bptr {
                                addr: BlockAddr(a),
                                ..old
                            },
                            "address",
                        )
                    }
                };
                b[at].copy_from_slice(&new.to_bytes());
                how.into()
            }
            Kind::Bytes => {
                let i = fl.off + rng.below(fl.len as u64) as usize;
                let c = [0u8, b'/', b'.', 0xff, 0x1f, rng.next_u64() as u8][rng.below(6) as usize];
                if rng.chance(1, 4) && fl.len >= 2 {
                    b[at].iter_mut().for_each(|x| *x = b'.');
                    return "all dots".into();
                }
                b[i] = c;
                format!("byte {} := {c:#04x}", i - fl.off)
            }
            Kind::Int => {
                let old = be(b, fl.off, fl.len);
                let max = if fl.len >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * fl.len)) - 1
                };
                let addrs: Vec<u64> = self.addrs().collect();
                let (new, how) = match rng.below(9) {
                    0 => (0, "zero"),
                    1 => (1, "one"),
                    2 => (max, "max"),
                    3 => (old.wrapping_add(1), "+1"),
                    4 => (old.wrapping_sub(1), "-1"),
                    5 => (old ^ 1 << rng.below(8 * fl.len as u64), "bit flip"),
                    6 => (max / 2 + 1, "half"),
                    7 if fl.len == 8 => (
                        addrs[rng.below(addrs.len() as u64) as usize],
                        "block address",
                    ),
                    _ => (rng.next_u64(), "random"),
                };
                let new = new & max;
                for k in 0..fl.len {
                    b[fl.off + k] = (new >> (8 * (fl.len - 1 - k))) as u8;
                }
                format!("{old} -> {new}: {how}")
            }
        }
    }

    /// Block `addr` changed: put its new hash in every pointer to it, and so
    /// on up to the superblocks.
    fn rehash(&self, dev: &MemDev, addr: u64, cur: &mut HashMap<u64, u64>) {
        let old = cur.get(&addr).copied().unwrap_or(0);
        let new = block_hash(&read(dev, addr));
        if old == new {
            return;
        }
        cur.insert(addr, new);
        let Some(refs) = self.refs.get(&addr) else {
            return;
        };
        for &(parent, bp) in refs {
            let from = Bptr { hash: old, ..bp }.to_bytes();
            let to = Bptr { hash: new, ..bp }.to_bytes();
            if parent == SB {
                for s in [0, self.sb_b] {
                    let mut b = read(dev, s);
                    if patch(&mut b, &from, &to) {
                        reseal(&mut b);
                        dev.write_at(&b, s).expect("write");
                    }
                }
                continue;
            }
            let orig = read(dev, parent);
            let mut b = orig.clone();
            if !patch(&mut b, &from, &to) {
                continue;
            }
            // The parent's own parents hold the hash of its bytes before
            // this patch.
            cur.insert(parent, block_hash(&orig));
            dev.write_at(&b, parent).expect("write");
            self.rehash(dev, parent, cur);
        }
    }
}

/// Replace every occurrence of `from` by `to`; whether there was one.
fn patch(b: &mut [u8], from: &[u8; PTRSZ], to: &[u8; PTRSZ]) -> bool {
    let mut any = false;
    let mut i = 0;
    while i + PTRSZ <= b.len() {
        if b[i..i + PTRSZ] == from[..] {
            b[i..i + PTRSZ].copy_from_slice(to);
            any = true;
            i += PTRSZ;
        } else {
            i += 1;
        }
    }
    any
}

/// Recompute a superblock's checksum over the length its (possibly changed)
/// `narena` gives, when that length fits.
fn reseal(b: &mut [u8]) {
    let n = be(b, 16, 4);
    if !(1..=255).contains(&n) {
        return;
    }
    let len = Superblock::encoded_len(n as u32) - 8;
    let h = block_hash(&b[..len]).to_be_bytes();
    b[len..len + 8].copy_from_slice(&h);
}
