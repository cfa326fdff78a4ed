//! Epoch orders and shards for training loaders (the logic behind
//! `hexz.torch.IterableDataset`).
//!
//! An epoch visits every sample once, in an order that depends only on
//! `(seed, epoch)` ([`epoch_order`]). The order is dealt out to `world` ranks
//! (rank `r` takes positions `r, r + world, r + 2·world, …`), and each rank's list
//! to its loader workers in blocks of `block` samples, round-robin — so a PyTorch
//! `DataLoader` with `batch_size = block`, which collects one batch per worker in
//! turn, hands the rank its list in order. Every sample lands in exactly one
//! shard, whatever `world` and `workers` are, and shards differ in length by at
//! most one block (uneven splits end early instead of waiting for anything).
//!
//! Resuming mid-epoch skips the first `consumed` samples of the rank's list.
//!
//! ```
//! use hexz_pipeline::sampler::{Shard, epoch_order, shard_samples};
//! let order = epoch_order(10, 7, 0, true);
//! let mut all: Vec<u64> = Vec::new();
//! for rank in 0..3 {
//!     for worker in 0..2 {
//!         let shard = Shard { rank, world: 3, worker, workers: 2, block: 1 };
//!         all.extend(shard_samples(&order, &shard, 0, false).unwrap());
//!     }
//! }
//! all.sort();
//! assert_eq!(all, (0..10).collect::<Vec<u64>>());
//! ```

/// Which part of an epoch one loader worker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's rank, `0..world`.
    pub rank: u64,
    /// Number of ranks (DDP world size), at least 1.
    pub world: u64,
    /// This loader worker, `0..workers`.
    pub worker: u64,
    /// Loader workers per rank, at least 1.
    pub workers: u64,
    /// Samples dealt to a worker at a time (the loader's batch size), at least 1.
    pub block: u64,
}

/// A shard description that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A count that must be at least 1 is 0.
    #[error("{what} must be at least 1")]
    Zero {
        /// `"world"`, `"workers"` or `"block"`.
        what: &'static str,
    },
    /// An index is not below its count.
    #[error("{what} {index} is out of range 0..{count}")]
    OutOfRange {
        /// `"rank"` or `"worker"`.
        what: &'static str,
        /// The index given.
        index: u64,
        /// The count it must stay below.
        count: u64,
    },
}

/// SplitMix64: a small, fast generator whose output is fixed by its seed on
/// every platform (the order must not change between machines or versions).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound > 0`), by multiply-shift.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// The order in which an epoch visits samples `0..n`: a permutation fixed by
/// `(seed, epoch)` (Fisher–Yates over SplitMix64), or `0..n` when `shuffle` is
/// false.
pub fn epoch_order(n: u64, seed: u64, epoch: u64, shuffle: bool) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    if shuffle && n > 1 {
        let mut rng = SplitMix64(seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03));
        // Mix the seed in before the first draw, so seeds 0 and 1 differ at once.
        rng.next();
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    order
}

/// The order of an epoch that keeps locality: samples `0..n` cut into runs of
/// `block` consecutive ids (neighbours in the archive's stream), the runs visited in
/// a permuted order and each run's samples permuted within it — all fixed by
/// `(seed, epoch)`. A loader reading a run touches one contiguous span of the
/// archive, which remote storage serves with a few large requests instead of one
/// per sample. `block <= 1` is [`epoch_order`].
pub fn block_order(n: u64, seed: u64, epoch: u64, block: u64) -> Vec<u64> {
    if block <= 1 {
        return epoch_order(n, seed, epoch, true);
    }
    let runs = n.div_ceil(block);
    let run_order = epoch_order(runs, seed, epoch, true);
    let mut order = Vec::with_capacity(n as usize);
    for (k, run) in run_order.into_iter().enumerate() {
        let start = run * block;
        let len = block.min(n - start);
        let inner = epoch_order(
            len,
            seed ^ 0xA5A5_5A5A_0F0F_F0F0,
            epoch.wrapping_add((k as u64) << 32),
            true,
        );
        order.extend(inner.into_iter().map(|i| start + i));
    }
    order
}

/// The samples `shard` reads from `order`, in the order it reads them, after
/// skipping the first `consumed` samples of its rank's list. With `drop_last`,
/// every rank gets the same number of samples (`order.len() / world`; the
/// remainder is left out of the epoch) — what DDP training needs to keep
/// collective operations in step.
pub fn shard_samples(
    order: &[u64],
    shard: &Shard,
    consumed: u64,
    drop_last: bool,
) -> Result<Vec<u64>, ShardError> {
    check(shard)?;
    let len = order.len() as u64;
    let usable = if drop_last {
        len - len % shard.world
    } else {
        len
    };
    let rank_list = (shard.rank..usable)
        .step_by(shard.world as usize)
        .map(|p| order[p as usize]);
    Ok(deal(rank_list, shard, consumed))
}

