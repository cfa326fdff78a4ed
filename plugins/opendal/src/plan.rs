//! How to cut reads into requests, from what this object's requests have cost.
//!
//! Two costs decide it (the model of Arrow's `CacheOptions::MakeFromNetworkMetrics`):
//! the time a request takes before its bytes flow (latency, *L*) and the rate
//! at which they then flow (bandwidth, *B*). Their product *L·B* — the
//! bandwidth-delay product — is how many bytes a new request costs in time:
//!
//! * two ranges closer than *L·B* are cheaper as one request that also reads
//!   the gap ([`Plan::gap`], at least [`COALESCE_GAP`], at most [`MAX_GAP`]);
//! * a read is split into parallel pieces only when a piece still keeps its
//!   connection busy for most of the request: pieces of 9·*L·B* (90 % of the
//!   time transferring), at least [`PARALLEL_PIECE`], at most [`MAX_PIECE`]
//!   ([`Plan::piece`]).
//!
//! The costs are measured, per object URL, on the requests this process sends:
//! the wait for a response's first bytes is the latency (what queues at a busy
//! server is in it), and a large request's bytes over the rest of its time the
//! bandwidth; both are moving averages. Until both are known the defaults hold.
//! A forked process (a `DataLoader` worker) starts with its parent's figures.
//! On a store whose requests cost what they carry (AWS S3: tens of ms to the
//! first byte, ~100 MB/s per connection) the plan stays near the defaults; on
//! one where every request costs tens of ms
//! whatever its size and bytes flow at hundreds of MB/s (a server that reads
//! the whole object per request, or one far away), near ranges share requests
//! and large reads stay whole.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use crate::{COALESCE_GAP, COALESCE_MAX, PARALLEL_PIECE};

/// Requests of at least this many bytes time the bandwidth.
pub const LARGE: u64 = 256 * 1024;
/// The largest gap read to save a request.
pub const MAX_GAP: u64 = 16 * 1024 * 1024;
/// The largest piece a read is cut into.
pub const MAX_PIECE: u64 = 64 * 1024 * 1024;
/// Weight of a new observation in the moving averages.
const ALPHA: f64 = 0.3;

/// How reads are cut into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Ranges at most this far apart are fetched by one request.
    pub gap: u64,
    /// A merged request never grows past this.
    pub max_group: u64,
    /// Reads larger than this are cut into pieces of this size, fetched at once.
    pub piece: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            gap: COALESCE_GAP,
            max_group: COALESCE_MAX,
            piece: PARALLEL_PIECE,
        }
    }
}

/// What this object's requests have cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Costs {
    /// Seconds before the bytes of a request flow.
    pub latency: Option<f64>,
    /// Bytes per second once they flow.
    pub bandwidth: Option<f64>,
}

impl Costs {
    /// Take in one request of `bytes` whose first bytes came after
    /// `first_bytes` and its last after `total`. The wait for the first bytes
    /// is the latency (whatever queues at a busy server is in it); a large
    /// request's bytes over the rest of its time, the bandwidth.
    pub fn observe(&mut self, bytes: u64, first_bytes: Duration, total: Duration) {
        let avg = |old: Option<f64>, new: f64| Some(old.map_or(new, |o| o + ALPHA * (new - o)));
        let first = first_bytes.as_secs_f64().min(10.0);
        self.latency = avg(self.latency, first);
        if bytes >= LARGE {
            // At least 1 ms: a body can arrive in one piece with its head.
            let transfer = (total.as_secs_f64() - first).max(0.001);
            self.bandwidth = avg(self.bandwidth, bytes as f64 / transfer);
        }
    }

    /// The plan these costs call for (the defaults until both are known).
    pub fn plan(&self) -> Plan {
        let (Some(l), Some(b)) = (self.latency, self.bandwidth) else {
            return Plan::default();
        };
        let bdp = (l * b).min(u64::MAX as f64 / 16.0) as u64;
        let gap = bdp.clamp(COALESCE_GAP, MAX_GAP);
        let piece = bdp.saturating_mul(9).clamp(PARALLEL_PIECE, MAX_PIECE);
        Plan {
            gap,
            max_group: COALESCE_MAX.max(piece),
            piece,
        }
    }
}

/// Costs per object URL, for this process (inherited by a forked child).
static COSTS: LazyLock<Mutex<HashMap<String, Costs>>> = LazyLock::new(Default::default);

