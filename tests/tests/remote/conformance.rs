//! The transport conformance suite against the real servers (memory and local
//! files run in hexz-pipeline's unit tests).

use std::sync::Arc;

use hexz_pipeline::OpendalTransport;
use hexz_pipeline::transport_conformance::{Placement, check_transport};

use super::{create_bucket, env, s3_options};

#[test]
fn s3_transport_conforms() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-conformance");
    let transport = OpendalTransport::with_s3(s3_options(&endpoint));
    check_transport(&transport, "s3://hexz-conformance/suite", Placement::Put).unwrap();
}

#[test]
fn http_transport_conforms() {
    let (Some(base), Some(dir)) = (env("HEXZ_TEST_HTTP_URL"), env("HEXZ_TEST_HTTP_DIR")) else {
        return;
    };
    let folder = std::path::Path::new(&dir).join("suite");
    std::fs::create_dir_all(&folder).unwrap();
    let place = move |name: &str, bytes: &[u8]| std::fs::write(folder.join(name), bytes);
    let transport: Arc<OpendalTransport> = Arc::new(OpendalTransport::default());
    check_transport(
        transport.as_ref(),
        &format!("{base}/suite"),
        Placement::External(&place),
    )
    .unwrap();
}
