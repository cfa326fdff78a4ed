//! The worker threads reads run on.
//!
//! The reader decompresses and reads ahead on rayon. Rayon's global pool does not
//! survive `fork` (the child inherits a pool whose threads do not exist, and any
//! parallel read would wait forever), and PyTorch's `DataLoader` forks its
//! workers. So the bindings run every archive call inside a pool of their own,
//! owned by the process that created it: a forked child gets a fresh one.

use std::sync::{Arc, Mutex};

use pyo3::Python;
use rayon::{ThreadPool, ThreadPoolBuilder};

type Slot = Mutex<Option<(u32, Arc<ThreadPool>)>>;

static POOL: Slot = Mutex::new(None);
static FETCH_POOL: Slot = Mutex::new(None);

/// Threads of the fetch pool: loader prefetch keeps this many reads in flight,
/// which hides remote latency (each read may wait on one ranged GET).
pub const FETCH_THREADS: usize = 16;

/// This process's pool for calls made from Python, one thread per core (`None`
/// only if no thread could be started).
pub fn pool() -> Option<Arc<ThreadPool>> {
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get().clamp(2, 16));
    pool_in(&POOL, threads, "hexz-read")
}

/// This process's pool for background prefetch ([`FETCH_THREADS`] threads, mostly
/// waiting on storage).
pub fn fetch_pool() -> Option<Arc<ThreadPool>> {
    pool_in(&FETCH_POOL, FETCH_THREADS, "hexz-fetch")
}

fn pool_in(slot: &Slot, threads: usize, name: &'static str) -> Option<Arc<ThreadPool>> {
    let pid = std::process::id();
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, pool)) = &*slot
        && *owner == pid
    {
        return Some(Arc::clone(pool));
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("{name}-{i}"))
            .build()
            .ok()?,
    );
    if let Some((_, parent)) = slot.take() {
        // A pool inherited through fork has no threads to stop: never drop it.
        std::mem::forget(parent);
    }
    *slot = Some((pid, Arc::clone(&pool)));
    Some(pool)
}

/// Run `f` on this process's pool with the GIL released.
pub fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(|| in_pool(f))
}

/// Run `f` on this process's pool (the caller has no GIL).
pub fn in_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}
