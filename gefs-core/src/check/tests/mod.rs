//! Checker tests: populated images built through the store check clean;
//! every fault class on every block class is reported at the right address;
//! hostile images never panic.

mod damage;
mod faults;
mod fsck;
mod hostile;
mod image;
mod live;
mod rehash;
mod robust;

use super::{check, check_store, CheckOpts, Report};
use crate::device::Device;

/// Check with three threads (a reader and two workers; `image.rs` also
/// checks one thread); panics only if the image cannot be checked.
pub(super) fn run(dev: &dyn Device) -> Report {
    check(
        dev,
        &CheckOpts {
            threads: 3,
            progress: None,
        },
    )
    .expect("image can be checked")
}

/// [`run`] without the file-system checks, for images whose trees hold
/// data keys of no file.
pub(super) fn run_store(dev: &dyn Device) -> Report {
    check_store(
        dev,
        &CheckOpts {
            threads: 3,
            progress: None,
        },
    )
    .expect("image can be checked")
}

/// Every finding, one per line, for assertion messages.
pub(super) fn show(r: &Report) -> String {
    let mut s = String::new();
    for p in &r.problems {
        s.push_str(&format!("problem: {p}\n"));
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}
