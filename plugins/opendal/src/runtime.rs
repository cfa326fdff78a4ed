//! The one tokio runtime OpenDAL's blocking API runs on, and the process-wide TLS and
//! HTTP-transport set-up, done once on first use.

use std::sync::OnceLock;

use crate::error::OpendalError;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The shared multi-thread runtime, started on first call. Also installs the rustls
/// `ring` provider and OpenDAL's reqwest transport (built without the aws-lc
/// provider, so neither is installed by default).
pub(crate) fn get() -> Result<&'static tokio::runtime::Runtime, OpendalError> {
    let rt = RUNTIME.get_or_init(|| {
        // Another crate may have installed a provider first; that one is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("hexz-io")
            .build()
            .map_err(|e| e.to_string())
    });
    rt.as_ref().map_err(|detail| OpendalError::Runtime {
        detail: detail.clone(),
    })
}

/// Start the runtime (and the transport) without using it.
pub(crate) fn init() -> Result<(), OpendalError> {
    get().map(|_| ())
}
