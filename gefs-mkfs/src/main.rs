//! gefs-mkfs: format an image file or block device for gefs-rs, optionally
//! populating `main` from a host directory; or (`--grow`) grow an image in
//! place into a larger file or device.
//!
//! Exit status: 0 formatted, 1 refused or failed (the message says why),
//! 2 bad arguments.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use gefs_core::fs::Fs;
use gefs_core::retain::Schedule;
use gefs_core::snap::Snaps;
use gefs_core::units::human;
use indicatif::{ProgressBar, ProgressStyle};

/// Format an image file or block device for gefs-rs.
#[derive(Parser, Debug)]
#[command(name = "gefs-mkfs", version, after_help = after_help())]
struct Args {
    /// Size of the image (K, M, G or T suffix). A new file is created sparse
    /// at this size (default 1G); an existing file is resized to it; a block
    /// device is used at its own size.
    #[arg(short = 's', long = "size", value_name = "SIZE", value_parser = gefs_cli::size_arg)]
    size: Option<u64>,
    /// The first administrator, a member of the adm group (default: your
    /// login name).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    user: Option<String>,
    /// Format even if IMAGE already holds a gefs image.
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Populate `main` with a copy of this host directory (files,
    /// directories, modes, mtimes; symlinks, devices and sockets are
    /// skipped with a warning each).
    #[arg(short = 'd', long = "from", value_name = "DIR")]
    from: Option<PathBuf>,
    /// Owner of the copied files (default: the first administrator).
    #[arg(long = "owner", value_name = "USER", requires = "from")]
    owner: Option<String>,
    /// The retention schedule of automatic snapshots, for every mutable
    /// label (default "60@1m 24@1h @1d"; "" for none). Items are
    /// [count]@[interval]unit, unit m, h or d; a count of 0 keeps all.
    #[arg(long = "retain", value_name = "SCHEDULE", value_parser = retain_arg)]
    retain: Option<Schedule>,
    /// Grow IMAGE in place instead of formatting it: extend the file to
    /// -s SIZE (or use the size a file or device already has) and add arenas
    /// in the new space. The image must not be in use.
    #[arg(long = "grow", conflicts_with_all = ["user", "force", "from", "owner", "retain"])]
    grow: bool,
    /// The image file or block device.
    image: PathBuf,
    #[command(flatten)]
    log: gefs_cli::LogArgs,
}

fn retain_arg(s: &str) -> Result<Schedule, String> {
    s.parse().map_err(|e: gefs_core::Error| e.to_string())
}

/// Set the global retention schedule (when one was given) and describe the
/// one in force.
fn retention(store: &gefs_core::store::Store, given: Option<&Schedule>) -> Result<String, String> {
    let (sched, whence) = match given {
        Some(s) => {
            Snaps::new(store)
                .set_conf(None, "retain", s.to_string().as_bytes())
                .and_then(|()| store.sync().map(drop))
                .map_err(|e| e.to_string())?;
            (*s, "")
        }
        None => (Schedule::default(), ", the default"),
    };
    let what = if sched.is_empty() {
        sched.describe()
    } else {
        format!("{} of each mutable label (main, adm)", sched.describe())
    };
    Ok(format!(
        "retention: \"{sched}\"{whence}: {what}; change it with gefs-snap IMAGE set retain \
         SCHEDULE"
    ))
}

fn after_help() -> String {
    format!(
        "Examples:\n  gefs-mkfs -s 2G disk.img                 a new 2 GiB sparse image, you as \
         administrator\n  \
         gefs-mkfs --size 64M --user alice disk.img\n  \
         gefs-mkfs -s 1G --from ~/photos disk.img   main populated with a copy of ~/photos\n  \
         gefs-mkfs --retain '24@1h @1d' disk.img  hourly and daily automatic snapshots\n  \
         gefs-mkfs -f /dev/sdb                    format a device that holds something\n  \
         gefs-mkfs --grow -s 4G disk.img          grow an image in place\n\n\
         Sizes: a number and a unit, K, M, G or T (1.5G); a bare number is refused.\n\n{}",
        gefs_cli::exit_codes(
            "formatted (or grown)",
            "refused (the image holds data: -f; in use) or failed",
            "bad arguments (a size too small or not a size, a bad user name, --from not a \
             directory)"
        )
    )
}

fn populate(
    store: gefs_core::store::Store,
    dir: &std::path::Path,
    owner: &str,
) -> Result<String, String> {
    let fs = Fs::new(Arc::new(store), false).map_err(|e| e.to_string())?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    });
    let t0 = Instant::now();
    let mut tick = |p: &gefs_core::import::Imported| {
        if let Some(b) = &bar {
            b.set_message(format!("{} files, {}", p.files, human(p.bytes)));
            b.tick();
        }
    };
    let explain = |e: gefs_core::fs::Error| match e {
        gefs_core::fs::Error::NoSpace => fs.explain_full(),
        e => e.to_string(),
    };
    let r = gefs_core::import::import(&fs, "main", dir, owner, &mut tick).map_err(explain)?;
    fs.sync().map_err(explain)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for s in &r.skipped {
        tracing::warn!(skipped = %s, "not copied: {s}");
    }
    let secs = t0.elapsed().as_secs_f64().max(1e-6);
    Ok(format!(
        "copied {} files and {} directories ({}) from {} in {:.1} s ({:.0} files/s)",
        r.files,
        r.dirs,
        human(r.bytes),
        dir.display(),
        secs,
        r.files as f64 / secs
    ))
}

