//! gefs-dump: inspect a gefs-rs image without changing it.
//!
//! Exit status: 0 shown, 1 the view failed (the image is damaged where the
//! view needed it), 2 could not open the image or bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gefs_core::store::Config;

/// Inspect a gefs-rs image (read-only).
#[derive(Parser, Debug)]
#[command(name = "gefs-dump", version)]
struct Args {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The image file or block device.
    image: PathBuf,
    #[command(subcommand)]
    view: View,
}

#[derive(Subcommand, Debug)]
enum View {
    /// Both superblock copies and the one in use.
    Super,
    /// Each arena's counters and free ranges.
    Arenas,
    /// Snapshot records and their labels.
    Snaps,
    /// A tree level by level (the snapshot tree when no label is given).
    Tree {
        /// A snapshot label.
        label: Option<String>,
    },
    /// One block decoded, even a damaged one.
    Blk {
        /// Its byte offset (decimal or 0x hex).
        addr: String,
    },
}

fn parse_addr(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn show<T: serde::Serialize>(json: bool, v: &T) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(v) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("gefs-dump: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print!("{}", gefs_core::dump::text(v));
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let View::Blk { addr } = &a.view {
        let Some(addr) = parse_addr(addr) else {
            eprintln!("gefs-dump: bad block address {addr:?}");
            return ExitCode::from(2);
        };
        let dev = match gefs_core::image::open_device(&a.image, true) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("gefs-dump: {e}");
                return ExitCode::from(2);
            }
        };
        return match gefs_core::dump::decode_block(&*dev, addr) {
            Ok(v) => show(a.json, &v),
            Err(e) => {
                eprintln!("gefs-dump: {e}");
                ExitCode::from(1)
            }
        };
    }
    let cfg = Config {
        cache_bytes: 32 << 20,
        read_only: true,
    };
    let s = match gefs_core::image::open_store(&a.image, &cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gefs-dump: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match &a.view {
        View::Super => gefs_core::dump::superblock(&s).map(|v| show(a.json, &v)),
        View::Arenas => Ok(show(a.json, &gefs_core::dump::arenas(&s))),
        View::Snaps => gefs_core::dump::snaps(&s).map(|v| show(a.json, &v)),
        View::Tree { label } => {
            gefs_core::dump::tree_levels(&s, label.as_deref()).map(|v| show(a.json, &v))
        }
        View::Blk { .. } => Ok(ExitCode::SUCCESS),
    };
    r.unwrap_or_else(|e| {
        eprintln!("gefs-dump: {e}");
        ExitCode::from(1)
    })
}
