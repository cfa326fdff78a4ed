//! Background reads for loaders: ranges of the logical stream read in order on
//! the bindings' fetch pool, ahead of the consumer.
//!
//! The ranges are cut, in order, into groups fetched with one
//! [`Archive::read_ranges`] each (one batched load: a remote source merges
//! neighbouring chunks into a few large requests and fetches them at once):
//!
//! * with `span_bytes > 0` (a block shuffle: runs of neighbouring samples), a
//!   group is the longest stretch of consecutive ranges whose hull stays within
//!   `span_bytes` — a whole run, fetched before its first sample is needed;
//! * with `span_bytes == 0` (scattered samples), a group is up to
//!   `window / 4` consecutive ranges (one call, their requests in parallel).
//!
//! Groups are started while fewer than `window` samples or fewer than two
//! groups are waiting, and never more than `ahead_bytes` of samples (the first
//! group always), so memory stays bounded by the caller's settings. The
//! consumer takes samples one at a time (`__next__`) or a list at a time
//! (`next_batch`, one call per loader batch).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use hexz_format::Archive;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::errors::{Error, Result};
use crate::pool;

/// Iterator of `bytes`, one per range, in the order given.
#[pyclass(module = "hexz._hexz", frozen)]
#[derive(Debug)]
pub struct Prefetcher {
    state: Mutex<State>,
}

type GroupResult = hexz_format::Result<Vec<Vec<u8>>>;

#[derive(Debug)]
struct Group {
    rx: Receiver<GroupResult>,
    samples: usize,
}

#[derive(Debug)]
struct State {
    archive: Archive,
    ranges: Vec<(u64, usize)>,
    /// The next range not yet in a group.
    next: usize,
    window: usize,
    span_bytes: u64,
    ahead_bytes: u64,
    /// Groups started, in order, not yet received.
    in_flight: VecDeque<Group>,
    /// The received group being consumed (front = next sample).
    ready: VecDeque<Vec<u8>>,
    /// Samples and bytes started or ready but not yet taken.
    queued_samples: usize,
    queued_bytes: u64,
    /// A read failed: every later call reports it (same class, same message).
    failed: Option<Arc<hexz_format::Error>>,
    /// The first group was started (it preloads the chunk index).
    started: bool,
}

impl Prefetcher {
    pub fn new(
        archive: Archive,
        offsets: Vec<u64>,
        sizes: Vec<u64>,
        window: usize,
        span_bytes: u64,
        ahead_bytes: u64,
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
                ahead_bytes,
                in_flight: VecDeque::new(),
                ready: VecDeque::new(),
                queued_samples: 0,
                queued_bytes: 0,
                failed: None,
                started: false,
            }),
        })
    }
}

impl State {
    /// The end (exclusive) of the group starting at `self.next`, and its bytes
    /// (at most `ahead_bytes`, unless one range is larger). Depends only on the
    /// ranges and settings, not on what is queued.
    fn next_group(&self) -> (usize, u64) {
        let (first, first_len) = self.ranges[self.next];
        let (mut lo, mut hi) = (first, first + first_len as u64);
        let mut bytes = first_len as u64;
        let mut end = self.next + 1;
        let most = if self.span_bytes == 0 {
            (self.window / 4).max(1)
        } else {
            usize::MAX
        };
        while end < self.ranges.len() && end - self.next < most {
            let (o, l) = self.ranges[end];
            if self.span_bytes > 0 {
                let (nlo, nhi) = (lo.min(o), hi.max(o + l as u64));
                if nhi - nlo > self.span_bytes {
                    break;
                }
                (lo, hi) = (nlo, nhi);
            }
            if bytes + l as u64 > self.ahead_bytes {
                break;
            }
            bytes += l as u64;
            end += 1;
        }
        (end, bytes)
    }

    /// Start groups while the window and the byte budget allow.
    fn fill(&mut self) {
        let Some(pool) = pool::fetch_pool() else {
            return;
        };
        while self.next < self.ranges.len()
            && (self.queued_samples < self.window || self.in_flight.len() < 2)
        {
            let (end, bytes) = self.next_group();
            if self.queued_samples > 0 && self.queued_bytes + bytes > self.ahead_bytes {
                break;
            }
            let members: Vec<(u64, usize)> = self.ranges[self.next..end].to_vec();
            self.next = end;
            let (tx, rx) = sync_channel(1);
            self.in_flight.push_back(Group {
                rx,
                samples: members.len(),
            });
            self.queued_samples += members.len();
            self.queued_bytes += bytes;
            let archive = self.archive.clone();
            let first = !std::mem::replace(&mut self.started, true);
            pool.spawn(move || {
                if first {
                    // Samples all over the archive: its chunk index in a few
                    // requests rather than a page at a time (a failure leaves the
                    // pages to the reads, which report it).
                    let _ = archive.preload_chunk_index();
                }
                let _ = tx.send(archive.read_ranges(&members));
            });
        }
    }

    /// Make `ready` non-empty if anything is left; `Ok(false)` at the end.
    fn refill(&mut self) -> Result<bool> {
        if let Some(e) = &self.failed {
            return Err(Error::Format(e.clone()));
        }
        if !self.ready.is_empty() {
            self.fill();
            return Ok(true);
        }
        self.fill();
        let group = match self.in_flight.pop_front() {
            Some(g) => g,
            None if self.next < self.ranges.len() => {
                // No thread pool: read in the caller's thread.
                let (end, bytes) = self.next_group();
                let members = &self.ranges[self.next..end];
                let data = self.archive.read_ranges(members)?;
                self.next = end;
                self.queued_samples += members.len();
                self.queued_bytes += bytes;
                self.ready.extend(data);
                return Ok(true);
            }
            None => return Ok(false),
        };
        let got = group.rx.recv().unwrap_or_else(|_| {
            Err(hexz_format::Error::InvalidSetting {
                setting: "prefetch",
                detail: "a background read stopped without a result".into(),
            })
        });
        match got {
            Ok(data) => {
                debug_assert_eq!(data.len(), group.samples);
                self.ready.extend(data);
                // Start the next group while this one is consumed.
                self.fill();
                Ok(true)
            }
            Err(e) => {
                let e = Arc::new(e);
                self.failed = Some(e.clone());
                self.in_flight.clear();
                self.next = self.ranges.len();
                Err(Error::Format(e))
            }
        }
    }

    /// The next sample's bytes, `None` at the end.
    fn take(&mut self) -> Result<Option<Vec<u8>>> {
        if !self.refill()? {
            return Ok(None);
        }
        let item = self.ready.pop_front();
        if let Some(b) = &item {
            self.queued_samples -= 1;
            self.queued_bytes -= b.len() as u64;
        }
        Ok(item)
    }

    /// Up to `n` samples (fewer only at the end).
    fn take_many(&mut self, n: usize) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(n.min(self.ranges.len()));
        while out.len() < n {
            match self.take()? {
                Some(b) => out.push(b),
                None => break,
            }
        }
        Ok(out)
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
            Ok(Some(bytes)) => Ok(PyBytes::new(py, &bytes)),
            Ok(None) => Err(PyStopIteration::new_err(())),
            Err(e) => Err(e.into()),
        }
    }

    /// The next `n` samples as a list of `bytes` (fewer only at the end; empty
    /// when done): one call per loader batch instead of one per sample.
    fn next_batch<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let items = py.detach(|| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.take_many(n)
        });
        let items = items?;
        PyList::new(py, items.iter().map(|b| PyBytes::new(py, b)))
    }

    fn __len__(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.ranges.len() - state.next + state.queued_samples
    }
}
