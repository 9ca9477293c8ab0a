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
use gefs_core::snap::Snaps;
use gefs_core::store::Config;

/// Manage the snapshots of a gefs-rs image offline.
#[derive(Parser, Debug)]
#[command(name = "gefs-snap", version, after_help = after_help())]
struct Args {
    /// List the labels, and what deleting each snapshot would free now.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Delete the label NAME (and its snapshot, if nothing else holds it).
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// With OLD NEW: make NEW a mutable fork of OLD instead of a snapshot.
    #[arg(short = 'm', long = "mutable")]
    mutable: bool,
    /// With -d: also delete main, or the last label of a mutable tree (its files go too).
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Print JSON (for -l and retain).
    #[arg(long)]
    json: bool,
    /// The time a `retain` pass runs at, in Unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// The image file or block device.
    image: PathBuf,
    /// `OLD NEW`, `NAME` (with -d), `set [SNAP] KEY VALUE`, `clear [SNAP] KEY`, or `retain`.
    #[arg(value_name = "ARGS")]
    command: Vec<String>,
    #[command(flatten)]
    log: gefs_cli::LogArgs,
}

fn after_help() -> String {
    format!(
        "Examples:\n  gefs-snap disk.img -l                  list labels\n  \
         gefs-snap disk.img main monday         snapshot main as monday\n  \
         gefs-snap disk.img -m monday scratch   fork monday as a new mutable tree\n  \
         gefs-snap disk.img -d monday           delete a label\n  \
         gefs-snap disk.img -d -f scratch       delete a mutable tree's last label (and its files)\n  \
         gefs-snap disk.img set main retain '24@1h @1d'\n  \
         gefs-snap disk.img clear main retain\n  \
         gefs-snap disk.img retain --json       take due snapshots, age out old ones\n\n\
         Options may come anywhere on the line. While gefsd serves the image, use \
         `gefsd console snap ...` instead.\n\n{}",
        gefs_cli::exit_codes(
            "done",
            "the command failed (no such label, refused without -f, file system full)",
            "bad arguments, or the image could not be opened (not a gefs image, in use)"
        )
    )
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gefs-snap: {e}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    if let Some(code) = gefs_cli::generate_if_asked::<Args>() {
        return code;
    }
    let a = Args::parse();
    gefs_cli::init_logging(a.log.log_format);
    let flags: String = [
        (a.list, 'l'),
        (a.delete, 'd'),
        (a.mutable, 'm'),
        (a.force, 'f'),
    ]
    .iter()
    .filter_map(|&(on, c)| on.then_some(c))
    .collect();
    let dashed = format!("-{flags}");
    let mut words: Vec<&str> = Vec::new();
    if !flags.is_empty() {
        words.push(&dashed);
    }
    words.extend(a.command.iter().map(String::as_str));
    if words.is_empty() {
        return fail(
            2,
            "nothing to do: give -l, OLD NEW, -d NAME, set, clear or retain (see --help)",
        );
    }
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
        (Some(admin::Snap::List), _) if a.json => Snaps::new(&s)
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
        Ok(t) => match gefs_cli::print_out(&t) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, format!("writing the output: {e}")),
        },
        Err(gefs_core::Error::NoSpace) => fail(1, Snaps::new(&s).explain_full()),
        Err(e) => fail(1, e),
    }
}
