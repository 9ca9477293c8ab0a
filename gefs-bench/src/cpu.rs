//! Per-thread CPU time, so that a run on a shared machine can be judged by
//! its cost in CPU time as well as by wall-clock time.
//!
//! Linux `/proc/thread-self/schedstat` gives the time a thread has run and
//! the time it has waited, runnable, for a CPU (other processes' load shows
//! up there). The kernel updates them at scheduler ticks, so they are exact
//! to a few milliseconds: good for runs of seconds, meaningless for runs of
//! milliseconds. Elsewhere nothing is reported.

/// CPU time one or more threads used between two points. The default is
/// none, known: the identity of `+`.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    /// Nanoseconds on a CPU (user and system).
    pub run_ns: u64,
    /// Nanoseconds runnable but waiting for a CPU.
    pub wait_ns: u64,
    /// Whether every thread counted could be measured.
    pub known: bool,
}

fn read() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut f = s.split_whitespace().map(str::parse::<u64>);
    Some((f.next()?.ok()?, f.next()?.ok()?))
}

/// A point in the calling thread's CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Mark(Option<(u64, u64)>);

impl Mark {
    /// The calling thread's times now.
    pub fn now() -> Mark {
        Mark(read())
    }

    /// The calling thread's times since this mark (which it must have taken).
    pub fn since(self) -> Cpu {
        match (self.0, read()) {
            (Some((r0, w0)), Some((r1, w1))) => Cpu {
                run_ns: r1.saturating_sub(r0),
                wait_ns: w1.saturating_sub(w0),
                known: true,
            },
            _ => Cpu {
                known: false,
                ..Cpu::default()
            },
        }
    }
}

/// CPU nanoseconds (run, wait) of every thread of this process now, from
/// `/proc/self/task/*/schedstat`: background threads (a peer's flushes
/// and compactions) included. Threads that exit between two readings take
/// their time with them, so compare readings around work done by
/// long-lived threads.
pub fn process_now() -> Option<(u64, u64)> {
    let mut total = (0u64, 0u64);
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(e) = e else { continue };
        let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) else {
            continue;
        };
        let mut f = s.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(r)), Some(Ok(w))) = (f.next(), f.next()) {
            total = (total.0 + r, total.1 + w);
        }
    }
    Some(total)
}

/// The CPU time every thread of the process used since `start` (a
/// [`process_now`] reading).
pub fn process_since(start: Option<(u64, u64)>) -> Cpu {
    match (start, process_now()) {
        (Some((r0, w0)), Some((r1, w1))) => Cpu {
            run_ns: r1.saturating_sub(r0),
            wait_ns: w1.saturating_sub(w0),
            known: true,
        },
        _ => Cpu {
            known: false,
            ..Cpu::default()
        },
    }
}

impl Default for Cpu {
    fn default() -> Cpu {
        Cpu {
            run_ns: 0,
            wait_ns: 0,
            known: true,
        }
    }
}

impl std::ops::Add for Cpu {
    type Output = Cpu;

    /// The sum of two threads' or runs' times.
    fn add(self, o: Cpu) -> Cpu {
        Cpu {
            run_ns: self.run_ns + o.run_ns,
            wait_ns: self.wait_ns + o.wait_ns,
            known: self.known && o.known,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_uses_cpu() {
        let m = Mark::now();
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed().as_millis() < 50 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let c = m.since();
        if c.known {
            assert!(c.run_ns > 0);
        }
        assert!((Cpu::default() + c).known == c.known);
    }
}
