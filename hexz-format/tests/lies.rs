//! Archives that lie: a directory whose counts and sizes disagree with its own
//! index, page headers that misnumber their records, a trailer that says
//! "signed" without a signature — every checksum and hash recomputed, so only
//! verification that recomputes each figure (FORMAT.md §13) can refuse them.
//! Reads of such archives still work where the lie does not matter; `verify`
//! (fast and deep) refuses them as corruption, naming the field.

use hexz_format::layout::{FLAG_ENCRYPTED, FLAG_SIGNED, Stats};
use hexz_format::{Archive, Error};

use crate::common::{build, noise, open, small_options};
use crate::malformed::{
    Fix, Tree, directory_of, edit_directory, edit_root_page, edit_trailer, lz4, none, put_u64,
    root_page, sample, u32_at,
};

/// Text, noise, a duplicate and a run of zeros (zero chunks), small chunks.
fn sample_with_zeros() -> Vec<u8> {
    let text: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let files = vec![
        ("a.txt".to_string(), text.clone()),
        ("noise".to_string(), noise(5, 20_000)),
        ("zeros".to_string(), vec![0; 40_000]),
        ("copy.txt".to_string(), text),
    ];
    build(&files, small_options(lz4())).0
}

/// Both verifications refuse `bytes` as corruption; returns the fast one's error.
#[track_caller]
fn verify_refuses(bytes: &[u8]) -> Error {
    let a = open(bytes).expect("the lie is not seen at open");
    let deep = a
        .verify()
        .expect_err("deep verify accepted a lying archive");
    assert!(deep.is_corruption(), "deep: {deep:?}");
    let fast = a
        .verify_with(false)
        .expect_err("verify accepted a lying archive");
    assert!(fast.is_corruption(), "fast: {fast:?}");
    fast
}

/// Sets one field of the stats.
type SetStat = fn(&mut Stats, u64);

/// Every stats field, by name, with a setter.
fn stats_fields() -> Vec<(&'static str, SetStat)> {
    vec![
        ("unique_chunk_count", |s, v| s.unique_chunk_count = v),
        ("unique_raw_bytes", |s, v| s.unique_raw_bytes = v),
        ("stored_chunk_bytes", |s, v| s.stored_chunk_bytes = v),
        ("zero_chunk_count", |s, v| s.zero_chunk_count = v),
        ("zero_bytes", |s, v| s.zero_bytes = v),
    ]
}

#[test]
fn the_sample_states_its_figures_truly() {
    for bytes in [sample(lz4()), sample(none()), sample_with_zeros()] {
        open(&bytes).unwrap().verify().unwrap();
    }
    let s = *open(&sample_with_zeros()).unwrap().stats();
    assert!(
        s.zero_chunk_count > 0 && s.unique_chunk_count < s.chunk_count,
        "{s:?}"
    );
}

#[test]
fn verify_recomputes_each_stat_from_the_chunk_index() {
    let good = sample_with_zeros();
    let truth = *open(&good).unwrap().stats();
    for (name, set) in stats_fields() {
        for value in [1u64 << 63, 0, 1] {
            let mut bytes = good.clone();
            edit_directory(&mut bytes, |d| set(&mut d.stats, value));
            if directory_of(&bytes).stats == truth {
                continue;
            }
            let e = verify_refuses(&bytes);
            assert!(
                matches!(&e, Error::Corrupt { what: "directory", detail, .. }
                    if detail.contains(&format!("stats.{name} is {value}"))),
                "{name} = {value}: {e:?}"
            );
            // What the lie does not touch still reads.
            let a = open(&bytes).unwrap();
            assert_eq!(a.stats().logical_size, truth.logical_size);
            a.read_range(0, a.len() as usize).unwrap();
        }
    }
    // All of them at once, zeroed.
    let mut bytes = good.clone();
    edit_directory(&mut bytes, |d| {
        d.stats = Stats {
            entry_count: d.stats.entry_count,
            chunk_count: d.stats.chunk_count,
            logical_size: d.stats.logical_size,
            ..Stats::default()
        }
    });
    verify_refuses(&bytes);
}

#[test]
fn verify_refuses_a_chunk_count_the_index_does_not_hold() {
    let good = sample(lz4());
    let real = directory_of(&good).stats.chunk_count;
    for count in [1u64 << 63, u64::MAX, real + 1, real - 1] {
        let mut bytes = good.clone();
        // The directory's own rule (tree count = stats) holds: only the walk of
        // the index can tell.
        edit_directory(&mut bytes, |d| {
            d.stats.chunk_count = count;
            d.chunk_tree.count = count;
        });
        let e = verify_refuses(&bytes);
        assert!(
            e.to_string().contains(&format!(
                "chunk index holds {real} records, the directory says {count}"
            )),
            "{e}"
        );
    }
    // The entry count likewise (the catalog and the name index).
    let entries = directory_of(&good).stats.entry_count;
    let mut bytes = good.clone();
    edit_directory(&mut bytes, |d| {
        d.stats.entry_count = 1 << 63;
        d.catalog_tree.count = 1 << 63;
        d.name_tree.count = 1 << 63;
    });
    let e = verify_refuses(&bytes);
    assert!(
        e.to_string()
            .contains(&format!("catalog holds {entries} records")),
        "{e}"
    );
}

#[test]
fn verify_refuses_a_page_header_that_misnumbers_its_records() {
    // A single-leaf tree: its root's header says it starts at record 0.
    let good = sample(none());
    for tree in [Tree::Chunks, Tree::Catalog, Tree::Names] {
        let mut bytes = good.clone();
        let d = directory_of(&bytes);
        let depth = match tree {
            Tree::Chunks => d.chunk_tree.depth,
            Tree::Catalog => d.catalog_tree.depth,
            Tree::Names => d.name_tree.depth,
        };
        assert_eq!(depth, 1, "{tree:?}: want a single-leaf tree");
        let page = root_page(&bytes, tree);
        assert_eq!(u32_at(&page, 0) & 0xff00, 0, "a leaf (level 0)");
        let offset = edit_root_page(&mut bytes, tree, Fix::CrcAndHash, |p| put_u64(p, 8, 5));
        let e = verify_refuses(&bytes);
        assert!(
            matches!(&e, Error::Corrupt { offset: o, detail, .. }
                if *o == offset && detail.contains("first record is 5")),
            "{tree:?}: {e:?}"
        );
    }
}

#[test]
fn verify_refuses_a_signed_flag_without_a_signature() {
    let mut bytes = sample(lz4());
    edit_trailer(&mut bytes, |t| t.flags |= FLAG_SIGNED);
    // Nothing to check at open (no trust policy): reads work.
    let a: Archive = open(&bytes).unwrap();
    a.read_range(0, a.len() as usize).unwrap();
    let e = verify_refuses(&bytes);
    assert!(
        matches!(&e, Error::Corrupt { what: "trailer", detail, .. }
            if detail.contains("flagged signed, but the envelope holds no signature")),
        "{e:?}"
    );
}

#[test]
fn an_encrypted_flag_without_key_slots_is_refused_at_open() {
    let mut bytes = sample(lz4());
    edit_trailer(&mut bytes, |t| t.flags |= FLAG_ENCRYPTED);
    let e = crate::malformed::open_err(&bytes);
    assert!(
        e.is_corruption() || matches!(e, Error::KeyRequired { .. }),
        "{e:?}"
    );
}
