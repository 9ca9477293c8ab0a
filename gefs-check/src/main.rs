//! gefs-check: check a gefs-rs image offline.
//!
//! A thin shell around [`gefs_core::check::check`]: it opens the image
//! read-only under a shared lock, so it refuses (exit 2, "in use by another
//! process") an image that a writer such as a running daemon holds
//! exclusively — a live image changes under the check and cannot be judged.
//! Other checkers and read-only tools may run at the same time.
//!
//! Output: one line per finding (`problem: block ADDR (ROLE, OWNER): WHAT`
//! or `warning: ...`), each damaged block of a file tree followed by the
//! files it takes with it, indented (`    snapshot main: /home/x/a.pdf,
//! bytes 0–16383`, as `zpool status -v` lists them), then one summary line.
//! `-q` prints only the problem lines. A progress bar goes to stderr only when stderr is a terminal.
//!
//! `--json` prints one JSON document instead:
//!
//! ```text
//! { "image": path, "status": "clean" | "problems" | "error", "exit_code": 0 | 1 | 2,
//!   "error": string             (only with status "error"),
//!   "problems": [Problem], "warnings": [Problem],
//!   "superblock": { "used": "A"|"B"|"none", "commit_gen", "narena", "arena_size", "dev_size",
//!                   "copies": [{ "addr", "commit_gen", "state": "ok"|"stale"|"unusable"|"damaged", "why" }] },
//!   "trees": [{ "name", "snap", "labels", "root", "height", "pivots", "leaves", "data_blocks", "damaged" }],
//!   "stats": { "device_bytes", "blocks_checked", "bytes_checked", "bytes_read", "reads", "pivots",
//!              "leaves", "data_blocks", "log_blocks", "deadlist_blocks", "deadlisted_blocks", "shared_blocks",
//!              "leaked_blocks", "free_blocks", "labels", "snapshots", "threads", "seconds",
//!              "scan_seconds", "mb_per_s" } }
//! Problem = { "kind": "superblock"|"log"|"io"|"hash"|"structure"|"level"|"fill"|"key_range"|
//!                     "value"|"pointer"|"shared"|"reachable_free"|"leak"|
//!                     "entry"|"qid"|"uplink"|"data_key",
//!             "addr": byte address or null, "blocks": count from addr,
//!             "role": "superblock"|"log"|"deadlist"|"pivot"|"leaf"|"node"|"data"|"unknown",
//!             "owner": string, "what": string,
//!             "files": [string] (only for damaged blocks of file trees) }
//! ```
//!
//! Exit status: 0 the image is consistent (warnings allowed, e.g. a stale
//! or damaged redundant superblock copy); 1 problems were found; 2 the image
//! could not be checked (not a gefs-rs image, unreadable, locked by a
//! writer, or bad arguments).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gefs_core::check::{check, CheckOpts, Progress, Report};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Check a gefs-rs image offline: every reachable block's hash, every
/// tree's structure, the allocation logs against reachability, and every
/// file tree's entries, up-links and data keys.
#[derive(Parser, Debug)]
#[command(name = "gefs-check", version)]
struct Args {
    /// Threads for the scan, the reader included (default: one per
    /// available core).
    #[arg(short = 'j', long = "threads", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Print only problems (no warnings, no summary, no progress bar).
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// The image file or block device.
    image: PathBuf,
}

/// The `--json` document.
#[derive(Serialize)]
struct JsonOut<'a> {
    image: String,
    status: &'static str,
    exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    report: Option<&'a Report>,
}

fn progress_bar(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let style = ProgressStyle::with_template(
        "{spinner} checking [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(0);
    bar.set_style(style);
    Some(bar)
}

fn human(bytes: u64) -> String {
    gefs_core::units::human(bytes)
}

/// Write the text form; stops quietly if stdout goes away.
fn print_text(out: &mut impl Write, image: &Path, r: &Report, quiet: bool) -> std::io::Result<()> {
    for p in &r.problems {
        writeln!(out, "problem: {p}")?;
        if !quiet {
            for f in &p.files {
                writeln!(out, "    {f}")?;
            }
        }
    }
    if quiet {
        return Ok(());
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let s = &r.stats;
    writeln!(
        out,
        "{}: {} blocks ({}) checked in {:.2} s ({:.0} MB/s, {} threads); {} trees, superblock {} at commit {}; {} problems, {} warnings",
        image.display(),
        s.blocks_checked,
        human(s.bytes_checked),
        s.seconds,
        s.mb_per_s,
        s.threads,
        r.trees.len(),
        r.superblock.used,
        r.superblock.commit_gen,
        r.problems.len(),
        r.warnings.len()
    )
}

fn fail(args: &Args, e: &gefs_core::Error) -> ExitCode {
    if args.json {
        let doc = JsonOut {
            image: args.image.display().to_string(),
            status: "error",
            exit_code: 2,
            error: Some(e.to_string()),
            report: None,
        };
        if let Ok(s) = serde_json::to_string_pretty(&doc) {
            let _ = writeln!(std::io::stdout().lock(), "{s}");
        }
    }
    eprintln!("gefs-check: {e}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dev = match gefs_core::image::open_device(&args.image, true) {
        Ok(d) => d,
        Err(e) => return fail(&args, &e),
    };
    let bar = progress_bar(args.quiet);
    let progress = bar.clone().map(|b| {
        Arc::new(move |p: Progress| {
            b.set_length(p.total);
            b.set_position(p.done);
        }) as gefs_core::check::ProgressFn
    });
    let opts = CheckOpts {
        threads: args.threads.map_or(0, usize::from),
        progress,
    };
    let r = check(&*dev, &opts);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = match r {
        Ok(r) => r,
        Err(e) => return fail(&args, &e),
    };
    let code: u8 = if report.is_clean() { 0 } else { 1 };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let doc = JsonOut {
            image: args.image.display().to_string(),
            status: if code == 0 { "clean" } else { "problems" },
            exit_code: code,
            error: None,
            report: Some(&report),
        };
        serde_json::to_string_pretty(&doc)
            .map_err(std::io::Error::other)
            .and_then(|s| writeln!(out, "{s}"))
    } else {
        print_text(&mut out, &args.image, &report, args.quiet)
    };
    // A closed stdout (e.g. `| head`) is not a failure of the check.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("gefs-check: writing the report: {e}");
            ExitCode::from(2)
        }
        _ => ExitCode::from(code),
    }
}
