//! The one tokio runtime OpenDAL's blocking API runs on, and the process-wide TLS and
//! HTTP-transport set-up, done once on first use.
//!
//! The runtime belongs to the process that started it: after `fork` (Python's
//! multiprocessing, PyTorch `DataLoader` workers) the child has none of its
//! threads, so a child asking for the runtime gets a new one. The parent's is left
//! alone (dropping it would wait for threads that do not exist in the child).

use std::sync::{Mutex, Once};

use crate::error::OpendalError;

/// The runtime and the id of the process that started it.
static RUNTIME: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);
static TRANSPORT: Once = Once::new();

/// The shared multi-thread runtime of this process, started on first call. Also
/// installs the rustls `ring` provider and OpenDAL's reqwest transport (built
/// without the aws-lc provider, so neither is installed by default).
pub(crate) fn get() -> Result<&'static tokio::runtime::Runtime, OpendalError> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = *slot
        && owner == pid
    {
        return Ok(rt);
    }
    TRANSPORT.call_once(|| {
        // Another crate may have installed a provider first; that one is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hexz-io")
        .build()
        .map_err(|e| OpendalError::Runtime {
            detail: e.to_string(),
        })?;
    // Lives as long as the process, like a static.
    let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
    *slot = Some((pid, rt));
    Ok(rt)
}

/// Start the runtime (and the transport) without using it.
pub(crate) fn init() -> Result<(), OpendalError> {
    get().map(|_| ())
}
