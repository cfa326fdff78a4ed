//! Stale multipart uploads: the parts a killed publish left on an S3 server.
//!
//! An upload is completed only after its last part, so a publish killed
//! mid-upload (or whose abort request never got through) leaves an incomplete
//! multipart upload: its parts are stored, and billed, while nothing appears at
//! the key. Before a new upload to a key, [`abort_stale`] lists the incomplete
//! uploads of exactly that key (`ListMultipartUploads`, prefix = key, keys
//! compared exactly) and aborts each (`AbortMultipartUpload`). They were all
//! started before this publish: left by earlier runs — or, if two publishes to
//! the same key overlap, by the other one, which then fails (its parts are
//! gone) and leaves nothing at the key, never a wrong object.
//!
//! OpenDAL 0.59 neither lists nor aborts multipart uploads by id, and keeps the
//! ids of the uploads it starts to itself, so these two requests are sent here,
//! signed as OpenDAL signs its own (`reqsign`, SigV4, the same credential
//! sources: static keys, else the environment, profiles and instance roles),
//! on the endpoint and addressing style [`S3Options`] gives OpenDAL.
//!
//! Best effort: a store that does not implement the listing (s3s-fs), a
//! credential without `s3:ListBucketMultipartUploads`, or a failed request is
//! not a publish error; [`StaleUploads::unchecked`] says why, and the rest is
//! left to a bucket lifecycle rule (`AbortIncompleteMultipartUpload`, see
//! docs/SECURITY.md).

use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider,
};
use reqsign_core::{Context, HttpSend, OsEnv, ProvideCredentialChain, Signer};
use reqsign_file_read_tokio::TokioFileRead;
use serde::Deserialize;

use crate::location::{REQUEST_TIMEOUT, S3Options};
use crate::runtime;

/// Pages of `ListMultipartUploads` read at most (1000 uploads each).
const MAX_PAGES: usize = 100;

/// What [`abort_stale`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaleUploads {
    /// Incomplete uploads of the key that were aborted.
    pub aborted: u64,
    /// Why the key's incomplete uploads could not be listed or aborted, when
    /// they could not (the store does not list them, the credentials may not, a
    /// request failed).
    pub unchecked: Option<String>,
}

/// Characters kept as they are in a query value: RFC 3986 unreserved.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// In a path, `/` separates segments and stays.
const PATH: &AsciiSet = &QUERY.remove(b'/');

/// Abort the incomplete multipart uploads of `bucket`/`key` (see the module
/// docs). Never fails: problems are reported in [`StaleUploads::unchecked`].
pub fn abort_stale(url: &str, bucket: &str, key: &str, s3: &S3Options) -> StaleUploads {
    match try_abort_stale(bucket, key, s3) {
        Ok(aborted) => StaleUploads {
            aborted,
            unchecked: None,
        },
        Err((aborted, why)) => StaleUploads {
            aborted,
            unchecked: Some(format!(
                "{url}: incomplete multipart uploads of the key not checked: {why}"
            )),
        },
    }
}

fn try_abort_stale(bucket: &str, key: &str, s3: &S3Options) -> Result<u64, (u64, String)> {
    let rt = runtime::get().map_err(|e| (0, e.to_string()))?;
    let client = Client::new(bucket, s3).map_err(|e| (0, e))?;
    rt.block_on(async {
        let uploads = client.list(key).await.map_err(|e| (0, e))?;
        let mut aborted = 0;
        for id in uploads {
            client.abort(key, &id).await.map_err(|e| (aborted, e))?;
            aborted += 1;
        }
        Ok(aborted)
    })
}

/// Signed requests to one bucket.
struct Client {
    http: reqwest::Client,
    signer: Signer<Credential>,
    /// `scheme://host[:port][/bucket]`: object paths are appended to it.
    base: String,
}

impl Client {
    fn new(bucket: &str, s3: &S3Options) -> Result<Self, String> {
        let region = s3.region.as_deref().unwrap_or("us-east-1");
        let http = reqwest::Client::builder()
            .timeout(
                s3.timeout
                    .map_or(REQUEST_TIMEOUT, |t| t.max(Duration::from_millis(1))),
            )
            .build()
            .map_err(|e| format!("cannot make the HTTP client: {e}"))?;
        let ctx = Context::new()
            .with_file_read(TokioFileRead)
            .with_env(OsEnv)
            .with_http_send(ReqwestSend(http.clone()));
        // As OpenDAL's S3 service is configured (location.rs): the keys given
        // and nothing else, or the usual sources.
        let provider = match (&s3.access_key_id, &s3.secret_access_key) {
            (Some(id), Some(secret)) => {
                let keys = StaticCredentialProvider::new(id, secret);
                let keys = match &s3.session_token {
                    Some(token) => keys.with_session_token(token),
                    None => keys,
                };
                ProvideCredentialChain::new().push(keys)
            }
            _ => ProvideCredentialChain::new().push(DefaultCredentialProvider::builder().build()),
        };
        let signer = Signer::new(ctx, provider, RequestSigner::new("s3", region));
        let endpoint = s3
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/');
        let base = if s3.virtual_host_style {
            let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", endpoint));
            format!("{scheme}://{bucket}.{host}")
        } else {
            format!("{endpoint}/{}", utf8_percent_encode(bucket, PATH))
        };
        Ok(Self { http, signer, base })
    }

