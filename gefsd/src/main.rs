//! gefsd: serve a gefs image over 9P2000, or talk to a running server's console
//! (`gefsd console`). Everything is in the library (`gefsd::cli`).
//!
//! Exit status: 0 stopped cleanly (SIGINT, SIGTERM, console `halt`) after a final commit, or
//! the console command succeeded; 1 failed (the message says why); 2 bad arguments, or no
//! server to talk to.

fn main() -> std::process::ExitCode {
    gefsd::cli::main()
}
