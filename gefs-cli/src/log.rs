//! Logging for every gefs-rs binary: `tracing` events rendered by
//! `tracing-subscriber` to standard error, one line each, with a timestamp, a level,
//! the event's module and its structured fields; or one JSON object per line with
//! `--log-format json`.
//!
//! `RUST_LOG` selects what is shown (an `EnvFilter` directive such as `debug` or
//! `gefsd=debug,gefs_core=warn`); without it, `info` and above. A `RUST_LOG` that
//! does not parse is reported once and the default applies.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// How log events are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event: time, level, module, message, fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// The `--log-format` option, for a binary's clap definition (`#[command(flatten)]`).
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct LogArgs {
    /// Log events to standard error as text lines or JSON objects; `RUST_LOG` chooses
    /// which (e.g. `RUST_LOG=debug`).
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

/// Install the process's log subscriber. Call once, first thing; a second call
/// changes nothing.
pub fn init_logging(format: LogFormat) {
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => match EnvFilter::try_new(&s) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new("info"), Some((s, e))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().flatten_event(false).try_init(),
    };
    if installed.is_ok() {
        if let Some((s, e)) = bad {
            tracing::warn!(rust_log = %s, error = %e, "RUST_LOG does not parse; logging at info");
        }
    }
}
