//! Standard output for tools whose output is often piped (`gefs-dump ... |
//! head`): a reader that goes away is the reader's choice, not an error of the
//! tool, so writing to a closed pipe ends the output quietly instead of
//! panicking the way `println!` does.

use std::io::{ErrorKind, Write};

/// Write `text` to standard output. A closed pipe is success (the reader has
/// what it wanted); any other failure is returned.
pub fn print_out(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .ignore_closed_pipe()
}

/// `ignore_closed_pipe` for the result of a write to standard output.
pub trait OutExt {
    /// A `BrokenPipe` error becomes `Ok(())`.
    fn ignore_closed_pipe(self) -> std::io::Result<()>;
}

impl OutExt for std::io::Result<()> {
    fn ignore_closed_pipe(self) -> std::io::Result<()> {
        match self {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
            r => r,
        }
    }
}

/// `println!` that does not panic when standard output is gone: a status line
/// a closed pipe did not take is dropped (see [`print_out`]).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        let _ = $crate::print_out(&format!("{}\n", format_args!($($arg)*)));
    }};
}
