//! build → ls, info, verify, cat, extract on the shared generated tree.

use std::ffi::OsStr;
use std::fs;

use crate::support::{
    Kind, SMALL_FILES, SPARSE_DATA, assert_same_tree, fails_with, fixture, json, names, ok, run,
    scratch, stdout,
};

#[test]
fn tree_has_the_promised_shape() {
    let f = fixture();
    let files = f.nodes.iter().filter(|n| n.kind == Kind::File).count();
    assert!(files >= SMALL_FILES, "only {files} files");
    assert!(f.nodes.iter().any(|n| n.kind == Kind::Symlink));
    assert!(
        f.nodes
            .iter()
            .filter(|n| n.name.starts_with("small/"))
            .count()
            > SMALL_FILES
    );
}

#[test]
fn ls_lists_every_name_in_walk_order() {
    let f = fixture();
    let out = run(["ls".as_ref(), f.archive.as_os_str()]);
    ok(&out);
    let got: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    let want: Vec<String> = f.nodes.iter().map(|n| n.name.clone()).collect();
    assert_eq!(got.len(), want.len(), "entry count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i}");
    }
    for name in names::UNICODE {
        assert!(got.iter().any(|g| g == name), "{name} missing");
    }
    assert!(out.stderr.is_empty());
}

#[test]
fn ls_json_matches_the_tree() {
    let f = fixture();
    let out = run(["ls".as_ref(), f.archive.as_os_str(), "--json".as_ref()]);
    ok(&out);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), f.nodes.len());
    for (v, n) in lines.iter().zip(&f.nodes) {
        assert_eq!(v["name"], n.name.as_str());
        assert_eq!(v["kind"], n.kind.as_str(), "kind of {}", n.name);
        assert_eq!(v["size"], n.size, "size of {}", n.name);
        assert_eq!(v["mode"], n.mode, "mode of {}", n.name);
        assert_eq!(v["mtime"], n.mtime, "mtime of {}", n.name);
        assert_eq!(v["uid"], n.uid, "uid of {}", n.name);
        assert_eq!(v["gid"], n.gid, "gid of {}", n.name);
        match &n.target {
            Some(t) => assert_eq!(v["target"], t.as_str(), "target of {}", n.name),
            None => assert!(v["target"].is_null(), "target of {}", n.name),
        }
    }
    let by_name = |name: &str| {
        lines
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    };
    assert_eq!(by_name(names::LINK_REL)["target"], "../big/text.log");
    assert_eq!(by_name(names::LINK_DANGLING)["target"], "no/such/target");
    assert_eq!(
        by_name(names::LINK_ABS)["target"],
        f.data.join(names::EMPTY).to_str().unwrap()
    );
    assert_eq!(by_name(names::LINK_DIR)["kind"], "symlink");
    assert_eq!(by_name(names::EMPTY_DIR)["kind"], "dir");
    assert_eq!(by_name(names::DEEP_EMPTY_DIR)["kind"], "dir");
    assert_eq!(by_name(names::EMPTY)["size"], 0);
    assert_eq!(by_name("modes/script.sh")["mode"], 0o755);
    assert_eq!(by_name("modes/private")["mode"], 0o700);
    assert_eq!(by_name("mtimes/1969.txt")["mtime"], -1_000_000);
    assert_eq!(by_name("mtimes/2100.txt")["mtime"], 4_102_444_800_i64);
}

#[test]
fn ls_long_format() {
    let f = fixture();
    let out = run(["ls".as_ref(), f.archive.as_os_str(), "-l".as_ref()]);
    ok(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), f.nodes.len());
    for (line, n) in lines.iter().zip(&f.nodes) {
        let kind = match n.kind {
            Kind::File => '-',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
        };
        let link = n
            .target
            .as_deref()
            .map(|t| format!(" -> {t}"))
            .unwrap_or_default();
        let owner = format!("{}/{}", n.uid, n.gid);
        let want = format!(
            "{kind}{:04o} {owner:>11} {:>12} {:>12} {}{link}",
            n.mode, n.size, n.mtime, n.name
        );
        assert_eq!(*line, want);
    }
}

