//! `hexz-lz4` against the `Compressor` conformance suite.

use hexz_format::conformance::check_compressor;
use hexz_lz4::Lz4Compressor;

#[test]
fn lz4_conforms() {
    if let Err(failure) = check_compressor(&Lz4Compressor::new()) {
        panic!("{failure}");
    }
}

#[test]
fn lz4_conforms_as_shared_trait_object() {
    let shared: std::sync::Arc<dyn hexz_format::Compressor> =
        std::sync::Arc::new(Lz4Compressor::new());
    if let Err(failure) = check_compressor(shared.as_ref()) {
        panic!("{failure}");
    }
}
