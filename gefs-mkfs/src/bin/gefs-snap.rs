//! gefs-snap: manage the snapshots of an image no daemon is using — list,
//! take (`-m`: fork), delete, configure retention, run a retention pass.
//! The commands are the daemon console's (`snap`, `set`, `clear`).
//!
//! Exit status: 0 done, 1 the command failed (the message says why), 2 bad
//! arguments or the image could not be opened (not a gefs image, or in use
//! by another process).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use gefs_core::admin;
use gefs_core::store::Config;

/// Manage the snapshots of a gefs-rs image offline.
///
/// Examples:
///   gefs-snap disk.img -l                 list labels
///   gefs-snap disk.img main monday        snapshot main as monday
///   gefs-snap disk.img -m monday scratch  fork monday as a new mutable tree
///   gefs-snap disk.img -d monday          delete a label
///   gefs-snap disk.img set main retain '24@1h @1d'
///   gefs-snap disk.img clear main retain
///   gefs-snap disk.img retain             take due snapshots, age out old ones
#[derive(Parser, Debug)]
#[command(name = "gefs-snap", version, verbatim_doc_comment)]
struct Args {
    /// Print JSON (for `-l` and `retain`).
    #[arg(long)]
    json: bool,
    /// The time a `retain` pass runs at, in Unix seconds (default: now).
    #[arg(long)]
    now: Option<u64>,
    /// The image file or block device.
    image: PathBuf,
    /// `[-mdl] [old [new]]`, `set [snap] key value`, `clear [snap] key`,
    /// or `retain`.
    #[arg(allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gefs-snap: {e}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let a = Args::parse();
    let words: Vec<&str> = a.command.iter().map(String::as_str).collect();
    // Check the syntax before touching the image.
    let snap = match words.first() {
        Some(&"set") | Some(&"clear") | Some(&"retain") => None,
        _ => match admin::parse_snap(&words) {
            Ok(c) => Some(c),
            Err(e) => return fail(2, e),
        },
    };
    let read_only = matches!(snap, Some(admin::Snap::List));
    let cfg = Config {
        cache_bytes: 32 << 20,
        read_only,
    };
    let s = match gefs_core::image::open_store(&a.image, &cfg) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let out = match (&snap, words.as_slice()) {
        (Some(admin::Snap::List), _) if a.json => s
            .labels_space()
            .and_then(|l| {
                serde_json::to_string_pretty(&l)
                    .map_err(|e| gefs_core::Error::Internal(e.to_string()))
            })
            .map(|j| j + "\n"),
        (Some(c), _) => admin::run_snap(&s, c),
        (None, ["set", rest @ ..]) => admin::run_set(&s, rest),
        (None, ["clear", rest @ ..]) => admin::run_clear(&s, rest),
        (None, ["retain"]) => {
            let now = a.now.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            });
            admin::run_retention(&s, now).and_then(|r| {
                if a.json {
                    serde_json::to_string_pretty(&r)
                        .map(|j| j + "\n")
                        .map_err(|e| gefs_core::Error::Internal(e.to_string()))
                } else {
                    let mut t = String::new();
                    for x in &r.taken {
                        t.push_str(&format!("labeled: {x}\n"));
                    }
                    for x in &r.deleted {
                        t.push_str(&format!("deleted: {x}\n"));
                    }
                    for x in &r.errors {
                        t.push_str(&format!("skipped: {x}\n"));
                    }
                    Ok(t)
                }
            })
        }
        _ => return fail(2, "usage: see gefs-snap --help"),
    };
    match out {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(gefs_core::Error::NoSpace) => fail(1, s.explain_full()),
        Err(e) => fail(1, e),
    }
}
