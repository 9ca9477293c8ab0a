//! What every gefs-rs command line shares, kept in one copy: the logging set-up
//! (`RUST_LOG`, `--log-format`), the size grammar of every size option, the exit
//! codes every `--help` states, and a stdout that a closed pipe does not turn into
//! a panic.
//!
//! Invariant: every binary calls [`init_logging`] once, before its first event,
//! and parses sizes only through [`size_arg`] (or [`gefs_core::units`] directly).

pub mod log;

pub use log::{init_logging, LogArgs, LogFormat};
