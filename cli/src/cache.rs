//! The on-disk cache for remote archives: `--cache-dir` / `HEXZ_CACHE_DIR` and
//! `--cache-size` / `HEXZ_CACHE_SIZE` (default 10 GiB).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use hexz_pipeline::chunk_cache::DiskCache;

/// Default size limit.
pub const DEFAULT_SIZE: u64 = 10 << 30;

static CACHE: OnceLock<Option<Arc<DiskCache>>> = OnceLock::new();

/// Set up the cache from the flags, falling back to the environment.
pub fn configure(dir: Option<PathBuf>, size: Option<u64>) -> Result<()> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dir = dir.or_else(|| var("HEXZ_CACHE_DIR").map(PathBuf::from));
    let size = match size {
        Some(s) => s,
        None => match var("HEXZ_CACHE_SIZE") {
            Some(text) => parse_size::parse_size(&text)
                .with_context(|| format!("HEXZ_CACHE_SIZE={text} is not a size"))?,
            None => DEFAULT_SIZE,
        },
    };
    let cache = match dir {
        Some(dir) => Some(DiskCache::open(&dir, size)?),
        None => None,
    };
    let _ = CACHE.set(cache);
    Ok(())
}

/// The configured cache, if any.
pub fn get() -> Option<&'static Arc<DiskCache>> {
    CACHE.get().and_then(Option::as_ref)
}
