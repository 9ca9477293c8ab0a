//! The peers `gefs-bench tree` runs beside our store, on the same disk, with
//! the same keys, values, commit interval and cache size: redb (a
//! copy-on-write B-tree, the baseline) and fjall (an LSM tree).
//!
//! - redb: one write transaction per `--commit-every` keys with
//!   `Durability::Immediate` and one `insert` per key; each reader thread
//!   opens one read transaction and table and calls `get` and `range`.
//! - fjall: one `insert` per key into one keyspace (each appends to its
//!   journal) and `Database::persist(SyncData)` every `--commit-every` keys
//!   (an `fdatasync` of the journal, as our commits and redb's end with);
//!   readers call `Keyspace::get` and `Keyspace::range`. Its flushes and
//!   compactions run on its own background threads, which the insert
//!   phases count in `process_cpu_seconds`.

use std::path::Path;
use std::time::Instant;

use fjall::{KeyspaceCreateOptions, PersistMode};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::cpu::Mark;
use crate::rng::{random_key, value, value_ok};
use crate::tree::{missing, KeyFn, Load, Reader, TreeOpts};
use crate::BenchResult;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

/// A redb database with the benchmark table created.
pub fn redb_open(path: &Path, o: &TreeOpts) -> BenchResult<Database> {
    let db = redb::Builder::new()
        .set_cache_size(o.cache_bytes)
        .create(path)?;
    // Create the table, so that readers find it even with zero keys.
    let tx = db.begin_write()?;
    tx.open_table(TABLE)?;
    tx.commit()?;
    Ok(db)
}

/// Load redb with `o.keys` keys.
pub fn redb_load(db: &Database, o: &TreeOpts, key: KeyFn) -> BenchResult<Load> {
    let mut l = Load::start();
    let m = Mark::now();
    let start = Instant::now();
    let mut i = 0;
    while i < o.keys {
        let end = (i + o.commit_every).min(o.keys);
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut tb = tx.open_table(TABLE)?;
            for j in i..end {
                let k = key(j);
                let v = value(j, o.value_size);
                let t0 = Instant::now();
                tb.insert(k.as_slice(), v.as_slice())?;
                l.ops.record_since(t0);
            }
        }
        let t0 = Instant::now();
        tx.commit()?;
        l.commit.record_since(t0);
        l.commits += 1;
        i = end;
    }
    l.finish(start, m);
    Ok(l)
}

/// One redb reader thread.
pub fn redb_reader<'a>(db: &Database, o: &'a TreeOpts, scan: bool) -> BenchResult<Reader<'a>> {
    let tb = db.begin_read()?.open_table(TABLE)?;
    Ok(Box::new(move |rng| {
        let i = rng.below(o.keys);
        let k = random_key(i);
        if scan {
            let mut it = tb.range(k.as_slice()..)?;
            let mut n = 0;
            while n < o.scan_len as u64 {
                let Some(e) = it.next() else { break };
                let (ek, ev) = e?;
                if n == 0 && (ek.value() != k.as_slice() || !value_ok(i, o.value_size, ev.value()))
                {
                    return Err(missing("redb scan", i));
                }
                n += 1;
            }
            if n == 0 {
                return Err(missing("redb scan", i));
            }
            Ok(n)
        } else {
            match tb.get(k.as_slice())? {
                Some(g) if value_ok(i, o.value_size, g.value()) => Ok(1),
                _ => Err(missing("redb lookup", i)),
            }
        }
    }))
}

/// A fjall database in directory `dir` and its benchmark keyspace.
pub struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

/// Open a fresh fjall database in `dir` with `o.cache_bytes` of cache.
pub fn fjall_open(dir: &Path, o: &TreeOpts) -> BenchResult<Fjall> {
    let db = fjall::Database::builder(dir)
        .cache_size(o.cache_bytes as u64)
        .open()?;
    let ks = db.keyspace("bench", KeyspaceCreateOptions::default)?;
    Ok(Fjall { db, ks })
}

/// Load fjall with `o.keys` keys.
pub fn fjall_load(f: &Fjall, o: &TreeOpts, key: KeyFn) -> BenchResult<Load> {
    let mut l = Load::start();
    let m = Mark::now();
    let start = Instant::now();
    let mut since = 0;
    for j in 0..o.keys {
        let k = key(j);
        let v = value(j, o.value_size);
        let t0 = Instant::now();
        f.ks.insert(k.as_slice(), v.as_slice())?;
        l.ops.record_since(t0);
        since += 1;
        if since >= o.commit_every || j + 1 == o.keys {
            let t0 = Instant::now();
            f.db.persist(PersistMode::SyncData)?;
            l.commit.record_since(t0);
            l.commits += 1;
            since = 0;
        }
    }
    l.finish(start, m);
    Ok(l)
}

/// One fjall reader thread.
pub fn fjall_reader<'a>(f: &'a Fjall, o: &'a TreeOpts, scan: bool) -> Reader<'a> {
    Box::new(move |rng| {
        let i = rng.below(o.keys);
        let k = random_key(i);
        if scan {
            let mut n = 0;
            for g in f.ks.range(k.as_slice()..).take(o.scan_len) {
                let (ek, ev) = g.into_inner()?;
                if n == 0 && (ek[..] != k[..] || !value_ok(i, o.value_size, &ev)) {
                    return Err(missing("fjall scan", i));
                }
                n += 1;
            }
            if n == 0 {
                return Err(missing("fjall scan", i));
            }
            Ok(n)
        } else {
            match f.ks.get(k.as_slice())? {
                Some(v) if value_ok(i, o.value_size, &v) => Ok(1),
                _ => Err(missing("fjall lookup", i)),
            }
        }
    })
}
