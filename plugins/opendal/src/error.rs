//! The error type of the OpenDAL transport.

use hexz_format::error::Excerpt;

/// Everything opening or reading a location through OpenDAL can fail with. Every
/// variant names the location; backend errors carry the HTTP status when the
/// service answered with one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpendalError {
    /// The location is not a path or a URL this transport understands.
    #[error("{url_q}: {reason_q}", url_q = Excerpt(url), reason_q = Excerpt(reason))]
    BadUrl {
        /// The location as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokio runtime OpenDAL's blocking API runs on could not be started.
    #[error("cannot start the I/O runtime: {detail}")]
    Runtime {
        /// Why.
        detail: String,
    },
    /// The backend failed (after retries, for temporary errors).
    #[error("{url_q}: {op} failed{}: {error}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), url_q = Excerpt(url))]
    Backend {
        /// The location.
        url: String,
        /// `"stat"`, `"read"`, `"write"`, `"delete"` or `"configure"`.
        op: &'static str,
        /// The HTTP status, when the service answered with an error status.
        status: Option<u16>,
        /// OpenDAL's error (its message holds the request context).
        #[source]
        error: Box<opendal::Error>,
    },
    /// A local file (the data being uploaded, or a `file://` object) failed.
    #[error("{url_q}: {error}", url_q = Excerpt(url))]
    LocalIo {
        /// The path or URL.
        url: String,
        /// The error.
        #[source]
        error: std::io::Error,
    },
    /// An option is out of range.
    #[error("{setting}: {detail}")]
    BadSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The object ended before a requested range did.
    #[error("{url_q}: short read at {offset}: wanted {wanted} bytes, got {got}", url_q = Excerpt(url))]
    ShortRead {
        /// The location.
        url: String,
        /// Where the read started.
        offset: u64,
        /// Bytes asked for.
        wanted: u64,
        /// Bytes received.
        got: u64,
    },
}

impl OpendalError {
    pub(crate) fn backend(url: &str, op: &'static str, error: opendal::Error) -> Self {
        OpendalError::Backend {
            url: url.to_string(),
            op,
            status: http_status(&error),
            error: Box::new(error),
        }
    }

    /// The closest `std::io::ErrorKind`, for the [`hexz_format::ReadAt`] interface.
    pub fn io_kind(&self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            OpendalError::BadUrl { .. } => K::InvalidInput,
            OpendalError::Runtime { .. } => K::Other,
            OpendalError::LocalIo { error, .. } => error.kind(),
            OpendalError::BadSetting { .. } => K::InvalidInput,
            OpendalError::ShortRead { .. } => K::UnexpectedEof,
            OpendalError::Backend { error, .. } => match error.kind() {
                opendal::ErrorKind::NotFound => K::NotFound,
                opendal::ErrorKind::PermissionDenied => K::PermissionDenied,
                opendal::ErrorKind::RangeNotSatisfied => K::UnexpectedEof,
                _ if error.to_string().contains("timeout") => K::TimedOut,
                _ => K::Other,
            },
        }
    }
}

impl From<OpendalError> for std::io::Error {
    fn from(error: OpendalError) -> Self {
        std::io::Error::new(error.io_kind(), error)
    }
}

/// OpenDAL puts the HTTP response head of a failed request into the error's context
/// (`response: Parts { status: 404, ... }`); pick the status out of it.
fn http_status(error: &opendal::Error) -> Option<u16> {
    let text = format!("{error:?}");
    let at = text.find("status: ")? + "status: ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|s| (100..600).contains(s))
}