#[test]
fn info_json_reports_counts_ratios_and_settings() {
    let f = fixture();
    let v = json(&run([
        "info".as_ref(),
        f.archive.as_os_str(),
        "--json".as_ref(),
    ]));
    let logical: u64 = f.nodes.iter().map(|n| n.size).sum();
    let archive_len = fs::metadata(&f.archive).unwrap().len();
    assert_eq!(v["entries"], f.nodes.len() as u64);
    assert_eq!(v["logical_bytes"], logical);
    assert_eq!(v["stored_bytes"], archive_len);
    let unique = v["unique_bytes"].as_u64().unwrap();
    assert!(
        unique < logical,
        "dedup not visible: unique {unique} >= logical {logical}"
    );
    // The duplicate of the random file alone saves ~3 MiB.
    assert!(
        logical - unique >= 3 << 20,
        "too little dedup: {unique} of {logical}"
    );
    assert!(
        v["zero_chunks"].as_u64().unwrap() > 0,
        "sparse image gave no zero chunk"
    );
    assert!(v["chunks"].as_u64().unwrap() >= v["unique_chunks"].as_u64().unwrap());
    let dedup = v["dedup_ratio"].as_f64().unwrap();
    assert!(
        (dedup - logical as f64 / unique as f64).abs() < 1e-9,
        "dedup_ratio {dedup}"
    );
    assert!(dedup > 1.0);
    let compression = v["compression_ratio"].as_f64().unwrap();
    assert!(
        compression > 1.0,
        "the text file should compress: {compression}"
    );
    assert!(v["total_ratio"].as_f64().unwrap() > 1.0);
    assert_eq!(v["chunking"]["min"], 4096);
    assert_eq!(v["chunking"]["avg"], 16384);
    assert_eq!(v["chunking"]["max"], 65536);
    assert_eq!(v["codec"]["name"], "zstd");
    assert_eq!(v["codec"]["level"], 3);
    assert_eq!(v["format_version"], "1.0");
    let root = v["root_hash"].as_str().unwrap();
    assert_eq!(root.len(), 64);
    assert!(
        root.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(root, f.build_json["root_hash"].as_str().unwrap());
    let recipe = &v["provenance"]["recipe"];
    assert!(recipe.is_object(), "provenance.recipe: {recipe}");
    assert_eq!(recipe["output"], "out/tree.hxz");
    assert_eq!(recipe["compression"]["codec"], "zstd");
    let inputs = &v["provenance"]["inputs"];
    let files = f.nodes.iter().filter(|n| n.kind == Kind::File).count();
    assert_eq!(inputs["files"], files as u64);
    assert_eq!(inputs["bytes"], logical);
    assert_eq!(inputs["excluded"], 0);
    // One digest per input, named as the recipe writes it.
    let digests = v["provenance"]["input_digests"].as_array().unwrap();
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0]["path"], f.data.to_str().unwrap());
    assert_eq!(digests[0]["entries"], f.nodes.len() as u64);
    assert_eq!(digests[0]["bytes"], logical);
    let digest = digests[0]["blake3"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    assert!(digest.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    // The build summary agrees.
    let b = &f.build_json;
    assert_eq!(b["entries"], v["entries"]);
    assert_eq!(b["logical_bytes"], v["logical_bytes"]);
    assert_eq!(b["stored_bytes"], v["stored_bytes"]);
    assert_eq!(b["unique_bytes"], v["unique_bytes"]);
}

#[test]
fn info_text_and_verify() {
    let f = fixture();
    let out = run(["info".as_ref(), f.archive.as_os_str()]);
    ok(&out);
    let text = stdout(&out);
    let root = f.build_json["root_hash"].as_str().unwrap();
    assert!(text.contains(&format!("root hash     {root}")), "{text}");
    assert!(
        text.contains(&format!("entries       {}", f.nodes.len())),
        "{text}"
    );
    assert!(text.contains("format        v1.0"), "{text}");
    let info = json(&run([
        "info".as_ref(),
        f.archive.as_os_str(),
        "--json".as_ref(),
    ]));
    let digest = &info["provenance"]["input_digests"][0];
    let line = format!(
        "input         {} blake3 {} ({} entries, {} bytes)",
        f.data.display(),
        digest["blake3"].as_str().unwrap(),
        digest["entries"],
        digest["bytes"]
    );
    assert!(text.lines().any(|l| l == line), "want {line:?} in\n{text}");

    let v = json(&run([
        "verify".as_ref(),
        f.archive.as_os_str(),
        "--json".as_ref(),
    ]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["root_hash"], root);
    assert_eq!(v["entries"], f.nodes.len() as u64);
    let out = run(["verify".as_ref(), f.archive.as_os_str()]);
    ok(&out);
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
}

fn cat(entry: &str, range: &[&str]) -> Vec<u8> {
    let f = fixture();
    let mut args: Vec<&OsStr> = vec!["cat".as_ref(), f.archive.as_os_str(), entry.as_ref()];
    args.extend(range.iter().map(OsStr::new));
    let out = run(args);
    ok(&out);
    assert!(out.stderr.is_empty());
    out.stdout
}

#[test]
fn cat_whole_entries_match_the_sources() {
    let f = fixture();
    let mut entries = vec![
        names::RANDOM,
        names::RANDOM_COPY,
        names::TEXT,
        names::SPARSE,
        names::EMPTY,
        names::SMALL_SAMPLE,
        "small/g0/h0/file-0000.txt",
        "dups/nested/c.txt",
        "modes/readonly",
    ];
    entries.extend(names::UNICODE);
    for name in entries {
        let want = fs::read(f.data.join(name)).unwrap();
        let got = cat(name, &[]);
        assert!(
            got == want,
            "cat {name}: {} bytes, want {}",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn cat_ranges_match_the_sources() {
    let f = fixture();
    for name in [
        names::RANDOM,
        names::TEXT,
        names::SPARSE,
        names::SMALL_SAMPLE,
    ] {
        let src = fs::read(f.data.join(name)).unwrap();
        let size = src.len() as u64;
        let (sparse_at, sparse_len) = (SPARSE_DATA.0 as u64, SPARSE_DATA.1 as u64);
        let ranges: Vec<(u64, Option<u64>)> = vec![
            (0, Some(1)),
            (0, Some(size.min(100_000))),
            (1, Some(size.min(70_000) - 1)),
            (size / 3, Some((size / 3).min(200_000))),
            (size / 2, None),
            (size - 1, Some(1)),
            (size - size.min(10), None),
            (size, Some(0)),
            (size, None),
            (0, None),
            (
                (sparse_at - 100).min(size - 1),
                Some((sparse_len + 200).min(size - (sparse_at - 100).min(size - 1))),
            ),
        ];
        for (offset, length) in ranges {
            let end = length.map_or(size, |l| offset + l);
            let off = offset.to_string();
            let len = length.map(|l| l.to_string());
            let mut args = vec!["--offset", off.as_str()];
            if let Some(len) = &len {
                args.extend(["--length", len.as_str()]);
            }
            let got = cat(name, &args);
            let want = &src[offset as usize..end as usize];
            assert!(
                got == want,
                "cat {name} --offset {offset} --length {length:?}: {} bytes, want {}",
                got.len(),
                want.len()
            );
        }
    }
}

#[test]
fn cat_errors() {
    let f = fixture();
    let a = f.archive.as_os_str();
    let err = fails_with(&run(["cat".as_ref(), a, "no/such/entry".as_ref()]), 4);
    assert!(err.contains("no/such/entry"), "{err}");
    let err = fails_with(&run(["cat".as_ref(), a, "big/random.bi".as_ref()]), 4);
    assert!(err.contains("big/random.bi"), "{err}");

    // Not a file: a folder, a symlink.
    for name in ["big", names::LINK_REL] {
        let out = run(["cat".as_ref(), a, name.as_ref()]);
        assert_ne!(out.status.code(), Some(0), "cat of {name} succeeded");
        crate::support::assert_one_line_error(&crate::support::stderr(&out));
        assert!(out.stdout.is_empty());
    }

    // Ranges past the end.
    let size = fs::metadata(f.data.join(names::SMALL_SAMPLE))
        .unwrap()
        .len();
    for args in [
        vec!["--offset".to_string(), (size + 1).to_string()],
        vec![
            "--offset".to_string(),
            "1".to_string(),
            "--length".to_string(),
            size.to_string(),
        ],
    ] {
        let mut all: Vec<&OsStr> = vec!["cat".as_ref(), a, names::SMALL_SAMPLE.as_ref()];
        all.extend(args.iter().map(OsStr::new));
        let out = run(all);
        assert_ne!(out.status.code(), Some(0), "{args:?} succeeded");
        let err = crate::support::stderr(&out);
        crate::support::assert_one_line_error(&err);
        assert!(err.contains("outside"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn cat_into_a_closed_pipe_is_not_an_error() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let f = fixture();
    let mut child = Command::new(crate::support::hexz_bin())
        .args([
            OsStr::new("cat"),
            f.archive.as_os_str(),
            OsStr::new(names::TEXT),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little of the 3 MiB entry (more than the pipe buffer), then close
    // the pipe, as `hexz cat ... | head -c 10` does.
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(&head, &fs::read(f.data.join(names::TEXT)).unwrap()[..10]);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        crate::support::stderr(&out)
    );
    assert!(out.stderr.is_empty(), "{}", crate::support::stderr(&out));
}

#[test]
fn extract_restores_an_identical_tree() {
    let f = fixture();
    let dir = scratch();
    let dest = dir.path().join("restored");
    let out = run([
        "extract".as_ref(),
        f.archive.as_os_str(),
        dest.as_os_str(),
        "--quiet".as_ref(),
    ]);
    ok(&out);
    assert!(out.stderr.is_empty(), "{}", crate::support::stderr(&out));
    assert_same_tree(&f.data, &dest);
    // Spot checks beyond the generic comparison.
    assert_eq!(
        fs::read_link(dest.join(names::LINK_ABS)).unwrap(),
        f.data.join(names::EMPTY)
    );
    assert!(fs::symlink_metadata(dest.join(names::LINK_DANGLING)).is_ok());
    assert!(
        fs::read_dir(dest.join(names::EMPTY_DIR))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(
        fs::read_dir(dest.join(names::DEEP_EMPTY_DIR))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn extract_into_a_non_empty_folder_needs_overwrite() {
    let f = fixture();
    let dir = scratch();
    let dest = dir.path().join("dest");
    // A folder that already holds some of the archive's paths, with other content.
    fs::create_dir_all(dest.join("big")).unwrap();
    fs::write(dest.join(names::TEXT), b"old content").unwrap();
    fs::create_dir_all(dest.join("links")).unwrap();
    std::os::unix::fs::symlink("elsewhere", dest.join(names::LINK_REL)).unwrap();
    fs::write(dest.join("unrelated.txt"), b"keep me").unwrap();

    let extract = |overwrite: bool| {
        let mut args: Vec<&OsStr> = vec![
            "extract".as_ref(),
            f.archive.as_os_str(),
            dest.as_os_str(),
            "--quiet".as_ref(),
        ];
        if overwrite {
            args.push("--overwrite".as_ref());
        }
        run(args)
    };

    let out = extract(false);
    let err = fails_with(&out, 1);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("--overwrite"), "{err}");
    assert_eq!(fs::read(dest.join(names::TEXT)).unwrap(), b"old content");
    assert_eq!(fs::read(dest.join("unrelated.txt")).unwrap(), b"keep me");

    ok(&extract(true));
    assert_eq!(
        fs::read(dest.join(names::TEXT)).unwrap(),
        fs::read(f.data.join(names::TEXT)).unwrap()
    );
    assert_eq!(
        fs::read_link(dest.join(names::LINK_REL)).unwrap().to_str(),
        Some("../big/text.log")
    );
    // Everything of the archive is there, and the unrelated file was left alone.
    fs::remove_file(dest.join("unrelated.txt")).unwrap();
    assert_same_tree(&f.data, &dest);

    // Extracting again over an identical tree also needs --overwrite, and works with it.
    fails_with(&extract(false), 1);
    ok(&extract(true));
    assert_same_tree(&f.data, &dest);
}
