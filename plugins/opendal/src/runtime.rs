//! The one tokio runtime OpenDAL's blocking API runs on, and the process-wide TLS and
//! HTTP-transport set-up, done once on first use.
//!
//! The runtime belongs to the process that started it: after `fork` (Python's
//! multiprocessing, PyTorch `DataLoader` workers) the child has none of its
//! threads, so a child asking for the runtime gets a new one. The parent's is left
//! alone (dropping it would wait for threads that do not exist in the child).
//!
//! So does the HTTP client: its pooled keep-alive connections were driven by the
//! parent's runtime, and a forked child that sent a request on one stalled
//! waiting for a reply (20 s for a test loader through a keep-alive proxy, 61 s
//! to the first sample against s3s-fs; AWS keeps connections open too). The
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
    per_process(&RUNTIME, || {
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
        Ok(&*Box::leak(Box::new(rt)))
    })
}

/// The value in `slot` made by this process, or a new one from `make`. A value
/// inherited through fork is forgotten, never dropped: it belongs to threads
/// (a runtime, its connections) that do not exist in the child.
fn per_process<T: Clone, E>(
    slot: &Mutex<Option<(u32, T)>>,
    make: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let pid = std::process::id();
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, value)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(value.clone());
    }
    let value = make()?;
    if let Some(inherited) = slot.replace((pid, value.clone())) {
        std::mem::forget(inherited);
    }
    Ok(value)
}

/// Start the runtime (and the transport) without using it.
pub(crate) fn init() -> Result<(), OpendalError> {
    get().map(|_| ())
}

/// The HTTP client and the id of the process that made it.
static CLIENT: Mutex<Option<(u32, ReqwestTransport)>> = Mutex::new(None);

/// OpenDAL's process-wide HTTP transport: a reqwest client per process.
struct PerProcessTransport;

impl HttpTransport for PerProcessTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        // `Client::new` would panic where TLS cannot be set up; `build` says so.
        let client = per_process(&CLIENT, || {
            reqwest::Client::builder()
                .build()
                .map(ReqwestTransport::new)
        })
        .map_err(|e| {
            opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                "cannot make the HTTP client",
            )
            .set_source(e)
        })?;
        client.fetch(req).await
    }
}
