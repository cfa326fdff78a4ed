//! Conformance suite for [`Transport`] implementations.
//!
//! Every transport, built in or out of tree, should pass [`check_transport`] for
//! each service it serves. The suite checks the contract documented on
//! [`Transport`] and [`ReadAt`]:
//!
//! * a missing object opens as an `io::Error` of kind `NotFound` that names the URL;
//! * sizes are exact (1 byte, 300 KB, 5 MiB + 1 — the last spans parallel pieces);
//! * `read_exact_at` returns the bytes asked for at the start, middle and end;
//!   a range past the end is an error, never short data;
//! * `read_ranges` returns each range in the caller's order (unsorted,
//!   overlapping, adjacent and empty ranges);
//! * reads from several threads at once agree;
//! * writable transports: `put` replaces an object and the new size and bytes are
//!   seen by the next `open`; read-only ones refuse `put` with an error naming
//!   the URL.
//!
//! Objects are placed with `put` when the transport writes, otherwise with the
//! caller's `place` function (e.g. a file in the folder an HTTP server serves).
//!
//! ```
//! use hexz_pipeline::OpendalTransport;
//! use hexz_pipeline::transport_conformance::{Placement, check_transport};
//! check_transport(&OpendalTransport::default(), "memory://conformance-doc", Placement::Put)
//!     .unwrap();
//! ```

use std::fmt;
use std::io;

use hexz_format::ReadAt;

use crate::registry::{PutOptions, Transport};

/// How the suite puts its test objects at `base/name`.
pub enum Placement<'a> {
    /// Through the transport's own [`Transport::put`] (the transport writes).
    Put,
    /// Through this function, given the object name and bytes (read-only
    /// transports); `put` is then expected to fail.
    External(&'a dyn Fn(&str, &[u8]) -> io::Result<()>),
}

impl fmt::Debug for Placement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Put => "Put",
            Placement::External(_) => "External",
        })
    }
}

/// A broken part of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    /// Which check.
    pub check: &'static str,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport conformance `{}`: {}", self.check, self.detail)
    }
}

impl std::error::Error for TransportFailure {}

fn fail(check: &'static str, detail: impl Into<String>) -> TransportFailure {
    TransportFailure {
        check,
        detail: detail.into(),
    }
}

