//! Background reads for loaders: ranges of the logical stream read in order on
//! the bindings' thread pool, a bounded window ahead of the consumer.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, sync_channel};

use hexz_format::Archive;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Error, Result};
use crate::pool;

/// Iterator of `bytes`, one per range, in the order given.
#[pyclass(module = "hexz._hexz", frozen)]
#[derive(Debug)]
pub struct Prefetcher {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    archive: Archive,
    ranges: Vec<(u64, usize)>,
    next: usize,
    window: usize,
    /// Neighbouring ranges within this many bytes are fetched with one read
    /// (0: every range alone).
    span_bytes: u64,
    in_flight: VecDeque<Receiver<hexz_format::Result<Vec<u8>>>>,
}

impl Prefetcher {
    pub fn new(
        archive: Archive,
        offsets: Vec<u64>,
        sizes: Vec<u64>,
        window: usize,
        span_bytes: u64,
    ) -> Result<Self> {
        if offsets.len() != sizes.len() {
            return Err(Error::Invalid(format!(
                "{} offsets but {} sizes",
                offsets.len(),
                sizes.len()
            )));
        }
        let mut ranges = Vec::with_capacity(offsets.len());
        for (o, s) in offsets.into_iter().zip(sizes) {
            if o.checked_add(s).is_none_or(|end| end > archive.len()) {
                return Err(Error::from(hexz_format::Error::OutOfRange {
                    what: "the logical stream".into(),
                    offset: o,
                    len: s,
                    size: archive.len(),
                }));
            }
            let s = usize::try_from(s).map_err(|_| {
                Error::Invalid(format!("range of {s} bytes does not fit in memory"))
            })?;
            ranges.push((o, s));
        }
        Ok(Self {
            state: Mutex::new(State {
                archive,
                ranges,
                next: 0,
                window: window.max(1),
                span_bytes,
                in_flight: VecDeque::new(),
            }),
        })
    }
}

impl State {
    fn fill(&mut self) {
        let Some(pool) = pool::fetch_pool() else {
            return;
        };
        // Refill in halves of the window, so groups stay large (one item at a time
        // would make every group a single range).
        if self.in_flight.len() > self.window / 2 {
            return;
        }
        while self.in_flight.len() < self.window && self.next < self.ranges.len() {
            // The next ranges (in order) whose union stays within `span_bytes`: one
            // read of the span serves them all, and its chunks stay cached for
            // their neighbours.
            let (first, first_len) = self.ranges[self.next];
            let (mut lo, mut hi) = (first, first + first_len as u64);
            let mut end = self.next + 1;
            while end < self.ranges.len() && self.in_flight.len() + (end - self.next) < self.window
            {
                let (o, l) = self.ranges[end];
                let (nlo, nhi) = (lo.min(o), hi.max(o + l as u64));
                if nhi - nlo > self.span_bytes {
                    break;
                }
                (lo, hi) = (nlo, nhi);
                end += 1;
            }
            let members: Vec<(u64, usize)> = self.ranges[self.next..end].to_vec();
            self.next = end;
            let mut senders = Vec::with_capacity(members.len());
            for _ in &members {
                let (tx, rx) = sync_channel(1);
                senders.push(tx);
                self.in_flight.push_back(rx);
            }
            let archive = self.archive.clone();
            pool.spawn(move || {
                if members.len() == 1 {
                    let _ = senders[0].send(archive.read_range(members[0].0, members[0].1));
                    return;
                }
                match archive.read_range(lo, (hi - lo) as usize) {
                    Ok(span) => {
                        for ((o, l), tx) in members.iter().zip(&senders) {
                            let from = (o - lo) as usize;
                            let _ = tx.send(Ok(span[from..from + l].to_vec()));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        let _ = senders[0].send(Err(e));
                        for tx in &senders[1..] {
                            let _ = tx.send(Err(hexz_format::Error::InvalidSetting {
                                setting: "prefetch",
                                detail: format!("the read serving this sample failed: {msg}"),
                            }));
                        }
                    }
                }
            });
        }
    }

    /// The next range's bytes, `None` at the end.
    fn take(&mut self) -> Option<hexz_format::Result<Vec<u8>>> {
        self.fill();
        match self.in_flight.pop_front() {
            Some(rx) => Some(rx.recv().unwrap_or_else(|_| {
                Err(hexz_format::Error::InvalidSetting {
                    setting: "prefetch",
                    detail: "a background read stopped without a result".into(),
                })
            })),
            None if self.next < self.ranges.len() => {
                // No thread pool: read in the caller's thread.
                let (offset, len) = self.ranges[self.next];
                self.next += 1;
                Some(self.archive.read_range(offset, len))
            }
            None => None,
        }
    }
}

#[pymethods]
impl Prefetcher {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let item = py.detach(|| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.take()
        });
        match item {
            Some(Ok(bytes)) => Ok(PyBytes::new(py, &bytes)),
            Some(Err(e)) => Err(Error::from(e).into()),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn __len__(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.ranges.len() - state.next + state.in_flight.len()
    }
}
