//! Loading a whole index tree with a few requests: each level's uncached pages
//! with one [`ReadAt::read_ranges`](crate::ReadAt::read_ranges) call (a remote
//! source merges neighbouring pages into one ranged GET), instead of one GET per
//! page as a walk would. Used before listing every entry (the catalog) and before
//! a loader reads samples all over the archive (the chunk index). Trees whose
//! pages would take more than a quarter of the page cache are left to the walk.

use std::sync::Arc;

use super::{Archive, Inner, Result, check_first_key};
use crate::crypto::seal::BlobRole;
use crate::error::Error;
use crate::layout::{PageRef, TreeRoot};
use crate::page::{Key, Page, TreeKind, decode_page};

impl Archive {
    /// Load the catalog's pages (entry names, sizes, offsets) in a few batched
    /// requests, if they fit in a quarter of the page cache. Errors are those
    /// of the page reads (a failed preload leaves the pages to later reads).
    pub fn preload_catalog(&self) -> Result<()> {
        let tree = self.inner.directory.catalog_tree;
        let budget = self.inner.options.page_cache_bytes / 4;
        self.inner
            .preload_tree(&tree, TreeKind::Catalog, budget, None)
    }

    /// Load the chunk index's pages in a few batched requests, if they fit in a
    /// quarter of the page cache.
    pub fn preload_chunk_index(&self) -> Result<()> {
        let tree = self.inner.directory.chunk_tree;
        let budget = self.inner.options.page_cache_bytes / 4;
        self.inner
            .preload_tree(&tree, TreeKind::Chunks, budget, None)
    }
}

impl Inner {
    /// Load `tree` level by level, each level's pages with one batched read,
    /// while the pages loaded so far fit in `budget` bytes (decoded size; with
    /// `keep`, stored size). Each page is checked and decoded as a walk would,
    /// and cached. With `keep`, every page of the loaded levels is fetched, even
    /// a cached one, and its stored bytes are pushed there as `(offset, bytes)`.
    pub(super) fn preload_tree(
        &self,
        tree: &TreeRoot,
        kind: TreeKind,
        budget: u64,
        mut keep: Option<&mut Vec<(u64, Vec<u8>)>>,
    ) -> Result<()> {
        if tree.depth == 0 {
            return Ok(());
        }
        let mut level = tree.depth - 1;
        let mut refs: Vec<(PageRef, Option<Key>)> = vec![(tree.root, None)];
        let mut total = 0u64;
        loop {
            // Both sizes count: the stored bytes of a level are held at once
            // (fetched in one batch), and a ref's raw length says nothing of
            // its stored length until the page is checked.
            total += refs
                .iter()
                .map(|(r, _)| {
                    if keep.is_some() {
                        u64::from(r.stored_len)
                    } else {
                        u64::from(r.raw_len.max(r.stored_len))
                    }
                })
                .sum::<u64>();
            if total > budget {
                return Ok(());
            }
            let missing: Vec<&(PageRef, Option<Key>)> = refs
                .iter()
                .filter(|(r, _)| keep.is_some() || !self.pages.contains_key(&r.offset))
                .collect();
            if !missing.is_empty() {
                let ranges: Vec<(u64, usize)> = missing
                    .iter()
                    .map(|(r, _)| (r.offset, r.stored_len as usize))
                    .collect();
                let stored =
                    self.source
                        .read_ranges(&ranges)
                        .map_err(|error| Error::SourceRead {
                            source_name: self.source.name(),
                            offset: ranges[0].0,
                            len: ranges.iter().map(|r| r.1 as u64).sum(),
                            error,
                        })?;
                for ((r, key), bytes) in missing.into_iter().zip(stored) {
                    let kept = keep.as_ref().map(|_| bytes.clone());
                    let raw = self.blob_from_stored(r, bytes, kind.what(), BlobRole::Page)?;
                    let first = match key {
                        Some(Key::Catalog { id, .. }) => Some(*id),
                        _ => None,
                    };
                    let page = decode_page(&raw, r.offset, kind, level, first)?;
                    if let Some(key) = key {
                        check_first_key(&page, key).map_err(|d| self.corrupt(kind.what(), d))?;
                    }
                    self.pages.insert(r.offset, Arc::new(page));
                    if let (Some(keep), Some(bytes)) = (keep.as_deref_mut(), kept) {
                        keep.push((r.offset, bytes));
                    }
                }
            }
            if level == 0 {
                return Ok(());
            }
            let mut next = Vec::new();
            for (r, key) in &refs {
                let first = match key {
                    Some(Key::Catalog { id, .. }) => Some(*id),
                    _ => None,
                };
                let page = self.page(r, kind, level, first)?;
                let Page::Internal(children) = &*page else {
                    return Err(self.corrupt(kind.what(), "internal page expected"));
                };
                next.extend(children.iter().map(|(k, c)| (*c, Some(k.clone()))));
            }
            refs = next;
            level -= 1;
        }
    }
}
