//! gefs-dump: inspect a gefs-rs image without changing it.
//!
//! Exit status: 0 shown, 1 the view failed (the image is damaged where the
//! view needed it) or `export` skipped entries (each named on standard
//! error), 2 could not open the image or bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gefs_core::store::Config;

/// Inspect a gefs-rs image (read-only).
#[derive(Parser, Debug)]
#[command(name = "gefs-dump", version, after_help = after_help())]
struct Args {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The image file or block device.
    image: PathBuf,
    #[command(subcommand)]
    view: View,
    #[command(flatten)]
    log: gefs_cli::LogArgs,
}

#[derive(Subcommand, Debug)]
enum View {
    /// Both superblock copies and the one in use.
    Super,
    /// Each arena's counters and free ranges.
    Arenas,
    /// Space: size, used, free, reserve, and what only snapshots hold.
    Df,
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
    /// The deadlist segments a snapshot owns.
    Deadlist {
        /// A snapshot label.
        snap: String,
    },
    /// A directory's entries (or a file's).
    Ls {
        /// A snapshot label.
        snap: String,
        /// A path from its root.
        #[arg(default_value = "/")]
        path: String,
    },
    /// One entry's metadata.
    Stat {
        /// A snapshot label.
        snap: String,
        /// A path from its root.
        #[arg(default_value = "/")]
        path: String,
    },
    /// A file's contents, to standard output.
    Cat {
        /// A snapshot label.
        snap: String,
        /// A path from its root.
        path: String,
    },
    /// Copy a snapshot's files to a host directory.
    Export {
        /// A snapshot label.
        snap: String,
        /// The host directory (created if absent).
        dir: std::path::PathBuf,
    },
}

fn after_help() -> String {
    format!(
        "Examples:\n  gefs-dump disk.img df                  space, and what snapshots hold\n  \
         gefs-dump disk.img snaps --json        snapshot records as JSON\n  \
         gefs-dump disk.img ls main /home       a directory of main\n  \
         gefs-dump disk.img cat monday /etc/motd > motd   a file from snapshot monday\n  \
         gefs-dump disk.img export monday ./restore       copy a snapshot's files out\n  \
         gefs-dump disk.img blk 0x7e0000        one block decoded, even a damaged one\n\n{}",
        gefs_cli::exit_codes(
            "shown",
            "the view failed (the image is damaged where it looked), or export skipped entries",
            "the image could not be opened (not a gefs image, in use by a writer), or bad arguments"
        )
    )
}

fn parse_addr(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn show<T: serde::Serialize>(json: bool, v: &T) -> ExitCode {
    let text = if json {
        match serde_json::to_string_pretty(v) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("gefs-dump: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        gefs_core::dump::text(v)
    };
    out(&text)
}

/// Print `text`; a closed pipe is fine, another write error is exit 1.
fn out(text: &str) -> ExitCode {
    match gefs_cli::print_out(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gefs-dump: writing the output: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    if let Some(code) = gefs_cli::generate_if_asked::<Args>() {
        return code;
    }
    let a = Args::parse();
    gefs_cli::init_logging(a.log.log_format);
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
    let fsview = matches!(
        a.view,
        View::Ls { .. } | View::Stat { .. } | View::Cat { .. } | View::Export { .. }
    );
    if fsview {
        return files(&a, s);
    }
    let r = match &a.view {
        View::Super => gefs_core::dump::superblock(&s).map(|v| show(a.json, &v)),
        View::Arenas => Ok(show(a.json, &gefs_core::dump::arenas(&s))),
        View::Df => gefs_core::admin::df(&s).map(|d| {
            if a.json {
                show(true, &d)
            } else {
                out(&d.text())
            }
        }),
        View::Snaps => gefs_core::dump::snaps(&s).map(|v| show(a.json, &v)),
        View::Tree { label } => {
            gefs_core::dump::tree_levels(&s, label.as_deref()).map(|v| show(a.json, &v))
        }
        View::Deadlist { snap } => gefs_core::dump::deadlist(&s, snap).map(|v| show(a.json, &v)),
        _ => Ok(ExitCode::SUCCESS),
    };
    r.unwrap_or_else(|e| {
        eprintln!("gefs-dump: {e}");
        ExitCode::from(1)
    })
}

/// The views that read files through the file-system layer.
fn files(a: &Args, s: gefs_core::store::Store) -> ExitCode {
    let fs = match gefs_core::fs::Fs::new(std::sync::Arc::new(s), true) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gefs-dump: {e}");
            return ExitCode::from(1);
        }
    };
    let r = match &a.view {
        View::Ls { snap, path } => gefs_core::dump::ls(&fs, snap, path).map(|v| show(a.json, &v)),
        View::Stat { snap, path } => {
            gefs_core::dump::stat(&fs, snap, path).map(|v| show(a.json, &v))
        }
        View::Cat { snap, path } => {
            let mut out = std::io::stdout().lock();
            gefs_core::dump::cat(&fs, snap, path, &mut out).map(|_| ExitCode::SUCCESS)
        }
        View::Export { snap, dir } => gefs_core::export::export(&fs, snap, dir).map(|x| {
            for s in &x.skipped {
                tracing::warn!(skipped = %s, "not exported: {s}");
            }
            for d in &x.devices {
                eprintln!("gefs-dump: {d}: a device node, not made on the host");
            }
            let code = if a.json {
                show(true, &x)
            } else {
                out(&format!(
                    "exported {} files and {} directories ({} bytes) to {}\n",
                    x.files,
                    x.dirs,
                    x.bytes,
                    dir.display()
                ))
            };
            if x.skipped.is_empty() {
                code
            } else {
                eprintln!(
                    "gefs-dump: export incomplete: {} entries skipped",
                    x.skipped.len()
                );
                ExitCode::from(1)
            }
        }),
        _ => Ok(ExitCode::SUCCESS),
    };
    r.unwrap_or_else(|e| {
        eprintln!("gefs-dump: {e}");
        ExitCode::from(1)
    })
}