/// Objects whose costs are kept at most (a process reading many objects forgets
/// some, which then plan from the defaults again).
pub const MAX_OBJECTS: usize = 1024;

/// Take in one request to `url` (see [`Costs::observe`]).
pub fn observe(url: &str, bytes: u64, first_bytes: Duration, total: Duration) {
    let mut costs = COSTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = costs.get_mut(url) {
        known.observe(bytes, first_bytes, total);
        return;
    }
    if costs.len() >= MAX_OBJECTS
        && let Some(other) = costs.keys().next().cloned()
    {
        costs.remove(&other);
    }
    let mut new = Costs::default();
    new.observe(bytes, first_bytes, total);
    costs.insert(url.to_string(), new);
}

/// The plan for reads of `url`.
pub fn plan(url: &str) -> Plan {
    let costs = COSTS.lock().unwrap_or_else(|e| e.into_inner());
    costs.get(url).map(Costs::plan).unwrap_or_default()
}

/// What requests to `url` have cost so far in this process.
pub fn costs(url: &str) -> Costs {
    let costs = COSTS.lock().unwrap_or_else(|e| e.into_inner());
    costs.get(url).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(n: f64) -> Duration {
        Duration::from_secs_f64(n / 1000.0)
    }

    #[test]
    fn defaults_until_latency_and_bandwidth_are_both_known() {
        let mut c = Costs::default();
        assert_eq!(c.plan(), Plan::default());
        c.observe(64 << 10, ms(30.0), ms(31.0));
        assert!(c.latency.is_some() && c.bandwidth.is_none());
        assert_eq!(c.plan(), Plan::default());
        c.observe(4 << 20, ms(30.0), ms(70.0));
        assert!(c.bandwidth.is_some());
    }

    #[test]
    fn a_store_like_s3_keeps_the_defaults_near() {
        // 30 ms to the first byte, then 100 MB/s: 4 MB end after 70 ms.
        let mut c = Costs::default();
        for _ in 0..5 {
            c.observe(64 << 10, ms(30.0), ms(31.0));
            c.observe(4_000_000, ms(30.0), ms(70.0));
        }
        let p = c.plan();
        // L·B = 3 MB: gaps up to 3 MB are read, pieces of 27 MB.
        assert!((2_800_000..=3_200_000).contains(&p.gap), "{p:?}");
        assert!((25_000_000..=29_000_000).contains(&p.piece), "{p:?}");
        assert_eq!(p.max_group, p.piece);
    }

    #[test]
    fn a_store_whose_requests_cost_the_same_whatever_their_size_merges_and_keeps_reads_whole() {
        // 50 ms before any byte, then 4.4 MB in 10 ms (440 MB/s) — or, one
        // request queued behind another, 110 ms before its bytes.
        for first in [50.0, 110.0] {
            let mut c = Costs::default();
            for _ in 0..5 {
                c.observe(4096, ms(first), ms(first));
                c.observe(4_400_000, ms(first), ms(first + 10.0));
            }
            let p = c.plan();
            assert_eq!(p.gap, MAX_GAP, "{c:?}");
            assert_eq!(p.piece, MAX_PIECE, "{c:?}");
        }
    }

    #[test]
    fn a_fast_store_keeps_the_floors() {
        // 0.3 ms to the first byte, 1 GB/s (nginx on loopback): L·B = 300 KB.
        let mut c = Costs::default();
        for _ in 0..5 {
            c.observe(4096, ms(0.3), ms(0.3));
            c.observe(8_000_000, ms(0.3), ms(8.3));
        }
        let p = c.plan();
        assert!(p.gap < 400_000, "{p:?}");
        assert_eq!(p.piece, PARALLEL_PIECE);
        assert_eq!(p.max_group, COALESCE_MAX);
    }

    #[test]
    fn costs_are_kept_per_url_for_a_bounded_number_of_objects() {
        observe("memory://plan/a", 4096, ms(40.0), ms(40.0));
        observe("memory://plan/a", 8 << 20, ms(40.0), ms(50.0));
        assert_eq!(plan("memory://plan/a").gap, MAX_GAP);
        assert_eq!(plan("memory://plan/b"), Plan::default());
        for i in 0..2 * MAX_OBJECTS {
            observe(&format!("memory://plan/many/{i}"), 4096, ms(1.0), ms(1.0));
        }
        assert!(COSTS.lock().unwrap().len() <= MAX_OBJECTS);
    }
}
