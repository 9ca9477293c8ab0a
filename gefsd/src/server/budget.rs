//! Memory budgets for bytes in flight: requests read but not answered, and replies not yet
//! written (reliability plan S10, T15).
//!
//! Every request is charged, before its body is read off the socket, the bytes its size field
//! claims (at most msize; a peer that claims a large frame and stalls holds them for at most
//! the frame timeout), and, once decoded, the bytes its reply may take (a `Tread`'s count,
//! clamped to the I/O unit; a fixed allowance for the small replies, corrected to the real
//! size when the reply is made). The charge is released when the writer has written the reply to the socket.
//! While a charge does not fit, the connection's reader waits and does not read its socket:
//! the peer is back-pressured by TCP or the Unix socket buffer, and nothing is buffered
//! without limit.
//!
//! Two budgets apply to every charge:
//! - the connection's own (`Limits::conn_bytes`): what one client may hold;
//! - the server's (`Limits::total_bytes`), shared by all connections, except that the first
//!   [`CONN_RESERVE`] bytes of each connection are its own and count only against its own
//!   budget. So clients that flood the server with requests whose replies they never read
//!   fill the shared budget and stall themselves, while every other client can still have a
//!   small request (a walk, a stat, a read of up to about 60 KiB) in flight.
//!
//! Invariants (under the budget's one mutex):
//! - `shared` is the sum over live connections of `held − min(held, CONN_RESERVE)`;
//! - a charge is admitted when it fits both budgets, or when its connection holds nothing
//!   (resp. nothing is held server-wide), so one request larger than a budget still runs,
//!   alone; memory in flight is thus at most `total_bytes + conns × CONN_RESERVE`, plus one
//!   request past each budget;
//! - every charge admitted is released exactly once (by the writer, or by the reader on the
//!   error paths that never dispatch).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Bytes of each connection that count only against its own budget, not the shared one.
pub const CONN_RESERVE: usize = 64 << 10;

/// What a small (non-data) reply is charged before it exists: more than an `Rwalk` of 16
/// qids or an `Rstat` of ordinary names. The real size is charged when the reply is made.
pub const SMALL_REPLY: usize = 512;

/// The server-wide budget; each connection's count lives in its [`Held`].
#[derive(Debug)]
pub struct Budget {
    conn_limit: usize,
    total_limit: usize,
    shared: Mutex<usize>,
    cv: Condvar,
    /// Readers waiting for room in the shared budget (changed under `shared`).
    waiting: AtomicUsize,
}

/// One connection's bytes in flight. Changed only under the [`Budget`]'s mutex.
#[derive(Debug, Default)]
pub struct Held(AtomicUsize);

impl Held {
    /// The bytes this connection holds.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

fn shared_part(held: usize) -> usize {
    held.saturating_sub(CONN_RESERVE)
}

impl Budget {
    /// Budgets of `conn_limit` bytes per connection and `total_limit` over all of them.
    pub fn new(conn_limit: usize, total_limit: usize) -> Budget {
        Budget {
            conn_limit,
            total_limit,
            shared: Mutex::new(0),
            cv: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Bytes held in the shared budget.
    pub fn shared(&self) -> usize {
        *self.shared.lock()
    }

    /// Charge `n` bytes to `held`, waiting while they do not fit. Gives up (returning false,
    /// nothing charged) as soon as `cancel()` is true; it is polled at least every 100 ms.
    pub fn acquire(&self, held: &Held, n: usize, cancel: impl Fn() -> bool) -> bool {
        let mut shared = self.shared.lock();
        let mut counted = false;
        let admitted = loop {
            let h = held.get();
            let after = h.saturating_add(n);
            let extra = shared_part(after) - shared_part(h);
            let conn_fits = h == 0 || after <= self.conn_limit;
            let shared_fits =
                extra == 0 || *shared == 0 || shared.saturating_add(extra) <= self.total_limit;
            if conn_fits && shared_fits {
                held.0.store(after, Ordering::Relaxed);
                *shared += extra;
                break true;
            }
            if cancel() {
                break false;
            }
            if conn_fits != counted {
                // Waiting on the shared budget (not on this connection's own).
                if conn_fits {
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                counted = conn_fits;
            }
            self.cv.wait_for(&mut shared, Duration::from_millis(100));
        };
        if counted {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Whether some reader waits for room in the shared budget.
    pub fn contended(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Charge `n` more bytes to `held` without waiting: memory already in use (a reply larger
    /// than its estimate).
    pub fn force(&self, held: &Held, n: usize) {
        if n == 0 {
            return;
        }
        let mut shared = self.shared.lock();
        let h = held.get();
        let after = h.saturating_add(n);
        *shared += shared_part(after) - shared_part(h);
        held.0.store(after, Ordering::Relaxed);
    }

    /// Release `n` bytes charged to `held`, and wake the readers waiting for room.
    pub fn release(&self, held: &Held, n: usize) {
        if n == 0 {
            return;
        }
        let mut shared = self.shared.lock();
        let h = held.get();
        let after = h.saturating_sub(n);
        *shared = shared.saturating_sub(shared_part(h) - shared_part(after));
        held.0.store(after, Ordering::Relaxed);
        drop(shared);
        self.cv.notify_all();
    }

    /// Wake every waiting reader (stopping), so each sees its cancellation at once.
    pub fn wake_all(&self) {
        let _g = self.shared.lock();
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: usize = 1024;

    #[test]
    fn the_reserve_is_outside_the_shared_budget() {
        let b = Budget::new(256 * K, 256 * K);
        let (x, y, z) = (Held::default(), Held::default(), Held::default());
        assert!(b.acquire(&x, 64 * K, || true));
        assert_eq!(b.shared(), 0);
        assert!(b.acquire(&x, 192 * K, || true));
        assert_eq!(b.shared(), 192 * K);
        // y's next request does not fit the shared budget: refused (cancelled, not waited).
        assert!(b.acquire(&y, 64 * K, || true), "the reserve is y's own");
        assert!(!b.acquire(&y, 128 * K, || true));
        // The connection budget: x is full.
        assert!(!b.acquire(&x, 1, || true));
        // One request larger than the budget runs when its connection holds nothing...
        b.release(&x, 256 * K);
        assert_eq!((b.shared(), x.get()), (0, 0));
        assert!(b.acquire(&z, 1024 * K, || true));
        // ...and then nothing else from that connection fits.
        assert!(!b.acquire(&z, 1, || true));
        b.force(&y, 10);
        assert_eq!(y.get(), 64 * K + 10);
        b.release(&y, 64 * K + 10);
        b.release(&z, 1024 * K);
        assert_eq!(b.shared(), 0);
    }

    #[test]
    fn a_waiting_charge_is_admitted_when_room_is_released() {
        let b = std::sync::Arc::new(Budget::new(128 * K, 1 << 30));
        let x = std::sync::Arc::new(Held::default());
        assert!(b.acquire(&x, 128 * K, || false));
        let (b2, x2) = (b.clone(), x.clone());
        let t = std::thread::spawn(move || b2.acquire(&x2, 64 * K, || false));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "admitted past the connection budget");
        b.release(&x, 128 * K);
        assert!(t.join().unwrap_or(false));
        assert_eq!(x.get(), 64 * K);
    }
}
