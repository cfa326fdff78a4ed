//! Loading many chunks at once: one [`ReadAt::read_ranges`](crate::ReadAt::read_ranges)
//! call per archive holding some (this one, or a parent of a thin child) for all
//! the uncached chunks of a read (or of a read-ahead window), so a
//! remote source can merge adjacent blobs into one ranged request and fetch the
//! groups in parallel; then CRC check and decompression in parallel on rayon.
//!
//! Chunks are claimed in the chunk cache before they are fetched (a placeholder
//! other readers wait on), so two threads never fetch the same chunk, and chunks
//! another thread is already loading are skipped. Failures are not reported
//! here: a chunk left unloaded is loaded (and its error reported) by the
//! one-chunk path when the reader reaches it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::GuardResult;
use rayon::prelude::*;

use super::Inner;
use crate::layout::{CHUNK_DELTA, ChunkRecord};

/// Stored bytes fetched by one `read_ranges` call at most.
const BATCH_BYTES: u64 = 16 << 20;

impl Inner {
    /// Fetch, check and cache the chunks of `records` — stored in this archive or
    /// in a parent — that are neither cached nor being loaded: one batched read
    /// per archive holding some. The bases of delta chunks are loaded first, the
    /// same way, so the deltas find them cached. Never waits for another thread's
    /// load, not even a delta chunk's base: this runs on the rayon pool, while
    /// holding claims across parallel work.
    pub(super) fn load_batch(&self, records: &[ChunkRecord]) {
        let bases: Vec<ChunkRecord> = records
            .iter()
            .filter(|r| r.flags & CHUNK_DELTA != 0)
            .filter_map(|r| self.delta_base_record(r).ok())
            .collect();
        for list in [&bases[..], records] {
            let mut sources: Vec<u16> = list
                .iter()
                .filter(|r| !r.is_zero())
                .map(|r| r.source)
                .collect();
            sources.sort_unstable();
            sources.dedup();
            for source in sources {
                // A parent that cannot be opened is left to the one-chunk path,
                // which reports it.
                let parent = match source {
                    0 => None,
                    _ => match self.parents.parent(self, source) {
                        Ok(p) => Some(p),
                        Err(_) => continue,
                    },
                };
                let holder = parent.as_ref().map_or(self, |p| &*p.inner);
                self.load_batch_from(holder, source, list);
            }
        }
    }

    /// [`load_batch`](Self::load_batch) for the records of `source`, stored in
    /// `holder` (this archive, or that parent): fetched from `holder`, checked
    /// and decoded by it, cached here.
    fn load_batch_from(&self, holder: &Inner, source: u16, records: &[ChunkRecord]) {
        let size = holder.source.size();
        let mut seen = HashSet::new();
        let mut batches = vec![Vec::new()];
        let mut bytes = 0u64;
        for r in records {
            let stored = u64::from(r.stored_len);
            if r.is_zero()
                || r.source != source
                || r.blob_offset.saturating_add(stored) > size
                || !seen.insert(r.blob_offset)
            {
                continue;
            }
            let GuardResult::Guard(guard) = self
                .chunks
                .get_value_or_guard(&(r.source, r.blob_offset), Some(Duration::ZERO))
            else {
                continue;
            };
            if bytes >= BATCH_BYTES {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += stored;
            if let Some(batch) = batches.last_mut() {
                batch.push((*r, guard));
            }
        }
        let verify = self.options.verify_chunks;
        for batch in batches.into_iter().filter(|b| !b.is_empty()) {
            let ranges: Vec<(u64, usize)> = batch
                .iter()
                .map(|(r, _)| (r.blob_offset, r.stored_len as usize))
                .collect();
            // On failure the guards are dropped, which releases the claims.
            let Ok(stored) = holder.source.read_ranges(&ranges) else {
                continue;
            };
            batch
                .into_par_iter()
                .zip(stored.into_par_iter())
                .for_each(|((r, guard), stored)| {
                    // A delta chunk's base, found through this archive's records
                    // (and cached by the pass over the bases). Never waited for:
                    // a base another thread is loading leaves the delta to the
                    // one-chunk path (dropping the guard releases the claim).
                    let base = if r.flags & CHUNK_DELTA != 0 {
                        match self
                            .delta_base_record(&r)
                            .and_then(|b| self.chunk_no_wait(&b))
                        {
                            Ok(Some(base)) => Some(base),
                            Ok(None) | Err(_) => return,
                        }
                    } else {
                        None
                    };
                    let base = base.as_deref().map(Vec::as_slice);
                    let local = ChunkRecord { source: 0, ..r };
                    if let Ok(data) = holder.chunk_from_stored(&local, stored, base, verify) {
                        let _ = guard.insert(Arc::new(data));
                    }
                });
        }
    }
}