/// The samples `shard` reads in an epoch of `n` samples shuffled in runs of
/// `run` neighbours ([`block_order`]), laid out so that each loader worker reads
/// whole runs: what remote storage serves with one large request per run
/// instead of every worker touching every run.
///
/// * Rank `r` takes a contiguous piece of the epoch order (the same length as
///   [`rank_len`]: ranks differ by at most one sample, `drop_last` evens them),
///   so a rank reads its own runs, not a slice of every run.
/// * The rank's piece is cut where the run changes; each piece of a run goes to
///   the worker with the fewest samples so far (ties: the lowest worker), and the
///   rank's list is the workers' streams interleaved in blocks of
///   `shard.block` — the order a `DataLoader` with `batch_size = block` delivers.
/// * That list is then dealt to the workers exactly as [`shard_samples`] deals a
///   rank's list (blocks of `block`, round-robin, after skipping `consumed`), so
///   coverage, the delivered order and resuming work as there; while every
///   worker still has samples, the dealing gives each worker back its own runs.
///
/// The list depends on `workers` and `block` (not only on `(seed, epoch)`):
/// resume with the same loader settings.
pub fn block_shard_samples(
    n: u64,
    seed: u64,
    epoch: u64,
    run: u64,
    shard: &Shard,
    consumed: u64,
    drop_last: bool,
) -> Result<Vec<u64>, ShardError> {
    check(shard)?;
    let order = block_order(n, seed, epoch, run);
    let run = run.max(1);
    let start = rank_start(n, shard.rank, shard.world, drop_last);
    let len = rank_len(n, shard.rank, shard.world, drop_last);
    let piece = &order[start as usize..(start + len) as usize];
    // Pieces of runs, dealt to the least-loaded worker.
    let workers = shard.workers as usize;
    let mut streams: Vec<Vec<u64>> = vec![Vec::new(); workers];
    let mut i = 0;
    while i < piece.len() {
        let id = piece[i] / run;
        let mut j = i + 1;
        while j < piece.len() && piece[j] / run == id {
            j += 1;
        }
        let w = (0..workers).min_by_key(|&w| streams[w].len()).unwrap_or(0);
        streams[w].extend_from_slice(&piece[i..j]);
        i = j;
    }
    // Interleave in blocks of `block`, skipping streams that ran out.
    let block = shard.block as usize;
    let mut list = Vec::with_capacity(piece.len());
    let mut at = 0;
    while list.len() < piece.len() {
        for s in &streams {
            if at < s.len() {
                list.extend_from_slice(&s[at..(at + block).min(s.len())]);
            }
        }
        at += block;
    }
    Ok(deal(list.into_iter(), shard, consumed))
}

/// Where rank `rank`'s contiguous piece of an epoch of `n` starts (the pieces
/// have the lengths of [`rank_len`]).
fn rank_start(n: u64, rank: u64, world: u64, drop_last: bool) -> u64 {
    let usable = if drop_last { n - n % world } else { n };
    rank * (usable / world) + rank.min(usable % world)
}

/// Blocks of `shard.block` samples of a rank's list, round-robin to the workers,
/// after skipping the first `consumed`.
fn deal(rank_list: impl Iterator<Item = u64>, shard: &Shard, consumed: u64) -> Vec<u64> {
    rank_list
        .enumerate()
        .skip(usize::try_from(consumed).unwrap_or(usize::MAX))
        .filter(|(j, _)| {
            let j = *j as u64 - consumed;
            (j / shard.block) % shard.workers == shard.worker
        })
        .map(|(_, p)| p)
        .collect()
}

fn check(shard: &Shard) -> Result<(), ShardError> {
    for (what, v) in [
        ("world", shard.world),
        ("workers", shard.workers),
        ("block", shard.block),
    ] {
        if v == 0 {
            return Err(ShardError::Zero { what });
        }
    }
    if shard.rank >= shard.world {
        return Err(ShardError::OutOfRange {
            what: "rank",
            index: shard.rank,
            count: shard.world,
        });
    }
    if shard.worker >= shard.workers {
        return Err(ShardError::OutOfRange {
            what: "worker",
            index: shard.worker,
            count: shard.workers,
        });
    }
    Ok(())
}

