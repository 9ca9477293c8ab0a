//! The sequential scan: read every allocated block once, in large reads
//! in address order, hashing each and summarizing nodes and chain blocks.
//!
//! The allocated runs are cut into chunks of at most [`CHUNK_BLOCKS`]
//! blocks; neighbouring runs separated by at most [`GAP_BLOCKS`] free blocks
//! share a chunk (the gap is read and ignored), so a fragmented allocation
//! still makes large reads. One reader thread reads the chunks in address
//! order, so the device sees exactly one sequential stream (which the
//! kernel's readahead keeps busy; several threads reading one file
//! concurrently defeat it), into a pool of [`POOL_BYTES`] of buffers; the
//! reader never waits for a worker to be scheduled while a buffer is free,
//! which matters on a loaded machine. The other `threads - 1` threads hash
//! and summarize the chunks. With one or two threads, one thread reads and
//! processes in turn instead (see [`scan`] for why). A chunk whose
//! read fails is retried block by block by its worker; a block that still
//! fails is marked unreadable (reported only if something reaches it, or as
//! a leak).

#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::channel;

use crate::device::{Device, DeviceExt};
use crate::error::{Error, Result};
use crate::format::{block_hash, BLKSZ, BLKSZ_U64};

use super::summary::{summarize, Sum};
use super::table::{Entry, Run, Table, Tag};
use super::{Progress, ProgressFn};

/// Most blocks one read covers (1 MiB: the copy out of the page cache then
/// stays in the CPU caches until a worker hashes it).
pub(super) const CHUNK_BLOCKS: u64 = 64;
/// Bytes of read buffers in flight between the reader and the workers.
pub(super) const POOL_BYTES: usize = 8 << 20;
/// Largest run of free blocks read through to join two allocated runs.
pub(super) const GAP_BLOCKS: u64 = 8;

/// One device read: `[start, start+span)` blocks, of which `parts` (block
/// number, length) are wanted.
#[derive(Debug, Clone)]
struct Chunk {
    start: u64,
    span: u64,
    parts: Vec<(u64, u64)>,
}

/// What one chunk produced.
struct ChunkOut {
    index: usize,
    entries: Vec<Entry>,
    sums: Vec<(u64, Sum)>,
}

/// Counters of the scan.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ScanStats {
    /// Blocks hashed.
    pub blocks: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Reads issued.
    pub reads: u64,
}

fn chunks(runs: &[Run]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for r in runs {
        let mut s = r.start;
        let end = r.start + r.len;
        while s < end {
            let n = (end - s).min(CHUNK_BLOCKS);
            match out.last_mut() {
                Some(c)
                    if s >= c.start + c.span
                        && s - (c.start + c.span) <= GAP_BLOCKS
                        && s + n - c.start <= CHUNK_BLOCKS =>
                {
                    c.span = s + n - c.start;
                    c.parts.push((s, n));
                }
                _ => out.push(Chunk {
                    start: s,
                    span: n,
                    parts: vec![(s, n)],
                }),
            }
            s += n;
        }
    }
    out
}

fn look(buf: &[u8], blk: u64, out: &mut ChunkOut) {
    let mut e = Entry {
        hash: block_hash(buf),
        ..Entry::default()
    };
    if let Some(s) = summarize(buf) {
        e.tag = Tag::Summarized;
        out.sums.push((blk, s));
    }
    out.entries.push(e);
}

