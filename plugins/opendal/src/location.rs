//! Locations (local paths and URLs) → an OpenDAL operator and the object path in it.

use std::sync::OnceLock;
use std::time::Duration;

use opendal::{Operator, services};

use crate::error::OpendalError;
use crate::runtime;

/// How many times a temporary failure (5xx, timeout, connection reset) is retried.
pub const RETRY_TIMES: usize = 4;
/// Per-request timeout for a whole non-I/O operation (stat, ...).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Per-I/O-step timeout (one read or write of a body chunk).
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// S3 settings. [`S3Options::from_env`] reads the usual AWS variables.
///
/// When both keys are set (explicitly or through `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`), they are used as they are and OpenDAL's own
/// configuration loading (profiles in `~/.aws`, web identity, EC2 metadata) is
/// turned off. Without keys it stays on, so profiles and instance roles work.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// `AWS_REGION` or `AWS_DEFAULT_REGION`; `us-east-1` when unset.
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// Virtual-host-style addressing (`bucket.endpoint`); path style otherwise.
    /// `HEXZ_S3_VIRTUAL_HOST=1`.
    pub virtual_host_style: bool,
    /// For every service (not only S3): the per-request timeout (a stalled
    /// request fails after it, then is retried). `HEXZ_TIMEOUT` in seconds;
    /// default [`IO_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// For every service: how many times a temporary failure is retried.
    /// `HEXZ_RETRIES`; default [`RETRY_TIMES`].
    pub retries: Option<usize>,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("virtual_host_style", &self.virtual_host_style)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl S3Options {
    /// Settings from the environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        S3Options {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            virtual_host_style: var("HEXZ_S3_VIRTUAL_HOST").is_some_and(|v| v != "0"),
            timeout: var("HEXZ_TIMEOUT")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t > 0.0)
                .map(Duration::from_secs_f64),
            retries: var("HEXZ_RETRIES").and_then(|v| v.parse().ok()),
        }
    }
}

/// A parsed location: which service, and the object's path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file (a plain path or `file:///abs/path`).
    Fs {
        /// Absolute or relative path.
        path: String,
    },
    /// `s3://bucket/key`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// `http://host[:port]/path` or `https://...`.
    Http {
        /// `scheme://host[:port]`.
        endpoint: String,
        /// The path, starting with `/`.
        path: String,
    },
    /// `gs://bucket/key` (or `gcs://`): Google Cloud Storage, with feature `gcs`.
    /// Credentials: `GOOGLE_APPLICATION_CREDENTIALS` or the VM's metadata server.
    Gcs {
        /// The bucket.
        bucket: String,
        /// The object name.
        key: String,
    },
    /// `azblob://container/path`: Azure Blob Storage, with feature `azblob`.
    /// Settings: `AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT`
    /// + `AZURE_STORAGE_KEY` (and `AZURE_STORAGE_ENDPOINT` for non-Azure hosts).
    Azblob {
        /// The container.
        container: String,
        /// The blob path.
        path: String,
    },
    /// `memory://name`: the process-wide in-memory store (tests, examples).
    Memory {
        /// The object name.
        key: String,
    },
}

impl Location {
    /// Parse `url` (a local path, `file://`, `s3://`, `http(s)://`, `memory://`).
    pub fn parse(url: &str) -> Result<Self, OpendalError> {
        let bad = |reason: &str| OpendalError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            if url.is_empty() {
                return Err(bad("empty location"));
            }
            return Ok(Location::Fs {
                path: url.to_string(),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:///abs/path (empty host) or file://localhost/abs/path.
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(bad("a file URL needs an absolute path: file:///abs/path"));
                }
                Ok(Location::Fs {
                    path: path.to_string(),
                })
            }
            "s3" => {
                let (bucket, key) = rest
                    .split_once('/')
                    .ok_or_else(|| bad("an S3 URL is s3://bucket/key"))?;
                if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
                    return Err(bad(
                        "an S3 URL is s3://bucket/key (bucket and key required)",
                    ));
                }
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            s @ ("http" | "https") => {
                let (host, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, ""),
                };
                if host.is_empty() || path.len() < 2 || path.ends_with('/') {
                    return Err(bad(
                        "an HTTP URL names a file: http://host/path/archive.hxz",
                    ));
                }
                if path.contains(['?', '#']) {
                    return Err(bad("query strings and fragments are not supported"));
                }
                Ok(Location::Http {
                    endpoint: format!("{s}://{host}"),
                    path: path.to_string(),
                })
            }
            s @ ("gs" | "gcs" | "azblob") => {
                let (bucket, key) = rest
                    .split_once('/')
                    .filter(|(b, k)| !b.is_empty() && !k.is_empty() && !k.ends_with('/'))
                    .ok_or_else(|| bad(&format!("a {s} URL is {s}://bucket/key")))?;
                let (bucket, key) = (bucket.to_string(), key.to_string());
                Ok(if s == "azblob" {
                    Location::Azblob {
                        container: bucket,
                        path: key,
                    }
                } else {
                    Location::Gcs { bucket, key }
                })
            }
            "memory" => {
                if rest.is_empty() {
                    return Err(bad("a memory URL names an object: memory://name"));
                }
                Ok(Location::Memory {
                    key: rest.to_string(),
                })
            }
            other => Err(bad(&format!(
                "unsupported scheme `{other}`; supported: file, s3, http, https, memory, \
                 gs, azblob"
            ))),
        }
    }
}