/// `--grow`: grow the image in place and say what was done.
fn grow(args: &Args) -> ExitCode {
    match gefs_core::image::grow_image(&args.image, args.size) {
        Ok(g) => {
            let unused = match g.unused() {
                0 => String::new(),
                n => format!(
                    "; {} at the end is left for a later grow (less than an arena)",
                    human(n)
                ),
            };
            gefs_cli::outln!(
                "{}: grew from {} to {}: {} to {} arenas of {} (commit {}){unused}",
                args.image.display(),
                human(g.old.dev_size),
                human(g.new.dev_size),
                g.old.narena,
                g.new.narena,
                human(g.new.arena_size),
                g.commit_gen
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gefs-mkfs: {}: {e}", args.image.display());
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for what the arguments got wrong (a size too small, a bad user name) and
/// for an image that could not be opened (missing, unreadable, in use), as
/// the README's exit codes say; 1 for a refusal or a failure.
fn exit_code(e: &gefs_core::Error) -> u8 {
    match e {
        gefs_core::Error::Invalid(_) => 2,
        gefs_core::Error::Io {
            op: gefs_core::error::IoOp::Open,
            ..
        } => 2,
        _ => 1,
    }
}

fn main() -> ExitCode {
    if let Some(code) = gefs_cli::generate_if_asked::<Args>() {
        return code;
    }
    let args = Args::parse();
    gefs_cli::init_logging(args.log.log_format);
    if args.grow {
        return grow(&args);
    }
    let Some(user) = args.user.or_else(gefs_core::host::login_name) else {
        eprintln!("gefs-mkfs: cannot tell your login name; give one with --user NAME");
        return ExitCode::from(2);
    };
    if let Some(d) = &args.from {
        if !d.is_dir() {
            eprintln!("gefs-mkfs: {}: not a directory", d.display());
            return ExitCode::from(2);
        }
    }
    let (m, store) = match gefs_core::image::format_image(&args.image, args.size, &user, args.force)
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gefs-mkfs: {e}");
            return ExitCode::from(exit_code(&e));
        }
    };
    gefs_cli::outln!(
        "{}: {}gefs image of {} in {} arenas of {}; first administrator {}; labels main, adm, empty",
        args.image.display(),
        if m.created { "new " } else { "" },
        human(m.size),
        m.narena,
        human(m.arena_size),
        m.user
    );
    match retention(&store, args.retain.as_ref()) {
        Ok(line) => gefs_cli::outln!("{line}"),
        Err(e) => {
            eprintln!("gefs-mkfs: setting the retention schedule: {e}");
            return ExitCode::from(1);
        }
    }
    if let Some(dir) = &args.from {
        let owner = args.owner.as_deref().unwrap_or(&user);
        match populate(store, dir, owner) {
            Ok(line) => gefs_cli::outln!("{line}"),
            Err(e) => {
                eprintln!("gefs-mkfs: populating from {}: {e}", dir.display());
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