/// Hash and summarize the wanted blocks of chunk `c`, read into `buf`; if
/// the read failed (`ok` false), retry block by block.
fn process(
    dev: &dyn Device,
    c: &Chunk,
    index: usize,
    buf: &mut [u8],
    ok: bool,
    st: &Counters,
) -> ChunkOut {
    let mut out = ChunkOut {
        index,
        entries: Vec::with_capacity(c.parts.iter().map(|p| p.1 as usize).sum()),
        sums: Vec::new(),
    };
    if ok {
        for &(s, n) in &c.parts {
            for blk in s..s + n {
                let o = (blk - c.start) as usize * BLKSZ;
                match buf.get(o..o + BLKSZ) {
                    Some(b) => look(b, blk, &mut out),
                    None => out.entries.push(unreadable()),
                }
            }
        }
        return out;
    }
    // Retry block by block, so that one bad sector costs one block.
    let Some(b) = buf.get_mut(..BLKSZ) else {
        out.entries
            .extend(c.parts.iter().flat_map(|p| (0..p.1).map(|_| unreadable())));
        return out;
    };
    for &(s, n) in &c.parts {
        for blk in s..s + n {
            st.reads.fetch_add(1, Ordering::Relaxed);
            if dev.read_bytes(b, blk * BLKSZ_U64).is_ok() {
                st.bytes.fetch_add(BLKSZ_U64, Ordering::Relaxed);
                look(b, blk, &mut out);
            } else {
                out.entries.push(unreadable());
            }
        }
    }
    out
}

fn unreadable() -> Entry {
    Entry {
        tag: Tag::Unreadable,
        ..Entry::default()
    }
}

#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    reads: AtomicU64,
    done: AtomicU64,
}

/// Read and summarize every block of `runs` (sorted, disjoint) with
/// `threads` threads in all: up to two, one thread reads and processes in
/// turn; from three, one reader and `threads - 1` workers.
pub(super) fn scan(
    dev: &dyn Device,
    runs: Vec<Run>,
    threads: usize,
    progress: Option<&ProgressFn>,
) -> Result<(Table, ScanStats)> {
    let cs = chunks(&runs);
    let total: u64 = runs.iter().map(|r| r.len * BLKSZ_U64).sum();
    let st = Counters::default();
    // Hashing and summarizing a chunk takes about a sixth of the time the
    // fastest disk measured here takes to deliver it, so one thread doing
    // both in turn is disk-bound, and on two loaded cores it was both faster
    // and steadier than a reader handing chunks to a worker (no wake-up on
    // the critical path). A pipeline pays only with workers to spare.
    if threads <= 2 {
        let outs = inline(dev, &cs, &st, total, progress);
        return assemble(runs, outs, &st);
    }
    let workers = threads - 1;
    let nbuf = (POOL_BYTES / (CHUNK_BLOCKS as usize * BLKSZ)).max(workers + 2);
    let (full_tx, full_rx) = channel::bounded::<(usize, Vec<u8>, bool)>(nbuf);
    let (free_tx, free_rx) = channel::bounded::<Vec<u8>>(nbuf);
    for _ in 0..nbuf {
        let _ = free_tx.send(Vec::new());
    }
    let outs: Vec<ChunkOut> = std::thread::scope(|sc| {
        let (cs, st) = (&cs, &st);
        sc.spawn(move || {
            for (i, c) in cs.iter().enumerate() {
                let Ok(mut buf) = free_rx.recv() else { break };
                let len = c.span as usize * BLKSZ;
                buf.resize(len, 0);
                st.reads.fetch_add(1, Ordering::Relaxed);
                let ok = dev
                    .read_bytes(buf.get_mut(..len).unwrap_or_default(), c.start * BLKSZ_U64)
                    .is_ok();
                if ok {
                    st.bytes.fetch_add(len as u64, Ordering::Relaxed);
                }
                if full_tx.send((i, buf, ok)).is_err() {
                    break;
                }
            }
        });
        let workers: Vec<_> = (0..workers)
            .map(|_| {
                let (full_rx, free_tx) = (full_rx.clone(), free_tx.clone());
                sc.spawn(move || {
                    let mut mine = Vec::new();
                    while let Ok((i, mut buf, ok)) = full_rx.recv() {
                        let Some(c) = cs.get(i) else { continue };
                        mine.push(process(dev, c, i, &mut buf, ok, st));
                        let _ = free_tx.send(buf);
                        let wanted: u64 = c.parts.iter().map(|p| p.1 * BLKSZ_U64).sum();
                        let done = st.done.fetch_add(wanted, Ordering::Relaxed) + wanted;
                        if let Some(p) = progress {
                            p(Progress { done, total });
                        }
                    }
                    mine
                })
            })
            .collect();
        drop(full_rx);
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().unwrap_or_default());
        }
        all
    });
    assemble(runs, outs, &st)
}

