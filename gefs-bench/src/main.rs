//! `gefs-bench`: see [`gefs_bench::cli::Cli`] for usage and exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use gefs_bench::cli::{execute, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let quiet = cli.common.quiet;
    let progress = |s: &str| {
        if !quiet {
            eprintln!("gefs-bench: {s}");
        }
    };
    let rep = match execute(&cli, &progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gefs-bench: {e}");
            return ExitCode::from(1);
        }
    };
    let text = if cli.common.json {
        match rep.to_json() {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("gefs-bench: encoding the report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        rep.to_table()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gefs-bench: writing the report: {e}");
            ExitCode::from(1)
        }
    }
}
