//! Reading many ranges of the logical stream at once: what a training loader
//! does with a run of samples. The chunks under all the ranges are fetched with
//! one batched load (so a remote source merges neighbouring blobs into a few
//! large requests, fetched in parallel), then each range is copied out of the
//! chunk cache. Unlike [`Archive::read_at`], this does not count as a sequential
//! read: it never starts the reader's read-ahead (the caller already said what
//! it needs).

use super::{Archive, READ_STEP_RECORDS, Result};

/// Chunk records [`Archive::read_ranges`] looks up at once for all its ranges.
const READ_RANGES_RECORDS: usize = 4 * READ_STEP_RECORDS;

impl Archive {
    /// The bytes of each `(offset, len)` range of the logical stream, in the
    /// order given. All ranges are checked before anything is fetched.
    pub fn read_ranges(&self, ranges: &[(u64, usize)]) -> Result<Vec<Vec<u8>>> {
        let inner = &self.inner;
        let size = self.len();
        for &(offset, len) in ranges {
            inner.checked_len(offset, len, size, "the logical stream")?;
        }
        // The chunk records under each range, looked up once — unless there are
        // more than a few read steps' worth (an index of tiny chunks): then each
        // range is read a step at a time, so what is held stays bounded.
        let mut per_range = Vec::with_capacity(ranges.len());
        let mut held = 0usize;
        for &(offset, len) in ranges {
            let end = offset + len as u64;
            let budget = READ_RANGES_RECORDS.saturating_sub(held).max(1);
            let records = if len > 0 {
                inner.chunks_covering_at_most(offset, end, budget)?
            } else {
                Vec::new()
            };
            if records.last().is_some_and(|r| r.logical_end() < end) {
                drop(per_range);
                return ranges
                    .iter()
                    .map(|&(offset, len)| {
                        let mut buf = vec![0; len];
                        inner.fill(offset, &mut buf)?;
                        Ok(buf)
                    })
                    .collect();
            }
            held += records.len();
            per_range.push(records);
        }
        // In blob order, so each batch of the load covers neighbouring blobs.
        let mut records: Vec<_> = per_range.iter().flatten().copied().collect();
        records.sort_by_key(|r| (r.source, r.blob_offset));
        records.dedup_by_key(|r| (r.source, r.blob_offset));
        inner.load_batch(&records);
        ranges
            .iter()
            .zip(&per_range)
            .map(|(&(offset, len), covering)| {
                let mut buf = vec![0; len];
                let end = offset + len as u64;
                for r in covering {
                    let data = if r.is_zero() {
                        None
                    } else {
                        Some(inner.chunk(r)?)
                    };
                    inner.copy_chunk(r, data.as_deref().map(Vec::as_slice), offset, end, &mut buf);
                }
                Ok(buf)
            })
            .collect()
    }
}
