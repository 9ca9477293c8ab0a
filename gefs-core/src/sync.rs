//! Synchronisation primitives used by the cache and the epoch layer.
//!
//! Normal builds use `parking_lot` and `std` atomics; the `loom` feature builds swap
//! in loom's model-checked versions so that the cache and epoch protocols can
//! be explored exhaustively (test T14). The API is the small common subset.

#[cfg(not(feature = "loom"))]
mod imp {
    pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize};

    /// A mutex (parking_lot).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);
    /// Its guard.
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new mutex.
        pub fn new(v: T) -> Mutex<T> {
            Mutex(parking_lot::Mutex::new(v))
        }
        /// Lock it.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable (parking_lot).
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Condvar {
            Condvar(parking_lot::Condvar::new())
        }
        /// Wait, releasing the guard meanwhile.
        pub fn wait<'a, T>(&self, mut g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut g);
            g
        }
        /// Wake every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Yield while spinning.
    pub fn spin_yield() {
        std::thread::yield_now();
    }
}

#[cfg(feature = "loom")]
mod imp {
    pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize};

    /// A mutex (loom).
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);
    /// Its guard.
    pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new mutex.
        pub fn new(v: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(v))
        }
        /// Lock it.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            match self.0.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            }
        }
    }

    /// A condition variable (loom).
    #[derive(Debug)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Condvar {
            Condvar(loom::sync::Condvar::new())
        }
        /// Wait, releasing the guard meanwhile.
        pub fn wait<'a, T>(&self, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            match self.0.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            }
        }
        /// Wake every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Yield while spinning.
    pub fn spin_yield() {
        loom::thread::yield_now();
    }
}

pub use imp::*;
