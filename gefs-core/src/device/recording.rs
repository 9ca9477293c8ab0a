//! [`RecordingDev`]: a [`MemDev`] that logs every write, flush and test mark,
//! so that a test can rebuild the image as a power cut at any moment would
//! have left it: everything before the last completed flush, plus any subset
//! of the writes issued since, each possibly torn at 4 KiB.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Device, MemDev};

/// Tearing granularity: a write reaches the medium in units of this size.
pub const SECTOR: usize = 4096;

/// One recorded device event.
#[derive(Debug, Clone)]
pub enum Event {
    /// A write that completed.
    Write {
        /// Byte offset.
        off: u64,
        /// The bytes written.
        data: Arc<[u8]>,
    },
    /// A flush that completed.
    Flush,
    /// A marker the test placed (operation boundaries, acknowledged syncs).
    Mark(u64),
}

/// A device that records what is done to it.
#[derive(Debug)]
pub struct RecordingDev {
    base: MemDev,
    live: MemDev,
    log: Mutex<Vec<Event>>,
}

impl RecordingDev {
    /// Start recording on top of `base` (which is not modified).
    pub fn new(base: &MemDev) -> RecordingDev {
        RecordingDev {
            base: base.snapshot(),
            live: base.snapshot(),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Place a marker in the event log.
    pub fn mark(&self, m: u64) {
        self.log.lock().push(Event::Mark(m));
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.log.lock().clone()
    }

    /// The current image (as if every write were durable).
    pub fn live(&self) -> MemDev {
        self.live.snapshot()
    }

    /// Split the log at its flushes.
    pub fn epochs(&self) -> Epochs {
        let events = self.events();
        let img = self.base.snapshot();
        let mut out = Epochs { epochs: Vec::new() };
        let mut cur = Epoch {
            start: img.snapshot(),
            writes: Vec::new(),
            marks: Vec::new(),
            flushed: false,
        };
        for ev in events {
            match ev {
                Event::Write { off, data } => {
                    let _ = img.write_at(&data, off);
                    cur.writes.push((off, data));
                }
                Event::Mark(m) => cur.marks.push((cur.writes.len(), m)),
                Event::Flush => {
                    cur.flushed = true;
                    let next = Epoch {
                        start: img.snapshot(),
                        writes: Vec::new(),
                        marks: Vec::new(),
                        flushed: false,
                    };
                    out.epochs.push(std::mem::replace(&mut cur, next));
                }
            }
        }
        out.epochs.push(cur);
        out
    }
}

/// The writes between two flushes.
#[derive(Debug)]
pub struct Epoch {
    /// The durable image when the epoch began.
    pub start: MemDev,
    /// Writes issued in the epoch, in order.
    pub writes: Vec<(u64, Arc<[u8]>)>,
    /// Marks placed in the epoch, with the number of writes issued before each.
    pub marks: Vec<(usize, u64)>,
    /// Whether a flush ended the epoch.
    pub flushed: bool,
}

impl Epoch {
    /// The image a crash in this epoch leaves when exactly the sectors for
    /// which `persisted(write, sector)` holds reached the medium. Writes are
    /// applied in issue order.
    pub fn state(&self, mut persisted: impl FnMut(usize, usize) -> bool) -> MemDev {
        let img = self.start.snapshot();
        for (w, (off, data)) in self.writes.iter().enumerate() {
            for (s, chunk) in data.chunks(SECTOR).enumerate() {
                if persisted(w, s) {
                    let _ = img.write_at(chunk, off + (s * SECTOR) as u64);
                }
            }
        }
        img
    }

    /// Number of sectors in write `w`.
    pub fn sectors(&self, w: usize) -> usize {
        self.writes
            .get(w)
            .map_or(0, |(_, d)| d.len().div_ceil(SECTOR))
    }
}

/// A recorded log split at its flushes.
#[derive(Debug)]
pub struct Epochs {
    /// Epoch 0 starts at the base image; each flush starts the next.
    pub epochs: Vec<Epoch>,
}

impl Device for RecordingDev {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.live.read_at(buf, off)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        let mut log = self.log.lock();
        self.live.write_at(buf, off)?;
        log.push(Event::Write {
            off,
            data: Arc::from(buf),
        });
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.log.lock().push(Event::Flush);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.live.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_and_states() {
        let base = MemDev::new(1 << 20);
        let d = RecordingDev::new(&base);
        d.write_at(&[1; 8192], 0).unwrap();
        d.flush().unwrap();
        d.mark(7);
        d.write_at(&[2; 8192], 0).unwrap();
        d.write_at(&[3; 10], 20000).unwrap();
        let ep = d.epochs();
        assert_eq!(ep.epochs.len(), 2);
        assert!(ep.epochs[0].flushed && !ep.epochs[1].flushed);
        assert_eq!(ep.epochs[1].marks, vec![(0, 7)]);
        let e = &ep.epochs[1];
        assert_eq!(e.sectors(0), 2);
        // Torn: only the second sector of the first write persisted.
        let img = e.state(|w, s| w == 0 && s == 1);
        let mut b = [0u8; 1];
        img.read_at(&mut b, 0).unwrap();
        assert_eq!(b, [1]);
        img.read_at(&mut b, 4096).unwrap();
        assert_eq!(b, [2]);
        img.read_at(&mut b, 20000).unwrap();
        assert_eq!(b, [0]);
    }
}
