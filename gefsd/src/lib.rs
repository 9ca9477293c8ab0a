//! gefsd: the GEFS file server, speaking 9P2000 and 9P2000.L.
//!
//! - [`proto`]: the wire codec (message types, a bounded decoder for untrusted frames, the
//!   encoder, frame reading, version negotiation);
//! - [`server`]: connections, fids, the request handlers over `gefs_core::fs`, and the worker
//!   threads (read workers, one mutator, the sync worker, the sweeper, the clock);
//! - [`console`]: the administrative console (a Unix socket) and its client;
//! - [`client`]: a small synchronous 9P2000 and 9P2000.L client, for tests and tools;
//! - [`cli`]: the command line of the `gefsd` binary, whose `main.rs` only calls it;
//! - [`error`]: the daemon's own error type (commits, stopping); a request's error, and its
//!   9P string and errno, are `server::err`'s.
//!
//! Authentication: there is no auth protocol. A connection's user is the login name of the uid
//! that made it, known from the kernel (`SO_PEERCRED` on Unix sockets, `/proc/net/tcp` for
//! loopback TCP); a `Tattach` must name exactly that user (or `none`, after an authenticated
//! attach on the same connection); a peer whose uid is 0 (a kernel mount) may attach as any
//! user of the table. gefsd therefore listens only on Unix sockets and loopback TCP. With `-A` any user in the users table may attach, and the same listening rule applies.

pub mod cli;
pub mod client;
mod client_l;
pub mod console;
pub mod error;
pub mod proto;
pub mod server;