/// Deterministic bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Run the suite against `transport`, with test objects under `base` (a URL
/// prefix such as `s3://bucket/prefix` or `memory://suite`).
pub fn check_transport(
    transport: &dyn Transport,
    base: &str,
    placement: Placement<'_>,
) -> Result<(), TransportFailure> {
    let base = base.trim_end_matches('/');
    let url = |name: &str| format!("{base}/{name}");
    let place = |name: &str, bytes: &[u8]| -> Result<(), TransportFailure> {
        match &placement {
            Placement::Put => {
                let data = hexz_format::MemorySource::new(bytes.to_vec(), name);
                let options = PutOptions {
                    part_size: 5 << 20,
                    concurrency: 2,
                };
                transport
                    .put(&url(name), &data, &options, &mut |_| {})
                    .map(drop)
                    .map_err(|e| fail("put", format!("{}: {e}", url(name))))
            }
            Placement::External(f) => {
                f(name, bytes).map_err(|e| fail("place", format!("{name}: {e}")))
            }
        }
    };

    // Missing objects.
    let missing = url("no-such-object.hxz");
    match transport.open(&missing) {
        Ok(_) => return Err(fail("missing", format!("{missing} opened"))),
        Err(e) => {
            let kind = e.downcast_ref::<io::Error>().map(io::Error::kind);
            if kind != Some(io::ErrorKind::NotFound) {
                return Err(fail(
                    "missing",
                    format!("not an io::Error of kind NotFound: {e}"),
                ));
            }
            if !e.to_string().contains("no-such-object.hxz") {
                return Err(fail("missing", format!("error does not name the URL: {e}")));
            }
        }
    }

    // Sizes and ranges.
    for (name, len) in [("one", 1usize), ("mid", 300_000), ("large", (5 << 20) + 1)] {
        let bytes = pattern(len, len as u64);
        place(name, &bytes)?;
        let source = transport
            .open(&url(name))
            .map_err(|e| fail("open", e.to_string()))?;
        if source.size() != len as u64 {
            return Err(fail(
                "size",
                format!("{name}: {} bytes, expected {len}", source.size()),
            ));
        }
        check_reads(source.as_ref(), &bytes, name)?;
    }

    // Several threads at once.
    let bytes = pattern(300_000, 300_000);
    let source = transport
        .open(&url("mid"))
        .map_err(|e| fail("open", e.to_string()))?;
    let results: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let source = &source;
                let bytes = &bytes;
                s.spawn(move || {
                    (0..10u64).all(|i| {
                        let offset = ((t * 7919 + i * 104_729) % 290_000) as usize;
                        let mut buf = vec![0; 5000];
                        source.read_exact_at(offset as u64, &mut buf).is_ok()
                            && buf == bytes[offset..offset + 5000]
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .collect()
    });
    if results.iter().any(|ok| !ok) {
        return Err(fail("threads", "concurrent reads disagreed or failed"));
    }

    // Writing.
    match placement {
        Placement::Put => {
            let new = pattern(70_000, 99);
            place("one", &new)?;
            let source = transport
                .open(&url("one"))
                .map_err(|e| fail("replace", e.to_string()))?;
            let mut buf = vec![0; new.len()];
            if source.size() != new.len() as u64
                || source.read_exact_at(0, &mut buf).is_err()
                || buf != new
            {
                return Err(fail("replace", "put did not replace the object"));
            }
        }
        Placement::External(_) => {
            let data = hexz_format::MemorySource::new(vec![1u8; 10], "x");
            match transport.put(&url("refused"), &data, &PutOptions::default(), &mut |_| {}) {
                Ok(_) => return Err(fail("read-only", "put succeeded")),
                Err(e) if !e.to_string().contains("refused") => {
                    return Err(fail(
                        "read-only",
                        format!("error does not name the URL: {e}"),
                    ));
                }
                Err(_) => {}
            }
        }
    }
    Ok(())
}

fn check_reads(source: &dyn ReadAt, bytes: &[u8], name: &str) -> Result<(), TransportFailure> {
    let len = bytes.len();
    let spots = [
        (0, len.min(100)),
        (len / 2, (len / 3).min(70_000)),
        (len - 1, 1),
    ];
    for (offset, n) in spots {
        let mut buf = vec![0; n];
        source
            .read_exact_at(offset as u64, &mut buf)
            .map_err(|e| fail("read", format!("{name} {offset}+{n}: {e}")))?;
        if buf != bytes[offset..offset + n] {
            return Err(fail("read", format!("{name} {offset}+{n}: wrong bytes")));
        }
    }
    // The whole object in one read (parallel pieces for the large one).
    let mut all = vec![0; len];
    source
        .read_exact_at(0, &mut all)
        .map_err(|e| fail("read", format!("{name} whole: {e}")))?;
    if all != bytes {
        return Err(fail("read", format!("{name} whole: wrong bytes")));
    }
    let mut past = vec![0; 2];
    if source.read_exact_at(len as u64 - 1, &mut past).is_ok() {
        return Err(fail(
            "past-end",
            format!("{name}: a read past the end succeeded"),
        ));
    }
    let ranges: Vec<(u64, usize)> = [
        (len / 2, len / 4),
        (0, len.min(10)),
        (len / 2, len / 8),
        (len / 2 + len / 4, len / 4),
        (len / 3, 0),
        (len - 1, 1),
    ]
    .into_iter()
    .map(|(o, n)| (o as u64, n))
    .collect();
    let got = source
        .read_ranges(&ranges)
        .map_err(|e| fail("read_ranges", format!("{name}: {e}")))?;
    if got.len() != ranges.len() {
        return Err(fail("read_ranges", format!("{name}: wrong count")));
    }
    for ((o, n), g) in ranges.iter().zip(&got) {
        let o = *o as usize;
        if g[..] != bytes[o..o + n] {
            return Err(fail("read_ranges", format!("{name}: range {o}+{n} wrong")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::OpendalTransport;

    #[test]
    fn memory_transport_conforms() {
        check_transport(
            &OpendalTransport::default(),
            "memory://suite",
            Placement::Put,
        )
        .unwrap();
    }

    #[test]
    fn file_transport_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("file://{}", dir.path().display());
        check_transport(&OpendalTransport::default(), &base, Placement::Put).unwrap();
        // Publishing left no temporary files beside the objects.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["large", "mid", "one"]);
    }
}