/// The async operator for `location` (retry and timeout layers applied), and the
/// object path to use with it. (Local files are read with `pread` and written
/// through `hexz_format::PendingFile`; this serves them only where a caller
/// forces the `fs` service.)
pub(crate) fn operator(
    url: &str,
    location: &Location,
    s3: &S3Options,
) -> Result<(Operator, String), OpendalError> {
    let configure = |e| OpendalError::backend(url, "configure", e);
    let (op, path) = match location {
        Location::Fs { path } => {
            let abs = std::path::absolute(path).map_err(|e| OpendalError::BadUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            let dir = abs.parent().map(|p| p.to_string_lossy().into_owned());
            let name = abs.file_name().map(|n| n.to_string_lossy().into_owned());
            let (Some(dir), Some(name)) = (dir, name) else {
                return Err(OpendalError::BadUrl {
                    url: url.to_string(),
                    reason: "not a file path".into(),
                });
            };
            let op = Operator::new(services::Fs::default().root(&dir)).map_err(configure)?;
            (op, name)
        }
        Location::S3 { bucket, key } => {
            let mut b = services::S3::default()
                .bucket(bucket)
                .region(s3.region.as_deref().unwrap_or("us-east-1"));
            if let Some(endpoint) = &s3.endpoint {
                b = b.endpoint(endpoint);
            }
            if s3.virtual_host_style {
                b = b.enable_virtual_host_style();
            }
            if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
                b = b
                    .access_key_id(id)
                    .secret_access_key(secret)
                    .disable_config_load()
                    .disable_ec2_metadata();
                if let Some(token) = &s3.session_token {
                    b = b.session_token(token);
                }
            }
            (Operator::new(b).map_err(configure)?, key.clone())
        }
        Location::Http { endpoint, path } => {
            let op =
                Operator::new(services::Http::default().endpoint(endpoint)).map_err(configure)?;
            (op, path.clone())
        }
        Location::Memory { key } => (shared_memory(url)?, key.clone()),
        Location::Gcs { bucket, key } => (gcs(url, bucket)?, key.clone()),
        Location::Azblob { container, path } => (azblob(url, container)?, path.clone()),
    };
    Ok((with_layers(op, s3), path))
}

fn with_layers(op: Operator, settings: &S3Options) -> Operator {
    let io_timeout = settings.timeout.unwrap_or(IO_TIMEOUT);
    let timeout = settings
        .timeout
        .map_or(REQUEST_TIMEOUT, |t| t.max(Duration::from_millis(1)) * 3 / 2);
    op.layer(
        opendal::layers::TimeoutLayer::new()
            .with_timeout(timeout)
            .with_io_timeout(io_timeout),
    )
    .layer(
        opendal::layers::RetryLayer::new()
            .with_max_times(settings.retries.unwrap_or(RETRY_TIMES))
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_factor(2.0)
            .with_jitter(),
    )
}

/// One in-memory store for the whole process, so `memory://a` written by one
/// operator is readable by the next.
fn shared_memory(url: &str) -> Result<Operator, OpendalError> {
    static MEMORY: OnceLock<Operator> = OnceLock::new();
    if let Some(op) = MEMORY.get() {
        return Ok(op.clone());
    }
    runtime::init()?;
    let op = Operator::new(services::Memory::default())
        .map_err(|e| OpendalError::backend(url, "configure", e))?;
    Ok(MEMORY.get_or_init(|| op).clone())
}

#[cfg(feature = "gcs")]
fn gcs(url: &str, bucket: &str) -> Result<Operator, OpendalError> {
    Operator::new(services::Gcs::default().bucket(bucket))
        .map_err(|e| OpendalError::backend(url, "configure", e))
}

#[cfg(not(feature = "gcs"))]
fn gcs(url: &str, _bucket: &str) -> Result<Operator, OpendalError> {
    Err(OpendalError::BadUrl {
        url: url.to_string(),
        reason: "Google Cloud Storage needs hexz built with the `gcs` feature of hexz-opendal"
            .into(),
    })
}

#[cfg(feature = "azblob")]
fn azblob(url: &str, container: &str) -> Result<Operator, OpendalError> {
    let configure = |e| OpendalError::backend(url, "configure", e);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let builder = match var("AZURE_STORAGE_CONNECTION_STRING") {
        Some(conn) => services::Azblob::from_connection_string(&conn).map_err(configure)?,
        None => {
            let mut b = services::Azblob::default();
            if let Some(account) = var("AZURE_STORAGE_ACCOUNT") {
                let endpoint = var("AZURE_STORAGE_ENDPOINT")
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                b = b.account_name(&account).endpoint(&endpoint);
            }
            if let Some(key) = var("AZURE_STORAGE_KEY") {
                b = b.account_key(&key);
            }
            b
        }
    };
    Operator::new(builder.container(container)).map_err(configure)
}

#[cfg(not(feature = "azblob"))]
fn azblob(url: &str, _container: &str) -> Result<Operator, OpendalError> {
    Err(OpendalError::BadUrl {
        url: url.to_string(),
        reason: "Azure Blob Storage needs hexz built with the `azblob` feature of hexz-opendal"
            .into(),
    })
}