/// One thread reads and processes each chunk in turn (the kernel's
/// readahead keeps the device busy meanwhile).
fn inline(
    dev: &dyn Device,
    cs: &[Chunk],
    st: &Counters,
    total: u64,
    progress: Option<&ProgressFn>,
) -> Vec<ChunkOut> {
    let mut buf = Vec::new();
    let mut outs = Vec::with_capacity(cs.len());
    for (i, c) in cs.iter().enumerate() {
        let len = c.span as usize * BLKSZ;
        buf.resize(len, 0);
        st.reads.fetch_add(1, Ordering::Relaxed);
        let ok = dev
            .read_bytes(buf.get_mut(..len).unwrap_or_default(), c.start * BLKSZ_U64)
            .is_ok();
        if ok {
            st.bytes.fetch_add(len as u64, Ordering::Relaxed);
        }
        outs.push(process(dev, c, i, &mut buf, ok, st));
        let wanted: u64 = c.parts.iter().map(|p| p.1 * BLKSZ_U64).sum();
        let done = st.done.fetch_add(wanted, Ordering::Relaxed) + wanted;
        if let Some(p) = progress {
            p(Progress { done, total });
        }
    }
    outs
}

/// Put the chunks' results in order and build the table.
fn assemble(runs: Vec<Run>, mut outs: Vec<ChunkOut>, st: &Counters) -> Result<(Table, ScanStats)> {
    outs.sort_by_key(|o| o.index);
    let n: usize = outs.iter().map(|o| o.entries.len()).sum();
    let mut entries = Vec::with_capacity(n);
    let mut sums = HashMap::new();
    for o in outs {
        entries.extend(o.entries);
        sums.extend(o.sums);
    }
    let stats = ScanStats {
        blocks: entries.len() as u64,
        bytes_read: st.bytes.load(Ordering::Relaxed),
        reads: st.reads.load(Ordering::Relaxed),
    };
    if entries.len() != runs.iter().map(|r| r.len as usize).sum::<usize>() {
        return Err(Error::Internal("scan lost blocks".into()));
    }
    Ok((Table::new(runs, entries, sums), stats))
}

/// Number the runs' entries (`base`) in order.
pub(super) fn number(runs: &mut [Run]) {
    let mut base = 0;
    for r in runs {
        r.base = base;
        base += r.len as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, len: u64) -> Run {
        Run {
            start,
            len,
            base: 0,
        }
    }

    #[test]
    fn chunks_join_small_gaps_and_stay_bounded() {
        let runs = [
            run(10, 3),
            run(15, 1),         // gap of 2: joined
            run(15 + 1 + 9, 2), // gap of 9: new chunk
            run(100, 600),      // split into bounded chunks
            run(701, 1),        // gap of 1 after a full chunk's tail
        ];
        let cs = chunks(&runs);
        let wanted: u64 = cs.iter().flat_map(|c| &c.parts).map(|p| p.1).sum();
        assert_eq!(wanted, runs.iter().map(|r| r.len).sum::<u64>());
        assert_eq!(cs[0].parts, vec![(10, 3), (15, 1)]);
        assert_eq!(cs[1].start, 25);
        for c in &cs {
            assert!(c.span <= CHUNK_BLOCKS);
            for &(s, n) in &c.parts {
                assert!(s >= c.start && s + n <= c.start + c.span);
            }
        }
    }
}
