//! What every gefs-rs command line shares, kept in one copy: the logging set-up
//! (`RUST_LOG`, `--log-format`), the size option parser, the exit codes every
//! `--help` states, and standard output that a closed pipe does not turn into a
//! panic.
//!
//! Invariant: every binary calls [`init_logging`] once, before its first event,
//! and parses sizes only through [`size_arg`] (which is
//! [`gefs_core::units::parse_size`], the one size grammar).

pub mod log;
pub mod out;

pub use log::{init_logging, LogArgs, LogFormat};
pub use out::{print_out, OutExt};

/// The clap value parser of every size option: `512M`, `1.5G`, `2T`; a bare
/// number is refused with a hint.
pub fn size_arg(s: &str) -> Result<u64, String> {
    gefs_core::units::parse_size(s)
}

/// The exit codes of the tools, for `--help` (`after_help`): 0, 1 and 2 mean
/// the same for every tool, and each tool says what they mean for it.
pub fn exit_codes(ok: &str, failed: &str, unable: &str) -> String {
    format!(
        "Exit status:\n  0  {ok}\n  1  {failed}\n  2  {unable}\n\nLogging: RUST_LOG \
         (e.g. RUST_LOG=debug) chooses which events go to standard error; \
         --log-format json writes them as JSON lines."
    )
}

pub mod generate;
pub use generate::generate_if_asked;
