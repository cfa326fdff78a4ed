//! The one tokio runtime OpenDAL's blocking API runs on, and the process-wide TLS and
//! HTTP-transport set-up, done once on first use.
//!
//! The runtime belongs to the process that started it: after `fork` (Python's
//! multiprocessing, PyTorch `DataLoader` workers) the child has none of its
//! threads, so a child asking for the runtime gets a new one. The parent's is left
//! alone (dropping it would wait for threads that do not exist in the child).
//!
//! So does the HTTP client: its pooled keep-alive connections were driven by the
//! parent's runtime, and a forked child that sent a request on one waited for a
//! reply nothing would ever deliver, until the request timed out (60 s per
//! worker against an S3 server that keeps connections open, as AWS does). The
//! process-wide transport hands each process a client of its own.

use std::sync::{Mutex, Once};

use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter};
use opendal_http_transport_reqwest::ReqwestTransport;

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
        HttpTransporter::install_default(PerProcessTransport);
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

/// The HTTP client and the id of the process that made it.
static CLIENT: Mutex<Option<(u32, ReqwestTransport)>> = Mutex::new(None);

/// OpenDAL's process-wide HTTP transport: a reqwest client per process.
struct PerProcessTransport;

impl PerProcessTransport {
    /// This process's client, made on its first request.
    fn client() -> ReqwestTransport {
        let pid = std::process::id();
        let mut slot = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, client)) = slot.as_ref()
            && *owner == pid
        {
            return client.clone();
        }
        // A client inherited through fork is forgotten, not dropped: its
        // connections belong to the parent's runtime.
        if let Some(inherited) = slot.take() {
            std::mem::forget(inherited);
        }
        let client = ReqwestTransport::new(reqwest::Client::new());
        *slot = Some((pid, client.clone()));
        client
    }
}

impl HttpTransport for PerProcessTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        Self::client().fetch(req).await
    }
}
