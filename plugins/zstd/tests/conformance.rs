//! `hexz-zstd` against the `Compressor` conformance suite, and level validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hexz_format::Compressor;
use hexz_format::conformance::check_compressor;
use hexz_zstd::{DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL, ZstdCompressor, ZstdLevelError};

fn conforms(level: i32) {
    let codec = ZstdCompressor::new(level).unwrap();
    if let Err(failure) = check_compressor(&codec) {
        panic!("level {level}: {failure}");
    }
}

#[test]
fn default_level_conforms() {
    let codec = ZstdCompressor::default();
    assert_eq!(codec.level(), DEFAULT_LEVEL);
    assert_eq!(codec.name(), "zstd");
    if let Err(failure) = check_compressor(&codec) {
        panic!("{failure}");
    }
}

#[test]
fn lowest_level_conforms() {
    conforms(MIN_LEVEL);
}

#[test]
fn highest_level_conforms() {
    conforms(MAX_LEVEL);
}

#[test]
fn every_valid_level_is_accepted() {
    for level in 1..=22 {
        let codec = ZstdCompressor::new(level).expect("valid level");
        assert_eq!(codec.level(), level);
    }
}

#[test]
fn level_zero_is_rejected() {
    let err = ZstdCompressor::new(0).unwrap_err();
    assert_eq!(err, ZstdLevelError { level: 0 });
    let msg = err.to_string();
    assert!(msg.contains("1–22"), "{msg}");
    assert!(msg.contains('0'), "{msg}");
}

#[test]
fn level_23_is_rejected() {
    let err = ZstdCompressor::new(23).unwrap_err();
    assert_eq!(err.level, 23);
    let msg = err.to_string();
    assert!(msg.contains("1–22"), "{msg}");
    assert!(msg.contains("23"), "{msg}");
}

#[test]
fn negative_and_extreme_levels_are_rejected() {
    for level in [-1, -5, i32::MIN, i32::MAX] {
        assert_eq!(ZstdCompressor::new(level), Err(ZstdLevelError { level }));
    }
}

#[test]
fn level_error_is_a_std_error() {
    let err: Box<dyn std::error::Error + Send + Sync> =
        Box::new(ZstdCompressor::new(99).unwrap_err());
    assert!(err.to_string().contains("99"));
}

#[test]
fn output_is_identical_across_threads_and_levels_interleaved() {
    let data: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i * 7 % 251) as u8 ^ (i >> 9) as u8)
        .collect();
    let reference: Vec<Vec<u8>> = [1, 3, 9, 19]
        .iter()
        .map(|&level| {
            let mut out = Vec::new();
            ZstdCompressor::new(level)
                .unwrap()
                .compress(&data, &mut out)
                .unwrap();
            out
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let data = &data;
            let reference = &reference;
            s.spawn(move || {
                for round in 0..3 {
                    for (k, &level) in [1, 3, 9, 19].iter().enumerate().rev() {
                        let mut out = Vec::new();
                        ZstdCompressor::new(level)
                            .unwrap()
                            .compress(data, &mut out)
                            .unwrap();
                        assert_eq!(out, reference[k], "thread {t} round {round} level {level}");
                    }
                }
            });
        }
    });
}
