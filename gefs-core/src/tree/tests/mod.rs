//! Tree tests: a structural checker and a model harness (`harness`), model
//! and property tests (`model`), data-pointer freeing (`kdat`), failure
//! atomicity and corruption (`faults`), and regressions named for the
//! reference's defects (`regress`).

mod faults;
mod harness;
mod kdat;
mod model;
mod regress;