    /// The upload ids of the incomplete uploads of exactly `key`.
    async fn list(&self, key: &str) -> Result<Vec<String>, String> {
        let mut ids = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            // Query parameters in the canonical (sorted) order.
            let mut uri = format!("{}/?", self.base);
            if let Some((key_marker, id_marker)) = &markers {
                uri.push_str(&format!(
                    "key-marker={}&",
                    utf8_percent_encode(key_marker, QUERY)
                ));
                uri.push_str(&format!("prefix={}&", utf8_percent_encode(key, QUERY)));
                uri.push_str(&format!(
                    "upload-id-marker={}&",
                    utf8_percent_encode(id_marker, QUERY)
                ));
            } else {
                uri.push_str(&format!("prefix={}&", utf8_percent_encode(key, QUERY)));
            }
            uri.push_str("uploads=");
            let body = self
                .send(http::Method::GET, &uri, "ListMultipartUploads")
                .await?;
            let page: ListResult = quick_xml::de::from_str(&body)
                .map_err(|e| format!("ListMultipartUploads: unexpected answer: {e}"))?;
            ids.extend(
                page.uploads
                    .into_iter()
                    .filter(|u| u.key == key)
                    .map(|u| u.upload_id),
            );
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(i)) if k.starts_with(key) => markers = Some((k, i)),
                _ => return Ok(ids),
            }
        }
        Ok(ids)
    }

    /// Abort upload `id` of `key`; one already gone is fine.
    async fn abort(&self, key: &str, id: &str) -> Result<(), String> {
        let uri = format!(
            "{}/{}?uploadId={}",
            self.base,
            utf8_percent_encode(key, PATH),
            utf8_percent_encode(id, QUERY)
        );
        match self
            .send(http::Method::DELETE, &uri, "AbortMultipartUpload")
            .await
        {
            Err(e) if e.contains("NoSuchUpload") => Ok(()),
            other => other.map(drop),
        }
    }

    /// Send a signed request without a body; the response body on success.
    async fn send(&self, method: http::Method, uri: &str, what: &str) -> Result<String, String> {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .map_err(|e| format!("{what}: {e}"))?;
        let (mut parts, ()) = request.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| format!("{what}: cannot sign the request: {e}"))?;
        let request = http::Request::from_parts(parts, reqwest::Body::from(Vec::new()));
        let request = reqwest::Request::try_from(request).map_err(|e| format!("{what}: {e}"))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("{what}: {e}"))?;
        if status.is_success() {
            return Ok(body);
        }
        let code = quick_xml::de::from_str::<ErrorBody>(&body)
            .map(|e| e.code)
            .unwrap_or_default();
        Err(format!("{what}: HTTP {} {code}", status.as_u16()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    code: String,
}

/// reqsign's HTTP client (for credential sources that make requests: instance
/// metadata, STS): reqwest.
#[derive(Debug)]
struct ReqwestSend(reqwest::Client);

impl HttpSend for ReqwestSend {
    async fn http_send(
        &self,
        req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        let failed = |e: reqwest::Error| {
            reqsign_core::Error::unexpected("credential request failed").with_source(e)
        };
        let req = reqwest::Request::try_from(req).map_err(failed)?;
        let resp = self.0.execute(req).await.map_err(failed)?;
        let mut out = http::Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            out = out.header(name, value);
        }
        let body = resp.bytes().await.map_err(failed)?;
        out.body(body)
            .map_err(|e| reqsign_core::Error::unexpected("credential response").with_source(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn listings_parse_and_match_the_key_exactly() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><KeyMarker/><UploadIdMarker/><NextKeyMarker>d/k.hxz2</NextKeyMarker><NextUploadIdMarker>B</NextUploadIdMarker><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated><Upload><UploadId>A</UploadId><Key>d/k.hxz</Key><Initiated>2010-11-10T20:48:33.000Z</Initiated><Owner><ID>x</ID></Owner></Upload><Upload><UploadId>B</UploadId><Key>d/k.hxz2</Key></Upload></ListMultipartUploadsResult>"#;
        let page: ListResult = quick_xml::de::from_str(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("B"));
        let ids: Vec<_> = page
            .uploads
            .iter()
            .filter(|u| u.key == "d/k.hxz")
            .map(|u| u.upload_id.as_str())
            .collect();
        assert_eq!(ids, ["A"]);
        let empty: ListResult = quick_xml::de::from_str(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(empty.uploads.is_empty());
        let err: ErrorBody = quick_xml::de::from_str(
            "<Error><Code>NotImplemented</Code><Message>no</Message></Error>",
        )
        .unwrap();
        assert_eq!(err.code, "NotImplemented");
    }

    #[test]
    fn keys_and_markers_are_encoded_once() {
        assert_eq!(
            utf8_percent_encode("d/a b+c~.hxz", PATH).to_string(),
            "d/a%20b%2Bc~.hxz"
        );
        assert_eq!(utf8_percent_encode("d/a b", QUERY).to_string(), "d%2Fa%20b");
    }
}
