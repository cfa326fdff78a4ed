//! The recipe's `publish:` stage: where to upload the built archive.
//!
//! ```yaml
//! publish:
//!   url: s3://${BUCKET}/datasets/sample.hxz   # required; ${VAR} interpolated
//!   part_size: 8MiB                           # optional, 5 MiB – 4 GiB, default 8 MiB
//!   concurrency: 4                            # optional, 1 – 64, default 4
//! ```

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{RecipeError, SourceLocation};
use super::raw::RawSize;
use super::validate::Context;

/// The `publish` mapping as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublish {
    pub(crate) url: Spanned<String>,
    #[serde(default)]
    pub(crate) part_size: Option<Spanned<RawSize>>,
    #[serde(default)]
    pub(crate) concurrency: Option<Spanned<u64>>,
}

/// Where and how to publish the built archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishPlan {
    /// The destination URL, after `${VAR}` interpolation (it has a scheme).
    pub url: String,
    /// Where the recipe wrote `url` (for errors found when the transport is
    /// resolved).
    pub url_at: SourceLocation,
    /// Upload part size in bytes.
    pub part_size: usize,
    /// Parts in flight.
    pub concurrency: usize,
}

impl PublishPlan {
    /// Default part size: 8 MiB.
    pub const DEFAULT_PART_SIZE: usize = 8 << 20;
    /// Accepted part sizes: 5 MiB (S3's minimum) to 4 GiB.
    pub const PART_SIZE_RANGE: std::ops::RangeInclusive<u64> = (5 << 20)..=(4 << 30);
    /// Default parts in flight.
    pub const DEFAULT_CONCURRENCY: usize = 4;
    /// Accepted parts in flight.
    pub const CONCURRENCY_RANGE: std::ops::RangeInclusive<u64> = 1..=64;
}

pub(crate) fn publish_plan(raw: &RawPublish, cx: &Context<'_>) -> Result<PublishPlan, RecipeError> {
    let url = cx.interpolated("publish.url", &raw.url)?;
    let url_at = cx.at(&raw.url.referenced);
    if crate::registry::url_scheme(&url).is_none() {
        return Err(RecipeError::NotAUrl {
            at: url_at,
            field: "publish.url",
            written: url,
        });
    }
    let part_size = match &raw.part_size {
        None => PublishPlan::DEFAULT_PART_SIZE,
        Some(size) => {
            let at = cx.at(&size.referenced);
            let bytes = match &size.value {
                RawSize::Bytes(b) => *b,
                RawSize::Text(text) => {
                    parse_size::parse_size(text).map_err(|_| RecipeError::InvalidSize {
                        at: at.clone(),
                        field: "publish.part_size",
                        written: text.clone(),
                    })?
                }
            };
            let range = PublishPlan::PART_SIZE_RANGE;
            if !range.contains(&bytes) {
                return Err(RecipeError::SizeOutOfRange {
                    at,
                    field: "publish.part_size",
                    value: bytes,
                    min: *range.start(),
                    max: *range.end(),
                });
            }
            bytes as usize
        }
    };
    let concurrency = match &raw.concurrency {
        None => PublishPlan::DEFAULT_CONCURRENCY,
        Some(n) => {
            let range = PublishPlan::CONCURRENCY_RANGE;
            if !range.contains(&n.value) {
                return Err(RecipeError::OutOfRange {
                    at: cx.at(&n.referenced),
                    field: "publish.concurrency",
                    value: n.value,
                    min: *range.start(),
                    max: *range.end(),
                });
            }
            n.value as usize
        }
    };
    Ok(PublishPlan {
        url,
        url_at,
        part_size,
        concurrency,
    })
}