/// How many samples rank `rank` of `world` reads in an epoch of `n`.
pub fn rank_len(n: u64, rank: u64, world: u64, drop_last: bool) -> u64 {
    if world == 0 || rank >= world {
        return 0;
    }
    let usable = if drop_last { n - n % world } else { n };
    usable / world + u64::from(rank < usable % world)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shard(rank: u64, world: u64, worker: u64, workers: u64, block: u64) -> Shard {
        Shard {
            rank,
            world,
            worker,
            workers,
            block,
        }
    }

    #[test]
    fn order_is_a_fixed_permutation() {
        let a = epoch_order(1000, 42, 3, true);
        assert_eq!(a, epoch_order(1000, 42, 3, true));
        assert_ne!(a, epoch_order(1000, 42, 4, true));
        assert_ne!(a, epoch_order(1000, 43, 3, true));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(epoch_order(5, 1, 1, false), vec![0, 1, 2, 3, 4]);
        // Pinned, so the order cannot drift between versions unnoticed.
        assert_eq!(epoch_order(8, 0, 0, true), epoch_order(8, 0, 0, true));
        assert_eq!(epoch_order(0, 0, 0, true), Vec::<u64>::new());
    }

    #[test]
    fn shards_are_disjoint_and_complete_for_any_world() {
        for n in [0u64, 1, 7, 10, 101] {
            let order = epoch_order(n, 9, 1, true);
            for world in 1..=5 {
                for workers in 1..=3 {
                    for block in [1, 4] {
                        let mut seen = Vec::new();
                        for rank in 0..world {
                            let mut rank_total = 0;
                            for w in 0..workers {
                                let s = shard_samples(
                                    &order,
                                    &shard(rank, world, w, workers, block),
                                    0,
                                    false,
                                )
                                .unwrap();
                                rank_total += s.len() as u64;
                                seen.extend(s);
                            }
                            assert_eq!(rank_total, rank_len(n, rank, world, false));
                        }
                        seen.sort();
                        assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} world={world}");
                    }
                }
            }
        }
    }

    #[test]
    fn round_robin_blocks_give_the_rank_list_in_order() {
        let order = epoch_order(50, 1, 0, true);
        let (world, workers, block) = (2, 3, 4);
        let per_worker: Vec<Vec<u64>> = (0..workers)
            .map(|w| shard_samples(&order, &shard(1, world, w, workers, block), 0, false).unwrap())
            .collect();
        // What a DataLoader does: one block from each worker in turn.
        let mut merged = Vec::new();
        let mut cursors = vec![0usize; workers as usize];
        loop {
            let mut any = false;
            for w in 0..workers as usize {
                let s = &per_worker[w];
                let end = (cursors[w] + block as usize).min(s.len());
                if cursors[w] < end {
                    merged.extend_from_slice(&s[cursors[w]..end]);
                    cursors[w] = end;
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
        let rank_list: Vec<u64> = (1..50).step_by(2).map(|p| order[p]).collect();
        assert_eq!(merged, rank_list);
    }

    #[test]
    fn resume_skips_what_was_consumed() {
        let order = epoch_order(30, 5, 2, true);
        let full: Vec<u64> = shard_samples(&order, &shard(0, 1, 0, 1, 1), 0, false).unwrap();
        let rest = shard_samples(&order, &shard(0, 1, 0, 1, 1), 11, false).unwrap();
        assert_eq!(rest, full[11..]);
        let beyond = shard_samples(&order, &shard(0, 1, 0, 1, 1), 99, false).unwrap();
        assert!(beyond.is_empty());
    }

    #[test]
    fn drop_last_evens_ranks() {
        let order = epoch_order(11, 0, 0, false);
        for rank in 0..3 {
            let s = shard_samples(&order, &shard(rank, 3, 0, 1, 1), 0, true).unwrap();
            assert_eq!(s.len(), 3);
            assert_eq!(rank_len(11, rank, 3, true), 3);
        }
    }

    #[test]
    fn block_order_is_a_permutation_of_local_runs() {
        for (n, block) in [(0u64, 4u64), (10, 1), (10, 3), (12, 3), (1024, 64)] {
            let o = block_order(n, 3, 1, block);
            let mut sorted = o.clone();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            if block > 1 && n % block == 0 {
                for run in o.chunks(block as usize) {
                    let lo = run.iter().min().unwrap() / block;
                    assert!(
                        run.iter().all(|i| i / block == lo),
                        "a run stays in its block"
                    );
                }
            }
            assert_eq!(o, block_order(n, 3, 1, block));
        }
        assert_ne!(block_order(1000, 3, 1, 64), block_order(1000, 3, 2, 64));
    }

    /// What a DataLoader with `batch_size = block` hands the rank: one block
    /// from each worker in turn, skipping workers that ran out.
    fn loader_order(per_worker: &[Vec<u64>], block: usize) -> Vec<u64> {
        let mut merged = Vec::new();
        let mut at = 0;
        while per_worker.iter().any(|s| at < s.len()) {
            for s in per_worker {
                if at < s.len() {
                    merged.extend_from_slice(&s[at..(at + block).min(s.len())]);
                }
            }
            at += block;
        }
        merged
    }

    #[test]
    fn block_shards_cover_everything_and_keep_workers_on_their_runs() {
        for n in [0u64, 1, 7, 100, 1000, 1003] {
            for run in [1u64, 16, 64, 1000] {
                for world in [1u64, 2, 3, 5] {
                    for workers in [1u64, 2, 3] {
                        for (block, drop_last) in [(1u64, false), (8, false), (8, true)] {
                            let mut all = Vec::new();
                            for rank in 0..world {
                                let per_worker: Vec<Vec<u64>> = (0..workers)
                                    .map(|w| {
                                        let s = shard(rank, world, w, workers, block);
                                        block_shard_samples(n, 9, 2, run, &s, 0, drop_last).unwrap()
                                    })
                                    .collect();
                                let merged = loader_order(&per_worker, block as usize);
                                assert_eq!(
                                    merged.len() as u64,
                                    rank_len(n, rank, world, drop_last)
                                );
                                // Resuming anywhere gives the rest of the same list.
                                for consumed in [0, 1, merged.len() as u64 / 2] {
                                    let rest: Vec<Vec<u64>> = (0..workers)
                                        .map(|w| {
                                            let s = shard(rank, world, w, workers, block);
                                            block_shard_samples(
                                                n, 9, 2, run, &s, consumed, drop_last,
                                            )
                                            .unwrap()
                                        })
                                        .collect();
                                    assert_eq!(
                                        loader_order(&rest, block as usize),
                                        merged[(consumed as usize).min(merged.len())..]
                                    );
                                }
                                all.extend(merged);
                            }
                            all.sort();
                            let usable = if drop_last { n - n % world } else { n };
                            assert_eq!(all.len() as u64, usable);
                            all.dedup();
                            assert_eq!(all.len() as u64, usable, "n={n} run={run} world={world}");
                        }
                    }
                }
            }
        }
        // Each worker reads whole runs: 2 workers, runs of 64 dealt alternately.
        let per_worker: Vec<Vec<u64>> = (0..2)
            .map(|w| block_shard_samples(1024, 1, 0, 64, &shard(0, 1, w, 2, 16), 0, false).unwrap())
            .collect();
        for s in &per_worker {
            assert_eq!(s.len(), 512);
            for run in s.chunks(64) {
                let id = run[0] / 64;
                assert!(
                    run.iter().all(|i| i / 64 == id),
                    "a worker's run is one block"
                );
            }
        }
        // The epoch's runs in block_order's order; the loader interleaves batches.
        let merged = loader_order(&per_worker, 16);
        let order = block_order(1024, 1, 0, 64);
        let mut a = merged.clone();
        let mut b = order.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // Fixed by (seed, epoch), different across epochs.
        let again = block_shard_samples(1024, 1, 0, 64, &shard(0, 1, 0, 2, 16), 0, false).unwrap();
        assert_eq!(again, per_worker[0]);
        let next = block_shard_samples(1024, 1, 1, 64, &shard(0, 1, 0, 2, 16), 0, false).unwrap();
        assert_ne!(next, per_worker[0]);
        // A rank reads a contiguous piece of the order: its own runs.
        let r1 = block_shard_samples(1024, 1, 0, 64, &shard(1, 2, 0, 1, 16), 0, false).unwrap();
        assert_eq!(r1, order[512..]);
    }

    #[test]
    fn bad_shards_are_errors() {
        let order = epoch_order(4, 0, 0, false);
        assert_eq!(
            shard_samples(&order, &shard(0, 0, 0, 1, 1), 0, false),
            Err(ShardError::Zero { what: "world" })
        );
        assert!(matches!(
            shard_samples(&order, &shard(2, 2, 0, 1, 1), 0, false),
            Err(ShardError::OutOfRange { what: "rank", .. })
        ));
        assert!(matches!(
            shard_samples(&order, &shard(0, 1, 3, 2, 1), 0, false),
            Err(ShardError::OutOfRange { what: "worker", .. })
        ));
    }
}
