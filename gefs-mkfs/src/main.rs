//! gefs-mkfs: format an image file or block device for gefs-rs.
//!
//! Exit status: 0 formatted, 1 refused or failed (the message says why),
//! 2 bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gefs_core::units::{human, parse_size};

/// Format an image file or block device for gefs-rs.
#[derive(Parser, Debug)]
#[command(name = "gefs-mkfs", version)]
struct Args {
    /// Size of the image (K, M, G or T suffix). A new file is created sparse
    /// at this size (default 1G); an existing file is resized to it; a block
    /// device is used at its own size.
    #[arg(short = 's', long = "size", value_parser = size_arg)]
    size: Option<u64>,
    /// The first administrator, a member of the adm group (default: your
    /// login name).
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Format even if IMAGE already holds a gefs image.
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// The image file or block device.
    image: PathBuf,
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(user) = args.user.or_else(gefs_core::host::login_name) else {
        eprintln!("gefs-mkfs: cannot tell your login name; give one with -u");
        return ExitCode::from(2);
    };
    match gefs_core::image::format_image(&args.image, args.size, &user, args.force) {
        Ok(m) => {
            println!(
                "{}: {}gefs image of {} in {} arenas of {}; first administrator {}; labels main, adm, empty",
                args.image.display(),
                if m.created { "new " } else { "" },
                human(m.size),
                m.narena,
                human(m.arena_size),
                m.user
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gefs-mkfs: {e}");
            ExitCode::from(1)
        }
    }
}
