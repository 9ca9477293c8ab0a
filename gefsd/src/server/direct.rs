//! A connection without a transport: requests are handed in as decoded messages and their
//! replies come straight back. For tests and the fuzz target (reliability plan T11); the
//! handlers, fid table, limits and workers are the ones real connections use.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::Receiver;

use super::conn::{Conn, Peer};
use super::core::Core;
use super::err::msg;
use super::ops;
use super::outbox::Out;
use crate::proto::{Rmsg, Tmsg};

/// An in-process 9P session.
pub struct Session {
    core: Arc<Core>,
    conn: Arc<Conn>,
    rx: Receiver<Out>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("conn", &self.conn).finish()
    }
}

impl Session {
    /// A session whose peer is `user` (authenticated as that user by peer credentials).
    pub fn new(core: Arc<Core>, user: Option<String>) -> Session {
        let peer = Peer {
            uid: None,
            user,
            desc: "direct".into(),
        };
        Session::with_peer(core, peer)
    }

    /// A session whose peer is `peer` (its uid as well as its name).
    pub fn with_peer(core: Arc<Core>, peer: Peer) -> Session {
        let (conn, rx) = Conn::new_direct(&core, peer);
        core.register(&conn);
        Session { core, conn, rx }
    }

    /// Handle one request to completion and return its reply. Tflush answers Rflush (nothing
    /// is ever in flight here); a null wstat waits for the sync worker's reply.
    pub fn call(&self, tag: u16, m: Tmsg) -> Rmsg {
        match m {
            Tmsg::Version { msize, version } => {
                Conn::version(&self.core, &self.conn, msize, &version)
            }
            _ if !self.conn.versioned() => ops::err(msg::NO_VERSION),
            Tmsg::Flush { .. } => Rmsg::Flush,
            Tmsg::Auth { .. } => ops::auth(&self.core),
            m => match ops::handle(&self.core, &self.conn, tag, m) {
                Some(r) => r,
                None => self.deferred(tag),
            },
        }
    }

    fn deferred(&self, tag: u16) -> Rmsg {
        while let Ok(o) = self.rx.recv_timeout(Duration::from_secs(60)) {
            if let Some((t, r)) = Conn::unpack(o) {
                if t == tag {
                    return r;
                }
            }
        }
        self.conn
            .fail(&super::err::Error::Server(msg::SHUTTING_DOWN))
    }

    /// Fids in the session's table.
    pub fn fids(&self) -> usize {
        self.conn.fids.len()
    }

    /// The most fids a session may hold.
    pub fn max_fids(&self) -> usize {
        self.core.opts.limits.max_fids
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        ops::clunk_all(&self.core, &self.conn);
        self.core.unregister(self.conn.id);
    }
}
